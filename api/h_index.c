/*
 * h_index.c: payload indexes (PUT/DELETE /collections/{name}/index).
 * Placeholder: answers 501.
 */
#define _GNU_SOURCE
#include "api_internal.h"

int api_h_index_create(vqs_server *s, entry *e, const req *q, resp *r)
{
    (void)s, (void)e, (void)q;
    return fail(r, 501, "payload indexes are not implemented yet");
}

int api_h_index_delete(vqs_server *s, entry *e, const req *q, resp *r, const char *field)
{
    (void)s, (void)e, (void)q, (void)field;
    return fail(r, 501, "payload indexes are not implemented yet");
}
