/*
 * db_colls.c: collections in the LMDB store (vqs_store_db.h): the
 * collection record, create, drop, list, info, the search defaults and the
 * trained state (set, get, train in place). Layout: storage/README.md.
 *
 * Design decisions:
 * - One environment per data directory (DIR/vqs.mdb, MDB_NOSUBDIR), five
 *   named databases shared by all collections; every key of a collection
 *   starts with its 4-byte collection number (big-endian), so a collection
 *   is one contiguous key range per database and dropping it is a range
 *   delete. Collection names live only in the meta record, so a name is
 *   reusable at once after a drop.
 */
#define _GNU_SOURCE /* pthread_rwlock_t in db_internal.h */
#include "db_internal.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the collection record ("c:" NAME in meta) -------------------------- *
 * Little-endian fields, REC_BYTES in all:
 *   0 u32 record version (1)       4 u32 collection number
 *   8 u32 d   12 u32 metric   16 u32 rerank   20 u32 nprobe
 *  24 f32 oversampling   28 u32 code_size (0 until the first batch)
 *  32 u64 train_size  40 u64 count  48 u64 next_iid  56 u64 deleted
 *  64 u64 code_bytes  72 u64 payload_bytes  80 u32 trained
 *  84 f32 sq_clip (SQ8/SQ4 training ranges; 0, the default, is what records
 *     written before it held there: no new record version)
 *  88 char spec[128] */
#define REC_BYTES 216

static void rec_put(uint8_t *p, const db_rec *r)
{
    memset(p, 0, REC_BYTES);
    vqs_le32_put(p, 1);
    vqs_le32_put(p + 4, r->id);
    vqs_le32_put(p + 8, r->cfg.d);
    vqs_le32_put(p + 12, r->cfg.metric);
    vqs_le32_put(p + 16, r->cfg.rerank);
    vqs_le32_put(p + 20, r->cfg.nprobe);
    uint32_t f;
    memcpy(&f, &r->cfg.oversampling, 4);
    vqs_le32_put(p + 24, f);
    vqs_le32_put(p + 28, r->code_size);
    vqs_le64_put(p + 32, r->cfg.train_size);
    vqs_le64_put(p + 40, r->count);
    vqs_le64_put(p + 48, r->next_iid);
    vqs_le64_put(p + 56, r->deleted);
    vqs_le64_put(p + 64, r->code_bytes);
    vqs_le64_put(p + 72, r->payload_bytes);
    vqs_le32_put(p + 80, r->trained);
    memcpy(&f, &r->cfg.sq_clip, 4);
    vqs_le32_put(p + 84, f);
    memcpy(p + 88, r->cfg.spec, sizeof r->cfg.spec);
    p[88 + sizeof r->cfg.spec - 1] = 0;
}

/* sq_clip: 0 (default) or a quantile in (0.5, 1] (vqs_codec_opts.sq_clip) */
static int clip_ok(float c) { return c == 0 || (c > 0.5f && c <= 1.0f); }

static int rec_get(const MDB_val *v, db_rec *r, const char *name)
{
    const uint8_t *p = v->mv_data;
    if (v->mv_size != REC_BYTES || vqs_le32_get(p) != 1)
        return vqs_seterr(VQS_ECORRUPT, "collection '%s': configuration record of %zu bytes, version %u (expected %d bytes, version 1)",
                          name, v->mv_size, v->mv_size >= 4 ? vqs_le32_get(p) : 0, REC_BYTES);
    memset(r, 0, sizeof *r);
    r->id = vqs_le32_get(p + 4);
    r->cfg.d = vqs_le32_get(p + 8);
    r->cfg.metric = vqs_le32_get(p + 12);
    r->cfg.rerank = vqs_le32_get(p + 16);
    r->cfg.nprobe = vqs_le32_get(p + 20);
    uint32_t f = vqs_le32_get(p + 24);
    memcpy(&r->cfg.oversampling, &f, 4);
    r->code_size = vqs_le32_get(p + 28);
    r->cfg.train_size = vqs_le64_get(p + 32);
    r->count = vqs_le64_get(p + 40);
    r->next_iid = vqs_le64_get(p + 48);
    r->deleted = vqs_le64_get(p + 56);
    r->code_bytes = vqs_le64_get(p + 64);
    r->payload_bytes = vqs_le64_get(p + 72);
    r->trained = vqs_le32_get(p + 80);
    f = vqs_le32_get(p + 84);
    memcpy(&r->cfg.sq_clip, &f, 4);
    memcpy(r->cfg.spec, p + 88, sizeof r->cfg.spec);
    r->cfg.spec[sizeof r->cfg.spec - 1] = 0;
    if (r->cfg.d == 0 || r->cfg.metric > 2 || r->cfg.rerank > 2 || !clip_ok(r->cfg.sq_clip))
        return vqs_seterr(VQS_ECORRUPT, "collection '%s': configuration record holds d %u, metric %u, rerank %u, "
                          "sq_clip %g", name, r->cfg.d, r->cfg.metric, r->cfg.rerank, (double)r->cfg.sq_clip);
    return 0;
}

