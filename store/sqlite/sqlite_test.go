package sqlite

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/signet-auth/signet/store"
	"github.com/signet-auth/signet/store/storetest"
)

var t0 = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

// openAt opens path and closes it when the test ends.
func openAt(tb testing.TB, path string) *Store {
	tb.Helper()
	s, err := Open(context.Background(), path)
	if err != nil {
		tb.Fatalf("Open(%s): got error %v, want nil", path, err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close(%s): %v", path, err)
		}
	})
	return s
}

func freshPath(tb testing.TB) string {
	tb.Helper()
	return filepath.Join(tb.TempDir(), "data", "signet.db")
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openAt(t, freshPath(t)) })
}

func TestConformanceShared(t *testing.T) {
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		path := freshPath(t)
		return openAt(t, path), openAt(t, path)
	})
}

func token(id string, issued time.Time) store.TokenRecord {
	return store.TokenRecord{
		ID: id, Name: id, Type: store.TokenPersonal, Owner: "alice", OwnerID: "uid-alice", Org: "acme", Subject: "alice",
		Scopes: []string{"reports:read"}, CreatedBy: "alice", KeyID: "kid-1",
		IssuedAt: issued, ExpiresAt: issued.Add(24 * time.Hour), Lifetime: 24 * time.Hour,
	}
}

func TestReopenPersists(t *testing.T) {
	ctx := context.Background()
	path := freshPath(t)
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: got error %v, want nil", err)
	}
	u := store.User{Username: "alice", Email: "a@example.com", Org: "acme", Role: store.RoleAdmin, PasswordHash: "$2a$10$h", CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if err := s.CreateToken(ctx, token("tok-1", t0)); err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	rev, err := s.RevokeToken(ctx, "tok-1", t0.Add(time.Hour), "test")
	if err != nil {
		t.Fatalf("RevokeToken: %v", err)
	}
	if err := s.AppendAudit(ctx, store.AuditEvent{Time: t0, Org: "acme", Action: "token.revoke", Target: "tok-1"}); err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s2 := openAt(t, path)
	if got, err := s2.GetUser(ctx, "alice"); err != nil || got.PasswordHash != u.PasswordHash {
		t.Errorf("GetUser after reopen: got %+v, %v; want hash %q", got, err, u.PasswordHash)
	}
	got, err := s2.GetToken(ctx, "tok-1")
	if err != nil || got.RevokedAt == nil {
		t.Fatalf("GetToken after reopen: got %+v, %v; want a revoked token", got, err)
	}
	gotRev, err := s2.GetTokenRevocation(ctx, "tok-1")
	if err != nil || gotRev.Seq != rev.Seq {
		t.Errorf("GetTokenRevocation after reopen: got %+v, %v; want seq %d", gotRev, err, rev.Seq)
	}
	st, err := s2.RevocationState(ctx)
	if err != nil || st.Latest != rev.Seq {
		t.Errorf("RevocationState after reopen: got %+v, %v; want latest %d", st, err, rev.Seq)
	}
	events, err := s2.ListAudit(ctx, store.AuditFilter{})
	if err != nil || len(events) != 1 {
		t.Errorf("ListAudit after reopen: got %d events, %v; want 1", len(events), err)
	}
}

