/*
 * h_payload.c: payload updates (set, overwrite, delete keys, clear), vector
 * updates and deletes, and points/batch. Placeholder: each answers 501.
 */
#define _GNU_SOURCE
#include "api_internal.h"

int api_h_payload(vqs_server *s, entry *e, const req *q, resp *r, payload_op op)
{
    (void)s, (void)e, (void)q, (void)op;
    return fail(r, 501, "payload updates are not implemented yet");
}

int api_h_update_vectors(vqs_server *s, entry *e, const req *q, resp *r)
{
    (void)s, (void)e, (void)q;
    return fail(r, 501, "vector updates are not implemented yet");
}

int api_h_delete_vectors(vqs_server *s, entry *e, const req *q, resp *r)
{
    (void)s, (void)e, (void)q;
    return fail(r, 501, "vector deletes are not implemented yet");
}

int api_h_batch(vqs_server *s, entry *e, const req *q, resp *r)
{
    (void)s, (void)e, (void)q;
    return fail(r, 501, "points/batch is not implemented yet");
}
