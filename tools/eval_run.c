/*
 * eval_run.c: one spec of `vqs eval`: building its index (reusing trained
 * stages), measuring every setting, and its rows.
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
 *   Fewer repetitions only when one setting has spent TIME_BUDGET seconds.
 * - Shared training: specs with the same transforms (PCA384,SQ8,
 *   PCA384,Flat, ...) train them once. After each training the index's
 *   codec is copied into a small cache keyed by the IVF token and the seed;
 *   a later index of the same key trains with vqs_index_train_from, which
 *   copies the longest matching prefix of stages (the whole codec for
 *   X and X,RFlat) bit for bit. Indexes train on the same base rows, the
 *   same seeded subsample and metric, so the result is the index a full
 *   training gives (tests/index and tests/tools check it). The row's train_s
 *   is the time actually spent, and "train_reused" names the copied stages.
 *   Rejected: transforming the data once and evaluating the quantizer alone
 *   on it (the numbers would depend on eval re-implementing the codec's
 *   query path for every metric, which the PCA/IP work is changing).
 * - Failures stay local: a spec that cannot be created or trained becomes
 *   a row with status "error" and its message; the run goes on.
 * - SQNR per spec: the vectors the index stores (normalised for cosine)
 *   against vqs_index_decode of their codes, i.e. centroid + decoded
 *   residual for IVF with residuals (the honest reconstruction: what the
 *   scores are computed against), on at most SQNR_ROWS evenly spaced base
 *   rows; the first-stage codec only (a refine copy is not counted). For
 *   BIN, which ranks by an estimator, it is the error of its decode.
 * - --symmetric: queries are encoded and decoded by the index's codec
 *   (vqs_index_encode / vqs_index_decode) before the search, as in
 *   pipelines that store both sides compressed; ground truth and metrics
 *   use the original queries.
 * - nprobe varies only for IVF specs (and for VAMANA graph specs, where
 *   its values are the search beam, ef) and oversampling only for specs
 *   with a refine stage; other specs get one row, not a grid of identical
 *   rows.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval_internal.h"
#include "vqs_common.h"
#include "vqs_index.h"

#define SQNR_ROWS 16384    /* base rows the reconstruction error is measured on */
#define TIME_REPS 3        /* timed repetitions of a search */
#define TIME_BUDGET 60.0   /* seconds: fewer repetitions once one setting has spent this */

/* the averaged fields of a row, in output order */
enum { M_R1, M_R10, M_R100, M_NDCG, M_MRR, M_QNDCG, M_QREC, M_SQNR, M_RELMSE, M_QPS1, M_QPSN,
       M_TRAIN, M_ADD, NMET };
static const char *const met_name[NMET] = {
    "recall_at_1", "recall_at_10", "recall_at_100", "ndcg_at_10", "mrr_at_10", "qrels_ndcg_at_10",
    "qrels_recall_at_10", "sqnr_db", "rel_mse", "qps_1_thread", "qps_all_threads", "train_s", "add_s"};

/* Copies ids (and dist) of nq rows of kk columns into k columns, leaving
 * out each query's own id (self[q]); if it is absent, the last column
 * goes. */
void eval_drop_self(const int64_t *self, size_t nq, const int64_t *in, const float *din, size_t kk,
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
        eval_drop_self(C->self, C->nq, C->raw, NULL, kk, out, NULL, k);
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

/* keeps a copy of ix's trained codec for later specs (ring of EVAL_NDONORS) */
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
    eval_donor *d = &C->donors[C->donor_next];
    if (C->ndonors < EVAL_NDONORS)
        C->ndonors++;
    else
        vqs_codec_free(d->codec);
    snprintf(d->key, sizeof d->key, "%s", key);
    d->codec = copy;
    C->donor_next = (C->donor_next + 1) % EVAL_NDONORS;
}

/* Resident bytes of the process (/proc/self/statm) after giving freed heap
 * pages back (malloc_trim), or 0 if it cannot be read. */
static size_t resident_bytes(void)
{
    malloc_trim(0);
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size = 0, res = 0;
    int ok = f && fscanf(f, "%llu %llu", &size, &res) == 2;
    if (f)
        fclose(f);
    long pg = sysconf(_SC_PAGESIZE);
    return ok && pg > 0 ? (size_t)(res * (unsigned long long)pg) : 0;
}

