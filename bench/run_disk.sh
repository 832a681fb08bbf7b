#!/usr/bin/env bash
# The graph index on disk (index/graph_disk.c) against the same graph in
# memory, one run (bench/bench_disk.c): a seeded embedding-like set of
# N x 768 (bench/gen_mixture.py with a 48-dimensional latent: 256 clusters,
# anisotropic, 1% outliers), the index VAMANA32,PCA128R,PQ64x8,RFlat, 1,000
# queries one at a time on one thread, beams 32/64/128, 1 to 32 node reads
# a hop. Run as root for the page cache to be dropped before each row.
#   N=1000000 bench/run_disk.sh [DIR]     (DIR: where the data and the node
#                                         file go, default /tmp/vqs-disk;
#                                         1M rows: 3.1 GB of vectors and a
#                                         4.1 GB node file)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
DIR=${1:-/tmp/vqs-disk}
SPEC=${SPEC:-VAMANA32,PCA128R,PQ64x8,RFlat}
mkdir -p "$DIR"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target bench_disk >/dev/null
[[ -f $DIR/base.fvecs ]] || python3 bench/gen_mixture.py "$DIR" "$N" 768 256 1234 48
build/bench/bench_disk "$DIR/base.fvecs" "$DIR/q.fvecs" l2 "$SPEC" "$DIR/nodes.dgraph" "$DIR/gt" 1000 \
  32,64,128 1,2,4,8,16,32 2> >(grep -v '%)' >&2)
