package issuer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-auth/signet/keys"
	"github.com/signet-auth/signet/store"
	"github.com/signet-auth/signet/store/sqlite"
)

// The web UI's tests run the real issuer (real SQLite file, real keyring,
// real HTTP on a loopback port) with an injected clock.

// uiClock is a settable clock for sessions and tokens.
type uiClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *uiClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *uiClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// uiFixture is one running issuer with two users of org acme: admin
// "ada" and member "max", plus "eve" of another org.
type uiFixture struct {
	tb    testing.TB
	url   string
	srv   *Server
	st    store.Store
	clock *uiClock
}

const (
	uiAdminPass  = "ada-password-1"
	uiMemberPass = "max-password-1"
)

func newUIFixture(tb testing.TB, edit func(*Config)) *uiFixture {
	tb.Helper()
	dir := tb.TempDir()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "signet.db"))
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() { st.Close() })
	kr, err := keys.Open(keys.Config{Dir: filepath.Join(dir, "keys")})
	if err != nil {
		tb.Fatalf("open keys: %v", err)
	}
	clock := &uiClock{t: time.Now().UTC().Truncate(time.Second)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	cfg := Config{
		PublicURL:       url,
		BcryptCost:      4,
		PersonalTokens:  true,
		MaxFailuresUser: 3,
		Roles:           map[string][]string{"admin": {"*"}, "member": {"reports:*"}},
		Presets:         map[string][]string{"reports": {"reports:read"}, "ops": {"deploy:run", "reports:read"}},
		Now:             clock.now,
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := New(cfg, st, kr)
	if err != nil {
		tb.Fatalf("issuer.New: %v", err)
	}
	for _, u := range []struct {
		name, org, pass string
		role            store.Role
	}{
		{"ada", "acme", uiAdminPass, store.RoleAdmin},
		{"max", "acme", uiMemberPass, store.RoleMember},
		{"eve", "other", "eve-password-1", store.RoleAdmin},
	} {
		hash, err := HashPassword(u.pass, PasswordPolicy{BcryptCost: 4})
		if err != nil {
			tb.Fatal(err)
		}
		now := clock.now()
		if err := st.CreateUser(ctx, store.User{Username: u.name, Email: u.name + "@example.com", Org: u.org, Role: u.role, PasswordHash: hash, CreatedAt: now, UpdatedAt: now}); err != nil {
			tb.Fatalf("create user %s: %v", u.name, err)
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Run(runCtx) }()
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = srv.Shutdown(sctx)
		cancel()
		<-done
	})
	return &uiFixture{tb: tb, url: url, srv: srv, st: st, clock: clock}
}

// uiReq describes one request.
type uiReq struct {
	method, path string
	body         string
	contentType  string // default application/json when body is set
	cookie       string // session id
	csrf         string
	basic        [2]string
	header       map[string]string
}

type uiResp struct {
	status int
	header http.Header
	body   []byte
	cookie *http.Cookie // signet_session, when set
}

func (r uiResp) json(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		tb.Fatalf("body is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

func (f *uiFixture) do(q uiReq) uiResp {
	f.tb.Helper()
	var rd io.Reader
	if q.body != "" {
		rd = strings.NewReader(q.body)
	}
	req, err := http.NewRequest(q.method, f.url+q.path, rd)
	if err != nil {
		f.tb.Fatal(err)
	}
	if q.body != "" {
		ct := q.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if q.cookie != "" {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: q.cookie})
	}
	if q.csrf != "" {
		req.Header.Set(csrfHeader, q.csrf)
	}
	if q.basic[0] != "" {
		req.SetBasicAuth(q.basic[0], q.basic[1])
	}
	for k, v := range q.header {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		f.tb.Fatalf("%s %s: %v", q.method, q.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.tb.Fatal(err)
	}
	out := uiResp{status: resp.StatusCode, header: resp.Header, body: b}
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			out.cookie = c
		}
	}
	return out
}

func uiWantStatus(tb testing.TB, r uiResp, want int) {
	tb.Helper()
	if r.status != want {
		tb.Fatalf("got status %d, want %d; body: %s", r.status, want, r.body)
	}
}

