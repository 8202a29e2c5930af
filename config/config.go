// Package config turns a config file, SIGNET_* environment variables and
// command-line flags into plain structs. It is the only package that
// imports viper; every other package takes the structs (or its own Config
// derived from them) and treats zero values as sensible defaults.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Config is the whole configuration of the signet binary.
type Config struct {
	Server     Server              `mapstructure:"server"`
	Store      Store               `mapstructure:"store"`
	Keys       Keys                `mapstructure:"keys"`
	Tokens     Tokens              `mapstructure:"tokens"`
	Revocation Revocation          `mapstructure:"revocation"`
	Security   Security            `mapstructure:"security"`
	Roles      map[string]Role     `mapstructure:"roles"`
	Presets    map[string][]string `mapstructure:"presets"`
	Log        Log                 `mapstructure:"log"`
	Auth       Auth                `mapstructure:"auth"`
	UI         UI                  `mapstructure:"ui"`
	Notify     Notify              `mapstructure:"notify"`
	Gate       Gate                `mapstructure:"gate"`
}

// Notify configures expiry notices: the owner of a named token (for an
// administrative token, every admin of its organization) is told before it
// expires, once per threshold, by email and/or a webhook. Off unless
// SMTP.Addr or WebhookURL is set.
type Notify struct {
	// Before lists how long before expiry a notice is due.
	Before []time.Duration `mapstructure:"before"`
	// Interval is how often the issuer looks for due notices.
	Interval   time.Duration `mapstructure:"interval"`
	SMTP       SMTP          `mapstructure:"smtp"`
	WebhookURL string        `mapstructure:"webhook_url"`
}

// SMTP says how expiry notices leave by email.
type SMTP struct {
	Addr     string `mapstructure:"addr"` // host:port
	From     string `mapstructure:"from"` // RFC 5322 address
	Username string `mapstructure:"username"`
	Password string `mapstructure:"password"`
	StartTLS bool   `mapstructure:"starttls"`
}

// Enabled reports whether any notice channel is configured.
func (n Notify) Enabled() bool { return n.SMTP.Addr != "" || n.WebhookURL != "" }

// UI configures the web page at /ui/.
type UI struct {
	// DefaultPreset is the preset the page's New token form starts from;
	// empty (or a preset beyond the user's role): every scope the user
	// holds.
	DefaultPreset string `mapstructure:"default_preset"`
}

