package tlsfiles_test

import (
	"bytes"
	"crypto/tls"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/signet-auth/signet/tlsfiles"
	"github.com/signet-auth/signet/tlsfiles/tlsfilestest"
)

// syncBuffer is a log sink safe for the server's goroutines.
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

// serve accepts TLS connections on loopback with pair until the test ends,
// completing each handshake.
func serve(tb testing.TB, pair *tlsfiles.Pair) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tln := tls.NewListener(ln, pair.TLSConfig())
	tb.Cleanup(func() { _ = tln.Close() })
	go func() {
		for {
			c, err := tln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.(*tls.Conn).Handshake()
			}()
		}
	}()
	return ln.Addr().String()
}

// servedSerial connects to addr trusting only ca and returns the serial
// number of the certificate it presents.
func servedSerial(tb testing.TB, addr string, ca *tlsfilestest.CA) *big.Int {
	tb.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1"})
	if err != nil {
		tb.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber
}

func writePair(tb testing.TB, dir string, ca *tlsfilestest.CA) (certFile, keyFile string, serial *big.Int) {
	tb.Helper()
	certPEM, keyPEM, serial := ca.Issue(tb)
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	tlsfilestest.WriteFile(tb, certFile, certPEM)
	tlsfilestest.WriteFile(tb, keyFile, keyPEM)
	return certFile, keyFile, serial
}

// A rotation of the files is served from the next handshake on; a
// half-done one (new certificate, old key) keeps the old pair in service.
func TestReloadsChangedFiles(t *testing.T) {
	dir := t.TempDir()
	ca := tlsfilestest.NewCA(t)
	certFile, keyFile, first := writePair(t, dir, ca)
	var logs syncBuffer
	pair, err := tlsfiles.Load(certFile, keyFile, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	addr := serve(t, pair)
	if got := servedSerial(t, addr, ca); got.Cmp(first) != 0 {
		t.Fatalf("served serial %v, want %v", got, first)
	}

	// Half a rotation: the new certificate beside the old key.
	certPEM, keyPEM, second := ca.Issue(t)
	tlsfilestest.WriteFile(t, certFile, certPEM)
	for i := 0; i < 3; i++ {
		if got := servedSerial(t, addr, ca); got.Cmp(first) != 0 {
			t.Fatalf("mid-rotation serial %v, want the previous %v", got, first)
		}
	}
	if n := strings.Count(logs.String(), "do not load"); n != 1 {
		t.Errorf("the failed reload was logged %d times, want once:\n%s", n, logs.String())
	}

	// The key follows: the new pair is served.
	tlsfilestest.WriteFile(t, keyFile, keyPEM)
	if got := servedSerial(t, addr, ca); got.Cmp(second) != 0 {
		t.Fatalf("after the rotation, serial %v, want %v", got, second)
	}
	if !strings.Contains(logs.String(), "certificate reloaded") {
		t.Errorf("no reload logged:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "PRIVATE KEY") {
		t.Errorf("the log holds key material:\n%s", logs.String())
	}

	// Files that vanish keep the pair in service too.
	if err := os.Remove(certFile); err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, addr, ca); got.Cmp(second) != 0 {
		t.Fatalf("with the certificate file gone, serial %v, want %v", got, second)
	}
}

func TestLoadNamesTheFileAtFault(t *testing.T) {
	dir := t.TempDir()
	ca := tlsfilestest.NewCA(t)
	certFile, keyFile, _ := writePair(t, dir, ca)
	_, otherKey, _ := ca.Issue(t)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		tlsfilestest.WriteFile(t, p, data)
		return p
	}
	garbage := write("garbage.pem", []byte("not PEM at all"))
	keyAsCert := write("key-as-cert.pem", otherKey)
	mismatched := write("other.key", otherKey)
	for _, tc := range []struct {
		name       string
		cert, key  string
		want       error
		mentioning string
	}{
		{"missing certificate", filepath.Join(dir, "nope.crt"), keyFile, tlsfiles.ErrCertFile, "nope.crt"},
		{"missing key", certFile, filepath.Join(dir, "nope.key"), tlsfiles.ErrKeyFile, "nope.key"},
		{"certificate not PEM", garbage, keyFile, tlsfiles.ErrCertFile, "garbage.pem"},
		{"a key where the certificate belongs", keyAsCert, keyFile, tlsfiles.ErrCertFile, "key-as-cert.pem"},
		{"key not PEM", certFile, garbage, tlsfiles.ErrKeyFile, "garbage.pem"},
		{"key of another certificate", certFile, mismatched, tlsfiles.ErrKeyFile, "other.key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tlsfiles.Load(tc.cert, tc.key, nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Load: got %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.mentioning) {
				t.Errorf("error %q does not name %s", err, tc.mentioning)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") || strings.Contains(err.Error(), "MII") {
				t.Errorf("error %q holds file contents", err)
			}
		})
	}
}
