/*
 * pq.c: the product quantizer stage, tokens PQ<M>x<nbits> and PQ<M> (nbits
 * 8). The d dimensions are cut into M contiguous subspaces of dsub = d / M;
 * each has its own codebook of ksub = 2^nbits centroids trained by k-means;
 * a vector's code is the M nearest-centroid indices.
 *
 * Design decisions:
 * - Codes are bit-packed LSB-first exactly as FAISS's ProductQuantizer
 *   (PQEncoderGeneric): index m occupies bits [m*nbits, (m+1)*nbits) of the
 *   little-endian bit string, so nbits = 8 is one byte per subquantizer and
 *   nbits = 4 puts subquantizer 2i in the low nibble of byte i. code_size =
 *   ceil(M * nbits / 8). Rejected: one byte per index whatever nbits (wastes
 *   half the space at 4 bits, which is the fast-scan format).
 * - Training: one seeded subsample of at most max_points_per_centroid * ksub
 *   rows shared by all subspaces (as FAISS, whose Clustering objects all use
 *   the same seed and therefore the same rows), then vqs_kmeans per subspace
 *   with seed opts->seed + m. n >= ksub is required (VQS_EINVAL otherwise).
 *   With at least as many subspaces as threads, the subspaces are the
 *   parallel tasks, each a single-threaded k-means: small k-means (PQ32x4:
 *   k = 16 on 4096 x 4) parallelise badly inside, and the centroids are the
 *   same either way (vqs_kmeans gives identical results for every thread
 *   count). Otherwise one subspace at a time, each k-means threaded.
 * - Encoding: a direct nearest-centroid loop for ksub <= 256 (d * ksub flops
 *   per vector, no scratch), vqs_kmeans_assign (BLAS) for larger codebooks.
 * - Queries: a look-up table of M * ksub floats, L2: |q_m - c_{m,j}|^2, IP:
 *   <q_m, c_{m,j}>; a score is the sum of M table entries, for both metrics
 *   (the reference scalar scorer; SIMD scorers live in index/kernels).
 * - Payload: u32 nbits, u64 M, u64 dsub, then M * ksub * dsub floats. load
 *   checks each against the token's values and that every float is finite.
 */
#define _GNU_SOURCE
#include "codebook_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct pq {
    size_t M, nbits, ksub, dsub;
    float *cent; /* centroids, layout (M, ksub, dsub) */
    float *centT; /* the same, layout (M, dsub, ksub): query tables are then
                     built with the inner loop over ksub (vectorised, same
                     summation order per entry as the plain loop) */
} pq;

/* Fills centT from cent (after train and load). */
static int pq_transpose(vqs_stage *s)
{
    pq *P = s->impl;
    size_t M = P->M, ksub = P->ksub, dsub = P->dsub;
    if (!P->centT && !(P->centT = malloc(sizeof(float) * M * ksub * dsub)))
        return vqs_seterr(VQS_ENOMEM, "%s: transposed centroids", s->token);
    for (size_t m = 0; m < M; m++)
        for (size_t j = 0; j < ksub; j++)
            for (size_t t = 0; t < dsub; t++)
                P->centT[(m * dsub + t) * ksub + j] = P->cent[(m * ksub + j) * dsub + t];
    return 0;
}

/* bit packing: vqs_put_bits / vqs_get_bits in codebook_internal.h */

/* ---- training ---------------------------------------------------------------- */

typedef struct sub_job {
    pq *P;
    size_t d, nt;
    const float *x;
    const size_t *idx; /* the sampled rows, or NULL for all */
    vqs_kmeans_opts ko;
    uint64_t seed;
} sub_job;

/* Sub-quantizer m: gathers its columns of the sample, single-threaded
 * k-means (the task itself is one of several running in parallel). */
static int sub_task(void *ctx, size_t m, int tid)
{
    (void)tid;
    sub_job *J = ctx;
    pq *P = J->P;
    size_t dsub = P->dsub;
    float *sub = malloc(sizeof(float) * J->nt * dsub);
    if (!sub)
        return vqs_seterr(VQS_ENOMEM, "PQ: training buffer for %zu x %zu", J->nt, dsub);
    for (size_t i = 0; i < J->nt; i++)
        memcpy(sub + i * dsub, J->x + (J->idx ? J->idx[i] : i) * J->d + m * dsub,
               sizeof(float) * dsub);
    vqs_kmeans_opts ko = J->ko;
    ko.seed = J->seed + m;
    int rc = vqs_kmeans(&ko, J->nt, dsub, sub, P->ksub, P->cent + m * P->ksub * dsub, NULL);
    free(sub);
    return rc;
}

