/*
 * avx512.c: the AVX512 scan kernels (vqs_kernels.h). Compiled with this level's
 * -m flags only (CMakeLists.txt); reached only through the dispatch table
 * after a run-time CPU check. Anything not accelerated here falls back to
 * the reference in ref.c.
 */
#include "kernels_internal.h"

#include <float.h>
#include <immintrin.h>
#include <stdatomic.h>
#include <string.h>

/* ==== look-up tables ===================================================== */

/* ==== scalar codes ======================================================= */

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

static inline void fs_finish_avx512(__m256i a, __m256i ah, __m256i b, __m256i bh, uint16_t *out)
{
    __m256i ae = _mm256_sub_epi16(a, _mm256_slli_epi16(ah, 8));
    __m256i be = _mm256_sub_epi16(b, _mm256_slli_epi16(bh, 8));
    __m256i e = _mm256_add_epi16(_mm256_permute2x128_si256(ae, be, 0x20),
                                 _mm256_permute2x128_si256(ae, be, 0x31));
    __m256i o = _mm256_add_epi16(_mm256_permute2x128_si256(ah, bh, 0x20),
                                 _mm256_permute2x128_si256(ah, bh, 0x31));
    __m256i v0 = _mm256_unpacklo_epi16(e, o);
    __m256i v1 = _mm256_unpackhi_epi16(e, o);
    _mm256_storeu_si256((__m256i *)out, _mm256_permute2x128_si256(v0, v1, 0x20));
    _mm256_storeu_si256((__m256i *)(out + 16), _mm256_permute2x128_si256(v0, v1, 0x31));
}

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
        fs_finish_avx512(fold512(a), fold512(ah), fold512(c), fold512(ch), out + 32 * b);
    }
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

const vqs_kernels vqs_kernels_avx512 = {
    .level = VQS_SIMD_AVX512,
    .name = "avx512",
    .lut8 = vqs_ref_lut8,
    .lut4 = vqs_ref_lut4,
    .sq_l2 = vqs_ref_sq_l2,
    .sq_ip = vqs_ref_sq_ip,
    .pq4fs_scan = pq4fs_scan_avx512,
    .hamming = hamming_avx512,
    .bin_est = vqs_avx2_bin_est,
    .select_lt = vqs_ref_select_lt,
    .select_le_u16 = vqs_ref_select_le_u16,
};
