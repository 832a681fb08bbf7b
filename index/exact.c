/*
 * exact.c: exact k-NN by blocked BLAS, and recall.
 *
 * Design decisions:
 * - Scores are computed as sgemm blocks (queries x base rows) and folded
 *   into per-query bounded heaps (vqs_topk.h); the matrix product is where
 *   the time goes and OpenBLAS does it near peak. Rejected: a hand-written
 *   distance loop (3-5x slower at d >= 64) and FAISS-style "one heap per
 *   query, scan all" without blocking (cache misses dominate).
 * - Parallelism is ours, over (query block, base shard) tasks; BLAS runs
 *   single-threaded inside each task. With few queries the base is split in
 *   shards so both cores work even for a single query; shards are merged per
 *   query at the end.
 * - Exactness: float sgemm loses digits when |x|^2 and 2 x.q nearly cancel,
 *   and it rounds differently from one BLAS to the next. So each heap keeps
 *   k + margin candidates, which are re-scored in double; with a bound on the
 *   float error we check that every row left out is provably worse than the
 *   k-th exact distance. If not (ties beyond the margin), that one query is
 *   rescanned in double. Rejected: double-precision dgemm everywhere (2x the
 *   time and memory for a problem that only touches a few candidates).
 * - Internally every metric is "lower is better": L2 distance, -ip, -cos.
 */
#define _GNU_SOURCE
#include "vqs_index.h"
#include "vqs_kernels.h"

#include <cblas.h>
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vqs_topk.h"

/* ---- exact double-precision scores ------------------------------------ */

/* lower is better; qn: |q| (used by cos) */
static double exact_score(vqs_metric m, const float *x, const float *q, size_t d, double qn)
{
    const vqs_kernels *K = vqs_kernels_active(); /* the double-precision kernels */
    if (m == VQS_METRIC_L2)
        return K->l2_f64(x, q, d);
    double ip = K->ip_f64(x, q, d);
    if (m == VQS_METRIC_IP)
        return -ip;
    double den = sqrt(K->ip_f64(x, x, d)) * qn;
    return den > 0 ? -ip / den : 0.0;
}

static double dnorm(const float *x, size_t d)
{
    return sqrt(vqs_kernels_active()->ip_f64(x, x, d));
}

static float missing_dist(vqs_metric m) { return m == VQS_METRIC_L2 ? INFINITY : -INFINITY; }

/* ---- the blocked search ----------------------------------------------- */

typedef struct job {
    vqs_metric m;
    size_t d, nb, ldb;
    const float *xb;
    const float *bnorm2; /* |x|^2 (L2) or 1/|x| (cos) per base row; NULL for ip */
    size_t nqc;          /* queries in this chunk */
    const float *xq;     /* chunk queries (cos: normalised copy) */
    size_t ldq;
    size_t qblock, bblock, nshards;
    vqs_topk *tops; /* [shard][q]: a heap of kk items each */
    float **cbuf;  /* per thread: qblock * bblock scores, then bblock uint32 indices */
} job;

