/*
 * wq_gguf_kernels.h: the row encoders of the GGUF block formats (Q8_0,
 * Q4_0, Q4_1), NF4's codes, int8 and fp8 with a scale, the f16 / bf16
 * conversions and the absolute maximum of a row, one table per SIMD level, as
 * km_kernels.h does for k-means (codebooks/wq_gguf.c and wq_scalar.c call
 * them through wq_gguf_kernels_active()).
 *
 * Every level writes the same bytes: the SIMD versions do the float
 * operations of the scalar block functions below in the same order (one
 * multiply, one add, no FMA: ISO C mode implies -ffp-contract=off, and the
 * intrinsics are not contracted), and reproduce roundf (half away from
 * zero), the C cast's truncation and round-half-even exactly. Per-block
 * scalars (amax, d, 1/d, fp16 of d) are computed the same way everywhere;
 * the SIMD files reach the short last block of a row through the same
 * inline functions.
 *
 * Byte layouts (llama.cpp's ggml-common.h, little-endian fp16):
 *   block_q8_0 {uint16 d; int8  qs[32];}          34 bytes, x[j] = qs[j] * d
 *   block_q4_0 {uint16 d; uint8 qs[16];}          18 bytes, element j < 16 in
 *              the low nibble of qs[j], element j + 16 in its high nibble;
 *              x = (nibble - 8) * d
 *   block_q4_1 {uint16 d; uint16 m; uint8 qs[16];} 20 bytes, x = nibble * d + m
 * A short block (n < 32 elements, the end of a row) takes its scale (and
 * Q4_1's minimum) from its own n elements and stores the missing 32 - n
 * elements as if they were 0.0 (Q4_1: clamped into the nibble range), so Q8_0
 * and Q4_0 short blocks are exactly llama.cpp's block of the zero-padded
 * elements (a zero never changes their amax).
 *
 * One deviation from llama.cpp, where it has undefined behaviour: when 1/d
 * overflows float (|d| below about 2.9e-39; the fp16 d is then 0 and the
 * block decodes to zeros whatever its codes), id is taken as 0 instead of
 * +-Inf, so the codes are those of zeros rather than a NaN cast.
 */
#ifndef VQS_WQ_GGUF_KERNELS_H
#define VQS_WQ_GGUF_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vqs_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WQ_QK 32          /* GGUF block size */
#define WQ_Q8_0_BYTES 34
#define WQ_Q4_0_BYTES 18
#define WQ_Q4_1_BYTES 20

typedef struct wq_gguf_kernels {
    vqs_simd level;
    /* One row of n > 0 floats into ceil(n / 32) blocks at out. */
    void (*q8_0)(const float *x, size_t n, uint8_t *out);
    void (*q4_0)(const float *x, size_t n, uint8_t *out);
    void (*q4_1)(const float *x, size_t n, uint8_t *out);
    /* int8 per channel: q[j] = clamp(round_half_even(x[j] / scale), -127,
     * 127), scale > 0 and finite. */
    void (*int8_row)(const float *x, size_t n, float scale, int8_t *q);
    /* NF4 codes, one per byte: c[j] = the number of wq_nf4_pivots below
     * x[j] * inv (bitsandbytes' dQuantizeNF4), inv finite. */
    void (*nf4_codes)(const float *x, size_t n, float inv, uint8_t *c);
    /* IEEE half / bfloat16 of finite x, round to nearest even (as
     * vqs_f32_to_f16 / vqs_f32_to_bf16; overflow gives Inf). */
    void (*to_f16)(const float *x, size_t n, uint16_t *h);
    void (*to_bf16)(const float *x, size_t n, uint16_t *h);
    /* max |x[j]| (0 for n = 0); order-free for finite x, so exact. */
    float (*amax)(const float *x, size_t n);
    /* fp8 per element: q[j] = vqs_f32_to_e4m3(x[j] / scale, 1) (e5m2 = 0) or
     * vqs_f32_to_e5m2(x[j] / scale, 1), scale > 0, x finite. */
    void (*fp8_row)(const float *x, size_t n, float scale, int e5m2, uint8_t *q);
} wq_gguf_kernels;

/* bitsandbytes' NF4 pivots (csrc/kernels.cu dQuantizeNF4), ascending. */
extern const float wq_nf4_pivots[15];

extern const wq_gguf_kernels wq_gguf_kernels_ref;
#if defined(__x86_64__) && defined(__GNUC__)
#define VQS_WQ_GGUF_X86 1
extern const wq_gguf_kernels wq_gguf_kernels_avx2;
extern const wq_gguf_kernels wq_gguf_kernels_avx512;
#endif

/* The table of the run-time SIMD level (vqs_simd_level), chosen once. */
const wq_gguf_kernels *wq_gguf_kernels_active(void);
/* The table of a given level (tests compare every level with the
 * reference); a level above the build's gives the best it has. */
const wq_gguf_kernels *wq_gguf_kernels_for(vqs_simd level);

/* ---- the scalar blocks, shared by every level ---------------------------- */

