package issuer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/signet-auth/signet/store"
)

// userView is how a user is shown; never with the password hash.
type userView struct {
	Username     string `json:"username"`
	Email        string `json:"email"`
	Organization string `json:"organization_name"`
	Role         string `json:"role"`
	CreatedAt    string `json:"created_at"`
	UpdatedAt    string `json:"updated_at"`
}

func viewOf(u store.User) userView {
	return userView{
		Username:     u.Username,
		Email:        u.Email,
		Organization: u.Org,
		Role:         string(u.Role),
		CreatedAt:    formatTime(u.CreatedAt),
		UpdatedAt:    formatTime(u.UpdatedAt),
	}
}

// formatTime renders t as RFC 3339 in UTC, "" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// createUserRequest is the body of POST /users.
type createUserRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Email    string `json:"email"`
	Role     string `json:"role"`
}

// setPasswordRequest is the body of PUT /users/{name}/password.
type setPasswordRequest struct {
	Password     string `json:"password"`
	RevokeTokens bool   `json:"revoke_tokens"`
	// CurrentPassword is the caller's own password; required when a web-UI
	// session (not Basic auth) makes the change, so that a stolen session
	// cannot take an account over.
	CurrentPassword string `json:"current_password"`
}

// requireAdmin refuses members.
func requireAdmin(p *principal) error {
	if !p.isAdmin() {
		return errorf(ECodeForbidden, "Only organization admins may do this.")
	}
	return nil
}

// orgUser finds the user at path parameter name in p's org; 404 otherwise.
func (s *Server) orgUser(c *fiber.Ctx, p *principal) (store.User, error) {
	name := c.Params("name")
	notFound := errorf(ECodeNotFound, "There is no such user.")
	if !validName(name) {
		return store.User{}, notFound
	}
	u, err := s.st.GetUser(c.UserContext(), name)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.User{}, notFound
	case err != nil:
		return store.User{}, fmt.Errorf("look up user: %w", err)
	case u.Org != p.User.Org:
		return store.User{}, notFound
	}
	return u, nil
}

func (s *Server) handleListUsers(c *fiber.Ctx) error {
	p, err := s.authenticate(c)
	if err != nil {
		return err
	}
	if err := requireAdmin(p); err != nil {
		return err
	}
	users, err := s.st.ListUsers(c.UserContext(), p.User.Org)
	if err != nil {
		return fmt.Errorf("list users: %w", err)
	}
	out := struct {
		Users []userView `json:"users"`
	}{Users: make([]userView, 0, len(users))}
	for _, u := range users {
		if u.Org == p.User.Org {
			out.Users = append(out.Users, viewOf(u))
		}
	}
	return c.JSON(out)
}

func (s *Server) handleCreateUser(c *fiber.Ctx) error {
	p, err := s.authenticate(c)
	if err != nil {
		return err
	}
	if err := requireAdmin(p); err != nil {
		return err
	}
	var req createUserRequest
	if present, err := decodeBody(c, &req); err != nil {
		return err
	} else if !present {
		return errorf(ECodeInvalid, "The body must name the username, password, email and role.")
	}
	now := s.now().UTC()
	u := store.User{
		Username:  req.Username,
		Email:     req.Email,
		Org:       p.User.Org,
		Role:      store.Role(req.Role),
		CreatedAt: now,
		UpdatedAt: now,
	}
	if err := ValidateUser(u); err != nil {
		return err
	}
	if u.PasswordHash, err = s.hashPassword(c.UserContext(), req.Password); err != nil {
		return err
	}
	if err := s.st.CreateUser(c.UserContext(), u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errorf(ECodeConflict, "The username %q is taken.", u.Username)
		}
		return fmt.Errorf("create user: %w", err)
	}
	s.audit(c, p, "user.add", u.Username, "role "+string(u.Role))
	return c.Status(fiber.StatusCreated).JSON(viewOf(u))
}

// hashPassword hashes a new password on the bounded worker pool.
func (s *Server) hashPassword(ctx context.Context, password string) (string, error) {
	release, err := s.pool.acquire(ctx)
	if err != nil {
		s.metrics.rateLimited.WithLabelValues("hash_pool").Inc()
		return "", rateLimited(time.Second, "The server is busy hashing passwords; try again shortly.")
	}
	defer release()
	return HashPassword(password, PasswordPolicy{MinLength: s.cfg.MinPasswordLength, BcryptCost: s.cfg.BcryptCost})
}

func (s *Server) handleDeleteUser(c *fiber.Ctx) error {
	p, err := s.authenticate(c)
	if err != nil {
		return err
	}
	if err := requireAdmin(p); err != nil {
		return err
	}
	u, err := s.orgUser(c, p)
	if err != nil {
		return err
	}
	if u.Username == p.User.Username {
		return errorf(ECodeConflict, "You cannot remove yourself; ask another admin.")
	}
	now := s.now()
	if _, err := s.st.DeleteUser(c.UserContext(), u.Username, now, now.Add(s.cfg.MaxTTL)); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errorf(ECodeNotFound, "There is no such user.")
		}
		return fmt.Errorf("delete user: %w", err)
	}
	s.feed.notify()
	s.metrics.revocations.WithLabelValues("user_remove").Inc()
	s.audit(c, p, "user.remove", u.Username, "personal tokens revoked")
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) handleSetPassword(c *fiber.Ctx) error {
	p, err := s.authenticate(c)
	if err != nil {
		return err
	}
	var req setPasswordRequest
	if present, err := decodeBody(c, &req); err != nil {
		return err
	} else if !present {
		return errorf(ECodeInvalid, "The body must hold the new password.")
	}
	if p.Session {
		if req.CurrentPassword == "" {
			return errorf(ECodeForbidden, "Confirm a password change with your current password (current_password).")
		}
		if _, err := s.checkPassword(c, p.User.Username, req.CurrentPassword); err != nil {
			var e *Error
			if errors.As(err, &e) && e.Code == ECodeUnauthorized {
				return errorf(ECodeForbidden, "Your current password is wrong.")
			}
			return err
		}
	}
	u := p.User
	if c.Params("name") != p.User.Username {
		if !p.isAdmin() {
			return errorf(ECodeForbidden, "Members may change only their own password.")
		}
		if u, err = s.orgUser(c, p); err != nil {
			return err
		}
	}
	hash, err := s.hashPassword(c.UserContext(), req.Password)
	if err != nil {
		return err
	}
	now := s.now()
	var before, expires time.Time
	if req.RevokeTokens {
		before, expires = now, now.Add(s.cfg.MaxTTL)
	}
	if err := s.st.SetPassword(c.UserContext(), u.Username, hash, now, before, expires); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errorf(ECodeNotFound, "There is no such user.")
		}
		return fmt.Errorf("set password: %w", err)
	}
	detail := "password changed"
	if req.RevokeTokens {
		s.feed.notify()
		s.metrics.revocations.WithLabelValues("password").Inc()
		detail = "password changed; personal tokens revoked"
	}
	s.limiter.succeed(u.Username)
	s.audit(c, p, "user.password", u.Username, detail)
	return c.SendStatus(fiber.StatusNoContent)
}
