package verifier

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/signet-auth/signet/token"
)

// KeySet checks token signatures for a Verifier: the issuer's published
// keys by default (fetched from the jwks_uri of its metadata), or any
// source set in Config.KeySet — a pinned key, a KMS, a key set shared by
// several verifiers. It is go-oidc's KeySet, except that it is handed the
// token already parsed by the token package, so that the hot path parses
// each token once.
type KeySet interface {
	// VerifySignature checks t's signature (t.Signature() over
	// t.SigningInput()) with the key that t.Header.KeyID names, which must
	// be a key for t.Header.Algorithm. A nil error means the signature is
	// good. Otherwise the error wraps ErrUnknownKey (no such kid, after
	// whatever refresh the set does), ErrAlgorithm (the key is for another
	// algorithm) or ErrBadSignature; any other error is returned to the
	// caller of Verify wrapped as it is. It is called concurrently and must
	// not keep t or its slices after returning.
	VerifySignature(ctx context.Context, t *token.JWS) error
}

// publicKey is one verification key, extracted once from the JWKS so the
// hot path calls crypto/* directly.
type publicKey struct {
	kid string
	alg string
	ed  ed25519.PublicKey
	ec  *ecdsa.PublicKey
	rsa *rsa.PublicKey
}

// verify checks sig over input with the key's own algorithm.
func (k *publicKey) verify(input, sig []byte) bool {
	switch k.alg {
	case token.AlgEdDSA:
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(k.ed, input, sig)
	case token.AlgES256:
		if len(sig) != 64 {
			return false
		}
		h := sha256.Sum256(input)
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(k.ec, h[:], r, s)
	case token.AlgRS256:
		h := sha256.Sum256(input)
		return rsa.VerifyPKCS1v15(k.rsa, crypto.SHA256, h[:], sig) == nil
	}
	return false
}

// minRSABits is the smallest RSA modulus accepted from a JWKS.
const minRSABits = 2048

// maxJWKSSize bounds a key set document.
const maxJWKSSize = 1 << 20

// parseJWKS extracts the usable signature keys from a JWKS document. Keys
// that are not for signatures, of an algorithm signet does not use, without
// kid, or malformed are skipped (and reported in skipped) rather than
// failing the whole set, so that one odd key cannot take verification down.
func parseJWKS(body []byte) (keys map[string]*publicKey, skipped []string, err error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, nil, fmt.Errorf("decode JWKS: %w", err)
	}
	keys = make(map[string]*publicKey, len(doc.Keys))
	for i, raw := range doc.Keys {
		k, err := parseJWK(raw)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d: %v", i, err))
			continue
		}
		if _, dup := keys[k.kid]; dup {
			// Two keys under one kid: refuse both rather than guess.
			skipped = append(skipped, fmt.Sprintf("key %d: duplicate kid %q", i, clip(k.kid)))
			keys[k.kid] = nil
			continue
		}
		keys[k.kid] = k
	}
	for kid, k := range keys {
		if k == nil {
			delete(keys, kid)
		}
	}
	return keys, skipped, nil
}

func parseJWK(raw []byte) (*publicKey, error) {
	key, err := jwk.ParseKey(raw)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if u := key.KeyUsage(); u != "" && u != "sig" {
		return nil, fmt.Errorf("use %q is not sig", u)
	}
	kid := key.KeyID()
	if kid == "" {
		return nil, errors.New("no kid")
	}
	if len(kid) > token.MaxKeyIDLen {
		return nil, fmt.Errorf("kid longer than %d bytes", token.MaxKeyIDLen)
	}
	pub, err := jwk.PublicRawKeyOf(key)
	if err != nil {
		return nil, fmt.Errorf("public key: %w", err)
	}
	alg := ""
	if a := key.Algorithm(); a != nil {
		alg = a.String()
	}
	k := &publicKey{kid: kid}
	switch p := pub.(type) {
	case ed25519.PublicKey:
		k.alg, k.ed = token.AlgEdDSA, p
		if len(p) != ed25519.PublicKeySize {
			return nil, errors.New("bad Ed25519 key size")
		}
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return nil, errors.New("EC key is not on P-256")
		}
		k.alg, k.ec = token.AlgES256, p
	case *rsa.PublicKey:
		if p.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key of %d bits is too small", p.N.BitLen())
		}
		k.alg, k.rsa = token.AlgRS256, p
	default:
		return nil, fmt.Errorf("unsupported key type %T", pub)
	}
	// The JWKS's alg, when present, must be the one the key type implies:
	// that is the only algorithm a token signed by it may name.
	if alg != "" && alg != k.alg {
		return nil, fmt.Errorf("alg %q does not fit the key type (want %s)", clip(alg), k.alg)
	}
	return k, nil
}

// jwksKeySet is the default KeySet: the issuer's JWKS, fetched at start,
// re-read every Config.JWKSRefreshInterval, and on a kid it does not know
// — at most once per Config.MinRefreshInterval, however many tokens ask,
// with callers arriving during a fetch sharing it. Verification reads an
// immutable map through an atomic pointer, without locking.
type jwksKeySet struct {
	url         string
	issuer      string
	minInterval time.Duration
	timeout     time.Duration
	log         *slog.Logger
	// bg runs fetches, so that one caller giving up does not fail a
	// fetch others wait for.
	bg context.Context
	// fetch GETs a URL (Verifier.get).
	fetch func(ctx context.Context, u string, limit int64, hdr http.Header) ([]byte, int, error)
	// withdrawn reports kids the revocation list withdrew: a fetched JWKS
	// that still lists one does not bring it back.
	withdrawn func(kid string) bool
	// changed is called after the installed keys changed.
	changed func()

	keys atomic.Pointer[map[string]*publicKey]

	// mu serializes writers of keys and guards the refresh bookkeeping.
	mu       sync.Mutex
	inflight *refreshCall
	last     time.Time // when the last fetch finished (monotonic clock)
}

