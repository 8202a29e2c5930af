package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-auth/signet/notify"
	"github.com/signet-auth/signet/notify/notifytest"
)

// The expiry notices end to end: the real binary, a real SMTP server
// (aiosmtpd) and a real webhook receiver, all on loopback. Lifetimes and
// thresholds are seconds instead of days so that the thresholds come by
// themselves: a token 20s out with before [16s, 3s] is told 4s after it
// is made, like a token 8 days out is told a week before expiry.

// webhookSink records webhook calls.
type webhookSink struct {
	srv    *httptest.Server
	mu     sync.Mutex
	events []notify.Event
}

func newWebhookSink(tb testing.TB) *webhookSink {
	tb.Helper()
	w := &webhookSink{}
	w.srv = httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var ev notify.Event
		if r.Method != http.MethodPost || json.Unmarshal(b, &ev) != nil {
			tb.Errorf("webhook: got %s %s, want a JSON POST", r.Method, b)
		}
		w.mu.Lock()
		w.events = append(w.events, ev)
		w.mu.Unlock()
		rw.WriteHeader(http.StatusNoContent)
	}))
	tb.Cleanup(w.srv.Close)
	return w
}

func (w *webhookSink) got() []notify.Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]notify.Event(nil), w.events...)
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

func notifyYAML(smtpAddr, webhook, before string) string {
	return fmt.Sprintf(`notify:
  before: %s
  interval: 250ms
  smtp:
    addr: %q
    from: "signet <signet@example.com>"
  webhook_url: %q
`, before, smtpAddr, webhook)
}

