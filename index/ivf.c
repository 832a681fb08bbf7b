/*
 * ivf.c: the compressed index (vqs_index in vqs_index.h): a codec, ids and
 * codes in lists, an optional IVF coarse partition, an optional refine copy,
 * and search through the SIMD kernels of index/kernels. This file: create,
 * free, the spec, the accessors, training and the helpers the other parts
 * share (ivf_internal.h names the parts).
 *
 * Design decisions:
 * - One code path for flat and IVF: a flat index is an IVF index with one
 *   list and no coarse step. A list holds its ids, its codes (fast-scan
 *   block layout or row after row) and, with a refine stage, the refine copy
 *   of each vector (float32 or a finer codec's code), all in the same order,
 *   so a (list, position) names a vector. Fast-scan layouts: PQ Mx4 always
 *   (blocks of 32, 4-bit tables in registers); PQ Mx8 in flat indexes on CPUs
 *   with AVX-512 VBMI (blocks of 64, 256-entry u8 tables in four registers).
 *   Elsewhere 8-bit codes are scanned with float tables (lut8).
 * - Residual encoding (IVF, default on): L2 codes x - c_list, so the query
 *   is prepared once per probed list (vqs_codec_query_reset: for PQ that is
 *   256 * d flops, next to scanning the list). For inner products no
 *   per-list query is needed: <q, c + r> = <q, c> + <q, r>, the first term is
 *   the coarse score. PQ without transforms (L2) skips the per-list
 *   preparation: FAISS's precomputed per-list tables (ptab, nlist * M *
 *   ksub floats, built when they fit in PTAB_MAX_BYTES).
 * - Cosine: vectors and queries are normalised and searched by inner
 *   product, but a code's reconstruction x^ (quantisation noise, and with
 *   PCA the energy outside the kept dimensions, different per vector) is not
 *   unit-norm, so <q, x^> favours long reconstructions. The score is <q, x^>
 *   / |x^| (bench/README.md: +0.1 to +8 points of recall@10 on real
 *   embeddings, on the same bytes). 1/|x^| is a float per vector next to the
 *   ids (nf), derived from the code whenever it is added
 *   (vqs_codec_norms: row by row, so fresh, reloaded and reopened indexes
 *   get the same bits; residual codes with their list's centroid), never
 *   stored: the codes on disk stay as they are. The block of kernel scores
 *   is multiplied by it before the heap. The fast scan prunes on quantised
 *   sums before any factor is known, so its threshold is divided by the
 *   list's extreme factor (nf_lo or nf_hi, whichever makes it looser) and
 *   the survivors' exact scores are multiplied: the results equal those of
 *   the float scan. Rejected: a 2-byte fp16 factor (fp16's spacing near 1 is
 *   2^-10, larger than the whole correction of 8-bit scalar codes);
 *   normalising the decoded vector inside the codec (the codecs
 *   score codes without decoding them). RVQ's norm byte is |x^|^2 for its L2
 *   score, unused by its inner product, so nothing is corrected twice; BIN's
 *   score estimates <q, x> rather than <q, x^>, and dividing it by |x^| too
 *   was measured to pay. A Refine(...) codec's re-scoring gets the same
 *   correction, its |x^| derived per candidate at search time.
 */
#define _GNU_SOURCE
#include "graph_internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- create ------------------------------------------------------------------ */

static int parse_spec(vqs_index *ix, const char *spec, char *cspec, size_t cap, char *rspec,
                      size_t rcap, vqs_graph_params *gp)
{
    const char *p = spec;
    while (*p == ' ')
        p++;
    if (!strncmp(p, "VAMANA", 6)) {
        size_t tl = strcspn(p, ",");
        int rc = vqs_graph_parse(p, tl, gp);
        if (rc)
            return rc;
        if (p[tl] == 0)
            return vqs_seterr(VQS_ESPEC, "'%s': VAMANA must be followed by a codec, e.g. VAMANA32,SQ8,RFlat", spec);
        ix->nlist = 1;
        p += tl + 1;
    } else if (!strncmp(p, "IVF", 3)) {
        char *end;
        unsigned long long nl = strtoull(p + 3, &end, 10);
        if (end == p + 3 || (*end != ',' && *end != 0) || nl < 1 || nl > (1u << 20))
            return vqs_seterr(VQS_ESPEC, "'%.*s': IVF needs a list count in 1..1048576, e.g. IVF1024",
                              (int)strcspn(p, ","), p);
        if (*end == 0)
            return vqs_seterr(VQS_ESPEC, "'%s': IVF must be followed by a codec, e.g. IVF1024,PQ16x8", spec);
        ix->ivf = 1;
        ix->nlist = (size_t)nl;
        p = end + 1;
    } else {
        ix->nlist = 1;
    }
    /* the refine stage, if any, is the last token */
    const char *rf = NULL;
    const char *last = strrchr(p, ',');
    const char *r1 = strstr(p, "Refine(");
    if (r1 && (r1 == p || r1[-1] == ',')) {
        rf = r1;
        const char *close = strrchr(r1, ')');
        if (!close || close[1] != 0)
            return vqs_seterr(VQS_ESPEC, "'%s': Refine(...) must close the spec", r1);
        size_t len = (size_t)(close - (r1 + 7));
        if (len == 0 || len >= rcap)
            return vqs_seterr(VQS_ESPEC, "'%s': empty or too long refine codec", r1);
        memcpy(rspec, r1 + 7, len);
        rspec[len] = 0;
        ix->refine = VQS_IVF_REFINE_CODEC;
    } else if (last && !strcmp(last + 1, "RFlat")) {
        rf = last + 1;
        ix->refine = VQS_IVF_REFINE_FLAT;
    } else if (!strcmp(p, "RFlat")) {
        return vqs_seterr(VQS_ESPEC, "'%s': RFlat refines a codec, e.g. PQ16x8,RFlat", spec);
    }
    size_t clen = rf ? (size_t)(rf - p) : strlen(p);
    while (clen && (p[clen - 1] == ',' || p[clen - 1] == ' '))
        clen--;
    if (clen == 0)
        return vqs_seterr(VQS_ESPEC, "'%s': no codec", spec);
    if (clen >= cap)
        return vqs_seterr(VQS_ESPEC, "'%s': spec too long", spec);
    memcpy(cspec, p, clen);
    cspec[clen] = 0;
    if (strstr(cspec, "IVF"))
        return vqs_seterr(VQS_ESPEC, "'%s': IVF must be the first token", spec);
    if (strstr(cspec, "VAMANA"))
        return vqs_seterr(VQS_ESPEC, "'%s': VAMANA must be the first token", spec);
    return 0;
}

/* The measured default per codec family (bench/README.md, "Cosine:
 * normalised reconstructions"), from the canonical codec spec: on, except
 * for 16-bit float scalar codes without a PCA stage, whose reconstructions are within ~1e-4 of unit norm
 * and gained nothing measurable (+0.02 and 0 points of recall@10). */
static int cos_norm_family_default(const char *cspec)
{
    const char *qt = strrchr(cspec, ',');
    qt = qt ? qt + 1 : cspec;
    int f16 = !strcmp(qt, "SQfp16") || !strcmp(qt, "SQbf16");
    return !f16 || strstr(cspec, "PCA") != NULL;
}

/* Whether cosine scores are divided by |x^| (vqs_index_opts.cos_norm): the
 * option, else VQS_COS_NORM, else the codec family's measured default. */
static int cos_norm_wanted(int opt, const char *cspec)
{
    if (opt != VQS_COS_NORM_DEFAULT)
        return opt >= VQS_COS_NORM_ON;
    const char *e = getenv("VQS_COS_NORM");
    if (e && *e) {
        if (!strcmp(e, "0") || !strcasecmp(e, "off"))
            return 0;
        if (!strcmp(e, "1") || !strcasecmp(e, "on"))
            return 1;
        static atomic_int warned;
        if (!atomic_exchange(&warned, 1))
            fprintf(stderr, "vqs: VQS_COS_NORM='%s' is not 0, 1, off or on; ignored\n", e);
    }
    return cos_norm_family_default(cspec);
}

