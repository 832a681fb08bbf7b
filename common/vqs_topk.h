/*
 * vqs_topk.h: the k best of a stream of (key, id) candidates, smaller keys
 * better, as every search in vqs ranks them: a bounded max-heap in the
 * caller's array whose root is the worst candidate kept, then one sort.
 *
 * Order: a ranks after b if its key is larger, or the keys are equal and
 * its id is larger (ties go to the lower id, as the results promise).
 * Callers turn scores into keys: an L2 distance as it is, a similarity
 * negated.
 *
 * Keys are doubles so that exact search's double-precision re-scoring
 * (index/exact.c) shares this heap with the float scores of the scans: a
 * float widens to a double exactly, so float keys keep their order, and a
 * kept key or the threshold converts back to the same float. The item is
 * 16 bytes either way (a float key would be padded to the id's alignment).
 *
 * Rejected: a heap per caller (exact search and the index scan had one
 * each, and exact search a third in double precision for its rescans); a
 * float-key heap beside a double-key one, or a macro template over the key
 * type, when one instance in double serves every caller.
 */
#ifndef VQS_TOPK_H
#define VQS_TOPK_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vqs_topk_item {
    double key; /* smaller is better */
    int64_t id;
} vqs_topk_item;

/* h: the caller's array of k items (k >= 1); n: how many are kept (start
 * at 0). While n == k, h[0] is the worst kept item. */
typedef struct vqs_topk {
    vqs_topk_item *h;
    size_t n, k;
} vqs_topk;

/* a ranks after b (see the order above) */
static inline int vqs_topk_worse(const vqs_topk_item *a, const vqs_topk_item *b)
{
    return a->key > b->key || (a->key == b->key && a->id > b->id);
}

/* The worst kept key once k are kept, else +inf: a candidate with a larger
 * key cannot enter, one with a smaller key does, an equal key enters if
 * its id is lower (vqs_topk_admits). */
static inline double vqs_topk_thr(const vqs_topk *t)
{
    return t->n == t->k ? t->h[0].key : INFINITY;
}

/* Whether vqs_topk_push(t, key, id) would keep the candidate: for work only
 * a kept candidate needs (a filter callback) before the push. */
static inline int vqs_topk_admits(const vqs_topk *t, double key, int64_t id)
{
    vqs_topk_item c = {key, id};
    return t->n < t->k || vqs_topk_worse(&t->h[0], &c);
}

/* Keeps (key, id) if fewer than k are kept or it ranks before the worst
 * kept one (which it then replaces). */
void vqs_topk_push(vqs_topk *t, double key, int64_t id);

/* Sorts the kept items best first (h[0..n)); t is no longer a heap after. */
void vqs_topk_sort(vqs_topk *t);

/* qsort comparator of vqs_topk_item: the order above (a NaN key compares
 * neither below nor above any key: its id decides). */
int vqs_topk_cmp(const void *a, const void *b);

/* Merging top-k lists: sorts the na candidates in all (vqs_topk_cmp) and
 * writes the k best to ids/keys, missing ones as id -1, key +inf. */
void vqs_topk_take(vqs_topk_item *all, size_t na, size_t k, int64_t *ids, double *keys);

#ifdef __cplusplus
}
#endif
#endif
