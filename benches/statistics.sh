#!/usr/bin/env bash
# The usage statistics benchmark (issue #19), both sizes in one run: a year of history at
# 10,000 applications (the base) and at 1,000,000, then at each size
#   (1) the worker's refresh of one day's events (the real code: `madoguchi statistics refresh`,
#       timed inside the process around the refresh only), median of the rounds, and
#   (2) serving the dashboard: GET /api/v1/statistics and GET /statistics with the repo's
#       loadgen (closed loop), requests/s and p50.
# The ratios 1M / 10k are the figures: the rollups should make both independent of history.
#
#   benches/statistics.sh            (also called by benches/run.sh)
#
#   STATS_ROWS="10000 1000000"   history sizes (the first is the base)
#   STATS_DAY=1000               applications received in "a day" (and half as many decided)
#   STATS_ROUNDS=5               refresh rounds per size
#   STATS_SECONDS=5              seconds per serving run (after 1 s warm-up)
#   STATS_CONCURRENCY=8          requests in flight
#   BENCH_PROFILE=release        or debug: which build's binaries (debug figures are labelled)
#   BENCH_SKIP_BUILD=1           use the binaries already built
#   BENCH_OUT=file               also write the figures there, one JSON object per line
set -euo pipefail
cd "$(dirname "$0")/.."

rows_list=${STATS_ROWS-"10000 1000000"}
day=${STATS_DAY:-1000}
rounds=${STATS_ROUNDS:-5}
seconds=${STATS_SECONDS:-5}
concurrency=${STATS_CONCURRENCY:-8}
profile=${BENCH_PROFILE:-release}

for tool in cargo psql awk; do
    command -v "$tool" >/dev/null || { echo "statistics.sh: $tool is needed" >&2; exit 1; }
done
say() { printf '\n== %s\n' "$*" >&2; }
record() { [[ -n "${BENCH_OUT:-}" ]] && echo "$1" >>"$BENCH_OUT"; return 0; }
field() { grep -o "\"$2\":[-0-9.eE+]*" <<<"$1" | head -1 | cut -d: -f2; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }

bin="${CARGO_TARGET_DIR:-target}/$profile"
if [[ -z "${BENCH_SKIP_BUILD:-}" ]]; then
    say "building $profile binaries"
    if [[ "$profile" == release ]]; then
        cargo build --release --bin madoguchi --bin loadgen >&2
    else
        cargo build --bin madoguchi --bin loadgen >&2
    fi
fi
for b in madoguchi loadgen; do
    [[ -x "$bin/$b" ]] || { echo "statistics.sh: $bin/$b is missing" >&2; exit 1; }
done

url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
query=""
[[ "$url" == *\?* ]] && query="?${url#*\?}"
server="${url%%\?*}"
server="${server%/*}"
admin="$server/postgres$query"
db="madoguchi_bench_stats_$$"
db_url="$server/$db$query"