int vqs_db_check_name(const char *name, size_t n)
{
    if (!name || n == 0 || n > 63 || name[0] == '.')
        return vqs_seterr(VQS_EINVAL, "collection name '%.*s': 1 to 63 characters, not starting with '.'",
                          (int)(name ? (n > 80 ? 80 : n) : 6), name ? name : "(null)");
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-' || c == '.'))
            return vqs_seterr(VQS_EINVAL, "collection name '%.*s': character %zu ('%c') is not one of A-Z a-z 0-9 _ - .",
                              (int)(n > 80 ? 80 : n), name, i + 1, c);
    }
    return 0;
}

/* A record name: a collection's (vqs_db_check_name), or the name of one of
 * its further named vectors, NAME@I (db_vectors.c) */
int db_check_rec_name(const char *name)
{
    const char *at = name ? strchr(name, '@') : NULL;
    if (!at)
        return vqs_db_check_name(name, name ? strlen(name) : 0);
    int rc = vqs_db_check_name(name, (size_t)(at - name));
    if (rc)
        return rc;
    size_t nd = strspn(at + 1, "0123456789");
    if (nd == 0 || nd > 3 || at[1 + nd] || at[1] == '0')
        return vqs_seterr(VQS_EINVAL, "collection name '%.80s': '@' is only in the records of named vectors (NAME@1..999)",
                          name);
    return 0;
}

static MDB_val name_key(const char *name, char buf[72])
{
    int len = snprintf(buf, 72, "c:%s", name);
    return (MDB_val){(size_t)len, buf};
}

int db_get_rec(vqs_db *db, MDB_txn *t, const char *name, db_rec *r)
{
    char kb[72];
    int rc = db_check_rec_name(name);
    if (rc)
        return rc;
    MDB_val k = name_key(name, kb), v;
    rc = mdb_get(t, db->meta, &k, &v);
    if (rc == MDB_NOTFOUND)
        return vqs_seterr(VQS_ENOTFOUND, "collection '%s' does not exist in %s", name, db->dir);
    if (rc)
        return db_lmdb_err(rc, "read the configuration", name);
    return rec_get(&v, r, name);
}

int db_put_rec(vqs_db *db, MDB_txn *t, const char *name, const db_rec *r)
{
    char kb[72];
    uint8_t buf[REC_BYTES];
    rec_put(buf, r);
    MDB_val k = name_key(name, kb), v = {REC_BYTES, buf};
    return mdb_put(t, db->meta, &k, &v, 0);
}

/* ---- collections --------------------------------------------------------- */

int db_check_cfg(const char *name, const vqs_db_config *c)
{
    if (c->d == 0 || c->d > VQS_MAX_DIM_DEFAULT)
        return vqs_seterr(VQS_EINVAL, "collection '%s': dimension %u (1..%d)", name, c->d, VQS_MAX_DIM_DEFAULT);
    if (c->metric > 2)
        return vqs_seterr(VQS_EINVAL, "collection '%s': metric %u", name, c->metric);
    if (c->rerank > 2)
        return vqs_seterr(VQS_EINVAL, "collection '%s': rerank %u (0 none, 1 disk, 2 memory)", name, c->rerank);
    if (!memchr(c->spec, 0, sizeof c->spec) || !c->spec[0])
        return vqs_seterr(VQS_EINVAL, "collection '%s': empty or unterminated spec", name);
    if (!(c->oversampling >= 0) || c->oversampling > 1e6f)
        return vqs_seterr(VQS_EINVAL, "collection '%s': oversampling %g", name, (double)c->oversampling);
    if (!clip_ok(c->sq_clip))
        return vqs_seterr(VQS_EINVAL, "collection '%s': sq_clip %g (0: default, or a quantile in (0.5, 1])", name,
                          (double)c->sq_clip);
    return 0;
}

