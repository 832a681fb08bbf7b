/*
 * wq_theory.h: the expected quantization error of every block weight format
 * (codebooks/vqs_wq.h) on iid N(0, 1) weights, integrated numerically from
 * each format's published definition. Header-only C (static inline) so that
 * the Catch2 test (tests/codebooks/test_wq_sqnr.cpp) and the C bench
 * (bench/bench_weights.c) share one copy. It is written independently of
 * codebooks/: every element grid is enumerated here from its definition (the
 * float formats from sign/exponent/mantissa and bias, NF4 from the
 * bitsandbytes table), and nothing here calls vqs.
 *
 *   double wqt_mse(const char *format, size_t rows, size_t cols, double amax)
 *       expected mean squared error per weight of a rows x cols tensor of
 *       iid N(0, 1) weights; amax > 0 conditions the per-tensor formats
 *       (fp8_* per tensor, nvfp4's fp32 tensor scale) on the tensor's
 *       realised max |w|, amax = 0 averages over its distribution for
 *       rows * cols weights. Negative if the format has no theory here (VQ,
 *       codec:...) or the name is unknown.
 *   double wqt_sqnr_db(...)   the same as 10 log10(1 / mse) (E[w^2] = 1).
 *   double wqt_known_db(name) the literature value issue 16 quotes, or 0.
 *
 * The conditioning (one block of B iid N(0,1) weights, its absmax M):
 *   M has density f_B(m) = 2B phi(m) erf(m/sqrt2)^(B-1) on m > 0. Given M
 *   = m, the element holding the max is +m or -m with probability 1/2 each,
 *   and the other B-1 are iid N(0,1) truncated to (-m, m) (density
 *   phi(x) / erf(m/sqrt2)). The format derives its scale from m alone, so
 *   for each m the quantizer is a fixed staircase x -> Q_m(x) and
 *     E[block error | m] = e_max(m) + (B-1) I(m) / erf(m/sqrt2),
 *     I(m) = integral over (-m, m) of (x - Q_m(x))^2 phi(x) dx,
 *   which is a sum over the staircase's steps (between its decision points)
 *   of integrals of a smooth function, each done with 8-point
 *   Gauss-Legendre on pieces no wider than 0.25 (exact to ~1e-14 for this
 *   integrand; no closed form via erf differences, which cancels badly on
 *   the short steps of fp16 or int8). e_max(m) = (e(+m) + e(-m)) / 2. The
 *   outer integral over m is Gauss-Legendre on panels no wider than 0.05,
 *   split at every point where the integrand jumps: where the scale jumps
 *   (the powers of two of an E8M0 scale; the E4M3 rounding steps of an
 *   NVFP4 block scale) and where +-m crosses a decision point of a
 *   staircase that stays fixed over a piece. Formats whose scale is
 *   proportional to m (fp8 and int8 with scales, NF4, Q8_0, Q4_0) have no
 *   such jumps except the fp16 rounding of Q8_0/Q4_0's d, whose relative
 *   jumps of <= 2^-11 are left to the panels (their effect is below 1e-6
 *   dB).
 *   Signed max (Q4_0): llama.cpp takes d = max / -8 where max is the
 *   signed element of largest magnitude, so the staircase depends on the
 *   max's sign; mirroring the block (x -> -x) mirrors the staircase and the
 *   fp16 rounding is sign-symmetric, so conditioning on a positive max (+m
 *   maps to level -8, exact up to fp16(d); the others see levels
 *   -7m/8..m) gives the same expectation.
 *   Asymmetric (Q4_1): d = (max - min) / 15, m = min, so the conditioning
 *   is on the pair (a, b) = (min, max) with joint density
 *   B(B-1) phi(a) phi(b) (Phi(b) - Phi(a))^(B-2), a < b; the other B-2
 *   are iid N(0,1) truncated to (a, b). A 2-D Gauss-Legendre integral over
 *   the triangle a < b.
 *   Per tensor (fp8_e4m3, fp8_e5m2): one block of N = rows * cols. Given
 *   the realised amax A this is exact: (e_max(A) + (N-1) I(A)/erf(A/sqrt2))
 *   / N. The test conditions on A because it is known, and because then the
 *   tensor-wide draw of A adds no spread to the comparison; amax = 0
 *   integrates the same expression over f_N (the bench's theory column).
 *   NVFP4: the block scale is E4M3(m * 448 / A) (torchao's nvfp4_quantize
 *   and NVIDIA's definition: per-tensor scale A / (6 * 448), block decode
 *   scale amax_b / 6 divided by it, rounded to E4M3), so blocks depend on
 *   A too. Given A, one block holds the max (block error at m = A) and the
 *   other nb - 1 are blocks conditioned on max < A (f_B restricted to
 *   (0, A) and renormalised by erf(A/sqrt2)^B). amax = 0: integrated over
 *   f_N(A).
 *   f16 / bf16: no scale; E[(x - RNE(x))^2] over the whole grid (|x| < 40).
 *   llm_int8: int8_ch, since a Gaussian column holds |w| >= 6 with
 *   probability ~2e-9 per weight (the test checks its data has none).
 *   A row that is not a multiple of the block ends with a short block of
 *   its own: the row's error mixes the full blocks' and the short block's.
 *
 * Rounding conventions, each from its definition: IEEE round to nearest
 * even for the element conversions and fp16 scales (ties have probability
 * zero here, so half-away rounding in llama.cpp's roundf gives the same
 * expectations); saturation to the element's largest finite value (OCP MX
 * v1.0 conversion, NVFP4); MXINT8 elements are k / 64 with k clamped to
 * [-127, 127] (microxcaling's symmetric clamp, max normal 1.984375); the MX
 * scale is 2^(floor(log2 amax) - emax_elem) (OCP MX v1.0 section 6.3).
 * Scales computed in fp32 in the definitions (amax / 127 ...) are rounded
 * to fp32 here too.
 *
 * Rejected: Monte Carlo (the point is a value that does not share the
 * sampling of the test); adaptive Gauss-Kronrod (needless: the integrand
 * is smooth between the known jump points, and fixed panels are cheaper and
 * deterministic); the textbook "step^2 / 12" approximations (off by
 * several 0.1 dB for the 4-bit formats, whose steps are not small against
 * the density).
 */
