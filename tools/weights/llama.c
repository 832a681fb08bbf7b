/*
 * llama.c: the reference Llama-2 forward pass (vqs_llama.h): loading from
 * safetensors or llama2.c's legacy .bin, one-token steps with a key/value
 * cache, whole-sequence logits, and seeded sampling.
 *
 * Design decisions:
 * - The arithmetic is llama2.c's run.c, written again: float32 everywhere,
 *   RMSNorm with eps 1e-5 inside the square root, RoPE computed per position
 *   (freq = 10000^(-(i mod head_size)/head_size) for the even index i of each
 *   pair (i, i+1), cosf/sinf of pos * freq), grouped-query attention with
 *   kv_mul = n_heads / n_kv_heads, softmax with the maximum subtracted,
 *   SwiGLU. Its purpose is to be a reference that quantized variants are
 *   measured against, so clarity beats speed.
 * - Matrix-vector products are plain loops whose dot products keep eight
 *   partial sums in a fixed order: the compiler vectorises them, and the
 *   result does not depend on the thread count, the CPU or a BLAS build.
 *   Rejected: cblas_sgemv (OpenBLAS picks kernels and threads at run time,
 *   so logits could differ between machines; stories260K needs about
 *   1 MFLOP per token, which plain loops do in well under a millisecond).
 * - One token at a time with a key/value cache (as run.c), not a batched
 *   prefill: sampling needs the incremental step anyway, and one code path
 *   serves both.
 * - All weights live in one float32 block; a table names each tensor and
 *   its offset, in the order tok_embeddings, each layer's nine tensors,
 *   norm[, output]. Clone copies the block, set_weight overwrites one slice.
 * - The safetensors config (__metadata__ "config", JSON) takes llama2.c's
 *   names; "max_seq_len" and "seq_len" are both accepted, and
 *   "shared_classifier" (bool) defaults to whether output.weight is absent.
 *   Tensors other than the model's are ignored (a checkpoint may carry
 *   rope tables or quantization metadata).
 * - load() tells safetensors from .bin by content (a u64 header length
 *   followed by '{'), not by the file name.
 */
#define _POSIX_C_SOURCE 200809L /* fileno, fseeko */
#include "vqs_llama.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vqs_common.h"
#include "vqs_store_st.h"

/* Per-layer tensors, in the order of the table. */
enum { L_ATT_NORM, L_WQ, L_WK, L_WV, L_WO, L_FFN_NORM, L_W1, L_W2, L_W3, L_COUNT };

static const char *const layer_names[L_COUNT] = {
    "attention_norm.weight",      "attention.wq.weight",        "attention.wk.weight",
    "attention.wv.weight",        "attention.wo.weight",        "ffn_norm.weight",
    "feed_forward.w1.weight",     "feed_forward.w2.weight",     "feed_forward.w3.weight",
};

#define MAX_CFG 0x1000000 /* 2^24: no config value is larger (overflow guard) */

typedef struct wtensor {
    char name[64];
    int ndim;          /* 1 (norms) or 2 */
    size_t rows, cols; /* a 1-D tensor is 1 x cols */
    size_t off;        /* into data, floats */
} wtensor;

struct vqs_llama {
    vqs_llama_config c;
    size_t nt;
    wtensor *t;
    float *data; /* nfloats, every tensor's values */
    size_t nfloats;
};

/* ---- model table --------------------------------------------------- */

static size_t t_layer(int l, int k) { return 1 + (size_t)l * L_COUNT + (size_t)k; }
static size_t t_norm(const vqs_llama_config *c) { return 1 + (size_t)c->n_layers * L_COUNT; }

static const float *W(const vqs_llama *m, size_t i) { return m->data + m->t[i].off; }
static const float *LW(const vqs_llama *m, int l, int k) { return W(m, t_layer(l, k)); }

