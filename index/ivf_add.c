/*
 * ivf_add.c: adding vectors to the index's lists and removing them
 * (vqs_index_encode, vqs_index_decode, vqs_index_add_encoded,
 * vqs_index_add, vqs_index_remove).
 *
 * Design decisions:
 * - Removal swaps the last vector of the list into the hole: O(1), order of a
 *   list is not meaningful. Adds are all-or-nothing: every check and every
 *   allocation happens before the first list is touched.
 * - The cosine factor 1/|x^| of each vector is derived from its code when it
 *   is added (ivf.c, "Cosine"), before anything changes.
 */
#define _GNU_SOURCE
#include "graph_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* x as the index stores it: a copy, normalised for cosine; NULL on ENOMEM. */
static float *prepared_copy(const vqs_index *ix, size_t n, const float *x)
{
    float *c = malloc(sizeof(float) * (n ? n : 1) * ix->d);
    if (!c)
        return NULL;
    memcpy(c, x, sizeof(float) * n * ix->d);
    if (ix->metric == VQS_METRIC_COS)
        vqs_normalize_rows(n, ix->d, c);
    return c;
}

/* Grows list l to hold `need` rows (nothing else changes): by half its
 * capacity at least (amortised growth for one-by-one adds), to exactly
 * `need` when a batch needs more (a bulk add leaves no slack; doubling
 * left up to half of every list unused, and the fast-scan layout's zeroed
 * padding made that resident). */
static int list_reserve(vqs_index *ix, ivlist *L, size_t need)
{
    if (need <= L->cap)
        return 0;
    size_t cap = L->cap + L->cap / 2;
    cap = cap > need ? cap : need;
    cap = cap > 32 ? cap : 32;
    if (ix->idform != VQS_IDS_IDENT) {
        int64_t *ids = realloc(L->ids, sizeof(int64_t) * cap);
        if (!ids)
            return vqs_seterr(VQS_ENOMEM, "index: list of %zu vectors", cap);
        L->ids = ids;
    }
    uint8_t *codes = realloc(L->codes, vqs_ivf_list_code_bytes(ix, cap));
    if (!codes)
        return vqs_seterr(VQS_ENOMEM, "index: list of %zu vectors", cap);
    if (ix->fastscan) /* padding rows of the last block must read as code 0 */
        memset(codes + vqs_ivf_list_code_bytes(ix, L->cap), 0,
               vqs_ivf_list_code_bytes(ix, cap) - vqs_ivf_list_code_bytes(ix, L->cap));
    L->codes = codes;
    if (ix->rcs) {
        uint8_t *r = realloc(L->rcodes, ix->rcs * cap);
        if (!r)
            return vqs_seterr(VQS_ENOMEM, "index: list of %zu vectors", cap);
        L->rcodes = r;
    }
    if (ix->cosnorm) {
        float *f = realloc(L->nf, sizeof(float) * cap);
        if (!f)
            return vqs_seterr(VQS_ENOMEM, "index: list of %zu vectors", cap);
        L->nf = f;
    }
    L->cap = cap;
    return 0;
}

static int cmp64(const void *p, const void *q)
{
    int64_t a = *(const int64_t *)p, b = *(const int64_t *)q;
    return (a > b) - (a < b);
}

int vqs_index_encode(const vqs_index *ix, size_t n, const float *x, uint8_t *codes, uint32_t *lists)
{
    if (!ix || (n && (!x || !codes)))
        return vqs_seterr(VQS_EINVAL, "index_encode: NULL argument");
    if (!ix->trained)
        return vqs_seterr(VQS_EINVAL, "index_encode: index '%s' is not trained", ix->spec);
    if (n == 0)
        return 0;
    size_t d = ix->d, es = ix->cs + ix->rcs;
    int rc = vqs_ivf_check_rows(ix, n, x, "index_encode");
    if (rc)
        return rc;
    float *t = prepared_copy(ix, n, x);
    int32_t *a = malloc(sizeof(int32_t) * n);
    uint8_t *c = malloc(ix->cs * n), *r = ix->rcs ? malloc(ix->rcs * n) : NULL;
    if (!t || !a || !c || (ix->rcs && !r)) {
        rc = vqs_seterr(VQS_ENOMEM, "index_encode: %zu rows", n);
        goto done;
    }
    if ((rc = vqs_ivf_assign_lists(ix, n, t, a)))
        goto done;
    if (ix->refine == VQS_IVF_REFINE_FLAT)
        memcpy(r, t, sizeof(float) * n * d);
    else if (ix->refine == VQS_IVF_REFINE_CODEC && (rc = vqs_codec_encode(ix->rcodec, n, t, r)))
        goto done;
    if (ix->by_residual) {
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < d; j++)
                t[i * d + j] -= ix->centroids[(size_t)a[i] * d + j];
    }
    if ((rc = vqs_codec_encode(ix->codec, n, t, c)))
        goto done;
    for (size_t i = 0; i < n; i++) {
        memcpy(codes + i * es, c + i * ix->cs, ix->cs);
        if (ix->rcs)
            memcpy(codes + i * es + ix->cs, r + i * ix->rcs, ix->rcs);
        if (lists)
            lists[i] = (uint32_t)a[i];
    }
