package keys

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"

	"github.com/signet-auth/signet/token"
)

// signWith signs payload with the private key of kid in k, using exactly
// the given extra protected headers (alg and kid are set from the key).
func signWith(tb testing.TB, k *Keyring, kid string, extra map[string]any, payload string) string {
	tb.Helper()
	e := k.current().byKID[kid]
	if e == nil {
		tb.Fatalf("no key %s", kid)
	}
	return signRaw(tb, e.alg, e.signer, kid, extra, payload)
}

// signRaw signs payload with a raw private key and the given headers.
func signRaw(tb testing.TB, alg jwa.SignatureAlgorithm, key any, kid string, extra map[string]any, payload string) string {
	tb.Helper()
	hdr := jws.NewHeaders()
	if kid != "" {
		if err := hdr.Set(jws.KeyIDKey, kid); err != nil {
			tb.Fatal(err)
		}
	}
	for name, v := range extra {
		if err := hdr.Set(name, v); err != nil {
			tb.Fatalf("set header %s: %v", name, err)
		}
	}
	out, err := jws.Sign([]byte(payload), jws.WithKey(alg, key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		tb.Fatalf("jws.Sign: %v", err)
	}
	return string(out)
}

// compact assembles a compact JWS from a header map, payload and signature
// function over the signing input.
func compact(tb testing.TB, header map[string]any, payload string, sign func(input []byte) []byte) string {
	tb.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		tb.Fatal(err)
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(h) + "." + enc.EncodeToString([]byte(payload))
	return input + "." + enc.EncodeToString(sign([]byte(input)))
}

func hmacSHA256(secret []byte) func([]byte) []byte {
	return func(input []byte) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write(input)
		return m.Sum(nil)
	}
}

func TestVerifyRejectsAttacks(t *testing.T) {
	for _, alg := range []string{"EdDSA", "ES256", "RS256"} {
		t.Run(alg, func(t *testing.T) {
			testVerifyRejectsAttacks(t, alg)
		})
	}
}

