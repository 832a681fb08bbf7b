/*
 * bench_disk.c: the graph index on disk against the same graph in memory,
 * in one run (bench/README, "Graph index on disk").
 *
 *   bench_disk BASE QUERIES METRIC SPEC NODEFILE GT NQ EF,... W,...
 *
 * Builds SPEC (a VAMANA<R>,<codec>,RFlat spec) over BASE on every core,
 * then, one query at a time on one thread (so each latency is one query's):
 * recall@10 (ties counted, against exact ground truth: read from GT if the
 * file exists, else computed and written there as .ivecs/.fvecs pairs),
 * latency p50/p99 and q/s for each beam EF, first in memory, then after
 * vqs_index_graph_to_disk(NODEFILE) for each beam width W (nodes read
 * together per hop, the query's queue depth). Recall comes from the same
 * searches that are timed. Before each on-disk row the page cache is
 * dropped (/proc/sys/vm/drop_caches, if writable) and the reads are
 * O_DIRECT, so a node not in the index's entry cache comes from the device.
 * Re-scoring: the whole beam (oversampling EF / 10), in memory from the
 * refine copy, on disk from the vectors the hops' reads brought (DiskANN
 * re-ranks the nodes it expanded the same way: no extra reads).
 * Also printed: the bytes the index holds per vector in memory before and
 * after, the node file's size, the mean nodes read per query, and the time
 * to reopen the node file (vqs_index_open_disk) with one row searched after.
 *
 * A spec with /D (the graph's links in a mapped file: Qdrant's
 * hnsw_config.on_disk) is the other comparison, made against the same spec
 * without /D in another process (bench/run_mapped.sh): each EF in memory,
 * then again after vqs_index_graph_drop_pages (its links written back and
 * dropped from memory and the page cache) with the bytes of the links
 * resident after the row; NODEFILE is not used. Both print the process's
 * anonymous and file-backed resident memory (/proc/self/status) after the
 * build, minus what the loaded base vectors take.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vqs_common.h"
#include "vqs_index.h"
#include "vqs_store.h"
#include "bench_load.h"


static void die(const char *what, int rc)
{
    fprintf(stderr, "%s: %s (%s)\n", what, vqs_strerror(rc), vqs_errdetail());
    exit(1);
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static size_t parse_list(const char *s, size_t *out, size_t cap)
{
    size_t n = 0;
    char *e;
    while (*s && n < cap) {
        out[n++] = strtoul(s, &e, 10);
        s = *e == ',' ? e + 1 : e;
        if (e == s && *e)
            break;
    }
    return n;
}

/* ground truth: GT.ivecs / GT.fvecs (ids, distances), k = 10 */
static void ground_truth(const char *gt, vqs_metric m, const float *xb, size_t nb, const float *xq, size_t nq,
                         size_t d, int64_t *ids, float *dist)
{
    char pi[4200], pf[4200];
    snprintf(pi, sizeof pi, "%s.ivecs", gt);
    snprintf(pf, sizeof pf, "%s.fvecs", gt);
    FILE *fi = fopen(pi, "rb"), *ff = fopen(pf, "rb");
    if (fi && ff) {
        int ok = 1;
        for (size_t i = 0; i < nq && ok; i++) {
            int32_t dim, row[10];
            float rd[10];
            ok = fread(&dim, 4, 1, fi) == 1 && dim == 10 && fread(row, 4, 10, fi) == 10 &&
                 fread(&dim, 4, 1, ff) == 1 && dim == 10 && fread(rd, 4, 10, ff) == 10;
            for (size_t j = 0; ok && j < 10; j++) {
                ids[i * 10 + j] = row[j];
                dist[i * 10 + j] = rd[j];
            }
        }
        fclose(fi);
        fclose(ff);
        if (ok) {
            printf("# ground truth: read from %s.{ivecs,fvecs}\n", gt);
            return;
        }
        fprintf(stderr, "%s: does not fit these queries, computing again\n", gt);
    } else {
        if (fi)
            fclose(fi);
        if (ff)
            fclose(ff);
    }
    double t0 = vqs_now();
    vqs_matrix B = {xb, nb, d, d}, Q = {xq, nq, d, d};
    int rc = vqs_exact_knn(NULL, m, &B, &Q, 10, ids, dist);
    if (rc)
        die("ground truth", rc);
    printf("# ground truth: exact search, %.1f s\n", vqs_now() - t0);
    fi = fopen(pi, "wb");
    ff = fopen(pf, "wb");
    for (size_t i = 0; fi && ff && i < nq; i++) {
        int32_t dim = 10, row[10];
        for (size_t j = 0; j < 10; j++)
            row[j] = (int32_t)ids[i * 10 + j];
        fwrite(&dim, 4, 1, fi);
        fwrite(row, 4, 10, fi);
        fwrite(&dim, 4, 1, ff);
        fwrite(dist + i * 10, 4, 10, ff);
    }
    if (fi)
        fclose(fi);
    if (ff)
        fclose(ff);
}

