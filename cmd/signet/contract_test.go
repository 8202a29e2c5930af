package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// The contract tests walk /work/shared/CONTRACT.md section by section
// against the real binary, the way a black-box test written from that page
// would: exact field names, status codes, headers and CLI exit codes.

// The cast of every contract environment.
const (
	ctAlicePass = "alice-password-1" // admin of acme
	ctBobPass   = "bob-password-1"   // member of acme
	ctDanPass   = "dan-password-1"   // member of acme
	ctCarolPass = "carol-password-1" // admin of globex
)

// ctBaseYAML is the configuration most contract environments share:
// members hold reports:* and bucket:*, two presets, an audience.
const ctBaseYAML = `tokens:
  audience: ["api.example.com"]
presets:
  extended: ["reports:read", "reports:write"]
  ops: ["deploy:run"]
roles:
  admin:
    scopes: ["*"]
  member:
    scopes: ["reports:*", "bucket:*"]
`

// contractEnv writes a config (extraYAML appended, security overrides
// spliced into the security section), adds the cast with the CLI and
// starts the issuer with extraEnv on top of a clean environment.
func contractEnv(tb testing.TB, extraYAML, securityYAML string, extraEnv ...string) *env {
	tb.Helper()
	e := newEnv(tb, extraYAML)
	if securityYAML != "" {
		e.patchConfig("security:\n  bcrypt_cost: 4\n", "security:\n  bcrypt_cost: 4\n"+securityYAML)
	}
	for _, u := range []struct{ name, org, role, pass string }{
		{"alice", "acme", "admin", ctAlicePass},
		{"bob", "acme", "member", ctBobPass},
		{"dan", "acme", "member", ctDanPass},
		{"carol", "globex", "admin", ctCarolPass},
	} {
		if out, errOut, code := e.cli(u.pass+"\n", "user", "add", u.name, "--org", u.org, "--role", u.role, "--email", u.name+"@example.com", "--password-stdin"); code != 0 {
			tb.Fatalf("user add %s: exit %d: %s %s", u.name, code, out, errOut)
		}
	}
	e.startWithEnv(extraEnv...)
	return e
}

// patchConfig replaces old with new in the config file.
func (e *env) patchConfig(old, new string) {
	e.tb.Helper()
	b, err := os.ReadFile(e.config)
	if err != nil {
		e.tb.Fatal(err)
	}
	if !bytes.Contains(b, []byte(old)) {
		e.tb.Fatalf("config has no %q:\n%s", old, b)
	}
	if err := os.WriteFile(e.config, bytes.Replace(b, []byte(old), []byte(new), 1), 0o600); err != nil {
		e.tb.Fatal(err)
	}
}

