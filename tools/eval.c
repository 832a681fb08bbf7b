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
 * Design decisions:
 * - The measurement protocol: recall@1, recall@10, nDCG@10 and MRR@10 come
 *   from the k = 10 search that is timed (best of 3 repetitions, on 1 thread
 *   and on all threads), and the results of every repetition must be
 *   identical (searches are deterministic; a difference is reported on
 *   stderr). recall@100 comes from a separate k = 100 search. So a
 *   re-scoring spec's recall@10 is that of exactly ceil(10 x oversampling)
 *   first-stage candidates, which the row states ("candidates"); the former
 *   eval took recall@10 from a k = 100 search, i.e. from 100 x oversampling
 *   candidates (0.9998 instead of 0.792 for SQ4,RFlat at oversampling 1).
 * - Shared training: specs with the same transforms (PCA384,SQ8,
 *   PCA384,Flat, ...) train them once. After each training the index's
 *   codec is copied into a small cache keyed by the IVF token and the seed;
 *   a later index of the same key trains with vqs_index_train_from, which
 *   copies the longest matching prefix of stages (the whole codec for
 *   X and X,RFlat) bit for bit. Indexes train on the same base rows, the
 *   same seeded subsample and metric, so the result is the index a full
 *   training gives (tests/index checks it). The row's train_s is the time
 *   actually spent, and "train_reused" names the copied stages. Rejected:
 *   transforming the data once and evaluating the quantizer alone on it
 *   (the numbers would depend on eval re-implementing the codec's query
 *   path for every metric, which the PCA/IP work is changing).
 * - Failures stay local: a spec that cannot be created or trained becomes
 *   a row with status "error" and its message; the others run, the files
 *   are rewritten after every row, and the exit status is 1 if any row
 *   failed.
 * - Queries: a file, or drawn from the base by --seed (not per seed: the
 *   spread over seeds is that of training): split:N removes them from the
 *   base; loo:N leaves the base whole, searches k + 1 and drops the query's
 *   own id from results and ground truth (so a re-scoring first stage keeps
 *   ceil((k + 1) x oversampling) candidates, which "candidates" states).
 * - --symmetric: queries are encoded and decoded by the index's codec
 *   (vqs_index_encode / vqs_index_decode) before the search, as in
 *   pipelines that store both sides compressed; ground truth and metrics
 *   use the original queries.
 * - nprobe varies only for IVF specs and oversampling only for specs with a
 *   refine stage; other specs get one row, not a grid of identical rows.
 * - Progress: one updating line with an ETA on a terminal (progress.c);
 *   nothing but errors and the final "wrote" line when stderr is not one.
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
#include "eval_internal.h"
#include "eval_metrics.h"
#include "progress.h"
#include "vqs_common.h"
#include "vqs_index.h"
#include "vqs_kernels.h"

#define GT_CHUNK 1024      /* queries per exact search of the ground truth (progress steps) */
#define SQNR_ROWS 16384    /* base rows the reconstruction error is measured on */
#define TIME_REPS 3        /* timed repetitions of a search */
#define TIME_BUDGET 60.0   /* seconds: fewer repetitions once one setting has spent this */
#define NDONORS 16         /* trained codecs kept for reuse */

/* the averaged fields of a row, in output order */
enum { M_R1, M_R10, M_R100, M_NDCG, M_MRR, M_QNDCG, M_QREC, M_SQNR, M_RELMSE, M_QPS1, M_QPSN,
       M_TRAIN, M_ADD, NMET };
static const char *const met_name[NMET] = {
    "recall_at_1", "recall_at_10", "recall_at_100", "ndcg_at_10", "mrr_at_10", "qrels_ndcg_at_10",
    "qrels_recall_at_10", "sqnr_db", "rel_mse", "qps_1_thread", "qps_all_threads", "train_s", "add_s"};

typedef struct donor {
    char key[64];     /* IVF token and seed */
    vqs_codec *codec; /* owned copy */
} donor;

typedef struct eval_ctx {
    /* options */
    vqs_metric m;
    int nt;
    size_t train_size, nseeds;
    uint64_t seed0;
    int timing, symmetric;
    float clip;
    double np_def[EVAL_MAXVAL], os_def[EVAL_MAXVAL];
    size_t nnp_def, nos_def;
    /* data: dense base and queries */
    vqs_matrix B, Q;
    size_t n, nq, d;
    size_t *qrow;    /* nq: each query's row in its file (the base for split/loo) */
    int64_t *self;   /* loo: each query's own base id; else NULL */
    size_t gk;       /* ground-truth depth, <= EVAL_DEEP */
    int64_t *gt;     /* nq * gk */
    float *gd;       /* nq * gk, true distances */
    vqs_qrels *qrels;
    /* scratch */
    int64_t *ids, *ids10, *raw; /* nq * EVAL_DEEP, nq * EVAL_K, nq * (EVAL_DEEP + 1) */
    float *rd;                  /* nq * EVAL_DEEP */
    double *pq;                 /* nq * 5 per-query values */
    donor donors[NDONORS];
    size_t ndonors, donor_next;
    FILE *perq;
    vqs_progress prog;
    size_t units;               /* (spec, seed) runs finished */
    size_t nunits;
} eval_ctx;

