/*
 * opq.c: the OPQ transform stage (OPQ<M>[_<N>]: a rotation learned for
 * the PQ that follows it).
 *
 * Design decisions:
 * - OPQ: non-parametric OPQ (Ge et al. 2013), as FAISS's OPQMatrix: on the
 *   centred training set (at most 65536 rows, a seeded subsample), up to 50
 *   times: project, improve the PQ codebooks, encode/decode, and solve the
 *   orthogonal Procrustes problem R = U V^T from the SVD of Yhat^T X. Every
 *   step lowers the same objective |X R^T - Yhat|^2, so OPQ ends at least as
 *   good as where it starts; it stops early when an iteration gains less than
 *   1e-4 (relative).
 *   Start: whichever of the identity (N == d only) and the eigenvalue
 *   allocation (Ge et al.'s parametric solution: principal directions dealt
 *   to the M sub-spaces so their eigenvalue products balance) gives the
 *   lower PQ error after the initial k-means. Rejected: FAISS's random
 *   rotation, which on SIFT (whose natural dimension order already suits PQ)
 *   starts at 2.5x plain PQ's error and, after 50 iterations, still ends 70%
 *   above it (measured: FAISS OPQ16,PQ16x8 MSE 15842 vs plain PQ 9182 on
 *   5000 siftsmall rows; vqs 8787).
 *   Codebooks: vqs_kmeans (k-means++, opts->kmeans_iters) once per start,
 *   then warm-started: each outer iteration runs 4 Lloyd steps from the
 *   previous centroids (Ge et al.'s alternation). Rejected: FAISS's re-
 *   initialisation of the PQ in every outer iteration (4 k-means iterations
 *   from random centroids), which discards the codebook each time.
 *   The applied map has no bias, like FAISS (the PQ after it sees uncentred
 *   data); only the rotation is learned on centred data. N > d (FAISS pads
 *   the input with zeros) is refused: it adds no information.
 * - Over participants (o->reduce, vqs_reducer): the subsample is drawn over
 *   the global rows and sorted (so the participants' rows in order are the
 *   subsample, whatever their number; one process sorts it too), each keeps
 *   its own; the mean, the eigenvalue allocation's scatter, every Lloyd
 *   step's sums and counts, the PQ error and Yhat^T X (N x d) are summed
 *   over the participants, so each computes the same SVD. One process's
 *   result up to the order of sums, which 50 alternations amplify: the OPQ
 *   objective agrees to 0.1%, the PQ trained after it as another seed would
 *   (tests/index/test_train_over.cpp).
 */
#define _GNU_SOURCE
#include "transform_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OPQ_NITER 50
#define OPQ_NITER_PQ 4
#define OPQ_MAX_TRAIN 65536
#define OPQ_TOL 1e-4

/* ---- OPQ ---------------------------------------------------------------------- */

typedef struct opq_pq {
    size_t M, ksub, dsub, n; /* n: this participant's rows */
    float *cent;   /* M * ksub * dsub, layout (M, ksub, dsub) */
    float *sub;    /* n * dsub, one sub-space gathered contiguously */
    int32_t *code; /* n * M, layout (n, M) */
    double *acc;   /* ksub * dsub sums, then ksub counts */
    int32_t *as;   /* n */
    float *dist;   /* n */
    const vqs_reducer *R; /* NULL, or the participants (vqs_reducer) */
} opq_pq;

static void gather(const float *y, size_t n, size_t D, size_t off, size_t dsub, float *sub)
{
    for (size_t i = 0; i < n; i++)
        memcpy(sub + i * dsub, y + i * D + off, dsub * sizeof(float));
}

/* One Lloyd step on sub-space m: assign with the current centroids, then
 * move each non-empty centroid to the mean of its points (an empty one stays
 * where it was). Leaves the assignment in code. With q->R the sums and
 * counts are every participant's. rc: the caller's so far; every
 * participant calls this the same number of times whatever its rc, so an
 * update's sum (a collective) is where a failure is agreed on. */
