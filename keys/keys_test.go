package keys

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

func TestThumbprintRFC7638Example(t *testing.T) {
	// RFC 7638 §3.1.
	const example = `{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}`
	key, err := jwk.ParseKey([]byte(example))
	if err != nil {
		t.Fatalf("ParseKey: %v", err)
	}
	got, err := Thumbprint(key)
	if err != nil {
		t.Fatalf("Thumbprint: %v", err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Errorf("Thumbprint = %s, want %s", got, want)
	}
	if _, err := Thumbprint(nil); err == nil {
		t.Errorf("Thumbprint(nil): got nil error, want one")
	}
}

func TestKIDIsThumbprintOfPublicKey(t *testing.T) {
	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			k := openTest(t, t.TempDir(), newTestClock(), func(c *Config) { c.Algorithm = alg })
			_, kid := mustSign(t, k)
			set, err := jwk.Parse(k.JWKS())
			if err != nil {
				t.Fatalf("parse JWKS: %v", err)
			}
			pub, ok := set.LookupKeyID(kid)
			if !ok {
				t.Fatalf("JWKS has no key %s", kid)
			}
			// Recompute from the public parameters alone.
			clean, err := jwk.PublicKeyOf(pub)
			if err != nil {
				t.Fatalf("PublicKeyOf: %v", err)
			}
			tp, err := Thumbprint(clean)
			if err != nil {
				t.Fatalf("Thumbprint: %v", err)
			}
			if tp != kid {
				t.Errorf("kid = %s, want thumbprint %s", kid, tp)
			}
		})
	}
}

func TestSignedTokensVerifyWithJWKS(t *testing.T) {
	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			k := openTest(t, t.TempDir(), newTestClock(), func(c *Config) { c.Algorithm = alg })
			token, kid := mustSign(t, k)

			set, err := jwk.Parse(k.JWKS())
			if err != nil {
				t.Fatalf("parse JWKS: %v", err)
			}
			payload, err := jws.Verify([]byte(token), jws.WithKeySet(set))
			if err != nil {
				t.Fatalf("jws.Verify with JWKS: %v", err)
			}
			if string(payload) != testClaims {
				t.Errorf("payload = %s, want %s", payload, testClaims)
			}

			msg, err := jws.Parse([]byte(token))
			if err != nil {
				t.Fatalf("jws.Parse: %v", err)
			}
			h := msg.Signatures()[0].ProtectedHeaders()
			if h.Algorithm() != jwa.SignatureAlgorithm(alg) || h.KeyID() != kid || h.Type() != "at+jwt" {
				t.Errorf("header alg=%s kid=%s typ=%s, want %s %s at+jwt", h.Algorithm(), h.KeyID(), h.Type(), alg, kid)
			}

			var raw struct {
				Keys []map[string]any `json:"keys"`
			}
			if err := json.Unmarshal(k.JWKS(), &raw); err != nil {
				t.Fatalf("JWKS: %v", err)
			}
			if len(raw.Keys) != 1 {
				t.Fatalf("JWKS has %d keys, want 1", len(raw.Keys))
			}
			got := raw.Keys[0]
			if got["use"] != "sig" || got["alg"] != alg || got["kid"] != kid {
				t.Errorf("JWKS key use=%v alg=%v kid=%v, want sig %s %s", got["use"], got["alg"], got["kid"], alg, kid)
			}
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
				if _, ok := got[private]; ok {
					t.Errorf("JWKS key has private parameter %q", private)
				}
			}

			p, vkid, err := verify(k, token)
			if err != nil || vkid != kid || string(p) != testClaims {
				t.Errorf("Verify = %s, %s, %v; want payload, %s, nil", p, vkid, err, kid)
			}
		})
	}
}

func TestSignRejectsNonObjectPayload(t *testing.T) {
	k := openTest(t, t.TempDir(), newTestClock())
	for _, payload := range []string{"", "  ", "[]", "null", "{", `"x"`, `{"a":1}x`} {
		t.Run(payload, func(t *testing.T) {
			if tok, _, err := k.Sign([]byte(payload)); err == nil {
				t.Errorf("Sign(%q) = %q, nil; want error", payload, tok)
			}
		})
	}
}

func TestKeyFilesAreWrittenSafely(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	k := openTest(t, dir, newTestClock())
	if _, err := k.Rotate(false); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o700 {
		t.Errorf("dir mode = %04o, want 0700", got)
	}
	files := keyFiles(t, dir)
	if len(files) != 2 {
		t.Fatalf("key files = %v, want 2", files)
	}
	for _, name := range files {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s mode = %04o, want 0600", name, got)
		}
	}
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if strings.HasSuffix(de.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", de.Name())
		}
	}
	m := readKeyFile(t, dir, strings.TrimSuffix(files[0], fileSuffix))
	for _, field := range []string{"kid", "algorithm", "created_at", "sign_from", "revoked_at", "key"} {
		if _, ok := m[field]; !ok {
			t.Errorf("key file lacks %q", field)
		}
	}
}

