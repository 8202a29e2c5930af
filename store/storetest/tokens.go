package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/signet-auth/signet/store"
)

func tokenTests() []subtest {
	return []subtest{
		{"Token/CreateGet", testTokenCreateGet},
		{"Token/Scopes", testTokenScopes},
		{"Token/TimePrecision", testTokenTimePrecision},
		{"Token/CreateDuplicateID", testTokenDuplicateID},
		{"Token/NameUniqueness", testTokenNameUniqueness},
		{"Token/GetMissing", testTokenGetMissing},
		{"Token/List", testTokenList},
		{"Token/Revoke", testTokenRevoke},
		{"Token/RevokeIdempotent", testTokenRevokeIdempotent},
		{"Token/RevokeMissing", testTokenRevokeMissing},
		{"Token/Replace", testTokenReplace},
		{"Token/ReplaceTwice", testTokenReplaceTwice},
		{"Token/ReplaceRevoked", testTokenReplaceRevoked},
		{"Token/ReplaceExpired", testTokenReplaceExpired},
		{"Token/ReplaceMissing", testTokenReplaceMissing},
		{"Token/ReplaceAtomic", testTokenReplaceAtomic},
		{"Token/ReplaceChain", testTokenReplaceChain},
	}
}

func testTokenCreateGet(t *testing.T, s store.Store) {
	tests := []struct {
		name string
		tok  store.TokenRecord
	}{
		{"personal", newPersonal("tok-1", "acme", "alice", "ci", at(time.Minute))},
		{"administrative", newAdministrative("tok-2", "acme", "deploy", "alice", at(2*time.Minute))},
		{"copied, with parent and custom lifetime", func() store.TokenRecord {
			tok := newPersonal("tok-3", "acme", "alice", "copy", at(3*time.Minute))
			tok.ParentID = "tok-1"
			tok.Lifetime = 72*time.Hour + 30*time.Second
			tok.ExpiresAt = tok.IssuedAt.Add(tok.Lifetime)
			tok.KeyID = "kid-rotated"
			return tok
		}()},
		{"unnamed user-token", func() store.TokenRecord {
			tok := newPersonal("tok-4", "acme", "alice", "", at(4*time.Minute))
			tok.Description = ""
			return tok
		}()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mustCreateToken(t, s, tc.tok)
			checkToken(t, "GetToken", mustGetToken(t, s, tc.tok.ID), tc.tok)
		})
	}
}

func testTokenScopes(t *testing.T, s store.Store) {
	tests := []struct {
		name   string
		scopes []string
		want   []string
	}{
		{"nil", nil, []string{}},
		{"empty", []string{}, []string{}},
		{"one", []string{"reports:read"}, []string{"reports:read"}},
		{"order kept", []string{"z:write", "a:read", "m:*"}, []string{"z:write", "a:read", "m:*"}},
		{"awkward characters", []string{`quote"d`, "comma,scope", "{brace}", "ünïcode", "back\\slash", "*"},
			[]string{`quote"d`, "comma,scope", "{brace}", "ünïcode", "back\\slash", "*"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := newPersonal("tok-scopes-"+tc.name, "acme", "alice", "", at(time.Duration(i)*time.Minute))
			tok.Scopes = tc.scopes
			mustCreateToken(t, s, tok)
			got := mustGetToken(t, s, tok.ID)
			if !slices.Equal(got.Scopes, tc.want) {
				t.Errorf("Scopes: got %q, want %q", got.Scopes, tc.want)
			}
			if len(tc.want) == 0 && tc.scopes != nil && got.Scopes == nil {
				t.Errorf("Scopes: got nil, want a non-nil empty slice")
			}
			list, err := s.ListTokens(context.Background(), store.TokenFilter{Org: "acme", IncludeExpired: true, IncludeRevoked: true})
			if err != nil {
				t.Fatalf("ListTokens: got error %v, want nil", err)
			}
			for _, l := range list {
				if l.ID == tok.ID && !slices.Equal(l.Scopes, tc.want) {
					t.Errorf("ListTokens Scopes: got %q, want %q", l.Scopes, tc.want)
				}
			}
		})
	}
}

