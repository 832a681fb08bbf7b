/*
 * ivf_ids.c: the index's id map, from an external id to the (list,
 * position) of its vector (LOC in ivf_internal.h).
 *
 * Design decisions:
 * - Three forms, the cheapest that holds the ids:
 *   - Identity (flat indexes only): while the ids are 0, 1, ..., n-1 at
 *     positions 0 .. n-1 (vqs_index_add's own ids, a collection's first
 *     import), the position is the id: no map and no list of ids, the code
 *     is all a vector holds (as FAISS's flat indexes, which take no ids).
 *     The first add out of sequence or the first removal ends it.
 *   - Dense: while every id is in 0..dcap-1 with dcap at most twice the ids
 *     held plus 1024, a direct array of locations indexed by the id: 4
 *     bytes an id (IVF with vqs_index_add's ids, a collection's internal
 *     ids, a flat index after removals).
 *   - Hash: open addressing, linear probing, backward-shift deletion, no
 *     tombstones, load 1/2 .. 4/5 (5 to 8 bytes an id), taken for good the
 *     first time an add would make the array sparse (a negative id, or one
 *     far past the others). A slot holds only the location: the key is read
 *     from the list's ids, which the index keeps anyway for its results. Any
 *     table size (multiply-shift home), so growth is by 1.6, not 2.
 * - Locations are 32-bit handles, list << pbits | position, with pbits =
 *   32 - the bits of nlist - 1; all-ones is the empty slot. An add that
 *   would put a position past that (a list of 2^22 vectors in an
 *   IVF1024) widens the map to 64-bit LOC, for good.
 * - Rejected: a sorted array (O(n) inserts); 16-byte (key, location) slots
 *   at load 1/2, the map before this one (32 bytes an id, 4x an 8-byte
 *   code); probing that compares a key fingerprint (no room in 32 bits).
 */
#include "ivf_internal.h"

#include <stdlib.h>
#include <string.h>

/* A location: list << 40 | position. */
#define LOC_EMPTY UINT64_MAX
#define LOC(l, p) ((uint64_t)(l) << 40 | (uint64_t)(p))
#define LOC_LIST(x) ((size_t)((x) >> 40))
#define LOC_POS(x) ((size_t)((x) & ((1ull << 40) - 1)))

/* A test may narrow the handles' position bits (0: as many as fit). */
unsigned vqs_ivf_test_pos_bits = 0;

static size_t narrow_limit(const vqs_index *ix)
{
    return (size_t)((1ull << ix->pbits) - 1); /* positions below: no handle is all-ones */
}

void vqs_ivf_map_init(vqs_index *ix)
{
    unsigned lb = 0;
    while (((size_t)1 << lb) < ix->nlist)
        lb++;
    ix->pbits = 32 - lb;
    if (vqs_ivf_test_pos_bits && vqs_ivf_test_pos_bits < ix->pbits)
        ix->pbits = vqs_ivf_test_pos_bits;
    ix->idform = ix->nlist == 1 ? VQS_IDS_IDENT : VQS_IDS_DENSE;
}

static inline uint64_t slot_get(const vqs_index *ix, size_t i)
{
    if (ix->wide)
        return ((const uint64_t *)ix->ht)[i];
    uint32_t h = ((const uint32_t *)ix->ht)[i];
    return h == UINT32_MAX ? LOC_EMPTY : LOC((uint64_t)h >> ix->pbits, h & ((1ull << ix->pbits) - 1));
}

static inline void slot_set(void *ht, int wide, unsigned pbits, size_t i, uint64_t loc)
{
    if (wide)
        ((uint64_t *)ht)[i] = loc;
    else
        ((uint32_t *)ht)[i] = loc == LOC_EMPTY ? UINT32_MAX
                                                : (uint32_t)((uint64_t)LOC_LIST(loc) << pbits | LOC_POS(loc));
}

static inline int64_t key_at(const vqs_index *ix, uint64_t loc)
{
    return ix->lists[LOC_LIST(loc)].ids[LOC_POS(loc)];
}

