package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/signet-auth/signet/store"
)

func userTests() []subtest {
	return []subtest{
		{"Ping", testPing},
		{"User/CreateGet", testUserCreateGet},
		{"User/CreateDuplicate", testUserCreateDuplicate},
		{"User/GetMissing", testUserGetMissing},
		{"User/List", testUserList},
		{"User/SetPassword", testSetPassword},
		{"User/SetPasswordRevoke", testSetPasswordRevoke},
		{"User/SetPasswordMissing", testSetPasswordMissing},
		{"User/RehashPassword", testRehashPassword},
		{"User/Delete", testDeleteUser},
		{"User/DeleteMissing", testDeleteUserMissing},
		{"User/DeleteThenRecreate", testDeleteUserRecreate},
		{"User/AssignedIDs", testUserAssignedIDs},
		{"User/RecreatedOwnsNoTokens", testRecreatedOwnsNoTokens},
		{"User/CreateDefaultTimes", testUserCreateDefaultTimes},
		{"User/SubjectEntryOutlivesItsTokens", testSubjectEntryOutlivesItsTokens},
	}
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: got error %v, want nil", err)
	}
}

func testUserCreateGet(t *testing.T, s store.Store) {
	ctx := context.Background()
	berlin := time.FixedZone("CET", 3600)
	tests := []struct {
		name string
		user store.User
	}{
		{"admin", newUser("alice", "acme", store.RoleAdmin)},
		{"member", newUser("bob", "acme", store.RoleMember)},
		{"non-UTC times come back in UTC", store.User{
			Username: "carol", Email: "carol@example.com", Org: "globex", Role: store.RoleMember,
			PasswordHash: "$2a$10$x",
			CreatedAt:    time.Date(2026, 1, 2, 3, 4, 5, 678901000, berlin),
			UpdatedAt:    time.Date(2026, 1, 3, 3, 4, 5, 1000, berlin),
		}},
		{"unicode and empty email", store.User{
			Username: "žofie", Org: "acme", Role: store.RoleMember, PasswordHash: "$2a$10$y",
			CreatedAt: t0, UpdatedAt: t0,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mustCreateUser(t, s, tc.user)
			got, err := s.GetUser(ctx, tc.user.Username)
			if err != nil {
				t.Fatalf("GetUser(%q): got error %v, want nil", tc.user.Username, err)
			}
			checkUser(t, "GetUser", got, tc.user)
		})
	}
}

func testUserCreateDuplicate(t *testing.T, s store.Store) {
	ctx := context.Background()
	orig := newUser("alice", "acme", store.RoleAdmin)
	mustCreateUser(t, s, orig)
	tests := []struct {
		name string
		user store.User
	}{
		{"same org", newUser("alice", "acme", store.RoleMember)},
		{"other org (usernames are global)", newUser("alice", "globex", store.RoleAdmin)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.user.PasswordHash = "$2a$10$other"
			err := s.CreateUser(ctx, tc.user)
			wantErrIs(t, "CreateUser(duplicate)", err, store.ErrConflict)
			got, err := s.GetUser(ctx, "alice")
			if err != nil {
				t.Fatalf("GetUser: got error %v, want nil", err)
			}
			checkUser(t, "GetUser after failed duplicate", got, orig)
		})
	}
}

func testUserGetMissing(t *testing.T, s store.Store) {
	_, err := s.GetUser(context.Background(), "nobody")
	wantErrIs(t, "GetUser(missing)", err, store.ErrNotFound)
}

