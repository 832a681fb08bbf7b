/*
 * km_kernels.h: the k-means kernels (codebooks/kmeans*.c), one table per
 * SIMD level, as index/kernels does for the scan kernels.
 *
 * Each kernel exists as plain C (km_ref.c) and, on x86-64, as AVX2
 * (km_avx2.c) and AVX-512 (km_avx512.c) versions, each file compiled with
 * its own -m flags (CMakeLists.txt) and reached only through the table of
 * the run-time SIMD level (vqs_simd_level: CPU check, VQS_SIMD override).
 * Every version computes bit-identical results: the same float operations
 * in the same order, no FMA contraction (ISO C mode: -std=c11 implies
 * -ffp-contract=off), so a seed gives the same centroids whatever the
 * level. Rejected: target attributes on functions in kmeans.c (what this
 * replaced: one file mixing three instruction sets); target_clones (ignores
 * VQS_SIMD, so the lower levels could not be tested on an AVX-512 machine).
 */
#ifndef VQS_KM_KERNELS_H
#define VQS_KM_KERNELS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "vqs_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KM_SEED_CHUNK 1024 /* rows per task in the k-means++ distance update */
#define KM_SMALL_D 8       /* d <= KM_SMALL_D: small_argmin and seed_chunk_T, no BLAS */

typedef struct vqs_km_kernels {
    vqs_simd level;
    /* Running argmin over the nb rows of an assignment tile (row i: ip + i *
     * nc): v_j = cn[j] - 2 ip[j] for j < nc; (best[i], bi[i]) becomes the
     * smallest v_j (index c0 + j) if it is below best[i]; ties go to the
     * lowest index. */
    void (*tile_argmin)(const float *ip, size_t nb, size_t nc, const float *cn, int32_t c0,
                        float *best, int32_t *bi);
    /* Small d: nearest centroid of each of nb points x without a BLAS tile.
     * cT: the centroids transposed, d rows of kp floats (kp: k rounded up to
     * 16; padding columns have cn = +inf). v_j = cn[j] - 2 <x, c_j>, the dot
     * product summed over t in order; smallest v_j, ties to the lowest j. */
    void (*small_argmin)(const float *x, size_t nb, size_t d, const float *cT, const float *cn,
                         size_t kp, float *best, int32_t *bi);
    /* |a - b|^2 as 16 interleaved partial sums (element t goes to sum t %
     * 16), added pairwise at the end: the order every version uses. */
    float (*l2sq)(const float *a, const float *b, size_t d);
    /* Small d, no pruning: d2[i] = min(d2[i], sum_t (xT[t * ld + i] -
     * c[t])^2) for m <= KM_SEED_CHUNK points, summed over t in order. */
    void (*seed_chunk_T)(const float *xT, size_t ld, size_t m, size_t d, const float *c,
                         float *d2);
} vqs_km_kernels;

extern const vqs_km_kernels vqs_km_kernels_ref;
#if defined(__x86_64__) && defined(__GNUC__)
#define VQS_KM_X86 1
extern const vqs_km_kernels vqs_km_kernels_avx2;
extern const vqs_km_kernels vqs_km_kernels_avx512;
#endif

/* The table of the run-time SIMD level (vqs_simd_level), chosen once.
 * Thread-safe. */
const vqs_km_kernels *vqs_km_kernels_active(void);

/* ---- shared by the per-level files (compiled with each file's flags) ---- */

/* One row of tile_argmin: the plain C version, and the tail (the columns
 * past the last full vector) of the SIMD ones. */
static inline void km_row_argmin(const float *ip, const float *cn, size_t nc, int32_t c0,
                                 float *best, int32_t *bi)
{
    float b = *best;
    int32_t x = *bi;
    for (size_t j = 0; j < nc; j++) {
        float v = cn[j] - 2.0f * ip[j];
        if (v < b) {
            b = v;
            x = c0 + (int32_t)j;
        }
    }
    *best = b;
    *bi = x;
}

/* seed_chunk_T: element-wise loops the compiler vectorises; compiled once
 * per SIMD level (same operations, so the same results). */
static inline void km_seed_chunk_T(const float *xT, size_t ld, size_t m, size_t d,
                                   const float *c, float *d2)
{
    float a[KM_SEED_CHUNK];
    for (size_t i = 0; i < m; i++)
        a[i] = 0;
    for (size_t q = 0; q < d; q++) {
        const float *xq = xT + q * ld;
        float cq = c[q];
        for (size_t i = 0; i < m; i++)
            a[i] += (xq[i] - cq) * (xq[i] - cq);
    }
    for (size_t i = 0; i < m; i++)
        d2[i] = a[i] < d2[i] ? a[i] : d2[i];
}

#ifdef __cplusplus
}
#endif
#endif
