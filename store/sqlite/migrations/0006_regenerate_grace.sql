-- signet schema, version 6: regenerate with a grace period. The old value
-- of a regenerated token may stay valid until a later time: its record and
-- its revocation entry carry that time as valid_until (NULL: revoked at
-- once).
ALTER TABLE tokens ADD COLUMN valid_until INTEGER;
ALTER TABLE revocations ADD COLUMN valid_until INTEGER;

-- A token may now have two entries: the one of regenerate with a grace
-- period (valid_until set), and, when it is revoked before that time, the
-- one that revokes it at once. Still at most one of each, and one per key.
DROP INDEX revocations_token_key;
CREATE UNIQUE INDEX revocations_token_key ON revocations (kind, value, valid_until IS NULL) WHERE kind IN ('token', 'key');
