// Package issuer is signet's issuer: it checks passwords, signs access
// tokens, keeps the record of every token it signed, publishes the signing
// keys (JWKS) and the revocation list, and enforces who may create, see and
// revoke which token.
//
// The rules live in a Service, with no HTTP in it; the HTTP API is an
// adapter over it, and the CLI's offline commands call the same Service as
// the principal CLI(). Where each thing lives:
//
//	service.go         Service, Principal, the committed hook (feed, metrics, audit)
//	service_tokens.go  token rules: visibility, creation, regenerate, copy,
//	                   revoke, lookups, introspection (Basic and bearer)
//	service_users.go   user rules: add, remove, password; the audit log
//	service_keys.go    key withdrawal
//	tokens.go          minting, recording, cut-off timing, parsing values
//	                   (what a token is on the wire — claims, header policy,
//	                   the strict parser, the scope-pattern rule — is the
//	                   token package's, shared with keys and the verifier)
//	scopes.go          scope shapes, patterns, presets
//	request.go         strict JSON bodies, lifetimes
//	auth.go, password.go  Basic credentials, password checks, the failure limiter
//	directory.go       directory (LDAP) sign-in and the sync loop
//	service_directory.go  directory users: creation, updates, the sync's removals
//	http_*.go          handlers: parse, call the Service, render
//	http_error.go      the one error renderer: code → status, 401 challenges
//	revocations.go     the published revocation list (snapshot, deltas, events)
//	ui.go, session.go  the web UI and its sessions
//	server.go          the Fiber app, routes, background loops
//
// Persistence is a store.Store and key material is a Keys. cmd/signet wires
// the three together:
//
//	srv, err := issuer.New(cfg, st, keyring)
//	go srv.Run(ctx)          // revocation feed, pruning
//	err = srv.Serve(listener)
//
// and, for an offline command, svc, err := issuer.NewService(cfg, st).
package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/signet-auth/signet/revocation"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"golang.org/x/crypto/bcrypt"

	"github.com/signet-auth/signet/notify"
	"github.com/signet-auth/signet/store"
	"github.com/signet-auth/signet/token"
)

// Keys signs tokens and publishes the public keys. *keys.Keyring
// implements it.
type Keys interface {
	// Sign signs payload (JWT claims) with the current signing key and
	// returns the compact JWS (header typ at+jwt) and the key's kid.
	Sign(payload []byte) (value, kid string, err error)
	// Verify checks value's signature against every key held (including
	// retired and withdrawn ones) and returns its claims as the token
	// package reads them, KeyID set to the signing key's kid.
	Verify(value string) (token.Claims, error)
	// JWKS returns the public key set as JSON.
	JWKS() []byte
	// JWKSVersion changes whenever JWKS does; it is the JWKS ETag.
	JWKSVersion() string
	// Ready reports nil when a signing key is loaded.
	Ready() error
}

// Server is the issuer's HTTP API. Create it with New, run its background
// work with Run and serve with Serve (or mount App elsewhere).
type Server struct {
	cfg    Config
	st     store.Store
	keys   Keys
	log    *slog.Logger
	now    func() time.Time
	issuer string
	// origin is the web origin of the public URL (refuseCrossSite).
	origin string

	app     *fiber.App
	feed    *revocationFeed
	metrics *metrics
	pool    *hashPool
	limiter *failureLimiter
	// dummyHash is compared against when a username is unknown, so that a
	// missing user costs the same as a wrong password.
	dummyHash []byte
	// dummies are dummy hashes of other costs, made when needed (auth.go).
	dummies dummyHashes
	// compareHash checks a password against a bcrypt hash:
	// bcrypt.CompareHashAndPassword, replaced in tests to count and gate
	// the checks.
	compareHash func(hash, password []byte) error
	// metadata is the discovery document, rendered again when the JWKS
	// changes (metadataDocument).
	metadata atomic.Pointer[renderedMetadata]
	// routes holds the registered route patterns: the only values of the
	// route label of the request counter.
	routes map[string]bool

	// svc holds the rules (service*.go); the handlers call it.
	svc *Service
	// proxies are the trusted proxies whose X-Forwarded-For is believed.
	proxies []netip.Prefix

	// ui is the web UI: embedded assets and browser sessions (ui.go).
	ui *uiState
	// notifier sends expiry notices; nil when they are off.
	notifier *notify.Notifier
}