func TestReopenLoadsSameKeys(t *testing.T) {
	dir := t.TempDir()
	clock := newTestClock()
	k1 := openTest(t, dir, clock)
	token, kid := mustSign(t, k1)
	if _, err := k1.Rotate(false); err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	k2 := openTest(t, dir, clock)
	if got, want := k2.List(), k1.List(); !slices.EqualFunc(got, want, sameInfo) {
		t.Errorf("reopened List = %+v, want %+v", got, want)
	}
	if !bytes.Equal(k2.JWKS(), k1.JWKS()) || k2.JWKSVersion() != k1.JWKSVersion() {
		t.Errorf("reopened JWKS differs: got %s, want %s", k2.JWKS(), k1.JWKS())
	}
	if got := signingKey(t, k2); got != kid {
		t.Errorf("reopened signing kid = %s, want %s", got, kid)
	}
	if _, got, err := verify(k2, token); err != nil || got != kid {
		t.Errorf("reopened Verify = %s, %v; want %s, nil", got, err, kid)
	}
	if files := keyFiles(t, dir); len(files) != 2 {
		t.Errorf("reopen changed the key files: %v, want 2", files)
	}
}

func sameInfo(a, b KeyInfo) bool {
	eqp := func(x, y *time.Time) bool { return (x == nil) == (y == nil) && (x == nil || x.Equal(*y)) }
	return a.ID == b.ID && a.Algorithm == b.Algorithm && a.State == b.State &&
		a.CreatedAt.Equal(b.CreatedAt) && a.SignFrom.Equal(b.SignFrom) &&
		eqp(a.RetiredAt, b.RetiredAt) && eqp(a.RevokedAt, b.RevokedAt) && eqp(a.PublishedUntil, b.PublishedUntil)
}

func TestPublishDelay(t *testing.T) {
	clock := newTestClock()
	k := openTest(t, t.TempDir(), clock) // PublishDelay 10m
	first := signingKey(t, k)
	versionBefore := k.JWKSVersion()
	next, err := k.Rotate(false)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if next.State != StateNext || !next.SignFrom.Equal(clock.Now().Add(10*time.Minute)) {
		t.Errorf("rotated key state=%s sign_from=%s, want next at %s", next.State, next.SignFrom, clock.Now().Add(10*time.Minute))
	}
	if got := jwksKIDs(t, k); !slices.Equal(got, []string{next.ID, first}) {
		t.Errorf("JWKS kids = %v, want [%s %s]", got, next.ID, first)
	}
	if k.JWKSVersion() == versionBefore {
		t.Errorf("JWKSVersion unchanged after the set changed")
	}

	steps := []struct {
		advance time.Duration
		want    string
	}{
		{0, first},
		{9*time.Minute + 59*time.Second, first},
		{time.Second, next.ID}, // exactly sign_from
		{time.Minute, next.ID},
	}
	for _, s := range steps {
		clock.Advance(s.advance)
		if got := signingKey(t, k); got != s.want {
			t.Errorf("at %s signing kid = %s, want %s", clock.Now(), got, s.want)
		}
	}
	if got := infoOf(t, k, first); got.State != StateRetired || got.RetiredAt == nil || !got.RetiredAt.Equal(next.SignFrom) {
		t.Errorf("old key = %+v, want retired at %s", got, next.SignFrom)
	}

	t.Run("rotate now signs at once", func(t *testing.T) {
		info, err := k.Rotate(true)
		if err != nil {
			t.Fatalf("Rotate(true): %v", err)
		}
		if info.State != StateSigning {
			t.Errorf("state = %s, want signing", info.State)
		}
		if got := signingKey(t, k); got != info.ID {
			t.Errorf("signing kid = %s, want %s", got, info.ID)
		}
	})
}

