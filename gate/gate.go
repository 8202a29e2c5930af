// Package gate is signet's forward-auth server: it runs beside a reverse
// proxy (nginx auth_request, Traefik forwardAuth, Caddy forward_auth,
// HAProxy, Envoy ext_authz) and answers, for each request the proxy
// forwards, whether its bearer token is valid and grants the scopes asked
// for. It checks tokens offline with the verifier package, which follows
// the issuer's revocation list, so a service in any language gets
// signature, expiry, scope and revocation checks without code and without
// a call to the issuer per request.
//
//	GET /auth?scope=reports:read    (any method; any path under /auth/)
//	  200 X-Signet-Subject, X-Signet-Org, X-Signet-Scopes, X-Signet-Token-Id, X-Signet-Token-Type
//	  401 WWW-Authenticate: Bearer realm="signet"                          no token
//	  401 WWW-Authenticate: Bearer realm="signet", error="invalid_token"   bad, expired or revoked
//	  403 WWW-Authenticate: Bearer realm="signet", error="insufficient_scope"
//	  503 the revocation list is stale (or not loaded yet)
//	GET /healthz, /readyz, /metrics
//
// The server is fasthttp (Fiber's engine) without Fiber's router: four
// fixed paths need no router, and any request method must reach /auth.
package gate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"github.com/signet-auth/signet/verifier"
)

// Defaults applied to zero Config fields.
const (
	// DefaultReadTimeout bounds reading one request.
	DefaultReadTimeout = 10 * time.Second
	// DefaultWriteTimeout bounds writing one answer.
	DefaultWriteTimeout = 10 * time.Second
	// DefaultIdleTimeout is how long a proxy's idle keep-alive connection
	// stays open.
	DefaultIdleTimeout = 2 * time.Minute
	// DefaultRetryInterval is the first wait between attempts to reach the
	// issuer at start-up; it doubles up to MaxRetryInterval.
	DefaultRetryInterval = 500 * time.Millisecond
	// MaxRetryInterval is the longest wait between two start-up attempts.
	MaxRetryInterval = 15 * time.Second
	// readBufferSize bounds the request line and headers: a proxy forwards
	// every header of the original request (cookies included) beside the
	// token. Larger requests are answered 431.
	readBufferSize = 32 << 10
)

// Config configures a Gate. Verifier.IssuerURL is required; every other
// zero field means the documented default.
type Config struct {
	// Verifier configures the verifier the gate checks tokens with: issuer
	// URL, audience, MaxStaleness and FailOpen (a stale list answers 503
	// unless FailOpen). Its Logger defaults to Logger.
	Verifier verifier.Config
	// Logger receives start-up, sync and connection messages (default
	// slog.Default()). Token values are never logged; refusals are logged
	// at debug level with their reason only.
	Logger *slog.Logger
	// Registry receives the gate's metrics (default: a new registry with
	// the Go and process collectors), served on /metrics.
	Registry *prometheus.Registry
	// ReadTimeout, WriteTimeout and IdleTimeout bound connections
	// (defaults DefaultReadTimeout, DefaultWriteTimeout, DefaultIdleTimeout).
	ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// RetryInterval is the first wait between attempts to reach the issuer
	// in Connect (default DefaultRetryInterval).
	RetryInterval time.Duration
}

// Gate answers forward-auth checks. Create it with New, make it check
// tokens with Connect, serve it with Serve (or mount Handler), and stop it
// with Shutdown and Close. It is safe for concurrent use.
type Gate struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	srv     *fasthttp.Server
	handler fasthttp.RequestHandler
	// metricsHandler serves the registry in the Prometheus text format.
	metricsHandler fasthttp.RequestHandler

	v      atomic.Pointer[verifier.Verifier]
	mu     sync.Mutex // guards closed against a Connect finishing late
	closed bool

	scratch sync.Pool // *[]byte for joining scopes
	intern  *internTable
}

