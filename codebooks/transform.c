/*
 * transform.c: the transform stages PCA, ROT, HAD (alias RR) and OPQ.
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
 */
#define _GNU_SOURCE
#include "codebook_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fortran LAPACK (liblapack); hidden string-length arguments are omitted as
 * every caller of single-character options does (FAISS included). */
extern void dsyevr_(const char *jobz, const char *range, const char *uplo, const int *n, double *a,
                    const int *lda, const double *vl, const double *vu, const int *il,
                    const int *iu, const double *abstol, int *m, double *w, double *z,
                    const int *ldz, int *isuppz, double *work, const int *lwork, int *iwork,
                    const int *liwork, int *info);
extern void dgeqrf_(const int *m, const int *n, double *a, const int *lda, double *tau,
                    double *work, const int *lwork, int *info);
extern void dorgqr_(const int *m, const int *n, const int *k, double *a, const int *lda,
                    const double *tau, double *work, const int *lwork, int *info);
extern void dgesvd_(const char *jobu, const char *jobvt, const int *m, const int *n, double *a,
                    const int *lda, double *s, double *u, const int *ldu, double *vt,
                    const int *ldvt, double *work, const int *lwork, int *info);

enum { K_PCA = 1, K_ROT = 2, K_HAD = 3, K_OPQ = 4 };

#define MAX_DIM (1u << 20)
#define HAD_ROUNDS_DEFAULT 3
#define OPQ_NITER 50
#define OPQ_NITER_PQ 4
#define OPQ_MAX_TRAIN 65536
#define OPQ_TOL 1e-4
#define WHITEN_FLOOR 1e-12

/* Seeds for the different random objects, so that PCA's rotation, ROT and
 * HAD's signs are unrelated for the same opts->seed. */
#define SEED_ROT 0x524f54ull
#define SEED_PCA 0x504341ull
#define SEED_HAD 0x484144ull
#define SEED_OPQ 0x4f5051ull

typedef struct xform {
    int kind;
    /* token options */
    int whiten, rotate; /* PCA W, R */
    int rounds;         /* HAD */
    size_t M, ksub;     /* OPQ */

    /* linear kinds (PCA, ROT, OPQ): y = A x + c, x = B y + mean */
    float *A;    /* d_out * d_in, row-major */
    float *B;    /* d_in * d_out, row-major; NULL: B = A^T */
    float *c;    /* d_out; NULL: no bias */
    float *mean; /* d_in; NULL: zero */

    /* PCA factors (the payload) */
    float *eig;  /* d_in variances, descending */
    float *P;    /* d_out * d_in, row i = i-th eigenvector */
    float *R;    /* d_out * d_out rotation (rotate), row-major */
    double retained;

    /* HAD */
    int8_t *signs; /* rounds * d_out, each +1 or -1 */
} xform;

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

static const vqs_stage_ops pca_ops, rot_ops, had_ops, opq_ops;

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
        s->ops = &pca_ops;
        s->d_out = n;
        if (pct) /* the canonical token names the resolved dimension */
            snprintf(s->token, sizeof s->token, "PCA%zu%s%s", n, w ? "W" : "", r ? "R" : "");
    } else if (strncmp(tok, "ROT", 3) == 0) {
        if (tok[3])
            return vqs_seterr(VQS_ESPEC, "%s: unexpected suffix '%s' (ROT takes no parameters)", tok, tok + 3);
        if (!(t = new_xform(K_ROT)))
            return vqs_seterr(VQS_ENOMEM, "%s", tok);
        s->ops = &rot_ops;
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
        s->ops = &had_ops;
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
        s->ops = &opq_ops;
        s->d_out = n;
    } else {
        return VQS_ENOTFOUND;
    }
    s->code_size = 0;
    s->impl = t;
    return 0;
}

/* ---- shared linear machinery -------------------------------------------------- */

static void xf_destroy(vqs_stage *s)
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
static void xf_reset(xform *t)
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

