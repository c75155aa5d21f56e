-- Field-level comments staff attach when returning an application ([{path, comment}]), kept on
-- the event so the resident sees them with the history and they are as append-only as it is.
ALTER TABLE submission_events ADD COLUMN comments JSONB;

-- A queue page: keyset pagination over (submitted_at, id) inside one queue, whatever the status.
CREATE INDEX submissions_queue_page_idx ON submissions (queue, submitted_at, id);
-- Queue counts for a staff member's divisions (open work only).
CREATE INDEX submissions_division_open_idx ON submissions (division, queue, status, due_date)
    WHERE status IN ('submitted', 'in_progress', 'returned');