static void drop_caches(void)
{
    sync();
    FILE *f = fopen("/proc/sys/vm/drop_caches", "w");
    if (f) {
        fputs("3\n", f);
        fclose(f);
    }
}

/* kB of a field of /proc/self/status (RssAnon, RssFile); 0 if absent */
static double status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double v = 0;
    size_t fl = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, fl) && line[fl] == ':')
            v = strtod(line + fl + 1, NULL);
    if (f)
        fclose(f);
    return v;
}

/* one row: nq single-query searches, latencies, recall of those answers */
static void run(const vqs_index *ix, const char *where, size_t ef, size_t W, vqs_metric m, const float *xb,
                size_t nb, const float *xq, size_t nq, size_t d, const int64_t *gt, const float *gd)
{
    int64_t *ids = malloc(sizeof(int64_t) * nq * 10);
    float *rd = malloc(sizeof(float) * nq * 10);
    double *lat = malloc(sizeof(double) * nq);
    vqs_search_params p = {0};
    p.ef = ef;
    p.oversampling = (float)ef / 10; /* every node of the beam re-scored: their vectors came with the reads */
    p.beam_width = W;
    p.nthreads = 1;
    uint64_t r0 = vqs_index_graph_disk_reads(ix);
    double t0 = vqs_now();
    for (size_t i = 0; i < nq; i++) {
        double a = vqs_now();
        int rc = vqs_index_search(ix, &p, 1, xq + i * d, 10, ids + i * 10, NULL);
        if (rc)
            die("search", rc);
        lat[i] = vqs_now() - a;
    }
    double wall = vqs_now() - t0;
    uint64_t reads = vqs_index_graph_disk_reads(ix) - r0;
    vqs_matrix B = {xb, nb, d, d}, Q = {xq, nq, d, d};
    vqs_exact_distances(m, &B, &Q, 10, ids, rd);
    vqs_knn G = {nq, 10, gt, gd}, R = {nq, 10, ids, rd};
    double rec = vqs_recall(m, &G, &R, 10, 10);
    qsort(lat, nq, sizeof(double), cmpd);
    double p50 = lat[nq / 2], p99 = lat[(size_t)ceil(0.99 * (double)nq) - 1];
    if (W)
        printf("| %s | %zu | %zu | %.4f | %.0f | %.0f | %.0f | %.1f |\n", where, ef, W, rec, p50 * 1e6, p99 * 1e6,
               (double)nq / wall, (double)reads / (double)nq);
    else
        printf("| %s | %zu | - | %.4f | %.0f | %.0f | %.0f | - |\n", where, ef, rec, p50 * 1e6, p99 * 1e6,
               (double)nq / wall);
    fflush(stdout);
    free(ids);
    free(rd);
    free(lat);
}

