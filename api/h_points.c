/*
 * h_points.c: the handlers of points: upsert (JSON, and the binary records
 * of the fast path), retrieve (by ids, or one by GET), count and delete (by
 * ids or by filter); and a point's JSON as retrieve and search show it.
 *
 * Design decisions:
 * - Upserts are durable before the response whatever "wait" says (the
 *   storage layer fsyncs each batch), so "status" is always "completed".
 * - A batch is validated whole before anything is written, so a refused
 *   request changes nothing.
 * - A point is never shown with a part silently missing: a payload or a
 *   vector that cannot be read fails the request (a point deleted since
 *   the search is shown without them).
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

static json_t *op_result(vqs_server *s)
{
    return json_pack("{s:I, s:s}", "operation_id", (json_int_t)__atomic_fetch_add(&s->op_id, 1, __ATOMIC_RELAXED),
                     "status", "completed");
}

/* upsert n points already validated; payloads: n JSON objects or NULL (borrowed) */
static int do_upsert(vqs_server *s, entry *e, size_t n, const vqs_pid *ids, const float *const *xv, json_t **payloads,
                     resp *r)
{
    char **texts = calloc(n ? n : 1, sizeof(char *));
    if (!texts)
        return fail(r, 500, "out of memory");
    int rc = 0;
    for (size_t i = 0; payloads && i < n; i++)
        if (payloads[i] && json_object_size(payloads[i]) &&
            !(texts[i] = json_dumps(payloads[i], JSON_COMPACT | JSON_ENCODE_ANY))) {
            rc = fail(r, 500, "out of memory");
            break;
        }
    if (!rc) {
        int e2 = vqs_coll_upsert_vectors(e->c, n, ids, xv, (const char *const *)texts);
        if (e2) {
            rc = fail(r, status_of(e2), "%s", vqs_errdetail());
            vqs_clearerr();
        }
    }
    if (!rc) {
        pthread_rwlock_wrlock(&e->plock);
        for (size_t i = 0; e->pl_loaded && i < n; i++) {
            uint64_t iid;
            if (vqs_coll_lookup(e->c, &ids[i], &iid, NULL) == 0)
                api_pl_set(e, iid, &ids[i], payloads && payloads[i] ? json_incref(payloads[i]) : NULL);
            vqs_clearerr();
        }
        pthread_rwlock_unlock(&e->plock);
    }
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    return rc ? rc : ok(r, op_result(s));
}

int api_check_fields(const json_t *j, const char *where, const char *const *known, resp *r)
{
    /* Qdrant fields of the points endpoints that vqs does not implement:
     * named, so the 400 says so (null: not asked for) */
    static const char *const unsupported[] = {"shard_key", "update_filter", "consistency", "ordering", "timeout",
                                              "lookup_from", "update_mode", NULL};
    return api_check_keys(j, known, unsupported, where, r);
}

void api_upsert_req_free(upsert_req *u)
{
    for (size_t i = 0; u->texts && i < u->n; i++)
        free(u->texts[i]);
    free(u->texts);
    free(u->ids);
    api_vecs_free(&u->v);
    free(u->pay);
    memset(u, 0, sizeof *u);
}