func testUserList(t *testing.T, s store.Store) {
	ctx := context.Background()
	// Created out of order: ListUsers sorts by username.
	for _, u := range []store.User{
		newUser("dave", "acme", store.RoleMember),
		newUser("alice", "acme", store.RoleAdmin),
		newUser("carol", "globex", store.RoleAdmin),
		newUser("bob", "acme", store.RoleMember),
	} {
		mustCreateUser(t, s, u)
	}
	tests := []struct {
		org  string
		want []string
	}{
		{"acme", []string{"alice", "bob", "dave"}},
		{"globex", []string{"carol"}},
		{"", []string{"alice", "bob", "carol", "dave"}},
		{"initech", nil},
	}
	for _, tc := range tests {
		t.Run("org="+tc.org, func(t *testing.T) {
			users, err := s.ListUsers(ctx, tc.org)
			if err != nil {
				t.Fatalf("ListUsers(%q): got error %v, want nil", tc.org, err)
			}
			var got []string
			for _, u := range users {
				got = append(got, u.Username)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("ListUsers(%q): got %q, want %q", tc.org, got, tc.want)
			}
			for _, u := range users {
				if u.PasswordHash == "" || u.Email == "" || u.Org == "" || !u.Role.Valid() {
					t.Errorf("ListUsers(%q): user %q has empty fields: %+v", tc.org, u.Username, u)
				}
			}
		})
	}
}

func testSetPassword(t *testing.T, s store.Store) {
	ctx := context.Background()
	u := newUser("alice", "acme", store.RoleAdmin)
	mustCreateUser(t, s, u)
	tok := newPersonal("tok-a", "acme", "alice", "ci", at(time.Minute))
	mustCreateToken(t, s, tok)
	before := latest(t, s)

	now := at(time.Hour)
	if err := s.SetPassword(ctx, "alice", "$2a$10$new", now, time.Time{}, time.Time{}); err != nil {
		t.Fatalf("SetPassword: got error %v, want nil", err)
	}
	want := u
	want.PasswordHash = "$2a$10$new"
	want.UpdatedAt = now
	got, err := s.GetUser(ctx, "alice")
	if err != nil {
		t.Fatalf("GetUser: got error %v, want nil", err)
	}
	checkUser(t, "GetUser after SetPassword", got, want)
	checkToken(t, "token after SetPassword without revocation", mustGetToken(t, s, "tok-a"), tok)
	if l := latest(t, s); l != before {
		t.Errorf("Latest after SetPassword without revocation: got %d, want %d", l, before)
	}
}

func testRehashPassword(t *testing.T, s store.Store) {
	ctx := context.Background()
	u := newUser("alice", "acme", store.RoleAdmin)
	mustCreateUser(t, s, u)
	before := latest(t, s)

	ok, err := s.RehashPassword(ctx, "alice", u.PasswordHash, "$2a$12$rehashed")
	if err != nil || !ok {
		t.Fatalf("RehashPassword(current hash): got %v, %v, want true, nil", ok, err)
	}
	want := u
	want.PasswordHash = "$2a$12$rehashed"
	got, err := s.GetUser(ctx, "alice")
	if err != nil {
		t.Fatalf("GetUser: got error %v, want nil", err)
	}
	checkUser(t, "GetUser after RehashPassword (UpdatedAt unchanged)", got, want)

	// A password set meanwhile wins: the stale hash replaces nothing.
	if err := s.SetPassword(ctx, "alice", "$2a$10$changed", at(time.Hour), time.Time{}, time.Time{}); err != nil {
		t.Fatalf("SetPassword: got error %v, want nil", err)
	}
	ok, err = s.RehashPassword(ctx, "alice", "$2a$12$rehashed", "$2a$12$stale")
	if err != nil || ok {
		t.Fatalf("RehashPassword(stale hash): got %v, %v, want false, nil", ok, err)
	}
	if got, _ := s.GetUser(ctx, "alice"); got.PasswordHash != "$2a$10$changed" {
		t.Errorf("hash after a stale RehashPassword: got %q, want the password set meanwhile", got.PasswordHash)
	}
	if ok, err := s.RehashPassword(ctx, "nobody", "$2a$10$x", "$2a$10$y"); err != nil || ok {
		t.Errorf("RehashPassword(missing user): got %v, %v, want false, nil", ok, err)
	}
	if _, err := s.RehashPassword(ctx, "alice", "$2a$10$changed", ""); err == nil {
		t.Error("RehashPassword(empty new hash): got nil error, want one")
	}
	if got, _ := s.GetUser(ctx, "alice"); got.PasswordHash != "$2a$10$changed" {
		t.Errorf("hash after a refused RehashPassword: got %q, want it unchanged", got.PasswordHash)
	}
	if l := latest(t, s); l != before {
		t.Errorf("Latest after RehashPassword: got %d, want %d (nothing revoked)", l, before)
	}
}

