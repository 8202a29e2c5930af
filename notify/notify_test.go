package notify_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/signet-auth/signet/notify"
	"github.com/signet-auth/signet/notify/notifytest"
	"github.com/signet-auth/signet/store"
	"github.com/signet-auth/signet/store/sqlite"
)

// t0 is the fixed start of every test's clock.
var t0 = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// source is a Source over a fixed set of tokens; revoked ones are not
// listed and not valid.
type source struct {
	mu      sync.Mutex
	tokens  []notify.Token
	revoked map[string]bool
}

func (s *source) ExpiringTokens(_ context.Context, now, until time.Time) ([]notify.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []notify.Token
	for _, t := range s.tokens {
		if !s.revoked[t.Record.ID] && t.Record.ExpiresAt.After(now) && !t.Record.ExpiresAt.After(until) {
			out = append(out, t)
		}
	}
	return out, nil
}

func (s *source) TokenValid(_ context.Context, id string, now time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.tokens {
		if t.Record.ID == id {
			return !s.revoked[id] && t.Record.ExpiresAt.After(now), nil
		}
	}
	return false, nil
}

func (s *source) revoke(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.revoked == nil {
		s.revoked = map[string]bool{}
	}
	s.revoked[id] = true
}

func personal(id, name string, expires time.Time, to ...string) notify.Token {
	return notify.Token{Record: store.TokenRecord{
		ID: id, Name: name, Type: store.TokenPersonal, Owner: "alice", OwnerID: "uid-alice", Org: "acme",
		Subject: "alice", Scopes: []string{"reports:read"}, IssuedAt: expires.Add(-30 * 24 * time.Hour), ExpiresAt: expires,
	}, Recipients: to}
}

// hook is a real HTTP server on loopback that records webhook calls and
// answers with the status codes queued in fail (then 204).
type hook struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []notify.Event
	keys   []string
	fail   []int
}

func newHook(tb testing.TB) *hook {
	tb.Helper()
	h := &hook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.fail) > 0 {
			code := h.fail[0]
			h.fail = h.fail[1:]
			w.WriteHeader(code)
			return
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			tb.Errorf("webhook: got %s with Content-Type %q, want POST application/json", r.Method, r.Header.Get("Content-Type"))
		}
		b, _ := io.ReadAll(r.Body)
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		var e notify.Event
		if err := dec.Decode(&e); err != nil {
			tb.Errorf("webhook body %s: %v", b, err)
		}
		h.events = append(h.events, e)
		h.keys = append(h.keys, r.Header.Get("Idempotency-Key"))
		w.WriteHeader(http.StatusNoContent)
	}))
	tb.Cleanup(h.srv.Close)
	return h
}

func (h *hook) got() []notify.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]notify.Event(nil), h.events...)
}

func (h *hook) failNext(codes ...int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fail = append(h.fail, codes...)
}

// fixture is one notifier over a real SQLite store, a real SMTP server
// (when smtp is set) and a real webhook receiver.
type fixture struct {
	tb    testing.TB
	clk   *clock
	src   *source
	st    *sqlite.Store
	smtp  *notifytest.SMTPServer
	hook  *hook
	reg   *prometheus.Registry
	logs  *bytes.Buffer
	n     *notify.Notifier
	dbDir string
}

func newFixture(tb testing.TB, withSMTP bool, change func(*notify.Config)) *fixture {
	tb.Helper()
	f := &fixture{tb: tb, clk: &clock{now: t0}, src: &source{}, hook: newHook(tb), reg: prometheus.NewRegistry(), logs: &bytes.Buffer{}, dbDir: tb.TempDir()}
	f.st = openStore(tb, f.dbDir)
	cfg := notify.Config{
		Before:     []time.Duration{168 * time.Hour, 24 * time.Hour},
		WebhookURL: f.hook.srv.URL + "/hooks/signet?secret=webhook-secret",
		PublicURL:  "https://auth.example.com",
	}
	if withSMTP {
		f.smtp = notifytest.StartSMTP(tb, notifytest.SMTPOptions{})
		cfg.SMTP = notify.SMTPConfig{Addr: f.smtp.Addr, From: "signet <signet@example.com>", Timeout: 10 * time.Second}
	}
	if change != nil {
		change(&cfg)
	}
	f.n = f.notifier(cfg, f.st)
	return f
}

