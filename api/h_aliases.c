/*
 * h_aliases.c: collection aliases, as Qdrant's REST API has them:
 * POST /collections/aliases {"actions": [{"create_alias": {"collection_name",
 * "alias_name"}}, {"delete_alias": {"alias_name"}}, {"rename_alias":
 * {"old_alias_name", "new_alias_name"}}]}, GET /aliases and GET
 * /collections/{name}/aliases ({"aliases": [{"alias_name",
 * "collection_name"}]}).
 *
 * Design decisions:
 * - The catalog keeps them (storage/db_aliases.c: one LMDB transaction per
 *   list of actions, all or nothing); the server keeps a copy in memory
 *   (s->aliases, under the registry lock), read again after every change,
 *   so resolving a name in api_dispatch costs no LMDB transaction.
 *   Rejected: an LMDB lookup per request (a read transaction on every
 *   request to a name that is not a collection, 404s included).
 * - A change takes the registry for writing: it waits for the requests in
 *   flight, so none sees a half-switched alias (as Qdrant, which locks its
 *   collections for an alias change).
 * - Statuses as Qdrant 1.18: a missing collection or alias is a 404, an
 *   alias with a collection's name a 409, a malformed action a 400; the
 *   message names the action by its place in the list.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

int api_aliases_load(vqs_server *s)
{
    vqs_db_alias *a = NULL;
    size_t n = 0;
    int rc = vqs_catalog_aliases(s->cat, &a, &n);
    if (rc)
        return rc;
    free(s->aliases);
    s->aliases = a;
    s->naliases = n;
    return 0;
}

const char *api_alias_resolve(const vqs_server *s, const char *alias)
{
    size_t lo = 0, hi = s->naliases;
    while (lo < hi) { /* sorted by alias (LMDB's byte order = strcmp's) */
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(s->aliases[mid].alias, alias);
        if (c == 0)
            return s->aliases[mid].coll;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* o's string field k (required), checked as a name; NULL with r set */
static const char *name_field(const json_t *o, const char *k, size_t i, const char *act, resp *r)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_string(v)) {
        fail(r, 400, "actions[%zu].%s.%s: expected a string", i, act, k);
        return NULL;
    }
    const char *n = json_string_value(v);
    if (vqs_coll_check_name(n, strlen(n))) {
        fail(r, 400, "actions[%zu].%s.%s: %s", i, act, k, vqs_errdetail());
        vqs_clearerr();
        return NULL;
    }
    return n;
}

/* o holds exactly the keys of keys[] (NULL-terminated); else r set */
static int only_keys(const json_t *o, const char *const *keys, size_t i, const char *act, resp *r)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        int known = 0;
        for (const char *const *p = keys; *p; p++)
            known |= !strcmp(*p, k);
        if (!known)
            return fail(r, 400, "actions[%zu].%s: unknown field \"%.60s\"", i, act, k);
    }
    return 0;
}

