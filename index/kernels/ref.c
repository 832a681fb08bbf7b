/*
 * ref.c: the scalar reference of every scan kernel (vqs_kernels.h), the
 * definition the AVX2 and AVX-512 versions are tested against, and the
 * level-independent fast-scan helpers.
 *
 * Design decisions:
 * - Straightforward loops in the order the header's formulas are written,
 *   float accumulation (as the codecs' own scorers), no tricks: this file is
 *   the specification. It is compiled without -march flags, so it also runs
 *   on a CPU without AVX2.
 * - fp8/half/bfloat16 values come from the exact conversions of
 *   common/vqs_float.h (the ones the codecs use), so a SIMD kernel that
 *   converts in registers is checked against them.
 */
#include "kernels_internal.h"
#include "fs4_quantize.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "vqs_common.h"
#include "vqs_float.h"

/* ==== look-up tables ===================================================== */

void vqs_ref_lut8(const float *lut, size_t m, float bias, const uint8_t *codes, size_t stride,
                  size_t n, float *out)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = codes + i * stride;
        float v = 0;
        for (size_t j = 0; j < m; j++)
            v += lut[j * 256 + c[j]];
        out[i] = bias + v;
    }
}

void vqs_ref_lut4(const float *lut, size_t m, float bias, const uint8_t *codes, size_t stride,
                  size_t n, float *out)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = codes + i * stride;
        float v = 0;
        for (size_t j = 0; j < m; j++)
            v += lut[j * 16 + ((c[j >> 1] >> (4 * (j & 1))) & 15)];
        out[i] = bias + v;
    }
}

/* ==== scalar codes ======================================================= */

float vqs_ref_sq_value(vqs_elem t, const uint8_t *row, size_t j)
{
    switch (t) {
    case VQS_ELEM_U8:
        return (float)row[j];
    case VQS_ELEM_S8:
        return (float)(int8_t)row[j];
    case VQS_ELEM_U4:
        return (float)((row[j >> 1] >> (4 * (j & 1))) & 15);
    case VQS_ELEM_F16:
        return vqs_f16_to_f32((uint16_t)(row[2 * j] | (unsigned)row[2 * j + 1] << 8));
    case VQS_ELEM_BF16:
        return vqs_bf16_to_f32((uint16_t)(row[2 * j] | (unsigned)row[2 * j + 1] << 8));
    case VQS_ELEM_E4M3:
        return vqs_e4m3_to_f32(row[j]);
    case VQS_ELEM_E5M2:
        return vqs_e5m2_to_f32(row[j]);
    case VQS_ELEM_F32: {
        float v;
        memcpy(&v, row + 4 * j, sizeof v);
        return v;
    }
    }
    return 0;
}

void vqs_ref_sq_l2(vqs_elem t, const float *q, const float *w, size_t d, const uint8_t *codes,
                   size_t stride, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = codes + i * stride;
        float acc = 0;
        for (size_t j = 0; j < d; j++) {
            float e = q[j] - w[j] * vqs_ref_sq_value(t, c, j);
            acc += e * e;
        }
        out[i] = acc;
    }
}

void vqs_ref_sq_ip(vqs_elem t, const float *q, float bias, size_t d, const uint8_t *codes,
                   size_t stride, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = codes + i * stride;
        float acc = 0;
        for (size_t j = 0; j < d; j++)
            acc += q[j] * vqs_ref_sq_value(t, c, j);
        out[i] = bias + acc;
    }
}

