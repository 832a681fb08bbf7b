/*
 * server.c: `vqs serve` (vqs_http.h): libmicrohttpd with an internal thread
 * pool, Qdrant's REST shapes ({"result": ..., "status": "ok", "time": s};
 * errors {"status": {"error": "..."}, "time": s}), the binary float32 fast
 * path, Prometheus metrics, graceful stop.
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
 * - Upserts are durable before the response whatever "wait" says (the
 *   storage layer fsyncs each batch), so "status" is always "completed".
 * - Bodies are read into memory up to max_body; a larger Content-Length is
 *   refused (413) before the body is read.
 * - The API key is compared in constant time over the longer of the two
 *   lengths.
 * - Work is bounded per request, and cheap requests never wait behind
 *   expensive ones. libmicrohttpd's threads only parse requests and send
 *   responses; a request that can be expensive (every PUT, DELETE and POST
 *   but count) is suspended and queued for a fixed pool of workers, so a
 *   GET or a count is answered by the I/O threads while every worker is
 *   busy. A full queue answers 503 with Retry-After at once. Each request
 *   has a deadline (--timeout, or Qdrant's ?timeout= if shorter) counted
 *   from its arrival: the search kernels check it every 1,024 codes and stop
 *   with 503. Σ (limit + offset) over a request's searches, the candidates
 *   they re-score, and the size of the response (estimated as it is built)
 *   have limits of their own, refused with 400 before the work is done.
 *   Bodies are held in memory until complete, so their total over every
 *   connection is bounded too (--max-body-total, 503 past it).
 *   Rejected: libmicrohttpd's thread-per-connection mode (a thread per
 *   connection, and still no bound on the work of each).
 * - Connections: a global and a per-address limit (libmicrohttpd's), an
 *   idle timeout (libmicrohttpd's; it is reset by every byte, so a client
 *   that sends one byte every few seconds keeps it alive), and a read
 *   deadline for the whole request: a reaper thread shuts down (shutdown(2),
 *   so libmicrohttpd closes it on its own path) a connection that has not
 *   delivered a complete request within --read-timeout of its start or of
 *   its previous response. A tracked connection leaves the reaper's list in
 *   libmicrohttpd's "closed" notification, which comes before the socket is
 *   closed, so the reaper never touches a reused descriptor.
 * - Paths are routed from the raw request target (libmicrohttpd's URI log
 *   callback) decoded once here: libmicrohttpd's own unescaping turns %00
 *   into a terminating NUL, so "victim%00.tmp" would address "victim".
 *   A control byte, NUL, an encoded '/' or a malformed escape is a 400.
 */
#define _GNU_SOURCE
#include "vqs_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api_internal.h"
#include "vqs_collection.h"
#include "vqs_index.h"

#define QDRANT_COMPAT_VERSION "1.16.0" /* the client version tests/api/qdrant_client drives it with */
#define VQS_API_VERSION "0.1.0"

/* ---- metrics --------------------------------------------------------------- */

enum route {
    R_ROOT, R_HEALTH, R_METRICS, R_COLLS, R_COLL_GET, R_COLL_PUT, R_COLL_DEL, R_COLL_EXISTS, R_UPSERT,
    R_RETRIEVE, R_GETPOINT, R_DELETE, R_COUNT, R_SEARCH, R_SEARCH_BATCH, R_QUERY, R_TRAIN, R_SCROLL,
    R_UNKNOWN, R_N
};
static const char *route_name[R_N] = {
    "root", "healthz", "metrics", "list_collections", "get_collection", "create_collection",
    "delete_collection", "collection_exists", "upsert_points", "retrieve_points", "get_point",
    "delete_points", "count_points", "search", "search_batch", "query", "train", "scroll", "unknown"};
static const double hist_le[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                 0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};
#define NB (sizeof hist_le / sizeof hist_le[0])

typedef struct route_metrics {
    uint64_t req, err4, err5;
    uint64_t bucket[NB + 1];
    double sum; /* guarded by the server's metrics mutex */
} route_metrics;

/* ---- collections ------------------------------------------------------------- */

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

/* A connection as the reaper sees it (libmicrohttpd's socket context). */
typedef struct conn_track {
    int fd;
    double mark; /* its start, or the end of its previous response */
    int busy;    /* a complete request is being processed or answered */
    int shut;    /* shut down by the reaper */
    struct conn_track *prev, *next;
} conn_track;

struct req;

struct vqs_server {
    vqs_db *db;
    vqs_server_opts o;
    char host[64];
    struct MHD_Daemon *d;
    int port;
    pthread_rwlock_t reg;
    entry *colls;
    pthread_mutex_t mlock;
    route_metrics m[R_N];
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

static void entry_free(entry *e)
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

static entry *entry_open(vqs_server *s, const char *name)
{
    entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    snprintf(e->name, sizeof e->name, "%s", name);
    pthread_rwlock_init(&e->plock, NULL);
    vqs_coll_opts co = {0};
    co.nthreads = s->o.threads;
    int rc = vqs_coll_open(s->db, name, &co, &e->c);
    if (rc) {
        snprintf(e->open_error, sizeof e->open_error, "collection '%s' could not be opened: %s (%s)", name,
                 vqs_errdetail(), vqs_err_name(rc));
        fprintf(stderr, "vqs serve: %s\n", e->open_error);
        e->c = NULL;
    }
    return e;
}

static entry *find(vqs_server *s, const char *name)
{
    for (entry *e = s->colls; e; e = e->next)
        if (!strcmp(e->name, name))
            return e;
    return NULL;
}

/* ---- responses --------------------------------------------------------------- */

typedef struct resp {
    int code;
    json_t *result;   /* "result" (stolen) */
    char err[1024];   /* error message (code >= 400) */
    char *raw;        /* a non-JSON body (metrics, healthz), malloc'd */
    const char *ctype;
    int retry_after;  /* seconds, for a 503; 0: no Retry-After header */
} resp;

static int fail(resp *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(resp *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    r->code = code;
    return code;
}

/* HTTP status of a vqs error: the caller's input (4xx) or the server (5xx) */
static int status_of(int rc)
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

static int ok(resp *r, json_t *result)
{
    r->code = 200;
    r->result = result;
    return 200;
}

/* ---- request parsing helpers ------------------------------------------------ */

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
    char path[2048];  /* its path, decoded once (decode_path) when the request is complete */
    size_t out_bytes; /* estimated size of the response built so far */
    /* a queued request: the worker fills r and route, then resumes conn */
    struct MHD_Connection *conn;
    const char *method;
    int queued, done, route;
    resp r;
} req;

/* 503 once the request's deadline has passed */
static int check_deadline(const req *q, resp *r)
{
    if (q->deadline > 0 && vqs_now() > q->deadline)
        return fail(r, 503, "the request ran past its deadline of %.3g s (--timeout, or ?timeout=) and was stopped",
                    q->deadline - q->t0);
    return 0;
}

/* Adds point o's JSON size (estimated: payload exact, vector 16 bytes an
 * element) to the response's; 400 once it passes --max-response. */
static int charge(const vqs_server *s, req *q, const json_t *o, size_t vec_d, resp *r)
{
    size_t b = 64 + vec_d * 16;
    const json_t *p = json_object_get(o, "payload");
    if (p)
        b += json_dumpb(p, NULL, 0, JSON_COMPACT);
    q->out_bytes += b;
    if (q->out_bytes > s->o.max_response)
        return fail(r, 400, "the response would pass %zu bytes (--max-response): ask for fewer points, fewer "
                            "payload keys or no vectors", s->o.max_response);
    return 0;
}

static json_t *parse_body(const req *q, resp *r)
{
    if (!q->len) {
        fail(r, 400, "the request needs a JSON body");
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(q->body, q->len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        fail(r, 400, "malformed JSON at line %d, column %d (byte %d): %s", je.line, je.column, je.position,
             je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        fail(r, 400, "the JSON body must be an object");
        return NULL;
    }
    return j;
}

static int parse_id(const json_t *v, vqs_pid *p, resp *r, const char *where)
{
    memset(p, 0, sizeof *p);
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0)
            return fail(r, 400, "%s: point id %lld is negative (ids are unsigned integers or UUIDs)", where,
                        (long long)json_integer_value(v));
        p->kind = VQS_PID_U64;
        p->u64 = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        if (vqs_pid_parse(json_string_value(v), p) || p->kind != VQS_PID_UUID) {
            vqs_clearerr();
            return fail(r, 400, "%s: point id \"%.80s\" is not a UUID (ids are unsigned integers or UUIDs)", where,
                        json_string_value(v));
        }
        return 0;
    }
    return fail(r, 400, "%s: a point id must be an unsigned integer or a UUID string", where);
}

static json_t *id_json(const vqs_pid *p)
{
    if (p->kind == VQS_PID_U64)
        return json_integer((json_int_t)p->u64);
    char b[40];
    return json_string(vqs_pid_format(p, b));
}

/* d floats from a JSON array; finite, in float range */
static int parse_vector(const json_t *v, size_t d, float *out, resp *r, const char *where)
{
    if (json_is_object(v))
        return fail(r, 400, "%s: named vectors are not supported; send the vector as an array of %zu numbers", where,
                    d);
    if (!json_is_array(v))
        return fail(r, 400, "%s: the vector must be an array of %zu numbers", where, d);
    if (json_array_size(v) != d)
        return fail(r, 400, "%s: vector of dimension %zu, the collection's is %zu", where, json_array_size(v), d);
    for (size_t i = 0; i < d; i++) {
        json_t *x = json_array_get(v, i);
        if (!json_is_number(x))
            return fail(r, 400, "%s: vector element %zu is not a number", where, i);
        double f = json_number_value(x);
        if (!isfinite(f) || fabs(f) > 3.4028234663852886e38)
            return fail(r, 400, "%s: vector element %zu (%g) is not a finite float32", where, i, f);
        out[i] = (float)f;
    }
    return 0;
}

static int get_bool(const json_t *j, const char *k, int def, int *out, resp *r)
{
    json_t *v = json_object_get(j, k);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v))
        return fail(r, 400, "\"%s\" must be true or false", k);
    *out = json_is_true(v);
    return 0;
}

static int get_count(const json_t *j, const char *k, size_t def, size_t max, size_t *out, resp *r)
{
    json_t *v = json_object_get(j, k);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_integer(v))
        return fail(r, 400, "\"%s\" must be an integer", k);
    json_int_t x = json_integer_value(v);
    if (x < 0 || (uint64_t)x > max)
        return fail(r, 400, "\"%s\" is %lld; it must be between 0 and %zu", k, (long long)x, max);
    *out = (size_t)x;
    return 0;
}

/* ---- the payload cache ------------------------------------------------------- */

static int pl_set(entry *e, uint64_t iid, const vqs_pid *id, json_t *payload)
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
    if (pl_set(e, iid, id, p)) {
        json_decref(p);
        return vqs_seterr(VQS_ENOMEM, "payload cache");
    }
    return 0;
}

/* Called with plock held for reading; returns with it held for reading and
 * the cache loaded (or an error). */
static int pl_ensure(vqs_server *s, entry *e, resp *r)
{
    if (e->pl_loaded)
        return 0;
    pthread_rwlock_unlock(&e->plock);
    pthread_rwlock_wrlock(&e->plock);
    int rc = 0;
    if (!e->pl_loaded) {
        rc = vqs_db_iterate(s->db, e->name, pl_load_cb, e);
        if (rc == 0)
            e->pl_loaded = 1;
    }
    pthread_rwlock_unlock(&e->plock);
    pthread_rwlock_rdlock(&e->plock);
    if (rc)
        return fail(r, 500, "collection '%s': reading the payloads: %s", e->name, vqs_errdetail());
    return 0;
}

