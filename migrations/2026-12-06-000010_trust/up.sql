-- One-off data migrations that need the application (keys, the catalog), run once each after the
-- schema migrations; a row here says it ran.
CREATE TABLE data_migrations (
    name TEXT PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Single-use nonces put in the bytes a resident signs with the card, so a signature is accepted
-- once, for the account that asked for it.
CREATE TABLE signing_nonces (
    nonce TEXT PRIMARY KEY,
    resident_id UUID NOT NULL REFERENCES residents (id) ON DELETE CASCADE,
    procedure_id TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);
CREATE INDEX signing_nonces_resident_id_idx ON signing_nonces (resident_id);
CREATE INDEX signing_nonces_expires_at_idx ON signing_nonces (expires_at);

-- Notices go only to an address the resident confirmed. `email` is that address; a new one waits
-- in `pending_email` until the link sent to it is used (the token is kept hashed).
ALTER TABLE residents
    ADD COLUMN email_confirmed BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN pending_email TEXT,
    ADD COLUMN email_token_hash BYTEA,
    ADD COLUMN email_token_expires_at TIMESTAMPTZ;
CREATE UNIQUE INDEX residents_email_token_hash_idx ON residents (email_token_hash);
