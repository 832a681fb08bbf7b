/*
 * collection.c: an open collection (vqs_collection.h) = the storage
 * layer's LMDB records and vector file + the in-memory compressed index:
 * open, train, upsert, delete, point access. Searching is coll_search.c,
 * the untrained buffer coll_buffer.c, the directory-level operations
 * (create, drop, describe) catalog.c.
 *
 * Design decisions:
 * - The index in memory is rebuilt at open from the stored codes
 *   (vqs_db_load_codes -> vqs_index_add_encoded): no vector is re-encoded,
 *   and the fast-scan packing happens there (a memory copy per code). The
 *   trained state (codec, centroids) is one blob (vqs_index_save_trained).
 *   A graph index (VAMANA spec) is the exception that is not rebuilt: its
 *   edges are saved at close to <vector file>.graph (graph_save) and read
 *   back at open when they cover exactly the points loaded; else (a crash,
 *   a writer in another process since) the points are linked again, once,
 *   as one bulk insert. The snapshot is never a source of points: LMDB is.
 * - Write order of an upsert: encode (outside every lock) -> one LMDB write
 *   transaction holding codes, ids and payloads, whose before_commit hook
 *   appends the vectors to the vector file and fdatasyncs it -> commit ->
 *   apply to the in-memory index. A crash before the commit leaves at most
 *   an uncommitted tail in the vector file, which the next open cuts back to
 *   LMDB's next internal id; a crash after it loses nothing, because the
 *   in-memory index is rebuilt from LMDB. If the commit fails, the vector
 *   file is cut back at once.
 * - Cosine collections store normalised vectors (as Qdrant does), so the
 *   re-scoring reads are inner products of unit vectors.
 * - The index's ids are the storage layer's internal ids (dense u64), so the
 *   vector file is addressed directly by the ids the index returns.
 * Rejected: keeping the index only on disk and scanning LMDB values at
 * search time (a read transaction per query, and the fast-scan layout
 * would have to be stored packed, tying the storage format to one kernel's
 * block size); re-training at open (slow and not deterministic across
 * thread counts).
 */
#define _GNU_SOURCE
#include "coll_internal.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SLOTS_PER_THREAD 4

int coll_fetch(void *ctx, int thread_id, size_t n, const int64_t *ids, float *out)
{
    (void)thread_id;
    vqs_coll *c = ctx;
    pthread_mutex_lock(&c->slock);
    while (c->nfree == 0)
        pthread_cond_wait(&c->scond, &c->slock);
    int slot = c->free_slots[--c->nfree];
    pthread_mutex_unlock(&c->slock);
    int rc = vqs_vecstore_fetch(c->vs, slot, n, ids, out);
    pthread_mutex_lock(&c->slock);
    c->free_slots[c->nfree++] = slot;
    pthread_cond_signal(&c->scond);
    pthread_mutex_unlock(&c->slock);
    return rc;
}

static int index_opts(const vqs_coll *c, vqs_index_opts *io)
{
    memset(io, 0, sizeof *io);
    io->nthreads = c->o.nthreads;
    io->seed = 1234;
    io->nprobe = c->cfg.nprobe;
    io->oversampling = c->cfg.oversampling;
    io->codec.sq_clip = c->cfg.sq_clip; /* stored with the collection: any later training uses it */
    io->verbose = c->o.verbose;
    io->graph_dir = vqs_db_dir(c->db); /* a graph with /D: its links' file beside the collection's */
    return 0;
}

typedef struct load_ctx {
    vqs_coll *c;
    vqs_index *ix; /* where codes go; NULL: the untrained buffer */
    size_t loaded;
    uint64_t end; /* 1 + the largest internal id loaded */
    uint64_t fp;  /* the sum of mix(iid) over the live internal ids loaded: which points, in any order */
} load_ctx;

