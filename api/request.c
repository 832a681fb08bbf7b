/*
 * request.c: reading a request for the handlers: its JSON body, point ids,
 * vectors, integer and boolean fields, with_payload and filter; and the
 * bounds of its work: the deadline and the response's size.
 *
 * Design decisions:
 * - Each parser sets the 400 itself, naming what is wrong (the key, the
 *   point's place in the batch, the element), and returns the status, so
 *   a handler returns at its first error without a message of its own.
 * - Bodies are parsed with duplicate keys refused: {"limit": 1, "limit":
 *   1000} has no one meaning.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

/* ---- request parsing helpers ----------------------------------------------------- */

/* 503 once the request's deadline has passed */
int api_check_deadline(const req *q, resp *r)
{
    if (q->deadline > 0 && vqs_now() > q->deadline)
        return fail(r, 503, "the request ran past its deadline of %.3g s (--timeout, or ?timeout=) and was stopped",
                    q->deadline - q->t0);
    return 0;
}

/* Adds point o's JSON size (estimated: payload exact, vector 16 bytes an
 * element) to the response's; 400 once it passes --max-response. */
int api_charge(const vqs_server *s, req *q, const json_t *o, size_t vec_d, resp *r)
{
    size_t b = 64 + vec_d * 16;
    const json_t *p = json_object_get(o, "payload");
    if (p)
        b += json_dumpb(p, NULL, 0, JSON_COMPACT);
    q->out_bytes += b;
    if (q->out_bytes > s->o.max_response)
        return fail(r, 400, "the response would pass %zu bytes (--max-response): ask for fewer points, fewer "
                            "payload keys or no vectors", s->o.max_response);
    return 0;
}

json_t *api_parse_body(const req *q, resp *r)
{
    if (!q->len) {
        fail(r, 400, "the request needs a JSON body");
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(q->body, q->len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        fail(r, 400, "malformed JSON at line %d, column %d (byte %d): %s", je.line, je.column, je.position,
             je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        fail(r, 400, "the JSON body must be an object");
        return NULL;
    }
    return j;
}

int api_parse_id(const json_t *v, vqs_pid *p, resp *r, const char *where)
{
    memset(p, 0, sizeof *p);
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0)
            return fail(r, 400, "%s: point id %lld is negative (ids are unsigned integers or UUIDs)", where,
                        (long long)json_integer_value(v));
        p->kind = VQS_PID_U64;
        p->u64 = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        if (vqs_pid_parse(json_string_value(v), p) || p->kind != VQS_PID_UUID) {
            vqs_clearerr();
            return fail(r, 400, "%s: point id \"%.80s\" is not a UUID (ids are unsigned integers or UUIDs)", where,
                        json_string_value(v));
        }
        return 0;
    }
    return fail(r, 400, "%s: a point id must be an unsigned integer or a UUID string", where);
}

json_t *api_id_json(const vqs_pid *p)
{
    if (p->kind == VQS_PID_U64)
        return json_integer((json_int_t)p->u64);
    char b[40];
    return json_string(vqs_pid_format(p, b));
}

/* d floats from a JSON array; finite, in float range */
int api_parse_vector(const json_t *v, size_t d, float *out, resp *r, const char *where)
{
    if (json_is_object(v))
        return fail(r, 400, "%s: named vectors are not supported; send the vector as an array of %zu numbers", where,
                    d);
    if (!json_is_array(v))
        return fail(r, 400, "%s: the vector must be an array of %zu numbers", where, d);
    if (json_array_size(v) != d)
        return fail(r, 400, "%s: vector of dimension %zu, the collection's is %zu", where, json_array_size(v), d);
    for (size_t i = 0; i < d; i++) {
        json_t *x = json_array_get(v, i);
        if (!json_is_number(x))
            return fail(r, 400, "%s: vector element %zu is not a number", where, i);
        double f = json_number_value(x);
        if (!isfinite(f) || fabs(f) > 3.4028234663852886e38)
            return fail(r, 400, "%s: vector element %zu (%g) is not a finite float32", where, i, f);
        out[i] = (float)f;
    }
    return 0;
}

int api_get_bool(const json_t *j, const char *k, int def, int *out, resp *r)
{
    json_t *v = json_object_get(j, k);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v))
        return fail(r, 400, "\"%s\" must be true or false", k);
    *out = json_is_true(v);
    return 0;
}

int api_get_count(const json_t *j, const char *k, size_t def, size_t max, size_t *out, resp *r)
{
    json_t *v = json_object_get(j, k);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_integer(v))
        return fail(r, 400, "\"%s\" must be an integer", k);
    json_int_t x = json_integer_value(v);
    if (x < 0 || (uint64_t)x > max)
        return fail(r, 400, "\"%s\" is %lld; it must be between 0 and %zu", k, (long long)x, max);
    *out = (size_t)x;
    return 0;
}

/* ---- with_payload ---------------------------------------------------------------- */

int api_parse_with_payload(const json_t *j, int def, payload_sel *ps, resp *r)
{
    memset(ps, 0, sizeof *ps);
    json_t *v = json_object_get(j, "with_payload");
    if (!v || json_is_null(v)) {
        ps->on = def;
        return 0;
    }
    if (json_is_boolean(v)) {
        ps->on = json_is_true(v);
        return 0;
    }
    if (json_is_array(v)) {
        ps->on = 1;
        ps->include = v;
    } else if (json_is_object(v)) {
        ps->on = 1;
        ps->include = json_object_get(v, "include");
        ps->exclude = json_object_get(v, "exclude");
        if ((ps->include && !json_is_array(ps->include)) || (ps->exclude && !json_is_array(ps->exclude)) ||
            (!ps->include && !ps->exclude))
            return fail(r, 400, "\"with_payload\" must be a boolean, an array of keys or {\"include\"|\"exclude\": [keys]}");
    } else {
        return fail(r, 400, "\"with_payload\" must be a boolean, an array of keys or {\"include\"|\"exclude\": [keys]}");
    }
    for (json_t *a = ps->include; a; a = a == ps->include ? ps->exclude : NULL)
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!json_is_string(json_array_get(a, i)))
                return fail(r, 400, "\"with_payload\": key %zu is not a string", i);
    return 0;
}

/* the payload to return (new reference); p may be NULL */
json_t *api_select_payload(const payload_sel *ps, json_t *p)
{
    if (!p || !json_is_object(p))
        return json_object();
    if (!ps->include && !ps->exclude)
        return json_incref(p);
    json_t *o = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(p, k, v)
    {
        int keep = ps->include == NULL;
        for (size_t i = 0; ps->include && i < json_array_size(ps->include); i++)
            keep |= !strcmp(k, json_string_value(json_array_get(ps->include, i)));
        for (size_t i = 0; ps->exclude && i < json_array_size(ps->exclude); i++)
            keep &= !!strcmp(k, json_string_value(json_array_get(ps->exclude, i)));
        if (keep)
            json_object_set(o, k, v);
    }
    return o;
}

/* ---- filter ---------------------------------------------------------------------- */

vqs_filter *api_get_filter(const json_t *j, resp *r)
{
    json_t *f = json_object_get(j, "filter");
    if (!f || json_is_null(f))
        return NULL;
    char err[512];
    vqs_filter *c = vqs_filter_compile(f, err, sizeof err);
    if (!c)
        fail(r, 400, "%s", err);
    return c;
}
