/*
 * vqs_kernels.h: the scan kernels of the index, one table per SIMD level.
 *
 * Every kernel exists as a scalar reference (ref.c), an AVX2 version
 * (avx2.c, compiled with -mavx2 -mfma -mf16c -mpopcnt) and an AVX-512 version
 * (avx512.c, compiled with -mavx512f/bw/vl/dq; a VPOPCNTDQ or VBMI kernel is
 * a function with its own target attribute, chosen only when
 * vqs_simd_has_vpopcntdq() / vqs_simd_has_vbmi()). The level is chosen once at run
 * time from the CPU (cpuid + xgetbv: the OS must save the registers); the
 * environment variable VQS_SIMD=scalar|avx2|avx512 forces a lower level (a
 * level above what the CPU has is refused with one warning line on stderr and
 * the best available one is used).
 *
 * Kernels are plain array functions: they know nothing of codecs. The index
 * turns a prepared codec query into their arguments (vqs_codec_query_view).
 * They compute the same value as the reference up to float summation order;
 * kernel tests compare every level with ref.c on awkward sizes and require the
 * same top-k. Scores are sign-agnostic sums; the index negates tables for
 * inner products so that its top-k always keeps the smallest values.
 *
 * Codes are rows of `stride` bytes (stride >= the bytes the kernel reads).
 * No kernel allocates; all may run concurrently.
 */
#ifndef VQS_KERNELS_H
#define VQS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "vqs_common.h"
#include "vqs_float.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The element types of SQ codes and the value v(c) a code stands for:
 * vqs_elem (common/vqs_float.h), shared with the codecs. */

/* PQ 4-bit fast scan layout ("packed"): vectors in blocks of 32; a block is
 * M2 = M rounded up to even sub-quantizers, stored as M2 / 2 groups of 32
 * bytes; group p (sub-quantizers 2p, 2p + 1) at byte 32 p of the block:
 *   byte      t (t < 16): code of vector t for sq 2p in the low nibble, of
 *                         vector t + 16 for sq 2p in the high nibble;
 *   byte 16 + t:          the same for sq 2p + 1.
 * (vqs's own layout, not FAISS's pq4 permutation; the reasons are in ref.c,
 * "PQ 4-bit fast scan".) Padding (vectors past n, sq M for odd M) is zero.
 * Packed size of n codes: vqs_pq4fs_packed_size(n, M). */

/* PQ 8-bit fast scan layout ("packed"): vectors in blocks of 64; a block is
 * M groups of 64 bytes, group m = byte (sub-quantizer) m of the block's 64
 * vectors: vector t of block b, sub-quantizer m at byte
 *   b * 64 * M + m * 64 + t.
 * Padding vectors (past n in the last block) are code 0 (bytes 0). One
 * 512-bit load is the 64 indices of a sub-quantizer (ref.c, "PQ 8-bit fast
 * scan"). Packed size of n codes: vqs_pq8fs_packed_size(n, M). */

