/*
 * h_payload.c: payload updates (set, overwrite, delete keys, clear), vector
 * updates, vector deletes (refused) and points/batch.
 *
 * Design decisions:
 * - Every one of them is a list of collection operations (vqs_coll_op) run
 *   by vqs_coll_apply: one LMDB write transaction, applied in order, all or
 *   nothing; a single endpoint is a batch of one. points/batch is therefore
 *   atomic, which Qdrant's is not: a batch whose last operation fails
 *   changes nothing.
 * - A payload edit is computed inside the transaction from the payload
 *   stored there (vqs_coll_edit_fn), so an operation selected by "filter"
 *   sees what the operations before it in the batch wrote. Rejected:
 *   resolving filters against the payload cache before the transaction
 *   (a batch's later filter would miss its earlier writes).
 * - The payload cache follows in the apply's after_commit callback, under
 *   the collection's writer lock, so two updates of one point reach the
 *   cache in commit order.
 * - Unknown ids in "points": 404 "No point with id X found", as Qdrant;
 *   nothing is changed. Deletes of unknown ids are no-ops, as Qdrant.
 * - "wait" is accepted and changes nothing: a write is durable before the
 *   answer, whose status is always "completed" (as upsert).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

/* ---- one operation, parsed --------------------------------------------------------- */

typedef enum bkind { B_UPSERT, B_DELETE, B_SET, B_OVERWRITE, B_DELPAY, B_CLEAR, B_VECTORS } bkind;

typedef struct bop {
    bkind kind;
    json_t *payload; /* SET, OVERWRITE (borrowed) */
    json_t *keys;    /* DELPAY: array of strings (borrowed) */
    char key[256];   /* SET: the nested path ("" none) */
    vqs_filter *f;   /* selection by filter (owned) */
    size_t n;
    vqs_pid *ids; /* selection by ids, UPSERT, VECTORS (owned) */
    vecs v;       /* VECTORS (owned) */
    upsert_req u; /* UPSERT */
} bop;

static void bop_free(bop *b)
{
    vqs_filter_free(b->f);
    if (b->kind == B_UPSERT)
        api_upsert_req_free(&b->u);
    else
        free(b->ids);
    api_vecs_free(&b->v);
}

/* "points" (ids) or "filter": exactly one */
static int parse_selector(const json_t *j, bop *b, const vqs_server *s, const char *where, resp *r)
{
    json_t *pts = json_object_get(j, "points");
    json_t *flt = json_object_get(j, "filter");
    if (pts && flt && !json_is_null(flt))
        return fail(r, 400, "%s: give either \"points\" or \"filter\", not both", where);
    if (pts) {
        if (!json_is_array(pts))
            return fail(r, 400, "%s: \"points\" must be an array of point ids", where);
        b->n = json_array_size(pts);
        if (b->n > s->o.max_batch)
            return fail(r, 400, "%s: %zu ids in one request; at most %zu (--max-batch)", where, b->n, s->o.max_batch);
        if (!(b->ids = calloc(b->n ? b->n : 1, sizeof *b->ids)))
            return fail(r, 500, "out of memory");
        for (size_t i = 0; i < b->n; i++) {
            char w[96];
            snprintf(w, sizeof w, "%s: points[%zu]", where, i);
            if (api_parse_id(json_array_get(pts, i), &b->ids[i], r, w))
                return r->code;
        }
        return 0;
    }
    if (!flt || json_is_null(flt))
        return fail(r, 400, "%s: expected \"points\": [ids] or \"filter\": {...}", where);
    if (!(b->f = api_get_filter(j, r)))
        return r->code ? r->code : fail(r, 400, "%s: bad \"filter\"", where);
    return 0;
}

