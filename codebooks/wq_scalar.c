/* wq_scalar.c: placeholder until the formats land (see wq_internal.h). */
#include "wq_internal.h"

int wq_scalar_encode(const vqs_wq_spec *s, const float *w, size_t rows, size_t cols, int nthreads,
                   int verbose, vqs_wq_tensor *out)
{
    (void)s, (void)w, (void)rows, (void)cols, (void)nthreads, (void)verbose, (void)out;
    return vqs_seterr(VQS_ESPEC, "weight format not implemented yet");
}

int wq_scalar_decode(const vqs_wq_tensor *t, float *w, int nthreads)
{
    (void)t, (void)w, (void)nthreads;
    return vqs_seterr(VQS_ESPEC, "weight format not implemented yet");
}
