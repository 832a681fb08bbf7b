/*
 * avx2.c: the AVX2 scan kernels (vqs_kernels.h). Compiled with this level's
 * -m flags only (CMakeLists.txt); reached only through the dispatch table
 * after a run-time CPU check. Anything not accelerated here falls back to
 * the reference in ref.c.
 */
#include "kernels_internal.h"

#include <immintrin.h>
#include <string.h>

/* ==== look-up tables ===================================================== */
/*
 * Measured on the project machine (AMD EPYC, Zen 4, 1M codes, one thread,
 * bench/bench_kernels_a):
 *
 * lut8 is scalar code: four rows at a time, two accumulators per row
 * (eight independent float add chains), about 2x the reference loop.
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

static void lut8_avx2(const float *lut, size_t m, float bias, const uint8_t *codes, size_t stride,
                      size_t n, float *out)
{
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint8_t *c0 = codes + i * stride, *c1 = c0 + stride, *c2 = c1 + stride,
                      *c3 = c2 + stride;
        float a0 = 0, a1 = 0, a2 = 0, a3 = 0, b0 = 0, b1 = 0, b2 = 0, b3 = 0;
        size_t j = 0;
        for (; j + 2 <= m; j += 2) {
            const float *l = lut + j * 256, *h = l + 256;
            a0 += l[c0[j]];
            a1 += l[c1[j]];
            a2 += l[c2[j]];
            a3 += l[c3[j]];
            b0 += h[c0[j + 1]];
            b1 += h[c1[j + 1]];
            b2 += h[c2[j + 1]];
            b3 += h[c3[j + 1]];
        }
        if (j < m) {
            const float *l = lut + j * 256;
            a0 += l[c0[j]];
            a1 += l[c1[j]];
            a2 += l[c2[j]];
            a3 += l[c3[j]];
        }
        out[i] = bias + (a0 + b0);
        out[i + 1] = bias + (a1 + b1);
        out[i + 2] = bias + (a2 + b2);
        out[i + 3] = bias + (a3 + b3);
    }
    for (; i < n; i++) {
        const uint8_t *c = codes + i * stride;
        float a = 0, b = 0;
        size_t j = 0;
        for (; j + 2 <= m; j += 2) {
            a += lut[j * 256 + c[j]];
            b += lut[(j + 1) * 256 + c[j + 1]];
        }
        if (j < m)
            a += lut[j * 256 + c[j]];
        out[i] = bias + (a + b);
    }
}

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
static inline size_t sq_step_bytes(vqs_sq_type t)
{
    return t == VQS_SQ_U4 ? 4 : (t == VQS_SQ_F16 || t == VQS_SQ_BF16) ? 16 : 8;
}

/* byte offset of dimension j in a row */
static inline size_t sq_byte_off(vqs_sq_type t, size_t j)
{
    return t == VQS_SQ_U4 ? j / 2 : (t == VQS_SQ_F16 || t == VQS_SQ_BF16) ? 2 * j : j;
}

/* v(row, j..j+7) from the step's bytes at p */
static inline __attribute__((always_inline)) __m256 sq_v8(vqs_sq_type t, const uint8_t *p)
{
    switch (t) {
    case VQS_SQ_U8:
        return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)));
    case VQS_SQ_S8:
        return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
    case VQS_SQ_U4: {
        /* the 4 bytes in every lane, lane k shifted right by 4k: no shuffle */
        int32_t x;
        memcpy(&x, p, 4);
        __m256i v = _mm256_srlv_epi32(_mm256_set1_epi32(x), _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28));
        return _mm256_cvtepi32_ps(_mm256_and_si256(v, _mm256_set1_epi32(15)));
    }
    case VQS_SQ_F16:
        return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    case VQS_SQ_BF16:
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
    case VQS_SQ_E4M3: {
        __m128i h = _mm_and_si128(
            _mm_slli_epi16(_mm_cvtepi8_epi16(_mm_loadl_epi64((const __m128i *)p)), 7),
            _mm_set1_epi16((short)0xbf80));
        return _mm256_cvtph_ps(h); /* value / 256: sq_rows scales q or w */
    }
    case VQS_SQ_E5M2:
        return _mm256_cvtph_ps(_mm_slli_epi16(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)p)), 8));
    }
    return _mm256_setzero_ps();
}

/* 16 dimensions at once for the types whose widening is cheaper on 16
 * lanes (E4M3, E5M2: 16 bytes -> 16 fp16; U4: 8 bytes -> 16 nibble bytes):
 * v[0] = dims j..j+7, v[1] = j+8..j+15, from the step's bytes at p */
