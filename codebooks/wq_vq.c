/*
 * wq_vq.c: vector quantization of weights: VQS_WQ_VQ (VPTQ-style k-means
 * codebooks over short weight sub-vectors) and VQS_WQ_CODEC (an existing
 * vqs codec applied to every row).
 *
 * VQS_WQ_VQ, "vq<d>x<bits>[r<bits>][o<pct>]" (Liu et al. 2024, "VPTQ:
 * Extreme Low-bit Vector Post-Training Quantization"):
 * - Every row (output channel) is cut into sub-vectors of d consecutive
 *   weights along the input dimension; one codebook of 2^bits centroids is
 *   trained per tensor over all of its sub-vectors with the k-means core
 *   (vqs_kmeans: k-means++, 25 Lloyd iterations, seeded by spec.seed; the
 *   result does not depend on the thread count), and each sub-vector is
 *   stored as the index of its nearest centroid.
 * - Without VPTQ's Hessian weighting (its second-order, channel-independent
 *   optimisation and its layer-wise fine-tuning): both need calibration
 *   activations, and a weight file alone has none. The objective here is
 *   the plain squared error of the weights.
 * - Residual stage (r<bits>): a second k-means codebook of 2^bits centroids
 *   over the residuals w - c1[code1] (as VPTQ's residual VQ); a sub-vector
 *   decodes to c1[code1] + c2[code2]. Seeded with spec.seed + 1 so the two
 *   stages do not start from the same random choices.
 * - Outlier columns (o<pct>): the ceil(pct% * cols) columns with the largest
 *   L2 norm over the rows (ties: the lower index) are removed before the
 *   rows are cut and kept in fp16, as VPTQ's outlier elimination sets
 *   outlier columns apart (VPTQ quantizes them with a codebook of their
 *   own; fp16 is the simpler, exact choice the issue asks for). At most
 *   cols - 1 columns, so a row always keeps one column for the codebook.
 *   The percent has at most two decimals ("o0.25"), so the name round-trips
 *   exactly and the column count is integer arithmetic.
 * - Few distinct sub-vectors: k is capped at the number of distinct
 *   sub-vectors (a sort of the sub-vectors counts them; -0 and +0 are the
 *   same). Then the codebook *is* those sub-vectors, in sorted order, each
 *   sub-vector's code is its own entry (no k-means, no distance rounding),
 *   and the tensor comes back exactly up to the fp16 rounding of the
 *   codebook. The cap shows in the part shapes: "codebook" is [k, d] with
 *   k <= 2^bits. A tensor smaller than its codebook therefore never fails
 *   (the shared checkpoint's 64 x 64 matrices have 512 sub-vectors of 8,
 *   fewer than vq8x12's 4096 centroids), and its bits per weight, which
 *   count the codebook, say honestly that it did not compress.
 * - Codebooks are stored in fp16, as VPTQ does; the encoder assigns every
 *   sub-vector against the fp16-rounded centroids (so the codes are the
 *   nearest for what the decoder will have), and the residual stage trains
 *   on the residuals of those rounded centroids. Rejected: fp32 codebooks
 *   (twice the bytes for nothing a 4-16 bit code can resolve). Weights
 *   beyond fp16's range (|w| > 65504) are refused (VQS_ERANGE naming the
 *   weight): the fp16 parts could not hold them.
 * - A row whose (outlier-free) length is not a multiple of d: the last
 *   cols' mod d weights of each row are kept in fp16 ("tail"). Rejected:
 *   padding the short sub-vector with zeros, which would put sub-vectors
 *   whose last entries are forced to zero into the same codebook, pulling
 *   centroids toward zero in those coordinates and spending centroids on
 *   them; a codebook of its own for the tail costs more than the tail for
 *   the usual widths (all multiples of 8). A row shorter than d is all tail
 *   and the tensor has no codebook.
 *
 * Parts (rows x cols tensor; cols' = cols - nout, nsub = cols' / d, ntail =
 * cols' mod d; a part is absent when its count is 0):
 *   "codebook"     F16 [k, d], k <= 2^bits       (the first stage)
 *   "codes"        U8 (bits <= 8) or U16 LE [rows, nsub]: index into codebook
 *   "codebook_r"   F16 [k_r, d], k_r <= 2^r      (residual stage)
 *   "codes_r"      U8 / U16 [rows, nsub]
 *   "outlier_cols" I32 [nout]: the outlier columns, ascending
 *   "outliers"     F16 [rows, nout]: their weights, in that order
 *   "tail"         F16 [rows, ntail]: the last ntail non-outlier weights
 * The other cols' columns, in ascending order, are the sub-vectors.
 *
 * VQS_WQ_CODEC, "codec:<spec>": the vqs codec spec (vqs_codebook.h) with d =
 * cols is trained on the tensor's rows (seed spec.seed, default options)
 * and applied to every row. Parts: "codec" U8 [blob bytes] (vqs_codec_save's
 * blob, checksummed) and "codes" U8 [rows, code_size]. A codec that cannot
 * be trained on so few rows (PQ with 2^8 centroids per sub-space needs 256
 * rows) is refused with VQS_ESPEC.
 *
 * Decode checks every part's type and shape (wq_need_part) and every code
 * against its codebook size (VQS_ECORRUPT naming the row and sub-vector),
 * and the outlier columns (ascending, inside the row), before it reads
 * anything through them, in one thread so that the error detail (which is
 * thread-local) reaches the caller. Then rows are decoded in parallel.
 */
