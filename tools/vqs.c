/*
 * vqs: the command line.
 *
 *   vqs demo                 built-in example (synthetic data, exact k-NN)
 *   vqs gt --base B --queries Q --k K --metric l2|ip|cos -o gt.ivecs
 *   vqs codec --spec S --train FILE [--test FILE] [--decoded OUT.fvecs]
 *   vqs eval --base B --queries Q --spec S [--spec S2 ...]   (tools/eval.c)
 *   vqs import / search / info / drop                        (tools/store_cmds.c)
 *   vqs report / recommend over eval's results               (tools/report_cmds.c)
 *
 * Design decisions: one binary with subcommands (git style) rather than one
 * program per task, so that the README's commands and later issues (eval,
 * import, search, serve) share option parsing and error reporting. Every
 * error is printed as "vqs <cmd>: <detail>" with the symbolic code, and the
 * exit status is 1 for a runtime failure and 2 for bad usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vqs_codebook.h"
#include "vqs_common.h"
#include "vqs_index.h"
#include "vqs_store.h"
#include "cli.h"

#define VQS_VERSION "0.1.0"
#define fail vqs_cli_fail
#define parse_size vqs_cli_parse_size
#define open_matrix vqs_cli_open_matrix

static void usage_gt(FILE *f)
{
    fprintf(f,
            "usage: vqs gt --base FILE --queries FILE --k K [--metric l2|ip|cos] -o OUT.ivecs\n"
            "              [--dist OUT.fvecs] [--threads N] [--dim D]\n"
            "  Exact k nearest neighbours of every query (ties by lower id).\n"
            "  Files: .fvecs .ivecs .bvecs .npy .jsonl/.ndjson, or raw float32 (.f32/.raw/.bin)\n"
            "  with --dim. Result ids are row numbers (JSONL \"id\" fields are not used).\n"
            "  --dist writes the distances (squared L2, inner product or cosine).\n");
}

static int cmd_gt(int argc, char **argv)
{
    const char *base = NULL, *qf = NULL, *out = NULL, *dout = NULL, *metric = "l2";
    size_t k = 100, threads = 0, dim = 0;
    int rc = 0;
    static const struct option lo[] = {{"base", 1, 0, 'b'},   {"queries", 1, 0, 'q'},
                                       {"k", 1, 0, 'k'},      {"metric", 1, 0, 'm'},
                                       {"out", 1, 0, 'o'},    {"dist", 1, 0, 'D'},
                                       {"threads", 1, 0, 't'}, {"dim", 1, 0, 'd'},
                                       {"help", 0, 0, 'h'},   {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "b:q:k:m:o:D:t:d:h", lo, NULL)) != -1) {
        switch (c) {
        case 'b': base = optarg; break;
        case 'q': qf = optarg; break;
        case 'm': metric = optarg; break;
        case 'o': out = optarg; break;
        case 'D': dout = optarg; break;
        case 'k': rc = parse_size(optarg, &k, "--k"); break;
        case 't': rc = parse_size(optarg, &threads, "--threads"); break;
        case 'd': rc = parse_size(optarg, &dim, "--dim"); break;
        case 'h': usage_gt(stdout); return 0;
        default: usage_gt(stderr); return 2;
        }
        if (rc)
            return fail("gt", rc);
    }
    if (optind < argc)
        return fail("gt", vqs_seterr(VQS_EUSAGE, "unexpected argument '%s'", argv[optind]));
    if (!base || !qf || !out) {
        usage_gt(stderr);
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

static void usage_codec(FILE *f)
{
    fprintf(f,
            "usage: vqs codec --spec S --train FILE [--test FILE] [--threads N] [--seed S]\n"
            "                 [--iters N] [--beam B] [--clip Q] [--decoded OUT.fvecs] [--dim D] [-v]\n"
            "  Trains the codec on --train, encodes and decodes --test (default: the\n"
            "  training set) and reports size, error and speed. Spec grammar: README.md.\n"
            "  --clip Q: SQ8/SQ4 ranges from the Q and 1 - Q quantiles of each dimension,\n"
            "  Q in (0.5, 1], 1 = min/max (default: SQ4 clipping chosen from the data).\n");
}

static int cmd_codec(int argc, char **argv)
{
    const char *spec = NULL, *train = NULL, *test = NULL, *dec = NULL;
    size_t threads = 0, seed = 0, dim = 0, iters = 0, beam = 0;
    float clip = 0;
    int verbose = 0, rc = 0, c;
    static const struct option lo[] = {{"spec", 1, 0, 's'},    {"train", 1, 0, 'T'},
                                       {"test", 1, 0, 'q'},    {"threads", 1, 0, 't'},
                                       {"seed", 1, 0, 'S'},    {"decoded", 1, 0, 'o'},
                                       {"dim", 1, 0, 'd'},     {"iters", 1, 0, 'i'},
                                       {"beam", 1, 0, 'b'},    {"clip", 1, 0, 'c'},
                                       {"verbose", 0, 0, 'v'}, {"help", 0, 0, 'h'},
                                       {0, 0, 0, 0}};
    optind = 1;
    while ((c = getopt_long(argc, argv, "s:T:q:t:S:o:d:i:b:c:vh", lo, NULL)) != -1) {
        switch (c) {
        case 's': spec = optarg; break;
        case 'T': train = optarg; break;
        case 'q': test = optarg; break;
        case 'o': dec = optarg; break;
        case 't': rc = parse_size(optarg, &threads, "--threads"); break;
        case 'S': rc = parse_size(optarg, &seed, "--seed"); break;
        case 'd': rc = parse_size(optarg, &dim, "--dim"); break;
        case 'i': rc = parse_size(optarg, &iters, "--iters"); break;
        case 'b': rc = parse_size(optarg, &beam, "--beam"); break;
        case 'c': rc = vqs_cli_parse_clip(optarg, &clip, "--clip"); break;
        case 'v': verbose = 1; break;
        case 'h': usage_codec(stdout); return 0;
        default: usage_codec(stderr); return 2;
        }
        if (rc)
            return fail("codec", rc);
    }
    if (optind < argc)
        return fail("codec", vqs_seterr(VQS_EUSAGE, "unexpected argument '%s'", argv[optind]));
    if (!spec || !train) {
        usage_codec(stderr);
        return fail("codec", vqs_seterr(VQS_EUSAGE, "--spec and --train are required"));
    }
    vqs_vecfile_opts vo = {.raw_dim = dim};
    float *xt = NULL, *xq = NULL, *xr = NULL;
    uint8_t *codes = NULL;
    size_t nt, d, nq, dq;
    vqs_codec *cd = NULL;
    if ((rc = vqs_vecfile_load_f32(train, &vo, &xt, &nt, &d)))
        goto done;
    if (test) {
        if ((rc = vqs_vecfile_load_f32(test, &vo, &xq, &nq, &dq)))
            goto done;
        if (dq != d) {
            rc = vqs_seterr(VQS_EINVAL, "%s has dimension %zu but %s has %zu", test, dq, train, d);
            goto done;
        }
    } else {
        nq = nt;
    }
    const float *x = test ? xq : xt;
    vqs_codec_opts co = {.nthreads = (int)threads, .seed = seed, .kmeans_iters = (int)iters,
                         .rvq_beam = (int)beam, .sq_clip = clip, .verbose = verbose};
    if ((rc = vqs_codec_create(spec, d, &co, &cd)))
        goto done;
    size_t cs = vqs_codec_code_size(cd);
    codes = malloc(cs * nq + 1);
    xr = malloc(sizeof(float) * nq * d + 1);
    if (!codes || !xr) {
        rc = vqs_seterr(VQS_ENOMEM, "%zu vectors", nq);
        goto done;
    }
    double t0 = vqs_now();
    if ((rc = vqs_codec_train(cd, nt, xt)))
        goto done;
    double t1 = vqs_now();
    if ((rc = vqs_codec_encode(cd, nq, x, codes)))
        goto done;
    double t2 = vqs_now();
    if ((rc = vqs_codec_decode(cd, nq, codes, xr)))
        goto done;
    double t3 = vqs_now();
    vqs_codec_error ce;
    if ((rc = vqs_codec_error_of(nq, d, x, xr, &ce)))
        goto done;
    printf("spec              %s\n", vqs_codec_spec(cd));
    printf("train / test      %zu / %zu vectors, d = %zu%s\n", nt, nq, d, test ? "" : " (test = train)");
    printf("bytes per vector  %zu (float32: %zu)\n", cs, 4 * d);
    printf("compression       %.2fx\n", 4.0 * (double)d / (double)cs);
    printf("MSE               %.6g (mean squared L2 error per vector)\n", ce.mse);
    printf("relative MSE      %.6g (MSE / centred variance per vector)\n", ce.rel_mse);
    printf("SQNR              %.2f dB (-10 log10 relative MSE)\n", ce.sqnr_db);
    printf("training          %.3f s\n", t1 - t0);
    printf("encode            %.0f vectors/s\n", (double)nq / (t2 - t1));
    printf("decode            %.0f vectors/s\n", (double)nq / (t3 - t2));
    if (dec)
        rc = vqs_write_fvecs(dec, nq, d, xr);
done:
    vqs_codec_free(cd);
    free(xt);
    free(xq);
    free(xr);
    free(codes);
    return rc ? fail("codec", rc) : 0;
}

/* Top k of n scores, larger is better (ties: lower index), into ids. */
static void top_k_desc(const float *sc, size_t n, size_t k, int64_t *ids)
{
    for (size_t j = 0; j < k; j++)
        ids[j] = -1;
    for (size_t i = 0; i < n; i++) {
        size_t pos = k;
        while (pos > 0 && (ids[pos - 1] < 0 || sc[i] > sc[ids[pos - 1]]))
            pos--;
        if (pos == k)
            continue;
        memmove(ids + pos + 1, ids + pos, sizeof(int64_t) * (k - pos - 1));
        ids[pos] = (int64_t)i;
    }
}

