-- signet schema, version 5: expiry notices. One row per notice (token,
-- threshold, channel, recipient), claimed before it is sent and marked
-- sent after, so that restarts and other processes never send it twice.
CREATE TABLE expiry_notices (
    token_id         TEXT NOT NULL,
    threshold_us     INTEGER NOT NULL,
    channel          TEXT NOT NULL CHECK (channel IN ('email', 'webhook')),
    recipient        TEXT NOT NULL,
    claimant         TEXT NOT NULL,
    claimed_until    INTEGER,          -- NULL once released or sent
    sent_at          INTEGER,          -- NULL until delivered
    attempts         INTEGER NOT NULL,
    last_error       TEXT NOT NULL,
    token_expires_at INTEGER NOT NULL,
    PRIMARY KEY (token_id, threshold_us, channel, recipient)
) STRICT;

-- ListNotices and PruneNotices.
CREATE INDEX expiry_notices_expires ON expiry_notices (token_expires_at);
