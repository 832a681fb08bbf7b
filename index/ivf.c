/*
 * ivf.c: the compressed index (vqs_index in vqs_index.h): a codec, ids and
 * codes in lists, an optional IVF coarse partition, an optional refine copy,
 * and search through the SIMD kernels of index/kernels.
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
 * - Scores inside are always "smaller is better" keys: the L2 distance, or
 *   minus the inner product. Kernels compute the codec's own score form
 *   (vqs_codec_query_view), and inner-product results are negated in place
 *   (n negations next to n * code_size table look-ups) rather than keeping
 *   negated copies of every table. Ties go to the lower id, as exact search.
 * - Residual encoding (IVF, default on): L2 codes x - c_list, so the query
 *   is prepared once per probed list (vqs_codec_query_reset: for PQ that is
 *   256 * d flops, next to scanning the list). For inner products no
 *   per-list query is needed: <q, c + r> = <q, c> + <q, r>, the first term is
 *   the coarse score. Rejected for now: FAISS's precomputed per-list tables
 *   (nlist * M * 256 floats), which only pay off for PQ without transforms.
 * - Top-k: a bounded max-heap of (key, id) per query; each chunk of kernel
 *   output is first filtered by a SIMD "below the current k-th key" pass
 *   (select_lt / select_le_u16), so the heap sees few candidates after the
 *   first chunks. Fast scan keeps every code whose quantised score could
 *   still beat the k-th key (the quantisation error bound of
 *   vqs_pq4fs_quantize), then re-scores those exactly with the float tables:
 *   its results equal those of the float table scan.
 * - Two-stage search: the first stage keeps ceil(k * oversampling)
 *   candidates, the second re-scores them against the refine copy (float32:
 *   exact distances; a refine codec: its own scorer) or an external source
 *   (vqs_rerank_source, the storage layer's vectors on disk).
 * - Ids: a hash map (open addressing, linear probing, backward-shift
 *   deletion, no tombstones) from the external id to (list, position).
 *   Removal swaps the last vector of the list into the hole: O(1), order of a
 *   list is not meaningful. Adds are all-or-nothing: every check and every
 *   allocation happens before the first list is touched.
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
 *   2^-10, larger than the whole correction of 8-bit scalar codes; the 2
 *   bytes saved are 5% of the id and id-map bytes every vector already
 *   costs); normalising the decoded vector inside the codec (the codecs
 *   score codes without decoding them). RVQ's norm byte is |x^|^2 for its L2
 *   score, unused by its inner product, so nothing is corrected twice; BIN's
 *   score estimates <q, x> rather than <q, x^>, and dividing it by |x^| too
 *   was measured to pay. A Refine(...) codec's re-scoring gets the same
 *   correction, its |x^| derived per candidate at search time.
 * - Queries run on the shared thread pool, one query per task, with
 *   per-thread scratch; a batch of IVF queries first gets its probed lists
 *   from one exact BLAS search over the centroids.
 */
#define _GNU_SOURCE
#include "vqs_index.h"

#include <float.h>
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vqs_kernels.h"

#define CHUNK 1024 /* codes per kernel call (fast scan: a multiple of 32) */

typedef struct ivlist {
    size_t n, cap;
    int64_t *ids;
    uint8_t *codes;  /* cap * cs, or the fast-scan layout for cap rows */
    uint8_t *rcodes; /* cap * rcs (refine copy), or NULL */
    float *nf;       /* cap: 1/|x^| of each vector (cosine correction), or NULL */
    float nf_lo, nf_hi; /* bounds of nf over the vectors added since the list
                           was last empty (removals leave them wider: still
                           bounds), for the fast-scan pruning */
} ivlist;

typedef struct idslot {
    int64_t key;
    uint64_t loc; /* list << 40 | position; UINT64_MAX: empty */
} idslot;

struct vqs_index {
    char spec[512];
    size_t d;
    vqs_metric metric;
    vqs_index_opts o;
    int nthreads;

    size_t nlist;      /* 1: flat */
    int ivf;           /* coarse step present */
    float *centroids;  /* nlist * d */
    int by_residual;

    vqs_codec *codec;
    size_t cs;         /* code_size */
    int fastscan;      /* PQ Mx4 (4), or PQ Mx8 with AVX-512 VBMI (8); else 0 */
    size_t fs_M, fs_bs, fs_block; /* sub-quantizers, vectors and bytes per block */

    int cosnorm;       /* cosine scores divided by |x^| (lists carry nf) */
    vqs_codec_norms *norms; /* derives |x^| from a code (and its list) */
    int rcosnorm;      /* the same for the refine codec's re-scoring, where
                          |x^| is derived per candidate at search time */
    vqs_codec_norms *rnorms;

    int refine;        /* 0 none, 1 float32, 2 codec */
    vqs_codec *rcodec;
    size_t rcs;        /* refine bytes per vector */

    /* IVF-PQ, L2, residual codes, no transform: FAISS's "precomputed
     * tables". |q - c - r|^2 = |q - c|^2 + sum_m (|r_m|^2 + 2 <c_m, r_m>)
     * - 2 sum_m <q_m, r_m>: the middle term depends only on the list and
     * the code, so a list's table is ptab[l] plus a per-query table. */
    float *ptab;          /* layout (nlist, M, ksub) */
    size_t pq_M, pq_ksub, pq_dsub;
    const float *pq_cent; /* the codec's, layout (M, ksub, dsub) */

    int trained;
    ivlist *lists;
    size_t ntotal;
    int64_t next_id;

    idslot *map;
    size_t map_cap, map_n;
};

/* ---- id map ------------------------------------------------------------------ */

#define LOC_EMPTY UINT64_MAX
#define LOC(l, p) ((uint64_t)(l) << 40 | (uint64_t)(p))
#define LOC_LIST(x) ((size_t)((x) >> 40))
#define LOC_POS(x) ((size_t)((x) & ((1ull << 40) - 1)))

static inline size_t hash_id(int64_t k, size_t cap)
{
    uint64_t x = (uint64_t)k * 0x9E3779B97F4A7C15ull;
    x ^= x >> 29;
    return (size_t)(x & (cap - 1));
}

idslot *vqs_ivf_map_find(const vqs_index *ix, int64_t key)
{
    if (!ix->map_cap)
        return NULL;
    for (size_t i = hash_id(key, ix->map_cap);; i = (i + 1) & (ix->map_cap - 1)) {
        idslot *s = &ix->map[i];
        if (s->loc == LOC_EMPTY)
            return NULL;
        if (s->key == key)
            return s;
    }
}

/* Makes room for `more` entries (load <= 1/2). */
int vqs_ivf_map_reserve(vqs_index *ix, size_t more)
{
    size_t need = ix->map_n + more;
    if (need * 2 <= ix->map_cap)
        return 0;
    size_t cap = ix->map_cap ? ix->map_cap : 1024;
    while (cap < need * 2)
        cap *= 2;
    idslot *m = malloc(sizeof *m * cap);
    if (!m)
        return vqs_seterr(VQS_ENOMEM, "index: id map of %zu slots", cap);
    for (size_t i = 0; i < cap; i++)
        m[i].loc = LOC_EMPTY;
    for (size_t j = 0; j < ix->map_cap; j++) {
        if (ix->map[j].loc == LOC_EMPTY)
            continue;
        size_t i = hash_id(ix->map[j].key, cap);
        while (m[i].loc != LOC_EMPTY)
            i = (i + 1) & (cap - 1);
        m[i] = ix->map[j];
    }
    free(ix->map);
    ix->map = m;
    ix->map_cap = cap;
    return 0;
}

