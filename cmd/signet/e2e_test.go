package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/signet-auth/signet/verifier"
)

// The end-to-end tests build the real binary once and drive it the way a
// person with curl would: CLI to add a user, `signet serve` on a free
// loopback port, plain HTTP.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func signetBinary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "signet-e2e-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "signet")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binPath
}

// env is one issuer's files: config, store and keys in a temp dir.
type env struct {
	tb     testing.TB
	dir    string
	config string
	url    string
	cmd    *exec.Cmd
	logs   *syncBuffer
	// extraEnv is added to the environment of `signet serve`.
	extraEnv []string
}

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

func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func newEnv(tb testing.TB, extraYAML string) *env {
	tb.Helper()
	dir := tb.TempDir()
	port := freePort(tb)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := fmt.Sprintf(`server:
  listen: "127.0.0.1:%d"
  public_url: %q
store:
  driver: sqlite
  dsn: %q
keys:
  dir: %q
security:
  bcrypt_cost: 4
log:
  level: debug
%s`, port, url, filepath.Join(dir, "data", "signet.db"), filepath.Join(dir, "keys"), extraYAML)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	e := &env{tb: tb, dir: dir, config: path, url: url}
	tb.Cleanup(func() { e.kill() })
	return e
}

// cli runs one signet command to completion.
func (e *env) cli(stdin string, args ...string) (stdout, stderr string, code int) {
	e.tb.Helper()
	cmd := exec.Command(signetBinary(e.tb), append(args, "--config", e.config)...)
	cmd.Dir = e.dir
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = cleanEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.tb.Fatalf("run signet %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SIGNET_") {
			out = append(out, kv)
		}
	}
	return out
}

func (e *env) start() {
	e.tb.Helper()
	e.logs = &syncBuffer{}
	cmd := exec.Command(signetBinary(e.tb), "serve", "--config", e.config)
	cmd.Dir = e.dir
	cmd.Env = append(cleanEnv(), e.extraEnv...)
	cmd.Stdout, cmd.Stderr = e.logs, e.logs
	if err := cmd.Start(); err != nil {
		e.tb.Fatal(err)
	}
	e.cmd = cmd
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(e.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.tb.Fatalf("issuer not ready within 20s; logs:\n%s", e.logs.String())
}

// stop sends SIGTERM and waits for a clean exit.
func (e *env) stop() {
	e.tb.Helper()
	if e.cmd == nil {
		return
	}
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- e.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			e.tb.Errorf("serve exited with %v after SIGTERM; logs:\n%s", err, e.logs.String())
		}
	case <-time.After(15 * time.Second):
		_ = e.cmd.Process.Kill()
		e.tb.Errorf("serve did not stop within 15s of SIGTERM")
	}
	e.cmd = nil
}

// kill ends the process with SIGKILL, as a crash would.
func (e *env) kill() {
	if e.cmd == nil {
		return
	}
	_ = e.cmd.Process.Kill()
	_ = e.cmd.Wait()
	e.cmd = nil
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(tb testing.TB) map[string]any {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		tb.Fatalf("body is not a JSON object: %v: %s", err, r.body)
	}
	return m
}

