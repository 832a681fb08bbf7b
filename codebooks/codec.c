/*
 * codec.c: the codec pipeline: training stage by stage, multithreaded
 * encode/decode over rows and prepared queries (spec parsing, the blob and
 * reconstruction norms in codec_spec.c, codec_blob.c, codec_norms.c).
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
 * - One concern per file: the spec and the stage chain (codec_spec.c), the
 *   serialised blob (codec_blob.c), reconstruction norms (codec_norms.c);
 *   codec.c keeps the codec's life cycle, training, encode/decode over
 *   threads and prepared queries. codec_internal.h is what they share.
 */
#define _GNU_SOURCE
#include "codec_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vqs_codec_query {
    const vqs_codec *c;
    vqs_metric m;
    float ipc;      /* IP: constant added to every score (sum of <stage input, mean>) */
    void *state;
    float *scratch; /* 2 * max_dim floats for the transforms (reset) */
};

/* ---- codec ----------------------------------------------------------------- */

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
    c->o.reduce = NULL; /* a training's own (vqs_codec_train_over) */
    c->d = d;
    int rc = vqs_codec_build_stages(c, spec);
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
    int rc = vqs_codec_stage_new(tok, i + 1 < c->nstages ? c->st[i + 1].token : NULL, s);
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

/* Stage s trained on the rows cur (n * s->d_in): with a reducer, a stage
 * that cannot train on slices gets every participant's rows gathered and
 * trains on the whole set, the same on each (vqs_reducer). */
static int train_stage(const vqs_codec_opts *o, vqs_stage *s, size_t n, const float *cur, int rc)
{
    const vqs_reducer *R = o->reduce;
    if (!R || s->ops->trains_on_slices)
        return rc ? vqs_reduce_agree(R, rc) : s->ops->train(s, n, cur, o);
    size_t N = n, first = 0;
    if ((rc = vqs_reduce_layout(R, rc, n, &N, &first)))
        return rc;
    float *all = malloc(sizeof(float) * (N ? N : 1) * s->d_in);
    if (!all)
        rc = vqs_seterr(VQS_ENOMEM, "codec_train: %s gathers %zu x %zu floats", s->token, N, s->d_in);
    if ((rc = vqs_reduce_gather(R, rc, cur, n, sizeof(float) * s->d_in, all))) {
        free(all);
        return rc;
    }
    vqs_codec_opts one = *o;
    one.reduce = NULL;
    one.verbose = R->rank == 0 ? one.verbose : 0;
    rc = s->ops->train(s, N, all, &one);
    free(all);
    return rc;
}