#ifndef VQS_WQ_THEORY_H
#define VQS_WQ_THEORY_H

#include <float.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define WQT_MAXG 520     /* largest element grid with a scale (int8: 255, e4m3: 253) */
#define WQT_PIECE 0.25   /* widest piece of one Gauss-Legendre rule, in sigmas */
#ifndef WQT_PANEL
#define WQT_PANEL 0.05   /* widest panel of the outer integral over a block's absmax */
#endif
#ifndef WQT_PANEL2
#define WQT_PANEL2 0.2   /* over Q4_1's (min, max) and a tensor's amax: smooth integrands */
#endif
#define WQT_XCUT 40.0    /* |x| beyond which phi(x) underflows: nothing to integrate */

/* 8-point Gauss-Legendre on [-1, 1] */
static const double wqt_gl_x[8] = {-0.9602898564975363, -0.7966664774136267, -0.5255324099163290,
                                   -0.1834346424956498, 0.1834346424956498,  0.5255324099163290,
                                   0.7966664774136267,  0.9602898564975363};
static const double wqt_gl_w[8] = {0.1012285362903763, 0.2223810344533745, 0.3137066458778873,
                                   0.3626837833783620, 0.3626837833783620, 0.3137066458778873,
                                   0.2223810344533745, 0.1012285362903763};

/* QLoRA's NormalFloat4 levels as bitsandbytes publishes them
 * (bitsandbytes/functional.py, get_4bit_type("nf4")), ascending. */
static const double wqt_nf4[16] = {
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
    -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
    0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
    0.7229568362236023, 1.0};

static inline double wqt_phi(double x) { return 0.3989422804014327 * exp(-0.5 * x * x); }
static inline double wqt_Phi(double x) { return 0.5 * erfc(-x / 1.4142135623730951); }
/* log erf(z), z > 0, without losing the small or the near-1 values */
static inline double wqt_logerf(double z)
{
    return z < 0.5 ? log(erf(z)) : log1p(-erfc(z));
}

/* ---- number formats, from their definitions ----------------------------- */

