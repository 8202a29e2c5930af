package issuer

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signet-auth/signet/keys"
	"github.com/signet-auth/signet/store"
)

func TestUserTokenIssue(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Audience = []string{"api.example.com"} })
	r := e.do("POST", "/user-token", as("alice"))
	wantStatus(t, r, http.StatusOK)

	body := r.object(t)
	keysOf := make([]string, 0, len(body))
	for k := range body {
		keysOf = append(keysOf, k)
	}
	slices.Sort(keysOf)
	if want := []string{"expire_time", "expires_at", "token_id", "user-token"}; !slices.Equal(keysOf, want) {
		t.Fatalf("response keys: got %v, want %v", keysOf, want)
	}
	wantExp := testStart.Add(24 * time.Hour)
	if got, want := body["expire_time"], wantExp.Format("2006-01-02 15:04:05"); got != want {
		t.Errorf("expire_time: got %v, want %v", got, want)
	}
	if got, want := body["expires_at"], wantExp.Format(time.RFC3339); got != want {
		t.Errorf("expires_at: got %v, want %v", got, want)
	}
	value, id := body["user-token"].(string), body["token_id"].(string)

	cl, head := e.tokenClaims(value)
	if head["typ"] != "at+jwt" {
		t.Errorf("typ: got %v, want at+jwt", head["typ"])
	}
	if head["alg"] != "ES256" {
		t.Errorf("alg: got %v, want ES256 (the default)", head["alg"])
	}
	wantClaims := claims{
		Issuer: testPublicURL, Subject: "alice", Audience: audience{"api.example.com"},
		IssuedAt: testStart.Unix(), NotBefore: testStart.Unix(), Expiry: wantExp.Unix(),
		ID: id, Org: "acme", TokenType: "personal", Scope: "*",
	}
	if got, _ := json.Marshal(cl); string(got) != string(must(json.Marshal(wantClaims))) {
		t.Errorf("claims: got %s, want %s", got, must(json.Marshal(wantClaims)))
	}
	if raw, err := base64.RawURLEncoding.DecodeString(id); err != nil || len(raw) < 16 {
		t.Errorf("jti %q: want at least 128 bits of base64url (err %v)", id, err)
	}

	rec := e.record(id)
	if rec.KeyID != head["kid"] || rec.Lifetime != 24*time.Hour || rec.Owner != "alice" ||
		rec.Subject != "alice" || rec.Type != store.TokenPersonal || rec.Org != "acme" || rec.CreatedBy != "alice" {
		t.Errorf("record: got %+v, want kid %v, lifetime 24h, owner/subject/creator alice, personal, acme", rec, head["kid"])
	}
	if !rec.IssuedAt.Equal(testStart) || !rec.ExpiresAt.Equal(wantExp) {
		t.Errorf("record times: got %v..%v, want %v..%v", rec.IssuedAt, rec.ExpiresAt, testStart, wantExp)
	}
	if !strings.Contains(string(e.keys.JWKS()), head["kid"].(string)) {
		t.Errorf("kid %v is not in the JWKS", head["kid"])
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestUserTokenBodies(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxTTL = 1000 * time.Hour })
	cases := []struct {
		name       string
		body       any
		wantLife   time.Duration
		wantScopes string
	}{
		{"empty body", "", 24 * time.Hour, "*"},
		{"empty object", "{}", 24 * time.Hour, "*"},
		{"expires_in duration", map[string]any{"expires_in": "72h"}, 72 * time.Hour, "*"},
		{"expires_in seconds", map[string]any{"expires_in": 3600}, time.Hour, "*"},
		{"expires_in seconds string", map[string]any{"expires_in": "120"}, 2 * time.Minute, "*"},
		{"expires_in null", `{"expires_in":null}`, 24 * time.Hour, "*"},
		{"expires_in at max", map[string]any{"expires_in": "1000h"}, 1000 * time.Hour, "*"},
		{"expires_at", map[string]any{"expires_at": testStart.Add(48 * time.Hour).Format(time.RFC3339)}, 48 * time.Hour, "*"},
		{"expires_at other zone", map[string]any{"expires_at": "2026-11-23T12:00:00+01:00"}, time.Hour, "*"},
		{"scopes sorted and deduplicated", map[string]any{"scopes": []string{"b:write", "a:read", "b:write"}}, 24 * time.Hour, "a:read b:write"},
		{"scope pattern", map[string]any{"scopes": []string{"bucket:*"}}, 24 * time.Hour, "bucket:*"},
		{"no scopes", map[string]any{"scopes": []string{}}, 24 * time.Hour, ""},
		{"preset", map[string]any{"preset": "extended"}, 24 * time.Hour, "reports:read reports:write"},
		{"name", map[string]any{"name": "laptop"}, 24 * time.Hour, "*"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := []reqOpt{as("bob")}
			if tc.body != "" {
				opts = append(opts, jsonBody(tc.body))
			}
			r := e.do("POST", "/user-token", opts...)
			wantStatus(t, r, http.StatusOK)
			var out userTokenResponse
			r.decode(t, &out)
			cl, _ := e.tokenClaims(out.UserToken)
			if got := time.Duration(cl.Expiry-cl.IssuedAt) * time.Second; got != tc.wantLife {
				t.Errorf("lifetime: got %s, want %s", got, tc.wantLife)
			}
			if cl.Scope != tc.wantScopes {
				t.Errorf("scope: got %q, want %q", cl.Scope, tc.wantScopes)
			}
			if rec := e.record(out.TokenID); rec.Lifetime != tc.wantLife {
				t.Errorf("recorded lifetime: got %s, want %s", rec.Lifetime, tc.wantLife)
			}
		})
	}
}

