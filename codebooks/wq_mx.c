/* wq_mx.c: placeholder until the formats land (see wq_internal.h). */
#include "wq_internal.h"

int wq_mx_encode(const vqs_wq_spec *s, const float *w, size_t rows, size_t cols, int nthreads,
                   int verbose, vqs_wq_tensor *out)
{
    (void)s, (void)w, (void)rows, (void)cols, (void)nthreads, (void)verbose, (void)out;
    return vqs_seterr(VQS_ESPEC, "weight format not implemented yet");
}

int wq_mx_decode(const vqs_wq_tensor *t, float *w, int nthreads)
{
    (void)t, (void)w, (void)nthreads;
    return vqs_seterr(VQS_ESPEC, "weight format not implemented yet");
}

uint8_t vqs_f32_to_e2m1(float f) { (void)f; return 0; }
float vqs_e2m1_to_f32(uint8_t c) { (void)c; return 0; }
uint8_t vqs_f32_to_e2m3(float f) { (void)f; return 0; }
float vqs_e2m3_to_f32(uint8_t c) { (void)c; return 0; }
uint8_t vqs_f32_to_e3m2(float f) { (void)f; return 0; }
float vqs_e3m2_to_f32(uint8_t c) { (void)c; return 0; }
float vqs_e8m0_to_f32(uint8_t v) { (void)v; return 0; }