// startWithEnv is start with extra KEY=VALUE environment entries.
func (e *env) startWithEnv(extra ...string) {
	e.tb.Helper()
	e.logs = &syncBuffer{}
	cmd := exec.Command(signetBinary(e.tb), "serve", "--config", e.config)
	cmd.Dir = e.dir
	cmd.Env = append(cleanEnv(), extra...)
	cmd.Stdout, cmd.Stderr = e.logs, e.logs
	if err := cmd.Start(); err != nil {
		e.tb.Fatal(err)
	}
	e.cmd = cmd
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := client.Get(e.url + "/readyz")
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

// cliWithEnv runs one signet command with extra environment entries.
func (e *env) cliWithEnv(extra []string, stdin string, args ...string) (stdout, stderr string, code int) {
	e.tb.Helper()
	cmd := exec.Command(signetBinary(e.tb), append(args, "--config", e.config)...)
	cmd.Dir = e.dir
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(cleanEnv(), extra...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	} else if err != nil {
		e.tb.Fatalf("run signet %v: %v", args, err)
	}
	return out.String(), errb.String(), 0
}

// ctReq is one request with full control over headers and body.
type ctReq struct {
	method, path string
	user, pass   string // Basic credentials when user is set
	ctype        string // Content-Type; none when empty
	body         string
	header       map[string]string
}

var ctClient = &http.Client{Timeout: 15 * time.Second}

// send sends r and reads the whole answer.
func (e *env) send(r ctReq) response {
	e.tb.Helper()
	resp, err := e.trySend(r)
	if err != nil {
		e.tb.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	return resp
}

func (e *env) trySend(r ctReq) (response, error) {
	var rd io.Reader
	if r.body != "" {
		rd = strings.NewReader(r.body)
	}
	req, err := http.NewRequest(r.method, e.url+r.path, rd)
	if err != nil {
		return response{}, err
	}
	if r.user != "" {
		req.SetBasicAuth(r.user, r.pass)
	}
	if r.ctype != "" {
		req.Header.Set("Content-Type", r.ctype)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	resp, err := ctClient.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// raw writes a request byte for byte (paths and headers no HTTP library
// would send) and reads the answer.
func (e *env) raw(request string) (response, error) {
	u, _ := url.Parse(e.url)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		return response{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		return response{}, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// form encodes key/value pairs as a url-encoded body.
func form(kv ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v.Encode()
}

const (
	ctJSON = "application/json"
	ctForm = "application/x-www-form-urlencoded" // what curl -d sends
)

// errorCodes are the contract's error codes (plus gone and unavailable,
// which the issuer documents for 410 and 503).
var errorCodes = map[string]bool{
	"invalid_request": true, "invalid_token": true, "unauthorized": true, "forbidden": true,
	"not_found": true, "conflict": true, "rate_limited": true, "internal": true,
	"gone": true, "unavailable": true,
}

// wantErr checks the contract's error shape: the status, a JSON body of
// exactly {"error","message"} with the code, WWW-Authenticate on 401 and
// Retry-After on 429.
func wantErr(tb testing.TB, r response, status int, code string) {
	tb.Helper()
	if r.status != status {
		tb.Fatalf("status: got %d, want %d; body %s", r.status, status, r.body)
	}
	checkErrorShape(tb, r, true)
	var m map[string]any
	_ = json.Unmarshal(r.body, &m)
	if m["error"] != code {
		tb.Fatalf("error: got %v, want %q; body %s", m["error"], code, r.body)
	}
}

// checkErrorShape checks any 4xx/5xx answer for the error shape; challenge
// asks for WWW-Authenticate on a 401 (the web UI's own endpoints answer
// without one on purpose, so that browsers show no password dialog).
func checkErrorShape(tb testing.TB, r response, challenge bool) {
	tb.Helper()
	if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Errorf("%d answer: Content-Type got %q, want application/json", r.status, ct)
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		tb.Fatalf("%d answer: body %q is not a JSON object: %v", r.status, r.body, err)
	}
	code, _ := m["error"].(string)
	msg, _ := m["message"].(string)
	if !errorCodes[code] || msg == "" || len(m) != 2 {
		tb.Errorf("%d answer: got %s, want exactly {\"error\": <code>, \"message\": <text>}", r.status, r.body)
	}
	if r.status == 401 && challenge && r.header.Get("WWW-Authenticate") != `Basic realm="signet"` {
		tb.Errorf("401 answer: WWW-Authenticate got %q, want %q", r.header.Get("WWW-Authenticate"), `Basic realm="signet"`)
	}
	if r.status == 429 {
		if n, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || n < 1 {
			tb.Errorf("429 answer: Retry-After got %q, want a number of seconds >= 1", r.header.Get("Retry-After"))
		}
	}
}

// jwtParts decodes a compact JWS's header and claims without checking it.
func jwtParts(tb testing.TB, token string) (header, claims map[string]any) {
	tb.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		tb.Fatalf("token %q is not a compact JWS", token)
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			tb.Fatalf("token part %d: %v", i, err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			tb.Fatalf("token part %d: %v", i, err)
		}
	}
	return header, claims
}

// num reads a JSON number claim as an integer.
func num(tb testing.TB, m map[string]any, key string) int64 {
	tb.Helper()
	f, ok := m[key].(float64)
	if !ok {
		tb.Fatalf("%s: got %v (%T), want a number", key, m[key], m[key])
	}
	return int64(f)
}

// issueUserToken trades a password for a token and returns the answer.
func issueUserToken(tb testing.TB, e *env, user, pass, body string) map[string]any {
	tb.Helper()
	r := ctReq{method: "POST", path: "/user-token", user: user, pass: pass}
	if body != "" {
		r.ctype, r.body = ctJSON, body
	}
	resp := e.send(r)
	mustStatus(tb, resp, 200)
	return resp.json(tb)
}

// createToken makes a named token through POST /tokens.
func createToken(tb testing.TB, e *env, user, pass, body string) map[string]any {
	tb.Helper()
	resp := e.send(ctReq{method: "POST", path: "/tokens", user: user, pass: pass, ctype: ctJSON, body: body})
	mustStatus(tb, resp, 201)
	return resp.json(tb)
}

// jwksKeys returns the served key set by kid.
func jwksKeys(tb testing.TB, e *env) (map[string]map[string]any, jwk.Set) {
	tb.Helper()
	r := e.send(ctReq{method: "GET", path: "/.well-known/jwks.json"})
	mustStatus(tb, r, 200)
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		tb.Fatalf("JWKS: %v: %s", err, r.body)
	}
	out := map[string]map[string]any{}
	for _, k := range doc.Keys {
		kid, _ := k["kid"].(string)
		out[kid] = k
	}
	set, err := jwk.Parse(r.body)
	if err != nil {
		tb.Fatalf("parse JWKS: %v", err)
	}
	return out, set
}

var tokenIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// checkJTI checks that a jti can hold 128 random bits: at least 22
// characters of base64url (or 26 of base32).
func checkJTI(tb testing.TB, jti string) {
	tb.Helper()
	if !tokenIDPattern.MatchString(jti) || len(jti) < 22 {
		tb.Errorf("jti %q: want at least 22 URL-safe characters (128 bits)", jti)
	}
}

// TestContractTokenWire walks §2 for each signing algorithm: the header
// (alg, kid = RFC 7638 thumbprint, typ at+jwt), every claim, and that any
// JWT library and `signet verify` accept the token.
func TestContractTokenWire(t *testing.T) {
	algs := []struct {
		alg  string
		yaml string   // appended to the base config
		env  []string // extra environment
	}{
		{"ES256", "", nil}, // the default
		{"EdDSA", "", []string{"SIGNET_KEYS_ALGORITHM=EdDSA"}},
		{"RS256", "RS256", nil},
	}
	for _, a := range algs {
		t.Run(a.alg, func(t *testing.T) {
			e := newEnvForAlg(t, a.yaml, a.env)
			keysByKid, _ := jwksKeys(t, e)

			// A personal token with the default lifetime and scopes.
			ut := issueUserToken(t, e, "alice", ctAlicePass, "")
			token, _ := ut["user-token"].(string)
			h, cl := jwtParts(t, token)
			if h["alg"] != a.alg || h["typ"] != "at+jwt" {
				t.Errorf("header: got alg %v typ %v, want %s and at+jwt", h["alg"], h["typ"], a.alg)
			}
			for _, bad := range []string{"jku", "x5u", "jwk", "crit"} {
				if _, ok := h[bad]; ok {
					t.Errorf("header carries %q: %v", bad, h)
				}
			}
			kid, _ := h["kid"].(string)
			key, ok := keysByKid[kid]
			if !ok {
				t.Fatalf("kid %q is not in the JWKS %v", kid, keysByKid)
			}
			if key["alg"] != a.alg || key["use"] != "sig" {
				t.Errorf("JWKS key: got alg %v use %v, want %s and sig", key["alg"], key["use"], a.alg)
			}
			raw, _ := json.Marshal(key)
			pub, err := jwk.ParseKey(raw)
			if err != nil {
				t.Fatalf("parse JWKS key: %v", err)
			}
			tp, err := pub.Thumbprint(crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if want := base64.RawURLEncoding.EncodeToString(tp); kid != want {
				t.Errorf("kid: got %q, want the RFC 7638 thumbprint %q", kid, want)
			}
			verifyWithJWKS(t, e, token)

			iat, nbf, exp := num(t, cl, "iat"), num(t, cl, "nbf"), num(t, cl, "exp")
			wantClaims := map[string]any{
				"iss": e.url, "sub": "alice", "org": "acme", "token_type": "personal",
				"scope": "*", "jti": ut["token_id"],
			}
			for k, want := range wantClaims {
				if cl[k] != want {
					t.Errorf("claim %s: got %v, want %v", k, cl[k], want)
				}
			}
			if a.alg == "ES256" { // the environment that configures an audience
				if aud, _ := cl["aud"].([]any); len(aud) != 1 || aud[0] != "api.example.com" {
					t.Errorf("aud: got %v, want [api.example.com]", cl["aud"])
				}
			} else if _, ok := cl["aud"]; ok {
				t.Errorf("aud: got %v, want none when tokens.audience is not configured", cl["aud"])
			}
			if nbf != iat || exp-iat != 86400 {
				t.Errorf("times: got iat %d nbf %d exp %d, want nbf = iat and a 24h lifetime", iat, nbf, exp)
			}
			if now := time.Now().Unix(); iat < now-60 || iat > now+5 {
				t.Errorf("iat %d is not now (%d)", iat, now)
			}
			checkJTI(t, cl["jti"].(string))

			// Scopes travel space-separated.
			ut2 := issueUserToken(t, e, "bob", ctBobPass, `{"scopes":["reports:write","bucket:in.c-main:read"]}`)
			_, cl2 := jwtParts(t, ut2["user-token"].(string))
			if cl2["scope"] != "bucket:in.c-main:read reports:write" || cl2["sub"] != "bob" {
				t.Errorf("member token: got sub %v scope %q, want bob and \"bucket:in.c-main:read reports:write\"", cl2["sub"], cl2["scope"])
			}
			if cl2["jti"] == cl["jti"] {
				t.Errorf("two tokens share the jti %v", cl["jti"])
			}

			// An administrative token: sub is token:<token_id>.
			adm := createToken(t, e, "alice", ctAlicePass, `{"name":"ci","type":"administrative","preset":"extended"}`)
			_, acl := jwtParts(t, adm["token"].(string))
			if acl["sub"] != "token:"+adm["token_id"].(string) || acl["token_type"] != "administrative" || acl["jti"] != adm["token_id"] {
				t.Errorf("administrative claims: got sub %v token_type %v jti %v, want token:<id>, administrative, <id>", acl["sub"], acl["token_type"], acl["jti"])
			}
			if acl["scope"] != "reports:read reports:write" {
				t.Errorf("preset scope: got %q", acl["scope"])
			}
			verifyWithJWKS(t, e, adm["token"].(string))

			// signet verify accepts it and prints the claims as JSON.
			out, errOut, code := e.cli("", "verify", "--issuer", e.url, token)
			if code != 0 {
				t.Fatalf("signet verify: exit %d, want 0; stderr %s", code, errOut)
			}
			var vc map[string]any
			if err := json.Unmarshal([]byte(out), &vc); err != nil {
				t.Fatalf("signet verify output is not JSON: %v: %s", err, out)
			}
			if vc["sub"] != "alice" || vc["jti"] != cl["jti"] || vc["org"] != "acme" || vc["iss"] != e.url || vc["token_type"] != "personal" {
				t.Errorf("signet verify claims: got %s", out)
			}
			if got, ok := vc["exp"].(float64); !ok || int64(got) != exp {
				t.Errorf("signet verify exp: got %v, want %d", vc["exp"], exp)
			}
		})
	}
}

// newEnvForAlg starts an issuer for TestContractTokenWire: the default
// (ES256) one with an audience, the others without.
func newEnvForAlg(tb testing.TB, alg string, extraEnv []string) *env {
	tb.Helper()
	yaml := ctBaseYAML
	if alg != "" || len(extraEnv) > 0 {
		yaml = strings.Replace(ctBaseYAML, "tokens:\n  audience: [\"api.example.com\"]\n", "", 1)
	}
	e := newEnv(tb, yaml)
	if alg != "" {
		e.patchConfig("keys:\n", "keys:\n  algorithm: "+alg+"\n")
	}
	for _, u := range []struct{ name, org, role, pass string }{
		{"alice", "acme", "admin", ctAlicePass},
		{"bob", "acme", "member", ctBobPass},
	} {
		if _, errOut, code := e.cli(u.pass+"\n", "user", "add", u.name, "--org", u.org, "--role", u.role, "--email", u.name+"@example.com", "--password-stdin"); code != 0 {
			tb.Fatalf("user add %s: %s", u.name, errOut)
		}
	}
	e.startWithEnv(extraEnv...)
	return e
}

// TestContractUserTokenIssue walks POST /user-token: the answer's exact
// fields, every lifetime form, scopes and presets, and every refusal.
func TestContractUserTokenIssue(t *testing.T) {
	e := contractEnv(t, ctBaseYAML, "  max_failures_per_user: 1000\n  max_failures_per_client: 1000\n")
	inTwoHours := time.Now().Add(2 * time.Hour).UTC().Truncate(time.Second)
	ok := []struct {
		name      string
		user      string
		pass      string
		ctype     string
		body      string
		life      int64 // seconds; 0 = skip
		scope     string
		tolerance int64
	}{
		{"no body at all", "alice", ctAlicePass, "", "", 86400, "*", 0},
		{"no body, member", "bob", ctBobPass, "", "", 86400, "bucket:* reports:*", 0},
		{"empty JSON object", "alice", ctAlicePass, ctJSON, `{}`, 86400, "*", 0},
		{"expires_in duration", "alice", ctAlicePass, ctJSON, `{"expires_in":"72h"}`, 72 * 3600, "*", 0},
		{"expires_in seconds", "alice", ctAlicePass, ctJSON, `{"expires_in":3600}`, 3600, "*", 0},
		{"expires_in seconds as a string", "alice", ctAlicePass, ctJSON, `{"expires_in":"3600"}`, 3600, "*", 0},
		{"expires_at", "alice", ctAlicePass, ctJSON, `{"expires_at":"` + inTwoHours.Format(time.RFC3339) + `"}`, 7200, "*", 5},
		{"scopes", "bob", ctBobPass, ctJSON, `{"scopes":["reports:read"]}`, 86400, "reports:read", 0},
		{"no scopes", "bob", ctBobPass, ctJSON, `{"scopes":[]}`, 86400, "", 0},
		{"preset", "bob", ctBobPass, ctJSON, `{"preset":"extended"}`, 86400, "reports:read reports:write", 0},
		{"name", "alice", ctAlicePass, ctJSON, `{"name":"laptop","expires_in":"1h"}`, 3600, "*", 0},
		{"curl -d without a content type (form-typed JSON)", "alice", ctAlicePass, ctForm, `{"expires_in":"72h"}`, 72 * 3600, "*", 0},
		{"JSON with charset", "alice", ctAlicePass, "application/json; charset=utf-8", `{"expires_in":"2h"}`, 7200, "*", 0},
	}
	for _, tc := range ok {
		t.Run(tc.name, func(t *testing.T) {
			r := e.send(ctReq{method: "POST", path: "/user-token", user: tc.user, pass: tc.pass, ctype: tc.ctype, body: tc.body})
			mustStatus(t, r, 200)
			m := r.json(t)
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			if want := []string{"expire_time", "expires_at", "token_id", "user-token"}; !slices.Equal(keys, want) {
				t.Errorf("fields: got %v, want %v", keys, want)
			}
			_, cl := jwtParts(t, m["user-token"].(string))
			exp := num(t, cl, "exp")
			expireTime, err := time.Parse("2006-01-02 15:04:05", m["expire_time"].(string))
			if err != nil {
				t.Fatalf("expire_time %v: want YYYY-MM-DD HH:MM:SS: %v", m["expire_time"], err)
			}
			expiresAt, err := time.Parse(time.RFC3339, m["expires_at"].(string))
			if err != nil {
				t.Fatalf("expires_at %v: want RFC 3339: %v", m["expires_at"], err)
			}
			if expireTime.Unix() != exp || expiresAt.Unix() != exp {
				t.Errorf("expire_time %v (UTC) and expires_at %v must both be exp %d", m["expire_time"], m["expires_at"], exp)
			}
			if life := exp - num(t, cl, "iat"); life < tc.life-tc.tolerance || life > tc.life+tc.tolerance {
				t.Errorf("lifetime: got %ds, want %ds", life, tc.life)
			}
			if cl["scope"] != tc.scope || cl["sub"] != tc.user || cl["token_type"] != "personal" || cl["jti"] != m["token_id"] {
				t.Errorf("claims: got %v, want sub %s scope %q personal jti=token_id", cl, tc.user, tc.scope)
			}
		})
	}

	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	tooFar := time.Now().Add(8761 * time.Hour).UTC().Format(time.RFC3339)
	refused := []struct {
		name   string
		r      ctReq
		status int
		code   string
	}{
		{"no credentials", ctReq{}, 401, "unauthorized"},
		{"wrong password", ctReq{user: "alice", pass: "wrong-password"}, 401, "unauthorized"},
		{"unknown user", ctReq{user: "nobody", pass: "whatever-password"}, 401, "unauthorized"},
		{"bearer instead of basic", ctReq{header: map[string]string{"Authorization": "Bearer abc"}}, 401, "unauthorized"},
		{"lifetime past the maximum", ctReq{user: "alice", pass: ctAlicePass, ctype: ctJSON, body: `{"expires_in":"8761h"}`}, 400, "invalid_request"},
		{"seconds past the maximum", ctReq{user: "alice", pass: ctAlicePass, ctype: ctJSON, body: `{"expires_in":31536001}`}, 400, "invalid_request"},
		{"expires_at past the maximum", ctReq{user: "alice", pass: ctAlicePass, ctype: ctJSON, body: `{"expires_at":"` + tooFar + `"}`}, 400, "invalid_request"},
		{"expiry in the past", ctReq{user: "alice", pass: ctAlicePass, ctype: ctJSON, body: `{"expires_at":"` + past + `"}`}, 400, "invalid_request"},
		{"negative lifetime", ctReq{user: "alice", pass: ctAlicePass, ctype: ctJSON, body: `{"expires_in":"-1h"}`}, 400, "invalid_request"},
		{"zero lifetime", ctReq{user: "alice", pass: ctAlicePass, ctype: ctJSON, body: `{"expires_in":0}`}, 400, "invalid_request"},
		{"unparsable lifetime", ctReq{user: "alice", pass: ctAlicePass, ctype: ctJSON, body: `{"expires_in":"soon"}`}, 400, "invalid_request"},
		{"unparsable expires_at", ctReq{user: "alice", pass: ctAlicePass, ctype: ctJSON, body: `{"expires_at":"tomorrow"}`}, 400, "invalid_request"},
		{"unknown preset", ctReq{user: "alice", pass: ctAlicePass, ctype: ctJSON, body: `{"preset":"nope"}`}, 400, "invalid_request"},
		{"scope beyond the caller", ctReq{user: "bob", pass: ctBobPass, ctype: ctJSON, body: `{"scopes":["admin:all"]}`}, 403, "forbidden"},
		{"preset beyond the caller", ctReq{user: "bob", pass: ctBobPass, ctype: ctJSON, body: `{"preset":"ops"}`}, 403, "forbidden"},
		{"wider pattern than the caller", ctReq{user: "bob", pass: ctBobPass, ctype: ctJSON, body: `{"scopes":["*"]}`}, 403, "forbidden"},
		{"malformed JSON", ctReq{user: "alice", pass: ctAlicePass, ctype: ctJSON, body: `{"expires_in":`}, 400, "invalid_request"},
		{"JSON array", ctReq{user: "alice", pass: ctAlicePass, ctype: ctJSON, body: `["72h"]`}, 400, "invalid_request"},
		{"wrong type", ctReq{user: "alice", pass: ctAlicePass, ctype: ctJSON, body: `{"scopes":"reports:read"}`}, 400, "invalid_request"},
		{"form fields", ctReq{user: "alice", pass: ctAlicePass, ctype: ctForm, body: `expires_in=72h`}, 400, "invalid_request"},
		{"form-typed JSON from a page of another site", ctReq{user: "alice", pass: ctAlicePass, ctype: ctForm, body: `{"expires_in":"72h"}`, header: map[string]string{"Origin": "https://evil.example"}}, 403, "forbidden"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			r.method, r.path = "POST", "/user-token"
			wantErr(t, e.send(r), tc.status, tc.code)
		})
	}
}

// TestContractUserTokenInfo walks GET /user-token: the documented shape,
// who may look, and 400 invalid_token for anything not ours.
func TestContractUserTokenInfo(t *testing.T) {
	e := contractEnv(t, ctBaseYAML, "")
	bobTok := issueUserToken(t, e, "bob", ctBobPass, `{"scopes":["reports:read"],"name":"laptop"}`)
	value := bobTok["user-token"].(string)
	get := func(user, pass, token string) response {
		return e.send(ctReq{method: "GET", path: "/user-token?token=" + url.QueryEscape(token), user: user, pass: pass})
	}

	r := get("bob", ctBobPass, value)
	mustStatus(t, r, 200)
	info := r.json(t)
	want := map[string]any{
		"user": "bob", "email": "bob@example.com", "organization_name": "acme", "token_id": bobTok["token_id"],
		"type": "personal", "name": "laptop", "active": true, "revoked": false, "expired": false,
		"expire_time": bobTok["expire_time"], "expires_at": bobTok["expires_at"],
	}
	for k, v := range want {
		if info[k] != v {
			t.Errorf("%s: got %v, want %v (body %s)", k, info[k], v, r.body)
		}
	}
	if sc, _ := info["scopes"].([]any); len(sc) != 1 || sc[0] != "reports:read" {
		t.Errorf("scopes: got %v, want [reports:read]", info["scopes"])
	}
	if _, err := time.Parse(time.RFC3339, fmt.Sprint(info["issued_at"])); err != nil {
		t.Errorf("issued_at %v: want RFC 3339", info["issued_at"])
	}

	// Who may look: the owner and an admin of the org; nobody else.
	mustStatus(t, get("alice", ctAlicePass, value), 200)
	wantErr(t, get("dan", ctDanPass, value), 403, "forbidden")
	wantErr(t, get("carol", ctCarolPass, value), 403, "forbidden")
	wantErr(t, get("", "", value), 401, "unauthorized")
	wantErr(t, get("bob", "wrong-password", value), 401, "unauthorized")

	// Anything not signed by this issuer: 400 invalid_token.
	parts := strings.Split(value, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"alice"}`)) + "." + parts[2]
	_, foreignKey, _ := ed25519.GenerateKey(rand.Reader)
	_, cl := jwtParts(t, value)
	payload, _ := json.Marshal(cl)
	foreign, err := jws.Sign(payload, jws.WithKey(jwa.EdDSA, foreignKey))
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"garbage":             "garbage",
		"three dots":          "a.b.c",
		"tampered payload":    tampered,
		"truncated":           value[:len(value)-5],
		"foreign key":         string(foreign),
		"alg none":            base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + parts[1] + ".",
		"very long":           strings.Repeat("a", 9000),
		"unicode":             "töken.☃.x",
		"three parts of junk": "x.y.z",
	} {
		t.Run(name, func(t *testing.T) {
			wantErr(t, get("bob", ctBobPass, tok), 400, "invalid_token")
		})
	}
	wantErr(t, e.send(ctReq{method: "GET", path: "/user-token", user: "bob", pass: ctBobPass}), 400, "invalid_request")

	// Inactive tokens are still answered: revoked, then expired.
	mustStatus(t, e.send(ctReq{method: "DELETE", path: "/tokens/" + bobTok["token_id"].(string), user: "bob", pass: ctBobPass}), 204)
	info = get("bob", ctBobPass, value).json(t)
	if info["active"] != false || info["revoked"] != true || info["expired"] != false {
		t.Errorf("revoked token: got active %v revoked %v expired %v", info["active"], info["revoked"], info["expired"])
	}
	short := issueUserToken(t, e, "bob", ctBobPass, `{"expires_in":1}`)
	time.Sleep(2100 * time.Millisecond)
	r = get("bob", ctBobPass, short["user-token"].(string))
	mustStatus(t, r, 200)
	if info = r.json(t); info["active"] != false || info["expired"] != true || info["revoked"] != false {
		t.Errorf("expired token: got active %v expired %v revoked %v", info["active"], info["expired"], info["revoked"])
	}
}

// TestContractManageTokens walks /tokens: create, list with filters,
// metadata, revoke, regenerate and copy, and who may do what.
func TestContractManageTokens(t *testing.T) {
	e := contractEnv(t, ctBaseYAML, "")
	admin := func(r ctReq) ctReq { r.user, r.pass = "alice", ctAlicePass; return r }
	member := func(r ctReq) ctReq { r.user, r.pass = "bob", ctBobPass; return r }

	// Create: 201 with the value once and the metadata; default 1 year.
	personal := createToken(t, e, "bob", ctBobPass, `{"name":"ci","description":"nightly","scopes":["reports:read"]}`)
	for k, v := range map[string]any{"name": "ci", "description": "nightly", "type": "personal", "user": "bob", "organization_name": "acme", "active": true, "revoked": false} {
		if personal[k] != v {
			t.Errorf("POST /tokens %s: got %v, want %v", k, personal[k], v)
		}
	}
	_, pcl := jwtParts(t, personal["token"].(string))
	if life := num(t, pcl, "exp") - num(t, pcl, "iat"); life != 8760*3600 {
		t.Errorf("default lifetime of POST /tokens: got %ds, want 1 year", life)
	}
	adm := createToken(t, e, "alice", ctAlicePass, `{"name":"deploy","type":"administrative","preset":"extended","expires_in":"720h"}`)
	_, acl := jwtParts(t, adm["token"].(string))
	if num(t, acl, "exp")-num(t, acl, "iat") != 720*3600 || adm["type"] != "administrative" {
		t.Errorf("administrative token: got %v", adm)
	}
	at := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	byAt := createToken(t, e, "alice", ctAlicePass, `{"name":"until","expires_at":"`+at.Format(time.RFC3339)+`","expires_in":null}`)
	if byAt["expires_at"] != at.Format(time.RFC3339) {
		t.Errorf("expires_at: got %v, want %s", byAt["expires_at"], at.Format(time.RFC3339))
	}
	values := []string{personal["token"].(string), adm["token"].(string), byAt["token"].(string)}

	refused := []struct {
		name   string
		r      ctReq
		status int
		code   string
	}{
		{"member creates administrative", member(ctReq{ctype: ctJSON, body: `{"name":"x","type":"administrative"}`}), 403, "forbidden"},
		{"no name", admin(ctReq{ctype: ctJSON, body: `{"scopes":[]}`}), 400, "invalid_request"},
		{"no body", admin(ctReq{}), 400, "invalid_request"},
		{"bad type", admin(ctReq{ctype: ctJSON, body: `{"name":"x","type":"robot"}`}), 400, "invalid_request"},
		{"unknown preset", admin(ctReq{ctype: ctJSON, body: `{"name":"x","preset":"nope"}`}), 400, "invalid_request"},
		{"scope beyond the caller", member(ctReq{ctype: ctJSON, body: `{"name":"x","scopes":["deploy:run"]}`}), 403, "forbidden"},
		{"preset beyond the caller", member(ctReq{ctype: ctJSON, body: `{"name":"x","preset":"ops"}`}), 403, "forbidden"},
		{"lifetime past the maximum", admin(ctReq{ctype: ctJSON, body: `{"name":"x","expires_in":"8761h"}`}), 400, "invalid_request"},
		{"expiry in the past", admin(ctReq{ctype: ctJSON, body: `{"name":"x","expires_at":"2001-01-01T00:00:00Z"}`}), 400, "invalid_request"},
		{"duplicate live name", member(ctReq{ctype: ctJSON, body: `{"name":"ci"}`}), 409, "conflict"},
		{"no credentials", ctReq{ctype: ctJSON, body: `{"name":"x"}`}, 401, "unauthorized"},
	}
	for _, tc := range refused {
		t.Run("create/"+tc.name, func(t *testing.T) {
			r := tc.r
			r.method, r.path = "POST", "/tokens"
			wantErr(t, e.send(r), tc.status, tc.code)
		})
	}

	// List: filters, visibility, and never a value.
	list := func(r ctReq) []map[string]any {
		t.Helper()
		r.method = "GET"
		resp := e.send(r)
		mustStatus(t, resp, 200)
		for _, v := range values {
			if strings.Contains(string(resp.body), v) {
				t.Fatalf("GET %s shows a token value", r.path)
			}
		}
		var out struct {
			Tokens []map[string]any `json:"tokens"`
		}
		if err := json.Unmarshal(resp.body, &out); err != nil || out.Tokens == nil {
			t.Fatalf("GET %s: got %s, want {\"tokens\":[...]}", r.path, resp.body)
		}
		return out.Tokens
	}
	ids := func(ts []map[string]any) []string {
		var out []string
		for _, m := range ts {
			out = append(out, m["token_id"].(string))
		}
		sort.Strings(out)
		return out
	}
	sorted := func(s ...string) []string { sort.Strings(s); return s }
	pid, aid, bid := personal["token_id"].(string), adm["token_id"].(string), byAt["token_id"].(string)
	for _, tc := range []struct {
		name string
		r    ctReq
		want []string
	}{
		{"admin sees the org", admin(ctReq{path: "/tokens"}), sorted(pid, aid, bid)},
		{"type=administrative", admin(ctReq{path: "/tokens?type=administrative"}), sorted(aid)},
		{"type=personal", admin(ctReq{path: "/tokens?type=personal"}), sorted(pid, bid)},
		{"owner=bob", admin(ctReq{path: "/tokens?owner=bob"}), sorted(pid)},
		{"member sees their own", member(ctReq{path: "/tokens"}), sorted(pid)},
		{"member asks for administrative", member(ctReq{path: "/tokens?type=administrative"}), nil},
		{"other org", ctReq{path: "/tokens", user: "carol", pass: ctCarolPass}, nil},
	} {
		t.Run("list/"+tc.name, func(t *testing.T) {
			if got := ids(list(tc.r)); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	wantErr(t, e.send(admin(ctReq{method: "GET", path: "/tokens?type=robot"})), 400, "invalid_request")
	wantErr(t, e.send(member(ctReq{method: "GET", path: "/tokens?owner=alice"})), 403, "forbidden")

	// Metadata: visible ones 200, the rest 404.
	r := e.send(admin(ctReq{method: "GET", path: "/tokens/" + pid}))
	mustStatus(t, r, 200)
	meta := r.json(t)
	if meta["token_id"] != pid || meta["user"] != "bob" || meta["token"] != nil {
		t.Errorf("GET /tokens/{id}: got %s", r.body)
	}
	wantErr(t, e.send(member(ctReq{method: "GET", path: "/tokens/" + aid})), 404, "not_found")
	wantErr(t, e.send(ctReq{method: "GET", path: "/tokens/" + pid, user: "carol", pass: ctCarolPass}), 404, "not_found")
	wantErr(t, e.send(admin(ctReq{method: "GET", path: "/tokens/aaaaaaaaaaaaaaaaaaaaaaaaaa"})), 404, "not_found")
	wantErr(t, e.send(ctReq{method: "DELETE", path: "/tokens/" + pid, user: "dan", pass: ctDanPass}), 404, "not_found")

	// Revoke: 204, again 204, durable and published.
	for i := 0; i < 2; i++ {
		r := e.send(member(ctReq{method: "DELETE", path: "/tokens/" + pid}))
		mustStatus(t, r, 204)
		if len(r.body) != 0 {
			t.Errorf("DELETE answered a body: %q", r.body)
		}
	}
	if m := e.send(member(ctReq{method: "GET", path: "/tokens/" + pid})).json(t); m["revoked"] != true || m["active"] != false {
		t.Errorf("after DELETE: got %v", m)
	}
	mustStatus(t, e.send(ctReq{method: "GET", path: "/revocations/" + pid}), 200)
	if got := ids(list(member(ctReq{path: "/tokens"}))); len(got) != 0 {
		t.Errorf("list without include_revoked shows %v", got)
	}
	if got := ids(list(member(ctReq{path: "/tokens?include_revoked=true"}))); !slices.Equal(got, []string{pid}) {
		t.Errorf("include_revoked=true: got %v, want [%s]", got, pid)
	}
	wantErr(t, e.send(admin(ctReq{method: "DELETE", path: "/tokens/aaaaaaaaaaaaaaaaaaaaaaaaaa"})), 404, "not_found")

	// Regenerate: new value and id, same parameters, lifetime from now;
	// the old one is revoked; a second regenerate is 409.
	r = e.send(admin(ctReq{method: "POST", path: "/tokens/" + aid + "/regenerate"}))
	mustStatus(t, r, 201)
	regen := r.json(t)
	nid, _ := regen["token_id"].(string)
	if nid == "" || nid == aid || regen["token"] == nil || regen["token"] == adm["token"] {
		t.Fatalf("regenerate: got %s, want a new id and value", r.body)
	}
	for _, k := range []string{"name", "description", "type", "scopes"} {
		if fmt.Sprint(regen[k]) != fmt.Sprint(adm[k]) {
			t.Errorf("regenerate %s: got %v, want %v", k, regen[k], adm[k])
		}
	}
	_, rcl := jwtParts(t, regen["token"].(string))
	if num(t, rcl, "exp")-num(t, rcl, "iat") != 720*3600 || rcl["sub"] != "token:"+nid {
		t.Errorf("regenerated claims: got %v", rcl)
	}
	if old := e.send(admin(ctReq{method: "GET", path: "/tokens/" + aid})).json(t); old["revoked"] != true {
		t.Errorf("regenerate left the old token unrevoked: %v", old)
	}
	wantErr(t, e.send(admin(ctReq{method: "POST", path: "/tokens/" + aid + "/regenerate"})), 409, "conflict")
	wantErr(t, e.send(member(ctReq{method: "POST", path: "/tokens/" + nid + "/regenerate"})), 404, "not_found")

	// Regenerate is allowed after expiry.
	short := createToken(t, e, "bob", ctBobPass, `{"name":"short","expires_in":"1s"}`)
	time.Sleep(2100 * time.Millisecond)
	r = e.send(member(ctReq{method: "POST", path: "/tokens/" + short["token_id"].(string) + "/regenerate"}))
	mustStatus(t, r, 201)
	if m := r.json(t); m["active"] != true || m["name"] != "short" {
		t.Errorf("regenerate after expiry: got %s", r.body)
	}

	// Copy: a new token with the same parameters, overrides from the
	// body; the original stays valid.
	r = e.send(admin(ctReq{method: "POST", path: "/tokens/" + nid + "/copy", ctype: ctJSON, body: `{"name":"deploy-2","expires_in":"2h"}`}))
	mustStatus(t, r, 201)
	cp := r.json(t)
	_, ccl := jwtParts(t, cp["token"].(string))
	if cp["token_id"] == nid || cp["name"] != "deploy-2" || cp["type"] != "administrative" || num(t, ccl, "exp")-num(t, ccl, "iat") != 7200 || fmt.Sprint(cp["scopes"]) != fmt.Sprint(adm["scopes"]) {
		t.Errorf("copy: got %s", r.body)
	}
	if orig := e.send(admin(ctReq{method: "GET", path: "/tokens/" + nid})).json(t); orig["active"] != true {
		t.Errorf("copy revoked the original: %v", orig)
	}
	r = e.send(admin(ctReq{method: "POST", path: "/tokens/" + nid + "/copy"}))
	mustStatus(t, r, 201)
	if m := r.json(t); m["name"] == "deploy" || m["token_id"] == nid {
		t.Errorf("copy without a body: got %s, want a new id and a distinct name", r.body)
	}
	wantErr(t, e.send(admin(ctReq{method: "POST", path: "/tokens/" + nid + "/copy", ctype: ctJSON, body: `{"expires_in":"9000h"}`})), 400, "invalid_request")
	wantErr(t, e.send(admin(ctReq{method: "POST", path: "/tokens/aaaaaaaaaaaaaaaaaaaaaaaaaa/copy"})), 404, "not_found")
}

// TestContractUsersAndAudit walks /users and /audit.
func TestContractUsersAndAudit(t *testing.T) {
	e := contractEnv(t, ctBaseYAML, "")
	admin := func(r ctReq) ctReq { r.user, r.pass = "alice", ctAlicePass; return r }

	r := e.send(admin(ctReq{method: "GET", path: "/users"}))
	mustStatus(t, r, 200)
	var ul struct {
		Users []map[string]any `json:"users"`
	}
	if err := json.Unmarshal(r.body, &ul); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range ul.Users {
		names = append(names, u["username"].(string))
		if u["organization_name"] != "acme" || u["email"] == "" || (u["role"] != "admin" && u["role"] != "member") {
			t.Errorf("user: got %v", u)
		}
		if _, ok := u["password_hash"]; ok {
			t.Errorf("user shows a password hash: %v", u)
		}
	}
	sort.Strings(names)
	if !slices.Equal(names, []string{"alice", "bob", "dan"}) {
		t.Errorf("GET /users: got %v, want alice, bob, dan", names)
	}
	wantErr(t, e.send(ctReq{method: "GET", path: "/users", user: "bob", pass: ctBobPass}), 403, "forbidden")

	// Create.
	r = e.send(admin(ctReq{method: "POST", path: "/users", ctype: ctJSON, body: `{"username":"erin","password":"erin-password-1","email":"erin@example.com","role":"member"}`}))
	mustStatus(t, r, 201)
	if m := r.json(t); m["username"] != "erin" || m["organization_name"] != "acme" || m["role"] != "member" {
		t.Errorf("POST /users: got %s", r.body)
	}
	erinTok := issueUserToken(t, e, "erin", "erin-password-1", "")
	for _, tc := range []struct {
		name   string
		r      ctReq
		status int
		code   string
	}{
		{"taken username", admin(ctReq{ctype: ctJSON, body: `{"username":"carol","password":"long-password","email":"c@example.com","role":"member"}`}), 409, "conflict"},
		{"member", ctReq{user: "bob", pass: ctBobPass, ctype: ctJSON, body: `{"username":"x1","password":"long-password","email":"x@example.com","role":"member"}`}, 403, "forbidden"},
		{"short password", admin(ctReq{ctype: ctJSON, body: `{"username":"x2","password":"short","email":"x@example.com","role":"member"}`}), 400, "invalid_request"},
		{"bad role", admin(ctReq{ctype: ctJSON, body: `{"username":"x3","password":"long-password","email":"x@example.com","role":"owner"}`}), 400, "invalid_request"},
		{"bad email", admin(ctReq{ctype: ctJSON, body: `{"username":"x4","password":"long-password","email":"nope","role":"member"}`}), 400, "invalid_request"},
		{"missing fields", admin(ctReq{ctype: ctJSON, body: `{"username":"x5"}`}), 400, "invalid_request"},
		{"no body", admin(ctReq{}), 400, "invalid_request"},
	} {
		t.Run("create/"+tc.name, func(t *testing.T) {
			q := tc.r
			q.method, q.path = "POST", "/users"
			wantErr(t, e.send(q), tc.status, tc.code)
		})
	}

	// Password: the user themself or an admin; members not for others.
	mustStatus(t, e.send(ctReq{method: "PUT", path: "/users/erin/password", user: "erin", pass: "erin-password-1", ctype: ctJSON, body: `{"password":"erin-password-2"}`}), 204)
	wantErr(t, e.send(ctReq{method: "POST", path: "/user-token", user: "erin", pass: "erin-password-1"}), 401, "unauthorized")
	issueUserToken(t, e, "erin", "erin-password-2", "")
	wantErr(t, e.send(ctReq{method: "PUT", path: "/users/erin/password", user: "bob", pass: ctBobPass, ctype: ctJSON, body: `{"password":"bob-owns-erin"}`}), 403, "forbidden")
	mustStatus(t, e.send(admin(ctReq{method: "PUT", path: "/users/erin/password", ctype: ctJSON, body: `{"password":"erin-password-3"}`})), 204)
	wantErr(t, e.send(admin(ctReq{method: "PUT", path: "/users/erin/password", ctype: ctJSON, body: `{"password":"short"}`})), 400, "invalid_request")
	wantErr(t, e.send(ctReq{method: "PUT", path: "/users/bob/password", user: "carol", pass: ctCarolPass, ctype: ctJSON, body: `{"password":"carol-owns-bob"}`}), 404, "not_found")

	// Remove: 204, the user's personal tokens are revoked.
	mustStatus(t, e.send(admin(ctReq{method: "DELETE", path: "/users/erin"})), 204)
	r = e.send(admin(ctReq{method: "GET", path: "/user-token?token=" + erinTok["user-token"].(string)}))
	mustStatus(t, r, 200)
	if m := r.json(t); m["active"] != false || m["revoked"] != true {
		t.Errorf("token of a removed user: got %s, want revoked", r.body)
	}
	r = e.send(admin(ctReq{method: "POST", path: "/introspect", ctype: ctForm, body: form("token", erinTok["user-token"].(string))}))
	if m := r.json(t); m["active"] != false {
		t.Errorf("introspect of a removed user's token: got %s", r.body)
	}
	wantErr(t, e.send(ctReq{method: "POST", path: "/user-token", user: "erin", pass: "erin-password-3"}), 401, "unauthorized")
	wantErr(t, e.send(admin(ctReq{method: "DELETE", path: "/users/erin"})), 404, "not_found")
	wantErr(t, e.send(admin(ctReq{method: "DELETE", path: "/users/alice"})), 409, "conflict")
	wantErr(t, e.send(ctReq{method: "DELETE", path: "/users/bob", user: "carol", pass: ctCarolPass}), 404, "not_found")
	wantErr(t, e.send(ctReq{method: "DELETE", path: "/users/dan", user: "bob", pass: ctBobPass}), 403, "forbidden")

	// Audit: who did what to which token or user, when, from where.
	tmp := createToken(t, e, "alice", ctAlicePass, `{"name":"audited"}`)
	mustStatus(t, e.send(admin(ctReq{method: "DELETE", path: "/tokens/" + tmp["token_id"].(string)})), 204)
	r = e.send(admin(ctReq{method: "GET", path: "/audit"}))
	mustStatus(t, r, 200)
	var al struct {
		Events []map[string]any `json:"events"`
	}
	if err := json.Unmarshal(r.body, &al); err != nil {
		t.Fatal(err)
	}
	actions := map[string]bool{}
	for _, ev := range al.Events {
		actions[ev["action"].(string)] = true
		if _, err := time.Parse(time.RFC3339, fmt.Sprint(ev["time"])); err != nil {
			t.Errorf("audit time %v: want RFC 3339", ev["time"])
		}
		for _, k := range []string{"actor", "target", "client_ip"} {
			if _, ok := ev[k]; !ok {
				t.Errorf("audit event lacks %s: %v", k, ev)
			}
		}
	}
	for _, a := range []string{"token.create", "token.revoke", "user.add", "user.remove", "user.password", "login.failed"} {
		if !actions[a] {
			t.Errorf("audit lacks %s; got %v", a, actions)
		}
	}
	r = e.send(admin(ctReq{method: "GET", path: "/audit?action=user.remove&limit=5"}))
	mustStatus(t, r, 200)
	if err := json.Unmarshal(r.body, &al); err != nil || len(al.Events) != 1 || al.Events[0]["target"] != "erin" || al.Events[0]["actor"] != "alice" {
		t.Errorf("audit?action=user.remove: got %s", r.body)
	}
	wantErr(t, e.send(ctReq{method: "GET", path: "/audit", user: "bob", pass: ctBobPass}), 403, "forbidden")
	wantErr(t, e.send(admin(ctReq{method: "GET", path: "/audit?since=yesterday"})), 400, "invalid_request")
	wantErr(t, e.send(admin(ctReq{method: "GET", path: "/audit?limit=0"})), 400, "invalid_request")
	r = e.send(ctReq{method: "GET", path: "/audit", user: "carol", pass: ctCarolPass})
	mustStatus(t, r, 200)
	if strings.Contains(string(r.body), "erin") {
		t.Errorf("another org's admin sees acme's audit: %s", r.body)
	}
}

// TestContractStandardEndpoints walks RFC 7009, RFC 7662, JWKS, RFC 8414,
// health, metrics and the revocation list.
func TestContractStandardEndpoints(t *testing.T) {
	e := contractEnv(t, ctBaseYAML, "")
	bob := issueUserToken(t, e, "bob", ctBobPass, `{"scopes":["reports:read"]}`)
	value, id := bob["user-token"].(string), bob["token_id"].(string)

	// Introspection (RFC 7662).
	r := e.send(ctReq{method: "POST", path: "/introspect", user: "bob", pass: ctBobPass, ctype: ctForm, body: form("token", value)})
	mustStatus(t, r, 200)
	in := r.json(t)
	_, cl := jwtParts(t, value)
	for _, k := range []string{"sub", "org", "scope", "jti", "token_type"} {
		if in[k] != cl[k] {
			t.Errorf("introspect %s: got %v, want %v", k, in[k], cl[k])
		}
	}
	if in["active"] != true || num(t, in, "exp") != num(t, cl, "exp") || num(t, in, "iat") != num(t, cl, "iat") {
		t.Errorf("introspect: got %s", r.body)
	}
	for name, q := range map[string]ctReq{
		"garbage":      {user: "bob", pass: ctBobPass, ctype: ctForm, body: form("token", "garbage")},
		"other org":    {user: "carol", pass: ctCarolPass, ctype: ctForm, body: form("token", value)},
		"other member": {user: "dan", pass: ctDanPass, ctype: ctForm, body: form("token", value)},
	} {
		q.method, q.path = "POST", "/introspect"
		r := e.send(q)
		mustStatus(t, r, 200)
		if string(bytes.TrimSpace(r.body)) != `{"active":false}` {
			t.Errorf("introspect %s: got %s, want {\"active\":false}", name, r.body)
		}
	}
	wantErr(t, e.send(ctReq{method: "POST", path: "/introspect", ctype: ctForm, body: form("token", value)}), 401, "unauthorized")
	wantErr(t, e.send(ctReq{method: "POST", path: "/introspect", user: "bob", pass: ctBobPass, ctype: ctForm}), 400, "invalid_request")

	// Revocation (RFC 7009).
	for name, q := range map[string]ctReq{
		"garbage token":  {user: "bob", pass: ctBobPass, ctype: ctForm, body: form("token", "garbage")},
		"with type hint": {user: "bob", pass: ctBobPass, ctype: ctForm, body: form("token", "garbage", "token_type_hint", "access_token")},
	} {
		q.method, q.path = "POST", "/revoke"
		if r := e.send(q); r.status != 200 || len(r.body) != 0 {
			t.Errorf("revoke %s: got %d %s, want 200 with an empty body", name, r.status, r.body)
		}
	}
	wantErr(t, e.send(ctReq{method: "POST", path: "/revoke", user: "carol", pass: ctCarolPass, ctype: ctForm, body: form("token", value)}), 403, "forbidden")
	wantErr(t, e.send(ctReq{method: "POST", path: "/revoke", user: "bob", pass: ctBobPass, ctype: ctForm, body: form("nottoken", "x")}), 400, "invalid_request")
	wantErr(t, e.send(ctReq{method: "POST", path: "/revoke", ctype: ctForm, body: form("token", value)}), 401, "unauthorized")

	// The revocation list before, then the revocation, then after.
	r = e.send(ctReq{method: "GET", path: "/revocations"})
	mustStatus(t, r, 200)
	etag := r.header.Get("ETag")
	if etag == "" || len(r.body) == 0 || strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /revocations: ETag %q, Content-Type %q, %d bytes; want a binary snapshot with an ETag", etag, r.header.Get("Content-Type"), len(r.body))
	}
	r = e.send(ctReq{method: "GET", path: "/revocations", header: map[string]string{"If-None-Match": etag}})
	if r.status != 304 || len(r.body) != 0 {
		t.Errorf("If-None-Match: got %d with %d bytes, want 304", r.status, len(r.body))
	}
	version := strings.Trim(strings.TrimPrefix(etag, "W/"), `"`)
	wantErr(t, e.send(ctReq{method: "GET", path: "/revocations/" + id}), 404, "not_found")

	// Subscribe to the event stream before revoking.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/revocations/events", nil)
	req.Header.Set("Accept", "text/event-stream")
	stream, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	if stream.StatusCode != 200 || !strings.HasPrefix(stream.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET /revocations/events: got %d %q, want 200 text/event-stream", stream.StatusCode, stream.Header.Get("Content-Type"))
	}
	seen := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stream.Body)
		for sc.Scan() {
			if strings.Contains(sc.Text(), id) {
				seen <- true
				return
			}
		}
		seen <- false
	}()

	r = e.send(ctReq{method: "POST", path: "/revoke", user: "bob", pass: ctBobPass, ctype: ctForm, body: form("token", value)})
	mustStatus(t, r, 200)
	select {
	case ok := <-seen:
		if !ok {
			t.Errorf("the event stream ended without the revocation of %s", id)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("no event for the revocation of %s within 5s", id)
	}
	cancel()
	r = e.send(ctReq{method: "POST", path: "/introspect", user: "bob", pass: ctBobPass, ctype: ctForm, body: form("token", value)})
	if string(bytes.TrimSpace(r.body)) != `{"active":false}` {
		t.Errorf("introspect after /revoke: got %s", r.body)
	}
	mustStatus(t, e.send(ctReq{method: "POST", path: "/revoke", user: "bob", pass: ctBobPass, ctype: ctForm, body: form("token", value)}), 200)

	r = e.send(ctReq{method: "GET", path: "/revocations/" + id})
	mustStatus(t, r, 200)
	if !strings.Contains(string(r.body), id) {
		t.Errorf("GET /revocations/{id}: got %s", r.body)
	}
	wantErr(t, e.send(ctReq{method: "GET", path: "/revocations/aaaaaaaaaaaaaaaaaaaaaaaaaa"}), 404, "not_found")
	r = e.send(ctReq{method: "GET", path: "/revocations", header: map[string]string{"If-None-Match": etag}})
	if r.status != 200 || r.header.Get("ETag") == etag {
		t.Errorf("after a revocation: got %d ETag %q, want 200 and a new ETag", r.status, r.header.Get("ETag"))
	}
	r = e.send(ctReq{method: "GET", path: "/revocations?since=" + version})
	mustStatus(t, r, 200)
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") || !strings.Contains(string(r.body), id) {
		t.Errorf("GET /revocations?since=%s: got %q %s", version, r.header.Get("Content-Type"), r.body)
	}
	wantErr(t, e.send(ctReq{method: "GET", path: "/revocations?since=999999999"}), 410, "gone")

	// A multipart form (curl -F) is a form too.
	other := issueUserToken(t, e, "bob", ctBobPass, "")
	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	_ = mw.WriteField("token", other["user-token"].(string))
	_ = mw.Close()
	mustStatus(t, e.send(ctReq{method: "POST", path: "/revoke", user: "bob", pass: ctBobPass, ctype: mw.FormDataContentType(), body: mp.String()}), 200)
	mustStatus(t, e.send(ctReq{method: "GET", path: "/revocations/" + other["token_id"].(string)}), 200)

	// Discovery and keys.
	r = e.send(ctReq{method: "GET", path: "/.well-known/oauth-authorization-server"})
	mustStatus(t, r, 200)
	md := r.json(t)
	for k, want := range map[string]string{
		"issuer": e.url, "jwks_uri": e.url + "/.well-known/jwks.json", "revocation_endpoint": e.url + "/revoke",
		"introspection_endpoint": e.url + "/introspect", "revocation_list_uri": e.url + "/revocations",
	} {
		if md[k] != want {
			t.Errorf("metadata %s: got %v, want %s", k, md[k], want)
		}
	}
	for _, p := range []string{"/.well-known/jwks.json", "/.well-known/oauth-authorization-server", "/healthz", "/readyz"} {
		r := e.send(ctReq{method: "GET", path: p})
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			t.Errorf("GET %s: got %d %q, want 200 JSON", p, r.status, r.header.Get("Content-Type"))
		}
	}
	r = e.send(ctReq{method: "GET", path: "/metrics"})
	mustStatus(t, r, 200)
	if !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") || !strings.Contains(string(r.body), "# TYPE signet_tokens_issued_total counter") {
		t.Errorf("GET /metrics: got %q, want Prometheus text with signet_tokens_issued_total", r.header.Get("Content-Type"))
	}
}

