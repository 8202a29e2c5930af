-- The revocation log's identity (revocation.Cursor): a random epoch for the
-- log, written once here, and a random tag on every entry, the latest of
-- which the counter row keeps as head. A database restored from a dump
-- keeps its epoch but reuses Seqs with new tags, so a reader resuming from
-- a position the restored log never reached is told to reload.
ALTER TABLE revocation_state ADD COLUMN epoch text NOT NULL DEFAULT '';
ALTER TABLE revocation_state ADD COLUMN head text NOT NULL DEFAULT '';
UPDATE revocation_state SET epoch = substr(replace(gen_random_uuid()::text, '-', ''), 1, 16);
ALTER TABLE revocations ADD COLUMN tag text NOT NULL DEFAULT '';
