package verifier

import (
	"strings"
	"time"
)

// Claims are the verified claims of a signet access token. The slices are
// shared with the verifier's cache: treat them as read-only.
type Claims struct {
	// Issuer is iss, equal to Config.IssuerURL.
	Issuer string `json:"iss"`
	// Subject is sub: the username for personal tokens, "token:<id>" for
	// administrative ones.
	Subject string `json:"sub"`
	// Audience is aud (empty when the issuer sets none).
	Audience []string `json:"aud,omitempty"`
	// IssuedAt is iat.
	IssuedAt time.Time `json:"iat"`
	// NotBefore is nbf (zero when absent).
	NotBefore time.Time `json:"nbf,omitzero"`
	// Expiry is exp; every signet token has one.
	Expiry time.Time `json:"exp"`
	// ID is jti, the token id.
	ID string `json:"jti"`
	// Org is the organization the token lives in.
	Org string `json:"org"`
	// TokenType is "personal" or "administrative".
	TokenType string `json:"token_type"`
	// Scopes are the space-separated scope claim, split.
	Scopes []string `json:"scopes"`
	// KeyID is the kid of the key that signed the token.
	KeyID string `json:"kid"`
}

// HasScope reports whether the token grants scope s. A token scope ending
// in "*" grants every scope with the prefix before the star ("bucket:*"
// grants "bucket:in.c-main:read"; "*" grants everything), as in the
// contract's roles. A token without scopes grants nothing, and the empty
// scope is never granted.
func (c *Claims) HasScope(s string) bool {
	if c == nil || s == "" {
		return false
	}
	for _, p := range c.Scopes {
		if p == s {
			return true
		}
		if n := len(p) - 1; n >= 0 && p[n] == '*' && strings.HasPrefix(s, p[:n]) {
			return true
		}
	}
	return false
}

// HasScopes reports whether the token grants every scope in scopes.
func (c *Claims) HasScopes(scopes ...string) bool {
	for _, s := range scopes {
		if !c.HasScope(s) {
			return false
		}
	}
	return true
}

// clone returns a shallow copy for handing to a caller.
func (c *Claims) clone() *Claims {
	cp := *c
	return &cp
}