// TestContractRateLimit: failed logins past the limit answer 429 with
// Retry-After, even with the right password; other accounts are not hurt.
func TestContractRateLimit(t *testing.T) {
	e := contractEnv(t, ctBaseYAML, "  max_failures_per_user: 5\n")
	for i := 0; i < 5; i++ {
		wantErr(t, e.send(ctReq{method: "POST", path: "/user-token", user: "dan", pass: "wrong-password"}), 401, "unauthorized")
	}
	r := e.send(ctReq{method: "POST", path: "/user-token", user: "dan", pass: "wrong-password"})
	wantErr(t, r, 429, "rate_limited")
	wantErr(t, e.send(ctReq{method: "POST", path: "/user-token", user: "dan", pass: ctDanPass}), 429, "rate_limited")
	wantErr(t, e.send(ctReq{method: "GET", path: "/tokens", user: "dan", pass: ctDanPass}), 429, "rate_limited")
	issueUserToken(t, e, "bob", ctBobPass, "")
}

// TestContractBrowsers: a state-changing request carrying an Origin
// other than the issuer's own, or Sec-Fetch-Site cross-site/same-site, is
// refused with 403 before anything else is read, whatever its content type
// and even with no body; reads, the issuer's own origin and scripts
// (neither header) are unaffected.
func TestContractBrowsers(t *testing.T) {
	e := contractEnv(t, ctBaseYAML, "  max_failures_per_user: 3\n")
	tok := createToken(t, e, "alice", ctAlicePass, `{"name":"target"}`)
	id := tok["token_id"].(string)
	u, _ := url.Parse(e.url)
	sameSite := "http://localhost:" + u.Port() // what 127.0.0.1 calls a different origin
	otherPort := "http://" + u.Hostname() + ":1"
	newAdmin := `{"username":"mallory","password":"mallory-password-1","email":"m@example.com","role":"admin"}`
	refused := []map[string]string{
		{"Origin": "https://evil.example"},
		{"Origin": sameSite},
		{"Origin": otherPort},
		{"Origin": "null"},
		{"Sec-Fetch-Site": "cross-site"},
		{"Sec-Fetch-Site": "same-site"},
		{"Origin": e.url, "Sec-Fetch-Site": "same-site"},
	}
	requests := []ctReq{
		{method: "POST", path: "/users", body: newAdmin},
		{method: "POST", path: "/users", ctype: "text/plain", body: newAdmin},
		{method: "POST", path: "/users", ctype: ctJSON, body: newAdmin},
		{method: "POST", path: "/tokens/" + id + "/regenerate"},
		{method: "POST", path: "/tokens/" + id + "/regenerate", ctype: ctForm},
		{method: "DELETE", path: "/tokens/" + id},
		{method: "PUT", path: "/users/bob/password", body: `{"password":"taken-over-1"}`},
		{method: "PATCH", path: "/tokens/" + id},
		{method: "POST", path: "/no-such-path"},
	}
	for _, h := range refused {
		for _, r := range requests {
			r.user, r.pass, r.header = "alice", ctAlicePass, h
			wantErr(t, e.send(r), 403, "forbidden")
		}
		// Wrong passwords are not even looked at: no failed-login budget is spent.
		wantErr(t, e.send(ctReq{method: "POST", path: "/user-token", user: "dan", pass: "wrong-password", header: h}), 403, "forbidden")
	}
	if r := e.send(ctReq{method: "GET", path: "/users", user: "alice", pass: ctAlicePass}); strings.Contains(string(r.body), "mallory") {
		t.Fatalf("a cross-site request added a user: %s", r.body)
	}
	if r := e.send(ctReq{method: "GET", path: "/tokens/" + id, user: "alice", pass: ctAlicePass}); !strings.Contains(string(r.body), `"revoked":false`) {
		t.Fatalf("a cross-site request revoked the token: %s", r.body)
	}
	issueUserToken(t, e, "dan", ctDanPass, "")
	issueUserToken(t, e, "bob", ctBobPass, "")
	// The issuer's own page, Fetch Metadata same-origin/none, and reads.
	for _, h := range []map[string]string{nil, {"Origin": e.url}, {"Origin": e.url, "Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}} {
		mustStatus(t, e.send(ctReq{method: "POST", path: "/user-token", user: "alice", pass: ctAlicePass, header: h}), 200)
	}
	mustStatus(t, e.send(ctReq{method: "GET", path: "/tokens", user: "alice", pass: ctAlicePass, header: map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}}), 200)
}

