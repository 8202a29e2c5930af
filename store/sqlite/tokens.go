package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/signet-auth/signet/store"
)

const tokenColumns = `id, name, description, type, owner, owner_id, org, subject, scopes, created_by, key_id,
	issued_at, expires_at, lifetime_ns, revoked_at, replaced_by, parent_id, valid_until`

// CreateToken records a newly signed token. ErrConflict on a duplicate ID,
// or on a non-empty Name already held by a live token (unrevoked and
// unexpired at t.IssuedAt) of the same org and owner.
func (s *Store) CreateToken(ctx context.Context, t store.TokenRecord) error {
	if err := t.Validate(); err != nil {
		return fmt.Errorf("sqlite: create token: %w", err)
	}
	return s.write(ctx, "create token "+t.ID, func(tx *sql.Tx) error {
		return insertToken(ctx, tx, t)
	})
}

// insertToken checks the name rule and inserts t. The caller's write
// transaction holds the database's write lock, so no other writer can slip
// a token with the same name in between the check and the insert.
func insertToken(ctx context.Context, tx *sql.Tx, t store.TokenRecord) error {
	if t.Name != "" {
		var one int
		err := tx.QueryRowContext(ctx, `SELECT 1 FROM tokens
			WHERE org = ? AND owner = ? AND owner_id = ? AND name = ? AND name <> '' AND revoked_at IS NULL AND expires_at > ?
			LIMIT 1`, t.Org, t.Owner, t.OwnerID, t.Name, micros(t.IssuedAt)).Scan(&one)
		switch {
		case err == nil:
			return fmt.Errorf("token name %q is in use: %w", t.Name, store.ErrConflict)
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("check token name: %w", err)
		}
	}
	scopes := t.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	sj, err := json.Marshal(scopes)
	if err != nil {
		return fmt.Errorf("encode scopes: %w", err)
	}
	var revoked sql.NullInt64
	if t.RevokedAt != nil {
		revoked = nullMicros(*t.RevokedAt)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO tokens (`+tokenColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.Name, t.Description, string(t.Type), t.Owner, t.OwnerID, t.Org, t.Subject, string(sj), t.CreatedBy, t.KeyID,
		micros(t.IssuedAt), micros(t.ExpiresAt), int64(t.Lifetime), revoked, t.ReplacedBy, t.ParentID, nullMicros(t.ValidUntil))
	if isUniqueViolation(err) {
		return fmt.Errorf("token id exists: %w", store.ErrConflict)
	}
	if err != nil {
		return fmt.Errorf("insert token: %w", err)
	}
	return nil
}

// GetToken returns one token record; ErrNotFound when absent.
func (s *Store) GetToken(ctx context.Context, id string) (store.TokenRecord, error) {
	t, err := getToken(ctx, s.r, id)
	if err != nil {
		return store.TokenRecord{}, fmt.Errorf("sqlite: get token %s: %w", id, err)
	}
	return t, nil
}

// ListTokens returns the tokens matching f, newest (by IssuedAt) first.
// Expired tokens are left out only when f.IncludeExpired is false and f.Now
// is set.
func (s *Store) ListTokens(ctx context.Context, f store.TokenFilter) ([]store.TokenRecord, error) {
	if f.Limit < 0 {
		return nil, fmt.Errorf("sqlite: list tokens: negative limit %d", f.Limit)
	}
	var (
		where []string
		args  []any
	)
	if f.Org != "" {
		where, args = append(where, "org = ?"), append(args, f.Org)
	}
	if f.Owner != "" {
		where, args = append(where, "owner = ?"), append(args, f.Owner)
	}
	if f.OwnerID != "" {
		where, args = append(where, "owner_id = ?"), append(args, f.OwnerID)
	}
	if f.Type != "" {
		where, args = append(where, "type = ?"), append(args, string(f.Type))
	}
	switch {
	case f.IncludeRevoked:
	case f.Now.IsZero():
		where = append(where, "revoked_at IS NULL")
	default: // a token in its grace period is still valid
		where, args = append(where, "(revoked_at IS NULL OR valid_until > ?)"), append(args, micros(f.Now))
	}
	if !f.IncludeExpired && !f.Now.IsZero() {
		where, args = append(where, "expires_at > ?"), append(args, micros(f.Now))
	}
	if !f.ExpiresBy.IsZero() {
		where, args = append(where, "expires_at <= ?"), append(args, micros(f.ExpiresBy))
	}
	q := `SELECT ` + tokenColumns + ` FROM tokens`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY issued_at DESC, id DESC`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	out, err := queryAll(ctx, s.r, scanToken, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list tokens: %w", err)
	}
	return out, nil
}

// RevokeToken marks the token revoked and appends a RevokeToken entry in
// one transaction. A token already revoked is left as it is and the entry
// that revoked it returned: its own, else the RevokeSubject cut-off that
// covers it (DeleteUser, SetPassword), else, when that entry was pruned,
// one with Seq 0 describing the revocation from the token record. A token
// in its grace period is revoked at once instead (see revokeToken).
// ErrNotFound when the token is absent.
func (s *Store) RevokeToken(ctx context.Context, id string, now time.Time, reason string) (store.Revocation, error) {
	if now.IsZero() {
		return store.Revocation{}, fmt.Errorf("sqlite: revoke token %s: zero time", id)
	}
	var rev store.Revocation
	err := s.write(ctx, "revoke token "+id, func(tx *sql.Tx) error {
		t, err := getToken(ctx, tx, id)
		if err != nil {
			return err
		}
		rev, err = revokeToken(ctx, tx, t, now, time.Time{}, reason)
		return err
	})
	if err != nil {
		return store.Revocation{}, err
	}
	return rev, nil
}

// revokeToken revokes t inside tx: at now, or, with a validUntil after
// now, from then on (a grace period, at most until t expires). A token
// already revoked is left as it is, unless it is in its grace period:
// then it is revoked at once (its valid_until becomes now) with a second
// entry, which revocation.Index folds with the first to "from now on".
func revokeToken(ctx context.Context, tx *sql.Tx, t store.TokenRecord, now, validUntil time.Time, reason string) (store.Revocation, error) {
	if t.RevokedAt != nil && !t.Revoked(now) {
		if _, err := tx.ExecContext(ctx, `UPDATE tokens SET valid_until = ? WHERE id = ?`, micros(now), t.ID); err != nil {
			return store.Revocation{}, fmt.Errorf("end grace period: %w", err)
		}
		return appendRevocation(ctx, tx, store.Revocation{
			Kind: store.RevokeToken, Value: t.ID, Org: t.Org,
			RevokedAt: now, ExpiresAt: t.ExpiresAt, Reason: reason,
		})
	}
	existing, err := getTokenRevocation(ctx, tx, t.ID)
	switch {
	// An entry still waiting for its time while the record says revoked
	// was overtaken by a subject cut-off, which is returned below.
	case err == nil && !existing.ValidUntil.After(now):
		return existing, nil
	case err != nil && !errors.Is(err, store.ErrNotFound):
		return store.Revocation{}, err
	}
	if t.RevokedAt != nil {
		rev, err := subjectRevocation(ctx, tx, t)
		if !errors.Is(err, store.ErrNotFound) {
			return rev, err
		}
		from, _ := t.RevokedFrom()
		return store.Revocation{
			Kind: store.RevokeToken, Value: t.ID, Org: t.Org,
			RevokedAt: from, ExpiresAt: t.ExpiresAt, Reason: "revoked with its subject",
		}, nil
	}
	validUntil = graceEnd(t, now, validUntil)
	if _, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = ?, valid_until = ? WHERE id = ?`,
		micros(now), nullMicros(validUntil), t.ID); err != nil {
		return store.Revocation{}, fmt.Errorf("mark token revoked: %w", err)
	}
	return appendRevocation(ctx, tx, store.Revocation{
		Kind: store.RevokeToken, Value: t.ID, Org: t.Org, ValidUntil: validUntil,
		RevokedAt: now, ExpiresAt: t.ExpiresAt, Reason: reason,
	})
}

// graceEnd is the end of a grace period asked to last until validUntil:
// no later than t's expiry, and zero (none) unless after now.
func graceEnd(t store.TokenRecord, now, validUntil time.Time) time.Time {
	if validUntil.After(t.ExpiresAt) {
		validUntil = t.ExpiresAt
	}
	if !validUntil.After(now) {
		return time.Time{}
	}
	return validUntil
}

// ReplaceToken is regenerate: in one transaction it checks that oldID has
// not been replaced already (else ErrConflict), revokes it unless revoked
// (at once, or from validUntil on: a grace period), sets its ReplacedBy
// and inserts next under CreateToken's rules. It returns oldID's
// revocation entry. ErrNotFound when oldID is absent.
func (s *Store) ReplaceToken(ctx context.Context, oldID string, next store.TokenRecord, now, validUntil time.Time) (store.Revocation, error) {
	if err := next.Validate(); err != nil {
		return store.Revocation{}, fmt.Errorf("sqlite: replace token %s: %w", oldID, err)
	}
	if now.IsZero() {
		return store.Revocation{}, fmt.Errorf("sqlite: replace token %s: zero time", oldID)
	}
	if next.ID == oldID {
		return store.Revocation{}, fmt.Errorf("sqlite: replace token %s: new token has the same id", oldID)
	}
	var rev store.Revocation
	err := s.write(ctx, "replace token "+oldID, func(tx *sql.Tx) error {
		old, err := getToken(ctx, tx, oldID)
		if err != nil {
			return err
		}
		if old.ReplacedBy != "" {
			return fmt.Errorf("already replaced: %w", store.ErrConflict)
		}
		if rev, err = revokeToken(ctx, tx, old, now, validUntil, "regenerated"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE tokens SET replaced_by = ? WHERE id = ?`, next.ID, oldID); err != nil {
			return fmt.Errorf("mark token replaced: %w", err)
		}
		return insertToken(ctx, tx, next)
	})
	if err != nil {
		return store.Revocation{}, err
	}
	return rev, nil
}