// Server configures the HTTP listener.
type Server struct {
	Listen          string        `mapstructure:"listen"`
	PublicURL       string        `mapstructure:"public_url"`
	ReadTimeout     time.Duration `mapstructure:"read_timeout"`
	WriteTimeout    time.Duration `mapstructure:"write_timeout"`
	IdleTimeout     time.Duration `mapstructure:"idle_timeout"`
	BodyLimit       int           `mapstructure:"body_limit"`
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`
	// TrustedProxies lists proxy addresses whose X-Forwarded-For is believed
	// for the client address in audit events and rate limits.
	TrustedProxies []string `mapstructure:"trusted_proxies"`
	// TLSCertFile and TLSKeyFile, both set, make the issuer serve HTTPS
	// only, re-reading the pair when the files change.
	TLSCertFile string `mapstructure:"tls_cert_file"`
	TLSKeyFile  string `mapstructure:"tls_key_file"`
}

// Store selects the storage backend.
type Store struct {
	Driver string `mapstructure:"driver"` // "sqlite" or "postgres"
	DSN    string `mapstructure:"dsn"`
}

// Keys configures signing keys.
type Keys struct {
	Dir            string        `mapstructure:"dir"`
	Algorithm      string        `mapstructure:"algorithm"` // ES256 (default), EdDSA, RS256
	PublishDelay   time.Duration `mapstructure:"publish_delay"`
	RotationPeriod time.Duration `mapstructure:"rotation_period"` // 0 = no automatic rotation
}

// Tokens configures token issuance.
type Tokens struct {
	UserTokenTTL time.Duration `mapstructure:"user_token_ttl"`
	DefaultTTL   time.Duration `mapstructure:"default_ttl"` // POST /tokens default
	MaxTTL       time.Duration `mapstructure:"max_ttl"`
	// MaxRegenerateGrace bounds the grace period of a regenerate (how long
	// the old value keeps working); 0 turns grace periods off.
	MaxRegenerateGrace time.Duration `mapstructure:"max_regenerate_grace"`
	Audience           []string      `mapstructure:"audience"`
	PersonalTokens     bool          `mapstructure:"personal_tokens"`
	PruneInterval      time.Duration `mapstructure:"prune_interval"`
	// PruneAfter keeps expired token records this long for lookups before
	// they are deleted.
	PruneAfter time.Duration `mapstructure:"prune_after"`
}

// Revocation configures the published revocation list.
type Revocation struct {
	FalsePositiveRate float64       `mapstructure:"false_positive_rate"`
	PollInterval      time.Duration `mapstructure:"poll_interval"`
	MaxDelta          int           `mapstructure:"max_delta"`
	KeepAlive         time.Duration `mapstructure:"keep_alive"`
	// MaxStreams bounds the open event streams (GET /revocations/events).
	MaxStreams int `mapstructure:"max_streams"`
	// MaxStreamsPerClient bounds those of one client address (an IPv6
	// address counts for its /64); 0: no per-client bound.
	MaxStreamsPerClient int `mapstructure:"max_streams_per_client"`
}

// Security configures password handling and brute-force limits.
type Security struct {
	BcryptCost        int           `mapstructure:"bcrypt_cost"`
	HashWorkers       int           `mapstructure:"hash_workers"` // 0 = number of CPUs
	MaxFailuresUser   int           `mapstructure:"max_failures_per_user"`
	MaxFailuresClient int           `mapstructure:"max_failures_per_client"`
	FailureWindow     time.Duration `mapstructure:"failure_window"`
	MinPasswordLength int           `mapstructure:"min_password_length"`
}

// Role lists the scope patterns a role may grant.
type Role struct {
	Scopes []string `mapstructure:"scopes"`
}

// Log configures logging.
type Log struct {
	Level  string `mapstructure:"level"`  // debug, info, warn, error
	Format string `mapstructure:"format"` // text or json
}

// Gate configures `signet gate`, the forward-auth server beside a reverse
// proxy.
type Gate struct {
	Listen    string `mapstructure:"listen"`
	IssuerURL string `mapstructure:"issuer_url"`
	Audience  string `mapstructure:"audience"`
	// MaxStaleness is how long the last synced revocation list is trusted
	// while the issuer is unreachable; past it the gate answers 503.
	MaxStaleness time.Duration `mapstructure:"max_staleness"`
	// FailOpen keeps accepting tokens on a stale list instead.
	FailOpen bool `mapstructure:"fail_open"`
}

// Default returns the configuration used when nothing overrides it.
func Default() Config {
	return Config{
		Server: Server{
			Listen:          ":8080",
			PublicURL:       "http://localhost:8080",
			ReadTimeout:     10 * time.Second,
			WriteTimeout:    10 * time.Second,
			IdleTimeout:     60 * time.Second,
			BodyLimit:       64 << 10,
			ShutdownTimeout: 10 * time.Second,
		},
		Store: Store{Driver: "sqlite", DSN: "data/signet.db"},
		Keys: Keys{
			Dir:          "data/keys",
			Algorithm:    "ES256",
			PublishDelay: 10 * time.Minute,
		},
		Tokens: Tokens{
			UserTokenTTL:       24 * time.Hour,
			DefaultTTL:         8760 * time.Hour,
			MaxTTL:             8760 * time.Hour,
			MaxRegenerateGrace: 24 * time.Hour,
			PersonalTokens:     true,
			PruneInterval:      time.Hour,
			PruneAfter:         30 * 24 * time.Hour,
		},
		Revocation: Revocation{
			FalsePositiveRate:   1e-6,
			PollInterval:        250 * time.Millisecond,
			MaxDelta:            10000,
			KeepAlive:           15 * time.Second,
			MaxStreams:          10000,
			MaxStreamsPerClient: 1000,
		},
		Security: Security{
			BcryptCost:        10,
			MaxFailuresUser:   10,
			MaxFailuresClient: 50,
			FailureWindow:     15 * time.Minute,
			MinPasswordLength: 8,
		},
		Roles: map[string]Role{
			"admin":  {Scopes: []string{"*"}},
			"member": {Scopes: []string{"*"}},
		},
		Presets: map[string][]string{},
		Log:     Log{Level: "info", Format: "text"},
		Auth:    Auth{LDAP: defaultLDAP()},
		Notify: Notify{
			Before:   []time.Duration{168 * time.Hour, 24 * time.Hour},
			Interval: time.Minute,
		},
		Gate: Gate{Listen: "127.0.0.1:4181", MaxStaleness: 10 * time.Minute},
	}
}

// Load reads the configuration: defaults, then the YAML file at path
// (./config.yaml when path is empty, skipped when that does not exist),
// then SIGNET_* environment variables (SIGNET_SERVER_LISTEN for
// server.listen), then the flags in fs that were set explicitly (bindings
// maps a key to its flag: "server.listen" → "listen").
//
// It is strict: an unknown key anywhere in the file, a value of the wrong
// kind, a duration without a unit, a SIGNET_ variable that starts like a
// section but names no key, or a value outside its sensible range is an
// error (an *Error, or several joined) naming the key and where it was set
// (the file and line, the variable or the flag). A YAML syntax error names
// its line. Each of checks then runs on the result, for rules the
// packages that use a setting own (an *Error it returns is located the same
// way). Load itself creates nothing.
func Load(path string, fs *pflag.FlagSet, bindings map[string]string, checks ...func(Config) error) (Config, error) {
	file, data, err := readFile(path)
	if err != nil {
		return Config{}, err
	}
	var lines map[string]int
	if data != nil {
		if lines, err = checkFile(file, data); err != nil {
			return Config{}, err
		}
	}
	if err := checkEnv(os.Environ()); err != nil {
		return Config{}, err
	}

	v := viper.New()
	def := Default()
	setDefaults(v, def)
	v.SetEnvPrefix("SIGNET")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if data != nil {
		v.SetConfigType("yaml")
		if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
			return Config{}, fmt.Errorf("config: read %s: %w", file, err)
		}
	}
	flagOf := map[string]string{}
	for key, flag := range bindings {
		if fs == nil {
			break
		}
		if f := fs.Lookup(flag); f != nil && f.Changed {
			if err := v.BindPFlag(key, f); err != nil {
				return Config{}, fmt.Errorf("config: bind flag %s: %w", flag, err)
			}
			flagOf[key] = flag
		}
	}
	var c Config
	if err := v.Unmarshal(&c); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	// Maps from the file replace the defaults wholesale; an absent roles
	// section keeps the defaults.
	if len(c.Roles) == 0 {
		c.Roles = def.Roles
	}
	if c.Presets == nil {
		c.Presets = map[string][]string{}
	}
	// Lowering tokens.max_ttl alone must not leave the built-in lifetimes
	// (24h, 1 year) above it: a lifetime nobody set follows the maximum.
	// One that was set explicitly is still validated as given.
	if !explicit(v, "tokens.default_ttl") && c.Tokens.DefaultTTL > c.Tokens.MaxTTL {
		c.Tokens.DefaultTTL = c.Tokens.MaxTTL
	}
	if !explicit(v, "tokens.user_token_ttl") && c.Tokens.UserTokenTTL > c.Tokens.MaxTTL {
		c.Tokens.UserTokenTTL = c.Tokens.MaxTTL
	}
	// Likewise the built-in notice thresholds (a week, a day) that a lower
	// maximum lifetime leaves unreachable are dropped.
	if !explicit(v, "notify.before") {
		var keep []time.Duration
		for _, b := range c.Notify.Before {
			if b <= c.Tokens.MaxTTL {
				keep = append(keep, b)
			}
		}
		c.Notify.Before = keep
	}
	err = c.Validate()
	for _, check := range checks {
		if err != nil {
			break
		}
		err = check(c)
	}
	if err != nil {
		errs := []error{err}
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			errs = j.Unwrap()
		}
		for _, e := range errs {
			if ce, ok := e.(*Error); ok && ce.Where == "" {
				ce.Where = where(ce.Key, file, lines, flagOf)
			}
		}
		return Config{}, err
	}
	return c, nil
}

// readFile reads the configuration file: path, or ./config.yaml when path
// is empty (nil data when that does not exist). It returns the name to use
// in messages.
func readFile(path string) (string, []byte, error) {
	name := path
	if name == "" {
		name = "config.yaml"
	}
	data, err := os.ReadFile(name)
	if err != nil {
		if path == "" && errors.Is(err, fs.ErrNotExist) {
			return name, nil, nil
		}
		return name, nil, fmt.Errorf("config: read %s: %w", name, err)
	}
	return name, data, nil
}

// where says where the value of key came from: a flag, the environment or
// a line of the file; "" for a built-in default. A key inside a list or
// map is looked up as itself or its closest enclosing key.
func where(key, file string, lines map[string]int, flagOf map[string]string) string {
	for k := key; k != ""; {
		if flag, ok := flagOf[k]; ok {
			return "flag --" + flag
		}
		if _, ok := os.LookupEnv(envName(k)); ok {
			return "environment variable " + envName(k)
		}
		if line, ok := lines[k]; ok {
			return fmt.Sprintf("%s line %d", file, line)
		}
		i := strings.LastIndexAny(k, ".[")
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return ""
}

// explicit reports whether key was given in the file, the environment or a
// flag, as opposed to coming from the built-in defaults.
func explicit(v *viper.Viper, key string) bool {
	if v.InConfig(key) {
		return true
	}
	if _, ok := os.LookupEnv(envName(key)); ok {
		return true
	}
	return false
}

// setDefaults registers every key that holds a value or a list (all but
// sections and the roles and presets maps) so that environment variables
// are seen by Unmarshal even when the file does not mention the key.
func setDefaults(v *viper.Viper, d Config) {
	leaves(reflect.TypeFor[Config](), reflect.ValueOf(d), "", func(key string, _ reflect.Type, val reflect.Value) {
		v.SetDefault(key, val.Interface())
	})
}

// Ranges of the settings that are numbers or durations: below or above
// them a setting cannot work (a 10ns read timeout answers every request
// 408, a 1ms poll burns a core) and is refused.
const (
	minTimeout          = 100 * time.Millisecond
	maxTimeout          = time.Hour
	maxBodyLimit        = 64 << 20
	minRotationPeriod   = time.Minute
	minPollInterval     = 50 * time.Millisecond
	maxPollInterval     = time.Second
	minKeepAlive        = time.Second
	maxKeepAlive        = 10 * time.Minute
	maxDeltaLimit       = 10_000_000
	minPruneInterval    = time.Second
	minFailureWindow    = time.Second
	maxHashWorkers      = 1024
	maxPasswordBytes    = 72
	minPasswordBytes    = 8
	minMaxTTL           = time.Second
	maxMaxTTL           = 100 * 8760 * time.Hour
	maxFalsePositiveRat = 0.5
	maxStreamsLimit     = 1_000_000
)

// Validate reports every setting that cannot work, each an *Error naming
// its key (joined with errors.Join when there are several).
func (c Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, badKey(key, format, args...))
	}
	between := func(key string, d, lo, hi time.Duration) {
		if d < lo || d > hi {
			bad(key, "%s is out of range; want between %s and %s", d, lo, hi)
		}
	}

	if _, port, err := net.SplitHostPort(c.Server.Listen); err != nil || port == "" {
		bad("server.listen", "%q is not an address to listen on; want host:port or :port (\":8080\")", c.Server.Listen)
	}
	if u, err := url.Parse(c.Server.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("server.public_url", "%q must be an absolute http(s) URL", c.Server.PublicURL)
	}
	between("server.read_timeout", c.Server.ReadTimeout, minTimeout, maxTimeout)
	between("server.write_timeout", c.Server.WriteTimeout, minTimeout, maxTimeout)
	between("server.idle_timeout", c.Server.IdleTimeout, minTimeout, maxTimeout)
	between("server.shutdown_timeout", c.Server.ShutdownTimeout, minTimeout, maxTimeout)
	if c.Server.BodyLimit < 1024 || c.Server.BodyLimit > maxBodyLimit {
		bad("server.body_limit", "%d is out of range; want between 1024 and %d bytes", c.Server.BodyLimit, maxBodyLimit)
	}
	for i, p := range c.Server.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			if _, err := netip.ParseAddr(p); err != nil {
				bad(fmt.Sprintf("server.trusted_proxies[%d]", i), "%q is neither an IP address nor a CIDR range", p)
			}
		}
	}

	if (c.Server.TLSCertFile == "") != (c.Server.TLSKeyFile == "") {
		key := "server.tls_key_file"
		if c.Server.TLSCertFile == "" {
			key = "server.tls_cert_file"
		}
		bad(key, "is missing: server.tls_cert_file and server.tls_key_file are set together")
	}

	switch c.Store.Driver {
	case "sqlite", "postgres":
	default:
		bad("store.driver", "%q: want sqlite or postgres", c.Store.Driver)
	}
	if strings.TrimSpace(c.Store.DSN) == "" {
		bad("store.dsn", "is empty")
	}

	switch c.Keys.Algorithm {
	case "EdDSA", "ES256", "RS256":
	default:
		bad("keys.algorithm", "%q: want EdDSA, ES256 or RS256", c.Keys.Algorithm)
	}
	if strings.TrimSpace(c.Keys.Dir) == "" {
		bad("keys.dir", "is empty")
	}
	if c.Keys.PublishDelay < 0 {
		bad("keys.publish_delay", "%s must not be negative", c.Keys.PublishDelay)
	}
	if c.Keys.RotationPeriod < 0 || (c.Keys.RotationPeriod > 0 && c.Keys.RotationPeriod < minRotationPeriod) {
		bad("keys.rotation_period", "%s: want 0 (no automatic rotation) or at least %s", c.Keys.RotationPeriod, minRotationPeriod)
	}

	between("tokens.max_ttl", c.Tokens.MaxTTL, minMaxTTL, maxMaxTTL)
	if c.Tokens.UserTokenTTL < time.Second || c.Tokens.UserTokenTTL > c.Tokens.MaxTTL {
		bad("tokens.user_token_ttl", "%s must be at least 1s and at most tokens.max_ttl %s", c.Tokens.UserTokenTTL, c.Tokens.MaxTTL)
	}
	if c.Tokens.DefaultTTL < time.Second || c.Tokens.DefaultTTL > c.Tokens.MaxTTL {
		bad("tokens.default_ttl", "%s must be at least 1s and at most tokens.max_ttl %s", c.Tokens.DefaultTTL, c.Tokens.MaxTTL)
	}
	if g := c.Tokens.MaxRegenerateGrace; g < 0 || g > maxMaxTTL {
		bad("tokens.max_regenerate_grace", "%s is out of range; want 0 (grace periods off) up to %s", g, maxMaxTTL)
	}
	for i, a := range c.Tokens.Audience {
		if strings.TrimSpace(a) == "" {
			bad(fmt.Sprintf("tokens.audience[%d]", i), "is empty")
		}
	}
	if c.Tokens.PruneInterval < minPruneInterval {
		bad("tokens.prune_interval", "%s must be at least %s", c.Tokens.PruneInterval, minPruneInterval)
	}
	if c.Tokens.PruneAfter < 0 {
		bad("tokens.prune_after", "%s must not be negative", c.Tokens.PruneAfter)
	}

	if p := c.Revocation.FalsePositiveRate; !(p > 0 && p <= maxFalsePositiveRat) {
		bad("revocation.false_positive_rate", "%g must be above 0 and at most %g", p, maxFalsePositiveRat)
	}
	between("revocation.poll_interval", c.Revocation.PollInterval, minPollInterval, maxPollInterval)
	if c.Revocation.MaxDelta < 1 || c.Revocation.MaxDelta > maxDeltaLimit {
		bad("revocation.max_delta", "%d is out of range; want between 1 and %d", c.Revocation.MaxDelta, maxDeltaLimit)
	}
	between("revocation.keep_alive", c.Revocation.KeepAlive, minKeepAlive, maxKeepAlive)
	if c.Revocation.MaxStreams < 1 || c.Revocation.MaxStreams > maxStreamsLimit {
		bad("revocation.max_streams", "%d is out of range; want between 1 and %d", c.Revocation.MaxStreams, maxStreamsLimit)
	}
	if c.Revocation.MaxStreamsPerClient < 0 || c.Revocation.MaxStreamsPerClient > c.Revocation.MaxStreams {
		bad("revocation.max_streams_per_client", "%d is out of range; want 0 (no per-client bound) up to revocation.max_streams (%d)", c.Revocation.MaxStreamsPerClient, c.Revocation.MaxStreams)
	}

	if c.Security.BcryptCost < 4 || c.Security.BcryptCost > 31 {
		bad("security.bcrypt_cost", "%d is out of range; want between 4 and 31", c.Security.BcryptCost)
	}
	if c.Security.HashWorkers < 0 || c.Security.HashWorkers > maxHashWorkers {
		bad("security.hash_workers", "%d is out of range; want 0 (automatic) up to %d", c.Security.HashWorkers, maxHashWorkers)
	}
	if c.Security.MaxFailuresUser < 1 {
		bad("security.max_failures_per_user", "%d must be at least 1", c.Security.MaxFailuresUser)
	}
	if c.Security.MaxFailuresClient < 1 {
		bad("security.max_failures_per_client", "%d must be at least 1", c.Security.MaxFailuresClient)
	}
	between("security.failure_window", c.Security.FailureWindow, minFailureWindow, 24*time.Hour)
	if c.Security.MinPasswordLength < minPasswordBytes || c.Security.MinPasswordLength > maxPasswordBytes {
		bad("security.min_password_length", "%d is out of range; want between %d and %d", c.Security.MinPasswordLength, minPasswordBytes, maxPasswordBytes)
	}

	for _, name := range slices.Sorted(maps.Keys(c.Roles)) {
		if name != "admin" && name != "member" {
			bad("roles."+name, "only admin and member exist")
			continue
		}
		for i, s := range c.Roles[name].Scopes {
			if strings.TrimSpace(s) == "" || strings.ContainsAny(s, " \t\n") {
				bad(fmt.Sprintf("roles.%s.scopes[%d]", name, i), "bad scope pattern %q", s)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Presets)) {
		for i, s := range c.Presets[name] {
			if strings.TrimSpace(s) == "" || strings.ContainsAny(s, " \t\n") {
				bad(fmt.Sprintf("presets.%s[%d]", name, i), "bad scope %q", s)
			}
		}
	}

	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q: want debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		bad("log.format", "%q: want text or json", c.Log.Format)
	}
	if _, port, err := net.SplitHostPort(c.Gate.Listen); err != nil || port == "" {
		bad("gate.listen", "%q is not an address to listen on; want host:port or :port", c.Gate.Listen)
	}
	if u := c.Gate.IssuerURL; u != "" && !(strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")) {
		bad("gate.issuer_url", "%q must be an http(s) URL", u)
	}
	if c.Gate.MaxStaleness <= 0 {
		bad("gate.max_staleness", "%s must be positive", c.Gate.MaxStaleness)
	}
	if p := c.UI.DefaultPreset; p != "" {
		if _, ok := c.Presets[p]; !ok {
			bad("ui.default_preset", "%q: no such preset in presets", p)
		}
	}
	c.Auth.LDAP.validate(bad)
	c.validateNotify(bad)
	return errors.Join(errs...)
}

// Bounds of the notify settings.
const (
	minNotifyInterval = 100 * time.Millisecond
	maxNotifyInterval = 24 * time.Hour
)

// validateNotify checks the notify section. Its secrets (the SMTP password,
// the webhook URL, which often carries a token) never appear in a message.
func (c Config) validateNotify(bad func(key, format string, args ...any)) {
	n := c.Notify
	if n.Interval < minNotifyInterval || n.Interval > maxNotifyInterval {
		bad("notify.interval", "%s is out of range; want between %s and %s", n.Interval, minNotifyInterval, maxNotifyInterval)
	}
	if n.Enabled() && len(n.Before) == 0 {
		bad("notify.before", "is empty; list at least one duration before expiry (e.g. [168h, 24h])")
	}
	seen := map[time.Duration]bool{}
	for _, b := range n.Before {
		switch {
		case b < time.Second:
			bad("notify.before", "%s must be at least 1s", b)
		case b > c.Tokens.MaxTTL:
			bad("notify.before", "%s is longer than tokens.max_ttl %s, so no token could live long enough to reach it", b, c.Tokens.MaxTTL)
		case seen[b]:
			bad("notify.before", "lists %s twice", b)
		}
		seen[b] = true
	}
	sm := n.SMTP
	if sm.Addr != "" {
		host, port, err := net.SplitHostPort(sm.Addr)
		p, perr := strconv.Atoi(port)
		switch {
		case err != nil || host == "":
			bad("notify.smtp.addr", "%q: want host:port, e.g. mail.example.com:587", sm.Addr)
		case perr != nil || p < 1 || p > 65535:
			bad("notify.smtp.addr", "%q: port must be a number from 1 to 65535", sm.Addr)
		}
		if sm.From == "" {
			bad("notify.smtp.from", "is required when notify.smtp.addr is set")
		} else if _, err := mail.ParseAddress(sm.From); err != nil {
			bad("notify.smtp.from", "%q: not an email address: %v", sm.From, err)
		}
		if (sm.Username == "") != (sm.Password == "") {
			bad("notify.smtp.username", "goes with notify.smtp.password: set both or neither")
		}
		if sm.Username != "" && !sm.StartTLS && !loopbackHost(host) {
			bad("notify.smtp.starttls", "the password would travel in clear text: set notify.smtp.starttls: true")
		}
	} else if sm.From != "" || sm.Username != "" || sm.Password != "" || sm.StartTLS {
		bad("notify.smtp.addr", "is not set, but notify.smtp is configured")
	}
	if n.WebhookURL != "" {
		u, err := url.Parse(n.WebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("notify.webhook_url", "must be an absolute http(s) URL")
		}
	}
}

// loopbackHost reports whether host names this machine.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
