/*
 * rvq.c: the residual vector quantizer stage, tokens RVQ<M>x<nbits> and
 * RVQ<M> (nbits 8). M full-dimensional codebooks of K = 2^nbits centroids;
 * a vector is approximated by the sum of one codeword per codebook,
 * x ~ sum_m c_{m, i_m}, the codes i_m being chosen by beam search.
 *
 * Design decisions:
 * - Training follows FAISS's ResidualQuantizer::train (default flags): stage
 *   m is trained on the residuals of *every* entry of the current beam (n *
 *   beam rows, subsampled to max_points_per_centroid * K), and the beam is
 *   then advanced with the new codebook exactly as the encoder does, so each
 *   codebook is fitted to the residuals the beam encoder really produces.
 *   The training beam is the encoding one (opts->rvq_beam, 0 -> 5 as FAISS's
 *   max_beam_size) and is scored by the same function as the encoder's.
 *   Each stage's k-means is FAISS's progressive-dimension
 *   k-means (vqs_kmeans_progressive in kmeans_progressive.c: PCA, then 10 steps on
 *   growing numbers of leading components, opts->kmeans_iters iterations per
 *   step, 0 -> 10 as FAISS), seeded with k-means++ where FAISS seeds
 *   randomly. Plain full-dimensional Lloyd (vqs_kmeans, 25 iterations) was
 *   tried first and rejected: 5% worse MSE than FAISS on siftsmall RVQ4x8,
 *   the gap growing with every stage. Greedy stage-wise training
 *   (codebook m on greedy residuals) was rejected for the same reason FAISS
 *   does not use it. Training vectors (a seeded subsample): with the
 *   look-up-table search (below) at most max_points_per_centroid * K; the
 *   beam keeps only codes and scores, and each stage's k-means rows (the
 *   residuals of all n * beam entries, or a seeded subset of
 *   max_points_per_centroid * K of them) are rebuilt from the codes. With
 *   the direct search, which keeps every entry's residual, at most max(K,
 *   max_points_per_centroid * K / beam), bounding the beam buffers to about
 *   2 * max_points_per_centroid * K * d floats. Dividing by the beam for
 *   the look-up-table search too cost 1.5% of MSE on siftsmall RVQ8x8 beam
 *   8 (8,192 of the 10,000 vectors: 1.013x FAISS's MSE, all of them
 *   1.002x, 3 seeds each): FAISS trains on every vector.
 * - Encoding: beam search of width B. The beam holds B partial encodings;
 *   each stage scores all B * K extensions, keeps the best B (ties: the
 *   first seen), and the final code is the entry with the smallest score.
 *   B = 1 is greedy. The width is stored in the payload (a stage's encode
 *   has no options). Two ways to score, chosen from B and the codebook size:
 *   - look-up tables (B >= LUT_MIN_BEAM, as FAISS's use_beam_LUT): with s
 *     the entry's partial reconstruction, |x - s - c|^2 = |x - s|^2 + |c|^2
 *     - 2 <x, c> + 2 sum_{m' < m} <c_{m', i_m'}, c>. <x, c> for a stage is
 *     one sgemm per block of vectors, shared by the whole beam; the last sum
 *     adds m rows of the cross-product tables <c_{m',i}, c_{m,j}> (m' < m,
 *     computed at train and load time, not stored: M (M - 1) / 2 * K^2
 *     floats, 7 MB for RVQ8x8). Entries carry their score from stage to
 *     stage. On siftsmall RVQ8x8 beam 8 this encodes 1.9x faster than the
 *     direct search (the beam's sgemm was B times larger); codes are those
 *     of an exact beam search up to float rounding (a test checks against
 *     one in double precision).
 *   - direct (B < LUT_MIN_BEAM, or tables above LUT_MAX_FLOATS, e.g.
 *     RVQ17x8 and beyond or nbits > 12): the entry keeps its residual r;
 *     scores |r|^2 - 2 <r, c> + |c|^2 with one sgemm over the block's B
 *     residuals; kept entries get exact residuals and norms. With B <= 2
 *     this is faster: reading m table rows per entry costs more than the
 *     residual's share of the sgemm.
 *   Both skip blocks of 16 candidates none of which beats the current B-th
 *   best with one vectorised compare. Rejected: computing <s, c> by an
 *   sgemm over the partial reconstructions (that is the direct search).
 * - Norm for L2 scoring: after the M indices (LSB-first bit-packed as PQ),
 *   one byte holds |decode(code)|^2 quantised uniformly to 256 bins over
 *   [lo, hi] (the extreme reconstruction norms of the training set; values
 *   outside are clamped) and decoded at the bin centre, as FAISS's
 *   ST_norm_qint8: the L2 score error is at most (hi - lo) / 512 for vectors
 *   inside the range. code_size = ceil(M * nbits / 8) + 1. Rejected: a
 *   trained 1-d k-means over the norms (FAISS's cqint8: more accurate for
 *   skewed norm distributions, but with a data-dependent error bound; the
 *   norm error is small next to the quantisation error it is added to) and
 *   a float32 norm (4 bytes per vector, 40% of an RVQ8x8 code).
 * - Queries: a table of M * K inner products <q, c_{m,j}>; IP score = the
 *   sum of M entries, L2 score = |q|^2 - 2 * that sum + the decoded norm.
 * - Payload: u32 nbits, u64 M, u64 d, u32 beam, f32 lo, f32 hi, then the
 *   codebooks M * K * d floats. Codeword norms are recomputed on load.
 * - Over participants (o->reduce, vqs_reducer): the training subsample and
 *   each stage's subset of beam entries are drawn over the global row and
 *   entry numbers and taken in that order (one process does the same), so
 *   the participants' rows in order are one process's; each runs the beam
 *   on its own rows, the progressive k-means sums over the participants
 *   (kmeans_progressive.c) and the norm range is the extremes of all. With
 *   every row on one participant the codebooks are one process's bit for
 *   bit (tested); otherwise the order of sums differs, and the stages,
 *   each trained on the beam of the one before, amplify it as a new seed
 *   would.
 */
