package issuer

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

func TestParseBasic(t *testing.T) {
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cases := []struct {
		name       string
		header     string
		user, pass string
		ok         bool
	}{
		{"plain", "Basic " + enc("alice:secret"), "alice", "secret", true},
		{"lower-case scheme", "basic " + enc("alice:secret"), "alice", "secret", true},
		{"colon in password", "Basic " + enc("alice:a:b:c"), "alice", "a:b:c", true},
		{"empty password", "Basic " + enc("alice:"), "alice", "", true},
		{"unicode password", "Basic " + enc("alice:pässwörd"), "alice", "pässwörd", true},
		{"extra spaces", "Basic   " + enc("alice:x") + " ", "alice", "x", true},
		{"empty", "", "", "", false},
		{"other scheme", "Bearer " + enc("alice:x"), "", "", false},
		{"no credentials", "Basic", "", "", false},
		{"no colon", "Basic " + enc("alice"), "", "", false},
		{"empty user", "Basic " + enc(":x"), "", "", false},
		{"not base64", "Basic ***", "", "", false},
		{"url-safe base64", "Basic " + base64.URLEncoding.EncodeToString([]byte("al>>ce?:x??")), "", "", false},
		{"unpadded", "Basic " + base64.RawStdEncoding.EncodeToString([]byte("alice:xy")), "", "", false},
		{"tab separated", "Basic\t" + enc("alice:x"), "", "", false},
		{"two tokens", "Basic " + enc("a:b") + " " + enc("c:d"), "", "", false},
		{"newline in user", "Basic " + enc("al\nice:x"), "", "", false},
		{"DEL in user", "Basic " + enc("al\x7fice:x"), "", "", false},
		{"invalid UTF-8", "Basic " + enc("alice:\xc3\x28"), "", "", false},
		{"long user", "Basic " + enc(strings.Repeat("u", 300)+":x"), "", "", false},
		{"long header", "Basic " + enc("alice:"+strings.Repeat("x", 800)), "", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, p, err := parseBasic(tc.header)
			if (err == nil) != tc.ok {
				t.Fatalf("parseBasic(%q): got err %v, want ok=%v", tc.header, err, tc.ok)
			}
			if u != tc.user || p != tc.pass {
				t.Errorf("got %q:%q, want %q:%q", u, p, tc.user, tc.pass)
			}
		})
	}
}

// FuzzBasicAuth: the parser never panics, never echoes its input in its
// error, and whatever it accepts round-trips.
func FuzzBasicAuth(f *testing.F) {
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, seed := range []string{
		"", "Basic", "Basic ", "Basic " + enc("alice:secret"), "basic " + enc("a:"), "Basic " + enc(":"),
		"Basic ===", "Basic " + enc("\x00:\x00"), "Bearer x", "Basic " + enc("a:b") + "=", "Basic  " + enc("ü:ü"),
		"Basic " + strings.Repeat("A", 2000),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		u, p, err := parseBasic(header)
		if err != nil {
			if u != "" || p != "" {
				t.Fatalf("error with credentials %q:%q", u, p)
			}
			if len(header) >= 8 && strings.Contains(err.Error(), header) {
				t.Fatalf("error %q repeats the header", err)
			}
			return
		}
		if u == "" || strings.Contains(u, ":") || !utf8.ValidString(u) || !utf8.ValidString(p) || len(u) > maxAuthUsername {
			t.Fatalf("accepted bad credentials %q:%q from %q", u, p, header)
		}
		u2, p2, err := parseBasic("Basic " + enc(u+":"+p))
		if err != nil || u2 != u || p2 != p {
			t.Fatalf("round trip of %q:%q: got %q:%q, %v", u, p, u2, p2, err)
		}
	})
}

