package issuer

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/signet-auth/signet/revocation"
	"github.com/signet-auth/signet/store"
)

// RevocationConfig tunes the published revocation list. Zero values mean
// the defaults noted on each field.
type RevocationConfig struct {
	// FalsePositiveRate of the snapshot's bloom filter (default 1e-6).
	FalsePositiveRate float64
	// PollInterval is how often the feed reads new entries from the store
	// even without a signal (default 250ms).
	PollInterval time.Duration
	// MaxDelta is the largest version gap GET /revocations?since= and an
	// SSE resume answer from; past it the client must reload the snapshot
	// (default 10000).
	MaxDelta int
	// KeepAlive is the interval of SSE keep-alive comments (default 15s).
	KeepAlive time.Duration
	// MaxStreams bounds the open event streams (default 10000); past it a
	// new stream is answered 429.
	MaxStreams int
	// MaxStreamsPerClient bounds the open event streams of one client
	// address, an IPv6 address counting for its /64 (default 1000); past
	// it that client is answered 429. Negative: no per-client bound.
	MaxStreamsPerClient int
}

func (c RevocationConfig) withDefaults() RevocationConfig {
	if c.FalsePositiveRate <= 0 || c.FalsePositiveRate >= 1 {
		c.FalsePositiveRate = revocation.DefaultFalsePositiveRate
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 250 * time.Millisecond
	}
	if c.MaxDelta <= 0 {
		c.MaxDelta = 10000
	}
	if c.KeepAlive <= 0 {
		c.KeepAlive = 15 * time.Second
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = defaultMaxStreams
	}
	if c.MaxStreamsPerClient == 0 {
		c.MaxStreamsPerClient = defaultMaxStreamsPerClient
	}
	return c
}

// staleAfter is how long the feed may go without reading the store before
// it stops vouching for its list: another replica may be committing
// revocations this one cannot see, so the list endpoints answer 503,
// event streams end (their keep-alives would tell verifiers they are in
// sync) and /readyz fails, and verifiers move to a replica that works or,
// in time, fail closed.
func (c RevocationConfig) staleAfter() time.Duration {
	return max(20*c.PollInterval, 5*time.Second)
}

const (
	// defaultMaxStreams bounds concurrent SSE subscribers; each costs a
	// goroutine and a connection.
	defaultMaxStreams = 10000
	// defaultMaxStreamsPerClient bounds one address's share of them: room
	// for many verifiers behind one NAT, while one client cannot take the
	// whole of defaultMaxStreams.
	defaultMaxStreamsPerClient = 1000
	// streamWriteTimeout replaces fasthttp's WriteTimeout for SSE streams:
	// the server's deadline is meant for one response, not for a stream
	// that lives for hours. A subscriber that stops reading for this long
	// is dropped.
	streamWriteTimeout = 30 * time.Second
	// snapshotMaxAge makes the cached snapshot be rebuilt now and then
	// even without new entries, so expired ones leave the filter.
	snapshotMaxAge = time.Minute
	// pruneEvery is how often expired entries leave the in-memory log.
	pruneEvery = time.Minute
	// maxTokenIDLen bounds the ids GET /revocations/{id} looks up.
	maxTokenIDLen = 128
)

// revocationFeed follows the store's revocation log and serves it as the
// revocation list: a binary snapshot, JSON deltas, an SSE stream and
// single-id answers.
//
// The in-memory log (entries) is append-only between prunes and a prune
// installs a new slice, so a slice header read under mu is an immutable
// view that readers may use after unlocking.
type revocationFeed struct {
	st  store.Store
	cfg RevocationConfig
	log *slog.Logger
	now func() time.Time

	nudge       chan struct{}
	watchWarned bool          // only run's goroutine touches it
	stopped     chan struct{} // closed when run returns; ends SSE streams
	maxStreams  int64
	streams     streamHub
	// clientOf names the client a request counts against for
	// MaxStreamsPerClient; nil: the connection's address (IPv6 per /64).
	clientOf func(c *fiber.Ctx) string

	mu      sync.RWMutex
	entries []revocation.Entry // live entries, ordered by Seq
	version uint64             // highest Seq seen (the list version)
	loadErr error              // nil once the initial load worked
	loaded  bool
	synced  time.Time     // now() of the last good read of the store
	changed chan struct{} // closed and replaced whenever entries grow
	pruned  time.Time

	buildMu sync.Mutex
	snap    atomic.Pointer[encodedSnapshot]
}

