/*
 * vectors.c: a collection's vectors in Qdrant's request and answer shapes:
 * one unnamed vector ([...], or {"": [...]}) or several named ones
 * ({"name": [...], ...}); "using", a query's {"name", "vector"}, and
 * with_vector (true, false or a list of names).
 *
 * Design decisions:
 * - A vqs point has every vector of its collection (vqs_collection.h,
 *   "named vectors"): an upsert or a vector update that leaves one out is
 *   a 400 naming it, not a point stored without it.
 * - Names are matched exactly; an unknown name is Qdrant's 400 "Wrong
 *   input: Not existing vector name error: NAME".
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

int api_vecs_alloc(entry *e, size_t n, vecs *v, resp *r)
{
    memset(v, 0, sizeof *v);
    v->nv = vqs_coll_nvectors(e->c);
    v->n = n;
    for (size_t i = 0; i < v->nv; i++) {
        v->d[i] = vqs_coll_d(vqs_coll_vector(e->c, i));
        if (!(v->x[i] = malloc(sizeof(float) * v->d[i] * (n ? n : 1)))) {
            api_vecs_free(v);
            return fail(r, 500, "out of memory");
        }
    }
    return 0;
}

void api_vecs_free(vecs *v)
{
    for (size_t i = 0; i < v->nv; i++)
        free(v->x[i]);
    memset(v, 0, sizeof *v);
}

/* one vector's value: a dense array (not sparse, not a multivector, not an inference object) */
static int dense_value(const json_t *x, size_t d, float *out, resp *r, const char *where, const char *name)
{
    char w[160];
    if (name)
        snprintf(w, sizeof w, "%s, vector \"%.60s\"", where, name);
    else
        snprintf(w, sizeof w, "%s", where);
    if (json_is_object(x)) {
        if (json_object_get(x, "indices") || json_object_get(x, "values"))
            return fail(r, 400, "%s: sparse vectors are not supported by vqs", w);
        if (json_is_string(json_object_get(x, "model")))
            return fail(r, 400, "%s: inference objects (text, image, object) are not supported by vqs", w);
        return fail(r, 400, "%s: a vector is an array of %zu numbers", w, d);
    }
    if (json_is_array(x) && json_array_size(x) && json_is_array(json_array_get(x, 0)))
        return fail(r, 400, "%s: multi-vectors (an array of arrays) are not supported by vqs", w);
    return api_parse_vector(x, d, out, r, w);
}

int api_parse_point_vectors(entry *e, const json_t *v, vecs *out, size_t i, resp *r, const char *where)
{
    vqs_coll *c = e->c;
    size_t nv = vqs_coll_nvectors(c);
    int named = vqs_coll_vector_name(c, 0) != NULL;
    if (!named) {
        if (json_is_object(v) && !json_object_get(v, "indices") && !json_object_get(v, "values") &&
            !json_is_string(json_object_get(v, "model"))) {
            const char *k;
            json_t *x;
            json_object_foreach((json_t *)v, k, x)
            {
                if (*k)
                    return fail(r, 400, "%s: Wrong input: Not existing vector name error: %.60s (collection '%s' "
                                        "has one unnamed vector: send [...] or {\"\": [...]})", where, k, e->name);
            }
            if (!(v = json_object_get(v, "")))
                return fail(r, 400, "%s: the vector object is empty; send [...] or {\"\": [...]}", where);
        }
        return dense_value(v, out->d[0], out->x[0] + i * out->d[0], r, where, NULL);
    }
    /* an object is the map of names, whatever its keys: vectors may be called
     * "indices" or "values" (Qdrant reads {"indices": [...], "values": [...]}
     * there as two named vectors too; a sparse vector is only a named one's value) */
    if (!json_is_object(v)) {
        if (json_is_array(v))
            return fail(r, 400, "%s: Wrong input: Not existing vector name error: the default vector (collection "
                                "'%s' has named vectors: send {\"%s\": [...]%s})", where, e->name,
                        vqs_coll_vector_name(c, 0), nv > 1 ? ", ..." : "");
        return dense_value(v, out->d[0], out->x[0] + i * out->d[0], r, where, NULL);
    }
    const char *k;
    json_t *x;
    json_object_foreach((json_t *)v, k, x)
    {
        size_t vi;
        if (vqs_coll_vector_find(c, k, &vi)) {
            vqs_clearerr();
            const char *hint = json_object_get(v, "indices") && json_object_get(v, "values")
                                   ? " (a sparse vector? sparse vectors are not supported by vqs)"
                               : json_is_string(json_object_get(v, "model"))
                                   ? " (an inference object? inference is not supported by vqs)"
                                   : "";
            return fail(r, 400, "%s: Wrong input: Not existing vector name error: %.60s%s", where, k, hint);
        }
    }
    for (size_t vi = 0; vi < nv; vi++) {
        const char *name = vqs_coll_vector_name(c, vi);
        if (!(x = json_object_get(v, name)))
            return fail(r, 400, "%s: vector \"%s\" is missing (a vqs point has every named vector of its collection: "
                                "give all %zu)", where, name, nv);
        if (dense_value(x, out->d[vi], out->x[vi] + i * out->d[vi], r, where, name))
            return r->code;
    }
    return 0;
}

int api_get_using(entry *e, const json_t *j, size_t *vi, resp *r)
{
    json_t *u = json_object_get(j, "using");
    *vi = 0;
    if (!u || json_is_null(u))
        u = NULL;
    else if (!json_is_string(u))
        return fail(r, 400, "\"using\": the vector name must be a string");
    if (vqs_coll_vector_find(e->c, u ? json_string_value(u) : NULL, vi)) {
        fail(r, 400, "\"using\": %s", vqs_errdetail());
        vqs_clearerr();
        return r->code;
    }
    return 0;
}

