package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/signet-auth/signet/store"
)

const userColumns = `id, username, email, org, role, password_hash, created_at, updated_at`

func scanUser(row pgx.Row) (store.User, error) {
	var u store.User
	var role string
	if err := row.Scan(&u.ID, &u.Username, &u.Email, &u.Org, &role, &u.PasswordHash, &u.CreatedAt, &u.UpdatedAt); err != nil {
		return store.User{}, err
	}
	u.Role = store.Role(role)
	u.CreatedAt = u.CreatedAt.UTC()
	u.UpdatedAt = u.UpdatedAt.UTC()
	return u, nil
}

// CreateUser adds u; store.ErrConflict when the username exists. A zero
// CreatedAt is set to the current time and a zero UpdatedAt to CreatedAt.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	if err := u.Validate(); err != nil {
		return fmt.Errorf("postgres: create user: %w", err)
	}
	if err := checkText("username", u.Username, "email", u.Email, "org", u.Org, "password hash", u.PasswordHash); err != nil {
		return fmt.Errorf("postgres: create user: %w", err)
	}
	if u.CreatedAt.IsZero() {
		u.CreatedAt = s.now()
	}
	if u.UpdatedAt.IsZero() {
		u.UpdatedAt = u.CreatedAt
	}
	if u.ID == "" {
		id, err := store.NewUserID()
		if err != nil {
			return fmt.Errorf("postgres: create user: %w", err)
		}
		u.ID = id
	}
	if err := checkText("user id", u.ID); err != nil {
		return fmt.Errorf("postgres: create user: %w", err)
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		u.ID, u.Username, u.Email, u.Org, string(u.Role), u.PasswordHash, ts(u.CreatedAt), ts(u.UpdatedAt))
	if err != nil {
		return fmt.Errorf("postgres: create user %s: %w", u.Username, mapErr(err))
	}
	return nil
}

// GetUser returns the user; store.ErrNotFound when absent.
func (s *Store) GetUser(ctx context.Context, username string) (store.User, error) {
	if !storable(username) {
		return store.User{}, fmt.Errorf("postgres: get user: %w", store.ErrNotFound)
	}
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE username = $1`, username))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.User{}, fmt.Errorf("postgres: get user %s: %w", username, store.ErrNotFound)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("postgres: get user %s: %w", username, err)
	}
	return u, nil
}

// ListUsers lists the users of org ("" = every org), ordered by username.
func (s *Store) ListUsers(ctx context.Context, org string) ([]store.User, error) {
	if !storable(org) {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM users
		WHERE $1 = '' OR org = $1 ORDER BY username`, org)
	if err != nil {
		return nil, fmt.Errorf("postgres: list users: %w", err)
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.User, error) { return scanUser(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list users: %w", err)
	}
	return users, nil
}

// RehashPassword replaces the user's password hash with newHash while it
// is still oldHash, leaving updated_at alone, and reports whether it did.
func (s *Store) RehashPassword(ctx context.Context, username, oldHash, newHash string) (bool, error) {
	if oldHash == "" || newHash == "" {
		return false, fmt.Errorf("postgres: rehash password of %s: empty password hash", username)
	}
	if err := checkText("password hash", newHash); err != nil {
		return false, fmt.Errorf("postgres: rehash password: %w", err)
	}
	if !storable(username, oldHash) {
		return false, nil
	}
	tag, err := s.pool.Exec(ctx, `UPDATE users SET password_hash = $3 WHERE username = $1 AND password_hash = $2`,
		username, oldHash, newHash)
	if err != nil {
		return false, fmt.Errorf("postgres: rehash password of %s: %w", username, mapErr(err))
	}
	return tag.RowsAffected() == 1, nil
}