/* Checks the numbers of a config; src names the file in messages. */
static int check_config(const vqs_llama_config *c, const char *src)
{
    const struct {
        const char *name;
        int v;
    } f[] = {{"dim", c->dim},         {"hidden_dim", c->hidden_dim}, {"n_layers", c->n_layers},
             {"n_heads", c->n_heads}, {"n_kv_heads", c->n_kv_heads}, {"vocab_size", c->vocab_size},
             {"seq_len", c->seq_len}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].v < 1 || f[i].v > MAX_CFG)
            return vqs_seterr(VQS_EHEADER, "%s: config: %s = %d, expected 1..%d", src, f[i].name, f[i].v,
                              MAX_CFG);
    if (c->dim % c->n_heads)
        return vqs_seterr(VQS_EHEADER, "%s: config: n_heads = %d does not divide dim = %d", src, c->n_heads,
                          c->dim);
    if ((c->dim / c->n_heads) % 2)
        return vqs_seterr(VQS_EHEADER, "%s: config: head size %d (dim / n_heads) is odd; RoPE needs pairs",
                          src, c->dim / c->n_heads);
    if (c->n_kv_heads > c->n_heads || c->n_heads % c->n_kv_heads)
        return vqs_seterr(VQS_EHEADER, "%s: config: n_kv_heads = %d does not divide n_heads = %d", src,
                          c->n_kv_heads, c->n_heads);
    if ((size_t)c->n_layers * L_COUNT + 3 > 1000000)
        return vqs_seterr(VQS_EHEADER, "%s: config: n_layers = %d is too large", src, c->n_layers);
    /* in double: the product of values up to 2^24 overflows 64 bits */
    double d = c->dim, h = c->hidden_dim, kv = (double)c->dim / c->n_heads * c->n_kv_heads;
    double n = (double)c->vocab_size * d * (c->shared_classifier ? 1 : 2) + d +
               (double)c->n_layers * (2 * d + 2 * d * d + 2 * kv * d + 3 * h * d);
    if (n > 0x1p40)
        return vqs_seterr(VQS_EHEADER, "%s: config: a model of %.3g weights is beyond this reference (2^40)", src,
                          n);
    return 0;
}

static void set_tensor(vqs_llama *m, size_t i, const char *name, int ndim, size_t rows, size_t cols,
                       size_t *off)
{
    wtensor *t = &m->t[i];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->rows = rows;
    t->cols = cols;
    t->off = *off;
    *off += rows * cols;
}

/* A model with the table of c and no weights yet (model_alloc). */
static int model_new(const vqs_llama_config *c, const char *src, vqs_llama **out)
{
    *out = NULL;
    int rc = check_config(c, src);
    if (rc)
        return rc;
    vqs_llama *m = calloc(1, sizeof *m);
    if (!m)
        return vqs_seterr(VQS_ENOMEM, "%s: model", src);
    m->c = *c;
    m->nt = t_norm(c) + 1 + (c->shared_classifier ? 0 : 1);
    m->t = calloc(m->nt, sizeof *m->t);
    if (!m->t) {
        free(m);
        return vqs_seterr(VQS_ENOMEM, "%s: tensor table", src);
    }
    size_t d = (size_t)c->dim, h = (size_t)c->hidden_dim, v = (size_t)c->vocab_size;
    size_t kvd = d / (size_t)c->n_heads * (size_t)c->n_kv_heads, off = 0;
    char name[64];
    set_tensor(m, 0, "tok_embeddings.weight", 2, v, d, &off);
    for (int l = 0; l < c->n_layers; l++) {
        const size_t rows[L_COUNT] = {1, d, kvd, kvd, d, 1, h, d, h};
        const size_t cols[L_COUNT] = {d, d, d, d, d, d, d, h, d};
        for (int k = 0; k < L_COUNT; k++) {
            snprintf(name, sizeof name, "layers.%d.%s", l, layer_names[k]);
            set_tensor(m, t_layer(l, k), name, rows[k] == 1 ? 1 : 2, rows[k], cols[k], &off);
        }
    }
    set_tensor(m, t_norm(c), "norm.weight", 1, 1, d, &off);
    if (!c->shared_classifier)
        set_tensor(m, t_norm(c) + 1, "output.weight", 2, v, d, &off);
    m->nfloats = off; /* <= 2^40 (check_config) */
    *out = m;
    return 0;
}

/* The weights of a model from model_new, zeroed. Separate so that loaders
 * check a file against the config before allocating what it claims. */
