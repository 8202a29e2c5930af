package directory_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/signet-auth/signet/directory"
	"github.com/signet-auth/signet/directory/ldaptest"
)

// Every test here runs against a real slapd (ldaptest).

func newDirectory(tb testing.TB, srv *ldaptest.Server, mutate func(*directory.Config)) *directory.LDAP {
	tb.Helper()
	cfg := directory.Config{
		URL:          srv.URL,
		BindDN:       ldaptest.ServiceDN,
		BindPassword: ldaptest.ServicePassword,
		UserBase:     ldaptest.People,
		AdminGroup:   ldaptest.AdminGroup,
		Timeout:      5 * time.Second,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	d, err := directory.New(cfg)
	if err != nil {
		tb.Fatalf("directory.New: got error %v, want nil", err)
	}
	return d
}

func TestAuthenticate(t *testing.T) {
	t.Logf("slapd: %s", ldaptest.Version())
	srv := ldaptest.Start(t)
	aliceDN := srv.AddUser("alice", "alice-password", "alice@example.com")
	bobDN := srv.AddUser("bob", "bob-password", "bob@example.com")
	srv.AddUser("nomail", "nomail-password", "")
	srv.AddAdmin("alice")
	d := newDirectory(t, srv, nil)
	ctx := context.Background()

	tests := []struct {
		name, user, password string
		want                 directory.Entry
		wantErr              error
	}{
		{"admin through the group", "alice", "alice-password",
			directory.Entry{Username: "alice", DN: aliceDN, Email: "alice@example.com", Admin: true}, nil},
		{"member", "bob", "bob-password",
			directory.Entry{Username: "bob", DN: bobDN, Email: "bob@example.com"}, nil},
		{"no mail attribute", "nomail", "nomail-password",
			directory.Entry{Username: "nomail", DN: ldaptest.UserDN("nomail")}, nil},
		{"wrong password", "alice", "bob-password", directory.Entry{}, directory.ErrInvalidCredentials},
		{"password differing in the last character", "alice", "alice-passwore", directory.Entry{}, directory.ErrInvalidCredentials},
		{"unknown user", "carol", "alice-password", directory.Entry{}, directory.ErrInvalidCredentials},
		{"empty password", "alice", "", directory.Entry{}, directory.ErrInvalidCredentials},
		{"empty username", "", "alice-password", directory.Entry{}, directory.ErrInvalidCredentials},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := d.Authenticate(ctx, tc.user, tc.password)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("Authenticate(%q): got error %v, want %v", tc.user, err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("Authenticate(%q): got %+v, want %+v", tc.user, got, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), tc.password) && tc.password != "" {
				t.Errorf("error %q repeats the password", err)
			}
		})
	}
}

// TestEmptyPasswordNeverBinds: this slapd accepts an unauthenticated bind
// (a DN without a password) as success, as many directories do; signing
// in with an empty password must still fail.
func TestEmptyPasswordNeverBinds(t *testing.T) {
	srv := ldaptest.Start(t)
	dn := srv.AddUser("alice", "alice-password", "alice@example.com")
	c, err := ldap.DialURL(srv.URL)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	if err := c.UnauthenticatedBind(dn); err != nil {
		t.Fatalf("the fixture must accept unauthenticated binds for this test to mean anything: got %v", err)
	}
	d := newDirectory(t, srv, nil)
	if _, err := d.Authenticate(context.Background(), "alice", ""); !errors.Is(err, directory.ErrInvalidCredentials) {
		t.Errorf("Authenticate(alice, empty password): got %v, want ErrInvalidCredentials", err)
	}
}

// TestFilterInjection: usernames that would widen or rewrite the filter
// if pasted into it find nobody, with any password, against a directory
// where a widened filter would find alice (and the service account's
// password would bind if the filter matched it).
func TestFilterInjection(t *testing.T) {
	srv := ldaptest.Start(t)
	srv.AddUser("alice", "alice-password", "alice@example.com")
	srv.AddAdmin("alice")
	filters := []string{
		directory.DefaultUserFilter,
		"(&(objectClass=inetOrgPerson)(uid={username}))",
		"(|(uid={username})(mail={username}))",
	}
	names := []string{"*", "a*", "*)(uid=*", ")(uid=*", "admin)(|(uid=*", "alice)(|(uid=*)",
		"*)(|(objectClass=*", "alice\x00", `alice\2a`, "(uid=alice)", "*))(|(cn=*"}
	for _, filter := range filters {
		d := newDirectory(t, srv, func(c *directory.Config) { c.UserFilter = filter })
		for _, name := range names {
			for _, pw := range []string{"alice-password", ldaptest.ServicePassword, "x"} {
				_, err := d.Authenticate(context.Background(), name, pw)
				if !errors.Is(err, directory.ErrInvalidCredentials) {
					t.Errorf("filter %s, username %q: got %v, want ErrInvalidCredentials", filter, name, err)
				}
			}
			found, err := d.Lookup(context.Background(), []string{name})
			if err != nil || len(found) != 0 {
				t.Errorf("filter %s, Lookup(%q): got %v, %v; want nobody", filter, name, found, err)
			}
		}
	}
}