static int parse_payload_op(const vqs_server *s, const json_t *j, bop *b, const char *where, resp *r)
{
    static const char *const fset[] = {"payload", "points", "filter", "key", NULL};
    static const char *const fover[] = {"payload", "points", "filter", NULL};
    static const char *const fdel[] = {"keys", "points", "filter", NULL};
    static const char *const fclear[] = {"points", "filter", NULL};
    const char *const *known = b->kind == B_SET ? fset : b->kind == B_OVERWRITE ? fover : b->kind == B_DELPAY ? fdel : fclear;
    if (!json_is_object(j))
        return fail(r, 400, "%s: must be an object", where);
    if (b->kind == B_OVERWRITE && json_object_get(j, "key"))
        return fail(r, 400, "%s: \"key\" with overwrite_payload is not supported by vqs", where);
    if (api_check_fields(j, where, known, r))
        return r->code;
    if (b->kind == B_SET || b->kind == B_OVERWRITE) {
        b->payload = json_object_get(j, "payload");
        if (!json_is_object(b->payload))
            return fail(r, 400, "%s: \"payload\" must be an object", where);
        json_t *k = json_object_get(j, "key");
        if (k && !json_is_null(k)) {
            if (!json_is_string(k) || !json_string_length(k) || json_string_length(k) >= sizeof b->key)
                return fail(r, 400, "%s: \"key\" must be a non-empty string of at most %zu bytes", where,
                            sizeof b->key - 1);
            const char *ks = json_string_value(k);
            if (strchr(ks, '[') || strstr(ks, "..") || ks[0] == '.' || ks[strlen(ks) - 1] == '.')
                return fail(r, 400, "%s: \"key\" \"%.80s\": only dotted object paths (a.b.c) are supported by vqs",
                            where, ks);
            snprintf(b->key, sizeof b->key, "%s", ks);
        }
    }
    if (b->kind == B_DELPAY) {
        b->keys = json_object_get(j, "keys");
        if (!json_is_array(b->keys))
            return fail(r, 400, "%s: \"keys\" must be an array of keys", where);
        for (size_t i = 0; i < json_array_size(b->keys); i++) {
            json_t *k = json_array_get(b->keys, i);
            if (!json_is_string(k) || !json_string_length(k))
                return fail(r, 400, "%s: keys[%zu] must be a non-empty string", where, i);
            if (strchr(json_string_value(k), '['))
                return fail(r, 400, "%s: keys[%zu] \"%.80s\": array paths are not supported by vqs", where, i,
                            json_string_value(k));
        }
    }
    return parse_selector(j, b, s, where, r);
}

static int parse_vectors_op(const vqs_server *s, entry *e, const json_t *j, bop *b, const char *where, resp *r)
{
    static const char *const known[] = {"points", NULL};
    static const char *const fpoint[] = {"id", "vector", NULL};
    if (!json_is_object(j))
        return fail(r, 400, "%s: must be an object", where);
    if (api_check_fields(j, where, known, r))
        return r->code;
    json_t *pts = json_object_get(j, "points");
    if (!json_is_array(pts))
        return fail(r, 400, "%s: expected \"points\": [{\"id\", \"vector\"}, ...]", where);
    size_t n = json_array_size(pts);
    if (n > s->o.max_batch)
        return fail(r, 400, "%s: %zu points in one request; at most %zu (--max-batch)", where, n, s->o.max_batch);
    b->n = n;
    b->ids = calloc(n ? n : 1, sizeof *b->ids);
    if (!b->ids)
        return fail(r, 500, "out of memory");
    if (api_vecs_alloc(e, n, &b->v, r))
        return r->code;
    for (size_t i = 0; i < n; i++) {
        char w[96];
        snprintf(w, sizeof w, "%s: point %zu", where, i);
        json_t *p = json_array_get(pts, i);
        if (!json_is_object(p))
            return fail(r, 400, "%s: must be an object {\"id\", \"vector\"}", w);
        if (api_check_fields(p, w, fpoint, r))
            return r->code;
        json_t *id = json_object_get(p, "id"), *v = json_object_get(p, "vector");
        if (!id)
            return fail(r, 400, "%s: \"id\" is missing", w);
        if (!v)
            return fail(r, 400, "%s: \"vector\" is missing", w);
        if (api_parse_id(id, &b->ids[i], r, w) || api_parse_point_vectors(e, v, &b->v, i, r, w))
            return r->code;
    }
    return 0;
}