/* Binary float with ebits exponent bits, mbits mantissa bits, bias
 * 2^(ebits-1) - 1 and subnormals; special: 0 no Inf/NaN codes (MX fp6/fp4),
 * 1 IEEE (the all-ones exponent is Inf/NaN: E5M2, fp16, bf16), 2 "FN" (only
 * all-ones exponent and mantissa is NaN: E4M3). Writes the nonnegative
 * finite values below `below`, ascending, into v (cap entries); returns
 * the count. */
static inline int wqt_float_values(int ebits, int mbits, int special, double below, double *v,
                                   int cap)
{
    int bias = (1 << (ebits - 1)) - 1, emaxc = (1 << ebits) - 1, mmax = (1 << mbits) - 1, n = 0;
    for (int e = 0; e <= emaxc; e++)
        for (int m = 0; m <= mmax; m++) {
            if (special == 1 && e == emaxc)
                continue;
            if (special == 2 && e == emaxc && m == mmax)
                continue;
            double x = e == 0 ? ldexp((double)m, 1 - bias - mbits)
                              : ldexp(1.0 + ldexp((double)m, -mbits), e - bias);
            if (x >= below || n >= cap)
                return n;
            v[n++] = x;
        }
    return n;
}

/* x rounded to nearest even into a float format with mbits mantissa bits
 * and smallest normal exponent emin, saturated at maxv (x >= 0). */
static inline double wqt_round_fmt(double x, int mbits, int emin, double maxv)
{
    if (x <= 0)
        return 0;
    int e;
    frexp(x, &e);
    e -= 1; /* x in [2^e, 2^(e+1)) */
    if (e < emin)
        e = emin;
    double q = ldexp(1.0, e - mbits);
    double r = nearbyint(x / q) * q;
    return r > maxv ? maxv : r;
}
static inline double wqt_f32(double x) { return (double)(float)x; }
static inline double wqt_f16(double x)
{
    return x < 0 ? -wqt_round_fmt((double)(float)-x, 10, -14, 65504.0)
                 : wqt_round_fmt((double)(float)x, 10, -14, 65504.0);
}
static inline double wqt_e4m3(double x) { return wqt_round_fmt(x, 3, -6, 448.0); }

/* ---- the formats --------------------------------------------------------- */

typedef enum wqt_rule {
    WQT_R_NOSCALE, /* f16, bf16 */
    WQT_R_PROP,    /* scale = fp32(M / top), decode with the same scale */
    WQT_R_PROP16,  /* scale = fp32(M / top), decode with fp16(scale) (GGUF d) */
    WQT_R_MX,      /* scale = 2^(floor(log2 M) - emax) */
    WQT_R_NVFP4,   /* scale = E4M3(M * 448 / A) * A / 2688 */
    WQT_R_Q4_1     /* scale = fp32((max - min) / 15), offset min; fp16 both */
} wqt_rule;

typedef enum wqt_elem {
    WQT_E_F16, WQT_E_BF16, WQT_E_E4M3, WQT_E_E5M2, WQT_E_E2M3, WQT_E_E3M2, WQT_E_E2M1,
    WQT_E_INT8,   /* -127..127 */
    WQT_E_MXINT8, /* k / 64, k in -127..127 */
    WQT_E_Q4_0,   /* -7..8: levels of a block whose max is positive (d = max / -8) */
    WQT_E_Q4_1,   /* 0..15 */
    WQT_E_NF4
} wqt_elem;

typedef struct wqt_fmt {
    const char *name;
    int block;       /* elements per block along a row; 0: per row; -1: per tensor */
    wqt_rule rule;
    wqt_elem elem;
    double top;      /* PROP*: the grid value the block's absmax maps to */
    int max_pos;     /* staircase oriented by the max's sign (Q4_0): e_max = e(+m) */
    double known_db; /* issue 16's literature value, 0: none quoted */
} wqt_fmt;

