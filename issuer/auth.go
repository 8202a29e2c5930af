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

// checkPassword verifies username's password. The attempt is reserved
// with the failed-login limiter before anything is hashed (so a burst gets
// no more checks than the limit), and every check costs the same work
// whether the user exists, whatever the password (comparePassword).
func (s *Server) checkPassword(c *fiber.Ctx, username, password string) (*principal, error) {
	ctx := c.UserContext()
	client := s.clientIP(c)
	attempt, err := s.limiter.reserve(ctx, username, client, s.now)
	if err != nil {
		refused := &errLoginRefused{limit: "user", wait: time.Second}
		errors.As(err, &refused)
		s.metrics.rateLimited.WithLabelValues(refused.limit).Inc()
		if refused.busy {
			return nil, rateLimited(refused.wait, "Other sign-ins with this name or from this address are being checked; try again shortly.")
		}
		return nil, rateLimited(refused.wait, "Too many failed logins; try again later.")
	}
	settled := false
	defer func() {
		if !settled { // no password was checked
			attempt.cancel()
		}
	}()

	u, err := s.st.GetUser(ctx, username)
	known := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("authenticate: load user: %w", err)
	}
	release, err := s.pool.acquire(ctx)
	if err != nil {
		s.metrics.rateLimited.WithLabelValues("hash_pool").Inc()
		return nil, rateLimited(time.Second, "The server is busy checking passwords; try again shortly.")
	}
	ok, rehash := s.comparePassword(u, known, password)
	release()
	settled = true

	if ok {
		attempt.succeed(s.now())
		if rehash != "" {
			s.storeRehash(ctx, u, rehash)
		}
		return &principal{User: u, Scopes: s.cfg.Roles[string(u.Role)]}, nil
	}
	attempt.fail(s.now())
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

// comparePassword checks password against u's stored hash (u is known)
// and, when it is right but the hash is not at the configured cost,
// returns a new hash at that cost. It runs on a hashing worker.
//
// The work is the same whatever a timing would reveal, bcrypt rounds
// counted (a hash of cost c is 2^c rounds):
//   - an unknown user costs one comparison against the dummy hash, which
//     is at the configured cost C: what a known user's hash costs once it
//     is at C;
//   - a password longer than bcrypt reads (passwordFits) never signs in:
//     bcrypt would ignore its bytes past the 72nd, so the stored hash is
//     not consulted, and a dummy of the stored hash's cost is compared
//     instead, the same work as a wrong password for that user;
//   - hashes converge on C: a right password whose hash has another cost
//     is rehashed at C (storeRehash). Until a user signs in again, their
//     hash keeps its old cost c. When c < C (the cost was raised), a wrong
//     password is topped up with dummy comparisons at c, c+1, ..., C-1:
//     2^c + 2^c + ... + 2^(C-1) = 2^C rounds, what an unknown user costs,
//     so they cannot be told apart. When c > C (the cost was lowered),
//     the user's check costs 2^c, more than an unknown name, until their
//     next sign-in: lowering the cost is a choice for speed, and padding
//     every unknown name up to the highest stored cost would undo it.
func (s *Server) comparePassword(u store.User, known bool, password string) (ok bool, rehash string) {
	pw := []byte(password)
	if len(pw) > maxPasswordBytes {
		pw = pw[:maxPasswordBytes] // for the work only: such a password is refused
	}
	stored := []byte(u.PasswordHash)
	cost, costErr := bcrypt.Cost(stored)
	switch {
	case !known:
		_ = s.compareHash(s.dummyHash, pw)
		return false, ""
	case costErr != nil:
		// A stored hash bcrypt cannot read; the user cannot log in until
		// the password is set again.
		s.log.Warn("stored password hash is unusable", "user", u.Username, "err_kind", fmt.Sprintf("%T", costErr))
		_ = s.compareHash(s.dummyHash, pw)
		return false, ""
	case !passwordFits(password):
		_ = s.compareHash(s.dummyAt(cost), pw)
		s.padToCost(cost, pw)
		return false, ""
	}
	err := s.compareHash(stored, pw)
	if err != nil {
		if !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			s.log.Warn("stored password hash is unusable", "user", u.Username, "err_kind", fmt.Sprintf("%T", err))
		}
		s.padToCost(cost, pw)
		return false, ""
	}
	if cost == s.cfg.BcryptCost {
		return true, ""
	}
	h, err := bcrypt.GenerateFromPassword(pw, s.cfg.BcryptCost)
	if err != nil {
		s.log.Warn("rehashing a password at the configured cost failed", "user", u.Username, "err", err)
		return true, ""
	}
	return true, string(h)
}

