/*
 * h_query.c: the search variants: POST .../points/query (nearest, by point
 * id, mmr, recommend, fusion, nested prefetch), query/batch, query/groups,
 * recommend (and its batch and groups), search/groups.
 *
 * Design decisions:
 * - One request is a tree of stages (the query and its prefetches). A stage
 *   without prefetch searches the index; a stage with prefetch re-scores the
 *   union of its prefetches' candidates exactly, from their stored vectors
 *   (nearest, recommend), or fuses their ranked lists (rrf, dbsf). Every
 *   stage yields a ranked list of candidates (internal id, point id, score,
 *   and a key that is larger for better, so Euclid distances sort too).
 * - The formulas are Qdrant's (lib/segment and lib/collection): RRF
 *   1 / ((pos + 1) / weight + k - 1), k = 2 by default; DBSF normalises each
 *   list to mean ± 3 sample standard deviations and sums; MMR with lambda =
 *   1 - diversity picks greedily by lambda * sim(q, x) - (1 - lambda) *
 *   max sim(x, picked) and returns the nearest score; recommend
 *   average_vector searches avg(pos) + avg(pos) - avg(neg) (avg(pos) with
 *   no negatives), best_score scores sigmoid(max pos) if max pos > max neg
 *   else -sigmoid(max neg) with sigmoid(x) = 0.5 (x / (1 + |x|) + 1),
 *   sum_scores Σ sim(pos) - Σ sim(neg). Similarities are Qdrant's raw
 *   scores: cosine, dot product, and for Euclid minus the squared distance.
 * - Example and query point ids are excluded from the results, as Qdrant
 *   does (a must_not has_id on the referenced ids).
 * - The root's filter applies to every prefetch too (Qdrant merges it in);
 *   a prefetch's own filter only to it. The filters run during the scan.
 * - Work is bounded: every index search is charged (limit, and limit ×
 *   oversampling re-scored) and every stored vector read is charged as a
 *   candidate, against --max-results and --max-candidates; the deadline is
 *   checked between searches and every 64 vector reads. Rejected: checking
 *   the whole cost before any search (the tree's cost depends on how many
 *   candidates the prefetches find); this stops at the first stage that
 *   would pass the budget, after bounded work.
 * - best_score and sum_scores are not a single nearest search: vqs scores
 *   exactly the union of the nearest neighbours of each positive example
 *   and of the average_vector query (pool: 4 × (limit + offset) each,
 *   capped by --max-limit). Rejected: a full scan per request (unbounded).
 * - Groups: a search of min(4 × limit × group_size, --max-limit) points
 *   that have the group_by key, bucketed in rank order; while a group is
 *   short and more points have the key, again with 4 times the pool (up to
 *   --max-limit and the request's --max-results / --max-candidates).
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

#define MAX_DEPTH 8   /* prefetch nesting */
#define MAX_STAGES 64 /* stages in one request */

typedef struct cand {
    int64_t iid;
    vqs_pid id;
    float score; /* as answered */
    float key;   /* larger is better */
} cand;

typedef struct clist {
    cand *v;
    size_t n;
} clist;

enum { Q_NONE, Q_NEAREST, Q_RECO, Q_RRF, Q_DBSF };
enum { RECO_AVG, RECO_BEST, RECO_SUM };

typedef struct stage {
    int type;
    float *vec; /* Q_NEAREST: d floats; Q_RECO average: the computed query */
    int mmr;
    float lambda;
    size_t mmr_cand;
    float *pos, *neg; /* Q_RECO: npos / nneg * d floats */
    size_t npos, nneg;
    int strategy;
    size_t rrf_k;
    float *weights;
    size_t nweights;
    vqs_filter *f;
    const json_t *fj; /* f's JSON (borrowed from the body), for the planner */
    vqs_coll_search_params sp;
    int has_thr;
    float thr;
    size_t limit; /* the root: limit + offset */
    size_t vi;    /* the vector it searches ("using"); NO_VEC: none named yet (a named collection's
                     stage without "using", or one that needs no vector) */
    uint32_t m;   /* that vector's metric (set with vi) */
    struct stage *pre;
    size_t npre;
} stage;

/* one request's state */
typedef struct qctx {
    vqs_server *s;
    entry *e;
    req *q;
    resp *r;
    /* the vector of the stage being parsed or evaluated (use_vec): its number and handle */
    size_t vi;
    vqs_coll *vc;
    size_t d;
    uint32_t m;
    double results, cands; /* charged so far */
    int64_t *excl;         /* internal ids excluded from every result (referenced points) */
    size_t nexcl, cexcl;
    const char *group_key; /* groups: only points with this payload key */
    size_t nstages;
    int need_pl; /* a filter or group_by: the payload cache is needed */
    float *vbuf; /* the largest d of the collection's vectors, floats */
} qctx;

#define NO_VEC SIZE_MAX

/* makes st's vector the current one (c->vc, d, m); a stage that names none
 * in a collection of named vectors is a 400 */
static int use_vec(qctx *c, stage *st)
{
    if (st->vi == NO_VEC) {
        size_t vi;
        if (vqs_coll_vector_find(c->e->c, NULL, &vi)) {
            fail(c->r, 400, "%s: give \"using\"", vqs_errdetail());
            vqs_clearerr();
            return c->r->code;
        }
        st->vi = vi;
    }
    c->vi = st->vi;
    c->vc = vqs_coll_vector(c->e->c, st->vi);
    c->d = vqs_coll_d(c->vc);
    c->m = st->m = (uint32_t)vqs_coll_config_of(c->vc)->metric;
    return 0;
}

static void stage_free(stage *st)
{
    free(st->vec);
    free(st->pos);
    free(st->neg);
    free(st->weights);
    vqs_filter_free(st->f);
    for (size_t i = 0; i < st->npre; i++)
        stage_free(&st->pre[i]);
    free(st->pre);
    memset(st, 0, sizeof *st);
}

/* ---- vectors and scores ------------------------------------------------------------ */

static double dot(const float *a, const float *b, size_t d)
{
    double s = 0;
    for (size_t i = 0; i < d; i++)
        s += (double)a[i] * b[i];
    return s;
}

static double sqdist(const float *a, const float *b, size_t d)
{
    double s = 0;
    for (size_t i = 0; i < d; i++) {
        double t = (double)a[i] - b[i];
        s += t * t;
    }
    return s;
}

