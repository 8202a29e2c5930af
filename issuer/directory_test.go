package issuer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-auth/signet/directory"
	"github.com/signet-auth/signet/directory/ldaptest"
	"github.com/signet-auth/signet/store"
)

// The directory tests run the issuer against a real slapd (ldaptest).

// dirFilter is the user filter of these tests: people who are not
// disabled, so that a test can make someone leave the filter.
const dirFilter = "(&(objectClass=inetOrgPerson)(uid={username})(!(employeeType=disabled)))"

// dirPassword is each directory user's password in these tests.
func dirPassword(uid string) string { return "dir-" + uid + "-password" }

// dirEnv is a testEnv whose issuer signs directory users in against srv.
type dirEnv struct {
	*testEnv
	ldap *ldaptest.Server
}

// newDirEnv starts slapd with dora (an admin through the group) and dan
// (a member), and an issuer using it for the organization "corp".
func newDirEnv(tb testing.TB, mods ...func(*Config)) *dirEnv {
	tb.Helper()
	srv := ldaptest.Start(tb)
	srv.AddUser("dora", dirPassword("dora"), "dora@corp.example.com")
	srv.AddUser("dan", dirPassword("dan"), "dan@corp.example.com")
	srv.AddAdmin("dora")
	d, err := directory.New(directory.Config{
		URL: srv.URL, BindDN: ldaptest.ServiceDN, BindPassword: ldaptest.ServicePassword,
		UserBase: ldaptest.People, UserFilter: dirFilter, AdminGroup: ldaptest.AdminGroup,
		Timeout: 5 * time.Second,
	})
	if err != nil {
		tb.Fatalf("directory.New: %v", err)
	}
	all := append([]func(*Config){func(c *Config) {
		c.Directory = d
		c.DirectoryOrg = "corp"
		// The tests run the sync themselves; the loop's first pass finds
		// no directory user yet.
		c.DirectorySyncInterval = time.Hour
	}}, mods...)
	e := &dirEnv{testEnv: newEnv(tb, all...), ldap: srv}
	// A clock with nanoseconds, as a real one has: users the directory
	// creates must come back from the store as the store holds them.
	e.clock.Advance(123456789 * time.Nanosecond)
	return e
}

// asDir authenticates as a directory user with their directory password.
func asDir(uid string) reqOpt { return basic(uid, dirPassword(uid)) }

// sync runs one pass of the directory sync.
func (e *dirEnv) sync() DirectorySync {
	e.tb.Helper()
	res, err := e.srv.Service().SyncDirectory(context.Background())
	if err != nil {
		e.tb.Fatalf("SyncDirectory: got error %v, want nil", err)
	}
	return res
}

func (e *dirEnv) user(name string) (store.User, bool) {
	e.tb.Helper()
	u, err := e.st.GetUser(context.Background(), name)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, false
	}
	if err != nil {
		e.tb.Fatalf("GetUser(%s): %v", name, err)
	}
	return u, true
}

// tokenState asks GET /user-token as asker whether value is active.
func (e *dirEnv) tokenActive(asker reqOpt, value string) bool {
	e.tb.Helper()
	r := e.do("GET", "/user-token?token="+value, asker)
	wantStatus(e.tb, r, http.StatusOK)
	var got createdTokenJSON
	r.decode(e.tb, &got)
	if got.Active == got.Revoked {
		e.tb.Fatalf("token: active=%v revoked=%v, want exactly one of them", got.Active, got.Revoked)
	}
	return got.Active
}

