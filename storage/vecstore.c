/*
 * vecstore.c: the append-only vector file (vqs_store_vec.h).
 *
 * Design decisions:
 * - Writes go through a buffered descriptor (pwrite, then fdatasync); reads
 *   through a second, O_DIRECT descriptor. O_DIRECT reads of a range that
 *   is dirty in the page cache are coherent (the kernel writes it back
 *   first), and appends are synced before they become visible (count is
 *   raised after fdatasync), so a reader never sees a partial record.
 * - io_uring: one ring per reader slot, created on the slot's first fetch
 *   (a server with 64 slots that only ever uses 4 pays for 4). A fetch
 *   queues up to queue_depth reads, submits them with one syscall, and
 *   keeps the queue full as completions arrive, harvested in bulk; each
 *   read's index travels in user_data. Each record's span is rounded out to
 *   4096-byte boundaries into a per-slot aligned buffer, then copied out.
 *   Rejected: registered buffers (IORING_REGISTER_BUFFERS) - the gain is a
 *   page pin per read, small next to the device latency, and the buffer
 *   would have to be sized for the largest fetch up front; SQPOLL - it
 *   burns a core per ring, and this machine has two.
 * - If the kernel refuses io_uring (old kernel, seccomp in a container),
 *   one line goes to stderr and reads use pread; the answer is the same.
 * - mmap: the mapping is grown (remapped) on append under a write lock;
 *   fetches hold the read lock. MADV_RANDOM: each record is a page fault.
 * - memory: the whole file is read at open; appends copy into the array.
 * - The header's first 64 bytes are the common blob envelope (vqs_blob.h:
 *   magic, version, body, CRC-32C, little-endian), the rest of its 4096
 *   bytes zeros: one framing for every vqs file, and the bytes are those
 *   the header always had (files written before the envelope open).
 */
#define _GNU_SOURCE
#include "vqs_blob.h"
#include "vqs_store.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDR 4096
#define ALIGN 4096
#define VS_VERSION 1
#define VS_MAGIC "VQSVEC\0\0"

typedef struct slot {
    struct io_uring ring;
    int ring_ok; /* 1: ring set up; -1: setup failed (use pread) */
    uint8_t *buf;
    size_t bufcap; /* bytes */
} slot;

struct vqs_vecstore {
    char path[4096];
    int fdw, fdr;
    int direct;
    size_t d, rec;
    uint64_t count; /* atomic */
    vqs_vs_backend backend;
    unsigned qd;
    int nslots;
    slot *slots;
    int uring_failed; /* atomic: some ring failed to set up */
    pthread_rwlock_t lock; /* mmap / memory: remap or realloc vs readers */
    uint8_t *map;
    size_t maplen;
    float *mem;
    uint64_t memcap;
};

/* The header: the common blob envelope (vqs_blob.h) over its first 64
 * bytes - magic, u32 version, body (u32 d, u32 record bytes, u32 element
 * type, zeros), CRC-32C at byte 60 - then zeros to HDR. */
#define HDR_CRC_AT 60

static int hdr_make(uint8_t *h, size_t d, const char *path)
{
    vqs_wbuf w = {0};
    vqs_blob_begin(&w, VS_MAGIC, VS_VERSION);
    vqs_wbuf_u32(&w, (uint32_t)d);
    vqs_wbuf_u32(&w, (uint32_t)(d * 4));
    vqs_wbuf_u32(&w, 1 /* float32 */);
    vqs_wbuf_pad(&w, HDR_CRC_AT);
    int rc = vqs_blob_end(&w);
    if (rc) {
        free(w.p);
        return vqs_seterr(rc, "%s: building the header: %s", path, vqs_errdetail());
    }
    memset(h, 0, HDR);
    memcpy(h, w.p, w.len);
    free(w.p);
    return 0;
}

