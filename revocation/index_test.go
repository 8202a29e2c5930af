package revocation_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/signet-auth/signet/revocation"
)

func mustApply(tb testing.TB, x *revocation.Index, e revocation.Entry) bool {
	tb.Helper()
	changed, err := x.Apply(e)
	if err != nil {
		tb.Fatalf("Apply(%+v): %v", e, err)
	}
	return changed
}

func TestIndexRevoked(t *testing.T) {
	x := revocation.NewIndex()
	mustApply(t, x, revocation.Entry{Seq: 1, Kind: revocation.KindToken, TokenID: "tok-a", ExpiresAt: t0.Add(time.Hour)})
	mustApply(t, x, revocation.Entry{Seq: 2, Kind: revocation.KindSubject, Org: "acme", Subject: "bob", NotBefore: t0, ExpiresAt: t0.Add(time.Hour)})
	mustApply(t, x, revocation.Entry{Seq: 3, Kind: revocation.KindKey, KeyID: "kid-1", RevokedAt: t0, ExpiresAt: t0.Add(time.Hour)})
	mustApply(t, x, revocation.Entry{Seq: 4, Kind: revocation.KindToken, TokenID: "tok-forever"})
	late := t0.Add(time.Hour + revocation.ExpiryGrace)
	tests := []struct {
		name string
		ref  revocation.TokenRef
		now  time.Time
		kind revocation.Kind // "" = not revoked
	}{
		{"revoked id", revocation.TokenRef{ID: "tok-a"}, t0, revocation.KindToken},
		{"revoked id within the grace", revocation.TokenRef{ID: "tok-a"}, late.Add(-time.Nanosecond), revocation.KindToken},
		{"revoked id after the grace", revocation.TokenRef{ID: "tok-a"}, late, ""},
		{"entry without expiry", revocation.TokenRef{ID: "tok-forever"}, t0.Add(1000 * time.Hour), revocation.KindToken},
		{"other id", revocation.TokenRef{ID: "tok-b", Org: "acme", Subject: "carol"}, t0, ""},
		{"issued before the cut-off", revocation.TokenRef{ID: "x", Org: "acme", Subject: "bob", IssuedAt: t0.Add(-time.Second)}, t0, revocation.KindSubject},
		{"issued at the cut-off", revocation.TokenRef{ID: "x", Org: "acme", Subject: "bob", IssuedAt: t0}, t0, ""},
		{"same subject, other org", revocation.TokenRef{ID: "x", Org: "globex", Subject: "bob", IssuedAt: t0.Add(-time.Second)}, t0, ""},
		{"cut-off no longer live", revocation.TokenRef{ID: "x", Org: "acme", Subject: "bob", IssuedAt: t0.Add(-time.Second)}, late, ""},
		{"withdrawn key", revocation.TokenRef{ID: "x", KeyID: "kid-1"}, t0, revocation.KindKey},
		{"withdrawn key wins over the id", revocation.TokenRef{ID: "tok-a", KeyID: "kid-1"}, t0, revocation.KindKey},
		{"other key", revocation.TokenRef{ID: "x", KeyID: "kid-2"}, t0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, ok := x.Revoked(tc.ref, tc.now)
			if ok != (tc.kind != "") || e.Kind != tc.kind {
				t.Errorf("Revoked: got %v %q, want %v %q", ok, e.Kind, tc.kind != "", tc.kind)
			}
		})
	}
	if !x.Withdrawn("kid-1") || x.Withdrawn("kid-2") {
		t.Error("Withdrawn: got wrong answers for kid-1/kid-2")
	}
	if got := x.Cutoff("acme", "bob", t0); !got.Equal(t0) {
		t.Errorf("Cutoff: got %v, want %v", got, t0)
	}
}

