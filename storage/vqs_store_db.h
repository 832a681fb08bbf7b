/*
 * vqs_store_db.h: collections in one LMDB environment per data directory
 * (storage/db_*.c; the record layout is documented in storage/README.md).
 *
 * The storage layer keeps bytes, not indexes: a collection's configuration,
 * the trained state of its index (an opaque blob), its codes (opaque,
 * code_size bytes per point, plus a coarse list number), the external id <->
 * internal id maps, JSON payloads and deletions. Internal ids are dense:
 * 0, 1, 2, ... in upsert order, never reused; a replaced or deleted point's
 * internal id is marked dead.
 *
 * Handles: a vqs_db may be used from many threads at once; every call runs
 * its own LMDB transaction (read calls: a read-only transaction; writes:
 * one write transaction each, serialised by LMDB). Durability: a write call
 * that returns 0 has been committed with LMDB's default (synchronous)
 * flags: the data pages and the meta page are fsynced before it returns.
 */
#ifndef VQS_STORE_DB_H
#define VQS_STORE_DB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vqs_db vqs_db;

/* The layout version this build writes. It opens versions 1 to this one:
 * a writable open migrates an older directory in place, in the open's own
 * transaction (storage/README.md, "Layout versions"); a read-only open
 * reads it as it is. */
#define VQS_DB_LAYOUT_VERSION 3

typedef struct vqs_db_opts {
    size_t map_size;     /* initial LMDB map size in bytes; 0: 64 MiB (grows on demand) */
    size_t max_map_size; /* the map never grows beyond this; 0: 1 TiB */
    int read_only;       /* open MDB_RDONLY (the environment must exist) */
} vqs_db_opts;

/* Opens (creating dir and DIR/vqs.mdb if needed, unless read_only) the
 * environment of data directory dir. o: NULL or zeroed for defaults.
 * A writable handle holds the directory's writer lock (DIR/vqs.lock) until
 * vqs_db_close: one writer per directory across processes; read-only
 * handles take no lock and see consistent snapshots beside the writer.
 * Errors: -errno (mkdir, open), VQS_ELOCKED (another process holds the
 * writer lock; the message names its pid and command line), VQS_EVERSION
 * (a layout version other than VQS_DB_LAYOUT_VERSION), VQS_ECORRUPT (not an
 * LMDB file or damaged). */
int vqs_db_open(const char *dir, const vqs_db_opts *o, vqs_db **out);
void vqs_db_close(vqs_db *db);
/* Non-zero for a handle opened read_only. */
int vqs_db_is_read_only(const vqs_db *db);
/* The data directory (static for the handle's life). */
const char *vqs_db_dir(const vqs_db *db);
/* The current map size in bytes. */
size_t vqs_db_map_size(const vqs_db *db);
/* The directory's layout version as opened (VQS_DB_LAYOUT_VERSION once a
 * writable open has migrated it), and the version that open migrated from
 * (0: none). */
uint32_t vqs_db_layout(const vqs_db *db, uint32_t *migrated_from);

/* Point ids as Qdrant has them: an unsigned 64-bit integer or a UUID. */
enum { VQS_PID_U64 = 1, VQS_PID_UUID = 2 };
typedef struct vqs_pid {
    uint8_t kind; /* VQS_PID_U64 or VQS_PID_UUID (0: no point) */
    uint8_t uuid[16];
    uint64_t u64;
} vqs_pid;

/* Parses "123" (decimal u64) or a UUID ("8-4-4-4-12" hex digits, or 32 hex
 * digits) into *p. VQS_EINVAL naming the text otherwise. */
int vqs_pid_parse(const char *s, vqs_pid *p);
/* "123" or the canonical lower-case UUID; returns buf. */
char *vqs_pid_format(const vqs_pid *p, char buf[40]);

