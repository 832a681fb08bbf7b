/*
 * db_pindex.c: payload indexes in LMDB (layout 2; vqs_store_db.h): the
 * schema records of meta and the index entries of the database pidx.
 *
 *   meta  "p:" coll(4 BE) FIELD        -> u8 type, 3 zero bytes, u32 field id,
 *                                         u64 points (little-endian, 16 bytes)
 *   pidx  coll(4 BE) fid(4 BE) VALUE iid(8 BE) -> empty
 *
 * VALUE is encoded so that LMDB's byte order is the value order: keyword
 * and text words as their bytes (at most VQS_PINDEX_VALUE_MAX), integers as
 * big-endian with the sign bit flipped, floats as the IEEE bits made
 * order-preserving (negative: all bits flipped; otherwise the sign bit set;
 * -0 stored as +0), bool as one byte, a UUID as its 16 bytes.
 *
 * Design decisions:
 * - One plain key per (value, point): no dupsort, so a point's entries go
 *   and come with single puts and deletes, a lookup is one cursor walk over a
 *   contiguous key range, and dropping an index (or a collection) is a range
 *   delete. Variable-length values are told apart by the key's length (an
 *   exact match of a word w has exactly 8 + |w| + 8 bytes), so no terminator
 *   byte is needed and strings may hold any byte.
 * - The hooks parse the payload once per change and only when the
 *   collection has an index (one cursor seek on meta otherwise), so
 *   collections without indexes pay almost nothing.
 * - The number of points per field ("points" in payload_schema) lives in the
 *   schema record and moves with each change: listing indexes never walks
 *   entries.
 * - Lookups return a superset of the matches (long keywords by their prefix,
 *   reals in an integer index by their floor, ranges with inclusive bounds):
 *   their caller applies the full filter to each candidate anyway, and the
 *   index stays small and simple. Rejected: storing the whole keyword beside
 *   the key (a second record per entry) for an exactness nobody needs.
 * - Field ids (u32, from 1) are per collection: the lowest id not in use, so
 *   deleting and re-creating an index does not grow the numbers.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "db_internal.h"

#define SCHEMA_LEN 16

typedef struct field {
    char name[VQS_PINDEX_FIELD_MAX + 1];
    int type;
    uint32_t fid;
    uint64_t points;
} field;

static const char *const type_names[] = {NULL, "keyword", "integer", "float", "bool", "uuid", "text"};

const char *vqs_db_ptype_name(int type)
{
    return type >= VQS_PT_KEYWORD && type <= VQS_PT_TEXT ? type_names[type] : NULL;
}

int vqs_db_ptype_parse(const char *name)
{
    for (int t = VQS_PT_KEYWORD; name && t <= VQS_PT_TEXT; t++)
        if (!strcmp(name, type_names[t]))
            return t;
    return 0;
}

/* ---- schema records ---------------------------------------------------------- */

static MDB_val schema_key(uint32_t coll, const char *f, uint8_t buf[6 + VQS_PINDEX_FIELD_MAX])
{
    size_t n = f ? strlen(f) : 0;
    buf[0] = 'p', buf[1] = ':';
    put32be(buf + 2, coll);
    memcpy(buf + 6, f, n);
    return (MDB_val){6 + n, buf};
}

static int put_schema(vqs_db *db, MDB_txn *t, uint32_t coll, const field *f)
{
    uint8_t kb[6 + VQS_PINDEX_FIELD_MAX], vb[SCHEMA_LEN] = {0};
    MDB_val k = schema_key(coll, f->name, kb), v = {SCHEMA_LEN, vb};
    vb[0] = (uint8_t)f->type;
    vqs_le32_put(vb + 4, f->fid);
    vqs_le64_put(vb + 8, f->points);
    return mdb_put(t, db->meta, &k, &v, 0);
}

/* The schema of collection coll (in key order, i.e. sorted by field). An
 * LMDB code, or a vqs code with *vqs set. */
