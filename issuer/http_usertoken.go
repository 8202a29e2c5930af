package issuer

import (
	"encoding/json"
	"time"

	"github.com/gofiber/fiber/v2"
)

// POST /user-token and GET /user-token: parse, call the Service, render.
// The rules are in service_tokens.go.

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
// personal token.
func (s *Server) handleIssueUserToken(c *fiber.Ctx) error {
	p, err := s.caller(c)
	if err != nil {
		return err
	}
	var req userTokenRequest
	if _, err := decodeBody(c, &req); err != nil {
		return err
	}
	iss, err := s.svc.IssueUserToken(c.UserContext(), p, req.issueRequest())
	if err != nil {
		return err
	}
	return c.JSON(userTokenResponse{
		UserToken:  iss.Value,
		TokenID:    iss.Record.ID,
		ExpireTime: iss.Record.ExpiresAt.UTC().Format(expireTimeLayout),
		ExpiresAt:  iss.Record.ExpiresAt.UTC().Format(time.RFC3339),
	})
}

// issueRequest is the Service's form of the body.
func (r userTokenRequest) issueRequest() IssueRequest {
	return IssueRequest{Name: r.Name, Scopes: r.Scopes, Preset: r.Preset, ExpiresIn: r.ExpiresIn, ExpiresAt: r.ExpiresAt}
}

// userTokenInfo is the answer of GET /user-token: the token's metadata and
// its owner's email.
type userTokenInfo struct {
	Email string `json:"email"`
	tokenMetadata
}

// handleUserTokenInfo serves GET /user-token?token=.
func (s *Server) handleUserTokenInfo(c *fiber.Ctx) error {
	p, err := s.caller(c)
	if err != nil {
		return err
	}
	value := c.Query("token")
	if value == "" {
		return errorf(ECodeInvalid, "The token query parameter is required.")
	}
	t, email, err := s.svc.TokenInfo(c.UserContext(), p, value)
	if err != nil {
		return err
	}
	return c.JSON(userTokenInfo{Email: email, tokenMetadata: s.metadataOf(t)})
}
