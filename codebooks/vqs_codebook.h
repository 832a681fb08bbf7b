/*
 * vqs_codebook.h: the quantizer core. Pure math: no I/O, no LMDB, no HTTP.
 *
 * A codec is built from a spec string (grammar in README.md), read left to
 * right: zero or more transforms, then exactly one quantizer.
 *
 *   SQfp16   SQfp8   PCA256,SQfp8   PCA384R,SQint8   OPQ16,PQ16x8
 *   PQ32x4   RVQ8x8   ROT,BIN   PCA50%,Flat (float32 after a PCA to d/2)
 *
 * Like FAISS's codecs, a vqs codec is batched: train(n, x), encode(n, x,
 * codes), decode(n, codes, x), code_size. For search it also prepares a
 * query once (look-up tables for PQ/RVQ, a converted query for scalar and
 * binary codes) and scores codes against it. A trained codec serialises to a
 * versioned byte blob with a checksum.
 *
 * Threads: a codec is immutable after training; encode, decode and queries
 * may run concurrently from any number of threads.
 */
#ifndef VQS_CODEBOOK_H
#define VQS_CODEBOOK_H

#include <stddef.h>
#include <stdint.h>

#include "vqs_common.h"
#include "vqs_float.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- training over several processes ------------------------------------ */

/* A reducer joins the trainings of `size` participants (the ranks of an MPI
 * job: tools/mpi.c) that each hold a slice of one training set, participant
 * r's rows following participant r - 1's. Given one in vqs_kmeans_opts or
 * vqs_codec_opts, training treats its rows as this participant's slice:
 * k-means runs each Lloyd step on the local rows and sums the centroid sums
 * and counts over the participants; a stage that cannot train on slices
 * gets the whole set gathered. The result does not depend on size beyond
 * the order of floating-point sums. Every participant must make the same
 * calls in the same order (the operations are collectives). Each operation
 * takes the caller's rc so far and agrees on it first: if any
 * participant's rc is non-zero, all return non-zero (the failing one its
 * own error) and nothing else is done, so a participant that fails keeps
 * the others from waiting for it. */
typedef struct vqs_reducer {
    int rank, size;
    void *ctx;
    /* v[0..n) becomes the element-wise sum over the participants, the same
     * bits on every participant. */
    int (*sum)(void *ctx, int rc, double *v, size_t n);
    /* Every participant's `rows` rows of `width` bytes, concatenated in
     * participant order into all (the caller sizes it: the sum of rows). */
    int (*gather)(void *ctx, int rc, const void *mine, size_t rows, size_t width, void *all);
} vqs_reducer;

/* rc, or the reducer's agreement on it (R NULL: rc). */
int vqs_reduce_agree(const vqs_reducer *R, int rc);
/* R->sum / R->gather; R NULL (one participant): rc, and the gather copies
 * mine to all. */
int vqs_reduce_sum(const vqs_reducer *R, int rc, double *v, size_t n);
int vqs_reduce_gather(const vqs_reducer *R, int rc, const void *mine, size_t rows, size_t width, void *all);
/* The total rows over the participants and the first global row of this
 * one's slice of n rows (R NULL: n and 0). */
int vqs_reduce_layout(const vqs_reducer *R, int rc, size_t n, size_t *total, size_t *first);

/* ---- options ---------------------------------------------------------- */

typedef struct vqs_codec_opts {
    int nthreads;               /* 0: vqs_default_threads() */
    uint64_t seed;              /* all randomness (k-means init, rotations) */
    int kmeans_iters;           /* 0: 25 */
    int max_points_per_centroid;/* k-means subsample; 0: 256 */
    int rvq_beam;               /* RVQ encoding beam width; 0: 5 (FAISS's default); 1: greedy */
    float sq_clip;              /* SQ8/SQ4 (and fp8) ranges: the two-sided quantile in (0.5, 1],
                                   e.g. 0.999 clips the top and bottom 0.1% per dimension;
                                   1 = min/max; 0 = default: min/max, except SQ4, whose
                                   range is chosen per dimension from the data (the MSE-
                                   best of min/max and clipped ranges; scalar.c) */
    int verbose;                /* progress and per-iteration objective on stderr */
    const vqs_reducer *reduce;  /* the stages' view of vqs_codec_train_over's reducer;
                                   cleared at create */
} vqs_codec_opts;

