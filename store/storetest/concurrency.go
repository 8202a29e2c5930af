package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/signet-auth/signet/store"
)

// handles picks the store the i-th goroutine uses: one store for Run, the
// two handles in turn for RunShared.
type handles func(i int) store.Store

func one(s store.Store) handles { return func(int) store.Store { return s } }

func two(a, b store.Store) handles {
	return func(i int) store.Store {
		if i%2 == 0 {
			return a
		}
		return b
	}
}

func concurrencyTests() []subtest {
	return []subtest{
		{"Concurrent/ReplaceToken", func(t *testing.T, s store.Store) { testConcurrentReplace(t, one(s)) }},
		{"Concurrent/RevokeTokens", func(t *testing.T, s store.Store) { testConcurrentRevoke(t, one(s)) }},
		{"Concurrent/RevokeSameToken", func(t *testing.T, s store.Store) { testConcurrentRevokeSame(t, one(s)) }},
		{"Concurrent/CreateTokenSameName", func(t *testing.T, s store.Store) { testConcurrentCreateSameName(t, one(s)) }},
		{"Concurrent/RevokeKey", func(t *testing.T, s store.Store) { testConcurrentRevokeKey(t, one(s)) }},
	}
}

func sharedTests() []sharedSubtest {
	return []sharedSubtest{
		{"Shared/Visibility", testSharedVisibility},
		{"Shared/ReplaceToken", func(t *testing.T, a, b store.Store) { testConcurrentReplace(t, two(a, b)) }},
		{"Shared/RevokeTokens", func(t *testing.T, a, b store.Store) { testConcurrentRevoke(t, two(a, b)) }},
		{"Shared/RevokeSameToken", func(t *testing.T, a, b store.Store) { testConcurrentRevokeSame(t, two(a, b)) }},
		{"Shared/CreateTokenSameName", func(t *testing.T, a, b store.Store) { testConcurrentCreateSameName(t, two(a, b)) }},
		{"Shared/RevokeKey", func(t *testing.T, a, b store.Store) { testConcurrentRevokeKey(t, two(a, b)) }},
		{"Shared/WatchRevocations", testSharedWatch},
		{"Shared/Epoch", testSharedEpoch},
	}
}

// testSharedEpoch: two handles on one database see one log: one epoch, and
// the head that either appended last.
func testSharedEpoch(t *testing.T, a, b store.Store) {
	ctx := context.Background()
	sa, err := a.RevocationState(ctx)
	if err != nil {
		t.Fatalf("RevocationState: got error %v, want nil", err)
	}
	k, err := b.RevokeKey(ctx, "kid-x", t0, at(time.Hour))
	if err != nil {
		t.Fatalf("RevokeKey: got error %v, want nil", err)
	}
	sb, err := a.RevocationState(ctx)
	if err != nil {
		t.Fatalf("RevocationState: got error %v, want nil", err)
	}
	if sb.Epoch != sa.Epoch || sb.Head != k.Tag || sb.Latest != k.Seq {
		t.Errorf("state through a after an append through b: got %+v, want epoch %q head %q latest %d", sb, sa.Epoch, k.Tag, k.Seq)
	}
}

// parallel runs fn(0..n-1) in goroutines released together and waits for
// all of them, failing the test instead of hanging past waitBound.
func parallel(tb testing.TB, n int, fn func(i int)) {
	tb.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	close(start)
	select {
	case <-done:
	case <-time.After(waitBound):
		tb.Fatalf("%d concurrent calls did not return within %v", n, waitBound)
	}
}

func testConcurrentReplace(t *testing.T, h handles) {
	ctx := context.Background()
	const rounds = 25
	for r := range rounds {
		old := newPersonal(fmt.Sprintf("tok-%02d", r), "acme", "alice", fmt.Sprintf("name-%02d", r), at(time.Duration(r)*time.Minute))
		mustCreateToken(t, h(0), old)
		before := latest(t, h(0))
		now := at(time.Hour)
		nexts := [2]store.TokenRecord{
			regenerated(old, old.ID+"-a", now),
			regenerated(old, old.ID+"-b", now),
		}
		var errs [2]error
		var revs [2]store.Revocation
		parallel(t, 2, func(i int) {
			revs[i], errs[i] = h(i).ReplaceToken(ctx, old.ID, nexts[i], now, time.Time{})
		})
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil:
				if winner >= 0 {
					t.Fatalf("round %d: got two successful ReplaceToken calls, want exactly one", r)
				}
				winner = i
			case errors.Is(err, store.ErrConflict):
			default:
				t.Fatalf("round %d: ReplaceToken #%d: got error %v, want nil or ErrConflict", r, i, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: got errors %v and %v, want exactly one success", r, errs[0], errs[1])
		}
		loser := 1 - winner
		got := mustGetToken(t, h(1), old.ID)
		if got.ReplacedBy != nexts[winner].ID || got.RevokedAt == nil {
			t.Fatalf("round %d: old token: got ReplacedBy %q revoked %v, want %q revoked", r, got.ReplacedBy, got.RevokedAt != nil, nexts[winner].ID)
		}
		mustGetToken(t, h(0), nexts[winner].ID)
		if _, err := h(0).GetToken(ctx, nexts[loser].ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("round %d: loser's token: got error %v, want ErrNotFound", r, err)
		}
		if l := latest(t, h(1)); l != before+1 {
			t.Fatalf("round %d: Latest: got %d, want %d (one entry)", r, l, before+1)
		}
		if revs[winner].Seq != before+1 || revs[winner].Value != old.ID {
			t.Fatalf("round %d: winner's entry: got seq %d value %q, want %d %q", r, revs[winner].Seq, revs[winner].Value, before+1, old.ID)
		}
	}
}

