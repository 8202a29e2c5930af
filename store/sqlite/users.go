package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/signet-auth/signet/store"
)

const userColumns = `username, email, org, role, password_hash, created_at, updated_at`

// CreateUser adds u; ErrConflict when the username exists in any org.
func (s *Store) CreateUser(ctx context.Context, u store.User) error {
	switch {
	case u.Username == "":
		return errors.New("sqlite: create user: empty username")
	case u.Org == "":
		return fmt.Errorf("sqlite: create user %q: empty organization", u.Username)
	case !u.Role.Valid():
		return fmt.Errorf("sqlite: create user %q: unknown role %q", u.Username, u.Role)
	}
	return s.write(ctx, "create user "+u.Username, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			u.Username, u.Email, u.Org, string(u.Role), u.PasswordHash, nullMicros(u.CreatedAt), nullMicros(u.UpdatedAt))
		if isUniqueViolation(err) {
			return fmt.Errorf("username taken: %w", store.ErrConflict)
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
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list users of %q: %w", org, err)
	}
	defer rows.Close()
	var users []store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list users of %q: %w", org, err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: list users of %q: %w", org, err)
	}
	return users, nil
}

// SetPassword replaces the user's password hash and, when revokeBefore is
// not zero, revokes their personal tokens issued before it and appends one
// RevokeSubject entry, all in one transaction. ErrNotFound when absent.
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
		if _, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = ?
			WHERE org = ? AND owner = ? AND type = 'personal' AND revoked_at IS NULL AND issued_at < ?`,
			micros(now), u.Org, username, micros(revokeBefore)); err != nil {
			return fmt.Errorf("revoke tokens: %w", err)
		}
		_, err = appendRevocation(ctx, tx, store.Revocation{
			Kind: store.RevokeSubject, Value: username, Org: u.Org, NotBefore: revokeBefore,
			RevokedAt: now, ExpiresAt: revokeExpires, Reason: "password changed",
		})
		return err
	})
}

// DeleteUser removes the user and, in the same transaction, revokes their
// personal tokens and appends one RevokeSubject entry with NotBefore=now.
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
		if _, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = ?
			WHERE org = ? AND owner = ? AND type = 'personal' AND revoked_at IS NULL`,
			micros(now), u.Org, username); err != nil {
			return fmt.Errorf("revoke tokens: %w", err)
		}
		rev, err = appendRevocation(ctx, tx, store.Revocation{
			Kind: store.RevokeSubject, Value: username, Org: u.Org, NotBefore: now,
			RevokedAt: now, ExpiresAt: revokeExpires, Reason: "user deleted",
		})
		return err
	})
	if err != nil {
		return store.Revocation{}, err
	}
	return rev, nil
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
		role             string
		created, updated sql.NullInt64
	)
	if err := sc.Scan(&u.Username, &u.Email, &u.Org, &role, &u.PasswordHash, &created, &updated); err != nil {
		return store.User{}, err
	}
	u.Role = store.Role(role)
	u.CreatedAt = fromNullMicros(created)
	u.UpdatedAt = fromNullMicros(updated)
	return u, nil
}
