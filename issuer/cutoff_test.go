package issuer

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/signet-auth/signet/revocation"
	"github.com/signet-auth/signet/store"
)

// wantNotCutOff fails when a verifier would refuse value for its subject's
// cut-off: the verifier's rule is "iat before the latest cut-off".
func (e *testEnv) wantNotCutOff(value string) {
	e.tb.Helper()
	cl, _ := e.tokenClaims(value)
	entries, err := e.st.ListRevocations(context.Background(), 0, e.clock.Now())
	if err != nil {
		e.tb.Fatal(err)
	}
	for _, en := range entries {
		if en.Kind == store.RevokeSubject && en.Org == cl.Org && en.Value == cl.Subject &&
			time.Unix(cl.IssuedAt, 0).Before(en.NotBefore) {
			e.tb.Errorf("token of %s has iat %v, before the cut-off %v: every verifier refuses it",
				cl.Subject, time.Unix(cl.IssuedAt, 0).UTC(), en.NotBefore)
		}
	}
}

// TestTokenInTheSecondOfACutOff: iat has whole seconds and a subject
// cut-off does not, so a token issued in the same second right after a
// password change that revoked tokens (or after a removed user's name was
// taken again) would carry an iat before the cut-off and be refused by
// every verifier for its whole life. The issuer waits for the next full
// second instead and issues the token then.
func TestTokenInTheSecondOfACutOff(t *testing.T) {
	e := newEnv(t)
	_, bobNamed := e.createToken("bob", map[string]any{"name": "ci"})
	e.clock.Advance(1500 * time.Millisecond) // 10:00:01.5
	wantStatus(t, e.do("PUT", "/users/bob/password", as("alice"),
		jsonBody(map[string]any{"password": "bob-second-password", "revoke_tokens": true})), 204)
	e.clock.Advance(200 * time.Millisecond) // 10:00:01.7
	bob := basic("bob", "bob-second-password")

	for _, tc := range []struct {
		name, method, path string
		opts               []reqOpt
		status             int
		field              string
	}{
		{"user token", "POST", "/user-token", []reqOpt{bob}, http.StatusOK, "user-token"},
		{"named token", "POST", "/tokens", []reqOpt{bob, jsonBody(`{"name":"fresh"}`)}, http.StatusCreated, "token"},
		{"admin copies bob's token", "POST", "/tokens/" + bobNamed.TokenID + "/copy", []reqOpt{as("alice")}, http.StatusCreated, "token"},
		{"admin regenerates bob's token", "POST", "/tokens/" + bobNamed.TokenID + "/regenerate", []reqOpt{as("alice")}, http.StatusCreated, "token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.path, tc.opts...)
			wantStatus(t, r, tc.status)
			value, _ := r.object(t)[tc.field].(string)
			if value == "" {
				t.Fatalf("no %s in %s", tc.field, r.body)
			}
			e.wantNotCutOff(value)
		})
	}

	e.clock.Advance(300 * time.Millisecond) // 10:00:02.0
	r := e.do("POST", "/user-token", bob)
	wantStatus(t, r, http.StatusOK)
	var out userTokenResponse
	r.decode(t, &out)
	e.wantNotCutOff(out.UserToken)

	t.Run("a change without revocation does not hold tokens back", func(t *testing.T) {
		e.clock.Advance(500 * time.Millisecond) // 10:00:02.5
		wantStatus(t, e.do("PUT", "/users/carol/password", as("carol"),
			jsonBody(map[string]any{"password": "carol-second-password"})), 204)
		e.clock.Advance(100 * time.Millisecond)
		wantStatus(t, e.do("POST", "/user-token", basic("carol", "carol-second-password")), http.StatusOK)
	})
	t.Run("a removed user's name taken again", func(t *testing.T) {
		e.clock.Advance(700 * time.Millisecond) // 10:00:03.3
		wantStatus(t, e.do("DELETE", "/users/erin", as("dave")), 204)
		e.clock.Advance(100 * time.Millisecond)
		wantStatus(t, e.do("POST", "/users", as("dave"), jsonBody(map[string]any{
			"username": "erin", "password": "erin-new-password", "email": "erin@example.com", "role": "member"})), 201)
		e.clock.Advance(100 * time.Millisecond) // 10:00:03.5
		r := e.do("POST", "/user-token", basic("erin", "erin-new-password"))
		wantStatus(t, r, http.StatusOK)
		var out userTokenResponse
		r.decode(t, &out)
		e.wantNotCutOff(out.UserToken)
	})
}

// hookStore runs before ahead of CreateToken and ReplaceToken: the moment
// between a request's authorization and the token's record.
type hookStore struct {
	store.Store
	before func()
}

