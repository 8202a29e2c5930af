package issuer

import (
	"errors"
	"slices"

	"github.com/signet-auth/signet/token"
)

// scopeError describes why one scope has a bad shape (token.CheckScope,
// the rule every reader of scopes shares).
func scopeError(s string) *Error {
	var se *token.ScopeError
	if errors.As(token.CheckScope(s), &se) {
		return errorf(ECodeInvalid, "The scope %q %s.", truncate(se.Scope, 64), se.Problem)
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
	if len(in) > token.MaxScopes {
		return nil, errorf(ECodeInvalid, "At most %d scopes may be asked for.", token.MaxScopes)
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

// uncovered returns the first of scopes that no pattern in held grants
// (token.Covers: "*" grants everything, "p*" every scope starting with p,
// any other pattern exactly itself), and whether there is one.
func uncovered(held, scopes []string) (string, bool) {
	for _, s := range scopes {
		if !slices.ContainsFunc(held, func(p string) bool { return token.Covers(p, s) }) {
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
