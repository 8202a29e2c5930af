// Command gateload measures what `signet gate` costs behind nginx. In one
// run on loopback it starts a signet issuer, a gate following it and one
// nginx with three servers that all answer the same small static file:
//
//	gate      auth_request → signet gate (/auth?scope=reports:read)
//	noop      the same flow with a no-op responder nginx answers itself:
//	          the subrequest proxied, exactly like the gate's, to an nginx
//	          server that returns 200 (the proxy's fixed cost)
//	noop-int  auth_request to an internal location (return 200), with
//	          no proxy hop: the subrequest machinery alone, for the record
//	noauth    no auth at all
//
// It drives each with the same keep-alive client (in interleaved rounds,
// so that a noisy neighbour hits every flow alike) and reports throughput,
// gate/noop (the goal is ≥ 0.6: the proxied subrequest is the proxy's
// cost, the gate's share is ours), gate/noop-int and gate/noauth for the
// record, and the latency the gate adds at p50 and p99 over the no-op
// flow, measured one request at a time (no queueing) after the throughput
// rounds.
//
//	go build -o bin/signet ./cmd/signet
//	go run ./scripts/gateload -signet ./bin/signet
//
// nginx comes from Debian (scripts/gate-e2e/setup.sh installs it).
// Everything runs on 127.0.0.1 within -timeout, with a bounded number of
// requests; the processes are stopped at the end.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/signet-auth/signet/internal/proxytest"
	"github.com/signet-auth/signet/scripts/internal/issuerproc"
)

const (
	user     = "loadtest"
	password = "gateload-password"
)

type options struct {
	signet      string
	requests    int
	concurrency int
	rounds      int
	workers     int
	timeout     time.Duration
	keep        bool
}

func main() {
	var o options
	flag.StringVar(&o.signet, "signet", "./bin/signet", "path to the signet binary")
	flag.IntVar(&o.requests, "n", 30000, "requests per flow (split over the rounds)")
	flag.IntVar(&o.concurrency, "c", 16, "concurrent keep-alive connections")
	flag.IntVar(&o.rounds, "rounds", 6, "interleaved rounds per flow")
	flag.IntVar(&o.workers, "nginx-workers", 1, "nginx worker_processes")
	flag.DurationVar(&o.timeout, "timeout", 3*time.Minute, "bound on the whole run")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configs and logs)")
	flag.Parse()
	if o.requests < 1 || o.concurrency < 1 || o.rounds < 1 || o.requests < o.rounds {
		fmt.Fprintln(os.Stderr, "gateload: -n, -c and -rounds must be positive, -n at least -rounds")
		os.Exit(2)
	}
	issuerproc.Main("gateload", o.timeout, func(ctx context.Context) error {
		_, err := run(ctx, o, os.Stdout)
		return err
	})
}

// flow is one nginx server under test.
type flow struct {
	name string
	url  string
	// measured
	done      int
	elapsed   time.Duration
	latencies []time.Duration
	rounds    []float64 // throughput of each round
}

