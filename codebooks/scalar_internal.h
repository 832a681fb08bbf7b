/*
 * scalar_internal.h: what the SQ stage (scalar.c) and its training
 * (scalar_train.c) share: the kinds, the parameters, and the row quantiser
 * both the encoder and the grid choice run.
 */
#ifndef VQS_SCALAR_INTERNAL_H
#define VQS_SCALAR_INTERNAL_H

#include "codebook_internal.h"

#ifdef __cplusplus
extern "C" {
#endif

enum sq_kind { K_F16, K_BF16, K_E4M3, K_E5M2, K_E4M3T, K_U8, K_U4, K_S8, K_F32 };

typedef struct sq {
    int kind;
    size_t d;
    size_t na;      /* floats in a and in b: d (per-dimension), 1 (one scale), 0 */
    float *a;       /* U8/U4: first grid point a_j; fp8: scale_j (or a[0] for E4M3T); S8: a[0] = scale */
    float *b;       /* U8/U4: grid step_j; fp8/S8: 1 / scale */
    float *binv;    /* U8/U4: 1 / step_j (0 when the step is 0) */
    float lut[256]; /* fp8: value of each code, NaN codes -> 0, Inf -> +-max */
} sq;

static inline int is_fp8(int k) { return k == K_E4M3 || k == K_E5M2 || k == K_E4M3T; }
static inline int per_dim(int k) { return k == K_E4M3 || k == K_E5M2 || k == K_U8 || k == K_U4; }
static inline int trained_kind(int k) { return k != K_F16 && k != K_BF16 && k != K_F32; }
static inline float fmt_max(int k) { return k == K_E5M2 ? 57344.0f : k == K_S8 ? 127.0f : 448.0f; }

static inline unsigned levels_of(int kind) { return kind == K_U8 ? 256 : 16; }

/* nearest grid index in [0, levels - 1] to t = (x - a) / step; NaN t -> 0 */
static inline unsigned cell(float t, unsigned levels)
{
    if (t >= (float)(levels - 1))
        return levels - 1;
    if (t > 0.0f)
        return (unsigned)lrintf(t);
    return 0;
}

/* The same as cell() for a whole row, written so that the compiler
 * vectorises it: t = (sane(x) - a) * inv clamped to [0, levels - 1] (NaN ->
 * 0), then rounded to nearest-even by adding and subtracting 2^23 (exact for
 * 0 <= t < 2^22, and like lrintf it rounds in the current rounding mode).
 * Writes the grid index as a float (exact) and, if c, as a byte. */
static inline void cells_row(const float *x, const float *a, const float *inv, size_t d,
                             unsigned levels, float *r, uint8_t *c)
{
    const float top = (float)(levels - 1), magic = 0x1p23f;
    for (size_t j = 0; j < d; j++) {
        float v = x[j];
        v = v == v ? v : 0.0f;
        float t = (v - a[j]) * inv[j];
        t = t > 0.0f ? t : 0.0f; /* NaN (e.g. inf * 0) -> 0 */
        t = t < top ? t : top;
        r[j] = (t + magic) - magic;
    }
    if (c)
        for (size_t j = 0; j < d; j++)
            c[j] = (uint8_t)(int32_t)r[j];
}

/* The SQ stage's train op (scalar_train.c). */
int vqs_sq_train(vqs_stage *s, size_t n, const float *x, const vqs_codec_opts *o);

#ifdef __cplusplus
}
#endif
#endif
