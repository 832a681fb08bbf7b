/*
 * kmeans.c: k-means (Lloyd) with k-means++ seeding and BLAS assignment; the
 * trainer behind PQ, RVQ and (later) IVF coarse quantizers.
 *
 * Design decisions:
 * - Seeding: k-means++ (D^2 sampling), computed on a seeded random subset of
 *   at most INIT_PPC * k training points. FAISS seeds with k random points;
 *   k-means++ gives an objective at least as good in practice and never
 *   seeds two centroids on duplicated points (D^2 of a duplicate is exactly
 *   0 because seeding distances are computed directly as |x - c|^2, not via
 *   the BLAS expansion, whose cancellation error could make a duplicate look
 *   a little away from its twin). The subset bounds the sequential cost
 *   (k passes over the points) to about one Lloyd iteration's worth of
 *   memory traffic. Rejected: "greedy" k-means++ (2 + log k candidates per
 *   step): several times the cost for a small gain that Lloyd erases; random
 *   seeding (FAISS): more empty clusters on data with duplicates. For k >
 *   PP_MAX_K (nbits > 12 codebooks) seeding is k distinct random points, as
 *   k-means++ would be quadratic in k.
 * - Assignment: |x|^2 - 2 x.c + |c|^2 with cblas_sgemm on tiles of ROW_BLOCK
 *   rows x COL_BLOCK centroids (a running argmin across centroid tiles, so
 *   any k fits a fixed 1 MB buffer per thread); row tiles are the parallel
 *   tasks (vqs_parallel_for) and BLAS itself is single-threaded. Ties go to
 *   the lowest centroid index. Distances are clamped at 0.
 * - Update: the sums are split by *centroid* range, not by thread: each task
 *   owns a range of centroids and scans all points in order, adding those
 *   assigned to its range into double accumulators. Each centroid's sum is
 *   thus taken in point order whatever the thread count, so results are
 *   identical for a given seed *for every thread count* (stronger than the
 *   usual per-thread partial sums reduced in a fixed order, which is
 *   deterministic only for a fixed thread count, and needs nthreads * k * d
 *   scratch). Each task reads the n assignments (4 bytes each), which is
 *   cheap next to the n * d floats read once in total.
 * - Empty clusters: FAISS's repair, made deterministic and more effective.
 *   An empty cluster takes half of the cluster with the largest sum of
 *   squared distances (FAISS picks at random in proportion to size; the
 *   largest *spread* is what a split reduces, and a large pile of identical
 *   points, common in real data, cannot be split at all). As in FAISS both
 *   centroids become the old one times (1 +- SPLIT_EPS), symmetrically per
 *   coordinate; then the points are really split: SPLIT_ITERS 2-means steps
 *   on that cluster's points (FAISS only halves the counts). If the
 *   perturbation does not separate the points (e.g. a zero centroid), the
 *   first step halves them by index. Clusters of identical points are never
 *   chosen, so with fewer distinct points than k some clusters stay empty.
 * - Subsampling: if n > max_points_per_centroid * k, a seeded uniform subset
 *   (partial Fisher-Yates, then sorted for locality) of that size is used.
 * - Objective: stats->obj[it] is, as in FAISS's iteration_stats, the sum of
 *   squared distances at the assignment step of iteration it, i.e. w.r.t.
 *   the centroids *before* that iteration's update. stats->final_obj is the
 *   objective of the *returned* centroids on the training sample (one more
 *   assignment pass after the last update), so final_obj <= obj[niter-1]
 *   (Lloyd never increases it). Both use the BLAS distances (float, as
 *   FAISS); a test comparing with FAISS must evaluate both centroid sets
 *   itself on the same points.
 * - Convergence: iterations stop early only when an assignment is identical
 *   to the previous one and no cluster was split in between: the centroids
 *   are then a fixed point and further iterations would change nothing.
 * - spherical: centroids are L2-normalised after seeding and after every
 *   update; the objective is still the squared L2 distance.
 */
