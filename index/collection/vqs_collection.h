/*
 * vqs_collection.h: collections, the one way the api and the tools reach
 * persistent data. A collection is the compressed index of index/ (held in
 * memory) kept in the storage layer (storage/vqs_store_db.h: LMDB records;
 * storage/vqs_store_vec.h: full-precision vectors in an append-only file
 * read through io_uring for re-scoring). This layer is where the two meet:
 * it owns the collection's configuration and its defaults, the rerank
 * names, the vector file's name, and the mapping of search results back to
 * point ids and payloads.
 *
 * Handles, as LMDB's env -> txn: a vqs_catalog is one data directory (one
 * LMDB environment, one writer per directory across processes); a vqs_coll
 * is one open collection of a catalog, which must outlive it.
 *
 * Internal ids: the storage layer numbers points 0, 1, 2, ... in upsert
 * order; the in-memory index uses them as its ids, the vector file
 * addresses records by them, and results are mapped back to the user's
 * point ids (u64 or UUID) through LMDB.
 *
 * Consistency: one writer at a time per collection (a mutex); the in-memory
 * index is guarded by a reader-writer lock, taken for writing only for the
 * short in-memory apply after the LMDB commit, so a search sees the state
 * before or after a batch, never part of one.
 *
 * Errors: as everywhere, 0 or a negative code with vqs_errdetail() saying
 * what was wrong (storage's and the index's codes pass through unchanged).
 */
#ifndef VQS_COLLECTION_H
#define VQS_COLLECTION_H

#include <stddef.h>
#include <stdint.h>

#include "vqs_index.h"
#include "vqs_store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- configuration ------------------------------------------------------ */

/* Where re-scoring reads the full-precision vectors from. The numeric
 * values are stored in every collection's record: never renumber. */
typedef enum vqs_rerank {
    VQS_RERANK_NONE = 0,   /* no vector file: only codes are kept (no re-scoring, no vectors returned
                              once trained) */
    VQS_RERANK_DISK = 1,   /* the vector file, read from disk (io_uring) */
    VQS_RERANK_MEMORY = 2, /* the vector file, held in memory */
} vqs_rerank;

/* "none", "disk", "memory" (the names the api's "vqs"."rerank" and
 * `vqs import --rerank` accept and show); "?" for any other value. Static
 * storage. */
const char *vqs_rerank_name(vqs_rerank r);
/* The inverse of vqs_rerank_name, exact lower-case names only. VQS_EINVAL
 * naming s and the accepted names otherwise (s may be NULL). */
int vqs_rerank_parse(const char *s, vqs_rerank *out);

/* Search defaults a collection stores when its creator leaves them 0. */
#define VQS_COLL_DEFAULT_NPROBE 16
#define VQS_COLL_DEFAULT_OVERSAMPLING 4.0f

typedef struct vqs_coll_config {
    uint32_t d;          /* dimension, 1..VQS_MAX_DIM_DEFAULT */
    vqs_metric metric;
    char spec[128];      /* index spec, e.g. "IVF1024,PQ32x4" (required) */
    vqs_rerank rerank;   /* 0 is VQS_RERANK_NONE: a stored value, so it has no "default" */
    uint32_t nprobe;     /* search default; 0 at create: VQS_COLL_DEFAULT_NPROBE */
    float oversampling;  /* search default, >= 1; 0 at create: VQS_COLL_DEFAULT_OVERSAMPLING */
    uint64_t train_size; /* train automatically at this many points (0: only explicitly) */
    float sq_clip;       /* training option vqs_codec_opts.sq_clip: 0 (default) or a quantile
                            in (0.5, 1]; kept so that a later training (train_size, POST
                            .../train, another process) uses it */
} vqs_coll_config;

/* ---- options of an open collection -------------------------------------- */

typedef struct vqs_coll vqs_coll;

