/*
 * eval_shards.c: `vqs eval --shards DIR`, the recall and speed of the
 * shards `vqs build` wrote, searched as one index: every query goes to
 * every shard, the shards' top k are merged (distance, then the lower row
 * id), and the merged answer is scored against exact ground truth. Under
 * mpirun (a build with -DVQS_MPI=ON) rank r searches shards r, r + P, ...
 * and rank 0 merges the ranks' answers (vqs_mpi_merge_topk): the same
 * answer as one process searching every shard.
 *
 * Figures: recall@k is |answer and true top k| / k over the queries (ties
 * not counted: the ids of --gt); the search time is the slowest rank's
 * time in vqs_coll_search (every query in one call per shard, on --threads
 * threads; opening a shard is not counted), the merge time rank 0's
 * gather and sort (from the slowest rank's end, so waiting is counted); queries/s = queries / (search +
 * merge). The answer can be written (--out) to compare runs.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "vqs_collection.h"
#include "vqs_common.h"
#include "vqs_mpi.h"
#include "vqs_store.h"
#include "vqs_topk.h"

#define fail vqs_cli_fail

static const vqs_cli_opt opts[] = {
    {"shards", 'S', 1, "DIR", NULL, "the output directory of vqs build (required): DIR/shard-0 ..."},
    {"queries", 'q', 1, "FILE", NULL, "the queries (required)"},
    {"gt", 'g', 1, "GT.ivecs", NULL, "exact ground truth, row numbers of the built file (vqs gt; required)"},
    {"k", 'k', 1, "K", "10", "results a query, and the k of recall@k"},
    {"collection", 'c', 1, "NAME", "vectors", "the collection in each shard"},
    {"nprobe", 'n', 1, "N", "the collection's", "IVF lists probed"},
    {"ef", 'e', 1, "N", "the index's", "graph search beam"},
    {"oversampling", 'O', 1, "F", "the collection's", "re-scored candidates: ceil(k x F)"},
    {"out", 'o', 1, "OUT.ivecs", NULL, "also the merged answer (row ids, k a query)"},
    {"threads", 'T', 1, "N", "all cores, or VQS_THREADS", "search threads, per rank"},
    {"dim", 'd', 1, "D", NULL, "the dimension of a headerless float32 query file"},
    {0}};

const vqs_cli_help vqs_eval_shards_help = {
    .cmd = "eval",
    .usage = "--shards DIR --queries FILE --gt GT.ivecs [--k K] [--collection NAME] [--nprobe N] [--ef N]\n"
             "[--oversampling F] [--out OUT.ivecs] [--threads N] [--dim D]",
    .about = "Recall@k and queries/s of the shards vqs build wrote, searched as one index: each\n"
             "query goes to every shard and the shards' top k are merged (distance, then lower\n"
             "row id). Under mpirun each rank searches its shards and rank 0 merges; the merge's\n"
             "time is reported apart.\n",
    .opts = opts,
    .example = "mpirun -n 4 vqs eval --shards shards --queries q.fvecs --gt gt.ivecs --nprobe 32\n",
};

/* Searches shard dir/shard-s for every query; its hits into ids/keys
 * (keys: lower is better), merged with what they held. */