static inline size_t home(int64_t k, size_t cap)
{
    uint64_t x = (uint64_t)k; /* splitmix64's finaliser: every bit mixed into the high ones */
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    x ^= x >> 31;
    return (size_t)(((unsigned __int128)x * cap) >> 64);
}

/* The slot holding key, or the empty slot its probe ends at (*found 0). */
static size_t hash_slot(const vqs_index *ix, int64_t key, int *found)
{
    for (size_t i = home(key, ix->hcap);; i = i + 1 == ix->hcap ? 0 : i + 1) {
        uint64_t loc = slot_get(ix, i);
        if (loc == LOC_EMPTY || key_at(ix, loc) == key) {
            *found = loc != LOC_EMPTY;
            return i;
        }
    }
}

int vqs_ivf_map_get(const vqs_index *ix, int64_t key, size_t *list, size_t *pos)
{
    uint64_t loc;
    if (ix->idform == VQS_IDS_IDENT) {
        if (key < 0 || (uint64_t)key >= ix->ntotal)
            return 0;
        loc = LOC(0, key);
    } else if (ix->idform == VQS_IDS_DENSE) {
        if (key < 0 || (uint64_t)key >= ix->hcap || (loc = slot_get(ix, (size_t)key)) == LOC_EMPTY)
            return 0;
    } else {
        int found;
        size_t i = hash_slot(ix, key, &found);
        if (!found)
            return 0;
        loc = slot_get(ix, i);
    }
    *list = LOC_LIST(loc);
    *pos = LOC_POS(loc);
    return 1;
}

static void *table_new(size_t cap, int wide)
{
    size_t es = wide ? sizeof(uint64_t) : sizeof(uint32_t);
    void *t = malloc(es * cap);
    if (t)
        memset(t, 0xFF, es * cap); /* LOC_EMPTY and UINT32_MAX alike */
    return t;
}

static void hash_insert(const vqs_index *ix, void *t, size_t cap, int64_t key, uint64_t loc)
{
    size_t i = home(key, cap);
    for (;;) {
        int full = ix->wide ? ((uint64_t *)t)[i] != LOC_EMPTY : ((uint32_t *)t)[i] != UINT32_MAX;
        if (!full)
            break;
        i = i + 1 == cap ? 0 : i + 1;
    }
    slot_set(t, ix->wide, ix->pbits, i, loc);
}

/* The hash map with room for `need` ids at load 1/2, the entries moved
 * over from either form. */
static int hash_grow(vqs_index *ix, size_t need)
{
    size_t cap = need * 2 > 1024 ? need * 2 : 1024;
    void *t = table_new(cap, ix->wide);
    if (!t)
        return vqs_seterr(VQS_ENOMEM, "index: id map of %zu slots", cap);
    for (size_t j = 0; j < ix->hcap; j++) {
        uint64_t loc = slot_get(ix, j);
        if (loc != LOC_EMPTY)
            hash_insert(ix, t, cap, ix->idform == VQS_IDS_HASH ? key_at(ix, loc) : (int64_t)j, loc);
    }
    free(ix->ht);
    ix->ht = t;
    ix->hcap = cap;
    ix->idform = VQS_IDS_HASH;
    return 0;
}

/* Narrow handles to 64-bit LOC, slot for slot (the homes do not change). */
static int widen(vqs_index *ix)
{
    uint64_t *t = malloc(sizeof *t * (ix->hcap ? ix->hcap : 1));
    if (!t)
        return vqs_seterr(VQS_ENOMEM, "index: id map of %zu slots", ix->hcap);
    for (size_t j = 0; j < ix->hcap; j++)
        t[j] = slot_get(ix, j);
    free(ix->ht);
    ix->ht = t;
    ix->wide = 1;
    return 0;
}