// encodedSnapshot is one built snapshot and its lazily gzipped form.
type encodedSnapshot struct {
	version uint64
	builtAt time.Time
	raw     []byte
	gzOnce  sync.Once
	gz      []byte
}

func (s *encodedSnapshot) gzipped() []byte {
	s.gzOnce.Do(func() {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed) // level is valid
		if _, err := zw.Write(s.raw); err != nil {
			return
		}
		if err := zw.Close(); err != nil {
			return
		}
		s.gz = buf.Bytes()
	})
	return s.gz
}

// newRevocationFeed returns a feed over st. It serves nothing useful until
// run has loaded the log; ready reports when it has.
func newRevocationFeed(st store.Store, cfg RevocationConfig, log *slog.Logger, now func() time.Time) *revocationFeed {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &revocationFeed{
		st:         st,
		cfg:        cfg.withDefaults(),
		log:        log,
		now:        now,
		nudge:      make(chan struct{}, 1),
		stopped:    make(chan struct{}),
		maxStreams: int64(cfg.withDefaults().MaxStreams),
		loadErr:    errors.New("revocation list not loaded yet"),
		changed:    make(chan struct{}),
	}
}

// register mounts the revocation list endpoints on app. Event streams
// take their connection over from fasthttp (KeepHijackedConns), so that an
// idle stream holds no server goroutine or buffers.
func (f *revocationFeed) register(app *fiber.App) {
	app.Server().KeepHijackedConns = true
	app.Get("/revocations", f.handleList)
	app.Get("/revocations/events", f.handleEvents)
	app.Get("/revocations/:id", f.handleOne)
}

// notify asks run to read the store now; it never blocks. Call it after
// committing a revocation so that subscribers hear of it at once.
func (f *revocationFeed) notify() {
	select {
	case f.nudge <- struct{}{}:
	default:
	}
}

// ready reports nil once the initial load of the log has worked, as long
// as the store has been read within staleAfter.
func (f *revocationFeed) ready() error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.unavailableLocked()
}

// unavailableLocked says why the feed cannot vouch for its list; nil when
// it can. The caller holds mu.
func (f *revocationFeed) unavailableLocked() error {
	if f.loadErr != nil {
		return fmt.Errorf("revocation list: %w", f.loadErr)
	}
	if age := f.now().Sub(f.synced); age > f.cfg.staleAfter() {
		return fmt.Errorf("revocation list: the store was last read %s ago", age.Round(time.Millisecond))
	}
	return nil
}

// run follows the store until ctx ends: a full load first (retried until it
// works), then a read of new entries every PollInterval, on every nudge and
// on every signal of a RevocationWatcher store.
func (f *revocationFeed) run(ctx context.Context) {
	defer close(f.stopped)
	watch, rewatchAt := f.watch(ctx), time.Time{}
	ticker := time.NewTicker(f.cfg.PollInterval)
	defer ticker.Stop()
	failing := false
	for {
		err := f.sync(ctx)
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			f.log.Warn("revocation feed: reading the store failed; retrying", "err", err)
			failing = true
		case err == nil && failing:
			f.log.Info("revocation feed: reading the store works again")
			failing = false
		}
		if _, ok := f.st.(store.RevocationWatcher); ok && watch == nil && f.now().After(rewatchAt) {
			if watch = f.watch(ctx); watch == nil {
				rewatchAt = f.now().Add(10 * f.cfg.PollInterval)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-f.nudge:
		case _, ok := <-watch:
			if !ok {
				watch = nil // the watcher gave up (connection lost); polling goes on
				rewatchAt = f.now().Add(10 * f.cfg.PollInterval)
			}
		}
	}
}

// watch subscribes to the store's signals when it offers them; nil otherwise.
func (f *revocationFeed) watch(ctx context.Context) <-chan struct{} {
	w, ok := f.st.(store.RevocationWatcher)
	if !ok {
		return nil
	}
	ch, err := w.WatchRevocations(ctx)
	if err != nil {
		if ctx.Err() == nil && !f.watchWarned {
			f.log.Warn("revocation feed: watching the store failed; polling until it works", "err", err)
			f.watchWarned = true
		}
		return nil
	}
	f.watchWarned = false
	return ch
}