/* ==== PQ 4-bit fast scan ================================================= */
/*
 * Packed layout (this file's own; simpler than FAISS's pq4 permutation, and
 * chosen so that one 256-bit load is ready for _mm256_shuffle_epi8):
 *   M2 = M rounded up to even, np = M2 / 2 pairs of sub-quantizers.
 *   Vectors in blocks of 32; block b starts at packed + b * 32 * np and holds
 *   np groups of 32 bytes, group p (sub-quantizers 2p, 2p+1) at 32 * p:
 *     byte      t  (t < 16): low nibble = code of vector t      for sq 2p,
 *                            high nibble = code of vector t + 16 for sq 2p
 *     byte 16 + t (t < 16): the same for sq 2p + 1
 *   So a 256-bit load of group p has sub-quantizer 2p in its low 128-bit lane
 *   and 2p + 1 in its high lane, exactly as the 32-byte load of quantised
 *   tables 2p, 2p + 1 (lut8 + 32 p): (x & 15) looks up vectors 0..15 and
 *   (x >> 4) vectors 16..31, each lane in its own table. Groups p, p + 1 are
 *   adjacent (64 bytes), as are tables 2p..2p+3, so a 512-bit register holds
 *   four sub-quantizers with the same lane correspondence.
 *   Padding (vectors n..32*nblocks-1, and sq M when M is odd) is zero.
 * Rejected: FAISS's pq4 layout (its own permutation of the vectors inside
 * a block, tied to the order in which its kernels' u16 accumulators come
 * out; vqs packs its own codes, so byte compatibility buys nothing, and
 * here the order is restored by a few shuffles per block of 32 vectors),
 * and one byte per code (twice the bytes to stream).
 *
 * Quantisation (vqs_pq4fs_quantize): table j is shifted by its minimum mn_j
 * (sum into bias) and divided by one common scale = max_j range_j / R,
 * rounded to nearest, clamped to 0..R, with R = 255 or, when M * 255 would
 * not fit a uint16 sum (M > 257), R = 65535 / M. Then for any code
 *   float_sum = bias + scale * u16_sum + sum_j e_j,  |e_j| <= scale / 2
 * and *err is M * scale / 2 (widened by the float rounding of the
 * quantisation itself, fs4_quantize.h) plus a margin for the float
 * arithmetic on both sides
 * (the float sum of the M table values and bias + scale * u16 in float):
 * (M + 4) * FLT_EPSILON * (sum_j A_j + |bias| + scale * M * R), with
 * A_j = max(|mn_j|, |mn_j + scale * R|) (= max_k |lut_jk| up to rounding),
 * doubled when entries saturate (see fs_absmax).
 * Tables with a non-finite value give lut8 = 0, bias = 0, scale = 1 and
 * err = +Inf (the index keeps everything). Rejected: a scale per table
 * (the u8 sum would need a multiply per table in the kernel).
 *
 * Limit: the caller may pass the largest float sum it still cares about
 * (the index: its current k-th key). The common span is then
 * min(max_j range_j, g), g = limit - sum_j mn_j, and entries above
 * mn_j + scale * R saturate at R. A saturated entry under-estimates, so
 * bias + scale * u16_sum - err stays a lower bound of float_sum for every
 * code, and the two-sided bound holds for every code without a saturated
 * entry, which includes every code with float_sum <= limit (each of its
 * entries is within g of its table minimum). *err leaves the saturated
 * entries out. Why: the common span is set by the widest table, and a PQ
 * codebook trained on data with outliers has a few far centroids whose
 * entries dwarf the distances that decide the top k: on the synthetic
 * 1M x 128 set (IVF1024,PQ32x4) the widest table spans ~80,000 while the
 * k-th distance is ~27, so scale ~310, err ~4,000, and 99.9% of the codes
 * survived the filter to be re-scored in float. With the limit, ~1%.
 */

size_t vqs_pq4fs_packed_size(size_t n, size_t M)
{
    return (n + 31) / 32 * 32 * fs_pairs(M);
}

/* byte of (vector t of a block, sub-quantizer j) and the shift of its nibble */
static size_t fs_byte(size_t j, size_t t) { return 32 * (j / 2) + 16 * (j & 1) + (t & 15); }
static unsigned fs_shift(size_t t) { return t < 16 ? 0 : 4; }

void vqs_pq4fs_pack(const uint8_t *codes, size_t stride, size_t n, size_t M, uint8_t *packed)
{
    size_t np = fs_pairs(M), size = vqs_pq4fs_packed_size(n, M);
    if (size) /* packed may be NULL when there is nothing to write */
        memset(packed, 0, size);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = codes + i * stride;
        uint8_t *blk = packed + i / 32 * 32 * np;
        size_t t = i % 32;
        for (size_t j = 0; j < M; j++) {
            unsigned v = (c[j >> 1] >> (4 * (j & 1))) & 15;
            blk[fs_byte(j, t)] |= (uint8_t)(v << fs_shift(t));
        }
    }
}

void vqs_pq4fs_get(const uint8_t *packed, size_t M, size_t i, uint8_t *code)
{
    const uint8_t *blk = packed + i / 32 * 32 * fs_pairs(M);
    size_t t = i % 32;
    memset(code, 0, (M + 1) / 2);
    for (size_t j = 0; j < M; j++) {
        unsigned v = (blk[fs_byte(j, t)] >> fs_shift(t)) & 15;
        code[j >> 1] |= (uint8_t)(v << (4 * (j & 1)));
    }
}