#define _GNU_SOURCE /* qsort_r */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vqs_codebook.h"
#include "wq_internal.h"

#define VQ_MIN_DIM 2
#define VQ_MAX_DIM 32
#define VQ_MAX_BITS 16
#define F16_MAX 65504.0f

/* ---- grammar ------------------------------------------------------------- */

/* The outlier share in hundredths of a percent (0.25% -> 25). */
static long outlier_hundredths(const vqs_wq_spec *s) { return lroundf(s->vq_outliers * 10000.0f); }

static int check_spec(const vqs_wq_spec *s)
{
    if (s->vq_dim < VQ_MIN_DIM || s->vq_dim > VQ_MAX_DIM)
        return vqs_seterr(VQS_ESPEC, "vq: sub-vector length %d outside %d..%d", s->vq_dim,
                          VQ_MIN_DIM, VQ_MAX_DIM);
    if (s->vq_bits < 1 || s->vq_bits > VQ_MAX_BITS)
        return vqs_seterr(VQS_ESPEC, "vq: %d bits per code outside 1..%d", s->vq_bits,
                          VQ_MAX_BITS);
    if (s->vq_res_bits < 0 || s->vq_res_bits > VQ_MAX_BITS)
        return vqs_seterr(VQS_ESPEC, "vq: residual stage of %d bits outside 0..%d",
                          s->vq_res_bits, VQ_MAX_BITS);
    long h = outlier_hundredths(s);
    if (!(s->vq_outliers >= 0 && s->vq_outliers < 0.5f) || (s->vq_outliers > 0 && h < 1) ||
        h >= 5000)
        return vqs_seterr(VQS_ESPEC, "vq: outlier share %g outside [0.01%%, 50%%)",
                          (double)s->vq_outliers * 100);
    return 0;
}

/* Reads 1..6 decimal digits at *p. */
static int digits(const char **p, long *v)
{
    const char *q = *p;
    long x = 0;
    int n = 0;
    while (*q >= '0' && *q <= '9') {
        if (++n > 6)
            return -1;
        x = x * 10 + (*q++ - '0');
    }
    if (!n)
        return -1;
    *p = q;
    *v = x;
    return 0;
}

int wq_vq_parse(const char *s, vqs_wq_spec *out)
{
    if (!s || !out)
        return vqs_seterr(VQS_EINVAL, "weight format: NULL");
    memset(out, 0, sizeof *out);
    out->kind = VQS_WQ_VQ;
    const char *p = s;
    long d, bits, rb = 0, pct_h = 0;
    if ((p[0] != 'v' && p[0] != 'V') || (p[1] != 'q' && p[1] != 'Q'))
        return vqs_seterr(VQS_ESPEC, "weight format '%s': expected vq<d>x<bits>", s);
    p += 2;
    if (digits(&p, &d))
        return vqs_seterr(VQS_ESPEC, "weight format '%s': expected the sub-vector length "
                          "(%d..%d) after 'vq'", s, VQ_MIN_DIM, VQ_MAX_DIM);
    if (d < VQ_MIN_DIM || d > VQ_MAX_DIM)
        return vqs_seterr(VQS_ESPEC, "weight format '%s': sub-vector length %ld outside %d..%d",
                          s, d, VQ_MIN_DIM, VQ_MAX_DIM);
    if (*p != 'x' && *p != 'X')
        return vqs_seterr(VQS_ESPEC, "weight format '%s': expected 'x<bits>' after 'vq%ld'", s,
                          d);
    p++;
    if (digits(&p, &bits))
        return vqs_seterr(VQS_ESPEC, "weight format '%s': expected the bits per code (1..%d) "
                          "after 'x'", s, VQ_MAX_BITS);
    if (bits < 1 || bits > VQ_MAX_BITS)
        return vqs_seterr(VQS_ESPEC, "weight format '%s': %ld bits per code outside 1..%d", s,
                          bits, VQ_MAX_BITS);
    if (*p == 'r' || *p == 'R') {
        p++;
        if (digits(&p, &rb) || rb < 1 || rb > VQ_MAX_BITS)
            return vqs_seterr(VQS_ESPEC, "weight format '%s': 'r' needs the residual stage's "
                              "bits, 1..%d", s, VQ_MAX_BITS);
    }
    if (*p == 'o' || *p == 'O') {
        p++;
        long ip = 0, fr = 0;
        int nfr = 0;
        int have = !digits(&p, &ip);
        if (*p == '.') {
            p++;
            while (*p >= '0' && *p <= '9') {
                if (++nfr > 2)
                    return vqs_seterr(VQS_ESPEC, "weight format '%s': the outlier percent has "
                                      "at most two decimals", s);
                fr = fr * 10 + (*p++ - '0');
            }
            if (nfr == 1)
                fr *= 10;
            have = have || nfr > 0;
        }
        if (!have)
            return vqs_seterr(VQS_ESPEC, "weight format '%s': 'o' needs the percent of columns "
                              "kept in fp16, e.g. o1 or o0.5", s);
        pct_h = ip * 100 + fr;
        if (pct_h < 1 || pct_h >= 5000)
            return vqs_seterr(VQS_ESPEC, "weight format '%s': outlier columns %ld.%02ld%% "
                              "outside (0, 50)", s, pct_h / 100, pct_h % 100);
    }
    if (*p)
        return vqs_seterr(VQS_ESPEC, "weight format '%s': unexpected '%s' (the grammar is "
                          "vq<d>x<bits>[r<bits>][o<pct>])", s, p);
    out->vq_dim = (int)d;
    out->vq_bits = (int)bits;
    out->vq_res_bits = (int)rb;
    out->vq_outliers = (float)pct_h / 10000.0f;
    return 0;
}

