/*
 * transform.c: the transform stages PCA, ROT, HAD (alias RR) and OPQ: their
 * tokens, and the linear map y = A x + c that PCA, ROT and OPQ share.
 *
 * Tokens (case-sensitive, as FAISS's index_factory):
 *   PCA<N>[W][R]   PCA to N <= d dims; W whitens (each output divided by the
 *                  square root of its variance), R applies a random orthogonal
 *                  N x N rotation after the projection (e.g. PCA384R, PCA256WR).
 *   PCA<P>%[W][R]  the same with N = P percent of d, rounded to the nearest
 *                  integer, at least 1 (PCA50% on d = 768 is PCA384; P may
 *                  have decimals, 0 < P <= 100). The canonical spec
 *                  (vqs_codec_spec) names the resolved N.
 *   ROT            random orthogonal d x d rotation (Haar).
 *   HAD[1|2|3], RR randomised fast Walsh-Hadamard transform: `rounds` times
 *                  (random signs, then the orthonormal FWHT) on the input
 *                  zero-padded to d_out = the next power of two >= d. HAD and
 *                  RR mean 3 rounds (FALCONN's pseudo-random rotation).
 *   OPQ<M>[_<N>]   OPQ rotation (N x d, orthonormal rows, N <= d, default d)
 *                  learned for a PQ with M sub-quantizers; the number of
 *                  centroids follows the next token (PQ<m>x<b>: 2^b), else 256.
 *
 * Design decisions:
 * - PCA, ROT and OPQ are one linear map y = A x + c with a stored pseudo-
 *   inverse x = B y + mean (B = A^T when A has orthonormal rows, i.e. unless
 *   PCA whitens), applied with one sgemm per batch; the bias c = -A mean is
 *   put into y before the sgemm accumulates A x, as FAISS's LinearTransform
 *   does. Rejected: subtracting the mean row by row before the product (one
 *   more pass over x and a scratch buffer per call, for no accuracy gained
 *   that matters at float precision).
 * - Queries for inner products do not go through apply: with reverse
 *   x = B y + mean, <q, reverse(y)> = <B^T q, y> + <q, mean>, so the codec
 *   maps the query by B^T and carries <q, mean> as a constant
 *   (ip_query). apply's bias -A mean, right for distances, would add the
 *   per-vector term -<A mean, y> to every score (FAISS's PCAMatrix does
 *   this: PCA + inner product then ranks by the wrong quantity). For
 *   whitened PCA B^T = R W^-1 P, not A = R W P: inner products are those
 *   of the decoded vectors in the input space (distances stay those of the
 *   whitened space, as FAISS). HAD needs nothing: it is orthonormal and
 *   has no mean.
 * - One file per family: pca.c (PCA), rotation.c (ROT, HAD), opq.c (OPQ),
 *   each with its training, payload and ops table and the design decisions
 *   behind them; this file parses the tokens and holds the linear map they
 *   share (transform_internal.h).
 */
#define _GNU_SOURCE
#include "transform_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DIM (1u << 20)
#define HAD_ROUNDS_DEFAULT 3

/* ---- parsing --------------------------------------------------------------- */

/* Parses a decimal number at *p (advancing it). Returns 0 if there are no
 * digits or the value exceeds MAX_DIM (then *v = MAX_DIM + 1). */
static int parse_num(const char **p, size_t *v)
{
    const char *q = *p;
    size_t x = 0;
    while (*q >= '0' && *q <= '9') {
        if (x <= MAX_DIM)
            x = x * 10 + (size_t)(*q - '0');
        q++;
    }
    if (q == *p)
        return 0;
    *v = x > MAX_DIM ? MAX_DIM + 1 : x;
    *p = q;
    return 1;
}

/* PCA<P>%: P (digits with an optional decimal part, 0 < P <= 100) percent
 * of d_in, rounded to the nearest integer and at least 1 (PCA50% on d = 768
 * is PCA384; on d = 3, PCA50% is 2: halves round up). *p is just past the
 * integer part and is left after the '%'. */
static int parse_percent(const char *tok, const char **p, size_t d, size_t *n)
{
    const char *q = tok + 3;
    char *end;
    double pc = strtod(q, &end);
    if (end == q || *end != '%' || !(pc > 0) || pc > 100)
        return vqs_seterr(VQS_ESPEC, "%s: expected PCA<P>%% with 0 < P <= 100 (a percentage of d = %zu)", tok, d);
    double v = floor(pc / 100.0 * (double)d + 0.5);
    *n = v < 1 ? 1 : (size_t)v;
    *p = end + 1;
    return 0;
}

static size_t next_pow2(size_t d)
{
    size_t p = 1;
    while (p < d)
        p <<= 1;
    return p;
}

