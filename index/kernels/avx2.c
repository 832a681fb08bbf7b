/*
 * avx2.c: the AVX2 scan kernels (vqs_kernels.h). Compiled with this level's
 * -m flags only (CMakeLists.txt); reached only through the dispatch table
 * after a run-time CPU check. Anything not accelerated here falls back to
 * the reference in ref.c.
 */
#include "kernels_internal.h"
#include "fs4_quantize.h"
#include "simd_avx2_common.h"
#include "vqs_simd_avx2.h"

#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <string.h>

/* ==== look-up tables ===================================================== */
/*
 * Measured on the project machine (AMD EPYC, Zen 4, 1M codes, one thread,
 * bench/bench_kernels_a):
 *
 * lut8 is scalar code (lut8_rows4, simd_avx2_common.h): four rows at a
 * time, two accumulators per row (eight independent float add chains),
 * about 2x the reference loop.
 * Rejected: vgatherdps over 8 sub-quantizers of one row with an 8-row
 * transposing reduction (0.55x of this at m=16, 0.7x at m=32) or over 8
 * rows (about 0.4x, a throw-away variant): this CPU's gathers are slower
 * than its scalar loads.
 *
 * lut4 looks 8 rows up at once: the 16-float table of a sub-quantizer is two
 * registers, vpermps picks from both with the low 3 bits of each nibble and
 * vblendvps chooses by bit 3 (shifted to the sign bit). The code bytes of 8
 * rows are loaded as 16-byte chunks (32 nibbles), two rows per register,
 * and transposed with 4 + 4 unpacks: register q, lane r = dword q of row r.
 * Rejected: vpgatherdd of the dwords of 8 rows (0.45x of this at m=32, a
 * throw-away variant). Table lookups are summed in pairs before the two
 * accumulators. For a last chunk of fewer than 32 nibbles, a row whose
 * 16-byte load would pass the end of the codes (n * stride) is copied into
 * a zeroed buffer first; other rows read the next row's bytes, whose
 * nibbles are never used. A last block of fewer than 8 rows repeats its
 * last row in the missing lanes and keeps only its own results.
 */

/* 16 bytes at p, or (partial chunk near the end of the codes) the nb bytes
 * there followed by zeros */
static inline __m128i lut4_chunk(const uint8_t *p, size_t nb, const uint8_t *end)
{
    if (nb == 16 || p + 16 <= end)
        return _mm_loadu_si128((const __m128i *)p);
    uint8_t tmp[16] = {0};
    memcpy(tmp, p, nb);
    return _mm_loadu_si128((const __m128i *)tmp);
}

/* Bytes off..off+nb-1 of the 8 rows r[0..7], transposed: w[q] lane k =
 * bytes 4q..4q+3 of row k (nibbles 8q..8q+7 of the chunk, U4 order). */
static inline __attribute__((always_inline)) void lut4_load8(const uint8_t *const *r, size_t off,
                                                             size_t nb, const uint8_t *end,
                                                             __m256i w[4])
{
    __m256i x[4];
    for (int a = 0; a < 4; a++)
        x[a] = _mm256_inserti128_si256(_mm256_castsi128_si256(lut4_chunk(r[a] + off, nb, end)),
                                       lut4_chunk(r[a + 4] + off, nb, end), 1);
    /* x[a] = [row a | row a + 4]; a 4x4 dword transpose in each half */
    __m256i t0 = _mm256_unpacklo_epi32(x[0], x[1]), t1 = _mm256_unpackhi_epi32(x[0], x[1]);
    __m256i t2 = _mm256_unpacklo_epi32(x[2], x[3]), t3 = _mm256_unpackhi_epi32(x[2], x[3]);
    w[0] = _mm256_unpacklo_epi64(t0, t2);
    w[1] = _mm256_unpackhi_epi64(t0, t2);
    w[2] = _mm256_unpacklo_epi64(t1, t3);
    w[3] = _mm256_unpackhi_epi64(t1, t3);
}

/* table l (16 floats) at the nibble at bit sh of every lane of w */
static inline __attribute__((always_inline)) __m256 lut4_look(__m256i w, int sh, const float *l)
{
    __m256i ix = _mm256_srli_epi32(w, sh);
    __m256 lo = _mm256_permutevar8x32_ps(_mm256_loadu_ps(l), ix);
    __m256 hi = _mm256_permutevar8x32_ps(_mm256_loadu_ps(l + 8), ix);
    return _mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(_mm256_slli_epi32(w, 28 - sh)));
}

/* adds the 8 sub-quantizers of nibbles 0..7 of w (tables l[0..127]) */
static inline __attribute__((always_inline)) void lut4_dword8(__m256i w, const float *l,
                                                              __m256 *s0, __m256 *s1)
{
    __m256 a = _mm256_add_ps(lut4_look(w, 0, l), lut4_look(w, 4, l + 16));
    __m256 b = _mm256_add_ps(lut4_look(w, 8, l + 32), lut4_look(w, 12, l + 48));
    __m256 c = _mm256_add_ps(lut4_look(w, 16, l + 64), lut4_look(w, 20, l + 80));
    __m256 d = _mm256_add_ps(lut4_look(w, 24, l + 96), lut4_look(w, 28, l + 112));
    *s0 = _mm256_add_ps(*s0, _mm256_add_ps(a, b));
    *s1 = _mm256_add_ps(*s1, _mm256_add_ps(c, d));
}

