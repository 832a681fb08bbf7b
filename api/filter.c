/*
 * filter.c: Qdrant payload filters (api_internal.h), compiled once per
 * request and evaluated for each candidate during the scan.
 *
 * Design decisions: the filter is compiled into a tree (conditions keep
 * their key split into path components and their values as json_t, whose
 * reads are thread-safe), so evaluation allocates nothing and can run from
 * every search thread at once. Matching follows Qdrant: a keyword matches a
 * string equal to it, an integer an integer, a bool a bool (no conversions);
 * a range compares any number; an array field matches if any element does.
 * Rejected: interpreting the JSON at every candidate (a string compare of
 * the clause names per point).
 */
#define _GNU_SOURCE
#include "api_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { C_VALUE, C_ANY, C_EXCEPT, C_TEXT, C_RANGE, C_COUNT, C_EMPTY, C_NULL, C_HASID, C_SUB };

typedef struct cond {
    int kind;
    char **path; /* key components */
    size_t npath;
    json_t *val; /* C_VALUE: the value; C_ANY/C_EXCEPT: the array; C_TEXT: string */
    double lo, hi;
    int lo_inc, hi_inc;
    vqs_pid *ids;
    size_t nids;
    vqs_filter *sub;
} cond;

struct vqs_filter {
    cond *must, *should, *not;
    size_t nmust, nshould, nnot, min_should;
};

static void cond_free(cond *c)
{
    for (size_t i = 0; i < c->npath; i++)
        free(c->path[i]);
    free(c->path);
    json_decref(c->val);
    free(c->ids);
    vqs_filter_free(c->sub);
}

void vqs_filter_free(vqs_filter *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->nmust; i++)
        cond_free(&f->must[i]);
    for (size_t i = 0; i < f->nshould; i++)
        cond_free(&f->should[i]);
    for (size_t i = 0; i < f->nnot; i++)
        cond_free(&f->not[i]);
    free(f->must);
    free(f->should);
    free(f->not);
    free(f);
}

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, __VA_ARGS__);                                                        \
        return -1;                                                                                 \
    } while (0)

static int is_match_value(const json_t *v) { return json_is_string(v) || json_is_integer(v) || json_is_boolean(v); }

static int split_key(const char *key, cond *c, char *err, size_t errlen, const char *where)
{
    if (!*key)
        FAIL("%s: empty \"key\"", where);
    size_t n = 1;
    for (const char *p = key; *p; p++)
        n += *p == '.';
    c->path = calloc(n, sizeof(char *));
    if (!c->path)
        FAIL("out of memory");
    const char *s = key;
    for (size_t i = 0; i < n; i++) {
        const char *e = strchr(s, '.');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        /* "a[]" (Qdrant's array step) is the same as "a" here: arrays are
         * looked into anyway */
        if (len >= 2 && s[len - 2] == '[' && s[len - 1] == ']')
            len -= 2;
        if (len == 0)
            FAIL("%s: key \"%s\" has an empty component", where, key);
        if (!(c->path[i] = strndup(s, len)))
            FAIL("out of memory");
        c->npath++;
        s = e ? e + 1 : s + len;
    }
    return 0;
}

static int bounds(const json_t *r, cond *c, char *err, size_t errlen, const char *where, const char *what)
{
    if (!json_is_object(r))
        FAIL("%s: \"%s\" must be an object of gt/gte/lt/lte", where, what);
    c->lo = -INFINITY;
    c->hi = INFINITY;
    c->lo_inc = c->hi_inc = 1;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)r, k, v)
    {
        if (json_is_null(v))
            continue;
        if (!json_is_number(v))
            FAIL("%s: \"%s\".\"%s\" must be a number", where, what, k);
        double x = json_number_value(v);
        if (!strcmp(k, "gt") || !strcmp(k, "gte")) {
            c->lo = x;
            c->lo_inc = k[2] == 'e';
        } else if (!strcmp(k, "lt") || !strcmp(k, "lte")) {
            c->hi = x;
            c->hi_inc = k[2] == 'e';
        } else {
            FAIL("%s: unknown \"%s\" bound \"%s\" (gt, gte, lt, lte)", where, what, k);
        }
    }
    return 0;
}

static int parse_pid(const json_t *v, vqs_pid *p)
{
    memset(p, 0, sizeof *p);
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        p->kind = VQS_PID_U64;
        p->u64 = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v) && vqs_pid_parse(json_string_value(v), p) == 0 && p->kind == VQS_PID_UUID)
        return 0;
    return -1;
}

static vqs_filter *compile(const json_t *j, char *err, size_t errlen, const char *where, int depth);

