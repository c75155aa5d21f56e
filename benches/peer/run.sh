#!/usr/bin/env bash
# madoguchi against Open Forms (the Django e-forms product a city would otherwise pick), side by
# side on this machine: the same one-step form, the same answers, the same client (loadgen), the
# same PostgreSQL server with the same durability, at 1, 4 and 32 clients. Not part of CI; run by
# hand. docs/BENCHMARKS.md ("Against Open Forms") explains the flows and records the figures.
#
#   benches/peer/run.sh                                   # Open Forms already installed
#   OPENFORMS_ARCHIVE=~/open-forms-3.5.6.tar.gz benches/peer/run.sh   # install it first
#
# Needs what benches/run.sh needs (cargo, psql) plus Open Forms' (benches/peer/openforms.sh):
# Python 3.12, Redis on 127.0.0.1:6379, its system libraries. Creates the databases
# madoguchi_peer_<pid> and $OPENFORMS_DB_NAME (default openforms_peer) and drops the first at the
# end; Open Forms' is rebuilt on every run.
#
#   PEER_DURATION=10        seconds measured per run
#   PEER_WARMUP=2           seconds sent first and left out
#   PEER_CLIENTS="1 4 32"   clients (applications in flight) per round
#   PEER_PROCEDURE=toshokan-yoyaku   the one-page madoguchi procedure both systems get
#   PEER_SKIP_BUILD=1       use the release binaries already built
#   PEER_KEEP_OPENFORMS=1   keep Open Forms' database and form from the last setup (its migrations
#                           take minutes on a busy machine)
#   PEER_OUT=file           also write every loadgen line there (JSON, one per line)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."

duration=${PEER_DURATION:-10}
warmup=${PEER_WARMUP:-2}
clients_list=${PEER_CLIENTS:-"1 4 32"}
procedure=${PEER_PROCEDURE:-toshokan-yoyaku}
export OPENFORMS_PORT=${OPENFORMS_PORT:-18000}
openforms_base="http://127.0.0.1:$OPENFORMS_PORT"

say() { printf '\n== %s\n' "$*" >&2; }
for tool in cargo psql awk; do
    command -v "$tool" >/dev/null || { echo "peer/run.sh: $tool is needed" >&2; exit 1; }
done

# ---- build -------------------------------------------------------------------------------------
bin="${CARGO_TARGET_DIR:-target}/release"
if [[ -z "${PEER_SKIP_BUILD:-}" ]]; then
    say "building release binaries"
    cargo build --release --bin madoguchi --bin loadgen >&2
fi
for b in madoguchi loadgen; do
    [[ -x "$bin/$b" ]] || { echo "peer/run.sh: $bin/$b is missing" >&2; exit 1; }
done

if [[ -n "${OPENFORMS_ARCHIVE:-}" ]]; then
    say "installing Open Forms from $OPENFORMS_ARCHIVE"
    "$here/openforms.sh" install "$OPENFORMS_ARCHIVE" >&2
fi

# ---- databases and servers ---------------------------------------------------------------------
url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
server="${url%%\?*}"
server="${server%/*}"
admin="$server/postgres"
db="madoguchi_peer_$$"
bench_url="$server/$db"

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    psql -q "$admin" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_ready() { # url
    for _ in $(seq 1 240); do
        if curl -fs -o /dev/null "$1"; then return 0; fi
        sleep 0.5
    done
    echo "peer/run.sh: $1 did not answer within two minutes" >&2
    return 1
}

