package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/signet-auth/signet/store"
)

const tokenColumns = `id, name, description, type, owner, owner_id, org, subject, scopes, created_by, key_id,
	issued_at, expires_at, lifetime_ns, revoked_at, replaced_by, parent_id, valid_until`

func scanToken(row pgx.Row) (store.TokenRecord, error) {
	var t store.TokenRecord
	var typ string
	var lifetime int64
	var revokedAt, validUntil *time.Time
	if err := row.Scan(&t.ID, &t.Name, &t.Description, &typ, &t.Owner, &t.OwnerID, &t.Org, &t.Subject, &t.Scopes,
		&t.CreatedBy, &t.KeyID, &t.IssuedAt, &t.ExpiresAt, &lifetime, &revokedAt, &t.ReplacedBy, &t.ParentID, &validUntil); err != nil {
		return store.TokenRecord{}, err
	}
	t.Type = store.TokenType(typ)
	t.IssuedAt = t.IssuedAt.UTC()
	t.ExpiresAt = t.ExpiresAt.UTC()
	t.Lifetime = time.Duration(lifetime)
	t.ValidUntil = fromNullTS(validUntil)
	if revokedAt != nil {
		r := revokedAt.UTC()
		t.RevokedAt = &r
	}
	return t, nil
}

// validateToken rejects records that must never be stored: the shared
// rules, then text PostgreSQL cannot hold.
func validateToken(t store.TokenRecord) error {
	if err := t.Validate(); err != nil {
		return err
	}
	fields := []string{"token id", t.ID, "name", t.Name, "description", t.Description, "owner", t.Owner,
		"owner id", t.OwnerID, "org", t.Org, "subject", t.Subject, "created by", t.CreatedBy, "key id", t.KeyID,
		"replaced by", t.ReplacedBy, "parent id", t.ParentID}
	for i, sc := range t.Scopes {
		fields = append(fields, "scope "+strconv.Itoa(i), sc)
	}
	return checkText(fields...)
}

// insertToken checks the live-name rule and inserts t inside tx. An
// advisory lock on (org, owner, name) serializes creators of one name, so
// two concurrent calls cannot both pass the check.
func insertToken(ctx context.Context, tx pgx.Tx, t store.TokenRecord) error {
	if t.Name != "" {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`,
			"signet-token-name\x1f"+t.Org+"\x1f"+t.Owner+"\x1f"+t.OwnerID+"\x1f"+t.Name); err != nil {
			return fmt.Errorf("lock name: %w", err)
		}
		var taken bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tokens
			WHERE org = $1 AND owner = $2 AND owner_id = $5 AND name = $3 AND name <> '' AND revoked_at IS NULL AND expires_at > $4)`,
			t.Org, t.Owner, t.Name, ts(t.IssuedAt), t.OwnerID).Scan(&taken); err != nil {
			return fmt.Errorf("check name: %w", err)
		}
		if taken {
			return fmt.Errorf("%w: a live token named %q exists", store.ErrConflict, t.Name)
		}
	}
	scopes := t.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	var revokedAt *time.Time
	if t.RevokedAt != nil {
		revokedAt = nullTS(*t.RevokedAt)
	}
	_, err := tx.Exec(ctx, `INSERT INTO tokens (`+tokenColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
		t.ID, t.Name, t.Description, string(t.Type), t.Owner, t.OwnerID, t.Org, t.Subject, scopes, t.CreatedBy, t.KeyID,
		ts(t.IssuedAt), ts(t.ExpiresAt), int64(t.Lifetime), revokedAt, t.ReplacedBy, t.ParentID, nullTS(t.ValidUntil))
	if err != nil {
		return fmt.Errorf("insert: %w", mapErr(err))
	}
	return nil
}

