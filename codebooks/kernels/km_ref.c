/*
 * km_ref.c: the plain C k-means kernels (km_kernels.h), the definition the
 * AVX2 and AVX-512 versions match bit for bit. Compiled without -m flags,
 * so it runs on any CPU.
 *
 * Design decisions:
 * - The argmin loops are scalar: GCC 12 does not vectorise an argmin, nor a
 *   float sum without -ffast-math, which would make the order the
 *   compiler's choice; that is why the other levels are written with
 *   intrinsics. Rejected: auto-vectorisation of the whole family.
 */
#include "km_kernels.h"

static void tile_argmin_c(const float *ip, size_t nb, size_t nc, const float *cn, int32_t c0,
                          float *best, int32_t *bi)
{
    for (size_t i = 0; i < nb; i++)
        km_row_argmin(ip + i * nc, cn, nc, c0, &best[i], &bi[i]);
}

static void small_argmin_c(const float *x, size_t nb, size_t d, const float *cT, const float *cn,
                           size_t kp, float *best, int32_t *bi)
{
    for (size_t i = 0; i < nb; i++) {
        const float *xi = x + i * d;
        float b = INFINITY;
        int32_t bx = 0;
        for (size_t j = 0; j < kp; j++) {
            float a = 0;
            for (size_t t = 0; t < d; t++)
                a += xi[t] * cT[t * kp + j];
            float v = cn[j] - 2.0f * a;
            if (v < b) {
                b = v;
                bx = (int32_t)j;
            }
        }
        best[i] = b;
        bi[i] = bx;
    }
}

static float l2sq_c(const float *a, const float *b, size_t d)
{
    float s[16] = {0};
    size_t j = 0;
    for (; j + 16 <= d; j += 16)
        for (size_t l = 0; l < 16; l++) {
            float t = a[j + l] - b[j + l];
            s[l] += t * t;
        }
    for (size_t l = 0; j + l < d; l++) {
        float t = a[j + l] - b[j + l];
        s[l] += t * t;
    }
    for (size_t w = 8; w >= 1; w /= 2)
        for (size_t l = 0; l < w; l++)
            s[l] += s[l + w];
    return s[0];
}

static void seed_chunk_T_c(const float *xT, size_t ld, size_t m, size_t d, const float *c,
                           float *d2)
{
    km_seed_chunk_T(xT, ld, m, d, c, d2);
}

const vqs_km_kernels vqs_km_kernels_ref = {
    .level = VQS_SIMD_SCALAR,
    .tile_argmin = tile_argmin_c,
    .small_argmin = small_argmin_c,
    .l2sq = l2sq_c,
    .seed_chunk_T = seed_chunk_T_c,
};
