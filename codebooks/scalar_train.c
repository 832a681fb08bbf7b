/*
 * scalar_train.c: training of the SQ stage (scalar.c): the per-dimension
 * or per-tensor ranges (min/max or sq_clip quantiles), the grids of SQ8 and
 * SQ4 and SQ4's clipped ranges, and the scales of the fp8 and int8 codecs.
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
 * - Speed of training SQ8/SQ4 (GloVe 331k x 100, one thread: 0.28 s ->
 *   0.03 s): min/max over blocks of rows in parallel (exact in any order),
 *   then both grids' squared errors
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
 */
#include "scalar_internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MINMAX_ROWS 8192  /* rows per task of the min/max pass */
#define GRID_ROWS 65536   /* at most this many rows choose the SQ8/SQ4 grids */
#define GRID_DIMS 64      /* dimensions per task of the grid choice */
#define CLIP_ROWS 8192    /* at most this many rows give the clipping candidates */

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

int vqs_sq_train(vqs_stage *s, size_t n, const float *x, const vqs_codec_opts *o)
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