static void normalise(float *x, size_t d)
{
    double n = sqrt(dot(x, x, d));
    if (n > 0)
        for (size_t i = 0; i < d; i++)
            x[i] = (float)(x[i] / n);
}

/* Qdrant's raw similarity (larger is better): cosine of normalised vectors, dot, minus squared distance */
static float sim(uint32_t m, const float *a, const float *b, size_t d)
{
    return (float)(m == VQS_METRIC_L2 ? -sqdist(a, b, d) : dot(a, b, d));
}

/* the nearest score as answered: Euclid is the distance */
static float near_score(uint32_t m, const float *q, const float *x, size_t d)
{
    return (float)(m == VQS_METRIC_L2 ? sqrt(sqdist(q, x, d)) : dot(q, x, d));
}

static float sigmoid01(float x) { return 0.5f * (x / (1.0f + fabsf(x)) + 1.0f); }

static int cand_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->key != y->key)
        return x->key > y->key ? -1 : 1;
    return x->iid < y->iid ? -1 : x->iid > y->iid;
}

static int iid_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- searching --------------------------------------------------------------------- */

typedef struct fchain {
    qctx *c;
    const vqs_filter *f[MAX_DEPTH + 2];
    const json_t *fj[MAX_DEPTH + 2]; /* their JSON, for the planner */
    size_t nf;
} fchain;

/* the payload value at a dotted key (NULL: absent) */
static json_t *payload_at(json_t *p, const char *key)
{
    char part[256];
    while (p && *key) {
        const char *dot_ = strchr(key, '.');
        size_t n = dot_ ? (size_t)(dot_ - key) : strlen(key);
        if (n >= sizeof part || !json_is_object(p))
            return NULL;
        memcpy(part, key, n);
        part[n] = 0;
        p = json_object_get(p, part);
        key += n + (dot_ != NULL);
    }
    return p;
}

static int chain_cb(void *ctx, int64_t iid)
{
    fchain *F = ctx;
    qctx *c = F->c;
    if (c->nexcl && bsearch(&iid, c->excl, c->nexcl, sizeof *c->excl, iid_cmp))
        return 0;
    if (!F->nf && !c->group_key)
        return 1;
    entry *e = c->e;
    if (iid < 0 || (uint64_t)iid >= e->npl || !e->pl[iid].id.kind)
        return 0;
    for (size_t i = 0; i < F->nf; i++)
        if (!vqs_filter_match(F->f[i], e->pl[iid].payload, &e->pl[iid].id))
            return 0;
    if (c->group_key) {
        json_t *v = payload_at(e->pl[iid].payload, c->group_key);
        if (!v || json_is_null(v))
            return 0;
    }
    return 1;
}

static int charge(qctx *c, double results, double cands)
{
    c->results += results;
    c->cands += cands;
    if (c->results > (double)c->s->o.max_results)
        return fail(c->r, 400, "this request would ask for more than %zu points in all over its searches and "
                               "prefetches (--max-results)", c->s->o.max_results);
    if (c->cands > (double)c->s->o.max_candidates)
        return fail(c->r, 400, "this request would re-score more than %zu candidates over its searches and "
                               "prefetches (--max-candidates)", c->s->o.max_candidates);
    return 0;
}

/* the k nearest of vec through the filters; appended to out (unsorted) */
static int index_search(qctx *c, const fchain *F, const vqs_coll_search_params *sp0, const float *vec, size_t k,
                        clist *out)
{
    if (k > c->s->o.max_limit)
        k = c->s->o.max_limit;
    const vqs_coll_config *cfg = vqs_coll_config_of(c->vc);
    int rerank = sp0->rerank == VQS_RERANK_ON || (sp0->rerank == VQS_RERANK_DEFAULT && cfg->rerank != VQS_RERANK_NONE);
    double os = sp0->oversampling > 0 ? sp0->oversampling : cfg->oversampling;
    if (charge(c, (double)k, rerank ? ceil((double)k * (os > 1 ? os : 1)) : (double)k) ||
        api_check_deadline(c->q, c->r))
        return c->r->code;
    vqs_coll_search_params sp = *sp0;
    sp.deadline = c->q->deadline;
    sp.with_payload = 0;
    if (F->nf || c->nexcl || c->group_key) {
        sp.filter = chain_cb;
        sp.filter_ctx = (void *)F;
    }
    vqs_coll_hit *hits = calloc(k, sizeof *hits);
    cand *nv = realloc(out->v, (out->n + k) * sizeof *nv);
    if (!hits || !nv) {
        free(hits);
        if (nv)
            out->v = nv;
        return fail(c->r, 500, "out of memory");
    }
    out->v = nv;
    /* the planner (plan.c), as run_search: a filter of the chain that a
     * payload index bounds to few points has them scored exactly (every
     * filter of the chain, the exclusions and the group key still apply
     * to each, through chain_cb) */
    uint64_t *pc = NULL;
    size_t npc = 0;
    int planned = 0;
    for (size_t i = 0; i < F->nf && !planned; i++)
        if (F->fj[i] && (planned = api_plan_filter(c->e, c->vc, F->fj[i], sp.nprobe, &pc, &npc, c->r)) < 0) {
            free(hits);
            return c->r->code;
        }
    int rc = planned ? vqs_coll_search_ids(c->vc, &sp, vec, k, npc, pc, hits)
                     : vqs_coll_search(c->vc, &sp, 1, vec, k, hits);
    free(pc);
    if (rc) {
        if (rc == -ETIMEDOUT)
            api_check_deadline(c->q, c->r);
        if (!c->r->code)
            fail(c->r, status_of(rc), "%s", vqs_errdetail());
        vqs_clearerr();
        free(hits);
        return c->r->code;
    }
    for (size_t i = 0; i < k; i++) {
        if (!hits[i].id.kind)
            continue;
        float sc = c->m == VQS_METRIC_L2 ? sqrtf(fmaxf(hits[i].dist, 0)) : hits[i].dist;
        out->v[out->n++] = (cand){hits[i].iid, hits[i].id, sc, c->m == VQS_METRIC_L2 ? -sc : sc};
    }
    vqs_coll_hits_free(hits, k);
    free(hits);
    return 0;
}

/* the stored vector of a candidate into c->vbuf; 1: the point is gone */
static int read_vec(qctx *c, const cand *x, float *buf, size_t nread)
{
    if (charge(c, 0, 1) || ((nread & 63) == 63 && api_check_deadline(c->q, c->r)))
        return c->r->code;
    int rc = vqs_coll_get(c->vc, &x->id, buf, NULL);
    if (rc == VQS_ENOTFOUND) {
        vqs_clearerr();
        return -1;
    }
    if (rc) {
        vqs_clearerr();
        return fail(c->r, rc == VQS_EINVAL ? 400 : 500,
                    "re-scoring candidates needs the stored vectors (this collection keeps none)");
    }
    return 0;
}