static void lin_apply(const vqs_stage *s, size_t n, const float *x, float *y)
{
    vqs_blas_single_thread(); /* OpenBLAS's own threads made results differ from run to run */
    const xform *t = s->impl;
    const size_t di = s->d_in, dd = s->d_out;
    if (n == 0)
        return;
    for (; n > GEMM_ROWS; n -= GEMM_ROWS, x += GEMM_ROWS * di, y += GEMM_ROWS * dd)
        lin_apply(s, GEMM_ROWS, x, y);
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
static int lin_adjoint(const vqs_stage *s, const float *x, float *y)
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

static void lin_reverse(const vqs_stage *s, size_t n, const float *y, float *x)
{
    vqs_blas_single_thread(); /* OpenBLAS's own threads made results differ from run to run */
    const xform *t = s->impl;
    const size_t di = s->d_in, dd = s->d_out;
    if (n == 0)
        return;
    for (; n > GEMM_ROWS; n -= GEMM_ROWS, y += GEMM_ROWS * dd, x += GEMM_ROWS * di)
        lin_reverse(s, GEMM_ROWS, y, x);
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
static double lin_ip_query(const vqs_stage *s, const float *q, float *y)
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

static int all_finite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

/* Random orthogonal d x d matrix (Haar), row-major into q (d * d floats).
 * The first r rows are an r x d matrix with orthonormal rows. */
static int random_orthogonal(size_t d, uint64_t seed, float *q, const char *tok)
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

/* Payload header common to every kind: kind tag, d_in, d_out. */
static void put_header(const vqs_stage *s, vqs_wbuf *w)
{
    const xform *t = s->impl;
    vqs_wbuf_u32(w, (uint32_t)t->kind);
    vqs_wbuf_u64(w, s->d_in);
    vqs_wbuf_u64(w, s->d_out);
}

static int get_header(vqs_stage *s, vqs_rbuf *r)
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
static int get_floats(vqs_stage *s, vqs_rbuf *r, size_t n, float **out, const char *what)
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

/* Mean and eigen-decomposition of the scatter matrix sum (x - mean)(x -
 * mean)^T of x (n x d), all in double. mean: d; w: d eigenvalues of the
 * scatter (not divided by n), descending, clamped at 0; V: d x d, row k the
 * k-th eigenvector with its largest-magnitude component positive. */
static int scatter_eig(const float *x, size_t n, size_t d, double *mean, double *w, double *V,
                       const char *tok)
{
    const size_t BLK = 1024;
    int rc = 0, info = 0, nd = (int)d;
    double *C = calloc(d * d, sizeof(double)), *blk = malloc(sizeof(double) * BLK * d);
    double *wa = malloc(sizeof(double) * d), *z = malloc(sizeof(double) * d * d), *work = NULL;
    int *isuppz = malloc(sizeof(int) * 2 * d), *iwork = NULL;
    if (!C || !blk || !wa || !z || !isuppz) {
        rc = vqs_seterr(VQS_ENOMEM, "%s: %zu x %zu covariance", tok, d, d);
        goto out;
    }
    memset(mean, 0, sizeof(double) * d);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            mean[j] += x[i * d + j];
    for (size_t j = 0; j < d; j++)
        mean[j] /= (double)n;
    /* upper triangle (row-major) of the scatter, 1024 centred rows at a time */
    for (size_t i0 = 0; i0 < n; i0 += BLK) {
        size_t b = n - i0 < BLK ? n - i0 : BLK;
        for (size_t i = 0; i < b; i++)
            for (size_t j = 0; j < d; j++)
                blk[i * d + j] = (double)x[(i0 + i) * d + j] - mean[j];
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)b, 1.0, blk, (int)d, 1.0,
                    C, (int)d);
    }
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

static int pca_train(vqs_stage *s, size_t n, const float *x, const vqs_codec_opts *o)
{
    vqs_blas_single_thread(); /* OpenBLAS's own threads made results differ from run to run */
    xform *t = s->impl;
    const size_t d = s->d_in, dd = s->d_out;
    if (n < 2)
        return vqs_seterr(VQS_EINVAL, "%s: needs at least 2 training vectors (got %zu)", s->token, n);
    xf_reset(t);
    int rc = 0;
    double *mean = malloc(sizeof(double) * d), *w = malloc(sizeof(double) * d);
    double *V = malloc(sizeof(double) * d * d);
    t->mean = malloc(sizeof(float) * d);
    t->eig = malloc(sizeof(float) * d);
    t->P = malloc(sizeof(float) * dd * d);
    if (t->rotate)
        t->R = malloc(sizeof(float) * dd * dd);
    if (!mean || !w || !V || !t->mean || !t->eig || !t->P || (t->rotate && !t->R)) {
        rc = vqs_seterr(VQS_ENOMEM, "%s: %zu x %zu covariance", s->token, d, d);
        goto fail;
    }
    if ((rc = scatter_eig(x, n, d, mean, w, V, s->token)))
        goto fail;
    for (size_t j = 0; j < d; j++) {
        t->mean[j] = (float)mean[j];
        t->eig[j] = (float)(w[j] / (double)n); /* variances */
    }
    for (size_t i = 0; i < dd * d; i++)
        t->P[i] = (float)V[i];
    if (t->rotate && (rc = random_orthogonal(dd, o->seed ^ SEED_PCA, t->R, s->token)))
        goto fail;
    if ((rc = pca_finish(s)))
        goto fail;
    if (o->verbose)
        fprintf(stderr, "vqs %s: %zu -> %zu dims keep %.4f of the variance (top eigenvalue %.4g)\n",
                s->token, d, dd, t->retained, (double)t->eig[0]);
    goto out;
fail:
    xf_reset(t);
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
    put_header(s, w);
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
    xf_reset(t);
    if ((rc = get_header(s, r)) || (rc = vqs_rbuf_u32(r, &flags)))
        return rc;
    if (flags != (uint32_t)(t->whiten | t->rotate << 1))
        return vqs_seterr(VQS_ECORRUPT, "%s: payload flags %u disagree with the token", s->token, flags);
    if ((rc = get_floats(s, r, s->d_in, &t->mean, "mean")) ||
        (rc = get_floats(s, r, s->d_in, &t->eig, "eigenvalues")) ||
        (rc = get_floats(s, r, s->d_out * s->d_in, &t->P, "eigenvectors")) ||
        (t->rotate && (rc = get_floats(s, r, s->d_out * s->d_out, &t->R, "rotation"))))
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
    xf_reset(t);
    return rc;
}

int vqs_stage_pca_info(const vqs_stage *s, const float **ev, size_t *n, double *retained)
{
    if (!s || s->ops != &pca_ops || !s->impl || !((const xform *)s->impl)->eig)
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

/* ---- ROT ---------------------------------------------------------------------- */

static int rot_train(vqs_stage *s, size_t n, const float *x, const vqs_codec_opts *o)
{
    vqs_blas_single_thread(); /* OpenBLAS's own threads made results differ from run to run */
    xform *t = s->impl;
    (void)n;
    (void)x;
    xf_reset(t);
    if (!(t->A = malloc(sizeof(float) * s->d_in * s->d_in)))
        return vqs_seterr(VQS_ENOMEM, "%s: %zu x %zu rotation", s->token, s->d_in, s->d_in);
    int rc = random_orthogonal(s->d_in, o->seed ^ SEED_ROT, t->A, s->token);
    if (rc)
        xf_reset(t);
    return rc;
}

/* payload (ROT and OPQ): header, A (d_out * d_in) */
static int lin_save(const vqs_stage *s, vqs_wbuf *w)
{
    const xform *t = s->impl;
    put_header(s, w);
    vqs_wbuf_f32(w, t->A, s->d_out * s->d_in);
    return 0;
}

static int lin_load(vqs_stage *s, vqs_rbuf *r)
{
    xform *t = s->impl;
    int rc;
    xf_reset(t);
    if ((rc = get_header(s, r)) ||
        (rc = get_floats(s, r, s->d_out * s->d_in, &t->A, "rotation matrix")))
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
    xf_reset(t);
    return rc;
}

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
    xf_reset(t);
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
    put_header(s, w);
    vqs_wbuf_u32(w, (uint32_t)t->rounds);
    vqs_wbuf_put(w, t->signs, (size_t)t->rounds * s->d_out);
    return 0;
}

static int had_load(vqs_stage *s, vqs_rbuf *r)
{
    xform *t = s->impl;
    uint32_t rounds;
    int rc;
    xf_reset(t);
    if ((rc = get_header(s, r)) || (rc = vqs_rbuf_u32(r, &rounds)))
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
    xf_reset(t);
    return rc;
}

/* ---- OPQ ---------------------------------------------------------------------- */

typedef struct opq_pq {
    size_t M, ksub, dsub, n;
    float *cent;   /* M * ksub * dsub, layout (M, ksub, dsub) */
    float *sub;    /* n * dsub, one sub-space gathered contiguously */
    int32_t *code; /* n * M, layout (n, M) */
    double *acc;   /* ksub * dsub */
    size_t *cnt;   /* ksub */
} opq_pq;

static void gather(const float *y, size_t n, size_t D, size_t off, size_t dsub, float *sub)
{
    for (size_t i = 0; i < n; i++)
        memcpy(sub + i * dsub, y + i * D + off, dsub * sizeof(float));
}

/* One Lloyd step on sub-space m: assign with the current centroids, then
 * move each non-empty centroid to the mean of its points (an empty one stays
 * where it was). Leaves the assignment in code. */
static int lloyd_step(opq_pq *q, size_t m, int nthreads, const float *y, size_t D, int update,
                      double *err)
{
    const size_t n = q->n, ks = q->ksub, ds = q->dsub;
    float *cent = q->cent + m * ks * ds;
    gather(y, n, D, m * ds, ds, q->sub);
    int32_t *as = malloc(sizeof(int32_t) * n);
    float *dist = err ? malloc(sizeof(float) * n) : NULL;
    if (!as || (err && !dist)) {
        free(as);
        free(dist);
        return vqs_seterr(VQS_ENOMEM, "OPQ: assignments");
    }
    int rc = vqs_kmeans_assign(nthreads, n, ds, q->sub, ks, cent, as, dist);
    if (rc) {
        free(as);
        free(dist);
        return rc;
    }
    if (err)
        for (size_t i = 0; i < n; i++)
            *err += dist[i];
    free(dist);
    for (size_t i = 0; i < n; i++)
        q->code[i * q->M + m] = as[i];
    if (update) {
        memset(q->acc, 0, sizeof(double) * ks * ds);
        memset(q->cnt, 0, sizeof(size_t) * ks);
        for (size_t i = 0; i < n; i++) {
            size_t k = (size_t)as[i];
            q->cnt[k]++;
            for (size_t j = 0; j < ds; j++)
                q->acc[k * ds + j] += q->sub[i * ds + j];
        }
        for (size_t k = 0; k < ks; k++)
            if (q->cnt[k])
                for (size_t j = 0; j < ds; j++)
                    cent[k * ds + j] = (float)(q->acc[k * ds + j] / (double)q->cnt[k]);
    }
    free(as);
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
                          .max_points_per_centroid = (size_t)o->max_points_per_centroid};
    int rc = 0;
    for (size_t m = 0; m < M && !rc; m++) {
        ko.seed = o->seed + 7919 * (m + 1);
        gather(Y, n, N, m * ds, ds, q->sub);
        rc = vqs_kmeans(&ko, n, ds, q->sub, ks, cent + m * ks * ds, NULL);
        if (!rc) {
            float *keep = q->cent;
            q->cent = cent;
            rc = lloyd_step(q, m, o->nthreads, Y, N, 0, err);
            q->cent = keep;
        }
    }
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
static int ea_init(const float *X, size_t n, size_t d, size_t N, size_t M, float *A, const char *tok)
{
    const size_t ds = N / M;
    double *mean = malloc(sizeof(double) * d), *w = malloc(sizeof(double) * d);
    double *V = malloc(sizeof(double) * d * d), *lp = calloc(M, sizeof(double));
    size_t *cnt = calloc(M, sizeof(size_t));
    int rc = 0;
    if (!mean || !w || !V || !lp || !cnt) {
        rc = vqs_seterr(VQS_ENOMEM, "%s: eigenvalue allocation", tok);
        goto out;
    }
    if ((rc = scatter_eig(X, n, d, mean, w, V, tok)))
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

static int opq_train(vqs_stage *s, size_t n_in, const float *x_in, const vqs_codec_opts *o)
{
    vqs_blas_single_thread(); /* OpenBLAS's own threads made results differ from run to run */
    xform *t = s->impl;
    const size_t d = s->d_in, N = s->d_out, M = t->M, ks = t->ksub, ds = N / M;
    if (n_in < ks)
        return vqs_seterr(VQS_EINVAL, "%s: needs at least %zu training vectors for %zu centroids "
                          "per sub-quantizer (got %zu)", s->token, ks, ks, n_in);
    xf_reset(t);
    size_t n = n_in < OPQ_MAX_TRAIN ? n_in : OPQ_MAX_TRAIN;
    int rc = 0, lwork = -1;
    float *X = malloc(sizeof(float) * n * d), *Y = malloc(sizeof(float) * n * N);
    float *Mx = malloc(sizeof(float) * N * d), *Rm = malloc(sizeof(float) * d * d);
    double *mean = calloc(d, sizeof(double)), *wa = malloc(sizeof(double) * N * d);
    double *u = malloc(sizeof(double) * d * N), *vt = malloc(sizeof(double) * N * N);
    double *sv = malloc(sizeof(double) * N), *work = NULL;
    size_t *pick = NULL;
    opq_pq q = {.M = M, .ksub = ks, .dsub = ds, .n = n};
    q.cent = malloc(sizeof(float) * M * ks * ds);
    float *cent2 = malloc(sizeof(float) * M * ks * ds);
    q.sub = malloc(sizeof(float) * n * ds);
    q.code = malloc(sizeof(int32_t) * n * M);
    q.acc = malloc(sizeof(double) * ks * ds);
    q.cnt = malloc(sizeof(size_t) * ks);
    if (!X || !Y || !Mx || !Rm || !mean || !wa || !u || !vt || !sv || !q.cent || !cent2 || !q.sub ||
        !q.code || !q.acc || !q.cnt) {
        rc = vqs_seterr(VQS_ENOMEM, "%s: training buffers for %zu x %zu", s->token, n, d);
        goto out;
    }
    /* seeded subsample (partial Fisher-Yates) if n_in > OPQ_MAX_TRAIN */
    vqs_rng g;
    vqs_rng_seed(&g, o->seed ^ SEED_OPQ);
    if (n < n_in) {
        if (!(pick = malloc(sizeof(size_t) * n_in))) {
            rc = vqs_seterr(VQS_ENOMEM, "%s: subsample", s->token);
            goto out;
        }
        for (size_t i = 0; i < n_in; i++)
            pick[i] = i;
        for (size_t i = 0; i < n; i++) {
            size_t j = i + (size_t)(vqs_rng_uniform(&g) * (double)(n_in - i));
            if (j >= n_in)
                j = n_in - 1;
            size_t tmp = pick[i];
            pick[i] = pick[j];
            pick[j] = tmp;
        }
    }
    for (size_t i = 0; i < n; i++)
        memcpy(X + i * d, x_in + (pick ? pick[i] : i) * d, sizeof(float) * d);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            mean[j] += X[i * d + j];
    for (size_t j = 0; j < d; j++)
        mean[j] /= (double)n;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            X[i * d + j] = (float)(X[i * d + j] - mean[j]);

    if (!(t->A = malloc(sizeof(float) * N * d))) {
        rc = vqs_seterr(VQS_ENOMEM, "%s: rotation", s->token);
        goto out;
    }
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
        } else if ((rc = ea_init(X, n, d, N, M, Rm, s->token))) {
            goto out;
        }
        double e = 0;
        if ((rc = init_pq(&q, cent2, X, n, d, N, Rm, Y, o, s->token, &e)))
            goto out;
        if (o->verbose)
            fprintf(stderr, "vqs %s: start from %s: PQ MSE %.6g\n", s->token,
                    cand ? "the eigenvalue allocation" : "the identity", e / (double)n);
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
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)N, (int)d, 1.0f, X,
                    (int)d, t->A, (int)d, 0.0f, Y, (int)N);
        /* warm-started Lloyd steps (at first the k-means has just run), the
         * last one only assigns */
        int steps = it == 0 ? 1 : OPQ_NITER_PQ;
        for (size_t m = 0; m < M && !rc; m++)
            for (int st = 0; st < steps && !rc; st++)
                rc = lloyd_step(&q, m, nt, Y, N, st + 1 < steps, NULL);
        if (rc)
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
        if (o->verbose)
            fprintf(stderr, "vqs %s: iteration %d, PQ MSE %.6g (%.1f s)\n", s->token, it,
                    err / (double)n, vqs_now() - t0);
        /* Mx = Yhat^T X (N x d) */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)N, (int)d, (int)n, 1.0f, Y,
                    (int)N, X, (int)d, 0.0f, Mx, (int)d);
        if ((rc = procrustes(Mx, N, d, t->A, wa, u, vt, sv, &work, &lwork, s->token)))
            goto out;
        if (prev - err < OPQ_TOL * prev)
            break; /* converged: less than 1e-4 relative gain in an iteration */
        prev = err;
    }