static int model_alloc(vqs_llama *m, const char *src)
{
    m->data = calloc(m->nfloats, sizeof(float));
    if (!m->data)
        return vqs_seterr(VQS_ENOMEM, "%s: %zu weights", src, m->nfloats);
    return 0;
}

void vqs_llama_free(vqs_llama *m)
{
    if (!m)
        return;
    free(m->t);
    free(m->data);
    free(m);
}

const vqs_llama_config *vqs_llama_cfg(const vqs_llama *m) { return &m->c; }

size_t vqs_llama_ntensors(const vqs_llama *m) { return m->nt; }

const char *vqs_llama_tensor(const vqs_llama *m, size_t i, const float **w, size_t *rows, size_t *cols)
{
    if (i >= m->nt)
        return NULL;
    if (w)
        *w = W(m, i);
    if (rows)
        *rows = m->t[i].rows;
    if (cols)
        *cols = m->t[i].cols;
    return m->t[i].name;
}

static const wtensor *find_tensor(const vqs_llama *m, const char *name)
{
    for (size_t i = 0; i < m->nt; i++)
        if (!strcmp(m->t[i].name, name))
            return &m->t[i];
    return NULL;
}

int vqs_llama_set_weight(vqs_llama *m, const char *name, const float *w, size_t n)
{
    const wtensor *t = find_tensor(m, name);
    if (!t)
        return vqs_seterr(VQS_ENOTFOUND, "set_weight: the model has no tensor '%s'", name);
    if (n != t->rows * t->cols)
        return vqs_seterr(VQS_ESHAPE, "set_weight: tensor '%s': %zu values, expected %zu (%zu x %zu)", name,
                          n, t->rows * t->cols, t->rows, t->cols);
    memmove(m->data + t->off, w, n * sizeof *w);
    return 0;
}

int vqs_llama_clone(const vqs_llama *m, vqs_llama **out)
{
    vqs_llama *c;
    int rc = model_new(&m->c, "clone", &c);
    if (rc == 0 && (rc = model_alloc(c, "clone")))
        vqs_llama_free(c);
    if (rc)
        return rc;
    memcpy(c->data, m->data, m->nfloats * sizeof(float));
    *out = c;
    return 0;
}

/* Index of the first non-finite value of x[0..n), or n. */
static size_t first_nonfinite(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return i;
    return n;
}

/* ---- llama2.c legacy .bin -------------------------------------------- */

