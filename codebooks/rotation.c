/*
 * rotation.c: the random rotations: ROT (a Haar-random orthogonal matrix,
 * also PCA...R's rotation) and HAD / RR (randomised fast Walsh-Hadamard).
 *
 * Design decisions:
 * - ROT: QR of a seeded Gaussian matrix with the columns of Q multiplied by
 *   sign(diag(R)), which makes Q exactly Haar-distributed (Mezzadri 2007).
 *   The matrix is stored, not regenerated from the seed at load: a LAPACK
 *   upgrade could change the last bits and so the codes of stored vectors.
 * - HAD: no matrix; O(rounds * d log d) per vector. The random signs are
 *   stored as bytes (rounds * d_out). One round H D already spreads every
 *   input's energy over all outputs, but it is far from a random rotation
 *   (every basis vector maps to a +-1/sqrt(d) vector, and vectors differing
 *   only in sign patterns stay structured); three rounds, FALCONN's choice,
 *   behave much closer to one; HAD1/HAD2 trade that for speed. reverse works
 *   on a scratch row malloc'd per call (the stage is const and shared across
 *   threads).
 */
#define _GNU_SOURCE
#include "transform_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Random orthogonal d x d matrix (Haar), row-major into q (d * d floats).
 * The first r rows are an r x d matrix with orthonormal rows. */
int vqs_xf_random_orthogonal(size_t d, uint64_t seed, float *q, const char *tok)
{
    int n = (int)d, info = 0, lwork = -1;
    double *a = malloc(sizeof(double) * d * d), *tau = malloc(sizeof(double) * d);
    double *work = NULL, wq = 0;
    int rc = 0;
    if (!a || !tau) {
        rc = vqs_seterr(VQS_ENOMEM, "%s: %zu x %zu rotation", tok, d, d);
        goto out;
    }
    vqs_rng g;
    vqs_rng_seed(&g, seed);
    for (size_t i = 0; i < d * d; i++)
        a[i] = vqs_rng_normal(&g);
    dgeqrf_(&n, &n, a, &n, tau, &wq, &lwork, &info);
    lwork = (int)wq;
    double wq2 = 0;
    int lw2 = -1;
    dorgqr_(&n, &n, &n, a, &n, tau, &wq2, &lw2, &info);
    if ((int)wq2 > lwork)
        lwork = (int)wq2;
    if (lwork < n)
        lwork = n;
    if (!(work = malloc(sizeof(double) * (size_t)lwork))) {
        rc = vqs_seterr(VQS_ENOMEM, "%s: QR workspace", tok);
        goto out;
    }
    dgeqrf_(&n, &n, a, &n, tau, work, &lwork, &info);
    if (info) {
        rc = vqs_seterr(VQS_EINVAL, "%s: dgeqrf failed (info %d)", tok, info);
        goto out;
    }
    /* column-major: R[j][j] = a[j + j*d]; Q's column j times sign(R[j][j]) */
    double *sgn = malloc(sizeof(double) * d);
    if (!sgn) {
        rc = vqs_seterr(VQS_ENOMEM, "%s: QR signs", tok);
        goto out;
    }
    for (size_t j = 0; j < d; j++)
        sgn[j] = a[j + j * d] < 0 ? -1.0 : 1.0;
    dorgqr_(&n, &n, &n, a, &n, tau, work, &lwork, &info);
    if (info) {
        free(sgn);
        rc = vqs_seterr(VQS_EINVAL, "%s: dorgqr failed (info %d)", tok, info);
        goto out;
    }
    /* a is Q column-major; row-major q = Q^T: row j of q = column j of Q,
     * times its sign. (Q^T is Haar too.) */
    for (size_t j = 0; j < d; j++)
        for (size_t i = 0; i < d; i++)
            q[j * d + i] = (float)(sgn[j] * a[i + j * d]);
    free(sgn);
out:
    free(a);
    free(tau);
    free(work);
    return rc;
}

/* ---- ROT ---------------------------------------------------------------------- */

static int rot_train(vqs_stage *s, size_t n, const float *x, const vqs_codec_opts *o)
{
    vqs_blas_single_thread(); /* OpenBLAS's own threads made results differ from run to run */
    xform *t = s->impl;
    (void)n;
    (void)x;
    vqs_xf_reset(t);
    if (!(t->A = malloc(sizeof(float) * s->d_in * s->d_in)))
        return vqs_seterr(VQS_ENOMEM, "%s: %zu x %zu rotation", s->token, s->d_in, s->d_in);
    int rc = vqs_xf_random_orthogonal(s->d_in, o->seed ^ SEED_ROT, t->A, s->token);
    if (rc)
        vqs_xf_reset(t);
    return rc;
}

const vqs_stage_ops vqs_xf_rot_ops = {
    .family = "ROT", .train = rot_train, .apply = vqs_xf_lin_apply, .reverse = vqs_xf_lin_reverse,
    .ip_query = vqs_xf_lin_ip_query, .ip_query_rows = vqs_xf_lin_ip_query_rows, .adjoint = vqs_xf_lin_adjoint,
    .save = vqs_xf_lin_save, .load = vqs_xf_lin_load, .destroy = vqs_xf_destroy,
};

/* ---- HAD ---------------------------------------------------------------------- */

