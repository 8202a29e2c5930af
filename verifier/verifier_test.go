package verifier_test

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/signet-auth/signet/revocation"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/signet-auth/signet/verifier"
	"github.com/signet-auth/signet/verifier/verifiertest"
)

func TestVerifyAlgorithms(t *testing.T) {
	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			clk := newClock()
			iss := verifiertest.NewIssuer(t, verifiertest.WithAlgorithm(alg), verifiertest.WithNow(clk.Now))
			v := newVerifier(t, iss, func(c *verifier.Config) { c.Now = clk.Now })
			tok := iss.SignToken(t, verifiertest.Claims{
				"sub":        "bob",
				"org":        "globex",
				"token_type": "administrative",
				"scope":      "reports:read  bucket:*",
				"aud":        []string{"a", "b"},
				"jti":        "id-1",
			})
			c, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatalf("Verify: got %v, want nil", err)
			}
			want := verifier.Claims{
				Issuer: iss.URL(), Subject: "bob", Audience: []string{"a", "b"},
				IssuedAt: clk.Now(), NotBefore: clk.Now(), Expiry: clk.Now().Add(time.Hour),
				ID: "id-1", Org: "globex", TokenType: "administrative",
				Scopes: []string{"reports:read", "bucket:*"}, KeyID: iss.KeyID(),
			}
			if got, _ := json.Marshal(c); string(got) != string(mustJSON(t, want)) {
				t.Errorf("claims: got %s, want %s", got, mustJSON(t, want))
			}
			// Seen before: same answer from the cache, and a copy.
			c.Subject = "mallory"
			c2, err := v.Verify(context.Background(), tok)
			if err != nil || c2.Subject != "bob" {
				t.Errorf("second Verify: got %v, %v; want subject bob, nil", c2, err)
			}
		})
	}
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("marshal: %v", err)
	}
	return b
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64JSON(tb testing.TB, v any) string { return b64(mustJSON(tb, v)) }

// attackerKeySet serves a JWKS with an attacker's key and counts fetches.
func attackerKeySet(t *testing.T) (ed25519.PrivateKey, string, map[string]any, *httptest.Server, *atomic.Int64) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := jwk.FromRaw(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	kid := "attacker-kid"
	_ = pub.Set(jwk.KeyIDKey, kid)
	_ = pub.Set(jwk.AlgorithmKey, "EdDSA")
	var pubMap map[string]any
	if err := json.Unmarshal(mustJSON(t, pub), &pubMap); err != nil {
		t.Fatal(err)
	}
	var hits atomic.Int64
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_ = json.NewEncoder(w).Encode(set)
	}))
	t.Cleanup(srv.Close)
	return priv, kid, pubMap, srv, &hits
}

