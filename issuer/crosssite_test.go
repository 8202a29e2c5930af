package issuer

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/signet-auth/signet/store"
)

// crossSiteHeaders are what a browser sends when a page that is not the
// issuer's own makes it send a request: an Origin other than the public
// URL's (another site, another origin of the same site, another port or
// scheme, an opaque one), or Fetch Metadata saying so.
var crossSiteHeaders = []struct {
	name   string
	header map[string]string
}{
	{"Origin of another site", map[string]string{"Origin": "https://evil.example"}},
	{"Origin of another host of the same site", map[string]string{"Origin": "https://app.signet.test"}},
	{"Origin of another port", map[string]string{"Origin": "https://signet.test:8443"}},
	{"Origin of another scheme", map[string]string{"Origin": "http://signet.test"}},
	{"opaque Origin", map[string]string{"Origin": "null"}},
	{"Origin with a path", map[string]string{"Origin": "https://signet.test/ui"}},
	{"Sec-Fetch-Site same-site", map[string]string{"Sec-Fetch-Site": "same-site"}},
	{"Sec-Fetch-Site cross-site", map[string]string{"Sec-Fetch-Site": "cross-site"}},
	{"Sec-Fetch-Site cross-site beside our Origin", map[string]string{"Origin": testPublicURL, "Sec-Fetch-Site": "cross-site"}},
	{"Sec-Fetch-Site in capitals", map[string]string{"Sec-Fetch-Site": "Cross-Site"}},
}

// TestCrossSiteRequestsRefused: a page on another origin drives a browser
// that cached the admin's Basic credentials. Every state-changing request
// it can make is refused with 403 before anything else is read (whatever
// its body or content type, on every path), and nothing changes.
func TestCrossSiteRequestsRefused(t *testing.T) {
	e := newEnv(t)
	value, tok := e.createToken("alice", map[string]any{"name": "target", "scopes": []string{"reports:read"}})
	newAdmin := `{"username":"mallory","password":"mallory-password-1","email":"m@example.com","role":"admin"}`
	newPass := `{"password":"taken-over-password-1"}`
	regenerate := "/tokens/" + tok.TokenID + "/regenerate"

	attacks := []struct {
		name, method, path string
		opts               []reqOpt
	}{
		{"raw JSON without a content type adds an admin (fetch, XHR, sendBeacon)", "POST", "/users", []reqOpt{rawBody("", newAdmin)}},
		{"text/plain JSON adds an admin (form enctype=text/plain)", "POST", "/users", []reqOpt{rawBody("text/plain", newAdmin)}},
		{"form-typed JSON adds an admin", "POST", "/users", []reqOpt{rawBody("application/x-www-form-urlencoded", newAdmin)}},
		{"JSON-typed body adds an admin", "POST", "/users", []reqOpt{jsonBody(newAdmin)}},
		{"an empty form regenerates a token", "POST", regenerate, []reqOpt{rawBody("application/x-www-form-urlencoded", "")}},
		{"no body at all regenerates a token", "POST", regenerate, nil},
		{"a raw body copies a token", "POST", "/tokens/" + tok.TokenID + "/copy", []reqOpt{rawBody("", `{"name":"stolen"}`)}},
		{"DELETE revokes a token", "DELETE", "/tokens/" + tok.TokenID, nil},
		{"DELETE removes a user", "DELETE", "/users/bob", nil},
		{"PUT sets a password", "PUT", "/users/bob/password", []reqOpt{rawBody("", newPass)}},
		{"PATCH", "PATCH", "/tokens/" + tok.TokenID, []reqOpt{rawBody("", `{}`)}},
		{"POST /tokens", "POST", "/tokens", []reqOpt{rawBody("", `{"name":"planted"}`)}},
		{"POST /user-token", "POST", "/user-token", nil},
		{"POST /revoke", "POST", "/revoke", []reqOpt{form("token", value)}},
		{"POST /introspect", "POST", "/introspect", []reqOpt{form("token", value)}},
		{"sign in to the web UI", "POST", "/ui/api/login", []reqOpt{jsonBody(map[string]string{"username": "alice", "password": passwordOf("alice")})}},
		{"an unknown path", "POST", "/nowhere", []reqOpt{rawBody("", "x")}},
	}
	for _, a := range attacks {
		for _, cs := range crossSiteHeaders {
			t.Run(a.name+"/"+cs.name, func(t *testing.T) {
				opts := append([]reqOpt{as("alice")}, a.opts...)
				for k, v := range cs.header {
					opts = append(opts, header(k, v))
				}
				wantError(t, e.do(a.method, a.path, opts...), http.StatusForbidden, ECodeForbidden)
			})
		}
	}

	ctx := context.Background()
	if _, err := e.st.GetUser(ctx, "mallory"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetUser(mallory): got %v, want ErrNotFound (no user was added)", err)
	}
	if _, err := e.st.GetUser(ctx, "bob"); err != nil {
		t.Errorf("GetUser(bob): got %v, want bob still there", err)
	}
	if rec := e.record(tok.TokenID); rec.RevokedAt != nil {
		t.Errorf("token %s: revoked at %v, want untouched", tok.TokenID, rec.RevokedAt)
	}
	var list struct {
		Tokens []createdTokenJSON `json:"tokens"`
	}
	r := e.do("GET", "/tokens?include_revoked=true", as("alice"))
	wantStatus(t, r, http.StatusOK)
	r.decode(t, &list)
	if len(list.Tokens) != 1 || list.Tokens[0].TokenID != tok.TokenID {
		t.Errorf("tokens after the attacks: got %+v, want only %s", list.Tokens, tok.TokenID)
	}
	wantStatus(t, e.do("POST", "/user-token", as("bob")), http.StatusOK) // bob's password is unchanged
}