static int load_fields(vqs_db *db, MDB_txn *t, uint32_t coll, field **out, size_t *n, int *vqs)
{
    *out = NULL;
    *n = 0;
    MDB_cursor *cur;
    int e = mdb_cursor_open(t, db->meta, &cur);
    if (e)
        return e;
    uint8_t kb[6 + VQS_PINDEX_FIELD_MAX];
    MDB_val k = schema_key(coll, "", kb), v;
    uint8_t pre[6];
    memcpy(pre, kb, 6);
    size_t cap = 0;
    for (e = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); e == 0; e = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size < 6 || memcmp(k.mv_data, pre, 6))
            break;
        const uint8_t *p = v.mv_data;
        if (k.mv_size > 6 + VQS_PINDEX_FIELD_MAX || v.mv_size != SCHEMA_LEN || !vqs_db_ptype_name(p[0])) {
            e = vqs_seterr(VQS_ECORRUPT, "collection %u: a payload index record of %zu bytes", coll, v.mv_size);
            *vqs = 1;
            break;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 8;
            field *nf = realloc(*out, cap * sizeof *nf);
            if (!nf) {
                e = vqs_seterr(VQS_ENOMEM, "payload index schema");
                *vqs = 1;
                break;
            }
            *out = nf;
        }
        field *f = &(*out)[(*n)++];
        memcpy(f->name, (const char *)k.mv_data + 6, k.mv_size - 6);
        f->name[k.mv_size - 6] = 0;
        f->type = p[0];
        f->fid = vqs_le32_get(p + 4);
        f->points = vqs_le64_get(p + 8);
    }
    mdb_cursor_close(cur);
    if (e == MDB_NOTFOUND)
        e = 0;
    if (e) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return e;
}

/* ---- values -------------------------------------------------------------------- */

static void enc_i64(uint8_t *p, int64_t v) { put64be(p, (uint64_t)v ^ (1ull << 63)); }

static void enc_f64(uint8_t *p, double x)
{
    if (x == 0)
        x = 0; /* -0 as +0: equal numbers, one key */
    uint64_t u;
    memcpy(&u, &x, 8);
    u = (u >> 63) ? ~u : u | (1ull << 63);
    put64be(p, u);
}

/* floor(x) as an int64, saturated */
static int64_t floor_i64(double x)
{
    if (isnan(x))
        return 0;
    double f = floor(x);
    if (f < -9223372036854775808.0)
        return INT64_MIN;
    if (f >= 9223372036854775808.0)
        return INT64_MAX;
    return (int64_t)f;
}

static int hexv(int c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1; }

/* "8-4-4-4-12" hex digits, or 32 of them: 0 and the 16 bytes; -1 otherwise */
static int parse_uuid(const char *s, size_t n, uint8_t out[16])
{
    size_t j = 0;
    if (n != 32 && n != 36)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (n == 36 && (i == 8 || i == 13 || i == 18 || i == 23)) {
            if (s[i] != '-')
                return -1;
            continue;
        }
        int a = hexv((unsigned char)s[i]), b = i + 1 < n ? hexv((unsigned char)s[i + 1]) : -1;
        if (a < 0 || b < 0)
            return -1;
        out[j++] = (uint8_t)(a << 4 | b);
        i++;
    }
    return j == 16 ? 0 : -1;
}

/* Qdrant's "word" tokenizer: runs of alphanumeric characters (a byte >= 0x80,
 * part of a UTF-8 character, counts as one), lower-cased (ASCII). */
static int is_word(unsigned char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80; }

typedef int (*emit_fn)(void *ctx, const uint8_t *v, size_t n);

/* Emits the encoded index values of one scalar (not an array) of a payload
 * for an index of the given type; non-zero returns of emit stop. */
