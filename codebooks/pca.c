/*
 * pca.c: the PCA transform stage (PCA<N>[W][R], PCA<P>%: tokens in
 * transform.c): training, the matrices it applies, payload, pca_info.
 *
 * Design decisions:
 * - PCA accumulates the scatter matrix in double (rows centred in double,
 *   dsyrk over blocks of 1024 rows) and diagonalises it with dsyevr. FAISS
 *   forms the covariance in float; double costs ~2x on the d^2 n product and
 *   gives eigenvalues that are exact to double rounding, so FAISS, not vqs,
 *   is the side whose small eigenvalues wobble. Eigenvalues are reported as
 *   variances (scatter / n). Each eigenvector's largest-magnitude component
 *   is made positive, so outputs do not depend on LAPACK's sign choice.
 *   Whitening floors variances at 1e-12 of the largest (rank-deficient data
 *   would otherwise divide by zero).
 * - PCA's payload is the factors (mean, eigenvalues, eigenvectors, optional
 *   rotation); A, B and c are rebuilt at load. Rejected: storing A and B
 *   (twice the bytes, and the eigenvalues are wanted for pca_info anyway).
 */
#define _GNU_SOURCE
#include "transform_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHITEN_FLOOR 1e-12

/* ---- PCA ---------------------------------------------------------------------- */

/* Builds A = R W P, B = P^T W^-1 R^T (only if whitening), c = -A mean, from
 * the factors. W = diag(var^-1/2) or I. */
static int pca_finish(vqs_stage *s)
{
    xform *t = s->impl;
    const size_t di = s->d_in, dd = s->d_out;
    float *WP = malloc(sizeof(float) * dd * di);
    int rc = 0;
    t->A = malloc(sizeof(float) * dd * di);
    t->c = malloc(sizeof(float) * dd);
    if (t->whiten)
        t->B = malloc(sizeof(float) * di * dd);
    if (!WP || !t->A || !t->c || (t->whiten && !t->B)) {
        rc = vqs_seterr(VQS_ENOMEM, "%s: %zu x %zu matrix", s->token, dd, di);
        goto out;
    }
    double floor = WHITEN_FLOOR * (t->eig[0] > 0 ? t->eig[0] : 1.0);
    if (floor <= 0 || !isfinite(floor))
        floor = WHITEN_FLOOR;
    for (size_t i = 0; i < dd; i++) {
        double v = t->eig[i] > floor ? t->eig[i] : floor;
        float f = t->whiten ? (float)(1.0 / sqrt(v)) : 1.0f;
        for (size_t j = 0; j < di; j++)
            WP[i * di + j] = f * t->P[i * di + j];
    }
    if (t->rotate)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)dd, (int)di, (int)dd, 1.0f, t->R,
                    (int)dd, WP, (int)di, 0.0f, t->A, (int)di);
    else
        memcpy(t->A, WP, sizeof(float) * dd * di);
    if (t->whiten) {
        /* B = P^T diag(sqrt v) R^T: B[j][i] = sum_k P[k][j] sqrt(v_k) R[i][k] */
        for (size_t k = 0; k < dd; k++) {
            double v = t->eig[k] > floor ? t->eig[k] : floor;
            float f = (float)sqrt(v);
            for (size_t j = 0; j < di; j++)
                WP[k * di + j] = f * t->P[k * di + j]; /* WP now = D P */
        }
        if (t->rotate) /* B = (D P)^T R^T = (R D P)^T */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasTrans, (int)di, (int)dd, (int)dd, 1.0f, WP,
                        (int)di, t->R, (int)dd, 0.0f, t->B, (int)dd);
        else
            for (size_t k = 0; k < dd; k++)
                for (size_t j = 0; j < di; j++)
                    t->B[j * dd + k] = WP[k * di + j];
    }
    for (size_t i = 0; i < dd; i++) {
        double acc = 0;
        for (size_t j = 0; j < di; j++)
            acc += (double)t->A[i * di + j] * t->mean[j];
        t->c[i] = (float)-acc;
    }
    double kept = 0, all = 0;
    for (size_t i = 0; i < di; i++) {
        double v = t->eig[i] > 0 ? t->eig[i] : 0;
        all += v;
        if (i < dd)
            kept += v;
    }
    t->retained = all > 0 ? kept / all : 1.0;
out:
    free(WP);
    return rc;
}

/* Over participants (R, vqs_reducer): the sums of the rows and their
 * count, then the centred scatter's upper triangles, are summed (d + 1 and
 * d^2 doubles), so every participant solves the same eigenproblem: the
 * training of PCA on slices. */
/* Mean and eigen-decomposition of the scatter matrix sum (x - mean)(x -
 * mean)^T of x (n x d), all in double. mean: d; w: d eigenvalues of the
 * scatter (not divided by n), descending, clamped at 0; V: d x d, row k the
 * k-th eigenvector with its largest-magnitude component positive. */