static int compile_cond(const json_t *j, cond *c, char *err, size_t errlen, const char *where, int depth)
{
    memset(c, 0, sizeof *c);
    if (!json_is_object(j))
        FAIL("%s: a condition must be an object", where);
    json_t *key = json_object_get(j, "key");
    if (json_object_get(j, "must") || json_object_get(j, "should") || json_object_get(j, "must_not")) {
        c->kind = C_SUB;
        return (c->sub = compile(j, err, errlen, where, depth + 1)) ? 0 : -1;
    }
    json_t *x;
    if ((x = json_object_get(j, "has_id"))) {
        c->kind = C_HASID;
        if (!json_is_array(x))
            FAIL("%s: \"has_id\" must be an array of point ids", where);
        c->nids = json_array_size(x);
        if (!(c->ids = calloc(c->nids ? c->nids : 1, sizeof(vqs_pid))))
            FAIL("out of memory");
        for (size_t i = 0; i < c->nids; i++)
            if (parse_pid(json_array_get(x, i), &c->ids[i]))
                FAIL("%s: \"has_id\"[%zu] is not a point id (an unsigned integer or a UUID)", where, i);
        return 0;
    }
    if ((x = json_object_get(j, "is_empty")) || (x = json_object_get(j, "is_null"))) {
        c->kind = json_object_get(j, "is_empty") ? C_EMPTY : C_NULL;
        json_t *k = json_object_get(x, "key");
        if (!json_is_string(k))
            FAIL("%s: \"%s\" needs {\"key\": string}", where, c->kind == C_EMPTY ? "is_empty" : "is_null");
        return split_key(json_string_value(k), c, err, errlen, where);
    }
    if (!json_is_string(key))
        FAIL("%s: a field condition needs \"key\" (a string); known conditions: match, range, values_count, "
             "is_empty, is_null, has_id, or a nested filter",
             where);
    if (split_key(json_string_value(key), c, err, errlen, where))
        return -1;
    const char *kn = json_string_value(key);
    if ((x = json_object_get(j, "match"))) {
        json_t *v;
        if (!json_is_object(x))
            FAIL("%s: key \"%s\": \"match\" must be an object", where, kn);
        if ((v = json_object_get(x, "value"))) {
            if (!is_match_value(v))
                FAIL("%s: key \"%s\": \"match\".\"value\" must be a string, an integer or a boolean", where, kn);
            c->kind = C_VALUE;
        } else if ((v = json_object_get(x, "any")) || (v = json_object_get(x, "except"))) {
            c->kind = json_object_get(x, "any") ? C_ANY : C_EXCEPT;
            if (!json_is_array(v))
                FAIL("%s: key \"%s\": \"match\".\"%s\" must be an array", where, kn, c->kind == C_ANY ? "any" : "except");
            for (size_t i = 0; i < json_array_size(v); i++)
                if (!is_match_value(json_array_get(v, i)))
                    FAIL("%s: key \"%s\": \"match\" list element %zu must be a string, an integer or a boolean",
                         where, kn, i);
        } else if ((v = json_object_get(x, "text"))) {
            if (!json_is_string(v))
                FAIL("%s: key \"%s\": \"match\".\"text\" must be a string", where, kn);
            c->kind = C_TEXT;
        } else {
            FAIL("%s: key \"%s\": \"match\" needs \"value\", \"any\", \"except\" or \"text\"", where, kn);
        }
        c->val = json_incref(v);
        return 0;
    }
    if ((x = json_object_get(j, "range"))) {
        c->kind = C_RANGE;
        return bounds(x, c, err, errlen, where, "range");
    }
    if ((x = json_object_get(j, "values_count"))) {
        c->kind = C_COUNT;
        return bounds(x, c, err, errlen, where, "values_count");
    }
    FAIL("%s: key \"%s\": the condition needs \"match\", \"range\" or \"values_count\" (geo and datetime "
         "conditions are not supported)",
         where, kn);
}

static int compile_list(const json_t *j, const char *name, cond **out, size_t *n, char *err, size_t errlen,
                        const char *where, int depth)
{
    json_t *a = json_object_get(j, name);
    if (!a || json_is_null(a))
        return 0;
    json_t *one = NULL;
    if (json_is_object(a)) { /* Qdrant accepts one condition without the array */
        one = json_array();
        json_array_append(one, a);
        a = one;
    }
    if (!json_is_array(a)) {
        json_decref(one);
        FAIL("%s: \"%s\" must be an array of conditions", where, name);
    }
    *n = json_array_size(a);
    *out = calloc(*n ? *n : 1, sizeof(cond));
    if (!*out) {
        json_decref(one);
        FAIL("out of memory");
    }
    for (size_t i = 0; i < *n; i++) {
        char w[256];
        snprintf(w, sizeof w, "%s.%s[%zu]", where, name, i);
        if (compile_cond(json_array_get(a, i), &(*out)[i], err, errlen, w, depth)) {
            json_decref(one);
            return -1;
        }
    }
    json_decref(one);
    return 0;
}

