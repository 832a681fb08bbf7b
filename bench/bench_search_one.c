/*
 * bench_search_one: in-process search of a stored collection, one query per
 * call, from T caller threads at once: the baseline the HTTP service is
 * compared with (bench/run_http.sh runs wrk against `vqs serve` on the same
 * collection and the same queries).
 *
 *   bench_search_one DIR NAME QUERIES.fvecs K T SECONDS
 *
 * Prints queries/s and p50/p99 latency (ms) of single-query searches with the
 * collection's default settings (nprobe, oversampling, re-scoring).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vqs_collection.h"
#include "vqs_index.h"

typedef struct job {
    vqs_coll *c;
    const float *q;
    size_t nq, d, k;
    double until;
    double *lat;
    size_t nlat, cap;
    int id;
} job;

static void *run(void *arg)
{
    job *J = arg;
    vqs_coll_hit *hits = malloc(sizeof(vqs_coll_hit) * J->k);
    size_t i = (size_t)J->id * 7919;
    while (vqs_now() < J->until) {
        double t0 = vqs_now();
        vqs_coll_search_params p = {0};
        if (vqs_coll_search(J->c, &p, 1, J->q + (i++ % J->nq) * J->d, J->k, hits)) {
            fprintf(stderr, "search: %s\n", vqs_errdetail());
            exit(1);
        }
        if (J->nlat == J->cap) {
            J->cap = J->cap ? 2 * J->cap : 4096;
            J->lat = realloc(J->lat, sizeof(double) * J->cap);
        }
        J->lat[J->nlat++] = vqs_now() - t0;
    }
    free(hits);
    return NULL;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: %s DIR NAME QUERIES.fvecs K T SECONDS\n", argv[0]);
        return 2;
    }
    size_t k = (size_t)atoll(argv[4]), T = (size_t)atoll(argv[5]);
    double secs = atof(argv[6]);
    vqs_vecfile *vf = NULL;
    vqs_catalog *cat = NULL;
    vqs_coll *c = NULL;
    if (vqs_vecfile_open(argv[3], NULL, &vf) || vqs_catalog_open(argv[1], NULL, &cat) ||
        vqs_coll_open(cat, argv[2], NULL, &c)) {
        fprintf(stderr, "bench_search_one: %s\n", vqs_errdetail());
        return 1;
    }
    size_t nq = vqs_vecfile_n(vf), d = vqs_vecfile_d(vf);
    float *q = malloc(sizeof(float) * nq * d);
    if (vqs_vecfile_read_f32(vf, 0, nq, q) || d != vqs_coll_d(c)) {
        fprintf(stderr, "bench_search_one: queries: %s\n", vqs_errdetail());
        return 1;
    }
    job *J = calloc(T, sizeof *J);
    pthread_t *th = calloc(T, sizeof *th);
    double until = vqs_now() + secs;
    for (size_t t = 0; t < T; t++) {
        J[t] = (job){c, q, nq, d, k, until, NULL, 0, 0, (int)t};
        pthread_create(&th[t], NULL, run, &J[t]);
    }
    size_t n = 0;
    for (size_t t = 0; t < T; t++) {
        pthread_join(th[t], NULL);
        n += J[t].nlat;
    }
    double *all = malloc(sizeof(double) * (n ? n : 1));
    size_t m = 0;
    for (size_t t = 0; t < T; t++) {
        memcpy(all + m, J[t].lat, sizeof(double) * J[t].nlat);
        m += J[t].nlat;
        free(J[t].lat);
    }
    qsort(all, n, sizeof(double), cmpd);
    printf("| in-process | %zu | %.0f | %.2fms | %.2fms |\n", T, n / secs, n ? all[n / 2] * 1e3 : 0,
           n ? all[(size_t)(n * 0.99)] * 1e3 : 0);
    free(all);
    free(J);
    free(th);
    free(q);
    vqs_coll_close(c);
    vqs_catalog_close(cat);
    vqs_vecfile_close(vf);
    return 0;
}
