package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/signet-auth/signet/store"
)

// userTokenRequest is the optional body of POST /user-token.
type userTokenRequest struct {
	ExpiresIn json.RawMessage `json:"expires_in"`
	ExpiresAt *string         `json:"expires_at"`
	Scopes    *[]string       `json:"scopes"`
	Preset    *string         `json:"preset"`
	Name      string          `json:"name"`
}

// userTokenResponse is the contract's (Datasentinel's) answer shape.
type userTokenResponse struct {
	UserToken  string `json:"user-token"`
	TokenID    string `json:"token_id"`
	ExpireTime string `json:"expire_time"`
	ExpiresAt  string `json:"expires_at"`
}

// handleIssueUserToken serves POST /user-token: a password traded for a
// personal token, by default for UserTokenTTL with all of the user's scopes.
func (s *Server) handleIssueUserToken(c *fiber.Ctx) error {
	p, err := s.authenticate(c)
	if err != nil {
		return err
	}
	if err := s.mayCreate(p); err != nil {
		return err
	}
	var req userTokenRequest
	if _, err := decodeBody(c, &req); err != nil {
		return err
	}
	value, rec, err := s.issueUserToken(c.UserContext(), p, req, s.clientIP(c))
	if err != nil {
		return err
	}
	s.audit(c, p, "token.create", rec.ID, "user-token")
	return c.JSON(userTokenResponse{
		UserToken:  value,
		TokenID:    rec.ID,
		ExpireTime: rec.ExpiresAt.UTC().Format(expireTimeLayout),
		ExpiresAt:  rec.ExpiresAt.UTC().Format(time.RFC3339),
	})
}

// issueUserToken is POST /user-token after authentication: it checks the
// request and signs and records a personal token for p, asked for from
// client.
func (s *Server) issueUserToken(ctx context.Context, p *principal, req userTokenRequest, client string) (string, store.TokenRecord, error) {
	if err := checkLabel("name", req.Name, maxNameLen, false); err != nil {
		return "", store.TokenRecord{}, err
	}
	scopes, err := s.resolveScopes(p.Scopes, req.Scopes, req.Preset)
	if err != nil {
		return "", store.TokenRecord{}, err
	}
	now := s.now().UTC().Truncate(time.Second)
	life, err := s.lifetime(expiry{In: req.ExpiresIn, At: req.ExpiresAt}, s.cfg.UserTokenTTL, now)
	if err != nil {
		return "", store.TokenRecord{}, err
	}
	return s.issue(ctx, grant{
		Type:         store.TokenPersonal,
		Owner:        p.User.Username,
		OwnerUpdated: p.User.UpdatedAt,
		Org:          p.User.Org,
		Name:         req.Name,
		Scopes:       scopes,
		CreatedBy:    p.User.Username,
		Lifetime:     life,
		Client:       client,
	})
}

// userTokenInfo is the answer of GET /user-token: the token's metadata and
// its owner's email.
type userTokenInfo struct {
	Email string `json:"email"`
	tokenMetadata
}

// handleUserTokenInfo serves GET /user-token?token=: what a token this
// issuer signed is, active or not, for its owner or an admin of its org.
func (s *Server) handleUserTokenInfo(c *fiber.Ctx) error {
	p, err := s.authenticate(c)
	if err != nil {
		return err
	}
	value := c.Query("token")
	if value == "" {
		return errorf(ECodeInvalid, "The token query parameter is required.")
	}
	pt, err := s.parseToken(c.UserContext(), value)
	if err != nil {
		return err
	}
	if !visible(p, pt.rec) {
		return errorf(ECodeForbidden, "Only the token's owner or an admin of its organization may look at it.")
	}
	info := userTokenInfo{tokenMetadata: s.metadataOf(pt.rec, pt.state)}
	if pt.rec.Type == store.TokenPersonal {
		u, err := s.st.GetUser(c.UserContext(), pt.rec.Owner)
		switch {
		case err == nil:
			info.Email = u.Email
		case !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("look up token owner: %w", err)
		}
	}
	return c.JSON(info)
}
