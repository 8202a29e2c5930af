package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/signet-auth/signet/store"
)

const noticeColumns = `token_id, threshold_us, channel, recipient, claimant, claimed_until, sent_at,
	attempts, last_error, token_expires_at`

// ClaimNotice inserts the notice claimed by c.Claimant, or takes over a
// notice that is neither sent nor held by a live claim. INSERT ... ON
// CONFLICT DO UPDATE ... WHERE is one atomic step: a concurrent claim waits
// for the other's row and then re-checks the condition against its
// committed state, so of two replicas claiming at once exactly one wins.
func (s *Store) ClaimNotice(ctx context.Context, c store.NoticeClaim) (bool, error) {
	if err := checkClaim(c); err != nil {
		return false, fmt.Errorf("postgres: claim notice: %w", err)
	}
	var won bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO expiry_notices (`+noticeColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, NULL, 1, '', $7)
		ON CONFLICT (token_id, threshold_us, channel, recipient) DO UPDATE SET
			claimant = excluded.claimant,
			claimed_until = excluded.claimed_until,
			attempts = expiry_notices.attempts + 1
		WHERE expiry_notices.sent_at IS NULL
		  AND (expiry_notices.claimed_until IS NULL OR expiry_notices.claimed_until <= $8)`,
			c.TokenID, c.Threshold.Microseconds(), string(c.Channel), c.Recipient, c.Claimant,
			ts(c.LeaseUntil), ts(c.TokenExpiresAt), ts(c.Now))
		won = err == nil && tag.RowsAffected() == 1
		return err
	})
	if err != nil {
		return false, fmt.Errorf("postgres: claim notice for %s: %w", c.TokenID, err)
	}
	return won, nil
}

// checkClaim refuses a claim no notifier makes, and text PostgreSQL
// cannot hold.
func checkClaim(c store.NoticeClaim) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if err := checkText("token id", c.TokenID, "recipient", c.Recipient, "claimant", c.Claimant); err != nil {
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
		return fmt.Errorf("postgres: complete notice: %w", err)
	}
	if err := s.updateHeld(ctx, k, claimant, `sent_at = $6, claimed_until = NULL, last_error = ''`, ts(now)); err != nil {
		return fmt.Errorf("postgres: complete notice for %s: %w", k.TokenID, err)
	}
	return nil
}

// ReleaseNotice gives up claimant's claim on k.
func (s *Store) ReleaseNotice(ctx context.Context, k store.NoticeKey, claimant, reason string) error {
	if err := k.Validate(); err != nil {
		return fmt.Errorf("postgres: release notice: %w", err)
	}
	if err := checkText("reason", reason); err != nil {
		return fmt.Errorf("postgres: release notice: %w", err)
	}
	if err := s.updateHeld(ctx, k, claimant, `claimed_until = NULL, last_error = $6`, reason); err != nil {
		return fmt.Errorf("postgres: release notice for %s: %w", k.TokenID, err)
	}
	return nil
}

// updateHeld applies set ($6 its argument) to k's row when claimant holds
// it and it is not sent; otherwise it tells ErrNotFound (no row) from
// ErrConflict.
func (s *Store) updateHeld(ctx context.Context, k store.NoticeKey, claimant, set string, arg any) error {
	if !storable(k.TokenID, k.Recipient, claimant) {
		return store.ErrNotFound
	}
	return s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE expiry_notices SET `+set+`
			WHERE token_id = $1 AND threshold_us = $2 AND channel = $3 AND recipient = $4
			  AND claimant = $5 AND sent_at IS NULL AND claimed_until IS NOT NULL`,
			k.TokenID, k.Threshold.Microseconds(), string(k.Channel), k.Recipient, claimant, arg)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			return nil
		}
		var one int
		err = tx.QueryRow(ctx, `SELECT 1 FROM expiry_notices
			WHERE token_id = $1 AND threshold_us = $2 AND channel = $3 AND recipient = $4`,
			k.TokenID, k.Threshold.Microseconds(), string(k.Channel), k.Recipient).Scan(&one)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return store.ErrNotFound
		case err != nil:
			return err
		}
		return fmt.Errorf("notice not held by this claimant: %w", store.ErrConflict)
	})
}

// ListNotices returns the notices of tokens expiring after
// tokenExpiresAfter, in key order.
func (s *Store) ListNotices(ctx context.Context, tokenExpiresAfter time.Time) ([]store.Notice, error) {
	q := `SELECT ` + noticeColumns + ` FROM expiry_notices`
	var args []any
	if !tokenExpiresAfter.IsZero() {
		q += ` WHERE token_expires_at > $1`
		args = append(args, ts(tokenExpiresAfter))
	}
	q += ` ORDER BY token_id, threshold_us, channel, recipient`
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: list notices: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Notice, error) {
		var (
			n            store.Notice
			threshold    int64
			channel      string
			claimedUntil *time.Time
			sentAt       *time.Time
			expires      time.Time
		)
		if err := r.Scan(&n.TokenID, &threshold, &channel, &n.Recipient, &n.Claimant, &claimedUntil, &sentAt,
			&n.Attempts, &n.LastError, &expires); err != nil {
			return store.Notice{}, err
		}
		n.Threshold = time.Duration(threshold) * time.Microsecond
		n.Channel = store.NoticeChannel(channel)
		n.ClaimedUntil = fromNullTS(claimedUntil)
		n.SentAt = fromNullTS(sentAt)
		n.TokenExpiresAt = expires.UTC()
		return n, nil
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list notices: %w", err)
	}
	return out, nil
}

// PruneNotices deletes the notices of tokens that expired before cutoff.
func (s *Store) PruneNotices(ctx context.Context, cutoff time.Time) (int, error) {
	var n int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM expiry_notices WHERE token_expires_at < $1`, ts(cutoff))
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: prune notices: %w", err)
	}
	return int(n), nil
}
