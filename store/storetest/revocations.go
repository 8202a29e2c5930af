package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/signet-auth/signet/revocation"
	"github.com/signet-auth/signet/store"
)

func revocationTests() []subtest {
	return []subtest{
		{"Revocation/Empty", testRevocationEmpty},
		{"Revocation/SeqOrder", testRevocationSeqOrder},
		{"Revocation/ListSinceAndExpiry", testRevocationListFilters},
		{"Revocation/GetTokenRevocation", testGetTokenRevocation},
		{"Revocation/RevokeKey", testRevokeKey},
		{"Revocation/Prune", testPrune},
		{"Revocation/PruneKeepsLatest", testPruneKeepsLatest},
		{"Revocation/EpochAndTags", testRevocationEpochAndTags},
	}
}

// testRevocationEpochAndTags pins the log's identity (revocation.Cursor):
// an epoch that a fresh log has from the start and that appends never
// change, a distinct random tag on every entry, the latest of which is the
// state's head, and RevocationTag answering for expired entries until they
// are pruned.
func testRevocationEpochAndTags(t *testing.T, s store.Store) {
	ctx := context.Background()
	st0, err := s.RevocationState(ctx)
	if err != nil {
		t.Fatalf("RevocationState: got error %v, want nil", err)
	}
	if !validID(st0.Epoch) || st0.Head != "" || st0.Latest != 0 {
		t.Fatalf("fresh log: got epoch %q head %q latest %d, want an id, \"\", 0", st0.Epoch, st0.Head, st0.Latest)
	}
	entries := seedLog(t, s)
	seen := map[string]bool{}
	for _, e := range entries {
		if !validID(e.Tag) || seen[e.Tag] {
			t.Errorf("entry %d: got tag %q, want a fresh id", e.Seq, e.Tag)
		}
		seen[e.Tag] = true
		got, err := s.RevocationTag(ctx, e.Seq)
		if err != nil || got != e.Tag {
			t.Errorf("RevocationTag(%d): got %q, %v; want %q, nil", e.Seq, got, err, e.Tag)
		}
	}
	listed, err := s.ListRevocations(ctx, 0, t0)
	if err != nil {
		t.Fatalf("ListRevocations: got error %v, want nil", err)
	}
	for i, e := range listed {
		if e.Tag != entries[i].Tag {
			t.Errorf("listed entry %d: got tag %q, want %q", e.Seq, e.Tag, entries[i].Tag)
		}
	}
	st, err := s.RevocationState(ctx)
	if err != nil {
		t.Fatalf("RevocationState: got error %v, want nil", err)
	}
	last := entries[len(entries)-1]
	if st.Epoch != st0.Epoch || st.Latest != last.Seq || st.Head != last.Tag {
		t.Errorf("after appends: got epoch %q latest %d head %q, want %q %d %q", st.Epoch, st.Latest, st.Head, st0.Epoch, last.Seq, last.Tag)
	}
	// An entry that expired is still answered for until Prune removes it.
	expired, err := s.RevokeKey(ctx, "kid-short", at(6*time.Hour), at(6*time.Hour+time.Minute))
	if err != nil {
		t.Fatalf("RevokeKey: got error %v, want nil", err)
	}
	if got, err := s.RevocationTag(ctx, expired.Seq); err != nil || got != expired.Tag {
		t.Errorf("RevocationTag of an expired entry: got %q, %v; want %q, nil", got, err, expired.Tag)
	}
	if _, err := s.Prune(ctx, at(7*time.Hour), t0); err != nil {
		t.Fatalf("Prune: got error %v, want nil", err)
	}
	if _, err := s.RevocationTag(ctx, expired.Seq); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RevocationTag of a pruned entry: got %v, want ErrNotFound", err)
	}
	if _, err := s.RevocationTag(ctx, expired.Seq+100); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RevocationTag of a Seq never appended: got %v, want ErrNotFound", err)
	}
	if st, err := s.RevocationState(ctx); err != nil || st.Head != expired.Tag {
		t.Errorf("head after Prune: got %q, %v; want %q (Prune never touches the state)", st.Head, err, expired.Tag)
	}
}

// validID reports whether s can be an epoch or a tag on the wire.
func validID(s string) bool { return revocation.ValidID(s) }

func testRevocationEmpty(t *testing.T, s store.Store) {
	if l := latest(t, s); l != 0 {
		t.Errorf("Latest of an empty log: got %d, want 0", l)
	}
	list, err := s.ListRevocations(context.Background(), 0, t0)
	if err != nil {
		t.Fatalf("ListRevocations: got error %v, want nil", err)
	}
	if len(list) != 0 {
		t.Errorf("ListRevocations of an empty log: got %d entries, want 0", len(list))
	}
}