/* SQ4 scans as a 4-bit fast scan of d one-dimensional tables of 16
 * entries up to this d: a code's score is a sum of one entry per
 * dimension, and the scan reads it with byte shuffles instead of decoding
 * every dimension (the decode bounded SQ4 at 26-29% of the memory read
 * rate). Past 257 tables the quantised tables keep fewer levels (65535 / M,
 * the u16 sums must not overflow) and the error bound grows with M: more
 * codes survive to the exact re-score. Not with L2 residuals (IVF): their
 * tables change with every probed list, and building and quantising d * 16
 * entries per list cost more than the scan saved (siftsmall IVF64,SQ4,
 * nprobe 16: 21k q/s against 32k with the SQ kernel). Rejected: the 8-bit
 * fast scan for 8-bit scalar codes (SQ8, SQfp8): 256-entry tables are four
 * registers per dimension and block of 64, and it was slower than decoding
 * (1M x 128, flat, 1 thread: SQ8 141 -> 103 q/s, SQfp8 106 -> 96). */
#define SQ_FS_MAX_DIM 256

int vqs_index_create(const char *spec, size_t d, vqs_metric m, const vqs_index_opts *o,
                     vqs_index **out)
{
    if (!spec || !out)
        return vqs_seterr(VQS_EINVAL, "index_create: NULL argument");
    *out = NULL;
    if (d == 0 || d > (1u << 20))
        return vqs_seterr(VQS_EINVAL, "index_create: dimension %zu", d);
    if (m != VQS_METRIC_L2 && m != VQS_METRIC_IP && m != VQS_METRIC_COS)
        return vqs_seterr(VQS_EINVAL, "index_create: unknown metric %d", (int)m);
    if (strlen(spec) >= sizeof(((vqs_index *)0)->spec))
        return vqs_seterr(VQS_ESPEC, "index spec too long");
    vqs_index *ix = calloc(1, sizeof *ix);
    if (!ix)
        return vqs_seterr(VQS_ENOMEM, "index_create");
    strcpy(ix->spec, spec);
    ix->d = d;
    ix->metric = m;
    if (o)
        ix->o = *o;
    ix->nthreads = ix->o.nthreads > 0 ? ix->o.nthreads : vqs_default_threads();
    if (!ix->o.nprobe)
        ix->o.nprobe = 16;
    if (!(ix->o.oversampling >= 1.0f))
        ix->o.oversampling = 4.0f;
    vqs_codec_opts co = ix->o.codec;
    if (!co.nthreads)
        co.nthreads = ix->nthreads;
    if (!co.seed)
        co.seed = ix->o.seed;
    char cspec[512], rspec[256];
    vqs_graph_params gp = {0};
    int rc = parse_spec(ix, spec, cspec, sizeof cspec, rspec, sizeof rspec, &gp);
    if (rc)
        goto fail;
    rc = gp.R ? vqs_graph_create(&gp, d, ix->o.graph_dir, &ix->graph) : 0;
    ix->o.graph_dir = NULL; /* the caller's string: copied by the graph */
    if (rc)
        goto fail;
    ix->by_residual = ix->ivf && ix->o.by_residual >= VQS_RESIDUAL_DEFAULT; /* OFF: negative */
    if ((rc = vqs_codec_create(cspec, d, &co, &ix->codec)))
        goto fail;
    ix->cs = vqs_codec_code_size(ix->codec);
    ix->cosnorm = m == VQS_METRIC_COS && cos_norm_wanted(ix->o.cos_norm, vqs_codec_spec(ix->codec));
    if (ix->refine == VQS_IVF_REFINE_CODEC && (rc = vqs_codec_create(rspec, d, &co, &ix->rcodec)))
        goto fail;
    ix->rcs = ix->refine == VQS_IVF_REFINE_FLAT    ? sizeof(float) * d
              : ix->refine == VQS_IVF_REFINE_CODEC ? vqs_codec_code_size(ix->rcodec)
                                                   : 0;
    ix->rcosnorm = ix->refine == VQS_IVF_REFINE_CODEC && m == VQS_METRIC_COS &&
                   cos_norm_wanted(ix->o.cos_norm, vqs_codec_spec(ix->rcodec));
    /* PQ Mx4, or Mx8 (below), after any transforms */
    size_t M = 0, nb = 0;
    int pq = vqs_codec_pq_shape(ix->codec, &M, &nb) == 0;
    int sq = 0;
    if (!pq && vqs_codec_sq_table_shape(ix->codec, &M, &nb) == 0 && nb == 4 && M <= SQ_FS_MAX_DIM &&
        !(ix->by_residual && m == VQS_METRIC_L2))
        pq = sq = 1; /* SQ: d one-dimensional tables (ivf_search.c builds them) */
    if (!pq)
        vqs_clearerr(); /* no fast scan */
    if (pq && !ix->graph && (nb == 4 || (nb == 8 && !ix->ivf && vqs_kernels_active()->level == VQS_SIMD_AVX512 &&
                           vqs_simd_has_vbmi()))) {
        /* 8-bit fast scan only where its byte permutes exist, and only for
         * flat indexes: quantising M * 256 table entries per probed list
         * costs more than a float scan of an IVF list's few hundred codes
         * (measured: IVF64,PQ16x8 on siftsmall 10k q/s against 39k) */
        ix->fastscan = nb == 4 ? VQS_IVF_FS_PQ4 : VQS_IVF_FS_PQ8;
        ix->fs_sq = sq;
        ix->fs_M = M;
        ix->fs_bs = nb == 4 ? 32 : 64;
        ix->fs_block = nb == 4 ? vqs_pq4fs_packed_size(32, M) : vqs_pq8fs_packed_size(64, M);
    }
    ix->lists = calloc(ix->nlist, sizeof *ix->lists);
    if (!ix->lists) {
        rc = vqs_seterr(VQS_ENOMEM, "index_create: %zu lists", ix->nlist);
        goto fail;
    }
    vqs_ivf_map_init(ix);
    *out = ix;
    return 0;
fail:
    vqs_index_free(ix);
    return rc;
}

