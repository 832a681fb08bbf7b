/* Shared body of the vector-file fuzz targets: open the input as the given
 * format, and on success touch every value through the public readers so
 * that a wrong n/d/stride shows up as an out-of-bounds read under ASan. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vqs_store.h"

static int fuzz_vecfile(const uint8_t *data, size_t size, vqs_vecfmt fmt, const char *name)
{
    /* libFuzzer's buffer is exactly size bytes (so overreads are caught), but
     * vqs_vecfile_open_mem wants 4-byte alignment: copy into an exact-size
     * malloc block, which is 16-aligned. */
    void *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    if (size)
        memcpy(buf, data, size);
    vqs_vecfile_opts o = {.format = fmt, .max_dim = 4096};
    vqs_vecfile *vf = NULL;
    if (vqs_vecfile_open_mem(buf, size, name, &o, &vf) == 0) {
        size_t n = vqs_vecfile_n(vf), d = vqs_vecfile_d(vf);
        float *row = malloc(sizeof(float) * d);
        volatile float sink = 0;
        for (size_t i = 0; row && i < n; i++) {
            if (vqs_vecfile_read_f32(vf, i, 1, row) == 0)
                for (size_t j = 0; j < d; j++)
                    sink += row[j];
        }
        (void)sink;
        free(row);
        vqs_vecfile_close(vf);
    }
    free(buf);
    return 0;
}