static inline int sq_wide(vqs_sq_type t)
{
    return t == VQS_SQ_E4M3 || t == VQS_SQ_E5M2;
}

static inline __attribute__((always_inline)) void sq_v16(vqs_sq_type t, const uint8_t *p,
                                                         __m256 v[2])
{
    if (t == VQS_SQ_U4) {
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
    if (t == VQS_SQ_E5M2)
        h = _mm256_slli_epi16(_mm256_cvtepu8_epi16(b), 8);
    else /* E4M3, value / 256 */
        h = _mm256_and_si256(_mm256_slli_epi16(_mm256_cvtepi8_epi16(b), 7),
                             _mm256_set1_epi16((short)0xbf80));
    v[0] = _mm256_cvtph_ps(_mm256_castsi256_si128(h));
    v[1] = _mm256_cvtph_ps(_mm256_extracti128_si256(h, 1));
}

/* v of the last, partial step: dimensions j..d-1 of row, zero in lanes >= d - j */
static inline __attribute__((always_inline)) __m256 sq_v8_tail(vqs_sq_type t, const uint8_t *row,
                                                               size_t j, size_t d, __m256i lanes,
                                                               const uint8_t *end)
{
    const uint8_t *p = row + sq_byte_off(t, j);
    size_t sb = sq_step_bytes(t);
    __m256 v;
    if (p + sb <= end) {
        v = sq_v8(t, p);
    } else {
        uint8_t tmp[16] = {0};
        memcpy(tmp, p, sq_byte_off(t, d + (t == VQS_SQ_U4)) - sq_byte_off(t, j));
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
static inline __attribute__((always_inline)) void sq_scale(vqs_sq_type t, int l2, __m256 *vq,
                                                           __m256 *vw)
{
    if (t == VQS_SQ_E4M3) {
        if (l2)
            *vw = _mm256_mul_ps(*vw, _mm256_set1_ps(256.0f));
        else
            *vq = _mm256_mul_ps(*vq, _mm256_set1_ps(256.0f));
    }
}

/* nr (4 or 1) rows r[] into s[] */
static inline __attribute__((always_inline)) void sq_rows(vqs_sq_type t, int l2, const float *q,
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
static inline __attribute__((always_inline)) void sq_scan_t(vqs_sq_type t, int l2, const float *q,
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
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(s[0]), _mm256_extractf128_ps(s[0], 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_movehdup_ps(h));
        out[i] = _mm_cvtss_f32(h) + (l2 ? 0.0f : bias);
    }
}

#define SQ_TYPES(X) X(VQS_SQ_U8) X(VQS_SQ_S8) X(VQS_SQ_U4) X(VQS_SQ_F16) X(VQS_SQ_BF16) \
    X(VQS_SQ_E4M3) X(VQS_SQ_E5M2)

static void sq_l2_avx2(vqs_sq_type t, const float *q, const float *w, size_t d,
                       const uint8_t *codes, size_t stride, size_t n, float *out)
{
    switch (t) {
#define X(T)                                                                                   \
    case T:                                                                                    \
        sq_scan_t(T, 1, q, w, 0.0f, d, codes, stride, n, out);                                 \
        return;
        SQ_TYPES(X)
#undef X
    }
    vqs_ref_sq_l2(t, q, w, d, codes, stride, n, out);
}

static void sq_ip_avx2(vqs_sq_type t, const float *q, float bias, size_t d, const uint8_t *codes,
                       size_t stride, size_t n, float *out)
{
    switch (t) {
#define X(T)                                                                                   \
    case T:                                                                                    \
        sq_scan_t(T, 0, q, NULL, bias, d, codes, stride, n, out);                              \
        return;
        SQ_TYPES(X)
#undef X
    }
    vqs_ref_sq_ip(t, q, bias, d, codes, stride, n, out);
}
#undef SQ_TYPES

/* ==== PQ 4-bit fast scan ================================================= */

/* ==== binary ============================================================= */

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

const vqs_kernels vqs_kernels_avx2 = {
    .level = VQS_SIMD_AVX2,
    .name = "avx2",
    .lut8 = lut8_avx2,
    .lut4 = lut4_avx2,
    .sq_l2 = sq_l2_avx2,
    .sq_ip = sq_ip_avx2,
    .pq4fs_scan = vqs_ref_pq4fs_scan,
    .hamming = vqs_ref_hamming,
    .bin_est = vqs_ref_bin_est,
    .select_lt = select_lt_avx2,
    .select_le_u16 = select_le_u16_avx2,
};
