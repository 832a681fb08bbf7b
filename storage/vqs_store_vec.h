/*
 * vqs_store_vec.h: the append-only file of full-precision vectors beside a
 * collection's LMDB records (storage/vecstore.c), read for re-scoring.
 *
 * File: a 4096-byte header (magic "VQSVEC", version, d, record size,
 * CRC-32C), then one record of d little-endian float32 per internal id, at
 * byte 4096 + iid * d * 4. The 4096-byte header keeps every record
 * boundary at a fixed offset from a page boundary, so O_DIRECT reads need
 * only round the record's span out to 4096 bytes.
 *
 * Reads: vqs_vecstore_fetch() gathers the vectors of n ids into a buffer.
 * Backends: io_uring (default: one ring per reader slot, all of a call's
 * reads queued at once, O_DIRECT so the page cache is optional), a pread
 * loop, mmap page faults, or a copy of the whole file in memory. If
 * io_uring cannot be set up, reads fall back to pread with one warning
 * line on stderr. Every backend returns the same bytes.
 */
#ifndef VQS_STORE_VEC_H
#define VQS_STORE_VEC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum vqs_vs_backend {
    VQS_VS_AUTO = 0, /* io_uring, with the pread fallback */
    VQS_VS_URING,
    VQS_VS_PREAD,
    VQS_VS_MMAP,
    VQS_VS_MEMORY,
} vqs_vs_backend;

typedef struct vqs_vecstore_opts {
    vqs_vs_backend backend;
    int nthreads;          /* reader slots: fetch's thread_id is in [0, nthreads); 0: 1 */
    unsigned queue_depth;  /* io_uring: reads in flight per fetch; 0: 128 */
    int buffered;          /* 1: no O_DIRECT (reads go through the page cache) */
    int read_only;         /* 1: beside a writer in another process: open O_RDONLY, never
                              create or cut the file; records past committed are left as
                              they are (the writer's, committed or not) */
} vqs_vecstore_opts;

typedef struct vqs_vecstore vqs_vecstore;

/* Opens (creating it if absent and committed == 0) the vector file path of
 * d-dimensional vectors, of which the caller's records say committed are
 * stored. Records past committed (an append whose transaction never
 * committed) and a torn partial record are cut off and the file synced
 * (not with o->read_only; appends and truncation then fail with -EBADF).
 * Errors: VQS_ECORRUPT (bad magic or checksum, other d, fewer than
 * committed records, missing file with committed > 0), VQS_EVERSION, -errno.
 * Every message names the file. */
int vqs_vecstore_open(const char *path, size_t d, uint64_t committed, const vqs_vecstore_opts *o,
                      vqs_vecstore **out);
void vqs_vecstore_close(vqs_vecstore *vs);

uint64_t vqs_vecstore_count(const vqs_vecstore *vs);
size_t vqs_vecstore_d(const vqs_vecstore *vs);
/* "io_uring", "pread", "mmap" or "memory" (what reads actually use). */
const char *vqs_vecstore_backend_name(const vqs_vecstore *vs);

/* Appends n vectors (n * d floats) as internal ids first .. first + n - 1;
 * first must equal the count (VQS_EINVAL). Returns after fdatasync. On any
 * failure (-ENOSPC, -EFBIG, -EIO) the file is cut back to its previous
 * length and the error names the file. One writer at a time; concurrent
 * fetches are fine. */
int vqs_vecstore_append(vqs_vecstore *vs, uint64_t first, size_t n, const float *x);

/* Cuts the file back to n records (n <= count) and syncs it. */
int vqs_vecstore_truncate(vqs_vecstore *vs, uint64_t n);

/* Reads the vectors of n internal ids into out (n * d floats). thread_id
 * names the reader slot (in [0, nthreads)); one caller per slot at a time
 * (the collection layer hands out slots and adapts this to the index's
 * re-scoring source). Errors: VQS_EINVAL (an id outside [0, count), a slot
 * outside [0, nthreads)), -errno, VQS_ECORRUPT (a short read). */
int vqs_vecstore_fetch(vqs_vecstore *vs, int thread_id, size_t n, const int64_t *ids, float *out);

#ifdef __cplusplus
}
#endif

#endif