// TestContractLongPasswords: bcrypt reads 72 bytes; a password longer
// than that is refused when set (the CLI and the API share the rule) and
// never signs in, so a 72-byte password with anything appended is wrong.
func TestContractLongPasswords(t *testing.T) {
	e := contractEnv(t, ctBaseYAML, "")
	pw72 := strings.Repeat("long-pw-", 9) // 72 bytes
	if _, errOut, code := e.cli(pw72+"\n", "user", "add", "ivan", "--org", "acme", "--role", "member", "--email", "ivan@example.com", "--password-stdin"); code != 0 {
		t.Fatalf("user add with a 72-byte password: exit %d: %s", code, errOut)
	}
	for _, args := range [][]string{
		{"user", "add", "yuri", "--org", "acme", "--role", "member", "--email", "yuri@example.com", "--password-stdin"},
		{"user", "passwd", "ivan", "--password-stdin"},
	} {
		if _, errOut, code := e.cli(pw72+"x\n", args...); code == 0 || strings.Contains(errOut, pw72) {
			t.Errorf("%v with a 73-byte password: got exit %d (%q), want a failure that does not repeat it", args, code, errOut)
		}
	}
	issueUserToken(t, e, "ivan", pw72, "")
	for _, extra := range []string{"x", "-anything-at-all"} {
		wantErr(t, e.send(ctReq{method: "POST", path: "/user-token", user: "ivan", pass: pw72 + extra}), 401, "unauthorized")
	}
	wantErr(t, e.send(ctReq{method: "POST", path: "/users", user: "alice", pass: ctAlicePass, ctype: ctJSON,
		body: `{"username":"yuri","password":"` + pw72 + `x","email":"yuri@example.com","role":"member"}`}), 400, "invalid_request")
}

