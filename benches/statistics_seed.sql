-- Usage statistics benchmark (issue #19): a history of :rows applications over the past year,
-- on a scratch database migrated to the current schema (never a real one).
--
-- Applications: one receipt event each, 90 % decided (completed) 0–29 days later. The history's
-- rollups are then written by SQL in one statement (the worker would take minutes for 1M rows on
-- a debug build) and the watermark moved past them; the timed part of the benchmark is the
-- worker's own refresh of the day's events added afterwards (benches/statistics.sh).
\set ON_ERROR_STOP on
BEGIN;
INSERT INTO residents (id, provider, issuer, subject)
VALUES ('00000000-0000-7000-8000-000000000019', 'dev', 'dev', 'statistics-bench')
ON CONFLICT DO NOTHING;
INSERT INTO procedure_versions (content_hash, procedure_id, version, definition)
VALUES ('statistics-bench', 'bench-procedure', 1, '{}')
ON CONFLICT DO NOTHING;
INSERT INTO submissions (id, reference, resident_id, procedure_id, content_hash, status, data,
                         fee_yen, queue, division, submitted_at, decided_at, due_date)
SELECT gen_random_uuid(), 'S' || n, '00000000-0000-7000-8000-000000000019',
       'procedure-' || (n % 170), 'statistics-bench',
       CASE WHEN n % 10 = 0 THEN 'submitted' ELSE 'completed' END,
       '{}', 0, 'division-' || (n % 170 % 27), 'division-' || (n % 170 % 27),
       now() - interval '360 days' + (n::double precision / :rows) * interval '330 days',
       CASE WHEN n % 10 <> 0 THEN now() - interval '360 days' + (n::double precision / :rows) * interval '330 days'
                                  + (n % 30) * interval '1 day' END,
       (now() - interval '360 days' + (n::double precision / :rows) * interval '330 days')::date + 14
  FROM generate_series(1, :rows) AS n;
INSERT INTO submission_events (submission_id, actor_kind, to_status, created_at)
SELECT id, 'resident', 'submitted', submitted_at FROM submissions WHERE content_hash = 'statistics-bench';
INSERT INTO submission_events (submission_id, actor_kind, from_status, to_status, created_at)
SELECT id, 'staff', 'in_progress', 'completed', decided_at FROM submissions
 WHERE content_hash = 'statistics-bench' AND decided_at IS NOT NULL;

WITH received AS (
    SELECT date_trunc('month', submitted_at)::date AS month, procedure_id, division, count(*) AS n
      FROM submissions WHERE content_hash = 'statistics-bench' GROUP BY 1, 2, 3),
decided AS (
    SELECT date_trunc('month', decided_at)::date AS month, procedure_id, division,
           (decided_at::date - submitted_at::date) * 5 / 7 AS b, count(*) AS n
      FROM submissions WHERE content_hash = 'statistics-bench' AND decided_at IS NOT NULL
     GROUP BY 1, 2, 3, 4),
histograms AS (
    SELECT k.month, k.procedure_id, k.division, sum(d.n) AS completed,
           array_agg(coalesce(d.n, 0) ORDER BY s.b) AS days
      FROM (SELECT DISTINCT month, procedure_id, division FROM decided) AS k
     CROSS JOIN generate_series(0, 29) AS s(b)
      LEFT JOIN decided AS d
        ON (d.month, d.procedure_id, d.division, d.b) = (k.month, k.procedure_id, k.division, s.b)
     GROUP BY 1, 2, 3)
INSERT INTO statistics_monthly (month, procedure_id, division, received, completed, processing_days)
SELECT month, procedure_id, division, coalesce(r.n, 0), coalesce(h.completed, 0), coalesce(h.days, '{}')
  FROM received AS r FULL JOIN histograms AS h USING (month, procedure_id, division);
UPDATE statistics_watermark SET last_event_id = (SELECT max(id) FROM submission_events);
COMMIT;
VACUUM ANALYZE submissions;
VACUUM ANALYZE submission_events;
VACUUM ANALYZE statistics_monthly;