typedef struct filter_ctx {
    entry *e;
    const vqs_filter *f;
} filter_ctx;

static int filter_cb(void *ctx, int64_t iid)
{
    filter_ctx *F = ctx;
    if (iid < 0 || (uint64_t)iid >= F->e->npl || !F->e->pl[iid].id.kind)
        return 0;
    return vqs_filter_match(F->f, F->e->pl[iid].payload, &F->e->pl[iid].id);
}

/* ---- with_payload -------------------------------------------------------------- */

typedef struct payload_sel {
    int on;
    json_t *include, *exclude; /* arrays of keys (borrowed) */
} payload_sel;

static int parse_with_payload(const json_t *j, int def, payload_sel *ps, resp *r)
{
    memset(ps, 0, sizeof *ps);
    json_t *v = json_object_get(j, "with_payload");
    if (!v || json_is_null(v)) {
        ps->on = def;
        return 0;
    }
    if (json_is_boolean(v)) {
        ps->on = json_is_true(v);
        return 0;
    }
    if (json_is_array(v)) {
        ps->on = 1;
        ps->include = v;
    } else if (json_is_object(v)) {
        ps->on = 1;
        ps->include = json_object_get(v, "include");
        ps->exclude = json_object_get(v, "exclude");
        if ((ps->include && !json_is_array(ps->include)) || (ps->exclude && !json_is_array(ps->exclude)) ||
            (!ps->include && !ps->exclude))
            return fail(r, 400, "\"with_payload\" must be a boolean, an array of keys or {\"include\"|\"exclude\": [keys]}");
    } else {
        return fail(r, 400, "\"with_payload\" must be a boolean, an array of keys or {\"include\"|\"exclude\": [keys]}");
    }
    for (json_t *a = ps->include; a; a = a == ps->include ? ps->exclude : NULL)
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!json_is_string(json_array_get(a, i)))
                return fail(r, 400, "\"with_payload\": key %zu is not a string", i);
    return 0;
}

/* the payload to return (new reference); p may be NULL */
static json_t *select_payload(const payload_sel *ps, json_t *p)
{
    if (!p || !json_is_object(p))
        return json_object();
    if (!ps->include && !ps->exclude)
        return json_incref(p);
    json_t *o = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(p, k, v)
    {
        int keep = ps->include == NULL;
        for (size_t i = 0; ps->include && i < json_array_size(ps->include); i++)
            keep |= !strcmp(k, json_string_value(json_array_get(ps->include, i)));
        for (size_t i = 0; ps->exclude && i < json_array_size(ps->exclude); i++)
            keep &= !!strcmp(k, json_string_value(json_array_get(ps->exclude, i)));
        if (keep)
            json_object_set(o, k, v);
    }
    return o;
}

/* ---- collections ---------------------------------------------------------------- */

static const char *distance_name(uint32_t m)
{
    return m == VQS_METRIC_L2 ? "Euclid" : m == VQS_METRIC_IP ? "Dot" : "Cosine";
}
static const char *rerank_name(uint32_t r) { return r == 1 ? "disk" : r == 2 ? "memory" : "none"; }

static int h_list(vqs_server *s, resp *r)
{
    json_t *a = json_array();
    pthread_rwlock_rdlock(&s->reg);
    for (entry *e = s->colls; e; e = e->next)
        json_array_append_new(a, json_pack("{s:s}", "name", e->name));
    pthread_rwlock_unlock(&s->reg);
    return ok(r, json_pack("{s:o}", "collections", a));
}

static int h_get_coll(vqs_server *s, entry *e, resp *r)
{
    vqs_db_stats info;
    int rc = vqs_db_info(s->db, e->name, &info);
    if (rc)
        return fail(r, 500, "collection '%s': %s", e->name, vqs_errdetail());
    const vqs_db_config *cfg = &info.cfg;
    const vqs_index *ix = vqs_coll_index(e->c);
    double bpv = ix ? vqs_index_bytes_per_vector(ix, NULL) : 4.0 * cfg->d;
    size_t code = ix ? vqs_index_code_size(ix) : 4 * cfg->d;
    json_t *res = json_pack(
        "{s:s, s:I, s:I, s:I, s:I, s:{s:{s:{s:I, s:s}}}, s:{s:s, s:b, s:I, s:f, s:f, s:s, s:s, s:I, s:I, s:f, "
        "s:f, s:I}}",
        "status", "green", "points_count", (json_int_t)info.count, "vectors_count", (json_int_t)info.count,
        "indexed_vectors_count", (json_int_t)(info.trained ? info.count : 0), "segments_count", (json_int_t)1,
        "config", "params", "vectors", "size", (json_int_t)cfg->d, "distance", distance_name(cfg->metric), "vqs",
        "spec", cfg->spec, "trained", vqs_coll_is_trained(e->c), "code_bytes_per_vector", (json_int_t)code,
        "index_bytes_per_vector", bpv, "compression_ratio", 4.0 * cfg->d / (double)code, "rerank",
        rerank_name(cfg->rerank), "rerank_backend", vqs_coll_rerank_backend(e->c), "nprobe",
        (json_int_t)cfg->nprobe, "train_size", (json_int_t)cfg->train_size, "oversampling",
        (double)cfg->oversampling, "payload_bytes", (double)info.payload_bytes, "deleted_codes",
        (json_int_t)info.deleted);
    /* the SQ8/SQ4 clip quantile it was created with (float32, shown to 6 decimals), or null */
    json_t *vq = res ? json_object_get(res, "vqs") : NULL;
    if (vq)
        json_object_set_new(vq, "clip", cfg->sq_clip ? json_real(round(cfg->sq_clip * 1e6) / 1e6) : json_null());
    return ok(r, res);
}

/* Qdrant's quantization_config -> a vqs spec */
static int spec_from_quantization(const json_t *q, size_t d, char *spec, size_t n, resp *r)
{
    json_t *x;
    if ((x = json_object_get(q, "scalar"))) {
        json_t *t = json_object_get(x, "type");
        if (t && (!json_is_string(t) || strcmp(json_string_value(t), "int8")))
            return fail(r, 400, "quantization_config.scalar.type: only \"int8\" is known");
        snprintf(spec, n, "SQ8");
        return 0;
    }
    if ((x = json_object_get(q, "binary"))) {
        snprintf(spec, n, "ROT,BIN");
        return 0;
    }
    if ((x = json_object_get(q, "product"))) {
        json_t *c = json_object_get(x, "compression");
        int ratio = 0;
        if (json_is_string(c) && sscanf(json_string_value(c), "x%d", &ratio) == 1 &&
            (ratio == 4 || ratio == 8 || ratio == 16 || ratio == 32 || ratio == 64)) {
            /* ratio x: 4d / x bytes = M bytes of 8-bit codes */
            size_t m = 4 * d / (size_t)ratio;
            if (m == 0 || d % m)
                return fail(r, 400, "quantization_config.product: compression %s gives %zu sub-quantizers, which do "
                                    "not divide the dimension %zu",
                            json_string_value(c), m, d);
            snprintf(spec, n, "PQ%zux8", m);
            return 0;
        }
        return fail(r, 400, "quantization_config.product.compression must be \"x4\", \"x8\", \"x16\", \"x32\" or \"x64\"");
    }
    return fail(r, 400, "quantization_config: expected \"scalar\", \"product\" or \"binary\"");
}

static int h_create(vqs_server *s, const char *name, const req *q, resp *r)
{
    json_t *j = parse_body(q, r);
    if (!j)
        return r->code;
    vqs_db_config cfg = {0};
    cfg.rerank = 1;
    cfg.nprobe = 16;
    cfg.oversampling = 4;
    cfg.train_size = 10000;
    snprintf(cfg.spec, sizeof cfg.spec, "SQ8");
    json_t *v = json_object_get(j, "vectors"), *x;
    if (!json_is_object(v)) {
        json_decref(j);
        return fail(r, 400, "\"vectors\": expected {\"size\": d, \"distance\": \"Cosine\"|\"Euclid\"|\"Dot\"} "
                            "(named vectors are not supported)");
    }
    x = json_object_get(v, "size");
    if (!json_is_integer(x) || json_integer_value(x) <= 0 || json_integer_value(x) > 65536) {
        json_decref(j);
        return fail(r, 400, "\"vectors\".\"size\" must be an integer between 1 and 65536");
    }
    cfg.d = (uint32_t)json_integer_value(x);
    x = json_object_get(v, "distance");
    const char *dn = json_is_string(x) ? json_string_value(x) : "";
    if (!strcmp(dn, "Cosine"))
        cfg.metric = VQS_METRIC_COS;
    else if (!strcmp(dn, "Euclid"))
        cfg.metric = VQS_METRIC_L2;
    else if (!strcmp(dn, "Dot"))
        cfg.metric = VQS_METRIC_IP;
    else {
        fail(r, 400, "\"vectors\".\"distance\" must be \"Cosine\", \"Euclid\" or \"Dot\" (got \"%.40s\")", dn);
        json_decref(j); /* dn points into j */
        return r->code;
    }
    if ((x = json_object_get(j, "quantization_config")) && !json_is_null(x) &&
        spec_from_quantization(x, cfg.d, cfg.spec, sizeof cfg.spec, r)) {
        json_decref(j);
        return r->code;
    }
    /* Qdrant's indexing threshold (KB of float32 vectors held before an
     * index is built; 0: never) is the training size in points */
    json_t *oc = json_object_get(j, "optimizers_config");
    if (oc && (x = json_object_get(oc, "indexing_threshold")) && !json_is_null(x)) {
        if (!json_is_integer(x) || json_integer_value(x) < 0) {
            json_decref(j);
            return fail(r, 400, "\"optimizers_config\".\"indexing_threshold\" must be an integer >= 0 (KB)");
        }
        cfg.train_size = ((uint64_t)json_integer_value(x) * 1024 + 4 * cfg.d - 1) / (4 * cfg.d);
    }
    json_t *vx = json_object_get(j, "vqs");
    if (vx && !json_is_object(vx)) {
        json_decref(j);
        return fail(r, 400, "\"vqs\" must be an object (spec, rerank, train_size, nprobe, oversampling, clip)");
    }
    if (vx) {
        const char *k;
        json_object_foreach(vx, k, x)
        {
            if (!strcmp(k, "spec") && json_is_string(x) && json_string_length(x) < sizeof cfg.spec)
                snprintf(cfg.spec, sizeof cfg.spec, "%s", json_string_value(x));
            else if (!strcmp(k, "rerank") && json_is_string(x) &&
                     (!strcmp(json_string_value(x), "disk") || !strcmp(json_string_value(x), "memory") ||
                      !strcmp(json_string_value(x), "none")))
                cfg.rerank = !strcmp(json_string_value(x), "disk") ? 1 : !strcmp(json_string_value(x), "memory") ? 2 : 0;
            else if (!strcmp(k, "train_size") && json_is_integer(x) && json_integer_value(x) >= 0)
                cfg.train_size = (uint64_t)json_integer_value(x);
            else if (!strcmp(k, "nprobe") && json_is_integer(x) && json_integer_value(x) > 0 &&
                     json_integer_value(x) < (1 << 24))
                cfg.nprobe = (uint32_t)json_integer_value(x);
            else if (!strcmp(k, "oversampling") && json_is_number(x) && json_number_value(x) >= 1 &&
                     json_number_value(x) <= 1000)
                cfg.oversampling = (float)json_number_value(x);
            else if (!strcmp(k, "clip")) {
                /* SQ8/SQ4 training ranges (vqs_codec_opts.sq_clip), stored with the collection */
                double cv = json_is_number(x) ? json_number_value(x) : 0;
                if (!(cv <= 1.0 && (float)cv > 0.5f)) {
                    json_decref(j);
                    return fail(r, 400, "\"vqs\".\"clip\" must be a number in (0.5, 1]: the two-sided quantile of "
                                        "each dimension's SQ8/SQ4 training range (0.999 clips 0.1%% at each end, 1 "
                                        "keeps min/max; leave it out for the default)");
                }
                cfg.sq_clip = (float)cv;
            } else {
                fail(r, 400, "\"vqs\".\"%s\": unknown key or bad value (spec: string; rerank: \"disk\", \"memory\" or "
                             "\"none\"; train_size: integer >= 0; nprobe: integer >= 1; oversampling: 1..1000; clip: (0.5, 1])",
                     k);
                json_decref(j);
                return r->code;
            }
        }
    }
    json_decref(j);
    /* the spec must build for this dimension and metric */
    vqs_index *ix = NULL;
    int rc = vqs_index_create(cfg.spec, cfg.d, (vqs_metric)cfg.metric, NULL, &ix);
    vqs_index_free(ix);
    if (rc) {
        fail(r, 400, "\"vqs\".\"spec\": %s", vqs_errdetail());
        vqs_clearerr();
        return r->code;
    }
    pthread_rwlock_wrlock(&s->reg);
    if (find(s, name)) {
        pthread_rwlock_unlock(&s->reg);
        return fail(r, 409, "Wrong input: Collection `%s` already exists!", name);
    }
    rc = vqs_db_create(s->db, name, &cfg);
    if (rc) {
        pthread_rwlock_unlock(&s->reg);
        fail(r, status_of(rc), "%s", vqs_errdetail());
        vqs_clearerr();
        return r->code;
    }
    /* a vector file left by a collection of the same name dropped by hand */
    char vp[4200];
    snprintf(vp, sizeof vp, "%s/%s.vec", vqs_db_dir(s->db), name);
    unlink(vp);
    entry *e = entry_open(s, name);
    if (!e || !e->c) {
        if (e)
            fail(r, 500, "%s", e->open_error);
        else
            fail(r, 500, "out of memory");
        entry_free(e);
        vqs_db_drop(s->db, name);
        pthread_rwlock_unlock(&s->reg);
        return r->code;
    }
    e->next = s->colls;
    s->colls = e;
    pthread_rwlock_unlock(&s->reg);
    return ok(r, json_true());
}

