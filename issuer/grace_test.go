package issuer

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signet-auth/signet/store"
)

// Regenerate with a grace period: POST /tokens/{id}/regenerate {"grace":…}
// keeps the old value working until previous_valid_until, everywhere the
// issuer answers for it, and not a second longer. The clock is injected:
// nothing here sleeps on it.

// regenerated is the answer of a regenerate.
type regeneratedJSON struct {
	createdTokenJSON
	PreviousValidUntil string `json:"previous_valid_until"`
}

// tokenView is what GET /tokens/{id} and GET /user-token say of a token.
type tokenView struct {
	TokenID    string  `json:"token_id"`
	Active     bool    `json:"active"`
	Revoked    bool    `json:"revoked"`
	RevokedAt  *string `json:"revoked_at"`
	ValidUntil *string `json:"valid_until"`
	Expired    bool    `json:"expired"`
	ReplacedBy string  `json:"replaced_by"`
}

// regenerate regenerates id as user with body (nil: none) and wants 201.
func (e *testEnv) regenerate(user, id string, body any) regeneratedJSON {
	e.tb.Helper()
	opts := []reqOpt{as(user)}
	if body != nil {
		opts = append(opts, jsonBody(body))
	}
	r := e.do("POST", "/tokens/"+id+"/regenerate", opts...)
	wantStatus(e.tb, r, http.StatusCreated)
	var out regeneratedJSON
	r.decode(e.tb, &out)
	return out
}

// view reads GET /tokens/{id} as user.
func (e *testEnv) view(user, id string) tokenView {
	e.tb.Helper()
	r := e.do("GET", "/tokens/"+id, as(user))
	wantStatus(e.tb, r, http.StatusOK)
	var v tokenView
	r.decode(e.tb, &v)
	return v
}

// info reads GET /user-token?token= as user.
func (e *testEnv) info(user, value string) tokenView {
	e.tb.Helper()
	r := e.do("GET", "/user-token?token="+value, as(user))
	wantStatus(e.tb, r, http.StatusOK)
	var v tokenView
	r.decode(e.tb, &v)
	return v
}

// introspectActive reports what POST /introspect says of value to user.
func (e *testEnv) introspectActive(user, value string) bool {
	e.tb.Helper()
	r := e.do("POST", "/introspect", as(user), form("token", value))
	wantStatus(e.tb, r, http.StatusOK)
	var out struct {
		Active bool `json:"active"`
	}
	r.decode(e.tb, &out)
	return out.Active
}

// listed reports whether GET /tokens (no filters: live tokens) shows id.
func (e *testEnv) listed(user, id string) bool {
	e.tb.Helper()
	r := e.do("GET", "/tokens", as(user))
	wantStatus(e.tb, r, http.StatusOK)
	var out struct {
		Tokens []tokenView `json:"tokens"`
	}
	r.decode(e.tb, &out)
	return slices.ContainsFunc(out.Tokens, func(v tokenView) bool { return v.TokenID == id })
}

// logVersion is the revocation list's version as the store has it.
func (e *testEnv) logVersion() int64 {
	e.tb.Helper()
	st, err := e.st.RevocationState(context.Background())
	if err != nil {
		e.tb.Fatalf("revocation state: %v", err)
	}
	return st.Latest
}