#define _GNU_SOURCE
#include "codebook_internal.h"

#include <cblas.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ENC_BLOCK 64 /* vectors per beam-search block */
/* The look-up-table beam search keeps <c_{m',i}, c_{m,j}> for every m' < m:
 * M (M - 1) / 2 * K^2 floats (RVQ8x8: 7 MB, RVQ16x8: 31 MB). Above this many
 * floats the direct search is used. */
#define LUT_MAX_FLOATS ((size_t)1 << 23)
/* Narrower beams use the direct search: with one or two entries per vector
 * the sgemm of the residuals costs no more than reading the table rows. */
#define LUT_MIN_BEAM 4

typedef struct rvq {
    size_t M, nbits, K, d;
    int beam;
    float lo, hi;  /* range of |reconstruction|^2 for the norm byte */
    float *cb;     /* codebooks, layout (M, K, d) */
    float *cnorm;  /* |c_{m,j}|^2, layout (M, K) */
    float *cross;  /* NULL (direct search), or <c_{m',i}, c_{m,j}> for m' < m:
                      stage m's block starts at K^2 m (m - 1) / 2, layout (m', i, j) */
} rvq;

/* bit packing: vqs_put_bits / vqs_get_bits in codebook_internal.h */


static size_t index_bytes(const rvq *R) { return (R->M * R->nbits + 7) / 8; }

/* Floats of the cross-product tables, or 0 if the direct search is used:
 * beams narrower than LUT_MIN_BEAM, or tables above LUT_MAX_FLOATS. */
static size_t cross_floats(const rvq *R)
{
    size_t pairs = R->M * (R->M - 1) / 2;
    if (R->beam < LUT_MIN_BEAM || R->K > ((size_t)1 << 12) ||
        (pairs && R->K * R->K > LUT_MAX_FLOATS / pairs))
        return 0;
    return pairs * R->K * R->K;
}

/* (Re)allocates the tables for the current beam width; filled by
 * cross_stage. */
static int cross_alloc(rvq *R, const char *token)
{
    size_t nx = cross_floats(R);
    free(R->cross);
    R->cross = NULL;
    if (nx && !(R->cross = malloc(sizeof(float) * nx)))
        return vqs_seterr(VQS_ENOMEM, "%s: cross-product tables of %zu floats", token, nx);
    return 0;
}

static void codeword_norms(rvq *R, size_t m)
{
    for (size_t j = 0; j < R->K; j++) {
        const float *c = R->cb + (m * R->K + j) * R->d;
        float s = 0;
        for (size_t t = 0; t < R->d; t++)
            s += c[t] * c[t];
        R->cnorm[m * R->K + j] = s;
    }
}

/* Stage m's block of the cross-product tables: one sgemm of the stacked
 * codebooks 0..m-1 (m K x d) against codebook m. */
static void cross_stage(rvq *R, size_t m)
{
    size_t K = R->K, d = R->d;
    if (!R->cross || m == 0)
        return;
    vqs_blas_single_thread();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(m * K), (int)K, (int)d, 1.0f,
                R->cb, (int)d, R->cb + m * K * d, (int)d, 0.0f,
                R->cross + K * K * (m * (m - 1) / 2), (int)K);
}

/* ---- beam search ----------------------------------------------------------- */

/* Scratch for one block of up to ENC_BLOCK vectors with beam width B. */
typedef struct beam_buf {
    float *res[2];   /* (nv, B, d) residuals, current and next; NULL when not needed */
    float *dist[2];  /* (nv, B) |residual|^2 */
    int32_t *cod[2]; /* (nv, B, M) codes */
    float *ip;       /* (nv * B, K) */
    float *acc;      /* K */
    float *cand;     /* B scores */
    int32_t *cidx;   /* B candidates (b * K + j) */
} beam_buf;

static void beam_buf_free(beam_buf *b)
{
    for (int i = 0; i < 2; i++) {
        free(b->res[i]);
        free(b->dist[i]);
        free(b->cod[i]);
    }
    free(b->ip);
    free(b->acc);
    free(b->cand);
    free(b->cidx);
    memset(b, 0, sizeof *b);
}

/* need_res: keep residuals (training, and the direct search) */
static int beam_buf_init(beam_buf *b, const rvq *R, size_t nv, size_t B, int need_res)
{
    memset(b, 0, sizeof *b);
    for (int i = 0; i < 2; i++) {
        if (need_res && !(b->res[i] = malloc(sizeof(float) * nv * B * R->d)))
            goto fail;
        b->dist[i] = malloc(sizeof(float) * nv * B);
        b->cod[i] = malloc(sizeof(int32_t) * nv * B * R->M);
        if (!b->dist[i] || !b->cod[i])
            goto fail;
    }
    b->ip = malloc(sizeof(float) * (ENC_BLOCK < nv ? ENC_BLOCK : nv) * B * R->K);
    b->acc = malloc(sizeof(float) * R->K);
    b->cand = malloc(sizeof(float) * B);
    b->cidx = malloc(sizeof(int32_t) * B);
    if (!b->ip || !b->acc || !b->cand || !b->cidx)
        goto fail;
    return 0;
fail:
    beam_buf_free(b);
    return vqs_seterr(VQS_ENOMEM, "RVQ: beam buffers for %zu vectors, beam %zu", nv, B);
}

