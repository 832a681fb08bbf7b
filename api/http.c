/*
 * http.c: `vqs serve` (vqs_http.h): libmicrohttpd with an internal thread
 * pool, Qdrant's REST shapes ({"result": ..., "status": "ok", "time": s};
 * errors {"status": {"error": "..."}, "time": s}), graceful stop. This file
 * is the HTTP side of the server: connections, bodies, the work queue, the
 * api key, responses, start and stop; routes.c hands a complete request to
 * its handler (api_internal.h lists the files).
 *
 * Design decisions:
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
 */
#define _GNU_SOURCE
#include "vqs_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api_internal.h"

/* ---- libmicrohttpd glue ---------------------------------------------------------- */

/* A connection as the reaper sees it (libmicrohttpd's socket context). */
struct conn_track {
    int fd;
    double mark; /* its start, or the end of its previous response */
    int busy;    /* a complete request is being processed or answered */
    int shut;    /* shut down by the reaper */
    struct conn_track *prev, *next;
};

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
            /* the estimate in api_charge() keeps results below this: a bug if reached */
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
    if (r->code == 405 && r->allow[0])
        MHD_add_response_header(mr, "Allow", r->allow);
    if (r->retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", r->retry_after);
        MHD_add_response_header(mr, "Retry-After", ra);
    }
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->code, mr);
    MHD_destroy_response(mr);
    api_metrics_record(s, route, r->code, secs);
    /* every server-side failure is logged with its cause, verbose or not */
    if (r->code >= 500)
        fprintf(stderr, "vqs serve: %s %.200s -> %d: %s\n", method, url, r->code, r->err);
    else if (s->o.verbose)
        fprintf(stderr, "vqs serve: %s %.200s -> %d (%.3f ms)\n", method, url, r->code, secs * 1e3);
    return ret;
}

/* ---- connections: the reaper ----------------------------------------------------- */

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

/* ---- the work queue -------------------------------------------------------------- */

/* q->r may already hold the refusal of a bad path (on_request decoded it) */
static void run_request(vqs_server *s, struct MHD_Connection *conn, const char *method, req *q)
{
    q->route = ROUTE_UNKNOWN;
    if (q->r.code) {
        /* refused: the path */
    } else if (q->over_total) {
        fail(&q->r, 503, "request bodies held at once would pass %zu bytes (--max-body-total); retry later",
             s->o.max_body_total);
        q->r.retry_after = 1;
    } else if (q->too_big) {
        fail(&q->r, 413, "request body over the limit of %zu bytes (--max-body)", s->o.max_body);
    } else if (!api_is_public(method, q->path) && !key_ok(s, conn)) {
        fail(&q->r, 401, "Unauthorized: a valid api-key header is required");
    } else if (api_check_deadline(q, &q->r) == 0) {
        api_dispatch(s, conn, method, q->path, q, &q->r, &q->route);
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

/* ---- libmicrohttpd callbacks ----------------------------------------------------- */

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
                return send_resp(s, conn, &r, q->t0, ROUTE_UNKNOWN, method, shown);
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
            return send_resp(s, conn, &r, q->t0, ROUTE_UNKNOWN, method, shown);
        }
        if (want && !hold_body(s, q, (size_t)want)) {
            resp r = {0};
            fail(&r, 503, "request bodies held at once would pass %zu bytes (--max-body-total); retry later",
                 s->o.max_body_total);
            r.retry_after = 1;
            return send_resp(s, conn, &r, q->t0, ROUTE_UNKNOWN, method, shown);
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
    if (!q->too_big && !q->over_total &&
        api_decode_path(q->raw_url ? q->raw_url : url, q->path, sizeof q->path, &q->r) == 0 &&
        !api_is_cheap(method, q->path)) {
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
            return send_resp(s, conn, &r, q->t0, ROUTE_UNKNOWN, method, shown);
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

/* ---- start and stop -------------------------------------------------------------- */

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
    int rc = vqs_catalog_open(dir, NULL, &s->cat);
    if (rc) {
        vqs_server_stop(s, 0);
        return rc;
    }
    char **names = NULL;
    size_t n = 0;
    if ((rc = vqs_catalog_list(s->cat, &names, &n))) {
        vqs_server_stop(s, 0);
        return rc;
    }
    for (size_t i = n; i-- > 0;) {
        entry *e = api_entry_open(s, names[i]);
        if (e) {
            e->next = s->colls;
            s->colls = e;
        }
    }
    vqs_catalog_list_free(names, n);
    if ((rc = api_aliases_load(s))) {
        vqs_server_stop(s, 0);
        return rc;
    }
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
    if (!(s->queue = calloc(s->qcap, sizeof *s->queue)) || !(s->workers = calloc((size_t)s->nworkers, sizeof(pthread_t))) ||
        !(s->m = api_metrics_new())) {
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
        api_entry_free(e);
    }
    free(s->aliases);
    vqs_catalog_close(s->cat);
    free(s->queue);
    free(s->workers);
    free(s->m);
    pthread_rwlock_destroy(&s->reg);
    pthread_mutex_destroy(&s->mlock);
    pthread_mutex_destroy(&s->qlock);
    pthread_cond_destroy(&s->qcond);
    pthread_mutex_destroy(&s->clock_);
    pthread_cond_destroy(&s->ccond);
    free(s);
}