func migrationCount(tb testing.TB, s *Store) (rows, maxVersion int) {
	tb.Helper()
	err := s.r.QueryRowContext(context.Background(),
		`SELECT COUNT(*), COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&rows, &maxVersion)
	if err != nil {
		tb.Fatalf("read schema_migrations: %v", err)
	}
	return rows, maxVersion
}

func TestMigrationsIdempotent(t *testing.T) {
	ms, err := loadMigrations()
	if err != nil {
		t.Fatalf("loadMigrations: got error %v, want nil", err)
	}
	if len(ms) == 0 {
		t.Fatal("loadMigrations: got no migrations, want at least one")
	}
	path := freshPath(t)
	for i := range 3 {
		s, err := Open(context.Background(), path)
		if err != nil {
			t.Fatalf("Open #%d: got error %v, want nil", i+1, err)
		}
		rows, maxV := migrationCount(t, s)
		if rows != len(ms) || maxV != len(ms) {
			t.Errorf("Open #%d: schema_migrations has %d rows up to version %d, want %d up to %d", i+1, rows, maxV, len(ms), len(ms))
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}

func TestMigrationsRefuseNewerSchema(t *testing.T) {
	path := freshPath(t)
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if _, err := s.w.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '0999_future.sql', 0)`); err != nil {
		t.Fatalf("insert future migration: %v", err)
	}
	s.Close()
	_, err = Open(context.Background(), path)
	if err == nil {
		t.Fatal("Open of a database with a newer schema: got nil error, want one")
	}
	if !strings.Contains(err.Error(), "999") || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open error: got %q, want it to name version 999 as newer", err)
	}
}

// TestConcurrentOpen opens one new file from several goroutines at once,
// each with its own connections, as the CLI and the server may: the
// migrations run exactly once and every handle works.
func TestConcurrentOpen(t *testing.T) {
	ctx := context.Background()
	path := freshPath(t)
	const n = 4
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			stores[i], errs[i] = Open(ctx, path)
		}()
	}
	close(start)
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Open #%d: got error %v, want nil", i, errs[i])
		}
		defer stores[i].Close()
	}
	ms, _ := loadMigrations()
	if rows, _ := migrationCount(t, stores[0]); rows != len(ms) {
		t.Errorf("schema_migrations rows: got %d, want %d", rows, len(ms))
	}
	for i, s := range stores {
		id := fmt.Sprintf("tok-%d", i)
		if err := s.CreateToken(ctx, token(id, t0)); err != nil {
			t.Fatalf("CreateToken through handle %d: %v", i, err)
		}
		if _, err := stores[(i+1)%n].GetToken(ctx, id); err != nil {
			t.Errorf("GetToken through handle %d: got error %v, want nil", (i+1)%n, err)
		}
	}
}

func TestPragmas(t *testing.T) {
	s := openAt(t, freshPath(t))
	ctx := context.Background()
	tests := []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"foreign_keys", "1"},
		{"busy_timeout", fmt.Sprint(busyTimeout.Milliseconds())},
	}
	for _, tc := range tests {
		t.Run(tc.pragma, func(t *testing.T) {
			var got string
			if err := s.w.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
				t.Fatalf("PRAGMA %s: %v", tc.pragma, err)
			}
			if got != tc.want {
				t.Errorf("writer PRAGMA %s: got %q, want %q", tc.pragma, got, tc.want)
			}
		})
	}
	var qo string
	if err := s.r.QueryRowContext(ctx, "PRAGMA query_only").Scan(&qo); err != nil || qo != "1" {
		t.Errorf("reader PRAGMA query_only: got %q, %v; want 1", qo, err)
	}
}

func TestFilePermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "data")
	path := filepath.Join(dir, "signet.db")
	openAt(t, path)
	tests := []struct {
		path string
		want os.FileMode
	}{
		{dir, 0o700},
		{path, 0o600},
	}
	for _, tc := range tests {
		fi, err := os.Stat(tc.path)
		if err != nil {
			t.Fatalf("Stat(%s): %v", tc.path, err)
		}
		if got := fi.Mode().Perm(); got != tc.want {
			t.Errorf("mode of %s: got %o, want %o", tc.path, got, tc.want)
		}
	}
}

func TestOpenRelativePath(t *testing.T) {
	t.Chdir(t.TempDir())
	s := openAt(t, "data/signet.db")
	if !filepath.IsAbs(s.Path()) || !strings.HasSuffix(s.Path(), filepath.Join("data", "signet.db")) {
		t.Errorf("Path: got %q, want an absolute path ending in data/signet.db", s.Path())
	}
	if _, err := os.Stat(filepath.Join("data", "signet.db")); err != nil {
		t.Errorf("database file: %v", err)
	}
}