/* As vqs_pq8fs_rescore, for 4-bit codes (vqs_ref_lut4's order). Survivors
 * in groups of 4: each one's sum keeps its own order (so the score is the
 * same float), and the four chains of dependent adds overlap (one chain
 * waited on the add latency M times per survivor). */
void vqs_pq4fs_rescore(const float *lut, size_t M, float bias, const uint8_t *packed,
                       const uint32_t *idx, size_t n, float *out)
{
    size_t np = fs_pairs(M), i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint8_t *b[4];
        unsigned sh[4];
        float v[4] = {0, 0, 0, 0};
        for (int u = 0; u < 4; u++) {
            size_t t = idx[i + u] % 32;
            b[u] = packed + idx[i + u] / 32 * 32 * np + (t & 15);
            sh[u] = fs_shift(t);
        }
        for (size_t j = 0; j < M; j++) {
            size_t o = 32 * (j / 2) + 16 * (j & 1);
            const float *T = lut + j * 16;
            for (int u = 0; u < 4; u++)
                v[u] += T[(b[u][o] >> sh[u]) & 15];
        }
        for (int u = 0; u < 4; u++)
            out[i + u] = bias + v[u];
    }
    for (; i < n; i++) {
        size_t t = idx[i] % 32;
        const uint8_t *b = packed + idx[i] / 32 * 32 * np + (t & 15);
        unsigned sh = fs_shift(t);
        float v = 0;
        for (size_t j = 0; j < M; j++)
            v += lut[j * 16 + ((b[32 * (j / 2) + 16 * (j & 1)] >> sh) & 15)];
        out[i] = bias + v;
    }
}

/* The scalar per-table steps of the 4-bit quantisation (fs4_quantize.h):
 * the reference every SIMD level is compared with. */
static inline void fs4_minmax_ref(const float *T, float *mn_, float *mx_, float *probe)
{
    float mn = T[0], mx = T[0], nanprobe = 0;
    for (size_t k = 0; k < 16; k++) {
        nanprobe += T[k] * 0.0f;
        mn = T[k] < mn ? T[k] : mn;
        mx = T[k] > mx ? T[k] : mx;
    }
    *mn_ = mn;
    *mx_ = mx;
    *probe += nanprobe;
}

static inline void fs4_quant_ref(const float *T, float mn, float inv, float Rf, uint8_t *q8)
{
    for (size_t k = 0; k < 16; k++) {
        float x = (T[k] - mn) * inv + 0.5f;
        x = x < 0 ? 0 : x > Rf ? Rf : x;
        q8[k] = (uint8_t)(int)x; /* x >= 0: truncation is floor */
    }
}

void vqs_ref_pq4fs_quantize(const float *lut, size_t M, float limit, uint8_t *lut8, float *bias,
                            float *scale, float *err)
{
    vqs_fs4_quantize_tpl(fs4_minmax_ref, fs4_quant_ref, lut, M, limit, lut8, bias, scale, err);
}

void vqs_pq4fs_quantize(const float *lut, size_t M, float limit, uint8_t *lut8, float *bias,
                        float *scale, float *err)
{
    vqs_kernels_active()->pq4fs_quantize(lut, M, limit, lut8, bias, scale, err);
}

void vqs_ref_pq4fs_scan(const uint8_t *lut8, size_t M, const uint8_t *packed, size_t nblocks,
                        uint16_t *out)
{
    size_t np = fs_pairs(M);
    for (size_t b = 0; b < nblocks; b++) {
        const uint8_t *blk = packed + b * 32 * np;
        for (size_t t = 0; t < 32; t++) {
            unsigned s = 0;
            for (size_t j = 0; j < M; j++)
                s += lut8[j * 16 + ((blk[fs_byte(j, t)] >> fs_shift(t)) & 15)];
            out[b * 32 + t] = (uint16_t)s;
        }
    }
}