func testTokenTimePrecision(t *testing.T, s store.Store) {
	tokyo := time.FixedZone("JST", 9*3600)
	tests := []struct {
		name   string
		issued time.Time
	}{
		{"microseconds", time.Date(2026, 5, 6, 7, 8, 9, 987654000, time.UTC)},
		{"one microsecond", time.Date(2026, 5, 6, 7, 8, 9, 1000, time.UTC)},
		{"whole second", time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)},
		{"non-UTC zone", time.Date(2026, 5, 6, 7, 8, 9, 123456000, tokyo)},
		{"far future", time.Date(2199, 12, 31, 23, 59, 59, 999999000, time.UTC)},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := newPersonal("tok-time-"+string(rune('a'+i)), "acme", "alice", "", tc.issued)
			tok.ExpiresAt = tc.issued.Add(90*time.Minute + 1500*time.Microsecond)
			tok.Lifetime = 90*time.Minute + 1500*time.Microsecond
			mustCreateToken(t, s, tok)
			got := mustGetToken(t, s, tok.ID)
			checkToken(t, "GetToken", got, tok)
			rev := mustRevoke(t, s, tok.ID, tc.issued.Add(time.Microsecond))
			for _, line := range timeDiff("Revocation.RevokedAt", rev.RevokedAt, tc.issued.Add(time.Microsecond)) {
				t.Error(line)
			}
			for _, line := range timeDiff("Revocation.ExpiresAt", rev.ExpiresAt, tok.ExpiresAt) {
				t.Error(line)
			}
			got = mustGetToken(t, s, tok.ID)
			if got.RevokedAt == nil {
				t.Fatalf("RevokedAt: got nil, want %s", fmtTime(rev.RevokedAt))
			}
			for _, line := range timeDiff("Token.RevokedAt", *got.RevokedAt, tc.issued.Add(time.Microsecond)) {
				t.Error(line)
			}
		})
	}
}

func testTokenDuplicateID(t *testing.T, s store.Store) {
	orig := newPersonal("tok-dup", "acme", "alice", "first", at(time.Minute))
	mustCreateToken(t, s, orig)
	tests := []struct {
		name string
		tok  store.TokenRecord
	}{
		{"same everything", orig},
		{"different name and owner", newPersonal("tok-dup", "acme", "bob", "second", at(2*time.Minute))},
		{"different org", newAdministrative("tok-dup", "globex", "x", "carol", at(2*time.Minute))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := s.CreateToken(context.Background(), tc.tok)
			wantErrIs(t, "CreateToken(duplicate id)", err, store.ErrConflict)
			checkToken(t, "original after duplicate", mustGetToken(t, s, "tok-dup"), orig)
		})
	}
}

