#!/usr/bin/env bash
# Installs the Debian 12 packages vqs needs, if any are missing.
# As root it runs apt-get; otherwise it prints the exact command and stops.
# Usage: scripts/setup.sh [--with-tests] [--with-fuzz]
#   --with-tests: chromium as well (the report test renders the HTML report
#   headless) and python3-numpy (the forward-pass test runs an independent
#   numpy implementation); the demo does not need them
#   --with-fuzz: clang + libFuzzer runtime
set -euo pipefail

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
    --with-tests) PKGS+=(chromium python3-numpy) ;;
    --with-fuzz) PKGS+=(clang libclang-rt-14-dev) ;;
    *) echo "setup: unknown option '$opt' (--with-tests, --with-fuzz)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

cmd="apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    echo "setup: installing ${missing[*]} (sudo)" >&2
    sudo sh -c "$cmd"
    exit 0
  fi
  echo "setup: missing Debian packages: ${missing[*]}" >&2
  echo "setup: run as root:" >&2
  echo "  $cmd" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}" >&2
sh -c "$cmd" >&2
