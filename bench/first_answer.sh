#!/usr/bin/env bash
# Time to first answer of the README's main job: clones this checkout's HEAD
# into a temporary directory, runs ./run.sh there (install check, build of
# the vqs binary only, GloVe fetched with npm, import, serve) and polls the
# query the demo prints until it answers with "king". Prints the seconds.
# Usage: bench/first_answer.sh [port]   (needs the Debian packages and npm)
set -euo pipefail
PORT=${1:-6399}
SRC=$(cd "$(dirname "$0")/.." && pwd)
TMP=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; pkill -f "vqs serve --data build/demo/data --port $PORT" || true; rm -rf "$TMP"' EXIT
git clone -q "$SRC" "$TMP/vqs"
cd "$TMP/vqs"
t0=$(date +%s.%N)
VQS_PORT=$PORT ./run.sh >"$TMP/run.log" 2>&1 &
pid=$!
until curl -s -X POST "http://127.0.0.1:$PORT/collections/glove/points/query" \
  -H 'Content-Type: application/json' -d '{"query": 654, "limit": 10, "with_payload": true}' 2>/dev/null |
  grep -q '"king"'; do
  kill -0 "$pid" 2>/dev/null || { tail -20 "$TMP/run.log" >&2; exit 1; }
  sleep 0.5
done
t1=$(date +%s.%N)
printf 'first answer %.1f s after ./run.sh on a fresh clone (%s compile steps)\n' \
  "$(echo "$t1 - $t0" | bc)" "$(grep -c 'Building C' "$TMP/run.log")"
