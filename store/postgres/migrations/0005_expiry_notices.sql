-- signet schema, version 5: expiry notices. One row per notice (token,
-- threshold, channel, recipient), claimed before it is sent and marked
-- sent after, so that restarts and replicas never send it twice.
CREATE TABLE expiry_notices (
    token_id         text NOT NULL,
    threshold_us     bigint NOT NULL,
    channel          text NOT NULL CHECK (channel IN ('email', 'webhook')),
    recipient        text NOT NULL,
    claimant         text NOT NULL,
    claimed_until    timestamptz,      -- NULL once released or sent
    sent_at          timestamptz,      -- NULL until delivered
    attempts         integer NOT NULL,
    last_error       text NOT NULL,
    token_expires_at timestamptz NOT NULL,
    PRIMARY KEY (token_id, threshold_us, channel, recipient)
);

-- ListNotices and PruneNotices.
CREATE INDEX expiry_notices_expires ON expiry_notices (token_expires_at);