// padToCost tops the work of one comparison at cost up to the configured
// cost (see comparePassword).
func (s *Server) padToCost(cost int, pw []byte) {
	for c := cost; c < s.cfg.BcryptCost; c++ {
		_ = s.compareHash(s.dummyAt(c), pw)
	}
}

// storeRehash replaces u's stored hash with rehash, the same password at
// the configured cost, unless the password was changed meanwhile. A
// failure only means the old hash stays, so it is logged, not returned.
func (s *Server) storeRehash(ctx context.Context, u store.User, rehash string) {
	replaced, err := s.st.RehashPassword(ctx, u.Username, u.PasswordHash, rehash)
	switch {
	case err != nil:
		s.log.Warn("storing a password rehashed at the configured cost failed", "user", u.Username, "err", err)
	case replaced:
		s.log.Info("password rehashed at the configured bcrypt cost", "user", u.Username, "cost", s.cfg.BcryptCost)
	}
}

// dummyHashes holds a dummy bcrypt hash per cost, made when first needed:
// the configured cost's is made at start (Server.dummyHash); others serve
// padToCost and users whose stored hash has another cost.
type dummyHashes struct {
	mu     sync.Mutex
	byCost map[int]*dummyHash
}

type dummyHash struct {
	once sync.Once
	hash []byte
}