static int scalar_values(int type, const json_t *v, emit_fn emit, void *ctx)
{
    uint8_t b[VQS_PINDEX_VALUE_MAX];
    switch (type) {
    case VQS_PT_KEYWORD:
        if (!json_is_string(v))
            return 0;
        {
            size_t n = json_string_length(v);
            return emit(ctx, (const uint8_t *)json_string_value(v), n < VQS_PINDEX_VALUE_MAX ? n : VQS_PINDEX_VALUE_MAX);
        }
    case VQS_PT_INTEGER:
        if (json_is_integer(v))
            enc_i64(b, (int64_t)json_integer_value(v));
        else if (json_is_real(v))
            enc_i64(b, floor_i64(json_real_value(v)));
        else
            return 0;
        return emit(ctx, b, 8);
    case VQS_PT_FLOAT:
        if (!json_is_number(v))
            return 0;
        enc_f64(b, json_number_value(v));
        return emit(ctx, b, 8);
    case VQS_PT_BOOL:
        if (!json_is_boolean(v))
            return 0;
        b[0] = json_is_true(v) ? 1 : 0;
        return emit(ctx, b, 1);
    case VQS_PT_UUID:
        if (!json_is_string(v) || parse_uuid(json_string_value(v), json_string_length(v), b))
            return 0;
        return emit(ctx, b, 16);
    case VQS_PT_TEXT: {
        if (!json_is_string(v))
            return 0;
        const unsigned char *s = (const unsigned char *)json_string_value(v);
        size_t n = json_string_length(v);
        for (size_t i = 0; i < n;) {
            while (i < n && !is_word(s[i]))
                i++;
            size_t m = 0;
            for (; i < n && is_word(s[i]); i++)
                if (m < VQS_PINDEX_VALUE_MAX)
                    b[m++] = (uint8_t)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
            int rc = m ? emit(ctx, b, m) : 0;
            if (rc)
                return rc;
        }
        return 0;
    }
    }
    return 0;
}

/* The value at dotted path f of payload p, as filter.c finds it (an array on
 * the way: nothing). */
static const json_t *lookup_path(const json_t *p, const char *f)
{
    char part[VQS_PINDEX_FIELD_MAX + 1];
    while (p && *f) {
        if (json_is_array(p))
            return NULL;
        const char *dot = strchr(f, '.');
        size_t n = dot ? (size_t)(dot - f) : strlen(f);
        memcpy(part, f, n);
        part[n] = 0;
        p = json_object_get(p, part);
        f += n + (dot ? 1 : 0);
    }
    return p;
}

