/*
 * vqs_index.h: vqs search: the compressed index (a codec from a spec string,
 * ids and codes, optionally an IVF coarse partition and a refine copy for
 * two-stage search), exact k-NN (the ground truth every approximate index is
 * measured against) and recall.
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
#include <stdio.h>

#include "vqs_codebook.h"
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
    int no_proof;    /* 1: the top k of the float scores (re-scored and sorted
                        in double) without the proof or its rescans: for IVF
                        probing, where a near-tie between lists is harmless
                        and outliers in the base (a huge max |x|) would
                        otherwise make every query rescan */
    double *keys;    /* optional out, nq * k: the scores the results are ordered
                        by, computed in double, lower is better (squared L2, -ip,
                        -cos; a missing result +inf): with the ids, what merging
                        the top k of row ranges needs to give this call's answer
                        (vqs gt under MPI) */
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

/* ---- the compressed index ---------------------------------------------- */

typedef struct vqs_index vqs_index;

/* The three-way switches by_residual and cos_norm (vqs_index_opts) and
 * rerank (vqs_search_params) are ints whose zero is the default, so that a
 * zeroed struct means defaults; any negative value is off, any positive
 * value on. */
enum { VQS_RESIDUAL_DEFAULT = 0, VQS_RESIDUAL_ON = 1, VQS_RESIDUAL_OFF = -1 };
enum { VQS_COS_NORM_DEFAULT = 0, VQS_COS_NORM_ON = 1, VQS_COS_NORM_OFF = -1 };
enum { VQS_RERANK_DEFAULT = 0, VQS_RERANK_ON = 1, VQS_RERANK_OFF = -1 };

typedef struct vqs_index_opts {
    int nthreads;          /* 0: vqs_default_threads() */
    uint64_t seed;         /* coarse k-means and codec training */
    vqs_codec_opts codec;  /* codec training options (nthreads/seed 0: inherit) */
    int kmeans_iters;      /* coarse k-means; 0: 20 */
    size_t max_train;      /* training rows used (seeded subsample); 0: all */
    int by_residual;       /* IVF: encode x - centroid; VQS_RESIDUAL_DEFAULT: yes */
    size_t nprobe;         /* default lists probed per query; 0: 16 */
    size_t ef;             /* graph: default search beam; 0: 64 */
    float oversampling;    /* default rerank oversampling; 0: 4 */
    int verbose;           /* progress on stderr */
    /* Cosine only: score a code by <q, x^> / |x^|, x^ its full reconstruction
     * (IVF residual codes: centroid + decoded residual), instead of <q, x^>;
     * so does a Refine(...) codec's re-scoring. 1/|x^| of each code is
     * derived from the code when it is added (4 bytes per vector in memory,
     * nothing on disk); the refine codec's per candidate at search time.
     * VQS_COS_NORM_DEFAULT: on for every codec except 16-bit float scalar
     * codes without PCA (SQfp16, SQbf16: no measurable gain), measured in
     * bench/README.md, unless the environment variable VQS_COS_NORM is 0 or
     * "off" (off for every codec) or 1 or "on" (on for every codec);
     * VQS_COS_NORM_ON; VQS_COS_NORM_OFF (the plain inner product with the
     * reconstruction). */
    int cos_norm;
    /* A graph whose spec token has /D (its adjacency in a file, mapped):
     * the directory of that file, which has no name (O_TMPFILE) and goes
     * with the index; NULL: $TMPDIR, else /var/tmp. Copied at create. */
    const char *graph_dir;
} vqs_index_opts;

/* Re-scoring source for two-stage search backed by something else than the
 * index's own refine copy (the storage layer's vectors on disk). fetch
 * writes the float32 vectors (d each) of n external ids into out; it may be
 * called from several threads at once (thread_id < nthreads of the search).
 * Returns 0 or a negative error, which aborts the search. */
typedef struct vqs_rerank_source {
    void *ctx;
    int (*fetch)(void *ctx, int thread_id, size_t n, const int64_t *ids, float *out);
} vqs_rerank_source;

