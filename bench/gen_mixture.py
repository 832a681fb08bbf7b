#!/usr/bin/env python3
"""Seeded synthetic vectors for the scan-rate rows of bench/README ("Scan
against the limit"): n rows of d floats from a mixture of k Gaussian clusters
(centres N(0, 4^2)) with per-dimension scales exp(N(0, 0.5^2)) (anisotropy),
and 1,000 queries drawn the same way, as fvecs.

    python3 bench/gen_mixture.py OUTDIR [n [d [k [seed]]]]
    (defaults: 1000000 128 64 1234; writes OUTDIR/base.fvecs, OUTDIR/q.fvecs)
"""
import os
import sys

import numpy as np


def write_fvecs(path, a):
    m = np.empty((a.shape[0], a.shape[1] + 1), dtype=np.float32)
    m[:, 0] = np.frombuffer(np.int32(a.shape[1]).tobytes(), dtype=np.float32)[0]
    m[:, 1:] = a
    m.tofile(path)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    n, d, k, seed = (int(v) for v in (sys.argv[2:] + ["1000000", "128", "64", "1234"][len(sys.argv) - 2:]))
    rng = np.random.default_rng(seed)
    cent = rng.normal(0, 4, (k, d)).astype(np.float32)
    scales = np.exp(rng.normal(0, 0.5, d)).astype(np.float32)
    lab = rng.integers(0, k, n)
    x = (cent[lab] + rng.normal(0, 1, (n, d)).astype(np.float32) * scales).astype(np.float32)
    q = (cent[rng.integers(0, k, 1000)] + rng.normal(0, 1, (1000, d)).astype(np.float32) * scales).astype(np.float32)
    os.makedirs(out, exist_ok=True)
    write_fvecs(os.path.join(out, "base.fvecs"), x)
    write_fvecs(os.path.join(out, "q.fvecs"), q)


if __name__ == "__main__":
    main()
