/*
 * codec.c: the codec pipeline: spec parsing, training stage by stage,
 * multithreaded encode/decode over rows, prepared queries, and the
 * serialised blob.
 *
 * Design decisions:
 * - A codec is an array of stages behind one small vtable
 *   (codebook_internal.h), as FAISS composes VectorTransforms in front of a
 *   Quantizer. Rejected: one big switch over codec kinds in every function
 *   (Redis vector sets does this with three quantizers; with eight families
 *   and four transforms the switch would be everywhere).
 * - Parallelism lives here, not in the stages: encode/decode split rows into
 *   chunks across threads, and each stage function is single-threaded and
 *   reentrant. Training is the exception (k-means is parallel inside).
 * - Prepared queries: L2 maps the query like the data (apply), so scores
 *   are distances in the quantizer's space. IP maps it by each transform's
 *   ip_query (the transpose of the decoder's linear map, no mean
 *   subtraction) and adds the constant <q, mean> to every score (in the
 *   kernel view: to bias, or to cst for BIN), so an IP score is
 *   <q, decode(code)> for every spec, PCA included. Rejected: FAISS's
 *   way, the query through apply like the data, which for PCA subtracts the
 *   mean from the query too and adds -<A mean, y> to each code's score: a
 *   term that varies per vector (sts15k, cosine, PCA384,SQfp16: recall@10
 *   0.836 against 0.976; IVF64,PCA384,SQfp16: 0.917 against 0.979).
 * - Blob: "VQSCODEC", u32 format version, u64 d, spec string, the options
 *   that affect decoding, then per stage (u32 payload length, payload), then
 *   CRC-32C of all previous bytes. A reader refuses a newer version rather
 *   than guessing. Rejected: a self-describing format (JSON/CBOR) - the
 *   payloads are float arrays and a checksum plus explicit lengths is what
 *   catches damage.
 * - Reconstruction norms (vqs_codec_norms) are computed row by row, never
 *   through the batched decode, so a code's norm has the same bits in any
 *   batch (the reasons at "reconstruction norms" below).
 */
#define _GNU_SOURCE
#include "codebook_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOB_MAGIC "VQSCODEC"
#define BLOB_VERSION 1u
#define MAX_STAGES 8

struct vqs_codec {
    vqs_codec_opts o;
    size_t d;
    char *spec; /* canonical */
    int nstages;
    vqs_stage st[MAX_STAGES];
};

struct vqs_codec_query {
    const vqs_codec *c;
    vqs_metric m;
    float ipc;      /* IP: constant added to every score (sum of <stage input, mean>) */
    void *state;
    float *scratch; /* 2 * max_dim floats for the transforms (reset) */
};

/* ---- spec ---------------------------------------------------------------- */

int vqs_spec_parse_mx(const char *p, size_t *M, size_t *nbits)
{
    if (!isdigit((unsigned char)*p))
        return -1;
    char *e;
    unsigned long long m = strtoull(p, &e, 10);
    unsigned long long b = 8;
    if (*e == 'x') {
        if (!isdigit((unsigned char)e[1]))
            return -1;
        b = strtoull(e + 1, &e, 10);
    }
    if (*e != '\0' || m > (1u << 20) || b > 64)
        return -1;
    *M = (size_t)m;
    *nbits = (size_t)b;
    return 0;
}


typedef int (*stage_ctor)(const char *tok, const char *next, vqs_stage *s);
static const stage_ctor ctors[] = {vqs_stage_transform_new, vqs_stage_sq_new, vqs_stage_bin_new,
                                   vqs_stage_pq_new, vqs_stage_rvq_new};

static void destroy_stages(vqs_codec *c)
{
    for (int i = 0; i < c->nstages; i++)
        if (c->st[i].ops && c->st[i].ops->destroy)
            c->st[i].ops->destroy(&c->st[i]);
    c->nstages = 0;
}

void vqs_codec_free(vqs_codec *c)
{
    if (!c)
        return;
    destroy_stages(c);
    free(c->spec);
    free(c);
}