// login signs in and returns the session id and CSRF token.
func (f *uiFixture) login(user, pass string) (id, csrf string) {
	f.tb.Helper()
	r := f.do(uiReq{method: "POST", path: "/ui/api/login", body: fmt.Sprintf(`{"username":%q,"password":%q}`, user, pass)})
	uiWantStatus(f.tb, r, 200)
	if r.cookie == nil || r.cookie.Value == "" {
		f.tb.Fatalf("login set no %s cookie; headers %v", sessionCookie, r.header)
	}
	csrf, _ = r.json(f.tb)["csrf_token"].(string)
	if csrf == "" {
		f.tb.Fatalf("login answered no csrf_token: %s", r.body)
	}
	return r.cookie.Value, csrf
}

func TestUILoginSessionLogout(t *testing.T) {
	f := newUIFixture(t, nil)
	r := f.do(uiReq{method: "POST", path: "/ui/api/login", body: `{"username":"ada","password":"` + uiAdminPass + `"}`})
	uiWantStatus(t, r, 200)
	c := r.cookie
	if c == nil {
		t.Fatalf("got no %s cookie, want one", sessionCookie)
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure {
		t.Fatalf("cookie flags: got HttpOnly=%v SameSite=%v Path=%q Secure=%v, want true Strict / false", c.HttpOnly, c.SameSite, c.Path, c.Secure)
	}
	if len(c.Value) != 43 {
		t.Fatalf("session id length: got %d, want 43 (256 bits base64url)", len(c.Value))
	}
	m := r.json(t)
	if m["user"] != "ada" || m["role"] != "admin" || m["org"] != "acme" || m["email"] != "ada@example.com" {
		t.Fatalf("login answer: got %s", r.body)
	}
	if strings.Contains(string(r.body), uiAdminPass) || strings.Contains(string(r.body), c.Value) {
		t.Fatal("login answer repeats the password or the session id")
	}
	csrf := m["csrf_token"].(string)

	// A reload: the session answers the same identity and CSRF token.
	r = f.do(uiReq{method: "GET", path: "/ui/api/session", cookie: c.Value})
	uiWantStatus(t, r, 200)
	if got := r.json(t); got["csrf_token"] != csrf || got["user"] != "ada" {
		t.Fatalf("GET /ui/api/session: got %s, want the login's csrf_token and user", r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control of the session answer: got %q, want no-store", cc)
	}
	// The cookie authenticates the shared API.
	uiWantStatus(t, f.do(uiReq{method: "GET", path: "/tokens", cookie: c.Value}), 200)
	uiWantStatus(t, f.do(uiReq{method: "GET", path: "/ui/api/config", cookie: c.Value}), 200)

	// Logout needs the CSRF token like every change.
	uiWantStatus(t, f.do(uiReq{method: "POST", path: "/ui/api/logout", cookie: c.Value}), 403)
	r = f.do(uiReq{method: "POST", path: "/ui/api/logout", cookie: c.Value, csrf: csrf})
	uiWantStatus(t, r, 204)
	if r.cookie == nil || r.cookie.Value != "" || (r.cookie.MaxAge >= 0 && r.cookie.Expires.After(time.Unix(1, 0))) {
		t.Fatalf("logout cookie: got %+v, want it cleared", r.cookie)
	}
	r = f.do(uiReq{method: "GET", path: "/ui/api/session", cookie: c.Value})
	uiWantStatus(t, r, 401)
	if h := r.header.Get("WWW-Authenticate"); h != "" {
		t.Fatalf("401 to the page: got WWW-Authenticate %q, want none (no browser dialog)", h)
	}
	r = f.do(uiReq{method: "GET", path: "/tokens", cookie: c.Value})
	uiWantStatus(t, r, 401)
	if h := r.header.Get("WWW-Authenticate"); h != "" {
		t.Fatalf("401 to a cookie request: got WWW-Authenticate %q, want none", h)
	}
	if r.json(t)["error"] != "unauthorized" {
		t.Fatalf("401 body: got %s, want error unauthorized", r.body)
	}
	// Without any credentials the API still challenges for Basic.
	r = f.do(uiReq{method: "GET", path: "/tokens"})
	uiWantStatus(t, r, 401)
	if h := r.header.Get("WWW-Authenticate"); h != `Basic realm="signet"` {
		t.Fatalf("401 without cookie: got WWW-Authenticate %q, want the Basic challenge", h)
	}
	// Logging out twice is harmless.
	uiWantStatus(t, f.do(uiReq{method: "POST", path: "/ui/api/logout", cookie: c.Value}), 204)

	// Sign-in and sign-out are audited.
	events, err := f.st.ListAudit(context.Background(), store.AuditFilter{Org: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range events {
		actions = append(actions, e.Action)
	}
	if got := strings.Join(actions, ","); !strings.Contains(got, "session.login") || !strings.Contains(got, "session.logout") {
		t.Fatalf("audit actions: got %s, want session.login and session.logout", got)
	}
}

func TestUILoginNewSessionEachTime(t *testing.T) {
	f := newUIFixture(t, nil)
	id1, _ := f.login("ada", uiAdminPass)
	// Signing in again with the old cookie replaces it (no fixation).
	r := f.do(uiReq{method: "POST", path: "/ui/api/login", cookie: id1, body: `{"username":"ada","password":"` + uiAdminPass + `"}`})
	uiWantStatus(t, r, 200)
	if r.cookie == nil || r.cookie.Value == id1 {
		t.Fatalf("second login: got cookie %v, want a new id", r.cookie)
	}
	uiWantStatus(t, f.do(uiReq{method: "GET", path: "/ui/api/session", cookie: id1}), 401)
	uiWantStatus(t, f.do(uiReq{method: "GET", path: "/ui/api/session", cookie: r.cookie.Value}), 200)
}

func TestUILoginRefusals(t *testing.T) {
	f := newUIFixture(t, func(c *Config) { c.MaxFailuresUser = 100 })
	cases := []struct {
		name        string
		body        string
		contentType string
		status      int
	}{
		{"wrong password", `{"username":"ada","password":"not-the-password"}`, "", 401},
		{"unknown user", `{"username":"nobody","password":"whatever-pass"}`, "", 401},
		{"empty password", `{"username":"ada","password":""}`, "", 400},
		{"missing username", `{"password":"x"}`, "", 400},
		{"empty body", ``, "", 400},
		{"not an object", `["ada","pw"]`, "", 400},
		{"unknown field", `{"username":"ada","password":"x","remember":true}`, "", 400},
		{"form post", `username=ada&password=x`, "application/x-www-form-urlencoded", 400},
		{"text/plain JSON", `{"username":"ada","password":"` + uiAdminPass + `"}`, "text/plain", 400},
		{"control character", `{"username":"ada\u0000","password":"x"}`, "", 401},
		{"huge username", `{"username":"` + strings.Repeat("a", 300) + `","password":"x"}`, "", 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := uiReq{method: "POST", path: "/ui/api/login", body: tc.body, contentType: tc.contentType}
			if tc.body == "" {
				q.header = map[string]string{"Content-Type": "application/json"}
			}
			r := f.do(q)
			uiWantStatus(t, r, tc.status)
			if r.cookie != nil && r.cookie.Value != "" {
				t.Fatalf("refused login set a session cookie")
			}
			if h := r.header.Get("WWW-Authenticate"); h != "" {
				t.Fatalf("got WWW-Authenticate %q, want none", h)
			}
			m := r.json(t)
			if m["error"] == "" || m["message"] == "" {
				t.Fatalf("error body: got %s, want error and message", r.body)
			}
			if strings.Contains(string(r.body), "not-the-password") {
				t.Fatal("the answer repeats the password")
			}
		})
	}
	// The issuer's own check audited the failures.
	events, err := f.st.ListAudit(context.Background(), store.AuditFilter{Action: "login.failed"})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) < 2 {
		t.Fatalf("login.failed events: got %d, want at least 2", len(events))
	}
}

func TestUILoginRateLimited(t *testing.T) {
	f := newUIFixture(t, nil) // MaxFailuresUser 3
	for i := 0; i < 3; i++ {
		uiWantStatus(t, f.do(uiReq{method: "POST", path: "/ui/api/login", body: `{"username":"ada","password":"wrong-password"}`}), 401)
	}
	r := f.do(uiReq{method: "POST", path: "/ui/api/login", body: `{"username":"ada","password":"` + uiAdminPass + `"}`})
	uiWantStatus(t, r, 429)
	if r.header.Get("Retry-After") == "" || r.cookie != nil {
		t.Fatalf("429: got Retry-After %q cookie %v, want a Retry-After and no cookie", r.header.Get("Retry-After"), r.cookie)
	}
	// Another account is not locked out.
	f.login("max", uiMemberPass)
	// Basic auth shares the same limit: it is the same check.
	uiWantStatus(t, f.do(uiReq{method: "GET", path: "/tokens", basic: [2]string{"ada", uiAdminPass}}), 429)
}

func TestUISecureCookieForHTTPS(t *testing.T) {
	f := newUIFixture(t, func(c *Config) { c.PublicURL = "https://auth.example.com" })
	r := f.do(uiReq{method: "POST", path: "/ui/api/login", body: `{"username":"ada","password":"` + uiAdminPass + `"}`})
	uiWantStatus(t, r, 200)
	if r.cookie == nil || !r.cookie.Secure {
		t.Fatalf("cookie with an https public URL: got %+v, want Secure", r.cookie)
	}
}

func TestUICSRF(t *testing.T) {
	f := newUIFixture(t, nil)
	id, csrf := f.login("ada", uiAdminPass)
	// A header that differs from the token in its first character, whatever
	// that character is.
	wrong := "x"
	if csrf[0] == 'x' {
		wrong = "y"
	}
	create := `{"name":"%s","scopes":["reports:read"]}`
	n := 0
	next := func() string { n++; return fmt.Sprintf(create, fmt.Sprintf("t%d", n)) }
	cases := []struct {
		name   string
		q      uiReq
		status int
	}{
		{"cookie without header", uiReq{cookie: id}, 403},
		{"cookie with wrong header", uiReq{cookie: id, csrf: wrong + csrf[1:]}, 403},
		{"cookie with a shorter header", uiReq{cookie: id, csrf: csrf[:10]}, 403},
		{"cookie with another session's token", uiReq{cookie: id, csrf: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, 403},
		{"cookie with the right header", uiReq{cookie: id, csrf: csrf}, 201},
		{"cookie with the right header but a form-typed body", uiReq{cookie: id, csrf: csrf, contentType: "application/x-www-form-urlencoded"}, 400},
		{"basic auth with a form-typed JSON body (curl -d)", uiReq{basic: [2]string{"ada", uiAdminPass}, contentType: "application/x-www-form-urlencoded"}, 201},
		{"basic auth, form-typed JSON body, from a page of another site", uiReq{basic: [2]string{"ada", uiAdminPass}, contentType: "application/x-www-form-urlencoded", header: map[string]string{"Origin": "https://evil.example"}}, 403},
		{"cookie with the right header, from another origin", uiReq{cookie: id, csrf: csrf, header: map[string]string{"Origin": "https://evil.example"}}, 403},
		{"basic auth needs no header", uiReq{basic: [2]string{"ada", uiAdminPass}}, 201},
		{"basic auth wins over a cookie", uiReq{cookie: id, basic: [2]string{"ada", uiAdminPass}}, 201},
		{"bad basic auth is not rescued by the cookie", uiReq{cookie: id, csrf: csrf, basic: [2]string{"ada", "wrong-password"}}, 401},
		{"unknown session", uiReq{cookie: strings.Repeat("A", 43), csrf: csrf}, 401},
		{"malformed session cookie", uiReq{cookie: "junk", csrf: csrf}, 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.q
			q.method, q.path, q.body = "POST", "/tokens", next()
			r := f.do(q)
			uiWantStatus(t, r, tc.status)
			if tc.status == 403 && r.json(t)["error"] != "forbidden" {
				t.Fatalf("403 body: got %s, want error forbidden", r.body)
			}
		})
	}
	// DELETE is a change too.
	r := f.do(uiReq{method: "POST", path: "/tokens", body: next(), cookie: id, csrf: csrf})
	uiWantStatus(t, r, 201)
	tid := r.json(t)["token_id"].(string)
	uiWantStatus(t, f.do(uiReq{method: "DELETE", path: "/tokens/" + tid, cookie: id}), 403)
	r = f.do(uiReq{method: "GET", path: "/tokens/" + tid, cookie: id})
	uiWantStatus(t, r, 200)
	if r.json(t)["revoked"] != false {
		t.Fatalf("token revoked by a request without the CSRF token: %s", r.body)
	}
	uiWantStatus(t, f.do(uiReq{method: "DELETE", path: "/tokens/" + tid, cookie: id, csrf: csrf}), 204)
	// PUT as well.
	uiWantStatus(t, f.do(uiReq{method: "PUT", path: "/users/max/password", body: `{"password":"new-password-2"}`, cookie: id}), 403)
}

// TestUIPasswordChangeNeedsCurrentPassword: a session alone (which a thief
// may hold) cannot change a password; Basic auth already carries one.
func TestUIPasswordChangeNeedsCurrentPassword(t *testing.T) {
	f := newUIFixture(t, nil)
	id, csrf := f.login("max", uiMemberPass)
	put := func(body string) uiResp {
		return f.do(uiReq{method: "PUT", path: "/users/max/password", body: body, cookie: id, csrf: csrf})
	}
	uiWantStatus(t, put(`{"password":"max-password-2"}`), 403)
	uiWantStatus(t, put(`{"password":"max-password-2","current_password":"not-my-password"}`), 403)
	// Neither refusal changed anything: the old password still logs in.
	f.login("max", uiMemberPass)
	uiWantStatus(t, put(`{"password":"max-password-2","current_password":"`+uiMemberPass+`"}`), 204)
	f.login("max", "max-password-2")
	// Basic auth needs no second copy of the password.
	uiWantStatus(t, f.do(uiReq{method: "PUT", path: "/users/max/password", body: `{"password":"max-password-3"}`,
		basic: [2]string{"max", "max-password-2"}}), 204)
}

func TestUIMemberRules(t *testing.T) {
	f := newUIFixture(t, nil)
	aid, acsrf := f.login("ada", uiAdminPass)
	r := f.do(uiReq{method: "POST", path: "/tokens", body: `{"name":"infra","type":"administrative","scopes":["deploy:run"]}`, cookie: aid, csrf: acsrf})
	uiWantStatus(t, r, 201)
	adminToken := r.json(t)["token_id"].(string)

	mid, mcsrf := f.login("max", uiMemberPass)
	cases := []struct {
		name   string
		method string
		path   string
		body   string
		status int
	}{
		{"administrative token", "POST", "/tokens", `{"name":"m1","type":"administrative","scopes":["reports:read"]}`, 403},
		{"scope beyond the role", "POST", "/tokens", `{"name":"m2","scopes":["deploy:run"]}`, 403},
		{"preset beyond the role", "POST", "/tokens", `{"name":"m3","preset":"ops"}`, 403},
		{"own personal token", "POST", "/tokens", `{"name":"m4","preset":"reports"}`, 201},
		{"admin's token is invisible", "GET", "/tokens/" + adminToken, "", 404},
		{"admin's token cannot be revoked", "DELETE", "/tokens/" + adminToken, "", 404},
		{"users are for admins", "GET", "/users", "", 403},
		{"audit is for admins", "GET", "/audit", "", 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			uiWantStatus(t, f.do(uiReq{method: tc.method, path: tc.path, body: tc.body, cookie: mid, csrf: mcsrf}), tc.status)
		})
	}
	r = f.do(uiReq{method: "GET", path: "/tokens?include_revoked=true&include_expired=true", cookie: mid})
	uiWantStatus(t, r, 200)
	if strings.Contains(string(r.body), adminToken) || strings.Contains(string(r.body), `"administrative"`) {
		t.Fatalf("member's list shows administrative tokens: %s", r.body)
	}
}

func TestUIConfigEndpoint(t *testing.T) {
	f := newUIFixture(t, func(c *Config) { c.DefaultTTL = 30 * 24 * time.Hour; c.MaxTTL = 90 * 24 * time.Hour })
	type view struct {
		Role    string `json:"role"`
		Scopes  []string
		Presets []struct {
			Name    string
			Scopes  []string
			Allowed bool
		}
		KnownScopes             []string `json:"known_scopes"`
		DefaultTTLSeconds       int64    `json:"default_ttl_seconds"`
		MaxTTLSeconds           int64    `json:"max_ttl_seconds"`
		PersonalTokens          bool     `json:"personal_tokens"`
		CanCreate               bool     `json:"can_create"`
		CanCreateAdministrative bool     `json:"can_create_administrative"`
	}
	get := func(user, pass string) view {
		t.Helper()
		id, _ := f.login(user, pass)
		r := f.do(uiReq{method: "GET", path: "/ui/api/config", cookie: id})
		uiWantStatus(t, r, 200)
		var v view
		if err := json.Unmarshal(r.body, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	admin := get("ada", uiAdminPass)
	member := get("max", uiMemberPass)
	allowed := func(v view) string {
		var s []string
		for _, p := range v.Presets {
			s = append(s, fmt.Sprintf("%s=%v", p.Name, p.Allowed))
		}
		return strings.Join(s, ",")
	}
	cases := []struct {
		name      string
		got, want any
	}{
		{"admin may create administrative", admin.CanCreateAdministrative, true},
		{"member may not create administrative", member.CanCreateAdministrative, false},
		{"member may create personal", member.CanCreate, true},
		{"admin presets", allowed(admin), "ops=true,reports=true"},
		{"member presets", allowed(member), "ops=false,reports=true"},
		{"member scopes", strings.Join(member.Scopes, " "), "reports:*"},
		{"member known scopes", strings.Join(member.KnownScopes, " "), "reports:*" + " reports:read"},
		{"admin known scopes", strings.Join(admin.KnownScopes, " "), "deploy:run reports:read"},
		{"default ttl", admin.DefaultTTLSeconds, int64(30 * 86400)},
		{"max ttl", admin.MaxTTLSeconds, int64(90 * 86400)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if fmt.Sprint(tc.got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, want %v", tc.got, tc.want)
			}
		})
	}
	uiWantStatus(t, f.do(uiReq{method: "GET", path: "/ui/api/config"}), 401)
	// Basic auth works too: the endpoint uses the one authenticate.
	uiWantStatus(t, f.do(uiReq{method: "GET", path: "/ui/api/config", basic: [2]string{"max", uiMemberPass}}), 200)

	off := newUIFixture(t, func(c *Config) { c.PersonalTokens = false })
	id, _ := off.login("max", uiMemberPass)
	r := off.do(uiReq{method: "GET", path: "/ui/api/config", cookie: id})
	uiWantStatus(t, r, 200)
	if m := r.json(t); m["can_create"] != false || m["personal_tokens"] != false {
		t.Fatalf("member with personal tokens off: got %s, want can_create false", r.body)
	}
}

// TestUIConfigDefaultPreset: the New token form's configured default
// preset reaches the page only for users who may grant it; the others
// start from every scope they hold.
func TestUIConfigDefaultPreset(t *testing.T) {
	for _, tc := range []struct {
		name, preset  string
		admin, member string
	}{
		{"none configured", "", "", ""},
		{"a preset both may grant", "reports", "reports", "reports"},
		{"a preset beyond the member's role", "ops", "ops", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newUIFixture(t, func(c *Config) { c.UIDefaultPreset = tc.preset })
			for _, u := range []struct{ name, pass, want string }{{"ada", uiAdminPass, tc.admin}, {"max", uiMemberPass, tc.member}} {
				id, _ := f.login(u.name, u.pass)
				r := f.do(uiReq{method: "GET", path: "/ui/api/config", cookie: id})
				uiWantStatus(t, r, 200)
				if got := r.json(t)["default_preset"]; got != u.want {
					t.Errorf("%s: default_preset got %v, want %q", u.name, got, u.want)
				}
			}
		})
	}
}

func TestUISessionExpiry(t *testing.T) {
	f := newUIFixture(t, nil)
	cases := []struct {
		name  string
		steps []time.Duration // waits before each use
		live  []bool          // whether each use finds the session
	}{
		{"used within the idle limit", []time.Duration{10 * time.Minute, 29 * time.Minute}, []bool{true, true}},
		{"idle slides with use", []time.Duration{25 * time.Minute, 25 * time.Minute, 25 * time.Minute}, []bool{true, true, true}},
		{"idle for 30 minutes", []time.Duration{30 * time.Minute, time.Minute}, []bool{false, false}},
		{"busy sessions end after 8 hours", append(uiRepeat(20*time.Minute, 23), 20*time.Minute), append(uiRepeatBool(true, 23), false)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, _ := f.login("ada", uiAdminPass)
			for i, d := range tc.steps {
				f.clock.advance(d)
				r := f.do(uiReq{method: "GET", path: "/tokens", cookie: id})
				if got := r.status == 200; got != tc.live[i] {
					t.Fatalf("use %d after %v: got status %d, want live=%v", i, d, r.status, tc.live[i])
				}
			}
		})
	}
}

func uiRepeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

func uiRepeatBool(b bool, n int) []bool {
	out := make([]bool, n)
	for i := range out {
		out[i] = b
	}
	return out
}

func TestUISessionEndsWhenUserChanges(t *testing.T) {
	f := newUIFixture(t, nil)
	admin := [2]string{"ada", uiAdminPass}
	cases := []struct {
		name   string
		change func(t *testing.T)
	}{
		{"password changed", func(t *testing.T) {
			f.clock.advance(time.Second)
			uiWantStatus(t, f.do(uiReq{method: "PUT", path: "/users/max/password", body: `{"password":"` + uiMemberPass + `"}`, basic: admin}), 204)
		}},
		{"user removed", func(t *testing.T) {
			uiWantStatus(t, f.do(uiReq{method: "DELETE", path: "/users/max", basic: admin}), 204)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, _ := f.login("max", uiMemberPass)
			uiWantStatus(t, f.do(uiReq{method: "GET", path: "/tokens", cookie: id}), 200)
			tc.change(t)
			r := f.do(uiReq{method: "GET", path: "/tokens", cookie: id})
			uiWantStatus(t, r, 401)
			uiWantStatus(t, f.do(uiReq{method: "GET", path: "/ui/api/session", cookie: id}), 401)
		})
	}
}