// TestIndexCutoffNeverShortened is bug 1 of the index's issue: a newer
// cut-off of the same subject that expires earlier (max_ttl was lowered)
// must not end the protection the older one gave.
func TestIndexCutoffNeverShortened(t *testing.T) {
	t1, t2 := t0, t0.Add(time.Minute)
	e1, e2 := t0.Add(100*time.Hour), t2.Add(time.Hour) // e2 < e1
	old := revocation.TokenRef{ID: "old", Org: "acme", Subject: "bob", IssuedAt: t1.Add(-time.Hour)}
	between := revocation.TokenRef{ID: "between", Org: "acme", Subject: "bob", IssuedAt: t1.Add(time.Second)}
	after := revocation.TokenRef{ID: "after", Org: "acme", Subject: "bob", IssuedAt: t2}
	first := revocation.Entry{Seq: 1, Kind: revocation.KindSubject, Org: "acme", Subject: "bob", NotBefore: t1, ExpiresAt: e1}
	second := revocation.Entry{Seq: 2, Kind: revocation.KindSubject, Org: "acme", Subject: "bob", NotBefore: t2, ExpiresAt: e2}
	for name, order := range map[string][]revocation.Entry{"in order": {first, second}, "reversed": {second, first}} {
		t.Run(name, func(t *testing.T) {
			x := revocation.NewIndex()
			for _, e := range order {
				mustApply(t, x, e)
			}
			afterE2 := e2.Add(revocation.ExpiryGrace + time.Hour)
			x.Prune(afterE2)
			for _, tc := range []struct {
				ref  revocation.TokenRef
				now  time.Time
				want bool
			}{
				{old, t2, true},
				{between, t2, true},
				{after, t2, false},
				{old, afterE2, true}, // the older cut-off still protects it
				{old, e1.Add(revocation.ExpiryGrace), false},
			} {
				if _, got := x.Revoked(tc.ref, tc.now); got != tc.want {
					t.Errorf("%s at %s: got revoked=%v, want %v", tc.ref.ID, tc.now.Sub(t0), got, tc.want)
				}
			}
		})
	}
}

func TestIndexApply(t *testing.T) {
	x := revocation.NewIndex()
	tok := revocation.Entry{Kind: revocation.KindToken, TokenID: "t", ExpiresAt: t0.Add(time.Hour)}
	if !mustApply(t, x, tok) {
		t.Error("first entry: got unchanged, want changed")
	}
	if mustApply(t, x, tok) {
		t.Error("same entry again: got changed, want unchanged")
	}
	shorter := tok
	shorter.ExpiresAt = t0.Add(time.Minute)
	if mustApply(t, x, shorter) {
		t.Error("shorter expiry: got changed, want unchanged (the longer one stays)")
	}
	if _, ok := x.Revoked(revocation.TokenRef{ID: "t"}, t0.Add(30*time.Minute)); !ok {
		t.Error("a shorter entry for the same id shortened the revocation")
	}
	for _, bad := range []revocation.Entry{
		{Kind: "bogus"},
		{Kind: revocation.KindToken},
		{Kind: revocation.KindSubject, Subject: "bob"},
		{Kind: revocation.KindKey},
		{Kind: revocation.KindToken, TokenID: "u", Tag: "not a tag"},
	} {
		if changed, err := x.Apply(bad); err == nil || changed {
			t.Errorf("Apply(%+v): got %v, %v; want an error", bad, changed, err)
		}
	}
	if n, _, _ := x.Len(); n != 1 {
		t.Errorf("after malformed entries: got %d token entries, want 1", n)
	}
	// A key withdrawal outlives its expiry in Withdrawn (a stale key set
	// must not bring the key back) but stops revoking tokens.
	mustApply(t, x, revocation.Entry{Kind: revocation.KindKey, KeyID: "k", ExpiresAt: t0})
	x.Prune(t0.Add(time.Hour))
	if _, ok := x.Revoked(revocation.TokenRef{ID: "z", KeyID: "k"}, t0.Add(time.Hour)); ok || !x.Withdrawn("k") {
		t.Errorf("expired withdrawal: got revoked=%v withdrawn=%v, want false true", ok, x.Withdrawn("k"))
	}
}

func TestCursor(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want revocation.Cursor
	}{
		{"0", revocation.Cursor{}},
		{"12", revocation.Cursor{Version: 12}},
		{"12.e1", revocation.Cursor{Version: 12, Epoch: "e1"}},
		{"12.e1.t-_9", revocation.Cursor{Version: 12, Epoch: "e1", Tag: "t-_9"}},
	} {
		got, err := revocation.ParseCursor(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseCursor(%q): got %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		if s := got.String(); s != tc.in {
			t.Errorf("String: got %q, want %q", s, tc.in)
		}
	}
	for _, bad := range []string{"", "-1", "1e9", "x", "1.", "1..t", "1.e.t.u", "1.e f", "18446744073709551616", "1.é"} {
		if c, err := revocation.ParseCursor(bad); !errors.Is(err, revocation.ErrCursor) {
			t.Errorf("ParseCursor(%q): got %+v, %v; want ErrCursor", bad, c, err)
		}
	}
}