// auditDetails returns the details of org's events with action, newest first.
func (e *testEnv) auditDetails(org, action string) []string {
	e.tb.Helper()
	evs, err := e.st.ListAudit(context.Background(), store.AuditFilter{Org: org, Action: action})
	if err != nil {
		e.tb.Fatalf("list audit: %v", err)
	}
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Detail)
	}
	return out
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func TestRegenerateWithGrace(t *testing.T) {
	e := newEnv(t)
	oldValue, old := e.createToken("bob", map[string]any{"name": "deploy", "scopes": []string{"reports:read"}, "expires_in": "10h"})
	e.clock.Advance(time.Hour)
	start := e.clock.Now()
	next := e.regenerate("bob", old.TokenID, map[string]any{"grace": "1h"})
	until := start.Add(time.Hour)
	if next.PreviousValidUntil != rfc3339(until) {
		t.Errorf("previous_valid_until: got %q, want %q", next.PreviousValidUntil, rfc3339(until))
	}
	if next.TokenID == old.TokenID || next.Name != "deploy" || !next.Active || next.ExpiresAt != rfc3339(start.Add(10*time.Hour)) {
		t.Errorf("new token: got %+v, want an active token named deploy for 10h from now", next.createdTokenJSON)
	}
	version := e.logVersion()

	// wantOld checks every place the issuer answers for the old value.
	wantOld := func(t *testing.T, active bool) {
		t.Helper()
		now := e.clock.Now()
		v := e.view("bob", old.TokenID)
		if v.Active != active || v.Revoked == active || v.ValidUntil == nil || *v.ValidUntil != rfc3339(until) || v.ReplacedBy != next.TokenID {
			t.Errorf("GET /tokens/{old} at %s: got %+v (valid_until %v), want active %v, revoked %v, valid_until %s, replaced by the new one",
				rfc3339(now), v, deref(v.ValidUntil), active, !active, rfc3339(until))
		}
		wantRevokedAt := ""
		if !active {
			wantRevokedAt = rfc3339(until)
		}
		if deref(v.RevokedAt) != wantRevokedAt {
			t.Errorf("GET /tokens/{old} revoked_at at %s: got %q, want %q", rfc3339(now), deref(v.RevokedAt), wantRevokedAt)
		}
		if i := e.info("bob", oldValue); i.Active != active || i.Revoked == active || deref(i.ValidUntil) != rfc3339(until) {
			t.Errorf("GET /user-token of the old value at %s: got %+v, want active %v, valid_until %s", rfc3339(now), i, active, rfc3339(until))
		}
		if got := e.introspectActive("bob", oldValue); got != active {
			t.Errorf("introspection of the old value at %s: got active %v, want %v", rfc3339(now), got, active)
		}
		if got := e.listed("bob", old.TokenID); got != active {
			t.Errorf("GET /tokens lists the old token at %s: got %v, want %v", rfc3339(now), got, active)
		}
		if !e.introspectActive("bob", next.Token) {
			t.Errorf("introspection of the new value at %s: got inactive, want active", rfc3339(now))
		}
	}
	wantOld(t, true)
	r := e.do("GET", "/revocations/"+old.TokenID)
	wantStatus(t, r, http.StatusOK)
	if got := r.object(t)["valid_until"]; got != rfc3339(until) {
		t.Errorf("GET /revocations/{old} valid_until: got %v, want %s", got, rfc3339(until))
	}
	if d := e.auditDetails("acme", "token.regenerate"); len(d) == 0 ||
		!strings.Contains(d[0], "grace 1h") || !strings.Contains(d[0], rfc3339(until)) || !strings.Contains(d[0], next.TokenID) {
		t.Errorf("audit: got %q, want the grace and the time the old value stops", d)
	}

	e.clock.Advance(time.Hour - time.Second)
	wantOld(t, true)
	e.clock.Advance(time.Second)
	wantOld(t, false)
	if v := e.logVersion(); v != version {
		t.Errorf("revocation list version when the grace period ended: got %d, want %d (no new entry)", v, version)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestRegenerateGraceInput: what grace accepts (what expires_in accepts),
// and that a refused one changes nothing.
func TestRegenerateGraceInput(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxRegenerateGrace = 2 * time.Hour })
	for _, tc := range []struct {
		name  string
		body  string
		grace time.Duration // -1: refused
	}{
		{"duration string", `{"grace":"90m"}`, 90 * time.Minute},
		{"seconds", `{"grace":3600}`, time.Hour},
		{"seconds as a string", `{"grace":"120"}`, 2 * time.Minute},
		{"small", `{"grace":"2s"}`, 2 * time.Second},
		{"the maximum", `{"grace":"2h"}`, 2 * time.Hour},
		{"zero", `{"grace":0}`, 0},
		{"zero duration", `{"grace":"0s"}`, 0},
		{"null", `{"grace":null}`, 0},
		{"empty object", `{}`, 0},
		{"past the maximum", `{"grace":"2h1s"}`, -1},
		{"seconds past the maximum", `{"grace":7201}`, -1},
		{"negative", `{"grace":"-1h"}`, -1},
		{"negative seconds", `{"grace":-5}`, -1},
		{"negative seconds that overflow", `{"grace":-18446744070}`, -1},
		{"huge", `{"grace":99999999999999999999}`, -1},
		{"under a second", `{"grace":"500ms"}`, -1},
		{"not a duration", `{"grace":"soon"}`, -1},
		{"empty string", `{"grace":""}`, -1},
		{"boolean", `{"grace":true}`, -1},
		{"object", `{"grace":{}}`, -1},
		{"fraction", `{"grace":1.5}`, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			value, tok := e.createToken("bob", map[string]any{"name": "g-" + tc.name, "expires_in": "10h"})
			before := e.logVersion()
			r := e.do("POST", "/tokens/"+tok.TokenID+"/regenerate", as("bob"), jsonBody(tc.body))
			if tc.grace < 0 {
				wantError(t, r, http.StatusBadRequest, ECodeInvalid)
				if msg, _ := r.object(t)["message"].(string); !strings.Contains(msg, "grace") {
					t.Errorf("message %q: want it to name the field grace", msg)
				}
				if rec := e.record(tok.TokenID); rec.RevokedAt != nil || rec.ReplacedBy != "" || e.logVersion() != before {
					t.Errorf("a refused regenerate changed something: %+v, version %d → %d", rec, before, e.logVersion())
				}
				return
			}
			wantStatus(t, r, http.StatusCreated)
			var out regeneratedJSON
			r.decode(t, &out)
			now := e.clock.Now()
			if want := rfc3339(now.Add(tc.grace)); out.PreviousValidUntil != want {
				t.Errorf("previous_valid_until: got %q, want %q", out.PreviousValidUntil, want)
			}
			if got := e.introspectActive("bob", value); got != (tc.grace > 0) {
				t.Errorf("old value active right after: got %v, want %v", got, tc.grace > 0)
			}
		})
	}
	t.Run("turned off", func(t *testing.T) {
		off := newEnv(t, func(c *Config) { c.MaxRegenerateGrace = -1 })
		_, tok := off.createToken("bob", map[string]any{"name": "x"})
		r := off.do("POST", "/tokens/"+tok.TokenID+"/regenerate", as("bob"), jsonBody(`{"grace":"1h"}`))
		wantError(t, r, http.StatusBadRequest, ECodeInvalid)
		if msg, _ := r.object(t)["message"].(string); !strings.Contains(msg, "tokens.max_regenerate_grace") {
			t.Errorf("message %q: want it to name tokens.max_regenerate_grace", msg)
		}
		off.regenerate("bob", tok.TokenID, map[string]any{"grace": 0})
	})
	t.Run("default maximum is 24h", func(t *testing.T) {
		def := newEnv(t)
		_, tok := def.createToken("bob", map[string]any{"name": "x", "expires_in": "48h"})
		r := def.do("POST", "/tokens/"+tok.TokenID+"/regenerate", as("bob"), jsonBody(`{"grace":"24h1s"}`))
		wantError(t, r, http.StatusBadRequest, ECodeInvalid)
		if msg, _ := r.object(t)["message"].(string); !strings.Contains(msg, "24h") {
			t.Errorf("message %q: want it to name the maximum, 24h", msg)
		}
		def.regenerate("bob", tok.TokenID, map[string]any{"grace": "24h"})
	})
}

