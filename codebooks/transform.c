/* PENDING: placeholder so the pipeline links; replaced by the real stage. */
#include "codebook_internal.h"
int vqs_stage_transform_new(const char *tok, const char *next, vqs_stage *s)
{
    (void)tok; (void)next; (void)s;
    return VQS_ENOTFOUND;
}
int vqs_stage_pca_info(const vqs_stage *s, const float **ev, size_t *n, double *retained)
{
    (void)s; (void)ev; (void)n; (void)retained;
    return VQS_ENOTFOUND;
}
