/*
 * graph_disk.c: the graph index on disk (vqs_index_graph_to_disk): the
 * node file and its reads. The beam search over it is in graph.c
 * (vqs_graph_beam_disk), its re-scoring in ivf_search.c.
 *
 * File (DiskANN's layout): a 4096-byte header, then the nodes in order,
 * each node the vector of the index's refine copy (d float32, the bytes
 * the exact re-score uses), a u32 degree and Rcap u32 neighbours. Nodes of
 * at most 4096 bytes are packed floor(4096 / node bytes) to a 4096-byte
 * sector and never straddle one; larger nodes take whole sectors. So one
 * aligned read of one sector (or of a node's sectors) brings a node's
 * neighbours and its full vector together: the hop that finds a node's
 * neighbours also fetches what re-scores it. Header: magic "VQSDGRPH",
 * u32 version, u32 d, u32 vector bytes, u32 R, u32 Rcap, u32 node bytes,
 * u32 metric, u64 nodes, u32 entry, u64 offset of the tail, CRC-32C of
 * bytes 0..59 at 60, zeros. After the nodes, the tail: what reopens the
 * index without the index that wrote it (vqs_index_open_disk) - the
 * trained state, the codes and the ids, under one CRC-32C (tail_write).
 *
 * Design decisions:
 * - The nodes hold a copy of the vectors rather than pointing into the
 *   collection's vector file: that file is append-only by internal id
 *   (its crash promise), while the graph is rewritten as a whole; one read
 *   per node instead of two is DiskANN's point. The cost is the vectors'
 *   bytes twice on disk.
 * - Reads: O_DIRECT (the page cache is not needed, and a cold query is
 *   cold), through io_uring, one ring per reader slot; a slot is taken
 *   from a pool for one search call and given back, so concurrent searches
 *   never share a ring and a server pays for the slots it uses at once.
 *   If io_uring cannot be set up, one line on stderr and pread. If the
 *   filesystem refuses O_DIRECT (tmpfs), buffered reads.
 * - In memory: the codes (as before), and the nodes nearest the entry in
 *   hops (breadth first, up to the cache's size), whose blocks every
 *   search starts from. The adjacency and the refine copy are freed.
 * - A node read from the file is checked (degree <= Rcap, neighbours < n)
 *   before it is used: a damaged file gives VQS_ECORRUPT naming the file
 *   and the node, never a read out of bounds.
 * - Read-only: adds and removes are refused; the index is built in
 *   memory, then moved to disk (DiskANN's static index; FreshDiskANN's
 *   merges of an in-memory delta are not built).
 * - Reopening checks everything it reads before it is used (header
 *   fields and their checksum, sizes against the file, the tail's
 *   checksum before any code goes into the index); the nodes are checked
 *   as they are read.
 */
#define _GNU_SOURCE
#include "graph_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SECTOR 4096
#define DISK_MAGIC "VQSDGRPH"
#define DISK_VERSION 1
#define MAX_BEAM_WIDTH 64
#define DEFAULT_CACHE 1024

typedef struct dslot {
    struct io_uring ring;
    int ring_ok; /* 1: set up; -1: failed (pread) */
    uint8_t *buf; /* MAX_BEAM_WIDTH read units, aligned */
    struct dslot *next;
} dslot;

struct vqs_graph_disk {
    char path[4096];
    int fd, direct;
    size_t d, vb, R, Rcap, nb, n;
    uint32_t metric;
    uint64_t tail, size; /* the tail's offset (vqs_index_open_disk), the file's bytes */
    size_t per;  /* nodes per sector (nb <= SECTOR), else 0 */
    size_t ru;   /* bytes of one node's read */
    uint32_t entry;
    int use_uring;
    atomic_int warned;
    atomic_ullong reads; /* nodes read from the file (not the cache) */
    pthread_mutex_t mu;
    dslot *free_slots;
    /* the entry region: node + 1 keys (0 empty), their places in cblk, and
     * their node bytes */
    uint32_t *ckey, *cat;
    size_t chash;
    uint8_t *cblk;
    size_t cn;
};

size_t vqs_graph_disk_max_width(void) { return MAX_BEAM_WIDTH; }

