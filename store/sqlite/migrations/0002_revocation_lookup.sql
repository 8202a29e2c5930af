-- signet schema, version 2.
-- GetTokenRevocation (the unauthenticated GET /revocations/<id>), the
-- idempotency checks of RevokeToken and RevokeKey and the subject lookup of
-- RevokeToken find entries by kind and value. SQLite does not infer
-- "kind IN ('token', 'key')" from "kind = 'token'", so it cannot use the
-- partial unique index revocations_token_key for them and scanned the
-- whole log instead.
CREATE INDEX revocations_kind_value ON revocations (kind, value);
