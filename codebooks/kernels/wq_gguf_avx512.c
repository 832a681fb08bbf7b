/*
 * wq_gguf_avx512.c: the GGUF row encoders with AVX-512 (F, BW, VL, DQ): a
 * block of 32 floats is two __m512, the same operations as wq_gguf_avx2.c
 * (which says how roundf and llama.cpp's choice of max/min are matched);
 * rounding to int8 uses the down-converting vpmovsdb.
 */
#include "wq_gguf_kernels.h"

#ifdef VQS_WQ_GGUF_X86
#include <immintrin.h>

static inline int first_eq(__m512 v0, __m512 v1, float s)
{
    __m512 b = _mm512_set1_ps(s);
    uint32_t m = (uint32_t)_mm512_cmp_ps_mask(v0, b, _CMP_EQ_OQ) |
                 ((uint32_t)_mm512_cmp_ps_mask(v1, b, _CMP_EQ_OQ) << 16);
    return __builtin_ctz(m);
}

static inline __m512 round_away(__m512 p)
{
    const __m512 half = _mm512_set1_ps(0.5f), nhalf = _mm512_set1_ps(-0.5f);
    const __m512 one = _mm512_set1_ps(1.0f);
    __m512 t = _mm512_roundscale_ps(p, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(p, t);
    t = _mm512_mask_add_ps(t, _mm512_cmp_ps_mask(f, half, _CMP_GE_OQ), t, one);
    return _mm512_mask_sub_ps(t, _mm512_cmp_ps_mask(f, nhalf, _CMP_LE_OQ), t, one);
}

static void q8_0_row(const float *x, size_t n, uint8_t *out)
{
    const __m512 lim = _mm512_set1_ps(127.0f), nlim = _mm512_set1_ps(-127.0f);
    size_t nfull = n / WQ_QK, b;
    for (b = 0; b < nfull; b++) {
        const float *xb = x + b * WQ_QK;
        uint8_t *o = out + b * WQ_Q8_0_BYTES;
        __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
        const float d = amax / 127;
        const __m512 id = _mm512_set1_ps(wq_inv(d));
        wq_put_u16(o, vqs_f32_to_f16(d));
        __m512 r0 = round_away(_mm512_mul_ps(v0, id)), r1 = round_away(_mm512_mul_ps(v1, id));
        r0 = _mm512_min_ps(_mm512_max_ps(r0, nlim), lim);
        r1 = _mm512_min_ps(_mm512_max_ps(r1, nlim), lim);
        _mm_storeu_si128((__m128i *)(o + 2), _mm512_cvtsepi32_epi8(_mm512_cvttps_epi32(r0)));
        _mm_storeu_si128((__m128i *)(o + 18), _mm512_cvtsepi32_epi8(_mm512_cvttps_epi32(r1)));
    }
    if (b * WQ_QK < n)
        wq_q8_0_block(x + b * WQ_QK, (int)(n - b * WQ_QK), out + b * WQ_Q8_0_BYTES);
}

static inline __m512i nib(__m512 v)
{
    __m512i t = _mm512_cvttps_epi32(v);
    return _mm512_max_epi32(_mm512_min_epi32(t, _mm512_set1_epi32(15)), _mm512_setzero_si512());
}

static inline void pack_nibbles(__m512i lo, __m512i hi, uint8_t *o)
{
    __m512i c = _mm512_or_si512(lo, _mm512_slli_epi32(hi, 4));
    _mm_storeu_si128((__m128i *)o, _mm512_cvtepi32_epi8(c));
}

static void q4_0_row(const float *x, size_t n, uint8_t *out)
{
    const __m512 c85 = _mm512_set1_ps(8.5f);
    size_t nfull = n / WQ_QK, b;
    for (b = 0; b < nfull; b++) {
        const float *xb = x + b * WQ_QK;
        uint8_t *o = out + b * WQ_Q4_0_BYTES;
        __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
        __m512 a0 = _mm512_abs_ps(v0), a1 = _mm512_abs_ps(v1);
        const float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
        const float max = amax > 0.0f ? xb[first_eq(a0, a1, amax)] : 0.0f;
        const float d = max / -8;
        const __m512 id = _mm512_set1_ps(wq_inv(d));
        wq_put_u16(o, vqs_f32_to_f16(d));
        pack_nibbles(nib(_mm512_add_ps(_mm512_mul_ps(v0, id), c85)),
                     nib(_mm512_add_ps(_mm512_mul_ps(v1, id), c85)), o + 2);
    }
    if (b * WQ_QK < n)
        wq_q4_0_block(x + b * WQ_QK, (int)(n - b * WQ_QK), out + b * WQ_Q4_0_BYTES);
}

static void q4_1_row(const float *x, size_t n, uint8_t *out)
{
    const __m512 c05 = _mm512_set1_ps(0.5f);
    size_t nfull = n / WQ_QK, b;
    for (b = 0; b < nfull; b++) {
        const float *xb = x + b * WQ_QK;
        uint8_t *o = out + b * WQ_Q4_1_BYTES;
        __m512 v0 = _mm512_loadu_ps(xb), v1 = _mm512_loadu_ps(xb + 16);
        float min = _mm512_reduce_min_ps(_mm512_min_ps(v0, v1));
        float max = _mm512_reduce_max_ps(_mm512_max_ps(v0, v1));
        if (min == 0.0f)
            min = xb[first_eq(v0, v1, min)];
        if (max == 0.0f)
            max = xb[first_eq(v0, v1, max)];
        const float d = (max - min) / ((1 << 4) - 1);
        const __m512 id = _mm512_set1_ps(wq_inv(d)), mn = _mm512_set1_ps(min);
        wq_put_u16(o, vqs_f32_to_f16(d));
        wq_put_u16(o + 2, vqs_f32_to_f16(min));
        pack_nibbles(nib(_mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(v0, mn), id), c05)),
                     nib(_mm512_add_ps(_mm512_mul_ps(_mm512_sub_ps(v1, mn), id), c05)), o + 4);
    }
    if (b * WQ_QK < n)
        wq_q4_1_block(x + b * WQ_QK, (int)(n - b * WQ_QK), out + b * WQ_Q4_1_BYTES);
}

