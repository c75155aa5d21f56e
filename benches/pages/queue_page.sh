#!/usr/bin/env bash
# The staff console's queue list page at two table sizes, side by side in one run: two databases
# seeded with benches/queue_seed.sql (10k and 1M applications by default), one `madoguchi serve`
# on each, a clerk of the busiest queue signed in on each through the console's sign-in form
# (cookie and CSRF token, as a browser), and the same list pages fetched over HTTP with curl,
# alternating between the two servers so that the machine's load falls on both alike. Prints
# the median and p90 time of each page at each size and the ratio of the medians against the
# target (the large one costs at most 2x the small one). docs/BENCHMARKS.md explains it.
#
#   benches/pages/queue_page.sh PATH_TO_MADOGUCHI_BINARY
#
#   QUEUE_PAGE_ROWS="10000 1000000"  the two sizes (the first is the base)
#   QUEUE_PAGE_REQUESTS=200          requests per page and size (after QUEUE_PAGE_WARMUP)
#   QUEUE_PAGE_WARMUP=20
#   QUEUE_PAGE_TARGET=2.0            the largest acceptable ratio
#
# Needs psql and curl, and a PostgreSQL server it may create databases on (DATABASE_URL's server,
# else postgres://postgres@127.0.0.1:5432). Its databases are dropped at the end (also on Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/../.."
binary=$(realpath "${1:?usage: queue_page.sh PATH_TO_MADOGUCHI_BINARY}")
read -r small large <<<"${QUEUE_PAGE_ROWS:-10000 1000000}"
requests=${QUEUE_PAGE_REQUESTS:-200}
warmup=${QUEUE_PAGE_WARMUP:-20}
target=${QUEUE_PAGE_TARGET:-2.0}
# The busiest queue of the seed (the counter), and the pages a clerk opens most.
queue=madoguchi
pages=(
    "/staff/queues/$queue"
    "/staff/queues/$queue?status=submitted&assignee=none"
    "/staff/queues/$queue?overdue=true"
)
for tool in psql curl awk; do
    command -v "$tool" >/dev/null || { echo "queue_page.sh: $tool is needed" >&2; exit 1; }
done
say() { printf '\n== %s\n' "$*" >&2; }

url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
server="${url%%\?*}"
server="${server%/*}"
admin="$server/postgres"
work=$(mktemp -d)
pids=()
dbs=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    for db in "${dbs[@]}"; do
        psql -qX "$admin" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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
    echo "queue_page.sh: no free port found" >&2
    return 1
}

# One database seeded with `rows` applications, a clerk of the queue, and a server on it; sets
# `started` to the server's base URL (not a subshell: the cleanup must know the server and the
# database). The cookie jar is $work/<rows>.jar.
start() { # rows
    local rows=$1 db="madoguchi_queue_page_${1}_$$" port password login
    dbs+=("$db")
    psql -qX "$admin" -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db" >/dev/null
    DATABASE_URL="$server/$db" MADOGUCHI__LOG__FILTER=warn "$binary" migrate >&2
    say "seeding $rows applications into $db"
    psql -qX "$server/$db" -v ON_ERROR_STOP=1 -v rows="$rows" -f benches/queue_seed.sql >/dev/null
    login="bench-clerk-$rows"
    password="bench-password-$$-$RANDOM"
    DATABASE_URL="$server/$db" MADOGUCHI_PROFILE=development MADOGUCHI__LOG__FILTER=warn \
        MADOGUCHI_STAFF_PASSWORD="$password" \
        "$binary" staff create --login "$login" --name "職員 $rows" --division "$queue" --role clerk >&2
    port=$(free_port)
    # The development profile: its session cookies are not `Secure`, so curl sends them over
    # plain HTTP on the loopback (the production profile differs in nothing the page does).
    DATABASE_URL="$server/$db" \
    MADOGUCHI_PROFILE=development \
    MADOGUCHI__SERVER__PORT="$port" \
    MADOGUCHI__SERVER__PUBLIC_URL="http://127.0.0.1:$port" \
    MADOGUCHI__DATABASE__MIGRATE_ON_START=false \
    MADOGUCHI__EMAIL__WORKER_IN_SERVE=false \
    MADOGUCHI__LOG__FILTER=warn \
        "$binary" serve >"$work/$rows.log" 2>&1 &
    pids+=("$!")
    for _ in $(seq 1 240); do
        curl -fs -o /dev/null "http://127.0.0.1:$port/readyz" && break
        sleep 0.5
    done
    curl -fs -o /dev/null "http://127.0.0.1:$port/readyz" \
        || { echo "queue_page.sh: the server on $db did not start:" >&2; tail "$work/$rows.log" >&2; exit 1; }
    # Sign in on the console's form, as a browser does: the page's CSRF token, the same origin.
    local jar="$work/$rows.jar" csrf status
    csrf=$(curl -fs -c "$jar" -b "$jar" "http://127.0.0.1:$port/staff/sign-in" \
        | grep -o 'name="csrf" value="[^"]*"' | head -1 | cut -d'"' -f4)
    status=$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" \
        -H "Origin: http://127.0.0.1:$port" \
        --data-urlencode "csrf=$csrf" --data-urlencode "login=$login" \
        --data-urlencode "password=$password" --data-urlencode "next=/staff" \
        "http://127.0.0.1:$port/staff/sign-in")
    [[ $status == 303 ]] || { echo "queue_page.sh: sign-in on $db answered $status" >&2; exit 1; }
    started="http://127.0.0.1:$port"
}