// metricValue sums a counter's samples for channel on the issuer's /metrics.
func metricValue(tb testing.TB, e *env, name, channel string) float64 {
	tb.Helper()
	r := e.do("GET", "/metrics", "", "", "")
	mustStatus(tb, r, 200)
	re := regexp.MustCompile(`(?m)^` + name + `\{channel="` + channel + `"\} (\S+)$`)
	m := re.FindSubmatch(r.body)
	if m == nil {
		tb.Fatalf("/metrics has no %s{channel=%q}", name, channel)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

func TestExpiryNoticesEndToEnd(t *testing.T) {
	smtp := notifytest.StartSMTP(t, notifytest.SMTPOptions{})
	hook := newWebhookSink(t)
	e := newEnv(t, notifyYAML(smtp.Addr, hook.srv.URL+"/signet", "[16s, 3s]"))
	for _, u := range [][]string{{"alice", "admin"}, {"bob", "member"}} {
		if _, errOut, code := e.cli("correct-horse-battery\n", "user", "add", u[0], "--org", "acme", "--role", u[1],
			"--email", u[0]+"@example.com", "--password-stdin"); code != 0 {
			t.Fatalf("user add %s: %s", u[0], errOut)
		}
	}
	e.start()
	create := func(user, body string) map[string]any {
		t.Helper()
		r := e.do("POST", "/tokens", user, "correct-horse-battery", body)
		mustStatus(t, r, 201)
		return r.json(t)
	}
	deploy := create("bob", `{"name":"deploy","expires_in":"20s"}`)
	revoked := create("bob", `{"name":"gone","expires_in":"20s"}`)
	mustStatus(t, e.do("DELETE", "/tokens/"+revoked["token_id"].(string), "bob", "correct-horse-battery", ""), 204)
	session := e.do("POST", "/user-token", "bob", "correct-horse-battery", `{"expires_in":"20s"}`)
	mustStatus(t, session, 200)
	// Not due within this test: 60s out, thresholds 16s and 3s.
	create("alice", `{"name":"backup","type":"administrative","expires_in":"60s"}`)
	deployID := deploy["token_id"].(string)

	// The 16s threshold: one mail to bob, one webhook call.
	if !waitFor(15*time.Second, func() bool { return len(smtp.Messages()) >= 1 && len(hook.got()) >= 1 }) {
		t.Fatalf("no notice within 15s: %d mails, %d webhook calls; logs:\n%s", len(smtp.Messages()), len(hook.got()), e.logs.String())
	}
	mails := smtp.Messages()
	if len(mails) != 1 || strings.Join(mails[0].RcptTo, ",") != "bob@example.com" {
		t.Fatalf("mails: got %d (%+v), want one to bob@example.com", len(mails), mails)
	}
	if s := mails[0].Subject(); !strings.Contains(s, `"deploy"`) || !strings.Contains(s, "seconds") {
		t.Errorf("subject: got %q", s)
	}
	if !strings.Contains(mails[0].Body, e.url+"/tokens/"+deployID+"/regenerate") {
		t.Errorf("body does not say how to regenerate:\n%s", mails[0].Body)
	}
	ev := hook.got()[0]
	want := notify.Event{Event: "token.expiring", TokenID: deployID, Name: "deploy", Type: "personal", Owner: "bob", Org: "acme",
		ExpiresAt: deploy["expires_at"].(string)}
	if ev != want {
		t.Errorf("webhook event: got %+v, want %+v", ev, want)
	}
	if got := metricValue(t, e, "signet_expiry_notices_sent_total", "email"); got != 1 {
		t.Errorf("signet_expiry_notices_sent_total{channel=\"email\"}: got %v, want 1", got)
	}

	// A restart sends nothing again.
	e.stop()
	e.start()
	time.Sleep(2 * time.Second) // eight looks
	if m, w := len(smtp.Messages()), len(hook.got()); m != 1 || w != 1 {
		t.Fatalf("after a restart: got %d mails and %d webhook calls, want 1 and 1", m, w)
	}

	// The 3s threshold: one more of each, and never a word about the
	// revoked token or the session token.
	if !waitFor(20*time.Second, func() bool { return len(smtp.Messages()) >= 2 && len(hook.got()) >= 2 }) {
		t.Fatalf("no second notice: %d mails, %d webhook calls; logs:\n%s", len(smtp.Messages()), len(hook.got()), e.logs.String())
	}
	time.Sleep(4 * time.Second) // until every token but backup has expired
	if m, w := len(smtp.Messages()), len(hook.got()); m != 2 || w != 2 {
		t.Fatalf("in all: got %d mails and %d webhook calls, want 2 and 2", m, w)
	}
	for _, ev := range hook.got() {
		if ev.TokenID != deployID {
			t.Errorf("webhook call about token %s (%s), want only %s", ev.TokenID, ev.Name, deployID)
		}
	}
	for _, m := range smtp.Messages() {
		if m.Header.Get("X-Signet-Token-Id") != deployID {
			t.Errorf("mail about token %s, want only %s", m.Header.Get("X-Signet-Token-Id"), deployID)
		}
	}
	t.Logf("SMTP server: aiosmtpd %s", smtp.Version)
}

// newNotifyReplica is newReplica with a notify section.
func newNotifyReplica(tb testing.TB, publicURL, dsn, keysDir, extra string) *env {
	tb.Helper()
	dir := tb.TempDir()
	port := freePort(tb)
	cfg := fmt.Sprintf(`server:
  listen: "127.0.0.1:%d"
  public_url: %q
store:
  driver: postgres
  dsn: %q
keys:
  dir: %q
security:
  bcrypt_cost: 4
%s`, port, publicURL, dsn, keysDir, extra)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	e := &env{tb: tb, dir: dir, config: path, url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	tb.Cleanup(func() { e.kill() })
	return e
}

// TestExpiryNoticesReplicas: two replicas on one PostgreSQL database send
// each notice once; while the mail server is down the mail fails on both
// and is delivered once when it is back, and the webhook is not held up.
func TestExpiryNoticesReplicas(t *testing.T) {
	dsn := freshPostgresDSN(t)
	smtp := notifytest.StartSMTP(t, notifytest.SMTPOptions{})
	smtp.Stop()
	hook := newWebhookSink(t)
	keysDir := t.TempDir()
	publicURL := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	extra := notifyYAML(smtp.Addr, hook.srv.URL, "[15s]")
	a := newNotifyReplica(t, publicURL, dsn, keysDir, extra)
	b := newNotifyReplica(t, publicURL, dsn, keysDir, extra)
	if _, errOut, code := a.cli("admin-password-1\n", "user", "add", "root", "--org", "acme", "--role", "admin",
		"--email", "root@example.com", "--password-stdin"); code != 0 {
		t.Fatalf("user add: %s", errOut)
	}
	a.start()
	b.start()
	r := a.do("POST", "/tokens", "root", "admin-password-1", `{"name":"shared","type":"administrative","expires_in":"20s"}`)
	mustStatus(t, r, 201)
	id := r.json(t)["token_id"].(string)
	r = b.do("POST", "/tokens", "root", "admin-password-1", `{"name":"revoked","type":"administrative","expires_in":"20s"}`)
	mustStatus(t, r, 201)
	mustStatus(t, a.do("DELETE", "/tokens/"+r.json(t)["token_id"].(string), "root", "admin-password-1", ""), 204)

	if !waitFor(15*time.Second, func() bool { return len(hook.got()) >= 1 }) {
		t.Fatalf("no webhook call within 15s; logs:\n%s\n%s", a.logs.String(), b.logs.String())
	}
	failed := func() float64 {
		return metricValue(t, a, "signet_expiry_notices_failed_total", "email") + metricValue(t, b, "signet_expiry_notices_failed_total", "email")
	}
	if !waitFor(10*time.Second, func() bool { return failed() >= 2 }) {
		t.Fatalf("mail failures while the server is down: got %v, want at least 2", failed())
	}
	smtp.Start()
	if !waitFor(10*time.Second, func() bool { return len(smtp.Messages()) >= 1 }) {
		t.Fatalf("no mail within 10s of the server coming back; logs:\n%s\n%s", a.logs.String(), b.logs.String())
	}
	time.Sleep(2 * time.Second) // eight more looks on each replica
	mails, events := smtp.Messages(), hook.got()
	if len(mails) != 1 || len(events) != 1 {
		t.Fatalf("two replicas: got %d mails and %d webhook calls, want 1 and 1", len(mails), len(events))
	}
	if strings.Join(mails[0].RcptTo, ",") != "root@example.com" || events[0].TokenID != id || events[0].Type != "administrative" {
		t.Errorf("got a mail to %v and an event %+v, want root@example.com and token %s", mails[0].RcptTo, events[0], id)
	}
	sent := metricValue(t, a, "signet_expiry_notices_sent_total", "email") + metricValue(t, b, "signet_expiry_notices_sent_total", "email")
	if sent != 1 {
		t.Errorf("mails sent by the replicas together: got %v, want 1", sent)
	}
	t.Logf("SMTP server: aiosmtpd %s; PostgreSQL at %s", smtp.Version, redactDSN(dsn))
}