func TestLookup(t *testing.T) {
	srv := ldaptest.Start(t)
	srv.AddUser("alice", "alice-password", "alice@example.com")
	srv.AddUser("bob", "bob-password", "bob@example.com")
	srv.AddUser("dora", "dora-password", "dora@example.com")
	srv.AddAdmin("bob")
	d := newDirectory(t, srv, func(c *directory.Config) {
		c.UserFilter = "(&(objectClass=inetOrgPerson)(uid={username})(!(employeeType=disabled)))"
	})
	srv.DeleteUser("alice")
	srv.Replace("dora", "employeeType", "disabled") // leaves the filter
	got, err := d.Lookup(context.Background(), []string{"alice", "bob", "dora", "zed"})
	if err != nil {
		t.Fatalf("Lookup: got error %v, want nil", err)
	}
	want := map[string]directory.Entry{"bob": {Username: "bob", DN: ldaptest.UserDN("bob"), Email: "bob@example.com", Admin: true}}
	if len(got) != len(want) || got["bob"] != want["bob"] {
		t.Errorf("Lookup: got %+v, want %+v", got, want)
	}
	if got, err := d.Lookup(context.Background(), nil); err != nil || len(got) != 0 {
		t.Errorf("Lookup(nobody): got %v, %v; want an empty map, nil", got, err)
	}
}

func TestAmbiguousFilter(t *testing.T) {
	srv := ldaptest.Start(t)
	srv.AddUser("alice", "alice-password", "shared@example.com")
	srv.AddUser("bob", "bob-password", "shared@example.com")
	// A filter by mail finds two people for one "username".
	d := newDirectory(t, srv, func(c *directory.Config) { c.UserFilter = "(mail={username})" })
	if _, err := d.Authenticate(context.Background(), "shared@example.com", "alice-password"); !errors.Is(err, directory.ErrInvalidCredentials) {
		t.Errorf("Authenticate(ambiguous): got %v, want ErrInvalidCredentials", err)
	}
	if _, err := d.Lookup(context.Background(), []string{"shared@example.com"}); !errors.Is(err, directory.ErrAmbiguous) {
		t.Errorf("Lookup(ambiguous): got %v, want ErrAmbiguous", err)
	}
}

