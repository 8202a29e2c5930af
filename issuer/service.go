package issuer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/signet-auth/signet/revocation"
	"github.com/signet-auth/signet/store"
)

// Service holds every rule of the issuer: who may create, see, change and
// revoke which token and which user, which scopes and lifetimes a token may
// have, and what a change revokes. Its methods take the acting Principal
// and return an *Error for anything the caller may fix or may not do; any
// other error is an internal failure. No HTTP type appears here: the
// handlers (http_*.go), the web UI and the CLI's offline commands all call
// the same methods.
//
// Every mutation ends in one call to committed, after its store
// transaction has committed: that is where the revocation feed is woken,
// the metrics counted and the audit event written.
type Service struct {
	cfg    Config
	st     store.Store
	keys   Keys // nil: this service cannot sign (the CLI)
	feed   revocationNotifier
	hasher passwordHasher
	issuer string
	log    *slog.Logger
	now    func() time.Time

	// issued and revocations count tokens signed and revocations
	// committed; nil when not counted (the CLI).
	issued, revocations *prometheus.CounterVec
}

// revocationNotifier is what the service needs of the revocation list: a
// nudge once a revocation has committed, so that the published list and
// the event stream follow at once instead of at the next poll; and what
// the list says of tokens beyond their records (a withdrawn signing key,
// which Keys.Verify does not know; a subject's cut-off), by the rules of
// revocation.Index, as of a read of the store after the call.
type revocationNotifier interface {
	notify()
	revoked(ctx context.Context, now time.Time, refs ...revocation.TokenRef) ([]bool, error)
	cutoff(ctx context.Context, org, subject string, now time.Time) (time.Time, error)
}

// noFeed is the revocation list of a service that publishes none (the
// CLI): the running issuers find a change at their next read of the store,
// and each lookup folds the store's live log into a fresh revocation.Index.
type noFeed struct{ st store.Store }

func (noFeed) notify() {}

func (f noFeed) index(ctx context.Context, now time.Time) (*revocation.Index, error) {
	recs, err := f.st.ListRevocations(ctx, 0, now.Add(-revocation.ExpiryGrace))
	if err != nil {
		return nil, fmt.Errorf("read the revocation log: %w", err)
	}
	x := revocation.NewIndex()
	for _, r := range recs {
		if e, ok := entryOf(r); ok {
			_, _ = x.Apply(e) // entryOf validated it
		}
	}
	return x, nil
}

func (f noFeed) revoked(ctx context.Context, now time.Time, refs ...revocation.TokenRef) ([]bool, error) {
	x, err := f.index(ctx, now)
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(refs))
	for i, r := range refs {
		_, out[i] = x.Revoked(r, now)
	}
	return out, nil
}

func (f noFeed) cutoff(ctx context.Context, org, subject string, now time.Time) (time.Time, error) {
	x, err := f.index(ctx, now)
	if err != nil {
		return time.Time{}, err
	}
	return x.Cutoff(org, subject, now), nil
}

// passwordHasher hashes a new password under the password policy.
type passwordHasher func(ctx context.Context, password string) (string, error)

// NewService returns the rules over st for a caller without HTTP: the
// CLI's offline commands. Zero fields of cfg take their defaults, as for
// New. It signs nothing (Issue-type methods answer an internal error); a
// running issuer's Server has its own Service, with keys and the feed.
func NewService(cfg Config, st store.Store) (*Service, error) {
	if st == nil {
		return nil, errors.New("issuer: a store is required")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return newService(cfg, st, nil, noFeed{st: st}, nil, nil), nil
}

// newService assembles a service; cfg has its defaults. m and hasher may
// be nil (no metrics; hashing without a worker pool).
func newService(cfg Config, st store.Store, k Keys, feed revocationNotifier, m *metrics, hasher passwordHasher) *Service {
	s := &Service{
		cfg:    cfg,
		st:     st,
		keys:   k,
		feed:   feed,
		hasher: hasher,
		issuer: cfg.PublicURL,
		log:    cfg.Logger,
		now:    cfg.Now,
	}
	if m != nil {
		s.issued, s.revocations = m.tokensIssued, m.revocations
	}
	if s.hasher == nil {
		policy := PasswordPolicy{MinLength: cfg.MinPasswordLength, BcryptCost: cfg.BcryptCost}
		s.hasher = func(_ context.Context, password string) (string, error) { return HashPassword(password, policy) }
	}
	return s
}

// Principal is who acts: a user (signed in with a password or a web-UI
// session), an administrative token presented as a bearer (introspection
// only), or the operator at the command line.
type Principal struct {
	// User is the acting user; zero for the CLI and for a token.
	User store.User
	// Scopes are the scope patterns the principal holds: the user's role's,
	// or the token's.
	Scopes []string
	// Session is set when a web-UI session cookie, not a password in
	// this request, authenticated the caller.
	Session bool
	// Token is the administrative token acting (bearer introspection).
	Token *store.TokenRecord
	// Client is the caller's address, for the audit log.
	Client string

	cli bool
}

// principal is the name the HTTP layer (auth.go, session.go) uses.
type principal = Principal

// CLI is the principal of the offline commands: the operator, who has
// the store at hand and so may act in every organization.
func CLI() *Principal { return &Principal{cli: true, Client: "local", Scopes: []string{"*"}} }

// actor names p in audit events and created_by.
func (p *Principal) actor() string {
	switch {
	case p.cli:
		return "cli"
	case p.Token != nil:
		return p.Token.Subject
	}
	return p.User.Username
}

// org is the organization p acts in ("" for the CLI).
func (p *Principal) org() string {
	if p.Token != nil {
		return p.Token.Org
	}
	return p.User.Org
}

// change is one committed mutation, as its side effects need it.
type change struct {
	org    string
	action string // audit action: token.create, token.revoke, user.remove, ...
	target string // token id, username or key id
	detail string
	// issued is the type of a token signed and recorded; "" when none.
	issued store.TokenType
	// revoked is the cause (metric label) when the change appended to the
	// revocation log; "" when it revoked nothing.
	revoked string
}

// committed runs the side effects of a change whose store transaction has
// committed, always in this order: wake the revocation feed, count, write
// the audit event. It is the only place that does any of them, so no
// operation can forget one, and nothing runs for a change that was refused
// or failed. An audit write that fails is logged: the change stands.
func (s *Service) committed(ctx context.Context, p *Principal, ch change) {
	if ch.revoked != "" {
		s.feed.notify()
		if s.revocations != nil {
			s.revocations.WithLabelValues(ch.revoked).Inc()
		}
	}
	if ch.issued != "" && s.issued != nil {
		s.issued.WithLabelValues(string(ch.issued)).Inc()
	}
	if ch.action == "" {
		return
	}
	e := store.AuditEvent{
		Time:     s.now().UTC(),
		Org:      ch.org,
		Actor:    p.actor(),
		Action:   ch.action,
		Target:   ch.target,
		ClientIP: p.Client,
		Detail:   ch.detail,
	}
	if err := s.st.AppendAudit(ctx, e); err != nil {
		s.log.Error("recording an audit event failed", "action", e.Action, "target", e.Target, "err", err)
	}
}
