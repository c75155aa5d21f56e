-- The queue list filtered to overdue (or due soon) applications, oldest first: only open
-- applications can be overdue, and at 1M rows the (queue, status, submitted_at, id) index gives
-- the two open statuses as two ranges the page had to fetch and sort whole (thousands of rows in a
-- busy queue; docs/BENCHMARKS.md, "The console's queue list page"). Walking the open ones of the
-- queue in page order stops after one page. The query names the statuses as literals so that the
-- planner can match this predicate in a generic plan too.
CREATE INDEX submissions_open_page_idx ON submissions (queue, submitted_at, id)
    WHERE status IN ('submitted', 'in_progress');
