package issuer

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/signet-auth/signet/keys"
	"github.com/signet-auth/signet/store"
	"github.com/signet-auth/signet/store/sqlite"
)

// testStart is the injected clock's start.
var testStart = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

// testClock is an injected clock tests move by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testUser is one of the users every environment starts with.
type testUser struct {
	name, org string
	role      store.Role
}

// The cast: two orgs, admins and members.
var testUsers = []testUser{
	{"alice", "acme", store.RoleAdmin},
	{"frank", "acme", store.RoleAdmin},
	{"bob", "acme", store.RoleMember},
	{"carol", "acme", store.RoleMember},
	{"dave", "globex", store.RoleAdmin},
	{"erin", "globex", store.RoleMember},
}

// passwordOf is each test user's password.
func passwordOf(user string) string { return "pw-" + user + "-secret" }

// testPublicURL is the iss of test tokens.
const testPublicURL = "https://signet.test"

// testEnv is a Server on a real SQLite file and a real key directory.
type testEnv struct {
	tb    testing.TB
	srv   *Server
	st    *sqlite.Store
	keys  *keys.Keyring
	clock *testClock
	dir   string
}

// newEnv starts a Server with the test users; mods adjust its Config. Its
// background loops run until the test ends.
func newEnv(tb testing.TB, mods ...func(*Config)) *testEnv {
	tb.Helper()
	dir := tb.TempDir()
	clock := &testClock{t: testStart}
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "signet.db"))
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	kr, err := keys.Open(keys.Config{Dir: filepath.Join(dir, "keys"), Now: clock.Now})
	if err != nil {
		tb.Fatalf("open keys: %v", err)
	}
	cfg := Config{
		PublicURL:      testPublicURL,
		PersonalTokens: true,
		BcryptCost:     bcrypt.MinCost,
		HashWorkers:    2,
		Presets: map[string][]string{
			"extended": {"reports:read", "reports:write"},
			"admin":    {"admin:all"},
		},
		Now:      clock.Now,
		Registry: prometheus.NewRegistry(),
	}
	for _, m := range mods {
		m(&cfg)
	}
	srv, err := New(cfg, st, kr)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	for _, u := range testUsers {
		hash, err := HashPassword(passwordOf(u.name), PasswordPolicy{BcryptCost: bcrypt.MinCost})
		if err != nil {
			tb.Fatalf("hash: %v", err)
		}
		err = st.CreateUser(ctx, store.User{
			Username: u.name, Email: u.name + "@example.com", Org: u.org, Role: u.role,
			PasswordHash: hash, CreatedAt: testStart, UpdatedAt: testStart,
		})
		if err != nil {
			tb.Fatalf("create user %s: %v", u.name, err)
		}
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Run(runCtx)
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
	})
	return &testEnv{tb: tb, srv: srv, st: st, keys: kr, clock: clock, dir: dir}
}

// request describes one HTTP request.
type request struct {
	method, path string
	header       http.Header
	body         []byte
}

// reqOpt adjusts a request.
type reqOpt func(*request)

// as authenticates as a test user with the right password.
func as(user string) reqOpt { return basic(user, passwordOf(user)) }

// basic authenticates with the given credentials.
func basic(user, pass string) reqOpt {
	return authz("Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
}

// authz sets the Authorization header verbatim.
func authz(v string) reqOpt { return header("Authorization", v) }

func header(k, v string) reqOpt { return func(r *request) { r.header.Set(k, v) } }

// jsonBody sends v as JSON (a string is sent verbatim).
func jsonBody(v any) reqOpt {
	return func(r *request) {
		if s, ok := v.(string); ok {
			r.body = []byte(s)
		} else {
			b, err := json.Marshal(v)
			if err != nil {
				panic(err)
			}
			r.body = b
		}
		r.header.Set("Content-Type", "application/json")
	}
}

// rawBody sends body with content type ct ("" for none).
func rawBody(ct, body string) reqOpt {
	return func(r *request) {
		r.body = []byte(body)
		if ct != "" {
			r.header.Set("Content-Type", ct)
		}
	}
}

// form sends url-encoded form fields.
func form(kv ...string) reqOpt {
	return func(r *request) {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		r.body = []byte(v.Encode())
		r.header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
}

// from makes the request come through a trusted proxy for client addr.
func from(addr string) reqOpt { return header("X-Forwarded-For", addr) }

// response is what came back.
type response struct {
	status int
	header http.Header
	body   []byte
}

// object decodes the body as a JSON object.
func (r *response) object(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		tb.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

// decode decodes the body into v.
func (r *response) decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		tb.Fatalf("decode body %q: %v", r.body, err)
	}
}

// do sends a request through the Fiber app in-process.
func (e *testEnv) do(method, path string, opts ...reqOpt) *response {
	e.tb.Helper()
	r := &request{method: method, path: path, header: http.Header{}}
	for _, o := range opts {
		o(r)
	}
	req := httptest.NewRequest(r.method, r.path, bytes.NewReader(r.body))
	req.Header = r.header
	if r.body != nil {
		req.ContentLength = int64(len(r.body))
	}
	resp, err := e.srv.App().Test(req, -1)
	if err != nil {
		e.tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.tb.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: body}
}

// wantStatus fails unless r has status.
func wantStatus(tb testing.TB, r *response, status int) {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("status: got %d, want %d (body %s)", r.status, status, r.body)
	}
}