func testSetPasswordRevoke(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCreateUser(t, s, newUser("alice", "acme", store.RoleAdmin))
	mustCreateUser(t, s, newUser("bob", "acme", store.RoleMember))
	cut := at(10 * time.Hour)
	now := at(11 * time.Hour)
	expires := at(11*time.Hour + 8760*time.Hour)

	old := newPersonal("tok-old", "acme", "alice", "old", at(time.Hour))
	atCut := newPersonal("tok-at-cut", "acme", "alice", "at-cut", cut)
	after := newPersonal("tok-after", "acme", "alice", "after", at(10*time.Hour+time.Minute))
	already := newPersonal("tok-already", "acme", "alice", "already", at(2*time.Hour))
	bobs := newPersonal("tok-bob", "acme", "bob", "bob", at(time.Hour))
	admin := newAdministrative("tok-admin", "acme", "infra", "alice", at(time.Hour))
	for _, tok := range []store.TokenRecord{old, atCut, after, already, bobs, admin} {
		mustCreateToken(t, s, tok)
	}
	alreadyRev := mustRevoke(t, s, "tok-already", at(3*time.Hour))
	before := latest(t, s)

	if err := s.SetPassword(ctx, "alice", "$2a$10$new", now, cut, expires); err != nil {
		t.Fatalf("SetPassword(revokeBefore): got error %v, want nil", err)
	}
	if l := latest(t, s); l != before+1 {
		t.Fatalf("Latest after SetPassword(revokeBefore): got %d, want %d (one subject entry)", l, before+1)
	}
	entries, err := s.ListRevocations(ctx, before, now)
	if err != nil {
		t.Fatalf("ListRevocations: got error %v, want nil", err)
	}
	if len(entries) != 1 {
		t.Fatalf("ListRevocations(%d): got %d entries, want 1", before, len(entries))
	}
	checkRevocation(t, "subject entry", entries[0], store.Revocation{
		Seq: before + 1, Kind: store.RevokeSubject, Value: "alice", Org: "acme",
		NotBefore: cut, RevokedAt: now, ExpiresAt: expires, Reason: "password changed",
	})

	tests := []struct {
		name        string
		tok         store.TokenRecord
		wantRevoked *time.Time
	}{
		{"issued before cut-off: revoked", old, ptr(now)},
		{"issued at cut-off: kept", atCut, nil},
		{"issued after cut-off: kept", after, nil},
		{"already revoked: keeps first time", already, ptr(alreadyRev.RevokedAt)},
		{"other user: kept", bobs, nil},
		{"administrative token the user created: kept", admin, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.tok
			want.RevokedAt = tc.wantRevoked
			checkToken(t, tc.tok.ID, mustGetToken(t, s, tc.tok.ID), want)
		})
	}
	got, err := s.GetUser(ctx, "alice")
	if err != nil {
		t.Fatalf("GetUser: got error %v, want nil", err)
	}
	if got.PasswordHash != "$2a$10$new" {
		t.Errorf("PasswordHash: got %q, want %q", got.PasswordHash, "$2a$10$new")
	}
}

func testSetPasswordMissing(t *testing.T, s store.Store) {
	ctx := context.Background()
	before := latest(t, s)
	err := s.SetPassword(ctx, "nobody", "$2a$10$x", at(time.Hour), time.Time{}, time.Time{})
	wantErrIs(t, "SetPassword(missing)", err, store.ErrNotFound)
	err = s.SetPassword(ctx, "nobody", "$2a$10$x", at(time.Hour), at(time.Hour), at(100*time.Hour))
	wantErrIs(t, "SetPassword(missing, revokeBefore)", err, store.ErrNotFound)
	if l := latest(t, s); l != before {
		t.Errorf("Latest after failed SetPassword: got %d, want %d", l, before)
	}
}

