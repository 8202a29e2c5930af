package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/signet-auth/signet/store"
)

const noticeColumns = `token_id, threshold_us, channel, recipient, claimant, claimed_until, sent_at,
	attempts, last_error, token_expires_at`

// ClaimNotice inserts the notice claimed by c.Claimant, or takes over a
// notice that is neither sent nor held by a live claim. The writer's
// BEGIN IMMEDIATE transaction makes the check and the write one step, so
// of two processes claiming at once exactly one sees a row change.
func (s *Store) ClaimNotice(ctx context.Context, c store.NoticeClaim) (bool, error) {
	if err := checkClaim(c); err != nil {
		return false, fmt.Errorf("sqlite: claim notice: %w", err)
	}
	var won bool
	err := s.write(ctx, "claim notice for "+c.TokenID, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO expiry_notices (`+noticeColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, NULL, 1, '', ?)
			ON CONFLICT (token_id, threshold_us, channel, recipient) DO UPDATE SET
				claimant = excluded.claimant,
				claimed_until = excluded.claimed_until,
				attempts = expiry_notices.attempts + 1
			WHERE expiry_notices.sent_at IS NULL
			  AND (expiry_notices.claimed_until IS NULL OR expiry_notices.claimed_until <= ?)`,
			c.TokenID, c.Threshold.Microseconds(), string(c.Channel), c.Recipient, c.Claimant,
			micros(c.LeaseUntil), micros(c.TokenExpiresAt), micros(c.Now))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		won = n == 1
		return nil
	})
	if err != nil {
		return false, err
	}
	return won, nil
}

// checkClaim refuses a claim no notifier makes.
func checkClaim(c store.NoticeClaim) error {
	if err := c.Validate(); err != nil {
		return err
	}
	switch {
	case c.Claimant == "":
		return errors.New("empty claimant")
	case c.Now.IsZero() || !c.LeaseUntil.After(c.Now):
		return fmt.Errorf("lease until %s is not after now %s", c.LeaseUntil.UTC().Format(time.RFC3339Nano), c.Now.UTC().Format(time.RFC3339Nano))
	case c.TokenExpiresAt.IsZero():
		return errors.New("zero token expiry")
	}
	return nil
}

// CompleteNotice marks k delivered, if claimant still holds it.
func (s *Store) CompleteNotice(ctx context.Context, k store.NoticeKey, claimant string, now time.Time) error {
	if err := k.Validate(); err != nil {
		return fmt.Errorf("sqlite: complete notice: %w", err)
	}
	return s.write(ctx, "complete notice for "+k.TokenID, func(tx *sql.Tx) error {
		return updateHeld(ctx, tx, k, claimant, `sent_at = ?, claimed_until = NULL, last_error = ''`, micros(now))
	})
}

// ReleaseNotice gives up claimant's claim on k.
func (s *Store) ReleaseNotice(ctx context.Context, k store.NoticeKey, claimant, reason string) error {
	if err := k.Validate(); err != nil {
		return fmt.Errorf("sqlite: release notice: %w", err)
	}
	return s.write(ctx, "release notice for "+k.TokenID, func(tx *sql.Tx) error {
		return updateHeld(ctx, tx, k, claimant, `claimed_until = NULL, last_error = ?`, reason)
	})
}

// updateHeld applies set to k's row when claimant holds it and it is not
// sent; otherwise it tells ErrNotFound (no row) from ErrConflict.
func updateHeld(ctx context.Context, tx *sql.Tx, k store.NoticeKey, claimant, set string, arg any) error {
	res, err := tx.ExecContext(ctx, `UPDATE expiry_notices SET `+set+`
		WHERE token_id = ? AND threshold_us = ? AND channel = ? AND recipient = ?
		  AND claimant = ? AND sent_at IS NULL AND claimed_until IS NOT NULL`,
		arg, k.TokenID, k.Threshold.Microseconds(), string(k.Channel), k.Recipient, claimant)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err
	}
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM expiry_notices
		WHERE token_id = ? AND threshold_us = ? AND channel = ? AND recipient = ?`,
		k.TokenID, k.Threshold.Microseconds(), string(k.Channel), k.Recipient).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrNotFound
	case err != nil:
		return err
	}
	return fmt.Errorf("notice not held by this claimant: %w", store.ErrConflict)
}

// ListNotices returns the notices of tokens expiring after
// tokenExpiresAfter, in key order.
func (s *Store) ListNotices(ctx context.Context, tokenExpiresAfter time.Time) ([]store.Notice, error) {
	q := `SELECT ` + noticeColumns + ` FROM expiry_notices`
	var args []any
	if !tokenExpiresAfter.IsZero() {
		q += ` WHERE token_expires_at > ?`
		args = append(args, micros(tokenExpiresAfter))
	}
	q += ` ORDER BY token_id, threshold_us, channel, recipient`
	out, err := queryAll(ctx, s.r, scanNotice, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list notices: %w", err)
	}
	return out, nil
}

// PruneNotices deletes the notices of tokens that expired before cutoff.
func (s *Store) PruneNotices(ctx context.Context, cutoff time.Time) (int, error) {
	var n int64
	err := s.write(ctx, "prune notices", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM expiry_notices WHERE token_expires_at < ?`, micros(cutoff))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

func scanNotice(sc scanner) (store.Notice, error) {
	var (
		n                store.Notice
		threshold        int64
		channel          string
		claimedUntil     sql.NullInt64
		sentAt           sql.NullInt64
		attempts         int64
		tokenExpiresAtUs int64
	)
	if err := sc.Scan(&n.TokenID, &threshold, &channel, &n.Recipient, &n.Claimant, &claimedUntil, &sentAt,
		&attempts, &n.LastError, &tokenExpiresAtUs); err != nil {
		return store.Notice{}, err
	}
	n.Threshold = time.Duration(threshold) * time.Microsecond
	n.Channel = store.NoticeChannel(channel)
	n.ClaimedUntil = fromNullMicros(claimedUntil)
	n.SentAt = fromNullMicros(sentAt)
	n.Attempts = int(attempts)
	n.TokenExpiresAt = fromMicros(tokenExpiresAtUs)
	return n, nil
}
