/*
 * routes.c: the route table, one line per endpoint (method, path, what its
 * handler needs, flags, handler, metric label), and dispatch.
 *
 * Design decisions:
 * - The table is the one list of endpoints: /metrics labels its counters
 *   with the routes' metric names (in table order), the I/O threads answer
 *   the routes marked ROUTE_CHEAP themselves (and every GET and HEAD), and
 *   the routes marked ROUTE_NOKEY need no api key. The handlers keep their
 *   own signatures; one-line r_* adapters pass them what the "needs"
 *   column prepared (a checked collection name, the registry read-locked,
 *   the open collection). Rejected: an if-chain of strcmp (the endpoints
 *   were then listed again in the metric names, the cheap-request test and
 *   the api key exemption), and a general router (patterns, a trie) for
 *   a few dozen fixed paths.
 * - A path under /collections/ names a collection: a bad name is a 400
 *   whatever follows, then a missing collection a 404 and one that could
 *   not be opened a 500, before the rest of the path is looked at. A wrong
 *   method on a path the server has (its own or a collection's) is a 405
 *   with an Allow header listing the path's methods (allow_list), before
 *   the name is looked at: no method makes it right.
 * - An alias stands for its collection on every route that works on an
 *   existing collection (NEED_LOOKUP, NEED_OPEN) and on PATCH, as Qdrant
 *   resolves them; create and drop take real names only.
 * - The rest of Qdrant's REST API has routes too, answering 400 "not
 *   supported by vqs: WHAT" (r_refused), so a client learns what it hit
 *   instead of a 404 that reads like a wrong URL.
 * - Paths are routed from the raw request target (libmicrohttpd's URI log
 *   callback) decoded once here: libmicrohttpd's own unescaping turns %00
 *   into a terminating NUL, so "victim%00.tmp" would address "victim".
 *   A control byte, NUL, an encoded '/' or a malformed escape is a 400.
 */
#define _GNU_SOURCE
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

/* The Qdrant REST API whose shapes vqs follows (its openapi spec, v1.18.x):
 * what GET / reports as "version", so that Qdrant's clients, which compare
 * it with their own (major equal, minor within one), accept the server
 * (api/README.md, "GET /"). */
#define QDRANT_COMPAT_VERSION "1.18.0"
#define VQS_API_VERSION "0.1.0"

/* ---- paths ----------------------------------------------------------------------- */

