// Package directory checks passwords against an LDAP directory and tells
// who is in it, for the issuer's directory sign-in (auth.ldap).
//
// A sign-in binds as the directory's service account, finds the user's
// entry with the configured filter (the username escaped, never pasted),
// reads their email and whether they are a member of the admin group, and
// then binds as that entry with the given password: the directory decides
// whether the password is right. An empty password is refused before any
// bind, because an LDAP bind with a DN and no password is an
// "unauthenticated bind" that many servers answer with success (RFC 4513
// §5.1.2).
//
// Every call opens its own connection and closes it, so a directory that
// restarts or fails over costs nothing but the calls made while it was
// away; those fail with ErrUnavailable.
package directory

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Defaults of Config.
const (
	// DefaultUserFilter finds a user by uid.
	DefaultUserFilter = "(uid={username})"
	// DefaultEmailAttribute holds a user's email address.
	DefaultEmailAttribute = "mail"
	// DefaultTimeout bounds one call: dial, binds and searches.
	DefaultTimeout = 10 * time.Second
)

// usernamePlaceholder is where the escaped username goes in UserFilter.
const usernamePlaceholder = "{username}"

// Errors of Authenticate and Lookup.
var (
	// ErrInvalidCredentials means the sign-in is refused: the password is
	// empty or wrong, or no entry (or more than one) matches the username.
	ErrInvalidCredentials = errors.New("directory: invalid credentials")
	// ErrUnavailable means the directory could not be asked: it is
	// unreachable, timed out, refused the service account, or answered a
	// search with an error. Nothing can be concluded about the user.
	ErrUnavailable = errors.New("directory: unavailable")
	// ErrAmbiguous means the filter matches more than one entry for a
	// username: the directory's data or the filter needs fixing.
	ErrAmbiguous = errors.New("directory: the user filter matches several entries")
)

// Config says how to reach the directory and where its users are. Its
// fields are the auth.ldap configuration keys.
type Config struct {
	// URL is ldap://host[:port] or ldaps://host[:port].
	URL string
	// BindDN and BindPassword are the service account that searches for
	// users; both are required.
	BindDN       string
	BindPassword string
	// UserBase is the DN under which users are searched (whole subtree).
	UserBase string
	// UserFilter finds one user; {username} stands for the username,
	// escaped (RFC 4515). Default DefaultUserFilter.
	UserFilter string
	// EmailAttribute holds the user's email (default DefaultEmailAttribute).
	EmailAttribute string
	// AdminGroup is the DN of a group whose members are admins: a member
	// is listed in its member or uniqueMember attribute by DN, or in
	// memberUid by username. Empty: nobody is an admin by the directory.
	AdminGroup string
	// Timeout bounds one call (default DefaultTimeout).
	Timeout time.Duration
	// TLSConfig is used for ldaps://. Nil: the system's roots (Go reads
	// SSL_CERT_FILE and SSL_CERT_DIR) and the URL's host name.
	TLSConfig *tls.Config
}

// ConfigError is a setting New refuses. Key is its auth.ldap key ("url",
// "user_base", ...); Problem never repeats the bind password.
type ConfigError struct {
	Key     string
	Problem string
}

func (e *ConfigError) Error() string { return "auth.ldap." + e.Key + ": " + e.Problem }

func configErr(key, format string, args ...any) *ConfigError {
	return &ConfigError{Key: key, Problem: fmt.Sprintf(format, args...)}
}

// Entry is what the directory says about one user.
type Entry struct {
	// Username is the name the user signs in with.
	Username string
	// DN is the user's entry.
	DN string
	// Email is the first value of the email attribute ("" when none).
	Email string
	// Admin reports membership of the admin group.
	Admin bool
}

// LDAP is a directory reached over LDAP. It is safe for concurrent use.
type LDAP struct {
	cfg  Config
	base *ldap.DN
}