func testVerifyRejectsAttacks(t *testing.T, alg string) {
	k := openTest(t, t.TempDir(), newTestClock(), func(c *Config) { c.Algorithm = alg })
	good, kid := mustSign(t, k)
	parts := strings.Split(good, ".")

	e := k.current().byKID[kid]
	pubJWK, err := jwk.ParseKey(e.publicJWK)
	if err != nil {
		t.Fatal(err)
	}
	var pubDER []byte
	switch p := e.public.(type) {
	case ed25519.PublicKey:
		pubDER = p
	default:
		pubDER = e.publicJWK
	}

	_, attackerPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	attackerJWK, err := jwk.FromRaw(attackerPriv.Public())
	if err != nil {
		t.Fatal(err)
	}
	attackerKID, err := Thumbprint(attackerJWK)
	if err != nil {
		t.Fatal(err)
	}
	attackerPub, _ := json.Marshal(attackerJWK)

	noSig := func([]byte) []byte { return nil }
	garbageSig := func([]byte) []byte { return []byte("not a signature at all, really") }

	cases := []struct {
		name  string
		token string
		want  error
	}{
		{"alg none, empty signature", compact(t, map[string]any{"alg": "none", "kid": kid, "typ": "at+jwt"}, testClaims, noSig), ErrMalformed},
		// The header policy refuses these before any key is looked at.
		{"alg none, some signature", compact(t, map[string]any{"alg": "none", "kid": kid, "typ": "at+jwt"}, testClaims, garbageSig), ErrMalformed},
		{"HS256 with public JWK as secret", compact(t, map[string]any{"alg": "HS256", "kid": kid, "typ": "at+jwt"}, testClaims, hmacSHA256(e.publicJWK)), ErrMalformed},
		{"HS256 with public key bytes as secret", compact(t, map[string]any{"alg": "HS256", "kid": kid, "typ": "at+jwt"}, testClaims, hmacSHA256(pubDER)), ErrMalformed},
		{"embedded attacker jwk", compact(t, map[string]any{"alg": "EdDSA", "kid": attackerKID, "typ": "at+jwt", "jwk": json.RawMessage(attackerPub)}, testClaims, func(in []byte) []byte { return ed25519.Sign(attackerPriv, in) }), ErrMalformed},
		{"embedded jwk under our kid", compact(t, map[string]any{"alg": "EdDSA", "kid": kid, "typ": "at+jwt", "jwk": json.RawMessage(attackerPub)}, testClaims, func(in []byte) []byte { return ed25519.Sign(attackerPriv, in) }), ErrMalformed},
		{"attacker key without jwk header", compact(t, map[string]any{"alg": "EdDSA", "kid": attackerKID, "typ": "at+jwt"}, testClaims, func(in []byte) []byte { return ed25519.Sign(attackerPriv, in) }), ErrUnknownKey},
		{"attacker key under our kid", compact(t, map[string]any{"alg": "EdDSA", "kid": kid, "typ": "at+jwt"}, testClaims, func(in []byte) []byte { return ed25519.Sign(attackerPriv, in) }), ErrBadSignature},
		{"jku header, our key", signWith(t, k, kid, map[string]any{"typ": "at+jwt", "jku": "https://evil.example/jwks.json"}, testClaims), ErrMalformed},
		{"x5u header, our key", signWith(t, k, kid, map[string]any{"typ": "at+jwt", "x5u": "https://evil.example/cert.pem"}, testClaims), ErrMalformed},
		{"jwk header with our own public key", signWith(t, k, kid, map[string]any{"typ": "at+jwt", "jwk": pubJWK}, testClaims), ErrMalformed},
		{"crit, our key", signWith(t, k, kid, map[string]any{"typ": "at+jwt", "crit": []string{"exp"}, "exp": 1}, testClaims), ErrMalformed},
		{"b64 false", compact(t, map[string]any{"alg": alg, "kid": kid, "typ": "at+jwt", "b64": false, "crit": []string{"b64"}}, testClaims, garbageSig), ErrMalformed},
		{"missing typ, our key", signWith(t, k, kid, nil, testClaims), ErrMalformed},
		{"wrong typ, our key", signWith(t, k, kid, map[string]any{"typ": "JWT"}, testClaims), ErrMalformed},
		{"missing kid", compact(t, map[string]any{"alg": alg, "typ": "at+jwt"}, testClaims, garbageSig), ErrMalformed},
		{"kid not a string", compact(t, map[string]any{"alg": alg, "kid": 7, "typ": "at+jwt"}, testClaims, garbageSig), ErrMalformed},
		{"tampered payload", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(testClaims, `"alice"`, `"admin"`, 1))) + "." + parts[2], ErrBadSignature},
		{"signature of another token", parts[0] + "." + parts[1] + "." + strings.Split(signWith(t, k, kid, map[string]any{"typ": "at+jwt"}, `{"x":1}`), ".")[2], ErrBadSignature},
		{"truncated signature", parts[0] + "." + parts[1] + "." + parts[2][:40], ErrBadSignature},
		{"padded signature", good + "==", ErrMalformed},
		{"other algorithm claimed", compact(t, map[string]any{"alg": otherAlg(alg), "kid": kid, "typ": "at+jwt"}, testClaims, garbageSig), ErrBadSignature},
		{"empty", "", ErrMalformed},
		{"two parts", parts[0] + "." + parts[1], ErrMalformed},
		{"four parts", good + ".x", ErrMalformed},
		{"empty payload", parts[0] + ".." + parts[2], ErrMalformed},
		{"header not base64", "!!!." + parts[1] + "." + parts[2], ErrMalformed},
		{"header not JSON", base64.RawURLEncoding.EncodeToString([]byte("nope")) + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"header JSON array", base64.RawURLEncoding.EncodeToString([]byte("[1]")) + "." + parts[1] + "." + parts[2], ErrMalformed},
		{"JSON serialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, ErrMalformed},
		{"oversized", strings.Repeat("a", token.MaxSize+1), ErrMalformed},
		// Claims our key signed that two readers could read differently.
		{"duplicate jti, our key", signWith(t, k, kid, map[string]any{"typ": "at+jwt"}, strings.TrimSuffix(testClaims, "}")+`,"jti":"other"}`), ErrMalformed},
		{"JTI case variant, our key", signWith(t, k, kid, map[string]any{"typ": "at+jwt"}, strings.TrimSuffix(testClaims, "}")+`,"JTI":"other"}`), ErrMalformed},
		{"trailing data, our key", signWith(t, k, kid, map[string]any{"typ": "at+jwt"}, testClaims+`{"jti":"other"}`), ErrMalformed},
		{"no exp, our key", signWith(t, k, kid, map[string]any{"typ": "at+jwt"}, `{"iss":"i","jti":"j"}`), ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := k.Verify(tc.token)
			p, gotKID := c.ID, c.KeyID
			if err == nil {
				t.Fatalf("Verify = %s, %s, nil; want %v", p, gotKID, tc.want)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("Verify error = %v, want %v", err, tc.want)
			}
			if p != "" || gotKID != "" {
				t.Errorf("Verify returned payload %q kid %q with an error", p, gotKID)
			}
		})
	}

	t.Run("genuine token passes", func(t *testing.T) {
		if _, got, err := verify(k, good); err != nil || got != kid {
			t.Errorf("Verify = %s, %v; want %s, nil", got, err, kid)
		}
		// typ per RFC 9068 may carry the application/ prefix.
		tok := signWith(t, k, kid, map[string]any{"typ": "application/at+jwt"}, testClaims)
		if _, _, err := verify(k, tok); err != nil {
			t.Errorf("Verify(typ application/at+jwt) = %v, want nil", err)
		}
	})
}

// otherAlg names an asymmetric algorithm signet supports that is not alg.
func otherAlg(alg string) string {
	if alg == "RS256" {
		return "ES256"
	}
	return "RS256"
}

// TestSignRefusesWhatVerifiersRefuse: Sign takes only claims the strict
// reader accepts, so no signet key ever signs an ambiguous payload.
func TestSignRefusesWhatVerifiersRefuse(t *testing.T) {
	k := openTest(t, t.TempDir(), newTestClock())
	open := strings.TrimSuffix(testClaims, "}")
	for name, payload := range map[string]string{
		"not JSON":      "nope",
		"array":         `["iss"]`,
		"duplicate jti": open + `,"jti":"other"}`,
		"JTI variant":   open + `,"JTI":"other"}`,
		"trailing data": testClaims + ` {}`,
		"no exp":        `{"iss":"i","jti":"j"}`,
	} {
		if tok, _, err := k.Sign([]byte(payload)); err == nil {
			t.Errorf("Sign(%s): got a token %.20s…, want an error", name, tok)
		}
	}
	if _, _, err := k.Sign([]byte(testClaims)); err != nil {
		t.Errorf("Sign(testClaims): got %v, want nil", err)
	}
}