static int search_shard(const char *dir, size_t s, const char *name, const vqs_coll_search_params *p, int threads,
                        const vqs_matrix *Q, size_t k, int64_t *ids, double *keys, vqs_metric *metric, double *secs)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/shard-%zu", dir, s);
    vqs_catalog *cat = NULL;
    vqs_coll *c = NULL;
    vqs_coll_hit *hits = malloc(sizeof *hits * Q->n * k + 1);
    vqs_topk_item *all = malloc(sizeof *all * 2 * k);
    float *q = malloc(sizeof(float) * Q->n * Q->d + 1);
    vqs_catalog_opts co = {.read_only = 1, .coll = {.nthreads = threads}};
    int rc = hits && all && q ? 0 : vqs_seterr(VQS_ENOMEM, "%zu queries x k = %zu", Q->n, k);
    if (!rc && !(rc = vqs_catalog_open(path, &co, &cat)) && !(rc = vqs_coll_open(cat, name, NULL, &c)) &&
        vqs_coll_d(c) != Q->d)
        rc = vqs_seterr(VQS_EINVAL, "%s: collection '%s' is %zu-d, the queries %zu-d", path, name, vqs_coll_d(c),
                        Q->d);
    for (size_t i = 0; !rc && i < Q->n; i++)
        memcpy(q + i * Q->d, Q->x + i * (Q->ld ? Q->ld : Q->d), sizeof(float) * Q->d);
    if (!rc) {
        *metric = vqs_coll_config_of(c)->metric;
        double t0 = vqs_now();
        rc = vqs_coll_search(c, p, Q->n, q, k, hits);
        *secs += vqs_now() - t0;
    }
    for (size_t i = 0; !rc && i < Q->n; i++) {
        size_t na = 0;
        for (size_t j = 0; j < k; j++) {
            if (ids[i * k + j] >= 0)
                all[na++] = (vqs_topk_item){keys[i * k + j], ids[i * k + j]};
            const vqs_coll_hit *h = &hits[i * k + j];
            if (h->id.kind == VQS_PID_U64)
                all[na++] = (vqs_topk_item){*metric == VQS_METRIC_L2 ? (double)h->dist : -(double)h->dist,
                                            (int64_t)h->id.u64};
            else if (h->id.kind)
                rc = vqs_seterr(VQS_EINVAL, "%s: a point id that is not a row number (a UUID): not a shard of "
                                "vqs build", path);
        }
        vqs_topk_take(all, na, k, ids + i * k, keys + i * k);
    }
    if (rc)
        rc = vqs_seterr(rc, "%s: %s", path, vqs_errdetail());
    vqs_coll_close(c);
    vqs_catalog_close(cat);
    free(hits);
    free(all);
    free(q);
    return rc;
}

/* shards in dir: shard-0 .. shard-(S-1), all of them (a gap is an error) */
static int count_shards(const char *dir, size_t *S)
{
    DIR *d = opendir(dir);
    if (!d)
        return vqs_seterr(-errno, "%s: %s", dir, strerror(errno));
    size_t n = 0, maxi = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        if (strncmp(e->d_name, "shard-", 6))
            continue;
        unsigned long i = strtoul(e->d_name + 6, &end, 10);
        if (end == e->d_name + 6 || *end)
            continue;
        n++;
        maxi = i > maxi ? i : maxi;
    }
    closedir(d);
    if (n == 0)
        return vqs_seterr(VQS_ENOTFOUND, "%s: no shard-0, shard-1, ... (vqs build --out)", dir);
    if (maxi + 1 != n)
        return vqs_seterr(VQS_ECORRUPT, "%s: %zu shard directories, but numbered up to shard-%zu: one is missing",
                          dir, n, maxi);
    *S = n;
    return 0;
}

