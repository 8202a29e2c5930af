package gate

import (
	"encoding/json"
	"errors"
	"runtime/debug"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/signet-auth/signet/verifier"
)

// The answer headers of an allowed request.
const (
	HeaderSubject   = "X-Signet-Subject"
	HeaderOrg       = "X-Signet-Org"
	HeaderScopes    = "X-Signet-Scopes"
	HeaderTokenID   = "X-Signet-Token-Id"
	HeaderTokenType = "X-Signet-Token-Type"
)

// The same keys (and values) as bytes, for fasthttp's SetCanonical. Never
// written to.
var (
	keySubject      = []byte(HeaderSubject)
	keyOrg          = []byte(HeaderOrg)
	keyScopes       = []byte(HeaderScopes)
	keyTokenID      = []byte(HeaderTokenID)
	keyTokenType    = []byte(HeaderTokenType)
	keyCacheControl = []byte(fasthttp.HeaderCacheControl)
	valueNoStore    = []byte("no-store")
)

// The challenges of RFC 6750 §3: bare when the request carried no bearer
// token (§3.1), with an error code otherwise.
const (
	challengeNone              = `Bearer realm="signet"`
	challengeInvalidToken      = `Bearer realm="signet", error="invalid_token"`
	challengeInsufficientScope = `Bearer realm="signet", error="insufficient_scope"`
)

// errorBody is the answer body of a refusal, in the issuer's error shape.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // constant input
	}
	return b
}

var (
	bodyNoToken     = mustJSON(errorBody{"unauthorized", "A bearer token is required (Authorization: Bearer <token>)."})
	bodyNotReady    = mustJSON(errorBody{"unavailable", "The gate has not loaded the issuer's keys and revocation list yet; try again shortly."})
	bodyStale       = mustJSON(errorBody{"unavailable", "Tokens cannot be checked right now: the revocation list is stale. Try again shortly."})
	bodyNotFound    = mustJSON(errorBody{"not_found", "Unknown path: the gate answers /auth, /healthz, /readyz and /metrics."})
	bodyBadMethod   = mustJSON(errorBody{"invalid_request", "Only GET and HEAD are allowed here."})
	bodyHealthy     = []byte(`{"status":"ok"}`)
	bodyInternal    = mustJSON(errorBody{"internal", "The gate failed to answer; the cause is in its log."})
	errHeaderValues = errors.New("a claim cannot be carried in an HTTP header (control characters)")
)

// serve routes a request. The auth check comes first: it is the hot path.
func (g *Gate) serve(rc *fasthttp.RequestCtx) {
	defer func() {
		if p := recover(); p != nil {
			// A bug, never bad input; the panic value may hold request
			// data, so only the stack is logged.
			g.log.Error("gate: panic while answering a request", "path", string(rc.Path()), "stack", string(debug.Stack()))
			rc.Response.Reset()
			g.writeJSON(rc, fasthttp.StatusInternalServerError, bodyInternal)
		}
	}()
	path := rc.Path()
	if isAuthPath(path) {
		g.auth(rc)
		return
	}
	switch string(path) {
	case "/healthz", "/readyz", "/metrics":
	default:
		g.writeJSON(rc, fasthttp.StatusNotFound, bodyNotFound)
		return
	}
	if !rc.IsGet() && !rc.IsHead() {
		rc.Response.Header.Set(fasthttp.HeaderAllow, "GET, HEAD")
		g.writeJSON(rc, fasthttp.StatusMethodNotAllowed, bodyBadMethod)
		return
	}
	switch string(path) {
	case "/healthz":
		g.writeJSON(rc, fasthttp.StatusOK, bodyHealthy)
	case "/readyz":
		g.readyz(rc)
	case "/metrics":
		g.metricsHandler(rc)
	}
}

// isAuthPath reports whether path is /auth or lies under /auth/ (Envoy's
// ext_authz appends the original request's path).
func isAuthPath(path []byte) bool {
	return len(path) >= 5 && string(path[:5]) == "/auth" && (len(path) == 5 || path[5] == '/')
}