/* Centroids per OPQ sub-quantizer from the token after OPQ: PQ<m>x<b>
 * gives 2^b (b in 1..8), anything else 256. */
static size_t opq_ksub(const char *next)
{
    if (!next || strncmp(next, "PQ", 2) != 0)
        return 256;
    size_t m, b;
    if (vqs_spec_parse_mx(next + 2, &m, &b) || b < 1 || b > 8)
        return 256;
    return (size_t)1 << b;
}

static xform *new_xform(int kind)
{
    xform *t = calloc(1, sizeof *t);
    if (t)
        t->kind = kind;
    return t;
}

int vqs_stage_transform_new(const char *tok, const char *next, vqs_stage *s)
{
    const size_t d = s->d_in;
    xform *t;
    if (strncmp(tok, "PCA", 3) == 0) {
        const char *p = tok + 3;
        size_t n;
        int pct = 0;
        if (!parse_num(&p, &n))
            return vqs_seterr(VQS_ESPEC, "%s: expected PCA<N>[W][R] or PCA<P>%% (missing output dimension)", tok);
        if (*p == '%' || *p == '.') {
            int rc = parse_percent(tok, &p, d, &n);
            if (rc)
                return rc;
            pct = 1;
        }
        if (n == 0)
            return vqs_seterr(VQS_ESPEC, "%s: output dimension must be at least 1", tok);
        if (n > d)
            return vqs_seterr(VQS_ESPEC, "%s: output %zu is larger than d = %zu", tok, n, d);
        int w = 0, r = 0;
        for (; *p; p++) {
            if (*p == 'W' && !w)
                w = 1;
            else if (*p == 'R' && !r)
                r = 1;
            else
                return vqs_seterr(VQS_ESPEC, "%s: unexpected suffix '%s' (PCA<N> takes W and/or R)", tok, p);
        }
        if (!(t = new_xform(K_PCA)))
            return vqs_seterr(VQS_ENOMEM, "%s", tok);
        t->whiten = w;
        t->rotate = r;
        s->ops = &vqs_xf_pca_ops;
        s->d_out = n;
        if (pct) /* the canonical token names the resolved dimension */
            snprintf(s->token, sizeof s->token, "PCA%zu%s%s", n, w ? "W" : "", r ? "R" : "");
    } else if (strncmp(tok, "ROT", 3) == 0) {
        if (tok[3])
            return vqs_seterr(VQS_ESPEC, "%s: unexpected suffix '%s' (ROT takes no parameters)", tok, tok + 3);
        if (!(t = new_xform(K_ROT)))
            return vqs_seterr(VQS_ENOMEM, "%s", tok);
        s->ops = &vqs_xf_rot_ops;
        s->d_out = d;
    } else if (strncmp(tok, "HAD", 3) == 0 || strncmp(tok, "RR", 2) == 0) {
        int rounds = HAD_ROUNDS_DEFAULT;
        const char *p = tok + (tok[0] == 'H' ? 3 : 2);
        if (tok[0] == 'H' && *p >= '1' && *p <= '3' && !p[1])
            rounds = *p++ - '0';
        if (*p)
            return vqs_seterr(VQS_ESPEC, "%s: expected HAD, HAD1, HAD2, HAD3 or RR", tok);
        if (next_pow2(d) > MAX_DIM)
            return vqs_seterr(VQS_ESPEC, "%s: padded dimension %zu too large", tok, next_pow2(d));
        if (!(t = new_xform(K_HAD)))
            return vqs_seterr(VQS_ENOMEM, "%s", tok);
        t->rounds = rounds;
        s->ops = &vqs_xf_had_ops;
        s->d_out = next_pow2(d);
    } else if (strncmp(tok, "OPQ", 3) == 0) {
        const char *p = tok + 3;
        size_t M, n = d;
        if (!parse_num(&p, &M))
            return vqs_seterr(VQS_ESPEC, "%s: expected OPQ<M>[_<N>] (missing M)", tok);
        if (*p == '_') {
            p++;
            if (!parse_num(&p, &n))
                return vqs_seterr(VQS_ESPEC, "%s: expected OPQ<M>_<N> (missing N)", tok);
        }
        if (*p)
            return vqs_seterr(VQS_ESPEC, "%s: unexpected suffix '%s' (expected OPQ<M>[_<N>])", tok, p);
        if (n == 0 || n > d)
            return vqs_seterr(VQS_ESPEC, "%s: output dimension %zu must be in 1..d = %zu", tok, n, d);
        if (M == 0 || n % M)
            return vqs_seterr(VQS_ESPEC, "%s: M = %zu does not divide the output dimension %zu", tok, M, n);
        if (!(t = new_xform(K_OPQ)))
            return vqs_seterr(VQS_ENOMEM, "%s", tok);
        t->M = M;
        t->ksub = opq_ksub(next);
        s->ops = &vqs_xf_opq_ops;
        s->d_out = n;
    } else {
        return VQS_ENOTFOUND;
    }
    s->code_size = 0;
    s->impl = t;
    return 0;
}