static int lloyd_step(opq_pq *q, size_t m, int nthreads, const float *y, size_t D, int update,
                      double *err, int rc)
{
    const size_t n = q->n, ks = q->ksub, ds = q->dsub;
    float *cent = q->cent + m * ks * ds;
    if (!rc) {
        gather(y, n, D, m * ds, ds, q->sub);
        rc = vqs_kmeans_assign(nthreads, n, ds, q->sub, ks, cent, q->as, err ? q->dist : NULL);
    }
    if (!rc && err)
        for (size_t i = 0; i < n; i++)
            *err += q->dist[i];
    for (size_t i = 0; !rc && i < n; i++)
        q->code[i * q->M + m] = q->as[i];
    if (!update)
        return rc;
    if (!rc) {
        memset(q->acc, 0, sizeof(double) * (ks * ds + ks));
        for (size_t i = 0; i < n; i++) {
            size_t k = (size_t)q->as[i];
            q->acc[ks * ds + k] += 1;
            for (size_t j = 0; j < ds; j++)
                q->acc[k * ds + j] += q->sub[i * ds + j];
        }
    }
    if ((rc = vqs_reduce_sum(q->R, rc, q->acc, ks * ds + ks)))
        return rc;
    for (size_t k = 0; k < ks; k++)
        if (q->acc[ks * ds + k] > 0)
            for (size_t j = 0; j < ds; j++)
                cent[k * ds + j] = (float)(q->acc[k * ds + j] / q->acc[ks * ds + k]);
    return 0;
}

/* Orthogonal Procrustes: R (N x d, orthonormal rows) maximising
 * tr(R Mx^T) for Mx = Yhat^T X (N x d): R = U V^T from Mx = U S V^T. */
static int procrustes(const float *Mx, size_t N, size_t d, float *R, double *work_a, double *u,
                      double *vt, double *sv, double **work, int *lwork, const char *tok)
{
    /* row-major Mx (N x d) is column-major Mx^T (d x N) = Ua S Vta,
     * Ua: d x N, Vta: N x N. Then R = Mx's U V^T = Vta^T Ua^T = (Ua Vta)^T,
     * and (Ua Vta) column-major d x N is exactly R row-major N x d. */
    int m = (int)d, n = (int)N, info = 0;
    const char jobu = 'S', jobvt = 'A';
    for (size_t i = 0; i < N * d; i++)
        work_a[i] = Mx[i];
    if (*lwork < 0) {
        double wq = 0;
        int q = -1;
        dgesvd_(&jobu, &jobvt, &m, &n, work_a, &m, sv, u, &m, vt, &n, &wq, &q, &info);
        *lwork = (int)wq > 1 ? (int)wq : 1;
        if (!(*work = malloc(sizeof(double) * (size_t)*lwork)))
            return vqs_seterr(VQS_ENOMEM, "%s: SVD workspace", tok);
    }
    dgesvd_(&jobu, &jobvt, &m, &n, work_a, &m, sv, u, &m, vt, &n, *work, lwork, &info);
    if (info)
        return vqs_seterr(VQS_EINVAL, "%s: dgesvd failed (info %d)", tok, info);
    double *prod = work_a; /* d x N column-major */
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, m, n, n, 1.0, u, m, vt, n, 0.0, prod, m);
    for (size_t i = 0; i < N * d; i++)
        R[i] = (float)prod[i];
    return 0;
}

/* Initial PQ for the rotation A (N x d): Y = X A^T, k-means in every
 * sub-space into cent (M * ksub * dsub), and the error of the assignment
 * added to *err. */