func testDeleteUser(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCreateUser(t, s, newUser("alice", "acme", store.RoleAdmin))
	mustCreateUser(t, s, newUser("bob", "acme", store.RoleMember))
	now := at(5 * time.Hour)
	expires := at(5*time.Hour + 8760*time.Hour)

	p1 := newPersonal("tok-p1", "acme", "bob", "one", at(time.Hour))
	p2 := newPersonal("tok-p2", "acme", "bob", "two", at(2*time.Hour))
	pRev := newPersonal("tok-prev", "acme", "bob", "three", at(2*time.Hour))
	alices := newPersonal("tok-alice", "acme", "alice", "one", at(time.Hour))
	admin := newAdministrative("tok-admin", "acme", "infra", "bob", at(time.Hour))
	for _, tok := range []store.TokenRecord{p1, p2, pRev, alices, admin} {
		mustCreateToken(t, s, tok)
	}
	prevRev := mustRevoke(t, s, "tok-prev", at(3*time.Hour))
	before := latest(t, s)

	rev, err := s.DeleteUser(ctx, "bob", now, expires)
	if err != nil {
		t.Fatalf("DeleteUser: got error %v, want nil", err)
	}
	checkRevocation(t, "DeleteUser entry", rev, store.Revocation{
		Seq: before + 1, Kind: store.RevokeSubject, Value: "bob", Org: "acme",
		NotBefore: now, RevokedAt: now, ExpiresAt: expires, Reason: "user removed",
	})
	if l := latest(t, s); l != before+1 {
		t.Errorf("Latest after DeleteUser: got %d, want %d (exactly one entry)", l, before+1)
	}
	listed, err := s.ListRevocations(ctx, before, now)
	if err != nil {
		t.Fatalf("ListRevocations: got error %v, want nil", err)
	}
	if len(listed) != 1 {
		t.Fatalf("ListRevocations after DeleteUser: got %d entries, want 1", len(listed))
	}
	checkRevocation(t, "listed DeleteUser entry", listed[0], rev)

	_, err = s.GetUser(ctx, "bob")
	wantErrIs(t, "GetUser(deleted)", err, store.ErrNotFound)
	users, err := s.ListUsers(ctx, "acme")
	if err != nil {
		t.Fatalf("ListUsers: got error %v, want nil", err)
	}
	if len(users) != 1 || users[0].Username != "alice" {
		t.Errorf("ListUsers after DeleteUser: got %d users, want only alice", len(users))
	}

	tests := []struct {
		name        string
		tok         store.TokenRecord
		wantRevoked *time.Time
	}{
		{"personal: revoked", p1, ptr(now)},
		{"second personal: revoked", p2, ptr(now)},
		{"already revoked: keeps first time", pRev, ptr(prevRev.RevokedAt)},
		{"other user's token: kept", alices, nil},
		{"administrative token the user created: kept", admin, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.tok
			want.RevokedAt = tc.wantRevoked
			checkToken(t, tc.tok.ID, mustGetToken(t, s, tc.tok.ID), want)
		})
	}

	t.Run("RevokeToken after subject revocation appends nothing", func(t *testing.T) {
		l := latest(t, s)
		again, err := s.RevokeToken(ctx, "tok-p1", at(6*time.Hour), "again")
		if err != nil {
			t.Fatalf("RevokeToken: got error %v, want nil", err)
		}
		checkRevocation(t, "RevokeToken of a token revoked with its user (the covering entry)", again, rev)
		if got := latest(t, s); got != l {
			t.Errorf("Latest: got %d, want %d", got, l)
		}
		want := p1
		want.RevokedAt = ptr(now)
		checkToken(t, "tok-p1", mustGetToken(t, s, "tok-p1"), want)
	})
}

func testDeleteUserMissing(t *testing.T, s store.Store) {
	before := latest(t, s)
	_, err := s.DeleteUser(context.Background(), "nobody", at(time.Hour), at(100*time.Hour))
	wantErrIs(t, "DeleteUser(missing)", err, store.ErrNotFound)
	if l := latest(t, s); l != before {
		t.Errorf("Latest after failed DeleteUser: got %d, want %d", l, before)
	}
}

