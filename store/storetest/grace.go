package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/signet-auth/signet/store"
)

// Regenerate with a grace period: ReplaceToken's validUntil keeps the old
// token valid until then, in its record and in its revocation entry.

func graceTests() []subtest {
	return []subtest{
		{"Grace/Replace", testGraceReplace},
		{"Grace/Bounds", testGraceBounds},
		{"Grace/RevokeDuring", testGraceRevokeDuring},
		{"Grace/RevokeAfter", testGraceRevokeAfter},
		{"Grace/CutoffDuring", testGraceCutoffDuring},
		{"Grace/ReplaceAgain", testGraceReplaceAgain},
		{"Grace/Prune", testGracePrune},
	}
}

// replaceWithGrace regenerates old at now with a grace period until
// validUntil and returns the new token and the old token's entry.
func replaceWithGrace(tb testing.TB, s store.Store, old store.TokenRecord, nextID string, now, validUntil time.Time) (store.TokenRecord, store.Revocation) {
	tb.Helper()
	next := regenerated(old, nextID, now)
	rev, err := s.ReplaceToken(context.Background(), old.ID, next, now, validUntil)
	if err != nil {
		tb.Fatalf("ReplaceToken(%s, grace until %s): got error %v, want nil", old.ID, fmtTime(validUntil), err)
	}
	return next, rev
}

func testGraceReplace(t *testing.T, s store.Store) {
	ctx := context.Background()
	old := newPersonal("tok-old", "acme", "alice", "ci", at(time.Minute))
	mustCreateToken(t, s, old)
	before := latest(t, s)
	now, until := at(2*time.Hour), at(3*time.Hour)
	next, rev := replaceWithGrace(t, s, old, "tok-next", now, until)
	want := store.Revocation{
		Seq: before + 1, Kind: store.RevokeToken, Value: old.ID, Org: "acme", ValidUntil: until,
		RevokedAt: now, ExpiresAt: old.ExpiresAt, Reason: "regenerated",
	}
	checkRevocation(t, "ReplaceToken entry", rev, want)
	wantOld := old
	wantOld.RevokedAt, wantOld.ValidUntil, wantOld.ReplacedBy = ptr(now), until, next.ID
	got := mustGetToken(t, s, old.ID)
	checkToken(t, "old token", got, wantOld)
	for _, tc := range []struct {
		at      time.Time
		revoked bool
	}{{now, false}, {until.Add(-time.Microsecond), false}, {until, true}, {until.Add(time.Hour), true}} {
		if r := got.Revoked(tc.at); r != tc.revoked {
			t.Errorf("old token Revoked(%s): got %v, want %v", fmtTime(tc.at), r, tc.revoked)
		}
	}
	if from, ok := got.RevokedFrom(); !ok || !from.Equal(until) {
		t.Errorf("old token RevokedFrom: got %s %v, want %s", fmtTime(from), ok, fmtTime(until))
	}
	checkToken(t, "new token", mustGetToken(t, s, next.ID), next)
	entry, err := s.GetTokenRevocation(ctx, old.ID)
	if err != nil {
		t.Fatalf("GetTokenRevocation(old): got error %v, want nil", err)
	}
	checkRevocation(t, "GetTokenRevocation(old)", entry, want)
	list, err := s.ListRevocations(ctx, before, now)
	if err != nil || len(list) != 1 {
		t.Fatalf("ListRevocations: got %d entries, error %v; want 1, nil", len(list), err)
	}
	checkRevocation(t, "listed entry", list[0], want)

	// The old token is listed as live until its grace period ends.
	for _, tc := range []struct {
		now  time.Time
		want []string
	}{
		{now, []string{"tok-next", "tok-old"}},
		{until.Add(-time.Microsecond), []string{"tok-next", "tok-old"}},
		{until, []string{"tok-next"}},
	} {
		live, err := s.ListTokens(ctx, store.TokenFilter{Org: "acme", Now: tc.now})
		if err != nil {
			t.Fatalf("ListTokens: got error %v, want nil", err)
		}
		if ids := tokenIDs(live); !slices.Equal(ids, tc.want) {
			t.Errorf("ListTokens(Now %s): got %q, want %q", fmtTime(tc.now), ids, tc.want)
		}
	}
	// Its name went to the new token: a third token cannot take it.
	third := newPersonal("tok-third", "acme", "alice", "ci", now.Add(time.Minute))
	wantErrIs(t, "CreateToken(name of the new token)", s.CreateToken(ctx, third), store.ErrConflict)
}

