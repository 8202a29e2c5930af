package verifier_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/signet-auth/signet/token"
	"github.com/signet-auth/signet/verifier"
	"github.com/signet-auth/signet/verifier/verifiertest"
)

// pinnedKeySet is a KeySet of one pinned Ed25519 key, as a service that
// pins its issuer's key would write one.
type pinnedKeySet struct {
	kid   string
	pub   ed25519.PublicKey
	calls atomic.Int64
	fail  atomic.Pointer[error]
}

func (p *pinnedKeySet) VerifySignature(_ context.Context, t *token.JWS) error {
	p.calls.Add(1)
	if err := p.fail.Load(); err != nil {
		return *err
	}
	if t.Header.KeyID != p.kid {
		return fmt.Errorf("%w: %q is not pinned", verifier.ErrUnknownKey, t.Header.KeyID)
	}
	if t.Header.Algorithm != token.AlgEdDSA {
		return verifier.ErrAlgorithm
	}
	if !ed25519.Verify(p.pub, t.SigningInput(), t.Signature()) {
		return verifier.ErrBadSignature
	}
	return nil
}

// TestCustomKeySet: Config.KeySet replaces the JWKS — no key set is
// fetched, its verdicts come through as the typed errors, and a kid the
// revocation list withdraws is refused as revoked whatever the set says.
func TestCustomKeySet(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	ks := &pinnedKeySet{kid: iss.KeyID(), pub: iss.PublicKey().(ed25519.PublicKey)}
	v := newVerifier(t, iss, func(c *verifier.Config) { c.KeySet = ks; c.CacheSize = -1 })
	ctx := context.Background()

	tok := iss.SignToken(t, verifiertest.Claims{"scope": "reports:read"})
	c, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatalf("Verify with the pinned key: got %v, want nil", err)
	}
	if c.KeyID != ks.kid || !c.HasScope("reports:read") {
		t.Errorf("claims: got kid %q scopes %v", c.KeyID, c.Scopes)
	}
	if ks.calls.Load() != 1 {
		t.Errorf("KeySet calls: got %d, want 1", ks.calls.Load())
	}

	newKid := iss.RotateKey(t)
	rotated := iss.SignToken(t, nil)
	if _, err := v.Verify(ctx, rotated); !errors.Is(err, verifier.ErrUnknownKey) {
		t.Errorf("a kid the pinned set lacks: got %v, want ErrUnknownKey", err)
	}
	if n := iss.Requests("/.well-known/jwks.json"); n != 0 {
		t.Errorf("JWKS fetched %d times with a custom KeySet, want 0", n)
	}

	forged := iss.SignTokenWithHeader(t, map[string]any{"kid": ks.kid}, nil) // new key, pinned kid
	if _, err := v.Verify(ctx, forged); !errors.Is(err, verifier.ErrBadSignature) {
		t.Errorf("another key's signature under the pinned kid: got %v, want ErrBadSignature", err)
	}

	iss.RevokeKey(newKid)
	eventually(t, "the withdrawn kid is refused as revoked", func() bool {
		_, err := v.Verify(ctx, rotated)
		return errors.Is(err, verifier.ErrRevoked)
	})

	outage := errors.New("kms: connection refused")
	ks.fail.Store(&outage)
	_, err = v.Verify(ctx, tok)
	if !errors.Is(err, outage) || !strings.HasPrefix(err.Error(), "verifier: ") {
		t.Errorf("key set failure: got %v, want it wrapped under \"verifier: \"", err)
	}
	if errors.Is(err, verifier.ErrBadSignature) || errors.Is(err, verifier.ErrUnknownKey) {
		t.Errorf("key set failure %v: classified as a verdict on the token", err)
	}
}
