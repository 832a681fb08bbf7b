/*
 * wq_mx_avx2.c: the AVX2 MX row encoder (wq_mx_kernels.h). Compiled with
 * this level's -m flags only; reached only through the table of the run-time
 * SIMD level. Bit-identical to wq_mx_ref.c: the same integer arithmetic as
 * wq_mx_quant, eight lanes at a time.
 *
 * Design decisions:
 * - A full block of 32 is four registers: the block's largest |x| is an
 *   unsigned max over the bit patterns (the same order as the floats for
 *   finite values), the scale exponent comes from it in scalar code, then
 *   every lane is quantized and the 32 codes packed to bytes in order
 *   (packus + a dword permute) and from there to nibbles or 6-bit groups.
 * - The lanes take an fp32 subnormal's exponent as -126 (no count of
 *   leading zeros per lane). That gives wq_mx_quant's result whenever the
 *   block's scale exponent s >= bias - 127: such inputs are then below the
 *   element's subnormal range. Blocks with a smaller s (largest |x| below
 *   about 2^-100) and a row's short last block go to wq_mx_block_ref.
 * - Each element type is its own instantiation of one always-inline
 *   function with constant parameters, so shifts are immediates.
 */
#if defined(__x86_64__) && defined(__GNUC__)
#include "wq_mx_kernels.h"

#include <immintrin.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

/* Codes (one per 32-bit lane) of eight values u, MX scale exponent s. */
AI __m256i quant8(__m256i u, int s, const int bias, const int M, const int isint,
                  const uint32_t maxcode, const int signbit)
{
    const __m256i one = _mm256_set1_epi32(1);
    __m256i a = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
    __m256i efx = _mm256_max_epi32(_mm256_srli_epi32(a, 23), one);
    __m256i sig = _mm256_sub_epi32(a, _mm256_slli_epi32(_mm256_sub_epi32(efx, one), 23));
    __m256i E = one;
    if (!isint)
        E = _mm256_max_epi32(_mm256_add_epi32(efx, _mm256_set1_epi32(bias - 127 - s)), one);
    __m256i k = _mm256_sub_epi32(_mm256_add_epi32(E, _mm256_set1_epi32(s - bias - M + 150)), efx);
    k = _mm256_min_epi32(k, _mm256_set1_epi32(26));
    __m256i half = _mm256_sub_epi32(_mm256_sllv_epi32(one, _mm256_sub_epi32(k, one)), one);
    __m256i odd = _mm256_and_si256(_mm256_srlv_epi32(sig, k), one);
    __m256i n = _mm256_srlv_epi32(_mm256_add_epi32(_mm256_add_epi32(sig, half), odd), k);
    __m256i code = isint ? n : _mm256_add_epi32(_mm256_slli_epi32(_mm256_sub_epi32(E, one), M), n);
    code = _mm256_min_epu32(code, _mm256_set1_epi32((int)maxcode));
    if (isint) {
        __m256i neg = _mm256_srai_epi32(u, 31);
        code = _mm256_and_si256(_mm256_sub_epi32(_mm256_xor_si256(code, neg), neg),
                                _mm256_set1_epi32(0xff));
    } else {
        code = _mm256_or_si256(code, _mm256_and_si256(_mm256_srli_epi32(u, 31 - signbit),
                                                      _mm256_set1_epi32(1 << signbit)));
    }
    return code;
}

