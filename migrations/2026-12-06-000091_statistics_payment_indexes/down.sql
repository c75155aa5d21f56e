DROP INDEX refunds_created_at_idx;
DROP INDEX payments_settled_at_idx;
