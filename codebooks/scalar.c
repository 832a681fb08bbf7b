/*
 * scalar.c: scalar quantizers (SQ stage). The exact fp16 / bfloat16 / fp8
 * conversions they use are in common/float.c.
 *
 * Tokens (one code per dimension):
 *   SQfp16            IEEE binary16, 2 bytes/dim (little-endian), no training
 *   SQbf16            bfloat16, 2 bytes/dim (little-endian), no training
 *   SQfp8 = SQe4m3    fp8 E4M3 (FN) of x_j / scale_j, scale_j = R_j / 448
 *   SQe5m2            fp8 E5M2 of x_j / scale_j, scale_j = R_j / 57344
 *   SQfp8t            fp8 E4M3 of x / scale, ONE scale = R / 448 for the tensor
 *   SQ8 = SQint8      uint8 over the per-dimension range [lo_j, hi_j]
 *   SQ4 = SQint4      4 bits over [lo_j, hi_j], two per byte, low nibble first
 *   SQ8s              int8 in [-127, 127] with ONE scale = R / 127: x ~ scale*code
 *   SQfp32 (= Flat)   float32 itself, 4 bytes/dim (little-endian), no training:
 *                     the uncompressed reference, e.g. the float32 output of
 *                     a PCA (PCA384,Flat, the paper's baseline). "Flat" is
 *                     accepted only after a transform (codec.c): alone,
 *                     FAISS's "Flat" is an index, not a codec.
 * where, per dimension, lo_j/hi_j are the min/max of the training data, or
 * with opts->sq_clip = p (0.5 < p < 1; 1 means min/max; anything else is
 * VQS_EINVAL at training) its (1-p) and p quantiles (linear interpolation
 * between order statistics, numpy's default), and
 * R_j = max(|lo_j|, |hi_j|). For the one-scale codecs R is max |x| over the
 * whole training set, or with sq_clip its p-quantile of |x|.
 * Exception: SQ4 with sq_clip = 0 (the default) chooses its range per
 * dimension from the data (min/max or a clipped range, see below); sq_clip
 * = 1 asks for min/max.
 *
 * Design decisions:
 * - Uniform integer codecs (SQ8, SQ4): per dimension a grid of L = 2^b points
 *   x ~ a_j + code * step_j, code = the nearest grid point (clamped). FAISS
 *   (ScalarQuantizer QT_8bit / QT_4bit, RS_minmax) encodes
 *   floor((L - 1) t), t = (x - lo) / (hi - lo) clamped to [0, 1], and decodes
 *   lo + (code + 0.5) / (L - 1) * (hi - lo): L - 1 cells of width
 *   (hi - lo) / (L - 1), its top code only reached at t >= 1 (and decoded
 *   half a cell above hi). We train one of two grids per dimension:
 *     "cells":     L cells of width (hi - lo) / L decoded at their centres
 *                  (a = lo + step / 2): the best on smooth data in the
 *                  sample, (L-1)^2/L^2 of FAISS's MSE (-0.8% at 8 bits, -12%
 *                  at 4 bits);
 *     "endpoints": step = (hi - lo) / (L - 1), a = lo, so lo and hi are
 *                  reconstructed exactly: exact zeros and integer-valued
 *                  data (SIFT: 0.64x FAISS's MSE at 8 bits) and half a step
 *                  of margin beyond the sample range for new data.
 *   "cells" is chosen only if its training MSE (on at most GRID_ROWS evenly
 *   spaced training rows) is more than 2% below that of
 *   "endpoints": on smooth data that picks "cells" at 4 bits (12% better)
 *   and "endpoints" at 8 bits, where the 0.8% in-sample gain of "cells" is
 *   lost out of sample to values beyond the trained range (measured on
 *   sts15k_bert768 queries: 1.007x FAISS with "cells" everywhere, 0.998x
 *   with this rule). Rejected: per-cell centroid (Lloyd) reconstruction
 *   tables (d * 2^b floats, data-dependent; a job for PQ/RVQ).
 * - SQ4's default range is chosen per dimension from the data: besides
 *   [min, max], the ranges between the t and 1 - t quantiles for ten tail
 *   masses t from 2e-4 to 0.05 (clip_tails; quantiles of at most CLIP_ROWS
 *   evenly spaced rows), each with both grids, scored by their MSE on the
 *   GRID_ROWS sample; a clipped range replaces [min, max] only if its MSE is
 *   2% lower (CLIP_GAIN), so data for which min/max is right (uniform) keep
 *   it. On N(0, 1) min/max gives 16 cells over about +-4.3 sigma (100k
 *   rows): 16.0 dB held out, where the best uniform 4-bit grid (+-2.68
 *   sigma) reaches 19.38 dB; the chosen ranges reach 19.35 dB. Held-out SQNR
 *   on the data sets, min/max -> chosen: sts15k_bert768 17.84 -> 19.80 dB,
 *   siftsmall 22.48 -> 23.47 dB, fiori_docs_minilm384 (in sample) 18.88 ->
 *   19.68 dB, Laplace 11.45 -> 15.83 dB, uniform 24.09 -> 24.09 dB. Cost:
 *   training SQ4 on sts15k (14k x 768) takes about 0.3 s of CPU instead of
 *   0.02 s (eleven candidate ranges with two grids each, and the tail sort
 *   of every column).
 *   Rejected: a non-uniform (Lloyd-Max or NF4-style) 16-level grid (20.2 dB
 *   on N(0, 1)), which the SQ scan kernels cannot take: they decode a_j +
 *   code * step_j; candidates at mean +- k sigma (cheaper, no sort, but a
 *   few outliers inflate sigma until no candidate clips anything).
 *   SQ8 keeps min/max by default: the same search gains nothing there out of
 *   sample (N(0, 1) 100k rows 40.04 -> 40.14 dB; sts15k queries 41.33 ->
 *   41.27 dB; siftsmall queries 45.82 -> 45.77 dB: values beyond a clipped
 *   range cost more than the finer step saves).
 * - Speed of SQ8/SQ4 (GloVe 331k x 100, one thread: training 0.28 s -> 0.03
 *   s, encoding 3.0 -> 6.6 M vectors/s). The encoder computes a row of
 *   codes with element-wise loops the compiler vectorises: the clamp is two
 *   selects (NaN -> 0) and the rounding is (t + 2^23) - 2^23, which for 0 <=
 *   t < 2^22 rounds to nearest-even exactly as lrintf did (both in the
 *   current rounding mode), so the codes are bit-identical to the scalar
 *   formula (a test keeps a copy of it). Training: min/max over blocks of
 *   rows in parallel (exact in any order), then both grids' squared errors
 *   in one pass over at most GRID_ROWS evenly spaced rows (65,536: the 2%
 *   margin is far above the sampling error; on GloVe that is a fifth of the
 *   rows), parallel over blocks of dimensions so each dimension's sum is
 *   taken in row order whatever the thread count. Rejected: choosing the
 *   grid from the histogram of a first pass (a pass of its own, and bins
 *   approximate the error).
 * - fp8 codecs scale so that the largest training magnitude maps to the
 *   largest finite code; values beyond saturate (the conversions are called
 *   with sat = 1). fp8's dynamic range makes the SQNR nearly independent of
 *   the scale as long as nothing saturates, so a max-based scale is the
 *   simple right choice. Rejected: power-of-two scales (exact but up to 1 bit
 *   of range wasted at the top, where the ulp is largest).
 * - Encode never produces NaN/Inf and decode never returns them: a NaN input
 *   is encoded as 0 (then clamped into the range); fp16/bf16 overflow
 *   saturates to the largest finite value instead of Inf; corrupt codes
 *   holding NaN/Inf patterns decode to 0 / the largest finite value.
 * - Queries: reference scorer, decoding component by component with the
 *   stage's parameters (a 256-entry table for fp8). Fast kernels live in
 *   index/kernels.
 */