int vqs_llama_load_bin(const char *path, vqs_llama **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        return vqs_seterr(-e, "%s: %s", path, strerror(e));
    }
    vqs_llama *m = NULL;
    size_t *order = NULL; /* tensors in file order */
    int rc = 0;
    int32_t h[7];
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        rc = vqs_seterr(-errno, "%s: stat: %s", path, strerror(errno));
        goto fail;
    }
    if (fread(h, sizeof h, 1, f) != 1) {
        rc = vqs_seterr(VQS_ETRUNC, "%s: %lld bytes, shorter than the 28-byte header", path,
                        (long long)st.st_size);
        goto fail;
    }
    /* little-endian int32s, as llama2.c writes them on x86 and ARM; a
     * negative vocab_size means a classifier of its own (INT32_MIN, which
     * has no positive counterpart, becomes 0 and is refused) */
    vqs_llama_config c = {h[0], h[1], h[2], h[3], h[4], h[5] == INT32_MIN ? 0 : abs(h[5]), h[6], h[5] > 0};
    rc = model_new(&c, path, &m);
    if (rc)
        goto fail;
    /* File order: the tensors grouped by kind across layers (tok_embeddings,
     * attention_norm of every layer, wq of every layer, ...), norm, the RoPE
     * tables freq_cis_real and freq_cis_imag (seq_len x head_size/2 each;
     * skipped: RoPE is computed), then the classifier if unshared.
     * ROPE marks the tables in the list. */
    const size_t ROPE = (size_t)-1;
    size_t nfile = m->nt + 1, k = 0;
    order = malloc(nfile * sizeof *order);
    if (!order) {
        rc = vqs_seterr(VQS_ENOMEM, "%s: tensor list", path);
        goto fail;
    }
    order[k++] = 0;
    for (int g = 0; g < L_COUNT; g++)
        for (int l = 0; l < c.n_layers; l++)
            order[k++] = t_layer(l, g);
    order[k++] = t_norm(&c);
    order[k++] = ROPE;
    if (!c.shared_classifier)
        order[k++] = t_norm(&c) + 1;
    uint64_t rope_bytes = 4 * (uint64_t)c.seq_len * (uint64_t)(c.dim / c.n_heads), want = 28;
    /* sizes first, so that a damaged header is refused before its model is allocated */
    for (size_t i = 0; i < nfile; i++) {
        uint64_t n = order[i] == ROPE ? rope_bytes : 4 * (uint64_t)(m->t[order[i]].rows * m->t[order[i]].cols);
        if ((uint64_t)st.st_size < want + n) {
            rc = vqs_seterr(VQS_ETRUNC, "%s: %lld bytes, truncated in %s%s%s (the header's model needs more)", path,
                            (long long)st.st_size, order[i] == ROPE ? "the RoPE tables" : "tensor '",
                            order[i] == ROPE ? "" : m->t[order[i]].name, order[i] == ROPE ? "" : "'");
            goto fail;
        }
        want += n;
    }
    if ((uint64_t)st.st_size > want) {
        rc = vqs_seterr(VQS_ESHAPE, "%s: %lld bytes, the header's model needs %llu: %llu trailing bytes", path,
                        (long long)st.st_size, (unsigned long long)want,
                        (unsigned long long)((uint64_t)st.st_size - want));
        goto fail;
    }
    if ((rc = model_alloc(m, path)))
        goto fail;
    for (size_t i = 0; i < nfile; i++) {
        if (order[i] == ROPE) {
            if (fseeko(f, (off_t)rope_bytes, SEEK_CUR) != 0) {
                rc = vqs_seterr(-errno, "%s: seek past the RoPE tables: %s", path, strerror(errno));
                goto fail;
            }
            continue;
        }
        const wtensor *t = &m->t[order[i]];
        size_t n = t->rows * t->cols;
        if (fread(m->data + t->off, sizeof(float), n, f) != n) {
            rc = vqs_seterr(ferror(f) ? -EIO : VQS_ETRUNC, "%s: reading tensor '%s' failed", path, t->name);
            goto fail;
        }
        size_t bad = first_nonfinite(m->data + t->off, n);
        if (bad < n) {
            rc = vqs_seterr(VQS_ENONFINITE, "%s: tensor '%s': element %zu (row %zu, column %zu) is %s", path, t->name,
                            bad, bad / t->cols, bad % t->cols, isnan(m->data[t->off + bad]) ? "NaN" : "Inf");
            goto fail;
        }
    }
    free(order);
    fclose(f);
    *out = m;
    return 0;
fail:
    fclose(f);
    free(order);
    vqs_llama_free(m);
    return rc;
}

/* ---- safetensors ------------------------------------------------------ */

/* An integer field of the config object; src and key name it in messages. */
static int cfg_int(json_t *cfg, const char *key, const char *alt, int *out, const char *src)
{
    json_t *v = json_object_get(cfg, key);
    if (!v && alt)
        v = json_object_get(cfg, alt);
    if (!v)
        return vqs_seterr(VQS_EHEADER, "%s: __metadata__ config: field '%s' is missing", src, key);
    if (!json_is_integer(v))
        return vqs_seterr(VQS_EHEADER, "%s: __metadata__ config: field '%s' is not an integer", src, key);
    json_int_t x = json_integer_value(v);
    if (x < 1 || x > MAX_CFG)
        return vqs_seterr(VQS_EHEADER, "%s: __metadata__ config: field '%s' = %lld, expected 1..%d", src, key,
                          (long long)x, MAX_CFG);
    *out = (int)x;
    return 0;
}

