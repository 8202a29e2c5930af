package issuer

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-auth/signet/store"
)

// TestTokenPermissionMatrix runs every per-token call as every kind of
// caller against every kind of token.
func TestTokenPermissionMatrix(t *testing.T) {
	e := newEnv(t)
	kinds := []struct {
		name    string
		creator string
		body    map[string]any
		// allowed are the callers who see and manage the token.
		allowed []string
	}{
		{"member personal", "bob", map[string]any{"type": "personal"}, []string{"bob", "alice", "frank"}},
		{"admin personal", "alice", map[string]any{"type": "personal"}, []string{"alice", "frank"}},
		{"administrative", "alice", map[string]any{"type": "administrative"}, []string{"alice", "frank"}},
	}
	callers := []string{"bob", "carol", "alice", "frank", "dave", "erin"}
	calls := []struct {
		name string
		// run makes the call; ok reports success, code is the refusal's
		// status and error code.
		run    func(t *testing.T, caller, id, value string) *response
		ok     int
		denied int
		code   string
	}{
		{"GET /tokens/{id}", func(t *testing.T, c, id, _ string) *response { return e.do("GET", "/tokens/"+id, as(c)) }, 200, 404, ECodeNotFound},
		{"DELETE /tokens/{id}", func(t *testing.T, c, id, _ string) *response { return e.do("DELETE", "/tokens/"+id, as(c)) }, 204, 404, ECodeNotFound},
		{"regenerate", func(t *testing.T, c, id, _ string) *response {
			return e.do("POST", "/tokens/"+id+"/regenerate", as(c))
		}, 201, 404, ECodeNotFound},
		{"copy", func(t *testing.T, c, id, _ string) *response {
			return e.do("POST", "/tokens/"+id+"/copy", as(c), jsonBody(map[string]any{"name": "copy-" + id}))
		}, 201, 404, ECodeNotFound},
		{"GET /user-token", func(t *testing.T, c, _, v string) *response { return e.do("GET", "/user-token?token="+v, as(c)) }, 200, 403, ECodeForbidden},
		{"POST /revoke", func(t *testing.T, c, _, v string) *response { return e.do("POST", "/revoke", as(c), form("token", v)) }, 200, 403, ECodeForbidden},
	}
	n := 0
	for _, k := range kinds {
		for _, call := range calls {
			for _, caller := range callers {
				allowed := slices.Contains(k.allowed, caller)
				t.Run(fmt.Sprintf("%s/%s/%s", k.name, call.name, caller), func(t *testing.T) {
					n++
					body := map[string]any{"name": fmt.Sprintf("m%d", n)}
					for key, v := range k.body {
						body[key] = v
					}
					value, meta := e.createToken(k.creator, body)
					r := call.run(t, caller, meta.TokenID, value)
					if allowed {
						wantStatus(t, r, call.ok)
					} else {
						wantError(t, r, call.denied, call.code)
						if rec := e.record(meta.TokenID); rec.RevokedAt != nil || rec.ReplacedBy != "" {
							t.Errorf("a refused call changed the token: %+v", rec)
						}
					}
				})
			}
		}
		t.Run(k.name+"/introspect", func(t *testing.T) {
			n++
			body := map[string]any{"name": fmt.Sprintf("m%d", n)}
			for key, v := range k.body {
				body[key] = v
			}
			value, _ := e.createToken(k.creator, body)
			for _, caller := range callers {
				r := e.do("POST", "/introspect", as(caller), form("token", value))
				wantStatus(t, r, 200)
				active := r.object(t)["active"] == true
				if want := slices.Contains(k.allowed, caller); active != want {
					t.Errorf("introspect as %s: got active=%v, want %v (body %s)", caller, active, want, r.body)
				}
				if !active && string(r.body) != `{"active":false}` {
					t.Errorf("introspect as %s: got %s, want exactly {\"active\":false}", caller, r.body)
				}
			}
		})
	}
}

