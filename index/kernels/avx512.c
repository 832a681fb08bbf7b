/*
 * avx512.c: the AVX512 scan kernels (vqs_kernels.h). Compiled with this level's
 * -m flags only (CMakeLists.txt); reached only through the dispatch table
 * after a run-time CPU check. Anything not accelerated here falls back to
 * the reference in ref.c.
 */
#include "kernels_internal.h"
#include "fs4_quantize.h"
#include "simd_avx2_common.h"

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

/* ==== look-up tables ===================================================== */
/*
 * Measured on the project machine (AMD EPYC, Zen 4 with AVX-512, 1M codes,
 * one thread, bench/bench_kernels_a, which also runs the rejected variants):
 *
 * lut8 is scalar code here too (lut8_rows4, simd_avx2_common.h): four rows
 * at a time, two accumulators per row (eight independent float add chains
 * hide the add latency; the loads of the four rows' code bytes and table
 * entries keep the load ports busy): about 2x the reference loop, which
 * waits on one add chain.
 * Rejected: vgatherdps over 16 rows (lanes = rows, code bytes gathered as
 * dwords and shifted out: 0.4x of this at m=16, 0.5x at m=32) and over 16
 * sub-quantizers of one row (lanes = j, a 16-row transposing reduction at
 * the end: 0.5x, 0.6x); the gathers of this CPU deliver fewer elements per
 * cycle than its scalar loads. A 256-entry table as 16 registers with 8
 * vpermt2ps + 7 blends per 16 lookups costs more instructions per lookup
 * than the two loads of the scalar loop (and needs the code bytes of 16
 * rows transposed).
 *
 * lut4 keeps the 16-float table of a sub-quantizer in one register and looks
 * 16 rows up at once with vpermps (it uses the low 4 bits of each index, so
 * a nibble is a shift away, no mask). The code bytes of 16 rows are loaded
 * as 16 x 16 bytes (32 nibbles per row), four rows per register
 * (vinserti32x4), and transposed with four plus four vpermt2d into four
 * registers: register q, lane r = dword q of row r = nibbles 8q..8q+7.
 * Rejected: vpgatherdd of the dwords of 16 rows (0.45x of this at m=32
 * and m=64). Table lookups are summed in pairs before the two accumulators
 * (shorter add chains).
 * A last chunk of fewer than 32 nibbles is loaded with a byte mask (never a
 * byte past the row); a last block of fewer than 16 rows repeats its last
 * row in the missing lanes and stores with a mask.
 */

/* Loads bytes off..off+15 (bm: the bytes to load, the rest read as 0) of
 * the 16 rows r[0..15] and transposes them: w[q] lane k = bytes 4q..4q+3 of
 * row k, i.e. nibbles 8q..8q+7 of this chunk in the U4 order. */
static inline __attribute__((always_inline)) void lut4_load16(const uint8_t *const *r, size_t off,
                                                              __mmask16 bm, __m512i w[4])
{
    __m512i z[4];
    for (int a = 0; a < 4; a++) {
        __m128i x0, x1, x2, x3;
        if (bm == 0xffff) {
            x0 = _mm_loadu_si128((const __m128i *)(r[4 * a] + off));
            x1 = _mm_loadu_si128((const __m128i *)(r[4 * a + 1] + off));
            x2 = _mm_loadu_si128((const __m128i *)(r[4 * a + 2] + off));
            x3 = _mm_loadu_si128((const __m128i *)(r[4 * a + 3] + off));
        } else {
            x0 = _mm_maskz_loadu_epi8(bm, r[4 * a] + off);
            x1 = _mm_maskz_loadu_epi8(bm, r[4 * a + 1] + off);
            x2 = _mm_maskz_loadu_epi8(bm, r[4 * a + 2] + off);
            x3 = _mm_maskz_loadu_epi8(bm, r[4 * a + 3] + off);
        }
        __m512i t = _mm512_castsi128_si512(x0);
        t = _mm512_inserti32x4(t, x1, 1);
        t = _mm512_inserti32x4(t, x2, 2);
        z[a] = _mm512_inserti32x4(t, x3, 3);
    }
    /* z[a] lane 4s + q = dword q of row 4a + s */
    const __m512i p01 = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 1, 5, 9, 13, 17, 21, 25, 29);
    const __m512i p23 = _mm512_setr_epi32(2, 6, 10, 14, 18, 22, 26, 30, 3, 7, 11, 15, 19, 23, 27, 31);
    const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
    const __m512i hi = _mm512_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    /* a01: dword 0 of rows 0..7, then dword 1 of rows 0..7; b01: rows 8..15 */
    __m512i a01 = _mm512_permutex2var_epi32(z[0], p01, z[1]);
    __m512i a23 = _mm512_permutex2var_epi32(z[0], p23, z[1]);
    __m512i b01 = _mm512_permutex2var_epi32(z[2], p01, z[3]);
    __m512i b23 = _mm512_permutex2var_epi32(z[2], p23, z[3]);
    w[0] = _mm512_permutex2var_epi32(a01, lo, b01);
    w[1] = _mm512_permutex2var_epi32(a01, hi, b01);
    w[2] = _mm512_permutex2var_epi32(a23, lo, b23);
    w[3] = _mm512_permutex2var_epi32(a23, hi, b23);
}