func TestDirectorySignIn(t *testing.T) {
	t.Logf("slapd: %s", ldaptest.Version())
	e := newDirEnv(t)

	for _, tc := range []struct {
		uid      string
		wantRole store.Role
	}{
		{"dora", store.RoleAdmin},
		{"dan", store.RoleMember},
	} {
		t.Run(tc.uid, func(t *testing.T) {
			if _, ok := e.user(tc.uid); ok {
				t.Fatalf("%s exists before their first sign-in", tc.uid)
			}
			r := e.do("POST", "/user-token", asDir(tc.uid))
			wantStatus(t, r, http.StatusOK)
			var out userTokenResponse
			r.decode(t, &out)
			cl, _ := e.tokenClaims(out.UserToken)
			if cl.Subject != tc.uid || cl.Org != "corp" || cl.TokenType != "personal" {
				t.Errorf("claims: got sub %q org %q type %q, want %s, corp, personal", cl.Subject, cl.Org, cl.TokenType, tc.uid)
			}
			u, ok := e.user(tc.uid)
			if !ok {
				t.Fatalf("%s: not in the store after signing in", tc.uid)
			}
			want := store.User{ID: u.ID, Username: tc.uid, Email: tc.uid + "@corp.example.com", Org: "corp", Role: tc.wantRole, Source: store.SourceLDAP}
			if u.ID == "" || u.Username != want.Username || u.Email != want.Email || u.Org != want.Org ||
				u.Role != want.Role || u.Source != want.Source || u.PasswordHash != "" {
				t.Errorf("stored user: got %+v, want %+v and no password hash", u, want)
			}
			if rec := e.record(out.TokenID); rec.OwnerID != u.ID {
				t.Errorf("token owner id: got %q, want %q", rec.OwnerID, u.ID)
			}
			// The second sign-in finds the same person.
			wantStatus(t, e.do("GET", "/tokens", asDir(tc.uid)), http.StatusOK)
			if again, _ := e.user(tc.uid); again.ID != u.ID {
				t.Errorf("second sign-in: id %q, want %q", again.ID, u.ID)
			}
		})
	}

	t.Run("admin rights come from the group", func(t *testing.T) {
		r := e.do("GET", "/users", asDir("dora"))
		wantStatus(t, r, http.StatusOK)
		var out struct {
			Users []userView `json:"users"`
		}
		r.decode(t, &out)
		if len(out.Users) != 2 || out.Users[0].Username != "dan" || out.Users[1].Username != "dora" {
			t.Fatalf("GET /users as dora: got %+v, want dan and dora of corp", out.Users)
		}
		for _, u := range out.Users {
			if u.Source != "ldap" || u.Organization != "corp" {
				t.Errorf("%s: source %q org %q, want ldap, corp", u.Username, u.Source, u.Organization)
			}
		}
		wantError(t, e.do("GET", "/users", asDir("dan")), http.StatusForbidden, ECodeForbidden)
		// Directory users stay in their organization.
		wantError(t, e.do("DELETE", "/users/bob", asDir("dora")), http.StatusNotFound, ECodeNotFound)
	})

	t.Run("audited", func(t *testing.T) {
		events, err := e.st.ListAudit(context.Background(), store.AuditFilter{Org: "corp", Action: "user.add"})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != 2 {
			t.Fatalf("user.add events in corp: got %d, want 2", len(events))
		}
		for _, ev := range events {
			if ev.Actor != directoryActor || !strings.Contains(ev.Detail, "directory") {
				t.Errorf("event %+v: want actor %s and a detail naming the directory", ev, directoryActor)
			}
		}
	})

	t.Run("local users are untouched", func(t *testing.T) {
		wantStatus(t, e.do("POST", "/user-token", as("alice")), http.StatusOK)
		if u, _ := e.user("alice"); u.Source != store.SourceLocal {
			t.Errorf("alice's source: got %q, want local", u.Source)
		}
	})

	t.Run("a directory user's password is the directory's", func(t *testing.T) {
		r := e.do("PUT", "/users/dan/password", asDir("dan"), jsonBody(map[string]any{"password": "a-new-local-password"}))
		wantError(t, r, http.StatusConflict, ECodeConflict)
		r = e.do("PUT", "/users/dan/password", asDir("dora"), jsonBody(map[string]any{"password": "a-new-local-password"}))
		wantError(t, r, http.StatusConflict, ECodeConflict)
		wantError(t, e.do("GET", "/tokens", basic("dan", "a-new-local-password")), http.StatusUnauthorized, ECodeUnauthorized)
		wantStatus(t, e.do("GET", "/tokens", asDir("dan")), http.StatusOK)
	})
}

