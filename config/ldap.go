package config

import (
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Auth configures sign-in beyond the local users.
type Auth struct {
	LDAP LDAP `mapstructure:"ldap"`
}

// LDAP configures directory sign-in (auth.ldap): usernames that are not
// local users are checked against an LDAP directory. Set URL to turn it
// on.
type LDAP struct {
	// URL is ldap://host[:port] or ldaps://host[:port].
	URL string `mapstructure:"url"`
	// BindDN and BindPassword are the service account that searches for
	// users (SIGNET_AUTH_LDAP_BIND_PASSWORD keeps the password out of the
	// file).
	BindDN       string `mapstructure:"bind_dn"`
	BindPassword string `mapstructure:"bind_password"`
	// UserBase is the DN searched (whole subtree) for users.
	UserBase string `mapstructure:"user_base"`
	// UserFilter finds one user; {username} is replaced by the username,
	// escaped.
	UserFilter string `mapstructure:"user_filter"`
	// EmailAttribute holds a user's email address.
	EmailAttribute string `mapstructure:"email_attribute"`
	// Organization is the org of every directory user.
	Organization string `mapstructure:"organization"`
	// AdminGroup is the DN of the group whose members get role admin;
	// empty: every directory user is a member.
	AdminGroup string `mapstructure:"admin_group"`
	// SyncInterval is how often directory users are checked against the
	// directory (removed when gone, role and email updated).
	SyncInterval time.Duration `mapstructure:"sync_interval"`
}

// Enabled reports whether directory sign-in is configured.
func (l LDAP) Enabled() bool { return l.URL != "" }

// Defaults and limits of auth.ldap.
const (
	defaultLDAPUserFilter     = "(uid={username})"
	defaultLDAPEmailAttribute = "mail"
	defaultLDAPSyncInterval   = 5 * time.Minute
	minLDAPSyncInterval       = time.Second
	maxLDAPSyncInterval       = 24 * time.Hour
)

// orgName is the shape of an organization name (the issuer's rule for
// every org, checked here so that signet stops before opening anything).
var orgName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

func defaultLDAP() LDAP {
	return LDAP{
		UserFilter:     defaultLDAPUserFilter,
		EmailAttribute: defaultLDAPEmailAttribute,
		SyncInterval:   defaultLDAPSyncInterval,
	}
}

// validate reports, through bad, every auth.ldap setting that cannot
// work. signet serve also builds the directory from them (the directory
// package checks the service account, the DNs and the filter's syntax)
// before it opens the store. No message repeats bind_password.
func (l LDAP) validate(bad func(key, format string, args ...any)) {
	if !l.Enabled() {
		for _, kv := range [][2]string{
			{"bind_dn", l.BindDN}, {"bind_password", l.BindPassword}, {"user_base", l.UserBase},
			{"organization", l.Organization}, {"admin_group", l.AdminGroup},
		} {
			if kv[1] != "" {
				bad("auth.ldap.url", "is empty but auth.ldap.%s is set; set the url to use directory sign-in", kv[0])
				return
			}
		}
		return
	}
	if u, err := url.Parse(l.URL); err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Hostname() == "" {
		bad("auth.ldap.url", "%q: want ldap://host[:port] or ldaps://host[:port]", l.URL)
	}
	// bind_dn and bind_password are required by signet serve alone (the
	// directory package says so when it is built): the offline commands
	// and the gate read this file too, without the service account's
	// password in their environment.
	if strings.TrimSpace(l.UserBase) == "" {
		bad("auth.ldap.user_base", "is empty: the DN under which users are searched is required")
	}
	if !strings.Contains(l.UserFilter, "{username}") {
		bad("auth.ldap.user_filter", "%q must contain {username}", l.UserFilter)
	}
	if strings.TrimSpace(l.EmailAttribute) == "" {
		bad("auth.ldap.email_attribute", "is empty")
	}
	switch {
	case l.Organization == "":
		bad("auth.ldap.organization", "is empty: the organization of every directory user is required")
	case !orgName.MatchString(l.Organization):
		bad("auth.ldap.organization", "%q must be 1 to 64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit", l.Organization)
	}
	if l.SyncInterval < minLDAPSyncInterval || l.SyncInterval > maxLDAPSyncInterval {
		bad("auth.ldap.sync_interval", "%s is out of range; want between %s and %s", l.SyncInterval, minLDAPSyncInterval, maxLDAPSyncInterval)
	}
}