static int h_drop(vqs_server *s, const char *name, resp *r)
{
    pthread_rwlock_wrlock(&s->reg);
    entry **pp = &s->colls;
    while (*pp && strcmp((*pp)->name, name))
        pp = &(*pp)->next;
    if (!*pp) {
        pthread_rwlock_unlock(&s->reg);
        return fail(r, 404, "Not found: Collection `%s` doesn't exist!", name);
    }
    entry *e = *pp;
    int rc = vqs_db_drop(s->db, name);
    if (rc) {
        pthread_rwlock_unlock(&s->reg);
        return fail(r, 500, "drop '%s': %s", name, vqs_errdetail());
    }
    *pp = e->next;
    char vp[4200];
    snprintf(vp, sizeof vp, "%s/%s.vec", vqs_db_dir(s->db), name);
    entry_free(e);
    unlink(vp);
    pthread_rwlock_unlock(&s->reg);
    return ok(r, json_true());
}

/* ---- points ------------------------------------------------------------------------ */

static json_t *op_result(vqs_server *s)
{
    return json_pack("{s:I, s:s}", "operation_id", (json_int_t)__atomic_fetch_add(&s->op_id, 1, __ATOMIC_RELAXED),
                     "status", "completed");
}

/* upsert n points already validated; payloads: n JSON objects or NULL (borrowed) */
static int do_upsert(vqs_server *s, entry *e, size_t n, const vqs_pid *ids, const float *x, json_t **payloads,
                     resp *r)
{
    char **texts = calloc(n ? n : 1, sizeof(char *));
    if (!texts)
        return fail(r, 500, "out of memory");
    int rc = 0;
    for (size_t i = 0; payloads && i < n; i++)
        if (payloads[i] && json_object_size(payloads[i]) &&
            !(texts[i] = json_dumps(payloads[i], JSON_COMPACT | JSON_ENCODE_ANY))) {
            rc = fail(r, 500, "out of memory");
            break;
        }
    if (!rc) {
        int e2 = vqs_coll_upsert(e->c, n, ids, x, (const char *const *)texts);
        if (e2) {
            rc = fail(r, status_of(e2), "%s", vqs_errdetail());
            vqs_clearerr();
        }
    }
    if (!rc) {
        pthread_rwlock_wrlock(&e->plock);
        for (size_t i = 0; e->pl_loaded && i < n; i++) {
            uint64_t iid;
            if (vqs_db_get(s->db, e->name, &ids[i], &iid, NULL) == 0)
                pl_set(e, iid, &ids[i], payloads && payloads[i] ? json_incref(payloads[i]) : NULL);
            vqs_clearerr();
        }
        pthread_rwlock_unlock(&e->plock);
    }
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    return rc ? rc : ok(r, op_result(s));
}

static int h_upsert_json(vqs_server *s, entry *e, const req *q, resp *r)
{
    json_t *j = parse_body(q, r);
    if (!j)
        return r->code;
    size_t d = vqs_coll_d(e->c);
    json_t *pts = json_object_get(j, "points"), *batch = json_object_get(j, "batch");
    json_t *bids = NULL, *bvec = NULL, *bpay = NULL;
    size_t n;
    if (json_is_array(pts)) {
        n = json_array_size(pts);
    } else if (json_is_object(batch)) {
        bids = json_object_get(batch, "ids");
        bvec = json_object_get(batch, "vectors");
        bpay = json_object_get(batch, "payloads");
        if (!json_is_array(bids) || !json_is_array(bvec) || json_array_size(bids) != json_array_size(bvec) ||
            (bpay && !json_is_null(bpay) && (!json_is_array(bpay) || json_array_size(bpay) != json_array_size(bids)))) {
            json_decref(j);
            return fail(r, 400, "\"batch\" needs \"ids\" and \"vectors\" (and optionally \"payloads\") arrays of one length");
        }
        n = json_array_size(bids);
    } else {
        json_decref(j);
        return fail(r, 400, "expected {\"points\": [{\"id\", \"vector\", \"payload\"}, ...]} or {\"batch\": {...}}");
    }
    if (n > s->o.max_batch) {
        json_decref(j);
        return fail(r, 400, "%zu points in one request; at most %zu (--max-batch)", n, s->o.max_batch);
    }
    vqs_pid *ids = calloc(n ? n : 1, sizeof *ids);
    float *x = malloc(sizeof(float) * d * (n ? n : 1));
    json_t **pay = calloc(n ? n : 1, sizeof(json_t *));
    int rc = (!ids || !x || !pay) ? fail(r, 500, "out of memory") : 0;
    for (size_t i = 0; !rc && i < n; i++) {
        char where[64];
        snprintf(where, sizeof where, "point %zu", i);
        json_t *p = pts ? json_array_get(pts, i) : NULL;
        if (pts && !json_is_object(p)) {
            rc = fail(r, 400, "%s: must be an object {\"id\", \"vector\", \"payload\"}", where);
            break;
        }
        json_t *id = pts ? json_object_get(p, "id") : json_array_get(bids, i);
        json_t *vec = pts ? json_object_get(p, "vector") : json_array_get(bvec, i);
        json_t *pl = pts ? json_object_get(p, "payload") : bpay && !json_is_null(bpay) ? json_array_get(bpay, i) : NULL;
        if (!id)
            rc = fail(r, 400, "%s: \"id\" is missing", where);
        else if (!vec)
            rc = fail(r, 400, "%s: \"vector\" is missing", where);
        else if (!parse_id(id, &ids[i], r, where) && !parse_vector(vec, d, x + i * d, r, where)) {
            if (pl && !json_is_null(pl) && !json_is_object(pl))
                rc = fail(r, 400, "%s: \"payload\" must be an object", where);
            else
                pay[i] = pl && json_is_object(pl) ? pl : NULL;
        } else {
            rc = r->code;
        }
    }
    /* the same id twice: Qdrant keeps the last; the storage layer refuses,
     * so say so clearly */
    if (!rc)
        rc = do_upsert(s, e, n, ids, x, pay, r);
    free(ids);
    free(x);
    free(pay);
    json_decref(j);
    return rc;
}

/* binary upsert: n records of [u64 id, little-endian][d float32] */
static int h_upsert_bin(vqs_server *s, entry *e, const req *q, resp *r)
{
    size_t d = vqs_coll_d(e->c), rec = 8 + 4 * d;
    if (q->len == 0 || q->len % rec)
        return fail(r, 400, "binary upsert: %zu bytes is not a whole number of %zu-byte records (u64 id + %zu float32)",
                    q->len, rec, d);
    size_t n = q->len / rec;
    if (n > s->o.max_batch)
        return fail(r, 400, "%zu points in one request; at most %zu (--max-batch)", n, s->o.max_batch);
    vqs_pid *ids = calloc(n, sizeof *ids);
    float *x = malloc(sizeof(float) * d * n);
    if (!ids || !x) {
        free(ids);
        free(x);
        return fail(r, 500, "out of memory");
    }
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        const unsigned char *p = (const unsigned char *)q->body + i * rec;
        uint64_t id = 0;
        for (int b = 7; b >= 0; b--)
            id = id << 8 | p[b];
        ids[i].kind = VQS_PID_U64;
        ids[i].u64 = id;
        memcpy(x + i * d, p + 8, 4 * d);
        for (size_t k = 0; k < d; k++)
            if (!isfinite(x[i * d + k])) {
                rc = fail(r, 400, "binary upsert: record %zu (id %llu), element %zu is not finite", i,
                          (unsigned long long)id, k);
                break;
            }
    }
    if (!rc)
        rc = do_upsert(s, e, n, ids, x, NULL, r);
    free(ids);
    free(x);
    return rc;
}

/* A point as Qdrant shows it; NULL with r set when its payload or vector
 * cannot be read (never a point with a part silently missing). */