// sync loads the whole log the first time and appends new entries after.
func (f *revocationFeed) sync(ctx context.Context) error {
	f.mu.RLock()
	loaded, since := f.loaded, f.version
	f.mu.RUnlock()
	now := f.now()
	if !loaded {
		return f.load(ctx, now)
	}
	// The state first, as in load: an entry that expired before it was
	// read (revoking an already expired token, which regenerate does) is
	// never listed, but its Seq must still raise the version. Otherwise a
	// replica started after it answers a higher version than one started
	// before, and a verifier moving between them is sent to reload the
	// snapshot (410) each time.
	state, err := f.st.RevocationState(ctx)
	if err != nil {
		return fmt.Errorf("read revocation state: %w", err)
	}
	recs, err := f.st.ListRevocations(ctx, int64(since), now.Add(-revocation.ExpiryGrace))
	if err != nil {
		return fmt.Errorf("list revocations since %d: %w", since, err)
	}
	f.append(recs, uint64(max(state.Latest, 0)), now)
	if now.Sub(f.prunedAt()) >= pruneEvery {
		f.prune(now)
	}
	return nil
}

func (f *revocationFeed) load(ctx context.Context, now time.Time) error {
	// The state first: an entry committed between the two reads then only
	// raises the version further, never hides below it.
	state, err := f.st.RevocationState(ctx)
	if err == nil {
		var recs []store.Revocation
		if recs, err = f.st.ListRevocations(ctx, 0, now.Add(-revocation.ExpiryGrace)); err == nil {
			// One critical section: nobody may see "loaded" before the
			// entries and version are in place.
			f.mu.Lock()
			defer f.mu.Unlock()
			f.loaded, f.loadErr, f.pruned, f.synced = true, nil, now, now
			f.appendLocked(recs, uint64(max(state.Latest, 0)))
			return nil
		}
	}
	err = fmt.Errorf("load revocation list: %w", err)
	f.mu.Lock()
	f.loadErr = err
	f.mu.Unlock()
	return err
}

// append adds recs (ordered by Seq), read from the store at now, after the
// known ones and raises the version to at least floor; subscribers are
// woken when anything changed.
func (f *revocationFeed) append(recs []store.Revocation, floor uint64, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.synced = now
	f.appendLocked(recs, floor)
}

func (f *revocationFeed) appendLocked(recs []store.Revocation, floor uint64) {
	grew := false
	for _, r := range recs {
		e, ok := entryOf(r)
		if !ok {
			f.log.Warn("revocation feed: skipping malformed log entry", "seq", r.Seq, "kind", string(r.Kind))
			continue
		}
		if e.Seq <= f.version {
			continue
		}
		f.entries = append(f.entries, e)
		f.version = e.Seq
		grew = true
	}
	if floor > f.version {
		f.version, grew = floor, true
	}
	if grew {
		close(f.changed)
		f.changed = make(chan struct{})
	}
}

func (f *revocationFeed) prunedAt() time.Time {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.pruned
}

