/*
 * bench_rerank_io: re-scoring reads from a vector file with a cold cache.
 *
 *   bench_rerank_io FILE N D [NQ] [CANDS]
 *
 * Creates FILE (a vqs vector file, storage/vqs_store_vec.h) with N seeded
 * random D-dimensional float32 records unless it already holds at least N,
 * then, for queue depths 1, 8, 32 and 128, fetches CANDS random records per
 * query (the candidates of a re-scoring step) for NQ queries (or ~10 s) with:
 *   io_uring  one thread, one ring, QD reads in flight (O_DIRECT);
 *   pread     QD threads, each a blocking pread loop (O_DIRECT), so the same
 *             number of reads is outstanding;
 *   mmap      QD threads, each copying from a fresh MAP_SHARED mapping
 *             (a page fault per record), after the file was dropped from the
 *             page cache.
 * Prints queries/s, p50/p99 latency per query and useful MB/s.
 *
 * Design decisions: the pread and mmap paths get QD threads at queue depth
 * QD because a single blocking loop has exactly one read in flight; giving
 * them threads is the fair comparison (and what a server does), and the
 * single-thread row (QD 1) is the plain loop. Cold cache: O_DIRECT bypasses
 * the page cache; for mmap the file is dropped with
 * posix_fadvise(POSIX_FADV_DONTNEED) (and /proc/sys/vm/drop_caches when
 * writable) before each run, and the mapping is new.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vqs_common.h"
#include "vqs_store.h"

#define DIE(...)                                                                                   \
    do {                                                                                           \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, ": %s\n", vqs_errdetail());                                                \
        exit(1);                                                                                   \
    } while (0)

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    return *s = x;
}

static void drop_cache(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        fdatasync(fd);
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
    int pc = open("/proc/sys/vm/drop_caches", O_WRONLY);
    if (pc >= 0) {
        if (write(pc, "1", 1) < 0) { /* not root: fadvise alone */
        }
        close(pc);
    }
}

typedef struct run {
    vqs_vecstore *vs;
    size_t nq, cands, d;
    const int64_t *ids; /* nq * cands */
    double *lat;        /* nq */
    double deadline;
    size_t done; /* atomic */
} run;

typedef struct worker {
    run *R;
    int slot, nthreads;
} worker;

