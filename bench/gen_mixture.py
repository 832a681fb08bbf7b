#!/usr/bin/env python3
"""Seeded synthetic vectors for the scan-rate rows of bench/README ("Scan
against the limit"): n rows of d floats from a mixture of k Gaussian clusters
(centres N(0, 4^2)) with per-dimension scales exp(N(0, 0.5^2)) (anisotropy),
and 1,000 queries drawn the same way, as fvecs.

    python3 bench/gen_mixture.py OUTDIR [n [d [k [seed [latent]]]]]
    (defaults: 1000000 128 64 1234 0; writes OUTDIR/base.fvecs, OUTDIR/q.fvecs)

With latent r > 0 the rows are embedding-like instead (the on-disk graph
rows of bench/README): a row is its cluster's centre (N(0, 1)) plus an
r-dimensional Gaussian code through a shared r x d map whose directions have
decaying scales (i^-1/2), per-dimension scales as above, isotropic noise of
0.05, and 1% outliers at 4 times the spread. Points then lie near a union of
r-dimensional sheets, as sentence embeddings do (their nearest neighbours
are not the near-ties of d-dimensional Gaussian clouds, where every graph and
quantizer fails); written in blocks of 100,000 rows.
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
    n, d, k, seed, latent = (int(v) for v in (sys.argv[2:] + ["1000000", "128", "64", "1234", "0"][len(sys.argv) - 2:]))
    rng = np.random.default_rng(seed)
    if latent > 0:
        os.makedirs(out, exist_ok=True)
        cent = rng.normal(0, 1, (k, d)).astype(np.float32)
        basis = (rng.normal(0, 1, (latent, d)) / np.sqrt(d)).astype(np.float32)
        basis *= (np.arange(1, latent + 1, dtype=np.float32) ** -0.5)[:, None] * 3
        scales = np.exp(rng.normal(0, 0.3, d)).astype(np.float32)

        def rows(m):
            lab = rng.integers(0, k, m)
            z = rng.normal(0, 1, (m, latent)).astype(np.float32)
            z[rng.random(m) < 0.01] *= 4
            y = cent[lab] + z @ basis
            y += rng.normal(0, 0.05, (m, d)).astype(np.float32)
            return (y * scales).astype(np.float32)

        with open(os.path.join(out, "base.fvecs"), "wb") as f:
            for i in range(0, n, 100000):
                m = min(100000, n - i)
                b = rows(m)
                a = np.empty((m, d + 1), dtype=np.float32)
                a[:, 0] = np.frombuffer(np.int32(d).tobytes(), dtype=np.float32)[0]
                a[:, 1:] = b
                a.tofile(f)
        write_fvecs(os.path.join(out, "q.fvecs"), rows(1000))
        return
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
