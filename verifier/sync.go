package verifier

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"mime"
	"net/http"
	"time"

	"github.com/signet-auth/signet/revocation"
)

const (
	// maxSnapshotSize bounds a snapshot download (1M revocations are
	// about 3.6 MB).
	maxSnapshotSize = 256 << 20
	// maxDeltaSize bounds one GET /revocations?since= answer.
	maxDeltaSize = 64 << 20
	// streamIdleTimeout drops an event stream that sent nothing, not even
	// a keep-alive, for this long.
	streamIdleTimeout = time.Minute
	// maxEventLine bounds one line of the event stream.
	maxEventLine = 64 << 10
	minBackoff   = 250 * time.Millisecond
	maxBackoff   = 15 * time.Second
	// snapshotRefresh is how often the snapshot is re-read (with
	// If-None-Match) to drop expired ids and confirmed negatives.
	snapshotRefresh = time.Hour
	// pendingCheck is how often revocations that take effect later are
	// checked for having come due (so that cached tokens are checked
	// again): well within the second a revocation may take to apply.
	pendingCheck = 100 * time.Millisecond
)

// loadSnapshot fetches GET /revocations. With reset, the snapshot replaces
// the cursor even when older (the issuer's log was replaced or restored, or
// we are too far behind); otherwise If-None-Match (the ETag is the
// snapshot's cursor) spares an unchanged download.
func (v *Verifier) loadSnapshot(ctx context.Context, reset bool) error {
	var hdr http.Header
	v.rev.mu.RLock()
	if s := v.rev.snap; s != nil && !reset {
		hdr = http.Header{"If-None-Match": {`"` + s.Cursor().String() + `"`}}
	}
	v.rev.mu.RUnlock()
	body, status, err := v.get(ctx, v.listURL, maxSnapshotSize, hdr)
	if err != nil {
		return fmt.Errorf("fetch revocation snapshot: %w", err)
	}
	switch status {
	case http.StatusNotModified:
		v.markSynced()
		return nil
	case http.StatusOK:
	default:
		return fmt.Errorf("fetch revocation snapshot: status %d", status)
	}
	s, err := revocation.Decode(body)
	if err != nil {
		return fmt.Errorf("decode revocation snapshot: %w", err)
	}
	v.installSnapshot(s, reset)
	v.markSynced()
	return nil
}

// poll fetches GET /revocations?since=<cursor> once; 410 (too far behind,
// or the cursor is not on the issuer's log: it was replaced or restored)
// reloads the snapshot.
func (v *Verifier) poll(ctx context.Context) error {
	cur := v.currentCursor()
	ver := cur.Version
	body, status, err := v.get(ctx, v.listURL+"?since="+cur.String(), maxDeltaSize, nil)
	if err != nil {
		return fmt.Errorf("poll revocations: %w", err)
	}
	switch status {
	case http.StatusOK:
		var d revocation.Delta
		if err := json.Unmarshal(body, &d); err != nil {
			return fmt.Errorf("poll revocations: decode delta: %w", err)
		}
		if d.From != ver {
			return fmt.Errorf("poll revocations: delta from %d, asked for %d", d.From, ver)
		}
		if d.Epoch != cur.Epoch {
			// Another log under the same URL (an issuer that does not
			// check cursors would answer with it).
			return v.loadSnapshot(ctx, true)
		}
		v.applyEntries(d.Entries, d.Cursor())
		v.markSynced()
		return nil
	case http.StatusGone:
		return v.loadSnapshot(ctx, true)
	default:
		return fmt.Errorf("poll revocations: status %d", status)
	}
}

// syncLoop keeps the list current until Close: it follows the event stream
// and, whenever the stream is down (or disabled), polls.
func (v *Verifier) syncLoop() {
	defer v.wg.Done()
	ctx := v.bg
	backoff := minBackoff
	nextStream := time.Now()
	var streamFailing, pollFailing bool
	for ctx.Err() == nil {
		if !v.cfg.DisableSSE && !time.Now().Before(nextStream) {
			connected, err := v.follow(ctx)
			if ctx.Err() != nil {
				return
			}
			if connected {
				backoff = minBackoff
			} else {
				backoff = min(2*backoff, maxBackoff)
			}
			if err != nil && !connected && !streamFailing {
				v.log.Warn("verifier: revocation event stream unavailable; polling meanwhile", "issuer", v.issuer, "err", err)
			}
			streamFailing = !connected
			// Jitter spreads many verifiers' reconnects after an issuer
			// restart.
			nextStream = time.Now().Add(backoff/2 + rand.N(backoff/2+1))
		}
		err := v.poll(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !pollFailing:
			v.log.Warn("verifier: syncing the revocation list failed; keeping the last one", "issuer", v.issuer, "err", err)
			pollFailing = true
		case err == nil && pollFailing:
			v.log.Info("verifier: revocation list in sync again", "issuer", v.issuer)
			pollFailing = false
		}
		wait := v.cfg.PollInterval
		if !v.cfg.DisableSSE {
			wait = max(0, min(wait, time.Until(nextStream)))
		}
		if !sleep(ctx, wait) {
			return
		}
	}
}

