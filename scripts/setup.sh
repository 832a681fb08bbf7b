#!/usr/bin/env bash
# Installs the Debian 12 packages vqs needs, if any are missing.
# As root it runs apt-get; otherwise it prints the exact command and stops.
# Usage: scripts/setup.sh [--with-tests] [--with-fuzz]
#   --with-tests: chromium as well (the report test renders the HTML report
#   headless) and python3-numpy (the forward-pass test runs an independent
#   numpy implementation) and OpenMPI (the build with -DVQS_MPI=ON runs
#   vqs gt under mpirun); the demo does not need them. Then `npm ci` of the
#   JavaScript clients the client tests drive (tests/api/qdrant_client,
#   tests/api/rag_clients), from their lock files, when node_modules is older
#   than the lock file (a failure is a warning: the tests try `npm ci` again)
#   --with-fuzz: clang + libFuzzer runtime
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
with_tests=0

PKGS=(build-essential cmake pkg-config
      libfaiss-dev libopenblas-dev liblmdb-dev libmicrohttpd-dev liburing-dev
      catch2 libjansson-dev zlib1g-dev)
# Node.js + npm: the Qdrant-client test and the GloVe demo (any nodejs >= 18
# will do; only installed from Debian when there is none)
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  PKGS+=(nodejs npm)
fi
for opt in "$@"; do
  case $opt in
    --with-tests) PKGS+=(chromium python3-numpy openmpi-bin libopenmpi-dev); with_tests=1 ;;
    --with-fuzz) PKGS+=(clang libclang-rt-14-dev) ;;
    *) echo "setup: unknown option '$opt' (--with-tests, --with-fuzz)" >&2; exit 2 ;;
  esac
done

# the npm projects of the client tests, installed from their lock files
npm_clients() {
  [[ $with_tests == 1 ]] || return 0
  local d
  for d in tests/api/qdrant_client tests/api/rag_clients; do
    [[ "$root/$d/node_modules/.package-lock.json" -nt "$root/$d/package-lock.json" ]] && continue
    echo "setup: npm ci in $d" >&2
    if ! (cd "$root/$d" && npm ci --no-audit --no-fund --loglevel=error >&2); then
      echo "setup: warning: npm ci in $d failed (no registry?); the client tests will try again" >&2
    fi
  done
}

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  npm_clients
  exit 0
fi

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    echo "setup: installing ${missing[*]} (sudo)" >&2
    sudo sh -c "$cmd"
    npm_clients
    exit 0
  fi
  echo "setup: missing Debian packages: ${missing[*]}" >&2
  echo "setup: run as root:" >&2
  echo "  $cmd" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}" >&2
sh -c "$cmd" >&2
npm_clients
