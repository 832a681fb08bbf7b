/*
 * catalog.c: the collections of one data directory (vqs_collection.h):
 * open and list them, create, drop and describe one; the rerank names, the
 * configuration's defaults and its conversion to storage's record, and the
 * vector file's name.
 *
 * Design decisions:
 * - A catalog is storage's LMDB handle plus the options its collections
 *   open with: it adds no state of its own, so a tool opens one, does one
 *   thing and closes it, and the server keeps one for its life. It does
 *   not track which collections are open (the server's registry does).
 * - Create is all or nothing in this order: check everything (the spec by
 *   building an index of it, which is the only complete check of a spec),
 *   write the records (storage refuses an existing name before anything
 *   is touched), then replace any stale NAME.vec by an empty vector file;
 *   if that fails, the records are removed again. Records first because
 *   an existing collection's vector file must never be touched by a
 *   create that is going to fail with -EEXIST. A crash between the two
 *   steps leaves a collection without a vector file, which vqs_coll_open
 *   creates (nothing is committed yet), so it is still a whole collection.
 * - Drop removes the records first (one transaction: from then on the
 *   collection is gone), then the vector file, which is only garbage by
 *   then: a failure to unlink it is a warning, not an error.
 * - The stored configuration is storage's vqs_db_config (bytes it keeps
 *   without interpreting); this layer's vqs_coll_config carries the enums.
 *   The conversion is field by field, so neither struct's layout has to
 *   match the other's.
 * Rejected: a catalog that tracks its open collections (and refuses to
 *   drop one that is open): the server's registry already serialises
 *   create, drop and open, and a tool opens one collection at a time; the
 *   rule is written on vqs_coll_drop instead.
 */
#define _GNU_SOURCE
#include "coll_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- rerank names and the configuration ---------------------------------------- */

static const char *const rerank_names[] = {
    [VQS_RERANK_NONE] = "none",
    [VQS_RERANK_DISK] = "disk",
    [VQS_RERANK_MEMORY] = "memory",
};
#define NRERANK (sizeof rerank_names / sizeof rerank_names[0])

const char *vqs_rerank_name(vqs_rerank r) { return (unsigned)r < NRERANK ? rerank_names[r] : "?"; }

int vqs_rerank_parse(const char *s, vqs_rerank *out)
{
    for (unsigned i = 0; s && i < NRERANK; i++)
        if (!strcmp(s, rerank_names[i])) {
            *out = (vqs_rerank)i;
            return 0;
        }
    return vqs_seterr(VQS_EINVAL, "rerank '%s': want disk, memory or none", s ? s : "(null)");
}

void coll_config_from_db(const vqs_db_config *in, vqs_coll_config *out)
{
    memset(out, 0, sizeof *out);
    out->d = in->d;
    out->metric = (vqs_metric)in->metric;
    memcpy(out->spec, in->spec, sizeof out->spec);
    out->rerank = (vqs_rerank)in->rerank;
    out->nprobe = in->nprobe;
    out->oversampling = in->oversampling;
    out->train_size = in->train_size;
    out->sq_clip = in->sq_clip;
}

void coll_config_to_db(const vqs_coll_config *in, vqs_db_config *out)
{
    memset(out, 0, sizeof *out);
    out->d = in->d;
    out->metric = (uint32_t)in->metric;
    memcpy(out->spec, in->spec, sizeof out->spec);
    out->rerank = (uint32_t)in->rerank;
    out->nprobe = in->nprobe;
    out->oversampling = in->oversampling;
    out->train_size = in->train_size;
    out->sq_clip = in->sq_clip;
}

_Static_assert(sizeof ((vqs_coll_config *)0)->spec == sizeof ((vqs_db_config *)0)->spec,
               "the spec is copied whole between the two configurations");

int vqs_coll_check_name(const char *name, size_t n) { return vqs_db_check_name(name, n); }

