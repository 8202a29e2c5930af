package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-auth/signet/directory/ldaptest"
)

// ldapYAML is the auth.ldap section for srv; the service account's
// password comes from SIGNET_AUTH_LDAP_BIND_PASSWORD.
func ldapYAML(srv *ldaptest.Server, syncInterval string) string {
	return fmt.Sprintf(`auth:
  ldap:
    url: %s
    bind_dn: %q
    user_base: %q
    user_filter: "(&(objectClass=inetOrgPerson)(uid={username})(!(employeeType=disabled)))"
    email_attribute: mail
    organization: corp
    admin_group: %q
    sync_interval: %s
`, srv.URL, ldaptest.ServiceDN, ldaptest.People, ldaptest.AdminGroup, syncInterval)
}

// introspectActive asks POST /introspect, as user, whether token is active.
func (e *env) introspectActive(user, pass, token string) bool {
	e.tb.Helper()
	req, err := http.NewRequest("POST", e.url+"/introspect", strings.NewReader(url.Values{"token": {token}}.Encode()))
	if err != nil {
		e.tb.Fatal(err)
	}
	req.SetBasicAuth(user, pass)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.tb.Fatalf("POST /introspect: %v", err)
	}
	defer resp.Body.Close()
	var out struct {
		Active *bool `json:"active"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || out.Active == nil {
		e.tb.Fatalf("POST /introspect: status %d, error %v", resp.StatusCode, err)
	}
	return *out.Active
}

// eventually polls cond every 100ms for at most limit.
func eventually(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestLDAPEndToEnd drives the real binary against a real slapd: directory
// users sign in and are created, the admin group makes admins, bad
// usernames and passwords are refused, the sync removes a user deleted
// from the directory with their tokens revoked everywhere (introspection
// and an offline verifier), and a directory that is down answers 503 and
// costs nobody their account.
func TestLDAPEndToEnd(t *testing.T) {
	t.Logf("slapd: %s", ldaptest.Version())
	srv := ldaptest.Start(t)
	srv.AddUser("dora", "dora-directory-pw", "dora@corp.example.com")
	srv.AddUser("dan", "dan-directory-pw", "dan@corp.example.com")
	srv.AddAdmin("dora")

	e := newEnv(t, ldapYAML(srv, "1s"))
	e.extraEnv = []string{"SIGNET_AUTH_LDAP_BIND_PASSWORD=" + ldaptest.ServicePassword}
	if out, errOut, code := e.cli("olga-local-password\n", "user", "add", "olga", "--org", "corp", "--role", "admin",
		"--email", "olga@corp.example.com", "--password-stdin"); code != 0 {
		t.Fatalf("user add olga: exit %d: %s %s", code, out, errOut)
	}
	e.start()
	if strings.Contains(e.logs.String(), ldaptest.ServicePassword) {
		t.Fatalf("the service account's password is in the log")
	}

	// First sign-ins create the users.
	r := e.do("POST", "/user-token", "dora", "dora-directory-pw", "")
	mustStatus(t, r, 200)
	doraToken := r.json(t)["user-token"].(string)
	claims := verifyWithJWKS(t, e, doraToken)
	if claims["sub"] != "dora" || claims["org"] != "corp" {
		t.Fatalf("dora's claims: got %v, want sub dora, org corp", claims)
	}
	r = e.do("POST", "/tokens", "dora", "dora-directory-pw", `{"name":"deploy"}`)
	mustStatus(t, r, 201)
	doraNamed := r.json(t)["token"].(string)
	r = e.do("POST", "/user-token", "dan", "dan-directory-pw", "")
	mustStatus(t, r, 200)
	danToken := r.json(t)["user-token"].(string)

	r = e.do("GET", "/users", "dora", "dora-directory-pw", "")
	mustStatus(t, r, 200) // an admin through the group
	for _, want := range []string{`"username":"dora"`, `"username":"dan"`, `"email":"dan@corp.example.com"`, `"source":"ldap"`} {
		if !strings.Contains(string(r.body), want) {
			t.Errorf("GET /users as dora: %s lacks %s", r.body, want)
		}
	}
	mustStatus(t, e.do("GET", "/users", "dan", "dan-directory-pw", ""), 403) // a member
	out, _, _ := e.cli("", "user", "list", "--org", "corp")
	for _, name := range []string{"dora", "dan", "olga"} {
		if !strings.Contains(out, name) {
			t.Errorf("signet user list: %q lacks %s", out, name)
		}
	}
	if !strings.Contains(out, "ldap") {
		t.Errorf("signet user list: %q does not show the directory users' source", out)
	}

	// Refused: wrong passwords, injection attempts, an empty password.
	for _, c := range []struct{ user, pass string }{
		{"dora", "dan-directory-pw"},
		{"dan", ""},
		{"*", "dora-directory-pw"},
		{")(uid=*", "dora-directory-pw"},
		{"admin)(|(uid=*", "dora-directory-pw"},
		{"nobody", "dora-directory-pw"},
	} {
		r := e.do("POST", "/user-token", c.user, c.pass, "")
		if r.status != 401 || r.header.Get("WWW-Authenticate") != `Basic realm="signet"` {
			t.Errorf("POST /user-token as %q: got %d %s, want 401 with the Basic challenge", c.user, r.status, r.body)
		}
	}

	if _, _, code := e.cli("", "verify", "--issuer", e.url, doraToken); code != 0 {
		t.Fatalf("signet verify of dora's token before removal: exit %d, want 0", code)
	}

	// Removed from the directory: the next sync removes dora and revokes
	// her personal tokens everywhere.
	srv.DeleteUser("dora")
	if !eventually(15*time.Second, func() bool { return !e.introspectActive("olga", "olga-local-password", doraToken) }) {
		t.Fatalf("dora's token still active 15s after her removal from the directory; logs:\n%s", e.logs.String())
	}
	if e.introspectActive("olga", "olga-local-password", doraNamed) {
		t.Errorf("dora's named token still active after her removal")
	}
	if !e.introspectActive("olga", "olga-local-password", danToken) {
		t.Errorf("dan's token revoked by dora's removal")
	}
	// The revocation list carries it: an offline verifier refuses it.
	if !eventually(5*time.Second, func() bool {
		_, _, code := e.cli("", "verify", "--issuer", e.url, doraToken)
		return code == 1
	}) {
		t.Errorf("signet verify still accepts dora's token after her removal")
	}
	r = e.do("GET", "/users", "olga", "olga-local-password", "")
	mustStatus(t, r, 200)
	if strings.Contains(string(r.body), `"username":"dora"`) {
		t.Errorf("GET /users after the sync: %s still lists dora", r.body)
	}
	mustStatus(t, e.do("POST", "/user-token", "dora", "dora-directory-pw", ""), 401)
	r = e.do("GET", "/audit?action=user.remove", "olga", "olga-local-password", "")
	mustStatus(t, r, 200)
	if !strings.Contains(string(r.body), `"actor":"ldap-sync"`) || !strings.Contains(string(r.body), `"target":"dora"`) {
		t.Errorf("audit of the removal: got %s, want user.remove of dora by ldap-sync", r.body)
	}

	// Directory down: directory sign-ins answer 503, local ones work,
	// and the syncs that fail meanwhile remove nobody.
	srv.Stop()
	r = e.do("POST", "/user-token", "dan", "dan-directory-pw", "")
	if r.status != 503 || r.json(t)["error"] != "unavailable" {
		t.Fatalf("sign-in while the directory is down: got %d %s, want 503 unavailable", r.status, r.body)
	}
	mustStatus(t, e.do("GET", "/tokens", "olga", "olga-local-password", ""), 200)
	failed := func() int { return strings.Count(e.logs.String(), "directory sync failed") }
	if !eventually(15*time.Second, func() bool { return failed() >= 2 }) {
		t.Fatalf("no failed directory sync logged within 15s; logs:\n%s", e.logs.String())
	}
	r = e.do("GET", "/users", "olga", "olga-local-password", "")
	mustStatus(t, r, 200)
	if !strings.Contains(string(r.body), `"username":"dan"`) {
		t.Errorf("dan was removed while the directory was down: %s", r.body)
	}
	if !e.introspectActive("olga", "olga-local-password", danToken) {
		t.Errorf("dan's token revoked while the directory was down")
	}
	srv.Restart()
	mustStatus(t, e.do("POST", "/user-token", "dan", "dan-directory-pw", ""), 200)
	if strings.Contains(e.logs.String(), "dan-directory-pw") || strings.Contains(e.logs.String(), ldaptest.ServicePassword) {
		t.Errorf("a password reached the log")
	}
	e.stop()
}

// TestLDAPConfigErrors: a broken auth.ldap stops signet serve before it
// creates the store, with a message naming the key.
func TestLDAPConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, wantKey string
	}{
		{"http url", "auth:\n  ldap:\n    url: http://ldap.example.com\n    bind_dn: cn=svc,dc=x\n    bind_password: pw-123\n    user_base: ou=p,dc=x\n    organization: corp\n", "auth.ldap.url"},
		{"user base not a DN", "auth:\n  ldap:\n    url: ldap://127.0.0.1:1\n    bind_dn: cn=svc,dc=x\n    bind_password: pw-123\n    user_base: people\n    organization: corp\n", "auth.ldap.user_base"},
		{"filter not a filter", "auth:\n  ldap:\n    url: ldap://127.0.0.1:1\n    bind_dn: cn=svc,dc=x\n    bind_password: pw-123\n    user_base: ou=p,dc=x\n    user_filter: \"uid={username}))\"\n    organization: corp\n", "auth.ldap.user_filter"},
		{"no bind password", "auth:\n  ldap:\n    url: ldap://127.0.0.1:1\n    bind_dn: cn=svc,dc=x\n    user_base: ou=p,dc=x\n    organization: corp\n", "auth.ldap.bind_password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.yaml)
			_, errOut, code := e.cli("", "serve")
			if code == 0 {
				t.Fatalf("signet serve: exit 0, want an error naming %s", tc.wantKey)
			}
			if !strings.Contains(errOut, tc.wantKey) || !strings.Contains(errOut, "config.yaml line ") {
				t.Errorf("signet serve: stderr %q, want it to name %s and its line", errOut, tc.wantKey)
			}
			if strings.Contains(errOut, "pw-123") {
				t.Errorf("signet serve: stderr %q repeats the bind password", errOut)
			}
			if _, err := os.Stat(filepath.Join(e.dir, "data", "signet.db")); err == nil {
				t.Errorf("signet serve created the store before refusing the configuration")
			}
		})
	}
}
