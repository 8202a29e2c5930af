package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

type claimsKey struct{}

// ContextWithClaims returns ctx carrying c; Middleware does this for every
// request it lets through.
func ContextWithClaims(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// ClaimsFromContext returns the claims Middleware stored in ctx.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok && c != nil
}

// BearerToken extracts the token of an "Authorization: Bearer <token>"
// header value (scheme case-insensitive); ok is false for anything else.
func BearerToken(authorization string) (token string, ok bool) {
	scheme, tok, found := strings.Cut(strings.TrimSpace(authorization), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// Denial is how Middleware answers a request it refuses: the HTTP status,
// the WWW-Authenticate challenge (RFC 6750 §3) and an error body in the
// issuer's {"error","message"} shape.
type Denial struct {
	Status          int
	WWWAuthenticate string
	Code            string
	Message         string
}

// Authorize verifies the bearer token in an Authorization header value and
// checks that it grants every scope. It returns the claims, or the answer
// to send: 401 invalid_token for a missing or bad token, 403
// insufficient_scope for missing scopes, 503 when the revocation list is
// stale (the token may be fine; the verifier cannot tell). Both
// middlewares (net/http here, Fiber in fiberverifier) are built on it.
func (v *Verifier) Authorize(ctx context.Context, authorization string, scopes ...string) (*Claims, *Denial) {
	tok, ok := BearerToken(authorization)
	if !ok {
		return nil, &Denial{
			Status:          http.StatusUnauthorized,
			WWWAuthenticate: `Bearer`,
			Code:            "unauthorized",
			Message:         "A bearer token is required.",
		}
	}
	c, err := v.Verify(ctx, tok)
	if err != nil {
		if errors.Is(err, ErrStale) {
			return nil, &Denial{
				Status:  http.StatusServiceUnavailable,
				Code:    "unavailable",
				Message: "Tokens cannot be checked right now; try again shortly.",
			}
		}
		desc := strings.TrimPrefix(err.Error(), "verifier: ")
		return nil, &Denial{
			Status:          http.StatusUnauthorized,
			WWWAuthenticate: `Bearer error="invalid_token", error_description=` + quote(desc),
			Code:            "invalid_token",
			Message:         "The bearer token is not valid: " + desc + ".",
		}
	}
	if !c.HasScopes(scopes...) {
		need := strings.Join(scopes, " ")
		return nil, &Denial{
			Status:          http.StatusForbidden,
			WWWAuthenticate: `Bearer error="insufficient_scope", scope=` + quote(need),
			Code:            "insufficient_scope",
			Message:         "The token lacks a required scope: " + need + ".",
		}
	}
	return c, nil
}

// quote renders s as an RFC 7230 quoted-string, dropping characters that
// cannot appear in one.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f || r > 0x7e:
			// Header values are ASCII here; anything else is dropped.
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Middleware returns net/http middleware that lets a request through only
// with a valid bearer token granting every scope in scopes (with the
// contract's wildcard rule), and puts the claims in its context (see
// ClaimsFromContext). Refusals follow RFC 6750: 401 with
// WWW-Authenticate: Bearer error="invalid_token", 403 with
// error="insufficient_scope", and 503 when the revocation list is stale.
func (v *Verifier) Middleware(scopes ...string) func(http.Handler) http.Handler {
	scopes = append([]string(nil), scopes...)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, d := v.Authorize(r.Context(), r.Header.Get("Authorization"), scopes...)
			if d != nil {
				writeDenial(w, d)
				return
			}
			next.ServeHTTP(w, r.WithContext(ContextWithClaims(r.Context(), c)))
		})
	}
}

func writeDenial(w http.ResponseWriter, d *Denial) {
	h := w.Header()
	if d.WWWAuthenticate != "" {
		h.Set("WWW-Authenticate", d.WWWAuthenticate)
	}
	if d.Status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "5")
	}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(d.Status)
	_ = json.NewEncoder(w).Encode(struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}{d.Code, d.Message})
}
