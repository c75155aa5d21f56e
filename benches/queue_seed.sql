-- Fills `submissions` with :rows applications for the queue-scaling benchmark (benches/run.sh):
--   psql -v rows=1000000 -v per_day=100 -f benches/queue_seed.sql
-- Like a city's history: the same :per_day applications arrive every day, so more rows means
-- more years (at 100 a day, 10k rows are the last 100 days and 1M rows 27 years), never a busier
-- present. Open work lives in the newest 100 days only: most of the last two months, a few
-- stragglers from the month before; everything older is decided. So the open work is the same
-- rows at 10k and at 1M and only the history grows, which is the question the benchmark asks.
-- 27 divisions, the busy ones (counter, tax, insurance) taking most; a day care queue inside
-- kosodate; ~1 KB of answers each, as real rows carry. Deterministic (no random()): row g
-- (1 = newest) is the same application whatever :rows is.
\set ON_ERROR_STOP on
INSERT INTO residents (id, provider, issuer, subject)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'dev', 'dev', 'seed-' || g
FROM generate_series(1, 1000) g ON CONFLICT DO NOTHING;
INSERT INTO procedure_versions (content_hash, procedure_id, version, definition)
VALUES ('seed', 'seed-procedure', 1, '{}') ON CONFLICT DO NOTHING;
CREATE TEMP TABLE divs (n int, division text);
INSERT INTO divs SELECT row_number() over () - 1, d FROM unnest(ARRAY['madoguchi','zeimu','hoken-nenkin','kosodate','kenko','choju','shogai-fukushi','seikatsu-fukushi','kankyo','gakko-kyoiku','toshokan','shogai-gakushu','kanko-shoko','sports','bousai','shobo-yobo','doboku','toshi-keikaku','jogesuido','kenchiku-jutaku','keiyaku-kanzai','nogyo-iinkai','norin-suisan','shokuin','somu','hisho-koho','senkyo']) d;
INSERT INTO submissions (id, reference, resident_id, procedure_id, content_hash, status, data, fee_yen,
                         queue, division, submitted_at, due_date, updated_at)
SELECT md5(g::text)::uuid,
       'S' || lpad(g::text, 10, '0'),
       ('00000000-0000-4000-8000-' || lpad(to_hex(1 + g % 1000), 12, '0'))::uuid,
       'seed-procedure', 'seed', s.status,
       jsonb_build_object('applicant', jsonb_build_object('name', repeat('あ', 20), 'address', repeat('い', 60)),
                          'notes', repeat('x', 700), 'n', g),
       300,
       CASE WHEN d.division = 'kosodate' AND g % 3 = 0 THEN 'kosodate-hoiku' ELSE d.division END,
       d.division, t.at, (t.at + interval '14 days')::date, t.at
FROM generate_series(1, :rows) g
-- Busy divisions first: squaring skews the pick towards the counter (madoguchi), tax, insurance.
CROSS JOIN LATERAL (SELECT floor(27 * power(((g::bigint * 7919) % 10007) / 10007.0, 2))::int AS n) pick
JOIN divs d ON d.n = pick.n
-- :per_day a day, newest first: row g arrived (g - 1) / :per_day days ago.
CROSS JOIN LATERAL (
  SELECT now() - ((g - 1)::float8 / :per_day) * interval '1 day' - interval '1 minute' AS at,
         (g - 1)::float8 / :per_day AS age_days,
         ((g::bigint * 104729) % 100) AS r
) t
CROSS JOIN LATERAL (
  SELECT CASE
    WHEN t.age_days < 60 THEN
      CASE WHEN r < 45 THEN 'submitted' WHEN r < 75 THEN 'in_progress' WHEN r < 82 THEN 'returned'
           WHEN r < 95 THEN 'completed' WHEN r < 98 THEN 'rejected' ELSE 'withdrawn' END
    WHEN t.age_days < 100 THEN
      CASE WHEN r < 1 THEN 'submitted' WHEN r < 2 THEN 'in_progress' WHEN r < 3 THEN 'returned'
           WHEN r < 92 THEN 'completed' WHEN r < 96 THEN 'rejected' ELSE 'withdrawn' END
    ELSE
      CASE WHEN r < 94 THEN 'completed' WHEN r < 97 THEN 'rejected' ELSE 'withdrawn' END
  END AS status
) s;
VACUUM ANALYZE submissions;
