/* wq_vq.c: placeholder until the formats land (see wq_internal.h). */
#include <stdio.h>

#include "wq_internal.h"

int wq_vq_encode(const vqs_wq_spec *s, const float *w, size_t rows, size_t cols, int nthreads,
                   int verbose, vqs_wq_tensor *out)
{
    (void)s, (void)w, (void)rows, (void)cols, (void)nthreads, (void)verbose, (void)out;
    return vqs_seterr(VQS_ESPEC, "weight format not implemented yet");
}

int wq_vq_decode(const vqs_wq_tensor *t, float *w, int nthreads)
{
    (void)t, (void)w, (void)nthreads;
    return vqs_seterr(VQS_ESPEC, "weight format not implemented yet");
}

int wq_vq_parse(const char *s, vqs_wq_spec *out)
{
    (void)out;
    return vqs_seterr(VQS_ESPEC, "weight format '%s': vq not implemented yet", s);
}

void wq_vq_name(const vqs_wq_spec *s, char *buf, size_t n)
{
    snprintf(buf, n, "vq%dx%d", s->vq_dim, s->vq_bits);
}
