package verifier_test

import (
	"testing"
	"time"

	"github.com/signet-auth/signet/verifier"
	"github.com/signet-auth/signet/verifier/verifiertest"
)

func TestStatus(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	clk := newClock()
	v := newVerifier(t, iss, func(c *verifier.Config) {
		c.Now = clk.Now
		c.MaxStaleness = time.Minute
	})
	st := v.Status()
	if st.Keys != 1 {
		t.Errorf("Keys: got %d, want 1", st.Keys)
	}
	if !st.LastSync.Equal(clk.Now()) || st.Staleness != 0 || st.Stale {
		t.Errorf("fresh verifier: got last sync %s, staleness %s, stale %v; want %s, 0, false", st.LastSync, st.Staleness, st.Stale, clk.Now())
	}

	want := iss.Revoke(verifiertest.NewTokenID(t))
	eventually(t, "the list version follows the issuer", func() bool { return v.Status().ListVersion == want })

	// While the issuer is down no sync succeeds, so once the clock has
	// moved past MaxStaleness the list is stale. (A sync already in flight
	// when the issuer went down may still land once: move on again then.)
	iss.SetDown(true)
	defer iss.SetDown(false)
	stale := false
	for range 5 {
		clk.Advance(time.Minute + time.Second)
		st = v.Status()
		if got := clk.Now().Sub(st.LastSync); st.Staleness != got {
			t.Fatalf("Staleness: got %s, want now - LastSync = %s", st.Staleness, got)
		}
		if st.Stale {
			stale = true
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !stale {
		t.Errorf("Stale: got false a minute past the last sync with the issuer down, want true")
	}
}