// auth answers one forward-auth check.
func (g *Gate) auth(rc *fasthttp.RequestCtx) {
	rc.Response.Header.SetCanonical(keyCacheControl, valueNoStore)
	authz := rc.Request.Header.Peek(fasthttp.HeaderAuthorization)
	if len(authz) == 0 {
		g.refuse(rc, outcomeNoToken, fasthttp.StatusUnauthorized, challengeNone, bodyNoToken)
		return
	}
	// The verifier's cache keeps the token string it is given, so it must
	// not alias the request's buffer: a token that verified before comes
	// from the intern table, any other is copied once.
	header, known := g.intern.lookup(authz)
	if !known {
		header = string(authz)
	}
	tok, ok := verifier.BearerToken(header)
	if !ok {
		if isBearerScheme(authz) {
			g.invalid(rc, "malformed", errors.New("the Authorization header names Bearer but carries no token"))
			return
		}
		// Another scheme (Basic, ...) is no bearer token at all (§3.1).
		g.refuse(rc, outcomeNoToken, fasthttp.StatusUnauthorized, challengeNone, bodyNoToken)
		return
	}
	// Whether a token is missing is known without the verifier; whether
	// one is good is not.
	v := g.v.Load()
	if v == nil {
		g.refuse(rc, outcomeUnavailable, fasthttp.StatusServiceUnavailable, "", bodyNotReady)
		return
	}
	start := time.Now()
	c, err := v.Verify(rc, tok)
	g.metrics.verify.Observe(time.Since(start).Seconds())
	if err != nil {
		if errors.Is(err, verifier.ErrStale) {
			g.log.Debug("gate: refused: revocation list stale", "err", err)
			rc.Response.Header.Set(fasthttp.HeaderRetryAfter, "5")
			g.refuse(rc, outcomeUnavailable, fasthttp.StatusServiceUnavailable, "", bodyStale)
			return
		}
		g.invalid(rc, reasonOf(err), err)
		return
	}
	if !headerSafe(c.Subject) || !headerSafe(c.Org) || !headerSafe(c.ID) || !headerSafe(c.TokenType) {
		g.invalid(rc, "claims", errHeaderValues)
		return
	}
	if !known {
		g.intern.add(header)
	}
	if missing, ok := missingScope(rc.QueryArgs(), c); !ok {
		g.log.Debug("gate: refused: insufficient scope", "token_id", c.ID, "scope", missing)
		g.refuse(rc, outcomeInsufficientScope, fasthttp.StatusForbidden, challengeInsufficientScope,
			mustJSON(errorBody{"insufficient_scope", "The token lacks a required scope: " + missing + "."}))
		return
	}
	// SetCanonical skips fasthttp's key normalization: the keys are
	// canonical already, the values checked by headerSafe.
	h := &rc.Response.Header
	bp := g.scratch.Get().(*[]byte)
	b := append((*bp)[:0], c.Subject...)
	h.SetCanonical(keySubject, b)
	b = append(b[:0], c.Org...)
	h.SetCanonical(keyOrg, b)
	b = append(b[:0], c.ID...)
	h.SetCanonical(keyTokenID, b)
	b = append(b[:0], c.TokenType...)
	h.SetCanonical(keyTokenType, b)
	b = b[:0]
	for _, s := range c.Scopes {
		if !headerSafe(s) {
			continue // the issuer never signs such a scope; never forward it
		}
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = append(b, s...)
	}
	h.SetCanonical(keyScopes, b)
	*bp = b
	g.scratch.Put(bp)
	rc.SetStatusCode(fasthttp.StatusOK)
	g.metrics.allowed.Inc()
}

// missingScope checks the scope query parameters (each may hold several,
// space-separated) against the token with the verifier's rule: a trailing
// * in a token scope covers every scope with that prefix, * alone covers
// everything. It returns the first scope the token lacks.
func missingScope(args *fasthttp.Args, c *verifier.Claims) (missing string, ok bool) {
	ok = true
	args.VisitAll(func(key, value []byte) {
		if !ok || string(key) != "scope" {
			return
		}
		for len(value) > 0 {
			var s []byte
			if i := indexSpace(value); i >= 0 {
				s, value = value[:i], value[i+1:]
			} else {
				s, value = value, nil
			}
			if len(s) > 0 && !c.HasScope(string(s)) {
				missing, ok = string(s), false
				return
			}
		}
	})
	return missing, ok
}