func TestAttackTokens(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	v := newVerifier(t, iss, nil)
	kid := iss.KeyID()
	attacker, attackerKid, attackerJWK, attackerSrv, attackerHits := attackerKeySet(t)
	now := time.Now()
	claims := map[string]any{
		"iss": iss.URL(), "sub": "admin", "org": "acme", "token_type": "personal",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "attack-1", "scope": "*",
	}
	valid := iss.SignToken(t, verifiertest.Claims{"sub": "alice", "scope": "reports:read"})
	parts := strings.Split(valid, ".")

	hs256 := func() string {
		h := b64JSON(t, map[string]any{"alg": "HS256", "kid": kid, "typ": "at+jwt"})
		p := b64JSON(t, claims)
		pub := iss.PublicKey().(ed25519.PublicKey)
		m := hmac.New(sha256.New, pub)
		m.Write([]byte(h + "." + p))
		return h + "." + p + "." + b64(m.Sum(nil))
	}()
	tampered := func() string {
		var c map[string]any
		raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
		_ = json.Unmarshal(raw, &c)
		c["sub"], c["scope"] = "admin", "*"
		return parts[0] + "." + b64JSON(t, c) + "." + parts[2]
	}()
	hdr := func(extra map[string]any) map[string]any {
		h := map[string]any{"alg": "EdDSA", "kid": kid, "typ": "at+jwt"}
		for k, x := range extra {
			if x == nil {
				delete(h, k)
			} else {
				h[k] = x
			}
		}
		return h
	}

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"alg none", b64JSON(t, hdr(map[string]any{"alg": "none"})) + "." + b64JSON(t, claims) + ".", verifier.ErrAlgorithm},
		{"alg none with signature", b64JSON(t, hdr(map[string]any{"alg": "none"})) + "." + b64JSON(t, claims) + "." + parts[2], verifier.ErrAlgorithm},
		{"HS256 signed with the public key", hs256, verifier.ErrAlgorithm},
		{"alg not the key's", iss.SignTokenWithHeader(t, map[string]any{"alg": "ES256"}, nil), verifier.ErrAlgorithm},
		{"foreign key with a real kid", verifiertest.Sign(t, attacker, hdr(nil), claims), verifier.ErrBadSignature},
		{"tampered claims", tampered, verifier.ErrBadSignature},
		{"signature of another token", parts[0] + "." + b64JSON(t, claims) + "." + parts[2], verifier.ErrBadSignature},
		{"empty signature", parts[0] + "." + parts[1] + ".", verifier.ErrBadSignature},
		{"jku to a loopback key set", verifiertest.Sign(t, attacker, hdr(map[string]any{"kid": attackerKid, "jku": attackerSrv.URL}), claims), verifier.ErrMalformed},
		{"jku on a token signed by the real key", iss.SignTokenWithHeader(t, map[string]any{"jku": attackerSrv.URL}, nil), verifier.ErrMalformed},
		{"embedded jwk", verifiertest.Sign(t, attacker, hdr(map[string]any{"kid": attackerKid, "jwk": attackerJWK}), claims), verifier.ErrMalformed},
		{"x5u", iss.SignTokenWithHeader(t, map[string]any{"x5u": attackerSrv.URL}, nil), verifier.ErrMalformed},
		{"x5c", iss.SignTokenWithHeader(t, map[string]any{"x5c": []string{"MIIB"}}, nil), verifier.ErrMalformed},
		{"crit", iss.SignTokenWithHeader(t, map[string]any{"crit": []string{"exp"}, "exp": 1}, nil), verifier.ErrMalformed},
		{"typ JWT", iss.SignTokenWithHeader(t, map[string]any{"typ": "JWT"}, nil), verifier.ErrMalformed},
		{"no typ", iss.SignTokenWithHeader(t, map[string]any{"typ": nil}, nil), verifier.ErrMalformed},
		{"no kid", iss.SignTokenWithHeader(t, map[string]any{"kid": nil}, nil), verifier.ErrMalformed},
		{"unknown kid", iss.SignTokenWithHeader(t, map[string]any{"kid": "made-up"}, nil), verifier.ErrUnknownKey},
		{"duplicate alg member", iss.SignRaw(t, []byte(`{"alg":"EdDSA","kid":"`+kid+`","typ":"at+jwt","alg":"none"}`), mustJSON(t, claims)), verifier.ErrMalformed},
		{"duplicate sub claim", iss.SignRaw(t, mustJSON(t, hdr(nil)), []byte(`{"iss":"`+iss.URL()+`","sub":"alice","sub":"admin","exp":`+fmt.Sprint(now.Add(time.Hour).Unix())+`,"jti":"x"}`)), verifier.ErrMalformed},
		{"exp as a string", iss.SignToken(t, verifiertest.Claims{"exp": "tomorrow"}), verifier.ErrMalformed},
		{"no exp", iss.SignToken(t, verifiertest.Claims{"exp": nil}), verifier.ErrMalformed},
		{"no jti", iss.SignToken(t, verifiertest.Claims{"jti": nil}), verifier.ErrMalformed},
		{"claims not an object", iss.SignRaw(t, mustJSON(t, hdr(nil)), []byte(`["exp"]`)), verifier.ErrMalformed},
		{"trailing data after claims", iss.SignRaw(t, mustJSON(t, hdr(nil)), append(mustJSON(t, claims), []byte(`{}`)...)), verifier.ErrMalformed},
		{"two parts", parts[0] + "." + parts[1], verifier.ErrMalformed},
		{"five parts (JWE)", valid + ".a.b", verifier.ErrMalformed},
		{"bad base64", parts[0] + ".%%%." + parts[2], verifier.ErrMalformed},
		{"padded base64", parts[0] + "=." + parts[1] + "." + parts[2], verifier.ErrMalformed},
		{"empty", "", verifier.ErrMalformed},
		{"huge", strings.Repeat("a", 20000) + ".b.c", verifier.ErrMalformed},
		{"wrong issuer", iss.SignToken(t, verifiertest.Claims{"iss": "https://evil.example"}), verifier.ErrIssuer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Verify(context.Background(), tc.token)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify: got %v, want %v", err, tc.want)
			}
			if c != nil {
				t.Errorf("claims: got %+v, want nil", c)
			}
			if !strings.HasPrefix(err.Error(), "verifier: ") {
				t.Errorf("message %q: want prefix %q", err, "verifier: ")
			}
			if len(tc.token) > 20 && strings.Contains(err.Error(), tc.token) {
				t.Errorf("message contains the token")
			}
		})
	}
	if n := attackerHits.Load(); n != 0 {
		t.Errorf("attacker's key set was fetched %d times, want 0", n)
	}

	for _, typ := range []string{"application/at+jwt", "AT+JWT", "Application/At+Jwt"} {
		t.Run("typ "+typ+" accepted", func(t *testing.T) {
			if _, err := v.Verify(context.Background(), iss.SignTokenWithHeader(t, map[string]any{"typ": typ}, nil)); err != nil {
				t.Errorf("Verify: got %v, want nil", err)
			}
		})
	}
}