/* ==== PQ 8-bit fast scan ================================================= */
/*
 * Packed layout: blocks of 64 vectors; block b at packed + b * 64 * M holds
 * M groups of 64 bytes, group m = code byte m of the block's vectors 0..63
 * (vector t at m * 64 + t). Padding vectors of the last block are code 0.
 * One 512-bit load of group m is the 64 table indices of sub-quantizer m,
 * ready for AVX-512 VBMI's byte permutes (avx512.c): a 256-entry u8 table
 * is four 64-byte registers, vpermt2b looks 64 vectors up in two of them
 * (index bits 0..6) and bit 7 picks between the two halves.
 * Rejected: row-major codes (M bytes per vector, as the codec writes them):
 * the SIMD kernel would need a 64 x M byte transpose per block and query,
 * where the packing transposes once when codes are added; blocks of 32
 * (half registers); FAISS's layout (it has no 8-bit fast scan).
 *
 * Quantisation (vqs_pq8fs_quantize): exactly vqs_pq4fs_quantize's scheme
 * and bound ("PQ 4-bit fast scan" above) with 256-entry tables and no
 * padding table: per-table minimum into bias, one common scale =
 * max_j range_j / R (R = 255, or 65535 / M when M > 257, so that every u16
 * sum fits), entries rounded to nearest and clamped to 0..R, *err = the
 * exact worst rounding sum_j max_k |e_jk| plus (M + 4) * FLT_EPSILON *
 * (sum_j A_j + |bias| + scale * M * R) for the float arithmetic
 * on both sides.
 * Speed (it runs once per probed list per query, M * 256 entries): float
 * arithmetic only (double only for the M per-table sums). The min / max /
 * NaN probe of the first pass use generic 4-float vectors (a scalar
 * reduction with a conditional is not vectorised without -ffast-math, and
 * lane arrays stay in memory); the second pass is a loop over lane arrays
 * of FS8_LANES that GCC vectorises. The per-table minimum is computed again
 * in the second pass rather than stored (no allocation, M is unbounded).
 * Measured: 4.5 us for M = 16 (1.1 ns per entry; 5.1 us with lane arrays
 * in both passes), i.e. about a 3,000-code list of scan time: still the
 * thing to speed up for short lists (the second pass: its error maxima in
 * generic vectors too, and the u8 narrowing).
 */

#define FS8_LANES 16

size_t vqs_pq8fs_packed_size(size_t n, size_t M) { return (n + 63) / 64 * 64 * M; }

void vqs_pq8fs_pack(const uint8_t *codes, size_t stride, size_t n, size_t M, uint8_t *packed)
{
    size_t nb = (n + 63) / 64;
    for (size_t b = 0; b < nb; b++) {
        uint8_t *blk = packed + b * 64 * M;
        size_t nt = n - b * 64 < 64 ? n - b * 64 : 64;
        for (size_t t = 0; t < nt; t++) {
            const uint8_t *c = codes + (b * 64 + t) * stride;
            for (size_t m = 0; m < M; m++)
                blk[m * 64 + t] = c[m];
        }
        for (size_t m = 0; m < M; m++)
            for (size_t t = nt; t < 64; t++)
                blk[m * 64 + t] = 0;
    }
}

/* Exact float scores of listed vectors, read straight from the packed
 * layout (the index's re-scoring of fast-scan survivors): no unpacking into
 * a buffer, and the summation order of vqs_ref_lut8, so the scores are the
 * same at every SIMD level. */
void vqs_pq8fs_rescore(const float *lut, size_t M, float bias, const uint8_t *packed,
                       const uint32_t *idx, size_t n, float *out)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) { /* as vqs_pq4fs_rescore: four chains at once */
        const uint8_t *b[4];
        float v[4] = {0, 0, 0, 0};
        for (int u = 0; u < 4; u++)
            b[u] = packed + idx[i + u] / 64 * 64 * M + idx[i + u] % 64;
        for (size_t m = 0; m < M; m++)
            for (int u = 0; u < 4; u++)
                v[u] += lut[m * 256 + b[u][m * 64]];
        for (int u = 0; u < 4; u++)
            out[i + u] = bias + v[u];
    }
    for (; i < n; i++) {
        const uint8_t *b = packed + idx[i] / 64 * 64 * M + idx[i] % 64;
        float v = 0;
        for (size_t m = 0; m < M; m++)
            v += lut[m * 256 + b[m * 64]];
        out[i] = bias + v;
    }
}

void vqs_pq8fs_get(const uint8_t *packed, size_t M, size_t i, uint8_t *code)
{
    const uint8_t *blk = packed + i / 64 * 64 * M;
    for (size_t m = 0; m < M; m++)
        code[m] = blk[m * 64 + i % 64];
}

