package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/signet-auth/signet/revocation"
	"github.com/signet-auth/signet/store"
	"github.com/signet-auth/signet/token"
)

// The token rules: who sees, creates, reissues and revokes which token,
// with which scopes and lifetime. Minting, recording and parsing token
// values is tokens.go; lifetimes from a request are request.go's lifetime.

// IssueRequest asks for a new token: POST /user-token (personal, for the
// caller) or POST /tokens (named; personal or administrative). Nil Scopes
// and Preset mean every scope the caller holds; ExpiresIn and ExpiresAt
// unset mean the default lifetime.
type IssueRequest struct {
	Name        string
	Description string
	// Type is personal (the default) or administrative.
	Type   store.TokenType
	Scopes *[]string
	Preset *string
	// ExpiresIn is a JSON duration string ("72h") or number of seconds.
	ExpiresIn json.RawMessage
	// ExpiresAt is an RFC 3339 time.
	ExpiresAt *string
}

// CopyRequest overrides what a copy takes from its original; nil fields
// keep the original's (the name gets " (copy)").
type CopyRequest struct {
	Name        *string
	Description *string
	ExpiresIn   json.RawMessage
	ExpiresAt   *string
}

// RegenerateRequest is the optional body of a regenerate.
type RegenerateRequest struct {
	// Grace is how long the old value stays valid: a JSON duration string
	// ("1h") or number of seconds, up to MaxRegenerateGrace. Unset or 0:
	// the old value is revoked at once.
	Grace json.RawMessage
}

// Issued is a token just signed and recorded: its value, shown this once,
// and its record.
type Issued struct {
	Value  string
	Record store.TokenRecord
	// PreviousValidUntil, after a regenerate, is when the old value stops
	// (or stopped) working: the end of the grace period, or the moment it
	// was revoked, or its expiry when that came first.
	PreviousValidUntil time.Time
}

// Token is a token as its viewers see it: the record, and what the record
// alone does not say.
type Token struct {
	Record store.TokenRecord
	// KeyRevoked is set when the revocation list revokes it beyond what
	// its record says: in practice, when the key that signed it was
	// withdrawn (revocation.Index decides).
	KeyRevoked bool
	// Pruned is set when the record was long gone and Record was rebuilt
	// from the token's claims.
	Pruned bool
}

// Revoked reports whether t no longer verifies at now: revoked (past its
// grace period, if it has one), or its key withdrawn.
func (t Token) Revoked(now time.Time) bool { return t.Record.Revoked(now) || t.KeyRevoked }

// Active reports whether t is valid at now.
func (t Token) Active(now time.Time) bool { return !t.Revoked(now) && now.Before(t.Record.ExpiresAt) }

// TokenQuery selects tokens for ListTokens. Zero fields do not filter.
type TokenQuery struct {
	// Owner is a username: an admin's filter on the recorded owner name.
	Owner          string
	Type           store.TokenType
	IncludeRevoked bool
	IncludeExpired bool
	Limit          int
}

// errNoToken answers a token that does not exist or is not the caller's to
// see: the two are not told apart.
var errNoToken = errorf(ECodeNotFound, "There is no such token.")

// visible reports whether p may see and manage r: the CLI every token, org
// admins every token of their org, members their own personal tokens (by
// user id: a user who took a removed user's name owns none of theirs). A
// token principal manages nothing.
func visible(p *Principal, r store.TokenRecord) bool {
	switch {
	case p.cli:
		return true
	case p.Token != nil || r.Org != p.User.Org:
		return false
	}
	return p.isAdmin() || (r.Type == store.TokenPersonal && r.OwnerID != "" && r.OwnerID == p.User.ID)
}

// mayCreate refuses members when personal tokens are turned off, and
// everyone who is not a user.
func (s *Service) mayCreate(p *Principal) error {
	if p.cli || p.Token != nil {
		return errorf(ECodeForbidden, "Only users create tokens.")
	}
	if !s.cfg.PersonalTokens && !p.isAdmin() {
		return errorf(ECodeForbidden, "Personal tokens are turned off here; only organization admins create tokens.")
	}
	return nil
}

