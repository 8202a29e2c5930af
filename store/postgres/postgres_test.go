package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/signet-auth/signet/store"
	"github.com/signet-auth/signet/store/storetest"
)

// dsnEnv names the variable that enables these tests, e.g.
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
const dsnEnv = "SIGNET_TEST_POSTGRES_DSN"

// waitBound keeps a broken watcher from hanging the run; it is never an
// assertion on speed.
const waitBound = 30 * time.Second

// testDB is one fresh database created for one top-level test.
type testDB struct {
	baseDSN string // the DSN from the environment
	name    string // the fresh database
}

// newTestDB creates database signet_test_<random> and drops it when tb
// ends. It skips tb when SIGNET_TEST_POSTGRES_DSN is unset.
func newTestDB(tb testing.TB) *testDB {
	tb.Helper()
	base := os.Getenv(dsnEnv)
	if base == "" {
		tb.Skipf("%s is not set; set it (e.g. postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable) to run the PostgreSQL tests", dsnEnv)
	}
	db := &testDB{baseDSN: base, name: "signet_test_" + randomHex(tb, 8)}
	admin := adminConn(tb, base)
	if _, err := admin.Exec(context.Background(), "CREATE DATABASE "+pgx.Identifier{db.name}.Sanitize()); err != nil {
		tb.Fatalf("CREATE DATABASE %s: got error %v, want nil", db.name, err)
	}
	tb.Cleanup(func() {
		admin := adminConn(tb, base)
		if _, err := admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{db.name}.Sanitize()+" WITH (FORCE)"); err != nil {
			tb.Errorf("DROP DATABASE %s: got error %v, want nil", db.name, err)
		}
	})
	return db
}

// adminConn connects to the environment's database; closed when tb ends.
func adminConn(tb testing.TB, dsn string) *pgx.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatalf("connect to %s: got error %v, want nil", dsnEnv, err)
	}
	tb.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// dsn returns a DSN for the test database with the given search_path
// ("" = server default).
func (db *testDB) dsn(tb testing.TB, schema string) string {
	tb.Helper()
	if strings.HasPrefix(db.baseDSN, "postgres://") || strings.HasPrefix(db.baseDSN, "postgresql://") {
		u, err := url.Parse(db.baseDSN)
		if err != nil {
			tb.Fatalf("parse %s: got error %v, want nil", dsnEnv, err)
		}
		u.Path = "/" + db.name
		q := u.Query()
		if schema != "" {
			q.Set("search_path", schema)
		}
		u.RawQuery = q.Encode()
		return u.String()
	}
	s := db.baseDSN + " dbname=" + db.name
	if schema != "" {
		s += " search_path=" + schema
	}
	return s
}

// newSchema creates a fresh schema in db and returns a DSN whose
// search_path points at it; the schema is dropped when tb ends (after any
// store opened later has been closed, since cleanups run last-in first-out).
func (db *testDB) newSchema(tb testing.TB) string {
	tb.Helper()
	schema := "s_" + randomHex(tb, 6)
	conn := adminConn(tb, db.dsn(tb, ""))
	if _, err := conn.Exec(context.Background(), "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("CREATE SCHEMA %s: got error %v, want nil", schema, err)
	}
	tb.Cleanup(func() {
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("DROP SCHEMA %s: got error %v, want nil", schema, err)
		}
	})
	return db.dsn(tb, schema)
}

// open opens a Store on dsn and closes it when tb ends.
func open(tb testing.TB, dsn string) *Store {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	s, err := Open(ctx, dsn)
	if err != nil {
		tb.Fatalf("Open: got error %v, want nil", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: got error %v, want nil", err)
		}
	})
	return s
}

func randomHex(tb testing.TB, n int) string {
	tb.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		tb.Fatalf("rand: %v", err)
	}
	return hex.EncodeToString(b)
}

func TestConformance(t *testing.T) {
	db := newTestDB(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, db.newSchema(t))
	})
	storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
		dsn := db.newSchema(t)
		return open(t, dsn), open(t, dsn)
	})
}

