/*
 * vqs_index.h: vqs search. For now: exact k-NN (the ground truth every
 * approximate index is measured against) and recall.
 *
 * Distances: VQS_METRIC_L2 returns squared Euclidean distances (smaller is
 * better, as FAISS); VQS_METRIC_IP inner products and VQS_METRIC_COS cosine
 * similarities (larger is better). Results are sorted best first; equal
 * distances are ordered by lower id. Missing results (k > nb) are id -1 with
 * distance +inf (L2) or -inf (IP, COS).
 */
#ifndef VQS_INDEX_H
#define VQS_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "vqs_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A borrowed row-major float matrix: row i is x + i * ld, d values. */
typedef struct vqs_matrix {
    const float *x;
    size_t n, d, ld; /* ld >= d; 0 means d */
} vqs_matrix;

typedef struct vqs_exact_opts {
    int nthreads;  /* 0: vqs_default_threads() */
    size_t qblock; /* queries per BLAS block; 0: 256 */
    size_t bblock; /* base rows per BLAS block; 0: 4096 */
    size_t *rescans; /* optional out: queries whose top k could not be proved
                        from the float scores and were rescanned in double */
} vqs_exact_opts;

/* Exact k nearest neighbours of every query among the base rows.
 *
 * Scores come from blocked BLAS sgemm (L2 as |x|^2 - 2 x.q + |q|^2); the
 * best k + margin candidates of every query are then re-scored in double
 * precision and a float-rounding error bound proves that no row outside the
 * candidates can enter the top k; when it cannot be proved (massive ties)
 * that query is rescanned in double precision. So the result is exact, with
 * ties broken by lower id, whatever the rounding of the BLAS.
 *
 * base, queries: borrowed, same d. ids, dist: caller buffers of
 * queries->n * k (dist may be NULL). Memory is bounded: queries are processed
 * in chunks. Returns 0, VQS_EINVAL (dimension mismatch, k == 0), VQS_ENOMEM,
 * or -errno if threads cannot start. */
int vqs_exact_knn(const vqs_exact_opts *o, vqs_metric m, const vqs_matrix *base,
                  const vqs_matrix *queries, size_t k, int64_t *ids, float *dist);

/* Exact distance (as above, in double precision, rounded to float) from each
 * query q to each of its k listed ids: out[q * k + j] = dist(q, ids[q*k + j]).
 * Ids of -1 give the "missing" distance. VQS_ERANGE for an id outside the
 * base. */
int vqs_exact_distances(vqs_metric m, const vqs_matrix *base, const vqs_matrix *queries,
                        size_t k, const int64_t *ids, float *out);

/* A k-NN result set: nq rows of k ids (and, optionally, distances). */
typedef struct vqs_knn {
    size_t nq, k;
    const int64_t *ids; /* nq * k */
    const float *dist;  /* nq * k, or NULL */
} vqs_knn;

/* k-recall@K: mean over queries of |found among the first K results ∩ the
 * k true nearest| / k. recall@k is vqs_recall(m, gt, res, k, k).
 *
 * Ties: if gt->dist and res->dist are both given (res->dist must be the
 * *true* distances of the returned ids, see vqs_exact_distances), a returned
 * neighbour also counts as correct when its distance ties the k-th true
 * distance (relative tolerance 1e-6), so equally distant points are
 * interchangeable. Duplicated returned ids count once; a query never scores
 * above 1. Requires gt->k >= k, res->k >= K, gt->nq == res->nq; returns a
 * negative error code (VQS_EINVAL) otherwise. */
double vqs_recall(vqs_metric m, const vqs_knn *gt, const vqs_knn *res, size_t k, size_t K);

#ifdef __cplusplus
}
#endif
#endif
