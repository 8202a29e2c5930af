package main

import (
	"context"
	"testing"
	"time"

	"github.com/signet-auth/signet/scripts/internal/issuerproc"
)

// TestSmoke runs the script end to end with a few tokens and verifiers, so
// that it keeps working; it asserts nothing about timings.
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
	for _, sse := range []bool{true, false} {
		o := options{signet: bin, tokens: 3, verifiers: 3, timeout: time.Minute, perToken: 10 * time.Second, sse: sse}
		if err := run(ctx, o); err != nil {
			t.Fatalf("propagation (sse=%v): %v", sse, err)
		}
	}
}