/* Inserts candidate (sc, id) into the bnew best so far (cand sorted
 * ascending, *nc of them); ties keep the first seen. */
static inline void beam_keep(float sc, int32_t id, size_t bnew, size_t *nc, float *cand,
                             int32_t *cidx)
{
    if (*nc == bnew && !(sc < cand[*nc - 1]))
        return;
    size_t p = *nc < bnew ? (*nc)++ : *nc - 1;
    while (p > 0 && sc < cand[p - 1]) {
        cand[p] = cand[p - 1];
        cidx[p] = cidx[p - 1];
        p--;
    }
    cand[p] = sc;
    cidx[p] = id;
}

/* How many of x[0..16) are below thr. Not inlined: inlined into the
 * caller's loop, GCC 12 no longer vectorises it. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int count_below(const float *x, float thr)
{
    int n = 0;
    for (size_t l = 0; l < 16; l++)
        n += x[l] < thr;
    return n;
}

/* Offers the scores sc[0..K), ids id0 + j, to beam_keep. Once bnew are
 * kept, blocks of 16 with no score below the current worst are skipped with
 * one vectorisable test (the same outcome as offering them one by one). */
static void beam_offer(const float *sc, size_t K, int32_t id0, size_t bnew, size_t *nc,
                       float *cand, int32_t *cidx)
{
    size_t j = 0;
    for (; j < K && *nc < bnew; j++)
        beam_keep(sc[j], id0 + (int32_t)j, bnew, nc, cand, cidx);
    for (; j + 16 <= K; j += 16) {
        if (count_below(sc + j, cand[bnew - 1]))
            for (size_t l = 0; l < 16; l++)
                beam_keep(sc[j + l], id0 + (int32_t)(j + l), bnew, nc, cand, cidx);
    }
    for (; j < K; j++)
        beam_keep(sc[j], id0 + (int32_t)j, bnew, nc, cand, cidx);
}

/* Writes the bnew kept extensions of vector v: codes, scores and (if res2)
 * the exact residuals r - c. */
static void beam_emit(const rvq *R, size_t m, size_t v, size_t bcur, const float *res,
                      const int32_t *cod, size_t bnew, float *res2, float *dist2, int32_t *cod2,
                      const float *cand, const int32_t *cidx)
{
    size_t d = R->d, K = R->K, M = R->M;
    const float *C = R->cb + m * K * d;
    for (size_t e = 0; e < bnew; e++) {
        size_t b = (size_t)cidx[e] / K, j = (size_t)cidx[e] % K;
        dist2[v * bnew + e] = cand[e];
        int32_t *c2 = cod2 + (v * bnew + e) * M;
        memcpy(c2, cod + (v * bcur + b) * M, sizeof(int32_t) * m);
        c2[m] = (int32_t)j;
        if (res2) {
            const float *r = res + (v * bcur + b) * d, *c = C + j * d;
            float *r2 = res2 + (v * bnew + e) * d;
            for (size_t t = 0; t < d; t++)
                r2[t] = r[t] - c[t];
        }
    }
}

/* One stage of the direct beam search (no cross-product tables) on nv
 * vectors (nv <= ENC_BLOCK rows of ip): (res, dist, cod) with beam bcur ->
 * (res2, dist2, cod2) with beam bnew, using codebook m. Code layout (nv,
 * beam, M). Scores are |r|^2 - 2 <r, c> + |c|^2 with <r, c> from one sgemm
 * over all nv * bcur residuals; the kept entries get exact residuals and
 * exact |r|^2. */
static void beam_step(const rvq *R, size_t m, size_t nv, size_t bcur, const float *res,
                      const float *dist, const int32_t *cod, size_t bnew, float *res2,
                      float *dist2, int32_t *cod2, float *ip, float *acc, float *cand,
                      int32_t *cidx)
{
    size_t d = R->d, K = R->K;
    const float *C = R->cb + m * K * d, *cn = R->cnorm + m * K;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(nv * bcur), (int)K, (int)d, 1.0f,
                res, (int)d, C, (int)d, 0.0f, ip, (int)K);
    for (size_t v = 0; v < nv; v++) {
        size_t nc = 0;
        for (size_t b = 0; b < bcur; b++) {
            const float *row = ip + (v * bcur + b) * K;
            float base = dist[v * bcur + b];
            for (size_t j = 0; j < K; j++)
                acc[j] = base - 2.0f * row[j] + cn[j];
            beam_offer(acc, K, (int32_t)(b * K), bnew, &nc, cand, cidx);
        }
        beam_emit(R, m, v, bcur, res, cod, bnew, res2, dist2, cod2, cand, cidx);
        for (size_t e = 0; e < bnew; e++) {
            const float *r2 = res2 + (v * bnew + e) * d;
            float s = 0;
            for (size_t t = 0; t < d; t++)
                s += r2[t] * r2[t];
            dist2[v * bnew + e] = s;
        }
    }
}