typedef struct vqs_db_config {
    uint32_t d;      /* dimension */
    uint32_t metric; /* vqs_metric */
    char spec[128];  /* index spec, e.g. "IVF1024,PQ32x4" */
    uint32_t rerank; /* 0: no stored vectors, 1: vector file read from disk, 2: held in memory */
    uint32_t nprobe; /* search defaults */
    float oversampling;
    uint64_t train_size; /* train automatically at this many points (0: explicitly) */
    float sq_clip;       /* training option vqs_codec_opts.sq_clip: 0 (default) or a quantile
                            in (0.5, 1]; kept so that a later training (train_size, POST
                            .../train, another process) uses it */
} vqs_db_config;

typedef struct vqs_db_stats {
    vqs_db_config cfg;
    uint64_t count;          /* live points */
    uint64_t next_iid;       /* internal ids handed out so far */
    uint32_t layout_version; /* VQS_DB_LAYOUT_VERSION */
    uint64_t code_bytes;     /* bytes of stored codes (live and dead) */
    uint64_t payload_bytes;  /* bytes of live payloads */
    uint64_t deleted;        /* dead internal ids whose codes are still stored */
    int trained;             /* a trained state is stored */
} vqs_db_stats;

/* Creates an empty, untrained collection. Names: 1..63 bytes of
 * [A-Za-z0-9_.-], not starting with '.' (they also name the vector file
 * DIR/NAME.vec). Errors: -EEXIST (a collection or an alias has the name),
 * VQS_EINVAL (name, d = 0, metric, rerank). */
int vqs_db_create(vqs_db *db, const char *name, const vqs_db_config *cfg);
/* Checks the first n bytes of name against the naming rule above (the one
 * place it is written): 0, or VQS_EINVAL with the name and what is wrong. */
int vqs_db_check_name(const char *name, size_t n);
/* Removes the collection's records and its aliases (and nothing else; the
 * caller removes its vector file). VQS_ENOTFOUND. */
int vqs_db_drop(vqs_db *db, const char *name);
/* Names of all collections, sorted; free with vqs_db_list_free. */
int vqs_db_list(vqs_db *db, char ***names, size_t *n);
void vqs_db_list_free(char **names, size_t n);
int vqs_db_info(vqs_db *db, const char *name, vqs_db_stats *info);
/* vqs_db_info of n records read in one transaction (one consistent state:
 * the records of a collection's named vectors, beside a writer). */
int vqs_db_info_n(vqs_db *db, size_t n, const char *const *names, vqs_db_stats *info);
/* Replaces the search defaults (nprobe, oversampling, train_size); d,
 * metric, spec, sq_clip and rerank must be unchanged (VQS_EINVAL). */
int vqs_db_set_config(vqs_db *db, const char *name, const vqs_db_config *cfg);

/* The trained state: set once (VQS_EINVAL if already set); get returns a
 * malloc'd copy (*blob) or VQS_ENOTFOUND. */
int vqs_db_set_trained(vqs_db *db, const char *name, const void *blob, size_t len);
int vqs_db_get_trained(vqs_db *db, const char *name, void **blob, size_t *len);

/* Trains a collection that holds points in place, in ONE write transaction:
 * stores the trained state (as vqs_db_set_trained) and rewrites every
 * segment's codes through fn (dead entries included, so the segments stay
 * whole): fn gets a segment's first internal id, its n stored codes of
 * in_size bytes each, and writes n coarse lists and n * code_size bytes of
 * new codes. Until then a collection stores whatever codes its owner chose
 * (index/collection/collection.c: the raw vectors). A non-zero return from fn aborts
 * everything. Errors: VQS_EINVAL (already trained), fn's error, as upsert. */
typedef int (*vqs_db_recode_fn)(void *ctx, uint64_t first, size_t n, const uint8_t *in, size_t in_size,
                                uint32_t *lists, uint8_t *out);
int vqs_db_train_recode(vqs_db *db, const char *name, const void *blob, size_t len, size_t code_size,
                        vqs_db_recode_fn fn, void *ctx);

