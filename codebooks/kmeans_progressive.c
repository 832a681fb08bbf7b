/*
 * kmeans_progressive.c: progressive-dimension k-means, the trainer of RVQ's
 * codebooks (vqs_kmeans_progressive, declared in codebook_internal.h).
 *
 * FAISS's ProgressiveDimClustering, which its ResidualQuantizer uses by
 * default: PCA-rotate the points, then run k-means on the first d_i
 * principal coordinates for d_i = floor(d^((i+1)/PD_STEPS)), i = 0 ..
 * PD_STEPS-1, each step starting from the previous step's centroids padded
 * with zeros (the first from k-means++), and rotate the centroids back. On
 * residuals it finds clearly better optima than full-dimensional Lloyd
 * (siftsmall RVQ4x8 MSE: 5% lower), because early steps place the centroids
 * along the dominant directions before the noisy ones are added.
 *
 * Design decisions:
 * - Each step is the Lloyd driver of kmeans.c (vqs_kmeans_from) started
 *   from the previous step's centroids, so seeding, empty-cluster repair
 *   and determinism are those of vqs_kmeans.
 * - The PCA is its own few lines (float covariance by ssyrk, LAPACK dsyev),
 *   not pca.c's double-precision scatter_eig: sharing that would change the
 *   rotation's last bits and so every trained RVQ codebook.
 * - Over participants (o->reduce): the subsample is drawn over the global
 *   rows; the mean's sums and the covariance's upper triangle are summed
 *   over the participants (in double, then back to float as one process's
 *   ssyrk result), so each solves the same eigenproblem; every step is
 *   vqs_kmeans_from over the participants.
 */
#include "codebook_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PD_STEPS 10

extern void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda,
                   double *w, double *work, const int *lwork, int *info);

