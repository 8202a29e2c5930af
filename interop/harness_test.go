package interop

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/signet-auth/signet/tlsfiles/tlsfilestest"
	"github.com/signet-auth/signet/verifier"
)

// algorithms are the signing algorithms signet offers.
var algorithms = []string{"ES256", "RS256", "EdDSA"}

// audience is the aud of every test token; the Kubernetes recipe names it.
const audience = "kubernetes"

const alicePassword = "correct-horse-battery"

// binary is the signet binary under test, built once.
var binary struct {
	once sync.Once
	path string
	err  error
	dir  string
}

func TestMain(m *testing.M) {
	code := m.Run()
	issuers.mu.Lock()
	for _, iss := range issuers.byAlg {
		iss.stop()
	}
	issuers.mu.Unlock()
	if binary.dir != "" {
		_ = os.RemoveAll(binary.dir)
	}
	os.Exit(code)
}

func signetBinary(tb testing.TB) string {
	tb.Helper()
	binary.once.Do(func() {
		if p := os.Getenv("SIGNET_BIN"); p != "" {
			binary.path, binary.err = filepath.Abs(p)
			return
		}
		dir, err := os.MkdirTemp("", "signet-interop-bin")
		if err != nil {
			binary.err = err
			return
		}
		binary.dir = dir
		binary.path = filepath.Join(dir, "signet")
		// Built in signet's own module, with its own go.mod.
		build := exec.Command("go", "build", "-o", binary.path, "./cmd/signet")
		build.Dir = ".."
		out, err := build.CombinedOutput()
		if err != nil {
			binary.err = fmt.Errorf("go build ./cmd/signet: %v\n%s", err, out)
		}
	})
	if binary.err != nil {
		tb.Fatal(binary.err)
	}
	return binary.path
}

// issuer is one running `signet serve` over HTTPS, with tokens prepared
// for the clients.
type issuer struct {
	bin     string
	alg     string
	url     string
	dir     string
	config  string
	ca      *tlsfilestest.CA
	caFile  string
	cmd     *exec.Cmd
	logs    *syncBuffer
	fixture fixture
}

// fixture is what every client is checked against: one issuer's tokens.
type fixture struct {
	Alg      string `json:"alg"`
	Issuer   string `json:"issuer"`
	Audience string `json:"audience"`
	// Valid is a token of alice signed by the current key.
	Valid string `json:"valid"`
	// WithdrawnKey was signed by a key since withdrawn with `signet keys
	// revoke`: it is no longer in the JWKS.
	WithdrawnKey string `json:"withdrawn_key"`
	// RevokedToken was revoked with DELETE /tokens/{id}; only a client
	// that follows signet's revocation list can know.
	RevokedToken string `json:"revoked_token"`
	// Forged are tokens signet's verifier refuses, by name.
	Forged []forgery `json:"forged"`
}

// forgery is one forged token.
type forgery struct {
	Name  string `json:"name"`
	Token string `json:"token"`
}

// issuers are started on first use and stopped by TestMain.
var issuers struct {
	mu     sync.Mutex
	byAlg  map[string]*issuer
	failed map[string]error
}

// issuerFor returns the running issuer for alg, starting it and preparing
// its fixture on first use.
func issuerFor(t *testing.T, alg string) *issuer {
	t.Helper()
	issuers.mu.Lock()
	defer issuers.mu.Unlock()
	if iss := issuers.byAlg[alg]; iss != nil {
		return iss
	}
	if err := issuers.failed[alg]; err != nil {
		t.Fatalf("the %s issuer did not start: %v", alg, err)
	}
	if issuers.byAlg == nil {
		issuers.byAlg, issuers.failed = map[string]*issuer{}, map[string]error{}
	}
	iss, err := startIssuer(t, alg)
	if err != nil {
		issuers.failed[alg] = err
		t.Fatalf("start the %s issuer: %v", alg, err)
	}
	issuers.byAlg[alg] = iss
	return iss
}