// TestIndexValidUntil: a token entry that takes effect later (a token
// regenerated with a grace period) refuses the token only from then on,
// and a later immediate revocation of the same id wins.
func TestIndexValidUntil(t *testing.T) {
	until := t0.Add(time.Hour)
	x := revocation.NewIndex()
	mustApply(t, x, revocation.Entry{Kind: revocation.KindToken, TokenID: "old", ValidUntil: until, ExpiresAt: t0.Add(24 * time.Hour)})
	ref := revocation.TokenRef{ID: "old"}
	for _, tc := range []struct {
		now  time.Time
		want bool
	}{
		{t0, false},
		{until.Add(-time.Nanosecond), false},
		{until, true},
		{t0.Add(24*time.Hour + revocation.ExpiryGrace), false},
	} {
		if _, got := x.Revoked(ref, tc.now); got != tc.want {
			t.Errorf("at %s: got revoked=%v, want %v", tc.now.Sub(t0), got, tc.want)
		}
	}
	if got := x.Pending(t0); !got.Equal(until) {
		t.Errorf("Pending before: got %v, want %v", got, until)
	}
	if got := x.Pending(until); !got.IsZero() {
		t.Errorf("Pending once in effect: got %v, want none", got)
	}
	// A later entry with a later start (or none) never delays it; one
	// without (revoked at once) brings it forward.
	mustApply(t, x, revocation.Entry{Kind: revocation.KindToken, TokenID: "old", ValidUntil: until.Add(time.Hour), ExpiresAt: t0.Add(24 * time.Hour)})
	if _, got := x.Revoked(ref, until); !got {
		t.Error("a later valid_until delayed the revocation")
	}
	mustApply(t, x, revocation.Entry{Kind: revocation.KindToken, TokenID: "old", ExpiresAt: t0.Add(24 * time.Hour)})
	if _, got := x.Revoked(ref, t0); !got {
		t.Error("an immediate revocation after a pending one: got not revoked, want revoked")
	}
	if _, err := x.Apply(revocation.Entry{Kind: revocation.KindKey, KeyID: "k", ValidUntil: until}); err == nil {
		t.Error("a key entry with valid_until: got accepted, want an error")
	}
}

func TestSnapshotPending(t *testing.T) {
	until := t0.Add(time.Hour)
	entries := []revocation.Entry{
		{Seq: 1, Kind: revocation.KindToken, TokenID: "now", ExpiresAt: t0.Add(2 * time.Hour)},
		{Seq: 2, Kind: revocation.KindToken, TokenID: "later", ValidUntil: until, ExpiresAt: t0.Add(2 * time.Hour)},
		{Seq: 3, Kind: revocation.KindToken, TokenID: "already", ValidUntil: t0.Add(-time.Minute), ExpiresAt: t0.Add(2 * time.Hour)},
	}
	got, err := revocation.Decode(encode(t, revocation.NewSnapshot(3, t0, entries, 0)))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if len(got.Pending) != 1 || got.Pending[0].TokenID != "later" || !got.Pending[0].ValidUntil.Equal(until) {
		t.Fatalf("pending: got %+v, want only \"later\" until %s", got.Pending, until)
	}
	if got.TokenCount != 2 || !got.MayContainToken("now") || !got.MayContainToken("already") {
		t.Errorf("filter: got %d ids, want the two in effect", got.TokenCount)
	}
	x := revocation.NewIndex()
	for _, e := range got.Exact() {
		mustApply(t, x, e)
	}
	if _, ok := x.Revoked(revocation.TokenRef{ID: "later"}, t0); ok {
		t.Error("pending token revoked before its time")
	}
	if _, ok := x.Revoked(revocation.TokenRef{ID: "later"}, until); !ok {
		t.Error("pending token not revoked at its time")
	}
}

func TestEntryJSONValidUntil(t *testing.T) {
	e := revocation.Entry{Seq: 1, Kind: revocation.KindToken, TokenID: "x", ValidUntil: t0.Add(time.Hour).Truncate(time.Second), ExpiresAt: t0.Truncate(time.Second)}
	b, err := json.Marshal(e)
	if err != nil || !strings.Contains(string(b), `"valid_until":"2026-11-23T11:00:00Z"`) {
		t.Fatalf("marshal: got %s, %v", b, err)
	}
	var back revocation.Entry
	if err := json.Unmarshal(b, &back); err != nil || !back.ValidUntil.Equal(e.ValidUntil) {
		t.Errorf("round trip: got %+v, %v", back, err)
	}
	b, _ = json.Marshal(revocation.Entry{Kind: revocation.KindToken, TokenID: "y"})
	if strings.Contains(string(b), "valid_until") {
		t.Errorf("an immediate entry: got %s, want no valid_until", b)
	}
}
