// Package notifytest runs a real SMTP server for tests of expiry notices:
// aiosmtpd (Debian's python3-aiosmtpd; scripts/test.sh installs it) on a
// free loopback port, writing every accepted message to a directory the
// test reads. It can offer and require STARTTLS with a certificate made for
// the test, require AUTH, refuse chosen recipients, and be stopped and
// started again on the same port to play a mail server that is down.
//
// When aiosmtpd is missing the test is skipped with a message, except in CI
// (CI set and not "false" or "0"), where that is a failure.
package notifytest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	_ "embed"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

//go:embed smtpd.py
var serverScript []byte

// SMTPOptions configures a test SMTP server.
type SMTPOptions struct {
	// StartTLS makes the server offer STARTTLS, with a certificate for
	// 127.0.0.1 signed by RootCAs, and refuse mail before it.
	StartTLS bool
	// Username and Password, when set, make AUTH required.
	Username, Password string
}

// SMTPServer is a running aiosmtpd process.
type SMTPServer struct {
	// Addr is the server's host:port on 127.0.0.1.
	Addr string
	// Version is aiosmtpd's version.
	Version string
	// RootCAs trusts the server's certificate (StartTLS only).
	RootCAs *x509.CertPool

	tb     testing.TB
	python string
	args   []string
	dir    string

	mu    sync.Mutex // guards cmd
	cmd   *exec.Cmd
	outMu sync.Mutex
	out   *bytes.Buffer
}

// readyWriter takes the server's stdout and sends the version from its
// "READY <version>" line.
type readyWriter struct {
	buf   []byte
	ready chan<- string
	sent  bool
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for !w.sent {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		if v, ok := strings.CutPrefix(line, "READY "); ok {
			w.ready <- strings.TrimSpace(v)
			w.sent = true
		}
	}
	return len(p), nil
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Message is one message the server accepted.
type Message struct {
	// MailFrom and RcptTo are the envelope.
	MailFrom string
	RcptTo   []string
	// TLS is set when the session had switched to TLS; Login names the
	// user who authenticated ("" when none did).
	TLS   bool
	Login string
	Helo  string
	// Raw is the message as received; Header is parsed from it, and Body
	// is its text with the transfer encoding undone.
	Raw    []byte
	Header mail.Header
	Body   string
}

// Subject returns the decoded Subject header.
func (m Message) Subject() string {
	s, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		return m.Header.Get("Subject")
	}
	return s
}

// ciRequired reports whether a missing component must fail the test.
func ciRequired() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// Python returns a Python interpreter that can import aiosmtpd: $SIGNET_TEST_PYTHON,
// Debian's /usr/bin/python3 (where python3-aiosmtpd installs), or python3 on
// the PATH. Without one it skips tb, or fails it in CI.
func Python(tb testing.TB) string {
	tb.Helper()
	var candidates []string
	if p := os.Getenv("SIGNET_TEST_PYTHON"); p != "" {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "/usr/bin/python3")
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	for _, p := range candidates {
		if exec.Command(p, "-c", "import aiosmtpd").Run() == nil {
			return p
		}
	}
	msg := "no python3 with aiosmtpd (Debian package python3-aiosmtpd; scripts/test.sh installs it): the SMTP tests need a real SMTP server"
	if ciRequired() {
		tb.Fatal(msg)
	}
	tb.Skip(msg)
	return ""
}