func TestOpenBadPath(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, []byte(strings.Repeat("this is not a database\n", 400)), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dsn, wantInErr string
	}{
		{"empty", "", "empty database path"},
		{"blank", "   ", "empty database path"},
		{"in-memory", ":memory:", "file path"},
		{"URI", "file:signet.db?mode=memory", "file path"},
		{"query", filepath.Join(dir, "x.db?_pragma=foo"), "'?'"},
		{"parent is a regular file", filepath.Join(regular, "signet.db"), "not a directory"},
		{"path is a directory", dir, "is a directory"},
		{"not a database", garbage, "not a database"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(context.Background(), tc.dsn)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q): got nil error, want one containing %q", tc.dsn, tc.wantInErr)
			}
			if !strings.HasPrefix(err.Error(), "sqlite: ") || !strings.Contains(err.Error(), tc.wantInErr) {
				t.Errorf("Open(%q): got error %q, want a \"sqlite: \" error containing %q", tc.dsn, err, tc.wantInErr)
			}
		})
	}
}

func TestCanceledContext(t *testing.T) {
	s := openAt(t, freshPath(t))
	if err := s.CreateToken(context.Background(), token("tok-1", t0)); err != nil {
		t.Fatalf("CreateToken: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.RevokeToken(ctx, "tok-1", t0.Add(time.Hour), "x"); !errors.Is(err, context.Canceled) {
		t.Errorf("RevokeToken with a canceled context: got %v, want context.Canceled", err)
	}
	got, err := s.GetToken(context.Background(), "tok-1")
	if err != nil || got.RevokedAt != nil {
		t.Errorf("GetToken: got revoked=%v, %v; want not revoked", got.RevokedAt != nil, err)
	}
}

// The crash-durability test re-executes the test binary as a child that
// revokes tokens and prints "ok <id>" after each RevokeToken returns; the
// parent SIGKILLs it as soon as it has read a few of those lines, then
// reopens the file and expects every acknowledged revocation to be there.
const (
	crashEnvDB  = "SIGNET_SQLITE_CRASH_DB"
	crashTokens = 200
	crashAcks   = 5
)

func crashTokenID(i int) string { return fmt.Sprintf("tok-crash-%03d", i) }

func TestCrashDurability(t *testing.T) {
	if path := os.Getenv(crashEnvDB); path != "" {
		crashChild(path)
		return
	}
	ctx := context.Background()
	path := freshPath(t)
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	for i := range crashTokens {
		if err := s.CreateToken(ctx, token(crashTokenID(i), t0)); err != nil {
			t.Fatalf("CreateToken: %v", err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	cmdCtx, cancel := context.WithTimeout(ctx, 2*time.Minute) // a bound, not an assertion
	defer cancel()
	cmd := exec.CommandContext(cmdCtx, os.Args[0], "-test.run=^TestCrashDurability$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnvDB+"="+path)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	var acked []string
	sc := bufio.NewScanner(stdout)
	for len(acked) < crashAcks && sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "ok "); ok {
			acked = append(acked, id)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL child: %v", err)
	}
	_ = cmd.Wait() // killed: the error is expected
	if len(acked) < crashAcks {
		t.Fatalf("child acknowledged %d revocations before exiting, want %d (scan error %v)", len(acked), crashAcks, sc.Err())
	}

	s2 := openAt(t, path)
	for _, id := range acked {
		rev, err := s2.GetTokenRevocation(ctx, id)
		if err != nil {
			t.Errorf("acknowledged revocation of %s after SIGKILL: got error %v, want it durable", id, err)
			continue
		}
		tok, err := s2.GetToken(ctx, id)
		if err != nil || tok.RevokedAt == nil {
			t.Errorf("token %s after SIGKILL: got revoked=%v, %v; want revoked", id, tok.RevokedAt != nil, err)
		}
		if rev.Value != id {
			t.Errorf("entry of %s: got value %q", id, rev.Value)
		}
	}
	// Whatever the child did after the last ack, the log is consistent:
	// one entry per revoked token, Seqs 1..Latest without gaps.
	st, err := s2.RevocationState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := s2.ListRevocations(ctx, 0, t0)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(entries)) != st.Latest {
		t.Errorf("entries after SIGKILL: got %d, want Latest=%d", len(entries), st.Latest)
	}
	for i, e := range entries {
		if e.Seq != int64(i)+1 {
			t.Fatalf("entry %d: got seq %d, want %d", i, e.Seq, i+1)
		}
	}
	revoked, err := s2.ListTokens(ctx, store.TokenFilter{Org: "acme", IncludeRevoked: true})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, tok := range revoked {
		if tok.RevokedAt != nil {
			n++
		}
	}
	if int64(n) != st.Latest {
		t.Errorf("revoked tokens after SIGKILL: got %d, want %d (one per entry)", n, st.Latest)
	}
	var check string
	if err := s2.r.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check after SIGKILL: got %q, %v; want ok", check, err)
	}
}

// crashChild is the child side of TestCrashDurability. It never returns
// normally: the parent kills it, and it exits on its own if the parent
// stops reading.
func crashChild(path string) {
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	for i := range crashTokens {
		id := crashTokenID(i)
		if _, err := s.RevokeToken(ctx, id, t0.Add(time.Hour), "crash test"); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		if _, err := fmt.Fprintln(os.Stdout, "ok", id); err != nil {
			os.Exit(3) // the parent closed the pipe
		}
	}
	time.Sleep(time.Minute)
	os.Exit(4)
}

// TestReaderPragmas checks every connection of the read pool, not just
// the one a single query happens to get: WAL, synchronous=FULL (a checkpoint
// run when the last connection closes goes through it), read-only, and the
// busy timeout.
func TestReaderPragmas(t *testing.T) {
	s := openAt(t, freshPath(t))
	ctx := context.Background()
	conns := make([]*sql.Conn, readers)
	for i := range conns {
		c, err := s.r.Conn(ctx)
		if err != nil {
			t.Fatalf("reader connection %d: got error %v, want nil", i, err)
		}
		defer c.Close()
		conns[i] = c
	}
	tests := []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"query_only", "1"},
		{"busy_timeout", fmt.Sprint(busyTimeout.Milliseconds())},
	}
	for i, c := range conns {
		for _, tc := range tests {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+tc.pragma).Scan(&got); err != nil {
				t.Fatalf("reader %d PRAGMA %s: got error %v, want nil", i, tc.pragma, err)
			}
			if got != tc.want {
				t.Errorf("reader %d PRAGMA %s: got %q, want %q", i, tc.pragma, got, tc.want)
			}
		}
	}
}

