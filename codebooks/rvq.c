/* PENDING: placeholder so the pipeline links; replaced by the real stage. */
#include "codebook_internal.h"
int vqs_stage_rvq_new(const char *tok, const char *next, vqs_stage *s)
{
    (void)tok; (void)next; (void)s;
    return VQS_ENOTFOUND;
}
