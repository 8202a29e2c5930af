// Package verifiertest runs an in-process signet issuer for tests of code
// that verifies signet tokens: it serves RFC 8414 metadata, a JWKS, and the
// revocation list (snapshot, deltas, Server-Sent Events, single-id
// lookups) in the formats of the revocation package, and signs tokens the
// way signet does.
//
//	iss := verifiertest.NewIssuer(t)
//	v, err := verifier.New(ctx, verifier.Config{IssuerURL: iss.URL()})
//	tok := iss.SignToken(t, verifiertest.Claims{"sub": "alice", "scope": "reports:read"})
//	iss.Revoke(verifiertest.TokenID(t, tok))
package verifiertest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/signet-auth/signet/revocation"
)

// Claims are JWT claims for SignToken. Keys left out get defaults; a key
// set to nil is left out of the token.
type Claims map[string]any

// Default claim values of SignToken.
const (
	DefaultSubject   = "alice"
	DefaultOrg       = "acme"
	DefaultTokenType = "personal"
	DefaultLifetime  = time.Hour
)

type options struct {
	alg        string
	filterBits uint
	filterK    uint
	now        func() time.Time
	keepAlive  time.Duration
	maxDelta   uint64
}

// Option configures NewIssuer.
type Option func(*options)

// WithAlgorithm makes the issuer sign with alg: "EdDSA" (default), "ES256"
// or "RS256".
func WithAlgorithm(alg string) Option { return func(o *options) { o.alg = alg } }

// WithFilter makes snapshots use a bloom filter of bits bits and hashes
// hash functions whatever the count, so that tests can force false
// positives (WithFilter(1, 1) matches every id once anything is revoked).
func WithFilter(bits, hashes uint) Option {
	return func(o *options) { o.filterBits, o.filterK = max(bits, 1), max(hashes, 1) }
}

// WithNow sets the issuer's clock (default time.Now): default iat, nbf
// and exp of signed tokens, and which revocations have expired.
func WithNow(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithKeepAlive sets the interval of keep-alive comments on the event
// stream (default 15s).
func WithKeepAlive(d time.Duration) Option { return func(o *options) { o.keepAlive = d } }

// WithMaxDelta sets how far behind a client may be before deltas and
// stream resumes answer 410 / "reset" (default 10000).
func WithMaxDelta(n uint64) Option { return func(o *options) { o.maxDelta = n } }

type signingKey struct {
	kid       string
	alg       string
	signer    crypto.Signer
	public    jwk.Key
	withdrawn bool
}

// Issuer is an in-process signet issuer on a loopback httptest server.
type Issuer struct {
	opts options
	srv  *httptest.Server

	mu       sync.Mutex
	keys     []*signingKey // the last one signs
	entries  []revocation.Entry
	seq      uint64
	epoch    string // the log's identity (see revocation.Cursor)
	head     string // the tag of entry seq
	tags     map[uint64]string
	logGen   int                  // bumped when the log is restored or replaced
	expiries map[string]time.Time // jti → exp of tokens signed here
	down     bool
	changed  chan struct{} // closed and replaced on every change
	requests map[string]int
	closing  chan struct{}
}

// NewIssuer starts an issuer; it stops when the test ends.
func NewIssuer(tb testing.TB, opts ...Option) *Issuer {
	tb.Helper()
	o := options{alg: "EdDSA", now: time.Now, keepAlive: 15 * time.Second, maxDelta: 10000}
	for _, opt := range opts {
		opt(&o)
	}
	i := &Issuer{
		opts:     o,
		expiries: map[string]time.Time{},
		epoch:    randomID(),
		tags:     map[uint64]string{},
		changed:  make(chan struct{}),
		requests: map[string]int{},
		closing:  make(chan struct{}),
	}
	i.keys = append(i.keys, newKey(tb, o.alg))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", i.serveMetadata)
	mux.HandleFunc("GET /.well-known/jwks.json", i.serveJWKS)
	mux.HandleFunc("GET /revocations", i.serveList)
	mux.HandleFunc("GET /revocations/events", i.serveEvents)
	mux.HandleFunc("GET /revocations/{id}", i.serveOne)
	i.srv = httptest.NewServer(i.gate(mux))
	tb.Cleanup(func() {
		close(i.closing)
		i.srv.CloseClientConnections()
		i.srv.Close()
	})
	return i
}

func newKey(tb testing.TB, alg string) *signingKey {
	tb.Helper()
	var signer crypto.Signer
	var err error
	switch alg {
	case "EdDSA":
		_, signer, err = ed25519.GenerateKey(rand.Reader)
	case "ES256":
		signer, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		signer, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		tb.Fatalf("verifiertest: unsupported algorithm %q", alg)
	}
	if err != nil {
		tb.Fatalf("verifiertest: generate %s key: %v", alg, err)
	}
	pub, err := jwk.FromRaw(signer.Public())
	if err != nil {
		tb.Fatalf("verifiertest: JWK of %s key: %v", alg, err)
	}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		tb.Fatalf("verifiertest: thumbprint: %v", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(tp)
	for k, v := range map[string]any{jwk.KeyIDKey: kid, jwk.AlgorithmKey: alg, jwk.KeyUsageKey: "sig"} {
		if err := pub.Set(k, v); err != nil {
			tb.Fatalf("verifiertest: set %s: %v", k, err)
		}
	}
	return &signingKey{kid: kid, alg: alg, signer: signer, public: pub}
}

// URL is the issuer's URL (its iss).
func (i *Issuer) URL() string { return i.srv.URL }

// KeyID is the kid of the current signing key.
func (i *Issuer) KeyID() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.keys[len(i.keys)-1].kid
}

// PublicKey is the current signing key's public key (for crafting attack
// tokens, e.g. HMAC with the public key as secret).
func (i *Issuer) PublicKey() crypto.PublicKey {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.keys[len(i.keys)-1].signer.Public()
}

// RotateKey makes a new key (of the issuer's algorithm) the signing key;
// earlier keys stay published. It returns the new kid.
func (i *Issuer) RotateKey(tb testing.TB) string {
	tb.Helper()
	k := newKey(tb, i.opts.alg)
	i.mu.Lock()
	i.keys = append(i.keys, k)
	i.mu.Unlock()
	return k.kid
}

// SetDown makes every endpoint answer 503 (and ends open event streams)
// while down is true, to simulate an outage.
func (i *Issuer) SetDown(down bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.down = down
	i.notifyLocked()
}

// Requests reports how many requests reached path (e.g.
// "/.well-known/jwks.json", "/revocations", "/revocations/events",
// "/revocations/{id}" for all single-id lookups), including 503 answers.
func (i *Issuer) Requests(path string) int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.requests[path]
}

