package keys

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const year = 8760 * time.Hour

// withMaxTTL sets Config.MaxTTL for openTest.
func withMaxTTL(d time.Duration) func(*Config) {
	return func(c *Config) { c.MaxTTL = d }
}

// recordedMaxTTL returns the max_ttl_seconds of kid's file as a duration,
// and whether the field is present.
func recordedMaxTTL(tb testing.TB, dir, kid string) (time.Duration, bool) {
	tb.Helper()
	v, ok := readKeyFile(tb, dir, kid)["max_ttl_seconds"]
	if !ok {
		return 0, false
	}
	secs, isNum := v.(float64)
	if !isNum {
		tb.Fatalf("max_ttl_seconds of %s = %v (%T), want a number", kid, v, v)
	}
	return time.Duration(secs) * time.Second, true
}

// wantRecorded fails unless kid's file records want.
func wantRecorded(tb testing.TB, dir, kid string, want time.Duration) {
	tb.Helper()
	got, ok := recordedMaxTTL(tb, dir, kid)
	if !ok || got != want {
		tb.Errorf("max_ttl_seconds of %s = %s (present %v), want %s", kid, got, ok, want)
	}
}

// stripMaxTTL rewrites kid's file as the format was before
// max_ttl_seconds existed.
func stripMaxTTL(tb testing.TB, dir, kid string) {
	tb.Helper()
	m := readKeyFile(tb, dir, kid)
	delete(m, "max_ttl_seconds")
	writeKeyFileJSON(tb, dir, kid+fileSuffix, m, 0o600)
}

// TestLoweredMaxTTLKeepsKeysOfLongTokens: a key that signed under a year
// of MaxTTL stays published (retired) or on disk (revoked) for a year after
// it stopped signing, though the keyring now runs with 24h.
func TestLoweredMaxTTLKeepsKeysOfLongTokens(t *testing.T) {
	cases := []struct {
		name string
		// stop ends old's signing on k and returns when it stopped.
		stop  func(t *testing.T, k *Keyring, clock *testClock, old string) time.Time
		state State // old's state while kept
		// published: old is in the JWKS while kept.
		published bool
	}{
		{"retired", func(t *testing.T, k *Keyring, clock *testClock, old string) time.Time {
			successor, err := k.Rotate(false)
			if err != nil {
				t.Fatalf("Rotate: %v", err)
			}
			clock.Advance(successor.SignFrom.Sub(clock.Now()))
			return successor.SignFrom
		}, StateRetired, true},
		{"revoked", func(t *testing.T, k *Keyring, clock *testClock, old string) time.Time {
			info, err := k.Revoke(old)
			if err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			return *info.RevokedAt
		}, StateRevoked, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			clock := newTestClock()
			long := openTest(t, dir, clock, withMaxTTL(year))
			token, old := mustSign(t, long)
			wantRecorded(t, dir, old, year)

			k := openTest(t, dir, clock, withMaxTTL(24*time.Hour))
			wantRecorded(t, dir, old, year) // never lowered
			stopped := tc.stop(t, k, clock, old)
			for _, info := range k.List() {
				if info.ID != old {
					wantRecorded(t, dir, info.ID, 24*time.Hour)
				}
			}
			until := stopped.Add(year)

			steps := []struct {
				at   time.Time
				kept bool
			}{
				{stopped.Add(24 * time.Hour), true}, // where the current MaxTTL alone would end it
				{stopped.Add(48 * time.Hour), true},
				{until.Add(-time.Second), true},
				{until, false},
			}
			for _, s := range steps {
				clock.Advance(s.at.Sub(clock.Now()))
				if err := k.maintain(); err != nil {
					t.Fatalf("maintain at %s: %v", s.at, err)
				}
				onDisk := slices.Contains(keyFiles(t, dir), old+fileSuffix)
				if onDisk != s.kept {
					t.Errorf("at stop+%s: old key on disk = %v, want %v", s.at.Sub(stopped), onDisk, s.kept)
				}
				inJWKS := slices.Contains(jwksKIDs(t, k), old)
				if want := s.kept && tc.published; inJWKS != want {
					t.Errorf("at stop+%s: old key in JWKS = %v, want %v", s.at.Sub(stopped), inJWKS, want)
				}
				_, _, err := verify(k, token)
				if s.kept {
					if err != nil {
						t.Errorf("at stop+%s: Verify(old token) = %v, want nil", s.at.Sub(stopped), err)
					}
					info := infoOf(t, k, old)
					if info.State != tc.state || info.MaxTTL != year {
						t.Errorf("at stop+%s: old key state %s MaxTTL %s, want %s and %s", s.at.Sub(stopped), info.State, info.MaxTTL, tc.state, year)
					}
					if tc.published && (info.PublishedUntil == nil || !info.PublishedUntil.Equal(until)) {
						t.Errorf("PublishedUntil = %v, want %s", info.PublishedUntil, until)
					}
				} else if !errors.Is(err, ErrUnknownKey) {
					t.Errorf("at stop+%s: Verify(old token) after prune = %v, want ErrUnknownKey", s.at.Sub(stopped), err)
				}
			}
		})
	}

	t.Run("another replica with the lower MaxTTL agrees", func(t *testing.T) {
		dir := t.TempDir()
		clock := newTestClock()
		old := signingKey(t, openTest(t, dir, clock, withMaxTTL(year)))
		k := openTest(t, dir, clock, withMaxTTL(24*time.Hour))
		successor, err := k.Rotate(true)
		if err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		clock.Advance(30 * 24 * time.Hour)
		replica := openTest(t, dir, clock, withMaxTTL(24*time.Hour))
		if got, want := jwksKIDs(t, replica), []string{successor.ID, old}; !slices.Equal(got, want) {
			t.Errorf("replica JWKS kids = %v, want %v", got, want)
		}
	})
}

