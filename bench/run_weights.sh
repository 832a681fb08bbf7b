#!/usr/bin/env bash
# Weight formats (issue 16): SQNR on Gaussian weights against theory and the
# literature, bits per weight, encode/decode GB/s at 1 and 2 threads.
#   bench/run_weights.sh [bench_weights options]
# Default: 4096 x 4096, every block format, threads 1,2, best of 3; prints
# the markdown table of bench/README.md ("Weight formats"). --sqnr-only
# skips the timings; a small smoke run: --rows 64 --cols 256 --reps 1.
# Time it on an otherwise idle machine (2 cores): the figures are per core.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j 2 --target bench_weights >/dev/null
echo "### Weight formats on N(0,1) weights ($(date -u +%Y-%m-%d), $(nproc) cores)"
echo
./build/bench/bench_weights "$@"
