/*
 * h_scroll.c: POST .../points/scroll. Placeholder: answers 501.
 */
#define _GNU_SOURCE
#include "api_internal.h"

int api_h_scroll(vqs_server *s, entry *e, req *q, resp *r)
{
    (void)s, (void)e, (void)q;
    return fail(r, 501, "scroll is not implemented yet");
}