void wq_vq_name(const vqs_wq_spec *s, char *buf, size_t n)
{
    if (!n)
        return;
    int len = snprintf(buf, n, "vq%dx%d", s->vq_dim, s->vq_bits);
    if (s->vq_res_bits && len >= 0 && (size_t)len < n)
        len += snprintf(buf + len, n - (size_t)len, "r%d", s->vq_res_bits);
    long h = outlier_hundredths(s);
    if (h > 0 && len >= 0 && (size_t)len < n) {
        if (h % 100 == 0)
            snprintf(buf + len, n - (size_t)len, "o%ld", h / 100);
        else if (h % 10 == 0)
            snprintf(buf + len, n - (size_t)len, "o%ld.%ld", h / 100, h % 100 / 10);
        else
            snprintf(buf + len, n - (size_t)len, "o%ld.%02ld", h / 100, h % 100);
    }
}

/* ---- geometry ------------------------------------------------------------ */

typedef struct vq_geom {
    size_t d, nout, ccols, nsub, ntail; /* ccols = cols - nout = nsub * d + ntail */
    size_t k1max, k2max;                /* 2^bits, 2^res_bits (0: no residual) */
    vqs_wq_type ctype, rtype;           /* code types */
} vq_geom;

static void geom_of(const vqs_wq_spec *s, size_t cols, vq_geom *g)
{
    size_t h = (size_t)outlier_hundredths(s);
    g->d = (size_t)s->vq_dim;
    g->nout = h ? (h * cols + 9999) / 10000 : 0;
    if (g->nout > cols - 1)
        g->nout = cols - 1;
    g->ccols = cols - g->nout;
    g->nsub = g->ccols / g->d;
    g->ntail = g->ccols % g->d;
    g->k1max = (size_t)1 << s->vq_bits;
    g->k2max = s->vq_res_bits ? (size_t)1 << s->vq_res_bits : 0;
    g->ctype = s->vq_bits <= 8 ? VQS_WQT_U8 : VQS_WQT_U16;
    g->rtype = s->vq_res_bits <= 8 ? VQS_WQT_U8 : VQS_WQT_U16;
}

static void put_f16(void *p, size_t i, float v)
{
    uint16_t h = vqs_f32_to_f16(v);
    ((uint8_t *)p)[2 * i] = (uint8_t)(h & 0xff);
    ((uint8_t *)p)[2 * i + 1] = (uint8_t)(h >> 8);
}

static float get_f16(const void *p, size_t i)
{
    const uint8_t *b = p;
    return vqs_f16_to_f32((uint16_t)(b[2 * i] | b[2 * i + 1] << 8));
}

static void put_code(void *p, vqs_wq_type t, size_t i, uint32_t c)
{
    if (t == VQS_WQT_U8) {
        ((uint8_t *)p)[i] = (uint8_t)c;
    } else {
        ((uint8_t *)p)[2 * i] = (uint8_t)(c & 0xff);
        ((uint8_t *)p)[2 * i + 1] = (uint8_t)(c >> 8);
    }
}

static uint32_t get_code(const void *p, vqs_wq_type t, size_t i)
{
    const uint8_t *b = p;
    return t == VQS_WQT_U8 ? b[i] : (uint32_t)(b[2 * i] | b[2 * i + 1] << 8);
}

