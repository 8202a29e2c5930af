package verifier_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-auth/signet/revocation"
	"github.com/signet-auth/signet/verifier"
	"github.com/signet-auth/signet/verifier/verifiertest"
)

// issuerTransport sits between a verifier and its issuer the way a load
// balancer in front of several replicas would: it can answer one snapshot
// request with an earlier snapshot (a replica that lags behind), and it can
// send every request to another issuer under the same URL (an issuer whose
// database was replaced). It counts snapshot requests.
type issuerTransport struct {
	next http.RoundTripper

	mu        sync.Mutex
	stale     []byte // served once, for the next GET /revocations
	from, to  string // hosts: requests to from go to to
	snapshots int
}

func newIssuerTransport(tb testing.TB) *issuerTransport {
	tb.Helper()
	tr := &http.Transport{}
	tb.Cleanup(tr.CloseIdleConnections)
	return &issuerTransport{next: tr}
}

func (t *issuerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.mu.Lock()
	snapshot := r.URL.Path == "/revocations" && r.URL.RawQuery == ""
	if snapshot {
		t.snapshots++
	}
	stale := t.stale
	if snapshot {
		t.stale = nil
	}
	if t.to != "" && r.URL.Host == t.from {
		r = r.Clone(r.Context())
		r.URL.Host, r.Host = t.to, t.to
	}
	t.mu.Unlock()
	if snapshot && stale != nil {
		return &http.Response{
			StatusCode:    http.StatusOK,
			Header:        http.Header{"Content-Type": {revocation.ContentType}},
			Body:          io.NopCloser(bytes.NewReader(stale)),
			ContentLength: int64(len(stale)),
			Request:       r,
		}, nil
	}
	return t.next.RoundTrip(r)
}

// serveStaleOnce makes the next snapshot request get body.
func (t *issuerTransport) serveStaleOnce(body []byte) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stale = body
}

// staleServed reports whether the armed stale snapshot went out.
func (t *issuerTransport) staleServed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.stale == nil
}

// redirect sends every request for from's host to to's host.
func (t *issuerTransport) redirect(from, to *verifiertest.Issuer) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.from, t.to = hostOf(from.URL()), hostOf(to.URL())
}

func (t *issuerTransport) snapshotRequests() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.snapshots
}

func hostOf(u string) string {
	const p = "http://"
	if len(u) > len(p) && u[:len(p)] == p {
		return u[len(p):]
	}
	return u
}