/* ---- shared linear machinery -------------------------------------------------- */

void vqs_xf_destroy(vqs_stage *s)
{
    xform *t = s->impl;
    if (!t)
        return;
    free(t->A);
    free(t->B);
    free(t->c);
    free(t->mean);
    free(t->eig);
    free(t->P);
    free(t->R);
    free(t->signs);
    free(t);
    s->impl = NULL;
}

/* Drops trained state (before retraining or loading). */
void vqs_xf_reset(xform *t)
{
    free(t->A);
    free(t->B);
    free(t->c);
    free(t->mean);
    free(t->eig);
    free(t->P);
    free(t->R);
    free(t->signs);
    t->A = t->B = t->c = t->mean = t->eig = t->P = t->R = NULL;
    t->signs = NULL;
    t->retained = 0;
}

/* BLAS takes int sizes: batches of at most this many rows */
#define GEMM_ROWS ((size_t)1 << 20)

void vqs_xf_lin_apply(const vqs_stage *s, size_t n, const float *x, float *y)
{
    vqs_blas_single_thread(); /* OpenBLAS's own threads made results differ from run to run */
    const xform *t = s->impl;
    const size_t di = s->d_in, dd = s->d_out;
    if (n == 0)
        return;
    for (; n > GEMM_ROWS; n -= GEMM_ROWS, x += GEMM_ROWS * di, y += GEMM_ROWS * dd)
        vqs_xf_lin_apply(s, GEMM_ROWS, x, y);
    float beta = 0;
    if (t->c) {
        for (size_t i = 0; i < n; i++)
            memcpy(y + i * dd, t->c, dd * sizeof(float));
        beta = 1;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)dd, (int)di, 1.0f, x,
                (int)di, t->A, (int)di, beta, y, (int)dd);
}

/* B = A^T (no whitening): A has orthonormal rows (PCA's eigenvectors, a
 * rotation, OPQ's Procrustes solution), so B^T B = A A^T = I and B^T x =
 * A x, summed in double in a fixed order. PCA W stores B = P^T W^-1 R^T,
 * not an isometry. */
int vqs_xf_lin_adjoint(const vqs_stage *s, const float *x, float *y)
{
    const xform *t = s->impl;
    if (t->whiten)
        return VQS_ENOTFOUND;
    if (!x)
        return 0;
    const size_t di = s->d_in, dd = s->d_out;
    for (size_t i = 0; i < dd; i++) {
        double acc = 0;
        for (size_t j = 0; j < di; j++)
            acc += (double)t->A[i * di + j] * x[j];
        y[i] = (float)acc;
    }
    return 0;
}

void vqs_xf_lin_reverse(const vqs_stage *s, size_t n, const float *y, float *x)
{
    vqs_blas_single_thread(); /* OpenBLAS's own threads made results differ from run to run */
    const xform *t = s->impl;
    const size_t di = s->d_in, dd = s->d_out;
    if (n == 0)
        return;
    for (; n > GEMM_ROWS; n -= GEMM_ROWS, y += GEMM_ROWS * dd, x += GEMM_ROWS * di)
        vqs_xf_lin_reverse(s, GEMM_ROWS, y, x);
    float beta = 0;
    if (t->mean) {
        for (size_t i = 0; i < n; i++)
            memcpy(x + i * di, t->mean, di * sizeof(float));
        beta = 1;
    }
    if (t->B) /* x = y B^T, B: di x dd */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)di, (int)dd, 1.0f, y,
                    (int)dd, t->B, (int)dd, beta, x, (int)di);
    else /* x = y A, A: dd x di */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)di, (int)dd, 1.0f, y,
                    (int)dd, t->A, (int)di, beta, x, (int)di);
}

/* The inner-product query map of a linear stage (codebook_internal.h):
 * y = B^T q (B = A^T unless PCA whitens: then B^T = R W^-1 P, not A = R W P)
 * and the constant <q, mean>. */
double vqs_xf_lin_ip_query(const vqs_stage *s, const float *q, float *y)
{
    vqs_blas_single_thread(); /* OpenBLAS's own threads made results differ from run to run */
    const xform *t = s->impl;
    const size_t di = s->d_in, dd = s->d_out;
    if (t->B) /* B: di x dd, y = B^T q */
        cblas_sgemv(CblasRowMajor, CblasTrans, (int)di, (int)dd, 1.0f, t->B, (int)dd, q, 1, 0.0f, y, 1);
    else /* A: dd x di, y = A q */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)dd, (int)di, 1.0f, t->A, (int)di, q, 1, 0.0f, y, 1);
    double c = 0;
    if (t->mean)
        for (size_t j = 0; j < di; j++)
            c += (double)q[j] * t->mean[j];
    return c;
}

