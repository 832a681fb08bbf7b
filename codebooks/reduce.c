/*
 * reduce.c: the calls training makes on a vqs_reducer (vqs_codebook.h), each
 * a no-op that returns rc when there is none, so a trainer has one code
 * path for one process and for the ranks of a job.
 */
#include "codebook_internal.h"

#include <stdlib.h>

int vqs_reduce_agree(const vqs_reducer *R, int rc)
{
    if (!R || R->size <= 1)
        return rc;
    return R->sum(R->ctx, rc, NULL, 0);
}

int vqs_reduce_sum(const vqs_reducer *R, int rc, double *v, size_t n)
{
    if (!R || R->size <= 1)
        return rc;
    return R->sum(R->ctx, rc, v, n);
}

int vqs_reduce_gather(const vqs_reducer *R, int rc, const void *mine, size_t rows, size_t width, void *all)
{
    if (!R || R->size <= 1) {
        if (!rc && rows && mine != all)
            memcpy(all, mine, rows * width);
        return rc;
    }
    return R->gather(R->ctx, rc, mine, rows, width, all);
}

int vqs_reduce_layout(const vqs_reducer *R, int rc, size_t n, size_t *total, size_t *first)
{
    *total = n;
    *first = 0;
    if (!R || R->size <= 1)
        return rc;
    size_t P = (size_t)R->size;
    double *c = calloc(P, sizeof *c);
    if (!c && !rc)
        rc = vqs_seterr(VQS_ENOMEM, "%zu participants", P);
    double one = 0, *v = c ? c : &one;
    if (c)
        c[R->rank] = (double)n;
    rc = R->sum(R->ctx, rc, v, c ? P : 0);
    if (!rc) {
        *total = 0;
        for (size_t r = 0; r < P; r++) {
            if (r == (size_t)R->rank)
                *first = *total;
            *total += (size_t)c[r];
        }
    }
    free(c);
    return rc;
}
