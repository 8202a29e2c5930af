package verifier

import "time"

// Status is what a verifier holds at one moment, for readiness checks and
// metrics of the services that embed it (signet gate's /readyz and
// /metrics).
type Status struct {
	// Keys is how many verification keys of the issuer's key set are loaded.
	// With a custom Config.KeySet, whose keys the verifier cannot count, it
	// is 1 once the verifier has started.
	Keys int
	// ListVersion is the version of the revocation list the verifier holds
	// (the issuer's ETag of the snapshot plus every change synced since).
	ListVersion uint64
	// LastSync is when the revocation list was last synced successfully
	// (by Config.Now).
	LastSync time.Time
	// Staleness is how long ago LastSync was.
	Staleness time.Duration
	// Stale reports whether Staleness exceeds Config.MaxStaleness. With
	// Config.FailOpen, Verify keeps accepting tokens all the same.
	Stale bool
}

// Status reports the loaded keys and the revocation list's version and
// freshness. It is cheap and safe for concurrent use.
func (v *Verifier) Status() Status {
	now := v.cfg.Now()
	last := time.Unix(0, v.lastSync.Load())
	age := now.Sub(last)
	keys := 1
	if v.jwks != nil {
		keys = len(*v.jwks.keys.Load())
	}
	return Status{
		Keys:        keys,
		ListVersion: v.currentVersion(),
		LastSync:    last,
		Staleness:   age,
		Stale:       age > v.cfg.MaxStaleness,
	}
}