// New returns a Server over st and k. Zero fields of cfg take their
// defaults; a setting that cannot work is an error.
func New(cfg Config, st store.Store, k Keys) (*Server, error) {
	if st == nil || k == nil {
		return nil, errors.New("issuer: a store and keys are required")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	proxies, err := parseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, err
	}
	origin, err := publicOrigin(cfg.PublicURL)
	if err != nil {
		return nil, err
	}
	dummy, err := newDummyHash(cfg.BcryptCost)
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:         cfg,
		st:          st,
		keys:        k,
		log:         cfg.Logger,
		now:         cfg.Now,
		issuer:      cfg.PublicURL,
		origin:      origin,
		metrics:     m,
		pool:        newHashPool(cfg.HashWorkers, m.hashWait),
		limiter:     newFailureLimiter(cfg.MaxFailuresUser, cfg.MaxFailuresClient, cfg.FailureWindow),
		dummyHash:   dummy,
		compareHash: bcrypt.CompareHashAndPassword,
		routes:      map[string]bool{},
		proxies:     proxies,
	}
	if _, err := s.metadataDocument(); err != nil {
		return nil, err
	}
	s.feed = newRevocationFeed(st, cfg.Revocation, cfg.Logger, cfg.Now)
	s.feed.clientOf = func(c *fiber.Ctx) string { return clientKey(s.clientIP(c)) }
	streams := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "signet_revocation_streams",
		Help: "Open revocation event streams (GET /revocations/events): verifiers following this replica.",
	}, func() float64 { return float64(s.feed.openStreams()) })
	if err := m.reg.Register(streams); err != nil {
		return nil, fmt.Errorf("issuer: register metrics: %w", err)
	}
	s.svc = newService(cfg, st, k, s.feed, m, s.hashPassword)
	if s.ui, err = newUIState(cfg); err != nil {
		return nil, err
	}
	if cfg.Notify.Enabled() {
		nc := cfg.Notify
		if nc.Now == nil {
			nc.Now = cfg.Now
		}
		if nc.Logger == nil {
			nc.Logger = cfg.Logger
		}
		if nc.Registerer == nil {
			nc.Registerer = m.reg
		}
		if nc.PublicURL == "" {
			nc.PublicURL = cfg.PublicURL
		}
		if s.notifier, err = notify.New(nc, s.svc, st); err != nil {
			return nil, fmt.Errorf("issuer: %w", err)
		}
	}
	s.app = s.newApp()
	return s, nil
}

// readBufferSize bounds the request line and headers of one request: a
// token of maxTokenLen bytes in the query plus room for the rest.
const readBufferSize = maxTokenLen + 16<<10

func (s *Server) newApp() *fiber.App {
	fc := fiber.Config{
		AppName:               "signet",
		DisableStartupMessage: true,
		BodyLimit:             s.cfg.BodyLimit,
		// Room for the request line and headers: a query may carry a
		// token of up to maxTokenLen bytes (GET /user-token?token=) next
		// to Basic credentials and a browser's cookies. Fiber's default
		// of 4 KiB answered 431 before such a token could be checked.
		ReadBufferSize: readBufferSize,
		ReadTimeout:    s.cfg.ReadTimeout,
		WriteTimeout:   s.cfg.WriteTimeout,
		IdleTimeout:    s.cfg.IdleTimeout,
		ErrorHandler:   s.handleError,
		JSONEncoder:    json.Marshal,
		JSONDecoder:    json.Unmarshal,
		CaseSensitive:  true,
		// c.IP() stays the connection's address; clientIP reads
		// X-Forwarded-For from trusted proxies only, right to left.
		EnableTrustedProxyCheck: true,
		TrustedProxies:          s.cfg.TrustedProxies,
	}
	app := fiber.New(fc)
	s.answerUnknownMethods(app)
	app.Use(s.observe)
	app.Use(recover.New(recover.Config{
		EnableStackTrace: true,
		StackTraceHandler: func(c *fiber.Ctx, e any) {
			s.log.Error("panic while serving a request", "method", c.Method(), "route", c.Route().Path, "panic", fmt.Sprint(e))
		},
	}))
	// Before anything reads a credential or a body, on every path.
	app.Use(s.refuseCrossSite)

	s.mountUI(app) // before the API routes: its middleware wraps them

	get := func(path string, h fiber.Handler) { s.routes[path] = true; app.Get(path, h) }
	post := func(path string, h fiber.Handler) { s.routes[path] = true; app.Post(path, h) }
	del := func(path string, h fiber.Handler) { s.routes[path] = true; app.Delete(path, h) }
	put := func(path string, h fiber.Handler) { s.routes[path] = true; app.Put(path, h) }

	// Not in s.routes: Fiber reports "/" as the route of unmatched paths
	// too, which must keep their one "unmatched" label.
	app.Get("/", s.handleRoot)
	get("/healthz", s.handleHealthz)
	get("/readyz", s.handleReadyz)
	get("/metrics", s.metrics.handler())
	get("/.well-known/jwks.json", s.handleJWKS)
	get("/.well-known/oauth-authorization-server", s.handleMetadata)
	get("/.well-known/openid-configuration", s.handleMetadata)

	post("/user-token", s.handleIssueUserToken)
	get("/user-token", s.handleUserTokenInfo)

	get("/tokens", s.handleListTokens)
	post("/tokens", s.handleCreateToken)
	get("/tokens/:id", s.handleGetToken)
	del("/tokens/:id", s.handleDeleteToken)
	post("/tokens/:id/regenerate", s.handleRegenerateToken)
	post("/tokens/:id/copy", s.handleCopyToken)

	get("/users", s.handleListUsers)
	post("/users", s.handleCreateUser)
	del("/users/:name", s.handleDeleteUser)
	put("/users/:name/password", s.handleSetPassword)

	get("/audit", s.handleAudit)

	post("/revoke", s.handleRevoke)
	post("/introspect", s.handleIntrospect)

	for _, p := range []string{"/revocations", "/revocations/events", "/revocations/:id"} {
		s.routes[p] = true
	}
	s.feed.register(app)
	return app
}

