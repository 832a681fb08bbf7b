/*
 * wq_mx.c: OCP Microscaling formats (MX v1.0: MXFP8 E4M3 / E5M2, MXFP6
 * E2M3 / E3M2, MXFP4, MXINT8), NVFP4, and the element codecs of vqs_wq.h
 * (E2M1, E2M3, E3M2, E8M0).
 *
 * MX (spec §6.3): blocks of 32 along each row (a row's last block may be
 * short and has its own scale). A block's shared scale is X = 2^s with
 * s = floor(log2(max |V_i|)) - emax_elem, emax_elem the exponent of the
 * element type's largest normal (E4M3 8, E5M2 15, E2M3 2, E3M2 4, E2M1 2,
 * INT8 0), clamped to E8M0's range [-127, 127] and stored as the byte
 * s + 127. Elements are P_i = quantize(V_i / X), round to nearest, ties to
 * even, saturating to the type's largest finite value (§5.3: MX conversions
 * clamp; fp8 elements too: no Inf or NaN comes out of the encoder).
 * MXINT8's element is a two's complement byte c with value c * 2^-6;
 * encoding clamps to [-127, 127] (the reference implementation,
 * microsoft/microxcaling, clamps symmetrically: -128 is never written;
 * decoding accepts it as -2).
 *
 * Parts of an MX tensor (rows x cols, nb = ceil(cols / 32) blocks a row):
 *   "codes"  U8 [rows, bytes_per_row], row-major:
 *            MXFP8 / MXINT8: one byte per element, bytes_per_row = cols;
 *            MXFP6: 4 elements in 3 bytes, element 4g + j of a row at bits
 *              6j .. 6j + 5 of the little-endian 24-bit group g (bytes 3g,
 *              3g + 1, 3g + 2); bytes_per_row = ceil(cols / 4) * 3, the
 *              tail group padded with zero bits;
 *            MXFP4: 2 elements a byte, element 2i in the low nibble of byte
 *              i and 2i + 1 in the high one (PyTorch's float4_e2m1fn_x2);
 *              bytes_per_row = ceil(cols / 2), a missing last one zero.
 *            fp element codes are sign | exponent | mantissa, the sign the
 *            top bit (bit 3 of fp4, bit 5 of fp6, bit 7 of fp8).
 *   "scales" E8M0 [rows, nb]: block b of row r scales elements 32b ..
 *            32b + 31 of row r.
 * Decoding: w = element value * 2^(v - 127); v = 0xFF (E8M0 NaN) decodes
 * the whole block as NaN, as the spec says; fp8 element NaN codes (E4M3
 * S.1111.111, E5M2 S.11111.xx) decode to NaN / Inf.
 *
 * NVFP4 (NVIDIA's two-level recipe, as TensorRT Model Optimizer and
 * Transformer Engine compute it): one fp32 tensor scale
 * s_t = amax(tensor) / (6 * 448); per block of 16 along a row an E4M3 scale
 * s_b = e4m3(amax(block) / (6 * s_t)) (RNE, saturating at 448); elements
 * E2M1 codes of x / d with d = float(s_b) * s_t (one float product, the
 * same in encode and decode). Decoding: w = e2m1 value * d. Parts:
 *   "codes"        U8 [rows, ceil(cols / 2)], packed as MXFP4;
 *   "scales"       E4M3 [rows, ceil(cols / 16)];
 *   "tensor_scale" F32 [1].
 * An all-zero tensor (s_t = 0) and a block whose scale rounds to zero
 * (d = 0) get zero codes and decode to zeros.
 *
 * Design decisions:
 * - An all-zero MX block gets the smallest scale byte 0x00 (2^-127) and
 *   +0 / -0 element codes (the sign of a zero input is kept). The spec
 *   leaves its scale open (log2(0)); microxcaling gets 0x00 too for every
 *   type but INT8 (0x01: it adds 2^-126 before the log). Any scale decodes
 *   zeros to zeros.
 * - Element rounding is ties to even, as the spec's conversion rules say
 *   and the brief asks. microxcaling's default rounding ("nearest") rounds
 *   ties away from zero; the two differ only for values exactly halfway.
 * - All quantization is integer arithmetic on the float32 bits
 *   (kernels/wq_mx_kernels.h, wq_mx_quant): exact and independent of the FPU
 *   rounding mode and of flush-to-zero, with V / X folded into the shift.
 *   Rejected: V * 2^-s in float then vqs_f32_to_e4m3 etc. (same results in
 *   the default FP environment, which the tests check, but an fp32
 *   subnormal input or quotient would be flushed under DAZ/FTZ). NVFP4's
 *   x / d is a float division (d is not a power of two); IEEE division is
 *   exactly rounded, so it is deterministic in the default environment.
 * - Decoding multiplies in float: exact in the default FP environment (an
 *   element times 2^(v - 127) keeps its few bits even as an fp32
 *   subnormal, down to 2^-143), flushed to zero under FTZ.
 * - NVFP4 computes s_b from amax / (6 * s_t) as the brief and ModelOpt
 *   write it; torchao divides twice ((amax / 6) / s_t), which can differ in
 *   the last bit of the quotient and so, rarely, by one E4M3 step at a tie.
 *   A tensor whose amax / 2688 underflows to 0 (|w| < 2^-138) encodes as
 *   zeros.
 * - The element codecs of vqs_wq.h saturate +-Inf (and, though finite
 *   inputs are the contract, NaN) to +-max: these types have no Inf or NaN.
 * - The MX and NVFP4 encoders are row kernels per SIMD level
 *   (kernels/wq_mx_*.c, bit-identical); decode is plain C: a table look-up
 *   and a multiply.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/wq_mx_kernels.h"
#include "vqs_float.h"
#include "wq_internal.h"

#define NV_BLOCK WQ_NV_BLOCK

/* ---- element codecs ------------------------------------------------------ */