static json_t *point_json(vqs_server *s, entry *e, const vqs_pid *id, int64_t iid, const payload_sel *ps,
                          int with_vector, const float *score, resp *r)
{
    json_t *o = json_object();
    char b[40];
    if (!o)
        return fail(r, 500, "out of memory"), NULL;
    json_object_set_new(o, "id", id_json(id));
    json_object_set_new(o, "version", json_integer(0));
    if (score)
        json_object_set_new(o, "score", json_real(*score));
    if (ps->on) {
        json_t *p = NULL;
        if (e->pl_loaded && iid >= 0 && (uint64_t)iid < e->npl) {
            p = json_incref(e->pl[iid].payload);
        } else {
            char *text = NULL;
            int rc = iid >= 0 ? vqs_db_get_iid(s->db, e->name, (uint64_t)iid, NULL, &text)
                              : vqs_db_get(s->db, e->name, id, NULL, &text);
            if (rc && rc != VQS_ENOTFOUND) { /* ENOTFOUND: deleted since the search; no payload */
                fail(r, status_of(rc), "point %s: reading its payload: %s", vqs_pid_format(id, b), vqs_errdetail());
                vqs_clearerr();
                json_decref(o);
                return NULL;
            }
            if (rc == 0 && text) {
                json_error_t je;
                p = json_loads(text, 0, &je);
            }
            vqs_clearerr();
            free(text);
        }
        json_object_set_new(o, "payload", select_payload(ps, p));
        json_decref(p);
    }
    if (with_vector) {
        size_t d = vqs_coll_d(e->c);
        float *v = malloc(sizeof(float) * d);
        int rc = v ? vqs_coll_get(e->c, id, v, NULL) : VQS_ENOMEM;
        if (rc == 0) {
            json_t *a = json_array();
            for (size_t i = 0; i < d; i++)
                json_array_append_new(a, json_real(v[i]));
            json_object_set_new(o, "vector", a);
        } else if (rc != VQS_ENOTFOUND) {
            fail(r, status_of(rc) == 400 ? 500 : status_of(rc), "point %s: reading its vector: %s",
                 vqs_pid_format(id, b), rc == VQS_ENOMEM ? "out of memory" : vqs_errdetail());
            vqs_clearerr();
            free(v);
            json_decref(o);
            return NULL;
        }
        vqs_clearerr();
        free(v);
    }
    return o;
}

/* A trained collection without a vector file holds only codes. */
static int keeps_vectors(entry *e) { return vqs_coll_config_of(e->c)->rerank != 0 || !vqs_coll_is_trained(e->c); }

/* with_vector on a trained collection that keeps no vectors: a 400, not
 * an answer without (or with made-up) vectors */
static int check_with_vector(entry *e, int wv, resp *r)
{
    if (wv && !keeps_vectors(e))
        return fail(r, 400, "\"with_vector\": collection '%s' keeps no vectors (rerank \"none\"): only their codes",
                    e->name);
    return 0;
}

static int h_retrieve(vqs_server *s, entry *e, req *q, resp *r, const char *one_id)
{
    json_t *j = NULL, *ids;
    payload_sel ps;
    int wv = 0;
    json_t *single = NULL;
    if (one_id) {
        vqs_pid p;
        if (vqs_pid_parse(one_id, &p)) {
            vqs_clearerr();
            return fail(r, 400, "point id \"%.80s\" is neither an unsigned integer nor a UUID", one_id);
        }
        single = json_array();
        json_array_append_new(single, id_json(&p));
        ids = single;
        ps.on = 1;
        ps.include = ps.exclude = NULL;
        wv = keeps_vectors(e);
    } else {
        if (!(j = parse_body(q, r)))
            return r->code;
        ids = json_object_get(j, "ids");
        if (!json_is_array(ids) || parse_with_payload(j, 1, &ps, r) || get_bool(j, "with_vector", 0, &wv, r) ||
            check_with_vector(e, wv, r)) {
            json_decref(j);
            return r->code ? r->code : fail(r, 400, "\"ids\" must be an array of point ids");
        }
        if (json_array_size(ids) > s->o.max_batch) {
            fail(r, 400, "%zu ids in one request; at most %zu (--max-batch)", json_array_size(ids), s->o.max_batch);
            json_decref(j);
            return r->code;
        }
    }
    json_t *out = json_array();
    int rc = 0;
    pthread_rwlock_rdlock(&e->plock);
    for (size_t i = 0; i < json_array_size(ids) && !rc; i++) {
        char where[48];
        snprintf(where, sizeof where, "ids[%zu]", i);
        vqs_pid p;
        if ((rc = parse_id(json_array_get(ids, i), &p, r, where)))
            break;
        uint64_t iid;
        int g = vqs_db_get(s->db, e->name, &p, &iid, NULL);
        vqs_clearerr();
        if (g == 0) {
            json_t *o = point_json(s, e, &p, (int64_t)iid, &ps, wv, NULL, r);
            if (!o) {
                rc = r->code;
                break;
            }
            json_array_append_new(out, o);
            if ((rc = charge(s, q, o, wv ? vqs_coll_d(e->c) : 0, r)) || ((i & 63) == 63 && (rc = check_deadline(q, r))))
                break;
        } else if (one_id)
            rc = fail(r, 404, "Not found: No point with id %s found", one_id);
    }
    pthread_rwlock_unlock(&e->plock);
    json_decref(j);
    if (rc) {
        json_decref(out);
        json_decref(single);
        return rc;
    }
    json_decref(single);
    if (one_id) {
        json_t *p = json_incref(json_array_get(out, 0));
        json_decref(out);
        return ok(r, p);
    }
    return ok(r, out);
}