// TestDirectoryLocalUserWins: a local user's name is never a directory
// question, even when the directory has someone of that name.
func TestDirectoryLocalUserWins(t *testing.T) {
	e := newDirEnv(t)
	e.ldap.AddUser("alice", dirPassword("alice"), "alice@corp.example.com")
	wantStatus(t, e.do("GET", "/tokens", as("alice")), http.StatusOK)
	wantError(t, e.do("GET", "/tokens", asDir("alice")), http.StatusUnauthorized, ECodeUnauthorized)
	if u, _ := e.user("alice"); u.Org != "acme" || u.Source != store.SourceLocal {
		t.Errorf("alice: got org %q source %q, want acme, local", u.Org, u.Source)
	}
}

func TestDirectoryRefusals(t *testing.T) {
	e := newDirEnv(t, func(c *Config) { c.MaxFailuresUser = 5 })
	wantStatus(t, e.do("GET", "/tokens", asDir("dora")), http.StatusOK) // dora exists from now on

	cases := []struct {
		name, user, password string
	}{
		{"wrong password of a directory user", "dora", dirPassword("dan")},
		{"wrong password of a first sign-in", "dan", dirPassword("dora")},
		{"password differing in its last character", "dan", strings.TrimSuffix(dirPassword("dan"), "d") + "e"},
		{"empty password", "dan", ""},
		{"unknown user", "zed", dirPassword("dora")},
		{"uppercase username (not a username shape)", "DAN", dirPassword("dan")},
		{"filter wildcard", "*", dirPassword("dora")},
		{"filter wildcard prefix", "d*", dirPassword("dora")},
		{"filter break-out", ")(uid=*", dirPassword("dora")},
		{"filter break-out with an or", "admin)(|(uid=*", dirPassword("dora")},
		{"closed filter injection", "*)(uid=*))(|(uid=*", dirPassword("dora")},
		{"the service account's password", "dan", ldaptest.ServicePassword},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, e.do("POST", "/user-token", basic(tc.user, tc.password)), http.StatusUnauthorized, ECodeUnauthorized)
		})
	}
	if _, ok := e.user("dan"); ok {
		t.Errorf("dan was created without signing in")
	}
	users, err := e.st.ListUsers(context.Background(), "corp")
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 1 || users[0].Username != "dora" {
		t.Errorf("corp's users: got %v, want only dora", users)
	}

	t.Run("failures count against the limit", func(t *testing.T) {
		// dora has one wrong password above; four more reach the limit of
		// five, and then even her right password waits.
		for i := 0; i < 4; i++ {
			wantError(t, e.do("GET", "/tokens", basic("dora", "wrong-"+dirPassword("dora"))), http.StatusUnauthorized, ECodeUnauthorized)
		}
		wantError(t, e.do("GET", "/tokens", asDir("dora")), http.StatusTooManyRequests, ECodeRateLimited)
		e.clock.Advance(defaultFailureWindow + time.Second)
		wantStatus(t, e.do("GET", "/tokens", asDir("dora")), http.StatusOK)
	})

	t.Run("failed directory logins are audited", func(t *testing.T) {
		events, err := e.st.ListAudit(context.Background(), store.AuditFilter{Action: "login.failed"})
		if err != nil {
			t.Fatal(err)
		}
		var dora int
		for _, ev := range events {
			if ev.Target == "dora" {
				dora++
			}
		}
		if dora != 5 {
			t.Errorf("login.failed events for dora: got %d, want 5", dora)
		}
	})
}

