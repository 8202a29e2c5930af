package issuer

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signet-auth/signet/store"
)

func TestUsersPermissionMatrix(t *testing.T) {
	e := newEnv(t)
	newUser := func(name string) map[string]any {
		return map[string]any{"username": name, "password": "long-enough-pw", "email": name + "@example.com", "role": "member"}
	}
	cases := []struct {
		name   string
		user   string
		method string
		path   string
		body   any
		status int
		code   string
	}{
		{"member lists users", "bob", "GET", "/users", nil, 403, ECodeForbidden},
		{"admin lists users", "alice", "GET", "/users", nil, 200, ""},
		{"member adds a user", "bob", "POST", "/users", newUser("u1"), 403, ECodeForbidden},
		{"admin adds a user", "alice", "POST", "/users", newUser("u2"), 201, ""},
		{"member removes a user", "bob", "DELETE", "/users/carol", nil, 403, ECodeForbidden},
		{"other org admin removes a user", "dave", "DELETE", "/users/carol", nil, 404, ECodeNotFound},
		{"admin removes unknown user", "alice", "DELETE", "/users/nobody", nil, 404, ECodeNotFound},
		{"admin removes malformed name", "alice", "DELETE", "/users/BAD%20NAME", nil, 404, ECodeNotFound},
		{"admin removes self", "alice", "DELETE", "/users/alice", nil, 409, ECodeConflict},
		{"member sets own password", "bob", "PUT", "/users/bob/password", map[string]any{"password": "new-password-1"}, 204, ""},
		{"member sets another's password", "carol", "PUT", "/users/erin/password", map[string]any{"password": "new-password-1"}, 403, ECodeForbidden},
		{"member sets same-org password", "carol", "PUT", "/users/alice/password", map[string]any{"password": "new-password-1"}, 403, ECodeForbidden},
		{"admin sets member password", "frank", "PUT", "/users/carol/password", map[string]any{"password": passwordOf("carol")}, 204, ""},
		{"other org admin sets password", "dave", "PUT", "/users/carol/password", map[string]any{"password": "new-password-1"}, 404, ECodeNotFound},
		{"member reads audit", "carol", "GET", "/audit", nil, 403, ECodeForbidden},
		{"admin reads audit", "alice", "GET", "/audit", nil, 200, ""},
		{"admin removes a member", "alice", "DELETE", "/users/u2", nil, 204, ""},
		{"admin removes removed user", "alice", "DELETE", "/users/u2", nil, 404, ECodeNotFound},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := []reqOpt{as(tc.user)}
			if tc.body != nil {
				opts = append(opts, jsonBody(tc.body))
			}
			r := e.do(tc.method, tc.path, opts...)
			if tc.code != "" {
				wantError(t, r, tc.status, tc.code)
			} else {
				wantStatus(t, r, tc.status)
			}
		})
	}
	// bob's password did change.
	wantError(t, e.do("GET", "/tokens", as("bob")), 401, ECodeUnauthorized)
	wantStatus(t, e.do("GET", "/tokens", basic("bob", "new-password-1")), 200)
}

