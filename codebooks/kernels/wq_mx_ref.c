/*
 * wq_mx_ref.c: the element table and the scalar (reference) MX and NVFP4
 * row encoders of wq_mx_kernels.h: block by block through
 * wq_mx_block_ref and wq_nv_block_ref.
 */
#include "wq_mx_kernels.h"

/* E4M3 (max 448 = 1.75 * 2^8, 0x7f NaN not produced), E5M2 (max 57344 =
 * 1.75 * 2^15, 0x7b), E2M3 (7.5 = 1.875 * 2^2), E3M2 (28 = 1.75 * 2^4),
 * E2M1 (6 = 1.5 * 2^2), INT8 (127 * 2^-6 = 1.984375, emax 0). */
const wq_mx_elem wq_mx_elems[WQ_MX_NTYPES] = {
    {WQ_MX_E4M3, 8, 7, 3, WQ_MX_NOCAP, 8, 0x7e, 7},
    {WQ_MX_E5M2, 8, 15, 2, WQ_MX_NOCAP, 15, 0x7b, 7},
    {WQ_MX_E2M3, 6, 1, 3, WQ_MX_NOCAP, 2, 0x1f, 5},
    {WQ_MX_E3M2, 6, 3, 2, WQ_MX_NOCAP, 4, 0x1f, 5},
    {WQ_MX_E2M1, 4, 1, 1, WQ_MX_NOCAP, 2, 0x07, 3},
    {WQ_MX_INT8, 8, 1, 6, 1, 0, 127, 0},
};

static void encode_row_ref(const wq_mx_elem *e, const float *x, size_t n, uint8_t *codes,
                           uint8_t *scales)
{
    size_t bb = wq_mx_row_bytes(e, WQ_MX_BLOCK);
    for (size_t j = 0, b = 0; j < n; j += WQ_MX_BLOCK, b++) {
        size_t len = n - j < WQ_MX_BLOCK ? n - j : WQ_MX_BLOCK;
        wq_mx_block_ref(e, x + j, len, codes + b * bb, scales + b);
    }
}

static void nv_encode_row_ref(const float *x, size_t n, float st, uint8_t *codes, uint8_t *scales)
{
    for (size_t j = 0, b = 0; j < n; j += WQ_NV_BLOCK, b++) {
        size_t len = n - j < WQ_NV_BLOCK ? n - j : WQ_NV_BLOCK;
        wq_nv_block_ref(x + j, len, st, codes + j / 2, scales + b);
    }
}

static uint32_t amax_bits_ref(const float *x, size_t n)
{
    uint32_t m = 0; /* |x| compared as bits: the same order for finite floats */
    for (size_t i = 0; i < n; i++) {
        uint32_t a = vqs_f32_bits(x[i]) & 0x7fffffffu;
        m = a > m ? a : m;
    }
    return m;
}

const wq_mx_kernels wq_mx_kernels_ref = {VQS_SIMD_SCALAR, encode_row_ref, nv_encode_row_ref,
                                         amax_bits_ref};