server_pid=""
cleanup() {
    [[ -n "$server_pid" ]] && { kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; }
    psql -q "$admin" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    local port
    for _ in $(seq 1 50); do
        # Below Linux's ephemeral range (32768 and up), where a client connection's local port
        # (pgbench, loadgen) would make the bind fail although nothing listens there.
        port=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return; fi
    done
    echo "statistics.sh: no free port" >&2; exit 1
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# One day's events: $day applications received today (city time) and half of them decided.
add_day() {
    psql -qX "$db_url" -v ON_ERROR_STOP=1 -v day="$day" >/dev/null <<'SQL'
BEGIN;
CREATE TEMP TABLE day_batch ON COMMIT DROP AS
SELECT gen_random_uuid() AS id, n FROM generate_series(1, :day) AS n;
INSERT INTO submissions (id, reference, resident_id, procedure_id, content_hash, status, data,
                         fee_yen, queue, division, submitted_at)
SELECT id, 'D' || id, '00000000-0000-7000-8000-000000000019', 'procedure-' || (n % 170),
       'statistics-bench', 'submitted', '{}', 0, 'division-' || (n % 170 % 27), 'division-' || (n % 170 % 27),
       now() - interval '5 minutes'
  FROM day_batch;
-- Receipts first, then decisions for every other one: ids in the order the service writes them.
INSERT INTO submission_events (submission_id, actor_kind, to_status, created_at)
SELECT id, 'resident', 'submitted', now() - interval '5 minutes' FROM day_batch ORDER BY n;
INSERT INTO submission_events (submission_id, actor_kind, from_status, to_status, created_at)
SELECT id, 'staff', 'in_progress', 'completed', now() - interval '3 minutes'
  FROM day_batch WHERE n % 2 = 0 ORDER BY n;
COMMIT;
SQL
}

lines=()
for rows in $rows_list; do
    psql -qX "$admin" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
    psql -qX "$admin" -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db" >/dev/null
    DATABASE_URL="$db_url" "$bin/madoguchi" migrate >/dev/null
    say "statistics at $rows applications (seeding the history…)"
    psql -qX "$db_url" -v ON_ERROR_STOP=1 -v rows="$rows" -f benches/statistics_seed.sql >/dev/null

    times=()
    events=0
    for _ in $(seq 1 "$rounds"); do
        add_day
        out=$(DATABASE_URL="$db_url" MADOGUCHI__LOG__FILTER=warn "$bin/madoguchi" statistics refresh)
        times+=("$(field "$out" ms)")
        events=$(field "$out" events)
    done
    refresh_ms=$(printf '%s\n' "${times[@]}" | median)
    echo "refresh of a day ($events events): ${times[*]} ms, median $refresh_ms" >&2

    port=$(free_port)
    base="http://127.0.0.1:$port"
    DATABASE_URL="$db_url" MADOGUCHI__SERVER__PORT="$port" MADOGUCHI__SERVER__PUBLIC_URL="$base" \
    MADOGUCHI__DATABASE__MIGRATE_ON_START=false MADOGUCHI__EMAIL__WORKER_IN_SERVE=false \
    MADOGUCHI__LOG__FILTER=warn "$bin/madoguchi" serve >&2 &
    server_pid=$!
    for _ in $(seq 1 100); do
        curl -fsS "$base/healthz" >/dev/null 2>&1 && break
        sleep 0.2
    done
    api=$("$bin/loadgen" get --url "$base/api/v1/statistics" --concurrency "$concurrency" \
        --duration "$seconds" --warmup 1 --label "statistics_api_$rows")
    page=$("$bin/loadgen" get --url "$base/statistics" --concurrency "$concurrency" \
        --duration "$seconds" --warmup 1 --label "statistics_page_$rows")
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
    record "{\"mode\":\"statistics\",\"profile\":\"$profile\",\"rows\":$rows,\"day_events\":$events,\"refresh_ms\":$refresh_ms}"
    record "$api"
    record "$page"
    lines+=("$rows $events $refresh_ms $(field "$api" ok_throughput_rps) $(field "$api" p50_ms) $(field "$page" ok_throughput_rps) $(field "$page" p50_ms)")
done

{
echo
echo "usage statistics ($profile build, $(nproc) cores, concurrency $concurrency, ${seconds}s per serving run, $rounds refresh rounds)"
printf '%-12s %-14s %-18s %-26s %s\n' "history" "day's events" "refresh (median)" "GET /api/v1/statistics" "GET /statistics"
for line in "${lines[@]}"; do
    read -r rows events refresh api_rps api_p50 page_rps page_p50 <<<"$line"
    printf '%-12s %-14s %-18s %-26s %s\n' "$rows" "$events" "$(calc "$refresh" 1) ms" \
        "$(calc "$api_rps" 0)/s, p50 $(calc "$api_p50" 1) ms" "$(calc "$page_rps" 0)/s, p50 $(calc "$page_p50" 1) ms"
done
if (( ${#lines[@]} > 1 )); then
    read -r r0 _ f0 a0 _ p0 _ <<<"${lines[0]}"
    read -r r1 _ f1 a1 _ p1 _ <<<"${lines[-1]}"
    echo "ratios ${r1}/${r0}: refresh time $(calc "$f1 / $f0"), API req/s $(calc "$a1 / $a0"), page req/s $(calc "$p1 / $p0")"
fi
}