func TestTimes(t *testing.T) {
	clk := newClock()
	iss := verifiertest.NewIssuer(t, verifiertest.WithNow(clk.Now))
	t0 := clk.Now()
	tests := []struct {
		name   string
		leeway time.Duration
		claims verifiertest.Claims
		want   error
	}{
		{"valid", 0, nil, nil},
		{"expired", 0, verifiertest.Claims{"exp": t0.Add(-time.Minute).Unix()}, verifier.ErrExpired},
		{"expired within default leeway", 0, verifiertest.Claims{"exp": t0.Add(-10 * time.Second).Unix()}, nil},
		{"expired at this second, no leeway", -1, verifiertest.Claims{"exp": t0.Unix()}, verifier.ErrExpired},
		{"nbf in the future", 0, verifiertest.Claims{"nbf": t0.Add(time.Minute).Unix()}, verifier.ErrNotYetValid},
		{"nbf within leeway", 0, verifiertest.Claims{"nbf": t0.Add(20 * time.Second).Unix()}, nil},
		{"nbf just ahead, no leeway", -1, verifiertest.Claims{"nbf": t0.Add(time.Second).Unix()}, verifier.ErrNotYetValid},
		{"iat in the future", 0, verifiertest.Claims{"iat": t0.Add(time.Hour).Unix()}, verifier.ErrNotYetValid},
		{"custom leeway covers", 2 * time.Minute, verifiertest.Claims{"exp": t0.Add(-time.Minute).Unix()}, nil},
		{"fractional exp", 0, verifiertest.Claims{"exp": float64(t0.Add(time.Hour).UnixMilli()) / 1000}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newVerifier(t, iss, func(c *verifier.Config) { c.Now, c.Leeway = clk.Now, tc.leeway })
			_, err := v.Verify(context.Background(), iss.SignToken(t, tc.claims))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify: got %v, want %v", err, tc.want)
			}
			var ee *verifier.ExpiredError
			if errors.Is(err, verifier.ErrExpired) && !errors.As(err, &ee) {
				t.Errorf("got %T, want *ExpiredError", err)
			}
		})
	}

	t.Run("cached token expires", func(t *testing.T) {
		v := newVerifier(t, iss, func(c *verifier.Config) { c.Now, c.MaxStaleness = clk.Now, 1000*time.Hour })
		tok := iss.SignToken(t, verifiertest.Claims{"exp": clk.Now().Add(time.Minute).Unix()})
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatalf("Verify: got %v, want nil", err)
		}
		clk.Advance(2 * time.Minute)
		_, err := v.Verify(context.Background(), tok)
		var ee *verifier.ExpiredError
		if !errors.As(err, &ee) || !ee.Expiry.Equal(t0.Add(time.Minute)) {
			t.Fatalf("Verify after expiry: got %v, want ExpiredError at %s", err, t0.Add(time.Minute))
		}
	})
}

func TestAudience(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	v := newVerifier(t, iss, func(c *verifier.Config) { c.Audience = "https://api.example.com" })
	open := newVerifier(t, iss, nil)
	tests := []struct {
		name     string
		aud      any
		want     error
		wantOpen error
	}{
		{"string match", "https://api.example.com", nil, nil},
		{"array match", []string{"x", "https://api.example.com"}, nil, nil},
		{"other", "https://other.example.com", verifier.ErrAudience, nil},
		{"empty array", []string{}, verifier.ErrAudience, nil},
		{"absent", nil, verifier.ErrAudience, nil},
		{"wrong type", 42, verifier.ErrMalformed, verifier.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := iss.SignToken(t, verifiertest.Claims{"aud": tc.aud})
			if _, err := v.Verify(context.Background(), tok); !errors.Is(err, tc.want) {
				t.Errorf("with Audience: got %v, want %v", err, tc.want)
			}
			if _, err := open.Verify(context.Background(), tok); !errors.Is(err, tc.wantOpen) {
				t.Errorf("without Audience: got %v, want %v", err, tc.wantOpen)
			}
		})
	}
}

