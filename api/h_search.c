/*
 * h_search.c: the search handlers: POST .../points/search (a JSON body, or
 * the binary fast path: float32 queries with the settings in the query
 * string), .../points/search/batch and .../points/query.
 *
 * Design decisions:
 * - A request's cost is checked before any search runs: Σ (limit + offset)
 *   over its searches and the candidates they re-score, against
 *   --max-results and --max-candidates (400).
 * - A filter runs during the scan through the payload cache (registry.c),
 *   unless the planner (plan.c) finds that a payload index bounds it to few
 *   points: those are then scored exactly (vqs_coll_search_ids).
 * - Qdrant's "rescore": true is a hint: on a collection that keeps no
 *   vectors it is ignored, as Qdrant does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

typedef struct search_req {
    float *q; /* d floats */
    size_t limit, offset;
    vqs_filter *f;
    const json_t *fj; /* the filter's JSON (borrowed from the body), for the planner */
    payload_sel ps;
    unsigned with_vector;
    size_t vi;    /* the vector searched */
    vqs_coll *vc; /* its handle */
    int has_thr;
    float thr;
    vqs_coll_search_params sp;
} search_req;

static void search_req_free(search_req *sr)
{
    free(sr->q);
    vqs_filter_free(sr->f);
}

/* from a search object (points/search, one of search/batch) */
static int parse_search(vqs_server *s, entry *e, const json_t *j, search_req *sr, resp *r)
{
    memset(sr, 0, sizeof *sr);
    sr->vi = SIZE_MAX;
    if (!json_is_object(j))
        return fail(r, 400, "a search request must be an object");
    static const char *const known[] = {"vector", "filter", "params", "limit", "offset", "with_payload",
                                        "with_vector", "score_threshold", NULL};
    static const char *const unsup[] = {"shard_key", "lookup_from", "prefetch", NULL};
    if (api_check_keys(j, known, unsup, "the search request", r))
        return r->code;
    json_t *v = json_object_get(j, "vector");
    if (json_is_object(v) && json_object_get(v, "nearest"))
        v = json_object_get(v, "nearest");
    if (!v)
        return fail(r, 400, "\"vector\" is missing");
    if (api_query_vector(e, v, &sr->vi, &sr->q, r, "vector"))
        return r->code;
    sr->vc = vqs_coll_vector(e->c, sr->vi);
    if (api_get_count(j, "limit", 10, s->o.max_limit, &sr->limit, r) ||
        api_get_count(j, "offset", 0, s->o.max_limit, &sr->offset, r))
        return r->code;
    if (sr->limit == 0)
        return fail(r, 400, "\"limit\" must be at least 1");
    if (sr->limit + sr->offset > s->o.max_limit)
        return fail(r, 400, "\"limit\" + \"offset\" = %zu; at most %zu", sr->limit + sr->offset, s->o.max_limit);
    if (api_parse_with_payload(j, 0, &sr->ps, r) || api_get_with_vector(e, j, &sr->with_vector, r))
        return r->code;
    if (api_get_threshold(j, &sr->has_thr, &sr->thr, r))
        return r->code;
    if (api_parse_params(sr->vc, json_object_get(j, "params"), &sr->sp, r))
        return r->code;
    vqs_clearerr();
    sr->f = api_get_filter(j, r);
    sr->fj = json_object_get(j, "filter");
    return r->code;
}

int api_get_threshold(const json_t *j, int *has, float *thr, resp *r)
{
    json_t *t = json_object_get(j, "score_threshold");
    if (!t || json_is_null(t))
        return 0;
    if (!json_is_number(t))
        return fail(r, 400, "\"score_threshold\" must be a number");
    *has = 1;
    *thr = (float)json_number_value(t);
    return 0;
}

