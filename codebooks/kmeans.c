/*
 * kmeans.c: k-means (Lloyd) with BLAS assignment, the update and the repair
 * of empty clusters; the trainer behind PQ, RVQ and (later) IVF coarse
 * quantizers. Seeding is in kmeans_seed.c, the progressive-dimension variant
 * RVQ trains with in kmeans_progressive.c, the SIMD kernels in kernels/.
 *
 * Design decisions:
 * - Seeding: k-means++ on a subset of the points, random points for
 *   very large k (kmeans_seed.c, where the reasons are).
 * - Assignment: |x|^2 - 2 x.c + |c|^2 with cblas_sgemm on tiles of ROW_BLOCK
 *   rows x COL_BLOCK centroids (a running argmin across centroid tiles, so
 *   any k fits a fixed 1 MB buffer per thread); row tiles are the parallel
 *   tasks (vqs_parallel_for) and BLAS itself is single-threaded. Ties go to
 *   the lowest centroid index. Distances are clamped at 0. Centroids that
 *   are exact copies of each other are found once per run of the
 *   assignment (a sort of the rows) and their points go to the lowest
 *   index: sgemm's rounding depends on a column's place in the tile (and
 *   on the OpenBLAS kernel the CPU gets), so two copies do not score alike
 *   and the copy that won depended on the machine. The argmin pass
 *   over a tile row is explicit SIMD (a running minimum per lane, then the
 *   lanes): as a scalar loop it cost half as much as the sgemm at d = 128
 *   and several times it at the small d of PQ and of progressive k-means'
 *   early steps. |x|^2 is computed once per k-means run, not per iteration.
 *   For d <= SMALL_D (PQ sub-spaces, the first progressive steps) there is
 *   no BLAS tile: the centroids are transposed once per iteration and one
 *   kernel computes |c|^2 - 2 <x, c> for 16 centroids per vector and keeps
 *   the running minimum in registers (four points at a time); an sgemm with
 *   an inner dimension of 4 spends its time packing, and the tile it writes
 *   costs more to re-read than the products cost to compute (siftsmall
 *   PQ16x8 training: 1.7x less CPU time than sgemm + argmin pass).
 * - Kernels (the argmin pass, |a - b|^2 for seeding) have plain C, AVX2 and
 *   AVX-512 versions (codebooks/kernels/km_*.c, one file per instruction
 *   set compiled with its own flags), picked by the SIMD level of
 *   index/kernels (CPU check, VQS_SIMD). All levels give bit-identical results: the same float
 *   operations in the same order (|a - b|^2 as 16 interleaved partial sums
 *   added pairwise, no FMA), so a seed gives the same centroids on any x86
 *   CPU. Rejected: auto-vectorisation (GCC 12 does not vectorise an argmin,
 *   nor a float sum without -ffast-math, which would make the order the
 *   compiler's choice); target_clones (ignores VQS_SIMD, so the lower
 *   levels could not be tested on an AVX-512 machine).
 * - Update: the sums are split by *centroid* range, not by thread: the
 *   points are counting-sorted by centroid (stable, so in point order), and
 *   each task owns a range of centroids and adds their points into double
 *   accumulators, prefetching the scattered rows a few ahead. Each
 *   centroid's sum is thus taken in point order whatever the thread count,
 *   so results are identical for a given seed *for every thread count*
 *   (stronger than the usual per-thread partial sums reduced in a fixed
 *   order, which is deterministic only for a fixed thread count, and needs
 *   nthreads * k * d scratch). The sort replaced a scan of all n
 *   assignments per task, whose unpredictable branch cost more than the
 *   sums. For d <= SMALL_D a single pass in point order (the same sums)
 *   is cheaper than sorting and gathering rows of a few floats.
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
 * - vqs_kmeans_progressive (used by RVQ) is FAISS's progressive-dimension
 *   k-means on top of this Lloyd driver (vqs_kmeans_from), in
 *   kmeans_progressive.c.
 * - spherical: centroids are L2-normalised after seeding and after every
 *   update; the objective is still the squared L2 distance.
 * - Over participants (opts->reduce: the ranks of `mpirun vqs build`): x is
 *   this participant's slice of the rows. The subsample is drawn over the
 *   global row numbers with the same rng as one process, and each keeps
 *   the chosen rows of its slice; seeding gathers the rows k-means++ reads
 *   (at most INIT_MAX) and every participant seeds alike; each Lloyd step
 *   assigns the local rows and makes one sum over the participants of the
 *   centroid sums, the counts, the objective and whether any assignment
 *   changed (k d + k + 2 doubles); an empty cluster's split sums its 2-means
 *   steps the same way. So the centroids are one process's up to the order
 *   of the sums (per participant, then across), and the same bits on every
 *   participant. Without a reducer (or with one participant) nothing
 *   changes. Rejected: k-means++ over the participants (k rounds of
 *   messages, each a pass over all rows) and an allreduce of floats (the
 *   sums already are double here; halving the bytes would change results).
 */