func TestListTokens(t *testing.T) {
	e := newEnv(t)
	bobValue, bob1 := e.createToken("bob", map[string]any{"name": "b1"})
	_, bob2 := e.createToken("bob", map[string]any{"name": "b2"})
	_, carol1 := e.createToken("carol", map[string]any{"name": "c1"})
	_, admin1 := e.createToken("alice", map[string]any{"name": "a1", "type": "administrative"})
	_, dave1 := e.createToken("dave", map[string]any{"name": "d1"})
	wantStatus(t, e.do("DELETE", "/tokens/"+bob2.TokenID, as("bob")), 204)
	_, shortLived := e.createToken("bob", map[string]any{"name": "short", "expires_in": "1h"})
	e.clock.Advance(2 * time.Hour)

	cases := []struct {
		name  string
		user  string
		query string
		want  []string
	}{
		{"member sees own live tokens", "bob", "", []string{bob1.TokenID}},
		{"member with own owner filter", "bob", "?owner=bob", []string{bob1.TokenID}},
		{"member includes revoked", "bob", "?include_revoked=true", []string{bob1.TokenID, bob2.TokenID}},
		{"member includes expired", "bob", "?include_expired=true", []string{bob1.TokenID, shortLived.TokenID}},
		{"member asks for administrative", "bob", "?type=administrative", nil},
		{"admin sees the org", "alice", "", []string{bob1.TokenID, carol1.TokenID, admin1.TokenID}},
		{"admin filters by owner", "alice", "?owner=carol", []string{carol1.TokenID}},
		{"admin filters by type", "alice", "?type=administrative", []string{admin1.TokenID}},
		{"admin filters personal", "alice", "?type=personal", []string{bob1.TokenID, carol1.TokenID}},
		{"other org admin", "dave", "", []string{dave1.TokenID}},
		{"other org admin filters acme owner", "dave", "?owner=bob", nil},
		{"limit", "alice", "?limit=1", nil}, // checked by count below
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("GET", "/tokens"+tc.query, as(tc.user))
			wantStatus(t, r, 200)
			if strings.Contains(string(r.body), bobValue) {
				t.Fatal("the list shows a token value")
			}
			var out struct {
				Tokens []createdTokenJSON `json:"tokens"`
			}
			r.decode(t, &out)
			if out.Tokens == nil {
				t.Fatalf("tokens: got null, want an array (body %s)", r.body)
			}
			var got []string
			for _, tok := range out.Tokens {
				if tok.Token != "" {
					t.Errorf("token %s listed with its value", tok.TokenID)
				}
				got = append(got, tok.TokenID)
			}
			if tc.name == "limit" {
				if len(got) != 1 {
					t.Errorf("limit=1: got %d tokens, want 1", len(got))
				}
				return
			}
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("tokens: got %v, want %v", got, want)
			}
		})
	}
	errCases := []struct {
		name, user, query string
		status            int
		code              string
	}{
		{"member lists another owner", "bob", "?owner=carol", 403, ECodeForbidden},
		{"bad type", "alice", "?type=robot", 400, ECodeInvalid},
		{"bad include_revoked", "alice", "?include_revoked=maybe", 400, ECodeInvalid},
		{"bad limit", "alice", "?limit=0", 400, ECodeInvalid},
		{"huge limit", "alice", "?limit=100000", 400, ECodeInvalid},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, e.do("GET", "/tokens"+tc.query, as(tc.user)), tc.status, tc.code)
		})
	}
	wantError(t, e.do("GET", "/tokens"), 401, ECodeUnauthorized)
}

