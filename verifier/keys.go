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
	"math/big"
	"net/http"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

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
	case algEdDSA:
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(k.ed, input, sig)
	case algES256:
		if len(sig) != 64 {
			return false
		}
		h := sha256.Sum256(input)
		r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(k.ec, h[:], r, s)
	case algRS256:
		h := sha256.Sum256(input)
		return rsa.VerifyPKCS1v15(k.rsa, crypto.SHA256, h[:], sig) == nil
	}
	return false
}

// keySet is an immutable set of keys by kid; updates install a new one.
type keySet struct {
	keys map[string]*publicKey
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
		k.alg, k.ed = algEdDSA, p
		if len(p) != ed25519.PublicKeySize {
			return nil, errors.New("bad Ed25519 key size")
		}
	case *ecdsa.PublicKey:
		if p.Curve != elliptic.P256() {
			return nil, errors.New("EC key is not on P-256")
		}
		k.alg, k.ec = algES256, p
	case *rsa.PublicKey:
		if p.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key of %d bits is too small", p.N.BitLen())
		}
		k.alg, k.rsa = algRS256, p
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

// keyRefresher makes sure that a flood of tokens with unknown kids causes
// at most one JWKS fetch per MinRefreshInterval: callers share the fetch in
// flight, and a fetch that happened recently is not repeated.
type keyRefresher struct {
	mu       sync.Mutex
	inflight *refreshCall
	last     time.Time // when the last fetch finished (monotonic clock)
}

type refreshCall struct {
	done chan struct{}
	err  error
}

// refresh fetches the JWKS unless one was fetched within minInterval; it
// returns whether a fetch happened (or was joined).
func (v *Verifier) refreshKeys(ctx context.Context, force bool) (bool, error) {
	r := &v.refresher
	r.mu.Lock()
	if c := r.inflight; c != nil {
		r.mu.Unlock()
		select {
		case <-c.done:
			return true, c.err
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	if !force && !r.last.IsZero() && time.Since(r.last) < v.cfg.MinRefreshInterval {
		r.mu.Unlock()
		return false, nil
	}
	c := &refreshCall{done: make(chan struct{})}
	r.inflight = c
	r.mu.Unlock()

	// The fetch runs on the verifier's own context so that one caller
	// giving up does not fail it for the others waiting.
	fctx, cancel := context.WithTimeout(v.bg, v.cfg.requestTimeout())
	c.err = v.loadKeys(fctx)
	cancel()

	r.mu.Lock()
	r.inflight, r.last = nil, time.Now()
	r.mu.Unlock()
	close(c.done)
	select {
	case <-ctx.Done():
		return true, ctx.Err()
	default:
		return true, c.err
	}
}

// loadKeys fetches the JWKS and installs it, minus withdrawn kids.
func (v *Verifier) loadKeys(ctx context.Context) error {
	body, status, err := v.get(ctx, v.jwksURL, maxJWKSSize, nil)
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
		v.log.Warn("verifier: skipping JWKS key", "issuer", v.issuer, "reason", s)
	}
	v.keysMu.Lock()
	defer v.keysMu.Unlock()
	v.rev.mu.RLock()
	for kid := range keys {
		if v.withdrawnLocked(kid) {
			delete(keys, kid)
		}
	}
	v.rev.mu.RUnlock()
	v.keys.Store(&keySet{keys: keys})
	v.gen.Add(1)
	return nil
}

// dropKey removes a withdrawn kid from the installed key set.
func (v *Verifier) dropKey(kid string) {
	v.keysMu.Lock()
	defer v.keysMu.Unlock()
	cur := v.keys.Load()
	if cur == nil {
		return
	}
	if _, ok := cur.keys[kid]; !ok {
		return
	}
	next := make(map[string]*publicKey, len(cur.keys))
	for id, k := range cur.keys {
		if id != kid {
			next[id] = k
		}
	}
	v.keys.Store(&keySet{keys: next})
}

// lookupKey returns the key for kid, refreshing the JWKS (rate-limited)
// when it is unknown.
func (v *Verifier) lookupKey(ctx context.Context, kid string) (*publicKey, error) {
	if k := v.keys.Load().keys[kid]; k != nil {
		return k, nil
	}
	if v.withdrawn(kid) {
		return nil, fmt.Errorf("%w: its signing key %q was withdrawn", ErrRevoked, clip(kid))
	}
	if _, err := v.refreshKeys(ctx, false); err != nil {
		v.log.Warn("verifier: refreshing the key set failed", "issuer", v.issuer, "err", err)
	}
	if k := v.keys.Load().keys[kid]; k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("%w: kid %q is not in the issuer's key set", ErrUnknownKey, clip(kid))
}
