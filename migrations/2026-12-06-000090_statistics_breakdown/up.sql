-- The city's opt-in breakdown of receipts (statistics.breakdown): the 町丁目 code of the
-- resident's address or the 10-year age band of their birth date, derived at submit from the
-- facts the card vouched for. Never the address or the birth date itself, and never both.
ALTER TABLE submissions
    ADD COLUMN district_code TEXT,
    ADD COLUMN age_band TEXT,
    ADD CONSTRAINT submissions_one_breakdown CHECK (district_code IS NULL OR age_band IS NULL);

-- Receipts per city month, procedure, division and breakdown value: only aggregates.
CREATE TABLE statistics_breakdown_monthly (
    month DATE NOT NULL CHECK (extract(day FROM month) = 1),
    procedure_id TEXT NOT NULL,
    division TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('district', 'age_band')),
    value TEXT NOT NULL,
    received BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (month, procedure_id, division, kind, value)
);
CREATE INDEX statistics_breakdown_monthly_division_idx
    ON statistics_breakdown_monthly (division, kind, month);