/* lanes = bias + sum over the m sub-quantizers of the rows r[0..7] */
static inline __attribute__((always_inline)) __m256 lut4_block8(const float *lut, size_t m,
                                                                float bias,
                                                                const uint8_t *const *r,
                                                                const uint8_t *end)
{
    __m256 s0 = _mm256_set1_ps(bias), s1 = _mm256_setzero_ps();
    __m256i w[4];
    size_t j0 = 0;
    for (; j0 + 32 <= m; j0 += 32) {
        lut4_load8(r, j0 / 2, 16, end, w);
        for (int q = 0; q < 4; q++)
            lut4_dword8(w[q], lut + (j0 + 8 * (size_t)q) * 16, &s0, &s1);
    }
    if (j0 < m) {
        size_t rem = m - j0, t = 0; /* 1..31 nibbles */
        lut4_load8(r, j0 / 2, (rem + 1) / 2, end, w);
        for (; t + 8 <= rem; t += 8)
            lut4_dword8(w[t / 8], lut + (j0 + t) * 16, &s0, &s1);
        for (; t < rem; t++) {
            __m256 v = lut4_look(w[t / 8], (int)(4 * (t % 8)), lut + (j0 + t) * 16);
            if (t & 1)
                s1 = _mm256_add_ps(s1, v);
            else
                s0 = _mm256_add_ps(s0, v);
        }
    }
    return _mm256_add_ps(s0, s1);
}

static void lut4_avx2(const float *lut, size_t m, float bias, const uint8_t *codes, size_t stride,
                      size_t n, float *out)
{
    const uint8_t *end = codes + n * stride, *r[8];
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int k = 0; k < 8; k++)
            r[k] = codes + (i + (size_t)k) * stride;
        _mm256_storeu_ps(out + i, lut4_block8(lut, m, bias, r, end));
    }
    if (i < n) {
        /* the missing lanes repeat the last row; only nr results are kept */
        size_t nr = n - i;
        for (size_t k = 0; k < 8; k++)
            r[k] = codes + (i + (k < nr ? k : nr - 1)) * stride;
        float tmp[8];
        _mm256_storeu_ps(tmp, lut4_block8(lut, m, bias, r, end));
        memcpy(out + i, tmp, nr * sizeof(float));
    }
}

/* ==== scalar codes ======================================================= */
/*
 * sq_l2 / sq_ip: vectorised over dimensions, 8 per step, four rows per pass
 * sharing the q (and w) loads, one accumulator per row, summed together at
 * the end (hadd tree). Codes are converted in registers as in avx512.c
 * (see there; the E4M3 NaN codes 0x7f/0xff give +-480 here too):
 * U8/S8 vpmovzxbd/vpmovsxbd; F16 vcvtph2ps; BF16 << 16; E5M2 byte << 8 as
 * fp16 and E4M3 (sign-extended byte << 7) & 0xbf80 as fp16 (value / 256;
 * the 256 is put on w or q once per step), both widened 16 bytes at a time
 * (one vpmovzxbw/vpmovsxbw per 16 dimensions: 1.15x over 8 at a time);
 * F32: a plain unaligned load (no conversion);
 * U4: the row's 4 bytes broadcast to all lanes and shifted right by 4k in
 * lane k (vpsrlvd), no shuffle (1.6x over spreading nibbles to bytes with
 * vpmovzxbw / vpmovzxbd, which queue on this CPU's shuffle pipes).
 * The last step of a row (d % 8 dimensions): q and w come from masked
 * loads (vmaskmovps, zeros), the codes from a plain load when it stays inside
 * the n * stride bytes of codes (the lanes past d are then zeroed after the
 * conversion, so a NaN pattern from the next row cannot leak in), else from
 * a zeroed copy.
 */

static const int32_t sq_lane_tab[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};

/* bytes of codes one 8-dimension step loads */
static inline size_t sq_step_bytes(vqs_elem t)
{
    return t == VQS_ELEM_U4 ? 4 : (t == VQS_ELEM_F16 || t == VQS_ELEM_BF16) ? 16 : t == VQS_ELEM_F32 ? 32 : 8;
}

/* byte offset of dimension j in a row */
static inline size_t sq_byte_off(vqs_elem t, size_t j)
{
    return t == VQS_ELEM_U4 ? j / 2 : (t == VQS_ELEM_F16 || t == VQS_ELEM_BF16) ? 2 * j : t == VQS_ELEM_F32 ? 4 * j : j;
}

/* v(row, j..j+7) from the step's bytes at p */
static inline __attribute__((always_inline)) __m256 sq_v8(vqs_elem t, const uint8_t *p)
{
    switch (t) {
    case VQS_ELEM_U8:
        return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)));
    case VQS_ELEM_S8:
        return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
    case VQS_ELEM_U4: {
        /* the 4 bytes in every lane, lane k shifted right by 4k: no shuffle */
        int32_t x;
        memcpy(&x, p, 4);
        __m256i v = _mm256_srlv_epi32(_mm256_set1_epi32(x), _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28));
        return _mm256_cvtepi32_ps(_mm256_and_si256(v, _mm256_set1_epi32(15)));
    }
    case VQS_ELEM_F16:
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    case VQS_ELEM_BF16:
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
    case VQS_ELEM_E4M3: {
        __m128i h = _mm_and_si128(
            _mm_slli_epi16(_mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)p)), 7),
            _mm_set1_epi16((short)0xbf80));
        return _mm256_cvtph_ps(h); /* value / 256: sq_rows scales q or w */
    }
    case VQS_ELEM_E5M2:
        return _mm256_cvtph_ps(_mm_slli_epi16(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)p)), 8));
    case VQS_ELEM_F32:
        return _mm256_loadu_ps((const float *)p);
    }
    return _mm256_setzero_ps();
}

/* 16 dimensions at once for the types whose widening is cheaper on 16
 * lanes (E4M3, E5M2: 16 bytes -> 16 fp16; U4: 8 bytes -> 16 nibble bytes):
 * v[0] = dims j..j+7, v[1] = j+8..j+15, from the step's bytes at p */