/* 2^e for e in the float32 normal range. */
static float pow2f(int e) { return vqs_bits_f32((uint32_t)(e + 127) << 23); }

/* Value of a minifloat magnitude code (no sign) with bias b, M mantissa
 * bits: E = 0: m * 2^(1 - b - M), else (2^M + m) * 2^(E - b - M). */
static float minifloat_value(uint32_t code, int b, int M)
{
    uint32_t E = code >> M, m = code & ((1u << M) - 1);
    return E ? (float)((1u << M) + m) * pow2f((int)E - b - M) : (float)m * pow2f(1 - b - M);
}

static float minifloat_decode(uint8_t c, int signbit, int b, int M)
{
    float v = minifloat_value(c & ((1u << signbit) - 1), b, M);
    return (c >> signbit) & 1 ? -v : v;
}

uint8_t vqs_f32_to_e2m1(float f)
{
    return (uint8_t)wq_mx_quant(vqs_f32_bits(f), 0, &wq_mx_elems[WQ_MX_E2M1]);
}
float vqs_e2m1_to_f32(uint8_t c) { return minifloat_decode(c & 0x0f, 3, 1, 1); }

uint8_t vqs_f32_to_e2m3(float f)
{
    return (uint8_t)wq_mx_quant(vqs_f32_bits(f), 0, &wq_mx_elems[WQ_MX_E2M3]);
}
float vqs_e2m3_to_f32(uint8_t c) { return minifloat_decode(c & 0x3f, 5, 1, 3); }

uint8_t vqs_f32_to_e3m2(float f)
{
    return (uint8_t)wq_mx_quant(vqs_f32_bits(f), 0, &wq_mx_elems[WQ_MX_E3M2]);
}
float vqs_e3m2_to_f32(uint8_t c) { return minifloat_decode(c & 0x3f, 5, 3, 2); }

float vqs_e8m0_to_f32(uint8_t v)
{
    if (v == 0xff)
        return NAN;
    return vqs_bits_f32(v ? (uint32_t)v << 23 : 0x00400000u); /* v = 0: 2^-127, subnormal */
}

/* ---- formats -------------------------------------------------------------- */

static const wq_mx_elem *mx_elem(vqs_wq_kind k)
{
    switch (k) {
    case VQS_WQ_MXFP8_E4M3: return &wq_mx_elems[WQ_MX_E4M3];
    case VQS_WQ_MXFP8_E5M2: return &wq_mx_elems[WQ_MX_E5M2];
    case VQS_WQ_MXFP6_E2M3: return &wq_mx_elems[WQ_MX_E2M3];
    case VQS_WQ_MXFP6_E3M2: return &wq_mx_elems[WQ_MX_E3M2];
    case VQS_WQ_MXFP4: return &wq_mx_elems[WQ_MX_E2M1];
    case VQS_WQ_MXINT8: return &wq_mx_elems[WQ_MX_INT8];
    default: return NULL;
    }
}

