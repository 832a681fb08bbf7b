/*
 * kernels_internal.h: the per-level tables and the reference functions that
 * the SIMD files fall back to for anything they do not accelerate.
 */
#ifndef VQS_KERNELS_INTERNAL_H
#define VQS_KERNELS_INTERNAL_H

#include "vqs_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const vqs_kernels vqs_kernels_ref;
#if defined(__x86_64__)
extern const vqs_kernels vqs_kernels_avx2;
extern const vqs_kernels vqs_kernels_avx512;
/* hamming kernels shared across levels: the AVX-512 entry hands rows under
 * 64 bytes to the AVX2 kernel, and uses the one without VPOPCNTDQ on CPUs
 * that lack it (exported so that tests reach it on every AVX-512 CPU). */
void vqs_avx2_hamming(const uint8_t *q, size_t nbytes, const uint8_t *codes, size_t stride,
                      size_t n, uint32_t *out);
/* bin_est of the AVX2 level, also the AVX-512 entry (see avx512.c) */
void vqs_avx2_bin_est(const float *tab, size_t nb, float cst, float sumv, float isd, int l2,
                      const uint8_t *codes, size_t stride, size_t n, float *out);
/* pq8fs_scan: the AVX2 level's scalar kernel, also the AVX-512 entry on CPUs
 * without VBMI; the VBMI kernel itself (call only if vqs_simd_has_vbmi()) */
void vqs_avx2_pq8fs_scan(const uint8_t *lut8, size_t M, const uint8_t *packed, size_t nblocks,
                         uint16_t *out);
void vqs_avx512_pq8fs_scan_vbmi(const uint8_t *lut8, size_t M, const uint8_t *packed,
                                size_t nblocks, uint16_t *out);
void vqs_avx512_hamming_novpopcnt(const uint8_t *q, size_t nbytes, const uint8_t *codes,
                                  size_t stride, size_t n, uint32_t *out);
#endif

void vqs_ref_lut8(const float *lut, size_t m, float bias, const uint8_t *codes, size_t stride,
                  size_t n, float *out);
void vqs_ref_lut4(const float *lut, size_t m, float bias, const uint8_t *codes, size_t stride,
                  size_t n, float *out);
void vqs_ref_sq_l2(vqs_elem t, const float *q, const float *w, size_t d, const uint8_t *codes,
                   size_t stride, size_t n, float *out);
void vqs_ref_sq_ip(vqs_elem t, const float *q, float bias, size_t d, const uint8_t *codes,
                   size_t stride, size_t n, float *out);
void vqs_ref_pq4fs_scan(const uint8_t *lut8, size_t M, const uint8_t *packed, size_t nblocks,
                        uint16_t *out);
void vqs_ref_pq4fs_quantize(const float *lut, size_t M, float limit, uint8_t *lut8, float *bias,
                            float *scale, float *err);
double vqs_ref_l2_f64(const float *x, const float *y, size_t d);
double vqs_ref_ip_f64(const float *x, const float *y, size_t d);
void vqs_ref_pq8fs_scan(const uint8_t *lut8, size_t M, const uint8_t *packed, size_t nblocks,
                        uint16_t *out);
void vqs_ref_hamming(const uint8_t *q, size_t nbytes, const uint8_t *codes, size_t stride,
                     size_t n, uint32_t *out);
void vqs_ref_bin_est(const float *tab, size_t nb, float cst, float sumv, float isd, int l2,
                     const uint8_t *codes, size_t stride, size_t n, float *out);
size_t vqs_ref_select_lt(const float *x, size_t n, float thr, uint32_t *idx);
size_t vqs_ref_select_le_u16(const uint16_t *x, size_t n, uint16_t thr, uint32_t *idx);

/* v(row, j) of the reference (vqs_elem comment in vqs_kernels.h). */
float vqs_ref_sq_value(vqs_elem t, const uint8_t *row, size_t j);
void vqs_ref_add_f32(const float *a, const float *b, size_t n, float *out);

#ifdef __cplusplus
}
#endif
#endif
