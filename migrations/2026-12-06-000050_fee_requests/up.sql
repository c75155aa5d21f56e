-- 事後決済 (payment.timing: after_review): staff set the fee lines once they know them (a closed
-- register's page count, say) and the resident is asked to pay. Each setting is kept, with who
-- made it and why; the application's frozen breakdown becomes the one set last.
CREATE TABLE fee_requests (
    id UUID PRIMARY KEY,
    submission_id UUID NOT NULL REFERENCES submissions (id),
    staff_id UUID NOT NULL REFERENCES staff (id),
    reason TEXT NOT NULL,
    breakdown JSONB NOT NULL,
    -- The breakdown it replaced (the estimate frozen at submission).
    previous JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX fee_requests_submission_id_idx ON fee_requests (submission_id);
CREATE INDEX fee_requests_staff_id_idx ON fee_requests (staff_id);

-- When the resident was asked to pay after review: such a request expires counted from here,
-- not from the submission days earlier.
ALTER TABLE submissions ADD COLUMN payment_requested_at TIMESTAMPTZ;