func TestDirectoryUnavailable(t *testing.T) {
	e := newDirEnv(t)
	doraToken, _ := e.userToken("bob", nil) // a local user's token, for comparison
	r := e.do("POST", "/user-token", asDir("dora"))
	wantStatus(t, r, http.StatusOK)
	var dora userTokenResponse
	r.decode(t, &dora)

	e.ldap.Stop()
	t.Run("sign-ins answer 503", func(t *testing.T) {
		for _, tc := range []struct{ name, user, password string }{
			{"known directory user", "dora", dirPassword("dora")},
			{"first sign-in", "dan", dirPassword("dan")},
			{"wrong password (nothing could be checked)", "dora", "wrong-password"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantError(t, e.do("POST", "/user-token", basic(tc.user, tc.password)), http.StatusServiceUnavailable, ECodeUnavailable)
			})
		}
		// Nothing was checked, so nothing counts against the limit.
		if got := e.metric("signet_login_failures_total"); got != "0" {
			t.Errorf("login failures counted: got %s, want 0", got)
		}
		if got := e.metric(`signet_directory_logins_total{result="unavailable"}`); got != "3" {
			t.Errorf("unavailable directory logins counted: got %s, want 3", got)
		}
	})
	t.Run("local users still sign in", func(t *testing.T) {
		wantStatus(t, e.do("GET", "/tokens", as("alice")), http.StatusOK)
		if !e.tokenActive(as("bob"), doraToken) {
			t.Errorf("bob's token inactive")
		}
	})
	t.Run("the sync removes nobody", func(t *testing.T) {
		res, err := e.srv.Service().SyncDirectory(context.Background())
		if !errors.Is(err, directory.ErrUnavailable) {
			t.Fatalf("SyncDirectory: got %+v, %v; want ErrUnavailable", res, err)
		}
		if res.Removed != 0 {
			t.Errorf("removed %d, want 0", res.Removed)
		}
		if _, ok := e.user("dora"); !ok {
			t.Fatalf("dora was removed while the directory was down")
		}
		if rec := e.record(dora.TokenID); rec.RevokedAt != nil {
			t.Errorf("dora's token revoked while the directory was down")
		}
		e.srv.syncDirectory(context.Background())
		if got := e.metric(`signet_directory_syncs_total{result="failed"}`); got != "1" {
			t.Errorf("failed syncs counted: got %s, want 1", got)
		}
	})
	e.ldap.Restart()
	t.Run("back up", func(t *testing.T) {
		wantStatus(t, e.do("GET", "/tokens", asDir("dora")), http.StatusOK)
		if res := e.sync(); res.Removed != 0 || res.Checked != 1 {
			t.Errorf("sync: got %+v, want 1 checked, 0 removed", res)
		}
	})
}

