/*
 * eval.c: `vqs eval`, the offline compression-versus-recall tool.
 *
 *   vqs eval --base B --queries Q [--gt GT.ivecs] --metric l2|ip|cos
 *            --spec S [--spec S2 ...] [--nprobe 1,8,32] [--oversampling 1,4,10]
 *            [--threads N] [--train-size N] [--seed S] [--dim D] [--out PREFIX]
 *
 * One row per (spec, nprobe, oversampling): bytes per vector (codes alone,
 * and everything the index keeps per vector including ids and the fixed
 * overhead spread over the base), compression ratio against float32,
 * training and adding time, recall@1, recall@10, 10-recall@100 (ties with
 * the k-th true distance count as found), and queries/s at k = 10 on one
 * thread and on all threads. An "exact" spec is exact search itself.
 *
 * Design decisions:
 * - Ground truth is computed exactly (vqs_exact_knn) when not given; a given
 *   ground-truth file is trusted for ids, and its distances are recomputed
 *   so that ties are judged the same way as for computed ground truth.
 * - Recall comes from one k = 100 search; speed from separate k = 10
 *   searches (what a service answers), timed as the best of a few runs over
 *   the whole query set, so a row costs a few searches, not one per metric.
 * - nprobe only varies for IVF specs and oversampling only for specs with a
 *   refine stage (RFlat, Refine(...)); other specs get one row per value
 *   that matters, not a grid of identical rows.
 * - --out PREFIX writes PREFIX.csv and PREFIX.json with the same fields.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "vqs_common.h"
#include "vqs_index.h"
#include "vqs_kernels.h"

#define MAXSPEC 64
#define MAXVAL 16

typedef struct row {
    char spec[256];
    size_t nprobe;
    float oversampling;
    double code_bytes, total_bytes, ratio;
    double train_s, add_s;
    double r1, r10, r10_100;
    double qps1, qpsn;
} row;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vqs eval --base FILE --queries FILE --spec S [--spec S2 ...]\n"
            "                [--gt GT.ivecs] [--metric l2|ip|cos] [--nprobe 1,8,32]\n"
            "                [--oversampling 1,4,10] [--threads N] [--train-size N]\n"
            "                [--seed S] [--dim D] [--nq N] [--out PREFIX] [--clip Q]\n"
            "  Builds an index for every spec (e.g. exact, PQ16x8, IVF256,PQ32x4,\n"
            "  IVF1024,SQ8,RFlat, BIN,Refine(SQfp16)) and prints, per setting, bytes per\n"
            "  vector, compression ratio, training and adding time, recall@1, recall@10,\n"
            "  10-recall@100 and queries/s (k = 10) on 1 thread and on all threads.\n"
            "  --out PREFIX also writes PREFIX.csv and PREFIX.json.\n");
}

static int parse_list(const char *s, double *v, size_t *n, const char *what)
{
    *n = 0;
    char *dup = strdup(s), *save = NULL;
    if (!dup)
        return vqs_seterr(VQS_ENOMEM, "%s", what);
    int rc = 0;
    for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *end;
        double x = strtod(t, &end);
        if (*end || !(x > 0) || *n == MAXVAL) {
            rc = vqs_seterr(VQS_EUSAGE, "%s: '%s' is not a positive number (at most %d values)", what, t, MAXVAL);
            break;
        }
        v[(*n)++] = x;
    }
    free(dup);
    if (!rc && *n == 0)
        rc = vqs_seterr(VQS_EUSAGE, "%s: empty list", what);
    return rc;
}

/* queries/s of a k = 10 search with nthreads threads: best of runs. */
static int time_search(const vqs_index *ix, const vqs_search_params *p0, int nthreads, size_t nq,
                       const float *q, size_t d, int64_t *ids, double *qps)
{
    vqs_search_params p = *p0;
    p.nthreads = nthreads;
    double best = INFINITY, spent = 0;
    size_t n = nq;
    for (int rep = 0; rep < 3 && spent < 20; rep++) {
        double t0 = vqs_now();
        int rc = vqs_index_search(ix, &p, n, q, 10, ids, NULL);
        if (rc)
            return rc;
        double t = vqs_now() - t0;
        spent += t;
        if (t < best)
            best = t;
    }
    (void)d;
    *qps = (double)n / best;
    return 0;
}

