/*
 * scalar.c: scalar quantizers (SQ stage). Their training is in
 * scalar_train.c; the exact fp16 / bfloat16 / fp8 conversions they use are
 * in common/float.c.
 *
 * Tokens (one code per dimension):
 *   SQfp16            IEEE binary16, 2 bytes/dim (little-endian), no training
 *   SQbf16            bfloat16, 2 bytes/dim (little-endian), no training
 *   SQfp8 = SQe4m3    fp8 E4M3 (FN) of x_j / scale_j, scale_j = R_j / 448
 *   SQe5m2            fp8 E5M2 of x_j / scale_j, scale_j = R_j / 57344
 *   SQfp8t            fp8 E4M3 of x / scale, ONE scale = R / 448 for the tensor
 *   SQ8 = SQint8      uint8 over the per-dimension range [lo_j, hi_j]
 *   SQ4 = SQint4      4 bits over [lo_j, hi_j], two per byte, low nibble first
 *   SQ8s              int8 in [-127, 127] with ONE scale = R / 127: x ~ scale*code
 *   SQfp32 (= Flat)   float32 itself, 4 bytes/dim (little-endian), no training:
 *                     the uncompressed reference, e.g. the float32 output of
 *                     a PCA (PCA384,Flat, the paper's baseline). "Flat" is
 *                     accepted only after a transform (codec.c): alone,
 *                     FAISS's "Flat" is an index, not a codec.
 * where, per dimension, lo_j/hi_j are the min/max of the training data, or
 * with opts->sq_clip = p (0.5 < p < 1; 1 means min/max; anything else is
 * VQS_EINVAL at training) its (1-p) and p quantiles (linear interpolation
 * between order statistics, numpy's default), and
 * R_j = max(|lo_j|, |hi_j|). For the one-scale codecs R is max |x| over the
 * whole training set, or with sq_clip its p-quantile of |x|.
 * Exception: SQ4 with sq_clip = 0 (the default) chooses its range per
 * dimension from the data (min/max or a clipped range, scalar_train.c); sq_clip
 * = 1 asks for min/max.
 *
 * Design decisions:
 * - The ranges, grids and scales are chosen in training (scalar_train.c,
 *   where the reasons are); this file is the stage: tokens, parameters,
 *   encode, decode, queries and payload (scalar_internal.h between them).
 * - Speed of the SQ8/SQ4 encoder (GloVe 331k x 100, one thread: 3.0 -> 6.6
 *   M vectors/s; training's share is in scalar_train.c). It computes a row of
 *   codes with element-wise loops the compiler vectorises: the clamp is two
 *   selects (NaN -> 0) and the rounding is (t + 2^23) - 2^23, which for 0 <=
 *   t < 2^22 rounds to nearest-even exactly as lrintf did (both in the
 *   current rounding mode), so the codes are bit-identical to the scalar
 *   formula (a test keeps a copy of it).
 * - Encode never produces NaN/Inf and decode never returns them: a NaN input
 *   is encoded as 0 (then clamped into the range); fp16/bf16 overflow
 *   saturates to the largest finite value instead of Inf; corrupt codes
 *   holding NaN/Inf patterns decode to 0 / the largest finite value.
 * - Queries: reference scorer, decoding component by component with the
 *   stage's parameters (a 256-entry table for fp8). Fast kernels live in
 *   index/kernels.
 */
#include "scalar_internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ENC_CHUNK 256     /* dimensions per step of the SQ8/SQ4 encoder (even) */

/* ---- stage parameters --------------------------------------------------- */

static const struct {
    const char *tok;
    int kind;
} sq_tokens[] = {
    {"SQfp16", K_F16}, {"SQbf16", K_BF16}, {"SQfp8", K_E4M3}, {"SQe4m3", K_E4M3},
    {"SQe5m2", K_E5M2}, {"SQfp8t", K_E4M3T}, {"SQ8", K_U8},   {"SQint8", K_U8},
    {"SQ4", K_U4},      {"SQint4", K_U4},    {"SQ8s", K_S8},   {"SQfp32", K_F32},
    {"Flat", K_F32},
};

static size_t sq_code_size(int kind, size_t d)
{
    switch (kind) {
    case K_F16:
    case K_BF16:
        return 2 * d;
    case K_U4:
        return (d + 1) / 2;
    case K_F32:
        return 4 * d;
    default:
        return d;
    }
}

/* float32, little-endian like the other multi-byte codes (the index's
 * kernels read it as native floats: vqs targets little-endian x86-64) */
static inline float dec_f32(const uint8_t *c, size_t j)
{
    float v;
    memcpy(&v, c + 4 * j, sizeof v);
    return v;
}

/* NaN -> 0, +-Inf -> +-FLT_MAX: decode never returns a non-finite value */
static inline float enc_f32(float x)
{
    return x != x ? 0.0f : x > FLT_MAX ? FLT_MAX : x < -FLT_MAX ? -FLT_MAX : x;
}