typedef struct vqs_coll_opts {
    int nthreads;           /* search and encode threads; 0: vqs_default_threads() */
    vqs_vs_backend backend; /* rerank reads; 0: io_uring (pread fallback) for disk
                               collections, memory for memory collections */
    int verbose;            /* progress on stderr */
} vqs_coll_opts;

/* ---- the catalog: the collections of one data directory ------------------ */

typedef struct vqs_catalog vqs_catalog;

typedef struct vqs_catalog_opts {
    int read_only;       /* beside a writer in another process: no create, drop or write */
    size_t map_size;     /* initial LMDB map size in bytes; 0: storage's default (64 MiB, grows) */
    size_t max_map_size; /* 0: storage's default (1 TiB) */
    vqs_coll_opts coll;  /* what vqs_coll_open uses when given NULL options */
} vqs_catalog_opts;

/* Opens (creating dir and its LMDB environment if needed, unless read_only)
 * the data directory dir. o: NULL or zeroed for defaults. A writable
 * catalog holds the directory's writer lock until vqs_catalog_close.
 * Errors: as vqs_db_open (-errno, VQS_ELOCKED naming the holder,
 * VQS_EVERSION, VQS_ECORRUPT, -EBUSY if this process has it open). */
int vqs_catalog_open(const char *dir, const vqs_catalog_opts *o, vqs_catalog **out);
/* Closes the catalog; every collection opened from it must be closed
 * first. NULL does nothing. */
void vqs_catalog_close(vqs_catalog *cat);
/* The data directory (valid while cat is open). */
const char *vqs_catalog_dir(const vqs_catalog *cat);
int vqs_catalog_is_read_only(const vqs_catalog *cat);
/* The current LMDB map size in bytes. */
size_t vqs_catalog_map_size(const vqs_catalog *cat);
/* Names of all collections, sorted (*names: n malloc'd strings); free with
 * vqs_catalog_list_free. */
int vqs_catalog_list(vqs_catalog *cat, char ***names, size_t *n);
void vqs_catalog_list_free(char **names, size_t n);

/* Aliases (other names of collections; storage/vqs_store_db.h): applies n
 * actions in one transaction, all or none (*failed: the index of the one
 * that failed), as vqs_db_alias_update; and lists them all, sorted by
 * alias (*out malloc'd, free()). Errors: as storage's. */
int vqs_catalog_alias_update(vqs_catalog *cat, size_t n, const vqs_db_alias_op *ops, size_t *failed);
int vqs_catalog_aliases(vqs_catalog *cat, vqs_db_alias **out, size_t *n);

/* ---- collections of a catalog ------------------------------------------- */

/* Checks a collection name (its first n bytes; the path segment of a URL
 * need not be NUL-terminated): 1..63 bytes of [A-Za-z0-9_.-], not starting
 * with '.'. 0, or VQS_EINVAL with the name and what is wrong. */
int vqs_coll_check_name(const char *name, size_t n);

/* Checks a configuration as vqs_coll_create does (name: for the messages
 * only) and writes it with its zero search defaults filled in to *filled
 * (may be NULL, or cfg itself). Lets a caller answer a bad configuration
 * before it looks at the name. Errors: as vqs_coll_create's checks. */
int vqs_coll_config_check(const char *name, const vqs_coll_config *cfg, vqs_coll_config *filled);

/* Creates an empty, untrained collection: all of it or nothing. cfg is
 * checked completely first (d, metric, rerank, sq_clip, oversampling, and
 * the spec by building an index of it for d and metric), its zero search
 * defaults are filled in, then the records are written and, unless rerank
 * is none, an empty vector file created (a stale DIR/NAME.vec left by an
 * earlier collection of that name is replaced). If the vector file cannot
 * be created the records are removed again: a failure leaves no record and
 * no file. Names: 1..63 bytes of [A-Za-z0-9_.-], not starting with '.'.
 * Errors: -EEXIST, VQS_EINVAL (name, d, metric, rerank, clip,
 * oversampling, read-only catalog), the index's code for a bad spec
 * (VQS_ESPEC, VQS_EINVAL; the detail is the index's, unprefixed), -errno
 * (the vector file). */
