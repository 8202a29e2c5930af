package gate_test

import (
	"context"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/signet-auth/signet/gate"
	"github.com/signet-auth/signet/verifier"
	"github.com/signet-auth/signet/verifier/verifiertest"
)

// cpuTime is the CPU time the process has used (user and system, every
// thread: GC included).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds cpu-ns/op: on a machine shared with other work, wall
// time per op also counts the time spent waiting for a core; CPU time
// does not.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}

// benchGate returns the handler of a connected gate and a token with
// realistic claims.
func benchGate(b *testing.B) (fasthttp.RequestHandler, string) {
	b.Helper()
	iss := verifiertest.NewIssuer(b)
	g, err := gate.New(gate.Config{
		Verifier: verifier.Config{IssuerURL: iss.URL()},
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(g.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.Connect(ctx); err != nil {
		b.Fatal(err)
	}
	tok := iss.SignToken(b, verifiertest.Claims{
		"scope": "reports:read reports:write bucket:in.c-main:read",
		"aud":   []string{"https://api.example.com"},
	})
	return g.Handler(), tok
}

// BenchmarkAuthWarm is the gate's cost per forward-auth check of a token
// it has seen before (the common case behind a proxy): header parsing,
// the verifier's cached check, two required scopes and the X-Signet-*
// answer headers. The HTTP framing of the connection is not included.
func BenchmarkAuthWarm(b *testing.B) {
	h, tok := benchGate(b)
	var rc fasthttp.RequestCtx
	rc.Request.SetRequestURI("/auth?scope=reports:read&scope=bucket:in.c-main:read")
	rc.Request.Header.Set("Authorization", "Bearer "+tok)
	h(&rc) // warm the verifier's cache
	if rc.Response.StatusCode() != 200 {
		b.Fatalf("warm-up: got %d, want 200: %s", rc.Response.StatusCode(), rc.Response.Body())
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime(b)
	for i := 0; i < b.N; i++ {
		rc.Response.Reset()
		h(&rc)
		if rc.Response.StatusCode() != 200 {
			b.Fatalf("got %d, want 200", rc.Response.StatusCode())
		}
	}
	reportCPU(b, cpu)
}

// BenchmarkAuthWarmParallel is BenchmarkAuthWarm on every core at once,
// each goroutine with its own request.
func BenchmarkAuthWarmParallel(b *testing.B) {
	h, tok := benchGate(b)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var rc fasthttp.RequestCtx
		rc.Request.SetRequestURI("/auth?scope=reports:read&scope=bucket:in.c-main:read")
		rc.Request.Header.Set("Authorization", "Bearer "+tok)
		for pb.Next() {
			rc.Response.Reset()
			h(&rc)
			if rc.Response.StatusCode() != 200 {
				b.Errorf("got %d, want 200", rc.Response.StatusCode())
				return
			}
		}
	})
}

// BenchmarkAuthRefused is the cost of refusing garbage: no signature work.
func BenchmarkAuthRefused(b *testing.B) {
	h, _ := benchGate(b)
	var rc fasthttp.RequestCtx
	rc.Request.SetRequestURI("/auth")
	rc.Request.Header.Set("Authorization", "Bearer not-a-token")
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime(b)
	for i := 0; i < b.N; i++ {
		rc.Response.Reset()
		h(&rc)
		if rc.Response.StatusCode() != 401 {
			b.Fatalf("got %d, want 401", rc.Response.StatusCode())
		}
	}
	reportCPU(b, cpu)
}

// BenchmarkVerifierAlone is the yardstick for BenchmarkAuthWarm, measured
// in the same run: the verifier's own cached check of the same kind of
// token, without HTTP headers, scopes or the token copy.
func BenchmarkVerifierAlone(b *testing.B) {
	iss := verifiertest.NewIssuer(b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := verifier.New(ctx, verifier.Config{IssuerURL: iss.URL(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	tok := iss.SignToken(b, verifiertest.Claims{
		"scope": "reports:read reports:write bucket:in.c-main:read",
		"aud":   []string{"https://api.example.com"},
	})
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime(b)
	for i := 0; i < b.N; i++ {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu)
}