/* live points matching f (point ids), by walking the payload cache; plock held for reading */
static int matching_ids(vqs_server *s, entry *e, const vqs_filter *f, vqs_pid **out, size_t *n)
{
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    for (size_t iid = 0; iid < e->npl; iid++) {
        pl_entry *p = &e->pl[iid];
        if (!p->id.kind || !vqs_filter_match(f, p->payload, &p->id))
            continue;
        uint64_t cur;
        if (vqs_db_get(s->db, e->name, &p->id, &cur, NULL) || cur != iid) { /* replaced or deleted */
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

static vqs_filter *get_filter(const json_t *j, resp *r)
{
    json_t *f = json_object_get(j, "filter");
    if (!f || json_is_null(f))
        return NULL;
    char err[512];
    vqs_filter *c = vqs_filter_compile(f, err, sizeof err);
    if (!c)
        fail(r, 400, "%s", err);
    return c;
}

static int h_count(vqs_server *s, entry *e, const req *q, resp *r)
{
    json_t *j = q->len ? parse_body(q, r) : json_object();
    if (!j)
        return r->code;
    vqs_filter *f = get_filter(j, r);
    json_decref(j);
    if (r->code)
        return r->code;
    uint64_t n = vqs_coll_count(e->c);
    if (f) {
        pthread_rwlock_rdlock(&e->plock);
        vqs_pid *ids = NULL;
        size_t m = 0;
        int rc = pl_ensure(s, e, r);
        if (!rc && matching_ids(s, e, f, &ids, &m))
            rc = fail(r, 500, "out of memory");
        pthread_rwlock_unlock(&e->plock);
        free(ids);
        vqs_filter_free(f);
        if (rc)
            return rc;
        n = m;
    }
    return ok(r, json_pack("{s:I}", "count", (json_int_t)n));
}

static int h_delete(vqs_server *s, entry *e, const req *q, resp *r)
{
    json_t *j = parse_body(q, r);
    if (!j)
        return r->code;
    json_t *pts = json_object_get(j, "points");
    vqs_filter *f = get_filter(j, r);
    if (r->code) {
        json_decref(j);
        return r->code;
    }
    if (!json_is_array(pts) && !f) {
        json_decref(j);
        return fail(r, 400, "expected {\"points\": [ids]} or {\"filter\": {...}}");
    }
    vqs_pid *ids = NULL;
    size_t n = 0;
    int rc = 0;
    if (json_is_array(pts)) {
        n = json_array_size(pts);
        ids = calloc(n ? n : 1, sizeof *ids);
        for (size_t i = 0; i < n && !rc; i++) {
            char where[48];
            snprintf(where, sizeof where, "points[%zu]", i);
            rc = parse_id(json_array_get(pts, i), &ids[i], r, where);
        }
    } else {
        pthread_rwlock_rdlock(&e->plock);
        rc = pl_ensure(s, e, r);
        if (!rc && matching_ids(s, e, f, &ids, &n))
            rc = fail(r, 500, "out of memory");
        pthread_rwlock_unlock(&e->plock);
    }
    if (!rc) {
        int e2 = vqs_coll_delete(e->c, n, ids, NULL);
        if (e2) {
            rc = fail(r, 500, "%s", vqs_errdetail());
            vqs_clearerr();
        }
    }
    free(ids);
    vqs_filter_free(f);
    json_decref(j);
    return rc ? rc : ok(r, op_result(s));
}

/* ---- search ----------------------------------------------------------------------- */

typedef struct search_req {
    float *q; /* d floats */
    size_t limit, offset;
    vqs_filter *f;
    payload_sel ps;
    int with_vector;
    int has_thr;
    float thr;
    vqs_coll_search_params sp;
} search_req;

static void search_req_free(search_req *sr)
{
    free(sr->q);
    vqs_filter_free(sr->f);
}

/* from a search or query object; vkey: "vector" or "query" */
static int parse_search(vqs_server *s, entry *e, const json_t *j, const char *vkey, search_req *sr, resp *r)
{
    memset(sr, 0, sizeof *sr);
    size_t d = vqs_coll_d(e->c);
    if (!json_is_object(j))
        return fail(r, 400, "a search request must be an object");
    json_t *v = json_object_get(j, vkey);
    if (!v && !strcmp(vkey, "query"))
        return fail(r, 400, "\"query\" is missing (a vector; other query kinds are not supported)");
    if (json_is_object(v) && json_object_get(v, "nearest"))
        v = json_object_get(v, "nearest");
    if (!v)
        return fail(r, 400, "\"%s\" is missing", vkey);
    if (!(sr->q = malloc(sizeof(float) * d)))
        return fail(r, 500, "out of memory");
    if (!strcmp(vkey, "query") && (json_is_integer(v) || json_is_string(v))) {
        /* a point id: its stored vector is the query (the point itself is
         * among the results) */
        vqs_pid pid;
        if (parse_id(v, &pid, r, "query"))
            return r->code;
        int rc = vqs_coll_get(e->c, &pid, sr->q, NULL);
        if (rc) {
            vqs_clearerr();
            char b[40];
            return fail(r, rc == VQS_ENOTFOUND ? 404 : 500, "query: point %s %s", vqs_pid_format(&pid, b),
                        rc == VQS_ENOTFOUND ? "not found" : "could not be read");
        }
        if (vqs_coll_config_of(e->c)->rerank == 0 && vqs_coll_is_trained(e->c))
            return fail(r, 400, "query by point id needs the stored vectors (this collection keeps none)");
    } else {
    char where[16];
    snprintf(where, sizeof where, "%s", vkey);
    if (parse_vector(v, d, sr->q, r, where))
        return r->code;
    }
    if (get_count(j, "limit", 10, s->o.max_limit, &sr->limit, r) ||
        get_count(j, "offset", 0, s->o.max_limit, &sr->offset, r))
        return r->code;
    if (sr->limit == 0)
        return fail(r, 400, "\"limit\" must be at least 1");
    if (sr->limit + sr->offset > s->o.max_limit)
        return fail(r, 400, "\"limit\" + \"offset\" = %zu; at most %zu", sr->limit + sr->offset, s->o.max_limit);
    if (parse_with_payload(j, 0, &sr->ps, r) || get_bool(j, "with_vector", 0, &sr->with_vector, r) ||
        check_with_vector(e, sr->with_vector, r))
        return r->code;
    json_t *t = json_object_get(j, "score_threshold");
    if (t && !json_is_null(t)) {
        if (!json_is_number(t))
            return fail(r, 400, "\"score_threshold\" must be a number");
        sr->has_thr = 1;
        sr->thr = (float)json_number_value(t);
    }
    json_t *p = json_object_get(j, "params");
    if (p && !json_is_null(p)) {
        if (!json_is_object(p))
            return fail(r, 400, "\"params\" must be an object");
        json_t *qz = json_object_get(p, "quantization"), *x;
        if (qz && !json_is_null(qz)) {
            if (!json_is_object(qz))
                return fail(r, 400, "\"params\".\"quantization\" must be an object");
            if ((x = json_object_get(qz, "rescore")) && !json_is_null(x)) {
                if (!json_is_boolean(x))
                    return fail(r, 400, "\"params\".\"quantization\".\"rescore\" must be true or false");
                sr->sp.rerank = json_is_true(x) ? 1 : -1;
            }
            if ((x = json_object_get(qz, "oversampling")) && !json_is_null(x)) {
                if (!json_is_number(x) || json_number_value(x) < 1 || json_number_value(x) > 1000)
                    return fail(r, 400, "\"params\".\"quantization\".\"oversampling\" must be a number in [1, 1000]");
                sr->sp.oversampling = (float)json_number_value(x);
            }
        }
        if ((x = json_object_get(p, "nprobe")) && !json_is_null(x)) {
            if (!json_is_integer(x) || json_integer_value(x) < 1 || json_integer_value(x) > (1 << 24))
                return fail(r, 400, "\"params\".\"nprobe\" must be a positive integer");
            sr->sp.nprobe = (size_t)json_integer_value(x);
        }
    }
    if (sr->sp.rerank > 0 && vqs_coll_config_of(e->c)->rerank == 0)
        sr->sp.rerank = 0; /* nothing to re-score with: as Qdrant, rescore is a hint */
    vqs_clearerr();
    sr->f = get_filter(j, r);
    return r->code;
}

static float to_score(uint32_t metric, float dist) { return metric == VQS_METRIC_L2 ? sqrtf(fmaxf(dist, 0)) : dist; }

/* runs one search; returns the JSON array of scored points; plock held for reading */
static json_t *run_search(vqs_server *s, entry *e, search_req *sr, req *q, resp *r)
{
    size_t k = sr->limit + sr->offset;
    vqs_pid *ids = calloc(k, sizeof *ids);
    float *dist = malloc(sizeof(float) * k);
    int64_t *iids = malloc(sizeof(int64_t) * k);
    if (!ids || !dist || !iids) {
        free(ids), free(dist), free(iids);
        fail(r, 500, "out of memory");
        return NULL;
    }
    filter_ctx F = {e, sr->f};
    if (sr->f) {
        sr->sp.filter = filter_cb;
        sr->sp.filter_ctx = &F;
    }
    sr->sp.deadline = q->deadline;
    int rc = check_deadline(q, r);
    if (!rc && (rc = vqs_coll_search(e->c, &sr->sp, 1, sr->q, k, ids, dist, iids))) {
        if (rc == -ETIMEDOUT)
            check_deadline(q, r);
        if (!r->code)
            fail(r, status_of(rc), "%s", vqs_errdetail());
        vqs_clearerr();
    }
    json_t *out = NULL;
    if (!rc) {
        out = json_array();
        uint32_t m = vqs_coll_config_of(e->c)->metric;
        size_t vd = sr->with_vector ? vqs_coll_d(e->c) : 0;
        for (size_t i = sr->offset; i < k && !rc; i++) {
            if (!ids[i].kind)
                continue;
            float sc = to_score(m, dist[i]);
            if (!isfinite(sc)) { /* cannot happen for vectors the collection accepts: say so, drop nothing */
                char b[40];
                rc = fail(r, 500, "point %s scored %g: not a finite score", vqs_pid_format(&ids[i], b), (double)sc);
                break;
            }
            if (sr->has_thr && (m == VQS_METRIC_L2 ? sc > sr->thr : sc < sr->thr))
                continue;
            json_t *o = point_json(s, e, &ids[i], iids[i], &sr->ps, sr->with_vector, &sc, r);
            if (!o || json_array_append_new(out, o)) {
                rc = o ? fail(r, 500, "out of memory") : r->code;
                break;
            }
            rc = charge(s, q, o, vd, r);
            if (!rc && (i & 63) == 63)
                rc = check_deadline(q, r);
        }
        if (rc) {
            json_decref(out);
            out = NULL;
        }
    }
    free(ids), free(dist), free(iids);
    return out;
}

/* Σ (limit + offset) and Σ re-scored candidates of a request's searches
 * (n settings, each used by reps queries), against --max-results and
 * --max-candidates */
static int check_cost(vqs_server *s, entry *e, const search_req *sr, size_t n, size_t reps, resp *r)
{
    const vqs_db_config *cfg = vqs_coll_config_of(e->c);
    double results = 0, cand = 0;
    for (size_t i = 0; i < n; i++) {
        double k = (double)(sr[i].limit + sr[i].offset);
        int rerank = sr[i].sp.rerank > 0 || (sr[i].sp.rerank == 0 && cfg->rerank);
        double os = sr[i].sp.oversampling > 0 ? sr[i].sp.oversampling : cfg->oversampling;
        results += k * (double)reps;
        cand += (rerank ? ceil(k * (os > 1 ? os : 1)) : k) * (double)reps;
    }
    if (results > (double)s->o.max_results)
        return fail(r, 400, "the searches of this request ask for %.0f points in all (sum of limit + offset); at most "
                            "%zu (--max-results)", results, s->o.max_results);
    if (cand > (double)s->o.max_candidates)
        return fail(r, 400, "the searches of this request would re-score %.0f candidates (sum of (limit + offset) x "
                            "oversampling); at most %zu (--max-candidates)", cand, s->o.max_candidates);
    return 0;
}

/* prefixes r's message with the search of a batch it is about */
static void name_search(resp *r, size_t i)
{
    char m[sizeof r->err];
    memcpy(m, r->err, sizeof m);
    snprintf(r->err, sizeof r->err, "searches[%zu]: %.990s", i, m);
}

static int h_search(vqs_server *s, entry *e, req *q, resp *r, int kind /* 0 search, 1 batch, 2 query */)
{
    json_t *j = parse_body(q, r);
    if (!j)
        return r->code;
    json_t *list = NULL;
    if (kind == 1) {
        list = json_object_get(j, "searches");
        if (!json_is_array(list)) {
            json_decref(j);
            return fail(r, 400, "\"searches\" must be an array of search requests");
        }
        if (json_array_size(list) > s->o.max_batch) {
            fail(r, 400, "%zu searches in one batch; at most %zu", json_array_size(list), s->o.max_batch);
            json_decref(j); /* list is part of j */
            return r->code;
        }
    }
    size_t nq = kind == 1 ? json_array_size(list) : 1;
    search_req *sr = calloc(nq ? nq : 1, sizeof *sr);
    int rc = sr ? 0 : fail(r, 500, "out of memory");
    for (size_t i = 0; i < nq && !rc; i++) {
        rc = parse_search(s, e, kind == 1 ? json_array_get(list, i) : j, kind == 2 ? "query" : "vector", &sr[i], r);
        if (rc && kind == 1)
            name_search(r, i);
    }
    if (!rc)
        rc = check_cost(s, e, sr, nq, 1, r);
    json_t *res = NULL;
    if (!rc) {
        int any_filter = 0;
        for (size_t i = 0; i < nq; i++)
            any_filter |= sr[i].f != NULL;
        pthread_rwlock_rdlock(&e->plock);
        if (any_filter)
            rc = pl_ensure(s, e, r);
        res = kind == 1 ? json_array() : NULL;
        for (size_t i = 0; i < nq && !rc; i++) {
            json_t *one = run_search(s, e, &sr[i], q, r);
            if (!one) {
                rc = r->code;
                if (kind == 1)
                    name_search(r, i);
                break;
            }
            if (kind == 1)
                json_array_append_new(res, one);
            else
                res = kind == 2 ? json_pack("{s:o}", "points", one) : one;
        }
        pthread_rwlock_unlock(&e->plock);
    }
    for (size_t i = 0; sr && i < nq; i++)
        search_req_free(&sr[i]);
    free(sr);
    json_decref(j);
    if (rc) {
        json_decref(res);
        return rc;
    }
    return ok(r, res);
}

/* "true"/"1" -> 1, "false"/"0" -> 0, anything else -1 */
static int bool_param(const char *v)
{
    return !strcmp(v, "true") || !strcmp(v, "1") ? 1 : !strcmp(v, "false") || !strcmp(v, "0") ? 0 : -1;
}

/* binary search: body = nq * d float32 (little-endian); settings in the query string */
static int h_search_bin(vqs_server *s, entry *e, struct MHD_Connection *conn, req *q, resp *r)
{
    size_t d = vqs_coll_d(e->c);
    if (q->len == 0 || q->len % (4 * d))
        return fail(r, 400, "binary search: %zu bytes is not a whole number of %zu-float queries", q->len, d);
    size_t nq = q->len / (4 * d);
    if (nq > s->o.max_batch)
        return fail(r, 400, "%zu queries in one request; at most %zu", nq, s->o.max_batch);
    search_req base;
    memset(&base, 0, sizeof base);
    base.limit = 10;
    const char *v;
    char *end;
    struct {
        const char *k;
        size_t *dst;
    } counts[] = {{"limit", &base.limit}, {"offset", &base.offset}, {"nprobe", &base.sp.nprobe}};
    for (size_t i = 0; i < 3; i++)
        if ((v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, counts[i].k))) {
            errno = 0;
            long long x = strtoll(v, &end, 10);
            if (*end || errno || x < 0 || (unsigned long long)x > s->o.max_limit)
                return fail(r, 400, "query parameter %s=%.40s: must be an integer between 0 and %zu", counts[i].k, v,
                            s->o.max_limit);
            *counts[i].dst = (size_t)x;
        }
    if (base.limit == 0 || base.limit + base.offset > s->o.max_limit)
        return fail(r, 400, "limit must be at least 1 and limit + offset at most %zu", s->o.max_limit);
    if ((v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "oversampling"))) {
        double x = strtod(v, &end);
        if (*end || !(x >= 1 && x <= 1000))
            return fail(r, 400, "query parameter oversampling=%.40s: must be a number in [1, 1000]", v);
        base.sp.oversampling = (float)x;
    }
    if ((v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "rescore"))) {
        if (bool_param(v) < 0)
            return fail(r, 400, "query parameter rescore=%.40s: must be true or false", v);
        base.sp.rerank = bool_param(v) ? 1 : -1;
    }
    if (base.sp.rerank > 0 && vqs_coll_config_of(e->c)->rerank == 0)
        base.sp.rerank = 0;
    if ((v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "with_payload"))) {
        if (bool_param(v) < 0)
            return fail(r, 400, "query parameter with_payload=%.40s: must be true or false", v);
        base.ps.on = bool_param(v);
    }
    if ((v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "score_threshold"))) {
        base.thr = strtof(v, &end);
        if (*end || !isfinite(base.thr))
            return fail(r, 400, "query parameter score_threshold=%.40s: not a number", v);
        base.has_thr = 1;
    }
    const float *x = (const float *)(const void *)q->body;
    for (size_t i = 0; i < nq * d; i++)
        if (!isfinite(x[i]))
            return fail(r, 400, "binary search: query %zu, element %zu is not finite", i / d, i % d);
    if (check_cost(s, e, &base, 1, nq, r)) /* every query has the same settings */
        return r->code;
    json_t *res = nq > 1 ? json_array() : NULL;
    int rc = 0;
    pthread_rwlock_rdlock(&e->plock);
    for (size_t i = 0; i < nq && !rc; i++) {
        search_req sr = base;
        sr.q = (float *)(x + i * d);
        json_t *one = run_search(s, e, &sr, q, r);
        if (!one)
            rc = r->code;
        else if (nq > 1)
            json_array_append_new(res, one);
        else
            res = one;
    }
    pthread_rwlock_unlock(&e->plock);
    if (rc) {
        json_decref(res);
        return rc;
    }
    return ok(r, res);
}