// queryPlan returns the EXPLAIN QUERY PLAN details of q, one per line.
func queryPlan(tb testing.TB, s *Store, q string, args ...any) string {
	tb.Helper()
	rows, err := s.r.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		tb.Fatalf("EXPLAIN QUERY PLAN: got error %v, want nil", err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, notUsed int
		var detail string
		if err := rows.Scan(&id, &parent, &notUsed, &detail); err != nil {
			tb.Fatalf("scan query plan: got error %v, want nil", err)
		}
		lines = append(lines, detail)
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("read query plan: got error %v, want nil", err)
	}
	return strings.Join(lines, "\n")
}

// TestHotPathQueryPlans checks that the lookups on hot or unauthenticated
// paths are index searches, never a scan of a whole table: a scan of the
// revocation log per GET /revocations/<id> would let anyone load the
// issuer in proportion to the number of revocations.
func TestHotPathQueryPlans(t *testing.T) {
	s := openAt(t, freshPath(t))
	tests := []struct {
		name  string
		query string
		args  []any
		index string // wanted in the plan
	}{
		{"GetTokenRevocation", tokenRevocationQuery, []any{"tok"}, "revocations_kind_value"},
		{"RevokeKey lookup", keyRevocationQuery, []any{"kid"}, "revocations_kind_value"},
		{"subject entry of a revoked token", subjectRevocationQuery, []any{"bob", "acme", 0}, "revocations_kind_value"},
		{"ListRevocations since", listRevocationsQuery, []any{5, 0}, "PRIMARY KEY"},
		{"ListTokens by org and owner", `SELECT ` + tokenColumns + ` FROM tokens
			WHERE org = ? AND owner = ? AND revoked_at IS NULL ORDER BY issued_at DESC, id DESC`,
			[]any{"acme", "bob"}, "tokens_org_owner_issued"},
		{"ListTokens by org", `SELECT ` + tokenColumns + ` FROM tokens
			WHERE org = ? ORDER BY issued_at DESC, id DESC LIMIT ?`, []any{"acme", 10}, "tokens_org_issued"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan := queryPlan(t, s, tc.query, tc.args...)
			if !strings.Contains(plan, tc.index) {
				t.Errorf("plan:\n%s\ngot no use of %s, want it", plan, tc.index)
			}
			for _, line := range strings.Split(plan, "\n") {
				if strings.HasPrefix(line, "SCAN ") {
					t.Errorf("plan:\n%s\ngot a full scan, want an index search", plan)
				}
			}
		})
	}
}

