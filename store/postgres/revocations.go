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

const revocationColumns = `seq, tag, kind, value, org, not_before, revoked_at, expires_at, reason, valid_until`

func scanRevocation(row pgx.Row) (store.Revocation, error) {
	var r store.Revocation
	var kind string
	var notBefore, validUntil *time.Time
	if err := row.Scan(&r.Seq, &r.Tag, &kind, &r.Value, &r.Org, &notBefore, &r.RevokedAt, &r.ExpiresAt, &r.Reason, &validUntil); err != nil {
		return store.Revocation{}, err
	}
	r.Kind = store.RevocationKind(kind)
	r.NotBefore = fromNullTS(notBefore)
	r.ValidUntil = fromNullTS(validUntil)
	r.RevokedAt = r.RevokedAt.UTC()
	r.ExpiresAt = r.ExpiresAt.UTC()
	return r, nil
}

// appendRevocation gives r the next Seq and inserts it inside tx. The
// UPDATE locks the counter row until tx ends, so appenders commit in Seq
// order: a reader that has seen version V never later finds a new entry
// with Seq <= V. NOTIFY is queued now and delivered at commit.
func appendRevocation(ctx context.Context, tx pgx.Tx, r store.Revocation) (store.Revocation, error) {
	if err := checkText("revocation value", r.Value, "org", r.Org, "reason", r.Reason); err != nil {
		return store.Revocation{}, err
	}
	tag, err := store.NewTag()
	if err != nil {
		return store.Revocation{}, err
	}
	r.Tag = tag
	if err := tx.QueryRow(ctx, `UPDATE revocation_state SET latest = latest + 1, head = $1 RETURNING latest`, tag).Scan(&r.Seq); err != nil {
		return store.Revocation{}, fmt.Errorf("next revocation seq: %w", err)
	}
	r.RevokedAt = ts(r.RevokedAt)
	r.ExpiresAt = ts(r.ExpiresAt)
	r.NotBefore = fromNullTS(nullTS(r.NotBefore))
	r.ValidUntil = fromNullTS(nullTS(r.ValidUntil))
	if _, err := tx.Exec(ctx, `INSERT INTO revocations (`+revocationColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		r.Seq, r.Tag, string(r.Kind), r.Value, r.Org, nullTS(r.NotBefore), r.RevokedAt, r.ExpiresAt, r.Reason, nullTS(r.ValidUntil)); err != nil {
		return store.Revocation{}, fmt.Errorf("insert revocation: %w", mapErr(err))
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, strconv.FormatInt(r.Seq, 10)); err != nil {
		return store.Revocation{}, fmt.Errorf("notify: %w", err)
	}
	return r, nil
}

// latestEntry returns the newest entry of kind for value; store.ErrNotFound
// when there is none.
func latestEntry(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, kind store.RevocationKind, value string) (store.Revocation, error) {
	r, err := scanRevocation(q.QueryRow(ctx, `SELECT `+revocationColumns+` FROM revocations
		WHERE kind = $1 AND value = $2 ORDER BY seq DESC LIMIT 1`, string(kind), value))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Revocation{}, store.ErrNotFound
	}
	if err != nil {
		return store.Revocation{}, fmt.Errorf("read %s revocation: %w", kind, err)
	}
	return r, nil
}

func tokenRevocation(ctx context.Context, tx pgx.Tx, id string) (store.Revocation, error) {
	return latestEntry(ctx, tx, store.RevokeToken, id)
}

// subjectRevocation returns the newest RevokeSubject entry whose cut-off
// covers t (same org and subject, issued before NotBefore).
func subjectRevocation(ctx context.Context, tx pgx.Tx, t store.TokenRecord) (store.Revocation, error) {
	r, err := scanRevocation(tx.QueryRow(ctx, `SELECT `+revocationColumns+` FROM revocations
		WHERE kind = 'subject' AND org = $1 AND value = $2 AND not_before > $3
		ORDER BY seq DESC LIMIT 1`, t.Org, t.Subject, ts(t.IssuedAt)))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Revocation{}, store.ErrNotFound
	}
	if err != nil {
		return store.Revocation{}, fmt.Errorf("read subject revocation: %w", err)
	}
	return r, nil
}