say "starting the $small and $large servers"
start "$small"
base_small=$started
start "$large"
base_large=$started

# One timed fetch; fails the run on anything but the page itself (a 200 with its rows).
fetch() { # base rows path
    local out="$work/page.html" line
    line=$(curl -s -o "$out" -w '%{http_code} %{time_total}' -c "$work/$2.jar" -b "$work/$2.jar" "$1$3" || true)
    if [[ ${line%% *} != 200 ]] || ! grep -q 'class="console-table queue-list"' "$out"; then
        echo "queue_page.sh: $1$3 answered '${line%% *}' without the list:" >&2
        head -c 2000 "$out" >&2 || true
        tail -5 "$work/$2.log" >&2
        return 1
    fi
    echo "${line#* }"
}

# Median and p90 (seconds) of the numbers on stdin.
stats() { sort -g | awk '{ v[NR] = $1 } END { printf "%.6f %.6f\n", v[int((NR + 1) / 2)], v[int(NR * 0.9 + 0.5)] }'; }

printf '\n%-56s %12s %12s %12s %12s %8s %8s %s\n' page "median $small" "p90 $small" "median $large" "p90 $large" ratio target verdict
worst=0
for path in "${pages[@]}"; do
    : >"$work/small.times"
    : >"$work/large.times"
    for i in $(seq 1 $((warmup + requests))); do
        # Alternate which size goes first, so neither always follows the other.
        if ((i % 2)); then
            a=$(fetch "$base_small" "$small" "$path"); b=$(fetch "$base_large" "$large" "$path")
        else
            b=$(fetch "$base_large" "$large" "$path"); a=$(fetch "$base_small" "$small" "$path")
        fi
        if ((i > warmup)); then
            echo "$a" >>"$work/small.times"
            echo "$b" >>"$work/large.times"
        fi
    done
    read -r small_median small_p90 < <(stats <"$work/small.times")
    read -r large_median large_p90 < <(stats <"$work/large.times")
    ratio=$(awk "BEGIN { printf \"%.2f\", $large_median / $small_median }")
    verdict=$(awk "BEGIN { print ($ratio <= $target) ? \"met\" : \"NOT met\" }")
    worst=$(awk "BEGIN { print ($ratio > $worst) ? $ratio : $worst }")
    ms() { awk "BEGIN { printf \"%.1f ms\", $1 * 1000 }"; }
    printf '%-56s %12s %12s %12s %12s %8s %8s %s\n' "$path" "$(ms "$small_median")" "$(ms "$small_p90")" \
        "$(ms "$large_median")" "$(ms "$large_p90")" "${ratio}x" "≤${target}x" "$verdict"
done
printf '\nworst ratio %sx (target ≤%sx): %s\n' "$worst" "$target" \
    "$(awk "BEGIN { print ($worst <= $target) ? \"met\" : \"NOT met\" }")"
