package issuerproc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Gate is a running `signet gate` following an issuer.
type Gate struct {
	// URL is the gate's base URL (http://127.0.0.1:PORT).
	URL string
	// Addr is its host:port.
	Addr string

	cmd    *exec.Cmd
	exited chan struct{}
	log    *os.File
}

// StartGate runs `signet gate --issuer i.URL` on a free 127.0.0.1 port,
// logging into the issuer's directory (gate.log), and returns once its
// /readyz answers 200.
func (i *Issuer) StartGate(ctx context.Context, binary string) (*Gate, error) {
	bin, err := filepath.Abs(binary)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	g := &Gate{Addr: fmt.Sprintf("127.0.0.1:%d", port), exited: make(chan struct{})}
	g.URL = "http://" + g.Addr
	if g.log, err = os.Create(filepath.Join(i.Dir, "gate.log")); err != nil {
		return nil, err
	}
	g.cmd = exec.Command(bin, "gate", "--config", filepath.Join(i.Dir, "config.yaml"), "--issuer", i.URL, "--listen", g.Addr)
	g.cmd.Stdout, g.cmd.Stderr = g.log, g.log
	if err := g.cmd.Start(); err != nil {
		g.log.Close()
		return nil, fmt.Errorf("start gate: %w", err)
	}
	go func() { _ = g.cmd.Wait(); close(g.exited) }()
	client := &http.Client{Timeout: 2 * time.Second}
	for range 300 {
		select {
		case <-g.exited:
			g.log.Close()
			return nil, errors.New("gate exited before it was ready (see gate.log with -keep)")
		case <-ctx.Done():
			g.Stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		resp, err := client.Get(g.URL + "/readyz")
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return g, nil
		}
	}
	g.Stop()
	return nil, errors.New("gate not ready after 15s")
}

// Pid is the gate's process id.
func (g *Gate) Pid() int { return g.cmd.Process.Pid }

// Stop interrupts the gate (SIGKILL after 10s).
func (g *Gate) Stop() {
	if g.cmd == nil {
		return
	}
	_ = g.cmd.Process.Signal(os.Interrupt)
	select {
	case <-g.exited:
	case <-time.After(10 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
	}
	g.cmd = nil
	g.log.Close()
}
