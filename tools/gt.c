/*
 * gt.c: `vqs gt`, exact k nearest neighbours of a query file over a base
 * file, written as ivecs (the ground truth other tools compare against).
 *
 * Design decisions: result ids are row numbers (int32, as ivecs holds), so
 * a base of more than INT32_MAX rows is refused rather than truncated; ties
 * go to the lower id (vqs_exact_knn), so two runs and two machines write the
 * same file.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "vqs_common.h"
#include "vqs_index.h"
#include "vqs_store.h"
#include "cli.h"
#include "commands.h"

#define fail vqs_cli_fail
#define parse_size vqs_cli_parse_size
#define open_matrix vqs_cli_open_matrix

static const vqs_cli_opt opts[] = {
    {"base", 'b', 1, "FILE", NULL, "the vectors searched (required): .fvecs .ivecs .bvecs .npy\n"
                                   ".jsonl/.ndjson, or raw float32 (.f32/.raw/.bin) with --dim"},
    {"queries", 'q', 1, "FILE", NULL, "the queries (required), in the same formats and dimension"},
    {"k", 'k', 1, "K", "100", "neighbours per query"},
    {"metric", 'm', 1, "l2|ip|cos", "l2", "squared L2, inner product or cosine"},
    {"out", 'o', 1, "OUT.ivecs", NULL, "the ids, k a query (required); ids are row numbers of the base\n"
                                       "(JSONL \"id\" fields are not used)"},
    {"dist", 'D', 1, "OUT.fvecs", NULL, "also the distances (squared L2, inner product or cosine)"},
    {"threads", 't', 1, "N", "all cores, or VQS_THREADS", "threads of the search"},
    {"dim", 'd', 1, "D", NULL, "the dimension of a headerless float32 file (.f32, .raw, .bin)"},
    {0}};

const vqs_cli_help vqs_gt_help = {
    .cmd = "gt",
    .usage = "--base FILE --queries FILE -o OUT.ivecs [--k K] [--metric l2|ip|cos]\n"
             "[--dist OUT.fvecs] [--threads N] [--dim D]",
    .about = "Exact k nearest neighbours of every query (ties by lower id), the ground truth\n"
             "that vqs eval --gt and other tools compare against.\n",
    .opts = opts,
    .example = "vqs gt --base base.fvecs --queries queries.fvecs --k 100 --metric cos -o gt.ivecs\n",
};

int vqs_cmd_gt(int argc, char **argv)
{
    const char *base = NULL, *qf = NULL, *out = NULL, *dout = NULL, *metric = "l2";
    size_t k = 100, threads = 0, dim = 0;
    int rc = 0;
    int c;
    optind = 1;
    while ((c = vqs_cli_getopt(argc, argv, &vqs_gt_help)) != -1) {
        switch (c) {
        case 'b': base = optarg; break;
        case 'q': qf = optarg; break;
        case 'm': metric = optarg; break;
        case 'o': out = optarg; break;
        case 'D': dout = optarg; break;
        case 'k': rc = parse_size(optarg, &k, "--k"); break;
        case 't': rc = parse_size(optarg, &threads, "--threads"); break;
        case 'd': rc = parse_size(optarg, &dim, "--dim"); break;
        case 'h': vqs_cli_help_print(stdout, &vqs_gt_help); return 0;
        default: return vqs_cli_bad_option(&vqs_gt_help);
        }
        if (rc)
            return fail("gt", rc);
    }
    if (optind < argc)
        return fail("gt", vqs_seterr(VQS_EUSAGE, "unexpected argument '%s'", argv[optind]));
    if (!base || !qf || !out) {
        vqs_cli_usage(stderr, &vqs_gt_help);
        return fail("gt", vqs_seterr(VQS_EUSAGE, "--base, --queries and -o are required"));
    }
    if (k == 0 || k > INT32_MAX)
        return fail("gt", vqs_seterr(VQS_EUSAGE, "--k must be in 1..%d", INT32_MAX));
    vqs_metric m;
    if ((rc = vqs_metric_parse(metric, &m)))
        return fail("gt", rc);

    vqs_vecfile *bf = NULL, *qff = NULL;
    float *bown = NULL, *qown = NULL, *dist = NULL;
    int64_t *ids = NULL;
    int32_t *ids32 = NULL;
    vqs_matrix B, Q;
    if ((rc = open_matrix(base, dim, &bf, &B, &bown)) || (rc = open_matrix(qf, dim, &qff, &Q, &qown)))
        goto done;
    if (B.d != Q.d) {
        rc = vqs_seterr(VQS_EINVAL, "%s has dimension %zu but %s has %zu", base, B.d, qf, Q.d);
        goto done;
    }
    if (B.n > INT32_MAX) {
        rc = vqs_seterr(VQS_ERANGE, "%s: %zu rows do not fit ivecs's int32 ids", base, B.n);
        goto done;
    }
    ids = malloc(sizeof(int64_t) * Q.n * k + 1);
    dist = malloc(sizeof(float) * Q.n * k + 1);
    ids32 = malloc(sizeof(int32_t) * Q.n * k + 1);
    if (!ids || !dist || !ids32) {
        rc = vqs_seterr(VQS_ENOMEM, "%zu queries x k = %zu", Q.n, k);
        goto done;
    }
    fprintf(stderr, "vqs gt: %zu base x %zu queries, d = %zu, k = %zu, metric %s\n", B.n, Q.n,
            B.d, k, vqs_metric_name(m));
    double t0 = vqs_now();
    vqs_exact_opts eo = {.nthreads = (int)threads};
    if ((rc = vqs_exact_knn(&eo, m, &B, &Q, k, ids, dist)))
        goto done;
    double t1 = vqs_now();
    fprintf(stderr, "vqs gt: %.3f s (%.0f queries/s)\n", t1 - t0, (double)Q.n / (t1 - t0));
    for (size_t i = 0; i < Q.n * k; i++)
        ids32[i] = (int32_t)ids[i];
    if ((rc = vqs_write_ivecs(out, Q.n, k, ids32)))
        goto done;
    if (dout && (rc = vqs_write_fvecs(dout, Q.n, k, dist)))
        goto done;
done:
    free(ids);
    free(ids32);
    free(dist);
    free(bown);
    free(qown);
    vqs_vecfile_close(bf);
    vqs_vecfile_close(qff);
    return rc ? fail("gt", rc) : 0;
}
