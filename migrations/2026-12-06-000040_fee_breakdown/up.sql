-- What the application costs, line by line (fees, postage, claimed exemptions) and in total,
-- computed from the pinned definition at submission and frozen: payments charge this, never an
-- amount a client sends. NULL for free procedures.
ALTER TABLE submissions ADD COLUMN fee_breakdown JSONB;