func TestRetiredKeyPublishedUntilSuccessorPlusMaxTTL(t *testing.T) {
	clock := newTestClock()
	dir := t.TempDir()
	k := openTest(t, dir, clock) // MaxTTL 1h
	oldToken, old := mustSign(t, k)
	clock.Advance(5 * time.Minute)
	successor, err := k.Rotate(false) // signs 10m later
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	until := successor.SignFrom.Add(time.Hour)

	cases := []struct {
		at        time.Time
		state     State
		published bool
	}{
		{successor.SignFrom.Add(-time.Second), StateSigning, true},
		{successor.SignFrom, StateRetired, true},
		{until.Add(-time.Nanosecond), StateRetired, true},
		{until, StateExpired, false},
	}
	for _, tc := range cases {
		t.Run(tc.at.Format(time.RFC3339Nano), func(t *testing.T) {
			clock.Advance(tc.at.Sub(clock.Now()))
			info := infoOf(t, k, old)
			if info.State != tc.state {
				t.Errorf("state = %s, want %s", info.State, tc.state)
			}
			if tc.state != StateSigning && (info.PublishedUntil == nil || !info.PublishedUntil.Equal(until)) {
				t.Errorf("PublishedUntil = %v, want %s", info.PublishedUntil, until)
			}
			if got := slices.Contains(jwksKIDs(t, k), old); got != tc.published {
				t.Errorf("old key in JWKS = %v, want %v", got, tc.published)
			}
		})
	}

	// Expired but not yet pruned: still ours.
	if _, _, err := verify(k, oldToken); err != nil {
		t.Errorf("Verify before prune: %v, want nil", err)
	}
	if err := k.maintain(); err != nil {
		t.Fatalf("maintain: %v", err)
	}
	if files := keyFiles(t, dir); slices.Contains(files, old+fileSuffix) || len(files) != 1 {
		t.Errorf("files after prune = %v, want only %s", files, successor.ID)
	}
	if _, _, err := verify(k, oldToken); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("Verify after prune: %v, want ErrUnknownKey", err)
	}
}

