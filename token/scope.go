package token

import (
	"fmt"
	"strings"
)

// Limits on a token's scopes. The issuer refuses requests beyond them, so
// every token it signs stays well under MaxSize.
const (
	// MaxScopes is the most scopes one token carries.
	MaxScopes = 100
	// MaxScopeLen is the longest scope, in bytes.
	MaxScopeLen = 128
)

// Covers reports whether pattern grants scope (itself a scope or a
// pattern). A pattern ending in "*" grants every scope that starts with
// what comes before the star ("bucket:*" grants "bucket:in.c-main:read"
// and the pattern "bucket:x:*"; "*" grants everything); any other pattern
// grants exactly itself. The empty scope is never granted, and the empty
// pattern grants nothing.
func Covers(pattern, scope string) bool {
	if scope == "" || pattern == "" {
		return false
	}
	if n := len(pattern) - 1; pattern[n] == '*' {
		return strings.HasPrefix(scope, pattern[:n])
	}
	return pattern == scope
}

// ScopeError says why a string cannot be a scope or a scope pattern.
type ScopeError struct {
	// Scope is the string refused (clipped).
	Scope string
	// Problem completes the sentence "The scope ... ": e.g. "is empty".
	Problem string
}

// Error implements error.
func (e *ScopeError) Error() string { return fmt.Sprintf("token: scope %q %s", e.Scope, e.Problem) }

// CheckScope returns a *ScopeError when s cannot be a scope or a scope
// pattern: empty, longer than MaxScopeLen, a "*" anywhere but at the end,
// or a byte outside RFC 6749's scope-token (printable ASCII without space,
// '"' and '\').
func CheckScope(s string) error {
	problem := ""
	switch {
	case s == "":
		problem = "is empty"
	case len(s) > MaxScopeLen:
		problem = fmt.Sprintf("is longer than %d characters", MaxScopeLen)
	case strings.IndexByte(s, '*') >= 0 && strings.IndexByte(s, '*') != len(s)-1:
		problem = "has a '*' that does not end it; '*' may only end a scope pattern"
	default:
		for i := 0; i < len(s); i++ {
			// RFC 6749 scope-token: %x21 / %x23-5B / %x5D-7E.
			if b := s[i]; b < 0x21 || b > 0x7e || b == '"' || b == '\\' {
				problem = "may contain only printable ASCII without spaces, quotes or backslashes"
				break
			}
		}
	}
	if problem == "" {
		return nil
	}
	return &ScopeError{Scope: Clip(s), Problem: problem}
}

// HasScope reports whether the token grants scope s: one of its scopes
// Covers s. A token without scopes grants nothing, and the empty scope is
// never granted.
func (c *Claims) HasScope(s string) bool {
	if c == nil {
		return false
	}
	for _, p := range c.Scopes {
		if Covers(p, s) {
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