static inline int sq_wide(vqs_elem t)
{
    return t == VQS_ELEM_E4M3 || t == VQS_ELEM_E5M2;
}

static inline __attribute__((always_inline)) void sq_v16(vqs_elem t, const uint8_t *p,
                                                         __m256 v[2])
{
    if (t == VQS_ELEM_U4) {
        __m128i b = _mm_loadl_epi64((const __m128i *)p);
        __m128i lo = _mm_and_si128(b, _mm_set1_epi8(15));
        __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi8(15));
        __m128i x = _mm_unpacklo_epi8(lo, hi); /* nibbles of 8 bytes, U4 order */
        v[0] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(x));
        v[1] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_unpackhi_epi64(x, x)));
        return;
    }
    __m128i b = _mm_loadu_si128((const __m128i *)p);
    __m256i h;
    if (t == VQS_ELEM_E5M2)
        h = _mm256_slli_epi16(_mm256_cvtepu8_epi16(b), 8);
    else /* E4M3, value / 256 */
        h = _mm256_and_si256(_mm256_slli_epi16(_mm256_cvtepi8_epi16(b), 7),
                             _mm256_set1_epi16((short)0xbf80));
    v[0] = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
    v[1] = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
}

/* v of the last, partial step: dimensions j..d-1 of row, zero in lanes >= d - j */
static inline __attribute__((always_inline)) __m256 sq_v8_tail(vqs_elem t, const uint8_t *row,
                                                               size_t j, size_t d, __m256i lanes,
                                                               const uint8_t *end)
{
    const uint8_t *p = row + sq_byte_off(t, j);
    size_t sb = sq_step_bytes(t);
    __m256 v;
    if (p + sb <= end) {
        v = sq_v8(t, p);
    } else {
        uint8_t tmp[32] = {0};
        memcpy(tmp, p, sq_byte_off(t, d + (t == VQS_ELEM_U4)) - sq_byte_off(t, j));
        v = sq_v8(t, tmp);
    }
    return _mm256_and_ps(v, _mm256_castsi256_ps(lanes));
}

static inline __m128 sq_hsum4_256(__m256 a, __m256 b, __m256 c, __m256 d)
{
    __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

/* accumulates one step into s[0..nr-1] given the rows' values v[] */
static inline __attribute__((always_inline)) void sq_acc(int l2, __m256 vq, __m256 vw,
                                                         const __m256 *v, int nr, __m256 *s)
{
    for (int a = 0; a < nr; a++) {
        if (l2) {
            __m256 e = _mm256_fnmadd_ps(vw, v[a], vq);
            s[a] = _mm256_fmadd_ps(e, e, s[a]);
        } else {
            s[a] = _mm256_fmadd_ps(vq, v[a], s[a]);
        }
    }
}

/* E4M3: sq_v8 gives value / 256; the 256 goes on w (sq_l2) or q (sq_ip),
 * once per step for all rows (exact unless 256 w overflows: |w| > 2^120) */
static inline __attribute__((always_inline)) void sq_scale(vqs_elem t, int l2, __m256 *vq,
                                                           __m256 *vw)
{
    if (t == VQS_ELEM_E4M3) {
        if (l2)
            *vw = _mm256_mul_ps(*vw, _mm256_set1_ps(256.0f));
        else
            *vq = _mm256_mul_ps(*vq, _mm256_set1_ps(256.0f));
    }
}

/* nr (4 or 1) rows r[] into s[] */
static inline __attribute__((always_inline)) void sq_rows(vqs_elem t, int l2, const float *q,
                                                          const float *w, size_t d,
                                                          const uint8_t *const *r, int nr,
                                                          const uint8_t *end, __m256 *s)
{
    const size_t dfull = d & ~(size_t)7;
    __m256 v[4], vw = _mm256_setzero_ps();
    size_t j = 0;
    if (sq_wide(t)) {
        for (; j + 16 <= d; j += 16) {
            __m256 vq0 = _mm256_loadu_ps(q + j), vq1 = _mm256_loadu_ps(q + j + 8);
            __m256 vw0 = vw, vw1 = vw, v1[4];
            if (l2) {
                vw0 = _mm256_loadu_ps(w + j);
                vw1 = _mm256_loadu_ps(w + j + 8);
            }
            sq_scale(t, l2, &vq0, &vw0);
            sq_scale(t, l2, &vq1, &vw1);
            for (int a = 0; a < nr; a++) {
                __m256 two[2];
                sq_v16(t, r[a] + sq_byte_off(t, j), two);
                v[a] = two[0];
                v1[a] = two[1];
            }
            sq_acc(l2, vq0, vw0, v, nr, s);
            sq_acc(l2, vq1, vw1, v1, nr, s);
        }
    }
    for (; j < dfull; j += 8) {
        __m256 vq = _mm256_loadu_ps(q + j);
        if (l2)
            vw = _mm256_loadu_ps(w + j);
        sq_scale(t, l2, &vq, &vw);
        for (int a = 0; a < nr; a++)
            v[a] = sq_v8(t, r[a] + sq_byte_off(t, j));
        sq_acc(l2, vq, vw, v, nr, s);
    }
    if (dfull < d) {
        __m256i lanes = _mm256_loadu_si256((const __m256i *)(sq_lane_tab + 8 - (d - dfull)));
        __m256 vq = _mm256_maskload_ps(q + dfull, lanes);
        if (l2)
            vw = _mm256_maskload_ps(w + dfull, lanes);
        sq_scale(t, l2, &vq, &vw);
        for (int a = 0; a < nr; a++)
            v[a] = sq_v8_tail(t, r[a], dfull, d, lanes, end);
        sq_acc(l2, vq, vw, v, nr, s);
    }
}

/* l2 != 0: out = sum (q - w v)^2; else out = bias + sum q v */
static inline __attribute__((always_inline)) void sq_scan_t(vqs_elem t, int l2, const float *q,
                                                            const float *w, float bias, size_t d,
                                                            const uint8_t *codes, size_t stride,
                                                            size_t n, float *out)
{
    const uint8_t *end = codes + n * stride;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint8_t *r[4] = {codes + i * stride, codes + (i + 1) * stride,
                               codes + (i + 2) * stride, codes + (i + 3) * stride};
        __m256 s[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                       _mm256_setzero_ps()};
        sq_rows(t, l2, q, w, d, r, 4, end, s);
        __m128 v = sq_hsum4_256(s[0], s[1], s[2], s[3]);
        if (!l2)
            v = _mm_add_ps(v, _mm_set1_ps(bias));
        _mm_storeu_ps(out + i, v);
    }
    for (; i < n; i++) {
        const uint8_t *r[1] = {codes + i * stride};
        __m256 s[1] = {_mm256_setzero_ps()};
        sq_rows(t, l2, q, w, d, r, 1, end, s);
        /* the same reduction order as the 4-row blocks: a code scores the
         * same wherever it sits in its list (results must not depend on
         * insertion order) */
        out[i] = _mm_cvtss_f32(sq_hsum4_256(s[0], s[0], s[0], s[0])) + (l2 ? 0.0f : bias);
    }
}

