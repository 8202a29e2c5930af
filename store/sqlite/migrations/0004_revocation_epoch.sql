-- The revocation log's identity (revocation.Cursor): a random epoch for the
-- log, written once here, and a random tag on every entry, the latest of
-- which the counter row keeps as head. A database restored from a backup
-- keeps its epoch but reuses Seqs with new tags, so a reader resuming from
-- a position the restored log never reached is told to reload.
ALTER TABLE revocation_seq ADD COLUMN epoch TEXT NOT NULL DEFAULT '';
ALTER TABLE revocation_seq ADD COLUMN head TEXT NOT NULL DEFAULT '';
UPDATE revocation_seq SET epoch = lower(hex(randomblob(8))) WHERE id = 1;
ALTER TABLE revocations ADD COLUMN tag TEXT NOT NULL DEFAULT '';