static int run_task(void *ctx, size_t t, int tid)
{
    job *J = ctx;
    size_t nqb = (J->nqc + J->qblock - 1) / J->qblock;
    size_t qb = t % nqb, sh = t / nqb;
    size_t q0 = qb * J->qblock, nq = J->nqc - q0 < J->qblock ? J->nqc - q0 : J->qblock;
    size_t per = (J->nb + J->nshards - 1) / J->nshards;
    size_t b0 = sh * per, b1 = b0 + per < J->nb ? b0 + per : J->nb;
    float *C = J->cbuf[tid];
    uint32_t *idx = (uint32_t *)(C + J->qblock * J->bblock);
    const vqs_kernels *K = vqs_kernels_active();
    for (size_t bs = b0; bs < b1; bs += J->bblock) {
        size_t nbb = b1 - bs < J->bblock ? b1 - bs : J->bblock;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nq, (int)nbb, (int)J->d, 1.0f,
                    J->xq + q0 * J->ldq, (int)J->ldq, J->xb + bs * J->ldb, (int)J->ldb, 0.0f, C,
                    (int)nbb);
        for (size_t i = 0; i < nq; i++) {
            size_t q = q0 + i;
            vqs_topk *T = &J->tops[sh * J->nqc + q];
            float *c = C + i * nbb;
            const float *bn = J->bnorm2 ? J->bnorm2 + bs : NULL;
            /* the row's keys in place (loops the compiler vectorises), then
             * the SIMD "below the k-th key" selection: the heap sees only
             * the few rows that can enter it */
            if (J->m == VQS_METRIC_L2)
                for (size_t j = 0; j < nbb; j++)
                    c[j] = bn[j] - 2.0f * c[j];
            else if (J->m == VQS_METRIC_IP)
                for (size_t j = 0; j < nbb; j++)
                    c[j] = -c[j];
            else
                for (size_t j = 0; j < nbb; j++)
                    c[j] = -c[j] * bn[j];
            float thr = (float)vqs_topk_thr(T);
            size_t ns = K->select_lt(c, nbb, thr, idx);
            for (size_t t = 0; t < ns; t++) {
                size_t j = idx[t];
                /* rows come in increasing id order within a shard, so an equal
                 * score is worse than everything kept: strict < suffices */
                if (c[j] < thr) {
                    vqs_topk_push(T, c[j], (int64_t)(bs + j));
                    if (T->n == T->k)
                        thr = (float)T->h[0].key;
                }
            }
        }
    }
    return 0;
}

typedef struct fin_job {
    job *J;
    const vqs_matrix *base, *queries;
    size_t chunk0, k;
    double maxbn; /* max |x| over the base */
    int64_t *ids;
    float *dist;
    double *keys;
    vqs_topk_item **tmp; /* per thread, nshards * kk */
    size_t nfallback;
    int no_proof;
} fin_job;

/* Full double-precision scan for one query (rare fallback): its top k,
 * sorted, in out. */
static void rescan(const fin_job *F, size_t q, vqs_topk_item *out, size_t k, double qn)
{
    const job *J = F->J;
    const float *xq = F->queries->x + q * (F->queries->ld ? F->queries->ld : F->queries->d);
    vqs_topk T = {out, 0, k};
    for (size_t b = 0; b < J->nb; b++)
        vqs_topk_push(&T, exact_score(J->m, J->xb + b * J->ldb, xq, J->d, qn), (int64_t)b);
    vqs_topk_sort(&T);
}

static int finish_query(void *ctx, size_t i, int tid)
{
    fin_job *F = ctx;
    job *J = F->J;
    size_t q = F->chunk0 + i, k = F->k;
    size_t ldq = F->queries->ld ? F->queries->ld : F->queries->d;
    const float *xq = F->queries->x + q * ldq;
    double qn = dnorm(xq, J->d);
    vqs_topk_item *all = F->tmp[tid];
    size_t na = 0;
    int complete = 1; /* candidates hold every base row */
    float thr = INFINITY; /* smallest "worst kept" approx score over shards */
    for (size_t sh = 0; sh < J->nshards; sh++) {
        const vqs_topk *T = &J->tops[sh * J->nqc + i];
        if (T->n == T->k) {
            complete = 0;
            if (T->h[0].key < thr)
                thr = (float)T->h[0].key;
        }
        for (size_t j = 0; j < T->n; j++) {
            all[na].id = T->h[j].id;
            all[na].key = exact_score(J->m, J->xb + (size_t)T->h[j].id * J->ldb, xq, J->d, qn);
            na++;
        }
    }
    qsort(all, na, sizeof *all, vqs_topk_cmp);
    if (!complete && na >= k && !F->no_proof) {
        /* Every row left out of a full shard heap had approx score >= that
         * heap's worst, hence >= thr. Its exact score is >= thr - err. Safe
         * if that is strictly above the k-th exact score. Error bound for a
         * d-term float dot product: d * 2^-24 * sum |x_j q_j| <=
         * d * 2^-24 * |x||q| (Cauchy-Schwarz); doubled for the norm terms,
         * the product of two roundings, and the BLAS's own summation order. */
        double gamma = 4.0 * (double)(J->d + 4) * 0x1p-24;
        double err, thr_d = thr;
        if (J->m == VQS_METRIC_L2) {
            /* the approx L2 score omits the per-query constant |q|^2 */
            thr_d += qn * qn;
            err = gamma * (F->maxbn * F->maxbn + 2.0 * F->maxbn * qn + qn * qn + 1e-30);
        }
        else if (J->m == VQS_METRIC_IP)
            err = gamma * (F->maxbn * qn + 1e-30);
        else
            err = gamma * 2.0 + 1e-30;
        if (!(thr_d - err > all[k - 1].key)) {
            rescan(F, q, all, k, qn);
            __atomic_fetch_add(&F->nfallback, 1, __ATOMIC_RELAXED);
        }
    }
    size_t nout = na < k ? na : k;
    for (size_t j = 0; j < k; j++) {
        int64_t id = j < nout ? all[j].id : -1;
        float dv = j < nout ? (float)(J->m == VQS_METRIC_L2 ? all[j].key : -all[j].key)
                            : missing_dist(J->m);
        F->ids[q * k + j] = id;
        if (F->keys)
            F->keys[q * k + j] = j < nout ? all[j].key : INFINITY;
        if (F->dist)
            F->dist[q * k + j] = dv;
    }
    return 0;
}