out:
    if (rc)
        xf_reset(t);
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
    free(pick);
    free(cent2);
    free(q.cent);
    free(q.sub);
    free(q.code);
    free(q.acc);
    free(q.cnt);
    return rc;
}

/* ---- vtables ------------------------------------------------------------------ */

static const vqs_stage_ops pca_ops = {
    .family = "PCA", .train = pca_train, .apply = lin_apply, .reverse = lin_reverse,
    .ip_query = lin_ip_query, .adjoint = lin_adjoint,
    .save = pca_save, .load = pca_load, .destroy = xf_destroy,
};
static const vqs_stage_ops rot_ops = {
    .family = "ROT", .train = rot_train, .apply = lin_apply, .reverse = lin_reverse,
    .ip_query = lin_ip_query, .adjoint = lin_adjoint,
    .save = lin_save, .load = lin_load, .destroy = xf_destroy,
};
static const vqs_stage_ops had_ops = {
    .family = "HAD", .train = had_train, .apply = had_apply, .reverse = had_reverse,
    .adjoint = had_adjoint, .save = had_save, .load = had_load, .destroy = xf_destroy,
};
static const vqs_stage_ops opq_ops = {
    .family = "OPQ", .uses_next = 1, .train = opq_train, .apply = lin_apply, .reverse = lin_reverse,
    .ip_query = lin_ip_query, .adjoint = lin_adjoint,
    .save = lin_save, .load = lin_load, .destroy = xf_destroy,
};
