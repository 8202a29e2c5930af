// Command signet is the issuer server and its command line: serve, user and
// key care straight in the store, a client for a running issuer, and offline
// verification. This package is wiring only: configuration → store → keys →
// issuer; the rules live in the packages it wires.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/signet-auth/signet/issuer"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal starts the graceful shutdown, a second one
	// ends the process at once.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitError carries a process exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// errorText is err as the one line after "signet: ". An issuer error
// renders as "signet <code>: <message>" for the logs; on the command line
// its message alone is the sentence for a person, so the line carries one
// "signet" prefix, not two.
func errorText(err error) string {
	msg := err.Error()
	var ie *issuer.Error
	if errors.As(err, &ie) {
		msg = strings.Replace(msg, ie.Error(), ie.Message, 1)
	}
	return msg
}

// run executes the command line and returns the process exit code: 0 on
// success, 1 when the command failed (or a verified token is invalid), 2 on
// a usage error.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCommand(stdin, stdout, stderr)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "signet:", errorText(ee.err))
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "signet:", errorText(err))
	if isUsageError(err) {
		return 2
	}
	return 1
}
