/*
 * db_payload.c: write sessions (several changes of a collection in one LMDB
 * write transaction), payload changes that keep a point's internal id, and
 * the walk over a collection's points in point-id order (scroll).
 * Declarations: vqs_store_db.h.
 *
 * Design decisions:
 * - A session is db_write_txn plus the collection record read once at the
 *   start and written back once before the commit; upsert and delete inside
 *   it run the same bodies as vqs_db_upsert / vqs_db_delete
 *   (db_upsert_rec, db_delete_rec), so one code path writes points.
 *   Rejected: a transaction handle exported to the collection layer (LMDB
 *   types would leak above storage).
 * - The session's calls return vqs codes; an LMDB error is kept in the
 *   session and handed to db_write_txn as an LMDB code, so MDB_MAP_FULL
 *   still grows the map and replays the session, and the disk-full
 *   messages stay in one place.
 * - A payload change rewrites only the point's pt record: its internal id,
 *   codes and vector stay, so nothing is re-encoded and the in-memory index
 *   is untouched. The payload indexes see the old payload removed and the
 *   new one added (db_pindex_point), as an upsert's replacement does.
 * - Scroll walks ext, whose keys are (coll, kind, id) big-endian: integer
 *   ids in numeric order, then UUIDs by bytes, which is Qdrant's order of
 *   point ids. Rejected: collecting and sorting every id per page.
 */
#define _GNU_SOURCE /* pthread_rwlock_t in db_internal.h */
#include "db_internal.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vqs_db_wtx {
    vqs_db *db;
    MDB_txn *t;
    const char *name;
    db_rec r;
    int lmdb; /* the first LMDB error of the session (0: none) */
};

typedef struct sess_ctx {
    const char *name;
    vqs_db_write_fn fn;
    void *ctx;
} sess_ctx;

/* an LMDB code e from inside a session: kept for db_write_txn */
static int lmdb_fail(vqs_db_wtx *w, int e, const char *what)
{
    if (!w->lmdb)
        w->lmdb = e;
    return db_lmdb_err(e, what, w->name);
}

/* a db_write_fn-style return (e: LMDB code unless vqs) as a session call's */
static int as_vqs(vqs_db_wtx *w, int e, int vqs, const char *what)
{
    if (!e)
        return 0;
    return vqs ? e : lmdb_fail(w, e, what);
}

static int session_fn(vqs_db *db, MDB_txn *t, void *ctx, int *vqs)
{
    sess_ctx *S = ctx;
    vqs_db_wtx w = {db, t, S->name, {0}, 0};
    int rc = db_get_rec(db, t, S->name, &w.r);
    if (rc)
        return *vqs = 1, rc;
    rc = S->fn(&w, S->ctx);
    if (w.lmdb) /* the transaction is unusable: let db_write_txn grow or report */
        return w.lmdb;
    if (rc)
        return *vqs = 1, rc;
    return db_put_rec(db, t, S->name, &w.r);
}

int vqs_db_write(vqs_db *db, const char *name, vqs_db_write_fn fn, void *ctx)
{
    if (!db || !name || !fn)
        return vqs_seterr(VQS_EINVAL, "db_write: NULL argument");
    sess_ctx S = {name, fn, ctx};
    return db_write_txn(db, name, "write", session_fn, &S);
}

typedef struct group_ctx {
    size_t n;
    const char *const *names;
    vqs_db_group_fn fn;
    void *ctx;
} group_ctx;

static int group_fn(vqs_db *db, MDB_txn *t, void *ctx, int *vqs)
{
    group_ctx *G = ctx;
    vqs_db_wtx w[VQS_DB_MAX_VECTORS], *wp[VQS_DB_MAX_VECTORS];
    int rc = 0;
    for (size_t i = 0; i < G->n && !rc; i++) {
        w[i] = (vqs_db_wtx){db, t, G->names[i], {0}, 0};
        wp[i] = &w[i];
        rc = db_get_rec(db, t, G->names[i], &w[i].r);
    }
    if (rc)
        return *vqs = 1, rc;
    rc = G->fn(wp, G->ctx);
    for (size_t i = 0; i < G->n; i++)
        if (w[i].lmdb) /* the transaction is unusable: let db_write_txn grow or report */
            return w[i].lmdb;
    if (rc)
        return *vqs = 1, rc;
    for (size_t i = 0; i < G->n && !rc; i++)
        rc = db_put_rec(db, t, G->names[i], &w[i].r);
    return rc;
}

int vqs_db_write_group(vqs_db *db, size_t n, const char *const *names, vqs_db_group_fn fn, void *ctx)
{
    if (!db || !names || !fn || n == 0 || n > VQS_DB_MAX_VECTORS)
        return vqs_seterr(VQS_EINVAL, "db_write_group: NULL argument or %zu collections", n);
    group_ctx G = {n, names, fn, ctx};
    return db_write_txn(db, names[0], "write", group_fn, &G);
}