#define _GNU_SOURCE
#include "codebook_internal.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/km_kernels.h"

#define ROW_BLOCK 256
#define COL_BLOCK 1024
#define SPLIT_EPS (1.0f / 1024.0f)
#define SPLIT_ITERS 4         /* 2-means steps when splitting a cluster */
#define SMALL_D KM_SMALL_D    /* d <= SMALL_D: assignment without BLAS */
#define UPDATE_AHEAD 4        /* rows prefetched ahead in the centroid update */

/* ---- assignment ---------------------------------------------------------- */

typedef struct assign_job {
    size_t n, d, k;
    const float *x;     /* n * d */
    const float *c;     /* k * d */
    const float *cnorm; /* k: |c|^2 */
    int32_t *assign;    /* n */
    float *dist;        /* n, or NULL */
    const float *xnorm; /* n: |x|^2 (when dist) */
    float **buf;        /* per thread: ROW_BLOCK * COL_BLOCK */
    const float *cT;    /* small d: the centroids transposed (d, kp); else NULL */
    size_t kp;
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
    if (J->cT) {
        vqs_km_kernels_active()->small_argmin(x, nb, d, J->cT, J->cnorm, J->kp, best, bi);
        goto out;
    }
    const vqs_km_kernels *K = vqs_km_kernels_active();
    for (size_t c0 = 0; c0 < J->k; c0 += COL_BLOCK) {
        size_t nc = J->k - c0 < COL_BLOCK ? J->k - c0 : COL_BLOCK;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)nc, (int)d, 1.0f, x,
                    (int)d, J->c + c0 * d, (int)d, 0.0f, ip, (int)nc);
        K->tile_argmin(ip, nb, nc, J->cnorm + c0, (int32_t)c0, best, bi);
    }
out:
    for (size_t i = 0; i < nb; i++) {
        J->assign[i0 + i] = bi[i];
        if (J->dist) {
            float v = J->xnorm[i0 + i] + best[i];
            J->dist[i0 + i] = v > 0 ? v : 0;
        }
    }
    return 0;
}

/* Per-thread tile buffers, reused across Lloyd iterations, and the norms of
 * the points (which do not change across iterations). */
typedef struct assigner {
    int nt;
    int32_t *canon; /* k: the lowest index of an identical centroid (NULL: none repeated) */
    float **buf;
    float *cnorm; /* k */
    float *xnorm; /* n, computed by the first run that needs it */
    const float *xnorm_of;
    float *cT;    /* d <= SMALL_D: (d, kp) transposed centroids; cnorm has kp entries */
    size_t kp;
} assigner;

static void assigner_free(assigner *A)
{
    if (A->buf)
        for (int t = 0; t < A->nt; t++)
            free(A->buf[t]);
    free(A->buf);
    free(A->cnorm);
    free(A->xnorm);
    free(A->cT);
    free(A->canon);
    memset(A, 0, sizeof *A);
}

