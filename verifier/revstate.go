package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/signet-auth/signet/revocation"
)

// revState is the verifier's copy of the revocation list: the last
// snapshot's filter, and a revocation.Index of the exact knowledge gathered
// with it and since (the snapshot's cut-offs and withdrawn keys, deltas,
// SSE events, confirmed lookups). What an entry means is the Index's
// business; revState adds only what a verifier needs on top: the bloom
// filter, the ids a lookup denied, and the position on the issuer's log.
// Guarded by mu; every change also bumps Verifier.gen so cached tokens are
// re-checked.
type revState struct {
	mu   sync.RWMutex
	snap *revocation.Snapshot
	// cursor is the position on the issuer's log this state includes.
	cursor revocation.Cursor
	index  *revocation.Index
	// notRevoked holds ids whose filter hit GET /revocations/{id} denied;
	// valid until the next snapshot replaces the filter.
	notRevoked map[string]struct{}
	pruned     time.Time
	// pendingAt is the earliest time a revocation the index holds takes
	// effect later (revocation.Entry.ValidUntil); zero when none waits.
	// Cached answers are re-checked then (duePending).
	pendingAt time.Time
}

// notePendingLocked records e's start when it takes effect after now; the
// caller holds rev.mu.
func (r *revState) notePendingLocked(e revocation.Entry, now time.Time) {
	if e.ValidUntil.After(now) && (r.pendingAt.IsZero() || e.ValidUntil.Before(r.pendingAt)) {
		r.pendingAt = e.ValidUntil
	}
}

// duePending bumps the generation, so that cached tokens are checked
// again, once a revocation that was waiting takes effect.
func (v *Verifier) duePending(now time.Time) {
	v.rev.mu.Lock()
	due := !v.rev.pendingAt.IsZero() && !now.Before(v.rev.pendingAt)
	if due {
		v.rev.pendingAt = v.rev.index.Pending(now)
	}
	v.rev.mu.Unlock()
	if due {
		v.gen.Add(1)
	}
}

func newRevState() revState {
	return revState{index: revocation.NewIndex(), notRevoked: map[string]struct{}{}}
}

// currentCursor returns the position on the issuer's log the verifier holds.
func (v *Verifier) currentCursor() revocation.Cursor {
	v.rev.mu.RLock()
	defer v.rev.mu.RUnlock()
	return v.rev.cursor
}

// currentVersion returns the list version the verifier holds.
func (v *Verifier) currentVersion() uint64 { return v.currentCursor().Version }

// installSnapshot replaces the filter and folds the exact lists it carries
// into the index. Exact entries learnt earlier stay (until they expire):
// they are true revocations, even when the issuer's log was since replaced
// or restored and lost them, and keeping them spares confirmation lookups.
//
// With reset, or a snapshot of another log (epoch), the cursor becomes the
// snapshot's even when lower (the issuer's log was replaced or restored, or
// we were too far behind). Otherwise it never goes back, and a snapshot
// older than the installed one is ignored: its filter lacks ids that only
// the installed filter holds (a replica lagging behind, or a periodic
// refresh racing a reset).
func (v *Verifier) installSnapshot(s *revocation.Snapshot, reset bool) {
	var withdrawn []string
	v.rev.mu.Lock()
	cur := v.rev.cursor
	reset = reset || v.rev.snap == nil || s.Epoch != cur.Epoch
	if !reset && s.Version < v.rev.snap.Version {
		v.rev.mu.Unlock()
		return
	}
	v.rev.snap = s
	if reset || s.Version > cur.Version || (s.Version == cur.Version && s.Tag != cur.Tag) {
		v.rev.cursor = s.Cursor()
	}
	v.rev.notRevoked = map[string]struct{}{}
	now := v.cfg.Now()
	for _, e := range s.Exact() {
		v.rev.notePendingLocked(e, now)
		if e.Kind == revocation.KindKey && !v.rev.index.Withdrawn(e.KeyID) {
			withdrawn = append(withdrawn, e.KeyID)
		}
		if _, err := v.rev.index.Apply(e); err != nil {
			v.log.Warn("verifier: ignoring malformed snapshot entry", "issuer", v.issuer, "kind", string(e.Kind))
		}
	}
	v.rev.mu.Unlock()
	for _, kid := range withdrawn {
		v.dropKey(kid)
	}
	v.gen.Add(1)
}