static int refuse_delete_vectors(resp *r, const char *where)
{
    return fail(r, 400, "%s: a vqs point has every vector of its collection and cannot be held without one: "
                        "deleting vectors is not supported by vqs; delete the points instead",
                where);
}

/* ---- payload edits (run inside the write transaction) ----------------------------- */

/* the object at dotted path key inside o, created (and non-objects replaced) on the way */
static json_t *path_object(json_t *o, const char *key)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", key);
    char *save = NULL;
    for (char *part = strtok_r(buf, ".", &save); part; part = strtok_r(NULL, ".", &save)) {
        json_t *next = json_object_get(o, part);
        if (!json_is_object(next)) {
            next = json_object();
            if (!next || json_object_set_new(o, part, next))
                return NULL;
        }
        o = next;
    }
    return o;
}

/* removes the value at dotted path key from o (nothing if it is not there) */
static void path_delete(json_t *o, const char *key)
{
    if (json_object_get(o, key)) { /* a key with a dot in its name, as written */
        json_object_del(o, key);
        return;
    }
    const char *dot = strchr(key, '.');
    if (!dot)
        return;
    char head[256];
    snprintf(head, sizeof head, "%.*s", (int)(dot - key), key);
    json_t *sub = json_object_get(o, head);
    if (json_is_object(sub))
        path_delete(sub, dot + 1);
}

static int edit_fn(void *ctx, const vqs_pid *id, const char *old, size_t len, char **out)
{
    const bop *b = ctx;
    *out = NULL;
    json_t *p = NULL;
    if (old && len) {
        json_error_t je;
        p = json_loadb(old, len, 0, &je);
        if (!p) {
            char bb[40];
            return vqs_seterr(VQS_ECORRUPT, "point %s: its stored payload is not JSON: %s", vqs_pid_format(id, bb),
                              je.text);
        }
    }
    if (b->f && !vqs_filter_match(b->f, p, id)) {
        json_decref(p);
        return 1;
    }
    json_t *n = NULL;
    switch (b->kind) {
    case B_SET:
        n = json_is_object(p) ? json_incref(p) : json_object();
        if (n) {
            json_t *t = b->key[0] ? path_object(n, b->key) : n;
            if (!t || json_object_update(t, b->payload)) {
                json_decref(n);
                n = NULL;
                json_decref(p);
                return vqs_seterr(VQS_ENOMEM, "set payload");
            }
        }
        break;
    case B_OVERWRITE:
        n = json_incref(b->payload);
        break;
    case B_DELPAY:
        n = json_is_object(p) ? json_incref(p) : NULL;
        for (size_t i = 0; n && i < json_array_size(b->keys); i++)
            path_delete(n, json_string_value(json_array_get(b->keys, i)));
        break;
    default: /* B_CLEAR */
        break;
    }
    json_decref(p);
    if (n && json_object_size(n) && !(*out = json_dumps(n, JSON_COMPACT))) {
        json_decref(n);
        return vqs_seterr(VQS_ENOMEM, "payload");
    }
    json_decref(n);
    return 0;
}

/* ---- running a list of operations --------------------------------------------------- */

static void cache_cb(void *ctx, size_t n, const vqs_coll_change *ch)
{
    entry *e = ctx;
    pthread_rwlock_wrlock(&e->plock);
    for (size_t i = 0; e->pl_loaded && i < n; i++) {
        json_t *p = NULL;
        if (ch[i].payload) {
            json_error_t je;
            p = json_loads(ch[i].payload, 0, &je);
        }
        if (api_pl_set(e, ch[i].iid, &ch[i].id, p)) {
            /* out of memory: the cache cannot follow; drop it, the next filter reloads it */
            json_decref(p);
            for (size_t k = 0; k < e->npl; k++)
                json_decref(e->pl[k].payload);
            free(e->pl);
            e->pl = NULL;
            e->npl = 0;
            e->pl_loaded = 0;
        }
    }
    pthread_rwlock_unlock(&e->plock);
}