// prune drops expired entries into a new slice, leaving earlier views intact.
// Only run's goroutine writes entries, so it reads them here without the
// lock and copies a large log without holding readers up; when nothing
// expired it copies nothing.
func (f *revocationFeed) prune(now time.Time) {
	var live []revocation.Entry
	for i, e := range f.entries {
		switch {
		case live != nil:
			if liveAt(e, now) {
				live = append(live, e)
			}
		case !liveAt(e, now):
			live = make([]revocation.Entry, i, len(f.entries))
			copy(live, f.entries[:i])
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pruned = now
	if live != nil {
		f.entries = live
	}
}

// liveAt reports whether e is still on the list at now (see
// revocation.ExpiryGrace).
func liveAt(e revocation.Entry, now time.Time) bool {
	return revocation.Live(e.ExpiresAt, now)
}

// entryOf maps a store log entry to its wire form.
func entryOf(r store.Revocation) (revocation.Entry, bool) {
	if r.Seq <= 0 {
		return revocation.Entry{}, false
	}
	e := revocation.Entry{
		Seq:       uint64(r.Seq),
		Kind:      revocation.Kind(r.Kind),
		Org:       r.Org,
		RevokedAt: r.RevokedAt.UTC(),
		ExpiresAt: r.ExpiresAt.UTC(),
	}
	switch r.Kind {
	case store.RevokeToken:
		e.TokenID = r.Value
	case store.RevokeSubject:
		e.Subject, e.NotBefore = r.Value, r.NotBefore.UTC()
	case store.RevokeKey:
		e.KeyID = r.Value
	}
	return e, e.Validate() == nil
}

// view returns the current log, its version and the channel closed on the
// next change; ECodeUnavailable when the log is not loaded or stale.
func (f *revocationFeed) view() ([]revocation.Entry, uint64, <-chan struct{}, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if err := f.unavailableLocked(); err != nil {
		return nil, 0, nil, errorf(ECodeUnavailable, "The revocation list is not available right now; try again shortly.")
	}
	return f.entries, f.version, f.changed, nil
}

// after returns the entries of view with Seq > since.
func after(entries []revocation.Entry, since uint64) []revocation.Entry {
	i := sort.Search(len(entries), func(i int) bool { return entries[i].Seq > since })
	return entries[i:]
}

// tooOld reports whether a client at version since must reload the
// snapshot instead of catching up from the log at version latest.
func (f *revocationFeed) tooOld(since, latest uint64) bool {
	return since > latest || latest-since > uint64(f.cfg.MaxDelta)
}

// handleList serves GET /revocations (the snapshot) and
// GET /revocations?since=V (a delta).
func (f *revocationFeed) handleList(c *fiber.Ctx) error {
	args := c.Context().QueryArgs()
	if args.Has("since") {
		since, err := strconv.ParseUint(string(args.Peek("since")), 10, 64)
		if err != nil {
			return errorf(ECodeInvalid, "The since parameter must be a list version (a non-negative integer).")
		}
		return f.serveDelta(c, since)
	}
	_, version, _, err := f.view()
	if err != nil {
		return err
	}
	// The version names the list's content (expired entries leaving the
	// filter change nothing a verifier needs), so a matching client is
	// answered before any snapshot is built.
	etag := `"` + strconv.FormatUint(version, 10) + `"`
	c.Set(fiber.HeaderETag, etag)
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderVary, fiber.HeaderAcceptEncoding)
	if etagMatches(c.Get(fiber.HeaderIfNoneMatch), etag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	snap, err := f.snapshot(version)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, `"`+strconv.FormatUint(snap.version, 10)+`"`)
	c.Set(fiber.HeaderContentType, revocation.ContentType)
	if acceptsGzip(c.Get(fiber.HeaderAcceptEncoding)) {
		if gz := snap.gzipped(); gz != nil {
			c.Set(fiber.HeaderContentEncoding, "gzip")
			return c.Send(gz)
		}
	}
	return c.Send(snap.raw)
}

func (f *revocationFeed) serveDelta(c *fiber.Ctx, since uint64) error {
	entries, version, _, err := f.view()
	if err != nil {
		return err
	}
	if f.tooOld(since, version) {
		return errorf(ECodeGone, "Version %d cannot be answered from the log (latest is %d); load the snapshot from GET /revocations.", since, version)
	}
	now := f.now()
	d := revocation.Delta{From: since, Version: version, Entries: []revocation.Entry{}}
	for _, e := range after(entries, since) {
		if liveAt(e, now) {
			d.Entries = append(d.Entries, e)
		}
	}
	c.Set(fiber.HeaderCacheControl, "no-cache")
	return c.JSON(d)
}

// snapshot returns an encoded snapshot of at least version, building it
// when the cached one is older or past snapshotMaxAge. Concurrent callers
// share one build.
func (f *revocationFeed) snapshot(version uint64) (*encodedSnapshot, error) {
	now := f.now()
	fresh := func(s *encodedSnapshot) bool {
		return s != nil && s.version >= version && now.Sub(s.builtAt) < snapshotMaxAge
	}
	if s := f.snap.Load(); fresh(s) {
		return s, nil
	}
	f.buildMu.Lock()
	defer f.buildMu.Unlock()
	if s := f.snap.Load(); fresh(s) {
		return s, nil
	}
	// Build the newest view, not the one the caller saw: with a large list
	// a build takes a good fraction of a second, and callers queued behind
	// it while revocations keep coming then find this build fresh instead
	// of each building its own version in turn.
	entries, latest, _, err := f.view()
	if err != nil {
		return nil, err
	}
	now = f.now()
	raw, err := revocation.NewSnapshot(latest, now, entries, f.cfg.FalsePositiveRate).MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode revocation snapshot %d: %w", latest, err)
	}
	s := &encodedSnapshot{version: latest, builtAt: now, raw: raw}
	f.snap.Store(s)
	return s, nil
}

