package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/signet-auth/signet/config"
	"github.com/signet-auth/signet/directory"
	"github.com/signet-auth/signet/issuer"
	"github.com/signet-auth/signet/keys"
	"github.com/signet-auth/signet/notify"
	"github.com/signet-auth/signet/store"
	"github.com/signet-auth/signet/store/postgres"
	"github.com/signet-auth/signet/store/sqlite"
	"github.com/signet-auth/signet/tlsfiles"
)

func (c *cli) serveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the issuer",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.loadConfig(cmd, checkDirectory)
			if err != nil {
				return err
			}
			m := &Main{Config: cfg, Logger: newLogger(cfg.Log, c.stderr)}
			// Libraries that log through slog's default (the PostgreSQL
			// watcher) share the server's format and level.
			slog.SetDefault(m.Logger)
			if err := m.Run(cmd.Context()); err != nil {
				m.Close()
				return err
			}
			select {
			case <-cmd.Context().Done():
			case err = <-m.errc:
			}
			m.Logger.Info("shutting down")
			if cerr := m.Close(); err == nil {
				err = cerr
			}
			return err
		},
	}
	cmd.Flags().String("listen", "", "listen address (overrides server.listen)")
	cmd.Flags().String("public-url", "", "public URL, the iss claim (overrides server.public_url)")
	cmd.Flags().String("log-level", "", "debug, info, warn or error (overrides log.level)")
	addStoreFlags(cmd)
	return cmd
}

// Main is the running issuer: the shape of WTF Dial's cmd/wtfd. Run opens
// everything and starts serving; Close shuts down gracefully.
type Main struct {
	Config config.Config
	Logger *slog.Logger

	Store  store.Store
	Keys   *keys.Keyring
	Server *issuer.Server

	listener net.Listener
	cancel   context.CancelFunc
	done     chan struct{}
	errc     chan error
}

// Run opens the store and the keys, builds the issuer, and starts serving
// on Config.Server.Listen. It returns once the listener is bound.
func (m *Main) Run(ctx context.Context) error {
	cfg := m.Config
	m.errc = make(chan error, 1)
	// The certificate first: a pair that does not load stops the start
	// before the store or the keys are touched.
	var tlsPair *tlsfiles.Pair
	if cfg.Server.TLSCertFile != "" {
		var err error
		if tlsPair, err = loadTLS(cfg.Server, m.Logger); err != nil {
			return err
		}
	}
	// The directory's settings too (nothing is dialled).
	dir, err := openDirectory(cfg.Auth.LDAP)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg.Store)
	if err != nil {
		return err
	}
	m.Store = st
	kr, err := openKeyring(cfg, m.Logger)
	if err != nil {
		return err
	}
	m.Keys = kr
	icfg := issuerConfig(cfg, m.Logger)
	if dir != nil {
		icfg.Directory = dir
	}
	srv, err := issuer.New(icfg, st, kr)
	if err != nil {
		return err
	}
	m.Server = srv
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Server.Listen, err)
	}
	if tlsPair != nil {
		ln = tls.NewListener(ln, tlsPair.TLSConfig())
		if strings.HasPrefix(cfg.Server.PublicURL, "http://") {
			m.Logger.Warn("server.tls_cert_file is set but server.public_url is http://: tokens and discovery name a URL this listener does not serve",
				"public_url", cfg.Server.PublicURL)
		}
	}
	m.listener = ln

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.cancel = cancel
	m.done = make(chan struct{})
	go func() {
		defer close(m.done)
		done := make(chan struct{})
		go func() { defer close(done); kr.Run(runCtx, time.Second) }()
		if err := srv.Run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
			m.Logger.Error("background loops stopped", "err", err)
		}
		<-done
	}()
	go func() {
		if err := srv.Serve(ln); err != nil {
			select {
			case m.errc <- fmt.Errorf("serve: %w", err):
			default:
			}
		}
	}()
	// The algorithm of the key that signs now, which is what verifiers
	// see until a key of keys.algorithm takes over.
	signing := signingKey(kr.List())
	m.Logger.Info("signet issuer listening", "addr", ln.Addr().String(), "tls", tlsPair != nil, "issuer", cfg.Server.PublicURL,
		"store", cfg.Store.Driver, "algorithm", signing.Algorithm, "kid", signing.ID)
	if signing.Algorithm != "" && signing.Algorithm != cfg.Keys.Algorithm {
		m.Logger.Info("the signing key's algorithm differs from keys.algorithm: unless a "+cfg.Keys.Algorithm+
			" key is already due, one is published now and signs after keys.publish_delay",
			"signing_algorithm", signing.Algorithm, "keys.algorithm", cfg.Keys.Algorithm, "publish_delay", cfg.Keys.PublishDelay)
	}
	if n := cfg.Notify; n.Enabled() {
		// Where notices go, never with the password or the webhook URL
		// (which often carries a token of its own).
		m.Logger.Info("expiry notices on", "before", fmt.Sprint(n.Before), "interval", n.Interval.String(),
			"smtp", n.SMTP.Addr, "starttls", n.SMTP.StartTLS, "webhook", n.WebhookURL != "")
	}
	if dir != nil {
		m.Logger.Info("directory sign-in on", "url", cfg.Auth.LDAP.URL, "organization", cfg.Auth.LDAP.Organization,
			"sync_interval", cfg.Auth.LDAP.SyncInterval.String())
	}
	if users, err := st.ListUsers(ctx, ""); err == nil && len(users) == 0 {
		m.Logger.Warn("no users yet; add the first one with: echo 'a-long-password' | signet user add alice --org acme --role admin --email alice@example.com --password-stdin")
	}
	return nil
}

