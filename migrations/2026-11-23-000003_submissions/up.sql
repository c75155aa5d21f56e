CREATE TABLE submissions (
    id UUID PRIMARY KEY,
    -- Short, human-readable, unguessable: what residents quote on the phone.
    reference TEXT NOT NULL UNIQUE,
    resident_id UUID NOT NULL REFERENCES residents (id),
    procedure_id TEXT NOT NULL,
    content_hash TEXT NOT NULL REFERENCES procedure_versions (content_hash),
    status TEXT NOT NULL CHECK (status IN
        ('submitted', 'in_progress', 'returned', 'completed', 'rejected', 'withdrawn')),
    -- Normalised answers; my_number values are sealed (AEAD) before they get here.
    data JSONB NOT NULL,
    revision INTEGER NOT NULL DEFAULT 1,
    fee_yen BIGINT NOT NULL,
    queue TEXT NOT NULL,
    division TEXT NOT NULL,
    assignee_id UUID REFERENCES staff (id),
    submitted_at TIMESTAMPTZ NOT NULL,
    due_date DATE,
    returned_at TIMESTAMPTZ,
    decided_at TIMESTAMPTZ,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX submissions_resident_id_idx ON submissions (resident_id, submitted_at DESC);
CREATE INDEX submissions_queue_idx ON submissions (queue, status, submitted_at, id);
CREATE INDEX submissions_assignee_id_idx ON submissions (assignee_id);
CREATE INDEX submissions_content_hash_idx ON submissions (content_hash);

-- Append-only history: who changed what, when, from and to which status, and why.
CREATE TABLE submission_events (
    id BIGSERIAL PRIMARY KEY,
    submission_id UUID NOT NULL REFERENCES submissions (id),
    actor_kind TEXT NOT NULL CHECK (actor_kind IN ('resident', 'staff', 'system')),
    actor_id UUID,
    from_status TEXT,
    to_status TEXT NOT NULL,
    reason TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX submission_events_submission_id_idx ON submission_events (submission_id, id);

-- Every revision of the answers, so staff see what changed after a return.
CREATE TABLE submission_revisions (
    submission_id UUID NOT NULL REFERENCES submissions (id),
    revision INTEGER NOT NULL,
    data JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (submission_id, revision)
);

-- Evidence of a card signature (card-sign procedures), kept together as IDENTITY.md asks.
CREATE TABLE submission_signatures (
    submission_id UUID NOT NULL REFERENCES submissions (id),
    revision INTEGER NOT NULL,
    cms BYTEA NOT NULL,
    certificate BYTEA NOT NULL,
    digest BYTEA NOT NULL,
    revocation_checked_at TIMESTAMPTZ NOT NULL,
    verified_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (submission_id, revision)
);

-- A retried POST returns the stored answer; the key is scoped to the resident and written in
-- the same transaction as the submission it protects.
CREATE TABLE idempotency_keys (
    resident_id UUID NOT NULL REFERENCES residents (id),
    key TEXT NOT NULL,
    request_hash BYTEA NOT NULL,
    response_status SMALLINT NOT NULL,
    response_body JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (resident_id, key)
);

CREATE TABLE drafts (
    id UUID PRIMARY KEY,
    resident_id UUID NOT NULL REFERENCES residents (id),
    procedure_id TEXT NOT NULL,
    data JSONB NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX drafts_resident_id_idx ON drafts (resident_id, updated_at DESC);

CREATE TABLE attachments (
    id UUID PRIMARY KEY,
    resident_id UUID NOT NULL REFERENCES residents (id),
    draft_id UUID REFERENCES drafts (id) ON DELETE SET NULL,
    submission_id UUID REFERENCES submissions (id),
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    sha256 BYTEA NOT NULL,
    storage_key TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX attachments_resident_id_idx ON attachments (resident_id);
CREATE INDEX attachments_draft_id_idx ON attachments (draft_id);
CREATE INDEX attachments_submission_id_idx ON attachments (submission_id);

-- Every staff read of an application (and every My Number reveal, with its reason).
CREATE TABLE access_log (
    id BIGSERIAL PRIMARY KEY,
    submission_id UUID NOT NULL REFERENCES submissions (id),
    staff_id UUID NOT NULL REFERENCES staff (id),
    action TEXT NOT NULL CHECK (action IN ('view', 'reveal_my_number', 'download_attachment')),
    reason TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX access_log_submission_id_idx ON access_log (submission_id, id);
CREATE INDEX access_log_staff_id_idx ON access_log (staff_id);

CREATE TABLE staff_notes (
    id UUID PRIMARY KEY,
    submission_id UUID NOT NULL REFERENCES submissions (id),
    staff_id UUID NOT NULL REFERENCES staff (id),
    body TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX staff_notes_submission_id_idx ON staff_notes (submission_id);
CREATE INDEX staff_notes_staff_id_idx ON staff_notes (staff_id);

-- Email outbox: a row per message, written in the transaction of the change that causes it.
CREATE TABLE outbox (
    id UUID PRIMARY KEY,
    template TEXT NOT NULL,
    language TEXT NOT NULL,
    recipient TEXT NOT NULL,
    payload JSONB NOT NULL,
    submission_id UUID REFERENCES submissions (id),
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at TIMESTAMPTZ
);
CREATE INDEX outbox_due_idx ON outbox (next_attempt_at) WHERE status = 'pending';
CREATE INDEX outbox_submission_id_idx ON outbox (submission_id);