// seedLog appends one entry of every kind and returns them in log order.
func seedLog(t *testing.T, s store.Store) []store.Revocation {
	t.Helper()
	ctx := context.Background()
	mustCreateUser(t, s, newUser("bob", "acme", store.RoleMember))
	mustCreateUser(t, s, newUser("carol", "acme", store.RoleMember))
	mustCreateToken(t, s, newPersonal("tok-1", "acme", "alice", "one", at(time.Minute)))
	mustCreateToken(t, s, newPersonal("tok-2", "acme", "alice", "two", at(2*time.Hour)))
	var out []store.Revocation
	out = append(out, mustRevoke(t, s, "tok-1", at(time.Hour)))
	k, err := s.RevokeKey(ctx, "kid-leaked", at(2*time.Hour), at(2*time.Hour+8760*time.Hour))
	if err != nil {
		t.Fatalf("RevokeKey: got error %v, want nil", err)
	}
	out = append(out, k)
	d, err := s.DeleteUser(ctx, "bob", at(3*time.Hour), at(3*time.Hour+8760*time.Hour))
	if err != nil {
		t.Fatalf("DeleteUser: got error %v, want nil", err)
	}
	out = append(out, d)
	if err := s.SetPassword(ctx, "carol", "$2a$10$new", at(4*time.Hour), at(4*time.Hour), at(4*time.Hour+8760*time.Hour)); err != nil {
		t.Fatalf("SetPassword: got error %v, want nil", err)
	}
	l, err := s.ListRevocations(ctx, d.Seq, at(4*time.Hour))
	if err != nil || len(l) != 1 {
		t.Fatalf("ListRevocations after SetPassword: got %d entries, error %v; want 1, nil", len(l), err)
	}
	out = append(out, l[0])
	out = append(out, mustRevoke(t, s, "tok-2", at(5*time.Hour)))
	return out
}

func testRevocationSeqOrder(t *testing.T, s store.Store) {
	ctx := context.Background()
	entries := seedLog(t, s)
	for i := 1; i < len(entries); i++ {
		if entries[i].Seq <= entries[i-1].Seq {
			t.Fatalf("Seq not strictly increasing: entry %d has %d after %d", i, entries[i].Seq, entries[i-1].Seq)
		}
	}
	if entries[0].Seq <= 0 {
		t.Errorf("first Seq: got %d, want > 0", entries[0].Seq)
	}
	last := entries[len(entries)-1].Seq
	if l := latest(t, s); l != last {
		t.Errorf("Latest: got %d, want %d", l, last)
	}
	list, err := s.ListRevocations(ctx, 0, at(5*time.Hour))
	if err != nil {
		t.Fatalf("ListRevocations: got error %v, want nil", err)
	}
	if !slices.Equal(seqs(list), seqs(entries)) {
		t.Fatalf("ListRevocations(0): got seqs %v, want %v", seqs(list), seqs(entries))
	}
	for i := range list {
		checkRevocation(t, "ListRevocations entry", list[i], entries[i])
	}
	wantKinds := []store.RevocationKind{store.RevokeToken, store.RevokeKey, store.RevokeSubject, store.RevokeSubject, store.RevokeToken}
	for i, e := range list {
		if e.Kind != wantKinds[i] {
			t.Errorf("entry %d kind: got %q, want %q", i, e.Kind, wantKinds[i])
		}
	}
}

func testRevocationListFilters(t *testing.T, s store.Store) {
	ctx := context.Background()
	entries := seedLog(t, s)
	// tok-1's entry expires at t0+1m+24h; the others much later.
	tokExp := entries[0].ExpiresAt
	all := seqs(entries)
	tests := []struct {
		name  string
		since int64
		now   time.Time
		want  []int64
	}{
		{"everything", 0, at(5 * time.Hour), all},
		{"since excludes entries <= since", entries[1].Seq, at(5 * time.Hour), all[2:]},
		{"since the last entry", entries[4].Seq, at(5 * time.Hour), nil},
		{"since beyond latest", entries[4].Seq + 100, at(5 * time.Hour), nil},
		{"negative since", -1, at(5 * time.Hour), all},
		{"expired entry left out", 0, tokExp.Add(time.Microsecond), all[1:]},
		{"entry expiring exactly now left out", 0, tokExp, all[1:]},
		{"entry just before expiry kept", 0, tokExp.Add(-time.Microsecond), all},
		{"everything expired", 0, at(100000 * time.Hour), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListRevocations(ctx, tc.since, tc.now)
			if err != nil {
				t.Fatalf("ListRevocations(%d, %s): got error %v, want nil", tc.since, fmtTime(tc.now), err)
			}
			if g := seqs(got); !slices.Equal(g, tc.want) && !(len(g) == 0 && len(tc.want) == 0) {
				t.Fatalf("ListRevocations(%d, %s): got seqs %v, want %v", tc.since, fmtTime(tc.now), g, tc.want)
			}
		})
	}
}