#include "codebook_internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ENC_CHUNK 256     /* dimensions per step of the SQ8/SQ4 encoder (even) */
#define MINMAX_ROWS 8192  /* rows per task of the min/max pass */
#define GRID_ROWS 65536   /* at most this many rows choose the SQ8/SQ4 grids */
#define GRID_DIMS 64      /* dimensions per task of the grid choice */
#define CLIP_ROWS 8192    /* at most this many rows give the clipping candidates */

/* ---- stage parameters --------------------------------------------------- */

enum sq_kind { K_F16, K_BF16, K_E4M3, K_E5M2, K_E4M3T, K_U8, K_U4, K_S8, K_F32 };

static const struct {
    const char *tok;
    int kind;
} sq_tokens[] = {
    {"SQfp16", K_F16}, {"SQbf16", K_BF16}, {"SQfp8", K_E4M3}, {"SQe4m3", K_E4M3},
    {"SQe5m2", K_E5M2}, {"SQfp8t", K_E4M3T}, {"SQ8", K_U8},   {"SQint8", K_U8},
    {"SQ4", K_U4},      {"SQint4", K_U4},    {"SQ8s", K_S8},   {"SQfp32", K_F32},
    {"Flat", K_F32},
};

typedef struct sq {
    int kind;
    size_t d;
    size_t na;      /* floats in a and in b: d (per-dimension), 1 (one scale), 0 */
    float *a;       /* U8/U4: first grid point a_j; fp8: scale_j (or a[0] for E4M3T); S8: a[0] = scale */
    float *b;       /* U8/U4: grid step_j; fp8/S8: 1 / scale */
    float *binv;    /* U8/U4: 1 / step_j (0 when the step is 0) */
    float lut[256]; /* fp8: value of each code, NaN codes -> 0, Inf -> +-max */
} sq;

static int is_fp8(int k) { return k == K_E4M3 || k == K_E5M2 || k == K_E4M3T; }
static int per_dim(int k) { return k == K_E4M3 || k == K_E5M2 || k == K_U8 || k == K_U4; }
static int trained_kind(int k) { return k != K_F16 && k != K_BF16 && k != K_F32; }
static float fmt_max(int k) { return k == K_E5M2 ? 57344.0f : k == K_S8 ? 127.0f : 448.0f; }

static size_t sq_code_size(int kind, size_t d)
{
    switch (kind) {
    case K_F16:
    case K_BF16:
        return 2 * d;
    case K_U4:
        return (d + 1) / 2;
    case K_F32:
        return 4 * d;
    default:
        return d;
    }
}

/* float32, little-endian like the other multi-byte codes (the index's
 * kernels read it as native floats: vqs targets little-endian x86-64) */
static inline float dec_f32(const uint8_t *c, size_t j)
{
    float v;
    memcpy(&v, c + 4 * j, sizeof v);
    return v;
}

/* NaN -> 0, +-Inf -> +-FLT_MAX: decode never returns a non-finite value */
static inline float enc_f32(float x)
{
    return x != x ? 0.0f : x > FLT_MAX ? FLT_MAX : x < -FLT_MAX ? -FLT_MAX : x;
}

static inline float sane(float x) { return x == x ? x : 0.0f; } /* NaN -> 0 */

static inline uint8_t enc_fp8(int kind, float y)
{
    return kind == K_E5M2 ? vqs_f32_to_e5m2(y, 1) : vqs_f32_to_e4m3(y, 1);
}