int api_check_keys(const json_t *j, const char *const *known, const char *const *unsup, const char *where, resp *r)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)j, k, v)
    {
        int found = 0;
        for (size_t i = 0; known[i] && !found; i++)
            found = !strcmp(k, known[i]);
        if (found)
            continue;
        for (size_t i = 0; unsup && unsup[i] && !found; i++)
            found = !strcmp(k, unsup[i]);
        if (found && json_is_null(v))
            continue;
        if (found)
            return fail(r, 400, "%s: \"%.64s\" is not supported by vqs", where, k);
        return fail(r, 400, "%s: unknown field \"%.64s\"", where, k);
    }
    return 0;
}

int api_parse_params(vqs_coll *vc, const json_t *p, vqs_coll_search_params *sp, resp *r)
{
    if (!p || json_is_null(p))
        return 0;
    if (!json_is_object(p))
        return fail(r, 400, "\"params\" must be an object");
    /* hnsw_ef is the beam of a graph collection (a VAMANA spec) and refused elsewhere; acorn tunes
     * filtered HNSW search vqs does not have; exact, indexed_only and quantization.ignore are
     * accepted when false (what vqs does) and refused when true */
    static const char *const known[] = {"quantization", "nprobe", "hnsw_ef", "exact", "indexed_only", NULL};
    static const char *const unsup[] = {"acorn", NULL};
    if (api_check_keys(p, known, unsup, "\"params\"", r))
        return r->code;
    static const char *const falses[] = {"exact", "indexed_only"};
    json_t *x;
    for (size_t i = 0; i < 2; i++)
        if ((x = json_object_get(p, falses[i])) && !json_is_null(x)) {
            if (!json_is_boolean(x))
                return fail(r, 400, "\"params\".\"%s\" must be true or false", falses[i]);
            if (json_is_true(x))
                return fail(r, 400, "\"params\".\"%s\": true is not supported by vqs", falses[i]);
        }
    json_t *qz = json_object_get(p, "quantization");
    if (qz && !json_is_null(qz)) {
        if (!json_is_object(qz))
            return fail(r, 400, "\"params\".\"quantization\" must be an object");
        static const char *const qknown[] = {"rescore", "oversampling", "ignore", NULL};
        if (api_check_keys(qz, qknown, NULL, "\"params\".\"quantization\"", r))
            return r->code;
        if ((x = json_object_get(qz, "ignore")) && !json_is_null(x)) {
            if (!json_is_boolean(x))
                return fail(r, 400, "\"params\".\"quantization\".\"ignore\" must be true or false");
            if (json_is_true(x))
                return fail(r, 400, "\"params\".\"quantization\".\"ignore\": true is not supported by vqs");
        }
        if ((x = json_object_get(qz, "rescore")) && !json_is_null(x)) {
            if (!json_is_boolean(x))
                return fail(r, 400, "\"params\".\"quantization\".\"rescore\" must be true or false");
            sp->rerank = json_is_true(x) ? VQS_RERANK_ON : VQS_RERANK_OFF;
        }
        if ((x = json_object_get(qz, "oversampling")) && !json_is_null(x)) {
            if (!json_is_number(x) || json_number_value(x) < 1 || json_number_value(x) > 1000)
                return fail(r, 400, "\"params\".\"quantization\".\"oversampling\" must be a number in [1, 1000]");
            sp->oversampling = (float)json_number_value(x);
        }
    }
    if ((x = json_object_get(p, "nprobe")) && !json_is_null(x)) {
        if (!json_is_integer(x) || json_integer_value(x) < 1 || json_integer_value(x) > (1 << 24))
            return fail(r, 400, "\"params\".\"nprobe\" must be a positive integer");
        sp->nprobe = (size_t)json_integer_value(x);
    }
    if ((x = json_object_get(p, "hnsw_ef")) && !json_is_null(x)) {
        if (!json_is_integer(x) || json_integer_value(x) < 1 || json_integer_value(x) > (1 << 20))
            return fail(r, 400, "\"params\".\"hnsw_ef\" must be an integer in [1, 1048576]");
        if (vqs_index_graph_params(vqs_coll_config_of(vc)->spec, NULL, NULL, NULL) != 1)
            return fail(r, 400, "\"params\".\"hnsw_ef\": collection index '%s' has no graph (a \"VAMANA<R>,...\" spec "
                                "under \"vqs\" has one)", vqs_coll_config_of(vc)->spec);
        sp->ef = (size_t)json_integer_value(x);
    }
    if (sp->rerank == VQS_RERANK_ON && vqs_coll_config_of(vc)->rerank == VQS_RERANK_NONE)
        sp->rerank = VQS_RERANK_DEFAULT; /* nothing to re-score with: as Qdrant, rescore is a hint */
    return 0;
}

static float to_score(uint32_t metric, float dist) { return metric == VQS_METRIC_L2 ? sqrtf(fmaxf(dist, 0)) : dist; }

/* runs one search; returns the JSON array of scored points; plock held for reading */
static json_t *run_search(vqs_server *s, entry *e, search_req *sr, req *q, resp *r)
{
    size_t k = sr->limit + sr->offset;
    vqs_coll_hit *hits = calloc(k, sizeof *hits);
    if (!hits) {
        fail(r, 500, "out of memory");
        return NULL;
    }
    filter_ctx F = {e, sr->f};
    if (sr->f) {
        sr->sp.filter = api_filter_cb;
        sr->sp.filter_ctx = &F;
    }
    sr->sp.deadline = q->deadline;
    /* the payloads come with the ids, unless the cache holds them all */
    sr->sp.with_payload = sr->ps.on && !e->pl_loaded;
    int rc = api_check_deadline(q, r);
    /* the planner (plan.c): few candidates by a payload index: exact over them */
    uint64_t *cand = NULL;
    size_t ncand = 0;
    int planned = !rc && sr->f ? api_plan_filter(e, sr->vc, sr->fj, sr->sp.nprobe, &cand, &ncand, r) : 0;
    if (planned < 0)
        rc = r->code;
    if (!rc && (rc = planned ? vqs_coll_search_ids(sr->vc, &sr->sp, sr->q, k, ncand, cand, hits)
                             : vqs_coll_search(sr->vc, &sr->sp, 1, sr->q, k, hits))) {
        if (rc == -ETIMEDOUT)
            api_check_deadline(q, r);
        if (!r->code)
            fail(r, status_of(rc), "%s", vqs_errdetail());
        vqs_clearerr();
    }
    free(cand);
    json_t *out = NULL;
    if (!rc) {
        out = json_array();
        uint32_t m = vqs_coll_config_of(sr->vc)->metric;
        size_t vd = api_wv_dims(e, sr->with_vector);
        for (size_t i = sr->offset; i < k && !rc; i++) {
            const vqs_coll_hit *h = &hits[i];
            if (!h->id.kind)
                continue;
            float sc = to_score(m, h->dist);
            if (!isfinite(sc)) { /* cannot happen for vectors the collection accepts: say so, drop nothing */
                char b[40];
                rc = fail(r, 500, "point %s scored %g: not a finite score", vqs_pid_format(&h->id, b), (double)sc);
                break;
            }
            if (sr->has_thr && (m == VQS_METRIC_L2 ? sc > sr->thr : sc < sr->thr))
                continue;
            json_t *o = api_point_json(e, &h->id, h->iid, &sr->ps, sr->with_vector, &sc, h->payload, r);
            if (!o || json_array_append_new(out, o)) {
                rc = o ? fail(r, 500, "out of memory") : r->code;
                break;
            }
            rc = api_charge(s, q, o, vd, r);
            if (!rc && (i & 63) == 63)
                rc = api_check_deadline(q, r);
        }
        if (rc) {
            json_decref(out);
            out = NULL;
        }
    }
    vqs_coll_hits_free(hits, k);
    free(hits);
    return out;
}

/* Σ (limit + offset) and Σ re-scored candidates of a request's searches
 * (n settings, each used by reps queries), against --max-results and
 * --max-candidates */
static int check_cost(vqs_server *s, const search_req *sr, size_t n, size_t reps, resp *r)
{
    double results = 0, cand = 0;
    for (size_t i = 0; i < n; i++) {
        const vqs_coll_config *cfg = vqs_coll_config_of(sr[i].vc);
        double k = (double)(sr[i].limit + sr[i].offset);
        int rerank = sr[i].sp.rerank == VQS_RERANK_ON || (sr[i].sp.rerank == VQS_RERANK_DEFAULT && cfg->rerank != VQS_RERANK_NONE);
        double os = sr[i].sp.oversampling > 0 ? sr[i].sp.oversampling : cfg->oversampling;
        results += k * (double)reps;
        cand += (rerank ? ceil(k * (os > 1 ? os : 1)) : k) * (double)reps;
    }
    if (results > (double)s->o.max_results)
        return fail(r, 400, "the searches of this request ask for %.0f points in all (sum of limit + offset); at most "
                            "%zu (--max-results)", results, s->o.max_results);
    if (cand > (double)s->o.max_candidates)
        return fail(r, 400, "the searches of this request would re-score %.0f candidates (sum of (limit + offset) x "
                            "oversampling); at most %zu (--max-candidates)", cand, s->o.max_candidates);
    return 0;
}

/* prefixes r's message with the search of a batch it is about */
static void name_search(resp *r, size_t i)
{
    char m[sizeof r->err];
    memcpy(m, r->err, sizeof m);
    snprintf(r->err, sizeof r->err, "searches[%zu]: %.990s", i, m);
}

int api_h_search(vqs_server *s, entry *e, req *q, resp *r, search_kind kind)
{
    json_t *j = api_parse_body(q, r);
    if (!j)
        return r->code;
    json_t *list = NULL;
    if (kind == SEARCH_BATCH) {
        list = json_object_get(j, "searches");
        static const char *const known[] = {"searches", NULL};
        if (api_check_keys(j, known, NULL, "the batch", r)) {
            json_decref(j);
            return r->code;
        }
        if (!json_is_array(list)) {
            json_decref(j);
            return fail(r, 400, "\"searches\" must be an array of search requests");
        }
        if (json_array_size(list) > s->o.max_batch) {
            fail(r, 400, "%zu searches in one batch; at most %zu", json_array_size(list), s->o.max_batch);
            json_decref(j); /* list is part of j */
            return r->code;
        }
    }
    size_t nq = kind == SEARCH_BATCH ? json_array_size(list) : 1;
    search_req *sr = calloc(nq ? nq : 1, sizeof *sr);
    int rc = sr ? 0 : fail(r, 500, "out of memory");
    for (size_t i = 0; i < nq && !rc; i++) {
        rc = parse_search(s, e, kind == SEARCH_BATCH ? json_array_get(list, i) : j, &sr[i], r);
        if (rc && kind == SEARCH_BATCH)
            name_search(r, i);
    }
    if (!rc)
        rc = check_cost(s, sr, nq, 1, r);
    json_t *res = NULL;
    if (!rc) {
        int any_filter = 0;
        for (size_t i = 0; i < nq; i++)
            any_filter |= sr[i].f != NULL;
        pthread_rwlock_rdlock(&e->plock);
        if (any_filter)
            rc = api_pl_ensure(e, r);
        res = kind == SEARCH_BATCH ? json_array() : NULL;
        for (size_t i = 0; i < nq && !rc; i++) {
            json_t *one = run_search(s, e, &sr[i], q, r);
            if (!one) {
                rc = r->code;
                if (kind == SEARCH_BATCH)
                    name_search(r, i);
                break;
            }
            if (kind == SEARCH_BATCH)
                json_array_append_new(res, one);
            else
                res = one;
        }
        pthread_rwlock_unlock(&e->plock);
    }
    for (size_t i = 0; sr && i < nq; i++)
        search_req_free(&sr[i]);
    free(sr);
    json_decref(j);
    if (rc) {
        json_decref(res);
        return rc;
    }
    return ok(r, res);
}

/* "true"/"1" -> 1, "false"/"0" -> 0, anything else -1 */
static int bool_param(const char *v)
{
    return !strcmp(v, "true") || !strcmp(v, "1") ? 1 : !strcmp(v, "false") || !strcmp(v, "0") ? 0 : -1;
}