func testTokenNameUniqueness(t *testing.T, s store.Store) {
	ctx := context.Background()
	tests := []struct {
		name string
		// setup runs in org (unique per case) before the second create.
		setup   func(t *testing.T, org string)
		second  func(org string) store.TokenRecord
		wantErr error
	}{
		{
			name: "same org, owner and name while live",
			setup: func(t *testing.T, org string) {
				mustCreateToken(t, s, newPersonal(org+"-1", org, "alice", "ci", at(0)))
			},
			second:  func(org string) store.TokenRecord { return newPersonal(org+"-2", org, "alice", "ci", at(time.Hour)) },
			wantErr: store.ErrConflict,
		},
		{
			name: "other owner",
			setup: func(t *testing.T, org string) {
				mustCreateToken(t, s, newPersonal(org+"-1", org, "alice", "ci", at(0)))
			},
			second: func(org string) store.TokenRecord { return newPersonal(org+"-2", org, "bob", "ci", at(time.Hour)) },
		},
		{
			name: "other org",
			setup: func(t *testing.T, org string) {
				mustCreateToken(t, s, newPersonal(org+"-1", org, "alice", "ci", at(0)))
			},
			second: func(org string) store.TokenRecord {
				return newPersonal(org+"-2", org+"-elsewhere", "alice", "ci", at(time.Hour))
			},
		},
		{
			name: "other name",
			setup: func(t *testing.T, org string) {
				mustCreateToken(t, s, newPersonal(org+"-1", org, "alice", "ci", at(0)))
			},
			second: func(org string) store.TokenRecord { return newPersonal(org+"-2", org, "alice", "cd", at(time.Hour)) },
		},
		{
			name:   "empty names never collide",
			setup:  func(t *testing.T, org string) { mustCreateToken(t, s, newPersonal(org+"-1", org, "alice", "", at(0))) },
			second: func(org string) store.TokenRecord { return newPersonal(org+"-2", org, "alice", "", at(time.Hour)) },
		},
		{
			name: "name of a revoked token is free",
			setup: func(t *testing.T, org string) {
				mustCreateToken(t, s, newPersonal(org+"-1", org, "alice", "ci", at(0)))
				mustRevoke(t, s, org+"-1", at(time.Minute))
			},
			second: func(org string) store.TokenRecord { return newPersonal(org+"-2", org, "alice", "ci", at(time.Hour)) },
		},
		{
			name: "name of an expired token is free",
			setup: func(t *testing.T, org string) {
				mustCreateToken(t, s, newPersonal(org+"-1", org, "alice", "ci", at(0)))
			},
			// The first expires at t0+24h; the second is issued after that.
			second: func(org string) store.TokenRecord { return newPersonal(org+"-2", org, "alice", "ci", at(25*time.Hour)) },
		},
		{
			name: "administrative tokens share the org's namespace",
			setup: func(t *testing.T, org string) {
				mustCreateToken(t, s, newAdministrative(org+"-1", org, "deploy", "alice", at(0)))
			},
			second: func(org string) store.TokenRecord {
				return newAdministrative(org+"-2", org, "deploy", "bob", at(time.Hour))
			},
			wantErr: store.ErrConflict,
		},
		{
			name: "administrative and personal names do not collide",
			setup: func(t *testing.T, org string) {
				mustCreateToken(t, s, newAdministrative(org+"-1", org, "deploy", "alice", at(0)))
			},
			second: func(org string) store.TokenRecord {
				return newPersonal(org+"-2", org, "alice", "deploy", at(time.Hour))
			},
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			org := "org" + string(rune('a'+i))
			tc.setup(t, org)
			second := tc.second(org)
			err := s.CreateToken(ctx, second)
			if tc.wantErr != nil {
				wantErrIs(t, "CreateToken(second)", err, tc.wantErr)
				_, err := s.GetToken(ctx, second.ID)
				wantErrIs(t, "GetToken(rejected)", err, store.ErrNotFound)
				return
			}
			if err != nil {
				t.Fatalf("CreateToken(second): got error %v, want nil", err)
			}
			checkToken(t, "second", mustGetToken(t, s, second.ID), second)
		})
	}
}

func testTokenGetMissing(t *testing.T, s store.Store) {
	_, err := s.GetToken(context.Background(), "no-such-token")
	wantErrIs(t, "GetToken(missing)", err, store.ErrNotFound)
}