typedef struct vqs_db_batch {
    size_t n;
    const vqs_pid *ids;           /* n point ids (distinct within the batch) */
    const char *const *payloads;  /* NULL or n JSON texts (NULL entries: no payload) */
    size_t code_size;             /* bytes per code */
    const uint8_t *codes;         /* n * code_size bytes */
    const uint32_t *lists;        /* n coarse list numbers (NULL: all 0) */
} vqs_db_batch;

/* Upserts a batch in one write transaction: the points get internal ids
 * next_iid .. next_iid + n - 1 (iids[i], may be NULL); an id already present
 * is replaced, its old internal id marked dead (old_iids[i], UINT64_MAX for
 * a new point; may be NULL). before_commit (may be NULL) runs inside the
 * transaction just before the commit, with the first internal id and n; a
 * non-zero return aborts the batch. If the map is full the transaction is
 * aborted, the map doubled and the batch retried (before_commit then runs
 * again with the same first id). All of the batch or none is stored.
 * Errors: VQS_EINVAL (duplicate ids in the batch, bad id, code_size differs
 * from the collection's first batch), VQS_ENOTFOUND, -ENOSPC / -EFBIG (disk
 * full), VQS_ENOMEM (map at max_map_size), before_commit's error. */
int vqs_db_upsert(vqs_db *db, const char *name, const vqs_db_batch *b, uint64_t *iids,
                  uint64_t *old_iids, int (*before_commit)(void *ctx, uint64_t first, size_t n),
                  void *ctx);

/* Deletes points; iids[i] (may be NULL) is the deleted internal id or
 * UINT64_MAX for an unknown id; *ndeleted (may be NULL) counts them. */
int vqs_db_delete(vqs_db *db, const char *name, size_t n, const vqs_pid *ids, uint64_t *iids,
                  size_t *ndeleted);

/* The internal id and payload (malloc'd NUL-terminated JSON or NULL; payload
 * may be NULL) of a point. VQS_ENOTFOUND. */
int vqs_db_get(vqs_db *db, const char *name, const vqs_pid *id, uint64_t *iid, char **payload);
/* The point id and payload (as above; both may be NULL) of a live internal
 * id. VQS_ENOTFOUND if dead or never handed out. */
int vqs_db_get_iid(vqs_db *db, const char *name, uint64_t iid, vqs_pid *id, char **payload);
int vqs_db_count(vqs_db *db, const char *name, uint64_t *count);

/* Calls fn for every live point in internal-id order, inside one read
 * transaction (one consistent state); payload is valid during the call
 * only and not NUL-terminated (payload_len bytes; NULL, 0 if none). A
 * non-zero return from fn stops the walk and is returned. */
int vqs_db_iterate(vqs_db *db, const char *name,
                   int (*fn)(void *ctx, uint64_t iid, const vqs_pid *id, const char *payload,
                             size_t payload_len),
                   void *ctx);

/* Calls fn with the stored codes of live points, one upsert batch (a
 * segment) at a time, in internal-id order, inside one read transaction:
 * n points, their internal ids, coarse lists and codes (n * code_size
 * bytes). Dead entries are left out. The arrays are valid during the call
 * only. A non-zero return from fn stops the walk and is returned.
 * VQS_ECORRUPT if a segment record is malformed. */
int vqs_db_load_codes(vqs_db *db, const char *name,
                      int (*fn)(void *ctx, size_t n, const uint64_t *iids, const uint32_t *lists,
                                const uint8_t *codes, size_t code_size),
                      void *ctx);

/* The point ids (and payloads) of n internal ids in ONE read transaction,
 * so they are one consistent state (a search's results: storage/db_batch.c).
 * iids[i] < 0, or an internal id that is dead or was never handed out,
 * gives ids[i].kind 0 and no payload: not an error. payloads: NULL, or n
 * slots that receive malloc'd NUL-terminated JSON texts or NULL (the
 * caller frees them; on failure none is left allocated). Errors: as
 * vqs_db_get_iid (VQS_ENOTFOUND for the collection, VQS_ECORRUPT,
 * VQS_ENOMEM). */