func testGetTokenRevocation(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCreateToken(t, s, newPersonal("tok-live", "acme", "alice", "live", at(time.Minute)))
	mustCreateToken(t, s, newPersonal("tok-rev", "acme", "alice", "rev", at(time.Minute)))
	rev := mustRevoke(t, s, "tok-rev", at(time.Hour))
	if _, err := s.RevokeKey(ctx, "tok-live", at(time.Hour), at(100*time.Hour)); err != nil {
		t.Fatalf("RevokeKey: got error %v, want nil", err)
	}
	tests := []struct {
		name    string
		id      string
		want    *store.Revocation
		wantErr error
	}{
		{"revoked token", "tok-rev", &rev, nil},
		{"live token", "tok-live", nil, store.ErrNotFound}, // a key entry with the same value does not count
		{"unknown token", "tok-unknown", nil, store.ErrNotFound},
		{"empty id", "", nil, store.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.GetTokenRevocation(ctx, tc.id)
			if tc.wantErr != nil {
				wantErrIs(t, "GetTokenRevocation", err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("GetTokenRevocation: got error %v, want nil", err)
			}
			checkRevocation(t, "GetTokenRevocation", got, *tc.want)
		})
	}
}

func testRevokeKey(t *testing.T, s store.Store) {
	ctx := context.Background()
	before := latest(t, s)
	now, exp := at(time.Hour), at(time.Hour+8760*time.Hour)
	first, err := s.RevokeKey(ctx, "kid-A", now, exp)
	if err != nil {
		t.Fatalf("RevokeKey: got error %v, want nil", err)
	}
	checkRevocation(t, "RevokeKey", first, store.Revocation{
		Seq: before + 1, Kind: store.RevokeKey, Value: "kid-A", Org: first.Org,
		RevokedAt: now, ExpiresAt: exp, Reason: "key withdrawn",
	})
	again, err := s.RevokeKey(ctx, "kid-A", at(2*time.Hour), at(3*time.Hour+8760*time.Hour))
	if err != nil {
		t.Fatalf("RevokeKey(again): got error %v, want nil", err)
	}
	checkRevocation(t, "repeated RevokeKey", again, first)
	if l := latest(t, s); l != first.Seq {
		t.Errorf("Latest after repeat: got %d, want %d", l, first.Seq)
	}
	other, err := s.RevokeKey(ctx, "kid-B", at(2*time.Hour), exp)
	if err != nil {
		t.Fatalf("RevokeKey(kid-B): got error %v, want nil", err)
	}
	if other.Seq != first.Seq+1 {
		t.Errorf("kid-B Seq: got %d, want %d", other.Seq, first.Seq+1)
	}
	list, err := s.ListRevocations(ctx, 0, now)
	if err != nil {
		t.Fatalf("ListRevocations: got error %v, want nil", err)
	}
	if len(list) != 2 {
		t.Fatalf("ListRevocations: got %d entries, want 2", len(list))
	}
	checkRevocation(t, "listed kid-A", list[0], first)
	checkRevocation(t, "listed kid-B", list[1], other)
	if _, err := s.GetTokenRevocation(ctx, "kid-A"); err == nil {
		t.Errorf("GetTokenRevocation(kid-A): got nil error, want ErrNotFound (a key is not a token)")
	}
}