/* the sq_l2 and sq_ip entries: sq_scan_t per element type (simd_avx2_common.h) */
VQS_SQ_ENTRIES(sq_l2_avx2, sq_ip_avx2)

/* ==== PQ 4-bit fast scan ================================================= */
/*
 * Layout: ref.c ("PQ 4-bit fast scan"). Per block of 32 vectors and per pair
 * of sub-quantizers: one 32-byte load of codes, one of the two tables (lane 0
 * = table 2p, lane 1 = table 2p + 1), (x & 15) and (x >> 4 & 15) looked up
 * with _mm256_shuffle_epi8 (vectors 0..15 and 16..31).
 * u16 accumulation as FAISS: the 32 u8 results, read as 16 u16, are added
 * to acc (low byte + 256 * high byte) and, shifted right by 8, to acc_hi
 * (the high bytes = odd vectors). At the end of the block the even vectors
 * are acc - (acc_hi << 8). All arithmetic is mod 2^16 and every true sum is
 * <= 65535 (vqs_pq4fs_quantize's R), so nothing is lost. The two lanes (even
 * and odd sub-quantizers) are then added and the even/odd vectors
 * interleaved back into order.
 * When M is odd the last table is loaded as 16 bytes, zero-extended: the
 * padding sub-quantizer contributes 0 whatever lut8 holds past table M - 1.
 * Rejected: widening every lookup with _mm256_cvtepu8_epi16 (two more
 * instructions per lookup and a cross-lane shuffle), u8 saturating sums
 * (wrong results).
 */

/* The per-table steps of the 4-bit table quantisation (fs4_quantize.h):
 * one table of 16 floats is two registers. */
static inline void fs4_minmax_avx2(const float *T, float *mn, float *mx, float *probe)
{
    __m256 a = _mm256_loadu_ps(T), b = _mm256_loadu_ps(T + 8), z = _mm256_setzero_ps();
    __m256 p = _mm256_add_ps(_mm256_mul_ps(a, z), _mm256_mul_ps(b, z));
    *mn = vqs_hmin8(_mm256_min_ps(a, b));
    *mx = vqs_hmax8(_mm256_max_ps(a, b));
    if (_mm256_movemask_ps(_mm256_cmp_ps(p, z, _CMP_NEQ_UQ)))
        *probe += NAN;
}

static inline void fs4_quant_avx2(const float *T, float mn, float inv, float Rf, uint8_t *q8)
{
    __m256 t[2] = {_mm256_loadu_ps(T), _mm256_loadu_ps(T + 8)};
    __m256 vm = _mm256_set1_ps(mn), vR = _mm256_set1_ps(Rf), vi = _mm256_set1_ps(inv),
           h = _mm256_set1_ps(0.5f), z = _mm256_setzero_ps();
    __m256i qi[2];
    for (int u = 0; u < 2; u++) {
        __m256 x = _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(t[u], vm), vi), h);
        qi[u] = _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(x, z), vR));
    }
    /* 16 int32 in 0..255 to 16 bytes: the packs work per 128-bit lane
     * (u16 order 0-3 8-11 4-7 12-15), the permute restores the order */
    __m256i w = _mm256_packus_epi32(qi[0], qi[1]);
    w = _mm256_permute4x64_epi64(w, 0xd8);
    __m128i b = _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    _mm_storeu_si128((__m128i *)q8, b);
}

static void pq4fs_quantize_avx2(const float *lut, size_t M, float limit, uint8_t *lut8, float *bias,
                                float *scale, float *err)
{
    vqs_fs4_quantize_tpl(fs4_minmax_avx2, fs4_quant_avx2, lut, M, limit, lut8, bias, scale, err);
}

