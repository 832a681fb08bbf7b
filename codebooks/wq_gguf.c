/*
 * wq_gguf.c: GGUF's Q8_0, Q4_0 and Q4_1 in llama.cpp's block layouts, and
 * QLoRA's NF4 as bitsandbytes stores it.
 *
 * Parts:
 *   q8_0 / q4_0 / q4_1  "blocks"  u8 [rows, nblocks * 34 / 18 / 20]
 *       nblocks = ceil(cols / 32) per row; the blocks are llama.cpp's
 *       block_q8_0 / block_q4_0 / block_q4_1 structs back to back
 *       (codebooks/kernels/wq_gguf_kernels.h writes their byte layout), so a
 *       row whose length is a multiple of 32 is byte for byte what
 *       quantize_row_q*_ref writes. A short last block is stored padded
 *       (the kernels' header says with what); decode drops the padding.
 *   nf4   "codes"   u8  [rows, ceil(cols / 2)]: element 2i in the HIGH nibble
 *                       of byte i, 2i + 1 in the low one (bitsandbytes); an
 *                       odd row ends with the code of 0.0 (7) as padding
 *         "absmax"  f32 [rows, ceil(cols / 64)]
 *
 * Design decisions:
 * - Encoding is bit-exact to llama.cpp's reference quantizers
 *   (quantize_row_q*_ref, "for deterministic creation of model files"): the
 *   row encoders are a kernel table (kernels/wq_gguf_*.c), scalar reference
 *   plus AVX2 and AVX-512 versions that write the same bytes.
 * - An fp16 scale (or Q4_1 minimum) that overflows is refused (VQS_ERANGE
 *   naming the row and block) instead of writing Inf as llama.cpp would;
 *   on decode, an Inf/NaN fp16 field or a bad NF4 absmax is VQS_ECORRUPT.
 *   Both checks run on the calling thread (the error detail is
 *   thread-local) in a pass over the scales only.
 * - NF4 follows bitsandbytes' CUDA kernel (kQuantizeBlockwise with
 *   dQuantizeNF4), the QLoRA original: y = x * (1 / absmax), then the code
 *   is the number of the 15 thresholds t with y > t, a y exactly on one
 *   going to the lower level. The thresholds are the kernel's float
 *   literals: the levels' midpoints printed from double arithmetic, so 4 of
 *   them (pivots 0, 8, 12, 14) lie one float away from the float32 midpoint
 *   (l[i] + l[i+1]) / 2 that bitsandbytes' torch backend bucketizes on; the
 *   two implementations differ on those 4 inputs only, and we follow CUDA
 *   (the tests pin both facts). The tie direction (lower level) is the same
 *   in the CUDA tree and in torch.bucketize. Two departures where bitsandbytes divides by zero: an all-zero block gets
 *   absmax 0 and codes 7 (the level 0.0; the CUDA kernel computes 0 * Inf =
 *   NaN and writes code 0, which decodes to -0.0), and when 1/absmax
 *   overflows (a subnormal absmax) y = x / absmax instead.
 *   Rejected: the nearest level by |y - l| (differs on the midpoints).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/wq_gguf_kernels.h"
#include "wq_internal.h"

#define NF4_BLOCK 64

/* bitsandbytes' NF4 table (csrc/kernels.cu nf4_dequantization_lut, the same
 * float literals). */