func testConcurrentRevoke(t *testing.T, h handles) {
	ctx := context.Background()
	const workers, perWorker = 8, 10
	for w := range workers {
		for j := range perWorker {
			id := fmt.Sprintf("tok-%d-%d", w, j)
			mustCreateToken(t, h(w), newPersonal(id, "acme", "alice", id, at(time.Minute)))
		}
	}
	base := latest(t, h(0))
	got := make([][]store.Revocation, workers)
	errs := make([]error, workers)
	parallel(t, workers, func(w int) {
		for j := range perWorker {
			r, err := h(w).RevokeToken(ctx, fmt.Sprintf("tok-%d-%d", w, j), at(time.Hour), "bulk")
			if err != nil {
				errs[w] = fmt.Errorf("revoke tok-%d-%d: %w", w, j, err)
				return
			}
			got[w] = append(got[w], r)
		}
	})
	for w, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: got error %v, want nil", w, err)
		}
	}
	bySeq := map[int64]string{}
	var all []int64
	for w := range workers {
		last := int64(0)
		for _, r := range got[w] {
			if prev, dup := bySeq[r.Seq]; dup {
				t.Fatalf("Seq %d returned for both %s and %s", r.Seq, prev, r.Value)
			}
			if r.Seq <= last {
				t.Errorf("worker %d: Seq %d after %d, want increasing within one goroutine", w, r.Seq, last)
			}
			last = r.Seq
			bySeq[r.Seq] = r.Value
			all = append(all, r.Seq)
		}
	}
	slices.Sort(all)
	for i, seq := range all {
		if want := base + int64(i) + 1; seq != want {
			t.Fatalf("sorted Seqs: position %d got %d, want %d (gap-free from %d)", i, seq, want, base+1)
		}
	}
	if l := latest(t, h(1)); l != base+workers*perWorker {
		t.Errorf("Latest: got %d, want %d", l, base+workers*perWorker)
	}
	list, err := h(1).ListRevocations(ctx, base, at(time.Hour))
	if err != nil {
		t.Fatalf("ListRevocations: got error %v, want nil", err)
	}
	if len(list) != workers*perWorker {
		t.Fatalf("ListRevocations: got %d entries, want %d", len(list), workers*perWorker)
	}
	for i, e := range list {
		if e.Seq != all[i] || e.Value != bySeq[e.Seq] {
			t.Fatalf("ListRevocations[%d]: got seq %d value %q, want %d %q", i, e.Seq, e.Value, all[i], bySeq[all[i]])
		}
	}
}

func testConcurrentRevokeSame(t *testing.T, h handles) {
	ctx := context.Background()
	const n, rounds = 6, 10
	for r := range rounds {
		id := fmt.Sprintf("tok-%02d", r)
		mustCreateToken(t, h(0), newPersonal(id, "acme", "alice", id, at(time.Minute)))
		before := latest(t, h(0))
		revs := make([]store.Revocation, n)
		errs := make([]error, n)
		parallel(t, n, func(i int) {
			revs[i], errs[i] = h(i).RevokeToken(ctx, id, at(time.Hour+time.Duration(i)*time.Second), fmt.Sprint("caller ", i))
		})
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: RevokeToken #%d: got error %v, want nil", r, i, err)
			}
			checkRevocation(t, fmt.Sprintf("round %d caller %d", r, i), revs[i], revs[0])
		}
		if revs[0].Seq != before+1 {
			t.Fatalf("round %d: Seq: got %d, want %d", r, revs[0].Seq, before+1)
		}
		if l := latest(t, h(1)); l != before+1 {
			t.Fatalf("round %d: Latest: got %d, want %d (one entry for %d calls)", r, l, before+1, n)
		}
	}
}

func testConcurrentCreateSameName(t *testing.T, h handles) {
	ctx := context.Background()
	const n, rounds = 4, 10
	for r := range rounds {
		name := fmt.Sprintf("deploy-%02d", r)
		errs := make([]error, n)
		parallel(t, n, func(i int) {
			tok := newPersonal(fmt.Sprintf("tok-%02d-%d", r, i), "acme", "alice", name, at(time.Minute))
			errs[i] = h(i).CreateToken(ctx, tok)
		})
		wins := 0
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
			case errors.Is(err, store.ErrConflict):
			default:
				t.Fatalf("round %d: CreateToken #%d: got error %v, want nil or ErrConflict", r, i, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: got %d successful CreateToken calls with one name, want 1", r, wins)
		}
	}
	list, err := h(1).ListTokens(ctx, store.TokenFilter{Org: "acme", Owner: "alice", Now: at(time.Hour)})
	if err != nil {
		t.Fatalf("ListTokens: got error %v, want nil", err)
	}
	if len(list) != rounds {
		t.Errorf("ListTokens: got %d tokens, want %d (one per name)", len(list), rounds)
	}
}

