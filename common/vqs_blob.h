/*
 * vqs_blob.h: bytes on disk. Little-endian write and read buffers, fixed-
 * offset little-endian helpers, and the one blob envelope every persistent
 * vqs format uses (codec and trained-index blobs, the vector file header,
 * LMDB records where they are framed):
 *
 *   8 bytes magic | u32 version | body | u32 CRC-32C of every byte before it
 *
 * All integers little-endian, whatever the host. The version is checked
 * before the checksum, so a blob from a newer vqs is reported as a version
 * error (VQS_EVERSION), not as damage.
 *
 * Rejected: a self-describing container (CBOR, protobuf): the payloads are
 * float arrays, and explicit lengths plus a checksum are what catch damage.
 */
#ifndef VQS_BLOB_H
#define VQS_BLOB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Growable write buffer; the first allocation failure sets err = VQS_ENOMEM
 * and makes later puts no-ops, so writers check once at the end. Zeroed is
 * empty; the caller frees p. */
typedef struct vqs_wbuf {
    uint8_t *p;
    size_t len, cap;
    int err;
} vqs_wbuf;

void vqs_wbuf_put(vqs_wbuf *w, const void *p, size_t n);
void vqs_wbuf_u32(vqs_wbuf *w, uint32_t v); /* little-endian */
void vqs_wbuf_u64(vqs_wbuf *w, uint64_t v);
void vqs_wbuf_f32(vqs_wbuf *w, const float *x, size_t n); /* host floats (IEEE LE on every target) */
/* Appends zero bytes until len == to (nothing if already there). */
void vqs_wbuf_pad(vqs_wbuf *w, size_t to);

/* Bounded reader over len bytes from p, reading at off: every get fails
 * with VQS_ECORRUPT (detail: what, or "blob", and the offset) instead of
 * reading past len. */
typedef struct vqs_rbuf {
    const uint8_t *p;
    size_t len, off;
    const char *what; /* names the blob in messages; NULL: "blob" */
} vqs_rbuf;

int vqs_rbuf_get(vqs_rbuf *r, void *out, size_t n);
int vqs_rbuf_u32(vqs_rbuf *r, uint32_t *v);
int vqs_rbuf_u64(vqs_rbuf *r, uint64_t *v);
int vqs_rbuf_f32(vqs_rbuf *r, float *x, size_t n);
/* VQS_ECORRUPT unless at least `bytes` remain. Loaders call it before
 * allocating anything sized by the blob, so a forged header cannot make
 * them allocate more than the blob itself can fill. */
int vqs_rbuf_need(vqs_rbuf *r, size_t bytes, const char *what);
/* Reads a u64 count and checks it equals want; VQS_ECORRUPT otherwise. */
int vqs_rbuf_expect(vqs_rbuf *r, uint64_t want, const char *what);
/* A reader over the next n bytes (same what), and r moves past them.
 * VQS_ECORRUPT if fewer than n remain. */
int vqs_rbuf_sub(vqs_rbuf *r, size_t n, vqs_rbuf *sub);

/* ---- the envelope ------------------------------------------------------ */

#define VQS_BLOB_OVERHEAD 16 /* magic, version, CRC */

/* Starts a blob in an empty w: magic (8 bytes, not NUL-terminated), version. */
void vqs_blob_begin(vqs_wbuf *w, const char magic[8], uint32_t version);
/* Appends the CRC-32C of everything in w. Returns w->err (VQS_ENOMEM, detail
 * set) or 0; w->p, w->len is then the blob. */
int vqs_blob_end(vqs_wbuf *w);

/* Checks a blob of len bytes: at least VQS_BLOB_OVERHEAD bytes, the magic,
 * a version in 1..max_version, the CRC. On success *version (may be NULL) is
 * the version and *body reads the bytes between version and CRC (body->what
 * = what). what names the blob in messages ("codec blob", "DIR/x.vec
 * header"). Errors: VQS_ECORRUPT (too short, bad magic, checksum mismatch),
 * VQS_EVERSION (0 or newer than max_version). */
int vqs_blob_open(const void *p, size_t len, const char magic[8], uint32_t max_version,
                  const char *what, vqs_rbuf *body, uint32_t *version);

/* ---- fixed offsets ----------------------------------------------------- */

static inline uint32_t vqs_le32_get(const void *p)
{
    const uint8_t *b = (const uint8_t *)p;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}
static inline uint64_t vqs_le64_get(const void *p)
{
    return (uint64_t)vqs_le32_get((const uint8_t *)p + 4) << 32 | vqs_le32_get(p);
}
static inline void vqs_le32_put(void *p, uint32_t v)
{
    uint8_t *b = (uint8_t *)p;
    b[0] = (uint8_t)v, b[1] = (uint8_t)(v >> 8), b[2] = (uint8_t)(v >> 16), b[3] = (uint8_t)(v >> 24);
}
static inline void vqs_le64_put(void *p, uint64_t v)
{
    vqs_le32_put(p, (uint32_t)v);
    vqs_le32_put((uint8_t *)p + 4, (uint32_t)(v >> 32));
}

#ifdef __cplusplus
}
#endif

#endif
