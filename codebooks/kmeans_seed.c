/*
 * kmeans_seed.c: the initial centroids of k-means (vqs_kmeans_seed:
 * k-means++, or random points for very large k) and the seeded random
 * subsets the k-means family samples with (vqs_kmeans_subset).
 *
 * Design decisions:
 * - Seeding: k-means++ (D^2 sampling), computed on a seeded random subset of
 *   at most min(INIT_PPC * k, INIT_MAX) training points. FAISS seeds with k
 *   random points; k-means++ gives an objective at least as good in
 *   practice and never seeds two centroids on duplicated points (D^2 of a
 *   duplicate is exactly 0 because seeding distances are computed directly
 *   as |x - c|^2, not via the BLAS expansion, whose cancellation error
 *   could make a duplicate look a little away from its twin). The subset
 *   bounds the sequential cost: k passes over the points, each a
 *   matrix-vector product's worth of memory traffic. INIT_MAX (it only
 *   matters for k > 1024) keeps the subset near the size of the L3 cache:
 *   GloVe k = 4096 (d = 100) spent 16 of its 61 s seeding on 262,144
 *   points, 3.5 s on 65,536, for a final objective 0.04% higher, which is
 *   seed noise (16 instead of 64 points per centroid at k = 256: 0.2% lower
 *   on siftsmall, 0.2% higher on GloVe). A point is skipped in a pass when
 *   the triangle inequality proves the new centroid cannot be nearer than
 *   its current one (|c_new - c_near|^2 > 4.001 D^2; the distances between
 *   centroids cost k^2 d / 2 in all): 30% of the distances on siftsmall
 *   k = 256, 18% on GloVe k = 4096, more on clustered data. For d <=
 *   SMALL_D the points are transposed once and each pass computes the
 *   distances of a chunk of points element-wise (vectorised across points,
 *   no pruning): calling a distance function per point cost more than the
 *   distance. Rejected: "greedy" k-means++ (2 + log k candidates per step):
 *   several times the cost for a small gain that Lloyd erases; random
 *   seeding (FAISS): more empty clusters on data with duplicates. For k >
 *   PP_MAX_K (nbits > 12 codebooks) seeding is k distinct random points, as
 *   k-means++ would be quadratic in k.
 */
#include "codebook_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/km_kernels.h"

#define INIT_PPC 64           /* k-means++ runs on at most INIT_PPC * k points */
#define INIT_MAX 65536        /* and at most this many */
#define PP_MAX_K 4096         /* larger k: random seeding */
#define SEED_CHUNK KM_SEED_CHUNK /* rows per task in the k-means++ distance update */
#define SMALL_D KM_SMALL_D    /* d <= SMALL_D: distances without pruning, points transposed */

/* ---- helpers ------------------------------------------------------------- */

static uint64_t rng_below(vqs_rng *r, uint64_t n) { return vqs_rng_next(r) % n; }

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

void vqs_sort_sizes(size_t *a, size_t n) { qsort(a, n, sizeof *a, cmp_size); }

size_t vqs_subset_keep(size_t *idx, size_t m, size_t first, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < m; i++)
        if (idx[i] >= first && idx[i] - first < n)
            idx[w++] = idx[i] - first;
    return w;
}

size_t *vqs_kmeans_subset(vqs_rng *r, size_t n, size_t m)
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
    vqs_sort_sizes(perm, m);
    return perm;
}

size_t *vqs_kmeans_subset_slice(uint64_t seed, size_t N, size_t m, size_t first, size_t n, size_t *kept)
{
    vqs_rng r;
    vqs_rng_seed(&r, seed);
    size_t *sub = vqs_kmeans_subset(&r, N, m);
    *kept = sub ? vqs_subset_keep(sub, m, first, n) : 0;
    return sub;
}

/* ---- k-means++ seeding ----------------------------------------------------- */

typedef struct seed_job {
    size_t n, d, j;
    const float *x;
    const float *xT; /* small d: x transposed (d, n); else NULL */
    const float *c;  /* the newest centroid, number j */
    const float *cc; /* j: |c_a - c_j|^2 for the earlier centroids a */
    float *d2;       /* n: distance to the nearest centroid so far */
    int32_t *near;   /* n: that centroid */
    double *part;    /* per chunk: sum of d2 */
    float (*l2sq)(const float *, const float *, size_t);
} seed_job;

static int seed_task(void *ctx, size_t t, int tid)
{
    (void)tid;
    seed_job *J = ctx;
    size_t i0 = t * SEED_CHUNK, i1 = i0 + SEED_CHUNK < J->n ? i0 + SEED_CHUNK : J->n;
    double s = 0;
    if (J->xT) {
        float *d2 = J->d2 + i0;
        vqs_km_kernels_active()->seed_chunk_T(J->xT + i0, J->n, i1 - i0, J->d, J->c, d2);
        for (size_t i = 0; i < i1 - i0; i++)
            s += d2[i];
        J->part[t] = s;
        return 0;
    }
    for (size_t i = i0; i < i1; i++) {
        /* triangle inequality: |x - c_j| >= |c_a - c_j| - |x - c_a| >= |x - c_a|
         * when |c_a - c_j|^2 >= 4 |x - c_a|^2 (with a margin for rounding) */
        if (!(J->j > 0 && J->cc[J->near[i]] > 4.001f * J->d2[i])) {
            float v = J->l2sq(J->x + i * J->d, J->c, J->d);
            if (v < J->d2[i]) {
                J->d2[i] = v;
                J->near[i] = (int32_t)J->j;
            }
        }
        s += J->d2[i];
    }
    J->part[t] = s;
    return 0;
}

