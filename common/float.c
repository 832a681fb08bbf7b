/*
 * float.c: the float formats of vqs_float.h: IEEE binary16 (moved from
 * vqs_common.c), bfloat16 and fp8 E4M3 / E5M2 (moved from
 * codebooks/scalar.c), in one place for the codecs, the kernels' reference
 * and the vector file reader.
 *
 * Design decisions:
 * - Conversions are bit arithmetic on the float32 pattern with round to
 *   nearest, ties to even everywhere; the subnormal range is handled by an
 *   exact power-of-two scaling into [0, 2^mbits] and an explicit tie rule,
 *   so the result never depends on the FPU rounding mode. Rejected: frexp +
 *   nearbyint per value (follows the FPU rounding mode, slower) and 64K
 *   lookup tables.
 * - fp8 with sat: +-Inf map to +-max as well (as CUDA's satfinite): the
 *   result is finite unless the input is NaN. Without sat, E4M3 overflow and
 *   Inf give NaN (E4M3FN has no Inf), E5M2 overflow and Inf give +-Inf. NaN
 *   gives NaN in both modes (E4M3: S.1111.111, E5M2: quiet S.11111.10).
 */
#include "vqs_float.h"

#include <math.h>

#include "vqs_common.h"

/* ---- binary16 --------------------------------------------------------- */

float vqs_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) /* Inf / NaN */
        return vqs_bits_f32(sign | 0x7f800000u | (man << 13) | (man ? 0x400000u : 0));
    if (exp == 0) {
        /* zero or subnormal: man * 2^-24, exact in float */
        float v = (float)man * 0x1p-24f;
        return sign ? -v : v;
    }
    return vqs_bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t vqs_f32_to_f16(float f)
{
    uint32_t u = vqs_f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a >= 0x7f800000u) /* Inf or NaN */
        return (uint16_t)(sign | 0x7c00 | (a > 0x7f800000u ? 0x200 | ((a >> 13) & 0x3ff) : 0));
    if (a >= 0x477ff000u) /* rounds to >= 65520: overflow to Inf */
        return sign | 0x7c00;
    if (a < 0x38800000u) {
        /* result is subnormal or zero: scale so that the half ulp (2^-24)
         * is 1.0 and let the float unit round to nearest even. */
        float v = vqs_bits_f32(a) * 0x1p24f;
        uint32_t m = (uint32_t)v;        /* truncated */
        float rem = v - (float)m;
        if (rem > 0.5f || (rem == 0.5f && (m & 1)))
            m++;
        return (uint16_t)(sign | m); /* m == 0x400 becomes the smallest normal */
    }
    /* normal: rebias exponent, round mantissa from 23 to 10 bits (RNE) */
    uint32_t r = a - 0x38000000u; /* exponent bias 127 -> 15, shifted */
    uint32_t lsb = (r >> 13) & 1;
    r += 0xfff + lsb;
    return (uint16_t)(sign | (r >> 13));
}

/* ---- bfloat16 and fp8 -------------------------------------------------- */

uint16_t vqs_f32_to_bf16(float f)
{
    uint32_t u = vqs_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep sign and top payload, set quiet */
        return (uint16_t)((u >> 16) | 0x0040);
    u += 0x7fffu + ((u >> 16) & 1); /* RNE; a carry into the exponent is right, up to Inf */
    return (uint16_t)(u >> 16);
}

float vqs_bf16_to_f32(uint16_t h)
{
    if ((h & 0x7fff) > 0x7f80)
        h |= 0x0040;
    return vqs_bits_f32((uint32_t)h << 16);
}

/* float -> 1 sign + E exponent + M mantissa bits with the given bias.
 * maxcode: largest finite magnitude code; ovf: code for overflow without
 * sat; nan: NaN code (without sign). */
static uint8_t f32_to_fp8(float f, int sat, int M, int bias, uint32_t maxcode, uint8_t ovf,
                          uint8_t nan)
{
    uint32_t u = vqs_f32_bits(f);
    uint8_t sign = (uint8_t)((u >> 24) & 0x80);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u)
        return sign | nan;
    if (a == 0x7f800000u)
        return sign | (sat ? (uint8_t)maxcode : ovf);
    uint32_t code;
    if (a < (uint32_t)(127 + 1 - bias) << 23) {
        /* below the smallest normal 2^(1-bias): the step is 2^(1-bias-M);
         * scale it to 1 (exact: a power of two, result < 2^M + 1) */
        float v = vqs_bits_f32(a) * ldexpf(1.0f, bias - 1 + M);
        uint32_t m = (uint32_t)v;
        float rem = v - (float)m;
        if (rem > 0.5f || (rem == 0.5f && (m & 1)))
            m++;
        code = m; /* m == 2^M is exactly the smallest normal's code */
    } else {
        int sh = 23 - M;
        uint32_t r = a + ((1u << (sh - 1)) - 1) + ((a >> sh) & 1);
        code = (r >> sh) - ((uint32_t)(127 - bias) << M);
    }
    if (code > maxcode)
        return sign | (sat ? (uint8_t)maxcode : ovf);
    return sign | (uint8_t)code;
}

uint8_t vqs_f32_to_e4m3(float f, int sat) { return f32_to_fp8(f, sat, 3, 7, 0x7e, 0x7f, 0x7f); }
uint8_t vqs_f32_to_e5m2(float f, int sat) { return f32_to_fp8(f, sat, 2, 15, 0x7b, 0x7c, 0x7e); }

float vqs_e4m3_to_f32(uint8_t v)
{
    uint32_t s = (uint32_t)(v & 0x80) << 24, e = (v >> 3) & 15, m = v & 7;
    if (e == 15 && m == 7)
        return vqs_bits_f32(s | 0x7fc00000u);
    if (e == 0) {
        float r = (float)m * 0x1p-9f;
        return s ? -r : r;
    }
    return vqs_bits_f32(s | (e + 120) << 23 | m << 20);
}

float vqs_e5m2_to_f32(uint8_t v)
{
    uint32_t s = (uint32_t)(v & 0x80) << 24, e = (v >> 2) & 31, m = v & 3;
    if (e == 31)
        return vqs_bits_f32(s | (m ? 0x7fc00000u : 0x7f800000u));
    if (e == 0) {
        float r = (float)m * 0x1p-16f;
        return s ? -r : r;
    }
    return vqs_bits_f32(s | (e + 112) << 23 | m << 21);
}
