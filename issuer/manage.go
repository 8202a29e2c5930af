package issuer

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/signet-auth/signet/revocation"
	"github.com/signet-auth/signet/store"
)

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

// createdToken is the answer to every call that makes a token: the value,
// shown this once, and the metadata.
type createdToken struct {
	Token string `json:"token"`
	tokenMetadata
}

// tokenList is the answer of GET /tokens.
type tokenList struct {
	Tokens []tokenMetadata `json:"tokens"`
}

func (s *Server) handleListTokens(c *fiber.Ctx) error {
	p, err := s.authenticate(c)
	if err != nil {
		return err
	}
	f := store.TokenFilter{Org: p.User.Org, Now: s.now()}
	if f.IncludeRevoked, err = boolQuery(c, "include_revoked"); err != nil {
		return err
	}
	if f.IncludeExpired, err = boolQuery(c, "include_expired"); err != nil {
		return err
	}
	if f.Limit, err = intQuery(c, "limit", defaultListLimit, maxListLimit); err != nil {
		return err
	}
	switch t := store.TokenType(c.Query("type")); {
	case t == "":
	case t.Valid():
		f.Type = t
	default:
		return errorf(ECodeInvalid, "type must be personal or administrative.")
	}
	f.Owner = c.Query("owner")
	if !p.isAdmin() {
		if f.Owner != "" && f.Owner != p.User.Username {
			return errorf(ECodeForbidden, "Members list only their own tokens.")
		}
		if f.Type == store.TokenAdministrative {
			return c.JSON(tokenList{Tokens: []tokenMetadata{}})
		}
		f.Owner, f.Type = p.User.Username, store.TokenPersonal
	}
	recs, err := s.st.ListTokens(c.UserContext(), f)
	if err != nil {
		return fmt.Errorf("list tokens: %w", err)
	}
	refs := make([]revocation.TokenRef, len(recs))
	for i, r := range recs {
		refs[i] = tokenRef(r)
	}
	listed, err := s.feed.revoked(c.UserContext(), s.now(), refs...)
	if err != nil {
		return err
	}
	out := tokenList{Tokens: make([]tokenMetadata, 0, len(recs))}
	for i, r := range recs {
		if visible(p, r) {
			out.Tokens = append(out.Tokens, s.metadataOf(r, tokenState{listed: listed[i]}))
		}
	}
	return c.JSON(out)
}

func (s *Server) handleCreateToken(c *fiber.Ctx) error {
	p, err := s.authenticate(c)
	if err != nil {
		return err
	}
	var req createTokenRequest
	present, err := decodeBody(c, &req)
	if err != nil {
		return err
	}
	if !present || req.Name == "" {
		return errorf(ECodeInvalid, "A token needs a name.")
	}
	if err := checkLabel("name", req.Name, maxNameLen, false); err != nil {
		return err
	}
	if err := checkLabel("description", req.Description, maxDescriptionLen, true); err != nil {
		return err
	}
	typ := store.TokenPersonal
	if req.Type != "" {
		typ = store.TokenType(req.Type)
		if !typ.Valid() {
			return errorf(ECodeInvalid, "type must be personal or administrative.")
		}
	}
	if typ == store.TokenAdministrative && !p.isAdmin() {
		return errorf(ECodeForbidden, "Only organization admins create administrative tokens.")
	}
	if err := s.mayCreate(p); err != nil {
		return err
	}
	scopes, err := s.resolveScopes(p.Scopes, req.Scopes, req.Preset)
	if err != nil {
		return err
	}
	now := s.now().UTC().Truncate(time.Second)
	life, err := s.lifetime(expiry{In: req.ExpiresIn, At: req.ExpiresAt}, s.cfg.DefaultTTL, now)
	if err != nil {
		return err
	}
	g := grant{
		Type:        typ,
		Org:         p.User.Org,
		Name:        req.Name,
		Description: req.Description,
		Scopes:      scopes,
		CreatedBy:   p.User.Username,
		Lifetime:    life,
	}
	if typ == store.TokenPersonal {
		g.Owner, g.OwnerUpdated, g.Client = p.User.Username, p.User.UpdatedAt, s.clientIP(c)
	}
	value, rec, err := s.issue(c.UserContext(), g)
	if err != nil {
		return err
	}
	s.audit(c, p, "token.create", rec.ID, fmt.Sprintf("%s token %q", rec.Type, rec.Name))
	return c.Status(fiber.StatusCreated).JSON(createdToken{Token: value, tokenMetadata: s.metadataOf(rec, tokenState{})})
}

