package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/signet-auth/signet/store"
)

func invalidInputTests() []subtest {
	return []subtest{
		{"Invalid/CreateUser", testInvalidCreateUser},
		{"Invalid/CreateToken", testInvalidCreateToken},
		{"Invalid/ReplaceToken", testInvalidReplaceToken},
		{"Invalid/Revocations", testInvalidRevocations},
		{"Invalid/Users", testInvalidUserChanges},
		{"Invalid/Lists", testInvalidLists},
	}
}

func testInvalidCreateUser(t *testing.T, s store.Store) {
	ctx := context.Background()
	tests := []struct {
		name   string
		mutate func(u *store.User)
	}{
		{"empty username", func(u *store.User) { u.Username = "" }},
		{"empty org", func(u *store.User) { u.Org = "" }},
		{"unknown role", func(u *store.User) { u.Role = "root" }},
		{"empty role", func(u *store.User) { u.Role = "" }},
		{"unknown source", func(u *store.User) { u.Source = "kerberos" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := newUser("mallory", "acme", store.RoleMember)
			tc.mutate(&u)
			wantInvalid(t, "CreateUser", s.CreateUser(ctx, u))
			users, err := s.ListUsers(ctx, "")
			if err != nil {
				t.Fatalf("ListUsers: got error %v, want nil", err)
			}
			if len(users) != 0 {
				t.Errorf("ListUsers after rejected CreateUser: got %d users, want 0", len(users))
			}
		})
	}
}

func testInvalidCreateToken(t *testing.T, s store.Store) {
	ctx := context.Background()
	tests := []struct {
		name   string
		mutate func(tok *store.TokenRecord)
	}{
		{"empty id", func(tok *store.TokenRecord) { tok.ID = "" }},
		{"unknown type", func(tok *store.TokenRecord) { tok.Type = "service" }},
		{"empty type", func(tok *store.TokenRecord) { tok.Type = "" }},
		{"empty org", func(tok *store.TokenRecord) { tok.Org = "" }},
		{"personal without owner", func(tok *store.TokenRecord) { tok.Owner = "" }},
		{"personal without owner id", func(tok *store.TokenRecord) { tok.OwnerID = "" }},
		{"administrative with an owner id", func(tok *store.TokenRecord) {
			tok.Type = store.TokenAdministrative
			tok.Subject = "token:" + tok.ID
			tok.Owner = ""
		}},
		{"zero issued-at", func(tok *store.TokenRecord) { tok.IssuedAt = time.Time{} }},
		{"zero expiry", func(tok *store.TokenRecord) { tok.ExpiresAt = time.Time{} }},
		{"expiry before issue", func(tok *store.TokenRecord) { tok.ExpiresAt = tok.IssuedAt.Add(-time.Second) }},
		{"administrative with an owner", func(tok *store.TokenRecord) {
			tok.Type = store.TokenAdministrative
			tok.Subject = "token:" + tok.ID
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := newPersonal("tok-bad", "acme", "alice", "bad", at(time.Minute))
			tc.mutate(&tok)
			wantInvalid(t, "CreateToken", s.CreateToken(ctx, tok))
			list, err := s.ListTokens(ctx, store.TokenFilter{IncludeRevoked: true, IncludeExpired: true})
			if err != nil {
				t.Fatalf("ListTokens: got error %v, want nil", err)
			}
			if len(list) != 0 {
				t.Errorf("ListTokens after rejected CreateToken: got %d tokens, want 0", len(list))
			}
		})
	}
}

func testInvalidReplaceToken(t *testing.T, s store.Store) {
	ctx := context.Background()
	old := newPersonal("tok-old", "acme", "alice", "ci", at(time.Minute))
	mustCreateToken(t, s, old)
	before := latest(t, s)
	tests := []struct {
		name   string
		mutate func(next *store.TokenRecord)
		now    time.Time
	}{
		{"empty next id", func(n *store.TokenRecord) { n.ID = "" }, at(time.Hour)},
		{"next without expiry", func(n *store.TokenRecord) { n.ExpiresAt = time.Time{} }, at(time.Hour)},
		{"next id equals old id", func(n *store.TokenRecord) { n.ID = "tok-old" }, at(time.Hour)},
		{"zero now", func(*store.TokenRecord) {}, time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			next := regenerated(old, "tok-next", at(time.Hour))
			tc.mutate(&next)
			_, err := s.ReplaceToken(ctx, old.ID, next, tc.now, time.Time{})
			if err == nil {
				t.Fatalf("ReplaceToken: got nil error, want an error")
			}
			if errors.Is(err, store.ErrNotFound) {
				t.Fatalf("ReplaceToken: got %v, want an invalid-input or conflict error", err)
			}
			checkToken(t, "old token untouched", mustGetToken(t, s, old.ID), old)
			if l := latest(t, s); l != before {
				t.Errorf("Latest: got %d, want %d", l, before)
			}
		})
	}
}

