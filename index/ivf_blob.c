/*
 * ivf_blob.c: the trained state of an index as a blob
 * (vqs_index_save_trained, vqs_index_load_trained).
 *
 * Blob layout (little-endian, version 1):
 *   "VQSIXT\0\1"  8 bytes magic
 *   u32 version, u32 metric, u64 d, u32 by_residual, u32 spec length,
 *   spec bytes (no NUL), u64 nlist, nlist * d float32 centroids (IVF only),
 *   u64 codec blob length, codec blob (vqs_codec_save), u64 refine codec blob
 *   length (0: none), refine codec blob, u32 CRC-32C of everything before.
 * Only the trained state: ids and codes belong to the caller (the storage
 * layer keeps them as it likes and re-adds them with vqs_index_add_encoded).
 * The precomputed IVF-PQ tables are rebuilt on load (nlist * M * ksub
 * floats, derived data).
 * The magic, version and CRC are the common blob envelope (vqs_blob.h), the
 * rest its body. Blobs in existing collections were written in host byte
 * order, which on x86-64 is little-endian: these same bytes.
 * A magic whose last two bytes differ is now refused as not an index blob
 * (VQS_ECORRUPT) rather than as another version: the version is the u32.
 */
#define _GNU_SOURCE
#include "ivf_internal.h"

#include <stdlib.h>
#include <string.h>

#include "vqs_blob.h"

#define IXT_MAGIC "VQSIXT\0\1"
#define IXT_VERSION 1u

int vqs_index_save_trained(const vqs_index *ix, void **blob, size_t *len)
{
    if (!ix || !blob || !len)
        return vqs_seterr(VQS_EINVAL, "index_save_trained: NULL argument");
    *blob = NULL;
    *len = 0;
    if (!ix->trained)
        return vqs_seterr(VQS_EINVAL, "index_save_trained: index '%s' is not trained", ix->spec);
    void *cb = NULL, *rb = NULL;
    size_t cl = 0, rl = 0;
    int rc = vqs_codec_save(ix->codec, &cb, &cl);
    if (!rc && ix->rcodec)
        rc = vqs_codec_save(ix->rcodec, &rb, &rl);
    if (rc) {
        free(cb);
        return rc;
    }
    size_t sl = strlen(ix->spec), nc = ix->ivf ? ix->nlist * ix->d : 0;
    vqs_wbuf w = {0};
    vqs_blob_begin(&w, IXT_MAGIC, IXT_VERSION);
    vqs_wbuf_u32(&w, (uint32_t)ix->metric);
    vqs_wbuf_u64(&w, ix->d);
    vqs_wbuf_u32(&w, (uint32_t)ix->by_residual);
    vqs_wbuf_u32(&w, (uint32_t)sl);
    vqs_wbuf_put(&w, ix->spec, sl);
    vqs_wbuf_u64(&w, ix->ivf ? ix->nlist : 0);
    vqs_wbuf_f32(&w, ix->centroids, nc);
    vqs_wbuf_u64(&w, cl);
    vqs_wbuf_put(&w, cb, cl);
    vqs_wbuf_u64(&w, rl);
    vqs_wbuf_put(&w, rb, rl);
    free(cb);
    free(rb);
    if (vqs_blob_end(&w)) {
        free(w.p);
        return vqs_seterr(w.err, "index_save_trained: %zu bytes", w.len);
    }
    *blob = w.p;
    *len = w.len;
    return 0;
}

