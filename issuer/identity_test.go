package issuer

import (
	"net/http"
	"testing"
	"time"
)

// TestRecreatedUserIsANewPerson: a user created with the name of a removed
// user is a new person. They never see, look up, regenerate, copy or revoke
// the removed user's tokens; the removed user's tokens stay visible to the
// org's admins.
func TestRecreatedUserIsANewPerson(t *testing.T) {
	e := newEnv(t)
	newIvan := func(password string) {
		t.Helper()
		wantStatus(t, e.do("POST", "/users", as("alice"), jsonBody(map[string]any{
			"username": "ivan", "password": password, "email": "ivan@example.com", "role": "member",
		})), http.StatusCreated)
	}
	newIvan("old-ivan-password")
	oldIvan := basic("ivan", "old-ivan-password")
	r := e.do("POST", "/tokens", oldIvan, jsonBody(map[string]any{"name": "deploy", "scopes": []string{"reports:read"}}))
	wantStatus(t, r, http.StatusCreated)
	var named createdTokenJSON
	r.decode(t, &named)
	r = e.do("POST", "/user-token", oldIvan)
	wantStatus(t, r, http.StatusOK)
	var short userTokenResponse
	r.decode(t, &short)

	e.clock.Advance(time.Minute)
	wantStatus(t, e.do("DELETE", "/users/ivan", as("alice")), http.StatusNoContent)
	e.clock.Advance(time.Minute)
	newIvan("new-ivan-password")
	ivan := basic("ivan", "new-ivan-password")

	t.Run("list", func(t *testing.T) {
		for _, q := range []string{"", "?include_revoked=true", "?include_revoked=true&include_expired=true", "?owner=ivan&include_revoked=true"} {
			r := e.do("GET", "/tokens"+q, ivan)
			wantStatus(t, r, http.StatusOK)
			var out struct {
				Tokens []createdTokenJSON `json:"tokens"`
			}
			r.decode(t, &out)
			if len(out.Tokens) != 0 {
				t.Errorf("GET /tokens%s as the new ivan: got %d tokens of the removed ivan, want none", q, len(out.Tokens))
			}
		}
	})
	for _, id := range []string{named.TokenID, short.TokenID} {
		t.Run("by id "+id, func(t *testing.T) {
			wantError(t, e.do("GET", "/tokens/"+id, ivan), http.StatusNotFound, ECodeNotFound)
			wantError(t, e.do("POST", "/tokens/"+id+"/regenerate", ivan), http.StatusNotFound, ECodeNotFound)
			wantError(t, e.do("POST", "/tokens/"+id+"/copy", ivan, jsonBody(`{"name":"mine now"}`)), http.StatusNotFound, ECodeNotFound)
			wantError(t, e.do("DELETE", "/tokens/"+id, ivan), http.StatusNotFound, ECodeNotFound)
		})
	}
	t.Run("by value", func(t *testing.T) {
		for _, v := range []string{named.Token, short.UserToken} {
			wantError(t, e.do("GET", "/user-token?token="+v, ivan), http.StatusForbidden, ECodeForbidden)
			wantError(t, e.do("POST", "/revoke", ivan, form("token", v)), http.StatusForbidden, ECodeForbidden)
			r := e.do("POST", "/introspect", ivan, form("token", v))
			wantStatus(t, r, http.StatusOK)
			if active, _ := r.object(t)["active"].(bool); active {
				t.Errorf("introspection of the removed ivan's token as the new ivan: active")
			}
		}
	})
	t.Run("admins still see them", func(t *testing.T) {
		r := e.do("GET", "/tokens/"+named.TokenID, as("alice"))
		wantStatus(t, r, http.StatusOK)
		if got := r.object(t)["revoked"]; got != true {
			t.Errorf("the removed ivan's token: revoked = %v, want true", got)
		}
	})
	t.Run("the new ivan's own tokens", func(t *testing.T) {
		r := e.do("POST", "/tokens", ivan, jsonBody(map[string]any{"name": "deploy"}))
		wantStatus(t, r, http.StatusCreated)
		var mine createdTokenJSON
		r.decode(t, &mine)
		wantStatus(t, e.do("GET", "/tokens/"+mine.TokenID, ivan), http.StatusOK)
		r = e.do("GET", "/tokens?include_revoked=true", ivan)
		var out struct {
			Tokens []createdTokenJSON `json:"tokens"`
		}
		r.decode(t, &out)
		if len(out.Tokens) != 1 || out.Tokens[0].TokenID != mine.TokenID {
			t.Errorf("GET /tokens as the new ivan: got %+v, want only %s", out.Tokens, mine.TokenID)
		}
	})
}
