#!/usr/bin/env bash
# Builds FAISS from Debian 12's own source package (1.7.3, Debian's patches
# applied) with AVX2 kernels (FAISS_OPT_LEVEL=avx2): the speed peer of
# bench/run_peers.sh. Debian's generic libfaiss-dev stays the oracle in tests.
#
#   bench/peers/build_faiss_avx2.sh        # one time, ~15-25 min on 2 cores
#
# Result, cached OUTSIDE the repository (VQS_PEERS_CACHE, default
# ~/.cache/vqs-peers):
#   $CACHE/faiss-avx2/lib/libfaiss_avx2.a   the static library
#   $CACHE/faiss-avx2/include/faiss/...     its headers
#   $CACHE/faiss-avx2/VERSION               the source package's version
# A second run finds the library and does nothing. Needs root for apt-get
# (a deb-src line for bookworm is added if none is there).
set -euo pipefail
CACHE=${VQS_PEERS_CACHE:-$HOME/.cache/vqs-peers}
OUT=$CACHE/faiss-avx2
if [[ -f $OUT/lib/libfaiss_avx2.a && -f $OUT/include/faiss/Index.h ]]; then
  echo "faiss avx2: cached in $OUT ($(cat "$OUT/VERSION" 2>/dev/null))"
  exit 0
fi
mkdir -p "$CACHE/src"
SUDO=; [[ $(id -u) -eq 0 ]] || SUDO=sudo
if ! grep -rqs '^Types:.*deb-src\|^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "faiss avx2: adding a bookworm deb-src line" >&2
  printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' |
    $SUDO tee /etc/apt/sources.list.d/vqs-deb-src.sources >/dev/null
  $SUDO apt-get update -qq
fi
command -v dpkg-source >/dev/null || $SUDO apt-get install -y -qq dpkg-dev
# FAISS's build needs BLAS/LAPACK and OpenMP (gcc's), as for libfaiss-dev
dpkg -s libopenblas-dev >/dev/null 2>&1 || $SUDO apt-get install -y -qq libopenblas-dev
cd "$CACHE/src"
SRC=$(ls -d faiss-*/ 2>/dev/null | head -1 || true)
if [[ -z $SRC ]]; then
  apt-get source -qq faiss
  SRC=$(ls -d faiss-*/ | head -1)
fi
SRC=$CACHE/src/${SRC%/}
VER=$(cd "$SRC" && dpkg-parsechangelog -S Version 2>/dev/null || basename "$SRC")
echo "faiss avx2: building $VER from $SRC" >&2
cmake -S "$SRC" -B "$CACHE/build-avx2" -DCMAKE_BUILD_TYPE=Release \
  -DFAISS_OPT_LEVEL=avx2 -DFAISS_ENABLE_GPU=OFF -DFAISS_ENABLE_PYTHON=OFF \
  -DFAISS_ENABLE_C_API=OFF -DBUILD_TESTING=OFF -DBUILD_SHARED_LIBS=OFF \
  -DCMAKE_POSITION_INDEPENDENT_CODE=ON >/dev/null
# only the AVX2 library: the generic one is Debian's
cmake --build "$CACHE/build-avx2" --target faiss_avx2 -j "$(nproc)"
rm -rf "$OUT.tmp" && mkdir -p "$OUT.tmp/lib" "$OUT.tmp/include"
cp "$CACHE/build-avx2/faiss/libfaiss_avx2.a" "$OUT.tmp/lib/"
(cd "$SRC" && find faiss -name '*.h' -exec cp --parents {} "$OUT.tmp/include/" \;)
echo "$VER" > "$OUT.tmp/VERSION"
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
echo "faiss avx2: built $VER into $OUT"