// startIssuer writes a config for alg (HTTPS with a fresh CA, aud
// "kubernetes"), adds alice, starts `signet serve` and prepares the
// fixture. Everything lives in a temporary directory removed at stop.
func startIssuer(t *testing.T, alg string) (*issuer, error) {
	dir, err := os.MkdirTemp("", "signet-interop-"+alg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	iss := &issuer{bin: signetBinary(t), alg: alg, dir: dir, url: fmt.Sprintf("https://127.0.0.1:%d", port), ca: tlsfilestest.NewCA(t)}
	certPEM, keyPEM, _ := iss.ca.Issue(t)
	iss.caFile = filepath.Join(dir, "ca.pem")
	tlsfilestest.WriteFile(t, iss.caFile, iss.ca.PEM)
	tlsfilestest.WriteFile(t, filepath.Join(dir, "tls.crt"), certPEM)
	tlsfilestest.WriteFile(t, filepath.Join(dir, "tls.key"), keyPEM)
	cfg := fmt.Sprintf(`server:
  listen: "127.0.0.1:%d"
  public_url: %q
  tls_cert_file: %q
  tls_key_file: %q
store:
  driver: sqlite
  dsn: %q
keys:
  dir: %q
  algorithm: %s
tokens:
  audience: [%q]
security:
  bcrypt_cost: 4
`, port, iss.url, filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"),
		filepath.Join(dir, "signet.db"), filepath.Join(dir, "keys"), alg, audience)
	iss.config = filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(iss.config, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	if out, err := iss.cli(alicePassword+"\n", "user", "add", "alice", "--org", "acme", "--role", "admin",
		"--email", "alice@example.com", "--password-stdin"); err != nil {
		return nil, fmt.Errorf("user add: %v: %s", err, out)
	}
	if err := iss.start(); err != nil {
		iss.stop()
		return nil, err
	}
	if err := iss.prepare(t); err != nil {
		iss.stop()
		return nil, err
	}
	return iss, nil
}

// cli runs one signet command against the issuer's files.
func (iss *issuer) cli(stdin string, args ...string) (string, error) {
	cmd := exec.Command(iss.bin, append([]string{"--config", iss.config}, args...)...)
	cmd.Dir = iss.dir
	cmd.Env = cleanEnv()
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
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

func (iss *issuer) start() error {
	iss.logs = &syncBuffer{}
	cmd := exec.Command(iss.bin, "serve", "--config", iss.config)
	cmd.Dir = iss.dir
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = iss.logs, iss.logs
	if err := cmd.Start(); err != nil {
		return err
	}
	iss.cmd = cmd
	c := iss.httpClient()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := c.Get(iss.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
	}
	return fmt.Errorf("issuer not ready within 30s; logs:\n%s", iss.logs.String())
}

func (iss *issuer) stop() {
	if iss.cmd != nil {
		_ = iss.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = iss.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = iss.cmd.Process.Kill()
			<-done
		}
		iss.cmd = nil
	}
	_ = os.RemoveAll(iss.dir)
}

// httpClient trusts the issuer's test CA only.
func (iss *issuer) httpClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: iss.ca.Pool(), MinVersion: tls.VersionTLS12},
	}}
}