static const wqt_fmt wqt_formats[] = {
    {"f16", 0, WQT_R_NOSCALE, WQT_E_F16, 0, 0, 0},
    {"bf16", 0, WQT_R_NOSCALE, WQT_E_BF16, 0, 0, 0},
    {"fp8_e4m3", -1, WQT_R_PROP, WQT_E_E4M3, 448, 0, 31.6},
    {"fp8_e4m3_ch", 0, WQT_R_PROP, WQT_E_E4M3, 448, 0, 0},
    {"fp8_e5m2", -1, WQT_R_PROP, WQT_E_E5M2, 57344, 0, 0},
    {"fp8_e5m2_ch", 0, WQT_R_PROP, WQT_E_E5M2, 57344, 0, 0},
    {"int8_ch", 0, WQT_R_PROP, WQT_E_INT8, 127, 0, 0},
    {"llm_int8", 0, WQT_R_PROP, WQT_E_INT8, 127, 0, 0},
    {"q8_0", 32, WQT_R_PROP16, WQT_E_INT8, 127, 0, 45.4},
    {"q4_0", 32, WQT_R_PROP16, WQT_E_Q4_0, 8, 1, 21.3},
    {"q4_1", 32, WQT_R_Q4_1, WQT_E_Q4_1, 15, 0, 0},
    {"nf4", 64, WQT_R_PROP, WQT_E_NF4, 1, 0, 20.7},
    {"mxfp8_e4m3", 32, WQT_R_MX, WQT_E_E4M3, 0, 0, 30.7},
    {"mxfp8_e5m2", 32, WQT_R_MX, WQT_E_E5M2, 0, 0, 0},
    {"mxfp6_e2m3", 32, WQT_R_MX, WQT_E_E2M3, 0, 0, 0},
    {"mxfp6_e3m2", 32, WQT_R_MX, WQT_E_E3M2, 0, 0, 0},
    {"mxfp4", 32, WQT_R_MX, WQT_E_E2M1, 0, 0, 18.8},
    {"mxint8", 32, WQT_R_MX, WQT_E_MXINT8, 0, 0, 41.6},
    {"nvfp4", 16, WQT_R_NVFP4, WQT_E_E2M1, 0, 0, 20.5},
};
#define WQT_NFORMATS (sizeof wqt_formats / sizeof wqt_formats[0])

static inline const wqt_fmt *wqt_find(const char *name)
{
    for (size_t i = 0; i < WQT_NFORMATS; i++)
        if (!strcmp(wqt_formats[i].name, name))
            return &wqt_formats[i];
    return NULL;
}

/* The signed element grid, ascending (g), and for MX its emax (the exponent
 * of the largest normal). */
typedef struct wqt_grid {
    int n;
    int emax;
    double g[WQT_MAXG];
} wqt_grid;

static inline void wqt_grid_symmetric(wqt_grid *G, const double *pos, int npos)
{
    /* pos[0] == 0 */
    G->n = 0;
    for (int i = npos - 1; i >= 1; i--)
        G->g[G->n++] = -pos[i];
    for (int i = 0; i < npos; i++)
        G->g[G->n++] = pos[i];
}

static inline void wqt_grid_make(wqt_elem e, wqt_grid *G)
{
    double pos[WQT_MAXG];
    int n = 0;
    switch (e) {
    case WQT_E_E4M3: n = wqt_float_values(4, 3, 2, HUGE_VAL, pos, WQT_MAXG / 2); break;
    case WQT_E_E5M2: n = wqt_float_values(5, 2, 1, HUGE_VAL, pos, WQT_MAXG / 2); break;
    case WQT_E_E2M3: n = wqt_float_values(2, 3, 0, HUGE_VAL, pos, WQT_MAXG / 2); break;
    case WQT_E_E3M2: n = wqt_float_values(3, 2, 0, HUGE_VAL, pos, WQT_MAXG / 2); break;
    case WQT_E_E2M1: n = wqt_float_values(2, 1, 0, HUGE_VAL, pos, WQT_MAXG / 2); break;
    case WQT_E_INT8:
    case WQT_E_MXINT8:
        for (n = 0; n <= 127; n++)
            pos[n] = e == WQT_E_INT8 ? n : n / 64.0;
        break;
    case WQT_E_Q4_0:
        G->n = 16;
        for (int i = 0; i < 16; i++)
            G->g[i] = i - 7;
        G->emax = 0;
        return;
    case WQT_E_Q4_1:
        G->n = 16;
        for (int i = 0; i < 16; i++)
            G->g[i] = i;
        G->emax = 0;
        return;
    case WQT_E_NF4:
        G->n = 16;
        for (int i = 0; i < 16; i++)
            G->g[i] = wqt_nf4[i];
        G->emax = 0;
        return;
    default: /* f16, bf16: wqt_noscale_mse */
        G->n = 0;
        G->emax = 0;
        return;
    }
    wqt_grid_symmetric(G, pos, n);
    int ex;
    frexp(pos[n - 1], &ex);
    G->emax = ex - 1;
}