// signingKey is the key in list that signs now (zero when none does).
func signingKey(list []keys.KeyInfo) keys.KeyInfo {
	for _, k := range list {
		if k.State == keys.StateSigning {
			return k
		}
	}
	return keys.KeyInfo{}
}

// Close stops serving (letting requests in flight finish), stops the
// background loops and closes the store.
func (m *Main) Close() error {
	var errs []error
	if m.Server != nil && m.listener != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.Server.ShutdownTimeout)
		if err := m.Server.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shutdown: %w", err))
		}
		cancel()
		// Shutdown closes only a listener the server has started on; a
		// Close that comes first (a signal right at start-up) would leave
		// it accepting forever.
		if err := m.listener.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, fmt.Errorf("close listener: %w", err))
		}
	}
	if m.cancel != nil {
		m.cancel()
		<-m.done
	}
	if m.Store != nil {
		if err := m.Store.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close store: %w", err))
		}
	}
	return errors.Join(errs...)
}

// loadTLS loads server.tls_cert_file and server.tls_key_file, naming the
// key whose file is at fault.
func loadTLS(cfg config.Server, log *slog.Logger) (*tlsfiles.Pair, error) {
	pair, err := tlsfiles.Load(cfg.TLSCertFile, cfg.TLSKeyFile, log)
	switch {
	case errors.Is(err, tlsfiles.ErrCertFile):
		return nil, fmt.Errorf("config: server.tls_cert_file: %w", err)
	case err != nil:
		return nil, fmt.Errorf("config: server.tls_key_file: %w", err)
	}
	return pair, nil
}

// openStore opens the configured backend.
func openStore(ctx context.Context, cfg config.Store) (store.Store, error) {
	switch cfg.Driver {
	case "sqlite":
		return sqlite.Open(ctx, cfg.DSN)
	case "postgres":
		return postgres.Open(ctx, cfg.DSN)
	default:
		return nil, fmt.Errorf("unknown store driver %q", cfg.Driver)
	}
}

// openDirectory builds the LDAP directory of auth.ldap; nil when it is
// not configured. Nothing is dialled yet: a directory that is down at
// start-up only makes directory sign-ins answer 503 until it is back.
func openDirectory(cfg config.LDAP) (*directory.LDAP, error) {
	if !cfg.Enabled() {
		return nil, nil
	}
	d, err := directory.New(directory.Config{
		URL:            cfg.URL,
		BindDN:         cfg.BindDN,
		BindPassword:   cfg.BindPassword,
		UserBase:       cfg.UserBase,
		UserFilter:     cfg.UserFilter,
		EmailAttribute: cfg.EmailAttribute,
		AdminGroup:     cfg.AdminGroup,
	})
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return d, nil
}