// CreateToken records a newly signed token. store.ErrConflict on a
// duplicate ID, or on a duplicate non-empty Name among the live (unrevoked,
// unexpired at IssuedAt) tokens of the same org and owner.
func (s *Store) CreateToken(ctx context.Context, t store.TokenRecord) error {
	if err := validateToken(t); err != nil {
		return fmt.Errorf("postgres: create token: %w", err)
	}
	if err := s.inTx(ctx, func(tx pgx.Tx) error { return insertToken(ctx, tx, t) }); err != nil {
		return fmt.Errorf("postgres: create token %s: %w", t.ID, err)
	}
	return nil
}

// GetToken returns one token record; store.ErrNotFound when absent.
func (s *Store) GetToken(ctx context.Context, id string) (store.TokenRecord, error) {
	if !storable(id) {
		return store.TokenRecord{}, fmt.Errorf("postgres: get token: %w", store.ErrNotFound)
	}
	t, err := scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.TokenRecord{}, fmt.Errorf("postgres: get token %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return store.TokenRecord{}, fmt.Errorf("postgres: get token %s: %w", id, err)
	}
	return t, nil
}

// ListTokens returns the tokens matching f, newest (by IssuedAt) first.
func (s *Store) ListTokens(ctx context.Context, f store.TokenFilter) ([]store.TokenRecord, error) {
	if f.Limit < 0 {
		return nil, fmt.Errorf("postgres: list tokens: negative limit %d", f.Limit)
	}
	if !storable(f.Org, f.Owner, f.OwnerID, string(f.Type)) {
		return nil, nil
	}
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.Org != "" {
		add("org = ?", f.Org)
	}
	if f.Owner != "" {
		add("owner = ?", f.Owner)
	}
	if f.OwnerID != "" {
		add("owner_id = ?", f.OwnerID)
	}
	if f.Type != "" {
		add("type = ?", string(f.Type))
	}
	switch {
	case f.IncludeRevoked:
	case f.Now.IsZero():
		where = append(where, "revoked_at IS NULL")
	default: // a token in its grace period is still valid
		add("(revoked_at IS NULL OR valid_until > ?)", ts(f.Now))
	}
	if !f.IncludeExpired && !f.Now.IsZero() {
		add("expires_at > ?", ts(f.Now))
	}
	if !f.ExpiresBy.IsZero() {
		add("expires_at <= ?", ts(f.ExpiresBy))
	}
	q := `SELECT ` + tokenColumns + ` FROM tokens`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY issued_at DESC, row_seq DESC`
	if f.Limit > 0 {
		q += ` LIMIT ` + strconv.Itoa(f.Limit)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list tokens: %w", err)
	}
	tokens, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.TokenRecord, error) { return scanToken(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list tokens: %w", err)
	}
	return tokens, nil
}

// lockToken reads the token row FOR UPDATE, so concurrent revokers and
// replacers of one token run one after the other.
func lockToken(ctx context.Context, tx pgx.Tx, id string) (store.TokenRecord, error) {
	t, err := scanToken(tx.QueryRow(ctx, `SELECT `+tokenColumns+` FROM tokens WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.TokenRecord{}, store.ErrNotFound
	}
	if err != nil {
		return store.TokenRecord{}, fmt.Errorf("lock token: %w", err)
	}
	return t, nil
}