int vqs_ivf_map_leave_identity(vqs_index *ix)
{
    if (ix->idform != VQS_IDS_IDENT)
        return 0;
    ivlist *L = &ix->lists[0];
    size_t n = L->n, cap = n > 1024 ? n : 1024;
    int wide = n > narrow_limit(ix);
    int64_t *ids = malloc(sizeof *ids * (L->cap ? L->cap : 1));
    void *t = table_new(cap, wide);
    if (!ids || !t) {
        free(ids);
        free(t);
        return vqs_seterr(VQS_ENOMEM, "index: id map of %zu ids", n);
    }
    for (size_t j = 0; j < n; j++) {
        ids[j] = (int64_t)j;
        slot_set(t, wide, ix->pbits, j, LOC(0, j));
    }
    L->ids = ids;
    ix->ht = t;
    ix->hcap = cap;
    ix->wide = wide;
    ix->map_n = n;
    ix->idform = VQS_IDS_DENSE;
    return 0;
}

int vqs_ivf_map_reserve(vqs_index *ix, size_t n, const int64_t *keys, size_t maxpos)
{
    int rc;
    if (!ix->wide && maxpos >= narrow_limit(ix) && (rc = widen(ix)))
        return rc;
    size_t need = ix->map_n + n;
    if (ix->idform == VQS_IDS_HASH)
        return need * 5 <= ix->hcap * 4 ? 0 : hash_grow(ix, need);
    int64_t mx = -1;
    int neg = 0;
    for (size_t i = 0; i < n; i++) {
        neg |= keys[i] < 0;
        mx = keys[i] > mx ? keys[i] : mx;
    }
    size_t limit = 2 * need + 1024; /* the array stays at least ~half full */
    if (neg || (uint64_t)mx >= limit)
        return hash_grow(ix, need);
    if ((size_t)mx < ix->hcap)
        return 0;
    size_t cap = ix->hcap + ix->hcap / 2; /* amortised growth, within the limit */
    cap = cap > (size_t)mx + 1 ? cap : (size_t)mx + 1;
    cap = cap < limit ? cap : limit;
    cap = cap > 1024 ? cap : 1024;
    size_t es = ix->wide ? sizeof(uint64_t) : sizeof(uint32_t);
    uint8_t *d = realloc(ix->ht, es * cap);
    if (!d)
        return vqs_seterr(VQS_ENOMEM, "index: id map of %zu ids", cap);
    memset(d + es * ix->hcap, 0xFF, es * (cap - ix->hcap));
    ix->ht = d;
    ix->hcap = cap;
    return 0;
}

void vqs_ivf_map_put(vqs_index *ix, int64_t key, size_t list, size_t pos)
{
    if (ix->idform == VQS_IDS_HASH)
        hash_insert(ix, ix->ht, ix->hcap, key, LOC(list, pos));
    else
        slot_set(ix->ht, ix->wide, ix->pbits, (size_t)key, LOC(list, pos));
    ix->map_n++;
}

void vqs_ivf_map_move(vqs_index *ix, int64_t key, size_t list, size_t pos)
{
    size_t i = (size_t)key;
    if (ix->idform == VQS_IDS_HASH) {
        int found;
        i = hash_slot(ix, key, &found);
    }
    slot_set(ix->ht, ix->wide, ix->pbits, i, LOC(list, pos));
}

void vqs_ivf_map_del(vqs_index *ix, int64_t key)
{
    ix->map_n--;
    if (ix->idform == VQS_IDS_DENSE) {
        slot_set(ix->ht, ix->wide, ix->pbits, (size_t)key, LOC_EMPTY);
        return;
    }
    int found;
    size_t cap = ix->hcap, i = hash_slot(ix, key, &found), j = i;
    for (;;) {
        j = j + 1 == cap ? 0 : j + 1;
        uint64_t loc = slot_get(ix, j);
        if (loc == LOC_EMPTY)
            break;
        size_t h = home(key_at(ix, loc), cap);
        /* move j back to i unless its home h lies cyclically in (i, j] */
        int keep = i <= j ? (h > i && h <= j) : (h > i || h <= j);
        if (!keep) {
            slot_set(ix->ht, ix->wide, ix->pbits, i, loc);
            i = j;
        }
    }
    slot_set(ix->ht, ix->wide, ix->pbits, i, LOC_EMPTY);
}

size_t vqs_ivf_map_bytes(const vqs_index *ix)
{
    return ix->hcap * (ix->wide ? sizeof(uint64_t) : sizeof(uint32_t));
}