func testDeleteUserRecreate(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCreateUser(t, s, newUser("bob", "acme", store.RoleMember))
	if _, err := s.DeleteUser(ctx, "bob", at(time.Hour), at(100*time.Hour)); err != nil {
		t.Fatalf("DeleteUser: got error %v, want nil", err)
	}
	again := newUser("bob", "globex", store.RoleAdmin)
	again.ID = "uid-bob-2"
	mustCreateUser(t, s, again)
	got, err := s.GetUser(ctx, "bob")
	if err != nil {
		t.Fatalf("GetUser: got error %v, want nil", err)
	}
	checkUser(t, "recreated user", got, again)
	_, err = s.DeleteUser(ctx, "bob", at(2*time.Hour), at(100*time.Hour))
	if err != nil {
		t.Fatalf("DeleteUser(recreated): got error %v, want nil", err)
	}
	_, err = s.DeleteUser(ctx, "bob", at(3*time.Hour), at(100*time.Hour))
	wantErrIs(t, "DeleteUser(twice)", err, store.ErrNotFound)
}

// testUserAssignedIDs: an empty ID becomes a unique one, kept by every
// read; a taken ID is ErrConflict even under another username.
func testUserAssignedIDs(t *testing.T, s store.Store) {
	ctx := context.Background()
	seen := map[string]string{}
	for _, name := range []string{"ann", "ben", "cid"} {
		u := newUser(name, "acme", store.RoleMember)
		u.ID = ""
		mustCreateUser(t, s, u)
		got, err := s.GetUser(ctx, name)
		if err != nil {
			t.Fatalf("GetUser(%s): got error %v, want nil", name, err)
		}
		if got.ID == "" || seen[got.ID] != "" {
			t.Fatalf("GetUser(%s).ID: got %q, want a new unique id (seen: %v)", name, got.ID, seen)
		}
		seen[got.ID] = name
		list, err := s.ListUsers(ctx, "acme")
		if err != nil {
			t.Fatalf("ListUsers: got error %v, want nil", err)
		}
		for _, l := range list {
			if l.Username == name && l.ID != got.ID {
				t.Errorf("ListUsers: %s has ID %q, GetUser said %q", name, l.ID, got.ID)
			}
		}
	}
	dup := newUser("dan", "acme", store.RoleMember)
	dup.ID = "uid-shared"
	mustCreateUser(t, s, dup)
	other := newUser("eve", "acme", store.RoleMember)
	other.ID = "uid-shared"
	wantErrIs(t, "CreateUser(duplicate id)", s.CreateUser(ctx, other), store.ErrConflict)
	if _, err := s.GetUser(ctx, "eve"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetUser(eve) after a refused create: got %v, want ErrNotFound", err)
	}
}

