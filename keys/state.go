package keys

import (
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"time"
)

// State is where a key stands in its life. It is derived from the key's
// timestamps and the clock, never stored.
type State string

// The states of a key; see the package documentation for their rules.
const (
	// StateNext: published, signing from SignFrom on.
	StateNext State = "next"
	// StateSigning: the key new tokens are signed with.
	StateSigning State = "signing"
	// StateRetired: no longer signing, published until PublishedUntil.
	StateRetired State = "retired"
	// StateExpired: retired past PublishedUntil; unpublished, due for pruning.
	StateExpired State = "expired"
	// StateRevoked: withdrawn; never published.
	StateRevoked State = "revoked"
)

// KeyInfo describes one key without its private material.
type KeyInfo struct {
	// ID is the kid, the RFC 7638 SHA-256 thumbprint of the public key.
	ID string
	// Algorithm is the JWS algorithm the key signs with (EdDSA, ES256, RS256).
	Algorithm string
	// State is the key's state at the time the list was computed.
	State State
	// CreatedAt is when the key was generated.
	CreatedAt time.Time
	// SignFrom is when the key starts (or started) signing.
	SignFrom time.Time
	// RetiredAt is when a later key took over signing; nil while the key
	// signs or has yet to, and for revoked keys.
	RetiredAt *time.Time
	// RevokedAt is when the key was withdrawn; nil unless revoked.
	RevokedAt *time.Time
	// PublishedUntil is when a retired key leaves the JWKS (RetiredAt plus
	// MaxTTL below); nil for keys published without end (next, signing)
	// and for revoked keys, which are never published.
	PublishedUntil *time.Time
	// MaxTTL is the longest lifetime of a token the key may have signed:
	// the larger of the lifetime recorded in its file and the keyring's
	// Config.MaxTTL. A retired key is published, and a revoked key kept,
	// this long after it stopped signing.
	MaxTTL time.Duration
}

// tokenTTL is the longest lifetime of a token e may have signed, given the
// keyring's current maxTTL: the larger of that and the recorded one, so
// that lowering tokens.max_ttl never drops a key whose tokens are valid.
func (e *entry) tokenTTL(maxTTL time.Duration) time.Duration {
	return max(e.maxTTL, maxTTL)
}

// view is an immutable snapshot of the key set with states computed at one
// instant. Readers load it through an atomic pointer without locks.
type view struct {
	at            time.Time
	entries       []*entry // every key on disk, oldest first (entry.before)
	byKID         map[string]*entry
	signing       *entry
	infos         []KeyInfo // newest first
	infoIndex     map[string]int
	prunable      []*entry // expired keys and revoked keys past revoked_at+tokenTTL
	jwks          []byte
	version       string
	publishedKIDs []string
	// changesAt is the earliest instant at which a state computed here
	// changes (a next key starts signing, a retired key expires); zero when
	// nothing changes by the clock alone.
	changesAt time.Time
}