// TestExpiresInNegativeOverflow: a number of seconds so far below zero that
// it overflows when counted in nanoseconds is not a lifetime of a few
// seconds.
func TestExpiresInNegativeOverflow(t *testing.T) {
	e := newEnv(t)
	// -18446744070 s is 3.7 s once multiplied by 1e9 in 64 bits.
	r := e.do("POST", "/user-token", as("bob"), jsonBody(`{"expires_in":-18446744070}`))
	wantError(t, r, http.StatusBadRequest, ECodeInvalid)
	r = e.do("POST", "/tokens", as("bob"), jsonBody(`{"name":"x","expires_in":"-18446744070"}`))
	wantError(t, r, http.StatusBadRequest, ECodeInvalid)
}

// TestRegenerateGraceCappedAtExpiry: a grace period never outlives the old
// token; previous_valid_until and the audit event say so.
func TestRegenerateGraceCappedAtExpiry(t *testing.T) {
	e := newEnv(t)
	value, old := e.createToken("bob", map[string]any{"name": "short", "expires_in": "30m"})
	e.clock.Advance(10 * time.Minute)
	next := e.regenerate("bob", old.TokenID, map[string]any{"grace": "1h"})
	exp := testStart.Add(30 * time.Minute)
	if next.PreviousValidUntil != rfc3339(exp) {
		t.Errorf("previous_valid_until: got %q, want the old token's expiry %q", next.PreviousValidUntil, rfc3339(exp))
	}
	if d := e.auditDetails("acme", "token.regenerate"); len(d) == 0 || !strings.Contains(d[0], "its own expiry") {
		t.Errorf("audit: got %q, want it to say the grace period ends at the old token's expiry", d)
	}
	if !e.introspectActive("bob", value) {
		t.Error("old value during the capped grace period: got inactive, want active")
	}
	e.clock.Advance(20 * time.Minute)
	if e.introspectActive("bob", value) {
		t.Error("old value at its expiry: got active, want inactive")
	}

	t.Run("of an expired token", func(t *testing.T) {
		value, old := e.createToken("bob", map[string]any{"name": "gone", "expires_in": "1h"})
		e.clock.Advance(2 * time.Hour)
		next := e.regenerate("bob", old.TokenID, map[string]any{"grace": "1h"})
		if want := rfc3339(e.clock.Now().Add(-time.Hour)); next.PreviousValidUntil != want {
			t.Errorf("previous_valid_until: got %q, want its expiry %q", next.PreviousValidUntil, want)
		}
		if e.introspectActive("bob", value) {
			t.Error("expired old value: got active, want inactive")
		}
	})
	t.Run("of a revoked token", func(t *testing.T) {
		value, old := e.createToken("bob", map[string]any{"name": "revoked"})
		wantStatus(t, e.do("DELETE", "/tokens/"+old.TokenID, as("bob")), http.StatusNoContent)
		revokedAt := e.clock.Now()
		e.clock.Advance(time.Minute)
		next := e.regenerate("bob", old.TokenID, map[string]any{"grace": "1h"})
		if next.PreviousValidUntil != rfc3339(revokedAt) {
			t.Errorf("previous_valid_until: got %q, want when it was revoked, %q", next.PreviousValidUntil, rfc3339(revokedAt))
		}
		if e.introspectActive("bob", value) {
			t.Error("a revoked token came back to life with a grace period")
		}
	})
	t.Run("without grace", func(t *testing.T) {
		value, old := e.createToken("bob", map[string]any{"name": "plain"})
		next := e.regenerate("bob", old.TokenID, nil)
		if next.PreviousValidUntil != rfc3339(e.clock.Now()) {
			t.Errorf("previous_valid_until: got %q, want now, %q", next.PreviousValidUntil, rfc3339(e.clock.Now()))
		}
		if e.introspectActive("bob", value) {
			t.Error("old value without grace: got active, want inactive at once")
		}
		if v := e.view("bob", old.TokenID); v.ValidUntil != nil || !v.Revoked {
			t.Errorf("old token without grace: got %+v, want revoked and no valid_until", v)
		}
	})
}

