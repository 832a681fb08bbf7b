/* eval_metrics.h: the per-query retrieval metrics of `vqs eval`
 * (tools/eval_metrics.c), kept apart so the tests call them directly.
 *
 * Against exact ground truth (no labels): gt is a query's true nearest ids,
 * best first, gtd their true distances (squared L2, or similarity for
 * IP/cosine), res the ids a search returned, best first (-1 = missing), and
 * resd the TRUE distances of those ids (vqs_exact_distances), not the
 * index's estimates. Either distance array may be NULL: then ids alone
 * decide. A returned id is RELEVANT at depth k when it is one of the first
 * k true ids or, with distances, when its true distance ties the k-th true
 * distance (relative tolerance 1e-6, as vqs_recall in index/exact.c): equally
 * distant points are interchangeable. A duplicated returned id counts once.
 *
 *   recall k@K  = |relevant-at-k among the first K results| / k, capped at 1
 *                 (recall@10 is 10@10; recall@100 is 100@100)
 *   nDCG@K      = DCG / IDCG, DCG = sum over the first K results of
 *                 rel_j / log2(j + 2) (j from 0), rel_j = 1 if result j is
 *                 relevant at depth K (binary gains), IDCG = the same sum
 *                 over min(K, number of true ids) ones
 *   RR@K        = 1 / (1 + j) for the first result j < K relevant at depth 1
 *                 (the true nearest neighbour, or a tie with it), else 0
 *
 * With labelled relevance (qrels, TREC/BEIR style: query, document, grade):
 * a document is relevant when its grade is > 0 (trec_eval's relevance level
 * 1 for integer grades);
 *   qrels nDCG@K   = sum over the first K results of grade_j / log2(j + 2),
 *                    divided by the same sum over the K best grades
 *                    (linear gains, as trec_eval's ndcg_cut and MTEB)
 *   qrels recall@K = |relevant among the first K results| / |relevant|
 * and a query without any relevant document has neither (NaN: left out of
 * the mean, as pytrec_eval evaluates only judged queries).
 */
#ifndef VQS_EVAL_METRICS_H
#define VQS_EVAL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "vqs_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* k-recall@K of one query. gt: at least k ids (gtd: as many distances, or
 * NULL); res: K ids (resd: K true distances, or NULL). k, K >= 1. */
double vqs_eval_recall(vqs_metric m, const int64_t *gt, const float *gtd, size_t k,
                       const int64_t *res, const float *resd, size_t K);

/* nDCG@K with binary relevance at depth K. gt: ngt >= K ids unless the base
 * holds fewer (then IDCG counts ngt ones). */
double vqs_eval_ndcg(vqs_metric m, const int64_t *gt, const float *gtd, size_t ngt,
                     const int64_t *res, const float *resd, size_t K);

/* RR@K: the reciprocal rank of the true nearest neighbour (gt[0], or a tie
 * with gtd[0]) within the first K results, 0 if absent. */
double vqs_eval_rr(vqs_metric m, const int64_t *gt, const float *gtd, const int64_t *res,
                   const float *resd, size_t K);

/* ---- qrels ---------------------------------------------------------------- */

/* Judgements of nq queries: query q's documents are doc[off[q] .. off[q+1])
 * with grades grade[...] (only grades > 0 are kept: the others change no
 * metric), sorted by grade, best first. */
typedef struct vqs_qrels {
    size_t nq;
    size_t *off;   /* nq + 1 */
    int64_t *doc;
    double *grade;
    size_t nlines; /* judgement lines read (any grade) */
} vqs_qrels;

/* Reads a TSV (or whitespace-separated) file of lines
 * "query-id corpus-id score", an optional first header line
 * "query-id corpus-id score" (any letters there), blank lines and lines
 * starting with '#' ignored. Ids are 0-based row numbers: query-id a row of
 * the query file (< nq_file), corpus-id a row of the base file (< nbase);
 * score a finite number. Lines of queries >= nq (the queries evaluated) are
 * read and checked but dropped. A repeated (query, document) pair is
 * refused. Errors name the file and line: VQS_EFORMAT (not three fields, not
 * a number), VQS_ERANGE (an id out of range), VQS_EINVAL (a duplicate),
 * -errno (cannot read), VQS_ENOMEM. */
int vqs_qrels_read(const char *path, size_t nq_file, size_t nq, size_t nbase, vqs_qrels **out);
void vqs_qrels_free(vqs_qrels *qr);

/* nDCG@K and recall@K of query q's K results (ids, -1 = missing) against
 * its judgements; NaN when q has no relevant document. */
double vqs_eval_qrels_ndcg(const vqs_qrels *qr, size_t q, const int64_t *res, size_t K);
double vqs_eval_qrels_recall(const vqs_qrels *qr, size_t q, const int64_t *res, size_t K);

/* ---- over runs ---------------------------------------------------------------- */

/* Mean and sample standard deviation (n - 1 in the denominator; 0 for
 * n == 1) of the finite values among v[0..n); NaN mean and std when there
 * is none. */
void vqs_eval_mean_std(const double *v, size_t n, double *mean, double *std);

#ifdef __cplusplus
}
#endif
#endif
