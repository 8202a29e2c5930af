package issuer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/signet-auth/signet/notify"
	"github.com/signet-auth/signet/revocation"
	"github.com/signet-auth/signet/store"
)

// The rules of expiry notices: which tokens are told about, and to whom.
// When and how a notice goes out is the notify package's.

var _ notify.Source = (*Service)(nil)

// noticeWorthy reports whether t is a token expiry notices are about at
// now: named (POST /tokens, or POST /user-token with a name; session
// tokens have none), active by every revocation this issuer knows of, and
// not regenerated (its replacement carries on).
func noticeWorthy(t Token, now time.Time) bool {
	return t.Record.Name != "" && t.Record.ReplacedBy == "" && t.Active(now)
}

// ExpiringTokens lists the named tokens of every organization that are
// active at now and expire at or before until, each with whom to tell by
// email: a personal token's owner (while the same person holds the name),
// or every admin of an administrative token's organization.
func (s *Service) ExpiringTokens(ctx context.Context, now, until time.Time) ([]notify.Token, error) {
	recs, err := s.st.ListTokens(ctx, store.TokenFilter{Now: now, ExpiresBy: until})
	if err != nil {
		return nil, fmt.Errorf("list expiring tokens: %w", err)
	}
	refs := make([]revocation.TokenRef, len(recs))
	for i, r := range recs {
		refs[i] = tokenRef(r)
	}
	listed, err := s.feed.revoked(ctx, now, refs...)
	if err != nil {
		return nil, err
	}
	admins := map[string][]string{} // org → admins' emails, read once per org
	var out []notify.Token
	for i, r := range recs {
		if !noticeWorthy(Token{Record: r, KeyRevoked: listed[i]}, now) {
			continue
		}
		to, err := s.noticeRecipients(ctx, r, admins)
		if err != nil {
			return nil, err
		}
		out = append(out, notify.Token{Record: r, Recipients: to})
	}
	return out, nil
}

// noticeRecipients returns the email addresses told about r.
func (s *Service) noticeRecipients(ctx context.Context, r store.TokenRecord, admins map[string][]string) ([]string, error) {
	if r.Type == store.TokenPersonal {
		u, err := s.st.GetUser(ctx, r.Owner)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("look up token owner: %w", err)
		case u.ID != r.OwnerID || r.OwnerID == "" || u.Email == "":
			return nil, nil
		}
		return []string{u.Email}, nil
	}
	if to, ok := admins[r.Org]; ok {
		return to, nil
	}
	users, err := s.st.ListUsers(ctx, r.Org)
	if err != nil {
		return nil, fmt.Errorf("list the admins of %s: %w", r.Org, err)
	}
	var to []string
	for _, u := range users {
		if u.Role == store.RoleAdmin && u.Email != "" {
			to = append(to, u.Email)
		}
	}
	admins[r.Org] = to
	return to, nil
}

// TokenValid reports whether token id is still one ExpiringTokens lists
// at now (whatever its expiry): asked just before a notice goes out.
func (s *Service) TokenValid(ctx context.Context, id string, now time.Time) (bool, error) {
	rec, err := s.st.GetToken(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("look up token: %w", err)
	}
	listed, err := s.feed.revoked(ctx, now, tokenRef(rec))
	if err != nil {
		return false, err
	}
	return noticeWorthy(Token{Record: rec, KeyRevoked: listed[0]}, now), nil
}