// IssueUserToken is POST /user-token: a personal token for p, by default
// for UserTokenTTL with every scope p holds.
func (s *Service) IssueUserToken(ctx context.Context, p *Principal, req IssueRequest) (Issued, error) {
	if err := s.mayCreate(p); err != nil {
		return Issued{}, err
	}
	if err := checkLabel("name", req.Name, maxNameLen, false); err != nil {
		return Issued{}, err
	}
	scopes, err := s.resolveScopes(p.Scopes, req.Scopes, req.Preset)
	if err != nil {
		return Issued{}, err
	}
	now := s.now().UTC().Truncate(time.Second)
	life, err := s.lifetime(expiry{In: req.ExpiresIn, At: req.ExpiresAt}, s.cfg.UserTokenTTL, now)
	if err != nil {
		return Issued{}, err
	}
	iss, err := s.issue(ctx, p, grant{
		Type:         store.TokenPersonal,
		Owner:        p.User.Username,
		OwnerID:      p.User.ID,
		OwnerUpdated: p.User.UpdatedAt,
		Org:          p.User.Org,
		Name:         req.Name,
		Scopes:       scopes,
		CreatedBy:    p.User.Username,
		Lifetime:     life,
	})
	if err != nil {
		return Issued{}, err
	}
	s.committed(ctx, p, change{org: iss.Record.Org, action: "token.create", target: iss.Record.ID, detail: "user-token", issued: iss.Record.Type})
	return iss, nil
}

// CreateToken is POST /tokens: a named token, personal (for p) or, for org
// admins only, administrative; by default for DefaultTTL with every scope
// p holds.
func (s *Service) CreateToken(ctx context.Context, p *Principal, req IssueRequest) (Issued, error) {
	if req.Name == "" {
		return Issued{}, errorf(ECodeInvalid, "A token needs a name.")
	}
	if err := checkLabel("name", req.Name, maxNameLen, false); err != nil {
		return Issued{}, err
	}
	if err := checkLabel("description", req.Description, maxDescriptionLen, true); err != nil {
		return Issued{}, err
	}
	typ := req.Type
	if typ == "" {
		typ = store.TokenPersonal
	}
	if !typ.Valid() {
		return Issued{}, errorf(ECodeInvalid, "type must be personal or administrative.")
	}
	if err := s.mayCreate(p); err != nil {
		return Issued{}, err
	}
	if typ == store.TokenAdministrative && !p.isAdmin() {
		return Issued{}, errorf(ECodeForbidden, "Only organization admins create administrative tokens.")
	}
	scopes, err := s.resolveScopes(p.Scopes, req.Scopes, req.Preset)
	if err != nil {
		return Issued{}, err
	}
	now := s.now().UTC().Truncate(time.Second)
	life, err := s.lifetime(expiry{In: req.ExpiresIn, At: req.ExpiresAt}, s.cfg.DefaultTTL, now)
	if err != nil {
		return Issued{}, err
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
		g.Owner, g.OwnerID, g.OwnerUpdated = p.User.Username, p.User.ID, p.User.UpdatedAt
	}
	iss, err := s.issue(ctx, p, g)
	if err != nil {
		return Issued{}, err
	}
	s.committed(ctx, p, change{org: iss.Record.Org, action: "token.create", target: iss.Record.ID,
		detail: fmt.Sprintf("%s token %q", typ, req.Name), issued: iss.Record.Type})
	return iss, nil
}

// lookup finds token id for p: errNoToken when it does not exist or is not
// p's to see.
func (s *Service) lookup(ctx context.Context, p *Principal, id string) (store.TokenRecord, error) {
	if !validTokenID(id) {
		return store.TokenRecord{}, errNoToken
	}
	rec, err := s.st.GetToken(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.TokenRecord{}, errNoToken
	case err != nil:
		return store.TokenRecord{}, fmt.Errorf("look up token: %w", err)
	case !visible(p, rec):
		return store.TokenRecord{}, errNoToken
	}
	return rec, nil
}

// GetToken is GET /tokens/{id}.
func (s *Service) GetToken(ctx context.Context, p *Principal, id string) (Token, error) {
	rec, err := s.lookup(ctx, p, id)
	if err != nil {
		return Token{}, err
	}
	listed, err := s.feed.revoked(ctx, s.now(), tokenRef(rec))
	if err != nil {
		return Token{}, err
	}
	return Token{Record: rec, KeyRevoked: listed[0]}, nil
}