/* Compression versus recall on the demo set: each codec is trained on the
 * base, the base is encoded, and every query is scored against all codes. */
static int demo_codecs(const vqs_matrix *B, const vqs_matrix *Q, size_t k, const int64_t *gt,
                       const float *gtd)
{
    static const char *specs[] = {"SQfp16", "SQ8", "SQ4", "PCA48,SQ8", "PQ16x8", "PQ24x4", "ROT,BIN"};
    size_t n = B->n, d = B->d, nq = Q->n;
    float *xb = malloc(sizeof(float) * n * d), *sc = malloc(sizeof(float) * n);
    int64_t *ids = malloc(sizeof(int64_t) * nq * k);
    uint8_t *codes = NULL;
    int rc = 0;
    if (!xb || !sc || !ids) {
        rc = vqs_seterr(VQS_ENOMEM, "demo");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        memcpy(xb + i * d, B->x + i * B->ld, sizeof(float) * d);
    printf("\ncompressed scan of all %zu codes per query, no re-scoring (that comes with the index):\n",
           n);
    printf("%-10s %6s %8s %9s %10s\n", "codec", "bytes", "ratio", "train s", "recall@10");
    for (size_t s = 0; s < sizeof specs / sizeof specs[0] && !rc; s++) {
        vqs_codec_opts co = {.seed = 42, .kmeans_iters = 10};
        vqs_codec *c = NULL;
        if ((rc = vqs_codec_create(specs[s], d, &co, &c)))
            break;
        size_t cs = vqs_codec_code_size(c);
        free(codes);
        codes = malloc(cs * n);
        double t0 = vqs_now();
        if (!codes)
            rc = vqs_seterr(VQS_ENOMEM, "demo codes");
        if (!rc)
            rc = vqs_codec_train(c, n, xb);
        double t1 = vqs_now();
        if (!rc)
            rc = vqs_codec_encode(c, n, xb, codes);
        for (size_t q = 0; q < nq && !rc; q++) {
            vqs_codec_query *qq;
            if ((rc = vqs_codec_query_create(c, VQS_METRIC_IP, Q->x + q * Q->ld, &qq)))
                break;
            rc = vqs_codec_query_score(qq, n, codes, sc);
            vqs_codec_query_free(qq);
            top_k_desc(sc, n, k, ids + q * k);
        }
        if (!rc) {
            float *rd = malloc(sizeof(float) * nq * k);
            if (!rd)
                rc = vqs_seterr(VQS_ENOMEM, "demo distances");
            else if ((rc = vqs_exact_distances(VQS_METRIC_COS, B, Q, k, ids, rd)) == 0) {
                vqs_knn G = {nq, k, gt, gtd}, R = {nq, k, ids, rd};
                printf("%-10s %6zu %7.1fx %9.2f %10.3f\n", specs[s], cs, 4.0 * (double)d / (double)cs,
                       t1 - t0, vqs_recall(VQS_METRIC_COS, &G, &R, k, k));
            }
            free(rd);
        }
        vqs_codec_free(c);
    }
done:
    free(xb);
    free(sc);
    free(ids);
    free(codes);
    return rc;
}

/* The built-in example: a seeded synthetic embedding set, written and read
 * back through the file formats, searched exactly, checked against a
 * double-precision recomputation, then compressed by a few codecs whose
 * recall@10 against the exact answer is reported. */
static int cmd_demo(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    const size_t n = 20000, nq = 200, d = 96, k = 10;
    int rc = 0;
    char dir[] = "/tmp/vqs-demo-XXXXXX";
    char bpath[64], qpath[64], gpath[64];
    float *x = malloc(sizeof(float) * (n + nq) * d), *dist = malloc(sizeof(float) * nq * k);
    int64_t *ids = malloc(sizeof(int64_t) * nq * k);
    float *ref = malloc(sizeof(float) * nq * k);
    vqs_vecfile *bf = NULL, *qf = NULL;
    if (!x || !dist || !ids || !ref) {
        rc = vqs_seterr(VQS_ENOMEM, "demo buffers");
        goto done;
    }
    if (!mkdtemp(dir)) {
        rc = vqs_seterr(-errno, "mkdtemp: %s", strerror(errno));
        goto done;
    }
    snprintf(bpath, sizeof bpath, "%s/base.fvecs", dir);
    snprintf(qpath, sizeof qpath, "%s/queries.npy", dir);
    snprintf(gpath, sizeof gpath, "%s/gt.ivecs", dir);
    printf("vqs %s demo: %zu synthetic %zu-d unit vectors (Gaussian mixture, seed 42)\n",
           VQS_VERSION, n + nq, d);
    vqs_synth_opts so = {.unit_norm = 1, .seed = 42, .ncenters = 32, .spread = 0.5f};
    if ((rc = vqs_synth_gmm(&so, n + nq, d, x)))
        goto done;
    if ((rc = vqs_write_fvecs(bpath, n, d, x)) ||
        (rc = vqs_write_npy(qpath, nq, d, VQS_DT_F32, x + n * d)))
        goto done;
    vqs_matrix B, Q;
    if ((rc = vqs_vecfile_open(bpath, NULL, &bf)) || (rc = vqs_vecfile_open(qpath, NULL, &qf)))
        goto done;
    B = (vqs_matrix){.n = vqs_vecfile_n(bf), .d = vqs_vecfile_d(bf)};
    Q = (vqs_matrix){.n = vqs_vecfile_n(qf), .d = vqs_vecfile_d(qf)};
    if ((rc = vqs_vecfile_f32_view(bf, &B.x, &B.ld)) || (rc = vqs_vecfile_f32_view(qf, &Q.x, &Q.ld)))
        goto done;
    printf("wrote and re-read %s (%zu x %zu) and %s (%zu x %zu)\n", bpath, B.n, B.d, qpath, Q.n,
           Q.d);
    double t0 = vqs_now();
    if ((rc = vqs_exact_knn(NULL, VQS_METRIC_COS, &B, &Q, k, ids, dist)))
        goto done;
    double t1 = vqs_now();
    printf("exact cosine top-%zu for %zu queries on %d threads: %.1f ms\n", k, nq,
           vqs_default_threads(), 1e3 * (t1 - t0));
    /* check: the returned distances equal a direct recomputation */
    if ((rc = vqs_exact_distances(VQS_METRIC_COS, &B, &Q, k, ids, ref)))
        goto done;
    double maxerr = 0;
    for (size_t i = 0; i < nq * k; i++)
        maxerr = fmax(maxerr, fabs((double)ref[i] - dist[i]));
    int32_t *gt32 = malloc(sizeof(int32_t) * nq * k);
    if (!gt32) {
        rc = vqs_seterr(VQS_ENOMEM, "demo");
        goto done;
    }
    for (size_t i = 0; i < nq * k; i++)
        gt32[i] = (int32_t)ids[i];
    rc = vqs_write_ivecs(gpath, nq, k, gt32);
    free(gt32);
    if (rc)
        goto done;
    for (size_t q = 0; q < 3; q++) {
        printf("query %zu:", q);
        for (size_t j = 0; j < 5; j++)
            printf("  #%" PRId64 " (%.4f)", ids[q * k + j], dist[q * k + j]);
        printf("\n");
    }
    printf("max |returned - recomputed| cosine: %.2g; ground truth written to %s\n", maxerr, gpath);
    if ((rc = demo_codecs(&B, &Q, k, ids, dist)))
        goto done;
    printf("\ntry: ./build/vqs gt --base %s --queries %s --k 10 --metric cos -o /tmp/gt.ivecs\n"
           "     ./build/vqs codec --spec PQ16x8 --train %s\n",
           bpath, qpath, bpath);
done:
    free(x);
    free(dist);
    free(ids);
    free(ref);
    vqs_vecfile_close(bf);
    vqs_vecfile_close(qf);
    return rc ? fail("demo", rc) : 0;
}

static void usage(FILE *f)
{
    fprintf(f, "vqs %s: vector quantization and embedding compression\n\n"
               "usage: vqs <command> [options]\n\n"
               "commands:\n"
               "  demo     run the built-in example\n"
               "  gt       exact k-NN ground truth (vqs gt --help)\n"
               "  codec    train a codec, report its size and error (vqs codec --help)\n"
               "  eval     compression versus recall and speed of index specs (vqs eval --help)\n"
               "  report   an HTML report of eval's results: plots, Pareto front, table (vqs report --help)\n"
               "  recommend  the best configuration for a budget or a recall target, and how to use it\n"
               "  import   bulk-load a vector file into a collection (vqs import --help)\n"
               "  search   k-NN of a query file in a collection (vqs search --help)\n"
               "  info     collections of a data directory: counts, specs, sizes\n"
               "  drop     delete a collection\n"
               "  serve    the HTTP service, Qdrant's REST shapes (vqs serve --help)\n"
               "  version  print the version\n",
            VQS_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "gt"))
        return cmd_gt(argc - 1, argv + 1);
    if (!strcmp(cmd, "codec"))
        return cmd_codec(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval"))
        return vqs_cmd_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "report"))
        return vqs_cmd_report(argc - 1, argv + 1);
    if (!strcmp(cmd, "recommend"))
        return vqs_cmd_recommend(argc - 1, argv + 1);
    if (!strcmp(cmd, "demo"))
        return cmd_demo(argc - 1, argv + 1);
    if (!strcmp(cmd, "import"))
        return vqs_cmd_import(argc - 1, argv + 1);
    if (!strcmp(cmd, "search"))
        return vqs_cmd_search(argc - 1, argv + 1);
    if (!strcmp(cmd, "info"))
        return vqs_cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "drop"))
        return vqs_cmd_drop(argc - 1, argv + 1);
    if (!strcmp(cmd, "serve"))
        return vqs_cmd_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("vqs %s\n", VQS_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "vqs: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