func (h hookStore) CreateToken(ctx context.Context, t store.TokenRecord) error {
	h.before()
	return h.Store.CreateToken(ctx, t)
}

func (h hookStore) ReplaceToken(ctx context.Context, oldID string, next store.TokenRecord, now, validUntil time.Time) (store.Revocation, error) {
	h.before()
	return h.Store.ReplaceToken(ctx, oldID, next, now, validUntil)
}

// TestOwnerChangedWhileIssuing: a user removed, or given a new password,
// after a request for their token was authorized but before the token was
// recorded is a change the store could not apply to that token. The token
// is revoked and withheld; nothing is handed out.
func TestOwnerChangedWhileIssuing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(e *testEnv) error
		status int
	}{
		{"no change", func(*testEnv) error { return nil }, 0},
		{"user removed", func(e *testEnv) error {
			now := e.clock.Now()
			_, err := e.st.DeleteUser(context.Background(), "bob", now, now.Add(time.Hour))
			return err
		}, http.StatusConflict},
		{"password changed, tokens revoked", func(e *testEnv) error {
			now := e.clock.Now()
			return e.st.SetPassword(context.Background(), "bob", bobNewHash(e), now, now, now.Add(time.Hour))
		}, http.StatusConflict},
		{"password changed", func(e *testEnv) error {
			now := e.clock.Now()
			return e.st.SetPassword(context.Background(), "bob", bobNewHash(e), now, time.Time{}, time.Time{})
		}, http.StatusConflict},
	} {
		for _, call := range []struct {
			name, method string
			path         func(id string) string
			opts         []reqOpt
			okStatus     int
		}{
			{"user token", "POST", func(string) string { return "/user-token" }, []reqOpt{as("bob")}, http.StatusOK},
			{"named token", "POST", func(string) string { return "/tokens" }, []reqOpt{as("bob"), jsonBody(`{"name":"n2"}`)}, http.StatusCreated},
			{"admin copies", "POST", func(id string) string { return "/tokens/" + id + "/copy" }, []reqOpt{as("alice")}, http.StatusCreated},
			{"admin regenerates", "POST", func(id string) string { return "/tokens/" + id + "/regenerate" }, []reqOpt{as("alice")}, http.StatusCreated},
		} {
			t.Run(tc.name+"/"+call.name, func(t *testing.T) {
				e := newEnv(t)
				_, orig := e.createToken("bob", map[string]any{"name": "n1"})
				e.clock.Advance(time.Second)
				armed := false
				hooked := e.withStore(hookStore{Store: e.st, before: func() {
					if armed {
						armed = false
						if err := tc.change(e); err != nil {
							t.Errorf("change: %v", err)
						}
					}
				}})
				armed = true
				r := hooked.do(call.method, call.path(orig.TokenID), call.opts...)
				if tc.status == 0 {
					wantStatus(t, r, call.okStatus)
					return
				}
				wantError(t, r, tc.status, ECodeConflict)
				if m := r.object(t); m["token"] != nil || m["user-token"] != nil {
					t.Errorf("a withheld token's value left the issuer: %s", r.body)
				}
				evs, err := e.st.ListAudit(context.Background(), store.AuditFilter{Org: "acme", Action: "token.revoke"})
				if err != nil {
					t.Fatal(err)
				}
				if len(evs) != 1 || !strings.HasPrefix(evs[0].Detail, "withheld") || evs[0].ClientIP == "" || evs[0].Actor == "" {
					t.Errorf("audit of the withheld token: got %+v, want one token.revoke event with actor and client address", evs)
				}
				// A refused call is no change: only the original's creation
				// and the withholding are in the audit log.
				all, err := e.st.ListAudit(context.Background(), store.AuditFilter{Org: "acme"})
				if err != nil {
					t.Fatal(err)
				}
				for _, ev := range all {
					switch {
					case ev.Action == "token.revoke" || (ev.Action == "token.create" && ev.Target == orig.TokenID):
					case strings.HasPrefix(ev.Action, "token."):
						t.Errorf("a refused %s left the audit event %s %s (%s)", call.name, ev.Action, ev.Target, ev.Detail)
					}
				}
				recs, err := e.st.ListTokens(context.Background(), store.TokenFilter{Org: "acme", Owner: "bob", Now: e.clock.Now()})
				if err != nil {
					t.Fatal(err)
				}
				for _, rec := range recs {
					if rec.ID != orig.TokenID || tc.name == "user removed" || tc.name == "password changed, tokens revoked" {
						t.Errorf("token %s (%q) is still live after its owner changed", rec.ID, rec.Name)
					}
				}
			})
		}
	}
}

