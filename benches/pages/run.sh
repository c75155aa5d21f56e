#!/usr/bin/env bash
# The portal's page weight and load time on emulated 3G, and a page's render time against the
# JSON definition endpoint (docs/BENCHMARKS.md, "Pages"). Run by hand:
#
#   benches/pages/run.sh PATH_TO_MADOGUCHI_BINARY [--seconds N] [--out figures.json]
#
# Needs what the browser tests need (tests/browser/run.sh: PostgreSQL on 127.0.0.1:5432,
# /usr/bin/chromium, a Python with their requirements as PYTHON) and `wrk` (apt-get install wrk).
set -euo pipefail
binary=$(realpath "${1:?usage: run.sh PATH_TO_MADOGUCHI_BINARY [--seconds N] [--out FILE]}")
shift
command -v wrk >/dev/null || { echo "run.sh: wrk is needed (apt-get install wrk)" >&2; exit 1; }
timeout 900 "${PYTHON:-python3}" "$(dirname "$0")/measure.py" "$binary" "$@"
