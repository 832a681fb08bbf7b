/*
 * vqs_llama.h: a reference forward pass for Llama-2-architecture checkpoints
 * in llama2.c naming (tools/weights/llama.c) and the end-to-end quality
 * measures of `vqs weights eval` (tools/weights/llm_eval.c): KL divergence
 * of next-token distributions from the original model, top-1 agreement and
 * cross-entropy, as llama.cpp's perplexity tool reports with
 * --kl-divergence.
 *
 * Model: token embedding [vocab, dim]; per layer RMSNorm (eps 1e-5),
 * attention with grouped-query heads (n_kv_heads <= n_heads) and rotary
 * position embedding (theta 10000, llama2.c's pairing of dimensions 2i and
 * 2i+1 within each head), RMSNorm, SwiGLU feed-forward (w2(silu(w1 x) * w3 x));
 * final RMSNorm and a classifier shared with the embedding (or "output.weight").
 * All float32, single sequence, causal, one token after another with a
 * key/value cache.
 */
#ifndef VQS_LLAMA_H
#define VQS_LLAMA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vqs_llama_config {
    int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
    int shared_classifier; /* 1: logits = tok_embeddings x */
} vqs_llama_config;

typedef struct vqs_llama vqs_llama;

/* From safetensors with llama2.c/Meta names (tok_embeddings.weight,
 * layers.{l}.attention_norm.weight, layers.{l}.attention.w{q,k,v,o}.weight,
 * layers.{l}.ffn_norm.weight, layers.{l}.feed_forward.w{1,2,3}.weight,
 * norm.weight[, output.weight]; any dtype vqs_st_read_f32 reads; other
 * tensors are ignored) and the config in __metadata__ "config", a JSON
 * object with the integers dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 * vocab_size, max_seq_len (or seq_len) and the optional boolean
 * shared_classifier (default: no output.weight); or from llama2.c's legacy
 * .bin (7 int32 header; negative vocab_size: separate classifier; exact
 * file size). load() tells the two apart by content. *out is owned by the
 * caller (vqs_llama_free). Errors, each naming the file and the tensor or
 * field: -errno (open, read); VQS_ENOTFOUND (a missing tensor); VQS_ESHAPE
 * (a tensor's shape, a .bin with trailing bytes); VQS_EHEADER (no config,
 * malformed config JSON, a field missing, mistyped or out of range, heads
 * that do not divide dim or n_heads, an odd head size, a model above 2^40
 * weights); VQS_ETRUNC (a .bin cut short, naming the tensor it ends in);
 * VQS_ENONFINITE (NaN / Inf weights); the safetensors reader's codes;
 * VQS_ENOMEM. */
int vqs_llama_load(const char *path, vqs_llama **out);
int vqs_llama_load_bin(const char *path, vqs_llama **out);
/* A deep copy, so that a variant can have some weights replaced. */
int vqs_llama_clone(const vqs_llama *m, vqs_llama **out);
void vqs_llama_free(vqs_llama *m);
const vqs_llama_config *vqs_llama_cfg(const vqs_llama *m);

/* The model's weight tensors by safetensors name: count, name i, and a
 * pointer to its floats (rows x cols; a 1-D tensor is 1 x n). set_weight
 * replaces a tensor's values (n must match; VQS_ENOTFOUND / VQS_ESHAPE). */
size_t vqs_llama_ntensors(const vqs_llama *m);
const char *vqs_llama_tensor(const vqs_llama *m, size_t i, const float **w, size_t *rows,
                             size_t *cols);
int vqs_llama_set_weight(vqs_llama *m, const char *name, const float *w, size_t n);

/* Logits of every position of tokens[0..n) (n <= seq_len): n x vocab_size
 * floats, position i predicting token i + 1. The same bits on every x86-64
 * machine and thread count (fixed summation order, no BLAS). VQS_EINVAL for
 * n outside 1..seq_len or a token outside the vocabulary (naming its
 * position); VQS_ENOMEM. */
int vqs_llama_forward(const vqs_llama *m, const int *tokens, int n, float *logits);

/* nseq sequences of len tokens sampled from m, each starting with token bos
 * (1 in llama2.c), temperature 1, seeded (vqs_rng): tokens is nseq x len.
 * Each next token is drawn by inverse CDF over the softmax of the logits in
 * double, with one uniform of its sequence's generator; sequence i's
 * generator is seeded with the i-th output of a generator seeded with seed,
 * so the tokens depend on seed alone, not on the threads (sequences run in
 * parallel on vqs_default_threads()). VQS_EINVAL (nseq < 1, len outside
 * 1..seq_len, bos outside the vocabulary), VQS_ENOMEM. */
int vqs_llama_sample(const vqs_llama *m, int nseq, int len, int bos, uint64_t seed, int *tokens);

/* Quality of q against ref over the sampled sequences: per predicted
 * position, KL(p_ref || p_q), whether the arg-max tokens agree, and the
 * cross-entropy of the next token under each model.
 * tokens: nseq x len (2 <= len <= seq_len); positions 0..len-2 of each
 * sequence count (the last has no next token), so positions = nseq (len-1).
 * Log-softmax in double; KL is not clamped (a model against itself gives
 * exactly 0); kl_p99 is the nearest-rank 99th percentile (the
 * ceil(0.99 positions)-th smallest); arg-max ties go to the lower token.
 * Sequences run on nthreads threads (0: vqs_default_threads()); the result
 * is the same for every thread count. VQS_EINVAL (the configs differ, bad
 * nseq / len, a token outside the vocabulary, naming sequence and
 * position), VQS_ENOMEM. */
typedef struct vqs_llm_quality {
    double kl_mean, kl_p99, kl_max; /* nats */
    double top1;                    /* share of positions where arg-max agrees */
    double ce_ref, ce;              /* mean -log p(next token), nats */
    size_t positions;
} vqs_llm_quality;
int vqs_llm_compare(const vqs_llama *ref, const vqs_llama *q, const int *tokens, int nseq, int len,
                    int nthreads, vqs_llm_quality *out);

#ifdef __cplusplus
}
#endif
#endif