// TestUpgradeFromVersion1 reopens a database that predates migration 2 (the
// revocation lookup index) and checks the index is created on start.
func TestUpgradeFromVersion1(t *testing.T) {
	path := freshPath(t)
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: got error %v, want nil", err)
	}
	if err := s.CreateToken(context.Background(), token("tok-1", t0)); err != nil {
		t.Fatalf("CreateToken: got error %v, want nil", err)
	}
	for _, q := range append(undoUserIDs, `DROP INDEX revocations_kind_value`, `DELETE FROM schema_migrations WHERE version >= 2`) {
		if _, err := s.w.Exec(q); err != nil {
			t.Fatalf("%s: got error %v, want nil", q, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: got error %v, want nil", err)
	}
	s = openAt(t, path)
	ms, err := loadMigrations()
	if err != nil {
		t.Fatalf("loadMigrations: got error %v, want nil", err)
	}
	if rows, maxV := migrationCount(t, s); rows != len(ms) || maxV != len(ms) {
		t.Errorf("schema_migrations after upgrade: got %d rows up to %d, want %d up to %d", rows, maxV, len(ms), len(ms))
	}
	if plan := queryPlan(t, s, tokenRevocationQuery, "tok-1"); !strings.Contains(plan, "revocations_kind_value") {
		t.Errorf("GetTokenRevocation plan after upgrade:\n%s\nwant revocations_kind_value", plan)
	}
	if _, err := s.GetToken(context.Background(), "tok-1"); err != nil {
		t.Errorf("GetToken after upgrade: got error %v, want nil", err)
	}
	if st, err := s.RevocationState(context.Background()); err != nil || len(st.Epoch) != 16 {
		t.Errorf("revocation state after upgrade: got %+v, %v; want a 16-character epoch", st, err)
	}
}

// TestRestoredFileReusesSeqWithNewTag shows what the revocation log's tags
// are for: a database file restored from a copy keeps its epoch and goes
// back to the copy's version, and its next entry reuses a Seq that a reader
// of the original has seen, but with another tag (revocation.Cursor).
func TestRestoredFileReusesSeqWithNewTag(t *testing.T) {
	ctx := context.Background()
	path := freshPath(t)
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: got error %v, want nil", err)
	}
	if _, err := s.RevokeKey(ctx, "kid-1", t0, t0.Add(time.Hour)); err != nil {
		t.Fatalf("RevokeKey: got error %v, want nil", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: got error %v, want nil", err)
	}
	backup, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path)
	lost, err := s.RevokeKey(ctx, "kid-2", t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatalf("RevokeKey: got error %v, want nil", err)
	}
	before, err := s.RevocationState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: got error %v, want nil", err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		_ = os.Remove(path + suffix)
	}
	if err := os.WriteFile(path, backup, 0o600); err != nil {
		t.Fatal(err)
	}
	r := openAt(t, path)
	next, err := r.RevokeKey(ctx, "kid-3", t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatalf("RevokeKey after the restore: got error %v, want nil", err)
	}
	after, err := r.RevocationState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Epoch != before.Epoch || next.Seq != lost.Seq || next.Tag == lost.Tag || after.Head != next.Tag {
		t.Errorf("after the restore: got epoch %q seq %d tag %q head %q; want epoch %q, seq %d with a tag other than %q",
			after.Epoch, next.Seq, next.Tag, after.Head, before.Epoch, lost.Seq, lost.Tag)
	}
}

