/*
 * db_aliases.c: collection aliases in the LMDB store (vqs_store_db.h),
 * layout 2: one meta record "a:" ALIAS -> the collection's name (its bytes,
 * no NUL). Layout: storage/README.md.
 *
 * Design decisions:
 * - An alias names a collection by name, not by collection number: names
 *   are what Qdrant's aliases map and what a list shows, and a collection
 *   number is never reused, so an alias of a dropped collection could not
 *   be followed anyway. Drop removes the collection's aliases in its own
 *   transaction (db_alias_drop_coll), so no alias ever names nothing.
 * - A list of actions is applied in ONE write transaction, in order, each
 *   seeing the ones before it (create a, then rename a to b works); the
 *   first action that fails aborts the transaction, so a failing list
 *   changes nothing. Rejected: validating the list against a copy first
 *   and writing afterwards (two codes for one rule; LMDB's write
 *   transaction already is the copy).
 * - An alias may not have a collection's name, and a collection may not be
 *   created under an alias's name (vqs_db_create), so a name in a path
 *   means one thing. The targets of aliases are collections, never aliases
 *   (as Qdrant: no chains).
 * - Aliases are few (an application's handful); listing walks the "a:"
 *   range of meta. Rejected: a separate database (one more handle to open
 *   and migrate for a few records).
 */
#define _GNU_SOURCE
#include "db_internal.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static MDB_val alias_key(const char *alias, char buf[72])
{
    int len = snprintf(buf, 72, "a:%s", alias);
    return (MDB_val){(size_t)len, buf};
}

static int coll_exists(vqs_db *db, MDB_txn *t, const char *name, int *r)
{
    char kb[72];
    int len = snprintf(kb, sizeof kb, "c:%s", name);
    MDB_val k = {(size_t)len, kb}, v;
    *r = mdb_get(t, db->meta, &k, &v);
    if (*r == MDB_NOTFOUND) {
        *r = 0;
        return 0;
    }
    return *r == 0;
}

int db_alias_exists(vqs_db *db, MDB_txn *t, const char *name, int *r)
{
    char kb[72];
    MDB_val k = alias_key(name, kb), v;
    *r = mdb_get(t, db->meta, &k, &v);
    if (*r == MDB_NOTFOUND) {
        *r = 0;
        return 0;
    }
    return *r == 0;
}

int db_alias_drop_coll(vqs_db *db, MDB_txn *t, const char *coll)
{
    MDB_cursor *cur;
    int r = mdb_cursor_open(t, db->meta, &cur);
    if (r)
        return r;
    size_t cl = strlen(coll);
    MDB_val k = {2, "a:"}, v;
    for (r = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); r == 0; r = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 2 || memcmp(k.mv_data, "a:", 2) != 0)
            break;
        if (v.mv_size == cl && !memcmp(v.mv_data, coll, cl) && (r = mdb_cursor_del(cur, 0)))
            break;
    }
    mdb_cursor_close(cur);
    return r == MDB_NOTFOUND ? 0 : r;
}

typedef struct upd_ctx {
    size_t n;
    const vqs_db_alias_op *ops;
    size_t failed;
} upd_ctx;

