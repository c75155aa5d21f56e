#!/usr/bin/env bash
# The portal in a real browser: Playwright driving Debian's Chromium against the real
# `madoguchi serve` (development profile, a throwaway database, the SMTP fixture), with axe-core.
#
#   tests/browser/run.sh PATH_TO_MADOGUCHI_BINARY [pytest arguments…]
#
# Needs a PostgreSQL on 127.0.0.1:5432 (user postgres), /usr/bin/chromium, and a Python with
# tests/browser/requirements.txt and tests/fixtures/smtp/requirements.txt installed: PYTHON, else
# `python3` (.ci/run makes that virtual environment under .cache/ci).
set -euo pipefail
binary=$(realpath "${1:?usage: run.sh PATH_TO_MADOGUCHI_BINARY [pytest arguments…]}")
shift
python=${PYTHON:-python3}
[[ $python == */* ]] && python=$(realpath -s "$python")   # still right after the cd; -s: a venv's python is a symlink
cd "$(dirname "$0")"
MADOGUCHI_BINARY="$binary" timeout 1200 "$python" -m pytest "$@"