/* ---- usage ---------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vqs eval --base FILE --queries FILE|split:N|loo:N\n"
            "                (--spec S [--spec S2 ...] | --sweep paper|quick|full|FILE)\n"
            "                [--metric l2|ip|cos] [--gt GT.ivecs] [--qrels QRELS.tsv]\n"
            "                [--nprobe 1,8,32] [--oversampling 1,4,10] [--seeds N] [--seed S]\n"
            "                [--symmetric] [--no-timing] [--clip Q] [--train-size N] [--threads N]\n"
            "                [--dim D] [--nq N] [--out PREFIX] [--json FILE] [--per-query PREFIX]\n"
            "                [--describe TEXT] [--name NAME]\n"
            "  Builds an index for every spec (exact, SQ8, PCA50%%,Flat, IVF256,PQ32x4,\n"
            "  SQ4,RFlat, BIN,Refine(SQfp16), ...) and prints one markdown row per\n"
            "  (spec, nprobe, oversampling): bytes per vector, compression, training and\n"
            "  adding time, recall@1/10/100, nDCG@10, MRR@10, SQNR and queries/s at k = 10.\n"
            "  'exact' is exact search (float32, the reference row).\n"
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
            "  16384 base rows; the first-stage codec only.\n"
            "Options:\n"
            "  --queries split:N  N base rows drawn with --seed become the queries and leave\n"
            "                     the base; loo:N: N drawn base rows are queries, each left\n"
            "                     out of its own results and ground truth (the search asks\n"
            "                     for k + 1, so re-scoring keeps ceil(11 x oversampling))\n"
            "  --gt FILE          ground-truth ids (ivecs, >= 10 per query; query files only)\n"
            "  --qrels FILE       labelled relevance, TREC/BEIR TSV 'query-id corpus-id score'\n"
            "                     (an optional header line), ids = 0-based ROW NUMBERS of the\n"
            "                     query and base files: adds qrels nDCG@10 (linear gains, as\n"
            "                     MTEB) and recall@10 (relevant found / relevant); queries\n"
            "                     without a relevant document are left out (query files only)\n"
            "  --sweep NAME       a grid of specs (several --sweep and --spec add up):\n");
    eval_sweep_help(f);
    fprintf(f,
            "  --nprobe L, --oversampling L  settings of IVF and re-scoring specs (16 and 4)\n"
            "  --seeds N          every training runs N times (seeds S..S+N-1, S = --seed, 1);\n"
            "                     rows give the mean and 'spread' the sample std\n"
            "  --symmetric        queries are encoded and decoded by the codec before searching\n"
            "  --no-timing        quality only: one search per setting, q/s null\n"
            "  --clip Q           SQ8/SQ4 ranges at the (1-Q, Q) quantiles, 0.5 < Q <= 1\n"
            "  --train-size N     train on a seeded subsample of N base rows\n"
            "  --nq N             the first N queries of the query file\n"
            "  --out PREFIX       PREFIX.json (format vqs-eval/2) and PREFIX.csv, rewritten\n"
            "                     after every row; --json FILE the JSON alone\n"
            "  --per-query PREFIX PREFIX.tsv: recall@10, nDCG@10, RR@10 per (spec, setting,\n"
            "                     seed, query)\n"
            "  --describe TEXT    dataset.description; --name NAME dataset.name\n"
            "Exit status: 0 when every row is ok, 1 when any spec failed (its row says why;\n"
            "  the other rows are measured and written), 2 for bad usage.\n");
}

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

/* Copies ids (and dist) of nq rows of kk columns into k columns, leaving
 * out each query's own id (self[q]); if it is absent, the last column
 * goes. */