/* One stage of the look-up-table beam search (FAISS's use_beam_LUT) on nv
 * vectors x (nv <= ENC_BLOCK rows of ip). A beam entry with partial
 * reconstruction s = sum_{m' < m} c_{m', i_m'} and score |x - s|^2 extends
 * to |x - s - c|^2 = |x - s|^2 + |c|^2 - 2 <x, c> + 2 sum_{m' < m} <c_{m',
 * i_m'}, c>: <x, c> is one sgemm per block shared by the whole beam, the
 * last sum adds m rows of the cross-product tables. Scores carry over from
 * stage to stage (they are not recomputed from residuals), and no residual
 * is kept. */
static void beam_step_lut(const rvq *R, size_t m, size_t nv, const float *x, size_t bcur,
                          const float *dist, const int32_t *cod, size_t bnew, float *dist2,
                          int32_t *cod2, float *ip, float *acc, float *cand, int32_t *cidx)
{
    size_t d = R->d, K = R->K, M = R->M;
    const float *C = R->cb + m * K * d, *cn = R->cnorm + m * K;
    const float *T = m ? R->cross + K * K * (m * (m - 1) / 2) : NULL;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nv, (int)K, (int)d, -2.0f, x,
                (int)d, C, (int)d, 0.0f, ip, (int)K);
    for (size_t v = 0; v < nv; v++) {
        float *u = ip + v * K; /* |c|^2 - 2 <x, c> */
        for (size_t j = 0; j < K; j++)
            u[j] += cn[j];
        size_t nc = 0;
        for (size_t b = 0; b < bcur; b++) {
            const int32_t *cb = cod + (v * bcur + b) * M;
            float base = dist[v * bcur + b];
            if (m == 0) {
                for (size_t j = 0; j < K; j++)
                    acc[j] = base + u[j];
            } else {
                const float *row = T + (size_t)cb[0] * K;
                for (size_t j = 0; j < K; j++)
                    acc[j] = row[j];
                for (size_t q = 1; q < m; q++) {
                    row = T + (q * K + (size_t)cb[q]) * K;
                    for (size_t j = 0; j < K; j++)
                        acc[j] += row[j];
                }
                for (size_t j = 0; j < K; j++)
                    acc[j] = base + (u[j] + 2.0f * acc[j]);
            }
            beam_offer(acc, K, (int32_t)(b * K), bnew, &nc, cand, cidx);
        }
        beam_emit(R, m, v, bcur, NULL, cod, bnew, NULL, dist2, cod2, cand, cidx);
    }
}

/* Runs all M stages of beam search for nv <= ENC_BLOCK vectors x (the
 * encoder), leaving the beam in bb->dist[*cur], bb->cod[*cur] with width
 * *bw. */
static void beam_run(const rvq *R, size_t nv, const float *x, size_t B, beam_buf *bb, int *cur,
                     size_t *bw)
{
    size_t d = R->d;
    if (!R->cross)
        memcpy(bb->res[0], x, sizeof(float) * nv * d);
    for (size_t v = 0; v < nv; v++) {
        float s = 0;
        for (size_t t = 0; t < d; t++)
            s += x[v * d + t] * x[v * d + t];
        bb->dist[0][v] = s;
    }
    int c = 0;
    size_t bcur = 1;
    for (size_t m = 0; m < R->M; m++) {
        size_t bnew = bcur * R->K < B ? bcur * R->K : B;
        if (R->cross)
            beam_step_lut(R, m, nv, x, bcur, bb->dist[c], bb->cod[c], bnew, bb->dist[!c],
                          bb->cod[!c], bb->ip, bb->acc, bb->cand, bb->cidx);
        else
            beam_step(R, m, nv, bcur, bb->res[c], bb->dist[c], bb->cod[c], bnew, bb->res[!c],
                      bb->dist[!c], bb->cod[!c], bb->ip, bb->acc, bb->cand, bb->cidx);
        c = !c;
        bcur = bnew;
    }
    *cur = c;
    *bw = bcur;
}

/* |sum_m c_{m, codes[m]}|^2, summed in the order decode uses. */
static float recon_norm(const rvq *R, const int32_t *codes, float *tmp)
{
    size_t d = R->d;
    memset(tmp, 0, sizeof(float) * d);
    for (size_t m = 0; m < R->M; m++) {
        const float *c = R->cb + (m * R->K + (size_t)codes[m]) * d;
        for (size_t t = 0; t < d; t++)
            tmp[t] += c[t];
    }
    float s = 0;
    for (size_t t = 0; t < d; t++)
        s += tmp[t] * tmp[t];
    return s;
}

static uint8_t norm_byte(const rvq *R, float nrm)
{
    if (!(R->hi > R->lo))
        return 0;
    float q = floorf((nrm - R->lo) / (R->hi - R->lo) * 256.0f);
    return q <= 0 ? 0 : q >= 255 ? 255 : (uint8_t)q;
}

static float norm_value(const rvq *R, uint8_t b)
{
    return R->lo + ((float)b + 0.5f) * (R->hi - R->lo) / 256.0f;
}

/* Best final beam entry of vector v. */
static const int32_t *best_codes(const rvq *R, const beam_buf *bb, int c, size_t bw, size_t v)
{
    size_t best = 0;
    for (size_t e = 1; e < bw; e++)
        if (bb->dist[c][v * bw + e] < bb->dist[c][v * bw + best])
            best = e;
    return bb->cod[c] + (v * bw + best) * R->M;
}

/* ---- training ---------------------------------------------------------------- */

typedef struct train_job {
    const rvq *R;
    size_t m, n, bcur, bnew;
    const float *x; /* the training vectors (LUT search) */
    beam_buf *bb;
    int c;
    float **ip;
} train_job;

