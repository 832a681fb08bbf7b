/*
 * ivf_ids.c: the index's id map, from an external id to the (list,
 * position) of its vector (LOC in ivf_internal.h).
 *
 * Design decisions:
 * - Two forms. Dense: while every id is in 0..dcap-1 with dcap at most
 *   twice the ids held plus 1024, a direct array of locations indexed by
 *   the id: 8 bytes per id (ids 0, 1, 2, ... as vqs_index_add hands them
 *   out, and the collections' internal ids, are dense). Hash: a hash map
 *   (open addressing, linear probing, backward-shift deletion, no
 *   tombstones, load <= 1/2: 32 bytes per id), taken for good the first time
 *   an add would make the array sparse (a negative id, or one far past the
 *   others). Rejected: a sorted array (O(n) inserts), and the hash map
 *   alone (it was 4x the bytes of a 8-byte code for dense ids).
 */
#include "ivf_internal.h"

#include <stdlib.h>

static inline size_t hash_id(int64_t k, size_t cap)
{
    uint64_t x = (uint64_t)k * 0x9E3779B97F4A7C15ull;
    x ^= x >> 29;
    return (size_t)(x & (cap - 1));
}

static idslot *hash_find(const vqs_index *ix, int64_t key)
{
    for (size_t i = hash_id(key, ix->map_cap);; i = (i + 1) & (ix->map_cap - 1)) {
        idslot *s = &ix->map[i];
        if (s->loc == LOC_EMPTY)
            return NULL;
        if (s->key == key)
            return s;
    }
}

uint64_t *vqs_ivf_map_find(const vqs_index *ix, int64_t key)
{
    if (ix->map_cap) {
        idslot *s = hash_find(ix, key);
        return s ? &s->loc : NULL;
    }
    if (key < 0 || (uint64_t)key >= ix->dcap || ix->dloc[key] == LOC_EMPTY)
        return NULL;
    return &ix->dloc[key];
}

static void hash_insert(idslot *m, size_t cap, int64_t key, uint64_t loc)
{
    size_t i = hash_id(key, cap);
    while (m[i].loc != LOC_EMPTY)
        i = (i + 1) & (cap - 1);
    m[i].key = key;
    m[i].loc = loc;
}

/* The hash map with room for `need` ids, the entries moved over from
 * either form. */
static int hash_grow(vqs_index *ix, size_t need)
{
    size_t cap = ix->map_cap ? ix->map_cap : 1024;
    while (cap < need * 2)
        cap *= 2;
    if (cap == ix->map_cap)
        return 0;
    idslot *m = malloc(sizeof *m * cap);
    if (!m)
        return vqs_seterr(VQS_ENOMEM, "index: id map of %zu slots", cap);
    for (size_t i = 0; i < cap; i++)
        m[i].loc = LOC_EMPTY;
    for (size_t j = 0; j < ix->map_cap; j++)
        if (ix->map[j].loc != LOC_EMPTY)
            hash_insert(m, cap, ix->map[j].key, ix->map[j].loc);
    for (size_t j = 0; j < ix->dcap; j++)
        if (ix->dloc[j] != LOC_EMPTY)
            hash_insert(m, cap, (int64_t)j, ix->dloc[j]);
    free(ix->map);
    free(ix->dloc);
    ix->dloc = NULL;
    ix->dcap = 0;
    ix->map = m;
    ix->map_cap = cap;
    return 0;
}

int vqs_ivf_map_reserve(vqs_index *ix, size_t n, const int64_t *keys)
{
    size_t need = ix->map_n + n;
    if (ix->map_cap)
        return need * 2 <= ix->map_cap ? 0 : hash_grow(ix, need);
    int64_t mx = -1;
    int neg = 0;
    for (size_t i = 0; i < n; i++) {
        neg |= keys[i] < 0;
        mx = keys[i] > mx ? keys[i] : mx;
    }
    size_t limit = 2 * need + 1024; /* the array stays at least ~half full */
    if (neg || (uint64_t)mx >= limit)
        return hash_grow(ix, need);
    if ((size_t)mx < ix->dcap)
        return 0;
    size_t cap = ix->dcap + ix->dcap / 2; /* amortised growth, within the limit */
    cap = cap > (size_t)mx + 1 ? cap : (size_t)mx + 1;
    cap = cap < limit ? cap : limit;
    cap = cap > 1024 ? cap : 1024;
    uint64_t *d = realloc(ix->dloc, sizeof *d * cap);
    if (!d)
        return vqs_seterr(VQS_ENOMEM, "index: id map of %zu ids", cap);
    for (size_t i = ix->dcap; i < cap; i++)
        d[i] = LOC_EMPTY;
    ix->dloc = d;
    ix->dcap = cap;
    return 0;
}

void vqs_ivf_map_put(vqs_index *ix, int64_t key, uint64_t loc) /* room reserved, key absent */
{
    if (ix->map_cap)
        hash_insert(ix->map, ix->map_cap, key, loc);
    else
        ix->dloc[key] = loc;
    ix->map_n++;
}

void vqs_ivf_map_del(vqs_index *ix, int64_t key)
{
    ix->map_n--;
    if (!ix->map_cap) {
        ix->dloc[key] = LOC_EMPTY;
        return;
    }
    idslot *s = hash_find(ix, key);
    size_t cap = ix->map_cap, i = (size_t)(s - ix->map), j = i;
    for (;;) {
        j = (j + 1) & (cap - 1);
        if (ix->map[j].loc == LOC_EMPTY)
            break;
        size_t h = hash_id(ix->map[j].key, cap);
        /* move j back to i unless its home h lies cyclically in (i, j] */
        int keep = i <= j ? (h > i && h <= j) : (h > i || h <= j);
        if (!keep) {
            ix->map[i] = ix->map[j];
            i = j;
        }
    }
    ix->map[i].loc = LOC_EMPTY;
}

size_t vqs_ivf_map_bytes(const vqs_index *ix)
{
    return ix->map_cap ? ix->map_cap * sizeof(idslot) : ix->dcap * sizeof(uint64_t);
}
