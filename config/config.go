// Package config turns a config file, SIGNET_* environment variables and
// command-line flags into plain structs. It is the only package that
// imports viper; every other package takes the structs (or its own Config
// derived from them) and treats zero values as sensible defaults.
package config

import (
	"errors"
	"fmt"
	"os"
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
	UI         UI                  `mapstructure:"ui"`
	Gate       Gate                `mapstructure:"gate"`
}

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
			Dir:          "keys",
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
			FalsePositiveRate: 1e-6,
			PollInterval:      250 * time.Millisecond,
			MaxDelta:          10000,
			KeepAlive:         15 * time.Second,
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
		Gate:    Gate{Listen: "127.0.0.1:4181", MaxStaleness: 10 * time.Minute},
	}
}

// Load reads the configuration: defaults, then the file at path (skipped
// when path is empty and ./config.yaml does not exist), then SIGNET_*
// environment variables (SIGNET_SERVER_LISTEN for server.listen), then the
// flags in fs that were set explicitly (flag "listen" → server.listen is the
// caller's binding via BindFlag). The result is validated.
func Load(path string, fs *pflag.FlagSet, bindings map[string]string) (Config, error) {
	v := viper.New()
	def := Default()
	setDefaults(v, def)
	v.SetEnvPrefix("SIGNET")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if path != "" {
		v.SetConfigFile(path)
		if err := v.ReadInConfig(); err != nil {
			return Config{}, fmt.Errorf("config: read %s: %w", path, err)
		}
	} else {
		v.SetConfigName("config")
		v.SetConfigType("yaml")
		v.AddConfigPath(".")
		if err := v.ReadInConfig(); err != nil {
			var nf viper.ConfigFileNotFoundError
			if !errors.As(err, &nf) {
				return Config{}, fmt.Errorf("config: read config.yaml: %w", err)
			}
		}
	}
	for key, flag := range bindings {
		if fs == nil {
			break
		}
		if f := fs.Lookup(flag); f != nil && f.Changed {
			if err := v.BindPFlag(key, f); err != nil {
				return Config{}, fmt.Errorf("config: bind flag %s: %w", flag, err)
			}
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
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// explicit reports whether key was given in the file, the environment or a
// flag, as opposed to coming from the built-in defaults.
func explicit(v *viper.Viper, key string) bool {
	if v.InConfig(key) {
		return true
	}
	if _, ok := os.LookupEnv("SIGNET_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))); ok {
		return true
	}
	return false
}

// setDefaults registers every scalar key so that environment variables are
// seen by Unmarshal even when the file does not mention the key.
func setDefaults(v *viper.Viper, d Config) {
	v.SetDefault("server.listen", d.Server.Listen)
	v.SetDefault("server.public_url", d.Server.PublicURL)
	v.SetDefault("server.read_timeout", d.Server.ReadTimeout)
	v.SetDefault("server.write_timeout", d.Server.WriteTimeout)
	v.SetDefault("server.idle_timeout", d.Server.IdleTimeout)
	v.SetDefault("server.body_limit", d.Server.BodyLimit)
	v.SetDefault("server.shutdown_timeout", d.Server.ShutdownTimeout)
	v.SetDefault("server.trusted_proxies", d.Server.TrustedProxies)
	v.SetDefault("server.tls_cert_file", d.Server.TLSCertFile)
	v.SetDefault("server.tls_key_file", d.Server.TLSKeyFile)
	v.SetDefault("store.driver", d.Store.Driver)
	v.SetDefault("store.dsn", d.Store.DSN)
	v.SetDefault("keys.dir", d.Keys.Dir)
	v.SetDefault("keys.algorithm", d.Keys.Algorithm)
	v.SetDefault("keys.publish_delay", d.Keys.PublishDelay)
	v.SetDefault("keys.rotation_period", d.Keys.RotationPeriod)
	v.SetDefault("tokens.user_token_ttl", d.Tokens.UserTokenTTL)
	v.SetDefault("tokens.default_ttl", d.Tokens.DefaultTTL)
	v.SetDefault("tokens.max_ttl", d.Tokens.MaxTTL)
	v.SetDefault("tokens.max_regenerate_grace", d.Tokens.MaxRegenerateGrace)
	v.SetDefault("tokens.audience", d.Tokens.Audience)
	v.SetDefault("tokens.personal_tokens", d.Tokens.PersonalTokens)
	v.SetDefault("tokens.prune_interval", d.Tokens.PruneInterval)
	v.SetDefault("tokens.prune_after", d.Tokens.PruneAfter)
	v.SetDefault("revocation.false_positive_rate", d.Revocation.FalsePositiveRate)
	v.SetDefault("revocation.poll_interval", d.Revocation.PollInterval)
	v.SetDefault("revocation.max_delta", d.Revocation.MaxDelta)
	v.SetDefault("revocation.keep_alive", d.Revocation.KeepAlive)
	v.SetDefault("security.bcrypt_cost", d.Security.BcryptCost)
	v.SetDefault("security.hash_workers", d.Security.HashWorkers)
	v.SetDefault("security.max_failures_per_user", d.Security.MaxFailuresUser)
	v.SetDefault("security.max_failures_per_client", d.Security.MaxFailuresClient)
	v.SetDefault("security.failure_window", d.Security.FailureWindow)
	v.SetDefault("security.min_password_length", d.Security.MinPasswordLength)
	v.SetDefault("log.level", d.Log.Level)
	v.SetDefault("log.format", d.Log.Format)
	v.SetDefault("ui.default_preset", d.UI.DefaultPreset)
	v.SetDefault("gate.listen", d.Gate.Listen)
	v.SetDefault("gate.issuer_url", d.Gate.IssuerURL)
	v.SetDefault("gate.audience", d.Gate.Audience)
	v.SetDefault("gate.max_staleness", d.Gate.MaxStaleness)
	v.SetDefault("gate.fail_open", d.Gate.FailOpen)
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch c.Store.Driver {
	case "sqlite", "postgres":
	default:
		return fmt.Errorf("config: store.driver %q: want sqlite or postgres", c.Store.Driver)
	}
	if c.Store.DSN == "" {
		return errors.New("config: store.dsn is empty")
	}
	switch c.Keys.Algorithm {
	case "EdDSA", "ES256", "RS256":
	default:
		return fmt.Errorf("config: keys.algorithm %q: want EdDSA, ES256 or RS256", c.Keys.Algorithm)
	}
	if c.Keys.Dir == "" {
		return errors.New("config: keys.dir is empty")
	}
	if c.Keys.PublishDelay < 0 || c.Keys.RotationPeriod < 0 {
		return errors.New("config: keys.publish_delay and keys.rotation_period must not be negative")
	}
	if c.Tokens.MaxTTL <= 0 {
		return errors.New("config: tokens.max_ttl must be positive")
	}
	if c.Tokens.UserTokenTTL <= 0 || c.Tokens.UserTokenTTL > c.Tokens.MaxTTL {
		return fmt.Errorf("config: tokens.user_token_ttl %s must be positive and at most tokens.max_ttl %s", c.Tokens.UserTokenTTL, c.Tokens.MaxTTL)
	}
	if c.Tokens.DefaultTTL <= 0 || c.Tokens.DefaultTTL > c.Tokens.MaxTTL {
		return fmt.Errorf("config: tokens.default_ttl %s must be positive and at most tokens.max_ttl %s", c.Tokens.DefaultTTL, c.Tokens.MaxTTL)
	}
	if c.Tokens.MaxRegenerateGrace < 0 {
		return fmt.Errorf("config: tokens.max_regenerate_grace %s must not be negative (0 turns grace periods off)", c.Tokens.MaxRegenerateGrace)
	}
	if p := c.Revocation.FalsePositiveRate; p <= 0 || p >= 1 {
		return fmt.Errorf("config: revocation.false_positive_rate %g must be between 0 and 1", p)
	}
	if c.Server.PublicURL == "" || !(strings.HasPrefix(c.Server.PublicURL, "http://") || strings.HasPrefix(c.Server.PublicURL, "https://")) {
		return fmt.Errorf("config: server.public_url %q must be an http(s) URL", c.Server.PublicURL)
	}
	if (c.Server.TLSCertFile == "") != (c.Server.TLSKeyFile == "") {
		return errors.New("config: server.tls_cert_file and server.tls_key_file must be set together")
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: log.level %q: want debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return fmt.Errorf("config: log.format %q: want text or json", c.Log.Format)
	}
	if c.Security.MinPasswordLength < 8 {
		return errors.New("config: security.min_password_length must be at least 8")
	}
	if c.Gate.Listen == "" {
		return errors.New("config: gate.listen is empty")
	}
	if u := c.Gate.IssuerURL; u != "" && !(strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://")) {
		return fmt.Errorf("config: gate.issuer_url %q must be an http(s) URL", u)
	}
	if c.Gate.MaxStaleness <= 0 {
		return fmt.Errorf("config: gate.max_staleness %s must be positive", c.Gate.MaxStaleness)
	}
	for name, r := range c.Roles {
		if name != "admin" && name != "member" {
			return fmt.Errorf("config: roles.%s: only admin and member exist", name)
		}
		for _, s := range r.Scopes {
			if strings.TrimSpace(s) == "" || strings.ContainsAny(s, " \t\n") {
				return fmt.Errorf("config: roles.%s: bad scope pattern %q", name, s)
			}
		}
	}
	for name, scopes := range c.Presets {
		for _, s := range scopes {
			if strings.TrimSpace(s) == "" || strings.ContainsAny(s, " \t\n") {
				return fmt.Errorf("config: presets.%s: bad scope %q", name, s)
			}
		}
	}
	if p := c.UI.DefaultPreset; p != "" {
		if _, ok := c.Presets[p]; !ok {
			return fmt.Errorf("config: ui.default_preset %q: no such preset in presets", p)
		}
	}
	return nil
}