int vqs_db_get_iids(vqs_db *db, const char *name, size_t n, const int64_t *iids, vqs_pid *ids,
                    char **payloads);


/* ---- payload indexes (db_pindex.c; key layout: storage/README.md) ------ */

/* Index types, as Qdrant names them (vqs_db_ptype_name). */
enum {
    VQS_PT_KEYWORD = 1, /* strings, by their bytes */
    VQS_PT_INTEGER = 2, /* integers (a non-integral number: by its floor, re-checked) */
    VQS_PT_FLOAT = 3,   /* every number, as a double */
    VQS_PT_BOOL = 4,
    VQS_PT_UUID = 5,    /* strings that are UUIDs, by their 16 bytes */
    VQS_PT_TEXT = 6,    /* strings, by their words (Qdrant's "word" tokenizer, lower-cased) */
};
/* Longest field name (a dotted path "a.b") of an index, in bytes. */
#define VQS_PINDEX_FIELD_MAX 255
/* Bytes of a keyword or word kept in an index key: a longer one is indexed
 * by this prefix, so its lookups return a superset (to re-check). */
#define VQS_PINDEX_VALUE_MAX 400

/* "keyword", "integer", ... or NULL for an unknown type; and back (0: unknown). */
const char *vqs_db_ptype_name(int type);
int vqs_db_ptype_parse(const char *name);

typedef struct vqs_db_pindex_info {
    char field[VQS_PINDEX_FIELD_MAX + 1];
    int type;        /* VQS_PT_* */
    uint64_t points; /* live points with at least one indexed value */
} vqs_db_pindex_info;

/* Creates the index of collection name's payload field `field` (a dotted
 * path; 1..VQS_PINDEX_FIELD_MAX bytes, no "[") of the given type and builds
 * it from every stored payload, in ONE write transaction; from then on every
 * stored payload change keeps it. An index already there with the same type:
 * nothing changes (*created 0; created may be NULL); with another type: it is
 * rebuilt with the new one. Errors: VQS_EINVAL (field, type, read-only, a
 * layout-1 directory opened read-only), VQS_ENOTFOUND, VQS_ECORRUPT (a stored
 * payload that is not JSON), as upsert. */
int vqs_db_pindex_create(vqs_db *db, const char *name, const char *field, int type, int *created);
/* Drops the index of field: VQS_ENOTFOUND if the collection or the index is
 * not there. */
int vqs_db_pindex_delete(vqs_db *db, const char *name, const char *field);
/* The indexes of a collection, sorted by field (*out malloc'd, free with
 * free; NULL and 0 if none). VQS_ENOTFOUND. */
int vqs_db_pindex_list(vqs_db *db, const char *name, vqs_db_pindex_info **out, size_t *n);

/* A value of a lookup. */
enum { VQS_PV_STR = 1, VQS_PV_INT = 2, VQS_PV_BOOL = 3 };
typedef struct vqs_db_pvalue {
    int kind;      /* VQS_PV_* */
    const char *s; /* VQS_PV_STR: len bytes */
    size_t len;
    int64_t i; /* VQS_PV_INT; VQS_PV_BOOL: 0 or 1 */
} vqs_db_pvalue;

enum {
    VQS_PQ_MATCH = 1, /* points with a value equal to any of v[0..n) (a text index: containing the word) */
    VQS_PQ_RANGE = 2, /* points with a number in [lo, hi] (integer and float indexes) */
};
typedef struct vqs_db_pquery {
    int op;
    size_t n;
    const vqs_db_pvalue *v;
    double lo, hi; /* VQS_PQ_RANGE: -INFINITY / INFINITY for none; bounds are inclusive */
} vqs_db_pquery;

