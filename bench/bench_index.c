/*
 * bench_index.c: the compressed index beside FAISS, same data, same run.
 *
 *   bench_index BASE QUERIES METRIC THREADS NQ "vqs spec|faiss spec|nprobe|oversampling" ...
 * (for a VAMANA spec and a FAISS HNSW spec the nprobe column is the search
 * beam: vqs_search_params.ef, FAISS's efSearch; a comma-separated list,
 * e.g. "VAMANA32,SQ8,RFlat|HNSW32|16,32,64|2", sweeps it over one build of
 * each index: a row per value)
 *   bench_index synth:N:D:SEED - METRIC THREADS NQ ...   (seeded Gaussian mixture;
 *                                                          NQ queries drawn from it too)
 *
 * Per pair: training and adding time, bytes per code, recall@10 against
 * exact search (ties counted), and queries/s at k = 10 on one thread and
 * on THREADS threads (best of 3 runs over NQ queries, or of $REPS) for both libraries.
 * FAISS is Debian's 1.7.3 (a generic build; or the AVX2 build, bench/run_peers.sh),
 * OpenMP threads set to the same count, its searches timed with OpenBLAS's
 * pool at 1 and at the thread count (the faster counts); for cosine both
 * get unit vectors (FAISS: METRIC_INNER_PRODUCT on normalised rows,
 * normalised before its timer; vqs normalises inside).
 * FAISS parameters are set through ParameterSpace ("nprobe", "k_factor_rf"
 * for IndexRefine). A FAISS spec "-" runs vqs alone (no FAISS equivalent).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <faiss/c_api/AutoTune_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>
#include <faiss/c_api/index_io_c.h>
#include <sys/stat.h>
#include <unistd.h>

#include "faiss_c_extra.h"
#include "vqs_common.h"
#include "vqs_index.h"
#include "vqs_kernels.h"
#include "vqs_store.h"
#include "bench_load.h"


static void normalise(float *x, size_t n, size_t d)
{
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < d; j++)
            s += (double)x[i * d + j] * x[i * d + j];
        float inv = s > 0 ? (float)(1 / sqrt(s)) : 0;
        for (size_t j = 0; j < d; j++)
            x[i * d + j] *= inv;
    }
}

static double recall10(vqs_metric m, const float *xb, size_t nb, const float *xq, size_t nq, size_t d,
                       const int64_t *gt, const float *gd, const int64_t *ids)
{
    vqs_matrix B = {xb, nb, d, d}, Q = {xq, nq, d, d};
    float *rd = malloc(sizeof(float) * nq * 10);
    vqs_exact_distances(m, &B, &Q, 10, ids, rd);
    vqs_knn G = {nq, 10, gt, gd}, R = {nq, 10, ids, rd};
    double r = vqs_recall(m, &G, &R, 10, 10);
    free(rd);
    return r;
}

#define DIE(...) (fprintf(stderr, __VA_ARGS__), exit(1))

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: %s BASE QUERIES l2|ip|cos THREADS NQ 'vqs|faiss|nprobe|os' ...\n", argv[0]);
        return 2;
    }
    vqs_metric m;
    if (vqs_metric_parse(argv[3], &m))
        DIE("metric %s\n", argv[3]);
    int T = atoi(argv[4]);
    size_t nqmax = (size_t)atol(argv[5]);
    size_t nb, nq, d, dq;
    float *xb, *xq;
    if (!strncmp(argv[1], "synth:", 6)) {
        size_t N = 0, D = 0;
        unsigned long long seed = 0;
        if (sscanf(argv[1] + 6, "%zu:%zu:%llu", &N, &D, &seed) != 3)
            DIE("synth:N:D:SEED\n");
        vqs_synth_opts so = {.seed = seed, .unit_norm = m == VQS_METRIC_COS};
        float *all = malloc(sizeof(float) * (N + nqmax) * D);
        if (!all || vqs_synth_gmm(&so, N + nqmax, D, all))
            DIE("synth\n");
        /* queries: the last nqmax rows (same distribution, not in the base) */
        nb = N;
        nq = nqmax;
        d = D;
        xb = all;
        xq = malloc(sizeof(float) * nq * d);
        memcpy(xq, all + N * D, sizeof(float) * nq * d);
    } else {
        xb = load(argv[1], &nb, &d);
        xq = load(argv[2], &nq, &dq);
        if (dq != d)
            DIE("dimensions differ\n");
    }
    if (nqmax && nq > nqmax)
        nq = nqmax;
    vqs_blas_single_thread();
    int reps = getenv("REPS") ? atoi(getenv("REPS")) : 3;
    if (reps < 1)
        reps = 1;
    /* ground truth */
    int64_t *gt = malloc(sizeof(int64_t) * nq * 10), *ids = malloc(sizeof(int64_t) * nq * 10);
    float *gd = malloc(sizeof(float) * nq * 10), *fd = malloc(sizeof(float) * nq * 10);
    idx_t *fl = malloc(sizeof(idx_t) * nq * 10);
    vqs_matrix B = {xb, nb, d, d}, Q = {xq, nq, d, d};
    vqs_exact_opts eo = {.nthreads = T};
    if (vqs_exact_knn(&eo, m, &B, &Q, 10, gt, gd))
        DIE("gt: %s\n", vqs_errdetail());
    /* FAISS sees normalised copies for cosine */
    float *fb = xb, *fq = xq;
    if (m == VQS_METRIC_COS) {
        fb = malloc(sizeof(float) * nb * d);
        fq = malloc(sizeof(float) * nq * d);
        memcpy(fb, xb, sizeof(float) * nb * d);
        memcpy(fq, xq, sizeof(float) * nq * d);
        normalise(fb, nb, d);
        normalise(fq, nq, d);
    }
    FaissMetricType fm = m == VQS_METRIC_L2 ? METRIC_L2 : METRIC_INNER_PRODUCT;
    printf("data: %s (%zu x %zu), %zu queries, %s, k = 10, %d threads, vqs kernels: %s (VPOPCNTDQ %s)\n",
           argv[1], nb, d, nq, vqs_metric_name(m), T, vqs_kernels_active()->name,
           vqs_simd_has_vpopcntdq() ? "yes" : "no");
    printf("| vqs spec | FAISS spec | nprobe | os | bytes/code | vqs train+add s | FAISS train+add s | "
           "vqs R@10 | FAISS R@10 | vqs q/s 1t | FAISS q/s 1t | vqs/FAISS 1t | vqs q/s %dt | FAISS q/s %dt | "
           "vqs/FAISS %dt |\n",
           T, T, T);
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    fflush(stdout);
    for (int a = 6; a < argc; a++) {
        char vs[256], fs[256];
        float os = 0;
        char *arg = strdup(argv[a]), *p1 = strchr(arg, '|'), *p2 = p1 ? strchr(p1 + 1, '|') : NULL,
             *p3 = p2 ? strchr(p2 + 1, '|') : NULL;
        if (!p3)
            DIE("pair '%s': want 'vqs|faiss|nprobe|oversampling'\n", argv[a]);
        *p1 = *p2 = *p3 = 0;
        snprintf(vs, sizeof vs, "%s", arg);
        snprintf(fs, sizeof fs, "%s", p1 + 1);
        /* nprobe (or beam): one value, or a comma-separated sweep over one build */
        size_t probes[64], np = 0;
        for (char *t = strtok(p2 + 1, ","); t && np < 64; t = strtok(NULL, ","))
            probes[np++] = (size_t)atol(t);
        if (!np)
            probes[np++] = 0;
        os = (float)atof(p3 + 1);
        free(arg);
        /* vqs */
        vqs_index_opts io = {.nthreads = T, .seed = 1, .max_train = 100000};
        vqs_index *ix;
        if (vqs_index_create(vs, d, m, &io, &ix))
            DIE("%s: %s\n", vs, vqs_errdetail());
        double t0 = vqs_now();
        size_t ntrain = nb < 100000 ? nb : 100000;
        if (vqs_index_train(ix, nb, xb) || vqs_index_add(ix, nb, xb, NULL))
            DIE("%s: %s\n", vs, vqs_errdetail());
        double vbuild = vqs_now() - t0;
        size_t cs = vqs_index_code_size(ix), fixed = 0;
        double held = vqs_index_bytes_per_vector(ix, &fixed);
        printf("# vqs %s: %.1f B/vec held (+%zu B fixed), built in %.2f s\n", vs, held, fixed, vbuild);
        int graph = vqs_index_graph_params(vs, NULL, NULL, NULL) == 1; /* the nprobe column is the beam (ef) */
        int th[2] = {1, T};
        /* FAISS: trained on the same number of rows (the first ntrain: FAISS
         * subsamples inside its k-means as well) */
        FaissIndex *fi = NULL;
        double fbuild = 0;
        const char *pname = strstr(fs, "HNSW") ? "efSearch" : "nprobe"; /* HNSW: the column is efSearch */
        if (strcmp(fs, "-")) {
            vqs_faiss_set_num_threads(T);
            vqs_faiss_set_blas_threads(T);
            if (faiss_index_factory(&fi, (int)d, fs, fm))
                DIE("%s: %s\n", fs, faiss_get_last_error());
            t0 = vqs_now();
            if (faiss_Index_train(fi, (idx_t)ntrain, fb) || faiss_Index_add(fi, (idx_t)nb, fb))
                DIE("%s: %s\n", fs, faiss_get_last_error());
            fbuild = vqs_now() - t0;
            /* its size: the saved index over the vectors */
            char tmpl[] = "/tmp/vqs-faiss-XXXXXX";
            int fd_ = mkstemp(tmpl);
            if (fd_ >= 0) {
                close(fd_);
                struct stat st;
                if (!faiss_write_index_fname(fi, tmpl) && !stat(tmpl, &st))
                    printf("# FAISS %s: %.1f B/vec (saved index), built in %.2f s\n", fs, (double)st.st_size / (double)nb,
                           fbuild);
                unlink(tmpl);
            }
        }
        for (size_t pi = 0; pi < np; pi++) {
            size_t nprobe = probes[pi];
            vqs_search_params sp = {.nprobe = graph ? 0 : nprobe, .ef = graph ? nprobe : 0, .oversampling = os,
                                    .rerank = os > 0 ? VQS_RERANK_ON : VQS_RERANK_OFF};
            double vq[2] = {INFINITY, INFINITY};
            vqs_faiss_set_blas_threads(1); /* vqs: BLAS single-threaded inside its threads */
            for (int t = 0; t < 2; t++) {
                sp.nthreads = th[t];
                for (int rep = 0; rep < reps; rep++) {
                    double s = vqs_now();
                    if (vqs_index_search(ix, &sp, nq, xq, 10, ids, NULL))
                        DIE("%s search: %s\n", vs, vqs_errdetail());
                    s = vqs_now() - s;
                    if (s < vq[t])
                        vq[t] = s;
                }
            }
            double vr = recall10(m, xb, nb, xq, nq, d, gt, gd, ids);
            if (!fi) {
                printf("| %s | (none) | %zu | %g | %zu | %.2f | | %.4f | | %.0f | | | %.0f | | |\n", vs, nprobe,
                       (double)os, cs, vbuild, vr, nq / vq[0], nq / vq[1]);
                fflush(stdout);
                continue;
            }
            FaissParameterSpace *ps;
            faiss_ParameterSpace_new(&ps);
            if (nprobe && faiss_ParameterSpace_set_index_parameter(ps, fi, pname, (double)nprobe))
                DIE("%s %s: %s\n", fs, pname, faiss_get_last_error());
            int frefine = strstr(fs, "RFlat") || strstr(fs, "Refine"); /* FAISS HNSW32,Flat has no second stage */
            if (os > 0 && frefine && faiss_ParameterSpace_set_index_parameter(ps, fi, "k_factor_rf", (double)os))
                DIE("%s k_factor: %s\n", fs, faiss_get_last_error());
            faiss_ParameterSpace_free(ps);
            double fq_[2] = {INFINITY, INFINITY};
            for (int t = 0; t < 2; t++) {
                vqs_faiss_set_num_threads(th[t]);
                /* OpenBLAS's own pool (FAISS's coarse step is an sgemm) at 1 and
                 * at the thread count: the faster counts */
                for (int bt = 1; bt <= th[t]; bt = bt == th[t] ? th[t] + 1 : th[t]) {
                    vqs_faiss_set_blas_threads(bt);
                    for (int rep = 0; rep < reps; rep++) {
                        double s = vqs_now();
                        if (faiss_Index_search(fi, (idx_t)nq, fq, 10, fd, fl))
                            DIE("%s search: %s\n", fs, faiss_get_last_error());
                        s = vqs_now() - s;
                        if (s < fq_[t])
                            fq_[t] = s;
                    }
                }
            }
            int64_t *fids = malloc(sizeof(int64_t) * nq * 10);
            for (size_t i = 0; i < nq * 10; i++)
                fids[i] = fl[i] < 0 ? -1 : (int64_t)fl[i];
            double fr = recall10(m, xb, nb, xq, nq, d, gt, gd, fids);
            free(fids);
            printf("| %s | %s | %zu | %g | %zu | %.2f | %.2f | %.4f | %.4f | %.0f | %.0f | **%.2f×** | %.0f | %.0f | "
                   "**%.2f×** |\n",
                   vs, fs, nprobe, (double)os, cs, vbuild, fbuild, vr, fr, nq / vq[0], nq / fq_[0], fq_[0] / vq[0],
                   nq / vq[1], nq / fq_[1], fq_[1] / vq[1]);
            fflush(stdout);
        }
        vqs_index_free(ix);
        if (fi)
            faiss_Index_free(fi);
    }
    return 0;
}
