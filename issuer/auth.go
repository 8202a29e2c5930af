package issuer

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/signet-auth/signet/store"
)

// principal (service.go) is an authenticated caller.

func (p *principal) isAdmin() bool { return p.User.Role == store.RoleAdmin }

// Limits on Basic credentials, enforced before any work is done for them.
const (
	maxAuthHeader   = 1024 // bytes of the Authorization header
	maxAuthUsername = 256  // bytes of the username
	// hashWait bounds how long a login waits for a hashing worker.
	hashWait = 5 * time.Second
	// The longest queue of waiting logins is hashQueueFactor times the
	// workers, and at least hashQueueMin, so that a burst of legitimate
	// logins (a CI pipeline's parallel jobs) queues rather than failing;
	// past it a login is answered 429 at once. At bcrypt cost 10 on one
	// worker, hashQueueMin waiting logins drain within hashWait.
	hashQueueFactor = 4
	hashQueueMin    = 64
)

var errMalformedBasic = errors.New("malformed basic credentials")

// parseBasic parses an Authorization header carrying HTTP Basic credentials
// (RFC 7617) strictly: the scheme, one token of padded standard base64,
// valid UTF-8, a colon, a non-empty username without control characters.
// Its error never repeats the input.
func parseBasic(header string) (username, password string, err error) {
	if len(header) > maxAuthHeader {
		return "", "", errMalformedBasic
	}
	scheme, rest, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Basic") {
		return "", "", errMalformedBasic
	}
	rest = strings.Trim(rest, " ")
	if rest == "" || strings.ContainsAny(rest, " \t") {
		return "", "", errMalformedBasic
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(rest)
	if err != nil || !utf8.Valid(raw) {
		return "", "", errMalformedBasic
	}
	username, password, ok = strings.Cut(string(raw), ":")
	if !ok || username == "" || len(username) > maxAuthUsername {
		return "", "", errMalformedBasic
	}
	for _, r := range username {
		if r < 0x20 || r == 0x7f {
			return "", "", errMalformedBasic
		}
	}
	return username, password, nil
}

// authenticate is the one place a request's caller is established: HTTP
// Basic credentials checked against the store. It answers 401 for missing
// or wrong credentials and 429 past the failed-login limits or when the
// hashing workers are saturated.
func (s *Server) authenticate(c *fiber.Ctx) (*principal, error) {
	header := c.Get(fiber.HeaderAuthorization)
	if header == "" && c.Cookies(sessionCookie) != "" {
		return s.sessionUser(c) // the web UI's session (ui.go)
	}
	if header == "" {
		return nil, errorf(ECodeUnauthorized, "Authentication is required: send HTTP Basic credentials.")
	}
	username, password, err := parseBasic(header)
	if err != nil {
		return nil, errorf(ECodeUnauthorized, "The Authorization header does not hold valid HTTP Basic credentials.")
	}
	return s.checkPassword(c, username, password)
}

// checkPassword verifies username's password. Limits are checked before
// any hashing; an unknown user costs one bcrypt comparison like a known one.
func (s *Server) checkPassword(c *fiber.Ctx, username, password string) (*principal, error) {
	ctx := c.UserContext()
	client := s.clientIP(c)
	now := s.now()
	if wait, limit, limited := s.limiter.check(username, client, now); limited {
		s.metrics.rateLimited.WithLabelValues(limit).Inc()
		return nil, rateLimited(wait, "Too many failed logins; try again later.")
	}

	u, err := s.st.GetUser(ctx, username)
	known := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("authenticate: load user: %w", err)
	}
	hash := s.dummyHash
	if known {
		hash = []byte(u.PasswordHash)
	}

	release, err := s.pool.acquire(ctx)
	if err != nil {
		s.metrics.rateLimited.WithLabelValues("hash_pool").Inc()
		return nil, rateLimited(time.Second, "The server is busy checking passwords; try again shortly.")
	}
	err = bcrypt.CompareHashAndPassword(hash, []byte(password))
	release()

	if err == nil && known {
		s.limiter.succeed(username)
		return &principal{User: u, Scopes: s.cfg.Roles[string(u.Role)]}, nil
	}
	if known && err != nil && !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) && !errors.Is(err, bcrypt.ErrPasswordTooLong) {
		// A stored hash bcrypt cannot read; the user cannot log in until
		// the password is set again.
		s.log.Warn("stored password hash is unusable", "user", u.Username, "err_kind", fmt.Sprintf("%T", err))
	}
	s.limiter.fail(username, client, now)
	s.metrics.loginFailures.Inc()
	ev := store.AuditEvent{Action: "login.failed", ClientIP: client, Detail: "wrong password"}
	if known {
		ev.Org, ev.Target = u.Org, u.Username
	} else {
		ev.Detail = "unknown user"
		// The attempted name is kept only when it could be a username:
		// people sometimes type their password into the username field.
		if validName(username) {
			ev.Target = username
		}
	}
	s.appendAudit(ctx, ev)
	return nil, errorf(ECodeUnauthorized, "The username or password is wrong.")
}

// newDummyHash returns a bcrypt hash of a random password at cost.
func newDummyHash(cost int) ([]byte, error) {
	var pw [18]byte
	if _, err := rand.Read(pw[:]); err != nil {
		return nil, fmt.Errorf("issuer: dummy password: %w", err)
	}
	h, err := bcrypt.GenerateFromPassword([]byte(base64.RawURLEncoding.EncodeToString(pw[:])), cost)
	if err != nil {
		return nil, fmt.Errorf("issuer: dummy hash: %w", err)
	}
	return h, nil
}