/* creates, trains (reusing cached stages) and fills the index of spec;
 * reused: the copied stages ("" if none); *rss: the resident bytes the add
 * grew the process by, per vector (NAN if /proc cannot be read) */
static int build(eval_ctx *C, const char *spec, uint64_t seed, vqs_index **out, double *train_s,
                 double *add_s, char *reused, size_t rcap, double *rss)
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
    size_t r0 = rc ? 0 : resident_bytes();
    if (!rc)
        rc = vqs_index_add(ix, C->n, C->B.x, NULL);
    double t2 = vqs_now();
    size_t r1 = rc ? 0 : resident_bytes();
    *rss = r0 && r1 ? ((double)r1 - (double)r0) / (double)C->n : NAN;
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
    int graph; /* VAMANA: the nprobe values are the search beam (ef) */
    char index[32], refine_tok[256], cspec[512];
    double code_bytes, total_bytes;
    double vector_bytes, rss_bytes; /* per vector without the fixed share: computed, and resident */
} spec_info;

static void parse_spec_info(const char *spec, spec_info *si)
{
    memset(si, 0, sizeof *si);
    si->exact = !strcmp(spec, "exact") || !strcmp(spec, "Flat");
    ivf_token(spec, si->index, sizeof si->index);
    si->ivf = si->index[0] != 0;
    si->graph = vqs_index_graph_params(spec, NULL, NULL, NULL) == 1;
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

/* an "ok" row from the per-seed values vals[s * NMET + f] */
static json_t *ok_row(const eval_ctx *C, const char *spec, const spec_info *si, size_t nprobe, double os,
                      const double *vals, const char *reused)
{
    json_t *r = json_object();
    eval_json_set(r, "spec", json_string(spec));
    eval_json_set(r, "status", json_string("ok"));
    if (si->exact) {
        eval_json_set(r, "transform", json_null());
        eval_json_set(r, "pca_dims", json_null());
        eval_json_set(r, "pca_fraction", json_null());
        eval_json_set(r, "quantizer", json_string("Flat"));
    } else {
        const char *cut = strrchr(si->cspec, ',');
        eval_json_set(r, "transform", cut ? json_stringn(si->cspec, (size_t)(cut - si->cspec)) : json_null());
        const char *pca = NULL;
        for (const char *t = si->cspec; t && (!cut || t < cut); t = strchr(t, ',') ? strchr(t, ',') + 1 : NULL)
            if (!strncmp(t, "PCA", 3) && isdigit((unsigned char)t[3])) {
                pca = t + 3;
                break;
            }
        if (pca) {
            size_t dims = strtoul(pca, NULL, 10);
            eval_json_set(r, "pca_dims", json_integer((json_int_t)dims));
            eval_json_set(r, "pca_fraction", json_real((double)dims / (double)C->d));
        } else {
            eval_json_set(r, "pca_dims", json_null());
            eval_json_set(r, "pca_fraction", json_null());
        }
        eval_json_set(r, "quantizer", json_string(cut ? cut + 1 : si->cspec));
    }
    eval_json_set(r, "refine", json_string(si->refine_tok));
    eval_json_set(r, "index", json_string(si->index));
    eval_json_set(r, "nprobe", json_integer((json_int_t)(si->ivf || si->graph ? nprobe : 0)));
    eval_json_set(r, "oversampling", json_real(si->refine ? os : 1.0));
    size_t kk = EVAL_K + (C->self ? 1 : 0);
    size_t cand = si->refine ? (size_t)ceil((double)kk * (double)(float)os) : 0;
    eval_json_set(r, "candidates", json_integer((json_int_t)cand));
    eval_json_set(r, "code_bytes", json_real(si->code_bytes));
    eval_json_set(r, "total_bytes", json_real(si->total_bytes));
    eval_json_set(r, "vector_bytes", json_real(si->vector_bytes));
    eval_json_set(r, "rss_bytes", isfinite(si->rss_bytes) ? json_real(si->rss_bytes) : json_null());
    eval_json_set(r, "bits_per_dim", json_real(8.0 * si->code_bytes / (double)C->d));
    eval_json_set(r, "compression", json_real(4.0 * (double)C->d / si->code_bytes));
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
            eval_json_set(r, met_name[f], json_null());
            continue;
        }
        eval_json_set(r, met_name[f], eval_jreal(mean));
        if (C->nseeds > 1 && isfinite(mean))
            eval_json_set(spread, met_name[f], eval_jreal(sd));
    }
    eval_json_set(r, "spread", spread);
    eval_json_set(r, "train_reused", reused && *reused ? json_string(reused) : json_null());
    return r;
}