int vqs_kmeans_progressive(const vqs_kmeans_opts *o, size_t n, size_t d, const float *x,
                           size_t k, float *centroids, vqs_kmeans_stats *stats)
{
    static const vqs_kmeans_opts defaults = {0};
    if (!o)
        o = &defaults;
    if (!centroids || (n && !x) || d == 0 || k == 0 || d > 65536 || k > INT32_MAX)
        return vqs_seterr(VQS_EINVAL, "k-means: bad arguments (d = %zu, k = %zu)", d, k);
    /* over participants (o->reduce): x is this one's slice, nall all rows */
    const vqs_reducer *R = o->reduce && o->reduce->size > 1 ? o->reduce : NULL;
    size_t nall = n, first = 0;
    int rc = vqs_reduce_layout(R, 0, n, &nall, &first), di_n = (int)d, info = 0, lwork = -1;
    if (rc)
        return rc;
    if (nall < k)
        return vqs_seterr(VQS_EINVAL, "k-means: %zu training points for k = %zu centroids; "
                                      "at least %zu are needed", nall, k, k);
    size_t ppc = o->max_points_per_centroid ? o->max_points_per_centroid : 256;
    size_t mall = nall, m = n; /* sample rows: of all participants, here */
    if (ppc != SIZE_MAX && k <= SIZE_MAX / ppc && nall > ppc * k)
        mall = ppc * k;
    size_t *sub = NULL;
    if (mall < nall && !(sub = vqs_kmeans_subset_slice(o->seed ^ 0x7064u, nall, mall, first, n, &m)))
        rc = vqs_seterr(VQS_ENOMEM, "progressive k-means: sample"); /* global rows; this participant's */
    size_t m1 = m ? m : 1;
    float *xt = malloc(sizeof(float) * m1 * d), *xs = malloc(sizeof(float) * m1 * d);
    float *cov = malloc(sizeof(float) * d * d), *rot = malloc(sizeof(float) * d * d);
    float *cs = malloc(sizeof(float) * k * d);
    double *a = malloc(sizeof(double) * d * d), *w = malloc(sizeof(double) * (d + 1));
    double *mean = calloc(d + 1, sizeof(double)), *work = NULL;
    if (!rc && (!xt || !xs || !cov || !rot || !cs || !a || !w || !mean))
        rc = vqs_seterr(VQS_ENOMEM, "progressive k-means: %zu x %zu", m, d);
    for (size_t i = 0; !rc && i < m; i++)
        memcpy(xt + i * d, x + (sub ? sub[i] : i) * d, sizeof(float) * d);
    /* PCA: eigenvectors of the covariance, by decreasing eigenvalue */
    for (size_t i = 0; !rc && i < m; i++)
        for (size_t j = 0; j < d; j++)
            mean[j] += xt[i * d + j];
    if (mean)
        mean[d] = (double)m;
    if ((rc = vqs_reduce_sum(R, rc, mean, d + 1))) /* every participant's sums */
        goto done;
    for (size_t j = 0; j < d; j++)
        mean[j] /= mean[d];
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < d; j++)
            xs[i * d + j] = (float)(xt[i * d + j] - mean[j]);
    vqs_blas_single_thread();
    if (m)
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)m, 1.0f, xs, (int)d, 0.0f,
                    cov, (int)d);
    else
        memset(cov, 0, sizeof(float) * d * d);
    if (R) { /* the participants' covariances (upper triangles) summed, then as one process */
        for (size_t i = 0; i < d * d; i++)
            a[i] = cov[i];
        if ((rc = vqs_reduce_sum(R, 0, a, d * d)))
            goto done;
        for (size_t i = 0; i < d * d; i++)
            cov[i] = (float)a[i];
    }
    for (size_t i = 0; i < d; i++)
        for (size_t j = i; j < d; j++)
            a[i * d + j] = a[j * d + i] = cov[i * d + j]; /* symmetric: either order */
    double wq;
    dsyev_("V", "U", &di_n, a, &di_n, w, &wq, &lwork, &info);
    lwork = info == 0 ? (int)wq : 3 * (int)d;
    if (!(work = malloc(sizeof(double) * (size_t)lwork)))
        rc = vqs_seterr(VQS_ENOMEM, "progressive k-means: LAPACK work");
    if ((rc = vqs_reduce_agree(R, rc)))
        goto done;
    dsyev_("V", "U", &di_n, a, &di_n, w, work, &lwork, &info);
    if (info != 0) {
        rc = vqs_seterr(VQS_EINVAL, "progressive k-means: dsyev failed (info %d)", info);
        goto done;
    }
    /* a (column-major) column j = eigenvector j, ascending: rot (d x d,
     * row-major) column c = eigenvector d-1-c, so y = (x - mean) rot */
    for (size_t r = 0; r < d; r++)
        for (size_t c = 0; c < d; c++)
            rot[r * d + c] = (float)a[(d - 1 - c) * d + r];
    if (m)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)d, (int)d, 1.0f, xs,
                    (int)d, rot, (int)d, 0.0f, xt, (int)d);

    vqs_kmeans_opts so = *o;
    so.niter = o->niter > 0 ? o->niter : 10;
    so.max_points_per_centroid = SIZE_MAX;
    size_t dprev = 0;
    for (int step = 0; step < PD_STEPS && !rc; step++) {
        size_t di = (size_t)pow((double)d, (1.0 + step) / PD_STEPS);
        if (step + 1 == PD_STEPS || di > d)
            di = d;
        if (di < 1)
            di = 1;
        if (di < dprev)
            di = dprev;
        for (size_t i = 0; i < m; i++)
            memcpy(xs + i * di, xt + i * d, sizeof(float) * di);
        if (step > 0) /* previous centroids (k x dprev) padded with zeros */
            for (size_t j = k; j-- > 0;) {
                memmove(cs + j * di, cs + j * dprev, sizeof(float) * dprev);
                memset(cs + j * di + dprev, 0, sizeof(float) * (di - dprev));
            }
        rc = vqs_kmeans_from(&so, m, di, xs, k, cs, stats, step > 0 ? cs : NULL);
        dprev = di;
    }
    if (rc)
        goto done;
    /* back: c = cs rot^T + mean */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)k, (int)d, (int)d, 1.0f, cs,
                (int)d, rot, (int)d, 0.0f, centroids, (int)d);
    for (size_t j = 0; j < k; j++)
        for (size_t t = 0; t < d; t++)
            centroids[j * d + t] += (float)mean[t];
done:
    free(xt);
    free(xs);
    free(cov);
    free(rot);
    free(cs);
    free(a);
    free(w);
    free(mean);
    free(work);
    free(sub);
    return rc;
}
