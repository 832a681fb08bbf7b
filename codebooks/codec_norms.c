/*
 * codec_norms.c: the reconstruction norms |offset + decode(code)| an index
 * divides cosine scores by (vqs_codec_norms, vqs_codebook.h).
 *
 * Design decisions:
 * - Reconstruction norms (vqs_codec_norms) are computed row by row, never
 *   through the batched decode, so a code's norm has the same bits in any
 *   batch (the reasons at "reconstruction norms" below).
 */
#include "codec_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- reconstruction norms ------------------------------------------------ */
/*
 * Why not vqs_codec_decode and a norm: the index derives one factor per code
 * and must derive the same one when the codes are re-added in another
 * process in other batches (a collection reopened from LMDB); measured with
 * OpenBLAS, decoding ROT,SQ8 in batches of 1..40 rows changed the last bits
 * of up to a third of the values against one batch of 3,000. Quantizer
 * decodes are row by row; only the transforms' sgemm is not, so the
 * transforms are either folded into per-offset constants (isometries) or
 * reversed one row per call (the same call shape every time).
 */

struct vqs_codec_norms {
    const vqs_codec *c;
    size_t noff;  /* offsets (1 when none were given: a zero offset) */
    size_t dq;    /* the quantizer's dimension */
    int iso;      /* every transform's reverse is an isometry */
    float *u;     /* iso: noff * dq, B^T (o_j + m) */
    double *s;    /* iso: noff, |o_j + m|^2 */
    float *off;   /* !iso: noff * d copies of the offsets, or NULL (zero) */
};

void vqs_codec_norms_free(vqs_codec_norms *h)
{
    if (!h)
        return;
    free(h->u);
    free(h->s);
    free(h->off);
    free(h);
}

size_t vqs_codec_norms_bytes(const vqs_codec_norms *h)
{
    if (!h)
        return 0;
    size_t b = sizeof *h;
    if (h->iso)
        b += h->noff * (h->dq * sizeof(float) + sizeof(double));
    else if (h->off)
        b += h->noff * h->c->d * sizeof(float);
    return b;
}

/* y (the quantizer's space) back through the transforms, one row per call:
 * x (d) written; a, b: max_dim scratch each. */
static void reverse_row(const vqs_codec *c, const float *y, float *x, float *a, float *b)
{
    const float *cur = y;
    for (int i = c->nstages - 2; i >= 0; i--) {
        float *dst = i == 0 ? x : (cur == a ? b : a);
        c->st[i].ops->reverse(&c->st[i], 1, cur, dst);
        cur = dst;
    }
    if (c->nstages == 1)
        memcpy(x, y, sizeof(float) * c->d);
}

int vqs_codec_norms_create(const vqs_codec *c, size_t noff, const float *offsets,
                           vqs_codec_norms **out)
{
    if (!out)
        return vqs_seterr(VQS_EINVAL, "codec_norms_create: NULL argument");
    *out = NULL;
    if (!c || (noff && !offsets))
        return vqs_seterr(VQS_EINVAL, "codec_norms_create: NULL argument");
    if (!vqs_codec_is_trained(c))
        return vqs_seterr(VQS_EINVAL, "codec_norms_create: '%s' is not trained", c->spec);
    vqs_codec_norms *h = calloc(1, sizeof *h);
    if (!h)
        return vqs_seterr(VQS_ENOMEM, "codec_norms_create");
    h->c = c;
    h->noff = noff ? noff : 1;
    h->dq = quantizer(c)->d_in;
    h->iso = 1;
    for (int i = 0; i + 1 < c->nstages; i++)
        if (!c->st[i].ops->adjoint || c->st[i].ops->adjoint(&c->st[i], NULL, NULL) != 0)
            h->iso = 0;
    size_t d = c->d, md = vqs_codec_max_dim(c);
    int rc = 0;
    float *m = NULL, *v = NULL, *a = NULL, *b = NULL;
    if (!h->iso) {
        if (noff && !(h->off = malloc(sizeof(float) * noff * d)))
            goto nomem;
        if (noff)
            memcpy(h->off, offsets, sizeof(float) * noff * d);
        *out = h;
        return 0;
    }
    h->u = malloc(sizeof(float) * h->noff * h->dq);
    h->s = malloc(sizeof(double) * h->noff);
    m = calloc(md, sizeof(float));
    v = malloc(sizeof(float) * md);
    a = malloc(sizeof(float) * md);
    b = malloc(sizeof(float) * md);
    if (!h->u || !h->s || !m || !v || !a || !b)
        goto nomem;
    /* m: the reverse of y = 0 (the transforms' means, carried through) */
    memset(a, 0, sizeof(float) * md);
    reverse_row(c, a, m, v, b);
    for (size_t j = 0; j < h->noff; j++) {
        double s2 = 0;
        for (size_t t = 0; t < d; t++) {
            v[t] = (noff ? offsets[j * d + t] : 0.0f) + m[t];
            s2 += (double)v[t] * v[t];
        }
        h->s[j] = s2;
        /* B^T v = B_k^T ... B_1^T v: the adjoints in forward order */
        float *cur = v;
        for (int i = 0; i + 1 < c->nstages; i++) {
            float *dst = cur == a ? b : a;
            c->st[i].ops->adjoint(&c->st[i], cur, dst);
            cur = dst;
        }
        memcpy(h->u + j * h->dq, cur, sizeof(float) * h->dq);
    }
    goto done;
nomem:
    rc = vqs_seterr(VQS_ENOMEM, "codec_norms_create: %zu offsets", noff);
done:
    free(m);
    free(v);
    free(a);
    free(b);
    if (rc)
        vqs_codec_norms_free(h);
    else
        *out = h;
    return rc;
}