func TestUsersAPI(t *testing.T) {
	e := newEnv(t)
	r := e.do("POST", "/users", as("alice"), jsonBody(map[string]any{"username": "gina", "password": "gina-password", "email": "gina@example.com", "role": "admin"}))
	wantStatus(t, r, 201)
	created := r.object(t)
	if created["username"] != "gina" || created["organization_name"] != "acme" || created["role"] != "admin" || created["email"] != "gina@example.com" {
		t.Errorf("created: got %v", created)
	}
	if strings.Contains(string(r.body), "gina-password") || strings.Contains(string(r.body), "$2a$") {
		t.Errorf("created user answer shows the password or its hash: %s", r.body)
	}
	wantStatus(t, e.do("GET", "/tokens", basic("gina", "gina-password")), 200)

	r = e.do("GET", "/users", as("alice"))
	wantStatus(t, r, 200)
	var list struct {
		Users []map[string]any `json:"users"`
	}
	r.decode(t, &list)
	var names []string
	for _, u := range list.Users {
		names = append(names, u["username"].(string))
		if _, ok := u["password_hash"]; ok {
			t.Errorf("user %v shows a password hash", u["username"])
		}
	}
	slices.Sort(names)
	if want := []string{"alice", "bob", "carol", "frank", "gina"}; !slices.Equal(names, want) {
		t.Errorf("users: got %v, want %v", names, want)
	}

	errCases := []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{"no body", nil, 400, ECodeInvalid},
		{"taken username", map[string]any{"username": "dave", "password": "long-enough", "email": "d@x", "role": "member"}, 409, ECodeConflict},
		{"bad username", map[string]any{"username": "Gina!", "password": "long-enough", "email": "g@x", "role": "member"}, 400, ECodeInvalid},
		{"empty username", map[string]any{"username": "", "password": "long-enough", "email": "g@x", "role": "member"}, 400, ECodeInvalid},
		{"long username", map[string]any{"username": strings.Repeat("g", 65), "password": "long-enough", "email": "g@x", "role": "member"}, 400, ECodeInvalid},
		{"short password", map[string]any{"username": "hank", "password": "short", "email": "h@x", "role": "member"}, 400, ECodeInvalid},
		{"password over 72 bytes", map[string]any{"username": "hank", "password": strings.Repeat("p", 73), "email": "h@x", "role": "member"}, 400, ECodeInvalid},
		{"bad role", map[string]any{"username": "hank", "password": "long-enough", "email": "h@x", "role": "root"}, 400, ECodeInvalid},
		{"email without @", map[string]any{"username": "hank", "password": "long-enough", "email": "hank", "role": "member"}, 400, ECodeInvalid},
		{"email with two @", map[string]any{"username": "hank", "password": "long-enough", "email": "h@a@b", "role": "member"}, 400, ECodeInvalid},
		{"email with space", map[string]any{"username": "hank", "password": "long-enough", "email": "h ank@x", "role": "member"}, 400, ECodeInvalid},
		{"org field", map[string]any{"username": "hank", "password": "long-enough", "email": "h@x", "role": "member", "org": "globex"}, 400, ECodeInvalid},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			opts := []reqOpt{as("alice")}
			if tc.body != nil {
				opts = append(opts, jsonBody(tc.body))
			}
			wantError(t, e.do("POST", "/users", opts...), tc.status, tc.code)
		})
	}
	t.Run("password errors", func(t *testing.T) {
		wantError(t, e.do("PUT", "/users/bob/password", as("bob"), jsonBody(`{"password":"short"}`)), 400, ECodeInvalid)
		wantError(t, e.do("PUT", "/users/bob/password", as("bob")), 400, ECodeInvalid)
		wantError(t, e.do("PUT", "/users/bob/password", as("bob"), jsonBody(`{"pasword":"long-enough-1"}`)), 400, ECodeInvalid)
	})
}