// StartSMTP starts a server on a free loopback port; it is stopped when
// the test ends.
func StartSMTP(tb testing.TB, opts SMTPOptions) *SMTPServer {
	tb.Helper()
	py := Python(tb)
	dir := tb.TempDir()
	script := filepath.Join(dir, "smtpd.py")
	if err := os.WriteFile(script, serverScript, 0o600); err != nil {
		tb.Fatal(err)
	}
	out := filepath.Join(dir, "mail")
	if err := os.Mkdir(out, 0o700); err != nil {
		tb.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &SMTPServer{tb: tb, python: py, dir: out, Addr: fmt.Sprintf("127.0.0.1:%d", port)}
	s.args = []string{script, "--port", fmt.Sprint(port), "--outdir", out}
	if opts.StartTLS {
		cert, key, pool := testCertificate(tb, dir)
		s.RootCAs = pool
		s.args = append(s.args, "--tls-cert", cert, "--tls-key", key)
	}
	if opts.Username != "" {
		s.args = append(s.args, "--username", opts.Username, "--password", opts.Password)
	}
	s.Start()
	tb.Cleanup(s.Stop)
	return s
}

// Start starts the server (again) on its port and waits until it accepts
// connections.
func (s *SMTPServer) Start() {
	s.tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	cmd := exec.Command(s.python, s.args...)
	s.outMu.Lock()
	if s.out == nil {
		s.out = &bytes.Buffer{}
	}
	s.outMu.Unlock()
	ready := make(chan string, 1)
	cmd.Stdout = &readyWriter{ready: ready}
	cmd.Stderr = &lockedWriter{mu: &s.outMu, w: s.out}
	if err := cmd.Start(); err != nil {
		s.tb.Fatalf("start aiosmtpd: %v", err)
	}
	select {
	case v := <-ready:
		s.Version = v
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		s.tb.Fatalf("aiosmtpd did not start within 30s: %s", s.Log())
	}
	s.cmd = cmd
}

// Stop stops the server; connections to its port are refused until Start.
func (s *SMTPServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

// Messages returns every message accepted so far, in arrival order.
func (s *SMTPServer) Messages() []Message {
	s.tb.Helper()
	metas, err := filepath.Glob(filepath.Join(s.dir, "*.json"))
	if err != nil {
		s.tb.Fatal(err)
	}
	sort.Strings(metas)
	out := make([]Message, 0, len(metas))
	for _, mp := range metas {
		out = append(out, s.read(strings.TrimSuffix(mp, ".json")))
	}
	return out
}

func (s *SMTPServer) read(base string) Message {
	s.tb.Helper()
	var meta struct {
		MailFrom      string   `json:"mail_from"`
		RcptTos       []string `json:"rcpt_tos"`
		TLS           bool     `json:"tls"`
		Authenticated bool     `json:"authenticated"`
		Login         string   `json:"login"`
		Helo          string   `json:"helo"`
	}
	b, err := os.ReadFile(base + ".json")
	if err != nil {
		s.tb.Fatal(err)
	}
	if err := json.Unmarshal(b, &meta); err != nil {
		s.tb.Fatalf("%s.json: %v", base, err)
	}
	raw, err := os.ReadFile(base + ".eml")
	if err != nil {
		s.tb.Fatal(err)
	}
	m := Message{MailFrom: meta.MailFrom, RcptTo: meta.RcptTos, TLS: meta.TLS, Login: meta.Login, Helo: meta.Helo, Raw: raw}
	parsed, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		s.tb.Fatalf("message %s is not RFC 5322: %v\n%s", base, err, raw)
	}
	m.Header = parsed.Header
	var body io.Reader = parsed.Body
	if strings.EqualFold(parsed.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	text, err := io.ReadAll(body)
	if err != nil {
		s.tb.Fatalf("message %s: body: %v", base, err)
	}
	m.Body = strings.ReplaceAll(string(text), "\r\n", "\n")
	return m
}

// WaitMessages waits (up to timeout) until at least n messages arrived and
// returns them all.
func (s *SMTPServer) WaitMessages(n int, timeout time.Duration) []Message {
	s.tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs := s.Messages()
		if len(msgs) >= n || time.Now().After(deadline) {
			return msgs
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Log returns what the server wrote to stderr.
func (s *SMTPServer) Log() string {
	s.outMu.Lock()
	defer s.outMu.Unlock()
	if s.out == nil {
		return ""
	}
	return s.out.String()
}

// testCertificate writes a self-signed certificate for 127.0.0.1 and
// "smtp.test" and its key into dir.
func testCertificate(tb testing.TB, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtp.test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"smtp.test"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
