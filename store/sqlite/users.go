package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/signet-auth/signet/store"
)

const userColumns = `id, username, email, org, role, password_hash, source, created_at, updated_at`

// CreateUser adds u; ErrConflict when the username exists in any org. A
// zero CreatedAt is set to the current time and a zero UpdatedAt to
// CreatedAt.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	if err := u.Validate(); err != nil {
		return fmt.Errorf("sqlite: create user: %w", err)
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
			return fmt.Errorf("sqlite: create user: %w", err)
		}
		u.ID = id
	}
	return s.write(ctx, "create user "+u.Username, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			u.ID, u.Username, u.Email, u.Org, string(u.Role), u.PasswordHash, string(u.Source), nullMicros(u.CreatedAt), nullMicros(u.UpdatedAt))
		if isUniqueViolation(err) {
			return fmt.Errorf("username or user id taken: %w", store.ErrConflict)
		}
		return err
	})
}

// GetUser returns the user; ErrNotFound when absent.
func (s *Store) GetUser(ctx context.Context, username string) (store.User, error) {
	u, err := getUser(ctx, s.r, username)
	if err != nil {
		return store.User{}, fmt.Errorf("sqlite: get user %s: %w", username, err)
	}
	return u, nil
}

// ListUsers lists the users of org ("" = every org), by username.
func (s *Store) ListUsers(ctx context.Context, org string) ([]store.User, error) {
	q := `SELECT ` + userColumns + ` FROM users`
	var args []any
	if org != "" {
		q += ` WHERE org = ?`
		args = append(args, org)
	}
	q += ` ORDER BY username`
	users, err := queryAll(ctx, s.r, scanUser, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list users of %q: %w", org, err)
	}
	return users, nil
}