func TestNewFails(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	tests := []struct {
		name string
		cfg  verifier.Config
		down bool
	}{
		{"no issuer URL", verifier.Config{}, false},
		{"not http", verifier.Config{IssuerURL: "ftp://example.com"}, false},
		{"metadata issuer differs", verifier.Config{IssuerURL: iss.URL() + "/"}, false},
		{"issuer down", verifier.Config{IssuerURL: iss.URL()}, true},
		{"nothing listening", verifier.Config{IssuerURL: "http://127.0.0.1:1"}, false},
		{"leeway beyond the list's grace", verifier.Config{IssuerURL: iss.URL(), Leeway: revocation.ExpiryGrace + time.Second}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			iss.SetDown(tc.down)
			defer iss.SetDown(false)
			tc.cfg.Logger = quietLogger()
			v, err := verifier.New(context.Background(), tc.cfg)
			if err == nil {
				v.Close()
				t.Fatal("New: got nil error, want one")
			}
			if !strings.HasPrefix(err.Error(), "verifier: ") {
				t.Errorf("message %q: want prefix %q", err, "verifier: ")
			}
		})
	}
}

// TestRevokedTokenRefusedThroughLeeway: a verifier accepts a token until exp
// plus its leeway, and the revocation list keeps the token's entry that
// long, so a revoked token is never accepted again after its exp.
func TestRevokedTokenRefusedThroughLeeway(t *testing.T) {
	clk := newClock()
	iss := verifiertest.NewIssuer(t, verifiertest.WithNow(clk.Now))
	v := newVerifier(t, iss, func(c *verifier.Config) {
		c.Now, c.Leeway, c.MaxStaleness = clk.Now, revocation.ExpiryGrace, 1000*time.Hour
		// The verifier forgets expired entries after each key refresh;
		// refresh often so that forgetting runs inside this test.
		c.JWKSRefreshInterval = 5 * time.Millisecond
	})
	// pruned waits until the verifier has refreshed its keys (and so
	// pruned its entries) twice more at the current clock.
	pruned := func() {
		t.Helper()
		n := iss.Requests("/.well-known/jwks.json")
		eventually(t, "key refresh", func() bool { return iss.Requests("/.well-known/jwks.json") >= n+2 })
	}
	tok := iss.SignToken(t, verifiertest.Claims{"exp": clk.Now().Add(time.Minute).Unix()})
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("Verify: got %v, want nil", err)
	}
	iss.Revoke(verifiertest.TokenID(t, tok))
	eventually(t, "token refused", func() bool {
		_, err := v.Verify(context.Background(), tok)
		return errors.Is(err, verifier.ErrRevoked)
	})
	// Past exp, inside the leeway, and past the verifier's pruning period.
	clk.Advance(time.Minute + revocation.ExpiryGrace - time.Second)
	pruned()
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, verifier.ErrRevoked) {
		t.Fatalf("Verify after exp but within the leeway: got %v, want ErrRevoked", err)
	}
	clk.Advance(2 * time.Second)
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, verifier.ErrExpired) {
		t.Fatalf("Verify past exp+leeway: got %v, want ErrExpired", err)
	}
}

func TestRevocationViaSSE(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	// Polling is made rare so that only the event stream can deliver.
	v := newVerifier(t, iss, func(c *verifier.Config) { c.PollInterval = time.Hour })
	tok := iss.SignToken(t, nil)
	other := iss.SignToken(t, nil)
	for _, tk := range []string{tok, other} {
		if _, err := v.Verify(context.Background(), tk); err != nil {
			t.Fatalf("Verify: got %v, want nil", err)
		}
	}
	eventually(t, "event stream connected", func() bool { return iss.Requests("/revocations/events") > 0 })
	polls := iss.Requests("/revocations")
	iss.Revoke(verifiertest.TokenID(t, tok))
	eventually(t, "cached token refused", func() bool {
		_, err := v.Verify(context.Background(), tok)
		return errors.Is(err, verifier.ErrRevoked)
	})
	if _, err := v.Verify(context.Background(), other); err != nil {
		t.Errorf("other cached token: got %v, want nil", err)
	}
	if got := iss.Requests("/revocations/{id}"); got != 0 {
		t.Errorf("single-id lookups: got %d, want 0 (the entry is known exactly)", got)
	}
	if got := iss.Requests("/revocations"); got > polls+1 {
		t.Errorf("list requests after connecting: got %d more, want at most 1", got-polls)
	}
}