func testTokenList(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := at(10 * time.Hour)
	a1 := newPersonal("a1", "acme", "alice", "a1", at(1*time.Minute))
	a2 := newPersonal("a2", "acme", "alice", "a2", at(2*time.Minute)) // revoked
	a3 := newPersonal("a3", "acme", "alice", "a3", at(3*time.Minute)) // expired at now
	a3.ExpiresAt = at(4 * time.Hour)
	a3.Lifetime = a3.ExpiresAt.Sub(a3.IssuedAt)
	b1 := newPersonal("b1", "acme", "bob", "b1", at(4*time.Minute))
	adm := newAdministrative("adm", "acme", "deploy", "alice", at(5*time.Minute))
	c1 := newPersonal("c1", "globex", "carol", "c1", at(6*time.Minute))
	// Inserted out of order: ListTokens orders by IssuedAt, newest first.
	for _, tok := range []store.TokenRecord{b1, c1, a1, adm, a3, a2} {
		mustCreateToken(t, s, tok)
	}
	mustRevoke(t, s, "a2", at(time.Hour))

	all := store.TokenFilter{IncludeRevoked: true, IncludeExpired: true, Now: now}
	tests := []struct {
		name string
		f    store.TokenFilter
		want []string
	}{
		{"everything", all, []string{"c1", "adm", "b1", "a3", "a2", "a1"}},
		{"org", store.TokenFilter{Org: "acme", IncludeRevoked: true, IncludeExpired: true, Now: now},
			[]string{"adm", "b1", "a3", "a2", "a1"}},
		{"default hides revoked and expired", store.TokenFilter{Org: "acme", Now: now},
			[]string{"adm", "b1", "a1"}},
		{"include revoked", store.TokenFilter{Org: "acme", IncludeRevoked: true, Now: now},
			[]string{"adm", "b1", "a2", "a1"}},
		{"include expired", store.TokenFilter{Org: "acme", IncludeExpired: true, Now: now},
			[]string{"adm", "b1", "a3", "a1"}},
		{"zero Now does not filter expiry", store.TokenFilter{Org: "acme"},
			[]string{"adm", "b1", "a3", "a1"}},
		{"before expiry the token is live", store.TokenFilter{Org: "acme", Now: at(time.Hour)},
			[]string{"adm", "b1", "a3", "a1"}},
		{"owner", store.TokenFilter{Org: "acme", Owner: "alice", IncludeRevoked: true, IncludeExpired: true, Now: now},
			[]string{"a3", "a2", "a1"}},
		{"owner across orgs", store.TokenFilter{Owner: "carol", Now: now}, []string{"c1"}},
		{"type administrative", store.TokenFilter{Org: "acme", Type: store.TokenAdministrative, Now: now},
			[]string{"adm"}},
		{"type personal and owner", store.TokenFilter{Org: "acme", Owner: "bob", Type: store.TokenPersonal, Now: now},
			[]string{"b1"}},
		{"limit keeps the newest", store.TokenFilter{Org: "acme", IncludeRevoked: true, IncludeExpired: true, Now: now, Limit: 2},
			[]string{"adm", "b1"}},
		{"limit above count", store.TokenFilter{Org: "acme", Now: now, Limit: 100},
			[]string{"adm", "b1", "a1"}},
		{"expires by (inclusive)", store.TokenFilter{Org: "acme", Now: now, ExpiresBy: at(24*time.Hour + 4*time.Minute)},
			[]string{"b1", "a1"}},
		{"expires by across orgs with revoked", store.TokenFilter{IncludeRevoked: true, Now: now, ExpiresBy: at(24*time.Hour + 6*time.Minute)},
			[]string{"c1", "b1", "a2", "a1"}},
		{"expires by before every live token", store.TokenFilter{Org: "acme", Now: now, ExpiresBy: at(24 * time.Hour)}, nil},
		{"unknown org", store.TokenFilter{Org: "initech", IncludeRevoked: true, IncludeExpired: true}, nil},
		{"unknown owner", store.TokenFilter{Org: "acme", Owner: "mallory", IncludeRevoked: true}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.ListTokens(ctx, tc.f)
			if err != nil {
				t.Fatalf("ListTokens(%+v): got error %v, want nil", tc.f, err)
			}
			if ids := tokenIDs(got); !slices.Equal(ids, tc.want) && !(len(ids) == 0 && len(tc.want) == 0) {
				t.Fatalf("ListTokens(%+v): got %q, want %q", tc.f, ids, tc.want)
			}
		})
	}
	t.Run("records are complete", func(t *testing.T) {
		got, err := s.ListTokens(ctx, all)
		if err != nil {
			t.Fatalf("ListTokens: got error %v, want nil", err)
		}
		want := map[string]store.TokenRecord{"a1": a1, "a2": a2, "a3": a3, "b1": b1, "adm": adm, "c1": c1}
		for _, g := range got {
			w := want[g.ID]
			if g.ID == "a2" {
				w.RevokedAt = ptr(at(time.Hour))
			}
			checkToken(t, "ListTokens "+g.ID, g, w)
		}
	})
}