func getToken(ctx context.Context, q queryer, id string) (store.TokenRecord, error) {
	t, err := scanToken(q.QueryRowContext(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.TokenRecord{}, store.ErrNotFound
	}
	return t, err
}

func scanToken(sc scanner) (store.TokenRecord, error) {
	var (
		t               store.TokenRecord
		typ, scopes     string
		issued, expires int64
		lifetime        int64
		revoked, until  sql.NullInt64
	)
	if err := sc.Scan(&t.ID, &t.Name, &t.Description, &typ, &t.Owner, &t.OwnerID, &t.Org, &t.Subject, &scopes,
		&t.CreatedBy, &t.KeyID, &issued, &expires, &lifetime, &revoked, &t.ReplacedBy, &t.ParentID, &until); err != nil {
		return store.TokenRecord{}, err
	}
	t.Type = store.TokenType(typ)
	if err := json.Unmarshal([]byte(scopes), &t.Scopes); err != nil {
		return store.TokenRecord{}, fmt.Errorf("token %s: decode scopes: %w", t.ID, err)
	}
	if t.Scopes == nil {
		t.Scopes = []string{}
	}
	t.IssuedAt = fromMicros(issued)
	t.ExpiresAt = fromMicros(expires)
	t.Lifetime = time.Duration(lifetime)
	t.ValidUntil = fromNullMicros(until)
	if revoked.Valid {
		r := fromMicros(revoked.Int64)
		t.RevokedAt = &r
	}
	return t, nil
}