typedef struct norm_job {
    vqs_metric m;
    const float *xb;
    size_t ldb, d, nb;
    float *out;
    double *maxn; /* per task */
} norm_job;

#define NORM_BLOCK 65536

static int norm_task(void *ctx, size_t t, int tid)
{
    (void)tid;
    norm_job *N = ctx;
    size_t b0 = t * NORM_BLOCK, b1 = b0 + NORM_BLOCK < N->nb ? b0 + NORM_BLOCK : N->nb;
    double mx = 0;
    for (size_t b = b0; b < b1; b++) {
        double n = dnorm(N->xb + b * N->ldb, N->d);
        if (n > mx)
            mx = n;
        if (N->out)
            N->out[b] = N->m == VQS_METRIC_L2 ? (float)(n * n) : (n > 0 ? (float)(1.0 / n) : 0.f);
    }
    N->maxn[t] = mx;
    return 0;
}

static int check_matrix(const vqs_matrix *a, const char *what)
{
    if (!a || (!a->x && a->n) || a->d == 0 || (a->ld && a->ld < a->d))
        return vqs_seterr(VQS_EINVAL, "exact search: bad %s matrix", what);
    if (a->d > INT32_MAX || (a->ld ? a->ld : a->d) > INT32_MAX)
        return vqs_seterr(VQS_EINVAL, "exact search: %s dimension too large for BLAS", what);
    return 0;
}

