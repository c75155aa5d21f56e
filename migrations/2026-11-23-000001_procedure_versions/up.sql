-- Every version of every procedure definition the service has served, keyed by the SHA-256 of
-- its resolved content. Submissions pin a version here, so an old application stays readable
-- against the exact form it was made with after the file changes.
CREATE TABLE procedure_versions (
    content_hash TEXT PRIMARY KEY,
    procedure_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    definition JSONB NOT NULL,
    first_seen_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX procedure_versions_procedure_id_idx ON procedure_versions (procedure_id, first_seen_at);
