package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/signet-auth/signet/store"
)

const userColumns = `id, username, email, org, role, password_hash, source, created_at, updated_at`

func scanUser(row pgx.Row) (store.User, error) {
	var u store.User
	var role, source string
	if err := row.Scan(&u.ID, &u.Username, &u.Email, &u.Org, &role, &u.PasswordHash, &source, &u.CreatedAt, &u.UpdatedAt); err != nil {
		return store.User{}, err
	}
	u.Role = store.Role(role)
	u.Source = store.Source(source)
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
	_, err := s.pool.Exec(ctx, `INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		u.ID, u.Username, u.Email, u.Org, string(u.Role), u.PasswordHash, string(u.Source), ts(u.CreatedAt), ts(u.UpdatedAt))
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
		lastExpiry, err := revokeTokens(ctx, tx, org, id, username, now, revokeBefore)
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
		lastExpiry, err := revokeTokens(ctx, tx, org, id, username, now, time.Time{})
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

// UpdateUser sets the email and role of the user named u.Username whose
// id is u.ID (store.ErrNotFound otherwise) and, when revokeBefore is not
// zero, revokes their personal tokens issued before it in the same
// transaction, as SetPassword does.
func (s *Store) UpdateUser(ctx context.Context, u store.User, now, revokeBefore, revokeExpires time.Time) error {
	switch err := u.Validate(); {
	case err != nil:
		return fmt.Errorf("postgres: update user: %w", err)
	case now.IsZero():
		return fmt.Errorf("postgres: update user %s: zero time", u.Username)
	case !revokeBefore.IsZero() && !revokeExpires.After(now):
		return fmt.Errorf("postgres: update user %s: revocation entry must expire after now", u.Username)
	}
	if err := checkText("email", u.Email); err != nil {
		return fmt.Errorf("postgres: update user: %w", err)
	}
	if !storable(u.Username) || !storable(u.ID) {
		return fmt.Errorf("postgres: update user: %w", store.ErrNotFound)
	}
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var org string
		err := tx.QueryRow(ctx, `UPDATE users SET email = $3, role = $4, updated_at = $5
			WHERE username = $1 AND id = $2 RETURNING org`,
			u.Username, u.ID, u.Email, string(u.Role), ts(now)).Scan(&org)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("update user: %w", err)
		}
		if revokeBefore.IsZero() {
			return nil
		}
		lastExpiry, err := revokeTokens(ctx, tx, org, u.ID, u.Username, now, revokeBefore)
		if err != nil {
			return err
		}
		_, err = appendRevocation(ctx, tx, store.Revocation{
			Kind:      store.RevokeSubject,
			Value:     u.Username,
			Org:       org,
			NotBefore: revokeBefore,
			RevokedAt: now,
			ExpiresAt: laterOf(revokeExpires, lastExpiry),
			Reason:    "role changed",
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: update user %s: %w", u.Username, err)
	}
	return nil
}

// ownedBy selects a user's personal tokens: theirs by id ($1), and those
// of their username ($2) that belong to no user id (recorded before ids
// existed, for an earlier holder of the name, who was removed). Revoking
// the latter too is the safe side.
const ownedBy = `(owner_id = $1 OR (owner_id = '' AND owner = $2))`

// revokeTokens marks revoked, at now, the personal tokens of the user
// (org, id, username) issued before before (every one when before is
// zero) that are not revoked yet, ends the grace periods of those that are
// in one, and returns the latest expiry among all
// the tokens the cut-off covers, already revoked ones included (zero when
// none). A subject entry must not expire before them: after tokens.max_ttl
// is lowered, a token issued earlier can outlive the caller's
// revokeExpires, and a verifier would accept it again once the entry left
// the list. The tokens already revoked count too, so that the newest
// cut-off alone protects every token issued before it, whatever became of
// the entries that revoked them first.
func revokeTokens(ctx context.Context, tx pgx.Tx, org, id, username string, now, before time.Time) (time.Time, error) {
	args := []any{id, username, org}
	if !before.IsZero() {
		args = append(args, ts(before))
	}
	cover := coveredTokens(!before.IsZero())
	var last *time.Time
	if err := tx.QueryRow(ctx, `SELECT max(expires_at) FROM tokens WHERE `+cover, args...).Scan(&last); err != nil {
		return time.Time{}, fmt.Errorf("revoke tokens: latest expiry: %w", err)
	}
	nowArg := "$" + strconv.Itoa(len(args)+1)
	if _, err := tx.Exec(ctx, `UPDATE tokens SET revoked_at = `+nowArg+`::timestamptz WHERE revoked_at IS NULL AND `+cover,
		append(args, ts(now))...); err != nil {
		return time.Time{}, fmt.Errorf("revoke tokens: %w", err)
	}
	// The cut-off wins over a grace period: such a token ends now.
	if _, err := tx.Exec(ctx, `UPDATE tokens SET valid_until = `+nowArg+`::timestamptz WHERE valid_until > `+nowArg+`::timestamptz AND `+cover,
		append(args, ts(now))...); err != nil {
		return time.Time{}, fmt.Errorf("end grace periods: %w", err)
	}
	return fromNullTS(last), nil
}

// coveredTokens is the condition selecting the personal tokens a cut-off
// covers: $1 the user's id, $2 the username, $3 the org and, with before,
// $4 the cut-off (issued before it).
func coveredTokens(before bool) string {
	cover := ownedBy + ` AND org = $3 AND type = 'personal'`
	if before {
		cover += ` AND issued_at < $4`
	}
	return cover
}

// laterOf returns the later of a and b.
func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