// undoGrace turns a database back to before migration 6 (grace periods),
// undoing migration 7 (user sources) first.
var undoGrace = append(slices.Clip(undoUserSource),
	`DROP INDEX revocations_token_key`,
	`CREATE UNIQUE INDEX revocations_token_key ON revocations (kind, value) WHERE kind IN ('token', 'key')`,
	`ALTER TABLE revocations DROP COLUMN valid_until`,
	`ALTER TABLE tokens DROP COLUMN valid_until`,
	`DELETE FROM schema_migrations WHERE version >= 6`,
)

// undoUserIDs turns a database back to before migration 3 (user ids),
// undoing migrations 6 (grace periods), 5 (expiry notices) and 4 (the
// revocation log's epoch and tags) first.
var undoUserIDs = append(append(slices.Clip(undoGrace), undoExpiryNotices...),
	`ALTER TABLE revocation_seq DROP COLUMN epoch`,
	`ALTER TABLE revocation_seq DROP COLUMN head`,
	`ALTER TABLE revocations DROP COLUMN tag`,
	`DROP INDEX tokens_org_owner_id_issued`,
	`DROP INDEX users_id`,
	`ALTER TABLE tokens DROP COLUMN owner_id`,
	`ALTER TABLE users DROP COLUMN id`,
	`DELETE FROM schema_migrations WHERE version >= 3`,
)

// undoUserSource turns a database back to before migration 7 (user sources).
var undoUserSource = []string{
	`ALTER TABLE users DROP COLUMN source`,
	`DELETE FROM schema_migrations WHERE version >= 7`,
}

// undoExpiryNotices turns a database back to before migration 5 (expiry
// notices).
var undoExpiryNotices = []string{
	`DROP TABLE expiry_notices`,
	`DELETE FROM schema_migrations WHERE version >= 5`,
}