// testRecreatedOwnsNoTokens: a user created with a removed user's name
// (a new ID) is a new person for every token rule of the store: listing by
// OwnerID, the revocations of SetPassword and DeleteUser, and live names.
func testRecreatedOwnsNoTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCreateUser(t, s, newUser("ivan", "acme", store.RoleMember))
	// The old ivan's token outlives the removal only in the record
	// (revoked); a second one is recorded revoked already.
	old := newPersonal("tok-old", "acme", "ivan", "deploy", at(time.Minute))
	mustCreateToken(t, s, old)
	if _, err := s.DeleteUser(ctx, "ivan", at(time.Hour), at(100*time.Hour)); err != nil {
		t.Fatalf("DeleteUser: got error %v, want nil", err)
	}
	again := newUser("ivan", "acme", store.RoleMember)
	again.ID = "uid-ivan-2"
	again.CreatedAt, again.UpdatedAt = at(2*time.Hour), at(2*time.Hour)
	mustCreateUser(t, s, again)

	// The same name is free for the new ivan (another OwnerID), even while
	// a live token of the same Owner string but another id holds it.
	oldLive := newPersonal("tok-old-live", "acme", "ivan", "build", at(90*time.Minute))
	mustCreateToken(t, s, oldLive) // an old ivan's token recorded late (a replica's race)
	mine := newPersonal("tok-new", "acme", "ivan", "build", at(3*time.Hour))
	mine.OwnerID = "uid-ivan-2"
	mustCreateToken(t, s, mine)

	list, err := s.ListTokens(ctx, store.TokenFilter{Org: "acme", OwnerID: "uid-ivan-2", IncludeRevoked: true, IncludeExpired: true})
	if err != nil {
		t.Fatalf("ListTokens(OwnerID): got error %v, want nil", err)
	}
	if got := tokenIDs(list); !slices.Equal(got, []string{"tok-new"}) {
		t.Errorf("ListTokens(OwnerID uid-ivan-2): got %v, want [tok-new]", got)
	}
	list, err = s.ListTokens(ctx, store.TokenFilter{Org: "acme", Owner: "ivan", IncludeRevoked: true, IncludeExpired: true})
	if err != nil {
		t.Fatalf("ListTokens(Owner): got error %v, want nil", err)
	}
	if got := tokenIDs(list); !slices.Equal(got, []string{"tok-new", "tok-old-live", "tok-old"}) {
		t.Errorf("ListTokens(Owner ivan): got %v, want [tok-new tok-old-live tok-old] (Owner is the recorded name)", got)
	}

	// The new ivan's password change with revocation revokes his own
	// tokens only.
	if err := s.SetPassword(ctx, "ivan", "$2a$10$new", at(4*time.Hour), at(4*time.Hour), at(100*time.Hour)); err != nil {
		t.Fatalf("SetPassword: got error %v, want nil", err)
	}
	if got := mustGetToken(t, s, "tok-new"); got.RevokedAt == nil {
		t.Errorf("tok-new after SetPassword(revoke): not revoked")
	}
	if got := mustGetToken(t, s, "tok-old-live"); got.RevokedAt != nil {
		t.Errorf("tok-old-live (another ivan's) after the new ivan's SetPassword(revoke): revoked")
	}
	mine2 := newPersonal("tok-new-2", "acme", "ivan", "", at(5*time.Hour))
	mine2.OwnerID = "uid-ivan-2"
	mustCreateToken(t, s, mine2)
	if _, err := s.DeleteUser(ctx, "ivan", at(6*time.Hour), at(100*time.Hour)); err != nil {
		t.Fatalf("DeleteUser(new ivan): got error %v, want nil", err)
	}
	if got := mustGetToken(t, s, "tok-new-2"); got.RevokedAt == nil {
		t.Errorf("tok-new-2 after DeleteUser: not revoked")
	}
	if got := mustGetToken(t, s, "tok-old-live"); got.RevokedAt != nil {
		t.Errorf("tok-old-live (another ivan's) after the new ivan's DeleteUser: revoked")
	}
}

// testUserCreateDefaultTimes pins what a zero CreatedAt and UpdatedAt
// become: the store's clock (never zero), and UpdatedAt = CreatedAt.
func testUserCreateDefaultTimes(t *testing.T, s store.Store) {
	u := newUser("dora", "acme", store.RoleMember)
	u.CreatedAt, u.UpdatedAt = time.Time{}, time.Time{}
	mustCreateUser(t, s, u)
	got, err := s.GetUser(context.Background(), "dora")
	if err != nil {
		t.Fatalf("GetUser: got error %v, want nil", err)
	}
	if got.CreatedAt.IsZero() || got.CreatedAt.Location() != time.UTC {
		t.Errorf("CreatedAt: got %s (%v), want a non-zero UTC time", fmtTime(got.CreatedAt), got.CreatedAt.Location())
	}
	if !got.UpdatedAt.Equal(got.CreatedAt) {
		t.Errorf("UpdatedAt: got %s, want CreatedAt %s", fmtTime(got.UpdatedAt), fmtTime(got.CreatedAt))
	}
}