void vqs_ivf_map_put(vqs_index *ix, int64_t key, uint64_t loc) /* room reserved, key absent */
{
    size_t i = hash_id(key, ix->map_cap);
    while (ix->map[i].loc != LOC_EMPTY)
        i = (i + 1) & (ix->map_cap - 1);
    ix->map[i].key = key;
    ix->map[i].loc = loc;
    ix->map_n++;
}

void vqs_ivf_map_del(vqs_index *ix, idslot *s)
{
    size_t cap = ix->map_cap, i = (size_t)(s - ix->map), j = i;
    for (;;) {
        j = (j + 1) & (cap - 1);
        if (ix->map[j].loc == LOC_EMPTY)
            break;
        size_t h = hash_id(ix->map[j].key, cap);
        /* move j back to i unless its home h lies cyclically in (i, j] */
        int keep = i <= j ? (h > i && h <= j) : (h > i || h <= j);
        if (!keep) {
            ix->map[i] = ix->map[j];
            i = j;
        }
    }
    ix->map[i].loc = LOC_EMPTY;
    ix->map_n--;
}

/* ---- create ------------------------------------------------------------------ */

static int parse_spec(vqs_index *ix, const char *spec, char *cspec, size_t cap, char *rspec,
                      size_t rcap)
{
    const char *p = spec;
    while (*p == ' ')
        p++;
    if (!strncmp(p, "IVF", 3)) {
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
        ix->refine = 2;
    } else if (last && !strcmp(last + 1, "RFlat")) {
        rf = last + 1;
        ix->refine = 1;
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
    if (opt)
        return opt > 0;
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
    int rc = parse_spec(ix, spec, cspec, sizeof cspec, rspec, sizeof rspec);
    if (rc)
        goto fail;
    ix->by_residual = ix->ivf && ix->o.by_residual >= 0;
    if ((rc = vqs_codec_create(cspec, d, &co, &ix->codec)))
        goto fail;
    ix->cs = vqs_codec_code_size(ix->codec);
    ix->cosnorm = m == VQS_METRIC_COS && cos_norm_wanted(ix->o.cos_norm, vqs_codec_spec(ix->codec));
    if (ix->refine == 2 && (rc = vqs_codec_create(rspec, d, &co, &ix->rcodec)))
        goto fail;
    ix->rcs = ix->refine == 1 ? sizeof(float) * d : ix->refine == 2 ? vqs_codec_code_size(ix->rcodec) : 0;
    ix->rcosnorm = ix->refine == 2 && m == VQS_METRIC_COS &&
                   cos_norm_wanted(ix->o.cos_norm, vqs_codec_spec(ix->rcodec));
    /* PQ Mx4, or Mx8 (below), after any transforms */
    size_t M = 0, nb = 0;
    int pq = vqs_codec_pq_shape(ix->codec, &M, &nb) == 0;
    if (!pq)
        vqs_clearerr(); /* not PQ: no fast scan */
    if (pq && (nb == 4 || (nb == 8 && !ix->ivf && vqs_kernels_active()->level == VQS_SIMD_AVX512 &&
                           vqs_simd_has_vbmi()))) {
        /* 8-bit fast scan only where its byte permutes exist, and only for
         * flat indexes: quantising M * 256 table entries per probed list
         * costs more than a float scan of an IVF list's few hundred codes
         * (measured: IVF64,PQ16x8 on siftsmall 10k q/s against 39k) */
        ix->fastscan = (int)nb;
        ix->fs_M = M;
        ix->fs_bs = nb == 4 ? 32 : 64;
        ix->fs_block = nb == 4 ? vqs_pq4fs_packed_size(32, M) : vqs_pq8fs_packed_size(64, M);
    }
    ix->lists = calloc(ix->nlist, sizeof *ix->lists);
    if (!ix->lists) {
        rc = vqs_seterr(VQS_ENOMEM, "index_create: %zu lists", ix->nlist);
        goto fail;
    }
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
    vqs_codec_norms_free(ix->norms);
    vqs_codec_norms_free(ix->rnorms);
    vqs_codec_free(ix->codec);
    vqs_codec_free(ix->rcodec);
    free(ix->map);
    free(ix);
}

size_t vqs_index_ntotal(const vqs_index *ix) { return ix->ntotal; }
size_t vqs_index_d(const vqs_index *ix) { return ix->d; }
const char *vqs_index_spec(const vqs_index *ix) { return ix->spec; }
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
    /* codes + id + refine copy + id map slot (16 bytes at load <= 1/2) +
     * the cosine factor */
    return (double)ix->cs + sizeof(int64_t) + (double)ix->rcs + 2.0 * sizeof(idslot) +
           (ix->cosnorm ? sizeof(float) : 0);
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


/* x as the index stores it: a copy, normalised for cosine; NULL on ENOMEM. */
static float *prepared_copy(const vqs_index *ix, size_t n, const float *x)
{
    float *c = malloc(sizeof(float) * (n ? n : 1) * ix->d);
    if (!c)
        return NULL;
    memcpy(c, x, sizeof(float) * n * ix->d);
    if (ix->metric == VQS_METRIC_COS)
        vqs_normalize_rows(n, ix->d, c);
    return c;
}

static vqs_metric inner_metric(const vqs_index *ix)
{
    return ix->metric == VQS_METRIC_L2 ? VQS_METRIC_L2 : VQS_METRIC_IP;
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

/* The precomputed tables, when they apply and fit (else plain per-list
 * query preparation is used). */
int vqs_ivf_build_ptab(vqs_index *ix)
{
    free(ix->ptab);
    ix->ptab = NULL;
    size_t M, nbits, dsub;
    const float *cent;
    if (!ix->ivf || !ix->by_residual || ix->metric != VQS_METRIC_L2 ||
        vqs_codec_pq_info(ix->codec, &M, &nbits, &dsub, &cent) != 0 || (nbits != 8 && nbits != 4)) {
        vqs_clearerr();
        return 0;
    }
    size_t ksub = (size_t)1 << nbits;
    if (ix->nlist * M * ksub > PTAB_MAX_BYTES / sizeof(float))
        return 0;
    float *t = malloc(sizeof(float) * ix->nlist * M * ksub);
    if (!t)
        return vqs_seterr(VQS_ENOMEM, "index: precomputed tables (%zu lists)", ix->nlist);
    for (size_t l = 0; l < ix->nlist; l++)
        for (size_t m = 0; m < M; m++) {
            const float *c = ix->centroids + l * ix->d + m * dsub;
            for (size_t j = 0; j < ksub; j++) {
                const float *r = cent + (m * ksub + j) * dsub;
                float v = 0;
                for (size_t u = 0; u < dsub; u++)
                    v += r[u] * (r[u] + 2 * c[u]);
                t[(l * M + m) * ksub + j] = v;
            }
        }
    ix->ptab = t;
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

int vqs_index_train_from(vqs_index *ix, const vqs_codec *donor, size_t n, const float *x,
                         int *reused)
{
    if (reused)
        *reused = 0;
    if (!ix || (n && !x))
        return vqs_seterr(VQS_EINVAL, "index_train: NULL argument");
    if (ix->ntotal)
        return vqs_seterr(VQS_EINVAL, "index_train: the index already holds %zu vectors", ix->ntotal);
    int rc = vqs_ivf_check_rows(ix, n, x, "index_train");
    if (rc)
        return rc;
    size_t d = ix->d, nt = n;
    if (ix->o.max_train && n > ix->o.max_train)
        nt = ix->o.max_train;
    /* seeded subsample (partial Fisher-Yates over row indices) */
    float *t = malloc(sizeof(float) * (nt ? nt : 1) * d);
    size_t *perm = nt < n ? malloc(sizeof(size_t) * n) : NULL;
    int32_t *a = NULL;
    float *cent = NULL;
    if (!t || (nt < n && !perm)) {
        rc = vqs_seterr(VQS_ENOMEM, "index_train: %zu rows", nt);
        goto done;
    }
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
        if (nt < ix->nlist) {
            rc = vqs_seterr(VQS_EINVAL, "index_train: IVF%zu needs at least %zu training vectors, got %zu",
                            ix->nlist, ix->nlist, nt);
            goto done;
        }
        cent = malloc(sizeof(float) * ix->nlist * d);
        a = malloc(sizeof(int32_t) * nt);
        if (!cent || !a) {
            rc = vqs_seterr(VQS_ENOMEM, "index_train: %zu centroids", ix->nlist);
            goto done;
        }
        vqs_kmeans_opts ko = {.niter = ix->o.kmeans_iters ? ix->o.kmeans_iters : 20,
                              .nthreads = ix->nthreads,
                              .seed = ix->o.seed,
                              .spherical = ix->metric != VQS_METRIC_L2};
        if ((rc = vqs_kmeans(&ko, nt, d, t, ix->nlist, cent, NULL)))
            goto done;
        free(ix->centroids);
        ix->centroids = cent;
        cent = NULL;
        if (ix->o.verbose)
            fprintf(stderr, "vqs index: coarse k-means (%zu lists) %.2f s\n", ix->nlist, vqs_now() - t0);
    }
    if (ix->refine == 2) { /* the refine codec sees the raw vectors */
        if ((rc = vqs_codec_train(ix->rcodec, nt, t)))
            goto done;
    }
    if (ix->by_residual) {
        if ((rc = vqs_ivf_assign_lists(ix, nt, t, a)))
            goto done;
        for (size_t i = 0; i < nt; i++)
            for (size_t j = 0; j < d; j++)
                t[i * d + j] -= ix->centroids[(size_t)a[i] * d + j];
    }
    if ((rc = vqs_codec_train_from(ix->codec, donor, nt, t, reused)))
        goto done;
    if ((rc = vqs_ivf_build_ptab(ix)) || (rc = vqs_ivf_prepare_norms(ix)))
        goto done;
    if (ix->o.verbose)
        fprintf(stderr, "vqs index: trained '%s' on %zu vectors in %.2f s\n", ix->spec, nt, vqs_now() - t0);
    ix->trained = 1;
done:
    free(t);
    free(perm);
    free(a);
    free(cent);
    return rc;
}

/* ---- trained state ------------------------------------------------------------ */
/*
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
    io.by_residual = byres ? 0 : -1;
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

/* ---- add -------------------------------------------------------------------- */

size_t vqs_ivf_list_code_bytes(const vqs_index *ix, size_t rows)
{
    if (!ix->fastscan)
        return rows * ix->cs;
    return ix->fastscan == 4 ? vqs_pq4fs_packed_size(rows, ix->fs_M) : vqs_pq8fs_packed_size(rows, ix->fs_M);
}

void vqs_ivf_fs_get(const vqs_index *ix, const uint8_t *packed, size_t i, uint8_t *code)
{
    if (ix->fastscan == 4)
        vqs_pq4fs_get(packed, ix->fs_M, i, code);
    else
        vqs_pq8fs_get(packed, ix->fs_M, i, code);
}

/* Grows list l to hold `need` rows (nothing else changes). */
static int list_reserve(vqs_index *ix, ivlist *L, size_t need)
{
    if (need <= L->cap)
        return 0;
    size_t cap = L->cap ? L->cap : 32;
    while (cap < need)
        cap *= 2;
    int64_t *ids = realloc(L->ids, sizeof(int64_t) * cap);
    if (!ids)
        return vqs_seterr(VQS_ENOMEM, "index: list of %zu vectors", cap);
    L->ids = ids;
    uint8_t *codes = realloc(L->codes, vqs_ivf_list_code_bytes(ix, cap));
    if (!codes)
        return vqs_seterr(VQS_ENOMEM, "index: list of %zu vectors", cap);
    if (ix->fastscan) /* padding rows of the last block must read as code 0 */
        memset(codes + vqs_ivf_list_code_bytes(ix, L->cap), 0,
               vqs_ivf_list_code_bytes(ix, cap) - vqs_ivf_list_code_bytes(ix, L->cap));
    L->codes = codes;
    if (ix->rcs) {
        uint8_t *r = realloc(L->rcodes, ix->rcs * cap);
        if (!r)
            return vqs_seterr(VQS_ENOMEM, "index: list of %zu vectors", cap);
        L->rcodes = r;
    }
    if (ix->cosnorm) {
        float *f = realloc(L->nf, sizeof(float) * cap);
        if (!f)
            return vqs_seterr(VQS_ENOMEM, "index: list of %zu vectors", cap);
        L->nf = f;
    }
    L->cap = cap;
    return 0;
}

/* Fast scan: writes rows [pos, pos + n) of the list from plain codes (cs
 * bytes each), re-packing the blocks they touch. */
void vqs_ivf_fs_write(const vqs_index *ix, ivlist *L, size_t pos, size_t n, const uint8_t *codes,
                     uint8_t *tmp /* fs_bs * cs */)
{
    size_t cs = ix->cs, end = pos + n, rows = L->n > end ? L->n : end, bs = ix->fs_bs;
    for (size_t b = pos / bs; b * bs < end; b++) {
        size_t r0 = b * bs, nr = rows - r0 < bs ? rows - r0 : bs;
        for (size_t r = 0; r < nr; r++) {
            size_t i = r0 + r;
            if (i >= pos && i < end)
                memcpy(tmp + r * cs, codes + (i - pos) * cs, cs);
            else
                vqs_ivf_fs_get(ix, L->codes, i, tmp + r * cs);
        }
        memset(L->codes + b * ix->fs_block, 0, ix->fs_block);
        if (ix->fastscan == 4)
            vqs_pq4fs_pack(tmp, cs, nr, ix->fs_M, L->codes + b * ix->fs_block);
        else
            vqs_pq8fs_pack(tmp, cs, nr, ix->fs_M, L->codes + b * ix->fs_block);
    }
}

static int cmp64(const void *p, const void *q)
{
    int64_t a = *(const int64_t *)p, b = *(const int64_t *)q;
    return (a > b) - (a < b);
}

int vqs_index_encode(const vqs_index *ix, size_t n, const float *x, uint8_t *codes, uint32_t *lists)
{
    if (!ix || (n && (!x || !codes)))
        return vqs_seterr(VQS_EINVAL, "index_encode: NULL argument");
    if (!ix->trained)
        return vqs_seterr(VQS_EINVAL, "index_encode: index '%s' is not trained", ix->spec);
    if (n == 0)
        return 0;
    size_t d = ix->d, es = ix->cs + ix->rcs;
    int rc = vqs_ivf_check_rows(ix, n, x, "index_encode");
    if (rc)
        return rc;
    float *t = prepared_copy(ix, n, x);
    int32_t *a = malloc(sizeof(int32_t) * n);
    uint8_t *c = malloc(ix->cs * n), *r = ix->rcs ? malloc(ix->rcs * n) : NULL;
    if (!t || !a || !c || (ix->rcs && !r)) {
        rc = vqs_seterr(VQS_ENOMEM, "index_encode: %zu rows", n);
        goto done;
    }
    if ((rc = vqs_ivf_assign_lists(ix, n, t, a)))
        goto done;
    if (ix->refine == 1)
        memcpy(r, t, sizeof(float) * n * d);
    else if (ix->refine == 2 && (rc = vqs_codec_encode(ix->rcodec, n, t, r)))
        goto done;
    if (ix->by_residual) {
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < d; j++)
                t[i * d + j] -= ix->centroids[(size_t)a[i] * d + j];
    }
    if ((rc = vqs_codec_encode(ix->codec, n, t, c)))
        goto done;
    for (size_t i = 0; i < n; i++) {
        memcpy(codes + i * es, c + i * ix->cs, ix->cs);
        if (ix->rcs)
            memcpy(codes + i * es + ix->cs, r + i * ix->rcs, ix->rcs);
        if (lists)
            lists[i] = (uint32_t)a[i];
    }
done:
    free(t);
    free(a);
    free(c);
    free(r);
    return rc;
}

int vqs_index_decode(const vqs_index *ix, size_t n, const uint8_t *codes, const uint32_t *lists,
                     float *x)
{
    if (!ix || (n && (!codes || !x)))
        return vqs_seterr(VQS_EINVAL, "index_decode: NULL argument");
    if (!ix->trained)
        return vqs_seterr(VQS_EINVAL, "index_decode: index '%s' is not trained", ix->spec);
    if (n == 0)
        return 0;
    if (ix->by_residual && !lists)
        return vqs_seterr(VQS_EINVAL, "index_decode: '%s' encodes residuals: the lists are needed", ix->spec);
    size_t d = ix->d, es = ix->cs + ix->rcs;
    for (size_t i = 0; ix->by_residual && i < n; i++)
        if (lists[i] >= ix->nlist)
            return vqs_seterr(VQS_ERANGE, "index_decode: row %zu: list %u, the index has %zu", i, lists[i],
                              ix->nlist);
    uint8_t *c = malloc(ix->cs * n);
    if (!c)
        return vqs_seterr(VQS_ENOMEM, "index_decode: %zu rows", n);
    for (size_t i = 0; i < n; i++)
        memcpy(c + i * ix->cs, codes + i * es, ix->cs);
    int rc = vqs_codec_decode(ix->codec, n, c, x);
    free(c);
    for (size_t i = 0; !rc && ix->by_residual && i < n; i++)
        for (size_t j = 0; j < d; j++)
            x[i * d + j] += ix->centroids[(size_t)lists[i] * d + j];
    return rc;
}

int vqs_index_add_encoded(vqs_index *ix, size_t n, const uint8_t *codes, const uint32_t *lists,
                          const int64_t *ids)
{
    if (!ix || (n && !codes))
        return vqs_seterr(VQS_EINVAL, "index_add: NULL argument");
    if (!ix->trained)
        return vqs_seterr(VQS_EINVAL, "index_add: index '%s' is not trained", ix->spec);
    if (n == 0)
        return 0;
    if (ix->ivf && !lists)
        return vqs_seterr(VQS_EINVAL, "index_add: IVF index '%s' needs the list of every row", ix->spec);
    size_t es = ix->cs + ix->rcs;
    int rc = 0;
    for (size_t i = 0; lists && i < n; i++)
        if (lists[i] >= ix->nlist)
            return vqs_seterr(VQS_ERANGE, "index_add: row %zu: list %u, the index has %zu", i,
                              lists[i], ix->nlist);
    /* ids: no duplicates, in the batch or in the index */
    int64_t *myids = malloc(sizeof(int64_t) * n);
    if (!myids)
        return vqs_seterr(VQS_ENOMEM, "index_add: %zu ids", n);
    for (size_t i = 0; i < n; i++)
        myids[i] = ids ? ids[i] : ix->next_id + (int64_t)i;
    uint8_t *tmp = NULL, *grouped = NULL;
    size_t *cnt = NULL, *start = NULL, *fill = NULL;
    float *fac = NULL;
    if ((rc = vqs_ivf_map_reserve(ix, n)))
        goto done;
    for (size_t i = 0; i < n; i++) {
        if (myids[i] == -1) {
            rc = vqs_seterr(VQS_EINVAL, "index_add: row %zu: id -1 is reserved (missing result)", i);
            goto done;
        }
        if (vqs_ivf_map_find(ix, myids[i])) {
            rc = vqs_seterr(VQS_EINVAL, "index_add: row %zu: id %lld is already in the index", i,
                            (long long)myids[i]);
            goto done;
        }
    }
    {   /* duplicates within the batch: sort a copy */
        int64_t *s = malloc(sizeof(int64_t) * n);
        if (!s) {
            rc = vqs_seterr(VQS_ENOMEM, "index_add");
            goto done;
        }
        memcpy(s, myids, sizeof(int64_t) * n);
        qsort(s, n, sizeof *s, cmp64);
        for (size_t i = 1; i < n; i++)
            if (s[i] == s[i - 1]) {
                rc = vqs_seterr(VQS_EINVAL, "index_add: id %lld appears twice in the batch", (long long)s[i]);
                break;
            }
        free(s);
        if (rc)
            goto done;
    }
    if (ix->cosnorm) { /* 1/|x^| of every row, before anything changes */
        if (!(fac = malloc(sizeof(float) * n))) {
            rc = vqs_seterr(VQS_ENOMEM, "index_add: %zu rows", n);
            goto done;
        }
        if ((rc = vqs_codec_norms_compute(ix->norms, n, codes, es, ix->by_residual ? lists : NULL, fac)))
            goto done;
        for (size_t i = 0; i < n; i++) {
            float f = 1.0f / fac[i];
            /* a zero reconstruction scores 0 whatever the factor */
            fac[i] = fac[i] > 0 && isfinite(f) ? f : 1.0f;
        }
    }
    cnt = calloc(ix->nlist, sizeof *cnt);
    tmp = malloc(64 * ix->cs);
    if (ix->fastscan) {
        grouped = malloc(ix->cs * n);
        start = malloc(sizeof(size_t) * ix->nlist);
        fill = calloc(ix->nlist, sizeof(size_t));
    }
    if (!cnt || !tmp || (ix->fastscan && (!grouped || !start || !fill))) {
        rc = vqs_seterr(VQS_ENOMEM, "index_add: %zu rows", n);
        goto done;
    }
#define LIST_OF(i) (lists ? lists[i] : 0u)
    /* reserve every list first: nothing is changed before all succeed */
    for (size_t i = 0; i < n; i++)
        cnt[LIST_OF(i)]++;
    for (size_t l = 0; l < ix->nlist; l++)
        if (cnt[l] && (rc = list_reserve(ix, &ix->lists[l], ix->lists[l].n + cnt[l])))
            goto done;
    if (ix->fastscan) { /* rows grouped by list: one re-pack per list and block */
        size_t o = 0;
        for (size_t l = 0; l < ix->nlist; l++) {
            start[l] = o;
            o += cnt[l];
        }
        for (size_t i = 0; i < n; i++) {
            uint32_t l = LIST_OF(i);
            memcpy(grouped + (start[l] + fill[l]++) * ix->cs, codes + i * es, ix->cs);
        }
        for (size_t l = 0; l < ix->nlist; l++)
            if (cnt[l])
                vqs_ivf_fs_write(ix, &ix->lists[l], ix->lists[l].n, cnt[l], grouped + start[l] * ix->cs,
                                 tmp);
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t l = LIST_OF(i);
        ivlist *L = &ix->lists[l];
        size_t pos = L->n;
        L->ids[pos] = myids[i];
        if (!ix->fastscan)
            memcpy(L->codes + pos * ix->cs, codes + i * es, ix->cs);
        if (ix->rcs)
            memcpy(L->rcodes + pos * ix->rcs, codes + i * es + ix->cs, ix->rcs);
        if (fac) {
            L->nf[pos] = fac[i];
            if (pos == 0 || fac[i] < L->nf_lo)
                L->nf_lo = fac[i];
            if (pos == 0 || fac[i] > L->nf_hi)
                L->nf_hi = fac[i];
        }
        L->n++;
        vqs_ivf_map_put(ix, myids[i], LOC(l, pos));
        if (myids[i] >= ix->next_id)
            ix->next_id = myids[i] + 1;
    }
#undef LIST_OF
    ix->ntotal += n;
done:
    free(myids);
    free(cnt);
    free(tmp);
    free(grouped);
    free(start);
    free(fill);
    free(fac);
    return rc;
}

int vqs_index_add(vqs_index *ix, size_t n, const float *x, const int64_t *ids)
{
    if (!ix || (n && !x))
        return vqs_seterr(VQS_EINVAL, "index_add: NULL argument");
    if (!ix->trained)
        return vqs_seterr(VQS_EINVAL, "index_add: index '%s' is not trained", ix->spec);
    if (n == 0)
        return 0;
    size_t es = ix->cs + ix->rcs;
    uint8_t *codes = malloc(es * n);
    uint32_t *lists = malloc(sizeof(uint32_t) * n);
    if (!codes || !lists) {
        free(codes);
        free(lists);
        return vqs_seterr(VQS_ENOMEM, "index_add: %zu rows", n);
    }
    int rc = vqs_index_encode(ix, n, x, codes, lists);
    if (!rc)
        rc = vqs_index_add_encoded(ix, n, codes, lists, ids);
    free(codes);
    free(lists);
    return rc;
}

/* ---- remove ------------------------------------------------------------------ */

int vqs_index_remove(vqs_index *ix, size_t n, const int64_t *ids, size_t *removed)
{
    if (!ix || (n && !ids))
        return vqs_seterr(VQS_EINVAL, "index_remove: NULL argument");
    size_t cnt = 0;
    uint8_t tmp[8192], *big = NULL, *code = tmp;
    size_t one = ix->fs_bs * ix->cs; /* code + one: a single code after vqs_ivf_fs_write's buffer */
    if (ix->fastscan && one + ix->cs > sizeof tmp) {
        if (!(big = malloc(one + ix->cs)))
            return vqs_seterr(VQS_ENOMEM, "index_remove");
        code = big;
    }
    for (size_t i = 0; i < n; i++) {
        idslot *s = vqs_ivf_map_find(ix, ids[i]);
        if (!s)
            continue;
        size_t l = LOC_LIST(s->loc), pos = LOC_POS(s->loc);
        ivlist *L = &ix->lists[l];
        size_t last = L->n - 1;
        vqs_ivf_map_del(ix, s);
        if (pos != last) {
            int64_t moved = L->ids[last];
            L->ids[pos] = moved;
            if (ix->fastscan) {
                vqs_ivf_fs_get(ix, L->codes, last, code + one);
                vqs_ivf_fs_write(ix, L, pos, 1, code + one, code);
            } else {
                memcpy(L->codes + pos * ix->cs, L->codes + last * ix->cs, ix->cs);
            }
            if (ix->rcs)
                memcpy(L->rcodes + pos * ix->rcs, L->rcodes + last * ix->rcs, ix->rcs);
            if (L->nf)
                L->nf[pos] = L->nf[last];
            vqs_ivf_map_find(ix, moved)->loc = LOC(l, pos);
        }
        if (ix->fastscan) { /* zero the freed row so padding reads as code 0 */
            memset(code + one, 0, ix->cs);
            L->n = last + 1;
            vqs_ivf_fs_write(ix, L, last, 1, code + one, code);
        }
        L->n = last;
        ix->ntotal--;
        cnt++;
    }
    free(big);
    if (removed)
        *removed = cnt;
    return 0;
}

/* ---- search ------------------------------------------------------------------ */

typedef struct cand {
    float key;
    int64_t id;
    uint64_t loc;
} cand;

static inline int worse(const cand *a, const cand *b) /* a ranks after b */
{
    return a->key > b->key || (a->key == b->key && a->id > b->id);
}

/* bounded max-heap: h[0] is the worst kept candidate */
typedef struct heap {
    cand *h;
    size_t n, k;
} heap;

static void heap_push(heap *H, cand c)
{
    if (H->n == H->k) {
        if (!worse(&H->h[0], &c))
            return;
        size_t i = 0;
        for (;;) { /* sift c down from the root */
            size_t l = 2 * i + 1, r = l + 1, m = i;
            const cand *cm = &c;
            if (l < H->n && worse(&H->h[l], cm)) {
                m = l;
                cm = &H->h[l];
            }
            if (r < H->n && worse(&H->h[r], cm))
                m = r;
            if (m == i)
                break;
            H->h[i] = H->h[m];
            i = m;
        }
        H->h[i] = c;
        return;
    }
    size_t i = H->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!worse(&c, &H->h[p]))
            break;
        H->h[i] = H->h[p];
        i = p;
    }
    H->h[i] = c;
}

