package issuer

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/signet-auth/signet/revocation"
	"github.com/signet-auth/signet/store"
	"github.com/signet-auth/signet/store/sqlite"
)

// feedClock is an injectable time source.
type feedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *feedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *feedClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// feedEnv is a revocation feed over a real SQLite store, served by a Fiber
// app on a loopback port.
type feedEnv struct {
	st     store.Store
	feed   *revocationFeed
	app    *fiber.App
	base   string
	clock  *feedClock
	cancel context.CancelFunc
	done   chan struct{}
}

func newFeedEnv(tb testing.TB, cfg RevocationConfig, maxStreams int64) *feedEnv {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "signet.db"))
	if err != nil {
		tb.Fatalf("open sqlite: %v", err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	clk := &feedClock{t: time.Now().UTC().Truncate(time.Second)}
	return serveFeed(tb, st, clk, cfg, maxStreams)
}

// serveFeed runs a feed over st and serves it on a loopback port until the
// test ends. Two over one store are two issuer replicas on one database.
func serveFeed(tb testing.TB, st store.Store, clk *feedClock, cfg RevocationConfig, maxStreams int64) *feedEnv {
	tb.Helper()
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 10 * time.Millisecond
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f := newRevocationFeed(st, cfg, log, clk.Now)
	if maxStreams > 0 {
		f.maxStreams = maxStreams
	}
	app := fiber.New(fiber.Config{
		DisableStartupMessage: true,
		// Shorter than the streams live: they must survive it.
		WriteTimeout: 300 * time.Millisecond,
		ErrorHandler: func(c *fiber.Ctx, err error) error {
			code, status, message, appErr, _ := classify(err)
			if appErr != nil && appErr.retryAfter > 0 {
				c.Set(fiber.HeaderRetryAfter, retryAfterSeconds(appErr.retryAfter))
			}
			return c.Status(status).JSON(errorBody{Error: code, Message: message})
		},
	})
	f.register(app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	go func() { _ = app.Listener(ln) }()
	runCtx, cancel := context.WithCancel(context.Background())
	e := &feedEnv{st: st, feed: f, app: app, base: "http://" + ln.Addr().String(), clock: clk, cancel: cancel, done: make(chan struct{})}
	go func() { f.run(runCtx); close(e.done) }()
	tb.Cleanup(func() {
		cancel()
		<-e.done
		_ = app.ShutdownWithTimeout(5 * time.Second)
	})
	waitFor(tb, "feed ready", func() bool { return f.ready() == nil })
	return e
}

// waitFor polls cond every few milliseconds, at most 500 times.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	tb.Fatalf("never happened: %s", what)
}

// revoke creates a token expiring after ttl, revokes it, and nudges the
// feed; it returns the log entry.
func (e *feedEnv) revoke(tb testing.TB, id string, ttl time.Duration) store.Revocation {
	tb.Helper()
	ctx := context.Background()
	now := e.clock.Now()
	err := e.st.CreateToken(ctx, store.TokenRecord{ID: id, Type: store.TokenAdministrative, Org: "acme",
		Subject: "token:" + id, IssuedAt: now, ExpiresAt: now.Add(ttl), Lifetime: ttl})
	if err != nil {
		tb.Fatalf("create token %s: %v", id, err)
	}
	rev, err := e.st.RevokeToken(ctx, id, now, "test")
	if err != nil {
		tb.Fatalf("revoke token %s: %v", id, err)
	}
	e.feed.notify()
	return rev
}

func (e *feedEnv) get(tb testing.TB, path string, hdr map[string]string) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, e.base+path, nil)
	if err != nil {
		tb.Fatalf("request %s: %v", path, err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	// No transparent gzip: the test looks at the encoding itself.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read %s: %v", path, err)
	}
	return resp, body
}

func errorCode(tb testing.TB, body []byte) string {
	tb.Helper()
	var e errorBody
	if err := json.Unmarshal(body, &e); err != nil || e.Message == "" {
		tb.Fatalf("error body %s: want {\"error\",\"message\"}", body)
	}
	return e.Error
}

