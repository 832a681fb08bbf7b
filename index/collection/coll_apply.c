/*
 * coll_apply.c: several changes of a collection at once, atomically
 * (vqs_coll_apply: upserts, deletes, payload edits, vector replacements;
 * what points/batch and the payload and vector updates of the API run), and
 * the walk in point-id order (vqs_coll_scroll).
 *
 * Design decisions:
 * - Write order as vqs_coll_upsert's: encode, then one storage write session
 *   (vqs_db_write) that runs the operations in order, appending each
 *   upsert's vectors to the vector file (fsynced) before the commit, then
 *   the in-memory apply under the index's write lock. A crash before the
 *   commit leaves only a vector-file tail that the next open cuts back.
 * - The session may be replayed (LMDB map growth): it starts by cutting the
 *   vector file back to where it was and dropping the changes of the
 *   attempt before, so nothing outside the transaction is done twice.
 * - Encoding happens under the writer lock (unlike vqs_coll_upsert, which
 *   encodes outside it): the batch is then encoded by the trained state it
 *   is committed under, without a retry when training happens meanwhile.
 *   Batches are bounded by the API's --max-batch, so the lock is short.
 * - A vector replacement is an upsert that carries the point's payload over
 *   (read in the same transaction): the vector file is append-only and
 *   addressed by internal id, so a new vector needs a new internal id. A
 *   payload edit rewrites only the payload and keeps the internal id.
 * - A collection of several named vectors applies each operation to every
 *   vector's record in the same session (vqs_db_write_group), the
 *   collection's first: the payload edits only there, a delete by
 *   selection in the others by the ids the first one selected; the
 *   internal ids each record hands out are compared, so the records cannot
 *   drift apart unnoticed.
 * - vqs_coll_upsert and vqs_coll_delete stay as they are (their crash tests
 *   cover them); this file reuses the same storage bodies (db_upsert_rec,
 *   db_delete_rec) through the session. Rejected: re-expressing them over
 *   vqs_coll_apply (it would move their encoding under the lock).
 */
#define _GNU_SOURCE
#include "coll_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* what one operation needs besides its description */
typedef struct op_state {
    float *y;        /* UPSERT, VECTORS: the vectors as stored (normalised for cosine) */
    uint8_t *codes;  /* their entries */
    uint32_t *lists;
    uint64_t *iids, *old; /* after the session: the new and replaced (UPSERT, VECTORS) or deleted
                             (DELETE) internal ids; UINT64_MAX: none */
    char **texts;    /* VECTORS: the payloads carried over (malloc'd) */
    size_t nsel;     /* DELETE by selection: how many points it deleted (iids: that many) */
    vqs_pid *selids; /* DELETE by selection, the collection's record: the points it selected */
} op_state;

typedef struct apply_ctx {
    vqs_coll *c;
    size_t nops;
    const vqs_coll_op *ops; /* for a further named vector: the operations as they reach its record */
    op_state *st;
    const struct apply_ctx *lead; /* a further named vector's: the collection's (its selections) */
    uint64_t before; /* vector file records before the session */
    /* the changes of the current attempt; texts owned (owned[i]) or borrowed */
    vqs_coll_change *ch;
    char **owned;
    size_t nch, cap;
    /* a PAYLOAD selection by edit: the points and their new payloads */
    vqs_pid *sel;
    char **seltext;
    size_t nsel, selcap;
} apply_ctx;

static void changes_reset(apply_ctx *A)
{
    for (size_t i = 0; i < A->nch; i++)
        free(A->owned[i]);
    A->nch = 0;
}

/* records a change; text owned (freed with the changes) if own */
static int change_add(apply_ctx *A, const vqs_pid *id, uint64_t iid, char *text, int own)
{
    if (A->nch == A->cap) {
        size_t cap = A->cap ? 2 * A->cap : 64;
        vqs_coll_change *ch = realloc(A->ch, cap * sizeof *ch);
        if (ch)
            A->ch = ch;
        char **ow = ch ? realloc(A->owned, cap * sizeof *ow) : NULL;
        if (!ch || !ow) {
            if (own)
                free(text);
            return vqs_seterr(VQS_ENOMEM, "coll_apply: %zu changes", cap);
        }
        A->owned = ow;
        A->cap = cap;
    }
    A->ch[A->nch] = (vqs_coll_change){*id, iid, text};
    A->owned[A->nch++] = own ? text : NULL;
    return 0;
}

