#!/usr/bin/env bash
# A graph's links in memory against the same graph's links in a mapped file
# (/D: Qdrant's hnsw_config.on_disk), bench/bench_disk.c, one process per
# spec: GloVe 331k x 100 (cosine; bench/run_exact.sh fetches it), 1,000
# queries one at a time on one thread, beams 32 to 256; for /D each beam
# again after its links were written back and dropped from memory and the
# page cache. The mapped file goes to $TMPDIR, else /var/tmp. REPS rounds
# (default 2), each building both, in turns: this machine's noise is
# larger than the difference measured.
#   REPS=2 bench/run_mapped.sh [SPEC]        (default VAMANA32,SQ8)
set -euo pipefail
cd "$(dirname "$0")/.."
SPEC=${1:-VAMANA32,SQ8}
R=${SPEC%%,*}
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target bench_disk >/dev/null
for rep in $(seq "${REPS:-2}"); do
for s in "$SPEC" "$R/D,${SPEC#*,}"; do
  echo "## round $rep: $s"
  build/bench/bench_disk bench/data/glove100_base.fvecs bench/data/glove100_queries.fvecs cos "$s" - \
    bench/data/glove_gt10_cos 1000 32,48,64,128,256 1 2> >(grep -v '%)' >&2)
done
done
