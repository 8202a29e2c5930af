-- Regenerate with a grace period: the old value of a regenerated token may
-- stay valid until a later time. Its record and its revocation entry carry
-- that time as valid_until (NULL: revoked at once). A token revoked during
-- its grace period gets a second entry, without valid_until; the newest
-- entry of a token is the one in force (revocations_kind_value finds it).
ALTER TABLE tokens ADD COLUMN valid_until timestamptz;
ALTER TABLE revocations ADD COLUMN valid_until timestamptz;