static void int8_row(const float *x, size_t n, float scale, int8_t *q)
{
    const __m512 s = _mm512_set1_ps(scale), lim = _mm512_set1_ps(127.0f);
    const __m512 nlim = _mm512_set1_ps(-127.0f);
    size_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512 v = _mm512_div_ps(_mm512_loadu_ps(x + j), s);
        v = _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        v = _mm512_min_ps(_mm512_max_ps(v, nlim), lim);
        _mm_storeu_si128((__m128i *)(q + j), _mm512_cvtsepi32_epi8(_mm512_cvttps_epi32(v)));
    }
    for (; j < n; j++)
        q[j] = wq_int8_one(x[j], scale);
}

static void nf4_codes(const float *x, size_t n, float inv, uint8_t *c)
{
    const __m512 s = _mm512_set1_ps(inv);
    const __m512i one = _mm512_set1_epi32(1);
    size_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512 y = _mm512_mul_ps(_mm512_loadu_ps(x + j), s);
        __m512i a = _mm512_setzero_si512();
        for (int i = 0; i < 15; i++)
            a = _mm512_mask_add_epi32(a, _mm512_cmp_ps_mask(y, _mm512_set1_ps(wq_nf4_pivots[i]), _CMP_GT_OQ),
                                      a, one);
        _mm_storeu_si128((__m128i *)(c + j), _mm512_cvtepi32_epi8(a));
    }
    for (; j < n; j++)
        c[j] = wq_nf4_one(x[j] * inv);
}

