package issuer

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
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
// single-id answers. It owns the issuer's revocation.Index, which the
// token lookups ask (revoked, cutoff) after the feed has caught up with
// the store.
//
// The in-memory log (entries) is append-only between prunes and a prune
// installs a new slice, so a slice header read under mu is an immutable
// view that readers may use after unlocking.
//
// The feed follows one log, named by its epoch; its position is a
// revocation.Cursor. When the store's log is not a continuation of the one
// followed (a new database, a restore from a backup: another epoch, a
// lower version, or another tag at a version the feed has seen), the feed
// loads it afresh and bumps gen; streams then send "reset", and readers
// resuming from a position that is not on the new log are sent to the
// snapshot (continues).
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
	epoch   string             // the followed log's epoch
	head    string             // the tag of entry version
	gen     int                // bumped whenever the log is loaded afresh
	index   *revocation.Index  // the meaning of entries (and of expired ones not yet pruned)
	loadErr error              // nil once the initial load worked
	loaded  bool
	synced  time.Time     // now() of the last good read of the store
	changed chan struct{} // closed and replaced whenever entries grow
	pruned  time.Time

	// Sync passes, so that a token lookup can wait for one that read the
	// store after it was asked (caughtUp).
	passStarted uint64
	passDone    uint64
	passErr     error
	passed      chan struct{} // closed and replaced when a pass ends

	buildMu sync.Mutex
	snap    atomic.Pointer[encodedSnapshot]
}

// encodedSnapshot is one built snapshot and its lazily gzipped form.
type encodedSnapshot struct {
	cursor  revocation.Cursor
	gen     int
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
		index:      revocation.NewIndex(),
		passed:     make(chan struct{}),
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
		f.mu.Lock()
		f.passStarted++
		pass := f.passStarted
		f.mu.Unlock()
		err := f.sync(ctx)
		f.mu.Lock()
		f.passDone, f.passErr = pass, err
		close(f.passed)
		f.passed = make(chan struct{})
		f.mu.Unlock()
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
	loaded, since, cur := f.loaded, f.version, f.cursorLocked()
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
	if same, err := f.sameLog(ctx, state, cur); err != nil {
		return err
	} else if !same {
		f.log.Warn("revocation feed: the store's revocation log is not the one followed (database restored from a backup or replaced); loading it afresh",
			"epoch", state.Epoch, "version", state.Latest, "followed_epoch", cur.Epoch, "followed_version", cur.Version)
		return f.load(ctx, now)
	}
	recs, err := f.st.ListRevocations(ctx, int64(since), now.Add(-revocation.ExpiryGrace))
	if err != nil {
		return fmt.Errorf("list revocations since %d: %w", since, err)
	}
	f.append(recs, state, now)
	if now.Sub(f.prunedAt()) >= pruneEvery {
		f.prune(now)
	}
	return nil
}

// sameLog reports whether the store's log, in state, continues the one the
// feed follows at cur: the same epoch, not behind, and the same tag at the
// followed version (a restored database reuses Seqs with new tags). A
// followed entry the store no longer holds (pruned) cannot be checked and
// counts as another log: a reload is only a full read.
func (f *revocationFeed) sameLog(ctx context.Context, state store.RevocationState, cur revocation.Cursor) (bool, error) {
	latest := uint64(max(state.Latest, 0))
	switch {
	case state.Epoch != cur.Epoch || latest < cur.Version:
		return false, nil
	case latest == cur.Version:
		return state.Head == cur.Tag, nil
	case cur.Version == 0 || cur.Tag == "": // nothing to compare (entries from before tags)
		return true, nil
	}
	tag, err := f.st.RevocationTag(ctx, int64(cur.Version))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read revocation %d: %w", cur.Version, err)
	}
	return tag == cur.Tag, nil
}

// load reads the whole live log and replaces what the feed holds.
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
			if f.loaded {
				f.gen++
			}
			f.loaded, f.loadErr, f.pruned, f.synced = true, nil, now, now
			f.entries, f.version, f.epoch, f.head, f.index = nil, 0, state.Epoch, "", revocation.NewIndex()
			f.appendLocked(recs, state)
			close(f.changed) // wakes streams even when the new log is empty
			f.changed = make(chan struct{})
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
// known ones and raises the version to at least the state's; subscribers
// are woken when anything changed.
func (f *revocationFeed) append(recs []store.Revocation, state store.RevocationState, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.synced = now
	f.appendLocked(recs, state)
}