static inline float sane(float x) { return x == x ? x : 0.0f; } /* NaN -> 0 */

static inline uint8_t enc_fp8(int kind, float y)
{
    return kind == K_E5M2 ? vqs_f32_to_e5m2(y, 1) : vqs_f32_to_e4m3(y, 1);
}

static inline uint16_t enc_half(int kind, float x)
{
    uint16_t h;
    if (kind == K_F16) {
        h = vqs_f32_to_f16(x);
        if ((h & 0x7fff) >= 0x7c00) /* Inf (x is not NaN): saturate */
            h = (h & 0x8000) | 0x7bff;
    } else {
        h = vqs_f32_to_bf16(x);
        if ((h & 0x7fff) >= 0x7f80)
            h = (h & 0x8000) | 0x7f7f;
    }
    return h;
}

static inline float dec_half(int kind, uint16_t h)
{
    uint16_t a = h & 0x7fff;
    if (kind == K_F16) {
        if (a > 0x7c00)
            return 0.0f;
        if (a == 0x7c00)
            h = (h & 0x8000) | 0x7bff;
        return vqs_f16_to_f32(h);
    }
    if (a > 0x7f80)
        return 0.0f;
    if (a == 0x7f80)
        h = (h & 0x8000) | 0x7f7f;
    return vqs_bf16_to_f32(h);
}

/* value of component j of one code */
static inline float dec_one(const sq *S, const uint8_t *c, size_t j)
{
    switch (S->kind) {
    case K_F16:
    case K_BF16:
        return dec_half(S->kind, (uint16_t)(c[2 * j] | c[2 * j + 1] << 8));
    case K_E4M3:
    case K_E5M2:
        return S->a[j] * S->lut[c[j]];
    case K_E4M3T:
        return S->a[0] * S->lut[c[j]];
    case K_U8:
        return S->a[j] + (float)c[j] * S->b[j];
    case K_U4:
        return S->a[j] + (float)((c[j / 2] >> (4 * (j & 1))) & 15) * S->b[j];
    case K_F32:
        return dec_f32(c, j);
    default: /* K_S8 */
        return S->a[0] * (float)(int8_t)c[j];
    }
}

/* ---- encode / decode ------------------------------------------------------- */

static int sq_encode(const vqs_stage *s, size_t n, const float *x, uint8_t *codes)
{
    const sq *S = s->impl;
    size_t d = S->d, cs = s->code_size;
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * d;
        uint8_t *c = codes + i * cs;
        switch (S->kind) {
        case K_F16:
        case K_BF16:
            for (size_t j = 0; j < d; j++) {
                uint16_t h = enc_half(S->kind, sane(xi[j]));
                c[2 * j] = (uint8_t)h;
                c[2 * j + 1] = (uint8_t)(h >> 8);
            }
            break;
        case K_E4M3:
        case K_E5M2:
            for (size_t j = 0; j < d; j++)
                c[j] = enc_fp8(S->kind, sane(xi[j]) * S->b[j]);
            break;
        case K_E4M3T:
            for (size_t j = 0; j < d; j++)
                c[j] = vqs_f32_to_e4m3(sane(xi[j]) * S->b[0], 1);
            break;
        case K_F32:
            for (size_t j = 0; j < d; j++) {
                float v = enc_f32(xi[j]);
                memcpy(c + 4 * j, &v, sizeof v);
            }
            break;
        case K_U8:
        case K_U4:
            /* in chunks of ENC_CHUNK dimensions (stack scratch) */
            for (size_t j0 = 0; j0 < d; j0 += ENC_CHUNK) {
                size_t m = d - j0 < ENC_CHUNK ? d - j0 : ENC_CHUNK;
                float r[ENC_CHUNK];
                uint8_t b[ENC_CHUNK + 1];
                if (S->kind == K_U8) {
                    cells_row(xi + j0, S->a + j0, S->binv + j0, m, 256, r, c + j0);
                    continue;
                }
                cells_row(xi + j0, S->a + j0, S->binv + j0, m, 16, r, b);
                b[m] = 0;
                for (size_t q = 0; q < m; q += 2) /* j0 is even: whole bytes */
                    c[(j0 + q) / 2] = (uint8_t)(b[q] | b[q + 1] << 4);
            }
            break;
        default: { /* K_S8 */
            for (size_t j = 0; j < d; j++) {
                float t = sane(xi[j]) * S->b[0];
                t = t > 127.0f ? 127.0f : t < -127.0f ? -127.0f : t;
                c[j] = (uint8_t)(int8_t)lrintf(t);
            }
        }
        }
    }
    return 0;
}