static void drop_self(const int64_t *self, size_t nq, const int64_t *in, const float *din, size_t kk,
                      int64_t *out, float *dout, size_t k)
{
    for (size_t q = 0; q < nq; q++) {
        size_t o = 0;
        for (size_t j = 0; j < kk && o < k; j++) {
            if (in[q * kk + j] == self[q])
                continue;
            out[q * k + o] = in[q * kk + j];
            if (dout)
                dout[q * k + o] = din[q * kk + j];
            o++;
        }
    }
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
                drop_self(C->self + q0, m, ti, td, kk, C->gt + q0 * C->gk, C->gd + q0 * C->gk, C->gk);
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

/* ---- searching and measuring -------------------------------------------- */

typedef struct target {
    const vqs_index *ix;   /* NULL: exact search */
    vqs_search_params p;
    const float *q;        /* the queries as searched: nq x d, dense */
} target;

/* k results per query into out (nq * k); loo: k + 1, the query's own id dropped */
static int search(eval_ctx *C, const target *T, int nthreads, size_t k, int64_t *out)
{
    size_t kk = C->self ? k + 1 : k;
    int64_t *dst = C->self ? C->raw : out;
    int rc;
    if (T->ix) {
        vqs_search_params p = T->p;
        p.nthreads = nthreads;
        rc = vqs_index_search(T->ix, &p, C->nq, T->q, kk, dst, NULL);
    } else {
        vqs_exact_opts eo = {.nthreads = nthreads};
        vqs_matrix Q = {T->q, C->nq, C->d, C->d};
        rc = vqs_exact_knn(&eo, C->m, &C->B, &Q, kk, dst, NULL);
    }
    if (!rc && C->self)
        drop_self(C->self, C->nq, C->raw, NULL, kk, out, NULL, k);
    return rc;
}

/* queries/s of a k = EVAL_K search on nthreads: best of TIME_REPS runs.
 * The first run writes ref when first is set; every run must equal ref. */
static int timed(eval_ctx *C, const target *T, int nthreads, int first, int64_t *ref, double *qps, int *differs)
{
    double best = INFINITY, spent = 0;
    size_t len = C->nq * EVAL_K;
    for (int rep = 0; rep < TIME_REPS && (rep == 0 || spent < TIME_BUDGET); rep++) {
        int64_t *out = first && rep == 0 ? ref : C->ids;
        double t0 = vqs_now();
        int rc = search(C, T, nthreads, EVAL_K, out);
        double t = vqs_now() - t0;
        if (rc)
            return rc;
        if (out != ref && memcmp(out, ref, sizeof(int64_t) * len))
            *differs = 1;
        spent += t;
        if (t < best)
            best = t;
    }
    *qps = (double)C->nq / best;
    return 0;
}

/* loo: a result that is the query itself counts as missing. search()
 * never returns one; this guard makes a regression show in the metrics,
 * where the tie rule would otherwise count the query (distance 0, better
 * than any true neighbour) as found. */
static void mask_self(const eval_ctx *C, int64_t *ids, size_t k)
{
    for (size_t q = 0; C->self && q < C->nq; q++)
        for (size_t j = 0; j < k; j++)
            if (ids[q * k + j] == C->self[q])
                ids[q * k + j] = -1;
}

/* the metrics of one setting into v (NMET; sqnr, rel_mse, train and add
 * left alone), per-query values into C->pq */
static int measure(eval_ctx *C, const target *T, double *v, int *differs)
{
    size_t nq = C->nq, gk = C->gk;
    int64_t *r = C->ids10;
    int rc;
    if (C->timing) {
        if ((rc = timed(C, T, 1, 1, r, &v[M_QPS1], differs)))
            return rc;
        if (C->nt > 1)
            rc = timed(C, T, C->nt, 0, r, &v[M_QPSN], differs);
        else
            v[M_QPSN] = v[M_QPS1];
    } else {
        rc = search(C, T, C->nt, EVAL_K, r);
        v[M_QPS1] = v[M_QPSN] = NAN;
    }
    if (rc)
        return rc;
    mask_self(C, r, EVAL_K);
    if ((rc = vqs_exact_distances(C->m, &C->B, &C->Q, EVAL_K, r, C->rd)))
        return rc;
    double s1 = 0, s10 = 0, sn = 0, sm = 0, sqn = 0, sqr = 0;
    size_t nqr = 0;
    for (size_t q = 0; q < nq; q++) {
        const int64_t *g = C->gt + q * gk, *res = r + q * EVAL_K;
        const float *gd = C->gd + q * gk, *rd = C->rd + q * EVAL_K;
        double *pq = C->pq + q * 5;
        s1 += vqs_eval_recall(C->m, g, gd, 1, res, rd, 1);
        s10 += pq[0] = vqs_eval_recall(C->m, g, gd, EVAL_K, res, rd, EVAL_K);
        sn += pq[1] = vqs_eval_ndcg(C->m, g, gd, gk, res, rd, EVAL_K);
        sm += pq[2] = vqs_eval_rr(C->m, g, gd, res, rd, EVAL_K);
        pq[3] = pq[4] = NAN;
        if (C->qrels) {
            pq[3] = vqs_eval_qrels_ndcg(C->qrels, q, res, EVAL_K);
            pq[4] = vqs_eval_qrels_recall(C->qrels, q, res, EVAL_K);
            if (isfinite(pq[3])) {
                sqn += pq[3];
                sqr += pq[4];
                nqr++;
            }
        }
    }
    v[M_R1] = s1 / (double)nq;
    v[M_R10] = s10 / (double)nq;
    v[M_NDCG] = sn / (double)nq;
    v[M_MRR] = sm / (double)nq;
    v[M_QNDCG] = nqr ? sqn / (double)nqr : NAN;
    v[M_QREC] = nqr ? sqr / (double)nqr : NAN;
    v[M_R100] = NAN;
    if (gk >= EVAL_DEEP) {
        if ((rc = search(C, T, C->nt, EVAL_DEEP, C->ids)))
            return rc;
        mask_self(C, C->ids, EVAL_DEEP);
        if ((rc = vqs_exact_distances(C->m, &C->B, &C->Q, EVAL_DEEP, C->ids, C->rd)))
            return rc;
        double s = 0;
        for (size_t q = 0; q < nq; q++)
            s += vqs_eval_recall(C->m, C->gt + q * gk, C->gd + q * gk, EVAL_DEEP, C->ids + q * EVAL_DEEP,
                                 C->rd + q * EVAL_DEEP, EVAL_DEEP);
        v[M_R100] = s / (double)nq;
    }
    return 0;
}

/* ---- building ------------------------------------------------------------- */

/* "IVF<n>" of a spec, or "" */
static void ivf_token(const char *spec, char *out, size_t cap)
{
    while (*spec == ' ')
        spec++;
    size_t len = 0;
    if (!strncmp(spec, "IVF", 3))
        len = strcspn(spec, ",");
    snprintf(out, cap, "%.*s", (int)len, spec);
}

/* leading tokens two comma-separated specs share */
static size_t common_tokens(const char *a, const char *b)
{
    size_t n = 0;
    for (;;) {
        size_t la = strcspn(a, ","), lb = strcspn(b, ",");
        if (la != lb || strncmp(a, b, la))
            return n;
        n++;
        if (!a[la] || !b[lb])
            return n;
        a += la + 1;
        b += lb + 1;
    }
}

static const vqs_codec *pick_donor(const eval_ctx *C, const char *key, const char *cspec)
{
    const vqs_codec *best = NULL;
    size_t bn = 0;
    for (size_t i = 0; i < C->ndonors; i++) {
        if (strcmp(C->donors[i].key, key))
            continue;
        size_t n = common_tokens(cspec, vqs_codec_spec(C->donors[i].codec));
        if (n > bn) {
            bn = n;
            best = C->donors[i].codec;
        }
    }
    return best;
}

/* keeps a copy of ix's trained codec for later specs (ring of NDONORS) */
static void keep_donor(eval_ctx *C, const char *key, const vqs_index *ix)
{
    const vqs_codec *c = vqs_index_codec(ix);
    for (size_t i = 0; i < C->ndonors; i++)
        if (!strcmp(C->donors[i].key, key) && !strcmp(vqs_codec_spec(C->donors[i].codec), vqs_codec_spec(c)))
            return;
    void *blob = NULL;
    size_t len = 0;
    vqs_codec *copy = NULL;
    if (vqs_codec_save(c, &blob, &len) || vqs_codec_load(blob, len, &copy)) {
        free(blob);
        vqs_clearerr(); /* no cache entry: later specs train in full */
        return;
    }
    free(blob);
    donor *d = &C->donors[C->donor_next];
    if (C->ndonors < NDONORS)
        C->ndonors++;
    else
        vqs_codec_free(d->codec);
    snprintf(d->key, sizeof d->key, "%s", key);
    d->codec = copy;
    C->donor_next = (C->donor_next + 1) % NDONORS;
}

/* creates, trains (reusing cached stages) and fills the index of spec;
 * reused: the copied stages ("" if none) */
static int build(eval_ctx *C, const char *spec, uint64_t seed, vqs_index **out, double *train_s,
                 double *add_s, char *reused, size_t rcap)
{
    vqs_index_opts io = {.nthreads = C->nt, .seed = seed, .max_train = C->train_size};
    io.codec.sq_clip = C->clip;
    vqs_index *ix = NULL;
    int rc = vqs_index_create(spec, C->d, C->m, &io, &ix);
    if (rc)
        return rc;
    char key[64], ivf[32];
    ivf_token(spec, ivf, sizeof ivf);
    snprintf(key, sizeof key, "%s|%llu", ivf, (unsigned long long)seed);
    const char *cspec = vqs_codec_spec(vqs_index_codec(ix));
    const vqs_codec *donor = pick_donor(C, key, cspec);
    int nreused = 0;
    double t0 = vqs_now();
    rc = vqs_index_train_from(ix, donor, C->n, C->B.x, &nreused);
    double t1 = vqs_now();
    if (!rc)
        rc = vqs_index_add(ix, C->n, C->B.x, NULL);
    double t2 = vqs_now();
    if (rc) {
        vqs_index_free(ix);
        return rc;
    }
    keep_donor(C, key, ix);
    /* the first nreused tokens of the canonical codec spec */
    size_t len = 0;
    for (int i = 0; i < nreused; i++) {
        len += strcspn(cspec + len, ",");
        if (i + 1 < nreused && cspec[len])
            len++;
    }
    snprintf(reused, rcap, "%.*s", (int)len, cspec);
    *train_s = t1 - t0;
    *add_s = t2 - t1;
    *out = ix;
    return 0;
}

/* SQNR and relative MSE of what ix stores, on at most SQNR_ROWS base rows */
static int codec_error(const eval_ctx *C, const vqs_index *ix, double *sqnr, double *rel)
{
    size_t ns = C->n < SQNR_ROWS ? C->n : SQNR_ROWS, d = C->d, es = vqs_index_entry_size(ix);
    float *x = malloc(sizeof(float) * ns * d), *xr = malloc(sizeof(float) * ns * d);
    uint8_t *codes = malloc(es * ns);
    uint32_t *lists = malloc(sizeof(uint32_t) * ns);
    int rc = 0;
    if (!x || !xr || !codes || !lists)
        rc = vqs_seterr(VQS_ENOMEM, "eval: reconstruction error of %zu rows", ns);
    for (size_t i = 0; !rc && i < ns; i++)
        memcpy(x + i * d, C->B.x + (i * C->n / ns) * d, sizeof(float) * d);
    vqs_codec_error e;
    if (!rc && !(rc = vqs_index_encode(ix, ns, x, codes, lists)) &&
        !(rc = vqs_index_decode(ix, ns, codes, lists, xr))) {
        if (C->m == VQS_METRIC_COS)
            vqs_normalize_rows(ns, d, x);
        if (!(rc = vqs_codec_error_of(ns, d, x, xr, &e))) {
            *sqnr = e.sqnr_db;
            *rel = e.rel_mse;
        }
    }
    free(x);
    free(xr);
    free(codes);
    free(lists);
    return rc;
}

/* the queries decoded from their codes (--symmetric); *out malloc'd */
static int symmetric_queries(const eval_ctx *C, const vqs_index *ix, float **out)
{
    size_t es = vqs_index_entry_size(ix);
    float *q = malloc(sizeof(float) * C->nq * C->d);
    uint8_t *codes = malloc(es * C->nq);
    uint32_t *lists = malloc(sizeof(uint32_t) * C->nq);
    int rc = 0;
    if (!q || !codes || !lists)
        rc = vqs_seterr(VQS_ENOMEM, "eval: %zu symmetric queries", C->nq);
    if (!rc && !(rc = vqs_index_encode(ix, C->nq, C->Q.x, codes, lists)))
        rc = vqs_index_decode(ix, C->nq, codes, lists, q);
    free(codes);
    free(lists);
    if (rc) {
        free(q);
        return rc;
    }
    *out = q;
    return 0;
}

/* ---- one spec --------------------------------------------------------------- */

typedef struct spec_info {
    int exact, ivf, refine;
    char index[32], refine_tok[256], cspec[512];
    double code_bytes, total_bytes;
} spec_info;

static void parse_spec_info(const char *spec, spec_info *si)
{
    memset(si, 0, sizeof *si);
    si->exact = !strcmp(spec, "exact") || !strcmp(spec, "Flat");
    ivf_token(spec, si->index, sizeof si->index);
    si->ivf = si->index[0] != 0;
    if (!si->ivf)
        snprintf(si->index, sizeof si->index, "flat");
    const char *rf = strstr(spec, "Refine(");
    size_t len = strlen(spec);
    if (rf) {
        snprintf(si->refine_tok, sizeof si->refine_tok, "%s", rf);
        si->refine = 1;
    } else if (len >= 6 && !strcmp(spec + len - 6, ",RFlat")) {
        snprintf(si->refine_tok, sizeof si->refine_tok, "RFlat");
        si->refine = 1;
    } else {
        snprintf(si->refine_tok, sizeof si->refine_tok, "none");
    }
}

static void json_set(json_t *o, const char *k, json_t *v) { json_object_set_new(o, k, v ? v : json_null()); }

/* an "ok" row from the per-seed values vals[s * NMET + f] */
static json_t *ok_row(const eval_ctx *C, const char *spec, const spec_info *si, size_t nprobe, double os,
                      const double *vals, const char *reused)
{
    json_t *r = json_object();
    json_set(r, "spec", json_string(spec));
    json_set(r, "status", json_string("ok"));
    if (si->exact) {
        json_set(r, "transform", json_null());
        json_set(r, "pca_dims", json_null());
        json_set(r, "pca_fraction", json_null());
        json_set(r, "quantizer", json_string("Flat"));
    } else {
        const char *cut = strrchr(si->cspec, ',');
        json_set(r, "transform", cut ? json_stringn(si->cspec, (size_t)(cut - si->cspec)) : json_null());
        const char *pca = NULL;
        for (const char *t = si->cspec; t && (!cut || t < cut); t = strchr(t, ',') ? strchr(t, ',') + 1 : NULL)
            if (!strncmp(t, "PCA", 3) && isdigit((unsigned char)t[3])) {
                pca = t + 3;
                break;
            }
        if (pca) {
            size_t dims = strtoul(pca, NULL, 10);
            json_set(r, "pca_dims", json_integer((json_int_t)dims));
            json_set(r, "pca_fraction", json_real((double)dims / (double)C->d));
        } else {
            json_set(r, "pca_dims", json_null());
            json_set(r, "pca_fraction", json_null());
        }
        json_set(r, "quantizer", json_string(cut ? cut + 1 : si->cspec));
    }
    json_set(r, "refine", json_string(si->refine_tok));
    json_set(r, "index", json_string(si->index));
    json_set(r, "nprobe", json_integer((json_int_t)(si->ivf ? nprobe : 0)));
    json_set(r, "oversampling", json_real(si->refine ? os : 1.0));
    size_t kk = EVAL_K + (C->self ? 1 : 0);
    size_t cand = si->refine ? (size_t)ceil((double)kk * (double)(float)os) : 0;
    json_set(r, "candidates", json_integer((json_int_t)cand));
    json_set(r, "code_bytes", json_real(si->code_bytes));
    json_set(r, "total_bytes", json_real(si->total_bytes));
    json_set(r, "bits_per_dim", json_real(8.0 * si->code_bytes / (double)C->d));
    json_set(r, "compression", json_real(4.0 * (double)C->d / si->code_bytes));
    json_t *spread = json_object();
    static const int order[] = {M_TRAIN, M_ADD, M_R1, M_R10, M_R100, M_NDCG, M_MRR, M_QNDCG, M_QREC,
                                M_SQNR, M_RELMSE, M_QPS1, M_QPSN};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        int f = order[i];
        double v[64], mean, sd;
        size_t ns = C->nseeds < 64 ? C->nseeds : 64;
        for (size_t s = 0; s < ns; s++)
            v[s] = vals[s * NMET + f];
        vqs_eval_mean_std(v, ns, &mean, &sd);
        if ((f == M_QNDCG || f == M_QREC) && !C->qrels) {
            json_set(r, met_name[f], json_null());
            continue;
        }
        json_set(r, met_name[f], eval_jreal(mean));
        if (C->nseeds > 1 && isfinite(mean))
            json_set(spread, met_name[f], eval_jreal(sd));
    }
    json_set(r, "spread", spread);
    json_set(r, "train_reused", reused && *reused ? json_string(reused) : json_null());
    return r;
}

