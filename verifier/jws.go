package verifier

import (
	"encoding/base64"
	"strings"
	"sync"
)

// maxTokenSize bounds the work spent on one token; signet's tokens are
// well under 2 KiB even with many scopes.
const maxTokenSize = 16 << 10

// Algorithms signet signs with. Anything else (none, HS*, PS*, ...) is
// refused before any key is looked at.
const (
	algEdDSA = "EdDSA"
	algES256 = "ES256"
	algRS256 = "RS256"
)

var b64 = base64.RawURLEncoding.Strict()

// header is the part of the JOSE header the verifier uses.
type header struct {
	alg, kid, typ string
}

// parsedToken is a token split and decoded, before the signature check.
// input and sig point into buf, which goes back to the pool after use.
type parsedToken struct {
	hdr    header
	claims Claims
	input  []byte // the JWS signing input: base64url(header) "." base64url(payload)
	sig    []byte
	buf    *[]byte
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func (p *parsedToken) release() {
	if p.buf != nil {
		*p.buf = (*p.buf)[:0]
		bufPool.Put(p.buf)
		p.buf = nil
	}
}

// parseToken splits the compact form and decodes header and claims; it
// checks shape only, nothing that needs a key or the clock.
func parseToken(tok string, p *parsedToken) error {
	if len(tok) == 0 {
		return malformed("empty token")
	}
	if len(tok) > maxTokenSize {
		return malformed("token longer than %d bytes", maxTokenSize)
	}
	i := strings.IndexByte(tok, '.')
	if i < 0 {
		return malformed("not a compact JWS (want three dot-separated parts)")
	}
	j := strings.IndexByte(tok[i+1:], '.')
	if j < 0 {
		return malformed("not a compact JWS (want three dot-separated parts)")
	}
	j += i + 1
	if strings.IndexByte(tok[j+1:], '.') >= 0 {
		return malformed("not a compact JWS (more than three parts; JWE is not accepted)")
	}
	h64, c64, s64 := tok[:i], tok[i+1:j], tok[j+1:]
	if len(h64) == 0 || len(c64) == 0 {
		return malformed("empty header or payload")
	}

	need := b64.DecodedLen(len(h64)) + b64.DecodedLen(len(c64)) + b64.DecodedLen(len(s64)) + j
	p.buf = bufPool.Get().(*[]byte)
	if cap(*p.buf) < need {
		*p.buf = make([]byte, 0, need)
	}
	buf := (*p.buf)[:need]

	n, err := b64.Decode(buf, []byte(h64))
	if err != nil {
		return malformed("header is not base64url")
	}
	hdr, rest := buf[:n], buf[n:]
	if err := parseHeader(hdr, &p.hdr); err != nil {
		return err
	}
	n, err = b64.Decode(rest, []byte(c64))
	if err != nil {
		return malformed("payload is not base64url")
	}
	payload, rest := rest[:n], rest[n:]
	if err := parseClaims(payload, &p.claims); err != nil {
		return err
	}
	n, err = b64.Decode(rest, []byte(s64))
	if err != nil {
		return malformed("signature is not base64url")
	}
	p.sig, rest = rest[:n], rest[n:]
	p.input = append(rest[:0], tok[:j]...)
	return nil
}

func parseHeader(b []byte, h *header) error {
	var seen uint8
	s := jsonScanner{b: b}
	err := s.object(func(key []byte) error {
		var err error
		var bit uint8
		switch string(key) {
		case "alg":
			bit = 1
			h.alg, err = s.str()
		case "kid":
			bit = 2
			h.kid, err = s.str()
		case "typ":
			bit = 4
			h.typ, err = s.str()
		case "crit":
			// signet uses no extensions, so every crit entry is unknown
			// and RFC 7515 §4.1.11 says to reject the token.
			return malformed("header has crit, and no extension is understood")
		case "jku", "x5u", "jwk", "x5c":
			return malformed("header carries %s, which is never honoured", string(key))
		default:
			return s.skip(0)
		}
		if err != nil {
			return malformed("header %s is not a string", string(key))
		}
		if seen&bit != 0 {
			return malformed("header repeats %s", string(key))
		}
		seen |= bit
		return nil
	})
	if err == errJSON {
		return malformed("header is not a JSON object")
	}
	if err != nil {
		return err
	}
	if seen&1 == 0 {
		return malformed("header has no alg")
	}
	if seen&4 == 0 || !(strings.EqualFold(h.typ, "at+jwt") || strings.EqualFold(h.typ, "application/at+jwt")) {
		return malformed("header typ %q is not at+jwt", clip(h.typ))
	}
	return nil
}

func parseClaims(b []byte, c *Claims) error {
	var seen uint16
	s := jsonScanner{b: b}
	err := s.object(func(key []byte) error {
		var err error
		var bit uint16
		switch string(key) {
		case "iss":
			bit = 1 << 0
			c.Issuer, err = s.str()
		case "sub":
			bit = 1 << 1
			c.Subject, err = s.str()
		case "aud":
			bit = 1 << 2
			c.Audience, err = s.strOrStrings()
		case "iat":
			bit = 1 << 3
			c.IssuedAt, err = s.numericDate()
		case "nbf":
			bit = 1 << 4
			c.NotBefore, err = s.numericDate()
		case "exp":
			bit = 1 << 5
			c.Expiry, err = s.numericDate()
		case "jti":
			bit = 1 << 6
			c.ID, err = s.str()
		case "org":
			bit = 1 << 7
			c.Org, err = s.str()
		case "token_type":
			bit = 1 << 8
			c.TokenType, err = s.str()
		case "scope":
			bit = 1 << 9
			var scope string
			if scope, err = s.str(); err == nil {
				c.Scopes = strings.Fields(scope)
			}
		default:
			return s.skip(0)
		}
		if err != nil {
			return malformed("claim %s has the wrong type", string(key))
		}
		if seen&bit != 0 {
			return malformed("claims repeat %s", string(key))
		}
		seen |= bit
		return nil
	})
	if err == errJSON {
		return malformed("claims are not a JSON object")
	}
	if err != nil {
		return err
	}
	switch {
	case seen&(1<<5) == 0:
		return malformed("token has no exp")
	case seen&(1<<0) == 0:
		return malformed("token has no iss")
	case seen&(1<<6) == 0 || c.ID == "":
		return malformed("token has no jti")
	}
	return nil
}