int vqs_coll_create(vqs_catalog *cat, const char *name, const vqs_coll_config *cfg);

/* Removes a collection: its records (one LMDB transaction), then its vector
 * file. Once the records are gone the collection is gone: a vector file
 * that cannot be removed is reported on stderr, not as a failure. A handle
 * of the collection still open may only be closed. Errors: VQS_ENOTFOUND,
 * VQS_EINVAL (name, read-only catalog), storage's. */
int vqs_coll_drop(vqs_catalog *cat, const char *name);

/* What a collection is and holds. */
typedef struct vqs_coll_info {
    vqs_coll_config cfg;    /* with the defaults filled in at create */
    uint64_t count;         /* live points */
    uint64_t next_iid;      /* internal ids handed out so far */
    uint64_t deleted;       /* dead internal ids whose codes are still stored */
    uint64_t code_bytes;    /* bytes of stored codes (live and dead) */
    uint64_t payload_bytes; /* bytes of live payloads */
    uint64_t vector_bytes;  /* size of the vector file (0: none) */
    int trained;            /* describe: a trained state is stored; stat: the handle's index is trained */
    /* vqs_coll_stat only (describe: 0, 0, "none"): the open index's */
    size_t code_size;        /* bytes per code (4 d before training: the vectors as they are) */
    double bytes_per_vector; /* vqs_index_bytes_per_vector (4 d before training) */
    const char *rerank_backend; /* vqs_coll_rerank_backend */
} vqs_coll_info;

/* Describes collection name without opening it (no index is loaded).
 * VQS_ENOTFOUND, VQS_EINVAL (name). */
int vqs_coll_describe(vqs_catalog *cat, const char *name, vqs_coll_info *info);

/* Opens collection name of cat: loads the trained state, adds every stored
 * code to the in-memory index (nothing is re-encoded) and opens the vector
 * file (cutting a torn tail back to what LMDB committed). o: NULL for the
 * catalog's coll options. cat must outlive the collection. Errors:
 * VQS_ENOTFOUND, VQS_ECORRUPT, VQS_EVERSION, -errno. */
int vqs_coll_open(vqs_catalog *cat, const char *name, const vqs_coll_opts *o, vqs_coll **out);
void vqs_coll_close(vqs_coll *c);

/* As vqs_coll_describe, for an open collection, plus the in-memory index's
 * sizes and the re-scoring backend; trained is the handle's state (what its
 * searches use). */
int vqs_coll_stat(vqs_coll *c, vqs_coll_info *info);

/* Replaces the search defaults (nprobe 1..2^24-1, oversampling 1..1000)
 * and the training size (0: train only explicitly) of an open collection:
 * stored first, then used by the next search or upsert (the other fields
 * of vqs_coll_config cannot change). A training size at or below the
 * points held trains at the next upsert. Errors: VQS_EINVAL (a value out
 * of range, read-only catalog), storage's. Callers that read
 * vqs_coll_config_of() without a lock must not run beside it (the server
 * holds its registry for writing). */
int vqs_coll_set_defaults(vqs_coll *c, uint32_t nprobe, float oversampling, uint64_t train_size);

/* ---- writing ------------------------------------------------------------ */

/* Trains the collection's index on n vectors (typically a sample of what
 * will be upserted), or with n == 0 on the points it holds, and stores the
 * trained state. Before training, a collection keeps its points' vectors
 * as they are (in LMDB, as their codes) and searches them exactly; training
 * re-encodes them in place in the same LMDB transaction that stores the
 * trained state. With cfg.train_size > 0 an upsert that brings the count
 * to train_size trains automatically on the points held. VQS_EINVAL if
 * already trained or (n == 0) there is nothing to train on. */