/* the arguments of create, set_config and set_trained */
typedef struct cfg_ctx {
    const char *name;
    const vqs_db_config *cfg;
    const void *blob;
    size_t len;
} cfg_ctx;

int db_create_rec(vqs_db *db, MDB_txn *t, const char *name, const vqs_db_config *cfg, int *vqs)
{
    char kb[72];
    MDB_val k = name_key(name, kb), v;
    int r = mdb_get(t, db->meta, &k, &v);
    if (r == 0)
        return *vqs = 1, vqs_seterr(-EEXIST, "collection '%s' already exists in %s", name, db->dir);
    if (db_alias_exists(db, t, name, &r))
        return *vqs = 1, vqs_seterr(-EEXIST, "'%s' is already an alias of a collection in %s", name, db->dir);
    if (r)
        return r;
    MDB_val nk = {7, "next_id"}, nv;
    uint32_t id = 1;
    if ((r = mdb_get(t, db->meta, &nk, &nv)) == 0 && nv.mv_size == 4)
        id = vqs_le32_get(nv.mv_data);
    uint8_t b[4];
    vqs_le32_put(b, id + 1);
    nv = (MDB_val){4, b};
    db_rec rec = {0};
    rec.id = id;
    rec.cfg = *cfg;
    if ((r = mdb_put(t, db->meta, &nk, &nv, 0)))
        return r;
    return db_put_rec(db, t, name, &rec);
}

static int create_fn(vqs_db *db, MDB_txn *t, void *ctx, int *vqs)
{
    const cfg_ctx *C = ctx;
    return db_create_rec(db, t, C->name, C->cfg, vqs);
}

int vqs_db_create(vqs_db *db, const char *name, const vqs_db_config *cfg)
{
    if (!db || !cfg)
        return vqs_seterr(VQS_EINVAL, "db_create: NULL argument");
    int rc = db_check_rec_name(name);
    if (rc || (rc = db_check_cfg(name, cfg)))
        return rc;
    cfg_ctx C = {name, cfg, NULL, 0};
    return db_write_txn(db, name, "create", create_fn, &C);
}

/* Deletes every key of dbi that starts with the 4-byte prefix. */
static int del_prefix(MDB_txn *t, MDB_dbi dbi, uint32_t coll)
{
    MDB_cursor *cur;
    int r = mdb_cursor_open(t, dbi, &cur);
    if (r)
        return r;
    uint8_t pre[4];
    put32be(pre, coll);
    MDB_val k = {4, pre}, v;
    r = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (r == 0 && k.mv_size >= 4 && memcmp(k.mv_data, pre, 4) == 0) {
        if ((r = mdb_cursor_del(cur, 0)))
            break;
        r = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
        if (r == MDB_NOTFOUND || r == EINVAL) /* deleted the last item */
            break;
        if (r == 0)
            continue;
    }
    mdb_cursor_close(cur);
    return r == MDB_NOTFOUND || r == EINVAL ? 0 : r;
}

static MDB_val trained_key(uint32_t coll, uint8_t buf[6])
{
    buf[0] = 't', buf[1] = ':';
    put32be(buf + 2, coll);
    return (MDB_val){6, buf};
}

int db_drop_rec(vqs_db *db, MDB_txn *t, const char *name, int *vqs)
{
    db_rec rec;
    int rc = db_get_rec(db, t, name, &rec);
    if (rc)
        return *vqs = 1, rc;
    char kb[72];
    uint8_t tb[6];
    MDB_val k = name_key(name, kb), tk = trained_key(rec.id, tb);
    int r = mdb_del(t, db->meta, &k, NULL);
    if (!r && (r = mdb_del(t, db->meta, &tk, NULL)) == MDB_NOTFOUND)
        r = 0;
    MDB_dbi all[] = {db->seg, db->ext, db->pt, db->dead};
    for (int i = 0; !r && i < 4; i++)
        r = del_prefix(t, all[i], rec.id);
    if (!r)
        r = db_pindex_drop(db, t, rec.id);
    if (!r)
        r = db_alias_drop_coll(db, t, name);
    if (!r && !strchr(name, '@'))
        r = db_vectors_drop(db, t, name, vqs);
    return r;
}

