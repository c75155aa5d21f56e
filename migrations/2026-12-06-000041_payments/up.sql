-- An application whose fee is paid at submission is stored first as awaiting_payment: it is in
-- no queue until paid, and expires (payment_expired) when nobody pays in time.
ALTER TABLE submissions DROP CONSTRAINT submissions_status_check;
ALTER TABLE submissions ADD CONSTRAINT submissions_status_check CHECK (status IN
    ('awaiting_payment', 'payment_expired', 'submitted', 'in_progress', 'returned', 'completed',
     'rejected', 'withdrawn'));
CREATE INDEX submissions_awaiting_payment_idx ON submissions (submitted_at)
    WHERE status = 'awaiting_payment';

CREATE TABLE payments (
    id UUID PRIMARY KEY,
    submission_id UUID NOT NULL REFERENCES submissions (id),
    resident_id UUID NOT NULL REFERENCES residents (id),
    provider TEXT NOT NULL,
    -- What the provider knows this payment by; unique per merchant and service.
    order_id TEXT NOT NULL UNIQUE,
    -- Copied from the application's frozen breakdown; never from a request.
    amount_yen BIGINT NOT NULL CHECK (amount_yen > 0),
    status TEXT NOT NULL CHECK (status IN
        ('created', 'pending', 'succeeded', 'failed', 'expired', 'cancelled')),
    -- The provider's own id of the payment (SBPS res_tracking_id), once known.
    provider_reference TEXT,
    -- Why staff must look: 'late_success' (money taken after we had recorded a failure).
    attention TEXT,
    idempotency_key TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    settled_at TIMESTAMPTZ,
    UNIQUE (resident_id, idempotency_key)
);
CREATE INDEX payments_submission_id_idx ON payments (submission_id);
CREATE INDEX payments_open_idx ON payments (updated_at) WHERE status IN ('created', 'pending');

-- Every verified notification, exactly as received, once per provider event.
CREATE TABLE payment_notifications (
    id BIGSERIAL PRIMARY KEY,
    provider TEXT NOT NULL,
    event_id TEXT NOT NULL,
    payment_id UUID REFERENCES payments (id),
    body BYTEA NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (provider, event_id)
);
CREATE INDEX payment_notifications_payment_id_idx ON payment_notifications (payment_id);

CREATE TABLE refunds (
    id UUID PRIMARY KEY,
    payment_id UUID NOT NULL REFERENCES payments (id),
    amount_yen BIGINT NOT NULL CHECK (amount_yen > 0),
    reason TEXT NOT NULL,
    requested_by UUID NOT NULL REFERENCES staff (id),
    status TEXT NOT NULL CHECK (status IN ('succeeded', 'failed')),
    provider_reference TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX refunds_payment_id_idx ON refunds (payment_id);
CREATE INDEX refunds_requested_by_idx ON refunds (requested_by);