func TestUnavailable(t *testing.T) {
	srv := ldaptest.Start(t)
	srv.AddUser("alice", "alice-password", "alice@example.com")
	d := newDirectory(t, srv, nil)
	ctx := context.Background()
	if _, err := d.Authenticate(ctx, "alice", "alice-password"); err != nil {
		t.Fatalf("Authenticate while up: got error %v, want nil", err)
	}

	t.Run("directory down", func(t *testing.T) {
		srv.Stop()
		defer srv.Restart()
		if _, err := d.Authenticate(ctx, "alice", "alice-password"); !errors.Is(err, directory.ErrUnavailable) {
			t.Errorf("Authenticate: got %v, want ErrUnavailable", err)
		}
		if _, err := d.Authenticate(ctx, "alice", "wrong"); !errors.Is(err, directory.ErrUnavailable) {
			t.Errorf("Authenticate(wrong password): got %v, want ErrUnavailable (nothing was checked)", err)
		}
		if got, err := d.Lookup(ctx, []string{"alice"}); !errors.Is(err, directory.ErrUnavailable) || got != nil {
			t.Errorf("Lookup: got %v, %v; want nil, ErrUnavailable", got, err)
		}
	})
	t.Run("back up", func(t *testing.T) {
		if _, err := d.Authenticate(ctx, "alice", "alice-password"); err != nil {
			t.Errorf("Authenticate after restart: got error %v, want nil", err)
		}
	})
	t.Run("service account refused", func(t *testing.T) {
		bad := newDirectory(t, srv, func(c *directory.Config) { c.BindPassword = "not-the-service-password" })
		_, err := bad.Authenticate(ctx, "alice", "alice-password")
		if !errors.Is(err, directory.ErrUnavailable) {
			t.Errorf("Authenticate: got %v, want ErrUnavailable", err)
		}
		if err != nil && strings.Contains(err.Error(), "not-the-service-password") {
			t.Errorf("error %q repeats the service account's password", err)
		}
		if _, err := bad.Lookup(ctx, []string{"alice"}); !errors.Is(err, directory.ErrUnavailable) {
			t.Errorf("Lookup: got %v, want ErrUnavailable", err)
		}
	})
	t.Run("user base missing", func(t *testing.T) {
		// A wrong user base must not read as "every user left".
		bad := newDirectory(t, srv, func(c *directory.Config) { c.UserBase = "ou=gone," + ldaptest.Suffix })
		if _, err := bad.Lookup(ctx, []string{"alice"}); !errors.Is(err, directory.ErrUnavailable) {
			t.Errorf("Lookup: got %v, want ErrUnavailable", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := d.Lookup(cctx, []string{"alice"}); !errors.Is(err, directory.ErrUnavailable) {
			t.Errorf("Lookup(cancelled): got %v, want ErrUnavailable", err)
		}
	})
	t.Run("admin group missing", func(t *testing.T) {
		// A group that does not exist has no members: nobody is an admin.
		dd := newDirectory(t, srv, func(c *directory.Config) { c.AdminGroup = "cn=gone,ou=groups," + ldaptest.Suffix })
		e, err := dd.Authenticate(ctx, "alice", "alice-password")
		if err != nil || e.Admin {
			t.Errorf("Authenticate: got %+v, %v; want a member, nil", e, err)
		}
	})
}

func TestNewRefusesBadConfig(t *testing.T) {
	good := directory.Config{
		URL: "ldap://127.0.0.1:389", BindDN: "cn=svc,dc=x", BindPassword: "secret-pw",
		UserBase: "ou=people,dc=x", AdminGroup: "cn=admins,dc=x",
	}
	if _, err := directory.New(good); err != nil {
		t.Fatalf("New(good): got error %v, want nil", err)
	}
	tests := []struct {
		name    string
		mutate  func(*directory.Config)
		wantKey string
	}{
		{"http url", func(c *directory.Config) { c.URL = "http://ldap.example.com" }, "auth.ldap.url"},
		{"no host", func(c *directory.Config) { c.URL = "ldap://" }, "auth.ldap.url"},
		{"base DN in the url", func(c *directory.Config) { c.URL = "ldap://h/dc=x" }, "auth.ldap.url"},
		{"no url", func(c *directory.Config) { c.URL = "" }, "auth.ldap.url"},
		{"no bind dn", func(c *directory.Config) { c.BindDN = "" }, "auth.ldap.bind_dn"},
		{"no bind password", func(c *directory.Config) { c.BindPassword = "" }, "auth.ldap.bind_password"},
		{"bind dn not a DN", func(c *directory.Config) { c.BindDN = "svc" }, "auth.ldap.bind_dn"},
		{"user base not a DN", func(c *directory.Config) { c.UserBase = "people" }, "auth.ldap.user_base"},
		{"no user base", func(c *directory.Config) { c.UserBase = "" }, "auth.ldap.user_base"},
		{"admin group not a DN", func(c *directory.Config) { c.AdminGroup = "admins" }, "auth.ldap.admin_group"},
		{"filter without placeholder", func(c *directory.Config) { c.UserFilter = "(uid=alice)" }, "auth.ldap.user_filter"},
		{"filter not a filter", func(c *directory.Config) { c.UserFilter = "uid={username}))" }, "auth.ldap.user_filter"},
		{"email attribute with a paren", func(c *directory.Config) { c.EmailAttribute = "mail)" }, "auth.ldap.email_attribute"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.mutate(&cfg)
			_, err := directory.New(cfg)
			if err == nil {
				t.Fatalf("New: got nil error, want one naming %s", tc.wantKey)
			}
			if !strings.Contains(err.Error(), tc.wantKey) {
				t.Errorf("New: got %q, want it to name %s", err, tc.wantKey)
			}
			if strings.Contains(err.Error(), "secret-pw") {
				t.Errorf("New: error %q repeats the bind password", err)
			}
		})
	}
}