static inline uint16_t enc_half(int kind, float x)
{
    uint16_t h;
    if (kind == K_F16) {
        h = vqs_f32_to_f16(x);
        if ((h & 0x7fff) >= 0x7c00) /* Inf (x is not NaN): saturate */
            h = (h & 0x8000) | 0x7bff;
    } else {
        h = vqs_f32_to_bf16(x);
        if ((h & 0x7fff) >= 0x7f80)
            h = (h & 0x8000) | 0x7f7f;
    }
    return h;
}

static inline float dec_half(int kind, uint16_t h)
{
    uint16_t a = h & 0x7fff;
    if (kind == K_F16) {
        if (a > 0x7c00)
            return 0.0f;
        if (a == 0x7c00)
            h = (h & 0x8000) | 0x7bff;
        return vqs_f16_to_f32(h);
    }
    if (a > 0x7f80)
        return 0.0f;
    if (a == 0x7f80)
        h = (h & 0x8000) | 0x7f7f;
    return vqs_bf16_to_f32(h);
}

/* nearest grid index in [0, levels - 1] to t = (x - a) / step; NaN t -> 0 */
static inline unsigned cell(float t, unsigned levels)
{
    if (t >= (float)(levels - 1))
        return levels - 1;
    if (t > 0.0f)
        return (unsigned)lrintf(t);
    return 0;
}

/* The same as cell() for a whole row, written so that the compiler
 * vectorises it: t = (sane(x) - a) * inv clamped to [0, levels - 1] (NaN ->
 * 0), then rounded to nearest-even by adding and subtracting 2^23 (exact for
 * 0 <= t < 2^22, and like lrintf it rounds in the current rounding mode).
 * Writes the grid index as a float (exact) and, if c, as a byte. */
static void cells_row(const float *x, const float *a, const float *inv, size_t d, unsigned levels,
                      float *r, uint8_t *c)
{
    const float top = (float)(levels - 1), magic = 0x1p23f;
    for (size_t j = 0; j < d; j++) {
        float v = x[j];
        v = v == v ? v : 0.0f;
        float t = (v - a[j]) * inv[j];
        t = t > 0.0f ? t : 0.0f; /* NaN (e.g. inf * 0) -> 0 */
        t = t < top ? t : top;
        r[j] = (t + magic) - magic;
    }
    if (c)
        for (size_t j = 0; j < d; j++)
            c[j] = (uint8_t)(int32_t)r[j];
}

/* value of component j of one code */
static inline float dec_one(const sq *S, const uint8_t *c, size_t j)
{
    switch (S->kind) {
    case K_F16:
    case K_BF16:
        return dec_half(S->kind, (uint16_t)(c[2 * j] | c[2 * j + 1] << 8));
    case K_E4M3:
    case K_E5M2:
        return S->a[j] * S->lut[c[j]];
    case K_E4M3T:
        return S->a[0] * S->lut[c[j]];
    case K_U8:
        return S->a[j] + (float)c[j] * S->b[j];
    case K_U4:
        return S->a[j] + (float)((c[j / 2] >> (4 * (j & 1))) & 15) * S->b[j];
    case K_F32:
        return dec_f32(c, j);
    default: /* K_S8 */
        return S->a[0] * (float)(int8_t)c[j];
    }
}

/* ---- training ------------------------------------------------------------- */

static inline void fswap(float *a, ptrdiff_t i, ptrdiff_t j)
{
    float t = a[i];
    a[i] = a[j];
    a[j] = t;
}

/* k-th smallest of a[0..n) (0-based); partially reorders a so that a[i] <=
 * a[k] for i < k and a[i] >= a[k] for i > k. Values are finite. */
static float select_k(float *a, size_t n, size_t k)
{
    ptrdiff_t lo = 0, hi = (ptrdiff_t)n - 1, kk = (ptrdiff_t)k;
    while (hi > lo) {
        ptrdiff_t mid = lo + (hi - lo) / 2;
        if (a[mid] < a[lo])
            fswap(a, lo, mid);
        if (a[hi] < a[lo])
            fswap(a, lo, hi);
        if (a[hi] < a[mid])
            fswap(a, mid, hi);
        float p = a[mid];
        ptrdiff_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < p)
                i++;
            while (a[j] > p)
                j--;
            if (i <= j) {
                fswap(a, i, j);
                i++;
                j--;
            }
        }
        if (kk <= j)
            hi = j;
        else if (kk >= i)
            lo = i;
        else
            return a[kk];
    }
    return a[kk];
}

/* p-quantile of a[0..n), n >= 1, linear interpolation (numpy "linear") */
static float quantile(float *a, size_t n, double p)
{
    double pos = p * (double)(n - 1);
    size_t k = (size_t)pos;
    if (k >= n - 1)
        k = n - 1;
    double frac = pos - (double)k;
    float v = select_k(a, n, k);
    if (frac <= 0 || k + 1 >= n)
        return v;
    float w = a[k + 1];
    for (size_t i = k + 2; i < n; i++)
        if (a[i] < w)
            w = a[i];
    return (float)((double)v + frac * ((double)w - (double)v));
}

typedef struct range_job {
    size_t n, d;
    const float *x;
    double clip;
    float *lo, *hi; /* d */
    float **col;    /* per thread: n floats */
} range_job;

static int range_task(void *ctx, size_t j, int tid)
{
    range_job *J = ctx;
    float *c = J->col[tid];
    for (size_t i = 0; i < J->n; i++)
        c[i] = J->x[i * J->d + j];
    J->lo[j] = quantile(c, J->n, 1.0 - J->clip);
    J->hi[j] = quantile(c, J->n, J->clip);
    return 0;
}