// Version is the revocation list's current version.
func (i *Issuer) Version() uint64 {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.seq
}

// SignToken signs a token like signet does: header alg of the current key,
// its kid, typ at+jwt; claims iss, sub, org, token_type, iat, nbf, exp
// (+1h), jti (128 random bits) by default, overridden by claims.
func (i *Issuer) SignToken(tb testing.TB, claims Claims) string {
	tb.Helper()
	return i.SignTokenWithHeader(tb, nil, claims)
}

// SignTokenWithHeader is SignToken with header parameters added to (or,
// when nil, removed from) the default header; the signature is made with
// the current key whatever the header says.
func (i *Issuer) SignTokenWithHeader(tb testing.TB, header map[string]any, claims Claims) string {
	tb.Helper()
	i.mu.Lock()
	k := i.keys[len(i.keys)-1]
	i.mu.Unlock()
	now := i.opts.now()
	c := map[string]any{
		"iss":        i.URL(),
		"sub":        DefaultSubject,
		"org":        DefaultOrg,
		"token_type": DefaultTokenType,
		"iat":        now.Unix(),
		"nbf":        now.Unix(),
		"exp":        now.Add(DefaultLifetime).Unix(),
		"jti":        NewTokenID(tb),
	}
	merge(c, claims)
	h := map[string]any{"alg": k.alg, "kid": k.kid, "typ": "at+jwt"}
	merge(h, header)
	tok := Sign(tb, k.signer, h, c)
	if jti, ok := c["jti"].(string); ok {
		if exp, ok := c["exp"].(int64); ok {
			i.mu.Lock()
			i.expiries[jti] = time.Unix(exp, 0)
			i.mu.Unlock()
		}
	}
	return tok
}

func merge(dst, src map[string]any) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
		} else {
			dst[k] = v
		}
	}
}