static int pq_alloc(vqs_stage *s);

static int pq_train_centroids(vqs_stage *s, size_t n, const float *x, const vqs_codec_opts *o)
{
    pq *P = s->impl;
    const vqs_reducer *R = o->reduce && o->reduce->size > 1 ? o->reduce : NULL;
    size_t d = s->d_in, M = P->M, dsub = P->dsub, ksub = P->ksub, N = n, first = 0;
    int rc = pq_alloc(s);
    if ((rc = vqs_reduce_layout(R, rc, n, &N, &first))) /* with R: the global rows */
        return rc;
    if (N < ksub)
        return vqs_seterr(VQS_EINVAL, "%s: %zu training vectors; at least %zu (2^%zu) are needed",
                          s->token, N, ksub, P->nbits);
    size_t ppc = o->max_points_per_centroid > 0 ? (size_t)o->max_points_per_centroid : 256;
    size_t nt = N;
    if (ksub <= SIZE_MAX / ppc && N > ppc * ksub)
        nt = ppc * ksub;
    size_t *idx = NULL;
    float *sub = NULL;
    /* seeded subsample of the global rows, sorted for locality; this participant's */
    if (nt < N && !(idx = vqs_kmeans_subset_slice(o->seed ^ 0x5051u, N, nt, first, n, &nt)))
        rc = vqs_seterr(VQS_ENOMEM, "%s: training buffers", s->token);
    else if (!idx)
        nt = n;
    if (!rc && !(sub = malloc(sizeof(float) * (nt ? nt : 1) * dsub)))
        rc = vqs_seterr(VQS_ENOMEM, "%s: training buffers", s->token);
    vqs_kmeans_opts ko = {
        .niter = o->kmeans_iters,
        .nthreads = o->nthreads,
        .max_points_per_centroid = SIZE_MAX, /* already subsampled */
        .verbose = o->verbose > 1,
        .reduce = R,
    };
    int nth = o->nthreads > 0 ? o->nthreads : vqs_default_threads();
    if (!R && !rc && M >= (size_t)nth && nth > 1) {
        /* one single-threaded k-means per sub-space, M of them in parallel
         * (not over participants: their sums must come in one order) */
        free(sub);
        ko.nthreads = 1;
        sub_job J = {P, d, nt, x, idx, ko, o->seed};
        rc = vqs_parallel_for(nth, M, sub_task, &J);
        free(idx);
        return rc;
    }
    if ((rc = vqs_reduce_agree(R, rc))) {
        free(sub);
        free(idx);
        return rc;
    }
    for (size_t m = 0; m < M && !rc; m++) {
        for (size_t i = 0; i < nt; i++)
            memcpy(sub + i * dsub, x + (idx ? idx[i] : i) * d + m * dsub, sizeof(float) * dsub);
        ko.seed = o->seed + m;
        rc = vqs_kmeans(&ko, nt, dsub, sub, ksub, P->cent + m * ksub * dsub, NULL);
    }
    free(sub);
    free(idx);
    return rc;
}

/* ---- encode / decode --------------------------------------------------------- */

static int pq_encode(const vqs_stage *s, size_t n, const float *x, uint8_t *codes)
{
    const pq *P = s->impl;
    size_t d = s->d_in, M = P->M, dsub = P->dsub, ksub = P->ksub, cs = s->code_size;
    memset(codes, 0, n * cs);
    if (ksub <= 256) {
        for (size_t i = 0; i < n; i++)
            for (size_t m = 0; m < M; m++) {
                const float *xm = x + i * d + m * dsub, *c = P->cent + m * ksub * dsub;
                float best = INFINITY;
                uint32_t bi = 0;
                for (size_t j = 0; j < ksub; j++, c += dsub) {
                    float s2 = 0;
                    for (size_t t = 0; t < dsub; t++) {
                        float v = xm[t] - c[t];
                        s2 += v * v;
                    }
                    if (s2 < best) {
                        best = s2;
                        bi = (uint32_t)j;
                    }
                }
                vqs_put_bits(codes + i * cs, m * P->nbits, P->nbits, bi);
            }
        return 0;
    }
    /* large codebooks: BLAS, one subspace at a time */
    float *sub = malloc(sizeof(float) * n * dsub);
    int32_t *a = malloc(sizeof(int32_t) * n);
    for (size_t m = 0; m < M; m++) {
        int rc = -1;
        if (sub && a) {
            for (size_t i = 0; i < n; i++)
                memcpy(sub + i * dsub, x + i * d + m * dsub, sizeof(float) * dsub);
            rc = vqs_kmeans_assign(1, n, dsub, sub, ksub, P->cent + m * ksub * dsub, a, NULL);
        }
        for (size_t i = 0; i < n; i++) {
            uint32_t bi = 0;
            if (rc == 0) {
                bi = (uint32_t)a[i];
            } else { /* out of memory: the slow exact loop */
                const float *xm = x + i * d + m * dsub, *c = P->cent + m * ksub * dsub;
                float best = INFINITY;
                for (size_t j = 0; j < ksub; j++, c += dsub) {
                    float s2 = 0;
                    for (size_t t = 0; t < dsub; t++)
                        s2 += (xm[t] - c[t]) * (xm[t] - c[t]);
                    if (s2 < best) {
                        best = s2;
                        bi = (uint32_t)j;
                    }
                }
            }
            vqs_put_bits(codes + i * cs, m * P->nbits, P->nbits, bi);
        }
    }
    free(sub);
    free(a);
    return 0;
}