int vqs_coll_config_check(const char *name, const vqs_coll_config *in, vqs_coll_config *filled)
{
    if (!in)
        return vqs_seterr(VQS_EINVAL, "coll_config_check: NULL argument");
    if (!name)
        name = "";
    vqs_coll_config cf = *in, *cfg = &cf;
    if (!cfg->nprobe)
        cfg->nprobe = VQS_COLL_DEFAULT_NPROBE;
    if (cfg->oversampling == 0)
        cfg->oversampling = VQS_COLL_DEFAULT_OVERSAMPLING;
    if (cfg->d == 0 || cfg->d > VQS_MAX_DIM_DEFAULT)
        return vqs_seterr(VQS_EINVAL, "collection '%s': dimension %u (1..%d)", name, cfg->d, VQS_MAX_DIM_DEFAULT);
    if ((unsigned)cfg->metric > VQS_METRIC_COS)
        return vqs_seterr(VQS_EINVAL, "collection '%s': metric %d", name, (int)cfg->metric);
    if ((unsigned)cfg->rerank >= NRERANK)
        return vqs_seterr(VQS_EINVAL, "collection '%s': rerank %d (0 none, 1 disk, 2 memory)", name,
                          (int)cfg->rerank);
    if (!(cfg->oversampling >= 1 && cfg->oversampling <= 1e6f))
        return vqs_seterr(VQS_EINVAL, "collection '%s': oversampling %g (1..1e6)", name, (double)cfg->oversampling);
    if (!(cfg->sq_clip == 0 || (cfg->sq_clip > 0.5f && cfg->sq_clip <= 1.0f)))
        return vqs_seterr(VQS_EINVAL, "collection '%s': sq_clip %g (0: default, or a quantile in (0.5, 1])", name,
                          (double)cfg->sq_clip);
    if (!memchr(cfg->spec, 0, sizeof cfg->spec))
        return vqs_seterr(VQS_ESPEC, "collection '%s': spec longer than %zu characters", name,
                          sizeof cfg->spec - 1);
    /* the spec must build for this dimension and metric; the index's detail
     * is the message (callers show it as it is) */
    vqs_index *ix = NULL;
    int rc = vqs_index_create(cfg->spec, cfg->d, cfg->metric, NULL, &ix);
    vqs_index_free(ix);
    if (!rc && filled)
        *filled = cf;
    return rc;
}

int coll_vec_path(vqs_db *db, const char *name, char *buf, size_t n)
{
    int len = snprintf(buf, n, "%s/%s.vec", vqs_db_dir(db), name);
    if (len < 0 || (size_t)len >= n)
        return vqs_seterr(VQS_EINVAL, "collection '%s': the vector file's path is too long", name);
    return 0;
}

/* ---- the catalog --------------------------------------------------------------- */

int vqs_catalog_open(const char *dir, const vqs_catalog_opts *o, vqs_catalog **out)
{
    if (!dir || !out)
        return vqs_seterr(VQS_EINVAL, "catalog_open: NULL argument");
    *out = NULL;
    vqs_catalog *cat = calloc(1, sizeof *cat);
    if (!cat)
        return vqs_seterr(VQS_ENOMEM, "catalog_open");
    vqs_db_opts dbo = {0};
    if (o) {
        dbo.read_only = o->read_only;
        dbo.map_size = o->map_size;
        dbo.max_map_size = o->max_map_size;
        cat->coll = o->coll;
    }
    int rc = vqs_db_open(dir, &dbo, &cat->db);
    if (rc) {
        free(cat);
        return rc;
    }
    *out = cat;
    return 0;
}

void vqs_catalog_close(vqs_catalog *cat)
{
    if (!cat)
        return;
    vqs_db_close(cat->db);
    free(cat);
}

const char *vqs_catalog_dir(const vqs_catalog *cat) { return vqs_db_dir(cat->db); }
int vqs_catalog_is_read_only(const vqs_catalog *cat) { return vqs_db_is_read_only(cat->db); }
size_t vqs_catalog_map_size(const vqs_catalog *cat) { return vqs_db_map_size(cat->db); }

