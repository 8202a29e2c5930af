package main

import (
	"context"
	"testing"
	"time"

	"github.com/signet-auth/signet/scripts/internal/issuerproc"
)

// TestSmoke runs the script end to end with a small flood, so that it
// keeps working; it asserts nothing about timings.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real issuer")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin, err := issuerproc.Build(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	o := options{signet: bin, clients: 4, probes: 30, cost: 4, timeout: time.Minute}
	if err := run(ctx, o); err != nil {
		t.Fatalf("loginflood: %v", err)
	}
}