/* ---- codec ------------------------------------------------------------ */

typedef struct vqs_codec vqs_codec;

/* Parses spec for input dimension d. o: NULL or zeroed for defaults (copied).
 * Errors: VQS_ESPEC with a detail naming the offending token (unknown token,
 * PQ M not dividing d, nbits out of range, PCA larger than d, a quantizer
 * that is not last, ...), VQS_EINVAL, VQS_ENOMEM. */
int vqs_codec_create(const char *spec, size_t d, const vqs_codec_opts *o, vqs_codec **out);
void vqs_codec_free(vqs_codec *c);

size_t vqs_codec_d(const vqs_codec *c);          /* input dimension */
size_t vqs_codec_code_size(const vqs_codec *c);  /* bytes per encoded vector */
const char *vqs_codec_spec(const vqs_codec *c);  /* canonical spec; valid while c lives */
int vqs_codec_is_trained(const vqs_codec *c);

/* Trains every stage in order on x (n * d floats, borrowed). Codecs that need
 * no training (SQfp16, SQbf16, ROT) accept n == 0. Errors: VQS_EINVAL (n too
 * small for the spec, with the count needed), VQS_ENONFINITE, VQS_ENOMEM. */
int vqs_codec_train(vqs_codec *c, size_t n, const float *x);

/* vqs_codec_train, except that leading stages which a trained donor codec
 * already has are copied from it instead of trained again (a PCA shared by
 * PCA384,SQ8 and PCA384,Flat is computed once). Stage i is copied when every
 * stage before it was, its canonical token (PCA50% and PCA384 are the same
 * at d = 768), input and output dimensions equal the donor's stage i, both
 * codecs have the same training options (seed, kmeans_iters,
 * max_points_per_centroid, rvq_beam, sq_clip; not nthreads or verbose), and,
 * for a stage whose training depends on the next token (OPQ: the PQ's
 * centroid count), the next tokens are equal. The quantizer is copied only
 * when the whole spec matches; then nothing is trained. A copy goes through
 * the stage's own serialisation, so it is exact: the result is what
 * vqs_codec_train(c, n, x) gives PROVIDED the donor was trained on the same
 * n rows, which only the caller can know. donor: borrowed, may be NULL
 * (plain training). *reused (may be NULL): the number of stages copied.
 * Errors: those of vqs_codec_train. */
int vqs_codec_train_from(vqs_codec *c, const vqs_codec *donor, size_t n, const float *x,
                         int *reused);

/* vqs_codec_train_from over the participants of R (vqs_reducer; NULL: one
 * process): x is this participant's n rows, every participant gets the
 * codec trained on all of them. PCA (its mean and scatter), OPQ (its
 * k-means steps and Procrustes products), PQ (its k-means) and RVQ (its
 * progressive k-means; each participant runs the beam of its own rows)
 * train on the slices with sums over the participants; the other stages
 * (SQ, BIN, ROT, HAD) on the rows gathered from every participant. */
int vqs_codec_train_over(vqs_codec *c, const vqs_reducer *R, const vqs_codec *donor, size_t n, const float *x,
                         int *reused);

/* codes: n * code_size bytes. x: n * d floats. VQS_EINVAL if not trained. */
int vqs_codec_encode(const vqs_codec *c, size_t n, const float *x, uint8_t *codes);
int vqs_codec_decode(const vqs_codec *c, size_t n, const uint8_t *codes, float *x);

