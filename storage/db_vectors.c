/*
 * db_vectors.c: collections with named vectors (storage layout 3).
 * Declarations: vqs_store_db.h. Layout: storage/README.md.
 *
 * Design decisions:
 * - A collection with named vectors is a group of collection records: the
 *   collection's own record holds its first named vector (and, as for any
 *   collection, the point ids, payloads and payload indexes), and each
 *   further named vector I (1..n-1) has a record of its own, NAME@I, with
 *   its own configuration, trained state, codes and dead set, and the same
 *   point ids (no payloads). "v:" NAME in meta lists the vector names in
 *   order. '@' is not a character of collection names, so NAME@I can be
 *   neither listed nor opened, aliased or dropped by a user.
 *   Rejected: a vector number in every seg key (a new key layout for every
 *   collection, and a migration that rewrites all codes).
 * - The records of a group are written in ONE transaction (create, the
 *   write sessions of vqs_db_write_group, drop): the group is whole or
 *   absent after a crash. The collection layer keeps the internal ids of
 *   the members equal (every write reaches every member in the same order);
 *   it checks that on open.
 */
#define _GNU_SOURCE /* pthread_rwlock_t in db_internal.h */
#include "db_internal.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "v:" NAME: u32 record version (1), u32 n, then n times u8 length and the name's bytes */

static MDB_val vkey(const char *name, char buf[72])
{
    int len = snprintf(buf, 72, "v:%s", name);
    return (MDB_val){(size_t)len, buf};
}

int vqs_db_check_vector_name(const char *v)
{
    size_t n = v ? strlen(v) : 0;
    if (n == 0 || n > VQS_DB_VECTOR_NAME_MAX)
        return vqs_seterr(VQS_EINVAL, "vector name '%.80s': 1 to %d bytes", v ? v : "(null)", VQS_DB_VECTOR_NAME_MAX);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return vqs_seterr(VQS_EINVAL, "vector name '%.80s': byte %zu is a control character", v, i + 1);
    return 0;
}

/* decodes a "v:" value into *names (malloc'd array of malloc'd strings) */
static int decode(const MDB_val *v, const char *name, char ***names, size_t *n)
{
    const uint8_t *p = v->mv_data, *end = p + v->mv_size;
    if (v->mv_size < 8 || vqs_le32_get(p) != 1 || vqs_le32_get(p + 4) == 0 ||
        vqs_le32_get(p + 4) > VQS_DB_MAX_VECTORS)
        return vqs_seterr(VQS_ECORRUPT, "collection '%s': named-vector record of %zu bytes is damaged", name,
                          v->mv_size);
    size_t m = vqs_le32_get(p + 4);
    char **out = calloc(m, sizeof *out);
    if (!out)
        return vqs_seterr(VQS_ENOMEM, "collection '%s': %zu vector names", name, m);
    p += 8;
    for (size_t i = 0; i < m; i++) {
        if (p >= end || p + 1 + *p > end || *p == 0 || !(out[i] = strndup((const char *)p + 1, *p)) ||
            strlen(out[i]) != *p) {
            vqs_db_vectors_free(out, m);
            return vqs_seterr(VQS_ECORRUPT, "collection '%s': named-vector record: name %zu is damaged", name, i);
        }
        p += 1 + *p;
    }
    if (p != end) {
        vqs_db_vectors_free(out, m);
        return vqs_seterr(VQS_ECORRUPT, "collection '%s': named-vector record has %zu bytes too many", name,
                          (size_t)(end - p));
    }
    *names = out;
    *n = m;
    return 0;
}

void vqs_db_vectors_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

int vqs_db_vectors(vqs_db *db, const char *name, char ***names, size_t *n)
{
    if (!db || !names || !n)
        return vqs_seterr(VQS_EINVAL, "db_vectors: NULL argument");
    *names = NULL;
    *n = 0;
    int rc = vqs_db_check_name(name, name ? strlen(name) : 0);
    if (rc)
        return rc;
    MDB_txn *t;
    if ((rc = db_txn_begin(db, 0, &t)))
        return rc;
    db_rec r;
    char kb[72];
    MDB_val k = vkey(name, kb), v;
    if (!(rc = db_get_rec(db, t, name, &r))) {
        int e = mdb_get(t, db->meta, &k, &v);
        if (e == 0)
            rc = decode(&v, name, names, n);
        else if (e != MDB_NOTFOUND)
            rc = db_lmdb_err(e, "read the vector names", name);
    }
    db_txn_abort(db, t);
    return rc;
}

