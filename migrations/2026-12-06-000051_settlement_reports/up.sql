-- The daily settlement report: the provider's file of one day's sales compared with our
-- payments. One report per provider and day (the unique key lets one worker make it); its
-- differences are kept for the city's accountant.
CREATE TABLE settlement_reports (
    id UUID PRIMARY KEY,
    provider TEXT NOT NULL,
    -- The day in the city (Japan time) the file covers.
    settlement_date DATE NOT NULL,
    provider_lines INTEGER NOT NULL DEFAULT 0,
    our_payments INTEGER NOT NULL DEFAULT 0,
    mismatches INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (provider, settlement_date)
);

CREATE TABLE settlement_mismatches (
    id BIGSERIAL PRIMARY KEY,
    report_id UUID NOT NULL REFERENCES settlement_reports (id),
    kind TEXT NOT NULL CHECK (kind IN ('missing', 'amount_differs', 'unknown', 'status_differs')),
    order_id TEXT NOT NULL,
    payment_id UUID REFERENCES payments (id),
    our_amount_yen BIGINT,
    provider_amount_yen BIGINT,
    provider_reference TEXT
);
CREATE INDEX settlement_mismatches_report_id_idx ON settlement_mismatches (report_id);
CREATE INDEX settlement_mismatches_payment_id_idx ON settlement_mismatches (payment_id);