static int drop_fn(vqs_db *db, MDB_txn *t, void *ctx, int *vqs) { return db_drop_rec(db, t, ctx, vqs); }

int vqs_db_drop(vqs_db *db, const char *name)
{
    if (!db)
        return vqs_seterr(VQS_EINVAL, "db_drop: NULL argument");
    return db_write_txn(db, name, "drop", drop_fn, (void *)name);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int vqs_db_list(vqs_db *db, char ***names, size_t *n)
{
    if (!db || !names || !n)
        return vqs_seterr(VQS_EINVAL, "db_list: NULL argument");
    *names = NULL;
    *n = 0;
    MDB_txn *t;
    int rc = db_txn_begin(db, 0, &t);
    if (rc)
        return rc;
    MDB_cursor *cur;
    int r = mdb_cursor_open(t, db->meta, &cur);
    if (r) {
        db_txn_abort(db, t);
        return db_lmdb_err(r, "list", NULL);
    }
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    MDB_val k = {2, "c:"}, d;
    for (r = mdb_cursor_get(cur, &k, &d, MDB_SET_RANGE); r == 0; r = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
        if (k.mv_size < 2 || memcmp(k.mv_data, "c:", 2) != 0)
            break;
        if (memchr(k.mv_data, '@', k.mv_size)) /* a further named vector of a collection */
            continue;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 8;
            char **nv = realloc(v, cap * sizeof *v);
            if (!nv) {
                rc = vqs_seterr(VQS_ENOMEM, "db_list");
                break;
            }
            v = nv;
        }
        if (!(v[cnt] = db_dup_payload((const char *)k.mv_data + 2, k.mv_size - 2))) {
            rc = vqs_seterr(VQS_ENOMEM, "db_list");
            break;
        }
        cnt++;
    }
    mdb_cursor_close(cur);
    db_txn_abort(db, t);
    if (rc) {
        vqs_db_list_free(v, cnt);
        return rc;
    }
    if (cnt)
        qsort(v, cnt, sizeof *v, cmp_str);
    *names = v;
    *n = cnt;
    return 0;
}

void vqs_db_list_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

static void stats_of(const db_rec *r, vqs_db_stats *info)
{
    memset(info, 0, sizeof *info);
    info->cfg = r->cfg;
    info->count = r->count;
    info->next_iid = r->next_iid;
    info->layout_version = VQS_DB_LAYOUT_VERSION;
    info->code_bytes = r->code_bytes;
    info->payload_bytes = r->payload_bytes;
    info->deleted = r->deleted;
    info->trained = r->trained != 0;
}

int vqs_db_info(vqs_db *db, const char *name, vqs_db_stats *info)
{
    return vqs_db_info_n(db, 1, &name, info);
}

int vqs_db_info_n(vqs_db *db, size_t n, const char *const *names, vqs_db_stats *info)
{
    if (!db || !info || (n && !names))
        return vqs_seterr(VQS_EINVAL, "db_info: NULL argument");
    MDB_txn *t;
    int rc = db_txn_begin(db, 0, &t);
    if (rc)
        return rc;
    for (size_t i = 0; !rc && i < n; i++) {
        db_rec r;
        if (!(rc = db_get_rec(db, t, names[i], &r)))
            stats_of(&r, &info[i]);
    }
    db_txn_abort(db, t);
    return rc;
}

int vqs_db_count(vqs_db *db, const char *name, uint64_t *count)
{
    vqs_db_stats in = {0};
    int rc = vqs_db_info(db, name, &in);
    if (!rc && count)
        *count = in.count;
    return rc;
}

/* ---- search defaults and the trained state ------------------------------- */

