#!/usr/bin/env bash
# The graph index (VAMANA, index/graph.c) beside the graph indexes of its
# peers, same machine, data, queries and k (10), 1 and THREADS threads:
# FAISS AVX2 HNSW32 (bench_index, one build per index, a row per beam),
# usearch and hnswlib (bench/peers/peers.mjs), then queries/s at recall@10
# 0.95 / 0.99 / 0.995 per index (bench/graph_summary.py: the best measured
# row reaching each target; recall from the timed search).
#   THREADS=2 REPS=3 bench/run_graph.sh [siftsmall|sts|glove ...]
# Set-up (FAISS AVX2 build, npm peers, GloVe): as bench/run_peers.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
export REPS=${REPS:-3}
SETS=${*:-siftsmall sts glove}
EFS=${EFS:-10,12,16,20,24,32,40,48,64,80,96,128,160,192,256}
source bench/peers/setup.sh
peers_setup bench_index vqs_cli
D=../shared/data

# one data set: NAME BASE QUERIES METRIC NQ
run_set() {
  local name=$1 base=$2 queries=$3 metric=$4 nq=$5
  local gt=bench/data/${name}_gt10.ivecs out
  mkdir -p bench/data
  [[ -f $gt ]] || quiet ./build-peers/vqs gt --base "$base" --queries "$queries" --k 10 \
    --metric "$metric" -o "$gt" >/dev/null
  out=$(mktemp)
  {
    quiet build-peers/bench/bench_index "$base" "$queries" "$metric" "$THREADS" "$nq" \
      "VAMANA32,SQ8,RFlat|HNSW32|$EFS|1" "VAMANA32,SQ8,RFlat|-|$EFS|2" "VAMANA32,SQ8|HNSW32,SQ8|$EFS|0"
    echo
    echo "| library | index | build s | R@10 | q/s 1t | q/s ${THREADS}t | index B/vec |"
    echo "|---|---|---|---|---|---|---|"
    node bench/peers/peers.mjs "$base" "$queries" "$gt" "$metric" "$nq" "$THREADS" ${EFS//,/ }
  } | tee "$out"
  echo
  echo "#### queries/s at a recall@10 target (T = $THREADS threads)"
  echo
  python3 bench/graph_summary.py < "$out"
  rm -f "$out"
  echo
}

echo "data sets: $SETS; threads 1 and $THREADS; REPS $REPS; $(lscpu | sed -n 's/^Model name: *//p');" \
  "FAISS AVX2 $(cat "$CACHE/faiss-avx2/VERSION"); vqs $(git rev-parse --short HEAD)"
echo
for s in $SETS; do
  case $s in
  siftsmall) echo "### siftsmall 10k x 128, L2, 1,000 queries"; echo
    run_set siftsmall $D/siftsmall/siftsmall_base.fvecs $D/siftsmall/sift_query1000.fvecs l2 1000 ;;
  sts) echo "### sts15k_bert768 14k x 768, cosine, 500 queries"; echo
    run_set sts $D/sts15k_bert768/base.fvecs $D/sts15k_bert768/queries.fvecs cos 500 ;;
  glove) echo "### GloVe 331k x 100, cosine, 2,000 queries"; echo
    run_set glove bench/data/glove100_base.fvecs bench/data/glove100_queries.fvecs cos 2000 ;;
  *) echo "unknown data set $s (siftsmall, sts, glove)" >&2; exit 2 ;;
  esac
done