/* adds the 8 sub-quantizers of nibbles 0..7 of w (tables l[0..127]) */
static inline __attribute__((always_inline)) void lut4_dword16(__m512i w, const float *l,
                                                               __m512 *s0, __m512 *s1)
{
    __m512 a = _mm512_add_ps(_mm512_permutexvar_ps(w, _mm512_loadu_ps(l)),
                             _mm512_permutexvar_ps(_mm512_srli_epi32(w, 4), _mm512_loadu_ps(l + 16)));
    __m512 b = _mm512_add_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(w, 8), _mm512_loadu_ps(l + 32)),
                             _mm512_permutexvar_ps(_mm512_srli_epi32(w, 12), _mm512_loadu_ps(l + 48)));
    __m512 c = _mm512_add_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(w, 16), _mm512_loadu_ps(l + 64)),
                             _mm512_permutexvar_ps(_mm512_srli_epi32(w, 20), _mm512_loadu_ps(l + 80)));
    __m512 d = _mm512_add_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(w, 24), _mm512_loadu_ps(l + 96)),
                             _mm512_permutexvar_ps(_mm512_srli_epi32(w, 28), _mm512_loadu_ps(l + 112)));
    *s0 = _mm512_add_ps(*s0, _mm512_add_ps(a, b));
    *s1 = _mm512_add_ps(*s1, _mm512_add_ps(c, d));
}

/* out lanes = bias + sum over the m sub-quantizers of the rows r[0..15] */
static inline __attribute__((always_inline)) __m512 lut4_block16(const float *lut, size_t m,
                                                                 float bias,
                                                                 const uint8_t *const *r)
{
    __m512 s0 = _mm512_set1_ps(bias), s1 = _mm512_setzero_ps();
    size_t j0 = 0;
    __m512i w[4];
    for (; j0 + 32 <= m; j0 += 32) {
        lut4_load16(r, j0 / 2, 0xffff, w);
        for (int q = 0; q < 4; q++)
            lut4_dword16(w[q], lut + (j0 + 8 * (size_t)q) * 16, &s0, &s1);
    }
    if (j0 < m) {
        size_t rem = m - j0, t = 0; /* 1..31 nibbles, (rem + 1) / 2 bytes */
        lut4_load16(r, j0 / 2, (__mmask16)((1u << ((rem + 1) / 2)) - 1), w);
        for (; t + 8 <= rem; t += 8)
            lut4_dword16(w[t / 8], lut + (j0 + t) * 16, &s0, &s1);
        for (; t < rem; t++) {
            __m512i ix = _mm512_srli_epi32(w[t / 8], (unsigned)(4 * (t % 8)));
            __m512 v = _mm512_permutexvar_ps(ix, _mm512_loadu_ps(lut + (j0 + t) * 16));
            if (t & 1)
                s1 = _mm512_add_ps(s1, v);
            else
                s0 = _mm512_add_ps(s0, v);
        }
    }
    return _mm512_add_ps(s0, s1);
}

static void lut4_avx512(const float *lut, size_t m, float bias, const uint8_t *codes,
                        size_t stride, size_t n, float *out)
{
    const uint8_t *r[16];
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        for (int k = 0; k < 16; k++)
            r[k] = codes + (i + (size_t)k) * stride;
        _mm512_storeu_ps(out + i, lut4_block16(lut, m, bias, r));
    }
    if (i < n) {
        size_t nr = n - i;
        for (size_t k = 0; k < 16; k++)
            r[k] = codes + (i + (k < nr ? k : nr - 1)) * stride;
        _mm512_mask_storeu_ps(out + i, (__mmask16)((1u << nr) - 1), lut4_block16(lut, m, bias, r));
    }
}

/* ==== scalar codes ======================================================= */
/*
 * sq_l2 / sq_ip: vectorised over dimensions, 16 per step, four rows per
 * pass sharing the q (and w) loads, one accumulator per row, the four
 * accumulators summed together at the end (hadd tree). The codes are
 * converted in registers:
 *   U8/S8: vpmovzxbd/vpmovsxbd + vcvtdq2ps; U4: 8 bytes -> 16 bytes of
 *   nibbles in the U4 order ((x | x << 4) & 0x0f0f on 16-bit lanes) ->
 *   vpmovzxbd; F16: vcvtph2ps; BF16: vpmovzxwd + shift left 16;
 *   E5M2: the byte << 8 is the fp16 with the same value (same exponent bias
 *   and width, 2 of fp16's 10 mantissa bits), vcvtph2ps;
 *   E4M3: sign << 15 | (byte & 0x7f) << 7 is an fp16 equal to value / 256
 *   (exponent bias 15 instead of 7, subnormals included: both formats'
 *   subnormals sit below the same exponent field 0), so vcvtph2ps; the
 *   factor 256 is applied once per step to w (sq_l2) or q (sq_ip), shared
 *   by the four rows: (256 w) h == w (256 h) exactly unless 256 w
 *   overflows (|w| > 2^120, no codec's scale). Built as (sign-extended
 *   byte << 7) & 0xbf80.
 *   F32: a plain (or masked) unaligned load.
 *   vcvtph2ps converts half subnormals exactly whatever MXCSR.DAZ says.
 * Non-finite codes (never written by vqs encoders; vqs_kernels.h allows any
 * result): F16/BF16/E5M2 Inf and NaN patterns decode to Inf/NaN as in the
 * reference; the E4M3 NaN codes 0x7f/0xff decode to +-480 here (finite),
 * where the reference gives NaN.
 * The last step of a row loads its codes, q and w with masks (zeros in the
 * missing lanes, which then add exactly 0): no byte past the row is read.
 * Rejected: decoding a row into a float buffer first (an extra store and
 * load per value, and kernels must not allocate); f32 bit tricks for E4M3
 * (a subnormal f32 times 2^120 depends on DAZ).
 */