void vqs_index_free(vqs_index *ix)
{
    if (!ix)
        return;
    if (ix->lists)
        for (size_t l = 0; l < ix->nlist; l++) {
            free(ix->lists[l].ids);
            free(ix->lists[l].codes);
            free(ix->lists[l].rcodes);
            free(ix->lists[l].nf);
        }
    free(ix->lists);
    free(ix->centroids);
    free(ix->ptab);
    free(ix->pq_centT);
    free(ix->tcent);
    vqs_codec_norms_free(ix->norms);
    vqs_codec_norms_free(ix->rnorms);
    vqs_codec_free(ix->codec);
    vqs_codec_free(ix->rcodec);
    free(ix->ht);
    vqs_graph_free(ix->graph);
    free(ix);
}

size_t vqs_index_ntotal(const vqs_index *ix) { return ix->ntotal; }
size_t vqs_index_d(const vqs_index *ix) { return ix->d; }
const char *vqs_index_spec(const vqs_index *ix) { return ix->spec; }
vqs_metric vqs_index_metric(const vqs_index *ix) { return ix->metric; }
size_t vqs_index_code_size(const vqs_index *ix) { return ix->cs; }
size_t vqs_index_entry_size(const vqs_index *ix) { return ix->cs + ix->rcs; }
const vqs_codec *vqs_index_codec(const vqs_index *ix) { return ix->codec; }

const float *vqs_index_centroids(const vqs_index *ix, size_t *nlist)
{
    if (nlist)
        *nlist = ix->nlist;
    return ix->ivf ? ix->centroids : NULL;
}
int vqs_index_is_trained(const vqs_index *ix) { return ix->trained; }