static int parse_config(const vqs_st_file *f, const char *src, vqs_llama_config *c)
{
    const char *s = vqs_st_meta_get(f, "config");
    if (!s)
        return vqs_seterr(VQS_EHEADER, "%s: no \"config\" in __metadata__ (the model's dimensions, JSON)", src);
    json_error_t je;
    json_t *cfg = json_loads(s, JSON_REJECT_DUPLICATES, &je);
    if (!cfg)
        return vqs_seterr(VQS_EHEADER, "%s: __metadata__ config: malformed JSON at line %d, column %d: %s", src,
                          je.line, je.column, je.text);
    int rc = 0;
    if (!json_is_object(cfg)) {
        rc = vqs_seterr(VQS_EHEADER, "%s: __metadata__ config: not a JSON object", src);
        goto out;
    }
    if ((rc = cfg_int(cfg, "dim", NULL, &c->dim, src)) || (rc = cfg_int(cfg, "hidden_dim", NULL, &c->hidden_dim, src)) ||
        (rc = cfg_int(cfg, "n_layers", NULL, &c->n_layers, src)) ||
        (rc = cfg_int(cfg, "n_heads", NULL, &c->n_heads, src)) ||
        (rc = cfg_int(cfg, "n_kv_heads", NULL, &c->n_kv_heads, src)) ||
        (rc = cfg_int(cfg, "vocab_size", NULL, &c->vocab_size, src)) ||
        (rc = cfg_int(cfg, "max_seq_len", "seq_len", &c->seq_len, src)))
        goto out;
    json_t *sc = json_object_get(cfg, "shared_classifier");
    if (sc && !json_is_boolean(sc)) {
        rc = vqs_seterr(VQS_EHEADER, "%s: __metadata__ config: field 'shared_classifier' is not true or false", src);
        goto out;
    }
    c->shared_classifier = sc ? json_is_true(sc) : !vqs_st_find(f, "output.weight");
    /* a field this loader does not know would be ignored: refuse it */
    static const char *const known[] = {"dim",         "hidden_dim", "n_layers", "n_heads", "n_kv_heads",
                                        "vocab_size",  "max_seq_len", "seq_len", "shared_classifier"};
    const char *key;
    json_t *val;
    json_object_foreach(cfg, key, val) {
        size_t k = 0;
        while (k < sizeof known / sizeof known[0] && strcmp(known[k], key))
            k++;
        if (k == sizeof known / sizeof known[0]) {
            rc = vqs_seterr(VQS_EHEADER,
                            "%s: __metadata__ config: field '%.64s' is not one vqs reads (dim, hidden_dim, n_layers, "
                            "n_heads, n_kv_heads, vocab_size, max_seq_len, shared_classifier); it would be ignored",
                            src, key);
            goto out;
        }
    }
out:
    json_decref(cfg);
    return rc;
}