func testTokenRevoke(t *testing.T, s store.Store) {
	ctx := context.Background()
	tok := newPersonal("tok-r", "acme", "alice", "ci", at(time.Minute))
	mustCreateToken(t, s, tok)
	before := latest(t, s)
	now := at(time.Hour)
	rev, err := s.RevokeToken(ctx, "tok-r", now, "leaked in a log")
	if err != nil {
		t.Fatalf("RevokeToken: got error %v, want nil", err)
	}
	want := store.Revocation{Seq: before + 1, Kind: store.RevokeToken, Value: "tok-r", Org: "acme",
		RevokedAt: now, ExpiresAt: tok.ExpiresAt, Reason: "leaked in a log"}
	checkRevocation(t, "RevokeToken", rev, want)
	if l := latest(t, s); l != rev.Seq {
		t.Errorf("Latest: got %d, want %d", l, rev.Seq)
	}
	wantTok := tok
	wantTok.RevokedAt = ptr(now)
	checkToken(t, "GetToken after revoke", mustGetToken(t, s, "tok-r"), wantTok)

	got, err := s.GetTokenRevocation(ctx, "tok-r")
	if err != nil {
		t.Fatalf("GetTokenRevocation: got error %v, want nil", err)
	}
	checkRevocation(t, "GetTokenRevocation", got, want)
	list, err := s.ListRevocations(ctx, 0, now)
	if err != nil {
		t.Fatalf("ListRevocations: got error %v, want nil", err)
	}
	if len(list) != 1 {
		t.Fatalf("ListRevocations: got %d entries, want 1", len(list))
	}
	checkRevocation(t, "ListRevocations", list[0], want)
}

func testTokenRevokeIdempotent(t *testing.T, s store.Store) {
	ctx := context.Background()
	tok := newPersonal("tok-r", "acme", "alice", "ci", at(time.Minute))
	mustCreateToken(t, s, tok)
	first, err := s.RevokeToken(ctx, "tok-r", at(time.Hour), "first")
	if err != nil {
		t.Fatalf("RevokeToken: got error %v, want nil", err)
	}
	for i, now := range []time.Time{at(2 * time.Hour), at(time.Hour), at(3 * time.Hour)} {
		again, err := s.RevokeToken(ctx, "tok-r", now, "again")
		if err != nil {
			t.Fatalf("RevokeToken #%d: got error %v, want nil", i+2, err)
		}
		checkRevocation(t, "repeated RevokeToken", again, first)
	}
	if l := latest(t, s); l != first.Seq {
		t.Errorf("Latest after repeats: got %d, want %d", l, first.Seq)
	}
	wantTok := tok
	wantTok.RevokedAt = ptr(at(time.Hour))
	checkToken(t, "GetToken after repeats", mustGetToken(t, s, "tok-r"), wantTok)
	list, err := s.ListRevocations(ctx, 0, at(time.Hour))
	if err != nil {
		t.Fatalf("ListRevocations: got error %v, want nil", err)
	}
	if len(list) != 1 {
		t.Errorf("ListRevocations: got %d entries, want 1", len(list))
	}
}

func testTokenRevokeMissing(t *testing.T, s store.Store) {
	before := latest(t, s)
	_, err := s.RevokeToken(context.Background(), "no-such-token", at(time.Hour), "x")
	wantErrIs(t, "RevokeToken(missing)", err, store.ErrNotFound)
	if l := latest(t, s); l != before {
		t.Errorf("Latest: got %d, want %d", l, before)
	}
}

// regenerated returns the token regenerate would make from old at now.
func regenerated(old store.TokenRecord, id string, now time.Time) store.TokenRecord {
	next := old
	next.ID = id
	next.IssuedAt = now
	next.ExpiresAt = now.Add(old.Lifetime)
	next.RevokedAt = nil
	next.ReplacedBy = ""
	next.ParentID = old.ID
	next.Scopes = slices.Clone(old.Scopes)
	if next.Type == store.TokenAdministrative {
		next.Subject = "token:" + id
	}
	return next
}

func testTokenReplace(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, old := range []store.TokenRecord{
		newPersonal("tok-old-p", "acme", "alice", "ci", at(time.Minute)),
		newAdministrative("tok-old-a", "acme", "deploy", "alice", at(time.Minute)),
	} {
		t.Run(string(old.Type), func(t *testing.T) {
			mustCreateToken(t, s, old)
			before := latest(t, s)
			now := at(2 * time.Hour)
			next := regenerated(old, old.ID+"-next", now)
			rev, err := s.ReplaceToken(ctx, old.ID, next, now, time.Time{})
			if err != nil {
				t.Fatalf("ReplaceToken: got error %v, want nil", err)
			}
			checkRevocation(t, "ReplaceToken entry", rev, store.Revocation{
				Seq: before + 1, Kind: store.RevokeToken, Value: old.ID, Org: "acme",
				RevokedAt: now, ExpiresAt: old.ExpiresAt, Reason: "regenerated",
			})
			if l := latest(t, s); l != before+1 {
				t.Errorf("Latest: got %d, want %d", l, before+1)
			}
			wantOld := old
			wantOld.RevokedAt = ptr(now)
			wantOld.ReplacedBy = next.ID
			checkToken(t, "old token", mustGetToken(t, s, old.ID), wantOld)
			checkToken(t, "new token", mustGetToken(t, s, next.ID), next)
			got, err := s.GetTokenRevocation(ctx, old.ID)
			if err != nil {
				t.Fatalf("GetTokenRevocation(old): got error %v, want nil", err)
			}
			checkRevocation(t, "GetTokenRevocation(old)", got, rev)
			_, err = s.GetTokenRevocation(ctx, next.ID)
			wantErrIs(t, "GetTokenRevocation(new)", err, store.ErrNotFound)
		})
	}
}

