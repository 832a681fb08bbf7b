/*
 * wq.c: weight quantization's front: the table of formats, the spec parser,
 * encode/decode dispatch and the parts of an encoded tensor. The formats
 * themselves are in wq_scalar.c, wq_gguf.c, wq_mx.c and wq_vq.c
 * (wq_internal.h lists which).
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "wq_internal.h"

static const vqs_wq_format formats[] = {
    {"f16", VQS_WQ_F16, 0, 16, "IEEE half, no scale"},
    {"bf16", VQS_WQ_BF16, 0, 16, "bfloat16, no scale"},
    {"fp8_e4m3", VQS_WQ_FP8_E4M3, 0, 8, "fp8 E4M3, one fp32 scale per tensor"},
    {"fp8_e4m3_ch", VQS_WQ_FP8_E4M3_CH, 0, 8, "fp8 E4M3, one fp32 scale per output channel"},
    {"fp8_e5m2", VQS_WQ_FP8_E5M2, 0, 8, "fp8 E5M2, one fp32 scale per tensor"},
    {"fp8_e5m2_ch", VQS_WQ_FP8_E5M2_CH, 0, 8, "fp8 E5M2, one fp32 scale per output channel"},
    {"int8_ch", VQS_WQ_INT8_CH, 0, 8, "int8, absmax scale per output channel"},
    {"llm_int8", VQS_WQ_LLM_INT8, 0, 8,
     "LLM.int8(): columns with any |w| >= 6 kept in fp16, the rest int8 per channel"},
    {"q8_0", VQS_WQ_Q8_0, 32, 8.5, "GGUF Q8_0: blocks of 32 int8 with an fp16 scale"},
    {"q4_0", VQS_WQ_Q4_0, 32, 4.5, "GGUF Q4_0: blocks of 32 4-bit with an fp16 scale"},
    {"q4_1", VQS_WQ_Q4_1, 32, 5.0, "GGUF Q4_1: blocks of 32 4-bit with fp16 scale and minimum"},
    {"nf4", VQS_WQ_NF4, 64, 4.5, "QLoRA NormalFloat4, blocks of 64 with an fp32 absmax"},
    {"mxfp8_e4m3", VQS_WQ_MXFP8_E4M3, 32, 8.25, "OCP MX: 32 fp8 E4M3 with an E8M0 scale"},
    {"mxfp8_e5m2", VQS_WQ_MXFP8_E5M2, 32, 8.25, "OCP MX: 32 fp8 E5M2 with an E8M0 scale"},
    {"mxfp6_e2m3", VQS_WQ_MXFP6_E2M3, 32, 6.25, "OCP MX: 32 fp6 E2M3 with an E8M0 scale"},
    {"mxfp6_e3m2", VQS_WQ_MXFP6_E3M2, 32, 6.25, "OCP MX: 32 fp6 E3M2 with an E8M0 scale"},
    {"mxfp4", VQS_WQ_MXFP4, 32, 4.25, "OCP MX: 32 fp4 E2M1 with an E8M0 scale"},
    {"mxint8", VQS_WQ_MXINT8, 32, 8.25, "OCP MX: 32 int8 with an E8M0 scale"},
    {"nvfp4", VQS_WQ_NVFP4, 16, 4.5, "NVFP4: 16 fp4 E2M1 with an E4M3 scale, fp32 tensor scale"},
    {"vq8x12", VQS_WQ_VQ, -1, 1.5,
     "vq<d>x<bits>[r<bits>][o<pct>]: k-means codebook over d-weight sub-vectors (VPTQ-style)"},
    {"codec:PQ8x8", VQS_WQ_CODEC, -1, 0, "codec:<spec>: a vqs codec (PQ, RVQ, ...) over each row"},
};
#define NFORMATS (sizeof formats / sizeof formats[0])

size_t vqs_wq_format_count(void) { return NFORMATS; }
const vqs_wq_format *vqs_wq_format_at(size_t i) { return i < NFORMATS ? &formats[i] : NULL; }

static const char *kind_name(vqs_wq_kind k)
{
    for (size_t i = 0; i < NFORMATS; i++)
        if (formats[i].kind == k)
            return formats[i].name;
    return "?";
}

int vqs_wq_spec_parse(const char *s, vqs_wq_spec *out)
{
    if (!s || !out)
        return vqs_seterr(VQS_EINVAL, "weight format: NULL");
    memset(out, 0, sizeof *out);
    if (!strncasecmp(s, "codec:", 6)) {
        const char *c = s + 6;
        if (!*c || strlen(c) >= sizeof out->codec)
            return vqs_seterr(VQS_ESPEC, "weight format '%s': codec spec empty or longer than %zu",
                              s, sizeof out->codec - 1);
        out->kind = VQS_WQ_CODEC;
        strcpy(out->codec, c);
        return 0;
    }
    if ((s[0] == 'v' || s[0] == 'V') && (s[1] == 'q' || s[1] == 'Q') && isdigit((unsigned char)s[2]))
        return wq_vq_parse(s, out);
    for (size_t i = 0; i < NFORMATS; i++)
        if (formats[i].kind < VQS_WQ_VQ && !strcasecmp(formats[i].name, s)) {
            out->kind = formats[i].kind;
            return 0;
        }
    return vqs_seterr(VQS_ESPEC, "unknown weight format '%s' (vqs help weights lists them)", s);
}

void vqs_wq_spec_name(const vqs_wq_spec *s, char *buf, size_t n)
{
    if (!n)
        return;
    if (s->kind == VQS_WQ_VQ)
        wq_vq_name(s, buf, n);
    else if (s->kind == VQS_WQ_CODEC)
        snprintf(buf, n, "codec:%s", s->codec);
    else
        snprintf(buf, n, "%s", kind_name(s->kind));
}

static int group(vqs_wq_kind k, wq_encode_fn *enc, wq_decode_fn *dec)
{
    switch (k) {
    case VQS_WQ_F16: case VQS_WQ_BF16:
    case VQS_WQ_FP8_E4M3: case VQS_WQ_FP8_E4M3_CH: case VQS_WQ_FP8_E5M2: case VQS_WQ_FP8_E5M2_CH:
    case VQS_WQ_INT8_CH: case VQS_WQ_LLM_INT8:
        *enc = wq_scalar_encode, *dec = wq_scalar_decode;
        return 0;
    case VQS_WQ_Q8_0: case VQS_WQ_Q4_0: case VQS_WQ_Q4_1: case VQS_WQ_NF4:
        *enc = wq_gguf_encode, *dec = wq_gguf_decode;
        return 0;
    case VQS_WQ_MXFP8_E4M3: case VQS_WQ_MXFP8_E5M2: case VQS_WQ_MXFP6_E2M3: case VQS_WQ_MXFP6_E3M2:
    case VQS_WQ_MXFP4: case VQS_WQ_MXINT8: case VQS_WQ_NVFP4:
        *enc = wq_mx_encode, *dec = wq_mx_decode;
        return 0;
    case VQS_WQ_VQ: case VQS_WQ_CODEC:
        *enc = wq_vq_encode, *dec = wq_vq_decode;
        return 0;
    default:
        return vqs_seterr(VQS_EINVAL, "weight format: unknown kind %d", (int)k);
    }
}

void vqs_wq_tensor_free(vqs_wq_tensor *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->nparts && i < VQS_WQ_MAX_PARTS; i++)
        if (!t->part[i].borrowed)
            free(t->part[i].data);
    t->nparts = 0;
}

/* The finiteness check before encoding, over row ranges in parallel (a
 * serial pass was a third of q8_0's encode time). bad_row: the first row
 * holding a NaN or Inf (rows if none), whichever thread finds it. */
