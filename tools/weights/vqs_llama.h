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
 * layers.{l}.attention.wq.weight, ..., norm.weight[, output.weight]) and the
 * config in __metadata__ "config" (JSON), or from llama2.c's legacy .bin
 * (7 int32 header; negative vocab_size: separate classifier). Every tensor's
 * presence and shape is checked (VQS_ESHAPE / VQS_ENOTFOUND naming it). */
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
 * floats, position i predicting token i + 1. */
int vqs_llama_forward(const vqs_llama *m, const int *tokens, int n, float *logits);

/* nseq sequences of len tokens sampled from m, each starting with token bos
 * (1 in llama2.c), temperature 1, seeded (vqs_rng): tokens is nseq x len. */
int vqs_llama_sample(const vqs_llama *m, int nseq, int len, int bos, uint64_t seed, int *tokens);

/* Quality of q against ref over the sampled sequences: per predicted
 * position, KL(p_ref || p_q), whether the arg-max tokens agree, and the
 * cross-entropy of the next token under each model. */
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