static inline float heap_thr(const heap *H) { return H->n == H->k ? H->h[0].key : INFINITY; }

static int cand_cmp(const void *p, const void *q)
{
    const cand *a = p, *b = q;
    return worse(a, b) ? 1 : worse(b, a) ? -1 : 0;
}

typedef struct scratch {
    vqs_codec_query *cq, *rq;
    float *q;      /* d: the prepared query */
    float *res;    /* d: residual query */
    float *out;    /* CHUNK */
    uint16_t *o16; /* CHUNK */
    uint32_t *idx; /* CHUNK */
    float *lut;    /* fast scan: key tables (negated for IP), fs_M * 2^bits */
    uint8_t *lut8; /* fast scan: quantised tables */
    uint8_t *code; /* one code */
    uint8_t *sv;   /* fast scan: survivors' codes, CHUNK * (M + 1) / 2 */
    float *qtab;   /* precomputed tables: -2 <q_m, C_mj>, M * ksub */
    float *ltab;   /* and one list's table, M * ksub */
    cand *cands;   /* k' */
    float *vecs;   /* rerank source: k' * d */
    uint8_t *rbuf; /* refine codec with the cosine correction: k' codes */
    float *rnrm;   /* and their |x^|, k' */
    int64_t *cids; /* k' */
    size_t cap;    /* k' capacity */
} scratch;

