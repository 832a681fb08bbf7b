/*
 * bench_store: durable upsert throughput and reopen time of a collection.
 *
 *   bench_store DIR N D SPEC [BATCH]
 *
 * Creates collection "bench" in DIR (removed first if present), trains SPEC
 * on a seeded synthetic sample (Gaussian mixture, 20,000 vectors), upserts N
 * synthetic D-dimensional points in batches of BATCH (default 1,000) with the
 * durable setting (every batch: vector file fdatasync, then LMDB's synced
 * commit), then closes and reopens the collection three times and reports
 * the open time (LMDB codes -> in-memory index; nothing re-encoded) and a
 * search to show the reopened index answers.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vqs_collection.h"
#include "vqs_index.h"

#define DIE(...)                                                                                   \
    do {                                                                                           \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, ": %s (%s)\n", vqs_errdetail(), vqs_err_name(rc));                         \
        exit(1);                                                                                   \
    } while (0)

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s DIR N D SPEC [BATCH]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1], *spec = argv[4];
    size_t N = (size_t)atoll(argv[2]), D = (size_t)atoll(argv[3]);
    size_t B = argc > 5 ? (size_t)atoll(argv[5]) : 1000;
    int rc;
    vqs_catalog *cat = NULL;
    if ((rc = vqs_catalog_open(dir, NULL, &cat)))
        DIE("open %s", dir);
    vqs_coll_drop(cat, "bench");
    vqs_clearerr();
    vqs_coll_config cfg = {0}; /* nprobe, oversampling: the collection defaults */
    cfg.d = (uint32_t)D;
    cfg.metric = VQS_METRIC_L2;
    snprintf(cfg.spec, sizeof cfg.spec, "%s", spec);
    cfg.rerank = VQS_RERANK_DISK;
    if ((rc = vqs_coll_create(cat, "bench", &cfg)))
        DIE("create");
    vqs_coll *c = NULL;
    vqs_coll_opts co = {0};
    if ((rc = vqs_coll_open(cat, "bench", &co, &c)))
        DIE("coll_open");
    size_t nt = 20000;
    float *x = malloc(sizeof(float) * (nt > B ? nt : B) * D);
    vqs_synth_opts so = {.seed = 1};
    if ((rc = vqs_synth_gmm(&so, nt, D, x)))
        DIE("synth");
    double t0 = vqs_now();
    if ((rc = vqs_coll_train(c, nt, x)))
        DIE("train");
    printf("bench_store: %zu x %zu, spec %s, batches of %zu, durable (fdatasync + LMDB sync), rerank %s\n",
           N, D, spec, B, vqs_coll_rerank_backend(c));
    printf("train on %zu: %.2f s\n", nt, vqs_now() - t0);
    vqs_pid *ids = calloc(B, sizeof *ids);
    double tu = 0, worst = 0;
    for (size_t b0 = 0; b0 < N; b0 += B) {
        size_t nb = N - b0 < B ? N - b0 : B;
        so.seed = 1000 + b0 / B;
        if ((rc = vqs_synth_gmm(&so, nb, D, x)))
            DIE("synth");
        for (size_t i = 0; i < nb; i++) {
            ids[i].kind = VQS_PID_U64;
            ids[i].u64 = b0 + i;
        }
        double t1 = vqs_now();
        if ((rc = vqs_coll_upsert(c, nb, ids, x, NULL)))
            DIE("upsert at %zu", b0);
        double dt = vqs_now() - t1;
        tu += dt;
        worst = dt > worst ? dt : worst;
        if ((b0 / B) % 100 == 99)
            fprintf(stderr, "  %zu points, %.0f points/s so far\n", b0 + nb, (b0 + nb) / tu);
    }
    printf("upsert: %zu points in %.2f s: %.0f points/s (%.1f ms per batch of %zu, worst %.1f ms)\n", N, tu,
           N / tu, 1e3 * tu / ((N + B - 1) / B), B, 1e3 * worst);
    vqs_coll_close(c);
    vqs_catalog_close(cat);
    for (int r = 0; r < 3; r++) {
        t0 = vqs_now();
        if ((rc = vqs_catalog_open(dir, NULL, &cat)) || (rc = vqs_coll_open(cat, "bench", &co, &c)))
            DIE("reopen");
        double to = vqs_now() - t0;
        printf("reopen %d: %.3f s for %llu points (%zu-byte codes)\n", r + 1, to,
               (unsigned long long)vqs_coll_count(c), vqs_index_code_size(vqs_coll_index(c)));
        if (r == 2) { /* the reopened index answers: the last batch's points find themselves */
            vqs_coll_hit got[10];
            vqs_coll_search_params sp = {.oversampling = 10};
            if ((rc = vqs_coll_search(c, &sp, 10, x, 1, got)))
                DIE("search");
            int ok = 0;
            for (int i = 0; i < 10; i++)
                ok += got[i].id.u64 == ids[i].u64;
            printf("self-search of 10 points of the last batch after reopen: %d/10 found at rank 1\n", ok);
        }
        vqs_coll_close(c);
        vqs_catalog_close(cat);
    }
    free(ids);
    free(x);
    return 0;
}
