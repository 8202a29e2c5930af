package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/signet-auth/signet/verifier"
)

// TestRegenerateGraceEndToEnd: the real binary, a real verifier following
// it, and `signet gate`. A token regenerated with a grace period of a few seconds keeps
// verifying, offline and at the issuer, until previous_valid_until, and is
// refused everywhere within a second after it, without a new revocation
// entry at that moment: the verifier enforces the entry's valid_until on
// its own.
func TestRegenerateGraceEndToEnd(t *testing.T) {
	e := newEnv(t, "tokens:\n  max_regenerate_grace: 10s\n")
	const pass = "admin-password-1"
	if _, errOut, code := e.cli(pass+"\n", "user", "add", "root", "--org", "acme", "--role", "admin", "--email", "root@example.com", "--password-stdin"); code != 0 {
		t.Fatalf("user add: %s", errOut)
	}
	e.start()
	r := e.do("POST", "/tokens", "root", pass, `{"name":"ci","type":"administrative","scopes":["reports:read"]}`)
	mustStatus(t, r, 201)
	oldValue, oldID := r.json(t)["token"].(string), r.json(t)["token_id"].(string)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, err := verifier.New(ctx, verifier.Config{IssuerURL: e.url})
	if err != nil {
		t.Fatalf("verifier.New: %v", err)
	}
	defer v.Close()
	if _, err := v.Verify(ctx, oldValue); err != nil {
		t.Fatalf("Verify before the regenerate: %v", err)
	}
	g := startGateProc(t, e)
	gate := func(value string) (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url+"/auth", nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+value)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if st, err := gate(oldValue); st != 200 {
		t.Fatalf("gate before the regenerate: %d, %v; want 200", st, err)
	}

	// Over the maximum: refused, naming the field; nothing changes.
	r = e.do("POST", "/tokens/"+oldID+"/regenerate", "root", pass, `{"grace":"11s"}`)
	mustStatus(t, r, 400)
	if msg, _ := r.json(t)["message"].(string); !strings.Contains(msg, "grace") || !strings.Contains(msg, "10s") {
		t.Errorf("over the maximum: message %q, want it to name grace and the maximum", msg)
	}

	r = e.do("POST", "/tokens/"+oldID+"/regenerate", "root", pass, `{"grace":"3s"}`)
	mustStatus(t, r, 201)
	body := r.json(t)
	newValue := body["token"].(string)
	until, err := time.Parse(time.RFC3339, body["previous_valid_until"].(string))
	if err != nil {
		t.Fatalf("previous_valid_until: %v (%s)", err, r.body)
	}
	// The entry reaches the list; from here on its version must not move.
	version := ""
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r := e.do("GET", "/revocations/"+oldID, "", "", "")
		if r.status == 200 {
			if got := r.json(t)["valid_until"]; got != until.Format(time.RFC3339) {
				t.Fatalf("GET /revocations/{old}: valid_until %v, want %s", got, until.Format(time.RFC3339))
			}
			version = e.do("GET", "/revocations", "", "", "").header.Get("ETag")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the regenerate's entry is not on the list after 10s")
		}
	}

	// Each check reports whether it refuses the old value right now.
	type check struct {
		name    string
		refused func() (bool, error)
	}
	checks := []check{
		{"verifier", func() (bool, error) {
			_, err := v.Verify(ctx, oldValue)
			if errors.Is(err, verifier.ErrRevoked) {
				return true, nil
			}
			return false, err
		}},
		{"gate", func() (bool, error) {
			switch st, err := gate(oldValue); {
			case err != nil:
				return false, err
			case st == 200:
				return false, nil
			case st == 401:
				return true, nil
			default:
				return false, fmt.Errorf("gate: status %d", st)
			}
		}},
		{"introspection", func() (bool, error) {
			r, err := e.trySend(ctReq{method: "POST", path: "/introspect", user: "root", pass: pass, ctype: ctForm, body: form("token", oldValue)})
			if err != nil || r.status != 200 {
				return false, fmt.Errorf("introspect: status %d, %v", r.status, err)
			}
			return r.json(t)["active"] != true, nil
		}},
		{"GET /user-token", func() (bool, error) {
			r, err := e.trySend(ctReq{method: "GET", path: "/user-token?token=" + url.QueryEscape(oldValue), user: "root", pass: pass})
			if err != nil || r.status != 200 {
				return false, fmt.Errorf("GET /user-token: status %d, %v", r.status, err)
			}
			m := r.json(t)
			return m["active"] != true || m["revoked"] != false, nil
		}},
	}

	// During the grace period every check accepts the old value (a check
	// that began too late to tell is not counted).
	for _, c := range checks {
		began := time.Now()
		refused, err := c.refused()
		if began.After(until.Add(-200 * time.Millisecond)) {
			t.Logf("%s: checked too close to the end of the grace period to count", c.name)
			continue
		}
		if err != nil || refused {
			t.Errorf("%s during the grace period: refused %v, err %v; want the old value accepted", c.name, refused, err)
		}
	}
	if m := e.do("GET", "/user-token?token="+url.QueryEscape(oldValue), "root", pass, "").json(t); m["valid_until"] != until.Format(time.RFC3339) {
		t.Errorf("GET /user-token: valid_until %v, want %s", m["valid_until"], until.Format(time.RFC3339))
	}

	// After it, each refuses within a second: a check that began a second
	// after valid_until and still accepted is a failure.
	for _, c := range checks {
		for {
			began := time.Now()
			refused, err := c.refused()
			if refused {
				t.Logf("%s refuses the old value %s after valid_until", c.name, began.Sub(until).Round(time.Millisecond))
				break
			}
			if err != nil {
				t.Fatalf("%s after valid_until: %v, want a refusal", c.name, err)
			}
			if began.After(until.Add(time.Second)) {
				t.Fatalf("%s still accepts the old value %s after valid_until (contract: within a second)", c.name, began.Sub(until).Round(time.Millisecond))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	if got := e.do("GET", "/revocations", "", "", "").header.Get("ETag"); got != version {
		t.Errorf("revocation list version after valid_until: got %s, want %s (no new entry at that moment)", got, version)
	}
	if _, err := v.Verify(ctx, newValue); err != nil {
		t.Errorf("Verify of the new value: %v", err)
	}
	if st, err := gate(newValue); st != 200 {
		t.Errorf("gate with the new value: %d, %v; want 200", st, err)
	}
	m := e.do("GET", "/tokens/"+oldID, "root", pass, "").json(t)
	if m["revoked"] != true || m["revoked_at"] != until.Format(time.RFC3339) {
		t.Errorf("GET /tokens/{old} after valid_until: revoked %v revoked_at %v, want true %s", m["revoked"], m["revoked_at"], until.Format(time.RFC3339))
	}
}

// TestRegenerateGraceSurvivesKill: the grace period is durable before the
// 201: killed right after it and restarted, the issuer still knows the old
// value's valid_until, and a fresh verifier learns it from the snapshot.
func TestRegenerateGraceSurvivesKill(t *testing.T) {
	e := newEnv(t, "")
	const pass = "admin-password-1"
	if _, errOut, code := e.cli(pass+"\n", "user", "add", "root", "--org", "acme", "--role", "admin", "--email", "root@example.com", "--password-stdin"); code != 0 {
		t.Fatalf("user add: %s", errOut)
	}
	e.start()
	r := e.do("POST", "/tokens", "root", pass, `{"name":"ci","type":"administrative","scopes":["reports:read"]}`)
	mustStatus(t, r, 201)
	oldValue, oldID := r.json(t)["token"].(string), r.json(t)["token_id"].(string)
	r = e.do("POST", "/tokens/"+oldID+"/regenerate", "root", pass, `{"grace":"1h"}`)
	mustStatus(t, r, 201)
	until := r.json(t)["previous_valid_until"]
	e.kill()
	e.start()
	m := e.do("GET", "/tokens/"+oldID, "root", pass, "").json(t)
	if m["valid_until"] != until || m["revoked"] != false || m["active"] != true || m["replaced_by"] == "" {
		t.Errorf("old token after kill -9 and restart: got %v, want active until %v and replaced", m, until)
	}
	r = e.do("GET", "/revocations/"+oldID, "", "", "")
	mustStatus(t, r, 200)
	if r.json(t)["valid_until"] != until {
		t.Errorf("GET /revocations/{old} after restart: %s, want valid_until %v", r.body, until)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	v, err := verifier.New(ctx, verifier.Config{IssuerURL: e.url})
	if err != nil {
		t.Fatalf("verifier.New: %v", err)
	}
	defer v.Close()
	if _, err := v.Verify(ctx, oldValue); err != nil {
		t.Errorf("Verify of the old value during its grace period, after a restart: %v", err)
	}
	// Revoked explicitly during the grace period: at once.
	mustStatus(t, e.do("DELETE", "/tokens/"+oldID, "root", pass, ""), 204)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := v.Verify(ctx, oldValue); errors.Is(err, verifier.ErrRevoked) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the verifier still accepts the old value 10s after it was revoked during its grace period")
		}
	}
}