static inline __attribute__((always_inline)) __m512 sq_v16(vqs_elem t, const uint8_t *row,
                                                           size_t j0, __mmask16 k, int full)
{
    switch (t) {
    case VQS_ELEM_U8:
    case VQS_ELEM_S8: {
        __m128i b = full ? _mm_loadu_si128((const __m128i *)(row + j0))
                         : _mm_maskz_loadu_epi8(k, row + j0);
        return _mm512_cvtepi32_ps(t == VQS_ELEM_U8 ? _mm512_cvtepu8_epi32(b)
                                                 : _mm512_cvtepi8_epi32(b));
    }
    case VQS_ELEM_U4: {
        /* dims j0..j0+15 are the 8 bytes at j0 / 2 (j0 is a multiple of 16) */
        __m128i b;
        if (full)
            b = _mm_loadl_epi64((const __m128i *)(row + j0 / 2));
        else
            b = _mm_maskz_loadu_epi8((__mmask16)((1u << ((__builtin_popcount(k) + 1) / 2)) - 1),
                                     row + j0 / 2);
        __m128i x = _mm_cvtepu8_epi16(b);
        x = _mm_and_si128(_mm_or_si128(x, _mm_slli_epi16(x, 4)), _mm_set1_epi16(0x0f0f));
        return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(x));
    }
    case VQS_ELEM_F16:
    case VQS_ELEM_BF16: {
        __m256i h = full ? _mm256_loadu_si256((const __m256i *)(row + 2 * j0))
                         : _mm256_maskz_loadu_epi16(k, row + 2 * j0);
        if (t == VQS_ELEM_F16)
            return _mm512_cvtph_ps(h);
        return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    }
    case VQS_ELEM_E4M3:
    case VQS_ELEM_E5M2: {
        __m128i b = full ? _mm_loadu_si128((const __m128i *)(row + j0))
                         : _mm_maskz_loadu_epi8(k, row + j0);
        if (t == VQS_ELEM_E5M2)
            return _mm512_cvtph_ps(_mm256_slli_epi16(_mm256_cvtepu8_epi16(b), 8));
        /* value / 256: sq_step multiplies q or w by 256 instead */
        __m256i h = _mm256_and_si256(_mm256_slli_epi16(_mm256_cvtepi8_epi16(b), 7),
                                     _mm256_set1_epi16((short)0xbf80));
        return _mm512_cvtph_ps(h);
    }
    case VQS_ELEM_F32:
        return full ? _mm512_loadu_ps(row + 4 * j0) : _mm512_maskz_loadu_ps(k, row + 4 * j0);
    }
    return _mm512_setzero_ps();
}

/* lanes 0..3 = the sums of a, b, c, d */
static inline __m128 sq_hsum4_512(__m512 a, __m512 b, __m512 c, __m512 d)
{
    __m256 a8 = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
    __m256 b8 = _mm256_add_ps(_mm512_castps512_ps256(b), _mm512_extractf32x8_ps(b, 1));
    __m256 c8 = _mm256_add_ps(_mm512_castps512_ps256(c), _mm512_extractf32x8_ps(c, 1));
    __m256 d8 = _mm256_add_ps(_mm512_castps512_ps256(d), _mm512_extractf32x8_ps(d, 1));
    __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a8, b8), _mm256_hadd_ps(c8, d8));
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

/* One step of 16 dimensions from j for the rows r[0..nr-1] (nr = 4 or 1):
 * full: all 16 lanes; else the lanes in k, loaded with masks. */
static inline __attribute__((always_inline)) void sq_step(vqs_elem t, int l2, int full,
                                                          __mmask16 k, const float *q,
                                                          const float *w, size_t j,
                                                          const uint8_t *const *r, int nr,
                                                          __m512 *s)
{
    __m512 vq = full ? _mm512_loadu_ps(q + j) : _mm512_maskz_loadu_ps(k, q + j);
    __m512 vw = _mm512_setzero_ps();
    if (l2)
        vw = full ? _mm512_loadu_ps(w + j) : _mm512_maskz_loadu_ps(k, w + j);
    if (t == VQS_ELEM_E4M3) { /* sq_v16 gives value / 256 */
        if (l2)
            vw = _mm512_mul_ps(vw, _mm512_set1_ps(256.0f));
        else
            vq = _mm512_mul_ps(vq, _mm512_set1_ps(256.0f));
    }
    for (int a = 0; a < nr; a++) {
        __m512 v = sq_v16(t, r[a], j, k, full);
        if (l2) {
            __m512 e = _mm512_fnmadd_ps(vw, v, vq);
            s[a] = _mm512_fmadd_ps(e, e, s[a]);
        } else {
            s[a] = _mm512_fmadd_ps(vq, v, s[a]);
        }
    }
}

/* l2 != 0: out = sum (q - w v)^2; else out = bias + sum q v */
static inline __attribute__((always_inline)) void sq_scan_t(vqs_elem t, int l2, const float *q,
                                                            const float *w, float bias, size_t d,
                                                            const uint8_t *codes, size_t stride,
                                                            size_t n, float *out)
{
    const size_t dfull = d & ~(size_t)15;
    const __mmask16 tk = (__mmask16)((1u << (d & 15)) - 1);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint8_t *r[4] = {codes + i * stride, codes + (i + 1) * stride,
                               codes + (i + 2) * stride, codes + (i + 3) * stride};
        __m512 s[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                       _mm512_setzero_ps()};
        for (size_t j = 0; j < dfull; j += 16)
            sq_step(t, l2, 1, 0xffff, q, w, j, r, 4, s);
        if (tk)
            sq_step(t, l2, 0, tk, q, w, dfull, r, 4, s);
        __m128 v = sq_hsum4_512(s[0], s[1], s[2], s[3]);
        if (!l2)
            v = _mm_add_ps(v, _mm_set1_ps(bias));
        _mm_storeu_ps(out + i, v);
    }
    for (; i < n; i++) {
        const uint8_t *r[1] = {codes + i * stride};
        __m512 s[1] = {_mm512_setzero_ps()};
        for (size_t j = 0; j < dfull; j += 16)
            sq_step(t, l2, 1, 0xffff, q, w, j, r, 1, s);
        if (tk)
            sq_step(t, l2, 0, tk, q, w, dfull, r, 1, s);
        /* the 4-row blocks' reduction order (see avx2.c) */
        out[i] = _mm_cvtss_f32(sq_hsum4_512(s[0], s[0], s[0], s[0])) + (l2 ? 0.0f : bias);
    }
}

