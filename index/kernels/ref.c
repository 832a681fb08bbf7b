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
 * - fp8/half/bfloat16 values come from the exact conversions of the
 *   quantizer core (vqs_codebook.h, vqs_common.h), so a SIMD kernel that
 *   converts in registers is checked against them.
 */
#include "kernels_internal.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "vqs_codebook.h"
#include "vqs_common.h"

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

float vqs_ref_sq_value(vqs_sq_type t, const uint8_t *row, size_t j)
{
    switch (t) {
    case VQS_SQ_U8:
        return (float)row[j];
    case VQS_SQ_S8:
        return (float)(int8_t)row[j];
    case VQS_SQ_U4:
        return (float)((row[j >> 1] >> (4 * (j & 1))) & 15);
    case VQS_SQ_F16:
        return vqs_f16_to_f32((uint16_t)(row[2 * j] | (unsigned)row[2 * j + 1] << 8));
    case VQS_SQ_BF16:
        return vqs_bf16_to_f32((uint16_t)(row[2 * j] | (unsigned)row[2 * j + 1] << 8));
    case VQS_SQ_E4M3:
        return vqs_e4m3_to_f32(row[j]);
    case VQS_SQ_E5M2:
        return vqs_e5m2_to_f32(row[j]);
    }
    return 0;
}

void vqs_ref_sq_l2(vqs_sq_type t, const float *q, const float *w, size_t d, const uint8_t *codes,
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

void vqs_ref_sq_ip(vqs_sq_type t, const float *q, float bias, size_t d, const uint8_t *codes,
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
/* (layout, pack/get/quantize and the reference scan: written with the SIMD
 * versions, which decide the layout) */

void vqs_ref_pq4fs_scan(const uint8_t *lut8, size_t M, const uint8_t *packed, size_t nblocks,
                        uint16_t *out)
{
    (void)lut8, (void)M, (void)packed;
    memset(out, 0, sizeof(uint16_t) * nblocks * 32);
}

size_t vqs_pq4fs_packed_size(size_t n, size_t M)
{
    return (n + 31) / 32 * 32 * ((M + 1) / 2);
}

void vqs_pq4fs_pack(const uint8_t *codes, size_t stride, size_t n, size_t M, uint8_t *packed)
{
    (void)codes, (void)stride;
    memset(packed, 0, vqs_pq4fs_packed_size(n, M));
}

void vqs_pq4fs_get(const uint8_t *packed, size_t M, size_t i, uint8_t *code)
{
    (void)packed, (void)i;
    memset(code, 0, (M + 1) / 2);
}

void vqs_pq4fs_quantize(const float *lut, size_t M, uint8_t *lut8, float *bias, float *scale,
                        float *err)
{
    (void)lut;
    memset(lut8, 0, (M + 1) / 2 * 2 * 16);
    *bias = 0;
    *scale = 1;
    *err = INFINITY;
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

const vqs_kernels vqs_kernels_ref = {
    .level = VQS_SIMD_SCALAR,
    .name = "scalar",
    .lut8 = vqs_ref_lut8,
    .lut4 = vqs_ref_lut4,
    .sq_l2 = vqs_ref_sq_l2,
    .sq_ip = vqs_ref_sq_ip,
    .pq4fs_scan = vqs_ref_pq4fs_scan,
    .hamming = vqs_ref_hamming,
    .bin_est = vqs_ref_bin_est,
    .select_lt = vqs_ref_select_lt,
    .select_le_u16 = vqs_ref_select_le_u16,
};
