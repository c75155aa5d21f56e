ALTER TABLE residents
    DROP COLUMN email_token_expires_at,
    DROP COLUMN email_token_hash,
    DROP COLUMN pending_email,
    DROP COLUMN email_confirmed;
DROP TABLE signing_nonces;
DROP TABLE data_migrations;
