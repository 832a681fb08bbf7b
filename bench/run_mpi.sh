#!/usr/bin/env bash
# vqs gt, vqs build and vqs eval --shards under mpirun with P = 1, 2, 4
# ranks on this machine (2 cores: P = 4 is oversubscribed), GloVe 331k x 100
# (cosine; bench/run_exact.sh fetches it), its 10,000 queries. Each rank
# runs THREADS threads (default 1), so P ranks use P threads in all. The
# files each P writes are compared with P = 1's (cmp): gt's must be the
# same bytes. Needs a build with -DVQS_MPI=ON (./run.sh test makes one).
#   THREADS=1 bench/run_mpi.sh [SPEC]     (default IVF1024,PQ50x4,RFlat)
set -euo pipefail
cd "$(dirname "$0")/.."
SPEC=${1:-IVF1024,PQ50x4,RFlat}
T=${THREADS:-1}
B=bench/data/glove100_base.fvecs
Q=bench/data/glove100_queries.fvecs
OUT=${OUT:-/tmp/vqs-mpi}
rm -rf "$OUT" && mkdir -p "$OUT"
MPI=(mpirun --oversubscribe --mca plm isolated --mca btl_vader_single_copy_mechanism none)
[[ $(id -u) == 0 ]] && MPI+=(--allow-run-as-root)
for P in 1 2 4; do
  echo "## P = $P"
  /usr/bin/time -f "gt: %e s wall, %M KB largest RSS of a process" "${MPI[@]}" -n "$P" build/vqs gt --base $B --queries $Q \
    --metric cos --k 10 --threads "$T" -o "$OUT/gt$P.ivecs" --dist "$OUT/gt$P.fvecs" 2>&1 | grep -v "^vqs gt: [0-9]* base"
  cmp "$OUT/gt1.ivecs" "$OUT/gt$P.ivecs" && cmp "$OUT/gt1.fvecs" "$OUT/gt$P.fvecs" && echo "gt: the same bytes as P = 1"
  /usr/bin/time -f "build: %e s wall, %M KB largest RSS of a process" "${MPI[@]}" -n "$P" build/vqs build --base $B \
    --spec "$SPEC" --metric cos --threads "$T" --out "$OUT/shards$P" 2>&1 | grep -v "% of its"
  "${MPI[@]}" -n "$P" build/vqs eval --shards "$OUT/shards$P" --queries $Q --gt "$OUT/gt1.ivecs" --nprobe 32 \
    --oversampling 4 --threads "$T"
done
