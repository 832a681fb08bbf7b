/* api_internal.h: what api/server.c and api/filter.c share. */
#ifndef VQS_API_INTERNAL_H
#define VQS_API_INTERNAL_H

#include <jansson.h>
#include <stddef.h>

#include "vqs_store.h"

/* A Qdrant filter: {"must": [...], "should": [...], "must_not": [...]} of
 * conditions (should: at least one)
 *   {"key": K, "match": {"value": V}}     keyword (string), integer or bool
 *   {"key": K, "match": {"any": [V...]}}  one of
 *   {"key": K, "match": {"except": [V...]}}
 *   {"key": K, "match": {"text": S}}      substring of a string field
 *   {"key": K, "range": {"gt"|"gte"|"lt"|"lte": number}}
 *   {"key": K, "values_count": {"gt"|"gte"|"lt"|"lte": n}}
 *   {"is_empty": {"key": K}}, {"is_null": {"key": K}}
 *   {"has_id": [id...]}
 *   a nested filter ({"must": ...} etc.)
 * Keys are dotted paths ("a.b"); an array value matches if any element
 * does (as Qdrant). */
typedef struct vqs_filter vqs_filter;

/* Compiles j; on error returns NULL with a message naming the part that is
 * wrong in err. */
vqs_filter *vqs_filter_compile(const json_t *j, char *err, size_t errlen);
void vqs_filter_free(vqs_filter *f);
/* payload: the point's payload object (NULL: none); id: its point id. */
int vqs_filter_match(const vqs_filter *f, const json_t *payload, const vqs_pid *id);

#endif