#define _GNU_SOURCE
#include "codebook_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROW_BLOCK 256
#define COL_BLOCK 1024
#define INIT_PPC 64           /* k-means++ runs on at most INIT_PPC * k points */
#define PP_MAX_K 4096         /* larger k: random seeding */
#define SPLIT_EPS (1.0f / 1024.0f)
#define SPLIT_ITERS 4         /* 2-means steps when splitting a cluster */
#define SEED_CHUNK 4096       /* rows per task in the k-means++ distance update */

/* ---- assignment ---------------------------------------------------------- */

typedef struct assign_job {
    size_t n, d, k;
    const float *x;     /* n * d */
    const float *c;     /* k * d */
    const float *cnorm; /* k: |c|^2 */
    int32_t *assign;    /* n */
    float *dist;        /* n, or NULL */
    float **buf;        /* per thread: ROW_BLOCK * COL_BLOCK */
} assign_job;

static int assign_task(void *ctx, size_t t, int tid)
{
    const assign_job *J = ctx;
    size_t i0 = t * ROW_BLOCK, nb = J->n - i0 < ROW_BLOCK ? J->n - i0 : ROW_BLOCK, d = J->d;
    const float *x = J->x + i0 * d;
    float *ip = J->buf[tid];
    float best[ROW_BLOCK];
    int32_t bi[ROW_BLOCK];
    for (size_t i = 0; i < nb; i++) {
        best[i] = INFINITY;
        bi[i] = 0;
    }
    for (size_t c0 = 0; c0 < J->k; c0 += COL_BLOCK) {
        size_t nc = J->k - c0 < COL_BLOCK ? J->k - c0 : COL_BLOCK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nc, (int)d, 1.0f, x,
                    (int)d, J->c + c0 * d, (int)d, 0.0f, ip, (int)nc);
        for (size_t i = 0; i < nb; i++) {
            const float *row = ip + i * nc;
            float b = best[i];
            int32_t j0 = bi[i];
            for (size_t j = 0; j < nc; j++) {
                float v = J->cnorm[c0 + j] - 2.0f * row[j];
                if (v < b) {
                    b = v;
                    j0 = (int32_t)(c0 + j);
                }
            }
            best[i] = b;
            bi[i] = j0;
        }
    }
    for (size_t i = 0; i < nb; i++) {
        J->assign[i0 + i] = bi[i];
        if (J->dist) {
            const float *xi = x + i * d;
            float xn = 0;
            for (size_t j = 0; j < d; j++)
                xn += xi[j] * xi[j];
            float v = xn + best[i];
            J->dist[i0 + i] = v > 0 ? v : 0;
        }
    }
    return 0;
}

/* Per-thread tile buffers, reused across Lloyd iterations. */
typedef struct assigner {
    int nt;
    float **buf;
    float *cnorm; /* k */
} assigner;

static void assigner_free(assigner *A)
{
    if (A->buf)
        for (int t = 0; t < A->nt; t++)
            free(A->buf[t]);
    free(A->buf);
    free(A->cnorm);
    memset(A, 0, sizeof *A);
}

static int assigner_init(assigner *A, int nthreads, size_t n, size_t k)
{
    memset(A, 0, sizeof *A);
    size_t ntask = (n + ROW_BLOCK - 1) / ROW_BLOCK;
    int nt = nthreads > 0 ? nthreads : vqs_default_threads();
    if ((size_t)nt > ntask)
        nt = ntask ? (int)ntask : 1;
    A->nt = nt;
    A->buf = calloc((size_t)nt, sizeof *A->buf);
    A->cnorm = malloc(sizeof(float) * k);
    if (!A->buf || !A->cnorm)
        goto fail;
    for (int t = 0; t < nt; t++)
        if (!(A->buf[t] = malloc(sizeof(float) * ROW_BLOCK * COL_BLOCK)))
            goto fail;
    return 0;
fail:
    assigner_free(A);
    return vqs_seterr(VQS_ENOMEM, "k-means: assignment buffers for %zu centroids", k);
}

static int assigner_run(assigner *A, size_t n, size_t d, const float *x, size_t k,
                        const float *c, int32_t *assign, float *dist)
{
    for (size_t j = 0; j < k; j++) {
        float s = 0;
        for (size_t t = 0; t < d; t++)
            s += c[j * d + t] * c[j * d + t];
        A->cnorm[j] = s;
    }
    assign_job J = {n, d, k, x, c, A->cnorm, assign, dist, A->buf};
    vqs_blas_single_thread();
    return vqs_parallel_for(A->nt, (n + ROW_BLOCK - 1) / ROW_BLOCK, assign_task, &J);
}