/* splitmix64's finaliser: one differing internal id changes the sum */
static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static int load_cb(void *ctx, size_t n, const uint64_t *iids, const uint32_t *lists,
                   const uint8_t *codes, size_t code_size)
{
    load_ctx *L = ctx;
    vqs_coll *c = L->c;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (iids[i] >= L->end)
            L->end = iids[i] + 1;
        L->fp += mix(iids[i]);
    }
    if (!L->ix) {
        if (code_size != sizeof(float) * c->cfg.d)
            return vqs_seterr(VQS_ECORRUPT, "collection '%s': untrained, stored vectors of %zu bytes, expected %zu",
                              c->name, code_size, sizeof(float) * c->cfg.d);
        int rc = coll_buf_append(c, n, (const float *)(const void *)codes, iids);
        L->loaded += n;
        return rc;
    }
    if (code_size != vqs_index_entry_size(L->ix))
        return vqs_seterr(VQS_ECORRUPT, "collection '%s': stored codes of %zu bytes, the index uses %zu",
                          c->name, code_size, vqs_index_entry_size(L->ix));
    int rc = vqs_index_add_encoded(L->ix, n, codes, lists, (const int64_t *)iids);
    if (rc)
        return vqs_seterr(rc, "collection '%s': %s", c->name, vqs_errdetail());
    L->loaded += n;
    return 0;
}

/* Opens the collection record name (a collection's, or NAME@I of one of its
 * further named vectors) as one handle; *fp: the fingerprint of the live
 * internal ids it loaded (load_ctx.fp). */
static int open_rec(vqs_catalog *cat, const char *name, const vqs_coll_opts *o, vqs_coll **out, uint64_t *fp)
{
    *out = NULL;
    vqs_db *db = cat->db;
    vqs_db_stats info;
    int rc = vqs_db_info(db, name, &info);
    if (rc)
        return rc;
    vqs_coll *c = calloc(1, sizeof *c);
    if (!c)
        return vqs_seterr(VQS_ENOMEM, "coll_open");
    c->db = db;
    snprintf(c->name, sizeof c->name, "%s", name);
    coll_config_from_db(&info.cfg, &c->cfg);
    c->o = o ? *o : cat->coll;
    c->count = info.count;
    pthread_rwlock_init(&c->lock, NULL);
    pthread_mutex_init(&c->wlock, NULL);
    pthread_mutex_init(&c->slock, NULL);
    pthread_cond_init(&c->scond, NULL);
    c->nslots = SLOTS_PER_THREAD * (c->o.nthreads > 0 ? c->o.nthreads : vqs_default_threads());
    if (!(c->free_slots = malloc(sizeof(int) * (size_t)c->nslots))) {
        free(c);
        return vqs_seterr(VQS_ENOMEM, "coll_open");
    }
    for (int i = 0; i < c->nslots; i++)
        c->free_slots[c->nfree++] = c->nslots - 1 - i;
    void *blob = NULL;
    size_t len = 0;
    rc = vqs_db_get_trained(db, name, &blob, &len);
    if (rc == 0) {
        vqs_index_opts io;
        index_opts(c, &io);
        rc = vqs_index_load_trained(blob, len, &io, &c->ix);
        free(blob);
        if (rc) {
            rc = vqs_seterr(rc, "collection '%s': trained state: %s", name, vqs_errdetail());
            goto fail;
        }
    } else if (rc != VQS_ENOTFOUND) {
        goto fail;
    }
    vqs_clearerr();
    /* a graph: its snapshot if it holds these points (graph_finish checks),
     * else linked once over every point loaded */
    int graph = vqs_index_graph_params(c->cfg.spec, NULL, NULL, NULL) == 1;
    if (graph) { /* the snapshot's path, for a graph trained later too */
        char vp[4096];
        if ((rc = coll_vec_path(db, name, vp, sizeof vp)))
            goto fail;
        snprintf(c->gpath, sizeof c->gpath, "%s.graph", vp);
    }
    graph = graph && c->ix;
    if (graph && (rc = vqs_index_graph_defer(c->ix)))
        goto fail;
    load_ctx L = {c, c->ix, 0, 0, 0};
    if ((rc = vqs_db_load_codes(db, name, load_cb, &L)))
        goto fail;
    if (graph) {
        FILE *gf = fopen(c->gpath, "rb");
        int loaded = 0;
        rc = vqs_index_graph_finish(c->ix, gf, &loaded);
        if (gf)
            fclose(gf);
        if (rc) {
            rc = vqs_seterr(rc, "collection '%s': linking the graph: %s", name, vqs_errdetail());
            goto fail;
        }
        c->graph_dirty = !loaded;
    }
    /* The vector file after the codes: beside a writer in another process
     * (a read-only handle) the codes may come from a later commit than
     * info, and every committed batch's vectors reach the file before its
     * commit, so the file covers whatever was loaded. */
    if (c->cfg.rerank != VQS_RERANK_NONE) {
        if ((rc = coll_vec_path(db, name, c->vspath, sizeof c->vspath)))
            goto fail;
        vqs_vecstore_opts vo = {0};
        vo.backend = c->o.backend ? c->o.backend : c->cfg.rerank == VQS_RERANK_MEMORY ? VQS_VS_MEMORY : VQS_VS_AUTO;
        vo.nthreads = c->nslots;
        vo.read_only = vqs_db_is_read_only(db);
        uint64_t committed = info.next_iid > L.end ? info.next_iid : L.end;
        if ((rc = vqs_vecstore_open(c->vspath, c->cfg.d, committed, &vo, &c->vs)))
            goto fail;
    }
    c->nvec = 1;
    *fp = L.fp;
    *out = c;
    return 0;
fail:
    vqs_coll_close(c);
    return rc;
}