static int train_stages(vqs_codec *c, const vqs_reducer *R, const vqs_codec *donor, size_t n, const float *x,
                        int *reused)
{
    if (reused)
        *reused = 0;
    if (!c || (n && !x))
        return vqs_seterr(VQS_EINVAL, "codec_train: NULL argument");
    R = R && R->size > 1 ? R : NULL;
    vqs_codec_opts o = c->o;
    o.reduce = R;
    size_t bad = vqs_first_nonfinite(x, n * c->d);
    int rc = bad < n * c->d ? vqs_seterr(VQS_ENONFINITE, "codec_train: row %zu, column %zu is not finite",
                                         bad / c->d, bad % c->d) : 0;
    if ((rc = vqs_reduce_agree(R, rc)))
        return rc;
    int reuse = reusable_stages(c, donor);
    const float *cur = x;
    float *buf = NULL;
    for (int i = 0; i < c->nstages; i++) {
        vqs_stage *s = &c->st[i];
        s->trained = 0;
        double t0 = vqs_now();
        rc = i < reuse ? copy_stage(c, i, donor) : train_stage(&o, s, n, cur, 0);
        if ((rc = vqs_reduce_agree(R, rc))) /* every participant trained it, or none goes on */
            break;
        s->trained = 1;
        if (c->o.verbose && (!R || R->rank == 0))
            fprintf(stderr, "vqs codec: %s %s (%zu -> %zu) on %zu vectors in %.2f s\n",
                    i < reuse ? "copied the trained" : "trained", s->token, s->d_in, s->d_out, n,
                    vqs_now() - t0);
        if (i + 1 == reuse && reused)
            *reused = reuse;
        if (!s->ops->is_quantizer && reuse < c->nstages) { /* a later stage trains */
            float *nb = malloc(sizeof(float) * (n ? n : 1) * s->d_out);
            if (!nb)
                rc = vqs_seterr(VQS_ENOMEM, "codec_train: %zu x %zu floats", n, s->d_out);
            if ((rc = vqs_reduce_agree(R, rc))) {
                free(nb);
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

int vqs_codec_train(vqs_codec *c, size_t n, const float *x) { return train_stages(c, NULL, NULL, n, x, NULL); }

int vqs_codec_train_over(vqs_codec *c, const vqs_reducer *R, const vqs_codec *donor, size_t n, const float *x,
                         int *reused)
{
    return train_stages(c, R, donor, n, x, reused);
}

int vqs_codec_train_from(vqs_codec *c, const vqs_codec *donor, size_t n, const float *x, int *reused)
{
    return train_stages(c, NULL, donor, n, x, reused);
}

size_t vqs_codec_max_dim(const vqs_codec *c)
{
    size_t m = c->d;
    for (int i = 0; i < c->nstages; i++)
        if (c->st[i].d_out > m)
            m = c->st[i].d_out;
    return m;
}

/* ---- encode / decode over threads ----------------------------------------- */

typedef struct rows_job {
    const vqs_codec *c;
    size_t n;
    const float *x;
    const uint8_t *codes_in;
    uint8_t *codes;
    float *out;
    float **tmp; /* per thread: 2 * ROW_CHUNK * maxd */
} rows_job;

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
    size_t md = vqs_codec_max_dim(c);
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
    size_t md = vqs_codec_max_dim(c);
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
    size_t md = vqs_codec_max_dim(c);
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
    size_t md = vqs_codec_max_dim(c);
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
        in = forward_ip(c, q, qq->scratch, qq->scratch + vqs_codec_max_dim(c), &cst);
    else if (c->nstages > 1)
        in = forward(c, 1, q, qq->scratch, qq->scratch + vqs_codec_max_dim(c));
    qq->ipc = (float)cst;
    s->ops->query_prepare(s, qq->m, in, qq->state);
    return 0;
}

size_t vqs_codec_query_dim(const vqs_codec *c) { return quantizer(c)->d_in; }

int vqs_codec_has_transform(const vqs_codec *c) { return c->nstages > 1; }

int vqs_codec_query_forward(const vqs_codec *c, vqs_metric m, size_t n, const float *q, float *out,
                            float *cst)
{
    if (!c || (n && (!q || !out || !cst)))
        return vqs_seterr(VQS_EINVAL, "codec_query_forward: NULL argument");
    if (m != VQS_METRIC_L2 && m != VQS_METRIC_IP)
        return vqs_seterr(VQS_EINVAL, "codec query: metric must be l2 or ip (cosine is ip on normalised vectors)");
    if (!vqs_codec_is_trained(c))
        return vqs_seterr(VQS_EINVAL, "codec query: '%s' is not trained", c->spec);
    size_t dq = vqs_codec_query_dim(c), md = vqs_codec_max_dim(c);
    if (n == 0)
        return 0;
    if (c->nstages == 1) {
        memcpy(out, q, sizeof(float) * n * dq);
        memset(cst, 0, sizeof(float) * n);
        return 0;
    }
    float *a = malloc(sizeof(float) * n * md * 2);
    double *cd = calloc(n, sizeof(double));
    if (!a || !cd) {
        free(a);
        free(cd);
        return vqs_seterr(VQS_ENOMEM, "codec query: %zu queries", n);
    }
    float *b = a + n * md;
    const float *cur = q;
    for (int i = 0; i + 1 < c->nstages; i++) {
        const vqs_stage *s = &c->st[i];
        float *dst = i + 2 == c->nstages ? out : cur == a ? b : a;
        if (m == VQS_METRIC_IP && s->ops->ip_query_rows) {
            s->ops->ip_query_rows(s, n, cur, dst, cd);
        } else if (m == VQS_METRIC_IP && s->ops->ip_query) {
            for (size_t r = 0; r < n; r++)
                cd[r] += s->ops->ip_query(s, cur + r * s->d_in, dst + r * s->d_out);
        } else {
            s->ops->apply(s, n, cur, dst);
        }
        cur = dst;
    }
    for (size_t r = 0; r < n; r++)
        cst[r] = (float)cd[r];
    free(a);
    free(cd);
    return 0;
}

int vqs_codec_query_reset_forwarded(vqs_codec_query *qq, const float *in, float cst)
{
    if (!qq || !in)
        return vqs_seterr(VQS_EINVAL, "codec_query_reset_forwarded: NULL argument");
    const vqs_stage *s = quantizer(qq->c);
    qq->ipc = qq->m == VQS_METRIC_IP ? cst : 0;
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
    if (vqs_stage_pq_info(quantizer(c), M, nbits, dsub, centroids) != 0)
        return vqs_seterr(VQS_ENOTFOUND, "codec '%s' does not end in a trained PQ", c->spec);
    return 0;
}

int vqs_codec_pca_info(const vqs_codec *c, const float **ev, size_t *n, double *retained)
{
    for (int i = 0; i < c->nstages; i++)
        if (vqs_stage_pca_info(&c->st[i], ev, n, retained) == 0)
            return 0;
    return vqs_seterr(VQS_ENOTFOUND, "codec '%s' has no trained PCA stage", c->spec);
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

/* The stage's token was accepted by its constructor (pq.c), which parsed it
 * with vqs_spec_parse_mx: parsing it again here cannot fail, and needs no
 * PQ internals. Rejected: a stage op for one family's shape. */
int vqs_codec_pq_shape(const vqs_codec *c, size_t *M, size_t *nbits)
{
    if (!c || !M || !nbits)
        return vqs_seterr(VQS_EINVAL, "codec_pq_shape: NULL argument");
    const vqs_stage *q = quantizer(c);
    if (strcmp(q->ops->family, "PQ") != 0 || vqs_spec_parse_mx(q->token + 2, M, nbits) != 0)
        return vqs_seterr(VQS_ENOTFOUND, "codec '%s' does not end in a PQ stage", c->spec);
    return 0;
}

int vqs_codec_sq_table_shape(const vqs_codec *c, size_t *d, size_t *nbits)
{
    if (!c || !d || !nbits)
        return vqs_seterr(VQS_EINVAL, "codec_sq_table_shape: NULL argument");
    const vqs_stage *q = quantizer(c);
    if (vqs_stage_sq_bits(q, nbits) != 0)
        return vqs_seterr(VQS_ENOTFOUND, "codec '%s' does not end in a 4- or 8-bit scalar quantizer", c->spec);
    *d = q->d_in;
    return 0;
}