static int hexval_c(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* (conn NULL: a request dispatched without a connection, as the API fuzz
 * target does: JSON) */
static int is_binary(struct MHD_Connection *conn)
{
    const char *ct = conn ? MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type") : NULL;
    return ct && !strncasecmp(ct, "application/octet-stream", 24);
}

/* The path of a raw request target (up to '?'), percent-decoded once into
 * out (cap bytes). 400 for a malformed escape, a decoded NUL or control
 * byte, or an encoded '/' (it would split or join path segments). */
int api_decode_path(const char *raw, char *out, size_t cap, resp *r)
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

/* ---- the route table ------------------------------------------------------------- */

/* What a route's handler needs before it runs. */
typedef enum route_needs {
    NEED_NONE,   /* the server's own paths */
    NEED_NAME,   /* a valid collection name (create and drop lock the registry themselves) */
    NEED_LOOKUP, /* the registry read-locked and the collection looked up (it may not exist) */
    NEED_OPEN,   /* an open collection; the registry stays read-locked while the handler runs */
} route_needs;

enum {
    ROUTE_CHEAP = 1,  /* a read of bounded cost, answered by the I/O threads (as every GET and HEAD) */
    ROUTE_NOKEY = 2,  /* needs no api key */
};

/* a handler's arguments */
typedef struct route_call {
    vqs_server *s;
    struct MHD_Connection *conn;
    req *q;
    const char *name; /* the collection's (NEED_NAME and after) */
    entry *e;         /* NEED_LOOKUP: NULL if it does not exist; NEED_OPEN: open */
    const char *id;   /* the {id} segment */
    const struct route_def *rt; /* the route */
} route_call;

typedef struct route_def {
    const char *method; /* NULL: any */
    const char *path;   /* {name} and {id} take one segment (possibly empty); '|' separates aliases */
    route_needs needs;
    unsigned flags; /* ROUTE_* */
    int (*fn)(const route_call *c, resp *r);
    const char *metric; /* the endpoint label of /metrics */
} route_def;

static int r_root(const route_call *c, resp *r)
{
    (void)c;
    /* as Qdrant's, not wrapped in "result"; "version" is the Qdrant API
     * level the shapes follow (clients compare it with their own) */
    r->code = 200;
    r->ctype = "application/json";
    r->raw = strdup("{\"title\":\"vqs - vector quantization search\",\"version\":\"" QDRANT_COMPAT_VERSION
                    "\",\"vqs_version\":\"" VQS_API_VERSION "\"}");
    return r->raw ? 200 : fail(r, 500, "out of memory");
}

static int r_health(const route_call *c, resp *r)
{
    (void)c;
    r->code = 200;
    r->raw = strdup("healthz check passed\n");
    r->ctype = "text/plain";
    return 200;
}

static int r_metrics(const route_call *c, resp *r)
{
    r->code = 200;
    r->raw = api_metrics_text(c->s);
    r->ctype = "text/plain; version=0.0.4";
    return r->raw ? 200 : fail(r, 500, "out of memory");
}

static int r_list(const route_call *c, resp *r) { return api_h_list(c->s, r); }
static int r_get_coll(const route_call *c, resp *r) { return api_h_get_coll(c->e, r); }
static int r_create(const route_call *c, resp *r) { return api_h_create(c->s, c->name, c->q, r); }
static int r_drop(const route_call *c, resp *r) { return api_h_drop(c->s, c->name, r); }
static int r_exists(const route_call *c, resp *r) { return ok(r, json_pack("{s:b}", "exists", c->e != NULL)); }
static int r_upsert(const route_call *c, resp *r)
{
    return is_binary(c->conn) ? api_h_upsert_bin(c->s, c->e, c->q, r) : api_h_upsert_json(c->s, c->e, c->q, r);
}
static int r_retrieve(const route_call *c, resp *r) { return api_h_retrieve(c->s, c->e, c->q, r, NULL); }
static int r_get_point(const route_call *c, resp *r) { return api_h_retrieve(c->s, c->e, c->q, r, c->id); }
static int r_delete(const route_call *c, resp *r) { return api_h_delete(c->s, c->e, c->q, r); }
static int r_count(const route_call *c, resp *r) { return api_h_count(c->e, c->q, r); }
static int r_search(const route_call *c, resp *r)
{
    if (is_binary(c->conn))
        return api_h_search_bin(c->s, c->e, c->conn, c->q, r);
    return api_h_search(c->s, c->e, c->q, r, SEARCH_ONE);
}
static int r_search_batch(const route_call *c, resp *r) { return api_h_search(c->s, c->e, c->q, r, SEARCH_BATCH); }
static int r_query(const route_call *c, resp *r) { return api_h_query(c->s, c->e, c->q, r, QUERY_ONE); }
static int r_train(const route_call *c, resp *r) { return api_h_train(c->e, r); }
static int r_scroll(const route_call *c, resp *r) { return api_h_scroll(c->s, c->e, c->q, r); }
static int r_pay_set(const route_call *c, resp *r) { return api_h_payload(c->s, c->e, c->q, r, PAYLOAD_SET); }
static int r_pay_over(const route_call *c, resp *r) { return api_h_payload(c->s, c->e, c->q, r, PAYLOAD_OVERWRITE); }
static int r_pay_del(const route_call *c, resp *r) { return api_h_payload(c->s, c->e, c->q, r, PAYLOAD_DELETE); }
static int r_pay_clear(const route_call *c, resp *r) { return api_h_payload(c->s, c->e, c->q, r, PAYLOAD_CLEAR); }
static int r_vec_update(const route_call *c, resp *r) { return api_h_update_vectors(c->s, c->e, c->q, r); }
static int r_vec_delete(const route_call *c, resp *r) { return api_h_delete_vectors(c->s, c->e, c->q, r); }
static int r_batch(const route_call *c, resp *r) { return api_h_batch(c->s, c->e, c->q, r); }
static int r_query_batch(const route_call *c, resp *r) { return api_h_query(c->s, c->e, c->q, r, QUERY_BATCH); }
static int r_query_groups(const route_call *c, resp *r) { return api_h_query(c->s, c->e, c->q, r, QUERY_GROUPS); }
static int r_search_groups(const route_call *c, resp *r) { return api_h_search_groups(c->s, c->e, c->q, r); }
static int r_recommend(const route_call *c, resp *r) { return api_h_recommend(c->s, c->e, c->q, r, QUERY_ONE); }
static int r_recommend_batch(const route_call *c, resp *r) { return api_h_recommend(c->s, c->e, c->q, r, QUERY_BATCH); }
static int r_recommend_groups(const route_call *c, resp *r) { return api_h_recommend(c->s, c->e, c->q, r, QUERY_GROUPS); }
static int r_patch(const route_call *c, resp *r) { return api_h_patch(c->s, c->name, c->q, r); }
static int r_aliases_update(const route_call *c, resp *r) { return api_h_aliases_update(c->s, c->q, r); }
static int r_aliases_all(const route_call *c, resp *r) { return api_h_aliases_list(c->s, NULL, r); }
static int r_aliases_of(const route_call *c, resp *r) { return api_h_aliases_list(c->s, c->name, r); }
static int r_index_create(const route_call *c, resp *r) { return api_h_index_create(c->s, c->e, c->q, r); }
static int r_index_delete(const route_call *c, resp *r) { return api_h_index_delete(c->s, c->e, c->q, r, c->id); }

/* Qdrant endpoints vqs does not have: what each is, by its metric label
 * (Qdrant's operationId), for the 400 "not supported by vqs: WHAT". */
static const struct {
    const char *metric, *what;
} refused_what[] = {
    {"telemetry", "telemetry (GET /metrics has vqs's counters)"},
    {"get_issues", "issues"},
    {"clear_issues", "issues"},
    {"cluster_status", "cluster (vqs is one node)"},
    {"cluster_telemetry", "cluster telemetry (vqs is one node)"},
    {"recover_current_peer", "cluster recovery (vqs is one node)"},
    {"remove_peer", "cluster peers (vqs is one node)"},
    {"locks", "locks (removed from Qdrant's API)"},
    {"list_full_snapshots", "snapshots"},
    {"create_full_snapshot", "snapshots"},
    {"get_full_snapshot", "snapshots"},
    {"delete_full_snapshot", "snapshots"},
    {"list_snapshots", "snapshots"},
    {"create_snapshot", "snapshots"},
    {"recover_from_uploaded_snapshot", "snapshots"},
    {"recover_from_snapshot", "snapshots"},
    {"get_snapshot", "snapshots"},
    {"delete_snapshot", "snapshots"},
    {"stream_shard_snapshot", "shard snapshots (vqs has one shard per collection)"},
    {"list_shard_snapshots", "shard snapshots (vqs has one shard per collection)"},
    {"create_shard_snapshot", "shard snapshots (vqs has one shard per collection)"},
    {"recover_shard_from_uploaded_snapshot", "shard snapshots (vqs has one shard per collection)"},
    {"recover_shard_from_snapshot", "shard snapshots (vqs has one shard per collection)"},
    {"get_shard_snapshot", "shard snapshots (vqs has one shard per collection)"},
    {"delete_shard_snapshot", "shard snapshots (vqs has one shard per collection)"},
    {"create_shard_key", "shard keys (vqs has one shard per collection)"},
    {"list_shard_keys", "shard keys (vqs has one shard per collection)"},
    {"delete_shard_key", "shard keys (vqs has one shard per collection)"},
    {"create_vector_name", "adding a named vector to a collection"},
    {"delete_vector_name", "removing a named vector from a collection"},
    {"collection_cluster_info", "collection cluster info (vqs is one node, one shard)"},
    {"update_collection_cluster", "collection cluster changes (vqs is one node, one shard)"},
    {"get_optimizations", "optimizations (vqs has no background optimizer: training runs in the upsert "
                          "that reaches train_size, or POST .../train)"},
    {"discover_points", "discover"},
    {"discover_batch_points", "discover"},
    {"facet", "facet counts"},
    {"search_matrix_pairs", "the distance matrix (search/matrix)"},
    {"search_matrix_offsets", "the distance matrix (search/matrix)"},
};

static int r_refused(const route_call *c, resp *r)
{
    const char *what = c->rt->metric;
    for (size_t i = 0; i < sizeof refused_what / sizeof refused_what[0]; i++)
        if (!strcmp(refused_what[i].metric, c->rt->metric))
            what = refused_what[i].what;
    return fail(r, 400, "not supported by vqs: %s", what);
}

/* Every endpoint, one line each (api/README.md documents them). Its order
 * is the order of /metrics. No two routes of one method match one path. */
static const route_def routes[] = {
    /* method  path                                     needs        flags        handler         metric */
    {"GET",    "/",                                     NEED_NONE,   0,           r_root,         "root"},
    {NULL,     "/healthz|/livez|/readyz",               NEED_NONE,   ROUTE_NOKEY, r_health,       "healthz"},
    {NULL,     "/metrics",                              NEED_NONE,   0,           r_metrics,      "metrics"},
    {"GET",    "/collections|/collections/",            NEED_NONE,   0,           r_list,         "list_collections"},
    {"GET",    "/collections/{name}",                   NEED_OPEN,   0,           r_get_coll,     "get_collection"},
    {"PUT",    "/collections/{name}",                   NEED_NAME,   0,           r_create,       "create_collection"},
    {"DELETE", "/collections/{name}",                   NEED_NAME,   0,           r_drop,         "delete_collection"},
    {"GET",    "/collections/{name}/exists",            NEED_LOOKUP, 0,           r_exists,       "collection_exists"},
    {"PUT",    "/collections/{name}/points",            NEED_OPEN,   0,           r_upsert,       "upsert_points"},
    {"POST",   "/collections/{name}/points",            NEED_OPEN,   0,           r_retrieve,     "retrieve_points"},
    {"GET",    "/collections/{name}/points/{id}",       NEED_OPEN,   0,           r_get_point,    "get_point"},
    {"POST",   "/collections/{name}/points/delete",     NEED_OPEN,   0,           r_delete,       "delete_points"},
    {"POST",   "/collections/{name}/points/count",      NEED_OPEN,   ROUTE_CHEAP, r_count,        "count_points"},
    {"POST",   "/collections/{name}/points/search",     NEED_OPEN,   0,           r_search,       "search"},
    {"POST",   "/collections/{name}/points/search/batch", NEED_OPEN, 0,           r_search_batch, "search_batch"},
    {"POST",   "/collections/{name}/points/query",      NEED_OPEN,   0,           r_query,        "query"},
    {"POST",   "/collections/{name}/train",             NEED_OPEN,   0,           r_train,        "train"},
    {"PATCH",  "/collections/{name}",                   NEED_NAME,   0,           r_patch,        "update_collection"},
    {"POST",   "/collections/aliases",                  NEED_NONE,   0,           r_aliases_update, "update_aliases"},
    {"GET",    "/aliases",                              NEED_NONE,   0,           r_aliases_all,  "get_aliases"},
    {"GET",    "/collections/{name}/aliases",           NEED_OPEN,   0,           r_aliases_of,   "get_collection_aliases"},
    {"PUT",    "/collections/{name}/index",             NEED_OPEN,   0,           r_index_create, "create_field_index"},
    {"DELETE", "/collections/{name}/index/{id}",        NEED_OPEN,   0,           r_index_delete, "delete_field_index"},
    {"POST",   "/collections/{name}/points/scroll",     NEED_OPEN,   0,           r_scroll,       "scroll_points"},
    {"POST",   "/collections/{name}/points/payload",    NEED_OPEN,   0,           r_pay_set,      "set_payload"},
    {"PUT",    "/collections/{name}/points/payload",    NEED_OPEN,   0,           r_pay_over,     "overwrite_payload"},
    {"POST",   "/collections/{name}/points/payload/delete", NEED_OPEN, 0,         r_pay_del,      "delete_payload"},
    {"POST",   "/collections/{name}/points/payload/clear",  NEED_OPEN, 0,         r_pay_clear,    "clear_payload"},
    {"PUT",    "/collections/{name}/points/vectors",    NEED_OPEN,   0,           r_vec_update,   "update_vectors"},
    {"POST",   "/collections/{name}/points/vectors/delete", NEED_OPEN, 0,         r_vec_delete,   "delete_vectors"},
    {"POST",   "/collections/{name}/points/batch",      NEED_OPEN,   0,           r_batch,        "batch_update"},
    {"POST",   "/collections/{name}/points/query/batch", NEED_OPEN,  0,           r_query_batch,  "query_batch"},
    {"POST",   "/collections/{name}/points/query/groups", NEED_OPEN, 0,           r_query_groups, "query_groups"},
    {"POST",   "/collections/{name}/points/search/groups", NEED_OPEN, 0,          r_search_groups, "search_groups"},
    {"POST",   "/collections/{name}/points/recommend",  NEED_OPEN,   0,           r_recommend,    "recommend"},
    {"POST",   "/collections/{name}/points/recommend/batch", NEED_OPEN, 0,        r_recommend_batch, "recommend_batch"},
    {"POST",   "/collections/{name}/points/recommend/groups", NEED_OPEN, 0,       r_recommend_groups, "recommend_groups"},
    /* the rest of Qdrant 1.18's REST API: refused with a 400 naming it (refused_what) */
    {"GET",    "/telemetry",                            NEED_NONE,   ROUTE_CHEAP, r_refused,      "telemetry"},
    {"GET",    "/issues",                               NEED_NONE,   ROUTE_CHEAP, r_refused,      "get_issues"},
    {"DELETE", "/issues",                               NEED_NONE,   ROUTE_CHEAP, r_refused,      "clear_issues"},
    {"GET",    "/cluster",                              NEED_NONE,   ROUTE_CHEAP, r_refused,      "cluster_status"},
    {"GET",    "/cluster/telemetry",                    NEED_NONE,   ROUTE_CHEAP, r_refused,      "cluster_telemetry"},
    {"POST",   "/cluster/recover",                      NEED_NONE,   ROUTE_CHEAP, r_refused,      "recover_current_peer"},
    {"DELETE", "/cluster/peer/{peer_id}",               NEED_NONE,   ROUTE_CHEAP, r_refused,      "remove_peer"},
    {NULL,     "/locks",                                NEED_NONE,   ROUTE_CHEAP, r_refused,      "locks"},
    {"GET",    "/snapshots",                            NEED_NONE,   ROUTE_CHEAP, r_refused,      "list_full_snapshots"},
    {"POST",   "/snapshots",                            NEED_NONE,   ROUTE_CHEAP, r_refused,      "create_full_snapshot"},
    {"GET",    "/snapshots/{snapshot}",                 NEED_NONE,   ROUTE_CHEAP, r_refused,      "get_full_snapshot"},
    {"DELETE", "/snapshots/{snapshot}",                 NEED_NONE,   ROUTE_CHEAP, r_refused,      "delete_full_snapshot"},
    {"GET",    "/collections/{name}/snapshots",         NEED_NONE,   ROUTE_CHEAP, r_refused,      "list_snapshots"},
    {"POST",   "/collections/{name}/snapshots",         NEED_NONE,   ROUTE_CHEAP, r_refused,      "create_snapshot"},
    {"POST",   "/collections/{name}/snapshots/upload",  NEED_NONE,   ROUTE_CHEAP, r_refused,      "recover_from_uploaded_snapshot"},
    {"PUT",    "/collections/{name}/snapshots/recover", NEED_NONE,   ROUTE_CHEAP, r_refused,      "recover_from_snapshot"},
    {"GET",    "/collections/{name}/snapshots/{snapshot}", NEED_NONE, ROUTE_CHEAP, r_refused,     "get_snapshot"},
    {"DELETE", "/collections/{name}/snapshots/{snapshot}", NEED_NONE, ROUTE_CHEAP, r_refused,     "delete_snapshot"},
    {"GET",    "/collections/{name}/shards/{shard}/snapshot", NEED_NONE, ROUTE_CHEAP, r_refused,  "stream_shard_snapshot"},
    {"GET",    "/collections/{name}/shards/{shard}/snapshots", NEED_NONE, ROUTE_CHEAP, r_refused, "list_shard_snapshots"},
    {"POST",   "/collections/{name}/shards/{shard}/snapshots", NEED_NONE, ROUTE_CHEAP, r_refused, "create_shard_snapshot"},
    {"POST",   "/collections/{name}/shards/{shard}/snapshots/upload", NEED_NONE, ROUTE_CHEAP, r_refused, "recover_shard_from_uploaded_snapshot"},
    {"PUT",    "/collections/{name}/shards/{shard}/snapshots/recover", NEED_NONE, ROUTE_CHEAP, r_refused, "recover_shard_from_snapshot"},
    {"GET",    "/collections/{name}/shards/{shard}/snapshots/{snapshot}", NEED_NONE, ROUTE_CHEAP, r_refused, "get_shard_snapshot"},
    {"DELETE", "/collections/{name}/shards/{shard}/snapshots/{snapshot}", NEED_NONE, ROUTE_CHEAP, r_refused, "delete_shard_snapshot"},
    {"PUT",    "/collections/{name}/shards",            NEED_NONE,   ROUTE_CHEAP, r_refused,      "create_shard_key"},
    {"GET",    "/collections/{name}/shards",            NEED_NONE,   ROUTE_CHEAP, r_refused,      "list_shard_keys"},
    {"POST",   "/collections/{name}/shards/delete",     NEED_NONE,   ROUTE_CHEAP, r_refused,      "delete_shard_key"},
    {"PUT",    "/collections/{name}/vectors/{vector}",  NEED_NONE,   ROUTE_CHEAP, r_refused,      "create_vector_name"},
    {"DELETE", "/collections/{name}/vectors/{vector}",  NEED_NONE,   ROUTE_CHEAP, r_refused,      "delete_vector_name"},
    {"GET",    "/collections/{name}/cluster",           NEED_NONE,   ROUTE_CHEAP, r_refused,      "collection_cluster_info"},
    {"POST",   "/collections/{name}/cluster",           NEED_NONE,   ROUTE_CHEAP, r_refused,      "update_collection_cluster"},
    {"GET",    "/collections/{name}/optimizations",     NEED_NONE,   ROUTE_CHEAP, r_refused,      "get_optimizations"},
    {"POST",   "/collections/{name}/points/discover",   NEED_NONE,   ROUTE_CHEAP, r_refused,      "discover_points"},
    {"POST",   "/collections/{name}/points/discover/batch", NEED_NONE, ROUTE_CHEAP, r_refused,    "discover_batch_points"},
    {"POST",   "/collections/{name}/facet",             NEED_NONE,   ROUTE_CHEAP, r_refused,      "facet"},
    {"POST",   "/collections/{name}/points/search/matrix/pairs", NEED_NONE, ROUTE_CHEAP, r_refused, "search_matrix_pairs"},
    {"POST",   "/collections/{name}/points/search/matrix/offsets", NEED_NONE, ROUTE_CHEAP, r_refused, "search_matrix_offsets"},
};
#define NROUTES ((int)(sizeof routes / sizeof routes[0]))

int api_route_count(void) { return NROUTES; }

const char *api_route_name(int route) { return route == ROUTE_UNKNOWN ? "unknown" : routes[route].metric; }

/* path against one alias of a route's path (p, n bytes): the bytes are
 * equal but for placeholders, which take one segment each; *id: where
 * {id} is (it ends its path, so it is a C string), set on a match only.
 * 0: no match, else 1 + the number of placeholders. */
static int match(const char *p, size_t n, const char *path, const char **id)
{
    const char *end = p + n, *got = NULL;
    int ph = 0;
    while (p < end) {
        if (*p == '{') {
            if (!strncmp(p, "{id}", 4))
                got = path;
            path += strcspn(path, "/");
            p = strchr(p, '}') + 1;
            ph++;
        } else if (*p++ != *path++) {
            return 0;
        }
    }
    if (*path)
        return 0;
    if (got)
        *id = got;
    return 1 + ph;
}

/* path against a route's path and its aliases: as match */
static int match_any(const char *paths, const char *path, const char **id)
{
    for (;;) {
        size_t n = strcspn(paths, "|");
        int m = match(paths, n, path, id);
        if (m)
            return m;
        if (!paths[n])
            return 0;
        paths += n + 1;
    }
}

/* The fewest placeholders (+ 1) of the routes that match path (0: none).
 * The most literal routes of a path are its routes: a literal segment
 * beats a placeholder, so GET .../points/search is a 405 (search is
 * POST), not GET .../points/{id} with the id "search". */
static int best_match(const char *path)
{
    int best = 0;
    for (int i = 0; i < NROUTES; i++) {
        const char *got = NULL;
        int m = match_any(routes[i].path, path, &got);
        if (m && (!best || m < best))
            best = m;
    }
    return best;
}

/* The route of method and path, or -1. *other (if not NULL): a route of
 * the path for another method (-1: none). */
static int route_find(const char *method, const char *path, const char **id, int *other)
{
    if (other)
        *other = -1;
    int best = best_match(path);
    for (int i = 0; best && i < NROUTES; i++) {
        const char *got = NULL;
        if (match_any(routes[i].path, path, &got) != best)
            continue;
        if (!routes[i].method || !strcmp(routes[i].method, method)) {
            if (id)
                *id = got;
            return i;
        }
        if (other && *other < 0)
            *other = i;
    }
    return -1;
}

/* The methods of the routes of path, "GET, PUT", into buf (n bytes). */
static void allow_list(const char *path, char *buf, size_t n)
{
    size_t o = 0;
    int best = best_match(path);
    buf[0] = 0;
    for (int i = 0; i < NROUTES; i++) {
        const char *m = routes[i].method, *got = NULL;
        if (!m || match_any(routes[i].path, path, &got) != best)
            continue;
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = routes[j].method && !strcmp(routes[j].method, m) && match_any(routes[j].path, path, &got) == best;
        if (seen)
            continue;
        int w = snprintf(buf + o, n - o, "%s%s", o ? ", " : "", m);
        if (w < 0 || (size_t)w >= n - o)
            break;
        o += (size_t)w;
    }
}

int api_dispatch(vqs_server *s, struct MHD_Connection *conn, const char *method, const char *url, req *q, resp *r,
                 int *route)
{
    route_call c = {s, conn, q, NULL, NULL, NULL, NULL};
    int other, i = route_find(method, url, &c.id, &other);
    const route_def *rt = i >= 0 ? &routes[i] : NULL;
    c.rt = rt;
    *route = ROUTE_UNKNOWN;
    if (!rt && other >= 0) {
        /* a path the server has, with a method it does not take there: 405
         * with the methods it does take (a collection's paths too, whether
         * the collection exists or not: the method is wrong for any) */
        *route = other;
        allow_list(url, r->allow, sizeof r->allow);
        return fail(r, 405, "%s %.200s: method not allowed (allowed: %s)", method, url, r->allow);
    }
    if (rt && rt->needs == NEED_NONE) {
        *route = i;
        return rt->fn(&c, r);
    }
    if (strncmp(url, "/collections/", 13))
        return fail(r, 404, "Not found: %s %.200s", method, url);
    /* a path under /collections/ names a collection: the name is checked,
     * and the collection looked up, whether a route matches or not */
    const char *name = url + 13, *slash = strchr(name, '/');
    size_t nlen = slash ? (size_t)(slash - name) : strlen(name);
    char cname[64];
    if (vqs_coll_check_name(name, nlen))
        return fail(r, 400, "bad collection name \"%.*s\" (1 to 63 of A-Z a-z 0-9 _ - ., not starting with '.')",
                    (int)(nlen > 80 ? 80 : nlen), name);
    memcpy(cname, name, nlen);
    cname[nlen] = 0;
    c.name = cname;
    if (rt && rt->needs == NEED_NAME) {
        *route = i;
        return rt->fn(&c, r);
    }
    /* everything else works on an existing collection, named by its name
     * or by an alias (as Qdrant resolves them) */
    int rc;
    pthread_rwlock_rdlock(&s->reg);
    c.e = api_entry_find(s, cname);
    const char *real = c.e ? NULL : api_alias_resolve(s, cname);
    if (real) {
        snprintf(cname, sizeof cname, "%s", real);
        c.e = api_entry_find(s, cname);
    }
    if (rt && rt->needs == NEED_LOOKUP) {
        *route = i;
        rc = rt->fn(&c, r);
    } else if (!c.e) {
        /* counted under get_collection, the request clients probe with,
         * and under "unknown" for the others */
        if (rt && rt->fn == r_get_coll)
            *route = i;
        rc = fail(r, 404, "Not found: Collection `%s` doesn't exist!", cname);
    } else if (!c.e->c) {
        rc = fail(r, 500, "%s", c.e->open_error);
    } else if (!rt) {
        rc = fail(r, 404, "Not found: %s %.200s", method, url);
    } else {
        *route = i;
        rc = rt->fn(&c, r);
    }
    pthread_rwlock_unlock(&s->reg);
    return rc;
}

/* Requests answered by the I/O threads themselves: reads of bounded cost
 * (every GET and HEAD, and the routes marked ROUTE_CHEAP). */
int api_is_cheap(const char *method, const char *path)
{
    if (!strcmp(method, "GET") || !strcmp(method, "HEAD"))
        return 1;
    int i = route_find(method, path, NULL, NULL);
    return i >= 0 && (routes[i].flags & ROUTE_CHEAP);
}

/* Requests that need no api key: the routes marked ROUTE_NOKEY. */
int api_is_public(const char *method, const char *path)
{
    int i = route_find(method, path, NULL, NULL);
    return i >= 0 && (routes[i].flags & ROUTE_NOKEY);
}