func TestCreateToken(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Roles = map[string][]string{"admin": {"*"}, "member": {"reports:*", "bucket:in.c-main:read"}}
	})
	t.Run("defaults", func(t *testing.T) {
		value, meta := e.createToken("bob", map[string]any{"name": "ci", "description": "for CI\nruns"})
		cl, _ := e.tokenClaims(value)
		exp := testStart.Add(8760 * time.Hour)
		if meta.Type != "personal" || meta.User != "bob" || meta.CreatedBy != "bob" || meta.Description != "for CI\nruns" ||
			meta.ExpiresAt != exp.Format(time.RFC3339) || !meta.Active || meta.Revoked || meta.RevokedAt != nil ||
			!slices.Equal(meta.Scopes, []string{"bucket:in.c-main:read", "reports:*"}) {
			t.Errorf("metadata: got %+v", meta)
		}
		if cl.Subject != "bob" || cl.TokenType != "personal" || cl.Expiry != exp.Unix() || cl.ID != meta.TokenID {
			t.Errorf("claims: got %+v", cl)
		}
	})
	t.Run("administrative", func(t *testing.T) {
		value, meta := e.createToken("alice", map[string]any{"name": "infra", "type": "administrative", "preset": "extended", "expires_in": "30m"})
		cl, _ := e.tokenClaims(value)
		if meta.User != "" || meta.Type != "administrative" || cl.Subject != "token:"+meta.TokenID || cl.Scope != "reports:read reports:write" {
			t.Errorf("administrative: got %+v, claims %+v", meta, cl)
		}
		if rec := e.record(meta.TokenID); rec.Owner != "" || rec.Lifetime != 30*time.Minute {
			t.Errorf("record: got owner %q lifetime %s, want none and 30m", rec.Owner, rec.Lifetime)
		}
	})
	t.Run("no scopes grants nothing", func(t *testing.T) {
		value, meta := e.createToken("bob", map[string]any{"name": "empty", "scopes": []string{}})
		cl, _ := e.tokenClaims(value)
		if cl.Scope != "" || len(meta.Scopes) != 0 || meta.Scopes == nil {
			t.Errorf("empty scopes: got claim %q, metadata %v", cl.Scope, meta.Scopes)
		}
	})
	t.Run("member covered scopes", func(t *testing.T) {
		value, _ := e.createToken("bob", map[string]any{"name": "sub", "scopes": []string{"reports:read", "reports:x:*", "bucket:in.c-main:read"}})
		if cl, _ := e.tokenClaims(value); cl.Scope != "bucket:in.c-main:read reports:read reports:x:*" {
			t.Errorf("scope: got %q", cl.Scope)
		}
	})

	errCases := []struct {
		name   string
		user   string
		body   any
		status int
		code   string
	}{
		{"no body", "bob", "", 400, ECodeInvalid},
		{"empty object", "bob", "{}", 400, ECodeInvalid},
		{"no name", "bob", map[string]any{"description": "x"}, 400, ECodeInvalid},
		{"bad type", "alice", map[string]any{"name": "t", "type": "robot"}, 400, ECodeInvalid},
		{"member administrative", "bob", map[string]any{"name": "t", "type": "administrative"}, 403, ECodeForbidden},
		{"member scope beyond role", "bob", map[string]any{"name": "t", "scopes": []string{"bucket:in.c-main:write"}}, 403, ECodeForbidden},
		{"member pattern beyond role", "bob", map[string]any{"name": "t", "scopes": []string{"bucket:*"}}, 403, ECodeForbidden},
		{"member preset beyond role", "bob", map[string]any{"name": "t", "preset": "admin"}, 403, ECodeForbidden},
		{"unknown preset", "alice", map[string]any{"name": "t", "preset": "nope"}, 400, ECodeInvalid},
		{"description too long", "alice", map[string]any{"name": "t", "description": strings.Repeat("d", 1025)}, 400, ECodeInvalid},
		{"unknown field", "alice", `{"name":"t","expire_in":"1h"}`, 400, ECodeInvalid},
		{"lifetime past max", "alice", map[string]any{"name": "t", "expires_in": "8761h"}, 400, ECodeInvalid},
		{"expiry in the past", "alice", map[string]any{"name": "t", "expires_at": "2020-01-01T00:00:00Z"}, 400, ECodeInvalid},
		{"both expiry fields", "alice", map[string]any{"name": "t", "expires_in": "1h", "expires_at": "2027-01-01T00:00:00Z"}, 400, ECodeInvalid},
		{"duplicate live name", "bob", map[string]any{"name": "ci"}, 409, ECodeConflict},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			opts := []reqOpt{as(tc.user)}
			if tc.body != "" {
				opts = append(opts, jsonBody(tc.body))
			}
			wantError(t, e.do("POST", "/tokens", opts...), tc.status, tc.code)
		})
	}
	t.Run("same name for another owner", func(t *testing.T) {
		e.createToken("carol", map[string]any{"name": "ci"})
	})
}

