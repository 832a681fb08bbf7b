/*
 * plan.c: the filtered-search planner, as Qdrant plans: when the filter's
 * indexed conditions match few points, score exactly over those points;
 * otherwise filter during the scan (h_search.c).
 *
 * Design decisions:
 * - Which conditions: those of the filter's top-level "must" (a
 *   conjunction: any one of them bounds the result), and the condition of a
 *   one-element "should" (which must then hold). Of these, a
 *   condition counts if its key has a payload index that can give a
 *   superset of its matches (storage returns supersets; the full filter is
 *   applied to every candidate, so only "never fewer" matters):
 *     match.value / match.any  keyword (strings), integer (integers), bool,
 *                              uuid (strings that are UUIDs)
 *     range                    integer, float
 *   match.text is never planned: vqs matches it as a substring (as Qdrant
 *   does without a full-text index), which words cannot bound; match.except,
 *   values_count, is_empty, is_null, has_id and nested filters neither.
 * - How few: vqs_coll_plan_threshold(collection, nprobe), which is
 *   vqs_coll_ids_threshold(points) (index/collection/vqs_collection.h:
 *   max(2000, points / 50), at most 100000), lowered for IVF collections
 *   re-scored from disk to where the scan's probed lists would hold few
 *   matching points (its comment says why). Each usable condition's lookup is
 *   capped at the smallest count found so far, so planning costs at most a
 *   threshold's worth of index entries per condition; the condition with the
 *   fewest candidates wins; at most MAX_LOOKUPS lookups a plan. Rejected:
 *   intersecting the candidate lists of several conditions (the full filter
 *   does that per candidate at the cost of a payload-cache lookup, cheaper
 *   than merging lists), and Qdrant's
 *   cardinality estimation from value histograms (a capped count is exact
 *   where it matters and costs no statistics to keep).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

/* key with Qdrant's "[]" array steps removed (filter.c treats "a[]" as "a") */
static int norm_key(const char *k, char *out, size_t cap)
{
    size_t n = 0;
    for (const char *p = k; *p; p++) {
        if (p[0] == '[' && p[1] == ']' && (p[2] == '.' || p[2] == 0)) {
            p++;
            continue;
        }
        if (n + 1 >= cap)
            return -1;
        out[n++] = *p;
    }
    out[n] = 0;
    return 0;
}

static int pvalue_of(const json_t *v, vqs_db_pvalue *pv)
{
    memset(pv, 0, sizeof *pv);
    if (json_is_string(v)) {
        pv->kind = VQS_PV_STR;
        pv->s = json_string_value(v);
        pv->len = json_string_length(v);
    } else if (json_is_integer(v)) {
        pv->kind = VQS_PV_INT;
        pv->i = (int64_t)json_integer_value(v);
    } else if (json_is_boolean(v)) {
        pv->kind = VQS_PV_BOOL;
        pv->i = json_is_true(v);
    } else {
        return -1;
    }
    return 0;
}

/* whether index type t gives a superset of the matches of values of kind k */
static int answers(int t, int k)
{
    switch (t) {
    case VQS_PT_KEYWORD:
    case VQS_PT_UUID:
        return k == VQS_PV_STR;
    case VQS_PT_INTEGER:
        return k == VQS_PV_INT;
    case VQS_PT_BOOL:
        return k == VQS_PV_BOOL;
    }
    return 0;
}

static int is_uuid_text(const char *s, size_t n)
{
    size_t hex = 0;
    for (size_t i = 0; i < n; i++) {
        if (n == 36 && (i == 8 || i == 13 || i == 18 || i == 23)) {
            if (s[i] != '-')
                return 0;
        } else if (!strchr("0123456789abcdefABCDEF", s[i]) || !s[i]) {
            return 0;
        } else {
            hex++;
        }
    }
    return hex == 32 && (n == 32 || n == 36);
}

/* index lookups one plan may run (each walks at most the threshold's
 * number of entries): a filter of many indexed conditions costs no more */
#define MAX_LOOKUPS 16

typedef struct best {
    uint64_t *iids;
    size_t n, cap; /* cap: lookups stop past it */
    int found, lookups;
} best;

