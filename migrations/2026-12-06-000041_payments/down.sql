DROP TABLE refunds;
DROP TABLE payment_notifications;
DROP TABLE payments;
DROP INDEX submissions_awaiting_payment_idx;
UPDATE submissions SET status = 'withdrawn' WHERE status IN ('awaiting_payment', 'payment_expired');
ALTER TABLE submissions DROP CONSTRAINT submissions_status_check;
ALTER TABLE submissions ADD CONSTRAINT submissions_status_check CHECK (status IN
    ('submitted', 'in_progress', 'returned', 'completed', 'rejected', 'withdrawn'));
