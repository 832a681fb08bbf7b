/*
 * vqs_float.h: the small float formats vqs stores and their exact
 * conversions to and from float32 (IEEE binary16, bfloat16, fp8 E4M3 and
 * E5M2), and the one list of code element types (vqs_elem) that the
 * scalar quantizers write (codebooks/scalar.c) and the scan kernels read
 * (index/kernels).
 *
 * Every conversion is exact (tested over every code) and independent of
 * the FPU rounding mode (float.c says how).
 */
#ifndef VQS_FLOAT_H
#define VQS_FLOAT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Element types of scalar codes, and the value v(c) a code stands for:
 * U8: c (0..255); S8: (int8_t)c; U4: nibble j of a row is
 * (row[j / 2] >> (4 * (j & 1))) & 15; F16: IEEE half (2 bytes LE); BF16:
 * bfloat16 (2 bytes LE); E4M3: fp8 E4M3FN (1 byte); E5M2: fp8 E5M2 (1 byte);
 * F32: float32 (4 bytes LE, any alignment; the SQfp32 / Flat codec).
 * fp8/F16/BF16/F32 NaN or Inf patterns never come out of vqs encoders; kernels
 * may give any finite or non-finite value for them (the reference decodes
 * with vqs_f16_to_f32, vqs_bf16_to_f32, vqs_e4m3_to_f32, vqs_e5m2_to_f32).
 * The numbers are fixed (a view's sq_type carries them; keep them if the
 * list grows). Not a file element type: storage's vqs_dtype is that. */
typedef enum vqs_elem {
    VQS_ELEM_U8 = 0,
    VQS_ELEM_S8,
    VQS_ELEM_U4,
    VQS_ELEM_F16,
    VQS_ELEM_BF16,
    VQS_ELEM_E4M3,
    VQS_ELEM_E5M2,
    VQS_ELEM_F32,
} vqs_elem;

/* IEEE 754 binary16 <-> binary32. Encoding rounds to nearest, ties to even;
 * overflow gives +-Inf, NaN stays NaN (quiet). Exact for every half value. */
float vqs_f16_to_f32(uint16_t h);
uint16_t vqs_f32_to_f16(float f);

/* bfloat16: round to nearest even; NaN stays NaN. */
uint16_t vqs_f32_to_bf16(float f);
float vqs_bf16_to_f32(uint16_t h);

/* fp8 E4M3 (FN: max 448, no Inf, one NaN pattern 0x7f/0xff) and E5M2 (max
 * 57344, with Inf and NaN). Round to nearest even; saturate to the largest
 * finite value when sat != 0, else overflow to NaN (E4M3) or Inf (E5M2). */
uint8_t vqs_f32_to_e4m3(float f, int sat);
float vqs_e4m3_to_f32(uint8_t v);
uint8_t vqs_f32_to_e5m2(float f, int sat);
float vqs_e5m2_to_f32(uint8_t v);

#ifdef __cplusplus
}
#endif
#endif
