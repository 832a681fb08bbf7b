/*
 * km_avx512.c: the AVX-512 k-means kernels (km_kernels.h). Compiled with
 * this level's -m flags only (CMakeLists.txt); reached only through the
 * table of the run-time SIMD level, so the build runs on CPUs without
 * AVX-512. Results are bit-identical to km_ref.c (see km_avx2.c).
 *
 * Design decisions:
 * - small_argmin scores four points at once (independent add chains share
 *   each centroid load): the kernel of PQ training's small sub-spaces.
 * - l2sq's tail is a masked load into the same 16 sums, so the sums are
 *   those of the reference (a zero lane adds 0).
 */
#if defined(__x86_64__) && defined(__GNUC__)
#include "km_kernels.h"

#include <immintrin.h>

/* The lanes' (value, index) -> the smallest value and the lowest index
 * holding it; updates (*best, *bi) if that value is below *best. */
static inline void lanes_finish_avx512(__m512 vb, __m512i vi, int32_t c0, float *best,
                                       int32_t *bi)
{
    float mv = _mm512_reduce_min_ps(vb);
    if (!(mv < *best))
        return;
    __mmask16 eq = _mm512_cmp_ps_mask(vb, _mm512_set1_ps(mv), _CMP_EQ_OQ);
    *best = mv;
    *bi = c0 + _mm512_mask_reduce_min_epi32(eq, vi);
}

static void tile_argmin_avx512(const float *ip, size_t nb, size_t nc, const float *cn,
                               int32_t c0, float *best, int32_t *bi)
{
    const __m512 two = _mm512_set1_ps(2.0f);
    const __m512i step = _mm512_set1_epi32(16);
    const __m512i idx0 = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    size_t nv = nc / 16 * 16;
    for (size_t i = 0; i < nb; i++) {
        const float *row = ip + i * nc;
        if (nv) {
            __m512 vb = _mm512_set1_ps(INFINITY);
            __m512i vi = _mm512_setzero_si512(), idx = idx0;
            for (size_t j = 0; j < nv; j += 16) {
                __m512 v = _mm512_sub_ps(_mm512_loadu_ps(cn + j),
                                         _mm512_mul_ps(two, _mm512_loadu_ps(row + j)));
                __mmask16 lt = _mm512_cmp_ps_mask(v, vb, _CMP_LT_OQ);
                vb = _mm512_mask_mov_ps(vb, lt, v);
                vi = _mm512_mask_mov_epi32(vi, lt, idx);
                idx = _mm512_add_epi32(idx, step);
            }
            lanes_finish_avx512(vb, vi, c0, &best[i], &bi[i]);
        }
        if (nv < nc)
            km_row_argmin(row + nv, cn + nv, nc - nv, c0 + (int32_t)nv, &best[i], &bi[i]);
    }
}