func testTokenReplaceTwice(t *testing.T, s store.Store) {
	ctx := context.Background()
	old := newPersonal("tok-old", "acme", "alice", "ci", at(time.Minute))
	mustCreateToken(t, s, old)
	first := regenerated(old, "tok-next-1", at(time.Hour))
	if _, err := s.ReplaceToken(ctx, old.ID, first, at(time.Hour), time.Time{}); err != nil {
		t.Fatalf("ReplaceToken(first): got error %v, want nil", err)
	}
	before := latest(t, s)
	second := regenerated(old, "tok-next-2", at(2*time.Hour))
	second.Name = "other-name"
	_, err := s.ReplaceToken(ctx, old.ID, second, at(2*time.Hour), time.Time{})
	wantErrIs(t, "ReplaceToken(second)", err, store.ErrConflict)
	_, err = s.GetToken(ctx, "tok-next-2")
	wantErrIs(t, "GetToken(second next)", err, store.ErrNotFound)
	if l := latest(t, s); l != before {
		t.Errorf("Latest: got %d, want %d", l, before)
	}
	if got := mustGetToken(t, s, old.ID); got.ReplacedBy != "tok-next-1" {
		t.Errorf("old.ReplacedBy: got %q, want %q", got.ReplacedBy, "tok-next-1")
	}
}

func testTokenReplaceRevoked(t *testing.T, s store.Store) {
	ctx := context.Background()
	old := newPersonal("tok-old", "acme", "alice", "ci", at(time.Minute))
	mustCreateToken(t, s, old)
	revoked := mustRevoke(t, s, old.ID, at(time.Hour))
	before := latest(t, s)
	next := regenerated(old, "tok-next", at(2*time.Hour))
	rev, err := s.ReplaceToken(ctx, old.ID, next, at(2*time.Hour), time.Time{})
	if err != nil {
		t.Fatalf("ReplaceToken(revoked): got error %v, want nil", err)
	}
	checkRevocation(t, "ReplaceToken entry", rev, revoked)
	if l := latest(t, s); l != before {
		t.Errorf("Latest: got %d, want %d (nothing appended)", l, before)
	}
	wantOld := old
	wantOld.RevokedAt = ptr(at(time.Hour))
	wantOld.ReplacedBy = "tok-next"
	checkToken(t, "old token", mustGetToken(t, s, old.ID), wantOld)
	checkToken(t, "new token", mustGetToken(t, s, next.ID), next)
}

func testTokenReplaceExpired(t *testing.T, s store.Store) {
	ctx := context.Background()
	old := newPersonal("tok-old", "acme", "alice", "ci", at(time.Minute))
	mustCreateToken(t, s, old)
	now := old.ExpiresAt.Add(48 * time.Hour)
	next := regenerated(old, "tok-next", now)
	rev, err := s.ReplaceToken(ctx, old.ID, next, now, time.Time{})
	if err != nil {
		t.Fatalf("ReplaceToken(expired): got error %v, want nil", err)
	}
	if rev.Kind != store.RevokeToken || rev.Value != old.ID {
		t.Errorf("ReplaceToken entry: got %s %q, want token %q", rev.Kind, rev.Value, old.ID)
	}
	wantOld := old
	wantOld.RevokedAt = ptr(now)
	wantOld.ReplacedBy = "tok-next"
	checkToken(t, "old token", mustGetToken(t, s, old.ID), wantOld)
	checkToken(t, "new token", mustGetToken(t, s, next.ID), next)
}