static int set_config_fn(vqs_db *db, MDB_txn *t, void *ctx, int *vqs)
{
    cfg_ctx *C = ctx;
    db_rec r;
    int rc = db_get_rec(db, t, C->name, &r);
    if (rc)
        return *vqs = 1, rc;
    const vqs_db_config *n = C->cfg;
    if (n->d != r.cfg.d || n->metric != r.cfg.metric || n->rerank != r.cfg.rerank || strcmp(n->spec, r.cfg.spec) ||
        n->sq_clip != r.cfg.sq_clip)
        return *vqs = 1, vqs_seterr(VQS_EINVAL, "collection '%s': dimension, metric, spec, sq_clip and rerank storage "
                                    "cannot change", C->name);
    if ((rc = db_check_cfg(C->name, n)))
        return *vqs = 1, rc;
    r.cfg = *n;
    return db_put_rec(db, t, C->name, &r);
}

int vqs_db_set_config(vqs_db *db, const char *name, const vqs_db_config *cfg)
{
    if (!db || !cfg)
        return vqs_seterr(VQS_EINVAL, "db_set_config: NULL argument");
    cfg_ctx C = {name, cfg, NULL, 0};
    return db_write_txn(db, name, "set the configuration", set_config_fn, &C);
}

/* Reads the collection record into *r and stores the trained-state blob
 * (refused if one is stored); the caller sets r->trained and writes r back. */
static int put_trained(vqs_db *db, MDB_txn *t, const char *name, db_rec *r, const void *blob, size_t len,
                       int *vqs)
{
    int rc = db_get_rec(db, t, name, r);
    if (rc)
        return *vqs = 1, rc;
    if (r->trained)
        return *vqs = 1, vqs_seterr(VQS_EINVAL, "collection '%s' is already trained", name);
    uint8_t tb[6];
    MDB_val k = trained_key(r->id, tb), v = {len, (void *)blob};
    return mdb_put(t, db->meta, &k, &v, 0);
}

static int set_trained_fn(vqs_db *db, MDB_txn *t, void *ctx, int *vqs)
{
    cfg_ctx *C = ctx;
    db_rec r;
    int rc = put_trained(db, t, C->name, &r, C->blob, C->len, vqs);
    if (rc)
        return rc;
    r.trained = 1;
    return db_put_rec(db, t, C->name, &r);
}

int vqs_db_set_trained(vqs_db *db, const char *name, const void *blob, size_t len)
{
    if (!db || !blob || !len)
        return vqs_seterr(VQS_EINVAL, "db_set_trained: NULL or empty blob");
    cfg_ctx C = {name, NULL, blob, len};
    return db_write_txn(db, name, "store the trained state", set_trained_fn, &C);
}

typedef struct recode_ctx {
    const char *name;
    const void *blob;
    size_t len;
    size_t new_cs;
    vqs_db_recode_fn fn;
    void *ctx;
} recode_ctx;

