/*
 * bench_exact: exact k-NN, vqs beside FAISS IndexFlat in the same run.
 *
 *   bench_exact BASE QUERIES K METRIC THREADS [REPEATS]
 *
 * Both sides get the same data and thread count (FAISS: OpenMP threads, and
 * its one sgemm timed with OpenBLAS's own pool at 1 and at THREADS threads,
 * the faster counting; vqs: its own threads, BLAS single-threaded in each). Cosine runs on
 * FAISS as IndexFlatIP over rows normalised beforehand (normalisation is not
 * timed for FAISS; vqs normalises inside its timed call). Timings are the
 * best of REPEATS runs. Agreement is checked by recall with ties, using true
 * distances of both answers.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <faiss/c_api/IndexFlat_c.h>
#include <faiss/c_api/Index_c.h>
#include <faiss/c_api/error_c.h>
#include <faiss/c_api/index_factory_c.h>

#include "faiss_c_extra.h"
#include "vqs_common.h"
#include "vqs_index.h"
#include "vqs_store.h"

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_exact: %s: %s [%s] %s\n", what, vqs_strerror(rc), vqs_err_name(rc),
            vqs_errdetail());
    exit(1);
}

static float *contiguous(const vqs_matrix *m, int normalise)
{
    float *x = malloc(sizeof(float) * m->n * m->d);
    if (!x)
        die("malloc", VQS_ENOMEM);
    for (size_t i = 0; i < m->n; i++) {
        const float *r = m->x + i * m->ld;
        double s = 0;
        for (size_t j = 0; j < m->d; j++)
            s += (double)r[j] * r[j];
        float inv = normalise && s > 0 ? (float)(1 / sqrt(s)) : 1.f;
        for (size_t j = 0; j < m->d; j++)
            x[i * m->d + j] = r[j] * inv;
    }
    return x;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: bench_exact BASE QUERIES K l2|ip|cos THREADS [REPEATS]\n");
        return 2;
    }
    size_t k = strtoul(argv[3], NULL, 10);
    int threads = atoi(argv[5]), reps = argc > 6 ? atoi(argv[6]) : 3;
    vqs_metric m;
    int rc;
    if ((rc = vqs_metric_parse(argv[4], &m)))
        die("metric", rc);
    vqs_vecfile *bf, *qf;
    if ((rc = vqs_vecfile_open(argv[1], NULL, &bf)) || (rc = vqs_vecfile_open(argv[2], NULL, &qf)))
        die("open", rc);
    vqs_matrix B = {NULL, vqs_vecfile_n(bf), vqs_vecfile_d(bf), 0};
    vqs_matrix Q = {NULL, vqs_vecfile_n(qf), vqs_vecfile_d(qf), 0};
    if ((rc = vqs_vecfile_f32_view(bf, &B.x, &B.ld)) || (rc = vqs_vecfile_f32_view(qf, &Q.x, &Q.ld)))
        die("view", rc);
    size_t nq = Q.n, d = B.d;
    printf("exact k-NN: base %zu x %zu, %zu queries, k = %zu, metric %s, %d threads\n", B.n, d, nq,
           k, vqs_metric_name(m), threads);

    int64_t *ids = malloc(sizeof(int64_t) * nq * k), *fids = malloc(sizeof(int64_t) * nq * k);
    float *dist = malloc(sizeof(float) * nq * k), *fd = malloc(sizeof(float) * nq * k);
    float *ftrue = malloc(sizeof(float) * nq * k);
    if (!ids || !fids || !dist || !fd || !ftrue)
        die("malloc", VQS_ENOMEM);

    /* vqs */
    vqs_exact_opts eo = {.nthreads = threads};
    double best_v = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = vqs_now();
        if ((rc = vqs_exact_knn(&eo, m, &B, &Q, k, ids, dist)))
            die("vqs_exact_knn", rc);
        double t = vqs_now() - t0;
        best_v = t < best_v ? t : best_v;
    }

    /* FAISS: its flat search is one sgemm, threaded by OpenBLAS's own pool
     * (vqs ran above with BLAS single-threaded in its own threads); timed
     * with the pool at 1 and at THREADS, the faster one counts */
    vqs_faiss_set_num_threads(threads);
    float *xb = contiguous(&B, m == VQS_METRIC_COS), *xq = contiguous(&Q, m == VQS_METRIC_COS);
    FaissIndex *idx;
    if (faiss_index_factory(&idx, (int)d, "Flat", m == VQS_METRIC_L2 ? METRIC_L2 : METRIC_INNER_PRODUCT) ||
        faiss_Index_add(idx, (idx_t)B.n, xb)) {
        fprintf(stderr, "faiss: %s\n", faiss_get_last_error());
        return 1;
    }
    idx_t *fl = malloc(sizeof(idx_t) * nq * k);
    double best_f = 1e30;
    int best_bt = 1;
    for (int bt = 1; bt <= threads; bt = bt == threads ? threads + 1 : threads) {
        vqs_faiss_set_blas_threads(bt);
        for (int r = 0; r < reps; r++) {
            double t0 = vqs_now();
            if (faiss_Index_search(idx, (idx_t)nq, xq, (idx_t)k, fd, fl)) {
                fprintf(stderr, "faiss: %s\n", faiss_get_last_error());
                return 1;
            }
            double t = vqs_now() - t0;
            if (t < best_f) {
                best_f = t;
                best_bt = bt;
            }
        }
    }
    vqs_faiss_set_blas_threads(1);
    for (size_t i = 0; i < nq * k; i++)
        fids[i] = fl[i];

    /* agreement: recall of FAISS's answer against vqs's, with ties */
    if ((rc = vqs_exact_distances(m, &B, &Q, k, fids, ftrue)))
        die("distances", rc);
    vqs_knn G = {nq, k, ids, dist}, R = {nq, k, fids, ftrue};
    double rec = vqs_recall(m, &G, &R, k, k);
    size_t same = 0;
    for (size_t i = 0; i < nq * k; i++)
        same += ids[i] == fids[i];

    printf("%-6s %10s %12s\n", "", "seconds", "queries/s");
    printf("%-6s %10.3f %12.0f\n", "vqs", best_v, nq / best_v);
    printf("%-6s %10.3f %12.0f   (OpenBLAS threads %d: the faster of 1 and %d)\n", "faiss", best_f, nq / best_f,
           best_bt, threads);
    printf("speed-up vqs/faiss: %.2fx; FAISS answer's %zu-recall@%zu vs vqs (ties counted): %.6f; "
           "identical ids %.4f%%\n",
           best_f / best_v, k, k, rec, 100.0 * same / (nq * k));
    faiss_Index_free(idx);
    free(xb);
    free(xq);
    free(fl);
    free(ids);
    free(fids);
    free(dist);
    free(fd);
    free(ftrue);
    vqs_vecfile_close(bf);
    vqs_vecfile_close(qf);
    return 0;
}