int main(int argc, char **argv)
{
    if (argc != 10) {
        fprintf(stderr, "usage: %s BASE QUERIES l2|ip|cos SPEC NODEFILE GT NQ EF,... W,...\n", argv[0]);
        return 2;
    }
    vqs_metric m;
    if (vqs_metric_parse(argv[3], &m)) {
        fprintf(stderr, "metric: %s\n", argv[3]);
        return 2;
    }
    size_t nb, d, nq, dq;
    float *xb = load(argv[1], &nb, &d);
    float *xq = load(argv[2], &nq, &dq);
    size_t want = strtoul(argv[7], NULL, 10);
    if (dq != d) {
        fprintf(stderr, "queries: d %zu, base d %zu\n", dq, d);
        return 1;
    }
    nq = want && want < nq ? want : nq;
    size_t efs[32], ws[32];
    size_t nef = parse_list(argv[8], efs, 32), nw = parse_list(argv[9], ws, 32);
    int64_t *gt = malloc(sizeof(int64_t) * nq * 10);
    float *gd = malloc(sizeof(float) * nq * 10);
    ground_truth(argv[6], m, xb, nb, xq, nq, d, gt, gd);

    vqs_index *ix;
    vqs_index_opts o = {0};
    o.seed = 1234;
    o.max_train = 100000;
    o.verbose = 1;
    int rc = vqs_index_create(argv[4], d, m, &o, &ix);
    if (rc)
        die(argv[4], rc);
    double anon0 = status_kb("RssAnon"); /* the loaded base, queries and ground truth */
    double t0 = vqs_now();
    if ((rc = vqs_index_train(ix, nb, xb)))
        die("train", rc);
    double t1 = vqs_now();
    if ((rc = vqs_index_add(ix, nb, xb, NULL)))
        die("add", rc);
    double t2 = vqs_now();
    printf("# %s over %zu x %zu (%s), %d threads: train %.1f s, build %.1f s\n", argv[4], nb, d, argv[3],
           vqs_default_threads(), t1 - t0, t2 - t1);
    printf("# in memory: %.1f B a vector held (float32: %zu B)\n", vqs_index_bytes_per_vector(ix, NULL),
           4 * d);
    sync(); /* a mapped graph's links, dirty from the build, written back before the rows */
    size_t mapped = 0, resident = 0;
    vqs_index_graph_mapped_stat(ix, &mapped, &resident);
    printf("# process after the build, less the loaded vectors: RssAnon %.1f B a vector, RssFile %.1f MB; links "
           "in a mapped file: %.1f MB (%.1f MB resident)\n",
           (status_kb("RssAnon") - anon0) * 1024 / (double)nb, status_kb("RssFile") / 1024, (double)mapped / 1e6,
           (double)resident / 1e6);
    printf("# k = 10, %zu queries one at a time on 1 thread; recall@10 with ties, from the timed searches\n", nq);
    printf("| where | beam | W (reads a hop) | recall@10 | p50 us | p99 us | q/s | nodes read a query |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    for (size_t e = 0; e < nef; e++)
        run(ix, mapped ? "links mapped, warm" : "memory", efs[e], 0, m, xb, nb, xq, nq, d, gt, gd);
    int mapped_spec = vqs_index_graph_mapped(argv[4]) == 1;
    if (mapped_spec || !strcmp(argv[5], "-")) { /* no node file: the rows in memory (and, /D, dropped) */
        for (size_t e = 0; mapped_spec && e < nef; e++) {
            if ((rc = vqs_index_graph_drop_pages(ix)))
                die("drop pages", rc);
            vqs_index_graph_mapped_stat(ix, &mapped, &resident);
            printf("#   links resident before the row: %.1f of %.1f MB\n", (double)resident / 1e6, (double)mapped / 1e6);
            run(ix, "links mapped, dropped before the row", efs[e], 0, m, xb, nb, xq, nq, d, gt, gd);
            vqs_index_graph_mapped_stat(ix, &mapped, &resident);
            printf("#   links resident after the row: %.1f of %.1f MB\n", (double)resident / 1e6, (double)mapped / 1e6);
        }
        goto out;
    }
    vqs_graph_disk_opts go = {0};
    t0 = vqs_now();
    if ((rc = vqs_index_graph_to_disk(ix, argv[5], &go)))
        die("to disk", rc);
    struct stat st;
    stat(argv[5], &st);
    printf("# on disk (%s): node file %.2f GB written in %.1f s; in memory %.1f B a vector held "
           "(1/%.1f of float32)\n",
           vqs_index_graph_disk_backend(ix), (double)st.st_size / 1e9, vqs_now() - t0,
           vqs_index_bytes_per_vector(ix, NULL), 4.0 * (double)d / vqs_index_bytes_per_vector(ix, NULL));
    for (size_t w = 0; w < nw; w++)
        for (size_t e = 0; e < nef; e++) {
            drop_caches();
            run(ix, "disk", efs[e], ws[w], m, xb, nb, xq, nq, d, gt, gd);
        }
    vqs_index_free(ix);
    t0 = vqs_now();
    if ((rc = vqs_index_open_disk(argv[5], NULL, &go, &ix)))
        die("open", rc);
    printf("# the node file reopened (vqs_index_open_disk) in %.1f s, %.1f B a vector held\n", vqs_now() - t0,
           vqs_index_bytes_per_vector(ix, NULL));
    drop_caches();
    run(ix, "disk, reopened", efs[nef - 1], 4, m, xb, nb, xq, nq, d, gt, gd);
out:
    vqs_index_free(ix);
    free(xb);
    free(xq);
    free(gt);
    free(gd);
    return 0;
}
