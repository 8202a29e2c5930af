package keys

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Bounds on what Verify reads from a token before touching a key.
const (
	maxTokenSize  = 64 << 10
	maxHeaderSize = 4 << 10
	maxKIDLength  = 128
)

// forbiddenHeaders are JOSE header parameters Verify never honours: keys or
// key locations carried by the token itself, critical extensions, and the
// unencoded-payload option.
var forbiddenHeaders = []string{"jku", "jwk", "x5u", "x5c", "crit", "b64"}

// Verify checks that token, a compact JWS, was signed by one of the keys on
// disk, whatever their state (signing, next, retired, expired or revoked:
// the issuer uses it to tell whether a token is its own), and returns the
// payload and the kid. Only the key's own algorithm is accepted; alg
// "none", HMAC, jku/x5u/x5c/jwk headers and any crit are refused. The
// caller checks claims and revocation (a revoked kid among them).
//
// Errors wrap ErrMalformed, ErrUnknownKey or ErrBadSignature.
func (k *Keyring) Verify(token []byte) (payload []byte, kid string, err error) {
	if len(token) == 0 || len(token) > maxTokenSize {
		return nil, "", fmt.Errorf("%w: token is empty or longer than %d bytes", ErrMalformed, maxTokenSize)
	}
	if bytes.Count(token, []byte{'.'}) != 2 {
		return nil, "", fmt.Errorf("%w: not a compact JWS (want three dot-separated parts)", ErrMalformed)
	}
	parts := bytes.SplitN(token, []byte{'.'}, 3)
	rawHeader, rawPayload, rawSig := parts[0], parts[1], parts[2]
	if len(rawHeader) == 0 || len(rawPayload) == 0 || len(rawSig) == 0 {
		return nil, "", fmt.Errorf("%w: empty JWS part", ErrMalformed)
	}
	if base64.RawURLEncoding.DecodedLen(len(rawHeader)) > maxHeaderSize {
		return nil, "", fmt.Errorf("%w: header longer than %d bytes", ErrMalformed, maxHeaderSize)
	}
	headerJSON, err := decodeSegment(rawHeader)
	if err != nil {
		return nil, "", fmt.Errorf("%w: header: %w", ErrMalformed, err)
	}
	hdr, err := parseHeader(headerJSON)
	if err != nil {
		return nil, "", err
	}

	v := k.current()
	e := v.byKID[hdr.kid]
	if e == nil && k.mayReloadForUnknownKID() {
		// Another replica may have rotated since the last reload.
		if _, err := k.Reload(); err != nil {
			k.log.Warn("keys: reload for unknown kid failed", "err", err)
		}
		e = k.current().byKID[hdr.kid]
	}
	if e == nil {
		return nil, "", fmt.Errorf("%w: kid %q", ErrUnknownKey, hdr.kid)
	}
	if hdr.alg != string(e.alg) {
		return nil, "", fmt.Errorf("%w: alg %q is not the algorithm %s of key %s", ErrBadSignature, hdr.alg, e.alg, e.kid)
	}
	sig, err := decodeSegment(rawSig)
	if err != nil {
		return nil, "", fmt.Errorf("%w: signature: %w", ErrMalformed, err)
	}
	verifier, err := jws.NewVerifier(e.alg)
	if err != nil {
		return nil, "", fmt.Errorf("keys: verify with %s: %w", e.kid, err)
	}
	signingInput := token[:len(rawHeader)+1+len(rawPayload)]
	if err := verifier.Verify(signingInput, sig, e.public); err != nil {
		return nil, "", fmt.Errorf("%w: key %s", ErrBadSignature, e.kid)
	}
	payload, err = decodeSegment(rawPayload)
	if err != nil {
		return nil, "", fmt.Errorf("%w: payload: %w", ErrMalformed, err)
	}
	return payload, e.kid, nil
}

// header is what Verify needs from a JOSE header.
type header struct {
	alg, kid string
}

// parseHeader checks a JOSE header against signet's rules.
func parseHeader(b []byte) (header, error) {
	var h header
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil || fields == nil {
		return h, fmt.Errorf("%w: header is not a JSON object", ErrMalformed)
	}
	for _, name := range forbiddenHeaders {
		if _, ok := fields[name]; ok {
			return h, fmt.Errorf("%w: header parameter %q is not accepted", ErrMalformed, name)
		}
	}
	str := func(name string) (string, error) {
		raw, ok := fields[name]
		if !ok {
			return "", fmt.Errorf("%w: header has no %q", ErrMalformed, name)
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("%w: header %q is not a string", ErrMalformed, name)
		}
		return s, nil
	}
	var err error
	if h.alg, err = str("alg"); err != nil {
		return h, err
	}
	if h.alg == "" || len(h.alg) > 16 {
		return h, fmt.Errorf("%w: alg is empty or too long", ErrMalformed)
	}
	if h.kid, err = str("kid"); err != nil {
		return h, err
	}
	if h.kid == "" || len(h.kid) > maxKIDLength {
		return h, fmt.Errorf("%w: kid is empty or longer than %d bytes", ErrMalformed, maxKIDLength)
	}
	typ, err := str("typ")
	if err != nil {
		return h, err
	}
	if t := strings.ToLower(typ); t != TokenType && t != "application/"+TokenType {
		return h, fmt.Errorf("%w: typ %q, want %q", ErrMalformed, typ, TokenType)
	}
	return h, nil
}

// decodeSegment decodes one unpadded base64url part of a compact JWS,
// refusing padding and non-canonical trailing bits.
func decodeSegment(b []byte) ([]byte, error) {
	out := make([]byte, base64.RawURLEncoding.DecodedLen(len(b)))
	n, err := base64.RawURLEncoding.Strict().Decode(out, b)
	if err != nil {
		return nil, fmt.Errorf("invalid base64url: %w", err)
	}
	return out[:n], nil
}

// mayReloadForUnknownKID reports whether enough time has passed since the
// last reload to try one for an unknown kid.
func (k *Keyring) mayReloadForUnknownKID() bool {
	now := k.cfg.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	return now.Sub(k.lastReload) >= unknownKidReloadInterval
}

// Thumbprint returns the RFC 7638 SHA-256 thumbprint of k's public key,
// base64url without padding: the kid signet gives every key.
func Thumbprint(k jwk.Key) (string, error) {
	if k == nil {
		return "", fmt.Errorf("keys: thumbprint: nil key")
	}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("keys: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp), nil
}
