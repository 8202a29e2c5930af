package issuer

import (
	"context"
	"fmt"
	"time"
)

// The key rule: only the operator (the CLI, holding the key directory)
// withdraws a signing key, and the withdrawal lasts as long as any token
// the key signed may live.

// WithdrawKey records that the signing key kid is withdrawn (signet keys
// revoke): once it returns, every verifier following the revocation list
// refuses the tokens the key signed. signedFor is the longest lifetime the
// key may have signed a token for (the key's own record; a later, lower
// max_ttl does not shorten it). Only the operator withdraws keys; taking
// the key out of the key set is the keys package's part.
func (s *Service) WithdrawKey(ctx context.Context, p *Principal, kid string, signedFor time.Duration) error {
	if !p.cli {
		return errorf(ECodeForbidden, "Only the operator withdraws signing keys.")
	}
	if kid == "" {
		return errorf(ECodeInvalid, "A key id is required.")
	}
	now := s.now().UTC()
	if _, err := s.st.RevokeKey(ctx, kid, now, now.Add(max(signedFor, s.cfg.MaxTTL))); err != nil {
		return fmt.Errorf("record key revocation: %w", err)
	}
	s.committed(ctx, p, change{action: "key.revoke", target: kid, revoked: "key"})
	return nil
}