double vqs_index_bytes_per_vector(const vqs_index *ix, size_t *fixed)
{
    if (fixed) {
        size_t f = ix->ivf ? sizeof(float) * ix->nlist * ix->d : 0;
        if (ix->ptab) /* the precomputed tables and the codebooks' transposed copy */
            f += sizeof(float) * ix->pq_M * ix->pq_ksub * (ix->nlist + ix->pq_dsub);
        if (ix->tcent)
            f += sizeof(float) * ix->nlist * ix->dq;
        void *blob = NULL;
        size_t len = 0;
        if (vqs_codec_save(ix->codec, &blob, &len) == 0)
            f += len;
        free(blob);
        blob = NULL;
        if (ix->rcodec && vqs_codec_save(ix->rcodec, &blob, &len) == 0)
            f += len;
        free(blob);
        *fixed = f + vqs_codec_norms_bytes(ix->norms) + vqs_codec_norms_bytes(ix->rnorms);
    }
    /* per list row: id (none while the id map is the identity) + refine
     * copy + the cosine factor */
    int ident = ix->idform == VQS_IDS_IDENT;
    size_t rrow = ix->graph && vqs_graph_on_disk(ix->graph) ? 0 : ix->rcs; /* on disk: in the nodes */
    size_t row = (ident ? 0 : sizeof(int64_t)) + rrow + (ix->cosnorm ? sizeof(float) : 0);
    if (!ix->ntotal) /* nothing held yet: a code, a row and a dense id map slot */
        return (double)ix->cs + (double)row + (ident ? 0 : sizeof(uint32_t));
    /* what is held: the lists at their capacity (codes in their layout) and
     * the id map (ivf_ids.c), over the vectors */
    double held = (double)vqs_ivf_map_bytes(ix) + (ix->graph ? (double)vqs_graph_bytes(ix->graph) : 0);
    for (size_t l = 0; l < ix->nlist; l++)
        held += (double)vqs_ivf_list_code_bytes(ix, ix->lists[l].cap) + (double)(ix->lists[l].cap * row);
    return held / (double)ix->ntotal;
}

/* ---- helpers ------------------------------------------------------------------- */

/* finite rows whose scores stay finite (vqs_check_vectors) */
int vqs_ivf_check_rows(const vqs_index *ix, size_t n, const float *x, const char *what)
{
    size_t bad = 0;
    int rc = vqs_check_vectors(ix->metric, n, ix->d, ix->d, x, &bad);
    if (rc)
        return vqs_seterr(rc, "%s: row %zu: %s", what, bad, vqs_errdetail());
    return 0;
}

/* Nearest list of every row: L2 nearest centroid, or largest inner product. */
int vqs_ivf_assign_lists(const vqs_index *ix, size_t n, const float *x, int32_t *a)
{
    if (!ix->ivf) {
        memset(a, 0, sizeof(int32_t) * n);
        return 0;
    }
    if (ix->metric == VQS_METRIC_L2)
        return vqs_kmeans_assign(ix->nthreads, n, ix->d, x, ix->nlist, ix->centroids, a, NULL);
    int64_t *ids = malloc(sizeof(int64_t) * (n ? n : 1));
    if (!ids)
        return vqs_seterr(VQS_ENOMEM, "index: assignment of %zu rows", n);
    vqs_matrix base = {ix->centroids, ix->nlist, ix->d, ix->d}, qm = {x, n, ix->d, ix->d};
    vqs_exact_opts eo = {.nthreads = ix->nthreads, .no_proof = 1};
    int rc = vqs_exact_knn(&eo, VQS_METRIC_IP, &base, &qm, 1, ids, NULL);
    for (size_t i = 0; !rc && i < n; i++)
        a[i] = (int32_t)ids[i];
    free(ids);
    return rc;
}

/* The handle that derives |x^| from a code: residual codes are offset by
 * their list's centroid. Rebuilt whenever the codec or centroids change. */
int vqs_ivf_prepare_norms(vqs_index *ix)
{
    vqs_codec_norms_free(ix->norms);
    vqs_codec_norms_free(ix->rnorms);
    ix->norms = ix->rnorms = NULL;
    int rc = 0;
    if (ix->cosnorm)
        rc = vqs_codec_norms_create(ix->codec, ix->by_residual ? ix->nlist : 0,
                                    ix->by_residual ? ix->centroids : NULL, &ix->norms);
    if (!rc && ix->rcosnorm)
        rc = vqs_codec_norms_create(ix->rcodec, 0, NULL, &ix->rnorms);
    return rc;
}

#define PTAB_MAX_BYTES ((size_t)512 << 20)

/* T(c) - T(0) of every centroid through the codec's transforms (affine:
 * T(q - c) = T(q) - (T(c) - T(0))), so that an IVF search with L2
 * residuals behind a transform forwards each query once rather than q - c
 * once per probed list. */
