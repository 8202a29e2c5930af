// Package sqlite is the SQLite backend of store.Store, on the pure-Go
// driver modernc.org/sqlite, for single-node deployments and the CLI.
//
// The database is one file in WAL mode with synchronous=FULL, so a method
// that returned nil has its change in the fsync'ed log: an acknowledged
// revocation survives a crash. Writes go through a pool of exactly one
// connection and every write transaction starts with BEGIN IMMEDIATE, so
// goroutines of one process queue in Go instead of failing with
// SQLITE_BUSY, and a second process (the CLI next to a running issuer)
// waits for the write lock up to the busy timeout. Reads use a separate
// pool of read-only connections, which WAL lets run beside the writer.
//
// The revocation log's Seq comes from a one-row counter incremented inside
// the writing transaction; as writers are serialised by the database lock,
// Seq order is commit order.
//
// SQLite offers no cross-process change notification, so Store does not
// implement store.RevocationWatcher: the issuer polls ListRevocations.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/signet-auth/signet/store"
)

// busyTimeout is how long a write waits for another process to release the
// database's write lock before it fails.
const busyTimeout = 10 * time.Second

// readers is the size of the read-only connection pool.
const readers = 4

// defaultAuditLimit is ListAudit's limit when the filter sets none.
const defaultAuditLimit = 1000

// Store is a store.Store on one SQLite database file. It is safe for
// concurrent use; open it with Open and release it with Close.
type Store struct {
	path string
	w    *sql.DB // exactly one connection; every transaction BEGIN IMMEDIATE
	r    *sql.DB // read-only connections
	now  func() time.Time
}

var _ store.Store = (*Store)(nil)

// Open opens, and on first use creates, the SQLite database at dsn, a file
// path such as "data/signet.db". A missing parent directory is created with
// mode 0700 and a missing file with mode 0600 (it holds password hashes).
// Open brings the schema up to date; it is safe for several processes to
// open one file at the same time.
func Open(ctx context.Context, dsn string) (*Store, error) {
	path, err := checkPath(dsn)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: create directory: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}

	s := &Store{path: path, now: time.Now}
	s.w, err = sql.Open("sqlite", connString(path, true))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)
	// Connecting switches a new file to WAL, which needs a lock that
	// SQLite does not wait for; another process opening the same new file
	// at the same moment makes that fail with SQLITE_BUSY, so retry.
	if err := retryBusy(ctx, func() error { return s.w.PingContext(ctx) }); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("sqlite: open %s: connect: %w", path, err)
	}
	if err := retryBusy(ctx, func() error { return migrate(ctx, s.w) }); err != nil {
		s.w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s.r, err = sql.Open("sqlite", connString(path, false))
	if err != nil {
		s.w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	s.r.SetMaxOpenConns(readers)
	s.r.SetMaxIdleConns(readers)
	if err := retryBusy(ctx, func() error { return s.Ping(ctx) }); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return s, nil
}

// checkPath turns dsn into an absolute file path, refusing what the
// driver would read as something else (URIs, in-memory databases, query
// parameters).
func checkPath(dsn string) (string, error) {
	switch {
	case strings.TrimSpace(dsn) == "":
		return "", errors.New("sqlite: empty database path (set store.dsn)")
	case dsn == ":memory:" || strings.HasPrefix(dsn, "file:"):
		return "", fmt.Errorf("sqlite: database path %q: want a file path, not a URI or in-memory database", dsn)
	case strings.ContainsAny(dsn, "?\x00"):
		return "", fmt.Errorf("sqlite: database path %q: must not contain '?' or NUL", dsn)
	}
	path, err := filepath.Abs(dsn)
	if err != nil {
		return "", fmt.Errorf("sqlite: database path %q: %w", dsn, err)
	}
	return path, nil
}

// connString returns the driver DSN for path. Pragmas run on every new
// connection; busy_timeout goes first so the others wait for locks too.
func connString(path string, writer bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(FULL)")
	if writer {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	return path + "?" + q.Encode()
}

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// Ping checks that the database answers and has the schema.
func (s *Store) Ping(ctx context.Context) error {
	var latest int64
	if err := s.r.QueryRowContext(ctx, `SELECT latest FROM revocation_seq WHERE id = 1`).Scan(&latest); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Close releases both connection pools. A Store is unusable afterwards.
func (s *Store) Close() error {
	var errs []error
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// write runs fn in one write transaction (BEGIN IMMEDIATE) and commits it.
// With synchronous=FULL the commit has reached the disk when write returns
// nil. Any error from fn rolls everything back.
func (s *Store) write(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: %s: begin: %w", op, err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // the error that matters is fn's
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: %s: commit: %w", op, err)
	}
	return nil
}

// isUniqueViolation reports whether err is a primary-key or unique
// constraint failure.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}

// isBusy reports whether err is SQLITE_BUSY (any extended code).
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// retryBusy calls fn until it returns something other than SQLITE_BUSY,
// for at most busyTimeout. Only Open uses it: once connected, every lock
// SQLite takes waits through busy_timeout by itself.
func retryBusy(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(busyTimeout)
	delay := 5 * time.Millisecond
	for {
		err := fn()
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up waiting: %w)", err, ctx.Err())
		case <-t.C:
		}
		delay = min(2*delay, 200*time.Millisecond)
	}
}

// queryer is what *sql.DB and *sql.Tx share, so that reads can run inside
// a write transaction or on the reader pool.
type queryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// queryAll runs query on q and returns every row as scan reads it.
func queryAll[T any](ctx context.Context, q queryer, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// micros encodes t as Unix microseconds.
func micros(t time.Time) int64 { return t.UnixMicro() }

// nullMicros encodes t as Unix microseconds, or NULL when t is zero.
func nullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

// fromMicros decodes Unix microseconds as a UTC time.
func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

// fromNullMicros decodes nullable Unix microseconds; NULL is the zero time.
func fromNullMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicros(v.Int64)
}