struct finite_ctx {
    const float *w;
    size_t cols;
    size_t bad_row; /* written under the atomic minimum below */
};

static int finite_rows(void *c, size_t r0, size_t r1)
{
    struct finite_ctx *f = c;
    for (size_t r = r0; r < r1; r++) {
        const float *x = f->w + r * f->cols;
        int ok = 1;
        for (size_t j = 0; j < f->cols; j++)
            ok &= isfinite(x[j]) != 0;
        if (!ok) {
            size_t cur = __atomic_load_n(&f->bad_row, __ATOMIC_RELAXED);
            while (r < cur && !__atomic_compare_exchange_n(&f->bad_row, &cur, r, 0,
                                                           __ATOMIC_RELAXED, __ATOMIC_RELAXED))
                ;
            return 0;
        }
    }
    return 0;
}

static size_t finite_grain(size_t cols)
{
    size_t g = ((size_t)1 << 18) / (cols ? cols : 1); /* ~1 MB of floats per task */
    return g ? g : 1;
}

int vqs_wq_encode(const vqs_wq_spec *s, const float *w, size_t rows, size_t cols,
                  const vqs_wq_opts *o, vqs_wq_tensor *out)
{
    if (!out)
        return vqs_seterr(VQS_EINVAL, "vqs_wq_encode: NULL output");
    memset(out, 0, sizeof *out);
    if (!s || (!w && rows && cols))
        return vqs_seterr(VQS_EINVAL, "vqs_wq_encode: NULL argument");
    if (!rows || !cols)
        return vqs_seterr(VQS_EINVAL, "vqs_wq_encode: empty tensor (%zu x %zu)", rows, cols);
    if (cols > SIZE_MAX / rows)
        return vqs_seterr(VQS_EINVAL, "vqs_wq_encode: %zu x %zu overflows", rows, cols);
    int nthreads = o && o->nthreads > 0 ? o->nthreads : vqs_default_threads();
    struct finite_ctx fc = {w, cols, rows};
    wq_for_rows(nthreads, rows, finite_grain(cols), finite_rows, &fc);
    if (fc.bad_row < rows) {
        const float *r = w + fc.bad_row * cols;
        size_t j = 0;
        while (isfinite(r[j]))
            j++;
        return vqs_seterr(VQS_ENONFINITE, "weight (row %zu, column %zu) is %s", fc.bad_row, j,
                          isnan(r[j]) ? "NaN" : "Inf");
    }
    wq_encode_fn enc = NULL;
    wq_decode_fn dec = NULL;
    int rc = group(s->kind, &enc, &dec);
    if (rc)
        return rc;
    out->spec = *s;
    out->rows = rows;
    out->cols = cols;
    rc = enc(s, w, rows, cols, nthreads, o ? o->verbose : 0, out);
    if (rc)
        vqs_wq_tensor_free(out);
    return rc;
}