/* min/max of rows [i0, i1) per dimension into lo, hi (element-wise loops) */
static void minmax_rows(const float *x, size_t d, size_t i0, size_t i1, float *lo, float *hi)
{
    for (size_t j = 0; j < d; j++)
        lo[j] = hi[j] = x[i0 * d + j];
    for (size_t i = i0 + 1; i < i1; i++) {
        const float *xi = x + i * d;
        for (size_t j = 0; j < d; j++) {
            lo[j] = xi[j] < lo[j] ? xi[j] : lo[j];
            hi[j] = xi[j] > hi[j] ? xi[j] : hi[j];
        }
    }
}

typedef struct minmax_job {
    size_t n, d;
    const float *x;
    float *part; /* per task: lo[d], hi[d] */
} minmax_job;

static int minmax_task(void *ctx, size_t t, int tid)
{
    (void)tid;
    minmax_job *J = ctx;
    size_t i0 = t * MINMAX_ROWS, i1 = i0 + MINMAX_ROWS < J->n ? i0 + MINMAX_ROWS : J->n;
    minmax_rows(J->x, J->d, i0, i1, J->part + 2 * t * J->d, J->part + (2 * t + 1) * J->d);
    return 0;
}

/* per-dimension [lo_j, hi_j]: min/max, or the clip quantiles */
static int dim_ranges(size_t n, size_t d, const float *x, double clip, int nthreads, float *lo,
                      float *hi)
{
    if (clip <= 0) {
        /* blocks of rows in parallel; min and max are exact in any order */
        size_t ntask = (n + MINMAX_ROWS - 1) / MINMAX_ROWS;
        if (ntask == 1) {
            minmax_rows(x, d, 0, n, lo, hi);
            return 0;
        }
        minmax_job J = {n, d, x, malloc(sizeof(float) * 2 * d * ntask)};
        if (!J.part)
            return vqs_seterr(VQS_ENOMEM, "SQ train: %zu x %zu floats", ntask, 2 * d);
        int rc = vqs_parallel_for(nthreads, ntask, minmax_task, &J);
        if (!rc) {
            memcpy(lo, J.part, sizeof(float) * d);
            memcpy(hi, J.part + d, sizeof(float) * d);
            for (size_t t = 1; t < ntask; t++) {
                const float *pl = J.part + 2 * t * d, *ph = pl + d;
                for (size_t j = 0; j < d; j++) {
                    lo[j] = pl[j] < lo[j] ? pl[j] : lo[j];
                    hi[j] = ph[j] > hi[j] ? ph[j] : hi[j];
                }
            }
        }
        free(J.part);
        return rc;
    }
    int nt = nthreads > 0 ? nthreads : vqs_default_threads();
    if ((size_t)nt > d)
        nt = (int)d;
    range_job J = {n, d, x, clip, lo, hi, calloc((size_t)nt, sizeof(float *))};
    int rc = J.col ? 0 : vqs_seterr(VQS_ENOMEM, "SQ train: column buffers");
    for (int t = 0; t < nt && !rc; t++)
        if (!(J.col[t] = malloc(sizeof(float) * n)))
            rc = vqs_seterr(VQS_ENOMEM, "SQ train: %zu floats", n);
    if (!rc)
        rc = vqs_parallel_for(nt, d, range_task, &J);
    for (int t = 0; J.col && t < nt; t++)
        free(J.col[t]);
    free(J.col);
    return rc;
}

/* max |x| over the tensor, or its clip quantile */
static int tensor_range(size_t n, size_t d, const float *x, double clip, float *r)
{
    size_t m = n * d;
    if (clip <= 0) {
        float v = 0;
        for (size_t i = 0; i < m; i++)
            v = fabsf(x[i]) > v ? fabsf(x[i]) : v;
        *r = v;
        return 0;
    }
    float *a = malloc(sizeof(float) * m);
    if (!a)
        return vqs_seterr(VQS_ENOMEM, "SQ train: %zu floats", m);
    for (size_t i = 0; i < m; i++)
        a[i] = fabsf(x[i]);
    *r = quantile(a, m, clip);
    free(a);
    return 0;
}

static unsigned levels_of(int kind) { return kind == K_U8 ? 256 : 16; }

/* grid of dimension j: first point a, step w */
static void set_grid(sq *S, size_t j, float a, float w)
{
    float inv = w > 0 ? 1.0f / w : 0.0f;
    if (!(w > 0) || !isfinite(inv)) {
        w = 0;
        inv = 0;
    }
    S->a[j] = a;
    S->b[j] = w;
    S->binv[j] = inv;
}

/* Clipping candidates of SQ4's default training (sq_clip == 0): per
 * dimension, besides [min, max], the ranges between the t and 1 - t
 * quantiles for these tail masses t (from at most CLIP_ROWS evenly spaced
 * training rows). For N(0, 1) the best uniform 16-level range is +-2.68
 * sigma with "cells" (t = 0.0037) and +-2.51 sigma with "endpoints"
 * (t = 0.006); the tail masses are densest there, and the MSE is flat near
 * the optimum (measured: 19.35 dB held out against 19.38 in theory). */
static const double clip_tails[] = {2e-4, 5e-4, 1e-3, 2e-3, 3e-3, 4e-3, 6e-3, 1e-2, 2e-2, 5e-2};
#define NTAIL (sizeof clip_tails / sizeof clip_tails[0])
#define NCAND (1 + NTAIL)
#define TAIL_SORT 0.06 /* sorted share of each end of a column (> the largest tail) */

/* A clipped candidate replaces the [lo, hi] grid only if its training MSE is
 * this much lower (in-sample noise must not clip data for which min/max is
 * right, e.g. uniform data) */
#define CLIP_GAIN 0.98