// TestContractPersonalTokensOff: with tokens.personal_tokens false only
// admins create tokens; members still list theirs.
func TestContractPersonalTokensOff(t *testing.T) {
	e := contractEnv(t, strings.Replace(ctBaseYAML, "tokens:\n", "tokens:\n  personal_tokens: false\n", 1), "")
	wantErr(t, e.send(ctReq{method: "POST", path: "/user-token", user: "bob", pass: ctBobPass}), 403, "forbidden")
	wantErr(t, e.send(ctReq{method: "POST", path: "/tokens", user: "bob", pass: ctBobPass, ctype: ctJSON, body: `{"name":"x"}`}), 403, "forbidden")
	mustStatus(t, e.send(ctReq{method: "GET", path: "/tokens", user: "bob", pass: ctBobPass}), 200)
	issueUserToken(t, e, "alice", ctAlicePass, "")
	createToken(t, e, "alice", ctAlicePass, `{"name":"infra","type":"administrative"}`)
}

// TestContractEnvironmentOverrides: SIGNET_* variables override the file.
func TestContractEnvironmentOverrides(t *testing.T) {
	e := newEnv(t, ctBaseYAML)
	if _, errOut, code := e.cli(ctAlicePass+"\n", "user", "add", "alice", "--org", "acme", "--role", "admin", "--email", "alice@example.com", "--password-stdin"); code != 0 {
		t.Fatalf("user add: %s", errOut)
	}
	fileURL := e.url
	port := freePort(t)
	e.url = fmt.Sprintf("http://127.0.0.1:%d", port)
	e.startWithEnv(
		"SIGNET_SERVER_LISTEN=127.0.0.1:"+strconv.Itoa(port),
		"SIGNET_SERVER_PUBLIC_URL="+e.url,
		"SIGNET_TOKENS_USER_TOKEN_TTL=2h",
		// Lowering the maximum alone is enough: the built-in default
		// of POST /tokens (1 year) follows it.
		"SIGNET_TOKENS_MAX_TTL=48h",
	)
	if resp, err := http.Get(fileURL + "/healthz"); err == nil {
		resp.Body.Close()
		t.Errorf("the issuer also listens on the file's address %s", fileURL)
	}
	ut := issueUserToken(t, e, "alice", ctAlicePass, "")
	_, cl := jwtParts(t, ut["user-token"].(string))
	if cl["iss"] != e.url || num(t, cl, "exp")-num(t, cl, "iat") != 7200 {
		t.Errorf("claims: got iss %v lifetime %ds, want %s and 7200s", cl["iss"], num(t, cl, "exp")-num(t, cl, "iat"), e.url)
	}
	wantErr(t, e.send(ctReq{method: "POST", path: "/user-token", user: "alice", pass: ctAlicePass, ctype: ctJSON, body: `{"expires_in":"72h"}`}), 400, "invalid_request")
	issueUserToken(t, e, "alice", ctAlicePass, `{"expires_in":"48h"}`)
}