static int h_train(entry *e, resp *r)
{
    if (vqs_coll_is_trained(e->c))
        return fail(r, 400, "collection '%s' is already trained", e->name);
    int rc = vqs_coll_train(e->c, 0, NULL);
    if (rc) {
        fail(r, status_of(rc), "training: %s", vqs_errdetail());
        vqs_clearerr();
        return r->code;
    }
    return ok(r, json_true());
}

/* ---- metrics text ---------------------------------------------------------------- */

static char *metrics_text(vqs_server *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    fprintf(f, "# HELP vqs_http_requests_total HTTP requests by endpoint and status class.\n"
               "# TYPE vqs_http_requests_total counter\n");
    pthread_mutex_lock(&s->mlock);
    route_metrics m[R_N];
    memcpy(m, s->m, sizeof m);
    pthread_mutex_unlock(&s->mlock);
    for (int i = 0; i < R_N; i++) {
        if (!m[i].req)
            continue;
        fprintf(f, "vqs_http_requests_total{endpoint=\"%s\",code=\"2xx\"} %llu\n", route_name[i],
                (unsigned long long)(m[i].req - m[i].err4 - m[i].err5));
        fprintf(f, "vqs_http_requests_total{endpoint=\"%s\",code=\"4xx\"} %llu\n", route_name[i],
                (unsigned long long)m[i].err4);
        fprintf(f, "vqs_http_requests_total{endpoint=\"%s\",code=\"5xx\"} %llu\n", route_name[i],
                (unsigned long long)m[i].err5);
    }
    fprintf(f, "# HELP vqs_http_errors_total HTTP requests answered with a 4xx or 5xx status.\n"
               "# TYPE vqs_http_errors_total counter\n");
    for (int i = 0; i < R_N; i++)
        if (m[i].req)
            fprintf(f, "vqs_http_errors_total{endpoint=\"%s\"} %llu\n", route_name[i],
                    (unsigned long long)(m[i].err4 + m[i].err5));
    fprintf(f, "# HELP vqs_http_request_duration_seconds Time from the request's arrival to its response.\n"
               "# TYPE vqs_http_request_duration_seconds histogram\n");
    for (int i = 0; i < R_N; i++) {
        if (!m[i].req)
            continue;
        uint64_t cum = 0;
        for (size_t b = 0; b < NB; b++) {
            cum += m[i].bucket[b];
            fprintf(f, "vqs_http_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%g\"} %llu\n", route_name[i],
                    hist_le[b], (unsigned long long)cum);
        }
        fprintf(f, "vqs_http_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %llu\n", route_name[i],
                (unsigned long long)m[i].req);
        fprintf(f, "vqs_http_request_duration_seconds_sum{endpoint=\"%s\"} %.9f\n", route_name[i], m[i].sum);
        fprintf(f, "vqs_http_request_duration_seconds_count{endpoint=\"%s\"} %llu\n", route_name[i],
                (unsigned long long)m[i].req);
    }
    pthread_mutex_lock(&s->qlock);
    int busy = s->busy_workers;
    size_t qlen = s->qlen;
    pthread_mutex_unlock(&s->qlock);
    fprintf(f,
            "# HELP vqs_http_requests_in_flight Requests received and not yet answered.\n"
            "# TYPE vqs_http_requests_in_flight gauge\nvqs_http_requests_in_flight %llu\n"
            "# HELP vqs_http_workers_busy Workers running a request.\n"
            "# TYPE vqs_http_workers_busy gauge\nvqs_http_workers_busy %d\n"
            "# HELP vqs_http_workers Workers for searches and writes.\n"
            "# TYPE vqs_http_workers gauge\nvqs_http_workers %d\n"
            "# HELP vqs_http_queue_length Requests waiting for a worker.\n"
            "# TYPE vqs_http_queue_length gauge\nvqs_http_queue_length %zu\n"
            "# HELP vqs_http_rejected_busy_total Requests answered 503 because the queue was full.\n"
            "# TYPE vqs_http_rejected_busy_total counter\nvqs_http_rejected_busy_total %llu\n"
            "# HELP vqs_http_connections_reaped_total Connections closed for not sending a complete request "
            "within --read-timeout.\n"
            "# TYPE vqs_http_connections_reaped_total counter\nvqs_http_connections_reaped_total %llu\n",
            (unsigned long long)__atomic_load_n(&s->active, __ATOMIC_SEQ_CST), busy, s->nworkers, qlen,
            (unsigned long long)__atomic_load_n(&s->rejected_full, __ATOMIC_RELAXED),
            (unsigned long long)__atomic_load_n(&s->reaped, __ATOMIC_RELAXED));
    fprintf(f, "# HELP vqs_collection_points Live points per collection.\n# TYPE vqs_collection_points gauge\n");
    pthread_rwlock_rdlock(&s->reg);
    for (entry *e = s->colls; e; e = e->next)
        if (e->c)
            fprintf(f, "vqs_collection_points{collection=\"%s\"} %llu\n", e->name,
                    (unsigned long long)vqs_coll_count(e->c));
    fprintf(f, "# HELP vqs_collection_bytes Bytes stored per collection (codes, payloads, vector file).\n"
               "# TYPE vqs_collection_bytes gauge\n");
    for (entry *e = s->colls; e; e = e->next) {
        vqs_db_stats info;
        if (!e->c || vqs_db_info(s->db, e->name, &info))
            continue;
        struct stat st;
        double vf = stat(vqs_coll_vecfile_path(e->c), &st) == 0 ? (double)st.st_size : 0;
        fprintf(f, "vqs_collection_bytes{collection=\"%s\",kind=\"codes\"} %llu\n", e->name,
                (unsigned long long)info.code_bytes);
        fprintf(f, "vqs_collection_bytes{collection=\"%s\",kind=\"payloads\"} %llu\n", e->name,
                (unsigned long long)info.payload_bytes);
        fprintf(f, "vqs_collection_bytes{collection=\"%s\",kind=\"vectors\"} %.0f\n", e->name, vf);
    }
    vqs_clearerr();
    pthread_rwlock_unlock(&s->reg);
    fclose(f);
    return buf;
}

/* ---- routing ------------------------------------------------------------------------ */

static int hexval_c(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int name_ok(const char *n, size_t len)
{
    if (len == 0 || len > 63 || n[0] == '.')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= 'A' && n[i] <= 'Z') || (n[i] >= '0' && n[i] <= '9') ||
              n[i] == '_' || n[i] == '-' || n[i] == '.'))
            return 0;
    return 1;
}

static int is_binary(struct MHD_Connection *conn)
{
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    return ct && !strncasecmp(ct, "application/octet-stream", 24);
}

/* The path of a raw request target (up to '?'), percent-decoded once into
 * out (cap bytes). 400 for a malformed escape, a decoded NUL or control
 * byte, or an encoded '/' (it would split or join path segments). */
static int decode_path(const char *raw, char *out, size_t cap, resp *r)
{
    size_t o = 0, seg = 0;
    for (size_t i = 0; raw[i] && raw[i] != '?' && raw[i] != '#'; i++) {
        unsigned char c = (unsigned char)raw[i];
        if (c == '/')
            seg++;
        if (c == '%') {
            int h = hexval_c(raw[i + 1]), l = h < 0 ? -1 : hexval_c(raw[i + 2]);
            if (h < 0 || l < 0)
                return fail(r, 400, "path segment %zu: malformed percent escape", seg);
            c = (unsigned char)(h << 4 | l);
            i += 2;
            if (c == '/')
                return fail(r, 400, "path segment %zu: an encoded '/' (%%2F) is not allowed in a segment", seg);
        }
        if (c < 0x20 || c == 0x7f)
            return fail(r, 400, "path segment %zu: holds the control byte 0x%02X (%s)", seg, c,
                        c == 0 ? "NUL" : "not allowed in a path");
        if (o + 1 >= cap)
            return fail(r, 414, "the path is longer than %zu bytes", cap - 1);
        out[o++] = (char)c;
    }
    out[o] = 0;
    return 0;
}

static int dispatch(vqs_server *s, struct MHD_Connection *conn, const char *method, const char *url,
                    req *q, resp *r, int *route)
{
    int GET = !strcmp(method, "GET"), PUT = !strcmp(method, "PUT"), POST = !strcmp(method, "POST"),
        DEL = !strcmp(method, "DELETE");
    *route = R_UNKNOWN;
    if (!strcmp(url, "/")) {
        *route = R_ROOT;
        if (!GET)
            return fail(r, 405, "%s / is not allowed", method);
        /* as Qdrant's, not wrapped in "result"; "version" is the Qdrant API
         * level the shapes follow (clients compare it with their own) */
        r->code = 200;
        r->ctype = "application/json";
        r->raw = strdup("{\"title\":\"vqs - vector quantization search\",\"version\":\"" QDRANT_COMPAT_VERSION
                        "\",\"vqs_version\":\"" VQS_API_VERSION "\"}");
        return r->raw ? 200 : fail(r, 500, "out of memory");
    }
    if (!strcmp(url, "/healthz") || !strcmp(url, "/livez") || !strcmp(url, "/readyz")) {
        *route = R_HEALTH;
        r->code = 200;
        r->raw = strdup("healthz check passed\n");
        r->ctype = "text/plain";
        return 200;
    }
    if (!strcmp(url, "/metrics")) {
        *route = R_METRICS;
        r->code = 200;
        r->raw = metrics_text(s);
        r->ctype = "text/plain; version=0.0.4";
        return r->raw ? 200 : fail(r, 500, "out of memory");
    }
    if (!strcmp(url, "/collections") || !strcmp(url, "/collections/")) {
        *route = R_COLLS;
        return GET ? h_list(s, r) : fail(r, 405, "%s /collections is not allowed", method);
    }
    if (strncmp(url, "/collections/", 13))
        return fail(r, 404, "Not found: %s %.200s", method, url);
    const char *name = url + 13, *slash = strchr(name, '/');
    size_t nlen = slash ? (size_t)(slash - name) : strlen(name);
    const char *rest = slash ? slash : "";
    char cname[64];
    if (!name_ok(name, nlen))
        return fail(r, 400, "bad collection name \"%.*s\" (1 to 63 of A-Z a-z 0-9 _ - ., not starting with '.')",
                    (int)(nlen > 80 ? 80 : nlen), name);
    memcpy(cname, name, nlen);
    cname[nlen] = 0;
    if (!*rest && PUT) {
        *route = R_COLL_PUT;
        return h_create(s, cname, q, r);
    }
    if (!*rest && DEL) {
        *route = R_COLL_DEL;
        return h_drop(s, cname, r);
    }
    /* everything else works on an existing collection */
    int rc;
    pthread_rwlock_rdlock(&s->reg);
    entry *e = find(s, cname);
    if (!strcmp(rest, "/exists") && GET) {
        *route = R_COLL_EXISTS;
        pthread_rwlock_unlock(&s->reg);
        return ok(r, json_pack("{s:b}", "exists", e != NULL));
    }
    if (!e) {
        pthread_rwlock_unlock(&s->reg);
        if (!*rest && GET)
            *route = R_COLL_GET;
        return fail(r, 404, "Not found: Collection `%s` doesn't exist!", cname);
    }
    if (!e->c) {
        pthread_rwlock_unlock(&s->reg);
        return fail(r, 500, "%s", e->open_error);
    }
    int bin = is_binary(conn);
    if (!*rest && GET)
        *route = R_COLL_GET, rc = h_get_coll(s, e, r);
    else if (!strcmp(rest, "/points") && PUT)
        *route = R_UPSERT, rc = bin ? h_upsert_bin(s, e, q, r) : h_upsert_json(s, e, q, r);
    else if (!strcmp(rest, "/points") && POST)
        *route = R_RETRIEVE, rc = h_retrieve(s, e, q, r, NULL);
    else if (!strncmp(rest, "/points/", 8) && GET && !strchr(rest + 8, '/'))
        *route = R_GETPOINT, rc = h_retrieve(s, e, q, r, rest + 8);
    else if (!strcmp(rest, "/points/delete") && POST)
        *route = R_DELETE, rc = h_delete(s, e, q, r);
    else if (!strcmp(rest, "/points/count") && POST)
        *route = R_COUNT, rc = h_count(s, e, q, r);
    else if (!strcmp(rest, "/points/search") && POST)
        *route = R_SEARCH, rc = bin ? h_search_bin(s, e, conn, q, r) : h_search(s, e, q, r, 0);
    else if (!strcmp(rest, "/points/search/batch") && POST)
        *route = R_SEARCH_BATCH, rc = h_search(s, e, q, r, 1);
    else if (!strcmp(rest, "/points/query") && POST)
        *route = R_QUERY, rc = h_search(s, e, q, r, 2);
    else if (!strcmp(rest, "/train") && POST)
        *route = R_TRAIN, rc = h_train(e, r);
    else
        rc = fail(r, 404, "Not found: %s %.200s", method, url);
    pthread_rwlock_unlock(&s->reg);
    return rc;
}

