/*
 * vqs_simd_avx2.h: small AVX2 helpers shared by the kernels of several
 * libraries (index/kernels, codebooks/kernels). Include only from files
 * compiled for AVX2 (vqs_isa_sources).
 */
#ifndef VQS_SIMD_AVX2_H
#define VQS_SIMD_AVX2_H

#include <immintrin.h>

/* the smallest / largest of the 8 lanes */
static inline float vqs_hmin8(__m256 v)
{
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

static inline float vqs_hmax8(__m256 v)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}

#endif
