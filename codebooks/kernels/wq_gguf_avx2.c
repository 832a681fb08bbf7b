/*
 * wq_gguf_avx2.c: the GGUF row encoders with AVX2 (wq_gguf_kernels.h says
 * why every level writes the same bytes). A full block of 32 floats is four
 * __m256; the short block that may end a row goes through the scalar
 * block functions.
 *
 * - amax and min/max are order-free (finite inputs); which element llama.cpp
 *   keeps as Q4_0's signed max (the first of largest |x|) and as Q4_1's min
 *   and max (the first equal one: it decides the sign of a zero) is found
 *   from a comparison mask, so the fp16 fields match bit for bit.
 * - roundf (half away from zero): t = trunc(p) and f = p - t, both exact,
 *   then t +- 1 where |f| >= 0.5. Rejected: trunc(p + copysign(0.5, p)),
 *   wrong for 0.49999997 (the sum rounds up to 1).
 */
#include "wq_gguf_kernels.h"

#ifdef VQS_WQ_GGUF_X86
#include <immintrin.h>

#include "vqs_simd_avx2.h"

/* index of the first of the 32 lanes of v[0..3] equal to s (one exists) */
static inline int first_eq(const __m256 v[4], float s)
{
    __m256 b = _mm256_set1_ps(s);
    uint32_t m = 0;
    for (int k = 0; k < 4; k++)
        m |= (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(v[k], b, _CMP_EQ_OQ)) << (8 * k);
    return __builtin_ctz(m);
}

static inline __m256 round_away(__m256 p)
{
    const __m256 half = _mm256_set1_ps(0.5f), one = _mm256_set1_ps(1.0f);
    __m256 t = _mm256_round_ps(p, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    __m256 f = _mm256_sub_ps(p, t);
    __m256 up = _mm256_and_ps(_mm256_cmp_ps(f, half, _CMP_GE_OQ), one);
    __m256 dn = _mm256_and_ps(_mm256_cmp_ps(f, _mm256_sub_ps(_mm256_setzero_ps(), half), _CMP_LE_OQ), one);
    return _mm256_sub_ps(_mm256_add_ps(t, up), dn);
}

static void q8_0_row(const float *x, size_t n, uint8_t *out)
{
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 lim = _mm256_set1_ps(127.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    size_t nfull = n / WQ_QK, b;
    for (b = 0; b < nfull; b++) {
        const float *xb = x + b * WQ_QK;
        uint8_t *o = out + b * WQ_Q8_0_BYTES;
        __m256 v[4], a;
        for (int k = 0; k < 4; k++)
            v[k] = _mm256_loadu_ps(xb + 8 * k);
        a = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v[0], absm), _mm256_and_ps(v[1], absm)),
                          _mm256_max_ps(_mm256_and_ps(v[2], absm), _mm256_and_ps(v[3], absm)));
        const float amax = vqs_hmax8(a);
        const float d = amax / 127;
        const __m256 id = _mm256_set1_ps(wq_inv(d));
        wq_put_u16(o, vqs_f32_to_f16(d));
        __m256i q[4];
        for (int k = 0; k < 4; k++) {
            __m256 r = round_away(_mm256_mul_ps(v[k], id));
            r = _mm256_min_ps(_mm256_max_ps(r, _mm256_sub_ps(_mm256_setzero_ps(), lim)), lim);
            q[k] = _mm256_cvttps_epi32(r);
        }
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
        _mm256_storeu_si256((__m256i *)(o + 2), _mm256_permutevar8x32_epi32(p, perm));
    }
    if (b * WQ_QK < n)
        wq_q8_0_block(x + b * WQ_QK, (int)(n - b * WQ_QK), out + b * WQ_Q8_0_BYTES);
}

/* 32 nibble codes (int32 lanes, 0..15) -> 16 bytes: j low, j + 16 high */
static inline void pack_nibbles(const __m256i q[4], uint8_t *o)
{
    __m256i c0 = _mm256_or_si256(q[0], _mm256_slli_epi32(q[2], 4));
    __m256i c1 = _mm256_or_si256(q[1], _mm256_slli_epi32(q[3], 4));
    __m128i s0 = _mm_packs_epi32(_mm256_castsi256_si128(c0), _mm256_extracti128_si256(c0, 1));
    __m128i s1 = _mm_packs_epi32(_mm256_castsi256_si128(c1), _mm256_extracti128_si256(c1, 1));
    _mm_storeu_si128((__m128i *)o, _mm_packus_epi16(s0, s1));
}

static inline __m256i nib(__m256 v)
{
    __m256i t = _mm256_cvttps_epi32(v);
    return _mm256_max_epi32(_mm256_min_epi32(t, _mm256_set1_epi32(15)), _mm256_setzero_si256());
}

