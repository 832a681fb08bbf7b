/*
 * db_points.c: the points of a collection in the LMDB store
 * (vqs_store_db.h): upsert, delete, get by id or internal id, iterate, and
 * the walk over the stored codes that opening a collection does. Layout:
 * storage/README.md.
 *
 * Design decisions:
 * - Codes are stored one record per upsert batch ("segment": the batch's
 *   codes and coarse lists in one value, keyed by its first internal id).
 *   Opening a collection is then a walk over a few large values (LMDB keeps
 *   them on contiguous overflow pages), 1M codes in ~1k reads, and a batch
 *   is written with one put. Deletions and replacements do not rewrite the
 *   segment: the old internal id goes into the dead set, which the loader
 *   merges out. Rejected: one record per IVF list (every batch would
 *   rewrite the lists it touches: O(list size) per upsert), one record per
 *   vector (1M B-tree entries to walk at open, 16+ bytes of key per 16-byte
 *   code).
 * - Internal ids are dense and never reused, so they address the vector
 *   file directly; the maps ext -> iid and iid -> (ext, payload) make both
 *   directions one lookup.
 */
#define _GNU_SOURCE /* pthread_rwlock_t in db_internal.h */
#include "db_internal.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* pt value: kind(1) id(16: u64 BE in the first 8 bytes, or the UUID) payload */
#define PT_HDR 17

int db_pt_decode(const MDB_val *v, vqs_pid *id, const char **pay, size_t *plen)
{
    const uint8_t *p = v->mv_data;
    if (v->mv_size < PT_HDR || (p[0] != VQS_PID_U64 && p[0] != VQS_PID_UUID))
        return vqs_seterr(VQS_ECORRUPT, "point record of %zu bytes, id kind %u", v->mv_size,
                          v->mv_size ? p[0] : 0);
    if (id) {
        memset(id, 0, sizeof *id);
        id->kind = p[0];
        if (p[0] == VQS_PID_U64)
            id->u64 = get64be(p + 1);
        else
            memcpy(id->uuid, p + 1, 16);
    }
    if (pay) {
        *plen = v->mv_size - PT_HDR;
        *pay = *plen ? (const char *)p + PT_HDR : NULL;
    }
    return 0;
}