/* A staircase in x: level j holds x in (t_{j-1}, t_j) with t_{-1} = -inf,
 * t_j = off + c (g_j + g_{j+1}) / 2, t_{n-1} = +inf (saturation), and
 * decodes to offd + cd g_j. */
typedef struct wqt_q {
    const wqt_grid *G;
    double c, cd, off, offd;
} wqt_q;

static inline double wqt_thr(const wqt_q *q, int j)
{
    if (j < 0)
        return -HUGE_VAL;
    if (j >= q->G->n - 1)
        return HUGE_VAL;
    return q->off + q->c * 0.5 * (q->G->g[j] + q->G->g[j + 1]);
}
static inline double wqt_val(const wqt_q *q, int j) { return q->offd + q->cd * q->G->g[j]; }

static inline double wqt_err1(const wqt_q *q, double x)
{
    int lo = 0, hi = q->G->n - 1; /* first j with x <= t_j */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (x <= wqt_thr(q, mid))
            hi = mid;
        else
            lo = mid + 1;
    }
    double d = x - wqt_val(q, lo);
    return d * d;
}

/* integral over (a, b) of (x - v)^2 phi(x) dx, in the local variable u =
 * x - v (no cancellation) */
static inline double wqt_seg(double a, double b, double v)
{
    if (a < -WQT_XCUT)
        a = -WQT_XCUT;
    if (b > WQT_XCUT)
        b = WQT_XCUT;
    if (!(b > a))
        return 0;
    int np = (int)ceil((b - a) / WQT_PIECE);
    double h = (b - a) / np, s = 0;
    for (int p = 0; p < np; p++) {
        double lo = a + p * h, mid = lo + 0.5 * h, t = 0;
        for (int k = 0; k < 8; k++) {
            double x = mid + 0.5 * h * wqt_gl_x[k], u = x - v;
            t += wqt_gl_w[k] * u * u * wqt_phi(x);
        }
        s += 0.5 * h * t;
    }
    return s;
}

/* integral over (a, b) of (x - Q(x))^2 phi(x) dx */
static inline double wqt_ierr(const wqt_q *q, double a, double b)
{
    double s = 0;
    for (int j = 0; j < q->G->n; j++) {
        double lo = wqt_thr(q, j - 1), hi = wqt_thr(q, j);
        if (hi <= a || lo >= b)
            continue;
        s += wqt_seg(lo > a ? lo : a, hi < b ? hi : b, wqt_val(q, j));
    }
    return s;
}

/* ---- f16 / bf16: no scale -------------------------------------------------- */

static inline double wqt_noscale_mse(wqt_elem e)
{
    int mb = e == WQT_E_F16 ? 10 : 7, eb = e == WQT_E_F16 ? 5 : 8;
    int cap = 1 << 16;
    double *pos = (double *)malloc((size_t)cap * sizeof *pos);
    if (!pos)
        return -1;
    int n = wqt_float_values(eb, mb, 1, 2 * WQT_XCUT, pos, cap);
    double s = 0;
    for (int i = 0; i + 1 < n; i++) {
        /* value pos[i] holds (mid(i-1, i), mid(i, i+1)) */
        double lo = i ? 0.5 * (pos[i - 1] + pos[i]) : 0, hi = 0.5 * (pos[i] + pos[i + 1]);
        if (lo >= WQT_XCUT)
            break;
        s += wqt_seg(lo, hi, pos[i]);
    }
    free(pos);
    return 2 * s; /* both signs */
}

/* ---- one block given its absmax m ------------------------------------------ */

typedef struct wqt_ctx {
    const wqt_fmt *f;
    wqt_grid G;
    double A; /* NVFP4: the tensor's amax */
} wqt_ctx;

