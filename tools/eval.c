/*
 * eval.c: `vqs eval`, the offline compression-versus-quality tool.
 *
 *   vqs eval --base B (--queries Q | --queries split:N | --queries loo:N)
 *            (--spec S [--spec S2 ...] | --sweep paper|quick|full|FILE)
 *            [--metric l2|ip|cos] [--gt GT.ivecs] [--qrels QRELS.tsv]
 *            [--nprobe 1,8,32] [--oversampling 1,4,10] [--seeds N] [--seed S]
 *            [--symmetric] [--no-timing] [--clip Q] [--train-size N]
 *            [--threads N] [--dim D] [--nq N] [--out PREFIX] [--json FILE]
 *            [--per-query PREFIX] [--describe TEXT] [--name NAME]
 *
 * One row per (spec, nprobe, oversampling): bytes per vector, compression,
 * training and adding time, recall@1/10/100, nDCG@10, MRR@10 (and, with
 * qrels, nDCG@10 and recall@10 over labelled relevance), the codec's SQNR,
 * and queries/s at k = 10 on one thread and on all threads. Every metric is
 * the mean over --seeds runs, each training everything again.
 *
 * Metric definitions (eval_metrics.h has them in full): a returned id is
 * relevant at depth k if it is one of the k true nearest ids or its true
 * distance ties the k-th true distance (relative tolerance 1e-6); duplicates
 * count once.
 *   recall@k   |relevant at depth k among the k results| / k. recall@100 is
 *              true recall at 100 (|top-100 and true top-100| / 100, from a
 *              k = 100 search), not 10-recall@100.
 *   nDCG@10    binary gains: 1 for a result relevant at depth 10, discount
 *              1 / log2(rank + 1), divided by the ideal (ten relevant).
 *   MRR@10     1 / rank of the true nearest neighbour (or a tie with it)
 *              within the 10 results, 0 if absent.
 *   qrels      TREC/BEIR TSV "query-id corpus-id score" (optional header
 *              line), ids are 0-based ROW NUMBERS of the query and base
 *              files; grade > 0 is relevant; nDCG@10 with linear gains (as
 *              trec_eval / MTEB), recall@10 = relevant found / relevant;
 *              queries without a relevant document are left out.
 *   SQNR       10 log10(variance / MSE) of the vectors the index stores
 *              (normalised for cosine) against what their codes
 *              reconstruct (vqs_index_decode: the centroid plus the decoded
 *              residual for IVF), over at most 16,384 base rows, evenly
 *              spaced; the first-stage codec (a refine copy is not counted);
 *              rel_mse = MSE / variance (vqs_codec_error_of).
 *
 * Design decisions (the run itself: eval_run.c; sweeps: eval_grid.c;
 * metrics: eval_metrics.c; files: eval_out.c; progress line: progress.c):
 * - Queries: a file, or drawn from the base by --seed (not per seed: the
 *   spread over seeds is that of training; the data and ground truth are
 *   computed once): split:N removes them from the base; loo:N leaves the
 *   base whole, searches k + 1 and drops the query's own id from results
 *   and ground truth (so a re-scoring first stage keeps
 *   ceil((k + 1) x oversampling) candidates, which "candidates" states).
 *   --gt and --qrels refer to rows of a query file, so they go with one.
 * - Ground truth is exact (vqs_exact_knn, in chunks of queries so a
 *   terminal shows progress) unless --gt gives the ids; their distances are
 *   recomputed so that ties are judged the same way.
 * - Failures of a spec stay in its row (status "error"); the exit status is
 *   1 if any row failed, 2 for bad usage, and the files written after every
 *   row hold whatever was measured before an interruption.
 * - Progress: one updating line with an ETA on a terminal; nothing but
 *   errors, warnings and the final "wrote" line when stderr is not one.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "commands.h"
#include "report.h"
#include "eval_internal.h"
#include "vqs_common.h"
#include "vqs_index.h"
#include "vqs_kernels.h"

#define GT_CHUNK 1024 /* queries per exact search of the ground truth (progress steps) */

/* ---- usage ---------------------------------------------------------------- */

