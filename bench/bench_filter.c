/*
 * bench_filter: filtered search with and without a payload index (issue 17,
 * item 3), through the collection API (no HTTP).
 *
 *   bench_filter DIR [--n N] [--d D] [--queries Q] [--k K] [--spec SPEC]
 *                    [--nprobe P] [--rerank disk|memory] [--threads T] [--seed S]
 *
 * DIR must not exist (a new data directory; run_filter.sh removes it). It
 * creates a collection of N seeded points (a Gaussian mixture of 256
 * clusters in D dimensions, L2), trains SPEC on a 50k sample, upserts the
 * points in batches of 10,000 with a payload {"sel": u} (u uniform in
 * 0..999), then for selectivities 0.1%, 1%, 10%, 50% (the filter
 * "sel" < 1, 10, 100, 500) measures single-query filtered searches, one
 * caller thread (the search itself uses T threads):
 *   - no index: the filter runs during the scan (a callback on a payload
 *     array held here, as the server's payload cache answers it);
 *   - index: a payload index on "sel" (integer), planned as api/plan.c
 *     plans: the range lookup capped at vqs_coll_plan_threshold(c, 0); under it,
 *     exact scoring of the candidates (vqs_coll_search_ids, the filter
 *     re-checked); over it, the scan as without the index.
 * Recall@K against the exact filtered top K (brute force over the vectors
 * held here, in double precision). Prints a markdown table.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vqs_collection.h"
#include "vqs_topk.h"

typedef struct opts {
    const char *dir;
    size_t n, d, nq, k, nprobe;
    int threads;
    const char *spec, *rerank;
    unsigned long seed;
} opts;

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

static float gauss(uint64_t *s)
{
    double u = ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
    double v = ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
    return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
}

static const uint16_t *g_sel;
static uint16_t g_thr;
static int keep(void *ctx, int64_t iid)
{
    (void)ctx;
    return iid >= 0 && g_sel[iid] < g_thr;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_filter: %s: %s\n", what, vqs_errdetail());
    exit(1);
}

static double recall(const vqs_coll_hit *h, const int64_t *gt, size_t k)
{
    size_t m = 0, ng = 0;
    for (size_t j = 0; j < k; j++) {
        if (gt[j] < 0)
            continue;
        ng++;
        for (size_t i = 0; i < k; i++)
            if (h[i].id.kind && (int64_t)h[i].id.u64 == gt[j]) {
                m++;
                break;
            }
    }
    return ng ? (double)m / (double)ng : 1;
}

int main(int argc, char **argv)
{
    opts o = {NULL, 1000000, 64, 200, 10, 0, 0, "IVF1024,SQ8", "disk", 42};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-') {
            o.dir = a;
            continue;
        }
        if (!v) {
            fprintf(stderr, "bench_filter: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--n"))
            o.n = (size_t)atoll(v);
        else if (!strcmp(a, "--d"))
            o.d = (size_t)atoll(v);
        else if (!strcmp(a, "--queries"))
            o.nq = (size_t)atoll(v);
        else if (!strcmp(a, "--k"))
            o.k = (size_t)atoll(v);
        else if (!strcmp(a, "--nprobe"))
            o.nprobe = (size_t)atoll(v);
        else if (!strcmp(a, "--threads"))
            o.threads = atoi(v);
        else if (!strcmp(a, "--spec"))
            o.spec = v;
        else if (!strcmp(a, "--rerank"))
            o.rerank = v;
        else if (!strcmp(a, "--seed"))
            o.seed = strtoul(v, NULL, 10);
        else {
            fprintf(stderr, "bench_filter: unknown option %s\n", a);
            return 2;
        }
    }
    struct stat st;
    if (!o.dir || stat(o.dir, &st) == 0 || o.n == 0 || o.d == 0 || o.nq == 0 || o.k == 0) {
        fprintf(stderr, "usage: bench_filter DIR (must not exist) [--n N] [--d D] [--queries Q] [--k K] [--spec SPEC] "
                        "[--nprobe P] [--rerank disk|memory] [--threads T] [--seed S]\n");
        return 2;
    }
    size_t n = o.n, d = o.d, nq = o.nq, k = o.k;
    uint64_t s = o.seed * 2654435761u + 1;
    /* data: 256 cluster centres, points around them, queries likewise */
    size_t nc = 256;
    float *cent = malloc(sizeof(float) * nc * d), *x = malloc(sizeof(float) * n * d), *q = malloc(sizeof(float) * nq * d);
    uint16_t *sel = malloc(sizeof(uint16_t) * n);
    if (!cent || !x || !q || !sel)
        die("out of memory");
    for (size_t i = 0; i < nc * d; i++)
        cent[i] = 3 * gauss(&s);
    for (size_t i = 0; i < n; i++) {
        size_t c = rng_next(&s) % nc;
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = cent[c * d + j] + gauss(&s);
        sel[i] = (uint16_t)(rng_next(&s) % 1000);
    }
    for (size_t i = 0; i < nq; i++) {
        size_t c = rng_next(&s) % nc;
        for (size_t j = 0; j < d; j++)
            q[i * d + j] = cent[c * d + j] + gauss(&s);
    }
    g_sel = sel;

    vqs_catalog_opts co = {0};
    co.coll.nthreads = o.threads;
    vqs_catalog *cat;
    if (vqs_catalog_open(o.dir, &co, &cat))
        die("open");
    vqs_coll_config cfg = {0};
    cfg.d = (uint32_t)d;
    cfg.metric = VQS_METRIC_L2;
    snprintf(cfg.spec, sizeof cfg.spec, "%s", o.spec);
    if (vqs_rerank_parse(o.rerank, &cfg.rerank))
        die("--rerank");
    cfg.nprobe = (uint32_t)o.nprobe;
    vqs_coll *c;
    if (vqs_coll_create(cat, "f", &cfg) || vqs_coll_open(cat, "f", NULL, &c))
        die("create");
    double t0 = vqs_now();
    size_t ntrain = n < 50000 ? n : 50000;
    if (vqs_coll_train(c, ntrain, x))
        die("train");
    double t_train = vqs_now() - t0;
    t0 = vqs_now();
    size_t B = 10000;
    vqs_pid *ids = malloc(sizeof(vqs_pid) * B);
    char **pay = malloc(sizeof(char *) * B);
    for (size_t i = 0; i < B; i++)
        pay[i] = malloc(32);
    for (size_t b0 = 0; b0 < n; b0 += B) {
        size_t m = n - b0 < B ? n - b0 : B;
        for (size_t i = 0; i < m; i++) {
            memset(&ids[i], 0, sizeof ids[i]);
            ids[i].kind = VQS_PID_U64;
            ids[i].u64 = b0 + i;
            snprintf(pay[i], 32, "{\"sel\":%u}", (unsigned)sel[b0 + i]);
        }
        if (vqs_coll_upsert(c, m, ids, x + b0 * d, (const char *const *)pay))
            die("upsert");
    }
    double t_upsert = vqs_now() - t0;
    t0 = vqs_now();
    if (vqs_coll_pindex_create(c, "sel", VQS_PT_INTEGER, NULL))
        die("create the index");
    double t_index = vqs_now() - t0;

    /* exact filtered ground truth: every distance once per query, then the
     * K best under each threshold */
    const uint16_t thr[] = {1, 10, 100, 500};
    const int nt = 4;
    int64_t *gt = malloc(sizeof(int64_t) * nt * nq * k);
    vqs_topk_item *heap = malloc(sizeof(vqs_topk_item) * k);
    double *dist = malloc(sizeof(double) * n);
    t0 = vqs_now();
    for (size_t qi = 0; qi < nq; qi++) {
        for (size_t i = 0; i < n; i++) {
            double acc = 0;
            for (size_t j = 0; j < d; j++) {
                double e = (double)x[i * d + j] - q[qi * d + j];
                acc += e * e;
            }
            dist[i] = acc;
        }
        for (int ti = 0; ti < nt; ti++) {
            vqs_topk t = {heap, 0, k};
            for (size_t i = 0; i < n; i++)
                if (sel[i] < thr[ti])
                    vqs_topk_push(&t, dist[i], (int64_t)i);
            vqs_topk_sort(&t);
            for (size_t j = 0; j < k; j++)
                gt[((size_t)ti * nq + qi) * k + j] = j < t.n ? heap[j].id : -1;
        }
    }
    double t_gt = vqs_now() - t0;

    printf("bench_filter: %zu points, d %zu, %s, rerank %s, nprobe %zu, %zu queries, k %zu; train %.1f s, upsert "
           "%.1f s, index build %.1f s, ground truth %.1f s; exact path below %zu candidates\n\n",
           n, d, o.spec, o.rerank, (size_t)vqs_coll_config_of(c)->nprobe, nq, k, t_train, t_upsert, t_index, t_gt,
           vqs_coll_plan_threshold(c, 0));
    printf("| selectivity | matching points | no index: q/s | recall@%zu | index: plan | q/s | recall@%zu |\n", k, k);
    printf("|---|---|---|---|---|---|---|\n");
    vqs_coll_hit *hits = calloc(k, sizeof *hits);
    for (int ti = 0; ti < nt; ti++) {
        g_thr = thr[ti];
        size_t match = 0;
        for (size_t i = 0; i < n; i++)
            match += sel[i] < thr[ti];
        double qps[2], rec[2];
        const char *plan = "scan";
        for (int mode = 0; mode < 2; mode++) {
            double r = 0;
            t0 = vqs_now();
            for (size_t qi = 0; qi < nq; qi++) {
                vqs_coll_search_params p = {0};
                p.filter = keep;
                uint64_t *cand = NULL;
                size_t nc2 = 0;
                int over = 1;
                if (mode == 1) {
                    vqs_db_pquery pq = {0};
                    pq.op = VQS_PQ_RANGE;
                    pq.lo = -INFINITY;
                    pq.hi = thr[ti] - 1; /* sel < thr: integers up to thr - 1 */
                    if (vqs_coll_pindex_lookup(c, "sel", &pq, vqs_coll_plan_threshold(c, 0), &cand, &nc2,
                                               &over))
                        die("lookup");
                }
                int rc = over ? vqs_coll_search(c, &p, 1, q + qi * d, k, hits)
                              : vqs_coll_search_ids(c, &p, q + qi * d, k, nc2, cand, hits);
                if (rc)
                    die("search");
                if (mode == 1 && !over)
                    plan = "exact";
                free(cand);
                r += recall(hits, gt + ((size_t)ti * nq + qi) * k, k);
                vqs_coll_hits_free(hits, k);
            }
            double el = vqs_now() - t0;
            qps[mode] = (double)nq / el;
            rec[mode] = r / (double)nq;
        }
        printf("| %.1f%% | %zu | %.0f | %.3f | %s | %.0f | %.3f |\n", thr[ti] / 10.0, match, qps[0], rec[0], plan,
               qps[1], rec[1]);
    }
    free(hits);
    vqs_coll_close(c);
    vqs_catalog_close(cat);
    for (size_t i = 0; i < B; i++)
        free(pay[i]);
    free(pay);
    free(ids);
    free(gt);
    free(heap);
    free(dist);
    free(cent);
    free(x);
    free(q);
    free(sel);
    return 0;
}
