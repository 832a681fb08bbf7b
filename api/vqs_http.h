/*
 * vqs_http.h: the HTTP query service (`vqs serve`): collections of one data
 * directory served over libmicrohttpd with Qdrant's REST shapes
 * (api/README.md lists the endpoints and the vqs extensions).
 */
#ifndef VQS_HTTP_H
#define VQS_HTTP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vqs_server vqs_server;

typedef struct vqs_server_opts {
    const char *host;       /* address to bind; NULL: 127.0.0.1 */
    int port;               /* 0: an ephemeral port (see vqs_server_port) */
    int threads;            /* workers for searches and writes (and I/O threads, at least 2);
                               0: vqs_default_threads() */
    const char *api_key;    /* NULL or "": no authentication */
    size_t max_body;        /* bytes; larger bodies get 413; 0: 64 MiB */
    size_t max_body_total;  /* bytes of request bodies held at once over all connections;
                               past it 503 + Retry-After; 0: 1 GiB */
    size_t max_batch;       /* points per upsert; 0: 10,000 */
    size_t max_limit;       /* limit + offset of a search; 0: 10,000 */
    size_t max_results;     /* Σ (limit + offset) over the searches of one request; 0: 100,000 */
    size_t max_candidates;  /* Σ candidates re-scored ((limit + offset) x oversampling) per
                               request; 0: 100,000 (each takes d floats while its search runs) */
    size_t max_response;    /* bytes of one response body (estimated while it is built); 0: 64 MiB */
    double timeout;         /* seconds from a request's arrival after which its work stops (503);
                               Qdrant's ?timeout= may shorten it; 0: 30 */
    int queue;              /* requests waiting for a worker; past it 503 + Retry-After; 0: 64 */
    int max_conn;           /* open connections; 0: 1,000 */
    int max_conn_per_ip;    /* open connections per client address; 0: 128 */
    double idle_timeout;    /* seconds a connection may stay silent; 0: 10 */
    double read_timeout;    /* seconds from a connection's start, or its previous response, to a
                               complete request (slow headers or body); 0: 30 */
    int verbose;            /* one line per request on stderr (5xx are always logged) */
} vqs_server_opts;

/* Opens the data directory (creating it if needed), opens every collection
 * in it and starts serving. Errors: as vqs_catalog_open; VQS_EIO naming the
 * address if it cannot listen. */
int vqs_server_start(const char *dir, const vqs_server_opts *o, vqs_server **out);
/* The port actually bound. */
int vqs_server_port(const vqs_server *s);
/* Stops accepting connections, lets requests in flight finish (at most
 * grace_s seconds), then closes every collection and the LMDB environment. */
void vqs_server_stop(vqs_server *s, double grace_s);

#ifdef __cplusplus
}
#endif

#endif