const float vqs_nf4_levels[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

static size_t block_bytes(vqs_wq_kind k)
{
    return k == VQS_WQ_Q8_0 ? WQ_Q8_0_BYTES : k == VQS_WQ_Q4_0 ? WQ_Q4_0_BYTES : WQ_Q4_1_BYTES;
}

/* ---- encode ---------------------------------------------------------- */

struct enc_ctx {
    const float *w;
    size_t cols;
    vqs_wq_kind kind;
    uint8_t *blocks;   /* q formats */
    size_t row_bytes;
    uint8_t *codes;    /* nf4 */
    float *absmax;
};

static int q_rows(void *c, size_t r0, size_t r1)
{
    struct enc_ctx *e = c;
    const wq_gguf_kernels *k = wq_gguf_kernels_active();
    void (*row)(const float *, size_t, uint8_t *) =
        e->kind == VQS_WQ_Q8_0 ? k->q8_0 : e->kind == VQS_WQ_Q4_0 ? k->q4_0 : k->q4_1;
    for (size_t r = r0; r < r1; r++)
        row(e->w + r * e->cols, e->cols, e->blocks + r * e->row_bytes);
    return 0;
}

/* One row: codes one per byte into tmp (cols bytes), then packed two per
 * byte, the first element in the high nibble. */
static void nf4_row(const wq_gguf_kernels *k, const float *x, size_t n, uint8_t *tmp,
                    uint8_t *codes, float *absmax)
{
    size_t nb = wq_nblocks(n, NF4_BLOCK);
    for (size_t b = 0; b < nb; b++) {
        size_t j0 = b * NF4_BLOCK, len = j0 + NF4_BLOCK < n ? NF4_BLOCK : n - j0;
        const float am = k->amax(x + j0, len);
        absmax[b] = am;
        const float inv = am > 0.0f ? 1.0f / am : 0.0f;
        if (am == 0.0f)
            memset(tmp + j0, 7, len);
        else if (isinf(inv)) /* a subnormal absmax: divide instead */
            for (size_t j = j0; j < j0 + len; j++)
                tmp[j] = wq_nf4_one(x[j] / am);
        else
            k->nf4_codes(x + j0, len, inv, tmp + j0);
    }
    for (size_t i = 0; i < n / 2; i++)
        codes[i] = (uint8_t)(tmp[2 * i] << 4 | tmp[2 * i + 1]);
    if (n & 1)
        codes[n / 2] = (uint8_t)(tmp[n - 1] << 4 | 7); /* the padding: the code of 0.0 */
}

static int nf4_rows(void *c, size_t r0, size_t r1)
{
    struct enc_ctx *e = c;
    const wq_gguf_kernels *k = wq_gguf_kernels_active();
    size_t cb = (e->cols + 1) / 2, nb = wq_nblocks(e->cols, NF4_BLOCK);
    uint8_t *tmp = malloc(e->cols);
    if (!tmp)
        return VQS_ENOMEM;
    for (size_t r = r0; r < r1; r++)
        nf4_row(k, e->w + r * e->cols, e->cols, tmp, e->codes + r * cb, e->absmax + r * nb);
    free(tmp);
    return 0;
}

/* A float of a part at any alignment (a borrowed part may be a mapped file). */
static inline float ld_f32(const void *base, size_t i)
{
    float f;
    memcpy(&f, (const char *)base + 4 * i, 4);
    return f;
}

static size_t grain_for(size_t cols)
{
    size_t g = ((size_t)1 << 16) / (cols ? cols : 1);
    return g ? g : 1;
}

/* Encoded fp16 fields that overflowed: VQS_ERANGE naming the first. */
static int check_q_range(const vqs_wq_tensor *t, const uint8_t *blocks, size_t row_bytes,
                         size_t bb)
{
    size_t nb = wq_nblocks(t->cols, WQ_QK);
    int nf = t->spec.kind == VQS_WQ_Q4_1 ? 2 : 1;
    for (size_t r = 0; r < t->rows; r++)
        for (size_t b = 0; b < nb; b++)
            for (int f = 0; f < nf; f++) {
                uint16_t h = wq_get_u16(blocks + r * row_bytes + b * bb + 2 * f);
                if ((h & 0x7c00) == 0x7c00)
                    return vqs_seterr(VQS_ERANGE,
                                      "row %zu, block %zu (columns %zu..%zu): the %s does not fit "
                                      "fp16 (weights too large for this format)",
                                      r, b, b * WQ_QK, b * WQ_QK + WQ_QK - 1 < t->cols - 1
                                                           ? b * WQ_QK + WQ_QK - 1 : t->cols - 1,
                                      f ? "minimum m" : "scale d");
            }
    return 0;
}

int wq_gguf_encode(const vqs_wq_spec *s, const float *w, size_t rows, size_t cols, int nthreads,
                   int verbose, vqs_wq_tensor *out)
{
    (void)verbose;
    struct enc_ctx e = {w, cols, s->kind, NULL, 0, NULL, NULL};
    vqs_wq_part *p;
    int rc;
    switch (s->kind) {
    case VQS_WQ_Q8_0:
    case VQS_WQ_Q4_0:
    case VQS_WQ_Q4_1: {
        size_t bb = block_bytes(s->kind);
        e.row_bytes = wq_nblocks(cols, WQ_QK) * bb;
        uint64_t sh[2] = {rows, e.row_bytes};
        if ((rc = vqs_wq_part_add(out, "blocks", VQS_WQT_U8, 2, sh, &p)))
            return rc;
        e.blocks = p->data;
        if ((rc = wq_for_rows(nthreads, rows, grain_for(cols), q_rows, &e)))
            return rc;
        return check_q_range(out, e.blocks, e.row_bytes, bb);
    }
    case VQS_WQ_NF4: {
        uint64_t sc[2] = {rows, (cols + 1) / 2}, sa[2] = {rows, wq_nblocks(cols, NF4_BLOCK)};
        if ((rc = vqs_wq_part_add(out, "codes", VQS_WQT_U8, 2, sc, &p)))
            return rc;
        e.codes = p->data;
        if ((rc = vqs_wq_part_add(out, "absmax", VQS_WQT_F32, 2, sa, &p)))
            return rc;
        e.absmax = p->data;
        rc = wq_for_rows(nthreads, rows, grain_for(cols), nf4_rows, &e);
        return rc == VQS_ENOMEM ? vqs_seterr(rc, "nf4: a row buffer of %zu bytes", cols) : rc;
    }
    default:
        return vqs_seterr(VQS_EINVAL, "wq_gguf: not a GGUF/NF4 format (kind %d)", (int)s->kind);
    }
}

/* ---- decode ---------------------------------------------------------- */

struct dec_ctx {
    const vqs_wq_tensor *t;
    float *w;
    const uint8_t *blocks;
    size_t row_bytes;
    const uint8_t *codes;
    const void *absmax; /* f32, any alignment */
};

static void q_decode_row(vqs_wq_kind kind, const uint8_t *blk, size_t n, float *y)
{
    size_t bb = block_bytes(kind);
    for (size_t b = 0; b * WQ_QK < n; b++) {
        const uint8_t *o = blk + b * bb;
        const float d = vqs_f16_to_f32(wq_get_u16(o));
        size_t m = n - b * WQ_QK < WQ_QK ? n - b * WQ_QK : WQ_QK;
        float *yb = y + b * WQ_QK;
        if (kind == VQS_WQ_Q8_0) {
            for (size_t j = 0; j < m; j++)
                yb[j] = (float)(int8_t)o[2 + j] * d;
        } else if (kind == VQS_WQ_Q4_0) {
            for (size_t j = 0; j < m; j++) {
                int q = j < 16 ? (o[2 + j] & 0x0f) : (o[2 + j - 16] >> 4);
                yb[j] = (float)(q - 8) * d;
            }
        } else {
            const float mn = vqs_f16_to_f32(wq_get_u16(o + 2));
            for (size_t j = 0; j < m; j++) {
                int q = j < 16 ? (o[4 + j] & 0x0f) : (o[4 + j - 16] >> 4);
                yb[j] = (float)q * d + mn;
            }
        }
    }
}

static int q_dec_rows(void *c, size_t r0, size_t r1)
{
    struct dec_ctx *e = c;
    for (size_t r = r0; r < r1; r++)
        q_decode_row(e->t->spec.kind, e->blocks + r * e->row_bytes, e->t->cols,
                     e->w + r * e->t->cols);
    return 0;
}

static int nf4_dec_rows(void *c, size_t r0, size_t r1)
{
    struct dec_ctx *e = c;
    size_t n = e->t->cols, cb = (n + 1) / 2, nb = wq_nblocks(n, NF4_BLOCK);
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *cr = e->codes + r * cb;
        size_t a0 = r * nb;
        float *y = e->w + r * n;
        for (size_t j = 0; j < n; j++) {
            int q = j & 1 ? cr[j / 2] & 0x0f : cr[j / 2] >> 4;
            y[j] = vqs_nf4_levels[q] * ld_f32(e->absmax, a0 + j / NF4_BLOCK);
        }
    }
    return 0;
}

