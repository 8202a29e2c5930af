-- signet schema, version 1.
-- Times are integer Unix microseconds, UTC. NULL means "not set".

CREATE TABLE users (
    username      TEXT PRIMARY KEY NOT NULL,
    email         TEXT NOT NULL,
    org           TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    password_hash TEXT NOT NULL,
    created_at    INTEGER,
    updated_at    INTEGER
) STRICT;

-- ListUsers(org), by username.
CREATE INDEX users_org_username ON users (org, username);

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    description TEXT NOT NULL,
    type        TEXT NOT NULL CHECK (type IN ('personal', 'administrative')),
    owner       TEXT NOT NULL,
    org         TEXT NOT NULL,
    subject     TEXT NOT NULL,
    scopes      TEXT NOT NULL, -- JSON array of strings
    created_by  TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    lifetime_ns INTEGER NOT NULL,
    revoked_at  INTEGER,
    replaced_by TEXT NOT NULL DEFAULT '',
    parent_id   TEXT NOT NULL DEFAULT ''
) STRICT;

-- ListTokens by org (and owner), newest first; DeleteUser and SetPassword
-- find a user's tokens through the second.
CREATE INDEX tokens_org_issued ON tokens (org, issued_at);
CREATE INDEX tokens_org_owner_issued ON tokens (org, owner, issued_at);
-- ListTokens across orgs.
CREATE INDEX tokens_issued ON tokens (issued_at);
-- The live-name check of CreateToken and ReplaceToken.
CREATE INDEX tokens_org_owner_name ON tokens (org, owner, name) WHERE name <> '';
-- Prune.
CREATE INDEX tokens_expires ON tokens (expires_at);

-- The revocation log. seq is assigned from revocation_seq inside the
-- writing transaction, so seq order is commit order.
CREATE TABLE revocations (
    seq        INTEGER PRIMARY KEY NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('token', 'subject', 'key')),
    value      TEXT NOT NULL,
    org        TEXT NOT NULL,
    not_before INTEGER,
    revoked_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    reason     TEXT NOT NULL
) STRICT;

-- One entry per token and per key: GetTokenRevocation, idempotent
-- RevokeToken and RevokeKey.
CREATE UNIQUE INDEX revocations_token_key ON revocations (kind, value) WHERE kind IN ('token', 'key');
-- Prune and ListRevocations' expiry test.
CREATE INDEX revocations_expires ON revocations (expires_at);

-- The log's version. A single row that only goes up, so pruning entries
-- never lowers RevocationState().Latest.
CREATE TABLE revocation_seq (
    id     INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    latest INTEGER NOT NULL
) STRICT;
INSERT INTO revocation_seq (id, latest) VALUES (1, 0);

CREATE TABLE audit_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    time      INTEGER NOT NULL,
    org       TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    target    TEXT NOT NULL,
    client_ip TEXT NOT NULL,
    detail    TEXT NOT NULL
) STRICT;

-- ListAudit by org and across orgs, newest first.
CREATE INDEX audit_org_time ON audit_events (org, time, id);
CREATE INDEX audit_time ON audit_events (time, id);