// refreshCall is one JWKS fetch that concurrent callers share.
type refreshCall struct {
	done chan struct{}
	err  error
}

func newJWKSKeySet(v *Verifier, url string) *jwksKeySet {
	ks := &jwksKeySet{
		url:         url,
		issuer:      v.issuer,
		minInterval: v.cfg.MinRefreshInterval,
		timeout:     v.cfg.requestTimeout(),
		log:         v.log,
		bg:          v.bg,
		fetch:       v.get,
		withdrawn:   v.withdrawn,
		changed:     func() { v.gen.Add(1) },
	}
	empty := map[string]*publicKey{}
	ks.keys.Store(&empty)
	return ks
}

// VerifySignature implements KeySet.
func (ks *jwksKeySet) VerifySignature(ctx context.Context, t *token.JWS) error {
	kid := t.Header.KeyID
	k := (*ks.keys.Load())[kid]
	if k == nil {
		if ks.withdrawn(kid) {
			// No fetch for a kid the issuer withdrew; Verify says revoked.
			return fmt.Errorf("%w: kid %q was withdrawn", ErrUnknownKey, clip(kid))
		}
		if _, err := ks.refresh(ctx, false); err != nil {
			ks.log.Warn("verifier: refreshing the key set failed", "issuer", ks.issuer, "err", err)
		}
		if k = (*ks.keys.Load())[kid]; k == nil {
			return fmt.Errorf("%w: kid %q is not in the issuer's key set", ErrUnknownKey, clip(kid))
		}
	}
	if k.alg != t.Header.Algorithm {
		return fmt.Errorf("%w: alg %q, but key %q is %s", ErrAlgorithm, t.Header.Algorithm, clip(k.kid), k.alg)
	}
	if !k.verify(t.SigningInput(), t.Signature()) {
		return ErrBadSignature
	}
	return nil
}

// has reports whether kid is in the installed set (no fetch).
func (ks *jwksKeySet) has(kid string) bool { return (*ks.keys.Load())[kid] != nil }

// refresh fetches the JWKS unless one was fetched within minInterval (or
// force); it returns whether a fetch happened (or was joined).
func (ks *jwksKeySet) refresh(ctx context.Context, force bool) (bool, error) {
	ks.mu.Lock()
	if c := ks.inflight; c != nil {
		ks.mu.Unlock()
		select {
		case <-c.done:
			return true, c.err
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	if !force && !ks.last.IsZero() && time.Since(ks.last) < ks.minInterval {
		ks.mu.Unlock()
		return false, nil
	}
	c := &refreshCall{done: make(chan struct{})}
	ks.inflight = c
	ks.mu.Unlock()

	fctx, cancel := context.WithTimeout(ks.bg, ks.timeout)
	c.err = ks.load(fctx)
	cancel()

	ks.mu.Lock()
	ks.inflight, ks.last = nil, time.Now()
	ks.mu.Unlock()
	close(c.done)
	select {
	case <-ctx.Done():
		return true, ctx.Err()
	default:
		return true, c.err
	}
}

// load fetches the JWKS and installs it, minus withdrawn kids. The first
// load (from New) calls it directly: it does not count against
// minInterval, so a key rotated right after start is still picked up.
func (ks *jwksKeySet) load(ctx context.Context) error {
	body, status, err := ks.fetch(ctx, ks.url, maxJWKSSize, nil)
	if err != nil {
		return fmt.Errorf("fetch JWKS: %w", err)
	}
	if status != http.StatusOK {
		return fmt.Errorf("fetch JWKS: status %d", status)
	}
	keys, skipped, err := parseJWKS(body)
	if err != nil {
		return err
	}
	for _, s := range skipped {
		ks.log.Warn("verifier: skipping JWKS key", "issuer", ks.issuer, "reason", s)
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	for kid := range keys {
		if ks.withdrawn(kid) {
			delete(keys, kid)
		}
	}
	ks.keys.Store(&keys)
	ks.changed()
	return nil
}

// drop removes a withdrawn kid from the installed set.
func (ks *jwksKeySet) drop(kid string) {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	cur := *ks.keys.Load()
	if _, ok := cur[kid]; !ok {
		return
	}
	next := make(map[string]*publicKey, len(cur))
	for id, k := range cur {
		if id != kid {
			next[id] = k
		}
	}
	ks.keys.Store(&next)
}

// dropKey removes a withdrawn kid from the default key set (a custom
// KeySet's keys are its own; Verify refuses withdrawn kids either way,
// through the revocation list).
func (v *Verifier) dropKey(kid string) {
	if v.jwks != nil {
		v.jwks.drop(kid)
	}
}

// refreshKeys re-reads the default key set (rate-limited unless force);
// it returns whether a fetch happened. A custom KeySet refreshes itself.
func (v *Verifier) refreshKeys(ctx context.Context, force bool) (bool, error) {
	if v.jwks == nil {
		return false, nil
	}
	return v.jwks.refresh(ctx, force)
}