int vqs_llama_load(const char *path, vqs_llama **out)
{
    *out = NULL;
    /* safetensors starts with a u64 header length and '{'; a .bin with a
     * '{' there would have n_layers = 123 and a header length of
     * dim + 2^32 hidden_dim, past any plausible file */
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        int e = errno;
        return vqs_seterr(-e, "%s: %s", path, strerror(e));
    }
    unsigned char head[9];
    size_t got = fread(head, 1, sizeof head, fp);
    fclose(fp);
    if (got < sizeof head || head[8] != '{' || head[4] || head[5] || head[6] || head[7])
        return vqs_llama_load_bin(path, out);

    vqs_st_file *f = NULL;
    int rc = vqs_st_open(path, &f);
    if (rc)
        return rc;
    vqs_llama *m = NULL;
    vqs_llama_config c;
    memset(&c, 0, sizeof c);
    if ((rc = parse_config(f, path, &c)) || (rc = model_new(&c, path, &m)))
        goto fail;
    /* every tensor's presence and shape first, then the weights */
    for (size_t i = 0; i < m->nt; i++) {
        const wtensor *w = &m->t[i];
        const vqs_st_tensor *t = vqs_st_find(f, w->name);
        if (!t) {
            rc = vqs_seterr(VQS_ENOTFOUND, "%s: tensor '%s' is missing", path, w->name);
            goto fail;
        }
        int ok = t->ndim == w->ndim &&
                 (w->ndim == 1 ? t->shape[0] == w->cols : t->shape[0] == w->rows && t->shape[1] == w->cols);
        if (!ok) {
            char got_s[160] = "", want_s[48];
            for (int k = 0, p = 0; k < t->ndim && p < (int)sizeof got_s - 24; k++)
                p += snprintf(got_s + p, sizeof got_s - (size_t)p, "%s%llu", k ? ", " : "",
                              (unsigned long long)t->shape[k]);
            if (w->ndim == 1)
                snprintf(want_s, sizeof want_s, "%zu", w->cols);
            else
                snprintf(want_s, sizeof want_s, "%zu, %zu", w->rows, w->cols);
            rc = vqs_seterr(VQS_ESHAPE, "%s: tensor '%s': shape [%s], the config needs [%s]", path, w->name, got_s,
                            want_s);
            goto fail;
        }
    }
    /* and no tensor the model would not read: a checkpoint of another
     * architecture, or a classifier the config says is shared */
    for (size_t i = 0; i < vqs_st_count(f); i++) {
        const char *name = vqs_st_tensor_at(f, i)->name;
        size_t k = 0;
        while (k < m->nt && strcmp(m->t[k].name, name))
            k++;
        if (k == m->nt) {
            rc = vqs_seterr(VQS_EHEADER,
                            !strcmp(name, "output.weight")
                                ? "%s: tensor '%s' is present but the config has \"shared_classifier\": true (the "
                                  "classifier is the token embedding); it would be ignored"
                                : "%s: tensor '%s' is not a tensor of this model (llama2.c naming); it would be ignored",
                            path, name);
            goto fail;
        }
    }
    if ((rc = model_alloc(m, path)))
        goto fail;
    for (size_t i = 0; i < m->nt; i++)
        if ((rc = vqs_st_read_f32(f, vqs_st_find(f, m->t[i].name), m->data + m->t[i].off, 0)))
            goto fail;
    vqs_st_close(f);
    *out = m;
    return 0;
fail:
    vqs_st_close(f);
    vqs_llama_free(m);
    return rc;
}

/* ---- forward ---------------------------------------------------------- */

/* Eight partial sums in a fixed order: vectorisable, and the same result
 * on every machine. */
