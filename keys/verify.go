package keys

import (
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/signet-auth/signet/token"
)

// Verify checks that tok, a compact JWS, was signed by one of the keys on
// disk, whatever their state (signing, next, retired, expired or revoked:
// the issuer uses it to tell whether a token is its own), and returns its
// claims, KeyID set to the signing key's kid. The token is taken apart by
// token.Parse, the one parser every reader of signet tokens uses, so the
// header policy (alg of signet's three, never none or HMAC; kid; typ
// at+jwt; no jku, x5u, jwk, x5c, b64 or crit) and the strict claims rules
// (no duplicate or case-variant member names, nothing after the object)
// hold here exactly as in the verifier. Only the key's own algorithm is
// accepted. The caller checks the claims' meaning and revocation (a
// revoked kid among them).
//
// Errors wrap ErrMalformed, ErrUnknownKey or ErrBadSignature.
func (k *Keyring) Verify(tok string) (token.Claims, error) {
	t, err := token.Parse(tok)
	if err != nil {
		var te *token.Error
		if errors.As(err, &te) {
			return token.Claims{}, fmt.Errorf("%w: %s", ErrMalformed, te.Reason)
		}
		return token.Claims{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	defer t.Release()
	kid := t.Header.KeyID
	v := k.current()
	e := v.byKID[kid]
	if e == nil && k.mayReloadForUnknownKID() {
		// Another replica may have rotated since the last reload.
		if _, err := k.Reload(); err != nil {
			k.log.Warn("keys: reload for unknown kid failed", "err", err)
		}
		e = k.current().byKID[kid]
	}
	if e == nil {
		return token.Claims{}, fmt.Errorf("%w: kid %q", ErrUnknownKey, token.Clip(kid))
	}
	if t.Header.Algorithm != string(e.alg) {
		return token.Claims{}, fmt.Errorf("%w: alg %q is not the algorithm %s of key %s", ErrBadSignature, t.Header.Algorithm, e.alg, e.kid)
	}
	verifier, err := jws.NewVerifier(e.alg)
	if err != nil {
		return token.Claims{}, fmt.Errorf("keys: verify with %s: %w", e.kid, err)
	}
	if err := verifier.Verify(t.SigningInput(), t.Signature(), e.public); err != nil {
		return token.Claims{}, fmt.Errorf("%w: key %s", ErrBadSignature, e.kid)
	}
	c := t.Claims
	c.KeyID = e.kid
	return c, nil
}

// mayReloadForUnknownKID reports whether enough time has passed since the
// last reload to try one for an unknown kid.
func (k *Keyring) mayReloadForUnknownKID() bool {
	now := k.cfg.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	return now.Sub(k.lastReload) >= unknownKidReloadInterval
}

// Thumbprint returns the RFC 7638 SHA-256 thumbprint of k's public key,
// base64url without padding: the kid signet gives every key.
func Thumbprint(k jwk.Key) (string, error) {
	if k == nil {
		return "", fmt.Errorf("keys: thumbprint: nil key")
	}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("keys: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}