func testGraceBounds(t *testing.T, s store.Store) {
	tests := []struct {
		name      string
		now       time.Time // the old token lives from at(time.Minute) for 24h
		until     time.Time
		wantUntil time.Time
	}{
		{"past the old token's expiry: capped at it", at(2 * time.Hour), at(48 * time.Hour), at(time.Minute + 24*time.Hour)},
		{"at now: none", at(2 * time.Hour), at(2 * time.Hour), time.Time{}},
		{"before now: none", at(2 * time.Hour), at(time.Hour), time.Time{}},
		{"old token expired: none", at(30 * time.Hour), at(31 * time.Hour), time.Time{}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := newPersonal("tok-old-"+string(rune('a'+i)), "acme", "alice", "b-"+string(rune('a'+i)), at(time.Minute))
			mustCreateToken(t, s, old)
			_, rev := replaceWithGrace(t, s, old, old.ID+"-next", tc.now, tc.until)
			if !rev.ValidUntil.Equal(tc.wantUntil) {
				t.Errorf("entry ValidUntil: got %s, want %s", fmtTime(rev.ValidUntil), fmtTime(tc.wantUntil))
			}
			wantOld := old
			wantOld.RevokedAt, wantOld.ValidUntil, wantOld.ReplacedBy = ptr(tc.now), tc.wantUntil, old.ID+"-next"
			checkToken(t, "old token", mustGetToken(t, s, old.ID), wantOld)
		})
	}
}

// testGraceRevokeDuring: revoking the old token during its grace period
// revokes it at once, with a second entry, and later calls change nothing.
func testGraceRevokeDuring(t *testing.T, s store.Store) {
	ctx := context.Background()
	old := newAdministrative("tok-old", "acme", "deploy", "alice", at(time.Minute))
	mustCreateToken(t, s, old)
	now, until := at(2*time.Hour), at(3*time.Hour)
	_, graced := replaceWithGrace(t, s, old, "tok-next", now, until)
	revokeAt := now.Add(10 * time.Minute)
	rev, err := s.RevokeToken(ctx, old.ID, revokeAt, "leaked")
	if err != nil {
		t.Fatalf("RevokeToken during the grace period: got error %v, want nil", err)
	}
	want := store.Revocation{
		Seq: graced.Seq + 1, Kind: store.RevokeToken, Value: old.ID, Org: "acme",
		RevokedAt: revokeAt, ExpiresAt: old.ExpiresAt, Reason: "leaked",
	}
	checkRevocation(t, "RevokeToken entry", rev, want)
	got := mustGetToken(t, s, old.ID)
	if !got.ValidUntil.Equal(revokeAt) || !got.Revoked(revokeAt) {
		t.Errorf("old token: got ValidUntil %s, Revoked(%s) %v; want ValidUntil %s, revoked", fmtTime(got.ValidUntil), fmtTime(revokeAt), got.Revoked(revokeAt), fmtTime(revokeAt))
	}
	entry, err := s.GetTokenRevocation(ctx, old.ID)
	if err != nil {
		t.Fatalf("GetTokenRevocation: got error %v, want nil", err)
	}
	checkRevocation(t, "GetTokenRevocation (the newest entry)", entry, want)
	for _, again := range []time.Time{revokeAt, until.Add(time.Hour)} {
		r, err := s.RevokeToken(ctx, old.ID, again, "again")
		if err != nil {
			t.Fatalf("RevokeToken again: got error %v, want nil", err)
		}
		checkRevocation(t, "repeated RevokeToken", r, want)
	}
	if l := latest(t, s); l != want.Seq {
		t.Errorf("Latest: got %d, want %d (nothing more appended)", l, want.Seq)
	}
	list, err := s.ListRevocations(ctx, 0, now)
	if err != nil {
		t.Fatalf("ListRevocations: got error %v, want nil", err)
	}
	if got := seqs(list); !slices.Equal(got, []int64{graced.Seq, want.Seq}) {
		t.Errorf("ListRevocations seqs: got %v, want [%d %d]", got, graced.Seq, want.Seq)
	}
}