// TestRevokeDuringGrace: revoking the old value while its grace period runs
// revokes it at once, by DELETE and by RFC 7009 alike, and says so in the
// audit log.
func TestRevokeDuringGrace(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		revoke func(t *testing.T, id, value string)
	}{
		{"DELETE /tokens/{id}", func(t *testing.T, id, _ string) {
			wantStatus(t, e.do("DELETE", "/tokens/"+id, as("bob")), http.StatusNoContent)
		}},
		{"POST /revoke", func(t *testing.T, _, value string) {
			wantStatus(t, e.do("POST", "/revoke", as("bob"), form("token", value)), http.StatusOK)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			value, old := e.createToken("bob", map[string]any{"name": "r-" + tc.name})
			e.regenerate("bob", old.TokenID, map[string]any{"grace": "1h"})
			e.clock.Advance(10 * time.Minute)
			before := e.logVersion()
			tc.revoke(t, old.TokenID, value)
			now := e.clock.Now()
			if e.introspectActive("bob", value) {
				t.Error("old value right after its revocation: got active, want inactive")
			}
			v := e.view("bob", old.TokenID)
			if v.Active || !v.Revoked || deref(v.RevokedAt) != rfc3339(now) || deref(v.ValidUntil) != rfc3339(now) {
				t.Errorf("old token: got %+v (revoked_at %q, valid_until %q), want revoked now", v, deref(v.RevokedAt), deref(v.ValidUntil))
			}
			if got := e.logVersion(); got != before+1 {
				t.Errorf("revocation list version: got %d, want %d (one entry in force at once)", got, before+1)
			}
			r := e.do("GET", "/revocations/"+old.TokenID)
			wantStatus(t, r, http.StatusOK)
			if _, ok := r.object(t)["valid_until"]; ok {
				t.Errorf("GET /revocations/{old}: got %s, want the entry in force at once (no valid_until)", r.body)
			}
			if d := e.auditDetails("acme", "token.revoke"); len(d) == 0 || !strings.Contains(d[0], "grace period") {
				t.Errorf("audit: got %q, want the revocation to say it ended a grace period", d)
			}
			// Again: nothing more happens.
			tc.revoke(t, old.TokenID, value)
			if got := e.logVersion(); got != before+1 {
				t.Errorf("revocation list version after a repeat: got %d, want %d", got, before+1)
			}
		})
	}
}

