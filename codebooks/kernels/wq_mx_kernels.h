/*
 * wq_mx_kernels.h: the OCP Microscaling (MX v1.0) row encoder behind
 * codebooks/wq_mx.c, one version per SIMD level (wq_mx_ref.c, wq_mx_avx2.c)
 * and one table (wq_mx_dispatch.c), as km_kernels.h does for k-means.
 *
 * Every element type (E2M1, E2M3, E3M2, E4M3, E5M2 and MX's INT8) is
 * quantized by one integer routine (wq_mx_quant below) parameterised by a
 * wq_mx_elem: the float32 bit pattern is rounded to the element's quantum
 * with an integer shift, round to nearest, ties to even, and saturated to
 * the largest finite code. Being integer-only it is exact whatever the FPU
 * rounding mode or flush-to-zero setting, and it divides by the MX scale
 * 2^s for free (the exponent offset s enters the shift), so V / X is never
 * computed in float (it could underflow to an fp32 subnormal). The AVX2
 * version runs the same arithmetic eight lanes at a time and is
 * bit-identical (tested on every level against wq_mx_ref.c).
 *
 * How a float x (sign, significand sig < 2^24, x = sig * 2^exb) maps to an
 * element with bias b, mantissa bits M: its biased exponent in the element
 * is E = clamp(floor(log2 |x|) - s + b, 1, ecap); the quantum there is
 * 2^(E - b - M + s), so n = RNE(sig >> k) with k = E - b - M + s - exb, and
 * the code's magnitude is ((E - 1) << M) + n (n reaching 2^(M+1) carries
 * into the exponent field, as the bit layout wants; E = 1 covers the
 * subnormals). INT8 is the same with ecap = 1, b + M = 7 (n * 2^-6) and a
 * two's complement sign.
 */
#ifndef VQS_WQ_MX_KERNELS_H
#define VQS_WQ_MX_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "vqs_common.h"
#include "vqs_float.h"

#ifdef __cplusplus
extern "C" {
#endif

#define WQ_MX_BLOCK 32
#define WQ_NV_BLOCK 16
#define WQ_MX_NOCAP 4096

/* The MX element types, in the order of wq_mx_elems[]. */
typedef enum wq_mx_type {
    WQ_MX_E4M3 = 0,
    WQ_MX_E5M2,
    WQ_MX_E2M3,
    WQ_MX_E3M2,
    WQ_MX_E2M1,
    WQ_MX_INT8,
    WQ_MX_NTYPES
} wq_mx_type;

typedef struct wq_mx_elem {
    wq_mx_type type;
    int bits;         /* 8, 6 or 4: the packing (wq_mx.c's opening comment) */
    int bias, mbits;  /* exponent bias, mantissa bits (INT8: 1 and 6) */
    int ecap;         /* largest biased exponent used (WQ_MX_NOCAP: none; INT8: 1) */
    int emax;         /* exponent of the largest normal (MX's emax_elem) */
    uint32_t maxcode; /* largest finite magnitude code */
    int signbit;      /* bit of the sign; 0: two's complement byte (INT8) */
} wq_mx_elem;

extern const wq_mx_elem wq_mx_elems[WQ_MX_NTYPES];

/* Code of x * 2^-s (x given by its bits u, finite) in element e. */
static inline uint32_t wq_mx_quant(uint32_t u, int s, const wq_mx_elem *e)
{
    uint32_t a = u & 0x7fffffffu, sig;
    int exb, ext;
    if (a >= 0x00800000u) {
        sig = (a & 0x007fffffu) | 0x00800000u;
        exb = (int)(a >> 23) - 150;
        ext = exb + 23;
    } else { /* fp32 subnormal or zero: its true exponent, not -126 */
        sig = a;
        exb = -149;
        ext = a ? 31 - __builtin_clz(a) - 149 : -149;
    }
    int E = ext - s + e->bias;
    E = E < 1 ? 1 : E > e->ecap ? e->ecap : E;
    int k = E - e->bias - e->mbits + s - exb;
    uint32_t n;
    if (k > 26)       /* sig < 2^24: below half the quantum */
        n = 0;
    else if (k > 0)
        n = (sig + (1u << (k - 1)) - 1 + ((sig >> k) & 1)) >> k;
    else              /* only past the format's range (ecap), or exact */
        n = k <= -8 ? 0xffffffffu : sig << -k;
    uint32_t code = n > e->maxcode ? e->maxcode : ((uint32_t)(E - 1) << e->mbits) + n;
    if (code > e->maxcode)
        code = e->maxcode;
    if (e->signbit)
        return code | (u >> 31) << e->signbit;
    return (u >> 31) ? (0u - code) & 0xffu : code;
}

/* The MX shared scale exponent of a block whose largest |x| has bits amax:
 * floor(log2(amax)) - emax, clamped to E8M0's [-127, 127]; an all-zero
 * block (and one below 2^-126) gets -127. The E8M0 byte is s + 127. */
static inline int wq_mx_scale_exp(uint32_t amax, const wq_mx_elem *e)
{
    if (amax < 0x00800000u) /* floor(log2) <= -127 and emax >= 0 */
        return -127;
    int s = (int)(amax >> 23) - 127 - e->emax;
    return s < -127 ? -127 : s;
}

/* Encodes one block of len <= 32 values (scalar reference): its E8M0 scale
 * into *scale, the codes packed as e->bits says into codes (bytes: len,
 * ceil(len / 4) * 3 or ceil(len / 2); the padding of a short block's last
 * group is zero). */
static inline void wq_mx_block_ref(const wq_mx_elem *e, const float *x, size_t len,
                                   uint8_t *codes, uint8_t *scale)
{
    uint32_t amax = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t a = vqs_f32_bits(x[i]) & 0x7fffffffu;
        amax = a > amax ? a : amax;
    }
    int s = wq_mx_scale_exp(amax, e);
    *scale = (uint8_t)(s + 127);
    uint8_t c[WQ_MX_BLOCK + 3] = {0};
    for (size_t i = 0; i < len; i++)
        c[i] = (uint8_t)wq_mx_quant(vqs_f32_bits(x[i]), s, e);
    if (e->bits == 8) {
        for (size_t i = 0; i < len; i++)
            codes[i] = c[i];
    } else if (e->bits == 6) {
        for (size_t g = 0; g < (len + 3) / 4; g++) {
            uint32_t w = (uint32_t)c[4 * g] | (uint32_t)c[4 * g + 1] << 6 |
                         (uint32_t)c[4 * g + 2] << 12 | (uint32_t)c[4 * g + 3] << 18;
            codes[3 * g] = (uint8_t)w;
            codes[3 * g + 1] = (uint8_t)(w >> 8);
            codes[3 * g + 2] = (uint8_t)(w >> 16);
        }
    } else {
        for (size_t i = 0; i < (len + 1) / 2; i++)
            codes[i] = (uint8_t)(c[2 * i] | c[2 * i + 1] << 4);
    }
}

