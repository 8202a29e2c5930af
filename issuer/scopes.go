package issuer

import (
	"slices"
	"strings"
)

// Limits on requested scopes.
const (
	maxScopes   = 100
	maxScopeLen = 128
)

// scopeError describes why one scope has a bad shape.
func scopeError(s string) *Error {
	switch {
	case s == "":
		return errorf(ECodeInvalid, "A scope must not be empty.")
	case len(s) > maxScopeLen:
		return errorf(ECodeInvalid, "A scope is at most %d characters long.", maxScopeLen)
	case strings.IndexByte(s, '*') >= 0 && strings.IndexByte(s, '*') != len(s)-1:
		return errorf(ECodeInvalid, "Scope %q: '*' may only end a scope pattern.", s)
	}
	for i := 0; i < len(s); i++ {
		// RFC 6749 scope-token: %x21 / %x23-5B / %x5D-7E.
		if b := s[i]; b < 0x21 || b > 0x7e || b == '"' || b == '\\' {
			return errorf(ECodeInvalid, "A scope may contain only printable ASCII without spaces, quotes or backslashes.")
		}
	}
	return nil
}

// CheckScope reports why s cannot be a scope or scope pattern (in a role,
// a preset or a request); nil when it can. The configuration uses it so
// that a bad pattern in the file is refused at start-up, with its line.
func CheckScope(s string) error {
	if err := scopeError(s); err != nil {
		return err
	}
	return nil
}

// normalizeScopes checks every scope's shape and returns them deduplicated
// and sorted. An empty (non-nil) result is a token that grants nothing.
func normalizeScopes(in []string) ([]string, error) {
	if len(in) > maxScopes {
		return nil, errorf(ECodeInvalid, "At most %d scopes may be asked for.", maxScopes)
	}
	out := make([]string, 0, len(in))
	for _, s := range in {
		if err := scopeError(s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// patternCovers reports whether pattern grants scope (itself a scope or a
// pattern): "*" grants everything, "p*" every scope starting with p, any
// other pattern exactly itself.
func patternCovers(pattern, scope string) bool {
	if prefix, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(scope, prefix)
	}
	return pattern == scope
}

// uncovered returns the first of scopes that no pattern in held grants, and
// whether there is one.
func uncovered(held, scopes []string) (string, bool) {
	for _, s := range scopes {
		if !slices.ContainsFunc(held, func(p string) bool { return patternCovers(p, s) }) {
			return s, true
		}
	}
	return "", false
}

// resolveScopes turns a request's scopes or preset into the token's
// scopes, checked against what the holder may grant. Neither given means
// every pattern the holder holds.
func (s *Service) resolveScopes(held []string, scopes *[]string, preset *string) ([]string, error) {
	var want []string
	switch {
	case scopes != nil && preset != nil:
		return nil, errorf(ECodeInvalid, "Give scopes or a preset, not both.")
	case preset != nil:
		ps, ok := s.cfg.Presets[*preset]
		if !ok {
			return nil, errorf(ECodeInvalid, "There is no preset named %q.", truncate(*preset, 64))
		}
		want = ps
	case scopes != nil:
		want = *scopes
	default:
		want = held
	}
	norm, err := normalizeScopes(want)
	if err != nil {
		return nil, err
	}
	if bad, ok := uncovered(held, norm); ok {
		return nil, errorf(ECodeForbidden, "You may not grant the scope %q.", bad)
	}
	return norm, nil
}

// truncate shortens s to at most n bytes on a rune boundary, for echoing
// client input in messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }
