/*
 * coll_search.c: searching a collection (vqs_collection.h): the in-memory
 * index (or, before training, the exact buffer) gives internal ids and
 * distances; one storage call turns all of them into point ids and,
 * when asked, payloads.
 *
 * Design decisions:
 * - Results are complete in one call: point id, distance, internal id and
 *   payload. The ids and payloads of every hit of every query come from one
 *   LMDB read transaction (vqs_db_get_iids), so a search's answer is one
 *   consistent state and costs one transaction, not one per hit. A point
 *   deleted between the scan and that transaction leaves an empty slot
 *   (id.kind 0), as a point that never matched would.
 * - Re-scoring reads go through the collection's reader slots (coll_fetch),
 *   not the index's thread ids: concurrent searches each run their own
 *   thread pool with ids from 0.
 * Rejected: returning internal ids and letting the caller look points up
 *   (the api did, one transaction per hit, half through the collection and
 *   half through raw storage).
 */
#define _GNU_SOURCE
#include "coll_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void vqs_coll_hits_free(vqs_coll_hit *hits, size_t n)
{
    for (size_t i = 0; hits && i < n; i++) {
        free(hits[i].payload);
        hits[i].payload = NULL;
    }
}

/* The index's results (n internal ids, -1 for none, and distances) as hits:
 * point ids and payloads in one read transaction. */
static int resolve(vqs_coll *c, int with_payload, size_t n, const int64_t *ii, const float *dd,
                   vqs_coll_hit *hits)
{
    vqs_pid *pids = malloc(sizeof(vqs_pid) * (n ? n : 1));
    char **pl = with_payload ? calloc(n ? n : 1, sizeof(char *)) : NULL;
    int rc = 0;
    if (!pids || (with_payload && !pl))
        rc = vqs_seterr(VQS_ENOMEM, "coll_search: %zu results", n);
    if (!rc)
        rc = vqs_db_get_iids(c->db, coll_pts(c), n, ii, pids, pl);
    for (size_t i = 0; !rc && i < n; i++) {
        hits[i].id = pids[i];
        hits[i].dist = dd[i];
        hits[i].iid = pids[i].kind ? ii[i] : -1;
        hits[i].payload = pl ? pl[i] : NULL;
    }
    free(pids);
    free(pl);
    return rc;
}

int vqs_coll_search(vqs_coll *c, const vqs_coll_search_params *p, size_t nq, const float *q, size_t k,
                    vqs_coll_hit *hits)
{
    if (!c || (nq && (!q || !hits)) || k == 0)
        return vqs_seterr(VQS_EINVAL, "coll_search: NULL argument or k = 0");
    for (size_t i = 0; i < nq * k; i++) {
        memset(&hits[i], 0, sizeof hits[i]);
        hits[i].iid = -1;
    }
    size_t bad = 0;
    int crc = vqs_check_vectors((vqs_metric)c->cfg.metric, nq, c->cfg.d, c->cfg.d, q, &bad);
    if (crc)
        return vqs_seterr(crc, "collection '%s': query %zu: %s", c->name, bad, vqs_errdetail());
    if (p && p->ef && vqs_index_graph_params(c->cfg.spec, NULL, NULL, NULL) != 1)
        return vqs_seterr(VQS_EINVAL, "collection '%s': a search beam (ef) was given, but its index '%s' has no graph",
                          c->name, c->cfg.spec);
    vqs_search_params sp = {0};
    vqs_rerank_source src = {c, coll_fetch};
    if (p) {
        sp.nprobe = p->nprobe;
        sp.ef = p->ef;
        sp.oversampling = p->oversampling;
        sp.filter = p->filter;
        sp.filter_ctx = p->filter_ctx;
        sp.deadline = p->deadline;
    }
    int rr = p ? p->rerank : VQS_RERANK_DEFAULT;
    if (rr == VQS_RERANK_ON && !c->vs)
        return vqs_seterr(VQS_EINVAL, "collection '%s' keeps no vectors to re-score with", c->name);
    if (c->vs && rr != VQS_RERANK_OFF) {
        sp.rerank = VQS_RERANK_ON;
        sp.source = &src;
    } else {
        sp.rerank = VQS_RERANK_OFF;
    }
    size_t n = nq * k;
    int64_t *ii = malloc(sizeof(int64_t) * (n ? n : 1));
    float *dd = malloc(sizeof(float) * (n ? n : 1));
    int rc = ii && dd ? 0 : vqs_seterr(VQS_ENOMEM, "coll_search");
    pthread_rwlock_rdlock(&c->lock);
    /* the defaults of the handle, which a PATCH may change (coll_defaults.c) */
    if (!sp.nprobe)
        sp.nprobe = c->cfg.nprobe;
    if (sp.oversampling == 0)
        sp.oversampling = c->cfg.oversampling;
    if (!rc)
        rc = c->ix ? vqs_index_search(c->ix, &sp, nq, q, k, ii, dd) : coll_buf_search(c, p, nq, q, k, ii, dd);
    pthread_rwlock_unlock(&c->lock);
    if (!rc)
        rc = resolve(c, p && p->with_payload, n, ii, dd, hits);
    free(ii);
    free(dd);
    return rc;
}