// RevokeKey appends a RevokeKey entry for kid. When an entry for kid
// exists it is returned unchanged and nothing is appended (idempotent).
func (s *Store) RevokeKey(ctx context.Context, kid string, now, expires time.Time) (store.Revocation, error) {
	if kid == "" {
		return store.Revocation{}, errors.New("postgres: revoke key: empty key id")
	}
	if now.IsZero() {
		return store.Revocation{}, fmt.Errorf("postgres: revoke key %s: zero time", kid)
	}
	if !expires.After(now) {
		return store.Revocation{}, fmt.Errorf("postgres: revoke key %s: entry must expire after now", kid)
	}
	if err := checkText("key id", kid); err != nil {
		return store.Revocation{}, fmt.Errorf("postgres: revoke key: %w", err)
	}
	var rev store.Revocation
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// Taking the counter lock first makes check-then-append atomic
		// against every other appender, including another RevokeKey.
		if _, err := tx.Exec(ctx, `SELECT latest FROM revocation_state FOR UPDATE`); err != nil {
			return fmt.Errorf("lock revocation state: %w", err)
		}
		existing, err := latestEntry(ctx, tx, store.RevokeKey, kid)
		if err == nil {
			rev = existing
			return nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		rev, err = appendRevocation(ctx, tx, store.Revocation{
			Kind: store.RevokeKey, Value: kid, RevokedAt: now, ExpiresAt: expires, Reason: "key withdrawn",
		})
		return err
	})
	if err != nil {
		return store.Revocation{}, fmt.Errorf("postgres: revoke key %s: %w", kid, err)
	}
	return rev, nil
}

// GetTokenRevocation returns the newest RevokeToken entry for a token ID
// (a token revoked during its grace period has two, the newer in force at
// once);
// store.ErrNotFound when the token has none (not revoked, or the entry was
// pruned after it expired).
func (s *Store) GetTokenRevocation(ctx context.Context, tokenID string) (store.Revocation, error) {
	if !storable(tokenID) {
		return store.Revocation{}, fmt.Errorf("postgres: get revocation of token: %w", store.ErrNotFound)
	}
	r, err := latestEntry(ctx, s.pool, store.RevokeToken, tokenID)
	if err != nil {
		return store.Revocation{}, fmt.Errorf("postgres: get revocation of token %s: %w", tokenID, err)
	}
	return r, nil
}

// ListRevocations returns the entries with Seq > since and ExpiresAt > now,
// ordered by Seq.
func (s *Store) ListRevocations(ctx context.Context, since int64, now time.Time) ([]store.Revocation, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+revocationColumns+` FROM revocations
		WHERE seq > $1 AND expires_at > $2 ORDER BY seq`, since, ts(now))
	if err != nil {
		return nil, fmt.Errorf("postgres: list revocations since %d: %w", since, err)
	}
	revs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Revocation, error) { return scanRevocation(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list revocations since %d: %w", since, err)
	}
	return revs, nil
}

// RevocationState returns the log's latest version (the highest Seq ever
// committed, which pruning never lowers), its epoch and the tag of the
// latest entry, from one row.
func (s *Store) RevocationState(ctx context.Context) (store.RevocationState, error) {
	var st store.RevocationState
	if err := s.pool.QueryRow(ctx, `SELECT latest, epoch, head FROM revocation_state`).Scan(&st.Latest, &st.Epoch, &st.Head); err != nil {
		return store.RevocationState{}, fmt.Errorf("postgres: revocation state: %w", err)
	}
	return st, nil
}

// RevocationTag returns the tag of entry seq; store.ErrNotFound when it is
// not stored.
func (s *Store) RevocationTag(ctx context.Context, seq int64) (string, error) {
	var tag string
	err := s.pool.QueryRow(ctx, `SELECT tag FROM revocations WHERE seq = $1`, seq).Scan(&tag)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("postgres: revocation %d: %w", seq, store.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("postgres: revocation %d: %w", seq, err)
	}
	return tag, nil
}

// Prune deletes token records that expired before cutoff and revocation
// entries whose ExpiresAt is before now, in one transaction, and returns
// how many rows it removed. The revocation counter is left alone.
func (s *Store) Prune(ctx context.Context, now, cutoff time.Time) (int, error) {
	var n int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM tokens WHERE expires_at < $1`, ts(cutoff))
		if err != nil {
			return fmt.Errorf("tokens: %w", err)
		}
		n += tag.RowsAffected()
		tag, err = tx.Exec(ctx, `DELETE FROM revocations WHERE expires_at < $1`, ts(now))
		if err != nil {
			return fmt.Errorf("revocations: %w", err)
		}
		n += tag.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: prune: %w", err)
	}
	return int(n), nil
}
