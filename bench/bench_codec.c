/*
 * bench_codec: quantizer training time, encode throughput and MSE, vqs
 * beside FAISS in the same run, same data, same thread count.
 *
 *   bench_codec TRAIN.fvecs TEST.fvecs THREADS [case ...]
 *
 * Cases: kmeans256 kmeans4096 PQ<M>x<nbits> RVQ8x8b1 RVQ8x8b8 SQ8 (default:
 * kmeans256 kmeans4096 PQ16x8 PQ32x4 RVQ8x8b1 RVQ8x8b8 SQ8). k-means: 25 iterations, at most 256 points per centroid, both sides
 * given the same (already subsampled) points, objective reported on them.
 * PQ/SQ: FAISS index_factory + train + sa_encode/sa_decode; vqs codec with
 * 25 k-means iterations. FAISS's PQ is made as "PQ16x8np": without "np" its
 * factory adds polysemous training, which only reorders centroids (same MSE)
 * and costs minutes. RVQ: FAISS "RQ8x8" with max_beam_size set to the
 * same beam; both trained on at most 20,000 points (FAISS's RQ training is
 * slow). MSE is measured on TEST.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <faiss/c_api/Clustering_c.h>
#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>

#include "faiss_c_extra.h"
#include "vqs_codebook.h"
#include "vqs_store.h"

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_codec: %s: %s [%s] %s\n", what, vqs_strerror(rc), vqs_err_name(rc),
            vqs_errdetail());
    exit(1);
}

static void fdie(const char *what)
{
    fprintf(stderr, "bench_codec: FAISS %s: %s\n", what, faiss_get_last_error());
    exit(1);
}

static double mse(const float *a, const float *b, size_t n, size_t d)
{
    double s = 0;
    for (size_t i = 0; i < n * d; i++)
        s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return s / (double)n;
}

/* sum of squared distances to the nearest centroid */
static double kobj(const float *x, size_t n, size_t d, const float *c, size_t k, int threads)
{
    int32_t *a = malloc(sizeof(int32_t) * n);
    float *dist = malloc(sizeof(float) * n);
    if (vqs_kmeans_assign(threads, n, d, x, k, c, a, dist))
        die("assign", VQS_EINVAL);
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += dist[i];
    free(a);
    free(dist);
    return s;
}

static void row(const char *name, double tv, double tf, double ev, double ef, double mv,
                double mf, const char *unit)
{
    printf("| %-10s | %8.2f | %8.2f | %5.2fx | %10.0f | %10.0f | %12.6g | %12.6g | %6.4f | %s\n",
           name, tv, tf, tf / tv, ev, ef, mv, mf, mv / mf, unit);
    fflush(stdout);
}

static void bench_kmeans(const float *xt, size_t nt, size_t d, size_t k, int threads)
{
    size_t n = nt < k * 256 ? nt : k * 256; /* the same sample for both */
    if (n < k) {
        printf("| kmeans%-4zu | skipped: %zu points < k\n", k, n);
        return;
    }
    float *cv = malloc(sizeof(float) * k * d);
    vqs_kmeans_opts ko = {.niter = 25, .nthreads = threads, .seed = 1234,
                          .max_points_per_centroid = SIZE_MAX};
    double t0 = vqs_now();
    int rc = vqs_kmeans(&ko, n, d, xt, k, cv, NULL);
    double tv = vqs_now() - t0;
    if (rc)
        die("vqs_kmeans", rc);
    FaissClusteringParameters cp;
    faiss_ClusteringParameters_init(&cp);
    cp.niter = 25;
    cp.max_points_per_centroid = 1 << 30;
    cp.seed = 1234;
    FaissClustering *cl;
    FaissIndexFlatL2 *idx;
    if (faiss_Clustering_new_with_params(&cl, (int)d, (int)k, &cp) ||
        faiss_IndexFlatL2_new_with(&idx, (idx_t)d))
        fdie("clustering");
    t0 = vqs_now();
    if (faiss_Clustering_train(cl, (idx_t)n, xt, (FaissIndex *)idx))
        fdie("clustering train");
    double tf = vqs_now() - t0;
    float *cf;
    size_t sz;
    faiss_Clustering_centroids(cl, &cf, &sz);
    double ov = kobj(xt, n, d, cv, k, threads), of = kobj(xt, n, d, cf, k, threads);
    char name[32];
    snprintf(name, sizeof name, "kmeans%zu", k);
    row(name, tv, tf, 0, 0, ov / n, of / n, "MSE = objective / n; no encode");
    faiss_Clustering_free(cl);
    faiss_Index_free((FaissIndex *)idx);
    free(cv);
}

