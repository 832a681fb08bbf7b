#!/usr/bin/env bash
# HTTP service vs in-process search on a 1M x 768 collection (issue 6 figures).
#   bench/run_http.sh [DIR] [N]      (defaults: /tmp/vqs_http_bench, 1000000)
# 1. bench_store builds collection "bench" (PQ96x8 codes, float32 re-scoring
#    from disk) with N synthetic 768-d points, unless DIR already holds it;
# 2. bench_search_one: in-process single-query searches (k = 10) from 1, 8
#    and 64 threads;
# 3. vqs serve on 127.0.0.1 and wrk posting the same queries as JSON and as
#    binary float32 bodies at 1, 8 and 64 connections (wrk -t2, 15 s each).
# Prints one Markdown table. Needs wrk (Debian package).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-/tmp/vqs_http_bench}
N=${2:-1000000}
SECS=${SECS:-15}
PORT=${PORT:-6391}
B=build/bench
if [[ ! -f "$DIR/vqs.mdb" ]]; then
  "$B/bench_store" "$DIR" "$N" 768 PQ96x8 1000 >&2
fi
# 100 query vectors (another seed of the same mixture) as fvecs, as JSON bodies, as binary bodies
python3 - "$DIR" <<'PY'
import json, random, struct, sys
d = sys.argv[1]
rng = random.Random(7)
qs = [[rng.gauss(0, 1) for _ in range(768)] for _ in range(100)]
with open(d + "/q.fvecs", "wb") as f:
    for q in qs:
        f.write(struct.pack("<i768f", 768, *q))
with open(d + "/q.lua", "w") as f:
    f.write("bodies = {\n")
    for q in qs:
        f.write("  [[%s]],\n" % json.dumps({"vector": [round(x, 6) for x in q], "limit": 10}))
    f.write("}\n")
with open(d + "/qbin.lua", "w") as f:
    f.write("bodies = {\n")
    for q in qs:
        f.write('  "%s",\n' % "".join("\\%d" % b for b in struct.pack("<768f", *q)))
    f.write("}\n")
PY
cat > "$DIR/post.lua" <<'LUA'
local i = 0
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", wrk.path, wrk.headers, bodies[i])
end
LUA
echo "| client | connections / threads | queries/s | p50 | p99 |"
echo "|---|---|---|---|---|"
for t in 1 8 64; do
  "$B/bench_search_one" "$DIR" bench "$DIR/q.fvecs" 10 "$t" "$SECS"
done
./build/vqs serve --data "$DIR" --port "$PORT" --threads 2 >/dev/null &
SP=$!
trap 'kill $SP 2>/dev/null || true' EXIT
sleep 3
for kind in json binary; do
  if [[ $kind == json ]]; then
    script="$DIR/q.lua"; ctype=application/json
  else
    script="$DIR/qbin.lua"; ctype=application/octet-stream
  fi
  cat "$script" "$DIR/post.lua" > "$DIR/run.lua"
  for c in 1 8 64; do
    out=$(wrk -t$((c < 2 ? 1 : 2)) -c"$c" -d"${SECS}s" --latency -s "$DIR/run.lua" \
      -H "Content-Type: $ctype" "http://127.0.0.1:$PORT/collections/bench/points/search?limit=10")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
    p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    echo "| HTTP $kind (wrk) | $c | ${rps%.*} | $p50 | $p99 |${non2xx:+ non-2xx: $non2xx}"
  done
done