typedef struct grid_job {
    size_t n, m, d;   /* rows, sampled rows, dimensions */
    size_t mq;        /* rows sampled for the candidate quantiles (autoclip) */
    const float *x;
    const float *lo, *hi; /* d: the [lo, hi] candidate (min/max or the sq_clip quantiles) */
    unsigned L;
    int ncand;        /* 1, or NCAND with autoclip */
    sq *S;            /* written: dimensions of the task's block */
    float **buf;      /* per thread: GRID_DIMS * mq floats (autoclip) */
} grid_job;

static int fcmp(const void *a, const void *b)
{
    float u = *(const float *)a, v = *(const float *)b;
    return (u > v) - (u < v);
}

/* Type-7 quantile p of a column a[0..m) whose two ends are sorted
 * (sort_tails): p must fall inside them (p <= 0.05 or p >= 0.95). */
static float tail_quantile(const float *a, size_t m, double p)
{
    double pos = p * (double)(m - 1);
    size_t k = (size_t)pos;
    if (k + 1 >= m)
        return a[m - 1];
    return (float)((double)a[k] + (pos - (double)k) * ((double)a[k + 1] - (double)a[k]));
}

/* Sorts the two ends of column a[0..m) (TAIL_SORT of it each, at least two
 * entries) so that tail_quantile can read the candidate quantiles. */
static void sort_tails(float *a, size_t m)
{
    size_t e = (size_t)(TAIL_SORT * (double)m) + 2;
    if (2 * e >= m) {
        qsort(a, m, sizeof(float), fcmp);
        return;
    }
    select_k(a, m, e - 1);                      /* a[0..e) are the e smallest */
    select_k(a + e, m - e, m - e - e);          /* a[m-e..m) the e largest */
    qsort(a, e, sizeof(float), fcmp);
    qsort(a + m - e, e, sizeof(float), fcmp);
}

/* Per-candidate grid parameters of one block, candidate-major: for
 * candidate c, p + c * 6 * GRID_DIMS holds a, step, 1/step of "cells", then
 * of "endpoints", GRID_DIMS each. */
static void grid_params(float *p, float lo, float hi, size_t j, unsigned L)
{
    float r = hi - lo, wc = r / (float)L, we = r / (float)(L - 1);
    p[j] = lo + wc / 2;
    p[GRID_DIMS + j] = wc;
    p[2 * GRID_DIMS + j] = wc > 0 && isfinite(1.0f / wc) ? 1.0f / wc : 0.0f;
    p[3 * GRID_DIMS + j] = lo;
    p[4 * GRID_DIMS + j] = we;
    p[5 * GRID_DIMS + j] = we > 0 && isfinite(1.0f / we) ? 1.0f / we : 0.0f;
}

/* For the dimensions of block t: the candidate ranges (autoclip: quantiles
 * of the block's columns), the squared errors of both grids of every
 * candidate on the sampled rows (in row order, so the sums do not depend
 * on the threads), and the choice, written into S. */
static int grid_task(void *ctx, size_t t, int tid)
{
    grid_job *J = ctx;
    size_t d = J->d, j0 = t * GRID_DIMS, m = d - j0 < GRID_DIMS ? d - j0 : GRID_DIMS;
    const int nc = J->ncand;
    float par[NCAND * 6 * GRID_DIMS];
    double err[NCAND][2][GRID_DIMS];
    unsigned char clipped[NCAND][GRID_DIMS]; /* candidate c differs from [lo, hi] in dimension j */
    int active[NCAND];                       /* ... in some dimension of the block */
    float r[GRID_DIMS];
    memset(err, 0, sizeof err);
    for (size_t j = 0; j < m; j++)
        grid_params(par, J->lo[j0 + j], J->hi[j0 + j], j, J->L);
    active[0] = 1;
    if (nc > 1) {
        /* the block's columns from mq evenly spaced rows, then each column's
         * quantiles at every tail mass */
        float *col = J->buf[tid];
        size_t mq = J->mq;
        for (size_t s = 0; s < mq; s++) {
            const float *xi = J->x + (s * J->n / mq) * d + j0;
            for (size_t j = 0; j < m; j++)
                col[j * mq + s] = xi[j];
        }
        for (int c = 1; c < nc; c++)
            active[c] = 0;
        for (size_t j = 0; j < m; j++) {
            float *a = col + j * mq;
            sort_tails(a, mq);
            float lo = J->lo[j0 + j], hi = J->hi[j0 + j];
            for (int c = 1; c < nc; c++) {
                double tm = clip_tails[c - 1];
                float ql = tail_quantile(a, mq, tm), qh = tail_quantile(a, mq, 1.0 - tm);
                ql = ql > lo ? ql : lo;
                qh = qh < hi ? qh : hi;
                if (!(qh > ql)) { /* (nearly) constant inside the tails: keep [lo, hi] */
                    ql = lo;
                    qh = hi;
                }
                clipped[c][j] = ql != lo || qh != hi;
                active[c] |= clipped[c][j];
                grid_params(par + (size_t)c * 6 * GRID_DIMS, ql, qh, j, J->L);
            }
        }
    }
    const float *x = J->x;
    for (size_t s = 0; s < J->m; s++) {
        const float *xi = x + (s * J->n / J->m) * d + j0;
        if (s + 8 < J->m) { /* spread-out rows: fetch ahead */
            const char *f = (const char *)(x + ((s + 8) * J->n / J->m) * d + j0);
            for (size_t b = 0; b < m * sizeof(float); b += 64)
                __builtin_prefetch(f + b);
        }
        for (int c = 0; c < nc; c++) {
            if (!active[c])
                continue;
            for (int which = 0; which < 2; which++) {
                const float *a = par + (size_t)c * 6 * GRID_DIMS + 3 * GRID_DIMS * (size_t)which;
                const float *w = a + GRID_DIMS, *inv = w + GRID_DIMS;
                double *e = err[c][which];
                cells_row(xi, a, inv, m, J->L, r, NULL);
                for (size_t j = 0; j < m; j++) {
                    float q = xi[j] - (a[j] + r[j] * w[j]);
                    e[j] += q * q;
                }
            }
        }
    }
    /* per dimension: "cells" over a range only if 2% better than
     * "endpoints" over it (see the top of the file); a clipped range only if
     * CLIP_GAIN better than [lo, hi] */
    for (size_t j = 0; j < m; j++) {
        int best_c = 0, best_w = err[0][0][j] < 0.98 * err[0][1][j] ? 0 : 1;
        double base = err[0][best_w][j], best = INFINITY;
        for (int c = 1; c < nc; c++) {
            if (!clipped[c][j])
                continue;
            int w = err[c][0][j] < 0.98 * err[c][1][j] ? 0 : 1;
            if (err[c][w][j] < best) {
                best = err[c][w][j];
                best_c = c;
                best_w = w;
            }
        }
        if (best_c && !(best < CLIP_GAIN * base)) {
            best_c = 0;
            best_w = err[0][0][j] < 0.98 * err[0][1][j] ? 0 : 1;
        }
        const float *a = par + (size_t)best_c * 6 * GRID_DIMS + 3 * GRID_DIMS * (size_t)best_w;
        set_grid(J->S, j0 + j, a[j], a[GRID_DIMS + j]);
    }
    return 0;
}