/* 4 floats in GCC / Clang generic vectors (an SSE register here; 16 bytes:
 * wider ones change the ABI without -mavx): the min / max reductions stay in registers
 * (plain loops over lane arrays keep them in memory: 1.3 ns per entry) */
typedef float fs8_vf __attribute__((vector_size(16)));
typedef int32_t fs8_vi __attribute__((vector_size(16)));

static inline fs8_vf fs8_load(const float *p)
{
    fs8_vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
/* a < b ? a : b, a > b ? a : b per lane (NaN: b, as the scalar forms) */
static inline fs8_vf fs8_vmin(fs8_vf a, fs8_vf b)
{
    fs8_vi c = a < b;
    return (fs8_vf)(((fs8_vi)a & c) | ((fs8_vi)b & ~c));
}
static inline fs8_vf fs8_vmax(fs8_vf a, fs8_vf b)
{
    fs8_vi c = a > b;
    return (fs8_vf)(((fs8_vi)a & c) | ((fs8_vi)b & ~c));
}

/* minimum of a 256-entry table */
static float fs8_min(const float *T)
{
    fs8_vf m0 = fs8_load(T), m1 = fs8_load(T + 4);
    for (size_t k = 8; k < 256; k += 8) {
        m0 = fs8_vmin(fs8_load(T + k), m0);
        m1 = fs8_vmin(fs8_load(T + k + 4), m1);
    }
    m0 = fs8_vmin(m1, m0);
    float r = m0[0];
    for (int l = 1; l < 4; l++)
        r = m0[l] < r ? m0[l] : r;
    return r;
}

void vqs_pq8fs_quantize(const float *lut, size_t M, float limit, uint8_t *lut8, float *bias,
                        float *scale, float *err)
{
    *bias = 0;
    *scale = 1;
    *err = INFINITY;
    if (M == 0) {
        *err = 0;
        return;
    }
    memset(lut8, 0, M * 256);
    unsigned R = M > 257 ? (unsigned)(65535 / M) : 255;
    double maxrange = 0, bias_d = 0, absmax = 0;
    fs8_vf probe = {0}; /* NaN if any entry is NaN or Inf (Inf * 0) */
    for (size_t j = 0; j < M; j++) {
        const float *T = lut + j * 256;
        fs8_vf mn = fs8_load(T), mx = mn, mn1 = mn, mx1 = mn;
        for (size_t k = 0; k < 256; k += 8) {
            fs8_vf v = fs8_load(T + k), w = fs8_load(T + k + 4);
            probe += v * 0.0f + w * 0.0f;
            mn = fs8_vmin(v, mn);
            mx = fs8_vmax(v, mx);
            mn1 = fs8_vmin(w, mn1);
            mx1 = fs8_vmax(w, mx1);
        }
        mn = fs8_vmin(mn1, mn);
        mx = fs8_vmax(mx1, mx);
        float a = mn[0], z = mx[0];
        for (int l = 1; l < 4; l++) {
            a = mn[l] < a ? mn[l] : a;
            z = mx[l] > z ? mx[l] : z;
        }
        double range = (double)z - a;
        maxrange = range > maxrange ? range : maxrange;
        bias_d += a;
    }
    float nanprobe = 0;
    for (int l = 0; l < 4; l++)
        nanprobe += probe[l];
    if (nanprobe != 0)
        return;
    float sc, bf;
    double wide;
    if (!fs_scale_bias(maxrange, bias_d, limit, R, &sc, &bf, &wide))
        return;
    double e = fabs((double)bf - bias_d);
    /* the error of computing e_jk in float is a few ulps of |T|, covered by
     * the (M + 4) eps margin below (as in vqs_pq4fs_quantize) */
    float inv = 1.0f / sc, Rf = (float)R;
    for (size_t j = 0; j < M; j++) {
        const float *T = lut + j * 256;
        uint8_t *o = lut8 + j * 256;
        float mn = fs8_min(T);
        float ej[FS8_LANES] = {0};
        for (size_t k = 0; k < 256; k += FS8_LANES)
            for (size_t l = 0; l < FS8_LANES; l++) {
                float x = (T[k + l] - mn) * inv + 0.5f;
                x = x < 0 ? 0 : x;
                x = x > Rf ? Rf : x;
                int qi = (int)x; /* x >= 0: truncation is floor */
                o[k + l] = (uint8_t)qi;
                float ejk = fabsf(T[k + l] - mn - sc * (float)qi);
                ejk = qi == (int)R && T[k + l] - mn > sc * Rf ? 0 : ejk; /* saturated */
                ej[l] = ejk > ej[l] ? ejk : ej[l];
            }
        float m = 0;
        for (size_t l = 0; l < FS8_LANES; l++)
            m = ej[l] > m ? ej[l] : m;
        e += m;
        absmax += fs_absmax(mn, sc * Rf, wide);
    }
    e += (double)(M + 4) * FLT_EPSILON * (absmax + fabs((double)bf) + (double)sc * M * R);
    *bias = bf;
    *scale = sc;
    *err = (float)(e * (1 + 4 * FLT_EPSILON)); /* rounded up past the float conversion */
}

void vqs_ref_pq8fs_scan(const uint8_t *lut8, size_t M, const uint8_t *packed, size_t nblocks,
                        uint16_t *out)
{
    for (size_t b = 0; b < nblocks; b++) {
        const uint8_t *blk = packed + b * 64 * M;
        for (size_t t = 0; t < 64; t++) {
            unsigned s = 0;
            for (size_t m = 0; m < M; m++)
                s += lut8[m * 256 + blk[m * 64 + t]];
            out[b * 64 + t] = (uint16_t)s;
        }
    }
}

/* ==== binary ============================================================= */

void vqs_ref_hamming(const uint8_t *q, size_t nbytes, const uint8_t *codes, size_t stride,
                     size_t n, uint32_t *out)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = codes + i * stride;
        uint32_t h = 0;
        for (size_t t = 0; t < nbytes; t++)
            h += (uint32_t)__builtin_popcount((unsigned)(q[t] ^ c[t]));
        out[i] = h;
    }
}