int vqs_catalog_list(vqs_catalog *cat, char ***names, size_t *n)
{
    if (!cat)
        return vqs_seterr(VQS_EINVAL, "catalog_list: NULL argument");
    return vqs_db_list(cat->db, names, n);
}

void vqs_catalog_list_free(char **names, size_t n) { vqs_db_list_free(names, n); }

/* ---- create, drop, describe ------------------------------------------------------ */

int vqs_coll_create(vqs_catalog *cat, const char *name, const vqs_coll_config *in)
{
    if (!cat || !name || !in)
        return vqs_seterr(VQS_EINVAL, "coll_create: NULL argument");
    vqs_coll_config cfg;
    char keep[512];
    int rc = vqs_coll_config_check(name, in, &cfg);
    if (rc)
        return rc;
    vqs_db_config dc;
    coll_config_to_db(&cfg, &dc);
    /* storage checks the name before anything is written or a path built */
    if ((rc = vqs_coll_check_name(name, strlen(name))) || (rc = vqs_db_create(cat->db, name, &dc)))
        return rc;
    if ((rc = coll_vec_create(cat->db, name, &cfg)))
        goto fail;
    return 0;
fail:
    /* remove the records again, keeping the first error */
    snprintf(keep, sizeof keep, "%s", vqs_errdetail());
    vqs_db_drop(cat->db, name);
    return vqs_seterr(rc, "%s", keep);
}

int coll_vec_create(vqs_db *db, const char *name, const vqs_coll_config *cfg)
{
    char vp[4200];
    int rc = coll_vec_path(db, name, vp, sizeof vp);
    if (rc)
        return rc;
    /* a vector file left by a collection of the same name dropped by hand
     * (or by a drop that could not remove it); whatever stays in the way
     * (a directory) fails the create below */
    unlink(vp);
    char gp[4300]; /* and its graph snapshot (collection.c), which would fit a new graph of the same ids */
    snprintf(gp, sizeof gp, "%s.graph", vp);
    unlink(gp);
    if (cfg->rerank != VQS_RERANK_NONE) {
        vqs_vecstore_opts vo = {.backend = VQS_VS_PREAD, .buffered = 1};
        vqs_vecstore *vs = NULL;
        if ((rc = vqs_vecstore_open(vp, cfg->d, 0, &vo, &vs))) {
            unlink(vp); /* if the open created the file before failing */
            return rc;
        }
        vqs_vecstore_close(vs);
    }
    return 0;
}

int vqs_coll_create_named(vqs_catalog *cat, const char *name, size_t n, const char *const *vnames,
                          const vqs_coll_config *in)
{
    if (!cat || !name || !vnames || !in)
        return vqs_seterr(VQS_EINVAL, "coll_create_named: NULL argument");
    if (n == 0 || n > VQS_DB_MAX_VECTORS)
        return vqs_seterr(VQS_EINVAL, "collection '%s': %zu named vectors (1..%d)", name, n, VQS_DB_MAX_VECTORS);
    vqs_coll_config cfg[VQS_DB_MAX_VECTORS];
    vqs_db_config dc[VQS_DB_MAX_VECTORS];
    char keep[512];
    int rc = vqs_coll_check_name(name, strlen(name));
    for (size_t i = 0; i < n && !rc; i++) {
        if ((rc = vqs_db_check_vector_name(vnames[i])))
            return vqs_seterr(rc, "collection '%s': %s", name, vqs_errdetail());
        if ((rc = vqs_coll_config_check(name, &in[i], &cfg[i])))
            return vqs_seterr(rc, "vector '%s': %s", vnames[i], vqs_errdetail());
        coll_config_to_db(&cfg[i], &dc[i]);
    }
    if (rc || (rc = vqs_db_create_group(cat->db, name, n, vnames, dc)))
        return rc;
    for (size_t i = 0; i < n && !rc; i++) {
        char rn[80];
        if (!(rc = vqs_db_vector_rec_name(name, i, rn, sizeof rn)))
            rc = coll_vec_create(cat->db, rn, &cfg[i]);
    }
    if (!rc)
        return 0;
    snprintf(keep, sizeof keep, "%s", vqs_errdetail());
    vqs_coll_drop(cat, name);
    return vqs_seterr(rc, "%s", keep);
}

