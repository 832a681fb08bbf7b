/*
 * db_pindex.c: payload indexes in LMDB (layout 2): the database pidx and
 * the schema records of meta. Placeholder: no collection has an index yet;
 * the hooks below are where every stored payload change passes.
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "db_internal.h"

int db_pindex_point(vqs_db *db, MDB_txn *t, const db_rec *r, uint64_t iid, const char *pay, size_t len, int add,
                    int *vqs)
{
    (void)db, (void)t, (void)r, (void)iid, (void)pay, (void)len, (void)add, (void)vqs;
    return 0;
}

int db_pindex_drop(vqs_db *db, MDB_txn *t, uint32_t coll)
{
    (void)db, (void)t, (void)coll;
    return 0;
}