static int init_pq(opq_pq *q, float *cent, const float *X, size_t n, size_t d, size_t N,
                   const float *A, float *Y, const vqs_codec_opts *o, const char *tok, double *err)
{
    const size_t M = q->M, ks = q->ksub, ds = q->dsub;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)N, (int)d, 1.0f, X, (int)d,
                A, (int)d, 0.0f, Y, (int)N);
    vqs_kmeans_opts ko = {.niter = o->kmeans_iters, .nthreads = o->nthreads,
                          .max_points_per_centroid = (size_t)o->max_points_per_centroid,
                          .reduce = q->R};
    int rc = 0;
    double mine = 0;
    for (size_t m = 0; m < M && !rc; m++) {
        ko.seed = o->seed + 7919 * (m + 1);
        gather(Y, n, N, m * ds, ds, q->sub);
        /* a collective whose failure every participant sees */
        if ((rc = vqs_kmeans(&ko, n, ds, q->sub, ks, cent + m * ks * ds, NULL)))
            break;
        float *keep = q->cent;
        q->cent = cent;
        rc = vqs_reduce_agree(q->R, lloyd_step(q, m, o->nthreads, Y, N, 0, &mine, 0));
        q->cent = keep;
    }
    if (!rc && !(rc = vqs_reduce_sum(q->R, 0, &mine, 1)))
        *err += mine;
    if (rc) {
        char why[256]; /* the detail buffer is about to be rewritten */
        snprintf(why, sizeof why, "%s", vqs_errdetail());
        return vqs_seterr(rc, "%s: k-means of the initial PQ: %s", tok, why);
    }
    return 0;
}

/* Eigenvalue allocation (Ge et al. 2013, the parametric OPQ solution): the
 * rows of A (N x d) are the top N principal directions of X, grouped into M
 * sub-spaces of N / M so that the products of their eigenvalues are as even
 * as possible: in decreasing order, each eigenvalue goes to the non-full
 * sub-space whose product is smallest. */
static int ea_init(const vqs_reducer *R, const float *X, size_t n, size_t d, size_t N, size_t M, float *A,
                   const char *tok)
{
    const size_t ds = N / M;
    double *mean = malloc(sizeof(double) * d), *w = malloc(sizeof(double) * d);
    double *V = malloc(sizeof(double) * d * d), *lp = calloc(M, sizeof(double));
    size_t *cnt = calloc(M, sizeof(size_t));
    int rc = 0;
    if (!mean || !w || !V || !lp || !cnt)
        rc = vqs_seterr(VQS_ENOMEM, "%s: eigenvalue allocation", tok);
    if ((rc = vqs_xf_scatter_eig(R, rc, X, n, d, mean, w, V, tok)))
        goto out;
    double floor = w[0] > 0 ? w[0] * 1e-12 : 1e-30;
    for (size_t k = 0; k < N; k++) {
        size_t best = M;
        for (size_t b = 0; b < M; b++) {
            if (cnt[b] == ds)
                continue;
            if (best == M || (cnt[b] == 0 && cnt[best] > 0) ||
                ((cnt[b] > 0) == (cnt[best] > 0) && lp[b] < lp[best]))
                best = b;
        }
        lp[best] += log(w[k] > floor ? w[k] : floor);
        size_t row = best * ds + cnt[best]++;
        for (size_t j = 0; j < d; j++)
            A[row * d + j] = (float)V[k * d + j];
    }
out:
    free(mean);
    free(w);
    free(V);
    free(lp);
    free(cnt);
    return rc;
}