static void bench_codec(const char *name, const char *vspec, const char *fspec, int beam,
                        const float *xt, size_t nt, const float *xq, size_t nq, size_t d,
                        int threads)
{
    vqs_codec_opts o = {.nthreads = threads, .seed = 1234, .kmeans_iters = 25, .rvq_beam = beam};
    vqs_codec *c;
    int rc;
    if ((rc = vqs_codec_create(vspec, d, &o, &c)))
        die(vspec, rc);
    double t0 = vqs_now();
    if ((rc = vqs_codec_train(c, nt, xt)))
        die("train", rc);
    double tv = vqs_now() - t0;
    size_t cs = vqs_codec_code_size(c);
    uint8_t *codes = malloc(cs * nq);
    float *rec = malloc(sizeof(float) * nq * d);
    t0 = vqs_now();
    if ((rc = vqs_codec_encode(c, nq, xq, codes)))
        die("encode", rc);
    double ev = nq / (vqs_now() - t0);
    vqs_codec_decode(c, nq, codes, rec);
    double mv = mse(xq, rec, nq, d);
    free(codes);
    vqs_codec_free(c);

    FaissIndex *fi;
    if (faiss_index_factory(&fi, (int)d, fspec, METRIC_L2))
        fdie(fspec);
    if (beam > 0 && vqs_faiss_set_rq_beam(fi, beam))
        fdie("rq beam");
    t0 = vqs_now();
    if (faiss_Index_train(fi, (idx_t)nt, xt))
        fdie("train");
    double tf = vqs_now() - t0;
    size_t fcs;
    faiss_Index_sa_code_size(fi, &fcs);
    codes = malloc(fcs * nq);
    t0 = vqs_now();
    if (faiss_Index_sa_encode(fi, (idx_t)nq, xq, codes))
        fdie("encode");
    double ef = nq / (vqs_now() - t0);
    faiss_Index_sa_decode(fi, (idx_t)nq, codes, rec);
    double mf = mse(xq, rec, nq, d);
    char unit[64];
    snprintf(unit, sizeof unit, "%zu vs %zu bytes/vector", cs, fcs);
    row(name, tv, tf, ev, ef, mv, mf, unit);
    free(codes);
    free(rec);
    faiss_Index_free(fi);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: bench_codec TRAIN TEST THREADS [case ...]\n");
        return 2;
    }
    int threads = atoi(argv[3]);
    float *xt, *xq;
    size_t nt, d, nq, dq;
    int rc;
    if ((rc = vqs_vecfile_load_f32(argv[1], NULL, &xt, &nt, &d)) ||
        (rc = vqs_vecfile_load_f32(argv[2], NULL, &xq, &nq, &dq)))
        die("load", rc);
    if (d != dq)
        die("dimensions differ", VQS_EINVAL);
    vqs_faiss_set_num_threads(threads);
    printf("train %zu x %zu, test %zu, %d threads\n\n", nt, d, nq, threads);
    printf("| case       | vqs train s | FAISS train s | FAISS/vqs | vqs enc/s | FAISS enc/s | vqs MSE | FAISS MSE | vqs/FAISS MSE | |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|\n");
    size_t nrq = nt < 20000 ? nt : 20000;
    const char *all[] = {"kmeans256", "kmeans4096", "PQ16x8", "PQ32x4", "RVQ8x8b1", "RVQ8x8b8", "SQ8"};
    int ncase = argc > 4 ? argc - 4 : 7;
    for (int i = 0; i < ncase; i++) {
        const char *cs = argc > 4 ? argv[4 + i] : all[i];
        if (!strcmp(cs, "kmeans256"))
            bench_kmeans(xt, nt, d, 256, threads);
        else if (!strcmp(cs, "kmeans4096"))
            bench_kmeans(xt, nt, d, 4096, threads);
        else if (!strncmp(cs, "PQ", 2)) { /* any PQ<M>x<nbits> */
            char fs[32];
            snprintf(fs, sizeof fs, "%snp", cs);
            bench_codec(cs, cs, fs, 0, xt, nt, xq, nq, d, threads);
        } else if (!strcmp(cs, "SQ8"))
            bench_codec(cs, cs, cs, 0, xt, nt, xq, nq, d, threads);
        else if (!strcmp(cs, "RVQ8x8b1"))
            bench_codec(cs, "RVQ8x8", "RQ8x8", 1, xt, nrq, xq, nq, d, threads);
        else if (!strcmp(cs, "RVQ8x8b8"))
            bench_codec(cs, "RVQ8x8", "RQ8x8", 8, xt, nrq, xq, nq, d, threads);
        else
            fprintf(stderr, "bench_codec: unknown case %s\n", cs);
    }
    free(xt);
    free(xq);
    return 0;
}