static void scratch_free(scratch *s)
{
    vqs_codec_query_free(s->cq);
    vqs_codec_query_free(s->rq);
    free(s->q);
    free(s->res);
    free(s->out);
    free(s->o16);
    free(s->idx);
    free(s->lut);
    free(s->lut8);
    free(s->code);
    free(s->sv);
    free(s->cands);
    free(s->qtab);
    free(s->ltab);
    free(s->vecs);
    free(s->rbuf);
    free(s->rnrm);
    free(s->cids);
    memset(s, 0, sizeof *s);
}

typedef struct search_job {
    const vqs_index *ix;
    const vqs_search_params *p;
    const vqs_kernels *K;
    const float *q;
    size_t k, kk; /* results, first-stage candidates */
    size_t nprobe;
    const int64_t *probe; /* nq * nprobe lists, or NULL (flat) */
    const float *pdist;   /* their coarse scores */
    int rerank;
    const vqs_rerank_source *src;
    int64_t *ids;
    float *dist;
    scratch *sc; /* per thread */
} search_job;

static int scratch_init(const search_job *J, scratch *s)
{
    const vqs_index *ix = J->ix;
    size_t d = ix->d;
    if (s->q)
        return 0;
    s->q = malloc(sizeof(float) * d);
    s->res = malloc(sizeof(float) * d);
    s->out = malloc(sizeof(float) * CHUNK);
    s->o16 = malloc(sizeof(uint16_t) * CHUNK);
    s->idx = malloc(sizeof(uint32_t) * CHUNK);
    s->code = malloc(ix->cs + 1);
    if (ix->fastscan) {
        size_t K = (size_t)1 << ix->fastscan;
        s->lut = malloc(sizeof(float) * ix->fs_M * K);
        s->lut8 = malloc(((ix->fs_M + 1) / 2 * 2) * K);
        s->sv = malloc((size_t)CHUNK * ix->cs);
    }
    if (ix->ptab) {
        s->qtab = malloc(sizeof(float) * ix->pq_M * ix->pq_ksub);
        s->ltab = malloc(sizeof(float) * ix->pq_M * ix->pq_ksub);
        if (!s->qtab || !s->ltab)
            return vqs_seterr(VQS_ENOMEM, "index_search: scratch");
    }
    s->cap = J->kk;
    s->cands = malloc(sizeof(cand) * J->kk);
    s->cids = malloc(sizeof(int64_t) * J->kk);
    if (J->src)
        s->vecs = malloc(sizeof(float) * J->kk * d);
    if (J->rerank && !J->src && ix->rnorms) {
        s->rbuf = malloc(ix->rcs * J->kk);
        s->rnrm = malloc(sizeof(float) * J->kk);
    }
    if (!s->q || !s->res || !s->out || !s->o16 || !s->idx || !s->code || !s->cands || !s->cids ||
        (ix->fastscan && (!s->lut || !s->lut8 || !s->sv)) || (J->src && !s->vecs) ||
        (J->rerank && !J->src && ix->rnorms && (!s->rbuf || !s->rnrm)))
        return vqs_seterr(VQS_ENOMEM, "index_search: scratch");
    return 0;
}