func TestConcurrentOpenMigratesOnce(t *testing.T) {
	db := newTestDB(t)
	dsn := db.newSchema(t)
	const n = 4
	stores := make([]*Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), waitBound)
			defer cancel()
			stores[i], errs[i] = Open(ctx, dsn)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open #%d: got error %v, want nil", i, err)
		}
		s := stores[i]
		t.Cleanup(func() { _ = s.Close() })
	}

	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatalf("loadMigrations: got error %v, want nil", err)
	}
	conn := adminConn(t, dsn)
	ctx := context.Background()
	var rows, distinct int
	if err := conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&rows, &distinct); err != nil {
		t.Fatalf("count schema_migrations: got error %v, want nil", err)
	}
	if rows != len(ms) || distinct != len(ms) {
		t.Errorf("schema_migrations: got %d rows (%d distinct), want %d", rows, distinct, len(ms))
	}
	var counters int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM revocation_state`).Scan(&counters); err != nil {
		t.Fatalf("count revocation_state: got error %v, want nil", err)
	}
	if counters != 1 {
		t.Errorf("revocation_state rows: got %d, want 1", counters)
	}

	// Every handle works, and a later Open finds nothing to do.
	for i, s := range stores {
		if err := s.Ping(ctx); err != nil {
			t.Errorf("Ping #%d: got error %v, want nil", i, err)
		}
	}
	open(t, dsn)
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&rows); err != nil {
		t.Fatalf("count schema_migrations: got error %v, want nil", err)
	}
	if rows != len(ms) {
		t.Errorf("schema_migrations after reopen: got %d rows, want %d", rows, len(ms))
	}
}

func TestOpenRejectsNewerSchema(t *testing.T) {
	db := newTestDB(t)
	dsn := db.newSchema(t)
	open(t, dsn)
	conn := adminConn(t, dsn)
	if _, err := conn.Exec(context.Background(), `INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future.sql')`); err != nil {
		t.Fatalf("insert future migration: got error %v, want nil", err)
	}
	s, err := Open(context.Background(), dsn)
	if err == nil {
		_ = s.Close()
		t.Fatal("Open on a newer schema: got nil error, want an error")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open on a newer schema: got %q, want it to say the schema is newer", err)
	}
}

func TestOpenErrors(t *testing.T) {
	const secret = "s3cr3t-pw-do-not-log"
	tests := []struct {
		name string
		dsn  string
	}{
		{"malformed URL", "postgres://user:" + secret + "@127.0.0.1:notaport/db"},
		{"unknown sslmode", "postgres://user:" + secret + "@127.0.0.1:5432/db?sslmode=bogus"},
		{"nothing listening", "postgres://user:" + secret + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=5"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), waitBound)
			defer cancel()
			s, err := Open(ctx, tc.dsn)
			if err == nil {
				_ = s.Close()
				t.Fatal("Open: got nil error, want an error")
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("Open error: got %q, want no password in it", err)
			}
		})
	}
}

func TestLoadMigrations(t *testing.T) {
	tests := []struct {
		name     string
		files    fstest.MapFS
		wantErr  string
		wantVers []int
	}{
		{"embedded", nil, "", nil},
		{"ordered", fstest.MapFS{
			"migrations/0002_b.sql": {Data: []byte("SELECT 2")},
			"migrations/0001_a.sql": {Data: []byte("SELECT 1")},
		}, "", []int{1, 2}},
		{"gap", fstest.MapFS{
			"migrations/0001_a.sql": {Data: []byte("SELECT 1")},
			"migrations/0003_c.sql": {Data: []byte("SELECT 3")},
		}, "want 2", nil},
		{"repeat", fstest.MapFS{
			"migrations/0001_a.sql": {Data: []byte("SELECT 1")},
			"migrations/001_b.sql":  {Data: []byte("SELECT 1")},
		}, "want 2", nil},
		{"no underscore", fstest.MapFS{"migrations/0001.sql": {Data: []byte("SELECT 1")}}, "NNNN_description", nil},
		{"not a number", fstest.MapFS{"migrations/one_a.sql": {Data: []byte("SELECT 1")}}, "bad version", nil},
		{"zero", fstest.MapFS{"migrations/0000_a.sql": {Data: []byte("SELECT 1")}}, "bad version", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ms []migration
			var err error
			if tc.files == nil {
				ms, err = loadMigrations(migrationFiles)
			} else {
				ms, err = loadMigrations(tc.files)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("loadMigrations: got error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("loadMigrations: got error %v, want nil", err)
			}
			if len(ms) == 0 {
				t.Fatal("loadMigrations: got no migrations, want at least one")
			}
			for i, m := range ms {
				if m.version != i+1 || m.sql == "" {
					t.Errorf("migration %d: got version %d with %d bytes of SQL, want version %d with SQL", i, m.version, len(m.sql), i+1)
				}
			}
			if tc.wantVers != nil && len(ms) != len(tc.wantVers) {
				t.Errorf("loadMigrations: got %d migrations, want %d", len(ms), len(tc.wantVers))
			}
		})
	}
}

// waitSignal waits (bounded) for a signal on ch and fails if ch closes.
func waitSignal(tb testing.TB, ch <-chan struct{}, what string) {
	tb.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			tb.Fatalf("%s: got a closed channel, want a signal", what)
		}
	case <-time.After(waitBound):
		tb.Fatalf("%s: got no signal within %s, want one", what, waitBound)
	}
}