func TestRevoke(t *testing.T) {
	type setup struct {
		k      *Keyring
		dir    string
		clock  *testClock
		target string // kid to revoke
	}
	cases := []struct {
		name string
		// prepare builds the key set and returns the kid to revoke.
		prepare func(t *testing.T, s *setup)
		// wantSigning returns the kid expected to sign afterwards; "" means
		// a freshly generated key.
		wantSigning func(s *setup, before []KeyInfo) string
	}{
		{
			name: "retired key",
			prepare: func(t *testing.T, s *setup) {
				s.target = signingKey(t, s.k)
				if _, err := s.k.Rotate(true); err != nil {
					t.Fatal(err)
				}
			},
			wantSigning: func(s *setup, before []KeyInfo) string { return before[0].ID },
		},
		{
			name: "next key",
			prepare: func(t *testing.T, s *setup) {
				info, err := s.k.Rotate(false)
				if err != nil {
					t.Fatal(err)
				}
				s.target = info.ID
			},
			wantSigning: func(s *setup, before []KeyInfo) string { return before[1].ID },
		},
		{
			name: "signing key with a next key brings it forward",
			prepare: func(t *testing.T, s *setup) {
				s.target = signingKey(t, s.k)
				if _, err := s.k.Rotate(false); err != nil {
					t.Fatal(err)
				}
			},
			wantSigning: func(s *setup, before []KeyInfo) string { return before[0].ID },
		},
		{
			name: "signing key with a retired key falls back to it",
			prepare: func(t *testing.T, s *setup) {
				s.clock.Advance(time.Minute)
				if _, err := s.k.Rotate(true); err != nil {
					t.Fatal(err)
				}
				s.target = signingKey(t, s.k)
			},
			wantSigning: func(s *setup, before []KeyInfo) string { return before[1].ID },
		},
		{
			name:        "only key generates a new one",
			prepare:     func(t *testing.T, s *setup) { s.target = signingKey(t, s.k) },
			wantSigning: func(*setup, []KeyInfo) string { return "" },
		},
		{
			name: "signing key whose predecessor expired does not revive it",
			prepare: func(t *testing.T, s *setup) {
				if _, err := s.k.Rotate(true); err != nil {
					t.Fatal(err)
				}
				s.clock.Advance(2 * time.Hour) // predecessor past MaxTTL, not pruned
				s.target = signingKey(t, s.k)
			},
			wantSigning: func(*setup, []KeyInfo) string { return "" },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &setup{dir: t.TempDir(), clock: newTestClock()}
			s.k = openTest(t, s.dir, s.clock)
			tc.prepare(t, s)
			token, _, err := s.k.Sign([]byte(testClaims))
			if err != nil {
				t.Fatal(err)
			}
			// A token of the target itself, signed directly.
			targetToken := signWith(t, s.k, s.target, map[string]any{"typ": "at+jwt"}, testClaims)
			before := s.k.List()
			version := s.k.JWKSVersion()

			info, err := s.k.Revoke(s.target)
			if err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			if info.State != StateRevoked || info.RevokedAt == nil || !info.RevokedAt.Equal(s.clock.Now()) {
				t.Errorf("revoked info = %+v, want state revoked at %s", info, s.clock.Now())
			}
			if slices.Contains(jwksKIDs(t, s.k), s.target) {
				t.Errorf("revoked key still in JWKS")
			}
			if s.k.JWKSVersion() == version {
				t.Errorf("JWKSVersion unchanged after revocation")
			}
			// Verify still calls the token ours and names the kid, so the
			// caller can see the key is revoked.
			if p, kid, err := verify(s.k, targetToken); err != nil || kid != s.target || string(p) != testClaims {
				t.Errorf("Verify(revoked key's token) = %s, %s, %v; want payload, %s, nil", p, kid, err, s.target)
			}
			if _, _, err := verify(s.k, token); err != nil {
				t.Errorf("Verify(token before revoke) = %v, want nil", err)
			}
			got := signingKey(t, s.k)
			want := tc.wantSigning(s, before)
			if want == "" {
				if slices.ContainsFunc(before, func(i KeyInfo) bool { return i.ID == got }) {
					t.Errorf("signing kid = %s, want a newly generated key", got)
				}
			} else if got != want {
				t.Errorf("signing kid = %s, want %s", got, want)
			}
			if got == s.target {
				t.Errorf("revoked key still signs")
			}
			if err := s.k.Ready(); err != nil {
				t.Errorf("Ready = %v, want nil", err)
			}
			for _, i := range s.k.List() {
				if i.State == StateExpired {
					t.Errorf("key %s expired but kept after revoke; want pruned", i.ID)
				}
			}

			again, err := s.k.Revoke(s.target)
			if err != nil || again.RevokedAt == nil || !again.RevokedAt.Equal(*info.RevokedAt) {
				t.Errorf("second Revoke = %+v, %v; want unchanged, nil", again, err)
			}
			// Another process sees the same.
			other := openTest(t, s.dir, s.clock)
			if got2 := signingKey(t, other); got2 != got {
				t.Errorf("reopened signing kid = %s, want %s", got2, got)
			}
		})
	}

	t.Run("unknown kid", func(t *testing.T) {
		k := openTest(t, t.TempDir(), newTestClock())
		if _, err := k.Revoke("nope"); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("Revoke(nope) = %v, want ErrUnknownKey", err)
		}
	})

	t.Run("revoked key pruned after MaxTTL", func(t *testing.T) {
		clock := newTestClock()
		dir := t.TempDir()
		k := openTest(t, dir, clock)
		kid := signingKey(t, k)
		if _, err := k.Revoke(kid); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Hour - time.Second)
		if err := k.maintain(); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(keyFiles(t, dir), kid+fileSuffix) {
			t.Errorf("revoked key pruned before MaxTTL")
		}
		clock.Advance(time.Second)
		if err := k.maintain(); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(keyFiles(t, dir), kid+fileSuffix) {
			t.Errorf("revoked key kept after MaxTTL")
		}
	})
}

func TestConcurrentAutomaticRotationAddsOneKey(t *testing.T) {
	for round := range 3 {
		dir := t.TempDir()
		clock := newTestClock()
		auto := func(c *Config) { c.RotationPeriod = time.Hour }
		rings := []*Keyring{openTest(t, dir, clock, auto), openTest(t, dir, clock, auto)}
		if n := len(keyFiles(t, dir)); n != 1 {
			t.Fatalf("round %d: %d keys after two Opens, want 1", round, n)
		}
		clock.Advance(2 * time.Hour)

		var wg sync.WaitGroup
		start := make(chan struct{})
		results := make([]bool, 6)
		errs := make([]error, 6)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i], errs[i] = rings[i%2].rotateIfDue()
			}()
		}
		close(start)
		wg.Wait()
		rotated := 0
		for i, ok := range results {
			if errs[i] != nil {
				t.Fatalf("round %d: rotateIfDue: %v", round, errs[i])
			}
			if ok {
				rotated++
			}
		}
		if files := keyFiles(t, dir); rotated != 1 || len(files) != 2 {
			t.Errorf("round %d: rotations = %d, key files = %d; want 1 and 2", round, rotated, len(files))
		}
	}
}

