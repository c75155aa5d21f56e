ALTER TABLE submissions DROP COLUMN payment_requested_at;
DROP TABLE fee_requests;