typedef struct norms_job {
    const vqs_codec_norms *h;
    size_t n, stride;
    const uint8_t *codes;
    const uint32_t *which;
    float *norms;
} norms_job;

static int norms_task(void *ctx, size_t t, int tid)
{
    (void)tid;
    const norms_job *J = ctx;
    const vqs_codec_norms *h = J->h;
    const vqs_codec *c = h->c;
    const vqs_stage *q = quantizer(c);
    size_t i0 = t * ROW_CHUNK, n = J->n - i0 < ROW_CHUNK ? J->n - i0 : ROW_CHUNK;
    size_t d = c->d, dq = h->dq, md = vqs_codec_max_dim(c);
    float *y = malloc(sizeof(float) * (h->iso ? dq : dq + 3 * md));
    if (!y)
        return vqs_seterr(VQS_ENOMEM, "codec_norms_compute");
    for (size_t i = i0; i < i0 + n; i++) {
        size_t j = J->which ? J->which[i] : 0;
        q->ops->decode(q, 1, J->codes + i * J->stride, y);
        double s2 = 0;
        if (h->iso) {
            const float *u = h->u + j * dq;
            double uy = 0, yy = 0;
            for (size_t k = 0; k < dq; k++) {
                uy += (double)u[k] * y[k];
                yy += (double)y[k] * y[k];
            }
            s2 = h->s[j] + 2 * uy + yy;
        } else {
            float *x = y + dq, *a = x + md, *b = a + md;
            reverse_row(c, y, x, a, b);
            const float *o = h->off ? h->off + j * d : NULL;
            for (size_t k = 0; k < d; k++) {
                double e = (double)x[k] + (o ? o[k] : 0.0f);
                s2 += e * e;
            }
        }
        J->norms[i] = (float)sqrt(s2 > 0 ? s2 : 0);
    }
    free(y);
    return 0;
}

int vqs_codec_norms_compute(const vqs_codec_norms *h, size_t n, const uint8_t *codes,
                            size_t stride, const uint32_t *which, float *norms)
{
    if (!h || (n && (!codes || !norms)))
        return vqs_seterr(VQS_EINVAL, "codec_norms_compute: NULL argument");
    if (stride < quantizer(h->c)->code_size)
        return vqs_seterr(VQS_EINVAL, "codec_norms_compute: stride %zu below the code size %zu",
                          stride, quantizer(h->c)->code_size);
    for (size_t i = 0; which && i < n; i++)
        if (which[i] >= h->noff)
            return vqs_seterr(VQS_ERANGE, "codec_norms_compute: row %zu: offset %u, there are %zu",
                              i, which[i], h->noff);
    if (n == 0)
        return 0;
    norms_job J = {h, n, stride, codes, which, norms};
    int nt = h->c->o.nthreads > 0 ? h->c->o.nthreads : vqs_default_threads();
    return vqs_parallel_for(nt, (n + ROW_CHUNK - 1) / ROW_CHUNK, norms_task, &J);
}