typedef struct sel_ctx {
    apply_ctx *A;
    const vqs_coll_op *op;
} sel_ctx;

static int select_cb(void *ctx, uint64_t iid, const vqs_pid *id, const char *pay, size_t len)
{
    (void)iid;
    sel_ctx *S = ctx;
    apply_ctx *A = S->A;
    char *out = NULL;
    int rc = S->op->edit(S->op->edit_ctx, id, pay, len, &out);
    if (rc < 0)
        return rc;
    if (rc > 0)
        return 0; /* not selected */
    if (A->nsel == A->selcap) {
        size_t cap = A->selcap ? 2 * A->selcap : 64;
        vqs_pid *s = realloc(A->sel, cap * sizeof *s);
        if (s)
            A->sel = s;
        char **t = s ? realloc(A->seltext, cap * sizeof *t) : NULL;
        if (!s || !t) {
            free(out);
            return vqs_seterr(VQS_ENOMEM, "coll_apply: %zu selected points", cap);
        }
        A->seltext = t;
        A->selcap = cap;
    }
    A->sel[A->nsel] = *id;
    A->seltext[A->nsel++] = out;
    return 0;
}

static int run_payload(apply_ctx *A, vqs_db_wtx *w, const vqs_coll_op *op)
{
    int rc = 0;
    if (!op->ids) {
        /* by selection: first walk, then write (the walk must not see its own writes) */
        A->nsel = 0;
        sel_ctx S = {A, op};
        rc = vqs_db_wtx_select(w, select_cb, &S);
        for (size_t i = 0; i < A->nsel; i++) {
            char *t = A->seltext[i];
            A->seltext[i] = NULL;
            uint64_t iid;
            if (!rc && !(rc = vqs_db_wtx_set_payload(w, &A->sel[i], t, t ? strlen(t) : 0, &iid)))
                rc = change_add(A, &A->sel[i], iid, t, 1);
            else
                free(t);
        }
        A->nsel = 0;
        return rc;
    }
    for (size_t i = 0; i < op->n && !rc; i++) {
        const char *old;
        size_t len;
        char *out = NULL;
        uint64_t iid;
        if ((rc = vqs_db_wtx_get(w, &op->ids[i], &iid, &old, &len)))
            break;
        int e = op->edit(op->edit_ctx, &op->ids[i], old, len, &out);
        if (e < 0)
            return e;
        if (e > 0)
            continue;
        if ((rc = vqs_db_wtx_set_payload(w, &op->ids[i], out, out ? strlen(out) : 0, &iid))) {
            free(out);
            break;
        }
        rc = change_add(A, &op->ids[i], iid, out, 1);
    }
    return rc;
}

/* an upsert of op's points with their codes, their vectors appended to the file */
static int run_upsert(apply_ctx *A, vqs_db_wtx *w, const vqs_coll_op *op, op_state *st, const char *const *payloads)
{
    vqs_coll *c = A->c;
    size_t es = c->ix ? vqs_index_entry_size(c->ix) : sizeof(float) * c->cfg.d;
    uint64_t first = vqs_db_wtx_next_iid(w);
    vqs_db_batch b = {.n = op->n, .ids = op->ids, .payloads = payloads, .code_size = es, .codes = st->codes,
                      .lists = st->lists};
    int rc = vqs_db_wtx_upsert(w, &b, st->iids, st->old);
    if (!rc && c->vs && op->n)
        rc = vqs_vecstore_append(c->vs, first, op->n, st->y);
    for (size_t i = 0; !rc && i < op->n; i++)
        rc = change_add(A, &op->ids[i], st->iids[i], payloads ? (char *)payloads[i] : NULL, 0);
    return rc;
}

/* the start of an attempt of the session: nothing of an earlier one stays */
static int attempt_begin(apply_ctx *A)
{
    vqs_coll *c = A->c;
    changes_reset(A);
    if (c->vs && vqs_vecstore_count(c->vs) > A->before)
        return vqs_vecstore_truncate(c->vs, A->before);
    return 0;
}

