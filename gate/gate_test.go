package gate_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-auth/signet/gate"
	"github.com/signet-auth/signet/verifier"
	"github.com/signet-auth/signet/verifier/verifiertest"
)

// logBuffer collects the gate's log lines (at debug level) so that tests
// can check that no token value reaches them.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testGate is a gate serving on a free loopback port.
type testGate struct {
	*gate.Gate
	url  string
	logs *logBuffer
}

// clock is an injectable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// startGate serves a gate for iss on a free loopback port; connect says
// whether to load the issuer's keys and list before returning.
func startGate(tb testing.TB, iss *verifiertest.Issuer, connect bool, mutate func(*gate.Config)) *testGate {
	tb.Helper()
	logs := &logBuffer{}
	cfg := gate.Config{
		Verifier: verifier.Config{IssuerURL: iss.URL(), PollInterval: 20 * time.Millisecond},
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mutate != nil {
		mutate(&cfg)
	}
	g, err := gate.New(cfg)
	if err != nil {
		tb.Fatalf("gate.New: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- g.Serve(ln) }()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := g.Shutdown(ctx); err != nil {
			tb.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			tb.Errorf("Serve: %v", err)
		}
		g.Close()
	})
	if connect {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.Connect(ctx); err != nil {
			tb.Fatalf("Connect: %v", err)
		}
	}
	return &testGate{Gate: g, url: "http://" + ln.Addr().String(), logs: logs}
}

type answer struct {
	status int
	header http.Header
	body   string
}

var client = &http.Client{Timeout: 10 * time.Second}

