/*
 * h_scroll.c: POST .../points/scroll: a page of points in point-id order
 * (or in the order of a numeric payload field, order_by), optionally
 * filtered.
 *
 * Design decisions:
 * - The page comes from storage's walk over the id map from "offset"
 *   (vqs_coll_scroll: integer ids ascending, then UUIDs, Qdrant's order), so
 *   a page costs the points it visits, not a sort of the collection. One
 *   more matching point than "limit" is read: its id is next_page_offset.
 * - The walk only copies the page's ids and payloads (it runs inside an LMDB
 *   read transaction); the points' JSON and vectors are read after it.
 * - A filter is evaluated on each visited point's payload; the walk checks
 *   the request's deadline every 256 points, so a filter that matches little
 *   costs at most the deadline.
 * - order_by needs no payload index in vqs (Qdrant requires one): the walk
 *   visits every point and keeps the best "limit" values (a sorted array,
 *   limit <= --max-limit). An array field contributes each of its numbers,
 *   so a point can appear once per value, as in Qdrant. next_page_offset is
 *   null (Qdrant's answer with order_by); the next page starts from the last
 *   order_value (start_from).
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

typedef struct hit {
    vqs_pid id;
    uint64_t iid;
    char *text; /* payload (malloc'd, NUL-terminated) or NULL */
    double value; /* order_by */
    int is_int;   /* the value was a JSON integer (shown as one, as Qdrant's integer order_value) */
    json_int_t ival;
} hit;

typedef struct scroll_ctx {
    const req *q;
    resp *r;
    vqs_filter *f;
    size_t limit, n, visited;
    hit *h; /* limit + 1 */
    int more;
    vqs_pid next;
    /* order_by */
    const char *key;
    int desc, has_start;
    double start;
} scroll_ctx;

static json_t *parse_payload(const char *p, size_t len)
{
    if (!p || !len)
        return NULL;
    json_error_t je;
    return json_loadb(p, len, 0, &je);
}

/* the value at dotted path key (NULL: none) */
static json_t *path_get(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    if (v || !strchr(key, '.'))
        return v;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", key);
    char *save = NULL;
    for (char *part = strtok_r(buf, ".", &save); part && o; part = strtok_r(NULL, ".", &save))
        o = json_is_object(o) ? json_object_get(o, part) : NULL;
    return o;
}

static int visit_check(scroll_ctx *S)
{
    if ((++S->visited & 255) == 0 && api_check_deadline(S->q, S->r))
        return -1;
    return 0;
}

static int page_cb(void *ctx, uint64_t iid, const vqs_pid *id, const char *p, size_t len)
{
    scroll_ctx *S = ctx;
    if (visit_check(S))
        return -1;
    if (S->f) {
        json_t *pl = parse_payload(p, len);
        int m = vqs_filter_match(S->f, pl, id);
        json_decref(pl);
        if (!m)
            return 0;
    }
    if (S->n == S->limit) {
        S->more = 1;
        S->next = *id;
        return 1;
    }
    hit *h = &S->h[S->n];
    h->id = *id;
    h->iid = iid;
    h->text = p && len ? strndup(p, len) : NULL;
    if (p && len && !h->text)
        return fail(S->r, 500, "out of memory"), -1;
    S->n++;
    return 0;
}

/* a before b in the order asked for (ties: walk order, i.e. point id) */
static int better(const scroll_ctx *S, double a, double b) { return S->desc ? a > b : a < b; }

static int order_add(scroll_ctx *S, uint64_t iid, const vqs_pid *id, const char *p, size_t len, const json_t *jv)
{
    double v = json_number_value(jv);
    if (S->has_start && (S->desc ? v > S->start : v < S->start))
        return 0;
    if (S->n == S->limit && (S->limit == 0 || !better(S, v, S->h[S->n - 1].value)))
        return 0;
    size_t lo = 0, hi = S->n; /* first slot whose value v beats */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (better(S, v, S->h[mid].value))
            hi = mid;
        else
            lo = mid + 1;
    }
    char *t = p && len ? strndup(p, len) : NULL;
    if (p && len && !t)
        return fail(S->r, 500, "out of memory"), -1;
    if (S->n == S->limit) {
        free(S->h[S->n - 1].text);
        S->n--;
    }
    memmove(&S->h[lo + 1], &S->h[lo], (S->n - lo) * sizeof *S->h);
    S->h[lo] = (hit){*id, iid, t, v, json_is_integer(jv), json_is_integer(jv) ? json_integer_value(jv) : 0};
    S->n++;
    return 0;
}

static int order_cb(void *ctx, uint64_t iid, const vqs_pid *id, const char *p, size_t len)
{
    scroll_ctx *S = ctx;
    if (visit_check(S))
        return -1;
    json_t *pl = parse_payload(p, len);
    int rc = 0;
    if (!S->f || vqs_filter_match(S->f, pl, id)) {
        json_t *v = path_get(pl, S->key);
        if (json_is_number(v)) {
            rc = order_add(S, iid, id, p, len, v);
        } else if (json_is_array(v)) {
            for (size_t i = 0; !rc && i < json_array_size(v); i++)
                if (json_is_number(json_array_get(v, i)))
                    rc = order_add(S, iid, id, p, len, json_array_get(v, i));
        }
    }
    json_decref(pl);
    return rc;
}