static void pq4fs_scan_avx2(const uint8_t *lut8, size_t M, const uint8_t *packed, size_t nblocks,
                            uint16_t *out)
{
    size_t np = (M + 1) / 2, full = M / 2;
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    __m256i tlast = _mm256_setzero_si256();
    if (M & 1)
        tlast = _mm256_zextsi128_si256(_mm_loadu_si128((const __m128i *)(lut8 + 16 * (M - 1))));
    for (size_t b = 0; b < nblocks; b++) {
        const uint8_t *blk = packed + b * 32 * np;
        __m256i a = _mm256_setzero_si256(), ah = a, c = a, ch = a;
        for (size_t p = 0; p < np; p++) {
            __m256i x = _mm256_loadu_si256((const __m256i *)(blk + 32 * p));
            __m256i t = p < full ? _mm256_loadu_si256((const __m256i *)(lut8 + 32 * p)) : tlast;
            __m256i lo = _mm256_shuffle_epi8(t, _mm256_and_si256(x, m4));
            __m256i hi = _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(x, 4), m4));
            a = _mm256_add_epi16(a, lo);
            ah = _mm256_add_epi16(ah, _mm256_srli_epi16(lo, 8));
            c = _mm256_add_epi16(c, hi);
            ch = _mm256_add_epi16(ch, _mm256_srli_epi16(hi, 8));
        }
        fs_finish(a, ah, c, ch, out + 32 * b);
    }
}

/* ==== PQ 8-bit fast scan ================================================= */
/*
 * Layout: ref.c ("PQ 8-bit fast scan"). AVX2 has no byte permute over a
 * 256-entry table (vpshufb looks up 16 entries; 16 of them plus blends per
 * look-up would cost more than the scalar load), so this is scalar code,
 * also the AVX-512 entry on CPUs without VBMI: per block, the 64 vectors'
 * u16 sums in a stack array, four sub-quantizers per pass over it (the
 * four look-ups of a vector are added before the array is touched: one
 * load and store of the array per four look-ups, and four independent
 * loads per vector). Sums wrap mod 2^16 as the header states.
 * Rejected: the reference's order (vector-major: one add chain per vector,
 * strided code bytes); vpgatherdd of the table bytes as dwords (gathers
 * were slower than scalar loads on this machine for lut8, avx512.c).
 */

void vqs_avx2_pq8fs_scan(const uint8_t *lut8, size_t M, const uint8_t *packed, size_t nblocks,
                         uint16_t *out)
{
    for (size_t b = 0; b < nblocks; b++) {
        const uint8_t *blk = packed + b * 64 * M;
        uint16_t acc[64] = {0};
        size_t m = 0;
        for (; m + 4 <= M; m += 4) {
            const uint8_t *r0 = lut8 + m * 256, *r1 = r0 + 256, *r2 = r1 + 256, *r3 = r2 + 256;
            const uint8_t *g0 = blk + m * 64, *g1 = g0 + 64, *g2 = g1 + 64, *g3 = g2 + 64;
            for (size_t t = 0; t < 64; t++)
                acc[t] = (uint16_t)(acc[t] + ((r0[g0[t]] + r1[g1[t]]) + (r2[g2[t]] + r3[g3[t]])));
        }
        for (; m < M; m++) {
            const uint8_t *r0 = lut8 + m * 256, *g0 = blk + m * 64;
            for (size_t t = 0; t < 64; t++)
                acc[t] = (uint16_t)(acc[t] + r0[g0[t]]);
        }
        memcpy(out + b * 64, acc, sizeof acc);
    }
}

/* ==== binary ============================================================= */
/*
 * hamming: popcount of q XOR row with the nibble look-up of
 * _mm256_shuffle_epi8 (Mula et al.), byte counts summed by _mm256_sad_epu8.
 * Rows of >= 32 bytes go four at a time, step-major (each 32-byte piece of
 * q loaded once for the 4 rows; 4 independent chains; one combined
 * horizontal sum per 4 rows); shorter rows (d = 128 is 16 bytes) go two per
 * register, one per 128-bit lane, so a 16-byte row costs half a register.
 * Tails: a 16-byte and an 8-byte step in registers, the last nbytes % 8
 * bytes with scalar popcnt on the row's last 8 bytes shifted right past
 * the bytes already counted (a memcpy'd word for rows under 8 bytes):
 * nothing is read past nbytes.
 * Rejected: 64-bit scalar popcnt on words, four chains per row (measured
 * on 1M rows from memory: as fast for 96-byte rows, ~10% slower for 16-byte
 * rows than this kernel's first, one-row-at-a-time version).
 *
 * bin_est: the look-ups are scalar loads, four codes interleaved (four
 * independent add chains), blocked so that everything a pass touches stays
 * in L1: BIN_CHUNK codes' partial sums, and BIN_TBLK code bytes at a time
 * (16 KB of the nb KB of tables; d = 768 has 96 KB). Each code's sum is
 * still taken in the reference's order (t ascending, from 0, in float; a
 * partial sum parked in memory between blocks is exact), so pos equals the
 * reference's. The affine correction is done 4 codes at a time in double
 * like the reference. Rejected (measured on this machine's Zen 4, 8192 codes
 * in cache, M codes/s for nb = 96 / nb = 16): 8 codes per register with
 * _mm256_i32gather_epi32 for 4 code bytes and _mm256_i32gather_ps for the
 * table entries: 10 / 75 (the reference: 11 / 82), about 2 cycles per
 * gathered element; the AVX-512 version with 16 lanes: 11 / 84; four
 * interleaved scalar chains unblocked: 23 / 209; blocked as here: 31-34 /
 * same. Also rejected: decomposing each byte table into two nibble tables
 * for _mm256_shuffle_epi8 (the contract allows any tab, for which that is
 * not exact). The float-table contract bounds this kernel at about one
 * table load per cycle; reaching memory bandwidth needs a different
 * estimator (a quantised query in bit planes, popcounts as in hamming). */

static inline __m256i popcnt8_avx2(__m256i x)
{
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2,
                                         1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(x, m4)),
                           _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x, 4), m4)));
}