// TestPersonalTokensOff: with personal tokens off only admins create.
func TestPersonalTokensOff(t *testing.T) {
	off := newEnv(t, func(c *Config) { c.PersonalTokens = false })

	cases := []struct {
		name   string
		method string
		path   string
		opts   []reqOpt
		status int
	}{
		{"member POST /user-token", "POST", "/user-token", nil, 403},
		{"member POST /tokens", "POST", "/tokens", []reqOpt{jsonBody(map[string]any{"name": "x"})}, 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, off.do(tc.method, tc.path, append([]reqOpt{as("bob")}, tc.opts...)...), tc.status, ECodeForbidden)
		})
	}
	t.Run("admin still creates", func(t *testing.T) {
		off.userToken("alice", nil)
		off.createToken("alice", map[string]any{"name": "y", "type": "personal"})
	})
	t.Run("member cannot copy or regenerate", func(t *testing.T) {
		// A personal token bob held before the switch (written straight
		// to the store, as an earlier configuration would have).
		value, rec, err := off.srv.svc.mint(grant{Type: store.TokenPersonal, Owner: "bob", OwnerID: off.userID("bob"), Org: "acme", Name: "old", Scopes: []string{"*"}, CreatedBy: "bob", Lifetime: time.Hour}, off.clock.Now())
		if err != nil || value == "" {
			t.Fatal(err)
		}
		if err := off.st.CreateToken(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		wantError(t, off.do("POST", "/tokens/"+rec.ID+"/regenerate", as("bob")), 403, ECodeForbidden)
		wantError(t, off.do("POST", "/tokens/"+rec.ID+"/copy", as("bob")), 403, ECodeForbidden)
		// ... but still sees and revokes it.
		wantStatus(t, off.do("GET", "/tokens/"+rec.ID, as("bob")), 200)
		wantStatus(t, off.do("DELETE", "/tokens/"+rec.ID, as("bob")), 204)
	})
}

func TestRegenerate(t *testing.T) {
	e := newEnv(t)
	oldValue, old := e.createToken("bob", map[string]any{"name": "deploy", "description": "d", "scopes": []string{"a:read", "b:*"}, "expires_in": "10h"})
	e.clock.Advance(time.Hour)

	r := e.do("POST", "/tokens/"+old.TokenID+"/regenerate", as("bob"))
	wantStatus(t, r, 201)
	var next createdTokenJSON
	r.decode(t, &next)
	now := e.clock.Now()
	if next.Token == "" || next.TokenID == old.TokenID || next.Name != "deploy" || next.Description != "d" ||
		next.Type != "personal" || next.User != "bob" || !slices.Equal(next.Scopes, []string{"a:read", "b:*"}) ||
		next.ParentID != old.TokenID || next.ExpiresAt != now.Add(10*time.Hour).Format(time.RFC3339) || !next.Active {
		t.Errorf("regenerated: got %+v", next)
	}
	if cl, _ := e.tokenClaims(next.Token); cl.ID != next.TokenID || cl.Scope != "a:read b:*" || cl.IssuedAt != now.Unix() {
		t.Errorf("regenerated claims: got %+v", cl)
	}
	oldRec := e.record(old.TokenID)
	if oldRec.RevokedAt == nil || oldRec.ReplacedBy != next.TokenID {
		t.Errorf("old record: got revoked_at %v replaced_by %q, want revoked and replaced by %s", oldRec.RevokedAt, oldRec.ReplacedBy, next.TokenID)
	}
	if _, err := e.st.GetTokenRevocation(context.Background(), old.TokenID); err != nil {
		t.Errorf("old token not on the revocation log: %v", err)
	}
	r = e.do("POST", "/introspect", as("bob"), form("token", oldValue))
	if string(r.body) != `{"active":false}` {
		t.Errorf("old token introspection: got %s, want inactive", r.body)
	}

	t.Run("again is a conflict", func(t *testing.T) {
		wantError(t, e.do("POST", "/tokens/"+old.TokenID+"/regenerate", as("bob")), 409, ECodeConflict)
	})
	t.Run("body fields are refused", func(t *testing.T) {
		wantError(t, e.do("POST", "/tokens/"+next.TokenID+"/regenerate", as("bob"), jsonBody(`{"name":"x"}`)), 400, ECodeInvalid)
	})
	t.Run("after expiry", func(t *testing.T) {
		_, short := e.createToken("bob", map[string]any{"name": "short", "expires_in": "1h"})
		e.clock.Advance(2 * time.Hour)
		r := e.do("POST", "/tokens/"+short.TokenID+"/regenerate", as("bob"), jsonBody("{}"))
		wantStatus(t, r, 201)
		var got createdTokenJSON
		r.decode(t, &got)
		if !got.Active || got.ExpiresAt != e.clock.Now().Add(time.Hour).Format(time.RFC3339) {
			t.Errorf("regenerated after expiry: got %+v, want active for 1h from now", got)
		}
	})
	t.Run("after revocation", func(t *testing.T) {
		_, tok := e.createToken("bob", map[string]any{"name": "revoked-then-regenerated"})
		wantStatus(t, e.do("DELETE", "/tokens/"+tok.TokenID, as("bob")), 204)
		r := e.do("POST", "/tokens/"+tok.TokenID+"/regenerate", as("bob"))
		wantStatus(t, r, 201)
		var got createdTokenJSON
		r.decode(t, &got)
		if !got.Active || got.Name != "revoked-then-regenerated" {
			t.Errorf("regenerated after revocation: got %+v, want an active token of the same name", got)
		}
	})
	t.Run("name taken since revocation", func(t *testing.T) {
		_, tok := e.createToken("bob", map[string]any{"name": "laptop"})
		wantStatus(t, e.do("DELETE", "/tokens/"+tok.TokenID, as("bob")), 204)
		e.createToken("bob", map[string]any{"name": "laptop"})
		r := e.do("POST", "/tokens/"+tok.TokenID+"/regenerate", as("bob"))
		wantError(t, r, 409, ECodeConflict)
		if msg, _ := r.object(t)["message"].(string); !strings.Contains(msg, `"laptop"`) {
			t.Errorf("message: got %q, want it to name the live token's name, not a regenerate race", msg)
		}
		if rec := e.record(tok.TokenID); rec.ReplacedBy != "" {
			t.Errorf("a refused regenerate replaced the token: %+v", rec)
		}
	})
	t.Run("of a removed user's token", func(t *testing.T) {
		_, tok := e.createToken("carol", map[string]any{"name": "gone"})
		wantStatus(t, e.do("DELETE", "/users/carol", as("alice")), 204)
		wantError(t, e.do("POST", "/tokens/"+tok.TokenID+"/regenerate", as("alice")), 409, ECodeConflict)
	})
	t.Run("unknown id", func(t *testing.T) {
		wantError(t, e.do("POST", "/tokens/AAAAAAAAAAAAAAAAAAAAAA/regenerate", as("alice")), 404, ECodeNotFound)
		wantError(t, e.do("POST", "/tokens/bad$id/regenerate", as("alice")), 404, ECodeNotFound)
	})
}