/* per dimension, the "cells" or the "endpoints" grid over [lo_j, hi_j] or,
 * with autoclip, over one of the clipped candidate ranges (see the top of
 * the file), by their MSE on at most GRID_ROWS training rows (evenly
 * spaced) */
static int choose_grids(sq *S, size_t n, const float *x, const float *lo, const float *hi,
                        int nthreads, int autoclip)
{
    size_t d = S->d;
    int nt = nthreads > 0 ? nthreads : vqs_default_threads();
    size_t ntask = (d + GRID_DIMS - 1) / GRID_DIMS;
    if ((size_t)nt > ntask)
        nt = (int)ntask;
    grid_job J = {n, n < GRID_ROWS ? n : GRID_ROWS, d, n < CLIP_ROWS ? n : CLIP_ROWS, x, lo, hi,
                  levels_of(S->kind), autoclip ? (int)NCAND : 1, S, NULL};
    int rc = 0;
    if (autoclip) {
        if (!(J.buf = calloc((size_t)nt, sizeof *J.buf)))
            return vqs_seterr(VQS_ENOMEM, "SQ train: column buffers");
        for (int t = 0; t < nt && !rc; t++)
            if (!(J.buf[t] = malloc(sizeof(float) * GRID_DIMS * J.mq)))
                rc = vqs_seterr(VQS_ENOMEM, "SQ train: %zu x %d floats", J.mq, GRID_DIMS);
    }
    if (!rc)
        rc = vqs_parallel_for(nt, ntask, grid_task, &J);
    for (int t = 0; J.buf && t < nt; t++)
        free(J.buf[t]);
    free(J.buf);
    return rc;
}

static void set_scale(sq *S, size_t j, float r)
{
    float sc = r / fmt_max(S->kind);
    if (!(sc > 0) || !isfinite(1.0f / sc))
        sc = r > 0 && isfinite(r) ? FLT_MIN : 1.0f; /* all zero: any scale decodes 0 */
    S->a[j] = sc;
    S->b[j] = 1.0f / sc;
}

static int sq_train(vqs_stage *s, size_t n, const float *x, const vqs_codec_opts *o)
{
    sq *S = s->impl;
    size_t d = S->d;
    if (!trained_kind(S->kind))
        return 0;
    if (n < 1)
        return vqs_seterr(VQS_EINVAL, "%s: training needs at least 1 vector (got 0)", s->token);
    double clip = o->sq_clip;
    if (!(clip == 0 || (clip > 0.5 && clip <= 1.0)))
        return vqs_seterr(VQS_EINVAL, "%s: sq_clip = %g, expected 0 (min/max) or a quantile in (0.5, 1]",
                          s->token, clip);
    /* 0: SQ4's range chosen from the data (SQ8: min/max, see the top of the
     * file); 1: min/max */
    int autoclip = clip == 0 && S->kind == K_U4;
    if (clip >= 1.0)
        clip = 0;
    int rc = 0;
    if (per_dim(S->kind)) {
        float *lo = malloc(sizeof(float) * d), *hi = malloc(sizeof(float) * d);
        if (!lo || !hi)
            rc = vqs_seterr(VQS_ENOMEM, "%s: train", s->token);
        if (!rc)
            rc = dim_ranges(n, d, x, clip, o->nthreads, lo, hi);
        if (!rc && (S->kind == K_U8 || S->kind == K_U4))
            rc = choose_grids(S, n, x, lo, hi, o->nthreads, autoclip);
        else
            for (size_t j = 0; j < d && !rc; j++)
                set_scale(S, j, fabsf(lo[j]) > fabsf(hi[j]) ? fabsf(lo[j]) : fabsf(hi[j]));
        free(lo);
        free(hi);
    } else {
        float r;
        if (!(rc = tensor_range(n, d, x, clip, &r)))
            set_scale(S, 0, r);
    }
    return rc;
}

/* ---- encode / decode ------------------------------------------------------- */

