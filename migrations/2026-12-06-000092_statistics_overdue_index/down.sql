DROP INDEX submissions_overdue_idx;