/* the sq_l2 and sq_ip entries: sq_scan_t per element type (simd_avx2_common.h) */
VQS_SQ_ENTRIES(sq_l2_avx512, sq_ip_avx512)

/* ==== PQ 4-bit fast scan ================================================= */
/*
 * Layout: ref.c. The AVX2 kernel's scheme (avx2.c) on 512-bit registers:
 * groups p, p + 1 of a block are adjacent, as are tables 2p..2p+3, so one
 * 64-byte load of codes and one of tables put sub-quantizer 2p + k in lane k
 * of both, and _mm512_shuffle_epi8 looks up four sub-quantizers for 32
 * vectors at once (two lookups: low and high nibbles). M % 4 != 0: the
 * last tables are one masked load per call (only tables < M, so the padding
 * table reads as 0 and nothing past M * 16 bytes is read); the block's last
 * 32 bytes of codes are a 256-bit load, zero-extended (an ordinary access
 * inside the block, which ASan checks). At the end of a block the
 * four lanes are summed and the u16 even/odd split undone as in avx2.c.
 * Rejected: two blocks per register (one group each: the table register
 * would have to be built from two 16-byte halves per group, an extra
 * shuffle per lookup pair, and the lane sum is needed anyway).
 */

static inline __m256i fold512(__m512i x)
{
    return _mm256_add_epi16(_mm512_castsi512_si256(x), _mm512_extracti64x4_epi64(x, 1));
}

/* the low k bits set (k <= 64) */
static inline __mmask64 bytes_mask(size_t k)
{
    return k >= 64 ? ~(__mmask64)0 : ((__mmask64)1 << k) - 1;
}

static void pq4fs_scan_avx512(const uint8_t *lut8, size_t M, const uint8_t *packed,
                              size_t nblocks, uint16_t *out)
{
    size_t np = (M + 1) / 2, full = M / 4;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    /* the partial last quad of sub-quantizers, if any */
    int half = 32 * np - 64 * full == 32;
    __mmask64 kt = bytes_mask(16 * M - 64 * full);
    __m512i tlast = _mm512_setzero_si512();
    if (M % 4)
        tlast = _mm512_maskz_loadu_epi8(kt, lut8 + 64 * full);
    for (size_t b = 0; b < nblocks; b++) {
        const uint8_t *blk = packed + b * 32 * np;
        __m512i a = _mm512_setzero_si512(), ah = a, c = a, ch = a;
#define VQS_FS_STEP(x, t)                                                                         \
    do {                                                                                          \
        __m512i lo_ = _mm512_shuffle_epi8((t), _mm512_and_si512((x), m4));                        \
        __m512i hi_ = _mm512_shuffle_epi8((t), _mm512_and_si512(_mm512_srli_epi16((x), 4), m4));  \
        a = _mm512_add_epi16(a, lo_);                                                             \
        ah = _mm512_add_epi16(ah, _mm512_srli_epi16(lo_, 8));                                     \
        c = _mm512_add_epi16(c, hi_);                                                             \
        ch = _mm512_add_epi16(ch, _mm512_srli_epi16(hi_, 8));                                     \
    } while (0)
        for (size_t g = 0; g < full; g++) {
            __m512i x = _mm512_loadu_si512(blk + 64 * g);
            __m512i t = _mm512_loadu_si512(lut8 + 64 * g);
            VQS_FS_STEP(x, t);
        }
        if (M % 4) { /* 32 bytes of codes left (M % 4 = 1, 2) or 64 (M % 4 = 3) */
            __m512i x = half ? _mm512_zextsi256_si512(
                                   _mm256_loadu_si256((const __m256i *)(blk + 64 * full)))
                             : _mm512_loadu_si512(blk + 64 * full);
            VQS_FS_STEP(x, tlast);
        }
#undef VQS_FS_STEP
        fs_finish(fold512(a), fold512(ah), fold512(c), fold512(ch), out + 32 * b);
    }
}

/* The per-table steps of the 4-bit table quantisation (fs4_quantize.h):
 * one table of 16 floats is one register. The scalar
 * driver around them runs once per query and probed list. */
static inline void fs4_minmax_avx512(const float *T, float *mn, float *mx, float *probe)
{
    __m512 t = _mm512_loadu_ps(T);
    __m512 p = _mm512_mul_ps(t, _mm512_setzero_ps());
    *mn = _mm512_reduce_min_ps(t);
    *mx = _mm512_reduce_max_ps(t);
    if (_mm512_cmp_ps_mask(p, _mm512_setzero_ps(), _CMP_NEQ_UQ))
        *probe += NAN;
}

static inline void fs4_quant_avx512(const float *T, float mn, float inv, float Rf, uint8_t *q8)
{
    __m512 t = _mm512_loadu_ps(T);
    __m512 dv = _mm512_sub_ps(t, _mm512_set1_ps(mn));
    __m512 x = _mm512_add_ps(_mm512_mul_ps(dv, _mm512_set1_ps(inv)), _mm512_set1_ps(0.5f));
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_setzero_ps()), _mm512_set1_ps(Rf));
    _mm_storeu_si128((__m128i *)q8, _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(x)));
}

static void pq4fs_quantize_avx512(const float *lut, size_t M, float limit, uint8_t *lut8,
                                  float *bias, float *scale, float *err)
{
    vqs_fs4_quantize_tpl(fs4_minmax_avx512, fs4_quant_avx512, lut, M, limit, lut8, bias, scale, err);
}

