package main

import (
	"crypto/tls"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-auth/signet/tlsfiles/tlsfilestest"
)

// tlsEnv is an issuer configured for HTTPS through the environment, with
// its CA file and certificate files in its directory.
type tlsEnv struct {
	*env
	ca                        *tlsfilestest.CA
	caFile, certFile, keyFile string
	vars                      []string // SIGNET_* for serve and the CLI
}

func newTLSEnv(t *testing.T) *tlsEnv {
	t.Helper()
	e := newEnv(t, "")
	e.url = strings.Replace(e.url, "http://", "https://", 1)
	te := &tlsEnv{env: e, ca: tlsfilestest.NewCA(t),
		caFile: filepath.Join(e.dir, "ca.pem"), certFile: filepath.Join(e.dir, "tls.crt"), keyFile: filepath.Join(e.dir, "tls.key")}
	tlsfilestest.WriteFile(t, te.caFile, te.ca.PEM)
	te.rotate(t)
	te.vars = []string{
		"SIGNET_SERVER_PUBLIC_URL=" + e.url,
		"SIGNET_SERVER_TLS_CERT_FILE=" + te.certFile,
		"SIGNET_SERVER_TLS_KEY_FILE=" + te.keyFile,
	}
	return te
}

// rotate writes a new certificate and key and returns the serial.
func (te *tlsEnv) rotate(t *testing.T) *big.Int {
	t.Helper()
	certPEM, keyPEM, serial := te.ca.Issue(t)
	tlsfilestest.WriteFile(t, te.certFile, certPEM)
	tlsfilestest.WriteFile(t, te.keyFile, keyPEM)
	return serial
}

// client trusts only the test CA.
func (te *tlsEnv) client() *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: te.ca.Pool()}}}
}

func (te *tlsEnv) start(t *testing.T) {
	t.Helper()
	te.logs = &syncBuffer{}
	cmd := exec.Command(signetBinary(t), "serve", "--config", te.config)
	cmd.Dir = te.dir
	cmd.Env = append(cleanEnv(), te.vars...)
	cmd.Stdout, cmd.Stderr = te.logs, te.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	te.cmd = cmd
	c := te.client()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := c.Get(te.url + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
	}
	t.Fatalf("issuer not ready over HTTPS within 20s; logs:\n%s", te.logs.String())
}