static size_t node_bytes(size_t vb, size_t Rcap) { return vb + sizeof(uint32_t) * (1 + Rcap); }

static void layout(vqs_graph_disk *D)
{
    D->nb = node_bytes(D->vb, D->Rcap);
    D->per = D->nb <= SECTOR ? SECTOR / D->nb : 0;
    D->ru = D->per ? SECTOR : (D->nb + SECTOR - 1) / SECTOR * SECTOR;
}

/* file offset of the read unit holding u, and u's offset within it */
static uint64_t unit_off(const vqs_graph_disk *D, uint32_t u, size_t *within)
{
    if (D->per) {
        *within = (u % D->per) * D->nb;
        return SECTOR + (uint64_t)(u / D->per) * SECTOR;
    }
    *within = 0;
    return SECTOR + (uint64_t)u * D->ru;
}

static uint64_t file_bytes(const vqs_graph_disk *D)
{
    if (!D->n)
        return SECTOR;
    size_t w;
    return unit_off(D, (uint32_t)(D->n - 1), &w) + D->ru;
}

static void hdr_make(const vqs_graph_disk *D, uint32_t R, uint32_t metric, uint8_t *h)
{
    memset(h, 0, SECTOR);
    memcpy(h, DISK_MAGIC, 8);
    uint32_t f[7] = {DISK_VERSION, (uint32_t)D->d, (uint32_t)D->vb, R, (uint32_t)D->Rcap, (uint32_t)D->nb, metric};
    memcpy(h + 8, f, sizeof f);
    uint64_t n = D->n;
    memcpy(h + 36, &n, 8);
    memcpy(h + 44, &D->entry, 4);
    uint64_t tail = file_bytes(D);
    memcpy(h + 48, &tail, 8);
    uint32_t crc = vqs_crc32c(0, h, 60);
    memcpy(h + 60, &crc, 4);
}

/* ---- writing ----------------------------------------------------------------- */