static int sq_encode(const vqs_stage *s, size_t n, const float *x, uint8_t *codes)
{
    const sq *S = s->impl;
    size_t d = S->d, cs = s->code_size;
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * d;
        uint8_t *c = codes + i * cs;
        switch (S->kind) {
        case K_F16:
        case K_BF16:
            for (size_t j = 0; j < d; j++) {
                uint16_t h = enc_half(S->kind, sane(xi[j]));
                c[2 * j] = (uint8_t)h;
                c[2 * j + 1] = (uint8_t)(h >> 8);
            }
            break;
        case K_E4M3:
        case K_E5M2:
            for (size_t j = 0; j < d; j++)
                c[j] = enc_fp8(S->kind, sane(xi[j]) * S->b[j]);
            break;
        case K_E4M3T:
            for (size_t j = 0; j < d; j++)
                c[j] = vqs_f32_to_e4m3(sane(xi[j]) * S->b[0], 1);
            break;
        case K_F32:
            for (size_t j = 0; j < d; j++) {
                float v = enc_f32(xi[j]);
                memcpy(c + 4 * j, &v, sizeof v);
            }
            break;
        case K_U8:
        case K_U4:
            /* in chunks of ENC_CHUNK dimensions (stack scratch) */
            for (size_t j0 = 0; j0 < d; j0 += ENC_CHUNK) {
                size_t m = d - j0 < ENC_CHUNK ? d - j0 : ENC_CHUNK;
                float r[ENC_CHUNK];
                uint8_t b[ENC_CHUNK + 1];
                if (S->kind == K_U8) {
                    cells_row(xi + j0, S->a + j0, S->binv + j0, m, 256, r, c + j0);
                    continue;
                }
                cells_row(xi + j0, S->a + j0, S->binv + j0, m, 16, r, b);
                b[m] = 0;
                for (size_t q = 0; q < m; q += 2) /* j0 is even: whole bytes */
                    c[(j0 + q) / 2] = (uint8_t)(b[q] | b[q + 1] << 4);
            }
            break;
        default: { /* K_S8 */
            for (size_t j = 0; j < d; j++) {
                float t = sane(xi[j]) * S->b[0];
                t = t > 127.0f ? 127.0f : t < -127.0f ? -127.0f : t;
                c[j] = (uint8_t)(int8_t)lrintf(t);
            }
        }
        }
    }
    return 0;
}

static void sq_decode(const vqs_stage *s, size_t n, const uint8_t *codes, float *x)
{
    const sq *S = s->impl;
    size_t d = S->d, cs = s->code_size;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = dec_one(S, codes + i * cs, j);
}

/* ---- queries --------------------------------------------------------------- */

/* prepared query, 8-byte aligned: the query, and its kernel form (see
 * vqs_codec_view): qk (d) and wk (d) such that L2 = sum (qk_j - wk_j v_j)^2
 * and IP = bias + sum qk_j v_j, v_j the raw value of code element j:
 *   fp16/bf16: qk = q, wk = 1;  fp8: qk = q (IP: q * scale_j), wk = scale_j;
 *   U8/U4: x = a_j + b_j c: qk = q - a (IP: q * b, bias = <q, a>), wk = b;
 *   S8: x = scale * (int8)c: qk = q (IP: q * scale), wk = scale. */
typedef struct sq_query {
    uint32_t metric;
    float bias;
    float q[]; /* d, then qk[d], wk[d] */
} sq_query;

static size_t sq_query_size(const vqs_stage *s) { return sizeof(sq_query) + 3 * sizeof(float) * s->d_in; }

static void sq_query_prepare(const vqs_stage *s, vqs_metric m, const float *q, void *state)
{
    const sq *S = s->impl;
    sq_query *Q = state;
    size_t d = s->d_in;
    float *qk = Q->q + d, *wk = qk + d;
    Q->metric = (uint32_t)m;
    memcpy(Q->q, q, sizeof(float) * d);
    double bias = 0;
    for (size_t j = 0; j < d; j++) {
        float a = 0, w = 1; /* x = a + w * v */
        switch (S->kind) {
        case K_E4M3:
        case K_E5M2:
            w = S->a[j];
            break;
        case K_E4M3T:
        case K_S8:
            w = S->a[0];
            break;
        case K_U8:
        case K_U4:
            a = S->a[j];
            w = S->b[j];
            break;
        default:
            break;
        }
        wk[j] = w;
        if (m == VQS_METRIC_L2) {
            qk[j] = q[j] - a;
        } else {
            qk[j] = q[j] * w;
            bias += (double)q[j] * a;
        }
    }
    Q->bias = (float)bias;
}

static void sq_query_view(const vqs_stage *s, const void *state, vqs_codec_view *v)
{
    const sq *S = s->impl;
    const sq_query *Q = state;
    static const vqs_elem type_of[] = {
        [K_F16] = VQS_ELEM_F16, [K_BF16] = VQS_ELEM_BF16, [K_E4M3] = VQS_ELEM_E4M3,
        [K_E5M2] = VQS_ELEM_E5M2, [K_E4M3T] = VQS_ELEM_E4M3, [K_U8] = VQS_ELEM_U8,
        [K_U4] = VQS_ELEM_U4, [K_S8] = VQS_ELEM_S8, [K_F32] = VQS_ELEM_F32,
    };
    size_t d = s->d_in;
    v->kind = VQS_VIEW_SQ;
    v->sq_type = type_of[S->kind];
    v->d = d;
    v->q = Q->q + d;
    v->w = Q->q + 2 * d;
    v->bias = Q->metric == VQS_METRIC_L2 ? 0.0f : Q->bias;
}