/* Every indexed value of field f of payload p (an array: each element). */
static int payload_values(const field *f, const json_t *p, emit_fn emit, void *ctx)
{
    const json_t *v = lookup_path(p, f->name);
    if (!v)
        return 0;
    if (!json_is_array(v))
        return scalar_values(f->type, v, emit, ctx);
    for (size_t i = 0; i < json_array_size(v); i++) {
        int rc = scalar_values(f->type, json_array_get(v, i), emit, ctx);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- entries ------------------------------------------------------------------- */

typedef struct entry_ctx {
    vqs_db *db;
    MDB_txn *t;
    uint32_t coll, fid;
    uint64_t iid;
    int add;
    size_t emitted;
} entry_ctx;

static int entry_emit(void *ctx, const uint8_t *v, size_t n)
{
    entry_ctx *E = ctx;
    uint8_t kb[16 + VQS_PINDEX_VALUE_MAX];
    put32be(kb, E->coll);
    put32be(kb + 4, E->fid);
    memcpy(kb + 8, v, n);
    put64be(kb + 8 + n, E->iid);
    MDB_val k = {16 + n, kb}, empty = {0, ""};
    E->emitted++;
    int e = E->add ? mdb_put(E->t, E->db->pidx, &k, &empty, 0) : mdb_del(E->t, E->db->pidx, &k, NULL);
    return e == MDB_NOTFOUND ? 0 : e; /* a value twice in one payload: its key is there once */
}

/* Adds or removes the entries of one point for field f; counts the point. */
static int point_entries(vqs_db *db, MDB_txn *t, uint32_t coll, field *f, uint64_t iid, const json_t *p, int add)
{
    entry_ctx E = {db, t, coll, f->fid, iid, add, 0};
    int e = payload_values(f, p, entry_emit, &E);
    if (!e && E.emitted) {
        if (add)
            f->points++;
        else if (f->points)
            f->points--;
    }
    return e;
}

static json_t *parse_payload(uint32_t coll, uint64_t iid, const char *pay, size_t len, int *rc)
{
    json_error_t je;
    json_t *p = json_loadb(pay, len, 0, &je);
    *rc = p ? 0
            : vqs_seterr(VQS_ECORRUPT, "collection %u: the payload of internal id %llu is not JSON: %s", coll,
                         (unsigned long long)iid, je.text);
    return p;
}

int db_pindex_point(vqs_db *db, MDB_txn *t, const db_rec *r, uint64_t iid, const char *pay, size_t len, int add,
                    int *vqs)
{
    if (!db->has_pidx || !pay || !len)
        return 0;
    field *f;
    size_t nf;
    int e = load_fields(db, t, r->id, &f, &nf, vqs);
    if (e || nf == 0)
        return e;
    int rc;
    json_t *p = parse_payload(r->id, iid, pay, len, &rc);
    if (!p) {
        free(f);
        return *vqs = 1, rc;
    }
    for (size_t i = 0; !e && i < nf; i++) {
        uint64_t before = f[i].points;
        if (!(e = point_entries(db, t, r->id, &f[i], iid, p, add)) && f[i].points != before)
            e = put_schema(db, t, r->id, &f[i]);
    }
    json_decref(p);
    free(f);
    return e;
}

/* Deletes every pidx key that starts with the n bytes of pre. */
static int del_range(MDB_txn *t, MDB_dbi dbi, const uint8_t *pre, size_t n)
{
    MDB_cursor *cur;
    int e = mdb_cursor_open(t, dbi, &cur);
    if (e)
        return e;
    MDB_val k = {n, (void *)pre}, v;
    for (e = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); e == 0;) {
        if (k.mv_size < n || memcmp(k.mv_data, pre, n))
            break;
        if ((e = mdb_cursor_del(cur, 0)))
            break;
        e = mdb_cursor_get(cur, &k, &v, MDB_GET_CURRENT);
        if (e == EINVAL) /* deleted the last item */
            e = MDB_NOTFOUND;
    }
    mdb_cursor_close(cur);
    return e == MDB_NOTFOUND ? 0 : e;
}

int db_pindex_drop(vqs_db *db, MDB_txn *t, uint32_t coll)
{
    if (!db->has_pidx)
        return 0;
    uint8_t pre[6];
    put32be(pre, coll);
    int e = del_range(t, db->pidx, pre, 4);
    if (e)
        return e;
    pre[0] = 'p', pre[1] = ':';
    put32be(pre + 2, coll);
    return del_range(t, db->meta, pre, 6);
}

/* ---- create, delete, list -------------------------------------------------------- */

static int check_field(const char *field)
{
    size_t n = field ? strlen(field) : 0;
    if (n == 0 || n > VQS_PINDEX_FIELD_MAX)
        return vqs_seterr(VQS_EINVAL, "payload index: a field name of %zu bytes (1 to %d)", n, VQS_PINDEX_FIELD_MAX);
    if (strchr(field, '['))
        return vqs_seterr(VQS_EINVAL, "payload index: field '%.255s': array paths (\"[]\") are not supported by vqs",
                          field);
    if (field[0] == '.' || field[n - 1] == '.' || strstr(field, ".."))
        return vqs_seterr(VQS_EINVAL, "payload index: field '%.255s': an empty path component", field);
    return 0;
}

static int no_pidx(vqs_db *db)
{
    return vqs_seterr(VQS_EINVAL, "%s: a layout-1 data directory opened read-only has no payload indexes", db->dir);
}

typedef struct pix_ctx {
    const char *name, *field;
    int type, created;
} pix_ctx;

typedef struct build_ctx {
    vqs_db *db;
    MDB_txn *t;
    uint32_t coll;
    field *f;
} build_ctx;

static int create_fn(vqs_db *db, MDB_txn *t, void *ctx, int *vqs)
{
    pix_ctx *C = ctx;
    db_rec r;
    int rc = db_get_rec(db, t, C->name, &r);
    if (rc)
        return *vqs = 1, rc;
    field *fs, nf = {{0}, 0, 0, 0};
    size_t n;
    int e = load_fields(db, t, r.id, &fs, &n, vqs);
    if (e)
        return e;
    snprintf(nf.name, sizeof nf.name, "%s", C->field);
    nf.type = C->type;
    nf.fid = 1;
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(fs[i].name, C->field)) {
            found = 1;
            nf.fid = fs[i].fid;
            if (fs[i].type == C->type) {
                free(fs);
                C->created = 0;
                return 0;
            }
        }
    if (!found) /* the lowest id not in use */
        for (int again = 1; again;) {
            again = 0;
            for (size_t i = 0; i < n; i++)
                if (fs[i].fid == nf.fid)
                    nf.fid++, again = 1;
        }
    free(fs);
    uint8_t pre[8];
    put32be(pre, r.id);
    put32be(pre + 4, nf.fid);
    if (found && (e = del_range(t, db->pidx, pre, 8))) /* another type: rebuilt */
        return e;
    MDB_cursor *cur;
    if ((e = mdb_cursor_open(t, db->pt, &cur)))
        return e;
    uint8_t ib[12];
    MDB_val k = db_iid_key(r.id, 0, ib), v;
    for (e = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); e == 0; e = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 12 || get32be(k.mv_data) != r.id)
            break;
        const char *pay;
        size_t plen;
        if ((e = db_pt_decode(&v, NULL, &pay, &plen))) {
            *vqs = 1;
            break;
        }
        if (!plen)
            continue;
        uint64_t iid = get64be((const uint8_t *)k.mv_data + 4);
        json_t *p = parse_payload(r.id, iid, pay, plen, &rc);
        if (!p) {
            e = rc, *vqs = 1;
            break;
        }
        e = point_entries(db, t, r.id, &nf, iid, p, 1);
        json_decref(p);
        if (e)
            break;
    }
    mdb_cursor_close(cur);
    if (e && e != MDB_NOTFOUND)
        return e;
    C->created = 1;
    return put_schema(db, t, r.id, &nf);
}