/* a further named vector's record deletes what the collection's selected */
static int delete_as_lead(apply_ctx *A, vqs_db_wtx *w, size_t k)
{
    const op_state *ls = &A->lead->st[k];
    op_state *st = &A->st[k];
    uint64_t *ii = realloc(st->iids, sizeof(uint64_t) * (ls->nsel ? ls->nsel : 1));
    if (!ii)
        return vqs_seterr(VQS_ENOMEM, "coll_apply: %zu points to delete", ls->nsel);
    st->iids = ii;
    st->nsel = ls->nsel;
    return vqs_db_wtx_delete(w, ls->nsel, ls->selids, st->iids, NULL);
}

/* operation k in session w */
static int run_op(apply_ctx *A, vqs_db_wtx *w, size_t k)
{
    int rc = 0;
    {
        const vqs_coll_op *op = &A->ops[k];
        op_state *st = &A->st[k];
        switch (op->kind) {
        case VQS_COLL_OP_UPSERT:
            rc = run_upsert(A, w, op, st, op->payloads);
            break;
        case VQS_COLL_OP_DELETE:
            if (op->ids) {
                rc = vqs_db_wtx_delete(w, op->n, op->ids, st->iids, NULL);
                break;
            }
            if (A->lead) {
                rc = delete_as_lead(A, w, k);
                break;
            }
            /* by selection: walk, then delete what edit selected */
            A->nsel = 0;
            sel_ctx S = {A, op};
            rc = vqs_db_wtx_select(w, select_cb, &S);
            for (size_t i = 0; i < A->nsel; i++) {
                free(A->seltext[i]);
                A->seltext[i] = NULL;
            }
            st->nsel = 0;
            if (!rc) {
                uint64_t *ii = realloc(st->iids, sizeof(uint64_t) * (A->nsel ? A->nsel : 1));
                if (!ii)
                    rc = vqs_seterr(VQS_ENOMEM, "coll_apply: %zu points to delete", A->nsel);
                else {
                    st->iids = ii;
                    st->nsel = A->nsel;
                    rc = vqs_db_wtx_delete(w, A->nsel, A->sel, st->iids, NULL);
                }
                /* kept for the other vectors' records */
                vqs_pid *keep = !rc ? realloc(st->selids, sizeof(vqs_pid) * (A->nsel ? A->nsel : 1)) : NULL;
                if (keep) {
                    st->selids = keep;
                    if (A->nsel) /* A->sel stays NULL until a point is selected: memcpy(, NULL, 0) is UB */
                        memcpy(keep, A->sel, sizeof(vqs_pid) * A->nsel);
                } else if (!rc) {
                    rc = vqs_seterr(VQS_ENOMEM, "coll_apply: %zu points to delete", A->nsel);
                }
            }
            A->nsel = 0;
            break;
        case VQS_COLL_OP_PAYLOAD:
            if (!A->lead) /* payloads are the collection's */
                rc = run_payload(A, w, op);
            break;
        case VQS_COLL_OP_VECTORS:
            for (size_t i = 0; i < op->n && !rc; i++) {
                const char *p;
                size_t len;
                free(st->texts[i]);
                st->texts[i] = NULL;
                if (!(rc = vqs_db_wtx_get(w, &op->ids[i], NULL, &p, &len)) && p &&
                    !(st->texts[i] = strndup(p, len)))
                    rc = vqs_seterr(VQS_ENOMEM, "coll_apply: a payload of %zu bytes", len);
            }
            if (!rc)
                rc = run_upsert(A, w, op, st, (const char *const *)st->texts);
            break;
        default:
            rc = vqs_seterr(VQS_EINVAL, "coll_apply: operation %zu has kind %d", k, (int)op->kind);
        }
    }
    return rc;
}

static int session(vqs_db_wtx *w, void *ctx)
{
    apply_ctx *A = ctx;
    int rc = attempt_begin(A);
    for (size_t k = 0; k < A->nops && !rc; k++)
        rc = run_op(A, w, k);
    return rc;
}

typedef struct group_apply {
    apply_ctx *A; /* one per vector, the collection's first */
    size_t nv;
} group_apply;

/* the internal ids operation k gave (or took from) vector m's record are
 * the collection's */
