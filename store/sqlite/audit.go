package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/signet-auth/signet/store"
)

// AppendAudit stores e. The store assigns the ID, and the Time when e's is
// zero.
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEvent) error {
	if e.Action == "" {
		return fmt.Errorf("sqlite: append audit event: empty action")
	}
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	return s.write(ctx, "append audit event "+e.Action, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO audit_events (time, org, actor, action, target, client_ip, detail)
			VALUES (?, ?, ?, ?, ?, ?, ?)`,
			micros(e.Time), e.Org, e.Actor, e.Action, e.Target, e.ClientIP, e.Detail)
		return err
	})
}

// ListAudit returns the events matching f, newest first: Org, Actor and
// Action match exactly, Since is inclusive, Until exclusive, and Limit 0
// means 1000.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	if f.Limit < 0 {
		return nil, fmt.Errorf("sqlite: list audit events: negative limit %d", f.Limit)
	}
	limit := f.Limit
	if limit == 0 {
		limit = defaultAuditLimit
	}
	var (
		where []string
		args  []any
	)
	if f.Org != "" {
		where, args = append(where, "org = ?"), append(args, f.Org)
	}
	if f.Actor != "" {
		where, args = append(where, "actor = ?"), append(args, f.Actor)
	}
	if f.Action != "" {
		where, args = append(where, "action = ?"), append(args, f.Action)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "time >= ?"), append(args, micros(f.Since))
	}
	if !f.Until.IsZero() {
		where, args = append(where, "time < ?"), append(args, micros(f.Until))
	}
	q := `SELECT id, time, org, actor, action, target, client_ip, detail FROM audit_events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY time DESC, id DESC LIMIT ?`
	args = append(args, limit)
	out, err := queryAll(ctx, s.r, scanAudit, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list audit events: %w", err)
	}
	return out, nil
}

func scanAudit(sc scanner) (store.AuditEvent, error) {
	var (
		e  store.AuditEvent
		at int64
	)
	if err := sc.Scan(&e.ID, &at, &e.Org, &e.Actor, &e.Action, &e.Target, &e.ClientIP, &e.Detail); err != nil {
		return store.AuditEvent{}, err
	}
	e.Time = fromMicros(at)
	return e, nil
}
