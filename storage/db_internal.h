/*
 * db_internal.h: what the parts of the LMDB store share (not installed):
 * the handle, the transaction helpers (db_env.c), the collection record
 * (db_colls.c), the key encodings (db_ids.c) and the byte-order helpers.
 * Layout of every record and key: storage/README.md.
 */
#ifndef VQS_DB_INTERNAL_H
#define VQS_DB_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <sys/types.h>

#include "vqs_blob.h"
#include "vqs_store.h"

struct vqs_db {
    MDB_env *env;
    MDB_dbi meta, seg, ext, pt, dead;
    MDB_dbi pidx;          /* payload indexes (layout 2); valid when has_pidx */
    int has_pidx;          /* 0: a layout-1 directory opened read-only (it has no payload indexes) */
    uint32_t layout;       /* the directory's layout version as opened (after a migration: the new one) */
    uint32_t migrated_from; /* 0, or the layout version this open migrated from */
    pthread_rwlock_t grow; /* transactions hold it shared, a map resize exclusive */
    size_t map_size, max_map_size;
    int read_only;
    int lockfd; /* DIR/vqs.lock, flock()ed exclusively by a writable handle; -1 read-only */
    dev_t dev;
    ino_t ino;
    char dir[4096];
};

/* ---- byte order: big-endian in keys (numeric order); little-endian in
 * values, through vqs_le32_put and friends (vqs_blob.h) */