static int train_task(void *ctx, size_t t, int tid)
{
    train_job *J = ctx;
    const rvq *R = J->R;
    size_t d = R->d, K = R->K, v0 = t * ENC_BLOCK;
    size_t nb = J->n - v0 < ENC_BLOCK ? J->n - v0 : ENC_BLOCK, bc = J->bcur, bn = J->bnew;
    float *acc = J->ip[tid] + ENC_BLOCK * bc * K, *cand = acc + K;
    int32_t *cidx = (int32_t *)(cand + bn);
    beam_buf *bb = J->bb;
    int c = J->c;
    if (R->cross)
        beam_step_lut(R, J->m, nb, J->x + v0 * d, bc, bb->dist[c] + v0 * bc,
                      bb->cod[c] + v0 * bc * R->M, bn, bb->dist[!c] + v0 * bn,
                      bb->cod[!c] + v0 * bn * R->M, J->ip[tid], acc, cand, cidx);
    else
        beam_step(R, J->m, nb, bc, bb->res[c] + v0 * bc * d, bb->dist[c] + v0 * bc,
                  bb->cod[c] + v0 * bc * R->M, bn, bb->res[!c] + v0 * bn * d,
                  bb->dist[!c] + v0 * bn, bb->cod[!c] + v0 * bn * R->M, J->ip[tid], acc, cand,
                  cidx);
    return 0;
}

/* The k-means rows of stage m > 0 under the look-up-table search, which
 * keeps no residuals: the residuals x_v - sum_{m' < m} c_{m', i_m'} of all
 * beam entries, or of a seeded random subset of lim of them. The entries
 * are numbered over every participant's (vqs_reducer): ne of them in all,
 * this participant's nt * bcur from e0 on; the subset is drawn over all ne
 * (pick: scratch for ne indices) and taken in entry order, and each
 * participant builds its own. Returns the number of rows built here. */
static size_t beam_residuals(const rvq *R, size_t m, const float *x, size_t nt, size_t bcur,
                             const int32_t *cod, size_t lim, uint64_t seed, size_t *pick,
                             size_t e0, size_t ne, float *out)
{
    size_t d = R->d, K = R->K, M = R->M, mine = nt * bcur, rows = ne < lim ? ne : lim, w = mine;
    if (rows < ne) {
        vqs_rng r;
        vqs_rng_seed(&r, seed);
        for (size_t e = 0; e < ne; e++)
            pick[e] = e;
        for (size_t e = 0; e < rows; e++) {
            size_t j = e + (size_t)(vqs_rng_next(&r) % (ne - e)), t = pick[e];
            pick[e] = pick[j];
            pick[j] = t;
        }
        vqs_sort_sizes(pick, rows);
        w = vqs_subset_keep(pick, rows, e0, mine);
    }
    for (size_t q = 0; q < w; q++) {
        size_t e = rows < ne ? pick[q] : q;
        const int32_t *c = cod + e * M;
        float *o = out + q * d;
        memcpy(o, x + (e / bcur) * d, sizeof(float) * d);
        for (size_t mm = 0; mm < m; mm++) {
            const float *cw = R->cb + (mm * K + (size_t)c[mm]) * d;
            for (size_t t = 0; t < d; t++)
                o[t] -= cw[t];
        }
    }
    return w;
}

static int rvq_alloc(vqs_stage *s);

