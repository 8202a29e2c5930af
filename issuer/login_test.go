package issuer

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/signet-auth/signet/store"
)

// costRecorder replaces a server's compareHash to record the bcrypt cost
// of every hash a password was compared against.
type costRecorder struct {
	mu    sync.Mutex
	costs []int
}

func recordCosts(tb testing.TB, srv *Server) *costRecorder {
	tb.Helper()
	r := &costRecorder{}
	inner := srv.compareHash
	srv.compareHash = func(hash, pw []byte) error {
		c, err := bcrypt.Cost(hash)
		if err != nil {
			c = -1
		}
		r.mu.Lock()
		r.costs = append(r.costs, c)
		r.mu.Unlock()
		return inner(hash, pw)
	}
	return r
}

// take returns the costs recorded since the last take.
func (r *costRecorder) take() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.costs
	r.costs = nil
	return c
}

// rounds is the bcrypt work of comparisons at costs: 2^cost each.
func rounds(costs []int) int {
	n := 0
	for _, c := range costs {
		n += 1 << c
	}
	return n
}

// postBasic sends POST /user-token with Basic credentials to a real server.
func postBasic(client *http.Client, base, user, pass string) (int, http.Header, error) {
	req, err := http.NewRequest("POST", base+"/user-token", nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header, nil
}

// TestFailedLoginLimitUnderConcurrency: 200 wrong guesses at once against
// a real server, with every check held until all have arrived, get at
// most max_failures_per_user password checks; the rest are 429. The right
// password sent during the burst is not checked either (it would reset the
// count and hand the guesser a fresh budget), and is refused with 429 once
// the burst's failures fill the budget.
func TestFailedLoginLimitUnderConcurrency(t *testing.T) {
	const limit, burst = 10, 200
	e := newEnv(t, func(c *Config) {
		c.MaxFailuresUser = limit
		c.MaxFailuresClient = 100_000
		// Enough workers that the hashing pool never refuses: the limit
		// alone must hold the checks back.
		c.HashWorkers = 2 * burst
	})
	right := []byte(passwordOf("alice"))
	gate := make(chan struct{})
	var wrongChecks, rightChecks atomic.Int64
	inner := e.srv.compareHash
	e.srv.compareHash = func(hash, pw []byte) error {
		if bytes.Equal(pw, right) {
			rightChecks.Add(1)
			return inner(hash, pw)
		}
		wrongChecks.Add(1)
		<-gate
		return inner(hash, pw)
	}
	base := e.serve()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: burst}}
	t.Cleanup(client.CloseIdleConnections) // before the server's shutdown waits for them

	statuses := make(chan int, burst)
	var wg sync.WaitGroup
	for i := range burst {
		wg.Go(func() {
			st, _, err := postBasic(client, base, "alice", fmt.Sprintf("wrong-guess-%d", i))
			if err != nil {
				t.Errorf("guess %d: %v", i, err)
			}
			statuses <- st
		})
	}
	// Wait until the checks the server let through are all held at the
	// gate (bounded: the test never waits for a time to assert it).
	for deadline := time.Now().Add(20 * time.Second); wrongChecks.Load() < limit && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	type answer struct {
		status int
		header http.Header
	}
	during := make(chan answer, 1)
	go func() {
		st, h, err := postBasic(client, base, "alice", string(right))
		if err != nil {
			t.Errorf("right password during the burst: %v", err)
		}
		during <- answer{st, h}
	}()
	// Give the right password the time to get a check, if the server let
	// it have one, before the held guesses fail.
	for deadline := time.Now().Add(500 * time.Millisecond); rightChecks.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	close(gate)
	wg.Wait()
	close(statuses)

	counts := map[int]int{}
	for st := range statuses {
		counts[st]++
	}
	if n := wrongChecks.Load(); n > limit {
		t.Errorf("password checks of %d concurrent wrong guesses: got %d, want at most %d", burst, n, limit)
	}
	if counts[http.StatusUnauthorized] > limit || counts[http.StatusUnauthorized]+counts[http.StatusTooManyRequests] != burst {
		t.Errorf("answers to the burst: got %v, want at most %d of 401 and the rest 429", counts, limit)
	}
	if a := <-during; a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" {
		t.Errorf("right password during the burst: got %d (Retry-After %q), want 429 with Retry-After", a.status, a.header.Get("Retry-After"))
	}
	if n := rightChecks.Load(); n != 0 {
		t.Errorf("checks of the right password during the burst: got %d, want 0", n)
	}
	st, h, err := postBasic(client, base, "alice", string(right))
	if err != nil {
		t.Fatal(err)
	}
	if st != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Errorf("right password after the burst: got %d (Retry-After %q), want 429 with Retry-After", st, h.Get("Retry-After"))
	}
	events, err := e.st.ListAudit(context.Background(), store.AuditFilter{Action: "login.failed"})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) > limit {
		t.Errorf("login.failed events: got %d, want at most %d", len(events), limit)
	}
	t.Logf("%d concurrent wrong guesses: %d password checks, answers %v", burst, wrongChecks.Load(), counts)
}