func TestRevocationSnapshot(t *testing.T) {
	e := newFeedEnv(t, RevocationConfig{}, 0)
	e.revoke(t, "tok-a", time.Hour)
	last := e.revoke(t, "tok-b", time.Hour)
	var etag string
	waitFor(t, "feed caught up", func() bool {
		resp, _ := e.get(t, "/revocations", nil)
		etag = resp.Header.Get("ETag")
		return etagVersion(etag) == fmt.Sprint(last.Seq)
	})

	resp, body := e.get(t, "/revocations", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != revocation.ContentType || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("got %d %q %q, want 200 %q no-cache", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"), revocation.ContentType)
	}
	snap, err := revocation.Decode(body)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if snap.Version != uint64(last.Seq) || snap.TokenCount != 2 || !snap.MayContainToken("tok-a") || !snap.MayContainToken("tok-b") {
		t.Errorf("snapshot: got version %d count %d, want %d with tok-a and tok-b", snap.Version, snap.TokenCount, last.Seq)
	}

	tests := []struct {
		name        string
		ifNoneMatch string
		want        int
	}{
		{"same version", etag, http.StatusNotModified},
		{"weak, in a list", `"0", W/` + etag, http.StatusNotModified},
		{"older version", `"1"`, http.StatusOK},
		{"star", `*`, http.StatusNotModified},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.get(t, "/revocations", map[string]string{"If-None-Match": tc.ifNoneMatch})
			if resp.StatusCode != tc.want {
				t.Errorf("status: got %d, want %d", resp.StatusCode, tc.want)
			}
			if tc.want == http.StatusNotModified && len(body) != 0 {
				t.Errorf("304 body: got %d bytes, want none", len(body))
			}
		})
	}

	t.Run("gzip", func(t *testing.T) {
		resp, zbody := e.get(t, "/revocations", map[string]string{"Accept-Encoding": "br;q=1, gzip;q=0.5"})
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("Content-Encoding: got %q, want gzip", resp.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(strings.NewReader(string(zbody)))
		if err != nil {
			t.Fatalf("gunzip: %v", err)
		}
		plain, err := io.ReadAll(zr)
		if err != nil || string(plain) != string(body) {
			t.Errorf("gunzipped body: got %d bytes (%v), want the %d plain bytes", len(plain), err, len(body))
		}
		resp, _ = e.get(t, "/revocations", map[string]string{"Accept-Encoding": "gzip;q=0"})
		if resp.Header.Get("Content-Encoding") != "" {
			t.Errorf("gzip;q=0: got Content-Encoding %q, want none", resp.Header.Get("Content-Encoding"))
		}
	})
}

func TestRevocationDelta(t *testing.T) {
	e := newFeedEnv(t, RevocationConfig{MaxDelta: 3}, 0)
	var seqs []int64
	for i := range 5 {
		seqs = append(seqs, e.revoke(t, fmt.Sprintf("tok-%d", i), time.Hour).Seq)
	}
	latest := seqs[len(seqs)-1]
	waitFor(t, "feed caught up", func() bool {
		resp, _ := e.get(t, "/revocations", nil)
		return etagVersion(resp.Header.Get("ETag")) == fmt.Sprint(latest)
	})
	tests := []struct {
		name     string
		since    string
		want     int
		wantIDs  []string
		wantCode string
	}{
		{"two behind", strconv.FormatInt(latest-2, 10), 200, []string{"tok-3", "tok-4"}, ""},
		{"up to date", strconv.FormatInt(latest, 10), 200, []string{}, ""},
		{"at the limit", strconv.FormatInt(latest-3, 10), 200, []string{"tok-2", "tok-3", "tok-4"}, ""},
		{"too far behind", strconv.FormatInt(latest-4, 10), 410, nil, ECodeGone},
		{"from another log", strconv.FormatInt(latest+5, 10), 410, nil, ECodeGone},
		{"not a number", "abc", 400, nil, ECodeInvalid},
		{"negative", "-1", 400, nil, ECodeInvalid},
		{"empty", "", 400, nil, ECodeInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.get(t, "/revocations?since="+tc.since, nil)
			if resp.StatusCode != tc.want {
				t.Fatalf("status: got %d (%s), want %d", resp.StatusCode, body, tc.want)
			}
			if tc.wantCode != "" {
				if got := errorCode(t, body); got != tc.wantCode {
					t.Errorf("error: got %q, want %q", got, tc.wantCode)
				}
				return
			}
			var d revocation.Delta
			if err := json.Unmarshal(body, &d); err != nil {
				t.Fatalf("decode delta %s: %v", body, err)
			}
			ids := []string{}
			for _, en := range d.Entries {
				ids = append(ids, en.TokenID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.wantIDs) || d.Version != uint64(latest) || strconv.FormatUint(d.From, 10) != tc.since {
				t.Errorf("delta: got from %d version %d ids %v, want from %s version %d ids %v", d.From, d.Version, ids, tc.since, latest, tc.wantIDs)
			}
		})
	}
}