static void q4_0_row(const float *x, size_t n, uint8_t *out)
{
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 c85 = _mm256_set1_ps(8.5f);
    size_t nfull = n / WQ_QK, b;
    for (b = 0; b < nfull; b++) {
        const float *xb = x + b * WQ_QK;
        uint8_t *o = out + b * WQ_Q4_0_BYTES;
        __m256 v[4], av[4];
        for (int k = 0; k < 4; k++) {
            v[k] = _mm256_loadu_ps(xb + 8 * k);
            av[k] = _mm256_and_ps(v[k], absm);
        }
        const float amax = vqs_hmax8(_mm256_max_ps(_mm256_max_ps(av[0], av[1]), _mm256_max_ps(av[2], av[3])));
        /* llama.cpp keeps the first element of largest |x| (max stays +0 if all are 0) */
        const float max = amax > 0.0f ? xb[first_eq(av, amax)] : 0.0f;
        const float d = max / -8;
        const __m256 id = _mm256_set1_ps(wq_inv(d));
        wq_put_u16(o, vqs_f32_to_f16(d));
        __m256i q[4];
        for (int k = 0; k < 4; k++)
            q[k] = nib(_mm256_add_ps(_mm256_mul_ps(v[k], id), c85));
        pack_nibbles(q, o + 2);
    }
    if (b * WQ_QK < n)
        wq_q4_0_block(x + b * WQ_QK, (int)(n - b * WQ_QK), out + b * WQ_Q4_0_BYTES);
}

static void q4_1_row(const float *x, size_t n, uint8_t *out)
{
    const __m256 c05 = _mm256_set1_ps(0.5f);
    size_t nfull = n / WQ_QK, b;
    for (b = 0; b < nfull; b++) {
        const float *xb = x + b * WQ_QK;
        uint8_t *o = out + b * WQ_Q4_1_BYTES;
        __m256 v[4];
        for (int k = 0; k < 4; k++)
            v[k] = _mm256_loadu_ps(xb + 8 * k);
        float min = vqs_hmin8(_mm256_min_ps(_mm256_min_ps(v[0], v[1]), _mm256_min_ps(v[2], v[3])));
        float max = vqs_hmax8(_mm256_max_ps(_mm256_max_ps(v[0], v[1]), _mm256_max_ps(v[2], v[3])));
        /* a zero's sign: the first element equal to it, as llama.cpp's strict compares */
        if (min == 0.0f)
            min = xb[first_eq(v, min)];
        if (max == 0.0f)
            max = xb[first_eq(v, max)];
        const float d = (max - min) / ((1 << 4) - 1);
        const __m256 id = _mm256_set1_ps(wq_inv(d)), mn = _mm256_set1_ps(min);
        wq_put_u16(o, vqs_f32_to_f16(d));
        wq_put_u16(o + 2, vqs_f32_to_f16(min));
        __m256i q[4];
        for (int k = 0; k < 4; k++)
            q[k] = nib(_mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(v[k], mn), id), c05));
        pack_nibbles(q, o + 4);
    }
    if (b * WQ_QK < n)
        wq_q4_1_block(x + b * WQ_QK, (int)(n - b * WQ_QK), out + b * WQ_Q4_1_BYTES);
}

static void int8_row(const float *x, size_t n, float scale, int8_t *q)
{
    const __m256 s = _mm256_set1_ps(scale), lim = _mm256_set1_ps(127.0f);
    const __m256 nlim = _mm256_set1_ps(-127.0f);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    size_t j = 0;
    for (; j + 32 <= n; j += 32) {
        __m256i r[4];
        for (int k = 0; k < 4; k++) {
            __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + j + 8 * k), s);
            v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
            r[k] = _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(v, nlim), lim));
        }
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(r[0], r[1]), _mm256_packs_epi32(r[2], r[3]));
        _mm256_storeu_si256((__m256i *)(q + j), _mm256_permutevar8x32_epi32(p, perm));
    }
    for (; j < n; j++)
        q[j] = wq_int8_one(x[j], scale);
}

static void nf4_codes(const float *x, size_t n, float inv, uint8_t *c)
{
    const __m256 s = _mm256_set1_ps(inv);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256 p[15];
    for (int i = 0; i < 15; i++)
        p[i] = _mm256_set1_ps(wq_nf4_pivots[i]);
    size_t j = 0;
    for (; j + 32 <= n; j += 32) {
        __m256i r[4];
        for (int k = 0; k < 4; k++) {
            __m256 y = _mm256_mul_ps(_mm256_loadu_ps(x + j + 8 * k), s);
            __m256i a = _mm256_setzero_si256();
            for (int i = 0; i < 15; i++) /* y > pivot: a mask of -1 */
                a = _mm256_sub_epi32(a, _mm256_castps_si256(_mm256_cmp_ps(y, p[i], _CMP_GT_OQ)));
            r[k] = a;
        }
        __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(r[0], r[1]), _mm256_packs_epi32(r[2], r[3]));
        _mm256_storeu_si256((__m256i *)(c + j), _mm256_permutevar8x32_epi32(b, perm));
    }
    for (; j < n; j++)
        c[j] = wq_nf4_one(x[j] * inv);
}

