package issuer

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/signet-auth/signet/store"
)

// Limits of GET /audit.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

// appendAudit records an event that is not a change of the Service's
// (sign-ins, failed logins: auth.go, ui.go); changes are audited by the
// Service's committed hook. A failure is logged, not returned.
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
	p, err := s.caller(c)
	if err != nil {
		return err
	}
	f := store.AuditFilter{Actor: c.Query("actor"), Action: c.Query("action")}
	if f.Since, err = timeQuery(c, "since"); err != nil {
		return err
	}
	if f.Until, err = timeQuery(c, "until"); err != nil {
		return err
	}
	if f.Limit, err = intQuery(c, "limit", defaultAuditLimit, maxAuditLimit); err != nil {
		return err
	}
	events, err := s.svc.ListAudit(c.UserContext(), p, f)
	if err != nil {
		return err
	}
	out := struct {
		Events []auditEvent `json:"events"`
	}{Events: make([]auditEvent, 0, len(events))}
	for _, e := range events {
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