// NewTokenID returns a fresh 128-bit base64url token id.
func NewTokenID(tb testing.TB) string {
	tb.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		tb.Fatalf("verifiertest: random id: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// SignRaw signs header and claims given as raw JSON bytes (for tests of
// odd JSON: duplicate members, escapes) with the current key.
func (i *Issuer) SignRaw(tb testing.TB, header, claims []byte) string {
	tb.Helper()
	i.mu.Lock()
	k := i.keys[len(i.keys)-1]
	i.mu.Unlock()
	input := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims)
	return signInput(tb, k.signer, input)
}

// Sign makes a compact JWS of header and claims with signer: Ed25519,
// ECDSA P-256 (r||s) or RSA PKCS #1 v1.5 with SHA-256, whatever header's
// alg says. Tests use it to craft tokens with foreign keys.
func Sign(tb testing.TB, signer crypto.Signer, header, claims map[string]any) string {
	tb.Helper()
	return signInput(tb, signer, encodePart(tb, header)+"."+encodePart(tb, claims))
}

func signInput(tb testing.TB, signer crypto.Signer, input string) string {
	tb.Helper()
	var sig []byte
	var err error
	switch s := signer.(type) {
	case ed25519.PrivateKey:
		sig = ed25519.Sign(s, []byte(input))
	case *ecdsa.PrivateKey:
		h := sha256.Sum256([]byte(input))
		r, ss, serr := ecdsa.Sign(rand.Reader, s, h[:])
		if err = serr; err == nil {
			sig = make([]byte, 64)
			r.FillBytes(sig[:32])
			ss.FillBytes(sig[32:])
		}
	case *rsa.PrivateKey:
		h := sha256.Sum256([]byte(input))
		sig, err = rsa.SignPKCS1v15(rand.Reader, s, crypto.SHA256, h[:])
	default:
		tb.Fatalf("verifiertest: unsupported signer %T", signer)
	}
	if err != nil {
		tb.Fatalf("verifiertest: sign: %v", err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func encodePart(tb testing.TB, v map[string]any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("verifiertest: encode JOSE part: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// TokenID returns the jti of a token (without verifying it).
func TokenID(tb testing.TB, token string) string {
	tb.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		tb.Fatalf("verifiertest: not a compact JWS")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		tb.Fatalf("verifiertest: payload: %v", err)
	}
	var c struct {
		JTI string `json:"jti"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		tb.Fatalf("verifiertest: payload: %v", err)
	}
	return c.JTI
}

// Revoke puts a token id on the revocation list (until the token's expiry
// when it was signed here, else for a day) and returns the entry's Seq.
func (i *Issuer) Revoke(id string) uint64 {
	i.mu.Lock()
	defer i.mu.Unlock()
	exp, ok := i.expiries[id]
	if !ok {
		exp = i.opts.now().Add(24 * time.Hour)
	}
	return i.appendLocked(revocation.Entry{Kind: revocation.KindToken, TokenID: id, ExpiresAt: exp})
}

// RevokeFrom puts a token id on the revocation list from validUntil on:
// the token stays valid until then (a token regenerated with a grace
// period). It returns the entry's Seq.
func (i *Issuer) RevokeFrom(id string, validUntil time.Time) uint64 {
	i.mu.Lock()
	defer i.mu.Unlock()
	exp, ok := i.expiries[id]
	if !ok {
		exp = i.opts.now().Add(24 * time.Hour)
	}
	return i.appendLocked(revocation.Entry{Kind: revocation.KindToken, TokenID: id, ValidUntil: validUntil, ExpiresAt: exp})
}

// RevokeSubject revokes every token of org/subject issued before
// notBefore, as removing a user does.
func (i *Issuer) RevokeSubject(org, subject string, notBefore time.Time) uint64 {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.appendLocked(revocation.Entry{Kind: revocation.KindSubject, Org: org, Subject: subject,
		NotBefore: notBefore, ExpiresAt: notBefore.Add(24 * time.Hour)})
}

// RevokeSubjectUntil is RevokeSubject with the entry expiring at expires
// (the issuer computes it from its maximum token lifetime).
func (i *Issuer) RevokeSubjectUntil(org, subject string, notBefore, expires time.Time) uint64 {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.appendLocked(revocation.Entry{Kind: revocation.KindSubject, Org: org, Subject: subject,
		NotBefore: notBefore, ExpiresAt: expires})
}

// RevokeKey withdraws a key: it leaves the JWKS and enters the list.
func (i *Issuer) RevokeKey(kid string) uint64 {
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, k := range i.keys {
		if k.kid == kid {
			k.withdrawn = true
		}
	}
	return i.appendLocked(revocation.Entry{Kind: revocation.KindKey, KeyID: kid,
		ExpiresAt: i.opts.now().Add(24 * time.Hour)})
}

func (i *Issuer) appendLocked(e revocation.Entry) uint64 {
	i.seq++
	e.Seq = i.seq
	e.Tag = randomID()
	e.RevokedAt = i.opts.now().UTC()
	i.entries = append(i.entries, e)
	i.head = e.Tag
	i.tags[e.Seq] = e.Tag
	i.notifyLocked()
	return e.Seq
}

// RestoreLog makes the log what a database restored from a backup taken at
// version would hold: the entries after it are gone, and new ones reuse
// their Seqs (with new tags); the epoch stays. Open event streams end.
func (i *Issuer) RestoreLog(version uint64) {
	i.mu.Lock()
	defer i.mu.Unlock()
	kept := i.entries[:0:0]
	for _, e := range i.entries {
		if e.Seq <= version {
			kept = append(kept, e)
		}
	}
	for seq := range i.tags {
		if seq > version {
			delete(i.tags, seq)
		}
	}
	i.entries, i.seq, i.head = kept, version, i.tags[version]
	i.logGen++
	i.notifyLocked()
}

// ReplaceLog starts a new, empty log with a new epoch, as a new database
// would. Open event streams end.
func (i *Issuer) ReplaceLog() {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.entries, i.seq, i.head, i.tags, i.epoch = nil, 0, "", map[uint64]string{}, randomID()
	i.logGen++
	i.notifyLocked()
}

func (i *Issuer) generation() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.logGen
}

// Epoch is the log's current epoch.
func (i *Issuer) Epoch() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.epoch
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

func (i *Issuer) notifyLocked() {
	close(i.changed)
	i.changed = make(chan struct{})
}

// gate counts requests and answers 503 while down.
func (i *Issuer) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		if strings.HasPrefix(path, "/revocations/") && path != "/revocations/events" {
			path = "/revocations/{id}"
		}
		i.mu.Lock()
		i.requests[path]++
		down := i.down
		i.mu.Unlock()
		if down {
			http.Error(w, `{"error":"unavailable","message":"down for the test"}`, http.StatusServiceUnavailable)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (i *Issuer) serveMetadata(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{
		"issuer":                                i.URL(),
		"jwks_uri":                              i.URL() + "/.well-known/jwks.json",
		"revocation_list_uri":                   i.URL() + "/revocations",
		"revocation_events_uri":                 i.URL() + "/revocations/events",
		"revocation_entry_uri":                  i.URL() + "/revocations/{token_id}",
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic"},
	})
}

func (i *Issuer) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	set := jwk.NewSet()
	i.mu.Lock()
	for _, k := range i.keys {
		if !k.withdrawn {
			_ = set.AddKey(k.public) // a fresh set takes any key
		}
	}
	i.mu.Unlock()
	writeJSON(w, set)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// cursorLocked is the log's current position.
func (i *Issuer) cursorLocked() revocation.Cursor {
	return revocation.Cursor{Version: i.seq, Epoch: i.epoch, Tag: i.head}
}

// continues reports whether a reader at c is on the current log: a bare
// version is taken on trust; a full cursor must name the log's epoch and a
// version it reached with the same tag.
func (i *Issuer) continues(c revocation.Cursor) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	if c.Epoch == "" {
		return true
	}
	tag, ok := i.tags[c.Version]
	return c.Epoch == i.epoch && c.Version <= i.seq && (c.Version == 0 || (ok && tag == c.Tag))
}

// cursor is the log's current position.
func (i *Issuer) cursor() revocation.Cursor {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.cursorLocked()
}

// view returns the live entries and the version.
func (i *Issuer) view() ([]revocation.Entry, uint64, <-chan struct{}, bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	now := i.opts.now()
	live := make([]revocation.Entry, 0, len(i.entries))
	for _, e := range i.entries {
		if e.ExpiresAt.After(now) {
			live = append(live, e)
		}
	}
	return live, i.seq, i.changed, i.down
}

func (i *Issuer) tooOld(since, version uint64) bool {
	return since > version || version-since > i.opts.maxDelta
}

func (i *Issuer) serveList(w http.ResponseWriter, r *http.Request) {
	entries, version, _, _ := i.view()
	cur := i.cursor()
	w.Header().Set("Cache-Control", "no-cache")
	if r.URL.Query().Has("since") {
		c, err := revocation.ParseCursor(r.URL.Query().Get("since"))
		if err != nil {
			http.Error(w, `{"error":"invalid_request","message":"bad since"}`, http.StatusBadRequest)
			return
		}
		since := c.Version
		if i.tooOld(since, version) || !i.continues(c) {
			http.Error(w, `{"error":"gone","message":"too old"}`, http.StatusGone)
			return
		}
		d := revocation.Delta{From: since, Version: version, Epoch: cur.Epoch, Tag: cur.Tag, Entries: []revocation.Entry{}}
		for _, e := range entries {
			if e.Seq > since {
				d.Entries = append(d.Entries, e)
			}
		}
		writeJSON(w, d)
		return
	}
	etag := `"` + cur.String() + `"`
	w.Header().Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	now := i.opts.now()
	var snap *revocation.Snapshot
	if i.opts.filterBits > 0 {
		var ids []string
		for _, e := range entries {
			if e.Kind == revocation.KindToken {
				ids = append(ids, e.TokenID)
			}
		}
		snap = revocation.NewSnapshotWithFilter(version, now, ids, i.opts.filterBits, i.opts.filterK)
		full := revocation.NewSnapshot(version, now, entries, 0)
		snap.Subjects, snap.Keys = full.Subjects, full.Keys
	} else {
		snap = revocation.NewSnapshot(version, now, entries, 0)
	}
	snap.Epoch, snap.Tag = cur.Epoch, cur.Tag
	b, err := snap.MarshalBinary()
	if err != nil {
		http.Error(w, `{"error":"internal","message":"encode"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", revocation.ContentType)
	_, _ = w.Write(b)
}

func (i *Issuer) serveOne(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	entries, _, _, _ := i.view()
	for _, e := range entries {
		if e.Kind == revocation.KindToken && e.TokenID == id {
			writeJSON(w, e)
			return
		}
	}
	http.Error(w, `{"error":"not_found","message":"not revoked"}`, http.StatusNotFound)
}

func (i *Issuer) serveEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	resume := r.Header.Get("Last-Event-ID")
	if resume == "" {
		resume = r.URL.Query().Get("since")
	}
	entries, version, changed, down := i.view()
	if down {
		// Gone down between the request's gate and here: the change
		// that said so was signalled before this stream took changed.
		http.Error(w, `{"error":"unavailable","message":"down for the test"}`, http.StatusServiceUnavailable)
		return
	}
	cur := i.cursor()
	var last uint64
	reset := false
	if resume == "" {
		last = version
	} else {
		c, err := revocation.ParseCursor(resume)
		if err != nil {
			http.Error(w, `{"error":"invalid_request","message":"bad Last-Event-ID"}`, http.StatusBadRequest)
			return
		}
		last = c.Version
		if i.tooOld(c.Version, version) || !i.continues(c) {
			reset, last = true, version
		}
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	hello, _ := json.Marshal(map[string]any{"version": version, "epoch": cur.Epoch, "tag": cur.Tag})
	fmt.Fprintf(w, "event: hello\ndata: %s\n\n", hello)
	if reset {
		fmt.Fprintf(w, "event: reset\ndata: %s\n\n", hello)
	}
	epoch := cur.Epoch
	gen := i.generation()
	send := func(entries []revocation.Entry) {
		sort.Slice(entries, func(a, b int) bool { return entries[a].Seq < entries[b].Seq })
		for _, e := range entries {
			if e.Seq <= last {
				continue
			}
			last = e.Seq
			e.Epoch = epoch
			data, _ := json.Marshal(e)
			c := revocation.Cursor{Version: e.Seq, Epoch: epoch, Tag: e.Tag}
			fmt.Fprintf(w, "id: %s\nevent: revocation\ndata: %s\n\n", c, data)
		}
		fl.Flush()
	}
	send(entries)
	ka := time.NewTicker(i.opts.keepAlive)
	defer ka.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-i.closing:
			return
		case <-ka.C:
			fmt.Fprint(w, ": keep-alive\n\n")
			fl.Flush()
		case <-changed:
			var down bool
			entries, _, changed, down = i.view()
			if down || i.generation() != gen {
				return // the log was replaced or restored: the client resumes and is reset
			}
			send(entries)
		}
	}
}
