package fiberverifier_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/signet-auth/signet/verifier"
	"github.com/signet-auth/signet/verifier/fiberverifier"
	"github.com/signet-auth/signet/verifier/verifiertest"
)

// serve runs app on a loopback port until the test ends.
func serve(tb testing.TB, app *fiber.App) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	go func() { _ = app.Listener(ln) }()
	tb.Cleanup(func() { _ = app.ShutdownWithTimeout(5 * time.Second) })
	return "http://" + ln.Addr().String()
}

func TestFiberMiddleware(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := verifier.New(ctx, verifier.Config{IssuerURL: iss.URL(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("verifier.New: %v", err)
	}
	t.Cleanup(v.Close)

	app := fiber.New(fiber.Config{DisableStartupMessage: true})
	handler := func(c *fiber.Ctx) error {
		cl, ok := fiberverifier.Claims(c)
		if !ok {
			return c.Status(500).SendString("no claims in locals")
		}
		if cc, ok := verifier.ClaimsFromContext(c.UserContext()); !ok || cc != cl {
			return c.Status(500).SendString("no claims in user context")
		}
		return c.SendString(cl.Subject)
	}
	app.Get("/read", fiberverifier.New(v, "reports:read"), handler)
	app.Get("/bucket", fiberverifier.New(v, "bucket:in.c-main:write"), handler)
	app.Get("/any", fiberverifier.New(v), handler)
	base := serve(t, app)

	reader := iss.SignToken(t, verifiertest.Claims{"sub": "rita", "scope": "reports:read"})
	buckets := iss.SignToken(t, verifiertest.Claims{"sub": "bo", "scope": "bucket:*"})
	tests := []struct {
		name, path, auth string
		wantStatus       int
		wantBody         string // substring
		wantChal         string // WWW-Authenticate prefix
	}{
		{"no token", "/read", "", 401, `"unauthorized"`, "Bearer"},
		{"bad token", "/read", "Bearer x.y.z", 401, `"invalid_token"`, `Bearer error="invalid_token"`},
		{"scope held", "/read", "Bearer " + reader, 200, "rita", ""},
		{"scope missing", "/bucket", "Bearer " + reader, 403, `"insufficient_scope"`, `Bearer error="insufficient_scope", scope="bucket:in.c-main:write"`},
		{"wildcard scope", "/bucket", "Bearer " + buckets, 200, "bo", ""},
		{"no scope required", "/any", "Bearer " + buckets, 200, "bo", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, base+tc.path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("GET %s: %v", tc.path, err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(body), tc.wantBody) {
				t.Fatalf("got %d %s, want %d containing %s", resp.StatusCode, body, tc.wantStatus, tc.wantBody)
			}
			if ch := resp.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, tc.wantChal) {
				t.Errorf("WWW-Authenticate: got %q, want prefix %q", ch, tc.wantChal)
			}
			if resp.StatusCode != 200 {
				var e struct{ Error, Message string }
				if err := json.Unmarshal(body, &e); err != nil || e.Message == "" {
					t.Errorf("body: got %s, want {\"error\",\"message\"}", body)
				}
			}
		})
	}
}