// TestRegenerateRace: two concurrent regenerates of one token over real
// HTTP leave exactly one 201, one 409 and one live token.
func TestRegenerateRace(t *testing.T) {
	e := newEnv(t)
	base := e.serve()
	for round := range 5 {
		_, tok := e.createToken("bob", map[string]any{"name": fmt.Sprintf("race-%d", round)})
		var wg sync.WaitGroup
		statuses := make([]int, 2)
		for i := range 2 {
			wg.Go(func() {
				statuses[i] = httpDo(t, "POST", base+"/tokens/"+tok.TokenID+"/regenerate", "bob")
			})
		}
		wg.Wait()
		slices.Sort(statuses)
		if statuses[0] != 201 || statuses[1] != 409 {
			t.Fatalf("round %d: statuses got %v, want [201 409]", round, statuses)
		}
		recs, err := e.st.ListTokens(context.Background(), store.TokenFilter{Org: "acme", Owner: "bob", Now: e.clock.Now()})
		if err != nil {
			t.Fatal(err)
		}
		live := 0
		for _, r := range recs {
			if r.Name == fmt.Sprintf("race-%d", round) && r.RevokedAt == nil {
				live++
			}
		}
		if live != 1 {
			t.Fatalf("round %d: live tokens named race-%d: got %d, want 1", round, round, live)
		}
	}
}

// serve starts the server on a loopback port and returns its base URL.
func (e *testEnv) serve() string {
	e.tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.srv.Serve(ln)
	}()
	e.tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.srv.Shutdown(ctx)
		<-done
	})
	return "http://" + ln.Addr().String()
}