// New builds a gate. It does no I/O: until Connect succeeds, /auth and
// /readyz answer 503.
func New(cfg Config) (*Gate, error) {
	if cfg.Verifier.IssuerURL == "" {
		return nil, errors.New("gate: no issuer URL")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Verifier.Logger == nil {
		cfg.Verifier.Logger = cfg.Logger
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = DefaultReadTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}
	g := &Gate{cfg: cfg, log: cfg.Logger, intern: newInternTable()}
	g.scratch.New = func() any { b := make([]byte, 0, 256); return &b }
	m, err := newMetrics(g, cfg.Registry)
	if err != nil {
		return nil, err
	}
	g.metrics = m
	g.metricsHandler = fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	g.handler = g.serve
	g.srv = &fasthttp.Server{
		Handler:               g.handler,
		NoDefaultServerHeader: true,
		NoDefaultContentType:  true,
		ReadTimeout:           cfg.ReadTimeout,
		WriteTimeout:          cfg.WriteTimeout,
		IdleTimeout:           cfg.IdleTimeout,
		ReadBufferSize:        readBufferSize,
		// Auth checks carry no body that matters; the proxies send none.
		MaxRequestBodySize: 64 << 10,
		// fasthttp's own error messages would otherwise quote the start of
		// a request it could not parse: the Authorization header with it.
		SecureErrorLogMessage: true,
		Logger:                fasthttpLogger{g.log},
		CloseOnShutdown:       true,
	}
	return g, nil
}

// fasthttpLogger sends fasthttp's connection-level messages (clients that
// hang up, requests it cannot parse) to slog at debug level: they are
// about clients, not about the gate.
type fasthttpLogger struct{ log *slog.Logger }

func (l fasthttpLogger) Printf(format string, args ...any) {
	l.log.Debug("gate: connection: " + fmt.Sprintf(format, args...))
}

// Connect starts the verifier: discovers the issuer, loads its keys and
// revocation list and follows it from then on. While the issuer cannot be
// reached it retries, waiting RetryInterval and doubling up to
// MaxRetryInterval, until it succeeds (nil) or ctx ends (ctx's error), so
// that a gate started before its issuer becomes ready by itself.
func (g *Gate) Connect(ctx context.Context) error {
	wait := g.cfg.RetryInterval
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		v, err := verifier.New(actx, g.cfg.Verifier)
		cancel()
		if err == nil {
			g.mu.Lock()
			defer g.mu.Unlock()
			if g.closed {
				v.Close()
				return errors.New("gate: closed while connecting")
			}
			g.v.Store(v)
			st := v.Status()
			g.log.Info("gate: issuer keys and revocation list loaded", "issuer", g.cfg.Verifier.IssuerURL,
				"keys", st.Keys, "list_version", st.ListVersion)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		g.log.Warn("gate: cannot load the issuer's keys and revocation list yet; retrying",
			"issuer", g.cfg.Verifier.IssuerURL, "attempt", attempt, "retry_in", wait.String(), "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, MaxRetryInterval)
	}
}

// Handler is the gate's request handler, for serving it from another
// fasthttp server (or a test).
func (g *Gate) Handler() fasthttp.RequestHandler { return g.handler }

// Serve answers requests on ln until Shutdown.
func (g *Gate) Serve(ln net.Listener) error {
	if err := g.srv.Serve(ln); err != nil {
		return fmt.Errorf("gate: serve: %w", err)
	}
	return nil
}

// Shutdown stops accepting connections and waits, until ctx ends, for the
// requests in flight to be answered.
func (g *Gate) Shutdown(ctx context.Context) error {
	if err := g.srv.ShutdownWithContext(ctx); err != nil {
		return fmt.Errorf("gate: shutdown: %w", err)
	}
	return nil
}

// Close stops the verifier's background sync. Call it after Shutdown.
func (g *Gate) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	if v := g.v.Load(); v != nil {
		v.Close()
	}
}

// statusView is the verifier's status plus what only the gate knows.
type statusView struct {
	verifier.Status
	connected bool // Connect succeeded
	ready     bool // tokens can be checked now
}

func (g *Gate) status() statusView {
	v := g.v.Load()
	if v == nil {
		return statusView{}
	}
	st := v.Status()
	return statusView{
		Status:    st,
		connected: true,
		ready:     st.Keys > 0 && (!st.Stale || g.cfg.Verifier.FailOpen),
	}
}
