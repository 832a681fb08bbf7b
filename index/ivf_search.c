/*
 * ivf_search.c: k nearest neighbours in the compressed index
 * (vqs_index_search): the coarse step, the scan of each probed list through
 * the kernels, the top k and the second stage. Residual queries and the
 * cosine factor: ivf.c.
 *
 * Design decisions:
 * - Scores inside are always "smaller is better" keys: the L2 distance, or
 *   minus the inner product. Kernels compute the codec's own score form
 *   (vqs_codec_query_view), and inner-product results are negated in place
 *   (n negations next to n * code_size table look-ups) rather than keeping
 *   negated copies of every table. Ties go to the lower id, as exact search.
 * - Top-k: a bounded max-heap of (key, id) per query (vqs_topk.h); each
 *   chunk of kernel output is first filtered by a SIMD "below the current
 *   k-th key" pass (select_lt / select_le_u16), so the heap sees few
 *   candidates after the first chunks. Fast scan keeps every code whose
 *   quantised score could still beat the k-th key (the quantisation error
 *   bound of vqs_pq4fs_quantize), then re-scores those exactly with the
 *   float tables: its results equal those of the float table scan.
 * - Two-stage search: the first stage keeps ceil(k * oversampling)
 *   candidates, the second re-scores them against the refine copy (float32:
 *   exact distances; a refine codec: its own scorer) or an external source
 *   (vqs_rerank_source, the storage layer's vectors on disk).
 * - Queries run on the shared thread pool, one query per task, with
 *   per-thread scratch; a batch of IVF queries first gets its probed lists
 *   from one exact BLAS search over the centroids.
 * - Transforms (PCA, ROT, OPQ, HAD) are applied to a batch of queries at
 *   once, a matrix product per stage split over the threads by rows
 *   (vqs_codec_query_forward), wherever one prepared query serves the whole
 *   scan (flat, and IVF without residuals or with inner products): one
 *   query at a time re-read the whole matrix per query (67 MB at d = 4096).
 *   IVF with L2 residuals behind transforms forwards each query once too:
 *   T(q - c) = T(q) - tcent[l] (ivf.c), a subtraction per probed list
 *   where it was a matrix-vector product per list.
 */
#define _GNU_SOURCE
#include "graph_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels_internal.h"
#include "vqs_topk.h"

#define CHUNK 1024 /* codes per kernel call (fast scan: a multiple of 32) */
#define GRAPH_EF_WIDEN 4096 /* graph: the widest beam a filter widens the search to */

static vqs_metric inner_metric(const vqs_index *ix)
{
    return ix->metric == VQS_METRIC_L2 ? VQS_METRIC_L2 : VQS_METRIC_IP;
}

/* The k-th key as the float it was pushed as (vqs_topk_thr). */
static inline float kth_key(const vqs_topk *H) { return (float)vqs_topk_thr(H); }

typedef struct scratch {
    vqs_codec_query *cq, *rq;
    float *q;      /* d: the prepared query */
    float *res;    /* d (or dq, behind transforms): residual query */
    float *out;    /* CHUNK */
    uint16_t *o16; /* CHUNK */
    uint16_t *m16; /* CHUNK: fast scan, group minima (kth_bound) */
    uint32_t *idx; /* CHUNK */
    float *lut;    /* fast scan: key tables (negated for IP), fs_M * 2^bits */
    uint8_t *lut8; /* fast scan: quantised tables */
    /* fast scan: lut and lut8 hold the current view's tables (quantised
     * for float sums up to fs_lim, with fs_bias, fs_scale, fs_err); reset
     * whenever the view changes, kept across the lists of a query that
     * share one prepared query */
    int fs_ok;
    float fs_lim, fs_bias, fs_scale, fs_err;
    uint8_t *code; /* one code */
    uint8_t *sv;   /* fast scan: survivors' codes, CHUNK * (M + 1) / 2 */
    float *qtab;   /* precomputed tables: -2 <q_m, C_mj>, M * ksub */
    float *ltab;   /* and one list's table, M * ksub */
    vqs_topk_item *cands; /* k' */
    float *vecs;   /* rerank source: k' * d */
    uint8_t *rbuf; /* refine codec with the cosine correction: k' codes */
    float *rnrm;   /* and their |x^|, k' */
    int64_t *cids; /* k' */
    size_t cap;    /* k' capacity */
    vqs_graph_scratch gs; /* graph: the beam and visited set */
    uint8_t *gcodes;      /* graph: a node's neighbours' codes, gathered */
    float *gout;          /* and their scores */
} scratch;

static void scratch_free(scratch *s)
{
    vqs_codec_query_free(s->cq);
    vqs_codec_query_free(s->rq);
    free(s->q);
    free(s->res);
    free(s->out);
    free(s->o16);
    free(s->m16);
    free(s->idx);
    free(s->lut);
    free(s->lut8);
    free(s->code);
    free(s->sv);
    free(s->cands);
    free(s->qtab);
    free(s->ltab);
    free(s->vecs);
    free(s->rbuf);
    free(s->rnrm);
    free(s->cids);
    vqs_graph_scratch_free(&s->gs);
    free(s->gcodes);
    free(s->gout);
    memset(s, 0, sizeof *s);
}

