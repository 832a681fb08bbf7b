/*
 * coll_defaults.c: changing an open collection's search defaults and its
 * training size (vqs_collection.h, vqs_coll_set_defaults): the API's PATCH
 * of a collection.
 *
 * Design decisions:
 * - The record is written first (storage's vqs_db_set_config, one
 *   transaction), then the handle's copy, under the writer mutex (no upsert
 *   reads train_size meanwhile) and the index lock held for writing (no
 *   search reads nprobe or oversampling meanwhile): a failed write changes
 *   nothing, and a search sees the old defaults or the new ones.
 * - The index keeps the defaults it was built with; searches fill their
 *   zero parameters from the handle's copy (coll_search.c) instead, so no
 *   index has to be rebuilt or told. Rejected: reopening the collection
 *   (reads every code again for two numbers).
 * - A training size at or below the points held does not train here: the
 *   next upsert does (as it would have at that size), or POST .../train.
 *   Rejected: training inside the PATCH (minutes of work in a request
 *   that only changes settings).
 */
#define _GNU_SOURCE
#include "coll_internal.h"

#include <pthread.h>

int vqs_coll_set_defaults(vqs_coll *c, uint32_t nprobe, float oversampling, uint64_t train_size)
{
    if (!c)
        return vqs_seterr(VQS_EINVAL, "coll_set_defaults: NULL argument");
    if (nprobe == 0 || nprobe >= (1u << 24))
        return vqs_seterr(VQS_EINVAL, "collection '%s': nprobe %u (1..%u)", c->name, nprobe, (1u << 24) - 1);
    if (!(oversampling >= 1 && oversampling <= 1000))
        return vqs_seterr(VQS_EINVAL, "collection '%s': oversampling %g (1..1000)", c->name, (double)oversampling);
    pthread_mutex_lock(&c->wlock);
    vqs_coll_config cfg = c->cfg;
    cfg.nprobe = nprobe;
    cfg.oversampling = oversampling;
    cfg.train_size = train_size;
    vqs_db_config dc;
    coll_config_to_db(&cfg, &dc);
    int rc = vqs_db_set_config(c->db, c->name, &dc);
    if (!rc) {
        pthread_rwlock_wrlock(&c->lock);
        c->cfg.nprobe = nprobe;
        c->cfg.oversampling = oversampling;
        c->cfg.train_size = train_size;
        pthread_rwlock_unlock(&c->lock);
    }
    pthread_mutex_unlock(&c->wlock);
    return rc;
}