func TestRateLimitPerUser(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.MaxFailuresUser = 3
		c.MaxFailuresClient = 100
		c.FailureWindow = 10 * time.Minute
	})
	for i := range 3 {
		wantError(t, e.do("GET", "/tokens", basic("alice", fmt.Sprintf("wrong-%d", i))), 401, ECodeUnauthorized)
	}
	// Now even the right password is refused, before any hashing.
	r := e.do("GET", "/tokens", as("alice"))
	wantError(t, r, 429, ECodeRateLimited)
	if got := r.header.Get("Retry-After"); got != "600" {
		t.Errorf("Retry-After: got %q, want 600", got)
	}
	// Other accounts are unaffected, from the same address.
	wantStatus(t, e.do("GET", "/tokens", as("frank")), 200)
	wantStatus(t, e.do("POST", "/user-token", as("bob")), 200)

	e.clock.Advance(4 * time.Minute)
	r = e.do("GET", "/tokens", as("alice"))
	wantError(t, r, 429, ECodeRateLimited)
	if got := r.header.Get("Retry-After"); got != "360" {
		t.Errorf("Retry-After after 4m: got %q, want 360", got)
	}
	e.clock.Advance(6 * time.Minute)
	wantStatus(t, e.do("GET", "/tokens", as("alice")), 200)

	t.Run("success resets the user's count", func(t *testing.T) {
		for range 2 {
			wantError(t, e.do("GET", "/tokens", basic("carol", "nope-nope")), 401, ECodeUnauthorized)
		}
		wantStatus(t, e.do("GET", "/tokens", as("carol")), 200)
		for range 2 {
			wantError(t, e.do("GET", "/tokens", basic("carol", "nope-nope")), 401, ECodeUnauthorized)
		}
		wantStatus(t, e.do("GET", "/tokens", as("carol")), 200)
	})
	t.Run("unknown users are counted too", func(t *testing.T) {
		for range 3 {
			wantError(t, e.do("GET", "/tokens", basic("ghost", "x-x-x-x-x")), 401, ECodeUnauthorized)
		}
		wantError(t, e.do("GET", "/tokens", basic("ghost", "x-x-x-x-x")), 429, ECodeRateLimited)
	})
}

func TestRateLimitPerClient(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.MaxFailuresUser = 100
		c.MaxFailuresClient = 5
		c.FailureWindow = time.Minute
		c.TrustedProxies = []string{"0.0.0.0/32", "10.0.0.0/8"}
	})
	attacker, other := "203.0.113.66", "198.51.100.20"
	for i := range 5 {
		wantError(t, e.do("GET", "/tokens", basic(fmt.Sprintf("user%d", i), "guess-guess"), from(attacker)), 401, ECodeUnauthorized)
	}
	r := e.do("GET", "/tokens", as("alice"), from(attacker))
	wantError(t, r, 429, ECodeRateLimited)
	if got := r.header.Get("Retry-After"); got != "60" {
		t.Errorf("Retry-After: got %q, want 60", got)
	}
	// Through another trusted proxy hop: still the attacker.
	wantError(t, e.do("GET", "/tokens", as("alice"), from(attacker+", 10.1.2.3")), 429, ECodeRateLimited)
	// A forged left-most entry does not escape the limit.
	wantError(t, e.do("GET", "/tokens", as("alice"), from("192.0.2.1, "+attacker)), 429, ECodeRateLimited)
	// The same accounts from another address work.
	wantStatus(t, e.do("GET", "/tokens", as("alice"), from(other)), 200)
	// A success does not reset the address's count.
	wantStatus(t, e.do("GET", "/tokens", as("alice"), from(other)), 200)
	e.clock.Advance(time.Minute)
	wantStatus(t, e.do("GET", "/tokens", as("alice"), from(attacker)), 200)
}

// TestUntrustedForwardedFor: without trusted proxies X-Forwarded-For is
// ignored, so a client cannot pick a fresh address per attempt.
func TestUntrustedForwardedFor(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.MaxFailuresUser = 100
		c.MaxFailuresClient = 3
	})
	for i := range 3 {
		wantError(t, e.do("GET", "/tokens", basic("x", "guess-guess"), from(fmt.Sprintf("192.0.2.%d", i+1))), 401, ECodeUnauthorized)
	}
	wantError(t, e.do("GET", "/tokens", as("alice"), from("192.0.2.200")), 429, ECodeRateLimited)
}