int vqs_exact_knn(const vqs_exact_opts *o, vqs_metric m, const vqs_matrix *base,
                  const vqs_matrix *queries, size_t k, int64_t *ids, float *dist)
{
    vqs_exact_opts def = {0};
    if (!o)
        o = &def;
    int rc;
    if ((rc = check_matrix(base, "base")) || (rc = check_matrix(queries, "query")))
        return rc;
    if (base->d != queries->d)
        return vqs_seterr(VQS_EINVAL, "exact search: base dimension %zu, query dimension %zu",
                          base->d, queries->d);
    if (k == 0 || !ids)
        return vqs_seterr(VQS_EINVAL, "exact search: k must be >= 1 and ids given");
    if (m != VQS_METRIC_L2 && m != VQS_METRIC_IP && m != VQS_METRIC_COS)
        return vqs_seterr(VQS_EINVAL, "exact search: unknown metric %d", (int)m);
    if (queries->n == 0)
        return 0;

    vqs_blas_single_thread();
    int nt = o->nthreads > 0 ? o->nthreads : vqs_default_threads();
    size_t d = base->d, nb = base->n;
    size_t ldb = base->ld ? base->ld : d, ldq = queries->ld ? queries->ld : d;
    size_t qblock = o->qblock ? o->qblock : 256, bblock = o->bblock ? o->bblock : 4096;
    size_t margin = k / 4 > 8 ? k / 4 : 8;
    size_t kk = k + margin;
    if (kk > nb)
        kk = nb ? nb : 1;
    /* chunk of queries processed at once: bounds heap memory */
    size_t chunk = qblock * (size_t)nt * 4;
    if (chunk > queries->n)
        chunk = queries->n;
    size_t nqb_max = (chunk + qblock - 1) / qblock;
    size_t nshards = nqb_max >= (size_t)nt ? 1 : (size_t)nt;
    if (nshards > 1 && nb / nshards < bblock / 4)
        nshards = nb / (bblock / 4) > 1 ? nb / (bblock / 4) : 1;
    if (nshards > (size_t)nt)
        nshards = (size_t)nt;
    size_t ntask_norm = (nb + NORM_BLOCK - 1) / NORM_BLOCK;

    float *bnorm = NULL, *qcopy = NULL, **cbuf = NULL;
    double *maxn = NULL;
    vqs_topk_item *heaps = NULL;
    vqs_topk *tops = NULL;
    vqs_topk_item **tmp = NULL;
    rc = VQS_ENOMEM;
    if (m != VQS_METRIC_IP && !(bnorm = malloc(sizeof(float) * (nb ? nb : 1))))
        goto fail;
    if (!(maxn = calloc(ntask_norm ? ntask_norm : 1, sizeof(double))))
        goto fail;
    if (m == VQS_METRIC_COS && !(qcopy = malloc(sizeof(float) * chunk * d)))
        goto fail;
    if (!(heaps = malloc(sizeof(vqs_topk_item) * nshards * chunk * kk)) ||
        !(tops = malloc(sizeof(vqs_topk) * nshards * chunk)))
        goto fail;
    if (!(cbuf = calloc((size_t)nt, sizeof *cbuf)) || !(tmp = calloc((size_t)nt, sizeof *tmp)))
        goto fail;
    for (int t = 0; t < nt; t++) {
        size_t tk = nshards * kk > k ? nshards * kk : k; /* merge, or a rescan's top k */
        if (!(cbuf[t] = malloc(sizeof(float) * (qblock + 1) * bblock)) ||
            !(tmp[t] = malloc(sizeof(vqs_topk_item) * tk)))
            goto fail;
    }

    norm_job N = {m, base->x, ldb, d, nb, bnorm, maxn};
    if ((rc = vqs_parallel_for(nt, ntask_norm, norm_task, &N)))
        goto fail;
    double maxbn = 0;
    size_t rescans = 0;
    for (size_t t = 0; t < ntask_norm; t++)
        if (maxn[t] > maxbn)
            maxbn = maxn[t];

    for (size_t c0 = 0; c0 < queries->n; c0 += chunk) {
        size_t nqc = queries->n - c0 < chunk ? queries->n - c0 : chunk;
        const float *xq = queries->x + c0 * ldq;
        size_t ldqc = ldq;
        if (m == VQS_METRIC_COS) {
            for (size_t i = 0; i < nqc; i++) {
                const float *src = xq + i * ldq;
                double n = dnorm(src, d);
                float inv = n > 0 ? (float)(1.0 / n) : 0.f;
                for (size_t j = 0; j < d; j++)
                    qcopy[i * d + j] = src[j] * inv;
            }
            xq = qcopy;
            ldqc = d;
        }
        for (size_t i = 0; i < nshards * nqc; i++) /* [shard][q] over [shard][q][kk] */
            tops[i] = (vqs_topk){heaps + i * kk, 0, kk};
        job J = {.m = m, .d = d, .nb = nb, .ldb = ldb, .xb = base->x, .bnorm2 = bnorm,
                 .nqc = nqc, .xq = xq, .ldq = ldqc, .qblock = qblock, .bblock = bblock,
                 .nshards = nshards, .tops = tops, .cbuf = cbuf};
        size_t ntask = ((nqc + qblock - 1) / qblock) * nshards;
        if (nb > 0 && (rc = vqs_parallel_for(nt, ntask, run_task, &J)))
            goto fail;
        fin_job F = {.J = &J, .base = base, .queries = queries, .chunk0 = c0, .k = k,
                     .maxbn = maxbn, .ids = ids, .dist = dist, .keys = o->keys, .tmp = tmp,
                     .no_proof = o->no_proof};
        if ((rc = vqs_parallel_for(nt, nqc, finish_query, &F)))
            goto fail;
        rescans += F.nfallback;
    }
    rc = 0;
    if (o->rescans)
        *o->rescans = rescans;
fail:
    if (rc == VQS_ENOMEM)
        vqs_seterr(rc, "exact search: out of memory (%zu queries per chunk, k = %zu)", chunk, k);
    if (cbuf)
        for (int t = 0; t < nt; t++)
            free(cbuf[t]);
    if (tmp)
        for (int t = 0; t < nt; t++)
            free(tmp[t]);
    free(cbuf);
    free(tmp);
    free(heaps);
    free(tops);
    free(qcopy);
    free(maxn);
    free(bnorm);
    return rc;
}

