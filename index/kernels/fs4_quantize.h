/*
 * fs4_quantize.h: the 4-bit fast-scan table quantisation
 * (vqs_pq4fs_quantize; the scheme and its error bound: ref.c, "PQ 4-bit
 * fast scan") as one scalar driver over two per-table steps that each SIMD
 * level implements on one table of 16 floats:
 *   minmax: its minimum and maximum; adds T[k] * 0 for every k to *probe
 *           (NaN once an entry is NaN or infinite);
 *   quant:  q8[k] = floor(clamp((T[k] - mn) * inv + 0.5, 0, Rf)), mn the
 *           table's minimum (from minmax: kept for the first 256 tables,
 *           found again past them).
 * The driver (span, scale, bias, error bound, in double) is the same code at
 * every level, so bias and scale are identical across levels. It is an
 * always-inline template: each level passes its own static inline steps and
 * the compiler inlines them (the search quantises once per query and probed
 * list, so a call per table was most of the cost). Included by ref.c,
 * avx2.c and avx512.c only.
 */
#ifndef VQS_FS4_QUANTIZE_H
#define VQS_FS4_QUANTIZE_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef void (*vqs_fs4_minmax_fn)(const float *T, float *mn, float *mx, float *probe);
typedef void (*vqs_fs4_quant_fn)(const float *T, float mn, float inv, float Rf, uint8_t *q8);

static inline size_t fs_pairs(size_t M) { return (M + 1) / 2; }

/* The common span of the quantised tables: the largest table range, or
 * less when a limit on the float sum is given: an entry more than
 * g = limit - sum of the table minima above its table's minimum rules out
 * every code that uses it, so entries beyond g only need to saturate
 * (which keeps bias + scale * u16 a lower bound of the float sum) and the
 * 8 bits go to the part of the tables that can still matter. */
static inline double fs_span(double maxrange, double bias_d, float limit)
{
    double g = (double)limit - bias_d;
    if (!(g < maxrange))
        return maxrange; /* no limit (or NaN), or one beyond every table */
    /* g <= 0: only codes of table minima can reach the limit; resolve just
     * those (a zero span would fall back to scale 1) */
    return g > maxrange * 0x1p-20 ? g : maxrange * 0x1p-20;
}

/* Table j's share of the float-rounding margin: the largest magnitude of
 * an entry it represents unsaturated, max(|mn|, |mn + scale * R|). With
 * saturation (wide = 2) doubled: a saturated entry v above c = mn + scale * R
 * either has |v| <= 2 max(|mn|, |c|), covered by the doubled term, or
 * v - c > |v| / 2, an excess over its quantised value that exceeds the
 * rounding it can cause in a float sum of M terms (M eps |v| < |v| / 2).
 * So the margin scales with the span kept, not with the outliers. */
static inline double fs_absmax(float mn, float top, double wide)
{
    double a = fabs((double)mn), b = fabs((double)mn + top);
    return wide * (a > b ? a : b);
}

/* The common scale and the bias of both table quantisations (4-bit here,
 * 8-bit in ref.c) from the largest table range and the sum of the table
 * minima; R: the largest quantised entry. 0 when the bias is not finite
 * (the caller keeps its infinite error bound). *wide: see fs_absmax. */
static inline int fs_scale_bias(double maxrange, double bias_d, float limit, unsigned R, float *sc,
                                float *bf, double *wide)
{
    double span = fs_span(maxrange, bias_d, limit);
    *sc = (float)(span / R);
    if (!(*sc > 0) || !isfinite(*sc))
        *sc = 1; /* every table constant (or ranges too small for a float) */
    *bf = (float)bias_d;
    *wide = span < maxrange ? 2 : 1;
    return isfinite(*bf);
}

static inline __attribute__((always_inline)) void
vqs_fs4_quantize_tpl(vqs_fs4_minmax_fn minmax, vqs_fs4_quant_fn quant, const float *lut, size_t M,
                     float limit, uint8_t *lut8, float *bias, float *scale, float *err)
{
    size_t M2 = 2 * fs_pairs(M);
    if (M2)
        memset(lut8, 0, M2 * 16);
    *bias = 0;
    *scale = 1;
    *err = INFINITY;
    if (M == 0) {
        *err = 0;
        return;
    }
    unsigned R = M > 257 ? (unsigned)(65535 / M) : 255;
    double maxrange = 0, bias_d = 0, absmax = 0;
    float nanprobe = 0; /* NaN if any entry is NaN or Inf (Inf * 0) */
    float mins[256];
    for (size_t j = 0; j < M; j++) {
        float mn, mx;
        minmax(lut + j * 16, &mn, &mx, &nanprobe);
        if (j < 256)
            mins[j] = mn;
        double range = (double)mx - mn;
        maxrange = range > maxrange ? range : maxrange;
        bias_d += mn;
    }
    if (nanprobe != 0)
        return;
    float sc, bf;
    double wide;
    if (!fs_scale_bias(maxrange, bias_d, limit, R, &sc, &bf, &wide))
        return;
    float inv = 1.0f / sc, Rf = (float)R;
    for (size_t j = 0; j < M; j++) {
        float mn = mins[j < 256 ? j : 0], mx, probe = 0;
        if (j >= 256)
            minmax(lut + j * 16, &mn, &mx, &probe);
        quant(lut + j * 16, mn, inv, Rf, lut8 + j * 16);
        absmax += fs_absmax(mn, sc * Rf, wide);
    }
    /* The rounding error of an entry that is not saturated above, e =
     * (T - mn) - sc q: q rounds D / sc to nearest, D = fl(T - mn) <= sc
     * (R + 1/2), computed as fl(fl(D * fl(1 / sc)) + 1/2) (or with a fused
     * multiply-add): |q - D / sc| <= 1/2 + 3 (R + 1) FLT_EPSILON, and
     * |D - (T - mn)| <= FLT_EPSILON sc (R + 1), so |e| <= sc (1/2 + 4 (R + 1)
     * FLT_EPSILON) per table. (An entry saturated above only makes the
     * quantised sum smaller: the one-sided bound.) Rejected: the exact
     * largest |e| of each table, a horizontal reduction per table that cost
     * more than the quantisation itself, for a bound ~6% tighter. */
    double e = fabs((double)bf - bias_d) + (double)M * sc * (0.5 + 4.0 * (R + 1) * FLT_EPSILON);
    /* and the float sums on both sides (the M table values, bias + scale *
     * u16) */
    e += (double)(M + 4) * FLT_EPSILON * (absmax + fabs((double)bf) + (double)sc * M * R);
    *bias = bf;
    *scale = sc;
    *err = (float)(e * (1 + 4 * FLT_EPSILON)); /* rounded up past the float conversion */
}

#endif