static inline void wqt_quantizer(const wqt_ctx *C, double m, wqt_q *q)
{
    q->G = &C->G;
    q->off = q->offd = 0;
    switch (C->f->rule) {
    case WQT_R_PROP:
        q->c = q->cd = wqt_f32(m / C->f->top);
        break;
    case WQT_R_PROP16:
        q->c = wqt_f32(m / C->f->top);
        q->cd = fabs(wqt_f16(q->c));
        break;
    case WQT_R_MX: {
        int e;
        frexp(m, &e);
        q->c = q->cd = ldexp(1.0, e - 1 - C->G.emax);
        break;
    }
    case WQT_R_NVFP4:
        q->c = q->cd = wqt_e4m3(wqt_f32(m * wqt_f32(448.0 / C->A))) * wqt_f32(C->A / 2688.0);
        break;
    default:
        q->c = q->cd = 1;
        break;
    }
}

/* E[error of a block of B | absmax m] */
static inline double wqt_block_err(const wqt_ctx *C, int B, double m)
{
    wqt_q q;
    wqt_quantizer(C, m, &q);
    double emax = C->f->max_pos ? wqt_err1(&q, m) : 0.5 * (wqt_err1(&q, m) + wqt_err1(&q, -m));
    if (B == 1)
        return emax;
    return emax + (B - 1) * wqt_ierr(&q, -m, m) / erf(m / 1.4142135623730951);
}

static inline double wqt_logf_max(int B, double m)
{
    return log(2.0 * B) - 0.5 * m * m - 0.9189385332046727 +
           (B - 1) * wqt_logerf(m / 1.4142135623730951);
}

/* Where f_B (B iid |N(0,1)|, their max) holds all but e^-40 of its mass:
 * P(M < lo) = erf(lo/sqrt2)^B, P(M > hi) <= B erfc(hi/sqrt2). */
static inline void wqt_range(double B, double *lo, double *hi)
{
    double a = 0, b = 40;
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (a + b);
        if (B * wqt_logerf(mid / 1.4142135623730951) < -40)
            a = mid;
        else
            b = mid;
    }
    *lo = a;
    a = 0, b = 40;
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (a + b);
        if (log(B) + log(erfc(mid / 1.4142135623730951)) > -40)
            a = mid;
        else
            b = mid;
    }
    *hi = b;
}

static inline int wqt_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The points in (lo, hi) where the outer integrand jumps (see the file
 * comment), sorted with lo and hi at the ends; *n points. The caller frees. */
static inline double *wqt_breaks(const wqt_ctx *C, double lo, double hi, int *n)
{
    int cap = 64, k = 0;
    double *p = (double *)malloc((size_t)cap * sizeof *p);
    if (!p)
        return NULL;
#define WQT_PUSH(x)                                                                                \
    do {                                                                                           \
        if (k == cap) {                                                                            \
            double *np_ = (double *)realloc(p, (size_t)(cap *= 2) * sizeof *p);                    \
            if (!np_) {                                                                            \
                free(p);                                                                           \
                return NULL;                                                                       \
            }                                                                                      \
            p = np_;                                                                               \
        }                                                                                          \
        p[k++] = (x);                                                                              \
    } while (0)
    WQT_PUSH(lo);
    WQT_PUSH(hi);
    if (C->f->rule == WQT_R_MX) {
        int e;
        frexp(lo, &e);
        for (double t = ldexp(1.0, e); t < hi; t *= 2)
            WQT_PUSH(t);
    } else if (C->f->rule == WQT_R_NVFP4) {
        /* m * 448 / A crosses an E4M3 rounding midpoint */
        double v[WQT_MAXG];
        int nv = wqt_float_values(4, 3, 2, HUGE_VAL, v, WQT_MAXG);
        for (int i = 0; i + 1 < nv; i++) {
            double t = 0.5 * (v[i] + v[i + 1]) * C->A / 448.0;
            if (t > lo && t < hi)
                WQT_PUSH(t);
        }
    }
    if (C->f->rule == WQT_R_MX || C->f->rule == WQT_R_NVFP4) {
        /* within each piece the staircase is fixed: +-m crossing a decision point */
        qsort(p, (size_t)k, sizeof *p, wqt_cmp);
        int k0 = k;
        for (int i = 0; i + 1 < k0; i++) {
            wqt_q q;
            wqt_quantizer(C, 0.5 * (p[i] + p[i + 1]), &q);
            for (int j = 0; j + 1 < C->G.n; j++) {
                double t = fabs(wqt_thr(&q, j));
                if (t > p[i] && t < p[i + 1])
                    WQT_PUSH(t);
            }
        }
    }
#undef WQT_PUSH
    qsort(p, (size_t)k, sizeof *p, wqt_cmp);
    *n = k;
    return p;
}