int vqs_eval_shards(int argc, char **argv)
{
    const char *dir = NULL, *qf = NULL, *gtf = NULL, *name = "vectors", *out = NULL;
    size_t k = 10, threads = 0, dim = 0, nprobe = 0, ef = 0;
    double os = 0;
    int ch, rc = 0;
    optind = 1;
    while ((ch = vqs_cli_getopt(argc, argv, &vqs_eval_shards_help)) != -1) {
        switch (ch) {
        case 'S': dir = optarg; break;
        case 'q': qf = optarg; break;
        case 'g': gtf = optarg; break;
        case 'c': name = optarg; break;
        case 'o': out = optarg; break;
        case 'k': rc = vqs_cli_parse_positive(optarg, &k, "--k"); break;
        case 'n': rc = vqs_cli_parse_positive(optarg, &nprobe, "--nprobe"); break;
        case 'e': rc = vqs_cli_parse_positive(optarg, &ef, "--ef"); break;
        case 'T': rc = vqs_cli_parse_size(optarg, &threads, "--threads"); break;
        case 'd': rc = vqs_cli_parse_positive(optarg, &dim, "--dim"); break;
        case 'O': {
            char *end;
            os = strtod(optarg, &end);
            if (end == optarg || *end || !(os >= 1 && os <= 1000))
                rc = vqs_seterr(VQS_EUSAGE, "--oversampling '%s': expected a number in 1..1000", optarg);
            break;
        }
        case 'h': vqs_cli_help_print(stdout, &vqs_eval_shards_help); return 0;
        default: return vqs_cli_bad_option(&vqs_eval_shards_help);
        }
        if (rc)
            return fail("eval", rc);
    }
    if (optind < argc)
        return fail("eval", vqs_seterr(VQS_EUSAGE, "unexpected argument '%s'", argv[optind]));
    if (!dir || !qf || !gtf) {
        vqs_cli_usage(stderr, &vqs_eval_shards_help);
        return fail("eval", vqs_seterr(VQS_EUSAGE, "--shards, --queries and --gt are required"));
    }
    if (k > 4096)
        return fail("eval", vqs_seterr(VQS_EUSAGE, "--k %zu: at most 4096", k));
    int P = vqs_mpi_size(), rank = vqs_mpi_rank();
    vqs_vecfile *qv = NULL, *gv = NULL;
    vqs_matrix Q = {0};
    float *qown = NULL;
    int64_t *ids = NULL, *gt = NULL;
    double *keys = NULL;
    size_t S = 0, gk = 0;
    vqs_metric m = VQS_METRIC_L2;
    vqs_vecfile_opts vo = {.raw_dim = dim};
    if ((rc = count_shards(dir, &S)) || (rc = vqs_cli_open_matrix_opts(qf, &vo, &qv, &Q, &qown)))
        goto agree;
    if (rank == 0) { /* the ground truth: k ids a query at least */
        if ((rc = vqs_vecfile_open(gtf, NULL, &gv)))
            goto agree;
        gk = vqs_vecfile_d(gv);
        if (vqs_vecfile_n(gv) != Q.n || gk < k) {
            rc = vqs_seterr(VQS_EINVAL, "%s: %zu rows of %zu ids; %zu queries at k = %zu need as many rows of at "
                            "least k", gtf, vqs_vecfile_n(gv), gk, Q.n, k);
            goto agree;
        }
        if (!(gt = malloc(sizeof(int64_t) * Q.n * gk + 1))) {
            rc = vqs_seterr(VQS_ENOMEM, "%s", gtf);
            goto agree;
        }
        if ((rc = vqs_vecfile_read_i64(gv, 0, Q.n, gt)))
            goto agree;
    }
    ids = malloc(sizeof(int64_t) * Q.n * k + 1);
    keys = malloc(sizeof(double) * Q.n * k + 1);
    if (!ids || !keys)
        rc = vqs_seterr(VQS_ENOMEM, "%zu queries x k = %zu", Q.n, k);
    for (size_t i = 0; !rc && i < Q.n * k; i++) {
        ids[i] = -1;
        keys[i] = INFINITY;
    }
agree:
    if ((rc = vqs_mpi_agree(rc)))
        goto done;
    vqs_coll_search_params p = {.nprobe = nprobe, .ef = ef, .oversampling = (float)os};
    double slowest = 0; /* this rank's time in vqs_coll_search, then the slowest rank's */
    for (size_t s = (size_t)rank; !rc && s < S; s += (size_t)P)
        rc = search_shard(dir, s, name, &p, (int)threads, &Q, k, ids, keys, &m, &slowest);
    double t1 = vqs_now();
    if ((rc = vqs_mpi_agree(rc)) || (rc = vqs_mpi_max_double(&slowest)) ||
        (rc = vqs_mpi_merge_topk(Q.n, k, ids, keys)))
        goto done;
    double merge = vqs_now() - t1;
    if (rank == 0) {
        size_t hit = 0;
        for (size_t i = 0; i < Q.n; i++)
            for (size_t j = 0; j < k; j++)
                for (size_t g = 0; g < k; g++)
                    hit += ids[i * k + j] >= 0 && ids[i * k + j] == gt[i * gk + g];
        double rec = (double)hit / (double)(Q.n * k);
        printf("shards %zu, ranks %d, queries %zu, k %zu: recall@%zu %.4f, %.0f queries/s (search %.3f s on the "
               "slowest rank, merge %.3f s)\n",
               S, P, Q.n, k, k, rec, (double)Q.n / (slowest + merge), slowest, merge);
        if (out) {
            int32_t *o = malloc(sizeof(int32_t) * Q.n * k + 1);
            if (!o)
                rc = vqs_seterr(VQS_ENOMEM, "%s", out);
            for (size_t i = 0; o && i < Q.n * k; i++)
                o[i] = (int32_t)ids[i];
            if (o)
                rc = vqs_write_ivecs(out, Q.n, k, o);
            free(o);
        }
    }
    rc = vqs_mpi_agree(rc);
done:
    free(ids);
    free(keys);
    free(gt);
    free(qown);
    vqs_vecfile_close(qv);
    vqs_vecfile_close(gv);
    return rc ? fail("eval", rc) : 0;
}