int api_query_vector(entry *e, const json_t *v, size_t *vi, float **out, resp *r, const char *where)
{
    *out = NULL;
    const json_t *name = NULL;
    if (json_is_array(v) && json_array_size(v) && json_is_array(json_array_get(v, 0)))
        return fail(r, 400, "%s: multivectors are not supported by vqs", where);
    if (json_is_object(v)) {
        if (json_object_get(v, "indices") || json_object_get(v, "values"))
            return fail(r, 400, "%s: sparse vectors are not supported by vqs", where);
        json_t *x = json_object_get(v, "vector");
        name = json_object_get(v, "name");
        if (!name || !x || json_object_size(v) != 2)
            return fail(r, 400, "%s: a vector is an array of numbers or {\"name\": \"...\", \"vector\": [...]}", where);
        if (json_is_object(x))
            return fail(r, 400, "%s: sparse vectors are not supported by vqs", where);
        if (!json_is_string(name))
            return fail(r, 400, "%s: the vector name must be a string", where);
        size_t k;
        if (vqs_coll_vector_find(e->c, json_string_value(name), &k)) {
            fail(r, 400, "%s: %s", where, vqs_errdetail());
            vqs_clearerr();
            return r->code;
        }
        if (*vi != SIZE_MAX && *vi != k)
            return fail(r, 400, "%s: vector \"%.60s\" and \"using\" name different vectors", where,
                        json_string_value(name));
        *vi = k;
        v = x;
    } else if (*vi == SIZE_MAX && vqs_coll_vector_find(e->c, NULL, vi)) {
        fail(r, 400, "%s: %s: give {\"name\": \"...\", \"vector\": [...]}", where, vqs_errdetail());
        vqs_clearerr();
        return r->code;
    }
    size_t d = vqs_coll_d(vqs_coll_vector(e->c, *vi));
    if (!(*out = malloc(sizeof(float) * d)))
        return fail(r, 500, "out of memory");
    if (api_parse_vector(v, d, *out, r, where)) {
        free(*out);
        *out = NULL;
        return r->code;
    }
    return 0;
}

int api_get_with_vector(entry *e, const json_t *j, unsigned *wv, resp *r)
{
    json_t *x = json_object_get(j, "with_vector");
    size_t nv = vqs_coll_nvectors(e->c);
    *wv = 0;
    if (!x || json_is_null(x) || json_is_false(x))
        return 0;
    if (json_is_true(x)) {
        *wv = (1u << nv) - 1;
    } else if (json_is_array(x)) {
        size_t i;
        json_t *n;
        json_array_foreach(x, i, n)
        {
            size_t vi;
            if (!json_is_string(n))
                return fail(r, 400, "\"with_vector\": true, false or a list of vector names");
            if (vqs_coll_vector_find(e->c, json_string_value(n), &vi)) {
                fail(r, 400, "\"with_vector\": %s", vqs_errdetail());
                vqs_clearerr();
                return r->code;
            }
            *wv |= 1u << vi;
        }
    } else {
        return fail(r, 400, "\"with_vector\": true, false or a list of vector names");
    }
    for (size_t vi = 0; vi < nv; vi++)
        if ((*wv >> vi & 1) && !vqs_coll_keeps_vectors(vqs_coll_vector(e->c, vi))) {
            const char *name = vqs_coll_vector_name(e->c, vi);
            char nm[80] = "";
            if (name)
                snprintf(nm, sizeof nm, "vector \"%.60s\" of ", name);
            return fail(r, 400, "\"with_vector\": %scollection '%s' keeps no vectors (rerank \"none\"): only their "
                                "codes", nm, e->name);
        }
    return 0;
}

size_t api_wv_dims(entry *e, unsigned wv)
{
    size_t d = 0;
    for (size_t vi = 0; vi < vqs_coll_nvectors(e->c); vi++)
        if (wv >> vi & 1)
            d += vqs_coll_d(vqs_coll_vector(e->c, vi));
    return d;
}

int api_vectors_json(entry *e, const vqs_pid *id, unsigned wv, json_t **out, resp *r)
{
    *out = NULL;
    int named = vqs_coll_vector_name(e->c, 0) != NULL;
    json_t *o = named ? json_object() : NULL;
    char b[40];
    for (size_t vi = 0; vi < vqs_coll_nvectors(e->c); vi++) {
        if (!(wv >> vi & 1))
            continue;
        vqs_coll *vc = vqs_coll_vector(e->c, vi);
        size_t d = vqs_coll_d(vc);
        float *v = malloc(sizeof(float) * d);
        int rc = v ? vqs_coll_get(vc, id, v, NULL) : VQS_ENOMEM;
        if (rc) {
            free(v);
            json_decref(o);
            if (rc == VQS_ENOTFOUND) { /* deleted since: shown without */
                vqs_clearerr();
                return 0;
            }
            fail(r, status_of(rc) == 400 ? 500 : status_of(rc), "point %s: reading its vector: %s",
                 vqs_pid_format(id, b), rc == VQS_ENOMEM ? "out of memory" : vqs_errdetail());
            vqs_clearerr();
            return r->code;
        }
        json_t *a = json_array();
        for (size_t i = 0; i < d; i++)
            json_array_append_new(a, json_real(v[i]));
        free(v);
        if (!named) {
            *out = a;
            return 0;
        }
        json_object_set_new(o, vqs_coll_vector_name(e->c, vi), a);
    }
    *out = o;
    return 0;
}