static int same_iids(const group_apply *G, size_t m, size_t k)
{
    const vqs_coll_op *op = &G->A[0].ops[k];
    const op_state *a = &G->A[0].st[k], *b = &G->A[m].st[k];
    size_t n = op->kind == VQS_COLL_OP_PAYLOAD ? 0 : op->kind == VQS_COLL_OP_DELETE && !op->ids ? a->nsel : op->n;
    for (size_t i = 0; i < n; i++)
        if (a->iids[i] != b->iids[i] || (op->kind != VQS_COLL_OP_DELETE && a->old[i] != b->old[i]))
            return vqs_seterr(VQS_ECORRUPT, "collection '%s': operation %zu, point %zu: vector '%s' has internal id "
                              "%lld, vector '%s' %lld: the vectors' records differ (reopen to check them)",
                              G->A[0].c->name, k, i, G->A[m].c->primary->vnames[m], (long long)b->iids[i],
                              G->A[0].c->vnames[0], (long long)a->iids[i]);
    return 0;
}

static int group_session(vqs_db_wtx *const *w, void *ctx)
{
    group_apply *G = ctx;
    int rc = 0;
    for (size_t m = 0; m < G->nv && !rc; m++)
        rc = attempt_begin(&G->A[m]);
    for (size_t k = 0; k < G->A[0].nops && !rc; k++)
        for (size_t m = 0; m < G->nv && !rc; m++)
            if (!(rc = run_op(&G->A[m], w[m], k)) && m)
                rc = same_iids(G, m, k);
    return rc;
}

static void state_free(op_state *st, const vqs_coll_op *op)
{
    free(st->y);
    free(st->codes);
    free(st->lists);
    free(st->iids);
    free(st->old);
    free(st->selids);
    if (st->texts)
        for (size_t i = 0; i < op->n; i++)
            free(st->texts[i]);
    free(st->texts);
}

/* the vectors of an UPSERT or VECTORS operation, checked, prepared as stored and encoded */
static int prepare(vqs_coll *c, size_t k, const vqs_coll_op *op, op_state *st)
{
    size_t n = op->n, d = c->cfg.d, es = c->ix ? vqs_index_entry_size(c->ix) : sizeof(float) * d;
    size_t bad = 0;
    int rc = vqs_check_vectors((vqs_metric)c->cfg.metric, n, d, d, op->x, &bad);
    if (rc) {
        char b[40];
        return vqs_seterr(rc, "collection '%s': operation %zu, point %zu (id %s): %s", c->name, k, bad,
                          vqs_pid_format(&op->ids[bad], b), vqs_errdetail());
    }
    st->y = malloc(sizeof(float) * d * n);
    st->codes = malloc(es * n);
    st->lists = calloc(n, sizeof(uint32_t));
    st->old = malloc(sizeof(uint64_t) * n);
    if (op->kind == VQS_COLL_OP_VECTORS)
        st->texts = calloc(n, sizeof(char *));
    if (!st->y || !st->codes || !st->lists || !st->old || (op->kind == VQS_COLL_OP_VECTORS && !st->texts))
        return vqs_seterr(VQS_ENOMEM, "coll_apply: %zu points", n);
    memcpy(st->y, op->x, sizeof(float) * d * n);
    if (c->cfg.metric == VQS_METRIC_COS)
        vqs_normalize_rows(n, d, st->y);
    if (c->ix)
        return vqs_index_encode(c->ix, n, st->y, st->codes, st->lists);
    memcpy(st->codes, st->y, es * n);
    return 0;
}

/* committed: vector c's in-memory index follows, operation by operation;
 * then its automatic training. Caller holds c's wlock. */