// TestLoginBurstOfRightPasswords: many right passwords for one user at
// once (a CI pipeline's parallel jobs) all sign in, although more of them
// are in flight than the failed-login limit: past the limit they wait for
// a check to settle instead of failing.
func TestLoginBurstOfRightPasswords(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxFailuresUser = 3 })
	base := e.serve()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(client.CloseIdleConnections)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 40 {
		wg.Go(func() {
			st, _, err := postBasic(client, base, "bob", passwordOf("bob"))
			if err != nil || st != http.StatusOK {
				failed.Add(1)
				t.Errorf("right password in a burst: got %d, %v, want 200", st, err)
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of 40 right passwords refused", n)
	}
}

// TestPasswordPastBcryptLimit: bcrypt reads 72 bytes, so a user whose
// password is exactly 72 bytes would sign in with anything appended. A
// password longer than that never signs in: it gets the answer of a wrong
// password, counts as one, and costs the same bcrypt work. Setting one is
// refused with 400, by the same rule.
func TestPasswordPastBcryptLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxFailuresUser = 6 })
	ctx := context.Background()
	pw72 := strings.Repeat("p", 60) + "-seventy-two" // 72 bytes
	if len(pw72) != maxPasswordBytes {
		t.Fatalf("test password: got %d bytes, want %d", len(pw72), maxPasswordBytes)
	}
	hash, err := HashPassword(pw72, PasswordPolicy{BcryptCost: bcrypt.MinCost})
	if err != nil {
		t.Fatalf("HashPassword(72 bytes): %v", err)
	}
	if err := e.st.CreateUser(ctx, store.User{Username: "ivan", Email: "ivan@example.com", Org: "acme", Role: store.RoleMember,
		PasswordHash: hash, CreatedAt: testStart, UpdatedAt: testStart}); err != nil {
		t.Fatal(err)
	}
	costs := recordCosts(t, e.srv)
	wantStatus(t, e.do("POST", "/user-token", basic("ivan", pw72)), http.StatusOK)
	costs.take()

	wrong := e.do("POST", "/user-token", basic("ivan", "q"+pw72[1:]))
	wantError(t, wrong, http.StatusUnauthorized, ECodeUnauthorized)
	wrongCosts := costs.take()
	for _, extra := range []string{"x", "\x00", strings.Repeat("y", 200), "é"} {
		r := e.do("POST", "/user-token", basic("ivan", pw72+extra))
		wantError(t, r, http.StatusUnauthorized, ECodeUnauthorized)
		if !bytes.Equal(r.body, wrong.body) {
			t.Errorf("answer to 72 bytes + %q: got %s, want that of a wrong password, %s", extra, r.body, wrong.body)
		}
		if got := costs.take(); rounds(got) != rounds(wrongCosts) {
			t.Errorf("bcrypt work for 72 bytes + %q: got costs %v, want the work of a wrong password (%v)", extra, got, wrongCosts)
		}
	}
	// Through the web UI's sign-in too.
	r := e.do("POST", "/ui/api/login", jsonBody(map[string]string{"username": "ivan", "password": pw72 + "x"}))
	wantStatus(t, r, http.StatusUnauthorized)
	// Each counted as a failure: ivan is now locked out, right password included.
	wantError(t, e.do("POST", "/user-token", basic("ivan", pw72)), http.StatusTooManyRequests, ECodeRateLimited)

	// An unknown user with a long password: the same work as any unknown user.
	costs.take()
	wantError(t, e.do("POST", "/user-token", basic("nobody", pw72+"x")), http.StatusUnauthorized, ECodeUnauthorized)
	if got := costs.take(); rounds(got) != 1<<bcrypt.MinCost {
		t.Errorf("bcrypt work for an unknown user's long password: got costs %v, want one comparison at cost %d", got, bcrypt.MinCost)
	}

	// Setting such a password is refused, by the API and by HashPassword
	// (which the CLI's user add and passwd call).
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/users", `{"username":"yuri","password":"` + pw72 + `x","email":"yuri@example.com","role":"member"}`},
		{"PUT", "/users/bob/password", `{"password":"` + pw72 + `x"}`},
	} {
		wantError(t, e.do(tc.method, tc.path, as("alice"), jsonBody(tc.body)), http.StatusBadRequest, ECodeInvalid)
	}
	if _, err := HashPassword(pw72+"x", PasswordPolicy{}); err == nil {
		t.Error("HashPassword(73 bytes): got nil error, want invalid_request")
	}
	if !passwordFits(pw72) || passwordFits(pw72+"x") {
		t.Errorf("passwordFits: got %v for 72 bytes and %v for 73, want true and false", passwordFits(pw72), passwordFits(pw72+"x"))
	}
}