// httpDo sends an authenticated request over real HTTP and returns the status.
func httpDo(tb testing.TB, method, url, user string) int {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		tb.Error(err)
		return 0
	}
	req.SetBasicAuth(user, passwordOf(user))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Error(err)
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func TestCopy(t *testing.T) {
	e := newEnv(t)
	origValue, orig := e.createToken("bob", map[string]any{"name": "orig", "description": "d", "preset": "extended", "expires_in": "5h"})
	e.clock.Advance(time.Hour)
	cases := []struct {
		name     string
		body     any
		wantName string
		wantDesc string
		wantLife time.Duration
	}{
		{"defaults", "", "orig (copy)", "d", 5 * time.Hour},
		{"overrides", map[string]any{"name": "c2", "description": "other", "expires_in": "2h"}, "c2", "other", 2 * time.Hour},
		{"expires_at", map[string]any{"name": "c3", "expires_at": testStart.Add(4 * time.Hour).Format(time.RFC3339)}, "c3", "d", 3 * time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := []reqOpt{as("alice")}
			if tc.body != "" {
				opts = append(opts, jsonBody(tc.body))
			}
			r := e.do("POST", "/tokens/"+orig.TokenID+"/copy", opts...)
			wantStatus(t, r, 201)
			var got createdTokenJSON
			r.decode(t, &got)
			if got.Name != tc.wantName || got.Description != tc.wantDesc || got.User != "bob" || got.CreatedBy != "alice" ||
				got.ParentID != orig.TokenID || !slices.Equal(got.Scopes, orig.Scopes) ||
				got.ExpiresAt != e.clock.Now().Add(tc.wantLife).Format(time.RFC3339) {
				t.Errorf("copy: got %+v, want name %q desc %q lifetime %s", got, tc.wantName, tc.wantDesc, tc.wantLife)
			}
		})
	}
	if rec := e.record(orig.TokenID); rec.RevokedAt != nil || rec.ReplacedBy != "" {
		t.Errorf("original changed by copy: %+v", rec)
	}
	if r := e.do("POST", "/introspect", as("bob"), form("token", origValue)); r.object(t)["active"] != true {
		t.Errorf("original not active after copies: %s", r.body)
	}
	errCases := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"name taken", map[string]any{"name": "orig"}, 409, ECodeConflict},
		{"unknown field", `{"scopes":["x"]}`, 400, ECodeInvalid},
		{"past max", map[string]any{"name": "z", "expires_in": "9000h"}, 400, ECodeInvalid},
		{"both expiries", map[string]any{"name": "z", "expires_in": "1h", "expires_at": "2027-01-01T00:00:00Z"}, 400, ECodeInvalid},
		{"bad name", map[string]any{"name": "a\u0000"}, 400, ECodeInvalid},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, e.do("POST", "/tokens/"+orig.TokenID+"/copy", as("bob"), jsonBody(tc.body)), tc.status, tc.code)
		})
	}
	t.Run("owner lost a scope", func(t *testing.T) {
		narrow := newEnv(t, func(c *Config) { c.Roles = map[string][]string{"admin": {"*"}, "member": {"reports:read"}} })
		// A token recorded under a wider role than bob holds now.
		_, rec, err := narrow.srv.svc.mint(grant{Type: store.TokenPersonal, Owner: "bob", OwnerID: narrow.userID("bob"), Org: "acme", Name: "wide", Scopes: []string{"reports:write"}, CreatedBy: "bob", Lifetime: time.Hour}, narrow.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := narrow.st.CreateToken(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		wantError(t, narrow.do("POST", "/tokens/"+rec.ID+"/copy", as("alice"), jsonBody(`{"name":"w2"}`)), 403, ECodeForbidden)
		wantError(t, narrow.do("POST", "/tokens/"+rec.ID+"/regenerate", as("bob")), 403, ECodeForbidden)
	})
}

func TestRevokeIdempotent(t *testing.T) {
	e := newEnv(t)
	value, tok := e.createToken("bob", map[string]any{"name": "r"})
	for i := range 3 {
		wantStatus(t, e.do("DELETE", "/tokens/"+tok.TokenID, as("bob")), 204)
		if rec := e.record(tok.TokenID); rec.RevokedAt == nil {
			t.Fatalf("after DELETE %d: token not revoked", i+1)
		}
	}
	rev, err := e.st.GetTokenRevocation(context.Background(), tok.TokenID)
	if err != nil {
		t.Fatalf("revocation entry: %v", err)
	}
	for i := range 2 {
		wantStatus(t, e.do("POST", "/revoke", as("bob"), form("token", value, "token_type_hint", "access_token")), 200)
		again, err := e.st.GetTokenRevocation(context.Background(), tok.TokenID)
		if err != nil || again.Seq != rev.Seq {
			t.Errorf("revoke %d changed the entry: got seq %d (%v), want %d", i+1, again.Seq, err, rev.Seq)
		}
	}
	events, err := e.st.ListAudit(context.Background(), store.AuditFilter{Org: "acme", Action: "token.revoke"})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 {
		t.Errorf("token.revoke audit events: got %d, want 1", len(events))
	}
}

func TestRevokeEndpoint(t *testing.T) {
	e := newEnv(t)
	value, tok := e.createToken("bob", map[string]any{"name": "r"})
	t.Run("RFC 7009 answers 200 for tokens not ours", func(t *testing.T) {
		for _, v := range []string{"garbage", "a.b.c", strings.Repeat("x", 9000)} {
			r := e.do("POST", "/revoke", as("bob"), form("token", v))
			wantStatus(t, r, 200)
			if len(r.body) != 0 {
				t.Errorf("body: got %q, want empty", r.body)
			}
		}
	})
	errCases := []struct {
		name   string
		opts   []reqOpt
		status int
		code   string
	}{
		{"no auth", []reqOpt{form("token", value)}, 401, ECodeUnauthorized},
		{"no token", []reqOpt{as("bob"), form("other", "x")}, 400, ECodeInvalid},
		{"JSON body", []reqOpt{as("bob"), jsonBody(map[string]any{"token": value})}, 400, ECodeInvalid},
		{"another member", []reqOpt{as("carol"), form("token", value)}, 403, ECodeForbidden},
		{"another org", []reqOpt{as("dave"), form("token", value)}, 403, ECodeForbidden},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, e.do("POST", "/revoke", tc.opts...), tc.status, tc.code)
		})
	}
	if rec := e.record(tok.TokenID); rec.RevokedAt != nil {
		t.Fatal("a refused /revoke revoked the token")
	}
	r := e.do("POST", "/revoke", as("alice"), form("token", value))
	wantStatus(t, r, 200)
	if rec := e.record(tok.TokenID); rec.RevokedAt == nil {
		t.Fatal("admin /revoke did not revoke")
	}
}

