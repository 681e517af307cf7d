#!/usr/bin/env bash
# Schemathesis against the running app: every check on every operation of
# /api/schema/, with a project's API key. Fails on any failure. CI runs it from
# .ci/run; locally:
#
#   tests/schemathesis/run.sh [extra schemathesis run options, e.g. --seed 1]
#
# It recreates the database hitl_schemathesis on DATABASE_URL's server
# (default postgres://postgres@127.0.0.1:5432/hitl), migrates and seeds it
# (fixture.py), starts gunicorn on a free 127.0.0.1 port with jobs inline (no
# Redis: nothing reaches other queues), and stops it on exit. The database is
# kept afterwards, to look at what a failure left. SCHEMATHESIS_MAX_EXAMPLES
# (default 50) bounds the test cases per operation and phase; failures are
# cached in SCHEMATHESIS_CACHE_DIR (default ~/.cache/hitl-schemathesis) and
# replayed first on the next run.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=.venv/bin
HERE=tests/schemathesis
SERVER_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/hitl}
export DATABASE_URL="${SERVER_URL%/*}/hitl_schemathesis"
unset REDIS_URL
# The throttle is tested in the suite; here it would only turn cases into 429s.
export HITL_API_THROTTLE=${HITL_API_THROTTLE:-1000000/min}
export SCHEMATHESIS_CACHE_DIR=${SCHEMATHESIS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/hitl-schemathesis}
HITL_EXPORT_DIR=$(mktemp -d)
export HITL_EXPORT_DIR
LOG=$(mktemp)
SERVER=""

cleanup() {
  if [ -n "$SERVER" ]; then
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
  fi
  rm -rf "$HITL_EXPORT_DIR" "$LOG"
}
trap cleanup EXIT

KEY=$($BIN/python $HERE/fixture.py)
PORT=$($BIN/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# No request-line limit: the app's own answers are under test, not gunicorn's
# (its default 4,094-byte limit answers generated long query strings with an HTML 414).
$BIN/gunicorn hitlplatform.wsgi --bind "127.0.0.1:$PORT" --workers 2 --timeout 60 \
  --limit-request-line 0 >"$LOG" 2>&1 &
SERVER=$!

status=0
$BIN/schemathesis --config-file "$HERE/schemathesis.toml" run "http://127.0.0.1:$PORT/api/schema/" \
  --checks all \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-50}" \
  --header "Authorization: Api-Key $KEY" \
  --wait-for-schema 30 \
  "$@" || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- server log (last 60 lines) ---"
  tail -n 60 "$LOG"
fi
exit "$status"
