/*
 * demo.c: `vqs demo`, the built-in example: a seeded synthetic embedding
 * set, written and read back through the file formats, searched exactly,
 * checked against a recomputation, then compressed by a few codecs whose
 * recall@10 against the exact answer is printed.
 *
 * Design decisions: no input files and no options (an argument is a usage
 * error), so that it runs right after a build (and under the sanitizers in
 * CTest); the files go to a fresh directory under /tmp and are left there,
 * because the last lines suggest `vqs gt` and `vqs codec` commands over
 * them.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vqs_codebook.h"
#include "vqs_common.h"
#include "vqs_index.h"
#include "vqs_store.h"
#include "vqs_topk.h"
#include "cli.h"
#include "commands.h"

#define fail vqs_cli_fail

static const vqs_cli_opt opts[] = {{0}};

const vqs_cli_help vqs_demo_help = {
    .cmd = "demo",
    .usage = "",
    .about = "The built-in example, no input needed: 20,000 synthetic 96-d unit vectors\n"
             "(a Gaussian mixture, seed 42) written as fvecs and npy under /tmp/vqs-demo-XXXXXX,\n"
             "read back, searched exactly (cosine, top 10 of 200 queries) and checked against\n"
             "a recomputation; the ground truth is written as ivecs. Then seven codecs\n"
             "(SQfp16, SQ8, SQ4, PCA48,SQ8, PQ16x8, PQ24x4, ROT,BIN) are trained and scanned,\n"
             "with bytes per vector, compression, training time and recall@10 for each. The\n"
             "files are left in place for the vqs gt / vqs codec commands it suggests.\n",
    .opts = opts,
    .example = "vqs demo\n",
};

/* Top k of n scores, larger is better (ties: lower index), into ids (-1
 * past n), through the one bounded top-k (vqs_topk.h: smaller keys first). */
static int top_k_desc(const float *sc, size_t n, size_t k, int64_t *ids)
{
    vqs_topk_item *h = malloc(sizeof *h * k);
    if (!h)
        return vqs_seterr(VQS_ENOMEM, "demo: top-%zu", k);
    vqs_topk t = {h, 0, k};
    for (size_t i = 0; i < n; i++)
        vqs_topk_push(&t, -(double)sc[i], (int64_t)i);
    vqs_topk_sort(&t);
    for (size_t j = 0; j < k; j++)
        ids[j] = j < t.n ? h[j].id : -1;
    free(h);
    return 0;
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
            if (!rc)
                rc = top_k_desc(sc, n, k, ids + q * k);
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
int vqs_cmd_demo(int argc, char **argv)
{
    int ch;
    optind = 1;
    while ((ch = vqs_cli_getopt(argc, argv, &vqs_demo_help)) != -1) {
        if (ch != 'h')
            return vqs_cli_bad_option(&vqs_demo_help);
        vqs_cli_help_print(stdout, &vqs_demo_help);
        return 0;
    }
    if (optind < argc)
        return fail("demo", vqs_seterr(VQS_EUSAGE, "unexpected argument '%s'", argv[optind]));
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
