package verifier_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/signet-auth/signet/verifier"
	"github.com/signet-auth/signet/verifier/verifiertest"
)

// clock is an injectable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now().Truncate(time.Second)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newVerifier starts a verifier on iss; mutate adjusts the config.
func newVerifier(tb testing.TB, iss *verifiertest.Issuer, mutate func(*verifier.Config)) *verifier.Verifier {
	tb.Helper()
	cfg := verifier.Config{
		IssuerURL:    iss.URL(),
		Logger:       quietLogger(),
		PollInterval: 20 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := verifier.New(ctx, cfg)
	if err != nil {
		tb.Fatalf("verifier.New: %v", err)
	}
	tb.Cleanup(v.Close)
	return v
}

// eventually polls cond every few milliseconds, at most 500 times (a few
// seconds), and fails with msg if it never holds.
func eventually(tb testing.TB, msg string, cond func() bool) {
	tb.Helper()
	for range 500 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	tb.Fatalf("condition never held: %s", msg)
}
