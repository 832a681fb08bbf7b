/*
 * wq_scalar.c: the element-wise weight formats: f16, bf16, fp8 E4M3 / E5M2
 * with one fp32 scale per tensor or per row, int8 per row, and LLM.int8().
 *
 * Parts:
 *   f16 / bf16        "values"  f16 / bf16 [rows, cols]
 *   fp8_e4m3, _e5m2   "codes"   u8  [rows, cols]  fp8 E4M3FN / E5M2 bytes
 *                     "scale"   f32 [1]           amax / 448, amax / 57344
 *   fp8_*_ch          "codes"   u8  [rows, cols]
 *                     "scale"   f32 [rows]        a row's amax / max
 *   int8_ch           "codes"   i8  [rows, cols]  in [-127, 127]
 *                     "scale"   f32 [rows]        a row's absmax / 127
 *   llm_int8          "codes"   i8  [rows, cols]  0 in outlier columns
 *                     "scale"   f32 [rows]        absmax / 127 over the
 *                                                 row's other columns
 *                     "outlier_cols" i32 [nout]   ascending
 *                     "outliers" f16 [rows, nout] w[r][outlier_cols[k]]
 *   (nout may be 0: the two parts are then [0] and [rows, 0].)
 * Decode: w = value(code) * scale; llm_int8 puts the fp16 outliers back.
 *
 * Design decisions:
 * - Codes are x / scale rounded (fp8: vqs_float.h's round-to-nearest-even,
 *   saturating; int8: half to even, clamped to [-127, 127] as
 *   torch.round(x / s).clamp(-127, 127)): a division, as torch and
 *   Transformer Engine cast, not a multiplication by 1 / scale (which
 *   differs in the last bit for some x and so, on a tie, in the code).
 *   The division is exact in the usual case that matters: x = amax gives
 *   exactly max (448, 57344, 127) or saturates to it.
 * - A scale of 0 (an all-zero row or tensor, or an amax so small that
 *   amax / max underflows) gives zero codes; decode gives zeros.
 * - LLM.int8() (Dettmers et al. 2022) decomposes activations at run time;
 *   applied to weights, as the issue asks, a column is an outlier when any
 *   of its weights has |w| >= 6 (the paper's threshold); those columns are
 *   stored exactly in fp16 and the rest is int8_ch with row scales computed
 *   without them, so one large weight does not coarsen its whole row.
 * - Values that fp16 / bf16 cannot hold (|w| >= 65520 rounds to Inf in
 *   fp16) are refused with VQS_ERANGE naming the row and column rather than
 *   stored as Inf. Workers record the first bad element; the message is set
 *   on the calling thread (the detail is thread-local).
 * - The row work (absmax, int8 rounding, the fp8 / f16 / bf16 conversions)
 *   goes through the kernel table of kernels/wq_gguf_kernels.h: scalar
 *   reference, AVX2, AVX-512, the same bytes at every level. Decode is
 *   plain C (a table lookup or a multiply per weight).
 * - Decode checks every part's type and shape (wq_need_part) and that
 *   scales are finite and >= 0 and outlier columns ascending and in range
 *   (VQS_ECORRUPT naming the part and row). Parts are read with memcpy, so
 *   a borrowed (mapped) part need not be aligned.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/wq_gguf_kernels.h"
#include "wq_internal.h"

#define OUTLIER_T 6.0f

static inline float ld_f32(const void *base, size_t i)
{
    float f;
    memcpy(&f, (const char *)base + 4 * i, 4);
    return f;
}

static inline uint16_t ld_u16(const void *base, size_t i)
{
    uint16_t v;
    memcpy(&v, (const char *)base + 2 * i, 2);
    return v;
}

static inline int32_t ld_i32(const void *base, size_t i)
{
    int32_t v;
    memcpy(&v, (const char *)base + 4 * i, 4);
    return v;
}

static int is_fp8(vqs_wq_kind k)
{
    return k == VQS_WQ_FP8_E4M3 || k == VQS_WQ_FP8_E4M3_CH || k == VQS_WQ_FP8_E5M2 ||
           k == VQS_WQ_FP8_E5M2_CH;
}

static int is_e4m3(vqs_wq_kind k) { return k == VQS_WQ_FP8_E4M3 || k == VQS_WQ_FP8_E4M3_CH; }

static int per_row(vqs_wq_kind k)
{
    return k == VQS_WQ_FP8_E4M3_CH || k == VQS_WQ_FP8_E5M2_CH || k == VQS_WQ_INT8_CH ||
           k == VQS_WQ_LLM_INT8;
}

static size_t grain_for(size_t cols)
{
    size_t g = ((size_t)1 << 16) / (cols ? cols : 1);
    return g ? g : 1;
}

static float row_amax(const float *x, size_t n) { return wq_gguf_kernels_active()->amax(x, n); }

/* the first bad element (flat index) found by any worker */
static void note_bad(size_t *bad, size_t i)
{
    size_t cur = __atomic_load_n(bad, __ATOMIC_RELAXED);
    while (i < cur && !__atomic_compare_exchange_n(bad, &cur, i, 0, __ATOMIC_RELAXED,
                                                   __ATOMIC_RELAXED))
        ;
}