func testTokenReplaceMissing(t *testing.T, s store.Store) {
	ctx := context.Background()
	next := newPersonal("tok-next", "acme", "alice", "ci", at(time.Hour))
	before := latest(t, s)
	_, err := s.ReplaceToken(ctx, "no-such-token", next, at(time.Hour), time.Time{})
	wantErrIs(t, "ReplaceToken(missing)", err, store.ErrNotFound)
	_, err = s.GetToken(ctx, "tok-next")
	wantErrIs(t, "GetToken(next)", err, store.ErrNotFound)
	if l := latest(t, s); l != before {
		t.Errorf("Latest: got %d, want %d", l, before)
	}
}

func testTokenReplaceAtomic(t *testing.T, s store.Store) {
	ctx := context.Background()
	other := newPersonal("tok-other", "acme", "alice", "taken", at(time.Minute))
	mustCreateToken(t, s, other)
	tests := []struct {
		name string
		next func(old store.TokenRecord) store.TokenRecord
	}{
		{"next id already exists", func(old store.TokenRecord) store.TokenRecord {
			return regenerated(old, "tok-other", at(time.Hour))
		}},
		{"next name taken by another live token", func(old store.TokenRecord) store.TokenRecord {
			n := regenerated(old, old.ID+"-next", at(time.Hour))
			n.Name = "taken"
			return n
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			old := newPersonal("tok-old-"+string(rune('a'+i)), "acme", "alice", "mine-"+string(rune('a'+i)), at(2*time.Minute))
			mustCreateToken(t, s, old)
			before := latest(t, s)
			next := tc.next(old)
			_, err := s.ReplaceToken(ctx, old.ID, next, at(time.Hour), time.Time{})
			wantErrIs(t, "ReplaceToken", err, store.ErrConflict)
			checkToken(t, "old token untouched", mustGetToken(t, s, old.ID), old)
			checkToken(t, "other token untouched", mustGetToken(t, s, other.ID), other)
			if l := latest(t, s); l != before {
				t.Errorf("Latest: got %d, want %d", l, before)
			}
			_, err = s.GetTokenRevocation(ctx, old.ID)
			wantErrIs(t, "GetTokenRevocation(old)", err, store.ErrNotFound)
			// The failed call left the token replaceable.
			ok := regenerated(old, old.ID+"-retry", at(2*time.Hour))
			if _, err := s.ReplaceToken(ctx, old.ID, ok, at(2*time.Hour), time.Time{}); err != nil {
				t.Fatalf("ReplaceToken(retry): got error %v, want nil", err)
			}
		})
	}
}

func testTokenReplaceChain(t *testing.T, s store.Store) {
	ctx := context.Background()
	a := newPersonal("tok-a", "acme", "alice", "ci", at(time.Minute))
	mustCreateToken(t, s, a)
	b := regenerated(a, "tok-b", at(time.Hour))
	if _, err := s.ReplaceToken(ctx, "tok-a", b, at(time.Hour), time.Time{}); err != nil {
		t.Fatalf("ReplaceToken(a→b): got error %v, want nil", err)
	}
	c := regenerated(b, "tok-c", at(2*time.Hour))
	if _, err := s.ReplaceToken(ctx, "tok-b", c, at(2*time.Hour), time.Time{}); err != nil {
		t.Fatalf("ReplaceToken(b→c): got error %v, want nil", err)
	}
	for _, tc := range []struct{ id, replacedBy, parent string }{
		{"tok-a", "tok-b", ""}, {"tok-b", "tok-c", "tok-a"}, {"tok-c", "", "tok-b"},
	} {
		got := mustGetToken(t, s, tc.id)
		if got.ReplacedBy != tc.replacedBy || got.ParentID != tc.parent {
			t.Errorf("%s: got ReplacedBy %q ParentID %q, want %q %q", tc.id, got.ReplacedBy, got.ParentID, tc.replacedBy, tc.parent)
		}
	}
	live, err := s.ListTokens(ctx, store.TokenFilter{Org: "acme", Now: at(2 * time.Hour)})
	if err != nil {
		t.Fatalf("ListTokens: got error %v, want nil", err)
	}
	if ids := tokenIDs(live); !slices.Equal(ids, []string{"tok-c"}) {
		t.Errorf("live tokens: got %q, want [tok-c]", ids)
	}
}
