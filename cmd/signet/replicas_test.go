package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/signet-auth/signet/verifier"
)

// freshPostgresDSN creates a database for this test alone and drops it at
// the end. It skips the test when SIGNET_TEST_POSTGRES_DSN is unset.
func freshPostgresDSN(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv("SIGNET_TEST_POSTGRES_DSN")
	if base == "" {
		tb.Skip("SIGNET_TEST_POSTGRES_DSN is not set; skipping the PostgreSQL replica test")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		tb.Fatalf("connect to %s: %v", redactDSN(base), err)
	}
	defer conn.Close(ctx)
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "signet_e2e_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create database: %v", err)
	}
	tb.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	return u.Redacted()
}

// newReplica makes an env for one replica of a shared deployment: its own
// listen port, the shared public URL, database and keys directory.
func newReplica(tb testing.TB, publicURL, dsn, keysDir string) *env {
	tb.Helper()
	dir := tb.TempDir()
	port := freePort(tb)
	cfg := fmt.Sprintf(`server:
  listen: "127.0.0.1:%d"
  public_url: %q
store:
  driver: postgres
  dsn: %q
keys:
  dir: %q
security:
  bcrypt_cost: 4
`, port, publicURL, dsn, keysDir)
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	e := &env{tb: tb, dir: dir, config: path, url: fmt.Sprintf("http://127.0.0.1:%d", port)}
	tb.Cleanup(func() { e.kill() })
	return e
}

// loadBalancer spreads requests over the replicas, round robin, and streams
// (Server-Sent Events) through unbuffered, as a real one would.
func loadBalancer(tb testing.TB, ln net.Listener, replicas ...*env) {
	tb.Helper()
	var next atomic.Uint64
	proxies := make([]*httputil.ReverseProxy, len(replicas))
	for i, r := range replicas {
		u, _ := url.Parse(r.url)
		proxies[i] = httputil.NewSingleHostReverseProxy(u)
		proxies[i].FlushInterval = -1
		proxies[i].ErrorLog = nil
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Skip replicas that are down, as a health-checking balancer does.
		for range replicas {
			i := int(next.Add(1)) % len(replicas)
			c, err := net.DialTimeout("tcp", strings.TrimPrefix(replicas[i].url, "http://"), time.Second)
			if err != nil {
				continue
			}
			c.Close()
			proxies[i].ServeHTTP(w, r)
			return
		}
		http.Error(w, "no replica", http.StatusBadGateway)
	})}
	go srv.Serve(ln)
	tb.Cleanup(func() { srv.Close() })
}

// sseCollector reads a Server-Sent Events stream and records when each
// data line containing a token id arrived.
type sseCollector struct {
	seen chan string
}

func followEvents(tb testing.TB, ctx context.Context, streamURL string) *sseCollector {
	tb.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", streamURL, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("open %s: %v", streamURL, err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		tb.Fatalf("%s: status %d, content type %q", streamURL, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	c := &sseCollector{seen: make(chan string, 100)}
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if line := sc.Text(); strings.HasPrefix(line, "data:") {
				select {
				case c.seen <- line:
				default:
				}
			}
		}
	}()
	return c
}

func (c *sseCollector) waitFor(tb testing.TB, id string, timeout time.Duration) time.Time {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line := <-c.seen:
			if strings.Contains(line, id) {
				return time.Now()
			}
		case <-deadline:
			tb.Fatalf("no event for %s within %s", id, timeout)
		}
	}
}

// TestReplicasSharePostgres runs two issuer replicas on one PostgreSQL
// database and one keys directory behind a round-robin balancer.
func TestReplicasSharePostgres(t *testing.T) {
	dsn := freshPostgresDSN(t)
	lbLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	publicURL := "http://" + lbLn.Addr().String()
	keysDir := filepath.Join(t.TempDir(), "keys")
	a := newReplica(t, publicURL, dsn, keysDir)
	b := newReplica(t, publicURL, dsn, keysDir)
	if _, errOut, code := a.cli("admin-password-1\n", "user", "add", "root", "--org", "acme", "--role", "admin", "--email", "root@example.com", "--password-stdin"); code != 0 {
		t.Fatalf("user add: %s", errOut)
	}
	// Both start at once: migrations and key creation must not race.
	done := make(chan struct{})
	go func() { defer close(done); a.start() }()
	b.start()
	<-done
	loadBalancer(t, lbLn, a, b)

	// A token issued by A verifies with B's key set.
	r := a.do("POST", "/user-token", "root", "admin-password-1", "")
	mustStatus(t, r, 200)
	token := r.json(t)["user-token"].(string)
	id := r.json(t)["token_id"].(string)
	verifyWithJWKS(t, b, token)

	// And with a verifier that only knows the balanced URL.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := verifier.New(ctx, verifier.Config{IssuerURL: publicURL})
	if err != nil {
		t.Fatalf("verifier.New: %v", err)
	}
	defer v.Close()
	if _, err := v.Verify(ctx, token); err != nil {
		t.Fatalf("Verify before revocation: %v", err)
	}

	// A revocation through A reaches B's event stream and delta list.
	snap := b.do("GET", "/revocations", "", "", "")
	mustStatus(t, snap, 200)
	version := strings.Trim(snap.header.Get("ETag"), `"W/`)
	events := followEvents(t, ctx, b.url+"/revocations/events")
	start := time.Now()
	mustStatus(t, a.do("DELETE", "/tokens/"+id, "root", "admin-password-1", ""), 204)
	seenAt := events.waitFor(t, id, 10*time.Second)
	t.Logf("propagation A→B (DELETE acknowledged → SSE event on the other replica): %s", seenAt.Sub(start))
	delta := b.do("GET", "/revocations?since="+version, "", "", "")
	mustStatus(t, delta, 200)
	if !strings.Contains(string(delta.body), id) {
		t.Fatalf("B's delta since %s lacks %s: %s", version, id, delta.body)
	}
	mustStatus(t, b.do("GET", "/revocations/"+id, "", "", ""), 200)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := v.Verify(ctx, token)
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the verifier still accepts the token 10s after its revocation")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Both replicas publish the same list version.
	ea := a.do("GET", "/revocations", "", "", "").header.Get("ETag")
	eb := b.do("GET", "/revocations", "", "", "").header.Get("ETag")
	if ea != eb {
		t.Fatalf("replicas publish different revocation list versions: %s vs %s", ea, eb)
	}

	// One replica dies; the other goes on, through the balancer too.
	a.kill()
	r = b.do("POST", "/user-token", "root", "admin-password-1", "")
	mustStatus(t, r, 200)
	verifyWithJWKS(t, b, r.json(t)["user-token"].(string))
	lb := &env{tb: t, url: publicURL}
	for i := 0; i < 4; i++ {
		mustStatus(t, lb.do("GET", "/.well-known/jwks.json", "", "", ""), 200)
	}
}
