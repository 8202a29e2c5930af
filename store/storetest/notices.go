package storetest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signet-auth/signet/store"
)

// The notice log: claim before sending, complete after success, release
// after failure; a lapsed claim may be taken over; a delivered notice is
// never claimed again.

func noticeTests() []subtest {
	return []subtest{
		{"Notices/ClaimOnce", testNoticeClaimOnce},
		{"Notices/CompleteIsFinal", testNoticeCompleteIsFinal},
		{"Notices/ReleaseThenReclaim", testNoticeRelease},
		{"Notices/LapsedClaim", testNoticeLapsed},
		{"Notices/KeysAreDistinct", testNoticeKeys},
		{"Notices/NeverClaimed", testNoticeNeverClaimed},
		{"Notices/ListAndPrune", testNoticeListPrune},
		{"Notices/InvalidInput", testNoticeInvalid},
		{"Concurrent/ClaimNotice", func(t *testing.T, s store.Store) { testConcurrentClaim(t, one(s)) }},
	}
}

func noticeSharedTests() []sharedSubtest {
	return []sharedSubtest{
		{"Shared/ClaimNotice", func(t *testing.T, a, b store.Store) { testConcurrentClaim(t, two(a, b)) }},
	}
}

// tokenExpiry is the expiry of the token the fixtures' notices are about.
var tokenExpiry = at(7 * 24 * time.Hour)

func emailKey(token, to string) store.NoticeKey {
	return store.NoticeKey{TokenID: token, Threshold: 168 * time.Hour, Channel: store.NoticeEmail, Recipient: to}
}

func claim(k store.NoticeKey, who string, now time.Time) store.NoticeClaim {
	return store.NoticeClaim{NoticeKey: k, Claimant: who, Now: now, LeaseUntil: now.Add(5 * time.Minute), TokenExpiresAt: tokenExpiry}
}

func mustClaim(tb testing.TB, s store.Store, c store.NoticeClaim, want bool) {
	tb.Helper()
	got, err := s.ClaimNotice(context.Background(), c)
	if err != nil {
		tb.Fatalf("ClaimNotice(%v by %s at %s): got error %v, want nil", c.NoticeKey, c.Claimant, fmtTime(c.Now), err)
	}
	if got != want {
		tb.Fatalf("ClaimNotice(%v by %s at %s): got %v, want %v", c.NoticeKey, c.Claimant, fmtTime(c.Now), got, want)
	}
}

func notices(tb testing.TB, s store.Store) []store.Notice {
	tb.Helper()
	ns, err := s.ListNotices(context.Background(), time.Time{})
	if err != nil {
		tb.Fatalf("ListNotices: got error %v, want nil", err)
	}
	return ns
}

func onlyNotice(tb testing.TB, s store.Store) store.Notice {
	tb.Helper()
	ns := notices(tb, s)
	if len(ns) != 1 {
		tb.Fatalf("ListNotices: got %d notices, want 1: %+v", len(ns), ns)
	}
	return ns[0]
}

func checkNotice(tb testing.TB, what string, got, want store.Notice) {
	tb.Helper()
	var d []string
	if got.NoticeKey != want.NoticeKey {
		d = append(d, fmt.Sprintf("key: got %+v, want %+v", got.NoticeKey, want.NoticeKey))
	}
	d = append(d, strDiff("Claimant", got.Claimant, want.Claimant)...)
	d = append(d, timeDiff("ClaimedUntil", got.ClaimedUntil, want.ClaimedUntil)...)
	d = append(d, timeDiff("SentAt", got.SentAt, want.SentAt)...)
	if got.Attempts != want.Attempts {
		d = append(d, fmt.Sprintf("Attempts: got %d, want %d", got.Attempts, want.Attempts))
	}
	d = append(d, strDiff("LastError", got.LastError, want.LastError)...)
	d = append(d, timeDiff("TokenExpiresAt", got.TokenExpiresAt, want.TokenExpiresAt)...)
	for _, line := range d {
		tb.Errorf("%s: %s", what, line)
	}
}