static json_t *error_row(const char *spec, const char *msg)
{
    json_t *r = json_object();
    eval_json_set(r, "spec", json_string(spec));
    eval_json_set(r, "status", json_string("error"));
    eval_json_set(r, "error", json_string(msg));
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

int eval_run_entry(eval_ctx *C, eval_out *O, const eval_entry *e, int *failed)
{
    spec_info si;
    parse_spec_info(e->spec, &si);
    const double *np = e->nnprobe ? e->nprobe : C->np_def, *os = e->nos ? e->os : C->os_def;
    size_t nnp = si.ivf || si.graph ? (e->nnprobe ? e->nnprobe : C->nnp_def) : 1;
    size_t nos = si.refine ? (e->nos ? e->nos : C->nos_def) : 1;
    size_t nset = nnp * nos, nseeds = C->nseeds;
    double *vals = calloc(nset * nseeds * NMET, sizeof(double));
    char reused[256] = "", msg[1200] = "";
    if (!vals)
        return vqs_seterr(VQS_ENOMEM, "eval: %zu settings", nset);
    int rc = 0;
    size_t units0 = C->units;
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
            si.code_bytes = si.total_bytes = si.vector_bytes = 4.0 * (double)C->d;
            si.rss_bytes = NAN; /* exact search searches the base where it is */
        } else {
            vqs_progress_update(&C->prog, C->units, 1, "%s: training and adding", label);
            double rss = NAN;
            if (!(rc = build(C, e->spec, seed, &ix, &train_s, &add_s, reused, sizeof reused, &rss))) {
                size_t fixed = 0;
                snprintf(si.cspec, sizeof si.cspec, "%s", vqs_codec_spec(vqs_index_codec(ix)));
                si.code_bytes = (double)vqs_index_code_size(ix);
                si.vector_bytes = vqs_index_bytes_per_vector(ix, &fixed);
                si.total_bytes = si.vector_bytes + (double)fixed / (double)C->n;
                if (s == 0) { /* the first seed's */
                    si.rss_bytes = rss;
                    /* the two measure the same allocations: say so when they
                     * part (a small base's page rounding aside) */
                    if (isfinite(rss) && C->n >= 100000 && fabs(rss - si.vector_bytes) > 0.2 * si.vector_bytes) {
                        vqs_progress_clear(&C->prog);
                        fprintf(stderr, "vqs eval: %s: WARNING: the index holds %.1f bytes a vector by its own count "
                                        "but the process grew by %.1f resident bytes a vector while adding\n",
                                label, si.vector_bytes, rss);
                    }
                }
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
                target T = {ix, {.nprobe = si.ivf ? (size_t)np[a] : 0, .ef = si.graph ? (size_t)np[a] : 0,
                                 .oversampling = si.refine ? (float)os[b] : 1.0f,
                                 .rerank = si.refine ? VQS_RERANK_ON : VQS_RERANK_OFF},
                            symq ? symq : C->Q.x};
                if (nset > 1)
                    vqs_progress_update(&C->prog, C->units, 1, "%s: searching (setting %zu of %zu)", label,
                                        set + 1, nset);
                else
                    vqs_progress_update(&C->prog, C->units, 1, "%s: searching", label);
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
                per_query_rows(C, e->spec, si.ivf || si.graph ? (size_t)np[a] : 0, si.refine ? os[b] : 1.0, seed);
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
    C->units = units0 + nseeds; /* a failed spec skips its other seeds */
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
                orc = emit(C, O, ok_row(C, e->spec, &si, si.ivf || si.graph ? (size_t)np[a] : 0, si.refine ? os[b] : 1.0, v,
                                        reused));
            }
    }
    free(vals);
    return orc;
}
