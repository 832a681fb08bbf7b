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
    int threads;            /* HTTP worker threads; 0: vqs_default_threads() */
    const char *api_key;    /* NULL or "": no authentication */
    size_t max_body;        /* bytes; larger bodies get 413; 0: 64 MiB */
    size_t max_batch;       /* points per upsert; 0: 10,000 */
    size_t max_limit;       /* limit + offset of a search; 0: 10,000 */
    int verbose;            /* one line per request on stderr */
} vqs_server_opts;

/* Opens the data directory (creating it if needed), opens every collection
 * in it and starts serving. Errors: as vqs_db_open; VQS_EIO naming the
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