// New checks cfg and returns the directory; nothing is dialled yet. A
// setting it refuses is a *ConfigError naming the auth.ldap key.
func New(cfg Config) (*LDAP, error) {
	if cfg.UserFilter == "" {
		cfg.UserFilter = DefaultUserFilter
	}
	if cfg.EmailAttribute == "" {
		cfg.EmailAttribute = DefaultEmailAttribute
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	u, err := url.Parse(cfg.URL)
	switch {
	case err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" || u.Hostname() == "":
		return nil, configErr("url", "%q: want ldap://host[:port] or ldaps://host[:port]", cfg.URL)
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil:
		return nil, configErr("url", "%q: only the scheme, host and port are used; put the base DN in auth.ldap.user_base", cfg.URL)
	}
	switch {
	case cfg.BindDN == "":
		return nil, configErr("bind_dn", "is empty: the service account that finds users is required")
	case cfg.BindPassword == "":
		// A bind with a DN and no password would be anonymous.
		return nil, configErr("bind_password", "is empty (set it, or SIGNET_AUTH_LDAP_BIND_PASSWORD): the service account needs its password")
	}
	if _, err := ldap.ParseDN(cfg.BindDN); err != nil {
		return nil, configErr("bind_dn", "%q is not a DN: %v", cfg.BindDN, err)
	}
	base, err := ldap.ParseDN(cfg.UserBase)
	if err != nil || cfg.UserBase == "" {
		return nil, configErr("user_base", "%q is not a DN", cfg.UserBase)
	}
	if cfg.AdminGroup != "" {
		if _, err := ldap.ParseDN(cfg.AdminGroup); err != nil {
			return nil, configErr("admin_group", "%q is not a DN: %v", cfg.AdminGroup, err)
		}
	}
	if !strings.Contains(cfg.UserFilter, usernamePlaceholder) {
		return nil, configErr("user_filter", "%q must contain %s", cfg.UserFilter, usernamePlaceholder)
	}
	if _, err := ldap.CompileFilter(expandFilter(cfg.UserFilter, "x")); err != nil {
		return nil, configErr("user_filter", "%q is not an LDAP filter: %v", cfg.UserFilter, err)
	}
	if strings.ContainsAny(cfg.EmailAttribute, " ()=*\\,") {
		return nil, configErr("email_attribute", "%q is not an attribute name", cfg.EmailAttribute)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("directory: timeout %s must not be negative", cfg.Timeout)
	}
	return &LDAP{cfg: cfg, base: base}, nil
}

// expandFilter puts username, escaped for a filter value, in place of
// every {username} of tmpl. Escaping makes *, (, ), \ and NUL plain
// characters, so no username can widen or restructure the filter.
func expandFilter(tmpl, username string) string {
	return strings.ReplaceAll(tmpl, usernamePlaceholder, ldap.EscapeFilter(username))
}

// Authenticate checks username's password against the directory and
// returns their entry. ErrInvalidCredentials when the password is empty
// or wrong or the filter finds no single entry; ErrUnavailable when the
// directory cannot be asked. The password appears in no error.
func (d *LDAP) Authenticate(ctx context.Context, username, password string) (Entry, error) {
	if username == "" || password == "" {
		// Never bind without a password: the server would take it for an
		// unauthenticated bind and may well answer success.
		return Entry{}, ErrInvalidCredentials
	}
	conn, err := d.open(ctx)
	if err != nil {
		return Entry{}, err
	}
	defer conn.close()
	e, err := conn.find(username)
	switch {
	case errors.Is(err, errNoEntry):
		return Entry{}, ErrInvalidCredentials
	case errors.Is(err, ErrAmbiguous):
		return Entry{}, fmt.Errorf("%w: %w", ErrInvalidCredentials, err)
	case err != nil:
		return Entry{}, err
	}
	// The group is read with the service account, before the bind as the
	// user changes the connection's identity.
	if e.Admin, err = conn.isAdmin(e); err != nil {
		return Entry{}, err
	}
	if err := conn.c.Bind(e.DN, password); err != nil {
		if unavailable(err) {
			return Entry{}, fmt.Errorf("%w: bind as the user: %s", ErrUnavailable, describe(err))
		}
		// Invalid credentials, and anything else the directory says about
		// this account (locked, expired, must change): not signed in.
		return Entry{}, ErrInvalidCredentials
	}
	return e, nil
}

// Lookup returns the current entries of usernames: those the filter finds
// under the user base, by username; a username missing from the map is
// not in the directory (or no longer matches the filter). It returns an
// error, and no map, when any one lookup fails (ErrUnavailable) or is
// ambiguous (ErrAmbiguous), so that a caller never takes a directory it
// could not read completely for one that lost its users.
func (d *LDAP) Lookup(ctx context.Context, usernames []string) (map[string]Entry, error) {
	conn, err := d.open(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.close()
	found := make(map[string]Entry, len(usernames))
	for _, name := range usernames {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		e, err := conn.find(name)
		switch {
		case errors.Is(err, errNoEntry):
			continue
		case err != nil:
			return nil, err
		}
		if e.Admin, err = conn.isAdmin(e); err != nil {
			return nil, err
		}
		found[name] = e
	}
	return found, nil
}

// conn is one connection, bound as the service account.
type conn struct {
	d    *LDAP
	c    *ldap.Conn
	stop func() bool
}

// open dials the directory and binds as the service account. The
// connection closes when ctx ends, which ends any request in flight.
func (d *LDAP) open(ctx context.Context) (*conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	dialer := &net.Dialer{Timeout: d.cfg.Timeout}
	opts := []ldap.DialOpt{ldap.DialWithDialer(dialer)}
	if d.cfg.TLSConfig != nil {
		opts = append(opts, ldap.DialWithTLSConfig(d.cfg.TLSConfig))
	}
	c, err := ldap.DialURL(d.cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: connect to %s: %s", ErrUnavailable, d.cfg.URL, describe(err))
	}
	c.SetTimeout(d.cfg.Timeout)
	cn := &conn{d: d, c: c, stop: context.AfterFunc(ctx, func() { c.Close() })}
	if err := c.Bind(d.cfg.BindDN, d.cfg.BindPassword); err != nil {
		cn.close()
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			return nil, fmt.Errorf("%w: the directory refused the service account %s (check auth.ldap.bind_dn and bind_password)", ErrUnavailable, d.cfg.BindDN)
		}
		return nil, fmt.Errorf("%w: bind as the service account: %s", ErrUnavailable, describe(err))
	}
	return cn, nil
}

func (cn *conn) close() {
	cn.stop()
	cn.c.Close()
}

// errNoEntry: the filter found nobody.
var errNoEntry = errors.New("directory: no such user")

// find searches the user base for username's single entry.
func (cn *conn) find(username string) (Entry, error) {
	cfg := cn.d.cfg
	req := ldap.NewSearchRequest(cfg.UserBase, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
		2, int(cfg.Timeout/time.Second), false,
		expandFilter(cfg.UserFilter, username), []string{cfg.EmailAttribute}, nil)
	res, err := cn.c.Search(req)
	switch {
	case err != nil && ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) && res != nil && len(res.Entries) > 1:
		return Entry{}, fmt.Errorf("%w (%d or more for one username)", ErrAmbiguous, len(res.Entries))
	case err != nil:
		// A missing user base (noSuchObject) is a configuration or
		// directory fault, not a sign that every user left.
		return Entry{}, fmt.Errorf("%w: search %s: %s", ErrUnavailable, cfg.UserBase, describe(err))
	case len(res.Entries) == 0:
		return Entry{}, errNoEntry
	case len(res.Entries) > 1:
		return Entry{}, fmt.Errorf("%w (%d for one username)", ErrAmbiguous, len(res.Entries))
	}
	e := res.Entries[0]
	// An entry outside the user base (a referral, a misbehaving server)
	// is not one of our users.
	if dn, err := ldap.ParseDN(e.DN); err != nil || !(cn.d.base.AncestorOfFold(dn) || cn.d.base.EqualFold(dn)) {
		return Entry{}, errNoEntry
	}
	return Entry{Username: username, DN: e.DN, Email: e.GetAttributeValue(cfg.EmailAttribute)}, nil
}