static void pq_decode(const vqs_stage *s, size_t n, const uint8_t *codes, float *x)
{
    const pq *P = s->impl;
    size_t d = s->d_in, dsub = P->dsub, ksub = P->ksub, cs = s->code_size;
    for (size_t i = 0; i < n; i++)
        for (size_t m = 0; m < P->M; m++) {
            uint32_t j = vqs_get_bits(codes + i * cs, m * P->nbits, P->nbits);
            memcpy(x + i * d + m * dsub, P->cent + (m * ksub + j) * dsub, sizeof(float) * dsub);
        }
}

/* ---- queries ------------------------------------------------------------------- */

/* state: lut, layout (M, ksub) floats */
static size_t pq_query_size(const vqs_stage *s)
{
    const pq *P = s->impl;
    return sizeof(float) * P->M * P->ksub;
}

static void pq_query_prepare(const vqs_stage *s, vqs_metric m, const float *q, void *state)
{
    const pq *P = s->impl;
    float *lut = state;
    size_t dsub = P->dsub, ksub = P->ksub;
    for (size_t sm = 0; sm < P->M; sm++) {
        const float *qm = q + sm * dsub, *cT = P->centT + sm * dsub * ksub;
        float *L = lut + sm * ksub;
        for (size_t j = 0; j < ksub; j++)
            L[j] = 0;
        for (size_t t = 0; t < dsub; t++) {
            const float *c = cT + t * ksub;
            float qt = qm[t];
            if (m == VQS_METRIC_L2)
                for (size_t j = 0; j < ksub; j++)
                    L[j] += (qt - c[j]) * (qt - c[j]);
            else
                for (size_t j = 0; j < ksub; j++)
                    L[j] += qt * c[j];
        }
    }
}

static void pq_query_score(const vqs_stage *s, const void *state, size_t n, const uint8_t *codes,
                           float *out)
{
    const pq *P = s->impl;
    const float *lut = state;
    size_t M = P->M, ksub = P->ksub, cs = s->code_size;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = codes + i * cs;
        float v = 0;
        if (P->nbits == 8) {
            for (size_t m = 0; m < M; m++)
                v += lut[m * 256 + c[m]];
        } else if (P->nbits == 4) {
            for (size_t m = 0; m < M; m++)
                v += lut[m * 16 + ((c[m >> 1] >> ((m & 1) * 4)) & 15)];
        } else {
            for (size_t m = 0; m < M; m++)
                v += lut[m * ksub + vqs_get_bits(c, m * P->nbits, P->nbits)];
        }
        out[i] = v;
    }
}

static void pq_query_view(const vqs_stage *s, const void *state, vqs_codec_view *v)
{
    const pq *P = s->impl;
    if (P->nbits != 8 && P->nbits != 4)
        return;
    v->kind = P->nbits == 8 ? VQS_VIEW_LUT8 : VQS_VIEW_LUT4;
    v->m = P->M;
    v->lut = state;
    v->bias = 0;
}

/* ---- serialisation ------------------------------------------------------------- */

static int pq_save(const vqs_stage *s, vqs_wbuf *w)
{
    const pq *P = s->impl;
    vqs_wbuf_u32(w, (uint32_t)P->nbits);
    vqs_wbuf_u64(w, P->M);
    vqs_wbuf_u64(w, P->dsub);
    vqs_wbuf_f32(w, P->cent, P->M * P->ksub * P->dsub);
    return 0;
}