static const vqs_cli_opt opts[] = {
    {"base", 'b', 1, "FILE", NULL, "the vectors indexed (required): .fvecs .ivecs .bvecs .npy\n"
                                   ".jsonl/.ndjson, or raw float32 (.f32/.raw/.bin) with --dim"},
    {"queries", 'q', 1, "FILE|split:N|loo:N", NULL,
     "the queries (required): a file in the same formats; split:N: N base\n"
     "rows drawn with --seed become the queries and leave the base; loo:N:\n"
     "N drawn base rows are queries, each left out of its own results and\n"
     "ground truth (the search asks for k + 1, so re-scoring keeps\n"
     "ceil(11 x oversampling))"},
    {"spec", 's', 1, "S", NULL, "an index spec: exact, SQ8, PCA50%,Flat, IVF256,PQ32x4, SQ4,RFlat,\n"
                                "BIN,Refine(SQfp16), ...; repeat it for more (at most 256); a --spec\n"
                                "or a --sweep is required"},
    {"sweep", 'w', 1, "NAME|FILE", NULL, "a grid of specs (the list below); several --sweep (at most 16)\n"
                                         "and --spec add up"},
    {"metric", 'm', 1, "l2|ip|cos", "l2", "the distance of the indexes and of the ground truth"},
    {"gt", 'g', 1, "FILE", "exact search", "ground-truth ids (ivecs, >= 10 per query; query files only)"},
    {"qrels", 'r', 1, "FILE", NULL,
     "labelled relevance, TREC/BEIR TSV 'query-id corpus-id score' (an\n"
     "optional header line), ids = 0-based ROW NUMBERS of the query and base\n"
     "files: adds qrels nDCG@10 (linear gains, as MTEB) and recall@10\n"
     "(relevant found / relevant); queries without a relevant document are\n"
     "left out (query files only)"},
    {"nprobe", 'n', 1, "LIST", "16", "IVF lists probed (VAMANA specs: the search beam, ef), comma-separated (a row for each)"},
    {"oversampling", 'O', 1, "LIST", "4", "first-stage candidates per result of re-scoring specs,\n"
                                          "comma-separated (a row for each)"},
    {"seeds", 'N', 1, "N", "1", "every training runs N times (seeds S..S+N-1, S = --seed), N <= 64;\n"
                                "rows give the mean and 'spread' the sample std"},
    {"seed", 'S', 1, "S", "1", "the first training seed, and the draw of split:N / loo:N queries"},
    {"symmetric", 'y', 1, NULL, NULL, "queries are encoded and decoded by the codec before searching"},
    {"no-timing", 'x', 1, NULL, NULL, "quality only: one search per setting, q/s null"},
    {"clip", 'c', 1, "Q", "min/max, SQ4's chosen from the data",
     "SQ8/SQ4 ranges at the (1-Q, Q) quantiles, 0.5 < Q <= 1"},
    {"train-size", 'T', 1, "N", "all base rows", "train on a seeded subsample of N base rows"},
    {"threads", 't', 1, "N", "all cores, or VQS_THREADS", "threads of training, adding and the all-threads\n"
                                                         "timing"},
    {"dim", 'd', 1, "D", NULL, "the dimension of a headerless float32 file (.f32, .raw, .bin)"},
    {"nq", 'Q', 1, "N", "all", "the first N queries of the query file"},
    {"out", 'o', 1, "PREFIX", NULL, "PREFIX.json (format vqs-eval/2) and PREFIX.csv, rewritten after\n"
                                    "every row"},
    {"json", 'j', 1, "FILE", NULL, "the JSON results alone, rewritten after every row"},
    {"report", 'R', 1, "FILE.html", NULL, "also the HTML page of `vqs report` (plots, front, table), drawn\n"
                                          "from the results file (needs --out or --json)"},
    {"per-query", 'p', 1, "PREFIX", NULL, "PREFIX.tsv: recall@10, nDCG@10, RR@10 per (spec, setting, seed,\n"
                                          "query)"},
    {"describe", 'D', 1, "TEXT", "size, metric and query source", "dataset.description in the results"},
    {"name", 'a', 1, "NAME", "the base file's stem", "dataset.name in the results (for a generic stem, such as\n"
                                                     "'embeddings', the base file's folder)"},
    {0}};