// servedSerial is the serial of the certificate the issuer presents now.
func (te *tlsEnv) servedSerial(t *testing.T) *big.Int {
	t.Helper()
	c, err := tls.Dial("tcp", strings.TrimPrefix(te.url, "https://"), &tls.Config{RootCAs: te.ca.Pool()})
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

// TestServeTLS: with server.tls_cert_file/tls_key_file (here from the
// environment) the issuer answers HTTPS only, `signet token` and `signet
// verify` reach it with --ca-file (and not without), and a rotation of the
// files is served without a restart.
func TestServeTLS(t *testing.T) {
	te := newTLSEnv(t)
	if _, errOut, code := te.cli(ctAlicePass+"\n", "user", "add", "alice", "--org", "acme", "--role", "admin", "--email", "a@example.com", "--password-stdin"); code != 0 {
		t.Fatalf("user add: %s", errOut)
	}
	te.start(t)
	first := te.servedSerial(t)

	// HTTPS only: plain HTTP on the same port gets no HTTP answer.
	plain := &http.Client{Timeout: 3 * time.Second}
	if resp, err := plain.Get(strings.Replace(te.url, "https://", "http://", 1) + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("plain HTTP answered %d, want no HTTP answer", resp.StatusCode)
	}

	// Discovery names the https issuer.
	resp, err := te.client().Get(te.url + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatalf("discovery over HTTPS: %v", err)
	}
	var doc map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if doc["issuer"] != te.url || doc["jwks_uri"] != te.url+"/.well-known/jwks.json" {
		t.Errorf("discovery: issuer %v jwks_uri %v, want %s", doc["issuer"], doc["jwks_uri"], te.url)
	}

	// The CLI with --ca-file; SIGNET_CA_FILE works as well.
	cliEnv := append([]string{"SIGNET_PASSWORD=" + ctAlicePass}, te.vars...)
	out, errOut, code := te.cliWithEnv(cliEnv, "", "token", "create", "--url", te.url, "--user", "alice", "--name", "tls", "--ca-file", te.caFile)
	if code != 0 {
		t.Fatalf("token create --ca-file: exit %d: %s", code, errOut)
	}
	var created map[string]any
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatalf("token create output: %v: %s", err, out)
	}
	token, _ := created["token"].(string)
	if token == "" {
		t.Fatalf("token create printed no token: %s", out)
	}
	if _, errOut, code := te.cliWithEnv(append(cliEnv, "SIGNET_CA_FILE="+te.caFile), "", "token", "list", "--url", te.url, "--user", "alice"); code != 0 {
		t.Errorf("token list with SIGNET_CA_FILE: exit %d: %s", code, errOut)
	}
	if _, _, code := te.cliWithEnv(cliEnv, "", "token", "list", "--url", te.url, "--user", "alice"); code == 0 {
		t.Errorf("token list without the CA: exit 0, want a refused certificate")
	}
	if out, errOut, code := te.cliWithEnv(nil, "", "verify", "--issuer", te.url, "--ca-file", te.caFile, token); code != 0 || !strings.Contains(out, `"valid": true`) {
		t.Errorf("verify --ca-file: exit %d, out %s, stderr %s", code, out, errOut)
	}
	if _, errOut, code := te.cliWithEnv(nil, "", "verify", "--issuer", te.url, token); code == 0 || !strings.Contains(errOut, "certificate") {
		t.Errorf("verify without the CA: exit %d, stderr %q; want a failure about the certificate", code, errOut)
	}
	if _, errOut, code := te.cliWithEnv(nil, "", "verify", "--issuer", te.url, "--ca-file", te.keyFile, token); code != 2 || !strings.Contains(errOut, "--ca-file") {
		t.Errorf("verify --ca-file with no certificate in it: exit %d, stderr %q; want a usage error naming --ca-file", code, errOut)
	}

	// Rotation while running: the next handshake presents the new pair.
	second := te.rotate(t)
	if second.Cmp(first) == 0 {
		t.Fatal("the test CA issued the same serial twice")
	}
	if got := te.servedSerial(t); got.Cmp(second) != 0 {
		t.Fatalf("after rotating the files: serial %v, want the new %v (old %v)", got, second, first)
	}
	if resp, err := te.client().Get(te.url + "/readyz"); err != nil {
		t.Errorf("readyz after the rotation: %v", err)
	} else {
		resp.Body.Close()
	}
	te.stop()
}

// A pair that does not load stops `signet serve` with a message naming
// the key, before the store is created.
func TestServeRefusesBadTLSFiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(te *tlsEnv)
		want string
	}{
		{"missing certificate", func(te *tlsEnv) { _ = os.Remove(te.certFile) }, "server.tls_cert_file"},
		{"certificate not PEM", func(te *tlsEnv) { tlsfilestest.WriteFile(t, te.certFile, []byte("junk")) }, "server.tls_cert_file"},
		{"key of another certificate", func(te *tlsEnv) {
			_, otherKey, _ := te.ca.Issue(t)
			tlsfilestest.WriteFile(t, te.keyFile, otherKey)
		}, "server.tls_key_file"},
		{"key file only", func(te *tlsEnv) {
			te.vars = te.vars[:1]
			te.vars = append(te.vars, "SIGNET_SERVER_TLS_KEY_FILE="+te.keyFile)
		}, "server.tls_cert_file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			te := newTLSEnv(t)
			tc.mod(te)
			cmd := exec.Command(signetBinary(t), "serve", "--config", te.config)
			cmd.Dir = te.dir
			cmd.Env = append(cleanEnv(), te.vars...)
			done := make(chan struct{})
			var out []byte
			var err error
			go func() { out, err = cmd.CombinedOutput(); close(done) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("serve kept running with bad TLS files; output:\n%s", out)
			}
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Fatalf("serve: err %v, output %q; want a failure naming %s", err, out, tc.want)
			}
			if strings.Contains(string(out), "PRIVATE KEY") {
				t.Errorf("output holds key material: %s", out)
			}
			if _, err := os.Stat(filepath.Join(te.dir, "data", "signet.db")); err == nil {
				t.Errorf("the store was created before the TLS files were checked")
			}
			if _, err := net.DialTimeout("tcp", strings.TrimPrefix(te.url, "https://"), time.Second); err == nil {
				t.Errorf("something listens on the issuer's port")
			}
		})
	}
}