func testNoticeClaimOnce(t *testing.T, s store.Store) {
	k := emailKey("tok1", "alice@example.com")
	now := at(time.Hour)
	mustClaim(t, s, claim(k, "replica-a", now), true)
	mustClaim(t, s, claim(k, "replica-b", now), false)
	mustClaim(t, s, claim(k, "replica-a", now.Add(time.Minute)), false)
	checkNotice(t, "after one claim", onlyNotice(t, s), store.Notice{
		NoticeKey: k, Claimant: "replica-a", ClaimedUntil: now.Add(5 * time.Minute), Attempts: 1, TokenExpiresAt: tokenExpiry,
	})
}

func testNoticeCompleteIsFinal(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := emailKey("tok1", "alice@example.com")
	now := at(time.Hour)
	mustClaim(t, s, claim(k, "replica-a", now), true)
	if err := s.CompleteNotice(ctx, k, "replica-a", now.Add(time.Second)); err != nil {
		t.Fatalf("CompleteNotice: got error %v, want nil", err)
	}
	want := store.Notice{NoticeKey: k, Claimant: "replica-a", SentAt: now.Add(time.Second), Attempts: 1, TokenExpiresAt: tokenExpiry}
	checkNotice(t, "after complete", onlyNotice(t, s), want)
	// Delivered: never claimed again, however late, by anyone.
	mustClaim(t, s, claim(k, "replica-b", now.Add(24*time.Hour)), false)
	mustClaim(t, s, claim(k, "replica-a", now.Add(24*time.Hour)), false)
	wantErrIs(t, "CompleteNotice twice", s.CompleteNotice(ctx, k, "replica-a", now.Add(2*time.Second)), store.ErrConflict)
	wantErrIs(t, "ReleaseNotice after complete", s.ReleaseNotice(ctx, k, "replica-a", "late failure"), store.ErrConflict)
	checkNotice(t, "after refused changes", onlyNotice(t, s), want)
}

func testNoticeRelease(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := store.NoticeKey{TokenID: "tok1", Threshold: 24 * time.Hour, Channel: store.NoticeWebhook}
	now := at(time.Hour)
	mustClaim(t, s, claim(k, "replica-a", now), true)
	wantErrIs(t, "ReleaseNotice by a non-holder", s.ReleaseNotice(ctx, k, "replica-b", "not mine"), store.ErrConflict)
	if err := s.ReleaseNotice(ctx, k, "replica-a", "webhook answered 503"); err != nil {
		t.Fatalf("ReleaseNotice: got error %v, want nil", err)
	}
	checkNotice(t, "after release", onlyNotice(t, s), store.Notice{
		NoticeKey: k, Claimant: "replica-a", Attempts: 1, LastError: "webhook answered 503", TokenExpiresAt: tokenExpiry,
	})
	wantErrIs(t, "ReleaseNotice twice", s.ReleaseNotice(ctx, k, "replica-a", "again"), store.ErrConflict)
	wantErrIs(t, "CompleteNotice after release", s.CompleteNotice(ctx, k, "replica-a", now), store.ErrConflict)
	// Released: claimable at once, before the old lease would have lapsed.
	later := now.Add(time.Minute)
	mustClaim(t, s, claim(k, "replica-b", later), true)
	wantErrIs(t, "CompleteNotice by the old claimant", s.CompleteNotice(ctx, k, "replica-a", later), store.ErrConflict)
	if err := s.CompleteNotice(ctx, k, "replica-b", later.Add(time.Second)); err != nil {
		t.Fatalf("CompleteNotice by the new claimant: got error %v, want nil", err)
	}
	checkNotice(t, "after retry", onlyNotice(t, s), store.Notice{
		NoticeKey: k, Claimant: "replica-b", SentAt: later.Add(time.Second), Attempts: 2, TokenExpiresAt: tokenExpiry,
	})
}

