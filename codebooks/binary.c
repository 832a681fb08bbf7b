/*
 * binary.c: 1-bit codes (BIN stage) with a RaBitQ-style asymmetric
 * estimator of inner products and distances.
 *
 * Code of x (code_size = ceil(d/8) + 8 bytes):
 *   bytes [0, ceil(d/8)): bit j (byte j/8, bit j%8, LSB first) is 1 iff
 *                         x_j - c_j >= 0, c = the training mean; pad bits 0
 *   then float r = |x - c| and float a = <o_bar, o>, native byte order, where
 *   o = (x - c) / r and o_bar = s / sqrt(d) with s_j = +-1 from the bits, so
 *   a = |x - c|_1 / (sqrt(d) r) in (0, 1] (a = 1 when x == c).
 *
 * Estimator (RaBitQ, Gao & Long, SIGMOD 2024): for any vector v,
 *   <x - c, v> ~ r <o_bar, v> / a = r * (sum_j s_j v_j) / (sqrt(d) a).
 * It is unbiased over a random rotation of the space; that rotation is a
 * preceding ROT stage in the spec ("ROT,BIN"), not part of BIN.
 *   L2 score:  |q - c|^2 + r^2 - 2 * est<x - c, q - c>   (estimate of |q - x|^2)
 *   IP score:  <q, c> + est<x - c, q>                   (estimate of <q, x>)
 * NOTE: unlike the other quantizers, the score estimates the distance to the
 * ORIGINAL vector x, not to decode(code) (allowed by the stage contract).
 *
 * decode: the best L2 reconstruction from the stored data, c + beta * s with
 * beta = <x - c, s> / d = r a / sqrt(d) (error r^2 (1 - a^2)). Rejected:
 * c + r o_bar / a, the reconstruction whose inner products equal the
 * estimator (error r^2 (1/a^2 - 1), worse by a factor 1/a^2), and
 * c + r o_bar (error 2 r^2 (1 - a)).
 *
 * Design decisions:
 * - The query stays float (centred for L2); the score sums +-v_j over the
 *   bits through per-byte tables of partial sums (one look-up per 8
 *   dimensions, the query state grows by 1 KB per code byte; beyond 1024
 *   code bytes the scorer walks the bits). Rejected for now: 4-bit query
 *   quantisation with popcount kernels (a speed optimisation for
 *   index/kernels; this is the reference scorer).
 * - Scores are clamped to +-FLT_MAX (a huge input's r^2 overflows float).
 * - Non-finite inputs (NaN, +-Inf) are encoded as if the component equalled
 *   the mean, so codes and scores are always finite.
 * - Hamming distance between sign codes is what plain binary hashing ranks
 *   by; the stored r and a are what make the asymmetric estimate better.
 */
#include "codebook_internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct bin {
    size_t d;
    size_t nb; /* ceil(d / 8) bit bytes */
    float *c;  /* d: training mean */
} bin;

static int bin_train(vqs_stage *s, size_t n, const float *x, const vqs_codec_opts *o)
{
    (void)o;
    bin *B = s->impl;
    size_t d = B->d;
    if (n < 1)
        return vqs_seterr(VQS_EINVAL, "%s: training needs at least 1 vector (got 0)", s->token);
    double *acc = calloc(d, sizeof(double));
    if (!acc)
        return vqs_seterr(VQS_ENOMEM, "%s: train", s->token);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            acc[j] += x[i * d + j];
    for (size_t j = 0; j < d; j++)
        B->c[j] = (float)(acc[j] / (double)n);
    free(acc);
    return 0;
}

static int bin_encode(const vqs_stage *s, size_t n, const float *x, uint8_t *codes)
{
    const bin *B = s->impl;
    size_t d = B->d, cs = s->code_size;
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * d;
        uint8_t *c = codes + i * cs;
        memset(c, 0, B->nb);
        double r2 = 0, l1 = 0;
        for (size_t j = 0; j < d; j++) {
            float t = xi[j] - B->c[j];
            if (!isfinite(t))
                t = 0;
            if (t >= 0)
                c[j / 8] |= (uint8_t)(1u << (j % 8));
            r2 += (double)t * t;
            l1 += fabs((double)t);
        }
        double r = sqrt(r2);
        float fr = (float)r, fa = r > 0 ? (float)(l1 / (sqrt((double)d) * r)) : 1.0f;
        if (!(fa > 0)) /* r > 0 underflowed in l1: cannot happen for floats, but keep a > 0 */
            fa = 1.0f;
        memcpy(c + B->nb, &fr, 4);
        memcpy(c + B->nb + 4, &fa, 4);
    }
    return 0;
}

static void bin_decode(const vqs_stage *s, size_t n, const uint8_t *codes, float *x)
{
    const bin *B = s->impl;
    size_t d = B->d, cs = s->code_size;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = codes + i * cs;
        float r, a;
        memcpy(&r, c + B->nb, 4);
        memcpy(&a, c + B->nb + 4, 4);
        float beta = (float)((double)r * a / sqrt((double)d));
        if (!isfinite(beta))
            beta = 0;
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = B->c[j] + ((c[j / 8] >> (j % 8)) & 1 ? beta : -beta);
    }
}

/* Byte tables (sum of v_j over the set bits of each byte value) make the
 * score 1 look-up per 8 dimensions; they cost nb KB, so above this many code
 * bytes the scorer walks the bits instead. */
#define BIN_LUT_MAX_BYTES 1024

/* prepared query, 8-byte aligned: */
typedef struct bin_query {
    uint32_t metric;
    float cst;    /* L2: |q - c|^2; IP: <q, c> */
    float sumv;   /* sum_j v_j */
    uint32_t lut; /* 1 if tab follows v */
    float v[];    /* d: L2: q - c; IP: q; then, if lut, tab: nb * 256 floats,
                     tab[t * 256 + b] = sum of v_{8t+k} over the bits k set in b */
} bin_query;