// handleRoot sends a person who opens the issuer's address in a browser
// (Accept: text/html) to the web page; anything else gets the JSON 404 of
// an unknown path.
func (s *Server) handleRoot(c *fiber.Ctx) error {
	for _, part := range strings.Split(c.Get(fiber.HeaderAccept), ",") {
		mt, _, _ := strings.Cut(part, ";")
		if strings.EqualFold(strings.TrimSpace(mt), fiber.MIMETextHTML) {
			c.Set(fiber.HeaderVary, fiber.HeaderAccept)
			return c.Redirect("/ui/", fiber.StatusFound)
		}
	}
	c.Set(fiber.HeaderVary, fiber.HeaderAccept)
	return fiber.ErrNotFound
}

// unknownMethodBody is the answer to a request method Fiber does not know.
var unknownMethodBody, _ = json.Marshal(errorBody{Error: ECodeInvalid, Message: "This server does not know that HTTP method."})

// answerUnknownMethods makes a request with a method outside RFC 9110's
// (FOO /tokens) get the contract's error shape: Fiber answers it with a
// text/plain 400 before any middleware runs, so the check wraps Fiber's
// own request handler.
func (s *Server) answerUnknownMethods(app *fiber.App) {
	srv := app.Server()
	inner := srv.Handler
	srv.Handler = func(rctx *fasthttp.RequestCtx) {
		if slices.Contains(fiber.DefaultMethods, string(rctx.Method())) {
			inner(rctx)
			return
		}
		rctx.SetStatusCode(fiber.StatusBadRequest)
		rctx.SetContentType(fiber.MIMEApplicationJSON)
		rctx.Response.Header.Set(fiber.HeaderCacheControl, "no-store")
		rctx.Response.Header.Set(fiber.HeaderXContentTypeOptions, "nosniff")
		rctx.SetBody(unknownMethodBody)
	}
}

// observe wraps every request: default security headers, error rendering
// (so the status is known here) and the request counter.
func (s *Server) observe(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	if err := c.Next(); err != nil {
		if herr := s.handleError(c, err); herr != nil {
			s.log.Error("rendering an error failed", "err", herr)
			c.Status(fiber.StatusInternalServerError)
		}
	}
	route := c.Route().Path
	if !s.routes[route] {
		route = "unmatched"
	}
	s.metrics.requests.WithLabelValues(route, methodLabel(c.Method()), strconv.Itoa(c.Response().StatusCode())).Inc()
	return nil
}

// methodLabel maps a request method to a constant string: c.Method() may
// point into a reused buffer, and the label set must stay bounded.
func methodLabel(m string) string {
	for _, known := range []string{fiber.MethodGet, fiber.MethodHead, fiber.MethodPost, fiber.MethodPut,
		fiber.MethodDelete, fiber.MethodPatch, fiber.MethodOptions} {
		if m == known {
			return known
		}
	}
	return "other"
}

// App returns the Fiber application, for tests and for mounting.
func (s *Server) App() *fiber.App { return s.app }

// Service returns the rules the server's handlers call, for callers
// without HTTP in the same process.
func (s *Server) Service() *Service { return s.svc }

// Serve answers HTTP requests on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.app.Listener(ln); err != nil {
		return fmt.Errorf("issuer: serve: %w", err)
	}
	return nil
}

// Shutdown stops accepting connections and waits, until ctx ends, for the
// requests in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.app.ShutdownWithContext(ctx); err != nil {
		return fmt.Errorf("issuer: shutdown: %w", err)
	}
	return nil
}

// Run does the background work until ctx ends: it follows the revocation
// log for the published list, prunes expired records and, when configured,
// sends expiry notices and runs the directory sync. It returns nil once
// every background loop has stopped.
func (s *Server) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { s.feed.run(ctx) })
	wg.Go(func() { s.pruneLoop(ctx) })
	if s.notifier != nil {
		wg.Go(func() { s.notifier.Run(ctx) })
	}
	if s.cfg.Directory != nil {
		wg.Go(func() { s.directorySyncLoop(ctx) })
	}
	wg.Wait()
	return nil
}

// pruneLoop deletes expired token records (after PruneAfter) and expired
// revocation entries every PruneInterval, and once at start.
func (s *Server) pruneLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.PruneInterval)
	defer t.Stop()
	for {
		s.prune(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) prune(ctx context.Context) {
	now := s.now()
	// Revocation entries stay ExpiryGrace past their token's expiry, while
	// verifiers still accept the token within their clock-skew leeway.
	n, err := s.st.Prune(ctx, now.Add(-revocation.ExpiryGrace), now.Add(-s.cfg.PruneAfter))
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("pruning expired records failed", "err", err)
	case err == nil && n > 0:
		s.log.Info("pruned expired records", "rows", n)
	}
}