/* Rows per task: about 64K values. */
static size_t row_grain(size_t cols)
{
    return cols < ((size_t)1 << 16) ? ((size_t)1 << 16) / cols : 1;
}

typedef struct mx_ctx {
    const wq_mx_elem *e;
    const wq_mx_kernels *k;
    const float *w;
    float *out;
    size_t cols, rb, nb;
    uint8_t *codes, *scales;
    const uint8_t *ccodes, *cscales;
    float lut[256];
    /* NVFP4 */
    float st;
} mx_ctx;

static int mx_encode_rows(void *c, size_t r0, size_t r1)
{
    mx_ctx *x = c;
    for (size_t r = r0; r < r1; r++)
        x->k->encode_row(x->e, x->w + r * x->cols, x->cols, x->codes + r * x->rb,
                         x->scales + r * x->nb);
    return 0;
}

static int mx_decode_rows(void *c, size_t r0, size_t r1)
{
    const mx_ctx *x = c;
    const int bits = x->e->bits;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *cr = x->ccodes + r * x->rb, *sr = x->cscales + r * x->nb;
        float *o = x->out + r * x->cols;
        for (size_t j0 = 0, b = 0; j0 < x->cols; j0 += WQ_MX_BLOCK, b++) {
            size_t len = x->cols - j0 < WQ_MX_BLOCK ? x->cols - j0 : WQ_MX_BLOCK;
            float sc = vqs_e8m0_to_f32(sr[b]);
            float *ob = o + j0;
            if (bits == 8) {
                const uint8_t *cb = cr + j0;
                for (size_t i = 0; i < len; i++)
                    ob[i] = x->lut[cb[i]] * sc;
            } else if (bits == 6) {
                const uint8_t *cb = cr + j0 / 4 * 3;
                for (size_t i = 0; i < len; i++) {
                    const uint8_t *g = cb + i / 4 * 3;
                    uint32_t v = (uint32_t)g[0] | (uint32_t)g[1] << 8 | (uint32_t)g[2] << 16;
                    ob[i] = x->lut[(v >> (6 * (i % 4))) & 63] * sc;
                }
            } else {
                const uint8_t *cb = cr + j0 / 2;
                for (size_t i = 0; i < len; i++)
                    ob[i] = x->lut[(cb[i / 2] >> (4 * (i % 2))) & 15] * sc;
            }
        }
    }
    return 0;
}

static void element_lut(wq_mx_type t, float *lut)
{
    for (int c = 0; c < 256; c++)
        switch (t) {
        case WQ_MX_E4M3: lut[c] = vqs_e4m3_to_f32((uint8_t)c); break;
        case WQ_MX_E5M2: lut[c] = vqs_e5m2_to_f32((uint8_t)c); break;
        case WQ_MX_E2M3: lut[c] = vqs_e2m3_to_f32((uint8_t)c); break;
        case WQ_MX_E3M2: lut[c] = vqs_e3m2_to_f32((uint8_t)c); break;
        case WQ_MX_E2M1: lut[c] = vqs_e2m1_to_f32((uint8_t)c); break;
        default: lut[c] = (float)(int8_t)c * 0x1p-6f; break;
        }
}

/* ---- NVFP4 ---------------------------------------------------------------- */

static int nv_encode_rows(void *c, size_t r0, size_t r1)
{
    mx_ctx *x = c;
    for (size_t r = r0; r < r1; r++)
        x->k->nv_encode_row(x->w + r * x->cols, x->cols, x->st, x->codes + r * x->rb,
                            x->scales + r * x->nb);
    return 0;
}

static int nv_decode_rows(void *c, size_t r0, size_t r1)
{
    const mx_ctx *x = c;
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *cr = x->ccodes + r * x->rb, *sr = x->cscales + r * x->nb;
        float *o = x->out + r * x->cols;
        for (size_t j0 = 0, b = 0; j0 < x->cols; j0 += NV_BLOCK, b++) {
            size_t len = x->cols - j0 < NV_BLOCK ? x->cols - j0 : NV_BLOCK;
            float d = vqs_e4m3_to_f32(sr[b]) * x->st;
            for (size_t i = 0; i < len; i++)
                o[j0 + i] = x->lut[(cr[(j0 + i) / 2] >> (4 * ((j0 + i) % 2))) & 15] * d;
        }
    }
    return 0;
}

/* ---- entry points ----------------------------------------------------------- */