// drain empties a coalesced pending signal, if any.
func drain(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}

// waitClosed waits (bounded) for ch to be closed, discarding signals.
func waitClosed(tb testing.TB, ch <-chan struct{}, what string) {
	tb.Helper()
	deadline := time.After(waitBound)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			tb.Fatalf("%s: channel still open after %s, want it closed", what, waitBound)
		}
	}
}

var testNow = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

func createToken(tb testing.TB, s store.Store, id string) {
	tb.Helper()
	err := s.CreateToken(context.Background(), store.TokenRecord{
		ID: id, Type: store.TokenAdministrative, Org: "acme", Subject: "token:" + id,
		Scopes: []string{"*"}, CreatedBy: "alice", KeyID: "kid-1",
		IssuedAt: testNow, ExpiresAt: testNow.Add(time.Hour), Lifetime: time.Hour,
	})
	if err != nil {
		tb.Fatalf("CreateToken(%s): got error %v, want nil", id, err)
	}
}

func TestWatchSignalsRevocationsFromOtherHandle(t *testing.T) {
	db := newTestDB(t)
	dsn := db.newSchema(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := a.WatchRevocations(ctx)
	if err != nil {
		t.Fatalf("WatchRevocations: got error %v, want nil", err)
	}
	if err := b.CreateUser(ctx, store.User{Username: "bob", Org: "acme", Role: store.RoleMember, PasswordHash: "h"}); err != nil {
		t.Fatalf("CreateUser: got error %v, want nil", err)
	}
	createToken(t, b, "tok-1")
	createToken(t, b, "tok-2")
	createToken(t, b, "tok-3")

	tests := []struct {
		name   string
		revoke func() error
	}{
		{"RevokeToken", func() error { _, err := b.RevokeToken(ctx, "tok-1", testNow, "test"); return err }},
		{"ReplaceToken", func() error {
			next := store.TokenRecord{ID: "tok-2b", Type: store.TokenAdministrative, Org: "acme", Subject: "token:tok-2b",
				IssuedAt: testNow, ExpiresAt: testNow.Add(time.Hour), Lifetime: time.Hour, ParentID: "tok-2"}
			_, err := b.ReplaceToken(ctx, "tok-2", next, testNow, time.Time{})
			return err
		}},
		{"RevokeKey", func() error { _, err := b.RevokeKey(ctx, "kid-1", testNow, testNow.Add(time.Hour)); return err }},
		{"DeleteUser", func() error { _, err := b.DeleteUser(ctx, "bob", testNow, testNow.Add(time.Hour)); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			drain(ch)
			if err := tc.revoke(); err != nil {
				t.Fatalf("%s: got error %v, want nil", tc.name, err)
			}
			waitSignal(t, ch, "watcher after "+tc.name)
		})
	}

	cancel()
	waitClosed(t, ch, "watcher after ctx cancel")
}

// listenerPID returns the backend pid of the watcher connection, polling
// (bounded) until exactly one other than not exists.
func listenerPID(tb testing.TB, conn *pgx.Conn, not int32) int32 {
	tb.Helper()
	for range 600 {
		var pids []int32
		rows, err := conn.Query(context.Background(), `SELECT pid FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = $1`, WatcherApplicationName)
		if err != nil {
			tb.Fatalf("query pg_stat_activity: got error %v, want nil", err)
		}
		pids, err = pgx.CollectRows(rows, pgx.RowTo[int32])
		if err != nil {
			tb.Fatalf("query pg_stat_activity: got error %v, want nil", err)
		}
		if len(pids) == 1 && pids[0] != not {
			return pids[0]
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("listener backend: not found in pg_stat_activity, want exactly one (other than %d)", not)
	return 0
}

func TestWatchSurvivesTerminatedConnection(t *testing.T) {
	db := newTestDB(t)
	dsn := db.newSchema(t)
	a, b := open(t, dsn), open(t, dsn)
	admin := adminConn(t, dsn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := a.WatchRevocations(ctx)
	if err != nil {
		t.Fatalf("WatchRevocations: got error %v, want nil", err)
	}

	for round := range 2 {
		pid := listenerPID(t, admin, 0)
		drain(ch)
		var ok bool
		if err := admin.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, pid).Scan(&ok); err != nil || !ok {
			t.Fatalf("round %d: pg_terminate_backend(%d): got %v, %v, want true, nil", round, pid, ok, err)
		}
		waitSignal(t, ch, fmt.Sprintf("round %d: watcher after reconnect", round))
		listenerPID(t, admin, pid)

		id := fmt.Sprintf("tok-%d", round)
		createToken(t, b, id)
		drain(ch)
		if _, err := b.RevokeToken(ctx, id, testNow, "test"); err != nil {
			t.Fatalf("round %d: RevokeToken: got error %v, want nil", round, err)
		}
		waitSignal(t, ch, fmt.Sprintf("round %d: watcher after revocation on the new connection", round))
	}
}

func TestWatchEndsWithStore(t *testing.T) {
	db := newTestDB(t)
	dsn := db.newSchema(t)
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open: got error %v, want nil", err)
	}
	ch, err := s.WatchRevocations(context.Background())
	if err != nil {
		t.Fatalf("WatchRevocations: got error %v, want nil", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: got error %v, want nil", err)
	}
	waitClosed(t, ch, "watcher after Close")
	if _, err := s.WatchRevocations(context.Background()); err == nil {
		t.Error("WatchRevocations after Close: got nil error, want an error")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: got error %v, want nil", err)
	}
}

func TestWatchCancelledContext(t *testing.T) {
	db := newTestDB(t)
	s := open(t, db.newSchema(t))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ch, err := s.WatchRevocations(ctx)
	if err == nil {
		waitClosed(t, ch, "watcher on a cancelled context")
		return
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("WatchRevocations(cancelled): got %v, want nil or context.Canceled", err)
	}
}

// TestSeqIsCommitOrder appends through two handles at once while a reader
// checks that, after it has read version V, every entry with Seq <= V is
// already visible: no entry with a smaller Seq commits later.
func TestSeqIsCommitOrder(t *testing.T) {
	db := newTestDB(t)
	dsn := db.newSchema(t)
	a, b := open(t, dsn), open(t, dsn)
	const perWriter = 40
	for i := range 2 * perWriter {
		createToken(t, a, fmt.Sprintf("tok-%03d", i))
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	writerErrs := make(chan error, 4)
	done := make(chan struct{})
	for w, s := range []*Store{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < 2*perWriter; i += 4 {
				if _, err := s.RevokeToken(ctx, fmt.Sprintf("tok-%03d", i), testNow, "test"); err != nil {
					writerErrs <- err
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()

	violations := 0
	for reading := true; reading; {
		select {
		case <-done:
			reading = false
		default:
		}
		st, err := b.RevocationState(ctx)
		if err != nil {
			t.Fatalf("RevocationState: got error %v, want nil", err)
		}
		entries, err := a.ListRevocations(ctx, 0, testNow)
		if err != nil {
			t.Fatalf("ListRevocations: got error %v, want nil", err)
		}
		seen := map[int64]bool{}
		for _, e := range entries {
			seen[e.Seq] = true
		}
		for seq := int64(1); seq <= st.Latest; seq++ {
			if !seen[seq] {
				violations++
				t.Errorf("after reading version %d: entry %d not visible, want every entry <= %d", st.Latest, seq, st.Latest)
			}
		}
		if violations > 0 {
			break
		}
	}
	<-done
	close(writerErrs)
	for err := range writerErrs {
		t.Errorf("RevokeToken: got error %v, want nil", err)
	}
	st, err := a.RevocationState(ctx)
	if err != nil {
		t.Fatalf("RevocationState: got error %v, want nil", err)
	}
	if st.Latest != 2*perWriter {
		t.Errorf("Latest: got %d, want %d", st.Latest, 2*perWriter)
	}
}

// TestRejectsTextPostgresCannotHold checks that strings PostgreSQL's text
// type cannot store are refused with an error naming the field, changing
// nothing, and never echoing the value.
func TestRejectsTextPostgresCannotHold(t *testing.T) {
	db := newTestDB(t)
	s := open(t, db.newSchema(t))
	ctx := context.Background()
	const nul, badUTF8 = "bad\x00value", "bad\xffvalue"
	tok := func(mutate func(*store.TokenRecord)) store.TokenRecord {
		r := store.TokenRecord{ID: "tok-1", Name: "n", Type: store.TokenPersonal, Owner: "alice", OwnerID: "uid-alice", Org: "acme",
			Subject: "alice", Scopes: []string{"a:read"}, IssuedAt: testNow, ExpiresAt: testNow.Add(time.Hour), Lifetime: time.Hour}
		mutate(&r)
		return r
	}
	tests := []struct {
		name      string
		call      func() error
		wantField string
	}{
		{"username with NUL", func() error {
			return s.CreateUser(ctx, store.User{Username: nul, Org: "acme", Role: store.RoleMember, PasswordHash: "h"})
		}, "username"},
		{"email with invalid UTF-8", func() error {
			return s.CreateUser(ctx, store.User{Username: "u", Email: badUTF8, Org: "acme", Role: store.RoleMember, PasswordHash: "h"})
		}, "email"},
		{"password hash with NUL", func() error {
			return s.SetPassword(ctx, "alice", nul, testNow, time.Time{}, time.Time{})
		}, "password hash"},
		{"scope with NUL", func() error {
			return s.CreateToken(ctx, tok(func(r *store.TokenRecord) { r.Scopes = []string{"ok", nul} }))
		}, "scope 1"},
		{"token name with invalid UTF-8", func() error {
			return s.CreateToken(ctx, tok(func(r *store.TokenRecord) { r.Name = badUTF8 }))
		}, "name"},
		{"revocation reason with NUL", func() error {
			_, err := s.RevokeToken(ctx, "tok-0", testNow, nul)
			return err
		}, "reason"},
		{"key id with invalid UTF-8", func() error {
			_, err := s.RevokeKey(ctx, badUTF8, testNow, testNow.Add(time.Hour))
			return err
		}, "key id"},
		{"audit detail with NUL", func() error {
			return s.AppendAudit(ctx, store.AuditEvent{Action: "token.create", Detail: nul})
		}, "detail"},
	}
	if err := s.CreateUser(ctx, store.User{Username: "alice", Org: "acme", Role: store.RoleMember, PasswordHash: "h"}); err != nil {
		t.Fatalf("CreateUser: got error %v, want nil", err)
	}
	createToken(t, s, "tok-0")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil {
				t.Fatal("got nil error, want one")
			}
			if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict) {
				t.Fatalf("got %v, want an invalid-input error", err)
			}
			if !strings.Contains(err.Error(), tc.wantField) {
				t.Errorf("got %q, want it to name %q", err, tc.wantField)
			}
			if strings.Contains(err.Error(), "bad") {
				t.Errorf("got %q, want the value not echoed", err)
			}
		})
	}
	st, err := s.RevocationState(ctx)
	if err != nil {
		t.Fatalf("RevocationState: got error %v, want nil", err)
	}
	if st.Latest != 0 {
		t.Errorf("Latest after rejected calls: got %d, want 0", st.Latest)
	}
	if _, err := s.GetToken(ctx, "tok-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetToken(rejected): got %v, want ErrNotFound", err)
	}
}

// TestLookupsOfUnstorableKeys checks that keys PostgreSQL cannot hold (so no
// row can carry them) answer ErrNotFound or an empty list, never a server
// error the HTTP layer would turn into a 5xx.
func TestLookupsOfUnstorableKeys(t *testing.T) {
	db := newTestDB(t)
	s := open(t, db.newSchema(t))
	ctx := context.Background()
	for _, key := range []string{"nul\x00key", "bad\xffutf8"} {
		notFound := []struct {
			name string
			call func() error
		}{
			{"GetUser", func() error { _, err := s.GetUser(ctx, key); return err }},
			{"SetPassword", func() error { return s.SetPassword(ctx, key, "h", testNow, time.Time{}, time.Time{}) }},
			{"DeleteUser", func() error { _, err := s.DeleteUser(ctx, key, testNow, testNow.Add(time.Hour)); return err }},
			{"GetToken", func() error { _, err := s.GetToken(ctx, key); return err }},
			{"RevokeToken", func() error { _, err := s.RevokeToken(ctx, key, testNow, "r"); return err }},
			{"ReplaceToken", func() error {
				next := store.TokenRecord{ID: "tok-next", Type: store.TokenAdministrative, Org: "acme",
					IssuedAt: testNow, ExpiresAt: testNow.Add(time.Hour)}
				_, err := s.ReplaceToken(ctx, key, next, testNow, time.Time{})
				return err
			}},
			{"GetTokenRevocation", func() error { _, err := s.GetTokenRevocation(ctx, key); return err }},
		}
		for _, tc := range notFound {
			t.Run(fmt.Sprintf("%s/%q", tc.name, key), func(t *testing.T) {
				if err := tc.call(); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("got %v, want ErrNotFound", err)
				}
			})
		}
		empty := []struct {
			name string
			call func() (int, error)
		}{
			{"ListUsers", func() (int, error) { u, err := s.ListUsers(ctx, key); return len(u), err }},
			{"ListTokens", func() (int, error) {
				r, err := s.ListTokens(ctx, store.TokenFilter{Owner: key})
				return len(r), err
			}},
			{"ListAudit", func() (int, error) { e, err := s.ListAudit(ctx, store.AuditFilter{Actor: key}); return len(e), err }},
		}
		for _, tc := range empty {
			t.Run(fmt.Sprintf("%s/%q", tc.name, key), func(t *testing.T) {
				n, err := tc.call()
				if err != nil || n != 0 {
					t.Errorf("got %d results, error %v, want 0, nil", n, err)
				}
			})
		}
	}
}

// TestDatabaseDefaultsDoNotWeakenGuarantees runs the concurrency subtests
// on a database whose defaults an operator tuned against signet: stricter
// isolation (under which concurrent revocations would fail with
// serialization errors instead of queueing) and synchronous_commit off
// (under which an acknowledged revocation could vanish in a server crash).
// The store must keep its own READ COMMITTED transactions and durable
// commits regardless.
func TestDatabaseDefaultsDoNotWeakenGuarantees(t *testing.T) {
	for _, iso := range []string{"repeatable read", "serializable"} {
		t.Run(iso, func(t *testing.T) {
			db := newTestDB(t)
			admin := adminConn(t, db.baseDSN)
			for _, set := range []string{
				"SET default_transaction_isolation = '" + iso + "'",
				"SET synchronous_commit = off",
			} {
				if _, err := admin.Exec(context.Background(), "ALTER DATABASE "+pgx.Identifier{db.name}.Sanitize()+" "+set); err != nil {
					t.Fatalf("ALTER DATABASE %s: got error %v, want nil", set, err)
				}
			}
			dsn := db.newSchema(t)
			s := open(t, dsn)
			ctx := context.Background()
			// Every pooled connection, not just the first.
			conns := make([]*pgxpool.Conn, 0, s.pool.Config().MaxConns)
			for range cap(conns) {
				c, err := s.pool.Acquire(ctx)
				if err != nil {
					t.Fatalf("Acquire: got error %v, want nil", err)
				}
				conns = append(conns, c)
			}
			for i, c := range conns {
				var got string
				if err := c.QueryRow(ctx, "SHOW synchronous_commit").Scan(&got); err != nil {
					t.Fatalf("SHOW synchronous_commit: got error %v, want nil", err)
				}
				if got == "off" {
					t.Errorf("connection %d: synchronous_commit got %q, want a durable setting", i, got)
				}
			}
			for _, c := range conns {
				c.Release()
			}
			storetest.RunShared(t, func(t *testing.T) (store.Store, store.Store) {
				dsn := db.newSchema(t)
				return open(t, dsn), open(t, dsn)
			})
		})
	}
}

// TestHotPathQueryPlans checks that the lookups on hot paths are index
// searches under a generic plan, the plan PostgreSQL switches to for a
// prepared statement (pgx prepares every query) after a few executions: a
// partial index whose predicate involves a parameter is useless to it.
func TestHotPathQueryPlans(t *testing.T) {
	db := newTestDB(t)
	dsn := db.newSchema(t)
	open(t, dsn)
	conn := adminConn(t, dsn) // its own session, so the settings stay here
	ctx := context.Background()
	for _, set := range []string{"SET plan_cache_mode = force_generic_plan", "SET enable_seqscan = off"} {
		if _, err := conn.Exec(ctx, set); err != nil {
			t.Fatalf("%s: got error %v, want nil", set, err)
		}
	}
	tests := []struct {
		name  string
		query string
		args  string // SQL literals for EXECUTE
		index string
	}{
		{"GetTokenRevocation", `SELECT ` + revocationColumns + ` FROM revocations
			WHERE kind = $1 AND value = $2 ORDER BY seq DESC LIMIT 1`, `'token', 'tok'`, "revocations_kind_value"},
		{"ListRevocations since", `SELECT ` + revocationColumns + ` FROM revocations
			WHERE seq > $1::bigint AND expires_at > $2::timestamptz ORDER BY seq`, `5, now()`, "on revocations_"}, // the key or the expiry index
		{"ListTokens by org and owner", `SELECT ` + tokenColumns + ` FROM tokens
			WHERE org = $1 AND owner = $2 AND revoked_at IS NULL ORDER BY issued_at DESC, row_seq DESC`,
			`'acme', 'bob'`, "tokens_org_owner_issued"},
		{"ListTokens by org and owner id", `SELECT ` + tokenColumns + ` FROM tokens
			WHERE org = $1 AND owner_id = $2 AND revoked_at IS NULL ORDER BY issued_at DESC, row_seq DESC`,
			`'acme', 'uid-bob'`, "tokens_org_owner_id_issued"},
		{"DeleteUser's latest covered expiry", `SELECT max(expires_at) FROM tokens WHERE ` + coveredTokens(false),
			`'uid-bob', 'bob', 'acme'`, "tokens_org_owner_id_issued"},
		{"DeleteUser's token revocation", `UPDATE tokens SET revoked_at = $4::timestamptz WHERE revoked_at IS NULL AND ` + coveredTokens(false),
			`'uid-bob', 'bob', 'acme', now()`, "tokens_org_owner_id_issued"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("plan_%d", i)
			if _, err := conn.Exec(ctx, "PREPARE "+name+" AS "+tc.query); err != nil {
				t.Fatalf("PREPARE: got error %v, want nil", err)
			}
			rows, err := conn.Query(ctx, "EXPLAIN EXECUTE "+name+"("+tc.args+")")
			if err != nil {
				t.Fatalf("EXPLAIN: got error %v, want nil", err)
			}
			lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatalf("EXPLAIN: got error %v, want nil", err)
			}
			plan := strings.Join(lines, "\n")
			if !strings.Contains(plan, tc.index) {
				t.Errorf("generic plan:\n%s\ngot no use of %s, want it", plan, tc.index)
			}
			if strings.Contains(plan, "Seq Scan") {
				t.Errorf("generic plan:\n%s\ngot a sequential scan, want an index", plan)
			}
		})
	}
}

