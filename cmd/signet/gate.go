package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/signet-auth/signet/config"
	"github.com/signet-auth/signet/gate"
	"github.com/signet-auth/signet/verifier"
)

// gateFlagBindings maps the gate's config keys to the flags of
// `signet gate` that override them.
func gateFlagBindings() map[string]string {
	return map[string]string{
		"gate.listen":        "listen",
		"gate.issuer_url":    "issuer",
		"gate.audience":      "audience",
		"gate.max_staleness": "max-staleness",
		"gate.fail_open":     "fail-open",
		"log.level":          "log-level",
	}
}

// gateShutdownTimeout bounds the wait for checks in flight on SIGTERM.
const gateShutdownTimeout = 10 * time.Second

func (c *cli) gateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gate --issuer URL [--listen ADDR]",
		Short: "Run the forward-auth gate for reverse proxies (nginx auth_request, Traefik, Caddy, HAProxy, Envoy)",
		Long: `Run the forward-auth gate: a small server beside a reverse proxy that checks
the bearer token of every request the proxy asks about, offline, following
the issuer's revocation list.

  GET /auth?scope=S (any method, any path under /auth/):
    200 with X-Signet-Subject, X-Signet-Org, X-Signet-Scopes,
        X-Signet-Token-Id, X-Signet-Token-Type
    401 no token, or a bad, expired or revoked one; 403 a scope missing;
    503 the revocation list is stale past gate.max_staleness
  GET /healthz, /readyz, /metrics

Of the config file only the gate and log sections matter.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(c.configPath, cmd.Flags(), gateFlagBindings())
			if err != nil {
				return err
			}
			if cfg.Gate.IssuerURL == "" {
				return usageError{"gate.issuer_url is not set: pass --issuer URL or set SIGNET_GATE_ISSUER_URL"}
			}
			return c.runGate(cmd.Context(), cfg)
		},
	}
	cmd.Flags().String("issuer", "", "issuer URL, exactly as in the tokens' iss (overrides gate.issuer_url)")
	cmd.Flags().String("listen", "", "listen address (overrides gate.listen, default 127.0.0.1:4181)")
	cmd.Flags().String("audience", "", "require this aud in every token (overrides gate.audience)")
	cmd.Flags().Duration("max-staleness", 0, "answer 503 once the revocation list has not synced for this long (overrides gate.max_staleness, default 10m)")
	cmd.Flags().Bool("fail-open", false, "keep accepting tokens on a stale revocation list (overrides gate.fail_open)")
	cmd.Flags().String("log-level", "", "debug, info, warn or error (overrides log.level)")
	return cmd
}

// runGate serves the gate until ctx ends (SIGINT/SIGTERM), then lets the
// checks in flight finish.
func (c *cli) runGate(ctx context.Context, cfg config.Config) error {
	log := newLogger(cfg.Log, c.stderr)
	g, err := gate.New(gate.Config{
		Verifier: verifier.Config{
			IssuerURL:    cfg.Gate.IssuerURL,
			Audience:     cfg.Gate.Audience,
			MaxStaleness: cfg.Gate.MaxStaleness,
			FailOpen:     cfg.Gate.FailOpen,
			Logger:       log,
		},
		Logger: log,
	})
	if err != nil {
		return err
	}
	defer g.Close()
	ln, err := net.Listen("tcp", cfg.Gate.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s (gate.listen): %w", cfg.Gate.Listen, err)
	}
	served := make(chan error, 1)
	go func() { served <- g.Serve(ln) }()
	log.Info("signet gate listening", "addr", ln.Addr().String(), "issuer", cfg.Gate.IssuerURL,
		"max_staleness", cfg.Gate.MaxStaleness.String(), "fail_open", cfg.Gate.FailOpen)
	if cfg.Gate.FailOpen {
		log.Warn("gate.fail_open is on: tokens are accepted on a stale revocation list, so a revocation may not be honoured while the issuer is unreachable")
	}
	// Until the issuer's keys and list are loaded, checks answer 503.
	go func() { _ = g.Connect(ctx) }()

	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), gateShutdownTimeout)
	defer cancel()
	err = g.Shutdown(sctx)
	if serr := <-served; serr != nil && !errors.Is(serr, net.ErrClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