// lookup finds the token at path parameter id that p may see; 404 for
// tokens that do not exist, are in another org, or are not p's to see.
func (s *Server) lookup(c *fiber.Ctx, p *principal) (store.TokenRecord, error) {
	id := c.Params("id")
	notFound := errorf(ECodeNotFound, "There is no such token.")
	if !validTokenID(id) {
		return store.TokenRecord{}, notFound
	}
	rec, err := s.st.GetToken(c.UserContext(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.TokenRecord{}, notFound
	case err != nil:
		return store.TokenRecord{}, fmt.Errorf("look up token: %w", err)
	case !visible(p, rec):
		return store.TokenRecord{}, notFound
	}
	return rec, nil
}

func (s *Server) handleGetToken(c *fiber.Ctx) error {
	p, err := s.authenticate(c)
	if err != nil {
		return err
	}
	rec, err := s.lookup(c, p)
	if err != nil {
		return err
	}
	listed, err := s.feed.revoked(c.UserContext(), s.now(), tokenRef(rec))
	if err != nil {
		return err
	}
	return c.JSON(s.metadataOf(rec, tokenState{listed: listed[0]}))
}

func (s *Server) handleDeleteToken(c *fiber.Ctx) error {
	p, err := s.authenticate(c)
	if err != nil {
		return err
	}
	rec, err := s.lookup(c, p)
	if err != nil {
		return err
	}
	if err := s.revoke(c, p, rec, "revoked by "+p.User.Username); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// revoke revokes rec durably (idempotent), wakes the revocation feed and
// audits the first revocation.
func (s *Server) revoke(c *fiber.Ctx, p *principal, rec store.TokenRecord, reason string) error {
	if _, err := s.st.RevokeToken(c.UserContext(), rec.ID, s.now(), reason); err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	s.feed.notify()
	if rec.RevokedAt == nil {
		s.metrics.revocations.WithLabelValues("token").Inc()
		s.audit(c, p, "token.revoke", rec.ID, reason)
	}
	return nil
}

// reissueChecks applies to regenerate and copy: the caller may create
// tokens, a personal token's owner still exists and still holds every
// scope, and the caller holds them too. It returns the owner's UpdatedAt
// (zero for administrative tokens) for grant.OwnerUpdated.
func (s *Server) reissueChecks(c *fiber.Ctx, p *principal, rec store.TokenRecord) (time.Time, error) {
	if err := s.mayCreate(p); err != nil {
		return time.Time{}, err
	}
	if !rec.Type.Valid() {
		return time.Time{}, errorf(ECodeConflict, "This token has an unknown type and cannot be reissued.")
	}
	if bad, ok := uncovered(p.Scopes, rec.Scopes); ok {
		return time.Time{}, errorf(ECodeForbidden, "You may not grant the scope %q.", bad)
	}
	if rec.Type != store.TokenPersonal {
		return time.Time{}, nil
	}
	if rec.Owner == p.User.Username {
		return p.User.UpdatedAt, nil
	}
	owner, err := s.st.GetUser(c.UserContext(), rec.Owner)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return time.Time{}, errorf(ECodeConflict, "The token's owner no longer exists.")
	case err != nil:
		return time.Time{}, fmt.Errorf("look up token owner: %w", err)
	}
	if bad, ok := uncovered(s.cfg.Roles[string(owner.Role)], rec.Scopes); ok {
		return time.Time{}, errorf(ECodeForbidden, "The token's owner no longer holds the scope %q.", bad)
	}
	return owner.UpdatedAt, nil
}

// reissueLifetime is a token's lifetime for regenerate and copy: as asked
// for at creation, within today's maximum.
func (s *Server) reissueLifetime(rec store.TokenRecord) time.Duration {
	life := rec.Lifetime
	if life <= 0 {
		life = rec.ExpiresAt.Sub(rec.IssuedAt)
	}
	return max(min(life, s.cfg.MaxTTL), time.Second)
}

func (s *Server) handleRegenerateToken(c *fiber.Ctx) error {
	p, err := s.authenticate(c)
	if err != nil {
		return err
	}
	if _, err := decodeBody(c, &struct{}{}); err != nil {
		return err
	}
	old, err := s.lookup(c, p)
	if err != nil {
		return err
	}
	if old.ReplacedBy != "" {
		return errorf(ECodeConflict, "This token was already regenerated; its replacement is %s.", old.ReplacedBy)
	}
	ownerUpdated, err := s.reissueChecks(c, p, old)
	if err != nil {
		return err
	}
	g := grant{
		Type:         old.Type,
		Owner:        old.Owner,
		Org:          old.Org,
		Name:         old.Name,
		Description:  old.Description,
		Scopes:       old.Scopes,
		CreatedBy:    p.User.Username,
		Lifetime:     s.reissueLifetime(old),
		ParentID:     old.ID,
		OwnerUpdated: ownerUpdated,
		Client:       s.clientIP(c),
	}
	now, err := s.afterCutoff(c.UserContext(), g, s.now())
	if err != nil {
		return err
	}
	value, next, err := s.mint(g, now)
	if err != nil {
		return err
	}
	if _, err := s.st.ReplaceToken(c.UserContext(), old.ID, next, now); err != nil {
		if errors.Is(err, store.ErrConflict) {
			// Either a concurrent regenerate won, or (the old token being
			// revoked or expired) a live token has taken its name since.
			if cur, gerr := s.st.GetToken(c.UserContext(), old.ID); gerr == nil && cur.ReplacedBy == "" {
				return errorf(ECodeConflict, "A live token named %q exists now; revoke or rename it, or copy this token under another name.", old.Name)
			}
			return errorf(ECodeConflict, "This token was already regenerated.")
		}
		if errors.Is(err, store.ErrNotFound) {
			return errorf(ECodeNotFound, "There is no such token.")
		}
		return fmt.Errorf("replace token: %w", err)
	}
	s.feed.notify()
	s.metrics.tokensIssued.WithLabelValues(string(next.Type)).Inc()
	if old.RevokedAt == nil {
		s.metrics.revocations.WithLabelValues("regenerate").Inc()
	}
	s.audit(c, p, "token.regenerate", old.ID, "replaced by "+next.ID)
	if err := s.ownerUnchanged(c.UserContext(), next, g); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(createdToken{Token: value, tokenMetadata: s.metadataOf(next, tokenState{})})
}

func (s *Server) handleCopyToken(c *fiber.Ctx) error {
	p, err := s.authenticate(c)
	if err != nil {
		return err
	}
	var req copyTokenRequest
	if _, err := decodeBody(c, &req); err != nil {
		return err
	}
	orig, err := s.lookup(c, p)
	if err != nil {
		return err
	}
	ownerUpdated, err := s.reissueChecks(c, p, orig)
	if err != nil {
		return err
	}
	name := orig.Name
	if name != "" {
		name = truncateRunes(name+" (copy)", maxNameLen)
	}
	if req.Name != nil {
		name = *req.Name
	}
	desc := orig.Description
	if req.Description != nil {
		desc = *req.Description
	}
	if err := checkLabel("name", name, maxNameLen, false); err != nil {
		return err
	}
	if err := checkLabel("description", desc, maxDescriptionLen, true); err != nil {
		return err
	}
	now := s.now().UTC().Truncate(time.Second)
	life, err := s.lifetime(expiry{In: req.ExpiresIn, At: req.ExpiresAt}, s.reissueLifetime(orig), now)
	if err != nil {
		return err
	}
	value, rec, err := s.issue(c.UserContext(), grant{
		Type:         orig.Type,
		Owner:        orig.Owner,
		Org:          orig.Org,
		Name:         name,
		Description:  desc,
		Scopes:       orig.Scopes,
		CreatedBy:    p.User.Username,
		Lifetime:     life,
		ParentID:     orig.ID,
		OwnerUpdated: ownerUpdated,
		Client:       s.clientIP(c),
	})
	if err != nil {
		return err
	}
	s.audit(c, p, "token.copy", orig.ID, "copied to "+rec.ID)
	return c.Status(fiber.StatusCreated).JSON(createdToken{Token: value, tokenMetadata: s.metadataOf(rec, tokenState{})})
}

// truncateRunes shortens s to at most n characters.
func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
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
