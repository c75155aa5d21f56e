-- Residents are keyed on who vouched for them (issuer) and the subject that issuer gave them:
-- a card's certificate serial under the J-LIS CA, or `sub` at an OpenID Provider.
CREATE TABLE residents (
    id UUID PRIMARY KEY,
    provider TEXT NOT NULL,
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    email TEXT,
    language TEXT NOT NULL DEFAULT 'ja' CHECK (language IN ('ja', 'en')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_login_at TIMESTAMPTZ,
    UNIQUE (issuer, subject)
);

-- Single-use, short-lived login challenges (JPKI nonce, OIDC state/nonce/PKCE verifier).
CREATE TABLE auth_challenges (
    id UUID PRIMARY KEY,
    provider TEXT NOT NULL,
    challenge BYTEA NOT NULL,
    oidc_nonce TEXT,
    pkce_verifier TEXT,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);
CREATE INDEX auth_challenges_expires_at_idx ON auth_challenges (expires_at);

CREATE TABLE staff (
    id UUID PRIMARY KEY,
    login TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    email TEXT,
    password_hash TEXT NOT NULL,
    failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until TIMESTAMPTZ,
    active BOOLEAN NOT NULL DEFAULT true,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- A staff member's role in a division; one person may work in several.
CREATE TABLE staff_memberships (
    staff_id UUID NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    division TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('clerk', 'supervisor', 'admin')),
    PRIMARY KEY (staff_id, division)
);
CREATE INDEX staff_memberships_division_idx ON staff_memberships (division);

-- Refresh tokens, stored only as SHA-256 hashes, rotated on every use. A token presented
-- twice (theft) revokes its whole family.
CREATE TABLE refresh_tokens (
    id UUID PRIMARY KEY,
    token_hash BYTEA NOT NULL UNIQUE,
    family_id UUID NOT NULL,
    resident_id UUID REFERENCES residents (id) ON DELETE CASCADE,
    staff_id UUID REFERENCES staff (id) ON DELETE CASCADE,
    assurance TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    used_at TIMESTAMPTZ,
    revoked_at TIMESTAMPTZ,
    CHECK ((resident_id IS NULL) <> (staff_id IS NULL))
);
CREATE INDEX refresh_tokens_family_id_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_resident_id_idx ON refresh_tokens (resident_id);
CREATE INDEX refresh_tokens_staff_id_idx ON refresh_tokens (staff_id);