static float dot(const float *a, const float *b, size_t n)
{
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += a[i + j] * b[i + j];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* out[r] = w[r, :] . x for r < rows; w is rows x cols */
static void matvec(float *out, const float *x, const float *w, size_t rows, size_t cols)
{
    for (size_t r = 0; r < rows; r++)
        out[r] = dot(w + r * cols, x, cols);
}

static void rmsnorm(float *o, const float *x, const float *w, size_t n)
{
    float ss = dot(x, x, n) / (float)n + 1e-5f;
    ss = 1.0f / sqrtf(ss);
    for (size_t i = 0; i < n; i++)
        o[i] = w[i] * (ss * x[i]);
}

static void softmax(float *x, size_t n)
{
    float mx = x[0];
    for (size_t i = 1; i < n; i++)
        if (x[i] > mx)
            mx = x[i];
    float s = 0;
    for (size_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        s += x[i];
    }
    for (size_t i = 0; i < n; i++)
        x[i] /= s;
}

/* Activations and the key/value cache of one sequence of up to cap tokens. */
typedef struct run_state {
    float *x, *xb, *xb2, *hb, *hb2, *q, *k, *v, *att; /* dim, dim, dim, hidden, hidden, dim, kv, kv, cap */
    float *kc, *vc;                                    /* n_layers x cap x kv_dim each */
    float *mem;
    int cap;
} run_state;

static void state_free(run_state *s) { free(s->mem); }

static int state_init(run_state *s, const vqs_llama_config *c, int cap)
{
    size_t d = (size_t)c->dim, h = (size_t)c->hidden_dim, kv = d / (size_t)c->n_heads * (size_t)c->n_kv_heads;
    size_t cache = (size_t)c->n_layers * (size_t)cap * kv;
    size_t total = 4 * d + 2 * h + 2 * kv + (size_t)cap + 2 * cache;
    memset(s, 0, sizeof *s);
    s->mem = calloc(total, sizeof(float));
    if (!s->mem)
        return vqs_seterr(VQS_ENOMEM, "forward: state of %d positions", cap);
    float *p = s->mem;
    s->x = p, p += d;
    s->xb = p, p += d;
    s->xb2 = p, p += d;
    s->q = p, p += d;
    s->hb = p, p += h;
    s->hb2 = p, p += h;
    s->k = p, p += kv;
    s->v = p, p += kv;
    s->att = p, p += cap;
    s->kc = p, p += cache;
    s->vc = p;
    s->cap = cap;
    return 0;
}

/* RoPE as run.c: each pair (i, i+1) of a head turned by pos * freq. */
static void rope(float *v, size_t n, size_t hs, int pos)
{
    for (size_t i = 0; i < n; i += 2) {
        float freq = 1.0f / powf(10000.0f, (float)(i % hs) / (float)hs);
        float val = (float)pos * freq, fcr = cosf(val), fci = sinf(val);
        float v0 = v[i], v1 = v[i + 1];
        v[i] = v0 * fcr - v1 * fci;
        v[i + 1] = v0 * fci + v1 * fcr;
    }
}

/* One token at position pos (< s->cap, the positions before it already
 * run): its logits, vocab_size floats. */
static void step(const vqs_llama *m, run_state *s, int token, int pos, float *logits)
{
    const vqs_llama_config *c = &m->c;
    size_t d = (size_t)c->dim, h = (size_t)c->hidden_dim, hs = d / (size_t)c->n_heads;
    size_t kv = hs * (size_t)c->n_kv_heads, kv_mul = (size_t)(c->n_heads / c->n_kv_heads);
    size_t cap = (size_t)s->cap;
    float scale = 1.0f / sqrtf((float)hs);

    memcpy(s->x, W(m, 0) + (size_t)token * d, d * sizeof(float));
    for (int l = 0; l < c->n_layers; l++) {
        rmsnorm(s->xb, s->x, LW(m, l, L_ATT_NORM), d);
        float *kc = s->kc + ((size_t)l * cap + (size_t)pos) * kv, *vc = s->vc + ((size_t)l * cap + (size_t)pos) * kv;
        matvec(s->q, s->xb, LW(m, l, L_WQ), d, d);
        matvec(kc, s->xb, LW(m, l, L_WK), kv, d);
        matvec(vc, s->xb, LW(m, l, L_WV), kv, d);
        rope(s->q, d, hs, pos);
        rope(kc, kv, hs, pos);

        for (size_t hd = 0; hd < (size_t)c->n_heads; hd++) {
            const float *q = s->q + hd * hs;
            size_t kvh = hd / kv_mul;
            for (int t = 0; t <= pos; t++)
                s->att[t] = dot(q, s->kc + ((size_t)l * cap + (size_t)t) * kv + kvh * hs, hs) * scale;
            softmax(s->att, (size_t)pos + 1);
            float *o = s->xb + hd * hs;
            memset(o, 0, hs * sizeof(float));
            for (int t = 0; t <= pos; t++) {
                const float *v = s->vc + ((size_t)l * cap + (size_t)t) * kv + kvh * hs;
                float a = s->att[t];
                for (size_t i = 0; i < hs; i++)
                    o[i] += a * v[i];
            }
        }
        matvec(s->xb2, s->xb, LW(m, l, L_WO), d, d);
        for (size_t i = 0; i < d; i++)
            s->x[i] += s->xb2[i];

        rmsnorm(s->xb, s->x, LW(m, l, L_FFN_NORM), d);
        matvec(s->hb, s->xb, LW(m, l, L_W1), h, d);
        matvec(s->hb2, s->xb, LW(m, l, L_W3), h, d);
        for (size_t i = 0; i < h; i++) {
            float a = s->hb[i];
            s->hb[i] = a * (1.0f / (1.0f + expf(-a))) * s->hb2[i];
        }
        matvec(s->xb, s->hb, LW(m, l, L_W2), d, h);
        for (size_t i = 0; i < d; i++)
            s->x[i] += s->xb[i];
    }
    rmsnorm(s->x, s->x, W(m, t_norm(c)), d);
    matvec(logits, s->x, W(m, c->shared_classifier ? 0 : t_norm(c) + 1), (size_t)c->vocab_size, d);
}

int vqs_llama_forward(const vqs_llama *m, const int *tokens, int n, float *logits)
{
    const vqs_llama_config *c = &m->c;
    if (n < 1 || n > c->seq_len)
        return vqs_seterr(VQS_EINVAL, "forward: %d tokens, expected 1..%d (seq_len)", n, c->seq_len);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab_size)
            return vqs_seterr(VQS_EINVAL, "forward: token %d at position %d is outside the vocabulary [0, %d)",
                              tokens[i], i, c->vocab_size);
    run_state s;
    int rc = state_init(&s, c, n);
    if (rc)
        return rc;
    for (int i = 0; i < n; i++)
        step(m, &s, tokens[i], i, logits + (size_t)i * (size_t)c->vocab_size);
    state_free(&s);
    return 0;
}

