/*
 * wq_internal.h: what the weight-quantization files share (vqs_wq.h is the
 * public side). wq.c holds the format table, the spec parser and the part
 * bookkeeping; each group of formats is one file with one encode and one
 * decode entry point that switch on the kind:
 *   wq_scalar.c  f16, bf16, fp8 per tensor / per row, int8_ch, llm_int8
 *   wq_gguf.c    q8_0, q4_0, q4_1 (llama.cpp layouts), nf4
 *   wq_mx.c      MXFP8/6/4, MXINT8, NVFP4 and the fp4/fp6/E8M0 elements
 *   wq_vq.c      vector quantization (VPTQ-style) and codec:<spec>
 */
#ifndef VQS_WQ_INTERNAL_H
#define VQS_WQ_INTERNAL_H

#include "vqs_wq.h"

typedef int (*wq_encode_fn)(const vqs_wq_spec *s, const float *w, size_t rows, size_t cols,
                            int nthreads, int verbose, vqs_wq_tensor *out);
typedef int (*wq_decode_fn)(const vqs_wq_tensor *t, float *w, int nthreads);

int wq_scalar_encode(const vqs_wq_spec *s, const float *w, size_t rows, size_t cols, int nthreads,
                     int verbose, vqs_wq_tensor *out);
int wq_scalar_decode(const vqs_wq_tensor *t, float *w, int nthreads);
int wq_gguf_encode(const vqs_wq_spec *s, const float *w, size_t rows, size_t cols, int nthreads,
                   int verbose, vqs_wq_tensor *out);
int wq_gguf_decode(const vqs_wq_tensor *t, float *w, int nthreads);
int wq_mx_encode(const vqs_wq_spec *s, const float *w, size_t rows, size_t cols, int nthreads,
                 int verbose, vqs_wq_tensor *out);
int wq_mx_decode(const vqs_wq_tensor *t, float *w, int nthreads);
int wq_vq_encode(const vqs_wq_spec *s, const float *w, size_t rows, size_t cols, int nthreads,
                 int verbose, vqs_wq_tensor *out);
int wq_vq_decode(const vqs_wq_tensor *t, float *w, int nthreads);

/* VQ names: "vq8x12r8o1" -> spec (VQS_ESPEC naming the token), and back. */
int wq_vq_parse(const char *s, vqs_wq_spec *out);
void wq_vq_name(const vqs_wq_spec *s, char *buf, size_t n);

/* Checks that t has part name with this type and shape (ndim 1: shape[1]
 * ignored): VQS_ESHAPE naming the tensor's format, the part and what was
 * expected otherwise. *out (may be NULL) is the part. */
int wq_need_part(const vqs_wq_tensor *t, const char *name, vqs_wq_type type, int ndim, uint64_t s0,
                 uint64_t s1, const vqs_wq_part **out);

/* Runs fn(ctx, r0, r1) over row ranges [r0, r1) of about grain rows on up
 * to nthreads threads; the first non-zero return is returned. */
typedef int (*wq_rows_fn)(void *ctx, size_t r0, size_t r1);
int wq_for_rows(int nthreads, size_t rows, size_t grain, wq_rows_fn fn, void *ctx);

/* Number of blocks of size b in a row of n (the last one may be short). */
static inline size_t wq_nblocks(size_t n, size_t b) { return (n + b - 1) / b; }

#endif
