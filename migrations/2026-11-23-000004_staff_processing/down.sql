DROP INDEX submissions_division_open_idx;
DROP INDEX submissions_queue_page_idx;
ALTER TABLE submission_events DROP COLUMN comments;
