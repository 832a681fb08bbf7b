/*
 * gt.c: `vqs gt`, exact k nearest neighbours of a query file over a base
 * file, written as ivecs (the ground truth other tools compare against).
 *
 * Design decisions: result ids are row numbers (int32, as ivecs holds), so
 * a base of more than INT32_MAX rows is refused rather than truncated; ties
 * go to the lower id (vqs_exact_knn), so two runs and two machines write the
 * same file.
 * - Under mpirun (a build with -DVQS_MPI=ON, tools/mpi.c) each rank
 *   searches its contiguous range of base rows and rank 0 merges the ranks'
 *   top k by the scores vqs_exact_knn orders by (double, then id) and writes
 *   the files: the same bytes as one process writes. A float32 base file
 *   (fvecs, npy, raw) is memory-mapped, so a rank reads only its rows; other
 *   formats are converted whole by every rank.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "vqs_common.h"
#include "vqs_index.h"
#include "vqs_store.h"
#include "cli.h"
#include "commands.h"
#include "vqs_mpi.h"

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
             "that vqs eval --gt and other tools compare against. Under mpirun (a build with\n"
             "-DVQS_MPI=ON) each rank searches a range of base rows and rank 0 merges and\n"
             "writes: the same files as one process.\n",
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
    double *keys = NULL;
    vqs_matrix B, Q;
    int P = vqs_mpi_size(), rank = vqs_mpi_rank();
    if ((rc = open_matrix(base, dim, &bf, &B, &bown)) || (rc = open_matrix(qf, dim, &qff, &Q, &qown)))
        goto agree;
    if (B.d != Q.d) {
        rc = vqs_seterr(VQS_EINVAL, "%s has dimension %zu but %s has %zu", base, B.d, qf, Q.d);
        goto agree;
    }
    if (B.n > INT32_MAX) {
        rc = vqs_seterr(VQS_ERANGE, "%s: %zu rows do not fit ivecs's int32 ids", base, B.n);
        goto agree;
    }
    ids = malloc(sizeof(int64_t) * Q.n * k + 1);
    dist = malloc(sizeof(float) * Q.n * k + 1);
    ids32 = malloc(sizeof(int32_t) * Q.n * k + 1);
    keys = P > 1 ? malloc(sizeof(double) * Q.n * k + 1) : NULL;
    if (!ids || !dist || !ids32 || (P > 1 && !keys))
        rc = vqs_seterr(VQS_ENOMEM, "%zu queries x k = %zu", Q.n, k);
agree:
    if ((rc = vqs_mpi_agree(rc)))
        goto done;
    /* this rank's rows (all of them in one process) */
    size_t lo, hi;
    vqs_mpi_range(B.n, rank, P, &lo, &hi);
    vqs_matrix Bs = B;
    size_t ldb = B.ld ? B.ld : B.d;
    Bs.x = B.x + lo * ldb;
    Bs.n = hi - lo;
    if (rank == 0)
        fprintf(stderr, "vqs gt: %zu base x %zu queries, d = %zu, k = %zu, metric %s%s\n", B.n, Q.n, B.d, k,
                vqs_metric_name(m), P > 1 ? ", over MPI ranks" : "");
    if (P > 1 && rank == 0)
        fprintf(stderr, "vqs gt: %d ranks, %zu to %zu base rows each\n", P, B.n / (size_t)P,
                (B.n + (size_t)P - 1) / (size_t)P);
    double t0 = vqs_now();
    vqs_exact_opts eo = {.nthreads = (int)threads, .keys = keys};
    if (Bs.n || P == 1) {
        rc = vqs_exact_knn(&eo, m, &Bs, &Q, k, ids, dist);
    } else { /* more ranks than rows: this one has none */
        for (size_t i = 0; i < Q.n * k; i++) {
            ids[i] = -1;
            keys[i] = INFINITY;
        }
    }
    for (size_t i = 0; !rc && lo && i < Q.n * k; i++)
        ids[i] += ids[i] >= 0 ? (int64_t)lo : 0;
    double t1 = vqs_now();
    if ((rc = vqs_mpi_agree(rc)) || (rc = vqs_mpi_merge_topk(Q.n, k, ids, keys)))
        goto done;
    double t2 = vqs_now();
    if (rank == 0 && P > 1) /* the merged scores as vqs_exact_knn writes distances */
        for (size_t i = 0; i < Q.n * k; i++)
            dist[i] = ids[i] < 0 ? (m == VQS_METRIC_L2 ? INFINITY : -INFINITY)
                                 : (float)(m == VQS_METRIC_L2 ? keys[i] : -keys[i]);
    if (rank == 0 && P > 1)
        fprintf(stderr, "vqs gt: %.3f s (%.0f queries/s; rank 0's search %.3f s, the merge %.3f s)\n", t2 - t0,
                (double)Q.n / (t2 - t0), t1 - t0, t2 - t1);
    else if (rank == 0)
        fprintf(stderr, "vqs gt: %.3f s (%.0f queries/s)\n", t1 - t0, (double)Q.n / (t1 - t0));
    for (size_t i = 0; rank == 0 && i < Q.n * k; i++)
        ids32[i] = (int32_t)ids[i];
    if (rank == 0 && !(rc = vqs_write_ivecs(out, Q.n, k, ids32)) && dout)
        rc = vqs_write_fvecs(dout, Q.n, k, dist);
    rc = vqs_mpi_agree(rc);
done:
    free(keys);
    free(ids);
    free(ids32);
    free(dist);
    free(bown);
    free(qown);
    vqs_vecfile_close(bf);
    vqs_vecfile_close(qff);
    return rc ? fail("gt", rc) : 0;
}