int api_parse_upsert(vqs_server *s, entry *e, const json_t *j, upsert_req *u, resp *r)
{
    static const char *const top[] = {"points", "batch", NULL};
    static const char *const fpoint[] = {"id", "vector", "payload", NULL};
    static const char *const fbatch[] = {"ids", "vectors", "payloads", NULL};
    memset(u, 0, sizeof *u);
    if (api_check_fields(j, "upsert", top, r))
        return r->code;
    json_t *pts = json_object_get(j, "points"), *batch = json_object_get(j, "batch");
    json_t *bids = NULL, *bvec = NULL, *bpay = NULL;
    size_t n;
    if (pts && batch)
        return fail(r, 400, "upsert: give either \"points\" or \"batch\", not both");
    if (json_is_array(pts)) {
        n = json_array_size(pts);
    } else if (json_is_object(batch)) {
        if (api_check_fields(batch, "\"batch\"", fbatch, r))
            return r->code;
        bids = json_object_get(batch, "ids");
        bvec = json_object_get(batch, "vectors");
        bpay = json_object_get(batch, "payloads");
        /* "vectors": one array of n vectors, or named vectors {"NAME": [n vectors], ...} */
        size_t nb = json_array_size(bids);
        int vec_ok = json_is_array(bvec) ? json_array_size(bvec) == nb : json_is_object(bvec);
        const char *k;
        json_t *a;
        json_object_foreach(json_is_object(bvec) ? bvec : NULL, k, a) vec_ok &= json_is_array(a) && json_array_size(a) == nb;
        if (!json_is_array(bids) || !vec_ok ||
            (bpay && !json_is_null(bpay) && (!json_is_array(bpay) || json_array_size(bpay) != nb)))
            return fail(r, 400, "\"batch\" needs \"ids\" and \"vectors\" (and optionally \"payloads\") arrays of one "
                                "length (named vectors: \"vectors\": {\"NAME\": [one vector per id], ...})");
        n = nb;
    } else {
        return fail(r, 400, "expected {\"points\": [{\"id\", \"vector\", \"payload\"}, ...]} or {\"batch\": {...}}");
    }
    if (n > s->o.max_batch)
        return fail(r, 400, "%zu points in one request; at most %zu (--max-batch)", n, s->o.max_batch);
    u->n = n;
    u->ids = calloc(n ? n : 1, sizeof *u->ids);
    u->pay = calloc(n ? n : 1, sizeof(json_t *));
    u->texts = calloc(n ? n : 1, sizeof(char *));
    int rc = (!u->ids || !u->pay || !u->texts) ? fail(r, 500, "out of memory") : api_vecs_alloc(e, n, &u->v, r);
    for (size_t i = 0; !rc && i < n; i++) {
        char where[64];
        snprintf(where, sizeof where, "point %zu", i);
        json_t *p = pts ? json_array_get(pts, i) : NULL;
        if (pts && !json_is_object(p)) {
            rc = fail(r, 400, "%s: must be an object {\"id\", \"vector\", \"payload\"}", where);
            break;
        }
        if (pts && api_check_fields(p, where, fpoint, r)) {
            rc = r->code;
            break;
        }
        json_t *id = pts ? json_object_get(p, "id") : json_array_get(bids, i);
        json_t *vec = pts ? json_object_get(p, "vector") : json_is_array(bvec) ? json_array_get(bvec, i) : NULL;
        json_t *named = NULL; /* a batch of named vectors: point i's {"NAME": vector, ...} */
        if (!pts && json_is_object(bvec)) {
            const char *k;
            json_t *a;
            if (!(vec = named = json_object())) {
                rc = fail(r, 500, "out of memory");
                break;
            }
            json_object_foreach(bvec, k, a) if (!rc && json_object_set(named, k, json_array_get(a, i)))
                rc = fail(r, 500, "out of memory");
            if (rc) {
                json_decref(named);
                break;
            }
        }
        json_t *pl = pts ? json_object_get(p, "payload") : bpay && !json_is_null(bpay) ? json_array_get(bpay, i) : NULL;
        if (!id)
            rc = fail(r, 400, "%s: \"id\" is missing", where);
        else if (!vec)
            rc = fail(r, 400, "%s: \"vector\" is missing", where);
        else if (!api_parse_id(id, &u->ids[i], r, where) && !api_parse_point_vectors(e, vec, &u->v, i, r, where)) {
            if (pl && !json_is_null(pl) && !json_is_object(pl))
                rc = fail(r, 400, "%s: \"payload\" must be an object", where);
            else
                u->pay[i] = pl && json_is_object(pl) ? pl : NULL;
            if (!rc && u->pay[i] && json_object_size(u->pay[i]) &&
                !(u->texts[i] = json_dumps(u->pay[i], JSON_COMPACT | JSON_ENCODE_ANY)))
                rc = fail(r, 500, "out of memory");
        } else {
            rc = r->code;
        }
        json_decref(named);
    }
    if (rc)
        api_upsert_req_free(u);
    return rc;
}

int api_h_upsert_json(vqs_server *s, entry *e, const req *q, resp *r)
{
    json_t *j = api_parse_body(q, r);
    if (!j)
        return r->code;
    upsert_req u;
    /* the same id twice: Qdrant keeps the last; the storage layer refuses,
     * so say so clearly */
    int rc = api_parse_upsert(s, e, j, &u, r);
    if (!rc)
        rc = do_upsert(s, e, u.n, u.ids, (const float *const *)u.v.x, u.pay, r);
    api_upsert_req_free(&u);
    json_decref(j);
    return rc;
}

