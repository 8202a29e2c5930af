-- signet schema, version 2.
-- A member's token list (org and owner, newest first) and the user-wide
-- revocations of DeleteUser and SetPassword look tokens up by org and
-- owner. tokens_owner is partial (owner <> ''), which a generic plan of a
-- prepared "owner = $1" cannot use, so those queries walked every token of
-- the org; this index serves them under any plan and also gives the order.
CREATE INDEX tokens_org_owner_issued ON tokens (org, owner, issued_at DESC, row_seq DESC);
DROP INDEX IF EXISTS tokens_owner;
