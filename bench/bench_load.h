/* bench_load.h: a whole vector file as float32 rows, for the benches
 * (exits with the file named if it cannot). */
#ifndef VQS_BENCH_LOAD_H
#define VQS_BENCH_LOAD_H

#include <stdio.h>
#include <stdlib.h>

#include "vqs_common.h"
#include "vqs_store.h"

static inline float *load(const char *path, size_t *n, size_t *d)
{
    vqs_vecfile *vf;
    if (vqs_vecfile_open(path, NULL, &vf)) {
        fprintf(stderr, "%s: %s\n", path, vqs_errdetail());
        exit(1);
    }
    *n = vqs_vecfile_n(vf);
    *d = vqs_vecfile_d(vf);
    float *x = malloc(sizeof(float) * *n * *d);
    if (!x || vqs_vecfile_read_f32(vf, 0, *n, x)) {
        fprintf(stderr, "%s: cannot read\n", path);
        exit(1);
    }
    vqs_vecfile_close(vf);
    return x;
}

#endif
