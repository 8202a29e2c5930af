package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/signet-auth/signet/internal/proxytest"
)

// The gate's end-to-end tests run the real binary twice (issuer and
// gate) behind a real proxy from Debian's packages, with a plain upstream
// that is not Go: nginx (or Caddy) itself, echoing the X-Signet-* headers
// it receives. Without the proxy they are skipped locally and fail in CI;
// scripts/test.sh installs it.

// requireProxy returns the proxy's binary, or skips (fails in CI).
func requireProxy(tb testing.TB, find func() (string, error)) string {
	tb.Helper()
	bin, err := find()
	if err != nil {
		if proxytest.InCI() {
			tb.Fatal(err)
		}
		tb.Skip(err)
	}
	return bin
}

// gateProc is a running `signet gate`.
type gateProc struct {
	url  string
	cmd  *exec.Cmd
	logs *syncBuffer
}

// startGateProc runs `signet gate` with e's config file (its gate section)
// against e's issuer, and waits for /readyz.
func startGateProc(tb testing.TB, e *env, extraEnv ...string) *gateProc {
	tb.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(tb))
	g := &gateProc{url: "http://" + addr, logs: &syncBuffer{}}
	g.cmd = exec.Command(signetBinary(tb), "gate", "--config", e.config, "--issuer", e.url, "--listen", addr, "--log-level", "debug")
	g.cmd.Dir = e.dir
	g.cmd.Env = append(cleanEnv(), extraEnv...)
	g.cmd.Stdout, g.cmd.Stderr = g.logs, g.logs
	if err := g.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if g.cmd != nil {
			_ = g.cmd.Process.Kill()
			_ = g.cmd.Wait()
		}
	})
	for range 400 {
		if resp, err := http.Get(g.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return g
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	tb.Fatalf("gate not ready within 10s; logs:\n%s", g.logs.String())
	return nil
}

// stop sends SIGTERM and expects a clean exit.
func (g *gateProc) stop(tb testing.TB) {
	tb.Helper()
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- g.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			tb.Errorf("gate exited with %v after SIGTERM; logs:\n%s", err, g.logs.String())
		}
	case <-time.After(15 * time.Second):
		_ = g.cmd.Process.Kill()
		tb.Errorf("gate did not stop within 15s of SIGTERM")
	}
	g.cmd = nil
	if !strings.Contains(g.logs.String(), "shutting down") {
		tb.Errorf("no shutdown message in the gate's log:\n%s", g.logs.String())
	}
}

// readmeNginxConfig returns the nginx configuration shown in README.md's
// "Protecting a service in any language", with its addresses replaced by
// the test's: the documented config is the tested one.
func readmeNginxConfig(tb testing.TB, listen, gateAddr, upstreamAddr string) string {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		tb.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "## Protecting a service in any language\n")
	if !ok {
		tb.Fatal(`README.md has no section "Protecting a service in any language"`)
	}
	_, block, ok := strings.Cut(section, "```nginx\n")
	if !ok {
		tb.Fatal("README.md's gate section has no nginx block")
	}
	block, _, _ = strings.Cut(block, "```")
	for _, r := range []struct{ old, new string }{
		{"server 127.0.0.1:4181;", "server " + gateAddr + ";"},
		{"listen 8000;", "listen " + listen + ";"},
		{"http://127.0.0.1:3000;", "http://" + upstreamAddr + ";"},
	} {
		if strings.Count(block, r.old) == 0 {
			tb.Fatalf("README.md's nginx block lacks %q", r.old)
		}
		block = strings.ReplaceAll(block, r.old, r.new)
	}
	return block
}

// echoUpstreamNginx is a server block answering every request with the
// X-Signet-* headers it received, one per line.
func echoUpstreamNginx(listen string) string {
	return fmt.Sprintf(`server {
    listen %s;
    location / {
        default_type text/plain;
        return 200 "subject=$http_x_signet_subject\norg=$http_x_signet_org\nscopes=$http_x_signet_scopes\ntoken_id=$http_x_signet_token_id\ntoken_type=$http_x_signet_token_type\nuri=$request_uri\n";
    }
}
`, listen)
}

