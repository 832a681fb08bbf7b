/* libFuzzer target: the fvecs parser. */
#include "fuzz_vecfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_vecfile(data, size, VQS_FMT_FVECS, "fuzz.fvecs");
}