char *db_dup_payload(const char *p, size_t n)
{
    if (!p)
        return NULL;
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

/* ---- points -------------------------------------------------------------- */

typedef struct ups_ctx {
    const char *name;
    const vqs_db_batch *b;
    uint64_t *iids, *old;
    int (*before_commit)(void *, uint64_t, size_t);
    void *ctx;
} ups_ctx;

/* Marks a live internal id dead: removes its point record, adds it to the
 * dead set. */
int db_kill_iid(vqs_db *db, MDB_txn *t, db_rec *r, uint64_t iid, int *vqs)
{
    uint8_t kb[12];
    MDB_val k = db_iid_key(r->id, iid, kb), v;
    int e = mdb_get(t, db->pt, &k, &v);
    if (e == 0) {
        size_t plen = v.mv_size >= PT_HDR ? v.mv_size - PT_HDR : 0;
        r->payload_bytes -= plen;
        if (plen && (e = db_pindex_point(db, t, r, iid, (const char *)v.mv_data + PT_HDR, plen, 0, vqs)))
            return e;
        if ((e = mdb_del(t, db->pt, &k, NULL)))
            return e;
    } else if (e != MDB_NOTFOUND) {
        return e;
    }
    MDB_val empty = {0, ""};
    if ((e = mdb_put(t, db->dead, &k, &empty, 0)))
        return e;
    r->deleted++;
    r->count--;
    return 0;
}

static int cmp_key21(const void *a, const void *b) { return memcmp(a, b, 21); }

int db_upsert_rec(vqs_db *db, MDB_txn *t, const char *name, db_rec *r, const vqs_db_batch *b, uint64_t *iids,
                  uint64_t *olds, int *vqs)
{
    int rc;
    if (r->code_size && b->code_size != r->code_size)
        return *vqs = 1, vqs_seterr(VQS_EINVAL, "collection '%s': codes of %zu bytes, the stored ones have %u",
                                    name, b->code_size, r->code_size);
    if (b->code_size == 0 || b->code_size > (1u << 20))
        return *vqs = 1, vqs_seterr(VQS_EINVAL, "collection '%s': code size %zu", name, b->code_size);
    if (b->n > (1u << 24))
        return *vqs = 1, vqs_seterr(VQS_EINVAL, "collection '%s': batch of %zu points (at most 2^24)", name, b->n);
    uint64_t first = r->next_iid;
    uint8_t kb[21], ib[12];
    int e;
    for (size_t i = 0; i < b->n; i++) {
        MDB_val k, v;
        if ((rc = db_ext_key(r->id, &b->ids[i], kb, &k)))
            return *vqs = 1, vqs_seterr(rc, "collection '%s': point %zu of the batch: %s", name, i, vqs_errdetail());
        uint64_t old = UINT64_MAX;
        e = mdb_get(t, db->ext, &k, &v);
        if (e == 0) {
            if (v.mv_size != 8)
                return *vqs = 1, vqs_seterr(VQS_ECORRUPT, "collection '%s': id map entry of %zu bytes", name, v.mv_size);
            old = vqs_le64_get(v.mv_data);
            if (old >= first)
                return *vqs = 1, vqs_seterr(VQS_EINVAL, "collection '%s': point %zu of the batch repeats an id earlier in the batch",
                                            name, i);
            if ((e = db_kill_iid(db, t, r, old, vqs)))
                return e;
        } else if (e != MDB_NOTFOUND) {
            return e;
        }
        if (olds)
            olds[i] = old;
        uint64_t iid = first + i;
        if (iids)
            iids[i] = iid;
        uint8_t vb[8];
        vqs_le64_put(vb, iid);
        MDB_val iv = {8, vb};
        if ((e = mdb_put(t, db->ext, &k, &iv, 0)))
            return e;
        const char *pay = b->payloads ? b->payloads[i] : NULL;
        size_t plen = pay ? strlen(pay) : 0;
        MDB_val pk = db_iid_key(r->id, iid, ib), pv = {PT_HDR + plen, NULL};
        if ((e = mdb_put(t, db->pt, &pk, &pv, MDB_RESERVE)))
            return e;
        uint8_t *p = pv.mv_data;
        memset(p, 0, PT_HDR);
        p[0] = b->ids[i].kind;
        if (p[0] == VQS_PID_U64)
            put64be(p + 1, b->ids[i].u64);
        else
            memcpy(p + 1, b->ids[i].uuid, 16);
        if (plen)
            memcpy(p + PT_HDR, pay, plen);
        if (plen && (e = db_pindex_point(db, t, r, iid, pay, plen, 1, vqs)))
            return e;
        r->payload_bytes += plen;
        r->count++;
    }
    /* the segment: u32 n, u32 code_size, n u32 lists, n * code_size bytes */
    size_t sz = 8 + 4 * b->n + b->n * b->code_size;
    MDB_val sk = db_iid_key(r->id, first, ib), sv = {sz, NULL};
    if ((e = mdb_put(t, db->seg, &sk, &sv, MDB_RESERVE)))
        return e;
    uint8_t *s = sv.mv_data;
    vqs_le32_put(s, (uint32_t)b->n);
    vqs_le32_put(s + 4, (uint32_t)b->code_size);
    for (size_t i = 0; i < b->n; i++)
        vqs_le32_put(s + 8 + 4 * i, b->lists ? b->lists[i] : 0);
    memcpy(s + 8 + 4 * b->n, b->codes, b->n * b->code_size);
    r->code_size = (uint32_t)b->code_size;
    r->code_bytes += b->n * b->code_size;
    r->next_iid = first + b->n;
    return 0;
}

static int upsert_fn(vqs_db *db, MDB_txn *t, void *ctx, int *vqs)
{
    ups_ctx *U = ctx;
    db_rec r;
    int rc = db_get_rec(db, t, U->name, &r), e;
    if (rc)
        return *vqs = 1, rc;
    uint64_t first = r.next_iid;
    if ((e = db_upsert_rec(db, t, U->name, &r, U->b, U->iids, U->old, vqs)))
        return e;
    if ((e = db_put_rec(db, t, U->name, &r)))
        return e;
    if (U->before_commit && (rc = U->before_commit(U->ctx, first, U->b->n)))
        return *vqs = 1, rc;
    return 0;
}

int vqs_db_upsert(vqs_db *db, const char *name, const vqs_db_batch *b, uint64_t *iids,
                  uint64_t *old_iids, int (*before_commit)(void *ctx, uint64_t first, size_t n),
                  void *ctx)
{
    if (!db || !b || (b->n && (!b->ids || !b->codes)))
        return vqs_seterr(VQS_EINVAL, "db_upsert: NULL argument");
    if (b->n == 0)
        return 0;
    /* ids must be distinct within the batch (the in-transaction check above
     * only catches a repeat of an id that was new; sorting catches all) */
    uint8_t *keys = malloc(21 * b->n);
    if (!keys)
        return vqs_seterr(VQS_ENOMEM, "db_upsert: %zu points", b->n);
    for (size_t i = 0; i < b->n; i++) {
        MDB_val k;
        memset(keys + 21 * i, 0, 21);
        int rc = db_ext_key(0, &b->ids[i], keys + 21 * i, &k);
        if (rc) {
            free(keys);
            return vqs_seterr(rc, "collection '%s': point %zu of the batch: %s", name, i, vqs_errdetail());
        }
    }
    qsort(keys, b->n, 21, cmp_key21);
    for (size_t i = 1; i < b->n; i++)
        if (!memcmp(keys + 21 * (i - 1), keys + 21 * i, 21)) {
            vqs_pid p = {0};
            p.kind = keys[21 * i + 4];
            if (p.kind == VQS_PID_U64)
                p.u64 = get64be(keys + 21 * i + 5);
            else
                memcpy(p.uuid, keys + 21 * i + 5, 16);
            char buf[40];
            free(keys);
            return vqs_seterr(VQS_EINVAL, "collection '%s': point id %s appears twice in the batch", name,
                              vqs_pid_format(&p, buf));
        }
    free(keys);
    ups_ctx U = {name, b, iids, old_iids, before_commit, ctx};
    return db_write_txn(db, name, "upsert", upsert_fn, &U);
}

typedef struct del_ctx {
    const char *name;
    size_t n;
    const vqs_pid *ids;
    uint64_t *iids;
    size_t nd;
} del_ctx;

int db_delete_rec(vqs_db *db, MDB_txn *t, const char *name, db_rec *r, size_t n, const vqs_pid *ids, uint64_t *iids,
                  size_t *nd, int *vqs)
{
    int rc;
    *nd = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t kb[21];
        MDB_val k, v;
        if (iids)
            iids[i] = UINT64_MAX;
        if ((rc = db_ext_key(r->id, &ids[i], kb, &k)))
            return *vqs = 1, vqs_seterr(rc, "collection '%s': id %zu: %s", name, i, vqs_errdetail());
        int e = mdb_get(t, db->ext, &k, &v);
        if (e == MDB_NOTFOUND)
            continue;
        if (e)
            return e;
        if (v.mv_size != 8)
            return *vqs = 1, vqs_seterr(VQS_ECORRUPT, "collection '%s': id map entry of %zu bytes", name, v.mv_size);
        uint64_t iid = vqs_le64_get(v.mv_data);
        if ((e = mdb_del(t, db->ext, &k, NULL)) || (e = db_kill_iid(db, t, r, iid, vqs)))
            return e;
        if (iids)
            iids[i] = iid;
        (*nd)++;
    }
    return 0;
}