/* NVFP4's block scale for a block whose largest |x| has bits amax, and the
 * divisor d = float(s_b) * s_t of its elements (0: the block is all zero
 * codes). */
static inline uint8_t wq_nv_scale(uint32_t amax, float st, float *d)
{
    uint8_t sb = st > 0 ? vqs_f32_to_e4m3(vqs_bits_f32(amax) / (6.0f * st), 1) : 0;
    *d = vqs_e4m3_to_f32(sb) * st;
    return sb;
}

/* One NVFP4 block of len <= 16 values (scalar reference): its E4M3 scale
 * into *scale, E2M1 codes of x / d packed two a byte into ceil(len / 2)
 * bytes. */
static inline void wq_nv_block_ref(const float *x, size_t len, float st, uint8_t *codes,
                                   uint8_t *scale)
{
    uint32_t amax = 0;
    for (size_t i = 0; i < len; i++) {
        uint32_t a = vqs_f32_bits(x[i]) & 0x7fffffffu;
        amax = a > amax ? a : amax;
    }
    float d;
    *scale = wq_nv_scale(amax, st, &d);
    uint8_t q[WQ_NV_BLOCK + 1] = {0};
    if (d > 0)
        for (size_t i = 0; i < len; i++)
            q[i] = (uint8_t)wq_mx_quant(vqs_f32_bits(x[i] / d), 0, &wq_mx_elems[WQ_MX_E2M1]);
    for (size_t i = 0; i < (len + 1) / 2; i++)
        codes[i] = (uint8_t)(q[2 * i] | q[2 * i + 1] << 4);
}

/* Bytes of a row of n elements packed e->bits wide. */
static inline size_t wq_mx_row_bytes(const wq_mx_elem *e, size_t n)
{
    return e->bits == 8 ? n : e->bits == 6 ? (n + 3) / 4 * 3 : (n + 1) / 2;
}

typedef struct wq_mx_kernels {
    vqs_simd level;
    /* One row of n values: codes (wq_mx_row_bytes) and wq_nblocks(n, 32)
     * E8M0 scales, block by block as wq_mx_block_ref. */
    void (*encode_row)(const wq_mx_elem *e, const float *x, size_t n, uint8_t *codes,
                       uint8_t *scales);
    /* NVFP4, one row of n values with tensor scale st >= 0 (wq_mx.c's
     * opening comment): ceil(n / 2) code bytes, wq_nblocks(n, 16) E4M3
     * scales, block by block as wq_nv_block_ref. */
    void (*nv_encode_row)(const float *x, size_t n, float st, uint8_t *codes, uint8_t *scales);
    /* max |x_i| of n finite values, as float32 bits (0 for n = 0) */
    uint32_t (*amax_bits)(const float *x, size_t n);
} wq_mx_kernels;

extern const wq_mx_kernels wq_mx_kernels_ref;
#if defined(__x86_64__) && defined(__GNUC__)
#define VQS_WQ_MX_X86 1
extern const wq_mx_kernels wq_mx_kernels_avx2;
#endif

/* The table of a level (a level this build or CPU lacks gives the best
 * below it that exists; the caller checks the CPU), and of the run-time
 * level (vqs_simd_level), chosen once. */
const wq_mx_kernels *wq_mx_kernels_for(vqs_simd level);
const wq_mx_kernels *wq_mx_kernels_active(void);

#ifdef __cplusplus
}
#endif
#endif