typedef struct vqs_kernels {
    vqs_simd level;
    const char *name; /* "scalar", "avx2", "avx512" */

    /* ---- look-up tables (PQ, RVQ, BIN's estimator) ---- */
    /* out[i] = bias + sum_{j < m} lut[j * 256 + row_i[j]], row_i = codes + i * stride. */
    void (*lut8)(const float *lut, size_t m, float bias, const uint8_t *codes, size_t stride,
                 size_t n, float *out);
    /* out[i] = bias + sum_{j < m} lut[j * 16 + nibble j of row_i] (U4 nibble order). */
    void (*lut4)(const float *lut, size_t m, float bias, const uint8_t *codes, size_t stride,
                 size_t n, float *out);

    /* ---- scalar codes: computed on the codes, no decode buffer ---- */
    /* out[i] = sum_{j < d} (q[j] - w[j] * v(row_i, j))^2 */
    void (*sq_l2)(vqs_elem t, const float *q, const float *w, size_t d, const uint8_t *codes,
                  size_t stride, size_t n, float *out);
    /* out[i] = bias + sum_{j < d} q[j] * v(row_i, j) */
    void (*sq_ip)(vqs_elem t, const float *q, float bias, size_t d, const uint8_t *codes,
                  size_t stride, size_t n, float *out);

    /* ---- PQ 4-bit fast scan ---- */
    /* lut8: M2 * 16 bytes (quantised tables, see vqs_pq4fs_quantize; tables
     * M..M2-1 are zero; the kernels read only the first M * 16 bytes and
     * ignore the padding sub-quantizer's nibbles). packed: nblocks blocks.
     * out[b * 32 + t] = sum over sub-quantizers j < M of lut8[j * 16 + code]
     * for vector t of block b (saturating is never needed:
     * vqs_pq4fs_quantize keeps the sum <= 65535; a larger sum wraps mod
     * 2^16). */
    void (*pq4fs_scan)(const uint8_t *lut8, size_t M, const uint8_t *packed, size_t nblocks,
                       uint16_t *out);

    /* vqs_pq4fs_quantize at this level (the same bias, scale and err; lut8
     * entries equal up to the rounding of a fused multiply-add). */
    void (*pq4fs_quantize)(const float *lut, size_t M, float limit, uint8_t *lut8, float *bias,
                           float *scale, float *err);

    /* ---- PQ 8-bit fast scan ---- */
    /* lut8: M * 256 bytes (quantised tables, see vqs_pq8fs_quantize).
     * packed: nblocks blocks of 64 * M bytes (vqs_pq8fs layout).
     * out[b * 64 + t] = sum over m < M of lut8[m * 256 + code byte m of
     * vector t of block b] (mod 2^16; vqs_pq8fs_quantize keeps every sum
     * <= 65535). The AVX-512 entry uses AVX-512 VBMI (vpermt2b) when
     * vqs_simd_has_vbmi(), else a scalar kernel. */
    void (*pq8fs_scan)(const uint8_t *lut8, size_t M, const uint8_t *packed, size_t nblocks,
                       uint16_t *out);

    /* ---- binary ---- */
    /* out[i] = popcount(q XOR row_i) over nbytes bytes. */
    void (*hamming)(const uint8_t *q, size_t nbytes, const uint8_t *codes, size_t stride,
                    size_t n, uint32_t *out);
    /* The BIN codec's asymmetric estimator (codebooks/binary.c,
     * bin_query_score with its look-up table): row = nb bit bytes, then float
     * r, float a (unaligned). pos = sum_{t < nb} tab[t * 256 + row[t]];
     * est = a > 0 ? r * ((2 * pos - sumv) * isd) / a : 0 (0 if not finite);
     * out = l2 ? cst + r^2 - 2 est : cst + est, clamped to +-FLT_MAX. */
    void (*bin_est)(const float *tab, size_t nb, float cst, float sumv, float isd, int l2,
                    const uint8_t *codes, size_t stride, size_t n, float *out);

    /* ---- exact scores in double (re-scoring, exact search) ---- */
    /* sum_j (x[j] - y[j])^2 and sum_j x[j] y[j], each term and the sum in
     * double. The levels differ from the reference only in the order of the
     * double additions (a relative difference of ~d * 2^-53). */
    double (*l2_f64)(const float *x, const float *y, size_t d);
    double (*ip_f64)(const float *x, const float *y, size_t d);

    /* ---- tables ---- */
    /* out[i] = a[i] + b[i] (float adds: every level gives the same bits). An
     * IVF-PQ search's per-list table is the list's precomputed table plus
     * the query's, once per probed list. */
    void (*add_f32)(const float *a, const float *b, size_t n, float *out);

    /* ---- selection (top-k support) ---- */
    /* Writes the indices i < n with x[i] < thr, ascending; returns how many. */
    size_t (*select_lt)(const float *x, size_t n, float thr, uint32_t *idx);
    /* Same for uint16 scores, x[i] <= thr. */
    size_t (*select_le_u16)(const uint16_t *x, size_t n, uint16_t thr, uint32_t *idx);
} vqs_kernels;

