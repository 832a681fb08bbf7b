/*
 * codebook_internal.h: the contract between the codec pipeline (codec.c)
 * and the stages (one file per family: transform.c with pca.c, rotation.c
 * and opq.c, scalar.c, binary.c, pq.c, rvq.c; k-means in kmeans*.c).
 *
 * A spec is a list of stages. Transforms map d_in -> d_out; the last stage is
 * the one quantizer, with d_out == d_in and a code_size. codec.c owns the
 * order, the data between stages, multithreading over rows for encode and
 * decode (a stage's encode/decode/score are single-threaded and must be
 * reentrant: the stage is const after training), and serialisation framing.
 * A stage owns its parameters (impl) and its own payload format.
 */
#ifndef VQS_CODEBOOK_INTERNAL_H
#define VQS_CODEBOOK_INTERNAL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vqs_blob.h"
#include "vqs_codebook.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- serialisation buffers: vqs_wbuf / vqs_rbuf (common/vqs_blob.h) --- */

/* ---- bit packing ------------------------------------------------------- */

/* nbits-wide codes packed LSB-first into a little-endian bit string, as
 * FAISS's PQEncoderGeneric: code i occupies bits [i*nbits, (i+1)*nbits).
 * vqs_put_bits ORs into code, which must start zeroed. nbits <= 32. */
static inline void vqs_put_bits(uint8_t *code, size_t bit, size_t nbits, uint32_t v)
{
    while (nbits) {
        size_t byte = bit >> 3, off = bit & 7, take = 8 - off < nbits ? 8 - off : nbits;
        code[byte] |= (uint8_t)((v & ((1u << take) - 1)) << off);
        v >>= take;
        bit += take;
        nbits -= take;
    }
}

static inline uint32_t vqs_get_bits(const uint8_t *code, size_t bit, size_t nbits)
{
    uint32_t v = 0;
    size_t got = 0;
    while (got < nbits) {
        size_t byte = bit >> 3, off = bit & 7, take = 8 - off < nbits - got ? 8 - off : nbits - got;
        v |= (uint32_t)((code[byte] >> off) & ((1u << take) - 1)) << got;
        got += take;
        bit += take;
    }
    return v;
}

/* ---- finiteness ---------------------------------------------------------- */

/* Index of the first NaN or Inf in x[0..n), or n if there is none. Blocks
 * without one are checked with an exponent test the compiler vectorises
 * (a loop that stops at the first bad value is not vectorised). */
static inline size_t vqs_first_nonfinite(const float *x, size_t n)
{
    for (size_t i0 = 0; i0 < n; i0 += 4096) {
        size_t m = n - i0 < 4096 ? n - i0 : 4096;
        uint32_t bad = 0;
        for (size_t i = 0; i < m; i++) {
            uint32_t u;
            memcpy(&u, x + i0 + i, sizeof u);
            bad |= (u & 0x7f800000u) == 0x7f800000u;
        }
        if (bad)
            for (size_t i = 0; i < m; i++)
                if (!isfinite(x[i0 + i]))
                    return i0 + i;
    }
    return n;
}

/* ---- k-means internals (kmeans.c, kmeans_seed.c, kmeans_progressive.c) -- */

/* vqs_kmeans, optionally starting from init (k * d, may alias centroids)
 * instead of seeding (kmeans.c). */
int vqs_kmeans_from(const vqs_kmeans_opts *o, size_t n, size_t d, const float *x, size_t k,
                    float *centroids, vqs_kmeans_stats *stats, const float *init);

/* The initial centroids c (k * d) for x (n rows, n >= k >= 1), drawn with
 * rng: k-means++, or k random points for very large k (kmeans_seed.c). May
 * use nt threads. Errors: VQS_ENOMEM. */
int vqs_kmeans_seed(int nt, vqs_rng *rng, size_t n, size_t d, const float *x, size_t k,
                    float *c);

/* vqs_kmeans_seed over the participants of R: x is this one's n rows,
 * global rows first .. first + n - 1 of N. The rows seeding needs are
 * gathered, so every participant gets the centroids one process would from
 * all N rows and the same rng. rc: as vqs_reduce_sum's. */
int vqs_kmeans_seed_slices(const vqs_reducer *R, int rc, int nt, vqs_rng *rng, size_t n, size_t first,
                           size_t N, size_t d, const float *x, size_t k, float *c);

/* a[0..n) sorted ascending (kmeans_seed.c). */
void vqs_sort_sizes(size_t *a, size_t n);

/* Of the sorted global row numbers idx[0..m), keeps in place, in order,
 * those of the slice [first, first + n), as row numbers of that slice
 * (minus first): a participant's share of a subsample drawn over every
 * participant's rows (vqs_reducer). Returns how many (kmeans_seed.c). */
