package issuer

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/signet-auth/signet/revocation"
)

// The event stream, cheaply. Each subscriber costs one goroutine, parked
// in a Read of its own connection, and a small struct: no fasthttp worker,
// request context or buffers (the connection is hijacked), no timer or
// channel of its own. The Read is what notices a client that went away at
// once, whether it closed or reset the connection, so its slot is free
// again right then; its deadline is the next keep-alive. When the log
// grows, the hub's one goroutine expires every parked Read (a deadline in
// the past), and each stream writes what is new to it and parks again.

// streamHub holds the open event streams of one feed and their slots.
type streamHub struct {
	mu        sync.Mutex
	streams   map[*eventStream]struct{} // running ones, to wake
	perClient map[string]int            // admitted ones, by client
	count     int                       // admitted ones
	watching  bool
	closing   atomic.Bool // the feed stopped or the server shuts down
	// frames caches the encoded events of the last range a stream sent:
	// streams that follow the log live all send the same range, so each
	// new entry is encoded once, not once per stream.
	frames atomic.Pointer[encodedFrames]
	// buffers holds write buffers between writes.
	buffers sync.Pool
}

// encodedFrames are the events of the entries after from up to version
// of the log gen.
type encodedFrames struct {
	gen           int
	from, version uint64
	last          uint64 // the Seq of the last entry in the range
	bytes         []byte
}

// admit takes a slot for a stream of client, or refuses with 429 when all
// max are taken or client holds perClient (negative: no bound) already.
func (h *streamHub) admit(client string, max int64, perClient int) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.perClient == nil {
		h.perClient = map[string]int{}
		h.streams = map[*eventStream]struct{}{}
	}
	if h.closing.Load() {
		return errorf(ECodeUnavailable, "The issuer is shutting down; connect to another replica or try again shortly.")
	}
	if int64(h.count) >= max {
		return rateLimited(5*time.Second, "Too many revocation event streams are open; try again shortly.")
	}
	if perClient >= 0 && h.perClient[client] >= perClient {
		return rateLimited(5*time.Second, "This address has too many revocation event streams open; close some or try again shortly.")
	}
	h.perClient[client]++
	h.count++
	return nil
}

// add registers an admitted stream; false when the hub is closing, in
// which case the stream must end at once.
func (h *streamHub) add(s *eventStream) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.streams[s] = struct{}{}
	return !h.closing.Load()
}

// release frees the slot of an admitted stream (added or not).
func (h *streamHub) release(s *eventStream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.streams, s)
	h.count--
	if h.perClient[s.client] <= 1 {
		delete(h.perClient, s.client)
	} else {
		h.perClient[s.client]--
	}
}

// open is the number of admitted streams.
func (h *streamHub) open() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count
}

// watch starts, once, the goroutine that wakes every stream when the log
// of f grows, and ends them all when f stops or serverDone closes.
func (h *streamHub) watch(f *revocationFeed, serverDone <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.watching {
		return
	}
	h.watching = true
	go func() {
		for {
			v, err := f.view()
			changed, version := v.changed, v.cursor.Version
			if err != nil {
				// Stale or not loaded: streams notice it at their next
				// keep-alive; check again shortly.
				changed = nil
			} else {
				// Also every PollInterval: a stream behind the version
				// (a wake that raced with it, a change made while the
				// list was stale) is woken again, so none waits for its
				// keep-alive.
				h.wakeBehind(version)
			}
			retry := time.NewTimer(f.cfg.PollInterval)
			select {
			case <-f.stopped:
				retry.Stop()
				h.close()
				return
			case <-serverDone:
				retry.Stop()
				h.close()
				return
			case <-changed:
				h.wake()
			case <-retry.C:
			}
			retry.Stop()
		}
	}()
}

// wake makes every parked stream look at the log now.
func (h *streamHub) wake() {
	past := time.Unix(1, 0)
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.streams {
		_ = s.conn.SetReadDeadline(past)
	}
}

// wakeBehind wakes the streams that have not looked at the log since it
// reached version.
func (h *streamHub) wakeBehind(version uint64) {
	past := time.Unix(1, 0)
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.streams {
		if s.looked.Load() != version {
			_ = s.conn.SetReadDeadline(past)
		}
	}
}

// close ends every stream and refuses new ones.
func (h *streamHub) close() {
	h.closing.Store(true)
	h.wake()
}