static int rvq_train(vqs_stage *s, size_t n_mine, const float *x, const vqs_codec_opts *o)
{
    rvq *R = s->impl;
    const vqs_reducer *G = o->reduce && o->reduce->size > 1 ? o->reduce : NULL; /* participants */
    size_t d = R->d, K = R->K, M = R->M, n = n_mine, first = 0; /* n: every participant's rows */
    R->beam = o->rvq_beam > 0 ? o->rvq_beam : 5;
    int rc = rvq_alloc(s);
    if (!rc)
        rc = cross_alloc(R, s->token);
    if ((rc = vqs_reduce_layout(G, rc, n_mine, &n, &first)))
        return rc;
    if (n < K)
        return vqs_seterr(VQS_EINVAL, "%s: %zu training vectors; at least %zu (2^%zu) are needed",
                          s->token, n, K, R->nbits);
    size_t B = (size_t)R->beam;
    size_t ppc = o->max_points_per_centroid > 0 ? (size_t)o->max_points_per_centroid : 256;
    int lut = R->cross != NULL;
    /* training vectors: the look-up-table search keeps no residuals, so the
     * beam can run on ppc * K vectors; the direct search keeps nt * B of
     * them (see the file comment). ntg of all participants' rows, nt here. */
    size_t cap = lut ? ppc * K : ppc * K / B > K ? ppc * K / B : K;
    size_t ntg = n < cap ? n : cap, nt = n_mine, klim = ppc * K; /* k-means rows per stage */
    size_t *idx = NULL, *pick = NULL;
    /* seeded subsample of the global rows, in row order; this participant's */
    if (ntg < n && !(idx = vqs_kmeans_subset_slice(o->seed ^ 0x525651u, n, ntg, first, n_mine, &nt)))
        rc = vqs_seterr(VQS_ENOMEM, "%s: training sample", s->token);
    size_t sfirst = 0, ntg2 = nt; /* this participant's first row of the sample */
    if ((rc = vqs_reduce_layout(G, rc, nt, &ntg2, &sfirst))) {
        free(idx);
        return rc;
    }
    int nth = o->nthreads > 0 ? o->nthreads : vqs_default_threads();
    size_t ntask = (nt + ENC_BLOCK - 1) / ENC_BLOCK;
    if ((size_t)nth > ntask)
        nth = ntask ? (int)ntask : 1;
    double t0 = vqs_now();

    float *xs = NULL, *tmp = NULL, *kx = NULL;
    float **ip = NULL;
    beam_buf bb;
    rc = beam_buf_init(&bb, R, nt ? nt : 1, B, !lut);
    if (!rc && (!(ip = calloc((size_t)nth, sizeof *ip)) || !(tmp = malloc(sizeof(float) * d))))
        rc = vqs_seterr(VQS_ENOMEM, "%s: training buffers", s->token);
    if (!rc && lut) {
        size_t ne = ntg * B, rows = ne < klim ? ne : klim; /* over every participant */
        size_t here = rows < nt * B ? rows : nt * B; /* at most this participant's entries */
        if (!(kx = malloc(sizeof(float) * (here ? here : 1) * d)) ||
            (rows < ne && !(pick = malloc(sizeof(size_t) * ne))))
            rc = vqs_seterr(VQS_ENOMEM, "%s: training residuals", s->token);
    }
    for (int t = 0; !rc && t < nth; t++)
        if (!(ip[t] = malloc(sizeof(float) * (ENC_BLOCK * B * K + K + 2 * B))))
            rc = vqs_seterr(VQS_ENOMEM, "%s: training buffers", s->token);
    const float *xt = x;
    if (!rc && idx) {
        if (!(xs = malloc(sizeof(float) * (nt ? nt : 1) * d)))
            rc = vqs_seterr(VQS_ENOMEM, "%s: training sample", s->token);
        for (size_t i = 0; xs && i < nt; i++)
            memcpy(xs + i * d, x + idx[i] * d, sizeof(float) * d);
        xt = xs;
    }
    if ((rc = vqs_reduce_agree(G, rc)))
        goto done;

    /* beam state: stage 0 starts from the vectors themselves */
    if (!lut)
        memcpy(bb.res[0], xt, sizeof(float) * nt * d);
    for (size_t v = 0; v < nt; v++) {
        float s2 = 0;
        for (size_t t = 0; t < d; t++)
            s2 += xt[v * d + t] * xt[v * d + t];
        bb.dist[0][v] = s2;
    }
    int c = 0;
    size_t bcur = 1;
    vqs_kmeans_opts ko = {
        .niter = o->kmeans_iters,
        .nthreads = o->nthreads,
        .max_points_per_centroid = (size_t)ppc,
        .verbose = o->verbose > 1,
        .reduce = G,
    };
    vqs_blas_single_thread();
    for (size_t m = 0; m < M; m++) {
        vqs_kmeans_stats st;
        ko.seed = o->seed + m;
        const float *kin = lut ? (m ? kx : xt) : bb.res[c];
        size_t kn = nt * bcur;
        if (lut && m)
            kn = beam_residuals(R, m, xt, nt, bcur, bb.cod[c], klim, o->seed ^ (0x7265u + m),
                                pick, sfirst * bcur, ntg * bcur, kx);
        /* a collective (with G) whose failure every participant sees */
        if ((rc = vqs_kmeans_progressive(&ko, kn, d, kin, K, R->cb + m * K * d, &st)))
            goto done;
        codeword_norms(R, m);
        cross_stage(R, m);
        size_t bnew = bcur * K < B ? bcur * K : B;
        train_job J = {R, m, nt, bcur, bnew, xt, &bb, c, ip};
        if ((rc = vqs_reduce_agree(G, vqs_parallel_for(nth, ntask, train_task, &J))))
            goto done;
        c = !c;
        bcur = bnew;
        if (o->verbose) {
            double e = 0;
            for (size_t v = 0; v < nt; v++) {
                float b = INFINITY;
                for (size_t q = 0; q < bcur; q++)
                    b = fminf(b, bb.dist[c][v * bcur + q]);
                e += b;
            }
            if ((rc = vqs_reduce_sum(G, 0, &e, 1)))
                goto done;
            if (!G || G->rank == 0)
                fprintf(stderr, "%s: stage %zu: k-means objective %.6g on %zu residuals, "
                                "encoding MSE %.6g, %.2f s\n",
                        s->token, m, st.final_obj, st.ntrain, e / (double)ntg, vqs_now() - t0);
        }
    }
    /* the norm range from the final codes of the training vectors (the beam
     * run above is exactly the encoder), over every participant's */
    float lo = INFINITY, hi = -INFINITY;
    for (size_t v = 0; v < nt; v++) {
        float nr = recon_norm(R, best_codes(R, &bb, c, bcur, v), tmp);
        lo = fminf(lo, nr);
        hi = fmaxf(hi, nr);
    }
    if (G) {
        float mine[2] = {lo, hi}, *all = malloc(sizeof(float) * 2 * (size_t)G->size);
        rc = all ? 0 : vqs_seterr(VQS_ENOMEM, "%s: norm ranges", s->token);
        if (!(rc = vqs_reduce_gather(G, rc, mine, 1, sizeof mine, all)))
            for (int r = 0; r < G->size; r++) {
                lo = fminf(lo, all[2 * r]);
                hi = fmaxf(hi, all[2 * r + 1]);
            }
        free(all);
        if (rc)
            goto done;
    }
    R->lo = lo;
    R->hi = hi;
done:
    if (ip)
        for (int t = 0; t < nth; t++)
            free(ip[t]);
    free(ip);
    free(tmp);
    free(idx);
    free(xs);
    free(kx);
    free(pick);
    beam_buf_free(&bb);
    return rc;
}

