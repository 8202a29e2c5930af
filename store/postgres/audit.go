package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/signet-auth/signet/store"
)

// defaultAuditLimit is how many events ListAudit returns when the filter
// sets no limit.
const defaultAuditLimit = 1000

// AppendAudit stores an audit event. The store assigns its ID, and its Time
// when zero.
func (s *Store) AppendAudit(ctx context.Context, e store.AuditEvent) error {
	if err := checkText("org", e.Org, "actor", e.Actor, "action", e.Action, "target", e.Target,
		"client ip", e.ClientIP, "detail", e.Detail); err != nil {
		return fmt.Errorf("postgres: append audit: %w", err)
	}
	if e.Action == "" {
		return errors.New("postgres: append audit: empty action")
	}
	if e.Time.IsZero() {
		e.Time = s.now()
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO audit_events (time, org, actor, action, target, client_ip, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		ts(e.Time), e.Org, e.Actor, e.Action, e.Target, e.ClientIP, e.Detail); err != nil {
		return fmt.Errorf("postgres: append audit %s: %w", e.Action, err)
	}
	return nil
}

// ListAudit returns the events matching f, newest first: Since is
// inclusive, Until exclusive, and a zero Limit means 1000.
func (s *Store) ListAudit(ctx context.Context, f store.AuditFilter) ([]store.AuditEvent, error) {
	if f.Limit < 0 {
		return nil, fmt.Errorf("postgres: list audit: negative limit %d", f.Limit)
	}
	if !storable(f.Org, f.Actor, f.Action) {
		return nil, nil
	}
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.Org != "" {
		add("org = ?", f.Org)
	}
	if f.Actor != "" {
		add("actor = ?", f.Actor)
	}
	if f.Action != "" {
		add("action = ?", f.Action)
	}
	if !f.Since.IsZero() {
		add("time >= ?", ts(f.Since))
	}
	if !f.Until.IsZero() {
		add("time < ?", ts(f.Until))
	}
	limit := f.Limit
	if limit == 0 {
		limit = defaultAuditLimit
	}
	q := `SELECT id, time, org, actor, action, target, client_ip, detail FROM audit_events`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY time DESC, id DESC LIMIT ` + strconv.Itoa(limit)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list audit: %w", err)
	}
	events, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.AuditEvent, error) {
		var e store.AuditEvent
		err := r.Scan(&e.ID, &e.Time, &e.Org, &e.Actor, &e.Action, &e.Target, &e.ClientIP, &e.Detail)
		e.Time = e.Time.UTC()
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list audit: %w", err)
	}
	return events, nil
}
