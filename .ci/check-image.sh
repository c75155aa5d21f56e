#!/usr/bin/env bash
# Checks the Docker recipe as far as a machine without a Docker daemon allows:
#   1. docker-compose.yml parses and wires the app to its database and mail catcher;
#   2. every COPY source of the Dockerfile exists and is not excluded by .dockerignore, and the
#      build image's Rust is at least Cargo.toml's rust-version;
#   3. the image's command runs outside Docker the way the image runs it: the final stage's
#      files (config, forms) and data directories (made by its own RUN line) in a copy of /app,
#      as an unprivileged user, with the image's ENV (the production profile). Without the
#      production secrets it must refuse to start; with them it must start, answer /readyz, and
#      its data directories must be writable by that user.
#
#   .ci/check-image.sh PATH_TO_MADOGUCHI_BINARY
#
# Needs python3 with PyYAML (PYTHON=… to choose one; .ci/run passes its schemathesis venv's),
# curl, and PostgreSQL on 127.0.0.1:5432 (user postgres).
set -euo pipefail
cd "$(dirname "$0")/.."
binary=$(realpath "${1:?usage: .ci/check-image.sh PATH_TO_MADOGUCHI_BINARY}")
python=${PYTHON:-python3}

echo "check-image: docker-compose.yml"
"$python" - docker-compose.yml <<'EOF'
import sys
import yaml

compose = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
services = compose["services"]
app, db, mail = services["app"], services["db"], services["mail"]
env = {key: str(value) for key, value in app["environment"].items()}
problems = []
for name in ("db", "mail"):
    if name not in app.get("depends_on", {}):
        problems.append(f"app does not wait for {name}")
db_env = db["environment"]
want = f"postgres://{db_env['POSTGRES_USER']}:{db_env['POSTGRES_PASSWORD']}@db:5432/{db_env['POSTGRES_DB']}"
if env.get("DATABASE_URL") != want:
    problems.append(f"app's DATABASE_URL is not the db service's ({want})")
if env.get("MADOGUCHI__EMAIL__TRANSPORT") != "smtp" or env.get("MADOGUCHI__EMAIL__SMTP_HOST") != "mail":
    problems.append("app does not send mail through the mail service")
smtp_port = env.get("MADOGUCHI__EMAIL__SMTP_PORT")
if not any(str(port).split(":")[-1] == smtp_port for port in mail.get("ports", [])):
    problems.append(f"the mail service does not publish the SMTP port {smtp_port}")
if not any(str(volume).endswith(":/app/.data") for volume in app.get("volumes", [])):
    problems.append("app's /app/.data is not a volume")
for volume in app.get("volumes", []) + db.get("volumes", []):
    name = str(volume).split(":")[0]
    if not name.startswith((".", "/")) and name not in (compose.get("volumes") or {}):
        problems.append(f"volume {name} is not declared")
if env.get("MADOGUCHI_PROFILE") == "development" and "DEVELOPMENT profile" not in open(sys.argv[1], encoding="utf-8").read():
    problems.append("the development profile is used without saying so at the top")
if problems:
    sys.exit("docker-compose.yml: " + "; ".join(problems))
EOF

echo "check-image: Dockerfile"
fail() { echo "Dockerfile: $*" >&2; exit 1; }
# COPY lines without --from: every source but the last word (the destination).
grep -E '^COPY ' Dockerfile | grep -v -- '--from' | while read -r _ words; do
  read -ra parts <<<"$words"
  for source in "${parts[@]:0:${#parts[@]}-1}"; do
    [ -e "$source" ] || fail "COPY $source: no such file in the project"
    if grep -qxF -e "$source" -e "/$source" .dockerignore 2>/dev/null; then
      fail "COPY $source: excluded by .dockerignore"
    fi
  done
done
image_rust=$(sed -nE 's/^FROM rust:([0-9]+\.[0-9]+).*/\1/p' Dockerfile | head -n1)
crate_rust=$(sed -nE 's/^rust-version = "([0-9]+\.[0-9]+).*"/\1/p' Cargo.toml)
[ "$(printf '%s\n%s\n' "$crate_rust" "$image_rust" | sort -V | head -n1)" = "$crate_rust" ] \
  || fail "FROM rust:$image_rust is older than rust-version $crate_rust"