// TestUpgradeFromVersion1 opens a database that predates migration 2 and
// checks that start-up brings it up to date without losing data.
func TestUpgradeFromVersion1(t *testing.T) {
	db := newTestDB(t)
	dsn := db.newSchema(t)
	s := open(t, dsn)
	createToken(t, s, "tok-1")
	conn := adminConn(t, dsn)
	ctx := context.Background()
	for _, q := range append(undoUserIDs,
		`DROP INDEX tokens_org_owner_issued`,
		`CREATE INDEX tokens_owner ON tokens (owner, type) WHERE owner <> ''`,
		`DELETE FROM schema_migrations WHERE version >= 2`,
	) {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: got error %v, want nil", q, err)
		}
	}
	s2 := open(t, dsn)
	var version int
	if err := conn.QueryRow(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&version); err != nil {
		t.Fatalf("read schema version: got error %v, want nil", err)
	}
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		t.Fatalf("loadMigrations: got error %v, want nil", err)
	}
	if version != len(ms) {
		t.Errorf("schema version after upgrade: got %d, want %d", version, len(ms))
	}
	var indexes []string
	rows, err := conn.Query(ctx, `SELECT indexname FROM pg_indexes WHERE tablename = 'tokens' AND schemaname = current_schema() ORDER BY 1`)
	if err != nil {
		t.Fatalf("list indexes: got error %v, want nil", err)
	}
	if indexes, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatalf("list indexes: got error %v, want nil", err)
	}
	if !slices.Contains(indexes, "tokens_org_owner_issued") || slices.Contains(indexes, "tokens_owner") {
		t.Errorf("token indexes after upgrade: got %v, want tokens_org_owner_issued and no tokens_owner", indexes)
	}
	if _, err := s2.GetToken(ctx, "tok-1"); err != nil {
		t.Errorf("GetToken after upgrade: got error %v, want nil", err)
	}
	if st, err := s2.RevocationState(ctx); err != nil || len(st.Epoch) != 16 {
		t.Errorf("revocation state after upgrade: got %+v, %v; want a 16-character epoch", st, err)
	}
}