// wantError checks the error shape: status, code, a message, JSON, and
// the headers that go with 401 and 429.
func wantError(tb testing.TB, r *response, status int, code string) {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("status: got %d, want %d (body %s)", r.status, status, r.body)
	}
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Errorf("Content-Type: got %q, want application/json", ct)
	}
	var e struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil {
		tb.Fatalf("error body %q is not JSON: %v", r.body, err)
	}
	if e.Error != code {
		tb.Errorf("error code: got %q, want %q (message %q)", e.Error, code, e.Message)
	}
	if e.Message == "" {
		tb.Errorf("error message is empty")
	}
	if status == http.StatusUnauthorized {
		if got := r.header.Get("WWW-Authenticate"); got != `Basic realm="signet"` {
			tb.Errorf("WWW-Authenticate: got %q, want %q", got, `Basic realm="signet"`)
		}
	}
	if status == http.StatusTooManyRequests && r.header.Get("Retry-After") == "" {
		tb.Errorf("429 without Retry-After")
	}
}

// userToken gets a token for user with an optional JSON body.
func (e *testEnv) userToken(user string, body any) (value, id string) {
	e.tb.Helper()
	opts := []reqOpt{as(user)}
	if body != nil {
		opts = append(opts, jsonBody(body))
	}
	r := e.do("POST", "/user-token", opts...)
	wantStatus(e.tb, r, http.StatusOK)
	var out userTokenResponse
	r.decode(e.tb, &out)
	return out.UserToken, out.TokenID
}

// createToken makes a named token through POST /tokens.
func (e *testEnv) createToken(user string, body map[string]any) (value string, meta createdTokenJSON) {
	e.tb.Helper()
	r := e.do("POST", "/tokens", as(user), jsonBody(body))
	wantStatus(e.tb, r, http.StatusCreated)
	r.decode(e.tb, &meta)
	return meta.Token, meta
}

// createdTokenJSON mirrors the created-token answer for decoding.
type createdTokenJSON struct {
	Token        string   `json:"token"`
	TokenID      string   `json:"token_id"`
	Name         string   `json:"name"`
	Description  string   `json:"description"`
	Type         string   `json:"type"`
	User         string   `json:"user"`
	UserID       string   `json:"user_id"`
	Organization string   `json:"organization_name"`
	Scopes       []string `json:"scopes"`
	CreatedBy    string   `json:"created_by"`
	IssuedAt     string   `json:"issued_at"`
	ExpiresAt    string   `json:"expires_at"`
	ExpireTime   string   `json:"expire_time"`
	Active       bool     `json:"active"`
	Revoked      bool     `json:"revoked"`
	RevokedAt    *string  `json:"revoked_at"`
	Expired      bool     `json:"expired"`
	ReplacedBy   string   `json:"replaced_by"`
	ParentID     string   `json:"parent_id"`
	Email        string   `json:"email"`
}

// claims is a token's payload as the tests compare it: the wire form's
// numbers and strings (the token package's Claims is what the code uses).
type claims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  audience `json:"aud,omitempty"`
	IssuedAt  int64    `json:"iat"`
	NotBefore int64    `json:"nbf"`
	Expiry    int64    `json:"exp"`
	ID        string   `json:"jti"`
	Org       string   `json:"org"`
	TokenType string   `json:"token_type"`
	Scope     string   `json:"scope"`
}

// audience is the aud claim as the tests write it: an array.
type audience []string

// tokenClaims checks value's signature with the env's keys (which read it
// with the token package's strict parser) and returns its claims and
// header.
func (e *testEnv) tokenClaims(value string) (claims, map[string]any) {
	e.tb.Helper()
	tc, err := e.keys.Verify(value)
	if err != nil {
		e.tb.Fatalf("verify token: %v", err)
	}
	cl := claims{
		Issuer: tc.Issuer, Subject: tc.Subject, Audience: audience(tc.Audience),
		IssuedAt: tc.IssuedAt.Unix(), NotBefore: tc.NotBefore.Unix(), Expiry: tc.Expiry.Unix(),
		ID: tc.ID, Org: tc.Org, TokenType: tc.TokenType, Scope: strings.Join(tc.Scopes, " "),
	}
	head, err := base64.RawURLEncoding.DecodeString(strings.Split(value, ".")[0])
	if err != nil {
		e.tb.Fatalf("header: %v", err)
	}
	var h map[string]any
	if err := json.Unmarshal(head, &h); err != nil {
		e.tb.Fatalf("header: %v", err)
	}
	return cl, h
}

// record reads a token record from the store.
func (e *testEnv) record(id string) store.TokenRecord {
	e.tb.Helper()
	rec, err := e.st.GetToken(context.Background(), id)
	if err != nil {
		e.tb.Fatalf("get token %s: %v", id, err)
	}
	return rec
}

// userID is a test user's id in the store.
func (e *testEnv) userID(name string) string {
	e.tb.Helper()
	u, err := e.st.GetUser(context.Background(), name)
	if err != nil {
		e.tb.Fatalf("get user %s: %v", name, err)
	}
	return u.ID
}