static int memory_apply(apply_ctx *A)
{
    vqs_coll *c = A->c;
    int64_t delta = 0;
    int mrc = 0;
    pthread_rwlock_wrlock(&c->lock);
    for (size_t k = 0; k < A->nops && !mrc; k++) {
        const vqs_coll_op *op = &A->ops[k];
        op_state *s = &A->st[k];
        if (op->kind == VQS_COLL_OP_PAYLOAD)
            continue;
        uint64_t *gone = op->kind == VQS_COLL_OP_DELETE ? s->iids : s->old;
        size_t m = 0, ng = op->kind == VQS_COLL_OP_DELETE && !op->ids ? s->nsel : op->n;
        for (size_t i = 0; i < ng; i++)
            if (gone[i] != UINT64_MAX)
                gone[m++] = gone[i]; /* compacted in place: the array is not read again */
        if (c->ix) {
            vqs_index_remove(c->ix, m, (const int64_t *)(const void *)gone, NULL);
            c->graph_dirty |= m > 0;
        } else {
            coll_buf_remove(c, m, (const int64_t *)(const void *)gone);
        }
        delta -= (int64_t)m;
        if (op->kind == VQS_COLL_OP_DELETE) {
            s->nsel = m; /* how many it deleted */
            continue;
        }
        if (op->n == 0)
            continue;
        if (c->ix) {
            mrc = vqs_index_add_encoded(c->ix, op->n, s->codes, s->lists, (const int64_t *)(const void *)s->iids);
            c->graph_dirty = 1;
        } else
            mrc = coll_buf_append(c, op->n, s->y, s->iids);
        delta += (int64_t)op->n;
    }
    pthread_rwlock_unlock(&c->lock);
    __atomic_store_n(&c->count, (uint64_t)((int64_t)c->count + delta), __ATOMIC_RELAXED);
    if (mrc) /* committed but not applied in memory (ENOMEM): reopening recovers it */
        return vqs_seterr(mrc, "collection '%s': batch committed but not loaded in memory: %s", c->name,
                          vqs_errdetail());
    if (!c->ix && c->cfg.train_size && c->count >= c->cfg.train_size) {
        /* as vqs_coll_upsert: committed whatever training does */
        if (coll_train_locked(c, 0, NULL))
            fprintf(stderr, "vqs: collection '%s': automatic training at %llu points failed: %s\n", c->name,
                    (unsigned long long)c->count, vqs_errdetail());
        vqs_clearerr();
    }
    return 0;
}

/* operation op as it reaches vector m's record */
static vqs_coll_op op_for(const vqs_coll_op *op, size_t m)
{
    vqs_coll_op o = *op;
    o.x = op->xv ? op->xv[m] : op->x;
    o.xv = NULL;
    if (m)
        o.payloads = NULL; /* payloads are the collection's */
    return o;
}