// undoGrace turns a database back to before migration 6 (grace periods),
// undoing migration 7 (user sources) first.
var undoGrace = append(slices.Clip(undoUserSource),
	`ALTER TABLE revocations DROP COLUMN valid_until`,
	`ALTER TABLE tokens DROP COLUMN valid_until`,
	`DELETE FROM schema_migrations WHERE version >= 6`,
)

// undoUserIDs turns a database back to before migration 3 (user ids),
// undoing migrations 6 (grace periods), 5 (expiry notices) and 4 (the
// revocation log's epoch and tags) first.
var undoUserIDs = append(append(slices.Clip(undoGrace), undoExpiryNotices...),
	`ALTER TABLE revocation_state DROP COLUMN epoch`,
	`ALTER TABLE revocation_state DROP COLUMN head`,
	`ALTER TABLE revocations DROP COLUMN tag`,
	`DROP INDEX tokens_org_owner_id_issued`,
	`DROP INDEX users_id`,
	`ALTER TABLE tokens DROP COLUMN owner_id`,
	`ALTER TABLE users DROP COLUMN id`,
	`DELETE FROM schema_migrations WHERE version >= 3`,
)

// undoUserSource turns a database back to before migration 7 (user sources).
var undoUserSource = []string{
	`DROP INDEX users_source`,
	`ALTER TABLE users DROP COLUMN source`,
	`DELETE FROM schema_migrations WHERE version >= 7`,
}