// TestUpgradeToGrace: migration 6 keeps the revocations of a database
// that predates grace periods in force at once, and lets a token carry a
// second entry (a grace period ended by a revocation) but not a third.
func TestUpgradeToGrace(t *testing.T) {
	ctx := context.Background()
	path := freshPath(t)
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: got error %v, want nil", err)
	}
	for _, id := range []string{"tok-1", "tok-2"} {
		if err := s.CreateToken(ctx, token(id, t0)); err != nil {
			t.Fatalf("CreateToken: got error %v, want nil", err)
		}
	}
	if _, err := s.RevokeToken(ctx, "tok-1", t0.Add(time.Hour), "before the upgrade"); err != nil {
		t.Fatalf("RevokeToken: got error %v, want nil", err)
	}
	for _, q := range undoGrace {
		if _, err := s.w.Exec(q); err != nil {
			t.Fatalf("%s: got error %v, want nil", q, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: got error %v, want nil", err)
	}
	s = openAt(t, path)
	if tok, err := s.GetToken(ctx, "tok-1"); err != nil || !tok.Revoked(t0.Add(time.Hour)) || !tok.ValidUntil.IsZero() {
		t.Errorf("revoked token after the upgrade: got %+v, %v; want revoked at once", tok, err)
	}
	if rev, err := s.GetTokenRevocation(ctx, "tok-1"); err != nil || !rev.ValidUntil.IsZero() {
		t.Errorf("its entry after the upgrade: got %+v, %v; want one in force at once", rev, err)
	}
	next := token("tok-3", t0.Add(time.Hour))
	next.Name = "tok-2"
	if _, err := s.ReplaceToken(ctx, "tok-2", next, t0.Add(time.Hour), t0.Add(2*time.Hour)); err != nil {
		t.Fatalf("ReplaceToken with a grace period: got error %v, want nil", err)
	}
	if _, err := s.RevokeToken(ctx, "tok-2", t0.Add(90*time.Minute), "during"); err != nil {
		t.Fatalf("RevokeToken during the grace period: got error %v, want nil", err)
	}
	// The index still refuses a second entry in force at once.
	_, err = s.w.Exec(`INSERT INTO revocations (seq, tag, kind, value, org, revoked_at, expires_at, reason)
		VALUES (1000, 'x', 'token', 'tok-2', 'acme', 0, 0, 'duplicate')`)
	if !isUniqueViolation(err) {
		t.Errorf("a third entry for one token: got error %v, want a unique violation", err)
	}
}

// TestUpgradeToUserIDs: migration 3 gives every user an id and maps each
// personal token to the user holding its owner's name, unless that user
// was created after the token was issued (an earlier holder's token), and
// then to nobody.
func TestUpgradeToUserIDs(t *testing.T) {
	ctx := context.Background()
	path := freshPath(t)
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: got error %v, want nil", err)
	}
	user := func(name string, created time.Time) store.User {
		return store.User{ID: "x-" + name, Username: name, Email: name + "@example.com", Org: "acme", Role: store.RoleMember,
			PasswordHash: "$2a$10$x", CreatedAt: created, UpdatedAt: created}
	}
	personal := func(id, owner string, issued time.Time) store.TokenRecord {
		tok := token(id, issued)
		tok.Owner, tok.OwnerID, tok.Subject, tok.CreatedBy = owner, "x-"+owner, owner, owner
		return tok
	}
	for _, u := range []store.User{user("alice", t0), user("ivan", t0.Add(2*time.Hour))} {
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatalf("CreateUser: got error %v, want nil", err)
		}
	}
	admin := store.TokenRecord{ID: "tok-admin", Type: store.TokenAdministrative, Org: "acme", Subject: "token:tok-admin",
		CreatedBy: "alice", KeyID: "kid-1", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	for _, tok := range []store.TokenRecord{
		personal("tok-alice", "alice", t0.Add(time.Hour)),
		personal("tok-ivan-old", "ivan", t0.Add(time.Hour)), // an earlier ivan's
		personal("tok-ivan", "ivan", t0.Add(3*time.Hour)),
		personal("tok-zed", "zed", t0.Add(time.Hour)), // a removed user's
		admin,
	} {
		if err := s.CreateToken(ctx, tok); err != nil {
			t.Fatalf("CreateToken(%s): got error %v, want nil", tok.ID, err)
		}
	}
	for _, q := range undoUserIDs {
		if _, err := s.w.Exec(q); err != nil {
			t.Fatalf("%s: got error %v, want nil", q, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: got error %v, want nil", err)
	}

	s = openAt(t, path)
	ids := map[string]string{}
	for _, name := range []string{"alice", "ivan"} {
		u, err := s.GetUser(ctx, name)
		if err != nil {
			t.Fatalf("GetUser(%s): got error %v, want nil", name, err)
		}
		if u.ID == "" || u.ID == "x-"+name {
			t.Errorf("%s after the upgrade: ID %q, want a new one", name, u.ID)
		}
		ids[name] = u.ID
	}
	if ids["alice"] == ids["ivan"] {
		t.Errorf("alice and ivan got the same id %q", ids["alice"])
	}
	for id, want := range map[string]string{
		"tok-alice": ids["alice"], "tok-ivan-old": "", "tok-ivan": ids["ivan"], "tok-zed": "", "tok-admin": "",
	} {
		got, err := s.GetToken(ctx, id)
		if err != nil {
			t.Fatalf("GetToken(%s): got error %v, want nil", id, err)
		}
		if got.OwnerID != want {
			t.Errorf("%s after the upgrade: OwnerID %q, want %q", id, got.OwnerID, want)
		}
	}
	// Removing ivan revokes his token and, on the safe side, the earlier
	// ivan's that belongs to nobody; alice's stays.
	if _, err := s.DeleteUser(ctx, "ivan", t0.Add(4*time.Hour), t0.Add(100*time.Hour)); err != nil {
		t.Fatalf("DeleteUser: got error %v, want nil", err)
	}
	for id, revoked := range map[string]bool{"tok-ivan": true, "tok-ivan-old": true, "tok-alice": false} {
		got, err := s.GetToken(ctx, id)
		if err != nil {
			t.Fatalf("GetToken(%s): got error %v, want nil", id, err)
		}
		if (got.RevokedAt != nil) != revoked {
			t.Errorf("%s after DeleteUser(ivan): revoked %v, want %v", id, got.RevokedAt != nil, revoked)
		}
	}
}

// TestUpgradeToUserSource: migration 7 makes every existing user a local
// user, who keeps signing in with their password, and lets directory users
// be stored next to them.
func TestUpgradeToUserSource(t *testing.T) {
	ctx := context.Background()
	path := freshPath(t)
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open: got error %v, want nil", err)
	}
	alice := store.User{ID: "x-alice", Username: "alice", Email: "alice@example.com", Org: "acme", Role: store.RoleAdmin,
		PasswordHash: "$2a$10$x", CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateUser(ctx, alice); err != nil {
		t.Fatalf("CreateUser: got error %v, want nil", err)
	}
	for _, q := range undoUserSource {
		if _, err := s.w.Exec(q); err != nil {
			t.Fatalf("%s: got error %v, want nil", q, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: got error %v, want nil", err)
	}
	s = openAt(t, path)
	got, err := s.GetUser(ctx, "alice")
	if err != nil {
		t.Fatalf("GetUser(alice): got error %v, want nil", err)
	}
	if got.Source != store.SourceLocal || got.PasswordHash != alice.PasswordHash || got.ID != alice.ID {
		t.Errorf("alice after the upgrade: source %q, hash %q, id %q; want local, %q, %q", got.Source, got.PasswordHash, got.ID, alice.PasswordHash, alice.ID)
	}
	dora := store.User{Username: "dora", Email: "dora@example.com", Org: "acme", Role: store.RoleMember, Source: store.SourceLDAP}
	if err := s.CreateUser(ctx, dora); err != nil {
		t.Fatalf("CreateUser(directory user): got error %v, want nil", err)
	}
	if got, err := s.GetUser(ctx, "dora"); err != nil || got.Source != store.SourceLDAP {
		t.Errorf("GetUser(dora): got source %q, error %v; want ldap, nil", got.Source, err)
	}
	// The schema itself refuses a source no binary knows.
	if _, err := s.w.Exec(`UPDATE users SET source = 'kerberos' WHERE username = 'dora'`); err == nil {
		t.Errorf("UPDATE users SET source = 'kerberos': got no error, want the CHECK constraint to refuse it")
	}
}