/* ---- libmicrohttpd glue -------------------------------------------------------------- */

static int key_ok(const vqs_server *s, struct MHD_Connection *conn)
{
    const char *want = s->o.api_key;
    if (!want || !*want)
        return 1;
    const char *got = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "api-key");
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (!got && auth && !strncasecmp(auth, "Bearer ", 7))
        got = auth + 7;
    if (!got)
        return 0;
    size_t lw = strlen(want), lg = strlen(got), n = lw > lg ? lw : lg;
    unsigned diff = (unsigned)(lw ^ lg);
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned)(unsigned char)(i < lw ? want[i] : 0) ^ (unsigned char)(i < lg ? got[i] : 0);
    return diff == 0;
}

static void record(vqs_server *s, int route, int code, double secs)
{
    pthread_mutex_lock(&s->mlock);
    route_metrics *m = &s->m[route];
    m->req++;
    m->err4 += code >= 400 && code < 500;
    m->err5 += code >= 500;
    size_t b = 0;
    while (b < NB && secs > hist_le[b])
        b++;
    m->bucket[b]++;
    m->sum += secs;
    pthread_mutex_unlock(&s->mlock);
}

static enum MHD_Result send_resp(vqs_server *s, struct MHD_Connection *conn, resp *r, double t0, int route,
                                 const char *method, const char *url)
{
    char *body;
    size_t len;
    const char *ctype = "application/json";
    double secs = vqs_now() - t0;
    if (r->raw) {
        body = r->raw;
        r->raw = NULL;
        ctype = r->ctype;
    } else {
        /* messages quote the request (paths, keys): keep them printable ASCII
         * so that they always encode as JSON */
        for (char *p = r->err; *p; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                *p = '?';
        json_t *o = r->code < 400 ? json_pack("{s:o?, s:s, s:f}", "result", r->result, "status", "ok", "time", secs)
                                  : json_pack("{s:{s:s}, s:f}", "status", "error", r->err, "time", secs);
        r->result = NULL;
        body = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
        json_decref(o);
        if (!body) { /* an error message that is not valid UTF-8, or out of memory */
            body = strdup("{\"status\":{\"error\":\"could not encode the response\"}}");
            snprintf(r->err, sizeof r->err, "could not encode the response");
            r->code = 500;
        } else if (strlen(body) > s->o.max_response + 4096) {
            /* the estimate in charge() keeps results below this: a bug if reached */
            free(body);
            snprintf(r->err, sizeof r->err, "the response passed --max-response (%zu bytes)", s->o.max_response);
            body = strdup("{\"status\":{\"error\":\"the response passed --max-response\"}}");
            r->code = 500;
        }
    }
    len = body ? strlen(body) : 0;
    struct MHD_Response *mr = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!mr) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(mr, "Content-Type", ctype);
    if (r->code == 401)
        MHD_add_response_header(mr, "WWW-Authenticate", "Bearer");
    if (r->retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", r->retry_after);
        MHD_add_response_header(mr, "Retry-After", ra);
    }
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->code, mr);
    MHD_destroy_response(mr);
    record(s, route, r->code, secs);
    /* every server-side failure is logged with its cause, verbose or not */
    if (r->code >= 500)
        fprintf(stderr, "vqs serve: %s %.200s -> %d: %s\n", method, url, r->code, r->err);
    else if (s->o.verbose)
        fprintf(stderr, "vqs serve: %s %.200s -> %d (%.3f ms)\n", method, url, r->code, secs * 1e3);
    return ret;
}

/* ---- connections: the reaper ------------------------------------------------------------ */

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    vqs_server *s = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        conn_track *t = calloc(1, sizeof *t);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = t;
        if (!t)
            return; /* untracked: only the idle timeout applies to it */
        t->fd = ci ? ci->connect_fd : -1;
        t->mark = vqs_now();
        pthread_mutex_lock(&s->clock_);
        t->next = s->conns;
        if (s->conns)
            s->conns->prev = t;
        s->conns = t;
        pthread_mutex_unlock(&s->clock_);
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        conn_track *t = *socket_context;
        if (!t)
            return;
        /* libmicrohttpd closes the socket after this returns: once t is off
         * the list the reaper cannot reach its descriptor */
        pthread_mutex_lock(&s->clock_);
        if (t->prev)
            t->prev->next = t->next;
        else
            s->conns = t->next;
        if (t->next)
            t->next->prev = t->prev;
        pthread_mutex_unlock(&s->clock_);
        free(t);
        *socket_context = NULL;
    }
}

static conn_track *track_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void track_busy(vqs_server *s, conn_track *t, int busy)
{
    if (!t)
        return;
    pthread_mutex_lock(&s->clock_);
    t->busy = busy;
    t->mark = vqs_now();
    pthread_mutex_unlock(&s->clock_);
}

static void *reaper_main(void *arg)
{
    vqs_server *s = arg;
    double period = s->o.read_timeout / 4 < 0.5 ? s->o.read_timeout / 4 : 0.5;
    pthread_mutex_lock(&s->clock_);
    while (!s->cstop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double t = ts.tv_sec + ts.tv_nsec * 1e-9 + period;
        ts.tv_sec = (time_t)t;
        ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
        pthread_cond_timedwait(&s->ccond, &s->clock_, &ts);
        double now = vqs_now();
        for (conn_track *c = s->conns; c; c = c->next)
            if (!c->busy && !c->shut && c->fd >= 0 && now - c->mark > s->o.read_timeout) {
                /* a request not complete within the read deadline: slow
                 * headers or body. libmicrohttpd sees the end of the stream
                 * and closes the connection itself. */
                shutdown(c->fd, SHUT_RDWR);
                c->shut = 1;
                __atomic_add_fetch(&s->reaped, 1, __ATOMIC_RELAXED);
            }
    }
    pthread_mutex_unlock(&s->clock_);
    return NULL;
}

/* ---- the work queue ---------------------------------------------------------------------- */

/* Requests answered by the I/O threads themselves: reads of bounded cost. */
static int is_cheap(const char *method, const char *path)
{
    if (!strcmp(method, "GET") || !strcmp(method, "HEAD"))
        return 1;
    size_t n = strlen(path);
    return !strcmp(method, "POST") && n > 13 && !strcmp(path + n - 13, "/points/count");
}

/* q->r may already hold the refusal of a bad path (on_request decoded it) */
static void run_request(vqs_server *s, struct MHD_Connection *conn, const char *method, req *q)
{
    q->route = R_UNKNOWN;
    if (q->r.code) {
        /* refused: the path */
    } else if (q->over_total) {
        fail(&q->r, 503, "request bodies held at once would pass %zu bytes (--max-body-total); retry later",
             s->o.max_body_total);
        q->r.retry_after = 1;
    } else if (q->too_big) {
        fail(&q->r, 413, "request body over the limit of %zu bytes (--max-body)", s->o.max_body);
    } else if (strcmp(q->path, "/healthz") && strcmp(q->path, "/livez") && strcmp(q->path, "/readyz") &&
               !key_ok(s, conn)) {
        fail(&q->r, 401, "Unauthorized: a valid api-key header is required");
    } else if (check_deadline(q, &q->r) == 0) {
        dispatch(s, conn, method, q->path, q, &q->r, &q->route);
    }
    if (q->r.code == 0)
        fail(&q->r, 500, "internal error: no response");
}

static void *worker_main(void *arg)
{
    vqs_server *s = arg;
    pthread_mutex_lock(&s->qlock);
    for (;;) {
        /* stopping: leave once nothing is queued or about to be */
        while (!s->qlen && !(s->qstop && !s->qreserved))
            pthread_cond_wait(&s->qcond, &s->qlock);
        if (!s->qlen)
            break;
        req *q = s->queue[s->qhead];
        s->qhead = (s->qhead + 1) % s->qcap;
        s->qlen--;
        s->busy_workers++;
        int stopping = s->qstop;
        pthread_mutex_unlock(&s->qlock);
        if (stopping) {
            q->r.code = 0;
            fail(&q->r, 503, "the server is stopping");
            q->r.retry_after = 1;
        } else {
            run_request(s, q->conn, q->method, q);
        }
        struct MHD_Connection *conn = q->conn; /* q is freed once the answer is sent */
        q->done = 1;
        pthread_mutex_lock(&s->qlock);
        s->busy_workers--;
        pthread_mutex_unlock(&s->qlock);
        MHD_resume_connection(conn);
        pthread_mutex_lock(&s->qlock);
    }
    pthread_mutex_unlock(&s->qlock);
    return NULL;
}

/* ---- libmicrohttpd callbacks -------------------------------------------------------------- */

/* Accounts n more bytes of q's body against --max-body-total; 0 (and
 * nothing accounted) when they do not fit. */
static int hold_body(vqs_server *s, req *q, size_t n)
{
    size_t now = __atomic_add_fetch(&s->body_bytes, n, __ATOMIC_SEQ_CST);
    if (now > s->o.max_body_total) {
        __atomic_sub_fetch(&s->body_bytes, n, __ATOMIC_SEQ_CST);
        return 0;
    }
    q->held += n;
    return 1;
}