/* Keeps the candidates of out[0..n) (keys) that beat the heap. */
static void take(const search_job *J, heap *H, const float *out, size_t n, size_t l, size_t base,
                 const int64_t *lids, scratch *s)
{
    /* keys equal to the threshold pass too: the (key, id) order below breaks
     * the tie, so the result does not depend on the order of the entries */
    float thr = heap_thr(H);
    size_t m = J->K->select_lt(out, n, thr < INFINITY ? nextafterf(thr, INFINITY) : thr, s->idx);
    for (size_t t = 0; t < m; t++) {
        size_t i = s->idx[t];
        cand c = {out[i], lids[base + i], LOC(l, base + i)};
        if (H->n == H->k && !worse(&H->h[0], &c))
            continue;
        if (J->p && J->p->filter && !J->p->filter(J->p->filter_ctx, c.id))
            continue;
        heap_push(H, c);
    }
}

static int past_deadline(const search_job *J)
{
    return J->p && J->p->deadline > 0 && vqs_now() > J->p->deadline;
}

static int deadline_err(void)
{
    return vqs_seterr(-ETIMEDOUT, "the search ran past its deadline and was stopped");
}

/* The largest key k (before the factor) for which k * f <= thr can hold
 * with f in the list's [nf_lo, nf_hi] (all positive): thr / f is largest at
 * f = nf_lo for thr >= 0 and at nf_hi for thr < 0. Slack of 2^-20 relative
 * covers the float rounding of k * f against the exact product. */