/* The internal ids of the live points whose field matches q, by the index
 * of field, in ONE read transaction: sorted, without repeats, malloc'd in
 * *iids (free with free; NULL if none). The set may hold more than the
 * exact matches (a keyword or word longer than VQS_PINDEX_VALUE_MAX bytes,
 * a non-integral number in an integer index, the range's bounds taken as
 * inclusive, UUIDs of another spelling), never fewer: re-check each one.
 * max bounds the work: when more than max index entries match, the walk
 * stops with *over = 1 and *iids NULL, *n 0 (a capped count for planning).
 * Errors: VQS_ENOTFOUND (collection, or no index on field), VQS_EINVAL (a
 * value kind or op the index's type does not answer: a string against an
 * integer index, a range against a keyword index, ...). */
int vqs_db_pindex_lookup(vqs_db *db, const char *name, const char *field, const vqs_db_pquery *q, size_t max,
                         uint64_t **iids, size_t *n, int *over);
/* ---- aliases (db_aliases.c): other names of collections --------------- */

/* An alias and the collection it names (both follow vqs_db_check_name). */
typedef struct vqs_db_alias {
    char alias[64];
    char coll[64];
} vqs_db_alias;

enum { VQS_DB_ALIAS_CREATE = 1, VQS_DB_ALIAS_DELETE = 2, VQS_DB_ALIAS_RENAME = 3 };

typedef struct vqs_db_alias_op {
    int kind;           /* VQS_DB_ALIAS_* */
    const char *alias;  /* create, delete: the alias; rename: its old name */
    const char *target; /* create: the collection; rename: the new name; delete: unused */
} vqs_db_alias_op;

/* Applies n alias actions in order in ONE write transaction (each sees the
 * ones before it): all of them, or none if one fails (*failed, may be
 * NULL: its index). Create points the alias at an existing collection (an
 * existing alias is re-pointed); delete of a missing alias changes
 * nothing; rename moves an existing alias to a new name. Errors:
 * VQS_EINVAL (a bad name), VQS_ENOTFOUND ("Collection `X` doesn't exist!",
 * "Alias X does not exist!"), -EEXIST (an alias may not have a
 * collection's name), storage's. */
int vqs_db_alias_update(vqs_db *db, size_t n, const vqs_db_alias_op *ops, size_t *failed);
/* Every alias, sorted by alias; *out: n entries, malloc'd (free()). */
int vqs_db_alias_list(vqs_db *db, vqs_db_alias **out, size_t *n);

/* ---- named vectors (db_vectors.c, layout 3) ----------------------------- */

/* A collection either has one unnamed vector (no vector names are stored)
 * or 1..VQS_DB_MAX_VECTORS named ones. Vector I of collection NAME is kept
 * in the collection record vqs_db_vector_rec_name(NAME, I): NAME itself for
 * I = 0, NAME@I after it, each with its own configuration, trained state,
 * codes and point ids (payloads and payload indexes only in NAME). NAME@I
 * records are not listed by vqs_db_list and are dropped with NAME. */
#define VQS_DB_MAX_VECTORS 16
#define VQS_DB_VECTOR_NAME_MAX 63

/* A vector name: 1..VQS_DB_VECTOR_NAME_MAX bytes, no control characters.
 * 0 or VQS_EINVAL naming it. */
int vqs_db_check_vector_name(const char *v);
/* Creates collection name with n named vectors vnames (distinct), vector I
 * configured by cfgs[I], in one transaction. Errors: as vqs_db_create. */
int vqs_db_create_group(vqs_db *db, const char *name, size_t n, const char *const *vnames,
                        const vqs_db_config *cfgs);
/* The vector names of collection name (*names: n malloc'd strings, free
 * with vqs_db_vectors_free); n = 0 and *names NULL: one unnamed vector.
 * VQS_ENOTFOUND, VQS_ECORRUPT. */
int vqs_db_vectors(vqs_db *db, const char *name, char ***names, size_t *n);
void vqs_db_vectors_free(char **names, size_t n);
/* The record name of vector i of collection name into buf (len bytes):
 * name for i = 0, name@i otherwise. VQS_EINVAL if it does not fit. */
int vqs_db_vector_rec_name(const char *name, size_t i, char *buf, size_t len);