/* ---- encode / decode --------------------------------------------------------- */

static int rvq_encode(const vqs_stage *s, size_t n, const float *x, uint8_t *codes)
{
    const rvq *R = s->impl;
    size_t cs = s->code_size, ib = index_bytes(R), B = (size_t)R->beam;
    memset(codes, 0, n * cs);
    beam_buf bb;
    float *tmp = malloc(sizeof(float) * R->d);
    size_t blk = n < ENC_BLOCK ? n : ENC_BLOCK;
    if (!tmp || beam_buf_init(&bb, R, blk, B, !R->cross)) {
        free(tmp);
        return vqs_seterr(VQS_ENOMEM, "%s: beam-search buffers (beam %zu)", s->token, B);
    }
    for (size_t v0 = 0; v0 < n; v0 += blk) {
        size_t nb = n - v0 < blk ? n - v0 : blk;
        int c;
        size_t bw;
        beam_run(R, nb, x + v0 * R->d, B, &bb, &c, &bw);
        for (size_t v = 0; v < nb; v++) {
            const int32_t *cod = best_codes(R, &bb, c, bw, v);
            uint8_t *out = codes + (v0 + v) * cs;
            for (size_t m = 0; m < R->M; m++)
                vqs_put_bits(out, m * R->nbits, R->nbits, (uint32_t)cod[m]);
            out[ib] = norm_byte(R, recon_norm(R, cod, tmp));
        }
    }
    free(tmp);
    beam_buf_free(&bb);
    return 0;
}

static void rvq_decode(const vqs_stage *s, size_t n, const uint8_t *codes, float *x)
{
    const rvq *R = s->impl;
    size_t d = R->d, cs = s->code_size;
    for (size_t i = 0; i < n; i++) {
        float *xi = x + i * d;
        memset(xi, 0, sizeof(float) * d);
        for (size_t m = 0; m < R->M; m++) {
            size_t j = vqs_get_bits(codes + i * cs, m * R->nbits, R->nbits);
            const float *c = R->cb + (m * R->K + j) * d;
            for (size_t t = 0; t < d; t++)
                xi[t] += c[t];
        }
    }
}

/* ---- queries ------------------------------------------------------------------- */

/* state layout: header, then lut (M, K) floats, then (L2 only) ntab: 256
 * floats, the |reconstruction|^2 each norm byte stands for. IP: lut holds
 * <q, c_{m,j}>, score = sum of lut entries. L2: lut holds -2 <q, c_{m,j}>
 * (an exact scaling), score = |q|^2 + sum of lut entries + ntab[norm byte],
 * which for 8-bit codes is one 256-entry table per code byte (M + 1 bytes):
 * the LUT8 kernel form. */
typedef struct rvq_qhead {
    float qnorm; /* |q|^2 */
    int32_t l2;  /* 1: L2 score, 0: IP */
    float pad[2];
} rvq_qhead;

static size_t rvq_query_size(const vqs_stage *s)
{
    const rvq *R = s->impl;
    return sizeof(rvq_qhead) + sizeof(float) * (R->M * R->K + 256);
}

static void rvq_query_prepare(const vqs_stage *s, vqs_metric m, const float *q, void *state)
{
    const rvq *R = s->impl;
    rvq_qhead *h = state;
    float *lut = (float *)(h + 1), *ntab = lut + R->M * R->K;
    size_t d = R->d;
    float qn = 0;
    for (size_t t = 0; t < d; t++)
        qn += q[t] * q[t];
    h->qnorm = qn;
    h->l2 = m == VQS_METRIC_L2;
    h->pad[0] = h->pad[1] = 0;
    float scale = h->l2 ? -2.0f : 1.0f;
    for (size_t j = 0; j < R->M * R->K; j++) {
        const float *c = R->cb + j * d;
        float v = 0;
        for (size_t t = 0; t < d; t++)
            v += q[t] * c[t];
        lut[j] = scale * v;
    }
    for (unsigned b = 0; b < 256; b++)
        ntab[b] = h->l2 ? norm_value(R, (uint8_t)b) : 0.0f;
}

static void rvq_query_score(const vqs_stage *s, const void *state, size_t n, const uint8_t *codes,
                            float *out)
{
    const rvq *R = s->impl;
    const rvq_qhead *h = state;
    const float *lut = (const float *)(h + 1), *ntab = lut + R->M * R->K;
    size_t cs = s->code_size, ib = index_bytes(R), K = R->K;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = codes + i * cs;
        float v = 0;
        if (R->nbits == 8)
            for (size_t m = 0; m < R->M; m++)
                v += lut[m * 256 + c[m]];
        else
            for (size_t m = 0; m < R->M; m++)
                v += lut[m * K + vqs_get_bits(c, m * R->nbits, R->nbits)];
        out[i] = h->l2 ? h->qnorm + (v + ntab[c[ib]]) : v;
    }
}

static void rvq_query_view(const vqs_stage *s, const void *state, vqs_codec_view *v)
{
    const rvq *R = s->impl;
    const rvq_qhead *h = state;
    if (R->nbits != 8)
        return;
    v->kind = VQS_VIEW_LUT8;
    v->lut = (const float *)(h + 1); /* the norm table follows the M tables */
    v->m = h->l2 ? R->M + 1 : R->M;
    v->bias = h->l2 ? h->qnorm : 0.0f;
}