// checkDirectory builds auth.ldap's directory (dialling nothing) while
// the configuration is loaded, so that signet serve refuses a broken
// section with the key and where it was set, before it opens anything.
func checkDirectory(cfg config.Config) error {
	_, err := openDirectory(cfg.Auth.LDAP)
	var ce *directory.ConfigError
	if errors.As(err, &ce) {
		return &config.Error{Key: "auth.ldap." + ce.Key, Problem: ce.Problem}
	}
	return err
}

// openKeyring opens (creating on first use) the signing keys.
func openKeyring(cfg config.Config, log *slog.Logger) (*keys.Keyring, error) {
	return keys.Open(keys.Config{
		Dir:            cfg.Keys.Dir,
		Algorithm:      cfg.Keys.Algorithm,
		PublishDelay:   cfg.Keys.PublishDelay,
		RotationPeriod: cfg.Keys.RotationPeriod,
		MaxTTL:         cfg.Tokens.MaxTTL,
		Logger:         log,
	})
}

// regenerateGrace maps tokens.max_regenerate_grace onto the issuer's,
// where zero means the default: 0 in the file turns grace periods off.
func regenerateGrace(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// issuerConfig maps the file's configuration onto the issuer's.
func issuerConfig(cfg config.Config, log *slog.Logger) issuer.Config {
	roles := make(map[string][]string, len(cfg.Roles))
	for name, r := range cfg.Roles {
		roles[name] = r.Scopes
	}
	return issuer.Config{
		PublicURL:          cfg.Server.PublicURL,
		Audience:           cfg.Tokens.Audience,
		UserTokenTTL:       cfg.Tokens.UserTokenTTL,
		DefaultTTL:         cfg.Tokens.DefaultTTL,
		MaxTTL:             cfg.Tokens.MaxTTL,
		MaxRegenerateGrace: regenerateGrace(cfg.Tokens.MaxRegenerateGrace),
		PersonalTokens:     cfg.Tokens.PersonalTokens,
		Roles:              roles,
		Presets:            cfg.Presets,
		UIDefaultPreset:    cfg.UI.DefaultPreset,
		BodyLimit:          cfg.Server.BodyLimit,
		ReadTimeout:        cfg.Server.ReadTimeout,
		WriteTimeout:       cfg.Server.WriteTimeout,
		IdleTimeout:        cfg.Server.IdleTimeout,
		TrustedProxies:     cfg.Server.TrustedProxies,
		BcryptCost:         cfg.Security.BcryptCost,
		HashWorkers:        cfg.Security.HashWorkers,
		MaxFailuresUser:    cfg.Security.MaxFailuresUser,
		MaxFailuresClient:  cfg.Security.MaxFailuresClient,
		FailureWindow:      cfg.Security.FailureWindow,
		MinPasswordLength:  cfg.Security.MinPasswordLength,
		Revocation: issuer.RevocationConfig{
			FalsePositiveRate: cfg.Revocation.FalsePositiveRate,
			PollInterval:      cfg.Revocation.PollInterval,
			MaxDelta:          cfg.Revocation.MaxDelta,
			KeepAlive:         cfg.Revocation.KeepAlive,
			MaxStreams:        cfg.Revocation.MaxStreams,
			// The file's 0 (no per-client bound) is the issuer's negative.
			MaxStreamsPerClient: cmp.Or(cfg.Revocation.MaxStreamsPerClient, -1),
		},
		PruneInterval:         cfg.Tokens.PruneInterval,
		PruneAfter:            cfg.Tokens.PruneAfter,
		Notify:                notifyConfig(cfg.Notify),
		DirectoryOrg:          cfg.Auth.LDAP.Organization,
		DirectorySyncInterval: cfg.Auth.LDAP.SyncInterval,
		Logger:                log,
	}
}

// notifyConfig maps the file's notify section onto the notifier's; the
// zero value (no channel) leaves notices off.
func notifyConfig(n config.Notify) notify.Config {
	if !n.Enabled() {
		return notify.Config{}
	}
	return notify.Config{
		Before:   n.Before,
		Interval: n.Interval,
		SMTP: notify.SMTPConfig{
			Addr:     n.SMTP.Addr,
			From:     n.SMTP.From,
			Username: n.SMTP.Username,
			Password: n.SMTP.Password,
			StartTLS: n.SMTP.StartTLS,
		},
		WebhookURL: n.WebhookURL,
	}
}