int vqs_db_pindex_create(vqs_db *db, const char *name, const char *field, int type, int *created)
{
    if (!db)
        return vqs_seterr(VQS_EINVAL, "db_pindex_create: NULL argument");
    int rc = check_field(field);
    if (rc)
        return rc;
    if (!vqs_db_ptype_name(type))
        return vqs_seterr(VQS_EINVAL, "payload index: type %d", type);
    if (!db->has_pidx)
        return no_pidx(db);
    pix_ctx C = {name, field, type, 0};
    rc = db_write_txn(db, name, "create a payload index", create_fn, &C);
    if (!rc && created)
        *created = C.created;
    return rc;
}

static int delete_fn(vqs_db *db, MDB_txn *t, void *ctx, int *vqs)
{
    pix_ctx *C = ctx;
    db_rec r;
    int rc = db_get_rec(db, t, C->name, &r);
    if (rc)
        return *vqs = 1, rc;
    field *fs;
    size_t n;
    int e = load_fields(db, t, r.id, &fs, &n, vqs);
    if (e)
        return e;
    uint32_t fid = 0;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(fs[i].name, C->field))
            fid = fs[i].fid;
    free(fs);
    if (!fid)
        return *vqs = 1, vqs_seterr(VQS_ENOTFOUND, "collection '%s' has no payload index on '%.255s'", C->name, C->field);
    uint8_t pre[8], kb[6 + VQS_PINDEX_FIELD_MAX];
    put32be(pre, r.id);
    put32be(pre + 4, fid);
    if ((e = del_range(t, db->pidx, pre, 8)))
        return e;
    MDB_val k = schema_key(r.id, C->field, kb);
    return mdb_del(t, db->meta, &k, NULL);
}

int vqs_db_pindex_delete(vqs_db *db, const char *name, const char *field)
{
    if (!db)
        return vqs_seterr(VQS_EINVAL, "db_pindex_delete: NULL argument");
    int rc = check_field(field);
    if (rc)
        return rc;
    if (!db->has_pidx)
        return no_pidx(db);
    pix_ctx C = {name, field, 0, 0};
    return db_write_txn(db, name, "delete a payload index", delete_fn, &C);
}

/* the schema of collection name in a read transaction (none without pidx) */
static int read_fields(vqs_db *db, MDB_txn *t, const char *name, field **fs, size_t *n)
{
    *fs = NULL;
    *n = 0;
    db_rec r;
    int rc = db_get_rec(db, t, name, &r);
    if (rc || !db->has_pidx)
        return rc;
    int vqs = 0, e = load_fields(db, t, r.id, fs, n, &vqs);
    return e && !vqs ? db_lmdb_err(e, "payload indexes", name) : e;
}