static inline uint64_t ld64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* popcount of q ^ c over the last nb % 8 bytes of [0, nb) */
static inline uint32_t ham_tail(const uint8_t *q, const uint8_t *c, size_t nb)
{
    size_t t = nb & ~(size_t)7, r = nb - t;
    if (!r)
        return 0;
    if (nb >= 8) /* the row's last 8 bytes; drop the 8 - r already counted (low) ones */
        return (uint32_t)_mm_popcnt_u64((ld64(q + nb - 8) ^ ld64(c + nb - 8)) >> (8 * (8 - r)));
    uint64_t a = 0, b = 0;
    memcpy(&a, q + t, r);
    memcpy(&b, c + t, r);
    return (uint32_t)_mm_popcnt_u64(a ^ b);
}

/* acc[k] = u64 x 4 partial popcounts of q ^ row k over the first nb & ~7
 * bytes, for R (1 or 4, a constant after inlining) rows c + k * stride,
 * step-major: each 32-byte piece of q is loaded once for the R rows */
static inline void ham_rows_avx2(const uint8_t *q, const uint8_t *c, size_t stride, size_t nb,
                                 int R, __m256i *acc)
{
    const __m256i z = _mm256_setzero_si256();
    __m256i acc8[4];
    for (int k = 0; k < R; k++)
        acc8[k] = acc[k] = z;
    size_t t = 0;
    int steps = 0;
    for (; t + 32 <= nb; t += 32) {
        __m256i qv = _mm256_loadu_si256((const __m256i *)(q + t));
        for (int k = 0; k < R; k++)
            acc8[k] = _mm256_add_epi8(
                acc8[k], popcnt8_avx2(_mm256_xor_si256(
                             qv, _mm256_loadu_si256((const __m256i *)(c + k * stride + t)))));
        if (++steps == 16) { /* bytes <= 16 * 8 + 16 (the steps below): no overflow */
            for (int k = 0; k < R; k++) {
                acc[k] = _mm256_add_epi64(acc[k], _mm256_sad_epu8(acc8[k], z));
                acc8[k] = z;
            }
            steps = 0;
        }
    }
    if (t + 16 <= nb) {
        __m128i qv = _mm_loadu_si128((const __m128i *)(q + t));
        for (int k = 0; k < R; k++) {
            __m128i x = _mm_xor_si128(qv, _mm_loadu_si128((const __m128i *)(c + k * stride + t)));
            acc8[k] = _mm256_add_epi8(acc8[k], popcnt8_avx2(_mm256_zextsi128_si256(x)));
        }
        t += 16;
    }
    if (t + 8 <= nb) {
        __m128i qv = _mm_loadl_epi64((const __m128i *)(q + t));
        for (int k = 0; k < R; k++) {
            __m128i x = _mm_xor_si128(qv, _mm_loadl_epi64((const __m128i *)(c + k * stride + t)));
            acc8[k] = _mm256_add_epi8(acc8[k], popcnt8_avx2(_mm256_zextsi128_si256(x)));
        }
    }
    for (int k = 0; k < R; k++)
        acc[k] = _mm256_add_epi64(acc[k], _mm256_sad_epu8(acc8[k], z));
}

/* the same for two rows, one per 128-bit lane (nb < 32): u64 x 4 = row c0
 * in lanes 0-1, row c1 in lanes 2-3 */
static inline __m256i ham_pair_avx2(const uint8_t *q, const uint8_t *c0, const uint8_t *c1,
                                    size_t nb)
{
    const __m256i z = _mm256_setzero_si256();
    __m256i acc8 = z;
    size_t t = 0;
    if (nb >= 16) {
        __m256i qq = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)q));
        __m256i x = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)c0)),
            _mm_loadu_si128((const __m128i *)c1), 1);
        acc8 = popcnt8_avx2(_mm256_xor_si256(qq, x));
        t = 16;
    }
    if (t + 8 <= nb) {
        __m256i qq = _mm256_broadcastsi128_si256(_mm_loadl_epi64((const __m128i *)(q + t)));
        __m256i x = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadl_epi64((const __m128i *)(c0 + t))),
            _mm_loadl_epi64((const __m128i *)(c1 + t)), 1);
        /* the upper 8 bytes of each lane are 0 ^ 0 */
        acc8 = _mm256_add_epi8(acc8, popcnt8_avx2(_mm256_xor_si256(qq, x)));
    }
    return _mm256_sad_epu8(acc8, z);
}

/* out[0..3] = the totals of four u64 x 4 accumulators (each total < 2^32) */
static inline void ham_store4_avx2(__m256i a0, __m256i a1, __m256i a2, __m256i a3, uint32_t *out)
{
    __m256i s01 = _mm256_or_si256(a0, _mm256_slli_epi64(a1, 32));
    __m256i s23 = _mm256_or_si256(a2, _mm256_slli_epi64(a3, 32));
    __m256i u = _mm256_add_epi32(_mm256_unpacklo_epi64(s01, s23), _mm256_unpackhi_epi64(s01, s23));
    __m128i v = _mm_add_epi32(_mm256_castsi256_si128(u), _mm256_extracti128_si256(u, 1));
    _mm_storeu_si128((__m128i *)out, v);
}