static void sweeps_help(FILE *f)
{
    fprintf(f, "\nSweeps (--sweep NAME):\n");
    eval_sweep_help(f);
}

const vqs_cli_help vqs_eval_help = {
    .cmd = "eval",
    .usage = "--base FILE --queries FILE|split:N|loo:N\n"
             "(--spec S [--spec S2 ...] | --sweep paper|quick|full|FILE)\n"
             "[--metric l2|ip|cos] [--gt GT.ivecs] [--qrels QRELS.tsv]\n"
             "[--nprobe 1,8,32] [--oversampling 1,4,10] [--seeds N] [--seed S]\n"
             "[--symmetric] [--no-timing] [--clip Q] [--train-size N] [--threads N]\n"
             "[--dim D] [--nq N] [--out PREFIX] [--json FILE] [--report FILE.html]\n"
             "[--per-query PREFIX] [--describe TEXT] [--name NAME]",
    .about = "(With --shards DIR: the shards of vqs build, searched as one index; vqs eval\n"
             "--shards DIR --help.)\n"
             "Builds an index for every spec (exact, SQ8, PCA50%,Flat, IVF256,PQ32x4,\n"
             "SQ4,RFlat, BIN,Refine(SQfp16), ...) and prints one markdown row per\n"
             "(spec, nprobe, oversampling): bytes per vector, compression, training and\n"
             "adding time, recall@1/10/100, nDCG@10, MRR@10, SQNR and queries/s at k = 10.\n"
             "'exact' is exact search (float32, the reference row).\n"
             "Protocol: recall@1/10, nDCG@10 and MRR@10 come from the k = 10 search that is\n"
             "  timed (best of 3 runs, which must return identical results); a re-scoring\n"
             "  spec keeps exactly ceil(10 x oversampling) first-stage candidates (the\n"
             "  'candidates' column). recall@100 is |top-100 and true top-100| / 100 from a\n"
             "  separate k = 100 search.\n"
             "Definitions: a result is relevant at depth k if it is one of the k true nearest\n"
             "  neighbours or ties the k-th true distance (rel. 1e-6); duplicates count once.\n"
             "  recall@k = relevant results / k; nDCG@10 = sum of 1/log2(rank+1) over relevant\n"
             "  results, over its ideal value (binary gains); MRR@10 = 1/rank of the true\n"
             "  nearest neighbour (or a tie with it) within 10, else 0. SQNR (dB) =\n"
             "  10 log10(variance / MSE) of the stored vectors (unit vectors for cosine)\n"
             "  against their reconstruction (centroid + residual for IVF), on at most\n"
             "  16384 base rows; the first-stage codec only.\n",
    .opts = opts,
    .more = sweeps_help,
    .notes = "Exit status: 0 when every row is ok, 1 when any spec failed (its row says why;\n"
             "  the other rows are measured and written), 2 for bad usage.\n",
    .example = "vqs eval --base base.fvecs --queries queries.fvecs --metric cos --sweep quick \\\n"
               "  --out results --report report.html\n",
};

/* ---- data ----------------------------------------------------------------- */

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

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* nq distinct rows of n drawn with seed, ascending */
static int draw_rows(size_t n, size_t nq, uint64_t seed, size_t *rows)
{
    size_t *perm = malloc(sizeof(size_t) * n);
    if (!perm)
        return vqs_seterr(VQS_ENOMEM, "eval: drawing %zu of %zu rows", nq, n);
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    vqs_rng r;
    vqs_rng_seed(&r, seed ^ 0x9e3779b97f4a7c15ull);
    for (size_t i = 0; i < nq; i++) {
        size_t j = i + (size_t)(vqs_rng_uniform(&r) * (double)(n - i));
        size_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
        rows[i] = perm[i];
    }
    free(perm);
    qsort(rows, nq, sizeof *rows, cmp_size);
    return 0;
}