// etagMatches implements If-None-Match (RFC 9110 §13.1.2, weak comparison).
func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == etag {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(part, ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name != "gzip" && name != "x-gzip" && name != "*" {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if x, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = x
				}
			}
		}
		return q > 0
	}
	return false
}

// handleOne serves GET /revocations/{id}: the exact answer for one token id.
func (f *revocationFeed) handleOne(c *fiber.Ctx) error {
	id := c.Params("id")
	if !validTokenID(id) {
		// No such id can ever be revoked; the contract answers only 200 or
		// 404 here, and the store is not asked.
		return errorf(ECodeNotFound, "That token id is not on the revocation list.")
	}
	rev, err := f.st.GetTokenRevocation(c.UserContext(), id)
	if errors.Is(err, store.ErrNotFound) {
		return errorf(ECodeNotFound, "That token id is not on the revocation list.")
	}
	if err != nil {
		return fmt.Errorf("look up revocation of token %s: %w", id, err)
	}
	e, ok := entryOf(rev)
	if !ok || e.Kind != revocation.KindToken || !liveAt(e, f.now()) {
		return errorf(ECodeNotFound, "That token id is not on the revocation list.")
	}
	c.Set(fiber.HeaderCacheControl, "no-cache")
	return c.JSON(e)
}

func validTokenID(id string) bool {
	if id == "" || len(id) > maxTokenIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch b := id[i]; {
		case b >= 'A' && b <= 'Z', b >= 'a' && b <= 'z', b >= '0' && b <= '9', b == '-', b == '_':
		default:
			return false
		}
	}
	return true
}

// handleEvents serves GET /revocations/events as Server-Sent Events: a
// "hello" event with the current version, then (when the client resumes
// with Last-Event-ID or ?since=) the entries after that point or a "reset"
// event when it is too old, then every entry as it commits (event
// "revocation", id = Seq), with keep-alive comments in between.
func (f *revocationFeed) handleEvents(c *fiber.Ctx) error {
	resume, hasResume := c.Get("Last-Event-ID"), false
	if resume == "" {
		if args := c.Context().QueryArgs(); args.Has("since") {
			resume = string(args.Peek("since"))
		}
	}
	var from uint64
	if resume != "" {
		v, err := strconv.ParseUint(strings.TrimSpace(resume), 10, 64)
		if err != nil {
			return errorf(ECodeInvalid, "Last-Event-ID and since must be a list version (a non-negative integer).")
		}
		from, hasResume = v, true
	}
	entries, version, _, err := f.view()
	if err != nil {
		return err
	}

	var pending []revocation.Entry
	reset := false
	switch {
	case !hasResume:
		from = version
	case f.tooOld(from, version):
		reset, from = true, version
	default:
		pending = after(entries, from)
	}

	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set("X-Accel-Buffering", "no")
	if c.Method() == fiber.MethodHead {
		return nil
	}
	client := f.client(c)
	if err := f.streams.admit(client, f.maxStreams, f.cfg.MaxStreamsPerClient); err != nil {
		return err
	}
	rc := c.Context()
	st := &eventStream{
		feed:    f,
		conn:    rc.Conn(),
		client:  client,
		chunked: rc.Request.Header.IsHTTP11(),
		last:    from,
		seen:    version,
		version: version,
		pending: pending,
		reset:   reset,
	}
	st.header = streamHeader(c, st.chunked)
	f.streams.watch(f, rc.Done())
	// The stream runs on its own goroutine with the bare connection:
	// fasthttp releases the request, its buffers and its worker as soon as
	// this hijack handler returns.
	rc.HijackSetNoResponse(true)
	rc.Hijack(func(net.Conn) { go st.serve() })
	return nil
}

// client is the key a request's streams are counted under.
func (f *revocationFeed) client(c *fiber.Ctx) string {
	if f.clientOf != nil {
		return f.clientOf(c)
	}
	return clientKey(c.Context().RemoteIP().String())
}

// openStreams is the number of event streams being served.
func (f *revocationFeed) openStreams() int {
	return f.streams.open()
}
