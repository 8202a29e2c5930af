// Command propagation measures how fast a revocation reaches verifiers: it
// starts one signet issuer on a free loopback port, starts verifiers
// (in-process verifier.New instances, each with its own HTTP client and
// event stream), issues tokens, revokes them one by one with
// DELETE /tokens/{id}, and for each measures the time until every verifier
// refuses the token.
//
//	go build -o bin/signet ./cmd/signet
//	go run ./scripts/propagation -signet ./bin/signet
//
// It prints p50/p99/max and whether every revocation reached every
// verifier within one second. Everything runs on 127.0.0.1, in a
// temporary directory, within -timeout; the issuer is stopped at the end.
//
// With -big it runs 5,000 verifiers following the event stream (20
// revocations, verifiers sharing one HTTP transport so that only the
// streams hold a connection each) and also reports the issuer's memory per
// open stream: the growth of its resident set and of its Go heap and
// stacks between before the verifiers connect and once every stream is
// open, divided by the number of streams.
//
//	go run ./scripts/propagation -signet ./bin/signet -big
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/signet-auth/signet/scripts/internal/issuerproc"
	"github.com/signet-auth/signet/verifier"
)

const (
	user     = "loadtest"
	password = "propagation-password"
)

type options struct {
	signet    string
	tokens    int
	verifiers int
	timeout   time.Duration
	perToken  time.Duration
	sse       bool
	keep      bool
	big       bool
}

// bigVerifiers and bigTokens are the size of the -big run.
const (
	bigVerifiers = 5000
	bigTokens    = 20
	// manyVerifiers is where the run switches to a shared transport and
	// sharded checks, so that the measuring side does not starve the
	// issuer of the machine's cores.
	manyVerifiers = 100
)

func main() {
	var o options
	flag.StringVar(&o.signet, "signet", "./bin/signet", "path to the signet binary")
	flag.IntVar(&o.tokens, "n", 100, "tokens to issue and revoke")
	flag.IntVar(&o.verifiers, "verifiers", 20, "verifiers to start")
	flag.DurationVar(&o.timeout, "timeout", 3*time.Minute, "bound on the whole run")
	flag.DurationVar(&o.perToken, "per-token", 5*time.Second, "how long to wait for one revocation to reach every verifier")
	flag.BoolVar(&o.sse, "sse", true, "verifiers follow the event stream (false: poll only)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (config, database, issuer log)")
	flag.BoolVar(&o.big, "big", false, fmt.Sprintf("%d verifiers on the event stream, %d revocations, and the issuer's memory per stream", bigVerifiers, bigTokens))
	flag.Parse()
	if o.big {
		set := map[string]bool{}
		flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["verifiers"] {
			o.verifiers = bigVerifiers
		}
		if !set["n"] {
			o.tokens = bigTokens
		}
		o.sse = true
	}
	if o.tokens < 1 || o.verifiers < 1 {
		fmt.Fprintln(os.Stderr, "propagation: -n and -verifiers must be positive")
		os.Exit(2)
	}
	issuerproc.Main("propagation", o.timeout, func(ctx context.Context) error { return run(ctx, o) })
}

