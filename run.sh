#!/usr/bin/env bash
# The two README commands.
#   ./run.sh          install what is missing, build the vqs binary only, serve the GloVe demo (scripts/demo.sh)
#   ./run.sh test     install what is missing, build (Release), run every test
#   ./run.sh asan     the same tests under AddressSanitizer + UBSan (build-asan/)
#   ./run.sh tsan     the concurrency tests (api, collection, storage) under ThreadSanitizer (build-tsan/)
#   ./run.sh bench    build the benchmarks (bench/README.md has the commands that run them)
# Environment: VQS_WERROR=1 adds -Werror (CI); JOBS=N parallel build/test jobs.
set -euo pipefail
cd "$(dirname "$0")"
if [[ "${1:-demo}" == demo ]]; then scripts/setup.sh; else scripts/setup.sh --with-tests; fi

JOBS=${JOBS:-$(nproc)}
WERROR=OFF
[[ "${VQS_WERROR:-0}" == 1 ]] && WERROR=ON

build() { # dir, target ("all": everything, tests included), extra cmake args...
  local dir=$1 target=$2; shift 2
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DVQS_WERROR=$WERROR "$@" >/dev/null
  cmake --build "$dir" -j "$JOBS" --target "$target"
}

case "${1:-demo}" in
  demo)
    build build vqs_cli # only the vqs binary: tests and benchmarks are not needed to serve
    exec scripts/demo.sh
    ;;
  test)
    build build all -DVQS_MPI=ON
    ctest --test-dir build -j "$JOBS" --output-on-failure
    ;;
  asan)
    build build-asan all -DVQS_SANITIZE=ON -DVQS_MPI=ON
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      ctest --test-dir build-asan -j "$JOBS" --output-on-failure
    ;;
  tsan)
    build build-tsan all -DVQS_TSAN=ON
    # OpenBLAS's own threads are not instrumented: keep BLAS single-threaded
    OPENBLAS_NUM_THREADS=1 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
      ctest --test-dir build-tsan -j "$JOBS" --output-on-failure -R '^(api|hardening|collection|crash|db|vecstore|disk full|index and collection)'
    ;;
  bench)
    build build bench
    ;;
  *)
    echo "usage: ./run.sh [demo|test|asan|tsan|bench]" >&2
    exit 2
    ;;
esac