/* ---- sampling --------------------------------------------------------- */

/* Inverse CDF over softmax(logits) in double, u in [0, 1). */
static int sample_token(const float *logits, int n, double u, double *p)
{
    double mx = logits[0], z = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > mx)
            mx = logits[i];
    for (int i = 0; i < n; i++)
        z += p[i] = exp((double)logits[i] - mx);
    double target = u * z, cdf = 0;
    int last = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] > 0)
            last = i;
        cdf += p[i];
        if (target < cdf)
            return i;
    }
    return last; /* rounding left target at or past the total */
}

typedef struct sample_ctx {
    const vqs_llama *m;
    int len;
    const uint64_t *seeds;
    int *tokens;
} sample_ctx;

static int sample_one(void *vctx, size_t i, int thread_id)
{
    (void)thread_id;
    const sample_ctx *x = vctx;
    const vqs_llama_config *c = &x->m->c;
    int *tok = x->tokens + i * (size_t)x->len;
    run_state s;
    int rc = state_init(&s, c, x->len);
    float *logits = malloc((size_t)c->vocab_size * sizeof(float));
    double *p = malloc((size_t)c->vocab_size * sizeof(double));
    if (rc || !logits || !p) {
        state_free(&s);
        free(logits);
        free(p);
        return rc ? rc : vqs_seterr(VQS_ENOMEM, "sample: vocabulary buffers");
    }
    vqs_rng r;
    vqs_rng_seed(&r, x->seeds[i]);
    for (int pos = 0; pos + 1 < x->len; pos++) {
        step(x->m, &s, tok[pos], pos, logits);
        tok[pos + 1] = sample_token(logits, c->vocab_size, vqs_rng_uniform(&r), p);
    }
    state_free(&s);
    free(logits);
    free(p);
    return 0;
}

int vqs_llama_sample(const vqs_llama *m, int nseq, int len, int bos, uint64_t seed, int *tokens)
{
    const vqs_llama_config *c = &m->c;
    if (nseq < 1 || len < 1 || len > c->seq_len)
        return vqs_seterr(VQS_EINVAL, "sample: %d sequences of %d tokens (expected >= 1 of 1..%d)", nseq, len,
                          c->seq_len);
    if (bos < 0 || bos >= c->vocab_size)
        return vqs_seterr(VQS_EINVAL, "sample: bos token %d is outside the vocabulary [0, %d)", bos, c->vocab_size);
    /* one seed per sequence, drawn in order: the tokens do not depend on
     * how the sequences are spread over threads */
    uint64_t *seeds = malloc((size_t)nseq * sizeof *seeds);
    if (!seeds)
        return vqs_seterr(VQS_ENOMEM, "sample: %d seeds", nseq);
    vqs_rng r;
    vqs_rng_seed(&r, seed);
    for (int i = 0; i < nseq; i++) {
        seeds[i] = vqs_rng_next(&r);
        tokens[(size_t)i * (size_t)len] = bos;
    }
    sample_ctx x = {m, len, seeds, tokens};
    int rc = vqs_parallel_for(0, (size_t)nseq, sample_one, &x);
    free(seeds);
    /* a task's detail stays on its worker thread; the tasks fail only for
     * memory */
    return rc ? vqs_seterr(rc, "sample: %d sequences of %d tokens: %s", nseq, len, vqs_strerror(rc)) : 0;
}
