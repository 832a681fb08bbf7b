#!/usr/bin/env bash
# Cosine scoring against normalised reconstructions (issue 14, item 3):
# recall@10 (k = 10, no re-scoring unless the spec has Refine) of every codec
# family with the correction off and on (VQS_COS_NORM=0 / 1), on the same
# codes. CSV/JSON in bench/out/cosnorm_{sts,fiori}_{0,1}.*, the table on
# stdout.
#   bench/run_cosnorm.sh [sts] [fiori]      (sts: ~15 min on 1 thread, most of
#                                            it RVQ training; fiori: ~10 s)
set -euo pipefail
cd "$(dirname "$0")/.."
SETS=${*:-sts fiori}
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target vqs_cli >/dev/null
mkdir -p bench/out
D=../shared/data
for s in $SETS; do
  case $s in
  sts) # 768-d; only 500 queries ship, so --nq 1000 takes them all
    for on in 0 1; do
      VQS_COS_NORM=$on ./build/vqs eval --base $D/sts15k_bert768/base.fvecs \
        --queries $D/sts15k_bert768/queries.fvecs --metric cos --nq 1000 --threads 1 \
        --nprobe 16 --oversampling 2 \
        --spec SQfp8 --spec SQ8 --spec SQ4 --spec SQfp16 \
        --spec PCA192,SQfp8 --spec PCA384,SQfp8 --spec PCA576,SQfp8 \
        --spec PCA192,SQ8 --spec PCA384,SQ8 --spec PCA576,SQ8 \
        --spec PQ96x8 --spec PQ192x4 --spec ROT,BIN --spec RVQ8x8 --spec RVQ16x4 \
        --spec IVF64,SQfp8 --spec IVF64,PCA192,SQ8 --spec IVF64,PQ192x4 --spec IVF64,ROT,BIN \
        --spec "PQ192x4,Refine(SQfp8)" --spec "IVF64,PQ192x4,Refine(SQ4)" \
        --out bench/out/cosnorm_sts_$on
    done ;;
  fiori) # 778 x 384 raw float32: the first 100 rows are the queries, the other 678 the base
    /usr/bin/python3 - <<'EOF'
import numpy as np
x = np.fromfile('../shared/data/fiori_docs_minilm384/embeddings.bin', dtype='<f4').reshape(-1, 384)
def fvecs(path, a):
    out = np.empty((len(a), a.shape[1] + 1), dtype='<f4')
    out[:, 0] = np.array([a.shape[1]], dtype='<i4').view('<f4')[0]
    out[:, 1:] = a
    out.tofile(path)
fvecs('bench/out/fiori_q100.fvecs', x[:100])
fvecs('bench/out/fiori_base678.fvecs', x[100:])
EOF
    for on in 0 1; do
      VQS_COS_NORM=$on ./build/vqs eval --base bench/out/fiori_base678.fvecs \
        --queries bench/out/fiori_q100.fvecs --metric cos --threads 1 --nprobe 8 \
        --spec SQfp8 --spec SQ8 --spec SQ4 --spec SQfp16 \
        --spec PCA96,SQfp8 --spec PCA192,SQfp8 --spec PCA288,SQfp8 \
        --spec PCA96,SQ8 --spec PCA192,SQ8 --spec PCA288,SQ8 \
        --spec PQ48x8 --spec PQ96x4 --spec ROT,BIN --spec RVQ8x8 --spec RVQ16x4 \
        --spec IVF8,SQ4 --spec IVF8,PQ96x4 \
        --out bench/out/cosnorm_fiori_$on
    done ;;
  esac
done
for s in $SETS; do
  /usr/bin/python3 - "bench/out/cosnorm_${s}_0.csv" "bench/out/cosnorm_${s}_1.csv" <<'EOF'
import csv, sys
off = list(csv.DictReader(open(sys.argv[1])))
on = list(csv.DictReader(open(sys.argv[2])))
print(f"\n{sys.argv[1]} -> {sys.argv[2]}")
print("| spec | bytes/vector off -> on | recall@10 off | on | gain (points) |")
print("|---|---|---|---|---|")
for a, b in zip(off, on):
    ra, rb = float(a['recall_at_10']), float(b['recall_at_10'])
    print(f"| {a['spec']} | {float(a['total_bytes']):.1f} -> {float(b['total_bytes']):.1f} | "
          f"{ra:.4f} | {rb:.4f} | {100 * (rb - ra):+.2f} |")
EOF
done
