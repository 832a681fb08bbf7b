/*
 * vqs_collection.h: a persistent collection: the compressed index of
 * index/ivf.c kept in the storage layer (storage/vqs_store_db.h: LMDB;
 * storage/vqs_store_vec.h: full-precision vectors in an append-only file
 * read through io_uring for re-scoring).
 *
 * Internal ids: the storage layer numbers points 0, 1, 2, ... in upsert
 * order; the in-memory index uses them as its ids, the vector file
 * addresses records by them, and results are mapped back to the user's
 * point ids (u64 or UUID) through LMDB.
 *
 * Consistency: one writer at a time (a mutex); the in-memory index is
 * guarded by a reader-writer lock, taken for writing only for the short
 * in-memory apply after the LMDB commit, so a search sees the state before
 * or after a batch, never part of one.
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

typedef struct vqs_coll vqs_coll;

typedef struct vqs_coll_opts {
    int nthreads;           /* search and encode threads; 0: vqs_default_threads() */
    vqs_vs_backend backend; /* rerank reads; 0: io_uring (pread fallback) for disk
                               collections, memory for memory collections */
    int verbose;            /* progress on stderr */
} vqs_coll_opts;

/* Opens collection name of db: loads the trained state, adds every stored
 * code to the in-memory index (nothing is re-encoded) and opens the vector
 * file (cutting a torn tail back to what LMDB committed). db must outlive
 * the collection. Errors: VQS_ENOTFOUND, VQS_ECORRUPT, VQS_EVERSION,
 * -errno. */
int vqs_coll_open(vqs_db *db, const char *name, const vqs_coll_opts *o, vqs_coll **out);
void vqs_coll_close(vqs_coll *c);

/* Trains the collection's index on n vectors (typically a sample of what
 * will be upserted), or with n == 0 on the points it holds, and stores the
 * trained state. Before training, a collection keeps its points' vectors
 * as they are (in LMDB, as their codes) and searches them exactly; training
 * re-encodes them in place in the same LMDB transaction that stores the
 * trained state. With cfg.train_size > 0 an upsert that brings the count
 * to train_size trains automatically on the points held. VQS_EINVAL if
 * already trained or (n == 0) there is nothing to train on. */
int vqs_coll_train(vqs_coll *c, size_t n, const float *x);
int vqs_coll_is_trained(const vqs_coll *c);

/* Upserts n points atomically (one LMDB transaction; the vectors are
 * appended to the vector file and fsynced before the commit): all of them
 * or none. ids: n point ids (an existing id is replaced); x: n * d floats
 * (finite); payloads: NULL or n JSON texts (NULL entries: none). Durable
 * when it returns 0. */
int vqs_coll_upsert(vqs_coll *c, size_t n, const vqs_pid *ids, const float *x,
                    const char *const *payloads);

/* Deletes points by id (unknown ids are ignored); *ndeleted may be NULL. */
int vqs_coll_delete(vqs_coll *c, size_t n, const vqs_pid *ids, size_t *ndeleted);

typedef struct vqs_coll_search_params {
    size_t nprobe;      /* 0: the collection's default */
    float oversampling; /* 0: the collection's default */
    int rerank;         /* 0: as configured, 1: on (needs stored vectors), -1: off */
    /* Optional filter on internal ids, applied during the scan (a rejected
     * point never takes a result slot); non-zero keeps. Called concurrently. */
    int (*filter)(void *ctx, int64_t iid);
    void *filter_ctx;
    double deadline;    /* vqs_now() time past which the search stops with -ETIMEDOUT; 0: none */
} vqs_coll_search_params;

/* k nearest points of nq queries: ids (nq * k point ids; kind 0 for a
 * missing result), dist (nq * k, may be NULL; the metric's convention as in
 * vqs_index_search), iids (nq * k internal ids or -1, may be NULL). */
int vqs_coll_search(vqs_coll *c, const vqs_coll_search_params *p, size_t nq, const float *q,
                    size_t k, vqs_pid *ids, float *dist, int64_t *iids);

/* The stored vector of a point (d floats; for cosine collections the
 * normalised vector), and its payload (malloc'd or NULL). VQS_ENOTFOUND;
 * VQS_EINVAL for a trained collection that keeps no vectors (rerank none:
 * only codes; with vec NULL the payload is still returned). */
int vqs_coll_get(vqs_coll *c, const vqs_pid *id, float *vec, char **payload);

uint64_t vqs_coll_count(const vqs_coll *c);
size_t vqs_coll_d(const vqs_coll *c);
const vqs_db_config *vqs_coll_config_of(const vqs_coll *c);
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
