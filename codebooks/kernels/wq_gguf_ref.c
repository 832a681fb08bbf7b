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

/* The float literals of dQuantizeNF4's tree: the levels' midpoints printed
 * from double arithmetic (4 of them one float off the float32 midpoint;
 * codebooks/wq_gguf.c says what follows from that). */
const float wq_nf4_pivots[15] = {
    -0.8480964004993439f, -0.6106329262256622f, -0.4599952697753906f, -0.33967943489551544f,
    -0.23460740596055984f, -0.13791173323988914f, -0.045525018125772476f, 0.03979014977812767f,
    0.1202552504837513f,  0.2035212516784668f,  0.2920137718319893f,  0.3893125355243683f,
    0.5016634166240692f,  0.6427869200706482f,  0.8614784181118011f,
};

static void nf4_codes(const float *x, size_t n, float inv, uint8_t *c)
{
    for (size_t j = 0; j < n; j++)
        c[j] = wq_nf4_one(x[j] * inv);
}

static void to_f16(const float *x, size_t n, uint16_t *h)
{
    for (size_t j = 0; j < n; j++)
        h[j] = vqs_f32_to_f16(x[j]);
}

static void to_bf16(const float *x, size_t n, uint16_t *h)
{
    for (size_t j = 0; j < n; j++)
        h[j] = vqs_f32_to_bf16(x[j]);
}

static float amax(const float *x, size_t n)
{
    float a = 0.0f;
    for (size_t j = 0; j < n; j++)
        a = a > fabsf(x[j]) ? a : fabsf(x[j]);
    return a;
}

static void fp8_row(const float *x, size_t n, float scale, int e5m2, uint8_t *q)
{
    for (size_t j = 0; j < n; j++)
        q[j] = e5m2 ? vqs_f32_to_e5m2(x[j] / scale, 1) : vqs_f32_to_e4m3(x[j] / scale, 1);
}

const wq_gguf_kernels wq_gguf_kernels_ref = {VQS_SIMD_SCALAR, q8_0_row, q4_0_row, q4_1_row,
                                             int8_row, nf4_codes, to_f16, to_bf16, amax,
                                             fp8_row};
