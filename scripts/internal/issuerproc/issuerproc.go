// Package issuerproc runs a real `signet serve` for the load scripts: a
// temporary directory with its own config, SQLite store and keys, users
// added with `signet user add`, and the issuer on a free 127.0.0.1 port.
// Everything stays on loopback.
package issuerproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"time"
)

// User is an account the issuer starts with.
type User struct {
	Name, Org, Role, Password string
}

// Options describe the issuer to start.
type Options struct {
	// Binary is the path to the signet binary.
	Binary string
	// ExtraYAML is appended to the generated config (e.g. a security:
	// section). Keys it repeats override nothing: YAML keeps the first.
	ExtraYAML string
	// BcryptCost is security.bcrypt_cost (0 means 4, fast set-up).
	BcryptCost int
	Users      []User
	// Keep leaves the temporary directory (config, database, log) behind.
	Keep bool
}

// Issuer is a running `signet serve`.
type Issuer struct {
	URL string
	Dir string

	cmd    *exec.Cmd
	exited chan struct{}
	log    *os.File
	keep   bool
}

// Start writes the config, adds the users and starts the issuer, returning
// once /readyz answers 200.
func Start(ctx context.Context, o Options) (*Issuer, error) {
	bin, err := filepath.Abs(o.Binary)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("signet binary: %w (build it: go build -o bin/signet ./cmd/signet)", err)
	}
	dir, err := os.MkdirTemp("", "signet-load-")
	if err != nil {
		return nil, err
	}
	i := &Issuer{Dir: dir, keep: o.Keep, exited: make(chan struct{})}
	fail := func(err error) (*Issuer, error) {
		i.Stop()
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return fail(err)
	}
	i.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
	cost := o.BcryptCost
	if cost == 0 {
		cost = 4
	}
	cfg := fmt.Sprintf(`server:
  listen: "127.0.0.1:%d"
  public_url: %q
store:
  driver: sqlite
  dsn: %q
keys:
  dir: %q
log:
  level: warn
%s
`, port, i.URL, filepath.Join(dir, "signet.db"), filepath.Join(dir, "keys"), o.ExtraYAML)
	if !strings.Contains(o.ExtraYAML, "security:") {
		cfg += fmt.Sprintf("security:\n  bcrypt_cost: %d\n", cost)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return fail(err)
	}
	for _, u := range o.Users {
		add := exec.CommandContext(ctx, bin, "user", "add", u.Name, "--org", u.Org, "--role", u.Role,
			"--email", u.Name+"@example.com", "--password-stdin", "--config", cfgPath)
		add.Stdin = strings.NewReader(u.Password + "\n")
		if out, err := add.CombinedOutput(); err != nil {
			return fail(fmt.Errorf("signet user add %s: %w: %s", u.Name, err, out))
		}
	}
	if i.log, err = os.Create(filepath.Join(dir, "issuer.log")); err != nil {
		return fail(err)
	}
	i.cmd = exec.Command(bin, "serve", "--config", cfgPath)
	i.cmd.Stdout, i.cmd.Stderr = i.log, i.log
	if err := i.cmd.Start(); err != nil {
		i.cmd = nil
		return fail(fmt.Errorf("start issuer: %w", err))
	}
	go func() { _ = i.cmd.Wait(); close(i.exited) }()
	if err := i.waitReady(ctx); err != nil {
		return fail(err)
	}
	return i, nil
}

// Pid is the issuer's process id.
func (i *Issuer) Pid() int { return i.cmd.Process.Pid }

// Stop interrupts the issuer (SIGKILL after 10s) and removes its directory
// unless Keep was set.
func (i *Issuer) Stop() {
	if i.cmd != nil {
		_ = i.cmd.Process.Signal(os.Interrupt)
		select {
		case <-i.exited:
		case <-time.After(10 * time.Second):
			_ = i.cmd.Process.Kill()
			<-i.exited
		}
		i.cmd = nil
	}
	if i.log != nil {
		i.log.Close()
	}
	if !i.keep {
		os.RemoveAll(i.Dir)
	}
}

func (i *Issuer) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: 2 * time.Second}
	for range 300 {
		select {
		case <-i.exited:
			return errors.New("issuer exited before it was ready (see its log with -keep)")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		resp, err := client.Get(i.URL + "/readyz")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
	}
	return errors.New("issuer not ready after 15s")
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Build compiles cmd/signet into dir and returns the binary's path; the
// scripts' smoke tests use it.
func Build(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "signet")
	out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/signet-auth/signet/cmd/signet").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/signet: %w: %s", err, out)
	}
	return bin, nil
}

// Main runs a load script's body under a context ended by Ctrl-C or after
// timeout, and exits 1 with "name: error" when it fails.
func Main(name string, timeout time.Duration, run func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	err := run(ctx)
	cancel()
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(1)
	}
}