/* one condition: looked up if an index can bound it; 0, or < 0 with r set */
static int try_cond(entry *e, const json_t *c, const vqs_db_pindex_info *ix, size_t nix, best *B, resp *r)
{
    if (!json_is_object(c) || json_object_get(c, "must") || json_object_get(c, "should") ||
        json_object_get(c, "must_not") || json_object_get(c, "has_id") || json_object_get(c, "is_empty") ||
        json_object_get(c, "is_null"))
        return 0;
    json_t *key = json_object_get(c, "key");
    char k[VQS_PINDEX_FIELD_MAX + 1];
    if (!json_is_string(key) || norm_key(json_string_value(key), k, sizeof k))
        return 0;
    const vqs_db_pindex_info *f = NULL;
    for (size_t i = 0; i < nix; i++)
        if (!strcmp(ix[i].field, k))
            f = &ix[i];
    if (!f)
        return 0;
    vqs_db_pquery q = {0};
    vqs_db_pvalue one, *many = NULL;
    json_t *m = json_object_get(c, "match"), *v;
    if (m) {
        q.op = VQS_PQ_MATCH;
        if ((v = json_object_get(m, "value"))) {
            if (pvalue_of(v, &one) || !answers(f->type, one.kind) ||
                (f->type == VQS_PT_UUID && !is_uuid_text(one.s, one.len)))
                return 0;
            q.n = 1;
            q.v = &one;
        } else if ((v = json_object_get(m, "any")) && json_is_array(v)) {
            q.n = json_array_size(v);
            if (!(many = calloc(q.n ? q.n : 1, sizeof *many)))
                return fail(r, 500, "out of memory");
            for (size_t i = 0; i < q.n; i++)
                if (pvalue_of(json_array_get(v, i), &many[i]) || !answers(f->type, many[i].kind) ||
                    (f->type == VQS_PT_UUID && !is_uuid_text(many[i].s, many[i].len))) {
                    free(many);
                    return 0;
                }
            q.v = many;
        } else {
            return 0; /* text, except */
        }
    } else if ((m = json_object_get(c, "range")) && json_is_object(m)) {
        if (f->type != VQS_PT_INTEGER && f->type != VQS_PT_FLOAT)
            return 0;
        q.op = VQS_PQ_RANGE;
        q.lo = -INFINITY;
        q.hi = INFINITY;
        const char *bk;
        json_object_foreach(m, bk, v)
        {
            if (!json_is_number(v))
                continue;
            if (!strcmp(bk, "gt") || !strcmp(bk, "gte"))
                q.lo = json_number_value(v);
            else if (!strcmp(bk, "lt") || !strcmp(bk, "lte"))
                q.hi = json_number_value(v);
        }
    } else {
        return 0;
    }
    if (B->lookups++ >= MAX_LOOKUPS) {
        free(many);
        return 0;
    }
    uint64_t *ids = NULL;
    size_t n = 0;
    int over = 0;
    int rc = vqs_coll_pindex_lookup(e->c, k, &q, B->cap, &ids, &n, &over);
    free(many);
    if (rc == VQS_EINVAL || rc == VQS_ENOTFOUND) { /* cannot answer (or dropped meanwhile): not planned */
        vqs_clearerr();
        return 0;
    }
    if (rc)
        return fail(r, status_of(rc), "collection '%s': payload index '%s': %s", e->name, k, vqs_errdetail());
    if (over)
        return 0;
    free(B->iids);
    B->iids = ids;
    B->n = n;
    B->cap = n; /* the next condition must do better */
    B->found = 1;
    return 0;
}

int api_plan_filter(entry *e, vqs_coll *vc, const json_t *filter, size_t nprobe, uint64_t **iids, size_t *n, resp *r)
{
    *iids = NULL;
    *n = 0;
    if (!json_is_object(filter))
        return 0;
    /* a trained collection without stored vectors has nothing exact to score */
    if (!vqs_coll_keeps_vectors(vc))
        return 0;
    vqs_db_pindex_info *ix = NULL;
    size_t nix = 0;
    int rc = vqs_coll_pindex_list(e->c, &ix, &nix);
    if (rc) {
        fail(r, status_of(rc), "collection '%s': payload indexes: %s", e->name, vqs_errdetail());
        vqs_clearerr();
        return -1;
    }
    if (nix == 0)
        return 0;
    best B = {NULL, 0, vqs_coll_plan_threshold(vc, nprobe), 0, 0};
    json_t *must = json_object_get(filter, "must"), *should = json_object_get(filter, "should");
    rc = 0;
    if (json_is_object(must))
        rc = try_cond(e, must, ix, nix, &B, r);
    for (size_t i = 0; !rc && json_is_array(must) && i < json_array_size(must); i++)
        rc = try_cond(e, json_array_get(must, i), ix, nix, &B, r);
    /* "should" with one condition: that condition must hold */
    if (!rc && json_is_object(should))
        rc = try_cond(e, should, ix, nix, &B, r);
    else if (!rc && json_is_array(should) && json_array_size(should) == 1)
        rc = try_cond(e, json_array_get(should, 0), ix, nix, &B, r);
    free(ix);
    if (rc || !B.found) {
        free(B.iids);
        return rc ? -1 : 0;
    }
    *iids = B.iids;
    *n = B.n;
    return 1;
}
