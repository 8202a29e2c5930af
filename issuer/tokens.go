package issuer

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/signet-auth/signet/store"
	"github.com/signet-auth/signet/token"
)

// Time layouts of responses.
const (
	// expireTimeLayout is the contract's expire_time: UTC, no zone.
	expireTimeLayout = "2006-01-02 15:04:05"
	// maxTokenLen bounds the token values this issuer parses: the token
	// package's one limit, above the largest token this issuer signs.
	maxTokenLen = token.MaxSize
)

// grant is what a new token is made of.
type grant struct {
	Type        store.TokenType
	Owner       string // username for personal tokens, "" for administrative
	OwnerID     string // the owner's user id for personal tokens
	Org         string
	Name        string
	Description string
	Scopes      []string
	CreatedBy   string
	Lifetime    time.Duration
	ParentID    string
	// OwnerUpdated is the owner's UpdatedAt as read when the request was
	// authorized (zero for administrative tokens): if the owner changes
	// before the token is recorded, the token is withheld (ownerUnchanged).
	OwnerUpdated time.Time
}

// tokenIDEncoding spells token ids in lower-case base32: URL-safe, selectable
// with a double click, and never starting with "-" (which a command line
// would take for a flag).
var tokenIDEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// newTokenID returns 128 random bits as 26 lower-case base32 characters.
func newTokenID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("token id: %w", err)
	}
	return strings.ToLower(tokenIDEncoding.EncodeToString(b[:])), nil
}

// mint signs a token for g issued at now and returns its value and record;
// nothing is stored yet.
func (s *Service) mint(g grant, now time.Time) (string, store.TokenRecord, error) {
	if s.keys == nil {
		return "", store.TokenRecord{}, errors.New("sign token: this service has no signing keys")
	}
	id, err := newTokenID()
	if err != nil {
		return "", store.TokenRecord{}, err
	}
	now = now.UTC().Truncate(time.Second)
	exp := now.Add(g.Lifetime)
	subject := g.Owner
	if g.Type == store.TokenAdministrative {
		subject = "token:" + id
	}
	scopes := g.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	payload, err := json.Marshal(token.Claims{
		Issuer:    s.issuer,
		Subject:   subject,
		Audience:  s.cfg.Audience,
		IssuedAt:  now,
		NotBefore: now,
		Expiry:    exp,
		ID:        id,
		Org:       g.Org,
		TokenType: string(g.Type),
		Scopes:    scopes,
	})
	if err != nil {
		return "", store.TokenRecord{}, fmt.Errorf("encode claims: %w", err)
	}
	value, kid, err := s.keys.Sign(payload)
	if err != nil {
		return "", store.TokenRecord{}, fmt.Errorf("sign token: %w", err)
	}
	return value, store.TokenRecord{
		ID:          id,
		Name:        g.Name,
		Description: g.Description,
		Type:        g.Type,
		Owner:       g.Owner,
		OwnerID:     g.OwnerID,
		Org:         g.Org,
		Subject:     subject,
		Scopes:      scopes,
		CreatedBy:   g.CreatedBy,
		KeyID:       kid,
		IssuedAt:    now,
		ExpiresAt:   exp,
		Lifetime:    g.Lifetime,
		ParentID:    g.ParentID,
	}, nil
}

// issue signs a token for g and records it before returning it: a token
// this issuer does not know of never leaves it. The caller runs the
// committed hook for it.
func (s *Service) issue(ctx context.Context, p *Principal, g grant) (Issued, error) {
	now, err := s.afterCutoff(ctx, g, s.now())
	if err != nil {
		return Issued{}, err
	}
	value, rec, err := s.mint(g, now)
	if err != nil {
		return Issued{}, err
	}
	if err := s.st.CreateToken(ctx, rec); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return Issued{}, errorf(ECodeConflict, "A live token named %q already exists; choose another name or revoke that one.", rec.Name)
		}
		return Issued{}, fmt.Errorf("record token: %w", err)
	}
	if err := s.ownerUnchanged(ctx, p, rec, g); err != nil {
		return Issued{}, err
	}
	return Issued{Value: value, Record: rec}, nil
}

// afterCutoff returns the time to issue a token at. iat has whole seconds
// and a subject cut-off (password set with revocation, or a removed user's
// name taken again) does not; verifiers refuse a token whose iat is before
// its subject's cut-off, so a token issued in the same second right after
// the cut-off would be refused everywhere for its whole life. In that one
// second the request waits for the next full second (at most a second,
// bounded by ctx) and the token is issued then.
func (s *Service) afterCutoff(ctx context.Context, g grant, now time.Time) (time.Time, error) {
	iat := now.Truncate(time.Second)
	// Only an owner changed after iat can have a cut-off after it; that
	// keeps the look-up off the usual path.
	if g.Type != store.TokenPersonal || !iat.Before(g.OwnerUpdated) {
		return now, nil
	}
	cut, err := s.feed.cutoff(ctx, g.Org, g.Owner, now)
	if err != nil {
		return time.Time{}, err
	}
	if !iat.Before(cut) {
		return now, nil
	}
	next := cut.Truncate(time.Second)
	if next.Before(cut) {
		next = next.Add(time.Second)
	}
	t := time.NewTimer(next.Sub(now))
	defer t.Stop()
	select {
	case <-t.C:
		return next, nil
	case <-ctx.Done():
		return time.Time{}, rateLimited(next.Sub(now), "The user's tokens were revoked a moment ago; ask again in a second.")
	}
}