func indexSpace(b []byte) int {
	for i, c := range b {
		if c == ' ' || c == '\t' {
			return i
		}
	}
	return -1
}

// isBearerScheme reports whether an Authorization value names the Bearer
// scheme (case-insensitively), token or not.
func isBearerScheme(authz []byte) bool {
	s := strings.TrimSpace(string(authz))
	scheme, _, _ := strings.Cut(s, " ")
	return strings.EqualFold(scheme, "Bearer")
}

// headerSafe reports whether s can be sent as a header value as is: no
// control characters (which could split or end the header).
func headerSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}

// reasonOf classifies a verification error for the metrics.
func reasonOf(err error) string {
	switch {
	case errors.Is(err, verifier.ErrMalformed):
		return "malformed"
	case errors.Is(err, verifier.ErrExpired):
		return "expired"
	case errors.Is(err, verifier.ErrNotYetValid):
		return "not_yet_valid"
	case errors.Is(err, verifier.ErrRevoked):
		return "revoked"
	case errors.Is(err, verifier.ErrBadSignature):
		return "bad_signature"
	case errors.Is(err, verifier.ErrUnknownKey):
		return "unknown_key"
	case errors.Is(err, verifier.ErrIssuer):
		return "wrong_issuer"
	case errors.Is(err, verifier.ErrAudience):
		return "wrong_audience"
	case errors.Is(err, verifier.ErrAlgorithm):
		return "algorithm"
	}
	return "other"
}

// invalid refuses a token with 401 invalid_token. The verifier's messages
// never contain the token, so the reason goes to the body and the debug
// log.
func (g *Gate) invalid(rc *fasthttp.RequestCtx, reason string, err error) {
	desc := strings.TrimPrefix(err.Error(), "verifier: ")
	if reason == "other" {
		g.log.Warn("gate: refused a token for an unclassified reason", "err", err)
	} else {
		g.log.Debug("gate: refused: invalid token", "reason", reason, "err", err)
	}
	g.metrics.invalid[reason].Inc()
	g.refuse(rc, outcomeInvalidToken, fasthttp.StatusUnauthorized, challengeInvalidToken,
		mustJSON(errorBody{"invalid_token", "The bearer token is not valid: " + desc + "."}))
}

// refuse answers a check that does not pass.
func (g *Gate) refuse(rc *fasthttp.RequestCtx, outcome string, status int, challenge string, body []byte) {
	if challenge != "" {
		rc.Response.Header.Set(fasthttp.HeaderWWWAuthenticate, challenge)
	}
	g.writeJSON(rc, status, body)
	g.metrics.decisions[outcome].Inc()
}

func (g *Gate) writeJSON(rc *fasthttp.RequestCtx, status int, body []byte) {
	rc.Response.Header.Set(fasthttp.HeaderCacheControl, "no-store")
	rc.Response.Header.Set(fasthttp.HeaderXContentTypeOptions, "nosniff")
	rc.SetContentType("application/json")
	rc.SetStatusCode(status)
	rc.SetBody(body)
}

// readyz answers 200 while tokens can be checked: keys and revocation list
// loaded, and the list fresh (or fail_open). Otherwise 503, naming what is
// missing.
func (g *Gate) readyz(rc *fasthttp.RequestCtx) {
	st := g.status()
	checks := map[string]string{"keys": "ok", "revocations": "ok"}
	switch {
	case !st.connected:
		checks["keys"], checks["revocations"] = "unavailable", "unavailable"
	case st.Keys == 0:
		checks["keys"] = "unavailable"
	}
	if st.connected && st.Stale && !g.cfg.Verifier.FailOpen {
		checks["revocations"] = "stale"
	}
	status, word := fasthttp.StatusOK, "ok"
	if !st.ready {
		status, word = fasthttp.StatusServiceUnavailable, "unavailable"
	}
	g.writeJSON(rc, status, mustJSON(map[string]any{"status": word, "checks": checks}))
}