int vqs_index_load_trained(const void *blob, size_t len, const vqs_index_opts *o, vqs_index **out)
{
    if (!blob || !out)
        return vqs_seterr(VQS_EINVAL, "index_load_trained: NULL argument");
    *out = NULL;
    vqs_rbuf r;
    int rc = vqs_blob_open(blob, len, IXT_MAGIC, IXT_VERSION, "index blob", &r, NULL);
    if (rc)
        return rc;
    uint32_t metric = 0, byres = 0, sl = 0;
    uint64_t d = 0, nlist = 0;
    char spec[sizeof(((vqs_index *)0)->spec)];
    if ((rc = vqs_rbuf_u32(&r, &metric)) || (rc = vqs_rbuf_u64(&r, &d)) ||
        (rc = vqs_rbuf_u32(&r, &byres)) || (rc = vqs_rbuf_u32(&r, &sl)))
        return rc;
    if (sl >= sizeof spec)
        return vqs_seterr(VQS_ECORRUPT, "index blob: spec length %u", sl);
    if ((rc = vqs_rbuf_get(&r, spec, sl)) || (rc = vqs_rbuf_u64(&r, &nlist)))
        return rc;
    spec[sl] = 0;
    vqs_index_opts io = o ? *o : (vqs_index_opts){0};
    io.by_residual = byres ? VQS_RESIDUAL_ON : VQS_RESIDUAL_OFF;
    vqs_index *ix = NULL;
    if ((rc = vqs_index_create(spec, (size_t)d, (vqs_metric)metric, &io, &ix)))
        return vqs_seterr(VQS_ECORRUPT, "index blob: spec '%s', d %llu: %s", spec,
                          (unsigned long long)d, vqs_errdetail());
    if ((ix->ivf ? ix->nlist : 0) != nlist || ix->by_residual != (int)byres) {
        rc = vqs_seterr(VQS_ECORRUPT, "index blob: %llu lists for spec '%s'", (unsigned long long)nlist, spec);
        goto fail;
    }
    if (nlist) { /* nlist == ix->nlist: the size cannot overflow */
        if ((rc = vqs_rbuf_need(&r, sizeof(float) * nlist * ix->d, "the centroids")))
            goto fail;
        if (!(ix->centroids = malloc(sizeof(float) * nlist * ix->d))) {
            rc = vqs_seterr(VQS_ENOMEM, "index blob: centroids");
            goto fail;
        }
        vqs_rbuf_f32(&r, ix->centroids, nlist * ix->d);
    }
    for (int which = 0; which < 2; which++) { /* the codec, then the refine codec */
        uint64_t l;
        vqs_rbuf cb;
        if ((rc = vqs_rbuf_u64(&r, &l)))
            goto fail;
        if (l > r.len - r.off) {
            rc = vqs_seterr(VQS_ECORRUPT, "index blob: truncated in the codec");
            goto fail;
        }
        vqs_rbuf_sub(&r, (size_t)l, &cb); /* cannot fail now */
        vqs_codec *c = NULL;
        if (which == 1 && l == 0 && !ix->rcodec)
            continue;
        if (which == 1 && !ix->rcodec) {
            rc = vqs_seterr(VQS_ECORRUPT, "index blob: refine codec does not match spec '%s'", spec);
            goto fail;
        }
        if ((rc = vqs_codec_load(cb.p, cb.len, &c)))
            goto fail;
        if (vqs_codec_code_size(c) != vqs_codec_code_size(which ? ix->rcodec : ix->codec)) {
            vqs_codec_free(c);
            rc = vqs_seterr(VQS_ECORRUPT, "index blob: codec does not match spec '%s'", spec);
            goto fail;
        }
        if (which) {
            vqs_codec_free(ix->rcodec);
            ix->rcodec = c;
        } else {
            vqs_codec_free(ix->codec);
            ix->codec = c;
        }
    }
    if (r.off != r.len) {
        rc = vqs_seterr(VQS_ECORRUPT, "index blob: %zu bytes after the codecs", r.len - r.off);
        goto fail;
    }
    if ((rc = vqs_ivf_build_ptab(ix)) || (rc = vqs_ivf_prepare_norms(ix)))
        goto fail;
    ix->trained = 1;
    *out = ix;
    return 0;
fail:
    vqs_index_free(ix);
    return rc;
}