int vqs_coll_open(vqs_catalog *cat, const char *name, const vqs_coll_opts *o, vqs_coll **out)
{
    if (!cat || !name || !out)
        return vqs_seterr(VQS_EINVAL, "coll_open: NULL argument");
    *out = NULL;
    int rc = vqs_coll_check_name(name, strlen(name));
    if (rc)
        return rc;
    char **vn = NULL;
    size_t nv = 0;
    if ((rc = vqs_db_vectors(cat->db, name, &vn, &nv)))
        return rc;
    vqs_coll *c;
    uint64_t fp0, fpi;
    if ((rc = open_rec(cat, name, o, &c, &fp0))) {
        vqs_db_vectors_free(vn, nv);
        return rc;
    }
    if (nv == 0) {
        *out = c;
        return 0;
    }
    c->vnames = vn;
    if (!(c->vec = calloc(nv, sizeof *c->vec))) {
        vqs_db_vectors_free(vn, nv);
        c->vnames = NULL;
        vqs_coll_close(c);
        return vqs_seterr(VQS_ENOMEM, "coll_open: %zu vectors", nv);
    }
    c->nvec = nv;
    c->vec[0] = c;
    /* the records of every vector, read in one transaction (one state, even
     * beside a writer): a write reaches all of them in one transaction, so
     * their points and internal ids are the collection's */
    char rn[VQS_DB_MAX_VECTORS][80];
    const char *rp[VQS_DB_MAX_VECTORS];
    vqs_db_stats st[VQS_DB_MAX_VECTORS];
    for (size_t i = 0; i < nv; i++) {
        if ((rc = vqs_db_vector_rec_name(name, i, rn[i], sizeof rn[i])))
            goto fail;
        rp[i] = rn[i];
    }
    if ((rc = vqs_db_info_n(cat->db, nv, rp, st)))
        goto fail;
    const vqs_db_stats s0 = st[0];
    for (size_t i = 1; i < nv; i++) {
        vqs_db_stats si = st[i];
        if (si.count != s0.count || si.next_iid != s0.next_iid) {
            rc = vqs_seterr(VQS_ECORRUPT, "collection '%s': vector '%s' holds %llu points (next internal id %llu), "
                            "vector '%s' %llu (%llu)", name, vn[i], (unsigned long long)si.count,
                            (unsigned long long)si.next_iid, vn[0], (unsigned long long)s0.count,
                            (unsigned long long)s0.next_iid);
            goto fail;
        }
        if ((rc = open_rec(cat, rn[i], o, &c->vec[i], &fpi)))
            goto fail;
        c->vec[i]->primary = c;
        /* and the same points: as many is not enough. (Each record's codes
         * are loaded in a read transaction of their own: beside a writer in
         * another process, a read-only handle may load them from different
         * commits, so only a writable handle, which holds the directory's
         * writer lock, can compare them.) */
        if (fpi != fp0 && !vqs_db_is_read_only(cat->db)) {
            rc = vqs_seterr(VQS_ECORRUPT, "collection '%s': vector '%s' and vector '%s' hold %llu points each, but not "
                            "the same internal ids", name, vn[i], vn[0], (unsigned long long)s0.count);
            goto fail;
        }
    }
    *out = c;
    return 0;
fail:
    vqs_coll_close(c);
    return rc;
}

