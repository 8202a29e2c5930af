package issuer

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/signet-auth/signet/notify"
)

// Config configures a Server. Every zero value means the default named on
// the field, except PersonalTokens, whose zero value (false) really turns
// member-created tokens off; callers set it from their own configuration.
type Config struct {
	// PublicURL is the issuer's external base URL and the iss claim
	// (default http://localhost:8080). A trailing slash is dropped.
	PublicURL string
	// Audience is the aud claim of every token; none when empty.
	Audience []string

	// UserTokenTTL is the lifetime of POST /user-token tokens (default 24h).
	UserTokenTTL time.Duration
	// DefaultTTL is the lifetime of POST /tokens tokens (default 8760h).
	DefaultTTL time.Duration
	// MaxTTL bounds every lifetime a client may ask for (default 8760h).
	MaxTTL time.Duration
	// MaxRegenerateGrace bounds the grace period a regenerate may ask
	// for, during which the old value stays valid (default 24h; negative:
	// grace periods are turned off).
	MaxRegenerateGrace time.Duration
	// PersonalTokens lets members create their own tokens. When false only
	// organization admins create tokens.
	PersonalTokens bool

	// Roles maps a role (admin, member) to the scope patterns its users
	// hold. Nil or empty means the defaults: both roles hold "*". A role
	// missing from a non-empty map holds nothing.
	Roles map[string][]string
	// Presets maps a preset name to the scopes it stands for.
	Presets map[string][]string
	// UIDefaultPreset is the preset the web page's New token form starts
	// from (a preset the user may not grant is ignored); empty: every scope
	// the user holds.
	UIDefaultPreset string

	// BodyLimit is the largest request body in bytes (default 64 KiB).
	BodyLimit int
	// ReadTimeout, WriteTimeout and IdleTimeout bound a connection
	// (defaults 10s, 10s, 60s).
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// TrustedProxies lists proxy addresses or CIDR ranges whose
	// X-Forwarded-For is believed for the client address (audit events,
	// per-address login limits). Empty: the connection's address is used.
	TrustedProxies []string

	// BcryptCost is the cost of new password hashes (default 10).
	BcryptCost int
	// HashWorkers bounds concurrent password checks (default one less than
	// the number of CPUs, at least 1): a flood of logins then leaves a core
	// to JWKS, the revocation list and health checks.
	HashWorkers int
	// MaxFailuresUser is how many failed logins one username may see in
	// FailureWindow before its logins answer 429 (default 10).
	MaxFailuresUser int
	// MaxFailuresClient is the same limit per client address (default 50).
	MaxFailuresClient int
	// FailureWindow is the window failed logins are counted in (default 15m).
	FailureWindow time.Duration
	// MinPasswordLength is the shortest password accepted (default and
	// minimum 8).
	MinPasswordLength int

	// Revocation configures the published revocation list.
	Revocation RevocationConfig

	// Directory, when set, checks the passwords of usernames that are not
	// local users (directory sign-in, auth.ldap): a user is created in
	// DirectoryOrg at their first sign-in and removed by the directory
	// sync once the directory no longer holds them. Nil: local users only.
	Directory Directory
	// DirectoryOrg is the organization of every directory user; required
	// with Directory.
	DirectoryOrg string
	// DirectorySyncInterval is how often directory users are checked
	// against the directory (default 5m).
	DirectorySyncInterval time.Duration

	// PruneInterval is how often expired records are pruned (default 1h).
	PruneInterval time.Duration
	// PruneAfter keeps expired token records this long (default 720h).
	PruneAfter time.Duration

	// Notify configures expiry notices; off unless it names a channel
	// (SMTP or a webhook). Its clock, logger, metrics registry and public
	// URL default to the server's.
	Notify notify.Config

	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives operational logs (default: discarded).
	Logger *slog.Logger
	// Registry receives the server's metrics and is served on /metrics.
	// Nil means a new registry with the Go and process collectors.
	Registry *prometheus.Registry
}

// Defaults applied by withDefaults.
const (
	defaultPublicURL         = "http://localhost:8080"
	defaultUserTokenTTL      = 24 * time.Hour
	defaultTokenTTL          = 8760 * time.Hour
	defaultMaxGrace          = 24 * time.Hour
	defaultBodyLimit         = 64 << 10
	defaultReadTimeout       = 10 * time.Second
	defaultWriteTimeout      = 10 * time.Second
	defaultIdleTimeout       = 60 * time.Second
	defaultMaxFailuresUser   = 10
	defaultMaxFailuresClient = 50
	defaultFailureWindow     = 15 * time.Minute
	defaultMinPasswordLength = 8
	defaultPruneInterval     = time.Hour
	defaultPruneAfter        = 30 * 24 * time.Hour
	defaultDirectorySync     = 5 * time.Minute
)

// defaultRoles is what each role holds when Config.Roles is empty.
func defaultRoles() map[string][]string {
	return map[string][]string{"admin": {"*"}, "member": {"*"}}
}

// Validate reports the first setting that cannot work, as New would, so
// that a caller can refuse a configuration before it opens a store or
// creates keys.
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}

