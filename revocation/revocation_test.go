package revocation_test

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"testing"
	"time"

	"github.com/signet-auth/signet/revocation"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 123, time.UTC)

func sampleEntries() []revocation.Entry {
	return []revocation.Entry{
		{Seq: 1, Kind: revocation.KindToken, TokenID: "tok-a", ExpiresAt: t0.Add(time.Hour)},
		// Past its expiry by more than the grace: off the list.
		{Seq: 2, Kind: revocation.KindToken, TokenID: "tok-expired", ExpiresAt: t0.Add(-revocation.ExpiryGrace - time.Second)},
		{Seq: 3, Kind: revocation.KindSubject, Org: "acme", Subject: "bob", NotBefore: t0.Add(-time.Minute), ExpiresAt: t0.Add(24 * time.Hour)},
		{Seq: 4, Kind: revocation.KindKey, KeyID: "kid-1", RevokedAt: t0, ExpiresAt: t0.Add(48 * time.Hour)},
		{Seq: 5, Kind: revocation.KindToken, TokenID: "tok-b", ExpiresAt: t0.Add(time.Hour)},
	}
}

func encode(tb testing.TB, s *revocation.Snapshot) []byte {
	tb.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		tb.Fatalf("MarshalBinary: %v", err)
	}
	return b
}

func TestSnapshotRoundTrip(t *testing.T) {
	tests := []struct {
		name    string
		entries []revocation.Entry
		tokens  uint64
	}{
		{"empty", nil, 0},
		{"mixed kinds, one expired", sampleEntries(), 2},
		{"zero times (entries that never expire)", []revocation.Entry{
			{Seq: 1, Kind: revocation.KindSubject, Org: "acme", Subject: "bob", NotBefore: t0},
			{Seq: 2, Kind: revocation.KindKey, KeyID: "kid-1"},
		}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := revocation.NewSnapshot(7, t0, tc.entries, 0)
			s.Epoch, s.Tag = "5be0c2a4d1f08e37", "9f2c41d07ab35e10"
			b := encode(t, s)
			got, err := revocation.Decode(b)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got.Cursor() != s.Cursor() {
				t.Errorf("cursor: got %+v, want %+v", got.Cursor(), s.Cursor())
			}
			if got.Version != 7 || !got.BuiltAt.Equal(t0) || got.TokenCount != tc.tokens {
				t.Errorf("header: got version %d built %s count %d, want 7 %s %d", got.Version, got.BuiltAt, got.TokenCount, t0, tc.tokens)
			}
			if fmt.Sprint(got.Subjects) != fmt.Sprint(s.Subjects) || fmt.Sprint(got.Keys) != fmt.Sprint(s.Keys) {
				t.Errorf("lists: got %v %v, want %v %v", got.Subjects, got.Keys, s.Subjects, s.Keys)
			}
			for _, e := range tc.entries {
				if e.Kind != revocation.KindToken {
					continue
				}
				want := revocation.Live(e.ExpiresAt, t0)
				if got.MayContainToken(e.TokenID) != want && want {
					t.Errorf("MayContainToken(%s): got false, want true", e.TokenID)
				}
			}
			if again := encode(t, got); string(again) != string(b) {
				t.Error("re-encoding a decoded snapshot changed its bytes")
			}
		})
	}
}

// TestSnapshotKeepsEntriesThroughGrace: a verifier accepts a token until exp
// plus its leeway, so a revoked token's entry stays on the list until
// ExpiresAt+ExpiryGrace, not just until ExpiresAt.
func TestSnapshotKeepsEntriesThroughGrace(t *testing.T) {
	entries := []revocation.Entry{
		{Seq: 1, Kind: revocation.KindToken, TokenID: "just-expired", ExpiresAt: t0.Add(-time.Second)},
		{Seq: 2, Kind: revocation.KindToken, TokenID: "end-of-grace", ExpiresAt: t0.Add(-revocation.ExpiryGrace)},
		{Seq: 3, Kind: revocation.KindSubject, Org: "acme", Subject: "bob", NotBefore: t0.Add(-time.Hour), ExpiresAt: t0.Add(-time.Minute)},
	}
	s := revocation.NewSnapshot(3, t0, entries, 0)
	if !s.MayContainToken("just-expired") {
		t.Error("an entry whose token expired a second ago left the filter; verifiers with leeway still accept that token")
	}
	if s.MayContainToken("end-of-grace") {
		t.Error("an entry past ExpiresAt+ExpiryGrace is still in the filter")
	}
	if len(s.Subjects) != 1 {
		t.Errorf("subject cut-off within the grace: got %d, want 1", len(s.Subjects))
	}
	for _, tc := range []struct {
		expires time.Time
		want    bool
	}{
		{time.Time{}, true},
		{t0.Add(time.Hour), true},
		{t0.Add(-revocation.ExpiryGrace + time.Nanosecond), true},
		{t0.Add(-revocation.ExpiryGrace), false},
	} {
		if got := revocation.Live(tc.expires, t0); got != tc.want {
			t.Errorf("Live(%s, %s): got %v, want %v", tc.expires, t0, got, tc.want)
		}
	}
}

func TestSnapshotFilterAndLists(t *testing.T) {
	s := revocation.NewSnapshot(5, t0, sampleEntries(), 0)
	if s.MayContainToken("tok-expired") {
		t.Error("expired token id is in the filter")
	}
	if !s.MayContainToken("tok-a") || !s.MayContainToken("tok-b") {
		t.Error("revoked token ids missing from the filter")
	}
	if len(s.Subjects) != 1 || s.Subjects[0].Subject != "bob" || len(s.Keys) != 1 || s.Keys[0].KeyID != "kid-1" {
		t.Errorf("lists: got %+v %+v, want bob and kid-1", s.Subjects, s.Keys)
	}
	var nilSnap *revocation.Snapshot
	if nilSnap.MayContainToken("x") {
		t.Error("nil snapshot: got true, want false")
	}
}

