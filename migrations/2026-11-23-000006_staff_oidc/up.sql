-- Staff may sign in through the city's own OpenID Provider. An account is linked to the
-- provider's (issuer, subject) on its first sign-in there (or ahead of time by an admin); an
-- account that signs in only there has no password.
ALTER TABLE staff ALTER COLUMN password_hash DROP NOT NULL;
ALTER TABLE staff
    ADD COLUMN oidc_issuer TEXT,
    ADD COLUMN oidc_subject TEXT,
    ADD CONSTRAINT staff_oidc_identity_key UNIQUE (oidc_issuer, oidc_subject),
    ADD CONSTRAINT staff_oidc_identity_whole CHECK ((oidc_issuer IS NULL) = (oidc_subject IS NULL));