typedef struct vqs_search_params {
    size_t nprobe;        /* 0: the index default */
    size_t ef;            /* graph (VAMANA): the search beam, Qdrant's hnsw_ef; never
                             below the first-stage candidates; 0: the index default */
    size_t beam_width;    /* graph on disk: nodes read per hop, together (1..64; DiskANN's
                             W, the reads in flight per query); 0: the index default */
    float oversampling;   /* candidates for re-scoring: ceil(k * oversampling); 0: default */
    int rerank;           /* VQS_RERANK_DEFAULT: re-score if a refine copy or source exists; _ON, _OFF */
    const vqs_rerank_source *source; /* NULL: the index's refine copy */
    /* Optional filter, applied during the scan (a rejected point never takes
     * a candidate slot): return non-zero to keep id. Called concurrently. */
    int (*filter)(void *ctx, int64_t id);
    void *filter_ctx;
    int nthreads;         /* 0: the index's */
    double deadline;      /* vqs_now() time past which the search stops and returns -ETIMEDOUT
                             (checked every 1,024 scanned codes); 0: none */
} vqs_search_params;

/* spec: [IVF<nlist>,|VAMANA<R>[/L<beam>][/A<alpha>][/D],]<codec spec>[,RFlat|,Refine(<codec spec>)],
 * e.g. "PQ16x8", "IVF1024,PQ32x4", "IVF4096,SQ8", "OPQ16,PQ16x4,RFlat",
 * "BIN,Refine(SQfp16)", "VAMANA32,SQ8,RFlat". VAMANA: a graph of
 * out-degree R over the codes (index/graph.c), built with a beam of L
 * (>= R; default max(64, 1.5 R)) and RobustPrune's alpha (default 1.2) as vectors are
 * added; removals are tombstones until a fifth of the nodes are, then
 * consolidated. Searched with a beam of vqs_search_params.ef. /D: the
 * adjacency in a file, mapped (vqs_index_opts.graph_dir), the same graph.
 * PQ codes of 4 bits are scanned with the fast-scan kernel. Cosine stores and
 * searches normalised vectors (inner product), dividing each code's inner
 * product by the norm of its reconstruction (vqs_index_opts.cos_norm).
 * Errors: VQS_ESPEC naming the token, VQS_EINVAL, VQS_ENOMEM. */
int vqs_index_create(const char *spec, size_t d, vqs_metric m, const vqs_index_opts *o,
                     vqs_index **out);
/* The graph of a spec: 1 and its degree R, build beam L and alpha (the
 * defaults filled in) if it starts with VAMANA<R>, 0 if it has no graph, or
 * VQS_ESPEC for a malformed graph token. Any pointer may be NULL. */
int vqs_index_graph_params(const char *spec, size_t *R, size_t *L, float *alpha);
/* Whether a spec's graph keeps its adjacency in a file, mapped shared
 * (VAMANA<R>/D: Qdrant's hnsw_config.on_disk; the file: vqs_index_opts.
 * graph_dir): 1, 0 (no /D, or no graph), or VQS_ESPEC. */
int vqs_index_graph_mapped(const char *spec);
void vqs_index_free(vqs_index *ix);

/* Trains the coarse partition and the codecs on n rows (borrowed). */
int vqs_index_train(vqs_index *ix, size_t n, const float *x);
/* vqs_index_train, with the codec's leading stages copied from a trained
 * donor codec where they match (vqs_codec_train_from: same canonical tokens,
 * dimensions and training options) instead of trained again: `vqs eval`
 * trains the PCA of PCA384,SQ8 and PCA384,Flat once. The result equals
 * vqs_index_train's PROVIDED the donor was trained on the rows this index
 * trains its codec on: the same rows, subsample (max_train, seed), metric
 * (cosine normalises) and, for IVF with residuals, the same coarse
 * centroids; typically the codec of an index created with the same
 * [IVF,]transforms prefix, metric and options (vqs_index_codec, copied with
 * vqs_codec_save / vqs_codec_load to outlive it). The refine codec of
 * Refine(...) is always trained. donor: borrowed, may be NULL; *reused (may
 * be NULL): the number of codec stages copied. */
int vqs_index_train_from(vqs_index *ix, const vqs_codec *donor, size_t n, const float *x,
                         int *reused);
/* vqs_index_train over the participants of R (vqs_reducer, e.g. the ranks
 * of an MPI job; NULL: one process): x is this participant's n rows of the
 * training set, and every participant gets the index trained on all of
 * them: the coarse k-means and the k-means of PQ, OPQ and RVQ run one Lloyd
 * step per round on the local rows with the sums and counts added over the
 * participants, PCA and OPQ sum their scatter and products likewise;
 * seeding, subsamples and the other stages see the whole set (as
 * vqs_codec_train_over). The result
 * depends on the participants only through the order of floating-point
 * sums. max_train must be 0. A collective: every participant calls it. */