static int time_exact(int nthreads, vqs_metric m, const vqs_matrix *B, const vqs_matrix *Q, int64_t *ids,
                      double *qps)
{
    vqs_exact_opts eo = {.nthreads = nthreads};
    double best = INFINITY, spent = 0;
    for (int rep = 0; rep < 3 && spent < 20; rep++) {
        double t0 = vqs_now();
        int rc = vqs_exact_knn(&eo, m, B, Q, 10, ids, NULL);
        if (rc)
            return rc;
        double t = vqs_now() - t0;
        spent += t;
        if (t < best)
            best = t;
    }
    *qps = (double)Q->n / best;
    return 0;
}

static double recall_of(vqs_metric m, const vqs_matrix *B, const vqs_matrix *Q, const vqs_knn *gt,
                        const int64_t *ids, float *rd, size_t k, size_t K)
{
    /* true distances of the returned ids, for ties */
    if (vqs_exact_distances(m, B, Q, 100, ids, rd))
        return NAN;
    vqs_knn R = {Q->n, 100, ids, rd};
    size_t kk = k < gt->k ? k : gt->k;
    return vqs_recall(m, gt, &R, kk, K);
}

static void print_row(const row *r)
{
    printf("| %s | %zu | %g | %.1f | %.1f | %.1f | %.2f | %.2f | %.4f | %.4f | %.4f | %.0f | %.0f |\n", r->spec,
           r->nprobe, (double)r->oversampling, r->code_bytes, r->total_bytes, r->ratio, r->train_s, r->add_s,
           r->r1, r->r10, r->r10_100, r->qps1, r->qpsn);
    fflush(stdout);
}

static int write_out(const char *prefix, const row *rows, size_t nrows, const char *base, const char *qf,
                     vqs_metric m, size_t nb, size_t nq, size_t d, int nthreads)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.csv", prefix);
    FILE *f = fopen(path, "w");
    if (!f)
        return vqs_seterr(-errno, "%s", path);
    fprintf(f, "spec,nprobe,oversampling,code_bytes,total_bytes,compression,train_s,add_s,recall_at_1,"
               "recall_at_10,recall_10_at_100,qps_1_thread,qps_all_threads\n");
    for (size_t i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        fprintf(f, "\"%s\",%zu,%g,%.3f,%.3f,%.3f,%.4f,%.4f,%.6f,%.6f,%.6f,%.1f,%.1f\n", r->spec, r->nprobe,
                (double)r->oversampling, r->code_bytes, r->total_bytes, r->ratio, r->train_s, r->add_s, r->r1,
                r->r10, r->r10_100, r->qps1, r->qpsn);
    }
    if (fclose(f))
        return vqs_seterr(-errno, "%s", path);
    snprintf(path, sizeof path, "%s.json", prefix);
    f = fopen(path, "w");
    if (!f)
        return vqs_seterr(-errno, "%s", path);
    fprintf(f, "{\"base\": \"%s\", \"queries\": \"%s\", \"metric\": \"%s\", \"n\": %zu, \"nq\": %zu, \"d\": %zu,"
               " \"threads\": %d, \"simd\": \"%s\", \"rows\": [\n",
            base, qf, vqs_metric_name(m), nb, nq, d, nthreads, vqs_kernels_active()->name);
    for (size_t i = 0; i < nrows; i++) {
        const row *r = &rows[i];
        fprintf(f,
                "  {\"spec\": \"%s\", \"nprobe\": %zu, \"oversampling\": %g, \"code_bytes\": %.3f,"
                " \"total_bytes\": %.3f, \"compression\": %.3f, \"train_s\": %.4f, \"add_s\": %.4f,"
                " \"recall_at_1\": %.6f, \"recall_at_10\": %.6f, \"recall_10_at_100\": %.6f,"
                " \"qps_1_thread\": %.1f, \"qps_all_threads\": %.1f}%s\n",
                r->spec, r->nprobe, (double)r->oversampling, r->code_bytes, r->total_bytes, r->ratio, r->train_s,
                r->add_s, r->r1, r->r10, r->r10_100, r->qps1, r->qpsn, i + 1 < nrows ? "," : "");
    }
    fprintf(f, "]}\n");
    if (fclose(f))
        return vqs_seterr(-errno, "%s", path);
    return 0;
}