func TestUIHeadersAndAssets(t *testing.T) {
	f := newUIFixture(t, nil)
	assets := []struct {
		path        string
		contentType string
		contains    string
	}{
		{"/ui/", "text/html; charset=utf-8", "<title>"},
		{"/ui/assets/app.js", "text/javascript; charset=utf-8", "X-CSRF-Token"},
		{"/ui/assets/app.css", "text/css; charset=utf-8", "@media"},
		{"/ui/assets/favicon.svg", "image/svg+xml", "<svg"},
	}
	for _, a := range assets {
		t.Run(a.path, func(t *testing.T) {
			r := f.do(uiReq{method: "GET", path: a.path})
			uiWantStatus(t, r, 200)
			if got := r.header.Get("Content-Type"); got != a.contentType {
				t.Fatalf("Content-Type: got %q, want %q", got, a.contentType)
			}
			if !bytes.Contains(r.body, []byte(a.contains)) {
				t.Fatalf("body lacks %q", a.contains)
			}
			checkUIHeaders(t, r)
			etag := r.header.Get("ETag")
			if etag == "" {
				t.Fatal("no ETag on an asset")
			}
			r = f.do(uiReq{method: "GET", path: a.path, header: map[string]string{"If-None-Match": etag}})
			uiWantStatus(t, r, 304)
		})
	}
	t.Run("redirect /ui", func(t *testing.T) {
		r := f.do(uiReq{method: "GET", path: "/ui"})
		uiWantStatus(t, r, 302)
		if loc := r.header.Get("Location"); loc != "/ui/" {
			t.Fatalf("Location: got %q, want /ui/", loc)
		}
	})
	t.Run("unknown asset", func(t *testing.T) {
		for _, p := range []string{"/ui/assets/nope.js", "/ui/assets/..%2f..%2fgo.mod", "/ui/nope"} {
			r := f.do(uiReq{method: "GET", path: p})
			uiWantStatus(t, r, 404)
			checkUIHeaders(t, r)
			if r.json(t)["error"] != "not_found" {
				t.Fatalf("%s: got %s, want not_found", p, r.body)
			}
		}
	})
	t.Run("api answers are not cached", func(t *testing.T) {
		r := f.do(uiReq{method: "GET", path: "/ui/api/session"})
		checkUIHeaders(t, r)
		if cc := r.header.Get("Cache-Control"); cc != "no-store" {
			t.Fatalf("Cache-Control: got %q, want no-store", cc)
		}
	})
	t.Run("no inline script or style", func(t *testing.T) {
		body := f.do(uiReq{method: "GET", path: "/ui/"}).body
		for _, m := range regexp.MustCompile(`(?s)<script([^>]*)>(.*?)</script>`).FindAllSubmatch(body, -1) {
			if !bytes.Contains(m[1], []byte(`src="assets/`)) || len(bytes.TrimSpace(m[2])) != 0 {
				t.Fatalf("index.html has an inline or outside script: %q", m[0])
			}
		}
		for _, re := range []*regexp.Regexp{
			regexp.MustCompile(`(?i)<style`),
			regexp.MustCompile(`(?i)\sstyle=`),
			regexp.MustCompile(`(?i)\son[a-z]+=`),
			regexp.MustCompile(`(?i)(src|href)="(https?:)?//`),
			regexp.MustCompile(`(?i)javascript:`),
		} {
			if loc := re.FindIndex(body); loc != nil {
				t.Fatalf("index.html has inline code or an outside URL (%s): %q", re, body[loc[0]:min(loc[1]+40, len(body))])
			}
		}
	})
}