/* ==== PQ 8-bit fast scan ================================================= */
/*
 * Layout: ref.c ("PQ 8-bit fast scan"): group m of a block = the 64 vectors'
 * code bytes for sub-quantizer m, one 512-bit load. The quantised table m
 * (256 bytes at lut8 + 256 m) is four registers T0..T3 of 64 entries:
 *   lo = vpermt2b(T0, x, T1)   entries 0..127 (index bit 6 picks T0 / T1)
 *   hi = vpermt2b(T2, x, T3)   entries 128..255
 *   v  = bit 7 of x ? hi : lo  (vpmovb2m + vpblendmb)
 * AVX-512 VBMI; this file is compiled without -mavx512vbmi, so the kernel
 * is a function with its own target attribute, chosen through a flag cached
 * in an atomic (as hamming's VPOPCNTDQ) when vqs_simd_has_vbmi(); without
 * VBMI the entry is the AVX2 level's scalar kernel (avx2.c).
 * u16 accumulation as the 4-bit scan: the 64 looked-up bytes, read as 32
 * u16, are added to a (low byte + 256 * high byte) and, shifted right by 8,
 * to ah (the high bytes = odd vectors); at the end of the block the even
 * vectors are a - (ah << 8) mod 2^16 (every true sum is <= 65535), and two
 * vpermt2w interleave even and odd back into the order t = 0..63. Three
 * instructions per 64 look-ups, no cross-lane shuffle in the loop.
 * Four blocks per pass over the sub-quantizers (FS8_NB): the four table
 * loads of a sub-quantizer are shared by the blocks, and their independent
 * permute / add chains overlap. Measured (bench_kernels, this machine's Zen 4,
 * PQ16x8, in cache): 1 block 1,700, 2 blocks 1,600, 4 blocks 2,800-3,100
 * Mcodes/s. From memory the four interleaved streams (1 KiB apart for
 * M = 16) defeat the hardware prefetcher (4 blocks without prefetch: ~490
 * Mcodes/s), so each code load also prefetches the line FS8_PF bytes ahead
 * (only while that stays inside the packed buffer: nothing past it is
 * touched): 600-660 Mcodes/s, 10-11 GB/s, where one block per pass with a
 * 1 KiB prefetch gave 630-950; the neighbours on the 2 shared cores move
 * these figures by +-30%, so the choice is made on the in-cache speed.
 * Still under half the 4-bit scan's GB/s from memory (bench_kernels): the
 * stream is not yet bandwidth-bound, which is left open.
 * Rejected: widening with vpmovzxbw of each 256-bit half (a cross-lane
 * extract plus two converts per 64 look-ups, against one shift); unpack
 * with zero (in-lane: vectors 0..7, 16..23, ... in one accumulator; two
 * unpacks and two adds, one more than the shift trick); vpermi2b with the
 * mask form instead of the blend (the merge source of vpermt2b / vpermi2b
 * is a table or the indices, never the other half's result: a blend is
 * needed either way).
 */

#define FS8_ATTR __attribute__((target("avx512vbmi")))
#ifndef FS8_PF
#define FS8_PF 8192 /* software prefetch distance, bytes */
#endif
#ifndef FS8_NB
#define FS8_NB 4 /* blocks per pass over the sub-quantizers */
#endif

/* vectors 0..63 of a block from its u16 accumulators: out[0..63] */
static inline FS8_ATTR __attribute__((always_inline)) void fs8_finish(__m512i a, __m512i ah,
                                                                      uint16_t *out)
{
    /* word j of out: vector j = even lane j / 2 (j even) or odd lane j / 2 */
    const __m512i i0 = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40,
                                        8, 39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
    const __m512i i1 = _mm512_set_epi16(63, 31, 62, 30, 61, 29, 60, 28, 59, 27, 58, 26, 57, 25,
                                        56, 24, 55, 23, 54, 22, 53, 21, 52, 20, 51, 19, 50, 18, 49,
                                        17, 48, 16);
    __m512i even = _mm512_sub_epi16(a, _mm512_slli_epi16(ah, 8));
    _mm512_storeu_si512(out, _mm512_permutex2var_epi16(even, i0, ah));
    _mm512_storeu_si512(out + 32, _mm512_permutex2var_epi16(even, i1, ah));
}

/* nb (<= FS8_NB, a constant after inlining) blocks from blk, out */
static inline FS8_ATTR __attribute__((always_inline)) void fs8_blocks(const uint8_t *lut8,
                                                                      size_t M,
                                                                      const uint8_t *blk, int nb,
                                                                      const uint8_t *pf,
                                                                      uint16_t *out)
{
    __m512i a[FS8_NB], ah[FS8_NB];
    for (int k = 0; k < nb; k++)
        a[k] = ah[k] = _mm512_setzero_si512();
    for (size_t m = 0; m < M; m++) {
        const uint8_t *l = lut8 + 256 * m;
        __m512i t0 = _mm512_loadu_si512(l), t1 = _mm512_loadu_si512(l + 64);
        __m512i t2 = _mm512_loadu_si512(l + 128), t3 = _mm512_loadu_si512(l + 192);
        for (int k = 0; k < nb; k++) {
            if (pf)
                _mm_prefetch((const char *)(pf + (size_t)k * 64 * M + 64 * m), _MM_HINT_T0);
            __m512i x = _mm512_loadu_si512(blk + (size_t)k * 64 * M + 64 * m);
            __m512i lo = _mm512_permutex2var_epi8(t0, x, t1);
            __m512i hi = _mm512_permutex2var_epi8(t2, x, t3);
            __m512i v = _mm512_mask_blend_epi8(_mm512_movepi8_mask(x), lo, hi);
            a[k] = _mm512_add_epi16(a[k], v);
            ah[k] = _mm512_add_epi16(ah[k], _mm512_srli_epi16(v, 8));
        }
    }
    for (int k = 0; k < nb; k++)
        fs8_finish(a[k], ah[k], out + 64 * k);
}