// ListTokens is GET /tokens: admins list their org's tokens, members their
// own personal tokens; nobody sees another org's (the CLI sees every org's).
func (s *Service) ListTokens(ctx context.Context, p *Principal, q TokenQuery) ([]Token, error) {
	if q.Type != "" && !q.Type.Valid() {
		return nil, errorf(ECodeInvalid, "type must be personal or administrative.")
	}
	if p.Token != nil {
		return nil, errorf(ECodeForbidden, "Tokens are listed by users.")
	}
	f := store.TokenFilter{
		Org: p.User.Org, Owner: q.Owner, Type: q.Type, Now: s.now(),
		IncludeRevoked: q.IncludeRevoked, IncludeExpired: q.IncludeExpired, Limit: q.Limit,
	}
	if !p.cli && !p.isAdmin() {
		if q.Owner != "" && q.Owner != p.User.Username {
			return nil, errorf(ECodeForbidden, "Members list only their own tokens.")
		}
		if q.Type == store.TokenAdministrative {
			return []Token{}, nil
		}
		f.Owner, f.OwnerID, f.Type = "", p.User.ID, store.TokenPersonal
		if p.User.ID == "" {
			return []Token{}, nil
		}
	}
	recs, err := s.st.ListTokens(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	refs := make([]revocation.TokenRef, len(recs))
	for i, r := range recs {
		refs[i] = tokenRef(r)
	}
	listed, err := s.feed.revoked(ctx, s.now(), refs...)
	if err != nil {
		return nil, err
	}
	out := make([]Token, 0, len(recs))
	for i, r := range recs {
		if visible(p, r) {
			out = append(out, Token{Record: r, KeyRevoked: listed[i]})
		}
	}
	return out, nil
}

// RevokeToken is DELETE /tokens/{id}: durable before it returns, and
// idempotent.
func (s *Service) RevokeToken(ctx context.Context, p *Principal, id string) error {
	rec, err := s.lookup(ctx, p, id)
	if err != nil {
		return err
	}
	return s.revoke(ctx, p, rec, "revoked by "+p.actor())
}

// revoke revokes rec durably (idempotent); only the first revocation is a
// change. The old value of a token regenerated with a grace period is
// revoked at once: that ends its grace period, and is a change too.
func (s *Service) revoke(ctx context.Context, p *Principal, rec store.TokenRecord, reason string) error {
	now := s.now()
	if _, err := s.st.RevokeToken(ctx, rec.ID, now, reason); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errNoToken
		}
		return fmt.Errorf("revoke token: %w", err)
	}
	switch {
	case rec.RevokedAt == nil:
		s.committed(ctx, p, change{org: rec.Org, action: "token.revoke", target: rec.ID, detail: reason, revoked: "token"})
	case !rec.Revoked(now):
		s.committed(ctx, p, change{org: rec.Org, action: "token.revoke", target: rec.ID, revoked: "token",
			detail: reason + "; ends the grace period it had until " + rec.ValidUntil.UTC().Format(time.RFC3339)})
	}
	return nil
}

// RevokeValue is POST /revoke (RFC 7009) for a token value. A value that
// is malformed or not ours, or whose record is long gone, needs nothing
// done and is no error; a token p may not revoke is forbidden.
func (s *Service) RevokeValue(ctx context.Context, p *Principal, value string) error {
	pt, err := s.parseToken(ctx, value)
	if err != nil {
		if isInvalidToken(err) {
			return nil
		}
		return err
	}
	if !visible(p, pt.rec) {
		return errorf(ECodeForbidden, "Only the token's owner or an admin of its organization may revoke it.")
	}
	if pt.pruned {
		return nil // long expired; nothing left to revoke
	}
	return s.revoke(ctx, p, pt.rec, "revoked by "+p.actor()+" via /revoke")
}

