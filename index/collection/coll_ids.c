/*
 * coll_ids.c: a collection's payload indexes (forwarded to storage) and the
 * exact search over a list of internal ids that a filtered search runs when
 * an index says few points can match (vqs_collection.h).
 *
 * Design decisions:
 * - Exact means the stored full-precision vectors: the untrained buffer
 *   (walked once, merged with the sorted ids) or the vector file (read in
 *   chunks through the collection's reader slots, as re-scoring reads). A
 *   trained collection without stored vectors is refused (VQS_EINVAL) and
 *   its caller falls back to the scan. Rejected: decoding the codes of the
 *   candidates (the segments are per upsert batch, not per id: reading one
 *   code means finding its segment, and the answer would still be
 *   approximate).
 * - Scores are computed as the untrained buffer computes them (a plain
 *   float loop, cosine on normalised vectors), and ranked with the shared
 *   top-k heap (ties to the lower id), so the exact path on an untrained
 *   collection answers what the scan answers.
 * - The filter runs only on candidates the heap would keep (vqs_topk_admits).
 */
#define _GNU_SOURCE
#include "coll_internal.h"
#include "vqs_topk.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 256 /* vectors read per fetch */

int vqs_coll_pindex_create(vqs_coll *c, const char *field, int type, int *created)
{
    if (!c)
        return vqs_seterr(VQS_EINVAL, "coll_pindex_create: NULL argument");
    return vqs_db_pindex_create(c->db, coll_pts(c), field, type, created);
}

int vqs_coll_pindex_delete(vqs_coll *c, const char *field)
{
    if (!c)
        return vqs_seterr(VQS_EINVAL, "coll_pindex_delete: NULL argument");
    return vqs_db_pindex_delete(c->db, coll_pts(c), field);
}

int vqs_coll_pindex_list(vqs_coll *c, vqs_db_pindex_info **out, size_t *n)
{
    if (!c)
        return vqs_seterr(VQS_EINVAL, "coll_pindex_list: NULL argument");
    return vqs_db_pindex_list(c->db, coll_pts(c), out, n);
}

int vqs_coll_pindex_lookup(vqs_coll *c, const char *field, const vqs_db_pquery *q, size_t max, uint64_t **iids,
                           size_t *n, int *over)
{
    if (!c)
        return vqs_seterr(VQS_EINVAL, "coll_pindex_lookup: NULL argument");
    return vqs_db_pindex_lookup(c->db, coll_pts(c), field, q, max, iids, n, over);
}

size_t vqs_coll_ids_threshold(uint64_t count)
{
    uint64_t t = count / VQS_COLL_IDS_DIV;
    if (t < VQS_COLL_IDS_MIN)
        t = VQS_COLL_IDS_MIN;
    return (size_t)(t > VQS_COLL_IDS_MAX ? VQS_COLL_IDS_MAX : t);
}

size_t vqs_coll_plan_threshold(const vqs_coll *c, size_t nprobe)
{
    size_t t = vqs_coll_ids_threshold(vqs_coll_count(c)), nlist = 0;
    const vqs_index *ix = vqs_coll_index(c);
    if (!ix || !vqs_index_centroids(ix, &nlist) || nlist < 2)
        return t;
    if (nprobe == 0)
        nprobe = vqs_coll_config_of(c)->nprobe;
    if (nprobe >= nlist)
        return t;
    double s = (double)VQS_COLL_IDS_SCAN_MATCHES * (double)nlist / (double)(nprobe ? nprobe : 1);
    return s < (double)t ? (size_t)s : t;
}

typedef struct scorer {
    const vqs_coll_search_params *p;
    const float *q; /* d floats (normalised for cosine) */
    size_t d;
    int ip;
    vqs_topk t;
} scorer;

static void score(scorer *S, int64_t id, const float *v)
{
    float s = 0;
    if (S->ip)
        for (size_t j = 0; j < S->d; j++)
            s += S->q[j] * v[j];
    else
        for (size_t j = 0; j < S->d; j++)
            s += (S->q[j] - v[j]) * (S->q[j] - v[j]);
    double key = S->ip ? -(double)s : (double)s;
    if (!vqs_topk_admits(&S->t, key, id))
        return;
    if (S->p && S->p->filter && !S->p->filter(S->p->filter_ctx, id))
        return;
    vqs_topk_push(&S->t, key, id);
}

static int past_deadline(const vqs_coll_search_params *p)
{
    return p && p->deadline > 0 && vqs_now() > p->deadline;
}