/* ---- encode ---------------------------------------------------------- */

struct enc_ctx {
    const vqs_wq_spec *s;
    const float *w;
    size_t rows, cols;
    void *codes;         /* values (f16/bf16) or codes */
    float *scale;        /* per row, or [0] per tensor */
    float *amax;         /* per-row amax (fp8 per tensor) */
    const uint8_t *is_out; /* llm_int8: column flags */
    const int32_t *out_cols;
    size_t nout;
    uint16_t *outliers;
    size_t bad;          /* SIZE_MAX: none */
};

static int amax_rows(void *c, size_t r0, size_t r1)
{
    struct enc_ctx *e = c;
    for (size_t r = r0; r < r1; r++)
        e->amax[r] = row_amax(e->w + r * e->cols, e->cols);
    return 0;
}

static int half_rows(void *c, size_t r0, size_t r1)
{
    struct enc_ctx *e = c;
    uint16_t *v = e->codes;
    const wq_gguf_kernels *k = wq_gguf_kernels_active();
    int bf = e->s->kind == VQS_WQ_BF16;
    size_t i0 = r0 * e->cols, n = (r1 - r0) * e->cols;
    (bf ? k->to_bf16 : k->to_f16)(e->w + i0, n, v + i0);
    /* finite inputs: an all-ones exponent is an overflow to Inf */
    const uint16_t em = bf ? 0x7f80 : 0x7c00;
    int any = 0;
    for (size_t i = i0; i < i0 + n; i++)
        any |= (v[i] & em) == em;
    if (any)
        for (size_t i = i0; i < i0 + n; i++)
            if ((v[i] & em) == em)
                note_bad(&e->bad, i), v[i] = 0;
    return 0;
}

static int fp8_rows(void *c, size_t r0, size_t r1)
{
    struct enc_ctx *e = c;
    vqs_wq_kind k = e->s->kind;
    const float maxv = is_e4m3(k) ? 448.0f : 57344.0f;
    uint8_t *q = e->codes;
    for (size_t r = r0; r < r1; r++) {
        float s;
        if (per_row(k)) {
            s = row_amax(e->w + r * e->cols, e->cols) / maxv;
            e->scale[r] = s;
        } else {
            s = e->scale[0];
        }
        const float *x = e->w + r * e->cols;
        uint8_t *qr = q + r * e->cols;
        if (s == 0.0f)
            memset(qr, 0, e->cols);
        else
            wq_gguf_kernels_active()->fp8_row(x, e->cols, s, !is_e4m3(k), qr);
    }
    return 0;
}

static int int8_rows(void *c, size_t r0, size_t r1)
{
    struct enc_ctx *e = c;
    const wq_gguf_kernels *k = wq_gguf_kernels_active();
    int8_t *q = e->codes;
    float *tmp = NULL;
    if (e->nout) {
        tmp = malloc(e->cols * sizeof *tmp);
        if (!tmp)
            return VQS_ENOMEM;
    }
    for (size_t r = r0; r < r1; r++) {
        const float *x = e->w + r * e->cols;
        int8_t *qr = q + r * e->cols;
        if (e->nout) {
            /* the row without its outlier columns (zeros there: code 0) */
            for (size_t j = 0; j < e->cols; j++)
                tmp[j] = e->is_out[j] ? 0.0f : x[j];
            for (size_t o = 0; o < e->nout; o++) {
                size_t i = r * e->cols + (size_t)e->out_cols[o];
                uint16_t h = vqs_f32_to_f16(e->w[i]);
                if ((h & 0x7c00) == 0x7c00)
                    note_bad(&e->bad, i), h = 0;
                e->outliers[r * e->nout + o] = h;
            }
            x = tmp;
        }
        float s = row_amax(x, e->cols) / 127;
        e->scale[r] = s;
        if (s == 0.0f)
            memset(qr, 0, e->cols);
        else
            k->int8_row(x, e->cols, s, qr);
    }
    free(tmp);
    return 0;
}

static int range_err(const struct enc_ctx *e, const char *what)
{
    size_t i = e->bad;
    return vqs_seterr(VQS_ERANGE, "weight (row %zu, column %zu) = %g does not fit %s", i / e->cols,
                      i % e->cols, (double)e->w[i], what);
}