// reissueChecks applies to regenerate and copy: the caller may create
// tokens, a personal token's owner still exists (the same person, not a
// new holder of the name) and still holds every scope, and the caller
// holds them too. It returns the owner's UpdatedAt (zero for
// administrative tokens) for grant.OwnerUpdated.
func (s *Service) reissueChecks(ctx context.Context, p *Principal, rec store.TokenRecord) (time.Time, error) {
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
	if rec.OwnerID != "" && rec.OwnerID == p.User.ID {
		return p.User.UpdatedAt, nil
	}
	owner, err := s.st.GetUser(ctx, rec.Owner)
	switch {
	case errors.Is(err, store.ErrNotFound) || (err == nil && (rec.OwnerID == "" || owner.ID != rec.OwnerID)):
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
func (s *Service) reissueLifetime(rec store.TokenRecord) time.Duration {
	life := rec.Lifetime
	if life <= 0 {
		life = rec.ExpiresAt.Sub(rec.IssuedAt)
	}
	return max(min(life, s.cfg.MaxTTL), time.Second)
}

// Regenerate is POST /tokens/{id}/regenerate: a new value and id with the
// same name, description, type, scopes and lifetime (counted from now);
// the old token is revoked in the same transaction, at once or, with a
// grace period, from the new token's issue time plus the grace on (never
// later than the old token's own expiry). Allowed after expiry, once per
// token.
func (s *Service) Regenerate(ctx context.Context, p *Principal, id string, req RegenerateRequest) (Issued, error) {
	grace, err := s.grace(req.Grace)
	if err != nil {
		return Issued{}, err
	}
	old, err := s.lookup(ctx, p, id)
	if err != nil {
		return Issued{}, err
	}
	if old.ReplacedBy != "" {
		return Issued{}, errorf(ECodeConflict, "This token was already regenerated; its replacement is %s.", old.ReplacedBy)
	}
	ownerUpdated, err := s.reissueChecks(ctx, p, old)
	if err != nil {
		return Issued{}, err
	}
	g := grant{
		Type:         old.Type,
		Owner:        old.Owner,
		OwnerID:      old.OwnerID,
		Org:          old.Org,
		Name:         old.Name,
		Description:  old.Description,
		Scopes:       old.Scopes,
		CreatedBy:    p.User.Username,
		Lifetime:     s.reissueLifetime(old),
		ParentID:     old.ID,
		OwnerUpdated: ownerUpdated,
	}
	now, err := s.afterCutoff(ctx, g, s.now())
	if err != nil {
		return Issued{}, err
	}
	value, next, err := s.mint(g, now)
	if err != nil {
		return Issued{}, err
	}
	// Whole seconds, counted from the new token's iat, so that the time
	// the answer shows is the very time the old value stops.
	var validUntil time.Time
	if grace > 0 {
		validUntil = next.IssuedAt.Add(grace)
	}
	rev, err := s.st.ReplaceToken(ctx, old.ID, next, now, validUntil)
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			// Either a concurrent regenerate won, or (the old token being
			// revoked or expired) a live token has taken its name since.
			if cur, gerr := s.st.GetToken(ctx, old.ID); gerr == nil && cur.ReplacedBy == "" {
				return Issued{}, errorf(ECodeConflict, "A live token named %q exists now; revoke or rename it, or copy this token under another name.", old.Name)
			}
			return Issued{}, errorf(ECodeConflict, "This token was already regenerated.")
		}
		if errors.Is(err, store.ErrNotFound) {
			return Issued{}, errNoToken
		}
		return Issued{}, fmt.Errorf("replace token: %w", err)
	}
	// The last check before the change counts: a refusal here withholds
	// the new token (and audits that), and no regenerate is recorded.
	if err := s.ownerUnchanged(ctx, p, next, g); err != nil {
		return Issued{}, err
	}
	until := previousValidUntil(old, rev)
	detail := "replaced by " + next.ID
	if grace > 0 {
		detail += fmt.Sprintf("; grace %s: the old value is valid until %s", shortDuration(grace), until.UTC().Format(time.RFC3339))
		switch {
		case rev.ValidUntil.IsZero():
			detail += " (it was revoked or expired already)"
		case rev.ValidUntil.Before(validUntil):
			detail += " (its own expiry)"
		}
	}
	ch := change{org: old.Org, action: "token.regenerate", target: old.ID, detail: detail, issued: next.Type}
	if old.RevokedAt == nil {
		ch.revoked = "regenerate"
	}
	s.committed(ctx, p, ch)
	return Issued{Value: value, Record: next, PreviousValidUntil: until}, nil
}

// previousValidUntil is when the old value of a regenerated token stops
// (or stopped) working, from its record as it was and the entry that
// revokes it: the end of its grace period; else when it was revoked
// (now, or earlier when it was revoked already); or its expiry when that
// comes first.
func previousValidUntil(old store.TokenRecord, rev store.Revocation) time.Time {
	until := rev.ValidUntil
	if until.IsZero() {
		until = rev.RevokedAt
		if from, ok := old.RevokedFrom(); ok {
			until = from
		}
	}
	if old.ExpiresAt.Before(until) {
		until = old.ExpiresAt
	}
	return until.UTC()
}