// TestRehashAtConfiguredCost: a user whose hash has an older cost is
// rehashed at the configured cost at their next sign-in, in the store,
// without counting as a change of the user (sessions survive). Until then,
// a wrong password for them costs the bcrypt work of the configured cost,
// as an unknown user does.
func TestRehashAtConfiguredCost(t *testing.T) {
	const configured = bcrypt.MinCost + 1 // newEnv stores every user at MinCost
	e := newEnv(t, func(c *Config) { c.BcryptCost = configured })
	ctx := context.Background()
	costs := recordCosts(t, e.srv)
	want := 1 << configured

	wantError(t, e.do("POST", "/user-token", basic("nobody", "some-password")), http.StatusUnauthorized, ECodeUnauthorized)
	unknown := costs.take()
	if !slices.Equal(unknown, []int{configured}) {
		t.Errorf("unknown user: got comparisons at costs %v, want one at the configured %d", unknown, configured)
	}
	wantError(t, e.do("POST", "/user-token", basic("alice", "wrong-password")), http.StatusUnauthorized, ECodeUnauthorized)
	if got := costs.take(); rounds(got) != want {
		t.Errorf("wrong password, hash at cost %d: got costs %v (%d rounds), want %d rounds like an unknown user", bcrypt.MinCost, got, rounds(got), want)
	}

	before, err := e.st.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	wantStatus(t, e.do("POST", "/user-token", as("alice")), http.StatusOK)
	after, err := e.st.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if c, err := bcrypt.Cost([]byte(after.PasswordHash)); err != nil || c != configured {
		t.Fatalf("stored hash after sign-in: got cost %d (%v), want %d", c, err, configured)
	}
	if err := bcrypt.CompareHashAndPassword([]byte(after.PasswordHash), []byte(passwordOf("alice"))); err != nil {
		t.Fatalf("rehashed password does not verify: %v", err)
	}
	if !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("UpdatedAt after a rehash: got %v, want unchanged %v", after.UpdatedAt, before.UpdatedAt)
	}
	costs.take()
	wantError(t, e.do("POST", "/user-token", basic("alice", "wrong-password")), http.StatusUnauthorized, ECodeUnauthorized)
	if got := costs.take(); !slices.Equal(got, []int{configured}) {
		t.Errorf("wrong password after the rehash: got costs %v, want [%d]", got, configured)
	}
	wantStatus(t, e.do("POST", "/user-token", as("alice")), http.StatusOK)
	if again, _ := e.st.GetUser(ctx, "alice"); again.PasswordHash != after.PasswordHash {
		t.Error("a hash already at the configured cost was rehashed again")
	}

	// A cost above the configured one (the cost was lowered) converges too.
	high, err := bcrypt.GenerateFromPassword([]byte("high-cost-password"), configured+1)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.CreateUser(ctx, store.User{Username: "hana", Email: "hana@example.com", Org: "acme", Role: store.RoleMember,
		PasswordHash: string(high), CreatedAt: testStart, UpdatedAt: testStart}); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, e.do("POST", "/user-token", basic("hana", "high-cost-password")), http.StatusOK)
	if u, _ := e.st.GetUser(ctx, "hana"); !strings.HasPrefix(u.PasswordHash, fmt.Sprintf("$2a$%02d$", configured)) {
		t.Errorf("hash of a lowered cost after sign-in: got prefix %.7s, want $2a$%02d$", u.PasswordHash, configured)
	}

	// A web-UI session outlives its user's rehash (it ends on a change of
	// the user, and a rehash is none).
	r := e.do("POST", "/ui/api/login", jsonBody(map[string]string{"username": "frank", "password": passwordOf("frank")}))
	wantStatus(t, r, http.StatusOK)
	var cookie string
	for _, c := range r.header.Values("Set-Cookie") {
		if v, ok := strings.CutPrefix(c, sessionCookie+"="); ok {
			cookie, _, _ = strings.Cut(v, ";")
		}
	}
	if u, _ := e.st.GetUser(ctx, "frank"); !strings.HasPrefix(u.PasswordHash, fmt.Sprintf("$2a$%02d$", configured)) {
		t.Fatalf("frank's hash after a web-UI sign-in: got prefix %.7s, want cost %d", u.PasswordHash, configured)
	}
	wantStatus(t, e.do("GET", "/ui/api/session", header("Cookie", sessionCookie+"="+cookie)), http.StatusOK)
}