// testGraceRevokeAfter: once the grace period is over the token is revoked
// and revoking it changes nothing.
func testGraceRevokeAfter(t *testing.T, s store.Store) {
	old := newPersonal("tok-old", "acme", "alice", "ci", at(time.Minute))
	mustCreateToken(t, s, old)
	_, graced := replaceWithGrace(t, s, old, "tok-next", at(2*time.Hour), at(3*time.Hour))
	rev := mustRevoke(t, s, old.ID, at(3*time.Hour))
	checkRevocation(t, "RevokeToken after the grace period", rev, graced)
	if l := latest(t, s); l != graced.Seq {
		t.Errorf("Latest: got %d, want %d", l, graced.Seq)
	}
	if got := mustGetToken(t, s, old.ID); !got.ValidUntil.Equal(at(3 * time.Hour)) {
		t.Errorf("old token ValidUntil: got %s, want %s", fmtTime(got.ValidUntil), fmtTime(at(3*time.Hour)))
	}
}

// testGraceCutoffDuring: removing the owner, or a new password with
// revocation, during the grace period ends it then: the cut-off wins.
func testGraceCutoffDuring(t *testing.T, s store.Store) {
	ctx := context.Background()
	now, until := at(2*time.Hour), at(3*time.Hour)
	cut := now.Add(10 * time.Minute)
	for _, tc := range []struct {
		name   string
		cutOff func(t *testing.T, user string) store.Revocation
	}{
		{"DeleteUser", func(t *testing.T, user string) store.Revocation {
			rev, err := s.DeleteUser(ctx, user, cut, cut.Add(48*time.Hour))
			if err != nil {
				t.Fatalf("DeleteUser: got error %v, want nil", err)
			}
			return rev
		}},
		{"SetPassword", func(t *testing.T, user string) store.Revocation {
			if err := s.SetPassword(ctx, user, "$2a$10$new.hash", cut, cut, cut.Add(48*time.Hour)); err != nil {
				t.Fatalf("SetPassword: got error %v, want nil", err)
			}
			list, err := s.ListRevocations(ctx, latest(t, s)-1, cut)
			if err != nil || len(list) != 1 {
				t.Fatalf("ListRevocations: got %d entries, error %v; want the cut-off", len(list), err)
			}
			return list[0]
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			user := "u-" + tc.name
			mustCreateUser(t, s, newUser(user, "acme", store.RoleMember))
			old := newPersonal("tok-old-"+tc.name, "acme", user, "ci", at(time.Minute))
			mustCreateToken(t, s, old)
			next, _ := replaceWithGrace(t, s, old, "tok-next-"+tc.name, now, until)
			cutoff := tc.cutOff(t, user)
			if cutoff.Kind != store.RevokeSubject {
				t.Fatalf("cut-off entry: got kind %s, want subject", cutoff.Kind)
			}
			got := mustGetToken(t, s, old.ID)
			if !got.ValidUntil.Equal(cut) || !got.Revoked(cut) {
				t.Errorf("old token: got ValidUntil %s, Revoked(%s) %v; want ValidUntil %s, revoked", fmtTime(got.ValidUntil), fmtTime(cut), got.Revoked(cut), fmtTime(cut))
			}
			if n := mustGetToken(t, s, next.ID); n.RevokedAt == nil || !n.Revoked(cut) {
				t.Errorf("new token: got RevokedAt %v, want revoked", n.RevokedAt)
			}
			before := latest(t, s)
			rev := mustRevoke(t, s, old.ID, cut.Add(time.Minute))
			checkRevocation(t, "RevokeToken after the cut-off", rev, cutoff)
			if l := latest(t, s); l != before {
				t.Errorf("Latest: got %d, want %d (nothing appended)", l, before)
			}
		})
	}
}

