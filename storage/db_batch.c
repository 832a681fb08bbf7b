/*
 * db_batch.c: batched reads of the LMDB store (vqs_store_db.h).
 *
 * vqs_db_get_iids: the point ids and payloads of a search's results.
 * FIRST STEP: one vqs_db_get_iid per id, until the store's internals are
 * shared through storage/db_internal.h (being split out of db.c); then the
 * lookups run in one read transaction, as the header promises.
 */
#define _GNU_SOURCE
#include "vqs_store.h"

#include <stdlib.h>
#include <string.h>

int vqs_db_get_iids(vqs_db *db, const char *name, size_t n, const int64_t *iids, vqs_pid *ids,
                    char **payloads)
{
    if (!db || (n && (!iids || !ids)))
        return vqs_seterr(VQS_EINVAL, "db_get_iids: NULL argument");
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        memset(&ids[i], 0, sizeof ids[i]);
        if (payloads)
            payloads[i] = NULL;
    }
    for (size_t i = 0; !rc && i < n; i++) {
        if (iids[i] < 0)
            continue;
        rc = vqs_db_get_iid(db, name, (uint64_t)iids[i], &ids[i], payloads ? &payloads[i] : NULL);
        if (rc == VQS_ENOTFOUND) {
            memset(&ids[i], 0, sizeof ids[i]);
            vqs_clearerr();
            rc = 0;
        }
    }
    if (rc && payloads)
        for (size_t i = 0; i < n; i++) {
            free(payloads[i]);
            payloads[i] = NULL;
        }
    return rc;
}