/* Makes m dense (ld == d), copying the rows into *own if they are not. */
static int dense(vqs_vecfile *vf, vqs_matrix *m, float **own, const char *path)
{
    if (m->ld == m->d || *own)
        return 0;
    if (!(*own = malloc(sizeof(float) * m->n * m->d)))
        return vqs_seterr(VQS_ENOMEM, "%s: %zu x %zu floats", path, m->n, m->d);
    int rc = vqs_vecfile_read_f32(vf, 0, m->n, *own);
    m->x = *own;
    m->ld = m->d;
    return rc;
}

int vqs_cmd_eval(int argc, char **argv)
{
    const char *base = NULL, *qf = NULL, *gtf = NULL, *metric = "l2", *out = NULL;
    const char *specs[MAXSPEC];
    size_t nspec = 0, threads = 0, train_size = 0, dim = 0, seed = 1, nqmax = 0;
    double nprobes[MAXVAL] = {16}, overs[MAXVAL] = {4};
    size_t nnp = 1, nov = 1;
    int rc = 0;
    static const struct option lo[] = {
        {"base", 1, 0, 'b'},    {"queries", 1, 0, 'q'},  {"gt", 1, 0, 'g'},
        {"metric", 1, 0, 'm'},  {"spec", 1, 0, 's'},     {"nprobe", 1, 0, 'n'},
        {"oversampling", 1, 0, 'O'}, {"threads", 1, 0, 't'}, {"train-size", 1, 0, 'T'},
        {"seed", 1, 0, 'S'},    {"dim", 1, 0, 'd'},      {"out", 1, 0, 'o'},
        {"nq", 1, 0, 'Q'},      {"help", 0, 0, 'h'},     {"clip", 1, 0, 'C'},     {0, 0, 0, 0}};
    int c;
    optind = 1;
    float clip = 0;
    while ((c = getopt_long(argc, argv, "b:q:g:m:s:n:O:t:T:S:d:o:Q:h", lo, NULL)) != -1) {
        switch (c) {
        case 'b': base = optarg; break;
        case 'q': qf = optarg; break;
        case 'g': gtf = optarg; break;
        case 'm': metric = optarg; break;
        case 'o': out = optarg; break;
        case 's':
            if (nspec == MAXSPEC)
                rc = vqs_seterr(VQS_EUSAGE, "at most %d --spec", MAXSPEC);
            else
                specs[nspec++] = optarg;
            break;
        case 'n': rc = parse_list(optarg, nprobes, &nnp, "--nprobe"); break;
        case 'O': rc = parse_list(optarg, overs, &nov, "--oversampling"); break;
        case 't': rc = vqs_cli_parse_size(optarg, &threads, "--threads"); break;
        case 'T': rc = vqs_cli_parse_size(optarg, &train_size, "--train-size"); break;
        case 'S': rc = vqs_cli_parse_size(optarg, &seed, "--seed"); break;
        case 'd': rc = vqs_cli_parse_size(optarg, &dim, "--dim"); break;
        case 'Q': rc = vqs_cli_parse_size(optarg, &nqmax, "--nq"); break;
        case 'C': rc = vqs_cli_parse_clip(optarg, &clip, "--clip"); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (rc)
            return vqs_cli_fail("eval", rc);
    }
    if (optind < argc)
        return vqs_cli_fail("eval", vqs_seterr(VQS_EUSAGE, "unexpected argument '%s'", argv[optind]));
    if (!base || !qf || !nspec) {
        usage(stderr);
        return vqs_cli_fail("eval", vqs_seterr(VQS_EUSAGE, "--base, --queries and --spec are required"));
    }
    vqs_metric m;
    if ((rc = vqs_metric_parse(metric, &m)))
        return vqs_cli_fail("eval", rc);
    int nt = threads ? (int)threads : vqs_default_threads();

    vqs_vecfile *bf = NULL, *qvf = NULL, *gvf = NULL;
    float *bown = NULL, *qown = NULL, *gd = NULL, *rd = NULL;
    int64_t *gt = NULL, *ids = NULL;
    row *rows = NULL;
    size_t nrows = 0;
    vqs_matrix B, Q;
    if ((rc = vqs_cli_open_matrix(base, dim, &bf, &B, &bown)) ||
        (rc = vqs_cli_open_matrix(qf, dim, &qvf, &Q, &qown)))
        goto done;
    if (B.d != Q.d) {
        rc = vqs_seterr(VQS_EDIMMISMATCH, "%s has dimension %zu, %s has %zu", base, B.d, qf, Q.d);
        goto done;
    }
    if (nqmax && Q.n > nqmax)
        Q.n = nqmax;
    size_t d = B.d, nq = Q.n, gk = 100;
    /* the index takes dense rows: fvecs rows carry a header word */
    if ((rc = dense(bf, &B, &bown, base)) || (rc = dense(qvf, &Q, &qown, qf)))
        goto done;
    gt = malloc(sizeof(int64_t) * nq * gk);
    gd = malloc(sizeof(float) * nq * gk);
    ids = malloc(sizeof(int64_t) * nq * 100);
    rd = malloc(sizeof(float) * nq * 100);
    rows = calloc(nspec * MAXVAL * MAXVAL + 1, sizeof *rows);
    if (!gt || !gd || !ids || !rd || !rows) {
        rc = vqs_seterr(VQS_ENOMEM, "eval: %zu queries", nq);
        goto done;
    }
    if (gtf) {
        if ((rc = vqs_vecfile_open(gtf, NULL, &gvf)))
            goto done;
        if (vqs_vecfile_n(gvf) < nq) {
            rc = vqs_seterr(VQS_ESHAPE, "%s: %zu rows for %zu queries", gtf, vqs_vecfile_n(gvf), nq);
            goto done;
        }
        gk = vqs_vecfile_d(gvf) < 100 ? vqs_vecfile_d(gvf) : 100;
        size_t gd_ = vqs_vecfile_d(gvf);
        float *tmp = malloc(sizeof(float) * nq * gd_);
        if (!tmp) {
            rc = vqs_seterr(VQS_ENOMEM, "%s", gtf);
            goto done;
        }
        rc = vqs_vecfile_read_f32(gvf, 0, nq, tmp); /* ivecs ids as floats: exact below 2^24 */
        for (size_t i = 0; !rc && i < nq; i++)
            for (size_t j = 0; j < gk; j++) {
                float v = tmp[i * gd_ + j];
                if (!(v >= 0 && v < (float)B.n)) {
                    rc = vqs_seterr(VQS_ERANGE, "%s: row %zu, column %zu: id %g is not in the base (%zu rows)",
                                    gtf, i, j, (double)v, B.n);
                    break;
                }
                gt[i * gk + j] = (int64_t)v;
            }
        free(tmp);
        if (rc || (rc = vqs_exact_distances(m, &B, &Q, gk, gt, gd)))
            goto done;
        fprintf(stderr, "vqs eval: ground truth from %s (k = %zu)\n", gtf, gk);
    } else {
        fprintf(stderr, "vqs eval: exact ground truth for %zu queries over %zu vectors...\n", nq, B.n);
        vqs_exact_opts eo = {.nthreads = nt};
        if ((rc = vqs_exact_knn(&eo, m, &B, &Q, gk, gt, gd)))
            goto done;
    }
    vqs_knn G = {nq, gk, gt, gd};

    printf("# vqs eval: %s (%zu x %zu), %zu queries, metric %s, %d threads, kernels %s\n", base, B.n, d, nq,
           vqs_metric_name(m), nt, vqs_kernels_active()->name);
    printf("| spec | nprobe | oversampling | code B/vec | total B/vec | compression | train s | add s | "
           "recall@1 | recall@10 | 10-recall@100 | q/s 1 thread | q/s %d threads |\n", nt);
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    fflush(stdout);

    for (size_t si = 0; si < nspec; si++) {
        const char *spec = specs[si];
        if (!strcmp(spec, "exact") || !strcmp(spec, "Flat")) {
            row *r = &rows[nrows++];
            snprintf(r->spec, sizeof r->spec, "exact");
            r->code_bytes = 4.0 * d;
            r->total_bytes = 4.0 * d;
            r->ratio = 1;
            vqs_exact_opts eo = {.nthreads = nt};
            if ((rc = vqs_exact_knn(&eo, m, &B, &Q, 100, ids, NULL)))
                goto done;
            r->r1 = recall_of(m, &B, &Q, &G, ids, rd, 1, 1);
            r->r10 = recall_of(m, &B, &Q, &G, ids, rd, 10, 10);
            r->r10_100 = recall_of(m, &B, &Q, &G, ids, rd, 10, 100);
            if ((rc = time_exact(1, m, &B, &Q, ids, &r->qps1)) || (rc = time_exact(nt, m, &B, &Q, ids, &r->qpsn)))
                goto done;
            print_row(r);
            continue;
        }
        vqs_index_opts io = {.nthreads = nt, .seed = seed, .max_train = train_size, .codec.sq_clip = clip};
        vqs_index *ix = NULL;
        if ((rc = vqs_index_create(spec, d, m, &io, &ix)))
            goto done;
        fprintf(stderr, "vqs eval: %s: training on %zu vectors...\n", spec,
                train_size && train_size < B.n ? train_size : B.n);
        double t0 = vqs_now();
        rc = vqs_index_train(ix, B.n, B.x);
        double t1 = vqs_now();
        if (!rc) {
            fprintf(stderr, "vqs eval: %s: trained in %.2f s; adding %zu vectors...\n", spec, t1 - t0, B.n);
            rc = vqs_index_add(ix, B.n, B.x, NULL);
        }
        double t2 = vqs_now();
        if (rc) {
            vqs_index_free(ix);
            goto done;
        }
        int is_ivf = !strncmp(spec, "IVF", 3);
        int has_refine = strstr(spec, "RFlat") || strstr(spec, "Refine(");
        size_t fixed = 0;
        double per = vqs_index_bytes_per_vector(ix, &fixed);
        for (size_t a = 0; a < (is_ivf ? nnp : 1); a++)
            for (size_t b = 0; b < (has_refine ? nov : 1); b++) {
                row *r = &rows[nrows++];
                snprintf(r->spec, sizeof r->spec, "%s", spec);
                r->nprobe = is_ivf ? (size_t)nprobes[a] : 0;
                r->oversampling = has_refine ? (float)overs[b] : 1.0f;
                r->code_bytes = (double)vqs_index_code_size(ix);
                r->total_bytes = per + (double)fixed / (double)B.n;
                r->ratio = 4.0 * d / r->code_bytes;
                r->train_s = t1 - t0;
                r->add_s = t2 - t1;
                vqs_search_params p = {.nprobe = r->nprobe, .oversampling = r->oversampling,
                                       .rerank = has_refine ? 1 : -1};
                fprintf(stderr, "vqs eval: %s: searching (nprobe %zu, oversampling %g)...\n", spec, r->nprobe,
                        (double)r->oversampling);
                if ((rc = vqs_index_search(ix, &p, nq, Q.x, 100, ids, NULL)))
                    break;
                r->r1 = recall_of(m, &B, &Q, &G, ids, rd, 1, 1);
                r->r10 = recall_of(m, &B, &Q, &G, ids, rd, 10, 10);
                r->r10_100 = recall_of(m, &B, &Q, &G, ids, rd, 10, 100);
                if ((rc = time_search(ix, &p, 1, nq, Q.x, d, ids, &r->qps1)) ||
                    (rc = time_search(ix, &p, nt, nq, Q.x, d, ids, &r->qpsn)))
                    break;
                print_row(r);
            }
        vqs_index_free(ix);
        if (rc)
            goto done;
    }
    if (out && (rc = write_out(out, rows, nrows, base, qf, m, B.n, nq, d, nt)))
        goto done;
    if (out)
        fprintf(stderr, "vqs eval: wrote %s.csv and %s.json\n", out, out);
done:
    vqs_vecfile_close(bf);
    vqs_vecfile_close(qvf);
    vqs_vecfile_close(gvf);
    free(bown);
    free(qown);
    free(gt);
    free(gd);
    free(ids);
    free(rd);
    free(rows);
    return rc ? vqs_cli_fail("eval", rc) : 0;
}