// TestUserTokenErrors: every malformed or refused request is a 4xx with
// the JSON error shape, never a 5xx.
func TestUserTokenErrors(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.Roles = map[string][]string{"admin": {"*"}, "member": {"reports:*"}}
		c.MaxFailuresUser = 1000
		c.MaxFailuresClient = 1000
	})
	long := strings.Repeat("a", 129)
	many := make([]string, 101)
	for i := range many {
		many[i] = "s" + strings.Repeat("x", i)
	}
	cases := []struct {
		name   string
		opts   []reqOpt
		status int
		code   string
	}{
		{"no auth", nil, 401, ECodeUnauthorized},
		{"wrong password", []reqOpt{basic("alice", "wrong-password")}, 401, ECodeUnauthorized},
		{"empty password", []reqOpt{basic("alice", "")}, 401, ECodeUnauthorized},
		{"unknown user", []reqOpt{basic("nobody", "whatever-pass")}, 401, ECodeUnauthorized},
		{"password over 72 bytes", []reqOpt{basic("alice", strings.Repeat("p", 100))}, 401, ECodeUnauthorized},
		{"bearer scheme", []reqOpt{authz("Bearer abc")}, 401, ECodeUnauthorized},
		{"scheme only", []reqOpt{authz("Basic")}, 401, ECodeUnauthorized},
		{"scheme and space", []reqOpt{authz("Basic ")}, 401, ECodeUnauthorized},
		{"bad base64", []reqOpt{authz("Basic !!!notbase64")}, 401, ECodeUnauthorized},
		{"unpadded base64", []reqOpt{authz("Basic " + strings.TrimRight(base64.StdEncoding.EncodeToString([]byte("alice:x")), "="))}, 401, ECodeUnauthorized},
		{"no colon", []reqOpt{authz("Basic " + base64.StdEncoding.EncodeToString([]byte("alice")))}, 401, ECodeUnauthorized},
		{"empty user", []reqOpt{authz("Basic " + base64.StdEncoding.EncodeToString([]byte(":"+passwordOf("alice"))))}, 401, ECodeUnauthorized},
		{"control char in user", []reqOpt{authz("Basic " + base64.StdEncoding.EncodeToString([]byte("al\x01ice:x")))}, 401, ECodeUnauthorized},
		{"invalid utf-8", []reqOpt{authz("Basic " + base64.StdEncoding.EncodeToString([]byte("alice:\xff\xfe")))}, 401, ECodeUnauthorized},
		{"huge header", []reqOpt{authz("Basic " + base64.StdEncoding.EncodeToString([]byte("alice:"+strings.Repeat("x", 2000))))}, 401, ECodeUnauthorized},
		{"two tokens", []reqOpt{authz("Basic YWxpY2U6eA== YWxpY2U6eA==")}, 401, ECodeUnauthorized},
		{"broken JSON", []reqOpt{as("alice"), jsonBody(`{"expires_in":`)}, 400, ECodeInvalid},
		{"not JSON", []reqOpt{as("alice"), jsonBody(`expires_in=1h`)}, 400, ECodeInvalid},
		{"JSON array", []reqOpt{as("alice"), jsonBody(`[]`)}, 400, ECodeInvalid},
		{"JSON null", []reqOpt{as("alice"), jsonBody(`null`)}, 400, ECodeInvalid},
		{"trailing data", []reqOpt{as("alice"), jsonBody(`{} {}`)}, 400, ECodeInvalid},
		{"unknown field", []reqOpt{as("alice"), jsonBody(`{"expires":"1h"}`)}, 400, ECodeInvalid},
		{"typo in expires_in", []reqOpt{as("alice"), jsonBody(`{"expire_in":"1h"}`)}, 400, ECodeInvalid},
		{"wrong type", []reqOpt{as("alice"), jsonBody(`{"scopes":"a b"}`)}, 400, ECodeInvalid},
		{"form fields", []reqOpt{as("alice"), rawBody("application/x-www-form-urlencoded", `name=x`)}, 400, ECodeInvalid},
		{"form-typed JSON from a page of another site", []reqOpt{as("alice"), header("Origin", "https://evil.example"), rawBody("application/x-www-form-urlencoded", `{"name":"x"}`)}, 403, ECodeForbidden},
		{"form-typed JSON, cross-site fetch", []reqOpt{as("alice"), header("Sec-Fetch-Site", "cross-site"), rawBody("application/x-www-form-urlencoded", `{"name":"x"}`)}, 403, ECodeForbidden},
		{"text content type", []reqOpt{as("alice"), rawBody("text/plain", `{"name":"x"}`)}, 400, ECodeInvalid},
		{"negative expires_in", []reqOpt{as("alice"), jsonBody(`{"expires_in":"-1h"}`)}, 400, ECodeInvalid},
		{"negative seconds", []reqOpt{as("alice"), jsonBody(`{"expires_in":-5}`)}, 400, ECodeInvalid},
		{"zero expires_in", []reqOpt{as("alice"), jsonBody(`{"expires_in":0}`)}, 400, ECodeInvalid},
		{"sub-second expires_in", []reqOpt{as("alice"), jsonBody(`{"expires_in":"500ms"}`)}, 400, ECodeInvalid},
		{"fractional seconds", []reqOpt{as("alice"), jsonBody(`{"expires_in":1.5}`)}, 400, ECodeInvalid},
		{"exponent seconds", []reqOpt{as("alice"), jsonBody(`{"expires_in":1e3}`)}, 400, ECodeInvalid},
		{"empty expires_in", []reqOpt{as("alice"), jsonBody(`{"expires_in":""}`)}, 400, ECodeInvalid},
		{"bool expires_in", []reqOpt{as("alice"), jsonBody(`{"expires_in":true}`)}, 400, ECodeInvalid},
		{"huge expires_in", []reqOpt{as("alice"), jsonBody(`{"expires_in":"8761h"}`)}, 400, ECodeInvalid},
		{"huge seconds", []reqOpt{as("alice"), jsonBody(`{"expires_in":99999999999}`)}, 400, ECodeInvalid},
		{"overflowing seconds", []reqOpt{as("alice"), jsonBody(`{"expires_in":99999999999999999999999}`)}, 400, ECodeInvalid},
		{"overflowing duration", []reqOpt{as("alice"), jsonBody(`{"expires_in":"9999999999999h"}`)}, 400, ECodeInvalid},
		{"expires_at in the past", []reqOpt{as("alice"), jsonBody(map[string]any{"expires_at": testStart.Add(-time.Minute).Format(time.RFC3339)})}, 400, ECodeInvalid},
		{"expires_at now", []reqOpt{as("alice"), jsonBody(map[string]any{"expires_at": testStart.Format(time.RFC3339)})}, 400, ECodeInvalid},
		{"expires_at past max", []reqOpt{as("alice"), jsonBody(map[string]any{"expires_at": testStart.Add(8761 * time.Hour).Format(time.RFC3339)})}, 400, ECodeInvalid},
		{"expires_at not RFC 3339", []reqOpt{as("alice"), jsonBody(`{"expires_at":"2026-11-24 10:00:00"}`)}, 400, ECodeInvalid},
		{"both expiry fields", []reqOpt{as("alice"), jsonBody(map[string]any{"expires_in": "1h", "expires_at": testStart.Add(time.Hour).Format(time.RFC3339)})}, 400, ECodeInvalid},
		{"unknown preset", []reqOpt{as("alice"), jsonBody(`{"preset":"nope"}`)}, 400, ECodeInvalid},
		{"scopes and preset", []reqOpt{as("alice"), jsonBody(`{"preset":"extended","scopes":["a"]}`)}, 400, ECodeInvalid},
		{"empty scope", []reqOpt{as("alice"), jsonBody(`{"scopes":[""]}`)}, 400, ECodeInvalid},
		{"scope with space", []reqOpt{as("alice"), jsonBody(`{"scopes":["a b"]}`)}, 400, ECodeInvalid},
		{"scope too long", []reqOpt{as("alice"), jsonBody(map[string]any{"scopes": []string{long}})}, 400, ECodeInvalid},
		{"star inside scope", []reqOpt{as("alice"), jsonBody(`{"scopes":["a*b"]}`)}, 400, ECodeInvalid},
		{"quote in scope", []reqOpt{as("alice"), jsonBody(`{"scopes":["a\"b"]}`)}, 400, ECodeInvalid},
		{"non-ASCII scope", []reqOpt{as("alice"), jsonBody(`{"scopes":["réad"]}`)}, 400, ECodeInvalid},
		{"too many scopes", []reqOpt{as("alice"), jsonBody(map[string]any{"scopes": many})}, 400, ECodeInvalid},
		{"null scope entry", []reqOpt{as("alice"), jsonBody(`{"scopes":[null]}`)}, 400, ECodeInvalid},
		{"name with control char", []reqOpt{as("alice"), jsonBody(`{"name":"a\u0007b"}`)}, 400, ECodeInvalid},
		{"name too long", []reqOpt{as("alice"), jsonBody(map[string]any{"name": strings.Repeat("n", 129)})}, 400, ECodeInvalid},
		{"member asks beyond role", []reqOpt{as("bob"), jsonBody(`{"scopes":["admin:all"]}`)}, 403, ECodeForbidden},
		{"member asks wider pattern", []reqOpt{as("bob"), jsonBody(`{"scopes":["report*"]}`)}, 403, ECodeForbidden},
		{"member asks for everything", []reqOpt{as("bob"), jsonBody(`{"scopes":["*"]}`)}, 403, ECodeForbidden},
		{"member preset beyond role", []reqOpt{as("bob"), jsonBody(`{"preset":"admin"}`)}, 403, ECodeForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/user-token", tc.opts...)
			wantError(t, r, tc.status, tc.code)
		})
	}
	// A member within their role still gets a token.
	if _, id := e.userToken("bob", map[string]any{"scopes": []string{"reports:read"}}); id == "" {
		t.Fatal("member within role: no token id")
	}
	// Nothing above was recorded.
	recs, err := e.st.ListTokens(context.Background(), store.TokenFilter{Org: "acme", IncludeRevoked: true, IncludeExpired: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 {
		t.Errorf("tokens recorded: got %d, want 1", len(recs))
	}
}

// TestUserTokenCurlFormTypedJSON: `curl -u user:pass -d '{...}'` labels
// its JSON as a form; a Basic-auth caller without an Origin header (not a
// browser) is answered as if it had said application/json, on every JSON
// endpoint.
func TestUserTokenCurlFormTypedJSON(t *testing.T) {
	e := newEnv(t)
	const formType = "application/x-www-form-urlencoded"
	r := e.do("POST", "/user-token", as("alice"), rawBody(formType, `{"expires_in":"72h","scopes":["reports:read"]}`))
	wantStatus(t, r, http.StatusOK)
	var out userTokenResponse
	r.decode(t, &out)
	cl, _ := e.tokenClaims(out.UserToken)
	if cl.Expiry-cl.IssuedAt != 72*3600 || cl.Scope != "reports:read" {
		t.Fatalf("claims: got exp-iat %d scope %q, want 259200 and reports:read", cl.Expiry-cl.IssuedAt, cl.Scope)
	}
	r = e.do("POST", "/tokens", as("alice"), rawBody(formType+"; charset=utf-8", `{"name":"curl","type":"administrative"}`))
	wantStatus(t, r, http.StatusCreated)
	// The issuer's own origin is no cross-site request.
	wantStatus(t, e.do("POST", "/user-token", as("alice"), header("Origin", testPublicURL), rawBody(formType, `{"name":"same-origin"}`)), http.StatusOK)
	// Strictness is unchanged: an unknown field is still refused.
	wantError(t, e.do("POST", "/user-token", as("alice"), rawBody(formType, `{"expire_in":"1h"}`)), 400, ECodeInvalid)
	// Without credentials it is still 401 first, never a body error.
	wantError(t, e.do("POST", "/user-token", rawBody(formType, `{"name":"x"}`)), 401, ECodeUnauthorized)
}

// TestUserTokenErrorsLeakNothing: error messages never repeat a password.
func TestUserTokenErrorsLeakNothing(t *testing.T) {
	e := newEnv(t)
	secret := "Sup3r-secret-pw"
	for _, r := range []*response{
		e.do("POST", "/user-token", basic("alice", secret)),
		e.do("POST", "/users", as("alice"), jsonBody(`{"username":"x","password":"`+secret+`","email":"x@y","role":"member","extra":1}`)),
		e.do("POST", "/users", as("alice"), jsonBody(`{"username":"x","password":"`+secret+"\x01"+`"}`)),
		e.do("POST", "/users", as("alice"), jsonBody(`{"username":"x","password":`+secret+`}`)),
	} {
		if strings.Contains(string(r.body), secret) || strings.Contains(string(r.body), "Sup3r") {
			t.Errorf("response %d %s repeats the password", r.status, r.body)
		}
		if r.status < 400 || r.status >= 500 {
			t.Errorf("status: got %d, want a 4xx", r.status)
		}
	}
}

func TestUserTokenInfo(t *testing.T) {
	e := newEnv(t)
	bobToken, bobID := e.userToken("bob", map[string]any{"name": "cli", "scopes": []string{"reports:read"}})

	// A token signed by another issuer's keys.
	otherKeys, err := keys.Open(keys.Config{Dir: filepath.Join(t.TempDir(), "keys"), Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := e.tokenClaims(bobToken)
	foreign, _, err := otherKeys.Sign(must(json.Marshal(cl)))
	if err != nil {
		t.Fatal(err)
	}
	// A token with our signature but a changed payload.
	parts := strings.Split(bobToken, ".")
	cl.Subject = "alice"
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(must(json.Marshal(cl))) + "." + parts[2]
	// A signature cut short.
	truncated := bobToken[:len(bobToken)-4]

	errCases := []struct {
		name   string
		user   string
		token  string
		status int
		code   string
	}{
		{"no token parameter", "bob", "", 400, ECodeInvalid},
		{"garbage", "bob", "not-a-token", 400, ECodeInvalidToken},
		{"two parts", "bob", parts[0] + "." + parts[1], 400, ECodeInvalidToken},
		{"other issuer", "bob", foreign, 400, ECodeInvalidToken},
		{"tampered payload", "bob", tampered, 400, ECodeInvalidToken},
		{"truncated signature", "bob", truncated, 400, ECodeInvalidToken},
		{"alg none", "bob", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + parts[1] + ".", 400, ECodeInvalidToken},
		{"other member", "carol", bobToken, 403, ECodeForbidden},
		{"other org admin", "dave", bobToken, 403, ECodeForbidden},
		{"other org member", "erin", bobToken, 403, ECodeForbidden},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("GET", "/user-token?token="+tc.token, as(tc.user))
			wantError(t, r, tc.status, tc.code)
		})
	}
	t.Run("no auth", func(t *testing.T) {
		wantError(t, e.do("GET", "/user-token?token="+bobToken), 401, ECodeUnauthorized)
	})

	for _, viewer := range []string{"bob", "alice"} {
		t.Run("active as "+viewer, func(t *testing.T) {
			r := e.do("GET", "/user-token?token="+bobToken, as(viewer))
			wantStatus(t, r, http.StatusOK)
			var got createdTokenJSON
			r.decode(t, &got)
			exp := testStart.Add(24 * time.Hour)
			if got.User != "bob" || got.Email != "bob@example.com" || got.Organization != "acme" ||
				got.TokenID != bobID || got.Type != "personal" || got.Name != "cli" ||
				!slices.Equal(got.Scopes, []string{"reports:read"}) || !got.Active || got.Revoked || got.Expired ||
				got.ExpireTime != exp.Format("2006-01-02 15:04:05") || got.ExpiresAt != exp.Format(time.RFC3339) ||
				got.IssuedAt != testStart.Format(time.RFC3339) {
				t.Errorf("info: got %+v, want bob's active token %s", got, bobID)
			}
			if strings.Contains(string(r.body), bobToken) {
				t.Error("info repeats the token value")
			}
		})
	}

	t.Run("revoked", func(t *testing.T) {
		wantStatus(t, e.do("DELETE", "/tokens/"+bobID, as("bob")), http.StatusNoContent)
		var got createdTokenJSON
		r := e.do("GET", "/user-token?token="+bobToken, as("bob"))
		wantStatus(t, r, http.StatusOK)
		r.decode(t, &got)
		if got.Active || !got.Revoked || got.RevokedAt == nil {
			t.Errorf("after revoke: got active=%v revoked=%v revoked_at=%v, want inactive and revoked", got.Active, got.Revoked, got.RevokedAt)
		}
	})

	t.Run("expired", func(t *testing.T) {
		tok, _ := e.userToken("carol", map[string]any{"expires_in": "1h"})
		e.clock.Advance(2 * time.Hour)
		var got createdTokenJSON
		r := e.do("GET", "/user-token?token="+tok, as("carol"))
		wantStatus(t, r, http.StatusOK)
		r.decode(t, &got)
		if got.Active || got.Revoked || !got.Expired {
			t.Errorf("after expiry: got active=%v revoked=%v expired=%v, want expired only", got.Active, got.Revoked, got.Expired)
		}
	})

	t.Run("withdrawn key", func(t *testing.T) {
		tok, _ := e.userToken("carol", nil)
		vc, err := e.keys.Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		kid := vc.KeyID
		now := e.clock.Now()
		if _, err := e.st.RevokeKey(context.Background(), kid, now, now.Add(9000*time.Hour)); err != nil {
			t.Fatal(err)
		}
		var got createdTokenJSON
		r := e.do("GET", "/user-token?token="+tok, as("carol"))
		wantStatus(t, r, http.StatusOK)
		r.decode(t, &got)
		if got.Active || !got.Revoked {
			t.Errorf("key withdrawn: got active=%v revoked=%v, want revoked", got.Active, got.Revoked)
		}
	})
}

// TestUserTokenPruned: a long-expired token whose record was pruned is
// still answered from its claims.
func TestUserTokenPruned(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.PruneAfter = time.Hour })
	tok, _ := e.userToken("bob", map[string]any{"expires_in": "1h"})
	e.clock.Advance(3 * time.Hour)
	now := e.clock.Now()
	if _, err := e.st.Prune(context.Background(), now, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	r := e.do("GET", "/user-token?token="+tok, as("bob"))
	wantStatus(t, r, http.StatusOK)
	var got createdTokenJSON
	r.decode(t, &got)
	if got.Active || !got.Expired || got.User != "bob" {
		t.Errorf("pruned token: got %+v, want bob's expired token", got)
	}
	// Introspection calls it inactive; revocation has nothing to do.
	r = e.do("POST", "/introspect", as("bob"), form("token", tok))
	if string(r.body) != `{"active":false}` {
		t.Errorf("introspect pruned: got %s, want {\"active\":false}", r.body)
	}
	wantStatus(t, e.do("POST", "/revoke", as("bob"), form("token", tok)), http.StatusOK)
}
