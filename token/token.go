// Package token is the one definition of a signet access token on the
// wire: a JWS in compact serialization (RFC 7515) carrying JWT claims
// (RFC 7519) in the shape of RFC 9068. It owns
//
//   - the claims (Claims) and how they are written (Claims.MarshalJSON)
//     and read (ParseClaims, Claims.UnmarshalJSON);
//   - the header policy: alg one of EdDSA, ES256, RS256 (never none or
//     HMAC), a kid, typ at+jwt, and no jku, x5u, jwk, x5c, b64 or crit,
//     since signet honours none of them;
//   - the one strict compact parser, Parse, and its size limit, MaxSize;
//   - the scope-pattern rule (Covers, CheckScope): a trailing "*" matches
//     every scope with that prefix, "*" alone matches everything.
//
// The issuer's keys package signs and checks tokens with it, the issuer
// reads the tokens it is shown with it, and the verifier package checks
// tokens offline with it, so the same signed bytes mean the same thing to
// all of them. The JSON reader behind it is exact where encoding/json is
// lenient: member names match case-sensitively, a member name that appears
// twice in any object is refused, a member whose name differs from one
// signet uses only in letter case is refused, and nothing may follow the
// object.
//
// The package verifies no signature: Parse takes a token apart and checks
// its shape; whoever holds the keys (keys.Keyring, the verifier's KeySet)
// checks JWS.SigningInput against JWS.Signature.
package token

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// MaxSize is the longest token, in bytes, that Parse reads. The largest
// token the issuer signs (MaxScopes scopes of MaxScopeLen bytes, an
// RSA-4096 signature) is about 19 KiB; anything longer is not signet's.
const MaxSize = 32 << 10

// maxHeaderSize bounds the decoded JOSE header; signet's are under 150
// bytes.
const maxHeaderSize = 4 << 10

// MaxKeyIDLen is the longest kid accepted; signet's are RFC 7638
// thumbprints of 43 characters.
const MaxKeyIDLen = 128

// The algorithms signet signs with. Each key has exactly one, and a token
// may name only its key's.
const (
	// AlgEdDSA is Ed25519 (RFC 8037).
	AlgEdDSA = "EdDSA"
	// AlgES256 is ECDSA on P-256 with SHA-256, signature r||s (RFC 7518).
	AlgES256 = "ES256"
	// AlgRS256 is RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518).
	AlgRS256 = "RS256"
)

// Type is the typ header of every signet token (RFC 9068 §2.1). Parse
// also accepts "application/at+jwt", in any letter case (RFC 7515 §4.1.9).
const Type = "at+jwt"

// Errors of Parse and ParseClaims, wrapped in an *Error carrying the
// reason; test them with errors.Is.
var (
	// ErrMalformed: not a token signet could have issued (encoding, JSON,
	// header, claims).
	ErrMalformed = errors.New("token: malformed")
	// ErrAlgorithm: the header's alg is not one signet signs with.
	ErrAlgorithm = errors.New("token: algorithm not accepted")
)

// Error says why a token was refused. Reason is a phrase for a person,
// without the package prefix, so that callers can put it under their own
// error (as the verifier and keys packages do); it never contains the
// token, and attacker-chosen text in it is clipped.
type Error struct {
	// Err is ErrMalformed or ErrAlgorithm.
	Err error
	// Reason says what is wrong, e.g. "claims repeat jti".
	Reason string
}

// Error implements error.
func (e *Error) Error() string { return e.Err.Error() + ": " + e.Reason }

// Unwrap makes errors.Is(err, ErrMalformed) (or ErrAlgorithm) hold.
func (e *Error) Unwrap() error { return e.Err }

func malformed(format string, args ...any) error {
	return &Error{Err: ErrMalformed, Reason: fmt.Sprintf(format, args...)}
}

