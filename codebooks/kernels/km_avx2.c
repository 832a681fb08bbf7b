/*
 * km_avx2.c: the AVX2 k-means kernels (km_kernels.h). Compiled with this
 * level's -m flags only (CMakeLists.txt); reached only through the table of
 * the run-time SIMD level. Results are bit-identical to km_ref.c: the same
 * float operations in the same order (no FMA: ISO C mode does not contract
 * a * b + c).
 *
 * Design decisions:
 * - The argmin keeps a running minimum and its index per lane, then
 *   reduces the lanes (lanes_finish): the smallest value, and among the
 *   lanes holding it the lowest index, which is the first index in order
 *   since each lane's index only grows (ties keep the earlier one: < ).
 * - l2sq keeps the 16 partial sums of the reference in two registers and
 *   adds them pairwise as the reference does.
 */
#if defined(__x86_64__) && defined(__GNUC__)
#include "km_kernels.h"

#include <immintrin.h>

/* The lanes' (value, index) -> the smallest value and the lowest index
 * holding it; updates (*best, *bi) if that value is below *best. */
static inline void lanes_finish_avx2(__m256 vb, __m256i vi, int32_t c0, float *best, int32_t *bi)
{
    __m256 m = _mm256_min_ps(vb, _mm256_permute2f128_ps(vb, vb, 1));
    m = _mm256_min_ps(m, _mm256_shuffle_ps(m, m, _MM_SHUFFLE(1, 0, 3, 2)));
    m = _mm256_min_ps(m, _mm256_shuffle_ps(m, m, _MM_SHUFFLE(2, 3, 0, 1)));
    float mv = _mm256_cvtss_f32(m);
    if (!(mv < *best))
        return;
    __m256i cand = _mm256_blendv_epi8(_mm256_set1_epi32(INT32_MAX), vi,
                                      _mm256_castps_si256(_mm256_cmp_ps(vb, m, _CMP_EQ_OQ)));
    __m256i q = _mm256_min_epi32(cand, _mm256_permute2x128_si256(cand, cand, 1));
    q = _mm256_min_epi32(q, _mm256_shuffle_epi32(q, _MM_SHUFFLE(1, 0, 3, 2)));
    q = _mm256_min_epi32(q, _mm256_shuffle_epi32(q, _MM_SHUFFLE(2, 3, 0, 1)));
    *best = mv;
    *bi = c0 + _mm256_cvtsi256_si32(q);
}

static void tile_argmin_avx2(const float *ip, size_t nb, size_t nc, const float *cn, int32_t c0,
                             float *best, int32_t *bi)
{
    const __m256 two = _mm256_set1_ps(2.0f);
    const __m256i step = _mm256_set1_epi32(8), idx0 = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    size_t nv = nc / 8 * 8;
    for (size_t i = 0; i < nb; i++) {
        const float *row = ip + i * nc;
        if (nv) {
            __m256 vb = _mm256_set1_ps(INFINITY);
            __m256i vi = _mm256_setzero_si256(), idx = idx0;
            for (size_t j = 0; j < nv; j += 8) {
                __m256 v = _mm256_sub_ps(_mm256_loadu_ps(cn + j),
                                         _mm256_mul_ps(two, _mm256_loadu_ps(row + j)));
                __m256 lt = _mm256_cmp_ps(v, vb, _CMP_LT_OQ);
                vb = _mm256_blendv_ps(vb, v, lt);
                vi = _mm256_blendv_epi8(vi, idx, _mm256_castps_si256(lt));
                idx = _mm256_add_epi32(idx, step);
            }
            lanes_finish_avx2(vb, vi, c0, &best[i], &bi[i]);
        }
        if (nv < nc)
            km_row_argmin(row + nv, cn + nv, nc - nv, c0 + (int32_t)nv, &best[i], &bi[i]);
    }
}

static void small_argmin_avx2(const float *x, size_t nb, size_t d, const float *cT,
                              const float *cn, size_t kp, float *best, int32_t *bi)
{
    const __m256 two = _mm256_set1_ps(2.0f);
    const __m256i step = _mm256_set1_epi32(8);
    for (size_t i = 0; i < nb; i++) {
        const float *xi = x + i * d;
        __m256 vb = _mm256_set1_ps(INFINITY);
        __m256i vi = _mm256_setzero_si256(), idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        for (size_t j = 0; j < kp; j += 8) {
            __m256 a = _mm256_setzero_ps();
            for (size_t t = 0; t < d; t++)
                a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_set1_ps(xi[t]),
                                                   _mm256_loadu_ps(cT + t * kp + j)));
            __m256 v = _mm256_sub_ps(_mm256_loadu_ps(cn + j), _mm256_mul_ps(two, a));
            __m256 lt = _mm256_cmp_ps(v, vb, _CMP_LT_OQ);
            vb = _mm256_blendv_ps(vb, v, lt);
            vi = _mm256_blendv_epi8(vi, idx, _mm256_castps_si256(lt));
            idx = _mm256_add_epi32(idx, step);
        }
        best[i] = INFINITY;
        bi[i] = 0;
        lanes_finish_avx2(vb, vi, 0, &best[i], &bi[i]);
    }
}

static float l2sq_avx2(const float *a, const float *b, size_t d)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    size_t j = 0;
    for (; j + 16 <= d; j += 16) {
        __m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j));
        __m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(a + j + 8), _mm256_loadu_ps(b + j + 8));
        s0 = _mm256_add_ps(s0, _mm256_mul_ps(t0, t0));
        s1 = _mm256_add_ps(s1, _mm256_mul_ps(t1, t1));
    }
    if (j < d) { /* the tail goes to the first d - j sums */
        float s[16];
        _mm256_storeu_ps(s, s0);
        _mm256_storeu_ps(s + 8, s1);
        for (size_t l = 0; j + l < d; l++) {
            float t = a[j + l] - b[j + l];
            s[l] += t * t;
        }
        s0 = _mm256_loadu_ps(s);
        s1 = _mm256_loadu_ps(s + 8);
    }
    /* pairwise: s[l] += s[l + 8], then + 4, + 2, + 1 */
    __m256 h8 = _mm256_add_ps(s0, s1);
    __m128 h4 = _mm_add_ps(_mm256_castps256_ps128(h8), _mm256_extractf128_ps(h8, 1));
    __m128 h2 = _mm_add_ps(h4, _mm_movehl_ps(h4, h4));
    __m128 h1 = _mm_add_ss(h2, _mm_shuffle_ps(h2, h2, 1));
    return _mm_cvtss_f32(h1);
}

static void seed_chunk_T_avx2(const float *xT, size_t ld, size_t m, size_t d, const float *c,
                              float *d2)
{
    km_seed_chunk_T(xT, ld, m, d, c, d2);
}

const vqs_km_kernels vqs_km_kernels_avx2 = {
    .level = VQS_SIMD_AVX2,
    .tile_argmin = tile_argmin_avx2,
    .small_argmin = small_argmin_avx2,
    .l2sq = l2sq_avx2,
    .seed_chunk_T = seed_chunk_T_avx2,
};
#else
typedef int km_avx2_unused; /* not x86-64: this level does not exist */
#endif