int vqs_wq_decode(const vqs_wq_tensor *t, float *w, const vqs_wq_opts *o)
{
    if (!t || !w)
        return vqs_seterr(VQS_EINVAL, "vqs_wq_decode: NULL argument");
    wq_encode_fn enc = NULL;
    wq_decode_fn dec = NULL;
    int rc = group(t->spec.kind, &enc, &dec);
    if (rc)
        return rc;
    return dec(t, w, o && o->nthreads > 0 ? o->nthreads : vqs_default_threads());
}

size_t vqs_wq_nbytes(const vqs_wq_tensor *t)
{
    size_t s = 0;
    for (int i = 0; i < t->nparts; i++)
        s += t->part[i].nbytes;
    return s;
}

double vqs_wq_bits_per_weight(const vqs_wq_tensor *t)
{
    double n = (double)t->rows * (double)t->cols;
    return n > 0 ? 8.0 * (double)vqs_wq_nbytes(t) / n : 0;
}

size_t vqs_wq_type_size(vqs_wq_type t)
{
    switch (t) {
    case VQS_WQT_U16: case VQS_WQT_F16: case VQS_WQT_BF16: return 2;
    case VQS_WQT_I32: case VQS_WQT_F32: return 4;
    default: return 1;
    }
}

const char *vqs_wq_type_name(vqs_wq_type t)
{
    static const char *names[] = {"u8", "i8", "u16", "i32", "f16", "bf16", "f32", "e4m3", "e8m0"};
    return (unsigned)t < sizeof names / sizeof names[0] ? names[t] : "?";
}

const vqs_wq_part *vqs_wq_part_get(const vqs_wq_tensor *t, const char *name)
{
    for (int i = 0; i < t->nparts; i++)
        if (!strcmp(t->part[i].name, name))
            return &t->part[i];
    return NULL;
}

static int shape_bytes(const char *name, vqs_wq_type type, int ndim, const uint64_t *shape,
                       size_t *nbytes)
{
    if (ndim < 1 || ndim > 2)
        return vqs_seterr(VQS_ESHAPE, "part '%s': %d dimensions, expected 1 or 2", name, ndim);
    uint64_t n = shape[0], s1 = ndim == 2 ? shape[1] : 1;
    if (s1 && n > UINT64_MAX / s1)
        return vqs_seterr(VQS_ESHAPE, "part '%s': shape overflows", name);
    n *= s1;
    if (n > (SIZE_MAX >> 4))
        return vqs_seterr(VQS_ESHAPE, "part '%s': %llu elements is too many", name,
                          (unsigned long long)n);
    *nbytes = (size_t)n * vqs_wq_type_size(type);
    return 0;
}