int vqs_db_pindex_list(vqs_db *db, const char *name, vqs_db_pindex_info **out, size_t *n)
{
    if (!db || !out || !n)
        return vqs_seterr(VQS_EINVAL, "db_pindex_list: NULL argument");
    *out = NULL;
    *n = 0;
    MDB_txn *t;
    int rc = db_txn_begin(db, 0, &t);
    if (rc)
        return rc;
    field *fs;
    size_t nf;
    rc = read_fields(db, t, name, &fs, &nf);
    db_txn_abort(db, t);
    if (rc || nf == 0)
        return rc;
    if (!(*out = calloc(nf, sizeof **out))) {
        free(fs);
        return vqs_seterr(VQS_ENOMEM, "payload indexes");
    }
    for (size_t i = 0; i < nf; i++) {
        memcpy((*out)[i].field, fs[i].name, sizeof fs[i].name);
        (*out)[i].type = fs[i].type;
        (*out)[i].points = fs[i].points;
    }
    *n = nf;
    free(fs);
    return 0;
}

/* ---- lookups ---------------------------------------------------------------------- */

typedef struct hits {
    uint64_t *v;
    size_t n, cap, max;
    int over, nomem;
} hits;

/* 0, or 1 to stop (over max, or out of memory) */
static int hits_add(hits *H, uint64_t iid)
{
    if (H->n == H->max) {
        H->over = 1;
        return 1;
    }
    if (H->n == H->cap) {
        size_t cap = H->cap ? 2 * H->cap : 256;
        uint64_t *nv = realloc(H->v, cap * sizeof *nv);
        if (!nv)
            return H->nomem = 1;
        H->v = nv;
        H->cap = cap;
    }
    H->v[H->n++] = iid;
    return 0;
}

/* Collects the iids of the keys from `from` (fromlen bytes) up to those whose
 * first tolen bytes equal `to`; keylen: only keys of that length (0: any).
 * Returns 0, 1 (stopped: H->over or H->nomem) or an LMDB code. */
static int walk(MDB_cursor *cur, const uint8_t *from, size_t fromlen, const uint8_t *to, size_t tolen, size_t keylen,
                hits *H)
{
    MDB_val k = {fromlen, (void *)from}, v;
    int e;
    for (e = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); e == 0; e = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        size_t m = k.mv_size < tolen ? k.mv_size : tolen;
        int c = memcmp(k.mv_data, to, m);
        if (c > 0 || (c == 0 && k.mv_size < 16))
            break;
        if (keylen && k.mv_size != keylen)
            continue;
        if (k.mv_size >= 16 && (e = hits_add(H, get64be((const uint8_t *)k.mv_data + k.mv_size - 8))))
            return e;
    }
    return e == MDB_NOTFOUND ? 0 : e;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* the encoded key value of one lookup value for an index of type `type`:
 * its length, or -1 (a kind the type does not answer, or a string that is no
 * UUID for a uuid index: its exact matches are not indexed) */