/* A prepared query. metric: VQS_METRIC_L2 (score = squared distance to the
 * reconstruction, smaller is better) or VQS_METRIC_IP (inner product with the
 * reconstruction, larger is better); cosine is IP on normalised vectors and
 * is the index's business.
 * IP: the score is <q, vqs_codec_decode(code)> in the input space for every
 * spec (up to float rounding, and BIN's estimator): the query goes through
 * the transpose of each transform's decoder map, without the PCA mean, and
 * <q, mean> is added to every score. (FAISS subtracts the PCA mean from the
 * query as from the data, which adds a per-vector error to every score.)
 * L2: the query is transformed like the data and the score is the squared
 * distance in the quantizer's space: |q - decode(code)|^2 for orthonormal
 * transforms (ROT, HAD, OPQ, PCA<d>), that minus a per-query constant (the
 * query's energy outside the kept subspace) for PCA<N < d> without W, and the
 * distance in the whitened space for PCA...W. */
typedef struct vqs_codec_query vqs_codec_query;
int vqs_codec_query_create(const vqs_codec *c, vqs_metric m, const float *q,
                           vqs_codec_query **out);
/* out: n scores for n codes. Reference (scalar) scorer; fast kernels are in
 * index/kernels. */
int vqs_codec_query_score(const vqs_codec_query *q, size_t n, const uint8_t *codes, float *out);
void vqs_codec_query_free(vqs_codec_query *q);

/* What a fast scan kernel needs to score codes against a prepared query
 * (index/kernels): the same score as vqs_codec_query_score (constants such
 * as IP's <q, mean> included, in bias or, for BIN, in cst), written as one
 * of a few array forms. Pointers are into the query's state and stay valid
 * while the query lives (and until it is prepared again).
 *   LUT8: score = bias + sum_{j < m} lut[j * 256 + code[j]]
 *   LUT4: score = bias + sum_{j < m} lut[j * 16 + nibble j], nibble j =
 *         (code[j / 2] >> 4 * (j & 1)) & 15
 *   SQ:   l2: score = sum_{j < d} (q[j] - w[j] * v_j)^2;
 *         ip: score = bias + sum_{j < d} q[j] * v_j,
 *         v_j the value of element j of the code as type sq_type
 *         (vqs_elem, vqs_float.h)
 *   BIN:  the BIN estimator over nb bit bytes with table tab (nb * 256),
 *         constants cst, sumv, isd and l2 (binary.c)
 *   NONE: no kernel form; use vqs_codec_query_score. */
enum { VQS_VIEW_NONE = 0, VQS_VIEW_LUT8, VQS_VIEW_LUT4, VQS_VIEW_SQ, VQS_VIEW_BIN };
typedef struct vqs_codec_view {
    int kind;
    int l2;           /* the score is a squared distance (else an inner product) */
    float bias;
    size_t m;         /* LUT8/LUT4: tables */
    const float *lut; /* LUT8: m * 256, LUT4: m * 16 */
    vqs_elem sq_type; /* SQ */
    size_t d;
    const float *q, *w; /* SQ: d each (w: l2 only) */
    const float *tab;   /* BIN: nb * 256 */
    size_t nb;
    float cst, sumv, isd;
} vqs_codec_view;
int vqs_codec_query_view(const vqs_codec_query *q, vqs_codec_view *v);

/* Prepares an existing query again for another vector (same codec and
 * metric), without allocating: what an IVF scan does once per probed list. */
int vqs_codec_query_reset(vqs_codec_query *q, const float *vec);

/* A block of queries through the codec's transforms at once (a matrix
 * product per linear stage, where one query at a time re-reads the whole
 * matrix for every query): out: n rows of vqs_codec_query_dim(c) floats,
 * cst: n inner-product constants (0 for l2). vqs_codec_query_reset_forwarded
 * then prepares a query from its row. The same scores as
 * vqs_codec_query_reset up to float rounding (BLAS's order of summation).
 * Single-threaded (BLAS too): callers split the rows over their threads. */