/* ---- one stage: codebook and codes ---------------------------------------- */

typedef struct row_cmp_ctx {
    const float *x;
    size_t d;
} row_cmp_ctx;

static int row_cmp(const void *a, const void *b, void *ctx)
{
    const row_cmp_ctx *c = ctx;
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    const float *u = c->x + i * c->d, *v = c->x + j * c->d;
    for (size_t t = 0; t < c->d; t++) {
        if (u[t] < v[t])
            return -1;
        if (u[t] > v[t])
            return 1;
    }
    return i < j ? -1 : i > j; /* stable: the first occurrence leads its group */
}

/* Equal values (-0 == +0). */
static int same_row(const float *u, const float *v, size_t d)
{
    for (size_t t = 0; t < d; t++)
        if (u[t] != v[t])
            return 0;
    return 1;
}

/* Trains one stage over n sub-vectors x (n x d floats): *cb (k x d floats,
 * fp16-rounded, malloc'd), *k (<= kmax) and codes (n, written). */
static int train_stage(const float *x, size_t n, size_t d, size_t kmax, uint64_t seed,
                       int nthreads, int verbose, const char *what, float **cb_out, size_t *k_out,
                       int32_t *codes)
{
    size_t *ord = malloc(sizeof(size_t) * n);
    float *cb = NULL;
    int rc = 0;
    if (!ord) {
        rc = vqs_seterr(VQS_ENOMEM, "vq: %zu sub-vectors", n);
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        ord[i] = i;
    row_cmp_ctx C = {x, d};
    qsort_r(ord, n, sizeof *ord, row_cmp, &C);
    size_t ndistinct = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || !same_row(x + ord[i - 1] * d, x + ord[i] * d, d))
            ndistinct++;
    size_t k = ndistinct < kmax ? ndistinct : kmax;
    cb = malloc(sizeof(float) * k * d);
    if (!cb) {
        rc = vqs_seterr(VQS_ENOMEM, "vq: codebook of %zu x %zu", k, d);
        goto fail;
    }
    if (verbose)
        fprintf(stderr, "vq: %s: %zu sub-vectors of %zu, %zu distinct, %zu centroids%s\n", what,
                n, d, ndistinct, k, ndistinct <= kmax ? " (the distinct sub-vectors)" : "");
    if (ndistinct <= kmax) {
        /* the codebook is the distinct sub-vectors; each keeps its own entry */
        size_t j = 0;
        for (size_t i = 0; i < n; i++) {
            const float *v = x + ord[i] * d;
            if (i > 0 && same_row(cb + (j - 1) * d, v, d)) {
                codes[ord[i]] = (int32_t)(j - 1);
                continue;
            }
            memcpy(cb + j * d, v, sizeof(float) * d);
            codes[ord[i]] = (int32_t)j++;
        }
        for (size_t t = 0; t < k * d; t++)
            cb[t] = vqs_f16_to_f32(vqs_f32_to_f16(cb[t]));
    } else {
        vqs_kmeans_opts ko = {0};
        ko.nthreads = nthreads;
        ko.seed = seed;
        ko.verbose = verbose > 1;
        if ((rc = vqs_kmeans(&ko, n, d, x, k, cb, NULL)))
            goto fail;
        for (size_t t = 0; t < k * d; t++) {
            float r = vqs_f16_to_f32(vqs_f32_to_f16(cb[t]));
            if (!isfinite(r)) {
                rc = vqs_seterr(VQS_ERANGE, "vq: %s: centroid %zu, element %zu is %g, beyond "
                                "fp16's range", what, t / d, t % d, (double)cb[t]);
                goto fail;
            }
            cb[t] = r;
        }
        if ((rc = vqs_kmeans_assign(nthreads, n, d, x, k, cb, codes, NULL)))
            goto fail;
    }
    free(ord);
    *cb_out = cb;
    *k_out = k;
    return 0;
fail:
    free(ord);
    free(cb);
    return rc;
}

/* ---- VQS_WQ_VQ ----------------------------------------------------------- */