/* The graph's snapshot, written beside the vector file when the graph in
 * memory is not the one on disk: to a temporary name, synced, then renamed
 * over the old one, so a crash leaves the old snapshot or the new one (and
 * either is used only if it holds exactly the points then loaded). A
 * failure costs only the next open's linking: it is reported on stderr. */
static void graph_save(vqs_coll *c)
{
    vqs_db_stats st;
    if (!c->ix || !c->gpath[0] || !c->graph_dirty || vqs_db_is_read_only(c->db))
        return;
    if (vqs_db_info(c->db, c->name, &st)) { /* dropped while open: nothing to save for */
        vqs_clearerr();
        return;
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.XXXXXX", c->gpath);
    int fd = mkstemp(tmp);
    if (fd >= 0)
        fchmod(fd, 0644); /* as the vector file (mkstemp's is 0600) */
    FILE *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    int rc = f ? vqs_index_graph_write(c->ix, f) : -errno;
    if (!rc && fsync(fileno(f)))
        rc = -errno;
    if (f && fclose(f) && !rc)
        rc = -errno;
    else if (!f && fd >= 0)
        close(fd);
    if (!rc && rename(tmp, c->gpath))
        rc = -errno;
    if (rc) {
        unlink(tmp);
        fprintf(stderr, "vqs: collection '%s': the graph was not saved (%s); the next open links it again\n",
                c->name, vqs_strerror(rc));
    }
}

void vqs_coll_close(vqs_coll *c)
{
    if (!c)
        return;
    graph_save(c);
    for (size_t i = 1; c->vec && i < c->nvec; i++)
        vqs_coll_close(c->vec[i]);
    free(c->vec);
    vqs_db_vectors_free(c->vnames, c->vnames ? c->nvec : 0);
    vqs_index_free(c->ix);
    vqs_vecstore_close(c->vs);
    pthread_rwlock_destroy(&c->lock);
    pthread_mutex_destroy(&c->wlock);
    pthread_mutex_destroy(&c->slock);
    pthread_cond_destroy(&c->scond);
    free(c->free_slots);
    free(c->buf);
    free(c->biid);
    free(c);
}

int vqs_coll_is_trained(const vqs_coll *c) { return c->ix != NULL; }
int vqs_coll_keeps_vectors(const vqs_coll *c) { return c->cfg.rerank != VQS_RERANK_NONE || !vqs_coll_is_trained(c); }
size_t vqs_coll_nvectors(const vqs_coll *c) { return c->nvec; }
const char *vqs_coll_vector_name(const vqs_coll *c, size_t i) { return c->vnames && i < c->nvec ? c->vnames[i] : NULL; }
vqs_coll *vqs_coll_vector(vqs_coll *c, size_t i)
{
    if (i >= c->nvec)
        return NULL;
    return c->vec ? c->vec[i] : c;
}
int vqs_coll_vector_find(const vqs_coll *c, const char *name, size_t *i)
{
    if (!name || !*name) {
        if (c->vnames)
            return vqs_seterr(VQS_ENOTFOUND, "Wrong input: Not existing vector name error: the default vector; "
                              "collection '%s' has named vectors", c->name);
        *i = 0;
        return 0;
    }
    for (size_t k = 0; c->vnames && k < c->nvec; k++)
        if (!strcmp(c->vnames[k], name)) {
            *i = k;
            return 0;
        }
    return vqs_seterr(VQS_ENOTFOUND, "Wrong input: Not existing vector name error: %.80s", name);
}
uint64_t vqs_coll_count(const vqs_coll *c) { return __atomic_load_n(&c->count, __ATOMIC_RELAXED); }
size_t vqs_coll_d(const vqs_coll *c) { return c->cfg.d; }
const vqs_coll_config *vqs_coll_config_of(const vqs_coll *c) { return &c->cfg; }
const vqs_index *vqs_coll_index(const vqs_coll *c) { return c->ix; }
const char *vqs_coll_vecfile_path(const vqs_coll *c) { return c->vspath; }
const char *vqs_coll_rerank_backend(const vqs_coll *c)
{
    return c->vs ? vqs_vecstore_backend_name(c->vs) : "none";
}

/* x prepared as stored: a copy, normalised for cosine. */
static float *stored_copy(const vqs_coll *c, size_t n, const float *x)
{
    size_t d = c->cfg.d;
    float *y = malloc(sizeof(float) * (n ? n : 1) * d);
    if (!y)
        return NULL;
    memcpy(y, x, sizeof(float) * n * d);
    if (c->cfg.metric == VQS_METRIC_COS)
        vqs_normalize_rows(n, d, y);
    return y;
}

typedef struct recode_enc {
    vqs_index *ix;
    size_t d;
    const char *name;
} recode_enc;

static int recode_cb(void *ctx, uint64_t first, size_t n, const uint8_t *in, size_t in_size, uint32_t *lists,
                     uint8_t *out)
{
    recode_enc *E = ctx;
    if (in_size != sizeof(float) * E->d)
        return vqs_seterr(VQS_ECORRUPT, "collection '%s': segment at internal id %llu holds %zu-byte entries, "
                                        "not the %zu-byte vectors of an untrained collection",
                          E->name, (unsigned long long)first, in_size, sizeof(float) * E->d);
    float *x = malloc(sizeof(float) * E->d * (n ? n : 1)); /* alignment of in is LMDB's */
    if (!x)
        return vqs_seterr(VQS_ENOMEM, "recode: %zu vectors", n);
    memcpy(x, in, in_size * n);
    int rc = vqs_index_encode(E->ix, n, x, out, lists);
    free(x);
    return rc;
}

/* Caller holds wlock. n == 0: train on the buffered points; tb: not
 * trained here, the state of vqs_index_save_trained (vqs_coll_train_from). */
static int train_locked(vqs_coll *c, size_t n, const float *x, const void *tb, size_t tlen)
{
    if (c->ix)
        return vqs_seterr(VQS_EINVAL, "collection '%s' is already trained", c->name);
    size_t d = c->cfg.d;
    float *sample = NULL;
    vqs_index *ix = NULL;
    void *blob = NULL;
    size_t len = 0;
    int rc = 0;
    if (tb) {
        vqs_index_opts io;
        index_opts(c, &io);
        if ((rc = vqs_index_load_trained(tb, tlen, &io, &ix))) {
            rc = vqs_seterr(rc, "collection '%s': trained state: %s", c->name, vqs_errdetail());
            goto done;
        }
        if (strcmp(vqs_index_spec(ix), c->cfg.spec) || vqs_index_d(ix) != d ||
            vqs_index_metric(ix) != (vqs_metric)c->cfg.metric) {
            rc = vqs_seterr(VQS_EINVAL, "collection '%s' is %s, %zu-d %s; the trained state is %s, %zu-d %s", c->name,
                            c->cfg.spec, d, vqs_metric_name((vqs_metric)c->cfg.metric), vqs_index_spec(ix),
                            vqs_index_d(ix), vqs_metric_name(vqs_index_metric(ix)));
            goto done;
        }
        if ((rc = vqs_index_save_trained(ix, &blob, &len)))
            goto done;
        goto store;
    }
    if (n == 0) {
        if (c->blive == 0)
            return vqs_seterr(VQS_EINVAL, "collection '%s' holds no points to train on", c->name);
        if (!(sample = malloc(sizeof(float) * d * c->blive)))
            return vqs_seterr(VQS_ENOMEM, "coll_train: %zu vectors", c->blive);
        for (size_t r = 0; r < c->bn; r++)
            if (c->biid[r] >= 0)
                memcpy(sample + n++ * d, c->buf + r * d, sizeof(float) * d);
        x = sample;
    }
    vqs_index_opts io;
    index_opts(c, &io);
    if ((rc = vqs_index_create(c->cfg.spec, d, (vqs_metric)c->cfg.metric, &io, &ix)) ||
        (rc = vqs_index_train(ix, n, x)) || (rc = vqs_index_save_trained(ix, &blob, &len)))
        goto done;
store:;
    recode_enc E = {ix, d, c->name};
    if ((rc = vqs_db_train_recode(c->db, c->name, blob, len, vqs_index_entry_size(ix), recode_cb, &E)))
        goto done;
    /* committed: load the new codes (a failure here is recovered by reopening) */
    load_ctx L = {c, ix, 0, 0, 0};
    if ((rc = vqs_db_load_codes(c->db, c->name, load_cb, &L))) {
        rc = vqs_seterr(rc, "collection '%s': trained and stored, but not loaded in memory: %s", c->name,
                        vqs_errdetail());
        goto done;
    }
    pthread_rwlock_wrlock(&c->lock);
    c->ix = ix;
    c->graph_dirty = 1;
    ix = NULL;
    free(c->buf);
    free(c->biid);
    c->buf = NULL;
    c->biid = NULL;
    c->bn = c->bcap = c->blive = 0;
    pthread_rwlock_unlock(&c->lock);
done:
    vqs_index_free(ix);
    free(blob);
    free(sample);
    return rc;
}

int coll_train_locked(vqs_coll *c, size_t n, const float *x) { return train_locked(c, n, x, NULL, 0); }

int vqs_coll_train(vqs_coll *c, size_t n, const float *x)
{
    if (!c || (n && !x))
        return vqs_seterr(VQS_EINVAL, "coll_train: NULL argument");
    pthread_mutex_lock(&c->wlock);
    int rc = coll_train_locked(c, n, x);
    pthread_mutex_unlock(&c->wlock);
    return rc;
}

int vqs_coll_train_from(vqs_coll *c, const void *blob, size_t len)
{
    if (!c || !blob)
        return vqs_seterr(VQS_EINVAL, "coll_train_from: NULL argument");
    pthread_mutex_lock(&c->wlock);
    int rc = train_locked(c, 0, NULL, blob, len);
    pthread_mutex_unlock(&c->wlock);
    return rc;
}

typedef struct append_ctx {
    vqs_coll *c;
    size_t n;
    const float *x;
} append_ctx;

/* before_commit: the vectors go to the file (and are fsynced) before LMDB
 * commits. After a map-full retry it runs again for the same first id:
 * cut back what the first attempt appended. */
static int append_vectors(void *ctx, uint64_t first, size_t n)
{
    append_ctx *A = ctx;
    vqs_vecstore *vs = A->c->vs;
    if (!vs)
        return 0;
    int rc;
    if (vqs_vecstore_count(vs) > first && (rc = vqs_vecstore_truncate(vs, first)))
        return rc;
    return vqs_vecstore_append(vs, first, n, A->x);
}

int vqs_coll_upsert(vqs_coll *c, size_t n, const vqs_pid *ids, const float *x,
                    const char *const *payloads)
{
    if (!c || (n && (!ids || !x)))
        return vqs_seterr(VQS_EINVAL, "coll_upsert: NULL argument");
    if (c->primary)
        return vqs_seterr(VQS_EINVAL, "collection '%s': a vector's handle: write through its collection", c->name);
    if (c->nvec > 1)
        return vqs_seterr(VQS_EINVAL, "collection '%s' has %zu named vectors: an upsert gives all of them "
                          "(vqs_coll_upsert_vectors)", c->name, c->nvec);
    if (n == 0)
        return 0;
    /* the trained state only changes under wlock, and only once: read it
     * again there */
    pthread_mutex_lock(&c->wlock);
    int trained = c->ix != NULL;
    pthread_mutex_unlock(&c->wlock);
    size_t d = c->cfg.d, es = trained ? vqs_index_entry_size(c->ix) : sizeof(float) * d;
    size_t bad = 0;
    int crc = vqs_check_vectors((vqs_metric)c->cfg.metric, n, d, d, x, &bad);
    if (crc) {
        char b[40];
        return vqs_seterr(crc, "collection '%s': point %zu of the batch (id %s): %s", c->name, bad,
                          vqs_pid_format(&ids[bad], b), vqs_errdetail());
    }
    float *y = stored_copy(c, n, x);
    uint8_t *codes = malloc(es * n);
    uint32_t *lists = malloc(sizeof(uint32_t) * n);
    uint64_t *iids = malloc(sizeof(uint64_t) * n), *old = malloc(sizeof(uint64_t) * n);
    int64_t *del = malloc(sizeof(int64_t) * n);
    int rc;
    if (!y || !codes || !lists || !iids || !old || !del) {
        rc = vqs_seterr(VQS_ENOMEM, "coll_upsert: %zu points", n);
        goto done;
    }
    /* encode outside the locks: the trained state never changes once set */
    if (trained && (rc = vqs_index_encode(c->ix, n, y, codes, lists)))
        goto done;
    pthread_mutex_lock(&c->wlock);
    if (!trained && c->ix) { /* trained meanwhile */
        pthread_mutex_unlock(&c->wlock);
        free(y), free(codes), free(lists), free(iids), free(old), free(del);
        return vqs_coll_upsert(c, n, ids, x, payloads);
    }
    if (!trained) {
        memcpy(codes, y, es * n);
        memset(lists, 0, sizeof(uint32_t) * n);
    }
    uint64_t before = c->vs ? vqs_vecstore_count(c->vs) : 0;
    vqs_db_batch b = {.n = n, .ids = ids, .payloads = payloads, .code_size = es, .codes = codes,
                      .lists = lists};
    append_ctx A = {c, n, y};
    rc = vqs_db_upsert(c->db, c->name, &b, iids, old, append_vectors, &A);
    if (rc) {
        if (c->vs && vqs_vecstore_count(c->vs) > before) {
            char keep[512];
            snprintf(keep, sizeof keep, "%s", vqs_errdetail());
            vqs_vecstore_truncate(c->vs, before);
            vqs_seterr(rc, "%s", keep);
        }
        pthread_mutex_unlock(&c->wlock);
        goto done;
    }
    size_t nd = 0;
    for (size_t i = 0; i < n; i++)
        if (old[i] != UINT64_MAX)
            del[nd++] = (int64_t)old[i];
    pthread_rwlock_wrlock(&c->lock);
    if (trained) {
        vqs_index_remove(c->ix, nd, del, NULL);
        rc = vqs_index_add_encoded(c->ix, n, codes, lists, (const int64_t *)iids);
        c->graph_dirty = 1;
    } else {
        coll_buf_remove(c, nd, del);
        rc = coll_buf_append(c, n, y, iids);
    }
    pthread_rwlock_unlock(&c->lock);
    __atomic_store_n(&c->count, c->count + n - nd, __ATOMIC_RELAXED);
    if (!rc && !trained && c->cfg.train_size && c->count >= c->cfg.train_size) {
        /* the batch is committed whatever training does: a failure is
         * reported on stderr and training is tried again by the next batch */
        if (coll_train_locked(c, 0, NULL))
            fprintf(stderr, "vqs: collection '%s': automatic training at %llu points failed: %s\n", c->name,
                    (unsigned long long)c->count, vqs_errdetail());
        vqs_clearerr();
    }
    pthread_mutex_unlock(&c->wlock);
    if (rc) /* committed but not applied in memory (ENOMEM): reopening recovers it */
        rc = vqs_seterr(rc, "collection '%s': batch committed but not loaded in memory: %s", c->name,
                        vqs_errdetail());
done:
    free(y);
    free(codes);
    free(lists);
    free(iids);
    free(old);
    free(del);
    return rc;
}

int vqs_coll_delete(vqs_coll *c, size_t n, const vqs_pid *ids, size_t *ndeleted)
{
    if (!c || (n && !ids))
        return vqs_seterr(VQS_EINVAL, "coll_delete: NULL argument");
    if (c->primary)
        return vqs_seterr(VQS_EINVAL, "collection '%s': a vector's handle: write through its collection", c->name);
    if (c->nvec > 1) { /* every vector's record, in one transaction */
        if (!n) { /* ids may be NULL then, which vqs_coll_apply reads as "by selection" and refuses */
            if (ndeleted)
                *ndeleted = 0;
            return 0;
        }
        vqs_coll_op op = {.kind = VQS_COLL_OP_DELETE, .n = n, .ids = ids, .ndeleted = ndeleted};
        return vqs_coll_apply(c, 1, &op, NULL, NULL);
    }
    uint64_t *iids = malloc(sizeof(uint64_t) * (n ? n : 1));
    int64_t *del = malloc(sizeof(int64_t) * (n ? n : 1));
    if (!iids || !del) {
        free(iids);
        free(del);
        return vqs_seterr(VQS_ENOMEM, "coll_delete");
    }
    pthread_mutex_lock(&c->wlock);
    size_t nd = 0;
    int rc = vqs_db_delete(c->db, c->name, n, ids, iids, &nd);
    if (!rc) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (iids[i] != UINT64_MAX)
                del[m++] = (int64_t)iids[i];
        pthread_rwlock_wrlock(&c->lock);
        if (c->ix) {
            vqs_index_remove(c->ix, m, del, NULL);
            c->graph_dirty |= m > 0;
        } else {
            coll_buf_remove(c, m, del);
        }
        pthread_rwlock_unlock(&c->lock);
        __atomic_store_n(&c->count, c->count - m, __ATOMIC_RELAXED);
        if (ndeleted)
            *ndeleted = m;
    }
    pthread_mutex_unlock(&c->wlock);
    free(iids);
    free(del);
    return rc;
}