func TestConcurrentOpenCreatesOneKey(t *testing.T) {
	dir := t.TempDir()
	clock := newTestClock()
	var wg sync.WaitGroup
	kids := make([]string, 4)
	for i := range kids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := Open(Config{Dir: dir, Now: clock.Now})
			if err != nil {
				t.Errorf("Open: %v", err)
				return
			}
			_, kids[i], _ = k.Sign([]byte(testClaims))
		}()
	}
	wg.Wait()
	if files := keyFiles(t, dir); len(files) != 1 {
		t.Errorf("key files = %v, want 1", files)
	}
	for _, kid := range kids[1:] {
		if kid != kids[0] {
			t.Errorf("signing kids = %v, want all equal", kids)
		}
	}
}

func TestReloadFollowsAnotherKeyring(t *testing.T) {
	dir := t.TempDir()
	clock := newTestClock()
	a := openTest(t, dir, clock)
	b := openTest(t, dir, clock)
	if changed, err := b.Reload(); err != nil || changed {
		t.Errorf("Reload with nothing new = %v, %v; want false, nil", changed, err)
	}
	info, err := a.Rotate(true)
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := b.Reload(); err != nil || !changed {
		t.Errorf("Reload after rotation = %v, %v; want true, nil", changed, err)
	}
	if got := signingKey(t, b); got != info.ID {
		t.Errorf("b signs with %s, want %s", got, info.ID)
	}
	if _, err := a.Revoke(info.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Reload(); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(jwksKIDs(t, b), info.ID) {
		t.Errorf("b still publishes revoked key %s", info.ID)
	}
	if !bytes.Equal(a.JWKS(), b.JWKS()) {
		t.Errorf("JWKS differ: a %s, b %s", a.JWKS(), b.JWKS())
	}

	t.Run("Verify reloads for an unknown kid", func(t *testing.T) {
		c, err := a.Rotate(true)
		if err != nil {
			t.Fatal(err)
		}
		token, _ := mustSign(t, a)
		clock.Advance(2 * unknownKidReloadInterval)
		if _, kid, err := verify(b, token); err != nil || kid != c.ID {
			t.Errorf("b.Verify = %s, %v; want %s, nil", kid, err, c.ID)
		}
	})
}

func TestRunRotatesAndStopsWithContext(t *testing.T) {
	dir := t.TempDir()
	clock := newTestClock()
	k := openTest(t, dir, clock, func(c *Config) { c.RotationPeriod = time.Hour })
	clock.Advance(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	k.Run(ctx, time.Hour) // one round, then ctx is done
	if files := keyFiles(t, dir); len(files) != 2 {
		t.Errorf("key files after Run = %v, want 2 (automatic rotation)", files)
	}
	var next int
	for _, i := range k.List() {
		if i.State == StateNext {
			next++
		}
	}
	if next != 1 {
		t.Errorf("next keys = %d, want 1", next)
	}
	// Not due again: the newest key's sign_from is in the future.
	if rotated, err := k.rotateIfDue(); err != nil || rotated {
		t.Errorf("rotateIfDue = %v, %v; want false, nil", rotated, err)
	}
}

func TestOpenRejectsBadConfigAndFiles(t *testing.T) {
	t.Run("config", func(t *testing.T) {
		for _, cfg := range []Config{
			{Dir: t.TempDir(), Algorithm: "HS256"},
			{Dir: t.TempDir(), Algorithm: "none"},
			{Dir: t.TempDir(), PublishDelay: -time.Second},
			{Dir: t.TempDir(), MaxTTL: -time.Second},
		} {
			if _, err := Open(cfg); err == nil {
				t.Errorf("Open(%+v) = nil error, want one", cfg)
			}
		}
	})

	// Each case starts from a directory with one valid key and breaks it.
	cases := []struct {
		name   string
		breakf func(t *testing.T, dir, kid string)
		want   error
	}{
		{"group readable", func(t *testing.T, dir, kid string) {
			os.Chmod(filepath.Join(dir, kid+fileSuffix), 0o640)
		}, ErrInsecureFile},
		{"other writable", func(t *testing.T, dir, kid string) {
			os.Chmod(filepath.Join(dir, kid+fileSuffix), 0o602)
		}, ErrInsecureFile},
		{"not JSON", func(t *testing.T, dir, kid string) {
			os.WriteFile(filepath.Join(dir, kid+fileSuffix), []byte("SECRETMARKER garbage"), 0o600)
		}, ErrCorruptKey},
		{"truncated", func(t *testing.T, dir, kid string) {
			path := filepath.Join(dir, kid+fileSuffix)
			data, _ := os.ReadFile(path)
			os.WriteFile(path, data[:len(data)/2], 0o600)
		}, ErrCorruptKey},
		{"kid does not match file name", func(t *testing.T, dir, kid string) {
			os.Rename(filepath.Join(dir, kid+fileSuffix), filepath.Join(dir, "other"+fileSuffix))
		}, ErrCorruptKey},
		{"bad private key", func(t *testing.T, dir, kid string) {
			m := readKeyFile(t, dir, kid)
			m["key"].(map[string]any)["d"] = "SECRETMARKER!!"
			writeKeyFileJSON(t, dir, kid+fileSuffix, m, 0o600)
		}, ErrCorruptKey},
		{"public key only", func(t *testing.T, dir, kid string) {
			m := readKeyFile(t, dir, kid)
			delete(m["key"].(map[string]any), "d")
			writeKeyFileJSON(t, dir, kid+fileSuffix, m, 0o600)
		}, ErrCorruptKey},
		{"algorithm does not fit the key", func(t *testing.T, dir, kid string) {
			m := readKeyFile(t, dir, kid)
			m["algorithm"] = "RS256"
			writeKeyFileJSON(t, dir, kid+fileSuffix, m, 0o600)
		}, ErrCorruptKey},
		{"HMAC algorithm", func(t *testing.T, dir, kid string) {
			m := readKeyFile(t, dir, kid)
			m["algorithm"] = "HS256"
			writeKeyFileJSON(t, dir, kid+fileSuffix, m, 0o600)
		}, ErrCorruptKey},
		{"unknown format version", func(t *testing.T, dir, kid string) {
			m := readKeyFile(t, dir, kid)
			m["version"] = 2
			writeKeyFileJSON(t, dir, kid+fileSuffix, m, 0o600)
		}, ErrCorruptKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			clock := newTestClock()
			good := openTest(t, dir, clock)
			kid := signingKey(t, good)
			data, _ := os.ReadFile(filepath.Join(dir, kid+fileSuffix))
			var m struct {
				Key struct {
					D string `json:"d"`
				} `json:"key"`
			}
			json.Unmarshal(data, &m)
			tc.breakf(t, dir, kid)

			_, err := Open(Config{Dir: dir, Now: clock.Now})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open = %v, want %v", err, tc.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, dir) {
				t.Errorf("error %q does not name the file", msg)
			}
			if strings.Contains(msg, "SECRETMARKER") || (m.Key.D != "" && strings.Contains(msg, m.Key.D)) {
				t.Errorf("error %q contains key bytes", msg)
			}
			// A running keyring keeps its keys and reports the error.
			if _, err := good.Reload(); !errors.Is(err, tc.want) {
				t.Errorf("Reload = %v, want %v", err, tc.want)
			}
			if err := good.Ready(); err != nil {
				t.Errorf("Ready after failed Reload = %v, want nil", err)
			}
		})
	}
}