/* Called with the request target as sent, before libmicrohttpd unescapes
 * it; what it returns is the request's context (*con_cls). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    req *q = calloc(1, sizeof *q);
    if (q && !(q->raw_url = strdup(uri ? uri : "/"))) {
        free(q);
        q = NULL;
    }
    return q;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    vqs_server *s = cls;
    req *q = *con_cls;
    if (!q && !(q = *con_cls = on_uri(s, url, conn)))
        return MHD_NO;
    const char *shown = q->raw_url ? q->raw_url : url;
    if (!q->started) {
        q->started = 1;
        q->t0 = vqs_now();
        double to = s->o.timeout;
        const char *ts = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "timeout");
        __atomic_add_fetch(&s->active, 1, __ATOMIC_SEQ_CST);
        q->counted = 1;
        if (ts) { /* Qdrant's per-request timeout, in seconds: it may only shorten ours */
            char *end;
            double x = strtod(ts, &end);
            if (*end || !(x > 0)) {
                resp r = {0};
                fail(&r, 400, "query parameter timeout=%.40s: must be a number of seconds > 0", ts);
                return send_resp(s, conn, &r, q->t0, R_UNKNOWN, method, shown);
            }
            if (x < to)
                to = x;
        }
        q->deadline = q->t0 + to;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        unsigned long long want = cl ? strtoull(cl, NULL, 10) : 0;
        if (want > s->o.max_body) {
            resp r = {0};
            fail(&r, 413, "request body of %.30s bytes; the limit is %zu (--max-body)", cl, s->o.max_body);
            return send_resp(s, conn, &r, q->t0, R_UNKNOWN, method, shown);
        }
        if (want && !hold_body(s, q, (size_t)want)) {
            resp r = {0};
            fail(&r, 503, "request bodies held at once would pass %zu bytes (--max-body-total); retry later",
                 s->o.max_body_total);
            r.retry_after = 1;
            return send_resp(s, conn, &r, q->t0, R_UNKNOWN, method, shown);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (!q->too_big && !q->over_total && q->len + n > q->held && !hold_body(s, q, q->len + n - q->held))
            q->over_total = 1; /* a chunked body past the server's total */
        if (q->too_big || q->over_total || q->len + n > s->o.max_body) {
            q->too_big |= !q->over_total;
            free(q->body);
            q->body = NULL;
            q->len = q->cap = 0;
            return MHD_YES;
        }
        if (q->len + n + 1 > q->cap) {
            size_t cap = q->cap ? q->cap : 4096;
            while (cap < q->len + n + 1)
                cap *= 2;
            char *b = realloc(q->body, cap);
            if (!b)
                return MHD_NO;
            q->body = b;
            q->cap = cap;
        }
        memcpy(q->body + q->len, upload_data, n);
        q->len += n;
        q->body[q->len] = 0;
        return MHD_YES;
    }
    if (q->done) /* a worker has answered it: send */
        return send_resp(s, conn, &q->r, q->t0, q->route, method, shown);
    if (q->queued) /* resumed without an answer (cannot happen): wait */
        return MHD_YES;
    track_busy(s, track_of(conn), 1);
    if (!q->too_big && !q->over_total && decode_path(q->raw_url ? q->raw_url : url, q->path, sizeof q->path, &q->r) == 0 &&
        !is_cheap(method, q->path)) {
        /* to the workers: reserve a place, suspend, then queue (a worker
         * may resume the connection as soon as it is queued) */
        pthread_mutex_lock(&s->qlock);
        int stopping = s->qstop, full = s->qlen + s->qreserved >= s->qcap || stopping;
        if (!full)
            s->qreserved++;
        pthread_mutex_unlock(&s->qlock);
        if (full) {
            __atomic_add_fetch(&s->rejected_full, 1, __ATOMIC_RELAXED);
            resp r = {0};
            if (stopping)
                fail(&r, 503, "the server is stopping");
            else
                fail(&r, 503, "the server is busy: the work queue is full (%zu waiting, --queue); retry later",
                     s->qcap);
            r.retry_after = 1;
            return send_resp(s, conn, &r, q->t0, R_UNKNOWN, method, shown);
        }
        q->conn = conn;
        q->method = method;
        q->queued = 1;
        MHD_suspend_connection(conn);
        pthread_mutex_lock(&s->qlock);
        s->qreserved--;
        s->queue[(s->qhead + s->qlen) % s->qcap] = q;
        s->qlen++;
        if (s->qstop)
            pthread_cond_broadcast(&s->qcond);
        else
            pthread_cond_signal(&s->qcond);
        pthread_mutex_unlock(&s->qlock);
        return MHD_YES;
    }
    run_request(s, conn, method, q);
    return send_resp(s, conn, &q->r, q->t0, q->route, method, shown);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    vqs_server *s = cls;
    req *q = *con_cls;
    track_busy(s, track_of(conn), 0);
    if (!q)
        return;
    if (q->counted)
        __atomic_sub_fetch(&s->active, 1, __ATOMIC_SEQ_CST);
    if (q->held)
        __atomic_sub_fetch(&s->body_bytes, q->held, __ATOMIC_SEQ_CST);
    json_decref(q->r.result);
    free(q->r.raw);
    free(q->raw_url);
    free(q->body);
    free(q);
    *con_cls = NULL;
}

/* ---- start and stop ------------------------------------------------------------------ */

int vqs_server_start(const char *dir, const vqs_server_opts *o, vqs_server **out)
{
    if (!dir || !out)
        return vqs_seterr(VQS_EINVAL, "server_start: NULL argument");
    *out = NULL;
    vqs_server *s = calloc(1, sizeof *s);
    if (!s)
        return vqs_seterr(VQS_ENOMEM, "server_start");
    if (o)
        s->o = *o;
    snprintf(s->host, sizeof s->host, "%s", s->o.host && *s->o.host ? s->o.host : "127.0.0.1");
    s->o.host = s->host;
    if (s->o.threads <= 0)
        s->o.threads = vqs_default_threads();
    if (!s->o.max_body)
        s->o.max_body = 64u << 20;
    if (!s->o.max_batch)
        s->o.max_batch = 10000;
    if (!s->o.max_limit)
        s->o.max_limit = 10000;
    if (!s->o.max_results)
        s->o.max_results = 100000;
    if (!s->o.max_candidates)
        s->o.max_candidates = 100000;
    if (!s->o.max_response)
        s->o.max_response = 64u << 20;
    if (!s->o.max_body_total)
        s->o.max_body_total = (size_t)1 << 30;
    if (!(s->o.timeout > 0))
        s->o.timeout = 30;
    if (s->o.queue <= 0)
        s->o.queue = 64;
    if (s->o.max_conn <= 0)
        s->o.max_conn = 1000;
    if (s->o.max_conn_per_ip <= 0)
        s->o.max_conn_per_ip = 128;
    if (!(s->o.idle_timeout > 0))
        s->o.idle_timeout = 10;
    if (!(s->o.read_timeout > 0))
        s->o.read_timeout = 30;
    pthread_rwlock_init(&s->reg, NULL);
    pthread_mutex_init(&s->mlock, NULL);
    pthread_mutex_init(&s->qlock, NULL);
    pthread_cond_init(&s->qcond, NULL);
    pthread_mutex_init(&s->clock_, NULL);
    pthread_cond_init(&s->ccond, NULL);
    int rc = vqs_db_open(dir, NULL, &s->db);
    if (rc) {
        vqs_server_stop(s, 0);
        return rc;
    }
    char **names = NULL;
    size_t n = 0;
    if ((rc = vqs_db_list(s->db, &names, &n))) {
        vqs_server_stop(s, 0);
        return rc;
    }
    for (size_t i = n; i-- > 0;) {
        entry *e = entry_open(s, names[i]);
        if (e) {
            e->next = s->colls;
            s->colls = e;
        }
    }
    vqs_db_list_free(names, n);
    vqs_clearerr();
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)s->o.port);
    if (inet_pton(AF_INET, s->host, &sa.sin_addr) != 1) {
        vqs_server_stop(s, 0);
        return vqs_seterr(VQS_EINVAL, "--host %s: not an IPv4 address", s->host);
    }
    s->qcap = (size_t)s->o.queue;
    s->nworkers = s->o.threads;
    if (!(s->queue = calloc(s->qcap, sizeof *s->queue)) || !(s->workers = calloc((size_t)s->nworkers, sizeof(pthread_t)))) {
        vqs_server_stop(s, 0);
        return vqs_seterr(VQS_ENOMEM, "server_start");
    }
    for (int i = 0; i < s->nworkers; i++)
        if (pthread_create(&s->workers[i], NULL, worker_main, s)) {
            s->nworkers = i;
            vqs_server_stop(s, 0);
            return vqs_seterr(VQS_ENOMEM, "server_start: threads");
        }
    if (pthread_create(&s->reaper, NULL, reaper_main, s) == 0)
        s->reaper_on = 1;
    /* the I/O threads: parsing, cheap requests and sending; at least 2 so
     * that one slow client's send never holds every cheap request */
    unsigned io = s->o.threads < 2 ? 2 : (unsigned)s->o.threads;
    unsigned idle = s->o.idle_timeout < 1 ? 1 : (unsigned)ceil(s->o.idle_timeout);
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME,
                            (uint16_t)s->o.port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE, io, MHD_OPTION_NOTIFY_COMPLETED,
                            on_completed, s, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                            MHD_OPTION_URI_LOG_CALLBACK, on_uri, s, MHD_OPTION_CONNECTION_TIMEOUT, idle,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)s->o.max_conn,
                            MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)s->o.max_conn_per_ip, MHD_OPTION_END);
    if (!s->d) {
        int e = errno;
        vqs_server_stop(s, 0);
        return vqs_seterr(VQS_EINVAL, "cannot listen on %s:%d: %s", o && o->host ? o->host : "127.0.0.1",
                          o ? o->port : 0, strerror(e ? e : EADDRINUSE));
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : s->o.port;
    *out = s;
    return 0;
}

int vqs_server_port(const vqs_server *s) { return s->port; }

void vqs_server_stop(vqs_server *s, double grace_s)
{
    if (!s)
        return;
    MHD_socket ls = MHD_INVALID_SOCKET;
    if (s->d) {
        ls = MHD_quiesce_daemon(s->d); /* no new connections */
        double t0 = vqs_now();
        while (__atomic_load_n(&s->active, __ATOMIC_SEQ_CST) && vqs_now() - t0 < grace_s) {
            struct timespec ts = {0, 5 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    /* the workers answer what is still queued with 503 and resume it, so
     * that no connection is left suspended when libmicrohttpd stops */
    pthread_mutex_lock(&s->qlock);
    s->qstop = 1;
    pthread_cond_broadcast(&s->qcond);
    pthread_mutex_unlock(&s->qlock);
    for (int i = 0; i < s->nworkers; i++)
        pthread_join(s->workers[i], NULL);
    if (s->d)
        MHD_stop_daemon(s->d);
    if (ls != MHD_INVALID_SOCKET)
        close(ls);
    if (s->reaper_on) {
        pthread_mutex_lock(&s->clock_);
        s->cstop = 1;
        pthread_cond_broadcast(&s->ccond);
        pthread_mutex_unlock(&s->clock_);
        pthread_join(s->reaper, NULL);
    }
    while (s->colls) {
        entry *e = s->colls;
        s->colls = e->next;
        entry_free(e);
    }
    vqs_db_close(s->db);
    free(s->queue);
    free(s->workers);
    pthread_rwlock_destroy(&s->reg);
    pthread_mutex_destroy(&s->mlock);
    pthread_mutex_destroy(&s->qlock);
    pthread_cond_destroy(&s->qcond);
    pthread_mutex_destroy(&s->clock_);
    pthread_cond_destroy(&s->ccond);
    free(s);
}