size_t vqs_subset_keep(size_t *idx, size_t m, size_t first, size_t n);

/* vqs_kmeans_subset(rng seeded with seed, N, m) kept to the slice [first,
 * first + n) (vqs_subset_keep): *kept rows of that slice, in order, as its
 * own row numbers. NULL when out of memory (*kept = 0). */
size_t *vqs_kmeans_subset_slice(uint64_t seed, size_t N, size_t m, size_t first, size_t n, size_t *kept);

/* The first m (<= n) indices of a seeded random permutation of [0, n),
 * sorted; malloc'd (the caller frees), NULL when out of memory
 * (kmeans_seed.c). */
size_t *vqs_kmeans_subset(vqs_rng *r, size_t n, size_t m);

/* FAISS's progressive-dimension k-means (PCA, then k-means on growing
 * numbers of leading components), RVQ's trainer (kmeans_progressive.c).
 * Arguments, determinism and errors as vqs_kmeans. */
int vqs_kmeans_progressive(const vqs_kmeans_opts *o, size_t n, size_t d, const float *x,
                           size_t k, float *centroids, vqs_kmeans_stats *stats);

/* ---- spec tokens -------------------------------------------------------- */

/* Parses "<M>" or "<M>x<nbits>" (p just after the family prefix, e.g. after
 * "PQ" in "PQ16x8"); nbits defaults to 8. Returns 0, or -1 when p is not of
 * that form (or M > 2^20, nbits > 64). Range checks are the caller's. */
int vqs_spec_parse_mx(const char *p, size_t *M, size_t *nbits);

/* ---- stages ------------------------------------------------------------ */

typedef struct vqs_stage vqs_stage;

typedef struct vqs_stage_ops {
    const char *family;  /* "PCA", "ROT", "HAD", "OPQ", "SQ", "PQ", "RVQ", "BIN" */
    int is_quantizer;
    int uses_next;       /* training depends on the next token (OPQ: the PQ's
                            centroid count), so a trained copy is only
                            reusable before the same next token
                            (vqs_codec_train_from) */
    int trains_on_slices; /* train runs with o->reduce on this participant's
                             rows (vqs_reducer); without it codec.c gathers the
                             whole set on each participant and trains with no
                             reducer */

    /* x: n * d_in. Sets whatever impl needs; codec.c sets s->trained after.
     * May use o->nthreads threads. Errors: VQS_EINVAL (too few points: say
     * how many are needed), VQS_ENOMEM. */
    int (*train)(vqs_stage *s, size_t n, const float *x, const vqs_codec_opts *o);

    /* Transforms only. y: n * d_out. reverse: the least-squares inverse,
     * y: n * d_out -> x: n * d_in. */
    void (*apply)(const vqs_stage *s, size_t n, const float *x, float *y);
    void (*reverse)(const vqs_stage *s, size_t n, const float *y, float *x);
    /* Transforms only, optional: the query side of inner products. With
     * reverse written x = B y + mean, writes y = B^T q (d_out floats) and
     * returns <q, mean>, so that <q, reverse(y')> = <y, y'> + <q, mean> for
     * every y'. NULL: apply is already that map and reverse adds no mean
     * (HAD: orthonormal, no mean). It differs from apply for PCA, whose
     * apply subtracts the mean (right for distances, a per-vector error
     * for inner products) and, with W, scales by W where B^T scales by
     * W^-1. */
    double (*ip_query)(const vqs_stage *s, const float *q, float *y);
    /* Optional, with ip_query: the same for n rows at once (q: n * d_in, y:
     * n * d_out), <q_i, mean> added to cst[i]: one matrix product for a
     * block of queries (vqs_codec_query_forward) instead of n matrix-vector
     * products that each read the whole matrix. */
    void (*ip_query_rows)(const vqs_stage *s, size_t n, const float *q, float *y, double *cst);
    /* Transforms only, optional (NULL: never). With reverse written x = B y
     * + mean: y = B^T x for one row (x: d_in, y: d_out), computed the same
     * way on every call (no batch-dependent blocking), and only where B^T B
     * = I, i.e. reverse is an isometry from the output space (PCA without
     * W, ROT, OPQ, HAD without zero padding). Returns 0, or VQS_ENOTFOUND
     * (no detail) when this stage is not such an isometry; x == NULL only
     * asks that question, and may be asked before training. */
    int (*adjoint)(const vqs_stage *s, const float *x, float *y);
    /* ip_query and adjoint both compute B^T v and stay two ops on purpose:
     * neither can be written through the other without changing results. The
     * query map B^T exists for every transform, isometry or not (PCA W: B^T =
     * R W^-1 P; HAD with padding), where adjoint refuses; for the linear
     * stages ip_query is a float sgemv, whose summation order is OpenBLAS's
     * and the CPU's: right for a query, scored once. adjoint sums in double in
     * a fixed order, so a stored reconstruction norm (vqs_codec_norms) gets
     * the same bits in any process on any machine; through sgemv it would not,
     * and prepared IP queries through adjoint's sums would change every
     * score's last bits. For HAD both already are its apply (ip_query NULL,
     * had_adjoint). */

    /* Quantizers only. codes: n * code_size; x: n * d_in. encode may fail
     * only for lack of memory for its scratch (VQS_ENOMEM), never leaving a
     * silently wrong code behind without saying so. */
    int (*encode)(const vqs_stage *s, size_t n, const float *x, uint8_t *codes);
    void (*decode)(const vqs_stage *s, size_t n, const uint8_t *codes, float *x);

    /* Quantizers only. A prepared query is query_size(s) bytes of state
     * (8-byte aligned) written by query_prepare; query_score writes n
     * scores: L2: |q - decode(code)|^2, IP: <q, decode(code)> (or, for
     * estimators such as BIN, an estimate of the distance to the original
     * vector; documented in that stage). q: d_in floats. */
    size_t (*query_size)(const vqs_stage *s);
    void (*query_prepare)(const vqs_stage *s, vqs_metric m, const float *q, void *state);
    void (*query_score)(const vqs_stage *s, const void *state, size_t n, const uint8_t *codes,
                        float *out);
    /* Optional (NULL: VQS_VIEW_NONE): the kernel form of the prepared
     * state (vqs_codec_view in vqs_codebook.h). */
    void (*query_view)(const vqs_stage *s, const void *state, vqs_codec_view *v);

    /* Trained parameters only (the token and dimensions are framed by
     * codec.c). load validates every size against the stage's dimensions and
     * returns VQS_ECORRUPT with a detail on any inconsistency. Constructors
     * must not allocate parameter arrays whose size grows with the spec or d
     * beyond O(d): train and load allocate them, load only after
     * vqs_rbuf_need has confirmed the payload holds them. */
    int (*save)(const vqs_stage *s, vqs_wbuf *w);
    int (*load)(vqs_stage *s, vqs_rbuf *r);
    void (*destroy)(vqs_stage *s); /* frees impl; NULL impl is fine */
} vqs_stage_ops;

