/*
 * eval_metrics.c: the retrieval metrics of `vqs eval` (definitions in
 * eval_metrics.h) and the qrels reader.
 *
 * Design decisions:
 * - One relevance rule for every exact-ground-truth metric: a returned id is
 *   relevant at depth k when it is among the k true ids or ties the k-th
 *   true distance (index/exact.c's vqs_recall rule, repeated here per query
 *   so that per-query values exist; a test checks both agree). Without the
 *   tie rule, data with duplicate vectors (SIFT has them) would score a
 *   correct search below 1 depending on which of two equal points it
 *   happened to return.
 * - nDCG against exact ground truth uses binary gains: the true top 10 are
 *   equally "relevant" and there is no grade to weigh them by. Rejected:
 *   graded gains from the true rank (11 - rank): they reward ordering
 *   inside the top 10, which recall and MRR already cover, and give a number
 *   nobody else computes. With qrels the gains are the grades (linear, as
 *   trec_eval's ndcg_cut used by BEIR and MTEB), so the figure is the one
 *   MTEB reports for the same retrieval.
 * - MRR@10 looks for the true nearest neighbour (or a tie with it); with
 *   qrels a per-query RR is not reported: MTEB's headline is nDCG@10.
 * - qrels are held per query sorted by grade (best first): IDCG is then the
 *   first K grades, and a lookup is a linear scan of a query's few judged
 *   documents (BEIR sets have 1 to ~30 per query), which is cheaper than a
 *   hash for such lists.
 */
#define _GNU_SOURCE
#include "eval_metrics.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* is result j (id, true distance dv) relevant at depth k? */
static int relevant(vqs_metric m, const int64_t *gt, const float *gtd, size_t k, int64_t id,
                    const float *resd, size_t j)
{
    for (size_t i = 0; i < k; i++)
        if (gt[i] == id)
            return 1;
    if (!gtd || !resd)
        return 0;
    double kth = gtd[k - 1], tol = 1e-6 * fmax(1.0, fabs(kth)), dv = resd[j];
    if (!isfinite(kth))
        return 0;
    return m == VQS_METRIC_L2 ? dv <= kth + tol : dv >= kth - tol;
}

/* has id appeared among res[0..j)? */
static int seen_before(const int64_t *res, size_t j, int64_t id)
{
    for (size_t i = 0; i < j; i++)
        if (res[i] == id)
            return 1;
    return 0;
}

double vqs_eval_recall(vqs_metric m, const int64_t *gt, const float *gtd, size_t k,
                       const int64_t *res, const float *resd, size_t K)
{
    size_t hits = 0;
    for (size_t j = 0; j < K; j++) {
        int64_t id = res[j];
        if (id < 0 || seen_before(res, j, id))
            continue;
        hits += relevant(m, gt, gtd, k, id, resd, j);
    }
    return (double)(hits < k ? hits : k) / (double)k;
}

double vqs_eval_ndcg(vqs_metric m, const int64_t *gt, const float *gtd, size_t ngt,
                     const int64_t *res, const float *resd, size_t K)
{
    size_t depth = ngt < K ? ngt : K;
    if (depth == 0)
        return NAN;
    double dcg = 0, idcg = 0;
    for (size_t j = 0; j < K; j++) {
        int64_t id = res[j];
        if (id < 0 || seen_before(res, j, id))
            continue;
        if (relevant(m, gt, gtd, depth, id, resd, j))
            dcg += 1.0 / log2((double)j + 2.0);
    }
    for (size_t j = 0; j < depth; j++)
        idcg += 1.0 / log2((double)j + 2.0);
    return dcg > idcg ? 1.0 : dcg / idcg; /* more ties than slots cannot beat ideal */
}

double vqs_eval_rr(vqs_metric m, const int64_t *gt, const float *gtd, const int64_t *res,
                   const float *resd, size_t K)
{
    for (size_t j = 0; j < K; j++)
        if (res[j] >= 0 && relevant(m, gt, gtd, 1, res[j], resd, j))
            return 1.0 / (double)(j + 1);
    return 0.0;
}

/* ---- qrels ------------------------------------------------------------------ */

void vqs_qrels_free(vqs_qrels *qr)
{
    if (!qr)
        return;
    free(qr->off);
    free(qr->doc);
    free(qr->grade);
    free(qr);
}

typedef struct judgement {
    size_t q;
    int64_t doc;
    double grade;
} judgement;

static int by_query_grade(const void *a, const void *b)
{
    const judgement *x = a, *y = b;
    if (x->q != y->q)
        return x->q < y->q ? -1 : 1;
    if (x->grade != y->grade)
        return x->grade > y->grade ? -1 : 1;
    return (x->doc > y->doc) - (x->doc < y->doc);
}

/* a non-negative integer filling the whole field */
static int parse_id(const char *s, unsigned long long *v)
{
    if (!isdigit((unsigned char)*s))
        return -1;
    char *e;
    errno = 0;
    *v = strtoull(s, &e, 10);
    return *e || errno ? -1 : 0;
}

