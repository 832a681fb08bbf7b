#!/usr/bin/env python3
"""An independent Llama-2 forward pass in numpy, the check of tools/weights/llama.c.

Usage: llama_ref.py MODEL.bin TOKEN [TOKEN ...]
Prints the logits of every position of the token sequence, one line per
position, vocab_size numbers each.

It shares nothing with the C code: it parses llama2.c's legacy .bin itself
(7 int32 header, then the float32 tensors grouped across layers), takes RoPE's
cos/sin from the file's freq_cis tables instead of computing them, computes in
float64, and runs the whole sequence at once with a causal mask instead of
one token at a time with a key/value cache.
"""
import sys

import numpy as np


def load(path):
    raw = open(path, "rb").read()
    dim, hidden, n_layers, n_heads, n_kv_heads, vocab, seq_len = np.frombuffer(raw, "<i4", 7)
    shared = vocab > 0
    vocab = abs(int(vocab))
    hs = dim // n_heads
    kv_dim = hs * n_kv_heads
    flat = np.frombuffer(raw, "<f4", offset=28).astype(np.float64)
    pos = 0

    def take(*shape):
        nonlocal pos
        n = int(np.prod(shape))
        a = flat[pos:pos + n].reshape(shape)
        pos += n
        return a

    w = {"tok": take(vocab, dim),
         "att_norm": take(n_layers, dim),
         "wq": take(n_layers, dim, dim),
         "wk": take(n_layers, kv_dim, dim),
         "wv": take(n_layers, kv_dim, dim),
         "wo": take(n_layers, dim, dim),
         "ffn_norm": take(n_layers, dim),
         "w1": take(n_layers, hidden, dim),
         "w2": take(n_layers, dim, hidden),
         "w3": take(n_layers, hidden, dim),
         "norm": take(dim),
         "cos": take(seq_len, hs // 2),
         "sin": take(seq_len, hs // 2)}
    w["cls"] = w["tok"] if shared else take(vocab, dim)
    assert pos == flat.size, "unexpected file size"
    cfg = dict(dim=int(dim), n_layers=int(n_layers), n_heads=int(n_heads), n_kv_heads=int(n_kv_heads), hs=int(hs))
    return cfg, w


def rmsnorm(x, g):
    return g * x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-5)


def rope(x, cos, sin):
    # x: (T, heads, hs); pairs (2j, 2j+1) turned by the angle of row t, column j
    a, b = x[..., 0::2], x[..., 1::2]
    c, s = cos[:, None, :], sin[:, None, :]
    out = np.empty_like(x)
    out[..., 0::2] = a * c - b * s
    out[..., 1::2] = a * s + b * c
    return out


def forward(cfg, w, tokens):
    T = len(tokens)
    H, KV, hs = cfg["n_heads"], cfg["n_kv_heads"], cfg["hs"]
    x = w["tok"][tokens]
    cos, sin = w["cos"][:T], w["sin"][:T]
    mask = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(cfg["n_layers"]):
        h = rmsnorm(x, w["att_norm"][l])
        q = rope((h @ w["wq"][l].T).reshape(T, H, hs), cos, sin)
        k = rope((h @ w["wk"][l].T).reshape(T, KV, hs), cos, sin)
        v = (h @ w["wv"][l].T).reshape(T, KV, hs)
        k = np.repeat(k, H // KV, axis=1)  # query head i reads key/value head i // (H / KV)
        v = np.repeat(v, H // KV, axis=1)
        s = np.einsum("thd,uhd->htu", q, k) / np.sqrt(hs) + mask
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        s /= s.sum(axis=-1, keepdims=True)
        o = np.einsum("htu,uhd->thd", s, v).reshape(T, H * hs)
        x = x + o @ w["wo"][l].T
        h = rmsnorm(x, w["ffn_norm"][l])
        a = h @ w["w1"][l].T
        x = x + ((a / (1 + np.exp(-a))) * (h @ w["w3"][l].T)) @ w["w2"][l].T
    return rmsnorm(x, w["norm"]) @ w["cls"].T


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: llama_ref.py MODEL.bin TOKEN [TOKEN ...]")
    cfg, w = load(sys.argv[1])
    logits = forward(cfg, w, np.array([int(t) for t in sys.argv[2:]]))
    out = sys.stdout
    for row in logits:
        out.write(" ".join("%.9g" % v for v in row))
        out.write("\n")


if __name__ == "__main__":
    main()