int vqs_coll_apply(vqs_coll *c, size_t nops, const vqs_coll_op *ops,
                   void (*after_commit)(void *ctx, size_t n, const vqs_coll_change *changes), void *ctx)
{
    if (!c || (nops && !ops))
        return vqs_seterr(VQS_EINVAL, "coll_apply: NULL argument");
    if (c->primary)
        return vqs_seterr(VQS_EINVAL, "collection '%s': a vector's handle: write through its collection", c->name);
    size_t nv = c->nvec;
    for (size_t k = 0; k < nops; k++) {
        const vqs_coll_op *op = &ops[k];
        int vec = op->kind == VQS_COLL_OP_UPSERT || op->kind == VQS_COLL_OP_VECTORS;
        int sel = op->kind == VQS_COLL_OP_PAYLOAD || op->kind == VQS_COLL_OP_DELETE;
        int xok = !vec || !op->n || (op->xv ? 1 : op->x && nv == 1);
        for (size_t m = 0; vec && op->n && op->xv && m < nv; m++)
            xok &= op->xv[m] != NULL;
        if ((op->n && !op->ids && !sel) || !xok || (op->kind == VQS_COLL_OP_PAYLOAD && !op->edit) ||
            (op->kind == VQS_COLL_OP_DELETE && !op->ids && !op->edit))
            return vqs_seterr(VQS_EINVAL, "coll_apply: operation %zu: NULL argument%s", k,
                              vec && nv > 1 && !op->xv ? " (a collection of several named vectors: give all of "
                                                         "them, xv)" : "");
    }
    apply_ctx *A = calloc(nv, sizeof *A);
    vqs_coll_op *mops = calloc(nv * (nops ? nops : 1), sizeof *mops);
    int rc = 0;
    if (!A || !mops) {
        free(A);
        free(mops);
        return vqs_seterr(VQS_ENOMEM, "coll_apply: %zu operations", nops);
    }
    for (size_t m = 0; m < nv && !rc; m++) {
        vqs_coll *vc = vqs_coll_vector(c, m);
        A[m] = (apply_ctx){.c = vc, .nops = nops, .ops = mops + m * nops, .lead = m ? &A[0] : NULL};
        for (size_t k = 0; k < nops; k++)
            mops[m * nops + k] = op_for(&ops[k], m);
        if (!(A[m].st = calloc(nops ? nops : 1, sizeof *A[m].st)))
            rc = vqs_seterr(VQS_ENOMEM, "coll_apply: %zu operations", nops);
    }
    for (size_t m = 0; m < nv; m++) /* the collection first, then its vectors in order */
        pthread_mutex_lock(&vqs_coll_vector(c, m)->wlock);
    for (size_t m = 0; m < nv && !rc; m++) {
        apply_ctx *a = &A[m];
        for (size_t k = 0; k < nops && !rc; k++) {
            const vqs_coll_op *op = &a->ops[k];
            if ((op->kind == VQS_COLL_OP_UPSERT || op->kind == VQS_COLL_OP_VECTORS) && op->n)
                rc = prepare(a->c, k, op, &a->st[k]);
            if (!rc && (op->kind == VQS_COLL_OP_UPSERT || op->kind == VQS_COLL_OP_VECTORS ||
                        op->kind == VQS_COLL_OP_DELETE) &&
                !(a->st[k].iids = malloc(sizeof(uint64_t) * (op->n ? op->n : 1))))
                rc = vqs_seterr(VQS_ENOMEM, "coll_apply: %zu points", op->n);
        }
        a->before = a->c->vs ? vqs_vecstore_count(a->c->vs) : 0;
    }
    if (!rc && nv == 1) {
        rc = vqs_db_write(c->db, c->name, session, &A[0]);
    } else if (!rc) {
        const char *names[VQS_DB_MAX_VECTORS];
        for (size_t m = 0; m < nv; m++)
            names[m] = vqs_coll_vector(c, m)->name;
        group_apply G = {A, nv};
        rc = vqs_db_write_group(c->db, nv, names, group_session, &G);
    }
    if (rc) {
        char keep[512];
        snprintf(keep, sizeof keep, "%s", vqs_errdetail());
        for (size_t m = 0; m < nv; m++) {
            vqs_coll *vc = A[m].c;
            if (vc && vc->vs && vqs_vecstore_count(vc->vs) > A[m].before)
                vqs_vecstore_truncate(vc->vs, A[m].before);
        }
        vqs_seterr(rc, "%s", keep);
        goto done;
    }
    /* committed: the in-memory indexes follow */
    for (size_t m = 0; m < nv; m++) {
        int mrc = memory_apply(&A[m]);
        if (mrc && !rc) {
            rc = mrc;
            char keep[512];
            snprintf(keep, sizeof keep, "%s", vqs_errdetail());
            vqs_seterr(rc, "%s", keep);
        }
    }
    for (size_t k = 0; k < nops; k++)
        if (ops[k].kind == VQS_COLL_OP_DELETE && ops[k].ndeleted)
            *ops[k].ndeleted = A[0].st[k].nsel;
    if (after_commit)
        after_commit(ctx, A[0].nch, A[0].ch);
done:
    for (size_t m = nv; m-- > 0;)
        pthread_mutex_unlock(&vqs_coll_vector(c, m)->wlock);
    for (size_t m = 0; m < nv; m++) {
        changes_reset(&A[m]);
        free(A[m].ch);
        free(A[m].owned);
        free(A[m].sel);
        free(A[m].seltext);
        for (size_t k = 0; A[m].st && k < nops; k++)
            state_free(&A[m].st[k], &A[m].ops[k]);
        free(A[m].st);
    }
    free(A);
    free(mops);
    return rc;
}

int vqs_coll_upsert_vectors(vqs_coll *c, size_t n, const vqs_pid *ids, const float *const *xv,
                            const char *const *payloads)
{
    if (!c || (n && (!ids || !xv)))
        return vqs_seterr(VQS_EINVAL, "coll_upsert_vectors: NULL argument");
    if (c->nvec == 1 && !c->primary)
        return vqs_coll_upsert(c, n, ids, xv[0], payloads);
    vqs_coll_op op = {.kind = VQS_COLL_OP_UPSERT, .n = n, .ids = ids, .xv = xv, .payloads = payloads};
    return vqs_coll_apply(c, 1, &op, NULL, NULL);
}

int vqs_coll_scroll(vqs_coll *c, const vqs_pid *from, vqs_coll_point_fn fn, void *ctx)
{
    if (!c || !fn)
        return vqs_seterr(VQS_EINVAL, "coll_scroll: NULL argument");
    return vqs_db_scroll(c->db, coll_pts(c), from, fn, ctx);
}