func testInvalidRevocations(t *testing.T, s store.Store) {
	ctx := context.Background()
	mustCreateToken(t, s, newPersonal("tok-1", "acme", "alice", "ci", at(time.Minute)))
	before := latest(t, s)
	tests := []struct {
		name string
		call func() error
	}{
		{"RevokeToken with zero now", func() error {
			_, err := s.RevokeToken(ctx, "tok-1", time.Time{}, "x")
			return err
		}},
		{"RevokeKey with empty kid", func() error {
			_, err := s.RevokeKey(ctx, "", at(time.Hour), at(100*time.Hour))
			return err
		}},
		{"RevokeKey with zero now", func() error {
			_, err := s.RevokeKey(ctx, "kid-1", time.Time{}, at(100*time.Hour))
			return err
		}},
		{"RevokeKey with zero expiry", func() error {
			_, err := s.RevokeKey(ctx, "kid-1", at(time.Hour), time.Time{})
			return err
		}},
		// An entry that expires at once would never reach a verifier.
		{"RevokeKey expiring at now", func() error {
			_, err := s.RevokeKey(ctx, "kid-1", at(time.Hour), at(time.Hour))
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantInvalid(t, tc.name, tc.call())
			if l := latest(t, s); l != before {
				t.Errorf("Latest: got %d, want %d", l, before)
			}
		})
	}
	if got := mustGetToken(t, s, "tok-1"); got.RevokedAt != nil {
		t.Errorf("tok-1 RevokedAt: got %s, want nil", fmtTime(*got.RevokedAt))
	}
}

func testInvalidUserChanges(t *testing.T, s store.Store) {
	ctx := context.Background()
	u := newUser("bob", "acme", store.RoleMember)
	mustCreateUser(t, s, u)
	mustCreateToken(t, s, newPersonal("tok-bob", "acme", "bob", "ci", at(time.Minute)))
	before := latest(t, s)
	tests := []struct {
		name string
		call func() error
	}{
		{"SetPassword with empty hash", func() error {
			return s.SetPassword(ctx, "bob", "", at(time.Hour), time.Time{}, time.Time{})
		}},
		{"SetPassword with zero now", func() error {
			return s.SetPassword(ctx, "bob", "$2a$10$z", time.Time{}, time.Time{}, time.Time{})
		}},
		{"SetPassword revoking without entry expiry", func() error {
			return s.SetPassword(ctx, "bob", "$2a$10$z", at(time.Hour), at(time.Hour), time.Time{})
		}},
		{"DeleteUser with zero now", func() error {
			_, err := s.DeleteUser(ctx, "bob", time.Time{}, at(100*time.Hour))
			return err
		}},
		{"DeleteUser without entry expiry", func() error {
			_, err := s.DeleteUser(ctx, "bob", at(time.Hour), time.Time{})
			return err
		}},
		{"SetPassword revoking with an entry expiring before now", func() error {
			return s.SetPassword(ctx, "bob", "$2a$10$z", at(time.Hour), at(time.Hour), at(time.Minute))
		}},
		{"DeleteUser with an entry expiring at now", func() error {
			_, err := s.DeleteUser(ctx, "bob", at(time.Hour), at(time.Hour))
			return err
		}},
		{"UpdateUser with an unknown role", func() error {
			v := u
			v.Role = "root"
			return s.UpdateUser(ctx, v, at(time.Hour), time.Time{}, time.Time{})
		}},
		{"UpdateUser with zero now", func() error {
			return s.UpdateUser(ctx, u, time.Time{}, time.Time{}, time.Time{})
		}},
		{"UpdateUser revoking with an entry expiring at now", func() error {
			return s.UpdateUser(ctx, u, at(time.Hour), at(time.Hour), at(time.Hour))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantInvalid(t, tc.name, tc.call())
			got, err := s.GetUser(ctx, "bob")
			if err != nil {
				t.Fatalf("GetUser: got error %v, want nil (user kept)", err)
			}
			checkUser(t, "user untouched", got, u)
			if tok := mustGetToken(t, s, "tok-bob"); tok.RevokedAt != nil {
				t.Errorf("tok-bob RevokedAt: got %s, want nil", fmtTime(*tok.RevokedAt))
			}
			if l := latest(t, s); l != before {
				t.Errorf("Latest: got %d, want %d", l, before)
			}
		})
	}
}

func testInvalidLists(t *testing.T, s store.Store) {
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
	}{
		{"ListTokens with negative limit", func() error {
			_, err := s.ListTokens(ctx, store.TokenFilter{Limit: -1})
			return err
		}},
		{"ListAudit with negative limit", func() error {
			_, err := s.ListAudit(ctx, store.AuditFilter{Limit: -1})
			return err
		}},
		{"AppendAudit without action", func() error {
			return s.AppendAudit(ctx, store.AuditEvent{Time: t0, Org: "acme", Actor: "alice"})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantInvalid(t, tc.name, tc.call())
		})
	}
	events, err := s.ListAudit(ctx, store.AuditFilter{})
	if err != nil {
		t.Fatalf("ListAudit: got error %v, want nil", err)
	}
	if len(events) != 0 {
		t.Errorf("ListAudit after rejected AppendAudit: got %d events, want 0", len(events))
	}
}
