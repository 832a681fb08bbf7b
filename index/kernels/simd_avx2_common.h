/*
 * simd_avx2_common.h: the code avx2.c and avx512.c share, once. Both files
 * are compiled with AVX2 enabled (CMakeLists.txt) and include this header,
 * so each gets its own copy compiled with its own flags; nothing else may
 * include it.
 *
 * Design decisions:
 * - Functions static to each including file and one generating macro
 *   rather than a third .c file of shared kernels: the shared pieces are
 *   the scalar lut8 (compiled with each level's flags, as it always was), a
 *   block's last step (inlined into each level's loop) and the entry points
 *   that specialise each level's own sq_scan_t per element type, which only
 *   the including file can see.
 */
#ifndef VQS_SIMD_AVX2_COMMON_H
#define VQS_SIMD_AVX2_COMMON_H

#include <immintrin.h>

#include "kernels_internal.h"

/* ==== look-up tables ===================================================== */

/* lut8 of both levels, scalar code (measured: avx2.c and avx512.c, "look-up
 * tables"): four rows at a time, two accumulators per row. */
static void lut8_rows4(const float *lut, size_t m, float bias, const uint8_t *codes, size_t stride,
                       size_t n, float *out)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint8_t *c0 = codes + i * stride, *c1 = c0 + stride, *c2 = c1 + stride,
                      *c3 = c2 + stride;
        float a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
        size_t j = 0;
        for (; j + 2 <= m; j += 2) {
            const float *l = lut + j * 256, *h = l + 256;
            a0 += l[c0[j]];
            a1 += l[c1[j]];
            a2 += l[c2[j]];
            a3 += l[c3[j]];
            b0 += h[c0[j + 1]];
            b1 += h[c1[j + 1]];
            b2 += h[c2[j + 1]];
            b3 += h[c3[j + 1]];
        }
        if (j < m) {
            const float *l = lut + j * 256;
            a0 += l[c0[j]];
            a1 += l[c1[j]];
            a2 += l[c2[j]];
            a3 += l[c3[j]];
        }
        out[i] = bias + (a0 + b0);
        out[i + 1] = bias + (a1 + b1);
        out[i + 2] = bias + (a2 + b2);
        out[i + 3] = bias + (a3 + b3);
    }
    for (; i < n; i++) {
        const uint8_t *c = codes + i * stride;
        float a = 0, b = 0;
        size_t j = 0;
        for (; j + 2 <= m; j += 2) {
            a += lut[j * 256 + c[j]];
            b += lut[(j + 1) * 256 + c[j + 1]];
        }
        if (j < m)
            a += lut[j * 256 + c[j]];
        out[i] = bias + (a + b);
    }
}

/* ==== PQ 4-bit fast scan ================================================= */

/* acc_lo/acc_hi of lookups for vectors 0..15 (a) and 16..31 (b) -> out[0..31]
 * (the u16 even/odd split of avx2.c's "PQ 4-bit fast scan" undone) */
static inline void fs_finish(__m256i a, __m256i ah, __m256i b, __m256i bh, uint16_t *out)
{
    __m256i ae = _mm256_sub_epi16(a, _mm256_slli_epi16(ah, 8));
    __m256i be = _mm256_sub_epi16(b, _mm256_slli_epi16(bh, 8));
    /* lane sums: lane 0 = vectors 0..15 (a), lane 1 = vectors 16..31 (b) */
    __m256i e = _mm256_add_epi16(_mm256_permute2x128_si256(ae, be, 0x20),
                                 _mm256_permute2x128_si256(ae, be, 0x31));
    __m256i o = _mm256_add_epi16(_mm256_permute2x128_si256(ah, bh, 0x20),
                                 _mm256_permute2x128_si256(ah, bh, 0x31));
    __m256i v0 = _mm256_unpacklo_epi16(e, o); /* 0..7 | 16..23 */
    __m256i v1 = _mm256_unpackhi_epi16(e, o); /* 8..15 | 24..31 */
    _mm256_storeu_si256((__m256i *)out, _mm256_permute2x128_si256(v0, v1, 0x20));
    _mm256_storeu_si256((__m256i *)(out + 16), _mm256_permute2x128_si256(v0, v1, 0x31));
}

/* ==== scalar-quantizer entries ============================================ */

/* VQS_SQ_ENTRIES(l2_name, ip_name) defines the level's sq_l2 and sq_ip
 * entries over the including file's
 *   sq_scan_t(t, l2, q, w, bias, d, codes, stride, n, out)
 * (l2 != 0: out = sum (q - w v)^2; else out = bias + sum q v), called with
 * t a constant in each case so that it is specialised per element type;
 * a type outside the list goes to the reference. */
#define VQS_SQ_TYPES(X)                                                                         \
    X(VQS_ELEM_U8) X(VQS_ELEM_S8) X(VQS_ELEM_U4) X(VQS_ELEM_F16) X(VQS_ELEM_BF16)               \
    X(VQS_ELEM_E4M3) X(VQS_ELEM_E5M2) X(VQS_ELEM_F32)

#define VQS_SQ_CASE_L2(T)                                                                       \
    case T:                                                                                     \
        sq_scan_t(T, 1, q, w, 0.0f, d, codes, stride, n, out);                                  \
        return;
#define VQS_SQ_CASE_IP(T)                                                                       \
    case T:                                                                                     \
        sq_scan_t(T, 0, q, NULL, bias, d, codes, stride, n, out);                               \
        return;

#define VQS_SQ_ENTRIES(l2_name, ip_name)                                                        \
    static void l2_name(vqs_elem t, const float *q, const float *w, size_t d,                   \
                        const uint8_t *codes, size_t stride, size_t n, float *out)              \
    {                                                                                           \
        switch (t) {                                                                            \
            VQS_SQ_TYPES(VQS_SQ_CASE_L2)                                                        \
        }                                                                                       \
        vqs_ref_sq_l2(t, q, w, d, codes, stride, n, out);                                       \
    }                                                                                           \
    static void ip_name(vqs_elem t, const float *q, float bias, size_t d,                       \
                        const uint8_t *codes, size_t stride, size_t n, float *out)              \
    {                                                                                           \
        switch (t) {                                                                            \
            VQS_SQ_TYPES(VQS_SQ_CASE_IP)                                                        \
        }                                                                                       \
        vqs_ref_sq_ip(t, q, bias, d, codes, stride, n, out);                                    \
    }

#endif