int vqs_coll_describe_vector(vqs_catalog *cat, const char *name, size_t i, vqs_coll_info *info)
{
    if (!cat || !name || !info)
        return vqs_seterr(VQS_EINVAL, "coll_describe_vector: NULL argument");
    char rn[80];
    int rc = vqs_coll_check_name(name, strlen(name));
    if (rc || (rc = vqs_db_vector_rec_name(name, i, rn, sizeof rn)))
        return rc;
    return coll_describe(cat->db, rn, info);
}

int vqs_coll_describe_vectors(vqs_catalog *cat, const char *name, char ***vnames, size_t *n)
{
    if (!cat || !name || !vnames || !n)
        return vqs_seterr(VQS_EINVAL, "coll_describe_vectors: NULL argument");
    return vqs_db_vectors(cat->db, name, vnames, n);
}

int vqs_coll_drop(vqs_catalog *cat, const char *name)
{
    if (!cat || !name)
        return vqs_seterr(VQS_EINVAL, "coll_drop: NULL argument");
    char **vn = NULL;
    size_t nv = 0;
    int rc = vqs_coll_check_name(name, strlen(name));
    if (rc || (rc = vqs_db_vectors(cat->db, name, &vn, &nv)) || (rc = vqs_db_drop(cat->db, name))) {
        vqs_db_vectors_free(vn, nv);
        return rc;
    }
    vqs_db_vectors_free(vn, nv);
    /* the records are gone (committed): the vector files are now garbage */
    for (size_t i = 0; i < (nv ? nv : 1); i++) {
        char vp[4200], rn[80];
        if (vqs_db_vector_rec_name(name, i, rn, sizeof rn) == 0 && coll_vec_path(cat->db, rn, vp, sizeof vp) == 0 &&
            unlink(vp) != 0 && errno != ENOENT)
            fprintf(stderr, "vqs: warning: collection '%s' dropped, but its vector file %s is left: %s\n", name, vp,
                    strerror(errno));
        char gp[4300];
        snprintf(gp, sizeof gp, "%s.graph", vp);
        unlink(gp); /* a graph's snapshot, if any */
    }
    vqs_clearerr();
    return 0;
}

int coll_describe(vqs_db *db, const char *name, vqs_coll_info *info)
{
    vqs_db_stats st;
    int rc = vqs_db_info(db, name, &st);
    if (rc)
        return rc;
    memset(info, 0, sizeof *info);
    coll_config_from_db(&st.cfg, &info->cfg);
    info->count = st.count;
    info->next_iid = st.next_iid;
    info->deleted = st.deleted;
    info->code_bytes = st.code_bytes;
    info->payload_bytes = st.payload_bytes;
    info->trained = st.trained;
    info->rerank_backend = "none";
    char vp[4200];
    struct stat sb;
    if (info->cfg.rerank != VQS_RERANK_NONE && coll_vec_path(db, name, vp, sizeof vp) == 0 && stat(vp, &sb) == 0)
        info->vector_bytes = (uint64_t)sb.st_size;
    vqs_clearerr();
    return 0;
}

int vqs_coll_describe(vqs_catalog *cat, const char *name, vqs_coll_info *info)
{
    if (!cat || !name || !info)
        return vqs_seterr(VQS_EINVAL, "coll_describe: NULL argument");
    int rc = vqs_coll_check_name(name, strlen(name));
    return rc ? rc : coll_describe(cat->db, name, info);
}