// buildView computes the states of entries at now. prev, when not nil, lends
// its encoded JWKS if the published set is the same, so the bytes and their
// version change only when the set does.
func buildView(entries []*entry, now time.Time, maxTTL time.Duration, prev *view) *view {
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b *entry) int {
		switch {
		case a.before(b):
			return -1
		case b.before(a):
			return 1
		}
		return 0
	})
	v := &view{
		at:        now,
		entries:   sorted,
		byKID:     make(map[string]*entry, len(sorted)),
		infoIndex: make(map[string]int, len(sorted)),
	}
	// live: non-revoked keys whose sign_from has come, oldest first. The
	// last one signs; each earlier one was replaced by its live successor.
	var live []*entry
	for _, e := range sorted {
		v.byKID[e.kid] = e
		if e.revokedAt == nil && !e.signFrom.After(now) {
			live = append(live, e)
		}
	}
	retiredAt := make(map[*entry]time.Time, len(live))
	if n := len(live); n > 0 {
		v.signing = live[n-1]
		for i := 0; i < n-1; i++ {
			retiredAt[live[i]] = live[i+1].signFrom
		}
	}
	soonest := func(t time.Time) {
		if v.changesAt.IsZero() || t.Before(v.changesAt) {
			v.changesAt = t
		}
	}
	var published []*entry
	infos := make([]KeyInfo, 0, len(sorted))
	for _, e := range sorted {
		ttl := e.tokenTTL(maxTTL)
		info := KeyInfo{
			ID:        e.kid,
			Algorithm: string(e.alg),
			CreatedAt: e.createdAt,
			SignFrom:  e.signFrom,
			MaxTTL:    ttl,
		}
		switch {
		case e.revokedAt != nil:
			info.State = StateRevoked
			t := *e.revokedAt
			info.RevokedAt = &t
			if !now.Before(t.Add(ttl)) {
				v.prunable = append(v.prunable, e)
			}
		case e == v.signing:
			info.State = StateSigning
			published = append(published, e)
		case e.signFrom.After(now):
			info.State = StateNext
			published = append(published, e)
			soonest(e.signFrom)
		default:
			r := retiredAt[e]
			until := r.Add(ttl)
			info.RetiredAt, info.PublishedUntil = &r, &until
			if now.Before(until) {
				info.State = StateRetired
				published = append(published, e)
				soonest(until)
			} else {
				info.State = StateExpired
				v.prunable = append(v.prunable, e)
			}
		}
		infos = append(infos, info)
	}
	slices.Reverse(infos)
	for i, info := range infos {
		v.infoIndex[info.ID] = i
	}
	v.infos = infos

	// The JWKS lists the newest key first.
	slices.Reverse(published)
	for _, e := range published {
		v.publishedKIDs = append(v.publishedKIDs, e.kid)
	}
	if prev != nil && slices.Equal(prev.publishedKIDs, v.publishedKIDs) && samePublicKeys(prev, v) {
		v.jwks, v.version = prev.jwks, prev.version
	} else {
		v.jwks = encodeJWKS(published)
		sum := sha256.Sum256(v.jwks)
		v.version = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return v
}

// samePublicKeys reports whether every published kid of b maps to the same
// public key bytes in a (a kid is a thumbprint, so this holds unless a file
// was replaced by a different key under the same name, which loading
// refuses; checked anyway because it is cheap).
func samePublicKeys(a, b *view) bool {
	for _, kid := range b.publishedKIDs {
		ea, eb := a.byKID[kid], b.byKID[kid]
		if ea == nil || eb == nil || string(ea.publicJWK) != string(eb.publicJWK) {
			return false
		}
	}
	return true
}

// encodeJWKS renders the RFC 7517 key set of the given keys.
func encodeJWKS(published []*entry) []byte {
	buf := []byte(`{"keys":[`)
	for i, e := range published {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, e.publicJWK...)
	}
	return append(buf, "]}"...)
}

// info returns a copy of the KeyInfo of kid in v.
func (v *view) info(kid string) (KeyInfo, bool) {
	i, ok := v.infoIndex[kid]
	if !ok {
		return KeyInfo{}, false
	}
	return v.infos[i].clone(), true
}

// list returns a copy of every KeyInfo in v, newest first.
func (v *view) list() []KeyInfo {
	out := make([]KeyInfo, len(v.infos))
	for i, info := range v.infos {
		out[i] = info.clone()
	}
	return out
}

// clone copies i, including the times its pointers refer to, so that
// callers cannot change a shared snapshot.
func (i KeyInfo) clone() KeyInfo {
	dup := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		c := *t
		return &c
	}
	i.RetiredAt, i.RevokedAt, i.PublishedUntil = dup(i.RetiredAt), dup(i.RevokedAt), dup(i.PublishedUntil)
	return i
}

// maxSeq is the highest seq among the keys in v.
func (v *view) maxSeq() uint64 {
	var m uint64
	for _, e := range v.entries {
		m = max(m, e.seq)
	}
	return m
}

// maySign reports whether the key kid may sign tokens from v on: it signs
// or is next in v, or it is not in v at all (a key being generated).
func (v *view) maySign(kid string) bool {
	e := v.byKID[kid]
	return e == nil || e == v.signing || (e.revokedAt == nil && e.signFrom.After(v.at))
}

// newestLive is the non-revoked key with the latest sign_from, signing or
// next; nil when every key is revoked.
func (v *view) newestLive() *entry {
	for i := len(v.entries) - 1; i >= 0; i-- {
		if v.entries[i].revokedAt == nil {
			return v.entries[i]
		}
	}
	return nil
}