static int delete_fn(vqs_db *db, MDB_txn *t, void *ctx, int *vqs)
{
    del_ctx *D = ctx;
    db_rec r;
    int rc = db_get_rec(db, t, D->name, &r);
    if (rc)
        return *vqs = 1, rc;
    if ((rc = db_delete_rec(db, t, D->name, &r, D->n, D->ids, D->iids, &D->nd, vqs)))
        return rc;
    return db_put_rec(db, t, D->name, &r);
}

int vqs_db_delete(vqs_db *db, const char *name, size_t n, const vqs_pid *ids, uint64_t *iids,
                  size_t *ndeleted)
{
    if (!db || (n && !ids))
        return vqs_seterr(VQS_EINVAL, "db_delete: NULL argument");
    del_ctx D = {name, n, ids, iids, 0};
    int rc = db_write_txn(db, name, "delete", delete_fn, &D);
    if (!rc && ndeleted)
        *ndeleted = D.nd;
    return rc;
}

int vqs_db_get(vqs_db *db, const char *name, const vqs_pid *id, uint64_t *iid, char **payload)
{
    if (!db || !id)
        return vqs_seterr(VQS_EINVAL, "db_get: NULL argument");
    if (payload)
        *payload = NULL;
    MDB_txn *t;
    int rc = db_txn_begin(db, 0, &t);
    if (rc)
        return rc;
    db_rec r;
    uint8_t kb[21], ib[12];
    MDB_val k, v;
    char buf[40];
    if ((rc = db_get_rec(db, t, name, &r)) || (rc = db_ext_key(r.id, id, kb, &k)))
        goto done;
    int e = mdb_get(t, db->ext, &k, &v);
    if (e == MDB_NOTFOUND) {
        rc = vqs_seterr(VQS_ENOTFOUND, "collection '%s': no point %s", name, vqs_pid_format(id, buf));
        goto done;
    }
    if (e || v.mv_size != 8) {
        rc = e ? db_lmdb_err(e, "read the id map", name) : vqs_seterr(VQS_ECORRUPT, "collection '%s': id map entry", name);
        goto done;
    }
    uint64_t i = vqs_le64_get(v.mv_data);
    if (iid)
        *iid = i;
    if (payload) {
        MDB_val pk = db_iid_key(r.id, i, ib), pv;
        const char *p = NULL;
        size_t pl = 0;
        if ((e = mdb_get(t, db->pt, &pk, &pv))) {
            rc = e == MDB_NOTFOUND ? vqs_seterr(VQS_ECORRUPT, "collection '%s': point %s has no record", name, vqs_pid_format(id, buf))
                                   : db_lmdb_err(e, "read a point", name);
            goto done;
        }
        if ((rc = db_pt_decode(&pv, NULL, &p, &pl)))
            goto done;
        if (p && !(*payload = db_dup_payload(p, pl)))
            rc = vqs_seterr(VQS_ENOMEM, "db_get");
    }
done:
    db_txn_abort(db, t);
    return rc;
}

