package issuer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/signet-auth/signet/store"
)

// keyRevocations follows the revocation log for withdrawn signing keys
// (signet keys revoke), which Keys.Verify still accepts: a token signed by
// one is reported revoked. It reads only the entries it has not seen.
type keyRevocations struct {
	mu    sync.Mutex
	since int64
	kids  map[string]time.Time // kid → when the entry stops mattering
}

// revoked reports whether kid was withdrawn, after catching up with the log.
func (k *keyRevocations) revoked(ctx context.Context, st store.Store, kid string, now time.Time) (bool, error) {
	k.mu.Lock()
	since := k.since
	k.mu.Unlock()
	entries, err := st.ListRevocations(ctx, since, now)
	if err != nil {
		return false, fmt.Errorf("read key revocations: %w", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.kids == nil {
		k.kids = map[string]time.Time{}
	}
	for _, e := range entries {
		if e.Seq > k.since {
			k.since = e.Seq
		}
		if e.Kind == store.RevokeKey {
			k.kids[e.Value] = e.ExpiresAt
		}
	}
	exp, ok := k.kids[kid]
	return ok && (exp.IsZero() || exp.After(now)), nil
}