/* In-place unnormalised fast Walsh-Hadamard transform of n = 2^k values. */
static void fwht(float *v, size_t n)
{
    for (size_t h = 1; h < n; h <<= 1)
        for (size_t i = 0; i < n; i += h << 1)
            for (size_t j = i; j < i + h; j++) {
                float a = v[j], b = v[j + h];
                v[j] = a + b;
                v[j + h] = a - b;
            }
}

static int had_train(vqs_stage *s, size_t n, const float *x, const vqs_codec_opts *o)
{
    xform *t = s->impl;
    (void)n;
    (void)x;
    vqs_xf_reset(t);
    size_t len = (size_t)t->rounds * s->d_out;
    if (!(t->signs = malloc(len)))
        return vqs_seterr(VQS_ENOMEM, "%s: signs", s->token);
    vqs_rng g;
    vqs_rng_seed(&g, o->seed ^ SEED_HAD);
    for (size_t i = 0; i < len; i += 64) {
        uint64_t b = vqs_rng_next(&g);
        for (size_t k = 0; k < 64 && i + k < len; k++)
            t->signs[i + k] = (b >> k) & 1 ? 1 : -1;
    }
    return 0;
}

/* y = H D_r ... H D_1 [x; 0], H the orthonormal Hadamard matrix */
static void had_apply(const vqs_stage *s, size_t n, const float *x, float *y)
{
    const xform *t = s->impl;
    const size_t d = s->d_in, dp = s->d_out;
    const float scale = (float)(1.0 / sqrt((double)dp));
    for (size_t i = 0; i < n; i++) {
        float *v = y + i * dp;
        memcpy(v, x + i * d, d * sizeof(float));
        memset(v + d, 0, (dp - d) * sizeof(float));
        for (int r = 0; r < t->rounds; r++) {
            const int8_t *sg = t->signs + (size_t)r * dp;
            for (size_t j = 0; j < dp; j++)
                v[j] *= sg[j] * scale;
            fwht(v, dp);
        }
    }
}

/* x = first d of D_1 H ... D_r H y */
static void had_reverse(const vqs_stage *s, size_t n, const float *y, float *x)
{
    const xform *t = s->impl;
    const size_t d = s->d_in, dp = s->d_out;
    const float scale = (float)(1.0 / sqrt((double)dp));
    float *v = malloc(sizeof(float) * dp);
    if (!v) { /* no way to report from here: poison rather than return garbage */
        for (size_t i = 0; i < n * d; i++)
            x[i] = NAN;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        memcpy(v, y + i * dp, dp * sizeof(float));
        for (int r = t->rounds - 1; r >= 0; r--) {
            const int8_t *sg = t->signs + (size_t)r * dp;
            fwht(v, dp);
            for (size_t j = 0; j < dp; j++)
                v[j] *= sg[j] * scale;
        }
        memcpy(x + i * d, v, d * sizeof(float));
    }
    free(v);
}

/* HAD's reverse is the transpose of apply; an isometry only without padding
 * (d_out == d_in): with padding, decoded outputs leave the range of apply. */
static int had_adjoint(const vqs_stage *s, const float *x, float *y)
{
    if (s->d_out != s->d_in)
        return VQS_ENOTFOUND;
    if (x)
        had_apply(s, 1, x, y);
    return 0;
}

/* payload: header, u32 rounds, signs (rounds * d_out bytes, 1 or 0xff) */
static int had_save(const vqs_stage *s, vqs_wbuf *w)
{
    const xform *t = s->impl;
    vqs_xf_put_header(s, w);
    vqs_wbuf_u32(w, (uint32_t)t->rounds);
    vqs_wbuf_put(w, t->signs, (size_t)t->rounds * s->d_out);
    return 0;
}

static int had_load(vqs_stage *s, vqs_rbuf *r)
{
    xform *t = s->impl;
    uint32_t rounds;
    int rc;
    vqs_xf_reset(t);
    if ((rc = vqs_xf_get_header(s, r)) || (rc = vqs_rbuf_u32(r, &rounds)))
        return rc;
    if (rounds != (uint32_t)t->rounds)
        return vqs_seterr(VQS_ECORRUPT, "%s: payload has %u rounds, the token %d", s->token, rounds,
                          t->rounds);
    size_t len = (size_t)t->rounds * s->d_out;
    if ((rc = vqs_rbuf_need(r, len, "HAD signs")))
        return rc;
    if (!(t->signs = malloc(len)))
        return vqs_seterr(VQS_ENOMEM, "%s: signs", s->token);
    if ((rc = vqs_rbuf_get(r, t->signs, len)))
        goto fail;
    for (size_t i = 0; i < len; i++)
        if (t->signs[i] != 1 && t->signs[i] != -1) {
            rc = vqs_seterr(VQS_ECORRUPT, "%s: sign %zu is %d, not +-1", s->token, i, t->signs[i]);
            goto fail;
        }
    return 0;
fail:
    vqs_xf_reset(t);
    return rc;
}

const vqs_stage_ops vqs_xf_had_ops = {
    .family = "HAD", .train = had_train, .apply = had_apply, .reverse = had_reverse,
    .adjoint = had_adjoint, .save = had_save, .load = had_load, .destroy = vqs_xf_destroy,
};
