/*
 * api_internal.h: what the files of api/ share.
 *
 *   http.c           libmicrohttpd glue: connections, bodies, the work queue, the
 *                    api key, responses; vqs_server_start / vqs_server_stop
 *   routes.c         the route table (every endpoint) and dispatch
 *   metrics.c        the per-route counters and the text of /metrics
 *   request.c        reading a request: JSON body, point ids, vectors, counts,
 *                    with_payload, filter; its deadline and response budget
 *   registry.c       the open collections and their payload caches
 *   h_collections.c  list, describe, create, drop, train, PATCH
 *   h_aliases.c      collection aliases: change, list, resolve
 *   h_points.c       upsert, retrieve, count, delete; a point's JSON
 *   h_payload.c      payload and vector updates, points/batch (atomic)
 *   h_scroll.c       points/scroll
 *   h_search.c       search (JSON and binary), search batch; the parsing the
 *                    search variants share
 *   h_query.c        query (prefetch, fusion, mmr, recommend), its batch and
 *                    groups, recommend, search groups
 *   filter.c         Qdrant's payload filters
 *   h_index.c        payload indexes (PUT/DELETE .../index), payload_schema
 *   plan.c           the filtered-search planner (payload index or scan)
 *   vectors.c        a collection's vectors (unnamed or named) in requests and
 *                    answers: points' vectors, "using", query vectors, with_vector
 *
 * Functions shared between the files carry the api_ prefix (libvqs_api is
 * linked into programs with other libraries); fail, status_of and ok, used
 * by every file, are static inline here.
 */
#ifndef VQS_API_INTERNAL_H
#define VQS_API_INTERNAL_H

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "vqs_collection.h"
#include "vqs_http.h"
#include "vqs_index.h"
#include "vqs_store.h"

struct MHD_Connection;
struct MHD_Daemon;

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

/* ---- the server ------------------------------------------------------------------ */

typedef struct pl_entry {
    json_t *payload;
    vqs_pid id;
} pl_entry;

typedef struct entry {
    char name[64];
    vqs_coll *c;
    char open_error[512]; /* non-empty: could not be opened */
    pthread_rwlock_t plock; /* the payload cache */
    int pl_loaded;
    pl_entry *pl;
    size_t npl;
    struct entry *next;
} entry;

typedef struct conn_track conn_track;       /* defined in http.c */
typedef struct route_metrics route_metrics; /* defined in metrics.c */

struct req;

struct vqs_server {
    vqs_catalog *cat; /* the data directory: every collection is reached through it */
    vqs_server_opts o;
    char host[64];
    struct MHD_Daemon *d;
    int port;
    pthread_rwlock_t reg;
    entry *colls;
    vqs_db_alias *aliases; /* every alias, sorted by alias (under reg; api_aliases_load) */
    size_t naliases;
    pthread_mutex_t mlock;
    route_metrics *m; /* api_route_count() + 1: one per route, the last for "unknown" */
    uint64_t active; /* requests in flight (atomic) */
    uint64_t op_id;  /* atomic */
    /* the work queue: a ring of qcap requests, nworkers workers */
    pthread_mutex_t qlock;
    pthread_cond_t qcond;
    struct req **queue;
    size_t qcap, qhead, qlen, qreserved;
    int qstop;
    pthread_t *workers;
    int nworkers, busy_workers; /* busy_workers: under qlock */
    uint64_t rejected_full, reaped; /* atomic counters for /metrics */
    size_t body_bytes;              /* request bodies held in memory, all connections (atomic) */
    /* the reaper */
    pthread_mutex_t clock_;
    pthread_cond_t ccond;
    conn_track *conns;
    int cstop, reaper_on;
    pthread_t reaper;
};

/* ---- responses ------------------------------------------------------------------- */

typedef struct resp {
    int code;
    json_t *result;   /* "result" (stolen) */
    char err[1024];   /* error message (code >= 400) */
    char *raw;        /* a non-JSON body (metrics, healthz), malloc'd */
    const char *ctype;
    int retry_after;  /* seconds, for a 503; 0: no Retry-After header */
    char allow[64];   /* a 405's Allow header: the methods of the path ("GET, PUT"); "": none */
} resp;

