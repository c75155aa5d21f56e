#!/usr/bin/env bash
# Open Forms, the peer of benches/peer/run.sh: installed from its source archive, set up on the
# local PostgreSQL (its own database) and Redis, and served as its Docker image serves it.
#
#   benches/peer/openforms.sh install open-forms-3.5.6.tar.gz   # checks the sha256, makes a venv
#   benches/peer/openforms.sh setup [procedure]                 # database, migrations, the form
#   benches/peer/openforms.sh serve                             # uwsgi on $OPENFORMS_PORT
#
# Nothing of Open Forms is kept in this repository. The archive is the release tag's source, which
# this machine cannot download itself (no registry carries it: PyPI's and npm's `open-forms` are
# other projects or absent); fetch it where you have GitHub:
#
#   curl -LO https://github.com/open-formulieren/open-forms/archive/refs/tags/3.5.6.tar.gz
#
# The figures in docs/BENCHMARKS.md were taken with tag 3.5.6 (commit 1ff353ed07dc…, 2026-07-27,
# the newest stable release at the time). GitHub builds its archives on the fly, so their bytes
# (and sha256) are not guaranteed stable; the script therefore checks the *content*: the sha256
# of `sha256sum` over every file, sorted by path (OPENFORMS_TREE_SHA256 below), whatever archive
# or checkout the files came from. A directory (a git checkout of the tag) is accepted too.
#
# Needs: Python 3.12 (OPENFORMS_PYTHON), PostgreSQL reachable as in openforms.env, Redis on
# 127.0.0.1:6379, and the system libraries of Open Forms' Dockerfile (Debian: gdal-bin libmagic1
# libxmlsec1-openssl libxmlsec1-dev libxml2-dev libxslt1-dev libpango-1.0-0 libpangoft2-1.0-0
# libpq-dev pkg-config build-essential).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
OPENFORMS_VERSION="${OPENFORMS_VERSION:-3.5.6}"
OPENFORMS_TREE_SHA256="${OPENFORMS_TREE_SHA256:-4911c621bf28e5dacd82b00523f1fe5bb2ca69d29b54c9f29a0254c1fae3d383}"
OPENFORMS_DIR="${OPENFORMS_DIR:-$HOME/.cache/madoguchi-peer/open-forms-$OPENFORMS_VERSION}"
OPENFORMS_PYTHON="${OPENFORMS_PYTHON:-python3.12}"
export OPENFORMS_PORT="${OPENFORMS_PORT:-18000}"
venv="$OPENFORMS_DIR/.venv"

die() { echo "openforms.sh: $*" >&2; exit 1; }