// Clip shortens attacker-controlled text before it goes into an error.
func Clip(s string) string {
	const n = 40
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// Header is the part of the JOSE header signet uses, after the policy
// checks of Parse.
type Header struct {
	// Algorithm is alg: AlgEdDSA, AlgES256 or AlgRS256.
	Algorithm string
	// KeyID is kid, at most MaxKeyIDLen bytes, never empty.
	KeyID string
	// Type is typ, normalized to Type.
	Type string
}

// JWS is a token taken apart by Parse: header and claims decoded and
// checked, the signature not verified yet. SigningInput and Signature
// point into memory that Release hands back for reuse.
type JWS struct {
	// Header is the checked JOSE header.
	Header Header
	// Claims are the decoded claims, KeyID filled from the header. They
	// are not to be trusted before the signature is verified.
	Claims Claims

	input []byte // base64url(header) "." base64url(payload)
	sig   []byte
	buf   []byte
}

// SigningInput is what the signature covers: the first two parts of the
// compact form, as sent.
func (j *JWS) SigningInput() []byte { return j.input }

// Signature is the decoded signature.
func (j *JWS) Signature() []byte { return j.sig }

// jwsPool recycles JWS values and their decoding buffers: Parse is on the
// verifier's hot path, and a fresh buffer per token is a good share of
// its allocations. A pool holds no state a caller can observe.
var jwsPool = sync.Pool{New: func() any { return &JWS{buf: make([]byte, 0, 2048)} }}

// Release hands j's memory back for reuse; j must not be used after.
// Calling it is optional (without it the garbage collector frees j).
func (j *JWS) Release() {
	if j == nil {
		return
	}
	buf := j.buf[:0]
	*j = JWS{buf: buf}
	jwsPool.Put(j)
}

var b64 = base64.RawURLEncoding.Strict()

// Parse takes tok, a compact JWS, apart and checks it against signet's
// rules without any key or clock: at most MaxSize bytes, three parts of
// unpadded canonical base64url, a header that passes the policy (see the
// package documentation), and claims that ParseClaims accepts. Errors are
// *Error wrapping ErrMalformed or ErrAlgorithm.
func Parse(tok string) (*JWS, error) {
	if len(tok) == 0 {
		return nil, malformed("empty token")
	}
	if len(tok) > MaxSize {
		return nil, malformed("token longer than %d bytes", MaxSize)
	}
	i := strings.IndexByte(tok, '.')
	if i < 0 {
		return nil, malformed("not a compact JWS (want three dot-separated parts)")
	}
	j := strings.IndexByte(tok[i+1:], '.')
	if j < 0 {
		return nil, malformed("not a compact JWS (want three dot-separated parts)")
	}
	j += i + 1
	if strings.IndexByte(tok[j+1:], '.') >= 0 {
		return nil, malformed("not a compact JWS (more than three parts; JWE is not accepted)")
	}
	h64, c64, s64 := tok[:i], tok[i+1:j], tok[j+1:]
	if len(h64) == 0 || len(c64) == 0 {
		return nil, malformed("empty header or payload")
	}
	if b64.DecodedLen(len(h64)) > maxHeaderSize {
		return nil, malformed("header longer than %d bytes", maxHeaderSize)
	}

	p := jwsPool.Get().(*JWS)
	need := b64.DecodedLen(len(h64)) + b64.DecodedLen(len(c64)) + b64.DecodedLen(len(s64)) + j
	if cap(p.buf) < need {
		p.buf = make([]byte, 0, need)
	}
	if err := p.parse(tok, h64, c64, s64, j, p.buf[:need]); err != nil {
		p.Release()
		return nil, err
	}
	return p, nil
}

func (p *JWS) parse(tok, h64, c64, s64 string, j int, buf []byte) error {
	n, err := b64.Decode(buf, []byte(h64))
	if err != nil {
		return malformed("header is not base64url")
	}
	hdr, rest := buf[:n], buf[n:]
	if err := parseHeader(hdr, &p.Header); err != nil {
		return err
	}
	n, err = b64.Decode(rest, []byte(c64))
	if err != nil {
		return malformed("payload is not base64url")
	}
	payload, rest := rest[:n], rest[n:]
	if err := ParseClaims(payload, &p.Claims); err != nil {
		return err
	}
	p.Claims.KeyID = p.Header.KeyID
	n, err = b64.Decode(rest, []byte(s64))
	if err != nil {
		return malformed("signature is not base64url")
	}
	p.sig, rest = rest[:n], rest[n:]
	p.input = append(rest[:0], tok[:j]...)
	return nil
}

// headerNames are the header parameters Parse knows; a name equal to one
// of them but for letter case is refused, so that no reader anywhere that
// folds case can take it for the real one.
var headerNames = [...]string{"alg", "kid", "typ", "crit", "jku", "x5u", "jwk", "x5c", "b64"}

func parseHeader(b []byte, h *Header) error {
	var seen uint8
	var alg []byte
	s := jsonScanner{b: b}
	err := s.object(func(key []byte) (bool, error) {
		var err error
		var bit uint8
		switch string(key) {
		case "alg":
			bit = 1
			alg, err = s.bytesValue()
		case "kid":
			bit = 2
			h.KeyID, err = s.str()
		case "typ":
			bit = 4
			var typ []byte
			if typ, err = s.bytesValue(); err == nil {
				if !bytes.EqualFold(typ, []byte(Type)) && !bytes.EqualFold(typ, []byte("application/"+Type)) {
					return true, malformed("header typ %q is not %s", Clip(string(typ)), Type)
				}
				h.Type = Type
			}
		case "crit":
			// signet uses no extensions, so every crit entry is unknown
			// and RFC 7515 §4.1.11 says to reject the token.
			return true, malformed("header has crit, and no extension is understood")
		case "jku", "x5u", "jwk", "x5c", "b64":
			return true, malformed("header carries %s, which is never honoured", string(key))
		default:
			if variantOf(key, headerNames[:]) {
				return false, malformed("header member %q differs from a known one only in letter case", Clip(string(key)))
			}
			return false, s.skip(0)
		}
		if err != nil {
			return true, malformed("header %s is not a string", string(key))
		}
		if seen&bit != 0 {
			return true, malformed("header repeats %s", string(key))
		}
		seen |= bit
		return true, nil
	})
	switch {
	case errors.Is(err, errDuplicate):
		return malformed("header repeats a member")
	case err == errJSON:
		return malformed("header is not a JSON object")
	case err != nil:
		return err
	case seen&1 == 0:
		return malformed("header has no alg")
	}
	switch string(alg) { // interned: no allocation for the usual names
	case AlgEdDSA:
		h.Algorithm = AlgEdDSA
	case AlgES256:
		h.Algorithm = AlgES256
	case AlgRS256:
		h.Algorithm = AlgRS256
	default:
		return &Error{Err: ErrAlgorithm, Reason: fmt.Sprintf("alg %q is not one of EdDSA, ES256, RS256", Clip(string(alg)))}
	}
	switch {
	case seen&2 == 0 || h.KeyID == "":
		return malformed("header has no kid")
	case len(h.KeyID) > MaxKeyIDLen:
		return malformed("header kid is longer than %d bytes", MaxKeyIDLen)
	case seen&4 == 0:
		return malformed("header has no typ (want %s)", Type)
	}
	return nil
}

// variantOf reports whether name equals one of known when letter case is
// ignored the way encoding/json ignores it (ASCII case, and any rune r as
// unicode.ToUpper(unicode.ToLower(r)), so "ſub" and "ıss" are variants of
// "sub" and "iss"): exactly the names a lenient reader would take for a
// claim signet reads. Exact matches were handled by the caller.
func variantOf(name []byte, known []string) bool {
	if len(name) > 3*len("token_type") { // no variant of a known name is longer
		return false
	}
	var buf [3 * len("token_type")]byte
	folded := foldName(buf[:0], name)
	for _, k := range known {
		if string(folded) == k { // known names are lower-case ASCII
			return true
		}
	}
	return false
}

// foldName appends name folded to lower case as encoding/json folds it.
func foldName(out, name []byte) []byte {
	for i := 0; i < len(name); {
		if c := name[i]; c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(name[i:])
		out = utf8.AppendRune(out, unicode.ToLower(unicode.ToUpper(unicode.ToLower(r))))
		i += n
	}
	return out
}