static int recode_fn(vqs_db *db, MDB_txn *t, void *ctx, int *vqs)
{
    recode_ctx *R = ctx;
    db_rec r;
    int rc = put_trained(db, t, R->name, &r, R->blob, R->len, vqs), e;
    if (rc)
        return rc;
    /* the segment keys first: rewriting values under an open cursor is not
     * worth the subtlety */
    size_t nseg = 0, cap = 0;
    uint64_t *firsts = NULL;
    MDB_cursor *cur;
    if ((e = mdb_cursor_open(t, db->seg, &cur)))
        return e;
    uint8_t ib[12];
    MDB_val k = db_iid_key(r.id, 0, ib), v;
    for (e = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); e == 0; e = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 12 || get32be(k.mv_data) != r.id)
            break;
        if (nseg == cap) {
            cap = cap ? 2 * cap : 64;
            uint64_t *f = realloc(firsts, 8 * cap);
            if (!f) {
                mdb_cursor_close(cur);
                free(firsts);
                return *vqs = 1, vqs_seterr(VQS_ENOMEM, "recode: %zu segments", cap);
            }
            firsts = f;
        }
        firsts[nseg++] = get64be((const uint8_t *)k.mv_data + 4);
    }
    mdb_cursor_close(cur);
    if (e && e != MDB_NOTFOUND) {
        free(firsts);
        return e;
    }
    e = 0;
    uint64_t code_bytes = 0;
    uint8_t *in = NULL;
    size_t incap = 0;
    for (size_t si = 0; si < nseg && !rc; si++) {
        k = db_iid_key(r.id, firsts[si], ib);
        if ((e = mdb_get(t, db->seg, &k, &v)))
            break;
        const uint8_t *s = v.mv_data;
        size_t n = v.mv_size >= 8 ? vqs_le32_get(s) : 0, cs = v.mv_size >= 8 ? vqs_le32_get(s + 4) : 0;
        if (v.mv_size < 8 || cs != r.code_size || v.mv_size != 8 + 4 * n + n * cs) {
            rc = vqs_seterr(VQS_ECORRUPT, "collection '%s': segment at internal id %llu is malformed", R->name,
                            (unsigned long long)firsts[si]);
            break;
        }
        if (n * cs > incap) {
            free(in);
            incap = n * cs;
            if (!(in = malloc(incap))) {
                rc = vqs_seterr(VQS_ENOMEM, "recode: %zu bytes", incap);
                break;
            }
        }
        memcpy(in, s + 8 + 4 * n, n * cs);
        MDB_val nv = {8 + 4 * n + n * R->new_cs, NULL};
        if ((e = mdb_put(t, db->seg, &k, &nv, MDB_RESERVE)))
            break;
        uint8_t *o = nv.mv_data;
        vqs_le32_put(o, (uint32_t)n);
        vqs_le32_put(o + 4, (uint32_t)R->new_cs);
        uint32_t *lists = malloc(4 * (n ? n : 1));
        if (!lists) {
            rc = vqs_seterr(VQS_ENOMEM, "recode: %zu points", n);
            break;
        }
        rc = R->fn(R->ctx, firsts[si], n, in, cs, lists, o + 8 + 4 * n);
        for (size_t i = 0; !rc && i < n; i++)
            vqs_le32_put(o + 8 + 4 * i, lists[i]);
        free(lists);
        code_bytes += n * R->new_cs;
    }
    free(in);
    free(firsts);
    if (rc)
        return *vqs = 1, rc;
    if (e)
        return e;
    r.code_size = (uint32_t)R->new_cs;
    r.code_bytes = code_bytes;
    r.trained = 1;
    return db_put_rec(db, t, R->name, &r);
}

int vqs_db_train_recode(vqs_db *db, const char *name, const void *blob, size_t len, size_t code_size,
                        vqs_db_recode_fn fn, void *ctx)
{
    if (!db || !blob || !len || !fn || code_size == 0 || code_size > (1u << 20))
        return vqs_seterr(VQS_EINVAL, "db_train_recode: NULL or empty argument");
    recode_ctx R = {name, blob, len, code_size, fn, ctx};
    return db_write_txn(db, name, "store the trained state and re-encode", recode_fn, &R);
}

int vqs_db_get_trained(vqs_db *db, const char *name, void **blob, size_t *len)
{
    if (!db || !blob || !len)
        return vqs_seterr(VQS_EINVAL, "db_get_trained: NULL argument");
    *blob = NULL;
    *len = 0;
    MDB_txn *t;
    int rc = db_txn_begin(db, 0, &t);
    if (rc)
        return rc;
    db_rec r;
    if ((rc = db_get_rec(db, t, name, &r)))
        goto done;
    uint8_t tb[6];
    MDB_val k = trained_key(r.id, tb), v;
    int e = mdb_get(t, db->meta, &k, &v);
    if (e == MDB_NOTFOUND) {
        rc = r.trained ? vqs_seterr(VQS_ECORRUPT, "collection '%s': marked trained, its trained state is missing", name)
                       : vqs_seterr(VQS_ENOTFOUND, "collection '%s' is not trained", name);
    } else if (e) {
        rc = db_lmdb_err(e, "read the trained state", name);
    } else if (!(*blob = malloc(v.mv_size ? v.mv_size : 1))) {
        rc = vqs_seterr(VQS_ENOMEM, "db_get_trained: %zu bytes", v.mv_size);
    } else {
        memcpy(*blob, v.mv_data, v.mv_size);
        *len = v.mv_size;
    }
done:
    db_txn_abort(db, t);
    return rc;
}