// TestFailureLimiterReservations: attempts in flight hold the budget; a
// reservation past it waits for one to settle (a success makes room, a
// failure that fills the budget refuses it), a bounded number wait for a
// bounded time, and an attempt that was never checked counts nothing.
func TestFailureLimiterReservations(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{t: testStart}
	l := newFailureLimiter(2, 100, time.Minute)
	reserve := func(user string) (*loginAttempt, error) { return l.reserve(ctx, user, "192.0.2.1", clock.Now) }
	mustReserve := func(user string) *loginAttempt {
		t.Helper()
		a, err := reserve(user)
		if err != nil {
			t.Fatalf("reserve(%s): got %v, want a reservation", user, err)
		}
		return a
	}
	refusal := func(err error) *errLoginRefused {
		t.Helper()
		var r *errLoginRefused
		if !errors.As(err, &r) {
			t.Fatalf("got %v, want a refusal", err)
		}
		return r
	}

	a1, a2 := mustReserve("ada"), mustReserve("ada")
	l.maxWait = time.Millisecond
	if _, err := reserve("ada"); !refusal(err).busy || refusal(err).limit != "user" {
		t.Errorf("third attempt while two are in flight: got %v, want busy by the user limit", err)
	}
	l.maxWait = time.Minute

	// A waiter gets its turn when a success makes room.
	got := make(chan error, 1)
	go func() {
		a, err := reserve("ada")
		if err == nil {
			a.cancel()
		}
		got <- err
	}()
	eventually(t, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.waiters == 1 })
	a1.fail(clock.Now())
	select {
	case err := <-got:
		t.Fatalf("waiter after one failure (1 failed + 1 in flight = the limit): got %v, want it still waiting", err)
	case <-time.After(20 * time.Millisecond):
	}
	a2.succeed(clock.Now())
	if err := <-got; err != nil {
		t.Fatalf("waiter after a success: got %v, want a reservation", err)
	}

	// A waiter is refused when failures fill the budget.
	b1, b2 := mustReserve("bea"), mustReserve("bea")
	go func() { _, err := reserve("bea"); got <- err }()
	eventually(t, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.waiters == 1 })
	b1.fail(clock.Now())
	b2.fail(clock.Now())
	if r := refusal(<-got); r.busy || r.limit != "user" || r.wait != time.Minute {
		t.Errorf("waiter after the budget filled: got %+v, want refused by the user limit for a minute", r)
	}

	// Waiters are bounded.
	l.maxWaiters = 0
	c1, c2 := mustReserve("cyd"), mustReserve("cyd")
	if _, err := reserve("cyd"); !refusal(err).busy {
		t.Errorf("attempt with no room to wait: got %v, want busy at once", err)
	}
	// Cancelled attempts count nothing.
	c1.cancel()
	c2.cancel()
	for range 2 {
		mustReserve("cyd").cancel()
	}
	l.mu.Lock()
	_, kept := l.users["cyd"]
	l.mu.Unlock()
	if kept {
		t.Error("a user with only cancelled attempts kept a window")
	}

	// A window that ends while an attempt is in flight restarts in place
	// and counts that attempt's failure.
	d := mustReserve("dan")
	clock.Advance(2 * time.Minute)
	d.fail(clock.Now())
	l.mu.Lock()
	w := l.users["dan"]
	l.mu.Unlock()
	if w == nil || w.count != 1 || w.inFlight != 0 || !w.start.Equal(clock.Now()) {
		t.Errorf("window after a failure that outlived it: got %+v, want count 1 starting now", w)
	}
}

// eventually polls cond until it holds (bounded; a test never asserts a time).
func eventually(tb testing.TB, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	tb.Fatal("condition not met within 10s")
}