size_t vqs_codec_query_dim(const vqs_codec *c);
int vqs_codec_has_transform(const vqs_codec *c);
int vqs_codec_query_forward(const vqs_codec *c, vqs_metric m, size_t n, const float *q, float *out,
                            float *cst);
int vqs_codec_query_reset_forwarded(vqs_codec_query *q, const float *in, float cst);

/* Serialises a trained codec: *blob is malloc'd (caller frees), *len bytes.
 * Layout: magic "VQSCODEC", format version, spec, d, options, stage
 * payloads, CRC-32C of everything before it. */
int vqs_codec_save(const vqs_codec *c, void **blob, size_t *len);
/* Loads a blob (borrowed). Errors: VQS_ECORRUPT (truncated, bad magic, bad
 * checksum, inconsistent payload), VQS_EVERSION (a newer format). */
int vqs_codec_load(const void *blob, size_t len, vqs_codec **out);

/* Eigenvalues (variances, descending, length d) of the first PCA stage, and
 * the fraction of the variance its output keeps. VQS_ENOTFOUND if none. */
int vqs_codec_pca_info(const vqs_codec *c, const float **eigenvalues, size_t *n,
                       double *retained);

/* The codebooks of a codec whose quantizer is PQ, in the space after its
 * transforms (M * dsub = vqs_codec_query_dim), for an index's precomputed
 * tables: *centroids has layout (M, 2^nbits, dsub), valid while c lives.
 * VQS_ENOTFOUND for any other codec. */
int vqs_codec_pq_info(const vqs_codec *c, size_t *M, size_t *nbits, size_t *dsub,
                      const float **centroids);
/* The shape of a codec whose quantizer (last stage) is PQ, after any
 * transforms, trained or not: its M sub-quantizers of nbits bits ("PQ16" is
 * M 16, nbits 8). An index chooses its fast-scan code layout from it.
 * VQS_ENOTFOUND for any other quantizer, VQS_EINVAL for a NULL argument. */
int vqs_codec_pq_shape(const vqs_codec *c, size_t *M, size_t *nbits);
/* The shape of a codec whose quantizer is a scalar quantizer with 4- or
 * 8-bit codes (SQ4, SQint4: 4; SQ8, SQint8, SQ8s, SQfp8, SQe4m3, SQe5m2,
 * SQfp8t: 8), after any transforms, trained or not: its dimension d and
 * nbits. Its codes are those of a PQ d x nbits with one-dimensional
 * sub-quantizers (4-bit: dimension j in byte j / 2, low nibble first), and
 * a code's score is a sum of one table entry per dimension, so an index can
 * scan them with its fast scan. VQS_ENOTFOUND for any other quantizer,
 * VQS_EINVAL for a NULL argument. */
int vqs_codec_sq_table_shape(const vqs_codec *c, size_t *d, size_t *nbits);

/* ---- reconstruction norms ---------------------------------------------- */

/* |offset_j + decode(code)| for codes an index holds (cosine scoring divides
 * a code's inner product by it). offsets: noff rows of d floats (an IVF
 * index's centroids for residual codes; noff 0: one zero offset), copied
 * into the handle as needed, so the caller's array need not outlive it.
 *
 * Every norm is computed row by row, so a code gets the same bits in any
 * batch, in any thread, in any process (vqs_codec_decode does not promise
 * that: a transform's blocked sgemm rounds a row differently depending on
 * the batch's size and the row's place in it). When every transform's
 * reverse x = B y + mean is an isometry (B^T B = I: PCA without W, ROT, OPQ,
 * HAD without padding, or no transform) the norm is taken in the
 * quantizer's space, O(d_q) per code: with y = the quantizer's decode and m
 * the reverse of y = 0, |o + B y + m|^2 = |y|^2 + 2 <B^T (o + m), y> +
 * |o + m|^2, B^T (o + m) and |o + m|^2 precomputed per offset (noff * d_q
 * floats). Otherwise (PCA W, HAD with zero padding) each code is reversed
 * through the transforms on its own, O(d d_q) per code.
 *
 * create: VQS_EINVAL (NULL codec, untrained codec, offsets NULL with noff >
 * 0), VQS_ENOMEM. compute: norms[i] for codes + i * stride (stride >=
 * code_size) and offset which[i] (which NULL: offset 0); VQS_ERANGE naming
 * the row for which[i] >= noff (nothing written is meaningful then); may use
 * the codec's threads. bytes: memory the handle holds. The handle borrows c,
 * which must outlive it; compute may run concurrently. */