/* Centroid storage, allocated on first train or load rather than at
 * construction: a blob's spec must not make the loader allocate more than
 * the blob can fill (the codec fuzzer found that). */
static int pq_train(vqs_stage *s, size_t n, const float *x, const vqs_codec_opts *o)
{
    int rc = pq_train_centroids(s, n, x, o);
    return rc ? rc : pq_transpose(s);
}

static int pq_alloc(vqs_stage *s)
{
    pq *P = s->impl;
    if (P->cent)
        return 0;
    if (!(P->cent = calloc(P->M * P->ksub * P->dsub, sizeof(float))))
        return vqs_seterr(VQS_ENOMEM, "%s: %zu centroids of %zu floats", s->token,
                          P->M * P->ksub, P->dsub);
    return 0;
}

static int pq_load(vqs_stage *s, vqs_rbuf *r)
{
    pq *P = s->impl;
    uint32_t nbits;
    int rc;
    if ((rc = vqs_rbuf_u32(r, &nbits)))
        return rc;
    if (nbits != P->nbits)
        return vqs_seterr(VQS_ECORRUPT, "%s payload: nbits %u, expected %zu", s->token, nbits,
                          P->nbits);
    if ((rc = vqs_rbuf_expect(r, P->M, "PQ M")) || (rc = vqs_rbuf_expect(r, P->dsub, "PQ dsub")))
        return rc;
    size_t nf = P->M * P->ksub * P->dsub;
    if ((rc = vqs_rbuf_need(r, nf * sizeof(float), "PQ centroids")) || (rc = pq_alloc(s)) ||
        (rc = vqs_rbuf_f32(r, P->cent, nf)))
        return rc;
    for (size_t i = 0; i < nf; i++)
        if (!isfinite(P->cent[i]))
            return vqs_seterr(VQS_ECORRUPT, "%s payload: centroid value %zu is not finite",
                              s->token, i);
    return pq_transpose(s);
}

static void pq_destroy(vqs_stage *s)
{
    pq *P = s->impl;
    if (P) {
        free(P->cent);
        free(P->centT);
    }
    free(P);
    s->impl = NULL;
}

static const vqs_stage_ops pq_ops;

int vqs_stage_pq_info(const vqs_stage *s, size_t *M, size_t *nbits, size_t *dsub,
                      const float **centroids)
{
    if (s->ops != &pq_ops || !s->trained)
        return VQS_ENOTFOUND;
    const pq *P = s->impl;
    *M = P->M;
    *nbits = P->nbits;
    *dsub = P->dsub;
    *centroids = P->cent;
    return 0;
}

static const vqs_stage_ops pq_ops = {
    .family = "PQ",
    .is_quantizer = 1,
    .trains_on_slices = 1,
    .train = pq_train,
    .encode = pq_encode,
    .decode = pq_decode,
    .query_size = pq_query_size,
    .query_prepare = pq_query_prepare,
    .query_score = pq_query_score,
    .query_view = pq_query_view,
    .save = pq_save,
    .load = pq_load,
    .destroy = pq_destroy,
};

int vqs_stage_pq_new(const char *tok, const char *next, vqs_stage *s)
{
    (void)next;
    if (strncmp(tok, "PQ", 2) != 0)
        return VQS_ENOTFOUND;
    size_t M, nbits, d = s->d_in;
    if (vqs_spec_parse_mx(tok + 2, &M, &nbits))
        return vqs_seterr(VQS_ESPEC, "%s: expected PQ<M>x<nbits> or PQ<M>", tok);
    if (M == 0)
        return vqs_seterr(VQS_ESPEC, "%s: M must be at least 1", tok);
    if (nbits < 1 || nbits > 16)
        return vqs_seterr(VQS_ESPEC, "%s: nbits = %zu is out of range 1..16", tok, nbits);
    if (d % M != 0)
        return vqs_seterr(VQS_ESPEC, "%s: M = %zu does not divide d = %zu", tok, M, d);
    pq *P = calloc(1, sizeof *P);
    if (!P)
        return vqs_seterr(VQS_ENOMEM, "%s", tok);
    P->M = M;
    P->nbits = nbits;
    P->ksub = (size_t)1 << nbits;
    P->dsub = d / M;
    /* the centroids are allocated by train or load (see pq_alloc) */
    s->ops = &pq_ops;
    s->impl = P;
    s->d_out = d;
    s->code_size = (M * nbits + 7) / 8;
    return 0;
}
