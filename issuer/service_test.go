package issuer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/signet-auth/signet/store"
)

// TestCLIPrincipal: the offline commands' Service (no keys, no feed) applies
// the same rules as the HTTP API, as the principal "cli": removal revokes
// and cuts off for max_ttl, a password change may revoke, the audit trail
// names the CLI, and what only users or the operator may do stays theirs.
func TestCLIPrincipal(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxTTL = 48 * time.Hour; c.DefaultTTL = 24 * time.Hour })
	_, bobTok := e.createToken("bob", map[string]any{"name": "ci"})
	cfg := e.srv.cfg
	svc, err := NewService(cfg, e.st)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	wantCode := func(t *testing.T, err error, code string) {
		t.Helper()
		var e *Error
		if !errors.As(err, &e) || e.Code != code {
			t.Fatalf("got error %v, want code %s", err, code)
		}
	}

	if _, err := svc.RemoveUser(ctx, CLI(), "bob"); err != nil {
		t.Fatalf("RemoveUser: %v", err)
	}
	if rec := e.record(bobTok.TokenID); rec.RevokedAt == nil {
		t.Errorf("bob's token after the CLI removed bob: not revoked")
	}
	entries, err := e.st.ListRevocations(ctx, 0, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	var cut *store.Revocation
	for i := range entries {
		if entries[i].Kind == store.RevokeSubject && entries[i].Value == "bob" {
			cut = &entries[i]
		}
	}
	if cut == nil || !cut.ExpiresAt.Equal(cut.NotBefore.Add(cfg.MaxTTL)) {
		t.Errorf("bob's cut-off: got %+v, want one lasting max_ttl (%s)", cut, cfg.MaxTTL)
	}
	evs, err := e.st.ListAudit(ctx, store.AuditFilter{Org: "acme", Action: "user.remove"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Actor != "cli" || evs[0].ClientIP != "local" || evs[0].Target != "bob" {
		t.Errorf("audit of the CLI's removal: got %+v, want one user.remove by cli from local", evs)
	}
	if _, err := svc.RemoveUser(ctx, CLI(), "bob"); err == nil {
		t.Errorf("removing bob twice: no error")
	} else {
		wantCode(t, err, ECodeNotFound)
	}

	_, carolTok := e.createToken("carol", map[string]any{"name": "ci"})
	e.clock.Advance(time.Second)
	if _, err := svc.SetPassword(ctx, CLI(), "carol", "short", false); err == nil {
		t.Errorf("a too-short password from the CLI: accepted")
	} else {
		wantCode(t, err, ECodeInvalid)
	}
	if _, err := svc.SetPassword(ctx, CLI(), "carol", "carol-new-password", true); err != nil {
		t.Fatalf("SetPassword: %v", err)
	}
	if rec := e.record(carolTok.TokenID); rec.RevokedAt == nil {
		t.Errorf("carol's token after passwd --revoke-tokens: not revoked")
	}
	wantStatus(t, e.do("POST", "/user-token", basic("carol", "carol-new-password")), 200)

	u, err := svc.CreateUser(ctx, CLI(), NewUser{Username: "bob", Password: "bob-is-back-1", Email: "bob@example.com", Role: store.RoleMember, Org: "acme"})
	if err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if u.ID == "" || u.ID == bobTok.UserID {
		t.Errorf("the new bob's id %q: want a new one (the old bob's was %q)", u.ID, bobTok.UserID)
	}

	if _, err := svc.CreateToken(ctx, CLI(), IssueRequest{Name: "x"}); err == nil {
		t.Errorf("the CLI created a token")
	} else {
		wantCode(t, err, ECodeForbidden)
	}
	member, err := e.st.GetUser(ctx, "carol")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.WithdrawKey(ctx, &Principal{User: member}, "kid", time.Hour); err == nil {
		t.Errorf("a user withdrew a key")
	} else {
		wantCode(t, err, ECodeForbidden)
	}
	if err := svc.WithdrawKey(ctx, CLI(), "some-kid", time.Hour); err != nil {
		t.Fatalf("WithdrawKey: %v", err)
	}
	evs, err = e.st.ListAudit(ctx, store.AuditFilter{Action: "key.revoke"})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Actor != "cli" || evs[0].Target != "some-kid" {
		t.Errorf("audit of the key withdrawal: got %+v", evs)
	}
}