// TestUserRemovalRevokes: removing a user revokes their personal tokens
// with one subject cut-off, and leaves administrative tokens alone.
func TestUserRemovalRevokes(t *testing.T) {
	e := newEnv(t)
	bob1, _ := e.userToken("bob", nil)
	bob2, _ := e.createToken("bob", map[string]any{"name": "ci"})
	frankAdmin, _ := e.createToken("frank", map[string]any{"name": "infra", "type": "administrative"})
	frankPersonal, _ := e.createToken("frank", map[string]any{"name": "mine"})
	e.clock.Advance(time.Second)

	wantStatus(t, e.do("DELETE", "/users/bob", as("alice")), 204)
	wantStatus(t, e.do("DELETE", "/users/frank", as("alice")), 204)
	wantError(t, e.do("GET", "/tokens", as("bob")), 401, ECodeUnauthorized)

	for _, tc := range []struct {
		name        string
		token       string
		wantRevoked bool
	}{
		{"bob's user token", bob1, true},
		{"bob's named token", bob2, true},
		{"frank's personal token", frankPersonal, true},
		{"frank's administrative token", frankAdmin, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("GET", "/user-token?token="+tc.token, as("alice"))
			wantStatus(t, r, http.StatusOK)
			var got createdTokenJSON
			r.decode(t, &got)
			if got.Revoked != tc.wantRevoked || got.Active == tc.wantRevoked {
				t.Errorf("got revoked=%v active=%v, want revoked=%v", got.Revoked, got.Active, tc.wantRevoked)
			}
		})
	}
	entries, err := e.st.ListRevocations(context.Background(), 0, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, en := range entries {
		switch en.Kind {
		case store.RevokeSubject:
			subjects = append(subjects, en.Org+"/"+en.Value)
			if !en.ExpiresAt.Equal(en.NotBefore.Add(8760 * time.Hour)) {
				t.Errorf("subject entry %s expires %v, want not-before + max TTL", en.Value, en.ExpiresAt)
			}
		case store.RevokeToken:
			t.Errorf("user removal appended a per-token entry for %s; want one subject entry", en.Value)
		}
	}
	slices.Sort(subjects)
	if want := []string{"acme/bob", "acme/frank"}; !slices.Equal(subjects, want) {
		t.Errorf("subject cut-offs: got %v, want %v", subjects, want)
	}
}

func TestPasswordChangeRevokes(t *testing.T) {
	e := newEnv(t)
	keep, _ := e.userToken("bob", nil)
	e.clock.Advance(time.Second)
	wantStatus(t, e.do("PUT", "/users/bob/password", as("bob"), jsonBody(map[string]any{"password": "second-password"})), 204)
	if r := e.do("POST", "/introspect", as("alice"), form("token", keep)); r.object(t)["active"] != true {
		t.Errorf("password change without revoke_tokens revoked a token: %s", r.body)
	}
	e.clock.Advance(time.Second)
	wantStatus(t, e.do("PUT", "/users/bob/password", as("alice"), jsonBody(map[string]any{"password": "third-password", "revoke_tokens": true})), 204)
	if r := e.do("POST", "/introspect", as("alice"), form("token", keep)); string(r.body) != `{"active":false}` {
		t.Errorf("password change with revoke_tokens: got %s, want inactive", r.body)
	}
	e.clock.Advance(time.Second)
	fresh := e.do("POST", "/user-token", basic("bob", "third-password"))
	wantStatus(t, fresh, 200)
	var out userTokenResponse
	fresh.decode(t, &out)
	if r := e.do("POST", "/introspect", as("alice"), form("token", out.UserToken)); r.object(t)["active"] != true {
		t.Errorf("a token issued after the change is not active: %s", r.body)
	}
}

