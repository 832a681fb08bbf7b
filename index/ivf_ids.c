/*
 * ivf_ids.c: the index's id map, from an external id to the (list,
 * position) of its vector (LOC in ivf_internal.h).
 *
 * Design decisions:
 * - Ids: a hash map (open addressing, linear probing, backward-shift
 *   deletion, no tombstones) from the external id to (list, position).
 */
#include "ivf_internal.h"

#include <stdlib.h>

static inline size_t hash_id(int64_t k, size_t cap)
{
    uint64_t x = (uint64_t)k * 0x9E3779B97F4A7C15ull;
    x ^= x >> 29;
    return (size_t)(x & (cap - 1));
}

idslot *vqs_ivf_map_find(const vqs_index *ix, int64_t key)
{
    if (!ix->map_cap)
        return NULL;
    for (size_t i = hash_id(key, ix->map_cap);; i = (i + 1) & (ix->map_cap - 1)) {
        idslot *s = &ix->map[i];
        if (s->loc == LOC_EMPTY)
            return NULL;
        if (s->key == key)
            return s;
    }
}

/* Makes room for `more` entries (load <= 1/2). */
int vqs_ivf_map_reserve(vqs_index *ix, size_t more)
{
    size_t need = ix->map_n + more;
    if (need * 2 <= ix->map_cap)
        return 0;
    size_t cap = ix->map_cap ? ix->map_cap : 1024;
    while (cap < need * 2)
        cap *= 2;
    idslot *m = malloc(sizeof *m * cap);
    if (!m)
        return vqs_seterr(VQS_ENOMEM, "index: id map of %zu slots", cap);
    for (size_t i = 0; i < cap; i++)
        m[i].loc = LOC_EMPTY;
    for (size_t j = 0; j < ix->map_cap; j++) {
        if (ix->map[j].loc == LOC_EMPTY)
            continue;
        size_t i = hash_id(ix->map[j].key, cap);
        while (m[i].loc != LOC_EMPTY)
            i = (i + 1) & (cap - 1);
        m[i] = ix->map[j];
    }
    free(ix->map);
    ix->map = m;
    ix->map_cap = cap;
    return 0;
}

void vqs_ivf_map_put(vqs_index *ix, int64_t key, uint64_t loc) /* room reserved, key absent */
{
    size_t i = hash_id(key, ix->map_cap);
    while (ix->map[i].loc != LOC_EMPTY)
        i = (i + 1) & (ix->map_cap - 1);
    ix->map[i].key = key;
    ix->map[i].loc = loc;
    ix->map_n++;
}

void vqs_ivf_map_del(vqs_index *ix, idslot *s)
{
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
    ix->map_n--;
}