static int encode_llm_int8(struct enc_ctx *e, int nthreads, vqs_wq_tensor *out)
{
    size_t rows = e->rows, cols = e->cols;
    uint8_t *flag = calloc(cols, 1);
    if (!flag)
        return vqs_seterr(VQS_ENOMEM, "llm_int8: %zu column flags", cols);
    for (size_t r = 0; r < rows; r++) {
        const float *x = e->w + r * cols;
        for (size_t j = 0; j < cols; j++)
            flag[j] |= fabsf(x[j]) >= OUTLIER_T;
    }
    size_t nout = 0;
    for (size_t j = 0; j < cols; j++)
        nout += flag[j];
    vqs_wq_part *p;
    uint64_t sc[2] = {rows, cols}, ss[1] = {rows}, so[1] = {nout}, sv[2] = {rows, nout};
    int rc;
    if ((rc = vqs_wq_part_add(out, "codes", VQS_WQT_I8, 2, sc, &p)))
        goto done;
    e->codes = p->data;
    if ((rc = vqs_wq_part_add(out, "scale", VQS_WQT_F32, 1, ss, &p)))
        goto done;
    e->scale = p->data;
    if ((rc = vqs_wq_part_add(out, "outlier_cols", VQS_WQT_I32, 1, so, &p)))
        goto done;
    int32_t *oc = p->data;
    for (size_t j = 0, k = 0; j < cols; j++)
        if (flag[j])
            oc[k++] = (int32_t)j;
    if ((rc = vqs_wq_part_add(out, "outliers", VQS_WQT_F16, 2, sv, &p)))
        goto done;
    e->outliers = p->data;
    e->is_out = flag;
    e->out_cols = oc;
    e->nout = nout;
    if ((rc = wq_for_rows(nthreads, rows, grain_for(cols), int8_rows, e))) {
        if (rc == VQS_ENOMEM)
            vqs_seterr(rc, "llm_int8: a row buffer of %zu floats", cols);
        goto done;
    }
    if (e->bad != SIZE_MAX)
        rc = range_err(e, "the fp16 of an outlier column");
done:
    free(flag);
    return rc;
}

int wq_scalar_encode(const vqs_wq_spec *s, const float *w, size_t rows, size_t cols, int nthreads,
                     int verbose, vqs_wq_tensor *out)
{
    (void)verbose;
    struct enc_ctx e;
    memset(&e, 0, sizeof e);
    e.s = s, e.w = w, e.rows = rows, e.cols = cols, e.bad = SIZE_MAX;
    vqs_wq_part *p;
    uint64_t sh[2] = {rows, cols};
    int rc;
    vqs_wq_kind k = s->kind;
    if (k == VQS_WQ_F16 || k == VQS_WQ_BF16) {
        if ((rc = vqs_wq_part_add(out, "values", k == VQS_WQ_F16 ? VQS_WQT_F16 : VQS_WQT_BF16, 2,
                                  sh, &p)))
            return rc;
        e.codes = p->data;
        if ((rc = wq_for_rows(nthreads, rows, grain_for(cols), half_rows, &e)))
            return rc;
        return e.bad == SIZE_MAX ? 0 : range_err(&e, k == VQS_WQ_F16 ? "fp16" : "bf16");
    }
    if (is_fp8(k)) {
        uint64_t ss[1] = {per_row(k) ? rows : 1};
        if ((rc = vqs_wq_part_add(out, "codes", VQS_WQT_U8, 2, sh, &p)))
            return rc;
        e.codes = p->data;
        if ((rc = vqs_wq_part_add(out, "scale", VQS_WQT_F32, 1, ss, &p)))
            return rc;
        e.scale = p->data;
        if (!per_row(k)) {
            e.amax = malloc(rows * sizeof *e.amax);
            if (!e.amax)
                return vqs_seterr(VQS_ENOMEM, "fp8: %zu row maxima", rows);
            rc = wq_for_rows(nthreads, rows, grain_for(cols), amax_rows, &e);
            float m = 0.0f;
            for (size_t r = 0; r < rows; r++)
                m = m > e.amax[r] ? m : e.amax[r];
            free(e.amax);
            e.amax = NULL;
            if (rc)
                return rc;
            e.scale[0] = m / (is_e4m3(k) ? 448.0f : 57344.0f);
        }
        return wq_for_rows(nthreads, rows, grain_for(cols), fp8_rows, &e);
    }
    if (k == VQS_WQ_INT8_CH) {
        uint64_t ss[1] = {rows};
        if ((rc = vqs_wq_part_add(out, "codes", VQS_WQT_I8, 2, sh, &p)))
            return rc;
        e.codes = p->data;
        if ((rc = vqs_wq_part_add(out, "scale", VQS_WQT_F32, 1, ss, &p)))
            return rc;
        e.scale = p->data;
        return wq_for_rows(nthreads, rows, grain_for(cols), int8_rows, &e);
    }
    if (k == VQS_WQ_LLM_INT8)
        return encode_llm_int8(&e, nthreads, out);
    return vqs_seterr(VQS_EINVAL, "wq_scalar: not an element-wise format (kind %d)", (int)k);
}