typedef struct search_job {
    const vqs_index *ix;
    const vqs_search_params *p;
    const vqs_kernels *K;
    const float *q;
    size_t k, kk; /* results, first-stage candidates */
    size_t nprobe;
    size_t ef;            /* graph: the beam */
    size_t bw;            /* graph on disk: nodes read per hop */
    const int64_t *probe; /* nq * nprobe lists, or NULL (flat) */
    const float *pdist;   /* their coarse scores */
    int rerank;
    const vqs_rerank_source *src;
    int64_t *ids;
    float *dist;
    scratch *sc; /* per thread */
    /* batch-forwarded queries (vqs_codec_query_forward) or NULL: rows of
     * dq floats and their inner-product constants */
    const float *fq, *fcst;
    size_t dq;
} search_job;

static int scratch_init(const search_job *J, scratch *s)
{
    const vqs_index *ix = J->ix;
    size_t d = ix->d;
    if (s->q)
        return 0;
    s->q = malloc(sizeof(float) * d);
    s->res = malloc(sizeof(float) * (ix->tcent && ix->dq > d ? ix->dq : d));
    s->out = malloc(sizeof(float) * CHUNK);
    s->o16 = malloc(sizeof(uint16_t) * CHUNK);
    s->m16 = malloc(sizeof(uint16_t) * CHUNK);
    s->idx = malloc(sizeof(uint32_t) * CHUNK);
    s->code = malloc(ix->cs + 1);
    if (ix->fastscan) {
        size_t K = (size_t)1 << ix->fastscan;
        s->lut = malloc(sizeof(float) * ix->fs_M * K);
        s->lut8 = malloc(((ix->fs_M + 1) / 2 * 2) * K);
        s->sv = malloc((size_t)CHUNK * ix->cs);
    }
    if (ix->graph) {
        size_t R = vqs_graph_degree_cap(ix->graph);
        s->gcodes = malloc(R * ix->cs);
        s->gout = malloc(sizeof(float) * R);
        if (!s->gcodes || !s->gout)
            return vqs_seterr(VQS_ENOMEM, "index_search: scratch");
    }
    if (ix->ptab) {
        s->qtab = malloc(sizeof(float) * ix->pq_M * ix->pq_ksub);
        s->ltab = malloc(sizeof(float) * ix->pq_M * ix->pq_ksub);
        if (!s->qtab || !s->ltab)
            return vqs_seterr(VQS_ENOMEM, "index_search: scratch");
    }
    s->cap = J->kk;
    s->cands = malloc(sizeof(vqs_topk_item) * J->kk);
    s->cids = malloc(sizeof(int64_t) * J->kk);
    if (J->src)
        s->vecs = malloc(sizeof(float) * J->kk * d);
    if (J->rerank && !J->src && ix->rnorms) {
        s->rbuf = malloc(ix->rcs * J->kk);
        s->rnrm = malloc(sizeof(float) * J->kk);
    }
    if (!s->q || !s->res || !s->out || !s->o16 || !s->m16 || !s->idx || !s->code || !s->cands || !s->cids ||
        (ix->fastscan && (!s->lut || !s->lut8 || !s->sv)) || (J->src && !s->vecs) ||
        (J->rerank && !J->src && ix->rnorms && (!s->rbuf || !s->rnrm)))
        return vqs_seterr(VQS_ENOMEM, "index_search: scratch");
    return 0;
}

/* Keeps the candidate if it enters the top k and the filter keeps it (the
 * filter is asked only then). */
static inline void offer(const search_job *J, vqs_topk *H, float key, int64_t id)
{
    if (!vqs_topk_admits(H, key, id))
        return;
    if (J->p && J->p->filter && !J->p->filter(J->p->filter_ctx, id))
        return;
    vqs_topk_push(H, key, id);
}

/* The id at position i of a list (no ids: the id map is the identity). */
static inline int64_t list_id(const int64_t *ids, size_t i) { return ids ? ids[i] : (int64_t)i; }

/* Keeps the candidates of out[0..n) (keys) that beat the heap. */
static void take(const search_job *J, vqs_topk *H, const float *out, size_t n, size_t base,
                 const int64_t *lids, scratch *s)
{
    /* keys equal to the threshold pass too: the (key, id) order below breaks
     * the tie, so the result does not depend on the order of the entries */
    float thr = kth_key(H);
    size_t m = J->K->select_lt(out, n, thr < INFINITY ? nextafterf(thr, INFINITY) : thr, s->idx);
    for (size_t t = 0; t < m; t++)
        offer(J, H, out[s->idx[t]], list_id(lids, base + s->idx[t]));
}

/* The k-th smallest of x[0..n) (1 <= k <= n): two counting passes, on the
 * high byte and then on the low byte within the high byte's bucket. */
static uint16_t kth_u16(const uint16_t *x, size_t n, size_t k)
{
    uint32_t h[256] = {0};
    for (size_t i = 0; i < n; i++)
        h[x[i] >> 8]++;
    unsigned hb = 0;
    for (; hb < 255 && h[hb] < k; hb++)
        k -= h[hb];
    memset(h, 0, sizeof h);
    for (size_t i = 0; i < n; i++)
        if ((unsigned)(x[i] >> 8) == hb)
            h[x[i] & 255]++;
    unsigned lb = 0;
    for (; lb < 255 && h[lb] < k; lb++)
        k -= h[lb];
    return (uint16_t)(hb << 8 | lb);
}