int vqs_index_train_over(vqs_index *ix, const vqs_reducer *R, size_t n, const float *x);
int vqs_index_is_trained(const vqs_index *ix);

/* Encodes and appends n rows with the given ids (NULL: consecutive ids from
 * the largest so far + 1). All or nothing: a duplicate id (in the batch or
 * already present, VQS_EINVAL naming it), a row with NaN or Inf
 * (VQS_ENONFINITE naming the row) or a failed allocation leaves the index
 * unchanged. */
int vqs_index_add(vqs_index *ix, size_t n, const float *x, const int64_t *ids);

/* The two halves of vqs_index_add, for a caller that stores codes itself
 * (the storage layer) and re-adds them in a later process without
 * re-encoding anything.
 *
 * vqs_index_entry_size: bytes per vector of an encoded entry: the codes
 * (vqs_index_code_size) followed by the refine copy, if the spec has one.
 * vqs_index_encode: entries of n vectors (codes: n * entry_size bytes) and,
 * if lists is not NULL, their IVF list (0 for a flat index); nothing in
 * the index changes (thread-safe against searches). VQS_ENONFINITE names
 * the row. vqs_index_add_encoded: adds entries as vqs_index_add would
 * (ids as there); lists may be NULL only for a flat index; a list out of
 * range is VQS_ERANGE. All or nothing, like vqs_index_add. */
size_t vqs_index_entry_size(const vqs_index *ix);
int vqs_index_encode(const vqs_index *ix, size_t n, const float *x, uint8_t *codes,
                     uint32_t *lists);
int vqs_index_add_encoded(vqs_index *ix, size_t n, const uint8_t *codes, const uint32_t *lists,
                          const int64_t *ids);
/* The inverse of vqs_index_encode: the vectors that the entries of n
 * vectors (codes: n * vqs_index_entry_size bytes; the refine copies are
 * ignored) reconstruct to: the codec's decode, plus the list's centroid for
 * IVF with residual encoding (lists required then; VQS_ERANGE for a list out
 * of range), in the space the index stores (unit vectors for cosine, up to
 * the codec's error). Codecs scored by an estimator (BIN) rank by that
 * estimator, not by this reconstruction. x: n * d floats, written. `vqs
 * eval` measures the reconstruction error (SQNR) and runs its symmetric
 * mode with it. */
int vqs_index_decode(const vqs_index *ix, size_t n, const uint8_t *codes, const uint32_t *lists,
                     float *x);

/* The trained state (spec, metric, d, IVF centroids, codec and refine codec
 * blobs; no ids or codes) as a versioned, CRC-32C-checked blob (*blob
 * malloc'd, caller frees), and an empty trained index back from it (o: run
 * time options such as threads and nprobe; the residual setting comes from
 * the blob). Load errors: VQS_ECORRUPT (truncated, bad checksum, spec and
 * contents disagree), VQS_EVERSION (another format version). */
int vqs_index_save_trained(const vqs_index *ix, void **blob, size_t *len);
int vqs_index_load_trained(const void *blob, size_t len, const vqs_index_opts *o,
                           vqs_index **out);

/* Graph persistence (VAMANA specs), so that a collection reopens its graph
 * instead of building it again. vqs_index_graph_defer: the rows added from
 * now on are stored but not linked into the graph (VQS_EINVAL without a
 * graph). vqs_index_graph_finish ends that: the deferred rows get the graph
 * that f holds (written by vqs_index_graph_write over exactly the ids now in
 * the index, every one of them deferred), or, if f is NULL or does not fit
 * (other ids, degree or format, truncated, a bad checksum), are linked as
 * vqs_index_add would have (*loaded: 1 or 0; may be NULL). The ids decide
 * the fit: a caller whose ids name new vectors when they change (a
 * collection's internal ids) gets a graph only for the same points.
 * vqs_index_graph_write: the graph over the live rows (edges into
 * tombstones are left out). Errors: -errno (the write), VQS_ENOMEM. */
int vqs_index_graph_defer(vqs_index *ix);
int vqs_index_graph_finish(vqs_index *ix, FILE *f, int *loaded);
int vqs_index_graph_write(const vqs_index *ix, FILE *f);

