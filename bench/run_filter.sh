#!/usr/bin/env bash
# Filtered search with and without a payload index (issue 17, item 3):
# queries/s and recall@10 at selectivities 0.1%, 1%, 10%, 50%.
#   bench/run_filter.sh [bench_filter options]
# Default: 1M points, d 64, IVF1024,SQ8 re-scored from the vector file on
# disk, 200 queries; a data directory under ${TMPDIR:-/tmp}, removed after.
# A small check: bench/run_filter.sh --n 50000 --spec IVF256,SQ8 --queries 100
# Needs ~1 GB of disk and ~1 GB of memory at 1M points; time it on an
# otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j 2 --target bench_filter >/dev/null
dir=$(mktemp -d "${TMPDIR:-/tmp}/bench_filter.XXXXXX")
trap 'rm -rf "$dir"' EXIT
echo "### Filtered search, payload index on or off ($(date -u +%Y-%m-%d), $(nproc) cores)"
echo
./build/bench/bench_filter "$dir/data" "$@"