static int opq_train(vqs_stage *s, size_t n_mine, const float *x_in, const vqs_codec_opts *o)
{
    vqs_blas_single_thread(); /* OpenBLAS's own threads made results differ from run to run */
    xform *t = s->impl;
    const vqs_reducer *R = o->reduce && o->reduce->size > 1 ? o->reduce : NULL;
    const size_t d = s->d_in, N = s->d_out, M = t->M, ks = t->ksub, ds = N / M;
    size_t n_in = n_mine, first = 0; /* n_in: every participant's rows */
    int rc = vqs_reduce_layout(R, 0, n_mine, &n_in, &first), lwork = -1;
    if (rc)
        return rc;
    if (n_in < ks)
        return vqs_seterr(VQS_EINVAL, "%s: needs at least %zu training vectors for %zu centroids "
                          "per sub-quantizer (got %zu)", s->token, ks, ks, n_in);
    vqs_xf_reset(t);
    size_t nall = n_in < OPQ_MAX_TRAIN ? n_in : OPQ_MAX_TRAIN, n = n_mine;
    size_t *pick = NULL;
    /* seeded subsample of the global rows (partial Fisher-Yates) if n_in >
     * OPQ_MAX_TRAIN, sorted so that the participants' rows in their order
     * are the subsample's; this participant keeps its own */
    vqs_rng g;
    vqs_rng_seed(&g, o->seed ^ SEED_OPQ);
    if (nall < n_in) {
        if (!(pick = malloc(sizeof(size_t) * n_in)))
            rc = vqs_seterr(VQS_ENOMEM, "%s: subsample", s->token);
        for (size_t i = 0; pick && i < n_in; i++)
            pick[i] = i;
        for (size_t i = 0; pick && i < nall; i++) {
            size_t j = i + (size_t)(vqs_rng_uniform(&g) * (double)(n_in - i));
            if (j >= n_in)
                j = n_in - 1;
            size_t tmp = pick[i];
            pick[i] = pick[j];
            pick[j] = tmp;
        }
        if (pick)
            vqs_sort_sizes(pick, nall);
        n = pick ? vqs_subset_keep(pick, nall, first, n_mine) : 0;
    }
    float *X = malloc(sizeof(float) * (n ? n : 1) * d), *Y = malloc(sizeof(float) * (n ? n : 1) * N);
    float *Mx = malloc(sizeof(float) * N * d), *Rm = malloc(sizeof(float) * d * d);
    double *mean = calloc(d + 1, sizeof(double)), *wa = malloc(sizeof(double) * N * d);
    double *u = malloc(sizeof(double) * d * N), *vt = malloc(sizeof(double) * N * N);
    double *sv = malloc(sizeof(double) * N), *work = NULL;
    double *red = R ? malloc(sizeof(double) * (N * d + 1)) : NULL;
    opq_pq q = {.M = M, .ksub = ks, .dsub = ds, .n = n, .R = R};
    q.cent = malloc(sizeof(float) * M * ks * ds);
    float *cent2 = malloc(sizeof(float) * M * ks * ds);
    q.sub = malloc(sizeof(float) * (n ? n : 1) * ds);
    q.code = malloc(sizeof(int32_t) * (n ? n : 1) * M);
    q.acc = malloc(sizeof(double) * (ks * ds + ks));
    q.as = malloc(sizeof(int32_t) * (n ? n : 1));
    q.dist = malloc(sizeof(float) * (n ? n : 1));
    t->A = malloc(sizeof(float) * N * d);
    if (!rc && (!X || !Y || !Mx || !Rm || !mean || !wa || !u || !vt || !sv || !q.cent || !cent2 || !q.sub ||
                !q.code || !q.acc || !q.as || !q.dist || !t->A || (R && !red)))
        rc = vqs_seterr(VQS_ENOMEM, "%s: training buffers for %zu x %zu", s->token, n, d);
    for (size_t i = 0; !rc && i < n; i++)
        memcpy(X + i * d, x_in + (pick ? pick[i] : i) * d, sizeof(float) * d);
    for (size_t i = 0; !rc && i < n; i++)
        for (size_t j = 0; j < d; j++)
            mean[j] += X[i * d + j];
    if (mean)
        mean[d] = (double)n;
    if ((rc = vqs_reduce_sum(R, rc, mean, d + 1))) /* the mean of every participant's rows */
        goto out;
    for (size_t j = 0; j < d; j++)
        mean[j] /= mean[d];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            X[i * d + j] = (float)(X[i * d + j] - mean[j]);
    const int talk = o->verbose && (!R || R->rank == 0);

    /* starting rotation: the identity (when N == d: the PQ in the input's own
     * coordinates) or the eigenvalue allocation, whichever gives the lower
     * error after the initial k-means */
    double best = INFINITY;
    for (int cand = 0; cand < 2; cand++) {
        if (cand == 0) {
            if (N != d)
                continue;
            memset(Rm, 0, sizeof(float) * N * d);
            for (size_t i = 0; i < N; i++)
                Rm[i * d + i] = 1;
        } else if ((rc = ea_init(R, X, n, d, N, M, Rm, s->token))) {
            goto out;
        }
        double e = 0;
        if ((rc = init_pq(&q, cent2, X, n, d, N, Rm, Y, o, s->token, &e)))
            goto out;
        if (talk)
            fprintf(stderr, "vqs %s: start from %s: PQ MSE %.6g\n", s->token,
                    cand ? "the eigenvalue allocation" : "the identity", e / (double)nall);
        if (e < best) {
            best = e;
            memcpy(t->A, Rm, sizeof(float) * N * d);
            memcpy(q.cent, cent2, sizeof(float) * M * ks * ds);
        }
    }

    const int nt = o->nthreads;
    double t0 = vqs_now(), prev = INFINITY;
    for (int it = 0; it < OPQ_NITER; it++) {
        /* Y = X A^T */
        if (n)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)N, (int)d, 1.0f, X,
                        (int)d, t->A, (int)d, 0.0f, Y, (int)N);
        /* warm-started Lloyd steps (at first the k-means has just run), the
         * last one only assigns; every participant makes every step */
        int steps = it == 0 ? 1 : OPQ_NITER_PQ;
        for (size_t m = 0; m < M; m++)
            for (int st = 0; st < steps; st++)
                rc = lloyd_step(&q, m, nt, Y, N, st + 1 < steps, NULL, rc);
        if ((rc = vqs_reduce_agree(R, rc)))
            goto out;
        /* Y -> Yhat (decode), tracking the PQ error */
        double err = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t m = 0; m < M; m++) {
                const float *c = q.cent + (m * ks + (size_t)q.code[i * M + m]) * ds;
                float *yi = Y + i * N + m * ds;
                for (size_t j = 0; j < ds; j++) {
                    double e = (double)yi[j] - c[j];
                    err += e * e;
                    yi[j] = c[j];
                }
            }
        /* Mx = Yhat^T X (N x d); with R the sum of the participants' */
        if (n)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)N, (int)d, (int)n, 1.0f, Y,
                        (int)N, X, (int)d, 0.0f, Mx, (int)d);
        else
            memset(Mx, 0, sizeof(float) * N * d);
        if (R) {
            for (size_t i = 0; i < N * d; i++)
                red[i] = Mx[i];
            red[N * d] = err;
            if ((rc = vqs_reduce_sum(R, 0, red, N * d + 1)))
                goto out;
            for (size_t i = 0; i < N * d; i++)
                Mx[i] = (float)red[i];
            err = red[N * d];
        }
        if (talk)
            fprintf(stderr, "vqs %s: iteration %d, PQ MSE %.6g (%.1f s)\n", s->token, it,
                    err / (double)nall, vqs_now() - t0);
        if ((rc = procrustes(Mx, N, d, t->A, wa, u, vt, sv, &work, &lwork, s->token)))
            goto out;
        if (prev - err < OPQ_TOL * prev)
            break; /* converged: less than 1e-4 relative gain in an iteration */
        prev = err;
    }
out:
    if (rc)
        vqs_xf_reset(t);
    free(X);
    free(Y);
    free(Mx);
    free(Rm);
    free(mean);
    free(wa);
    free(u);
    free(vt);
    free(sv);
    free(work);
    free(red);
    free(pick);
    free(cent2);
    free(q.cent);
    free(q.sub);
    free(q.code);
    free(q.acc);
    free(q.as);
    free(q.dist);
    return rc;
}

const vqs_stage_ops vqs_xf_opq_ops = {
    .family = "OPQ", .uses_next = 1, .trains_on_slices = 1, .train = opq_train, .apply = vqs_xf_lin_apply, .reverse = vqs_xf_lin_reverse,
    .ip_query = vqs_xf_lin_ip_query, .ip_query_rows = vqs_xf_lin_ip_query_rows, .adjoint = vqs_xf_lin_adjoint,
    .save = vqs_xf_lin_save, .load = vqs_xf_lin_load, .destroy = vqs_xf_destroy,
};