static vqs_filter *compile(const json_t *j, char *err, size_t errlen, const char *where, int depth)
{
    if (depth > 32) {
        snprintf(err, errlen, "%s: filters nested more than 32 deep", where);
        return NULL;
    }
    if (!json_is_object(j)) {
        snprintf(err, errlen, "%s: a filter must be an object", where);
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)j, k, v)
    {
        if (strcmp(k, "must") && strcmp(k, "should") && strcmp(k, "must_not")) {
            snprintf(err, errlen, "%s: unknown or unsupported filter clause \"%s\" (must, should, must_not)", where, k);
            return NULL;
        }
    }
    vqs_filter *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (compile_list(j, "must", &f->must, &f->nmust, err, errlen, where, depth) ||
        compile_list(j, "should", &f->should, &f->nshould, err, errlen, where, depth) ||
        compile_list(j, "must_not", &f->not, &f->nnot, err, errlen, where, depth)) {
        vqs_filter_free(f);
        return NULL;
    }
    f->min_should = f->nshould ? 1 : 0;
    return f;
}

vqs_filter *vqs_filter_compile(const json_t *j, char *err, size_t errlen)
{
    err[0] = 0;
    return compile(j, err, errlen, "filter", 0);
}

/* ---- evaluation ------------------------------------------------------------ */

static const json_t *lookup(const json_t *p, const cond *c)
{
    for (size_t i = 0; p && i < c->npath; i++) {
        if (json_is_array(p)) /* "a.b" through an array of objects: first level only */
            return NULL;
        p = json_object_get(p, c->path[i]);
    }
    return p;
}

static int value_eq(const json_t *a, const json_t *b)
{
    if (json_is_string(a) && json_is_string(b))
        return json_string_length(a) == json_string_length(b) &&
               !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
    if (json_is_integer(a) && json_is_integer(b))
        return json_integer_value(a) == json_integer_value(b);
    if (json_is_boolean(a) && json_is_boolean(b))
        return json_is_true(a) == json_is_true(b);
    return 0;
}

static int in_bounds(const cond *c, double x)
{
    if (isnan(x))
        return 0;
    if (c->lo_inc ? x < c->lo : x <= c->lo)
        return 0;
    if (c->hi_inc ? x > c->hi : x >= c->hi)
        return 0;
    return 1;
}

static int scalar_match(const cond *c, const json_t *v)
{
    switch (c->kind) {
    case C_VALUE:
        return value_eq(v, c->val);
    case C_ANY:
    case C_EXCEPT: {
        int hit = 0;
        for (size_t i = 0; !hit && i < json_array_size(c->val); i++)
            hit = value_eq(v, json_array_get(c->val, i));
        return c->kind == C_ANY ? hit : !hit && is_match_value(v);
    }
    case C_TEXT:
        return json_is_string(v) && strstr(json_string_value(v), json_string_value(c->val)) != NULL;
    case C_RANGE:
        return json_is_number(v) && in_bounds(c, json_number_value(v));
    }
    return 0;
}

static int cond_match(const cond *c, const json_t *payload, const vqs_pid *id)
{
    switch (c->kind) {
    case C_SUB:
        return vqs_filter_match(c->sub, payload, id);
    case C_HASID:
        for (size_t i = 0; i < c->nids; i++)
            if (c->ids[i].kind == id->kind &&
                (id->kind == VQS_PID_U64 ? c->ids[i].u64 == id->u64 : !memcmp(c->ids[i].uuid, id->uuid, 16)))
                return 1;
        return 0;
    default:
        break;
    }
    const json_t *v = lookup(payload, c);
    if (c->kind == C_EMPTY)
        return !v || json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0);
    if (c->kind == C_NULL)
        return v && json_is_null(v);
    if (c->kind == C_COUNT) {
        double n = !v || json_is_null(v) ? 0 : json_is_array(v) ? (double)json_array_size(v) : 1;
        return in_bounds(c, n);
    }
    if (!v)
        return 0;
    if (json_is_array(v)) {
        if (c->kind == C_EXCEPT) { /* none of the elements is excluded */
            if (json_array_size(v) == 0)
                return 0;
            for (size_t i = 0; i < json_array_size(v); i++)
                if (!scalar_match(c, json_array_get(v, i)))
                    return 0;
            return 1;
        }
        for (size_t i = 0; i < json_array_size(v); i++)
            if (scalar_match(c, json_array_get(v, i)))
                return 1;
        return 0;
    }
    return scalar_match(c, v);
}

int vqs_filter_match(const vqs_filter *f, const json_t *payload, const vqs_pid *id)
{
    for (size_t i = 0; i < f->nmust; i++)
        if (!cond_match(&f->must[i], payload, id))
            return 0;
    for (size_t i = 0; i < f->nnot; i++)
        if (cond_match(&f->not[i], payload, id))
            return 0;
    if (f->min_should) {
        size_t hits = 0;
        for (size_t i = 0; i < f->nshould && hits < f->min_should; i++)
            hits += (size_t)cond_match(&f->should[i], payload, id);
        if (hits < f->min_should)
            return 0;
    }
    return 1;
}