// TestCrossSiteRefusedBeforeAuthentication: the refusal comes before the
// credentials are looked at, so a cross-site page can neither spend the
// victim's failed-login budget nor learn whether a password is right.
func TestCrossSiteRefusedBeforeAuthentication(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxFailuresUser = 3 })
	checks := 0
	inner := e.srv.compareHash
	e.srv.compareHash = func(hash, pw []byte) error { checks++; return inner(hash, pw) }
	for _, creds := range []reqOpt{basic("carol", "wrong-password"), as("carol"), authz("Basic !!"), func(*request) {}} {
		for range 5 {
			wantError(t, e.do("POST", "/user-token", creds, header("Origin", "https://evil.example")), http.StatusForbidden, ECodeForbidden)
		}
	}
	if checks != 0 {
		t.Errorf("password checks for cross-site requests: got %d, want 0", checks)
	}
	events, err := e.st.ListAudit(context.Background(), store.AuditFilter{Action: "login.failed"})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 0 {
		t.Errorf("login.failed events: got %d, want 0", len(events))
	}
	wantStatus(t, e.do("POST", "/user-token", as("carol")), http.StatusOK)
}

// TestSameOriginAndScriptsAllowed: the issuer's own page (its Origin, or
// Fetch Metadata same-origin/none) and scripts that send neither header
// change things as before; reads are never refused for their origin.
func TestSameOriginAndScriptsAllowed(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		header map[string]string
	}{
		{"no Origin, no Fetch Metadata (curl, scripts, the CLI)", nil},
		{"our Origin", map[string]string{"Origin": testPublicURL}},
		{"our Origin in capitals", map[string]string{"Origin": "HTTPS://Signet.Test"}},
		{"our Origin with its default port", map[string]string{"Origin": "https://signet.test:443"}},
		{"Sec-Fetch-Site same-origin", map[string]string{"Origin": testPublicURL, "Sec-Fetch-Site": "same-origin"}},
		{"Sec-Fetch-Site none", map[string]string{"Sec-Fetch-Site": "none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []reqOpt
			for k, v := range tc.header {
				opts = append(opts, header(k, v))
			}
			wantStatus(t, e.do("POST", "/user-token", append([]reqOpt{as("alice")}, opts...)...), http.StatusOK)
			_, tok := e.createToken("alice", map[string]any{"name": "same-origin " + tc.name})
			wantStatus(t, e.do("POST", "/tokens/"+tok.TokenID+"/regenerate", append([]reqOpt{as("alice")}, opts...)...), http.StatusCreated)
			wantStatus(t, e.do("DELETE", "/tokens/"+tok.TokenID, append([]reqOpt{as("alice")}, opts...)...), http.StatusNoContent)
		})
	}
	for _, cs := range crossSiteHeaders {
		t.Run("GET with "+cs.name, func(t *testing.T) {
			opts := []reqOpt{as("alice")}
			for k, v := range cs.header {
				opts = append(opts, header(k, v))
			}
			wantStatus(t, e.do("GET", "/tokens", opts...), http.StatusOK)
			wantStatus(t, e.do("HEAD", "/healthz", opts...), http.StatusOK)
		})
	}
}

// TestOrigins: the issuer's own origin is the scheme, host and port of its
// public URL, serialized as browsers serialize origins; an Origin header
// is a bare origin or nothing the issuer can be.
func TestOrigins(t *testing.T) {
	for _, tc := range []struct{ publicURL, want string }{
		{"https://signet.test", "https://signet.test"},
		{"https://Auth.Example.COM/signet", "https://auth.example.com"},
		{"http://localhost:8080", "http://localhost:8080"},
		{"http://localhost:80", "http://localhost"},
		{"https://auth.example.com:443", "https://auth.example.com"},
		{"https://auth.example.com:8443", "https://auth.example.com:8443"},
		{"http://[::1]:8080", "http://[::1]:8080"},
	} {
		got, err := publicOrigin(tc.publicURL)
		if err != nil || got != tc.want {
			t.Errorf("publicOrigin(%q): got %q, %v, want %q", tc.publicURL, got, err, tc.want)
		}
		if got, ok := requestOrigin(tc.want); !ok || got != tc.want {
			t.Errorf("requestOrigin(%q): got %q, %v, want it unchanged", tc.want, got, ok)
		}
	}
	for _, bad := range []string{"null", "", "evil.example", "https://", "https://a.example/", "https://a.example/path",
		"https://a.example?x", "https://a.example?", "https://u@a.example", "ftp://a.example", "https://a.example#", "https://a.example#f"} {
		if got, ok := requestOrigin(bad); ok {
			t.Errorf("requestOrigin(%q): got %q, want refused", bad, got)
		}
	}
}
