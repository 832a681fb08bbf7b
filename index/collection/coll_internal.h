/*
 * coll_internal.h: what the parts of the collection layer share (not
 * installed): the two handles, the configuration's conversion to and from
 * storage's record, the vector file's name (catalog.c), the re-scoring
 * reader (collection.c) and the untrained buffer (coll_buffer.c).
 */
#ifndef VQS_COLL_INTERNAL_H
#define VQS_COLL_INTERNAL_H

#include <pthread.h>

#include "vqs_collection.h"

struct vqs_catalog {
    vqs_db *db;
    vqs_coll_opts coll; /* vqs_coll_open's options when given NULL */
};

struct vqs_coll {
    vqs_db *db;
    char name[72];
    vqs_coll_config cfg;
    vqs_coll_opts o;
    vqs_index *ix;        /* NULL until trained */
    vqs_vecstore *vs;     /* NULL if rerank == none */
    char vspath[4096];
    /* a graph index (VAMANA spec): its snapshot beside the vector file
     * (collection.c), and whether the graph in memory differs from it */
    char gpath[4104];
    int graph_dirty;
    pthread_rwlock_t lock; /* ix: searches read, the in-memory apply writes */
    pthread_mutex_t wlock; /* one writer at a time */
    uint64_t count;
    /* Reader slots of the vector store (one io_uring ring each) are handed
     * out per fetch, not by the index's thread id: concurrent searches (HTTP
     * threads) each run their own pool with thread ids from 0. */
    pthread_mutex_t slock;
    pthread_cond_t scond;
    int *free_slots, nfree, nslots;
    /* Before training: the stored vectors of live points (normalised for
     * cosine), searched exactly; LMDB keeps them as the points' codes until
     * training re-encodes them in place (vqs_db_train_recode). Guarded by
     * lock like ix. */
    float *buf;
    int64_t *biid; /* internal id of each row; -1: deleted */
    size_t bn, bcap, blive;
    /* Named vectors (storage/db_vectors.c): nvec names (vnames NULL: one
     * unnamed vector, nvec 1); vec[0] is c itself, vec[i] the handle of
     * vector i, whose record NAME@i holds its codes and its copy of the
     * point ids under the same internal ids. A vector's handle has primary
     * set: point ids and payloads are read from the primary's record. */
    size_t nvec;
    char **vnames;
    struct vqs_coll **vec;
    struct vqs_coll *primary;
};

/* The record whose point ids and payloads c reads: its own, or for the
 * handle of a further named vector its collection's. */
static inline const char *coll_pts(const vqs_coll *c) { return c->primary ? c->primary->name : c->name; }

/* ---- catalog.c ----------------------------------------------------------- */

/* storage's record <-> the layer's configuration (field by field; the
 * rerank and metric numbers are the stored ones) */
void coll_config_from_db(const vqs_db_config *in, vqs_coll_config *out);
void coll_config_to_db(const vqs_coll_config *in, vqs_db_config *out);

/* The one place that names a collection's vector file: DIR/NAME.vec.
 * VQS_EINVAL if it does not fit n bytes. */
int coll_vec_path(vqs_db *db, const char *name, char *buf, size_t n);

/* vqs_coll_describe over storage's handle (also vqs_coll_stat's start). */
int coll_describe(vqs_db *db, const char *name, vqs_coll_info *info);

/* The vector file of record name (NAME, or NAME@I for a further named
 * vector) with rerank != none: an empty file replacing any stale one. */
int coll_vec_create(vqs_db *db, const char *name, const vqs_coll_config *cfg);

/* ---- collection.c ---------------------------------------------------------- */

/* Reads n stored vectors through a free reader slot of c's vector store
 * (the index's re-scoring source; thread_id is ignored). */
int coll_fetch(void *ctx, int thread_id, size_t n, const int64_t *ids, float *out);
/* Trains c (caller holds wlock); n == 0: on the buffered points. */
int coll_train_locked(vqs_coll *c, size_t n, const float *x);

/* ---- coll_buffer.c: the untrained buffer (caller holds the locks) ---------- */

int coll_buf_append(vqs_coll *c, size_t n, const float *y, const uint64_t *iids);
/* Marks buffered rows dead. */
void coll_buf_remove(vqs_coll *c, size_t n, const int64_t *iids);
/* Exact search over the buffer, same conventions as vqs_index_search. */
int coll_buf_search(const vqs_coll *c, const vqs_coll_search_params *p, size_t nq, const float *q, size_t k,
                    int64_t *ids, float *dist);
/* The buffered vector of iid into vec (d floats); 0 if it is not buffered. */
int coll_buf_get(const vqs_coll *c, int64_t iid, float *vec);

#endif