static int write_all(int fd, const uint8_t *p, size_t n, uint64_t off, const char *path)
{
    while (n) {
        ssize_t w = pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return vqs_seterr(w < 0 ? -errno : -EIO, "%s: write: %s", path, w < 0 ? strerror(errno) : "no progress");
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* The tail: what reopens the index (vqs_index_open_disk) - u64 length and
 * the trained state (vqs_index_save_trained), u64 n, u8 1 if the ids are
 * 0..n-1, the n codes, the n ids (u64) unless they are, CRC-32C. */
typedef struct twr {
    int fd;
    uint64_t off;
    uint32_t crc;
    const char *path;
} twr;

static int tput(twr *t, const void *p, size_t n)
{
    t->crc = vqs_crc32c(t->crc, p, n);
    int rc = write_all(t->fd, p, n, t->off, t->path);
    t->off += n;
    return rc;
}

static int tail_write(const vqs_index *ix, int fd, uint64_t off, const char *path)
{
    const ivlist *L = &ix->lists[0];
    void *blob = NULL;
    size_t len = 0;
    int rc = vqs_index_save_trained(ix, &blob, &len);
    if (rc)
        return rc;
    twr t = {fd, off, 0, path};
    uint64_t l64 = len, n = L->n;
    uint8_t ident = L->ids == NULL;
    if (!(rc = tput(&t, &l64, 8)) && !(rc = tput(&t, blob, len)) && !(rc = tput(&t, &n, 8)) &&
        !(rc = tput(&t, &ident, 1)) && !(rc = tput(&t, L->codes, n * ix->cs)) && !ident)
        rc = tput(&t, L->ids, n * sizeof(int64_t));
    free(blob);
    uint32_t crc = t.crc;
    return rc ? rc : tput(&t, &crc, 4);
}

/* Writes the node file of g (no tombstones) over the refine copy rows to
 * path (a temporary name, synced, then renamed). */
static int disk_write(const vqs_index *ix, const vqs_graph_disk *D, uint32_t R, const char *path)
{
    const ivlist *L = &ix->lists[0];
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return vqs_seterr(-errno, "%s: %s", tmp, strerror(errno));
    size_t chunk = (size_t)1 << 22; /* bytes staged per write */
    chunk = chunk / D->ru * D->ru;
    if (chunk < D->ru)
        chunk = D->ru;
    uint8_t *buf = calloc(1, chunk > SECTOR ? chunk : SECTOR);
    int rc = buf ? 0 : vqs_seterr(VQS_ENOMEM, "graph to disk: a %zu-byte buffer", chunk);
    if (!rc) {
        hdr_make(D, R, (uint32_t)ix->metric, buf);
        rc = write_all(fd, buf, SECTOR, 0, tmp);
    }
    uint64_t off = SECTOR;
    size_t fill = 0; /* bytes staged */
    for (size_t u = 0; u < D->n && !rc; u++) {
        size_t w;
        uint64_t at = unit_off(D, (uint32_t)u, &w);
        if (at >= off + chunk) { /* the staged units are complete */
            rc = write_all(fd, buf, fill, off, tmp);
            memset(buf, 0, chunk);
            off += fill;
            fill = 0;
        }
        uint8_t *p = buf + (at - off) + w;
        size_t deg;
        const uint32_t *nb = vqs_graph_neighbors(ix->graph, (uint32_t)u, &deg);
        uint32_t dg = (uint32_t)deg;
        memcpy(p, L->rcodes + u * ix->rcs, D->vb);
        memcpy(p + D->vb, &dg, 4);
        memcpy(p + D->vb + 4, nb, sizeof(uint32_t) * deg);
        size_t end = (size_t)(at - off) + D->ru;
        fill = end > fill ? end : fill;
    }
    if (!rc && fill)
        rc = write_all(fd, buf, fill, off, tmp);
    free(buf);
    if (!rc)
        rc = tail_write(ix, fd, file_bytes(D), tmp);
    if (!rc && fsync(fd))
        rc = vqs_seterr(-errno, "%s: fsync: %s", tmp, strerror(errno));
    if (!rc && fchmod(fd, 0644))
        rc = vqs_seterr(-errno, "%s: chmod: %s", tmp, strerror(errno));
    close(fd);
    if (!rc && rename(tmp, path))
        rc = vqs_seterr(-errno, "%s: rename to %s: %s", tmp, path, strerror(errno));
    if (rc)
        unlink(tmp);
    return rc;
}

/* ---- reading ------------------------------------------------------------------ */

static int read_at(const vqs_graph_disk *D, uint8_t *dst, uint64_t off, uint32_t u)
{
    size_t got = 0;
    while (got < D->ru) {
        ssize_t r = pread(D->fd, dst + got, D->ru - got, (off_t)(off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return vqs_seterr(-errno, "%s: node %u: %s", D->path, u, strerror(errno));
        if (r == 0)
            return vqs_seterr(VQS_ECORRUPT, "%s: node %u: short read (file cut?)", D->path, u);
        got += (size_t)r;
    }
    return 0;
}

static int check_node(const vqs_graph_disk *D, const uint8_t *p, uint32_t u)
{
    uint32_t dg;
    memcpy(&dg, p + D->vb, 4);
    if (dg > D->Rcap)
        return vqs_seterr(VQS_ECORRUPT, "%s: node %u: degree %u (at most %zu)", D->path, u, dg, D->Rcap);
    for (uint32_t i = 0; i < dg; i++) {
        uint32_t v;
        memcpy(&v, p + D->vb + 4 + 4 * (size_t)i, 4);
        if (v >= D->n)
            return vqs_seterr(VQS_ECORRUPT, "%s: node %u: neighbour %u of %zu nodes", D->path, u, v, D->n);
    }
    return 0;
}

static const uint8_t *cache_get(const vqs_graph_disk *D, uint32_t u)
{
    if (!D->cn)
        return NULL;
    size_t m = D->chash - 1, h = ((u + 1) * 0x9E3779B1u) & m;
    while (D->ckey[h]) {
        if (D->ckey[h] == u + 1)
            return D->cblk + (size_t)D->cat[h] * D->nb;
        h = (h + 1) & m;
    }
    return NULL;
}

static dslot *slot_take(vqs_graph_disk *D)
{
    pthread_mutex_lock(&D->mu);
    dslot *s = D->free_slots;
    if (s)
        D->free_slots = s->next;
    pthread_mutex_unlock(&D->mu);
    if (s)
        return s;
    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (posix_memalign((void **)&s->buf, SECTOR, D->ru * MAX_BEAM_WIDTH)) {
        free(s);
        return NULL;
    }
    if (D->use_uring) {
        int e = io_uring_queue_init(MAX_BEAM_WIDTH, &s->ring, 0);
        s->ring_ok = e ? -1 : 1;
        if (e && !atomic_exchange(&D->warned, 1))
            fprintf(stderr, "vqs: %s: io_uring unavailable (%s); reading with pread\n", D->path, strerror(-e));
    } else {
        s->ring_ok = -1;
    }
    return s; /* back to the pool at the search's end: at close, the pool holds every slot */
}

void vqs_graph_disk_release(vqs_graph_disk *D, void *slot)
{
    dslot *s = slot;
    if (!D || !s)
        return;
    pthread_mutex_lock(&D->mu);
    s->next = D->free_slots;
    D->free_slots = s;
    pthread_mutex_unlock(&D->mu);
}

/* A ring that failed with reads of unknown state in it is not used again
 * (a later completion would land in another call): the slot reads with
 * pread from now on. */
static int ring_drop(dslot *s, const vqs_graph_disk *D, int e, const char *what)
{
    io_uring_queue_exit(&s->ring);
    s->ring_ok = -1;
    return vqs_seterr(e, "%s: io_uring %s: %s", D->path, what, strerror(-e));
}

/* The node bytes of the m nodes u[] (m <= MAX_BEAM_WIDTH): from the cache,
 * or read together into the slot's buffer (one submission). */
int vqs_graph_disk_fetch(vqs_graph_disk *D, void **slotp, size_t m, const uint32_t *u, const uint8_t **out)
{
    dslot *s = *slotp;
    if (!s && !(s = *slotp = slot_take(D)))
        return vqs_seterr(VQS_ENOMEM, "%s: a reader slot", D->path);
    size_t nq = 0;
    for (size_t i = 0; i < m; i++) {
        if ((out[i] = cache_get(D, u[i])))
            continue;
        size_t w;
        uint64_t off = unit_off(D, u[i], &w);
        uint8_t *dst = s->buf + nq * D->ru;
        out[i] = dst + w;
        if (s->ring_ok > 0) {
            struct io_uring_sqe *e = io_uring_get_sqe(&s->ring);
            io_uring_prep_read(e, D->fd, dst, (unsigned)D->ru, off);
            io_uring_sqe_set_data64(e, i);
        } else {
            int rc = read_at(D, dst, off, u[i]);
            if (rc)
                return rc;
        }
        nq++;
    }
    if (nq)
        atomic_fetch_add_explicit(&D->reads, nq, memory_order_relaxed);
    if (nq && s->ring_ok > 0) {
        int rc = 0;
        int e = io_uring_submit_and_wait(&s->ring, (unsigned)nq);
        if (e < 0)
            return ring_drop(s, D, e, "submit");
        for (size_t got = 0; got < nq;) {
            struct io_uring_cqe *c;
            e = io_uring_wait_cqe(&s->ring, &c);
            if (e == -EINTR)
                continue;
            if (e < 0)
                return ring_drop(s, D, e, "wait");
            size_t i = (size_t)io_uring_cqe_get_data64(c);
            int res = c->res;
            io_uring_cqe_seen(&s->ring, c);
            got++;
            if (rc)
                continue;
            size_t w;
            uint64_t off = unit_off(D, u[i], &w);
            if (res < 0)
                rc = vqs_seterr(res, "%s: node %u: %s", D->path, u[i], strerror(-res));
            else if ((size_t)res < D->ru) /* a short read: again through pread */
                rc = read_at(D, (uint8_t *)out[i] - w, off, u[i]);
        }
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < m; i++) {
        int rc = check_node(D, out[i], u[i]);
        if (rc)
            return rc;
    }
    return 0;
}

size_t vqs_graph_disk_vec_bytes(const vqs_graph_disk *D) { return D->vb; }
size_t vqs_graph_disk_bytes(const vqs_graph_disk *D)
{
    return sizeof *D + D->chash * 2 * sizeof(uint32_t) + D->cn * D->nb;
}
uint32_t vqs_graph_disk_entry(const vqs_graph_disk *D) { return D->entry; }
size_t vqs_graph_disk_nodes(const vqs_graph_disk *D) { return D->n; }
const char *vqs_graph_disk_path(const vqs_graph_disk *D) { return D->path; }

void vqs_graph_disk_close(vqs_graph_disk *D)
{
    if (!D)
        return;
    dslot *s = D->free_slots;
    while (s) {
        dslot *nx = s->next;
        if (s->ring_ok > 0)
            io_uring_queue_exit(&s->ring);
        free(s->buf);
        free(s);
        s = nx;
    }
    if (D->fd >= 0)
        close(D->fd);
    pthread_mutex_destroy(&D->mu);
    free(D->ckey);
    free(D->cat);
    free(D->cblk);
    free(D);
}

/* Opens path for reads and reads its header. */
static int disk_open(const char *path, const vqs_graph_disk_opts *o, vqs_graph_disk **out)
{
    vqs_graph_disk *D = calloc(1, sizeof *D);
    if (!D)
        return vqs_seterr(VQS_ENOMEM, "graph on disk");
    snprintf(D->path, sizeof D->path, "%s", path);
    pthread_mutex_init(&D->mu, NULL);
    D->fd = -1;
    int rc = 0;
    if (!(o && o->buffered)) {
        D->fd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
        D->direct = D->fd >= 0;
    }
    if (D->fd < 0 && (D->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        rc = vqs_seterr(-errno, "%s: %s", path, strerror(errno));
        goto fail;
    }
    D->use_uring = !(o && o->pread);
    uint8_t *h = NULL;
    if (posix_memalign((void **)&h, SECTOR, SECTOR)) {
        rc = vqs_seterr(VQS_ENOMEM, "graph on disk");
        goto fail;
    }
    D->ru = SECTOR;
    rc = read_at(D, h, 0, 0);
    if (rc == VQS_ECORRUPT)
        rc = vqs_seterr(VQS_ECORRUPT, "%s: shorter than its 4096-byte header", path);
    uint32_t f[7], crc, entry;
    uint64_t n, tail;
    if (!rc) {
        memcpy(f, h + 8, sizeof f);
        memcpy(&n, h + 36, 8);
        memcpy(&entry, h + 44, 4);
        memcpy(&tail, h + 48, 8);
        memcpy(&crc, h + 60, 4);
        if (memcmp(h, DISK_MAGIC, 8))
            rc = vqs_seterr(VQS_ECORRUPT, "%s: not a vqs on-disk graph (bad magic)", path);
        else if (f[0] != DISK_VERSION)
            rc = vqs_seterr(VQS_EVERSION, "%s: on-disk graph version %u (this vqs reads %u)", path, f[0], DISK_VERSION);
        else if (crc != vqs_crc32c(0, h, 60))
            rc = vqs_seterr(VQS_ECORRUPT, "%s: header checksum mismatch", path);
    }
    free(h);
    if (rc)
        goto fail;
    D->d = f[1];
    D->vb = f[2];
    D->R = f[3];
    D->Rcap = f[4];
    D->metric = f[6];
    D->n = n;
    D->entry = entry;
    D->tail = tail;
    if (!D->d || D->d > (1u << 20) || D->vb != 4 * (size_t)D->d || !D->Rcap || D->Rcap > 1024 || D->R > D->Rcap ||
        n >= UINT32_MAX || (n && entry >= n)) {
        rc = vqs_seterr(VQS_ECORRUPT, "%s: header out of range (d %u, degree %u of %u, %llu nodes, entry %u)", path,
                        f[1], f[3], f[4], (unsigned long long)n, entry);
        goto fail;
    }
    layout(D);
    if (f[5] != D->nb || tail != file_bytes(D)) {
        rc = vqs_seterr(VQS_ECORRUPT, "%s: header inconsistent (node bytes %u, tail at %llu)", path, f[5],
                        (unsigned long long)tail);
        goto fail;
    }
    struct stat st;
    if (fstat(D->fd, &st) || (uint64_t)st.st_size < file_bytes(D)) {
        rc = vqs_seterr(VQS_ECORRUPT, "%s: %lld bytes, at least %llu expected (file cut?)", path,
                        (long long)st.st_size, (unsigned long long)file_bytes(D));
        goto fail;
    }
    D->size = (uint64_t)st.st_size;
    *out = D;
    return 0;
fail:
    vqs_graph_disk_close(D);
    return rc;
}

/* Whether D describes ix's graph and codes (else VQS_ECORRUPT naming both). */
static int disk_fits(const vqs_graph_disk *D, const vqs_index *ix, size_t n)
{
    if (!ix->graph || ix->refine != VQS_IVF_REFINE_FLAT || D->d != ix->d || D->vb != ix->rcs ||
        D->Rcap != vqs_graph_degree_cap(ix->graph) || D->metric != (uint32_t)ix->metric || D->n != n)
        return vqs_seterr(VQS_ECORRUPT, "%s: the nodes (d %zu, degree %zu, %zu nodes, metric %u) do not fit "
                          "'%s' (d %zu, %zu rows)", D->path, D->d, D->Rcap, D->n, D->metric, ix->spec, ix->d, n);
    return 0;
}

/* The entry region: up to c nodes breadth first from the entry, read from
 * the file. */
static int disk_cache(vqs_graph_disk *D, size_t c)
{
    if (c > D->n)
        c = D->n;
    if (!c)
        return 0;
    size_t hs = 1;
    while (hs < 2 * c)
        hs *= 2;
    uint32_t *q = malloc(sizeof(uint32_t) * c);
    uint8_t *u = NULL;
    D->ckey = calloc(hs, sizeof(uint32_t));
    D->cat = calloc(hs, sizeof(uint32_t));
    D->cblk = malloc(c * D->nb);
    if (!q || !D->ckey || !D->cat || !D->cblk || posix_memalign((void **)&u, SECTOR, D->ru)) {
        free(q);
        return vqs_seterr(VQS_ENOMEM, "graph on disk: a cache of %zu nodes", c);
    }
    D->chash = hs;
    size_t qn = 0, m = hs - 1;
    int rc = 0;
    q[qn++] = D->entry;
    D->ckey[((D->entry + 1) * 0x9E3779B1u) & m] = D->entry + 1;
    for (size_t at = 0; at < qn && !rc; at++) {
        size_t w;
        uint64_t off = unit_off(D, q[at], &w);
        if ((rc = read_at(D, u, off, q[at])) || (rc = check_node(D, u + w, q[at])))
            break;
        const uint8_t *p = u + w;
        memcpy(D->cblk + at * D->nb, p, D->nb);
        uint32_t deg;
        memcpy(&deg, p + D->vb, 4);
        for (size_t i = 0; i < deg && qn < c; i++) {
            uint32_t v;
            memcpy(&v, p + D->vb + 4 + 4 * i, 4);
            size_t h = ((v + 1) * 0x9E3779B1u) & m;
            while (D->ckey[h] && D->ckey[h] != v + 1)
                h = (h + 1) & m;
            if (!D->ckey[h]) {
                D->ckey[h] = v + 1;
                D->cat[h] = (uint32_t)qn;
                q[qn++] = v;
            }
        }
    }
    /* the slot of the entry */
    size_t h = ((D->entry + 1) * 0x9E3779B1u) & m;
    while (D->ckey[h] != D->entry + 1)
        h = (h + 1) & m;
    D->cat[h] = 0;
    free(q);
    free(u);
    D->cn = rc ? 0 : qn;
    return rc;
}

static size_t beam_width(const vqs_graph_disk_opts *o) { return o && o->beam_width ? o->beam_width : 4; }

static size_t cache_size(const vqs_graph_disk_opts *o)
{
    if (o && o->cache_nodes == (size_t)-1)
        return 0;
    return o && o->cache_nodes ? o->cache_nodes : DEFAULT_CACHE;
}

/* The list at its size: read-only from now on, no room for growth (a
 * failed realloc keeps the larger block: still room for n). */
static void shrink(vqs_index *ix)
{
    ivlist *L = &ix->lists[0];
    if (!L->n || L->cap <= L->n)
        return;
    uint8_t *c = realloc(L->codes, L->n * ix->cs);
    if (c)
        L->codes = c;
    if (L->ids) {
        int64_t *id = realloc(L->ids, sizeof(int64_t) * L->n);
        if (id)
            L->ids = id;
    }
    if (L->nf) {
        float *nf = realloc(L->nf, sizeof(float) * L->n);
        if (nf)
            L->nf = nf;
    }
    L->cap = L->n;
}

int vqs_index_graph_to_disk(vqs_index *ix, const char *path, const vqs_graph_disk_opts *o)
{
    if (!ix || !path)
        return vqs_seterr(VQS_EINVAL, "graph_to_disk: no index or path");
    if (!ix->graph || ix->refine != VQS_IVF_REFINE_FLAT)
        return vqs_seterr(VQS_EINVAL, "graph_to_disk: '%s' is not VAMANA<R>,<codec>,RFlat (the nodes on disk carry "
                                      "the float vectors)", ix->spec);
    if (vqs_graph_on_disk(ix->graph))
        return vqs_seterr(VQS_EINVAL, "graph_to_disk: the index is already on disk (%s)",
                          vqs_graph_disk_path(vqs_graph_disk_of(ix->graph)));
    if (vqs_graph_deferred(ix->graph))
        return vqs_seterr(VQS_EINVAL, "graph_to_disk: the graph is deferred (vqs_index_graph_finish first)");
    int rc = 0;
    if (vqs_graph_tombstones(ix->graph) && (rc = vqs_graph_consolidate(ix)))
        return rc;
    vqs_graph_disk tmpl = {0};
    tmpl.d = ix->d;
    tmpl.vb = ix->rcs;
    tmpl.Rcap = vqs_graph_degree_cap(ix->graph);
    tmpl.n = ix->lists[0].n;
    tmpl.entry = tmpl.n ? vqs_graph_entry_node(ix->graph) : 0;
    layout(&tmpl);
    if ((rc = disk_write(ix, &tmpl, (uint32_t)vqs_graph_degree(ix->graph), path)))
        return rc;
    vqs_graph_disk *D = NULL;
    if ((rc = disk_open(path, o, &D)) || (rc = disk_fits(D, ix, ix->lists[0].n)) ||
        (rc = disk_cache(D, cache_size(o)))) {
        vqs_graph_disk_close(D);
        return rc;
    }
    vqs_graph_attach_disk(ix->graph, D, beam_width(o));
    free(ix->lists[0].rcodes); /* the vectors are in the nodes */
    ix->lists[0].rcodes = NULL;
    shrink(ix);
    return 0;
}

/* pread of n bytes at off of the tail, checked against the file's end */
static int tail_read(const vqs_graph_disk *D, uint64_t *off, void *p, size_t n, uint32_t *crc, const char *what)
{
    if (*off > D->size || n > D->size - *off)
        return vqs_seterr(VQS_ECORRUPT, "%s: %s: past the end of the file (cut?)", D->path, what);
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(D->fd, (uint8_t *)p + got, n - got, (off_t)(*off + got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return vqs_seterr(r < 0 ? -errno : VQS_ECORRUPT, "%s: %s: %s", D->path, what,
                              r < 0 ? strerror(errno) : "short read");
        got += (size_t)r;
    }
    *off += n;
    if (crc)
        *crc = vqs_crc32c(*crc, p, n);
    return 0;
}

int vqs_index_open_disk(const char *path, const vqs_index_opts *io, const vqs_graph_disk_opts *o, vqs_index **out)
{
    if (!path || !out)
        return vqs_seterr(VQS_EINVAL, "index_open_disk: NULL argument");
    *out = NULL;
    vqs_graph_disk *D = NULL, *B = NULL;
    vqs_graph_disk_opts bo = {0};
    bo.buffered = 1;
    bo.pread = 1;
    /* the tail is read through a buffered descriptor (O_DIRECT needs aligned reads) */
    int rc = disk_open(path, o, &D);
    if (rc || (rc = disk_open(path, &bo, &B))) {
        vqs_graph_disk_close(D);
        return rc;
    }
    vqs_index *ix = NULL;
    uint8_t *blob = NULL, *codes = NULL;
    int64_t *ids = NULL;
    uint64_t off = D->tail, len = 0, n = 0;
    uint32_t crc = 0, want;
    uint8_t ident = 0;
    if ((rc = tail_read(B, &off, &len, 8, &crc, "trained state")))
        goto done;
    if (len > B->size || !(blob = malloc(len ? len : 1))) {
        rc = len > B->size ? vqs_seterr(VQS_ECORRUPT, "%s: trained state of %llu bytes (cut?)", path,
                                        (unsigned long long)len)
                           : vqs_seterr(VQS_ENOMEM, "%s: trained state", path);
        goto done;
    }
    if ((rc = tail_read(B, &off, blob, len, &crc, "trained state")) || (rc = tail_read(B, &off, &n, 8, &crc, "rows")) ||
        (rc = tail_read(B, &off, &ident, 1, &crc, "rows")))
        goto done;
    if (n != D->n || ident > 1) {
        rc = vqs_seterr(VQS_ECORRUPT, "%s: %llu rows for %zu nodes", path, (unsigned long long)n, D->n);
        goto done;
    }
    if ((rc = vqs_index_load_trained(blob, len, io, &ix)))
        goto done;
    if ((rc = disk_fits(D, ix, n)))
        goto done;
    size_t cs = ix->cs;
    if (cs && n > (B->size - off) / cs) {
        rc = vqs_seterr(VQS_ECORRUPT, "%s: codes: past the end of the file (cut?)", path);
        goto done;
    }
    size_t cb = (size_t)n * cs;
    codes = malloc(cb ? cb : 1);
    ids = ident ? NULL : malloc(sizeof(int64_t) * (n ? n : 1));
    if (!codes || (!ident && !ids)) {
        rc = vqs_seterr(VQS_ENOMEM, "%s: %llu codes and ids", path, (unsigned long long)n);
        goto done;
    }
    if ((rc = tail_read(B, &off, codes, n * cs, &crc, "codes")) ||
        (!ident && (rc = tail_read(B, &off, ids, sizeof(int64_t) * n, &crc, "ids"))))
        goto done;
    want = crc;
    if ((rc = tail_read(B, &off, &crc, 4, NULL, "checksum")))
        goto done;
    if (crc != want) {
        rc = vqs_seterr(VQS_ECORRUPT, "%s: the codes and ids do not match their checksum", path);
        goto done;
    }
    /* the codes go in as an add would put them, without a refine copy (the
     * vectors are in the nodes) and with the graph deferred (it is on disk) */
    size_t rcs = ix->rcs;
    vqs_ivf_refine rf = ix->refine;
    ix->rcs = 0;
    ix->refine = VQS_IVF_REFINE_NONE;
    if (!(rc = vqs_index_graph_defer(ix)))
        rc = vqs_index_add_encoded(ix, n, codes, NULL, ids);
    ix->rcs = rcs;
    ix->refine = rf;
    if (rc)
        goto done;
    if ((rc = disk_cache(D, cache_size(o))))
        goto done;
    vqs_graph_attach_disk(ix->graph, D, beam_width(o));
    shrink(ix);
    D = NULL;
    *out = ix;
    ix = NULL;
done:
    vqs_index_free(ix);
    vqs_graph_disk_close(D);
    vqs_graph_disk_close(B);
    free(blob);
    free(codes);
    free(ids);
    return rc;
}

uint64_t vqs_index_graph_disk_reads(const vqs_index *ix)
{
    if (!ix || !ix->graph || !vqs_graph_on_disk(ix->graph))
        return 0;
    return atomic_load_explicit(&vqs_graph_disk_of(ix->graph)->reads, memory_order_relaxed);
}

const char *vqs_index_graph_disk_backend(const vqs_index *ix)
{
    if (!ix || !ix->graph || !vqs_graph_on_disk(ix->graph))
        return NULL;
    const vqs_graph_disk *D = vqs_graph_disk_of(ix->graph);
    const char *io = !D->use_uring || atomic_load((atomic_int *)&D->warned) ? "pread" : "io_uring";
    return D->direct ? io : !strcmp(io, "pread") ? "pread (buffered)" : "io_uring (buffered)";
}