// fetchSnapshot reads iss's current snapshot bytes.
func fetchSnapshot(tb testing.TB, iss *verifiertest.Issuer) []byte {
	tb.Helper()
	resp, err := http.Get(iss.URL() + "/revocations")
	if err != nil {
		tb.Fatalf("GET /revocations: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		tb.Fatalf("GET /revocations: got %d, %v; want 200", resp.StatusCode, err)
	}
	return body
}

func refused(v *verifier.Verifier, tok string) func() bool {
	return func() bool {
		_, err := v.Verify(context.Background(), tok)
		return errors.Is(err, verifier.ErrRevoked)
	}
}

func TestStreamResetWithLaggingSnapshot(t *testing.T) {
	// The stream answers a resume that is too old with "reset" and goes on
	// from the issuer's version. When the snapshot the verifier then loads
	// is older than that (another replica, behind the one streaming), the
	// revocations in between must still arrive.
	iss := verifiertest.NewIssuer(t, verifiertest.WithMaxDelta(1))
	tr := newIssuerTransport(t)
	v := newVerifier(t, iss, func(c *verifier.Config) {
		c.HTTPClient = &http.Client{Transport: tr, Timeout: 10 * time.Second}
		c.PollInterval = time.Hour // only the stream, and the poll after it breaks, deliver
		c.CacheSize = -1
	})
	first, second, third := iss.SignToken(t, nil), iss.SignToken(t, nil), iss.SignToken(t, nil)
	iss.Revoke(verifiertest.TokenID(t, first))
	eventually(t, "first revocation arrives over the stream", refused(v, first))
	lagging := fetchSnapshot(t, iss) // version 1

	iss.SetDown(true) // ends the stream
	streams := iss.Requests("/revocations/events")
	eventually(t, "a reconnect attempt while down", func() bool { return iss.Requests("/revocations/events") > streams })
	iss.Revoke(verifiertest.TokenID(t, second))
	iss.Revoke(verifiertest.TokenID(t, third)) // version 3: resuming from 1 is too old
	tr.serveStaleOnce(lagging)
	iss.SetDown(false)

	eventually(t, "the lagging snapshot was loaded", tr.staleServed)
	for name, tok := range map[string]string{"second": second, "third": third} {
		eventually(t, name+" revocation arrives despite the lagging snapshot", refused(v, tok))
	}
	if _, err := v.Verify(context.Background(), iss.SignToken(t, nil)); err != nil {
		t.Errorf("unrevoked token: got %v, want nil", err)
	}
}

func TestIssuerLogReplaced(t *testing.T) {
	// The issuer comes back under the same URL with a new database: its
	// list version starts again from 0. The verifier must follow the new
	// log, and not reload the snapshot on every poll or event because its
	// own version is ahead.
	for _, sse := range []bool{true, false} {
		t.Run(fmt.Sprintf("SSE=%v", sse), func(t *testing.T) {
			old, fresh := verifiertest.NewIssuer(t), verifiertest.NewIssuer(t)
			tr := newIssuerTransport(t)
			v := newVerifier(t, old, func(c *verifier.Config) {
				c.HTTPClient = &http.Client{Transport: tr, Timeout: 10 * time.Second}
				c.DisableSSE = !sse
				if sse {
					c.PollInterval = time.Hour // the stream alone delivers
				}
				c.MinRefreshInterval = time.Millisecond
				c.CacheSize = -1
			})
			revokedOld := old.SignToken(t, nil)
			for _, id := range []string{verifiertest.TokenID(t, revokedOld), "x", "y"} {
				old.Revoke(id)
			}
			eventually(t, "old log synced", refused(v, revokedOld))

			tr.redirect(old, fresh)
			old.SetDown(true) // ends a stream to the old issuer
			if sse {
				eventually(t, "stream to the new issuer", func() bool { return fresh.Requests("/revocations/events") > 0 })
			}
			toks := []string{
				fresh.SignToken(t, verifiertest.Claims{"iss": old.URL()}),
				fresh.SignToken(t, verifiertest.Claims{"iss": old.URL()}),
			}
			for _, tok := range toks {
				if _, err := v.Verify(context.Background(), tok); err != nil {
					t.Fatalf("token of the new issuer: got %v, want nil", err)
				}
			}
			fresh.Revoke(verifiertest.TokenID(t, toks[0])) // version 1 of the new log
			eventually(t, "first revocation in the new log applied", refused(v, toks[0]))

			// Settled: further revocations, polls and events need no
			// snapshot.
			snaps, polls := tr.snapshotRequests(), fresh.Requests("/revocations")
			fresh.Revoke(verifiertest.TokenID(t, toks[1]))
			eventually(t, "second revocation in the new log applied", refused(v, toks[1]))
			if !sse {
				eventually(t, "more polls", func() bool { return fresh.Requests("/revocations") >= polls+5 })
			}
			if got := tr.snapshotRequests(); got != snaps {
				t.Errorf("snapshot requests once settled: got %d more, want none", got-snaps)
			}
		})
	}
}

func TestKeyLeavesKeySet(t *testing.T) {
	// A key that leaves the published set (not withdrawn: its tokens'
	// time is up, or the issuer was replaced) stops verifying cached
	// tokens too, once the periodic refresh sees it gone.
	old, fresh := verifiertest.NewIssuer(t), verifiertest.NewIssuer(t)
	tr := newIssuerTransport(t)
	v := newVerifier(t, old, func(c *verifier.Config) {
		c.HTTPClient = &http.Client{Transport: tr, Timeout: 10 * time.Second}
		c.JWKSRefreshInterval = 20 * time.Millisecond
	})
	tok := old.SignToken(t, nil)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("Verify: got %v, want nil", err)
	}
	tr.redirect(old, fresh) // the key set now lacks the old key
	eventually(t, "cached token of the removed key refused", func() bool {
		_, err := v.Verify(context.Background(), tok)
		return errors.Is(err, verifier.ErrUnknownKey)
	})
	other := fresh.SignToken(t, verifiertest.Claims{"iss": old.URL()})
	if _, err := v.Verify(context.Background(), other); err != nil {
		t.Errorf("token of the key now published: got %v, want nil", err)
	}
}

// TestIssuerLogRestored: the issuer's database is restored from a backup
// taken one revocation ago. Its log keeps its epoch but goes back a version,
// and the next revocation reuses the lost one's Seq. The verifier must
// notice that its position is not on the log any more, reload, and refuse
// the new revocation's token, whether it follows the stream or polls.
func TestIssuerLogRestored(t *testing.T) {
	for _, sse := range []bool{true, false} {
		t.Run(fmt.Sprintf("SSE=%v", sse), func(t *testing.T) {
			iss := verifiertest.NewIssuer(t)
			v := newVerifier(t, iss, func(c *verifier.Config) {
				c.DisableSSE = !sse
				if sse {
					c.PollInterval = time.Hour // the stream alone delivers
				}
				c.CacheSize = -1
			})
			first, lost, next := iss.SignToken(t, nil), iss.SignToken(t, nil), iss.SignToken(t, nil)
			backup := iss.Revoke(verifiertest.TokenID(t, first))
			iss.Revoke(verifiertest.TokenID(t, lost))
			eventually(t, "both revocations applied", refused(v, lost))

			iss.RestoreLog(backup)
			seq := iss.Revoke(verifiertest.TokenID(t, next))
			if seq != backup+1 {
				t.Fatalf("the restored log gave Seq %d, want %d (the lost entry's)", seq, backup+1)
			}
			eventually(t, "the revocation after the restore applied", refused(v, next))
			if _, err := v.Verify(context.Background(), first); !errors.Is(err, verifier.ErrRevoked) {
				t.Errorf("token revoked before the backup: got %v, want ErrRevoked", err)
			}
		})
	}
}

