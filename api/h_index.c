/*
 * h_index.c: payload indexes (PUT /collections/{name}/index, DELETE
 * /collections/{name}/index/{field}) and the payload_schema of collection
 * info. The indexes live in LMDB (storage/db_pindex.c); the filtered-search
 * planner that uses them is plan.c.
 *
 * Design decisions:
 * - The body is Qdrant's CreateFieldIndex: "field_name" and "field_schema",
 *   a type name or an object {"type": ..., options}. An option that only
 *   tunes how Qdrant stores or shards the index (on_disk, is_tenant,
 *   is_principal, enable_hnsw, the integer index's lookup/range) is
 *   accepted and has no effect: an LMDB index is always on disk and answers
 *   both lookups and ranges. An option that would change what matches
 *   (a tokenizer other than "word", lowercase false, token lengths,
 *   stopwords, stemming, phrase matching, ASCII folding) is refused with a
 *   400 naming it; so are unknown fields, and the types vqs has no index
 *   for (geo, datetime).
 * - The index is built in the request, in one write transaction, so the
 *   answer is "completed" whatever "wait" says (as upserts answer).
 * - Deleting an index that is not there answers 200, as Qdrant does.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

static json_t *op_result(vqs_server *s)
{
    return json_pack("{s:I, s:s}", "operation_id", (json_int_t)__atomic_fetch_add(&s->op_id, 1, __ATOMIC_RELAXED),
                     "status", "completed");
}

/* the value of query parameter k of the request target (NULL: absent) into buf */
static const char *query_param(const req *q, const char *k, char *buf, size_t cap)
{
    const char *u = q->raw_url ? strchr(q->raw_url, '?') : NULL;
    size_t kl = strlen(k);
    while (u && *u) {
        u++;
        const char *end = u + strcspn(u, "&#");
        if ((size_t)(end - u) >= kl && !strncmp(u, k, kl) && (u[kl] == '=' || u + kl == end)) {
            const char *v = u[kl] == '=' ? u + kl + 1 : end;
            size_t n = (size_t)(end - v) < cap - 1 ? (size_t)(end - v) : cap - 1;
            memcpy(buf, v, n);
            buf[n] = 0;
            return buf;
        }
        u = *end == '&' ? end : NULL;
    }
    return NULL;
}

/* ?wait= and ?ordering= (accepted: the work is done before the answer) */
static int check_params(const req *q, resp *r)
{
    char b[32];
    const char *v;
    if ((v = query_param(q, "wait", b, sizeof b)) && strcmp(v, "true") && strcmp(v, "false") && *v)
        return fail(r, 400, "query parameter wait=%s: must be true or false", v);
    if ((v = query_param(q, "ordering", b, sizeof b)) && strcmp(v, "weak") && strcmp(v, "medium") &&
        strcmp(v, "strong"))
        return fail(r, 400, "query parameter ordering=%s: must be weak, medium or strong", v);
    return 0;
}

static int known(const char *k, const char *const *list)
{
    for (; *list; list++)
        if (!strcmp(k, *list))
            return 1;
    return 0;
}