static json_t *error_row(const char *spec, const char *msg)
{
    json_t *r = json_object();
    json_set(r, "spec", json_string(spec));
    json_set(r, "status", json_string("error"));
    json_set(r, "error", json_string(msg));
    return r;
}

/* appends a row, prints it, rewrites the files */
static int emit(eval_ctx *C, eval_out *O, json_t *row)
{
    json_array_append_new(json_object_get(O->root, "rows"), row);
    vqs_progress_clear(&C->prog);
    eval_md_row(stdout, row, C->qrels != NULL, (int)C->nseeds);
    return eval_out_write(O);
}

static void per_query_rows(eval_ctx *C, const char *spec, size_t nprobe, double os, uint64_t seed)
{
    if (!C->perq)
        return;
    for (size_t q = 0; q < C->nq; q++) {
        const double *v = C->pq + q * 5;
        fprintf(C->perq, "%s\t%zu\t%g\t%llu\t%zu\t%.6f\t%.6f\t%.6f", spec, nprobe, os, (unsigned long long)seed,
                C->qrow[q], v[0], v[1], v[2]);
        if (C->qrels) {
            if (isfinite(v[3]))
                fprintf(C->perq, "\t%.6f\t%.6f", v[3], v[4]);
            else
                fprintf(C->perq, "\t\t");
        }
        fputc('\n', C->perq);
    }
    fflush(C->perq);
}