/* Splits spec into trimmed tokens (at most MAX_STAGES). */
static int split_spec(const char *spec, char tok[MAX_STAGES][32], int *ntok)
{
    int n = 0;
    const char *p = spec;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len && isspace((unsigned char)*p)) {
            p++;
            len--;
        }
        while (len && isspace((unsigned char)p[len - 1]))
            len--;
        if (len == 0)
            return vqs_seterr(VQS_ESPEC, "spec '%s': empty token", spec);
        if (len >= 32)
            return vqs_seterr(VQS_ESPEC, "spec '%s': token '%.*s' too long", spec, (int)len, p);
        if (n == MAX_STAGES)
            return vqs_seterr(VQS_ESPEC, "spec '%s': more than %d stages", spec, MAX_STAGES);
        memcpy(tok[n], p, len);
        tok[n][len] = '\0';
        n++;
        if (!e)
            break;
        p = e + 1;
    }
    *ntok = n;
    return 0;
}

static int build_stages(vqs_codec *c, const char *spec)
{
    char tok[MAX_STAGES][32];
    int ntok = 0, rc;
    if ((rc = split_spec(spec, tok, &ntok)))
        return rc;
    size_t d = c->d;
    for (int i = 0; i < ntok; i++) {
        vqs_stage *s = &c->st[i];
        memset(s, 0, sizeof *s);
        memcpy(s->token, tok[i], sizeof s->token); /* tokens are < 32 bytes */
        s->d_in = d;
        rc = VQS_ENOTFOUND;
        for (size_t k = 0; k < sizeof ctors / sizeof ctors[0] && rc == VQS_ENOTFOUND; k++)
            rc = ctors[k](tok[i], i + 1 < ntok ? tok[i + 1] : NULL, s);
        if (rc == VQS_ENOTFOUND)
            return vqs_seterr(VQS_ESPEC, "spec '%s': unknown token '%s'", spec, tok[i]);
        if (rc)
            return rc;
        c->nstages = i + 1;
        if (i == 0 && !strcmp(tok[i], "Flat"))
            /* the alias reads "keep the transform's output in float32";
             * alone it would be an uncompressed index, whose name is SQfp32 */
            return vqs_seterr(VQS_ESPEC, "spec '%s': 'Flat' follows a transform (e.g. PCA256,Flat); "
                                         "a float32 codec alone is SQfp32", spec);
        if (s->ops->is_quantizer && i + 1 < ntok)
            return vqs_seterr(VQS_ESPEC, "spec '%s': '%s' is a quantizer and must be last (found '%s' after it)",
                              spec, tok[i], tok[i + 1]);
        if (!s->ops->is_quantizer && i + 1 == ntok)
            return vqs_seterr(VQS_ESPEC, "spec '%s': ends with the transform '%s'; a quantizer must follow",
                              spec, tok[i]);
        if (s->ops->is_quantizer)
            s->d_out = s->d_in;
        d = s->d_out;
    }
    /* the canonical spec: the stages' tokens (a constructor may have
     * resolved its own, e.g. PCA50% -> PCA384) */
    size_t len = 1; /* NUL */
    for (int i = 0; i < ntok; i++)
        len += strlen(c->st[i].token) + 1;
    if (!(c->spec = malloc(len)))
        return vqs_seterr(VQS_ENOMEM, "codec spec");
    c->spec[0] = '\0';
    for (int i = 0; i < ntok; i++) {
        if (i)
            strcat(c->spec, ",");
        strcat(c->spec, c->st[i].token);
    }
    return 0;
}