/* A value >= the k-th smallest of x[0..n) (1 <= k <= n), cheaper than the
 * exact one: x in groups of gs (a power of two up to 32, with at least k
 * groups), the k-th smallest of the group minima (k distinct elements are
 * <= it). The minima loop is vectorised by the compiler; m: n / 2 scratch
 * values. A group of 32 is one kernel block of the fast scan. */
static uint16_t kth_bound(const uint16_t *x, size_t n, size_t k, uint16_t *m)
{
    size_t gs = 1;
    while (gs < 32 && 2 * gs * k <= n)
        gs *= 2;
    if (gs == 1)
        return kth_u16(x, n, k);
    size_t G = 0;
    for (size_t g = 0; g < n; g += gs, G++) {
        size_t e = g + gs < n ? g + gs : n;
        uint16_t mn = 65535;
        for (size_t i = g; i < e; i++)
            mn = x[i] < mn ? x[i] : mn;
        m[G] = mn;
    }
    return kth_u16(m, G, k);
}

static int past_deadline(const search_job *J)
{
    return J->p && J->p->deadline > 0 && vqs_now() > J->p->deadline;
}

static int deadline_err(void)
{
    return vqs_seterr(-ETIMEDOUT, "the search ran past its deadline and was stopped");
}

/* The largest key k (before the factor) for which k * f <= thr can hold
 * with f in the list's [nf_lo, nf_hi] (all positive): thr / f is largest at
 * f = nf_lo for thr >= 0 and at nf_hi for thr < 0. Slack of 2^-20 relative
 * covers the float rounding of k * f against the exact product. */
static double unscaled_thr(const ivlist *L, float thr)
{
    if (!(thr < INFINITY))
        return INFINITY;
    double t = thr >= 0 ? (double)thr / L->nf_lo : (double)thr / L->nf_hi;
    return t + fabs(t) * 0x1p-20 + 0x1p-126;
}

/* Scores of n codes stored row after row (cs bytes apart) with the
 * prepared query (view v), plus add: the codec's score form, before any
 * sign or cosine factor. */
static void score_rows(const search_job *J, scratch *s, const vqs_codec_view *v, const uint8_t *codes,
                       size_t n, float add, float *out)
{
    const vqs_kernels *K = J->K;
    size_t cs = J->ix->cs;
    switch (v->kind) {
    case VQS_VIEW_LUT8:
        K->lut8(v->lut, v->m, v->bias + add, codes, cs, n, out);
        break;
    case VQS_VIEW_LUT4:
        K->lut4(v->lut, v->m, v->bias + add, codes, cs, n, out);
        break;
    case VQS_VIEW_SQ:
        if (v->l2)
            K->sq_l2((vqs_elem)v->sq_type, v->q, v->w, v->d, codes, cs, n, out);
        else
            K->sq_ip((vqs_elem)v->sq_type, v->q, v->bias + add, v->d, codes, cs, n, out);
        if (v->l2 && add != 0)
            for (size_t i = 0; i < n; i++)
                out[i] += add;
        break;
    case VQS_VIEW_BIN:
        K->bin_est(v->tab, v->nb, v->cst + add, v->sumv, v->isd, v->l2, codes, cs, n, out);
        break;
    default:
        vqs_codec_query_score(s->cq, n, codes, out);
        if (add != 0)
            for (size_t i = 0; i < n; i++)
                out[i] += add;
    }
}

/* Scans list l with the prepared query (view v); add: constant added to the
 * codec score (IP residual: <q, c>); neg: inner product (keys are -score).
 * With the cosine correction each key is multiplied by the vector's factor
 * (nf) before it meets the heap. -ETIMEDOUT once the search's deadline has
 * passed (checked per chunk). */
