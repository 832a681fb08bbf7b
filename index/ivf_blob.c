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
 */
#define _GNU_SOURCE
#include "ivf_internal.h"

#include <stdlib.h>
#include <string.h>

#define IXT_MAGIC "VQSIXT\0\1"
#define IXT_VERSION 1u

static void put(uint8_t **w, const void *p, size_t n)
{
    memcpy(*w, p, n);
    *w += n;
}

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
    size_t total = 8 + 4 + 4 + 8 + 4 + 4 + sl + 8 + sizeof(float) * nc + 8 + cl + 8 + rl + 4;
    uint8_t *b = malloc(total), *w = b;
    if (!b) {
        free(cb);
        free(rb);
        return vqs_seterr(VQS_ENOMEM, "index_save_trained: %zu bytes", total);
    }
    uint32_t u32;
    uint64_t u64;
    put(&w, IXT_MAGIC, 8);
    u32 = IXT_VERSION, put(&w, &u32, 4);
    u32 = (uint32_t)ix->metric, put(&w, &u32, 4);
    u64 = ix->d, put(&w, &u64, 8);
    u32 = (uint32_t)ix->by_residual, put(&w, &u32, 4);
    u32 = (uint32_t)sl, put(&w, &u32, 4);
    put(&w, ix->spec, sl);
    u64 = ix->ivf ? ix->nlist : 0, put(&w, &u64, 8);
    put(&w, ix->centroids ? (const void *)ix->centroids : "", sizeof(float) * nc);
    u64 = cl, put(&w, &u64, 8);
    put(&w, cb, cl);
    u64 = rl, put(&w, &u64, 8);
    put(&w, rb ? rb : "", rl);
    u32 = vqs_crc32c(0, b, (size_t)(w - b));
    put(&w, &u32, 4);
    free(cb);
    free(rb);
    *blob = b;
    *len = total;
    return 0;
}

typedef struct rd {
    const uint8_t *p;
    size_t left;
} rd;

static int take_bytes(rd *r, void *out, size_t n, const char *what)
{
    if (r->left < n)
        return vqs_seterr(VQS_ECORRUPT, "index blob: truncated in the %s", what);
    memcpy(out, r->p, n);
    r->p += n;
    r->left -= n;
    return 0;
}

int vqs_index_load_trained(const void *blob, size_t len, const vqs_index_opts *o, vqs_index **out)
{
    if (!blob || !out)
        return vqs_seterr(VQS_EINVAL, "index_load_trained: NULL argument");
    *out = NULL;
    const uint8_t *b = blob;
    if (len < 8 + 4 + 4 || memcmp(b, IXT_MAGIC, 6) != 0)
        return vqs_seterr(VQS_ECORRUPT, "index blob: %zu bytes, not a vqs trained-index blob", len);
    uint32_t ver, crc;
    memcpy(&ver, b + 8, 4);
    if (memcmp(b, IXT_MAGIC, 8) != 0 || ver != IXT_VERSION)
        return vqs_seterr(VQS_EVERSION, "index blob: format version %u, this vqs reads %u", ver,
                          IXT_VERSION);
    memcpy(&crc, b + len - 4, 4);
    if (vqs_crc32c(0, b, len - 4) != crc)
        return vqs_seterr(VQS_ECORRUPT, "index blob: checksum mismatch (%zu bytes)", len);
    rd r = {b + 12, len - 16};
    uint32_t metric = 0, byres = 0, sl = 0;
    uint64_t d = 0, nlist = 0, cl = 0, rl = 0;
    char spec[sizeof(((vqs_index *)0)->spec)];
    int rc;
    if ((rc = take_bytes(&r, &metric, 4, "metric")) || (rc = take_bytes(&r, &d, 8, "dimension")) ||
        (rc = take_bytes(&r, &byres, 4, "residual flag")) || (rc = take_bytes(&r, &sl, 4, "spec")))
        return rc;
    if (sl >= sizeof spec)
        return vqs_seterr(VQS_ECORRUPT, "index blob: spec length %u", sl);
    if ((rc = take_bytes(&r, spec, sl, "spec")) || (rc = take_bytes(&r, &nlist, 8, "list count")))
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
    if (nlist) {
        if (r.left / sizeof(float) / ix->d < nlist) {
            rc = vqs_seterr(VQS_ECORRUPT, "index blob: truncated in the centroids");
            goto fail;
        }
        if (!(ix->centroids = malloc(sizeof(float) * nlist * ix->d))) {
            rc = vqs_seterr(VQS_ENOMEM, "index blob: centroids");
            goto fail;
        }
        take_bytes(&r, ix->centroids, sizeof(float) * nlist * ix->d, "centroids");
    }
    for (int which = 0; which < 2; which++) {
        uint64_t *l = which ? &rl : &cl;
        if ((rc = take_bytes(&r, l, 8, "codec")))
            goto fail;
        if (*l > r.left) {
            rc = vqs_seterr(VQS_ECORRUPT, "index blob: truncated in the codec");
            goto fail;
        }
        vqs_codec *c = NULL;
        if (which == 1 && *l == 0 && !ix->rcodec)
            continue;
        if (which == 1 && !ix->rcodec) {
            rc = vqs_seterr(VQS_ECORRUPT, "index blob: refine codec does not match spec '%s'", spec);
            goto fail;
        }
        if ((rc = vqs_codec_load(r.p, (size_t)*l, &c)))
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
        r.p += *l;
        r.left -= (size_t)*l;
    }
    if (r.left != 0) {
        rc = vqs_seterr(VQS_ECORRUPT, "index blob: %zu bytes after the codecs", r.left);
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