func run(ctx context.Context, o options) error {
	extra := ""
	if o.verifiers > 900 {
		// Every verifier comes from 127.0.0.1: lift the per-client bound
		// and make room for all of them.
		extra = fmt.Sprintf("revocation:\n  max_streams: %d\n  max_streams_per_client: 0\n", o.verifiers+100)
	}
	iss, err := issuerproc.Start(ctx, issuerproc.Options{
		Binary:    o.signet,
		Users:     []issuerproc.User{{Name: user, Org: "load", Role: "admin", Password: password}},
		Keep:      o.keep,
		ExtraYAML: extra,
	})
	if err != nil {
		return err
	}
	defer iss.Stop()
	if o.keep {
		fmt.Println("working directory:", iss.Dir)
	}
	base := iss.URL
	client := &http.Client{Timeout: 10 * time.Second}
	fmt.Printf("issuer %s ready (pid %d)\n", base, iss.Pid())

	var before memory
	if o.big {
		if before, err = issuerMemory(ctx, client, base); err != nil {
			return err
		}
	}
	vs := make([]*verifier.Verifier, o.verifiers)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	shared := &http.Transport{MaxIdleConnsPerHost: 8}
	taps := &arrivals{n: o.verifiers}
	for i := range vs {
		var transport http.RoundTripper = shared
		if o.verifiers <= manyVerifiers {
			transport = &http.Transport{}
		}
		if o.big {
			transport = &tap{base: transport, idx: i, rec: taps}
		}
		v, err := verifier.New(ctx, verifier.Config{
			IssuerURL:  base,
			HTTPClient: &http.Client{Transport: transport, Timeout: 10 * time.Second},
			DisableSSE: !o.sse,
			Logger:     quiet,
		})
		if err != nil {
			return fmt.Errorf("verifier %d: %w", i, err)
		}
		defer v.Close()
		vs[i] = v
	}
	mode := "event stream"
	if !o.sse {
		mode = "polling"
	}
	fmt.Printf("%d verifiers started (%s)\n", len(vs), mode)
	if o.big {
		if err := waitStreams(ctx, client, base, len(vs)); err != nil {
			return err
		}
		// Let the requests of the start-up (discovery, keys, snapshot)
		// and fasthttp's idle workers go before measuring.
		if err := pause(ctx, 12*time.Second); err != nil {
			return err
		}
		after, err := issuerMemory(ctx, client, base)
		if err != nil {
			return err
		}
		n := float64(after.streams)
		fmt.Printf("issuer memory per open stream (%d streams): resident %.1f KB, Go heap+stacks %.1f KB (resident %.1f MB → %.1f MB)\n",
			after.streams, float64(after.rss-before.rss)/n/1024, float64(after.goMem()-before.goMem())/n/1024,
			float64(before.rss)/(1<<20), float64(after.rss)/(1<<20))
	}

	type issued struct{ token, id string }
	toks := make([]issued, o.tokens)
	for i := range toks {
		tok, id, err := issueToken(ctx, client, base)
		if err != nil {
			return fmt.Errorf("token %d: %w", i, err)
		}
		toks[i] = issued{tok, id}
		for j, v := range vs {
			if _, err := v.Verify(ctx, tok); err != nil {
				return fmt.Errorf("verifier %d refuses fresh token %d: %w", j, i, err)
			}
		}
	}
	fmt.Printf("%d tokens issued and verified by every verifier\n", len(toks))

	var fromSend, fromAck, delivered []time.Duration
	for i, t := range toks {
		if !o.sse {
			// Each revocation would otherwise follow the poll that
			// delivered the previous one by a fixed offset, and every
			// figure would be one whole poll interval: a random pause puts
			// it at a random point of the polling cycle.
			if err := pause(ctx, rand.N(verifier.DefaultPollInterval)); err != nil {
				return err
			}
		}
		taps.arm(t.id)
		sent := time.Now()
		if err := revoke(ctx, client, base, t.id); err != nil {
			return fmt.Errorf("revoke token %d: %w", i, err)
		}
		acked := time.Now()
		last, err := waitRefused(ctx, vs, t.token, sent.Add(o.perToken))
		if err != nil {
			return fmt.Errorf("token %d: %w", i, err)
		}
		fromSend = append(fromSend, last.Sub(sent))
		fromAck = append(fromAck, max(0, last.Sub(acked)))
		if o.big {
			all, ok := taps.last()
			if !ok {
				return fmt.Errorf("token %d: refused everywhere but not seen on every stream", i)
			}
			delivered = append(delivered, max(0, all.Sub(acked)))
		}
	}

	report("from DELETE sent", fromSend)
	report("from 204 received", fromAck)
	if o.big {
		// The refusals above include the measurement's own work: after
		// the list changes, each verifier checks the token in full again
		// (signature included), 5,000 checks on the machine's cores.
		fmt.Printf("until every verifier's stream carried it, from 204 received: ")
		s := slices.Clone(delivered)
		slices.Sort(s)
		fmt.Printf("p50 %s p99 %s\n", s[len(s)/2].Round(10*time.Microsecond), s[min(len(s)-1, int(0.99*float64(len(s))))].Round(10*time.Microsecond))
	}
	within := slices.Max(fromSend) <= time.Second
	fmt.Printf("revocations: %d, verifiers: %d\nall within 1s: %v\n", len(toks), len(vs), within)
	return nil
}

