package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// connectTimeout bounds one attempt of the watcher to (re)connect.
const connectTimeout = 10 * time.Second

// WatchRevocations holds a dedicated connection listening on NotifyChannel
// and sends on the returned channel (buffer 1, non-blocking, so signals
// coalesce) whenever a revocation commits in any process sharing the
// database. When the connection drops it reconnects with exponential
// backoff and sends one signal after each reconnect, since notifications
// may have been missed meanwhile. The channel is closed when ctx ends or
// the Store is closed.
func (s *Store) WatchRevocations(ctx context.Context) (<-chan struct{}, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("postgres: watch revocations: store is closed")
	}
	// Added under mu, so Close (which sets closed under mu, then waits)
	// always waits for this watcher.
	s.watchers.Add(1)
	s.mu.Unlock()

	wctx, cancel := context.WithCancel(ctx)
	stopOnClose := context.AfterFunc(s.life, cancel)
	conn, err := s.listen(wctx)
	if err != nil {
		stopOnClose()
		cancel()
		s.watchers.Done()
		return nil, fmt.Errorf("postgres: watch revocations: %w", err)
	}
	ch := make(chan struct{}, 1)
	go func() {
		defer s.watchers.Done()
		defer close(ch)
		defer cancel()
		defer stopOnClose()
		s.watch(wctx, conn, ch)
	}()
	return ch, nil
}

// listen opens a connection of its own (not from the pool: it must stay
// checked out and idle) and subscribes to NotifyChannel.
func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	cfg := s.connConfig.Copy()
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams["application_name"] = WatcherApplicationName
	cctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect listener: %w", err)
	}
	if _, err := conn.Exec(cctx, "LISTEN "+pgx.Identifier{NotifyChannel}.Sanitize()); err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("listen %s: %w", NotifyChannel, err)
	}
	return conn, nil
}

// watch relays notifications from conn to ch until ctx ends, replacing conn
// whenever it fails.
func (s *Store) watch(ctx context.Context, conn *pgx.Conn, ch chan<- struct{}) {
	defer func() {
		if conn != nil {
			closeConn(conn)
		}
	}()
	for {
		_, err := conn.WaitForNotification(ctx)
		if err == nil {
			signal(ch)
			continue
		}
		closeConn(conn)
		conn = nil
		if ctx.Err() != nil {
			return
		}
		slog.Warn("postgres: revocation listener lost its connection; reconnecting", "err", err)
		if conn = s.reconnect(ctx); conn == nil {
			return
		}
		signal(ch)
	}
}

// reconnect retries listen with exponential backoff until it succeeds or
// ctx ends (then it returns nil).
func (s *Store) reconnect(ctx context.Context) *pgx.Conn {
	delay := s.minBackoff
	for attempt := 1; ; attempt++ {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		conn, err := s.listen(ctx)
		if err == nil {
			return conn
		}
		if ctx.Err() != nil {
			return nil
		}
		slog.Warn("postgres: revocation listener reconnect failed", "attempt", attempt, "err", err)
		delay = min(2*delay, s.maxBackoff)
	}
}

// signal sends on ch without blocking; a pending signal already says
// "look again".
func signal(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}