static json_t *op_result(vqs_server *s)
{
    return json_pack("{s:I, s:s}", "operation_id", (json_int_t)__atomic_fetch_add(&s->op_id, 1, __ATOMIC_RELAXED),
                     "status", "completed");
}

/* applies nb parsed operations atomically; answers one result (batch: a list) */
static int run_ops(vqs_server *s, entry *e, bop *b, size_t nb, int batch, resp *r)
{
    vqs_coll_op *ops = calloc(nb ? nb : 1, sizeof *ops);
    if (!ops)
        return fail(r, 500, "out of memory");
    for (size_t k = 0; k < nb; k++) {
        vqs_coll_op *o = &ops[k];
        switch (b[k].kind) {
        case B_UPSERT:
            *o = (vqs_coll_op){.kind = VQS_COLL_OP_UPSERT, .n = b[k].u.n, .ids = b[k].u.ids, .xv = (const float *const *)b[k].u.v.x,
                               .payloads = (const char *const *)b[k].u.texts};
            break;
        case B_DELETE:
            if (b[k].f) /* by filter: a delete is an edit that selects */
                *o = (vqs_coll_op){.kind = VQS_COLL_OP_DELETE, .edit = edit_fn, .edit_ctx = &b[k]};
            else
                *o = (vqs_coll_op){.kind = VQS_COLL_OP_DELETE, .n = b[k].n, .ids = b[k].ids};
            break;
        case B_VECTORS:
            *o = (vqs_coll_op){.kind = VQS_COLL_OP_VECTORS, .n = b[k].n, .ids = b[k].ids,
                               .xv = (const float *const *)b[k].v.x};
            break;
        default:
            *o = (vqs_coll_op){.kind = VQS_COLL_OP_PAYLOAD, .n = b[k].f ? 0 : b[k].n, .ids = b[k].f ? NULL : b[k].ids,
                               .edit = edit_fn, .edit_ctx = &b[k]};
        }
    }
    int rc = vqs_coll_apply(e->c, nb, ops, cache_cb, e);
    free(ops);
    if (rc) {
        int code = status_of(rc);
        fail(r, code, "%s%s", code == 404 ? "Not found: " : "", vqs_errdetail());
        vqs_clearerr();
        return code;
    }
    if (!batch)
        return ok(r, op_result(s));
    json_t *a = json_array();
    for (size_t k = 0; k < nb; k++)
        json_array_append_new(a, op_result(s));
    return ok(r, a);
}

static int run_one(vqs_server *s, entry *e, bop *b, resp *r)
{
    int rc = run_ops(s, e, b, 1, 0, r);
    bop_free(b);
    return rc;
}

int api_h_payload(vqs_server *s, entry *e, const req *q, resp *r, payload_op op)
{
    static const char *const names[] = {"set_payload", "overwrite_payload", "delete_payload", "clear_payload"};
    static const bkind kinds[] = {B_SET, B_OVERWRITE, B_DELPAY, B_CLEAR};
    json_t *j = api_parse_body(q, r);
    if (!j)
        return r->code;
    bop b = {0};
    b.kind = kinds[op];
    if (parse_payload_op(s, j, &b, names[op], r)) {
        bop_free(&b);
        json_decref(j);
        return r->code;
    }
    int rc = run_one(s, e, &b, r);
    json_decref(j);
    return rc;
}

int api_h_update_vectors(vqs_server *s, entry *e, const req *q, resp *r)
{
    json_t *j = api_parse_body(q, r);
    if (!j)
        return r->code;
    bop b = {0};
    b.kind = B_VECTORS;
    if (parse_vectors_op(s, e, j, &b, "update_vectors", r)) {
        bop_free(&b);
        json_decref(j);
        return r->code;
    }
    int rc = run_one(s, e, &b, r);
    json_decref(j);
    return rc;
}

int api_h_delete_vectors(vqs_server *s, entry *e, const req *q, resp *r)
{
    (void)s, (void)e, (void)q;
    return refuse_delete_vectors(r, "delete_vectors");
}