// testGraceReplaceAgain: the old token of a regenerate with a grace period
// is replaced and cannot be regenerated again; its replacement can, with
// its own grace period.
func testGraceReplaceAgain(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newPersonal("tok-a", "acme", "alice", "ci", at(time.Minute))
	mustCreateToken(t, s, a)
	b, _ := replaceWithGrace(t, s, a, "tok-b", at(time.Hour), at(5*time.Hour))
	before := latest(t, s)
	_, err := s.ReplaceToken(ctx, a.ID, regenerated(a, "tok-x", at(2*time.Hour)), at(2*time.Hour), at(3*time.Hour))
	wantErrIs(t, "ReplaceToken(a again)", err, store.ErrConflict)
	if l := latest(t, s); l != before {
		t.Errorf("Latest: got %d, want %d", l, before)
	}
	if got := mustGetToken(t, s, a.ID); !got.ValidUntil.Equal(at(5 * time.Hour)) {
		t.Errorf("a's grace period: got until %s, want %s unchanged", fmtTime(got.ValidUntil), fmtTime(at(5*time.Hour)))
	}
	c, rev := replaceWithGrace(t, s, b, "tok-c", at(2*time.Hour), at(4*time.Hour))
	if !rev.ValidUntil.Equal(at(4 * time.Hour)) {
		t.Errorf("b's entry ValidUntil: got %s, want %s", fmtTime(rev.ValidUntil), fmtTime(at(4*time.Hour)))
	}
	live, err := s.ListTokens(ctx, store.TokenFilter{Org: "acme", Now: at(4*time.Hour + 30*time.Minute)})
	if err != nil {
		t.Fatalf("ListTokens: got error %v, want nil", err)
	}
	if ids := tokenIDs(live); !slices.Equal(ids, []string{c.ID, a.ID}) {
		t.Errorf("live tokens after b's grace period, within a's: got %q, want %q", ids, []string{c.ID, a.ID})
	}
}

// testGracePrune: an entry with a grace period stays on the list until the
// token it revokes expires, like every token entry, however early its
// grace period ended.
func testGracePrune(t *testing.T, s store.Store) {
	ctx := context.Background()
	old := newPersonal("tok-old", "acme", "alice", "ci", at(time.Minute))
	mustCreateToken(t, s, old)
	_, rev := replaceWithGrace(t, s, old, "tok-next", at(time.Hour), at(2*time.Hour))
	if _, err := s.Prune(ctx, at(3*time.Hour), at(-time.Hour)); err != nil {
		t.Fatalf("Prune: got error %v, want nil", err)
	}
	if _, err := s.GetTokenRevocation(ctx, old.ID); err != nil {
		t.Errorf("GetTokenRevocation after a prune past the grace period: got error %v, want the entry", err)
	}
	if _, err := s.Prune(ctx, old.ExpiresAt.Add(time.Second), at(-time.Hour)); err != nil {
		t.Fatalf("Prune: got error %v, want nil", err)
	}
	_, err := s.GetTokenRevocation(ctx, old.ID)
	wantErrIs(t, "GetTokenRevocation after a prune past the token's expiry", err, store.ErrNotFound)
	if l := latest(t, s); l != rev.Seq {
		t.Errorf("Latest: got %d, want %d", l, rev.Seq)
	}
}