func testPrune(t *testing.T, s store.Store) {
	ctx := context.Background()
	// Tokens: tok-gone expires at t0+1h, tok-edge at t0+2h (= cutoff), tok-kept later.
	gone := newPersonal("tok-gone", "acme", "alice", "gone", at(0))
	gone.ExpiresAt, gone.Lifetime = at(time.Hour), time.Hour
	edge := newPersonal("tok-edge", "acme", "alice", "edge", at(0))
	edge.ExpiresAt, edge.Lifetime = at(2*time.Hour), 2*time.Hour
	kept := newPersonal("tok-kept", "acme", "alice", "kept", at(0))
	for _, tok := range []store.TokenRecord{gone, edge, kept} {
		mustCreateToken(t, s, tok)
	}
	// Revocation entries: tok-gone's expires at t0+1h, tok-edge's at t0+2h, the key's much later.
	revGone := mustRevoke(t, s, "tok-gone", at(time.Minute))
	revEdge := mustRevoke(t, s, "tok-edge", at(time.Minute))
	key, err := s.RevokeKey(ctx, "kid-x", at(time.Minute), at(1000*time.Hour))
	if err != nil {
		t.Fatalf("RevokeKey: got error %v, want nil", err)
	}
	if err := s.AppendAudit(ctx, store.AuditEvent{Time: at(0), Org: "acme", Actor: "alice", Action: "token.create", Target: "tok-gone"}); err != nil {
		t.Fatalf("AppendAudit: got error %v, want nil", err)
	}
	before := latest(t, s)

	// now = cutoff = t0+2h: strictly-before semantics keep the edge rows.
	n, err := s.Prune(ctx, at(2*time.Hour), at(2*time.Hour))
	if err != nil {
		t.Fatalf("Prune: got error %v, want nil", err)
	}
	if n != 2 {
		t.Errorf("Prune removed: got %d rows, want 2 (tok-gone and its entry)", n)
	}
	_, err = s.GetToken(ctx, "tok-gone")
	wantErrIs(t, "GetToken(pruned)", err, store.ErrNotFound)
	_, err = s.GetTokenRevocation(ctx, "tok-gone")
	wantErrIs(t, "GetTokenRevocation(pruned)", err, store.ErrNotFound)
	mustGetToken(t, s, "tok-edge")
	mustGetToken(t, s, "tok-kept")
	if got, err := s.GetTokenRevocation(ctx, "tok-edge"); err != nil {
		t.Errorf("GetTokenRevocation(tok-edge): got error %v, want nil", err)
	} else {
		checkRevocation(t, "tok-edge entry", got, revEdge)
	}
	if l := latest(t, s); l != before {
		t.Errorf("Latest after Prune: got %d, want %d", l, before)
	}
	all, err := s.ListRevocations(ctx, 0, at(0))
	if err != nil {
		t.Fatalf("ListRevocations: got error %v, want nil", err)
	}
	if want := []int64{revEdge.Seq, key.Seq}; !slices.Equal(seqs(all), want) {
		t.Errorf("entries after Prune: got seqs %v, want %v (pruned %d)", seqs(all), want, revGone.Seq)
	}
	events, err := s.ListAudit(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatalf("ListAudit: got error %v, want nil", err)
	}
	if len(events) != 1 {
		t.Errorf("audit events after Prune: got %d, want 1 (Prune keeps the audit trail)", len(events))
	}

	// Revocation entries and token records follow separate clocks: a
	// later cutoff for tokens removes tok-edge but an early now keeps its entry.
	n, err = s.Prune(ctx, at(0), at(3*time.Hour))
	if err != nil {
		t.Fatalf("Prune(2): got error %v, want nil", err)
	}
	if n != 1 {
		t.Errorf("Prune(2) removed: got %d rows, want 1 (tok-edge)", n)
	}
	if _, err := s.GetTokenRevocation(ctx, "tok-edge"); err != nil {
		t.Errorf("GetTokenRevocation(tok-edge) after its token was pruned: got error %v, want nil", err)
	}
	n, err = s.Prune(ctx, at(0), at(3*time.Hour))
	if err != nil {
		t.Fatalf("Prune(3): got error %v, want nil", err)
	}
	if n != 0 {
		t.Errorf("Prune(3) removed: got %d rows, want 0", n)
	}
	// Revoking a pruned token is ErrNotFound, not a new entry.
	_, err = s.RevokeToken(ctx, "tok-gone", at(3*time.Hour), "x")
	wantErrIs(t, "RevokeToken(pruned)", err, store.ErrNotFound)
	if l := latest(t, s); l != before {
		t.Errorf("Latest: got %d, want %d", l, before)
	}
}

func testPruneKeepsLatest(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i := range 3 {
		id := "tok-" + string(rune('a'+i))
		mustCreateToken(t, s, newPersonal(id, "acme", "alice", id, at(0)))
		mustRevoke(t, s, id, at(time.Minute))
	}
	before := latest(t, s)
	if before < 3 {
		t.Fatalf("Latest: got %d, want >= 3", before)
	}
	far := at(100000 * time.Hour)
	n, err := s.Prune(ctx, far, far)
	if err != nil {
		t.Fatalf("Prune: got error %v, want nil", err)
	}
	if n != 6 {
		t.Errorf("Prune removed: got %d rows, want 6 (3 tokens, 3 entries)", n)
	}
	if l := latest(t, s); l != before {
		t.Fatalf("Latest after pruning every entry: got %d, want %d (it never goes down)", l, before)
	}
	list, err := s.ListRevocations(ctx, 0, t0)
	if err != nil {
		t.Fatalf("ListRevocations: got error %v, want nil", err)
	}
	if len(list) != 0 {
		t.Errorf("ListRevocations after pruning everything: got %d entries, want 0", len(list))
	}
	mustCreateToken(t, s, newPersonal("tok-new", "acme", "alice", "new", far))
	rev, err := s.RevokeToken(ctx, "tok-new", far, "x")
	if err != nil {
		t.Fatalf("RevokeToken: got error %v, want nil", err)
	}
	if rev.Seq <= before {
		t.Errorf("Seq after Prune: got %d, want > %d (Seqs are never reused)", rev.Seq, before)
	}
}
