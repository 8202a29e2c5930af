-- signet schema, version 7: a user records where they sign in. '' is a
-- local user (password hash in this store); 'ldap' a user created by a
-- directory sign-in, whose password the LDAP directory checks and whom the
-- directory sync updates and removes. Every existing user is local.
ALTER TABLE users ADD COLUMN source text NOT NULL DEFAULT '' CHECK (source IN ('', 'ldap'));
-- The directory sync reads its users on every pass.
CREATE INDEX users_source ON users (source) WHERE source <> '';
