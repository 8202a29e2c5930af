package revocation_test

import (
	"testing"
	"time"

	"github.com/signet-auth/signet/revocation"
)

// FuzzDecode feeds arbitrary bytes to Decode: it must never panic, and
// whatever it accepts must re-encode to the same bytes.
func FuzzDecode(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	seeds := []*revocation.Snapshot{
		revocation.NewSnapshot(0, now, nil, 0),
		revocation.NewSnapshot(5, now, sampleEntries(), 0),
		revocation.NewSnapshotWithFilter(3, now, []string{"a", "b"}, 1, 1),
		revocation.NewSnapshot(9, now, []revocation.Entry{
			{Kind: revocation.KindSubject, Org: "", Subject: "x", NotBefore: now, ExpiresAt: now.Add(time.Hour)},
			{Kind: revocation.KindKey, KeyID: "k", ExpiresAt: now.Add(time.Hour)},
			{Kind: revocation.KindToken, TokenID: "p", ValidUntil: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour)},
		}, 0.5),
	}
	for _, s := range seeds {
		b, err := s.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("SGRL"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := revocation.Decode(b)
		if err != nil {
			if s != nil {
				t.Fatalf("Decode returned a snapshot with error %v", err)
			}
			return
		}
		again, err := s.MarshalBinary()
		if err != nil {
			t.Fatalf("re-encode an accepted snapshot: %v", err)
		}
		if string(again) != string(b) {
			t.Fatalf("re-encoded %d bytes differ from the %d accepted", len(again), len(b))
		}
		_ = s.MayContainToken("probe")
	})
}