// undoExpiryNotices turns a database back to before migration 5 (expiry
// notices).
var undoExpiryNotices = []string{
	`DROP TABLE expiry_notices`,
	`DELETE FROM schema_migrations WHERE version >= 5`,
}

// TestUpgradeToUserIDs: migration 3 gives every user an id and maps each
// personal token to the user holding its owner's name, unless that user
// was created after the token was issued (an earlier holder's token), and
// then to nobody.
func TestUpgradeToUserIDs(t *testing.T) {
	db := newTestDB(t)
	dsn := db.newSchema(t)
	s := open(t, dsn)
	ctx := context.Background()
	user := func(name string, created time.Time) store.User {
		return store.User{ID: "x-" + name, Username: name, Email: name + "@example.com", Org: "acme", Role: store.RoleMember,
			PasswordHash: "$2a$10$x", CreatedAt: created, UpdatedAt: created}
	}
	personal := func(id, owner string, issued time.Time) store.TokenRecord {
		return store.TokenRecord{ID: id, Type: store.TokenPersonal, Owner: owner, OwnerID: "x-" + owner, Org: "acme",
			Subject: owner, Scopes: []string{"a:read"}, CreatedBy: owner, KeyID: "kid-1",
			IssuedAt: issued, ExpiresAt: issued.Add(24 * time.Hour), Lifetime: 24 * time.Hour}
	}
	for _, u := range []store.User{user("alice", testNow), user("ivan", testNow.Add(2*time.Hour))} {
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatalf("CreateUser: got error %v, want nil", err)
		}
	}
	for _, tok := range []store.TokenRecord{
		personal("tok-alice", "alice", testNow.Add(time.Hour)),
		personal("tok-ivan-old", "ivan", testNow.Add(time.Hour)), // an earlier ivan's
		personal("tok-ivan", "ivan", testNow.Add(3*time.Hour)),
		personal("tok-zed", "zed", testNow.Add(time.Hour)), // a removed user's
	} {
		if err := s.CreateToken(ctx, tok); err != nil {
			t.Fatalf("CreateToken(%s): got error %v, want nil", tok.ID, err)
		}
	}
	createToken(t, s, "tok-admin")
	conn := adminConn(t, dsn)
	for _, q := range undoUserIDs {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: got error %v, want nil", q, err)
		}
	}

	s2 := open(t, dsn)
	ids := map[string]string{}
	for _, name := range []string{"alice", "ivan"} {
		u, err := s2.GetUser(ctx, name)
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
		got, err := s2.GetToken(ctx, id)
		if err != nil {
			t.Fatalf("GetToken(%s): got error %v, want nil", id, err)
		}
		if got.OwnerID != want {
			t.Errorf("%s after the upgrade: OwnerID %q, want %q", id, got.OwnerID, want)
		}
	}
	if _, err := s2.DeleteUser(ctx, "ivan", testNow.Add(4*time.Hour), testNow.Add(100*time.Hour)); err != nil {
		t.Fatalf("DeleteUser: got error %v, want nil", err)
	}
	for id, revoked := range map[string]bool{"tok-ivan": true, "tok-ivan-old": true, "tok-alice": false} {
		got, err := s2.GetToken(ctx, id)
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
	db := newTestDB(t)
	dsn := db.newSchema(t)
	s := open(t, dsn)
	ctx := context.Background()
	alice := store.User{ID: "x-alice", Username: "alice", Email: "alice@example.com", Org: "acme", Role: store.RoleAdmin,
		PasswordHash: "$2a$10$x", CreatedAt: testNow, UpdatedAt: testNow}
	if err := s.CreateUser(ctx, alice); err != nil {
		t.Fatalf("CreateUser: got error %v, want nil", err)
	}
	conn := adminConn(t, dsn)
	for _, q := range undoUserSource {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: got error %v, want nil", q, err)
		}
	}
	s2 := open(t, dsn)
	got, err := s2.GetUser(ctx, "alice")
	if err != nil {
		t.Fatalf("GetUser(alice): got error %v, want nil", err)
	}
	if got.Source != store.SourceLocal || got.PasswordHash != alice.PasswordHash || got.ID != alice.ID {
		t.Errorf("alice after the upgrade: source %q, hash %q, id %q; want local, %q, %q", got.Source, got.PasswordHash, got.ID, alice.PasswordHash, alice.ID)
	}
	dora := store.User{Username: "dora", Email: "dora@example.com", Org: "acme", Role: store.RoleMember, Source: store.SourceLDAP}
	if err := s2.CreateUser(ctx, dora); err != nil {
		t.Fatalf("CreateUser(directory user): got error %v, want nil", err)
	}
	if got, err := s2.GetUser(ctx, "dora"); err != nil || got.Source != store.SourceLDAP {
		t.Errorf("GetUser(dora): got source %q, error %v; want ldap, nil", got.Source, err)
	}
	if _, err := conn.Exec(ctx, `UPDATE users SET source = 'kerberos' WHERE username = 'dora'`); err == nil {
		t.Errorf("UPDATE users SET source = 'kerberos': got no error, want the CHECK constraint to refuse it")
	}
}