int vqs_db_get_iid(vqs_db *db, const char *name, uint64_t iid, vqs_pid *id, char **payload)
{
    if (!db)
        return vqs_seterr(VQS_EINVAL, "db_get_iid: NULL argument");
    if (payload)
        *payload = NULL;
    MDB_txn *t;
    int rc = db_txn_begin(db, 0, &t);
    if (rc)
        return rc;
    db_rec r;
    uint8_t ib[12];
    if ((rc = db_get_rec(db, t, name, &r)))
        goto done;
    MDB_val k = db_iid_key(r.id, iid, ib), v;
    int e = mdb_get(t, db->pt, &k, &v);
    if (e) {
        rc = e == MDB_NOTFOUND ? vqs_seterr(VQS_ENOTFOUND, "collection '%s': internal id %llu is not live", name,
                                            (unsigned long long)iid)
                               : db_lmdb_err(e, "read a point", name);
        goto done;
    }
    const char *p = NULL;
    size_t pl = 0;
    if ((rc = db_pt_decode(&v, id, &p, &pl)))
        goto done;
    if (payload && p && !(*payload = db_dup_payload(p, pl)))
        rc = vqs_seterr(VQS_ENOMEM, "db_get_iid");
done:
    db_txn_abort(db, t);
    return rc;
}

int vqs_db_iterate(vqs_db *db, const char *name,
                   int (*fn)(void *ctx, uint64_t iid, const vqs_pid *id, const char *payload,
                             size_t payload_len),
                   void *ctx)
{
    if (!db || !fn)
        return vqs_seterr(VQS_EINVAL, "db_iterate: NULL argument");
    MDB_txn *t;
    int rc = db_txn_begin(db, 0, &t);
    if (rc)
        return rc;
    db_rec r;
    MDB_cursor *cur = NULL;
    if ((rc = db_get_rec(db, t, name, &r)))
        goto done;
    int e = mdb_cursor_open(t, db->pt, &cur);
    if (e) {
        rc = db_lmdb_err(e, "iterate", name);
        goto done;
    }
    uint8_t ib[12];
    MDB_val k = db_iid_key(r.id, 0, ib), v;
    for (e = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); e == 0; e = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 12 || get32be(k.mv_data) != r.id)
            break;
        vqs_pid id;
        const char *p = NULL;
        size_t pl = 0;
        if ((rc = db_pt_decode(&v, &id, &p, &pl)) || (rc = fn(ctx, get64be((const uint8_t *)k.mv_data + 4), &id, p, pl)))
            break;
    }
    if (!rc && e && e != MDB_NOTFOUND)
        rc = db_lmdb_err(e, "iterate", name);