void vqs_ref_bin_est(const float *tab, size_t nb, float cst, float sumv, float isd, int l2,
                     const uint8_t *codes, size_t stride, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = codes + i * stride;
        float pos = 0;
        for (size_t t = 0; t < nb; t++)
            pos += tab[t * 256 + c[t]];
        float r, a;
        memcpy(&r, c + nb, 4);
        memcpy(&a, c + nb + 4, 4);
        double est = a > 0 ? (double)r * ((2 * pos - sumv) * isd) / a : 0.0;
        if (!isfinite(est))
            est = 0;
        double v = l2 ? cst + (double)r * r - 2 * est : cst + est;
        out[i] = (float)(v > FLT_MAX ? FLT_MAX : v < -FLT_MAX ? -FLT_MAX : v);
    }
}

/* ==== selection ========================================================== */

size_t vqs_ref_select_lt(const float *x, size_t n, float thr, uint32_t *idx)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (x[i] < thr)
            idx[k++] = (uint32_t)i;
    return k;
}

size_t vqs_ref_select_le_u16(const uint16_t *x, size_t n, uint16_t thr, uint32_t *idx)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (x[i] <= thr)
            idx[k++] = (uint32_t)i;
    return k;
}

/* ==== exact scores in double ============================================ */

double vqs_ref_l2_f64(const float *x, const float *y, size_t d)
{
    double s = 0;
    for (size_t j = 0; j < d; j++) {
        double t = (double)x[j] - (double)y[j];
        s += t * t;
    }
    return s;
}

double vqs_ref_ip_f64(const float *x, const float *y, size_t d)
{
    double s = 0;
    for (size_t j = 0; j < d; j++)
        s += (double)x[j] * (double)y[j];
    return s;
}

void vqs_ref_add_f32(const float *a, const float *b, size_t n, float *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = a[i] + b[i];
}

const vqs_kernels vqs_kernels_ref = {
    .level = VQS_SIMD_SCALAR,
    .name = "scalar",
    .lut8 = vqs_ref_lut8,
    .lut4 = vqs_ref_lut4,
    .sq_l2 = vqs_ref_sq_l2,
    .sq_ip = vqs_ref_sq_ip,
    .pq4fs_scan = vqs_ref_pq4fs_scan,
    .pq4fs_quantize = vqs_ref_pq4fs_quantize,
    .l2_f64 = vqs_ref_l2_f64,
    .ip_f64 = vqs_ref_ip_f64,
    .add_f32 = vqs_ref_add_f32,
    .pq8fs_scan = vqs_ref_pq8fs_scan,
    .hamming = vqs_ref_hamming,
    .bin_est = vqs_ref_bin_est,
    .select_lt = vqs_ref_select_lt,
    .select_le_u16 = vqs_ref_select_le_u16,
};