func testNoticeLapsed(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := emailKey("tok1", "alice@example.com")
	now := at(time.Hour)
	c := claim(k, "replica-a", now)
	c.LeaseUntil = now.Add(time.Minute)
	mustClaim(t, s, c, true)
	mustClaim(t, s, claim(k, "replica-b", now.Add(59*time.Second)), false)
	// The lease ends at LeaseUntil: a claim at that instant takes over.
	mustClaim(t, s, claim(k, "replica-b", now.Add(time.Minute)), true)
	wantErrIs(t, "CompleteNotice by the lapsed claimant", s.CompleteNotice(ctx, k, "replica-a", now.Add(61*time.Second)), store.ErrConflict)
	checkNotice(t, "after take-over", onlyNotice(t, s), store.Notice{
		NoticeKey: k, Claimant: "replica-b", ClaimedUntil: now.Add(6 * time.Minute), Attempts: 2, TokenExpiresAt: tokenExpiry,
	})
}

func testNoticeKeys(t *testing.T, s store.Store) {
	now := at(time.Hour)
	base := emailKey("tok1", "alice@example.com")
	keys := []store.NoticeKey{
		base,
		{TokenID: "tok2", Threshold: base.Threshold, Channel: base.Channel, Recipient: base.Recipient},
		{TokenID: base.TokenID, Threshold: 24 * time.Hour, Channel: base.Channel, Recipient: base.Recipient},
		{TokenID: base.TokenID, Threshold: base.Threshold, Channel: base.Channel, Recipient: "bob@example.com"},
		{TokenID: base.TokenID, Threshold: base.Threshold, Channel: store.NoticeWebhook},
		// Thresholds keep microseconds: 1.5s is not 1s.
		{TokenID: base.TokenID, Threshold: 1500 * time.Millisecond, Channel: store.NoticeWebhook},
		{TokenID: base.TokenID, Threshold: time.Second, Channel: store.NoticeWebhook},
	}
	for _, k := range keys {
		mustClaim(t, s, claim(k, "replica-a", now), true)
	}
	for _, k := range keys {
		mustClaim(t, s, claim(k, "replica-b", now), false)
	}
	ns := notices(t, s)
	if len(ns) != len(keys) {
		t.Fatalf("ListNotices: got %d notices, want %d", len(ns), len(keys))
	}
	got := map[store.NoticeKey]bool{}
	for _, n := range ns {
		got[n.NoticeKey] = true
	}
	for _, k := range keys {
		if !got[k] {
			t.Errorf("ListNotices: %+v missing", k)
		}
	}
}

func testNoticeNeverClaimed(t *testing.T, s store.Store) {
	ctx := context.Background()
	k := emailKey("tok1", "alice@example.com")
	wantErrIs(t, "CompleteNotice(never claimed)", s.CompleteNotice(ctx, k, "replica-a", at(0)), store.ErrNotFound)
	wantErrIs(t, "ReleaseNotice(never claimed)", s.ReleaseNotice(ctx, k, "replica-a", "x"), store.ErrNotFound)
	if ns := notices(t, s); len(ns) != 0 {
		t.Fatalf("ListNotices: got %+v, want none", ns)
	}
}

func testNoticeListPrune(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := at(time.Hour)
	for i, exp := range []time.Time{at(2 * time.Hour), at(3 * time.Hour), at(4 * time.Hour)} {
		c := claim(emailKey(fmt.Sprintf("tok%d", i+1), "alice@example.com"), "replica-a", now)
		c.TokenExpiresAt = exp
		mustClaim(t, s, c, true)
	}
	list := func(after time.Time) []string {
		t.Helper()
		ns, err := s.ListNotices(ctx, after)
		if err != nil {
			t.Fatalf("ListNotices(%s): got error %v, want nil", fmtTime(after), err)
		}
		ids := make([]string, len(ns))
		for i, n := range ns {
			ids[i] = n.TokenID
		}
		return ids
	}
	if got := fmt.Sprint(list(at(3 * time.Hour))); got != "[tok3]" {
		t.Errorf("ListNotices(after 3h): got %s, want [tok3] (strictly after)", got)
	}
	if got := fmt.Sprint(list(time.Time{})); got != "[tok1 tok2 tok3]" {
		t.Errorf("ListNotices(zero): got %s, want [tok1 tok2 tok3]", got)
	}
	n, err := s.PruneNotices(ctx, at(3*time.Hour))
	if err != nil {
		t.Fatalf("PruneNotices: got error %v, want nil", err)
	}
	if n != 1 {
		t.Errorf("PruneNotices(3h): got %d removed, want 1 (strictly before)", n)
	}
	if got := fmt.Sprint(list(time.Time{})); got != "[tok2 tok3]" {
		t.Errorf("ListNotices after prune: got %s, want [tok2 tok3]", got)
	}
}