func testConcurrentRevokeKey(t *testing.T, h handles) {
	ctx := context.Background()
	const n = 6
	before := latest(t, h(0))
	revs := make([]store.Revocation, n)
	errs := make([]error, n)
	parallel(t, n, func(i int) {
		revs[i], errs[i] = h(i).RevokeKey(ctx, "kid-leaked", at(time.Hour), at(1000*time.Hour))
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("RevokeKey #%d: got error %v, want nil", i, err)
		}
		checkRevocation(t, fmt.Sprint("caller ", i), revs[i], revs[0])
	}
	if l := latest(t, h(1)); l != before+1 {
		t.Errorf("Latest: got %d, want %d", l, before+1)
	}
}

func testSharedVisibility(t *testing.T, a, b store.Store) {
	ctx := context.Background()
	u := newUser("alice", "acme", store.RoleAdmin)
	mustCreateUser(t, a, u)
	got, err := b.GetUser(ctx, "alice")
	if err != nil {
		t.Fatalf("GetUser through b: got error %v, want nil", err)
	}
	checkUser(t, "user through b", got, u)
	wantErrIs(t, "CreateUser(duplicate) through b", b.CreateUser(ctx, u), store.ErrConflict)

	tok := newPersonal("tok-1", "acme", "alice", "ci", at(time.Minute))
	mustCreateToken(t, b, tok)
	checkToken(t, "token through a", mustGetToken(t, a, "tok-1"), tok)

	rev := mustRevoke(t, a, "tok-1", at(time.Hour))
	if l := latest(t, b); l != rev.Seq {
		t.Errorf("Latest through b: got %d, want %d", l, rev.Seq)
	}
	got2, err := b.GetTokenRevocation(ctx, "tok-1")
	if err != nil {
		t.Fatalf("GetTokenRevocation through b: got error %v, want nil", err)
	}
	checkRevocation(t, "entry through b", got2, rev)
	again, err := b.RevokeToken(ctx, "tok-1", at(2*time.Hour), "again")
	if err != nil {
		t.Fatalf("RevokeToken through b: got error %v, want nil", err)
	}
	checkRevocation(t, "repeat through b", again, rev)

	key, err := b.RevokeKey(ctx, "kid-1", at(2*time.Hour), at(1000*time.Hour))
	if err != nil {
		t.Fatalf("RevokeKey through b: got error %v, want nil", err)
	}
	if key.Seq != rev.Seq+1 {
		t.Errorf("Seq through b: got %d, want %d (one log across handles)", key.Seq, rev.Seq+1)
	}
	list, err := a.ListRevocations(ctx, 0, at(2*time.Hour))
	if err != nil {
		t.Fatalf("ListRevocations through a: got error %v, want nil", err)
	}
	if want := []int64{rev.Seq, key.Seq}; !slices.Equal(seqs(list), want) {
		t.Errorf("ListRevocations through a: got %v, want %v", seqs(list), want)
	}
	if err := a.AppendAudit(ctx, store.AuditEvent{Time: t0, Org: "acme", Actor: "alice", Action: "token.revoke", Target: "tok-1"}); err != nil {
		t.Fatalf("AppendAudit through a: got error %v, want nil", err)
	}
	events, err := b.ListAudit(ctx, store.AuditFilter{Org: "acme"})
	if err != nil || len(events) != 1 {
		t.Errorf("ListAudit through b: got %d events, error %v; want 1, nil", len(events), err)
	}
}

func testSharedWatch(t *testing.T, a, b store.Store) {
	w, ok := a.(store.RevocationWatcher)
	if !ok {
		t.Skipf("%T does not implement store.RevocationWatcher", a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := w.WatchRevocations(ctx)
	if err != nil {
		t.Fatalf("WatchRevocations: got error %v, want nil", err)
	}
	// Drain anything sent before the first revocation.
	for drained := false; !drained; {
		select {
		case <-ch:
		default:
			drained = true
		}
	}
	for i, via := range []struct {
		name string
		s    store.Store
	}{{"other handle", b}, {"same handle", a}} {
		id := fmt.Sprintf("tok-watch-%d", i)
		mustCreateToken(t, via.s, newPersonal(id, "acme", "alice", id, at(time.Minute)))
		mustRevoke(t, via.s, id, at(time.Hour))
		select {
		case _, open := <-ch:
			if !open {
				t.Fatalf("revocation through %s: watch channel closed, want a signal", via.name)
			}
		case <-time.After(waitBound):
			t.Fatalf("revocation through %s: no signal within %v", via.name, waitBound)
		}
	}
	cancel()
	deadline := time.After(waitBound)
	for {
		select {
		case _, open := <-ch:
			if !open {
				return
			}
		case <-deadline:
			t.Fatalf("watch channel not closed within %v after its context ended", waitBound)
		}
	}
}