/* one action in t: an LMDB code, or a vqs code with *vqs set */
static int apply_one(vqs_db *db, MDB_txn *t, const vqs_db_alias_op *op, size_t i, int *vqs)
{
    char kb[72];
    int r = 0, rc;
    const char *a = op->alias, *b = op->target;
    if (!a || (op->kind != VQS_DB_ALIAS_DELETE && !b))
        return *vqs = 1, vqs_seterr(VQS_EINVAL, "alias action %zu: a name is missing", i);
    if ((rc = vqs_db_check_name(a, strlen(a))))
        return *vqs = 1, vqs_seterr(rc, "alias action %zu: alias %s", i, vqs_errdetail());
    switch (op->kind) {
    case VQS_DB_ALIAS_CREATE: {
        /* checked as a collection name: since layout 3, "c:NAME@I" records
         * (a collection's further named vectors) exist that are not
         * collections, and coll_exists alone would find them */
        if ((rc = vqs_db_check_name(b, strlen(b))))
            return *vqs = 1, vqs_seterr(rc, "alias action %zu: collection %s", i, vqs_errdetail());
        if (!coll_exists(db, t, b, &r))
            return r ? r : (*vqs = 1, vqs_seterr(VQS_ENOTFOUND, "Collection `%s` doesn't exist!", b));
        if (coll_exists(db, t, a, &r) || r)
            return r ? r : (*vqs = 1, vqs_seterr(-EEXIST, "Collection `%s` already exists!", a));
        MDB_val k = alias_key(a, kb), v = {strlen(b), (void *)b};
        return mdb_put(t, db->meta, &k, &v, 0);
    }
    case VQS_DB_ALIAS_DELETE: {
        /* as Qdrant: deleting an alias that does not exist changes nothing */
        MDB_val k = alias_key(a, kb);
        r = mdb_del(t, db->meta, &k, NULL);
        return r == MDB_NOTFOUND ? 0 : r;
    }
    case VQS_DB_ALIAS_RENAME: {
        if ((rc = vqs_db_check_name(b, strlen(b))))
            return *vqs = 1, vqs_seterr(rc, "alias action %zu: new alias %s", i, vqs_errdetail());
        MDB_val k = alias_key(a, kb), v;
        if ((r = mdb_get(t, db->meta, &k, &v)))
            return r == MDB_NOTFOUND ? (*vqs = 1, vqs_seterr(VQS_ENOTFOUND, "Alias %s does not exist!", a)) : r;
        if (!strcmp(a, b))
            return 0;
        if (coll_exists(db, t, b, &r) || r)
            return r ? r : (*vqs = 1, vqs_seterr(-EEXIST, "Collection `%s` already exists!", b));
        char target[72];
        if (v.mv_size >= sizeof target)
            return *vqs = 1, vqs_seterr(VQS_ECORRUPT, "alias '%s': a target of %zu bytes", a, v.mv_size);
        memcpy(target, v.mv_data, v.mv_size);
        target[v.mv_size] = 0;
        if ((r = mdb_del(t, db->meta, &k, NULL)))
            return r;
        char nb[72];
        MDB_val nk = alias_key(b, nb), nv = {strlen(target), target};
        return mdb_put(t, db->meta, &nk, &nv, 0);
    }
    default:
        return *vqs = 1, vqs_seterr(VQS_EINVAL, "alias action %zu: unknown kind %d", i, op->kind);
    }
}

static int update_fn(vqs_db *db, MDB_txn *t, void *ctx, int *vqs)
{
    upd_ctx *C = ctx;
    for (size_t i = 0; i < C->n; i++) {
        int r = apply_one(db, t, &C->ops[i], i, vqs);
        if (r) {
            C->failed = i;
            return r;
        }
    }
    return 0;
}

int vqs_db_alias_update(vqs_db *db, size_t n, const vqs_db_alias_op *ops, size_t *failed)
{
    if (!db || (n && !ops))
        return vqs_seterr(VQS_EINVAL, "db_alias_update: NULL argument");
    upd_ctx C = {n, ops, 0};
    int rc = db_write_txn(db, "(aliases)", "update the aliases", update_fn, &C);
    if (failed)
        *failed = rc ? C.failed : 0;
    return rc;
}

int vqs_db_alias_list(vqs_db *db, vqs_db_alias **out, size_t *n)
{
    if (!db || !out || !n)
        return vqs_seterr(VQS_EINVAL, "db_alias_list: NULL argument");
    *out = NULL;
    *n = 0;
    MDB_txn *t;
    int rc = db_txn_begin(db, 0, &t);
    if (rc)
        return rc;
    MDB_cursor *cur;
    int r = mdb_cursor_open(t, db->meta, &cur);
    if (r) {
        db_txn_abort(db, t);
        return db_lmdb_err(r, "list the aliases", NULL);
    }
    vqs_db_alias *v = NULL;
    size_t cnt = 0, cap = 0;
    MDB_val k = {2, "a:"}, d;
    for (r = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); r == 0; r = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        if (k.mv_size < 2 || memcmp(k.mv_data, "a:", 2) != 0)
            break;
        if (k.mv_size - 2 >= sizeof v->alias || d.mv_size >= sizeof v->coll) {
            rc = vqs_seterr(VQS_ECORRUPT, "%s: an alias record of %zu + %zu bytes", db->dir, k.mv_size, d.mv_size);
            break;
        }
        if (cnt == cap) {
            cap = cap ? cap * 2 : 8;
            vqs_db_alias *nv = realloc(v, cap * sizeof *v);
            if (!nv) {
                rc = vqs_seterr(VQS_ENOMEM, "db_alias_list");
                break;
            }
            v = nv;
        }
        memset(&v[cnt], 0, sizeof v[cnt]);
        memcpy(v[cnt].alias, (const char *)k.mv_data + 2, k.mv_size - 2);
        memcpy(v[cnt].coll, d.mv_data, d.mv_size);
        cnt++;
    }
    mdb_cursor_close(cur);
    db_txn_abort(db, t);
    if (rc) {
        free(v);
        return rc;
    }
    /* keys are in byte order: the list is sorted by alias */
    *out = v;
    *n = cnt;
    return 0;
}
