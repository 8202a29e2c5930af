package config

import (
	"strings"
	"testing"
	"time"
)

const ldapSection = `
auth:
  ldap:
    url: ldaps://ldap.example.com
    bind_dn: cn=signet,ou=services,dc=example,dc=com
    user_base: ou=people,dc=example,dc=com
    organization: corp
    admin_group: cn=signet-admins,ou=groups,dc=example,dc=com
`

func TestLDAPDefaultsAndEnvironment(t *testing.T) {
	t.Chdir(t.TempDir())
	c, err := Load("", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Auth.LDAP.Enabled() {
		t.Errorf("auth.ldap enabled without a url")
	}
	// Without the service account's password the file still loads: the
	// offline commands and the gate read it too (signet serve refuses).
	if c, err := Load(writeFile(t, ldapSection), nil, nil); err != nil || c.Auth.LDAP.BindPassword != "" {
		t.Fatalf("Load without bind_password: got %q, %v; want it to load", c.Auth.LDAP.BindPassword, err)
	}
	t.Setenv("SIGNET_AUTH_LDAP_BIND_PASSWORD", "from-the-environment")
	c, err = Load(writeFile(t, ldapSection), nil, nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	l := c.Auth.LDAP
	checks := []struct {
		name      string
		got, want any
	}{
		{"auth.ldap.url", l.URL, "ldaps://ldap.example.com"},
		{"auth.ldap.bind_dn", l.BindDN, "cn=signet,ou=services,dc=example,dc=com"},
		{"auth.ldap.bind_password", l.BindPassword, "from-the-environment"},
		{"auth.ldap.user_base", l.UserBase, "ou=people,dc=example,dc=com"},
		{"auth.ldap.user_filter", l.UserFilter, "(uid={username})"},
		{"auth.ldap.email_attribute", l.EmailAttribute, "mail"},
		{"auth.ldap.organization", l.Organization, "corp"},
		{"auth.ldap.admin_group", l.AdminGroup, "cn=signet-admins,ou=groups,dc=example,dc=com"},
		{"auth.ldap.sync_interval", l.SyncInterval, 5 * time.Minute},
	}
	for _, tc := range checks {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if !l.Enabled() {
		t.Errorf("auth.ldap not enabled with a url")
	}
}

func TestLDAPRefusesWhatCannotWork(t *testing.T) {
	tests := []struct {
		name, old, new, wantKey string
		env                     map[string]string
	}{
		{"http url", "url: ldaps://", "url: http://", "auth.ldap.url", nil},
		{"filter without placeholder", "    organization", "    user_filter: (uid=alice)\n    organization", "auth.ldap.user_filter", nil},
		{"sync too short", "    organization", "    sync_interval: 10ms\n    organization", "auth.ldap.sync_interval", nil},
		{"sync too long", "    organization", "    sync_interval: 48h\n    organization", "auth.ldap.sync_interval", nil},
		{"empty organization", "organization: corp", `organization: ""`, "auth.ldap.organization", nil},
		{"organization not an org name", "organization: corp", `organization: "Corp Inc"`, "auth.ldap.organization", nil},
		{"empty user base", "user_base: ou=people,dc=example,dc=com", `user_base: ""`, "auth.ldap.user_base", nil},
		{"keys without url", "url: ldaps://ldap.example.com", `url: ""`, "auth.ldap.url", nil},
		{"a misspelt key", "    organization", "    usr_filter: (uid={username})\n    organization", "auth.ldap.usr_filter", nil},
		{"a duration without a unit", "    organization", "    sync_interval: 300\n    organization", "auth.ldap.sync_interval", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SIGNET_AUTH_LDAP_BIND_PASSWORD", "s3cret-service-pw")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			body := ldapSection
			if tc.old != "" {
				if !strings.Contains(body, tc.old) {
					t.Fatalf("the section has no %q", tc.old)
				}
				body = strings.Replace(body, tc.old, tc.new, 1)
			}
			_, err := Load(writeFile(t, body), nil, nil)
			if err == nil {
				t.Fatalf("Load: got nil error, want one naming %s", tc.wantKey)
			}
			if !strings.Contains(err.Error(), tc.wantKey) {
				t.Errorf("Load: got %q, want it to name %s", err, tc.wantKey)
			}
			if strings.Contains(err.Error(), "s3cret-service-pw") {
				t.Errorf("Load: error %q repeats the bind password", err)
			}
		})
	}
}