int vqs_qrels_read(const char *path, size_t nq_file, size_t nq, size_t nbase, vqs_qrels **out)
{
    *out = NULL;
    FILE *f = fopen(path, "r");
    if (!f)
        return vqs_seterr(-errno, "qrels %s", path);
    judgement *J = NULL;
    size_t nj = 0, cap = 0, lineno = 0, nlines = 0;
    char *line = NULL;
    size_t lcap = 0;
    int rc = 0;
    ssize_t len;
    while (!rc && (len = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        char *fld[3] = {0};
        int nf = 0;
        for (char *save = NULL, *t = strtok_r(line, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save))
            if (nf++ < 3)
                fld[nf - 1] = t;
        if (nf == 0 || fld[0][0] == '#')
            continue;
        if (nf != 3) {
            rc = vqs_seterr(VQS_EFORMAT, "qrels %s, line %zu: %d fields, expected 3 (query-id corpus-id score)",
                            path, lineno, nf);
            break;
        }
        unsigned long long qid, did;
        if (nlines == 0 && nj == 0 && isalpha((unsigned char)fld[0][0]))
            continue; /* the header line */
        if (parse_id(fld[0], &qid) || parse_id(fld[1], &did)) {
            rc = vqs_seterr(VQS_EFORMAT, "qrels %s, line %zu: ids must be row numbers (0, 1, ...), got '%s' '%s'",
                            path, lineno, fld[0], fld[1]);
            break;
        }
        char *e;
        double g = strtod(fld[2], &e);
        if (*e || !isfinite(g)) {
            rc = vqs_seterr(VQS_EFORMAT, "qrels %s, line %zu: score '%s' is not a finite number", path, lineno,
                            fld[2]);
            break;
        }
        if (qid >= nq_file || did >= nbase) {
            rc = vqs_seterr(VQS_ERANGE, "qrels %s, line %zu: %s id %llu out of range (the %s file has %zu rows)",
                            path, lineno, qid >= nq_file ? "query" : "corpus", qid >= nq_file ? qid : did,
                            qid >= nq_file ? "query" : "base", qid >= nq_file ? nq_file : nbase);
            break;
        }
        nlines++;
        if (qid >= nq)
            continue;
        if (nj == cap) {
            size_t nc = cap ? 2 * cap : 1024;
            judgement *nJ = realloc(J, nc * sizeof *J);
            if (!nJ) {
                rc = vqs_seterr(VQS_ENOMEM, "qrels %s: %zu lines", path, nc);
                break;
            }
            J = nJ;
            cap = nc;
        }
        J[nj++] = (judgement){(size_t)qid, (int64_t)did, g};
    }
    if (!rc && ferror(f))
        rc = vqs_seterr(-EIO, "qrels %s: read error", path);
    free(line);
    fclose(f);
    vqs_qrels *qr = NULL;
    if (!rc) {
        qsort(J, nj, sizeof *J, by_query_grade);
        /* duplicates: the same pair sorts next to itself unless the grades
         * differ, so look among all of a query's judgements */
        for (size_t i = 0; i < nj && !rc; i++)
            for (size_t j = i + 1; j < nj && J[j].q == J[i].q && !rc; j++)
                if (J[j].doc == J[i].doc)
                    rc = vqs_seterr(VQS_EINVAL, "qrels %s: query %zu, document %lld judged twice", path, J[i].q,
                                    (long long)J[i].doc);
    }
    if (!rc) {
        qr = calloc(1, sizeof *qr);
        if (qr) {
            qr->nq = nq;
            qr->nlines = nlines;
            qr->off = calloc(nq + 1, sizeof *qr->off);
            qr->doc = malloc(sizeof *qr->doc * (nj ? nj : 1));
            qr->grade = malloc(sizeof *qr->grade * (nj ? nj : 1));
        }
        if (!qr || !qr->off || !qr->doc || !qr->grade)
            rc = vqs_seterr(VQS_ENOMEM, "qrels %s: %zu judgements", path, nj);
    }
    if (!rc) {
        size_t n = 0;
        for (size_t i = 0; i < nj; i++) {
            if (!(J[i].grade > 0))
                continue;
            qr->doc[n] = J[i].doc;
            qr->grade[n] = J[i].grade;
            qr->off[J[i].q + 1]++;
            n++;
        }
        for (size_t q = 0; q < nq; q++)
            qr->off[q + 1] += qr->off[q];
    }
    free(J);
    if (rc) {
        vqs_qrels_free(qr);
        return rc;
    }
    *out = qr;
    return 0;
}

/* grade of doc for query q, 0 if not judged relevant */
static double grade_of(const vqs_qrels *qr, size_t q, int64_t doc)
{
    for (size_t i = qr->off[q]; i < qr->off[q + 1]; i++)
        if (qr->doc[i] == doc)
            return qr->grade[i];
    return 0;
}

double vqs_eval_qrels_ndcg(const vqs_qrels *qr, size_t q, const int64_t *res, size_t K)
{
    size_t nrel = qr->off[q + 1] - qr->off[q];
    if (nrel == 0)
        return NAN;
    double dcg = 0, idcg = 0;
    for (size_t j = 0; j < K; j++)
        if (res[j] >= 0 && !seen_before(res, j, res[j]))
            dcg += grade_of(qr, q, res[j]) / log2((double)j + 2.0);
    for (size_t j = 0; j < K && j < nrel; j++)
        idcg += qr->grade[qr->off[q] + j] / log2((double)j + 2.0);
    return dcg / idcg;
}

double vqs_eval_qrels_recall(const vqs_qrels *qr, size_t q, const int64_t *res, size_t K)
{
    size_t nrel = qr->off[q + 1] - qr->off[q], hits = 0;
    if (nrel == 0)
        return NAN;
    for (size_t j = 0; j < K; j++)
        if (res[j] >= 0 && !seen_before(res, j, res[j]) && grade_of(qr, q, res[j]) > 0)
            hits++;
    return (double)hits / (double)nrel;
}

void vqs_eval_mean_std(const double *v, size_t n, double *mean, double *std)
{
    double s = 0;
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i])) {
            s += v[i];
            c++;
        }
    if (c == 0) {
        *mean = *std = NAN;
        return;
    }
    double mu = s / (double)c, ss = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i]))
            ss += (v[i] - mu) * (v[i] - mu);
    *mean = mu;
    *std = c > 1 ? sqrt(ss / (double)(c - 1)) : 0.0;
}