int vqs_coll_train(vqs_coll *c, size_t n, const float *x);
/* vqs_coll_train with a state trained elsewhere (vqs_index_save_trained of
 * an index of the collection's spec, dimension and metric, else
 * VQS_EINVAL): the shards of `vqs build` share one training. */
int vqs_coll_train_from(vqs_coll *c, const void *blob, size_t len);
int vqs_coll_is_trained(const vqs_coll *c);
/* Whether c has its points' full vectors to read (vqs_coll_get, exact
 * scoring): a vector file (rerank disk or memory), or not trained yet (the
 * points are held as they are). A trained rerank-none collection keeps only
 * codes. */
int vqs_coll_keeps_vectors(const vqs_coll *c);

/* Upserts n points atomically (one LMDB transaction; the vectors are
 * appended to the vector file and fsynced before the commit): all of them
 * or none. ids: n point ids (an existing id is replaced); x: n * d floats
 * (finite); payloads: NULL or n JSON texts (NULL entries: none). Durable
 * when it returns 0. */
int vqs_coll_upsert(vqs_coll *c, size_t n, const vqs_pid *ids, const float *x,
                    const char *const *payloads);

/* As vqs_coll_upsert, for a collection of one or several named vectors:
 * xv holds vqs_coll_nvectors() arrays, array i n * d_i floats of vector i
 * (every point has all of its collection's vectors). All vectors' records
 * are written in one LMDB transaction. vqs_coll_upsert on a collection of
 * several vectors is refused (VQS_EINVAL): it would leave the others out. */
int vqs_coll_upsert_vectors(vqs_coll *c, size_t n, const vqs_pid *ids, const float *const *xv,
                            const char *const *payloads);

/* Deletes points by id (unknown ids are ignored); *ndeleted may be NULL. */
int vqs_coll_delete(vqs_coll *c, size_t n, const vqs_pid *ids, size_t *ndeleted);

/* ---- searching ---------------------------------------------------------- */

typedef struct vqs_coll_search_params {
    size_t nprobe;      /* 0: the collection's default */
    size_t ef;          /* graph (VAMANA spec): the search beam; 0: the index's default; set for a
                           collection without a graph: VQS_EINVAL */
    float oversampling; /* 0: the collection's default */
    int rerank;         /* VQS_RERANK_DEFAULT (0): as configured, VQS_RERANK_ON: on (needs stored
                           vectors), VQS_RERANK_OFF: off (vqs_index.h) */
    /* Optional filter on internal ids, applied during the scan (a rejected
     * point never takes a result slot); non-zero keeps. Called concurrently. */
    int (*filter)(void *ctx, int64_t iid);
    void *filter_ctx;
    double deadline;    /* vqs_now() time past which the search stops with -ETIMEDOUT; 0: none */
    int with_payload;   /* 1: each hit carries its payload text */
} vqs_coll_search_params;

/* One search result. */
typedef struct vqs_coll_hit {
    vqs_pid id;    /* the point; kind 0: no result in this slot (fewer than k points matched,
                      or the point was deleted after the scan) */
    float dist;    /* the metric's convention, as vqs_index_search (L2: squared distance) */
    int64_t iid;   /* internal id; -1 when id.kind is 0 */
    char *payload; /* with_payload: malloc'd JSON text or NULL (none); free with vqs_coll_hits_free */
} vqs_coll_hit;

/* The k nearest points of each of nq queries (q: nq * d floats), best
 * first, into hits (nq * k, the caller's). The point ids, and with
 * p->with_payload the payloads, of all nq * k results are read in one
 * LMDB read transaction, so they are one consistent state. On success the
 * caller owns the payloads (vqs_coll_hits_free); on failure hits hold no
 * allocation. p: NULL for the defaults. Errors: VQS_EINVAL (k = 0, rerank
 * on without stored vectors), VQS_ENONFINITE / VQS_ERANGE (a query, named
 * by number), -ETIMEDOUT (deadline), VQS_ENOMEM, storage's. */
int vqs_coll_search(vqs_coll *c, const vqs_coll_search_params *p, size_t nq, const float *q, size_t k,
                    vqs_coll_hit *hits);