func openStore(tb testing.TB, dir string) *sqlite.Store {
	tb.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "signet.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	return st
}

// notifier builds another notifier on f's clock, source and logs.
func (f *fixture) notifier(cfg notify.Config, st store.NoticeLog) *notify.Notifier {
	f.tb.Helper()
	cfg.Now = f.clk.Now
	cfg.Logger = slog.New(slog.NewTextHandler(&lockedBuffer{b: f.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.Registerer == nil {
		cfg.Registerer = f.reg
	}
	n, err := notify.New(cfg, f.src, st)
	if err != nil {
		f.tb.Fatal(err)
	}
	return n
}

type lockedBuffer struct {
	mu sync.Mutex
	b  *bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// look runs one look at time at and checks what it did.
func (f *fixture) look(at time.Time, wantSent, wantFailed int) {
	f.tb.Helper()
	f.clk.Set(at)
	res, err := f.n.Look(context.Background())
	if err != nil {
		f.tb.Fatalf("Look at %s: got error %v, want nil", at.Format(time.RFC3339), err)
	}
	if res.Sent != wantSent || res.Failed != wantFailed {
		f.tb.Fatalf("Look at %s: got %d sent, %d failed; want %d sent, %d failed\nlogs:\n%s",
			at.Format(time.RFC3339), res.Sent, res.Failed, wantSent, wantFailed, f.logs.String())
	}
}

func (f *fixture) mails() []notifytest.Message { return f.smtp.Messages() }

// TestOncePerThreshold: a token 8 days out gets nothing; a week before its
// expiry one mail and one webhook; nothing more until a day before; then
// one of each again; nothing after expiry.
func TestOncePerThreshold(t *testing.T) {
	f := newFixture(t, true, nil)
	exp := t0.Add(8 * 24 * time.Hour)
	f.src.tokens = []notify.Token{personal("tok-1", "deploy", exp, "alice@example.com")}

	f.look(t0, 0, 0)
	f.look(exp.Add(-168*time.Hour).Add(-time.Second), 0, 0) // not yet: 7 days and a second left
	f.look(exp.Add(-168*time.Hour), 2, 0)
	if got := len(f.mails()); got != 1 {
		t.Fatalf("mails after the 168h threshold: got %d, want 1", got)
	}
	if got := len(f.hook.got()); got != 1 {
		t.Fatalf("webhook calls after the 168h threshold: got %d, want 1", got)
	}
	f.look(exp.Add(-100*time.Hour), 0, 0)
	f.look(exp.Add(-24*time.Hour).Add(-time.Minute), 0, 0)
	f.look(exp.Add(-23*time.Hour), 2, 0)
	f.look(exp.Add(-time.Hour), 0, 0)
	f.look(exp, 0, 0)
	f.look(exp.Add(time.Hour), 0, 0)

	mails, events := f.mails(), f.hook.got()
	if len(mails) != 2 || len(events) != 2 {
		t.Fatalf("in all: got %d mails and %d webhook calls, want 2 and 2", len(mails), len(events))
	}
	if s := mails[0].Subject(); s != `Your token "deploy" expires in 7 days` {
		t.Errorf("first subject: got %q", s)
	}
	if s := mails[1].Subject(); s != `Your token "deploy" expires in 23 hours` {
		t.Errorf("second subject: got %q", s)
	}
	want := notify.Event{Event: "token.expiring", TokenID: "tok-1", Name: "deploy", Type: "personal", Owner: "alice", Org: "acme",
		ExpiresAt: exp.Format(time.RFC3339)}
	for i, e := range events {
		if e != want {
			t.Errorf("webhook event %d: got %+v, want %+v", i, e, want)
		}
	}
	if f.hook.keys[0] == f.hook.keys[1] || f.hook.keys[0] == "" {
		t.Errorf("Idempotency-Key: got %q and %q, want two different keys", f.hook.keys[0], f.hook.keys[1])
	}
	if got := counter(t, f.reg, "signet_expiry_notices_sent_total", "email"); got != 2 {
		t.Errorf("signet_expiry_notices_sent_total{channel=email}: got %v, want 2", got)
	}
	if got := counter(t, f.reg, "signet_expiry_notices_sent_total", "webhook"); got != 2 {
		t.Errorf("signet_expiry_notices_sent_total{channel=webhook}: got %v, want 2", got)
	}
	if strings.Contains(f.logs.String(), "webhook-secret") {
		t.Errorf("the logs carry the webhook URL's secret:\n%s", f.logs.String())
	}
}

// counter reads one labelled counter from reg.
func counter(tb testing.TB, reg *prometheus.Registry, name, channel string) float64 {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "channel" && l.GetValue() == channel {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	tb.Fatalf("metric %s{channel=%q} not registered", name, channel)
	return 0
}

// TestNearestThresholdOnly: a token first seen with 12 hours left gets the
// 24h notice only, never the 168h one it is also past.
func TestNearestThresholdOnly(t *testing.T) {
	f := newFixture(t, false, nil)
	exp := t0.Add(12 * time.Hour)
	f.src.tokens = []notify.Token{personal("tok-1", "ci", exp)}
	f.look(t0, 1, 0)
	f.look(t0.Add(time.Hour), 0, 0)
	f.look(t0.Add(11*time.Hour), 0, 0)
	ns, err := f.st.ListNotices(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ns) != 1 || ns[0].Threshold != 24*time.Hour {
		t.Fatalf("notices recorded: got %+v, want one at 24h", ns)
	}
	// A token with 5 days left when first seen: the 168h notice now, the
	// 24h one later.
	exp2 := t0.Add(5 * 24 * time.Hour)
	f.src.tokens = append(f.src.tokens, personal("tok-2", "nightly", exp2))
	f.look(t0.Add(11*time.Hour), 1, 0)
	f.look(exp2.Add(-24*time.Hour), 1, 0)
	if got := len(f.hook.got()); got != 3 {
		t.Fatalf("webhook calls: got %d, want 3", got)
	}
}

// TestRecipientsAndRefusals: one mail per distinct recipient; a recipient
// the server refuses fails alone (the others are delivered in the same
// look) and is tried again at the next look.
func TestRecipientsAndRefusals(t *testing.T) {
	f := newFixture(t, true, func(c *notify.Config) { c.WebhookURL = "" })
	exp := t0.Add(20 * time.Hour)
	f.src.tokens = []notify.Token{{
		Record: store.TokenRecord{ID: "tok-adm", Name: "backup", Type: store.TokenAdministrative, Org: "acme",
			Subject: "token:tok-adm", IssuedAt: t0.Add(-time.Hour), ExpiresAt: exp},
		Recipients: []string{"reject-me@example.com", "alice@example.com", "bob@example.com", "alice@example.com", "not an address"},
	}}
	f.look(t0, 2, 1)
	mails := f.mails()
	var to []string
	for _, m := range mails {
		to = append(to, m.RcptTo...)
		if s := m.Subject(); s != `Administrative token "backup" of acme expires in 20 hours` {
			t.Errorf("subject: got %q", s)
		}
		if !strings.Contains(m.Body, "as an admin of that organization") {
			t.Errorf("body does not say why an admin gets it:\n%s", m.Body)
		}
	}
	if strings.Join(to, ",") != "alice@example.com,bob@example.com" {
		t.Fatalf("recipients: got %v, want alice and bob once each", to)
	}
	// The refused one is retried at the next look (and fails again); the
	// malformed address is never tried.
	f.look(t0.Add(time.Minute), 0, 1)
	if got := counter(t, f.reg, "signet_expiry_notices_failed_total", "email"); got != 2 {
		t.Errorf("signet_expiry_notices_failed_total{channel=email}: got %v, want 2", got)
	}
}

// TestSMTPDownRetried: while the mail server is down the mail fails (the
// webhook is delivered regardless), and it is delivered once at the first
// look after the server is back.
func TestSMTPDownRetried(t *testing.T) {
	f := newFixture(t, true, nil)
	exp := t0.Add(6 * 24 * time.Hour)
	f.src.tokens = []notify.Token{personal("tok-1", "deploy", exp, "alice@example.com"), personal("tok-2", "other", exp, "carol@example.com")}
	f.smtp.Stop()
	// The first refused connection marks the mail server down for this
	// look: the second mail is not even tried.
	f.look(t0, 2, 1)
	f.look(t0.Add(time.Minute), 0, 1)
	ns, err := f.st.ListNotices(context.Background(), time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var released int
	for _, n := range ns {
		if n.Channel == store.NoticeEmail {
			if !n.SentAt.IsZero() || !n.ClaimedUntil.IsZero() || !strings.Contains(n.LastError, "connect") {
				t.Errorf("a failed mail's record: got %+v, want released with the connection error", n)
			}
			released++
		}
	}
	if released != 1 {
		t.Errorf("failed mail records: got %d, want 1", released)
	}
	f.smtp.Start()
	f.look(t0.Add(2*time.Minute), 2, 0)
	f.look(t0.Add(3*time.Minute), 0, 0)
	if got := len(f.mails()); got != 2 {
		t.Fatalf("mails once the server is back: got %d, want 2", got)
	}
	if got := len(f.hook.got()); got != 2 {
		t.Fatalf("webhook calls: got %d, want 2 (never repeated)", got)
	}
}

// TestWebhookFailuresRetried: a 5xx, a 4xx and a redirect are failures,
// retried at the next look; then one delivery.
func TestWebhookFailuresRetried(t *testing.T) {
	f := newFixture(t, false, nil)
	f.src.tokens = []notify.Token{personal("tok-1", "deploy", t0.Add(time.Hour))}
	f.hook.failNext(http.StatusServiceUnavailable, http.StatusBadRequest, http.StatusFound)
	f.look(t0, 0, 1)
	f.look(t0.Add(time.Minute), 0, 1)
	f.look(t0.Add(2*time.Minute), 0, 1)
	f.look(t0.Add(3*time.Minute), 1, 0)
	f.look(t0.Add(4*time.Minute), 0, 0)
	if got := len(f.hook.got()); got != 1 {
		t.Fatalf("webhook deliveries: got %d, want 1", got)
	}
	if got := counter(t, f.reg, "signet_expiry_notices_failed_total", "webhook"); got != 3 {
		t.Errorf("signet_expiry_notices_failed_total{channel=webhook}: got %v, want 3", got)
	}
}

// TestWebhookTimeout: a receiver slower than the timeout is a failure.
func TestWebhookTimeout(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	f := newFixture(t, false, func(c *notify.Config) {
		c.WebhookURL = slow.URL
		c.WebhookTimeout = 200 * time.Millisecond
	})
	f.src.tokens = []notify.Token{personal("tok-1", "deploy", t0.Add(time.Hour))}
	f.look(t0, 0, 1)
	if !strings.Contains(f.logs.String(), "Timeout") && !strings.Contains(f.logs.String(), "deadline") {
		t.Errorf("the failure does not say it timed out:\n%s", f.logs.String())
	}
}

// TestRevokedNeverNotified: a token revoked before its threshold is never
// told about, and one revoked between the listing and the sending (the
// source's second answer) neither.
func TestRevokedNeverNotified(t *testing.T) {
	f := newFixture(t, true, nil)
	f.src.tokens = []notify.Token{personal("tok-1", "deploy", t0.Add(time.Hour), "alice@example.com")}
	f.src.revoke("tok-1")
	f.look(t0, 0, 0)

	late := &lateRevocation{source: f.src, id: "tok-2"}
	f.src.tokens = append(f.src.tokens, personal("tok-2", "ci", t0.Add(time.Hour), "alice@example.com"))
	n := f.notifier(notify.Config{
		WebhookURL: f.hook.srv.URL, PublicURL: "https://auth.example.com", Registerer: prometheus.NewRegistry(),
		SMTP: notify.SMTPConfig{Addr: f.smtp.Addr, From: "signet@example.com"},
	}, f.st)
	n2, err := notify.New(notify.Config{WebhookURL: f.hook.srv.URL, Now: f.clk.Now}, late, f.st)
	if err != nil {
		t.Fatal(err)
	}
	res, err := n2.Look(context.Background())
	if err != nil || res.Sent != 0 {
		t.Fatalf("Look with the token revoked after listing: got %+v, %v; want nothing sent", res, err)
	}
	// And it stays so for every later look.
	if res, err := n.Look(context.Background()); err != nil || res.Sent != 0 || res.Failed != 0 {
		t.Fatalf("later Look: got %+v, %v; want nothing", res, err)
	}
	if len(f.mails()) != 0 || len(f.hook.got()) != 0 {
		t.Fatalf("got %d mails and %d webhook calls about revoked tokens, want none", len(f.mails()), len(f.hook.got()))
	}
}

// lateRevocation lists a token and revokes it right after, as a revocation
// landing between the list and the send would.
type lateRevocation struct {
	*source
	id string
}

func (l *lateRevocation) ExpiringTokens(ctx context.Context, now, until time.Time) ([]notify.Token, error) {
	toks, err := l.source.ExpiringTokens(ctx, now, until)
	l.source.revoke(l.id)
	return toks, err
}

// TestRestartNotResent: a new notifier over the same database (a restart)
// sends nothing already sent.
func TestRestartNotResent(t *testing.T) {
	f := newFixture(t, true, nil)
	f.src.tokens = []notify.Token{personal("tok-1", "deploy", t0.Add(100*time.Hour), "alice@example.com")}
	f.look(t0, 2, 0)
	f.st.Close()
	st := openStore(t, f.dbDir)
	f.n = f.notifier(notify.Config{
		WebhookURL: f.hook.srv.URL, PublicURL: "https://auth.example.com", Registerer: prometheus.NewRegistry(),
		SMTP: notify.SMTPConfig{Addr: f.smtp.Addr, From: "signet@example.com"},
	}, st)
	f.look(t0.Add(time.Minute), 0, 0)
	if len(f.mails()) != 1 || len(f.hook.got()) != 1 {
		t.Fatalf("after a restart: got %d mails and %d webhook calls, want 1 and 1", len(f.mails()), len(f.hook.got()))
	}
}

// TestTwoNotifiersSendOnce: two notifiers on two handles of one database
// (two processes) looking at the same moment send each notice once.
func TestTwoNotifiersSendOnce(t *testing.T) {
	f := newFixture(t, true, nil)
	var toks []notify.Token
	for i := range 5 {
		toks = append(toks, personal("tok-"+string(rune('a'+i)), "t"+string(rune('a'+i)), t0.Add(time.Hour), "alice@example.com"))
	}
	f.src.tokens = toks
	other := f.notifier(notify.Config{
		WebhookURL: f.hook.srv.URL, PublicURL: "https://auth.example.com", Registerer: prometheus.NewRegistry(),
		SMTP: notify.SMTPConfig{Addr: f.smtp.Addr, From: "signet@example.com"},
	}, openStore(t, f.dbDir))
	var wg sync.WaitGroup
	results := make([]notify.Result, 2)
	for i, n := range []*notify.Notifier{f.n, other} {
		wg.Go(func() {
			res, err := n.Look(context.Background())
			if err != nil {
				t.Errorf("Look: %v", err)
			}
			results[i] = res
		})
	}
	wg.Wait()
	if sent := results[0].Sent + results[1].Sent; sent != 10 {
		t.Fatalf("sent by both: got %d (%+v), want 10 (5 mails, 5 webhook calls)", sent, results)
	}
	if len(f.mails()) != 5 || len(f.hook.got()) != 5 {
		t.Fatalf("got %d mails and %d webhook calls, want 5 and 5", len(f.mails()), len(f.hook.got()))
	}
}

// TestLapsedClaimTakenOver: a claimant that died holding a claim blocks the
// notice only until its lease lapses.
func TestLapsedClaimTakenOver(t *testing.T) {
	f := newFixture(t, false, nil)
	exp := t0.Add(time.Hour)
	f.src.tokens = []notify.Token{personal("tok-1", "deploy", exp)}
	won, err := f.st.ClaimNotice(context.Background(), store.NoticeClaim{
		NoticeKey: store.NoticeKey{TokenID: "tok-1", Threshold: 24 * time.Hour, Channel: store.NoticeWebhook},
		Claimant:  "dead-replica", Now: t0, LeaseUntil: t0.Add(notify.DefaultLease), TokenExpiresAt: exp,
	})
	if err != nil || !won {
		t.Fatalf("ClaimNotice: got %v, %v; want true, nil", won, err)
	}
	f.look(t0.Add(time.Minute), 0, 0)
	f.look(t0.Add(notify.DefaultLease), 1, 0)
	if got := len(f.hook.got()); got != 1 {
		t.Fatalf("webhook calls: got %d, want 1", got)
	}
}

// TestMessage checks the mail as the real server received it: RFC 5322
// headers, and a text saying which token, when it expires and how to
// regenerate it.
func TestMessage(t *testing.T) {
	f := newFixture(t, true, nil)
	exp := time.Date(2026, time.March, 8, 9, 30, 0, 0, time.UTC)
	tok := personal("uocmxlgk5bbpygkmoec6c6stp4", "déploiement ☃", exp, "alice@example.com")
	f.src.tokens = []notify.Token{tok}
	f.look(exp.Add(-167*time.Hour), 2, 0)
	mails := f.mails()
	if len(mails) != 1 {
		t.Fatalf("got %d mails, want 1", len(mails))
	}
	m := mails[0]
	if m.MailFrom != "signet@example.com" || strings.Join(m.RcptTo, ",") != "alice@example.com" {
		t.Errorf("envelope: got from %q to %v, want signet@example.com to alice@example.com", m.MailFrom, m.RcptTo)
	}
	date, err := mail.ParseDate(m.Header.Get("Date"))
	if err != nil || !date.Equal(exp.Add(-167*time.Hour)) {
		t.Errorf("Date: got %q (%v), want the look's time", m.Header.Get("Date"), err)
	}
	if id := m.Header.Get("Message-ID"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@example.com>") {
		t.Errorf("Message-ID: got %q, want <...@example.com>", id)
	}
	from, err := m.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Address != "signet@example.com" || from[0].Name != "signet" {
		t.Errorf("From: got %q (%v)", m.Header.Get("From"), err)
	}
	to, err := m.Header.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != "alice@example.com" {
		t.Errorf("To: got %q (%v)", m.Header.Get("To"), err)
	}
	if s := m.Subject(); s != `Your token "déploiement ☃" expires in 7 days` {
		t.Errorf("Subject: got %q", s)
	}
	for _, h := range []string{"MIME-Version", "Content-Type", "Auto-Submitted"} {
		if m.Header.Get(h) == "" {
			t.Errorf("header %s missing", h)
		}
	}
	for _, want := range []string{
		`Your personal token "déploiement ☃" expires in 7 days.`,
		"Token id:      uocmxlgk5bbpygkmoec6c6stp4",
		"Expires at:    2026-03-08 09:30:00 UTC (2026-03-08T09:30:00Z)",
		"https://auth.example.com/ui/",
		"curl -u YOUR_USERNAME -X POST https://auth.example.com/tokens/uocmxlgk5bbpygkmoec6c6stp4/regenerate",
	} {
		if !strings.Contains(m.Body, want) {
			t.Errorf("body lacks %q:\n%s", want, m.Body)
		}
	}
	for _, line := range strings.Split(string(m.Raw), "\r\n") {
		if len(line) > 998 {
			t.Errorf("a line of %d bytes, over RFC 5322's 998", len(line))
		}
	}
	t.Logf("delivered through aiosmtpd %s", f.smtp.Version)
}

// TestSTARTTLSAndAuth: with starttls the session switches to TLS before
// authenticating; a server without STARTTLS, a wrong password and an
// untrusted certificate all fail, and the password is in no log or error.
func TestSTARTTLSAndAuth(t *testing.T) {
	const password = "correct-horse-battery-staple"
	srv := notifytest.StartSMTP(t, notifytest.SMTPOptions{StartTLS: true, Username: "signet", Password: password})
	plain := notifytest.StartSMTP(t, notifytest.SMTPOptions{})
	exp := t0.Add(time.Hour)
	cases := []struct {
		name     string
		smtp     notify.SMTPConfig
		wantSent int
		wantLog  string
	}{
		{"tls and auth", notify.SMTPConfig{Addr: srv.Addr, From: "signet@example.com", Username: "signet", Password: password,
			StartTLS: true, TLS: &tls.Config{RootCAs: srv.RootCAs}}, 1, ""},
		// net/smtp answers a refused AUTH with "*" and QUIT, which
		// aiosmtpd leaves unanswered: the session ends at its timeout.
		{"wrong password", notify.SMTPConfig{Addr: srv.Addr, From: "signet@example.com", Username: "signet", Password: "wrong-" + password,
			StartTLS: true, TLS: &tls.Config{RootCAs: srv.RootCAs}, Timeout: 2 * time.Second}, 0, "authentication"},
		{"untrusted certificate", notify.SMTPConfig{Addr: srv.Addr, From: "signet@example.com", Username: "signet", Password: password,
			StartTLS: true}, 0, "certificate"},
		{"no STARTTLS offered", notify.SMTPConfig{Addr: plain.Addr, From: "signet@example.com", StartTLS: true}, 0, "STARTTLS"},
		{"starttls off against a server that requires it", notify.SMTPConfig{Addr: srv.Addr, From: "signet@example.com"}, 0, "MAIL FROM"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &fixture{tb: t, clk: &clock{now: t0}, src: &source{}, reg: prometheus.NewRegistry(), logs: &bytes.Buffer{}}
			f.st = openStore(t, t.TempDir())
			f.src.tokens = []notify.Token{personal("tok-1", "deploy", exp, "alice@example.com")}
			f.n = f.notifier(notify.Config{SMTP: tc.smtp}, f.st)
			f.look(t0, tc.wantSent, 1-tc.wantSent)
			if !strings.Contains(f.logs.String(), tc.wantLog) {
				t.Errorf("logs do not mention %q:\n%s", tc.wantLog, f.logs.String())
			}
			if strings.Contains(f.logs.String(), password) {
				t.Errorf("the SMTP password is in the logs:\n%s", f.logs.String())
			}
			ns, _ := f.st.ListNotices(context.Background(), time.Time{})
			for _, n := range ns {
				if strings.Contains(n.LastError, password) {
					t.Errorf("the SMTP password is in the stored failure %q", n.LastError)
				}
			}
		})
	}
	mails := srv.Messages()
	if len(mails) != 1 || !mails[0].TLS || mails[0].Login != "signet" {
		t.Fatalf("messages at the TLS server: got %d (%+v), want 1 over TLS, authenticated as signet", len(mails), mails)
	}
	if len(plain.Messages()) != 0 {
		t.Fatalf("the server without STARTTLS got mail, want none")
	}
}

// TestNewRefuses: settings that cannot work are errors.
func TestNewRefuses(t *testing.T) {
	st := openStore(t, t.TempDir())
	cases := []struct {
		name string
		cfg  notify.Config
	}{
		{"no channel", notify.Config{}},
		{"bad smtp addr", notify.Config{SMTP: notify.SMTPConfig{Addr: "mail.example.com", From: "a@example.com"}}},
		{"bad from", notify.Config{SMTP: notify.SMTPConfig{Addr: "mail.example.com:25", From: "nope"}}},
		{"password in clear", notify.Config{SMTP: notify.SMTPConfig{Addr: "mail.example.com:25", From: "a@example.com", Username: "u", Password: "p"}}},
		{"bad webhook", notify.Config{WebhookURL: "ftp://example.com/x"}},
		{"zero threshold", notify.Config{WebhookURL: "https://example.com/x", Before: []time.Duration{0}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := notify.New(tc.cfg, &source{}, st); err == nil {
				t.Fatalf("New(%s): got nil error, want one", tc.name)
			}
		})
	}
}