static int scan_list(const search_job *J, vqs_topk *H, size_t l, const vqs_codec_view *v,
                     float add, int neg, scratch *s)
{
    const vqs_index *ix = J->ix;
    const ivlist *L = &ix->lists[l];
    const vqs_kernels *K = J->K;
    size_t cs = ix->cs;
    if (L->n == 0)
        return 0;
    if (ix->fastscan && (ix->fs_sq ? v->kind == VQS_VIEW_SQ
                                   : v->kind == (ix->fastscan == VQS_IVF_FS_PQ4 ? VQS_VIEW_LUT4 : VQS_VIEW_LUT8))) {
        size_t M = ix->fs_M, ne = (size_t)1 << ix->fastscan, T = M * ne, bs = ix->fs_bs;
        if (!s->fs_ok && ix->fs_sq) {
            /* scalar codes' key tables: dimension j's term for each code
             * value c, as the codec's scalar score writes it (ref.c,
             * vqs_ref_sq_l2/_ip): (q_j - w_j x(c))^2, or q_j x(c) for inner
             * products (negated), x(c) the code's decoded value */
            float x[256];
            for (size_t c = 0; c < ne; c++) {
                uint8_t b = (uint8_t)c;
                x[c] = vqs_ref_sq_value(v->sq_type, &b, 0);
                if (!isfinite(x[c]))
                    x[c] = 0; /* E4M3's NaN codes, which no encoder writes */
            }
            for (size_t j = 0; j < M; j++) {
                float qj = v->q[j], wj = v->l2 ? v->w[j] : 0, *o = s->lut + j * ne;
                if (v->l2)
                    for (size_t c = 0; c < ne; c++) {
                        float e = qj - wj * x[c];
                        o[c] = e * e;
                    }
                else
                    for (size_t c = 0; c < ne; c++)
                        o[c] = neg ? -(qj * x[c]) : qj * x[c];
            }
            s->fs_lim = NAN;
        } else if (!s->fs_ok) { /* key tables: -lut for inner products (unless already there) */
            if (neg || v->lut != s->lut)
                for (size_t j = 0; j < T; j++)
                    s->lut[j] = neg ? -v->lut[j] : v->lut[j];
            s->fs_lim = NAN;
        }
        float kadd = neg ? -(add + v->bias) : add + v->bias;
        for (size_t base = 0; base < L->n; base += CHUNK) {
            if (past_deadline(J))
                return deadline_err();
            size_t n = L->n - base < CHUNK ? L->n - base : CHUNK;
            const uint8_t *blocks = L->codes + base / bs * ix->fs_block;
            /* (re-)quantise with the current k-th key as the limit: for a
             * new view, when this list needs sums resolved past the limit
             * the tables were quantised for (another list's constant), and
             * whenever the heap has shrunk the useful span of the tables
             * to half of what they were quantised for. With the cosine
             * factors the limit is on the unscaled keys. (Correct with any
             * limit: the lower bound used below holds for every code; the
             * limit only decides how many codes pass it.) */
            float hk = kth_key(H); /* the heap does not change until the offers below */
            double thr = L->nf ? unscaled_thr(L, hk) : hk;
            float now = (float)(thr - kadd), lim = s->fs_lim, fb = s->fs_bias;
            if (!s->fs_ok || lim != lim || now > lim || (now < INFINITY && now > fb && now - fb <= 0.5f * (lim - fb))) {
                s->fs_lim = now;
                if (ix->fastscan == VQS_IVF_FS_PQ4)
                    vqs_pq4fs_quantize(s->lut, M, now, s->lut8, &s->fs_bias, &s->fs_scale, &s->fs_err);
                else
                    vqs_pq8fs_quantize(s->lut, M, now, s->lut8, &s->fs_bias, &s->fs_scale, &s->fs_err);
                s->fs_ok = 1;
            }
            float bias = s->fs_bias, scale = s->fs_scale, err = s->fs_err;
            uint16_t t16 = 65535;
            if (thr < INFINITY) { /* the heap is full: its threshold, before the scan */
                double u = floor((thr - kadd - bias + err) / scale);
                if (u < 0)
                    continue; /* no code of the chunk can beat it */
                t16 = u > 65535 ? 65535 : (uint16_t)u;
            }
            if (ix->fastscan == VQS_IVF_FS_PQ4)
                K->pq4fs_scan(s->lut8, M, blocks, (n + 31) / 32, s->o16);
            else
                K->pq8fs_scan(s->lut8, M, blocks, (n + 63) / 64, s->o16);
            if (!(thr < INFINITY) && J->kk < n && !(J->p && J->p->filter) && scale > 0 && err < INFINITY) {
                /* heap not full yet (the tables were quantised without a
                 * limit, so the two-sided bound holds for every code): the
                 * chunk's kk-th smallest quantised score (or a value above
                 * it, kth_bound) u bounds the unscaled keys of kk codes by
                 * X = kadd + bias + scale u + err, so the final k'-th key
                 * by T = X (times the list's largest cosine factor, or its
                 * smallest when X < 0); a code can still beat T only if
                 * its quantised score is within the same bound of T (as
                 * with the heap's threshold above). Only those are
                 * re-scored, not the whole first chunk. Not with a filter:
                 * the kk codes may be filtered out. */
                double X = kadd + bias + scale * (double)kth_bound(s->o16, n, J->kk, s->m16) + err;
                double T = L->nf ? X * (X >= 0 ? L->nf_hi : L->nf_lo) : X;
                T += fabs(T) * 0x1p-20; /* the float rounding of a key's product */
                double tu = L->nf ? unscaled_thr(L, (float)T) : T;
                double u = floor((tu - kadd - bias + err) / scale) + 1;
                t16 = u >= 65535 ? 65535 : u < 0 ? 0 : (uint16_t)u;
            }
            size_t m = K->select_le_u16(s->o16, n, t16, s->idx);
            if (L->nf && hk < INFINITY) {
                /* t16 had to allow for the list's whole range of cosine
                 * factors; with each survivor's own factor its key is at
                 * least (kadd + bias + scale u - err) * nf: only those that
                 * can still reach the heap's k-th key are re-scored */
                double lim = (double)hk + fabs((double)hk) * 0x1p-20 + 0x1p-126;
                size_t w = 0;
                for (size_t t = 0; t < m; t++) {
                    uint32_t i = s->idx[t];
                    double lo = ((double)kadd + bias + (double)scale * s->o16[i] - err) * L->nf[base + i];
                    if (lo <= lim)
                        s->idx[w++] = i;
                }
                m = w;
            }
            /* exact re-score of the survivors with the float tables */
            if (ix->fastscan == VQS_IVF_FS_PQ4)
                vqs_pq4fs_rescore(s->lut, M, kadd, blocks, s->idx, m, s->out);
            else
                vqs_pq8fs_rescore(s->lut, M, kadd, blocks, s->idx, m, s->out);
            if (L->nf)
                for (size_t t = 0; t < m; t++)
                    s->out[t] *= L->nf[base + s->idx[t]];
            for (size_t t = 0; t < m; t++)
                offer(J, H, s->out[t], list_id(L->ids, base + s->idx[t]));
        }
        return 0;
    }
    for (size_t base = 0; base < L->n; base += CHUNK) {
        if (past_deadline(J))
            return deadline_err();
        size_t n = L->n - base < CHUNK ? L->n - base : CHUNK;
        score_rows(J, s, v, L->codes + base * cs, n, add, s->out);
        if (L->nf) { /* keys -score / |x^|: a loop the compiler vectorises */
            const float *f = L->nf + base;
            float sg = neg ? -1.0f : 1.0f;
            for (size_t i = 0; i < n; i++)
                s->out[i] = sg * s->out[i] * f[i];
        } else if (neg) {
            for (size_t i = 0; i < n; i++)
                s->out[i] = -s->out[i];
        }
        take(J, H, s->out, n, base, L->ids, s);
    }
    return 0;
}

