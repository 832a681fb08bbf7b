/*
 * blob.c: the write and read buffers and the blob envelope of vqs_blob.h.
 *
 * - Byte order by shifts, never by memcpy of a host integer, so the format
 *   is the same on any host (the index blob once wrote host order).
 * - The reader never trusts a length: every get is checked against what is
 *   left, and vqs_rbuf_need lets a loader refuse a forged count before it
 *   allocates.
 */
#include "vqs_blob.h"
#include "vqs_common.h"

#include <stdlib.h>
#include <string.h>

static const char *name_of(const vqs_rbuf *r) { return r->what ? r->what : "blob"; }

void vqs_wbuf_put(vqs_wbuf *w, const void *p, size_t n)
{
    if (w->err || n == 0)
        return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *q = realloc(w->p, cap);
        if (!q) {
            w->err = vqs_seterr(VQS_ENOMEM, "blob: %zu bytes", cap);
            return;
        }
        w->p = q;
        w->cap = cap;
    }
    memcpy(w->p + w->len, p, n);
    w->len += n;
}

void vqs_wbuf_u32(vqs_wbuf *w, uint32_t v)
{
    uint8_t b[4] = {0};
    vqs_le32_put(b, v);
    vqs_wbuf_put(w, b, 4);
}

void vqs_wbuf_u64(vqs_wbuf *w, uint64_t v)
{
    uint8_t b[8] = {0};
    vqs_le64_put(b, v);
    vqs_wbuf_put(w, b, 8);
}

void vqs_wbuf_f32(vqs_wbuf *w, const float *x, size_t n) { vqs_wbuf_put(w, x, n * sizeof(float)); }

void vqs_wbuf_pad(vqs_wbuf *w, size_t to)
{
    static const uint8_t zeros[64];
    while (!w->err && w->len < to) {
        size_t n = to - w->len;
        vqs_wbuf_put(w, zeros, n < sizeof zeros ? n : sizeof zeros);
    }
}

int vqs_rbuf_get(vqs_rbuf *r, void *out, size_t n)
{
    if (n > r->len - r->off)
        return vqs_seterr(VQS_ECORRUPT, "%s: truncated at byte %zu (needs %zu more, has %zu)", name_of(r),
                          r->off, n, r->len - r->off);
    memcpy(out, r->p + r->off, n);
    r->off += n;
    return 0;
}

int vqs_rbuf_u32(vqs_rbuf *r, uint32_t *v)
{
    uint8_t b[4] = {0};
    int rc = vqs_rbuf_get(r, b, 4);
    if (rc == 0)
        *v = vqs_le32_get(b);
    return rc;
}

int vqs_rbuf_u64(vqs_rbuf *r, uint64_t *v)
{
    uint8_t b[8] = {0};
    int rc = vqs_rbuf_get(r, b, 8);
    if (rc == 0)
        *v = vqs_le64_get(b);
    return rc;
}

int vqs_rbuf_f32(vqs_rbuf *r, float *x, size_t n)
{
    if (n > SIZE_MAX / sizeof(float))
        return vqs_seterr(VQS_ECORRUPT, "%s: absurd array length %zu", name_of(r), n);
    return vqs_rbuf_get(r, x, n * sizeof(float));
}

int vqs_rbuf_need(vqs_rbuf *r, size_t bytes, const char *what)
{
    if (bytes > r->len - r->off)
        return vqs_seterr(VQS_ECORRUPT, "%s: %s needs %zu bytes, %zu left", name_of(r), what, bytes,
                          r->len - r->off);
    return 0;
}

int vqs_rbuf_expect(vqs_rbuf *r, uint64_t want, const char *what)
{
    uint64_t v;
    int rc = vqs_rbuf_u64(r, &v);
    if (rc)
        return rc;
    if (v != want)
        return vqs_seterr(VQS_ECORRUPT, "%s: %s is %llu, expected %llu", name_of(r), what,
                          (unsigned long long)v, (unsigned long long)want);
    return 0;
}

int vqs_rbuf_sub(vqs_rbuf *r, size_t n, vqs_rbuf *sub)
{
    int rc = vqs_rbuf_need(r, n, "a section");
    if (rc)
        return rc;
    *sub = (vqs_rbuf){r->p + r->off, n, 0, r->what};
    r->off += n;
    return 0;
}

void vqs_blob_begin(vqs_wbuf *w, const char magic[8], uint32_t version)
{
    vqs_wbuf_put(w, magic, 8);
    vqs_wbuf_u32(w, version);
}

int vqs_blob_end(vqs_wbuf *w)
{
    if (!w->err)
        vqs_wbuf_u32(w, vqs_crc32c(0, w->p, w->len));
    return w->err;
}

int vqs_blob_open(const void *p, size_t len, const char magic[8], uint32_t max_version,
                  const char *what, vqs_rbuf *body, uint32_t *version)
{
    const uint8_t *b = p;
    if (!what)
        what = "blob";
    if (!b || len < VQS_BLOB_OVERHEAD)
        return vqs_seterr(VQS_ECORRUPT, "%s: %zu bytes, too short", what, len);
    if (memcmp(b, magic, 8) != 0)
        return vqs_seterr(VQS_ECORRUPT, "%s: bad magic", what);
    uint32_t ver = vqs_le32_get(b + 8);
    if (ver == 0 || ver > max_version)
        return vqs_seterr(VQS_EVERSION, "%s: format version %u (this build reads 1..%u)", what, ver,
                          max_version);
    if (vqs_crc32c(0, b, len - 4) != vqs_le32_get(b + len - 4))
        return vqs_seterr(VQS_ECORRUPT, "%s: checksum mismatch (%zu bytes)", what, len);
    if (version)
        *version = ver;
    *body = (vqs_rbuf){b + 12, len - 16, 0, what};
    return 0;
}
