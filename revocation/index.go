package revocation

import (
	"fmt"
	"time"
)

// TokenRef is what the index needs to know of a token to answer for it:
// its claims jti, org, sub and iat, and the kid of the key that signed it.
type TokenRef struct {
	ID       string
	Org      string
	Subject  string
	IssuedAt time.Time
	KeyID    string
}

// Index is the meaning of the revocation log: it folds entries of every
// kind, forgets those that no longer matter, and answers whether a token
// is revoked. The issuer's feed and the verifier's state both wrap one, so
// each rule below is written once, here:
//
//   - a token entry revokes the token with that id;
//   - a subject cut-off revokes every token of its org/subject issued
//     before NotBefore;
//   - a key withdrawal revokes every token signed by the key;
//
// each for as long as the entry is Live; a token entry with a ValidUntil
// only from that time on (the old value of a token regenerated with a
// grace period). Folding never weakens what the
// index already holds: two entries for the same token, subject or key
// merge into one that covers both for as long as either would (see Apply).
// Adding a kind means a case in Apply and one in Revoked.
//
// An Index is not safe for concurrent use; its owner guards it.
type Index struct {
	tokens   map[string]tokenEntry
	subjects map[subjectKey]cutoff
	keys     map[string]withdrawal
}

// tokenEntry is a folded token entry: revoked from from (zero: at once)
// until expires (zero: never).
type tokenEntry struct{ from, expires time.Time }

type subjectKey struct{ org, subject string }

type cutoff struct{ notBefore, expires time.Time }

type withdrawal struct{ revokedAt, expires time.Time }

// NewIndex returns an empty index.
func NewIndex() *Index {
	return &Index{
		tokens:   map[string]tokenEntry{},
		subjects: map[subjectKey]cutoff{},
		keys:     map[string]withdrawal{},
	}
}

// Apply folds e into the index and reports whether the index now refuses
// anything it did not refuse before. A malformed entry is an error and
// changes nothing.
//
// Merging keeps the strongest protection of the two:
//
//   - token: the earlier start (ValidUntil; zero, at once, is the
//     earliest) and the later expiry;
//   - subject: the later cut-off and the later expiry. A cut-off T2 covers
//     every token an earlier cut-off T1 < T2 covers, so the pair is one
//     cut-off at T2; it must keep refusing until the later of both
//     expiries, or a newer cut-off computed with a shorter maximum token
//     lifetime would end, when it is pruned, the protection the earlier one
//     gave to tokens issued before it;
//   - key: the earlier withdrawal time and the later expiry.
//
// A zero expiry means "never expires" and wins every merge.
func (x *Index) Apply(e Entry) (bool, error) {
	if err := e.Validate(); err != nil {
		return false, err
	}
	switch e.Kind {
	case KindToken:
		old, ok := x.tokens[e.TokenID]
		t := tokenEntry{from: e.ValidUntil, expires: e.ExpiresAt}
		if ok {
			t.expires = laterExpiry(old.expires, t.expires)
			if old.from.IsZero() || (!t.from.IsZero() && old.from.Before(t.from)) {
				t.from = old.from
			}
		}
		x.tokens[e.TokenID] = t
		return !ok || !t.expires.Equal(old.expires) || !t.from.Equal(old.from), nil
	case KindSubject:
		k := subjectKey{e.Org, e.Subject}
		old, ok := x.subjects[k]
		c := cutoff{notBefore: e.NotBefore, expires: e.ExpiresAt}
		if ok {
			if old.notBefore.After(c.notBefore) {
				c.notBefore = old.notBefore
			}
			c.expires = laterExpiry(old.expires, c.expires)
		}
		x.subjects[k] = c
		return !ok || !c.notBefore.Equal(old.notBefore) || !c.expires.Equal(old.expires), nil
	case KindKey:
		old, ok := x.keys[e.KeyID]
		w := withdrawal{revokedAt: e.RevokedAt, expires: e.ExpiresAt}
		if ok {
			if !old.revokedAt.IsZero() && (w.revokedAt.IsZero() || old.revokedAt.Before(w.revokedAt)) {
				w.revokedAt = old.revokedAt
			}
			w.expires = laterExpiry(old.expires, w.expires)
		}
		x.keys[e.KeyID] = w
		return !ok || !w.expires.Equal(old.expires), nil
	}
	return false, fmt.Errorf("revocation: unknown entry kind %q", e.Kind) // Validate let it through
}

// laterExpiry is the later of two expiries, zero (never) being the latest.
func laterExpiry(a, b time.Time) time.Time {
	if a.IsZero() || b.IsZero() {
		return time.Time{}
	}
	if b.After(a) {
		return b
	}
	return a
}

// Revoked reports whether the index revokes t at now, and the (folded)
// entry that does: a key withdrawal first, then a subject cut-off, then
// the token's own entry.
func (x *Index) Revoked(t TokenRef, now time.Time) (Entry, bool) {
	if t.KeyID != "" {
		if w, ok := x.keys[t.KeyID]; ok && Live(w.expires, now) {
			return Entry{Kind: KindKey, KeyID: t.KeyID, RevokedAt: w.revokedAt, ExpiresAt: w.expires}, true
		}
	}
	if t.Subject != "" {
		if c, ok := x.subjects[subjectKey{t.Org, t.Subject}]; ok && Live(c.expires, now) && t.IssuedAt.Before(c.notBefore) {
			return Entry{Kind: KindSubject, Org: t.Org, Subject: t.Subject, NotBefore: c.notBefore, ExpiresAt: c.expires}, true
		}
	}
	if t.ID != "" {
		if e, ok := x.tokens[t.ID]; ok && Live(e.expires, now) && !now.Before(e.from) {
			return Entry{Kind: KindToken, TokenID: t.ID, ValidUntil: e.from, ExpiresAt: e.expires}, true
		}
	}
	return Entry{}, false
}

// Pending returns the earliest time after now at which a token entry the
// index holds takes effect (see Entry.ValidUntil); zero when none is
// waiting. A cache of answers given before then must ask again at it.
func (x *Index) Pending(now time.Time) time.Time {
	var next time.Time
	for _, e := range x.tokens {
		if e.from.After(now) && (next.IsZero() || e.from.Before(next)) {
			next = e.from
		}
	}
	return next
}

// Cutoff returns the cut-off of org/subject in force at now: tokens of the
// subject issued before it are revoked. Zero when there is none.
func (x *Index) Cutoff(org, subject string, now time.Time) time.Time {
	if c, ok := x.subjects[subjectKey{org, subject}]; ok && Live(c.expires, now) {
		return c.notBefore
	}
	return time.Time{}
}

// Withdrawn reports whether kid was ever withdrawn, even when the
// withdrawal no longer matters for tokens: a verifier must not let a
// stale key set put such a key back.
func (x *Index) Withdrawn(kid string) bool {
	_, ok := x.keys[kid]
	return ok
}

// Prune forgets token entries and cut-offs that are no longer Live at now.
// Key withdrawals are few and kept (see Withdrawn).
func (x *Index) Prune(now time.Time) {
	for id, e := range x.tokens {
		if !Live(e.expires, now) {
			delete(x.tokens, id)
		}
	}
	for k, c := range x.subjects {
		if !Live(c.expires, now) {
			delete(x.subjects, k)
		}
	}
}

// Len reports how many token entries, cut-offs and key withdrawals the
// index holds.
func (x *Index) Len() (tokens, subjects, keys int) {
	return len(x.tokens), len(x.subjects), len(x.keys)
}