func TestIntrospect(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Audience = []string{"a1", "a2"} })
	value, tok := e.createToken("bob", map[string]any{"name": "i", "scopes": []string{"x:read", "y:*"}, "expires_in": "2h"})
	r := e.do("POST", "/introspect", as("bob"), form("token", value))
	wantStatus(t, r, 200)
	got := r.object(t)
	want := map[string]any{
		"active": true, "sub": "bob", "username": "bob", "org": "acme", "scope": "x:read y:*",
		"exp": float64(testStart.Add(2 * time.Hour).Unix()), "iat": float64(testStart.Unix()), "nbf": float64(testStart.Unix()),
		"jti": tok.TokenID, "token_id": tok.TokenID, "token_type": "personal", "iss": testPublicURL,
		"aud": []any{"a1", "a2"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("introspection: got %v, want %v", got, want)
	}
	inactive := []struct {
		name string
		prep func() (user, token string)
	}{
		{"garbage", func() (string, string) { return "bob", "garbage" }},
		{"other org", func() (string, string) { return "dave", value }},
		{"other member", func() (string, string) { return "carol", value }},
		{"revoked", func() (string, string) {
			v, tk := e.createToken("bob", map[string]any{"name": "i2"})
			wantStatus(t, e.do("DELETE", "/tokens/"+tk.TokenID, as("bob")), 204)
			return "bob", v
		}},
		{"expired", func() (string, string) {
			v, _ := e.createToken("bob", map[string]any{"name": "i3", "expires_in": "1m"})
			e.clock.Advance(2 * time.Minute)
			return "bob", v
		}},
	}
	for _, tc := range inactive {
		t.Run(tc.name, func(t *testing.T) {
			user, token := tc.prep()
			r := e.do("POST", "/introspect", as(user), form("token", token))
			wantStatus(t, r, 200)
			if string(r.body) != `{"active":false}` {
				t.Errorf("got %s, want exactly {\"active\":false}", r.body)
			}
		})
	}
	wantError(t, e.do("POST", "/introspect", form("token", value)), 401, ECodeUnauthorized)
	wantError(t, e.do("POST", "/introspect", as("bob")), 400, ECodeInvalid)
}