int vqs_kmeans_assign(int nthreads, size_t n, size_t d, const float *x, size_t k,
                      const float *centroids, int32_t *assign, float *dist)
{
    if (n && (!x || !centroids || !assign))
        return vqs_seterr(VQS_EINVAL, "kmeans_assign: NULL argument");
    if (d == 0 || k == 0 || d > INT32_MAX || k > INT32_MAX)
        return vqs_seterr(VQS_EINVAL, "kmeans_assign: d = %zu, k = %zu", d, k);
    if (n == 0)
        return 0;
    assigner A;
    int rc = assigner_init(&A, nthreads, n, k);
    if (rc)
        return rc;
    rc = assigner_run(&A, n, d, x, k, centroids, assign, dist);
    assigner_free(&A);
    return rc;
}

/* ---- helpers ------------------------------------------------------------- */

static double sqdist(const float *a, const float *b, size_t d)
{
    float s = 0;
    for (size_t j = 0; j < d; j++) {
        float t = a[j] - b[j];
        s += t * t;
    }
    return s;
}

static uint64_t rng_below(vqs_rng *r, uint64_t n) { return vqs_rng_next(r) % n; }

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* First m indices of a seeded random permutation of [0, n), sorted. */
static size_t *random_subset(vqs_rng *r, size_t n, size_t m)
{
    size_t *perm = malloc(sizeof(size_t) * (n ? n : 1));
    if (!perm)
        return NULL;
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    for (size_t i = 0; i < m; i++) {
        size_t j = i + (size_t)rng_below(r, n - i);
        size_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    qsort(perm, m, sizeof *perm, cmp_size);
    return perm;
}

static void normalize_rows(size_t k, size_t d, float *c)
{
    for (size_t j = 0; j < k; j++) {
        double s = 0;
        for (size_t t = 0; t < d; t++)
            s += (double)c[j * d + t] * c[j * d + t];
        if (s > 0) {
            float inv = (float)(1.0 / sqrt(s));
            for (size_t t = 0; t < d; t++)
                c[j * d + t] *= inv;
        }
    }
}

/* ---- k-means++ seeding ----------------------------------------------------- */

typedef struct seed_job {
    size_t n, d;
    const float *x;
    const float *c; /* the newest centroid */
    float *d2;      /* n: distance to the nearest centroid so far */
    double *part;   /* per chunk: sum of d2 */
} seed_job;

static int seed_task(void *ctx, size_t t, int tid)
{
    (void)tid;
    seed_job *J = ctx;
    size_t i0 = t * SEED_CHUNK, i1 = i0 + SEED_CHUNK < J->n ? i0 + SEED_CHUNK : J->n;
    double s = 0;
    for (size_t i = i0; i < i1; i++) {
        float v = (float)sqdist(J->x + i * J->d, J->c, J->d);
        if (v < J->d2[i])
            J->d2[i] = v;
        s += J->d2[i];
    }
    J->part[t] = s;
    return 0;
}

/* k-means++ on x (n rows, n >= k); writes c (k * d). */
static int seed_pp(int nt, vqs_rng *r, size_t n, size_t d, const float *x, size_t k, float *c)
{
    size_t nchunk = (n + SEED_CHUNK - 1) / SEED_CHUNK;
    float *d2 = malloc(sizeof(float) * n);
    double *part = malloc(sizeof(double) * nchunk);
    if (!d2 || !part) {
        free(d2);
        free(part);
        return vqs_seterr(VQS_ENOMEM, "k-means++: %zu points", n);
    }
    for (size_t i = 0; i < n; i++)
        d2[i] = INFINITY;
    size_t pick = (size_t)rng_below(r, n);
    int rc = 0;
    for (size_t j = 0; j < k; j++) {
        memcpy(c + j * d, x + pick * d, sizeof(float) * d);
        if (j + 1 == k)
            break;
        seed_job J = {n, d, x, c + j * d, d2, part};
        /* small problems: no thread start-up per step */
        if ((rc = vqs_parallel_for(n * d < (1u << 18) ? 1 : nt, nchunk, seed_task, &J)))
            break;
        double tot = 0;
        for (size_t t = 0; t < nchunk; t++)
            tot += part[t];
        if (!(tot > 0)) { /* every point sits on a centroid: duplicates left */
            pick = (size_t)rng_below(r, n);
            continue;
        }
        double u = vqs_rng_uniform(r) * tot, acc = 0;
        size_t t = 0;
        while (t + 1 < nchunk && acc + part[t] <= u)
            acc += part[t++];
        size_t i = t * SEED_CHUNK, i1 = i + SEED_CHUNK < n ? i + SEED_CHUNK : n;
        pick = i1 - 1;
        for (; i < i1; i++) {
            acc += d2[i];
            if (acc > u && d2[i] > 0) {
                pick = i;
                break;
            }
        }
        if (d2[pick] == 0) /* rounding at the very end: take the last candidate */
            for (size_t q = 0; q < n; q++)
                if (d2[q] > 0)
                    pick = q;
    }
    free(d2);
    free(part);
    return rc;
}

/* ---- update ---------------------------------------------------------------- */

typedef struct update_job {
    size_t n, d, k, ntask;
    const float *x;
    const int32_t *assign;
    double *sum; /* k * d */
} update_job;

static int update_task(void *ctx, size_t t, int tid)
{
    (void)tid;
    update_job *J = ctx;
    size_t c0 = J->k * t / J->ntask, c1 = J->k * (t + 1) / J->ntask, d = J->d;
    memset(J->sum + c0 * d, 0, sizeof(double) * (c1 - c0) * d);
    for (size_t i = 0; i < J->n; i++) {
        size_t a = (size_t)J->assign[i];
        if (a < c0 || a >= c1)
            continue;
        double *s = J->sum + a * d;
        const float *xi = J->x + i * d;
        for (size_t j = 0; j < d; j++)
            s[j] += xi[j];
    }
    return 0;
}

/* Splits cluster big to fill the empty cluster e (see the file comment);
 * updates assign, count and sse (within-cluster sum of squares) of both. */
static void split_cluster(size_t n, size_t d, const float *x, int32_t *assign, size_t *count,
                          double *sse, float *c, size_t e, size_t big, double *acc /* 2 * d */)
{
    float *ce = c + e * d, *cb = c + big * d;
    for (size_t j = 0; j < d; j++) {
        float v = cb[j];
        ce[j] = j % 2 == 0 ? v * (1 + SPLIT_EPS) : v * (1 - SPLIT_EPS);
        cb[j] = j % 2 == 0 ? v * (1 - SPLIT_EPS) : v * (1 + SPLIT_EPS);
    }
    int by_index = 0;
    for (int pass = 0; pass < SPLIT_ITERS; pass++) {
        /* one 2-means step restricted to the points of the two clusters */
        size_t ne = 0, nb = 0, tot = count[big] + count[e], half = tot / 2, seen = 0;
        memset(acc, 0, sizeof(double) * 2 * d);
        for (size_t i = 0; i < n; i++) {
            if ((size_t)assign[i] != big && (size_t)assign[i] != e)
                continue;
            const float *xi = x + i * d;
            int to_e = by_index ? seen++ < half : sqdist(xi, ce, d) < sqdist(xi, cb, d);
            double *s = acc + (to_e ? 0 : d);
            for (size_t j = 0; j < d; j++)
                s[j] += xi[j];
            assign[i] = (int32_t)(to_e ? e : big);
            if (to_e)
                ne++;
            else
                nb++;
        }
        count[e] = ne;
        count[big] = nb;
        if (ne == 0 || nb == 0) {
            /* the perturbation does not separate them (e.g. a zero centroid):
             * halves by index instead (the cluster has non-zero spread, so the
             * two half means differ), then refine */
            if (by_index)
                break;
            by_index = 1;
            pass--;
            continue;
        }
        by_index = 0;
        for (size_t j = 0; j < d; j++) {
            ce[j] = (float)(acc[j] / (double)ne);
            cb[j] = (float)(acc[d + j] / (double)nb);
        }
    }
    sse[e] = sse[big] = 0;
    for (size_t i = 0; i < n; i++)
        if ((size_t)assign[i] == big || (size_t)assign[i] == e)
            sse[assign[i]] += sqdist(x + i * d, c + (size_t)assign[i] * d, d);
}

/* ---- driver -------------------------------------------------------------- */

int vqs_kmeans(const vqs_kmeans_opts *o, size_t n, size_t d, const float *x, size_t k,
               float *centroids, vqs_kmeans_stats *stats)
{
    static const vqs_kmeans_opts defaults = {0};
    if (!o)
        o = &defaults;
    if (stats)
        memset(stats, 0, sizeof *stats);
    if (!centroids || (n && !x))
        return vqs_seterr(VQS_EINVAL, "k-means: NULL argument");
    if (d == 0 || k == 0 || d > INT32_MAX || k > INT32_MAX)
        return vqs_seterr(VQS_EINVAL, "k-means: d = %zu, k = %zu", d, k);
    if (n < k)
        return vqs_seterr(VQS_EINVAL, "k-means: %zu training points for k = %zu centroids; "
                                      "at least %zu are needed", n, k, k);
    for (size_t i = 0; i < n * d; i++)
        if (!isfinite(x[i]))
            return vqs_seterr(VQS_ENONFINITE, "k-means: row %zu, column %zu is not finite",
                              i / d, i % d);
    double t0 = vqs_now();
    int niter = o->niter > 0 ? o->niter : 25;
    int nt = o->nthreads > 0 ? o->nthreads : vqs_default_threads();
    size_t ppc = o->max_points_per_centroid ? o->max_points_per_centroid : 256;
    vqs_rng rng;
    vqs_rng_seed(&rng, o->seed);

    int rc = 0;
    float *xs = NULL, *xinit = NULL, *dist = NULL;
    int32_t *assign = NULL, *prev = NULL;
    size_t *count = NULL, *sub = NULL;
    double *sum = NULL, *sse = NULL;
    assigner A = {0};

    /* training sample */
    const float *xt = x;
    size_t nt_pts = n;
    if (ppc != SIZE_MAX && k <= SIZE_MAX / ppc && n > ppc * k) {
        nt_pts = ppc * k;
        if (!(sub = random_subset(&rng, n, nt_pts)) || !(xs = malloc(sizeof(float) * nt_pts * d))) {
            rc = vqs_seterr(VQS_ENOMEM, "k-means: sample of %zu x %zu", nt_pts, d);
            goto done;
        }
        for (size_t i = 0; i < nt_pts; i++)
            memcpy(xs + i * d, x + sub[i] * d, sizeof(float) * d);
        free(sub);
        sub = NULL;
        xt = xs;
    }

    /* seeding */
    if (k == 1) {
        memcpy(centroids, xt, sizeof(float) * d); /* overwritten by the first update */
    } else if (k > PP_MAX_K) {
        if (!(sub = random_subset(&rng, nt_pts, k))) {
            rc = vqs_seterr(VQS_ENOMEM, "k-means: seeding");
            goto done;
        }
        for (size_t j = 0; j < k; j++)
            memcpy(centroids + j * d, xt + sub[j] * d, sizeof(float) * d);
        free(sub);
        sub = NULL;
    } else {
        const float *xp = xt;
        size_t np = nt_pts;
        if (np > INIT_PPC * k) {
            np = INIT_PPC * k;
            if (!(sub = random_subset(&rng, nt_pts, np)) ||
                !(xinit = malloc(sizeof(float) * np * d))) {
                rc = vqs_seterr(VQS_ENOMEM, "k-means++: sample of %zu x %zu", np, d);
                goto done;
            }
            for (size_t i = 0; i < np; i++)
                memcpy(xinit + i * d, xt + sub[i] * d, sizeof(float) * d);
            free(sub);
            sub = NULL;
            xp = xinit;
        }
        if ((rc = seed_pp(nt, &rng, np, d, xp, k, centroids)))
            goto done;
        free(xinit);
        xinit = NULL;
    }
    if (o->spherical)
        normalize_rows(k, d, centroids);

    assign = malloc(sizeof(int32_t) * nt_pts);
    prev = malloc(sizeof(int32_t) * nt_pts);
    dist = malloc(sizeof(float) * nt_pts);
    count = malloc(sizeof(size_t) * k);
    sum = malloc(sizeof(double) * (k > 2 ? k : 2) * d);
    sse = malloc(sizeof(double) * k);
    if (!assign || !prev || !dist || !count || !sum || !sse) {
        rc = vqs_seterr(VQS_ENOMEM, "k-means: %zu points, k = %zu, d = %zu", nt_pts, k, d);
        goto done;
    }
    if ((rc = assigner_init(&A, nt, nt_pts, k)))
        goto done;

    size_t nsplit = 0, last_split = 0;
    int it;
    for (it = 0; it < niter; it++) {
        if ((rc = assigner_run(&A, nt_pts, d, xt, k, centroids, assign, dist)))
            goto done;
        double obj = 0;
        for (size_t i = 0; i < nt_pts; i++)
            obj += dist[i];
        if (stats && it < 256)
            stats->obj[it] = obj;
        int same = it > 0 && last_split == 0 && memcmp(assign, prev, sizeof(int32_t) * nt_pts) == 0;
        if (o->verbose)
            fprintf(stderr, "k-means: iter %d/%d objective %.6g (%zu splits so far) %.2f s\n",
                    it + 1, niter, obj, nsplit, vqs_now() - t0);
        if (same) { /* fixed point: the update would reproduce the centroids */
            it++;
            break;
        }
        memcpy(prev, assign, sizeof(int32_t) * nt_pts);

        /* update */
        memset(count, 0, sizeof(size_t) * k);
        for (size_t i = 0; i < nt_pts; i++)
            count[assign[i]]++;
        size_t ntask = (size_t)nt * 4 < k ? (size_t)nt * 4 : k;
        update_job U = {nt_pts, d, k, ntask, xt, assign, sum};
        if ((rc = vqs_parallel_for(nt, ntask, update_task, &U)))
            goto done;
        for (size_t j = 0; j < k; j++)
            if (count[j])
                for (size_t t = 0; t < d; t++)
                    centroids[j * d + t] = (float)(sum[j * d + t] / (double)count[j]);

        /* empty clusters: split the cluster with the largest sum of squares */
        last_split = 0;
        int have_sse = 0;
        for (size_t e = 0; e < k; e++) {
            if (count[e])
                continue;
            if (!have_sse) {
                memset(sse, 0, sizeof(double) * k);
                for (size_t i = 0; i < nt_pts; i++)
                    sse[assign[i]] += sqdist(xt + i * d, centroids + (size_t)assign[i] * d, d);
                have_sse = 1;
            }
            size_t big = 0;
            for (size_t j = 1; j < k; j++)
                if (sse[j] > sse[big])
                    big = j;
            if (!(sse[big] > 0))
                break; /* only clusters of identical points are left */
            split_cluster(nt_pts, d, xt, assign, count, sse, centroids, e, big, sum);
            last_split++;
        }
        nsplit += last_split;
        if (o->spherical)
            normalize_rows(k, d, centroids);
    }

    /* objective of the returned centroids */
    if ((rc = assigner_run(&A, nt_pts, d, xt, k, centroids, assign, dist)))
        goto done;
    double fobj = 0;
    for (size_t i = 0; i < nt_pts; i++)
        fobj += dist[i];
    if (o->verbose)
        fprintf(stderr, "k-means: %d iterations, final objective %.6g, %zu splits, %zu points, "
                        "%.2f s\n", it, fobj, nsplit, nt_pts, vqs_now() - t0);
    if (stats) {
        stats->niter = it;
        stats->final_obj = fobj;
        stats->nsplit = nsplit;
        stats->ntrain = nt_pts;
        stats->seconds = vqs_now() - t0;
    }
done:
    assigner_free(&A);
    free(xs);
    free(xinit);
    free(sub);
    free(dist);
    free(assign);
    free(prev);
    free(count);
    free(sum);
    free(sse);
    return rc;
}