func TestDecodeRejects(t *testing.T) {
	snap := revocation.NewSnapshot(5, t0, sampleEntries(), 0)
	snap.Epoch, snap.Tag = "e1", "t1"
	good := encode(t, snap)
	resum := func(b []byte) []byte {
		body := b[:len(b)-4]
		return binary.BigEndian.AppendUint32(append([]byte(nil), body...), crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	}
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, revocation.ErrFormat},
		{"short", good[:20], revocation.ErrFormat},
		{"bad magic", mutate(func(b []byte) []byte { b[0] = 'X'; return resum(b) }), revocation.ErrFormat},
		{"future format", mutate(func(b []byte) []byte { b[5] = 3; return resum(b) }), revocation.ErrFormat},
		{"format 1 (no epoch)", mutate(func(b []byte) []byte { b[5] = 1; return resum(b) }), revocation.ErrFormat},
		{"epoch not an id", mutate(func(b []byte) []byte {
			w := binary.BigEndian.Uint32(b[44:])
			b[48+8*int(w)+2] = '.'
			return resum(b)
		}), revocation.ErrFormat},
		{"unknown flags", mutate(func(b []byte) []byte { b[7] = 1; return resum(b) }), revocation.ErrFormat},
		{"flipped filter bit", mutate(func(b []byte) []byte { b[50] ^= 1; return b }), revocation.ErrChecksum},
		{"zero hashes", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[40:], 0); return resum(b) }), revocation.ErrFormat},
		{"word count mismatch", mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b[44:], 1<<25); return resum(b) }), revocation.ErrFormat},
		{"huge subject count", mutate(func(b []byte) []byte {
			w := binary.BigEndian.Uint32(b[44:])
			binary.BigEndian.PutUint32(b[48+8*int(w)+8:], 1<<31)
			return resum(b)
		}), revocation.ErrFormat},
		{"trailing bytes", mutate(func(b []byte) []byte { return resum(append(b[:len(b)-4], 0, 0, 0, 0, 0)) }), revocation.ErrFormat},
		{"truncated lists", mutate(func(b []byte) []byte { return resum(append(b[:len(b)-10], 0, 0, 0, 0)) }), revocation.ErrFormat},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := revocation.Decode(tc.in)
			if !errors.Is(err, tc.want) || s != nil {
				t.Errorf("Decode: got %v, %v; want nil, %v", s, err, tc.want)
			}
		})
	}
}

func TestMarshalRejectsLongStrings(t *testing.T) {
	s := revocation.NewSnapshot(1, t0, []revocation.Entry{{Kind: revocation.KindKey, KeyID: strings.Repeat("k", 2000), ExpiresAt: t0.Add(time.Hour)}}, 0)
	if _, err := s.MarshalBinary(); err == nil {
		t.Error("MarshalBinary with a 2000-byte kid: got nil error, want one")
	}
}

func TestEntryValidate(t *testing.T) {
	tests := []struct {
		name string
		e    revocation.Entry
		ok   bool
	}{
		{"token", revocation.Entry{Kind: revocation.KindToken, TokenID: "x"}, true},
		{"token without id", revocation.Entry{Kind: revocation.KindToken}, false},
		{"subject", revocation.Entry{Kind: revocation.KindSubject, Subject: "bob", NotBefore: t0}, true},
		{"subject without cut-off", revocation.Entry{Kind: revocation.KindSubject, Subject: "bob"}, false},
		{"key", revocation.Entry{Kind: revocation.KindKey, KeyID: "k"}, true},
		{"key without kid", revocation.Entry{Kind: revocation.KindKey}, false},
		{"unknown kind", revocation.Entry{Kind: "user", TokenID: "x"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.e.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate: got %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestEntryJSON(t *testing.T) {
	e := revocation.Entry{Seq: 9, Kind: revocation.KindToken, TokenID: "tok", RevokedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"seq":9,"kind":"token","token_id":"tok","revoked_at":"2026-11-23T10:00:00.000000123Z","expires_at":"2026-11-23T11:00:00.000000123Z"}`
	if string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
}

// TestSnapshotSize1M checks the size target without timing:
// 1,000,000 revoked ids at the default false-positive rate take at most 4
// bytes each.
func TestSnapshotSize1M(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a 1M-entry snapshot")
	}
	const n = 1_000_000
	entries := make([]revocation.Entry, n)
	for i := range entries {
		entries[i] = revocation.Entry{Kind: revocation.KindToken, TokenID: fmt.Sprintf("id-%d", i), ExpiresAt: t0.Add(time.Hour)}
	}
	b := encode(t, revocation.NewSnapshot(n, t0, entries, 0))
	if per := float64(len(b)) / n; per > 4 {
		t.Errorf("bytes per revoked token: got %.3f, want <= 4", per)
	} else {
		t.Logf("1M revocations: %d bytes, %.3f bytes per token", len(b), per)
	}
	s, err := revocation.Decode(b)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	fp := 0
	for i := range 100_000 {
		if s.MayContainToken(fmt.Sprintf("valid-%d", i)) {
			fp++
		}
	}
	if fp > 5 { // expected 0.1 at 1e-6
		t.Errorf("false positives in 100000 lookups: got %d, want about 0", fp)
	}
}