static double unscaled_thr(const ivlist *L, float thr)
{
    if (!(thr < INFINITY))
        return INFINITY;
    double t = thr >= 0 ? (double)thr / L->nf_lo : (double)thr / L->nf_hi;
    return t + fabs(t) * 0x1p-20 + 0x1p-126;
}

/* Scans list l with the prepared query (view v); add: constant added to the
 * codec score (IP residual: <q, c>); neg: inner product (keys are -score).
 * With the cosine correction each key is multiplied by the vector's factor
 * (nf) before it meets the heap. -ETIMEDOUT once the search's deadline has
 * passed (checked per chunk). */
static int scan_list(const search_job *J, heap *H, size_t l, const vqs_codec_view *v, float add,
                      int neg, scratch *s)
{
    const vqs_index *ix = J->ix;
    const ivlist *L = &ix->lists[l];
    const vqs_kernels *K = J->K;
    size_t cs = ix->cs;
    if (L->n == 0)
        return 0;
    if (ix->fastscan && v->kind == (ix->fastscan == 4 ? VQS_VIEW_LUT4 : VQS_VIEW_LUT8)) {
        size_t M = ix->fs_M, T = M << ix->fastscan, bs = ix->fs_bs;
        /* key tables: -lut for inner products */
        for (size_t j = 0; j < T; j++)
            s->lut[j] = neg ? -v->lut[j] : v->lut[j];
        float kadd = neg ? -(add + v->bias) : add + v->bias;
        float bias = 0, scale = 1, err = 0, lim = NAN; /* lim: the limit quantised for */
        for (size_t base = 0; base < L->n; base += CHUNK) {
            if (past_deadline(J))
                return deadline_err();
            size_t n = L->n - base < CHUNK ? L->n - base : CHUNK;
            const uint8_t *blocks = L->codes + base / bs * ix->fs_block;
            /* (re-)quantise with the current k-th key as the limit: first
             * chunk, and whenever the heap has shrunk the useful span of
             * the tables to half of what they were quantised for. With the
             * cosine factors the limit is on the unscaled keys. */
            double thr_u = L->nf ? unscaled_thr(L, heap_thr(H)) : heap_thr(H);
            float now = (float)(thr_u - kadd);
            if (lim != lim || (now < INFINITY && now > bias && now - bias <= 0.5f * (lim - bias))) {
                lim = now;
                if (ix->fastscan == 4)
                    vqs_pq4fs_quantize(s->lut, M, lim, s->lut8, &bias, &scale, &err);
                else
                    vqs_pq8fs_quantize(s->lut, M, lim, s->lut8, &bias, &scale, &err);
            }
            if (ix->fastscan == 4)
                K->pq4fs_scan(s->lut8, M, blocks, (n + 31) / 32, s->o16);
            else
                K->pq8fs_scan(s->lut8, M, blocks, (n + 63) / 64, s->o16);
            double thr = L->nf ? unscaled_thr(L, heap_thr(H)) : heap_thr(H);
            uint16_t t16 = 65535;
            if (thr < INFINITY) {
                double u = floor((thr - kadd - bias + err) / scale);
                t16 = u < 0 ? 0 : u > 65535 ? 65535 : (uint16_t)u;
                if (u < 0)
                    continue;
            }
            size_t m = K->select_le_u16(s->o16, n, t16, s->idx);
            /* exact re-score of the survivors with the float tables */
            if (ix->fastscan == 4)
                vqs_pq4fs_rescore(s->lut, M, kadd, blocks, s->idx, m, s->out);
            else
                vqs_pq8fs_rescore(s->lut, M, kadd, blocks, s->idx, m, s->out);
            if (L->nf)
                for (size_t t = 0; t < m; t++)
                    s->out[t] *= L->nf[base + s->idx[t]];
            for (size_t t = 0; t < m; t++) {
                cand c = {s->out[t], L->ids[base + s->idx[t]], LOC(l, base + s->idx[t])};
                if (H->n == H->k && !worse(&H->h[0], &c))
                    continue;
                if (J->p && J->p->filter && !J->p->filter(J->p->filter_ctx, c.id))
                    continue;
                heap_push(H, c);
            }
        }
        return 0;
    }
    for (size_t base = 0; base < L->n; base += CHUNK) {
        if (past_deadline(J))
            return deadline_err();
        size_t n = L->n - base < CHUNK ? L->n - base : CHUNK;
        const uint8_t *codes = L->codes + base * cs;
        switch (v->kind) {
        case VQS_VIEW_LUT8:
            K->lut8(v->lut, v->m, v->bias + add, codes, cs, n, s->out);
            break;
        case VQS_VIEW_LUT4:
            K->lut4(v->lut, v->m, v->bias + add, codes, cs, n, s->out);
            break;
        case VQS_VIEW_SQ:
            if (v->l2)
                K->sq_l2((vqs_sq_type)v->sq_type, v->q, v->w, v->d, codes, cs, n, s->out);
            else
                K->sq_ip((vqs_sq_type)v->sq_type, v->q, v->bias + add, v->d, codes, cs, n, s->out);
            if (v->l2 && add != 0)
                for (size_t i = 0; i < n; i++)
                    s->out[i] += add;
            break;
        case VQS_VIEW_BIN:
            K->bin_est(v->tab, v->nb, v->cst + add, v->sumv, v->isd, v->l2, codes, cs, n, s->out);
            break;
        default:
            vqs_codec_query_score(s->cq, n, codes, s->out);
            if (add != 0)
                for (size_t i = 0; i < n; i++)
                    s->out[i] += add;
        }
        if (L->nf) { /* keys -score / |x^|: a loop the compiler vectorises */
            const float *f = L->nf + base;
            float sg = neg ? -1.0f : 1.0f;
            for (size_t i = 0; i < n; i++)
                s->out[i] = sg * s->out[i] * f[i];
        } else if (neg) {
            for (size_t i = 0; i < n; i++)
                s->out[i] = -s->out[i];
        }
        take(J, H, s->out, n, l, base, L->ids, s);
    }
    return 0;
}