typedef struct vqs_codec_norms vqs_codec_norms;
int vqs_codec_norms_create(const vqs_codec *c, size_t noff, const float *offsets,
                           vqs_codec_norms **out);
int vqs_codec_norms_compute(const vqs_codec_norms *h, size_t n, const uint8_t *codes,
                            size_t stride, const uint32_t *which, float *norms);
size_t vqs_codec_norms_bytes(const vqs_codec_norms *h);
void vqs_codec_norms_free(vqs_codec_norms *h);

/* ---- reconstruction error --------------------------------------------- */

/* One definition of a codec's error, used by `vqs codec`, `vqs eval` and the
 * tests. Over n rows of x (n * d) and their reconstructions xr:
 *   mse      = sum |x_i - xr_i|^2 / n             (per vector, squared L2)
 *   variance = sum |x_i - mean|^2 / n             (centred signal power)
 *   rel_mse  = mse / variance
 *   sqnr_db  = -10 log10(rel_mse)                 (= 10 log10(variance / mse))
 * The signal power is centred (per-dimension mean removed): a constant offset
 * carries no information and an uncentred power would flatter codecs on data
 * far from the origin. sqnr_db is +Inf when mse is 0. Sums in double. */
typedef struct vqs_codec_error {
    double mse, variance, rel_mse, sqnr_db;
} vqs_codec_error;
int vqs_codec_error_of(size_t n, size_t d, const float *x, const float *xr, vqs_codec_error *e);

/* ---- k-means ---------------------------------------------------------- */

typedef struct vqs_kmeans_opts {
    int niter;                  /* 0: 25 */
    int nthreads;               /* 0: default */
    uint64_t seed;
    size_t max_points_per_centroid; /* subsample to k * this; 0: 256; SIZE_MAX: all */
    int spherical;              /* normalise centroids after each update */
    int verbose;
    const vqs_reducer *reduce;  /* NULL, or x is this participant's slice (vqs_reducer):
                                   the sample, the seeds and each update are those of the
                                   whole set; centroids and stats are global */
} vqs_kmeans_opts;

typedef struct vqs_kmeans_stats {
    int niter;          /* iterations run */
    double obj[256];    /* objective (sum of squared distances on the training
                           sample) after each of the first 256 iterations */
    double final_obj;
    size_t nsplit;      /* empty clusters repaired */
    size_t ntrain;      /* points used after subsampling */
    double seconds;
} vqs_kmeans_stats;

/* k-means++ initialisation, Lloyd iterations with BLAS assignment.
 * centroids: k * d floats, written. stats: may be NULL. Deterministic for a
 * given seed and thread count. VQS_EINVAL if n < k. */
int vqs_kmeans(const vqs_kmeans_opts *o, size_t n, size_t d, const float *x, size_t k,
               float *centroids, vqs_kmeans_stats *stats);

/* Nearest centroid of every row (squared L2). assign: n, dist: n or NULL. */
int vqs_kmeans_assign(int nthreads, size_t n, size_t d, const float *x, size_t k,
                      const float *centroids, int32_t *assign, float *dist);

/* (The exact fp16 / bfloat16 / fp8 conversions the SQ codecs use are in
 * common/vqs_float.h.) */

#ifdef __cplusplus
}
#endif
#endif