// testSubjectEntryOutlivesItsTokens covers a lowered tokens.max_ttl: the
// caller's revokeExpires (now plus the new maximum) comes before the expiry
// of a token issued under the old one. The subject entry must stay in the
// list until that token expires, else verifiers would accept it again; and
// that counts the tokens the cut-off covers that were already revoked (on
// their own, or by an earlier cut-off): the newest cut-off alone must
// protect every token issued before it.
func testSubjectEntryOutlivesItsTokens(t *testing.T, s store.Store) {
	ctx := context.Background()
	long := func(id, owner string, issued, life time.Duration) store.TokenRecord {
		tok := newPersonal(id, "acme", owner, "", at(issued))
		tok.Lifetime = life
		tok.ExpiresAt = tok.IssuedAt.Add(life)
		return tok
	}
	const year = 8760 * time.Hour
	mustCreateUser(t, s, newUser("bob", "acme", store.RoleMember))
	mustCreateUser(t, s, newUser("carol", "acme", store.RoleMember))
	bobLong := long("tok-bob-long", "bob", time.Hour, year)
	bobShort := long("tok-bob-short", "bob", 2*time.Hour, time.Hour)
	carolOld := long("tok-carol-old", "carol", time.Hour, year)
	carolOld2 := long("tok-carol-old2", "carol", 4*time.Hour, year)         // after the earlier cut-off, before the later
	carolNew := long("tok-carol-new", "carol", 20*time.Hour, 5*year)        // after the cut-off
	bobRevoked := long("tok-bob-revoked", "bob", time.Hour, 3*year)         // revoked on its own first
	carolRevoked := long("tok-carol-revoked", "carol", 2*time.Hour, 4*year) // revoked by an earlier cut-off
	for _, tok := range []store.TokenRecord{bobLong, bobShort, carolOld, carolNew, bobRevoked, carolRevoked} {
		mustCreateToken(t, s, tok)
	}
	mustRevoke(t, s, bobRevoked.ID, at(3*time.Hour))
	if err := s.SetPassword(ctx, "carol", "$2a$10$earlier", at(3*time.Hour), at(3*time.Hour), at(4*time.Hour)); err != nil {
		t.Fatalf("SetPassword (the earlier cut-off): got error %v, want nil", err)
	}
	mustCreateToken(t, s, carolOld2)

	now := at(10 * time.Hour)
	expires := now.Add(time.Hour) // "now + max_ttl" after max_ttl was lowered to 1h
	del, err := s.DeleteUser(ctx, "bob", now, expires)
	if err != nil {
		t.Fatalf("DeleteUser: got error %v, want nil", err)
	}
	if err := s.SetPassword(ctx, "carol", "$2a$10$new", now, now, expires); err != nil {
		t.Fatalf("SetPassword: got error %v, want nil", err)
	}
	cuts, err := s.ListRevocations(ctx, del.Seq-1, now)
	if err != nil {
		t.Fatalf("ListRevocations: got error %v, want nil", err)
	}
	if len(cuts) != 2 {
		t.Fatalf("ListRevocations: got %d entries, want 2 (bob's and carol's cut-offs)", len(cuts))
	}
	tests := []struct {
		name string
		got  store.Revocation
		want time.Time
	}{
		{"DeleteUser: the longest-lived token it covers, already revoked or not", del, bobRevoked.ExpiresAt},
		{"DeleteUser, listed", cuts[0], bobRevoked.ExpiresAt},
		{"SetPassword: tokens before the cut-off only, the earlier cut-off's too", cuts[1], carolRevoked.ExpiresAt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.got.ExpiresAt.Equal(tc.want) {
				t.Errorf("ExpiresAt: got %s, want %s", fmtTime(tc.got.ExpiresAt), fmtTime(tc.want))
			}
		})
	}

	t.Run("kept by the list and by Prune until then", func(t *testing.T) {
		later := bobLong.ExpiresAt.Add(-time.Second)
		if _, err := s.Prune(ctx, later, later.Add(-time.Hour)); err != nil {
			t.Fatalf("Prune: got error %v, want nil", err)
		}
		got, err := s.ListRevocations(ctx, del.Seq-1, later)
		if err != nil {
			t.Fatalf("ListRevocations: got error %v, want nil", err)
		}
		if len(got) != 2 {
			t.Errorf("ListRevocations a second before the tokens expire: got %d entries, want 2", len(got))
		}
	})

	t.Run("no token revoked: the caller's expiry", func(t *testing.T) {
		mustCreateUser(t, s, newUser("dave", "acme", store.RoleMember))
		rev, err := s.DeleteUser(ctx, "dave", now, expires)
		if err != nil {
			t.Fatalf("DeleteUser: got error %v, want nil", err)
		}
		if !rev.ExpiresAt.Equal(expires) {
			t.Errorf("ExpiresAt: got %s, want %s", fmtTime(rev.ExpiresAt), fmtTime(expires))
		}
	})
}
