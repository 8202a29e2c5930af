package issuer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/signet-auth/signet/keys"
	"github.com/signet-auth/signet/store"
)

func TestJWKS(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/.well-known/jwks.json")
	wantStatus(t, r, 200)
	if got := r.header.Get("Cache-Control"); got != "public, max-age=300" {
		t.Errorf("Cache-Control: got %q, want public, max-age=300", got)
	}
	etag := r.header.Get("ETag")
	if etag != `"`+e.keys.JWKSVersion()+`"` {
		t.Errorf("ETag: got %q, want the quoted JWKS version %q", etag, e.keys.JWKSVersion())
	}
	if !bytes.Equal(r.body, e.keys.JWKS()) {
		t.Errorf("body: got %s, want the key set", r.body)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	r.decode(t, &set)
	if len(set.Keys) == 0 || set.Keys[0]["kid"] == nil || set.Keys[0]["use"] != "sig" || set.Keys[0]["alg"] != "ES256" {
		t.Errorf("keys: got %v, want kid, use sig, alg ES256 (the default)", set.Keys)
	}
	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
		r := e.do("GET", "/.well-known/jwks.json", header("If-None-Match", inm))
		if r.status != 304 || len(r.body) != 0 {
			t.Errorf("If-None-Match %s: got %d with %d bytes, want 304 and no body", inm, r.status, len(r.body))
		}
	}
	wantStatus(t, e.do("GET", "/.well-known/jwks.json", header("If-None-Match", `"stale"`)), 200)
}

func TestMetadata(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PublicURL = "https://auth.example.com/" })
	r := e.do("GET", "/.well-known/oauth-authorization-server")
	wantStatus(t, r, 200)
	m := r.object(t)
	want := map[string]string{
		"issuer":                 "https://auth.example.com",
		"jwks_uri":               "https://auth.example.com/.well-known/jwks.json",
		"revocation_endpoint":    "https://auth.example.com/revoke",
		"introspection_endpoint": "https://auth.example.com/introspect",
		"revocation_list_uri":    "https://auth.example.com/revocations",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s: got %v, want %s", k, m[k], v)
		}
	}
	if fmt.Sprint(m["revocation_endpoint_auth_methods_supported"]) != "[client_secret_basic]" {
		t.Errorf("revocation auth methods: got %v", m["revocation_endpoint_auth_methods_supported"])
	}
	// Tokens carry the same iss.
	v, _ := e.userToken("bob", nil)
	if cl, _ := e.tokenClaims(v); cl.Issuer != "https://auth.example.com" {
		t.Errorf("iss: got %q, want the metadata issuer", cl.Issuer)
	}
}

