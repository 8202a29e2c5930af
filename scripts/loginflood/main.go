// Command loginflood checks that a flood of password logins cannot starve
// the issuer's cheap endpoints. Password checks (bcrypt) run on a bounded
// worker pool; JWKS, the revocation list and health checks never wait for
// it. The script measures those endpoints' latency twice in one run — first
// with the issuer idle (the baseline), then while many clients log in at
// once — and reports the flood figures as ratios of the baseline.
//
//	go build -o bin/signet ./cmd/signet
//	go run ./scripts/loginflood -signet ./bin/signet
//
// Everything runs on 127.0.0.1 within -timeout; the issuer is stopped at
// the end.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/signet-auth/signet/scripts/internal/issuerproc"
)

const (
	user     = "flood"
	password = "flood-password-1"
)

// cheap are the endpoints verifiers and load balancers call.
var cheap = []string{"/.well-known/jwks.json", "/revocations", "/healthz"}

type options struct {
	signet  string
	clients int
	probes  int
	cost    int
	workers int
	timeout time.Duration
	keep    bool
}

func main() {
	var o options
	flag.StringVar(&o.signet, "signet", "./bin/signet", "path to the signet binary")
	flag.IntVar(&o.clients, "clients", 64, "concurrent clients logging in during the flood")
	flag.IntVar(&o.probes, "probes", 600, "requests to the cheap endpoints in each phase")
	flag.IntVar(&o.cost, "cost", 10, "bcrypt cost of the user's password (10 is the default config)")
	flag.IntVar(&o.workers, "hash-workers", 0, "security.hash_workers of the issuer (0: its default)")
	flag.DurationVar(&o.timeout, "timeout", 3*time.Minute, "bound on the whole run")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (config, database, issuer log)")
	flag.Parse()
	if o.clients < 1 || o.probes < 10 {
		fmt.Fprintln(os.Stderr, "loginflood: -clients must be positive and -probes at least 10")
		os.Exit(2)
	}
	issuerproc.Main("loginflood", o.timeout, func(ctx context.Context) error { return run(ctx, o) })
}

func run(ctx context.Context, o options) error {
	iss, err := issuerproc.Start(ctx, issuerproc.Options{
		Binary:    o.signet,
		ExtraYAML: fmt.Sprintf("security:\n  bcrypt_cost: %d\n  hash_workers: %d\n", o.cost, o.workers),
		Users:     []issuerproc.User{{Name: user, Org: "load", Role: "admin", Password: password}},
		Keep:      o.keep,
	})
	if err != nil {
		return err
	}
	defer iss.Stop()
	fmt.Printf("issuer %s ready (pid %d), bcrypt cost %d\n", iss.URL, iss.Pid(), o.cost)

	probe := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 30 * time.Second}
	// Warm up connections and caches so the baseline is not the first call.
	if _, err := probeAll(ctx, probe, iss.URL, 30); err != nil {
		return err
	}
	base, err := probeAll(ctx, probe, iss.URL, o.probes)
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}

	// Control: the same clients flooding an endpoint that needs no
	// password. What this costs the cheap endpoints is the price of any
	// flood on this machine; the login flood should cost no more.
	plain, plainN, err := underFlood(ctx, o, probe, iss.URL, "/healthz", false)
	if err != nil {
		return fmt.Errorf("during the plain flood: %w", err)
	}
	login, loginN, err := underFlood(ctx, o, probe, iss.URL, "/tokens", true)
	if err != nil {
		return fmt.Errorf("during the login flood: %w", err)
	}

	fmt.Printf("plain flood: %d clients on /healthz, %s\n", o.clients, plainN)
	fmt.Printf("login flood: %d clients on /tokens with Basic auth, %s\n", o.clients, loginN)
	fmt.Printf("cheap endpoints (%s), %d requests per phase:\n", cheap, o.probes)
	fmt.Printf("  %-12s %10s %10s %10s\n", "", "p50", "p99", "max")
	for _, r := range []struct {
		name string
		d    []time.Duration
	}{{"idle", base}, {"plain flood", plain}, {"login flood", login}} {
		fmt.Printf("  %-12s %10s %10s %10s\n", r.name, q(r.d, 0.5), q(r.d, 0.99), q(r.d, 1))
	}
	fmt.Printf("login flood vs idle:        p50 %.1fx  p99 %.1fx\n", ratio(login, base, 0.5), ratio(login, base, 0.99))
	fmt.Printf("login flood vs plain flood: p50 %.1fx  p99 %.1fx\n", ratio(login, plain, 0.5), ratio(login, plain, 0.99))
	fmt.Println("every cheap request answered 200 in every phase: true")
	return nil
}

// counts tallies a flood's answers.
type counts struct {
	ok, limited, other atomic.Int64
	elapsed            time.Duration
}

func (c *counts) String() string {
	return fmt.Sprintf("%d answered 200 (%.0f/s), %d answered 429, %d other",
		c.ok.Load(), float64(c.ok.Load())/c.elapsed.Seconds(), c.limited.Load(), c.other.Load())
}

// underFlood measures the cheap endpoints while o.clients clients call path
// in tight loops (with the user's password when auth is set).
func underFlood(ctx context.Context, o options, probe *http.Client, base, path string, auth bool) ([]time.Duration, *counts, error) {
	floodCtx, stopFlood := context.WithCancel(ctx)
	n := &counts{}
	var wg sync.WaitGroup
	started := time.Now()
	for range o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
			for floodCtx.Err() == nil {
				req, _ := http.NewRequestWithContext(floodCtx, http.MethodGet, base+path, nil)
				if auth {
					req.SetBasicAuth(user, password)
				}
				resp, err := c.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusOK:
					n.ok.Add(1)
				case http.StatusTooManyRequests:
					n.limited.Add(1)
				default:
					n.other.Add(1)
				}
			}
		}()
	}
	defer func() {
		stopFlood()
		wg.Wait()
		n.elapsed = time.Since(started)
	}()
	// Let the flood build up (and fill the password pool) before measuring.
	if err := sleep(ctx, time.Second); err != nil {
		return nil, n, err
	}
	d, err := probeAll(ctx, probe, base, o.probes)
	return d, n, err
}

// probeAll calls the cheap endpoints n times in turn and returns each
// latency; any answer but 200 is an error.
func probeAll(ctx context.Context, c *http.Client, base string, n int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for i := range n {
		path := cheap[i%len(cheap)]
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		start := time.Now()
		resp, err := c.Do(req)
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		out = append(out, time.Since(start))
	}
	slices.Sort(out)
	return out, nil
}

func q(sorted []time.Duration, p float64) time.Duration {
	i := int(p*float64(len(sorted))) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i].Round(time.Microsecond)
}

func ratio(a, b []time.Duration, p float64) float64 {
	return float64(q(a, p)) / float64(max(q(b, p), time.Microsecond))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
