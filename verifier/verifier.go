// Package verifier checks signet access tokens offline: the signature
// against the issuer's published keys (JWKS), the claims, and the
// revocation list, which it keeps in sync in the background. It is what a
// service imports to accept signet tokens without calling the issuer on
// every request.
//
//	v, err := verifier.New(ctx, verifier.Config{IssuerURL: "https://auth.example.com"})
//	if err != nil { ... }
//	defer v.Close()
//	claims, err := v.Verify(ctx, token) // errors.Is(err, verifier.ErrRevoked), ErrExpired, ...
//
// New reads the issuer's RFC 8414 metadata
// (/.well-known/oauth-authorization-server) for jwks_uri and
// revocation_list_uri, loads the key set and the revocation snapshot, and
// then follows the revocation events stream (Server-Sent Events, resumed
// with Last-Event-ID after a break), polling GET /revocations?since=V
// while the stream is down. A bloom-filter hit is confirmed exactly (the
// entries synced since the snapshot, or one GET /revocations/{id}) before a
// token is refused, so a false positive never locks out a valid token.
//
// Tokens are read by the token package, the one parser the issuer uses
// too: only EdDSA (Ed25519), ES256 and RS256, and only the algorithm of
// the key the token names; alg "none", HMAC, the jku, x5u, jwk, x5c and
// b64 header parameters and any crit entry are refused, typ must be
// at+jwt, and claims with a duplicate member name, a case variant of a
// claim name or anything after the JSON object are malformed. Tokens seen
// before are answered from a bounded cache; a revocation synced since is
// still honoured on the very next call.
//
// The package is split by job: verifier.go (New, Verify and its checks),
// keyset.go (the key source: the KeySet interface and the default JWKS
// key set with its own lock and rate-limited, shared refresh),
// revstate.go (the revocation state), sync.go (the syncer), cache.go (the
// verified-token cache) and errors.go. Config.KeySet plugs in another key
// source.
//
// While the issuer is unreachable the verifier keeps the last good keys
// and list. Once the list has not been synced for Config.MaxStaleness,
// Verify fails with ErrStale, unless Config.FailOpen is set.
package verifier

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signet-auth/signet/revocation"
	"github.com/signet-auth/signet/token"
)

// Defaults applied to zero Config fields.
const (
	// DefaultLeeway is the clock skew tolerated on exp, nbf and iat.
	DefaultLeeway = 30 * time.Second
	// DefaultMaxStaleness is how long the last synced revocation list is
	// trusted while the issuer is unreachable.
	DefaultMaxStaleness = 10 * time.Minute
	// DefaultJWKSRefreshInterval is how often the key set is re-read
	// without an unknown kid asking for it.
	DefaultJWKSRefreshInterval = 5 * time.Minute
	// DefaultMinRefreshInterval is the shortest time between two key set
	// fetches caused by unknown kids.
	DefaultMinRefreshInterval = 5 * time.Second
	// DefaultPollInterval is how often GET /revocations?since=V is polled
	// while the event stream is down (or disabled).
	DefaultPollInterval = 500 * time.Millisecond
)

// Config configures a Verifier. Only IssuerURL is required; every zero
// field means the documented default.
type Config struct {
	// IssuerURL is the issuer's public URL, exactly as it appears in the
	// tokens' iss claim and in its metadata's issuer field.
	IssuerURL string
	// Audience, when set, must be one of the token's aud values. When
	// empty, aud is not checked.
	Audience string
	// Leeway is the clock skew tolerated on exp, nbf and iat (default
	// DefaultLeeway, 30s; negative means none). It may not exceed
	// revocation.ExpiryGrace (5m), the time a revocation stays on the list
	// after its token's expiry: a larger leeway would accept revoked
	// tokens once their entries left the list.
	Leeway time.Duration
	// MaxStaleness is how long after the last successful sync of the
	// revocation list Verify keeps accepting tokens (default 10m). Past
	// it, Verify fails with ErrStale unless FailOpen.
	MaxStaleness time.Duration
	// FailOpen keeps accepting tokens on the last known list when it is
	// stale, and accepts a filter hit that cannot be confirmed. It trades
	// prompt revocation for availability; leave it off unless that trade
	// is understood.
	FailOpen bool
	// HTTPClient makes every request to the issuer (default: a client
	// with a 10s timeout). The event stream uses its Transport without
	// the Timeout. Set it to trust an issuer whose certificate comes from
	// a private CA:
	//
	//	pool := x509.NewCertPool()
	//	pool.AppendCertsFromPEM(caPEM)
	//	tr := http.DefaultTransport.(*http.Transport).Clone()
	//	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	//	cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second, Transport: tr}
	HTTPClient *http.Client
	// Now returns the current time (default time.Now); tests inject it.
	Now func() time.Time
	// JWKSRefreshInterval is how often the key set is re-read in the
	// background (default 5m).
	JWKSRefreshInterval time.Duration
	// MinRefreshInterval is the least time between two key set fetches
	// caused by tokens with unknown kids (default 5s). Callers arriving
	// while a fetch is in flight share it.
	MinRefreshInterval time.Duration
	// CacheSize bounds the verified-token cache (0 = DefaultCacheSize,
	// negative = no cache).
	CacheSize int
	// DisableSSE makes the verifier poll instead of following the
	// revocation event stream.
	DisableSSE bool
	// PollInterval is the polling period while the event stream is down
	// or disabled (default 500ms, so that even polling meets the one-second
	// propagation target).
	PollInterval time.Duration
	// Logger receives warnings about sync problems (default
	// slog.Default()). Token values are never logged.
	Logger *slog.Logger
	// KeySet checks signatures instead of the issuer's JWKS (default: the
	// jwks_uri of the issuer's metadata, refreshed as JWKSRefreshInterval
	// and MinRefreshInterval say). A custom set refreshes itself; tokens
	// answered from the cache are not re-checked against it, and a kid the
	// revocation list withdraws is refused whatever it says.
	KeySet KeySet
}