// TestMaxTTLRecordedForKeysThatMaySign: a keyring with a larger MaxTTL
// raises the record of every key that may sign under it, and only those.
func TestMaxTTLRecordedForKeysThatMaySign(t *testing.T) {
	const small, large = 24 * time.Hour, 48 * time.Hour
	cases := []struct {
		name string
		// run sets up dir with keyrings of the small MaxTTL and the large
		// one and returns the records each key file must hold.
		run func(t *testing.T, dir string, clock *testClock) map[string]time.Duration
	}{
		{"signing key raised at Open", func(t *testing.T, dir string, clock *testClock) map[string]time.Duration {
			kid := signingKey(t, openTest(t, dir, clock, withMaxTTL(small)))
			wantRecorded(t, dir, kid, small)
			k := openTest(t, dir, clock, withMaxTTL(large))
			if info := infoOf(t, k, kid); info.MaxTTL != large {
				t.Errorf("MaxTTL of %s = %s, want %s", kid, info.MaxTTL, large)
			}
			return map[string]time.Duration{kid: large}
		}},
		{"never lowered by a smaller MaxTTL", func(t *testing.T, dir string, clock *testClock) map[string]time.Duration {
			kid := signingKey(t, openTest(t, dir, clock, withMaxTTL(small)))
			openTest(t, dir, clock, withMaxTTL(large))
			k := openTest(t, dir, clock, withMaxTTL(small))
			next, err := k.Rotate(false) // a change under the lock
			if err != nil {
				t.Fatalf("Rotate: %v", err)
			}
			if info := infoOf(t, k, kid); info.MaxTTL != large {
				t.Errorf("MaxTTL of %s = %s, want %s", kid, info.MaxTTL, large)
			}
			return map[string]time.Duration{kid: large, next.ID: small}
		}},
		{"next key raised at Open, retired key left", func(t *testing.T, dir string, clock *testClock) map[string]time.Duration {
			k := openTest(t, dir, clock, withMaxTTL(small))
			retired := signingKey(t, k)
			signing, err := k.Rotate(true)
			if err != nil {
				t.Fatalf("Rotate: %v", err)
			}
			next, err := k.Rotate(false)
			if err != nil {
				t.Fatalf("Rotate: %v", err)
			}
			big := openTest(t, dir, clock, withMaxTTL(large))
			// The retired key signs no more, but the current MaxTTL
			// still applies to it.
			if info := infoOf(t, big, retired); info.MaxTTL != large {
				t.Errorf("MaxTTL of retired %s = %s, want %s", retired, info.MaxTTL, large)
			}
			return map[string]time.Duration{retired: small, signing.ID: large, next.ID: large}
		}},
		{"key rotated by another keyring raised by Run", func(t *testing.T, dir string, clock *testClock) map[string]time.Duration {
			big := openTest(t, dir, clock, withMaxTTL(large))
			first := signingKey(t, big)
			info, err := openTest(t, dir, clock, withMaxTTL(small)).Rotate(true)
			if err != nil {
				t.Fatalf("Rotate: %v", err)
			}
			wantRecorded(t, dir, info.ID, small)
			if err := big.maintain(); err != nil {
				t.Fatalf("maintain: %v", err)
			}
			if got := signingKey(t, big); got != info.ID {
				t.Errorf("signing kid = %s, want %s", got, info.ID)
			}
			return map[string]time.Duration{first: large, info.ID: large}
		}},
		{"retired key raised when a revocation hands it signing", func(t *testing.T, dir string, clock *testClock) map[string]time.Duration {
			k := openTest(t, dir, clock, withMaxTTL(small))
			retired := signingKey(t, k)
			signing, err := k.Rotate(true)
			if err != nil {
				t.Fatalf("Rotate: %v", err)
			}
			big := openTest(t, dir, clock, withMaxTTL(large))
			wantRecorded(t, dir, retired, small)
			if _, err := big.Revoke(signing.ID); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			if got := signingKey(t, big); got != retired {
				t.Errorf("signing kid after revocation = %s, want %s", got, retired)
			}
			return map[string]time.Duration{retired: large, signing.ID: large}
		}},
		{"key generated by a revocation records the MaxTTL", func(t *testing.T, dir string, clock *testClock) map[string]time.Duration {
			k := openTest(t, dir, clock, withMaxTTL(large))
			old := signingKey(t, k)
			if _, err := k.Revoke(old); err != nil {
				t.Fatalf("Revoke: %v", err)
			}
			fresh := signingKey(t, k)
			return map[string]time.Duration{old: large, fresh: large}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			want := tc.run(t, dir, newTestClock())
			if files := keyFiles(t, dir); len(files) != len(want) {
				t.Errorf("key files = %v, want %d", files, len(want))
			}
			for kid, ttl := range want {
				wantRecorded(t, dir, kid, ttl)
			}
		})
	}
}