void vqs_avx2_hamming(const uint8_t *q, size_t nbytes, const uint8_t *codes, size_t stride,
                      size_t n, uint32_t *out)
{
    size_t i = 0;
    if (nbytes >= 32) {
        for (; i + 4 <= n; i += 4) {
            __m256i a[4];
            ham_rows_avx2(q, codes + i * stride, stride, nbytes, 4, a);
            ham_store4_avx2(a[0], a[1], a[2], a[3], out + i);
        }
    } else if (nbytes >= 8) {
        for (; i + 4 <= n; i += 4) {
            const uint8_t *c = codes + i * stride;
            __m256i p01 = ham_pair_avx2(q, c, c + stride, nbytes);
            __m256i p23 = ham_pair_avx2(q, c + 2 * stride, c + 3 * stride, nbytes);
            /* rows 0, 1, 2, 3 = lanes {0,1}, {2,3} of p01, then of p23 */
            __m256i s = _mm256_or_si256(p01, _mm256_slli_epi64(p23, 32));
            __m256i u = _mm256_add_epi32(s, _mm256_shuffle_epi32(s, 0x4e)); /* + other qword */
            __m128i lo = _mm256_castsi256_si128(u), hi = _mm256_extracti128_si256(u, 1);
            /* lo = [r0, r2, ..], hi = [r1, r3, ..] */
            _mm_storel_epi64((__m128i *)(out + i), _mm_unpacklo_epi32(lo, hi));
            _mm_storel_epi64((__m128i *)(out + i + 2),
                             _mm_unpacklo_epi32(_mm_srli_si128(lo, 4), _mm_srli_si128(hi, 4)));
        }
    }
    if (nbytes & 7)
        for (size_t j = 0; j < i; j++)
            out[j] += ham_tail(q, codes + j * stride, nbytes);
    for (; i < n; i++) {
        const uint8_t *c = codes + i * stride;
        __m256i a;
        ham_rows_avx2(q, c, stride, nbytes, 1, &a);
        __m128i v = _mm_add_epi64(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
        out[i] = (uint32_t)(_mm_cvtsi128_si64(v) + _mm_extract_epi64(v, 1)) +
                 ham_tail(q, c, nbytes);
    }
}

/* the reference's affine correction for 4 codes, in double */
static inline __m128 bin_fix4(__m128 pos, __m128 r, __m128 a, float cst, float sumv, float isd,
                              int l2)
{
    __m128 f = _mm_mul_ps(_mm_sub_ps(_mm_add_ps(pos, pos), _mm_set1_ps(sumv)), _mm_set1_ps(isd));
    __m256d rd = _mm256_cvtps_pd(r), ad = _mm256_cvtps_pd(a), z = _mm256_setzero_pd();
    __m256d est = _mm256_div_pd(_mm256_mul_pd(rd, _mm256_cvtps_pd(f)), ad);
    __m256d ok = _mm256_and_pd(_mm256_cmp_pd(ad, z, _CMP_GT_OQ),
                               _mm256_cmp_pd(_mm256_sub_pd(est, est), z, _CMP_EQ_OQ)); /* finite */
    est = _mm256_and_pd(est, ok);
    __m256d c = _mm256_set1_pd(cst), v;
    if (l2)
        v = _mm256_sub_pd(_mm256_add_pd(c, _mm256_mul_pd(rd, rd)),
                          _mm256_mul_pd(_mm256_set1_pd(2.0), est));
    else
        v = _mm256_add_pd(c, est);
    /* max/min return their second operand when one is NaN: NaN stays NaN */
    v = _mm256_min_pd(_mm256_set1_pd(FLT_MAX), _mm256_max_pd(_mm256_set1_pd(-FLT_MAX), v));
    return _mm256_cvtpd_ps(v);
}

#define BIN_CHUNK 128 /* codes per pass: their partial sums and rows stay in L1 */
#define BIN_TBLK 16   /* code bytes per pass: 16 KB of tables, in L1 */

void vqs_avx2_bin_est(const float *tab, size_t nb, float cst, float sumv, float isd, int l2,
                      const uint8_t *codes, size_t stride, size_t n, float *out)
{
    float pos[BIN_CHUNK];
    for (size_t i0 = 0; i0 < n; i0 += BIN_CHUNK) {
        size_t m = n - i0 < BIN_CHUNK ? n - i0 : BIN_CHUNK;
        const uint8_t *c = codes + i0 * stride;
        for (size_t k = 0; k < m; k++)
            pos[k] = 0;
        for (size_t t0 = 0; t0 < nb; t0 += BIN_TBLK) {
            size_t t1 = t0 + BIN_TBLK < nb ? t0 + BIN_TBLK : nb, k = 0;
            for (; k + 4 <= m; k += 4) { /* 4 independent chains */
                const uint8_t *r0 = c + k * stride, *r1 = r0 + stride, *r2 = r1 + stride,
                              *r3 = r2 + stride;
                float p0 = pos[k], p1 = pos[k + 1], p2 = pos[k + 2], p3 = pos[k + 3];
                for (size_t t = t0; t < t1; t++) {
                    const float *T = tab + t * 256;
                    p0 += T[r0[t]];
                    p1 += T[r1[t]];
                    p2 += T[r2[t]];
                    p3 += T[r3[t]];
                }
                pos[k] = p0, pos[k + 1] = p1, pos[k + 2] = p2, pos[k + 3] = p3;
            }
            for (; k < m; k++) {
                const uint8_t *r0 = c + k * stride;
                float p0 = pos[k];
                for (size_t t = t0; t < t1; t++)
                    p0 += tab[t * 256 + r0[t]];
                pos[k] = p0;
            }
        }
        size_t k = 0;
        for (; k + 4 <= m; k += 4) {
            float r[4], a[4];
            for (int j = 0; j < 4; j++) {
                memcpy(&r[j], c + (k + j) * stride + nb, 4);
                memcpy(&a[j], c + (k + j) * stride + nb + 4, 4);
            }
            _mm_storeu_ps(out + i0 + k, bin_fix4(_mm_loadu_ps(pos + k), _mm_loadu_ps(r),
                                                 _mm_loadu_ps(a), cst, sumv, isd, l2));
        }
        for (; k < m; k++) {
            float r, a;
            memcpy(&r, c + k * stride + nb, 4);
            memcpy(&a, c + k * stride + nb + 4, 4);
            _mm_store_ss(out + i0 + k, bin_fix4(_mm_set_ss(pos[k]), _mm_set_ss(r), _mm_set_ss(a),
                                                cst, sumv, isd, l2));
        }
    }
}

/* ==== selection ========================================================== */
/*
 * 32 scores per iteration compared into one 32-bit mask (vcmpps + vmovmskps;
 * uint16: max_epu16(x, thr) == thr, packed to bytes, vpmovmskb), skipped
 * when 0 (the usual case once a top-k threshold is tight), else its set
 * bits are written in order with tzcnt. Only the selected entries are
 * written. Rejected: a 256-entry permutation table with vpermd and a
 * full-width store (writes up to 7 entries past the count; a masked
 * vpmaskmovd store instead costs more than the bit loop at low selectivity).
 */

static inline size_t sel_bits(uint32_t *idx, size_t k, uint32_t m, size_t base)
{
    while (m) {
        idx[k++] = (uint32_t)(base + (unsigned)__builtin_ctz(m));
        m &= m - 1;
    }
    return k;
}

static size_t select_lt_avx2(const float *x, size_t n, float thr, uint32_t *idx)
{
    const __m256 th = _mm256_set1_ps(thr);
    size_t k = 0, i = 0;
    for (; i + 32 <= n; i += 32) {
        uint32_t m0 = (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), th, _CMP_LT_OQ));
        uint32_t m1 = (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i + 8), th, _CMP_LT_OQ));
        uint32_t m2 = (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i + 16), th, _CMP_LT_OQ));
        uint32_t m3 = (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i + 24), th, _CMP_LT_OQ));
        k = sel_bits(idx, k, m0 | m1 << 8 | m2 << 16 | m3 << 24, i);
    }
    for (; i + 8 <= n; i += 8)
        k = sel_bits(idx, k, (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + i), th, _CMP_LT_OQ)), i);
    for (; i < n; i++)
        if (x[i] < thr)
            idx[k++] = (uint32_t)i;
    return k;
}

