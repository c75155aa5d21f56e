-- The staff queue overview counts a division's applications per queue and status (and the
-- overdue ones). Without this index that is a scan of the whole submissions table, answers
-- included; with it, an index-only scan of the division's entries (docs/BENCHMARKS.md: 365 ms
-- to 47 ms at 1M applications). It still grows with the division's history: see there.
CREATE INDEX submissions_division_queue_status_idx
    ON submissions (division, queue, status) INCLUDE (due_date);