static inline void wq_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xff);
    p[1] = (uint8_t)(v >> 8);
}

static inline uint16_t wq_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

/* 1/d, or 0 when d is 0 or 1/d is not finite (see above). */
static inline float wq_inv(float d)
{
    if (d == 0.0f)
        return 0.0f;
    float id = 1.0f / d;
    return fabsf(id) <= 3.4028234663852886e38f ? id : 0.0f;
}

/* roundf's result as an int for |v| < 2^31 (half away from zero), without
 * libm: t = trunc(v) is exact, and so is v - t. NaN gives 0. */
static inline int wq_round_away(float v)
{
    if (!(fabsf(v) < 2147483520.0f))
        return v > 0 ? INT32_MAX : v < 0 ? INT32_MIN : 0;
    int t = (int)v;
    float f = v - (float)t;
    return t + (f >= 0.5f) - (f <= -0.5f);
}

/* Round half to even, for |v| < 2^31; NaN gives 0. */
static inline int wq_round_even(float v)
{
    if (!(fabsf(v) < 2147483520.0f))
        return v > 0 ? INT32_MAX : v < 0 ? INT32_MIN : 0;
    int t = (int)v;
    float f = v - (float)t;
    if (f > 0.5f || (f == 0.5f && (t & 1)))
        t++;
    else if (f < -0.5f || (f == -0.5f && (t & 1)))
        t--;
    return t;
}

/* Q8_0, llama.cpp's quantize_row_q8_0_ref on one block of n <= 32. */
static inline void wq_q8_0_block(const float *x, int n, uint8_t *out)
{
    float amax = 0.0f;
    for (int j = 0; j < n; j++)
        amax = amax > fabsf(x[j]) ? amax : fabsf(x[j]); /* MAX(amax, fabsf(v)) */
    const float d = amax / 127;
    const float id = wq_inv(d);
    wq_put_u16(out, vqs_f32_to_f16(d));
    for (int j = 0; j < WQ_QK; j++) {
        int q = j < n ? wq_round_away(x[j] * id) : 0;
        q = q < -127 ? -127 : q > 127 ? 127 : q; /* |x * id| <= 127 (1 + 2^-22) */
        out[2 + j] = (uint8_t)(int8_t)q;
    }
}

/* (int8_t)(v) then MIN(15, .) as llama.cpp's Q4 reference; v outside [0,
 * 128) only in a Q4_1 short block's padding, which is clamped to [0, 15]. */
static inline uint8_t wq_nib(float v)
{
    if (!(v >= 0.0f))
        return 0;
    if (v >= 15.0f)
        return 15;
    return (uint8_t)(int)v;
}

/* Q4_0, llama.cpp's quantize_row_q4_0_ref on one block of n <= 32. */
static inline void wq_q4_0_block(const float *x, int n, uint8_t *out)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < n; j++)
        if (amax < fabsf(x[j])) {
            amax = fabsf(x[j]);
            max = x[j];
        }
    const float d = max / -8;
    const float id = wq_inv(d);
    wq_put_u16(out, vqs_f32_to_f16(d));
    for (int j = 0; j < WQ_QK / 2; j++) {
        const float x0 = (j < n ? x[j] : 0.0f) * id;
        const float x1 = (j + 16 < n ? x[j + 16] : 0.0f) * id;
        out[2 + j] = (uint8_t)(wq_nib(x0 + 8.5f) | (wq_nib(x1 + 8.5f) << 4));
    }
}

/* Q4_1, llama.cpp's quantize_row_q4_1_ref on one block of n <= 32 (min and
 * max over the n elements only). */
static inline void wq_q4_1_block(const float *x, int n, uint8_t *out)
{
    float min = 3.4028234663852886e38f, max = -3.4028234663852886e38f;
    for (int j = 0; j < n; j++) {
        if (x[j] < min)
            min = x[j];
        if (x[j] > max)
            max = x[j];
    }
    const float d = (max - min) / ((1 << 4) - 1);
    const float id = wq_inv(d);
    wq_put_u16(out, vqs_f32_to_f16(d));
    wq_put_u16(out + 2, vqs_f32_to_f16(min));
    for (int j = 0; j < WQ_QK / 2; j++) {
        const float x0 = ((j < n ? x[j] : 0.0f) - min) * id;
        const float x1 = ((j + 16 < n ? x[j + 16] : 0.0f) - min) * id;
        out[4 + j] = (uint8_t)(wq_nib(x0 + 0.5f) | (wq_nib(x1 + 0.5f) << 4));
    }
}

static inline uint8_t wq_nf4_one(float y)
{
    int c = 0;
    for (int i = 0; i < 15; i++)
        c += y > wq_nf4_pivots[i];
    return (uint8_t)c;
}

static inline int8_t wq_int8_one(float x, float scale)
{
    int q = wq_round_even(x / scale);
    return (int8_t)(q < -127 ? -127 : q > 127 ? 127 : q);
}

#ifdef __cplusplus
}
#endif
#endif