// bobNewHash hashes a new password for bob.
func bobNewHash(e *testEnv) string {
	e.tb.Helper()
	h, err := HashPassword("bob-another-password", PasswordPolicy{BcryptCost: bcrypt.MinCost})
	if err != nil {
		e.tb.Fatal(err)
	}
	return h
}

// withStore returns a copy of e whose server uses st (over the same data).
func (e *testEnv) withStore(st store.Store) *testEnv {
	e.tb.Helper()
	cfg := e.srv.cfg
	cfg.Registry = prometheus.NewRegistry()
	srv, err := New(cfg, st, e.keys)
	if err != nil {
		e.tb.Fatalf("New: %v", err)
	}
	c := *e
	c.srv = srv
	return &c
}

// TestKeyRevokedTokenListed: a token whose signing key was withdrawn is
// shown revoked by every call that shows it, not only by GET /user-token.
func TestKeyRevokedTokenListed(t *testing.T) {
	e := newEnv(t)
	value, tok := e.createToken("bob", map[string]any{"name": "k"})
	_, other := e.createToken("alice", map[string]any{"name": "k2"})
	kid := e.record(tok.TokenID).KeyID
	now := e.clock.Now()
	if _, err := e.st.RevokeKey(context.Background(), kid, now, now.Add(8760*time.Hour)); err != nil {
		t.Fatal(err)
	}
	wantRevoked := func(t *testing.T, where string, m map[string]any) {
		t.Helper()
		if m["revoked"] != true || m["active"] != false {
			t.Errorf("%s: got revoked=%v active=%v, want revoked=true active=false", where, m["revoked"], m["active"])
		}
	}
	wantRevoked(t, "GET /user-token", e.do("GET", "/user-token?token="+value, as("bob")).object(t))
	wantRevoked(t, "GET /tokens/{id}", e.do("GET", "/tokens/"+tok.TokenID, as("bob")).object(t))
	var list struct {
		Tokens []map[string]any `json:"tokens"`
	}
	e.do("GET", "/tokens", as("alice")).decode(t, &list)
	if len(list.Tokens) != 2 {
		t.Fatalf("GET /tokens: got %d tokens, want 2", len(list.Tokens))
	}
	for _, m := range list.Tokens {
		if m["token_id"] == tok.TokenID || m["token_id"] == other.TokenID {
			wantRevoked(t, "GET /tokens", m) // both were signed by the one key
		}
	}
}

// TestRevocationLookupsConcurrent: lookups racing with new entries, written
// straight to the store as the CLI and other replicas do, all end up seeing
// every withdrawn key and the latest cut-off: a lookup waits for the feed
// to read the store after it was asked.
func TestRevocationLookupsConcurrent(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	f := e.srv.feed
	now := e.clock.Now()
	keyRef := func(kid string) revocation.TokenRef { return revocation.TokenRef{ID: "x", KeyID: kid} }
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				if g == 0 && i%4 == 0 {
					if _, err := e.st.RevokeKey(ctx, fmt.Sprintf("kid-%d", i), now, now.Add(time.Hour)); err != nil {
						t.Errorf("revoke key: %v", err)
					}
					got, err := f.revoked(ctx, now, keyRef(fmt.Sprintf("kid-%d", i)))
					if err != nil || !got[0] {
						t.Errorf("kid-%d right after its withdrawal: got %v, %v; want revoked", i, got, err)
					}
				}
				if _, err := f.revoked(ctx, now, keyRef("kid-0")); err != nil {
					t.Errorf("revoked: %v", err)
				}
				if _, err := f.cutoff(ctx, "acme", "bob", now); err != nil {
					t.Errorf("cutoff: %v", err)
				}
			}
		})
	}
	wg.Wait()
	cut := now.Add(time.Second)
	if err := e.st.SetPassword(ctx, "bob", bobNewHash(e), cut, cut, cut.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var refs []revocation.TokenRef
	for i := range 20 {
		refs = append(refs, keyRef(fmt.Sprintf("kid-%d", i)))
	}
	got, err := f.revoked(ctx, now, refs...)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		if want := i%4 == 0; r != want {
			t.Errorf("kid-%d: got revoked=%v, want %v", i, r, want)
		}
	}
	if got, err := f.cutoff(ctx, "acme", "bob", now); err != nil || !got.Equal(cut) {
		t.Errorf("cut-off of acme/bob: got %v, %v; want %v", got, err, cut)
	}
	if got, _ := f.cutoff(ctx, "acme", "bob", cut.Add(2*time.Hour)); !got.IsZero() {
		t.Errorf("cut-off after its entry expired: got %v, want none", got)
	}
}