/* integral over (lo, hi) of f_B(m) E[block error | m] dm, and (mass) of
 * f_B(m) dm */
static inline double wqt_block_int(const wqt_ctx *C, int B, double lo, double hi, double *mass)
{
    int nb = 0;
    double *br = wqt_breaks(C, lo, hi, &nb);
    if (!br)
        return -1;
    double s = 0, w = 0;
    for (int i = 0; i + 1 < nb; i++) {
        double a = br[i], b = br[i + 1];
        if (!(b > a))
            continue;
        int np = (int)ceil((b - a) / WQT_PANEL);
        double h = (b - a) / np;
        for (int p = 0; p < np; p++) {
            double mid = a + (p + 0.5) * h;
            for (int k = 0; k < 8; k++) {
                double m = mid + 0.5 * h * wqt_gl_x[k];
                double f = exp(wqt_logf_max(B, m)) * 0.5 * h * wqt_gl_w[k];
                s += f * wqt_block_err(C, B, m);
                w += f;
            }
        }
    }
    free(br);
    if (mass)
        *mass = w;
    return s;
}

/* MSE of a block of B (no tensor conditioning) */
static inline double wqt_block_mse(const wqt_ctx *C, int B)
{
    double lo, hi;
    wqt_range(B, &lo, &hi);
    return wqt_block_int(C, B, lo, hi, NULL) / B;
}

/* ---- Q4_1: conditioned on (min, max) -------------------------------------- */

static inline double wqt_q41_err(const wqt_ctx *C, int B, double a, double b)
{
    wqt_q q;
    q.G = &C->G;
    q.c = wqt_f32((b - a) / 15.0);
    q.cd = fabs(wqt_f16(q.c));
    q.off = a;
    q.offd = wqt_f16(a);
    double e = wqt_err1(&q, a) + wqt_err1(&q, b);
    if (B > 2)
        e += (B - 2) * wqt_ierr(&q, a, b) / (wqt_Phi(b) - wqt_Phi(a));
    return e;
}

static inline double wqt_q41_mse(const wqt_ctx *C, int B)
{
    if (B == 1) /* min = max = x: d = 0, the value is fp16(x) */
        return wqt_noscale_mse(WQT_E_F16);
    double lo, hi;
    wqt_range(B, &lo, &hi); /* of the absmax: covers min and max */
    /* P(max < -c) = Phi(-c)^B: below e^-40 for c where B log Phi(-c) = -40 */
    double c = 0, cb = 40;
    for (int i = 0; i < 200; i++) {
        double mid = 0.5 * (c + cb);
        if (B * log(wqt_Phi(-mid)) > -40)
            c = mid;
        else
            cb = mid;
    }
    double L = -hi, H = hi, s = 0, Ha = c < hi ? c : hi; /* min in (L, Ha), max in (a, H) */
    int npa = (int)ceil((Ha - L) / WQT_PANEL2);
    double ha = (Ha - L) / npa;
    for (int pa = 0; pa < npa; pa++)
        for (int ka = 0; ka < 8; ka++) {
            double a = L + (pa + 0.5) * ha + 0.5 * ha * wqt_gl_x[ka];
            double wa = 0.5 * ha * wqt_gl_w[ka] * wqt_phi(a);
            if (wa < 1e-300)
                continue;
            double a0 = a > -c ? a : -c; /* the max is above -c too */
            int npb = (int)ceil((H - a0) / WQT_PANEL2);
            double hb = (H - a0) / npb;
            for (int pb = 0; pb < npb; pb++)
                for (int kb = 0; kb < 8; kb++) {
                    double b = a0 + (pb + 0.5) * hb + 0.5 * hb * wqt_gl_x[kb];
                    double P = wqt_Phi(b) - wqt_Phi(a);
                    if (!(P > 0))
                        continue;
                    double f = (double)B * (B - 1) * wa * 0.5 * hb * wqt_gl_w[kb] * wqt_phi(b) *
                               pow(P, B - 2);
                    if (f < 1e-300)
                        continue;
                    s += f * wqt_q41_err(C, B, a, b);
                }
        }
    return s / B;
}

/* ---- whole tensors ----------------------------------------------------------- */

