package issuer

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/signet-auth/signet/store"
)

// The token-management API (GET/POST /tokens, /tokens/{id}...): each
// handler parses the request, calls the Service and renders the answer.
// The rules are in service_tokens.go.

// Limits of GET /tokens.
const (
	defaultListLimit = 1000
	maxListLimit     = 1000
)

// createTokenRequest is the body of POST /tokens.
type createTokenRequest struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Type        string          `json:"type"`
	Scopes      *[]string       `json:"scopes"`
	Preset      *string         `json:"preset"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
	ExpiresAt   *string         `json:"expires_at"`
}

// copyTokenRequest is the optional body of POST /tokens/{id}/copy.
type copyTokenRequest struct {
	Name        *string         `json:"name"`
	Description *string         `json:"description"`
	ExpiresIn   json.RawMessage `json:"expires_in"`
	ExpiresAt   *string         `json:"expires_at"`
}

// regenerateRequest is the optional body of POST /tokens/{id}/regenerate.
type regenerateRequest struct {
	Grace json.RawMessage `json:"grace"`
}

// createdToken is the answer to every call that makes a token: the value,
// shown this once, and the metadata; after a regenerate also when the old
// value stops working.
type createdToken struct {
	Token string `json:"token"`
	tokenMetadata
	PreviousValidUntil string `json:"previous_valid_until,omitempty"`
}

// tokenList is the answer of GET /tokens.
type tokenList struct {
	Tokens []tokenMetadata `json:"tokens"`
}

func (s *Server) handleListTokens(c *fiber.Ctx) error {
	p, err := s.caller(c)
	if err != nil {
		return err
	}
	q := TokenQuery{Owner: c.Query("owner"), Type: store.TokenType(c.Query("type"))}
	if q.IncludeRevoked, err = boolQuery(c, "include_revoked"); err != nil {
		return err
	}
	if q.IncludeExpired, err = boolQuery(c, "include_expired"); err != nil {
		return err
	}
	if q.Limit, err = intQuery(c, "limit", defaultListLimit, maxListLimit); err != nil {
		return err
	}
	tokens, err := s.svc.ListTokens(c.UserContext(), p, q)
	if err != nil {
		return err
	}
	out := tokenList{Tokens: make([]tokenMetadata, 0, len(tokens))}
	for _, t := range tokens {
		out.Tokens = append(out.Tokens, s.metadataOf(t))
	}
	return c.JSON(out)
}

func (s *Server) handleCreateToken(c *fiber.Ctx) error {
	p, err := s.caller(c)
	if err != nil {
		return err
	}
	var req createTokenRequest
	if _, err := decodeBody(c, &req); err != nil {
		return err
	}
	iss, err := s.svc.CreateToken(c.UserContext(), p, IssueRequest{
		Name: req.Name, Description: req.Description, Type: store.TokenType(req.Type),
		Scopes: req.Scopes, Preset: req.Preset, ExpiresIn: req.ExpiresIn, ExpiresAt: req.ExpiresAt,
	})
	if err != nil {
		return err
	}
	return s.renderCreated(c, iss)
}

// renderCreated answers 201 with a new token's value and metadata.
func (s *Server) renderCreated(c *fiber.Ctx, iss Issued) error {
	out := createdToken{Token: iss.Value, tokenMetadata: s.metadataOf(Token{Record: iss.Record})}
	if !iss.PreviousValidUntil.IsZero() {
		out.PreviousValidUntil = iss.PreviousValidUntil.UTC().Format(time.RFC3339)
	}
	return c.Status(fiber.StatusCreated).JSON(out)
}

func (s *Server) handleGetToken(c *fiber.Ctx) error {
	p, err := s.caller(c)
	if err != nil {
		return err
	}
	t, err := s.svc.GetToken(c.UserContext(), p, c.Params("id"))
	if err != nil {
		return err
	}
	return c.JSON(s.metadataOf(t))
}

func (s *Server) handleDeleteToken(c *fiber.Ctx) error {
	p, err := s.caller(c)
	if err != nil {
		return err
	}
	if err := s.svc.RevokeToken(c.UserContext(), p, c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Server) handleRegenerateToken(c *fiber.Ctx) error {
	p, err := s.caller(c)
	if err != nil {
		return err
	}
	var req regenerateRequest
	if _, err := decodeBody(c, &req); err != nil {
		return err
	}
	iss, err := s.svc.Regenerate(c.UserContext(), p, c.Params("id"), RegenerateRequest{Grace: req.Grace})
	if err != nil {
		return err
	}
	return s.renderCreated(c, iss)
}

func (s *Server) handleCopyToken(c *fiber.Ctx) error {
	p, err := s.caller(c)
	if err != nil {
		return err
	}
	var req copyTokenRequest
	if _, err := decodeBody(c, &req); err != nil {
		return err
	}
	iss, err := s.svc.Copy(c.UserContext(), p, c.Params("id"), CopyRequest{
		Name: req.Name, Description: req.Description, ExpiresIn: req.ExpiresIn, ExpiresAt: req.ExpiresAt,
	})
	if err != nil {
		return err
	}
	return s.renderCreated(c, iss)
}

// tokenMetadata is how a token is shown; never with its value.
type tokenMetadata struct {
	TokenID      string   `json:"token_id"`
	Name         string   `json:"name"`
	Description  string   `json:"description"`
	Type         string   `json:"type"`
	User         string   `json:"user"`
	UserID       string   `json:"user_id"`
	Organization string   `json:"organization_name"`
	Scopes       []string `json:"scopes"`
	CreatedBy    string   `json:"created_by"`
	IssuedAt     string   `json:"issued_at"`
	ExpiresAt    string   `json:"expires_at"`
	ExpireTime   string   `json:"expire_time"`
	Active       bool     `json:"active"`
	Revoked      bool     `json:"revoked"`
	RevokedAt    *string  `json:"revoked_at"`
	// ValidUntil is set on the old value of a token regenerated with a
	// grace period: it stays valid (revoked false) until then.
	ValidUntil *string `json:"valid_until,omitempty"`
	Expired    bool    `json:"expired"`
	ReplacedBy string  `json:"replaced_by"`
	ParentID   string  `json:"parent_id"`
}

// metadataOf renders t as of now.
func (s *Server) metadataOf(t Token) tokenMetadata {
	r := t.Record
	now := s.now()
	m := tokenMetadata{
		TokenID:      r.ID,
		Name:         r.Name,
		Description:  r.Description,
		Type:         string(r.Type),
		User:         r.Owner,
		UserID:       r.OwnerID,
		Organization: r.Org,
		Scopes:       r.Scopes,
		CreatedBy:    r.CreatedBy,
		IssuedAt:     r.IssuedAt.UTC().Format(time.RFC3339),
		ExpiresAt:    r.ExpiresAt.UTC().Format(time.RFC3339),
		ExpireTime:   r.ExpiresAt.UTC().Format(expireTimeLayout),
		Active:       t.Active(now),
		Revoked:      t.Revoked(now),
		Expired:      !now.Before(r.ExpiresAt),
		ReplacedBy:   r.ReplacedBy,
		ParentID:     r.ParentID,
	}
	if m.Scopes == nil {
		m.Scopes = []string{}
	}
	// revoked_at is when the revocation took effect: none yet during a
	// grace period.
	if from, ok := r.RevokedFrom(); ok && !now.Before(from) {
		t := from.UTC().Format(time.RFC3339)
		m.RevokedAt = &t
	}
	if !r.ValidUntil.IsZero() {
		t := r.ValidUntil.UTC().Format(time.RFC3339)
		m.ValidUntil = &t
	}
	return m
}

// boolQuery reads an optional true/false query parameter.
func boolQuery(c *fiber.Ctx, name string) (bool, error) {
	v := c.Query(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, errorf(ECodeInvalid, "%s must be true or false.", name)
	}
	return b, nil
}

// intQuery reads an optional positive integer query parameter up to hi.
func intQuery(c *fiber.Ctx, name string, def, hi int) (int, error) {
	v := c.Query(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > hi {
		return 0, errorf(ECodeInvalid, "%s must be a whole number from 1 to %d.", name, hi)
	}
	return n, nil
}
