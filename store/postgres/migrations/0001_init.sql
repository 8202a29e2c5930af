-- signet schema, version 1.

CREATE TABLE users (
    username      text        PRIMARY KEY,
    email         text        NOT NULL,
    org           text        NOT NULL,
    role          text        NOT NULL CHECK (role IN ('admin', 'member')),
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX users_org ON users (org, username);

CREATE TABLE tokens (
    id          text        PRIMARY KEY,
    -- row_seq breaks ties between tokens issued in the same microsecond so
    -- that "newest first" is stable.
    row_seq     bigint      GENERATED ALWAYS AS IDENTITY,
    name        text        NOT NULL,
    description text        NOT NULL,
    type        text        NOT NULL CHECK (type IN ('personal', 'administrative')),
    owner       text        NOT NULL,
    org         text        NOT NULL,
    subject     text        NOT NULL,
    scopes      text[]      NOT NULL,
    created_by  text        NOT NULL,
    key_id      text        NOT NULL,
    issued_at   timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    lifetime_ns bigint      NOT NULL,
    revoked_at  timestamptz,
    replaced_by text        NOT NULL DEFAULT '',
    parent_id   text        NOT NULL DEFAULT ''
);
CREATE INDEX tokens_org_issued ON tokens (org, issued_at DESC, row_seq DESC);
CREATE INDEX tokens_owner ON tokens (owner, type) WHERE owner <> '';
CREATE INDEX tokens_live_name ON tokens (org, owner, name) WHERE name <> '' AND revoked_at IS NULL;
CREATE INDEX tokens_expires ON tokens (expires_at);

-- One row holding the revocation log's version. Appenders increment it
-- inside their transaction, which serializes them until commit, so Seq
-- order is commit order. Prune never touches it.
CREATE TABLE revocation_state (
    id     boolean PRIMARY KEY DEFAULT true CHECK (id),
    latest bigint  NOT NULL CHECK (latest >= 0)
);
INSERT INTO revocation_state (id, latest) VALUES (true, 0);

CREATE TABLE revocations (
    seq        bigint      PRIMARY KEY,
    kind       text        NOT NULL CHECK (kind IN ('token', 'subject', 'key')),
    value      text        NOT NULL,
    org        text        NOT NULL,
    not_before timestamptz,
    revoked_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    reason     text        NOT NULL
);
CREATE INDEX revocations_kind_value ON revocations (kind, value, seq DESC);
CREATE INDEX revocations_expires ON revocations (expires_at);

CREATE TABLE audit_events (
    id        bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time      timestamptz NOT NULL,
    org       text        NOT NULL,
    actor     text        NOT NULL,
    action    text        NOT NULL,
    target    text        NOT NULL,
    client_ip text        NOT NULL,
    detail    text        NOT NULL
);
CREATE INDEX audit_events_org_time ON audit_events (org, time DESC, id DESC);
CREATE INDEX audit_events_time ON audit_events (time DESC, id DESC);
