package issuer

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawStream opens GET /revocations/events on a plain TCP connection from
// local (nil: any address) and reads up to the hello event; it returns
// the connection and the status code.
func rawStream(tb testing.TB, base string, local net.Addr) (net.Conn, int) {
	tb.Helper()
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: local}
	addr := strings.TrimPrefix(base, "http://")
	c, err := d.Dial("tcp", addr)
	if err != nil {
		tb.Fatalf("dial %s: %v", addr, err)
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := fmt.Fprintf(c, "GET /revocations/events HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", addr); err != nil {
		tb.Fatalf("write request: %v", err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		tb.Fatalf("read response: %v", err)
	}
	if resp.StatusCode == http.StatusOK {
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				tb.Fatalf("read hello: %v", err)
			}
			if strings.HasPrefix(line, "event: hello") {
				break
			}
		}
	}
	_ = c.SetDeadline(time.Time{})
	return c, resp.StatusCode
}

// abort closes c with a reset, the way a killed client or a dropped
// connection ends, without a FIN the server would read at leisure.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

// TestEventStreamSlotsFreedWhenClientsVanish: 10,000 streams opened and
// closed abruptly, in waves that each fill every slot, leave no slot taken
// (the keep-alive is a minute away, so only noticing the closed connection
// frees them), and a new verifier is admitted right after.
func TestEventStreamSlotsFreedWhenClientsVanish(t *testing.T) {
	const slots, waves = 500, 20
	e := newFeedEnv(t, RevocationConfig{KeepAlive: time.Minute, MaxStreamsPerClient: slots}, slots)
	for w := range waves {
		conns := make([]net.Conn, slots)
		var wg sync.WaitGroup
		var mu sync.Mutex
		refused := 0
		for i := range conns {
			wg.Go(func() {
				c, status := rawStream(t, e.base, nil)
				conns[i] = c
				if status != http.StatusOK {
					mu.Lock()
					refused++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if refused > 0 {
			t.Fatalf("wave %d: %d of %d streams refused; slots of closed connections were not freed", w, refused, slots)
		}
		for _, c := range conns {
			abort(c)
		}
		waitFor(t, fmt.Sprintf("wave %d's slots freed", w), func() bool { return e.feed.openStreams() == 0 })
	}
	s := openStream(t, e.base, nil)
	if ev := s.nextEvent(t); ev.event != "hello" {
		t.Fatalf("a new verifier after 10,000 abrupt closes: got %+v, want hello", ev)
	}
	rev := e.revoke(t, "tok-after", time.Hour)
	if ev := s.nextEvent(t); ev.event != "revocation" || !strings.HasPrefix(ev.id, fmt.Sprint(rev.Seq)+".") {
		t.Fatalf("the new stream: got %+v, want revocation %d", ev, rev.Seq)
	}
}

// TestEventStreamsPerClient: one client address gets at most
// MaxStreamsPerClient streams (429 past it); another address still gets
// in, and a slot comes back when a stream of the first ends.
func TestEventStreamsPerClient(t *testing.T) {
	e := newFeedEnv(t, RevocationConfig{MaxStreamsPerClient: 3}, 0)
	var mine []net.Conn
	for range 3 {
		c, status := rawStream(t, e.base, nil)
		if status != http.StatusOK {
			t.Fatalf("stream within the cap: got %d, want 200", status)
		}
		mine = append(mine, c)
	}
	resp, body := e.get(t, "/revocations/events", nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || errorCode(t, body) != ECodeRateLimited {
		t.Fatalf("fourth stream from one address: got %d %s, want 429 with Retry-After", resp.StatusCode, body)
	}
	other := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}
	c, status := rawStream(t, e.base, other)
	if status != http.StatusOK {
		t.Fatalf("a stream from another address: got %d, want 200", status)
	}
	defer c.Close()
	mine[0].Close()
	waitFor(t, "the closed stream's slot freed", func() bool { return e.feed.openStreams() == 3 })
	c2, status := rawStream(t, e.base, nil)
	if status != http.StatusOK {
		t.Fatalf("after one of its streams closed: got %d, want 200", status)
	}
	c2.Close()
	for _, c := range mine[1:] {
		c.Close()
	}
}

// TestEventStreamPlainHTTP: the stream is ordinary HTTP/1.1 a proxy or
// browser accepts: chunked, the event-stream type, no caching, and each
// event arrives as it happens; a HEAD gets the headers only.
func TestEventStreamPlainHTTP(t *testing.T) {
	e := newFeedEnv(t, RevocationConfig{KeepAlive: 100 * time.Millisecond}, 0)
	s := openStream(t, e.base, nil)
	if got := s.resp.Header.Get("Content-Type"); got != "text/event-stream" {
		t.Errorf("Content-Type: got %q", got)
	}
	if got := s.resp.Header.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("Cache-Control: got %q", got)
	}
	if len(s.resp.TransferEncoding) != 1 || s.resp.TransferEncoding[0] != "chunked" {
		t.Errorf("Transfer-Encoding: got %v, want chunked", s.resp.TransferEncoding)
	}
	if ev := s.nextEvent(t); ev.event != "hello" {
		t.Fatalf("first: got %+v", ev)
	}
	if ev := s.next(t); !ev.comment {
		t.Errorf("after the keep-alive interval: got %+v, want a keep-alive comment", ev)
	}
	rev := e.revoke(t, "tok-1", time.Hour)
	for {
		ev := s.next(t)
		if ev.comment {
			continue
		}
		if ev.event != "revocation" || !strings.HasPrefix(ev.id, fmt.Sprint(rev.Seq)+".") || !strings.Contains(ev.data, "tok-1") {
			t.Fatalf("got %+v, want revocation %d of tok-1", ev, rev.Seq)
		}
		break
	}
	req, _ := http.NewRequest(http.MethodHead, e.base+"/revocations/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("HEAD: got %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