FS8_ATTR void vqs_avx512_pq8fs_scan_vbmi(const uint8_t *lut8, size_t M, const uint8_t *packed,
                                         size_t nblocks, uint16_t *out)
{
    size_t b = 0;
    for (; b + FS8_NB <= nblocks; b += FS8_NB) {
        const uint8_t *blk = packed + b * 64 * M;
        if (FS8_PF && (b + FS8_NB) * 64 * M + FS8_PF <= nblocks * 64 * M)
            fs8_blocks(lut8, M, blk, FS8_NB, blk + FS8_PF, out + 64 * b);
        else
            fs8_blocks(lut8, M, blk, FS8_NB, NULL, out + 64 * b);
    }
    for (; b < nblocks; b++)
        fs8_blocks(lut8, M, packed + b * 64 * M, 1, NULL, out + 64 * b);
}

static atomic_int has_vbmi; /* 0: not asked yet, 1: no, 2: yes */

static void pq8fs_scan_avx512(const uint8_t *lut8, size_t M, const uint8_t *packed,
                              size_t nblocks, uint16_t *out)
{
    int h = atomic_load_explicit(&has_vbmi, memory_order_relaxed);
    if (!h) {
        h = vqs_simd_has_vbmi() ? 2 : 1;
        atomic_store_explicit(&has_vbmi, h, memory_order_relaxed);
    }
    if (h == 2)
        vqs_avx512_pq8fs_scan_vbmi(lut8, M, packed, nblocks, out);
    else
        vqs_avx2_pq8fs_scan(lut8, M, packed, nblocks, out);
}

/* ==== binary ============================================================= */
/*
 * hamming: rows of 64 bytes or more: 64-byte steps, then the row's last 64
 * bytes loaded again with the bytes already counted zeroed in the register
 * (_mm512_maskz_mov_epi8), so any length works without reading past nbytes
 * or a scalar tail; popcounts per 64-bit word into a u64 x 8 accumulator;
 * eight rows share one horizontal reduction (two rows' counts packed into
 * the halves of each 64-bit word, then a transpose-add). Rows under 64
 * bytes (d = 128 is 16 bytes) go to the AVX2 kernel, which puts two rows in
 * a register (in cache on this machine's Zen 4: 1,150 M rows/s against 490
 * M for one masked 512-bit load per row). Rejected: a masked load
 * (_mm512_maskz_loadu_epi8) for the tail: as fast (an isolated test, 96-byte
 * rows from memory: 151 against 156 M rows/s), and the overlapping load is
 * an ordinary access inside the row, which ASan checks. Eight rows
 * step-major (each 64-byte piece of q loaded once for the eight) against
 * one row after the other: 515 against 305 M rows/s in cache, 96-byte rows.
 * The popcount is
 * _mm512_popcnt_epi64 (VPOPCNTDQ, in a function with its own target
 * attribute) when the CPU has it, else the nibble look-up with
 * _mm512_shuffle_epi8 and _mm512_sad_epu8. The table entry branches once
 * per call on a flag cached in an atomic (vqs_simd_has_vpopcntdq() runs
 * cpuid, far too slow per call).
 *
 * bin_est: the AVX2 kernel (avx2.c): its look-ups are scalar loads, which
 * wider registers do not speed up; a 16-lane _mm512_i32gather_ps version
 * was measured no faster than the reference (see avx2.c).
 */

/* out[0..7] = totals of eight u64 x 8 accumulators (each total < 2^32) */
static inline void ham_store8_avx512(__m512i a0, __m512i a1, __m512i a2, __m512i a3, __m512i a4,
                                     __m512i a5, __m512i a6, __m512i a7, uint32_t *out)
{
    __m512i s01 = _mm512_or_si512(a0, _mm512_slli_epi64(a1, 32));
    __m512i s23 = _mm512_or_si512(a2, _mm512_slli_epi64(a3, 32));
    __m512i s45 = _mm512_or_si512(a4, _mm512_slli_epi64(a5, 32));
    __m512i s67 = _mm512_or_si512(a6, _mm512_slli_epi64(a7, 32));
    /* per 128-bit lane: [r0, r1, r2, r3] and [r4, r5, r6, r7] partial sums */
    __m512i t0 = _mm512_add_epi32(_mm512_unpacklo_epi64(s01, s23), _mm512_unpackhi_epi64(s01, s23));
    __m512i t1 = _mm512_add_epi32(_mm512_unpacklo_epi64(s45, s67), _mm512_unpackhi_epi64(s45, s67));
    /* lanes [t0.0 + t0.2, t0.1 + t0.3, t1.0 + t1.2, t1.1 + t1.3] */
    __m512i u = _mm512_add_epi32(_mm512_shuffle_i64x2(t0, t1, _MM_SHUFFLE(1, 0, 1, 0)),
                                 _mm512_shuffle_i64x2(t0, t1, _MM_SHUFFLE(3, 2, 3, 2)));
    u = _mm512_shuffle_i64x2(u, u, _MM_SHUFFLE(3, 1, 2, 0)); /* t0 halves in lanes 0, 2 */
    __m256i v = _mm256_add_epi32(_mm512_castsi512_si256(u), _mm512_extracti64x4_epi64(u, 1));
    _mm256_storeu_si256((__m256i *)out, v);
}

/* The kernel, for a popcount POP(x) of the 64-bit words of x: name_rows
 * accumulates R (1 or 8, a constant after inlining) rows c + k * stride,
 * step-major (each 64-byte piece of q loaded once for the R rows); only
 * called with nb >= 64. */
