/*
 * wq_gguf_ref.c: the scalar reference of the GGUF row encoders
 * (wq_gguf_kernels.h): block by block with the shared inline functions.
 */
#include "wq_gguf_kernels.h"

static void q8_0_row(const float *x, size_t n, uint8_t *out)
{
    for (size_t b = 0; b * WQ_QK < n; b++) {
        size_t m = n - b * WQ_QK;
        wq_q8_0_block(x + b * WQ_QK, m < WQ_QK ? (int)m : WQ_QK, out + b * WQ_Q8_0_BYTES);
    }
}

static void q4_0_row(const float *x, size_t n, uint8_t *out)
{
    for (size_t b = 0; b * WQ_QK < n; b++) {
        size_t m = n - b * WQ_QK;
        wq_q4_0_block(x + b * WQ_QK, m < WQ_QK ? (int)m : WQ_QK, out + b * WQ_Q4_0_BYTES);
    }
}

static void q4_1_row(const float *x, size_t n, uint8_t *out)
{
    for (size_t b = 0; b * WQ_QK < n; b++) {
        size_t m = n - b * WQ_QK;
        wq_q4_1_block(x + b * WQ_QK, m < WQ_QK ? (int)m : WQ_QK, out + b * WQ_Q4_1_BYTES);
    }
}

static void int8_row(const float *x, size_t n, float scale, int8_t *q)
{
    for (size_t j = 0; j < n; j++)
        q[j] = wq_int8_one(x[j], scale);
}

const wq_gguf_kernels wq_gguf_kernels_ref = {VQS_SIMD_SCALAR, q8_0_row, q4_0_row, q4_1_row,
                                             int8_row};