// TestContractCLI walks §5: every command, exit codes, SIGNET_PASSWORD.
func TestContractCLI(t *testing.T) {
	e := contractEnv(t, ctBaseYAML, "")
	run := func(stdin string, args ...string) (string, string, int) { return e.cli(stdin, args...) }

	// user list|passwd|remove, offline against the same store.
	out, _, code := run("", "user", "list")
	if code != 0 || !strings.Contains(out, "alice") || !strings.Contains(out, "carol") {
		t.Fatalf("user list: exit %d: %s", code, out)
	}
	if out, _, _ = run("", "user", "list", "--org", "globex"); strings.Contains(out, "alice") || !strings.Contains(out, "carol") {
		t.Errorf("user list --org globex: %s", out)
	}
	if _, errOut, code := run("", "user", "add", "alice", "--org", "acme", "--role", "admin", "--email", "a@example.com", "--password-stdin"); code != 1 {
		t.Errorf("user add without a password on stdin: exit %d, want 1 (%s)", code, errOut)
	}
	if _, errOut, code := run("another-password\n", "user", "add", "alice", "--org", "acme", "--role", "admin", "--email", "a@example.com", "--password-stdin"); code != 1 {
		t.Errorf("user add of an existing user: exit %d, want 1 (%s)", code, errOut)
	}
	danTok := issueUserToken(t, e, "dan", ctDanPass, "")
	if _, errOut, code := run("dan-new-password\n", "user", "passwd", "dan", "--password-stdin"); code != 0 {
		t.Fatalf("user passwd: exit %d: %s", code, errOut)
	}
	issueUserToken(t, e, "dan", "dan-new-password", "")
	if _, _, code := run("x-password-1\n", "user", "passwd", "ghost", "--password-stdin"); code != 1 {
		t.Errorf("user passwd of an unknown user: exit %d, want 1", code)
	}
	if _, errOut, code := run("", "user", "remove", "dan"); code != 0 {
		t.Fatalf("user remove: exit %d: %s", code, errOut)
	}
	r := e.send(ctReq{method: "GET", path: "/user-token?token=" + danTok["user-token"].(string), user: "alice", pass: ctAlicePass})
	if m := r.json(t); m["revoked"] != true {
		t.Errorf("token of a user removed by the CLI: got %s, want revoked", r.body)
	}
	wantErr(t, e.send(ctReq{method: "POST", path: "/user-token", user: "dan", pass: "dan-new-password"}), 401, "unauthorized")

	// keys list|rotate.
	keysByKid, _ := jwksKeys(t, e)
	out, _, code = run("", "keys", "list")
	if code != 0 || !strings.Contains(out, "signing") {
		t.Fatalf("keys list: exit %d: %s", code, out)
	}
	for kid := range keysByKid {
		if !strings.Contains(out, kid) {
			t.Errorf("keys list lacks the published kid %s: %s", kid, out)
		}
	}
	if out, errOut, code := run("", "keys", "rotate"); code != 0 || !strings.Contains(out, "new key") {
		t.Fatalf("keys rotate: exit %d: %s %s", code, out, errOut)
	}
	if out, _, _ = run("", "keys", "list"); !strings.Contains(out, "next") {
		t.Errorf("keys list after rotate: want a next key: %s", out)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ks, _ := jwksKeys(t, e); len(ks) == len(keysByKid)+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the rotated (next) key is not published within 10s")
		}
		time.Sleep(200 * time.Millisecond)
	}

	// token create|list|info|revoke with SIGNET_PASSWORD.
	pw := []string{"SIGNET_PASSWORD=" + ctAlicePass}
	out, errOut, code := e.cliWithEnv(pw, "", "token", "create", "--url", e.url, "--user", "alice", "--name", "cli", "--scopes", "reports:read,reports:write", "--expires-in", "48h")
	if code != 0 {
		t.Fatalf("token create: exit %d: %s", code, errOut)
	}
	var created map[string]any
	if err := json.Unmarshal([]byte(out), &created); err != nil || created["token"] == nil {
		t.Fatalf("token create output: %s", out)
	}
	id, value := created["token_id"].(string), created["token"].(string)
	if out, _, code = e.cliWithEnv(pw, "", "token", "list", "--url", e.url, "--user", "alice"); code != 0 || !strings.Contains(out, id) || strings.Contains(out, value) {
		t.Errorf("token list: exit %d: %s", code, out)
	}
	for _, arg := range []string{id, value} {
		if out, _, code = e.cliWithEnv(pw, "", "token", "info", "--url", e.url, "--user", "alice", arg); code != 0 || !strings.Contains(out, id) {
			t.Errorf("token info %.12s…: exit %d: %s", arg, code, out)
		}
	}
	if _, _, code = e.cliWithEnv(pw, "", "token", "info", "--url", e.url, "--user", "alice", "aaaaaaaaaaaaaaaaaaaaaaaaaa"); code != 1 {
		t.Errorf("token info of an unknown id: exit %d, want 1", code)
	}
	out, _, code = run("", "verify", "--issuer", e.url, value)
	if code != 0 {
		t.Fatalf("verify a live token: exit %d: %s", code, out)
	}
	var vc map[string]any
	if err := json.Unmarshal([]byte(out), &vc); err != nil || vc["scope"] != "reports:read reports:write" || vc["jti"] != id {
		t.Errorf("verify output: %s", out)
	}
	if _, errOut, code = e.cliWithEnv(pw, "", "token", "revoke", "--url", e.url, "--user", "alice", id); code != 0 {
		t.Fatalf("token revoke: exit %d: %s", code, errOut)
	}
	if _, _, code = run("", "verify", "--issuer", e.url, value); code != 1 {
		t.Errorf("verify a revoked token: exit %d, want 1", code)
	}
	if _, _, code = run("", "verify", "--issuer", e.url, "not-a-token"); code != 1 {
		t.Errorf("verify garbage: exit %d, want 1", code)
	}
	if _, _, code = run("", "verify", "--issuer", "http://127.0.0.1:1", value); code != 1 {
		t.Errorf("verify against an unreachable issuer: exit %d, want 1", code)
	}
	if _, errOut, code = e.cliWithEnv([]string{"SIGNET_PASSWORD=wrong-password"}, "", "token", "list", "--url", e.url, "--user", "alice"); code != 1 || !strings.Contains(errOut, "401") {
		t.Errorf("token list with a wrong password: exit %d: %s", code, errOut)
	}
	if strings.Contains(e.logs.String(), value) || strings.Contains(e.logs.String(), ctAlicePass) {
		t.Error("the server log contains a token value or a password")
	}
}