static int part_new(vqs_wq_tensor *t, const char *name, vqs_wq_type type, int ndim,
                    const uint64_t *shape, vqs_wq_part **out)
{
    if (!name || !*name || strlen(name) >= VQS_WQ_PART_NAME)
        return vqs_seterr(VQS_EINVAL, "part name '%s' empty or too long", name ? name : "");
    if (vqs_wq_part_get(t, name))
        return vqs_seterr(VQS_EINVAL, "part '%s' given twice", name);
    if (t->nparts >= VQS_WQ_MAX_PARTS)
        return vqs_seterr(VQS_EINVAL, "more than %d parts", VQS_WQ_MAX_PARTS);
    vqs_wq_part *p = &t->part[t->nparts];
    memset(p, 0, sizeof *p);
    int rc = shape_bytes(name, type, ndim, shape, &p->nbytes);
    if (rc)
        return rc;
    strcpy(p->name, name);
    p->type = type;
    p->ndim = ndim;
    p->shape[0] = shape[0];
    p->shape[1] = ndim == 2 ? shape[1] : 1;
    *out = p;
    return 0;
}

int vqs_wq_part_add(vqs_wq_tensor *t, const char *name, vqs_wq_type type, int ndim,
                    const uint64_t *shape, vqs_wq_part **out)
{
    vqs_wq_part *p;
    int rc = part_new(t, name, type, ndim, shape, &p);
    if (rc)
        return rc;
    p->data = calloc(p->nbytes ? p->nbytes : 1, 1);
    if (!p->data)
        return vqs_seterr(VQS_ENOMEM, "part '%s': %zu bytes", name, p->nbytes);
    t->nparts++;
    if (out)
        *out = p;
    return 0;
}

int vqs_wq_part_borrow(vqs_wq_tensor *t, const char *name, vqs_wq_type type, int ndim,
                       const uint64_t *shape, const void *data, size_t nbytes)
{
    vqs_wq_part *p;
    int rc = part_new(t, name, type, ndim, shape, &p);
    if (rc)
        return rc;
    if (nbytes != p->nbytes)
        return vqs_seterr(VQS_ESHAPE, "part '%s': %zu bytes, its shape needs %zu", name, nbytes,
                          p->nbytes);
    p->data = (void *)data;
    p->borrowed = 1;
    t->nparts++;
    return 0;
}

int wq_need_part(const vqs_wq_tensor *t, const char *name, vqs_wq_type type, int ndim, uint64_t s0,
                 uint64_t s1, const vqs_wq_part **out)
{
    char fmt[96];
    vqs_wq_spec_name(&t->spec, fmt, sizeof fmt);
    const vqs_wq_part *p = vqs_wq_part_get(t, name);
    if (!p)
        return vqs_seterr(VQS_ESHAPE, "%s tensor (%zu x %zu): part '%s' is missing", fmt, t->rows,
                          t->cols, name);
    if (p->type != type)
        return vqs_seterr(VQS_ESHAPE, "%s tensor: part '%s' is %s, expected %s", fmt, name,
                          vqs_wq_type_name(p->type), vqs_wq_type_name(type));
    uint64_t e1 = ndim == 2 ? s1 : 1;
    if (p->shape[0] != s0 || (ndim == 2 && p->shape[1] != e1) || p->ndim != ndim ||
        p->nbytes != s0 * e1 * vqs_wq_type_size(type))
        return vqs_seterr(VQS_ESHAPE, "%s tensor (%zu x %zu): part '%s' has shape [%llu, %llu], "
                          "expected [%llu, %llu]", fmt, t->rows, t->cols, name,
                          (unsigned long long)p->shape[0], (unsigned long long)p->shape[1],
                          (unsigned long long)s0, (unsigned long long)e1);
    if (out)
        *out = p;
    return 0;
}

struct rows_ctx {
    wq_rows_fn fn;
    void *ctx;
    size_t rows, grain;
};

static int rows_task(void *c, size_t i, int tid)
{
    (void)tid;
    struct rows_ctx *r = c;
    size_t r0 = i * r->grain, r1 = r0 + r->grain < r->rows ? r0 + r->grain : r->rows;
    return r->fn(r->ctx, r0, r1);
}

int wq_for_rows(int nthreads, size_t rows, size_t grain, wq_rows_fn fn, void *ctx)
{
    if (!grain)
        grain = 1;
    size_t nchunks = (rows + grain - 1) / grain;
    if (nthreads <= 1 || nchunks <= 1)
        return rows ? fn(ctx, 0, rows) : 0;
    struct rows_ctx r = {fn, ctx, rows, grain};
    return vqs_parallel_for(nthreads, nchunks, rows_task, &r);
}
