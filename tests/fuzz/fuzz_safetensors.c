/* libFuzzer target: the safetensors reader (storage/safetensors.c). Opens
 * the input with vqs_st_open_mem and, when it opens, reads every tensor as
 * float32 (strict, then allowing NaN/Inf) into a buffer of exactly numel
 * floats, looks every tensor up by name and touches every metadata string,
 * so that a wrong offset, shape or count shows up under ASan. The rule
 * checked: bad input gets a negative VQS_E* code and a message naming the
 * file, and never a crash, a leak, UB or a hang. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vqs_common.h"
#include "vqs_store_st.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size copy, so any read past the input is caught */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    if (size)
        memcpy(buf, data, size);
    vqs_st_file *f = NULL;
    int rc = vqs_st_open_mem(buf, size, "fuzz.safetensors", &f);
    if (rc == 0) {
        volatile float sink = 0;
        for (size_t i = 0; i < vqs_st_count(f); i++) {
            const vqs_st_tensor *t = vqs_st_tensor_at(f, i);
            if (vqs_st_find(f, t->name) != t)
                abort(); /* names are unique: find must give this tensor back */
            /* the bytes lie in the input, so numel <= size: the buffer is bounded */
            if (t->numel > size || t->nbytes != t->numel * vqs_st_dtype_size(t->dtype))
                abort();
            const uint8_t *p = t->data;
            if (t->nbytes && (p < buf || p + t->nbytes > buf + size))
                abort();
            float *out = malloc(t->numel ? t->numel * sizeof *out : 1);
            if (!out)
                break;
            if (vqs_st_read_f32(f, t, out, 0) == 0)
                for (uint64_t j = 0; j < t->numel; j++)
                    sink += out[j];
            if (vqs_st_read_f32(f, t, out, 1) == 0)
                for (uint64_t j = 0; j < t->numel; j++)
                    sink += out[j];
            free(out);
        }
        for (size_t i = 0; i < vqs_st_meta_count(f); i++) {
            const char *k, *v;
            vqs_st_meta_at(f, i, &k, &v);
            sink += (float)(strlen(k) + strlen(v));
            if (!vqs_st_meta_get(f, k))
                abort();
        }
        (void)sink;
        vqs_st_close(f);
    } else if (rc >= 0 || vqs_errdetail()[0] == 0) {
        abort(); /* a refusal is negative and says what was wrong */
    }
    free(buf);
    return 0;
}
