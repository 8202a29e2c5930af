package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Claims are the claims of a signet access token. The verifier hands
// them out (verifier.Claims is this type); the issuer mints and reads
// them. Treat the slices of a Claims someone else handed you as read-only.
//
// As JSON (MarshalJSON, UnmarshalJSON) Claims are the wire form: times as
// NumericDate seconds, scopes space-separated in scope, KeyID left out
// (it is a header parameter).
type Claims struct {
	// Issuer is iss, the issuer's public URL.
	Issuer string
	// Subject is sub: the username for personal tokens, "token:<id>" for
	// administrative ones.
	Subject string
	// Audience is aud (empty when the issuer sets none).
	Audience []string
	// IssuedAt is iat (zero when absent).
	IssuedAt time.Time
	// NotBefore is nbf (zero when absent).
	NotBefore time.Time
	// Expiry is exp; every signet token has one.
	Expiry time.Time
	// ID is jti, the token id.
	ID string
	// Org is the organization the token lives in.
	Org string
	// TokenType is "personal" or "administrative".
	TokenType string
	// Scopes are the space-separated scope claim, split.
	Scopes []string
	// KeyID is the header's kid: the key that signed the token. Filled by
	// Parse; not a claim.
	KeyID string
}

// claimNames are the claims signet reads; a member equal to one of them
// but for letter case is refused.
var claimNames = [...]string{"iss", "sub", "aud", "iat", "nbf", "exp", "jti", "org", "token_type", "scope"}

// ParseClaims decodes b, a JWT claims object, into c with the strict
// reader (see the package documentation) and checks what every signet
// token has: iss, exp and a non-empty jti. Members signet does not use
// are skipped whatever their shape, but are held to the same rules.
// Errors are *Error wrapping ErrMalformed.
func ParseClaims(b []byte, c *Claims) error {
	var seen uint16
	s := jsonScanner{b: b}
	err := s.object(func(key []byte) (bool, error) {
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
			if variantOf(key, claimNames[:]) {
				return false, malformed("claim %q differs from a known one only in letter case", Clip(string(key)))
			}
			return false, s.skip(0)
		}
		if err != nil {
			return true, malformed("claim %s has the wrong type", string(key))
		}
		if seen&bit != 0 {
			return true, malformed("claims repeat %s", string(key))
		}
		seen |= bit
		return true, nil
	})
	switch {
	case errors.Is(err, errDuplicate):
		return malformed("claims repeat a member name")
	case err == errJSON:
		return malformed("claims are not a JSON object")
	case err != nil:
		return err
	case seen&(1<<5) == 0:
		return malformed("token has no exp")
	case seen&(1<<0) == 0:
		return malformed("token has no iss")
	case seen&(1<<6) == 0 || c.ID == "":
		return malformed("token has no jti")
	}
	return nil
}

// UnmarshalJSON reads the wire form with ParseClaims, so that even
// json.Unmarshal into a Claims is strict.
func (c *Claims) UnmarshalJSON(b []byte) error {
	var n Claims
	if err := ParseClaims(b, &n); err != nil {
		return err
	}
	*c = n
	return nil
}

// wireClaims is the order and spelling in which signet writes claims.
type wireClaims struct {
	Issuer    string   `json:"iss"`
	Subject   string   `json:"sub"`
	Audience  []string `json:"aud,omitempty"`
	IssuedAt  *int64   `json:"iat,omitempty"`
	NotBefore *int64   `json:"nbf,omitempty"`
	Expiry    int64    `json:"exp"`
	ID        string   `json:"jti"`
	Org       string   `json:"org"`
	TokenType string   `json:"token_type"`
	Scope     string   `json:"scope"`
}

// MarshalJSON writes the wire form: times as whole NumericDate seconds
// (zero IssuedAt and NotBefore left out), scopes space-separated. It
// refuses claims that ParseClaims would refuse or read back differently
// (no iss, jti or exp, a time before 1970 or after year 5138, a scope that
// is empty or holds white space), so nothing is signed that a verifier
// cannot read.
func (c Claims) MarshalJSON() ([]byte, error) {
	switch {
	case c.Issuer == "":
		return nil, errors.New("token: claims without iss")
	case c.ID == "":
		return nil, errors.New("token: claims without jti")
	case c.Expiry.IsZero():
		return nil, errors.New("token: claims without exp (every token expires)")
	}
	date := func(name string, t time.Time) (*int64, error) {
		if t.IsZero() {
			return nil, nil
		}
		n := t.Unix()
		if n < 0 || n > maxNumericDate {
			return nil, fmt.Errorf("token: claim %s %s is out of range", name, t.UTC().Format(time.RFC3339))
		}
		return &n, nil
	}
	w := wireClaims{Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience, ID: c.ID, Org: c.Org, TokenType: c.TokenType}
	var err error
	if w.IssuedAt, err = date("iat", c.IssuedAt); err != nil {
		return nil, err
	}
	if w.NotBefore, err = date("nbf", c.NotBefore); err != nil {
		return nil, err
	}
	exp, err := date("exp", c.Expiry)
	if err != nil {
		return nil, err
	}
	w.Expiry = *exp
	for _, s := range c.Scopes {
		if s == "" || len(strings.Fields(s)) != 1 || strings.TrimSpace(s) != s {
			return nil, fmt.Errorf("token: scope %q cannot be carried in a space-separated claim", Clip(s))
		}
	}
	w.Scope = strings.Join(c.Scopes, " ")
	return json.Marshal(w)
}