func (f *revocationFeed) appendLocked(recs []store.Revocation, state store.RevocationState) {
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
		if _, err := f.index.Apply(e); err != nil {
			f.log.Warn("revocation feed: skipping malformed log entry", "seq", r.Seq, "err", err)
			continue
		}
		f.entries = append(f.entries, e)
		f.version, f.head = e.Seq, e.Tag
		grew = true
	}
	// Entries that expired before they were read are not listed, but
	// their Seq (and tag) still move the version: see sync.
	if floor := uint64(max(state.Latest, 0)); floor > f.version {
		f.version, f.head, grew = floor, state.Head, true
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
		f.index.Prune(now)
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
		Tag:       r.Tag,
		Kind:      revocation.Kind(r.Kind),
		Org:       r.Org,
		RevokedAt: r.RevokedAt.UTC(),
		ExpiresAt: r.ExpiresAt.UTC(),
	}
	switch r.Kind {
	case store.RevokeToken:
		e.TokenID = r.Value
		if !r.ValidUntil.IsZero() {
			e.ValidUntil = r.ValidUntil.UTC()
		}
	case store.RevokeSubject:
		e.Subject, e.NotBefore = r.Value, r.NotBefore.UTC()
	case store.RevokeKey:
		e.KeyID = r.Value
	}
	return e, e.Validate() == nil
}

// logView is one consistent view of the followed log.
type logView struct {
	entries []revocation.Entry
	cursor  revocation.Cursor
	gen     int
	changed <-chan struct{} // closed on the next change
}

// view returns the current log; ECodeUnavailable when it is not loaded or
// stale.
func (f *revocationFeed) view() (logView, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if err := f.unavailableLocked(); err != nil {
		return logView{}, errorf(ECodeUnavailable, "The revocation list is not available right now; try again shortly.")
	}
	return logView{entries: f.entries, cursor: f.cursorLocked(), gen: f.gen, changed: f.changed}, nil
}

// cursorLocked is the feed's position; the caller holds mu.
func (f *revocationFeed) cursorLocked() revocation.Cursor {
	return revocation.Cursor{Version: f.version, Epoch: f.epoch, Tag: f.head}
}

// continues reports whether a reader at c is on the log of v: a bare
// version is taken on trust (clients that never saw an epoch); a cursor
// must name v's epoch and a version v reached, with the tag v has there.
// Tags of entries that left the in-memory log are read from the store.
func (f *revocationFeed) continues(ctx context.Context, v logView, c revocation.Cursor) (bool, error) {
	switch {
	case c.Epoch == "":
		return true, nil
	case c.Epoch != v.cursor.Epoch || c.Version > v.cursor.Version:
		return false, nil
	case c.Version == v.cursor.Version:
		return c.Tag == v.cursor.Tag, nil
	case c.Version == 0:
		return c.Tag == "", nil
	}
	es := v.entries
	if i := sort.Search(len(es), func(i int) bool { return es[i].Seq >= c.Version }); i < len(es) && es[i].Seq == c.Version {
		return es[i].Tag == c.Tag, nil
	}
	tag, err := f.st.RevocationTag(ctx, int64(c.Version))
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read revocation %d: %w", c.Version, err)
	}
	return tag == c.Tag, nil
}

// catchUpWait bounds how long a token lookup waits for the feed.
const catchUpWait = 10 * time.Second

// caughtUp returns once a sync pass that started after the call has read
// the store, so that a lookup sees every revocation committed before it
// (by this process, another replica or the CLI). It needs run; without it
// (a Server whose Run was not called) it fails after catchUpWait.
func (f *revocationFeed) caughtUp(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, catchUpWait)
	defer cancel()
	f.mu.RLock()
	target := f.passStarted + 1
	f.mu.RUnlock()
	f.notify()
	for {
		f.mu.RLock()
		done, err, passed := f.passDone, f.passErr, f.passed
		f.mu.RUnlock()
		if done >= target {
			if err != nil {
				return fmt.Errorf("read the revocation log: %w", err)
			}
			return nil
		}
		select {
		case <-passed:
		case <-f.stopped:
			return errorf(ECodeUnavailable, "The revocation list is not available right now; try again shortly.")
		case <-ctx.Done():
			return fmt.Errorf("wait for the revocation log: %w", ctx.Err())
		}
	}
}

// revoked reports, once caught up with the store, which of refs the
// revocation list revokes at now (a withdrawn key, a subject cut-off, a
// token entry: the Index's rules).
func (f *revocationFeed) revoked(ctx context.Context, now time.Time, refs ...revocation.TokenRef) ([]bool, error) {
	if err := f.caughtUp(ctx); err != nil {
		return nil, err
	}
	out := make([]bool, len(refs))
	f.mu.RLock()
	defer f.mu.RUnlock()
	for i, r := range refs {
		_, out[i] = f.index.Revoked(r, now)
	}
	return out, nil
}