func TestRevocationViaPolling(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	v := newVerifier(t, iss, func(c *verifier.Config) { c.DisableSSE = true })
	tok := iss.SignToken(t, nil)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("Verify: got %v, want nil", err)
	}
	iss.Revoke(verifiertest.TokenID(t, tok))
	eventually(t, "cached token refused", func() bool {
		_, err := v.Verify(context.Background(), tok)
		return errors.Is(err, verifier.ErrRevoked)
	})
	if got := iss.Requests("/revocations/events"); got != 0 {
		t.Errorf("event stream requests with DisableSSE: got %d, want 0", got)
	}
}

func TestSnapshotRevocationsAtStart(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	revoked := iss.SignToken(t, nil)
	iss.Revoke(verifiertest.TokenID(t, revoked))
	v := newVerifier(t, iss, func(c *verifier.Config) { c.CacheSize = -1 })
	for i := range 2 {
		if _, err := v.Verify(context.Background(), revoked); !errors.Is(err, verifier.ErrRevoked) {
			t.Fatalf("Verify #%d: got %v, want ErrRevoked", i, err)
		}
	}
	// The filter hit was confirmed once; the answer is remembered.
	if got := iss.Requests("/revocations/{id}"); got != 1 {
		t.Errorf("single-id lookups: got %d, want 1", got)
	}
}

func TestBloomFalsePositive(t *testing.T) {
	// A one-bit filter: once anything is revoked, every id hits.
	iss := verifiertest.NewIssuer(t, verifiertest.WithFilter(1, 1))
	revoked := iss.SignToken(t, nil)
	iss.Revoke(verifiertest.TokenID(t, revoked))
	v := newVerifier(t, iss, func(c *verifier.Config) { c.CacheSize = -1 })
	valid := iss.SignToken(t, nil)

	for i := range 3 {
		if _, err := v.Verify(context.Background(), valid); err != nil {
			t.Fatalf("Verify #%d of a valid token hitting the filter: got %v, want nil", i, err)
		}
	}
	if got := iss.Requests("/revocations/{id}"); got != 1 {
		t.Errorf("single-id lookups: got %d, want 1 (the negative answer is remembered)", got)
	}
	if _, err := v.Verify(context.Background(), revoked); !errors.Is(err, verifier.ErrRevoked) {
		t.Errorf("revoked token: got %v, want ErrRevoked", err)
	}
	// A revocation of the once-denied id arriving later still counts.
	iss.Revoke(verifiertest.TokenID(t, valid))
	eventually(t, "denied id revoked later", func() bool {
		_, err := v.Verify(context.Background(), valid)
		return errors.Is(err, verifier.ErrRevoked)
	})
}

func TestBloomHitUnconfirmable(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		t.Run(fmt.Sprintf("FailOpen=%v", failOpen), func(t *testing.T) {
			iss := verifiertest.NewIssuer(t, verifiertest.WithFilter(1, 1))
			iss.Revoke("someone-else")
			v := newVerifier(t, iss, func(c *verifier.Config) { c.FailOpen = failOpen })
			tok := iss.SignToken(t, nil)
			iss.SetDown(true)
			_, err := v.Verify(context.Background(), tok)
			switch {
			case failOpen && err != nil:
				t.Errorf("got %v, want nil (fail open)", err)
			case !failOpen && !errors.Is(err, verifier.ErrStale):
				t.Errorf("got %v, want ErrStale", err)
			}
		})
	}
}