func TestClientIP(t *testing.T) {
	proxies, err := parseTrustedProxies([]string{"10.0.0.0/8", "192.168.1.1", "::ffff:172.16.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{proxies: proxies}
	for _, a := range []string{"10.9.9.9", "192.168.1.1", "172.16.0.1"} {
		if !s.trustedProxy(netip.MustParseAddr(a)) {
			t.Errorf("%s: got untrusted, want trusted", a)
		}
	}
	for _, a := range []string{"11.0.0.1", "192.168.1.2"} {
		if s.trustedProxy(netip.MustParseAddr(a)) {
			t.Errorf("%s: got trusted, want untrusted", a)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.example.com", ""} {
		if _, err := parseTrustedProxies([]string{bad}); err == nil {
			t.Errorf("parseTrustedProxies(%q): got nil error", bad)
		}
	}
}

// tryFail reserves one attempt for user from client at now and fails it;
// false when the limiter refused the reservation.
func tryFail(l *failureLimiter, user, client string, now time.Time) bool {
	a, err := l.reserve(context.Background(), user, client, func() time.Time { return now })
	if err != nil {
		return false
	}
	a.fail(now)
	return true
}

// limitedBy names the limit that refuses a new attempt for user from
// client at now ("" when one is granted; it is then cancelled).
func limitedBy(l *failureLimiter, user, client string, now time.Time) string {
	a, err := l.reserve(context.Background(), user, client, func() time.Time { return now })
	if err != nil {
		var r *errLoginRefused
		if !errors.As(err, &r) {
			return err.Error()
		}
		return r.limit
	}
	a.cancel()
	return ""
}

func TestFailureLimiterBounded(t *testing.T) {
	l := newFailureLimiter(3, 3, time.Minute)
	l.maxKeys = 10
	now := testStart
	for i := range 100 {
		tryFail(l, "user"+strconv.Itoa(i), "addr"+strconv.Itoa(i), now)
	}
	if len(l.users) > 10 || len(l.clients) > 10 {
		t.Fatalf("maps grew past the bound: got %d users, %d clients, want <= 10", len(l.users), len(l.clients))
	}
	// Expired windows are swept before anything live is dropped.
	later := now.Add(2 * time.Minute)
	for i := range 10 {
		tryFail(l, "late"+strconv.Itoa(i), "late", later) // refused past the client's 3
	}
	for k := range l.users {
		if !strings.HasPrefix(k, "late") {
			t.Errorf("expired entry %s survived", k)
		}
	}
	if got := limitedBy(l, "late0", "other", later); got != "" {
		t.Errorf("one failure limited a user with limit 3: got limited by %q", got)
	}
	if got := limitedBy(l, "nobody", "late", later); got != "client" {
		t.Errorf("failures from one address: got limited by %q, want client", got)
	}
}

func TestHashPool(t *testing.T) {
	p := newHashPool(1, prometheus.NewHistogram(prometheus.HistogramOpts{Name: "x"}))
	for _, tc := range []struct{ workers, want int }{{1, hashQueueMin}, {2, hashQueueMin}, {32, 32 * hashQueueFactor}} {
		if got := newHashPool(tc.workers, prometheus.NewHistogram(prometheus.HistogramOpts{Name: "y"})).maxQueue; got != int64(tc.want) {
			t.Errorf("queue bound with %d workers: got %d, want %d", tc.workers, got, tc.want)
		}
	}
	release, err := p.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Run("context ends the wait", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := p.acquire(ctx); !errors.Is(err, errPoolBusy) || !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want errPoolBusy wrapping context.Canceled", err)
		}
	})
	t.Run("wait is bounded", func(t *testing.T) {
		p.maxWait = time.Millisecond
		if _, err := p.acquire(context.Background()); !errors.Is(err, errPoolBusy) {
			t.Errorf("got %v, want errPoolBusy", err)
		}
	})
	t.Run("queue is bounded", func(t *testing.T) {
		p.maxQueue = 0
		p.maxWait = time.Hour
		if _, err := p.acquire(context.Background()); !errors.Is(err, errPoolBusy) {
			t.Errorf("got %v, want errPoolBusy at once", err)
		}
		p.maxQueue = 4
	})
	release()
	r2, err := p.acquire(context.Background())
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	r2()
	if n := p.waiting.Load(); n != 0 {
		t.Errorf("waiting: got %d, want 0", n)
	}
}

// TestHashPoolSaturated: with every hashing worker busy, logins answer 429
// while JWKS, health and the revocation list still answer.
func TestHashPoolSaturated(t *testing.T) {
	e := newEnv(t)
	var releases []func()
	for range e.srv.cfg.HashWorkers {
		r, err := e.srv.pool.acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, r)
	}
	e.srv.pool.maxWait = 20 * time.Millisecond
	r := e.do("POST", "/user-token", as("alice"))
	wantError(t, r, 429, ECodeRateLimited)
	if r.header.Get("Retry-After") != "1" {
		t.Errorf("Retry-After: got %q, want 1", r.header.Get("Retry-After"))
	}
	for _, path := range []string{"/healthz", "/.well-known/jwks.json", "/.well-known/oauth-authorization-server"} {
		wantStatus(t, e.do("GET", path), 200)
	}
	for _, rel := range releases {
		rel()
	}
	wantStatus(t, e.do("POST", "/user-token", as("alice")), 200)
}