struct vqs_stage {
    const vqs_stage_ops *ops;
    char token[32];   /* the spec token, e.g. "PQ16x8" */
    size_t d_in, d_out;
    size_t code_size; /* quantizers */
    int trained;
    void *impl;
};

/* Stage constructors. Each looks at one spec token (whitespace trimmed) for
 * input dimension d_in. A constructor may rewrite s->token into its
 * canonical form (PCA50% -> PCA384), which is what vqs_codec_spec shows. Returns VQS_ENOTFOUND (detail untouched) if the
 * token is not of its family, so codec.c can try the next; VQS_ESPEC with a
 * detail naming the token when it is but is inconsistent ("PQ7x8: M = 7
 * does not divide d = 128"); 0 after filling s->ops, s->d_out, s->code_size
 * and s->impl (s->token and s->d_in are set by codec.c before the call).
 * next_token is the token after this one (NULL if last), for transforms
 * whose training depends on the quantizer (OPQ). */
int vqs_stage_transform_new(const char *tok, const char *next_token, vqs_stage *s); /* transform.c: PCA, ROT, HAD, OPQ */
int vqs_stage_sq_new(const char *tok, const char *next_token, vqs_stage *s);        /* scalar.c */
int vqs_stage_bin_new(const char *tok, const char *next_token, vqs_stage *s);       /* binary.c */
int vqs_stage_pq_new(const char *tok, const char *next_token, vqs_stage *s);        /* pq.c */
int vqs_stage_rvq_new(const char *tok, const char *next_token, vqs_stage *s);       /* rvq.c */

/* PQ stage details for vqs_codec_pq_info (pq.c). VQS_ENOTFOUND if s is not
 * a trained PQ stage. */
int vqs_stage_pq_info(const vqs_stage *s, size_t *M, size_t *nbits, size_t *dsub,
                      const float **centroids);

/* Bits of an SQ stage whose code is one 4- or 8-bit value per dimension,
 * for vqs_codec_sq_table_shape (scalar.c). VQS_ENOTFOUND for any other
 * stage (16- and 32-bit scalar codes too). */
int vqs_stage_sq_bits(const vqs_stage *s, size_t *nbits);

/* PCA stage details for vqs_codec_pca_info (pca.c). VQS_ENOTFOUND if
 * s is not a PCA stage. */
int vqs_stage_pca_info(const vqs_stage *s, const float **eigenvalues, size_t *n,
                       double *retained);

#ifdef __cplusplus
}
#endif
#endif