/* The table for a level, or NULL if this CPU (or this build) cannot run it. */
const vqs_kernels *vqs_kernels_for(vqs_simd level);
/* The level chosen at run time (see the file comment). Thread-safe. */
const vqs_kernels *vqs_kernels_active(void);
/* (The level itself, vqs_simd_level() and the CPU queries are in
 * common/vqs_common.h: the quantizer core's k-means kernels use them too.) */

/* ---- fast-scan helpers (level-independent, ref.c) ---- */
size_t vqs_pq4fs_packed_size(size_t n, size_t M);
/* codes: n rows of stride bytes in the U4 nibble order (PQ Mx4 codes).
 * packed: vqs_pq4fs_packed_size(n, M) bytes, written (padding vectors zero). */
void vqs_pq4fs_pack(const uint8_t *codes, size_t stride, size_t n, size_t M, uint8_t *packed);
/* The 4-bit codes of vector i back from the packed layout, in the U4 nibble
 * order: code: (M + 1) / 2 bytes. */
void vqs_pq4fs_get(const uint8_t *packed, size_t M, size_t i, uint8_t *code);
/* Exact float scores of the listed vectors (indices into packed) straight
 * from the packed layout: out[i] = bias + sum_j lut[j * 16 + code_j], summed
 * as vqs_ref_lut4 does, whatever the SIMD level. */
void vqs_pq4fs_rescore(const float *lut, size_t M, float bias, const uint8_t *packed,
                       const uint32_t *idx, size_t n, float *out);
/* (At the active SIMD level: vqs_kernels.pq4fs_quantize.)
 * Quantises float tables lut (M * 16) to lut8 (M2 * 16 bytes) so that for
 * any code, float_sum ~= bias + scale * u16_sum, with
 *   float_sum >= bias + scale * u16_sum - *err            for every code,
 *   |float_sum - (bias + scale * u16_sum)| <= *err        for every code with
 *                                                         float_sum <= limit
 * (the bounds the index uses to keep every candidate that might beat a
 * threshold). float_sum is the float sum of the M table entries
 * (vqs_ref_lut4) and bias + scale * u16 is evaluated in float; *err covers
 * the rounding of both (ref.c). limit: the largest float_sum the caller
 * still needs resolved (+INFINITY: all; then the two-sided bound holds for
 * every code); entries that alone push a sum past it saturate, so the 8
 * bits are spent below it. One common scale: without a limit, a table with
 * a far-away centroid (an outlier) coarsens all tables. A non-finite table
 * value gives *err = +Inf. */
void vqs_pq4fs_quantize(const float *lut, size_t M, float limit, uint8_t *lut8, float *bias,
                        float *scale, float *err);

/* 8-bit codes (PQ Mx8: M bytes per vector): ceil(n / 64) * 64 * M bytes. */
size_t vqs_pq8fs_packed_size(size_t n, size_t M);
/* codes: n rows of stride (>= M) bytes. packed: vqs_pq8fs_packed_size(n, M)
 * bytes, written (padding vectors zero). */
void vqs_pq8fs_pack(const uint8_t *codes, size_t stride, size_t n, size_t M, uint8_t *packed);
/* The M code bytes of vector i back from the packed layout. */
void vqs_pq8fs_get(const uint8_t *packed, size_t M, size_t i, uint8_t *code);
/* vqs_pq4fs_rescore for 8-bit codes (vqs_ref_lut8's order). */
void vqs_pq8fs_rescore(const float *lut, size_t M, float bias, const uint8_t *packed,
                       const uint32_t *idx, size_t n, float *out);
/* vqs_pq4fs_quantize for 8-bit tables: lut (M * 256 floats) to lut8 (M * 256
 * bytes); per-table minimum summed into bias, one common scale so that
 * every table maps into 0..R, R = 255, or 65535 / M when M > 257 (or only
 * its part below limit, the rest saturating); then the same two bounds,
 * float_sum the float sum of the M entries (vqs_ref_lut8 with bias 0) and
 * bias + scale * u16 evaluated in float. Non-finite table value: lut8 = 0,
 * bias = 0, scale = 1, *err = +Inf. */
void vqs_pq8fs_quantize(const float *lut, size_t M, float limit, uint8_t *lut8, float *bias,
                        float *scale, float *err);

#ifdef __cplusplus
}
#endif
#endif