int vqs_coll_get(vqs_coll *c, const vqs_pid *id, float *vec, char **payload)
{
    if (!c || !id)
        return vqs_seterr(VQS_EINVAL, "coll_get: NULL argument");
    uint64_t iid;
    int rc = vqs_db_get(c->db, coll_pts(c), id, &iid, payload);
    if (rc || !vec)
        return rc;
    if (!c->vs) {
        /* no vector file: before training the points are held as they are;
         * after it only their codes remain */
        pthread_rwlock_rdlock(&c->lock);
        int found = !c->ix && coll_buf_get(c, (int64_t)iid, vec);
        pthread_rwlock_unlock(&c->lock);
        if (!found) {
            if (payload) {
                free(*payload);
                *payload = NULL;
            }
            return vqs_seterr(VQS_EINVAL, "collection '%s' keeps no vectors (rerank none): only their codes",
                              c->name);
        }
        return 0;
    }
    int64_t i = (int64_t)iid;
    if ((rc = coll_fetch(c, 0, 1, &i, vec)) && payload) {
        free(*payload);
        *payload = NULL;
    }
    return rc;
}

int vqs_coll_lookup(vqs_coll *c, const vqs_pid *id, uint64_t *iid, char **payload)
{
    if (!c || !id)
        return vqs_seterr(VQS_EINVAL, "coll_lookup: NULL argument");
    return vqs_db_get(c->db, coll_pts(c), id, iid, payload);
}