/* exact ground truth at depth C->gk, in chunks of queries (progress) */
static int exact_gt(eval_ctx *C)
{
    size_t kk = C->gk + (C->self ? 1 : 0), nq = C->nq;
    int64_t *ti = C->self ? malloc(sizeof(int64_t) * GT_CHUNK * kk) : NULL;
    float *td = C->self ? malloc(sizeof(float) * GT_CHUNK * kk) : NULL;
    if (C->self && (!ti || !td)) {
        free(ti);
        free(td);
        return vqs_seterr(VQS_ENOMEM, "eval: ground truth");
    }
    vqs_progress_start(&C->prog, (nq + GT_CHUNK - 1) / GT_CHUNK, 0);
    vqs_exact_opts eo = {.nthreads = C->nt};
    int rc = 0;
    for (size_t q0 = 0; q0 < nq && !rc; q0 += GT_CHUNK) {
        size_t m = nq - q0 < GT_CHUNK ? nq - q0 : GT_CHUNK;
        vqs_progress_update(&C->prog, q0 / GT_CHUNK, q0 == 0, "exact ground truth: %zu queries over %zu vectors",
                            nq, C->n);
        vqs_matrix Qc = {C->Q.x + q0 * C->d, m, C->d, C->d};
        if (C->self) {
            if (!(rc = vqs_exact_knn(&eo, C->m, &C->B, &Qc, kk, ti, td)))
                eval_drop_self(C->self + q0, m, ti, td, kk, C->gt + q0 * C->gk, C->gd + q0 * C->gk, C->gk);
        } else {
            rc = vqs_exact_knn(&eo, C->m, &C->B, &Qc, kk, C->gt + q0 * C->gk, C->gd + q0 * C->gk);
        }
    }
    vqs_progress_clear(&C->prog);
    free(ti);
    free(td);
    return rc;
}

/* ground-truth ids from a file (trusted for ids; distances recomputed so
 * ties are judged as for computed ground truth) */
static int file_gt(eval_ctx *C, const char *path)
{
    vqs_vecfile *vf = NULL;
    int rc = vqs_vecfile_open(path, NULL, &vf);
    if (rc)
        return rc;
    size_t cols = vqs_vecfile_d(vf);
    if (vqs_vecfile_n(vf) < C->nq || cols < EVAL_K) {
        rc = vqs_seterr(VQS_ESHAPE, "%s: %zu rows of %zu ids; %zu queries need at least %d ids each", path,
                        vqs_vecfile_n(vf), cols, C->nq, EVAL_K);
        vqs_vecfile_close(vf);
        return rc;
    }
    C->gk = cols < EVAL_DEEP ? cols : EVAL_DEEP;
    float *tmp = malloc(sizeof(float) * C->nq * cols);
    if (!tmp) {
        vqs_vecfile_close(vf);
        return vqs_seterr(VQS_ENOMEM, "%s", path);
    }
    rc = vqs_vecfile_read_f32(vf, 0, C->nq, tmp); /* ivecs ids as floats: exact below 2^24 */
    for (size_t i = 0; !rc && i < C->nq; i++)
        for (size_t j = 0; j < C->gk && !rc; j++) {
            float v = tmp[i * cols + j];
            if (!(v >= 0 && v < (float)C->n))
                rc = vqs_seterr(VQS_ERANGE, "%s: row %zu, column %zu: id %g is not in the base (%zu rows)", path,
                                i, j, (double)v, C->n);
            else
                C->gt[i * C->gk + j] = (int64_t)v;
        }
    free(tmp);
    vqs_vecfile_close(vf);
    if (!rc)
        rc = vqs_exact_distances(C->m, &C->B, &C->Q, C->gk, C->gt, C->gd);
    return rc;
}

/* ---- the command ---------------------------------------------------------------- */

static const char *generic_stems[] = {"base", "embeddings", "vectors", "data", "corpus", "train", NULL};

/* dataset name from the base path: its stem, or its folder for a generic stem */
static void dataset_name(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/'), *file = slash ? slash + 1 : path;
    size_t stem = strcspn(file, ".");
    for (const char **g = generic_stems; *g; g++)
        if (strlen(*g) == stem && !strncmp(file, *g, stem) && slash) {
            const char *p = slash;
            while (p > path && p[-1] != '/')
                p--;
            if (slash > p) {
                snprintf(out, cap, "%.*s", (int)(slash - p), p);
                return;
            }
        }
    snprintf(out, cap, "%.*s", (int)stem, file);
}