static int build_tcent(vqs_index *ix)
{
    size_t dq = vqs_codec_query_dim(ix->codec), nl = ix->nlist;
    float *t = malloc(sizeof(float) * (nl + 1) * dq), *z = calloc(ix->d, sizeof(float));
    float cst[1];
    float *cs = malloc(sizeof(float) * nl);
    int rc = 0;
    if (!t || !z || !cs)
        rc = vqs_seterr(VQS_ENOMEM, "index: transformed centroids (%zu lists)", nl);
    if (!rc)
        rc = vqs_codec_query_forward(ix->codec, VQS_METRIC_L2, nl, ix->centroids, t, cs);
    if (!rc)
        rc = vqs_codec_query_forward(ix->codec, VQS_METRIC_L2, 1, z, t + nl * dq, cst);
    free(z);
    free(cs);
    if (rc) {
        free(t);
        return rc;
    }
    for (size_t l = 0; l < nl; l++)
        for (size_t j = 0; j < dq; j++)
            t[l * dq + j] -= t[nl * dq + j];
    ix->tcent = t;
    ix->dq = dq;
    return 0;
}

/* The precomputed tables, when they apply and fit (else plain per-list
 * query preparation is used), and behind a transform the transformed
 * centroids they are built from. */
int vqs_ivf_build_ptab(vqs_index *ix)
{
    free(ix->ptab);
    free(ix->pq_centT);
    free(ix->tcent);
    ix->ptab = NULL;
    ix->pq_centT = NULL;
    ix->tcent = NULL;
    if (!ix->ivf || !ix->by_residual || ix->metric != VQS_METRIC_L2)
        return 0;
    int rc;
    if (vqs_codec_has_transform(ix->codec) && (rc = build_tcent(ix)))
        return rc;
    /* the centroids in the quantizer's space */
    const float *lc = ix->tcent ? ix->tcent : ix->centroids;
    size_t ld = ix->tcent ? ix->dq : ix->d;
    size_t M, nbits, dsub;
    const float *cent;
    if (vqs_codec_pq_info(ix->codec, &M, &nbits, &dsub, &cent) != 0 || (nbits != 8 && nbits != 4)) {
        vqs_clearerr();
        return 0;
    }
    size_t ksub = (size_t)1 << nbits;
    if (ix->nlist * M * ksub > PTAB_MAX_BYTES / sizeof(float))
        return 0;
    float *t = malloc(sizeof(float) * ix->nlist * M * ksub), *ct = malloc(sizeof(float) * M * ksub * dsub);
    if (!t || !ct) {
        free(t);
        free(ct);
        return vqs_seterr(VQS_ENOMEM, "index: precomputed tables (%zu lists)", ix->nlist);
    }
    for (size_t m = 0; m < M; m++)
        for (size_t j = 0; j < ksub; j++)
            for (size_t u = 0; u < dsub; u++)
                ct[(m * dsub + u) * ksub + j] = cent[(m * ksub + j) * dsub + u];
    for (size_t l = 0; l < ix->nlist; l++)
        for (size_t m = 0; m < M; m++) {
            const float *c = lc + l * ld + m * dsub;
            for (size_t j = 0; j < ksub; j++) {
                const float *r = cent + (m * ksub + j) * dsub;
                float v = 0;
                for (size_t u = 0; u < dsub; u++)
                    v += r[u] * (r[u] + 2 * c[u]);
                t[(l * M + m) * ksub + j] = v;
            }
        }
    ix->ptab = t;
    ix->pq_centT = ct;
    ix->pq_M = M;
    ix->pq_ksub = ksub;
    ix->pq_dsub = dsub;
    ix->pq_cent = cent;
    return 0;
}

/* ---- train ------------------------------------------------------------------- */

int vqs_index_train(vqs_index *ix, size_t n, const float *x)
{
    return vqs_index_train_from(ix, NULL, n, x, NULL);
}

