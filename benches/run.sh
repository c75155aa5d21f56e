#!/usr/bin/env bash
# The benchmarks of issue #9, side by side in one run, on this machine. Prints one table of the
# figures and their ratios against the targets; docs/BENCHMARKS.md explains them.
#
#   benches/run.sh
#
# Needs: cargo, psql, pgbench, and a PostgreSQL server it may create databases on: DATABASE_URL's
# server if set, else postgres://postgres@127.0.0.1:5432. Creates throwaway databases there and
# drops them at the end (also on Ctrl-C). Talks to 127.0.0.1 only. About 5 minutes by default;
# lengthen with the variables below.
#
#   BENCH_DURATION=10       seconds measured per HTTP and pgbench run
#   BENCH_WARMUP=2          seconds sent first and left out
#   BENCH_CONCURRENCY=32    requests in flight = pgbench clients
#   BENCH_POOL_SIZE=16      the server's database pool (default: the shipped default, 16)
#   BENCH_RESIDENTS=200     residents signed in (and seeded for pgbench)
#   BENCH_QUEUE_ROWS="10000 1000000"   sizes for the queue-scaling runs (first is the base; "" skips)
#   BENCH_QUEUE_SECONDS=5   seconds per queue query run
#   BENCH_SKIP_BUILD=1      use the release binaries already built
#   BENCH_OUT=file          also write the figures there, one JSON object per line
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${BENCH_DURATION:-10}
warmup=${BENCH_WARMUP:-2}
concurrency=${BENCH_CONCURRENCY:-32}
pool_size=${BENCH_POOL_SIZE:-16}
residents=${BENCH_RESIDENTS:-200}
queue_rows=${BENCH_QUEUE_ROWS-"10000 1000000"}
queue_seconds=${BENCH_QUEUE_SECONDS:-5}
threads=$(nproc 2>/dev/null || echo 2)
(( threads > concurrency )) && threads=$concurrency

for tool in cargo psql pgbench awk; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool is needed" >&2; exit 1; }
done

say() { printf '\n== %s\n' "$*" >&2; }

# ---- build -------------------------------------------------------------------------------------
bin="${CARGO_TARGET_DIR:-target}/release"
if [[ -z "${BENCH_SKIP_BUILD:-}" ]]; then
    say "building release binaries"
    cargo build --release --bin madoguchi --bin loadgen --bin baseline_http >&2
fi
for b in madoguchi loadgen baseline_http; do
    [[ -x "$bin/$b" ]] || { echo "run.sh: $bin/$b is missing (build it or unset BENCH_SKIP_BUILD)" >&2; exit 1; }
done

# ---- databases ---------------------------------------------------------------------------------
url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
query=""
[[ "$url" == *\?* ]] && query="?${url#*\?}"
server="${url%%\?*}"
server="${server%/*}"
admin="$server/postgres$query"
db="madoguchi_bench_$$"
qdb="madoguchi_bench_queue_$$"
bench_url="$server/$db$query"
queue_url="$server/$qdb$query"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    psql -q "$admin" -c "DROP DATABASE IF EXISTS $db" -c "DROP DATABASE IF EXISTS $qdb" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

psql -qX "$admin" -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db" >/dev/null
say "migrating $db"
DATABASE_URL="$bench_url" "$bin/madoguchi" migrate >&2

free_port() {
    local port
    for _ in $(seq 1 50); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
    echo "run.sh: no free port found" >&2
    return 1
}

wait_ready() { # url
    for _ in $(seq 1 120); do
        if (exec 3<>"/dev/tcp/127.0.0.1/${1##*:}") 2>/dev/null; then return 0; fi
        sleep 0.5
    done
    echo "run.sh: nothing answered on $1 within a minute" >&2
    return 1
}