/* The graph on disk (DiskANN's layout, index/graph_disk.c): writes the
 * graph and the refine copy's vectors of a VAMANA<R>,<codec>,RFlat index to
 * path, one block per node (vector, degree, neighbours; nodes packed into
 * 4096-byte sectors), then moves the index there: the adjacency and the
 * refine copy are freed, the codes stay in memory with a cache of the
 * nodes nearest the entry. A search then reads beam_width nodes per hop
 * together (io_uring, O_DIRECT) and re-scores its candidates with the
 * vectors those reads brought. Tombstones are consolidated first. The
 * index is read-only afterwards (add and remove: VQS_EINVAL). Errors:
 * VQS_EINVAL (no graph, no RFlat, already on disk), -errno naming the file;
 * on failure the index is unchanged. */
typedef struct vqs_graph_disk_opts {
    size_t cache_nodes;   /* nodes nearest the entry kept in memory; 0: 1024; (size_t)-1: none */
    size_t beam_width;    /* default nodes read per hop; 0: 4 */
    int pread;            /* 1: pread, not io_uring */
    int buffered;         /* 1: through the page cache (no O_DIRECT) */
} vqs_graph_disk_opts;
int vqs_index_graph_to_disk(vqs_index *ix, const char *path, const vqs_graph_disk_opts *o);
/* Opens a node file written by vqs_index_graph_to_disk as an index on disk
 * (the file also holds the trained state, the codes and the ids): the same
 * answers as the index that wrote it. o (may be NULL): as above; io: as
 * vqs_index_load_trained's. Errors: VQS_ECORRUPT / VQS_EVERSION naming the
 * file and what is wrong, -errno. */
int vqs_index_open_disk(const char *path, const vqs_index_opts *io, const vqs_graph_disk_opts *o, vqs_index **out);
/* "io_uring" or "pread" (with " (buffered)" without O_DIRECT) for an
 * index on disk, else NULL. */
const char *vqs_index_graph_disk_backend(const vqs_index *ix);
/* Nodes an index on disk has read from its file so far (cache hits are
 * not reads); 0 for any other index. */
uint64_t vqs_index_graph_disk_reads(const vqs_index *ix);
/* A graph with /D: the bytes of its adjacency file (*mapped) and how many
 * of them are in memory now (*resident, by mincore). Both 0 for any other
 * index. */
int vqs_index_graph_mapped_stat(const vqs_index *ix, size_t *mapped, size_t *resident);
/* A graph with /D: writes its adjacency back to its file and drops it from
 * the process and the page cache, so that the next searches read it from
 * the disk (a cold start, measured in bench/). Nothing for any other index.
 * Not concurrent with searches or writes. */
int vqs_index_graph_drop_pages(vqs_index *ix);

/* Removes the listed ids; unknown ids are ignored. *removed (may be NULL):
 * how many were present. */
int vqs_index_remove(vqs_index *ix, size_t n, const int64_t *ids, size_t *removed);

/* k nearest neighbours of nq queries. ids, dist: caller buffers of nq * k;
 * results best first (L2: squared distance ascending; IP and COS:
 * similarity descending), ties by lower id, missing results id -1 with
 * distance +inf (L2) or -inf. With re-scoring the distances are exact
 * (float32 refine copy or source) or those of the refine codec. Concurrent
 * searches are safe; add/remove must not run at the same time. */
int vqs_index_search(const vqs_index *ix, const vqs_search_params *p, size_t nq, const float *q,
                     size_t k, int64_t *ids, float *dist);

size_t vqs_index_ntotal(const vqs_index *ix);
size_t vqs_index_d(const vqs_index *ix);
const char *vqs_index_spec(const vqs_index *ix);
vqs_metric vqs_index_metric(const vqs_index *ix);
/* Bytes per vector: codes alone; and everything the index holds per vector
 * (codes, id, refine copy, id map: the allocations as they are, spare
 * capacity included, over the vectors held; before any add, the figure for
 * one vector), plus the fixed overhead (codebooks, centroids, the
 * precomputed search tables) in *fixed. */
size_t vqs_index_code_size(const vqs_index *ix);
double vqs_index_bytes_per_vector(const vqs_index *ix, size_t *fixed);
const vqs_codec *vqs_index_codec(const vqs_index *ix);
/* The IVF centroids (nlist * d floats; residual codes decode to centroid +
 * vqs_codec_decode(code)), valid while ix lives and is not trained again, or
 * NULL for a flat or untrained index. *nlist (may be NULL): the list count
 * (1 for a flat index). */
const float *vqs_index_centroids(const vqs_index *ix, size_t *nlist);

#ifdef __cplusplus
}
#endif

#endif
