package issuer

import (
	"context"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/signet-auth/signet/store"
)

// Limits of GET /audit.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

// audit records that p did action to target. The change it describes has
// already committed, so a failure to record it is logged, not returned.
func (s *Server) audit(c *fiber.Ctx, p *principal, action, target, detail string) {
	s.appendAudit(c.UserContext(), store.AuditEvent{
		Time:     s.now().UTC(),
		Org:      p.User.Org,
		Actor:    p.User.Username,
		Action:   action,
		Target:   target,
		ClientIP: s.clientIP(c),
		Detail:   detail,
	})
}

func (s *Server) appendAudit(ctx context.Context, e store.AuditEvent) {
	if e.Time.IsZero() {
		e.Time = s.now().UTC()
	}
	if err := s.st.AppendAudit(ctx, e); err != nil {
		s.log.Error("recording an audit event failed", "action", e.Action, "target", e.Target, "err", err)
	}
}

// auditEvent is how an audit event is shown.
type auditEvent struct {
	ID       int64  `json:"id"`
	Time     string `json:"time"`
	Actor    string `json:"actor"`
	Action   string `json:"action"`
	Target   string `json:"target"`
	ClientIP string `json:"client_ip"`
	Detail   string `json:"detail"`
}

func (s *Server) handleAudit(c *fiber.Ctx) error {
	p, err := s.authenticate(c)
	if err != nil {
		return err
	}
	if err := requireAdmin(p); err != nil {
		return err
	}
	f := store.AuditFilter{Org: p.User.Org, Actor: c.Query("actor"), Action: c.Query("action")}
	if f.Since, err = timeQuery(c, "since"); err != nil {
		return err
	}
	if f.Until, err = timeQuery(c, "until"); err != nil {
		return err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return errorf(ECodeInvalid, "until must not be before since.")
	}
	if f.Limit, err = intQuery(c, "limit", defaultAuditLimit, maxAuditLimit); err != nil {
		return err
	}
	events, err := s.st.ListAudit(c.UserContext(), f)
	if err != nil {
		return fmt.Errorf("list audit events: %w", err)
	}
	out := struct {
		Events []auditEvent `json:"events"`
	}{Events: make([]auditEvent, 0, len(events))}
	for _, e := range events {
		if e.Org != p.User.Org {
			continue
		}
		out.Events = append(out.Events, auditEvent{
			ID:       e.ID,
			Time:     formatTime(e.Time),
			Actor:    e.Actor,
			Action:   e.Action,
			Target:   e.Target,
			ClientIP: e.ClientIP,
			Detail:   e.Detail,
		})
	}
	return c.JSON(out)
}

// timeQuery reads an optional RFC 3339 query parameter.
func timeQuery(c *fiber.Ctx, name string) (time.Time, error) {
	v := c.Query(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, errorf(ECodeInvalid, "%s must be an RFC 3339 time such as 2026-01-02T15:04:05Z.", name)
	}
	return t, nil
}