static int assigner_init(assigner *A, int nthreads, size_t n, size_t d, size_t k)
{
    memset(A, 0, sizeof *A);
    size_t ntask = (n + ROW_BLOCK - 1) / ROW_BLOCK;
    int nt = nthreads > 0 ? nthreads : vqs_default_threads();
    if ((size_t)nt > ntask)
        nt = ntask ? (int)ntask : 1;
    A->nt = nt;
    A->buf = calloc((size_t)nt, sizeof *A->buf);
    if (d <= SMALL_D) {
        A->kp = (k + 15) / 16 * 16;
        if (!(A->cT = malloc(sizeof(float) * d * A->kp)))
            goto fail;
    }
    A->cnorm = malloc(sizeof(float) * (A->cT ? A->kp : k));
    A->xnorm = malloc(sizeof(float) * (n ? n : 1));
    if (!A->buf || !A->cnorm || !A->xnorm)
        goto fail;
    for (int t = 0; t < nt && !A->cT; t++)
        if (!(A->buf[t] = malloc(sizeof(float) * ROW_BLOCK * COL_BLOCK)))
            goto fail;
    return 0;
fail:
    assigner_free(A);
    return vqs_seterr(VQS_ENOMEM, "k-means: assignment buffers for %zu centroids", k);
}

typedef struct dup_ctx {
    const float *rows;
    size_t d;
} dup_ctx;

static int dup_cmp(const void *a, const void *b, void *ctx)
{
    const dup_ctx *D = ctx;
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    int r = memcmp(D->rows + (size_t)i * D->d, D->rows + (size_t)j * D->d, sizeof(float) * D->d);
    return r ? r : (i > j) - (i < j);
}

/* A->canon for centroids c: for each, the lowest index of a bit-identical
 * row; left NULL when no row repeats. */
static int find_copies(assigner *A, size_t d, size_t k, const float *c)
{
    free(A->canon);
    A->canon = NULL;
    if (k < 2)
        return 0;
    int32_t *ord = malloc(sizeof(int32_t) * k);
    if (!ord)
        return vqs_seterr(VQS_ENOMEM, "k-means: %zu centroids", k);
    for (size_t j = 0; j < k; j++)
        ord[j] = (int32_t)j;
    dup_ctx D = {c, d};
    qsort_r(ord, k, sizeof *ord, dup_cmp, &D);
    for (size_t t = 1; t < k; t++) {
        if (memcmp(c + (size_t)ord[t] * d, c + (size_t)ord[t - 1] * d, sizeof(float) * d))
            continue;
        if (!A->canon) {
            if (!(A->canon = malloc(sizeof(int32_t) * k))) {
                free(ord);
                return vqs_seterr(VQS_ENOMEM, "k-means: %zu centroids", k);
            }
            for (size_t j = 0; j < k; j++)
                A->canon[j] = (int32_t)j;
        }
        /* sorted by (row, index): the run's first entry is its lowest index */
        A->canon[ord[t]] = A->canon[ord[t - 1]];
    }
    free(ord);
    return 0;
}