static void to_f16(const float *x, size_t n, uint16_t *h)
{
    size_t j = 0;
    for (; j + 8 <= n; j += 8)
        _mm_storeu_si128((__m128i *)(h + j),
                         _mm256_cvtps_ph(_mm256_loadu_ps(x + j), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; j < n; j++)
        h[j] = vqs_f32_to_f16(x[j]);
}

/* bits + 0x7fff + (bit 16) then the top half: round to nearest even for
 * finite x (a carry into the exponent is the right rounding, up to Inf) */
static void to_bf16(const float *x, size_t n, uint16_t *h)
{
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff);
    size_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m256i r[2];
        for (int k = 0; k < 2; k++) {
            __m256i b = _mm256_castps_si256(_mm256_loadu_ps(x + j + 8 * k));
            __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(b, 16), one);
            r[k] = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(b, bias), lsb), 16);
        }
        __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r[0], r[1]), 0xD8);
        _mm256_storeu_si256((__m256i *)(h + j), p);
    }
    for (; j < n; j++)
        h[j] = vqs_f32_to_bf16(x[j]);
}

static float amax(const float *x, size_t n)
{
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    size_t j = 0;
    for (; j + 16 <= n; j += 16) {
        a0 = _mm256_max_ps(a0, _mm256_and_ps(_mm256_loadu_ps(x + j), absm));
        a1 = _mm256_max_ps(a1, _mm256_and_ps(_mm256_loadu_ps(x + j + 8), absm));
    }
    float a = vqs_hmax8(_mm256_max_ps(a0, a1));
    for (; j < n; j++)
        a = a > fabsf(x[j]) ? a : fabsf(x[j]);
    return a;
}

/* fp8 of |v| with round to nearest even and saturation, by bits: normals
 * add the rounding bias below the kept mantissa bits and rebias the
 * exponent; subnormals are rounded by the FPU adding a power of two whose
 * ulp is the fp8 subnormal step (2^14 for E4M3's 2^-9, 2^7 for E5M2's
 * 2^-16), the default round-to-nearest-even mode vqs never changes. */
static inline __m256i fp8_abs(__m256 a, int e5m2)
{
    const int mb = e5m2 ? 2 : 3, sh = 23 - mb;
    const __m256i b = _mm256_castps_si256(a);
    __m256i r = _mm256_add_epi32(b, _mm256_set1_epi32((1 << (sh - 1)) - 1));
    r = _mm256_add_epi32(r, _mm256_and_si256(_mm256_srli_epi32(b, sh), _mm256_set1_epi32(1)));
    r = _mm256_sub_epi32(_mm256_srli_epi32(r, sh),
                         _mm256_set1_epi32((e5m2 ? 127 - 15 : 127 - 7) << mb));
    r = _mm256_min_epi32(r, _mm256_set1_epi32(e5m2 ? 0x7B : 0x7E));
    const float magic = e5m2 ? 128.0f : 16384.0f, minn = e5m2 ? 0x1p-14f : 0x1p-6f;
    __m256i sub = _mm256_sub_epi32(_mm256_castps_si256(_mm256_add_ps(a, _mm256_set1_ps(magic))),
                                   _mm256_castps_si256(_mm256_set1_ps(magic)));
    __m256 small = _mm256_cmp_ps(a, _mm256_set1_ps(minn), _CMP_LT_OQ);
    return _mm256_blendv_epi8(r, sub, _mm256_castps_si256(small));
}

static void fp8_row(const float *x, size_t n, float scale, int e5m2, uint8_t *q)
{
    const __m256 s = _mm256_set1_ps(scale);
    const __m256 absm = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    size_t j = 0;
    for (; j + 32 <= n; j += 32) {
        __m256i r[4];
        for (int k = 0; k < 4; k++) {
            __m256 v = _mm256_div_ps(_mm256_loadu_ps(x + j + 8 * k), s);
            __m256i c = fp8_abs(_mm256_and_ps(v, absm), e5m2);
            __m256i sign = _mm256_srli_epi32(_mm256_castps_si256(_mm256_andnot_ps(absm, v)), 24);
            r[k] = _mm256_or_si256(c, sign);
        }
        /* codes are 0..255 in int32 lanes: packus keeps them */
        __m256i b = _mm256_packus_epi16(_mm256_packus_epi32(r[0], r[1]), _mm256_packus_epi32(r[2], r[3]));
        _mm256_storeu_si256((__m256i *)(q + j), _mm256_permutevar8x32_epi32(b, perm));
    }
    for (; j < n; j++)
        q[j] = e5m2 ? vqs_f32_to_e5m2(x[j] / scale, 1) : vqs_f32_to_e4m3(x[j] / scale, 1);
}

const wq_gguf_kernels wq_gguf_kernels_avx2 = {VQS_SIMD_AVX2, q8_0_row, q4_0_row, q4_1_row,
                                              int8_row, nf4_codes, to_f16, to_bf16, amax,
                                              fp8_row};
#endif