/* binary search: body = nq * d float32 (little-endian); settings in the query string */
int api_h_search_bin(vqs_server *s, entry *e, struct MHD_Connection *conn, req *q, resp *r)
{
    /* the vector searched: ?using=NAME (absent: the unnamed one) */
    size_t vi = 0;
    const char *u = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "using");
    if (vqs_coll_vector_find(e->c, u, &vi)) {
        fail(r, 400, "query parameter using: %s", vqs_errdetail());
        vqs_clearerr();
        return r->code;
    }
    vqs_coll *vc = vqs_coll_vector(e->c, vi);
    size_t d = vqs_coll_d(vc);
    if (q->len == 0 || q->len % (4 * d))
        return fail(r, 400, "binary search: %zu bytes is not a whole number of %zu-float queries", q->len, d);
    size_t nq = q->len / (4 * d);
    if (nq > s->o.max_batch)
        return fail(r, 400, "%zu queries in one request; at most %zu", nq, s->o.max_batch);
    search_req base;
    memset(&base, 0, sizeof base);
    base.limit = 10;
    base.vi = vi;
    base.vc = vc;
    const char *v;
    char *end;
    struct {
        const char *k;
        size_t *dst;
    } counts[] = {{"limit", &base.limit}, {"offset", &base.offset}, {"nprobe", &base.sp.nprobe}};
    for (size_t i = 0; i < 3; i++)
        if ((v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, counts[i].k))) {
            errno = 0;
            long long x = strtoll(v, &end, 10);
            if (*end || errno || x < 0 || (unsigned long long)x > s->o.max_limit)
                return fail(r, 400, "query parameter %s=%.40s: must be an integer between 0 and %zu", counts[i].k, v,
                            s->o.max_limit);
            *counts[i].dst = (size_t)x;
        }
    if (base.limit == 0 || base.limit + base.offset > s->o.max_limit)
        return fail(r, 400, "limit must be at least 1 and limit + offset at most %zu", s->o.max_limit);
    if ((v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "oversampling"))) {
        double x = strtod(v, &end);
        if (*end || !(x >= 1 && x <= 1000))
            return fail(r, 400, "query parameter oversampling=%.40s: must be a number in [1, 1000]", v);
        base.sp.oversampling = (float)x;
    }
    if ((v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "rescore"))) {
        if (bool_param(v) < 0)
            return fail(r, 400, "query parameter rescore=%.40s: must be true or false", v);
        base.sp.rerank = bool_param(v) ? VQS_RERANK_ON : VQS_RERANK_OFF;
    }
    if (base.sp.rerank == VQS_RERANK_ON && vqs_coll_config_of(vc)->rerank == VQS_RERANK_NONE)
        base.sp.rerank = VQS_RERANK_DEFAULT;
    if ((v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "with_payload"))) {
        if (bool_param(v) < 0)
            return fail(r, 400, "query parameter with_payload=%.40s: must be true or false", v);
        base.ps.on = bool_param(v);
    }
    if ((v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "score_threshold"))) {
        base.thr = strtof(v, &end);
        if (*end || !isfinite(base.thr))
            return fail(r, 400, "query parameter score_threshold=%.40s: not a number", v);
        base.has_thr = 1;
    }
    const float *x = (const float *)(const void *)q->body;
    for (size_t i = 0; i < nq * d; i++)
        if (!isfinite(x[i]))
            return fail(r, 400, "binary search: query %zu, element %zu is not finite", i / d, i % d);
    if (check_cost(s, &base, 1, nq, r)) /* every query has the same settings */
        return r->code;
    json_t *res = nq > 1 ? json_array() : NULL;
    int rc = 0;
    pthread_rwlock_rdlock(&e->plock);
    for (size_t i = 0; i < nq && !rc; i++) {
        search_req sr = base;
        sr.q = (float *)(x + i * d);
        json_t *one = run_search(s, e, &sr, q, r);
        if (!one)
            rc = r->code;
        else if (nq > 1)
            json_array_append_new(res, one);
        else
            res = one;
    }
    pthread_rwlock_unlock(&e->plock);
    if (rc) {
        json_decref(res);
        return rc;
    }
    return ok(r, res);
}