func TestSubjectCutoff(t *testing.T) {
	clk := newClock()
	iss := verifiertest.NewIssuer(t, verifiertest.WithNow(clk.Now))
	v := newVerifier(t, iss, func(c *verifier.Config) { c.Now, c.MaxStaleness = clk.Now, 1000*time.Hour })
	before := iss.SignToken(t, verifiertest.Claims{"sub": "bob"})
	otherOrg := iss.SignToken(t, verifiertest.Claims{"sub": "bob", "org": "globex"})
	otherSub := iss.SignToken(t, verifiertest.Claims{"sub": "carol"})
	for _, tk := range []string{before, otherOrg, otherSub} {
		if _, err := v.Verify(context.Background(), tk); err != nil {
			t.Fatalf("Verify: got %v, want nil", err)
		}
	}
	clk.Advance(time.Second)
	iss.RevokeSubject("acme", "bob", clk.Now())
	clk.Advance(time.Second)
	after := iss.SignToken(t, verifiertest.Claims{"sub": "bob"})
	eventually(t, "subject cut-off applied", func() bool {
		_, err := v.Verify(context.Background(), before)
		return errors.Is(err, verifier.ErrRevoked)
	})
	for name, tk := range map[string]string{"issued after": after, "other org": otherOrg, "other subject": otherSub} {
		if _, err := v.Verify(context.Background(), tk); err != nil {
			t.Errorf("%s: got %v, want nil", name, err)
		}
	}
	// A fresh verifier learns the cut-off from the snapshot.
	fresh := newVerifier(t, iss, func(c *verifier.Config) { c.Now, c.MaxStaleness = clk.Now, 1000*time.Hour })
	if _, err := fresh.Verify(context.Background(), before); !errors.Is(err, verifier.ErrRevoked) {
		t.Errorf("fresh verifier: got %v, want ErrRevoked", err)
	}
}

func TestKeyRotationAndWithdrawal(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	v := newVerifier(t, iss, nil)
	old := iss.SignToken(t, nil)
	oldKid := iss.KeyID()
	if _, err := v.Verify(context.Background(), old); err != nil {
		t.Fatalf("Verify: got %v, want nil", err)
	}
	fetches := iss.Requests("/.well-known/jwks.json")
	iss.RotateKey(t)
	fresh := iss.SignToken(t, nil)
	if _, err := v.Verify(context.Background(), fresh); err != nil {
		t.Fatalf("token of the rotated-in key: got %v, want nil", err)
	}
	if got := iss.Requests("/.well-known/jwks.json") - fetches; got != 1 {
		t.Errorf("JWKS fetches for the new kid: got %d, want 1", got)
	}
	if _, err := v.Verify(context.Background(), old); err != nil {
		t.Errorf("token of the retired (still published) key: got %v, want nil", err)
	}
	oldUnseen := iss.SignTokenWithHeader(t, map[string]any{"kid": oldKid}, nil) // signed by the new key
	if _, err := v.Verify(context.Background(), oldUnseen); !errors.Is(err, verifier.ErrBadSignature) {
		t.Errorf("new key's signature under the old kid: got %v, want ErrBadSignature", err)
	}

	iss.RevokeKey(oldKid)
	eventually(t, "withdrawn key's cached token refused", func() bool {
		_, err := v.Verify(context.Background(), old)
		return errors.Is(err, verifier.ErrRevoked)
	})
	if _, err := v.Verify(context.Background(), fresh); err != nil {
		t.Errorf("token of the remaining key: got %v, want nil", err)
	}
	// A fresh verifier knows the withdrawal from the snapshot.
	v2 := newVerifier(t, iss, nil)
	if _, err := v2.Verify(context.Background(), old); !errors.Is(err, verifier.ErrRevoked) {
		t.Errorf("fresh verifier, withdrawn key: got %v, want ErrRevoked", err)
	}
}