// TestOldFormatKeyFileWithoutMaxTTL: a file written before max_ttl_seconds
// existed uses the current MaxTTL, as before, and gets the field on the
// next change; one that signs gets it at Open.
func TestOldFormatKeyFileWithoutMaxTTL(t *testing.T) {
	t.Run("retired key", func(t *testing.T) {
		dir := t.TempDir()
		clock := newTestClock()
		k := openTest(t, dir, clock) // MaxTTL 1h
		token, old := mustSign(t, k)
		successor, err := k.Rotate(true)
		if err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		stripMaxTTL(t, dir, old)

		k = openTest(t, dir, clock)
		if _, ok := recordedMaxTTL(t, dir, old); ok {
			t.Errorf("Open wrote max_ttl_seconds into a retired old-format file; want it left to the next change")
		}
		until := successor.SignFrom.Add(time.Hour)
		info := infoOf(t, k, old)
		if info.State != StateRetired || info.MaxTTL != time.Hour || info.PublishedUntil == nil || !info.PublishedUntil.Equal(until) {
			t.Errorf("old key = %s MaxTTL %s until %v, want retired, 1h, %s", info.State, info.MaxTTL, info.PublishedUntil, until)
		}

		clock.Advance(30 * time.Minute)
		if _, err := k.Rotate(false); err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		wantRecorded(t, dir, old, time.Hour)

		clock.Advance(until.Add(-time.Second).Sub(clock.Now()))
		if err := k.maintain(); err != nil {
			t.Fatalf("maintain: %v", err)
		}
		if !slices.Contains(jwksKIDs(t, k), old) {
			t.Errorf("old key unpublished before %s", until)
		}
		clock.Advance(time.Second)
		if err := k.maintain(); err != nil {
			t.Fatalf("maintain: %v", err)
		}
		if slices.Contains(keyFiles(t, dir), old+fileSuffix) {
			t.Errorf("old key kept on disk after %s", until)
		}
		if _, _, err := verify(k, token); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("Verify after prune = %v, want ErrUnknownKey", err)
		}
	})

	t.Run("revoked key", func(t *testing.T) {
		dir := t.TempDir()
		clock := newTestClock()
		k := openTest(t, dir, clock)
		old := signingKey(t, k)
		if _, err := k.Revoke(old); err != nil {
			t.Fatalf("Revoke: %v", err)
		}
		stripMaxTTL(t, dir, old)
		k = openTest(t, dir, clock, withMaxTTL(30*time.Minute))
		clock.Advance(30 * time.Minute)
		if err := k.maintain(); err != nil {
			t.Fatalf("maintain: %v", err)
		}
		if slices.Contains(keyFiles(t, dir), old+fileSuffix) {
			t.Errorf("old-format revoked key kept past revoked_at + current MaxTTL 30m")
		}
	})

	t.Run("signing key gets the field at Open", func(t *testing.T) {
		dir := t.TempDir()
		clock := newTestClock()
		kid := signingKey(t, openTest(t, dir, clock))
		stripMaxTTL(t, dir, kid)
		openTest(t, dir, clock)
		wantRecorded(t, dir, kid, time.Hour)
	})
}