// applyEntries folds exact entries (a delta or SSE events) into the index
// and moves the cursor to to, the position after them, unless the
// verifier already holds a later version.
func (v *Verifier) applyEntries(entries []revocation.Entry, to revocation.Cursor) {
	var withdrawn []string
	changed := false
	now := v.cfg.Now()
	v.rev.mu.Lock()
	for _, e := range entries {
		v.rev.notePendingLocked(e, now)
		newKey := e.Kind == revocation.KindKey && !v.rev.index.Withdrawn(e.KeyID)
		ch, err := v.rev.index.Apply(e)
		if err != nil {
			v.log.Warn("verifier: ignoring malformed revocation entry", "issuer", v.issuer, "seq", e.Seq)
			continue
		}
		changed = changed || ch
		if newKey {
			withdrawn = append(withdrawn, e.KeyID)
		}
		if e.Kind == revocation.KindToken {
			delete(v.rev.notRevoked, e.TokenID)
		}
	}
	if to.Version >= v.rev.cursor.Version {
		v.rev.cursor = to
	}
	v.rev.mu.Unlock()
	for _, kid := range withdrawn {
		v.dropKey(kid)
	}
	// An empty delta (every poll while the stream is down) changes nothing
	// a cached token was checked against.
	if changed {
		v.gen.Add(1)
	}
}

// pruneRevocations forgets exact entries that no longer matter.
func (v *Verifier) pruneRevocations(now time.Time) {
	v.rev.mu.Lock()
	defer v.rev.mu.Unlock()
	if now.Sub(v.rev.pruned) < time.Minute {
		return
	}
	v.rev.pruned = now
	v.rev.index.Prune(now)
}

// withdrawnLocked reports whether kid was ever withdrawn; the caller holds
// rev.mu.
func (v *Verifier) withdrawnLocked(kid string) bool { return v.rev.index.Withdrawn(kid) }

// checkRevoked reports ErrRevoked when the list withdraws the token. A
// filter hit without exact knowledge is confirmed with one
// GET /revocations/{id}; a lookup that fails counts as stale.
func (v *Verifier) checkRevoked(ctx context.Context, c *Claims) error {
	ref := revocation.TokenRef{ID: c.ID, Org: c.Org, Subject: c.Subject, IssuedAt: c.IssuedAt, KeyID: c.KeyID}
	now := v.cfg.Now()
	v.rev.mu.RLock()
	hit, exact := v.rev.index.Revoked(ref, now)
	maybe := false
	if !exact {
		if _, denied := v.rev.notRevoked[c.ID]; !denied {
			maybe = v.rev.snap.MayContainToken(c.ID)
		}
	}
	v.rev.mu.RUnlock()
	switch {
	case exact && hit.Kind == revocation.KindKey:
		return fmt.Errorf("%w: its signing key %q was withdrawn", ErrRevoked, clip(c.KeyID))
	case exact && hit.Kind == revocation.KindSubject:
		return fmt.Errorf("%w: every token of its subject issued before %s was revoked", ErrRevoked, hit.NotBefore.UTC().Format(time.RFC3339))
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

// entryVar is the variable of the metadata's revocation_entry_uri.
const entryVar = "{token_id}"

// entryURLOf is the URL of the exact answer for id.
func (v *Verifier) entryURLOf(id string) string {
	return strings.Replace(v.entryURL, entryVar, url.PathEscape(id), 1)
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
	body, status, err := v.get(ctx, v.entryURLOf(id), 64<<10, nil)
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
		// Record the answer without touching the cursor: the entries
		// between it and e.Seq still have to come through the feed.
		now := v.cfg.Now()
		v.rev.mu.Lock()
		_, err := v.rev.index.Apply(revocation.Entry{Kind: revocation.KindToken, TokenID: id, ValidUntil: e.ValidUntil, ExpiresAt: e.ExpiresAt})
		if err == nil {
			v.rev.notePendingLocked(e, now)
			_, c.revoked = v.rev.index.Revoked(revocation.TokenRef{ID: id}, now)
		}
		delete(v.rev.notRevoked, id)
		v.rev.mu.Unlock()
		if err != nil {
			c.err = fmt.Errorf("record revocation of %s: %w", id, err)
			return
		}
		v.gen.Add(1)
	case http.StatusNotFound:
		v.rev.mu.Lock()
		_, exact := v.rev.index.Revoked(revocation.TokenRef{ID: id}, v.cfg.Now())
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