static void sq_decode(const vqs_stage *s, size_t n, const uint8_t *codes, float *x)
{
    const sq *S = s->impl;
    size_t d = S->d, cs = s->code_size;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = dec_one(S, codes + i * cs, j);
}

/* ---- queries --------------------------------------------------------------- */

/* prepared query, 8-byte aligned: the query, and its kernel form (see
 * vqs_codec_view): qk (d) and wk (d) such that L2 = sum (qk_j - wk_j v_j)^2
 * and IP = bias + sum qk_j v_j, v_j the raw value of code element j:
 *   fp16/bf16: qk = q, wk = 1;  fp8: qk = q (IP: q * scale_j), wk = scale_j;
 *   U8/U4: x = a_j + b_j c: qk = q - a (IP: q * b, bias = <q, a>), wk = b;
 *   S8: x = scale * (int8)c: qk = q (IP: q * scale), wk = scale. */
typedef struct sq_query {
    uint32_t metric;
    float bias;
    float q[]; /* d, then qk[d], wk[d] */
} sq_query;

static size_t sq_query_size(const vqs_stage *s) { return sizeof(sq_query) + 3 * sizeof(float) * s->d_in; }

static void sq_query_prepare(const vqs_stage *s, vqs_metric m, const float *q, void *state)
{
    const sq *S = s->impl;
    sq_query *Q = state;
    size_t d = s->d_in;
    float *qk = Q->q + d, *wk = qk + d;
    Q->metric = (uint32_t)m;
    memcpy(Q->q, q, sizeof(float) * d);
    double bias = 0;
    for (size_t j = 0; j < d; j++) {
        float a = 0, w = 1; /* x = a + w * v */
        switch (S->kind) {
        case K_E4M3:
        case K_E5M2:
            w = S->a[j];
            break;
        case K_E4M3T:
        case K_S8:
            w = S->a[0];
            break;
        case K_U8:
        case K_U4:
            a = S->a[j];
            w = S->b[j];
            break;
        default:
            break;
        }
        wk[j] = w;
        if (m == VQS_METRIC_L2) {
            qk[j] = q[j] - a;
        } else {
            qk[j] = q[j] * w;
            bias += (double)q[j] * a;
        }
    }
    Q->bias = (float)bias;
}

static void sq_query_view(const vqs_stage *s, const void *state, vqs_codec_view *v)
{
    const sq *S = s->impl;
    const sq_query *Q = state;
    static const vqs_elem type_of[] = {
        [K_F16] = VQS_ELEM_F16, [K_BF16] = VQS_ELEM_BF16, [K_E4M3] = VQS_ELEM_E4M3,
        [K_E5M2] = VQS_ELEM_E5M2, [K_E4M3T] = VQS_ELEM_E4M3, [K_U8] = VQS_ELEM_U8,
        [K_U4] = VQS_ELEM_U4, [K_S8] = VQS_ELEM_S8, [K_F32] = VQS_ELEM_F32,
    };
    size_t d = s->d_in;
    v->kind = VQS_VIEW_SQ;
    v->sq_type = type_of[S->kind];
    v->d = d;
    v->q = Q->q + d;
    v->w = Q->q + 2 * d;
    v->bias = Q->metric == VQS_METRIC_L2 ? 0.0f : Q->bias;
}

static void sq_query_score(const vqs_stage *s, const void *state, size_t n, const uint8_t *codes,
                           float *out)
{
    const sq *S = s->impl;
    const sq_query *Q = state;
    size_t d = S->d, cs = s->code_size;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = codes + i * cs;
        float acc = 0;
        if (Q->metric == VQS_METRIC_L2)
            for (size_t j = 0; j < d; j++) {
                float t = Q->q[j] - dec_one(S, c, j);
                acc += t * t;
            }
        else
            for (size_t j = 0; j < d; j++)
                acc += Q->q[j] * dec_one(S, c, j);
        out[i] = acc;
    }
}

/* ---- serialisation ---------------------------------------------------------
 * payload: u32 kind, u64 d, u64 na, then for na > 0: a[na], b[na] floats
 * (U8/U4: first grid point a_j and step_j; fp8/S8: scale and 1/scale). */

static int sq_save(const vqs_stage *s, vqs_wbuf *w)
{
    const sq *S = s->impl;
    vqs_wbuf_u32(w, (uint32_t)S->kind);
    vqs_wbuf_u64(w, S->d);
    vqs_wbuf_u64(w, S->na);
    if (S->na) {
        vqs_wbuf_f32(w, S->a, S->na);
        vqs_wbuf_f32(w, S->b, S->na);
    }
    return 0;
}