// TestFailureLimiterKeepsLockedKeys: when the maps are full, a flood of
// made-up names and addresses makes room by dropping keys below their
// limit, never the attacked account's lock.
func TestFailureLimiterKeepsLockedKeys(t *testing.T) {
	l := newFailureLimiter(3, 3, time.Minute)
	l.maxKeys = 10
	now := testStart
	for range 3 {
		tryFail(l, "victim", "203.0.113.1", now)
	}
	for i := range 200 {
		tryFail(l, "spray"+strconv.Itoa(i), "198.51.100."+strconv.Itoa(i%250), now.Add(time.Second))
	}
	if len(l.users) > 10 || len(l.clients) > 10 {
		t.Fatalf("maps grew past the bound: got %d users, %d clients, want <= 10", len(l.users), len(l.clients))
	}
	if got := limitedBy(l, "victim", "192.0.2.1", now.Add(2*time.Second)); got != "user" {
		t.Errorf("victim after the flood: got limited by %q, want user", got)
	}
	if got := limitedBy(l, "someone", "203.0.113.1", now.Add(2*time.Second)); got != "client" {
		t.Errorf("attacker address after the flood: got limited by %q, want client", got)
	}
}

// TestFailureLimiterIPv6Block: an IPv6 client is counted by its /64, so
// stepping through addresses of one block brings no fresh budget; IPv4
// addresses and other blocks keep their own.
func TestFailureLimiterIPv6Block(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.MaxFailuresUser = 100
		c.MaxFailuresClient = 3
		c.TrustedProxies = []string{"0.0.0.0/32"}
	})
	for i := range 3 {
		wantError(t, e.do("GET", "/tokens", basic(fmt.Sprintf("user%d", i), "guess-guess"),
			from(fmt.Sprintf("2001:db8:1:2::%x", i+1))), 401, ECodeUnauthorized)
	}
	for _, tc := range []struct {
		name, addr string
		status     int
	}{
		{"same /64", "2001:db8:1:2:ffff::9", http.StatusTooManyRequests},
		{"another /64", "2001:db8:1:3::1", http.StatusOK},
		{"IPv4", "192.0.2.7", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantStatus(t, e.do("GET", "/tokens", as("alice"), from(tc.addr)), tc.status)
		})
	}
	for in, want := range map[string]string{
		"2001:db8::1":      "2001:db8::/64",
		"::ffff:192.0.2.1": "::ffff:192.0.2.1",
		"192.0.2.1":        "192.0.2.1",
		"not-an-address":   "not-an-address",
	} {
		if got := clientKey(in); got != want {
			t.Errorf("clientKey(%q): got %q, want %q", in, got, want)
		}
	}
}