// withDefaults fills zero values and reports settings that cannot work.
func (c Config) withDefaults() (Config, error) {
	if c.PublicURL == "" {
		c.PublicURL = defaultPublicURL
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return c, fmt.Errorf("issuer: public URL %q must be an absolute http(s) URL", c.PublicURL)
	}
	for _, a := range c.Audience {
		if a == "" {
			return c, errors.New("issuer: audience contains an empty entry")
		}
	}
	if c.MaxTTL == 0 {
		c.MaxTTL = defaultTokenTTL
	}
	if c.UserTokenTTL == 0 {
		c.UserTokenTTL = min(defaultUserTokenTTL, c.MaxTTL)
	}
	if c.DefaultTTL == 0 {
		c.DefaultTTL = min(defaultTokenTTL, c.MaxTTL)
	}
	if c.MaxTTL < time.Second {
		return c, fmt.Errorf("issuer: max TTL %s must be at least one second", c.MaxTTL)
	}
	if c.UserTokenTTL < time.Second || c.UserTokenTTL > c.MaxTTL {
		return c, fmt.Errorf("issuer: user token TTL %s must be between 1s and the max TTL %s", c.UserTokenTTL, c.MaxTTL)
	}
	if c.DefaultTTL < time.Second || c.DefaultTTL > c.MaxTTL {
		return c, fmt.Errorf("issuer: default TTL %s must be between 1s and the max TTL %s", c.DefaultTTL, c.MaxTTL)
	}
	if c.MaxRegenerateGrace == 0 {
		c.MaxRegenerateGrace = defaultMaxGrace
	}

	if len(c.Roles) == 0 {
		c.Roles = defaultRoles()
	}
	for role, patterns := range c.Roles {
		if role != "admin" && role != "member" {
			return c, fmt.Errorf("issuer: role %q: only admin and member exist", role)
		}
		if _, err := normalizeScopes(patterns); err != nil {
			return c, fmt.Errorf("issuer: role %s: %w", role, err)
		}
	}
	if c.Presets == nil {
		c.Presets = map[string][]string{}
	}
	for name, scopes := range c.Presets {
		if name == "" {
			return c, errors.New("issuer: a preset has an empty name")
		}
		if _, err := normalizeScopes(scopes); err != nil {
			return c, fmt.Errorf("issuer: preset %s: %w", name, err)
		}
	}

	if c.BodyLimit == 0 {
		c.BodyLimit = defaultBodyLimit
	}
	if c.BodyLimit < 1024 {
		return c, fmt.Errorf("issuer: body limit %d must be at least 1024 bytes", c.BodyLimit)
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = defaultReadTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = defaultWriteTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = defaultIdleTimeout
	}
	if c.ReadTimeout < 0 || c.WriteTimeout < 0 || c.IdleTimeout < 0 {
		return c, errors.New("issuer: timeouts must not be negative")
	}

	if c.BcryptCost == 0 {
		c.BcryptCost = bcrypt.DefaultCost
	}
	if c.BcryptCost < bcrypt.MinCost || c.BcryptCost > bcrypt.MaxCost {
		return c, fmt.Errorf("issuer: bcrypt cost %d must be between %d and %d", c.BcryptCost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if c.HashWorkers == 0 {
		// bcrypt is pure CPU: with every core hashing, each cheap request
		// waits for the scheduler's next preemption (about 10 ms). Measured
		// with scripts/loginflood on 2 cores: one worker instead of two
		// halves the login flood's cost to the cheap endpoints.
		c.HashWorkers = max(1, runtime.NumCPU()-1)
	}
	if c.MaxFailuresUser == 0 {
		c.MaxFailuresUser = defaultMaxFailuresUser
	}
	if c.MaxFailuresClient == 0 {
		c.MaxFailuresClient = defaultMaxFailuresClient
	}
	if c.FailureWindow == 0 {
		c.FailureWindow = defaultFailureWindow
	}
	if c.HashWorkers < 0 || c.MaxFailuresUser < 0 || c.MaxFailuresClient < 0 || c.FailureWindow < 0 {
		return c, errors.New("issuer: hash workers, failure limits and the failure window must not be negative")
	}
	if c.MinPasswordLength == 0 {
		c.MinPasswordLength = defaultMinPasswordLength
	}
	if c.MinPasswordLength < defaultMinPasswordLength || c.MinPasswordLength > maxPasswordBytes {
		return c, fmt.Errorf("issuer: minimum password length %d must be between %d and %d", c.MinPasswordLength, defaultMinPasswordLength, maxPasswordBytes)
	}

	if c.PruneInterval == 0 {
		c.PruneInterval = defaultPruneInterval
	}
	if c.PruneAfter == 0 {
		c.PruneAfter = defaultPruneAfter
	}
	if c.PruneInterval < 0 || c.PruneAfter < 0 {
		return c, errors.New("issuer: prune interval and prune-after must not be negative")
	}
	if c.Directory != nil {
		if !validName(c.DirectoryOrg) {
			return c, fmt.Errorf("issuer: directory organization %q must be 1 to 64 characters of a-z, 0-9, '.', '_' or '-'", c.DirectoryOrg)
		}
		if c.DirectorySyncInterval == 0 {
			c.DirectorySyncInterval = defaultDirectorySync
		}
		if c.DirectorySyncInterval < time.Second {
			return c, fmt.Errorf("issuer: directory sync interval %s must be at least one second", c.DirectorySyncInterval)
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}
