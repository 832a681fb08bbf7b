/*
 * registry.c: the server's open collections (one entry each, in a list
 * under the registry rwlock) and their payload caches.
 *
 * Design decisions:
 * - Every collection of the data directory is opened at start (a damaged
 *   one is reported and answers 500 naming the reason; the others serve).
 *   A registry rwlock: a request on a collection holds it for reading for
 *   its whole life, create and drop take it for writing, so a drop waits for
 *   the searches in flight and never frees a collection under them.
 * - Filters run during the scan: the index calls back with each candidate's
 *   internal id, which looks up a per-collection cache of parsed payloads
 *   (and point ids) indexed by internal id. The cache is built on the first
 *   filtered request (one LMDB read transaction over the payloads) and kept
 *   up to date by upserts; entries of deleted or replaced points stay until
 *   close but are never reached by a search (the index no longer holds their
 *   internal ids); counts and deletes by filter check liveness in LMDB.
 *   Rejected: reading the payload from LMDB per candidate (a B-tree lookup
 *   and a JSON parse per scanned point), and filtering after the search
 *   (loses recall, as the issue says).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

/* ---- collections ----------------------------------------------------------------- */

void api_entry_free(entry *e)
{
    if (!e)
        return;
    vqs_coll_close(e->c);
    for (size_t i = 0; i < e->npl; i++)
        json_decref(e->pl[i].payload);
    free(e->pl);
    pthread_rwlock_destroy(&e->plock);
    free(e);
}

entry *api_entry_open(vqs_server *s, const char *name)
{
    entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    snprintf(e->name, sizeof e->name, "%s", name);
    pthread_rwlock_init(&e->plock, NULL);
    vqs_coll_opts co = {0};
    co.nthreads = s->o.threads;
    int rc = vqs_coll_open(s->cat, name, &co, &e->c);
    if (rc) {
        snprintf(e->open_error, sizeof e->open_error, "collection '%s' could not be opened: %s (%s)", name,
                 vqs_errdetail(), vqs_err_name(rc));
        fprintf(stderr, "vqs serve: %s\n", e->open_error);
        e->c = NULL;
    }
    return e;
}

entry *api_entry_find(vqs_server *s, const char *name)
{
    for (entry *e = s->colls; e; e = e->next)
        if (!strcmp(e->name, name))
            return e;
    return NULL;
}

/* ---- the payload cache ----------------------------------------------------------- */

int api_pl_set(entry *e, uint64_t iid, const vqs_pid *id, json_t *payload)
{
    if (iid >= e->npl) {
        size_t n = e->npl ? e->npl : 1024;
        while (n <= iid)
            n *= 2;
        pl_entry *p = realloc(e->pl, n * sizeof *p);
        if (!p)
            return -1;
        memset(p + e->npl, 0, (n - e->npl) * sizeof *p);
        e->pl = p;
        e->npl = n;
    }
    json_decref(e->pl[iid].payload);
    e->pl[iid].payload = payload;
    e->pl[iid].id = *id;
    return 0;
}

static int pl_load_cb(void *ctx, uint64_t iid, const vqs_pid *id, const char *payload, size_t len)
{
    entry *e = ctx;
    json_t *p = NULL;
    if (len) {
        json_error_t je;
        p = json_loadb(payload, len, 0, &je);
    }
    if (api_pl_set(e, iid, id, p)) {
        json_decref(p);
        return vqs_seterr(VQS_ENOMEM, "payload cache");
    }
    return 0;
}

/* Called with plock held for reading; returns with it held for reading and
 * the cache loaded (or an error). */
int api_pl_ensure(entry *e, resp *r)
{
    if (e->pl_loaded)
        return 0;
    pthread_rwlock_unlock(&e->plock);
    pthread_rwlock_wrlock(&e->plock);
    int rc = 0;
    if (!e->pl_loaded) {
        rc = vqs_coll_iterate(e->c, pl_load_cb, e);
        if (rc == 0)
            e->pl_loaded = 1;
    }
    pthread_rwlock_unlock(&e->plock);
    pthread_rwlock_rdlock(&e->plock);
    if (rc)
        return fail(r, 500, "collection '%s': reading the payloads: %s", e->name, vqs_errdetail());
    return 0;
}

int api_filter_cb(void *ctx, int64_t iid)
{
    filter_ctx *F = ctx;
    if (iid < 0 || (uint64_t)iid >= F->e->npl || !F->e->pl[iid].id.kind)
        return 0;
    return vqs_filter_match(F->f, F->e->pl[iid].payload, &F->e->pl[iid].id);
}

/* live points matching f (point ids), by walking the payload cache; plock held for reading */
int api_matching_ids(entry *e, const vqs_filter *f, vqs_pid **out, size_t *n)
{
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    for (size_t iid = 0; iid < e->npl; iid++) {
        pl_entry *p = &e->pl[iid];
        if (!p->id.kind || !vqs_filter_match(f, p->payload, &p->id))
            continue;
        uint64_t cur;
        if (vqs_coll_lookup(e->c, &p->id, &cur, NULL) || cur != iid) { /* replaced or deleted */
            vqs_clearerr();
            continue;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 256;
            vqs_pid *t = realloc(*out, cap * sizeof **out);
            if (!t)
                return -1;
            *out = t;
        }
        (*out)[(*n)++] = p->id;
    }
    return 0;
}