// isAdmin reports whether e is a member of the admin group. A group that
// does not exist has no members.
func (cn *conn) isAdmin(e Entry) (bool, error) {
	group := cn.d.cfg.AdminGroup
	if group == "" {
		return false, nil
	}
	filter := fmt.Sprintf("(|(member=%s)(uniqueMember=%s)(memberUid=%s))",
		ldap.EscapeFilter(e.DN), ldap.EscapeFilter(e.DN), ldap.EscapeFilter(e.Username))
	req := ldap.NewSearchRequest(group, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
		1, int(cn.d.cfg.Timeout/time.Second), false, filter, []string{"1.1"}, nil)
	res, err := cn.c.Search(req)
	switch {
	case ldap.IsErrorWithCode(err, ldap.LDAPResultNoSuchObject):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("%w: read the admin group %s: %s", ErrUnavailable, group, describe(err))
	}
	return len(res.Entries) == 1, nil
}

// unavailable reports whether err says the directory could not answer,
// as opposed to an answer about the request.
func unavailable(err error) bool {
	for _, code := range []uint16{ldap.ErrorNetwork, ldap.LDAPResultBusy, ldap.LDAPResultUnavailable,
		ldap.LDAPResultServerDown, ldap.LDAPResultTimeout, ldap.LDAPResultConnectError,
		ldap.LDAPResultTimeLimitExceeded, ldap.LDAPResultOther} {
		if ldap.IsErrorWithCode(err, code) {
			return true
		}
	}
	var le *ldap.Error
	return !errors.As(err, &le)
}

// describe renders a client error for a log line: the result code's name
// and the server's diagnostic; go-ldap's errors never carry the password.
func describe(err error) string {
	var le *ldap.Error
	if errors.As(err, &le) {
		name := ldap.LDAPResultCodeMap[le.ResultCode]
		if name == "" {
			name = fmt.Sprintf("result %d", le.ResultCode)
		}
		if le.Err != nil {
			return name + ": " + le.Err.Error()
		}
		return name
	}
	return err.Error()
}