func TestMaxTTLFieldChecked(t *testing.T) {
	cases := []struct {
		name  string
		value any
	}{
		{"negative", -1},
		{"beyond a duration", float64(maxTTLSecondsLimit) * 2},
		{"not a number", "8760h"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			clock := newTestClock()
			kid := signingKey(t, openTest(t, dir, clock))
			m := readKeyFile(t, dir, kid)
			m["max_ttl_seconds"] = tc.value
			writeKeyFileJSON(t, dir, kid+fileSuffix, m, 0o600)
			_, err := Open(Config{Dir: dir, Now: clock.Now})
			if !errors.Is(err, ErrCorruptKey) || !strings.Contains(err.Error(), filepath.Join(dir, kid+fileSuffix)) {
				t.Errorf("Open = %v, want ErrCorruptKey naming the file", err)
			}
		})
	}

	t.Run("largest value loads", func(t *testing.T) {
		dir := t.TempDir()
		clock := newTestClock()
		kid := signingKey(t, openTest(t, dir, clock))
		m := readKeyFile(t, dir, kid)
		m["max_ttl_seconds"] = maxTTLSecondsLimit
		writeKeyFileJSON(t, dir, kid+fileSuffix, m, 0o600)
		k := openTest(t, dir, clock)
		if got, want := infoOf(t, k, kid).MaxTTL, time.Duration(maxTTLSecondsLimit)*time.Second; got != want {
			t.Errorf("MaxTTL = %s, want %s", got, want)
		}
	})
}

func TestRecordedTTLRoundsUp(t *testing.T) {
	cases := []struct {
		in, want time.Duration
	}{
		{time.Hour, time.Hour},
		{1500 * time.Millisecond, 2 * time.Second},
		{time.Nanosecond, time.Second},
		{time.Duration(1<<63 - 1), time.Duration(maxTTLSecondsLimit) * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.in.String(), func(t *testing.T) {
			if got := recordedTTL(tc.in); got != tc.want {
				t.Errorf("recordedTTL(%s) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}

	t.Run("fractional MaxTTL is never under-recorded", func(t *testing.T) {
		dir := t.TempDir()
		kid := signingKey(t, openTest(t, dir, newTestClock(), withMaxTTL(1500*time.Millisecond)))
		wantRecorded(t, dir, kid, 2*time.Second)
	})
}