// maintain refreshes the key set and the snapshot now and then, and
// forgets expired exact entries.
func (v *Verifier) maintain() {
	defer v.wg.Done()
	keys := time.NewTicker(v.cfg.JWKSRefreshInterval)
	defer keys.Stop()
	snap := time.NewTicker(snapshotRefresh)
	defer snap.Stop()
	pending := time.NewTicker(pendingCheck)
	defer pending.Stop()
	for {
		select {
		case <-v.bg.Done():
			return
		case <-pending.C:
			v.duePending(v.cfg.Now())
		case <-keys.C:
			if _, err := v.refreshKeys(v.bg, true); err != nil && v.bg.Err() == nil {
				v.log.Warn("verifier: refreshing the key set failed; keeping the last one", "issuer", v.issuer, "err", err)
			}
			v.pruneRevocations(v.cfg.Now())
		case <-snap.C:
			ctx, cancel := context.WithTimeout(v.bg, time.Minute)
			if err := v.loadSnapshot(ctx, false); err != nil && v.bg.Err() == nil {
				v.log.Warn("verifier: refreshing the revocation snapshot failed", "issuer", v.issuer, "err", err)
			}
			cancel()
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// follow reads the event stream until it breaks. connected reports whether
// the issuer greeted us (so the break deserves a quick reconnect).
func (v *Verifier) follow(ctx context.Context) (connected bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, v.eventsURL, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	req.Header.Set("Last-Event-ID", v.currentCursor().String())
	idle := time.AfterFunc(streamIdleTimeout, cancel)
	defer idle.Stop()
	resp, err := v.stream.Do(req)
	if err != nil {
		return false, fmt.Errorf("open event stream: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("open event stream: status %d", resp.StatusCode)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return false, fmt.Errorf("open event stream: content type %q", clip(resp.Header.Get("Content-Type")))
	}
	br := bufio.NewReaderSize(resp.Body, maxEventLine)
	var event string
	var data []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return connected, errors.New("event stream: line too long")
			}
			return connected, fmt.Errorf("event stream: %w", err)
		}
		idle.Reset(streamIdleTimeout)
		line = trimEOL(line)
		if len(line) == 0 {
			if err := v.dispatch(ctx, event, data, &connected); err != nil {
				return connected, err
			}
			event, data = "", data[:0]
			continue
		}
		if line[0] == ':' { // a keep-alive comment: the issuer is there
			if connected {
				v.markSynced()
			}
			continue
		}
		field, value := line, []byte(nil)
		for i, c := range line {
			if c == ':' {
				field, value = line[:i], line[i+1:]
				if len(value) > 0 && value[0] == ' ' {
					value = value[1:]
				}
				break
			}
		}
		switch string(field) {
		case "event":
			event = string(value)
		case "data":
			if len(data) > 0 {
				data = append(data, '\n')
			}
			data = append(data, value...)
			if len(data) > maxEventLine {
				return connected, errors.New("event stream: event too large")
			}
		}
	}
}

func trimEOL(b []byte) []byte {
	b = b[:len(b)-1] // the '\n' ReadSlice stopped at
	if n := len(b); n > 0 && b[n-1] == '\r' {
		b = b[:n-1]
	}
	return b
}

// dispatch applies one event.
func (v *Verifier) dispatch(ctx context.Context, event string, data []byte, connected *bool) error {
	switch event {
	case "hello":
		var h struct {
			Epoch string `json:"epoch"`
		}
		if err := json.Unmarshal(data, &h); err != nil {
			return fmt.Errorf("event stream: decode hello: %w", err)
		}
		if h.Epoch != v.currentCursor().Epoch {
			// Another log under the same URL; an issuer that checks
			// cursors says "reset" right after, but one that does not
			// would stream entries we cannot place.
			if err := v.loadSnapshot(ctx, true); err != nil {
				return err
			}
		}
		*connected = true
		v.markSynced()
	case "reset":
		// Our version is too old (or from another log): reload the
		// snapshot; the stream goes on from the issuer's version.
		if err := v.loadSnapshot(ctx, true); err != nil {
			return err
		}
		// A snapshot older than that version (served by a replica behind
		// the one streaming) leaves a gap the stream never fills: end the
		// stream, so that the poll after it catches up from the snapshot
		// and the next stream resumes from there.
		var r struct {
			Version uint64 `json:"version"`
		}
		if err := json.Unmarshal(data, &r); err != nil || v.currentVersion() < r.Version {
			return errors.New("event stream: the snapshot is behind the stream; resuming from the snapshot")
		}
	case "revocation":
		var e revocation.Entry
		if err := json.Unmarshal(data, &e); err != nil {
			return fmt.Errorf("event stream: decode entry: %w", err)
		}
		if err := e.Validate(); err != nil {
			return fmt.Errorf("event stream: %w", err)
		}
		cur := v.currentCursor()
		if e.Epoch != cur.Epoch {
			return errors.New("event stream: an entry of another log; resuming from a snapshot")
		}
		v.applyEntries([]revocation.Entry{e}, revocation.Cursor{Version: e.Seq, Epoch: e.Epoch, Tag: e.Tag})
		v.markSynced()
	}
	return nil
}
