package issuer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/signet-auth/signet/store"
)

// revocationIndex follows the revocation log for what a token record
// alone does not say: withdrawn signing keys (signet keys revoke), which
// Keys.Verify still accepts, so a token signed by one is reported revoked;
// and subject cut-offs (user removal, password change with revocation),
// which decide whether a token issued now would already count as revoked
// by verifiers. It reads only the entries it has not seen.
type revocationIndex struct {
	mu    sync.Mutex
	since int64
	kids  map[string]time.Time // kid → when the entry stops mattering
	// subjects holds the latest cut-off of each org/subject.
	subjects map[subjectKey]subjectCutoff
}

type subjectKey struct{ org, subject string }

type subjectCutoff struct{ notBefore, expires time.Time }

// catchUp reads the entries committed since the last read and returns
// with mu held; the caller unlocks. The first read (the whole live log)
// holds the lock, so that requests arriving together after a start do not
// each read it; later reads, usually empty, do not, so lookups do not queue
// behind one another: applying an entry twice changes nothing.
func (x *revocationIndex) catchUp(ctx context.Context, st store.Store, now time.Time) error {
	x.mu.Lock()
	since, loaded := x.since, x.kids != nil
	if loaded {
		x.mu.Unlock()
	}
	entries, err := st.ListRevocations(ctx, since, now)
	if loaded {
		x.mu.Lock()
	}
	if err != nil {
		return fmt.Errorf("read the revocation log: %w", err)
	}
	if x.kids == nil {
		x.kids = map[string]time.Time{}
		x.subjects = map[subjectKey]subjectCutoff{}
	}
	for _, e := range entries {
		x.since = max(x.since, e.Seq)
		switch e.Kind {
		case store.RevokeKey:
			x.kids[e.Value] = e.ExpiresAt
		case store.RevokeSubject:
			k := subjectKey{e.Org, e.Value}
			if c, ok := x.subjects[k]; !ok || e.NotBefore.After(c.notBefore) {
				x.subjects[k] = subjectCutoff{notBefore: e.NotBefore, expires: e.ExpiresAt}
			}
		}
	}
	if len(entries) > 0 {
		for k, c := range x.subjects {
			if !c.expires.After(now) {
				delete(x.subjects, k)
			}
		}
	}
	return nil
}

// revokedKeys returns, after catching up with the log, a test for
// withdrawn kids at now (for a list of tokens).
func (x *revocationIndex) revokedKeys(ctx context.Context, st store.Store, now time.Time) (func(kid string) bool, error) {
	err := x.catchUp(ctx, st, now)
	defer x.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("key revocations: %w", err)
	}
	kids := make(map[string]bool, len(x.kids))
	for kid := range x.kids {
		kids[kid] = x.keyRevokedLocked(kid, now)
	}
	return func(kid string) bool { return kids[kid] }, nil
}

// revoked reports whether kid was withdrawn, after catching up with the log.
func (x *revocationIndex) revoked(ctx context.Context, st store.Store, kid string, now time.Time) (bool, error) {
	err := x.catchUp(ctx, st, now)
	defer x.mu.Unlock()
	if err != nil {
		return false, fmt.Errorf("key revocations: %w", err)
	}
	return x.keyRevokedLocked(kid, now), nil
}

func (x *revocationIndex) keyRevokedLocked(kid string, now time.Time) bool {
	exp, ok := x.kids[kid]
	return ok && (exp.IsZero() || exp.After(now))
}

// cutoff returns the latest live cut-off of org/subject (zero when none),
// after catching up with the log.
func (x *revocationIndex) cutoff(ctx context.Context, st store.Store, org, subject string, now time.Time) (time.Time, error) {
	err := x.catchUp(ctx, st, now)
	defer x.mu.Unlock()
	if err != nil {
		return time.Time{}, fmt.Errorf("subject cut-offs: %w", err)
	}
	if c, ok := x.subjects[subjectKey{org, subject}]; ok && c.expires.After(now) {
		return c.notBefore, nil
	}
	return time.Time{}, nil
}