// ownerUnchanged runs after a personal token is recorded: if its owner was
// removed or changed (a new password, maybe with its tokens revoked; or
// the name taken by someone else) since the request was authorized, that
// change may have committed between the authorization and the record and
// missed the token, so the token is revoked and withheld. A change
// committed after this check finds the record and covers it.
func (s *Service) ownerUnchanged(ctx context.Context, p *Principal, rec store.TokenRecord, g grant) error {
	if rec.Type != store.TokenPersonal {
		return nil
	}
	u, err := s.st.GetUser(ctx, rec.Owner)
	switch {
	case err == nil && u.UpdatedAt.Equal(g.OwnerUpdated) && u.Org == rec.Org && u.ID == rec.OwnerID:
		return nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		err = fmt.Errorf("confirm token owner: %w", err)
	default:
		err = errorf(ECodeConflict, "The user %s was changed or removed while the token was being made; nothing was issued.", rec.Owner)
	}
	const reason = "withheld: its owner changed while it was being made"
	if _, rerr := s.st.RevokeToken(ctx, rec.ID, s.now(), reason); rerr != nil {
		// The value never leaves this process, so nobody holds the token.
		s.log.Error("revoking a withheld token failed", "token_id", rec.ID, "err", rerr)
	} else {
		s.committed(ctx, p, change{org: rec.Org, action: "token.revoke", target: rec.ID, detail: reason, revoked: "withheld"})
	}
	return err
}

// tokenState is what a token record alone does not say: whether the
// revocation list revokes it (its signing key withdrawn, which Keys.Verify
// does not know; see revocationNotifier.revoked).
type tokenState struct {
	keyRevoked bool
}

// parsedToken is a token value this issuer signed, with its record.
type parsedToken struct {
	claims token.Claims
	kid    string
	rec    store.TokenRecord
	state  tokenState
	// pruned is true when the record is gone (long expired) and rec was
	// rebuilt from the claims.
	pruned bool
}

var errNotOurToken = errorf(ECodeInvalidToken, "The token is malformed or was not issued by this issuer.")

// parseToken checks a token value's signature and finds its record. A
// value that is malformed (as the token package reads it, the same reader
// every verifier uses), tampered with, signed by another issuer, or
// unknown to the store while unexpired is errNotOurToken.
func (s *Service) parseToken(ctx context.Context, value string) (*parsedToken, error) {
	if value == "" || len(value) > maxTokenLen {
		return nil, errNotOurToken
	}
	cl, err := s.keys.Verify(value)
	if err != nil || cl.Issuer != s.issuer {
		return nil, errNotOurToken
	}
	kid := cl.KeyID
	pt := &parsedToken{claims: cl, kid: kid}
	rec, err := s.st.GetToken(ctx, cl.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Records are pruned some time after expiry; an unexpired token
		// without one was not issued by this deployment.
		if cl.Expiry.After(s.now()) {
			return nil, errNotOurToken
		}
		rec = recordFromClaims(cl, kid)
		pt.pruned = true
		if err := s.ownerOfPruned(ctx, &rec); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("look up token: %w", err)
	case rec.Org != cl.Org || rec.Subject != cl.Subject:
		return nil, errNotOurToken
	}
	pt.rec = rec
	ref := tokenRef(rec)
	ref.KeyID = kid // the key that verified it
	listed, err := s.feed.revoked(ctx, s.now(), ref)
	if err != nil {
		return nil, err
	}
	pt.state.keyRevoked = listed[0]
	return pt, nil
}

// recordFromClaims rebuilds what a pruned record said from the claims.
func recordFromClaims(cl token.Claims, kid string) store.TokenRecord {
	r := store.TokenRecord{
		ID:        cl.ID,
		Type:      store.TokenType(cl.TokenType),
		Org:       cl.Org,
		Subject:   cl.Subject,
		KeyID:     kid,
		IssuedAt:  cl.IssuedAt.UTC(),
		ExpiresAt: cl.Expiry.UTC(),
		Scopes:    cl.Scopes,
	}
	if r.Type == store.TokenPersonal {
		r.Owner = cl.Subject
	}
	return r
}

// ownerOfPruned finds whose a pruned personal token was: the user who holds
// its subject's name, if they existed in the second it was issued in (names
// are unique at any one time, so it was theirs); otherwise nobody's now.
func (s *Service) ownerOfPruned(ctx context.Context, rec *store.TokenRecord) error {
	if rec.Type != store.TokenPersonal {
		return nil
	}
	u, err := s.st.GetUser(ctx, rec.Owner)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("look up token owner: %w", err)
	}
	if u.Org == rec.Org && u.CreatedAt.Before(rec.IssuedAt.Add(time.Second)) {
		rec.OwnerID = u.ID
	}
	return nil
}