done:
    free(t);
    free(a);
    free(c);
    free(r);
    return rc;
}

int vqs_index_decode(const vqs_index *ix, size_t n, const uint8_t *codes, const uint32_t *lists,
                     float *x)
{
    if (!ix || (n && (!codes || !x)))
        return vqs_seterr(VQS_EINVAL, "index_decode: NULL argument");
    if (!ix->trained)
        return vqs_seterr(VQS_EINVAL, "index_decode: index '%s' is not trained", ix->spec);
    if (n == 0)
        return 0;
    if (ix->by_residual && !lists)
        return vqs_seterr(VQS_EINVAL, "index_decode: '%s' encodes residuals: the lists are needed", ix->spec);
    size_t d = ix->d, es = ix->cs + ix->rcs;
    for (size_t i = 0; ix->by_residual && i < n; i++)
        if (lists[i] >= ix->nlist)
            return vqs_seterr(VQS_ERANGE, "index_decode: row %zu: list %u, the index has %zu", i, lists[i],
                              ix->nlist);
    uint8_t *c = malloc(ix->cs * n);
    if (!c)
        return vqs_seterr(VQS_ENOMEM, "index_decode: %zu rows", n);
    for (size_t i = 0; i < n; i++)
        memcpy(c + i * ix->cs, codes + i * es, ix->cs);
    int rc = vqs_codec_decode(ix->codec, n, c, x);
    free(c);
    for (size_t i = 0; !rc && ix->by_residual && i < n; i++)
        for (size_t j = 0; j < d; j++)
            x[i * d + j] += ix->centroids[(size_t)lists[i] * d + j];
    return rc;
}