/* binary upsert: n records of [u64 id, little-endian][d float32] */
int api_h_upsert_bin(vqs_server *s, entry *e, const req *q, resp *r)
{
    size_t d = vqs_coll_d(e->c), rec = 8 + 4 * d;
    if (vqs_coll_nvectors(e->c) > 1)
        return fail(r, 400, "binary upsert: collection '%s' has %zu named vectors; upsert them as JSON", e->name,
                    vqs_coll_nvectors(e->c));
    if (q->len == 0 || q->len % rec)
        return fail(r, 400, "binary upsert: %zu bytes is not a whole number of %zu-byte records (u64 id + %zu float32)",
                    q->len, rec, d);
    size_t n = q->len / rec;
    if (n > s->o.max_batch)
        return fail(r, 400, "%zu points in one request; at most %zu (--max-batch)", n, s->o.max_batch);
    vqs_pid *ids = calloc(n, sizeof *ids);
    float *x = malloc(sizeof(float) * d * n);
    if (!ids || !x) {
        free(ids);
        free(x);
        return fail(r, 500, "out of memory");
    }
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const unsigned char *p = (const unsigned char *)q->body + i * rec;
        uint64_t id = 0;
        for (int b = 7; b >= 0; b--)
            id = id << 8 | p[b];
        ids[i].kind = VQS_PID_U64;
        ids[i].u64 = id;
        memcpy(x + i * d, p + 8, 4 * d);
        for (size_t k = 0; k < d; k++)
            if (!isfinite(x[i * d + k])) {
                rc = fail(r, 400, "binary upsert: record %zu (id %llu), element %zu is not finite", i,
                          (unsigned long long)id, k);
                break;
            }
    }
    if (!rc)
        rc = do_upsert(s, e, n, ids, (const float *const *)&x, NULL, r);
    free(ids);
    free(x);
    return rc;
}

json_t *api_point_json(entry *e, const vqs_pid *id, int64_t iid, const payload_sel *ps, unsigned with_vector,
                       const float *score, const char *text, resp *r)
{
    json_t *o = json_object();
    if (!o)
        return fail(r, 500, "out of memory"), NULL;
    json_object_set_new(o, "id", api_id_json(id));
    json_object_set_new(o, "version", json_integer(0));
    if (score)
        json_object_set_new(o, "score", json_real(*score));
    if (ps->on) {
        json_t *p = NULL;
        if (e->pl_loaded && iid >= 0 && (uint64_t)iid < e->npl) {
            p = json_incref(e->pl[iid].payload);
        } else if (text) {
            json_error_t je;
            p = json_loads(text, 0, &je);
        }
        json_object_set_new(o, "payload", api_select_payload(ps, p));
        json_decref(p);
    }
    if (with_vector) {
        json_t *v = NULL;
        if (api_vectors_json(e, id, with_vector, &v, r)) {
            json_decref(o);
            return NULL;
        }
        if (v)
            json_object_set_new(o, "vector", v);
    }
    return o;
}

int api_h_retrieve(vqs_server *s, entry *e, req *q, resp *r, const char *one_id)
{
    json_t *j = NULL, *ids;
    payload_sel ps;
    unsigned wv = 0;
    json_t *single = NULL;
    if (one_id) {
        vqs_pid p;
        if (vqs_pid_parse(one_id, &p)) {
            vqs_clearerr();
            return fail(r, 400, "point id \"%.80s\" is neither an unsigned integer nor a UUID", one_id);
        }
        single = json_array();
        json_array_append_new(single, api_id_json(&p));
        ids = single;
        ps.on = 1;
        ps.include = ps.exclude = NULL;
        /* GET: every vector the collection keeps */
        for (size_t vi = 0; vi < vqs_coll_nvectors(e->c); vi++)
            if (vqs_coll_keeps_vectors(vqs_coll_vector(e->c, vi)))
                wv |= 1u << vi;
    } else {
        if (!(j = api_parse_body(q, r)))
            return r->code;
        static const char *const known[] = {"ids", "with_payload", "with_vector", NULL};
        if (api_check_fields(j, "retrieve", known, r)) {
            json_decref(j);
            return r->code;
        }
        ids = json_object_get(j, "ids");
        if (!json_is_array(ids) || api_parse_with_payload(j, 1, &ps, r) || api_get_with_vector(e, j, &wv, r)) {
            json_decref(j);
            return r->code ? r->code : fail(r, 400, "\"ids\" must be an array of point ids");
        }
        if (json_array_size(ids) > s->o.max_batch) {
            fail(r, 400, "%zu ids in one request; at most %zu (--max-batch)", json_array_size(ids), s->o.max_batch);
            json_decref(j);
            return r->code;
        }
    }
    json_t *out = json_array();
    int rc = 0;
    pthread_rwlock_rdlock(&e->plock);
    for (size_t i = 0; i < json_array_size(ids) && !rc; i++) {
        char where[48];
        snprintf(where, sizeof where, "ids[%zu]", i);
        vqs_pid p;
        if ((rc = api_parse_id(json_array_get(ids, i), &p, r, where)))
            break;
        /* the internal id and, unless the cache has it, the payload: one lookup */
        uint64_t iid;
        char *text = NULL;
        int want = ps.on && !e->pl_loaded;
        int g = vqs_coll_lookup(e->c, &p, &iid, want ? &text : NULL);
        if (g && g != VQS_ENOTFOUND && want) {
            char b[40];
            rc = fail(r, status_of(g), "point %s: reading its payload: %s", vqs_pid_format(&p, b), vqs_errdetail());
            vqs_clearerr();
            break;
        }
        vqs_clearerr();
        if (g == 0) {
            json_t *o = api_point_json(e, &p, (int64_t)iid, &ps, wv, NULL, text, r);
            free(text);
            if (!o) {
                rc = r->code;
                break;
            }
            json_array_append_new(out, o);
            if ((rc = api_charge(s, q, o, api_wv_dims(e, wv), r)) ||
                ((i & 63) == 63 && (rc = api_check_deadline(q, r))))
                break;
        } else if (one_id)
            rc = fail(r, 404, "Not found: No point with id %s found", one_id);
    }
    pthread_rwlock_unlock(&e->plock);
    json_decref(j);
    if (rc) {
        json_decref(out);
        json_decref(single);
        return rc;
    }
    json_decref(single);
    if (one_id) {
        json_t *p = json_incref(json_array_get(out, 0));
        json_decref(out);
        return ok(r, p);
    }
    return ok(r, out);
}

