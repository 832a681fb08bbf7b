/*
 * topk.c: the bounded max-heap of vqs_topk.h.
 *
 * Design decisions:
 * - The caller owns the array and the struct (no allocation, no handle):
 *   searches keep one heap per query in per-thread scratch or in one large
 *   block of [shard][query][k] items, and reuse it query after query.
 * - push is a function, the admission test (vqs_topk_thr, vqs_topk_admits)
 *   inline: the scans filter their candidates against the threshold in
 *   their own loops (a SIMD select; a strict < while ids increase), so few
 *   candidates reach push. Measured (callgrind, siftsmall, 1,000 queries,
 *   one thread): exact search at k = 100 runs 0.5% more instructions than
 *   with its own inlined heap, the index's searches fewer than before
 *   (smaller items, no (list, position) per candidate).
 * - A full heap replaces its root in one pass down: the worse child moves
 *   up until the new item fits (exact search's former sift). Rejected: the
 *   index's former sift, which compared the new item with both children
 *   (7% more instructions in exact search's scan loop at k = 100).
 * - The final order is one sort of the kept items (insertion up to 64,
 *   qsort beyond); their ids are distinct in every caller, so the order is
 *   total and the result does not depend on the order of the pushes.
 */
#include "vqs_topk.h"

#include <math.h>
#include <stdlib.h>

void vqs_topk_push(vqs_topk *t, double key, int64_t id)
{
    vqs_topk_item c = {key, id};
    vqs_topk_item *h = t->h;
    if (t->n == t->k) {
        if (t->k == 0 || !vqs_topk_worse(&h[0], &c))
            return;
        size_t i = 0, n = t->n;
        for (;;) { /* sift c down from the root: the worse child moves up */
            size_t l = 2 * i + 1;
            if (l >= n)
                break;
            size_t r = l + 1, w = r < n && vqs_topk_worse(&h[r], &h[l]) ? r : l;
            if (!vqs_topk_worse(&h[w], &c))
                break;
            h[i] = h[w];
            i = w;
        }
        h[i] = c;
        return;
    }
    size_t i = t->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!vqs_topk_worse(&c, &h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = c;
}

int vqs_topk_cmp(const void *a, const void *b)
{
    const vqs_topk_item *x = a, *y = b;
    if (x->key < y->key)
        return -1;
    if (x->key > y->key)
        return 1;
    return (x->id > y->id) - (x->id < y->id);
}

void vqs_topk_sort(vqs_topk *t)
{
    /* a search sorts every query's k (or k') results: an insertion sort for
     * the usual few dozen (qsort's merge sort with a call per comparison
     * was ~5% of a fast-scan IVF search), qsort beyond */
    if (t->n > 64) {
        qsort(t->h, t->n, sizeof *t->h, vqs_topk_cmp);
        return;
    }
    for (size_t i = 1; i < t->n; i++) {
        vqs_topk_item x = t->h[i];
        size_t j = i;
        for (; j > 0 && vqs_topk_cmp(&t->h[j - 1], &x) > 0; j--)
            t->h[j] = t->h[j - 1];
        t->h[j] = x;
    }
}

void vqs_topk_take(vqs_topk_item *all, size_t na, size_t k, int64_t *ids, double *keys)
{
    qsort(all, na, sizeof *all, vqs_topk_cmp);
    for (size_t j = 0; j < k; j++) {
        ids[j] = j < na ? all[j].id : -1;
        keys[j] = j < na ? all[j].key : INFINITY;
    }
}