// TestCutoffDuringGrace: removing the owner, or their new password with
// revoke_tokens, during the grace period ends it at once.
func TestCutoffDuringGrace(t *testing.T) {
	e := newEnv(t)
	value, old := e.createToken("carol", map[string]any{"name": "ci"})
	next := e.regenerate("carol", old.TokenID, map[string]any{"grace": "1h"})
	e.clock.Advance(time.Minute)
	wantStatus(t, e.do("DELETE", "/users/carol", as("alice")), http.StatusNoContent)
	for name, v := range map[string]string{"old": value, "new": next.Token} {
		if e.introspectActive("alice", v) {
			t.Errorf("%s value of a removed user: got active, want inactive", name)
		}
	}
	if i := e.info("alice", value); i.Active || !i.Revoked {
		t.Errorf("GET /user-token of the old value: got %+v, want revoked", i)
	}

	value, old = e.createToken("bob", map[string]any{"name": "ci"})
	e.regenerate("bob", old.TokenID, map[string]any{"grace": "1h"})
	e.clock.Advance(2 * time.Second)
	r := e.do("PUT", "/users/bob/password", as("bob"), jsonBody(map[string]any{"password": "a-new-password-1", "revoke_tokens": true}))
	wantStatus(t, r, http.StatusNoContent)
	if e.introspectActive("alice", value) {
		t.Error("old value after its owner's password change with revoke_tokens: got active, want inactive")
	}
}

// TestRegenerateTwiceWithGrace: the old value cannot be regenerated again
// (409); its replacement can, with a grace period of its own, and each
// value ends at its own time.
func TestRegenerateTwiceWithGrace(t *testing.T) {
	e := newEnv(t)
	v1, t1 := e.createToken("bob", map[string]any{"name": "chain", "expires_in": "10h"})
	t2 := e.regenerate("bob", t1.TokenID, map[string]any{"grace": "2h"})
	r := e.do("POST", "/tokens/"+t1.TokenID+"/regenerate", as("bob"), jsonBody(`{"grace":"1h"}`))
	wantError(t, r, http.StatusConflict, ECodeConflict)
	e.clock.Advance(time.Hour)
	t3 := e.regenerate("bob", t2.TokenID, map[string]any{"grace": "30m"})
	for _, tc := range []struct {
		after      time.Duration
		v1, v2, v3 bool
	}{
		{0, true, true, true},
		{30 * time.Minute, true, false, true},
		{30 * time.Minute, false, false, true},
	} {
		e.clock.Advance(tc.after)
		for _, c := range []struct {
			name   string
			value  string
			active bool
		}{{"first", v1, tc.v1}, {"second", t2.Token, tc.v2}, {"third", t3.Token, tc.v3}} {
			if got := e.introspectActive("bob", c.value); got != c.active {
				t.Errorf("%s value at %s: got active %v, want %v", c.name, rfc3339(e.clock.Now()), got, c.active)
			}
		}
	}
}

// TestUIConfigRegenerateGrace: the page learns the maximum grace period.
func TestUIConfigRegenerateGrace(t *testing.T) {
	for _, tc := range []struct {
		max  time.Duration
		want float64
	}{{0, 86400}, {2 * time.Hour, 7200}, {-1, 0}} {
		e := newEnv(t, func(c *Config) { c.MaxRegenerateGrace = tc.max })
		r := e.do("GET", "/ui/api/config", as("bob"))
		wantStatus(t, r, http.StatusOK)
		var cfg map[string]json.RawMessage
		r.decode(t, &cfg)
		var got float64
		if err := json.Unmarshal(cfg["max_regenerate_grace_seconds"], &got); err != nil || got != tc.want {
			t.Errorf("MaxRegenerateGrace %s: max_regenerate_grace_seconds got %s, want %v", tc.max, cfg["max_regenerate_grace_seconds"], tc.want)
		}
	}
}