static inline int fail(resp *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline int fail(resp *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    r->code = code;
    return code;
}

/* HTTP status of a vqs error: the caller's input (4xx) or the server (5xx) */
static inline int status_of(int rc)
{
    if (rc == VQS_EINVAL || rc == VQS_ENONFINITE || rc == VQS_ERANGE || rc == VQS_ESPEC || rc == VQS_EEMPTY ||
        rc == VQS_EBADDIM || rc == VQS_EDIMMISMATCH || rc == VQS_EUSAGE)
        return 400;
    if (rc == VQS_ENOTFOUND)
        return 404;
    if (rc == -ENOSPC || rc == -EFBIG || rc == -EDQUOT)
        return 507;
    if (rc == -ETIMEDOUT)
        return 503;
    return 500;
}

static inline int ok(resp *r, json_t *result)
{
    r->code = 200;
    r->result = result;
    return 200;
}

/* ---- requests (request.c) -------------------------------------------------------- */

typedef struct req {
    char *body;
    size_t len, cap;
    int too_big;
    int over_total; /* the server holds --max-body-total bytes of bodies: 503 */
    size_t held;    /* bytes of s->body_bytes this request accounts for */
    int started; /* the headers have been seen (first call of on_request) */
    int counted;
    double t0;
    double deadline;  /* vqs_now() time past which the request's work stops (503) */
    char *raw_url;    /* the request target as sent (URI log callback), malloc'd */
    char path[2048];  /* its path, decoded once (api_decode_path) when the request is complete */
    size_t out_bytes; /* estimated size of the response built so far */
    /* a queued request: the worker fills r and route, then resumes conn */
    struct MHD_Connection *conn;
    const char *method;
    int queued, done, route;
    resp r;
} req;

typedef struct payload_sel {
    int on;
    json_t *include, *exclude; /* arrays of keys (borrowed) */
} payload_sel;

int api_check_deadline(const req *q, resp *r);
int api_charge(const vqs_server *s, req *q, const json_t *o, size_t vec_d, resp *r);
json_t *api_parse_body(const req *q, resp *r);
int api_parse_id(const json_t *v, vqs_pid *p, resp *r, const char *where);
json_t *api_id_json(const vqs_pid *p);
int api_parse_vector(const json_t *v, size_t d, float *out, resp *r, const char *where);
int api_get_bool(const json_t *j, const char *k, int def, int *out, resp *r);
int api_get_count(const json_t *j, const char *k, size_t def, size_t max, size_t *out, resp *r);
int api_parse_with_payload(const json_t *j, int def, payload_sel *ps, resp *r);
json_t *api_select_payload(const payload_sel *ps, json_t *p);
/* the request's "filter", compiled; NULL if it has none, or with r set (400) */
vqs_filter *api_get_filter(const json_t *j, resp *r);

/* ---- the registry and the payload cache (registry.c) ----------------------------- */

/* s->reg held for writing (or not yet shared, at start) */
entry *api_entry_open(vqs_server *s, const char *name);
void api_entry_free(entry *e);
/* s->reg held */
entry *api_entry_find(vqs_server *s, const char *name);

/* e->plock held for writing; -1: out of memory */
int api_pl_set(entry *e, uint64_t iid, const vqs_pid *id, json_t *payload);
int api_pl_ensure(entry *e, resp *r);
int api_matching_ids(entry *e, const vqs_filter *f, vqs_pid **out, size_t *n);

typedef struct filter_ctx {
    entry *e;
    const vqs_filter *f;
} filter_ctx;

/* the index's filter callback (vqs_coll_search_params.filter), ctx a filter_ctx */
int api_filter_cb(void *ctx, int64_t iid);

/* ---- handlers (h_collections.c, h_points.c, h_search.c) -------------------------- */

/* Each answers the request through r and returns its HTTP status. */
int api_h_list(vqs_server *s, resp *r);
int api_h_get_coll(entry *e, resp *r);
int api_h_create(vqs_server *s, const char *name, const req *q, resp *r);
int api_h_drop(vqs_server *s, const char *name, resp *r);
int api_h_train(entry *e, resp *r);

int api_h_upsert_json(vqs_server *s, entry *e, const req *q, resp *r);
int api_h_upsert_bin(vqs_server *s, entry *e, const req *q, resp *r);
int api_h_retrieve(vqs_server *s, entry *e, req *q, resp *r, const char *one_id);
int api_h_count(entry *e, const req *q, resp *r);
int api_h_delete(vqs_server *s, entry *e, const req *q, resp *r);
/* A point as Qdrant shows it; NULL with r set when its vector cannot be read
 * (never a point with a part silently missing). text: its payload as read
 * with its id (NULL: none), used unless the payload cache is loaded. */
json_t *api_point_json(entry *e, const vqs_pid *id, int64_t iid, const payload_sel *ps, unsigned with_vector,
                       const float *score, const char *text, resp *r);
/* 400 unless every field of object j is in known (NULL-terminated); a field
 * Qdrant has that vqs does not implement is named as "not supported by
 * vqs". where: what j is, for the message. */
int api_check_fields(const json_t *j, const char *where, const char *const *known, resp *r);
/* ---- vectors (vectors.c) ---------------------------------------------------------- */

/* The vectors of n points: one array per vector of the collection (x[i]:
 * n * d[i] floats), as vqs_coll_upsert_vectors and vqs_coll_op.xv take them. */
typedef struct vecs {
    size_t nv, n;
    size_t d[VQS_DB_MAX_VECTORS];
    float *x[VQS_DB_MAX_VECTORS];
} vecs;
int api_vecs_alloc(entry *e, size_t n, vecs *v, resp *r);
void api_vecs_free(vecs *v);
/* Point i's vectors into out, in Qdrant's forms: [...] or {"": [...]} for
 * the unnamed vector, {"name": [...], ...} with every named vector (a
 * missing one is a 400: a vqs point has all of them); unknown names,
 * sparse, multi-vectors and inference objects are a 400 saying so. */
int api_parse_point_vectors(entry *e, const json_t *v, vecs *out, size_t i, resp *r, const char *where);
/* The vector j's "using" names (absent, null or "": the unnamed vector). */
int api_get_using(entry *e, const json_t *j, size_t *vi, resp *r);
/* A query vector: an array (of vector *vi, or with *vi SIZE_MAX of the
 * unnamed vector) or {"name": N, "vector": [...]} (which sets *vi; a
 * different *vi already set by "using" is a 400). *out: malloc'd, the
 * vector's d floats. */
int api_query_vector(entry *e, const json_t *v, size_t *vi, float **out, resp *r, const char *where);
/* j's "with_vector" (absent, false, true, or a list of vector names) as a
 * mask of vectors (bit i: vector i); a vector that keeps no vectors is a
 * 400. api_wv_dims: the floats a point's answer holds for a mask. */
int api_get_with_vector(entry *e, const json_t *j, unsigned *wv, resp *r);
size_t api_wv_dims(entry *e, unsigned wv);
/* A point's vectors of mask wv: an array (unnamed) or {"name": [...]};
 * *out NULL if the point is gone. */
int api_vectors_json(entry *e, const vqs_pid *id, unsigned wv, json_t **out, resp *r);

/* An upsert body ({"points": [...]} or {"batch": {...}}), checked whole:
 * ids, vectors, payloads (borrowed from the body) and their texts. */
typedef struct upsert_req {
    size_t n;
    vqs_pid *ids;
    vecs v;
    json_t **pay;
    char **texts; /* n compact JSON texts or NULL (no or empty payload) */
} upsert_req;
int api_parse_upsert(vqs_server *s, entry *e, const json_t *j, upsert_req *u, resp *r);
void api_upsert_req_free(upsert_req *u);

/* what the body of a search request holds */
typedef enum search_kind {
    SEARCH_ONE,   /* POST .../points/search: one search, answered with its points */
    SEARCH_BATCH, /* POST .../points/search/batch: {"searches": [...]}, a list of answers */
} search_kind;

int api_h_search(vqs_server *s, entry *e, req *q, resp *r, search_kind kind);

/* Shared by the search variants (h_search.c). api_check_keys: every key of
 * the object j is in known (NULL-terminated), or in unsup (Qdrant fields vqs
 * does not implement: accepted only when null), else a 400 naming it and
 * where. api_parse_params: a request's "params" into sp (p may be NULL). */
int api_check_keys(const json_t *j, const char *const *known, const char *const *unsup, const char *where, resp *r);
/* a request's "score_threshold" (absent or null: *has left 0) */
int api_get_threshold(const json_t *j, int *has, float *thr, resp *r);
/* p's settings into sp, for a search of vector handle vc */
int api_parse_params(vqs_coll *vc, const json_t *p, vqs_coll_search_params *sp, resp *r);
int api_h_search_bin(vqs_server *s, entry *e, struct MHD_Connection *conn, req *q, resp *r);

/* ---- the points API beyond upsert/retrieve/delete (h_payload.c, h_scroll.c) ---- */

typedef enum payload_op {
    PAYLOAD_SET,       /* POST .../points/payload: merge keys into the payload (or at "key") */
    PAYLOAD_OVERWRITE, /* PUT .../points/payload: replace the payload */
    PAYLOAD_DELETE,    /* POST .../points/payload/delete: remove "keys" */
    PAYLOAD_CLEAR,     /* POST .../points/payload/clear: remove the whole payload */
} payload_op;

int api_h_payload(vqs_server *s, entry *e, const req *q, resp *r, payload_op op);
int api_h_update_vectors(vqs_server *s, entry *e, const req *q, resp *r);  /* PUT .../points/vectors */
int api_h_delete_vectors(vqs_server *s, entry *e, const req *q, resp *r);  /* POST .../points/vectors/delete */
int api_h_batch(vqs_server *s, entry *e, const req *q, resp *r);           /* POST .../points/batch */
int api_h_scroll(vqs_server *s, entry *e, req *q, resp *r);                /* POST .../points/scroll */

/* ---- search variants (h_query.c) ---- */

typedef enum query_kind {
    QUERY_ONE,    /* POST .../points/query */
    QUERY_BATCH,  /* POST .../points/query/batch */
    QUERY_GROUPS, /* POST .../points/query/groups */
} query_kind;

int api_h_query(vqs_server *s, entry *e, req *q, resp *r, query_kind kind);
int api_h_recommend(vqs_server *s, entry *e, req *q, resp *r, query_kind kind); /* .../points/recommend[/batch|/groups] */
int api_h_search_groups(vqs_server *s, entry *e, req *q, resp *r);            /* .../points/search/groups */

/* ---- collections: PATCH, aliases (h_collections.c, h_aliases.c) ---- */

/* PATCH /collections/{name} (name: checked, possibly an alias; takes s->reg for writing) */
int api_h_patch(vqs_server *s, const char *name, const req *q, resp *r);
int api_h_aliases_update(vqs_server *s, const req *q, resp *r);   /* POST /collections/aliases */
/* GET /aliases (name NULL; takes s->reg) and GET /collections/{name}/aliases
 * (name: a collection; s->reg held) */
int api_h_aliases_list(vqs_server *s, const char *name, resp *r);
/* Reads the aliases from the catalog into s->aliases (at start, and after
 * every change of them or drop of a collection); s->reg held for writing
 * (or not yet shared). 0, or a vqs code with the detail set. */
int api_aliases_load(vqs_server *s);
/* The collection alias names, or NULL; s->reg held. */
const char *api_alias_resolve(const vqs_server *s, const char *alias);

/* ---- payload indexes (h_index.c) ---- */

int api_h_index_create(vqs_server *s, entry *e, const req *q, resp *r);                 /* PUT .../index */
int api_h_index_delete(vqs_server *s, entry *e, const req *q, resp *r, const char *field); /* DELETE .../index/{field} */
/* collection info's "payload_schema": {field: {"data_type": t, "points": n}}; NULL (detail set) on failure */
json_t *api_payload_schema(entry *e);

/* ---- the filtered-search planner (plan.c) ---- */

/* 1: the filter's indexed conditions bound it to the *n points of *iids
 * (malloc'd, sorted; score them exactly with vqs_coll_search_ids, applying
 * the whole filter); 0: filter during the scan; -1: r is set (500). */
int api_plan_filter(entry *e, vqs_coll *vc, const json_t *filter, size_t nprobe, uint64_t **iids, size_t *n, resp *r);

/* ---- metrics (metrics.c) --------------------------------------------------------- */

/* A request is counted under its route (an index into the route table) or,
 * when no route took it, under "unknown". */
#define ROUTE_UNKNOWN (-1)

/* s->m: api_route_count() + 1 slots, zeroed; NULL: out of memory (free with free) */
route_metrics *api_metrics_new(void);
void api_metrics_record(vqs_server *s, int route, int code, double secs);
/* malloc'd; NULL: out of memory */
char *api_metrics_text(vqs_server *s);

/* ---- routing (routes.c) ---------------------------------------------------------- */

int api_decode_path(const char *raw, char *out, size_t cap, resp *r);
int api_dispatch(vqs_server *s, struct MHD_Connection *conn, const char *method, const char *url, req *q, resp *r,
                 int *route);
int api_is_cheap(const char *method, const char *path);
int api_is_public(const char *method, const char *path);
/* the routes, and their metric names (ROUTE_UNKNOWN: "unknown") */
int api_route_count(void);
const char *api_route_name(int route);

#endif