int vqs_index_add_encoded(vqs_index *ix, size_t n, const uint8_t *codes, const uint32_t *lists,
                          const int64_t *ids)
{
    if (!ix || (n && !codes))
        return vqs_seterr(VQS_EINVAL, "index_add: NULL argument");
    if (!ix->trained)
        return vqs_seterr(VQS_EINVAL, "index_add: index '%s' is not trained", ix->spec);
    if (ix->graph && vqs_graph_on_disk(ix->graph))
        return vqs_seterr(VQS_EINVAL, "index_add: '%s' is on disk (%s), read-only", ix->spec,
                          vqs_graph_disk_path(vqs_graph_disk_of(ix->graph)));
    if (n == 0)
        return 0;
    if (ix->ivf && !lists)
        return vqs_seterr(VQS_EINVAL, "index_add: IVF index '%s' needs the list of every row", ix->spec);
    size_t es = ix->cs + ix->rcs;
    int rc = 0;
    for (size_t i = 0; lists && i < n; i++)
        if (lists[i] >= ix->nlist)
            return vqs_seterr(VQS_ERANGE, "index_add: row %zu: list %u, the index has %zu", i,
                              lists[i], ix->nlist);
    /* ids: no duplicates, in the batch or in the index */
    int64_t *myids = malloc(sizeof(int64_t) * n);
    if (!myids)
        return vqs_seterr(VQS_ENOMEM, "index_add: %zu ids", n);
    for (size_t i = 0; i < n; i++)
        myids[i] = ids ? ids[i] : ix->next_id + (int64_t)i;
    uint8_t *tmp = NULL, *grouped = NULL;
    size_t *cnt = NULL, *start = NULL, *fill = NULL;
    float *fac = NULL;
    for (size_t i = 0; i < n; i++) {
        if (myids[i] == -1) {
            rc = vqs_seterr(VQS_EINVAL, "index_add: row %zu: id -1 is reserved (missing result)", i);
            goto done;
        }
        size_t l, pos;
        if (vqs_ivf_map_get(ix, myids[i], &l, &pos)) {
            rc = vqs_seterr(VQS_EINVAL, "index_add: row %zu: id %lld is already in the index", i,
                            (long long)myids[i]);
            goto done;
        }
    }
    {   /* duplicates within the batch: sort a copy */
        int64_t *s = malloc(sizeof(int64_t) * n);
        if (!s) {
            rc = vqs_seterr(VQS_ENOMEM, "index_add");
            goto done;
        }
        memcpy(s, myids, sizeof(int64_t) * n);
        qsort(s, n, sizeof *s, cmp64);
        for (size_t i = 1; i < n; i++)
            if (s[i] == s[i - 1]) {
                rc = vqs_seterr(VQS_EINVAL, "index_add: id %lld appears twice in the batch", (long long)s[i]);
                break;
            }
        free(s);
        if (rc)
            goto done;
    }
    cnt = calloc(ix->nlist, sizeof *cnt);
    if (!cnt) {
        rc = vqs_seterr(VQS_ENOMEM, "index_add: %zu rows", n);
        goto done;
    }
#define LIST_OF(i) (lists ? lists[i] : 0u)
    for (size_t i = 0; i < n; i++)
        cnt[LIST_OF(i)]++;
    /* room in the id map once the ids are known good (a refused batch leaves
     * the map as it was, in what it maps: its form may have changed). The
     * identity holds while the ids go on from the last. */
    if (ix->idform == VQS_IDS_IDENT)
        for (size_t i = 0; i < n; i++)
            if (myids[i] != (int64_t)(ix->ntotal + i)) {
                if ((rc = vqs_ivf_map_leave_identity(ix)))
                    goto done;
                break;
            }
    if (ix->idform != VQS_IDS_IDENT) {
        size_t maxpos = 0;
        for (size_t l = 0; l < ix->nlist; l++)
            if (cnt[l] && ix->lists[l].n + cnt[l] - 1 > maxpos)
                maxpos = ix->lists[l].n + cnt[l] - 1;
        if ((rc = vqs_ivf_map_reserve(ix, n, myids, maxpos)))
            goto done;
    }
    if (ix->cosnorm) { /* 1/|x^| of every row, before anything changes */
        if (!(fac = malloc(sizeof(float) * n))) {
            rc = vqs_seterr(VQS_ENOMEM, "index_add: %zu rows", n);
            goto done;
        }
        if ((rc = vqs_codec_norms_compute(ix->norms, n, codes, es, ix->by_residual ? lists : NULL, fac)))
            goto done;
        for (size_t i = 0; i < n; i++) {
            float f = 1.0f / fac[i];
            /* a zero reconstruction scores 0 whatever the factor */
            fac[i] = fac[i] > 0 && isfinite(f) ? f : 1.0f;
        }
    }
    tmp = malloc(64 * ix->cs);
    if (ix->fastscan) {
        grouped = malloc(ix->cs * n);
        start = malloc(sizeof(size_t) * ix->nlist);
        fill = calloc(ix->nlist, sizeof(size_t));
    }
    if (!tmp || (ix->fastscan && (!grouped || !start || !fill))) {
        rc = vqs_seterr(VQS_ENOMEM, "index_add: %zu rows", n);
        goto done;
    }
    /* reserve every list first: nothing is changed before all succeed */
    for (size_t l = 0; l < ix->nlist; l++)
        if (cnt[l] && (rc = list_reserve(ix, &ix->lists[l], ix->lists[l].n + cnt[l])))
            goto done;
    if (ix->graph && (rc = vqs_graph_reserve(ix->graph, ix->lists[0].cap)))
        goto done;
    size_t first = ix->lists[0].n; /* the graph's new nodes */
    int64_t next0 = ix->next_id;
    if (ix->fastscan) { /* rows grouped by list: one re-pack per list and block */
        size_t o = 0;
        for (size_t l = 0; l < ix->nlist; l++) {
            start[l] = o;
            o += cnt[l];
        }
        for (size_t i = 0; i < n; i++) {
            uint32_t l = LIST_OF(i);
            memcpy(grouped + (start[l] + fill[l]++) * ix->cs, codes + i * es, ix->cs);
        }
        for (size_t l = 0; l < ix->nlist; l++)
            if (cnt[l])
                vqs_ivf_fs_write(ix, &ix->lists[l], ix->lists[l].n, cnt[l], grouped + start[l] * ix->cs,
                                 tmp);
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t l = LIST_OF(i);
        ivlist *L = &ix->lists[l];
        size_t pos = L->n;
        if (L->ids)
            L->ids[pos] = myids[i];
        if (!ix->fastscan)
            memcpy(L->codes + pos * ix->cs, codes + i * es, ix->cs);
        if (ix->rcs)
            memcpy(L->rcodes + pos * ix->rcs, codes + i * es + ix->cs, ix->rcs);
        if (fac) {
            L->nf[pos] = fac[i];
            if (pos == 0 || fac[i] < L->nf_lo)
                L->nf_lo = fac[i];
            if (pos == 0 || fac[i] > L->nf_hi)
                L->nf_hi = fac[i];
        }
        L->n++;
        if (ix->idform != VQS_IDS_IDENT)
            vqs_ivf_map_put(ix, myids[i], l, pos);
        if (myids[i] >= ix->next_id)
            ix->next_id = myids[i] + 1;
    }
#undef LIST_OF
    ix->ntotal += n;
    if (ix->graph && (rc = vqs_graph_insert(ix, first, n))) {
        /* all or nothing: the new rows and every edge to them go (edges
         * that inserting them pruned away stay pruned: a valid graph) */
        for (size_t i = 0; i < n && ix->idform != VQS_IDS_IDENT; i++)
            vqs_ivf_map_del(ix, myids[i]);
        vqs_graph_truncate(ix->graph, first);
        ix->lists[0].n = first;
        ix->ntotal -= n;
        ix->next_id = next0;
    }
done:
    free(myids);
    free(cnt);
    free(tmp);
    free(grouped);
    free(start);
    free(fill);
    free(fac);
    return rc;
}