/* vqs_xf_lin_ip_query for n rows: one sgemm (in blocks of GEMM_ROWS). */
void vqs_xf_lin_ip_query_rows(const vqs_stage *s, size_t n, const float *q, float *y, double *cst)
{
    vqs_blas_single_thread(); /* OpenBLAS's own threads made results differ from run to run */
    const xform *t = s->impl;
    const size_t di = s->d_in, dd = s->d_out;
    for (size_t r0 = 0; r0 < n; r0 += GEMM_ROWS) {
        size_t m = n - r0 < GEMM_ROWS ? n - r0 : GEMM_ROWS;
        if (t->B) /* B: di x dd, Y = Q B */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)dd, (int)di, 1.0f, q + r0 * di,
                        (int)di, t->B, (int)dd, 0.0f, y + r0 * dd, (int)dd);
        else /* A: dd x di, Y = Q A^T */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)dd, (int)di, 1.0f, q + r0 * di,
                        (int)di, t->A, (int)di, 0.0f, y + r0 * dd, (int)dd);
    }
    if (t->mean)
        for (size_t i = 0; i < n; i++) {
            double c = 0;
            for (size_t j = 0; j < di; j++)
                c += (double)q[i * di + j] * t->mean[j];
            cst[i] += c;
        }
}

static int all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

/* Payload header common to every kind: kind tag, d_in, d_out. */
void vqs_xf_put_header(const vqs_stage *s, vqs_wbuf *w)
{
    const xform *t = s->impl;
    vqs_wbuf_u32(w, (uint32_t)t->kind);
    vqs_wbuf_u64(w, s->d_in);
    vqs_wbuf_u64(w, s->d_out);
}

int vqs_xf_get_header(vqs_stage *s, vqs_rbuf *r)
{
    xform *t = s->impl;
    uint32_t kind;
    int rc;
    if ((rc = vqs_rbuf_u32(r, &kind)))
        return rc;
    if (kind != (uint32_t)t->kind)
        return vqs_seterr(VQS_ECORRUPT, "%s: payload of transform kind %u, expected %d", s->token,
                          kind, t->kind);
    if ((rc = vqs_rbuf_expect(r, s->d_in, "transform input dimension")) ||
        (rc = vqs_rbuf_expect(r, s->d_out, "transform output dimension")))
        return rc;
    return 0;
}

/* Reads n floats into a fresh array, checking they are finite. */
int vqs_xf_get_floats(vqs_stage *s, vqs_rbuf *r, size_t n, float **out, const char *what)
{
    /* check before allocating: a forged header must not make us allocate
     * more than the blob can fill */
    int rc = vqs_rbuf_need(r, sizeof(float) * n, what);
    if (rc)
        return rc;
    float *x = malloc(sizeof(float) * (n ? n : 1));
    if (!x)
        return vqs_seterr(VQS_ENOMEM, "%s: %s", s->token, what);
    if ((rc = vqs_rbuf_f32(r, x, n))) {
        free(x);
        return rc;
    }
    if (!all_finite(x, n)) {
        free(x);
        return vqs_seterr(VQS_ECORRUPT, "%s: %s contains NaN or Inf", s->token, what);
    }
    *out = x;
    return 0;
}

/* ---- ROT and OPQ payload ---------------------------------------------------- */

/* payload (ROT and OPQ): header, A (d_out * d_in) */
int vqs_xf_lin_save(const vqs_stage *s, vqs_wbuf *w)
{
    const xform *t = s->impl;
    vqs_xf_put_header(s, w);
    vqs_wbuf_f32(w, t->A, s->d_out * s->d_in);
    return 0;
}

int vqs_xf_lin_load(vqs_stage *s, vqs_rbuf *r)
{
    xform *t = s->impl;
    int rc;
    vqs_xf_reset(t);
    if ((rc = vqs_xf_get_header(s, r)) ||
        (rc = vqs_xf_get_floats(s, r, s->d_out * s->d_in, &t->A, "rotation matrix")))
        goto fail;
    /* rows must be unit vectors (a cheap check that catches most damage
     * that still passes the CRC, e.g. a payload from another stage) */
    for (size_t i = 0; i < s->d_out; i++) {
        double nn = 0;
        for (size_t j = 0; j < s->d_in; j++)
            nn += (double)t->A[i * s->d_in + j] * t->A[i * s->d_in + j];
        if (fabs(nn - 1) > 1e-3) {
            rc = vqs_seterr(VQS_ECORRUPT, "%s: row %zu of the rotation has squared norm %g", s->token,
                            i, nn);
            goto fail;
        }
    }
    return 0;
fail:
    vqs_xf_reset(t);
    return rc;
}