/* Evaluates one spec over every seed and setting. Returns 0 when its rows
 * are written (ok or error), or a failure of the output itself. *failed is
 * set when the spec failed. */
static int run_entry(eval_ctx *C, eval_out *O, const eval_entry *e, int *failed)
{
    spec_info si;
    parse_spec_info(e->spec, &si);
    const double *np = e->nnprobe ? e->nprobe : C->np_def, *os = e->nos ? e->os : C->os_def;
    size_t nnp = si.ivf ? (e->nnprobe ? e->nnprobe : C->nnp_def) : 1;
    size_t nos = si.refine ? (e->nos ? e->nos : C->nos_def) : 1;
    size_t nset = nnp * nos, nseeds = C->nseeds;
    double *vals = calloc(nset * nseeds * NMET, sizeof(double));
    char reused[256] = "", msg[1200] = "";
    if (!vals)
        return vqs_seterr(VQS_ENOMEM, "eval: %zu settings", nset);
    int rc = 0;
    for (size_t s = 0; s < nseeds && !rc; s++) {
        uint64_t seed = C->seed0 + s;
        vqs_index *ix = NULL;
        float *symq = NULL;
        double train_s = 0, add_s = 0, sqnr = NAN, rel = 0;
        char label[320];
        if (nseeds > 1)
            snprintf(label, sizeof label, "%s (seed %llu)", e->spec, (unsigned long long)seed);
        else
            snprintf(label, sizeof label, "%s", e->spec);
        if (si.exact) {
            si.code_bytes = si.total_bytes = 4.0 * (double)C->d;
        } else {
            vqs_progress_update(&C->prog, C->units, 1, "%s: training and adding", label);
            if (!(rc = build(C, e->spec, seed, &ix, &train_s, &add_s, reused, sizeof reused))) {
                size_t fixed = 0;
                snprintf(si.cspec, sizeof si.cspec, "%s", vqs_codec_spec(vqs_index_codec(ix)));
                si.code_bytes = (double)vqs_index_code_size(ix);
                si.total_bytes = vqs_index_bytes_per_vector(ix, &fixed) + (double)fixed / (double)C->n;
                vqs_progress_update(&C->prog, C->units, 1, "%s: reconstruction error", label);
                rc = codec_error(C, ix, &sqnr, &rel);
            }
            if (!rc && C->symmetric)
                rc = symmetric_queries(C, ix, &symq);
        }
        for (size_t a = 0; a < nnp && !rc; a++)
            for (size_t b = 0; b < nos && !rc; b++) {
                size_t set = a * nos + b;
                double *v = vals + (set * nseeds + s) * NMET;
                target T = {ix, {.nprobe = si.ivf ? (size_t)np[a] : 0,
                                 .oversampling = si.refine ? (float)os[b] : 1.0f,
                                 .rerank = si.refine ? 1 : -1},
                            symq ? symq : C->Q.x};
                vqs_progress_update(&C->prog, C->units, 1, "%s: searching%s", label,
                                    nset > 1 ? " (one of several settings)" : "");
                int differs = 0;
                if ((rc = measure(C, &T, v, &differs)))
                    break;
                if (differs) {
                    vqs_progress_clear(&C->prog);
                    fprintf(stderr, "vqs eval: %s: WARNING: repeated searches returned different results "
                                    "(metrics are from the first run)\n", label);
                }
                v[M_SQNR] = sqnr;
                v[M_RELMSE] = rel;
                v[M_TRAIN] = train_s;
                v[M_ADD] = add_s;
                per_query_rows(C, e->spec, si.ivf ? (size_t)np[a] : 0, si.refine ? os[b] : 1.0, seed);
            }
        if (rc) {
            const char *det = vqs_errdetail();
            snprintf(msg, sizeof msg, "%s%s%s%s%s", nseeds > 1 ? label : "", nseeds > 1 ? ": " : "", det,
                     *det ? ": " : "", vqs_strerror(rc));
        }
        free(symq);
        vqs_index_free(ix);
        C->units++;
    }
    int orc = 0;
    if (rc) {
        *failed = 1;
        vqs_progress_clear(&C->prog);
        fprintf(stderr, "vqs eval: %s: %s\n", e->spec, msg);
        orc = emit(C, O, error_row(e->spec, msg));
    } else {
        for (size_t a = 0; a < nnp && !orc; a++)
            for (size_t b = 0; b < nos && !orc; b++) {
                const double *v = vals + (a * nos + b) * nseeds * NMET;
                orc = emit(C, O, ok_row(C, e->spec, &si, si.ivf ? (size_t)np[a] : 0, si.refine ? os[b] : 1.0, v,
                                        reused));
            }
    }
    free(vals);
    return orc;
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
    const char *base = NULL, *qf = NULL, *gtf = NULL, *metric = "l2", *out = NULL, *jsonf = NULL,
               *perq = NULL, *qrelsf = NULL, *describe = NULL, *name = NULL;
    const char *specs[256], *sweeps[16];
    size_t nspec = 0, nsweep = 0, threads = 0, train_size = 0, dim = 0, seed = 1, nseeds = 1, nqmax = 0;
    int timing = 1, symmetric = 0, rc = 0;
    float clip = 0;
    eval_ctx C = {.nnp_def = 1, .nos_def = 1};
    C.np_def[0] = 16;
    C.os_def[0] = 4;
    static const struct option lo[] = {
        {"base", 1, 0, 'b'},      {"queries", 1, 0, 'q'},      {"gt", 1, 0, 'g'},
        {"metric", 1, 0, 'm'},    {"spec", 1, 0, 's'},         {"nprobe", 1, 0, 'n'},
        {"oversampling", 1, 0, 'O'}, {"threads", 1, 0, 't'},   {"train-size", 1, 0, 'T'},
        {"seed", 1, 0, 'S'},      {"dim", 1, 0, 'd'},          {"out", 1, 0, 'o'},
        {"nq", 1, 0, 'Q'},        {"help", 0, 0, 'h'},         {"clip", 1, 0, 'c'},
        {"sweep", 1, 0, 'w'},     {"seeds", 1, 0, 'N'},        {"no-timing", 0, 0, 'x'},
        {"symmetric", 0, 0, 'y'}, {"qrels", 1, 0, 'r'},        {"per-query", 1, 0, 'p'},
        {"json", 1, 0, 'j'},      {"describe", 1, 0, 'D'},     {"name", 1, 0, 'a'},
        {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "b:q:g:m:s:n:O:t:T:S:d:o:Q:hc:w:N:xyr:p:j:D:a:", lo, NULL)) != -1) {
        switch (c) {
        case 'b': base = optarg; break;
        case 'q': qf = optarg; break;
        case 'g': gtf = optarg; break;
        case 'm': metric = optarg; break;
        case 'o': out = optarg; break;
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
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (rc)
            return vqs_cli_fail("eval", rc);
    }
    if (optind < argc)
        return vqs_cli_fail("eval", vqs_seterr(VQS_EUSAGE, "unexpected argument '%s'", argv[optind]));
    if (!base || !qf || !(nspec || nsweep)) {
        usage(stderr);
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
    json_set(O.root, "format", json_string("vqs-eval/2"));
    /* argv[0] is "eval" (the subcommand): the command is "vqs eval ..." */
    char *full = NULL;
    if (asprintf(&full, "vqs %s", cmdline) < 0) {
        rc = vqs_seterr(VQS_ENOMEM, "eval: output");
        goto done;
    }
    json_set(O.root, "command", json_string(full));
    free(full);
    json_set(O.root, "created", json_string(created));
    json_set(ds, "name", json_string(dname));
    json_set(ds, "base", json_string(base));
    json_set(ds, "queries", json_string(qf));
    json_set(ds, "n", json_integer((json_int_t)C.n));
    json_set(ds, "nq", json_integer((json_int_t)nq));
    json_set(ds, "d", json_integer((json_int_t)d));
    json_set(ds, "metric", json_string(vqs_metric_name(C.m)));
    json_set(ds, "ground_truth", json_string(gtf ? gtf : "exact"));
    json_set(ds, "qrels", qrelsf ? json_string(qrelsf) : json_null());
    json_set(ds, "description", json_string(desc));
    json_set(O.root, "dataset", ds);
    json_set(O.root, "k", json_integer(EVAL_K));
    json_set(O.root, "threads", json_integer(C.nt));
    json_set(O.root, "simd", json_string(vqs_kernels_active()->name));
    json_set(O.root, "seeds", json_integer((json_int_t)nseeds));
    json_set(O.root, "seed", json_integer((json_int_t)seed));
    json_set(O.root, "symmetric", json_boolean(symmetric));
    json_set(O.root, "timing", json_boolean(timing));
    json_set(O.root, "rows", json_array());
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
        rc = run_entry(&C, &O, &E.v[i], &failed);
    vqs_progress_clear(&C.prog);
    if (!rc && out)
        fprintf(stderr, "vqs eval: wrote %s.json and %s.csv\n", out, out);
    if (!rc && jsonf)
        fprintf(stderr, "vqs eval: wrote %s\n", jsonf);
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