// check sends method path with Authorization authz (none when empty).
func (tg *testGate) check(tb testing.TB, method, path, authz string) answer {
	tb.Helper()
	req, err := http.NewRequest(method, tg.url+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func bearer(tok string) string { return "Bearer " + tok }

const (
	challengeNone    = `Bearer realm="signet"`
	challengeInvalid = `Bearer realm="signet", error="invalid_token"`
	challengeScope   = `Bearer realm="signet", error="insufficient_scope"`
)

// wantDenied checks a refusal's status and challenge.
func wantDenied(tb testing.TB, a answer, status int, challenge string) {
	tb.Helper()
	if a.status != status {
		tb.Fatalf("got status %d, want %d; body %s", a.status, status, a.body)
	}
	if got := a.header.Get("WWW-Authenticate"); got != challenge {
		tb.Errorf("WWW-Authenticate: got %q, want %q", got, challenge)
	}
	for _, h := range []string{gate.HeaderSubject, gate.HeaderOrg, gate.HeaderScopes, gate.HeaderTokenID, gate.HeaderTokenType} {
		if v, ok := a.header[h]; ok {
			tb.Errorf("a refusal carries %s: %q", h, v)
		}
	}
}

// wantAllowed checks a 200 with an empty body and its X-Signet-* headers.
func wantAllowed(tb testing.TB, a answer, want map[string]string) {
	tb.Helper()
	if a.status != http.StatusOK {
		tb.Fatalf("got status %d, want 200; WWW-Authenticate %q, body %s", a.status, a.header.Get("WWW-Authenticate"), a.body)
	}
	if a.body != "" {
		tb.Errorf("body: got %q, want empty", a.body)
	}
	for h, v := range want {
		if got, ok := a.header[h]; !ok || got[0] != v {
			tb.Errorf("%s: got %q, want %q", h, got, v)
		}
	}
}

func TestAuthDecisions(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	other := verifiertest.NewIssuer(t)
	tg := startGate(t, iss, true, nil)

	jti := verifiertest.NewTokenID(t)
	valid := iss.SignToken(t, verifiertest.Claims{"jti": jti, "scope": "reports:read bucket:in.c-main:read"})
	parts := strings.Split(valid, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(bytes.Replace(payload, []byte("reports:read"), []byte("reports:*   "), 1)) + "." + parts[2]
	wildcard := iss.SignToken(t, verifiertest.Claims{"scope": "reports:*"})
	everything := iss.SignToken(t, verifiertest.Claims{"scope": "*"})
	noScopes := iss.SignToken(t, verifiertest.Claims{"scope": nil})
	adminID := verifiertest.NewTokenID(t)
	admin := iss.SignToken(t, verifiertest.Claims{"jti": adminID, "sub": "token:" + adminID, "token_type": "administrative", "scope": "deploy:run"})
	expired := iss.SignToken(t, verifiertest.Claims{"iat": time.Now().Add(-2 * time.Hour).Unix(), "nbf": time.Now().Add(-2 * time.Hour).Unix(), "exp": time.Now().Add(-time.Hour).Unix()})
	foreign := other.SignToken(t, verifiertest.Claims{"iss": iss.URL()})
	wrongIssuer := other.SignToken(t, nil)
	crlf := iss.SignToken(t, verifiertest.Claims{"sub": "alice\r\nX-Signet-Org: evil"})

	allowed := func(sub, scopes, id, typ string) map[string]string {
		return map[string]string{gate.HeaderSubject: sub, gate.HeaderOrg: "acme", gate.HeaderScopes: scopes, gate.HeaderTokenID: id, gate.HeaderTokenType: typ}
	}
	for _, tc := range []struct {
		name, method, path, authz string
		status                    int
		challenge                 string
		headers                   map[string]string
	}{
		{"no token", "GET", "/auth", "", 401, challengeNone, nil},
		{"basic credentials are no bearer token", "GET", "/auth", "Basic YWxpY2U6c2VjcmV0", 401, challengeNone, nil},
		{"bearer without a token", "GET", "/auth", "Bearer", 401, challengeInvalid, nil},
		{"bearer with blanks only", "GET", "/auth", "Bearer    ", 401, challengeInvalid, nil},
		{"garbage", "GET", "/auth", bearer("garbage"), 401, challengeInvalid, nil},
		{"three parts of junk", "GET", "/auth", bearer("x.y.z"), 401, challengeInvalid, nil},
		{"tampered", "GET", "/auth", bearer(tampered), 401, challengeInvalid, nil},
		{"truncated signature", "GET", "/auth", bearer(valid[:len(valid)-4]), 401, challengeInvalid, nil},
		{"expired", "GET", "/auth", bearer(expired), 401, challengeInvalid, nil},
		{"signed by another key", "GET", "/auth", bearer(foreign), 401, challengeInvalid, nil},
		{"another issuer", "GET", "/auth", bearer(wrongIssuer), 401, challengeInvalid, nil},
		{"claims that would split a header", "GET", "/auth", bearer(crlf), 401, challengeInvalid, nil},
		{"valid, no scope asked", "GET", "/auth", bearer(valid), 200, "", allowed("alice", "reports:read bucket:in.c-main:read", jti, "personal")},
		{"valid, lower-case scheme", "GET", "/auth", "bearer " + valid, 200, "", allowed("alice", "reports:read bucket:in.c-main:read", jti, "personal")},
		{"valid, scope held", "GET", "/auth?scope=reports:read", bearer(valid), 200, "", allowed("alice", "reports:read bucket:in.c-main:read", jti, "personal")},
		{"valid, two scope parameters", "GET", "/auth?scope=reports:read&scope=bucket:in.c-main:read", bearer(valid), 200, "", nil},
		{"valid, space-separated scopes", "GET", "/auth?scope=reports:read%20bucket:in.c-main:read", bearer(valid), 200, "", nil},
		{"valid, plus-separated scopes", "GET", "/auth?scope=reports:read+bucket:in.c-main:read", bearer(valid), 200, "", nil},
		{"empty scope parameter asks nothing", "GET", "/auth?scope=", bearer(valid), 200, "", nil},
		{"scope missing", "GET", "/auth?scope=reports:write", bearer(valid), 403, challengeScope, nil},
		{"one of two scopes missing", "GET", "/auth?scope=reports:read&scope=reports:write", bearer(valid), 403, challengeScope, nil},
		{"one of a space-separated pair missing", "GET", "/auth?scope=reports:read+reports:write", bearer(valid), 403, challengeScope, nil},
		{"a scope is not a prefix", "GET", "/auth?scope=reports", bearer(valid), 403, challengeScope, nil},
		{"wildcard covers its prefix", "GET", "/auth?scope=reports:write&scope=reports:x:y", bearer(wildcard), 200, "", nil},
		{"wildcard covers nothing else", "GET", "/auth?scope=bucket:read", bearer(wildcard), 403, challengeScope, nil},
		{"star covers everything", "GET", "/auth?scope=anything:at:all&scope=reports:read", bearer(everything), 200, "", nil},
		{"no scopes, none asked", "GET", "/auth", bearer(noScopes), 200, "", allowed("alice", "", verifiertestID(t, noScopes), "personal")},
		{"no scopes grants nothing", "GET", "/auth?scope=reports:read", bearer(noScopes), 403, challengeScope, nil},
		{"administrative token", "GET", "/auth?scope=deploy:run", bearer(admin), 200, "", allowed("token:"+adminID, "deploy:run", adminID, "administrative")},
		{"POST", "POST", "/auth", bearer(valid), 200, "", nil},
		{"DELETE", "DELETE", "/auth?scope=reports:read", bearer(valid), 200, "", nil},
		{"HEAD", "HEAD", "/auth", bearer(valid), 200, "", nil},
		{"PROPFIND", "PROPFIND", "/auth", bearer(valid), 200, "", nil},
		{"a method of its own, no token", "BREW", "/auth", "", 401, challengeNone, nil},
		{"path under /auth/ (Envoy)", "GET", "/auth/api/v1/reports?scope=reports:read", bearer(valid), 200, "", nil},
		{"path under /auth/, scope missing", "PUT", "/auth/api/v1/reports?scope=reports:write", bearer(valid), 403, challengeScope, nil},
		{"/auth/ itself", "GET", "/auth/", bearer(valid), 200, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := tg.check(t, tc.method, tc.path, tc.authz)
			if tc.status == 200 {
				wantAllowed(t, a, tc.headers)
				if got := a.header.Get("Cache-Control"); got != "no-store" {
					t.Errorf("Cache-Control: got %q, want no-store", got)
				}
				return
			}
			wantDenied(t, a, tc.status, tc.challenge)
			if tc.method != "HEAD" && !strings.Contains(a.body, `"error"`) {
				t.Errorf("refusal body: got %q, want an {\"error\",\"message\"} object", a.body)
			}
		})
	}

	// Not the gate's paths: 404, never the auth answer.
	for _, p := range []string{"/authx", "/", "/Auth", "/health"} {
		if a := tg.check(t, "GET", p, bearer(valid)); a.status != 404 {
			t.Errorf("GET %s: got %d, want 404", p, a.status)
		}
	}

	// Revoked at the issuer: refused once the list has it.
	iss.Revoke(jti)
	eventually(t, "the revoked token is refused", func() bool {
		return tg.check(t, "GET", "/auth", bearer(valid)).status == 401
	})
	wantDenied(t, tg.check(t, "GET", "/auth", bearer(valid)), 401, challengeInvalid)

	// Every subject cut-off (user removal) reaches the gate as well.
	iss.RevokeSubject("acme", "alice", time.Now().Add(time.Minute))
	eventually(t, "the removed user's tokens are refused", func() bool {
		return tg.check(t, "GET", "/auth", bearer(wildcard)).status == 401
	})
	if a := tg.check(t, "GET", "/auth?scope=deploy:run", bearer(admin)); a.status != 200 {
		t.Errorf("an administrative token survives a user's removal: got %d, want 200", a.status)
	}

	for _, tok := range []string{valid, tampered, wildcard, everything, noScopes, admin, expired, foreign, crlf} {
		if sig := tok[strings.LastIndexByte(tok, '.')+1:]; strings.Contains(tg.logs.String(), sig) {
			t.Fatalf("a token reached the log:\n%s", tg.logs.String())
		}
	}
}

// verifiertestID returns the jti of a token signed by verifiertest.
func verifiertestID(tb testing.TB, tok string) string {
	tb.Helper()
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		tb.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(payload), `"jti":"`)
	id, _, _ := strings.Cut(rest, `"`)
	return id
}

// eventually polls cond every 10ms, at most 500 times, and fails with msg
// if it never holds.
func eventually(tb testing.TB, msg string, cond func() bool) {
	tb.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	tb.Fatalf("condition never held: %s", msg)
}

func TestStaleList(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		t.Run(fmt.Sprintf("fail_open=%v", failOpen), func(t *testing.T) {
			iss := verifiertest.NewIssuer(t)
			clk := &clock{t: time.Now()}
			tg := startGate(t, iss, true, func(c *gate.Config) {
				c.Verifier.Now = clk.Now
				c.Verifier.MaxStaleness = time.Minute
				c.Verifier.FailOpen = failOpen
			})
			tok := iss.SignToken(t, verifiertest.Claims{"exp": time.Now().Add(24 * time.Hour).Unix()})
			wantAllowed(t, tg.check(t, "GET", "/auth", bearer(tok)), nil)
			if a := tg.check(t, "GET", "/readyz", ""); a.status != 200 {
				t.Fatalf("readyz while fresh: got %d, want 200: %s", a.status, a.body)
			}

			iss.SetDown(true)
			defer iss.SetDown(false)
			// The clock stands still until the issuer is down, so no sync
			// after the jump can refresh the list (one in flight may land
			// once: jump again then).
			for range 5 {
				clk.Advance(time.Minute + time.Second)
				if tg.check(t, "GET", "/metrics", "").status == 200 && strings.Contains(tg.check(t, "GET", "/readyz", "").body, "stale") {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			a := tg.check(t, "GET", "/auth", bearer(tok))
			ready := tg.check(t, "GET", "/readyz", "")
			if failOpen {
				wantAllowed(t, a, nil)
				if ready.status != 200 {
					t.Errorf("readyz while stale with fail_open: got %d, want 200: %s", ready.status, ready.body)
				}
				return
			}
			wantDenied(t, a, 503, "")
			if got := a.header.Get("Retry-After"); got == "" {
				t.Error("503 without Retry-After")
			}
			if ready.status != 503 || !strings.Contains(ready.body, `"revocations":"stale"`) {
				t.Errorf("readyz while stale: got %d %s, want 503 naming the stale list", ready.status, ready.body)
			}
			// Bad tokens are still refused as such: staleness changes
			// nothing for them.
			wantDenied(t, tg.check(t, "GET", "/auth", bearer("garbage")), 401, challengeInvalid)
			wantDenied(t, tg.check(t, "GET", "/auth", ""), 401, challengeNone)
			if m := tg.check(t, "GET", "/metrics", "").body; !strings.Contains(m, `signet_gate_decisions_total{outcome="unavailable"} 1`) || !strings.Contains(m, "signet_gate_ready 0") {
				t.Errorf("metrics while stale lack the 503 or ready 0:\n%s", grepMetrics(m))
			}
		})
	}
}

// TestNotConnectedYet: a gate whose issuer is not up yet serves health,
// answers 503 to checks and to /readyz, and becomes ready by itself.
func TestNotConnectedYet(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	iss.SetDown(true)
	tg := startGate(t, iss, false, func(c *gate.Config) { c.RetryInterval = 20 * time.Millisecond })
	tok := iss.SignToken(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	connected := make(chan error, 1)
	go func() { connected <- tg.Connect(ctx) }()

	if a := tg.check(t, "GET", "/healthz", ""); a.status != 200 || a.body != `{"status":"ok"}` {
		t.Errorf("healthz: got %d %s, want 200 {\"status\":\"ok\"}", a.status, a.body)
	}
	if a := tg.check(t, "GET", "/readyz", ""); a.status != 503 {
		t.Errorf("readyz before the first load: got %d, want 503", a.status)
	}
	wantDenied(t, tg.check(t, "GET", "/auth", bearer(tok)), 503, "")
	// A request without a token is refused as such all the same.
	wantDenied(t, tg.check(t, "GET", "/auth", ""), 401, challengeNone)
	eventually(t, "a failed attempt is logged", func() bool { return strings.Contains(tg.logs.String(), "retrying") })

	iss.SetDown(false)
	select {
	case err := <-connected:
		if err != nil {
			t.Fatalf("Connect: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Connect did not succeed within 10s of the issuer coming up")
	}
	wantAllowed(t, tg.check(t, "GET", "/auth", bearer(tok)), nil)
	if a := tg.check(t, "GET", "/readyz", ""); a.status != 200 {
		t.Errorf("readyz after the first load: got %d %s, want 200", a.status, a.body)
	}
}

func TestConnectGivesUpWithItsContext(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	iss.SetDown(true)
	tg := startGate(t, iss, false, func(c *gate.Config) { c.RetryInterval = 10 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := tg.Connect(ctx); err == nil {
		t.Fatal("Connect to an issuer that is down: got nil, want the context's error")
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	tg := startGate(t, iss, true, nil)
	if a := tg.check(t, "GET", "/healthz", ""); a.status != 200 {
		t.Errorf("healthz: got %d", a.status)
	}
	a := tg.check(t, "GET", "/readyz", "")
	if a.status != 200 || a.body != `{"checks":{"keys":"ok","revocations":"ok"},"status":"ok"}` {
		t.Errorf("readyz: got %d %s", a.status, a.body)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		if a := tg.check(t, "POST", p, ""); a.status != 405 || a.header.Get("Allow") != "GET, HEAD" {
			t.Errorf("POST %s: got %d Allow %q, want 405 GET, HEAD", p, a.status, a.header.Get("Allow"))
		}
	}

	tok := iss.SignToken(t, verifiertest.Claims{"scope": "reports:read"})
	tg.check(t, "GET", "/auth", bearer(tok))
	tg.check(t, "GET", "/auth", bearer(tok))
	tg.check(t, "GET", "/auth?scope=x", bearer(tok))
	tg.check(t, "GET", "/auth", "")
	tg.check(t, "GET", "/auth", bearer("junk"))
	want := iss.Revoke(verifiertest.NewTokenID(t))
	eventually(t, "the list version reaches the metrics", func() bool {
		return strings.Contains(tg.check(t, "GET", "/metrics", "").body, fmt.Sprintf("signet_gate_revocation_list_version %d\n", want))
	})
	m := tg.check(t, "GET", "/metrics", "").body
	for _, line := range []string{
		`signet_gate_decisions_total{outcome="allowed"} 2`,
		`signet_gate_decisions_total{outcome="insufficient_scope"} 1`,
		`signet_gate_decisions_total{outcome="no_token"} 1`,
		`signet_gate_decisions_total{outcome="invalid_token"} 1`,
		`signet_gate_decisions_total{outcome="unavailable"} 0`,
		`signet_gate_invalid_tokens_total{reason="malformed"} 1`,
		`signet_gate_verify_seconds_count 4`,
		"signet_gate_ready 1",
		"signet_gate_keys 1",
		"signet_gate_revocation_list_staleness_seconds ",
		"go_goroutines ",
	} {
		if !strings.Contains(m, line) {
			t.Errorf("metrics lack %q:\n%s", line, grepMetrics(m))
		}
	}
}

func grepMetrics(m string) string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(m))
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "signet_gate_") {
			out = append(out, sc.Text())
		}
	}
	return strings.Join(out, "\n")
}

// TestBadInputNeverFails sends malformed requests of every kind over raw
// TCP: no answer is a 5xx, and the gate keeps answering.
func TestBadInputNeverFails(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	tg := startGate(t, iss, true, nil)
	tok := iss.SignToken(t, nil)
	addr := strings.TrimPrefix(tg.url, "http://")
	rng := rand.New(rand.NewPCG(1, 2))
	junk := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(0x21 + rng.IntN(0x5e)) // visible ASCII
		}
		return string(b)
	}
	requests := []string{
		"GET /auth HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + strings.Repeat("a", 40<<10) + "\r\n\r\n",
		"GET /auth HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + strings.Repeat("a.", 4<<10) + "\r\n\r\n",
		"GET /auth?scope=%zz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\n\r\n",
		"GET /auth?scope=" + strings.Repeat("s+", 2000) + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\n\r\n",
		"GET /auth?" + strings.Repeat("scope=a&", 1000) + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\n\r\n",
		"GET /auth HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\x00\x01\r\n\r\n",
		"GET /auth HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\nAuthorization: Bearer junk\r\n\r\n",
		"GET /auth/%2e%2e/%2e%2e/metrics HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET /auth HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n",
		"GET /auth HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"POST /auth HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
		"GET /auth HTTP/9.9\r\nHost: x\r\n\r\n",
		"GET auth HTTP/1.1\r\nHost: x\r\n\r\n",
		"\x00\x01\x02 /auth HTTP/1.1\r\n\r\n",
		"GET /auth HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer a\r\n b\r\n\r\n",
	}
	for range 50 {
		requests = append(requests, "GET /auth?scope="+junk(rng.IntN(50))+" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+junk(rng.IntN(600))+"\r\n\r\n")
		requests = append(requests, "GET /auth HTTP/1.1\r\nHost: x\r\nAuthorization: "+junk(rng.IntN(60))+" "+junk(rng.IntN(60))+"\r\n\r\n")
		// A real token with one character changed.
		b := []byte(tok)
		b[rng.IntN(len(b))] = byte(0x21 + rng.IntN(0x5e))
		requests = append(requests, "GET /auth HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+string(b)+"\r\n\r\n")
	}
	for i, r := range requests {
		status, err := rawStatus(addr, r)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if status == 0 || status >= 500 {
			t.Errorf("request %d (%.80q): got %d, want an answer that is no 5xx", i, r, status)
		}
	}
	wantAllowed(t, tg.check(t, "GET", "/auth", bearer(tok)), nil)
	if strings.Contains(tg.logs.String(), strings.Repeat("a", 64)) || strings.Contains(tg.logs.String(), tok[strings.LastIndexByte(tok, '.')+1:]) {
		t.Fatalf("request bytes reached the log:\n%.2000s", tg.logs.String())
	}
}

// rawStatus sends one raw request and returns the answer's status (0 when
// the server closed the connection without one).
func rawStatus(addr, request string) (int, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		return 0, nil // closed on us mid-request: no 5xx either
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return 0, nil
	}
	var proto string
	var status int
	if _, err := fmt.Sscanf(line, "%s %d", &proto, &status); err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	return status, nil
}

// TestOnlyVerifiedTokensAreKept: the gate keeps the strings of tokens
// that verified, never of refused ones, so garbage cannot fill its table;
// a kept token is still checked in full every time.
func TestOnlyVerifiedTokensAreKept(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	tg := startGate(t, iss, true, nil)
	jti := verifiertest.NewTokenID(t)
	tok := iss.SignToken(t, verifiertest.Claims{"jti": jti})
	for range 3 {
		wantAllowed(t, tg.check(t, "GET", "/auth", bearer(tok)), nil)
	}
	for i := range 100 {
		wantDenied(t, tg.check(t, "GET", "/auth", bearer(fmt.Sprintf("junk-%d", i))), 401, challengeInvalid)
	}
	if n := gate.InternedForTest(tg.Gate); n != 1 {
		t.Errorf("kept token strings: got %d, want 1 (the valid token only)", n)
	}
	iss.Revoke(jti)
	eventually(t, "the kept token is refused once revoked", func() bool {
		return tg.check(t, "GET", "/auth", bearer(tok)).status == 401
	})
}