done:
    if (cur)
        mdb_cursor_close(cur);
    db_txn_abort(db, t);
    return rc;
}

int vqs_db_load_codes(vqs_db *db, const char *name,
                      int (*fn)(void *ctx, size_t n, const uint64_t *iids, const uint32_t *lists,
                                const uint8_t *codes, size_t code_size),
                      void *ctx)
{
    if (!db || !fn)
        return vqs_seterr(VQS_EINVAL, "db_load_codes: NULL argument");
    MDB_txn *t;
    int rc = db_txn_begin(db, 0, &t);
    if (rc)
        return rc;
    db_rec r;
    MDB_cursor *cur = NULL, *dc = NULL;
    uint64_t *iids = NULL;
    uint32_t *lists = NULL;
    uint8_t *codes = NULL;
    size_t cap = 0;
    if ((rc = db_get_rec(db, t, name, &r)))
        goto done;
    int e, de;
    if ((e = mdb_cursor_open(t, db->seg, &cur)) || (e = mdb_cursor_open(t, db->dead, &dc))) {
        rc = db_lmdb_err(e, "load codes", name);
        goto done;
    }
    /* merge-walk the segments and the dead set, both in internal-id order */
    uint8_t ib[12], db2[12];
    MDB_val k = db_iid_key(r.id, 0, ib), v, dk = db_iid_key(r.id, 0, db2), dv;
    de = mdb_cursor_get(dc, &dk, &dv, MDB_SET_RANGE);
    uint64_t dead = de == 0 && dk.mv_size == 12 && get32be(dk.mv_data) == r.id ? get64be((uint8_t *)dk.mv_data + 4)
                                                                              : UINT64_MAX;
    uint64_t expect = 0;
    for (e = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); e == 0; e = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 12 || get32be(k.mv_data) != r.id)
            break;
        uint64_t first = get64be((const uint8_t *)k.mv_data + 4);
        const uint8_t *s = v.mv_data;
        size_t n = v.mv_size >= 8 ? vqs_le32_get(s) : 0, cs = v.mv_size >= 8 ? vqs_le32_get(s + 4) : 0;
        if (v.mv_size < 8 || cs != r.code_size || v.mv_size != 8 + 4 * n + n * cs || first != expect ||
            first + n > r.next_iid) {
            rc = vqs_seterr(VQS_ECORRUPT,
                            "collection '%s': segment at internal id %llu: %zu bytes for %zu codes of %zu bytes "
                            "(expected first id %llu, code size %u)",
                            name, (unsigned long long)first, v.mv_size, n, cs, (unsigned long long)expect, r.code_size);
            break;
        }
        expect = first + n;
        if (n > cap) {
            free(iids), free(lists), free(codes);
            cap = n;
            iids = malloc(8 * cap), lists = malloc(4 * cap), codes = malloc(cs * cap);
            if (!iids || !lists || !codes) {
                rc = vqs_seterr(VQS_ENOMEM, "load codes: %zu points", n);
                break;
            }
        }
        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            uint64_t iid = first + i;
            while (dead < iid) {
                de = mdb_cursor_get(dc, &dk, &dv, MDB_NEXT);
                dead = de == 0 && dk.mv_size == 12 && get32be(dk.mv_data) == r.id ? get64be((uint8_t *)dk.mv_data + 4)
                                                                                 : UINT64_MAX;
            }
            if (dead == iid)
                continue;
            iids[m] = iid;
            lists[m] = vqs_le32_get(s + 8 + 4 * i);
            memcpy(codes + m * cs, s + 8 + 4 * n + i * cs, cs);
            m++;
        }
        if (m && (rc = fn(ctx, m, iids, lists, codes, cs)))
            break;
    }
    if (!rc && e && e != MDB_NOTFOUND)
        rc = db_lmdb_err(e, "load codes", name);
    if (!rc && expect != r.next_iid)
        rc = vqs_seterr(VQS_ECORRUPT, "collection '%s': the segments hold internal ids up to %llu, %llu were handed out",
                        name, (unsigned long long)expect, (unsigned long long)r.next_iid);
done:
    if (cur)
        mdb_cursor_close(cur);
    if (dc)
        mdb_cursor_close(dc);
    db_txn_abort(db, t);
    free(iids);
    free(lists);
    free(codes);
    return rc;
}