AI void encode_row_t(const wq_mx_elem *e, const float *x, size_t n, uint8_t *codes,
                     uint8_t *scales, const int bits, const int bias, const int M,
                     const int isint, const uint32_t maxcode, const int signbit)
{
    const size_t bb = (size_t)bits * WQ_MX_BLOCK / 8;
    const __m256i absm = _mm256_set1_epi32(0x7fffffff);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    size_t j = 0, b = 0;
    for (; j + WQ_MX_BLOCK <= n; j += WQ_MX_BLOCK, b++) {
        const float *xb = x + j;
        uint8_t *cb = codes + b * bb;
        __m256i u0 = _mm256_loadu_si256((const __m256i *)xb);
        __m256i u1 = _mm256_loadu_si256((const __m256i *)(xb + 8));
        __m256i u2 = _mm256_loadu_si256((const __m256i *)(xb + 16));
        __m256i u3 = _mm256_loadu_si256((const __m256i *)(xb + 24));
        __m256i m = _mm256_max_epu32(_mm256_max_epu32(_mm256_and_si256(u0, absm),
                                                      _mm256_and_si256(u1, absm)),
                                     _mm256_max_epu32(_mm256_and_si256(u2, absm),
                                                      _mm256_and_si256(u3, absm)));
        __m128i h = _mm_max_epu32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
        h = _mm_max_epu32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
        h = _mm_max_epu32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
        int s = wq_mx_scale_exp((uint32_t)_mm_cvtsi128_si32(h), e);
        if (s < bias - 127) {
            wq_mx_block_ref(e, xb, WQ_MX_BLOCK, cb, scales + b);
            continue;
        }
        scales[b] = (uint8_t)(s + 127);
        __m256i c0 = quant8(u0, s, bias, M, isint, maxcode, signbit);
        __m256i c1 = quant8(u1, s, bias, M, isint, maxcode, signbit);
        __m256i c2 = quant8(u2, s, bias, M, isint, maxcode, signbit);
        __m256i c3 = quant8(u3, s, bias, M, isint, maxcode, signbit);
        /* 32 codes -> 32 bytes in element order */
        __m256i v = _mm256_packus_epi16(_mm256_packus_epi32(c0, c1), _mm256_packus_epi32(c2, c3));
        v = _mm256_permutevar8x32_epi32(v, perm);
        if (bits == 8) {
            _mm256_storeu_si256((__m256i *)cb, v);
        } else if (bits == 6) {
            /* dword = 4 codes c0..c3 in its bytes -> c0 | c1 << 6 | c2 << 12 | c3 << 18 */
            __m256i g0 = _mm256_and_si256(v, _mm256_set1_epi32(0x3f));
            __m256i g1 = _mm256_and_si256(_mm256_srli_epi32(v, 2), _mm256_set1_epi32(0xfc0));
            __m256i g2 = _mm256_and_si256(_mm256_srli_epi32(v, 4), _mm256_set1_epi32(0x3f000));
            __m256i g3 = _mm256_and_si256(_mm256_srli_epi32(v, 6), _mm256_set1_epi32(0xfc0000));
            __m256i w = _mm256_or_si256(_mm256_or_si256(g0, g1), _mm256_or_si256(g2, g3));
            const __m256i shuf = _mm256_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1,
                                                  -1, -1, 0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14,
                                                  -1, -1, -1, -1);
            w = _mm256_shuffle_epi8(w, shuf);
            w = _mm256_permutevar8x32_epi32(w, _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 3, 7));
            _mm_storeu_si128((__m128i *)cb, _mm256_castsi256_si128(w));
            _mm_storel_epi64((__m128i *)(cb + 16), _mm256_extracti128_si256(w, 1));
        } else {
            /* u16 = lo | hi << 8 (both < 16) -> lo | hi << 4 */
            __m256i nib = _mm256_and_si256(_mm256_or_si256(v, _mm256_srli_epi16(v, 4)),
                                           _mm256_set1_epi16(0xff));
            nib = _mm256_permute4x64_epi64(_mm256_packus_epi16(nib, nib), _MM_SHUFFLE(3, 1, 2, 0));
            _mm_storeu_si128((__m128i *)cb, _mm256_castsi256_si128(nib));
        }
    }
    if (j < n)
        wq_mx_block_ref(e, x + j, n - j, codes + b * bb, scales + b);
}

