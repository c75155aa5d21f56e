-- The usage dashboard's rollups (src/statistics/). Only aggregates: no row here names a person or
-- an application. The worker folds submission_events into them past a watermark; each batch of
-- events and the watermark's advance commit together, so a range is counted exactly once.

-- One row: the last submission_events id folded into the rollups.
CREATE TABLE statistics_watermark (
    singleton BOOLEAN PRIMARY KEY DEFAULT true CHECK (singleton),
    last_event_id BIGINT NOT NULL DEFAULT 0,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO statistics_watermark DEFAULT VALUES;

-- Per city month (first day), procedure and division. Receipts count in the month received,
-- decisions (and their processing time) in the month decided, returns and withdrawals in the
-- month they happened.
CREATE TABLE statistics_monthly (
    month DATE NOT NULL CHECK (extract(day FROM month) = 1),
    procedure_id TEXT NOT NULL,
    division TEXT NOT NULL,
    received BIGINT NOT NULL DEFAULT 0,
    card_signed BIGINT NOT NULL DEFAULT 0,
    returned BIGINT NOT NULL DEFAULT 0,
    withdrawn BIGINT NOT NULL DEFAULT 0,
    completed BIGINT NOT NULL DEFAULT 0,
    rejected BIGINT NOT NULL DEFAULT 0,
    -- Decisions of a procedure with a standard period, and those within it.
    with_standard BIGINT NOT NULL DEFAULT 0,
    within_standard BIGINT NOT NULL DEFAULT 0,
    -- Decisions by business days taken, paused clock excluded: element i (1-based) counts
    -- decisions that took i - 1 business days; the last element counts that many or more.
    -- Histograms add element-wise, so medians and 90th percentiles merge exactly.
    processing_days BIGINT[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (month, procedure_id, division)
);
CREATE INDEX statistics_monthly_division_idx ON statistics_monthly (division, month);

-- Per city day: receipts, and open applications past their due date at the day's end (the last
-- snapshot the worker takes that day).
CREATE TABLE statistics_daily (
    day DATE NOT NULL,
    procedure_id TEXT NOT NULL,
    division TEXT NOT NULL,
    received BIGINT NOT NULL DEFAULT 0,
    overdue BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (day, procedure_id, division)
);
CREATE INDEX statistics_daily_division_idx ON statistics_daily (division, day);

-- Applications taken at the paper counter (窓口), entered monthly per procedure by staff of the
-- division: madoguchi does not see the counter.
CREATE TABLE statistics_counter_counts (
    month DATE NOT NULL CHECK (extract(day FROM month) = 1),
    procedure_id TEXT NOT NULL,
    division TEXT NOT NULL,
    count BIGINT NOT NULL CHECK (count >= 0),
    entered_by UUID NOT NULL REFERENCES staff (id),
    entered_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (month, procedure_id)
);
CREATE INDEX statistics_counter_counts_entered_by_idx ON statistics_counter_counts (entered_by);

-- Element-wise sum of two histograms of different lengths.
CREATE FUNCTION statistics_add_histograms(a BIGINT[], b BIGINT[]) RETURNS BIGINT[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(coalesce(a[i], 0) + coalesce(b[i], 0) ORDER BY i), '{}')
      FROM generate_series(1, greatest(cardinality(a), cardinality(b))) AS i
$$;