// roundRatios returns f/g throughput of each round: the flows of one round
// ran next to each other, so a neighbour's burst of load skews a round's
// ratio less than the totals.
func roundRatios(f, g *flow) []float64 {
	r := make([]float64, len(f.rounds))
	for i := range r {
		r[i] = f.rounds[i] / g.rounds[i]
	}
	slices.Sort(r)
	return r
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

func (f *flow) throughput() float64 { return float64(f.done) / f.elapsed.Seconds() }

func (f *flow) quantile(q float64) time.Duration {
	if len(f.latencies) == 0 {
		return 0
	}
	return f.latencies[min(len(f.latencies)-1, int(q*float64(len(f.latencies))))]
}

// result is what one run measured, for the smoke test.
type result struct {
	flows map[string]*flow
	// added50 and added99 are the latency the gate adds over the no-op
	// flow, one request at a time.
	added50, added99 time.Duration
}

func run(ctx context.Context, o options, out io.Writer) (*result, error) {
	nginxBin, err := proxytest.FindNginx()
	if err != nil {
		return nil, err
	}
	iss, err := issuerproc.Start(ctx, issuerproc.Options{
		Binary: o.signet,
		Users:  []issuerproc.User{{Name: user, Org: "load", Role: "admin", Password: password}},
		Keep:   o.keep,
	})
	if err != nil {
		return nil, err
	}
	defer iss.Stop()
	if o.keep {
		fmt.Fprintln(out, "working directory:", iss.Dir)
	}
	token, err := issueToken(ctx, iss.URL)
	if err != nil {
		return nil, err
	}
	gate, err := iss.StartGate(ctx, o.signet)
	if err != nil {
		return nil, err
	}
	defer gate.Stop()
	fmt.Fprintf(out, "issuer %s (pid %d), gate %s (pid %d)\n", iss.URL, iss.Pid(), gate.URL, gate.Pid())

	var ports [5]int
	for i := range ports {
		if ports[i], err = proxytest.FreePort(); err != nil {
			return nil, err
		}
	}
	www := filepath.Join(iss.Dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("ok\n"), 0o644); err != nil {
		return nil, err
	}
	px, err := proxytest.StartNginx(ctx, proxytest.NginxOptions{
		Binary:   nginxBin,
		Dir:      filepath.Join(iss.Dir, "nginx"),
		HTTP:     nginxFlows(gate.Addr, www, ports),
		Workers:  o.workers,
		ReadyURL: fmt.Sprintf("http://127.0.0.1:%d/", ports[4]),
	})
	if err != nil {
		return nil, err
	}
	defer px.Stop()
	flows := []*flow{
		{name: "gate", url: fmt.Sprintf("http://127.0.0.1:%d/", ports[0])},
		{name: "noop", url: fmt.Sprintf("http://127.0.0.1:%d/", ports[2])},
		{name: "noop-int", url: fmt.Sprintf("http://127.0.0.1:%d/", ports[1])},
		{name: "noauth", url: fmt.Sprintf("http://127.0.0.1:%d/", ports[3])},
	}

	// The flows must do what they claim before they are timed: the gate
	// refuses a request without a token and passes the load token.
	if st, err := status(ctx, flows[0].url, ""); err != nil || st != 401 {
		return nil, fmt.Errorf("gate flow without a token: got %d (%v), want 401", st, err)
	}
	for _, f := range flows {
		if st, err := status(ctx, f.url, token); err != nil || st != 200 {
			return nil, fmt.Errorf("%s flow with the token: got %d (%v), want 200\nnginx log:\n%s", f.name, st, err, px.Log())
		}
	}
	fmt.Fprintf(out, "nginx %s (pid %d, %d worker(s)); %d requests per flow, %d connections, %d rounds\n",
		nginxBin, px.Pid(), o.workers, o.requests, o.concurrency, o.rounds)

	// Warm-up: connections, the gate's token cache, nginx's file cache.
	warm := min(o.requests/10+o.concurrency, 2000)
	for _, f := range flows {
		if _, _, err := drive(ctx, f.url, token, warm, o.concurrency); err != nil {
			return nil, fmt.Errorf("warm-up of %s: %w", f.name, err)
		}
	}
	per := o.requests / o.rounds
	for r := range o.rounds {
		for i := range flows {
			// Rotate the order so that no flow always runs first.
			f := flows[(i+r)%len(flows)]
			lat, took, err := drive(ctx, f.url, token, per, o.concurrency)
			if err != nil {
				return nil, fmt.Errorf("%s: %w\nnginx log:\n%s", f.name, err, px.Log())
			}
			f.done += len(lat)
			f.elapsed += took
			f.latencies = append(f.latencies, lat...)
			f.rounds = append(f.rounds, float64(len(lat))/took.Seconds())
		}
	}
	res := &result{flows: map[string]*flow{}}
	fmt.Fprintf(out, "\n%-9s %12s %10s %10s\n", "flow", "req/s", "p50", "p99")
	for _, f := range flows {
		slices.Sort(f.latencies)
		res.flows[f.name] = f
		fmt.Fprintf(out, "%-9s %12.0f %10s %10s\n", f.name, f.throughput(), f.quantile(0.5).Round(time.Microsecond), f.quantile(0.99).Round(time.Microsecond))
	}
	g, n, in, a := res.flows["gate"], res.flows["noop"], res.flows["noop-int"], res.flows["noauth"]
	ratio := g.throughput() / n.throughput()
	verdict := "meets"
	if ratio < 0.6 {
		verdict = "MISSES"
	}
	rr := roundRatios(g, n)
	fmt.Fprintf(out, "\ngate/noop     throughput %.2f (%s the goal of 0.6); per round: median %.2f, range %.2f–%.2f\n",
		ratio, verdict, median(rr), rr[0], rr[len(rr)-1])
	fmt.Fprintf(out, "gate/noop-int throughput %.2f\n", g.throughput()/in.throughput())
	fmt.Fprintf(out, "gate/noauth   throughput %.2f\n", g.throughput()/a.throughput())
	fmt.Fprintf(out, "under load (%d connections), the gate flow's latency minus the no-op's: p50 %s, p99 %s\n", o.concurrency,
		(g.quantile(0.5) - n.quantile(0.5)).Round(time.Microsecond), (g.quantile(0.99) - n.quantile(0.99)).Round(time.Microsecond))

	// The latency the gate adds, without queueing: one request at a time,
	// gate and no-op in alternating rounds.
	quiet := map[string]*flow{"gate": {name: "gate", url: g.url}, "noop": {name: "noop", url: n.url}}
	each := max(o.requests/(10*o.rounds), 1)
	for r := range o.rounds {
		for _, name := range []string{"gate", "noop"}[r%2:] {
			if err := quiet[name].add(ctx, token, each); err != nil {
				return nil, err
			}
		}
		if r%2 == 1 {
			if err := quiet["gate"].add(ctx, token, each); err != nil {
				return nil, err
			}
		}
	}
	qg, qn := quiet["gate"], quiet["noop"]
	slices.Sort(qg.latencies)
	slices.Sort(qn.latencies)
	res.added50, res.added99 = qg.quantile(0.5)-qn.quantile(0.5), qg.quantile(0.99)-qn.quantile(0.99)
	fmt.Fprintf(out, "latency the gate adds, one request at a time (%d each): p50 %s, p99 %s (gate p50 %s p99 %s; no-op p50 %s p99 %s)\n",
		len(qg.latencies), res.added50.Round(time.Microsecond), res.added99.Round(time.Microsecond),
		qg.quantile(0.5).Round(time.Microsecond), qg.quantile(0.99).Round(time.Microsecond),
		qn.quantile(0.5).Round(time.Microsecond), qn.quantile(0.99).Round(time.Microsecond))
	return res, nil
}

// add sends n more requests to f over one connection and keeps their
// latencies.
func (f *flow) add(ctx context.Context, token string, n int) error {
	lat, took, err := drive(ctx, f.url, token, n, 1)
	if err != nil {
		return fmt.Errorf("%s, one at a time: %w", f.name, err)
	}
	f.done += len(lat)
	f.elapsed += took
	f.latencies = append(f.latencies, lat...)
	return nil
}

// nginxFlows is the http {} content: the four flows on ports[0..3] and
// the no-op responder on ports[4]. Every flow serves the same static file;
// the auth flows differ only in what answers the subrequest.
func nginxFlows(gateAddr, www string, ports [5]int) string {
	proxied := func(upstream string) string {
		return fmt.Sprintf(`        internal;
        proxy_pass http://%s/auth?scope=reports:read;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_http_version 1.1;
        proxy_set_header Connection "";`, upstream)
	}
	return fmt.Sprintf(`    upstream signet_gate { server %[1]s; keepalive 64; }
    upstream noop_responder { server 127.0.0.1:%[7]d; keepalive 64; }

    # gate: auth_request → signet gate
    server {
        listen 127.0.0.1:%[3]d;
        root %[2]s;
        location / { auth_request /_auth; }
        location = /_auth {
%[8]s
        }
    }

    # noop-int: auth_request answered inside nginx, no proxy hop
    server {
        listen 127.0.0.1:%[4]d;
        root %[2]s;
        location / { auth_request /_auth; }
        location = /_auth { internal; return 200; }
    }

    # noop: the gate's proxied subrequest, answered by the server below
    server {
        listen 127.0.0.1:%[5]d;
        root %[2]s;
        location / { auth_request /_auth; }
        location = /_auth {
%[9]s
        }
    }

    # noauth
    server {
        listen 127.0.0.1:%[6]d;
        root %[2]s;
    }

    # the no-op responder: 200, empty, like the gate's answer
    server {
        listen 127.0.0.1:%[7]d;
        location / { return 200; }
    }
`, gateAddr, www, ports[0], ports[1], ports[2], ports[3], ports[4], proxied("signet_gate"), proxied("noop_responder"))
}

// drive sends n GET requests to url over c keep-alive connections and
// returns each request's latency and the wall time of the whole batch. A
// non-200 answer is an error.
func drive(ctx context.Context, url, token string, n, c int) ([]time.Duration, time.Duration, error) {
	client := &fasthttp.Client{MaxConnsPerHost: c, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	var (
		next  atomic.Int64
		mu    sync.Mutex
		lat   = make([]time.Duration, 0, n)
		first error
		wg    sync.WaitGroup
	)
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(url)
			req.Header.Set("Authorization", "Bearer "+token)
			mine := make([]time.Duration, 0, n/c+1)
			defer func() { mu.Lock(); lat = append(lat, mine...); mu.Unlock() }()
			for next.Add(1) <= int64(n) {
				if ctx.Err() != nil {
					return
				}
				t0 := time.Now()
				err := client.Do(req, resp)
				d := time.Since(t0)
				if err == nil && resp.StatusCode() != 200 {
					err = fmt.Errorf("status %d: %.200s", resp.StatusCode(), resp.Body())
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
				mine = append(mine, d)
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	if first != nil {
		return nil, 0, first
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	return lat, took, nil
}

// status sends one GET with token (none when empty) and returns the status.
func status(ctx context.Context, url, token string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// issueToken trades the load user's password for a token with reports:read.
func issueToken(ctx context.Context, base string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/user-token", strings.NewReader(`{"scopes":["reports:read"]}`))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("POST /user-token: %d %s", resp.StatusCode, body)
	}
	var out struct {
		Token string `json:"user-token"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Token == "" {
		return "", errors.Join(errors.New("POST /user-token: unexpected answer"), err)
	}
	return out.Token, nil
}
