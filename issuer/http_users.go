package issuer

import (
	"context"
	"errors"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/signet-auth/signet/store"
)

// The user API (GET/POST /users, DELETE /users/{name}, PUT
// /users/{name}/password): parse, call the Service, render. The rules are
// in service_users.go.

// userView is how a user is shown; never with the password hash.
type userView struct {
	ID           string `json:"id"`
	Username     string `json:"username"`
	Email        string `json:"email"`
	Organization string `json:"organization_name"`
	Role         string `json:"role"`
	CreatedAt    string `json:"created_at"`
	UpdatedAt    string `json:"updated_at"`
}

func viewOf(u store.User) userView {
	return userView{
		ID:           u.ID,
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

func (s *Server) handleListUsers(c *fiber.Ctx) error {
	p, err := s.caller(c)
	if err != nil {
		return err
	}
	users, err := s.svc.ListUsers(c.UserContext(), p)
	if err != nil {
		return err
	}
	out := struct {
		Users []userView `json:"users"`
	}{Users: make([]userView, 0, len(users))}
	for _, u := range users {
		out.Users = append(out.Users, viewOf(u))
	}
	return c.JSON(out)
}

func (s *Server) handleCreateUser(c *fiber.Ctx) error {
	p, err := s.caller(c)
	if err != nil {
		return err
	}
	var req createUserRequest
	if _, err := decodeBody(c, &req); err != nil {
		return err
	}
	u, err := s.svc.CreateUser(c.UserContext(), p, NewUser{
		Username: req.Username, Password: req.Password, Email: req.Email, Role: store.Role(req.Role),
	})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(viewOf(u))
}

// hashPassword hashes a new password on the bounded worker pool: the
// Service's password hasher for a running issuer.
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
	p, err := s.caller(c)
	if err != nil {
		return err
	}
	// The removed user's web-UI sessions end at their next request
	// (liveSession), whoever removed them: this server, the CLI or a replica.
	if _, err := s.svc.RemoveUser(c.UserContext(), p, c.Params("name")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) handleSetPassword(c *fiber.Ctx) error {
	p, err := s.caller(c)
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
		// A session is not a password: confirm with one, so that a stolen
		// session cannot take an account over.
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
	u, err := s.svc.SetPassword(c.UserContext(), p, c.Params("name"), req.Password, req.RevokeTokens)
	if err != nil {
		return err
	}
	s.limiter.succeed(u.Username)
	return c.SendStatus(fiber.StatusNoContent)
}