// ctRoute is one route of the issuer, with a path that names an id or a
// user nobody has (so a request that gets through changes nothing).
type ctRoute struct {
	method, path string
	// param is the placeholder in path that the id variations replace.
	param string
	// public routes need no credentials.
	public bool
}

var ctRoutes = []ctRoute{
	{"GET", "/healthz", "", true},
	{"GET", "/readyz", "", true},
	{"GET", "/metrics", "", true},
	{"GET", "/.well-known/jwks.json", "", true},
	{"GET", "/.well-known/oauth-authorization-server", "", true},
	{"POST", "/user-token", "", false},
	{"GET", "/user-token", "", false},
	{"GET", "/tokens", "", false},
	{"POST", "/tokens", "", false},
	{"GET", "/tokens/ID", "ID", false},
	{"DELETE", "/tokens/ID", "ID", false},
	{"POST", "/tokens/ID/regenerate", "ID", false},
	{"POST", "/tokens/ID/copy", "ID", false},
	{"GET", "/users", "", false},
	{"POST", "/users", "", false},
	{"DELETE", "/users/ID", "ID", false},
	{"PUT", "/users/ID/password", "ID", false},
	{"GET", "/audit", "", false},
	{"POST", "/revoke", "", false},
	{"POST", "/introspect", "", false},
	{"GET", "/revocations", "", true},
	{"GET", "/revocations/ID", "ID", true},
	{"GET", "/ui/", "", true},
	{"GET", "/ui/assets/ID", "ID", true},
	{"POST", "/ui/api/login", "", true},
	{"POST", "/ui/api/logout", "", true},
	{"GET", "/ui/api/session", "", true},
	{"GET", "/ui/api/config", "", true},
}

// ctPlaceholder is the id every route path gets when the id is not what
// is being varied: no token or user has it.
const ctPlaceholder = "zzzzzzzzzzzzzzzzzzzzzzzzzz"

// rawReq is one request written byte for byte.
type rawReq struct {
	method, target string
	auth           string // the Authorization header, verbatim
	ctype          string
	header         [][2]string
	body           []byte
}