// revokeLocked revokes t, whose row tx holds locked: at now, or, with a
// validUntil after now, from then on (a grace period, at most until t
// expires). When t is already revoked it appends nothing and returns the
// entry that revoked it: its own RevokeToken entry, else the RevokeSubject
// cut-off that covers it (DeleteUser, SetPassword), else, when that entry
// was pruned, an entry with Seq 0 describing the revocation from the token
// record. A token in its grace period is the exception: it is revoked at
// once (its valid_until becomes now) with a second entry, which
// revocation.Index folds with the first to "from now on".
func revokeLocked(ctx context.Context, tx pgx.Tx, t store.TokenRecord, now, validUntil time.Time, reason string) (store.Revocation, error) {
	if t.RevokedAt != nil && !t.Revoked(now) {
		if _, err := tx.Exec(ctx, `UPDATE tokens SET valid_until = $2 WHERE id = $1`, t.ID, ts(now)); err != nil {
			return store.Revocation{}, fmt.Errorf("end grace period: %w", err)
		}
		return appendRevocation(ctx, tx, store.Revocation{
			Kind: store.RevokeToken, Value: t.ID, Org: t.Org,
			RevokedAt: now, ExpiresAt: t.ExpiresAt, Reason: reason,
		})
	}
	if t.RevokedAt != nil {
		rev, err := tokenRevocation(ctx, tx, t.ID)
		// An entry still waiting for its time while the record says
		// revoked was overtaken by a subject cut-off, returned below.
		if (err == nil && !rev.ValidUntil.After(now)) || (err != nil && !errors.Is(err, store.ErrNotFound)) {
			return rev, err
		}
		rev, err = subjectRevocation(ctx, tx, t)
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
	if _, err := tx.Exec(ctx, `UPDATE tokens SET revoked_at = $2, valid_until = $3 WHERE id = $1`,
		t.ID, ts(now), nullTS(validUntil)); err != nil {
		return store.Revocation{}, fmt.Errorf("mark revoked: %w", err)
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

// RevokeToken marks the token revoked and appends a RevokeToken entry,
// atomically. Revoking an already revoked token returns its existing entry
// (idempotent). store.ErrNotFound when the token is absent.
func (s *Store) RevokeToken(ctx context.Context, id string, now time.Time, reason string) (store.Revocation, error) {
	if now.IsZero() {
		return store.Revocation{}, fmt.Errorf("postgres: revoke token %s: zero time", id)
	}
	if err := checkText("reason", reason); err != nil {
		return store.Revocation{}, fmt.Errorf("postgres: revoke token: %w", err)
	}
	if !storable(id) {
		return store.Revocation{}, fmt.Errorf("postgres: revoke token: %w", store.ErrNotFound)
	}
	var rev store.Revocation
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		t, err := lockToken(ctx, tx, id)
		if err != nil {
			return err
		}
		rev, err = revokeLocked(ctx, tx, t, now, time.Time{}, reason)
		return err
	})
	if err != nil {
		return store.Revocation{}, fmt.Errorf("postgres: revoke token %s: %w", id, err)
	}
	return rev, nil
}

// ReplaceToken is regenerate: in one transaction it checks that oldID has
// not been replaced already (else store.ErrConflict), revokes it if not yet
// revoked (at once, or from validUntil on: a grace period), sets its
// ReplacedBy to next.ID and inserts next. It returns the
// old token's RevokeToken entry. The old row is locked FOR UPDATE, so of
// two concurrent calls for one token exactly one succeeds.
func (s *Store) ReplaceToken(ctx context.Context, oldID string, next store.TokenRecord, now, validUntil time.Time) (store.Revocation, error) {
	if err := validateToken(next); err != nil {
		return store.Revocation{}, fmt.Errorf("postgres: replace token %s: %w", oldID, err)
	}
	if now.IsZero() {
		return store.Revocation{}, fmt.Errorf("postgres: replace token %s: zero time", oldID)
	}
	if next.ID == oldID {
		return store.Revocation{}, fmt.Errorf("postgres: replace token %s: %w: new id equals old id", oldID, store.ErrConflict)
	}
	if !storable(oldID) {
		return store.Revocation{}, fmt.Errorf("postgres: replace token: %w", store.ErrNotFound)
	}
	var rev store.Revocation
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		old, err := lockToken(ctx, tx, oldID)
		if err != nil {
			return err
		}
		if old.ReplacedBy != "" {
			return fmt.Errorf("%w: already replaced", store.ErrConflict)
		}
		if rev, err = revokeLocked(ctx, tx, old, now, validUntil, "regenerated"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE tokens SET replaced_by = $2 WHERE id = $1`, oldID, next.ID); err != nil {
			return fmt.Errorf("set replaced_by: %w", err)
		}
		return insertToken(ctx, tx, next)
	})
	if err != nil {
		return store.Revocation{}, fmt.Errorf("postgres: replace token %s: %w", oldID, err)
	}
	return rev, nil
}