int api_h_aliases_update(vqs_server *s, const req *q, resp *r)
{
    json_t *j = api_parse_body(q, r);
    if (!j)
        return r->code;
    vqs_db_alias_op *ops = NULL;
    json_t *acts = json_object_get(j, "actions"), *x;
    const char *k;
    json_object_foreach(j, k, x)
    {
        if (strcmp(k, "actions")) {
            fail(r, 400, "unknown field \"%.60s\" (expected {\"actions\": [...]})", k);
            goto out;
        }
    }
    if (!json_is_array(acts)) {
        fail(r, 400, "\"actions\": expected an array of create_alias, delete_alias and rename_alias actions");
        goto out;
    }
    size_t n = json_array_size(acts);
    if (n > s->o.max_batch) {
        fail(r, 400, "\"actions\": %zu actions, at most %zu (--max-batch)", n, s->o.max_batch);
        goto out;
    }
    ops = calloc(n ? n : 1, sizeof *ops);
    if (!ops) {
        fail(r, 500, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *a = json_array_get(acts, i), *b;
        if (!json_is_object(a) || json_object_size(a) != 1) {
            fail(r, 400, "actions[%zu]: expected an object with one of create_alias, delete_alias, rename_alias", i);
            goto out;
        }
        if ((b = json_object_get(a, "create_alias"))) {
            static const char *const keys[] = {"collection_name", "alias_name", NULL};
            ops[i].kind = VQS_DB_ALIAS_CREATE;
            if (!json_is_object(b) || only_keys(b, keys, i, "create_alias", r) ||
                !(ops[i].alias = name_field(b, "alias_name", i, "create_alias", r)) ||
                !(ops[i].target = name_field(b, "collection_name", i, "create_alias", r))) {
                if (r->code < 400)
                    fail(r, 400, "actions[%zu].create_alias: expected {\"collection_name\", \"alias_name\"}", i);
                goto out;
            }
        } else if ((b = json_object_get(a, "delete_alias"))) {
            static const char *const keys[] = {"alias_name", NULL};
            ops[i].kind = VQS_DB_ALIAS_DELETE;
            if (!json_is_object(b) || only_keys(b, keys, i, "delete_alias", r) ||
                !(ops[i].alias = name_field(b, "alias_name", i, "delete_alias", r))) {
                if (r->code < 400)
                    fail(r, 400, "actions[%zu].delete_alias: expected {\"alias_name\"}", i);
                goto out;
            }
        } else if ((b = json_object_get(a, "rename_alias"))) {
            static const char *const keys[] = {"old_alias_name", "new_alias_name", NULL};
            ops[i].kind = VQS_DB_ALIAS_RENAME;
            if (!json_is_object(b) || only_keys(b, keys, i, "rename_alias", r) ||
                !(ops[i].alias = name_field(b, "old_alias_name", i, "rename_alias", r)) ||
                !(ops[i].target = name_field(b, "new_alias_name", i, "rename_alias", r))) {
                if (r->code < 400)
                    fail(r, 400, "actions[%zu].rename_alias: expected {\"old_alias_name\", \"new_alias_name\"}", i);
                goto out;
            }
        } else {
            const char *only = NULL;
            json_object_foreach(a, only, x) break;
            fail(r, 400, "actions[%zu]: unknown action \"%.60s\" (create_alias, delete_alias or rename_alias)", i,
                 only ? only : "");
            goto out;
        }
    }
    size_t bad = 0;
    pthread_rwlock_wrlock(&s->reg);
    int rc = vqs_catalog_alias_update(s->cat, n, ops, &bad);
    if (rc) {
        int code = rc == VQS_ENOTFOUND ? 404 : rc == -EEXIST ? 409 : status_of(rc);
        fail(r, code, "%sactions[%zu]: %s", code == 409 ? "Wrong input: " : code == 404 ? "Not found: " : "", bad,
             vqs_errdetail());
        vqs_clearerr();
    } else if ((rc = api_aliases_load(s))) {
        /* stored, but the copy could not be read: keep serving the old one
         * and say so (a restart reads them) */
        fail(r, 500, "the aliases were changed but could not be read back: %s", vqs_errdetail());
        vqs_clearerr();
    }
    pthread_rwlock_unlock(&s->reg);
    if (!rc)
        ok(r, json_true());
out:
    free(ops);
    json_decref(j);
    return r->code;
}

int api_h_aliases_list(vqs_server *s, const char *name, resp *r)
{
    json_t *a = json_array();
    if (!name)
        pthread_rwlock_rdlock(&s->reg);
    for (size_t i = 0; a && i < s->naliases; i++)
        if (!name || !strcmp(s->aliases[i].coll, name))
            json_array_append_new(a, json_pack("{s:s, s:s}", "alias_name", s->aliases[i].alias, "collection_name",
                                               s->aliases[i].coll));
    if (!name)
        pthread_rwlock_unlock(&s->reg);
    if (!a)
        return fail(r, 500, "out of memory");
    return ok(r, json_pack("{s:o}", "aliases", a));
}
