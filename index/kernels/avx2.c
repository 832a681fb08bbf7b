/*
 * avx2.c: the AVX2 scan kernels (vqs_kernels.h). Compiled with this level's
 * -m flags only (CMakeLists.txt); reached only through the dispatch table
 * after a run-time CPU check. Anything not accelerated here falls back to
 * the reference in ref.c.
 */
#include "kernels_internal.h"

#include <float.h>
#include <immintrin.h>
#include <string.h>

/* ==== look-up tables ===================================================== */

/* ==== scalar codes ======================================================= */

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

/* acc_lo/acc_hi of lookups for vectors 0..15 (a) and 16..31 (b) -> out[0..31] */
static inline void fs_finish_avx2(__m256i a, __m256i ah, __m256i b, __m256i bh, uint16_t *out)
{
    __m256i ae = _mm256_sub_epi16(a, _mm256_slli_epi16(ah, 8));
    __m256i be = _mm256_sub_epi16(b, _mm256_slli_epi16(bh, 8));
    /* lane sums: lane 0 = vectors 0..15 (a), lane 1 = vectors 16..31 (b) */
    __m256i e = _mm256_add_epi16(_mm256_permute2x128_si256(ae, be, 0x20),
                                 _mm256_permute2x128_si256(ae, be, 0x31));
    __m256i o = _mm256_add_epi16(_mm256_permute2x128_si256(ah, bh, 0x20),
                                 _mm256_permute2x128_si256(ah, bh, 0x31));
    __m256i v0 = _mm256_unpacklo_epi16(e, o); /* 0..7 | 16..23 */
    __m256i v1 = _mm256_unpackhi_epi16(e, o); /* 8..15 | 24..31 */
    _mm256_storeu_si256((__m256i *)out, _mm256_permute2x128_si256(v0, v1, 0x20));
    _mm256_storeu_si256((__m256i *)(out + 16), _mm256_permute2x128_si256(v0, v1, 0x31));
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
        fs_finish_avx2(a, ah, c, ch, out + 32 * b);
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

const vqs_kernels vqs_kernels_avx2 = {
    .level = VQS_SIMD_AVX2,
    .name = "avx2",
    .lut8 = vqs_ref_lut8,
    .lut4 = vqs_ref_lut4,
    .sq_l2 = vqs_ref_sq_l2,
    .sq_ip = vqs_ref_sq_ip,
    .pq4fs_scan = pq4fs_scan_avx2,
    .hamming = vqs_avx2_hamming,
    .bin_est = vqs_avx2_bin_est,
    .select_lt = vqs_ref_select_lt,
    .select_le_u16 = vqs_ref_select_le_u16,
};