func TestSignConcurrentWithRotation(t *testing.T) {
	clock := newTestClock()
	k := openTest(t, t.TempDir(), clock)
	var wg sync.WaitGroup
	tokens := make([][]string, 4)
	for i := range tokens {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				token, _, err := k.Sign([]byte(testClaims))
				if err != nil {
					t.Errorf("Sign: %v", err)
					return
				}
				tokens[i] = append(tokens[i], token)
			}
		}()
	}
	for range 3 {
		if _, err := k.Rotate(true); err != nil {
			t.Fatalf("Rotate: %v", err)
		}
	}
	wg.Wait()
	for _, list := range tokens {
		for _, token := range list {
			if _, _, err := verify(k, token); err != nil {
				t.Errorf("Verify: %v", err)
			}
		}
	}
}

func BenchmarkSign(b *testing.B) {
	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		b.Run(alg, func(b *testing.B) {
			k := openTest(b, b.TempDir(), newTestClock(), func(c *Config) { c.Algorithm = alg; c.Now = time.Now })
			payload := []byte(testClaims)
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := k.Sign(payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestNoSigningKeyIsReportedAndRepaired(t *testing.T) {
	dir := t.TempDir()
	clock := newTestClock()
	k := openTest(t, dir, clock)
	kid := signingKey(t, k)
	version := k.JWKSVersion()

	// Someone withdraws the only key by hand, outside this package.
	m := readKeyFile(t, dir, kid)
	m["revoked_at"] = clock.Now().Format(time.RFC3339Nano)
	writeKeyFileJSON(t, dir, kid+fileSuffix, m, 0o600)
	if changed, err := k.Reload(); err != nil || !changed {
		t.Fatalf("Reload = %v, %v; want true, nil", changed, err)
	}
	if err := k.Ready(); !errors.Is(err, ErrNoSigningKey) {
		t.Errorf("Ready = %v, want ErrNoSigningKey", err)
	}
	if _, _, err := k.Sign([]byte(testClaims)); !errors.Is(err, ErrNoSigningKey) {
		t.Errorf("Sign = %v, want ErrNoSigningKey", err)
	}
	if got := jwksKIDs(t, k); len(got) != 0 || k.JWKSVersion() == version {
		t.Errorf("JWKS kids = %v (version changed: %v), want none and a new version", got, k.JWKSVersion() != version)
	}

	if err := k.maintain(); err != nil {
		t.Fatalf("maintain: %v", err)
	}
	if err := k.Ready(); err != nil {
		t.Errorf("Ready after maintain = %v, want nil", err)
	}
	if got := signingKey(t, k); got == kid {
		t.Errorf("signing with revoked key %s", got)
	}
}

func TestListReturnsCopies(t *testing.T) {
	clock := newTestClock()
	k := openTest(t, t.TempDir(), clock)
	old := signingKey(t, k)
	if _, err := k.Rotate(true); err != nil {
		t.Fatal(err)
	}
	jwks := k.JWKS()
	version := k.JWKSVersion()
	list := k.List()
	want := *infoOf(t, k, old).PublishedUntil
	for i := range list {
		if list[i].PublishedUntil != nil {
			*list[i].PublishedUntil = time.Time{}
		}
	}
	if got := infoOf(t, k, old).PublishedUntil; got == nil || !got.Equal(want) {
		t.Errorf("PublishedUntil after caller edit = %v, want %s", got, want)
	}
	// Time passing without a state change leaves the JWKS bytes alone.
	clock.Advance(30 * time.Minute)
	if err := k.maintain(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k.JWKS(), jwks) || k.JWKSVersion() != version {
		t.Errorf("JWKS changed without a change of keys: %s, want %s", k.JWKS(), jwks)
	}
}

// TestCrashedWriteLeavesNoTemporaryKey simulates a process killed between
// creating and renaming a temporary key file: the orphan (which may hold a
// private key) is ignored by loading and removed by the next change, while
// other dot files stay.
func TestCrashedWriteLeavesNoTemporaryKey(t *testing.T) {
	dir := t.TempDir()
	clock := newTestClock()
	k := openTest(t, dir, clock)
	orphan := filepath.Join(dir, "."+signingKey(t, k)+".123456.tmp")
	if err := os.WriteFile(orphan, []byte(`{"half": "a key`), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, ".keep")
	if err := os.WriteFile(other, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Reload(); err != nil {
		t.Fatalf("Reload with an orphaned temporary file: got error %v, want nil", err)
	}
	if _, err := os.Stat(orphan); err != nil {
		t.Fatalf("orphan before a change: got error %v, want it still there (only changes clean up)", err)
	}
	if _, err := k.Rotate(false); err != nil {
		t.Fatalf("Rotate: got error %v, want nil", err)
	}
	if _, err := os.Stat(orphan); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("orphaned temporary file after Rotate: got stat error %v, want it removed", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf(".keep after Rotate: got error %v, want it kept", err)
	}
	if _, err := os.Stat(filepath.Join(dir, lockName)); err != nil {
		t.Errorf("lock file after Rotate: got error %v, want it kept", err)
	}
}

// TestRotateNowWithdrawsPendingKeys: an emergency rotation must not be
// undone minutes later by a key rotated earlier without --now taking over
// at its scheduled time.
func TestRotateNowWithdrawsPendingKeys(t *testing.T) {
	clock := newTestClock()
	dir := t.TempDir()
	k := openTest(t, dir, clock) // PublishDelay 10m
	old := signingKey(t, k)
	pending, err := k.Rotate(false)
	if err != nil {
		t.Fatalf("Rotate(false): %v", err)
	}
	clock.Advance(time.Minute)
	pending2, err := k.Rotate(false)
	if err != nil {
		t.Fatalf("Rotate(false): %v", err)
	}
	clock.Advance(time.Minute)
	emergency, err := k.Rotate(true)
	if err != nil {
		t.Fatalf("Rotate(true): %v", err)
	}
	for _, p := range []KeyInfo{pending, pending2} {
		if got := infoOf(t, k, p.ID); got.State != StateRevoked {
			t.Errorf("pending key %s: got state %s, want revoked", p.ID, got.State)
		}
	}
	if got := jwksKIDs(t, k); !slices.Equal(got, []string{emergency.ID, old}) {
		t.Errorf("JWKS kids = %v, want [%s %s] (pending keys withdrawn)", got, emergency.ID, old)
	}
	// Past every scheduled sign_from, the emergency key still signs, here
	// and in a keyring that reads the directory afresh (another replica).
	clock.Advance(time.Hour)
	if got := signingKey(t, k); got != emergency.ID {
		t.Errorf("after the pending keys' sign_from: signing kid = %s, want %s", got, emergency.ID)
	}
	other := openTest(t, dir, clock)
	if got := signingKey(t, other); got != emergency.ID {
		t.Errorf("another keyring: signing kid = %s, want %s", got, emergency.ID)
	}
	// A plain rotation is unchanged: it leaves pending keys alone.
	next1, err := k.Rotate(false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Rotate(false); err != nil {
		t.Fatal(err)
	}
	if got := infoOf(t, k, next1.ID); got.State != StateNext {
		t.Errorf("a rotation without now withdrew pending key %s: state %s", next1.ID, got.State)
	}
}

// TestKeyDirectoryPermissions: a missing directory is created 0700 (with
// its parents); an existing one that group or other may access is
// tightened to 0700 with a warning naming it, or refused with the fix when
// it cannot be.
func TestKeyDirectoryPermissions(t *testing.T) {
	t.Run("created 0700", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data", "keys")
		openTest(t, dir, newTestClock())
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o700 {
			t.Errorf("mode of a created key directory: got %04o, want 0700", got)
		}
	})
	for _, mode := range []os.FileMode{0o755, 0o750, 0o701, 0o770} {
		t.Run(fmt.Sprintf("%04o tightened with a warning", mode), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "keys")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, mode); err != nil {
				t.Fatal(err)
			}
			var logged bytes.Buffer
			_, err := Open(Config{Dir: dir, Now: newTestClock().Now, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
				t.Errorf("mode after Open: got %04o, want 0700", fi.Mode().Perm())
			}
			if out := logged.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, dir) || !strings.Contains(out, fmt.Sprintf("was=%04o", mode)) {
				t.Errorf("got log %q, want a warning naming %s and mode %04o", out, dir, mode)
			}
		})
	}
	t.Run("refused when it cannot be tightened", func(t *testing.T) {
		// /proc/self is a directory of mode 0555 that nobody, root
		// included, may chmod.
		if _, err := Open(Config{Dir: "/proc/self", Now: newTestClock().Now}); !errors.Is(err, ErrInsecureFile) || !strings.Contains(err.Error(), "chmod 700 /proc/self") {
			t.Fatalf("got %v, want ErrInsecureFile naming the fix", err)
		}
	})
	t.Run("default is data/keys", func(t *testing.T) {
		if DefaultDir != "data/keys" {
			t.Errorf("DefaultDir: got %q, want data/keys", DefaultDir)
		}
		t.Chdir(t.TempDir())
		if _, err := Open(Config{Now: newTestClock().Now}); err != nil {
			t.Fatal(err)
		}
		if len(keyFiles(t, filepath.Join("data", "keys"))) != 1 {
			t.Errorf("no key in data/keys")
		}
	})
}

// TestSignNoticesWithdrawalAtOnce: once another process (signet keys
// revoke, another replica) has withdrawn the signing key, this keyring
// never signs with it again, without waiting for a Reload or Run.
func TestSignNoticesWithdrawalAtOnce(t *testing.T) {
	clock := newTestClock()
	dir := t.TempDir()
	issuer := openTest(t, dir, clock)
	cli := openTest(t, dir, clock)
	first := signingKey(t, issuer)
	if _, err := cli.Revoke(first); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if got := signingKey(t, issuer); got == first {
		t.Fatalf("signed with %s right after another keyring withdrew it", got)
	}
	// With no other key to hand over to, a fresh one was generated by the
	// revoking side; it is the one used.
	if got, want := signingKey(t, issuer), signingKey(t, cli); got != want {
		t.Errorf("signing kid: got %s, want %s (the revoking side's)", got, want)
	}
	// A key file removed from under the keyring (a restore, a manual
	// delete) is noticed too: the keyring re-reads the directory.
	second := signingKey(t, issuer)
	if _, err := cli.Rotate(true); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, second+fileSuffix)); err != nil {
		t.Fatal(err)
	}
	if got := signingKey(t, issuer); got == second {
		t.Fatalf("signed with %s after its file was removed", got)
	}
}

// BenchmarkSignFreshnessCheck is what Sign added to notice a withdrawal at
// once: opening and stat-ing the signing key's file. Compare it with
// BenchmarkSign.
func BenchmarkSignFreshnessCheck(b *testing.B) {
	k := openTest(b, b.TempDir(), newTestClock(), func(c *Config) { c.Now = time.Now })
	s := k.current().signing
	b.ReportAllocs()
	for b.Loop() {
		if !k.onDisk(s) {
			b.Fatal("the signing key's file looks changed")
		}
	}
}
