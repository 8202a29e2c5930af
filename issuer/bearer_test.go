package issuer

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// bearer authenticates with a bearer token.
func bearer(token string) reqOpt { return authz("Bearer " + token) }

// hashChecks reads how many password checks and hashes have run, from
// /metrics (signet_hash_pool_wait_seconds counts every one).
func (e *testEnv) hashChecks() string {
	e.tb.Helper()
	r := e.do("GET", "/metrics")
	wantStatus(e.tb, r, http.StatusOK)
	m := regexp.MustCompile(`(?m)^signet_hash_pool_wait_seconds_count (\S+)$`).FindSubmatch(r.body)
	if m == nil {
		e.tb.Fatalf("no signet_hash_pool_wait_seconds_count in /metrics")
	}
	return string(m[1])
}

// TestBearerIntrospection: POST /introspect also takes, from a resource
// server, an administrative token of the org holding signet:introspect
// (RFC 7662 §2.1). It answers for that org's tokens only; a bearer without
// the scope is forbidden; a bearer that is not a live token of this issuer
// is unauthorized. No password is checked.
func TestBearerIntrospection(t *testing.T) {
	e := newEnv(t)
	rs, _ := e.createToken("alice", map[string]any{"name": "resource server", "type": "administrative", "scopes": []string{"signet:introspect"}})
	wide, _ := e.createToken("alice", map[string]any{"name": "everything", "type": "administrative"}) // "*"
	narrow, _ := e.createToken("alice", map[string]any{"name": "reports", "type": "administrative", "scopes": []string{"reports:read"}})
	personal, _ := e.createToken("alice", map[string]any{"name": "mine", "scopes": []string{"signet:introspect"}})
	bobs, _ := e.userToken("bob", nil)
	otherOrg, _ := e.userToken("erin", nil)
	adminTok, _ := e.createToken("frank", map[string]any{"name": "ci", "type": "administrative", "scopes": []string{"ci:run"}})
	revokedValue, revokedMeta := e.createToken("bob", map[string]any{"name": "gone"})
	wantStatus(t, e.do("DELETE", "/tokens/"+revokedMeta.TokenID, as("bob")), http.StatusNoContent)

	introspect := func(t *testing.T, auth reqOpt, token string) map[string]any {
		t.Helper()
		r := e.do("POST", "/introspect", auth, form("token", token))
		wantStatus(t, r, http.StatusOK)
		return r.object(t)
	}

	t.Run("answers for its org's tokens", func(t *testing.T) {
		for _, auth := range []string{rs, wide} {
			got := introspect(t, bearer(auth), bobs)
			if got["active"] != true || got["sub"] != "bob" || got["org"] != "acme" || got["token_type"] != "personal" {
				t.Errorf("introspect bob's token: got %v, want active, sub bob, org acme", got)
			}
			got = introspect(t, bearer(auth), adminTok)
			if got["active"] != true || got["token_type"] != "administrative" {
				t.Errorf("introspect an administrative token of the org: got %v, want active", got)
			}
		}
	})
	t.Run("any other token is inactive", func(t *testing.T) {
		for name, token := range map[string]string{
			"another org's": otherOrg, "revoked": revokedValue, "garbage": "not-a-token", "tampered": bobs[:len(bobs)-2] + "AA",
		} {
			got := introspect(t, bearer(rs), token)
			if len(got) != 1 || got["active"] != false {
				t.Errorf("introspect %s token: got %v, want exactly {\"active\":false}", name, got)
			}
		}
	})
	t.Run("without the scope: 403", func(t *testing.T) {
		for name, token := range map[string]string{"administrative without the scope": narrow, "personal with the scope": personal, "personal": bobs} {
			r := e.do("POST", "/introspect", bearer(token), form("token", bobs))
			wantError(t, r, http.StatusForbidden, ECodeForbidden)
			if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, `error="insufficient_scope"`) {
				t.Errorf("%s: WWW-Authenticate %q, want a Bearer insufficient_scope challenge", name, got)
			}
		}
	})
	t.Run("not a live token of this issuer: 401", func(t *testing.T) {
		other := newEnv(t) // another issuer's keys
		foreign, _ := other.createToken("alice", map[string]any{"name": "x", "type": "administrative", "scopes": []string{"signet:introspect"}})
		revokedRS, revokedRSMeta := e.createToken("alice", map[string]any{"name": "rs2", "type": "administrative", "scopes": []string{"signet:introspect"}})
		wantStatus(t, e.do("DELETE", "/tokens/"+revokedRSMeta.TokenID, as("alice")), http.StatusNoContent)
		for name, auth := range map[string]reqOpt{
			"revoked": bearer(revokedRS), "another issuer's": bearer(foreign), "garbage": bearer("x.y.z"),
			"empty": authz("Bearer "), "two tokens": authz("Bearer " + rs + " " + rs),
		} {
			r := e.do("POST", "/introspect", auth, form("token", bobs))
			if r.status != http.StatusUnauthorized {
				t.Fatalf("%s bearer: status %d, want 401 (body %s)", name, r.status, r.body)
			}
			if got := strings.Join(r.header.Values("WWW-Authenticate"), ", "); !strings.Contains(got, `Bearer realm="signet", error="invalid_token"`) || !strings.Contains(got, `Basic realm="signet"`) {
				t.Errorf("%s bearer: WWW-Authenticate %q, want the Basic and the Bearer invalid_token challenges", name, got)
			}
			if m := r.object(t); m["error"] != ECodeUnauthorized {
				t.Errorf("%s bearer: error %v, want %s", name, m["error"], ECodeUnauthorized)
			}
		}
	})
	t.Run("expired bearer: 401", func(t *testing.T) {
		short, _ := e.createToken("alice", map[string]any{"name": "short", "type": "administrative", "scopes": []string{"signet:introspect"}, "expires_in": "1h"})
		wantStatus(t, e.do("POST", "/introspect", bearer(short), form("token", bobs)), http.StatusOK)
		e.clock.Advance(time.Hour)
		if r := e.do("POST", "/introspect", bearer(short), form("token", bobs)); r.status != http.StatusUnauthorized {
			t.Errorf("expired bearer: status %d, want 401", r.status)
		}
	})
	t.Run("no password checked", func(t *testing.T) {
		before := e.hashChecks()
		for i := 0; i < 5; i++ {
			introspect(t, bearer(rs), bobs)
			e.do("POST", "/introspect", bearer(narrow), form("token", bobs))
			e.do("POST", "/introspect", bearer("x.y.z"), form("token", bobs))
		}
		if after := e.hashChecks(); after != before {
			t.Errorf("password checks during bearer introspection: count went from %s to %s, want none", before, after)
		}
	})
	t.Run("only introspection takes a bearer", func(t *testing.T) {
		for _, path := range []string{"/tokens", "/users", "/audit"} {
			wantError(t, e.do("GET", path, bearer(rs)), http.StatusUnauthorized, ECodeUnauthorized)
		}
		wantError(t, e.do("POST", "/revoke", bearer(rs), form("token", bobs)), http.StatusUnauthorized, ECodeUnauthorized)
	})
	t.Run("Basic introspection unchanged", func(t *testing.T) {
		if got := introspect(t, as("bob"), bobs); got["active"] != true {
			t.Errorf("bob introspects his own token: got %v", got)
		}
		if got := introspect(t, as("carol"), bobs); got["active"] != false {
			t.Errorf("carol introspects bob's token: got %v, want inactive", got)
		}
	})
}
