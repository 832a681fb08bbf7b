/*
 * db_batch.c: batched reads of the LMDB store (vqs_store_db.h): the point
 * ids and payloads of many internal ids at once (a search's results).
 *
 * Design decisions:
 * - One read transaction for the whole batch: the results of a search are
 *   one consistent state (a point replaced halfway through cannot show its
 *   old id with its new payload), and a search with k results costs one
 *   transaction and one collection-record lookup, not k of each.
 * - A dead or never-handed-out internal id is not an error here: the index
 *   a search ran on may be a moment older than this transaction (a delete
 *   committed in between), so that result slot is simply empty (kind 0),
 *   as it is for the index's own "no result" (-1).
 * - The ids are looked up in the order given, one mdb_get each: a
 *   search's results are a few to a few thousand ids in score order.
 *   Rejected: a cursor walk in id order (a sort and an inverse permutation
 *   to save B-tree descents that the read transaction's pages mostly
 *   already hold; not measured).
 */
#define _GNU_SOURCE
#include "db_internal.h"

#include <stdlib.h>
#include <string.h>

int vqs_db_get_iids(vqs_db *db, const char *name, size_t n, const int64_t *iids, vqs_pid *ids,
                    char **payloads)
{
    if (!db || (n && (!iids || !ids)))
        return vqs_seterr(VQS_EINVAL, "db_get_iids: NULL argument");
    for (size_t i = 0; i < n; i++) {
        memset(&ids[i], 0, sizeof ids[i]);
        if (payloads)
            payloads[i] = NULL;
    }
    MDB_txn *t;
    int rc = db_txn_begin(db, 0, &t);
    if (rc)
        return rc;
    db_rec r;
    if ((rc = db_get_rec(db, t, name, &r)))
        goto done;
    for (size_t i = 0; !rc && i < n; i++) {
        if (iids[i] < 0)
            continue;
        uint8_t ib[12];
        MDB_val k = db_iid_key(r.id, (uint64_t)iids[i], ib), v;
        int e = mdb_get(t, db->pt, &k, &v);
        if (e == MDB_NOTFOUND) /* dead, or not yet handed out: an empty slot */
            continue;
        if (e) {
            rc = db_lmdb_err(e, "read a point", name);
            break;
        }
        const char *p = NULL;
        size_t pl = 0;
        if ((rc = db_pt_decode(&v, &ids[i], payloads ? &p : NULL, &pl)))
            break;
        if (payloads && p && !(payloads[i] = db_dup_payload(p, pl)))
            rc = vqs_seterr(VQS_ENOMEM, "db_get_iids: %zu payloads", n);
    }
done:
    db_txn_abort(db, t);
    if (rc)
        for (size_t i = 0; i < n; i++) {
            memset(&ids[i], 0, sizeof ids[i]);
            if (payloads) {
                free(payloads[i]);
                payloads[i] = NULL;
            }
        }
    return rc;
}