int vqs_coll_lookup_iid(vqs_coll *c, uint64_t iid, vqs_pid *id, char **payload)
{
    if (!c)
        return vqs_seterr(VQS_EINVAL, "coll_lookup_iid: NULL argument");
    return vqs_db_get_iid(c->db, coll_pts(c), iid, id, payload);
}

int vqs_coll_iterate(vqs_coll *c, vqs_coll_point_fn fn, void *ctx)
{
    if (!c || !fn)
        return vqs_seterr(VQS_EINVAL, "coll_iterate: NULL argument");
    return vqs_db_iterate(c->db, coll_pts(c), fn, ctx);
}

int vqs_coll_stat(vqs_coll *c, vqs_coll_info *info)
{
    if (!c || !info)
        return vqs_seterr(VQS_EINVAL, "coll_stat: NULL argument");
    int rc = coll_describe(c->db, c->name, info);
    if (rc)
        return rc;
    size_t d = c->cfg.d;
    pthread_rwlock_rdlock(&c->lock);
    info->trained = c->ix != NULL;
    info->code_size = c->ix ? vqs_index_code_size(c->ix) : sizeof(float) * d;
    info->bytes_per_vector = c->ix ? vqs_index_bytes_per_vector(c->ix, NULL) : (double)(sizeof(float) * d);
    pthread_rwlock_unlock(&c->lock);
    info->rerank_backend = vqs_coll_rerank_backend(c);
    return 0;
}