static void to_f16(const float *x, size_t n, uint16_t *h)
{
    size_t j = 0;
    for (; j + 16 <= n; j += 16)
        _mm256_storeu_si256((__m256i *)(h + j),
                            _mm512_cvtps_ph(_mm512_loadu_ps(x + j), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; j < n; j++)
        h[j] = vqs_f32_to_f16(x[j]);
}

static void to_bf16(const float *x, size_t n, uint16_t *h)
{
    const __m512i one = _mm512_set1_epi32(1), bias = _mm512_set1_epi32(0x7fff);
    size_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512i b = _mm512_castps_si512(_mm512_loadu_ps(x + j));
        __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(b, 16), one);
        __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(b, bias), lsb), 16);
        _mm256_storeu_si256((__m256i *)(h + j), _mm512_cvtepi32_epi16(r));
    }
    for (; j < n; j++)
        h[j] = vqs_f32_to_bf16(x[j]);
}

static float amax(const float *x, size_t n)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
    size_t j = 0;
    for (; j + 32 <= n; j += 32) {
        a0 = _mm512_max_ps(a0, _mm512_abs_ps(_mm512_loadu_ps(x + j)));
        a1 = _mm512_max_ps(a1, _mm512_abs_ps(_mm512_loadu_ps(x + j + 16)));
    }
    float a = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
    for (; j < n; j++)
        a = a > fabsf(x[j]) ? a : fabsf(x[j]);
    return a;
}

/* as wq_gguf_avx2.c's fp8_abs */
static inline __m512i fp8_abs(__m512 a, int e5m2)
{
    const int mb = e5m2 ? 2 : 3, sh = 23 - mb;
    const __m512i b = _mm512_castps_si512(a);
    __m512i r = _mm512_add_epi32(b, _mm512_set1_epi32((1 << (sh - 1)) - 1));
    r = _mm512_add_epi32(r, _mm512_and_si512(_mm512_srli_epi32(b, sh), _mm512_set1_epi32(1)));
    r = _mm512_sub_epi32(_mm512_srli_epi32(r, sh),
                         _mm512_set1_epi32((e5m2 ? 127 - 15 : 127 - 7) << mb));
    r = _mm512_min_epi32(r, _mm512_set1_epi32(e5m2 ? 0x7B : 0x7E));
    const float magic = e5m2 ? 128.0f : 16384.0f, minn = e5m2 ? 0x1p-14f : 0x1p-6f;
    __m512i sub = _mm512_sub_epi32(_mm512_castps_si512(_mm512_add_ps(a, _mm512_set1_ps(magic))),
                                   _mm512_castps_si512(_mm512_set1_ps(magic)));
    return _mm512_mask_blend_epi32(_mm512_cmp_ps_mask(a, _mm512_set1_ps(minn), _CMP_LT_OQ), r, sub);
}

static void fp8_row(const float *x, size_t n, float scale, int e5m2, uint8_t *q)
{
    const __m512 s = _mm512_set1_ps(scale);
    const __m512i signm = _mm512_set1_epi32((int)0x80000000u);
    size_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512 v = _mm512_div_ps(_mm512_loadu_ps(x + j), s);
        __m512i c = fp8_abs(_mm512_abs_ps(v), e5m2);
        __m512i sign = _mm512_srli_epi32(_mm512_and_si512(_mm512_castps_si512(v), signm), 24);
        _mm_storeu_si128((__m128i *)(q + j), _mm512_cvtepi32_epi8(_mm512_or_si512(c, sign)));
    }
    for (; j < n; j++)
        q[j] = e5m2 ? vqs_f32_to_e5m2(x[j] / scale, 1) : vqs_f32_to_e4m3(x[j] / scale, 1);
}

const wq_gguf_kernels wq_gguf_kernels_avx512 = {VQS_SIMD_AVX512, q8_0_row, q4_0_row, q4_1_row,
                                                int8_row, nf4_codes, to_f16, to_bf16, amax,
                                                fp8_row};
#endif