static int col_by_norm(const void *a, const void *b, void *ctx)
{
    const double *nrm = ctx;
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    if (nrm[i] != nrm[j])
        return nrm[i] > nrm[j] ? -1 : 1; /* larger norm first */
    return i < j ? -1 : i > j;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

static void put_i32(void *p, size_t i, int32_t v)
{
    uint32_t u = (uint32_t)v;
    uint8_t *b = (uint8_t *)p + 4 * i;
    b[0] = (uint8_t)u, b[1] = (uint8_t)(u >> 8), b[2] = (uint8_t)(u >> 16), b[3] = (uint8_t)(u >> 24);
}

static int32_t get_i32(const void *p, size_t i)
{
    const uint8_t *b = (const uint8_t *)p + 4 * i;
    return (int32_t)((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                     (uint32_t)b[3] << 24);
}

/* The outlier columns (nout, ascending) and the others (keep: cols - nout,
 * ascending) of w. */
static int pick_outliers(const float *w, size_t rows, size_t cols, size_t nout, int32_t *ocols,
                         int32_t *keep)
{
    double *nrm = calloc(cols, sizeof *nrm);
    int32_t *ord = malloc(sizeof(int32_t) * cols);
    if (!nrm || !ord) {
        free(nrm);
        free(ord);
        return vqs_seterr(VQS_ENOMEM, "vq: column norms of %zu columns", cols);
    }
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            nrm[c] += (double)w[r * cols + c] * w[r * cols + c];
    for (size_t c = 0; c < cols; c++)
        ord[c] = (int32_t)c;
    qsort_r(ord, cols, sizeof *ord, col_by_norm, nrm);
    memcpy(ocols, ord, sizeof(int32_t) * nout);
    qsort(ocols, nout, sizeof *ocols, cmp_i32);
    memset(ord, 0, sizeof(int32_t) * cols); /* now: 1 for an outlier column */
    for (size_t i = 0; i < nout; i++)
        ord[ocols[i]] = 1;
    for (size_t c = 0, j = 0; c < cols; c++)
        if (!ord[c])
            keep[j++] = (int32_t)c;
    free(nrm);
    free(ord);
    return 0;
}

static int add_codebook(vqs_wq_tensor *t, const char *name, const float *cb, size_t k, size_t d)
{
    vqs_wq_part *p;
    uint64_t sh[2] = {k, d};
    int rc = vqs_wq_part_add(t, name, VQS_WQT_F16, 2, sh, &p);
    for (size_t i = 0; !rc && i < k * d; i++)
        put_f16(p->data, i, cb[i]);
    return rc;
}

static int add_codes(vqs_wq_tensor *t, const char *name, vqs_wq_type type, const int32_t *codes,
                     size_t rows, size_t nsub)
{
    vqs_wq_part *p;
    uint64_t sh[2] = {rows, nsub};
    int rc = vqs_wq_part_add(t, name, type, 2, sh, &p);
    for (size_t i = 0; !rc && i < rows * nsub; i++)
        put_code(p->data, type, i, (uint32_t)codes[i]);
    return rc;
}

static int vq_encode(const vqs_wq_spec *s, const float *w, size_t rows, size_t cols, int nthreads,
                     int verbose, vqs_wq_tensor *out)
{
    int rc = check_spec(s);
    if (rc)
        return rc;
    for (size_t i = 0; i < rows * cols; i++)
        if (fabsf(w[i]) > F16_MAX)
            return vqs_seterr(VQS_ERANGE, "weight (row %zu, column %zu) = %g is beyond fp16's "
                              "range (65504), which vq's codebooks and fp16 parts cannot hold",
                              i / cols, i % cols, (double)w[i]);
    vq_geom g;
    geom_of(s, cols, &g);
    int32_t *ocols = malloc(sizeof(int32_t) * (g.nout ? g.nout : 1));
    int32_t *keep = malloc(sizeof(int32_t) * g.ccols);
    float *x = NULL, *cb1 = NULL, *cb2 = NULL;
    int32_t *codes1 = NULL, *codes2 = NULL;
    size_t n = rows * g.nsub, d = g.d;
    if (!ocols || !keep) {
        rc = vqs_seterr(VQS_ENOMEM, "vq: %zu columns", cols);
        goto done;
    }
    if (g.nout) {
        if ((rc = pick_outliers(w, rows, cols, g.nout, ocols, keep)))
            goto done;
    } else {
        for (size_t c = 0; c < cols; c++)
            keep[c] = (int32_t)c;
    }
    if (n) {
        x = malloc(sizeof(float) * n * d);
        codes1 = malloc(sizeof(int32_t) * n);
        codes2 = g.k2max ? malloc(sizeof(int32_t) * n) : NULL;
        if (!x || !codes1 || (g.k2max && !codes2)) {
            rc = vqs_seterr(VQS_ENOMEM, "vq: %zu sub-vectors of %zu", n, d);
            goto done;
        }
        for (size_t r = 0; r < rows; r++)
            for (size_t j = 0; j < g.nsub * d; j++)
                x[r * g.nsub * d + j] = w[r * cols + (size_t)keep[j]];
        size_t k1, k2;
        if ((rc = train_stage(x, n, d, g.k1max, s->seed, nthreads, verbose, "codebook", &cb1, &k1,
                              codes1)) ||
            (rc = add_codebook(out, "codebook", cb1, k1, d)) ||
            (rc = add_codes(out, "codes", g.ctype, codes1, rows, g.nsub)))
            goto done;
        if (g.k2max) {
            for (size_t i = 0; i < n; i++)
                for (size_t t = 0; t < d; t++)
                    x[i * d + t] -= cb1[(size_t)codes1[i] * d + t];
            if ((rc = train_stage(x, n, d, g.k2max, s->seed + 1, nthreads, verbose,
                                  "residual codebook", &cb2, &k2, codes2)) ||
                (rc = add_codebook(out, "codebook_r", cb2, k2, d)) ||
                (rc = add_codes(out, "codes_r", g.rtype, codes2, rows, g.nsub)))
                goto done;
        }
    }
    vqs_wq_part *p;
    if (g.nout) {
        uint64_t sh1[1] = {g.nout}, sh2[2] = {rows, g.nout};
        if ((rc = vqs_wq_part_add(out, "outlier_cols", VQS_WQT_I32, 1, sh1, &p)))
            goto done;
        for (size_t i = 0; i < g.nout; i++)
            put_i32(p->data, i, ocols[i]);
        if ((rc = vqs_wq_part_add(out, "outliers", VQS_WQT_F16, 2, sh2, &p)))
            goto done;
        for (size_t r = 0; r < rows; r++)
            for (size_t i = 0; i < g.nout; i++)
                put_f16(p->data, r * g.nout + i, w[r * cols + (size_t)ocols[i]]);
    }
    if (g.ntail) {
        uint64_t sh[2] = {rows, g.ntail};
        if ((rc = vqs_wq_part_add(out, "tail", VQS_WQT_F16, 2, sh, &p)))
            goto done;
        for (size_t r = 0; r < rows; r++)
            for (size_t i = 0; i < g.ntail; i++)
                put_f16(p->data, r * g.ntail + i, w[r * cols + (size_t)keep[g.nsub * d + i]]);
    }
done:
    free(ocols);
    free(keep);
    free(x);
    free(cb1);
    free(cb2);
    free(codes1);
    free(codes2);
    return rc;
}

/* Checks a codebook part (F16 [k, d], 1 <= k <= kmax); *k its size. */
static int need_codebook(const vqs_wq_tensor *t, const char *name, size_t d, size_t kmax,
                         const vqs_wq_part **out, size_t *k)
{
    const vqs_wq_part *p = vqs_wq_part_get(t, name);
    uint64_t kk = p && p->ndim == 2 ? p->shape[0] : 1;
    if (p && p->ndim == 2 && (kk < 1 || kk > kmax)) {
        char fmt[96];
        vqs_wq_spec_name(&t->spec, fmt, sizeof fmt);
        return vqs_seterr(VQS_ESHAPE, "%s tensor (%zu x %zu): part '%s' has %llu centroids, "
                          "expected 1..%zu", fmt, t->rows, t->cols, name, (unsigned long long)kk,
                          kmax);
    }
    *k = (size_t)kk;
    return wq_need_part(t, name, VQS_WQT_F16, 2, kk, d, out);
}

/* Every code of part p (rows x nsub) below k. */
static int check_codes(const vqs_wq_tensor *t, const vqs_wq_part *p, size_t nsub, size_t k)
{
    for (size_t i = 0; i < t->rows * nsub; i++) {
        uint32_t c = get_code(p->data, p->type, i);
        if (c >= k) {
            char fmt[96];
            vqs_wq_spec_name(&t->spec, fmt, sizeof fmt);
            return vqs_seterr(VQS_ECORRUPT, "%s tensor (%zu x %zu): part '%s', row %zu, "
                              "sub-vector %zu: code %u is past the codebook's %zu entries", fmt,
                              t->rows, t->cols, p->name, i / nsub, i % nsub, c, k);
        }
    }
    return 0;
}

typedef struct vq_dec {
    const vqs_wq_tensor *t;
    vq_geom g;
    size_t cols;
    const float *cb1, *cb2;      /* k x d floats */
    const vqs_wq_part *codes1, *codes2, *outliers, *tail;
    const int32_t *ocols, *keep; /* nout, ccols */
    float *w;
} vq_dec;

static int decode_rows(void *ctx, size_t r0, size_t r1)
{
    const vq_dec *D = ctx;
    const vq_geom *g = &D->g;
    size_t d = g->d;
    for (size_t r = r0; r < r1; r++) {
        float *wr = D->w + r * D->cols;
        for (size_t j = 0; j < g->nsub; j++) {
            size_t i = r * g->nsub + j;
            const float *c1 = D->cb1 + (size_t)get_code(D->codes1->data, D->codes1->type, i) * d;
            const float *c2 = D->cb2 ? D->cb2 + (size_t)get_code(D->codes2->data,
                                                                 D->codes2->type, i) * d : NULL;
            float *o = g->nout ? NULL : wr + j * d; /* no outliers: keep[i] == i */
            if (o && c2)
                for (size_t t = 0; t < d; t++)
                    o[t] = c1[t] + c2[t];
            else if (o)
                memcpy(o, c1, sizeof(float) * d);
            else
                for (size_t t = 0; t < d; t++)
                    wr[D->keep[j * d + t]] = c2 ? c1[t] + c2[t] : c1[t];
        }
        for (size_t i = 0; i < g->ntail; i++)
            wr[D->keep[g->nsub * d + i]] = get_f16(D->tail->data, r * g->ntail + i);
        for (size_t i = 0; i < g->nout; i++)
            wr[D->ocols[i]] = get_f16(D->outliers->data, r * g->nout + i);
    }
    return 0;
}

static float *codebook_floats(const vqs_wq_part *p)
{
    size_t n = (size_t)(p->shape[0] * p->shape[1]);
    float *f = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; f && i < n; i++)
        f[i] = get_f16(p->data, i);
    return f;
}

static int vq_decode(const vqs_wq_tensor *t, float *w, int nthreads)
{
    int rc = check_spec(&t->spec);
    if (rc)
        return rc;
    if (!t->rows || !t->cols)
        return 0;
    char fmt[96];
    vqs_wq_spec_name(&t->spec, fmt, sizeof fmt);
    vq_dec D = {0};
    D.t = t;
    D.cols = t->cols;
    D.w = w;
    vq_geom *g = &D.g;
    geom_of(&t->spec, t->cols, g);
    const vqs_wq_part *cbp1 = NULL, *cbp2 = NULL, *ocp = NULL;
    size_t k1 = 0, k2 = 0;
    if (g->nsub) {
        if ((rc = need_codebook(t, "codebook", g->d, g->k1max, &cbp1, &k1)) ||
            (rc = wq_need_part(t, "codes", g->ctype, 2, t->rows, g->nsub, &D.codes1)))
            return rc;
        if (g->k2max &&
            ((rc = need_codebook(t, "codebook_r", g->d, g->k2max, &cbp2, &k2)) ||
             (rc = wq_need_part(t, "codes_r", g->rtype, 2, t->rows, g->nsub, &D.codes2))))
            return rc;
        if ((rc = check_codes(t, D.codes1, g->nsub, k1)) ||
            (D.codes2 && (rc = check_codes(t, D.codes2, g->nsub, k2))))
            return rc;
    }
    if (g->nout) {
        if ((rc = wq_need_part(t, "outlier_cols", VQS_WQT_I32, 1, g->nout, 0, &ocp)) ||
            (rc = wq_need_part(t, "outliers", VQS_WQT_F16, 2, t->rows, g->nout, &D.outliers)))
            return rc;
        for (size_t i = 0; i < g->nout; i++) {
            int32_t c = get_i32(ocp->data, i);
            if (c < 0 || (size_t)c >= t->cols || (i > 0 && c <= get_i32(ocp->data, i - 1)))
                return vqs_seterr(VQS_ECORRUPT, "%s tensor (%zu x %zu): part 'outlier_cols', "
                                  "entry %zu: column %d is outside the row or not ascending",
                                  fmt, t->rows, t->cols, i, (int)c);
        }
    }
    if (g->ntail && (rc = wq_need_part(t, "tail", VQS_WQT_F16, 2, t->rows, g->ntail, &D.tail)))
        return rc;

    int32_t *ocols = malloc(sizeof(int32_t) * (g->nout ? g->nout : 1));
    int32_t *keep = malloc(sizeof(int32_t) * g->ccols);
    uint8_t *isout = calloc(t->cols, 1);
    float *cb1 = cbp1 ? codebook_floats(cbp1) : NULL, *cb2 = cbp2 ? codebook_floats(cbp2) : NULL;
    if (!ocols || !keep || !isout || (cbp1 && !cb1) || (cbp2 && !cb2)) {
        rc = vqs_seterr(VQS_ENOMEM, "%s tensor (%zu x %zu): decode", fmt, t->rows, t->cols);
        goto done;
    }
    for (size_t i = 0; i < g->nout; i++) {
        ocols[i] = get_i32(ocp->data, i);
        isout[ocols[i]] = 1;
    }
    for (size_t c = 0, j = 0; c < t->cols; c++)
        if (!isout[c])
            keep[j++] = (int32_t)c;
    D.cb1 = cb1;
    D.cb2 = cb2;
    D.ocols = ocols;
    D.keep = keep;
    size_t grain = 65536 / t->cols + 1;
    rc = wq_for_rows(nthreads, t->rows, grain, decode_rows, &D);
done:
    free(ocols);
    free(keep);
    free(isout);
    free(cb1);
    free(cb2);
    return rc;
}

/* ---- VQS_WQ_CODEC ---------------------------------------------------------- */

static int codec_encode(const vqs_wq_spec *s, const float *w, size_t rows, size_t cols,
                        int nthreads, int verbose, vqs_wq_tensor *out)
{
    char detail[512];
    vqs_codec_opts co = {0};
    co.nthreads = nthreads;
    co.seed = s->seed;
    co.verbose = verbose > 1;
    vqs_codec *c = NULL;
    void *blob = NULL;
    size_t len = 0;
    int rc = vqs_codec_create(s->codec, cols, &co, &c);
    if (rc) {
        snprintf(detail, sizeof detail, "%s", vqs_errdetail());
        return vqs_seterr(rc == VQS_ENOMEM ? rc : VQS_ESPEC, "weight format 'codec:%s' on a "
                          "tensor of %zu columns: %s", s->codec, cols, detail);
    }
    if (verbose)
        fprintf(stderr, "codec:%s: training on %zu rows of %zu\n", s->codec, rows, cols);
    if ((rc = vqs_codec_train(c, rows, w))) {
        snprintf(detail, sizeof detail, "%s", vqs_errdetail());
        rc = vqs_seterr(rc == VQS_EINVAL ? VQS_ESPEC : rc, "weight format 'codec:%s' cannot be "
                        "trained on a tensor of %zu rows x %zu: %s", s->codec, rows, cols, detail);
        goto done;
    }
    size_t cs = vqs_codec_code_size(c);
    vqs_wq_part *p;
    uint64_t sh[2] = {rows, cs};
    if ((rc = vqs_codec_save(c, &blob, &len)))
        goto done;
    uint64_t bl[1] = {len};
    if ((rc = vqs_wq_part_add(out, "codec", VQS_WQT_U8, 1, bl, &p)))
        goto done;
    memcpy(p->data, blob, len);
    if ((rc = vqs_wq_part_add(out, "codes", VQS_WQT_U8, 2, sh, &p)) ||
        (rc = vqs_codec_encode(c, rows, w, p->data)))
        goto done;
done:
    free(blob);
    vqs_codec_free(c);
    return rc;
}

static int codec_decode(const vqs_wq_tensor *t, float *w, int nthreads)
{
    (void)nthreads; /* the codec's own (one call: its decode rounds by batch) */
    char fmt[96], detail[512];
    vqs_wq_spec_name(&t->spec, fmt, sizeof fmt);
    if (!t->rows || !t->cols)
        return 0;
    const vqs_wq_part *cp = vqs_wq_part_get(t, "codec"), *codes;
    int rc = wq_need_part(t, "codec", VQS_WQT_U8, 1, cp ? cp->shape[0] : 1, 0, &cp);
    if (rc)
        return rc;
    vqs_codec *c = NULL, *want = NULL;
    if ((rc = vqs_codec_load(cp->data, cp->nbytes, &c))) {
        snprintf(detail, sizeof detail, "%s", vqs_errdetail());
        return vqs_seterr(rc, "%s tensor (%zu x %zu): part 'codec': %s", fmt, t->rows, t->cols,
                          detail);
    }
    /* the blob must be the codec the format names, for rows of cols */
    if (vqs_codec_create(t->spec.codec, t->cols, NULL, &want) || vqs_codec_d(c) != t->cols ||
        !vqs_codec_is_trained(c) || strcmp(vqs_codec_spec(c), vqs_codec_spec(want))) {
        rc = vqs_seterr(VQS_ECORRUPT, "%s tensor (%zu x %zu): part 'codec' holds %s%s for "
                        "d = %zu, expected %s for d = %zu", fmt, t->rows, t->cols,
                        vqs_codec_is_trained(c) ? "" : "an untrained ", vqs_codec_spec(c),
                        vqs_codec_d(c), want ? vqs_codec_spec(want) : t->spec.codec, t->cols);
        goto done;
    }
    if ((rc = wq_need_part(t, "codes", VQS_WQT_U8, 2, t->rows, vqs_codec_code_size(c), &codes)))
        goto done;
    rc = vqs_codec_decode(c, t->rows, codes->data, w);
done:
    vqs_codec_free(c);
    vqs_codec_free(want);
    return rc;
}

/* ---- entry points -------------------------------------------------------- */

int wq_vq_encode(const vqs_wq_spec *s, const float *w, size_t rows, size_t cols, int nthreads,
                 int verbose, vqs_wq_tensor *out)
{
    return s->kind == VQS_WQ_CODEC ? codec_encode(s, w, rows, cols, nthreads, verbose, out)
                                   : vq_encode(s, w, rows, cols, nthreads, verbose, out);
}

int wq_vq_decode(const vqs_wq_tensor *t, float *w, int nthreads)
{
    return t->spec.kind == VQS_WQ_CODEC ? codec_decode(t, w, nthreads)
                                        : vq_decode(t, w, nthreads);
}
