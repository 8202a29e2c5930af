package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/signet-auth/signet/revocation"
)

// subjectKey names a subject inside its organization.
type subjectKey struct{ org, sub string }

// revState is the verifier's copy of the revocation list: the last
// snapshot's filter plus exact knowledge gathered since (deltas, SSE
// events, confirmed lookups). Guarded by mu; every change also bumps
// Verifier.gen so cached tokens are re-checked.
type revState struct {
	mu      sync.RWMutex
	snap    *revocation.Snapshot
	version uint64 // the list version this state includes
	// tokens holds exactly known revoked ids (entries since the snapshot
	// and confirmed filter hits), each with the time it stops mattering.
	tokens map[string]time.Time
	// subjects holds cut-offs: tokens of the subject issued before the
	// time are revoked.
	subjects map[subjectKey]cutoff
	// keys holds withdrawn kids.
	keys map[string]time.Time
	// notRevoked holds ids whose filter hit GET /revocations/{id} denied;
	// valid until the next snapshot replaces the filter.
	notRevoked map[string]struct{}
	pruned     time.Time
}

type cutoff struct{ notBefore, expires time.Time }

func newRevState() revState {
	return revState{
		tokens:     map[string]time.Time{},
		subjects:   map[subjectKey]cutoff{},
		keys:       map[string]time.Time{},
		notRevoked: map[string]struct{}{},
	}
}

// currentVersion returns the list version the verifier holds.
func (v *Verifier) currentVersion() uint64 {
	v.rev.mu.RLock()
	defer v.rev.mu.RUnlock()
	return v.rev.version
}

// installSnapshot replaces the filter and adds the exact lists it carries.
// Exact entries learnt earlier stay (until they expire): they are true
// revocations, and keeping them spares confirmation lookups. With reset the
// version becomes the snapshot's even when lower (the issuer's log was
// replaced, or we were too far behind); otherwise it never goes back, and
// a snapshot older than the installed one is ignored: its filter lacks ids
// that only the installed filter holds (a replica lagging behind, or a
// periodic refresh racing a reset).
func (v *Verifier) installSnapshot(s *revocation.Snapshot, reset bool) {
	var withdrawn []string
	v.rev.mu.Lock()
	if !reset && v.rev.snap != nil && s.Version < v.rev.snap.Version {
		v.rev.mu.Unlock()
		return
	}
	v.rev.snap = s
	if reset || s.Version > v.rev.version {
		v.rev.version = s.Version
	}
	v.rev.notRevoked = map[string]struct{}{}
	for _, c := range s.Subjects {
		v.rev.addSubject(c.Org, c.Subject, c.NotBefore, c.ExpiresAt)
	}
	for _, k := range s.Keys {
		if _, ok := v.rev.keys[k.KeyID]; !ok {
			withdrawn = append(withdrawn, k.KeyID)
		}
		v.rev.keys[k.KeyID] = k.ExpiresAt
	}
	v.rev.mu.Unlock()
	for _, kid := range withdrawn {
		v.dropKey(kid)
	}
	v.gen.Add(1)
}

func (r *revState) addSubject(org, sub string, notBefore, expires time.Time) {
	k := subjectKey{org, sub}
	if c, ok := r.subjects[k]; ok && !c.notBefore.Before(notBefore) {
		return
	}
	r.subjects[k] = cutoff{notBefore, expires}
}

// applyEntries applies exact entries (a delta or SSE events) and raises
// the version to at least version.
func (v *Verifier) applyEntries(entries []revocation.Entry, version uint64) {
	var withdrawn []string
	v.rev.mu.Lock()
	for _, e := range entries {
		if e.Validate() != nil {
			v.log.Warn("verifier: ignoring malformed revocation entry", "issuer", v.issuer, "seq", e.Seq)
			continue
		}
		switch e.Kind {
		case revocation.KindToken:
			v.rev.tokens[e.TokenID] = e.ExpiresAt
			delete(v.rev.notRevoked, e.TokenID)
		case revocation.KindSubject:
			v.rev.addSubject(e.Org, e.Subject, e.NotBefore, e.ExpiresAt)
		case revocation.KindKey:
			v.rev.keys[e.KeyID] = e.ExpiresAt
			withdrawn = append(withdrawn, e.KeyID)
		}
		if e.Seq > v.rev.version {
			v.rev.version = e.Seq
		}
	}
	if version > v.rev.version {
		v.rev.version = version
	}
	v.rev.mu.Unlock()
	for _, kid := range withdrawn {
		v.dropKey(kid)
	}
	// An empty delta (every poll while the stream is down) changes nothing
	// a cached token was checked against.
	if len(entries) > 0 {
		v.gen.Add(1)
	}
}