echo "check-image: the image's command, outside Docker"
work=$(mktemp -d)
chmod 755 "$work"
database="madoguchi_image_check_$$"
cleanup() {
  [ -n "${server:-}" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
app="$work/app"   # the image's WORKDIR /app
mkdir -p "$app" "$work/bin"
install -m 755 "$binary" "$work/bin/madoguchi"
# The final stage (after the last FROM): its COPYs from the project and its RUN lines for /app.
final=$(awk '/^FROM /{stage=""} {stage=stage $0 "\n"} END{printf "%s", stage}' Dockerfile)
grep -E '^COPY ' <<<"$final" | grep -v -- '--from' | while read -r _ source destination; do
  cp -R "$source" "$app/${destination#./}"
done
if [ "$(id -u)" = 0 ]; then
  user=nobody
  group=$(id -gn nobody)
  as_user=(setpriv --reuid "$user" --regid "$group" --init-groups --)
else
  user=$(id -un)
  group=$(id -gn)
  as_user=()
fi
grep -E '^RUN .*/app/' <<<"$final" | sed -E 's/^RUN //' | while read -r line; do
  line=${line//\/app\//$app/}
  line=${line//madoguchi:madoguchi/$user:$group}
  bash -c "$line"
done
# The image's ENV (KEY=value lines) and CMD (a JSON array).
mapfile -t image_env < <(sed -nE 's/^ENV ([A-Z_]+=.*)/\1/p' <<<"$final")
read -ra command < <("$python" -c 'import json,sys; print(" ".join(json.loads(sys.argv[1])))' \
  "$(sed -nE 's/^CMD (\[.*\])/\1/p' <<<"$final")")
[ "${command[0]}" = madoguchi ] || fail "CMD does not run madoguchi"
# run_image TIMEOUT [KEY=value…]: the image's command with the image's environment plus those.
# It replaces the shell it runs in: call it in a subshell or in the background (then $! is it).
run_image() {
  local limit=$1
  shift
  cd "$app" && exec timeout "$limit" "${as_user[@]}" env -i PATH="$work/bin:/usr/bin:/bin" HOME="$app" \
    "${image_env[@]}" "$@" "${command[@]}"
}

# Without the production secrets: it must refuse, saying what is missing.
if output=$(run_image 20 2>&1); then
  echo "$output" >&2
  fail "the image started without the production settings"
fi
grep -q "production: set DATABASE_URL" <<<"$output" || { echo "$output" >&2; fail "the refusal does not say what is missing"; }

# With them: it must start and be ready.
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $database"
port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
secrets=(
  DATABASE_URL="postgres://postgres@127.0.0.1:5432/$database"
  MADOGUCHI__SERVER__PORT="$port"
  MADOGUCHI__SERVER__PUBLIC_URL=https://madoguchi.example.lg.jp
  MADOGUCHI__IDENTITY__SESSION__SIGNING_KEYS="k1:$(head -c 32 /dev/urandom | base64)"
  MADOGUCHI__SUBMISSIONS__SEALING_KEYS="k1:$(head -c 32 /dev/urandom | base64)"
  MADOGUCHI__EMAIL__SMTP_HOST=127.0.0.1
  MADOGUCHI__EMAIL__SMTP_TLS=starttls
)
# The production profile does not migrate on start: the deployment runs `madoguchi migrate`.
(cd "$app" && "${as_user[@]}" env -i PATH="$work/bin:/usr/bin:/bin" "${image_env[@]}" "${secrets[@]}" \
  madoguchi migrate) >/dev/null
log="$work/serve.log"
run_image 120 "${secrets[@]}" >"$log" 2>&1 &
server=$!
for _ in $(seq 1 150); do
  curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
  kill -0 "$server" 2>/dev/null || { cat "$log" >&2; fail "the image's command exited"; }
  sleep 0.2
done
curl -sf "http://127.0.0.1:$port/readyz" >/dev/null || { cat "$log" >&2; fail "not ready within 30 s"; }
for dir in $(grep -oE "$app/\.data/[a-z]+" <<<"$(grep -E '^RUN .*/app/' <<<"$final" | sed "s#/app/#$app/#g")" | sort -u); do
  "${as_user[@]}" test -w "$dir" || fail "$dir is not writable by the service user"
done
echo "check-image: compose file, Dockerfile and the image's command are fine"
