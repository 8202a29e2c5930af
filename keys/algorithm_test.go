package keys

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// runOnce runs one round of Run (the context is already done).
func runOnce(k *Keyring) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	k.Run(ctx, time.Hour)
}

// headerAlg is the alg of a compact JWS.
func headerAlg(tb testing.TB, token string) string {
	tb.Helper()
	msg, err := jws.Parse([]byte(token))
	if err != nil {
		tb.Fatalf("jws.Parse: %v", err)
	}
	return msg.Signatures()[0].ProtectedHeaders().Algorithm().String()
}

// jwksAlgs maps each kid of k's JWKS to its alg.
func jwksAlgs(tb testing.TB, k *Keyring) map[string]string {
	tb.Helper()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
			Alg string `json:"alg"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(k.JWKS(), &set); err != nil {
		tb.Fatalf("JWKS is not JSON: %v", err)
	}
	out := map[string]string{}
	for _, key := range set.Keys {
		out[key.KID] = key.Alg
	}
	return out
}

// verifyWithJWKS checks token against k's published JWKS alone, the way an
// outside verifier does.
func verifyWithJWKS(tb testing.TB, k *Keyring, token string) error {
	tb.Helper()
	set, err := jwk.Parse(k.JWKS())
	if err != nil {
		tb.Fatalf("parse JWKS: %v", err)
	}
	_, err = jws.Verify([]byte(token), jws.WithKeySet(set))
	return err
}

// A key directory written with EdDSA keeps working when the issuer restarts
// with ES256: old tokens verify, the JWKS carries both keys, and the ES256
// key signs only after publish_delay.
func TestAlgorithmChangeRotates(t *testing.T) {
	dir := t.TempDir()
	clock := newTestClock()
	old := openTest(t, dir, clock) // EdDSA
	oldToken, oldKID := mustSign(t, old)

	k := openTest(t, dir, clock, func(c *Config) { c.Algorithm = "ES256" })
	runOnce(k)

	algs := jwksAlgs(t, k)
	if len(algs) != 2 || algs[oldKID] != "EdDSA" {
		t.Fatalf("JWKS after restart with ES256 = %v, want the EdDSA key %s and a new ES256 key", algs, oldKID)
	}
	var newKID string
	for kid, alg := range algs {
		if kid != oldKID {
			newKID = kid
			if alg != "ES256" {
				t.Fatalf("new key alg = %s, want ES256", alg)
			}
		}
	}
	// Published, not yet signing.
	tok, kid := mustSign(t, k)
	if kid != oldKID || headerAlg(t, tok) != "EdDSA" {
		t.Errorf("signed before publish_delay with %s (%s), want the EdDSA key %s", kid, headerAlg(t, tok), oldKID)
	}
	if info, _ := k.current().info(newKID); info.State != StateNext || !info.SignFrom.Equal(clock.Now().Add(10*time.Minute)) {
		t.Errorf("new key state %s sign_from %s, want next from %s", info.State, info.SignFrom, clock.Now().Add(10*time.Minute))
	}
	// A second round, or another restart with ES256, adds nothing.
	runOnce(k)
	runOnce(openTest(t, dir, clock, func(c *Config) { c.Algorithm = "ES256" }))
	if files := keyFiles(t, dir); len(files) != 2 {
		t.Errorf("key files after more rounds = %v, want 2", files)
	}

	clock.Advance(10 * time.Minute)
	tok, kid = mustSign(t, k)
	if kid != newKID || headerAlg(t, tok) != "ES256" {
		t.Errorf("signed after publish_delay with %s (%s), want the ES256 key %s", kid, headerAlg(t, tok), newKID)
	}
	if algs := jwksAlgs(t, k); len(algs) != 2 {
		t.Errorf("JWKS after the switch = %v, want both keys (EdDSA retired)", algs)
	}
	for name, token := range map[string]string{"old EdDSA token": oldToken, "new ES256 token": tok} {
		if _, err := k.Verify(token); err != nil {
			t.Errorf("Verify(%s): %v", name, err)
		}
		if err := verifyWithJWKS(t, k, token); err != nil {
			t.Errorf("%s against the JWKS: %v", name, err)
		}
	}
}

// A key of the old algorithm already waiting to sign is not jumped over:
// the new-algorithm key signs no earlier than it, and then takes over.
func TestAlgorithmChangeAfterPendingRotation(t *testing.T) {
	dir := t.TempDir()
	clock := newTestClock()
	old := openTest(t, dir, clock, func(c *Config) { c.PublishDelay = time.Hour })
	pending, err := old.Rotate(false)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	k := openTest(t, dir, clock, func(c *Config) { c.Algorithm = "RS256" })
	runOnce(k)
	clock.Advance(time.Hour)
	tok, kid := mustSign(t, k)
	if kid == pending.ID || headerAlg(t, tok) != "RS256" {
		t.Errorf("after the pending key's sign_from, signed with %s (%s), want the new RS256 key", kid, headerAlg(t, tok))
	}
}

// The configured algorithm matching the newest key changes nothing.
func TestSameAlgorithmAddsNoKey(t *testing.T) {
	dir := t.TempDir()
	clock := newTestClock()
	openTest(t, dir, clock, func(c *Config) { c.Algorithm = "ES256" })
	runOnce(openTest(t, dir, clock, func(c *Config) { c.Algorithm = "ES256" }))
	if files := keyFiles(t, dir); len(files) != 1 {
		t.Errorf("key files = %v, want 1", files)
	}
}

func TestDefaultAlgorithmIsES256(t *testing.T) {
	k, err := Open(Config{Dir: t.TempDir(), Now: newTestClock().Now})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	tok, _ := mustSign(t, k)
	if alg := headerAlg(t, tok); alg != "ES256" {
		t.Errorf("default alg = %s, want ES256", alg)
	}
}
