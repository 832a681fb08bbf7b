/*
 * catalog_aliases.c: the aliases of a catalog's collections
 * (vqs_collection.h), passed through to storage (storage/db_aliases.c),
 * which keeps them and applies a list of actions in one transaction.
 * This layer adds nothing: aliases are names, and names are the catalog's.
 */
#define _GNU_SOURCE
#include "coll_internal.h"

int vqs_catalog_alias_update(vqs_catalog *cat, size_t n, const vqs_db_alias_op *ops, size_t *failed)
{
    if (!cat)
        return vqs_seterr(VQS_EINVAL, "catalog_alias_update: NULL argument");
    return vqs_db_alias_update(cat->db, n, ops, failed);
}

int vqs_catalog_aliases(vqs_catalog *cat, vqs_db_alias **out, size_t *n)
{
    if (!cat)
        return vqs_seterr(VQS_EINVAL, "catalog_aliases: NULL argument");
    return vqs_db_alias_list(cat->db, out, n);
}