/* "order_by": a key, or {"key", "direction", "start_from"} */
static int parse_order_by(const json_t *o, scroll_ctx *S, resp *r)
{
    static const char *const known[] = {"key", "direction", "start_from", NULL};
    if (json_is_string(o)) {
        S->key = json_string_value(o);
        return 0;
    }
    if (!json_is_object(o))
        return fail(r, 400, "\"order_by\" must be a key or {\"key\", \"direction\", \"start_from\"}");
    if (api_check_fields(o, "order_by", known, r))
        return r->code;
    json_t *k = json_object_get(o, "key"), *d = json_object_get(o, "direction"), *sf = json_object_get(o, "start_from");
    if (!json_is_string(k) || !json_string_length(k))
        return fail(r, 400, "\"order_by\": \"key\" must be a non-empty string");
    S->key = json_string_value(k);
    if (d && !json_is_null(d)) {
        if (json_is_string(d) && !strcmp(json_string_value(d), "asc"))
            S->desc = 0;
        else if (json_is_string(d) && !strcmp(json_string_value(d), "desc"))
            S->desc = 1;
        else
            return fail(r, 400, "\"order_by\": \"direction\" must be \"asc\" or \"desc\"");
    }
    if (sf && !json_is_null(sf)) {
        if (!json_is_number(sf))
            return fail(r, 400, "\"order_by\": \"start_from\" must be a number (datetimes are not supported by vqs)");
        S->has_start = 1;
        S->start = json_number_value(sf);
    }
    return 0;
}

int api_h_scroll(vqs_server *s, entry *e, req *q, resp *r)
{
    static const char *const known[] = {"offset", "limit", "filter", "with_payload", "with_vector", "order_by", NULL};
    json_t *j = q->len ? api_parse_body(q, r) : json_object();
    if (!j)
        return r->code;
    scroll_ctx S = {0};
    S.q = q;
    S.r = r;
    payload_sel ps;
    unsigned wv = 0;
    int rc = 0, has_from = 0;
    vqs_pid from;
    json_t *off = json_object_get(j, "offset"), *ob = json_object_get(j, "order_by");
    if (api_check_fields(j, "scroll", known, r) || api_get_count(j, "limit", 10, s->o.max_limit, &S.limit, r) ||
        api_parse_with_payload(j, 1, &ps, r) || api_get_with_vector(e, j, &wv, r)) {
        json_decref(j);
        return r->code;
    }
    if (off && !json_is_null(off)) {
        if (api_parse_id(off, &from, r, "\"offset\"")) {
            json_decref(j);
            return r->code;
        }
        has_from = 1;
    }
    if (ob && !json_is_null(ob)) {
        if (has_from)
            rc = fail(r, 400, "\"offset\" cannot be used with \"order_by\": use order_by.start_from");
        else
            rc = parse_order_by(ob, &S, r);
    }
    if (!rc) {
        S.f = api_get_filter(j, r);
        rc = r->code;
    }
    if (!rc && !(S.h = calloc(S.limit + 1, sizeof *S.h)))
        rc = fail(r, 500, "out of memory");
    if (!rc) {
        int e2 = S.key ? vqs_coll_scroll(e->c, NULL, order_cb, &S) : vqs_coll_scroll(e->c, has_from ? &from : NULL, page_cb, &S);
        if (e2 < 0) {
            if (!r->code)
                fail(r, status_of(e2) == 400 ? 500 : status_of(e2), "collection '%s': scroll: %s", e->name,
                     vqs_errdetail());
            vqs_clearerr();
            rc = r->code;
        }
    }
    json_t *pts = NULL;
    if (!rc) {
        pts = json_array();
        pthread_rwlock_rdlock(&e->plock);
        for (size_t i = 0; i < S.n && !rc; i++) {
            json_t *o = api_point_json(e, &S.h[i].id, (int64_t)S.h[i].iid, &ps, wv, NULL, S.h[i].text, r);
            if (!o) {
                rc = r->code;
                break;
            }
            if (S.key)
                json_object_set_new(o, "order_value", S.h[i].is_int ? json_integer(S.h[i].ival)
                                                                   : json_real(S.h[i].value));
            json_array_append_new(pts, o);
            rc = api_charge(s, q, o, api_wv_dims(e, wv), r);
        }
        pthread_rwlock_unlock(&e->plock);
    }
    for (size_t i = 0; S.h && i < S.n; i++)
        free(S.h[i].text);
    free(S.h);
    vqs_filter_free(S.f);
    json_decref(j);
    if (rc) {
        json_decref(pts);
        return rc;
    }
    json_t *res = json_object();
    json_object_set_new(res, "points", pts);
    json_object_set_new(res, "next_page_offset", S.more ? api_id_json(&S.next) : json_null());
    return ok(r, res);
}