int vqs_codec_create(const char *spec, size_t d, const vqs_codec_opts *o, vqs_codec **out)
{
    if (!spec || !out)
        return vqs_seterr(VQS_EINVAL, "codec_create: NULL argument");
    *out = NULL;
    if (d == 0 || d > (1u << 20))
        return vqs_seterr(VQS_EINVAL, "codec_create: dimension %zu out of range", d);
    vqs_codec *c = calloc(1, sizeof *c);
    if (!c)
        return vqs_seterr(VQS_ENOMEM, "codec_create");
    if (o)
        c->o = *o;
    c->d = d;
    int rc = build_stages(c, spec);
    if (rc) {
        vqs_codec_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

size_t vqs_codec_d(const vqs_codec *c) { return c->d; }
size_t vqs_codec_code_size(const vqs_codec *c) { return c->st[c->nstages - 1].code_size; }
const char *vqs_codec_spec(const vqs_codec *c) { return c->spec; }
int vqs_codec_is_trained(const vqs_codec *c) { return c->st[c->nstages - 1].trained; }

static const vqs_stage *quantizer(const vqs_codec *c) { return &c->st[c->nstages - 1]; }

/* The options that change what training computes (not nthreads, verbose). */
static int same_training_opts(const vqs_codec_opts *a, const vqs_codec_opts *b)
{
    return a->seed == b->seed && a->kmeans_iters == b->kmeans_iters &&
           a->max_points_per_centroid == b->max_points_per_centroid && a->rvq_beam == b->rvq_beam &&
           a->sq_clip == b->sq_clip;
}

/* How many leading stages of c a trained donor can give (see
 * vqs_codec_train_from). */
static int reusable_stages(const vqs_codec *c, const vqs_codec *donor)
{
    if (!donor || donor->d != c->d || !same_training_opts(&c->o, &donor->o))
        return 0;
    int i = 0;
    for (; i < c->nstages && i < donor->nstages; i++) {
        const vqs_stage *a = &c->st[i], *b = &donor->st[i];
        if (!b->trained || a->ops != b->ops || strcmp(a->token, b->token) || a->d_in != b->d_in ||
            a->d_out != b->d_out)
            break;
        if (a->ops->uses_next &&
            (i + 1 >= c->nstages || i + 1 >= donor->nstages || strcmp(c->st[i + 1].token, donor->st[i + 1].token)))
            break;
        if (a->ops->is_quantizer && c->nstages != donor->nstages)
            break;
    }
    return i;
}

/* Stage i of c replaced by the trained stage i of donor: a fresh stage from
 * the constructor (c's stage may hold an earlier training), then the donor's
 * payload through the stage's own save and load, so the copy is exact. */
static int copy_stage(vqs_codec *c, int i, const vqs_codec *donor)
{
    vqs_stage *s = &c->st[i];
    const vqs_stage *from = &donor->st[i];
    char tok[32];
    memcpy(tok, s->token, sizeof tok);
    size_t d_in = s->d_in;
    if (s->ops && s->ops->destroy)
        s->ops->destroy(s);
    memset(s, 0, sizeof *s);
    memcpy(s->token, tok, sizeof tok);
    s->d_in = d_in;
    int rc = VQS_ENOTFOUND;
    for (size_t k = 0; k < sizeof ctors / sizeof ctors[0] && rc == VQS_ENOTFOUND; k++)
        rc = ctors[k](tok, i + 1 < c->nstages ? c->st[i + 1].token : NULL, s);
    if (rc) /* the token was parsed before: only ENOMEM can get here */
        return rc == VQS_ENOTFOUND ? vqs_seterr(VQS_ESPEC, "codec: token '%s'", tok) : rc;
    if (s->ops->is_quantizer)
        s->d_out = s->d_in;
    vqs_wbuf w = {0};
    rc = from->ops->save(from, &w);
    if (!rc && w.err)
        rc = vqs_seterr(w.err, "codec_train_from: stage '%s'", tok);
    if (!rc) {
        vqs_rbuf r = {w.p, w.len, 0, "codec blob"};
        rc = s->ops->load(s, &r);
        if (!rc && r.off != r.len)
            rc = vqs_seterr(VQS_ECORRUPT, "codec_train_from: stage '%s' left %zu bytes", tok, r.len - r.off);
    }
    free(w.p);
    return rc;
}

static int train_stages(vqs_codec *c, const vqs_codec *donor, size_t n, const float *x, int *reused)
{
    if (reused)
        *reused = 0;
    if (!c || (n && !x))
        return vqs_seterr(VQS_EINVAL, "codec_train: NULL argument");
    size_t bad = vqs_first_nonfinite(x, n * c->d);
    if (bad < n * c->d)
        return vqs_seterr(VQS_ENONFINITE, "codec_train: row %zu, column %zu is not finite",
                          bad / c->d, bad % c->d);
    int reuse = reusable_stages(c, donor);
    const float *cur = x;
    float *buf = NULL;
    int rc = 0;
    for (int i = 0; i < c->nstages; i++) {
        vqs_stage *s = &c->st[i];
        s->trained = 0;
        double t0 = vqs_now();
        if ((rc = i < reuse ? copy_stage(c, i, donor) : s->ops->train(s, n, cur, &c->o)))
            break;
        s->trained = 1;
        if (c->o.verbose)
            fprintf(stderr, "vqs codec: %s %s (%zu -> %zu) on %zu vectors in %.2f s\n",
                    i < reuse ? "copied the trained" : "trained", s->token, s->d_in, s->d_out, n,
                    vqs_now() - t0);
        if (i + 1 == reuse && reused)
            *reused = reuse;
        if (!s->ops->is_quantizer && reuse < c->nstages) { /* a later stage trains */
            float *nb = malloc(sizeof(float) * (n ? n : 1) * s->d_out);
            if (!nb) {
                rc = vqs_seterr(VQS_ENOMEM, "codec_train: %zu x %zu floats", n, s->d_out);
                break;
            }
            s->ops->apply(s, n, cur, nb);
            free(buf);
            buf = nb;
            cur = buf;
        }
    }
    free(buf);
    return rc;
}

int vqs_codec_train(vqs_codec *c, size_t n, const float *x) { return train_stages(c, NULL, n, x, NULL); }

int vqs_codec_train_from(vqs_codec *c, const vqs_codec *donor, size_t n, const float *x, int *reused)
{
    return train_stages(c, donor, n, x, reused);
}

/* ---- encode / decode over threads ----------------------------------------- */

#define ROW_CHUNK 1024

typedef struct rows_job {
    const vqs_codec *c;
    size_t n;
    const float *x;
    const uint8_t *codes_in;
    uint8_t *codes;
    float *out;
    float **tmp; /* per thread: 2 * ROW_CHUNK * maxd */
} rows_job;

static size_t max_dim(const vqs_codec *c)
{
    size_t m = c->d;
    for (int i = 0; i < c->nstages; i++)
        if (c->st[i].d_out > m)
            m = c->st[i].d_out;
    return m;
}

/* One query (d) -> the quantizer's query for inner products: every
 * transform's ip_query (B^T q, without apply's mean subtraction), the
 * constants <stage input, mean> summed into *cst. Then <q, decode(code)> =
 * <returned, quantizer's decode(code)> + *cst. */
static const float *forward_ip(const vqs_codec *c, const float *q, float *a, float *b, double *cst)
{
    const float *cur = q;
    *cst = 0;
    for (int i = 0; i + 1 < c->nstages; i++) {
        const vqs_stage *s = &c->st[i];
        float *dst = cur == a ? b : a;
        if (s->ops->ip_query)
            *cst += s->ops->ip_query(s, cur, dst);
        else
            s->ops->apply(s, 1, cur, dst);
        cur = dst;
    }
    return cur;
}

/* x (d) -> quantizer input, through the transforms; returns the buffer */
static const float *forward(const vqs_codec *c, size_t n, const float *x, float *a, float *b)
{
    const float *cur = x;
    for (int i = 0; i + 1 < c->nstages; i++) {
        float *dst = cur == a ? b : a;
        c->st[i].ops->apply(&c->st[i], n, cur, dst);
        cur = dst;
    }
    return cur;
}

static int encode_task(void *ctx, size_t t, int tid)
{
    rows_job *J = ctx;
    const vqs_codec *c = J->c;
    size_t i0 = t * ROW_CHUNK, n = J->n - i0 < ROW_CHUNK ? J->n - i0 : ROW_CHUNK;
    size_t md = max_dim(c);
    float *a = J->tmp[tid], *b = a + ROW_CHUNK * md;
    const float *in = forward(c, n, J->x + i0 * c->d, a, b);
    const vqs_stage *q = quantizer(c);
    return q->ops->encode(q, n, in, J->codes + i0 * q->code_size);
}

static int decode_task(void *ctx, size_t t, int tid)
{
    rows_job *J = ctx;
    const vqs_codec *c = J->c;
    size_t i0 = t * ROW_CHUNK, n = J->n - i0 < ROW_CHUNK ? J->n - i0 : ROW_CHUNK;
    size_t md = max_dim(c);
    float *a = J->tmp[tid], *b = a + ROW_CHUNK * md;
    const vqs_stage *q = quantizer(c);
    float *cur = c->nstages == 1 ? J->out + i0 * c->d : a;
    q->ops->decode(q, n, J->codes_in + i0 * q->code_size, cur);
    for (int i = c->nstages - 2; i >= 0; i--) {
        float *dst = i == 0 ? J->out + i0 * c->d : (cur == a ? b : a);
        c->st[i].ops->reverse(&c->st[i], n, cur, dst);
        cur = dst;
    }
    return 0;
}

static int run_rows(rows_job *J, vqs_task_fn fn)
{
    const vqs_codec *c = J->c;
    int nt = c->o.nthreads > 0 ? c->o.nthreads : vqs_default_threads();
    size_t ntask = (J->n + ROW_CHUNK - 1) / ROW_CHUNK;
    if ((size_t)nt > ntask)
        nt = ntask ? (int)ntask : 1;
    size_t md = max_dim(c);
    float **tmp = calloc((size_t)nt, sizeof *tmp);
    int rc = 0;
    if (!tmp)
        return vqs_seterr(VQS_ENOMEM, "codec: thread buffers");
    for (int t = 0; t < nt && !rc; t++)
        if (!(tmp[t] = malloc(sizeof(float) * 2 * ROW_CHUNK * md)))
            rc = vqs_seterr(VQS_ENOMEM, "codec: thread buffers");
    J->tmp = tmp;
    if (!rc)
        rc = vqs_parallel_for(nt, ntask, fn, J);
    for (int t = 0; t < nt; t++)
        free(tmp[t]);
    free(tmp);
    return rc;
}

int vqs_codec_encode(const vqs_codec *c, size_t n, const float *x, uint8_t *codes)
{
    if (!c || (n && (!x || !codes)))
        return vqs_seterr(VQS_EINVAL, "codec_encode: NULL argument");
    if (!vqs_codec_is_trained(c))
        return vqs_seterr(VQS_EINVAL, "codec_encode: '%s' is not trained", c->spec);
    if (n == 0)
        return 0;
    rows_job J = {.c = c, .n = n, .x = x, .codes = codes};
    return run_rows(&J, encode_task);
}

int vqs_codec_decode(const vqs_codec *c, size_t n, const uint8_t *codes, float *x)
{
    if (!c || (n && (!x || !codes)))
        return vqs_seterr(VQS_EINVAL, "codec_decode: NULL argument");
    if (!vqs_codec_is_trained(c))
        return vqs_seterr(VQS_EINVAL, "codec_decode: '%s' is not trained", c->spec);
    if (n == 0)
        return 0;
    rows_job J = {.c = c, .n = n, .codes_in = codes, .out = x};
    return run_rows(&J, decode_task);
}

/* ---- queries ------------------------------------------------------------- */

int vqs_codec_query_create(const vqs_codec *c, vqs_metric m, const float *q,
                           vqs_codec_query **out)
{
    if (!c || !q || !out)
        return vqs_seterr(VQS_EINVAL, "codec_query_create: NULL argument");
    *out = NULL;
    if (m != VQS_METRIC_L2 && m != VQS_METRIC_IP)
        return vqs_seterr(VQS_EINVAL, "codec query: metric must be l2 or ip (cosine is ip on normalised vectors)");
    if (!vqs_codec_is_trained(c))
        return vqs_seterr(VQS_EINVAL, "codec query: '%s' is not trained", c->spec);
    size_t md = max_dim(c);
    vqs_codec_query *qq = calloc(1, sizeof *qq);
    const vqs_stage *s = quantizer(c);
    size_t qs = s->ops->query_size(s);
    void *state = aligned_alloc(64, (qs + 63) / 64 * 64 + 64);
    float *a = c->nstages > 1 ? malloc(sizeof(float) * md * 2) : NULL;
    if (!qq || !state || (c->nstages > 1 && !a)) {
        free(a);
        free(qq);
        free(state);
        return vqs_seterr(VQS_ENOMEM, "codec query");
    }
    qq->c = c;
    qq->m = m;
    qq->state = state;
    qq->scratch = a;
    vqs_codec_query_reset(qq, q);
    *out = qq;
    return 0;
}

int vqs_codec_query_reset(vqs_codec_query *qq, const float *q)
{
    if (!qq || !q)
        return vqs_seterr(VQS_EINVAL, "codec_query_reset: NULL argument");
    const vqs_codec *c = qq->c;
    const vqs_stage *s = quantizer(c);
    const float *in = q;
    double cst = 0;
    if (c->nstages > 1 && qq->m == VQS_METRIC_IP)
        in = forward_ip(c, q, qq->scratch, qq->scratch + max_dim(c), &cst);
    else if (c->nstages > 1)
        in = forward(c, 1, q, qq->scratch, qq->scratch + max_dim(c));
    qq->ipc = (float)cst;
    s->ops->query_prepare(s, qq->m, in, qq->state);
    return 0;
}

int vqs_codec_query_view(const vqs_codec_query *q, vqs_codec_view *v)
{
    if (!q || !v)
        return vqs_seterr(VQS_EINVAL, "codec_query_view: NULL argument");
    memset(v, 0, sizeof *v);
    v->kind = VQS_VIEW_NONE;
    v->l2 = q->m == VQS_METRIC_L2;
    const vqs_stage *s = quantizer(q->c);
    if (s->ops->query_view)
        s->ops->query_view(s, q->state, v);
    if (q->m == VQS_METRIC_IP && v->kind == VQS_VIEW_BIN)
        v->cst += q->ipc; /* the BIN form has no bias; its IP score is cst + estimate */
    else if (q->m == VQS_METRIC_IP)
        v->bias += q->ipc;
    return 0;
}

int vqs_codec_query_score(const vqs_codec_query *q, size_t n, const uint8_t *codes, float *out)
{
    if (!q || (n && (!codes || !out)))
        return vqs_seterr(VQS_EINVAL, "codec_query_score: NULL argument");
    const vqs_stage *s = quantizer(q->c);
    s->ops->query_score(s, q->state, n, codes, out);
    if (q->m == VQS_METRIC_IP && q->ipc != 0)
        for (size_t i = 0; i < n; i++)
            out[i] += q->ipc;
    return 0;
}

void vqs_codec_query_free(vqs_codec_query *q)
{
    if (!q)
        return;
    free(q->state);
    free(q->scratch);
    free(q);
}

int vqs_codec_pq_info(const vqs_codec *c, size_t *M, size_t *nbits, size_t *dsub,
                      const float **centroids)
{
    if (!c || !M || !nbits || !dsub || !centroids)
        return vqs_seterr(VQS_EINVAL, "codec_pq_info: NULL argument");
    if (c->nstages != 1 || vqs_stage_pq_info(&c->st[0], M, nbits, dsub, centroids) != 0)
        return vqs_seterr(VQS_ENOTFOUND, "codec '%s' is not a single trained PQ", c->spec);
    return 0;
}

int vqs_codec_pca_info(const vqs_codec *c, const float **ev, size_t *n, double *retained)
{
    for (int i = 0; i < c->nstages; i++)
        if (vqs_stage_pca_info(&c->st[i], ev, n, retained) == 0)
            return 0;
    return vqs_seterr(VQS_ENOTFOUND, "codec '%s' has no trained PCA stage", c->spec);
}

/* ---- blob ---------------------------------------------------------------- */

int vqs_codec_save(const vqs_codec *c, void **blob, size_t *len)
{
    if (!c || !blob || !len)
        return vqs_seterr(VQS_EINVAL, "codec_save: NULL argument");
    for (int i = 0; i < c->nstages; i++)
        if (!c->st[i].trained)
            return vqs_seterr(VQS_EINVAL, "codec_save: stage '%s' is not trained", c->st[i].token);
    vqs_wbuf w = {0};
    vqs_wbuf_put(&w, BLOB_MAGIC, 8);
    vqs_wbuf_u32(&w, BLOB_VERSION);
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
    if (!rc && !w.err)
        vqs_wbuf_u32(&w, vqs_crc32c(0, w.p, w.len));
    if (!rc && w.err)
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
    const uint8_t *p = blob;
    if (len < 8 + 4 + 4 || memcmp(p, BLOB_MAGIC, 8) != 0)
        return vqs_seterr(VQS_ECORRUPT, "codec blob: %s", len < 16 ? "too short" : "bad magic");
    vqs_rbuf r = {p, len - 4, 8, "codec blob"};
    uint32_t ver;
    vqs_rbuf_u32(&r, &ver);
    if (ver > BLOB_VERSION || ver == 0)
        return vqs_seterr(VQS_EVERSION, "codec blob: format version %u (this build reads 1..%u)",
                          ver, BLOB_VERSION);
    uint32_t crc = (uint32_t)p[len - 4] | (uint32_t)p[len - 3] << 8 | (uint32_t)p[len - 2] << 16 |
                   (uint32_t)p[len - 1] << 24;
    if (vqs_crc32c(0, p, len - 4) != crc)
        return vqs_seterr(VQS_ECORRUPT, "codec blob: checksum mismatch (%zu bytes)", len);
    uint64_t d, seed;
    uint32_t sl, beam, nst;
    char spec[MAX_STAGES * 33];
    int rc;
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
        vqs_rbuf sub = {r.p + r.off, pl, 0, r.what};
        if ((rc = c->st[i].ops->load(&c->st[i], &sub)))
            break;
        if (sub.off != sub.len) {
            rc = vqs_seterr(VQS_ECORRUPT, "codec blob: stage '%s' left %zu bytes unread",
                            c->st[i].token, sub.len - sub.off);
            break;
        }
        c->st[i].trained = 1;
        r.off += pl;
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
    size_t d = c->d, md = max_dim(c);
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
    size_t d = c->d, dq = h->dq, md = max_dim(c);
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

/* ---- reconstruction error ------------------------------------------------ */

int vqs_codec_error_of(size_t n, size_t d, const float *x, const float *xr, vqs_codec_error *e)
{
    if (!e || (n && d && (!x || !xr)))
        return vqs_seterr(VQS_EINVAL, "codec_error_of: NULL argument");
    memset(e, 0, sizeof *e);
    if (n == 0 || d == 0)
        return vqs_seterr(VQS_EINVAL, "codec_error_of: no rows");
    double *mean = calloc(d, sizeof(double));
    if (!mean)
        return vqs_seterr(VQS_ENOMEM, "codec_error_of: %zu dims", d);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            mean[j] += x[i * d + j];
    for (size_t j = 0; j < d; j++)
        mean[j] /= (double)n;
    double err = 0, var = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            double v = x[i * d + j], r = v - xr[i * d + j], c = v - mean[j];
            err += r * r;
            var += c * c;
        }
    free(mean);
    e->mse = err / (double)n;
    e->variance = var / (double)n;
    e->rel_mse = var > 0 ? err / var : (err > 0 ? INFINITY : 0);
    e->sqnr_db = err > 0 ? (var > 0 ? 10 * log10(var / err) : -INFINITY) : INFINITY;
    return 0;
}
