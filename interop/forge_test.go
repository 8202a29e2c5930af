package interop

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// The forgeries every client must refuse, as signet's verifier does.
const (
	forgedAlgNone     = "alg none"
	forgedHMAC        = "HS256 keyed with the public key"
	forgedJKU         = "jku header to the attacker's keys"
	forgedX5U         = "x5u header to the attacker's certificate"
	forgedJWK         = "embedded jwk header"
	forgedCrit        = "unknown crit (genuine signature)"
	forgedTampered    = "tampered payload"
	forgedWrongIssuer = "wrong iss (genuine signature)"
	forgedExpired     = "expired (genuine signature)"
)

// headerOf decodes a compact JWS's protected header.
func headerOf(tb testing.TB, token string) map[string]any {
	tb.Helper()
	var h map[string]any
	if err := json.Unmarshal(segment(tb, token, 0), &h); err != nil {
		tb.Fatalf("header: %v", err)
	}
	return h
}

// claimsOf decodes a compact JWS's payload.
func claimsOf(tb testing.TB, token string) map[string]any {
	tb.Helper()
	var c map[string]any
	if err := json.Unmarshal(segment(tb, token, 1), &c); err != nil {
		tb.Fatalf("claims: %v", err)
	}
	return c
}

func segment(tb testing.TB, token string, i int) []byte {
	tb.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		tb.Fatalf("not a compact JWS: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		tb.Fatalf("segment %d: %v", i, err)
	}
	return b
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// attackerKey is a fresh private key of the same kind as alg's.
func attackerKey(tb testing.TB, alg string) any {
	tb.Helper()
	var k any
	var err error
	switch alg {
	case "ES256":
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case "EdDSA":
		_, k, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil || k == nil {
		tb.Fatalf("attacker key for %s: %v", alg, err)
	}
	return k
}

// sign signs claims with key under the given protected header.
func sign(tb testing.TB, alg jwa.SignatureAlgorithm, key any, header map[string]any, claims map[string]any) string {
	tb.Helper()
	hdr := jws.NewHeaders()
	for k, v := range header {
		if err := hdr.Set(k, v); err != nil {
			tb.Fatalf("header %s: %v", k, err)
		}
	}
	payload, _ := json.Marshal(claims)
	out, err := jws.Sign(payload, jws.WithKey(alg, key, jws.WithProtectedHeaders(hdr)))
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	return string(out)
}

// forge builds every forgery from a valid token, the issuer's signing key
// (for the ones with a genuine signature) and an attacker's key. The jku
// and x5u forgeries point at a loopback server that serves the attacker's
// key set and certificate until the test binary exits.
func forge(tb testing.TB, valid string, signing jwk.Key, alg string) []forgery {
	tb.Helper()
	hdr := headerOf(tb, valid)
	claims := claimsOf(tb, valid)
	kid := hdr["kid"].(string)
	with := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{}
		for k, v := range claims {
			c[k] = v
		}
		mod(c)
		return c
	}
	ja := jwa.SignatureAlgorithm(alg)

	// The attacker's key, published by the attacker.
	ak := attackerKey(tb, alg)
	apub, err := jwk.PublicKeyOf(ak)
	if err != nil {
		tb.Fatal(err)
	}
	_ = apub.Set(jwk.KeyIDKey, "attacker")
	_ = apub.Set(jwk.AlgorithmKey, alg)
	apubJSON, _ := json.Marshal(apub)
	acert := selfSigned(tb, ak)
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/jwks.json":
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"keys":[` + string(apubJSON) + `]}`))
		case "/cert.pem":
			_, _ = w.Write(acert)
		default:
			http.NotFound(w, r)
		}
	}))
	// Left running: the Node clients read the fixture later in the run.

	// HMAC keyed with the issuer's public key, as PEM (the classic
	// algorithm-confusion attack).
	pub, err := signing.PublicKey()
	if err != nil {
		tb.Fatal(err)
	}
	var rawPub any
	if err := pub.Raw(&rawPub); err != nil {
		tb.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(rawPub)
	if err != nil {
		tb.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})

	now := time.Now().Unix()
	parts := strings.Split(valid, ".")
	return []forgery{
		{forgedAlgNone, b64(map[string]any{"alg": "none", "kid": kid, "typ": "at+jwt"}) + "." + parts[1] + "."},
		{forgedHMAC, sign(tb, jwa.HS256, pubPEM, map[string]any{"kid": kid, "typ": "at+jwt"}, claims)},
		{forgedJKU, sign(tb, ja, ak, map[string]any{"kid": "attacker", "typ": "at+jwt", "jku": attacker.URL + "/jwks.json"}, claims)},
		{forgedX5U, sign(tb, ja, ak, map[string]any{"kid": "attacker", "typ": "at+jwt", "x5u": attacker.URL + "/cert.pem"}, claims)},
		{forgedJWK, sign(tb, ja, ak, map[string]any{"kid": kid, "typ": "at+jwt", "jwk": apub}, claims)},
		{forgedCrit, sign(tb, ja, signing, map[string]any{"kid": kid, "typ": "at+jwt", "crit": []string{"urn:example:must-understand"}, "urn:example:must-understand": true}, claims)},
		{forgedTampered, parts[0] + "." + b64(with(func(c map[string]any) { c["sub"] = "root"; c["scope"] = "*" })) + "." + parts[2]},
		{forgedWrongIssuer, sign(tb, ja, signing, map[string]any{"kid": kid, "typ": "at+jwt"}, with(func(c map[string]any) { c["iss"] = "https://evil.example" }))},
		{forgedExpired, sign(tb, ja, signing, map[string]any{"kid": kid, "typ": "at+jwt"}, with(func(c map[string]any) {
			c["iat"], c["nbf"], c["exp"] = now-7200, now-7200, now-3600
		}))},
	}
}

// selfSigned is a PEM certificate for key, what an x5u would point at.
func selfSigned(tb testing.TB, key any) []byte {
	tb.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	var pubKey any
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		pubKey = &k.PublicKey
	case *rsa.PrivateKey:
		pubKey = &k.PublicKey
	case ed25519.PrivateKey:
		pubKey = k.Public()
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pubKey, key)
	if err != nil {
		tb.Fatalf("self-signed certificate: %v", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