// checkUIHeaders asserts the security headers of every /ui/ answer.
func checkUIHeaders(tb testing.TB, r uiResp) {
	tb.Helper()
	want := map[string]string{
		"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "no-referrer",
		"X-Frame-Options":         "DENY",
	}
	for k, v := range want {
		if got := r.header.Get(k); got != v {
			tb.Fatalf("%s: got %q, want %q", k, got, v)
		}
	}
}

func TestSessionStoreBounds(t *testing.T) {
	clock := &uiClock{t: time.Unix(1_700_000_000, 0)}
	user := func(name string) store.User { return store.User{Username: name, Org: "acme", Role: store.RoleMember} }
	t.Run("whole map", func(t *testing.T) {
		ss := newSessionStore(sessionConfig{MaxSessions: 3, MaxPerUser: 3, Now: clock.now})
		var ids []string
		for _, u := range []string{"a", "b", "c"} {
			id, _, err := ss.create(user(u))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
			clock.advance(time.Second)
		}
		ss.use(ids[0]) // "a" is now the most recently used
		clock.advance(time.Second)
		if _, _, err := ss.create(user("d")); err != nil {
			t.Fatal(err)
		}
		if got := ss.len(); got != 3 {
			t.Fatalf("sessions: got %d, want 3", got)
		}
		if _, ok := ss.use(ids[1]); ok {
			t.Fatal("the least recently used session survived a full map")
		}
		if _, ok := ss.use(ids[0]); !ok {
			t.Fatal("a recently used session was dropped")
		}
	})
	t.Run("per user", func(t *testing.T) {
		ss := newSessionStore(sessionConfig{MaxSessions: 100, MaxPerUser: 2, Now: clock.now})
		other, _, _ := ss.create(user("bob"))
		first, _, _ := ss.create(user("amy"))
		clock.advance(time.Second)
		ss.create(user("amy"))
		clock.advance(time.Second)
		ss.create(user("amy"))
		if got := ss.len(); got != 3 {
			t.Fatalf("sessions: got %d, want 3 (2 of amy, 1 of bob)", got)
		}
		if _, ok := ss.use(first); ok {
			t.Fatal("amy's oldest session survived her third sign-in")
		}
		if _, ok := ss.use(other); !ok {
			t.Fatal("bob's session was dropped by amy's sign-ins")
		}
		if n := ss.endUser("amy"); n != 2 {
			t.Fatalf("endUser: got %d, want 2", n)
		}
	})
	t.Run("sweep", func(t *testing.T) {
		ss := newSessionStore(sessionConfig{Idle: time.Minute, Now: clock.now})
		ss.create(user("a"))
		ss.create(user("b"))
		clock.advance(2 * time.Minute)
		if n := ss.sweep(); n != 2 || ss.len() != 0 {
			t.Fatalf("sweep: got %d removed, %d left; want 2, 0", n, ss.len())
		}
	})
	t.Run("junk ids", func(t *testing.T) {
		ss := newSessionStore(sessionConfig{Now: clock.now})
		for _, id := range []string{"", "x", strings.Repeat("A", 43), strings.Repeat("A", 44), "../../etc/passwd"} {
			if _, ok := ss.use(id); ok {
				t.Fatalf("use(%q): got a session, want none", id)
			}
			ss.end(id) // must not panic
		}
	})
	t.Run("randomness failure", func(t *testing.T) {
		ss := newSessionStore(sessionConfig{Now: clock.now, Rand: uiFailingReader{}})
		if _, _, err := ss.create(user("a")); err == nil {
			t.Fatal("create with failing randomness: got nil error, want one")
		}
		if ss.len() != 0 {
			t.Fatalf("sessions after a failed create: got %d, want 0", ss.len())
		}
	})
	t.Run("csrf compare", func(t *testing.T) {
		s := session{CSRF: "abc"}
		cases := []struct {
			presented string
			want      bool
		}{{"abc", true}, {"abd", false}, {"", false}, {"abcd", false}, {"ab", false}}
		for _, c := range cases {
			if got := csrfMatches(s, c.presented); got != c.want {
				t.Fatalf("csrfMatches(%q): got %v, want %v", c.presented, got, c.want)
			}
		}
		if csrfMatches(session{}, "") {
			t.Fatal("an empty CSRF token matched an empty session token")
		}
	})
}

type uiFailingReader struct{}

func (uiFailingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

// TestRootRedirectsBrowsers: a person opening the issuer's address lands
// on the web page; API clients still get the JSON 404 of any unknown path.
func TestRootRedirectsBrowsers(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/", header("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"))
	if r.status != http.StatusFound || r.header.Get("Location") != "/ui/" {
		t.Fatalf("browser GET /: got %d Location %q, want 302 to /ui/", r.status, r.header.Get("Location"))
	}
	for _, accept := range []string{"", "application/json", "*/*"} {
		r := e.do("GET", "/", header("Accept", accept))
		if r.status != http.StatusNotFound || errorCode(t, r.body) != ECodeNotFound {
			t.Errorf("GET / with Accept %q: got %d %s, want the JSON 404", accept, r.status, r.body)
		}
	}
	if r := e.do("POST", "/", header("Accept", "text/html")); r.status == http.StatusFound {
		t.Errorf("POST / was redirected; only GET is")
	}
}