func TestRevocationSingleID(t *testing.T) {
	e := newFeedEnv(t, RevocationConfig{}, 0)
	rev := e.revoke(t, "tok-revoked", time.Hour)
	if err := e.st.CreateToken(context.Background(), store.TokenRecord{ID: "tok-live", Type: store.TokenAdministrative, Org: "acme",
		IssuedAt: e.clock.Now(), ExpiresAt: e.clock.Now().Add(time.Hour)}); err != nil {
		t.Fatalf("create token: %v", err)
	}
	tests := []struct {
		name, id string
		want     int
	}{
		{"revoked", "tok-revoked", 200},
		{"live", "tok-live", 404},
		{"unknown", "no-such-token", 404},
		{"bad characters", "a.b", 404},
		{"too long", strings.Repeat("a", 129), 404},
		{"longest allowed", strings.Repeat("a", 128), 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.get(t, "/revocations/"+tc.id, nil)
			if resp.StatusCode != tc.want {
				t.Fatalf("status: got %d (%s), want %d", resp.StatusCode, body, tc.want)
			}
			if tc.want != 200 {
				errorCode(t, body)
				return
			}
			var en revocation.Entry
			if err := json.Unmarshal(body, &en); err != nil {
				t.Fatalf("decode %s: %v", body, err)
			}
			if en.Kind != revocation.KindToken || en.TokenID != tc.id || en.Seq != uint64(rev.Seq) || !en.ExpiresAt.Equal(rev.ExpiresAt) {
				t.Errorf("entry: got %+v, want token %s seq %d expiring %s", en, tc.id, rev.Seq, rev.ExpiresAt)
			}
		})
	}
}

func TestRevocationExpiredEntriesLeave(t *testing.T) {
	e := newFeedEnv(t, RevocationConfig{}, 0)
	e.revoke(t, "tok-short", time.Minute)
	last := e.revoke(t, "tok-long", 3*time.Hour)
	waitFor(t, "feed caught up", func() bool {
		resp, _ := e.get(t, "/revocations", nil)
		return etagVersion(resp.Header.Get("ETag")) == fmt.Sprint(last.Seq)
	})
	_, body := e.get(t, "/revocations", nil)
	if s, err := revocation.Decode(body); err != nil || s.TokenCount != 2 {
		t.Fatalf("before expiry: got %v, %v; want 2 tokens", s, err)
	}

	e.clock.Advance(2 * time.Hour)
	// The jump leaves the feed stale until it reads the store again.
	waitFor(t, "feed read the store after the jump", func() bool { return e.feed.ready() == nil })
	_, body = e.get(t, "/revocations", nil)
	s, err := revocation.Decode(body)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if s.TokenCount != 1 || !s.MayContainToken("tok-long") {
		t.Errorf("after expiry: got %d tokens, want 1 (tok-long)", s.TokenCount)
	}
	if s.Version != uint64(last.Seq) {
		t.Errorf("version: got %d, want %d (expiry never lowers it)", s.Version, last.Seq)
	}
	_, body = e.get(t, "/revocations?since=0", nil)
	var d revocation.Delta
	if err := json.Unmarshal(body, &d); err != nil || len(d.Entries) != 1 || d.Entries[0].TokenID != "tok-long" {
		t.Errorf("delta after expiry: got %s, want only tok-long", body)
	}
	if resp, _ := e.get(t, "/revocations/tok-short", nil); resp.StatusCode != 404 {
		t.Errorf("single id after expiry: got %d, want 404", resp.StatusCode)
	}
}

