/*
 * coll_buffer.c: a collection before training (coll_internal.h): the stored
 * vectors of its live points held as they are (normalised for cosine) and
 * searched exactly.
 *
 * Design decisions:
 * - Until a collection is trained there is no codec to encode with, so the
 *   points' vectors are what LMDB stores as their codes and what this buffer
 *   holds; training re-encodes them in place (collection.c). A search is a
 *   plain scan with an insertion into the k best: the buffer is bounded by
 *   train_size (typically thousands of points), so the scan costs little
 *   next to its answer being exact.
 * - Rows are appended in internal-id order and never moved: a deleted or
 *   replaced point's row is marked dead (-1), so removal is a binary search
 *   and the rows stay sorted except where they are dead.
 */
#define _GNU_SOURCE
#include "coll_internal.h"
#include "vqs_topk.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int coll_buf_append(vqs_coll *c, size_t n, const float *y, const uint64_t *iids)
{
    size_t d = c->cfg.d;
    if (c->bn + n > c->bcap) {
        size_t cap = c->bcap ? c->bcap : 1024;
        while (cap < c->bn + n)
            cap *= 2;
        float *b = realloc(c->buf, sizeof(float) * d * cap);
        if (!b)
            return vqs_seterr(VQS_ENOMEM, "collection '%s': %zu buffered vectors", c->name, cap);
        c->buf = b;
        int64_t *bi = realloc(c->biid, sizeof(int64_t) * cap);
        if (!bi)
            return vqs_seterr(VQS_ENOMEM, "collection '%s': %zu buffered vectors", c->name, cap);
        c->biid = bi;
        c->bcap = cap;
    }
    memcpy(c->buf + c->bn * d, y, sizeof(float) * d * n);
    for (size_t i = 0; i < n; i++)
        c->biid[c->bn + i] = (int64_t)iids[i];
    c->bn += n;
    c->blive += n;
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Marks buffered rows dead (biid is sorted: rows are appended in iid order). */
void coll_buf_remove(vqs_coll *c, size_t n, const int64_t *iids)
{
    for (size_t i = 0; i < n; i++) {
        int64_t *h = bsearch(&iids[i], c->biid, c->bn, sizeof(int64_t), cmp_i64);
        /* dead rows hold -1 and break the order only where they are: search
         * linearly if bsearch was misled */
        if (!h)
            for (size_t j = 0; j < c->bn; j++)
                if (c->biid[j] == iids[i]) {
                    h = &c->biid[j];
                    break;
                }
        if (h) {
            *h = -1;
            c->blive--;
        }
    }
}

/* Exact search over the buffer, same conventions as vqs_index_search. */
int coll_buf_search(const vqs_coll *c, const vqs_coll_search_params *p, size_t nq, const float *q,
                    size_t k, int64_t *ids, float *dist)
{
    size_t d = c->cfg.d;
    int ip = c->cfg.metric != VQS_METRIC_L2;
    float *qn = malloc(sizeof(float) * d);
    vqs_topk_item *h = malloc(sizeof *h * (k ? k : 1));
    if (!qn || !h) {
        free(qn);
        free(h);
        return vqs_seterr(VQS_ENOMEM, "coll_search");
    }
    for (size_t qi = 0; qi < nq; qi++) {
        memcpy(qn, q + qi * d, sizeof(float) * d);
        if (c->cfg.metric == VQS_METRIC_COS)
            vqs_normalize_rows(1, d, qn);
        /* keys: L2 distances, negated similarities; ties to the lower id */
        vqs_topk t = {h, 0, k};
        for (size_t r = 0; r < c->bn && k; r++) {
            if ((r & 1023) == 0 && p && p->deadline > 0 && vqs_now() > p->deadline) {
                free(qn);
                free(h);
                return vqs_seterr(-ETIMEDOUT, "the search ran past its deadline and was stopped");
            }
            int64_t id = c->biid[r];
            if (id < 0 || (p && p->filter && !p->filter(p->filter_ctx, id)))
                continue;
            const float *v = c->buf + r * d;
            float s = 0;
            if (ip)
                for (size_t j = 0; j < d; j++)
                    s += qn[j] * v[j];
            else
                for (size_t j = 0; j < d; j++)
                    s += (qn[j] - v[j]) * (qn[j] - v[j]);
            vqs_topk_push(&t, ip ? -(double)s : (double)s, id);
        }
        vqs_topk_sort(&t);
        int64_t *I = ids + qi * k;
        float *D = dist + qi * k;
        for (size_t j = 0; j < k; j++) {
            I[j] = j < t.n ? h[j].id : -1;
            D[j] = j < t.n ? (float)(ip ? -h[j].key : h[j].key) : ip ? -INFINITY : INFINITY;
        }
    }
    free(qn);
    free(h);
    return 0;
}

int coll_buf_get(const vqs_coll *c, int64_t iid, float *vec)
{
    for (size_t r = 0; r < c->bn; r++)
        if (c->biid[r] == iid) {
            memcpy(vec, c->buf + r * c->cfg.d, sizeof(float) * c->cfg.d);
            return 1;
        }
    return 0;
}