tree_sha256() {
    # Every regular file, by path relative to the tree, with its sha256: independent of the
    # archive format, its compression and its timestamps.
    (cd "$1" && find . -type f ! -path './.venv/*' ! -name '*.pyc' -print0 \
        | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
}

install() {
    local source="${1:-}"
    [ -n "$source" ] || die "install needs the source archive (.tar.gz) or a checkout of tag $OPENFORMS_VERSION"
    local staging tree sum
    staging="$(mktemp -d)"
    trap 'rm -rf "$staging"' RETURN
    if [ -d "$source" ]; then
        # A checkout: its committed files only.
        git -C "$source" archive --format=tar HEAD | tar xf - -C "$staging"
        tree="$staging"
    else
        tar xzf "$source" -C "$staging"
        # GitHub's archives have one top directory, open-forms-<tag>/.
        tree="$(find "$staging" -mindepth 1 -maxdepth 1 -type d)"
        [ "$(find "$staging" -mindepth 1 -maxdepth 1 | wc -l)" = 1 ] || die "$source has more than one top directory"
    fi
    sum="$(tree_sha256 "$tree")"
    if [ "$sum" != "$OPENFORMS_TREE_SHA256" ]; then
        die "the source's content sha256 is $sum, not $OPENFORMS_TREE_SHA256 (Open Forms $OPENFORMS_VERSION); set OPENFORMS_TREE_SHA256 to use another release on purpose"
    fi
    mkdir -p "$(dirname "$OPENFORMS_DIR")"
    rm -rf "$OPENFORMS_DIR"
    cp -a "$tree" "$OPENFORMS_DIR"
    "$OPENFORMS_PYTHON" -m venv "$venv"
    # uv, as Open Forms' Dockerfile uses, resolves its pinned requirements in a minute or two.
    "$venv/bin/pip" install --quiet uv==0.9.5
    VIRTUAL_ENV="$venv" "$venv/bin/uv" pip install --python "$venv/bin/python" \
        -r "$OPENFORMS_DIR/requirements/base.txt"
    # The lxml and xmlsec wheels bundle different libxml2 versions, and importing the app then
    # fails ("xmlsec.InternalError: (-1, 'lxml & xmlsec libxml2 library version mismatch')");
    # both built from source link the system's libxml2 (libxml2-dev, libxmlsec1-dev).
    VIRTUAL_ENV="$venv" "$venv/bin/uv" pip install --python "$venv/bin/python" \
        --no-binary lxml --no-binary xmlsec --reinstall-package lxml --reinstall-package xmlsec \
        "$(grep '^lxml==' "$OPENFORMS_DIR/requirements/base.txt")" \
        "$(grep '^xmlsec==' "$OPENFORMS_DIR/requirements/base.txt")"
    echo "Open Forms $OPENFORMS_VERSION installed in $OPENFORMS_DIR"
}

with_env() {
    [ -x "$venv/bin/python" ] || die "not installed; run: $0 install <archive>"
    # shellcheck source=benches/peer/openforms.env
    . "$here/openforms.env"
    cd "$OPENFORMS_DIR"
    "$@"
}

setup() {
    local procedure="${1:-toshokan-yoyaku}"
    local definition
    definition="$(find "$repo/forms" -name "$procedure.yaml" | head -n 1)"
    [ -n "$definition" ] || die "no procedure $procedure in $repo/forms"
    with_env bash -ec '
        psql -qh "$DB_HOST" -p "$DB_PORT" -U "$DB_USER" -d postgres \
            -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" -c "CREATE DATABASE $DB_NAME"
        # Its Redis databases too: sessions, and the Celery tasks queued by earlier runs (no
        # worker runs here, as no email worker runs in madoguchi'"'"'s).
        "$0/bin/python" -c "
import os, redis
for url in (os.environ[\"CACHE_DEFAULT\"], os.environ[\"CACHE_AXES\"], os.environ[\"CACHE_PORTALOCKER\"]):
    redis.Redis.from_url(\"redis://\" + url).flushdb()
redis.Redis.from_url(os.environ[\"CELERY_BROKER_URL\"]).flushdb()
"
        "$0/bin/python" src/manage.py migrate --no-input >/dev/null
        MADOGUCHI_DEFINITION="$1" "$0/bin/python" src/manage.py shell <"$2" | grep -E "^[0-9a-f-]{36}$"
    ' "$venv" "$definition" "$here/openforms_form.py"
}

serve() {
    # docker_start.sh's uwsgi, same processes/threads defaults (4 × 1), minus the JSON log
    # routing of its uwsgi.ini; request logs off (madoguchi's run logs at warn only).
    with_env env PATH="$venv/bin:$PATH" uwsgi \
        --strict \
        --http "127.0.0.1:$OPENFORMS_PORT" \
        --http-keepalive \
        --module openforms.wsgi:application \
        --chdir src \
        --processes "${UWSGI_PROCESSES:-4}" \
        --threads "${UWSGI_THREADS:-1}" \
        --max-requests "${UWSGI_MAX_REQUESTS:-1000}" \
        --enable-threads \
        --master \
        --single-interpreter \
        --die-on-term \
        --optimize 1 \
        --need-app \
        --post-buffering=8192 \
        --buffer-size=65535 \
        --disable-logging
}

case "${1:-}" in
    install) shift; install "$@" ;;
    setup) shift; setup "$@" ;;
    serve) shift; serve "$@" ;;
    tree-sha256) shift; tree_sha256 "${1:?a directory}" ;;
    *) sed -n '2,8p' "$0"; exit 2 ;;
esac