/* ---- graph (VAMANA) --------------------------------------------------------- */

typedef struct gscore {
    const search_job *J;
    scratch *s;
    const vqs_codec_view *v;
    int neg;
} gscore;

/* The beam's scorer: the neighbours' codes gathered into one buffer and
 * scored by the kernel of the codec's view, as a list's chunk is. */
static int graph_score(void *ctx, size_t n, const uint32_t *nodes, float *keys)
{
    const gscore *G = ctx;
    const vqs_index *ix = G->J->ix;
    const ivlist *L = &ix->lists[0];
    scratch *s = G->s;
    size_t cs = ix->cs;
    if (past_deadline(G->J))
        return deadline_err();
    size_t pb = cs < 2048 ? cs : 2048; /* scattered rows: their misses overlap */
    for (size_t i = 0; i < n; i++)
        for (size_t o = 0; o < pb; o += 64)
            __builtin_prefetch(L->codes + (size_t)nodes[i] * cs + o);
    for (size_t i = 0; i < n; i++)
        memcpy(s->gcodes + i * cs, L->codes + (size_t)nodes[i] * cs, cs);
    score_rows(G->J, s, G->v, s->gcodes, n, 0, keys);
    float sg = G->neg ? -1.0f : 1.0f;
    if (L->nf)
        for (size_t i = 0; i < n; i++)
            keys[i] = sg * keys[i] * L->nf[nodes[i]];
    else if (G->neg)
        for (size_t i = 0; i < n; i++)
            keys[i] = -keys[i];
    return 0;
}

/* The first stage over the graph: a beam of ef from the entry, then its
 * live nodes that pass the filter into the candidates (tombstones and
 * filtered nodes route the search but are never results). When fewer than
 * the candidates wanted pass (a selective filter, many tombstones), the
 * search runs again with a beam four times as wide, up to GRAPH_EF_WIDEN
 * (or the asked beam, if larger) or every node (the widened runs add at
 * most a third to the last one). A filter that passes under ~0.5% of the
 * nodes is for the collection's planner to send to its exact path
 * (vqs_coll_plan_threshold: up to 2% of the points); the bound keeps a
 * beam's sorted insertions from growing with the index. */
static int graph_scan(const search_job *J, vqs_topk *H, const vqs_codec_view *v, int neg, scratch *s)
{
    const vqs_index *ix = J->ix;
    const ivlist *L = &ix->lists[0];
    gscore G = {J, s, v, neg};
    vqs_graph_scorer sc = {graph_score, &G};
    size_t nodes = vqs_graph_nodes(ix->graph), ef = J->ef;
    int disk = vqs_graph_on_disk(ix->graph);
    for (;;) {
        int rc = disk ? vqs_graph_beam_disk(ix->graph, &s->gs, ef, J->bw, &sc) : vqs_graph_beam(ix->graph, &s->gs, ef, 0, &sc);
        if (rc)
            return rc;
        H->n = 0;
        for (size_t i = 0; i < s->gs.pl; i++) {
            uint32_t u = s->gs.pn[i];
            if (!vqs_graph_is_dead(ix->graph, u))
                offer(J, H, s->gs.pk[i], list_id(L->ids, u));
        }
        size_t top = J->ef > GRAPH_EF_WIDEN ? J->ef : GRAPH_EF_WIDEN;
        top = top < nodes ? top : nodes;
        if (H->n >= H->k || ef >= top)
            return 0;
        ef = ef > top / 4 ? top : 4 * ef;
    }
}

/* The refine copy of a kept candidate: the heap keeps (key, id) only, the
 * id map knows where the vector is. Rejected: its (list, position) in every
 * heap item, 8 more bytes per item for every search (exact search's too)
 * against kk look-ups per query in the second stage only. */
static const uint8_t *refine_row(const vqs_index *ix, int64_t id)
{
    size_t l = 0, pos = 0;
    vqs_ivf_map_get(ix, id, &l, &pos); /* a candidate is in the index */
    return ix->lists[l].rcodes + pos * ix->rcs;
}

/* Whether one prepared query serves every list of a query's scan: flat,
 * IVF without residuals, and IVF with inner products (a list adds <q, c>);
 * IVF with L2 residuals prepares q - c per list. */