/* ---- serialisation ------------------------------------------------------------- */

static int rvq_save(const vqs_stage *s, vqs_wbuf *w)
{
    const rvq *R = s->impl;
    vqs_wbuf_u32(w, (uint32_t)R->nbits);
    vqs_wbuf_u64(w, R->M);
    vqs_wbuf_u64(w, R->d);
    vqs_wbuf_u32(w, (uint32_t)R->beam);
    vqs_wbuf_f32(w, &R->lo, 1);
    vqs_wbuf_f32(w, &R->hi, 1);
    vqs_wbuf_f32(w, R->cb, R->M * R->K * R->d);
    return 0;
}

/* Codebook storage, allocated on first train or load rather than at
 * construction: a blob's spec must not make the loader allocate more than
 * the blob can fill (the codec fuzzer found that). */
static int rvq_alloc(vqs_stage *s)
{
    rvq *R = s->impl;
    if (R->cb)
        return 0;
    R->cb = calloc(R->M * R->K * R->d, sizeof(float));
    R->cnorm = calloc(R->M * R->K, sizeof(float));
    if (!R->cb || !R->cnorm) {
        free(R->cb);
        free(R->cnorm);
        R->cb = R->cnorm = NULL;
        return vqs_seterr(VQS_ENOMEM, "%s: %zu codewords of %zu floats", s->token, R->M * R->K,
                          R->d);
    }
    return 0;
}

static int rvq_load(vqs_stage *s, vqs_rbuf *r)
{
    rvq *R = s->impl;
    uint32_t nbits, beam;
    int rc;
    if ((rc = vqs_rbuf_u32(r, &nbits)))
        return rc;
    if (nbits != R->nbits)
        return vqs_seterr(VQS_ECORRUPT, "%s payload: nbits %u, expected %zu", s->token, nbits,
                          R->nbits);
    if ((rc = vqs_rbuf_expect(r, R->M, "RVQ M")) || (rc = vqs_rbuf_expect(r, R->d, "RVQ d")) ||
        (rc = vqs_rbuf_u32(r, &beam)))
        return rc;
    if (beam < 1 || beam > 4096)
        return vqs_seterr(VQS_ECORRUPT, "%s payload: beam width %u", s->token, beam);
    float lohi[2];
    if ((rc = vqs_rbuf_f32(r, lohi, 2)))
        return rc;
    if (!isfinite(lohi[0]) || !isfinite(lohi[1]) || lohi[0] < 0 || lohi[1] < lohi[0])
        return vqs_seterr(VQS_ECORRUPT, "%s payload: norm range [%g, %g]", s->token,
                          (double)lohi[0], (double)lohi[1]);
    size_t nf = R->M * R->K * R->d;
    if ((rc = vqs_rbuf_need(r, nf * sizeof(float), "RVQ codebooks")) || (rc = rvq_alloc(s)) ||
        (rc = vqs_rbuf_f32(r, R->cb, nf)))
        return rc;
    for (size_t i = 0; i < nf; i++)
        if (!isfinite(R->cb[i]))
            return vqs_seterr(VQS_ECORRUPT, "%s payload: codebook value %zu is not finite",
                              s->token, i);
    R->beam = (int)beam;
    R->lo = lohi[0];
    R->hi = lohi[1];
    if ((rc = cross_alloc(R, s->token)))
        return rc;
    for (size_t m = 0; m < R->M; m++) {
        codeword_norms(R, m);
        cross_stage(R, m);
    }
    return 0;
}

static void rvq_destroy(vqs_stage *s)
{
    rvq *R = s->impl;
    if (R) {
        free(R->cb);
        free(R->cnorm);
        free(R->cross);
    }
    free(R);
    s->impl = NULL;
}

static const vqs_stage_ops rvq_ops = {
    .family = "RVQ",
    .trains_on_slices = 1,
    .is_quantizer = 1,
    .train = rvq_train,
    .encode = rvq_encode,
    .decode = rvq_decode,
    .query_size = rvq_query_size,
    .query_prepare = rvq_query_prepare,
    .query_score = rvq_query_score,
    .query_view = rvq_query_view,
    .save = rvq_save,
    .load = rvq_load,
    .destroy = rvq_destroy,
};

int vqs_stage_rvq_new(const char *tok, const char *next, vqs_stage *s)
{
    (void)next;
    if (strncmp(tok, "RVQ", 3) != 0)
        return VQS_ENOTFOUND;
    size_t M, nbits;
    if (vqs_spec_parse_mx(tok + 3, &M, &nbits))
        return vqs_seterr(VQS_ESPEC, "%s: expected RVQ<M>x<nbits> or RVQ<M>", tok);
    if (M < 1 || M > 256)
        return vqs_seterr(VQS_ESPEC, "%s: M = %zu is out of range 1..256", tok, M);
    if (nbits < 1 || nbits > 16)
        return vqs_seterr(VQS_ESPEC, "%s: nbits = %zu is out of range 1..16", tok, nbits);
    size_t d = s->d_in;
    rvq *R = calloc(1, sizeof *R);
    if (!R)
        return vqs_seterr(VQS_ENOMEM, "%s", tok);
    R->M = M;
    R->nbits = nbits;
    R->K = (size_t)1 << nbits;
    R->d = d;
    R->beam = 5;
    /* the codebooks are allocated by train or load (see rvq_alloc) */
    s->ops = &rvq_ops;
    s->impl = R;
    s->d_out = d;
    s->code_size = index_bytes(R) + 1;
    return 0;
}
