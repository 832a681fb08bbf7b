/*
 * h_query.c: the search variants: query (with prefetch and fusion), its
 * batch and groups, recommend, search groups. Placeholder: query is the
 * plain nearest-vector query of h_search.c; the rest answer 501.
 */
#define _GNU_SOURCE
#include "api_internal.h"

int api_h_query(vqs_server *s, entry *e, req *q, resp *r, query_kind kind)
{
    if (kind == QUERY_ONE)
        return api_h_search(s, e, q, r, SEARCH_QUERY);
    return fail(r, 501, "query %s is not implemented yet", kind == QUERY_BATCH ? "batch" : "groups");
}

int api_h_recommend(vqs_server *s, entry *e, req *q, resp *r, query_kind kind)
{
    (void)s, (void)e, (void)q, (void)kind;
    return fail(r, 501, "recommend is not implemented yet");
}

int api_h_search_groups(vqs_server *s, entry *e, req *q, resp *r)
{
    (void)s, (void)e, (void)q;
    return fail(r, 501, "search groups is not implemented yet");
}