/* ---- decode ---------------------------------------------------------- */

struct dec_ctx {
    const vqs_wq_tensor *t;
    float *w;
    const void *codes, *scale, *out_cols, *outliers;
    size_t nout;
};

static int dec_rows(void *c, size_t r0, size_t r1)
{
    struct dec_ctx *e = c;
    vqs_wq_kind k = e->t->spec.kind;
    size_t n = e->t->cols;
    for (size_t r = r0; r < r1; r++) {
        float *y = e->w + r * n;
        if (k == VQS_WQ_F16 || k == VQS_WQ_BF16) {
            for (size_t j = 0; j < n; j++) {
                uint16_t h = ld_u16(e->codes, r * n + j);
                y[j] = k == VQS_WQ_F16 ? vqs_f16_to_f32(h) : vqs_bf16_to_f32(h);
            }
            continue;
        }
        const float s = ld_f32(e->scale, per_row(k) ? r : 0);
        if (is_fp8(k)) {
            const uint8_t *q = (const uint8_t *)e->codes + r * n;
            for (size_t j = 0; j < n; j++)
                y[j] = (is_e4m3(k) ? vqs_e4m3_to_f32(q[j]) : vqs_e5m2_to_f32(q[j])) * s;
            continue;
        }
        const int8_t *q = (const int8_t *)e->codes + r * n;
        for (size_t j = 0; j < n; j++)
            y[j] = (float)q[j] * s;
        for (size_t o = 0; o < e->nout; o++)
            y[ld_i32(e->out_cols, o)] = vqs_f16_to_f32(ld_u16(e->outliers, r * e->nout + o));
    }
    return 0;
}

int wq_scalar_decode(const vqs_wq_tensor *t, float *w, int nthreads)
{
    struct dec_ctx e;
    memset(&e, 0, sizeof e);
    e.t = t, e.w = w;
    const vqs_wq_part *p;
    vqs_wq_kind k = t->spec.kind;
    size_t rows = t->rows, cols = t->cols;
    int rc;
    if (k == VQS_WQ_F16 || k == VQS_WQ_BF16) {
        if ((rc = wq_need_part(t, "values", k == VQS_WQ_F16 ? VQS_WQT_F16 : VQS_WQT_BF16, 2, rows,
                               cols, &p)))
            return rc;
        e.codes = p->data;
        return wq_for_rows(nthreads, rows, grain_for(cols), dec_rows, &e);
    }
    if (!is_fp8(k) && k != VQS_WQ_INT8_CH && k != VQS_WQ_LLM_INT8)
        return vqs_seterr(VQS_EINVAL, "wq_scalar: not an element-wise format (kind %d)", (int)k);
    size_t nscale = per_row(k) ? rows : 1;
    if ((rc = wq_need_part(t, "codes", is_fp8(k) ? VQS_WQT_U8 : VQS_WQT_I8, 2, rows, cols, &p)))
        return rc;
    e.codes = p->data;
    if ((rc = wq_need_part(t, "scale", VQS_WQT_F32, 1, nscale, 0, &p)))
        return rc;
    e.scale = p->data;
    for (size_t i = 0; i < nscale; i++) {
        float s = ld_f32(e.scale, i);
        if (!(s >= 0.0f) || isinf(s))
            return vqs_seterr(VQS_ECORRUPT, "part 'scale'[%zu] = %g is not a finite scale >= 0", i,
                              (double)s);
    }
    if (k == VQS_WQ_LLM_INT8) {
        const vqs_wq_part *oc = vqs_wq_part_get(t, "outlier_cols");
        uint64_t nout = oc ? oc->shape[0] : 0;
        if ((rc = wq_need_part(t, "outlier_cols", VQS_WQT_I32, 1, nout, 0, &p)))
            return rc;
        e.out_cols = p->data;
        if (nout > cols)
            return vqs_seterr(VQS_ESHAPE, "llm_int8 tensor: %llu outlier columns of %zu",
                              (unsigned long long)nout, cols);
        e.nout = (size_t)nout;
        if ((rc = wq_need_part(t, "outliers", VQS_WQT_F16, 2, rows, nout, &p)))
            return rc;
        e.outliers = p->data;
        for (size_t o = 0; o < e.nout; o++) {
            int32_t c = ld_i32(e.out_cols, o);
            if (c < 0 || (size_t)c >= cols || (o && c <= ld_i32(e.out_cols, o - 1)))
                return vqs_seterr(VQS_ECORRUPT, "part 'outlier_cols'[%zu] = %d: not an ascending "
                                  "column index below %zu", o, (int)c, cols);
        }
    }
    return wq_for_rows(nthreads, rows, grain_for(cols), dec_rows, &e);
}