#define VQS_HAMMING_AVX512(name, POP, LINK, ATTR)                                                 \
    static inline ATTR void name##_rows(const uint8_t *q, const uint8_t *c, size_t stride,       \
                                        size_t nb, int R, __m512i *acc)                          \
    {                                                                                            \
        for (int k = 0; k < R; k++)                                                              \
            acc[k] = _mm512_setzero_si512();                                                     \
        size_t t = 0;                                                                            \
        for (; t + 64 <= nb; t += 64) {                                                          \
            __m512i qv = _mm512_loadu_si512(q + t);                                              \
            for (int k = 0; k < R; k++)                                                          \
                acc[k] = _mm512_add_epi64(                                                       \
                    acc[k], POP(_mm512_xor_si512(qv, _mm512_loadu_si512(c + k * stride + t))));  \
        }                                                                                        \
        if (t < nb) { /* the last 64 bytes again, only the nb - t new ones counted */          \
            __mmask64 keep = ~bytes_mask(64 - (nb - t));                                         \
            __m512i qv = _mm512_loadu_si512(q + nb - 64);                                        \
            for (int k = 0; k < R; k++) {                                                        \
                __m512i x = _mm512_xor_si512(qv, _mm512_loadu_si512(c + k * stride + nb - 64));  \
                acc[k] = _mm512_add_epi64(acc[k], POP(_mm512_maskz_mov_epi8(keep, x)));          \
            }                                                                                    \
        }                                                                                        \
    }                                                                                            \
    LINK ATTR void name(const uint8_t *q, size_t nbytes, const uint8_t *codes, size_t stride,    \
                        size_t n, uint32_t *out)                                                 \
    {                                                                                            \
        if (nbytes < 64) {                                                                       \
            vqs_avx2_hamming(q, nbytes, codes, stride, n, out);                                  \
            return;                                                                              \
        }                                                                                        \
        size_t i = 0;                                                                            \
        for (; i + 8 <= n; i += 8) {                                                             \
            __m512i a[8];                                                                        \
            name##_rows(q, codes + i * stride, stride, nbytes, 8, a);                            \
            ham_store8_avx512(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], out + i);          \
        }                                                                                        \
        for (; i < n; i++) {                                                                     \
            __m512i a;                                                                           \
            name##_rows(q, codes + i * stride, stride, nbytes, 1, &a);                           \
            out[i] = (uint32_t)_mm512_reduce_add_epi64(a);                                       \
        }                                                                                        \
    }

static inline __m512i pop64_shuffle(__m512i x)
{
    const __m512i lut = _mm512_broadcast_i32x4(
        _mm_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4));
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512i lo = _mm512_and_si512(x, m4), hi = _mm512_and_si512(_mm512_srli_epi16(x, 4), m4);
    __m512i b = _mm512_add_epi8(_mm512_shuffle_epi8(lut, lo), _mm512_shuffle_epi8(lut, hi));
    return _mm512_sad_epu8(b, _mm512_setzero_si512());
}

VQS_HAMMING_AVX512(vqs_avx512_hamming_novpopcnt, pop64_shuffle, , )
VQS_HAMMING_AVX512(hamming_avx512_vpopcnt, _mm512_popcnt_epi64, static,
                   __attribute__((target("avx512vpopcntdq"))))

static atomic_int has_vpopcnt; /* 0: not asked yet, 1: no, 2: yes */

static void hamming_avx512(const uint8_t *q, size_t nbytes, const uint8_t *codes, size_t stride,
                           size_t n, uint32_t *out)
{
    int h = atomic_load_explicit(&has_vpopcnt, memory_order_relaxed);
    if (!h) {
        h = vqs_simd_has_vpopcntdq() ? 2 : 1;
        atomic_store_explicit(&has_vpopcnt, h, memory_order_relaxed);
    }
    if (h == 2)
        hamming_avx512_vpopcnt(q, nbytes, codes, stride, n, out);
    else
        vqs_avx512_hamming_novpopcnt(q, nbytes, codes, stride, n, out);
}

/* ==== selection ========================================================== */
/*
 * 16 floats (32 uint16) per compare into a mask register; the selected
 * lanes of a running index vector are packed with vpcompressd into a
 * register and written with a masked store of exactly popcount lanes, so
 * nothing past the selected entries is written (idx may hold only n). One
 * branch per 64 scores skips blocks with nothing selected (the usual case
 * once a top-k threshold is tight); inside a block there is no branch.
 * Rejected: vpcompressd with a memory destination (microcoded and slow on
 * Zen 4); a branch per 16 scores (mispredicted often at 1% selectivity:
 * 0.7x of this at 1M floats). A last partial vector is loaded with a mask
 * and its compare mask is cut to the valid lanes.
 */

/* writes the lanes of iv selected by mk at idx + k; returns the new count */
static inline size_t sel_put16(uint32_t *idx, size_t k, __mmask16 mk, __m512i iv)
{
    unsigned c = (unsigned)__builtin_popcount(mk);
    _mm512_mask_storeu_epi32(idx + k, (__mmask16)((1u << c) - 1),
                             _mm512_maskz_compress_epi32(mk, iv));
    return k + c;
}

static size_t select_lt_avx512(const float *x, size_t n, float thr, uint32_t *idx)
{
    const __m512 th = _mm512_set1_ps(thr);
    const __m512i s16 = _mm512_set1_epi32(16);
    __m512i iv = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    size_t k = 0, i = 0;
    /* 64 scores per branch: at low selectivity most blocks write nothing */
    for (; i + 64 <= n; i += 64) {
        __mmask16 m0 = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), th, _CMP_LT_OQ);
        __mmask16 m1 = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i + 16), th, _CMP_LT_OQ);
        __mmask16 m2 = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i + 32), th, _CMP_LT_OQ);
        __mmask16 m3 = _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i + 48), th, _CMP_LT_OQ);
        if (m0 | m1 | m2 | m3) {
            k = sel_put16(idx, k, m0, iv);
            k = sel_put16(idx, k, m1, _mm512_add_epi32(iv, s16));
            k = sel_put16(idx, k, m2, _mm512_add_epi32(iv, _mm512_set1_epi32(32)));
            k = sel_put16(idx, k, m3, _mm512_add_epi32(iv, _mm512_set1_epi32(48)));
        }
        iv = _mm512_add_epi32(iv, _mm512_set1_epi32(64));
    }
    for (; i + 16 <= n; i += 16) {
        k = sel_put16(idx, k, _mm512_cmp_ps_mask(_mm512_loadu_ps(x + i), th, _CMP_LT_OQ), iv);
        iv = _mm512_add_epi32(iv, s16);
    }
    if (i < n) {
        __mmask16 vm = (__mmask16)((1u << (n - i)) - 1);
        k = sel_put16(idx, k,
                      _mm512_mask_cmp_ps_mask(vm, _mm512_maskz_loadu_ps(vm, x + i), th, _CMP_LT_OQ),
                      iv);
    }
    return k;
}