int api_h_batch(vqs_server *s, entry *e, const req *q, resp *r)
{
    static const char *const top[] = {"operations", NULL};
    json_t *j = api_parse_body(q, r);
    if (!j)
        return r->code;
    json_t *ops = json_object_get(j, "operations");
    if (api_check_fields(j, "points/batch", top, r) ||
        (!json_is_array(ops) && fail(r, 400, "points/batch: expected \"operations\": [...]")) ||
        (json_array_size(ops) > s->o.max_batch &&
         fail(r, 400, "points/batch: %zu operations; at most %zu (--max-batch)", json_array_size(ops), s->o.max_batch))) {
        json_decref(j);
        return r->code;
    }
    size_t nb = json_array_size(ops), total = 0;
    bop *b = calloc(nb ? nb : 1, sizeof *b);
    int rc = b ? 0 : fail(r, 500, "out of memory");
    for (size_t k = 0; !rc && k < nb; k++) {
        char where[64];
        snprintf(where, sizeof where, "operations[%zu]", k);
        json_t *o = json_array_get(ops, k);
        if (!json_is_object(o) || json_object_size(o) != 1) {
            rc = fail(r, 400, "%s: must be an object with one key: upsert, delete, set_payload, overwrite_payload, "
                              "delete_payload, clear_payload, update_vectors or delete_vectors",
                      where);
            break;
        }
        const char *name = json_object_iter_key(json_object_iter(o));
        json_t *body = json_object_get(o, name);
        char w2[128];
        snprintf(w2, sizeof w2, "%s.%s", where, name);
        if (!strcmp(name, "upsert")) {
            b[k].kind = B_UPSERT;
            if (!json_is_object(body))
                rc = fail(r, 400, "%s: must be an object", w2);
            else if (api_parse_upsert(s, e, body, &b[k].u, r)) {
                char msg[sizeof r->err];
                snprintf(msg, sizeof msg, "%s", r->err);
                rc = fail(r, r->code, "%s: %s", w2, msg);
            }
            total += b[k].u.n;
        } else if (!strcmp(name, "delete")) {
            static const char *const fdel[] = {"points", "filter", NULL};
            b[k].kind = B_DELETE;
            if (!json_is_object(body))
                rc = fail(r, 400, "%s: must be an object", w2);
            else if (api_check_fields(body, w2, fdel, r) || parse_selector(body, &b[k], s, w2, r))
                rc = r->code;
        } else if (!strcmp(name, "set_payload") || !strcmp(name, "overwrite_payload") ||
                   !strcmp(name, "delete_payload") || !strcmp(name, "clear_payload")) {
            b[k].kind = name[0] == 's' ? B_SET : name[0] == 'o' ? B_OVERWRITE : name[0] == 'd' ? B_DELPAY : B_CLEAR;
            rc = parse_payload_op(s, body, &b[k], w2, r);
        } else if (!strcmp(name, "update_vectors")) {
            b[k].kind = B_VECTORS;
            rc = parse_vectors_op(s, e, body, &b[k], w2, r);
        } else if (!strcmp(name, "delete_vectors")) {
            rc = refuse_delete_vectors(r, w2);
        } else {
            rc = fail(r, 400, "%s: unknown operation \"%.60s\"", where, name);
        }
        total += b[k].kind == B_UPSERT ? 0 : b[k].n;
        if (!rc && total > s->o.max_batch)
            rc = fail(r, 400, "points/batch: more than %zu points over all operations (--max-batch)", s->o.max_batch);
    }
    if (!rc) {
        rc = run_ops(s, e, b, nb, 1, r);
        if (rc == 404 || rc == 400) { /* say which operation */
            char msg[sizeof r->err];
            snprintf(msg, sizeof msg, "%s", r->err);
            fail(r, rc, "points/batch (nothing was applied): %s", msg);
        }
    }
    for (size_t k = 0; b && k < nb; k++)
        bop_free(&b[k]);
    free(b);
    json_decref(j);
    return rc;
}