/* MSE of a row-blocked format over rows of `cols` (full blocks and a short
 * one), no tensor conditioning */
static inline double wqt_rows_mse(const wqt_ctx *C, size_t cols)
{
    size_t B = C->f->block > 0 ? (size_t)C->f->block : cols;
    size_t nfull = cols / B, r = cols % B;
    double s = 0;
    if (nfull) {
        double m = C->f->rule == WQT_R_Q4_1 ? wqt_q41_mse(C, (int)B) : wqt_block_mse(C, (int)B);
        s += (double)(nfull * B) * m;
    }
    if (r) {
        double m = C->f->rule == WQT_R_Q4_1 ? wqt_q41_mse(C, (int)r) : wqt_block_mse(C, (int)r);
        s += (double)r * m;
    }
    return s / (double)cols;
}

/* Per-tensor fp8 given A, N weights */
static inline double wqt_tensor_given(const wqt_ctx *C, double N, double A)
{
    wqt_q q;
    wqt_quantizer(C, A, &q);
    double emax = 0.5 * (wqt_err1(&q, A) + wqt_err1(&q, -A));
    return (emax + (N - 1) * wqt_ierr(&q, -A, A) / erf(A / 1.4142135623730951)) / N;
}

/* NVFP4 given A: blocks conditioned on max < A, one full block at max A */
static inline double wqt_nvfp4_given(wqt_ctx *C, size_t rows, size_t cols, double A)
{
    C->A = A;
    size_t B = (size_t)C->f->block, nfull = cols / B, r = cols % B;
    double N = (double)rows * (double)cols, s = 0, lo, hi, mass;
    if (nfull) {
        wqt_range((double)B, &lo, &hi);
        double e = wqt_block_int(C, (int)B, lo, A, &mass) / mass; /* E[err | max < A] */
        s += (double)rows * (double)nfull * e;
        s += wqt_block_err(C, (int)B, A) - e;
    }
    if (r) {
        wqt_range((double)r, &lo, &hi);
        s += (double)rows * wqt_block_int(C, (int)r, lo, A < hi ? A : hi, &mass) / mass;
    }
    return s / N;
}

/* MSE per weight; see the file comment. */
static inline double wqt_mse(const char *format, size_t rows, size_t cols, double amax)
{
    const wqt_fmt *f = wqt_find(format);
    if (!f || !rows || !cols)
        return -1;
    wqt_ctx C;
    memset(&C, 0, sizeof C);
    C.f = f;
    wqt_grid_make(f->elem, &C.G);
    double N = (double)rows * (double)cols;
    if (f->rule == WQT_R_NOSCALE)
        return wqt_noscale_mse(f->elem);
    if (f->block >= 0 && f->rule != WQT_R_NVFP4)
        return wqt_rows_mse(&C, cols);
    if (amax > 0)
        return f->rule == WQT_R_NVFP4 ? wqt_nvfp4_given(&C, rows, cols, amax)
                                      : wqt_tensor_given(&C, N, amax);
    /* average over the tensor's amax A: density f_N */
    double lo, hi, s = 0, w = 0;
    wqt_range(N, &lo, &hi);
    int np = (int)ceil((hi - lo) / WQT_PANEL2);
    double h = (hi - lo) / np;
    for (int p = 0; p < np; p++)
        for (int k = 0; k < 8; k++) {
            double A = lo + (p + 0.5) * h + 0.5 * h * wqt_gl_x[k];
            double fa = exp(log(2.0 * N) - 0.5 * A * A - 0.9189385332046727 +
                            (N - 1) * wqt_logerf(A / 1.4142135623730951)) *
                        0.5 * h * wqt_gl_w[k];
            if (fa < 1e-300)
                continue;
            s += fa * (f->rule == WQT_R_NVFP4 ? wqt_nvfp4_given(&C, rows, cols, A)
                                              : wqt_tensor_given(&C, N, A));
            w += fa;
        }
    return s / w;
}

static inline double wqt_sqnr_db(const char *format, size_t rows, size_t cols, double amax)
{
    double m = wqt_mse(format, rows, cols, amax);
    return m > 0 ? -10.0 * log10(m) : m;
}

static inline double wqt_known_db(const char *format)
{
    const wqt_fmt *f = wqt_find(format);
    return f ? f->known_db : 0;
}

#endif