// Copy is POST /tokens/{id}/copy: a new token with the original's
// parameters, name, description and lifetime overridable; the original
// stays valid.
func (s *Service) Copy(ctx context.Context, p *Principal, id string, req CopyRequest) (Issued, error) {
	orig, err := s.lookup(ctx, p, id)
	if err != nil {
		return Issued{}, err
	}
	ownerUpdated, err := s.reissueChecks(ctx, p, orig)
	if err != nil {
		return Issued{}, err
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
		return Issued{}, err
	}
	if err := checkLabel("description", desc, maxDescriptionLen, true); err != nil {
		return Issued{}, err
	}
	now := s.now().UTC().Truncate(time.Second)
	life, err := s.lifetime(expiry{In: req.ExpiresIn, At: req.ExpiresAt}, s.reissueLifetime(orig), now)
	if err != nil {
		return Issued{}, err
	}
	iss, err := s.issue(ctx, p, grant{
		Type:         orig.Type,
		Owner:        orig.Owner,
		OwnerID:      orig.OwnerID,
		Org:          orig.Org,
		Name:         name,
		Description:  desc,
		Scopes:       orig.Scopes,
		CreatedBy:    p.User.Username,
		Lifetime:     life,
		ParentID:     orig.ID,
		OwnerUpdated: ownerUpdated,
	})
	if err != nil {
		return Issued{}, err
	}
	s.committed(ctx, p, change{org: orig.Org, action: "token.copy", target: orig.ID, detail: "copied to " + iss.Record.ID, issued: iss.Record.Type})
	return iss, nil
}

// TokenInfo is GET /user-token?token=: what a token this issuer signed
// is, active or not, for its owner or an admin of its org; and its owner's
// email when the owner still exists (the same person).
func (s *Service) TokenInfo(ctx context.Context, p *Principal, value string) (Token, string, error) {
	pt, err := s.parseToken(ctx, value)
	if err != nil {
		return Token{}, "", err
	}
	if !visible(p, pt.rec) {
		return Token{}, "", errorf(ECodeForbidden, "Only the token's owner or an admin of its organization may look at it.")
	}
	t := Token{Record: pt.rec, KeyRevoked: pt.state.keyRevoked, Pruned: pt.pruned}
	if pt.rec.Type != store.TokenPersonal {
		return t, "", nil
	}
	u, err := s.st.GetUser(ctx, pt.rec.Owner)
	switch {
	case err == nil && u.ID == pt.rec.OwnerID:
		return t, u.Email, nil
	case err == nil || errors.Is(err, store.ErrNotFound):
		return t, "", nil
	}
	return Token{}, "", fmt.Errorf("look up token owner: %w", err)
}

// Introspection is the RFC 7662 answer about one token. Inactive answers
// carry nothing else.
type Introspection struct {
	Active bool
	Claims token.Claims
	// Username is the owner's username for personal tokens.
	Username string
}

// introspectScope is the scope an administrative token needs to introspect
// its org's tokens as a bearer (RFC 7662 §2.1).
const introspectScope = "signet:introspect"

// Introspect is POST /introspect. A user learns about the tokens they may
// see (their own; an admin's org's); an administrative token holding
// signet:introspect about every token of its org. Anything else, and any
// token not active, is inactive, whatever the reason.
func (s *Service) Introspect(ctx context.Context, p *Principal, value string) (Introspection, error) {
	if p.Token != nil {
		if _, missing := uncovered(p.Scopes, []string{introspectScope}); missing || p.Token.Type != store.TokenAdministrative {
			return Introspection{}, errorf(ECodeForbidden, "Introspection with a bearer token needs an administrative token with the scope %s.", introspectScope)
		}
	}
	pt, err := s.parseToken(ctx, value)
	if err != nil {
		if isInvalidToken(err) {
			return Introspection{}, nil
		}
		return Introspection{}, err
	}
	now := s.now()
	t := Token{Record: pt.rec, KeyRevoked: pt.state.keyRevoked}
	mine := visible(p, pt.rec) || (p.Token != nil && pt.rec.Org == p.Token.Org)
	if pt.pruned || !mine || !t.Active(now) || pt.claims.NotBefore.After(now) {
		return Introspection{}, nil
	}
	return Introspection{Active: true, Claims: pt.claims, Username: pt.rec.Owner}, nil
}

// BearerPrincipal authenticates a bearer token for introspection: a token
// this issuer signed, active, whose record says what it may do. Anything
// else is unauthorized. It costs a signature check and a store read, no
// password hashing.
func (s *Service) BearerPrincipal(ctx context.Context, value string) (*Principal, error) {
	bad := errorf(ECodeUnauthorized, "The bearer token is malformed, expired, revoked or not issued by this issuer.")
	pt, err := s.parseToken(ctx, value)
	if err != nil {
		if isInvalidToken(err) {
			return nil, bad
		}
		return nil, err
	}
	now := s.now()
	t := Token{Record: pt.rec, KeyRevoked: pt.state.keyRevoked}
	if pt.pruned || !t.Active(now) || pt.claims.NotBefore.After(now) {
		return nil, bad
	}
	rec := t.Record
	return &Principal{Token: &rec, Scopes: rec.Scopes}, nil
}

// truncateRunes shortens s to at most n characters.
func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}
