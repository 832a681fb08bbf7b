/*
 * codec_blob.c: a trained codec to bytes and back (vqs_codec_save,
 * vqs_codec_load).
 *
 * Design decisions:
 * - Blob: "VQSCODEC", u32 format version, u64 d, spec string, the options
 *   that affect decoding, then per stage (u32 payload length, payload), then
 *   CRC-32C of all previous bytes. A reader refuses a newer version rather
 *   than guessing. Rejected: a self-describing format (JSON/CBOR) - the
 *   payloads are float arrays and a checksum plus explicit lengths is what
 *   catches damage.
 * - The magic, version and CRC are the common blob envelope (vqs_blob.h),
 *   which writes exactly the bytes this format always had: the body is
 *   everything from d to the last stage payload.
 */
#include "codec_internal.h"

#include <stdlib.h>
#include <string.h>

#define BLOB_MAGIC "VQSCODEC"
#define BLOB_VERSION 1u

/* ---- blob ---------------------------------------------------------------- */

int vqs_codec_save(const vqs_codec *c, void **blob, size_t *len)
{
    if (!c || !blob || !len)
        return vqs_seterr(VQS_EINVAL, "codec_save: NULL argument");
    for (int i = 0; i < c->nstages; i++)
        if (!c->st[i].trained)
            return vqs_seterr(VQS_EINVAL, "codec_save: stage '%s' is not trained", c->st[i].token);
    vqs_wbuf w = {0};
    vqs_blob_begin(&w, BLOB_MAGIC, BLOB_VERSION);
    vqs_wbuf_u64(&w, c->d);
    uint32_t sl = (uint32_t)strlen(c->spec);
    vqs_wbuf_u32(&w, sl);
    vqs_wbuf_put(&w, c->spec, sl);
    /* options that matter after training */
    vqs_wbuf_u64(&w, c->o.seed);
    vqs_wbuf_u32(&w, (uint32_t)c->o.rvq_beam);
    vqs_wbuf_u32(&w, (uint32_t)c->nstages);
    int rc = 0;
    for (int i = 0; i < c->nstages && !rc; i++) {
        vqs_wbuf sub = {0};
        rc = c->st[i].ops->save(&c->st[i], &sub);
        if (!rc && sub.err)
            rc = vqs_seterr(sub.err, "codec_save: stage '%s'", c->st[i].token);
        if (!rc && sub.len > UINT32_MAX)
            rc = vqs_seterr(VQS_ERANGE, "codec_save: stage '%s' payload of %zu bytes", c->st[i].token, sub.len);
        if (!rc) {
            vqs_wbuf_u32(&w, (uint32_t)sub.len);
            vqs_wbuf_put(&w, sub.p, sub.len);
        }
        free(sub.p);
    }
    if (!rc && vqs_blob_end(&w))
        rc = vqs_seterr(w.err, "codec_save: %zu bytes", w.len);
    if (rc) {
        free(w.p);
        return rc;
    }
    *blob = w.p;
    *len = w.len;
    return 0;
}

int vqs_codec_load(const void *blob, size_t len, vqs_codec **out)
{
    if (!blob || !out)
        return vqs_seterr(VQS_EINVAL, "codec_load: NULL argument");
    *out = NULL;
    vqs_rbuf r;
    int rc = vqs_blob_open(blob, len, BLOB_MAGIC, BLOB_VERSION, "codec blob", &r, NULL);
    if (rc)
        return rc;
    uint64_t d, seed;
    uint32_t sl, beam, nst;
    char spec[MAX_STAGES * 33];
    if ((rc = vqs_rbuf_u64(&r, &d)) || (rc = vqs_rbuf_u32(&r, &sl)))
        return rc;
    if (sl == 0 || sl >= sizeof spec)
        return vqs_seterr(VQS_ECORRUPT, "codec blob: spec length %u", sl);
    if ((rc = vqs_rbuf_get(&r, spec, sl)))
        return rc;
    spec[sl] = '\0';
    if ((rc = vqs_rbuf_u64(&r, &seed)) || (rc = vqs_rbuf_u32(&r, &beam)) ||
        (rc = vqs_rbuf_u32(&r, &nst)))
        return rc;
    vqs_codec_opts o = {.seed = seed, .rvq_beam = (int)beam};
    vqs_codec *c;
    if ((rc = vqs_codec_create(spec, (size_t)d, &o, &c)))
        return vqs_seterr(VQS_ECORRUPT, "codec blob: spec '%s' for d = %llu: %s", spec,
                          (unsigned long long)d, vqs_errdetail());
    if ((int)nst != c->nstages) {
        vqs_codec_free(c);
        return vqs_seterr(VQS_ECORRUPT, "codec blob: %u stages for spec '%s'", nst, spec);
    }
    for (int i = 0; i < c->nstages; i++) {
        uint32_t pl;
        if ((rc = vqs_rbuf_u32(&r, &pl)))
            break;
        if (pl > r.len - r.off) {
            rc = vqs_seterr(VQS_ECORRUPT, "codec blob: stage '%s' payload of %u bytes, %zu left",
                            c->st[i].token, pl, r.len - r.off);
            break;
        }
        vqs_rbuf sub;
        if ((rc = vqs_rbuf_sub(&r, pl, &sub)) || (rc = c->st[i].ops->load(&c->st[i], &sub)))
            break;
        if (sub.off != sub.len) {
            rc = vqs_seterr(VQS_ECORRUPT, "codec blob: stage '%s' left %zu bytes unread",
                            c->st[i].token, sub.len - sub.off);
            break;
        }
        c->st[i].trained = 1;
    }
    if (!rc && r.off != r.len)
        rc = vqs_seterr(VQS_ECORRUPT, "codec blob: %zu trailing bytes", r.len - r.off);
    if (rc) {
        vqs_codec_free(c);
        return rc == VQS_ECORRUPT || rc == VQS_ENOMEM ? rc : vqs_seterr(VQS_ECORRUPT, "codec blob: %s", vqs_errdetail());
    }
    *out = c;
    return 0;
}