func report(label string, ds []time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	pct := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
	fmt.Printf("until all verifiers refuse, %-18s p50 %-10s p99 %-10s max %s\n", label+":",
		pct(0.50).Round(10*time.Microsecond), pct(0.99).Round(10*time.Microsecond), s[len(s)-1].Round(10*time.Microsecond))
}

// waitRefused polls every verifier until each refuses token as revoked and
// returns when the last one did. Past manyVerifiers, a few goroutines
// each check a share of them in turn (the time of the last is then when
// its checker got to it: never early, at most a scan late).
func waitRefused(ctx context.Context, vs []*verifier.Verifier, token string, deadline time.Time) (time.Time, error) {
	if len(vs) > manyVerifiers {
		return waitRefusedSharded(ctx, vs, token, deadline)
	}
	var mu sync.Mutex
	var last time.Time
	var firstErr error
	var wg sync.WaitGroup
	for i, v := range vs {
		wg.Go(func() {
			for time.Now().Before(deadline) && ctx.Err() == nil {
				_, err := v.Verify(ctx, token)
				if errors.Is(err, verifier.ErrRevoked) {
					now := time.Now()
					mu.Lock()
					if now.After(last) {
						last = now
					}
					mu.Unlock()
					return
				}
				if err != nil {
					mu.Lock()
					firstErr = cmpErr(firstErr, fmt.Errorf("verifier %d: unexpected error: %w", i, err))
					mu.Unlock()
					return
				}
				// A short pause keeps 20 pollers from starving the issuer
				// of the machine's cores; it bounds resolution at ~0.1ms.
				time.Sleep(100 * time.Microsecond)
			}
			mu.Lock()
			firstErr = cmpErr(firstErr, fmt.Errorf("verifier %d still accepts the token at the deadline", i))
			mu.Unlock()
		})
	}
	wg.Wait()
	return last, firstErr
}

func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func cmpErr(have, next error) error {
	if have != nil {
		return have
	}
	return next
}

