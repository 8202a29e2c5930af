package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

const goodClaims = `{"iss":"https://auth.example.com","sub":"alice","iat":1700000000,"nbf":1700000000,"exp":1700003600,"jti":"j1","org":"acme","token_type":"personal","scope":"a:read b:*"}`

// compact builds a compact JWS of raw header and payload JSON with a
// signature of sig bytes (Parse checks no signature).
func compact(header, payload string, sig []byte) string {
	enc := base64.RawURLEncoding
	return enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(payload)) + "." + enc.EncodeToString(sig)
}

const goodHeader = `{"alg":"EdDSA","kid":"k1","typ":"at+jwt"}`

func TestParseClaims(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr bool
		check   func(c *Claims) string
	}{
		{"signet's claims", goodClaims, false, func(c *Claims) string {
			if c.Issuer != "https://auth.example.com" || c.Subject != "alice" || c.ID != "j1" || c.Org != "acme" ||
				c.TokenType != "personal" || !c.Expiry.Equal(time.Unix(1700003600, 0)) || !c.IssuedAt.Equal(time.Unix(1700000000, 0)) ||
				strings.Join(c.Scopes, ",") != "a:read,b:*" {
				return fmt.Sprintf("%+v", *c)
			}
			return ""
		}},
		{"escapes in values and keys", `{"\u0069ss":"a\/b\u00e9\ud83d\ude00","exp":1,"jti":"j"}`, false, func(c *Claims) string {
			if c.Issuer != "a/bé😀" {
				return fmt.Sprintf("iss %q", c.Issuer)
			}
			return ""
		}},
		{"unknown members of every shape", `{"x":{"a":[1,2,{"b":null}]},"y":[true,false],"z":-1.5e3,"iss":"i","exp":2,"jti":"j"}`, false, nil},
		{"aud array and whitespace", " {\n\t\"aud\" : [ \"a\" , \"b\" ] ,\"iss\":\"i\",\"exp\":2,\"jti\":\"j\"} ", false, func(c *Claims) string {
			if len(c.Audience) != 2 || c.Audience[1] != "b" {
				return fmt.Sprintf("aud %v", c.Audience)
			}
			return ""
		}},
		{"aud string", `{"aud":"a","iss":"i","exp":2,"jti":"j"}`, false, func(c *Claims) string {
			if len(c.Audience) != 1 || c.Audience[0] != "a" {
				return fmt.Sprintf("aud %v", c.Audience)
			}
			return ""
		}},
		{"fractional exp", `{"iss":"i","exp":1.5,"jti":"j"}`, false, func(c *Claims) string {
			if !c.Expiry.Equal(time.Unix(1, 5e8)) {
				return fmt.Sprintf("exp %s", c.Expiry)
			}
			return ""
		}},
		{"scope split", `{"iss":"i","exp":1,"jti":"j","scope":" a  b "}`, false, func(c *Claims) string {
			if strings.Join(c.Scopes, ",") != "a,b" {
				return fmt.Sprintf("scopes %q", c.Scopes)
			}
			return ""
		}},
		{"same name in different objects", `{"x":{"a":1},"y":{"a":1},"iss":"i","exp":1,"jti":"j"}`, false, nil},
		{"many unknown members", `{"u1":1,"u2":2,"u3":3,"u4":4,"u5":5,"u6":6,"u7":7,"u8":8,"u9":9,"u10":10,"iss":"i","exp":1,"jti":"j"}`, false, nil},

		// The bug: readers that disagree on these bytes.
		{"duplicate jti", `{"iss":"i","exp":1,"jti":"a","jti":"b"}`, true, nil},
		{"duplicate sub", `{"sub":"admin","iss":"i","exp":1,"jti":"j","sub":"alice"}`, true, nil},
		{"duplicate through an escape", `{"iss":"i","exp":1,"jti":"a","\u006a\u0074\u0069":"b"}`, true, nil},
		{"JTI case variant", `{"iss":"i","exp":1,"jti":"a","JTI":"b"}`, true, nil},
		{"ISS case variant before iss", `{"ISS":"evil","iss":"i","exp":1,"jti":"j"}`, true, nil},
		{"Unicode fold of sub (long s)", `{"iss":"i","exp":1,"jti":"j","ſub":"admin"}`, true, nil},
		{"dotless i in iss", `{"iss":"i","exp":1,"jti":"j","ıss":"evil"}`, true, nil},
		{"Kelvin sign in token_type", "{\"iss\":\"i\",\"exp\":1,\"jti\":\"j\",\"to\u212aen_type\":\"administrative\"}", true, nil},
		{"Token_Type case variant", `{"iss":"i","exp":1,"jti":"j","Token_Type":"administrative"}`, true, nil},
		{"trailing object", `{"iss":"i","exp":1,"jti":"j"} {"jti":"b"}`, true, nil},
		{"trailing garbage", `{"iss":"i","exp":1,"jti":"j"}x`, true, nil},
		{"duplicate unknown member", `{"x":1,"x":2,"iss":"i","exp":1,"jti":"j"}`, true, nil},
		{"duplicate unknown member, escaped", `{"x":1,"\u0078":2,"iss":"i","exp":1,"jti":"j"}`, true, nil},
		{"duplicate in a nested object", `{"x":{"a":1,"a":2},"iss":"i","exp":1,"jti":"j"}`, true, nil},
		{"duplicate deep in an array", `{"x":[{"y":{"a":1,"b":2,"\u0061":3}}],"iss":"i","exp":1,"jti":"j"}`, true, nil},
		{"duplicate after many members", `{"u1":1,"u2":2,"u3":3,"u4":4,"u5":5,"u6":6,"u7":7,"u8":8,"u9":9,"u1":10,"iss":"i","exp":1,"jti":"j"}`, true, nil},

		{"negative exp", `{"iss":"i","exp":-1,"jti":"j"}`, true, nil},
		{"huge exp", `{"iss":"i","exp":1e300,"jti":"j"}`, true, nil},
		{"huge integer exp", `{"iss":"i","exp":999999999999999,"jti":"j"}`, true, nil},
		{"exp string", `{"iss":"i","exp":"1","jti":"j"}`, true, nil},
		{"no exp", `{"iss":"i","jti":"j"}`, true, nil},
		{"no iss", `{"exp":1,"jti":"j"}`, true, nil},
		{"empty jti", `{"iss":"i","exp":1,"jti":""}`, true, nil},
		{"scope not a string", `{"iss":"i","exp":1,"jti":"j","scope":["a"]}`, true, nil},
		{"lone surrogate", `{"iss":"\ud800","exp":1,"jti":"j"}`, true, nil},
		{"invalid utf-8", "{\"iss\":\"\xff\",\"exp\":1,\"jti\":\"j\"}", true, nil},
		{"control character", "{\"iss\":\"a\nb\",\"exp\":1,\"jti\":\"j\"}", true, nil},
		{"bad escape", `{"iss":"\x","exp":1,"jti":"j"}`, true, nil},
		{"leading zero", `{"iss":"i","exp":01,"jti":"j"}`, true, nil},
		{"trailing comma", `{"iss":"i","exp":1,"jti":"j",}`, true, nil},
		{"deep nesting", `{"x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `,"iss":"i","exp":1,"jti":"j"}`, true, nil},
		{"unterminated", `{"iss":"i","exp":1,"jti":"j"`, true, nil},
		{"bare literal", `{"x":nul,"iss":"i","exp":1,"jti":"j"}`, true, nil},
		{"not an object", `["iss"]`, true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Claims
			err := ParseClaims([]byte(tc.in), &c)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseClaims: got %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Errorf("error %v: want ErrMalformed", err)
			}
			if tc.check != nil {
				if msg := tc.check(&c); msg != "" {
					t.Errorf("got %s", msg)
				}
			}
			// json.Unmarshal into Claims is the same reader.
			var viaJSON Claims
			if jerr := json.Unmarshal([]byte(tc.in), &viaJSON); (jerr != nil) != tc.wantErr && json.Valid([]byte(tc.in)) {
				t.Errorf("json.Unmarshal: got %v, want error %v", jerr, tc.wantErr)
			}
		})
	}
}

func TestParse(t *testing.T) {
	sig := make([]byte, 64)
	tests := []struct {
		name string
		tok  string
		want error // nil: accepted
	}{
		{"signet's token", compact(goodHeader, goodClaims, sig), nil},
		{"typ application/at+jwt", compact(`{"alg":"ES256","kid":"k","typ":"application/at+jwt"}`, goodClaims, sig), nil},
		{"typ in capitals", compact(`{"alg":"RS256","kid":"k","typ":"AT+JWT"}`, goodClaims, sig), nil},
		{"unknown header member", compact(`{"alg":"EdDSA","kid":"k","typ":"at+jwt","cty":"x"}`, goodClaims, sig), nil},
		{"empty signature (left to the key)", compact(goodHeader, goodClaims, nil), nil},

		{"alg none", compact(`{"alg":"none","kid":"k","typ":"at+jwt"}`, goodClaims, nil), ErrAlgorithm},
		{"alg HS256", compact(`{"alg":"HS256","kid":"k","typ":"at+jwt"}`, goodClaims, sig), ErrAlgorithm},
		{"alg PS256", compact(`{"alg":"PS256","kid":"k","typ":"at+jwt"}`, goodClaims, sig), ErrAlgorithm},
		{"alg lower case", compact(`{"alg":"eddsa","kid":"k","typ":"at+jwt"}`, goodClaims, sig), ErrAlgorithm},
		{"no alg", compact(`{"kid":"k","typ":"at+jwt"}`, goodClaims, sig), ErrMalformed},
		{"alg not a string", compact(`{"alg":1,"kid":"k","typ":"at+jwt"}`, goodClaims, sig), ErrMalformed},
		{"duplicate alg", compact(`{"alg":"EdDSA","kid":"k","typ":"at+jwt","alg":"none"}`, goodClaims, sig), ErrMalformed},
		{"ALG case variant", compact(`{"alg":"EdDSA","kid":"k","typ":"at+jwt","ALG":"none"}`, goodClaims, sig), ErrMalformed},
		{"JKU case variant", compact(`{"alg":"EdDSA","kid":"k","typ":"at+jwt","JKU":"https://evil.example"}`, goodClaims, sig), ErrMalformed},
		{"duplicate unknown header member", compact(`{"alg":"EdDSA","kid":"k","typ":"at+jwt","cty":"a","cty":"b"}`, goodClaims, sig), ErrMalformed},
		{"no kid", compact(`{"alg":"EdDSA","typ":"at+jwt"}`, goodClaims, sig), ErrMalformed},
		{"empty kid", compact(`{"alg":"EdDSA","kid":"","typ":"at+jwt"}`, goodClaims, sig), ErrMalformed},
		{"kid too long", compact(`{"alg":"EdDSA","kid":"`+strings.Repeat("k", MaxKeyIDLen+1)+`","typ":"at+jwt"}`, goodClaims, sig), ErrMalformed},
		{"no typ", compact(`{"alg":"EdDSA","kid":"k"}`, goodClaims, sig), ErrMalformed},
		{"typ JWT", compact(`{"alg":"EdDSA","kid":"k","typ":"JWT"}`, goodClaims, sig), ErrMalformed},
		{"jku", compact(`{"alg":"EdDSA","kid":"k","typ":"at+jwt","jku":"https://evil.example"}`, goodClaims, sig), ErrMalformed},
		{"x5u", compact(`{"alg":"EdDSA","kid":"k","typ":"at+jwt","x5u":"https://evil.example"}`, goodClaims, sig), ErrMalformed},
		{"jwk", compact(`{"alg":"EdDSA","kid":"k","typ":"at+jwt","jwk":{"kty":"OKP"}}`, goodClaims, sig), ErrMalformed},
		{"x5c", compact(`{"alg":"EdDSA","kid":"k","typ":"at+jwt","x5c":["MIIB"]}`, goodClaims, sig), ErrMalformed},
		{"b64", compact(`{"alg":"EdDSA","kid":"k","typ":"at+jwt","b64":false}`, goodClaims, sig), ErrMalformed},
		{"crit", compact(`{"alg":"EdDSA","kid":"k","typ":"at+jwt","crit":["exp"],"exp":1}`, goodClaims, sig), ErrMalformed},
		{"header trailing data", compact(goodHeader+`{}`, goodClaims, sig), ErrMalformed},
		{"claims trailing data", compact(goodHeader, goodClaims+` {"jti":"x"}`, sig), ErrMalformed},
		{"claims duplicate jti", compact(goodHeader, strings.TrimSuffix(goodClaims, "}")+`,"jti":"j2"}`, sig), ErrMalformed},

		{"empty", "", ErrMalformed},
		{"two parts", "a.b", ErrMalformed},
		{"four parts", compact(goodHeader, goodClaims, sig) + ".x", ErrMalformed},
		{"empty header", "." + base64.RawURLEncoding.EncodeToString([]byte(goodClaims)) + ".", ErrMalformed},
		{"empty payload", base64.RawURLEncoding.EncodeToString([]byte(goodHeader)) + "..", ErrMalformed},
		{"padded base64", base64.URLEncoding.EncodeToString([]byte(goodHeader)) + "." + base64.RawURLEncoding.EncodeToString([]byte(goodClaims)) + ".", ErrMalformed},
		{"standard base64 alphabet", strings.ReplaceAll(compact(goodHeader, goodClaims, []byte{0xfb, 0xff}), "-", "+"), ErrMalformed},
		{"non-canonical base64 bits", compact(goodHeader, goodClaims, nil) + "AB", ErrMalformed},
		{"JSON serialization", `{"payload":"x","protected":"y","signature":"z"}`, ErrMalformed},
		{"too long", strings.Repeat("a", MaxSize+1), ErrMalformed},
		{"header too long", compact(`{"alg":"EdDSA","kid":"k","typ":"at+jwt","x":"`+strings.Repeat("x", 5000)+`"}`, goodClaims, sig), ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j, err := Parse(tc.tok)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Parse: got %v, want nil", err)
				}
				defer j.Release()
				if j.Claims.KeyID != j.Header.KeyID || j.Header.Type != Type {
					t.Errorf("kid %q / %q, typ %q", j.Claims.KeyID, j.Header.KeyID, j.Header.Type)
				}
				if i := strings.LastIndexByte(tc.tok, '.'); string(j.SigningInput()) != tc.tok[:i] {
					t.Errorf("signing input: got %q, want %q", j.SigningInput(), tc.tok[:i])
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Parse: got %v, want %v", err, tc.want)
			}
			if j != nil {
				t.Errorf("Parse returned a JWS with an error")
			}
			var te *Error
			if !errors.As(err, &te) || te.Reason == "" {
				t.Errorf("error %v: want an *Error with a reason", err)
			}
			if len(tc.tok) > 40 && strings.Contains(err.Error(), tc.tok) {
				t.Errorf("error contains the token")
			}
		})
	}
}

// TestParseReuse: a released JWS handed out again carries nothing of the
// token before it.
func TestParseReuse(t *testing.T) {
	first := compact(goodHeader, strings.Replace(goodClaims, `"org":"acme",`, `"org":"acme","aud":["x"],`, 1), make([]byte, 64))
	j, err := Parse(first)
	if err != nil {
		t.Fatal(err)
	}
	j.Release()
	for range 10 {
		j, err := Parse(compact(`{"alg":"ES256","kid":"k2","typ":"at+jwt"}`, `{"iss":"i","exp":5,"jti":"z"}`, []byte{1}))
		if err != nil {
			t.Fatal(err)
		}
		if j.Claims.Org != "" || j.Claims.Audience != nil || j.Claims.Scopes != nil || j.Claims.Subject != "" || j.Header.Algorithm != AlgES256 || len(j.Signature()) != 1 {
			t.Fatalf("reused JWS: got %+v / %+v", j.Header, j.Claims)
		}
		j.Release()
	}
}

func TestClaimsMarshalRoundTrip(t *testing.T) {
	now := time.Unix(1700000000, 0)
	c := Claims{
		Issuer: "https://auth.example.com", Subject: "token:abc", Audience: []string{"api", "<&>"},
		IssuedAt: now, NotBefore: now, Expiry: now.Add(time.Hour), ID: "abc", Org: "acme",
		TokenType: "administrative", Scopes: []string{"reports:read", "bucket:*"},
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"iss":"https://auth.example.com","sub":"token:abc","aud":["api","\u003c\u0026\u003e"],"iat":1700000000,"nbf":1700000000,"exp":1700003600,"jti":"abc","org":"acme","token_type":"administrative","scope":"reports:read bucket:*"}`
	if string(b) != want {
		t.Errorf("wire form:\n got %s\nwant %s", b, want)
	}
	var back Claims
	if err := ParseClaims(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Issuer != c.Issuer || !back.Expiry.Equal(c.Expiry) || !back.IssuedAt.Equal(c.IssuedAt) || strings.Join(back.Scopes, " ") != "reports:read bucket:*" || strings.Join(back.Audience, ",") != "api,<&>" {
		t.Errorf("read back: got %+v", back)
	}

	noScopes := c
	noScopes.Scopes, noScopes.Audience, noScopes.NotBefore = nil, nil, time.Time{}
	if b, err := json.Marshal(noScopes); err != nil || strings.Contains(string(b), `"aud"`) || strings.Contains(string(b), `"nbf"`) || !strings.Contains(string(b), `"scope":""`) {
		t.Errorf("without scopes, aud, nbf: got %s, %v", b, err)
	}

	for name, bad := range map[string]func(*Claims){
		"no iss":           func(c *Claims) { c.Issuer = "" },
		"no jti":           func(c *Claims) { c.ID = "" },
		"no exp":           func(c *Claims) { c.Expiry = time.Time{} },
		"exp before 1970":  func(c *Claims) { c.Expiry = time.Unix(-5, 0) },
		"scope with space": func(c *Claims) { c.Scopes = []string{"a b"} },
		"empty scope":      func(c *Claims) { c.Scopes = []string{""} },
		"scope with tab":   func(c *Claims) { c.Scopes = []string{"a\tb"} },
	} {
		cc := c
		bad(&cc)
		if b, err := json.Marshal(cc); err == nil {
			t.Errorf("%s: got %s, want an error", name, b)
		}
	}
}

// TestLargestTokenFits: a token with as many and as long scopes as the
// issuer allows, several audiences and an RSA-4096 signature is under
// MaxSize, so every token signet signs can be read back.
func TestLargestTokenFits(t *testing.T) {
	c := Claims{
		Issuer: "https://" + strings.Repeat("a", 200) + ".example.com", Subject: "token:" + strings.Repeat("a", 26),
		Audience: []string{strings.Repeat("x", 200), strings.Repeat("y", 200)},
		IssuedAt: time.Now(), NotBefore: time.Now(), Expiry: time.Now().Add(time.Hour),
		ID: strings.Repeat("a", 26), Org: strings.Repeat("o", 64), TokenType: "administrative",
	}
	for i := range MaxScopes {
		s := fmt.Sprintf("%03d", i)
		c.Scopes = append(c.Scopes, s+strings.Repeat("s", MaxScopeLen-len(s)))
	}
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	kid := strings.Repeat("k", 43)
	tok := compact(`{"alg":"RS256","kid":"`+kid+`","typ":"at+jwt"}`, string(payload), make([]byte, 512))
	if len(tok) > MaxSize {
		t.Fatalf("largest token: %d bytes, MaxSize %d", len(tok), MaxSize)
	}
	j, err := Parse(tok)
	if err != nil {
		t.Fatalf("Parse(largest token): %v", err)
	}
	defer j.Release()
	if len(j.Claims.Scopes) != MaxScopes {
		t.Errorf("scopes: got %d, want %d", len(j.Claims.Scopes), MaxScopes)
	}
}

func TestCovers(t *testing.T) {
	tests := []struct {
		pattern, scope string
		want           bool
	}{
		{"reports:read", "reports:read", true},
		{"reports:read", "reports:write", false},
		{"reports:read", "reports:read:x", false},
		{"*", "anything:at:all", true},
		{"*", "*", true},
		{"bucket:*", "bucket:in.c-main:read", true},
		{"bucket:*", "bucket:", true},
		{"bucket:*", "bucket:x:*", true},
		{"bucket:*", "bucket", false},
		{"bucket:*", "*", false},
		{"bucket:x:*", "bucket:*", false},
		{"reports:read", "reports:*", false},
		{"*", "", false},
		{"", "", false},
		{"", "a", false},
	}
	for _, tc := range tests {
		if got := Covers(tc.pattern, tc.scope); got != tc.want {
			t.Errorf("Covers(%q, %q): got %v, want %v", tc.pattern, tc.scope, got, tc.want)
		}
	}
	c := &Claims{Scopes: []string{"reports:read", "bucket:*"}}
	if !c.HasScopes("reports:read", "bucket:a:write") || c.HasScope("reports:write") || c.HasScope("") {
		t.Errorf("HasScope over %v: wrong", c.Scopes)
	}
	if (&Claims{}).HasScope("x") || (*Claims)(nil).HasScope("x") {
		t.Error("no scopes: got a grant, want none")
	}
}

func TestCheckScope(t *testing.T) {
	for _, ok := range []string{"reports:read", "*", "bucket:*", "a!#$%&'()+,-./:;<=>?@[]^_`{|}~", strings.Repeat("a", MaxScopeLen)} {
		if err := CheckScope(ok); err != nil {
			t.Errorf("CheckScope(%q): got %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "a*b", "**", "*:read", "a b", "a\"b", `a\b`, "é", "a\x00", strings.Repeat("a", MaxScopeLen+1)} {
		var se *ScopeError
		if err := CheckScope(bad); !errors.As(err, &se) || se.Problem == "" {
			t.Errorf("CheckScope(%q): got %v, want a *ScopeError", bad, err)
		}
	}
}

// BenchmarkParse is the parse share of a cold verify.
func BenchmarkParse(b *testing.B) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	in := base64.RawURLEncoding.EncodeToString([]byte(goodHeader)) + "." + base64.RawURLEncoding.EncodeToString([]byte(goodClaims))
	tok := in + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(in)))
	b.ReportAllocs()
	for b.Loop() {
		j, err := Parse(tok)
		if err != nil {
			b.Fatal(err)
		}
		j.Release()
	}
}