static int search_one(void *ctx, size_t qi, int tid)
{
    const search_job *J = ctx;
    const vqs_index *ix = J->ix;
    scratch *s = &J->sc[tid];
    int rc = scratch_init(J, s);
    if (rc)
        return rc;
    size_t d = ix->d;
    memcpy(s->q, J->q + qi * d, sizeof(float) * d);
    if (ix->metric == VQS_METRIC_COS)
        vqs_normalize_rows(1, d, s->q);
    vqs_metric im = inner_metric(ix);
    int neg = im == VQS_METRIC_IP;
    heap H = {s->cands, 0, J->kk};
    vqs_codec_view v;
    if (!ix->ivf) {
        if (!s->cq)
            rc = vqs_codec_query_create(ix->codec, im, s->q, &s->cq);
        else
            rc = vqs_codec_query_reset(s->cq, s->q);
        if (rc)
            return rc;
        vqs_codec_query_view(s->cq, &v);
        if ((rc = scan_list(J, &H, 0, &v, 0, neg, s)))
            return rc;
    } else {
        const int64_t *pr = J->probe + qi * J->nprobe;
        const float *pd = J->pdist + qi * J->nprobe;
        int once = !ix->by_residual || neg; /* one prepared query for every list */
        size_t M = ix->pq_M, ksub = ix->pq_ksub;
        if (ix->ptab) {
            for (size_t m = 0; m < M; m++)
                for (size_t j = 0; j < ksub; j++) {
                    const float *r = ix->pq_cent + (m * ksub + j) * ix->pq_dsub;
                    const float *qm = s->q + m * ix->pq_dsub;
                    float v = 0;
                    for (size_t u = 0; u < ix->pq_dsub; u++)
                        v += qm[u] * r[u];
                    s->qtab[m * ksub + j] = -2 * v;
                }
            memset(&v, 0, sizeof v);
            v.kind = ksub == 256 ? VQS_VIEW_LUT8 : VQS_VIEW_LUT4;
            v.l2 = 1;
            v.m = M;
            v.lut = s->ltab;
        }
        if (once) {
            rc = s->cq ? vqs_codec_query_reset(s->cq, s->q) : vqs_codec_query_create(ix->codec, im, s->q, &s->cq);
            if (rc)
                return rc;
            vqs_codec_query_view(s->cq, &v);
        }
        for (size_t p = 0; p < J->nprobe; p++) {
            if (pr[p] < 0)
                continue;
            size_t l = (size_t)pr[p];
            float add = 0;
            if (ix->ptab) {
                const float *t = ix->ptab + l * M * ksub;
                for (size_t j = 0; j < M * ksub; j++)
                    s->ltab[j] = t[j] + s->qtab[j];
                v.bias = pd[p]; /* |q - c|^2 */
            } else if (!once) {
                const float *c = ix->centroids + l * d;
                for (size_t j = 0; j < d; j++)
                    s->res[j] = s->q[j] - c[j];
                rc = s->cq ? vqs_codec_query_reset(s->cq, s->res)
                           : vqs_codec_query_create(ix->codec, im, s->res, &s->cq);
                if (rc)
                    return rc;
                vqs_codec_query_view(s->cq, &v);
            } else if (ix->by_residual) {
                add = pd[p]; /* <q, c> */
            }
            if ((rc = scan_list(J, &H, l, &v, add, neg, s)))
                return rc;
        }
    }
    /* second stage */
    size_t nc = H.n;
    cand *c = H.h;
    if (J->rerank && nc) {
        if (J->src) {
            for (size_t i = 0; i < nc; i++)
                s->cids[i] = c[i].id;
            if ((rc = J->src->fetch(J->src->ctx, tid, nc, s->cids, s->vecs)))
                return rc;
        } else if (ix->refine == 2) {
            rc = s->rq ? vqs_codec_query_reset(s->rq, s->q) : vqs_codec_query_create(ix->rcodec, im, s->q, &s->rq);
            if (rc)
                return rc;
            if (ix->rnorms) { /* |x^| of the candidates' refine codes, row by row */
                for (size_t i = 0; i < nc; i++)
                    memcpy(s->rbuf + i * ix->rcs,
                           ix->lists[LOC_LIST(c[i].loc)].rcodes + LOC_POS(c[i].loc) * ix->rcs, ix->rcs);
                if ((rc = vqs_codec_norms_compute(ix->rnorms, nc, s->rbuf, ix->rcs, NULL, s->rnrm)))
                    return rc;
            }
        }
        for (size_t i = 0; i < nc; i++) {
            const float *y = NULL;
            float sc;
            if (J->src) {
                y = s->vecs + i * d;
            } else {
                const ivlist *L = &ix->lists[LOC_LIST(c[i].loc)];
                const uint8_t *r = L->rcodes + LOC_POS(c[i].loc) * ix->rcs;
                if (ix->refine == 1) {
                    y = (const float *)r;
                } else {
                    vqs_codec_query_score(s->rq, 1, r, &sc);
                    if (ix->rnorms && s->rnrm[i] > 0 && isfinite(1.0f / s->rnrm[i]))
                        sc *= 1.0f / s->rnrm[i];
                    c[i].key = neg ? -sc : sc;
                    continue;
                }
            }
            double acc = 0;
            if (neg) {
                for (size_t j = 0; j < d; j++)
                    acc += (double)s->q[j] * y[j];
                c[i].key = (float)-acc;
            } else {
                for (size_t j = 0; j < d; j++) {
                    double e = (double)s->q[j] - y[j];
                    acc += e * e;
                }
                c[i].key = (float)acc;
            }
        }
    }
    qsort(c, nc, sizeof *c, cand_cmp);
    int64_t *oid = J->ids + qi * J->k;
    float *od = J->dist ? J->dist + qi * J->k : NULL;
    for (size_t i = 0; i < J->k; i++) {
        if (i < nc) {
            oid[i] = c[i].id;
            if (od)
                od[i] = neg ? -c[i].key : c[i].key;
        } else {
            oid[i] = -1;
            if (od)
                od[i] = neg ? -INFINITY : INFINITY;
        }
    }
    return 0;
}

