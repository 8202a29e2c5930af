package issuer

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-auth/signet/revocation"
	"github.com/signet-auth/signet/store"
	"github.com/signet-auth/signet/store/sqlite"
)

// switchStore lets a test replace the database under a running feed: the
// revocation reads the feed makes go to the current store; every other
// method to the first.
type switchStore struct {
	store.Store
	mu  sync.Mutex
	cur store.Store
}

func (s *switchStore) get() store.Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

func (s *switchStore) swap(to store.Store) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = to
}

func (s *switchStore) RevocationState(ctx context.Context) (store.RevocationState, error) {
	return s.get().RevocationState(ctx)
}

func (s *switchStore) ListRevocations(ctx context.Context, since int64, now time.Time) ([]store.Revocation, error) {
	return s.get().ListRevocations(ctx, since, now)
}

func (s *switchStore) RevocationTag(ctx context.Context, seq int64) (string, error) {
	return s.get().RevocationTag(ctx, seq)
}

func (s *switchStore) GetTokenRevocation(ctx context.Context, id string) (store.Revocation, error) {
	return s.get().GetTokenRevocation(ctx, id)
}

// backupSQLite copies the database at path to a new file the way an
// online backup does, and returns the copy's path.
func backupSQLite(tb testing.TB, path string) string {
	tb.Helper()
	out := filepath.Join(tb.TempDir(), "backup.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`VACUUM INTO ?`, out); err != nil {
		tb.Fatalf("backup: %v", err)
	}
	return out
}

func revokeIn(tb testing.TB, st store.Store, now time.Time, id string) store.Revocation {
	tb.Helper()
	ctx := context.Background()
	if err := st.CreateToken(ctx, store.TokenRecord{ID: id, Type: store.TokenAdministrative, Org: "acme",
		Subject: "token:" + id, IssuedAt: now, ExpiresAt: now.Add(time.Hour), Lifetime: time.Hour}); err != nil {
		tb.Fatalf("create token %s: %v", id, err)
	}
	rev, err := st.RevokeToken(ctx, id, now, "test")
	if err != nil {
		tb.Fatalf("revoke token %s: %v", id, err)
	}
	return rev
}

// TestFeedFollowsRestoredStore: the database under a running issuer is
// restored from a backup taken one revocation ago, and the next revocation
// reuses the lost one's Seq. The feed must load the restored log (not skip
// the new entry because its Seq is not above the version it had), tell
// open streams to reset, send readers at the lost position to the snapshot,
// and keep serving readers whose position the restored log shares.
func TestFeedFollowsRestoredStore(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "signet.db")
	orig, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = orig.Close() })
	sw := &switchStore{Store: orig, cur: orig}
	clk := &feedClock{t: time.Now().UTC().Truncate(time.Second)}
	e := serveFeed(t, sw, clk, RevocationConfig{}, 0)

	kept := revokeIn(t, orig, clk.Now(), "tok-kept")
	backup := backupSQLite(t, path)
	lost := revokeIn(t, orig, clk.Now(), "tok-lost")
	e.feed.notify()
	var lostCursor string
	waitFor(t, "feed at the lost entry", func() bool {
		resp, _ := e.get(t, "/revocations", nil)
		lostCursor = strings.Trim(resp.Header.Get("ETag"), `"`)
		return etagVersion(lostCursor) == fmt.Sprint(lost.Seq)
	})
	keptCursor := revocation.Cursor{Version: uint64(kept.Seq), Epoch: strings.Split(lostCursor, ".")[1], Tag: kept.Tag}.String()
	stream := openStream(t, e.base, nil)
	if ev := stream.nextEvent(t); ev.event != "hello" {
		t.Fatalf("first event: got %+v, want hello", ev)
	}

	restored, err := sqlite.Open(ctx, backup)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = restored.Close() })
	sw.swap(restored)
	next := revokeIn(t, restored, clk.Now(), "tok-next")
	if next.Seq != lost.Seq || next.Tag == lost.Tag {
		t.Fatalf("restored log: got seq %d tag %q, want seq %d with a new tag", next.Seq, next.Tag, lost.Seq)
	}
	e.feed.notify()

	if ev := stream.nextEvent(t); ev.event != "reset" {
		t.Errorf("open stream after the restore: got %+v, want a reset", ev)
	}
	waitFor(t, "snapshot of the restored log", func() bool {
		resp, _ := e.get(t, "/revocations", nil)
		c, err := revocation.ParseCursor(strings.Trim(resp.Header.Get("ETag"), `"`))
		return err == nil && c.Tag == next.Tag
	})
	tests := []struct {
		name   string
		since  string
		status int
		want   string // a token id the delta must list
	}{
		{"from the lost position", lostCursor, http.StatusGone, ""},
		{"from a position both logs share", keptCursor, http.StatusOK, "tok-next"},
		{"from a bare version (taken on trust)", fmt.Sprint(kept.Seq), http.StatusOK, "tok-next"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.get(t, "/revocations?since="+tc.since, nil)
			if resp.StatusCode != tc.status {
				t.Fatalf("GET since=%s: got %d %s, want %d", tc.since, resp.StatusCode, body, tc.status)
			}
			if tc.want == "" {
				return
			}
			var d revocation.Delta
			if err := json.Unmarshal(body, &d); err != nil || len(d.Entries) != 1 || d.Entries[0].TokenID != tc.want || d.Tag != next.Tag {
				t.Errorf("delta: got %s (%v), want only %s and tag %s", body, err, tc.want, next.Tag)
			}
		})
	}
	t.Run("stream resumed from the lost position", func(t *testing.T) {
		s := openStream(t, e.base, map[string]string{"Last-Event-ID": lostCursor})
		for _, want := range []string{"hello", "reset"} {
			if ev := s.nextEvent(t); ev.event != want {
				t.Errorf("got %+v, want %s", ev, want)
			}
		}
	})
}