func (e *env) do(method, path, user, pass string, body string) response {
	e.tb.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.tb.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func mustStatus(tb testing.TB, r response, want int) {
	tb.Helper()
	if r.status != want {
		tb.Fatalf("got status %d, want %d; body: %s", r.status, want, r.body)
	}
}

// verifyWithJWKS checks the token's signature against the served key set
// with jwx directly — what any JWT library would do.
func verifyWithJWKS(tb testing.TB, e *env, token string) map[string]any {
	tb.Helper()
	r := e.do("GET", "/.well-known/jwks.json", "", "", "")
	mustStatus(tb, r, 200)
	set, err := jwk.Parse(r.body)
	if err != nil {
		tb.Fatalf("parse JWKS: %v", err)
	}
	payload, err := jws.Verify([]byte(token), jws.WithKeySet(set, jws.WithRequireKid(true)))
	if err != nil {
		tb.Fatalf("token does not verify against the JWKS: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		tb.Fatal(err)
	}
	return claims
}

func TestEndToEndWalkthrough(t *testing.T) {
	e := newEnv(t, "")
	out, errOut, code := e.cli("correct-horse-battery\n", "user", "add", "alice", "--org", "acme", "--role", "admin", "--email", "alice@example.com", "--password-stdin")
	if code != 0 {
		t.Fatalf("user add: exit %d: %s %s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "correct-horse-battery") {
		t.Fatal("user add printed the password")
	}
	// A password under 8 characters is refused and adds nothing.
	if _, _, code := e.cli("short\n", "user", "add", "bob", "--org", "acme", "--role", "member", "--email", "bob@example.com", "--password-stdin"); code == 0 {
		t.Fatal("user add accepted a 5-character password")
	}
	out, _, _ = e.cli("", "user", "list")
	if !strings.Contains(out, "alice") || strings.Contains(out, "bob") {
		t.Fatalf("user list: got %q, want alice and not bob", out)
	}

	e.start()
	r := e.do("POST", "/user-token", "alice", "correct-horse-battery", "")
	mustStatus(t, r, 200)
	m := r.json(t)
	token, _ := m["user-token"].(string)
	if token == "" || m["token_id"] == "" || m["expire_time"] == nil || m["expires_at"] == nil {
		t.Fatalf("POST /user-token: got %s, want user-token, token_id, expire_time, expires_at", r.body)
	}
	if _, err := time.Parse("2006-01-02 15:04:05", m["expire_time"].(string)); err != nil {
		t.Fatalf("expire_time %q: %v", m["expire_time"], err)
	}
	claims := verifyWithJWKS(t, e, token)
	if claims["iss"] != e.url || claims["sub"] != "alice" || claims["org"] != "acme" || claims["token_type"] != "personal" || claims["jti"] != m["token_id"] {
		t.Fatalf("claims: got %v", claims)
	}
	exp, iat := claims["exp"].(float64), claims["iat"].(float64)
	if exp-iat != 24*3600 {
		t.Fatalf("lifetime: got %vs, want 86400s", exp-iat)
	}
	hdr, err := jws.Parse([]byte(token))
	if err != nil {
		t.Fatal(err)
	}
	h := hdr.Signatures()[0].ProtectedHeaders()
	if h.Algorithm().String() != "ES256" || h.Type() != "at+jwt" || h.KeyID() == "" {
		t.Fatalf("header: alg %s typ %s kid %q", h.Algorithm(), h.Type(), h.KeyID())
	}

	r = e.do("GET", "/user-token?token="+token, "alice", "correct-horse-battery", "")
	mustStatus(t, r, 200)
	info := r.json(t)
	if info["user"] != "alice" || info["email"] != "alice@example.com" || info["organization_name"] != "acme" || info["active"] != true {
		t.Fatalf("GET /user-token: got %s", r.body)
	}

	// Wrong password: 401 with the challenge and the JSON error shape.
	r = e.do("POST", "/user-token", "alice", "wrong-password", "")
	mustStatus(t, r, 401)
	if r.header.Get("WWW-Authenticate") != `Basic realm="signet"` || r.json(t)["error"] != "unauthorized" {
		t.Fatalf("401: header %q body %s", r.header.Get("WWW-Authenticate"), r.body)
	}

	// The discovery document points at everything a verifier needs.
	r = e.do("GET", "/.well-known/oauth-authorization-server", "", "", "")
	mustStatus(t, r, 200)
	meta := r.json(t)
	for _, k := range []string{"issuer", "jwks_uri", "revocation_endpoint", "introspection_endpoint", "revocation_list_uri"} {
		if s, _ := meta[k].(string); s == "" {
			t.Errorf("metadata lacks %s: %s", k, r.body)
		}
	}

	// signet verify, the offline verifier, accepts it.
	out, errOut, code = e.cli("", "verify", "--issuer", e.url, token)
	if code != 0 || !strings.Contains(out, `"sub": "alice"`) {
		t.Fatalf("signet verify: exit %d, out %s, err %s", code, out, errOut)
	}
	kid := h.KeyID()

	// Restart: keys, users and old tokens survive.
	e.stop()
	e.start()
	r = e.do("GET", "/user-token?token="+token, "alice", "correct-horse-battery", "")
	mustStatus(t, r, 200)
	if r.json(t)["active"] != true {
		t.Fatalf("after restart the token is not active: %s", r.body)
	}
	verifyWithJWKS(t, e, token)
	r = e.do("POST", "/user-token", "alice", "correct-horse-battery", `{"expires_in":"1h"}`)
	mustStatus(t, r, 200)
	hdr2, err := jws.Parse([]byte(r.json(t)["user-token"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	if got := hdr2.Signatures()[0].ProtectedHeaders().KeyID(); got != kid {
		t.Fatalf("after restart tokens are signed by %s, want the same key %s", got, kid)
	}
	if strings.Contains(e.logs.String(), token) || strings.Contains(e.logs.String(), "correct-horse-battery") {
		t.Fatal("the server log contains a token value or a password")
	}
}

// TestRevocationSurvivesKill revokes a token, kills the issuer with SIGKILL
// right after the 204, and finds the revocation after a restart.
func TestRevocationSurvivesKill(t *testing.T) {
	e := newEnv(t, "")
	if _, errOut, code := e.cli("admin-password-1\n", "user", "add", "root", "--org", "acme", "--role", "admin", "--email", "root@example.com", "--password-stdin"); code != 0 {
		t.Fatalf("user add: %s", errOut)
	}
	e.start()
	var ids []string
	for i := 0; i < 5; i++ {
		r := e.do("POST", "/tokens", "root", "admin-password-1", fmt.Sprintf(`{"name":"ci-%d","type":"administrative","scopes":["reports:read"]}`, i))
		mustStatus(t, r, 201)
		ids = append(ids, r.json(t)["token_id"].(string))
	}
	for _, id := range ids {
		mustStatus(t, e.do("DELETE", "/tokens/"+id, "root", "admin-password-1", ""), 204)
	}
	e.kill()
	e.start()
	for _, id := range ids {
		r := e.do("GET", "/tokens/"+id, "root", "admin-password-1", "")
		mustStatus(t, r, 200)
		if r.json(t)["revoked"] != true {
			t.Fatalf("token %s not revoked after kill -9 and restart: %s", id, r.body)
		}
		mustStatus(t, e.do("GET", "/revocations/"+id, "", "", ""), 200)
	}
}

// TestCLITokenClient drives `signet token ...` against the running issuer.
func TestCLITokenClient(t *testing.T) {
	e := newEnv(t, "presets:\n  reports: [\"reports:read\"]\n")
	if _, errOut, code := e.cli("admin-password-1\n", "user", "add", "root", "--org", "acme", "--role", "admin", "--email", "root@example.com", "--password-stdin"); code != 0 {
		t.Fatalf("user add: %s", errOut)
	}
	e.start()
	out, errOut, code := e.cli("admin-password-1\n", "token", "create", "--url", e.url, "--user", "root", "--name", "deploy", "--preset", "reports", "--expires-in", "720h")
	if code != 0 {
		t.Fatalf("token create: exit %d: %s", code, errOut)
	}
	var created map[string]any
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("token create output: %v: %s", err, out)
	}
	id, _ := created["token_id"].(string)
	if v, _ := created["token"].(string); v == "" || id == "" {
		t.Fatalf("token create: got %s, want token and token_id", out)
	}
	out, _, code = e.cli("admin-password-1\n", "token", "list", "--url", e.url, "--user", "root")
	if code != 0 || !strings.Contains(out, id) || strings.Contains(out, created["token"].(string)) {
		t.Fatalf("token list: exit %d, got %s; want the id and never the value", code, out)
	}
	// regenerate --grace keeps the old value working until previous_valid_until.
	out, errOut, code = e.cli("admin-password-1\n", "token", "regenerate", "--url", e.url, "--user", "root", "--grace", "1h", id)
	var regen map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &regen) != nil || regen["previous_valid_until"] == nil {
		t.Fatalf("token regenerate --grace: exit %d, got %s %s; want previous_valid_until", code, out, errOut)
	}
	if _, _, code := e.cli("", "verify", "--issuer", e.url, created["token"].(string)); code != 0 {
		t.Fatalf("signet verify of the old value during its grace period: exit %d, want 0", code)
	}
	if _, errOut, code = e.cli("admin-password-1\n", "token", "revoke", "--url", e.url, "--user", "root", id); code != 0 {
		t.Fatalf("token revoke: %s", errOut)
	}
	out, _, _ = e.cli("admin-password-1\n", "token", "info", "--url", e.url, "--user", "root", id)
	if !strings.Contains(out, `"revoked": true`) {
		t.Fatalf("token info after revoke: %s", out)
	}
	// Wrong password: exit 1 with the issuer's message, not a stack of internals.
	_, errOut, code = e.cli("nope-nope-nope\n", "token", "list", "--url", e.url, "--user", "root")
	if code != 1 || !strings.Contains(errOut, "401") {
		t.Fatalf("token list with a wrong password: exit %d, stderr %q", code, errOut)
	}
	// signet verify refuses the revoked token with exit 1.
	if _, _, code := e.cli("", "verify", "--issuer", e.url, created["token"].(string)); code != 1 {
		t.Fatalf("signet verify of a revoked token: exit %d, want 1", code)
	}
}

// TestKeysCLI rotates and revokes keys offline while the issuer runs; the
// running issuer follows without a restart.
func TestKeysCLI(t *testing.T) {
	e := newEnv(t, "")
	if _, errOut, code := e.cli("admin-password-1\n", "user", "add", "root", "--org", "acme", "--role", "admin", "--email", "root@example.com", "--password-stdin"); code != 0 {
		t.Fatalf("user add: %s", errOut)
	}
	e.start()
	r := e.do("POST", "/user-token", "root", "admin-password-1", "")
	mustStatus(t, r, 200)
	oldToken := r.json(t)["user-token"].(string)
	out, errOut, code := e.cli("", "keys", "rotate", "--now")
	if code != 0 {
		t.Fatalf("keys rotate: %s", errOut)
	}
	newKid := strings.Fields(out)[2]
	out, _, _ = e.cli("", "keys", "list")
	if !strings.Contains(out, newKid) || !strings.Contains(out, "signing") || !strings.Contains(out, "retired") {
		t.Fatalf("keys list after rotate --now: %s", out)
	}
	hdr, _ := jws.Parse([]byte(oldToken))
	oldKid := hdr.Signatures()[0].ProtectedHeaders().KeyID()
	// The running issuer signs with the new key within a few seconds.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r = e.do("POST", "/user-token", "root", "admin-password-1", "")
		mustStatus(t, r, 200)
		h, _ := jws.Parse([]byte(r.json(t)["user-token"].(string)))
		if h.Signatures()[0].ProtectedHeaders().KeyID() == newKid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the running issuer still signs with the old key 10s after rotate --now")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out, err := e.revokeKey(oldKid); err != nil {
		t.Fatalf("keys revoke: %v: %s", err, out)
	}
	if _, _, code := e.cli("", "keys", "revoke", "no-such-kid"); code == 0 {
		t.Fatal("keys revoke of an unknown kid succeeded")
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		r = e.do("GET", "/.well-known/jwks.json", "", "", "")
		if !strings.Contains(string(r.body), oldKid) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the revoked key is still in the JWKS 10s later")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if _, _, code := e.cli("", "verify", "--issuer", e.url, oldToken); code != 1 {
		t.Fatalf("signet verify of a token signed by a revoked key: exit %d, want 1", code)
	}
}

// TestCLIUsage checks exit codes and messages for command-line mistakes.
func TestCLIUsage(t *testing.T) {
	e := newEnv(t, "")
	cases := []struct {
		name  string
		stdin string
		args  []string
		code  int
	}{
		{"unknown command", "", []string{"frobnicate"}, 2},
		{"user add without password flag", "", []string{"user", "add", "x", "--org", "o", "--email", "x@example.com"}, 2},
		{"user add bad role", "long-enough-password\n", []string{"user", "add", "x", "--org", "o", "--role", "owner", "--email", "x@example.com", "--password-stdin"}, 1},
		{"user add bad email", "long-enough-password\n", []string{"user", "add", "x", "--org", "o", "--email", "not-an-email", "--password-stdin"}, 1},
		{"user add empty stdin", "", []string{"user", "add", "x", "--org", "o", "--email", "x@example.com", "--password-stdin"}, 1},
		{"remove unknown user", "", []string{"user", "remove", "ghost"}, 1},
		{"verify with an issuer that is no http URL", "", []string{"verify", "--issuer", "ftp://example.com", "abc"}, 2},
		{"token without user", "", []string{"token", "list", "--url", "http://127.0.0.1:1"}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := e.cli(tc.stdin, tc.args...)
			if code != tc.code {
				t.Fatalf("got exit %d, want %d; stderr %q", code, tc.code, errOut)
			}
			if !strings.HasPrefix(errOut, "signet:") && !strings.Contains(errOut, "Error") {
				t.Fatalf("stderr %q does not explain the failure", errOut)
			}
		})
	}
	// A bad config value is reported with the key's name.
	bad := filepath.Join(e.dir, "bad.yaml")
	os.WriteFile(bad, []byte("keys:\n  algorithm: HS256\n"), 0o600)
	cmd := exec.Command(signetBinary(t), "serve", "--config", bad)
	cmd.Env = cleanEnv()
	outb, _ := cmd.CombinedOutput()
	if !strings.Contains(string(outb), "keys.algorithm") {
		t.Fatalf("serve with a bad algorithm: %s", outb)
	}
}

// copyFile copies src to dst (for a database backup and its restore).
func copyFile(tb testing.TB, src, dst string) {
	tb.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		tb.Fatal(err)
	}
}

// TestRestoredDatabaseReachesVerifiers is the restore scenario end to end:
// a verifier follows the issuer; the issuer's SQLite file is replaced by an
// older copy and the issuer restarted; the next revocation reuses the Seq of
// one the copy lacks. The verifier must notice that the log is not the one
// it followed, reload, and refuse the new revocation's token.
func TestRestoredDatabaseReachesVerifiers(t *testing.T) {
	e := newEnv(t, "")
	if _, errOut, code := e.cli("admin-password-1\n", "user", "add", "root", "--org", "acme", "--role", "admin", "--email", "root@example.com", "--password-stdin"); code != 0 {
		t.Fatalf("user add: %s", errOut)
	}
	e.start()
	toks := map[string]string{}
	ids := map[string]string{}
	for _, name := range []string{"before", "lost", "after"} {
		r := e.do("POST", "/tokens", "root", "admin-password-1", fmt.Sprintf(`{"name":%q,"type":"administrative","scopes":["reports:read"]}`, name))
		mustStatus(t, r, 201)
		toks[name], ids[name] = r.json(t)["token"].(string), r.json(t)["token_id"].(string)
	}
	mustStatus(t, e.do("DELETE", "/tokens/"+ids["before"], "root", "admin-password-1", ""), 204)
	e.stop()
	db := filepath.Join(e.dir, "data", "signet.db")
	backup := filepath.Join(e.dir, "backup.db")
	copyFile(t, db, backup)
	e.start()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, err := verifier.New(ctx, verifier.Config{IssuerURL: e.url})
	if err != nil {
		t.Fatalf("verifier.New: %v", err)
	}
	defer v.Close()
	refusedWithin := func(name string, d time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			if _, err := v.Verify(ctx, toks[name]); errors.Is(err, verifier.ErrRevoked) {
				return time.Since(start)
			}
			if time.Since(start) > d {
				t.Fatalf("the verifier still accepts the %q token %s after its revocation", name, d)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if _, err := v.Verify(ctx, toks["after"]); err != nil {
		t.Fatalf("Verify before any revocation: %v", err)
	}
	mustStatus(t, e.do("DELETE", "/tokens/"+ids["lost"], "root", "admin-password-1", ""), 204)
	refusedWithin("lost", 10*time.Second)

	// Restore the older copy: the lost revocation's Seq is free again.
	e.stop()
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(db + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	copyFile(t, backup, db)
	e.start()
	if _, err := v.Verify(ctx, toks["after"]); err != nil {
		t.Fatalf("Verify of the unrevoked token after the restore: %v", err)
	}
	mustStatus(t, e.do("DELETE", "/tokens/"+ids["after"], "root", "admin-password-1", ""), 204)
	took := refusedWithin("after", 10*time.Second)
	t.Logf("revocation after the restore: refused by the verifier %s after the DELETE was acknowledged (contract: within a second of reconnecting)", took)
	if _, err := v.Verify(ctx, toks["before"]); !errors.Is(err, verifier.ErrRevoked) {
		t.Errorf("token revoked before the backup: got %v, want ErrRevoked", err)
	}
	if r := e.do("GET", "/revocations", "", "", ""); !strings.Contains(r.header.Get("ETag"), ".") {
		t.Errorf("ETag %q: want a cursor carrying the log's epoch", r.header.Get("ETag"))
	}
}