static int one_query_per_scan(const vqs_index *ix)
{
    return !ix->ivf || !ix->by_residual || inner_metric(ix) == VQS_METRIC_IP;
}

/* The scan's one prepared query for query qi (s->q): from the batch's
 * forwarded rows when there are (the handle is created once per thread),
 * else through the transforms here. */
static int prepare_query(const search_job *J, scratch *s, size_t qi, vqs_metric im)
{
    int rc = 0;
    if (!s->cq)
        rc = vqs_codec_query_create(J->ix->codec, im, s->q, &s->cq);
    else if (!J->fq)
        rc = vqs_codec_query_reset(s->cq, s->q);
    if (!rc && J->fq)
        rc = vqs_codec_query_reset_forwarded(s->cq, J->fq + qi * J->dq, J->fcst[qi]);
    return rc;
}

static int search_one(void *ctx, size_t qi, int tid)
{
    const search_job *J = ctx;
    const vqs_index *ix = J->ix;
    scratch *s = &J->sc[tid];
    int rc = scratch_init(J, s);
    if (rc)
        return rc;
    size_t d = ix->d;
    memcpy(s->q, J->q + qi * d, sizeof(float) * d);
    if (ix->metric == VQS_METRIC_COS)
        vqs_normalize_rows(1, d, s->q);
    vqs_metric im = inner_metric(ix);
    int neg = im == VQS_METRIC_IP;
    vqs_topk H = {s->cands, 0, J->kk};
    vqs_codec_view v;
    s->fs_ok = 0; /* a new query: new tables */
    if (!ix->ivf) {
        if ((rc = prepare_query(J, s, qi, im)))
            return rc;
        vqs_codec_query_view(s->cq, &v);
        if ((rc = ix->graph ? graph_scan(J, &H, &v, neg, s) : scan_list(J, &H, 0, &v, 0, neg, s)))
            return rc;
    } else {
        const int64_t *pr = J->probe + qi * J->nprobe;
        const float *pd = J->pdist + qi * J->nprobe;
        int once = one_query_per_scan(ix);
        size_t M = ix->pq_M, ksub = ix->pq_ksub;
        float *ltab = ix->fastscan ? s->lut : s->ltab; /* fast scan: straight into its key tables */
        /* behind transforms (L2 residuals): T(q), forwarded with the batch */
        const float *tq = ix->tcent ? J->fq + qi * J->dq : s->q;
        if (ix->tcent && !ix->ptab && !s->cq && (rc = vqs_codec_query_create(ix->codec, im, s->q, &s->cq)))
            return rc; /* the handle, once per thread (reset from forwarded rows below) */
        if (ix->ptab) {
            /* -2 <q_m, C_mj>, summed over u in order as <q_m, C_mj> was,
             * from the (M, dsub, ksub) copy: loops over j that vectorise */
            size_t ds = ix->pq_dsub;
            for (size_t m = 0; m < M; m++) {
                float *o = s->qtab + m * ksub;
                const float *qm = tq + m * ds, *ct = ix->pq_centT + m * ds * ksub;
                for (size_t j = 0; j < ksub; j++)
                    o[j] = 0;
                for (size_t u = 0; u < ds; u++)
                    for (size_t j = 0; j < ksub; j++)
                        o[j] += qm[u] * ct[u * ksub + j];
                for (size_t j = 0; j < ksub; j++)
                    o[j] *= -2;
            }
            memset(&v, 0, sizeof v);
            v.kind = ksub == 256 ? VQS_VIEW_LUT8 : VQS_VIEW_LUT4;
            v.l2 = 1;
            v.m = M;
            v.lut = ltab;
        }
        if (once) {
            if ((rc = prepare_query(J, s, qi, im)))
                return rc;
            vqs_codec_query_view(s->cq, &v);
        }
        for (size_t p = 0; p < J->nprobe; p++) {
            if (pr[p] < 0)
                continue;
            size_t l = (size_t)pr[p];
            float add = 0;
            if (ix->ptab) {
                const float *t = ix->ptab + l * M * ksub;
                J->K->add_f32(t, s->qtab, M * ksub, ltab);
                v.bias = pd[p]; /* |q - c|^2 */
                if (ix->tcent) /* |T(q) - T(c)|^2: T need not keep distances (PCA) */
                    v.bias = (float)J->K->l2_f64(tq, ix->tcent + l * J->dq, J->dq);
                s->fs_ok = 0; /* this list's tables */
            } else if (ix->tcent) {
                s->fs_ok = 0;
                const float *c = ix->tcent + l * J->dq;
                for (size_t j = 0; j < J->dq; j++)
                    s->res[j] = tq[j] - c[j];
                if ((rc = vqs_codec_query_reset_forwarded(s->cq, s->res, 0)))
                    return rc;
                vqs_codec_query_view(s->cq, &v);
            } else if (!once) {
                s->fs_ok = 0;
                const float *c = ix->centroids + l * d;
                for (size_t j = 0; j < d; j++)
                    s->res[j] = s->q[j] - c[j];
                rc = s->cq ? vqs_codec_query_reset(s->cq, s->res)
                           : vqs_codec_query_create(ix->codec, im, s->res, &s->cq);
                if (rc)
                    return rc;
                vqs_codec_query_view(s->cq, &v);
            } else if (ix->by_residual) {
                add = pd[p]; /* <q, c> */
            }
            if ((rc = scan_list(J, &H, l, &v, add, neg, s)))
                return rc;
        }
    }
    /* second stage */
    size_t nc = H.n;
    vqs_topk_item *c = H.h;
    if (J->rerank && nc) {
        if (J->src) {
            for (size_t i = 0; i < nc; i++)
                s->cids[i] = c[i].id;
            if ((rc = J->src->fetch(J->src->ctx, tid, nc, s->cids, s->vecs)))
                return rc;
        } else if (ix->graph && vqs_graph_on_disk(ix->graph)) {
            /* on disk: the vectors the beam's reads brought */
        } else if (ix->refine == VQS_IVF_REFINE_FLAT) {
            /* the rows are scattered over the refine copy: ask for all of
             * them before scoring the first (their misses overlap) */
            size_t rb = ix->rcs < 2048 ? ix->rcs : 2048;
            for (size_t i = 0; i < nc; i++) {
                const char *r = (const char *)refine_row(ix, c[i].id);
                for (size_t o = 0; o < rb; o += 64)
                    __builtin_prefetch(r + o);
            }
        } else if (ix->refine == VQS_IVF_REFINE_CODEC) {
            rc = s->rq ? vqs_codec_query_reset(s->rq, s->q) : vqs_codec_query_create(ix->rcodec, im, s->q, &s->rq);
            if (rc)
                return rc;
            if (ix->rnorms) { /* |x^| of the candidates' refine codes, row by row */
                for (size_t i = 0; i < nc; i++)
                    memcpy(s->rbuf + i * ix->rcs, refine_row(ix, c[i].id), ix->rcs);
                if ((rc = vqs_codec_norms_compute(ix->rnorms, nc, s->rbuf, ix->rcs, NULL, s->rnrm)))
                    return rc;
            }
        }
        for (size_t i = 0; i < nc; i++) {
            const float *y = NULL;
            float sc;
            if (J->src) {
                y = s->vecs + i * d;
            } else if (ix->graph && vqs_graph_on_disk(ix->graph)) {
                size_t l = 0, pos = 0;
                vqs_ivf_map_get(ix, c[i].id, &l, &pos);
                const uint8_t *yb;
                if ((rc = vqs_graph_disk_vector(ix->graph, &s->gs, (uint32_t)pos, &yb)))
                    return rc;
                y = (const float *)yb;
            } else {
                const uint8_t *r = refine_row(ix, c[i].id);
                if (ix->refine == VQS_IVF_REFINE_FLAT) {
                    y = (const float *)r;
                } else {
                    vqs_codec_query_score(s->rq, 1, r, &sc);
                    if (ix->rnorms && s->rnrm[i] > 0 && isfinite(1.0f / s->rnrm[i]))
                        sc *= 1.0f / s->rnrm[i];
                    c[i].key = neg ? -sc : sc;
                    continue;
                }
            }
            c[i].key = neg ? (float)-J->K->ip_f64(s->q, y, d) : (float)J->K->l2_f64(s->q, y, d);
        }
    }
    vqs_topk_sort(&H);
    int64_t *oid = J->ids + qi * J->k;
    float *od = J->dist ? J->dist + qi * J->k : NULL;
    for (size_t i = 0; i < J->k; i++) {
        if (i < nc) {
            oid[i] = c[i].id;
            if (od)
                od[i] = (float)(neg ? -c[i].key : c[i].key);
        } else {
            oid[i] = -1;
            if (od)
                od[i] = neg ? -INFINITY : INFINITY;
        }
    }
    return 0;
}

