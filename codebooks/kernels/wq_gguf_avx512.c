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

const wq_gguf_kernels wq_gguf_kernels_avx512 = {VQS_SIMD_AVX512, q8_0_row, q4_0_row, q4_1_row,
                                                int8_row};
#endif