static int hdr_check(const uint8_t *h, size_t d, const char *path)
{
    char what[4200];
    snprintf(what, sizeof what, "%s header", path);
    vqs_rbuf body;
    int rc = vqs_blob_open(h, HDR_CRC_AT + 4, VS_MAGIC, VS_VERSION, what, &body, NULL);
    if (rc)
        return rc;
    uint32_t v[3];
    for (int i = 0; i < 3; i++)
        if ((rc = vqs_rbuf_u32(&body, &v[i])))
            return rc;
    if (v[0] != d || v[1] != d * 4 || v[2] != 1)
        return vqs_seterr(VQS_ECORRUPT, "%s: holds %u-d records of %u bytes (type %u), the collection is %zu-d float32",
                          path, v[0], v[1], v[2], d);
    return 0;
}

static int full_pwrite(int fd, const void *p, size_t n, off_t off)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = pwrite(fd, b, n, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO;
        b += w, n -= (size_t)w, off += w;
    }
    return 0;
}

static int full_pread(int fd, void *p, size_t n, off_t off, size_t *got)
{
    uint8_t *b = p;
    *got = 0;
    while (n) {
        ssize_t r = pread(fd, b, n, off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (r == 0)
            break;
        b += r, n -= (size_t)r, off += r, *got += (size_t)r;
    }
    return 0;
}

static int map_to(vqs_vecstore *vs, size_t len)
{
    if (len <= vs->maplen)
        return 0;
    size_t nl = vs->maplen ? vs->maplen : (size_t)1 << 20;
    while (nl < len)
        nl *= 2;
    void *m = mmap(NULL, nl, PROT_READ, MAP_SHARED, vs->fdw, 0);
    if (m == MAP_FAILED)
        return vqs_seterr(-errno, "%s: mmap of %zu bytes: %s", vs->path, nl, strerror(errno));
    madvise(m, nl, MADV_RANDOM);
    if (vs->map)
        munmap(vs->map, vs->maplen);
    vs->map = m;
    vs->maplen = nl;
    return 0;
}

static int mem_reserve(vqs_vecstore *vs, uint64_t n)
{
    if (n <= vs->memcap)
        return 0;
    uint64_t nc = vs->memcap ? vs->memcap : 1024;
    while (nc < n)
        nc *= 2;
    float *m = realloc(vs->mem, nc * vs->rec);
    if (!m)
        return vqs_seterr(VQS_ENOMEM, "%s: %llu vectors in memory", vs->path, (unsigned long long)nc);
    vs->mem = m;
    vs->memcap = nc;
    return 0;
}

int vqs_vecstore_open(const char *path, size_t d, uint64_t committed, const vqs_vecstore_opts *o,
                      vqs_vecstore **out)
{
    if (!path || !out || d == 0 || d > VQS_MAX_DIM_DEFAULT)
        return vqs_seterr(VQS_EINVAL, "vecstore_open: bad argument (d = %zu)", d);
    *out = NULL;
    vqs_vecstore_opts def = {0};
    if (!o)
        o = &def;
    vqs_vecstore *vs = calloc(1, sizeof *vs);
    if (!vs)
        return vqs_seterr(VQS_ENOMEM, "vecstore_open");
    snprintf(vs->path, sizeof vs->path, "%s", path);
    vs->fdw = vs->fdr = -1;
    vs->d = d;
    vs->rec = d * 4;
    vs->backend = o->backend == VQS_VS_AUTO ? VQS_VS_URING : o->backend;
    vs->qd = o->queue_depth ? o->queue_depth : 128;
    if (vs->qd > 4096)
        vs->qd = 4096;
    vs->nslots = o->nthreads > 0 ? o->nthreads : 1;
    pthread_rwlock_init(&vs->lock, NULL);
    int rc = 0;
    uint8_t *h = NULL;
    if (!(vs->slots = calloc((size_t)vs->nslots, sizeof *vs->slots)) || posix_memalign((void **)&h, ALIGN, HDR)) {
        rc = vqs_seterr(VQS_ENOMEM, "vecstore_open");
        goto fail;
    }
    vs->fdw = open(path, (o->read_only ? O_RDONLY : O_RDWR | (committed == 0 ? O_CREAT : 0)) | O_CLOEXEC, 0644);
    if (vs->fdw < 0 && errno == ENOENT && o->read_only && committed == 0) {
        /* nothing written yet beside this reader: an empty store */
        vs->count = 0;
        vs->backend = VQS_VS_MEMORY;
        free(h);
        *out = vs;
        return 0;
    }
    if (vs->fdw < 0) {
        rc = errno == ENOENT ? vqs_seterr(VQS_ECORRUPT, "%s: missing, and the collection has %llu vectors committed",
                                          path, (unsigned long long)committed)
                             : vqs_seterr(-errno, "%s: %s", path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(vs->fdw, &st) != 0) {
        rc = vqs_seterr(-errno, "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (st.st_size == 0) {
        if (committed) {
            rc = vqs_seterr(VQS_ECORRUPT, "%s: empty, and the collection has %llu vectors committed", path,
                            (unsigned long long)committed);
            goto fail;
        }
    }
    if (st.st_size == 0 && o->read_only) {
        st.st_size = HDR; /* the writer has not written the header yet: nothing to read */
    } else if (st.st_size == 0) {
        if ((rc = hdr_make(h, d, path)))
            goto fail;
        if ((rc = full_pwrite(vs->fdw, h, HDR, 0)) || fdatasync(vs->fdw) != 0) {
            rc = vqs_seterr(rc ? rc : -errno, "%s: writing the header: %s", path, strerror(rc ? -rc : errno));
            ftruncate(vs->fdw, 0);
            goto fail;
        }
        st.st_size = HDR;
    } else {
        size_t got;
        if (st.st_size < HDR) {
            rc = vqs_seterr(VQS_ECORRUPT, "%s: %lld bytes, shorter than its %d-byte header", path,
                            (long long)st.st_size, HDR);
            goto fail;
        }
        if ((rc = full_pread(vs->fdw, h, HDR, 0, &got)) || got != HDR) {
            rc = vqs_seterr(rc ? rc : VQS_ECORRUPT, "%s: reading the header failed", path);
            goto fail;
        }
        if ((rc = hdr_check(h, d, path)))
            goto fail;
    }
    uint64_t have = (uint64_t)(st.st_size - HDR) / vs->rec;
    if (have < committed) {
        rc = vqs_seterr(VQS_ECORRUPT, "%s: holds %llu vectors, the collection committed %llu (the file was truncated or replaced)",
                        path, (unsigned long long)have, (unsigned long long)committed);
        goto fail;
    }
    if (!o->read_only && (uint64_t)st.st_size != HDR + committed * vs->rec) {
        /* an uncommitted or torn tail: cut it */
        if (ftruncate(vs->fdw, (off_t)(HDR + committed * vs->rec)) != 0 || fdatasync(vs->fdw) != 0) {
            rc = vqs_seterr(-errno, "%s: cutting the uncommitted tail: %s", path, strerror(errno));
            goto fail;
        }
    }
    vs->count = committed;
    if (vs->backend == VQS_VS_URING || vs->backend == VQS_VS_PREAD) {
        if (!o->buffered) {
            vs->fdr = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
            vs->direct = vs->fdr >= 0;
        }
        if (vs->fdr < 0 && (vs->fdr = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
            rc = vqs_seterr(-errno, "%s: %s", path, strerror(errno));
            goto fail;
        }
    } else if (vs->backend == VQS_VS_MMAP) {
        if ((rc = map_to(vs, HDR + committed * vs->rec)))
            goto fail;
    } else if (vs->backend == VQS_VS_MEMORY) {
        if ((rc = mem_reserve(vs, committed)))
            goto fail;
        size_t got;
        if (committed && ((rc = full_pread(vs->fdw, vs->mem, committed * vs->rec, HDR, &got)) ||
                          got != committed * vs->rec)) {
            rc = vqs_seterr(rc ? rc : VQS_ECORRUPT, "%s: reading %llu vectors failed", path,
                            (unsigned long long)committed);
            goto fail;
        }
    } else {
        rc = vqs_seterr(VQS_EINVAL, "vecstore_open: backend %d", (int)o->backend);
        goto fail;
    }
    free(h);
    *out = vs;
    return 0;
fail:
    free(h);
    vqs_vecstore_close(vs);
    return rc;
}

void vqs_vecstore_close(vqs_vecstore *vs)
{
    if (!vs)
        return;
    for (int i = 0; vs->slots && i < vs->nslots; i++) {
        if (vs->slots[i].ring_ok == 1)
            io_uring_queue_exit(&vs->slots[i].ring);
        free(vs->slots[i].buf);
    }
    free(vs->slots);
    if (vs->map)
        munmap(vs->map, vs->maplen);
    free(vs->mem);
    if (vs->fdr >= 0)
        close(vs->fdr);
    if (vs->fdw >= 0)
        close(vs->fdw);
    pthread_rwlock_destroy(&vs->lock);
    free(vs);
}

uint64_t vqs_vecstore_count(const vqs_vecstore *vs) { return __atomic_load_n(&vs->count, __ATOMIC_ACQUIRE); }
size_t vqs_vecstore_d(const vqs_vecstore *vs) { return vs->d; }

const char *vqs_vecstore_backend_name(const vqs_vecstore *vs)
{
    switch (vs->backend) {
    case VQS_VS_URING: return __atomic_load_n(&vs->uring_failed, __ATOMIC_RELAXED) ? "pread" : "io_uring";
    case VQS_VS_PREAD: return "pread";
    case VQS_VS_MMAP: return "mmap";
    case VQS_VS_MEMORY: return "memory";
    default: return "?";
    }
}

int vqs_vecstore_append(vqs_vecstore *vs, uint64_t first, size_t n, const float *x)
{
    if (!vs || (n && !x))
        return vqs_seterr(VQS_EINVAL, "vecstore_append: NULL argument");
    uint64_t c = vqs_vecstore_count(vs);
    if (first != c)
        return vqs_seterr(VQS_EINVAL, "%s: append at record %llu, the file holds %llu", vs->path,
                          (unsigned long long)first, (unsigned long long)c);
    if (n == 0)
        return 0;
    off_t off = (off_t)(HDR + c * vs->rec);
    int rc = full_pwrite(vs->fdw, x, n * vs->rec, off);
    if (!rc && fdatasync(vs->fdw) != 0)
        rc = -errno;
    if (!rc && vs->backend == VQS_VS_MMAP) {
        pthread_rwlock_wrlock(&vs->lock);
        rc = map_to(vs, (size_t)off + n * vs->rec);
        pthread_rwlock_unlock(&vs->lock);
        if (rc)
            goto cut;
    } else if (!rc && vs->backend == VQS_VS_MEMORY) {
        pthread_rwlock_wrlock(&vs->lock);
        rc = mem_reserve(vs, c + n);
        if (!rc)
            memcpy((uint8_t *)vs->mem + c * vs->rec, x, n * vs->rec);
        pthread_rwlock_unlock(&vs->lock);
        if (rc)
            goto cut;
    }
    if (rc) {
        rc = vqs_seterr(rc, "%s: appending %zu vectors: %s (the file is cut back; nothing was stored)", vs->path, n,
                        strerror(-rc));
        goto cut;
    }
    __atomic_store_n(&vs->count, c + n, __ATOMIC_RELEASE);
    return 0;
cut:
    if (ftruncate(vs->fdw, off) == 0)
        fdatasync(vs->fdw);
    return rc;
}

int vqs_vecstore_truncate(vqs_vecstore *vs, uint64_t n)
{
    if (!vs)
        return vqs_seterr(VQS_EINVAL, "vecstore_truncate: NULL argument");
    uint64_t c = vqs_vecstore_count(vs);
    if (n > c)
        return vqs_seterr(VQS_EINVAL, "%s: truncate to %llu records, it holds %llu", vs->path,
                          (unsigned long long)n, (unsigned long long)c);
    __atomic_store_n(&vs->count, n, __ATOMIC_RELEASE);
    if (ftruncate(vs->fdw, (off_t)(HDR + n * vs->rec)) != 0 || fdatasync(vs->fdw) != 0)
        return vqs_seterr(-errno, "%s: truncate to %llu records: %s", vs->path, (unsigned long long)n,
                          strerror(errno));
    return 0;
}

/* Span of a record rounded out to ALIGN: [*start, *start + *len). */
static void span(const vqs_vecstore *vs, int64_t id, off_t *start, size_t *len, size_t *skip)
{
    uint64_t off = HDR + (uint64_t)id * vs->rec;
    uint64_t s = vs->direct ? off & ~(uint64_t)(ALIGN - 1) : off;
    uint64_t e = off + vs->rec;
    if (vs->direct)
        e = (e + ALIGN - 1) & ~(uint64_t)(ALIGN - 1);
    *start = (off_t)s;
    *len = (size_t)(e - s);
    *skip = (size_t)(off - s);
}

static size_t span_max(const vqs_vecstore *vs)
{
    return vs->direct ? ((vs->rec + ALIGN - 1) / ALIGN + 1) * ALIGN : vs->rec;
}

static int slot_buf(vqs_vecstore *vs, slot *s, size_t bytes)
{
    if (bytes <= s->bufcap)
        return 0;
    free(s->buf);
    s->buf = NULL;
    s->bufcap = 0;
    if (posix_memalign((void **)&s->buf, ALIGN, bytes))
        return vqs_seterr(VQS_ENOMEM, "%s: read buffer of %zu bytes", vs->path, bytes);
    s->bufcap = bytes;
    return 0;
}

static int fetch_pread(vqs_vecstore *vs, slot *s, size_t n, const int64_t *ids, float *out)
{
    size_t sm = span_max(vs);
    int rc = slot_buf(vs, s, sm);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        off_t st;
        size_t len, skip, got;
        span(vs, ids[i], &st, &len, &skip);
        if ((rc = full_pread(vs->fdr, s->buf, len, st, &got)))
            return vqs_seterr(rc, "%s: reading vector %lld: %s", vs->path, (long long)ids[i], strerror(-rc));
        if (got < skip + vs->rec)
            return vqs_seterr(VQS_ECORRUPT, "%s: short read of vector %lld (%zu of %zu bytes)", vs->path,
                              (long long)ids[i], got, skip + vs->rec);
        memcpy(out + i * vs->d, s->buf + skip, vs->rec);
    }
    return 0;
}

static int ring_setup(vqs_vecstore *vs, slot *s)
{
    if (s->ring_ok)
        return s->ring_ok;
    int r = io_uring_queue_init(vs->qd, &s->ring, 0);
    if (r < 0) {
        s->ring_ok = -1;
        if (!__atomic_exchange_n(&vs->uring_failed, 1, __ATOMIC_RELAXED))
            fprintf(stderr, "vqs: warning: io_uring unavailable (%s); re-scoring reads of %s use pread\n",
                    strerror(-r), vs->path);
        return -1;
    }
    s->ring_ok = 1;
    return 1;
}

static int fetch_uring(vqs_vecstore *vs, slot *s, size_t n, const int64_t *ids, float *out)
{
    size_t sm = span_max(vs);
    int rc = slot_buf(vs, s, sm * (n < vs->qd ? n : vs->qd));
    if (rc)
        return rc;
    /* buffer slot b of the ring holds one read in flight; user_data carries
     * (request index << 16 | buffer slot) */
    unsigned depth = n < vs->qd ? (unsigned)n : vs->qd;
    uint16_t *freeb = malloc(sizeof(uint16_t) * depth);
    if (!freeb)
        return vqs_seterr(VQS_ENOMEM, "fetch");
    unsigned nfree = 0;
    for (unsigned b = 0; b < depth; b++)
        freeb[nfree++] = (uint16_t)(depth - 1 - b);
    size_t next = 0, done = 0;
    unsigned inflight = 0;
    while (done < n && !rc) {
        unsigned queued = 0;
        while (next < n && nfree) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);
            if (!sqe)
                break;
            uint16_t b = freeb[--nfree];
            off_t st;
            size_t len, skip;
            span(vs, ids[next], &st, &len, &skip);
            io_uring_prep_read(sqe, vs->fdr, s->buf + (size_t)b * sm, (unsigned)len, (uint64_t)st);
            io_uring_sqe_set_data64(sqe, (uint64_t)next << 16 | b);
            next++, queued++;
        }
        inflight += queued;
        int r = io_uring_submit_and_wait(&s->ring, 1);
        if (r < 0 && r != -EINTR) {
            rc = vqs_seterr(r, "%s: io_uring submit: %s", vs->path, strerror(-r));
            break;
        }
        struct io_uring_cqe *cqes[256];
        unsigned got;
        while ((got = io_uring_peek_batch_cqe(&s->ring, cqes, 256)) > 0) {
            for (unsigned j = 0; j < got; j++) {
                uint64_t ud = io_uring_cqe_get_data64(cqes[j]);
                size_t i = (size_t)(ud >> 16);
                uint16_t b = (uint16_t)(ud & 0xffff);
                int res = cqes[j]->res;
                off_t st;
                size_t len, skip;
                span(vs, ids[i], &st, &len, &skip);
                if (res < 0 && !rc)
                    rc = vqs_seterr(res, "%s: reading vector %lld: %s", vs->path, (long long)ids[i], strerror(-res));
                else if (res >= 0 && (size_t)res < skip + vs->rec && !rc)
                    rc = vqs_seterr(VQS_ECORRUPT, "%s: short read of vector %lld (%d of %zu bytes)", vs->path,
                                    (long long)ids[i], res, skip + vs->rec);
                else if (!rc)
                    memcpy(out + i * vs->d, s->buf + (size_t)b * sm + skip, vs->rec);
                freeb[nfree++] = b;
                inflight--;
                done++;
            }
            io_uring_cq_advance(&s->ring, got);
        }
    }
    /* on an error, drain what is still in flight before the buffer is reused */
    while (inflight) {
        struct io_uring_cqe *cqe;
        if (io_uring_wait_cqe(&s->ring, &cqe) < 0)
            break;
        io_uring_cqe_seen(&s->ring, cqe);
        inflight--;
    }
    free(freeb);
    return rc;
}

int vqs_vecstore_fetch(vqs_vecstore *vs, int thread_id, size_t n, const int64_t *ids, float *out)
{
    if (!vs || (n && (!ids || !out)))
        return vqs_seterr(VQS_EINVAL, "vecstore_fetch: NULL argument");
    if (thread_id < 0 || thread_id >= vs->nslots)
        return vqs_seterr(VQS_EINVAL, "%s: reader slot %d of %d", vs->path, thread_id, vs->nslots);
    uint64_t c = vqs_vecstore_count(vs);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (uint64_t)ids[i] >= c)
            return vqs_seterr(VQS_EINVAL, "%s: vector %lld is not stored (the file holds %llu)", vs->path,
                              (long long)ids[i], (unsigned long long)c);
    if (n == 0)
        return 0;
    slot *s = &vs->slots[thread_id];
    int rc = 0;
    switch (vs->backend) {
    case VQS_VS_URING:
        if (ring_setup(vs, s) == 1)
            return fetch_uring(vs, s, n, ids, out);
        return fetch_pread(vs, s, n, ids, out);
    case VQS_VS_PREAD: return fetch_pread(vs, s, n, ids, out);
    case VQS_VS_MMAP:
        pthread_rwlock_rdlock(&vs->lock);
        for (size_t i = 0; i < n; i++)
            memcpy(out + i * vs->d, vs->map + HDR + (uint64_t)ids[i] * vs->rec, vs->rec);
        pthread_rwlock_unlock(&vs->lock);
        return 0;
    case VQS_VS_MEMORY:
        pthread_rwlock_rdlock(&vs->lock);
        for (size_t i = 0; i < n; i++)
            memcpy(out + i * vs->d, (const uint8_t *)vs->mem + (uint64_t)ids[i] * vs->rec, vs->rec);
        pthread_rwlock_unlock(&vs->lock);
        return 0;
    default: rc = vqs_seterr(VQS_EINVAL, "%s: backend %d", vs->path, (int)vs->backend);
    }
    return rc;
}