static inline void put32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}
static inline void put64be(uint8_t *p, uint64_t v)
{
    put32be(p, (uint32_t)(v >> 32));
    put32be(p + 4, (uint32_t)v);
}
static inline uint32_t get32be(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t get64be(const uint8_t *p) { return (uint64_t)get32be(p) << 32 | get32be(p + 4); }

/* ---- environment and transactions (db_env.c) ---------------------------- */

/* Translates an LMDB return code into a vqs code with the detail set:
 * "collection 'NAME': WHAT: LMDB: ..." (name may be NULL). */
int db_lmdb_err(int rc, const char *what, const char *name);

/* A read or write transaction under the shared grow lock; read
 * transactions end with db_txn_abort, writes go through db_write_txn. */
int db_txn_begin(vqs_db *db, int write, MDB_txn **t);
void db_txn_abort(vqs_db *db, MDB_txn *t);

/* Runs fn(db, t, ctx) in a write transaction and commits, growing the map
 * and replaying on MDB_MAP_FULL. fn returns an LMDB code (> 0 errno, < 0
 * MDB_*) or a vqs code (already with its detail), tagged by *vqs. Every
 * write of the store goes through it: one place for map growth, the
 * read-only refusal and the disk-full messages. */
typedef int (*db_write_fn)(vqs_db *db, MDB_txn *t, void *ctx, int *vqs);
int db_write_txn(vqs_db *db, const char *name, const char *what, db_write_fn fn, void *ctx);

/* ---- the collection record (db_colls.c) --------------------------------- */

/* The decoded "c:" NAME record of meta (its byte layout: db_colls.c). */
typedef struct db_rec {
    uint32_t id, code_size;
    vqs_db_config cfg;
    uint64_t count, next_iid, deleted, code_bytes, payload_bytes;
    uint32_t trained;
} db_rec;

/* Reads collection name's record in t: VQS_EINVAL (bad name), VQS_ENOTFOUND,
 * VQS_ECORRUPT. */
int db_get_rec(vqs_db *db, MDB_txn *t, const char *name, db_rec *r);
/* Writes it back; returns an LMDB code. */
int db_put_rec(vqs_db *db, MDB_txn *t, const char *name, const db_rec *r);

/* A record name: a collection's (vqs_db_check_name) or that of one of its
 * further named vectors, NAME@1..NAME@999 (db_vectors.c). VQS_EINVAL. */
int db_check_rec_name(const char *name);
/* vqs_db_create's check of a configuration (VQS_EINVAL naming name). */
int db_check_cfg(const char *name, const vqs_db_config *c);
/* The bodies of vqs_db_create and vqs_db_drop inside write transaction t
 * (return as a db_write_fn does). db_drop_rec of a collection also drops
 * its further named vectors (db_vectors_drop). */
int db_create_rec(vqs_db *db, MDB_txn *t, const char *name, const vqs_db_config *cfg, int *vqs);
int db_drop_rec(vqs_db *db, MDB_txn *t, const char *name, int *vqs);

/* ---- named vectors (db_vectors.c) ------------------------------------------ */

/* Drops the records of collection name's further named vectors and its
 * "v:" record, if it has them (as a db_write_fn returns). */
int db_vectors_drop(vqs_db *db, MDB_txn *t, const char *name, int *vqs);

/* ---- payload indexes (db_pindex.c) --------------------------------------- */

/* Keeps collection r's payload indexes in step with one point's payload,
 * inside write transaction t: its payload pay (len bytes of JSON; NULL, 0:
 * none) is added (add = 1: the point iid now has it) or removed (add = 0:
 * it no longer has it). Every change of a stored payload goes through it
 * (upsert, delete, replace, the payload updates). Returns as a db_write_fn
 * does: an LMDB code, or a vqs code with *vqs set. */
int db_pindex_point(vqs_db *db, MDB_txn *t, const db_rec *r, uint64_t iid, const char *pay, size_t len, int add,
                    int *vqs);
/* Removes everything of collection coll from pidx and its schema records
 * from meta (drop); an LMDB code. */
int db_pindex_drop(vqs_db *db, MDB_txn *t, uint32_t coll);

/* ---- aliases (db_aliases.c) ---------------------------------------------- */

/* Whether name is an alias, in t (*r: an LMDB error, else 0). */
int db_alias_exists(vqs_db *db, MDB_txn *t, const char *name, int *r);
/* Removes every alias of collection coll (drop); an LMDB code. */
int db_alias_drop_coll(vqs_db *db, MDB_txn *t, const char *coll);

/* ---- keys (db_ids.c) ----------------------------------------------------- */

/* ext key: coll(4 BE) kind(1) id (8 BE | 16) */
int db_ext_key(uint32_t coll, const vqs_pid *p, uint8_t buf[21], MDB_val *k);
/* seg, pt and dead key: coll(4 BE) iid(8 BE) */
MDB_val db_iid_key(uint32_t coll, uint64_t iid, uint8_t buf[12]);

/* ---- points (db_points.c) ------------------------------------------------ */

/* A malloc'd NUL-terminated copy of n bytes at p (NULL if p is NULL or on
 * allocation failure). */
char *db_dup_payload(const char *p, size_t n);
/* Decodes a pt value: the point id (id may be NULL) and a view of its
 * payload (pay may be NULL; *pay NULL and *plen 0 if none). VQS_ECORRUPT. */
int db_pt_decode(const MDB_val *v, vqs_pid *id, const char **pay, size_t *plen);
/* The bytes of a pt value before the payload: kind(1) id(16). */
#define DB_PT_HDR 17

/* The bodies of vqs_db_upsert and vqs_db_delete inside write transaction t
 * on collection record r (updated in memory; the caller writes it back):
 * what a write session (db_payload.c) runs once per operation. Return as a
 * db_write_fn does. db_upsert_rec refuses an id that is already in b (not
 * one written earlier in the same transaction by another call). */
int db_upsert_rec(vqs_db *db, MDB_txn *t, const char *name, db_rec *r, const vqs_db_batch *b, uint64_t *iids,
                  uint64_t *olds, int *vqs);
int db_delete_rec(vqs_db *db, MDB_txn *t, const char *name, db_rec *r, size_t n, const vqs_pid *ids, uint64_t *iids,
                  size_t *nd, int *vqs);
/* Marks a live internal id dead: removes its point record (and its payload
 * from the payload indexes), adds it to the dead set; an LMDB code. */
int db_kill_iid(vqs_db *db, MDB_txn *t, db_rec *r, uint64_t iid, int *vqs);

#endif