int vqs_index_add(vqs_index *ix, size_t n, const float *x, const int64_t *ids)
{
    if (!ix || (n && !x))
        return vqs_seterr(VQS_EINVAL, "index_add: NULL argument");
    if (!ix->trained)
        return vqs_seterr(VQS_EINVAL, "index_add: index '%s' is not trained", ix->spec);
    if (n == 0)
        return 0;
    size_t es = ix->cs + ix->rcs;
    uint8_t *codes = malloc(es * n);
    uint32_t *lists = malloc(sizeof(uint32_t) * n);
    if (!codes || !lists) {
        free(codes);
        free(lists);
        return vqs_seterr(VQS_ENOMEM, "index_add: %zu rows", n);
    }
    int rc = vqs_index_encode(ix, n, x, codes, lists);
    if (!rc)
        rc = vqs_index_add_encoded(ix, n, codes, lists, ids);
    free(codes);
    free(lists);
    return rc;
}

/* ---- remove ------------------------------------------------------------------ */

int vqs_index_remove(vqs_index *ix, size_t n, const int64_t *ids, size_t *removed)
{
    if (!ix || (n && !ids))
        return vqs_seterr(VQS_EINVAL, "index_remove: NULL argument");
    if (ix->graph && vqs_graph_on_disk(ix->graph))
        return vqs_seterr(VQS_EINVAL, "index_remove: '%s' is on disk (%s), read-only", ix->spec,
                          vqs_graph_disk_path(vqs_graph_disk_of(ix->graph)));
    size_t cnt = 0;
    uint8_t tmp[8192], *big = NULL, *code = tmp;
    size_t one = ix->fs_bs * ix->cs; /* code + one: a single code after vqs_ivf_fs_write's buffer */
    if (ix->fastscan && one + ix->cs > sizeof tmp) {
        if (!(big = malloc(one + ix->cs)))
            return vqs_seterr(VQS_ENOMEM, "index_remove");
        code = big;
    }
    for (size_t i = 0; i < n && ix->idform == VQS_IDS_IDENT; i++) {
        size_t l, pos;
        if (vqs_ivf_map_get(ix, ids[i], &l, &pos)) { /* a removal ends the identity */
            int rc = vqs_ivf_map_leave_identity(ix);
            if (rc) {
                free(big);
                return rc;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        size_t l, pos;
        if (!vqs_ivf_map_get(ix, ids[i], &l, &pos))
            continue;
        if (ix->graph) { /* a tombstone: the node keeps routing */
            vqs_ivf_map_del(ix, ids[i]);
            vqs_graph_kill(ix->graph, (uint32_t)pos);
            ix->ntotal--;
            cnt++;
            continue;
        }
        ivlist *L = &ix->lists[l];
        size_t last = L->n - 1;
        vqs_ivf_map_del(ix, ids[i]);
        if (pos != last) {
            int64_t moved = L->ids[last];
            L->ids[pos] = moved;
            if (ix->fastscan) {
                vqs_ivf_fs_get(ix, L->codes, last, code + one);
                vqs_ivf_fs_write(ix, L, pos, 1, code + one, code);
            } else {
                memcpy(L->codes + pos * ix->cs, L->codes + last * ix->cs, ix->cs);
            }
            if (ix->rcs)
                memcpy(L->rcodes + pos * ix->rcs, L->rcodes + last * ix->rcs, ix->rcs);
            if (L->nf)
                L->nf[pos] = L->nf[last];
            vqs_ivf_map_move(ix, moved, l, pos);
        }
        if (ix->fastscan) { /* zero the freed row so padding reads as code 0 */
            memset(code + one, 0, ix->cs);
            L->n = last + 1;
            vqs_ivf_fs_write(ix, L, last, 1, code + one, code);
        }
        L->n = last;
        ix->ntotal--;
        cnt++;
    }
    free(big);
    if (removed)
        *removed = cnt;
    /* past the threshold, tombstones are consolidated; if that fails they
     * stay (searches skip them) and the next removal tries again */
    if (ix->graph && cnt && vqs_graph_wants_consolidation(ix->graph) && vqs_graph_consolidate(ix))
        vqs_clearerr();
    return 0;
}
