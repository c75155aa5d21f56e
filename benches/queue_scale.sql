-- How staff queue queries scale with the size of `submissions` (issue #7).
--
-- Run against a scratch database migrated to the current schema (never a real one: it inserts
-- synthetic rows), with the row count as a variable, e.g.
--   createdb -h 127.0.0.1 -U postgres queue_bench
--   diesel migration run --database-url postgres://postgres@127.0.0.1/queue_bench
--   psql -h 127.0.0.1 -U postgres queue_bench -v rows=1000000 -f benches/queue_scale.sql
-- It prints EXPLAIN ANALYZE of the exact statements the service runs: a queue page (first and
-- a deep page via the keyset cursor, with and without a status filter), and the grouped counts of
-- GET /staff/queues. Synthetic data: 27 divisions, 90 % decided, 10 % open work.
\set ON_ERROR_STOP on
\timing on

BEGIN;
INSERT INTO residents (id, provider, issuer, subject)
VALUES ('00000000-0000-7000-8000-000000000001', 'dev', 'dev', 'bench')
ON CONFLICT DO NOTHING;
INSERT INTO procedure_versions (content_hash, procedure_id, version, definition)
VALUES ('bench', 'bench-procedure', 1, '{}')
ON CONFLICT DO NOTHING;
DELETE FROM submissions WHERE content_hash = 'bench';
INSERT INTO submissions (id, reference, resident_id, procedure_id, content_hash, status, data,
                         fee_yen, queue, division, submitted_at, due_date)
SELECT gen_random_uuid(), 'B' || n, '00000000-0000-7000-8000-000000000001',
       'procedure-' || (n % 170), 'bench',
       CASE WHEN n % 10 = 0 THEN (ARRAY['submitted', 'in_progress', 'returned'])[1 + n / 270 % 3]
            ELSE (ARRAY['completed', 'rejected'])[1 + n % 2] END,
       '{}', 0, 'division-' || (n % 27), 'division-' || (n % 27),
       now() - (:rows - n) * interval '30 seconds', current_date + (n % 30) - 15
  FROM generate_series(1, :rows) AS n;
COMMIT;
-- As autovacuum would have by then: the visibility map lets the counts read the index only.
VACUUM ANALYZE submissions;

\echo 'queue page, first page (limit 50)'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT id, reference, procedure_id, status, submitted_at, due_date, assignee_id
  FROM submissions
 WHERE queue = 'division-5' AND division = ANY(ARRAY['division-5', 'division-6'])
 ORDER BY submitted_at, id LIMIT 51;

\echo 'queue page, deep page through the keyset cursor'
SELECT submitted_at AS cursor_at, id AS cursor_id FROM submissions
 WHERE queue = 'division-5' ORDER BY submitted_at, id OFFSET (:rows / 27 * 9 / 10) LIMIT 1 \gset
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT id, reference, procedure_id, status, submitted_at, due_date, assignee_id
  FROM submissions
 WHERE queue = 'division-5' AND division = ANY(ARRAY['division-5', 'division-6'])
   AND (submitted_at, id) > (:'cursor_at', :'cursor_id')
 ORDER BY submitted_at, id LIMIT 51;

\echo 'queue page, status = submitted'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT id, reference, procedure_id, status, submitted_at, due_date, assignee_id
  FROM submissions
 WHERE queue = 'division-5' AND division = ANY(ARRAY['division-5', 'division-6'])
   AND status = 'submitted'
 ORDER BY submitted_at, id LIMIT 51;

\echo 'queue counts (GET /staff/queues) for a member of two divisions'
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
SELECT queue, division,
       count(*) FILTER (WHERE status = 'submitted') AS new,
       count(*) FILTER (WHERE status = 'in_progress') AS in_progress,
       count(*) FILTER (WHERE status = 'returned') AS returned,
       count(*) FILTER (WHERE status IN ('submitted', 'in_progress') AND due_date < current_date) AS overdue,
       count(*) FILTER (WHERE status IN ('submitted', 'in_progress')
                          AND due_date >= current_date AND due_date <= current_date + 3) AS due_soon
  FROM submissions
 WHERE division = ANY(ARRAY['division-5', 'division-6'])
   AND status IN ('submitted', 'in_progress', 'returned')
 GROUP BY queue, division;

\echo 'claim: the oldest unclaimed item (rolled back)'
BEGIN;
EXPLAIN (ANALYZE, BUFFERS, COSTS OFF)
UPDATE submissions SET status = 'in_progress', updated_at = now()
 WHERE status = 'submitted' AND assignee_id IS NULL
   AND id = (SELECT id FROM submissions
              WHERE queue = 'division-5' AND division = ANY(ARRAY['division-5'])
                AND status = 'submitted' AND assignee_id IS NULL
              ORDER BY submitted_at, id FOR UPDATE SKIP LOCKED LIMIT 1);
ROLLBACK;