uint64_t vqs_db_wtx_next_iid(const vqs_db_wtx *w) { return w->r.next_iid; }

int vqs_db_wtx_upsert(vqs_db_wtx *w, const vqs_db_batch *b, uint64_t *iids, uint64_t *old_iids)
{
    if (w->lmdb)
        return vqs_seterr(VQS_EINVAL, "db_wtx_upsert: the session already failed");
    if (!b || (b->n && (!b->ids || !b->codes)))
        return vqs_seterr(VQS_EINVAL, "db_wtx_upsert: NULL argument");
    if (b->n == 0)
        return 0;
    int vqs = 0;
    int e = db_upsert_rec(w->db, w->t, w->name, &w->r, b, iids, old_iids, &vqs);
    return as_vqs(w, e, vqs, "upsert");
}

int vqs_db_wtx_delete(vqs_db_wtx *w, size_t n, const vqs_pid *ids, uint64_t *iids, size_t *ndeleted)
{
    if (w->lmdb)
        return vqs_seterr(VQS_EINVAL, "db_wtx_delete: the session already failed");
    if (n && !ids)
        return vqs_seterr(VQS_EINVAL, "db_wtx_delete: NULL argument");
    int vqs = 0;
    size_t nd = 0;
    int e = db_delete_rec(w->db, w->t, w->name, &w->r, n, ids, iids, &nd, &vqs);
    if (ndeleted)
        *ndeleted = nd;
    return as_vqs(w, e, vqs, "delete");
}

/* the live internal id of a point: 0, VQS_ENOTFOUND, or an error */
static int find_iid(vqs_db_wtx *w, const vqs_pid *id, uint64_t *iid)
{
    uint8_t kb[21];
    MDB_val k, v;
    int rc = db_ext_key(w->r.id, id, kb, &k);
    if (rc)
        return rc;
    int e = mdb_get(w->t, w->db->ext, &k, &v);
    if (e == MDB_NOTFOUND) {
        char b[40];
        return vqs_seterr(VQS_ENOTFOUND, "No point with id %s found", vqs_pid_format(id, b));
    }
    if (e)
        return lmdb_fail(w, e, "read the id map");
    if (v.mv_size != 8)
        return vqs_seterr(VQS_ECORRUPT, "collection '%s': id map entry of %zu bytes", w->name, v.mv_size);
    *iid = vqs_le64_get(v.mv_data);
    return 0;
}

int vqs_db_wtx_get(vqs_db_wtx *w, const vqs_pid *id, uint64_t *iid, const char **pay, size_t *len)
{
    if (w->lmdb)
        return vqs_seterr(VQS_EINVAL, "db_wtx_get: the session already failed");
    uint64_t i = 0;
    int rc = find_iid(w, id, &i);
    if (rc)
        return rc;
    if (iid)
        *iid = i;
    if (pay) {
        uint8_t ib[12];
        MDB_val k = db_iid_key(w->r.id, i, ib), v;
        int e = mdb_get(w->t, w->db->pt, &k, &v);
        if (e == MDB_NOTFOUND)
            return vqs_seterr(VQS_ECORRUPT, "collection '%s': internal id %llu has no point record", w->name,
                              (unsigned long long)i);
        if (e)
            return lmdb_fail(w, e, "read a point");
        return db_pt_decode(&v, NULL, pay, len);
    }
    return 0;
}

int vqs_db_wtx_set_payload(vqs_db_wtx *w, const vqs_pid *id, const char *pay, size_t len, uint64_t *iid)
{
    if (w->lmdb)
        return vqs_seterr(VQS_EINVAL, "db_wtx_set_payload: the session already failed");
    if (!pay)
        len = 0;
    uint64_t i = 0;
    int rc = find_iid(w, id, &i);
    if (rc)
        return rc;
    if (iid)
        *iid = i;
    uint8_t ib[12];
    MDB_val k = db_iid_key(w->r.id, i, ib), v;
    int e = mdb_get(w->t, w->db->pt, &k, &v), vqs = 0;
    if (e == MDB_NOTFOUND)
        return vqs_seterr(VQS_ECORRUPT, "collection '%s': internal id %llu has no point record", w->name,
                          (unsigned long long)i);
    if (e)
        return lmdb_fail(w, e, "read a point");
    if (v.mv_size < DB_PT_HDR)
        return db_pt_decode(&v, NULL, NULL, NULL); /* the corruption message */
    uint8_t hdr[DB_PT_HDR];
    memcpy(hdr, v.mv_data, DB_PT_HDR);
    size_t oldlen = v.mv_size - DB_PT_HDR;
    /* the old payload leaves the indexes before its bytes are overwritten */
    if (oldlen && (e = db_pindex_point(w->db, w->t, &w->r, i, (const char *)v.mv_data + DB_PT_HDR, oldlen, 0, &vqs)))
        return as_vqs(w, e, vqs, "payload index");
    MDB_val nv = {DB_PT_HDR + len, NULL};
    if ((e = mdb_put(w->t, w->db->pt, &k, &nv, MDB_RESERVE)))
        return lmdb_fail(w, e, "write a payload");
    memcpy(nv.mv_data, hdr, DB_PT_HDR);
    if (len)
        memcpy((uint8_t *)nv.mv_data + DB_PT_HDR, pay, len);
    if (len && (e = db_pindex_point(w->db, w->t, &w->r, i, pay, len, 1, &vqs)))
        return as_vqs(w, e, vqs, "payload index");
    w->r.payload_bytes = w->r.payload_bytes - oldlen + len;
    return 0;
}

