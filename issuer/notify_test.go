package issuer

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-auth/signet/notify"
)

// TestExpiringTokens: which tokens expiry notices are about, and who is
// told: named tokens only; never revoked, regenerated, removed users' or
// expired ones; the owner for a personal token, every admin of the org for
// an administrative one.
func TestExpiringTokens(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	svc := e.srv.Service()

	_, bobCI := e.createToken("bob", map[string]any{"name": "bob-ci", "expires_in": "48h"})
	_, bobSession := e.userToken("bob", map[string]any{"expires_in": "48h"})
	_, bobLabelled := e.userToken("bob", map[string]any{"expires_in": "48h", "name": "laptop"})
	_, backup := e.createToken("alice", map[string]any{"name": "backup", "type": "administrative", "expires_in": "48h"})
	_, globex := e.createToken("dave", map[string]any{"name": "globex-deploy", "type": "administrative", "expires_in": "48h"})
	_, revoked := e.createToken("carol", map[string]any{"name": "revoked", "expires_in": "48h"})
	wantStatus(t, e.do("DELETE", "/tokens/"+revoked.TokenID, as("carol")), http.StatusNoContent)
	_, old := e.createToken("carol", map[string]any{"name": "rotated", "expires_in": "48h"})
	r := e.do("POST", "/tokens/"+old.TokenID+"/regenerate", as("carol"))
	wantStatus(t, r, http.StatusCreated)
	var regenerated createdTokenJSON
	r.decode(t, &regenerated)
	_, erins := e.createToken("erin", map[string]any{"name": "erin-ci", "expires_in": "48h"})
	wantStatus(t, e.do("DELETE", "/users/erin", as("dave")), http.StatusNoContent)
	_, later := e.createToken("bob", map[string]any{"name": "later", "expires_in": "200h"})
	_, soon := e.createToken("bob", map[string]any{"name": "soon", "expires_in": "1h"})

	now := e.clock.Now().Add(2 * time.Hour) // "soon" has expired
	toks, err := svc.ExpiringTokens(ctx, now, now.Add(72*time.Hour))
	if err != nil {
		t.Fatalf("ExpiringTokens: %v", err)
	}
	got := map[string][]string{}
	for _, tok := range toks {
		to := slices.Clone(tok.Recipients)
		slices.Sort(to)
		got[tok.Record.ID] = to
	}
	want := map[string][]string{
		bobCI.TokenID:       {"bob@example.com"},
		bobLabelled:         {"bob@example.com"},
		backup.TokenID:      {"alice@example.com", "frank@example.com"},
		globex.TokenID:      {"dave@example.com"},
		regenerated.TokenID: {"carol@example.com"},
	}
	for id, w := range want {
		if g, ok := got[id]; !ok || !slices.Equal(g, w) {
			t.Errorf("token %s: got recipients %v (listed %v), want %v", id, g, ok, w)
		}
	}
	for name, id := range map[string]string{
		"session token": bobSession, "revoked": revoked.TokenID, "regenerated (old)": old.TokenID,
		"removed user's": erins.TokenID, "expiring after until": later.TokenID, "expired": soon.TokenID,
	} {
		if _, ok := got[id]; ok {
			t.Errorf("%s token %s listed, want it left out", name, id)
		}
		valid, err := svc.TokenValid(ctx, id, now)
		if err != nil {
			t.Fatalf("TokenValid(%s): %v", name, err)
		}
		if valid && name != "expiring after until" {
			t.Errorf("TokenValid(%s): got true, want false", name)
		}
	}
	if len(got) != len(want) {
		t.Errorf("ExpiringTokens: got %d tokens, want %d", len(got), len(want))
	}
	for id := range want {
		if valid, err := svc.TokenValid(ctx, id, now); err != nil || !valid {
			t.Errorf("TokenValid(%s): got %v, %v; want true", id, valid, err)
		}
	}
	if valid, err := svc.TokenValid(ctx, "no-such-token", now); err != nil || valid {
		t.Errorf("TokenValid(unknown): got %v, %v; want false, nil", valid, err)
	}
}

// TestExpiringTokensKeyWithdrawn: a token whose signing key was withdrawn
// is revoked, so it gets no notice: the issuer's revocation state says so,
// not the token record.
func TestExpiringTokensKeyWithdrawn(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, tok := e.createToken("bob", map[string]any{"name": "k", "expires_in": "48h"})
	now := e.clock.Now()
	if _, err := e.st.RevokeKey(ctx, e.record(tok.TokenID).KeyID, now, now.Add(8760*time.Hour)); err != nil {
		t.Fatal(err)
	}
	toks, err := e.srv.Service().ExpiringTokens(ctx, now, now.Add(72*time.Hour))
	if err != nil || len(toks) != 0 {
		t.Fatalf("ExpiringTokens after the key's withdrawal: got %d tokens, %v; want none", len(toks), err)
	}
	if valid, err := e.srv.Service().TokenValid(ctx, tok.TokenID, now); err != nil || valid {
		t.Fatalf("TokenValid after the key's withdrawal: got %v, %v; want false", valid, err)
	}
}

// TestServerRunsNotifier: with a webhook configured, the server's Run
// sends the notice and counts it on /metrics.
func TestServerRunsNotifier(t *testing.T) {
	var mu sync.Mutex
	var events []notify.Event
	got := make(chan struct{}, 10)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var ev notify.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Errorf("webhook body %s: %v", b, err)
		}
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
		got <- struct{}{}
	}))
	defer hook.Close()
	e := newEnv(t, func(c *Config) {
		c.Notify = notify.Config{WebhookURL: hook.URL, Interval: 20 * time.Millisecond, Before: []time.Duration{time.Hour}}
	})
	_, tok := e.createToken("alice", map[string]any{"name": "deploy", "type": "administrative", "expires_in": "30m"})
	select {
	case <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("no webhook call within 30s")
	}
	mu.Lock()
	ev := events[0]
	mu.Unlock()
	want := notify.Event{Event: "token.expiring", TokenID: tok.TokenID, Name: "deploy", Type: "administrative", Owner: "", Org: "acme",
		ExpiresAt: tok.ExpiresAt}
	if ev != want {
		t.Errorf("event: got %+v, want %+v", ev, want)
	}
	// The count follows the receiver's answer.
	const metric = `signet_expiry_notices_sent_total{channel="webhook"} 1`
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		body := string(e.do("GET", "/metrics").body)
		if strings.Contains(body, metric) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %s:\n%s", metric, body)
		}
	}
	// The clock stands still: later looks find the notice sent.
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 1 {
		t.Errorf("webhook calls: got %d, want 1", len(events))
	}
}