/* k-means++ on x (n rows, n >= k); writes c (k * d). */
static int seed_pp(int nt, vqs_rng *r, size_t n, size_t d, const float *x, size_t k, float *c)
{
    size_t nchunk = (n + SEED_CHUNK - 1) / SEED_CHUNK;
    float *d2 = malloc(sizeof(float) * n), *cc = malloc(sizeof(float) * k);
    float *xT = d <= SMALL_D ? malloc(sizeof(float) * n * d) : NULL;
    int32_t *near = malloc(sizeof(int32_t) * n);
    double *part = malloc(sizeof(double) * nchunk);
    if (!d2 || !cc || !near || !part || (d <= SMALL_D && !xT)) {
        free(d2);
        free(cc);
        free(xT);
        free(near);
        free(part);
        return vqs_seterr(VQS_ENOMEM, "k-means++: %zu points", n);
    }
    if (xT)
        for (size_t i = 0; i < n; i++)
            for (size_t q = 0; q < d; q++)
                xT[q * n + i] = x[i * d + q];
    float (*l2sq)(const float *, const float *, size_t) = vqs_km_kernels_active()->l2sq;
    for (size_t i = 0; i < n; i++) {
        d2[i] = INFINITY;
        near[i] = 0;
    }
    size_t pick = (size_t)rng_below(r, n);
    int rc = 0;
    for (size_t j = 0; j < k; j++) {
        memcpy(c + j * d, x + pick * d, sizeof(float) * d);
        if (j + 1 == k)
            break;
        for (size_t a = 0; a < j && !xT; a++)
            cc[a] = l2sq(c + a * d, c + j * d, d);
        seed_job J = {n, d, j, x, xT, c + j * d, cc, d2, near, part, l2sq};
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
    free(cc);
    free(xT);
    free(near);
    free(part);
    return rc;
}

/* ---- seeding ------------------------------------------------------------- */

int vqs_kmeans_seed(int nt, vqs_rng *rng, size_t n, size_t d, const float *x, size_t k, float *c)
{
    if (k == 1) {
        memcpy(c, x, sizeof(float) * d); /* overwritten by the first update */
        return 0;
    }
    size_t *sub;
    if (k > PP_MAX_K) {
        if (!(sub = vqs_kmeans_subset(rng, n, k)))
            return vqs_seterr(VQS_ENOMEM, "k-means: seeding");
        for (size_t j = 0; j < k; j++)
            memcpy(c + j * d, x + sub[j] * d, sizeof(float) * d);
        free(sub);
        return 0;
    }
    const float *xp = x;
    float *xinit = NULL;
    size_t np = n, cap = INIT_PPC * k < INIT_MAX ? INIT_PPC * k : INIT_MAX;
    if (np > cap) {
        np = cap;
        if (!(sub = vqs_kmeans_subset(rng, n, np)) || !(xinit = malloc(sizeof(float) * np * d))) {
            free(sub);
            return vqs_seterr(VQS_ENOMEM, "k-means++: sample of %zu x %zu", np, d);
        }
        for (size_t i = 0; i < np; i++)
            memcpy(xinit + i * d, x + sub[i] * d, sizeof(float) * d);
        free(sub);
        xp = xinit;
    }
    int rc = seed_pp(nt, rng, np, d, xp, k, c);
    free(xinit);
    return rc;
}

/* Rows idx[0..m) (sorted global row numbers; idx is reused) of the
 * participants' slices into out (m * d), in that order: each copies the
 * ones in its own slice [first, first + n), then a gather (rank order is
 * row order). */
static int gather_rows(const vqs_reducer *R, int rc, size_t n, size_t first, size_t d, const float *x,
                       size_t *idx, size_t m, float *out)
{
    float *mine = malloc(sizeof(float) * d * (n ? n : 1));
    size_t w = !rc && mine ? vqs_subset_keep(idx, m, first, n) : 0;
    if (!mine && !rc)
        rc = vqs_seterr(VQS_ENOMEM, "k-means: %zu seeding rows", m);
    for (size_t i = 0; i < w; i++)
        memcpy(mine + i * d, x + idx[i] * d, sizeof(float) * d);
    rc = vqs_reduce_gather(R, rc, mine, w, sizeof(float) * d, out);
    free(mine);
    return rc;
}

int vqs_kmeans_seed_slices(const vqs_reducer *R, int rc, int nt, vqs_rng *rng, size_t n, size_t first,
                           size_t N, size_t d, const float *x, size_t k, float *c)
{
    /* the global rows vqs_kmeans_seed would draw, from the same rng */
    size_t cap = INIT_PPC * k < INIT_MAX ? INIT_PPC * k : INIT_MAX;
    size_t m = k == 1 ? 1 : k > PP_MAX_K ? k : N < cap ? N : cap;
    size_t *sub = NULL;
    float *xp = k == 1 || k > PP_MAX_K ? c : malloc(sizeof(float) * m * d);
    if (!rc && !xp)
        rc = vqs_seterr(VQS_ENOMEM, "k-means++: sample of %zu x %zu", m, d);
    if (!rc) {
        if (k != 1 && m < N)
            sub = vqs_kmeans_subset(rng, N, m); /* sorted */
        else if ((sub = malloc(sizeof(size_t) * m)))
            for (size_t i = 0; i < m; i++)
                sub[i] = i; /* k = 1: row 0, as vqs_kmeans_seed */
        if (!sub)
            rc = vqs_seterr(VQS_ENOMEM, "k-means: seeding");
    }
    rc = gather_rows(R, rc, n, first, d, x, sub, m, xp);
    free(sub);
    if (!rc && xp != c)
        rc = seed_pp(nt, rng, m, d, xp, k, c);
    if (xp != c)
        free(xp);
    return rc;
}
