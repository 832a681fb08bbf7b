/*
 * h_aliases.c: collection aliases. Placeholder: answers 501.
 */
#define _GNU_SOURCE
#include "api_internal.h"

int api_h_aliases_update(vqs_server *s, const req *q, resp *r)
{
    (void)s, (void)q;
    return fail(r, 501, "aliases are not implemented yet");
}

int api_h_aliases_list(vqs_server *s, const char *name, resp *r)
{
    (void)s, (void)name;
    return fail(r, 501, "aliases are not implemented yet");
}
