-- The basic facts (基本4情報) a provider vouched for at sign-in, kept only while that session
-- lives (deleted at logout, revocation or expiry), so that an application made in the session
-- can carry them. The resident's account never holds them.
CREATE TABLE session_facts (
    family_id UUID PRIMARY KEY,
    resident_id UUID NOT NULL REFERENCES residents (id) ON DELETE CASCADE,
    issuer TEXT NOT NULL,
    facts JSONB NOT NULL,
    verified_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX session_facts_expires_at_idx ON session_facts (expires_at);

-- Who the card says the applicant is, kept with each revision of an application to a procedure
-- that needs an identity (card-auth, card-sign): from the signature certificate when the
-- revision is signed, else from the sign-in.
CREATE TABLE submission_identity_facts (
    submission_id UUID NOT NULL REFERENCES submissions (id),
    revision INTEGER NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('sign_in', 'signature')),
    issuer TEXT NOT NULL,
    facts JSONB NOT NULL,
    verified_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (submission_id, revision)
);