/* c->lock held for reading */
static int score_all(vqs_coll *c, scorer *S, size_t n, const uint64_t *iids)
{
    size_t d = c->cfg.d;
    if (!c->ix) { /* the buffer: live rows are in ascending iid order */
        size_t j = 0;
        for (size_t r = 0; r < c->bn && j < n; r++) {
            if ((r & 1023) == 0 && past_deadline(S->p))
                return vqs_seterr(-ETIMEDOUT, "the search ran past its deadline and was stopped");
            int64_t id = c->biid[r];
            if (id < 0)
                continue;
            while (j < n && iids[j] < (uint64_t)id)
                j++;
            if (j < n && iids[j] == (uint64_t)id)
                score(S, id, c->buf + r * d);
        }
        return 0;
    }
    if (!c->vs)
        return vqs_seterr(VQS_EINVAL, "collection '%s' keeps no vectors: no exact search over ids", c->name);
    float *x = malloc(sizeof(float) * d * CHUNK);
    int64_t ids[CHUNK];
    if (!x)
        return vqs_seterr(VQS_ENOMEM, "coll_search_ids: %d vectors", CHUNK);
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i += CHUNK) {
        if (past_deadline(S->p)) {
            rc = vqs_seterr(-ETIMEDOUT, "the search ran past its deadline and was stopped");
            break;
        }
        size_t m = n - i < CHUNK ? n - i : CHUNK, live = 0;
        for (size_t j = 0; j < m; j++) /* ids past what the vector file holds are not points */
            if (iids[i + j] < (uint64_t)INT64_MAX)
                ids[live++] = (int64_t)iids[i + j];
        if (live && !(rc = coll_fetch(c, 0, live, ids, x)))
            for (size_t j = 0; j < live; j++)
                score(S, ids[j], x + j * d);
    }
    free(x);
    return rc;
}

int vqs_coll_search_ids(vqs_coll *c, const vqs_coll_search_params *p, const float *q, size_t k, size_t n,
                        const uint64_t *iids, vqs_coll_hit *hits)
{
    if (!c || !q || !hits || (n && !iids) || k == 0)
        return vqs_seterr(VQS_EINVAL, "coll_search_ids: NULL argument or k = 0");
    for (size_t i = 0; i < k; i++) {
        memset(&hits[i], 0, sizeof hits[i]);
        hits[i].iid = -1;
    }
    size_t d = c->cfg.d, bad = 0;
    int rc = vqs_check_vectors((vqs_metric)c->cfg.metric, 1, d, d, q, &bad);
    if (rc)
        return vqs_seterr(rc, "collection '%s': the query: %s", c->name, vqs_errdetail());
    float *qn = malloc(sizeof(float) * d);
    vqs_topk_item *h = malloc(sizeof *h * k);
    int64_t *ii = malloc(sizeof(int64_t) * k);
    vqs_pid *pids = malloc(sizeof(vqs_pid) * k);
    char **pl = p && p->with_payload ? calloc(k, sizeof(char *)) : NULL;
    if (!qn || !h || !ii || !pids || (p && p->with_payload && !pl)) {
        rc = vqs_seterr(VQS_ENOMEM, "coll_search_ids");
        goto done;
    }
    memcpy(qn, q, sizeof(float) * d);
    if (c->cfg.metric == VQS_METRIC_COS)
        vqs_normalize_rows(1, d, qn);
    scorer S = {p, qn, d, c->cfg.metric != VQS_METRIC_L2, {h, 0, k}};
    pthread_rwlock_rdlock(&c->lock);
    rc = score_all(c, &S, n, iids);
    pthread_rwlock_unlock(&c->lock);
    if (rc)
        goto done;
    vqs_topk_sort(&S.t);
    for (size_t j = 0; j < k; j++)
        ii[j] = j < S.t.n ? h[j].id : -1;
    /* point ids (and payloads) of the results in one read transaction */
    if ((rc = vqs_db_get_iids(c->db, coll_pts(c), k, ii, pids, pl)))
        goto done;
    for (size_t j = 0; j < S.t.n; j++) {
        hits[j].id = pids[j];
        hits[j].dist = (float)(S.ip ? -h[j].key : h[j].key);
        hits[j].iid = pids[j].kind ? ii[j] : -1;
        hits[j].payload = pl ? pl[j] : NULL;
    }
done:
    free(qn);
    free(h);
    free(ii);
    free(pids);
    free(pl);
    return rc;
}
