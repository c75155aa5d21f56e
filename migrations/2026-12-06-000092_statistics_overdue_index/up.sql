-- The statistics worker's overdue snapshot (src/statistics/rollup.rs) counts open applications
-- past their due date per procedure and division on every pass. Through this covering partial
-- index it reads only the open work's index entries (an index-only scan), never the rows of
-- the decided history around them (docs/BENCHMARKS.md: 482 ms → 57 ms at 1M applications).
CREATE INDEX submissions_overdue_idx ON submissions (due_date) INCLUDE (procedure_id, division)
    WHERE status IN ('submitted', 'in_progress');
