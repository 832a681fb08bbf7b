#!/usr/bin/env bash
# The grid of "Optimization of embeddings storage for RAG systems using
# quantization and dimensionality reduction techniques" (float8 / int8 / int4 /
# binary, PCA keeping 25-75% of d, and their combinations) on two real
# embedding sets, quality only (no timing), mean over 3 seeds:
#   sts15k_bert768        14k x 768 BERT sentence embeddings, its 500 held-out queries
#   fiori_docs_minilm384  778 x 384 MiniLM RAG chunks, leave-one-out over 200 chunks
# Writes bench/out/paper_{sts,fiori}.{json,csv,html} and prints the table and the
# paper's claims with their verdicts (bench/paper_verdicts.py), which are copied
# into bench/README.md.
#   bench/paper_rag_storage.sh
set -euo pipefail
cd "$(dirname "$0")/.."
D=${VQS_DATA_DIR:-../shared/data}
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" --target vqs_cli >/dev/null
mkdir -p bench/out
./build/vqs eval --base $D/sts15k_bert768/base.fvecs --queries $D/sts15k_bert768/queries.fvecs \
  --metric cos --sweep paper --no-timing --seeds 3 \
  --describe "sts15k_bert768: 14,004 BERT (768-d) sentence embeddings, cosine; its 500 held-out query sentences" \
  --out bench/out/paper_sts --report bench/out/paper_sts.html
./build/vqs eval --base $D/fiori_docs_minilm384/embeddings.bin --dim 384 --queries loo:200 \
  --metric cos --sweep paper --no-timing --seeds 3 \
  --describe "fiori_docs_minilm384: 778 MiniLM-L6 (384-d) RAG chunks of SAP Fiori documentation, cosine; 200 chunks as leave-one-out queries" \
  --out bench/out/paper_fiori --report bench/out/paper_fiori.html
/usr/bin/env python3 bench/paper_verdicts.py bench/out/paper_sts.json bench/out/paper_fiori.json