static int cand_iid_cmp(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    return x->iid < y->iid ? -1 : x->iid > y->iid;
}

/* keeps one candidate per internal id (order lost: the caller ranks them again); with sum, adds up the scores */
static void dedup(clist *l, int sum)
{
    qsort(l->v, l->n, sizeof *l->v, cand_iid_cmp);
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (n && l->v[n - 1].iid == l->v[i].iid) {
            if (sum)
                l->v[n - 1].score += l->v[i].score;
            continue;
        }
        l->v[n++] = l->v[i];
    }
    l->n = n;
}

static void finish(const stage *st, clist *l, int l2_near)
{
    if (!st->mmr) /* MMR answers in the order it picked */
        qsort(l->v, l->n, sizeof *l->v, cand_cmp);
    if (st->has_thr) {
        size_t n = 0;
        for (size_t i = 0; i < l->n; i++)
            if (l2_near ? l->v[i].score <= st->thr : l->v[i].score >= st->thr)
                l->v[n++] = l->v[i];
        l->n = n;
    }
    if (l->n > st->limit)
        l->n = st->limit;
}

/* re-scores the candidates of l exactly for stage st (nearest or recommend); MMR selects */
static int rescore(qctx *c, const stage *st, clist *l)
{
    size_t d = c->d, n = 0;
    int need_vecs = st->mmr;
    float *vecs = need_vecs ? malloc(sizeof(float) * d * (l->n ? l->n : 1)) : NULL;
    if (need_vecs && !vecs)
        return fail(c->r, 500, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < l->n && !rc; i++) {
        float *x = need_vecs ? vecs + n * d : c->vbuf;
        int g = read_vec(c, &l->v[i], x, i);
        if (g < 0)
            continue; /* deleted meanwhile */
        if ((rc = g))
            break;
        cand *o = &l->v[n++];
        *o = l->v[i];
        if (st->type == Q_NEAREST) {
            o->score = near_score(c->m, st->vec, x, d);
            o->key = c->m == VQS_METRIC_L2 ? -o->score : o->score;
        } else if (st->strategy == RECO_AVG) {
            o->score = near_score(c->m, st->vec, x, d);
            o->key = c->m == VQS_METRIC_L2 ? -o->score : o->score;
        } else {
            float best_p = -INFINITY, best_n = -INFINITY, sp = 0, sn = 0;
            for (size_t a = 0; a < st->npos; a++) {
                float s = sim(c->m, st->pos + a * d, x, d);
                best_p = fmaxf(best_p, s);
                sp += s;
            }
            for (size_t a = 0; a < st->nneg; a++) {
                float s = sim(c->m, st->neg + a * d, x, d);
                best_n = fmaxf(best_n, s);
                sn += s;
            }
            if (st->strategy == RECO_SUM)
                o->score = sp - sn;
            else
                o->score = best_p > best_n ? sigmoid01(best_p) : -sigmoid01(best_n);
            o->key = o->score;
        }
    }
    l->n = n;
    if (rc || !st->mmr || n < 2) {
        free(vecs);
        return rc;
    }
    /* MMR over the candidates (Qdrant's maximal_marginal_relevance) */
    size_t want = st->limit < n ? st->limit : n;
    float *rel = malloc(sizeof(float) * n), *maxsim = malloc(sizeof(float) * n);
    char *picked = calloc(n, 1);
    cand *out = malloc(sizeof(cand) * want);
    if (!rel || !maxsim || !picked || !out) {
        free(rel), free(maxsim), free(picked), free(out), free(vecs);
        return fail(c->r, 500, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        rel[i] = sim(c->m, st->vec, vecs + i * d, d);
        maxsim[i] = -INFINITY;
    }
    size_t first = 0;
    for (size_t i = 1; i < n; i++)
        if (rel[i] > rel[first])
            first = i;
    size_t got = 0, cur = first;
    for (;;) {
        picked[cur] = 1;
        out[got++] = l->v[cur];
        if (got == want)
            break;
        if (api_check_deadline(c->q, c->r)) {
            rc = c->r->code;
            break;
        }
        size_t best = n;
        float bs = -INFINITY;
        for (size_t i = 0; i < n; i++) {
            if (picked[i])
                continue;
            float s = sim(c->m, vecs + i * d, vecs + cur * d, d);
            if (s > maxsim[i])
                maxsim[i] = s;
            float v = st->lambda * rel[i] - (1 - st->lambda) * maxsim[i];
            if (best == n || v > bs)
                best = i, bs = v;
        }
        cur = best;
    }
    if (!rc) {
        memcpy(l->v, out, got * sizeof *out);
        l->n = got;
    }
    free(rel), free(maxsim), free(picked), free(out), free(vecs);
    return rc;
}

static int eval(qctx *c, stage *st, fchain *F, clist *out);

/* the stage answers Euclid distances (lower is better) */
static int l2_nearest(const qctx *c, const stage *st)
{
    if (st->type == Q_NONE)
        return st->npre == 1 && l2_nearest(c, &st->pre[0]);
    return st->m == VQS_METRIC_L2 && (st->type == Q_NEAREST || (st->type == Q_RECO && st->strategy == RECO_AVG));
}

/* fuses the ranked lists of the prefetches */
static void fuse(const stage *st, clist *lists, size_t nl, clist *out)
{
    size_t n = 0;
    for (size_t i = 0; i < nl; i++) {
        if (st->type == Q_DBSF) {
            clist *l = &lists[i];
            double mean = 0, m2 = 0;
            for (size_t j = 0; j < l->n; j++) { /* Welford, as Qdrant */
                double delta = l->v[j].key - mean;
                mean += delta / (double)(j + 1);
                m2 += delta * (l->v[j].key - mean);
            }
            double sd = l->n > 1 ? sqrt(m2 / (double)(l->n - 1)) : 0;
            double lo = mean - 3 * sd, hi = mean + 3 * sd;
            for (size_t j = 0; j < l->n; j++)
                l->v[j].score = l->n < 2 || lo == hi ? 0.5f : (float)((l->v[j].key - lo) / (hi - lo));
        } else {
            float w = i < st->nweights ? st->weights[i] : 1.0f;
            for (size_t j = 0; j < lists[i].n; j++)
                lists[i].v[j].score =
                    w <= 0 ? 0.0f : 1.0f / ((float)(j + 1) / w + (float)st->rrf_k - 1.0f);
        }
        for (size_t j = 0; j < lists[i].n; j++)
            out->v[n++] = lists[i].v[j];
    }
    out->n = n;
    dedup(out, 1);
    for (size_t k = 0; k < out->n; k++)
        out->v[k].key = out->v[k].score;
}

static int eval(qctx *c, stage *st, fchain *F, clist *out)
{
    size_t nf0 = F->nf;
    if (st->vi != NO_VEC) /* a stage that searches or scores: its vector (parsed: it exists) */
        use_vec(c, st);
    if (st->f) {
        F->fj[F->nf] = st->fj;
        F->f[F->nf++] = st->f;
    }
    int rc = 0;
    out->v = NULL;
    out->n = 0;
    int l2_near = l2_nearest(c, st);
    if (st->npre) {
        clist *lists = calloc(st->npre, sizeof *lists);
        size_t total = 0;
        if (!lists)
            rc = fail(c->r, 500, "out of memory");
        for (size_t i = 0; i < st->npre && !rc; i++) {
            rc = eval(c, &st->pre[i], F, &lists[i]);
            total += lists[i].n;
        }
        if (st->vi != NO_VEC)
            use_vec(c, st);
        if (!rc && !(out->v = malloc(sizeof(cand) * (total ? total : 1))))
            rc = fail(c->r, 500, "out of memory");
        if (!rc) {
            if (st->type == Q_RRF || st->type == Q_DBSF) {
                fuse(st, lists, st->npre, out);
            } else {
                for (size_t i = 0; i < st->npre; i++)
                    for (size_t j = 0; j < lists[i].n; j++)
                        out->v[out->n++] = lists[i].v[j];
                if (st->type != Q_NONE)
                    dedup(out, 0);
                if (st->type != Q_NONE)
                    rc = rescore(c, st, out);
                else /* no query: the prefetch's own ranking and scores (one prefetch, checked at parse) */
                    l2_near = l2_nearest(c, &st->pre[0]);
            }
        }
        for (size_t i = 0; lists && i < st->npre; i++)
            free(lists[i].v);
        free(lists);
    } else if (st->type == Q_NEAREST && !st->mmr) {
        rc = index_search(c, F, &st->sp, st->vec, st->limit, out);
    } else if (st->type == Q_NEAREST) {
        rc = index_search(c, F, &st->sp, st->vec, st->mmr_cand, out);
        if (!rc)
            rc = rescore(c, st, out);
    } else if (st->type == Q_RECO && st->strategy == RECO_AVG) {
        rc = index_search(c, F, &st->sp, st->vec, st->limit, out);
    } else if (st->type == Q_RECO) {
        size_t pool = 4 * st->limit;
        for (size_t i = 0; i < st->npos && !rc; i++)
            rc = index_search(c, F, &st->sp, st->pos + i * c->d, pool, out);
        if (!rc && st->vec)
            rc = index_search(c, F, &st->sp, st->vec, pool, out);
        if (!rc) {
            dedup(out, 0);
            rc = rescore(c, st, out);
        }
    }
    F->nf = nf0;
    if (rc) {
        free(out->v);
        out->v = NULL;
        out->n = 0;
        return rc;
    }
    finish(st, out, l2_near);
    return 0;
}

/* ---- parsing ----------------------------------------------------------------------- */

/* a point id's stored vector (an example or query given by id), which is then excluded from results */
static int vector_of_id(qctx *c, const json_t *v, float *out, const char *where)
{
    vqs_pid pid;
    if (api_parse_id(v, &pid, c->r, where))
        return c->r->code;
    if (!vqs_coll_keeps_vectors(c->vc))
        return fail(c->r, 400, "%s: a point id as a query needs the stored vectors (this collection keeps none)", where);
    int rc = vqs_coll_get(c->vc, &pid, out, NULL);
    uint64_t iid = 0;
    if (!rc)
        rc = vqs_coll_lookup(c->e->c, &pid, &iid, NULL);
    if (rc) {
        vqs_clearerr();
        char b[40];
        return fail(c->r, rc == VQS_ENOTFOUND ? 404 : 500, "%s: point %s %s", where, vqs_pid_format(&pid, b),
                    rc == VQS_ENOTFOUND ? "not found" : "could not be read");
    }
    if (c->nexcl == c->cexcl) {
        size_t nc = c->cexcl ? 2 * c->cexcl : 8;
        int64_t *ne = realloc(c->excl, nc * sizeof *ne);
        if (!ne)
            return fail(c->r, 500, "out of memory");
        c->excl = ne, c->cexcl = nc;
    }
    c->excl[c->nexcl++] = (int64_t)iid;
    return 0;
}

/* a vector input: a vector or a point id */
static int vector_input(qctx *c, const json_t *v, float *out, const char *where)
{
    if (json_is_integer(v) || json_is_string(v))
        return vector_of_id(c, v, out, where);
    if (json_is_object(v) && !json_object_get(v, "indices") && !json_object_get(v, "name"))
        return fail(c->r, 400, "%s: inference (document, image or object with a model) is not supported by vqs", where);
    size_t vi = c->vi;
    float *x = NULL;
    if (api_query_vector(c->e, v, &vi, &x, c->r, where))
        return c->r->code;
    memcpy(out, x, sizeof(float) * c->d);
    free(x);
    if (c->m == VQS_METRIC_COS)
        normalise(out, c->d);
    return 0;
}

static int parse_examples(qctx *c, const json_t *a, const char *name, float **out, size_t *n)
{
    *n = 0;
    if (!a || json_is_null(a))
        return 0;
    if (!json_is_array(a))
        return fail(c->r, 400, "\"%s\" must be an array of point ids or vectors", name);
    if (json_array_size(a) > c->s->o.max_batch)
        return fail(c->r, 400, "\"%s\": %zu examples; at most %zu", name, json_array_size(a), c->s->o.max_batch);
    *out = malloc(sizeof(float) * c->d * (json_array_size(a) ? json_array_size(a) : 1));
    if (!*out)
        return fail(c->r, 500, "out of memory");
    for (size_t i = 0; i < json_array_size(a); i++) {
        char where[48];
        snprintf(where, sizeof where, "\"%s\"[%zu]", name, i);
        if (vector_input(c, json_array_get(a, i), *out + i * c->d, where))
            return c->r->code;
    }
    *n = json_array_size(a);
    return 0;
}

/* {"positive", "negative", "strategy"} into st */
static int parse_reco(qctx *c, const json_t *j, stage *st)
{
    st->type = Q_RECO;
    if (use_vec(c, st))
        return c->r->code;
    if (parse_examples(c, json_object_get(j, "positive"), "positive", &st->pos, &st->npos) ||
        parse_examples(c, json_object_get(j, "negative"), "negative", &st->neg, &st->nneg))
        return c->r->code;
    json_t *s = json_object_get(j, "strategy");
    const char *sn = json_is_string(s) ? json_string_value(s) : NULL;
    if (!s || json_is_null(s) || (sn && !strcmp(sn, "average_vector")))
        st->strategy = RECO_AVG;
    else if (sn && !strcmp(sn, "best_score"))
        st->strategy = RECO_BEST;
    else if (sn && !strcmp(sn, "sum_scores"))
        st->strategy = RECO_SUM;
    else
        return fail(c->r, 400, "\"strategy\" must be \"average_vector\", \"best_score\" or \"sum_scores\"");
    if (!st->npos && st->strategy == RECO_AVG)
        return fail(c->r, 400, "recommend: \"positive\" must not be empty with the average_vector strategy");
    if (!st->npos && !st->nneg)
        return fail(c->r, 400, "recommend: give at least one positive or negative example");
    if (!st->npos)
        return fail(c->r, 400, "recommend: %s without positive examples is not supported by vqs (its candidates "
                               "are the neighbours of the positives)",
                    st->strategy == RECO_BEST ? "best_score" : "sum_scores");
    size_t d = c->d;
    if (!(st->vec = calloc(d, sizeof(float))))
        return fail(c->r, 500, "out of memory");
    /* Qdrant's avg_vector_for_recommendation */
    for (size_t i = 0; i < d; i++) {
        double p = 0, n = 0;
        for (size_t a = 0; a < st->npos; a++)
            p += st->pos[a * d + i];
        p /= (double)st->npos;
        for (size_t a = 0; a < st->nneg; a++)
            n += st->neg[a * d + i];
        if (st->nneg)
            n /= (double)st->nneg;
        st->vec[i] = (float)(st->nneg ? p + p - n : p);
        if (!isfinite(st->vec[i]))
            return fail(c->r, 400, "recommend: the average vector is not finite at element %zu", i);
    }
    if (c->m == VQS_METRIC_COS)
        normalise(st->vec, d);
    return 0;
}

/* "query" into st */
static int parse_query(qctx *c, const json_t *v, stage *st)
{
    if (!v || json_is_null(v)) {
        st->type = Q_NONE;
        return 0;
    }
    if (json_is_array(v) || json_is_integer(v) || json_is_string(v) ||
        (json_is_object(v) && (json_object_get(v, "indices") || json_object_get(v, "vector")))) {
        st->type = Q_NEAREST;
        if (use_vec(c, st))
            return c->r->code;
        if (!(st->vec = malloc(sizeof(float) * c->d)))
            return fail(c->r, 500, "out of memory");
        return vector_input(c, v, st->vec, "\"query\"");
    }
    if (!json_is_object(v))
        return fail(c->r, 400, "\"query\" must be a vector, a point id or a query object");
    if (json_object_get(v, "model"))
        return fail(c->r, 400, "\"query\": inference (document, image or object with a model) is not supported by vqs");
    if (json_object_get(v, "nearest")) {
        static const char *const known[] = {"nearest", "mmr", NULL};
        if (api_check_keys(v, known, NULL, "\"query\"", c->r))
            return c->r->code;
        st->type = Q_NEAREST;
        if (use_vec(c, st))
            return c->r->code;
        if (!(st->vec = malloc(sizeof(float) * c->d)))
            return fail(c->r, 500, "out of memory");
        if (vector_input(c, json_object_get(v, "nearest"), st->vec, "\"query\".\"nearest\""))
            return c->r->code;
        json_t *mmr = json_object_get(v, "mmr");
        if (mmr && !json_is_null(mmr)) {
            if (!json_is_object(mmr))
                return fail(c->r, 400, "\"query\".\"mmr\" must be an object");
            static const char *const mk[] = {"diversity", "candidates_limit", NULL};
            if (api_check_keys(mmr, mk, NULL, "\"query\".\"mmr\"", c->r))
                return c->r->code;
            json_t *dv = json_object_get(mmr, "diversity");
            double div = 0.5;
            if (dv && !json_is_null(dv)) {
                if (!json_is_number(dv) || json_number_value(dv) < 0 || json_number_value(dv) > 1)
                    return fail(c->r, 400, "\"query\".\"mmr\".\"diversity\" must be a number in [0, 1]");
                div = json_number_value(dv);
            }
            st->mmr = 1;
            st->lambda = (float)(1.0 - div);
            if (api_get_count(mmr, "candidates_limit", 0, c->s->o.max_limit, &st->mmr_cand, c->r))
                return c->r->code;
        }
        return 0;
    }
    if (json_object_get(v, "recommend")) {
        if (json_object_size(v) != 1)
            return fail(c->r, 400, "\"query\": {\"recommend\"} takes no other field");
        json_t *rj = json_object_get(v, "recommend");
        if (!json_is_object(rj))
            return fail(c->r, 400, "\"query\".\"recommend\" must be an object");
        static const char *const rk[] = {"positive", "negative", "strategy", NULL};
        if (api_check_keys(rj, rk, NULL, "\"query\".\"recommend\"", c->r))
            return c->r->code;
        return parse_reco(c, rj, st);
    }
    if (json_object_get(v, "fusion")) {
        json_t *fu = json_object_get(v, "fusion");
        const char *fs = json_is_string(fu) ? json_string_value(fu) : "";
        if (json_object_size(v) != 1 || (strcmp(fs, "rrf") && strcmp(fs, "dbsf")))
            return fail(c->r, 400, "\"query\": {\"fusion\": \"rrf\" | \"dbsf\"}");
        st->type = strcmp(fs, "rrf") ? Q_DBSF : Q_RRF;
        st->rrf_k = 2;
        return 0;
    }
    if (json_object_get(v, "rrf")) {
        json_t *o = json_object_get(v, "rrf");
        if (json_object_size(v) != 1 || !json_is_object(o))
            return fail(c->r, 400, "\"query\": {\"rrf\": {\"k\": n, \"weights\": [...]}}");
        static const char *const kk[] = {"k", "weights", NULL};
        if (api_check_keys(o, kk, NULL, "\"query\".\"rrf\"", c->r))
            return c->r->code;
        st->type = Q_RRF;
        if (api_get_count(o, "k", 2, 1u << 20, &st->rrf_k, c->r))
            return c->r->code;
        if (st->rrf_k < 1)
            return fail(c->r, 400, "\"query\".\"rrf\".\"k\" must be at least 1");
        json_t *w = json_object_get(o, "weights");
        if (w && !json_is_null(w)) {
            if (!json_is_array(w) || json_array_size(w) > MAX_STAGES)
                return fail(c->r, 400, "\"query\".\"rrf\".\"weights\" must be an array of numbers, one per prefetch");
            st->nweights = json_array_size(w);
            if (!(st->weights = malloc(sizeof(float) * (st->nweights + 1))))
                return fail(c->r, 500, "out of memory");
            for (size_t i = 0; i < st->nweights; i++) {
                json_t *x = json_array_get(w, i);
                if (!json_is_number(x) || !isfinite(json_number_value(x)) || json_number_value(x) < 0)
                    return fail(c->r, 400, "\"query\".\"rrf\".\"weights\"[%zu] must be a non-negative number", i);
                st->weights[i] = (float)json_number_value(x);
            }
        }
        return 0;
    }
    static const char *const kinds[] = {"discover", "context", "order_by", "formula", "sample", "relevance_feedback"};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (json_object_get(v, kinds[i]))
            return fail(c->r, 400, "\"query\": the %s query is not supported by vqs", kinds[i]);
    const char *k0 = json_object_iter_key(json_object_iter((json_t *)v));
    return fail(c->r, 400, "\"query\": unknown query kind \"%.64s\"", k0 ? k0 : "");
}

/* a stage (the root with root = 1, or a prefetch) */
/* what every stage and request body has alike: "params", "score_threshold"
 * and "filter" (compiled, and kept as JSON for the planner) */
static int stage_common(qctx *c, const json_t *j, stage *st)
{
    vqs_coll *vc = st->vi != NO_VEC ? vqs_coll_vector(c->e->c, st->vi) : c->e->c;
    if (api_parse_params(vc, json_object_get(j, "params"), &st->sp, c->r) ||
        api_get_threshold(j, &st->has_thr, &st->thr, c->r))
        return c->r->code;
    vqs_clearerr();
    if ((st->f = api_get_filter(j, c->r)))
        c->need_pl = 1;
    st->fj = json_object_get(j, "filter");
    return c->r->code;
}

/* st's "using": the vector it searches (NO_VEC: not named; use_vec decides when one is needed) */
static int stage_using(qctx *c, const json_t *j, stage *st)
{
    st->vi = NO_VEC;
    json_t *u = json_object_get(j, "using");
    if (u && !json_is_null(u) && api_get_using(c->e, j, &st->vi, c->r))
        return c->r->code;
    return 0;
}

static int parse_stage(qctx *c, const json_t *j, stage *st, int depth, int root, int groups)
{
    memset(st, 0, sizeof *st);
    if (!json_is_object(j))
        return fail(c->r, 400, "a %s must be an object", root ? "query request" : "prefetch");
    if (++c->nstages > MAX_STAGES)
        return fail(c->r, 400, "more than %d queries and prefetches in one request", MAX_STAGES);
    static const char *const kroot[] = {"prefetch", "query", "using", "filter", "params", "score_threshold", "limit",
                                        "offset", "with_vector", "with_payload", NULL};
    static const char *const kgroups[] = {"prefetch", "query", "using", "filter", "params", "score_threshold", "limit",
                                          "with_vector", "with_payload", "group_by", "group_size", NULL};
    static const char *const kpre[] = {"prefetch", "query", "using", "filter", "params", "score_threshold", "limit",
                                       NULL};
    static const char *const unsup[] = {"shard_key", "lookup_from", "with_lookup", NULL};
    if (api_check_keys(j, root ? (groups ? kgroups : kroot) : kpre, unsup, root ? "the query" : "a prefetch", c->r) ||
        stage_using(c, j, st))
        return c->r->code;
    json_t *pre = json_object_get(j, "prefetch");
    if (pre && !json_is_null(pre)) {
        if (depth >= MAX_DEPTH)
            return fail(c->r, 400, "prefetch nested more than %d deep", MAX_DEPTH);
        size_t n = json_is_array(pre) ? json_array_size(pre) : 1;
        if (!(st->pre = calloc(n ? n : 1, sizeof *st->pre)))
            return fail(c->r, 500, "out of memory");
        for (size_t i = 0; i < n; i++) {
            st->npre = i + 1;
            if (parse_stage(c, json_is_array(pre) ? json_array_get(pre, i) : pre, &st->pre[i], depth + 1, 0, 0)) {
                char m[sizeof c->r->err];
                memcpy(m, c->r->err, sizeof m);
                snprintf(c->r->err, sizeof c->r->err, "prefetch[%zu]: %.990s", i, m);
                return c->r->code;
            }
        }
    }
    if (parse_query(c, json_object_get(j, "query"), st))
        return c->r->code;
    if ((st->type == Q_RRF || st->type == Q_DBSF) && !st->npre)
        return fail(c->r, 400, "\"query\": fusion needs \"prefetch\" (the lists it fuses)");
    if (st->type == Q_RRF && st->nweights && st->nweights != st->npre)
        return fail(c->r, 400, "\"query\".\"rrf\".\"weights\": %zu weights for %zu prefetches", st->nweights, st->npre);
    if (st->type == Q_NONE && st->npre != 1)
        return fail(c->r, 400, "\"query\" is missing (a query without one is a scroll: not supported by vqs here; "
                               "use points/scroll)");
    if (api_get_count(j, "limit", 10, c->s->o.max_limit, &st->limit, c->r))
        return c->r->code;
    if (st->limit == 0)
        return fail(c->r, 400, "\"limit\" must be at least 1");
    if (st->mmr && !st->mmr_cand)
        st->mmr_cand = st->limit;
    return stage_common(c, j, st);
}

/* ---- answering --------------------------------------------------------------------- */

static json_t *point_out(qctx *c, const cand *x, const payload_sel *ps, unsigned wv)
{
    char *text = NULL;
    if (ps->on && !c->e->pl_loaded && vqs_coll_lookup_iid(c->e->c, (uint64_t)x->iid, NULL, &text)) {
        vqs_clearerr();
        fail(c->r, 404, "point deleted while the request ran");
        return NULL;
    }
    json_t *o = api_point_json(c->e, &x->id, x->iid, ps, wv, &x->score, text, c->r);
    free(text);
    if (o && api_charge(c->s, c->q, o, api_wv_dims(c->e, wv), c->r)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *points_out(qctx *c, const clist *l, size_t offset, const payload_sel *ps, unsigned wv)
{
    json_t *a = json_array();
    for (size_t i = offset; a && i < l->n; i++) {
        json_t *o = point_out(c, &l->v[i], ps, wv);
        if (!o || json_array_append_new(a, o)) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

/* the group id values of a point: a string or integer, or an array of them */
static json_t *group_values(qctx *c, int64_t iid)
{
    entry *e = c->e;
    if (iid < 0 || (uint64_t)iid >= e->npl)
        return NULL;
    return payload_at(e->pl[iid].payload, c->group_key);
}

static json_t *groups_out(qctx *c, const clist *l, size_t ngroups, size_t gsize, const payload_sel *ps, unsigned wv)
{
    json_t *groups = json_array();
    for (size_t i = 0; groups && i < l->n; i++) {
        json_t *v = group_values(c, l->v[i].iid);
        size_t nv = json_is_array(v) ? json_array_size(v) : 1;
        for (size_t a = 0; a < nv; a++) {
            json_t *g = json_is_array(v) ? json_array_get(v, a) : v;
            if (!json_is_string(g) && !json_is_integer(g))
                continue;
            json_t *grp = NULL;
            for (size_t k = 0; k < json_array_size(groups) && !grp; k++)
                if (json_equal(json_object_get(json_array_get(groups, k), "id"), g))
                    grp = json_array_get(groups, k);
            if (!grp) {
                if (json_array_size(groups) == ngroups)
                    continue;
                grp = json_pack("{s:O,s:[]}", "id", g, "hits");
                json_array_append_new(groups, grp);
            }
            json_t *hits = json_object_get(grp, "hits");
            if (json_array_size(hits) >= gsize)
                continue;
            json_t *o = point_out(c, &l->v[i], ps, wv);
            if (!o) {
                json_decref(groups);
                return NULL;
            }
            json_array_append_new(hits, o);
        }
    }
    return json_pack("{s:o}", "groups", groups);
}

typedef struct one {
    stage st;
    size_t offset, group_size, ngroups;
    payload_sel ps;
    unsigned wv;
    const char *group_by;
} one;

/* the common tail of a query / recommend / search request: output fields, groups */
static int parse_tail(qctx *c, const json_t *j, one *o, int groups, int offset_ok)
{
    if (offset_ok && api_get_count(j, "offset", 0, c->s->o.max_limit, &o->offset, c->r))
        return c->r->code;
    if (api_parse_with_payload(j, 0, &o->ps, c->r) || api_get_with_vector(c->e, j, &o->wv, c->r))
        return c->r->code;
    if (groups) {
        json_t *g = json_object_get(j, "group_by");
        if (!json_is_string(g) || !*json_string_value(g))
            return fail(c->r, 400, "\"group_by\" must be a payload key");
        o->group_by = json_string_value(g);
        if (api_get_count(j, "group_size", 3, c->s->o.max_limit, &o->group_size, c->r))
            return c->r->code;
        if (o->group_size == 0)
            return fail(c->r, 400, "\"group_size\" must be at least 1");
        o->ngroups = o->st.limit;
        double k = 4.0 * (double)o->ngroups * (double)o->group_size;
        o->st.limit = k > (double)c->s->o.max_limit ? c->s->o.max_limit : (size_t)k;
        c->need_pl = 1;
    } else {
        if (o->st.limit + o->offset > c->s->o.max_limit)
            return fail(c->r, 400, "\"limit\" + \"offset\" = %zu; at most %zu", o->st.limit + o->offset,
                        c->s->o.max_limit);
        o->st.limit += o->offset;
    }
    return 0;
}

typedef enum { BODY_QUERY, BODY_RECOMMEND, BODY_SEARCH } body_kind;

static int parse_one(qctx *c, const json_t *j, one *o, body_kind bk, int groups)
{
    memset(o, 0, sizeof *o);
    if (bk == BODY_QUERY) {
        if (parse_stage(c, j, &o->st, 0, 1, groups))
            return c->r->code;
        return parse_tail(c, j, o, groups, !groups);
    }
    if (!json_is_object(j))
        return fail(c->r, 400, "a request must be an object");
    static const char *const kreco[] = {"positive", "negative", "strategy", "filter", "params", "limit", "offset",
                                        "with_payload", "with_vector", "score_threshold", "using", NULL};
    static const char *const kreco_g[] = {"positive", "negative", "strategy", "filter", "params", "limit",
                                          "with_payload", "with_vector", "score_threshold", "using", "group_by",
                                          "group_size", NULL};
    static const char *const ksearch_g[] = {"vector", "filter", "params", "limit", "with_payload", "with_vector",
                                            "score_threshold", "group_by", "group_size", NULL};
    static const char *const unsup[] = {"shard_key", "lookup_from", "with_lookup", NULL};
    const char *const *known = bk == BODY_SEARCH ? ksearch_g : groups ? kreco_g : kreco;
    stage *st = &o->st;
    if (api_check_keys(j, known, unsup, "the request", c->r) || stage_using(c, j, st))
        return c->r->code;
    c->nstages = 1;
    if (bk == BODY_RECOMMEND) {
        if (parse_reco(c, j, st))
            return c->r->code;
    } else {
        json_t *v = json_object_get(j, "vector");
        if (!v)
            return fail(c->r, 400, "\"vector\" is missing");
        st->type = Q_NEAREST;
        /* a search body names its vector in "vector" ({"name", "vector"}) */
        if (api_query_vector(c->e, v, &st->vi, &st->vec, c->r, "vector") || use_vec(c, st))
            return c->r->code;
        if (c->m == VQS_METRIC_COS)
            normalise(st->vec, c->d);
    }
    if (groups || bk == BODY_RECOMMEND) { /* Qdrant requires limit here (and group_size for groups) */
        json_t *l = json_object_get(j, "limit");
        if (!l || json_is_null(l))
            return fail(c->r, 400, "\"limit\" is missing");
        if (groups && (!json_object_get(j, "group_size") || json_is_null(json_object_get(j, "group_size"))))
            return fail(c->r, 400, "\"group_size\" is missing");
    }
    if (api_get_count(j, "limit", 10, c->s->o.max_limit, &st->limit, c->r))
        return c->r->code;
    if (st->limit == 0)
        return fail(c->r, 400, "\"limit\" must be at least 1");
    if (stage_common(c, j, st))
        return c->r->code;
    return parse_tail(c, j, o, groups, !groups);
}

/* runs one parsed request; plock held for reading */
static json_t *run_one(qctx *c, one *o, body_kind bk, int groups)
{
    fchain F = {.c = c};
    clist l = {0};
    c->group_key = o->group_by;
    if (eval(c, &o->st, &F, &l))
        return NULL;
    json_t *out;
    if (groups) {
        /* as Qdrant, search again with a larger pool while a group is
         * short: until the groups are full, the points with the key run
         * out, or the pool reaches --max-limit or the next search would
         * pass --max-results / --max-candidates */
        for (;;) {
            out = groups_out(c, &l, o->ngroups, o->group_size, &o->ps, o->wv);
            if (!out)
                break;
            json_t *g = json_object_get(out, "groups");
            int full = json_array_size(g) == o->ngroups;
            for (size_t i = 0; full && i < json_array_size(g); i++)
                full = json_array_size(json_object_get(json_array_get(g, i), "hits")) == o->group_size;
            size_t pool = o->st.limit, next = pool * 4 > c->s->o.max_limit ? c->s->o.max_limit : pool * 4;
            double r0 = c->results, c0 = c->cands, ratio = (double)next / (double)pool;
            if (full || l.n < pool || next <= pool || r0 * (1 + ratio) > (double)c->s->o.max_results ||
                c0 * (1 + ratio) > (double)c->s->o.max_candidates)
                break;
            json_decref(out);
            out = NULL;
            free(l.v);
            l = (clist){0};
            o->st.limit = next;
            if (eval(c, &o->st, &F, &l))
                return NULL;
        }
    } else {
        json_t *pts = points_out(c, &l, o->offset, &o->ps, o->wv);
        out = pts && bk == BODY_QUERY ? json_pack("{s:o}", "points", pts) : pts;
    }
    free(l.v);
    if (!out && !c->r->code)
        fail(c->r, 500, "out of memory");
    return out;
}

static int handle(vqs_server *s, entry *e, req *q, resp *r, body_kind bk, query_kind kind)
{
    json_t *j = api_parse_body(q, r);
    if (!j)
        return r->code;
    json_t *list = NULL;
    size_t n = 1;
    if (kind == QUERY_BATCH) {
        static const char *const known[] = {"searches", NULL};
        list = json_object_get(j, "searches");
        if (api_check_keys(j, known, NULL, "the batch", r) == 0 && !json_is_array(list))
            fail(r, 400, "\"searches\" must be an array of requests");
        else if (!r->code && json_array_size(list) > s->o.max_batch)
            fail(r, 400, "%zu searches in one batch; at most %zu", json_array_size(list), s->o.max_batch);
        if (r->code) {
            json_decref(j);
            return r->code;
        }
        n = json_array_size(list);
    }
    qctx c = {.s = s, .e = e, .q = q, .r = r, .vi = 0, .vc = e->c, .d = vqs_coll_d(e->c),
              .m = vqs_coll_config_of(e->c)->metric};
    one *reqs = calloc(n ? n : 1, sizeof *reqs);
    size_t dmax = 0;
    for (size_t i = 0; i < vqs_coll_nvectors(e->c); i++)
        if (vqs_coll_d(vqs_coll_vector(e->c, i)) > dmax)
            dmax = vqs_coll_d(vqs_coll_vector(e->c, i));
    c.vbuf = malloc(sizeof(float) * dmax);
    int rc = reqs && c.vbuf ? 0 : fail(r, 500, "out of memory");
    int groups = kind == QUERY_GROUPS;
    /* the referenced points of each request are excluded from its own results only */
    int64_t **excl = calloc(n ? n : 1, sizeof *excl);
    size_t *nexcl = calloc(n ? n : 1, sizeof *nexcl);
    if (!excl || !nexcl)
        rc = fail(r, 500, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        c.excl = NULL, c.nexcl = c.cexcl = 0, c.nstages = 0;
        rc = parse_one(&c, list ? json_array_get(list, i) : j, &reqs[i], bk, groups);
        if (c.nexcl)
            qsort(c.excl, c.nexcl, sizeof *c.excl, iid_cmp);
        excl[i] = c.excl, nexcl[i] = c.nexcl;
        if (rc && list) {
            char m[sizeof r->err];
            memcpy(m, r->err, sizeof m);
            snprintf(r->err, sizeof r->err, "searches[%zu]: %.990s", i, m);
        }
    }
    json_t *res = NULL;
    if (!rc) {
        pthread_rwlock_rdlock(&e->plock);
        if (c.need_pl)
            rc = api_pl_ensure(e, r);
        res = list ? json_array() : NULL;
        for (size_t i = 0; i < n && !rc; i++) {
            c.excl = excl[i], c.nexcl = nexcl[i];
            json_t *one_ = run_one(&c, &reqs[i], bk, groups);
            if (!one_) {
                rc = r->code;
                if (list) {
                    char m[sizeof r->err];
                    memcpy(m, r->err, sizeof m);
                    snprintf(r->err, sizeof r->err, "searches[%zu]: %.990s", i, m);
                }
                break;
            }
            if (list)
                json_array_append_new(res, one_);
            else
                res = one_;
        }
        pthread_rwlock_unlock(&e->plock);
    }
    for (size_t i = 0; reqs && i < n; i++)
        stage_free(&reqs[i].st);
    for (size_t i = 0; excl && i < n; i++)
        free(excl[i]);
    free(excl);
    free(nexcl);
    free(reqs);
    free(c.vbuf);
    json_decref(j);
    if (rc) {
        json_decref(res);
        return rc;
    }
    return ok(r, res);
}

int api_h_query(vqs_server *s, entry *e, req *q, resp *r, query_kind kind)
{
    return handle(s, e, q, r, BODY_QUERY, kind);
}

int api_h_recommend(vqs_server *s, entry *e, req *q, resp *r, query_kind kind)
{
    return handle(s, e, q, r, BODY_RECOMMEND, kind);
}

int api_h_search_groups(vqs_server *s, entry *e, req *q, resp *r)
{
    return handle(s, e, q, r, BODY_SEARCH, QUERY_GROUPS);
}