/* Frees the payloads of n hits (and sets them NULL); not the array. */
void vqs_coll_hits_free(vqs_coll_hit *hits, size_t n);

/* ---- points ------------------------------------------------------------- */

/* The stored vector of a point (d floats; for cosine collections the
 * normalised vector), and its payload (malloc'd or NULL). VQS_ENOTFOUND;
 * VQS_EINVAL for a trained collection that keeps no vectors (rerank none:
 * only codes; with vec NULL the payload is still returned). */
int vqs_coll_get(vqs_coll *c, const vqs_pid *id, float *vec, char **payload);

/* A point's internal id (iid may be NULL) and payload (malloc'd or NULL;
 * payload may be NULL). VQS_ENOTFOUND. */
int vqs_coll_lookup(vqs_coll *c, const vqs_pid *id, uint64_t *iid, char **payload);
/* The point id and payload (as above; both may be NULL) of a live internal
 * id. VQS_ENOTFOUND if dead or never handed out. */
int vqs_coll_lookup_iid(vqs_coll *c, uint64_t iid, vqs_pid *id, char **payload);

/* Calls fn for every live point in internal-id order, inside one read
 * transaction (one consistent state); payload is valid during the call
 * only and not NUL-terminated (payload_len bytes; NULL, 0 if none). A
 * non-zero return from fn stops the walk and is returned. */
typedef int (*vqs_coll_point_fn)(void *ctx, uint64_t iid, const vqs_pid *id, const char *payload,
                                 size_t payload_len);
int vqs_coll_iterate(vqs_coll *c, vqs_coll_point_fn fn, void *ctx);

/* ---- payload indexes and exact search over ids (coll_ids.c) ---------------- */

/* The payload indexes of a collection, kept by storage (vqs_store_db.h's
 * vqs_db_pindex_*: types, key layout, what a lookup returns), through the
 * collection's handle. */
int vqs_coll_pindex_create(vqs_coll *c, const char *field, int type, int *created);
int vqs_coll_pindex_delete(vqs_coll *c, const char *field);
int vqs_coll_pindex_list(vqs_coll *c, vqs_db_pindex_info **out, size_t *n);
int vqs_coll_pindex_lookup(vqs_coll *c, const char *field, const vqs_db_pquery *q, size_t max, uint64_t **iids,
                           size_t *n, int *over);

/* The planner's rule (api/plan.c, bench/bench_filter.c): a filtered search
 * scores the candidates of a payload index exactly when there are at most
 * this many of them in a collection of count points, and otherwise filters
 * during the scan: max(VQS_COLL_IDS_MIN, count / VQS_COLL_IDS_DIV), at most
 * VQS_COLL_IDS_MAX. */
#define VQS_COLL_IDS_MIN 2000
#define VQS_COLL_IDS_DIV 50
#define VQS_COLL_IDS_MAX 100000
size_t vqs_coll_ids_threshold(uint64_t count);

/* The planner's bound for a search of c with nprobe lists (0: the
 * collection's default): vqs_coll_ids_threshold(count), and, for a trained
 * IVF collection, also at most VQS_COLL_IDS_SCAN_MATCHES × nlist / nprobe
 * candidates. The exact path reads every candidate's full vector (from
 * disk: one random read each, ~12 µs measured at 1M points; from memory
 * ~0.15 µs; bench/README.md "Filtered search"), while the scan reads codes
 * and re-scores a few; the scan only loses recall when the lists it probes
 * hold few matching points (about candidates × nprobe / nlist), so the
 * exact path is kept to where that is under VQS_COLL_IDS_SCAN_MATCHES (and
 * the capped lookup that decides it stays short). */
#define VQS_COLL_IDS_SCAN_MATCHES 64
size_t vqs_coll_plan_threshold(const vqs_coll *c, size_t nprobe);