// SetPassword replaces the user's password hash (store.ErrNotFound when the
// user is absent). When revokeBefore is not zero it also revokes, in the
// same transaction, the user's personal tokens issued before it and appends
// one RevokeSubject entry expiring at revokeExpires, or later when a token
// it revokes expires later.
func (s *Store) SetPassword(ctx context.Context, username, hash string, now, revokeBefore, revokeExpires time.Time) error {
	switch {
	case hash == "":
		return fmt.Errorf("postgres: set password of %s: empty password hash", username)
	case now.IsZero():
		return fmt.Errorf("postgres: set password of %s: zero time", username)
	case !revokeBefore.IsZero() && !revokeExpires.After(now):
		return fmt.Errorf("postgres: set password of %s: revocation entry must expire after now", username)
	}
	if err := checkText("password hash", hash); err != nil {
		return fmt.Errorf("postgres: set password: %w", err)
	}
	if !storable(username) {
		return fmt.Errorf("postgres: set password: %w", store.ErrNotFound)
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var org, id string
		err := tx.QueryRow(ctx, `UPDATE users SET password_hash = $2, updated_at = $3
			WHERE username = $1 RETURNING org, id`, username, hash, ts(now)).Scan(&org, &id)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("update user: %w", err)
		}
		if revokeBefore.IsZero() {
			return nil
		}
		lastExpiry, err := revokeTokens(ctx, tx, `UPDATE tokens SET revoked_at = $3
			WHERE `+ownedBy+` AND org = $2 AND type = 'personal' AND revoked_at IS NULL AND issued_at < $4
			RETURNING expires_at`, username, org, ts(now), ts(revokeBefore), id)
		if err != nil {
			return err
		}
		_, err = appendRevocation(ctx, tx, store.Revocation{
			Kind:      store.RevokeSubject,
			Value:     username,
			Org:       org,
			NotBefore: revokeBefore,
			RevokedAt: now,
			ExpiresAt: laterOf(revokeExpires, lastExpiry),
			Reason:    "password changed",
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: set password of %s: %w", username, err)
	}
	return nil
}

// DeleteUser removes the user and, in the same transaction, marks their
// personal tokens revoked and appends one RevokeSubject entry with
// NotBefore=now expiring at revokeExpires (or later when a token it revokes
// expires later), which it returns.
// store.ErrNotFound when the user is absent.
func (s *Store) DeleteUser(ctx context.Context, username string, now, revokeExpires time.Time) (store.Revocation, error) {
	switch {
	case now.IsZero():
		return store.Revocation{}, fmt.Errorf("postgres: delete user %s: zero time", username)
	case !revokeExpires.After(now):
		return store.Revocation{}, fmt.Errorf("postgres: delete user %s: revocation entry must expire after now", username)
	}
	if !storable(username) {
		return store.Revocation{}, fmt.Errorf("postgres: delete user: %w", store.ErrNotFound)
	}
	var rev store.Revocation
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var org, id string
		err := tx.QueryRow(ctx, `DELETE FROM users WHERE username = $1 RETURNING org, id`, username).Scan(&org, &id)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("delete user: %w", err)
		}
		lastExpiry, err := revokeTokens(ctx, tx, `UPDATE tokens SET revoked_at = $3
			WHERE `+ownedBy4+` AND org = $2 AND type = 'personal' AND revoked_at IS NULL
			RETURNING expires_at`, username, org, ts(now), id)
		if err != nil {
			return err
		}
		rev, err = appendRevocation(ctx, tx, store.Revocation{
			Kind:      store.RevokeSubject,
			Value:     username,
			Org:       org,
			NotBefore: now,
			RevokedAt: now,
			ExpiresAt: laterOf(revokeExpires, lastExpiry),
			Reason:    "user removed",
		})
		return err
	})
	if err != nil {
		return store.Revocation{}, fmt.Errorf("postgres: delete user %s: %w", username, err)
	}
	return rev, nil
}

// ownedBy and ownedBy4 select a user's personal tokens: theirs by id ($5
// or $4), and those of their username ($1) that belong to no user id
// (recorded before ids existed, for an earlier holder of the name, who was
// removed). Revoking the latter too is the safe side.
const (
	ownedBy  = `(owner_id = $5 OR (owner_id = '' AND owner = $1))`
	ownedBy4 = `(owner_id = $4 OR (owner_id = '' AND owner = $1))`
)

// revokeTokens runs update, an UPDATE of tokens ... RETURNING expires_at,
// and returns the latest expiry among the tokens it revoked (zero when
// none). A subject entry must not expire before them: after
// tokens.max_ttl is lowered, a token issued earlier can outlive the
// caller's revokeExpires, and a verifier would accept it again once the
// entry left the list.
func revokeTokens(ctx context.Context, tx pgx.Tx, update string, args ...any) (time.Time, error) {
	var last *time.Time
	if err := tx.QueryRow(ctx, `WITH revoked AS (`+update+`) SELECT max(expires_at) FROM revoked`, args...).Scan(&last); err != nil {
		return time.Time{}, fmt.Errorf("revoke tokens: %w", err)
	}
	return fromNullTS(last), nil
}

// laterOf returns the later of a and b.
func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