// hashPool bounds concurrent bcrypt work so that a flood of logins cannot
// take every CPU from cheap endpoints (JWKS, revocation list, health).
type hashPool struct {
	slots    chan struct{}
	waiting  atomic.Int64
	maxQueue int64
	maxWait  time.Duration
	waitHist prometheus.Observer
}

var errPoolBusy = errors.New("password hashing pool is saturated")

func newHashPool(workers int, hist prometheus.Observer) *hashPool {
	return &hashPool{
		slots:    make(chan struct{}, workers),
		maxQueue: int64(max(hashQueueFactor*workers, hashQueueMin)),
		maxWait:  hashWait,
		waitHist: hist,
	}
}

// acquire waits for a worker slot, at most maxWait and while ctx lives;
// errPoolBusy when too many are already waiting or the wait ran out.
func (p *hashPool) acquire(ctx context.Context) (release func(), err error) {
	select {
	case p.slots <- struct{}{}:
		p.waitHist.Observe(0)
		return p.release, nil
	default:
	}
	if p.waiting.Add(1) > p.maxQueue {
		p.waiting.Add(-1)
		return nil, errPoolBusy
	}
	defer p.waiting.Add(-1)
	start := time.Now()
	timer := time.NewTimer(p.maxWait)
	defer timer.Stop()
	select {
	case p.slots <- struct{}{}:
		p.waitHist.Observe(time.Since(start).Seconds())
		return p.release, nil
	case <-timer.C:
		return nil, errPoolBusy
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", errPoolBusy, ctx.Err())
	}
}

func (p *hashPool) release() { <-p.slots }

// failureLimiter counts failed logins per username and per client address
// in fixed windows. Its memory is bounded: when a map is full, expired
// windows are swept and then others make room, locked-out keys last.
type failureLimiter struct {
	mu        sync.Mutex
	window    time.Duration
	maxUser   int
	maxClient int
	maxKeys   int
	users     map[string]*failureWindow
	clients   map[string]*failureWindow
}

type failureWindow struct {
	start time.Time
	count int
}

const defaultLimiterKeys = 100_000

func newFailureLimiter(maxUser, maxClient int, window time.Duration) *failureLimiter {
	return &failureLimiter{
		window:    window,
		maxUser:   maxUser,
		maxClient: maxClient,
		maxKeys:   defaultLimiterKeys,
		users:     map[string]*failureWindow{},
		clients:   map[string]*failureWindow{},
	}
}

// clientKey is what failures of a client address are counted under: the
// address, or for IPv6 its /64, the block one subscriber usually holds
// whole, so that stepping through it does not bring a fresh budget.
func clientKey(client string) string {
	a, err := netip.ParseAddr(client)
	if err != nil || !a.Unmap().Is6() {
		return client
	}
	p, err := a.Prefix(64)
	if err != nil {
		return client
	}
	return p.String()
}

// check reports whether username or client is past its limit, and for how
// long it stays so.
func (l *failureLimiter) check(username, client string, now time.Time) (wait time.Duration, limit string, limited bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := l.live(l.users, username, now); w != nil && w.count >= l.maxUser {
		return w.start.Add(l.window).Sub(now), "user", true
	}
	if w := l.live(l.clients, clientKey(client), now); w != nil && w.count >= l.maxClient {
		return w.start.Add(l.window).Sub(now), "client", true
	}
	return 0, "", false
}

// live returns key's window in m unless it has ended (then it is removed).
func (l *failureLimiter) live(m map[string]*failureWindow, key string, now time.Time) *failureWindow {
	w := m[key]
	if w == nil {
		return nil
	}
	if !now.Before(w.start.Add(l.window)) {
		delete(m, key)
		return nil
	}
	return w
}

// fail counts one failed login for username and client.
func (l *failureLimiter) fail(username, client string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.add(l.users, username, l.maxUser, now)
	l.add(l.clients, clientKey(client), l.maxClient, now)
}

func (l *failureLimiter) add(m map[string]*failureWindow, key string, limit int, now time.Time) {
	if w := l.live(m, key, now); w != nil {
		w.count++
		return
	}
	if len(m) >= l.maxKeys {
		l.makeRoom(m, limit, now)
	}
	// The key may point into a request buffer; the map outlives it.
	m[strings.Clone(key)] = &failureWindow{start: now, count: 1}
}

// makeRoom frees a tenth of a full map, so that the scan is paid once per
// many failures: expired windows first, then windows below limit, and
// locked-out keys last, so a flood of made-up names cannot unlock an
// attacked account.
func (l *failureLimiter) makeRoom(m map[string]*failureWindow, limit int, now time.Time) {
	target := l.maxKeys - max(l.maxKeys/10, 1)
	for k, w := range m {
		if !now.Before(w.start.Add(l.window)) {
			delete(m, k)
		}
	}
	for k, w := range m {
		if len(m) <= target {
			return
		}
		if w.count < limit {
			delete(m, k)
		}
	}
	for k := range m {
		if len(m) <= target {
			return
		}
		delete(m, k)
	}
}

// succeed forgets username's failures. The client's are kept: one right
// password must not reset a guesser's budget for other accounts.
func (l *failureLimiter) succeed(username string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.users, username)
}
