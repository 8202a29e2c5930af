package issuer

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/url"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/signet-auth/signet/store"
)

// The web UI: static HTML, CSS and JavaScript embedded in the binary and
// served under /ui/, calling the same JSON API as every other client,
// authenticated by a session cookie (session.go) instead of Basic auth.

//go:embed web
var webFiles embed.FS

// uiCSP is the Content-Security-Policy of every /ui/ answer: nothing but
// the issuer's own files, no inline code, never framed.
const uiCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// uiState is the web UI's part of a Server: its assets and sessions.
type uiState struct {
	sessions *sessionStore
	// secure marks the cookie Secure: the public URL is https.
	secure bool
	index  uiAsset
	assets map[string]uiAsset
}

// uiAsset is one embedded file, ready to serve.
type uiAsset struct {
	body        []byte
	contentType string
	etag        string
}

// uiContentTypes are the only kinds of file the UI ships; anything else
// under web/ is a build mistake reported by newUIState.
var uiContentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
}

// newUIState loads the embedded assets and sets up the session store.
func newUIState(cfg Config) (*uiState, error) {
	ui := &uiState{
		sessions: newSessionStore(sessionConfig{Now: cfg.Now}),
		assets:   map[string]uiAsset{},
	}
	if u, err := url.Parse(cfg.PublicURL); err == nil && u.Scheme == "https" {
		ui.secure = true
	}
	err := fs.WalkDir(webFiles, "web", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := uiContentTypes[path.Ext(p)]
		if !ok {
			return fmt.Errorf("%s: no content type for %q files", p, path.Ext(p))
		}
		body, err := webFiles.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		a := uiAsset{body: body, contentType: ct, etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`}
		name := strings.TrimPrefix(p, "web/")
		if name == "index.html" {
			ui.index = a
		} else {
			ui.assets[name] = a
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("issuer: web UI assets: %w", err)
	}
	if ui.index.body == nil {
		return nil, errors.New("issuer: web UI assets: web/index.html is missing")
	}
	return ui, nil
}

// mountUI registers the UI's routes on app.
func (s *Server) mountUI(app *fiber.App) {
	g := app.Group("/ui", s.uiHeaders)
	route := func(method, p string, h fiber.Handler) {
		s.routes["/ui"+p] = true
		g.Add(method, p, h)
	}
	route(fiber.MethodGet, "/", s.handleUIIndex)
	route(fiber.MethodGet, "/assets/:name", s.handleUIAsset)
	route(fiber.MethodPost, "/api/login", s.handleUILogin)
	route(fiber.MethodPost, "/api/logout", s.handleUILogout)
	route(fiber.MethodGet, "/api/session", s.handleUISession)
	route(fiber.MethodGet, "/api/config", s.handleUIConfig)
}

// uiHeaders sets the security headers of every /ui/ answer.
func (s *Server) uiHeaders(c *fiber.Ctx) error {
	c.Set(fiber.HeaderContentSecurityPolicy, uiCSP)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set("Cross-Origin-Opener-Policy", "same-origin")
	c.Set("Cross-Origin-Resource-Policy", "same-origin")
	c.Set(fiber.HeaderPermissionsPolicy, "camera=(), microphone=(), geolocation=(), payment=()")
	return c.Next()
}

// handleUIIndex serves the page, redirecting /ui to /ui/ so that the
// page's relative asset URLs resolve under /ui/.
func (s *Server) handleUIIndex(c *fiber.Ctx) error {
	if !strings.HasSuffix(string(c.Request().URI().Path()), "/") {
		return c.Redirect("/ui/", fiber.StatusFound)
	}
	return s.serveAsset(c, s.ui.index)
}

// handleUIAsset serves one embedded file by name.
func (s *Server) handleUIAsset(c *fiber.Ctx) error {
	a, ok := s.ui.assets[c.Params("name")]
	if !ok {
		return errorf(ECodeNotFound, "No such file.")
	}
	return s.serveAsset(c, a)
}

// serveAsset answers with a, or 304 when the client's copy is current.
// Assets are revalidated on every use (they change with the binary).
func (s *Server) serveAsset(c *fiber.Ctx, a uiAsset) error {
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderETag, a.etag)
	if inm := c.Get(fiber.HeaderIfNoneMatch); inm != "" && etagMatches(inm, a.etag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, a.contentType)
	return c.Send(a.body)
}

// sessionView is the answer of login and GET /ui/api/session. The CSRF
// token lives only in the page's memory; a reload fetches it again.
type sessionView struct {
	CSRFToken string `json:"csrf_token"`
	User      string `json:"user"`
	Email     string `json:"email"`
	Role      string `json:"role"`
	Org       string `json:"org"`
	// ExpiresAt is when the session ends however busy it is (RFC 3339).
	ExpiresAt string `json:"expires_at"`
}

func (s *Server) sessionViewOf(sess session, u store.User) sessionView {
	return sessionView{
		CSRFToken: sess.CSRF,
		User:      u.Username,
		Email:     u.Email,
		Role:      string(u.Role),
		Org:       u.Org,
		ExpiresAt: sess.Created.Add(s.ui.sessions.cfg.Lifetime).UTC().Format(time.RFC3339),
	}
}

// loginRequest is the body of POST /ui/api/login.
type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// handleUILogin checks the password with the issuer's own check (its
// rate limits and its audit of failures included) and starts a session.
func (s *Server) handleUILogin(c *fiber.Ctx) error {
	setChallenge(c, challengeNone) // the page's own sign-in form
	// Only a JSON body: an HTML form on another site cannot send one, so
	// nobody can be signed in to an account of someone else's choosing.
	mt, _, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	if err != nil || mt != fiber.MIMEApplicationJSON {
		return errorf(ECodeInvalid, "The body must be JSON sent as Content-Type: application/json.")
	}
	var req loginRequest
	if ok, err := decodeBody(c, &req); err != nil {
		return err
	} else if !ok {
		return errorf(ECodeInvalid, "The body must hold a username and a password.")
	}
	if req.Username == "" || req.Password == "" {
		return errorf(ECodeInvalid, "Both a username and a password are required.")
	}
	if len(req.Username) > maxAuthUsername || strings.ContainsFunc(req.Username, isControl) {
		return errorf(ECodeUnauthorized, "The username or password is wrong.")
	}
	p, err := s.checkPassword(c, req.Username, req.Password)
	if err != nil {
		return err
	}
	// A new id at every sign-in: an id planted before sign-in (session
	// fixation) never becomes a signed-in one.
	if old := c.Cookies(sessionCookie); old != "" {
		s.ui.sessions.end(old)
	}
	id, sess, err := s.ui.sessions.create(p.User)
	if err != nil {
		return fmt.Errorf("ui login: %w", err)
	}
	s.setSessionCookie(c, id)
	s.appendAudit(c.UserContext(), store.AuditEvent{
		Org: p.User.Org, Actor: p.User.Username, Action: "session.login",
		Target: p.User.Username, ClientIP: s.clientIP(c), Detail: "signed in to the web UI",
	})
	return c.JSON(s.sessionViewOf(sess, p.User))
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// handleUILogout ends the caller's session. Without a live session it
// only clears the cookie; with one, it needs the CSRF token like every
// other change.
func (s *Server) handleUILogout(c *fiber.Ctx) error {
	id := c.Cookies(sessionCookie)
	if sess, ok := s.ui.sessions.use(id); ok {
		if !csrfMatches(sess, c.Get(csrfHeader)) {
			return errCSRF
		}
		s.ui.sessions.end(id)
		s.appendAudit(c.UserContext(), store.AuditEvent{
			Org: sess.Org, Actor: sess.Username, Action: "session.logout",
			Target: sess.Username, ClientIP: s.clientIP(c), Detail: "signed out of the web UI",
		})
	}
	s.clearSessionCookie(c)
	return c.SendStatus(fiber.StatusNoContent)
}

// handleUISession reports the signed-in user and the session's CSRF
// token, so that a reloaded page stays signed in.
func (s *Server) handleUISession(c *fiber.Ctx) error {
	sess, u, err := s.liveSession(c)
	if err != nil {
		return err
	}
	return c.JSON(s.sessionViewOf(sess, u))
}

// presetView is one preset as the create form offers it.
type presetView struct {
	Name   string   `json:"name"`
	Scopes []string `json:"scopes"`
	// Allowed is false when the caller does not hold every scope of it.
	Allowed bool `json:"allowed"`
}

// uiConfig is the answer of GET /ui/api/config: what the create form
// needs to know about the caller and the issuer's settings.
type uiConfig struct {
	User string `json:"user"`
	Role string `json:"role"`
	Org  string `json:"org"`
	// Scopes are the patterns the caller holds and may grant.
	Scopes  []string     `json:"scopes"`
	Presets []presetView `json:"presets"`
	// KnownScopes are concrete scopes to offer one by one: every preset
	// scope and held pattern the caller may grant.
	KnownScopes       []string `json:"known_scopes"`
	DefaultTTLSeconds int64    `json:"default_ttl_seconds"`
	MaxTTLSeconds     int64    `json:"max_ttl_seconds"`
	// MaxRegenerateGraceSeconds bounds the grace period Regenerate offers
	// (tokens.max_regenerate_grace); 0: grace periods are turned off.
	MaxRegenerateGraceSeconds int64 `json:"max_regenerate_grace_seconds"`
	PersonalTokens            bool  `json:"personal_tokens"`
	// CanCreate is false for members when personal tokens are off.
	CanCreate bool `json:"can_create"`
	// CanCreateAdministrative is true for org admins only.
	CanCreateAdministrative bool `json:"can_create_administrative"`
	// DefaultPreset is the preset the New token form starts from, when
	// one is configured and the caller may grant it; empty: the form
	// starts from every scope the caller holds.
	DefaultPreset string `json:"default_preset"`
}

// handleUIConfig answers the caller's view of the issuer's settings.
func (s *Server) handleUIConfig(c *fiber.Ctx) error {
	p, err := s.caller(c)
	if err != nil {
		return err
	}
	held := slices.Clone(p.Scopes)
	if held == nil {
		held = []string{}
	}
	cfg := uiConfig{
		User:                      p.User.Username,
		Role:                      string(p.User.Role),
		Org:                       p.User.Org,
		Scopes:                    held,
		Presets:                   []presetView{},
		DefaultTTLSeconds:         int64(s.cfg.DefaultTTL / time.Second),
		MaxTTLSeconds:             int64(s.cfg.MaxTTL / time.Second),
		MaxRegenerateGraceSeconds: int64(max(s.cfg.MaxRegenerateGrace, 0) / time.Second),
		PersonalTokens:            s.cfg.PersonalTokens,
		CanCreate:                 p.isAdmin() || s.cfg.PersonalTokens,
		CanCreateAdministrative:   p.isAdmin(),
	}
	known := map[string]bool{}
	for name, scopes := range s.cfg.Presets {
		_, bad := uncovered(held, scopes)
		ps := slices.Clone(scopes)
		slices.Sort(ps)
		cfg.Presets = append(cfg.Presets, presetView{Name: name, Scopes: ps, Allowed: !bad})
		for _, sc := range scopes {
			if _, bad := uncovered(held, []string{sc}); !bad {
				known[sc] = true
			}
		}
	}
	sort.Slice(cfg.Presets, func(i, j int) bool { return cfg.Presets[i].Name < cfg.Presets[j].Name })
	for _, pv := range cfg.Presets {
		if pv.Name == s.cfg.UIDefaultPreset && pv.Allowed {
			cfg.DefaultPreset = pv.Name
		}
	}
	for _, h := range held {
		if h != "*" {
			known[h] = true
		}
	}
	cfg.KnownScopes = make([]string, 0, len(known))
	for sc := range known {
		cfg.KnownScopes = append(cfg.KnownScopes, sc)
	}
	slices.Sort(cfg.KnownScopes)
	return c.JSON(cfg)
}

// errCSRF answers a cookie-authenticated change without the session's
// CSRF token.
var errCSRF = errorf(ECodeForbidden, "This change needs the X-CSRF-Token header of your session; reload the page.")

// errNoSession answers a cookie that names no live session.
var errNoSession = errorf(ECodeUnauthorized, "Your session has ended; sign in again.")

// liveSession finds the caller's session by cookie and checks that its
// user still exists unchanged; a removed user or a changed password (any
// change to the user) ends the session.
func (s *Server) liveSession(c *fiber.Ctx) (session, store.User, error) {
	setChallenge(c, challengeNone) // authenticated by the cookie, not Basic
	id := c.Cookies(sessionCookie)
	sess, ok := s.ui.sessions.use(id)
	if !ok {
		s.clearSessionCookie(c)
		return session{}, store.User{}, errNoSession
	}
	u, err := s.st.GetUser(c.UserContext(), sess.Username)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.ui.sessions.endUser(sess.Username)
		s.clearSessionCookie(c)
		return session{}, store.User{}, errNoSession
	case err != nil:
		return session{}, store.User{}, fmt.Errorf("session: load user: %w", err)
	case !u.UpdatedAt.Equal(sess.UserUpdated) || u.Org != sess.Org || u.ID != sess.UserID:
		s.ui.sessions.end(id)
		s.clearSessionCookie(c)
		return session{}, store.User{}, errNoSession
	}
	return sess, u, nil
}

// sessionUser authenticates a request by its session cookie for the
// shared API: the same principal as Basic auth, but every state-changing
// method must carry the session's CSRF token.
func (s *Server) sessionUser(c *fiber.Ctx) (*principal, error) {
	sess, u, err := s.liveSession(c)
	if err != nil {
		return nil, err
	}
	switch c.Method() {
	case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions:
	default:
		if !csrfMatches(sess, c.Get(csrfHeader)) {
			return nil, errCSRF
		}
	}
	return &principal{User: u, Scopes: s.cfg.Roles[string(u.Role)], Session: true}, nil
}

// setSessionCookie hands the browser its session id.
func (s *Server) setSessionCookie(c *fiber.Ctx, id string) {
	c.Cookie(&fiber.Cookie{
		Name:     sessionCookie,
		Value:    id,
		Path:     "/",
		HTTPOnly: true,
		Secure:   s.ui.secure,
		SameSite: fiber.CookieSameSiteStrictMode,
	})
}

// clearSessionCookie tells the browser to forget its session id.
func (s *Server) clearSessionCookie(c *fiber.Ctx) {
	c.Cookie(&fiber.Cookie{
		Name:     sessionCookie,
		Value:    "",
		Path:     "/",
		MaxAge:   -1,
		Expires:  time.Unix(0, 0),
		HTTPOnly: true,
		Secure:   s.ui.secure,
		SameSite: fiber.CookieSameSiteStrictMode,
	})
}
