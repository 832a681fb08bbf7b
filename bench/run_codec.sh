#!/usr/bin/env bash
# Quantizer core benchmark: vqs beside FAISS, same run, same threads.
#   THREADS=2 bench/run_codec.sh [case ...]
# Data: siftsmall (../shared/data) and GloVe 331k x 100 (bench/run_exact.sh
# downloads and converts it into bench/data/).
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target bench_codec >/dev/null
if [[ -d ../shared/data/siftsmall ]]; then
  echo "### siftsmall: train on the 10,000 base vectors, MSE on the 1,000 queries"
  ./build/bench/bench_codec ../shared/data/siftsmall/siftsmall_base.fvecs \
    ../shared/data/siftsmall/sift_query1000.fvecs "$THREADS" "$@"
fi
if [[ -f bench/data/glove100_base.fvecs ]]; then
  echo "### GloVe: train on the 331,479 base vectors, MSE on the 10,000 queries"
  # d = 100: PQ20x8 and PQ50x4 stand in for PQ16x8 and PQ32x4 (M must divide d)
  ./build/bench/bench_codec bench/data/glove100_base.fvecs bench/data/glove100_queries.fvecs \
    "$THREADS" ${@:-kmeans256 kmeans4096 PQ20x8 PQ50x4 RVQ8x8b1 RVQ8x8b8 SQ8}
else
  echo "(GloVe skipped: run bench/run_exact.sh once to fetch it)"
fi