/* ---- write sessions, payload changes and the walk in id order (db_payload.c) ---- */

/* A write session: several changes of one collection in ONE LMDB write
 * transaction, applied in order (a later call sees an earlier one's
 * result), committed together or not at all. */
typedef struct vqs_db_wtx vqs_db_wtx;

/* Runs fn(w, ctx) in one write transaction on collection name and commits
 * if it returns 0 (anything else aborts everything fn did). fn may be run
 * more than once: when the LMDB map fills, the transaction is aborted, the
 * map grown and fn run again from the start, so fn must be replayable
 * (whatever it does outside the transaction, e.g. appending to a vector
 * file, it must undo or redo at its start). Errors: fn's, VQS_ENOTFOUND
 * (collection), as vqs_db_upsert. */
typedef int (*vqs_db_write_fn)(vqs_db_wtx *w, void *ctx);
int vqs_db_write(vqs_db *db, const char *name, vqs_db_write_fn fn, void *ctx);

/* Inside a session (every call returns 0 or a vqs code with the detail
 * set; after an LMDB error the session only unwinds):
 * - next_iid: the internal id the next upserted point gets.
 * - upsert, delete: as vqs_db_upsert and vqs_db_delete (ids of one call
 *   distinct; an id written by an earlier call of the session is replaced).
 * - get: a live point's internal id and a view of its payload (*pay NULL,
 *   *len 0: none; valid until the next call of the session). VQS_ENOTFOUND.
 * - set_payload: replaces a live point's payload (len bytes of JSON; NULL,
 *   0: none), keeping its internal id and codes; the payload indexes follow.
 *   VQS_ENOTFOUND. *iid (may be NULL): the point's internal id.
 * - select: calls fn for each live point in internal-id order, payload a
 *   view valid during the call; fn returns 0 (go on), > 0 (stop, returned)
 *   or < 0 (an error, returned); fn must not call the session. */
uint64_t vqs_db_wtx_next_iid(const vqs_db_wtx *w);
int vqs_db_wtx_upsert(vqs_db_wtx *w, const vqs_db_batch *b, uint64_t *iids, uint64_t *old_iids);
int vqs_db_wtx_delete(vqs_db_wtx *w, size_t n, const vqs_pid *ids, uint64_t *iids, size_t *ndeleted);
int vqs_db_wtx_get(vqs_db_wtx *w, const vqs_pid *id, uint64_t *iid, const char **pay, size_t *len);
int vqs_db_wtx_set_payload(vqs_db_wtx *w, const vqs_pid *id, const char *pay, size_t len, uint64_t *iid);
typedef int (*vqs_db_point_fn)(void *ctx, uint64_t iid, const vqs_pid *id, const char *payload, size_t payload_len);
int vqs_db_wtx_select(vqs_db_wtx *w, vqs_db_point_fn fn, void *ctx);

/* A write session over several collection records at once (the records of
 * one collection's named vectors, vqs_db_vector_rec_name): fn gets one
 * session per name (w[i] for names[i]), all in ONE write transaction,
 * committed together or not at all; replayed as vqs_db_write's. n: 1 to
 * VQS_DB_MAX_VECTORS. */
typedef int (*vqs_db_group_fn)(vqs_db_wtx *const *w, void *ctx);
int vqs_db_write_group(vqs_db *db, size_t n, const char *const *names, vqs_db_group_fn fn, void *ctx);

/* Calls fn for live points in point-id order (unsigned integers ascending,
 * then UUIDs by their bytes, as Qdrant orders ids), starting at from
 * (NULL: the first point; an id that is not stored: the next one after
 * it), inside one read transaction. payload: a view valid during the call.
 * fn returns 0 to go on, > 0 to stop (returned), < 0 an error (returned). */
int vqs_db_scroll(vqs_db *db, const char *name, const vqs_pid *from, vqs_db_point_fn fn, void *ctx);

#ifdef __cplusplus
}
#endif

#endif