static size_t select_le_u16_avx2(const uint16_t *x, size_t n, uint16_t thr, uint32_t *idx)
{
    const __m256i th = _mm256_set1_epi16((short)thr);
    size_t k = 0, i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(x + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(x + i + 16));
        __m256i ca = _mm256_cmpeq_epi16(_mm256_max_epu16(a, th), th);
        __m256i cb = _mm256_cmpeq_epi16(_mm256_max_epu16(b, th), th);
        /* packs interleaves 128-bit halves: a0-7 b0-7 a8-15 b8-15 -> reorder */
        __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi16(ca, cb), 0xd8);
        k = sel_bits(idx, k, (uint32_t)_mm256_movemask_epi8(p), i);
    }
    for (; i < n; i++)
        if (x[i] <= thr)
            idx[k++] = (uint32_t)i;
    return k;
}

/* ==== exact scores in double ============================================ */
/* 4 floats widened to 4 doubles per step, two accumulators, a scalar tail. */

static inline double hsum4d(__m256d v)
{
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

static double l2_f64_avx2(const float *x, const float *y, size_t d)
{
    __m256d a0 = _mm256_setzero_pd(), a1 = a0;
    size_t j = 0;
    for (; j + 8 <= d; j += 8) {
        __m256d e0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + j)), _mm256_cvtps_pd(_mm_loadu_ps(y + j)));
        __m256d e1 =
            _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + j + 4)), _mm256_cvtps_pd(_mm_loadu_ps(y + j + 4)));
        a0 = _mm256_fmadd_pd(e0, e0, a0);
        a1 = _mm256_fmadd_pd(e1, e1, a1);
    }
    double s = hsum4d(_mm256_add_pd(a0, a1));
    for (; j < d; j++) {
        double t = (double)x[j] - (double)y[j];
        s += t * t;
    }
    return s;
}

static double ip_f64_avx2(const float *x, const float *y, size_t d)
{
    __m256d a0 = _mm256_setzero_pd(), a1 = a0;
    size_t j = 0;
    for (; j + 8 <= d; j += 8) {
        a0 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + j)), _mm256_cvtps_pd(_mm_loadu_ps(y + j)), a0);
        a1 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + j + 4)), _mm256_cvtps_pd(_mm_loadu_ps(y + j + 4)),
                             a1);
    }
    double s = hsum4d(_mm256_add_pd(a0, a1));
    for (; j < d; j++)
        s += (double)x[j] * (double)y[j];
    return s;
}

static void add_f32_avx2(const float *a, const float *b, size_t n, float *out)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
    for (; i < n; i++)
        out[i] = a[i] + b[i];
}

const vqs_kernels vqs_kernels_avx2 = {
    .level = VQS_SIMD_AVX2,
    .name = "avx2",
    .lut8 = lut8_rows4,
    .lut4 = lut4_avx2,
    .sq_l2 = sq_l2_avx2,
    .sq_ip = sq_ip_avx2,
    .pq4fs_scan = pq4fs_scan_avx2,
    .pq4fs_quantize = pq4fs_quantize_avx2,
    .l2_f64 = l2_f64_avx2,
    .ip_f64 = ip_f64_avx2,
    .add_f32 = add_f32_avx2,
    .pq8fs_scan = vqs_avx2_pq8fs_scan,
    .hamming = vqs_avx2_hamming,
    .bin_est = vqs_avx2_bin_est,
    .select_lt = select_lt_avx2,
    .select_le_u16 = select_le_u16_avx2,
};