func TestUnknownKidFlood(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	v := newVerifier(t, iss, nil)
	toks := make([]string, 1000)
	for i := range toks {
		toks[i] = iss.SignTokenWithHeader(t, map[string]any{"kid": fmt.Sprintf("made-up-%d", i)}, nil)
	}
	before := iss.Requests("/.well-known/jwks.json")
	var wg sync.WaitGroup
	var wrong atomic.Int64
	for w := range 20 {
		wg.Go(func() {
			for i := w; i < len(toks); i += 20 {
				if _, err := v.Verify(context.Background(), toks[i]); !errors.Is(err, verifier.ErrUnknownKey) {
					wrong.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n := wrong.Load(); n != 0 {
		t.Errorf("%d tokens did not fail with ErrUnknownKey", n)
	}
	if got := iss.Requests("/.well-known/jwks.json") - before; got < 1 || got > 2 {
		t.Errorf("JWKS fetches for 1000 made-up kids: got %d, want 1 or 2", got)
	}
}

func TestOutageAndStaleness(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		t.Run(fmt.Sprintf("FailOpen=%v", failOpen), func(t *testing.T) {
			clk := newClock()
			iss := verifiertest.NewIssuer(t, verifiertest.WithNow(clk.Now))
			v := newVerifier(t, iss, func(c *verifier.Config) { c.Now, c.FailOpen = clk.Now, failOpen })
			seen := iss.SignToken(t, nil)
			if _, err := v.Verify(context.Background(), seen); err != nil {
				t.Fatalf("Verify: got %v, want nil", err)
			}

			iss.SetDown(true)
			polls := iss.Requests("/revocations")
			eventually(t, "verifier polls the down issuer", func() bool { return iss.Requests("/revocations") >= polls+2 })
			// Within MaxStaleness the last good keys and list still serve.
			clk.Advance(5 * time.Minute)
			unseen := iss.SignToken(t, nil)
			for name, tk := range map[string]string{"seen": seen, "unseen": unseen} {
				if _, err := v.Verify(context.Background(), tk); err != nil {
					t.Errorf("%s token during a short outage: got %v, want nil", name, err)
				}
			}
			revokedDuringOutage := iss.SignToken(t, nil)
			iss.Revoke(verifiertest.TokenID(t, revokedDuringOutage))

			// Past MaxStaleness: closed, or open when configured.
			clk.Advance(6 * time.Minute)
			for name, tk := range map[string]string{"seen": seen, "unseen": iss.SignToken(t, nil)} {
				_, err := v.Verify(context.Background(), tk)
				if failOpen && err != nil {
					t.Errorf("%s token, stale, fail open: got %v, want nil", name, err)
				}
				if !failOpen && !errors.Is(err, verifier.ErrStale) {
					t.Errorf("%s token, stale, fail closed: got %v, want ErrStale", name, err)
				}
			}

			// Recovery: the list syncs again, including what was revoked
			// meanwhile.
			iss.SetDown(false)
			eventually(t, "verifier recovers", func() bool {
				_, err := v.Verify(context.Background(), seen)
				return err == nil
			})
			eventually(t, "revocation made during the outage arrives", func() bool {
				_, err := v.Verify(context.Background(), revokedDuringOutage)
				return errors.Is(err, verifier.ErrRevoked)
			})
		})
	}
}

func TestTooFarBehindReloadsSnapshot(t *testing.T) {
	iss := verifiertest.NewIssuer(t, verifiertest.WithMaxDelta(2))
	v := newVerifier(t, iss, func(c *verifier.Config) { c.DisableSSE = true })
	toks := make([]string, 5)
	for i := range toks {
		toks[i] = iss.SignToken(t, nil)
		if _, err := v.Verify(context.Background(), toks[i]); err != nil {
			t.Fatalf("Verify: got %v, want nil", err)
		}
	}
	iss.SetDown(true)
	polls := iss.Requests("/revocations")
	eventually(t, "verifier polls the down issuer", func() bool { return iss.Requests("/revocations") >= polls+2 })
	for _, tk := range toks {
		iss.Revoke(verifiertest.TokenID(t, tk))
	}
	iss.SetDown(false)
	for i, tk := range toks {
		eventually(t, fmt.Sprintf("token %d refused after the snapshot reload", i), func() bool {
			_, err := v.Verify(context.Background(), tk)
			return errors.Is(err, verifier.ErrRevoked)
		})
	}
}

func TestConcurrentVerifyAndRevoke(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	v := newVerifier(t, iss, func(c *verifier.Config) { c.CacheSize = 64 })
	toks := make([]string, 200)
	for i := range toks {
		toks[i] = iss.SignToken(t, nil)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for r := range 5 {
				for i := w; i < len(toks); i += 4 {
					_, err := v.Verify(context.Background(), toks[i])
					if err != nil && !errors.Is(err, verifier.ErrRevoked) {
						t.Errorf("round %d token %d: got %v, want nil or ErrRevoked", r, i, err)
					}
				}
			}
		})
	}
	for i := 0; i < len(toks); i += 10 {
		iss.Revoke(verifiertest.TokenID(t, toks[i]))
	}
	wg.Wait()
	for i := 0; i < len(toks); i += 10 {
		eventually(t, fmt.Sprintf("token %d refused", i), func() bool {
			_, err := v.Verify(context.Background(), toks[i])
			return errors.Is(err, verifier.ErrRevoked)
		})
	}
}

func TestHasScope(t *testing.T) {
	tests := []struct {
		scopes []string
		want   string
		ok     bool
	}{
		{[]string{"reports:read"}, "reports:read", true},
		{[]string{"reports:read"}, "reports:write", false},
		{[]string{"bucket:*"}, "bucket:in.c-main:read", true},
		{[]string{"bucket:*"}, "bucket:*", true},
		{[]string{"bucket:*"}, "buckets:x", false},
		{[]string{"bucket:in.c-main:read"}, "bucket:*", false},
		{[]string{"*"}, "anything:at:all", true},
		{nil, "reports:read", false},
		{[]string{"*"}, "", false},
		{[]string{""}, "", false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%v has %q", tc.scopes, tc.want), func(t *testing.T) {
			c := &verifier.Claims{Scopes: tc.scopes}
			if got := c.HasScope(tc.want); got != tc.ok {
				t.Errorf("got %v, want %v", got, tc.ok)
			}
		})
	}
}

// TestCutoffNotShortenedByNewerOne: a removed user's token must not verify
// again when a newer cut-off of the same subject, with a shorter expiry
// (max_ttl was lowered in between), is pruned: the older cut-off's
// protection lasts until its own expiry, in a long-running verifier and in
// one that starts from the snapshot alike.
func TestCutoffNotShortenedByNewerOne(t *testing.T) {
	clk := newClock()
	iss := verifiertest.NewIssuer(t, verifiertest.WithNow(clk.Now))
	cfg := func(c *verifier.Config) {
		c.Now, c.MaxStaleness, c.CacheSize = clk.Now, 1000*time.Hour, -1
		c.JWKSRefreshInterval = 10 * time.Millisecond // prunes as often
	}
	v := newVerifier(t, iss, cfg)
	t0 := clk.Now()
	long := iss.SignToken(t, verifiertest.Claims{"sub": "bob", "exp": t0.Add(100 * time.Hour).Unix()})
	if _, err := v.Verify(context.Background(), long); err != nil {
		t.Fatalf("Verify before any cut-off: %v", err)
	}
	clk.Advance(time.Second)
	iss.RevokeSubjectUntil("acme", "bob", clk.Now(), t0.Add(100*time.Hour)) // covers the long token
	clk.Advance(time.Second)
	iss.RevokeSubjectUntil("acme", "bob", clk.Now(), clk.Now().Add(time.Hour)) // max_ttl now 1h
	eventually(t, "cut-offs applied", refused(v, long))
	fresh := newVerifier(t, iss, cfg)

	// Past the newer cut-off's expiry and grace, with prunes in between.
	clk.Advance(time.Hour + revocation.ExpiryGrace + 2*time.Minute)
	for name, v := range map[string]*verifier.Verifier{"long-running": v, "from the snapshot": fresh} {
		for range 3 { // a prune runs at most once a minute of the clock
			time.Sleep(50 * time.Millisecond)
			clk.Advance(time.Minute)
			if _, err := v.Verify(context.Background(), long); !errors.Is(err, verifier.ErrRevoked) {
				t.Fatalf("%s verifier after the newer cut-off expired: got %v, want ErrRevoked", name, err)
			}
		}
	}
}

// TestRevocationTakingEffectLater: a token revoked from a later time on (a
// token regenerated with a grace period) verifies until then and is refused
// from then on, also when its earlier answer was cached, whether the entry
// came as an event or in the snapshot.
func TestRevocationTakingEffectLater(t *testing.T) {
	clk := newClock()
	iss := verifiertest.NewIssuer(t, verifiertest.WithNow(clk.Now))
	cfg := func(c *verifier.Config) { c.Now, c.MaxStaleness = clk.Now, 1000*time.Hour }
	v := newVerifier(t, iss, cfg)
	tok, marker := iss.SignToken(t, nil), iss.SignToken(t, nil)
	until := clk.Now().Add(time.Hour)
	iss.RevokeFrom(verifiertest.TokenID(t, tok), until)
	iss.Revoke(verifiertest.TokenID(t, marker)) // applied after it
	fresh := newVerifier(t, iss, cfg)           // learns it from the snapshot
	eventually(t, "entries applied", refused(v, marker))
	for name, v := range map[string]*verifier.Verifier{"event": v, "snapshot": fresh} {
		for range 2 { // the second answer comes from the cache
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Fatalf("%s: before its time: got %v, want nil", name, err)
			}
		}
	}
	clk.Advance(time.Hour)
	for name, v := range map[string]*verifier.Verifier{"event": v, "snapshot": fresh} {
		eventually(t, name+": refused once in effect", refused(v, tok))
	}
}