// dummyAt returns a dummy hash of cost; on the unlikely failure to make
// one (no randomness), the configured cost's.
func (s *Server) dummyAt(cost int) []byte {
	if cost == s.cfg.BcryptCost {
		return s.dummyHash
	}
	d := &s.dummies
	d.mu.Lock()
	if d.byCost == nil {
		d.byCost = map[int]*dummyHash{}
	}
	e := d.byCost[cost]
	if e == nil {
		e = &dummyHash{}
		d.byCost[cost] = e
	}
	d.mu.Unlock()
	e.once.Do(func() {
		h, err := newDummyHash(cost)
		if err != nil {
			s.log.Warn("making a dummy password hash failed", "cost", cost, "err", err)
			h = s.dummyHash
		}
		e.hash = h
	})
	return e.hash
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
// in fixed windows, and the logins in flight: an attempt is reserved
// before its password is checked and settled after (failed, succeeded, or
// cancelled when no check happened), and a reservation is granted only
// while the failures plus the attempts in flight stay below the limit. So
// at most the limit of wrong passwords per user (and per client) are ever
// checked in a window, however many arrive at once: the 11th concurrent
// guess against a limit of 10 is not checked while 10 are in flight. It
// waits instead (bounded in number and time) for one of them to settle, so
// that a burst of right passwords (a CI pipeline's parallel jobs) queues
// rather than failing, while a burst of wrong ones ends in 429 once the
// failures fill the budget.
//
// Its memory is bounded: when a map is full, expired windows are swept and
// then others make room, locked-out keys last. A window with attempts in
// flight is never dropped, so their outcome is always counted.
type failureLimiter struct {
	mu        sync.Mutex
	window    time.Duration
	maxUser   int
	maxClient int
	maxKeys   int
	users     map[string]*failureWindow
	clients   map[string]*failureWindow

	// settled is closed, and replaced, whenever an attempt in flight
	// settles while reservations wait: the waiters look again.
	settled chan struct{}
	// waiters counts the reservations waiting, at most maxWaiters; each
	// waits at most maxWait.
	waiters    int
	maxWaiters int
	maxWait    time.Duration
}

type failureWindow struct {
	start time.Time
	// count is the failed logins in the window.
	count int
	// inFlight is the attempts reserved and not yet settled.
	inFlight int
}

const defaultLimiterKeys = 100_000

func newFailureLimiter(maxUser, maxClient int, window time.Duration) *failureLimiter {
	return &failureLimiter{
		window:     window,
		maxUser:    maxUser,
		maxClient:  maxClient,
		maxKeys:    defaultLimiterKeys,
		users:      map[string]*failureWindow{},
		clients:    map[string]*failureWindow{},
		settled:    make(chan struct{}),
		maxWaiters: hashQueueMin,
		maxWait:    hashWait,
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

// loginAttempt is a reservation: one password check that may happen.
// Exactly one of fail, succeed and cancel settles it.
type loginAttempt struct {
	l                  *failureLimiter
	user, client       string
	userWin, clientWin *failureWindow
}

// errLoginRefused is reserve's refusal; limit says which limit ("user",
// "client") and wait how long until it may change.
type errLoginRefused struct {
	limit string
	wait  time.Duration
	// busy is set when the budget was held by attempts in flight (not by
	// failures) and waiting for them ran out or had no room.
	busy bool
}

func (e *errLoginRefused) Error() string { return "login refused by the " + e.limit + " limit" }

// reserve reserves one password check for username from client, waiting
// while the budget is held only by attempts in flight. now is read at
// every look, since a wait may cross the end of a window.
func (l *failureLimiter) reserve(ctx context.Context, username, client string, now func() time.Time) (*loginAttempt, error) {
	ckey := clientKey(client)
	waiting := false
	var timer *time.Timer
	defer func() {
		if waiting {
			l.mu.Lock()
			l.waiters--
			l.mu.Unlock()
			timer.Stop()
		}
	}()
	for {
		l.mu.Lock()
		t := now()
		uw := l.open(l.users, username, l.maxUser, t)
		cw := l.open(l.clients, ckey, l.maxClient, t)
		var refused *errLoginRefused
		var held string // the limit that attempts in flight hold, if any
		switch {
		case uw.count >= l.maxUser:
			refused = &errLoginRefused{limit: "user", wait: uw.start.Add(l.window).Sub(t)}
		case cw.count >= l.maxClient:
			refused = &errLoginRefused{limit: "client", wait: cw.start.Add(l.window).Sub(t)}
		case uw.count+uw.inFlight >= l.maxUser:
			held = "user"
		case cw.count+cw.inFlight >= l.maxClient:
			held = "client"
		default:
			uw.inFlight++
			cw.inFlight++
			l.mu.Unlock()
			return &loginAttempt{l: l, user: username, client: ckey, userWin: uw, clientWin: cw}, nil
		}
		if held != "" && !waiting {
			if l.waiters >= l.maxWaiters {
				refused = &errLoginRefused{limit: held, wait: time.Second, busy: true}
			} else {
				l.waiters++
				waiting = true
				timer = time.NewTimer(l.maxWait)
			}
		}
		if refused != nil {
			l.dropIdle(l.users, username, uw)
			l.dropIdle(l.clients, ckey, cw)
			l.mu.Unlock()
			return nil, refused
		}
		ch := l.settled
		l.mu.Unlock()
		select {
		case <-ch:
		case <-timer.C:
			return nil, &errLoginRefused{limit: held, wait: time.Second, busy: true}
		case <-ctx.Done():
			return nil, &errLoginRefused{limit: held, wait: time.Second, busy: true}
		}
	}
}

// open returns key's live window in m, starting one when there is none
// (a new window counts nothing yet). An ended window is restarted in
// place when attempts are in flight in it, else replaced.
func (l *failureLimiter) open(m map[string]*failureWindow, key string, limit int, now time.Time) *failureWindow {
	if w := l.live(m, key, now); w != nil {
		return w
	}
	if len(m) >= l.maxKeys {
		l.makeRoom(m, limit, now)
	}
	// The key may point into a request buffer; the map outlives it.
	w := &failureWindow{start: now}
	m[strings.Clone(key)] = w
	return w
}

// live returns key's window in m unless it has ended: then it is removed,
// or, while attempts are in flight in it, restarted empty in place (they
// count against the new window's budget, and their failures in it).
func (l *failureLimiter) live(m map[string]*failureWindow, key string, now time.Time) *failureWindow {
	w := m[key]
	if w == nil {
		return nil
	}
	if !now.Before(w.start.Add(l.window)) {
		if w.inFlight > 0 {
			w.start, w.count = now, 0
			return w
		}
		delete(m, key)
		return nil
	}
	return w
}

// dropIdle removes w (key's window in m) when it counts nothing.
func (l *failureLimiter) dropIdle(m map[string]*failureWindow, key string, w *failureWindow) {
	if w.count == 0 && w.inFlight == 0 && m[key] == w {
		delete(m, key)
	}
}

// fail settles a as a wrong password: one failure for its user and client.
func (a *loginAttempt) fail(now time.Time) {
	l := a.l
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range []*failureWindow{a.userWin, a.clientWin} {
		w.inFlight--
		if !now.Before(w.start.Add(l.window)) {
			w.start, w.count = now, 0
		}
		w.count++
	}
	l.wake()
}

// succeed settles a as a right password: the user's failures are
// forgotten (not the client's: one right password must not reset a
// guesser's budget for other accounts).
func (a *loginAttempt) succeed(now time.Time) {
	l := a.l
	l.mu.Lock()
	defer l.mu.Unlock()
	a.userWin.inFlight--
	a.userWin.start, a.userWin.count = now, 0
	a.clientWin.inFlight--
	l.dropIdle(l.users, a.user, a.userWin)
	l.dropIdle(l.clients, a.client, a.clientWin)
	l.wake()
}

// cancel settles a without a password check (the store or the hashing
// pool failed): nothing is counted.
func (a *loginAttempt) cancel() {
	l := a.l
	l.mu.Lock()
	defer l.mu.Unlock()
	a.userWin.inFlight--
	a.clientWin.inFlight--
	l.dropIdle(l.users, a.user, a.userWin)
	l.dropIdle(l.clients, a.client, a.clientWin)
	l.wake()
}

// wake lets waiting reservations look again. l.mu is held.
func (l *failureLimiter) wake() {
	if l.waiters > 0 {
		close(l.settled)
		l.settled = make(chan struct{})
	}
}

// makeRoom frees a tenth of a full map, so that the scan is paid once per
// many failures: expired windows first, then windows below limit, and
// locked-out keys last, so a flood of made-up names cannot unlock an
// attacked account. Windows with attempts in flight stay.
func (l *failureLimiter) makeRoom(m map[string]*failureWindow, limit int, now time.Time) {
	target := l.maxKeys - max(l.maxKeys/10, 1)
	for k, w := range m {
		if w.inFlight == 0 && !now.Before(w.start.Add(l.window)) {
			delete(m, k)
		}
	}
	for k, w := range m {
		if len(m) <= target {
			return
		}
		if w.inFlight == 0 && w.count < limit {
			delete(m, k)
		}
	}
	for k, w := range m {
		if len(m) <= target {
			return
		}
		if w.inFlight == 0 {
			delete(m, k)
		}
	}
}

// succeed forgets username's failures (its password was just set). The
// client's are kept; attempts in flight stay counted.
func (l *failureLimiter) succeed(username string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := l.users[username]; w != nil {
		w.count = 0
		l.dropIdle(l.users, username, w)
		l.wake()
	}
}