func (r rawReq) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", r.method, r.target)
	if r.auth != "" {
		fmt.Fprintf(&b, "Authorization: %s\r\n", r.auth)
	}
	if r.ctype != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", r.ctype)
	}
	for _, h := range r.header {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	if r.body != nil || r.method == "POST" || r.method == "PUT" {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(r.body))
	}
	b.WriteString("\r\n")
	b.Write(r.body)
	return b.String()
}

func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// TestContractRobustness sends malformed input of every kind to every
// route: no answer is a 5xx, every error has the contract's shape, and the
// server log never holds a password or a token value.
func TestContractRobustness(t *testing.T) {
	e := contractEnv(t, ctBaseYAML, "  max_failures_per_user: 100000\n  max_failures_per_client: 100000\n")
	const wrongPass = "Wr0ng-Secret-Passw0rd"
	alice := basicAuth("alice", ctAlicePass)
	tok := issueUserToken(t, e, "bob", ctBobPass, "")
	value := tok["user-token"].(string)

	deep := strings.Repeat(`{"a":`, 5000) + "1" + strings.Repeat("}", 5000)
	manyScopes := `{"name":"many","scopes":[` + strings.TrimSuffix(strings.Repeat(`"s:x",`, 9000), ",") + `]}`
	bodies := []struct{ name, ctype, body string }{
		{"garbage", ctJSON, `{{{`},
		{"null", ctJSON, `null`},
		{"array", ctJSON, `[]`},
		{"string", ctJSON, `"x"`},
		{"number", ctJSON, `123`},
		{"empty object", ctJSON, `{}`},
		{"wrong types", ctJSON, `{"name":123,"scopes":"x","expires_in":[1],"password":false,"username":{},"revoke_tokens":"yes","expires_at":7}`},
		{"unicode", ctJSON, `{"name":"名前🙂","description":"Ω≈ç√","username":"ünï","password":"pässwörd-long","email":"ü@例え.jp","role":"member"}`},
		{"escaped NUL", ctJSON, `{"name":"a\u0000b","username":"a\u0000b","password":"a\u0000bcdefghij"}`},
		{"raw NUL", ctJSON, "{\"name\":\"a\x00b\"}"},
		{"invalid UTF-8", ctJSON, "{\"name\":\"\xff\xfe\",\"password\":\"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\"}"},
		{"deep nesting", ctJSON, deep},
		{"long name", ctJSON, `{"name":"` + strings.Repeat("n", 60000) + `"}`},
		{"over the body limit", ctJSON, `{"name":"` + strings.Repeat("n", 100000) + `"}`},
		{"many scopes", ctJSON, manyScopes},
		{"duplicate keys", ctJSON, `{"name":"a","name":"b"}`},
		{"huge number", ctJSON, `{"expires_in":1e400}`},
		{"huge duration", ctJSON, `{"expires_in":"9223372036854775807s"}`},
		{"far expiry", ctJSON, `{"expires_at":"9999-12-31T23:59:59Z"}`},
		{"year one", ctJSON, `{"expires_at":"0001-01-01T00:00:00Z"}`},
		{"traversal in fields", ctJSON, `{"username":"../../etc/passwd","password":"` + strings.Repeat("p", 100) + `","email":"a@b","role":"admin","name":"../../x"}`},
		{"text/plain JSON", "text/plain", `{"name":"x"}`},
		{"xml", "application/xml", `<name>x</name>`},
		{"multipart garbage", "multipart/form-data; boundary=x", `garbage`},
		{"multipart without boundary", "multipart/form-data", `garbage`},
		{"broken content type", ";;;", `{"name":"x"}`},
		{"utf-16 JSON", "application/json; charset=utf-16", `{"name":"x"}`},
		{"form-typed JSON", ctForm, `{"name":"x"}`},
		{"form with token", ctForm, "token=" + url.QueryEscape(value) + "&token=x"},
		{"form garbage", ctForm, "%zz=%%%&&&=="},
	}
	auths := []struct{ name, header string }{
		{"none", ""},
		{"scheme only", "Basic"},
		{"bad base64", "Basic !!!"},
		{"bearer", "Bearer " + value},
		{"no colon", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice"))},
		{"NUL in username", "Basic " + base64.StdEncoding.EncodeToString([]byte("al\x00ice:"+ctAlicePass))},
		{"long header", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+strings.Repeat("x", 3000)))},
		{"unicode credentials", basicAuth("ålice☃", "pässwörd")},
		{"invalid UTF-8 credentials", "Basic " + base64.StdEncoding.EncodeToString([]byte("\xff:\xfe"))},
		{"wrong password", basicAuth("alice", wrongPass)},
		{"lower-case scheme", "basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+ctAlicePass))},
		{"double space", "Basic  " + base64.StdEncoding.EncodeToString([]byte("alice:"+ctAlicePass))},
	}
	ids := []struct{ name, id string }{
		{"very long", strings.Repeat("a", 3000)},
		{"encoded traversal", "..%2F..%2Fetc%2Fpasswd"},
		{"raw traversal", "../../../etc/passwd"},
		{"dot dot", ".."},
		{"encoded NUL", "a%00b"},
		{"encoded invalid UTF-8", "%ff%fe"},
		{"bad escape", "%zz"},
		{"unicode", "%E2%98%83"},
		{"raw unicode", "☃"},
		{"space", "a%20b"},
		{"query in id", "a%3Fb%3Dc"},
	}
	queries := []string{
		"token=" + strings.Repeat("a", 3000),
		"token=%00", "token=%ff", "token=%zz", "token=" + url.QueryEscape(value) + "&token=x",
		"token=" + url.QueryEscape(value), "limit=-1", "limit=99999999999999999999", "limit=abc",
		"since=-1", "since=1e9", "since=18446744073709551616", "since=", "since=1&since=2",
		"include_revoked=maybe", "include_expired=%00", "type=%3Cscript%3E", "owner=%00", "owner=" + strings.Repeat("o", 3000),
		"until=2020-13-45T00:00:00Z", "since=2030-01-01T00:00:00Z&until=2020-01-01T00:00:00Z", "action=%ff", "actor=%E2%98%83",
		"%zz=%zz", "a=b=c&&&", strings.Repeat("x=1&", 500),
	}
	methods := []string{"PATCH", "OPTIONS", "TRACE", "PUT", "FOO", "CONNECT", "DELETE", "POST", "GET"}

	checked := 0
	check := func(t *testing.T, what string, r rawReq) {
		t.Helper()
		resp, err := e.raw(r.String())
		if err != nil && len(r.body) > 64<<10 {
			// An oversized body may be refused before it is all sent, and
			// the answer lost with the reset connection. Net/http copes
			// with that; ask again with it.
			resp, err = e.trySend(ctReq{method: r.method, path: r.target, ctype: r.ctype, body: string(r.body), header: map[string]string{"Authorization": r.auth}})
		}
		if err != nil {
			t.Fatalf("%s: %s %.80s: %v", what, r.method, r.target, err)
		}
		checked++
		if resp.status >= 500 {
			t.Fatalf("%s: %s %.80s answered %d: %s", what, r.method, r.target, resp.status, resp.body)
		}
		if resp.status >= 400 && r.method != "HEAD" {
			checkErrorShape(t, resp, !strings.HasPrefix(r.target, "/ui/"))
		}
	}

	for _, rt := range ctRoutes {
		path := strings.Replace(rt.path, "ID", ctPlaceholder, 1)
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			if rt.method != "GET" {
				for _, b := range bodies {
					check(t, "body "+b.name, rawReq{method: rt.method, target: path, auth: alice, ctype: b.ctype, body: []byte(b.body)})
				}
			}
			for _, a := range auths {
				check(t, "auth "+a.name, rawReq{method: rt.method, target: path, auth: a.header, ctype: ctJSON, body: bodyFor(rt.method)})
			}
			for _, q := range queries {
				check(t, "query "+q, rawReq{method: rt.method, target: path + "?" + q, auth: alice, body: bodyFor(rt.method)})
			}
			for _, id := range ids {
				if rt.param == "" {
					continue
				}
				target := strings.Replace(rt.path, rt.param, id.id, 1)
				check(t, "id "+id.name, rawReq{method: rt.method, target: target, auth: alice, ctype: ctJSON, body: bodyFor(rt.method)})
			}
			for _, m := range methods {
				if m == rt.method {
					continue
				}
				check(t, "method "+m, rawReq{method: m, target: path, auth: alice})
			}
		})
	}

	// The event stream: wrong methods and bad queries only (a GET streams).
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
		check(t, "events method "+m, rawReq{method: m, target: "/revocations/events", auth: alice})
	}
	// Garbage request lines and headers.
	for name, req := range map[string]string{
		"no version":           "GET /healthz\r\n\r\n",
		"bad version":          "GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
		"absolute URI":         "GET http://evil.example/tokens HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"no host":              "GET /tokens HTTP/1.1\r\nConnection: close\r\n\r\n",
		"negative length":      "POST /user-token HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\nConnection: close\r\n\r\n",
		"huge length":          "POST /user-token HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\nConnection: close\r\n\r\n",
		"bad chunking":         "POST /user-token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n",
		"header without colon": "GET /healthz HTTP/1.1\r\nHost: x\r\nBroken header\r\nConnection: close\r\n\r\n",
		"NUL in path":          "GET /tokens/a\x00b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		"huge header":          "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 40000) + "\r\nConnection: close\r\n\r\n",
	} {
		resp, err := e.raw(req)
		if err != nil {
			continue // the server may close a connection it cannot parse
		}
		if resp.status >= 500 {
			t.Errorf("%s: answered %d: %s", name, resp.status, resp.body)
		}
	}

	// Still healthy, and the log holds no secret and no internal error.
	mustStatus(t, e.send(ctReq{method: "GET", path: "/readyz"}), 200)
	issueUserToken(t, e, "alice", ctAlicePass, "")
	logs := e.logs.String()
	for name, secret := range map[string]string{"alice's password": ctAlicePass, "bob's password": ctBobPass, "a wrong password": wrongPass, "a token value": value, "a token signature": value[strings.LastIndex(value, ".")+1:]} {
		if strings.Contains(logs, secret) {
			t.Errorf("the server log contains %s", name)
		}
	}
	for _, bad := range []string{"panic", "level=ERROR"} {
		if strings.Contains(logs, bad) {
			t.Errorf("the server log contains %q:\n%s", bad, logs)
		}
	}
	t.Logf("%d malformed requests answered without a 5xx", checked)
}

// bodyFor is a harmless body for methods that carry one.
func bodyFor(method string) []byte {
	if method == "POST" || method == "PUT" {
		return []byte(`{}`)
	}
	return nil
}