static int index_train(vqs_index *ix, const vqs_reducer *R, const vqs_codec *donor, size_t n, const float *x,
                       int *reused)
{
    if (reused)
        *reused = 0;
    if (!ix || (n && !x))
        return vqs_seterr(VQS_EINVAL, "index_train: NULL argument");
    R = R && R->size > 1 ? R : NULL;
    int rc = ix->ntotal ? vqs_seterr(VQS_EINVAL, "index_train: the index already holds %zu vectors", ix->ntotal)
                        : vqs_ivf_check_rows(ix, n, x, "index_train");
    size_t N = n, first = 0;
    if ((rc = vqs_reduce_layout(R, rc, n, &N, &first)))
        return rc;
    size_t d = ix->d, nt = n;
    if (R && ix->o.max_train)
        return vqs_seterr(VQS_EINVAL, "index_train: max_train over several participants: sample before");
    if (ix->o.max_train && n > ix->o.max_train)
        nt = ix->o.max_train;
    /* seeded subsample (partial Fisher-Yates over row indices) */
    float *t = malloc(sizeof(float) * (nt ? nt : 1) * d);
    size_t *perm = nt < n ? malloc(sizeof(size_t) * n) : NULL;
    int32_t *a = ix->ivf ? malloc(sizeof(int32_t) * (nt ? nt : 1)) : NULL;
    float *cent = ix->ivf ? malloc(sizeof(float) * ix->nlist * d) : NULL;
    if (!t || (nt < n && !perm) || (ix->ivf && (!a || !cent)))
        rc = vqs_seterr(VQS_ENOMEM, "index_train: %zu rows", nt);
    if ((rc = vqs_reduce_agree(R, rc))) /* with R: every participant can go on */
        goto done;
    if (perm) {
        vqs_rng r;
        vqs_rng_seed(&r, ix->o.seed ^ 0x1f0e5eedull);
        for (size_t i = 0; i < n; i++)
            perm[i] = i;
        for (size_t i = 0; i < nt; i++) {
            size_t j = i + (size_t)(vqs_rng_uniform(&r) * (double)(n - i));
            size_t tmp = perm[i];
            perm[i] = perm[j];
            perm[j] = tmp;
            memcpy(t + i * d, x + perm[i] * d, sizeof(float) * d);
        }
    } else {
        memcpy(t, x, sizeof(float) * n * d);
    }
    if (ix->metric == VQS_METRIC_COS)
        vqs_normalize_rows(nt, d, t);
    double t0 = vqs_now();
    if (ix->ivf) {
        if ((R ? N : nt) < ix->nlist) {
            rc = vqs_seterr(VQS_EINVAL, "index_train: IVF%zu needs at least %zu training vectors, got %zu",
                            ix->nlist, ix->nlist, R ? N : nt);
            goto done;
        }
        vqs_kmeans_opts ko = {.niter = ix->o.kmeans_iters ? ix->o.kmeans_iters : 20,
                              .nthreads = ix->nthreads,
                              .seed = ix->o.seed,
                              .spherical = ix->metric != VQS_METRIC_L2,
                              .reduce = R};
        if ((rc = vqs_kmeans(&ko, nt, d, t, ix->nlist, cent, NULL)))
            goto done;
        free(ix->centroids);
        ix->centroids = cent;
        cent = NULL;
        if (ix->o.verbose)
            fprintf(stderr, "vqs index: coarse k-means (%zu lists) %.2f s\n", ix->nlist, vqs_now() - t0);
    }
    if (ix->refine == VQS_IVF_REFINE_CODEC) { /* the refine codec sees the raw vectors */
        if ((rc = vqs_codec_train_over(ix->rcodec, R, NULL, nt, t, NULL)))
            goto done;
    }
    if (ix->by_residual) {
        if ((rc = vqs_reduce_agree(R, vqs_ivf_assign_lists(ix, nt, t, a))))
            goto done;
        for (size_t i = 0; i < nt; i++)
            for (size_t j = 0; j < d; j++)
                t[i * d + j] -= ix->centroids[(size_t)a[i] * d + j];
    }
    if ((rc = vqs_codec_train_over(ix->codec, R, donor, nt, t, reused)))
        goto done;
    if ((rc = vqs_ivf_build_ptab(ix)) || (rc = vqs_ivf_prepare_norms(ix)))
        goto done;
    if (ix->o.verbose)
        fprintf(stderr, "vqs index: trained '%s' on %zu vectors in %.2f s\n", ix->spec, R ? N : nt,
                vqs_now() - t0);
    ix->trained = 1;
done:
    free(t);
    free(perm);
    free(a);
    free(cent);
    return rc;
}

int vqs_index_train_from(vqs_index *ix, const vqs_codec *donor, size_t n, const float *x, int *reused)
{
    return index_train(ix, NULL, donor, n, x, reused);
}

int vqs_index_train_over(vqs_index *ix, const vqs_reducer *R, size_t n, const float *x)
{
    return index_train(ix, R, NULL, n, x, NULL);
}