int vqs_xf_scatter_eig(const vqs_reducer *R, int rc, const float *x, size_t n, size_t d, double *mean,
                       double *w, double *V, const char *tok)
{
    const size_t BLK = 1024;
    int info = 0, nd = (int)d;
    double *C = calloc(d * d, sizeof(double)), *blk = malloc(sizeof(double) * BLK * d);
    double *wa = malloc(sizeof(double) * (d + 1)), *z = malloc(sizeof(double) * d * d), *work = NULL;
    int *isuppz = malloc(sizeof(int) * 2 * d), *iwork = NULL;
    if (!rc && (!C || !blk || !wa || !z || !isuppz))
        rc = vqs_seterr(VQS_ENOMEM, "%s: %zu x %zu covariance", tok, d, d);
    /* the mean over every participant's rows: their sums and counts summed */
    for (size_t j = 0; !rc && j <= d; j++)
        wa[j] = 0;
    for (size_t i = 0; !rc && i < n; i++)
        for (size_t j = 0; j < d; j++)
            wa[j] += x[i * d + j];
    if (wa)
        wa[d] = (double)n;
    if ((rc = vqs_reduce_sum(R, rc, wa, d + 1)))
        goto out;
    for (size_t j = 0; j < d; j++)
        mean[j] = wa[j] / wa[d];
    /* upper triangle (row-major) of the scatter, 1024 centred rows at a time */
    for (size_t i0 = 0; i0 < n; i0 += BLK) {
        size_t b = n - i0 < BLK ? n - i0 : BLK;
        for (size_t i = 0; i < b; i++)
            for (size_t j = 0; j < d; j++)
                blk[i * d + j] = (double)x[(i0 + i) * d + j] - mean[j];
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)b, 1.0, blk, (int)d, 1.0,
                    C, (int)d);
    }
    if ((rc = vqs_reduce_sum(R, 0, C, d * d))) /* the participants' scatters (upper triangles) */
        goto out;
    /* row-major upper == column-major lower: hand LAPACK the 'L' triangle */
    const char jobz = 'V', range = 'A', uplo = 'L';
    double vl = 0, vu = 0, abstol = 0, wq = 0;
    int il = 0, iu = 0, m = 0, lwork = -1, liwork = -1, iwq = 0;
    dsyevr_(&jobz, &range, &uplo, &nd, C, &nd, &vl, &vu, &il, &iu, &abstol, &m, wa, z, &nd, isuppz,
            &wq, &lwork, &iwq, &liwork, &info);
    lwork = (int)wq;
    liwork = iwq;
    work = malloc(sizeof(double) * (size_t)(lwork > 1 ? lwork : 1));
    iwork = malloc(sizeof(int) * (size_t)(liwork > 1 ? liwork : 1));
    if (!work || !iwork) {
        rc = vqs_seterr(VQS_ENOMEM, "%s: eigensolver workspace", tok);
        goto out;
    }
    dsyevr_(&jobz, &range, &uplo, &nd, C, &nd, &vl, &vu, &il, &iu, &abstol, &m, wa, z, &nd, isuppz,
            work, &lwork, iwork, &liwork, &info);
    if (info || m != nd) {
        rc = vqs_seterr(VQS_EINVAL, "%s: dsyevr failed (info %d, %d of %d eigenvalues)", tok, info,
                        m, nd);
        goto out;
    }
    /* ascending -> descending; eigenvector k is column (d-1-k) of z */
    for (size_t k = 0; k < d; k++) {
        size_t col = d - 1 - k;
        w[k] = wa[col] > 0 ? wa[col] : 0;
        const double *e = z + col * d;
        size_t arg = 0;
        for (size_t j = 1; j < d; j++)
            if (fabs(e[j]) > fabs(e[arg]))
                arg = j;
        double sg = e[arg] < 0 ? -1.0 : 1.0;
        for (size_t j = 0; j < d; j++)
            V[k * d + j] = sg * e[j];
    }
out:
    free(C);
    free(blk);
    free(wa);
    free(z);
    free(work);
    free(isuppz);
    free(iwork);
    return rc;
}