static void small_argmin_avx512(const float *x, size_t nb, size_t d, const float *cT,
                                const float *cn, size_t kp, float *best, int32_t *bi)
{
    const __m512 two = _mm512_set1_ps(2.0f);
    const __m512i step = _mm512_set1_epi32(16);
    const __m512i idx0 = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    size_t i = 0;
    for (; i + 4 <= nb; i += 4) { /* four points at once: independent chains */
        const float *x0 = x + i * d, *x1 = x0 + d, *x2 = x1 + d, *x3 = x2 + d;
        __m512 vb0 = _mm512_set1_ps(INFINITY), vb1 = vb0, vb2 = vb0, vb3 = vb0;
        __m512i vi0 = _mm512_setzero_si512(), vi1 = vi0, vi2 = vi0, vi3 = vi0, idx = idx0;
        for (size_t j = 0; j < kp; j += 16) {
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
            for (size_t t = 0; t < d; t++) {
                __m512 c = _mm512_loadu_ps(cT + t * kp + j);
                a0 = _mm512_add_ps(a0, _mm512_mul_ps(_mm512_set1_ps(x0[t]), c));
                a1 = _mm512_add_ps(a1, _mm512_mul_ps(_mm512_set1_ps(x1[t]), c));
                a2 = _mm512_add_ps(a2, _mm512_mul_ps(_mm512_set1_ps(x2[t]), c));
                a3 = _mm512_add_ps(a3, _mm512_mul_ps(_mm512_set1_ps(x3[t]), c));
            }
            __m512 n = _mm512_loadu_ps(cn + j);
            __m512 v0 = _mm512_sub_ps(n, _mm512_mul_ps(two, a0));
            __m512 v1 = _mm512_sub_ps(n, _mm512_mul_ps(two, a1));
            __m512 v2 = _mm512_sub_ps(n, _mm512_mul_ps(two, a2));
            __m512 v3 = _mm512_sub_ps(n, _mm512_mul_ps(two, a3));
            __mmask16 l0 = _mm512_cmp_ps_mask(v0, vb0, _CMP_LT_OQ);
            __mmask16 l1 = _mm512_cmp_ps_mask(v1, vb1, _CMP_LT_OQ);
            __mmask16 l2 = _mm512_cmp_ps_mask(v2, vb2, _CMP_LT_OQ);
            __mmask16 l3 = _mm512_cmp_ps_mask(v3, vb3, _CMP_LT_OQ);
            vb0 = _mm512_mask_mov_ps(vb0, l0, v0);
            vb1 = _mm512_mask_mov_ps(vb1, l1, v1);
            vb2 = _mm512_mask_mov_ps(vb2, l2, v2);
            vb3 = _mm512_mask_mov_ps(vb3, l3, v3);
            vi0 = _mm512_mask_mov_epi32(vi0, l0, idx);
            vi1 = _mm512_mask_mov_epi32(vi1, l1, idx);
            vi2 = _mm512_mask_mov_epi32(vi2, l2, idx);
            vi3 = _mm512_mask_mov_epi32(vi3, l3, idx);
            idx = _mm512_add_epi32(idx, step);
        }
        for (size_t q = 0; q < 4; q++) {
            best[i + q] = INFINITY;
            bi[i + q] = 0;
        }
        lanes_finish_avx512(vb0, vi0, 0, &best[i], &bi[i]);
        lanes_finish_avx512(vb1, vi1, 0, &best[i + 1], &bi[i + 1]);
        lanes_finish_avx512(vb2, vi2, 0, &best[i + 2], &bi[i + 2]);
        lanes_finish_avx512(vb3, vi3, 0, &best[i + 3], &bi[i + 3]);
    }
    for (; i < nb; i++) {
        const float *xi = x + i * d;
        __m512 vb = _mm512_set1_ps(INFINITY);
        __m512i vi = _mm512_setzero_si512(), idx = idx0;
        for (size_t j = 0; j < kp; j += 16) {
            __m512 a = _mm512_setzero_ps();
            for (size_t t = 0; t < d; t++)
                a = _mm512_add_ps(a, _mm512_mul_ps(_mm512_set1_ps(xi[t]),
                                                   _mm512_loadu_ps(cT + t * kp + j)));
            __m512 v = _mm512_sub_ps(_mm512_loadu_ps(cn + j), _mm512_mul_ps(two, a));
            __mmask16 lt = _mm512_cmp_ps_mask(v, vb, _CMP_LT_OQ);
            vb = _mm512_mask_mov_ps(vb, lt, v);
            vi = _mm512_mask_mov_epi32(vi, lt, idx);
            idx = _mm512_add_epi32(idx, step);
        }
        best[i] = INFINITY;
        bi[i] = 0;
        lanes_finish_avx512(vb, vi, 0, &best[i], &bi[i]);
    }
}

static float l2sq_avx512(const float *a, const float *b, size_t d)
{
    __m512 s0 = _mm512_setzero_ps();
    size_t j = 0;
    for (; j + 16 <= d; j += 16) {
        __m512 t = _mm512_sub_ps(_mm512_loadu_ps(a + j), _mm512_loadu_ps(b + j));
        s0 = _mm512_add_ps(s0, _mm512_mul_ps(t, t));
    }
    if (j < d) { /* the tail goes to the first d - j sums */
        __mmask16 m = (__mmask16)((1u << (d - j)) - 1);
        __m512 t = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + j), _mm512_maskz_loadu_ps(m, b + j));
        s0 = _mm512_add_ps(s0, _mm512_mul_ps(t, t));
    }
    /* pairwise: s[l] += s[l + 8], then + 4, + 2, + 1 */
    __m256 h8 = _mm256_add_ps(_mm512_castps512_ps256(s0),
                              _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(s0), 1)));
    __m128 h4 = _mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps(h8, 1));
    __m128 h2 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
    __m128 h1 = _mm_add_ss(h2, _mm_shuffle_ps(h2, h2, 1));
    return _mm_cvtss_f32(h1);
}

static void seed_chunk_T_avx512(const float *xT, size_t ld, size_t m, size_t d, const float *c,
                                float *d2)
{
    km_seed_chunk_T(xT, ld, m, d, c, d2);
}

const vqs_km_kernels vqs_km_kernels_avx512 = {
    .level = VQS_SIMD_AVX512,
    .tile_argmin = tile_argmin_avx512,
    .small_argmin = small_argmin_avx512,
    .l2sq = l2sq_avx512,
    .seed_chunk_T = seed_chunk_T_avx512,
};
#else
typedef int km_avx512_unused; /* not x86-64: this level does not exist */
#endif