static long enc_query_value(int type, const vqs_db_pvalue *pv, uint8_t *b)
{
    switch (type) {
    case VQS_PT_KEYWORD:
        if (pv->kind != VQS_PV_STR)
            return -1;
        memcpy(b, pv->s, pv->len < VQS_PINDEX_VALUE_MAX ? pv->len : VQS_PINDEX_VALUE_MAX);
        return pv->len < VQS_PINDEX_VALUE_MAX ? (long)pv->len : VQS_PINDEX_VALUE_MAX;
    case VQS_PT_TEXT: {
        if (pv->kind != VQS_PV_STR)
            return -1;
        size_t m = 0;
        for (size_t i = 0; i < pv->len && m < VQS_PINDEX_VALUE_MAX; i++) {
            unsigned char c = (unsigned char)pv->s[i];
            b[m++] = (uint8_t)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        return (long)m;
    }
    case VQS_PT_INTEGER:
        if (pv->kind != VQS_PV_INT)
            return -1;
        enc_i64(b, pv->i);
        return 8;
    case VQS_PT_BOOL:
        if (pv->kind != VQS_PV_BOOL)
            return -1;
        b[0] = pv->i ? 1 : 0;
        return 1;
    case VQS_PT_UUID:
        if (pv->kind != VQS_PV_STR)
            return -1;
        return parse_uuid(pv->s, pv->len, b) ? -1 : 16; /* another string: its matches are not indexed */
    }
    return -1; /* float: no exact match */
}

/* widens an integer range bound so that every integer whose double
 * conversion (as the filter compares it) is in bounds is kept */
static int64_t widen(int64_t v, int up)
{
    const int64_t slack = 4096, big = (int64_t)1 << 52;
    if (v > -big && v < big)
        return v;
    if (up)
        return v > INT64_MAX - slack ? INT64_MAX : v + slack;
    return v < INT64_MIN + slack ? INT64_MIN : v - slack;
}

static int lookup_in(vqs_db *db, MDB_txn *t, const char *name, const char *fname, const vqs_db_pquery *q, hits *H)
{
    db_rec r;
    int rc = db_get_rec(db, t, name, &r);
    if (rc)
        return rc;
    field *fs;
    size_t nf;
    if ((rc = read_fields(db, t, name, &fs, &nf)))
        return rc;
    field f = {{0}, 0, 0, 0};
    for (size_t i = 0; i < nf; i++)
        if (!strcmp(fs[i].name, fname))
            f = fs[i];
    free(fs);
    if (!f.fid)
        return vqs_seterr(VQS_ENOTFOUND, "collection '%s' has no payload index on '%.255s'", name, fname);
    uint8_t from[16 + VQS_PINDEX_VALUE_MAX], to[16 + VQS_PINDEX_VALUE_MAX];
    put32be(from, r.id);
    put32be(from + 4, f.fid);
    memcpy(to, from, 8);
    MDB_cursor *cur;
    int e = mdb_cursor_open(t, db->pidx, &cur);
    if (e)
        return db_lmdb_err(e, "payload index lookup", name);
    rc = 0;
    if (q->op == VQS_PQ_MATCH) {
        for (size_t i = 0; !e && i < q->n; i++) {
            long m = enc_query_value(f.type, &q->v[i], from + 8);
            if (m < 0) {
                rc = vqs_seterr(VQS_EINVAL, "payload index on '%.255s' (%s): cannot match a value of this kind", fname,
                                vqs_db_ptype_name(f.type));
                break;
            }
            int var = f.type == VQS_PT_KEYWORD || f.type == VQS_PT_TEXT;
            e = walk(cur, from, 8 + (size_t)m, from, 8 + (size_t)m, var ? 16 + (size_t)m : 0, H);
        }
    } else if (q->op == VQS_PQ_RANGE && (f.type == VQS_PT_INTEGER || f.type == VQS_PT_FLOAT)) {
        if (!(q->lo <= q->hi)) {
            e = 0; /* empty (or NaN) */
        } else {
            if (f.type == VQS_PT_INTEGER) {
                enc_i64(from + 8, widen(floor_i64(q->lo), 0));
                enc_i64(to + 8, widen(floor_i64(q->hi), 1));
            } else {
                enc_f64(from + 8, q->lo);
                enc_f64(to + 8, q->hi);
            }
            e = walk(cur, from, 16, to, 16, 24, H);
        }
    } else {
        rc = vqs_seterr(VQS_EINVAL, "payload index on '%.255s' (%s): cannot answer this kind of lookup", fname,
                        vqs_db_ptype_name(f.type));
    }
    mdb_cursor_close(cur);
    if (rc)
        return rc;
    if (H->nomem)
        return vqs_seterr(VQS_ENOMEM, "payload index lookup: %zu ids", H->n);
    return e == 1 || e == 0 ? 0 : db_lmdb_err(e, "payload index lookup", name);
}

int vqs_db_pindex_lookup(vqs_db *db, const char *name, const char *field, const vqs_db_pquery *q, size_t max,
                         uint64_t **iids, size_t *n, int *over)
{
    if (!db || !field || !q || !iids || !n || (q->n && !q->v))
        return vqs_seterr(VQS_EINVAL, "db_pindex_lookup: NULL argument");
    *iids = NULL;
    *n = 0;
    if (over)
        *over = 0;
    MDB_txn *t;
    int rc = db_txn_begin(db, 0, &t);
    if (rc)
        return rc;
    hits H = {NULL, 0, 0, max, 0, 0};
    rc = lookup_in(db, t, name, field, q, &H);
    db_txn_abort(db, t);
    if (rc || H.over) {
        free(H.v);
        if (!rc && over)
            *over = 1;
        return rc;
    }
    if (H.n)
        qsort(H.v, H.n, sizeof *H.v, cmp_u64);
    size_t u = 0;
    for (size_t i = 0; i < H.n; i++)
        if (u == 0 || H.v[i] != H.v[u - 1])
            H.v[u++] = H.v[i];
    *iids = H.v;
    *n = u;
    return 0;
}
