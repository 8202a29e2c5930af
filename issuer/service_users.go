package issuer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/signet-auth/signet/store"
)

// The user rules: org admins (and the CLI) manage their org's users; a
// member changes only their own password; nobody removes themselves;
// removing a user, or a password change that asks for it, revokes the
// user's personal tokens and cuts off their subject for MaxTTL.

// NewUser asks for a user to be created.
type NewUser struct {
	Username string
	Password string
	Email    string
	Role     store.Role
	// Org is the new user's organization when the CLI creates one; a user
	// creates users in their own organization and leaves it empty.
	Org string
}

// errNoUser answers a user that does not exist or is in another org.
var errNoUser = errorf(ECodeNotFound, "There is no such user.")

// requireAdmin refuses anyone who does not administer an organization.
func requireAdmin(p *Principal) error {
	if !p.cli && (p.Token != nil || !p.isAdmin()) {
		return errorf(ECodeForbidden, "Only organization admins may do this.")
	}
	return nil
}

// orgUser finds user name for p: errNoUser when absent or, for anyone but
// the CLI, in another org.
func (s *Service) orgUser(ctx context.Context, p *Principal, name string) (store.User, error) {
	if !validName(name) {
		return store.User{}, errNoUser
	}
	u, err := s.st.GetUser(ctx, name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.User{}, errNoUser
	case err != nil:
		return store.User{}, fmt.Errorf("look up user: %w", err)
	case !p.cli && u.Org != p.User.Org:
		return store.User{}, errNoUser
	}
	return u, nil
}

// ListUsers is GET /users: an admin's org's users, by username.
func (s *Service) ListUsers(ctx context.Context, p *Principal) ([]store.User, error) {
	if err := requireAdmin(p); err != nil {
		return nil, err
	}
	users, err := s.st.ListUsers(ctx, p.org())
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out := make([]store.User, 0, len(users))
	for _, u := range users {
		if p.cli || u.Org == p.User.Org {
			out = append(out, u)
		}
	}
	return out, nil
}

// CreateUser is POST /users (and signet user add): a new person, with a
// new id even when the name was someone else's before.
func (s *Service) CreateUser(ctx context.Context, p *Principal, req NewUser) (store.User, error) {
	if err := requireAdmin(p); err != nil {
		return store.User{}, err
	}
	org := p.User.Org
	if p.cli {
		org = req.Org
	}
	now := s.now().UTC()
	u := store.User{
		Username:  req.Username,
		Email:     req.Email,
		Org:       org,
		Role:      req.Role,
		CreatedAt: now,
		UpdatedAt: now,
	}
	if err := ValidateUser(u); err != nil {
		return store.User{}, err
	}
	hash, err := s.hasher(ctx, req.Password)
	if err != nil {
		return store.User{}, err
	}
	u.PasswordHash = hash
	if u.ID, err = store.NewUserID(); err != nil {
		return store.User{}, err
	}
	if err := s.st.CreateUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.User{}, errorf(ECodeConflict, "The username %q is taken.", u.Username)
		}
		return store.User{}, fmt.Errorf("create user: %w", err)
	}
	s.committed(ctx, p, change{org: u.Org, action: "user.add", target: u.Username, detail: "role " + string(u.Role)})
	return u, nil
}

// RemoveUser is DELETE /users/{name} (and signet user remove): the user is
// gone and, in the same transaction, every personal token of theirs is
// revoked and their subject cut off, for as long as any token may live.
func (s *Service) RemoveUser(ctx context.Context, p *Principal, name string) (store.User, error) {
	if err := requireAdmin(p); err != nil {
		return store.User{}, err
	}
	u, err := s.orgUser(ctx, p, name)
	if err != nil {
		return store.User{}, err
	}
	if !p.cli && u.ID == p.User.ID {
		return store.User{}, errorf(ECodeConflict, "You cannot remove yourself; ask another admin.")
	}
	now := s.now()
	if _, err := s.st.DeleteUser(ctx, u.Username, now, now.Add(s.cfg.MaxTTL)); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.User{}, errNoUser
		}
		return store.User{}, fmt.Errorf("delete user: %w", err)
	}
	s.committed(ctx, p, change{org: u.Org, action: "user.remove", target: u.Username, detail: "personal tokens revoked", revoked: "user_remove"})
	return u, nil
}

// SetPassword is PUT /users/{name}/password (and signet user passwd): a
// member sets their own, an admin any of their org's users'. With
// revokeTokens every personal token of the user issued until now is
// revoked in the same transaction.
func (s *Service) SetPassword(ctx context.Context, p *Principal, name, password string, revokeTokens bool) (store.User, error) {
	var u store.User
	switch {
	case !p.cli && p.Token == nil && name == p.User.Username:
		u = p.User
	case !p.cli && (p.Token != nil || !p.isAdmin()):
		return store.User{}, errorf(ECodeForbidden, "Members may change only their own password.")
	default:
		var err error
		if u, err = s.orgUser(ctx, p, name); err != nil {
			return store.User{}, err
		}
	}
	hash, err := s.hasher(ctx, password)
	if err != nil {
		return store.User{}, err
	}
	now := s.now()
	var before, expires time.Time
	if revokeTokens {
		before, expires = now, now.Add(s.cfg.MaxTTL)
	}
	if err := s.st.SetPassword(ctx, u.Username, hash, now, before, expires); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.User{}, errNoUser
		}
		return store.User{}, fmt.Errorf("set password: %w", err)
	}
	ch := change{org: u.Org, action: "user.password", target: u.Username, detail: "password changed"}
	if revokeTokens {
		ch.detail, ch.revoked = "password changed; personal tokens revoked", "password"
	}
	s.committed(ctx, p, ch)
	return u, nil
}

// ListAudit is GET /audit: an admin reads their org's events.
func (s *Service) ListAudit(ctx context.Context, p *Principal, f store.AuditFilter) ([]store.AuditEvent, error) {
	if err := requireAdmin(p); err != nil {
		return nil, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return nil, errorf(ECodeInvalid, "until must not be before since.")
	}
	f.Org = p.org()
	events, err := s.st.ListAudit(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	out := events[:0]
	for _, e := range events {
		if p.cli || e.Org == f.Org {
			out = append(out, e)
		}
	}
	return out, nil
}