// prune forgets exact entries that no longer matter.
func (v *Verifier) pruneRevocations(now time.Time) {
	v.rev.mu.Lock()
	defer v.rev.mu.Unlock()
	if now.Sub(v.rev.pruned) < time.Minute {
		return
	}
	v.rev.pruned = now
	for id, exp := range v.rev.tokens {
		if !revocation.Live(exp, now) {
			delete(v.rev.tokens, id)
		}
	}
	for k, c := range v.rev.subjects {
		if !revocation.Live(c.expires, now) {
			delete(v.rev.subjects, k)
		}
	}
	// Withdrawn kids are kept: forgetting one could let a stale JWKS
	// re-install the key.
}

// checkRevoked reports ErrRevoked when the list withdraws the token. A
// filter hit without exact knowledge is confirmed with one
// GET /revocations/{id}; a lookup that fails counts as stale.
func (v *Verifier) checkRevoked(ctx context.Context, c *Claims) error {
	v.rev.mu.RLock()
	_, keyGone := v.rev.keys[c.KeyID]
	cut, hasCut := v.rev.subjects[subjectKey{c.Org, c.Subject}]
	_, exact := v.rev.tokens[c.ID]
	maybe := false
	if !keyGone && !exact {
		if _, denied := v.rev.notRevoked[c.ID]; !denied {
			maybe = v.rev.snap.MayContainToken(c.ID)
		}
	}
	v.rev.mu.RUnlock()
	switch {
	case keyGone:
		return fmt.Errorf("%w: its signing key %q was withdrawn", ErrRevoked, clip(c.KeyID))
	case hasCut && c.IssuedAt.Before(cut.notBefore):
		return fmt.Errorf("%w: every token of its subject issued before %s was revoked", ErrRevoked, cut.notBefore.UTC().Format(time.RFC3339))
	case exact:
		return fmt.Errorf("%w: token %s", ErrRevoked, c.ID)
	case !maybe:
		return nil
	}
	revoked, err := v.confirm(ctx, c.ID)
	switch {
	case err != nil && v.cfg.FailOpen:
		v.log.Warn("verifier: cannot confirm a revocation-list hit; failing open", "issuer", v.issuer, "token_id", c.ID, "err", err)
		return nil
	case err != nil:
		return fmt.Errorf("%w: cannot confirm whether token %s is revoked: %w", ErrStale, c.ID, err)
	case revoked:
		return fmt.Errorf("%w: token %s", ErrRevoked, c.ID)
	}
	return nil
}

// confirmCall is one shared GET /revocations/{id}.
type confirmCall struct {
	done    chan struct{}
	revoked bool
	err     error
}

// confirm asks the issuer whether id is revoked, sharing one request among
// concurrent callers for the same id, and records the answer.
func (v *Verifier) confirm(ctx context.Context, id string) (bool, error) {
	v.confirmMu.Lock()
	c, ok := v.confirming[id]
	if !ok {
		c = &confirmCall{done: make(chan struct{})}
		v.confirming[id] = c
		go v.runConfirm(id, c)
	}
	v.confirmMu.Unlock()
	select {
	case <-c.done:
		return c.revoked, c.err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

func (v *Verifier) runConfirm(id string, c *confirmCall) {
	defer func() {
		v.confirmMu.Lock()
		delete(v.confirming, id)
		v.confirmMu.Unlock()
		close(c.done)
	}()
	// A "not revoked" answer holds for the filter it was asked about: a
	// snapshot installed meanwhile may carry a revocation made since.
	v.rev.mu.RLock()
	asked := v.rev.snap
	v.rev.mu.RUnlock()
	ctx, cancel := context.WithTimeout(v.bg, v.cfg.requestTimeout())
	defer cancel()
	body, status, err := v.get(ctx, v.listURL+"/"+url.PathEscape(id), 64<<10, nil)
	if err != nil {
		c.err = err
		return
	}
	switch status {
	case http.StatusOK:
		var e revocation.Entry
		if err := json.Unmarshal(body, &e); err != nil {
			c.err = fmt.Errorf("decode revocation of %s: %w", id, err)
			return
		}
		if e.Kind != revocation.KindToken || e.TokenID != id {
			c.err = errors.New("the issuer answered for another id")
			return
		}
		c.revoked = true
		// Record the answer without touching the version: the entries
		// between it and e.Seq still have to come through the feed.
		v.rev.mu.Lock()
		v.rev.tokens[id] = e.ExpiresAt
		delete(v.rev.notRevoked, id)
		v.rev.mu.Unlock()
		v.gen.Add(1)
	case http.StatusNotFound:
		v.rev.mu.Lock()
		_, exact := v.rev.tokens[id]
		switch {
		case exact:
			c.revoked = true // an SSE event got here first
		case v.rev.snap == asked:
			v.rev.notRevoked[id] = struct{}{}
		}
		v.rev.mu.Unlock()
	default:
		c.err = fmt.Errorf("GET revocation of %s: status %d", id, status)
	}
}