#define QBATCH 4096 /* queries per coarse step: bounds the probe arrays */
#define FWD_FLOATS ((size_t)1 << 22) /* forwarded queries per batch: <= 16 MB */
#define FWD_ROWS 32                  /* queries per forwarding task */

typedef struct fwd_job {
    const vqs_index *ix;
    vqs_metric im;
    size_t n, d, dq;
    const float *q; /* n * d (normalised for cosine) */
    float *out, *cst;
} fwd_job;

static int fwd_task(void *ctx, size_t t, int tid)
{
    (void)tid;
    const fwd_job *F = ctx;
    size_t r0 = t * FWD_ROWS, m = F->n - r0 < FWD_ROWS ? F->n - r0 : FWD_ROWS;
    return vqs_codec_query_forward(F->ix->codec, F->im, m, F->q + r0 * F->d, F->out + r0 * F->dq, F->cst + r0);
}

int vqs_index_search(const vqs_index *ix, const vqs_search_params *p, size_t nq, const float *q,
                     size_t k, int64_t *ids, float *dist)
{
    if (!ix || (nq && (!q || !ids)))
        return vqs_seterr(VQS_EINVAL, "index_search: NULL argument");
    if (k == 0 || k > (1u << 20))
        return vqs_seterr(VQS_EINVAL, "index_search: k = %zu (1..1048576)", k);
    if (!ix->trained)
        return vqs_seterr(VQS_EINVAL, "index_search: index '%s' is not trained", ix->spec);
    if (nq == 0)
        return 0;
    int rc = vqs_ivf_check_rows(ix, nq, q, "index_search: query");
    if (rc)
        return rc;
    search_job J = {.ix = ix, .p = p, .K = vqs_kernels_active(), .k = k};
    const vqs_rerank_source *src = p ? p->source : NULL;
    int want = p ? p->rerank : VQS_RERANK_DEFAULT;
    int can = src || ix->refine != VQS_IVF_REFINE_NONE;
    J.rerank = want >= VQS_RERANK_DEFAULT && can; /* OFF: negative */
    if (want >= VQS_RERANK_ON && !can)
        return vqs_seterr(VQS_EINVAL, "index_search: rerank asked for, but '%s' has no refine copy "
                                      "(add ,RFlat or ,Refine(...)) and no source was given", ix->spec);
    J.src = J.rerank ? src : NULL;
    float os = p && p->oversampling > 0 ? p->oversampling : ix->o.oversampling;
    if (os < 1)
        os = 1;
    J.kk = J.rerank ? (size_t)ceil((double)k * os) : k;
    J.nprobe = p && p->nprobe ? p->nprobe : ix->o.nprobe;
    if (J.nprobe > ix->nlist)
        J.nprobe = ix->nlist;
    if (ix->graph) {
        J.ef = p && p->ef ? p->ef : ix->o.ef ? ix->o.ef : vqs_graph_default_ef(ix->graph);
        J.ef = J.ef > J.kk ? J.ef : J.kk;
        if (J.ef > (1u << 20))
            return vqs_seterr(VQS_EINVAL, "index_search: ef = %zu (at most 1048576)", J.ef);
        if (vqs_graph_on_disk(ix->graph)) {
            J.bw = p && p->beam_width ? p->beam_width : vqs_graph_disk_width(ix->graph);
            if (J.bw > vqs_graph_disk_max_width())
                return vqs_seterr(VQS_EINVAL, "index_search: beam_width = %zu (1..%zu)", J.bw,
                                  vqs_graph_disk_max_width());
        }
    }
    int nt = p && p->nthreads > 0 ? p->nthreads : ix->nthreads;
    J.sc = calloc((size_t)nt, sizeof(scratch));
    int64_t *probe = NULL;
    float *pdist = NULL, *qn = NULL, *fq = NULL, *fcst = NULL;
    if (!J.sc)
        return vqs_seterr(VQS_ENOMEM, "index_search");
    /* behind transforms, one prepared query for the whole scan (search_one's
     * `once`) or T(q) for L2 residuals (tcent): forward the batch's queries
     * together */
    int fwd = vqs_codec_has_transform(ix->codec) && (one_query_per_scan(ix) || ix->tcent);
    size_t qbatch = QBATCH;
    if (fwd) {
        J.dq = vqs_codec_query_dim(ix->codec);
        size_t w = J.dq > ix->d ? J.dq : ix->d;
        qbatch = FWD_FLOATS / w > QBATCH ? QBATCH : FWD_FLOATS / w > FWD_ROWS ? FWD_FLOATS / w : FWD_ROWS;
    }
    if (fwd || ix->ivf) {
        size_t b = nq < qbatch ? nq : qbatch;
        if (ix->ivf) {
            probe = malloc(sizeof(int64_t) * b * J.nprobe);
            pdist = malloc(sizeof(float) * b * J.nprobe);
        }
        qn = ix->metric == VQS_METRIC_COS ? malloc(sizeof(float) * b * ix->d) : NULL;
        if (fwd) {
            fq = malloc(sizeof(float) * b * J.dq);
            fcst = malloc(sizeof(float) * b);
        }
        if ((ix->ivf && (!probe || !pdist)) || (ix->metric == VQS_METRIC_COS && !qn) || (fwd && (!fq || !fcst))) {
            rc = vqs_seterr(VQS_ENOMEM, "index_search: %zu queries' probe lists and transforms", b);
            goto done;
        }
    }
    for (size_t q0 = 0; q0 < nq && !rc; q0 += qbatch) {
        size_t n = nq - q0 < qbatch ? nq - q0 : qbatch;
        J.q = q + q0 * ix->d;
        J.ids = ids + q0 * k;
        J.dist = dist ? dist + q0 * k : NULL;
        const float *qq = J.q;
        if (qn) {
            memcpy(qn, J.q, sizeof(float) * n * ix->d);
            vqs_normalize_rows(n, ix->d, qn);
            qq = qn;
        }
        if (fwd) {
            fwd_job F = {ix, inner_metric(ix), n, ix->d, J.dq, qq, fq, fcst};
            if ((rc = vqs_parallel_for(nt, (n + FWD_ROWS - 1) / FWD_ROWS, fwd_task, &F)))
                break;
            J.fq = fq;
            J.fcst = fcst;
        }
        if (ix->ivf) {
            vqs_matrix base = {ix->centroids, ix->nlist, ix->d, ix->d}, qm = {qq, n, ix->d, ix->d};
            vqs_exact_opts eo = {.nthreads = nt, .no_proof = 1};
            if ((rc = vqs_exact_knn(&eo, inner_metric(ix), &base, &qm, J.nprobe, probe, pdist)))
                break;
            J.probe = probe;
            J.pdist = pdist;
        }
        rc = vqs_parallel_for(nt, n, search_one, &J);
    }
done:
    for (int t = 0; t < nt; t++)
        scratch_free(&J.sc[t]);
    free(J.sc);
    free(probe);
    free(pdist);
    free(qn);
    free(fq);
    free(fcst);
    return rc;
}