static int sq_load(vqs_stage *s, vqs_rbuf *r)
{
    sq *S = s->impl;
    uint32_t kind;
    int rc;
    if ((rc = vqs_rbuf_u32(r, &kind)))
        return rc;
    if (kind != (uint32_t)S->kind)
        return vqs_seterr(VQS_ECORRUPT, "%s payload: codec kind %u, expected %d", s->token, kind, S->kind);
    if ((rc = vqs_rbuf_expect(r, S->d, "SQ dimension")) || (rc = vqs_rbuf_expect(r, S->na, "SQ parameter count")))
        return rc;
    if (!S->na)
        return 0;
    if ((rc = vqs_rbuf_f32(r, S->a, S->na)) || (rc = vqs_rbuf_f32(r, S->b, S->na)))
        return rc;
    for (size_t j = 0; j < S->na; j++) {
        float a = S->a[j], b = S->b[j];
        if (S->kind == K_U8 || S->kind == K_U4) {
            unsigned levels = levels_of(S->kind);
            if (!isfinite(a) || !isfinite(b) || b < 0 || !isfinite(a + (float)levels * b))
                return vqs_seterr(VQS_ECORRUPT, "%s payload: dimension %zu: grid start %g, step %g",
                                  s->token, j, (double)a, (double)b);
            S->binv[j] = b > 0 ? 1.0f / b : 0.0f;
            if (!isfinite(S->binv[j]))
                S->b[j] = S->binv[j] = 0;
        } else if (!(a > 0) || !isfinite(a) || !isfinite(b) || !(b > 0) ||
                   fabs((double)a * b - 1.0) > 1e-5)
            return vqs_seterr(VQS_ECORRUPT, "%s payload: scale %zu is %g with inverse %g", s->token,
                              j, (double)a, (double)b);
    }
    return 0;
}

static void sq_destroy(vqs_stage *s)
{
    sq *S = s->impl;
    if (S) {
        free(S->a);
        free(S->b);
        free(S->binv);
        free(S);
    }
    s->impl = NULL;
}

static const vqs_stage_ops sq_ops = {
    .family = "SQ",
    .is_quantizer = 1,
    .train = vqs_sq_train,
    .encode = sq_encode,
    .decode = sq_decode,
    .query_size = sq_query_size,
    .query_prepare = sq_query_prepare,
    .query_score = sq_query_score,
    .query_view = sq_query_view,
    .save = sq_save,
    .load = sq_load,
    .destroy = sq_destroy,
};

int vqs_stage_sq_bits(const vqs_stage *s, size_t *nbits)
{
    if (s->ops != &sq_ops)
        return VQS_ENOTFOUND;
    switch (((const sq *)s->impl)->kind) {
    case K_U4:
        *nbits = 4;
        return 0;
    case K_U8:
    case K_S8:
    case K_E4M3:
    case K_E5M2:
    case K_E4M3T:
        *nbits = 8;
        return 0;
    default:
        return VQS_ENOTFOUND;
    }
}

int vqs_stage_sq_new(const char *tok, const char *next, vqs_stage *s)
{
    (void)next;
    if (strncmp(tok, "SQ", 2) != 0 && strcmp(tok, "Flat") != 0)
        return VQS_ENOTFOUND;
    int kind = -1;
    for (size_t i = 0; i < sizeof sq_tokens / sizeof sq_tokens[0]; i++)
        if (strcmp(tok, sq_tokens[i].tok) == 0)
            kind = sq_tokens[i].kind;
    if (kind < 0)
        return vqs_seterr(VQS_ESPEC, "'%s': unknown scalar quantizer (known: SQfp16, SQbf16, SQfp8, "
                                     "SQe4m3, SQe5m2, SQfp8t, SQ8, SQint8, SQ4, SQint4, SQ8s, SQfp32)", tok);
    size_t d = s->d_in;
    sq *S = calloc(1, sizeof *S);
    if (!S)
        return vqs_seterr(VQS_ENOMEM, "%s", tok);
    S->kind = kind;
    S->d = d;
    S->na = !trained_kind(kind) ? 0 : per_dim(kind) ? d : 1;
    if (S->na) {
        S->a = calloc(S->na, sizeof(float));
        S->b = calloc(S->na, sizeof(float));
        S->binv = calloc(S->na, sizeof(float));
        if (!S->a || !S->b || !S->binv) {
            free(S->a);
            free(S->b);
            free(S->binv);
            free(S);
            return vqs_seterr(VQS_ENOMEM, "%s: parameters", tok);
        }
    }
    if (is_fp8(kind)) {
        float mx = fmt_max(kind);
        for (int c = 0; c < 256; c++) {
            float v = kind == K_E5M2 ? vqs_e5m2_to_f32((uint8_t)c) : vqs_e4m3_to_f32((uint8_t)c);
            S->lut[c] = isnan(v) ? 0.0f : isinf(v) ? copysignf(mx, v) : v;
        }
    }
    s->ops = &sq_ops;
    s->d_out = d;
    s->code_size = sq_code_size(kind, d);
    s->impl = S;
    return 0;
}