static int use_lut(const bin *B) { return B->nb <= BIN_LUT_MAX_BYTES; }

static size_t bin_query_size(const vqs_stage *s)
{
    const bin *B = s->impl;
    return sizeof(bin_query) + sizeof(float) * (B->d + (use_lut(B) ? B->nb * 256 : 0));
}

static void bin_query_prepare(const vqs_stage *s, vqs_metric m, const float *q, void *state)
{
    const bin *B = s->impl;
    bin_query *Q = state;
    double cst = 0, sum = 0;
    for (size_t j = 0; j < B->d; j++) {
        float v = m == VQS_METRIC_L2 ? q[j] - B->c[j] : q[j];
        Q->v[j] = v;
        sum += v;
        cst += m == VQS_METRIC_L2 ? (double)v * v : (double)q[j] * B->c[j];
    }
    Q->metric = (uint32_t)m;
    Q->cst = (float)cst;
    Q->sumv = (float)sum;
    Q->lut = (uint32_t)use_lut(B);
    if (Q->lut) {
        float *tab = Q->v + B->d;
        for (size_t t = 0; t < B->nb; t++) {
            float *T = tab + t * 256;
            T[0] = 0;
            for (unsigned b = 1; b < 256; b++) {
                size_t j = 8 * t + (size_t)__builtin_ctz(b);
                T[b] = T[b & (b - 1)] + (j < B->d ? Q->v[j] : 0.0f);
            }
        }
    }
}

static void bin_query_score(const vqs_stage *s, const void *state, size_t n, const uint8_t *codes,
                            float *out)
{
    const bin *B = s->impl;
    const bin_query *Q = state;
    size_t d = B->d, cs = s->code_size;
    float isd = (float)(1.0 / sqrt((double)d));
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = codes + i * cs;
        float pos = 0; /* sum of v_j over set bits */
        if (Q->lut) {
            const float *tab = Q->v + d;
            for (size_t t = 0; t < B->nb; t++)
                pos += tab[t * 256 + c[t]];
        } else {
            for (size_t j = 0; j < d; j++)
                pos += Q->v[j] * (float)((c[j / 8] >> (j % 8)) & 1);
        }
        float r, a;
        memcpy(&r, c + B->nb, 4);
        memcpy(&a, c + B->nb + 4, 4);
        /* double: r^2 of a huge (clamped) input must not make Inf - Inf */
        double est = a > 0 ? (double)r * ((2 * pos - Q->sumv) * isd) / a : 0.0;
        if (!isfinite(est))
            est = 0;
        double v = Q->metric == VQS_METRIC_L2 ? Q->cst + (double)r * r - 2 * est : Q->cst + est;
        out[i] = (float)(v > FLT_MAX ? FLT_MAX : v < -FLT_MAX ? -FLT_MAX : v);
    }
}

static void bin_query_view(const vqs_stage *s, const void *state, vqs_codec_view *v)
{
    const bin *B = s->impl;
    const bin_query *Q = state;
    if (!Q->lut)
        return;
    v->kind = VQS_VIEW_BIN;
    v->l2 = Q->metric == VQS_METRIC_L2;
    v->tab = Q->v + B->d;
    v->nb = B->nb;
    v->d = B->d;
    v->cst = Q->cst;
    v->sumv = Q->sumv;
    v->isd = (float)(1.0 / sqrt((double)B->d));
}

/* payload: u64 d, c[d] floats */
static int bin_save(const vqs_stage *s, vqs_wbuf *w)
{
    const bin *B = s->impl;
    vqs_wbuf_u64(w, B->d);
    vqs_wbuf_f32(w, B->c, B->d);
    return 0;
}

static int bin_load(vqs_stage *s, vqs_rbuf *r)
{
    bin *B = s->impl;
    int rc;
    if ((rc = vqs_rbuf_expect(r, B->d, "BIN dimension")) || (rc = vqs_rbuf_f32(r, B->c, B->d)))
        return rc;
    for (size_t j = 0; j < B->d; j++)
        if (!isfinite(B->c[j]))
            return vqs_seterr(VQS_ECORRUPT, "%s payload: mean[%zu] is not finite", s->token, j);
    return 0;
}

static void bin_destroy(vqs_stage *s)
{
    bin *B = s->impl;
    if (B) {
        free(B->c);
        free(B);
    }
    s->impl = NULL;
}

static const vqs_stage_ops bin_ops = {
    .family = "BIN",
    .is_quantizer = 1,
    .train = bin_train,
    .encode = bin_encode,
    .decode = bin_decode,
    .query_size = bin_query_size,
    .query_prepare = bin_query_prepare,
    .query_score = bin_query_score,
    .query_view = bin_query_view,
    .save = bin_save,
    .load = bin_load,
    .destroy = bin_destroy,
};

int vqs_stage_bin_new(const char *tok, const char *next, vqs_stage *s)
{
    (void)next;
    if (strncmp(tok, "BIN", 3) != 0)
        return VQS_ENOTFOUND;
    if (tok[3] != '\0')
        return vqs_seterr(VQS_ESPEC, "'%s': unknown binary quantizer (the only one is BIN)", tok);
    bin *B = calloc(1, sizeof *B);
    if (!B || !(B->c = calloc(s->d_in, sizeof(float)))) {
        free(B);
        return vqs_seterr(VQS_ENOMEM, "%s", tok);
    }
    B->d = s->d_in;
    B->nb = (s->d_in + 7) / 8;
    s->ops = &bin_ops;
    s->d_out = s->d_in;
    s->code_size = B->nb + 8;
    s->impl = B;
    return 0;
}
