#!/usr/bin/env bash
# Schemathesis against `rappel serve`, on SQLite and on PostgreSQL: every stateless check of
# every operation of the served OpenAPI document (/v1/openapi.json), with a practice's API key,
# a bounded number of examples and a fixed seed (RAPPEL_ST_SEED to explore others).
#
# Schemathesis comes from PyPI into a virtual environment under ~/.cache (made once, so reruns
# start at once). The server runs with no provider configured: emails, SMS, push messages and
# letters go to a temporary outbox, never to the network. `scripts/test.sh` runs this.
set -euo pipefail
cd "$(dirname "$0")/.."

ST_VERSION=4.32.5
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/rappel/schemathesis-$ST_VERSION"
PG_URL="${RAPPEL_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET/debug/rappel"
SEED="${RAPPEL_ST_SEED:-1}"
CONFIG="$PWD/scripts/schemathesis.toml"

if [ ! -x "$VENV/bin/st" ]; then
  echo "schemathesis.sh: installing schemathesis $ST_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "schemathesis==$ST_VERSION"
fi
cargo build --quiet -p rappel
BIN="$(cd "$(dirname "$BIN")" && pwd)/rappel"

WORK="$(mktemp -d)"
PG_DB=""
# A server runs in a subshell of `rappel` below (its `cd … && exec`), so the pid `$!` gives is
# that subshell's parent: stop the server (its child) as well as the pid itself.
stop() {
  pkill -P "$1" 2>/dev/null || true
  kill "$1" 2>/dev/null || true
}
cleanup() {
  # The servers of runs cut short.
  for pid_file in "$WORK"/*/server.pid; do
    [ -f "$pid_file" ] && stop "$(cat "$pid_file")"
  done
  if [ -n "$PG_DB" ]; then psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $PG_DB" >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

# A free loopback port, asked of the kernel.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# `rappel STORE URL PORT ARGS…` with only what it needs: no provider variable of the caller
# leaks in, so nothing is sent anywhere.
rappel() {
  (cd "$WORK/$1" && exec env -i PATH="$PATH" HOME="$WORK/$1" RAPPEL_DATABASE_URL="$2" \
    RAPPEL_LISTEN="127.0.0.1:$3" RAPPEL_OUTBOX_DIR="$WORK/$1/outbox" RUST_LOG=warn \
    "$BIN" "${@:4}")
}

# One store: a fresh database, a practice, `rappel serve` on a free port, then Schemathesis;
# its report goes to $WORK/$store/st.log. Runs in the background beside the other store: each
# has its own practice, hence its own API key and rate limit.
run_store() {
  local store="$1" url="$2" port key server status=0
  mkdir -p "$WORK/$store"
  port="$(free_port)"
  rappel "$store" "$url" "$port" migrate >/dev/null
  key="$(rappel "$store" "$url" "$port" practice create "Cabinet Schemathesis" --preset doctolib \
    | sed -n 's/.*"api_key":"\([^"]*\)".*/\1/p')"
  rappel "$store" "$url" "$port" serve --no-worker >"$WORK/$store/serve.log" 2>&1 &
  server=$!
  echo "$server" >"$WORK/$store/server.pid"
  for _ in $(seq 1 50); do
    curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    sleep 0.2
  done
  # The API key's rate limit is 50 requests a second: stay under it. Stateful checks
  # (use_after_free, ensure_resource_availability) need links between operations the
  # document does not declare; every other check runs.
  (cd "$WORK/$store" && "$VENV/bin/st" --config-file "$CONFIG" run \
    "http://127.0.0.1:$port/v1/openapi.json" \
    -H "Authorization: Bearer $key" \
    --checks all --exclude-checks use_after_free,ensure_resource_availability \
    --phases examples,coverage,fuzzing --max-examples 20 --seed "$SEED" \
    --rate-limit 45/s --workers 1 --no-color) >"$WORK/$store/st.log" 2>&1 || status=$?
  stop "$server"
  wait "$server" 2>/dev/null || true
  rm -f "$WORK/$store/server.pid"
  return "$status"
}

PG_DB="rappel_st_$$"
psql -q "$PG_URL" -c "CREATE DATABASE $PG_DB" >/dev/null
run_store sqlite "sqlite://$WORK/sqlite/rappel.db" & SQLITE_RUN=$!
run_store postgres "${PG_URL%/*}/$PG_DB" & POSTGRES_RUN=$!
FAILED=""
wait "$SQLITE_RUN" || FAILED="$FAILED sqlite"
wait "$POSTGRES_RUN" || FAILED="$FAILED postgres"
for store in sqlite postgres; do
  echo "==================== schemathesis.sh: $store ===================="
  cat "$WORK/$store/st.log"
done
if [ -n "$FAILED" ]; then
  echo "schemathesis.sh: failures on:$FAILED" >&2
  exit 1
fi