func issueToken(ctx context.Context, client *http.Client, base string) (token, id string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/user-token", bytes.NewReader(nil))
	if err != nil {
		return "", "", err
	}
	req.SetBasicAuth(user, password)
	resp, err := client.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return "", "", fmt.Errorf("POST /user-token: %d %s", resp.StatusCode, body)
	}
	var out struct {
		Token string `json:"user-token"`
		ID    string `json:"token_id"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Token == "" || out.ID == "" {
		return "", "", fmt.Errorf("POST /user-token: unexpected answer (%v)", err)
	}
	return out.Token, out.ID, nil
}

func revoke(ctx context.Context, client *http.Client, base, id string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, base+"/tokens/"+id, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(user, password)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("DELETE /tokens/%s: status %d", id, resp.StatusCode)
	}
	return nil
}

// waitRefusedSharded is waitRefused for many verifiers.
func waitRefusedSharded(ctx context.Context, vs []*verifier.Verifier, token string, deadline time.Time) (time.Time, error) {
	const checkers = 8
	var mu sync.Mutex
	var last time.Time
	var firstErr error
	var wg sync.WaitGroup
	for c := range checkers {
		wg.Go(func() {
			for i := c; i < len(vs); i += checkers {
				for {
					_, err := vs[i].Verify(ctx, token)
					if errors.Is(err, verifier.ErrRevoked) {
						break
					}
					if err != nil {
						mu.Lock()
						firstErr = cmpErr(firstErr, fmt.Errorf("verifier %d: unexpected error: %w", i, err))
						mu.Unlock()
						return
					}
					if !time.Now().Before(deadline) || ctx.Err() != nil {
						mu.Lock()
						firstErr = cmpErr(firstErr, fmt.Errorf("verifier %d still accepts the token at the deadline", i))
						mu.Unlock()
						return
					}
					time.Sleep(200 * time.Microsecond)
				}
			}
			now := time.Now()
			mu.Lock()
			if now.After(last) {
				last = now
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return last, firstErr
}

// memory is what the issuer's /metrics says about its memory.
type memory struct {
	rss, heap, stacks int64
	streams           int
}

func (m memory) goMem() int64 { return m.heap + m.stacks }

// issuerMemory reads the issuer's resident set, Go heap and stacks in use
// and open event streams from its /metrics.
func issuerMemory(ctx context.Context, client *http.Client, base string) (memory, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return memory{}, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return memory{}, fmt.Errorf("GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return memory{}, fmt.Errorf("GET /metrics: %w", err)
	}
	var m memory
	found := 0
	for _, line := range strings.Split(string(body), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			continue
		}
		switch name {
		case "process_resident_memory_bytes":
			m.rss = int64(f)
		case "go_memstats_heap_inuse_bytes":
			m.heap = int64(f)
		case "go_memstats_stack_inuse_bytes":
			m.stacks = int64(f)
		case "signet_revocation_streams":
			m.streams = int(f)
		default:
			continue
		}
		found++
	}
	if found < 4 {
		return memory{}, fmt.Errorf("GET /metrics: memory or stream figures missing")
	}
	return m, nil
}

// waitStreams waits until the issuer serves n event streams.
func waitStreams(ctx context.Context, client *http.Client, base string, n int) error {
	deadline := time.Now().Add(time.Minute)
	for {
		m, err := issuerMemory(ctx, client, base)
		if err != nil {
			return err
		}
		if m.streams >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d event streams open after a minute", m.streams, n)
		}
		if err := pause(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
}

// arrivals records when each verifier's event stream first carried the
// id being revoked.
type arrivals struct {
	n    int
	mu   sync.Mutex
	want []byte
	seen map[int]time.Time
}

// arm starts watching for id.
func (a *arrivals) arm(id string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.want = []byte(id)
	a.seen = make(map[int]time.Time, a.n)
}

func (a *arrivals) observe(idx int, data []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.want) == 0 || !bytes.Contains(data, a.want) {
		return
	}
	if _, ok := a.seen[idx]; !ok {
		a.seen[idx] = time.Now()
	}
}

// last is when the last stream carried the armed id; false when some
// stream has not.
func (a *arrivals) last() (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var last time.Time
	for _, t := range a.seen {
		if t.After(last) {
			last = t
		}
	}
	return last, len(a.seen) == a.n
}

// tap wraps a verifier's transport to watch its event stream's bytes.
type tap struct {
	base http.RoundTripper
	idx  int
	rec  *arrivals
}

func (t *tap) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err == nil && strings.HasSuffix(req.URL.Path, "/revocations/events") {
		resp.Body = &tapBody{ReadCloser: resp.Body, t: t}
	}
	return resp, err
}

// tapBody passes a stream's bytes on, keeping the end of the previous read
// so that an id split between two reads is still seen.
type tapBody struct {
	io.ReadCloser
	t    *tap
	tail []byte
}

func (b *tapBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		window := append(b.tail, p[:n]...)
		b.t.rec.observe(b.t.idx, window)
		b.tail = append(b.tail[:0], window[max(0, len(window)-64):]...)
	}
	return n, err
}
