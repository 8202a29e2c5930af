// Package proxytest runs real reverse proxies — nginx and Caddy, as
// installed from Debian's packages — on loopback ports, for the end-to-end
// tests of `signet gate` and for scripts/gateload. Each proxy gets its own
// temporary directory (config, pid file, logs, temp files) and stops with
// Stop.
package proxytest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// InCI reports whether the CI environment variable asks for every
// component to be present (CI=true): a missing proxy is then a failure,
// not a skip.
func InCI() bool {
	ci := os.Getenv("CI")
	return ci != "" && ci != "false" && ci != "0"
}

// find looks name up in PATH, then in the directories Debian installs to
// (sbin is not on every user's PATH).
func find(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not installed (scripts/test.sh installs it from Debian's packages: apt-get install nginx-light caddy)", name)
}

// FindNginx returns the path of the nginx binary.
func FindNginx() (string, error) { return find("nginx") }

// FindCaddy returns the path of the caddy binary.
func FindCaddy() (string, error) { return find("caddy") }

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Proxy is a running proxy process.
type Proxy struct {
	// Dir holds its config, logs and temp files.
	Dir string

	cmd    *exec.Cmd
	exited chan struct{}
	out    *syncBuffer
	logs   []string // files to include in Log
	stop   os.Signal
}

// NginxOptions describe an nginx to start.
type NginxOptions struct {
	// Binary is the nginx executable (default: FindNginx).
	Binary string
	// Dir is the directory for its files (created when missing).
	Dir string
	// HTTP is the inside of the http {} block: upstreams and servers.
	HTTP string
	// Workers is worker_processes (default 1).
	Workers int
	// ReadyURL is fetched until it answers (any status) before
	// StartNginx returns.
	ReadyURL string
}

// StartNginx writes nginx.conf around o.HTTP, checks it with nginx -t and
// starts nginx in the foreground. Logs stay in o.Dir (see Log).
func StartNginx(ctx context.Context, o NginxOptions) (*Proxy, error) {
	bin := o.Binary
	if bin == "" {
		var err error
		if bin, err = FindNginx(); err != nil {
			return nil, err
		}
	}
	if o.Workers <= 0 {
		o.Workers = 1
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	// As root, workers would switch to an unprivileged user that cannot
	// reach a private temporary directory: keep them as the current user.
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;\n"
	}
	conf := fmt.Sprintf(`# written by internal/proxytest
%sdaemon off;
worker_processes %d;
pid %s;
error_log %s warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %s;
    proxy_temp_path %s;
    fastcgi_temp_path %s;
    uwsgi_temp_path %s;
    scgi_temp_path %s;

%s
}
`, user, o.Workers, filepath.Join(dir, "nginx.pid"), filepath.Join(dir, "error.log"),
		filepath.Join(dir, "tmp-body"), filepath.Join(dir, "tmp-proxy"), filepath.Join(dir, "tmp-fastcgi"),
		filepath.Join(dir, "tmp-uwsgi"), filepath.Join(dir, "tmp-scgi"), o.HTTP)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	args := []string{"-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", confPath}
	if out, err := exec.CommandContext(ctx, bin, append([]string{"-t", "-q"}, args...)...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("nginx -t: %w: %s\n--- nginx.conf:\n%s", err, out, conf)
	}
	p := &Proxy{Dir: dir, logs: []string{filepath.Join(dir, "error.log")}, stop: syscall.SIGQUIT}
	if err := p.start(exec.Command(bin, args...), o.ReadyURL, ctx); err != nil {
		return nil, fmt.Errorf("nginx: %w", err)
	}
	return p, nil
}

// CaddyOptions describe a Caddy to start.
type CaddyOptions struct {
	// Binary is the caddy executable (default: FindCaddy).
	Binary string
	// Dir is the directory for its files (created when missing).
	Dir string
	// Sites are the Caddyfile's site blocks; the global options (no admin
	// endpoint, no automatic HTTPS, storage in Dir) are added.
	Sites string
	// ReadyURL is fetched until it answers (any status) before StartCaddy
	// returns.
	ReadyURL string
}

// StartCaddy writes a Caddyfile around o.Sites and runs caddy in the
// foreground with its home, data and config directories inside o.Dir.
func StartCaddy(ctx context.Context, o CaddyOptions) (*Proxy, error) {
	bin := o.Binary
	if bin == "" {
		var err error
		if bin, err = FindCaddy(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	caddyfile := fmt.Sprintf(`# written by internal/proxytest
{
	admin off
	auto_https off
	storage file_system %s
}

%s
`, filepath.Join(dir, "data"), o.Sites)
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(caddyfile), 0o644); err != nil {
		return nil, err
	}
	env := append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+filepath.Join(dir, "data"), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	validate := exec.CommandContext(ctx, bin, "validate", "--config", path, "--adapter", "caddyfile")
	validate.Env = env
	if out, err := validate.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("caddy validate: %w: %s\n--- Caddyfile:\n%s", err, out, caddyfile)
	}
	cmd := exec.Command(bin, "run", "--config", path, "--adapter", "caddyfile")
	cmd.Env = env
	p := &Proxy{Dir: dir, stop: syscall.SIGTERM}
	if err := p.start(cmd, o.ReadyURL, ctx); err != nil {
		return nil, fmt.Errorf("caddy: %w", err)
	}
	return p, nil
}

func (p *Proxy) start(cmd *exec.Cmd, readyURL string, ctx context.Context) error {
	p.out = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	cmd.Dir = p.Dir
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(p.exited) }()
	client := &http.Client{Timeout: time.Second}
	for range 200 {
		select {
		case <-p.exited:
			return fmt.Errorf("exited at start-up:\n%s", p.Log())
		case <-ctx.Done():
			p.Stop()
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
		if resp, err := client.Get(readyURL); err == nil {
			resp.Body.Close()
			return nil
		}
	}
	p.Stop()
	return fmt.Errorf("%s did not answer within 5s:\n%s", readyURL, p.Log())
}

// Pid is the proxy's (master) process id.
func (p *Proxy) Pid() int { return p.cmd.Process.Pid }

// Log returns what the proxy printed and wrote to its error log.
func (p *Proxy) Log() string {
	var b strings.Builder
	b.WriteString(p.out.String())
	for _, f := range p.logs {
		if data, err := os.ReadFile(f); err == nil {
			b.Write(data)
		}
	}
	return b.String()
}

// Stop asks the proxy to finish (nginx: SIGQUIT, a graceful stop; Caddy:
// SIGTERM), kills it after 5s, and waits for it to exit.
func (p *Proxy) Stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(p.stop)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.cmd = nil
}

// syncBuffer is a bytes.Buffer safe for a process's stdout and stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(b)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