#define QBATCH 4096 /* queries per coarse step: bounds the probe arrays */

int vqs_index_search(const vqs_index *ix, const vqs_search_params *p, size_t nq, const float *q,
                     size_t k, int64_t *ids, float *dist)
{
    if (!ix || (nq && (!q || !ids)))
        return vqs_seterr(VQS_EINVAL, "index_search: NULL argument");
    if (k == 0 || k > (1u << 20))
        return vqs_seterr(VQS_EINVAL, "index_search: k = %zu (1..1048576)", k);
    if (!ix->trained)
        return vqs_seterr(VQS_EINVAL, "index_search: index '%s' is not trained", ix->spec);
    if (nq == 0)
        return 0;
    int rc = vqs_ivf_check_rows(ix, nq, q, "index_search: query");
    if (rc)
        return rc;
    search_job J = {.ix = ix, .p = p, .K = vqs_kernels_active(), .k = k};
    const vqs_rerank_source *src = p ? p->source : NULL;
    int want = p ? p->rerank : 0;
    J.rerank = want >= 0 && (src || ix->refine) && !(want == 0 && !src && !ix->refine);
    if (want > 0 && !src && !ix->refine)
        return vqs_seterr(VQS_EINVAL, "index_search: rerank asked for, but '%s' has no refine copy "
                                      "(add ,RFlat or ,Refine(...)) and no source was given", ix->spec);
    J.src = J.rerank ? src : NULL;
    float os = p && p->oversampling > 0 ? p->oversampling : ix->o.oversampling;
    if (os < 1)
        os = 1;
    J.kk = J.rerank ? (size_t)ceil((double)k * os) : k;
    J.nprobe = p && p->nprobe ? p->nprobe : ix->o.nprobe;
    if (J.nprobe > ix->nlist)
        J.nprobe = ix->nlist;
    int nt = p && p->nthreads > 0 ? p->nthreads : ix->nthreads;
    J.sc = calloc((size_t)nt, sizeof(scratch));
    int64_t *probe = NULL;
    float *pdist = NULL, *qn = NULL;
    if (!J.sc)
        return vqs_seterr(VQS_ENOMEM, "index_search");
    if (ix->ivf) {
        size_t b = nq < QBATCH ? nq : QBATCH;
        probe = malloc(sizeof(int64_t) * b * J.nprobe);
        pdist = malloc(sizeof(float) * b * J.nprobe);
        qn = ix->metric == VQS_METRIC_COS ? malloc(sizeof(float) * b * ix->d) : NULL;
        if (!probe || !pdist || (ix->metric == VQS_METRIC_COS && !qn)) {
            rc = vqs_seterr(VQS_ENOMEM, "index_search: probe lists");
            goto done;
        }
    }
    for (size_t q0 = 0; q0 < nq && !rc; q0 += QBATCH) {
        size_t n = nq - q0 < QBATCH ? nq - q0 : QBATCH;
        J.q = q + q0 * ix->d;
        J.ids = ids + q0 * k;
        J.dist = dist ? dist + q0 * k : NULL;
        if (ix->ivf) {
            const float *qq = J.q;
            if (qn) {
                memcpy(qn, J.q, sizeof(float) * n * ix->d);
                vqs_normalize_rows(n, ix->d, qn);
                qq = qn;
            }
            vqs_matrix base = {ix->centroids, ix->nlist, ix->d, ix->d}, qm = {qq, n, ix->d, ix->d};
            vqs_exact_opts eo = {.nthreads = nt, .no_proof = 1};
            if ((rc = vqs_exact_knn(&eo, inner_metric(ix), &base, &qm, J.nprobe, probe, pdist)))
                break;
            J.probe = probe;
            J.pdist = pdist;
        }
        rc = vqs_parallel_for(nt, n, search_one, &J);
    }
done:
    for (int t = 0; t < nt; t++)
        scratch_free(&J.sc[t]);
    free(J.sc);
    free(probe);
    free(pdist);
    free(qn);
    return rc;
}
