/*
 * pareto.c: the Pareto front of quality against cost (pareto.h).
 *
 * Design decisions:
 * - One sort and one sweep: order the points by (cost ascending, quality
 *   descending, index ascending); walking that order, a point is on the
 *   front exactly when its quality beats every point before it. Every point
 *   before it has cost <=, so one with quality >= dominates it (strictly in
 *   cost or quality unless the two are identical). Identical points sort
 *   next to each other, the lowest index first, so "keep the first" falls
 *   out of the order, and the others are reported as ties rather than
 *   silently dropped: a reader of the report sees why a row that looks
 *   optimal is not marked.
 * - Exact comparisons, no tolerance: the figures are means over the same
 *   queries, and two rows 1e-9 apart are different rows. A tolerance would
 *   make "dominated" non-transitive.
 * - The caller says which points take part (use[]), so error rows or rows
 *   without a metric keep their indices and need no compaction.
 * Rejected: the O(n^2) pairwise test (as simple, but quadratic for sweeps
 * of thousands of rows); a stable sort (qsort is not, so the index is part
 * of the key instead).
 */
#include "pareto.h"

#include <math.h>
#include <stdlib.h>

#include "vqs_common.h"

typedef struct pt {
    double cost, quality;
    size_t i;
} pt;

static int pt_cmp(const void *a, const void *b)
{
    const pt *x = a, *y = b;
    if (x->cost != y->cost)
        return x->cost < y->cost ? -1 : 1;
    if (x->quality != y->quality)
        return x->quality > y->quality ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

int vqs_pareto_front(size_t n, const double *cost, const double *quality, const unsigned char *use, int *flag,
                     long *tie_of, size_t *front, size_t *nfront)
{
    if (n && (!cost || !quality || !flag))
        return vqs_seterr(VQS_EINVAL, "pareto_front: NULL array");
    pt *p = malloc(sizeof *p * (n ? n : 1));
    if (!p)
        return vqs_seterr(VQS_ENOMEM, "pareto_front: %zu points", n);
    size_t m = 0, nf = 0;
    for (size_t i = 0; i < n; i++) {
        flag[i] = VQS_PARETO_OUT;
        if (tie_of)
            tie_of[i] = -1;
        if ((use && !use[i]) || !isfinite(cost[i]) || !isfinite(quality[i]))
            continue;
        p[m++] = (pt){cost[i], quality[i], i};
    }
    qsort(p, m, sizeof *p, pt_cmp);
    const pt *last = NULL; /* the last point put on the front */
    for (size_t j = 0; j < m; j++) {
        if (!last || p[j].quality > last->quality) {
            flag[p[j].i] = VQS_PARETO_FRONT;
            if (front)
                front[nf] = p[j].i;
            nf++;
            last = &p[j];
        } else if (p[j].quality == last->quality && p[j].cost == last->cost) {
            flag[p[j].i] = VQS_PARETO_TIE;
            if (tie_of)
                tie_of[p[j].i] = (long)last->i;
        } else {
            flag[p[j].i] = VQS_PARETO_DOMINATED;
        }
    }
    free(p);
    if (nfront)
        *nfront = nf;
    return 0;
}
