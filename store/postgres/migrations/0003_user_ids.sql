-- signet schema, version 3: users get a stable id, and tokens record their
-- owner's id, so that a user created with the name of a removed user owns
-- none of the removed user's tokens.
--
-- Existing users get a random id. An existing personal token belongs to
-- the user who holds its owner's name now if that user was created no
-- later than the second the token was issued in (iat has whole seconds;
-- a user created afterwards cannot have asked for it: it was an earlier
-- holder's); otherwise to no user
-- (owner_id ''), seen and managed by the org's admins only.
ALTER TABLE users ADD COLUMN id text NOT NULL DEFAULT '';
UPDATE users SET id = replace(gen_random_uuid()::text, '-', '') WHERE id = '';
CREATE UNIQUE INDEX users_id ON users (id);

ALTER TABLE tokens ADD COLUMN owner_id text NOT NULL DEFAULT '';
UPDATE tokens t SET owner_id = u.id
FROM users u
WHERE t.type = 'personal' AND u.username = t.owner AND u.org = t.org AND u.created_at < t.issued_at + interval '1 second';

-- A member's token list, and the user-wide revocations of DeleteUser and
-- SetPassword, by owner id.
CREATE INDEX tokens_org_owner_id_issued ON tokens (org, owner_id, issued_at DESC, row_seq DESC);
