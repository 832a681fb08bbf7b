/*
 * metrics.c: GET /metrics in Prometheus' text format: requests by endpoint
 * (the route table's metric names, and "unknown" for requests no route
 * took) and status class, errors, a latency histogram per endpoint,
 * requests in flight, busy workers, queue length, requests turned away
 * busy, connections reaped, points and bytes per collection.
 *
 * Design decisions:
 * - The per-route counters sit under one mutex, taken once per response;
 *   /metrics copies them under it and formats without it, so a scrape sees
 *   each route's count, buckets and sum from one moment (atomic counters
 *   would not give that, and the sum is a double).
 * - The histogram's buckets are fixed, from 100 µs to 2.5 s.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"

static const double hist_le[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                 0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};
#define NB (sizeof hist_le / sizeof hist_le[0])

struct route_metrics {
    uint64_t req, err4, err5;
    uint64_t bucket[NB + 1];
    double sum; /* guarded by the server's metrics mutex */
};

/* the counters of a server: one per route, the last for "unknown" */
route_metrics *api_metrics_new(void) { return calloc((size_t)api_route_count() + 1, sizeof(route_metrics)); }

void api_metrics_record(vqs_server *s, int route, int code, double secs)
{
    pthread_mutex_lock(&s->mlock);
    route_metrics *m = &s->m[route == ROUTE_UNKNOWN ? api_route_count() : route];
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

/* the endpoint of counter slot i: a route's, or "unknown" for the last */
static const char *label(int i) { return api_route_name(i < api_route_count() ? i : ROUTE_UNKNOWN); }

char *api_metrics_text(vqs_server *s)
{
    char *buf = NULL;
    size_t len = 0;
    int nm = api_route_count() + 1;
    route_metrics *m = malloc((size_t)nm * sizeof *m);
    FILE *f = m ? open_memstream(&buf, &len) : NULL;
    if (!f) {
        free(m);
        return NULL;
    }
    fprintf(f, "# HELP vqs_http_requests_total HTTP requests by endpoint and status class.\n"
               "# TYPE vqs_http_requests_total counter\n");
    pthread_mutex_lock(&s->mlock);
    memcpy(m, s->m, nm * sizeof *m);
    pthread_mutex_unlock(&s->mlock);
    for (int i = 0; i < nm; i++) {
        if (!m[i].req)
            continue;
        fprintf(f, "vqs_http_requests_total{endpoint=\"%s\",code=\"2xx\"} %llu\n", label(i),
                (unsigned long long)(m[i].req - m[i].err4 - m[i].err5));
        fprintf(f, "vqs_http_requests_total{endpoint=\"%s\",code=\"4xx\"} %llu\n", label(i),
                (unsigned long long)m[i].err4);
        fprintf(f, "vqs_http_requests_total{endpoint=\"%s\",code=\"5xx\"} %llu\n", label(i),
                (unsigned long long)m[i].err5);
    }
    fprintf(f, "# HELP vqs_http_errors_total HTTP requests answered with a 4xx or 5xx status.\n"
               "# TYPE vqs_http_errors_total counter\n");
    for (int i = 0; i < nm; i++)
        if (m[i].req)
            fprintf(f, "vqs_http_errors_total{endpoint=\"%s\"} %llu\n", label(i),
                    (unsigned long long)(m[i].err4 + m[i].err5));
    fprintf(f, "# HELP vqs_http_request_duration_seconds Time from the request's arrival to its response.\n"
               "# TYPE vqs_http_request_duration_seconds histogram\n");
    for (int i = 0; i < nm; i++) {
        if (!m[i].req)
            continue;
        uint64_t cum = 0;
        for (size_t b = 0; b < NB; b++) {
            cum += m[i].bucket[b];
            fprintf(f, "vqs_http_request_duration_seconds_bucket{endpoint=\"%s\",le=\"%g\"} %llu\n", label(i),
                    hist_le[b], (unsigned long long)cum);
        }
        fprintf(f, "vqs_http_request_duration_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %llu\n", label(i),
                (unsigned long long)m[i].req);
        fprintf(f, "vqs_http_request_duration_seconds_sum{endpoint=\"%s\"} %.9f\n", label(i), m[i].sum);
        fprintf(f, "vqs_http_request_duration_seconds_count{endpoint=\"%s\"} %llu\n", label(i),
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
        vqs_coll_info info;
        if (!e->c || vqs_coll_stat(e->c, &info))
            continue;
        double vf = (double)info.vector_bytes;
        fprintf(f, "vqs_collection_bytes{collection=\"%s\",kind=\"codes\"} %llu\n", e->name,
                (unsigned long long)info.code_bytes);
        fprintf(f, "vqs_collection_bytes{collection=\"%s\",kind=\"payloads\"} %llu\n", e->name,
                (unsigned long long)info.payload_bytes);
        fprintf(f, "vqs_collection_bytes{collection=\"%s\",kind=\"vectors\"} %.0f\n", e->name, vf);
    }
    vqs_clearerr();
    pthread_rwlock_unlock(&s->reg);
    fclose(f);
    free(m);
    return buf;
}