func TestRevocationSubjectAndKeyEntries(t *testing.T) {
	e := newFeedEnv(t, RevocationConfig{}, 0)
	ctx := context.Background()
	if err := e.st.CreateUser(ctx, store.User{Username: "bob", Org: "acme", Role: store.RoleMember, PasswordHash: "x"}); err != nil {
		t.Fatalf("create user: %v", err)
	}
	now := e.clock.Now()
	sub, err := e.st.DeleteUser(ctx, "bob", now, now.Add(time.Hour))
	if err != nil {
		t.Fatalf("delete user: %v", err)
	}
	key, err := e.st.RevokeKey(ctx, "kid-1", now, now.Add(time.Hour))
	if err != nil {
		t.Fatalf("revoke key: %v", err)
	}
	e.feed.notify()
	waitFor(t, "feed caught up", func() bool {
		resp, _ := e.get(t, "/revocations", nil)
		return etagVersion(resp.Header.Get("ETag")) == fmt.Sprint(key.Seq)
	})
	_, body := e.get(t, "/revocations", nil)
	s, err := revocation.Decode(body)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if len(s.Subjects) != 1 || s.Subjects[0].Org != "acme" || s.Subjects[0].Subject != "bob" || !s.Subjects[0].NotBefore.Equal(sub.NotBefore) {
		t.Errorf("subjects: got %+v, want acme/bob before %s", s.Subjects, sub.NotBefore)
	}
	if len(s.Keys) != 1 || s.Keys[0].KeyID != "kid-1" {
		t.Errorf("keys: got %+v, want kid-1", s.Keys)
	}
	_, body = e.get(t, "/revocations?since=0", nil)
	var d revocation.Delta
	if err := json.Unmarshal(body, &d); err != nil || len(d.Entries) != 2 {
		t.Fatalf("delta: got %s, want two entries", body)
	}
	if en := d.Entries[0]; en.Kind != revocation.KindSubject || en.Subject != "bob" || en.Org != "acme" || en.NotBefore.IsZero() {
		t.Errorf("subject entry: got %+v", en)
	}
	if en := d.Entries[1]; en.Kind != revocation.KindKey || en.KeyID != "kid-1" {
		t.Errorf("key entry: got %+v", en)
	}
}

// sseEvent is one parsed Server-Sent Event (or a comment).
type sseEvent struct {
	id, event, data string
	comment         bool
}

// sseStream is an open GET /revocations/events.
type sseStream struct {
	resp   *http.Response
	br     *bufio.Reader
	cancel context.CancelFunc
}

func openStream(tb testing.TB, base string, hdr map[string]string) *sseStream {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/revocations/events", nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		tb.Fatalf("open stream: %v", err)
	}
	s := &sseStream{resp: resp, br: bufio.NewReader(resp.Body), cancel: cancel}
	tb.Cleanup(s.close)
	return s
}

func (s *sseStream) close() { s.cancel(); _ = s.resp.Body.Close() }