static void encode_row_avx2(const wq_mx_elem *e, const float *x, size_t n, uint8_t *codes,
                            uint8_t *scales)
{
    switch (e->type) {
    case WQ_MX_E4M3: encode_row_t(e, x, n, codes, scales, 8, 7, 3, 0, 0x7e, 7); break;
    case WQ_MX_E5M2: encode_row_t(e, x, n, codes, scales, 8, 15, 2, 0, 0x7b, 7); break;
    case WQ_MX_E2M3: encode_row_t(e, x, n, codes, scales, 6, 1, 3, 0, 0x1f, 5); break;
    case WQ_MX_E3M2: encode_row_t(e, x, n, codes, scales, 6, 3, 2, 0, 0x1f, 5); break;
    case WQ_MX_E2M1: encode_row_t(e, x, n, codes, scales, 4, 1, 1, 0, 0x07, 3); break;
    case WQ_MX_INT8: encode_row_t(e, x, n, codes, scales, 8, 1, 6, 1, 127, 0); break;
    default: wq_mx_kernels_ref.encode_row(e, x, n, codes, scales); break;
    }
}

/* NVFP4: blocks of 16 (two registers); the block scale in scalar code
 * (wq_nv_scale), x / d by the vector unit (IEEE division: the reference's
 * quotient), then E2M1 codes with s = 0. */
static void nv_encode_row_avx2(const float *x, size_t n, float st, uint8_t *codes, uint8_t *scales)
{
    const __m256i absm = _mm256_set1_epi32(0x7fffffff);
    size_t j = 0, b = 0;
    for (; j + WQ_NV_BLOCK <= n; j += WQ_NV_BLOCK, b++) {
        __m256 x0 = _mm256_loadu_ps(x + j), x1 = _mm256_loadu_ps(x + j + 8);
        __m256i m = _mm256_max_epu32(_mm256_and_si256(_mm256_castps_si256(x0), absm),
                                     _mm256_and_si256(_mm256_castps_si256(x1), absm));
        __m128i h = _mm_max_epu32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
        h = _mm_max_epu32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
        h = _mm_max_epu32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
        float d;
        scales[b] = wq_nv_scale((uint32_t)_mm_cvtsi128_si32(h), st, &d);
        uint8_t *cb = codes + j / 2;
        if (!(d > 0)) {
            memset(cb, 0, WQ_NV_BLOCK / 2);
            continue;
        }
        __m256 vd = _mm256_set1_ps(d);
        __m256i c0 = quant8(_mm256_castps_si256(_mm256_div_ps(x0, vd)), 0, 1, 1, 0, 7, 3);
        __m256i c1 = quant8(_mm256_castps_si256(_mm256_div_ps(x1, vd)), 0, 1, 1, 0, 7, 3);
        __m256i v = _mm256_packus_epi16(_mm256_packus_epi32(c0, c1), _mm256_setzero_si256());
        __m128i v16 = _mm256_castsi256_si128(
            _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
        __m128i nib = _mm_and_si128(_mm_or_si128(v16, _mm_srli_epi16(v16, 4)),
                                    _mm_set1_epi16(0xff));
        _mm_storel_epi64((__m128i *)cb, _mm_packus_epi16(nib, nib));
    }
    if (j < n)
        wq_nv_block_ref(x + j, n - j, st, codes + j / 2, scales + b);
}

static uint32_t amax_bits_avx2(const float *x, size_t n)
{
    const __m256i absm = _mm256_set1_epi32(0x7fffffff);
    __m256i m0 = _mm256_setzero_si256(), m1 = m0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i a0 = _mm256_loadu_si256((const __m256i *)(x + i));
        __m256i a1 = _mm256_loadu_si256((const __m256i *)(x + i + 8));
        m0 = _mm256_max_epu32(m0, _mm256_and_si256(a0, absm));
        m1 = _mm256_max_epu32(m1, _mm256_and_si256(a1, absm));
    }
    m0 = _mm256_max_epu32(m0, m1);
    __m128i h = _mm_max_epu32(_mm256_castsi256_si128(m0), _mm256_extracti128_si256(m0, 1));
    h = _mm_max_epu32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
    h = _mm_max_epu32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
    uint32_t m = (uint32_t)_mm_cvtsi128_si32(h), r = wq_mx_kernels_ref.amax_bits(x + i, n - i);
    return r > m ? r : m;
}

const wq_mx_kernels wq_mx_kernels_avx2 = {VQS_SIMD_AVX2, encode_row_avx2, nv_encode_row_avx2,
                                          amax_bits_avx2};
#endif