int vqs_db_vector_rec_name(const char *name, size_t i, char *buf, size_t len)
{
    int w = i ? snprintf(buf, len, "%s@%zu", name, i) : snprintf(buf, len, "%s", name);
    if (w < 0 || (size_t)w >= len || i > VQS_DB_MAX_VECTORS)
        return vqs_seterr(VQS_EINVAL, "collection '%.80s': vector %zu has no record name in %zu bytes", name, i, len);
    return 0;
}

typedef struct group_ctx {
    const char *name;
    size_t n;
    const char *const *vnames;
    const vqs_db_config *cfgs;
} group_ctx;

static int create_group_fn(vqs_db *db, MDB_txn *t, void *ctx, int *vqs)
{
    const group_ctx *G = ctx;
    uint8_t buf[8 + VQS_DB_MAX_VECTORS * (1 + VQS_DB_VECTOR_NAME_MAX)], *p = buf + 8;
    vqs_le32_put(buf, 1);
    vqs_le32_put(buf + 4, (uint32_t)G->n);
    int r = 0;
    for (size_t i = 0; i < G->n && !r; i++) {
        char rn[80];
        vqs_db_vector_rec_name(G->name, i, rn, sizeof rn); /* checked by the caller */
        r = db_create_rec(db, t, rn, &G->cfgs[i], vqs);
        size_t l = strlen(G->vnames[i]);
        *p = (uint8_t)l;
        memcpy(p + 1, G->vnames[i], l);
        p += 1 + l;
    }
    if (r)
        return r;
    char kb[72];
    MDB_val k = vkey(G->name, kb), v = {(size_t)(p - buf), buf};
    return mdb_put(t, db->meta, &k, &v, 0);
}

int vqs_db_create_group(vqs_db *db, const char *name, size_t n, const char *const *vnames,
                        const vqs_db_config *cfgs)
{
    if (!db || !vnames || !cfgs)
        return vqs_seterr(VQS_EINVAL, "db_create_group: NULL argument");
    int rc = vqs_db_check_name(name, name ? strlen(name) : 0);
    if (rc)
        return rc;
    if (n == 0 || n > VQS_DB_MAX_VECTORS)
        return vqs_seterr(VQS_EINVAL, "collection '%s': %zu named vectors (1..%d)", name, n, VQS_DB_MAX_VECTORS);
    for (size_t i = 0; i < n; i++) {
        if ((rc = vqs_db_check_vector_name(vnames[i])) || (rc = db_check_cfg(name, &cfgs[i])))
            return vqs_seterr(rc, "collection '%s': %s", name, vqs_errdetail());
        for (size_t j = 0; j < i; j++)
            if (!strcmp(vnames[i], vnames[j]))
                return vqs_seterr(VQS_EINVAL, "collection '%s': vector name '%s' given twice", name, vnames[i]);
    }
    group_ctx G = {name, n, vnames, cfgs};
    return db_write_txn(db, name, "create", create_group_fn, &G);
}

int db_vectors_drop(vqs_db *db, MDB_txn *t, const char *name, int *vqs)
{
    char kb[72];
    MDB_val k = vkey(name, kb), v;
    int r = mdb_get(t, db->meta, &k, &v);
    if (r == MDB_NOTFOUND)
        return 0;
    if (r)
        return r;
    char **names;
    size_t n;
    int rc = decode(&v, name, &names, &n);
    if (rc)
        return *vqs = 1, rc;
    vqs_db_vectors_free(names, n);
    for (size_t i = 1; i < n; i++) {
        char rn[80];
        vqs_db_vector_rec_name(name, i, rn, sizeof rn);
        if ((r = db_drop_rec(db, t, rn, vqs)))
            return r;
    }
    return mdb_del(t, db->meta, &k, NULL);
}