// The OpenID Connect discovery document and the RFC 8414 one are the same
// document; its algorithms are those of the published keys and follow a
// rotation to another algorithm.
func TestDiscovery(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PublicURL = "https://auth.example.com/" })
	oidc := e.do("GET", "/.well-known/openid-configuration")
	wantStatus(t, oidc, 200)
	if ct := oidc.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type: got %q, want application/json", ct)
	}
	if cc := oidc.header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("Cache-Control: got %q, want the JWKS's public, max-age=300", cc)
	}
	rfc := e.do("GET", "/.well-known/oauth-authorization-server")
	if !bytes.Equal(oidc.body, rfc.body) {
		t.Errorf("the two documents differ:\n%s\n%s", oidc.body, rfc.body)
	}
	m := oidc.object(t)
	for k, want := range map[string]string{
		"issuer":                                "https://auth.example.com",
		"jwks_uri":                              "https://auth.example.com/.well-known/jwks.json",
		"id_token_signing_alg_values_supported": "[ES256]",
		"subject_types_supported":               "[public]",
		"response_types_supported":              "[]",
		"claims_supported":                      "[iss sub aud exp iat nbf jti org token_type scope]",
	} {
		if got := fmt.Sprint(m[k]); got != want {
			t.Errorf("%s: got %s, want %s", k, got, want)
		}
	}
	for _, absent := range []string{"authorization_endpoint", "token_endpoint", "userinfo_endpoint"} {
		if _, ok := m[absent]; ok {
			t.Errorf("%s is claimed, but signet has none", absent)
		}
	}

	// A rotation to RS256 (another process changed the key directory):
	// both algorithms are published, newest first.
	other, err := keys.Open(keys.Config{Dir: filepath.Join(e.dir, "keys"), Algorithm: "RS256", Now: e.clock.Now})
	if err != nil {
		t.Fatalf("open keys: %v", err)
	}
	if _, err := other.Rotate(false); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	if _, err := e.keys.Reload(); err != nil {
		t.Fatalf("reload: %v", err)
	}
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		m := e.do("GET", path).object(t)
		if got := fmt.Sprint(m["id_token_signing_alg_values_supported"]); got != "[RS256 ES256]" {
			t.Errorf("%s algorithms after the rotation: got %s, want [RS256 ES256]", path, got)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/healthz")
	wantStatus(t, r, 200)
	if string(r.body) != `{"status":"ok"}` {
		t.Errorf("healthz: got %s", r.body)
	}
	// Run loads the revocation list in the background; wait for it.
	var ready *response
	for range 200 {
		if ready = e.do("GET", "/readyz"); ready.status == 200 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	wantStatus(t, ready, 200)
	if got := ready.object(t)["checks"]; fmt.Sprint(got) != "map[keys:ok revocations:ok store:ok]" {
		t.Errorf("checks: got %v", got)
	}

	if err := e.st.Close(); err != nil {
		t.Fatal(err)
	}
	r = e.do("GET", "/readyz")
	wantStatus(t, r, 503)
	m := r.object(t)
	if m["status"] != "unavailable" || fmt.Sprint(m["checks"].(map[string]any)["store"]) != "unavailable" {
		t.Errorf("readyz with the store closed: got %v", m)
	}
	if strings.Contains(strings.ToLower(string(r.body)), "sql") || strings.Contains(string(r.body), e.dir) {
		t.Errorf("readyz shows internals: %s", r.body)
	}
	wantStatus(t, e.do("GET", "/healthz"), 200)
}

func TestErrorShapes(t *testing.T) {
	var logs syncBuffer
	e := newEnv(t, func(c *Config) {
		c.BodyLimit = 1024
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	e.srv.App().Get("/test-panic", func(*fiber.Ctx) error { panic("boom: secret detail") })
	e.srv.App().Get("/test-internal", func(*fiber.Ctx) error {
		return fmt.Errorf("query failed: %w", errors.New("sqlite: disk I/O error at /var/secret"))
	})
	e.srv.App().Get("/test-store-conflict", func(*fiber.Ctx) error { return fmt.Errorf("x: %w", store.ErrConflict) })
	cases := []struct {
		name   string
		method string
		path   string
		opts   []reqOpt
		status int
		code   string
	}{
		{"unknown route", "GET", "/nope", nil, 404, ECodeNotFound},
		{"wrong method", "PATCH", "/tokens", nil, 405, ECodeInvalid},
		{"unknown method", "FOO", "/tokens", nil, 400, ECodeInvalid},
		{"unknown method on an unknown route", "PROPFIND", "/nope", nil, 400, ECodeInvalid},
		{"token near the size limit in the query", "GET", "/user-token?token=" + strings.Repeat("a", maxTokenLen), []reqOpt{as("alice")}, 400, ECodeInvalidToken},
		{"token past the size limit in the query", "GET", "/user-token?token=" + strings.Repeat("a", maxTokenLen+1), []reqOpt{as("alice")}, 400, ECodeInvalidToken},
		{"panic", "GET", "/test-panic", nil, 500, ECodeInternal},
		{"internal error", "GET", "/test-internal", nil, 500, ECodeInternal},
		{"store conflict", "GET", "/test-store-conflict", nil, 409, ECodeConflict},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.opts...)
			wantError(t, r, tc.status, tc.code)
			for _, leak := range []string{"boom", "secret", "sqlite", "/var"} {
				if strings.Contains(string(r.body), leak) {
					t.Errorf("body %s shows internals (%q)", r.body, leak)
				}
			}
		})
	}
	if !strings.Contains(logs.String(), "disk I/O error") {
		t.Errorf("internal error not logged: %s", logs.String())
	}

	t.Run("body too large", func(t *testing.T) {
		// fasthttp refuses the body while reading it, which app.Test
		// cannot show; a real connection can.
		base := e.serve()
		req, err := http.NewRequest("POST", base+"/user-token", strings.NewReader(`{"name":"`+strings.Repeat("x", 2000)+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("alice", passwordOf("alice"))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		wantError(t, &response{status: resp.StatusCode, header: resp.Header, body: body}, 413, ECodeInvalid)
	})

	t.Run("store failure is a 500 without internals", func(t *testing.T) {
		if err := e.st.Close(); err != nil {
			t.Fatal(err)
		}
		r := e.do("POST", "/user-token", as("alice"))
		wantError(t, r, 500, ECodeInternal)
		if strings.Contains(strings.ToLower(string(r.body)), "sql") || strings.Contains(string(r.body), "closed") {
			t.Errorf("body shows internals: %s", r.body)
		}
	})
}

// TestNoSecretsInLogs: a full session of calls logs neither passwords nor
// token values.
func TestNoSecretsInLogs(t *testing.T) {
	var logs syncBuffer
	e := newEnv(t, func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	value, _ := e.userToken("bob", nil)
	e.do("GET", "/user-token?token="+value, as("bob"))
	e.do("GET", "/user-token?token="+value+"x", as("bob"))
	e.do("POST", "/introspect", as("bob"), form("token", value))
	e.do("POST", "/revoke", as("bob"), form("token", value))
	e.do("GET", "/tokens", basic("bob", "Wrong-Secret-77"))
	e.do("PUT", "/users/bob/password", as("bob"), jsonBody(`{"password":"New-Secret-88"}`))
	out := logs.String()
	for _, secret := range []string{value, strings.Split(value, ".")[2], passwordOf("bob"), "Wrong-Secret-77", "New-Secret-88"} {
		if strings.Contains(out, secret) {
			t.Errorf("logs contain a secret: %s", out)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestMetrics(t *testing.T) {
	e := newEnv(t)
	e.userToken("bob", nil)
	_, tok := e.createToken("alice", map[string]any{"name": "m", "type": "administrative"})
	wantStatus(t, e.do("DELETE", "/tokens/"+tok.TokenID, as("alice")), 204)
	e.do("GET", "/tokens", basic("bob", "wrong-wrong"))
	r := e.do("GET", "/metrics")
	wantStatus(t, r, 200)
	for _, want := range []string{
		`signet_tokens_issued_total{type="personal"} 1`,
		`signet_tokens_issued_total{type="administrative"} 1`,
		`signet_revocations_total{cause="token"} 1`,
		`signet_login_failures_total 1`,
		`signet_http_requests_total{method="POST",route="/user-token",status="200"} 1`,
		`signet_http_requests_total{method="DELETE",route="/tokens/:id",status="204"} 1`,
		`signet_http_requests_total{method="GET",route="/tokens",status="401"} 1`,
		`signet_hash_pool_wait_seconds_count`,
	} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	e.do("GET", "/random/path/123")
	r = e.do("GET", "/metrics")
	if strings.Contains(string(r.body), "/random/path") || !strings.Contains(string(r.body), `route="unmatched"`) {
		t.Error("unmatched paths must share one route label")
	}
}

// FuzzTokenRequest: body parsing, lifetimes and scopes never panic, and
// every refusal is an *Error a client may see.
func FuzzTokenRequest(f *testing.F) {
	for _, seed := range []string{
		``, `{}`, `{"expires_in":"72h"}`, `{"expires_in":3600}`, `{"expires_in":"3600"}`,
		`{"expires_at":"2026-12-01T00:00:00Z"}`, `{"expires_in":"1h","expires_at":"2026-12-01T00:00:00Z"}`,
		`{"scopes":["a:read","b:*"]}`, `{"scopes":[]}`, `{"preset":"extended"}`, `{"name":"x","unknown":1}`,
		`{"expires_in":-1}`, `{"expires_in":1e400}`, `{"expires_in":"9999999999999h"}`, `{"scopes":["*x"]}`,
		`{"name":"a","description":"b","type":"administrative"}`, `[`, `{"scopes":[null]}`, "{\"name\":\"\xff\"}",
		`{"expires_in":null,"expires_at":null}`, `{} trailing`,
	} {
		f.Add(seed)
	}
	cfg, err := Config{Presets: map[string][]string{"extended": {"reports:read"}}}.withDefaults()
	if err != nil {
		f.Fatal(err)
	}
	s := &Service{cfg: cfg, now: func() time.Time { return testStart }}
	f.Fuzz(func(t *testing.T, body string) {
		check := func(err error) {
			var e *Error
			if err != nil && (!errors.As(err, &e) || statusOf[e.Code] < 400 || statusOf[e.Code] >= 500) {
				t.Fatalf("body %q: got error %v, want a 4xx *Error", body, err)
			}
		}
		var ut userTokenRequest
		if err := decodeJSON("application/json", []byte(body), &ut); err != nil {
			check(err)
		} else {
			_, err := s.resolveScopes([]string{"*"}, ut.Scopes, ut.Preset)
			check(err)
			d, err := s.lifetime(expiry{In: ut.ExpiresIn, At: ut.ExpiresAt}, time.Hour, testStart)
			check(err)
			if err == nil && (d < time.Second || d > s.cfg.MaxTTL || d%time.Second != 0) {
				t.Fatalf("body %q: lifetime %s outside 1s..max or not whole seconds", body, d)
			}
			check(checkLabel("name", ut.Name, maxNameLen, false))
		}
		var ct createTokenRequest
		if err := decodeJSON("", []byte(body), &ct); err != nil {
			check(err)
		} else {
			check(checkLabel("description", ct.Description, maxDescriptionLen, true))
		}
	})
}

func TestPrune(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PruneAfter = time.Hour })
	_, old := e.userToken("bob", map[string]any{"expires_in": "1h"})
	_, fresh := e.userToken("bob", map[string]any{"expires_in": "10h"})
	e.clock.Advance(3 * time.Hour)
	e.srv.prune(context.Background())
	if _, err := e.st.GetToken(context.Background(), old); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("token expired 2h ago with prune-after 1h: got %v, want pruned", err)
	}
	if _, err := e.st.GetToken(context.Background(), fresh); err != nil {
		t.Errorf("live token: got %v, want kept", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.PublicURL != "http://localhost:8080" || cfg.UserTokenTTL != 24*time.Hour || cfg.DefaultTTL != 8760*time.Hour ||
		cfg.MaxTTL != 8760*time.Hour || cfg.BodyLimit != 64<<10 || cfg.MinPasswordLength != 8 || cfg.HashWorkers < 1 ||
		fmt.Sprint(cfg.Roles) != "map[admin:[*] member:[*]]" {
		t.Errorf("defaults: got %+v", cfg)
	}
	bad := []struct {
		name string
		cfg  Config
	}{
		{"relative URL", Config{PublicURL: "auth.example.com"}},
		{"user TTL past max", Config{MaxTTL: time.Hour, UserTokenTTL: 2 * time.Hour}},
		{"default TTL past max", Config{MaxTTL: time.Hour, UserTokenTTL: time.Hour, DefaultTTL: 2 * time.Hour}},
		{"unknown role", Config{Roles: map[string][]string{"root": {"*"}}}},
		{"bad role pattern", Config{Roles: map[string][]string{"member": {"a b"}}}},
		{"bad preset scope", Config{Presets: map[string][]string{"p": {""}}}},
		{"bcrypt cost", Config{BcryptCost: 99}},
		{"short passwords", Config{MinPasswordLength: 4}},
		{"negative window", Config{FailureWindow: -time.Second}},
		{"empty audience", Config{Audience: []string{""}}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.cfg.withDefaults(); err == nil {
				t.Error("got nil error, want the setting refused")
			}
		})
	}
	if _, err := New(Config{}, nil, nil); err == nil {
		t.Error("New without store and keys: got nil error")
	}
}

func TestHashPasswordAndValidateUser(t *testing.T) {
	for _, tc := range []struct {
		pw string
		ok bool
	}{
		{"1234567", false}, {"12345678", true}, {"ääääääää", true}, {strings.Repeat("x", 72), true},
		{strings.Repeat("x", 73), false}, {"\xff\xff\xff\xff\xff\xff\xff\xff", false},
	} {
		h, err := HashPassword(tc.pw, PasswordPolicy{BcryptCost: 4})
		if (err == nil) != tc.ok {
			t.Errorf("HashPassword(len %d): got err %v, want ok=%v", len(tc.pw), err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), tc.pw) {
			t.Errorf("error %q repeats the password", err)
		}
		if err == nil && !strings.HasPrefix(h, "$2a$04$") {
			t.Errorf("hash: got %q, want bcrypt cost 4", h)
		}
	}
	if _, err := HashPassword("1234567890", PasswordPolicy{MinLength: 12, BcryptCost: 4}); err == nil {
		t.Error("MinLength 12: a 10-character password was accepted")
	}
	good := store.User{Username: "a.b-c_1", Org: "acme", Role: store.RoleMember, Email: "a@b.c"}
	if err := ValidateUser(good); err != nil {
		t.Errorf("ValidateUser(%+v): %v", good, err)
	}
	for _, mod := range []func(*store.User){
		func(u *store.User) { u.Username = "" },
		func(u *store.User) { u.Username = "-x" },
		func(u *store.User) { u.Username = "Alice" },
		func(u *store.User) { u.Org = "" },
		func(u *store.User) { u.Org = "a b" },
		func(u *store.User) { u.Role = "root" },
		func(u *store.User) { u.Email = "ab.c" },
		func(u *store.User) { u.Email = "a@" },
		func(u *store.User) { u.Email = "a b@c" },
	} {
		u := good
		mod(&u)
		if err := ValidateUser(u); err == nil {
			t.Errorf("ValidateUser(%+v): got nil error", u)
		}
	}
}

// BenchmarkUserTokenIssue measures POST /user-token's work after the
// password check: body parsing, scope and lifetime rules, claims, signing
// and recording the token in SQLite.
func BenchmarkUserTokenIssue(b *testing.B) {
	e := newEnv(b)
	u, err := e.st.GetUser(context.Background(), "bob")
	if err != nil {
		b.Fatal(err)
	}
	p := &principal{User: u, Scopes: []string{"*"}}
	body := []byte(`{"expires_in":"1h","scopes":["reports:read","bucket:in.c-main:write"]}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		var req userTokenRequest
		if err := decodeJSON("application/json", body, &req); err != nil {
			b.Fatal(err)
		}
		iss, err := e.srv.svc.IssueUserToken(ctx, p, req.issueRequest())
		if err != nil {
			b.Fatal(err)
		}
		value, rec := iss.Value, iss.Record
		if _, err := json.Marshal(userTokenResponse{UserToken: value, TokenID: rec.ID, ExpireTime: rec.ExpiresAt.Format(expireTimeLayout), ExpiresAt: rec.ExpiresAt.Format(time.RFC3339)}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMint is the issue path without the store write.
func BenchmarkMint(b *testing.B) {
	e := newEnv(b)
	g := grant{Type: store.TokenPersonal, Owner: "bob", OwnerID: e.userID("bob"), Org: "acme", Scopes: []string{"reports:read"}, CreatedBy: "bob", Lifetime: time.Hour}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := e.srv.svc.mint(g, testStart); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignOnly is the signature alone (ES256, the default) over a typical payload.
func BenchmarkSignOnly(b *testing.B) {
	e := newEnv(b)
	payload := must(json.Marshal(claims{
		Issuer: testPublicURL, Subject: "bob", IssuedAt: testStart.Unix(), NotBefore: testStart.Unix(),
		Expiry: testStart.Add(time.Hour).Unix(), ID: "AAAAAAAAAAAAAAAAAAAAAA", Org: "acme", TokenType: "personal", Scope: "reports:read",
	}))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := e.keys.Sign(payload); err != nil {
			b.Fatal(err)
		}
	}
}