# A number from loadgen's JSON line: field LINE NAME
field() { grep -o "\"$2\":[-0-9.eE+]*" <<<"$1" | head -1 | cut -d: -f2; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
record() { [[ -n "${BENCH_OUT:-}" ]] && echo "$1" >>"$BENCH_OUT"; return 0; }

# ---- the service -------------------------------------------------------------------------------
port=$(free_port)
base="http://127.0.0.1:$port"
say "starting madoguchi serve on $base (pool $pool_size, email worker off, logs warn)"
DATABASE_URL="$bench_url" \
MADOGUCHI__SERVER__PORT="$port" \
MADOGUCHI__SERVER__PUBLIC_URL="$base" \
MADOGUCHI__DATABASE__POOL_SIZE="$pool_size" \
MADOGUCHI__DATABASE__MIGRATE_ON_START=false \
MADOGUCHI__EMAIL__WORKER_IN_SERVE=false \
MADOGUCHI__LOG__FILTER=warn \
    "$bin/madoguchi" serve >&2 &
server_pid=$!
pids+=("$server_pid")
wait_ready "$base"

loadgen() { "$bin/loadgen" "$@"; }

say "warm-up: signing in $residents residents, choosing the procedure"
warm=$(loadgen submit --base "$base" --residents "$residents" --concurrency "$concurrency" \
    --duration "$warmup" --warmup 0 --label warmup)
record "$warm"

# The row the server wrote is the template for pgbench: same answers, notice and stored answer.
sample_sql="SELECT s.procedure_id, s.content_hash, s.fee_yen, s.queue, s.division,
       coalesce(s.due_date::text, 'none'), s.data::text,
       (SELECT count(*) FROM outbox o WHERE o.submission_id = s.id),
       (SELECT o.recipient FROM outbox o WHERE o.submission_id = s.id AND o.template = 'division_status'),
       (SELECT o.payload::text FROM outbox o WHERE o.submission_id = s.id AND o.template = 'division_status'),
       (SELECT k.response_body::text FROM idempotency_keys k WHERE k.response_body->>'id' = s.id::text),
       coalesce((SELECT f.facts::text FROM submission_identity_facts f WHERE f.submission_id = s.id), 'none')
FROM submissions s ORDER BY s.submitted_at DESC LIMIT 1"
IFS=$'\x1f' read -r procedure content_hash fee queue division due_date data notices recipient notice response facts \
    < <(psql -qAtX -F $'\x1f' "$bench_url" -c "$sample_sql")
if [[ "$notices" != 1 || -z "$notice" ]]; then
    echo "run.sh: expected one division notice per application, found $notices; submission.pgbench no longer matches the server" >&2
    exit 1
fi
psql -qX "$bench_url" -v ON_ERROR_STOP=1 -c \
    "INSERT INTO residents (id, provider, issuer, subject)
     SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'dev', 'pgbench', 'pgbench-' || g
     FROM generate_series(1, $residents) g" >/dev/null
# One open session per pgbench resident (family id = resident id), for the per-request check.
psql -qX "$bench_url" -v ON_ERROR_STOP=1 -c \
    "INSERT INTO refresh_tokens (id, token_hash, family_id, resident_id, assurance, expires_at)
     SELECT gen_random_uuid(), sha256(('pgbench-' || g)::bytea),
            ('00000000-0000-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid,
            ('00000000-0000-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, 'card-auth', now() + interval '1 day'
     FROM generate_series(1, $residents) g" >/dev/null

pgbench_run() { # seconds
    pgbench -n -M prepared -c "$concurrency" -j "$threads" -T "$1" -f benches/submission.pgbench \
        -D residents="$residents" -D procedure="$procedure" -D content_hash="$content_hash" \
        -D data="$data" -D fee="$fee" -D queue="$queue" -D division="$division" \
        -D due_date="$due_date" -D recipient="$recipient" -D notice="$notice" \
        -D response="$response" -D facts="$facts" -D has_facts="$([[ $facts == none ]] && echo 0 || echo 1)" \
        "$bench_url" 2>&1
}
say "(b) pgbench, the same writes: $concurrency clients, ${duration}s (after ${warmup}s warm-up)"
pgbench_run "$warmup" >/dev/null
pg_out=$(pgbench_run "$duration")
echo "$pg_out" | grep -E "tps|latency|failed" >&2
pg_tps=$(grep -o 'tps = [0-9.]*' <<<"$pg_out" | head -1 | awk '{print $3}')
pg_latency=$(grep -o 'latency average = [0-9.]*' <<<"$pg_out" | awk '{print $4}')
record "{\"mode\":\"pgbench\",\"clients\":$concurrency,\"tps\":$pg_tps,\"latency_ms\":$pg_latency}"

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status" 2>/dev/null || echo 0; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$server_pid/status" 2>/dev/null || echo 0; }

say "(a) submissions, closed loop: $concurrency in flight, ${duration}s"
max=$(loadgen submit --base "$base" --residents "$residents" --concurrency "$concurrency" \
    --duration "$duration" --warmup "$warmup" --label max)
record "$max"
max_rps=$(field "$max" ok_throughput_rps)
max_errors=$(field "$max" errors)
rss_after_max=$(rss_kb)

half=$(calc "$max_rps / 2" 0)
say "(c) submissions, open loop at half the maximum: $half req/s, ${duration}s"
open=$(loadgen submit --base "$base" --residents "$residents" --rate "$half" \
    --duration "$duration" --warmup "$warmup" --label half)
record "$open"
half_p99=$(field "$open" p99_ms)
half_errors=$(field "$open" errors)

say "(d) catalog listing vs a bare actix-web handler: $concurrency in flight, ${duration}s each"
catalog=$(loadgen catalog --base "$base" --concurrency "$concurrency" --duration "$duration" \
    --warmup "$warmup" --label catalog)
record "$catalog"
hwm_after_load=$(hwm_kb)
rss_after_load=$(rss_kb)
kill "$server_pid"
wait "$server_pid" 2>/dev/null || true

bare_port=$(free_port)
"$bin/baseline_http" --port "$bare_port" >&2 &
bare_pid=$!
pids+=("$bare_pid")
wait_ready "http://127.0.0.1:$bare_port"
bare=$(loadgen get --url "http://127.0.0.1:$bare_port/api/v1/procedures" \
    --concurrency "$concurrency" --duration "$duration" --warmup "$warmup" --label bare)
record "$bare"
kill "$bare_pid"
wait "$bare_pid" 2>/dev/null || true
catalog_rps=$(field "$catalog" ok_throughput_rps)
bare_rps=$(field "$bare" ok_throughput_rps)

# ---- queue scaling -----------------------------------------------------------------------------
if [[ -n "$queue_rows" ]]; then
    psql -qX "$admin" -v ON_ERROR_STOP=1 -c "CREATE DATABASE $qdb" >/dev/null
    DATABASE_URL="$queue_url" "$bin/madoguchi" migrate >/dev/null
fi
queue_bench() { # script → mean latency in ms
    pgbench -n -M prepared -c 1 -T "$queue_seconds" -f "benches/$1" \
        -D queue=madoguchi -D 'divisions={madoguchi}' -D status=submitted "$queue_url" 2>&1 |
        grep -o 'latency average = [0-9.]*' | awk '{print $4}'
}
queue_lines=()
first_page="" first_counts=""
for rows in $queue_rows; do
    say "(f) queue queries at $rows applications (seeding…)"
    psql -qX "$queue_url" -c "SET client_min_messages = warning" -c "TRUNCATE submissions CASCADE" >/dev/null
    psql -qX "$queue_url" -v ON_ERROR_STOP=1 -v rows="$rows" -f benches/queue_seed.sql >/dev/null
    page=$(queue_bench queue_page.pgbench)
    counts=$(queue_bench queue_counts.pgbench)
    echo "page $page ms, counts $counts ms" >&2
    record "{\"mode\":\"queue\",\"rows\":$rows,\"page_ms\":$page,\"counts_ms\":$counts}"
    [[ -z "$first_page" ]] && { first_page=$page; first_counts=$counts; first_rows=$rows; }
    queue_lines+=("$rows $page $counts")
done

# ---- the table ---------------------------------------------------------------------------------
verdict() { awk "BEGIN { exit !($1) }" && echo "met" || echo "MISSED"; }
mb() { calc "$1 / 1024" 0; }
peak_kb=$hwm_after_load
ratio_tp=$(calc "$max_rps / $pg_tps")
ratio_cat=$(calc "$catalog_rps / $bare_rps")

{
echo
echo "madoguchi benchmarks — $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(psql -qAtX "$admin" -c 'SHOW server_version' | cut -d' ' -f1)"
echo "concurrency $concurrency, pool $pool_size, ${duration}s per run after ${warmup}s warm-up; procedure $procedure ($(field "$max" answers_bytes) bytes of answers)"
echo
printf '%-44s %-28s %-22s %s\n' "figure" "measured" "target" "verdict"
printf '%-44s %-28s %-22s %s\n' "--------------------------------------------" "----------------------------" "----------------------" "-------"
printf '%-44s %-28s %-22s %s\n' "submissions/s over HTTP (closed loop)" "$(calc "$max_rps" 0) ($max_errors errors)" "" ""
printf '%-44s %-28s %-22s %s\n' "pgbench, same writes, same clients" "$(calc "$pg_tps" 0) tps" "" ""
printf '%-44s %-28s %-22s %s\n' "  ratio HTTP / pgbench" "$ratio_tp" ">= 0.60" "$(verdict "$ratio_tp >= 0.60")"
printf '%-44s %-28s %-22s %s\n' "p50 / p99 at max (closed loop)" "$(calc "$(field "$max" p50_ms)" 1) / $(calc "$(field "$max" p99_ms)" 1) ms" "" ""
printf '%-44s %-28s %-22s %s\n' "p99 at half max ($half/s open loop)" "$(calc "$half_p99" 1) ms ($half_errors errors)" "< 50 ms" "$(verdict "$half_p99 < 50")"
printf '%-44s %-28s %-22s %s\n' "catalog listing req/s" "$(calc "$catalog_rps" 0) ($(field "$catalog" body_bytes) B)" "" ""
printf '%-44s %-28s %-22s %s\n' "bare actix-web handler req/s" "$(calc "$bare_rps" 0) ($(field "$bare" body_bytes) B)" "" ""
printf '%-44s %-28s %-22s %s\n' "  ratio catalog / bare" "$ratio_cat" ">= 0.50" "$(verdict "$ratio_cat >= 0.50")"
printf '%-44s %-28s %-22s %s\n' "server peak RSS (VmHWM, whole run)" "$(mb "$peak_kb") MB" "< 150 MB" "$(verdict "$peak_kb < 150 * 1024")"
printf '%-44s %-28s %-22s %s\n' "  RSS after the max run / at the end" "$(mb "$rss_after_max") / $(mb "$rss_after_load") MB" "" ""
for line in "${queue_lines[@]}"; do
    read -r rows page counts <<<"$line"
    printf '%-44s %-28s %-22s %s\n' "queue page / counts at $rows rows" "$(calc "$page" 3) / $(calc "$counts" 2) ms" "" ""
done
if (( ${#queue_lines[@]} > 1 )); then
    read -r rows page counts <<<"${queue_lines[-1]}"
    ratio_page=$(calc "$page / $first_page")
    printf '%-44s %-28s %-22s %s\n' "  queue page ratio ${rows}/${first_rows}" "$ratio_page" "<= 2" "$(verdict "$ratio_page <= 2")"
    printf '%-44s %-28s %-22s %s\n' "  queue counts ratio ${rows}/${first_rows}" "$(calc "$counts / $first_counts")" "(no target)" ""
fi
}

# ---- usage statistics (issue #19): its own script, same binaries --------------------------------
if [[ -z "${BENCH_SKIP_STATISTICS:-}" ]]; then
    BENCH_SKIP_BUILD=1 BENCH_PROFILE=release benches/statistics.sh
fi
