/* llama.c: placeholder until the forward pass lands (vqs_llama.h). */
#include "vqs_llama.h"
#include "vqs_common.h"

int vqs_llama_load(const char *path, vqs_llama **out)
{
    (void)out;
    return vqs_seterr(VQS_EINVAL, "%s: forward pass not implemented yet", path);
}