int wq_mx_encode(const vqs_wq_spec *s, const float *w, size_t rows, size_t cols, int nthreads,
                 int verbose, vqs_wq_tensor *out)
{
    (void)verbose;
    mx_ctx x;
    memset(&x, 0, sizeof x);
    x.w = w;
    x.cols = cols;
    vqs_wq_part *pc, *ps;
    int rc;
    if (s->kind == VQS_WQ_NVFP4) {
        x.k = wq_mx_kernels_active();
        x.st = vqs_bits_f32(x.k->amax_bits(w, rows * cols)) / (6.0f * 448.0f);
        x.rb = (cols + 1) / 2;
        x.nb = wq_nblocks(cols, NV_BLOCK);
        vqs_wq_part *pt;
        if ((rc = vqs_wq_part_add(out, "codes", VQS_WQT_U8, 2, (uint64_t[]){rows, x.rb}, &pc)) ||
            (rc = vqs_wq_part_add(out, "scales", VQS_WQT_E4M3, 2, (uint64_t[]){rows, x.nb}, &ps)) ||
            (rc = vqs_wq_part_add(out, "tensor_scale", VQS_WQT_F32, 1, (uint64_t[]){1}, &pt)))
            return rc;
        memcpy(pt->data, &x.st, sizeof x.st);
        x.codes = pc->data;
        x.scales = ps->data;
        return wq_for_rows(nthreads, rows, row_grain(cols), nv_encode_rows, &x);
    }
    x.e = mx_elem(s->kind);
    if (!x.e)
        return vqs_seterr(VQS_EINVAL, "wq_mx: kind %d is not an MX format", (int)s->kind);
    x.k = wq_mx_kernels_active();
    x.rb = wq_mx_row_bytes(x.e, cols);
    x.nb = wq_nblocks(cols, WQ_MX_BLOCK);
    if ((rc = vqs_wq_part_add(out, "codes", VQS_WQT_U8, 2, (uint64_t[]){rows, x.rb}, &pc)) ||
        (rc = vqs_wq_part_add(out, "scales", VQS_WQT_E8M0, 2, (uint64_t[]){rows, x.nb}, &ps)))
        return rc;
    x.codes = pc->data;
    x.scales = ps->data;
    return wq_for_rows(nthreads, rows, row_grain(cols), mx_encode_rows, &x);
}

int wq_mx_decode(const vqs_wq_tensor *t, float *w, int nthreads)
{
    mx_ctx x;
    memset(&x, 0, sizeof x);
    size_t rows = t->rows, cols = t->cols;
    x.cols = cols;
    x.out = w;
    const vqs_wq_part *pc, *ps, *pt;
    int rc;
    if (!rows || !cols)
        return 0;
    if (t->spec.kind == VQS_WQ_NVFP4) {
        x.rb = (cols + 1) / 2;
        x.nb = wq_nblocks(cols, NV_BLOCK);
        if ((rc = wq_need_part(t, "codes", VQS_WQT_U8, 2, rows, x.rb, &pc)) ||
            (rc = wq_need_part(t, "scales", VQS_WQT_E4M3, 2, rows, x.nb, &ps)) ||
            (rc = wq_need_part(t, "tensor_scale", VQS_WQT_F32, 1, 1, 1, &pt)))
            return rc;
        memcpy(&x.st, pt->data, sizeof x.st);
        x.ccodes = pc->data;
        x.cscales = ps->data;
        element_lut(WQ_MX_E2M1, x.lut);
        return wq_for_rows(nthreads, rows, row_grain(cols), nv_decode_rows, &x);
    }
    x.e = mx_elem(t->spec.kind);
    if (!x.e)
        return vqs_seterr(VQS_EINVAL, "wq_mx: kind %d is not an MX format", (int)t->spec.kind);
    x.rb = wq_mx_row_bytes(x.e, cols);
    x.nb = wq_nblocks(cols, WQ_MX_BLOCK);
    if ((rc = wq_need_part(t, "codes", VQS_WQT_U8, 2, rows, x.rb, &pc)) ||
        (rc = wq_need_part(t, "scales", VQS_WQT_E8M0, 2, rows, x.nb, &ps)))
        return rc;
    x.ccodes = pc->data;
    x.cscales = ps->data;
    element_lut(x.e->type, x.lut);
    return wq_for_rows(nthreads, rows, row_grain(cols), mx_decode_rows, &x);
}