func TestAudit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.TrustedProxies = []string{"0.0.0.0"} })
	_, tok := e.createToken("bob", map[string]any{"name": "a"})
	e.clock.Advance(time.Minute)
	mid := e.clock.Now()
	r := e.do("POST", "/tokens/"+tok.TokenID+"/regenerate", as("bob"), from("198.51.100.7"))
	wantStatus(t, r, 201)
	var next createdTokenJSON
	r.decode(t, &next)
	wantStatus(t, e.do("POST", "/tokens/"+next.TokenID+"/copy", as("alice"), jsonBody(`{"name":"a2"}`)), 201)
	wantStatus(t, e.do("DELETE", "/tokens/"+next.TokenID, as("alice")), 204)
	wantStatus(t, e.do("POST", "/users", as("alice"), jsonBody(map[string]any{"username": "ivy", "password": "ivy-password", "email": "ivy@x", "role": "member"})), 201)
	wantStatus(t, e.do("PUT", "/users/ivy/password", as("alice"), jsonBody(map[string]any{"password": "ivy-password-2"})), 204)
	wantStatus(t, e.do("DELETE", "/users/ivy", as("alice")), 204)
	wantError(t, e.do("GET", "/tokens", basic("carol", "wrong-password"), from("203.0.113.9")), 401, ECodeUnauthorized)
	wantError(t, e.do("GET", "/tokens", basic("dave", "wrong-password")), 401, ECodeUnauthorized)

	type ev struct {
		Actor, Action, Target, ClientIP, Time string
	}
	read := func(t *testing.T, user, query string) []ev {
		t.Helper()
		r := e.do("GET", "/audit"+query, as(user))
		wantStatus(t, r, 200)
		var out struct {
			Events []struct {
				Actor    string `json:"actor"`
				Action   string `json:"action"`
				Target   string `json:"target"`
				ClientIP string `json:"client_ip"`
				Time     string `json:"time"`
			} `json:"events"`
		}
		r.decode(t, &out)
		var evs []ev
		for _, x := range out.Events {
			evs = append(evs, ev{x.Actor, x.Action, x.Target, x.ClientIP, x.Time})
		}
		return evs
	}
	all := read(t, "alice", "")
	var actions []string
	for _, x := range all {
		actions = append(actions, x.Action)
	}
	for _, want := range []string{"token.create", "token.regenerate", "token.copy", "token.revoke", "user.add", "user.password", "user.remove", "login.failed"} {
		if !slices.Contains(actions, want) {
			t.Errorf("audit lacks %s: got %v", want, actions)
		}
	}
	for _, x := range all {
		switch x.Action {
		case "token.regenerate":
			if x.Actor != "bob" || x.Target != tok.TokenID || x.ClientIP != "198.51.100.7" {
				t.Errorf("regenerate event: got %+v, want bob on %s from 198.51.100.7", x, tok.TokenID)
			}
		case "login.failed":
			if x.Target != "carol" || x.ClientIP != "203.0.113.9" || x.Actor != "" {
				t.Errorf("failed login event: got %+v, want target carol from 203.0.113.9", x)
			}
		}
		if x.Target == "dave" {
			t.Errorf("acme's audit shows globex's event %+v", x)
		}
	}
	filters := []struct {
		name, query string
		check       func(ev) bool
	}{
		{"actor", "?actor=bob", func(x ev) bool { return x.Actor == "bob" }},
		{"action", "?action=user.add", func(x ev) bool { return x.Action == "user.add" }},
		{"since", "?since=" + mid.Format(time.RFC3339), func(x ev) bool { return x.Time >= mid.Format(time.RFC3339) }},
		{"until", "?until=" + testStart.Add(30*time.Second).Format(time.RFC3339), func(x ev) bool { return x.Time < mid.Format(time.RFC3339) }},
	}
	for _, f := range filters {
		t.Run(f.name, func(t *testing.T) {
			evs := read(t, "alice", f.query)
			if len(evs) == 0 {
				t.Fatalf("no events for %s", f.query)
			}
			for _, x := range evs {
				if !f.check(x) {
					t.Errorf("%s: event %+v does not match", f.query, x)
				}
			}
		})
	}
	t.Run("limit", func(t *testing.T) {
		if evs := read(t, "alice", "?limit=2"); len(evs) != 2 {
			t.Errorf("limit=2: got %d events", len(evs))
		}
	})
	t.Run("other org sees its own", func(t *testing.T) {
		evs := read(t, "dave", "")
		if len(evs) != 1 || evs[0].Action != "login.failed" || evs[0].Target != "dave" {
			t.Errorf("globex audit: got %+v, want one failed login for dave", evs)
		}
	})
	for _, q := range []string{"?since=yesterday", "?until=2026-13-01T00:00:00Z", "?limit=-1", "?limit=x",
		"?since=2026-11-24T00:00:00Z&until=2026-11-23T00:00:00Z"} {
		t.Run("bad "+q, func(t *testing.T) {
			wantError(t, e.do("GET", "/audit"+q, as("alice")), 400, ECodeInvalid)
		})
	}
}