// isClosing reports whether streams must end.
func (h *streamHub) isClosing() bool {
	return h.closing.Load()
}

// eventStream is one SSE subscriber.
type eventStream struct {
	feed    *revocationFeed
	conn    net.Conn
	client  string
	header  []byte // the HTTP response head
	chunked bool   // HTTP/1.1: chunked body; HTTP/1.0: body until close
	last    uint64 // the highest Seq sent (or the point resumed from)
	seen    uint64 // the list version last looked at
	// looked is seen for the hub, which reads it from its own goroutine.
	looked  atomic.Uint64
	cursor  revocation.Cursor // the feed's position when the stream opened
	gen     int               // the log the stream follows (revocationFeed.gen)
	pending []revocation.Entry
	reset   bool
	junk    int // bytes the client sent after its request
	// writeDeadline is the connection's write deadline as last set.
	writeDeadline time.Time
}

// maxStreamJunk is how much a subscriber may send after its request (it
// has nothing to say) before it is dropped.
const maxStreamJunk = 4 << 10

// streamHeader renders the response head of an event stream: the headers
// set on c so far (by middleware and handleEvents) with the framing
// headers of a body that is written as it happens.
func streamHeader(c *fiber.Ctx, chunked bool) []byte {
	var b bytes.Buffer
	if chunked {
		b.WriteString("HTTP/1.1 200 OK\r\n")
	} else {
		b.WriteString("HTTP/1.0 200 OK\r\n")
	}
	b.WriteString("Date: " + time.Now().UTC().Format(http1Date) + "\r\n")
	c.Response().Header.VisitAll(func(k, v []byte) {
		switch string(k) {
		case fiber.HeaderContentLength, fiber.HeaderTransferEncoding, fiber.HeaderConnection, fiber.HeaderDate:
			return
		}
		b.Write(k)
		b.WriteString(": ")
		b.Write(v)
		b.WriteString("\r\n")
	})
	if chunked {
		b.WriteString("Transfer-Encoding: chunked\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	return b.Bytes()
}

// http1Date is the HTTP date format (RFC 9110 §5.6.7).
const http1Date = "Mon, 02 Jan 2006 15:04:05 GMT"

// buffer lends the bytes of one write; only a stream that is writing
// holds one. Give it back with putBuffer.
func (h *streamHub) buffer() *bytes.Buffer {
	if b, ok := h.buffers.Get().(*bytes.Buffer); ok {
		b.Reset()
		return b
	}
	return new(bytes.Buffer)
}

func (h *streamHub) putBuffer(b *bytes.Buffer) { h.buffers.Put(b) }

func (s *eventStream) serve() {
	f, h := s.feed, &s.feed.streams
	defer func() {
		_ = s.conn.Close()
		h.release(s)
	}()
	if !h.add(s) {
		return
	}
	hello := helloData(s.cursor)
	buf := h.buffer()
	buf.WriteString("retry: 1000\nevent: hello\ndata: ")
	buf.Write(hello)
	buf.WriteString("\n\n")
	if s.reset {
		buf.WriteString("event: reset\ndata: ")
		buf.Write(hello)
		buf.WriteString("\n\n")
	}
	s.frames(buf, s.pending)
	s.pending = nil
	ok := s.send(s.header, buf)
	s.header = nil
	h.putBuffer(buf)
	if !ok {
		return
	}
	nextKeepAlive := time.Now().Add(f.cfg.KeepAlive)
	var scratch [64]byte
	for {
		if h.isClosing() {
			s.end()
			return
		}
		v, err := f.view()
		if err != nil {
			s.end() // a stream must not vouch for a stale list
			return
		}
		if v.gen != s.gen {
			// The feed loaded another log (a restored or replaced
			// database): what this subscriber holds may not be on it.
			s.gen, s.cursor, s.last, s.seen = v.gen, v.cursor, v.cursor.Version, v.cursor.Version
			if !s.sendString("event: reset\ndata: " + string(helloData(v.cursor)) + "\n\n") {
				return
			}
		} else if version := v.cursor.Version; version != s.seen {
			s.seen = version
			if !s.sendNews(v.entries, version) {
				return
			}
		}
		s.looked.Store(s.seen)
		if now := time.Now(); !now.Before(nextKeepAlive) {
			if f.ready() != nil {
				s.end() // a keep-alive would vouch for a list that is stale
				return
			}
			if !s.sendString(": keep-alive\n\n") {
				return
			}
			nextKeepAlive = now.Add(f.cfg.KeepAlive)
		}
		// Park until the keep-alive is due, the hub wakes us, or the
		// client goes away. The hub wakes by moving the deadline; one
		// that came before this one was set is caught by looking again.
		_ = s.conn.SetReadDeadline(nextKeepAlive)
		if h.isClosing() || s.versionMoved() {
			continue
		}
		n, err := s.conn.Read(scratch[:])
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			return // closed or reset: the slot is free now
		}
		if s.junk += n; s.junk > maxStreamJunk {
			return
		}
	}
}

// sendNews sends the entries after s.last of the log at version, from the
// hub's cache when another stream encoded the same range.
func (s *eventStream) sendNews(entries []revocation.Entry, version uint64) bool {
	h := &s.feed.streams
	if c := h.frames.Load(); c != nil && c.gen == s.gen && c.from == s.last && c.version == version {
		s.last = c.last
		return s.sendBytes(c.bytes)
	}
	news := after(entries, s.last)
	if len(news) == 0 {
		return true
	}
	from := s.last
	buf := new(bytes.Buffer)
	s.frames(buf, news)
	h.frames.Store(&encodedFrames{gen: s.gen, from: from, version: version, last: s.last, bytes: buf.Bytes()})
	return s.sendBytes(buf.Bytes())
}

// sendBytes sends body, which is shared and must not change, as one chunk.
func (s *eventStream) sendBytes(body []byte) bool {
	if len(body) == 0 {
		return true
	}
	return s.write(nil, body)
}

// versionMoved reports whether the list version differs from the one last
// looked at (or the list cannot be vouched for).
func (s *eventStream) versionMoved() bool {
	v, err := s.feed.view()
	return err != nil || v.cursor.Version != s.seen || v.gen != s.gen
}

// frames appends entries (skipping expired ones) as events to buf. Each
// event carries the log's epoch, and its id is the cursor after it, so
// that a client resuming with Last-Event-ID is checked against the log.
func (s *eventStream) frames(buf *bytes.Buffer, entries []revocation.Entry) {
	now := s.feed.now()
	for _, e := range entries {
		s.last = e.Seq
		if !liveAt(e, now) {
			continue
		}
		e.Epoch = s.cursor.Epoch
		data, err := json.Marshal(e)
		if err != nil {
			continue // cannot happen for these field types
		}
		buf.WriteString("id: ")
		buf.WriteString(revocation.Cursor{Version: e.Seq, Epoch: e.Epoch, Tag: e.Tag}.String())
		buf.WriteString("\nevent: revocation\ndata: ")
		buf.Write(data)
		buf.WriteString("\n\n")
	}
}

// send writes head (if any) and body as one chunk; false when the
// subscriber is gone or stopped reading for streamWriteTimeout.
func (s *eventStream) send(head []byte, body *bytes.Buffer) bool {
	return s.write(head, body.Bytes())
}

func (s *eventStream) write(head, body []byte) bool {
	if len(head) == 0 && len(body) == 0 {
		return true
	}
	var out net.Buffers
	if len(head) > 0 {
		out = append(out, head)
	}
	var size [20]byte
	if s.chunked && len(body) > 0 {
		out = append(out, append(strconv.AppendInt(size[:0], int64(len(body)), 16), '\r', '\n'), body, []byte("\r\n"))
	} else if len(body) > 0 {
		out = append(out, body)
	}
	// A write may wait for a slow reader up to streamWriteTimeout; the
	// deadline is moved only once half of it has passed, which saves a
	// timer change per event on thousands of streams.
	if now := time.Now(); s.writeDeadline.Sub(now) < streamWriteTimeout/2 {
		s.writeDeadline = now.Add(streamWriteTimeout)
		_ = s.conn.SetWriteDeadline(s.writeDeadline)
	}
	_, err := out.WriteTo(s.conn)
	return err == nil
}

func (s *eventStream) sendString(text string) bool {
	h := &s.feed.streams
	buf := h.buffer()
	buf.WriteString(text)
	ok := s.send(nil, buf)
	h.putBuffer(buf)
	return ok
}

// end finishes the body cleanly (the last chunk), so a client sees the
// stream end rather than break.
func (s *eventStream) end() {
	if !s.chunked {
		return
	}
	_ = s.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = s.conn.Write([]byte("0\r\n\r\n"))
}