psql -qX "$admin" -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db" >/dev/null
DATABASE_URL="$bench_url" "$bin/madoguchi" migrate >&2
port=""
for _ in $(seq 1 50); do
    # Below Linux's ephemeral range (32768 and up), where a client connection's local port
    # (pgbench, loadgen) would make the bind fail although nothing listens there.
    candidate=$((20000 + RANDOM % 12000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then port=$candidate; break; fi
done
[[ -n "$port" ]] || { echo "peer/run.sh: no free port found" >&2; exit 1; }
if (exec 3<>"/dev/tcp/127.0.0.1/$OPENFORMS_PORT") 2>/dev/null; then
    echo "peer/run.sh: something already listens on $OPENFORMS_PORT (set OPENFORMS_PORT)" >&2
    exit 1
fi
base="http://127.0.0.1:$port"
say "starting madoguchi serve on $base (shipped pool, email worker off, logs warn)"
DATABASE_URL="$bench_url" \
MADOGUCHI__SERVER__PORT="$port" \
MADOGUCHI__SERVER__PUBLIC_URL="$base" \
MADOGUCHI__DATABASE__MIGRATE_ON_START=false \
MADOGUCHI__EMAIL__WORKER_IN_SERVE=false \
MADOGUCHI__LOG__FILTER=warn \
    "$bin/madoguchi" serve >&2 &
madoguchi_pid=$!
pids+=("$madoguchi_pid")

if [[ -z "${PEER_KEEP_OPENFORMS:-}" ]]; then
    say "Open Forms: fresh database, migrations, the form $procedure"
    "$here/openforms.sh" setup "$procedure" >&2
fi
# setsid: uwsgi's master and workers get a process group of their own, stopped together below.
setsid "$here/openforms.sh" serve >/dev/null 2>&1 &
openforms_pid=$!
pids+=("$openforms_pid")
cleanup_openforms() {
    kill -- -"$openforms_pid" 2>/dev/null || true
    # uwsgi's master gives its workers up to a minute before it lets the port go (measured: about
    # 60 s after a run). A benchmark's peer need not stop gracefully: after 5 s the whole process
    # group is killed, so that a run started right after this one finds the port free.
    for _ in $(seq 1 10); do
        (exec 3<>"/dev/tcp/127.0.0.1/$OPENFORMS_PORT") 2>/dev/null || return 0
        sleep 0.5
    done
    kill -KILL -- -"$openforms_pid" 2>/dev/null || true
    for _ in $(seq 1 20); do
        (exec 3<>"/dev/tcp/127.0.0.1/$OPENFORMS_PORT") 2>/dev/null || return 0
        sleep 0.5
    done
}
trap 'cleanup_openforms; cleanup' EXIT

wait_ready "$base/api/v1/procedures/$procedure"
wait_ready "$openforms_base/api/v2/forms/$procedure"

# ---- equal durability: both servers' sessions see the same commit settings -------------------------
durability() { # database
    psql -qAtX "$server/$1" -c "SELECT current_setting('synchronous_commit') || ' / fsync ' || current_setting('fsync') || ' / wal_sync_method ' || current_setting('wal_sync_method')"
}
openforms_db=${OPENFORMS_DB_NAME:-openforms_peer}
madoguchi_durability=$(durability "$db")
openforms_durability=$(durability "$openforms_db")
overrides=$(psql -qAtX "$admin" -c "SELECT count(*) FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase WHERE (d.datname IN ('$db', '$openforms_db') OR s.setdatabase = 0) AND array_to_string(s.setconfig, ',') LIKE '%commit%'")
if [[ "$madoguchi_durability" != "$openforms_durability" || "$overrides" != 0 ]]; then
    echo "peer/run.sh: the two databases commit differently ($madoguchi_durability vs $openforms_durability)" >&2
    exit 1
fi
# Neither server changes it per session: madoguchi never sets synchronous_commit, and Open Forms'
# settings (openforms.env, its conf/base.py) pass no connection options.

# ---- CPU per application -----------------------------------------------------------------------
clk=$(getconf CLK_TCK)
# User+system ticks of a process and its reaped children (uwsgi recycles its workers every 1000
# requests; their time then moves to the master).
pid_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# The same over Open Forms' process group (the script, uwsgi's master and its workers).
group_ticks() {
    local total=0 pid
    for pid in $(pgrep -g "$1"); do total=$((total + $(pid_ticks "$pid"))); done
    echo "$total"
}

field() { grep -o "\"$2\":[-0-9.eE+]*" <<<"$1" | head -1 | cut -d: -f2; }
calc() { awk "BEGIN { printf \"%.${2:-2}f\", $1 }"; }
record() { [[ -n "${PEER_OUT:-}" ]] && echo "$1" >>"$PEER_OUT"; return 0; }

# One measured run: system flow clients -> "apps/s p50 p99 errors cpu_ms_per_app"
measure() {
    local system=$1 flow=$2 clients=$3 ticks args line before after ok
    case "$system" in
        madoguchi) ticks=(pid_ticks "$madoguchi_pid")
            args=(submit --base "$base" --procedure "$procedure") ;;
        openforms) ticks=(group_ticks "$openforms_pid")
            args=(openforms --base "$openforms_base" --procedure "$procedure") ;;
    esac
    [[ $flow == full ]] && args+=(--fetch-definition)
    before=$("${ticks[@]}")
    if ! line=$("$bin/loadgen" "${args[@]}" --concurrency "$clients" --duration "$duration" \
        --warmup "$warmup" --label "$system-$flow-$clients"); then
        echo "peer/run.sh: the $system $flow run with $clients client(s) failed (above)" >&2
        echo "0 - - - -"
        return
    fi
    after=$("${ticks[@]}")
    record "$line"
    ok=$(field "$line" ok)
    # CPU over warm-up and measured window together, per application in both.
    local all=$(( $(field "$line" requests) ))
    local total_apps
    total_apps=$(calc "$(field "$line" ok_throughput_rps) * ($duration + $warmup)" 0)
    (( total_apps > 0 )) || total_apps=1
    echo "$(calc "$(field "$line" ok_throughput_rps)" 1) $(calc "$(field "$line" p50_ms)" 1) $(calc "$(field "$line" p99_ms)" 1) $(( all - ok )) $(calc "($after - $before) * 1000 / $clk / $total_apps" 2)"
}

