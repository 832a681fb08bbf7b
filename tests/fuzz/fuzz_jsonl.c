/* libFuzzer target: the JSON Lines reader (storage/vecfile_jsonl.c), with
 * payloads kept, so that the id, payload and duplicate-id paths all run. On
 * success every row, id and payload is touched through the public readers,
 * so a wrong n, d or offset shows up under ASan. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vqs_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* exact-size copy: vqs_vecfile_open_mem wants 4-byte alignment */
    void *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    if (size)
        memcpy(buf, data, size);
    vqs_vecfile_opts o = {.format = VQS_FMT_JSONL, .max_dim = 4096, .keep_payload = 1,
                          .max_bytes = 64u << 20};
    vqs_vecfile *vf = NULL;
    if (vqs_vecfile_open_mem(buf, size, "fuzz.jsonl", &o, &vf) == 0) {
        size_t n = vqs_vecfile_n(vf), d = vqs_vecfile_d(vf);
        float *row = malloc(sizeof(float) * d);
        volatile float sink = 0;
        volatile size_t chars = 0;
        const int64_t *ids = NULL;
        const struct vqs_pid *pids = vqs_vecfile_pids(vf);
        vqs_vecfile_ids(vf, &ids);
        for (size_t i = 0; row && i < n; i++) {
            if (vqs_vecfile_read_f32(vf, i, 1, row) == 0)
                for (size_t j = 0; j < d; j++)
                    sink += row[j];
            if (ids)
                sink += (float)ids[i];
            if (pids)
                chars += pids[i].kind;
            const char *p = vqs_vecfile_payload(vf, i);
            if (p)
                chars += strlen(p);
        }
        (void)sink;
        (void)chars;
        free(row);
        vqs_vecfile_close(vf);
    }
    free(buf);
    return 0;
}