// TestIssuerLogReplacedSameVersion: a new database whose log has reached
// the verifier's version by the time it reconnects; only the epoch tells
// the logs apart.
func TestIssuerLogReplacedSameVersion(t *testing.T) {
	iss := verifiertest.NewIssuer(t)
	v := newVerifier(t, iss, func(c *verifier.Config) { c.CacheSize = -1 })
	old := iss.SignToken(t, nil)
	iss.Revoke(verifiertest.TokenID(t, old))
	eventually(t, "old log synced", refused(v, old))
	iss.SetDown(true)
	iss.ReplaceLog()
	tok := iss.SignToken(t, nil)
	iss.Revoke(verifiertest.TokenID(t, tok)) // version 1 again, another log
	iss.SetDown(false)
	eventually(t, "revocation in the new log applied", refused(v, tok))
}

// TestURLsFromMetadata: the verifier fetches every URL from the issuer's
// metadata, not from paths it builds: an issuer that publishes its list,
// stream and entry lookup under other paths is followed, and nothing is
// asked of the default paths.
func TestURLsFromMetadata(t *testing.T) {
	iss := verifiertest.NewIssuer(t, verifiertest.WithFilter(1, 1)) // every id hits the filter
	var mu sync.Mutex
	hits := map[string]int{}
	var front *httptest.Server
	front = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		forward := map[string]string{
			"/keys":   "/.well-known/jwks.json",
			"/list":   "/revocations",
			"/stream": "/revocations/events",
		}
		path := r.URL.Path
		mu.Lock()
		hits[path]++
		mu.Unlock()
		if path == "/.well-known/oauth-authorization-server" {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q,"revocation_list_uri":%q,"revocation_events_uri":%q,"revocation_entry_uri":%q}`,
				front.URL, front.URL+"/keys", front.URL+"/list", front.URL+"/stream", front.URL+"/entry/{token_id}/answer")
			return
		}
		to, ok := forward[path]
		if id, found := strings.CutPrefix(path, "/entry/"); found {
			to, ok = "/revocations/"+strings.TrimSuffix(id, "/answer"), true
		}
		if !ok {
			http.NotFound(w, r)
			return
		}
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, iss.URL()+to+"?"+r.URL.RawQuery, nil)
		req.Header = r.Header.Clone()
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, vs := range resp.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(resp.StatusCode)
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				_, _ = w.Write(buf[:n])
				w.(http.Flusher).Flush()
			}
			if err != nil {
				return
			}
		}
	}))
	t.Cleanup(front.Close)

	iss.Revoke("someone-else") // the snapshot's filter hits for every id
	v, err := verifier.New(context.Background(), verifier.Config{IssuerURL: front.URL, Logger: quietLogger(), CacheSize: -1})
	if err != nil {
		t.Fatalf("verifier.New: %v", err)
	}
	t.Cleanup(v.Close)
	eventually(t, "stream connected", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return hits["/stream"] > 0
	})
	ok, revoked := iss.SignToken(t, verifiertest.Claims{"iss": front.URL}), iss.SignToken(t, verifiertest.Claims{"iss": front.URL})
	eventually(t, "the filter hit confirmed not revoked", func() bool {
		_, err := v.Verify(context.Background(), ok)
		return err == nil
	})
	iss.Revoke(verifiertest.TokenID(t, revoked))
	eventually(t, "revocation applied", refused(v, revoked))
	mu.Lock()
	defer mu.Unlock()
	for _, p := range []string{"/keys", "/list", "/stream"} {
		if hits[p] == 0 {
			t.Errorf("%s: never fetched, want it used", p)
		}
	}
	entry := 0
	for p, n := range hits {
		if strings.HasPrefix(p, "/entry/") && strings.HasSuffix(p, "/answer") {
			entry += n
		}
		if strings.HasPrefix(p, "/revocations") || p == "/.well-known/jwks.json" {
			t.Errorf("%s: fetched %d times, want never (not in the metadata)", p, n)
		}
	}
	if entry == 0 {
		t.Error("entry lookups: got none through revocation_entry_uri, want the filter hit confirmed there")
	}
}