// SetPassword replaces the user's password hash and, when revokeBefore is
// not zero, revokes their personal tokens issued before it and appends one
// RevokeSubject entry, all in one transaction. The entry expires at
// revokeExpires, or later when a token it revokes expires later.
// ErrNotFound when absent.
func (s *Store) SetPassword(ctx context.Context, username, hash string, now, revokeBefore, revokeExpires time.Time) error {
	switch {
	case hash == "":
		return fmt.Errorf("sqlite: set password of %s: empty password hash", username)
	case now.IsZero():
		return fmt.Errorf("sqlite: set password of %s: zero time", username)
	case !revokeBefore.IsZero() && !revokeExpires.After(now):
		return fmt.Errorf("sqlite: set password of %s: revocation entry must expire after now", username)
	}
	return s.write(ctx, "set password of "+username, func(tx *sql.Tx) error {
		u, err := getUser(ctx, tx, username)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ?, updated_at = ? WHERE username = ?`,
			hash, micros(now), username); err != nil {
			return fmt.Errorf("update user: %w", err)
		}
		if revokeBefore.IsZero() {
			return nil
		}
		lastExpiry, err := revokeTokens(ctx, tx, u, now, revokeBefore)
		if err != nil {
			return err
		}
		_, err = appendRevocation(ctx, tx, store.Revocation{
			Kind: store.RevokeSubject, Value: username, Org: u.Org, NotBefore: revokeBefore,
			RevokedAt: now, ExpiresAt: laterOf(revokeExpires, lastExpiry), Reason: "password changed",
		})
		return err
	})
}

// RehashPassword replaces the user's password hash with newHash while it
// is still oldHash, leaving updated_at alone, and reports whether it did.
func (s *Store) RehashPassword(ctx context.Context, username, oldHash, newHash string) (bool, error) {
	if oldHash == "" || newHash == "" {
		return false, fmt.Errorf("sqlite: rehash password of %s: empty password hash", username)
	}
	var n int64
	err := s.write(ctx, "rehash password of "+username, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET password_hash = ? WHERE username = ? AND password_hash = ?`,
			newHash, username, oldHash)
		if err != nil {
			return fmt.Errorf("update user: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return false, err
	}
	return n == 1, nil
}

// DeleteUser removes the user and, in the same transaction, revokes their
// personal tokens and appends one RevokeSubject entry with NotBefore=now,
// expiring at revokeExpires or later when a token it revokes expires later.
// Administrative tokens the user created stay valid. ErrNotFound when
// absent.
func (s *Store) DeleteUser(ctx context.Context, username string, now, revokeExpires time.Time) (store.Revocation, error) {
	switch {
	case now.IsZero():
		return store.Revocation{}, fmt.Errorf("sqlite: delete user %s: zero time", username)
	case !revokeExpires.After(now):
		return store.Revocation{}, fmt.Errorf("sqlite: delete user %s: revocation entry must expire after now", username)
	}
	var rev store.Revocation
	err := s.write(ctx, "delete user "+username, func(tx *sql.Tx) error {
		u, err := getUser(ctx, tx, username)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM users WHERE username = ?`, username); err != nil {
			return fmt.Errorf("delete user: %w", err)
		}
		lastExpiry, err := revokeTokens(ctx, tx, u, now, time.Time{})
		if err != nil {
			return err
		}
		rev, err = appendRevocation(ctx, tx, store.Revocation{
			Kind: store.RevokeSubject, Value: username, Org: u.Org, NotBefore: now,
			RevokedAt: now, ExpiresAt: laterOf(revokeExpires, lastExpiry), Reason: "user removed",
		})
		return err
	})
	if err != nil {
		return store.Revocation{}, err
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
		return fmt.Errorf("sqlite: update user: %w", err)
	case now.IsZero():
		return fmt.Errorf("sqlite: update user %s: zero time", u.Username)
	case !revokeBefore.IsZero() && !revokeExpires.After(now):
		return fmt.Errorf("sqlite: update user %s: revocation entry must expire after now", u.Username)
	}
	return s.write(ctx, "update user "+u.Username, func(tx *sql.Tx) error {
		cur, err := getUser(ctx, tx, u.Username)
		if err != nil {
			return err
		}
		if cur.ID != u.ID {
			return store.ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, `UPDATE users SET email = ?, role = ?, updated_at = ? WHERE username = ? AND id = ?`,
			u.Email, string(u.Role), micros(now), u.Username, u.ID); err != nil {
			return fmt.Errorf("update user: %w", err)
		}
		if revokeBefore.IsZero() {
			return nil
		}
		lastExpiry, err := revokeTokens(ctx, tx, cur, now, revokeBefore)
		if err != nil {
			return err
		}
		_, err = appendRevocation(ctx, tx, store.Revocation{
			Kind: store.RevokeSubject, Value: u.Username, Org: cur.Org, NotBefore: revokeBefore,
			RevokedAt: now, ExpiresAt: laterOf(revokeExpires, lastExpiry), Reason: "role changed",
		})
		return err
	})
}

// ownedBy selects a user's personal tokens (arguments: the user's id, then
// username): theirs by id, and those of their username that belong to no
// user id (recorded before ids existed, for an earlier holder of the name,
// who was removed). Revoking the latter too is the safe side.
const ownedBy = `(owner_id = ? OR (owner_id = '' AND owner = ?))`

// revokeTokens marks revoked, at now, the personal tokens of u issued
// before before (every one when before is zero) that are not revoked yet,
// ends the grace periods of those that are in one,
// and returns the latest expiry among all the tokens the cut-off covers,
// already revoked ones included (zero when none). A subject entry must not
// expire before them: after tokens.max_ttl is lowered, a token issued
// earlier can outlive the caller's revokeExpires, and a verifier would
// accept it again once the entry left the list. The tokens already revoked
// count too, so that the newest cut-off alone protects every token issued
// before it, whatever became of the entries that revoked them first.
func revokeTokens(ctx context.Context, tx *sql.Tx, u store.User, now, before time.Time) (time.Time, error) {
	cover := `org = ? AND ` + ownedBy + ` AND type = 'personal'`
	args := []any{u.Org, u.ID, u.Username}
	if !before.IsZero() {
		cover += ` AND issued_at < ?`
		args = append(args, micros(before))
	}
	var last sql.NullInt64
	if err := tx.QueryRowContext(ctx, `SELECT MAX(expires_at) FROM tokens WHERE `+cover, args...).Scan(&last); err != nil {
		return time.Time{}, fmt.Errorf("revoke tokens: latest expiry: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE revoked_at IS NULL AND `+cover,
		append([]any{micros(now)}, args...)...); err != nil {
		return time.Time{}, fmt.Errorf("revoke tokens: %w", err)
	}
	// The cut-off wins over a grace period: such a token ends now.
	if _, err := tx.ExecContext(ctx, `UPDATE tokens SET valid_until = ? WHERE valid_until > ? AND `+cover,
		append([]any{micros(now), micros(now)}, args...)...); err != nil {
		return time.Time{}, fmt.Errorf("end grace periods: %w", err)
	}
	if !last.Valid {
		return time.Time{}, nil
	}
	return fromMicros(last.Int64), nil
}

// laterOf returns the later of a and b.
func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func getUser(ctx context.Context, q queryer, username string) (store.User, error) {
	u, err := scanUser(q.QueryRowContext(ctx, `SELECT `+userColumns+` FROM users WHERE username = ?`, username))
	if errors.Is(err, sql.ErrNoRows) {
		return store.User{}, store.ErrNotFound
	}
	return u, err
}

// scanner is what *sql.Row and *sql.Rows share.
type scanner interface {
	Scan(dest ...any) error
}

func scanUser(sc scanner) (store.User, error) {
	var (
		u                store.User
		role, source     string
		created, updated sql.NullInt64
	)
	if err := sc.Scan(&u.ID, &u.Username, &u.Email, &u.Org, &role, &u.PasswordHash, &source, &created, &updated); err != nil {
		return store.User{}, err
	}
	u.Role = store.Role(role)
	u.Source = store.Source(source)
	u.CreatedAt = fromNullMicros(created)
	u.UpdatedAt = fromNullMicros(updated)
	return u, nil
}