static int assigner_run(assigner *A, size_t n, size_t d, const float *x, size_t k,
                        const float *c, int32_t *assign, float *dist)
{
    int rc = find_copies(A, d, k, c);
    if (rc)
        return rc;
    for (size_t j = 0; j < k; j++) {
        float s = 0;
        for (size_t t = 0; t < d; t++)
            s += c[j * d + t] * c[j * d + t];
        A->cnorm[j] = s;
    }
    if (dist && A->xnorm_of != x) {
        for (size_t i = 0; i < n; i++) {
            const float *xi = x + i * d;
            float xn = 0;
            for (size_t j = 0; j < d; j++)
                xn += xi[j] * xi[j];
            A->xnorm[i] = xn;
        }
        A->xnorm_of = x;
    }
    if (A->cT) {
        for (size_t t = 0; t < d; t++)
            for (size_t j = 0; j < A->kp; j++)
                A->cT[t * A->kp + j] = j < k ? c[j * d + t] : 0.0f;
        for (size_t j = k; j < A->kp; j++)
            A->cnorm[j] = INFINITY;
    }
    assign_job J = {n, d, k, x, c, A->cnorm, assign, dist, A->xnorm, A->buf, A->cT, A->kp};
    vqs_blas_single_thread();
    rc = vqs_parallel_for(A->nt, (n + ROW_BLOCK - 1) / ROW_BLOCK, assign_task, &J);
    for (size_t i = 0; !rc && A->canon && i < n; i++)
        assign[i] = A->canon[assign[i]];
    return rc;
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
    int rc = assigner_init(&A, nthreads, n, d, k);
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

/* ---- update ---------------------------------------------------------------- */

typedef struct update_job {
    size_t d, k, ntask;
    const float *x;
    const size_t *order; /* the points grouped by centroid, in point order */
    const size_t *off;   /* k + 1: centroid j's points are order[off[j] .. off[j+1]) */
    double *sum;         /* k * d */
} update_job;

static int update_task(void *ctx, size_t t, int tid)
{
    (void)tid;
    update_job *J = ctx;
    size_t c0 = J->k * t / J->ntask, c1 = J->k * (t + 1) / J->ntask, d = J->d;
    memset(J->sum + c0 * d, 0, sizeof(double) * (c1 - c0) * d);
    size_t pend = J->off[c1];
    for (size_t a = c0; a < c1; a++) {
        double *s = J->sum + a * d;
        for (size_t p = J->off[a]; p < J->off[a + 1]; p++) {
            if (p + UPDATE_AHEAD < pend) { /* the rows are scattered: fetch ahead */
                const char *f = (const char *)(J->x + J->order[p + UPDATE_AHEAD] * d);
                for (size_t b = 0; b < d * sizeof(float); b += 64)
                    __builtin_prefetch(f + b);
            }
            const float *xi = J->x + J->order[p] * d;
            for (size_t j = 0; j < d; j++)
                s[j] += xi[j];
        }
    }
    return 0;
}

/* Splits cluster big to fill the empty cluster e (see the file comment);
 * updates assign, count and sse (within-cluster sum of squares) of both. */
static int split_cluster(const vqs_reducer *R, size_t n, size_t d, const float *x, int32_t *assign,
                         size_t *count, double *sse, float *c, size_t e, size_t big,
                         double *acc /* 2 * d + 2 */, double *ranks /* R->size, with R */)
{
    int rc = 0;
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
        if (by_index && R && R->size > 1) { /* the points of the lower participants come first */
            memset(ranks, 0, sizeof(double) * (size_t)R->size);
            for (size_t i = 0; i < n; i++)
                ranks[R->rank] += (size_t)assign[i] == big || (size_t)assign[i] == e;
            if ((rc = vqs_reduce_sum(R, 0, ranks, (size_t)R->size)))
                return rc;
            for (int r = 0; r < R->rank; r++)
                seen += (size_t)ranks[r];
        }
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
        if (R && R->size > 1) {
            acc[2 * d] = (double)ne;
            acc[2 * d + 1] = (double)nb;
            if ((rc = vqs_reduce_sum(R, 0, acc, 2 * d + 2)))
                return rc;
            ne = (size_t)acc[2 * d];
            nb = (size_t)acc[2 * d + 1];
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
    if (R && R->size > 1) {
        double v[2] = {sse[e], sse[big]};
        if ((rc = vqs_reduce_sum(R, 0, v, 2)))
            return rc;
        sse[e] = v[0];
        sse[big] = v[1];
    }
    return 0;
}

/* ---- driver -------------------------------------------------------------- */

int vqs_kmeans_from(const vqs_kmeans_opts *o, size_t n, size_t d, const float *x, size_t k,
                    float *centroids, vqs_kmeans_stats *stats, const float *init)
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
    const vqs_reducer *R = o->reduce && o->reduce->size > 1 ? o->reduce : NULL;
    size_t bad = vqs_first_nonfinite(x, n * d), N = n, first = 0;
    int rc = bad < n * d ? vqs_seterr(VQS_ENONFINITE, "k-means: row %zu, column %zu is not finite",
                                      bad / d, bad % d) : 0;
    if ((rc = vqs_reduce_layout(R, rc, n, &N, &first))) /* N, first: global rows */
        return rc;
    if (N < k)
        return vqs_seterr(VQS_EINVAL, "k-means: %zu training points for k = %zu centroids; "
                                      "at least %zu are needed", N, k, k);
    int talk = o->verbose && (!R || R->rank == 0);
    double t0 = vqs_now();
    int niter = o->niter > 0 ? o->niter : 25;
    int nt = o->nthreads > 0 ? o->nthreads : vqs_default_threads();
    size_t ppc = o->max_points_per_centroid ? o->max_points_per_centroid : 256;
    vqs_rng rng;
    vqs_rng_seed(&rng, o->seed);

    float *xs = NULL, *dist = NULL;
    int32_t *assign = NULL, *prev = NULL;
    size_t *count = NULL, *sub = NULL, *off = NULL, *order = NULL;
    double *sum = NULL, *sse = NULL, *ranks = NULL;
    assigner A = {0};

    /* training sample: the same rows of the whole set with or without R
     * (global row numbers; this participant keeps those in its slice) */
    const float *xt = x;
    size_t nt_pts = n, M = N;
    if (ppc != SIZE_MAX && k <= SIZE_MAX / ppc && N > ppc * k) {
        M = ppc * k;
        if (!(sub = vqs_kmeans_subset(&rng, N, M)) || !(xs = malloc(sizeof(float) * M * d + 1))) {
            rc = vqs_seterr(VQS_ENOMEM, "k-means: sample of %zu x %zu", M, d);
            goto agreed;
        }
        nt_pts = vqs_subset_keep(sub, M, first, n);
        for (size_t i = 0; i < nt_pts; i++)
            memcpy(xs + i * d, x + sub[i] * d, sizeof(float) * d);
        free(sub);
        sub = NULL;
        xt = xs;
    }
    size_t sfirst = 0; /* this participant's first row of the sample */
    if (R && (rc = vqs_reduce_layout(R, rc, nt_pts, &M, &sfirst)))
        goto done;

    /* seeding */
    if (init)
        memmove(centroids, init, sizeof(float) * k * d);
    else if (R)
        rc = vqs_kmeans_seed_slices(R, rc, nt, &rng, nt_pts, sfirst, M, d, xt, k, centroids);
    else
        rc = vqs_kmeans_seed(nt, &rng, nt_pts, d, xt, k, centroids);
agreed:
    if ((rc = vqs_reduce_agree(R, rc)))
        goto done;
    if (o->spherical)
        vqs_normalize_rows(k, d, centroids);

    size_t np1 = nt_pts ? nt_pts : 1; /* a participant's slice of the sample may be empty */
    assign = malloc(sizeof(int32_t) * np1);
    prev = malloc(sizeof(int32_t) * np1);
    dist = malloc(sizeof(float) * np1);
    count = malloc(sizeof(size_t) * k);
    off = malloc(sizeof(size_t) * (k + 1));
    order = malloc(sizeof(size_t) * np1);
    /* the sums, then (with R) the counts, the objective and the changed
     * assignments summed with them; a split's two sums and counts */
    sum = malloc(sizeof(double) * ((k > 2 ? k : 2) * d + k + 2));
    sse = malloc(sizeof(double) * k);
    ranks = R ? malloc(sizeof(double) * (size_t)R->size) : NULL;
    if (!assign || !prev || !dist || !count || !off || !order || !sum || !sse || (R && !ranks))
        rc = vqs_seterr(VQS_ENOMEM, "k-means: %zu points, k = %zu, d = %zu", nt_pts, k, d);
    if (!rc)
        rc = assigner_init(&A, nt, nt_pts, d, k);
    if ((rc = vqs_reduce_agree(R, rc)))
        goto done;

    size_t nsplit = 0, last_split = 0;
    int it;
    for (it = 0; it < niter; it++) {
        if ((rc = assigner_run(&A, nt_pts, d, xt, k, centroids, assign, dist))) {
            rc = vqs_reduce_agree(R, rc); /* the others are waiting for this step's sum */
            goto done;
        }
        double obj = 0;
        for (size_t i = 0; i < nt_pts; i++)
            obj += dist[i];
        int same = it > 0 && last_split == 0 && memcmp(assign, prev, sizeof(int32_t) * nt_pts) == 0;
        if (!R) {
            if (stats && it < 256)
                stats->obj[it] = obj;
            if (talk)
                fprintf(stderr, "k-means: iter %d/%d objective %.6g (%zu splits so far) %.2f s\n",
                        it + 1, niter, obj, nsplit, vqs_now() - t0);
            if (same) { /* fixed point: the update would reproduce the centroids */
                it++;
                break;
            }
        }
        memcpy(prev, assign, sizeof(int32_t) * nt_pts);

        /* update: a counting sort of the points by centroid, then each task
         * sums the points of its centroid range */
        memset(count, 0, sizeof(size_t) * k);
        for (size_t i = 0; i < nt_pts; i++)
            count[assign[i]]++;
        if (d <= SMALL_D) {
            /* small rows: one pass in point order (the same sums) beats
             * sorting and gathering */
            memset(sum, 0, sizeof(double) * k * d);
            for (size_t i = 0; i < nt_pts; i++) {
                double *sa = sum + (size_t)assign[i] * d;
                const float *xi = xt + i * d;
                for (size_t t = 0; t < d; t++)
                    sa[t] += xi[t];
            }
        } else {
            off[0] = 0;
            for (size_t j = 0; j < k; j++)
                off[j + 1] = off[j] + count[j];
            for (size_t i = 0; i < nt_pts; i++)
                order[off[assign[i]]++] = i;
            for (size_t j = k; j > 0; j--) /* back to the starts */
                off[j] = off[j - 1];
            off[0] = 0;
            size_t ntask = (size_t)nt * 4 < k ? (size_t)nt * 4 : k;
            update_job U = {d, k, ntask, xt, order, off, sum};
            if ((rc = vqs_parallel_for(nt, ntask, update_task, &U))) {
                rc = vqs_reduce_agree(R, rc);
                goto done;
            }
        }
        if (R) { /* one sum of everything this step needs */
            for (size_t j = 0; j < k; j++)
                sum[k * d + j] = (double)count[j];
            sum[k * d + k] = obj;
            sum[k * d + k + 1] = !same;
            if ((rc = vqs_reduce_sum(R, 0, sum, k * d + k + 2)))
                goto done;
            for (size_t j = 0; j < k; j++)
                count[j] = (size_t)sum[k * d + j];
            obj = sum[k * d + k];
            if (stats && it < 256)
                stats->obj[it] = obj;
            if (talk)
                fprintf(stderr, "k-means: iter %d/%d objective %.6g (%zu splits so far) %.2f s\n",
                        it + 1, niter, obj, nsplit, vqs_now() - t0);
            if (sum[k * d + k + 1] == 0) { /* the same assignment everywhere: a fixed point */
                it++;
                break;
            }
        }
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
                if ((rc = vqs_reduce_sum(R, 0, sse, k)))
                    goto done;
                have_sse = 1;
            }
            size_t big = 0;
            for (size_t j = 1; j < k; j++)
                if (sse[j] > sse[big])
                    big = j;
            if (!(sse[big] > 0))
                break; /* only clusters of identical points are left */
            if ((rc = split_cluster(R, nt_pts, d, xt, assign, count, sse, centroids, e, big, sum, ranks)))
                goto done;
            last_split++;
        }
        nsplit += last_split;
        if (o->spherical)
            vqs_normalize_rows(k, d, centroids);
    }

    /* objective of the returned centroids */
    if ((rc = assigner_run(&A, nt_pts, d, xt, k, centroids, assign, dist))) {
        rc = vqs_reduce_agree(R, rc);
        goto done;
    }
    double fobj = 0;
    for (size_t i = 0; i < nt_pts; i++)
        fobj += dist[i];
    if ((rc = vqs_reduce_sum(R, 0, &fobj, 1)))
        goto done;
    if (talk)
        fprintf(stderr, "k-means: %d iterations, final objective %.6g, %zu splits, %zu points, "
                        "%.2f s\n", it, fobj, nsplit, M, vqs_now() - t0);
    if (stats) {
        stats->niter = it;
        stats->final_obj = fobj;
        stats->nsplit = nsplit;
        stats->ntrain = M;
        stats->seconds = vqs_now() - t0;
    }
done:
    assigner_free(&A);
    free(xs);
    free(sub);
    free(dist);
    free(assign);
    free(prev);
    free(count);
    free(off);
    free(order);
    free(sum);
    free(sse);
    free(ranks);
    return rc;
}

int vqs_kmeans(const vqs_kmeans_opts *o, size_t n, size_t d, const float *x, size_t k,
               float *centroids, vqs_kmeans_stats *stats)
{
    return vqs_kmeans_from(o, n, d, x, k, centroids, stats, NULL);
}