func TestDirectorySyncRemoves(t *testing.T) {
	e := newDirEnv(t)
	// A local admin of corp, to look at the tokens once dora is gone.
	hash, err := HashPassword(passwordOf("olga"), PasswordPolicy{BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.CreateUser(context.Background(), store.User{Username: "olga", Email: "olga@corp.example.com",
		Org: "corp", Role: store.RoleAdmin, PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	doraUser, doraUserID := e.userTokenAs(asDir("dora"))
	doraNamed := e.createTokenAs(asDir("dora"), map[string]any{"name": "ci"})
	infra := e.createTokenAs(asDir("dora"), map[string]any{"name": "infra", "type": "administrative"})
	danUser, _ := e.userTokenAs(asDir("dan"))
	e.clock.Advance(time.Second)

	if res := e.sync(); res.Removed != 0 || res.Updated != 0 || res.Checked != 2 {
		t.Fatalf("sync with nothing changed: got %+v, want 2 checked", res)
	}

	t.Run("deleted from the directory", func(t *testing.T) {
		e.ldap.DeleteUser("dora")
		if res := e.sync(); res.Removed != 1 || res.Checked != 2 {
			t.Fatalf("sync: got %+v, want dora removed", res)
		}
		if _, ok := e.user("dora"); ok {
			t.Fatalf("dora still in the store")
		}
		if e.tokenActive(as("olga"), doraUser) || e.tokenActive(as("olga"), doraNamed) {
			t.Errorf("dora's personal tokens still active")
		}
		if !e.tokenActive(as("olga"), infra) {
			t.Errorf("the administrative token dora made was revoked; want it kept (it is the org's)")
		}
		r := e.do("POST", "/introspect", as("olga"), form("token", doraUser))
		if string(r.body) != `{"active":false}` {
			t.Errorf("introspect dora's token: got %s, want inactive", r.body)
		}
		if !e.tokenActive(as("olga"), danUser) {
			t.Errorf("dan's token revoked; want it kept")
		}
		// Exactly as DELETE /users/{name}: one subject cut-off.
		entries, err := e.st.ListRevocations(context.Background(), 0, e.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Kind != store.RevokeSubject || entries[0].Value != "dora" || entries[0].Org != "corp" {
			t.Errorf("revocations: got %+v, want one subject cut-off for corp/dora", entries)
		}
		events, err := e.st.ListAudit(context.Background(), store.AuditFilter{Org: "corp", Action: "user.remove"})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) != 1 || events[0].Actor != directoryActor || events[0].Target != "dora" {
			t.Errorf("user.remove events: got %+v, want one by %s for dora", events, directoryActor)
		}
		wantError(t, e.do("GET", "/tokens", asDir("dora")), http.StatusUnauthorized, ECodeUnauthorized)
	})

	t.Run("left the filter", func(t *testing.T) {
		e.ldap.Replace("dan", "employeeType", "disabled")
		if res := e.sync(); res.Removed != 1 {
			t.Fatalf("sync: got %+v, want dan removed", res)
		}
		if _, ok := e.user("dan"); ok {
			t.Fatalf("dan still in the store")
		}
		if e.tokenActive(as("olga"), danUser) {
			t.Errorf("dan's token still active")
		}
		wantError(t, e.do("GET", "/tokens", asDir("dan")), http.StatusUnauthorized, ECodeUnauthorized)
	})

	t.Run("back in the directory: a new person", func(t *testing.T) {
		// OpenLDAP keeps a deleted entry's DN in groups (without the
		// refint overlay); as a member, the new dora sees only her own.
		e.ldap.RemoveAdmin("dora")
		e.ldap.AddUser("dora", dirPassword("dora"), "dora@corp.example.com")
		e.clock.Advance(time.Second)
		r := e.do("GET", "/tokens?include_revoked=true", asDir("dora"))
		wantStatus(t, r, http.StatusOK)
		if strings.Contains(string(r.body), doraUserID) {
			t.Errorf("the new dora sees the removed dora's token: %s", r.body)
		}
		if u, _ := e.user("dora"); u.Role != store.RoleMember {
			t.Errorf("the new dora's role: got %q, want member", u.Role)
		}
	})

	t.Run("local users are never removed", func(t *testing.T) {
		e.sync()
		for _, name := range []string{"alice", "bob", "olga"} {
			if _, ok := e.user(name); !ok {
				t.Errorf("local user %s removed by the sync", name)
			}
		}
	})
}

// TestDirectorySyncFollowsChanges: email and group membership follow the
// directory at the sync and at sign-in; losing scopes revokes tokens.
func TestDirectorySyncFollowsChanges(t *testing.T) {
	e := newDirEnv(t, func(c *Config) {
		c.Roles = map[string][]string{"admin": {"*"}, "member": {"reports:*"}}
	})
	doraAdmin := e.createTokenAs(asDir("dora"), map[string]any{"name": "everything", "scopes": []string{"admin:all"}})
	danToken := e.createTokenAs(asDir("dan"), map[string]any{"name": "reports", "scopes": []string{"reports:read"}})
	e.clock.Advance(time.Second)

	e.ldap.Replace("dan", "mail", "daniel@corp.example.com")
	e.ldap.AddAdmin("dan")
	e.ldap.RemoveAdmin("dora")
	if res := e.sync(); res.Updated != 2 || res.Removed != 0 {
		t.Fatalf("sync: got %+v, want 2 updated", res)
	}
	if u, _ := e.user("dan"); u.Email != "daniel@corp.example.com" || u.Role != store.RoleAdmin {
		t.Errorf("dan: got email %q role %q, want daniel@corp.example.com, admin", u.Email, u.Role)
	}
	if u, _ := e.user("dora"); u.Role != store.RoleMember {
		t.Errorf("dora: got role %q, want member", u.Role)
	}
	if e.tokenActive(asDir("dan"), doraAdmin) {
		t.Errorf("dora's admin:all token survived her demotion to a role without admin:all")
	}
	if !e.tokenActive(asDir("dan"), danToken) {
		t.Errorf("dan's token was revoked by his promotion")
	}
	if res := e.sync(); res.Updated != 0 {
		t.Errorf("second sync: got %+v, want nothing updated", res)
	}

	t.Run("at sign-in", func(t *testing.T) {
		e.ldap.RemoveAdmin("dan")
		wantError(t, e.do("GET", "/users", asDir("dan")), http.StatusForbidden, ECodeForbidden)
		if u, _ := e.user("dan"); u.Role != store.RoleMember {
			t.Errorf("dan after signing in: role %q, want member", u.Role)
		}
	})

	t.Run("an email signet cannot use keeps the old one", func(t *testing.T) {
		e.ldap.Replace("dan", "mail", "not an address")
		e.sync()
		if u, _ := e.user("dan"); u.Email != "daniel@corp.example.com" {
			t.Errorf("dan's email: got %q, want the old one", u.Email)
		}
	})
}

// TestDirectoryUserWithoutEmail: a correct password but no usable email
// is refused with a reason, and no user is created.
func TestDirectoryUserWithoutEmail(t *testing.T) {
	e := newDirEnv(t)
	e.ldap.AddUser("nomail", dirPassword("nomail"), "")
	wantError(t, e.do("POST", "/user-token", asDir("nomail")), http.StatusForbidden, ECodeForbidden)
	if _, ok := e.user("nomail"); ok {
		t.Errorf("nomail was created")
	}
}

// TestDirectoryUserWithoutDirectory: a directory user cannot sign in once
// auth.ldap is gone from the configuration.
func TestDirectoryUserWithoutDirectory(t *testing.T) {
	e := newEnv(t)
	if err := e.st.CreateUser(context.Background(), store.User{Username: "dora", Email: "dora@corp.example.com",
		Org: "corp", Role: store.RoleAdmin, Source: store.SourceLDAP}); err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"", "anything-at-all"} {
		wantError(t, e.do("GET", "/tokens", basic("dora", pw)), http.StatusUnauthorized, ECodeUnauthorized)
	}
	if _, err := e.srv.Service().SyncDirectory(context.Background()); err == nil {
		t.Errorf("SyncDirectory without a directory: got nil error")
	}
}

// metric reads one sample's value from /metrics ("" when absent).
func (e *dirEnv) metric(sample string) string {
	e.tb.Helper()
	r := e.do("GET", "/metrics")
	wantStatus(e.tb, r, http.StatusOK)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(r.body)
	if m == nil {
		return ""
	}
	return string(m[1])
}

// userTokenAs is userToken for any credentials.
func (e *dirEnv) userTokenAs(cred reqOpt) (value, id string) {
	e.tb.Helper()
	r := e.do("POST", "/user-token", cred)
	wantStatus(e.tb, r, http.StatusOK)
	var out userTokenResponse
	r.decode(e.tb, &out)
	return out.UserToken, out.TokenID
}

// createTokenAs is createToken for any credentials; it returns the value.
func (e *dirEnv) createTokenAs(cred reqOpt, body map[string]any) string {
	e.tb.Helper()
	r := e.do("POST", "/tokens", cred, jsonBody(body))
	wantStatus(e.tb, r, http.StatusCreated)
	var meta createdTokenJSON
	r.decode(e.tb, &meta)
	return meta.Token
}

// TestDirectoryFailuresAtOnce: wrong directory passwords that arrive
// together are checked no more often than the per-user limit, as local
// ones (the reservation is taken before the directory is asked).
func TestDirectoryFailuresAtOnce(t *testing.T) {
	e := newDirEnv(t, func(c *Config) { c.MaxFailuresUser = 3 })
	const n = 12
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Go(func() {
			statuses <- e.do("GET", "/tokens", basic("dora", fmt.Sprintf("wrong-%d", i))).status
		})
	}
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for st := range statuses {
		counts[st]++
	}
	if counts[http.StatusUnauthorized] != 3 || counts[http.StatusTooManyRequests] != n-3 {
		t.Errorf("answers: got %v, want 3 × 401 and %d × 429", counts, n-3)
	}
	if got := e.metric(`signet_directory_logins_total{result="refused"}`); got != "3" {
		t.Errorf("directory checks: got %s refused, want 3", got)
	}
}
