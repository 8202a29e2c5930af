package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/signet-auth/signet/store"
)

const revocationColumns = `seq, tag, kind, value, org, not_before, revoked_at, expires_at, reason, valid_until`

// appendRevocation assigns r the next Seq and inserts it, inside tx. The
// counter row is updated in the same transaction, so the Seq becomes
// visible exactly when the entry commits, and commits are serialised by
// the write lock: Seq order is commit order, without gaps.
func appendRevocation(ctx context.Context, tx *sql.Tx, r store.Revocation) (store.Revocation, error) {
	tag, err := store.NewTag()
	if err != nil {
		return store.Revocation{}, err
	}
	r.Tag = tag
	if err := tx.QueryRowContext(ctx,
		`UPDATE revocation_seq SET latest = latest + 1, head = ? WHERE id = 1 RETURNING latest`, tag).Scan(&r.Seq); err != nil {
		return store.Revocation{}, fmt.Errorf("next revocation seq: %w", err)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO revocations (`+revocationColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.Seq, r.Tag, string(r.Kind), r.Value, r.Org, nullMicros(r.NotBefore), micros(r.RevokedAt), micros(r.ExpiresAt), r.Reason,
		nullMicros(r.ValidUntil))
	if isUniqueViolation(err) {
		return store.Revocation{}, fmt.Errorf("%s %s already has a revocation entry: %w", r.Kind, r.Value, store.ErrConflict)
	}
	if err != nil {
		return store.Revocation{}, fmt.Errorf("insert revocation: %w", err)
	}
	// Return what a reader will see: UTC, microseconds.
	r.NotBefore = fromNullMicros(nullMicros(r.NotBefore))
	r.ValidUntil = fromNullMicros(nullMicros(r.ValidUntil))
	r.RevokedAt = fromMicros(micros(r.RevokedAt))
	r.ExpiresAt = fromMicros(micros(r.ExpiresAt))
	return r, nil
}

// RevokeKey appends a RevokeKey entry for kid; an existing entry for kid is
// returned unchanged.
func (s *Store) RevokeKey(ctx context.Context, kid string, now, expires time.Time) (store.Revocation, error) {
	switch {
	case kid == "":
		return store.Revocation{}, errors.New("sqlite: revoke key: empty key id")
	case now.IsZero():
		return store.Revocation{}, fmt.Errorf("sqlite: revoke key %s: zero time", kid)
	case !expires.After(now):
		return store.Revocation{}, fmt.Errorf("sqlite: revoke key %s: entry must expire after now", kid)
	}
	var rev store.Revocation
	err := s.write(ctx, "revoke key "+kid, func(tx *sql.Tx) error {
		existing, err := scanRevocation(tx.QueryRowContext(ctx, keyRevocationQuery, kid))
		switch {
		case err == nil:
			rev = existing
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("read key entry: %w", err)
		}
		rev, err = appendRevocation(ctx, tx, store.Revocation{
			Kind: store.RevokeKey, Value: kid, RevokedAt: now, ExpiresAt: expires, Reason: "key withdrawn",
		})
		return err
	})
	if err != nil {
		return store.Revocation{}, err
	}
	return rev, nil
}

// GetTokenRevocation returns the newest RevokeToken entry for tokenID (a
// token revoked during its grace period has two, the newer in force at
// once); ErrNotFound when the token has none (not revoked, revoked only
// through a subject cut-off, or the entry was pruned).
func (s *Store) GetTokenRevocation(ctx context.Context, tokenID string) (store.Revocation, error) {
	r, err := getTokenRevocation(ctx, s.r, tokenID)
	if err != nil {
		return store.Revocation{}, fmt.Errorf("sqlite: get revocation of token %s: %w", tokenID, err)
	}
	return r, nil
}

// Hot-path queries, named so that the test of their query plans checks
// the very text the store runs.
const (
	// tokenRevocationQuery finds the newest RevokeToken entry of a token
	// ID (the index holds the rowid, seq, in order: no sort).
	tokenRevocationQuery = `SELECT ` + revocationColumns + ` FROM revocations WHERE kind = 'token' AND value = ?
		ORDER BY seq DESC LIMIT 1`
	// keyRevocationQuery finds the RevokeKey entry of a key ID.
	keyRevocationQuery = `SELECT ` + revocationColumns + ` FROM revocations WHERE kind = 'key' AND value = ?`
	// subjectRevocationQuery finds the newest RevokeSubject entry of an
	// org and subject whose cut-off lies after an issue time.
	subjectRevocationQuery = `SELECT ` + revocationColumns + ` FROM revocations
		WHERE kind = 'subject' AND value = ? AND org = ? AND not_before > ? ORDER BY seq DESC LIMIT 1`
	// listRevocationsQuery is ListRevocations.
	listRevocationsQuery = `SELECT ` + revocationColumns + ` FROM revocations
		WHERE seq > ? AND expires_at > ? ORDER BY seq`
)

func getTokenRevocation(ctx context.Context, q queryer, tokenID string) (store.Revocation, error) {
	r, err := scanRevocation(q.QueryRowContext(ctx, tokenRevocationQuery, tokenID))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Revocation{}, store.ErrNotFound
	}
	return r, err
}

// subjectRevocation returns the newest RevokeSubject entry whose cut-off
// covers t (same org and subject, issued before NotBefore).
func subjectRevocation(ctx context.Context, q queryer, t store.TokenRecord) (store.Revocation, error) {
	r, err := scanRevocation(q.QueryRowContext(ctx, subjectRevocationQuery, t.Subject, t.Org, micros(t.IssuedAt)))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Revocation{}, store.ErrNotFound
	}
	return r, err
}

// ListRevocations returns the entries with Seq > since and ExpiresAt > now,
// ordered by Seq.
func (s *Store) ListRevocations(ctx context.Context, since int64, now time.Time) ([]store.Revocation, error) {
	out, err := queryAll(ctx, s.r, scanRevocation, listRevocationsQuery, since, micros(now))
	if err != nil {
		return nil, fmt.Errorf("sqlite: list revocations since %d: %w", since, err)
	}
	return out, nil
}

// RevocationState returns the highest Seq ever committed, the log's epoch
// and the tag of the latest entry.
func (s *Store) RevocationState(ctx context.Context) (store.RevocationState, error) {
	var st store.RevocationState
	if err := s.r.QueryRowContext(ctx, `SELECT latest, epoch, head FROM revocation_seq WHERE id = 1`).Scan(&st.Latest, &st.Epoch, &st.Head); err != nil {
		return store.RevocationState{}, fmt.Errorf("sqlite: revocation state: %w", err)
	}
	return st, nil
}

// RevocationTag returns the tag of entry seq; ErrNotFound when it is not
// stored.
func (s *Store) RevocationTag(ctx context.Context, seq int64) (string, error) {
	var tag string
	err := s.r.QueryRowContext(ctx, `SELECT tag FROM revocations WHERE seq = ?`, seq).Scan(&tag)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("sqlite: revocation %d: %w", seq, store.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("sqlite: revocation %d: %w", seq, err)
	}
	return tag, nil
}

// Prune deletes token records that expired before cutoff and revocation
// entries whose ExpiresAt is before now, in one transaction, and returns
// how many rows it removed. The Seq counter is untouched, so
// RevocationState().Latest never goes down. Audit events are kept.
func (s *Store) Prune(ctx context.Context, now, cutoff time.Time) (int, error) {
	var n int64
	err := s.write(ctx, "prune", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE expires_at < ?`, micros(cutoff))
		if err != nil {
			return fmt.Errorf("delete tokens: %w", err)
		}
		tokens, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("delete tokens: %w", err)
		}
		res, err = tx.ExecContext(ctx, `DELETE FROM revocations WHERE expires_at < ?`, micros(now))
		if err != nil {
			return fmt.Errorf("delete revocations: %w", err)
		}
		entries, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("delete revocations: %w", err)
		}
		n = tokens + entries
		return nil
	})
	if err != nil {
		return 0, err
	}
	return int(n), nil
}

func scanRevocation(sc scanner) (store.Revocation, error) {
	var (
		r                     store.Revocation
		kind                  string
		notBefore, validUntil sql.NullInt64
		revokedAt, expires    int64
	)
	if err := sc.Scan(&r.Seq, &r.Tag, &kind, &r.Value, &r.Org, &notBefore, &revokedAt, &expires, &r.Reason, &validUntil); err != nil {
		return store.Revocation{}, err
	}
	r.Kind = store.RevocationKind(kind)
	r.NotBefore = fromNullMicros(notBefore)
	r.ValidUntil = fromNullMicros(validUntil)
	r.RevokedAt = fromMicros(revokedAt)
	r.ExpiresAt = fromMicros(expires)
	return r, nil
}