int vqs_cmd_eval(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) /* the shards of vqs build: a mode of its own (eval_shards.c) */
        if (!strcmp(argv[i], "--shards") || !strncmp(argv[i], "--shards=", 9))
            return vqs_eval_shards(argc, argv);
    const char *base = NULL, *qf = NULL, *gtf = NULL, *metric = "l2", *out = NULL, *jsonf = NULL,
               *perq = NULL, *qrelsf = NULL, *describe = NULL, *name = NULL, *reportf = NULL;
    const char *specs[256], *sweeps[16];
    size_t nspec = 0, nsweep = 0, threads = 0, train_size = 0, dim = 0, seed = 1, nseeds = 1, nqmax = 0;
    int timing = 1, symmetric = 0, rc = 0;
    float clip = 0;
    eval_ctx C = {.nnp_def = 1, .nos_def = 1};
    C.np_def[0] = 16;
    C.os_def[0] = 4;
    int c;
    optind = 1;
    while ((c = vqs_cli_getopt(argc, argv, &vqs_eval_help)) != -1) {
        switch (c) {
        case 'b': base = optarg; break;
        case 'q': qf = optarg; break;
        case 'g': gtf = optarg; break;
        case 'm': metric = optarg; break;
        case 'o': out = optarg; break;
        case 'R': reportf = optarg; break;
        case 'j': jsonf = optarg; break;
        case 'p': perq = optarg; break;
        case 'r': qrelsf = optarg; break;
        case 'D': describe = optarg; break;
        case 'a': name = optarg; break;
        case 'x': timing = 0; break;
        case 'y': symmetric = 1; break;
        case 's':
            if (nspec == sizeof specs / sizeof specs[0])
                rc = vqs_seterr(VQS_EUSAGE, "at most %zu --spec (use --sweep FILE)", sizeof specs / sizeof specs[0]);
            else
                specs[nspec++] = optarg;
            break;
        case 'w':
            if (nsweep == sizeof sweeps / sizeof sweeps[0])
                rc = vqs_seterr(VQS_EUSAGE, "at most %zu --sweep", sizeof sweeps / sizeof sweeps[0]);
            else
                sweeps[nsweep++] = optarg;
            break;
        case 'n': rc = eval_parse_list(optarg, C.np_def, &C.nnp_def, "--nprobe"); break;
        case 'O': rc = eval_parse_list(optarg, C.os_def, &C.nos_def, "--oversampling"); break;
        case 't': rc = vqs_cli_parse_positive(optarg, &threads, "--threads"); break;
        case 'T': rc = vqs_cli_parse_size(optarg, &train_size, "--train-size"); break;
        case 'S': rc = vqs_cli_parse_size(optarg, &seed, "--seed"); break;
        case 'N': rc = vqs_cli_parse_positive(optarg, &nseeds, "--seeds"); break;
        case 'd': rc = vqs_cli_parse_size(optarg, &dim, "--dim"); break;
        case 'Q': rc = vqs_cli_parse_positive(optarg, &nqmax, "--nq"); break;
        case 'c': rc = vqs_cli_parse_clip(optarg, &clip, "--clip"); break;
        case 'h': vqs_cli_help_print(stdout, &vqs_eval_help); return 0;
        default: return vqs_cli_bad_option(&vqs_eval_help);
        }
        if (rc)
            return vqs_cli_fail("eval", rc);
    }
    if (optind < argc)
        return vqs_cli_fail("eval", vqs_seterr(VQS_EUSAGE, "unexpected argument '%s'", argv[optind]));
    if (reportf && !out && !jsonf)
        return vqs_cli_fail("eval", vqs_seterr(VQS_EUSAGE, "--report needs --out PREFIX or --json FILE: the page is "
                                                          "drawn from the results file"));
    if (!base || !qf || !(nspec || nsweep)) {
        vqs_cli_usage(stderr, &vqs_eval_help);
        return vqs_cli_fail("eval", vqs_seterr(VQS_EUSAGE, "--base, --queries and --spec or --sweep are required"));
    }
    if (nseeds > 64)
        return vqs_cli_fail("eval", vqs_seterr(VQS_EUSAGE, "--seeds: at most 64"));
    int mode = 0; /* 0 file, 1 split, 2 loo */
    size_t qn = 0;
    if (!strncmp(qf, "split:", 6) || !strncmp(qf, "loo:", 4)) {
        mode = qf[0] == 's' ? 1 : 2;
        if ((rc = vqs_cli_parse_positive(qf + (mode == 1 ? 6 : 4), &qn, "--queries split:N / loo:N")))
            return vqs_cli_fail("eval", rc);
        if (gtf || qrelsf || nqmax)
            return vqs_cli_fail("eval", vqs_seterr(VQS_EUSAGE, "--gt, --qrels and --nq go with a query file, "
                                                                "not with --queries %s", qf));
    }
    if ((rc = vqs_metric_parse(metric, &C.m)))
        return vqs_cli_fail("eval", rc);
    C.nt = threads ? (int)threads : vqs_default_threads();
    C.train_size = train_size;
    C.seed0 = seed;
    C.nseeds = nseeds;
    C.timing = timing;
    C.symmetric = symmetric;
    C.clip = (float)clip;

    vqs_vecfile *bf = NULL, *qvf = NULL;
    float *bown = NULL, *qown = NULL, *bsplit = NULL, *qsplit = NULL;
    eval_entries E = {0};
    eval_out O = {.prefix = out, .json = jsonf};
    char *cmdline = NULL;
    int failed = 0;
    vqs_matrix B0, Q0;
    if ((rc = vqs_cli_open_matrix(base, dim, &bf, &B0, &bown)) || (rc = dense(bf, &B0, &bown, base)))
        goto done;
    size_t d = B0.d;
    C.d = d;
    if (mode == 0) {
        if ((rc = vqs_cli_open_matrix(qf, dim, &qvf, &Q0, &qown)))
            goto done;
        if (Q0.d != d) {
            rc = vqs_seterr(VQS_EDIMMISMATCH, "%s has dimension %zu, %s has %zu", base, d, qf, Q0.d);
            goto done;
        }
        if (nqmax && Q0.n > nqmax)
            Q0.n = nqmax;
        if ((rc = dense(qvf, &Q0, &qown, qf)))
            goto done;
        C.B = B0;
        C.Q = Q0;
        C.nq = Q0.n;
        if (!(C.qrow = malloc(sizeof(size_t) * (C.nq ? C.nq : 1)))) {
            rc = vqs_seterr(VQS_ENOMEM, "eval: %zu queries", C.nq);
            goto done;
        }
        for (size_t i = 0; i < C.nq; i++)
            C.qrow[i] = i;
    } else {
        size_t keep = mode == 1 ? EVAL_K : EVAL_K + 1;
        if (qn > B0.n || B0.n - (mode == 1 ? qn : 0) < keep) {
            rc = vqs_seterr(VQS_EUSAGE, "--queries %s: %s has %zu rows; the base must keep at least %zu", qf, base,
                            B0.n, keep);
            goto done;
        }
        C.nq = qn;
        C.qrow = malloc(sizeof(size_t) * qn);
        qsplit = malloc(sizeof(float) * qn * d);
        if (!C.qrow || !qsplit || (rc = draw_rows(B0.n, qn, seed, C.qrow))) {
            rc = rc ? rc : vqs_seterr(VQS_ENOMEM, "eval: %zu queries", qn);
            goto done;
        }
        for (size_t i = 0; i < qn; i++)
            memcpy(qsplit + i * d, B0.x + C.qrow[i] * d, sizeof(float) * d);
        C.Q = (vqs_matrix){qsplit, qn, d, d};
        if (mode == 1) {
            size_t nb = B0.n - qn;
            if (!(bsplit = malloc(sizeof(float) * nb * d))) {
                rc = vqs_seterr(VQS_ENOMEM, "eval: %zu x %zu base", nb, d);
                goto done;
            }
            for (size_t i = 0, j = 0, o = 0; i < B0.n; i++) {
                if (j < qn && C.qrow[j] == i) {
                    j++;
                    continue;
                }
                memcpy(bsplit + o++ * d, B0.x + i * d, sizeof(float) * d);
            }
            C.B = (vqs_matrix){bsplit, nb, d, d};
        } else {
            C.B = B0;
            if (!(C.self = malloc(sizeof(int64_t) * qn))) {
                rc = vqs_seterr(VQS_ENOMEM, "eval: %zu queries", qn);
                goto done;
            }
            for (size_t i = 0; i < qn; i++)
                C.self[i] = (int64_t)C.qrow[i];
        }
    }
    C.n = C.B.n;
    if (C.nq == 0) {
        rc = vqs_seterr(VQS_EEMPTY, "%s: no queries", qf);
        goto done;
    }
    if (C.n < EVAL_K + (C.self ? 1u : 0u)) {
        rc = vqs_seterr(VQS_EUSAGE, "%s: %zu rows; k = %d needs at least %d", base, C.n, EVAL_K,
                        EVAL_K + (C.self ? 1 : 0));
        goto done;
    }
    /* the specs */
    for (size_t i = 0; i < nspec && !rc; i++)
        rc = eval_entries_add(&E, specs[i]);
    for (size_t i = 0; i < nsweep && !rc; i++)
        rc = eval_sweep_add(&E, sweeps[i], d);
    if (rc)
        goto done;
    /* buffers */
    size_t nq = C.nq;
    C.gk = C.n - (C.self ? 1 : 0) < EVAL_DEEP ? C.n - (C.self ? 1 : 0) : EVAL_DEEP;
    C.gt = malloc(sizeof(int64_t) * nq * EVAL_DEEP);
    C.gd = malloc(sizeof(float) * nq * EVAL_DEEP);
    C.ids = malloc(sizeof(int64_t) * nq * EVAL_DEEP);
    C.ids10 = malloc(sizeof(int64_t) * nq * EVAL_K);
    C.raw = malloc(sizeof(int64_t) * nq * (EVAL_DEEP + 1));
    C.rd = malloc(sizeof(float) * nq * EVAL_DEEP);
    C.pq = malloc(sizeof(double) * nq * 5);
    if (!C.gt || !C.gd || !C.ids || !C.ids10 || !C.raw || !C.rd || !C.pq) {
        rc = vqs_seterr(VQS_ENOMEM, "eval: %zu queries", nq);
        goto done;
    }
    if (gtf)
        rc = file_gt(&C, gtf);
    else
        rc = exact_gt(&C);
    if (rc)
        goto done;
    if (qrelsf && (rc = vqs_qrels_read(qrelsf, vqs_vecfile_n(qvf), nq, C.n, &C.qrels)))
        goto done;
    if (perq) {
        char *p = NULL;
        if (asprintf(&p, "%s.tsv", perq) < 0) {
            rc = vqs_seterr(VQS_ENOMEM, "%s", perq);
            goto done;
        }
        C.perq = fopen(p, "w");
        if (!C.perq)
            rc = vqs_seterr(-errno, "%s", p);
        free(p);
        if (rc)
            goto done;
        fprintf(C.perq, "spec\tnprobe\toversampling\tseed\tquery\trecall_at_10\tndcg_at_10\trr_at_10%s\n",
                C.qrels ? "\tqrels_ndcg_at_10\tqrels_recall_at_10" : "");
    }

    /* the document */
    char dname[256], desc[512], created[32];
    if (name)
        snprintf(dname, sizeof dname, "%s", name);
    else
        dataset_name(base, dname, sizeof dname);
    if (describe)
        snprintf(desc, sizeof desc, "%s", describe);
    else
        snprintf(desc, sizeof desc, "%zu x %zu, %s, %zu queries (%s)", C.n, d, vqs_metric_name(C.m), nq,
                 mode == 0 ? qf : mode == 1 ? "split from the base" : "leave-one-out from the base");
    time_t now = time(NULL);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    if (!(cmdline = eval_command_line(argc, argv)) || !(O.root = json_object())) {
        rc = vqs_seterr(VQS_ENOMEM, "eval: output");
        goto done;
    }
    json_t *ds = json_object();
    eval_json_set(O.root, "format", json_string("vqs-eval/2"));
    /* argv[0] is "eval" (the subcommand): the command is "vqs eval ..." */
    char *full = NULL;
    if (asprintf(&full, "vqs %s", cmdline) < 0) {
        rc = vqs_seterr(VQS_ENOMEM, "eval: output");
        goto done;
    }
    eval_json_set(O.root, "command", json_string(full));
    free(full);
    eval_json_set(O.root, "created", json_string(created));
    eval_json_set(ds, "name", json_string(dname));
    eval_json_set(ds, "base", json_string(base));
    eval_json_set(ds, "queries", json_string(qf));
    eval_json_set(ds, "n", json_integer((json_int_t)C.n));
    eval_json_set(ds, "nq", json_integer((json_int_t)nq));
    eval_json_set(ds, "d", json_integer((json_int_t)d));
    eval_json_set(ds, "metric", json_string(vqs_metric_name(C.m)));
    eval_json_set(ds, "ground_truth", json_string(gtf ? gtf : "exact"));
    eval_json_set(ds, "qrels", qrelsf ? json_string(qrelsf) : json_null());
    eval_json_set(ds, "description", json_string(desc));
    eval_json_set(O.root, "dataset", ds);
    eval_json_set(O.root, "k", json_integer(EVAL_K));
    eval_json_set(O.root, "threads", json_integer(C.nt));
    eval_json_set(O.root, "simd", json_string(vqs_kernels_active()->name));
    eval_json_set(O.root, "seeds", json_integer((json_int_t)nseeds));
    eval_json_set(O.root, "seed", json_integer((json_int_t)seed));
    eval_json_set(O.root, "symmetric", json_boolean(symmetric));
    eval_json_set(O.root, "timing", json_boolean(timing));
    eval_json_set(O.root, "rows", json_array());
    if (!json_string_value(json_object_get(O.root, "command")) || !json_string_value(json_object_get(ds, "base"))) {
        rc = vqs_seterr(VQS_EINVAL, "eval: a path or the command line is not valid UTF-8");
        goto done;
    }
    if ((rc = eval_out_write(&O)))
        goto done;

    eval_md_header(stdout, O.root, C.qrels != NULL);
    C.nunits = E.n * nseeds;
    vqs_progress_start(&C.prog, C.nunits, 0);
    for (size_t i = 0; i < E.n && !rc; i++)
        rc = eval_run_entry(&C, &O, &E.v[i], &failed);
    vqs_progress_clear(&C.prog);
    if (!rc && out)
        fprintf(stderr, "vqs eval: wrote %s.json and %s.csv\n", out, out);
    if (!rc && jsonf)
        fprintf(stderr, "vqs eval: wrote %s\n", jsonf);
    if (!rc && reportf) {
        /* the page is drawn from the results file just written, so it shows
         * exactly what the JSON holds (error rows included) */
        char *jp = NULL;
        if (!jsonf && asprintf(&jp, "%s.json", out) < 0)
            rc = vqs_seterr(VQS_ENOMEM, "eval: report");
        else if (!(rc = vqs_report_write(jsonf ? jsonf : jp, reportf, NULL)))
            fprintf(stderr, "vqs eval: wrote %s\n", reportf);
        free(jp);
    }
done:
    vqs_vecfile_close(bf);
    vqs_vecfile_close(qvf);
    free(bown);
    free(qown);
    free(bsplit);
    free(qsplit);
    free(C.qrow);
    free(C.self);
    free(C.gt);
    free(C.gd);
    free(C.ids);
    free(C.ids10);
    free(C.raw);
    free(C.rd);
    free(C.pq);
    vqs_qrels_free(C.qrels);
    for (size_t i = 0; i < C.ndonors; i++)
        vqs_codec_free(C.donors[i].codec);
    if (C.perq)
        fclose(C.perq);
    json_decref(O.root);
    free(cmdline);
    eval_entries_free(&E);
    if (rc)
        return vqs_cli_fail("eval", rc);
    return failed ? 1 : 0;
}