int vqs_db_wtx_select(vqs_db_wtx *w, vqs_db_point_fn fn, void *ctx)
{
    if (w->lmdb)
        return vqs_seterr(VQS_EINVAL, "db_wtx_select: the session already failed");
    MDB_cursor *cur;
    int e = mdb_cursor_open(w->t, w->db->pt, &cur), rc = 0;
    if (e)
        return lmdb_fail(w, e, "walk the points");
    uint8_t ib[12];
    MDB_val k = db_iid_key(w->r.id, 0, ib), v;
    for (e = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); e == 0; e = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 12 || get32be(k.mv_data) != w->r.id)
            break;
        vqs_pid id;
        const char *p = NULL;
        size_t pl = 0;
        if ((rc = db_pt_decode(&v, &id, &p, &pl)) || (rc = fn(ctx, get64be((const uint8_t *)k.mv_data + 4), &id, p, pl)))
            break;
    }
    mdb_cursor_close(cur);
    if (!rc && e && e != MDB_NOTFOUND)
        rc = lmdb_fail(w, e, "walk the points");
    return rc;
}

/* ---- scroll -------------------------------------------------------------- */

int vqs_db_scroll(vqs_db *db, const char *name, const vqs_pid *from, vqs_db_point_fn fn, void *ctx)
{
    if (!db || !name || !fn)
        return vqs_seterr(VQS_EINVAL, "db_scroll: NULL argument");
    MDB_txn *t;
    int rc = db_txn_begin(db, 0, &t);
    if (rc)
        return rc;
    db_rec r;
    MDB_cursor *cur = NULL;
    if ((rc = db_get_rec(db, t, name, &r)))
        goto done;
    int e = mdb_cursor_open(t, db->ext, &cur);
    if (e) {
        rc = db_lmdb_err(e, "scroll", name);
        goto done;
    }
    uint8_t kb[21];
    MDB_val k;
    if (from) {
        if ((rc = db_ext_key(r.id, from, kb, &k)))
            goto done;
    } else {
        put32be(kb, r.id);
        k = (MDB_val){4, kb};
    }
    MDB_val v;
    for (e = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); e == 0; e = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        if (k.mv_size < 5 || get32be(kp) != r.id)
            break;
        vqs_pid id = {0};
        id.kind = kp[4];
        if (id.kind == VQS_PID_U64 && k.mv_size == 13) {
            id.u64 = get64be(kp + 5);
        } else if (id.kind == VQS_PID_UUID && k.mv_size == 21) {
            memcpy(id.uuid, kp + 5, 16);
        } else {
            rc = vqs_seterr(VQS_ECORRUPT, "collection '%s': id map key of %zu bytes, kind %u", name, k.mv_size, kp[4]);
            break;
        }
        if (v.mv_size != 8) {
            rc = vqs_seterr(VQS_ECORRUPT, "collection '%s': id map entry of %zu bytes", name, v.mv_size);
            break;
        }
        uint64_t iid = vqs_le64_get(v.mv_data);
        uint8_t ib[12];
        MDB_val pk = db_iid_key(r.id, iid, ib), pv;
        int pe = mdb_get(t, db->pt, &pk, &pv);
        if (pe) {
            rc = pe == MDB_NOTFOUND ? vqs_seterr(VQS_ECORRUPT, "collection '%s': internal id %llu has no point record",
                                                 name, (unsigned long long)iid)
                                    : db_lmdb_err(pe, "scroll", name);
            break;
        }
        const char *p = NULL;
        size_t pl = 0;
        if ((rc = db_pt_decode(&pv, NULL, &p, &pl)) || (rc = fn(ctx, iid, &id, p, pl)))
            break;
    }
    if (!rc && e && e != MDB_NOTFOUND)
        rc = db_lmdb_err(e, "scroll", name);
done:
    if (cur)
        mdb_cursor_close(cur);
    db_txn_abort(db, t);
    return rc;
}