/* Exact search of one query over the points of n internal ids (iids, sorted
 * ascending; dead or unknown ids are skipped): each candidate's stored
 * vector (the untrained buffer or the vector file) is scored exactly, those
 * p->filter rejects are dropped, the k best are returned as vqs_coll_search
 * returns them (hits: k slots, the caller's; ties to the lower internal id).
 * Uses p's filter, deadline and with_payload; the index settings (nprobe,
 * oversampling, rerank) do not apply. Errors: VQS_EINVAL (k = 0; a trained
 * collection that keeps no vectors: it has nothing exact to score, search it
 * with vqs_coll_search), VQS_ENONFINITE / VQS_ERANGE (the query),
 * -ETIMEDOUT, VQS_ENOMEM, storage's. */
int vqs_coll_search_ids(vqs_coll *c, const vqs_coll_search_params *p, const float *q, size_t k, size_t n,
                        const uint64_t *iids, vqs_coll_hit *hits);

/* ---- several changes at once (coll_apply.c) ------------------------------ */

typedef enum vqs_coll_op_kind {
    VQS_COLL_OP_UPSERT = 1, /* n points: ids, x (n * d floats), payloads (NULL or n JSON texts) */
    VQS_COLL_OP_DELETE,     /* n ids (unknown ids are skipped) or, ids NULL, every live point
                               that edit selects (its *out is ignored) */
    VQS_COLL_OP_PAYLOAD,    /* edit the payloads of n ids (each must exist) or, ids NULL, of every
                               live point that edit selects */
    VQS_COLL_OP_VECTORS,    /* replace the vectors of n existing points (ids, x), keeping their
                               payloads */
} vqs_coll_op_kind;

/* A payload edit, called inside the write transaction with a point and its
 * current payload (old_len bytes of JSON, not NUL-terminated; NULL, 0:
 * none). Returns 0 with *out a malloc'd NUL-terminated JSON text (NULL: no
 * payload) that becomes the point's payload; 1: leave this point as it is
 * (it is not selected); < 0: an error (detail set) that aborts everything.
 * It may be called again for the same point (the transaction is replayed
 * when the LMDB map grows): it must depend only on its arguments. */
typedef int (*vqs_coll_edit_fn)(void *ctx, const vqs_pid *id, const char *old, size_t old_len, char **out);

typedef struct vqs_coll_op {
    vqs_coll_op_kind kind;
    size_t n;
    const vqs_pid *ids;          /* n ids (distinct for UPSERT and VECTORS) */
    const float *x;              /* UPSERT, VECTORS: n * d floats, finite (one vector per point) */
    const float *const *xv;      /* UPSERT, VECTORS of a collection with several named vectors
                                    (instead of x): vqs_coll_nvectors() arrays, array i n * d_i floats
                                    of vector i; every point has all of them */
    size_t *ndeleted;            /* DELETE: NULL, or where the number of points deleted goes */
    const char *const *payloads; /* UPSERT: NULL or n texts (NULL entries: none) */
    vqs_coll_edit_fn edit;       /* PAYLOAD */
    void *edit_ctx;
} vqs_coll_op;

/* A point whose payload the apply wrote (upserted, its payload edited, its
 * vector replaced), in the order of the writes: the same id may appear more
 * than once, the last one holds. */
typedef struct vqs_coll_change {
    vqs_pid id;
    uint64_t iid;        /* its internal id now */
    const char *payload; /* its payload (JSON text) or NULL */
} vqs_coll_change;

/* Applies nops operations in order (each sees the results of the ones
 * before it) atomically: the vectors they add are appended to the vector
 * file and fsynced, then ONE LMDB write transaction commits all of them or
 * none; only then does the in-memory index change. A payload edit keeps the
 * point's internal id (nothing is re-encoded). after_commit (may be NULL)
 * is called after the commit, while the collection's writer lock is still
 * held (so two applies report in commit order), with the changes (valid
 * during the call). Errors: VQS_ENOTFOUND ("No point with id X found": a
 * PAYLOAD or VECTORS id that does not exist when its operation runs), as
 * vqs_coll_upsert, an edit's error. Nothing is changed on error. */
