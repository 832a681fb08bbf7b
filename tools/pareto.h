/* pareto.h: the Pareto front of quality against cost (vqs report, vqs
 * recommend). Pure functions over arrays; no I/O. */
#ifndef VQS_PARETO_H
#define VQS_PARETO_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What vqs_pareto_front says of each point. */
enum {
    VQS_PARETO_OUT = 0,   /* took no part (not in use, or a cost or quality that is not finite) */
    VQS_PARETO_FRONT = 1, /* on the front: no other point has cost <= and quality >= with one strict */
    VQS_PARETO_DOMINATED = 2,
    VQS_PARETO_TIE = 3 /* the same cost and quality as an earlier point on the front, which is kept */
};

/* The front of n points (cost[i], quality[i]): minimise cost, maximise
 * quality. Point i takes part when use is NULL or use[i] != 0, and its cost
 * and quality are finite. Of identical points (same cost and quality) the
 * first (lowest index) is on the front and the others are VQS_PARETO_TIE.
 *   flag:   n entries, VQS_PARETO_* of each point
 *   tie_of: n entries or NULL; for a TIE the index of the point kept, else -1
 *   front:  n entries or NULL; the front's indices by increasing cost (so
 *           increasing quality), *nfront of them
 * Returns 0, VQS_EINVAL (NULL arrays with n > 0) or VQS_ENOMEM. O(n log n). */
int vqs_pareto_front(size_t n, const double *cost, const double *quality, const unsigned char *use, int *flag,
                     long *tie_of, size_t *front, size_t *nfront);

#ifdef __cplusplus
}
#endif

#endif