/* field_schema (a string or an object) -> a VQS_PT_* type; 0 with r set */
static int parse_schema(const json_t *fs, resp *r)
{
    const json_t *t = json_is_object(fs) ? json_object_get(fs, "type") : fs;
    if (!json_is_string(t))
        return fail(r, 400, "\"field_schema\" must be a type name (keyword, integer, float, bool, uuid, text) or an "
                            "object with \"type\""),
               0;
    const char *tn = json_string_value(t);
    int type = vqs_db_ptype_parse(tn);
    if (!type) {
        if (!strcmp(tn, "geo") || !strcmp(tn, "datetime"))
            fail(r, 400, "\"field_schema\": %s indexes are not supported by vqs", tn);
        else
            fail(r, 400, "\"field_schema\": unknown type \"%.64s\" (keyword, integer, float, bool, uuid, text)", tn);
        return 0;
    }
    if (!json_is_object(fs))
        return type;
    /* options without effect here, by type */
    static const char *const harmless[][6] = {
        [VQS_PT_KEYWORD] = {"is_tenant", NULL},
        [VQS_PT_INTEGER] = {"lookup", "range", "is_principal", NULL},
        [VQS_PT_FLOAT] = {"is_principal", NULL},
        [VQS_PT_BOOL] = {NULL},
        [VQS_PT_UUID] = {"is_tenant", NULL},
        [VQS_PT_TEXT] = {NULL},
    };
    static const char *const text_opts[] = {"tokenizer", "lowercase", "min_token_len", "max_token_len", "stopwords",
                                            "stemmer", "phrase_matching", "ascii_folding", NULL};
    static const char *const common[] = {"type", "on_disk", "enable_hnsw", NULL};
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)fs, k, v)
    {
        if (known(k, common) || known(k, harmless[type])) {
            if (strcmp(k, "type") && !json_is_null(v) && !json_is_boolean(v))
                return fail(r, 400, "\"field_schema\".\"%s\" must be true or false", k), 0;
            continue;
        }
        if (type == VQS_PT_TEXT && known(k, text_opts)) {
            if (json_is_null(v))
                continue;
            if (!strcmp(k, "tokenizer")) {
                if (json_is_string(v) && !strcmp(json_string_value(v), "word"))
                    continue;
                return fail(r, 400, "\"field_schema\".\"tokenizer\": only \"word\" is supported by vqs"), 0;
            }
            if (!strcmp(k, "lowercase") && json_is_true(v))
                continue;
            if ((!strcmp(k, "phrase_matching") || !strcmp(k, "ascii_folding")) && json_is_false(v))
                continue;
            return fail(r, 400, "\"field_schema\".\"%s\": not supported by vqs (its text index splits words as "
                                "Qdrant's \"word\" tokenizer and lower-cases them, nothing else)", k),
                   0;
        }
        return fail(r, 400, "\"field_schema\": unknown field \"%.64s\" for a %s index", k, vqs_db_ptype_name(type)), 0;
    }
    return type;
}

int api_h_index_create(vqs_server *s, entry *e, const req *q, resp *r)
{
    if (check_params(q, r))
        return r->code;
    json_t *j = api_parse_body(q, r);
    if (!j)
        return r->code;
    int rc = 0, type = 0;
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        if (strcmp(k, "field_name") && strcmp(k, "field_schema")) {
            rc = fail(r, 400, "unknown field \"%.64s\" (a payload index takes \"field_name\" and \"field_schema\")", k);
            break;
        }
    }
    json_t *fn = json_object_get(j, "field_name"), *fs = json_object_get(j, "field_schema");
    if (!rc && !json_is_string(fn))
        rc = fail(r, 400, "\"field_name\" must be a string (a payload key, \"a.b\" for a nested one)");
    if (!rc && (!fs || json_is_null(fs)))
        rc = fail(r, 400, "\"field_schema\" is required: vqs does not infer the type of a payload index");
    if (!rc && !(type = parse_schema(fs, r)))
        rc = r->code;
    if (!rc) {
        int created = 0;
        int e2 = vqs_coll_pindex_create(e->c, json_string_value(fn), type, &created);
        if (e2) {
            rc = fail(r, status_of(e2), "collection '%s': %s", e->name, vqs_errdetail());
            vqs_clearerr();
        }
    }
    json_decref(j);
    return rc ? rc : ok(r, op_result(s));
}

int api_h_index_delete(vqs_server *s, entry *e, const req *q, resp *r, const char *field)
{
    if (check_params(q, r))
        return r->code;
    int rc = vqs_coll_pindex_delete(e->c, field);
    if (rc && rc != VQS_ENOTFOUND) {
        fail(r, status_of(rc), "collection '%s': %s", e->name, vqs_errdetail());
        vqs_clearerr();
        return r->code;
    }
    vqs_clearerr(); /* no such index: nothing to do, as Qdrant answers */
    return ok(r, op_result(s));
}

json_t *api_payload_schema(entry *e)
{
    json_t *o = json_object();
    vqs_db_pindex_info *ix = NULL;
    size_t n = 0;
    if (!o || vqs_coll_pindex_list(e->c, &ix, &n)) {
        json_decref(o);
        return NULL;
    }
    for (size_t i = 0; o && i < n; i++)
        json_object_set_new(o, ix[i].field,
                            json_pack("{s:s, s:I}", "data_type", vqs_db_ptype_name(ix[i].type), "points",
                                      (json_int_t)ix[i].points));
    free(ix);
    return o;
}
