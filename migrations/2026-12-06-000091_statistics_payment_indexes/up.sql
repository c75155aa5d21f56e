-- The usage statistics' payment figures (src/statistics/report.rs) read payments confirmed and
-- refunds completed in the report's months: by time, not by scanning every payment.
CREATE INDEX payments_settled_at_idx ON payments (settled_at) WHERE status = 'succeeded';
CREATE INDEX refunds_created_at_idx ON refunds (created_at) WHERE status = 'succeeded';