// next reads the next event or comment; io errors fail the test.
func (s *sseStream) next(tb testing.TB) sseEvent {
	tb.Helper()
	var ev sseEvent
	for {
		line, err := s.br.ReadString('\n')
		if err != nil {
			tb.Fatalf("read stream: %v", err)
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			if ev.event != "" || ev.data != "" || ev.comment {
				return ev
			}
		case strings.HasPrefix(line, ":"):
			ev.comment = true
		case strings.HasPrefix(line, "id: "):
			ev.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			ev.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
}

// nextEvent skips comments.
func (s *sseStream) nextEvent(tb testing.TB) sseEvent {
	tb.Helper()
	for range 1000 {
		if ev := s.next(tb); !ev.comment {
			return ev
		}
	}
	tb.Fatal("only comments on the stream")
	return sseEvent{}
}

func TestRevocationEvents(t *testing.T) {
	e := newFeedEnv(t, RevocationConfig{KeepAlive: 50 * time.Millisecond, MaxDelta: 3}, 0)
	first := e.revoke(t, "tok-0", time.Hour)
	waitFor(t, "feed caught up", func() bool {
		resp, _ := e.get(t, "/revocations", nil)
		return etagVersion(resp.Header.Get("ETag")) == fmt.Sprint(first.Seq)
	})

	s := openStream(t, e.base, nil)
	if ct := s.resp.Header.Get("Content-Type"); s.resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("open: got %d %q, want 200 text/event-stream", s.resp.StatusCode, ct)
	}
	st, err := e.st.RevocationState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ev := s.nextEvent(t); ev.event != "hello" || ev.data != fmt.Sprintf(`{"version":%d,"epoch":%q,"tag":%q}`, first.Seq, st.Epoch, first.Tag) {
		t.Fatalf("first event: got %+v, want hello at version %d", ev, first.Seq)
	}

	t.Run("revocation committed after connecting", func(t *testing.T) {
		rev := e.revoke(t, "tok-1", time.Hour)
		ev := s.nextEvent(t)
		var en revocation.Entry
		if err := json.Unmarshal([]byte(ev.data), &en); err != nil {
			t.Fatalf("decode %q: %v", ev.data, err)
		}
		if ev.event != "revocation" || etagVersion(ev.id) != strconv.FormatInt(rev.Seq, 10) || en.TokenID != "tok-1" || en.Seq != uint64(rev.Seq) {
			t.Errorf("event: got %+v, want revocation of tok-1 with id %d", ev, rev.Seq)
		}
	})

	t.Run("keep-alives outlive the write timeout", func(t *testing.T) {
		comments := 0
		for comments < 12 { // 12 × 50ms, twice the 300ms WriteTimeout
			if ev := s.next(t); ev.comment {
				comments++
			} else {
				t.Fatalf("unexpected event %+v", ev)
			}
		}
	})

	e.revoke(t, "tok-2", time.Hour)
	e.revoke(t, "tok-3", time.Hour)
	t.Run("Last-Event-ID resumes", func(t *testing.T) {
		r := openStream(t, e.base, map[string]string{"Last-Event-ID": strconv.FormatInt(first.Seq, 10)})
		if ev := r.nextEvent(t); ev.event != "hello" {
			t.Fatalf("first event: got %+v, want hello", ev)
		}
		for _, want := range []string{"tok-1", "tok-2", "tok-3"} {
			ev := r.nextEvent(t)
			if ev.event != "revocation" || !strings.Contains(ev.data, `"token_id":"`+want+`"`) {
				t.Errorf("replayed event: got %+v, want revocation of %s", ev, want)
			}
		}
	})
	t.Run("too old resets", func(t *testing.T) {
		r := openStream(t, e.base, map[string]string{"Last-Event-ID": "999"})
		if ev := r.nextEvent(t); ev.event != "hello" {
			t.Fatalf("first event: got %+v, want hello", ev)
		}
		if ev := r.nextEvent(t); ev.event != "reset" {
			t.Errorf("second event: got %+v, want reset", ev)
		}
		rev := e.revoke(t, "tok-4", time.Hour)
		if ev := r.nextEvent(t); etagVersion(ev.id) != strconv.FormatInt(rev.Seq, 10) {
			t.Errorf("after reset: got %+v, want the new entry %d", ev, rev.Seq)
		}
	})
	t.Run("bad Last-Event-ID", func(t *testing.T) {
		resp, body := e.get(t, "/revocations/events", map[string]string{"Last-Event-ID": "x1"})
		if resp.StatusCode != 400 || errorCode(t, body) != ECodeInvalid {
			t.Errorf("got %d %s, want 400 %s", resp.StatusCode, body, ECodeInvalid)
		}
	})
}

func TestRevocationEventsSinceParameter(t *testing.T) {
	e := newFeedEnv(t, RevocationConfig{}, 0)
	a := e.revoke(t, "tok-a", time.Hour)
	e.revoke(t, "tok-b", time.Hour)
	waitFor(t, "feed caught up", func() bool {
		resp, _ := e.get(t, "/revocations", nil)
		return etagVersion(resp.Header.Get("ETag")) == fmt.Sprint(a.Seq+1)
	})
	req, _ := http.NewRequest(http.MethodGet, e.base+"/revocations/events?since="+strconv.FormatInt(a.Seq, 10), nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	s := &sseStream{resp: resp, br: bufio.NewReader(resp.Body), cancel: cancel}
	defer s.close()
	if ev := s.nextEvent(t); ev.event != "hello" {
		t.Fatalf("first: got %+v, want hello", ev)
	}
	if ev := s.nextEvent(t); !strings.Contains(ev.data, `"tok-b"`) {
		t.Errorf("replay: got %+v, want tok-b only", ev)
	}
}

func TestRevocationEventsLimitAndShutdown(t *testing.T) {
	e := newFeedEnv(t, RevocationConfig{}, 1)
	s := openStream(t, e.base, nil)
	if ev := s.nextEvent(t); ev.event != "hello" {
		t.Fatalf("first event: got %+v, want hello", ev)
	}
	resp, body := e.get(t, "/revocations/events", nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || errorCode(t, body) != ECodeRateLimited {
		t.Errorf("second stream: got %d Retry-After %q %s, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}

	// Server shutdown ends the open stream instead of waiting for it.
	if err := e.app.ShutdownWithTimeout(10 * time.Second); err != nil {
		t.Errorf("shutdown with an open stream: got %v, want nil", err)
	}
	if _, err := io.ReadAll(s.br); err != nil {
		t.Errorf("stream end: got %v, want a clean EOF", err)
	}
	waitFor(t, "stream slot released", func() bool { return e.feed.openStreams() == 0 })
}

func TestRevocationFeedStopEndsStreams(t *testing.T) {
	e := newFeedEnv(t, RevocationConfig{}, 0)
	s := openStream(t, e.base, nil)
	if ev := s.nextEvent(t); ev.event != "hello" {
		t.Fatalf("first event: got %+v, want hello", ev)
	}
	e.cancel()
	if _, err := io.ReadAll(s.br); err != nil {
		t.Errorf("stream end: got %v, want a clean EOF", err)
	}
}

func TestRevocationFeedNotReady(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "signet.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	defer st.Close()
	f := newRevocationFeed(st, RevocationConfig{}, nil, nil)
	if f.ready() == nil {
		t.Fatal("ready before run: got nil, want an error")
	}
	app := fiber.New(fiber.Config{ErrorHandler: func(c *fiber.Ctx, err error) error {
		_, status, _, _, _ := classify(err)
		return c.SendStatus(status)
	}})
	f.register(app)
	for _, path := range []string{"/revocations", "/revocations?since=0", "/revocations/events"} {
		resp, err := app.Test(httpRequest(t, path), 5000)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("GET %s before load: got %d, want 503", path, resp.StatusCode)
		}
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { f.run(runCtx); close(done) }()
	waitFor(t, "ready after run", func() bool { return f.ready() == nil })
	cancel()
	<-done
}

func httpRequest(tb testing.TB, path string) *http.Request {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://signet.test"+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return req
}

func TestAcceptsGzip(t *testing.T) {
	tests := []struct {
		header string
		want   bool
	}{
		{"gzip", true},
		{"deflate, gzip;q=0.8", true},
		{"GZIP", true},
		{"*", true},
		{"gzip;q=0", false},
		{"gzip; q=0.0", false},
		{"br", false},
		{"", false},
	}
	for _, tc := range tests {
		t.Run(tc.header, func(t *testing.T) {
			if got := acceptsGzip(tc.header); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRevocationVersionCountsExpiredEntries(t *testing.T) {
	// Revoking a token that has already expired (regenerate is allowed
	// after expiry) appends an entry that no list ever shows. It must still
	// raise the version, or a replica started before it and one started
	// after it answer different versions, and a verifier switching between
	// them is sent to reload the snapshot (410) over and over.
	e := newFeedEnv(t, RevocationConfig{}, 0)
	early := serveFeed(t, e.st, e.clock, RevocationConfig{}, 0)
	live := e.revoke(t, "tok-live", time.Hour)

	ctx := context.Background()
	now := e.clock.Now()
	if err := e.st.CreateToken(ctx, store.TokenRecord{ID: "tok-expired", Type: store.TokenAdministrative, Org: "acme",
		Subject: "token:tok-expired", IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour), Lifetime: time.Hour}); err != nil {
		t.Fatalf("create expired token: %v", err)
	}
	gone, err := e.st.RevokeToken(ctx, "tok-expired", now, "test")
	if err != nil {
		t.Fatalf("revoke expired token: %v", err)
	}
	if gone.Seq <= live.Seq {
		t.Fatalf("seq of the expired entry: got %d, want above %d", gone.Seq, live.Seq)
	}
	e.feed.notify()
	late := serveFeed(t, e.st, e.clock, RevocationConfig{}, 0)

	want := fmt.Sprint(gone.Seq)
	for name, r := range map[string]*feedEnv{"first": e, "started before": early, "started after": late} {
		waitFor(t, name+" replica at the store's version", func() bool {
			resp, _ := r.get(t, "/revocations", nil)
			return etagVersion(resp.Header.Get("ETag")) == want
		})
		resp, body := r.get(t, "/revocations?since="+strconv.FormatInt(gone.Seq, 10), nil)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s replica, delta since %d: got %d (%s), want 200", name, gone.Seq, resp.StatusCode, body)
		}
	}
}

func TestRevocationSnapshotBuildsNewestVersion(t *testing.T) {
	// Requests queued behind a snapshot build must find the next build
	// fresh, so each build takes the feed's newest version, not the one
	// its caller saw when it arrived.
	e := newFeedEnv(t, RevocationConfig{}, 0)
	first := e.revoke(t, "tok-a", time.Hour)
	waitFor(t, "feed at the first entry", func() bool {
		v, err := e.feed.view()
		return err == nil && v.cursor.Version == uint64(first.Seq)
	})
	if s, err := e.feed.snapshot(uint64(first.Seq), 0); err != nil || s.version != uint64(first.Seq) {
		t.Fatalf("first build: got %+v, %v; want version %d", s, err, first.Seq)
	}
	second := e.revoke(t, "tok-b", time.Hour)
	waitFor(t, "feed at the second entry", func() bool {
		v, err := e.feed.view()
		return err == nil && v.cursor.Version == uint64(second.Seq)
	})
	e.clock.Advance(snapshotMaxAge) // the cached build is too old to reuse
	waitFor(t, "feed read the store after the jump", func() bool { return e.feed.ready() == nil })
	s, err := e.feed.snapshot(uint64(first.Seq), 0)
	if err != nil {
		t.Fatalf("second build: %v", err)
	}
	if s.version != uint64(second.Seq) {
		t.Errorf("build for a caller at version %d: got version %d, want the newest, %d", first.Seq, s.version, second.Seq)
	}
	if again, err := e.feed.snapshot(uint64(second.Seq), 0); err != nil || again != s {
		t.Errorf("caller at the newest version: got a new build (%v), want the cached one", err)
	}
}

func TestRevocationFeedPrune(t *testing.T) {
	now := time.Now().UTC()
	const grace = revocation.ExpiryGrace
	entry := func(seq uint64, expires time.Time) revocation.Entry {
		return revocation.Entry{Seq: seq, Kind: revocation.KindToken, TokenID: fmt.Sprintf("tok-%d", seq), ExpiresAt: expires}
	}
	tests := []struct {
		name    string
		expires []time.Duration // per entry, relative to now
		want    []uint64
	}{
		{"nothing expired", []time.Duration{time.Hour, time.Minute}, []uint64{1, 2}},
		// Entries stay revocation.ExpiryGrace past their token's expiry.
		{"expired within the grace", []time.Duration{-time.Minute, -time.Second, 0}, []uint64{1, 2, 3}},
		{"first past the grace", []time.Duration{-grace - time.Minute, time.Hour, time.Hour}, []uint64{2, 3}},
		{"middle past the grace", []time.Duration{time.Hour, -grace - time.Second, time.Hour}, []uint64{1, 3}},
		{"all past the grace", []time.Duration{-grace - time.Hour, -grace}, []uint64{}},
		{"empty log", nil, []uint64{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newRevocationFeed(nil, RevocationConfig{}, nil, nil)
			for i, d := range tc.expires {
				f.entries = append(f.entries, entry(uint64(i+1), now.Add(d)))
			}
			before := append([]revocation.Entry(nil), f.entries...)
			view := f.entries
			f.prune(now)
			got := []uint64{}
			for _, e := range f.entries {
				got = append(got, e.Seq)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("after prune: got seqs %v, want %v", got, tc.want)
			}
			if !f.pruned.Equal(now) {
				t.Errorf("pruned at: got %s, want %s", f.pruned, now)
			}
			// A view taken before the prune is left as it was.
			if fmt.Sprint(view) != fmt.Sprint(before) {
				t.Errorf("earlier view changed: got %v, want %v", view, before)
			}
		})
	}
}

// flakyStore fails the revocation reads while fail is set, as a replica
// that lost its database connection would.
type flakyStore struct {
	store.Store
	fail  atomic.Bool
	tried atomic.Int64 // reads attempted while failing
}

var errStoreDown = errors.New("store unreachable (test)")

func (s *flakyStore) RevocationState(ctx context.Context) (store.RevocationState, error) {
	if s.fail.Load() {
		s.tried.Add(1)
		return store.RevocationState{}, errStoreDown
	}
	return s.Store.RevocationState(ctx)
}

func (s *flakyStore) ListRevocations(ctx context.Context, since int64, now time.Time) ([]store.Revocation, error) {
	if s.fail.Load() {
		s.tried.Add(1)
		return nil, errStoreDown
	}
	return s.Store.ListRevocations(ctx, since, now)
}

func TestRevocationFeedStaleWhenStoreUnreadable(t *testing.T) {
	// A replica that cannot read the store may miss revocations another
	// replica commits. It must stop vouching for its list: no keep-alives
	// that tell a verifier it is in sync, 503 on the list, /readyz failing.
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "signet.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	flaky := &flakyStore{Store: st}
	clk := &feedClock{t: time.Now().UTC().Truncate(time.Second)}
	e := serveFeed(t, flaky, clk, RevocationConfig{KeepAlive: 20 * time.Millisecond}, 0)
	s := openStream(t, e.base, nil)
	if ev := s.nextEvent(t); ev.event != "hello" {
		t.Fatalf("first event: got %+v, want hello", ev)
	}
	if ev := s.next(t); !ev.comment {
		t.Fatalf("while healthy: got %+v, want a keep-alive", ev)
	}

	flaky.fail.Store(true)
	tried := flaky.tried.Load()
	waitFor(t, "a failed read", func() bool { return flaky.tried.Load() > tried })
	if err := e.feed.ready(); err != nil {
		t.Fatalf("ready right after one failed read: got %v, want nil", err)
	}
	clk.Advance(e.feed.cfg.staleAfter() + time.Second)

	if err := e.feed.ready(); err == nil {
		t.Error("ready while stale: got nil, want an error")
	}
	for _, path := range []string{"/revocations", "/revocations?since=0", "/revocations/events"} {
		resp, body := e.get(t, path, nil)
		if resp.StatusCode != http.StatusServiceUnavailable || errorCode(t, body) != ECodeUnavailable {
			t.Errorf("GET %s while stale: got %d %s, want 503 %s", path, resp.StatusCode, body, ECodeUnavailable)
		}
	}
	// The open stream ends at its next keep-alive instead of sending it
	// (a healthy one runs on until the test's deadline).
	if _, err := io.ReadAll(s.br); err != nil {
		t.Errorf("stream end: got %v, want a clean EOF", err)
	}

	flaky.fail.Store(false)
	waitFor(t, "ready again", func() bool { return e.feed.ready() == nil })
	if resp, _ := e.get(t, "/revocations", nil); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /revocations after recovery: got %d, want 200", resp.StatusCode)
	}
}

// etagVersion returns the list version of an ETag or event id (a quoted
// revocation.Cursor); "" when it is none.
func etagVersion(s string) string {
	c, err := revocation.ParseCursor(strings.Trim(strings.TrimPrefix(s, "W/"), `"`))
	if err != nil {
		return ""
	}
	return strconv.FormatUint(c.Version, 10)
}
