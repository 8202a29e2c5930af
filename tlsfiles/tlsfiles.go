// Package tlsfiles serves a TLS certificate from a pair of PEM files and
// follows changes to them, so that a certificate can be rotated (cert-manager,
// a Kubernetes secret, certbot) without restarting the server.
//
//	pair, err := tlsfiles.Load("/etc/signet/tls.crt", "/etc/signet/tls.key", logger)
//	ln = tls.NewListener(ln, pair.TLSConfig())
//
// Every TLS handshake stats both files (no read while they are unchanged);
// when either has changed the pair is loaded again. A pair that does not load
// (a half-written rotation: the new certificate next to the old key) keeps
// the previous certificate in service and is logged once; the next change of
// the files is tried again.
package tlsfiles

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Errors wrapped by Load, telling which file is at fault.
var (
	// ErrCertFile: the certificate file cannot be read or holds no usable
	// certificate.
	ErrCertFile = errors.New("tlsfiles: certificate file")
	// ErrKeyFile: the key file cannot be read, holds no usable private
	// key, or the key does not match the certificate.
	ErrKeyFile = errors.New("tlsfiles: key file")
)

// Pair is a certificate and key loaded from two files, reloaded when they
// change. Its methods are safe for concurrent use.
type Pair struct {
	certFile, keyFile string
	log               *slog.Logger

	cur atomic.Pointer[loaded]

	// mu serialises reloads; failed is the stamp of the last pair that did
	// not load, so that it is not read again on every handshake.
	mu     sync.Mutex
	failed stamps
}

// loaded is a certificate and the stamps of the files it came from.
type loaded struct {
	cert   *tls.Certificate
	stamps stamps
}

// stamp identifies one version of a file: an atomic rename or a
// Kubernetes secret update (a symlink swap) changes the inode, an
// in-place write the size or modification time.
type stamp struct {
	size  int64
	mtime time.Time
	ino   uint64
	err   string // the stat error, when the file cannot be stat'ed
}

type stamps [2]stamp

// Load reads the pair and returns it; an error wraps ErrCertFile or
// ErrKeyFile. log receives reloads and reload failures (default: discard).
// Errors and logs name the files, never their contents.
func Load(certFile, keyFile string, log *slog.Logger) (*Pair, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Pair{certFile: certFile, keyFile: keyFile, log: log}
	l, err := p.load(p.stat())
	if err != nil {
		return nil, err
	}
	p.cur.Store(l)
	return p, nil
}

// Certificate returns the certificate in service, after reloading the
// files if they changed.
func (p *Pair) Certificate() *tls.Certificate {
	st := p.stat()
	cur := p.cur.Load()
	if st == cur.stamps {
		return cur.cert
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur = p.cur.Load(); st == cur.stamps || st == p.failed {
		return cur.cert
	}
	l, err := p.load(st)
	if err != nil {
		p.failed = st
		p.log.Warn("tls: the changed certificate files do not load; serving the previous certificate",
			"cert_file", p.certFile, "key_file", p.keyFile, "err", err)
		return cur.cert
	}
	p.failed = stamps{}
	p.cur.Store(l)
	p.log.Info("tls: certificate reloaded", "cert_file", p.certFile, "not_after", notAfter(l.cert))
	return l.cert
}

// GetCertificate is the tls.Config hook: the current certificate for
// every handshake.
func (p *Pair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return p.Certificate(), nil
}

// TLSConfig returns a server configuration serving the pair: TLS 1.2 or
// later, HTTP/1.1.
func (p *Pair) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: p.GetCertificate,
		NextProtos:     []string{"http/1.1"},
	}
}

// notAfter is the expiry of the leaf certificate, or zero if unknown.
func notAfter(c *tls.Certificate) time.Time {
	if c.Leaf == nil {
		return time.Time{}
	}
	return c.Leaf.NotAfter
}

// stat stamps both files.
func (p *Pair) stat() stamps {
	return stamps{statFile(p.certFile), statFile(p.keyFile)}
}

func statFile(name string) stamp {
	fi, err := os.Stat(name)
	if err != nil {
		return stamp{err: err.Error()}
	}
	s := stamp{size: fi.Size(), mtime: fi.ModTime()}
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.ino = sys.Ino
	}
	return s
}

// load reads and parses the pair; st is the files' stamps taken before
// reading, so a change while reading is seen at the next handshake.
func (p *Pair) load(st stamps) (*loaded, error) {
	certPEM, err := os.ReadFile(p.certFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCertFile, err) // names the file
	}
	keyPEM, err := os.ReadFile(p.keyFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	if err := checkCertificates(certPEM); err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrCertFile, p.certFile, err)
	}
	// The certificate parses, so what X509KeyPair refuses is the key.
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", ErrKeyFile, p.keyFile, err)
	}
	return &loaded{cert: &cert, stamps: st}, nil
}

// checkCertificates reports whether certPEM holds at least one
// certificate and every CERTIFICATE block in it parses.
func checkCertificates(certPEM []byte) error {
	n := 0
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return fmt.Errorf("certificate %d: %w", n+1, err)
		}
		n++
	}
	if n == 0 {
		return errors.New("no PEM CERTIFICATE block")
	}
	return nil
}