int api_h_count(entry *e, const req *q, resp *r)
{
    json_t *j = q->len ? api_parse_body(q, r) : json_object();
    if (!j)
        return r->code;
    static const char *const known[] = {"filter", "exact", NULL};
    int exact = 1;
    if (api_check_fields(j, "count", known, r) || api_get_bool(j, "exact", 1, &exact, r)) {
        json_decref(j);
        return r->code;
    }
    vqs_filter *f = api_get_filter(j, r);
    json_decref(j);
    if (r->code)
        return r->code;
    uint64_t n = vqs_coll_count(e->c);
    if (f) {
        pthread_rwlock_rdlock(&e->plock);
        vqs_pid *ids = NULL;
        size_t m = 0;
        int rc = api_pl_ensure(e, r);
        if (!rc && api_matching_ids(e, f, &ids, &m))
            rc = fail(r, 500, "out of memory");
        pthread_rwlock_unlock(&e->plock);
        free(ids);
        vqs_filter_free(f);
        if (rc)
            return rc;
        n = m;
    }
    return ok(r, json_pack("{s:I}", "count", (json_int_t)n));
}

int api_h_delete(vqs_server *s, entry *e, const req *q, resp *r)
{
    json_t *j = api_parse_body(q, r);
    if (!j)
        return r->code;
    static const char *const known[] = {"points", "filter", NULL};
    if (api_check_fields(j, "delete", known, r)) {
        json_decref(j);
        return r->code;
    }
    json_t *pts = json_object_get(j, "points");
    vqs_filter *f = api_get_filter(j, r);
    if (r->code) {
        json_decref(j);
        return r->code;
    }
    if (!json_is_array(pts) && !f) {
        json_decref(j);
        return fail(r, 400, "expected {\"points\": [ids]} or {\"filter\": {...}}");
    }
    vqs_pid *ids = NULL;
    size_t n = 0;
    int rc = 0;
    if (json_is_array(pts)) {
        n = json_array_size(pts);
        ids = calloc(n ? n : 1, sizeof *ids);
        for (size_t i = 0; i < n && !rc; i++) {
            char where[48];
            snprintf(where, sizeof where, "points[%zu]", i);
            rc = api_parse_id(json_array_get(pts, i), &ids[i], r, where);
        }
    } else {
        pthread_rwlock_rdlock(&e->plock);
        rc = api_pl_ensure(e, r);
        if (!rc && api_matching_ids(e, f, &ids, &n))
            rc = fail(r, 500, "out of memory");
        pthread_rwlock_unlock(&e->plock);
    }
    if (!rc) {
        int e2 = vqs_coll_delete(e->c, n, ids, NULL);
        if (e2) {
            rc = fail(r, 500, "%s", vqs_errdetail());
            vqs_clearerr();
        }
    }
    free(ids);
    vqs_filter_free(f);
    json_decref(j);
    return rc ? rc : ok(r, op_result(s));
}
