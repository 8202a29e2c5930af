package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/signet-auth/signet/internal/proxytest"
	"github.com/signet-auth/signet/scripts/internal/issuerproc"
)

// TestSmoke runs the script end to end with a few hundred requests per
// flow, so that it keeps working; it asserts nothing about timings.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real issuer, gate and nginx")
	}
	if _, err := proxytest.FindNginx(); err != nil {
		if proxytest.InCI() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := issuerproc.Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	o := options{signet: bin, requests: 300, concurrency: 4, rounds: 3, workers: 1, timeout: time.Minute}
	res, err := run(ctx, o, &out)
	if err != nil {
		t.Fatalf("gateload: %v\n%s", err, out.String())
	}
	for _, name := range []string{"gate", "noop", "noop-int", "noauth"} {
		f := res.flows[name]
		if f == nil {
			t.Errorf("flow %s was not measured", name)
			continue
		}
		if f.done != 300 || len(f.latencies) != 300 || f.throughput() <= 0 {
			t.Errorf("flow %s: got %d requests, %d latencies, %.0f req/s; want 300 timed requests", name, f.done, len(f.latencies), f.throughput())
		}
	}
	for _, line := range []string{"gate/noop ", "gate/noauth ", "one request at a time (30 each)", "p99"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("report lacks %q:\n%s", line, out.String())
		}
	}
}