static int pca_train(vqs_stage *s, size_t n_mine, const float *x, const vqs_codec_opts *o)
{
    vqs_blas_single_thread(); /* OpenBLAS's own threads made results differ from run to run */
    xform *t = s->impl;
    const size_t d = s->d_in, dd = s->d_out;
    size_t n = n_mine, first = 0; /* n: over every participant (o->reduce) */
    int rc = vqs_reduce_layout(o->reduce, 0, n_mine, &n, &first);
    if (rc)
        return rc;
    if (n < 2)
        return vqs_seterr(VQS_EINVAL, "%s: needs at least 2 training vectors (got %zu)", s->token, n);
    vqs_xf_reset(t);
    double *mean = malloc(sizeof(double) * d), *w = malloc(sizeof(double) * d);
    double *V = malloc(sizeof(double) * d * d);
    t->mean = malloc(sizeof(float) * d);
    t->eig = malloc(sizeof(float) * d);
    t->P = malloc(sizeof(float) * dd * d);
    if (t->rotate)
        t->R = malloc(sizeof(float) * dd * dd);
    if (!mean || !w || !V || !t->mean || !t->eig || !t->P || (t->rotate && !t->R))
        rc = vqs_seterr(VQS_ENOMEM, "%s: %zu x %zu covariance", s->token, d, d);
    if ((rc = vqs_xf_scatter_eig(o->reduce, rc, x, n_mine, d, mean, w, V, s->token)))
        goto fail;
    for (size_t j = 0; j < d; j++) {
        t->mean[j] = (float)mean[j];
        t->eig[j] = (float)(w[j] / (double)n); /* variances */
    }
    for (size_t i = 0; i < dd * d; i++)
        t->P[i] = (float)V[i];
    if (t->rotate && (rc = vqs_xf_random_orthogonal(dd, o->seed ^ SEED_PCA, t->R, s->token)))
        goto fail;
    if ((rc = pca_finish(s)))
        goto fail;
    if (o->verbose && (!o->reduce || o->reduce->rank == 0))
        fprintf(stderr, "vqs %s: %zu -> %zu dims keep %.4f of the variance (top eigenvalue %.4g)\n",
                s->token, d, dd, t->retained, (double)t->eig[0]);
    goto out;
fail:
    vqs_xf_reset(t);
out:
    free(mean);
    free(w);
    free(V);
    return rc;
}

/* payload: header, u32 flags (bit 0 W, bit 1 R), mean (d_in), eigenvalues
 * (d_in), P (d_out * d_in), R (d_out * d_out, if R) */
static int pca_save(const vqs_stage *s, vqs_wbuf *w)
{
    const xform *t = s->impl;
    vqs_xf_put_header(s, w);
    vqs_wbuf_u32(w, (uint32_t)(t->whiten | t->rotate << 1));
    vqs_wbuf_f32(w, t->mean, s->d_in);
    vqs_wbuf_f32(w, t->eig, s->d_in);
    vqs_wbuf_f32(w, t->P, s->d_out * s->d_in);
    if (t->rotate)
        vqs_wbuf_f32(w, t->R, s->d_out * s->d_out);
    return 0;
}

static int pca_load(vqs_stage *s, vqs_rbuf *r)
{
    xform *t = s->impl;
    uint32_t flags;
    int rc;
    vqs_xf_reset(t);
    if ((rc = vqs_xf_get_header(s, r)) || (rc = vqs_rbuf_u32(r, &flags)))
        return rc;
    if (flags != (uint32_t)(t->whiten | t->rotate << 1))
        return vqs_seterr(VQS_ECORRUPT, "%s: payload flags %u disagree with the token", s->token, flags);
    if ((rc = vqs_xf_get_floats(s, r, s->d_in, &t->mean, "mean")) ||
        (rc = vqs_xf_get_floats(s, r, s->d_in, &t->eig, "eigenvalues")) ||
        (rc = vqs_xf_get_floats(s, r, s->d_out * s->d_in, &t->P, "eigenvectors")) ||
        (t->rotate && (rc = vqs_xf_get_floats(s, r, s->d_out * s->d_out, &t->R, "rotation"))))
        goto fail;
    for (size_t i = 0; i < s->d_in; i++)
        if (t->eig[i] < 0 || (i && t->eig[i] > t->eig[i - 1])) {
            rc = vqs_seterr(VQS_ECORRUPT, "%s: eigenvalue %zu (%g) is negative or out of order",
                            s->token, i, (double)t->eig[i]);
            goto fail;
        }
    if ((rc = pca_finish(s)))
        goto fail;
    return 0;
fail:
    vqs_xf_reset(t);
    return rc;
}

int vqs_stage_pca_info(const vqs_stage *s, const float **ev, size_t *n, double *retained)
{
    if (!s || s->ops != &vqs_xf_pca_ops || !s->impl || !((const xform *)s->impl)->eig)
        return VQS_ENOTFOUND;
    const xform *t = s->impl;
    if (ev)
        *ev = t->eig;
    if (n)
        *n = s->d_in;
    if (retained)
        *retained = t->retained;
    return 0;
}

const vqs_stage_ops vqs_xf_pca_ops = {
    .trains_on_slices = 1,
    .family = "PCA", .train = pca_train, .apply = vqs_xf_lin_apply, .reverse = vqs_xf_lin_reverse,
    .ip_query = vqs_xf_lin_ip_query, .ip_query_rows = vqs_xf_lin_ip_query_rows, .adjoint = vqs_xf_lin_adjoint,
    .save = pca_save, .load = pca_load, .destroy = vqs_xf_destroy,
};