// proxied is one answer through the proxy.
type proxied struct {
	status int
	header http.Header
	echo   map[string]string // the upstream's lines, key=value
	body   string
}

// through sends GET path to the proxy with token as bearer (none when
// empty) and extra headers.
func through(tb testing.TB, base, path, token string, extra ...string) proxied {
	tb.Helper()
	req, err := http.NewRequest("GET", base+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	p := proxied{status: resp.StatusCode, header: resp.Header, body: string(b), echo: map[string]string{}}
	if resp.StatusCode == 200 {
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			k, v, _ := strings.Cut(line, "=")
			p.echo[k] = v
		}
	}
	return p
}

// tokenScope returns a token's scope claim as signed.
func tokenScope(tb testing.TB, tok string) string {
	tb.Helper()
	_, claims := jwtParts(tb, tok)
	s, _ := claims["scope"].(string)
	return s
}

// signExpired signs, with the issuer's own current key (read from
// keys.dir), a token that expired an hour ago: the verifier's 30s leeway
// rules out waiting for a real one to expire.
func signExpired(tb testing.TB, e *env, sub string) string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join(e.dir, "keys", "*.json"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no key files in %s: %v", filepath.Join(e.dir, "keys"), err)
	}
	var kf struct {
		KID       string          `json:"kid"`
		Algorithm string          `json:"algorithm"`
		Key       json.RawMessage `json:"key"`
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(data, &kf); err != nil {
		tb.Fatal(err)
	}
	key, err := jwk.ParseKey(kf.Key)
	if err != nil {
		tb.Fatal(err)
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	now := time.Now()
	payload, _ := json.Marshal(map[string]any{
		"iss": e.url, "sub": sub, "aud": []string{"api.example.com"}, "org": "acme", "token_type": "personal",
		"scope": "reports:read", "jti": base64.RawURLEncoding.EncodeToString(id),
		"iat": now.Add(-2 * time.Hour).Unix(), "nbf": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix(),
	})
	hdr := jws.NewHeaders()
	_ = hdr.Set(jws.KeyIDKey, kf.KID)
	_ = hdr.Set(jws.TypeKey, "at+jwt")
	tok, err := jws.Sign(payload, jws.WithKey(jwa.SignatureAlgorithm(kf.Algorithm), key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		tb.Fatal(err)
	}
	return string(tok)
}

// refusedWithin polls the proxy with token until it answers 401, at most
// limit, and returns how long that took; it fails when the token is still
// accepted at the limit.
func refusedWithin(tb testing.TB, base, path, token string, since time.Time, limit time.Duration) time.Duration {
	tb.Helper()
	for {
		p := through(tb, base, path, token)
		if p.status == 401 {
			return time.Since(since)
		}
		if p.status != 200 {
			tb.Fatalf("while waiting for the refusal: got %d, want 200 or 401: %s", p.status, p.body)
		}
		if time.Since(since) > limit {
			tb.Fatalf("token still accepted through the proxy %s after the issuer's 204, want refused within %s", time.Since(since).Round(time.Millisecond), limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gateCast adds the users of the gate tests and starts the issuer.
func gateCast(tb testing.TB) *env {
	tb.Helper()
	e := newEnv(tb, ctBaseYAML+`gate:
  audience: api.example.com
  max_staleness: 5m
`)
	for _, u := range []struct{ name, role, pass string }{
		{"alice", "admin", ctAlicePass},
		{"bob", "member", ctBobPass},
		{"dan", "member", ctDanPass},
	} {
		if out, errOut, code := e.cli(u.pass+"\n", "user", "add", u.name, "--org", "acme", "--role", u.role, "--email", u.name+"@example.com", "--password-stdin"); code != 0 {
			tb.Fatalf("user add %s: exit %d: %s %s", u.name, code, out, errOut)
		}
	}
	e.start()
	return e
}

// gateTokens are the tokens every proxy test sends.
type gateTokens struct {
	reports, bucketOnly, noScopes, revocable, admin, dan, expired string
	reportsID, revocableID, adminID                               string
}

func issueGateTokens(tb testing.TB, e *env) gateTokens {
	tb.Helper()
	var t gateTokens
	m := issueUserToken(tb, e, "bob", ctBobPass, `{"scopes":["reports:read","bucket:in.c-main:read"]}`)
	t.reports, t.reportsID = m["user-token"].(string), m["token_id"].(string)
	t.bucketOnly = issueUserToken(tb, e, "bob", ctBobPass, `{"scopes":["bucket:in.c-main:read"]}`)["user-token"].(string)
	t.noScopes = issueUserToken(tb, e, "bob", ctBobPass, `{"scopes":[]}`)["user-token"].(string)
	m = createToken(tb, e, "bob", ctBobPass, `{"name":"gate-e2e","scopes":["reports:*"]}`)
	t.revocable, t.revocableID = m["token"].(string), m["token_id"].(string)
	m = createToken(tb, e, "alice", ctAlicePass, `{"name":"deploy","type":"administrative","scopes":["reports:read"]}`)
	t.admin, t.adminID = m["token"].(string), m["token_id"].(string)
	t.dan = issueUserToken(tb, e, "dan", ctDanPass, `{"scopes":["reports:read"]}`)["user-token"].(string)
	t.expired = signExpired(tb, e, "bob")
	return t
}

// checkThroughProxy runs the cases every proxy must get right against a
// proxy at base that protects / (any valid token) and /reports/
// (reports:read) in front of an upstream echoing X-Signet-* headers.
func checkThroughProxy(t *testing.T, e *env, g *gateProc, base string, proxyLog func() string) {
	toks := issueGateTokens(t, e)
	parts := strings.Split(toks.reports, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"sub":"bob"`, `"sub":"ann"`, 1))) + "." + parts[2]
	if tampered == toks.reports {
		t.Fatal("the tampered token is the original")
	}

	for _, tc := range []struct {
		name, path, token, challenge string
		status                       int
	}{
		{"no token", "/reports/q1", "", `Bearer realm="signet"`, 401},
		{"garbage", "/reports/q1", "garbage", `Bearer realm="signet", error="invalid_token"`, 401},
		{"tampered", "/reports/q1", tampered, `Bearer realm="signet", error="invalid_token"`, 401},
		{"expired", "/reports/q1", toks.expired, `Bearer realm="signet", error="invalid_token"`, 401},
		{"wrong scope", "/reports/q1", toks.bucketOnly, "", 403},
		{"no token at the root either", "/", "", `Bearer realm="signet"`, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := through(t, base, tc.path, tc.token)
			if p.status != tc.status {
				t.Fatalf("got %d, want %d: %s", p.status, tc.status, p.body)
			}
			if tc.challenge != "" && p.header.Get("WWW-Authenticate") != tc.challenge {
				t.Errorf("WWW-Authenticate: got %q, want %q", p.header.Get("WWW-Authenticate"), tc.challenge)
			}
			if strings.Contains(p.body, "subject=") {
				t.Errorf("the upstream answered a refused request: %s", p.body)
			}
		})
	}

	t.Run("valid", func(t *testing.T) {
		// Headers of the same names from the client never reach the
		// upstream: the gate's replace them.
		p := through(t, base, "/reports/q1?x=1", toks.reports, "X-Signet-Subject", "root", "X-Signet-Org", "evil", "X-Signet-Scopes", "*")
		want := map[string]string{
			"subject": "bob", "org": "acme", "scopes": tokenScope(t, toks.reports),
			"token_id": toks.reportsID, "token_type": "personal", "uri": "/reports/q1?x=1",
		}
		if p.status != 200 {
			t.Fatalf("got %d, want 200: %s", p.status, p.body)
		}
		for k, v := range want {
			if p.echo[k] != v {
				t.Errorf("upstream saw %s=%q, want %q (all: %v)", k, p.echo[k], v, p.echo)
			}
		}
		if p := through(t, base, "/anything", toks.bucketOnly); p.status != 200 || p.echo["scopes"] != "bucket:in.c-main:read" {
			t.Errorf("a valid token outside /reports/: got %d %v, want 200 with its scopes", p.status, p.echo)
		}
		// A token without scopes passes where none is required, and a
		// client's own X-Signet-Scopes does not stand in for the missing
		// header.
		if p := through(t, base, "/anything", toks.noScopes, "X-Signet-Scopes", "*"); p.status != 200 || p.echo["scopes"] != "" || p.echo["subject"] != "bob" {
			t.Errorf("a token without scopes and a forged X-Signet-Scopes: got %d %v, want 200 with no scopes", p.status, p.echo)
		}
		if p := through(t, base, "/reports/q1", toks.noScopes); p.status != 403 {
			t.Errorf("a token without scopes on /reports/: got %d, want 403", p.status)
		}
		if p := through(t, base, "/reports/q1", toks.admin); p.status != 200 || p.echo["subject"] != "token:"+toks.adminID || p.echo["token_type"] != "administrative" {
			t.Errorf("administrative token: got %d %v, want subject token:%s, type administrative", p.status, p.echo, toks.adminID)
		}
	})

	t.Run("revocation within one second", func(t *testing.T) {
		if p := through(t, base, "/reports/q1", toks.revocable); p.status != 200 {
			t.Fatalf("before revocation: got %d, want 200", p.status)
		}
		r := e.do("DELETE", "/tokens/"+toks.revocableID, "bob", ctBobPass, "")
		acked := time.Now()
		mustStatus(t, r, 204)
		took := refusedWithin(t, base, "/reports/q1", toks.revocable, acked, time.Second)
		t.Logf("revoked token refused through the proxy %s after the issuer's 204", took.Round(time.Millisecond))
		if p := through(t, base, "/reports/q1", toks.reports); p.status != 200 {
			t.Errorf("another token of the same user: got %d, want 200", p.status)
		}
	})

	t.Run("removed user", func(t *testing.T) {
		if p := through(t, base, "/reports/q1", toks.dan); p.status != 200 {
			t.Fatalf("before removal: got %d, want 200", p.status)
		}
		r := e.do("DELETE", "/users/dan", "alice", ctAlicePass, "")
		acked := time.Now()
		mustStatus(t, r, 204)
		took := refusedWithin(t, base, "/", toks.dan, acked, time.Second)
		t.Logf("removed user's token refused through the proxy %s after the issuer's 204", took.Round(time.Millisecond))
	})

	for name, tok := range map[string]string{"reports": toks.reports, "bucket": toks.bucketOnly, "no scopes": toks.noScopes, "revocable": toks.revocable, "admin": toks.admin, "dan": toks.dan, "expired": toks.expired, "tampered": tampered} {
		sig := tok[strings.LastIndexByte(tok, '.')+1:]
		if strings.Contains(g.logs.String(), sig) {
			t.Errorf("the %s token reached the gate's log", name)
		}
		if strings.Contains(e.logs.String(), sig) {
			t.Errorf("the %s token reached the issuer's log", name)
		}
	}
	if !strings.Contains(g.logs.String(), "refused") {
		t.Errorf("the gate logged no refusal at debug level:\n%s", g.logs.String())
	}
	if t.Failed() {
		t.Logf("gate log:\n%s\nproxy log:\n%s", g.logs.String(), proxyLog())
	}
}

// TestGateNginx protects a plain upstream with nginx auth_request and
// `signet gate`, using the README's configuration.
func TestGateNginx(t *testing.T) {
	nginx := requireProxy(t, proxytest.FindNginx)
	e := gateCast(t)
	g := startGateProc(t, e)
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	upstream := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	px, err := proxytest.StartNginx(ctx, proxytest.NginxOptions{
		Binary:   nginx,
		Dir:      filepath.Join(t.TempDir(), "nginx"),
		HTTP:     readmeNginxConfig(t, listen, strings.TrimPrefix(g.url, "http://"), upstream) + echoUpstreamNginx(upstream),
		ReadyURL: "http://" + upstream + "/",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer px.Stop()
	checkThroughProxy(t, e, g, "http://"+listen, px.Log)
	g.stop(t)
}

// TestGateCaddy is the same with Caddy's forward_auth.
func TestGateCaddy(t *testing.T) {
	caddy := requireProxy(t, proxytest.FindCaddy)
	e := gateCast(t)
	g := startGateProc(t, e)
	listen := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	upstream := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	px, err := proxytest.StartCaddy(ctx, proxytest.CaddyOptions{
		Binary:   caddy,
		Dir:      filepath.Join(t.TempDir(), "caddy"),
		Sites:    caddySites(listen, strings.TrimPrefix(g.url, "http://"), upstream),
		ReadyURL: "http://" + upstream + "/",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer px.Stop()
	checkThroughProxy(t, e, g, "http://"+listen, px.Log)
	g.stop(t)
}

// caddySites is the Caddy recipe of docs/GATE.md with the test's
// addresses, and an upstream that echoes X-Signet-* headers.
func caddySites(listen, gateAddr, upstream string) string {
	return fmt.Sprintf(`http://%s {
	route /reports/* {
		forward_auth %s {
			uri /auth?scope=reports:read
			copy_headers X-Signet-Subject X-Signet-Org X-Signet-Scopes X-Signet-Token-Id X-Signet-Token-Type
		}
		reverse_proxy %s
	}
	route {
		forward_auth %s {
			uri /auth
			copy_headers X-Signet-Subject X-Signet-Org X-Signet-Scopes X-Signet-Token-Id X-Signet-Token-Type
		}
		reverse_proxy %s
	}
}

http://%s {
	respond "subject={header.X-Signet-Subject}
org={header.X-Signet-Org}
scopes={header.X-Signet-Scopes}
token_id={header.X-Signet-Token-Id}
token_type={header.X-Signet-Token-Type}
uri={uri}
" 200
}
`, listen, gateAddr, upstream, gateAddr, upstream, upstream)
}

// TestGateCLI: configuration mistakes name the key; the environment alone
// configures the gate; a gate started before its issuer becomes ready by
// itself once the issuer is up.
func TestGateCLI(t *testing.T) {
	e := newEnv(t, "")
	if _, stderr, code := e.cli("", "gate"); code != 2 || !strings.Contains(stderr, "gate.issuer_url") {
		t.Errorf("gate without an issuer: got exit %d, stderr %q; want 2 naming gate.issuer_url", code, stderr)
	}
	_, stderr, code := e.cliWithEnv([]string{"SIGNET_GATE_MAX_STALENESS=0s"}, "", "gate", "--issuer", e.url)
	if code != 1 || !strings.Contains(stderr, "gate.max_staleness") {
		t.Errorf("max_staleness 0s: got exit %d, stderr %q; want 1 naming gate.max_staleness", code, stderr)
	}
	if _, stderr, code := e.cli("", "gate", "--issuer", "auth.example.com"); code != 1 || !strings.Contains(stderr, "gate.issuer_url") {
		t.Errorf("issuer without a scheme: got exit %d, stderr %q; want 1 naming gate.issuer_url", code, stderr)
	}

	// Only the environment, and the issuer not started yet.
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	logs := &syncBuffer{}
	cmd := exec.Command(signetBinary(t), "gate", "--config", e.config)
	cmd.Dir = e.dir
	cmd.Env = append(cleanEnv(), "SIGNET_GATE_ISSUER_URL="+e.url, "SIGNET_GATE_LISTEN="+addr)
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g := &gateProc{url: "http://" + addr, cmd: cmd, logs: logs}
	t.Cleanup(func() {
		if g.cmd != nil {
			_ = g.cmd.Process.Kill()
			_ = g.cmd.Wait()
		}
	})
	get := func(path string) int {
		resp, err := http.Get(g.url + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 400 {
		if get("/healthz") == 200 {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if got := get("/readyz"); got != 503 {
		t.Errorf("readyz before the issuer is up: got %d, want 503", got)
	}
	if got := get("/auth"); got != 401 {
		t.Errorf("auth without a token before the issuer is up: got %d, want 401", got)
	}
	if p := through(t, g.url, "/auth", "x.y.z"); p.status != 503 {
		t.Errorf("auth with a token before the issuer is up: got %d, want 503", p.status)
	}
	e.start()
	ready := false
	for range 800 {
		if get("/readyz") == 200 {
			ready = true
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if !ready {
		t.Fatalf("gate not ready within 20s of the issuer; logs:\n%s", logs.String())
	}
	g.stop(t)
}