func testNoticeInvalid(t *testing.T, s store.Store) {
	ctx := context.Background()
	now := at(time.Hour)
	good := claim(emailKey("tok1", "alice@example.com"), "replica-a", now)
	long := make([]byte, 321)
	for i := range long {
		long[i] = 'a'
	}
	tests := []struct {
		name   string
		change func(c *store.NoticeClaim)
	}{
		{"empty token id", func(c *store.NoticeClaim) { c.TokenID = "" }},
		{"zero threshold", func(c *store.NoticeClaim) { c.Threshold = 0 }},
		{"negative threshold", func(c *store.NoticeClaim) { c.Threshold = -time.Hour }},
		{"unknown channel", func(c *store.NoticeClaim) { c.Channel = "sms" }},
		{"email without recipient", func(c *store.NoticeClaim) { c.Recipient = "" }},
		{"webhook with recipient", func(c *store.NoticeClaim) { c.Channel = store.NoticeWebhook }},
		{"recipient too long", func(c *store.NoticeClaim) { c.Recipient = string(long) }},
		{"empty claimant", func(c *store.NoticeClaim) { c.Claimant = "" }},
		{"lease not after now", func(c *store.NoticeClaim) { c.LeaseUntil = c.Now }},
		{"zero now", func(c *store.NoticeClaim) { c.Now = time.Time{} }},
		{"zero token expiry", func(c *store.NoticeClaim) { c.TokenExpiresAt = time.Time{} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.change(&c)
			_, err := s.ClaimNotice(ctx, c)
			wantInvalid(t, "ClaimNotice("+tc.name+")", err)
			if tc.name != "empty claimant" && tc.name != "lease not after now" && tc.name != "zero now" && tc.name != "zero token expiry" {
				wantInvalid(t, "CompleteNotice("+tc.name+")", s.CompleteNotice(ctx, c.NoticeKey, "replica-a", now))
				wantInvalid(t, "ReleaseNotice("+tc.name+")", s.ReleaseNotice(ctx, c.NoticeKey, "replica-a", "x"))
			}
			if ns := notices(t, s); len(ns) != 0 {
				t.Fatalf("after a refused claim: got %+v, want no notices", ns)
			}
		})
	}
}

// testConcurrentClaim claims one notice from many goroutines at once
// (through both handles for RunShared, as replicas do): exactly one wins.
func testConcurrentClaim(t *testing.T, h handles) {
	const n = 16
	for round, k := range []store.NoticeKey{
		emailKey("tok1", "alice@example.com"),
		{TokenID: "tok1", Threshold: 24 * time.Hour, Channel: store.NoticeWebhook},
	} {
		var won atomic.Int32
		now := at(time.Duration(round) * time.Hour)
		parallel(t, n, func(i int) {
			ok, err := h(i).ClaimNotice(context.Background(), claim(k, fmt.Sprintf("replica-%d", i), now))
			if err != nil {
				t.Errorf("ClaimNotice #%d: got error %v, want nil", i, err)
			}
			if ok {
				won.Add(1)
			}
		})
		if got := won.Load(); got != 1 {
			t.Fatalf("%d concurrent claims of %+v: got %d winners, want exactly 1", n, k, got)
		}
	}
}