int vqs_exact_distances(vqs_metric m, const vqs_matrix *base, const vqs_matrix *queries,
                        size_t k, const int64_t *ids, float *out)
{
    int rc;
    if ((rc = check_matrix(base, "base")) || (rc = check_matrix(queries, "query")))
        return rc;
    if (base->d != queries->d)
        return vqs_seterr(VQS_EINVAL, "exact distances: base dimension %zu, query dimension %zu",
                          base->d, queries->d);
    size_t d = base->d, ldb = base->ld ? base->ld : d, ldq = queries->ld ? queries->ld : d;
    for (size_t q = 0; q < queries->n; q++) {
        const float *xq = queries->x + q * ldq;
        double qn = dnorm(xq, d);
        for (size_t j = 0; j < k; j++) {
            int64_t id = ids[q * k + j];
            if (id == -1) {
                out[q * k + j] = missing_dist(m);
                continue;
            }
            if (id < 0 || (uint64_t)id >= base->n)
                return vqs_seterr(VQS_ERANGE, "query %zu, rank %zu: id %lld outside the base (%zu rows)",
                                  q, j, (long long)id, base->n);
            double s = exact_score(m, base->x + (size_t)id * ldb, xq, d, qn);
            out[q * k + j] = (float)(m == VQS_METRIC_L2 ? s : -s);
        }
    }
    return 0;
}

/* ---- recall ----------------------------------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

double vqs_recall(vqs_metric m, const vqs_knn *gt, const vqs_knn *res, size_t k, size_t K)
{
    if (!gt || !res || k == 0 || K == 0 || gt->k < k || res->k < K || gt->nq != res->nq ||
        !gt->ids || !res->ids)
        return (double)vqs_seterr(VQS_EINVAL, "recall: need gt k >= %zu and result k >= %zu over the same queries",
                                  k, K);
    if (gt->nq == 0)
        return 0.0;
    int ties = gt->dist && res->dist;
    int64_t *sorted = malloc(sizeof(int64_t) * (k + K));
    if (!sorted)
        return (double)vqs_seterr(VQS_ENOMEM, "recall");
    int64_t *seen = sorted + k;
    double total = 0;
    for (size_t q = 0; q < gt->nq; q++) {
        memcpy(sorted, gt->ids + q * gt->k, sizeof(int64_t) * k);
        qsort(sorted, k, sizeof(int64_t), cmp_i64);
        double kth = ties ? gt->dist[q * gt->k + k - 1] : 0;
        double tol = 1e-6 * fmax(1.0, fabs(kth));
        size_t hits = 0, nseen = 0;
        for (size_t j = 0; j < K; j++) {
            int64_t id = res->ids[q * res->k + j];
            if (id < 0)
                continue;
            /* duplicates count once */
            int dup = 0;
            for (size_t s = 0; s < nseen && !dup; s++)
                dup = seen[s] == id;
            if (dup)
                continue;
            seen[nseen++] = id;
            int ok = bsearch(&id, sorted, k, sizeof(int64_t), cmp_i64) != NULL;
            if (!ok && ties) {
                double dv = res->dist[q * res->k + j];
                ok = m == VQS_METRIC_L2 ? dv <= kth + tol : dv >= kth - tol;
            }
            hits += ok;
        }
        total += (double)(hits < k ? hits : k) / (double)k;
    }
    free(sorted);
    return total / (double)gt->nq;
}