// call makes one request with alice's Basic credentials and decodes a
// JSON answer into out (when not nil).
func (iss *issuer) call(method, path, body string, out any) error {
	req, err := http.NewRequest(method, iss.url+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.SetBasicAuth("alice", alicePassword)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := iss.httpClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// userToken trades alice's password for a token.
func (iss *issuer) userToken() (string, error) {
	var r struct {
		Token string `json:"user-token"`
	}
	if err := iss.call("POST", "/user-token", "", &r); err != nil {
		return "", err
	}
	return r.Token, nil
}

// jwksKIDs lists the kids the issuer publishes now.
func (iss *issuer) jwksKIDs() ([]string, error) {
	resp, err := iss.httpClient().Get(iss.url + "/.well-known/jwks.json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, err
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.KID)
	}
	return kids, nil
}

// prepare makes the fixture: a token whose key is then withdrawn, a fresh
// valid token, a revoked one and the forgeries. Each is first checked with
// signet's own verifier, so that every client is held to what it refuses.
func (iss *issuer) prepare(t *testing.T) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f := fixture{Alg: iss.alg, Issuer: iss.url, Audience: audience}
	var err error
	if f.WithdrawnKey, err = iss.userToken(); err != nil {
		return err
	}
	oldKID := headerOf(t, f.WithdrawnKey)["kid"].(string)
	if out, err := iss.cli("", "keys", "rotate", "--now"); err != nil {
		return fmt.Errorf("keys rotate --now: %v: %s", err, out)
	}
	// The running issuer follows the directory within a second or so.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		tok, err := iss.userToken()
		if err != nil {
			return err
		}
		if headerOf(t, tok)["kid"] != oldKID {
			f.Valid = tok
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the issuer still signs with %s after keys rotate --now", oldKID)
		}
	}
	v, err := verifier.New(ctx, verifier.Config{IssuerURL: iss.url, Audience: audience, HTTPClient: iss.httpClient()})
	if err != nil {
		return fmt.Errorf("signet verifier: %w", err)
	}
	defer v.Close()
	if _, err := v.Verify(ctx, f.WithdrawnKey); err != nil {
		return fmt.Errorf("the token of the key about to be withdrawn does not verify: %w", err)
	}
	if out, err := iss.cli("", "keys", "revoke", "--", oldKID); err != nil {
		return fmt.Errorf("keys revoke: %v: %s", err, out)
	}
	// The running issuer re-reads the key directory every second.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		kids, err := iss.jwksKIDs()
		if err != nil {
			return err
		}
		if !slices.Contains(kids, oldKID) {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the JWKS still lists the withdrawn key %s: %v", oldKID, kids)
		}
	}

	var created struct {
		Token string `json:"token"`
		ID    string `json:"token_id"`
	}
	if err := iss.call("POST", "/tokens", `{"name":"to-revoke","expires_in":"1h"}`, &created); err != nil {
		return err
	}
	if err := iss.call("DELETE", "/tokens/"+created.ID, "", nil); err != nil {
		return err
	}
	f.RevokedToken = created.Token

	signing, err := iss.signingKey(headerOf(t, f.Valid)["kid"].(string))
	if err != nil {
		return err
	}
	f.Forged = forge(t, f.Valid, signing, iss.alg)

	// signet's verifier is the reference: it accepts the valid token and
	// refuses everything else.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := v.Verify(ctx, f.RevokedToken); err != nil {
			break
		} else if time.Now().After(deadline) {
			return fmt.Errorf("signet's verifier accepts the revoked token")
		}
	}
	if _, err := v.Verify(ctx, f.Valid); err != nil {
		return fmt.Errorf("signet's verifier refuses the valid token: %w", err)
	}
	if _, err := v.Verify(ctx, f.WithdrawnKey); err == nil {
		return fmt.Errorf("signet's verifier accepts the token of the withdrawn key")
	}
	for _, fg := range f.Forged {
		if _, err := v.Verify(ctx, fg.Token); err == nil {
			return fmt.Errorf("signet's verifier accepts the forgery %q", fg.Name)
		}
	}
	iss.fixture = f
	return nil
}

// signingKey reads the private key kid from the issuer's key directory,
// what an attacker who stole it would hold: the forgeries that need a
// genuine signature (unknown crit, wrong iss, expired) use it.
func (iss *issuer) signingKey(kid string) (jwk.Key, error) {
	b, err := os.ReadFile(filepath.Join(iss.dir, "keys", kid+".json"))
	if err != nil {
		return nil, fmt.Errorf("read the signing key: %w", err)
	}
	var file struct {
		Key json.RawMessage `json:"key"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		return nil, err
	}
	return jwk.ParseKey(file.Key)
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