// cutoff returns, once caught up with the store, the cut-off of
// org/subject in force at now (zero when none).
func (f *revocationFeed) cutoff(ctx context.Context, org, subject string, now time.Time) (time.Time, error) {
	if err := f.caughtUp(ctx); err != nil {
		return time.Time{}, err
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.index.Cutoff(org, subject, now), nil
}

// tokenRef is what the index needs of a token record; IssuedAt is the iat
// claim, whole seconds, as verifiers see it.
func tokenRef(r store.TokenRecord) revocation.TokenRef {
	return revocation.TokenRef{ID: r.ID, Org: r.Org, Subject: r.Subject, IssuedAt: r.IssuedAt.Truncate(time.Second), KeyID: r.KeyID}
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
		since, err := revocation.ParseCursor(string(args.Peek("since")))
		if err != nil {
			return errorf(ECodeInvalid, "The since parameter must be a list version (a non-negative integer) or the ETag of a snapshot.")
		}
		return f.serveDelta(c, since)
	}
	v, err := f.view()
	if err != nil {
		return err
	}
	// The cursor names the list's content (expired entries leaving the
	// filter change nothing a verifier needs), so a matching client is
	// answered before any snapshot is built.
	etag := `"` + v.cursor.String() + `"`
	c.Set(fiber.HeaderETag, etag)
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderVary, fiber.HeaderAcceptEncoding)
	if etagMatches(c.Get(fiber.HeaderIfNoneMatch), etag) {
		return c.SendStatus(fiber.StatusNotModified)
	}
	snap, err := f.snapshot(v.cursor.Version, v.gen)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, `"`+snap.cursor.String()+`"`)
	c.Set(fiber.HeaderContentType, revocation.ContentType)
	if acceptsGzip(c.Get(fiber.HeaderAcceptEncoding)) {
		if gz := snap.gzipped(); gz != nil {
			c.Set(fiber.HeaderContentEncoding, "gzip")
			return c.Send(gz)
		}
	}
	return c.Send(snap.raw)
}

func (f *revocationFeed) serveDelta(c *fiber.Ctx, cur revocation.Cursor) error {
	v, err := f.view()
	if err != nil {
		return err
	}
	since, version := cur.Version, v.cursor.Version
	if f.tooOld(since, version) {
		return errorf(ECodeGone, "Version %d cannot be answered from the log (latest is %d); load the snapshot from GET /revocations.", since, version)
	}
	ok, err := f.continues(c.UserContext(), v, cur)
	if err != nil {
		return err
	}
	if !ok {
		return errorf(ECodeGone, "That position is not on this revocation log (its database was restored or replaced); load the snapshot from GET /revocations.")
	}
	now := f.now()
	d := revocation.Delta{From: since, Version: version, Epoch: v.cursor.Epoch, Tag: v.cursor.Tag, Entries: []revocation.Entry{}}
	for _, e := range after(v.entries, since) {
		if liveAt(e, now) {
			d.Entries = append(d.Entries, e)
		}
	}
	c.Set(fiber.HeaderCacheControl, "no-cache")
	return c.JSON(d)
}

// snapshot returns an encoded snapshot of at least version of log gen,
// building it when the cached one is older, of an earlier log or past
// snapshotMaxAge. Concurrent callers share one build.
func (f *revocationFeed) snapshot(version uint64, gen int) (*encodedSnapshot, error) {
	now := f.now()
	fresh := func(s *encodedSnapshot) bool {
		return s != nil && s.gen >= gen && s.version >= version && now.Sub(s.builtAt) < snapshotMaxAge
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
	v, err := f.view()
	if err != nil {
		return nil, err
	}
	now = f.now()
	latest := v.cursor.Version
	snap := revocation.NewSnapshot(latest, now, v.entries, f.cfg.FalsePositiveRate)
	snap.Epoch, snap.Tag = v.cursor.Epoch, v.cursor.Tag
	raw, err := snap.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode revocation snapshot %d: %w", latest, err)
	}
	s := &encodedSnapshot{cursor: v.cursor, gen: v.gen, version: latest, builtAt: now, raw: raw}
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
	var from revocation.Cursor
	if resume != "" {
		cur, err := revocation.ParseCursor(strings.TrimSpace(resume))
		if err != nil {
			return errorf(ECodeInvalid, "Last-Event-ID and since must be a list version (a non-negative integer) or an event id.")
		}
		from, hasResume = cur, true
	}
	v, err := f.view()
	if err != nil {
		return err
	}
	onLog := true
	if hasResume && !f.tooOld(from.Version, v.cursor.Version) {
		if onLog, err = f.continues(c.UserContext(), v, from); err != nil {
			return err
		}
	}

	var pending []revocation.Entry
	reset, last := false, from.Version
	switch {
	case !hasResume:
		last = v.cursor.Version
	case f.tooOld(from.Version, v.cursor.Version) || !onLog:
		reset, last = true, v.cursor.Version
	default:
		pending = after(v.entries, from.Version)
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
		last:    last,
		seen:    v.cursor.Version,
		cursor:  v.cursor,
		gen:     v.gen,
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

// helloData is the data of "hello" and "reset" events: the feed's cursor.
func helloData(c revocation.Cursor) []byte {
	b, _ := json.Marshal(struct {
		Version uint64 `json:"version"`
		Epoch   string `json:"epoch"`
		Tag     string `json:"tag,omitempty"`
	}{c.Version, c.Epoch, c.Tag}) // cannot fail for these field types
	return b
}