int wq_gguf_decode(const vqs_wq_tensor *t, float *w, int nthreads)
{
    struct dec_ctx e = {t, w, NULL, 0, NULL, NULL};
    const vqs_wq_part *p;
    int rc;
    size_t rows = t->rows, cols = t->cols;
    switch (t->spec.kind) {
    case VQS_WQ_Q8_0:
    case VQS_WQ_Q4_0:
    case VQS_WQ_Q4_1: {
        size_t bb = block_bytes(t->spec.kind), nb = wq_nblocks(cols, WQ_QK);
        e.row_bytes = nb * bb;
        if ((rc = wq_need_part(t, "blocks", VQS_WQT_U8, 2, rows, e.row_bytes, &p)))
            return rc;
        e.blocks = p->data;
        int nf = t->spec.kind == VQS_WQ_Q4_1 ? 2 : 1;
        for (size_t r = 0; r < rows; r++)
            for (size_t b = 0; b < nb; b++)
                for (int f = 0; f < nf; f++)
                    if ((wq_get_u16(e.blocks + r * e.row_bytes + b * bb + 2 * f) & 0x7c00) == 0x7c00)
                        return vqs_seterr(VQS_ECORRUPT, "part 'blocks', row %zu, block %zu: the fp16 "
                                          "%s is Inf or NaN", r, b, f ? "minimum m" : "scale d");
        return wq_for_rows(nthreads, rows, grain_for(cols), q_dec_rows, &e);
    }
    case VQS_WQ_NF4: {
        size_t nb = wq_nblocks(cols, NF4_BLOCK);
        if ((rc = wq_need_part(t, "codes", VQS_WQT_U8, 2, rows, (cols + 1) / 2, &p)))
            return rc;
        e.codes = p->data;
        if ((rc = wq_need_part(t, "absmax", VQS_WQT_F32, 2, rows, nb, &p)))
            return rc;
        e.absmax = p->data;
        for (size_t i = 0; i < rows * nb; i++) {
            float a = ld_f32(e.absmax, i);
            if (!(a >= 0.0f) || isinf(a))
                return vqs_seterr(VQS_ECORRUPT, "part 'absmax', row %zu, block %zu: %g is not a "
                                  "finite absmax >= 0", i / nb, i % nb, (double)a);
        }
        return wq_for_rows(nthreads, rows, grain_for(cols), nf4_dec_rows, &e);
    }
    default:
        return vqs_seterr(VQS_EINVAL, "wq_gguf: not a GGUF/NF4 format (kind %d)", (int)t->spec.kind);
    }
}