# Statistics from here on only (not Open Forms' migrations or madoguchi's startup).
psql -qAtX "$bench_url" -c "SELECT pg_stat_reset()" >/dev/null
psql -qAtX "$server/$openforms_db" -c "SELECT pg_stat_reset()" >/dev/null
since=$(psql -qAtX "$admin" -c "SELECT now()")
# Both servers warmed up first (uwsgi's workers load lazily; madoguchi's pool fills), untimed.
say "warm-up of both servers, not measured"
"$bin/loadgen" submit --base "$base" --procedure "$procedure" --fetch-definition \
    --concurrency 4 --duration 3 --warmup 0 >/dev/null
"$bin/loadgen" openforms --base "$openforms_base" --procedure "$procedure" --fetch-definition \
    --concurrency 4 --duration 3 --warmup 0 >/dev/null
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
results=()
for clients in $clients_list; do
    for flow in submit full; do
        say "$flow, $clients client(s): madoguchi, then Open Forms"
        m=$(measure madoguchi "$flow" "$clients")
        o=$(measure openforms "$flow" "$clients")
        results+=("$flow $clients $m $o")
    done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# What each application cost PostgreSQL over the runs (their warm-ups, sign-ins and checks included):
# commits and rows written, from the statistics views, per application stored.
sleep 1 # backends report their statistics when idle, at most a second late
writes() { # database applications_sql -> "applications commits_per_app rows_per_app"
    psql -qAtX "$server/$1" -F ' ' -c "WITH a AS ($2), w AS (SELECT sum(n_tup_ins + n_tup_upd + n_tup_del) AS r FROM pg_stat_user_tables), c AS (SELECT xact_commit AS x FROM pg_stat_database WHERE datname = current_database()) SELECT n, round(x::numeric / greatest(n, 1), 1), round(r / greatest(n, 1), 1) FROM a, w, c"
}
madoguchi_writes=$(writes "$db" "SELECT count(*) AS n FROM submissions WHERE submitted_at >= '$since'")
openforms_writes=$(writes "$openforms_db" "SELECT count(*) AS n FROM submissions_submission WHERE completed_on >= '$since'")

# ---- the table ---------------------------------------------------------------------------------
pg_version=$(psql -qAtX "$admin" -c "SHOW server_version" | cut -d' ' -f1)
printf '\nmadoguchi vs Open Forms %s — %s cores, %s, PostgreSQL %s (%s)\n' \
    "${OPENFORMS_VERSION:-3.5.6}" "$(nproc)" \
    "$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)" "$pg_version" "$madoguchi_durability"
printf 'procedure %s, %ss per run after %ss warm-up; load average %s at the start, %s at the end\n' \
    "$procedure" "$duration" "$warmup" "$load_start" "$load_end"
printf 'submit: madoguchi 1 call (POST), Open Forms 3 (create, step data, complete); full: + the definition (GET)\n'
read -r m_n m_commits m_rows <<<"$madoguchi_writes"
read -r o_n o_commits o_rows <<<"$openforms_writes"
printf 'PostgreSQL per application stored: madoguchi %s commits, %s rows written (%s applications); Open Forms %s commits, %s rows written (%s)\n' \
    "$m_commits" "$m_rows" "$m_n" "$o_commits" "$o_rows" "$o_n"
printf 'app/s: applications completed per second; cpu ms: server CPU per application (process tree, user+system)\n\n'
printf '%-7s %7s | %10s %8s %8s %4s %8s | %10s %8s %8s %4s %8s | %7s %s\n' \
    flow clients "md app/s" "p50 ms" "p99 ms" err "cpu ms" "OF app/s" "p50 ms" "p99 ms" err "cpu ms" ratio target
for row in "${results[@]}"; do
    read -r flow clients m_rps m_p50 m_p99 m_err m_cpu o_rps o_p50 o_p99 o_err o_cpu <<<"$row"
    ratio="-"
    if awk "BEGIN { exit !(\"$m_rps\" + 0 > 0 && \"$o_rps\" + 0 > 0) }"; then
        ratio=$(calc "$m_rps / $o_rps" 0)
    fi
    target=""
    if [[ $flow == full && $clients == 32 ]]; then
        verdict="NOT MET"
        [[ $ratio != - ]] && (( ratio >= 100 )) && verdict=met
        target=">= 100  $verdict"
    fi
    printf '%-7s %7s | %10s %8s %8s %4s %8s | %10s %8s %8s %4s %8s | %7s %s\n' \
        "$flow" "$clients" "$m_rps" "$m_p50" "$m_p99" "$m_err" "$m_cpu" "$o_rps" "$o_p50" "$o_p99" "$o_err" "$o_cpu" "$ratio" "$target"
done
