// Package postgres is the PostgreSQL backend of store.Store, built on pgx v5.
//
// Open migrates the schema with embedded, numbered SQL files recorded in a
// schema_migrations table, under a transaction-scoped advisory lock so that
// replicas starting together migrate exactly once.
//
// Every transaction runs at READ COMMITTED whatever the database's
// default_transaction_isolation says: the row locks and the revocation
// counter below rely on it, and a stricter default would turn concurrent
// revocations into serialization failures. A session whose
// synchronous_commit is off is switched back on, because a method that
// returned nil must have its change on disk. The revocation log's
// version is a single counter row that every revoking transaction increments
// before it commits; this serializes appenders, so Seq order equals commit
// order across every replica sharing the database. Each revocation also
// sends NOTIFY signet_revocations, which WatchRevocations turns into
// signals.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/signet-auth/signet/store"
)

// NotifyChannel is the LISTEN/NOTIFY channel on which every revocation
// transaction announces its Seq (as decimal text) when it commits.
const NotifyChannel = "signet_revocations"

// WatcherApplicationName is the application_name of the dedicated
// connection that WatchRevocations holds, so operators can find it in
// pg_stat_activity.
const WatcherApplicationName = "signet-revocation-watcher"

// Store is a store.Store backed by PostgreSQL. It is safe for concurrent use
// and also implements store.RevocationWatcher.
type Store struct {
	pool *pgxpool.Pool
	// connConfig is the configuration the watcher's dedicated connections
	// are made from.
	connConfig *pgx.ConnConfig
	now        func() time.Time

	// life ends when Close is called; watchers stop with it.
	life     context.Context
	stopLife context.CancelFunc
	mu       sync.Mutex // guards closed and watchers.Add
	closed   bool
	watchers sync.WaitGroup

	minBackoff, maxBackoff time.Duration
}

var (
	_ store.Store             = (*Store)(nil)
	_ store.RevocationWatcher = (*Store)(nil)
)

// Open connects to the database named by dsn (a libpq URL or key=value
// string), checks that it answers, and applies any schema migrations not yet
// applied. Several processes may Open the same database at once: exactly one
// applies each migration.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgconn redacts the password from parse errors; the DSN itself is
		// never quoted here.
		return nil, fmt.Errorf("postgres: parse dsn: %w", err)
	}
	cfg.AfterConnect = durableCommits
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: create pool: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	life, stop := context.WithCancel(context.Background())
	return &Store{
		pool:       pool,
		connConfig: cfg.ConnConfig.Copy(),
		now:        time.Now,
		life:       life,
		stopLife:   stop,
		minBackoff: 50 * time.Millisecond,
		maxBackoff: 5 * time.Second,
	}, nil
}

// durableCommits turns synchronous_commit back on for a new connection whose
// default (from the server, database, role or DSN) is off, under which a
// COMMIT returns before its WAL reaches the disk. Stronger settings
// (remote_write, remote_apply) and local are left alone.
func durableCommits(ctx context.Context, c *pgx.Conn) error {
	if _, err := c.Exec(ctx, `SELECT set_config('synchronous_commit', 'on', false)
		WHERE current_setting('synchronous_commit') = 'off'`); err != nil {
		return fmt.Errorf("postgres: enable synchronous_commit: %w", err)
	}
	return nil
}

// readCommitted is the isolation of every transaction the store runs.
var readCommitted = pgx.TxOptions{IsoLevel: pgx.ReadCommitted}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close stops every watcher, waits for them to finish and closes the pool.
// Calling it more than once is harmless.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.stopLife()
	s.watchers.Wait()
	s.pool.Close()
	return nil
}

// inTx runs fn in a READ COMMITTED transaction and commits it when fn
// returns nil. Row locks (SELECT ... FOR UPDATE) and the revocation counter
// provide the isolation each method needs.
func (s *Store) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := s.pool.BeginTx(ctx, readCommitted)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit: %w", mapErr(err))
	}
	return nil
}

// mapErr turns PostgreSQL unique violations into store.ErrConflict, keeping
// the original error in the chain.
func mapErr(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("%w: %s", store.ErrConflict, pgErr.ConstraintName)
	}
	return err
}

// checkText rejects strings PostgreSQL's text type cannot hold, with a
// message that names the field but never echoes the value.
func checkText(fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		name, v := fields[i], fields[i+1]
		if !utf8.ValidString(v) {
			return fmt.Errorf("%s is not valid UTF-8", name)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return fmt.Errorf("%s contains a NUL byte", name)
		}
	}
	return nil
}

// storable reports whether PostgreSQL's text type can hold every v. A key
// it cannot hold names no row, so lookups answer store.ErrNotFound (and
// filters match nothing) instead of failing on the server.
func storable(vs ...string) bool {
	for _, v := range vs {
		if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
			return false
		}
	}
	return true
}

// ts prepares a time for a timestamptz column: UTC, microsecond precision.
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// nullTS maps the zero time to SQL NULL.
func nullTS(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	v := ts(t)
	return &v
}

// fromNullTS maps SQL NULL to the zero time and anything else to UTC.
func fromNullTS(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