static size_t select_le_u16_avx512(const uint16_t *x, size_t n, uint16_t thr, uint32_t *idx)
{
    const __m512i th = _mm512_set1_epi16((short)thr);
    const __m512i s16 = _mm512_set1_epi32(16), s32 = _mm512_set1_epi32(32);
    __m512i iv = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    size_t k = 0, i = 0;
    for (; i + 64 <= n; i += 64) {
        __mmask32 m0 = _mm512_cmple_epu16_mask(_mm512_loadu_si512(x + i), th);
        __mmask32 m1 = _mm512_cmple_epu16_mask(_mm512_loadu_si512(x + i + 32), th);
        if (m0 | m1) {
            k = sel_put16(idx, k, (__mmask16)m0, iv);
            k = sel_put16(idx, k, (__mmask16)(m0 >> 16), _mm512_add_epi32(iv, s16));
            k = sel_put16(idx, k, (__mmask16)m1, _mm512_add_epi32(iv, s32));
            k = sel_put16(idx, k, (__mmask16)(m1 >> 16), _mm512_add_epi32(iv, _mm512_set1_epi32(48)));
        }
        iv = _mm512_add_epi32(iv, _mm512_set1_epi32(64));
    }
    for (; i < n; i += 32) {
        __mmask32 vm = n - i >= 32 ? ~(__mmask32)0 : (__mmask32)((1u << (n - i)) - 1);
        __mmask32 mk = _mm512_mask_cmple_epu16_mask(vm, _mm512_maskz_loadu_epi16(vm, x + i), th);
        k = sel_put16(idx, k, (__mmask16)mk, iv);
        k = sel_put16(idx, k, (__mmask16)(mk >> 16), _mm512_add_epi32(iv, s16));
        iv = _mm512_add_epi32(iv, s32);
    }
    return k;
}

/* ==== exact scores in double ============================================ */
/* 8 floats widened to 8 doubles per step, two accumulators (the add
 * latency), the tail under a mask. */

static double l2_f64_avx512(const float *x, const float *y, size_t d)
{
    __m512d a0 = _mm512_setzero_pd(), a1 = a0;
    size_t j = 0;
    for (; j + 16 <= d; j += 16) {
        __m512d e0 = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + j)),
                                   _mm512_cvtps_pd(_mm256_loadu_ps(y + j)));
        __m512d e1 = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + j + 8)),
                                   _mm512_cvtps_pd(_mm256_loadu_ps(y + j + 8)));
        a0 = _mm512_fmadd_pd(e0, e0, a0);
        a1 = _mm512_fmadd_pd(e1, e1, a1);
    }
    for (; j < d; j += 8) {
        __mmask8 k = d - j >= 8 ? 0xff : (__mmask8)((1u << (d - j)) - 1);
        __m512d e = _mm512_sub_pd(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(k, x + j)),
                                  _mm512_cvtps_pd(_mm256_maskz_loadu_ps(k, y + j)));
        a0 = _mm512_fmadd_pd(e, e, a0);
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
}

static double ip_f64_avx512(const float *x, const float *y, size_t d)
{
    __m512d a0 = _mm512_setzero_pd(), a1 = a0;
    size_t j = 0;
    for (; j + 16 <= d; j += 16) {
        a0 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + j)),
                             _mm512_cvtps_pd(_mm256_loadu_ps(y + j)), a0);
        a1 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_loadu_ps(x + j + 8)),
                             _mm512_cvtps_pd(_mm256_loadu_ps(y + j + 8)), a1);
    }
    for (; j < d; j += 8) {
        __mmask8 k = d - j >= 8 ? 0xff : (__mmask8)((1u << (d - j)) - 1);
        a0 = _mm512_fmadd_pd(_mm512_cvtps_pd(_mm256_maskz_loadu_ps(k, x + j)),
                             _mm512_cvtps_pd(_mm256_maskz_loadu_ps(k, y + j)), a0);
    }
    return _mm512_reduce_add_pd(_mm512_add_pd(a0, a1));
}

static void add_f32_avx512(const float *a, const float *b, size_t n, float *out)
{
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, _mm512_add_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i)));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(out + i, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, a + i), _mm512_maskz_loadu_ps(k, b + i)));
    }
}

const vqs_kernels vqs_kernels_avx512 = {
    .level = VQS_SIMD_AVX512,
    .name = "avx512",
    .lut8 = lut8_rows4,
    .lut4 = lut4_avx512,
    .sq_l2 = sq_l2_avx512,
    .sq_ip = sq_ip_avx512,
    .pq4fs_scan = pq4fs_scan_avx512,
    .pq4fs_quantize = pq4fs_quantize_avx512,
    .l2_f64 = l2_f64_avx512,
    .ip_f64 = ip_f64_avx512,
    .add_f32 = add_f32_avx512,
    .pq8fs_scan = pq8fs_scan_avx512,
    .hamming = hamming_avx512,
    .bin_est = vqs_avx2_bin_est,
    .select_lt = select_lt_avx512,
    .select_le_u16 = select_le_u16_avx512,
};