static void sq_query_score(const vqs_stage *s, const void *state, size_t n, const uint8_t *codes,
                           float *out)
{
    const sq *S = s->impl;
    const sq_query *Q = state;
    size_t d = S->d, cs = s->code_size;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = codes + i * cs;
        float acc = 0;
        if (Q->metric == VQS_METRIC_L2)
            for (size_t j = 0; j < d; j++) {
                float t = Q->q[j] - dec_one(S, c, j);
                acc += t * t;
            }
        else
            for (size_t j = 0; j < d; j++)
                acc += Q->q[j] * dec_one(S, c, j);
        out[i] = acc;
    }
}

/* ---- serialisation ---------------------------------------------------------
 * payload: u32 kind, u64 d, u64 na, then for na > 0: a[na], b[na] floats
 * (U8/U4: first grid point a_j and step_j; fp8/S8: scale and 1/scale). */

static int sq_save(const vqs_stage *s, vqs_wbuf *w)
{
    const sq *S = s->impl;
    vqs_wbuf_u32(w, (uint32_t)S->kind);
    vqs_wbuf_u64(w, S->d);
    vqs_wbuf_u64(w, S->na);
    if (S->na) {
        vqs_wbuf_f32(w, S->a, S->na);
        vqs_wbuf_f32(w, S->b, S->na);
    }
    return 0;
}

static int sq_load(vqs_stage *s, vqs_rbuf *r)
{
    sq *S = s->impl;
    uint32_t kind;
    int rc;
    if ((rc = vqs_rbuf_u32(r, &kind)))
        return rc;
    if (kind != (uint32_t)S->kind)
        return vqs_seterr(VQS_ECORRUPT, "%s payload: codec kind %u, expected %d", s->token, kind, S->kind);
    if ((rc = vqs_rbuf_expect(r, S->d, "SQ dimension")) || (rc = vqs_rbuf_expect(r, S->na, "SQ parameter count")))
        return rc;
    if (!S->na)
        return 0;
    if ((rc = vqs_rbuf_f32(r, S->a, S->na)) || (rc = vqs_rbuf_f32(r, S->b, S->na)))
        return rc;
    for (size_t j = 0; j < S->na; j++) {
        float a = S->a[j], b = S->b[j];
        if (S->kind == K_U8 || S->kind == K_U4) {
            unsigned levels = levels_of(S->kind);
            if (!isfinite(a) || !isfinite(b) || b < 0 || !isfinite(a + (float)levels * b))
                return vqs_seterr(VQS_ECORRUPT, "%s payload: dimension %zu: grid start %g, step %g",
                                  s->token, j, (double)a, (double)b);
            S->binv[j] = b > 0 ? 1.0f / b : 0.0f;
            if (!isfinite(S->binv[j]))
                S->b[j] = S->binv[j] = 0;
        } else if (!(a > 0) || !isfinite(a) || !isfinite(b) || !(b > 0) ||
                   fabs((double)a * b - 1.0) > 1e-5)
            return vqs_seterr(VQS_ECORRUPT, "%s payload: scale %zu is %g with inverse %g", s->token,
                              j, (double)a, (double)b);
    }
    return 0;
}

static void sq_destroy(vqs_stage *s)
{
    sq *S = s->impl;
    if (S) {
        free(S->a);
        free(S->b);
        free(S->binv);
        free(S);
    }
    s->impl = NULL;
}

static const vqs_stage_ops sq_ops = {
    .family = "SQ",
    .is_quantizer = 1,
    .train = sq_train,
    .encode = sq_encode,
    .decode = sq_decode,
    .query_size = sq_query_size,
    .query_prepare = sq_query_prepare,
    .query_score = sq_query_score,
    .query_view = sq_query_view,
    .save = sq_save,
    .load = sq_load,
    .destroy = sq_destroy,
};

int vqs_stage_sq_new(const char *tok, const char *next, vqs_stage *s)
{
    (void)next;
    if (strncmp(tok, "SQ", 2) != 0 && strcmp(tok, "Flat") != 0)
        return VQS_ENOTFOUND;
    int kind = -1;
    for (size_t i = 0; i < sizeof sq_tokens / sizeof sq_tokens[0]; i++)
        if (strcmp(tok, sq_tokens[i].tok) == 0)
            kind = sq_tokens[i].kind;
    if (kind < 0)
        return vqs_seterr(VQS_ESPEC, "'%s': unknown scalar quantizer (known: SQfp16, SQbf16, SQfp8, "
                                     "SQe4m3, SQe5m2, SQfp8t, SQ8, SQint8, SQ4, SQint4, SQ8s, SQfp32)", tok);
    size_t d = s->d_in;
    sq *S = calloc(1, sizeof *S);
    if (!S)
        return vqs_seterr(VQS_ENOMEM, "%s", tok);
    S->kind = kind;
    S->d = d;
    S->na = !trained_kind(kind) ? 0 : per_dim(kind) ? d : 1;
    if (S->na) {
        S->a = calloc(S->na, sizeof(float));
        S->b = calloc(S->na, sizeof(float));
        S->binv = calloc(S->na, sizeof(float));
        if (!S->a || !S->b || !S->binv) {
            free(S->a);
            free(S->b);
            free(S->binv);
            free(S);
            return vqs_seterr(VQS_ENOMEM, "%s: parameters", tok);
        }
    }
    if (is_fp8(kind)) {
        float mx = fmt_max(kind);
        for (int c = 0; c < 256; c++) {
            float v = kind == K_E5M2 ? vqs_e5m2_to_f32((uint8_t)c) : vqs_e4m3_to_f32((uint8_t)c);
            S->lut[c] = isnan(v) ? 0.0f : isinf(v) ? copysignf(mx, v) : v;
        }
    }
    s->ops = &sq_ops;
    s->d_out = d;
    s->code_size = sq_code_size(kind, d);
    s->impl = S;
    return 0;
}
