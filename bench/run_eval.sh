#!/usr/bin/env bash
# vqs eval on the three real sets: compression versus recall tables.
#   bench/run_eval.sh [siftsmall|sts|glove ...]    (CSV/JSON in bench/out/)
set -euo pipefail
cd "$(dirname "$0")/.."
SETS=${*:-siftsmall sts glove}
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target vqs_cli >/dev/null
mkdir -p bench/out
D=../shared/data
for s in $SETS; do
  case $s in
  siftsmall)
    ./build/vqs eval --base $D/siftsmall/siftsmall_base.fvecs --queries $D/siftsmall/sift_query1000.fvecs \
      --metric l2 --spec exact --spec SQfp16 --spec SQ8 --spec SQ4 --spec PQ32x8 --spec PQ16x8 --spec PQ32x4 \
      --spec RVQ8x8 --spec BIN --spec IVF64,PQ16x8 --spec IVF64,SQ8 --spec PQ32x4,RFlat --spec SQ4,RFlat \
      --spec BIN,RFlat --spec "PQ32x4,Refine(SQfp16)" --nprobe 4,16 --oversampling 4,10 --out bench/out/eval_siftsmall ;;
  sts)
    ./build/vqs eval --base $D/sts15k_bert768/base.fvecs --queries $D/sts15k_bert768/queries.fvecs \
      --metric cos --nq 1000 --spec exact --spec SQfp16 --spec SQfp8 --spec SQ8 --spec SQ4 --spec PCA256,SQ8 \
      --spec PQ96x8 --spec PQ192x4 --spec ROT,BIN --spec IVF64,PQ96x8 --spec PQ192x4,RFlat --spec SQ4,RFlat \
      --spec ROT,BIN,RFlat --spec "ROT,BIN,Refine(SQfp16)" --nprobe 4,16 --oversampling 4,10 --out bench/out/eval_sts ;;
  glove)
    [[ -f bench/data/glove100_base.fvecs ]] || bench/run_exact.sh >/dev/null
    ./build/vqs eval --base bench/data/glove100_base.fvecs --queries bench/data/glove100_queries.fvecs \
      --metric cos --nq 2000 --train-size 100000 --spec exact --spec IVF1024,SQfp16 --spec IVF1024,SQ8 \
      --spec IVF1024,SQ4 --spec IVF1024,PQ50x8 --spec IVF1024,PQ20x8 --spec IVF1024,PQ50x4 --spec IVF1024,BIN \
      --spec IVF1024,PQ50x4,RFlat --spec IVF1024,SQ4,RFlat --spec PQ50x4,RFlat --spec BIN,RFlat \
      --nprobe 8,32,128 --oversampling 4,10 --out bench/out/eval_glove ;;
  esac
done
