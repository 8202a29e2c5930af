package token

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzParse: Parse never panics; what it accepts has three parts whose
// header and claims are valid JSON with unique member names, and a
// released JWS is safe to hand out again.
func FuzzParse(f *testing.F) {
	f.Add(compact(goodHeader, goodClaims, []byte("sig")))
	f.Add(compact(`{"alg":"ES256","kid":"k","typ":"at+jwt","x":{"a":[1,{"b":null}]}}`, `{"iss":"i","exp":1.5,"jti":"j","aud":"a"}`, nil))
	f.Add(compact(goodHeader, `{"iss":"i","exp":1,"jti":"a","JTI":"b"}`, nil))
	f.Add(`a.b.c`)
	f.Add(`..`)
	f.Fuzz(func(t *testing.T, tok string) {
		j, err := Parse(tok)
		if err != nil {
			var te *Error
			if !errors.As(err, &te) || (!errors.Is(err, ErrMalformed) && !errors.Is(err, ErrAlgorithm)) {
				t.Fatalf("error %v is not a *Error wrapping ErrMalformed or ErrAlgorithm", err)
			}
			return
		}
		defer j.Release()
		parts := strings.Split(tok, ".")
		if len(parts) != 3 {
			t.Fatalf("accepted %d parts", len(parts))
		}
		for _, p := range parts[:2] {
			raw, err := base64.RawURLEncoding.DecodeString(p)
			if err != nil || !json.Valid(raw) {
				t.Fatalf("accepted a part that is not base64url JSON: %q", p)
			}
			if name, dup := firstDuplicate(raw); dup {
				t.Fatalf("accepted duplicate member %q in %s", name, raw)
			}
		}
		if string(j.SigningInput()) != parts[0]+"."+parts[1] {
			t.Fatalf("signing input %q", j.SigningInput())
		}
	})
}

// FuzzParseClaims: ParseClaims never panics, accepts only valid JSON
// without duplicate member names, agrees with encoding/json on the claims
// it reads wherever encoding/json is unambiguous, and what it accepts
// survives MarshalJSON and a second read unchanged.
func FuzzParseClaims(f *testing.F) {
	f.Add([]byte(goodClaims))
	f.Add([]byte(`{"iss":"i","exp":1,"jti":"j","aud":["a"],"x":{"y":[1,null]}}`))
	f.Add([]byte(`{"iss":"i","exp":1,"jti":"a","jti":"b"}`))
	f.Add([]byte(`{"iss":"\u0069","exp":1e3,"jti":"j"} `))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Claims
		if ParseClaims(b, &c) != nil {
			return
		}
		if !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		if name, dup := firstDuplicate(b); dup {
			t.Fatalf("accepted duplicate member %q in %q", name, b)
		}
		// encoding/json, reading the same bytes into a lenient struct,
		// must see the same strings: no case variant or duplicate can
		// have slipped through.
		var lenient struct {
			Iss, Sub, Jti, Org string
			TokenType          string `json:"token_type"`
		}
		if err := json.Unmarshal(b, &lenient); err == nil {
			if lenient.Iss != c.Issuer || lenient.Sub != c.Subject || lenient.Jti != c.ID || lenient.Org != c.Org || lenient.TokenType != c.TokenType {
				t.Fatalf("encoding/json reads %+v, ParseClaims %+v, from %q", lenient, c, b)
			}
		}
		out, err := json.Marshal(c)
		if err != nil {
			return // e.g. scopes or times MarshalJSON will not write
		}
		var again Claims
		if err := ParseClaims(out, &again); err != nil {
			t.Fatalf("wire form %s of accepted claims does not parse: %v", out, err)
		}
		if again.ID != c.ID || again.Issuer != c.Issuer || again.Expiry.Unix() != c.Expiry.Unix() || strings.Join(again.Scopes, " ") != strings.Join(c.Scopes, " ") {
			t.Fatalf("round trip: %+v became %+v", c, again)
		}
	})
}

// firstDuplicate walks JSON b with encoding/json's tokenizer and reports
// a member name repeated within one object.
func firstDuplicate(b []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	type frame struct {
		obj   bool
		names map[string]bool
		key   bool // next string token is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				stack = append(stack, &frame{obj: v == '{', names: map[string]bool{}, key: v == '{'})
			default:
				stack = stack[:len(stack)-1]
				if n := len(stack); n > 0 && stack[n-1].obj {
					stack[n-1].key = true // the value ended; a name comes next
				}
			}
			continue
		case string:
			if top != nil && top.obj && top.key {
				if top.names[v] {
					return v, true
				}
				top.names[v] = true
				top.key = false
				continue
			}
		}
		if top != nil && top.obj {
			top.key = true
		}
	}
}
