package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-auth/signet/config"
)

// mainConfig is a configuration for an in-process Main on a loopback port
// with its store and keys under a temporary directory.
func mainConfig(tb testing.TB) config.Config {
	tb.Helper()
	dir := tb.TempDir()
	cfg := config.Default()
	cfg.Server.Listen = "127.0.0.1:0"
	cfg.Store.DSN = filepath.Join(dir, "signet.db")
	cfg.Keys.Dir = filepath.Join(dir, "keys")
	cfg.Security.BcryptCost = 4
	return cfg
}

func newMain(cfg config.Config) *Main {
	return &Main{Config: cfg, Logger: slog.New(slog.DiscardHandler)}
}

// wantClosed fails unless nothing accepts connections at addr.
func wantClosed(tb testing.TB, addr string) {
	tb.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		tb.Fatalf("dial %s after Close: got a connection, want refused", addr)
	}
}

func TestMainRunServeClose(t *testing.T) {
	m := newMain(mainConfig(t))
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v", err)
	}
	addr := m.listener.Addr().String()
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: got %d %s, want 200", resp.StatusCode, body)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wantClosed(t, addr)
	if err := m.Store.Ping(context.Background()); err == nil {
		t.Error("store still answers after Close; want it closed")
	}
}

// TestMainCloseRightAfterRun: a signal that arrives as serving starts must
// still stop the listener, even before the server has begun to accept.
func TestMainCloseRightAfterRun(t *testing.T) {
	for i := range 5 {
		m := newMain(mainConfig(t))
		if err := m.Run(context.Background()); err != nil {
			t.Fatalf("run %d: Run: %v", i, err)
		}
		addr := m.listener.Addr().String()
		if err := m.Close(); err != nil {
			t.Fatalf("run %d: Close: %v", i, err)
		}
		wantClosed(t, addr)
	}
}

// TestMainRunErrors: a configuration that cannot work is an error from
// Run naming the cause, and Close afterwards releases what was opened.
func TestMainRunErrors(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tc := range []struct {
		name string
		mod  func(*config.Config)
		want string
	}{
		{"unknown store driver", func(c *config.Config) { c.Store.Driver = "mysql" }, "unknown store driver"},
		{"store file that cannot be created", func(c *config.Config) {
			c.Store.DSN = "/proc/signet-cannot-create/signet.db"
		}, "signet.db"},
		{"unknown key algorithm", func(c *config.Config) { c.Keys.Algorithm = "HS256" }, "HS256"},
		{"public URL without a scheme", func(c *config.Config) { c.Server.PublicURL = "auth.example.com" }, "public URL"},
		{"listen address taken", func(c *config.Config) { c.Server.Listen = taken.Addr().String() }, "listen on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mainConfig(t)
			tc.mod(&cfg)
			m := newMain(cfg)
			err := m.Run(context.Background())
			if err == nil {
				m.Close()
				t.Fatalf("Run: got nil error, want one containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run: got %q, want it to contain %q", err, tc.want)
			}
			if cerr := m.Close(); cerr != nil {
				t.Errorf("Close after a failed Run: %v", cerr)
			}
		})
	}
}