func (c Config) withDefaults() Config {
	switch {
	case c.Leeway == 0:
		c.Leeway = DefaultLeeway
	case c.Leeway < 0:
		c.Leeway = 0
	}
	if c.MaxStaleness <= 0 {
		c.MaxStaleness = DefaultMaxStaleness
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.JWKSRefreshInterval <= 0 {
		c.JWKSRefreshInterval = DefaultJWKSRefreshInterval
	}
	if c.MinRefreshInterval <= 0 {
		c.MinRefreshInterval = DefaultMinRefreshInterval
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// requestTimeout bounds one background request (the client may bound it
// further).
func (c Config) requestTimeout() time.Duration { return 10 * time.Second }

// Verifier checks tokens of one issuer. It is safe for concurrent use.
type Verifier struct {
	cfg       Config
	issuer    string
	jwksURL   string
	listURL   string
	eventsURL string
	entryURL  string // a template: {token_id} stands for the id
	hc        *http.Client
	stream    *http.Client
	log       *slog.Logger

	// keySet checks signatures: Config.KeySet, or jwks.
	keySet KeySet
	// jwks is the default key set (keyset.go); nil with Config.KeySet.
	jwks *jwksKeySet

	rev revState
	// gen changes whenever keys or the revocation list change; a cache
	// entry checked at the current gen needs no re-check.
	gen      atomic.Uint64
	lastSync atomic.Int64 // Config.Now() of the last good sync, Unix ns

	cache *tokenCache

	confirmMu  sync.Mutex
	confirming map[string]*confirmCall

	bg        context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// metadata is the part of RFC 8414 metadata the verifier reads. Every URL
// it fetches comes from here; the events and entry URLs fall back to the
// list URL's sub-paths for issuers that predate them.
type metadata struct {
	Issuer              string `json:"issuer"`
	JWKSURI             string `json:"jwks_uri"`
	RevocationListURI   string `json:"revocation_list_uri"`
	RevocationEventsURI string `json:"revocation_events_uri"`
	// RevocationEntryURI is a URI template (RFC 6570, level 1) with the
	// one variable {token_id}.
	RevocationEntryURI string `json:"revocation_entry_uri"`
}

// New discovers the issuer, loads its keys and revocation snapshot, and
// starts syncing in the background until Close. It fails when any of the
// three cannot be read: a verifier never starts without a list.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	cfg = cfg.withDefaults()
	if cfg.Leeway > revocation.ExpiryGrace {
		return nil, fmt.Errorf("verifier: Leeway %s exceeds %s, how long revocations outlive their tokens", cfg.Leeway, revocation.ExpiryGrace)
	}
	u, err := url.Parse(cfg.IssuerURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("verifier: issuer URL %q is not an http(s) URL", cfg.IssuerURL)
	}
	v := &Verifier{
		cfg:        cfg,
		issuer:     cfg.IssuerURL,
		hc:         cfg.HTTPClient,
		stream:     &http.Client{Transport: cfg.HTTPClient.Transport, CheckRedirect: cfg.HTTPClient.CheckRedirect, Jar: cfg.HTTPClient.Jar},
		log:        cfg.Logger,
		rev:        newRevState(),
		confirming: map[string]*confirmCall{},
	}
	if cfg.CacheSize > 0 {
		v.cache = newTokenCache(cfg.CacheSize)
	}
	v.bg, v.cancel = context.WithCancel(context.Background())
	if err := v.start(ctx, u); err != nil {
		v.cancel()
		return nil, fmt.Errorf("verifier: %w", err)
	}
	v.wg.Add(2)
	go v.syncLoop()
	go v.maintain()
	return v, nil
}

func (v *Verifier) start(ctx context.Context, issuer *url.URL) error {
	md, err := v.discover(ctx, issuer)
	if err != nil {
		return err
	}
	v.jwksURL, v.listURL = md.JWKSURI, md.RevocationListURI
	v.eventsURL, v.entryURL = md.RevocationEventsURI, md.RevocationEntryURI
	if v.cfg.KeySet != nil {
		v.keySet = v.cfg.KeySet
	} else {
		// The initial load does not count against MinRefreshInterval: a key
		// rotated right after start is still picked up.
		v.jwks = newJWKSKeySet(v, md.JWKSURI)
		v.keySet = v.jwks
		if err := v.jwks.load(ctx); err != nil {
			return err
		}
	}
	return v.loadSnapshot(ctx, true)
}

// discover reads the RFC 8414 metadata: first at the RFC's location
// (well-known prefix before the issuer's path), then, for issuers with a
// path, appended to it.
func (v *Verifier) discover(ctx context.Context, issuer *url.URL) (metadata, error) {
	const wk = "/.well-known/oauth-authorization-server"
	path := strings.TrimSuffix(issuer.EscapedPath(), "/")
	candidates := []string{issuer.Scheme + "://" + issuer.Host + wk + path}
	if path != "" {
		candidates = append(candidates, issuer.Scheme+"://"+issuer.Host+path+wk)
	}
	var lastErr error
	for _, c := range candidates {
		body, status, err := v.get(ctx, c, 1<<20, nil)
		if err != nil {
			return metadata{}, fmt.Errorf("discover %s: %w", c, err)
		}
		if status != http.StatusOK {
			lastErr = fmt.Errorf("discover %s: status %d", c, status)
			continue
		}
		var md metadata
		if err := json.Unmarshal(body, &md); err != nil {
			return metadata{}, fmt.Errorf("discover %s: decode metadata: %w", c, err)
		}
		if md.Issuer != v.issuer {
			return metadata{}, fmt.Errorf("discover %s: metadata issuer %q is not %q", c, clip(md.Issuer), v.issuer)
		}
		if list := strings.TrimSuffix(md.RevocationListURI, "/"); list != "" {
			if md.RevocationEventsURI == "" {
				md.RevocationEventsURI = list + "/events"
			}
			if md.RevocationEntryURI == "" {
				md.RevocationEntryURI = list + "/{token_id}"
			}
		}
		if !strings.Contains(md.RevocationEntryURI, entryVar) {
			return metadata{}, fmt.Errorf("discover %s: metadata revocation_entry_uri %q lacks %s", c, clip(md.RevocationEntryURI), entryVar)
		}
		for name, s := range map[string]string{
			"jwks_uri":              md.JWKSURI,
			"revocation_list_uri":   md.RevocationListURI,
			"revocation_events_uri": md.RevocationEventsURI,
			"revocation_entry_uri":  strings.Replace(md.RevocationEntryURI, entryVar, "x", 1),
		} {
			if pu, err := url.Parse(s); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" || pu.RawQuery != "" && name == "revocation_list_uri" {
				return metadata{}, fmt.Errorf("discover %s: metadata %s %q is not an http(s) URL", c, name, clip(s))
			}
		}
		return md, nil
	}
	return metadata{}, lastErr
}

// Close stops the background sync. Verify keeps working on the last state
// (and turns stale after MaxStaleness).
func (v *Verifier) Close() {
	v.closeOnce.Do(func() {
		v.cancel()
		v.wg.Wait()
	})
}

// Verify checks tok and returns its claims. The checks, cheapest first:
// shape, header and claims (token.Parse: size, alg, typ, forbidden header
// parameters, strict JSON), exp/nbf/iat with leeway, iss, aud, list
// staleness, then the signature through the KeySet (the default one
// refreshes for an unknown kid, rate-limited), and the revocation list.
// Errors wrap the package's sentinel errors.
func (v *Verifier) Verify(ctx context.Context, tok string) (*Claims, error) {
	now := v.cfg.Now()
	if v.cache != nil {
		if e := v.cache.get(tok); e != nil {
			return v.verifyCached(ctx, e, now)
		}
	}
	t, err := token.Parse(tok)
	if err != nil {
		return nil, parseError(err)
	}
	defer t.Release()
	c := &t.Claims
	if err := v.checkTimes(c, now); err != nil {
		return nil, err
	}
	if c.Issuer != v.issuer {
		return nil, fmt.Errorf("%w: iss %q", ErrIssuer, clip(c.Issuer))
	}
	if err := v.checkAudience(c); err != nil {
		return nil, err
	}
	if err := v.checkStale(now); err != nil {
		return nil, err
	}
	gen := v.gen.Load()
	if err := v.keySet.VerifySignature(ctx, t); err != nil {
		return nil, v.signatureError(c.KeyID, err)
	}
	if err := v.checkRevoked(ctx, c); err != nil {
		return nil, err
	}
	claims := t.Claims // escapes to the heap once, owned by the cache
	if v.cache != nil {
		e := &cacheEntry{claims: &claims}
		e.gen.Store(gen)
		v.cache.put(tok, e)
	}
	return cloneClaims(&claims), nil
}

// parseError puts a token.Parse refusal under the verifier's errors.
func parseError(err error) error {
	var te *token.Error
	if errors.As(err, &te) {
		if te.Err == token.ErrAlgorithm {
			return fmt.Errorf("%w: %s", ErrAlgorithm, te.Reason)
		}
		return fmt.Errorf("%w: %s", ErrMalformed, te.Reason)
	}
	return fmt.Errorf("%w: %v", ErrMalformed, err)
}

// signatureError classifies a KeySet's refusal: an unknown kid that the
// revocation list withdrew is a revoked token.
func (v *Verifier) signatureError(kid string, err error) error {
	switch {
	case errors.Is(err, ErrUnknownKey) && v.withdrawn(kid):
		return fmt.Errorf("%w: its signing key %q was withdrawn", ErrRevoked, clip(kid))
	case errors.Is(err, ErrUnknownKey), errors.Is(err, ErrAlgorithm), errors.Is(err, ErrBadSignature):
		return err
	}
	return fmt.Errorf("verifier: key set: %w", err)
}

// verifyCached re-checks a cached token: time, staleness and, when keys or
// the list changed since its last check, key presence and revocation.
func (v *Verifier) verifyCached(ctx context.Context, e *cacheEntry, now time.Time) (*Claims, error) {
	c := e.claims
	if err := v.checkTimes(c, now); err != nil {
		return nil, err
	}
	if err := v.checkStale(now); err != nil {
		return nil, err
	}
	if gen := v.gen.Load(); e.gen.Load() != gen {
		if v.jwks != nil && !v.jwks.has(c.KeyID) && !v.withdrawn(c.KeyID) {
			return nil, fmt.Errorf("%w: kid %q left the issuer's key set", ErrUnknownKey, clip(c.KeyID))
		}
		if err := v.checkRevoked(ctx, c); err != nil {
			return nil, err
		}
		e.gen.Store(gen)
	}
	return cloneClaims(c), nil
}

func (v *Verifier) withdrawn(kid string) bool {
	v.rev.mu.RLock()
	defer v.rev.mu.RUnlock()
	return v.withdrawnLocked(kid)
}

func (v *Verifier) checkTimes(c *Claims, now time.Time) error {
	if !now.Before(c.Expiry.Add(v.cfg.Leeway)) {
		return &ExpiredError{Expiry: c.Expiry}
	}
	late := now.Add(v.cfg.Leeway)
	if !c.NotBefore.IsZero() && c.NotBefore.After(late) {
		return fmt.Errorf("%w: nbf is %s", ErrNotYetValid, c.NotBefore.UTC().Format(time.RFC3339))
	}
	if !c.IssuedAt.IsZero() && c.IssuedAt.After(late) {
		return fmt.Errorf("%w: iat is %s", ErrNotYetValid, c.IssuedAt.UTC().Format(time.RFC3339))
	}
	return nil
}

func (v *Verifier) checkAudience(c *Claims) error {
	if v.cfg.Audience == "" {
		return nil
	}
	for _, a := range c.Audience {
		if a == v.cfg.Audience {
			return nil
		}
	}
	return fmt.Errorf("%w: aud does not contain %q", ErrAudience, v.cfg.Audience)
}

func (v *Verifier) checkStale(now time.Time) error {
	if v.cfg.FailOpen {
		return nil
	}
	if age := time.Duration(now.UnixNano() - v.lastSync.Load()); age > v.cfg.MaxStaleness {
		return fmt.Errorf("%w: last synced %s ago (max %s)", ErrStale, age.Round(time.Second), v.cfg.MaxStaleness)
	}
	return nil
}

func (v *Verifier) markSynced() { v.lastSync.Store(v.cfg.Now().UnixNano()) }

// get fetches u and returns at most limit bytes of body and the status.
// Non-2xx bodies are discarded.
func (v *Verifier) get(ctx context.Context, u string, limit int64, hdr http.Header) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, err
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := v.hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil, resp.StatusCode, nil
	}
	var buf bytes.Buffer
	if resp.ContentLength > 0 && resp.ContentLength <= limit {
		buf.Grow(int(resp.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("read %s: %w", u, err)
	}
	if n > limit {
		return nil, resp.StatusCode, fmt.Errorf("read %s: body exceeds %d bytes", u, limit)
	}
	return buf.Bytes(), resp.StatusCode, nil
}
