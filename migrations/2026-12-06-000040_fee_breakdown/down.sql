ALTER TABLE submissions DROP COLUMN fee_breakdown;