static void *work(void *arg)
{
    worker *W = arg;
    run *R = W->R;
    float *out = malloc(sizeof(float) * R->cands * R->d);
    for (size_t q = (size_t)W->slot; q < R->nq; q += (size_t)W->nthreads) {
        if (now() > R->deadline)
            break;
        double t0 = now();
        if (vqs_vecstore_fetch(R->vs, W->slot, R->cands, R->ids + q * R->cands, out))
            DIE("fetch");
        R->lat[q] = now() - t0;
        __atomic_add_fetch(&R->done, 1, __ATOMIC_RELAXED);
    }
    free(out);
    return NULL;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double bench(const char *path, size_t d, uint64_t held, vqs_vs_backend be, unsigned qd, int nthreads,
                    size_t nq, size_t cands, const int64_t *ids, const char *name)
{
    drop_cache(path);
    vqs_vecstore_opts o = {.backend = be, .nthreads = nthreads, .queue_depth = qd};
    vqs_vecstore *vs = NULL;
    if (vqs_vecstore_open(path, d, held, &o, &vs))
        DIE("open %s", path);
    run R = {vs, nq, cands, d, ids, calloc(nq, sizeof(double)), now() + 10.0, 0};
    for (size_t i = 0; i < nq; i++)
        R.lat[i] = -1;
    pthread_t th[256];
    worker W[256];
    double t0 = now();
    for (int t = 0; t < nthreads; t++) {
        W[t] = (worker){&R, t, nthreads};
        pthread_create(&th[t], NULL, work, &W[t]);
    }
    for (int t = 0; t < nthreads; t++)
        pthread_join(th[t], NULL);
    double wall = now() - t0;
    size_t m = 0;
    for (size_t i = 0; i < nq; i++)
        if (R.lat[i] >= 0)
            R.lat[m++] = R.lat[i];
    qsort(R.lat, m, sizeof(double), cmpd);
    double qps = (double)m / wall;
    printf("| %s | %u | %d | %.0f | %.0f | %.0f | %.0f |\n", name, qd, nthreads, qps, 1e6 * R.lat[m / 2],
           1e6 * R.lat[(size_t)(0.99 * (double)(m - 1))], (double)m * (double)cands * (double)d * 4 / wall / 1e6);
    fflush(stdout);
    free(R.lat);
    vqs_vecstore_close(vs);
    return qps;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s FILE N D [NQ] [CANDS]\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    size_t N = (size_t)atoll(argv[2]), D = (size_t)atoll(argv[3]);
    size_t NQ = argc > 4 ? (size_t)atoll(argv[4]) : 2000, C = argc > 5 ? (size_t)atoll(argv[5]) : 100;
    if (!N || !D || !NQ || !C)
        return 2;
    struct stat st;
    uint64_t held = 0;
    if (stat(path, &st) == 0 && st.st_size >= 4096)
        held = (uint64_t)(st.st_size - 4096) / (D * 4);
    if (held < N) {
        remove(path);
        vqs_vecstore *vs = NULL;
        vqs_vecstore_opts o = {.backend = VQS_VS_PREAD};
        if (vqs_vecstore_open(path, D, 0, &o, &vs))
            DIE("create %s", path);
        size_t B = 10000;
        float *x = malloc(sizeof(float) * B * D);
        uint64_t s = 88172645463325252ull;
        for (size_t b0 = 0; b0 < N; b0 += B) {
            size_t nb = N - b0 < B ? N - b0 : B;
            for (size_t i = 0; i < nb * D; i++)
                x[i] = (float)((double)(rng_next(&s) >> 11) / 4503599627370496.0 - 1.0);
            if (vqs_vecstore_append(vs, b0, nb, x))
                DIE("append");
            if ((b0 / B) % 10 == 9)
                fprintf(stderr, "  %zu rows written\n", b0 + nb);
        }
        free(x);
        vqs_vecstore_close(vs);
        held = N;
    }
    int64_t *ids = malloc(sizeof(int64_t) * NQ * C);
    uint64_t s = 42;
    for (size_t i = 0; i < NQ * C; i++)
        ids[i] = (int64_t)(rng_next(&s) % N);
    /* the three paths return the same bytes (20 queries) */
    {
        vqs_vs_backend bes[] = {VQS_VS_URING, VQS_VS_PREAD, VQS_VS_MMAP};
        float *r[3];
        for (int k = 0; k < 3; k++) {
            r[k] = malloc(sizeof(float) * 20 * C * D);
            vqs_vecstore_opts o = {.backend = bes[k]};
            vqs_vecstore *vs = NULL;
            if (vqs_vecstore_open(path, D, held, &o, &vs) || vqs_vecstore_fetch(vs, 0, 20 * C, ids, r[k]))
                DIE("check");
            vqs_vecstore_close(vs);
        }
        if (memcmp(r[0], r[1], sizeof(float) * 20 * C * D) || memcmp(r[0], r[2], sizeof(float) * 20 * C * D)) {
            fprintf(stderr, "io_uring, pread and mmap disagree\n");
            return 1;
        }
        for (int k = 0; k < 3; k++)
            free(r[k]);
    }
    printf("bench_rerank_io: %s, %llu x %zu float32 (%.1f GB), %zu queries x %zu candidates, cold cache\n\n",
           path, (unsigned long long)held, D, (double)held * (double)D * 4 / 1e9, NQ, C);
    printf("| backend | queue depth | threads | queries/s | p50 us | p99 us | MB/s |\n|---|---|---|---|---|---|---|\n");
    unsigned qds[] = {1, 8, 32, 128};
    double ru[4], rp[4], rm[4];
    for (int i = 0; i < 4; i++) {
        ru[i] = bench(path, D, held, VQS_VS_URING, qds[i], 1, NQ, C, ids, "io_uring");
        rp[i] = bench(path, D, held, VQS_VS_PREAD, 1, (int)qds[i], NQ, C, ids, "pread loop");
        rm[i] = bench(path, D, held, VQS_VS_MMAP, 1, (int)qds[i], NQ, C, ids, "mmap");
    }
    printf("\n| queue depth | io_uring / pread | io_uring / mmap |\n|---|---|---|\n");
    for (int i = 0; i < 4; i++)
        printf("| %u | %.2fx | %.2fx |\n", qds[i], ru[i] / rp[i], ru[i] / rm[i]);
    free(ids);
    return 0;
}