int vqs_coll_apply(vqs_coll *c, size_t nops, const vqs_coll_op *ops,
                   void (*after_commit)(void *ctx, size_t n, const vqs_coll_change *changes), void *ctx);

/* Calls fn for live points in point-id order (integers ascending, then
 * UUIDs), from point id from (NULL: the first; an id not stored: the next
 * after it), in one read transaction; fn returns 0 to go on, > 0 to stop
 * (returned), < 0 an error (returned). */
int vqs_coll_scroll(vqs_coll *c, const vqs_pid *from, vqs_coll_point_fn fn, void *ctx);

/* ---- named vectors ----------------------------------------------------------
 *
 * A collection has one unnamed vector, or 1..VQS_DB_MAX_VECTORS named ones
 * (Qdrant's "vectors": {"NAME": {...}, ...}), each with its own dimension,
 * metric, spec, rerank and search defaults, its own in-memory index and
 * vector file (DIR/NAME.vec for the first, DIR/NAME@I.vec for vector I),
 * kept under the same internal ids. Every point has every vector: an
 * upsert or a vector replacement gives all of them, and every write
 * reaches all vectors' records in one LMDB transaction. Payloads, point ids
 * and payload indexes are the collection's. */

/* Creates collection name with n named vectors (distinct names,
 * vqs_db_check_vector_name), vector i configured by cfgs[i]; all or
 * nothing, as vqs_coll_create. */
int vqs_coll_create_named(vqs_catalog *cat, const char *name, size_t n, const char *const *vnames,
                          const vqs_coll_config *cfgs);
/* The vector names of a collection (vqs_db_vectors): n = 0 for one unnamed
 * vector; free with vqs_db_vectors_free. */
int vqs_coll_describe_vectors(vqs_catalog *cat, const char *name, char ***vnames, size_t *n);
/* vqs_coll_describe of vector i (in the order of vqs_coll_describe_vectors;
 * i = 0 is what vqs_coll_describe tells). VQS_ENOTFOUND past the last. */
int vqs_coll_describe_vector(vqs_catalog *cat, const char *name, size_t i, vqs_coll_info *info);
/* How many vectors an open collection has (1 for an unnamed one), the
 * name of vector i (NULL: the unnamed vector, or i out of range), and the
 * handle that searches vector i (c itself for i = 0; NULL out of range).
 * A vector's handle is valid while c is open and is used for what belongs
 * to one vector: search, search over ids, get (its vector), stat, train,
 * set_defaults, its configuration; point ids and payloads are read from
 * the collection, and writes go through c. */
size_t vqs_coll_nvectors(const vqs_coll *c);
const char *vqs_coll_vector_name(const vqs_coll *c, size_t i);
vqs_coll *vqs_coll_vector(vqs_coll *c, size_t i);
/* The number of the vector called name (NULL or "": the unnamed vector).
 * VQS_ENOTFOUND ("Not existing vector name error: NAME", Qdrant's words). */
int vqs_coll_vector_find(const vqs_coll *c, const char *name, size_t *i);

/* ---- accessors ----------------------------------------------------------- */

uint64_t vqs_coll_count(const vqs_coll *c);
size_t vqs_coll_d(const vqs_coll *c);
/* The configuration (static for the handle's life). */
const vqs_coll_config *vqs_coll_config_of(const vqs_coll *c);
/* The in-memory index (NULL before training); valid until the next upsert,
 * delete or close. */
const vqs_index *vqs_coll_index(const vqs_coll *c);
/* "io_uring", "pread", "mmap", "memory", or "none". */
const char *vqs_coll_rerank_backend(const vqs_coll *c);
/* Path of the vector file (static per collection; "" if none). */
const char *vqs_coll_vecfile_path(const vqs_coll *c);

#ifdef __cplusplus
}
#endif

#endif
