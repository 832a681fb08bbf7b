/*
 * bench_weights: the weight formats of issue 16 (codebooks/vqs_wq.h) on a
 * Gaussian weight matrix: SQNR measured, against the value each format's
 * definition gives when integrated numerically (tests/support/wq_theory.h)
 * and against the literature's number; bits per weight; and encode and
 * decode speed at each thread count.
 *
 *   bench_weights [--rows R] [--cols C] [--formats f1,f2,...]
 *                 [--threads 1,2] [--reps N] [--sqnr-only] [--seed S]
 *
 * Defaults: 4096 x 4096 iid N(0, 1) float32 weights (seed 1), every format
 * of the table except the VQ and codec ones (their encode is k-means
 * training; name them in --formats to include them), threads 1 and 2,
 * best of 3 runs. Prints one markdown table on stdout:
 *   bits/w       bits per weight of the encoded tensor, scales included
 *   SQNR dB      10 log10(sum w^2 / sum (w - decode(encode(w)))^2)
 *   theory dB    wq_theory.h's expectation for this shape; for the
 *                per-tensor formats (fp8_e4m3, fp8_e5m2, nvfp4) conditioned
 *                on this tensor's realised max |w|
 *   lit. dB      the number issue 16 quotes from the literature, if any
 *   enc / dec GB/s at t threads: float32 bytes of weights (rows * cols * 4)
 *                in (encode) or out (decode) per second, best of the runs
 * --sqnr-only skips the timings (SQNR does not depend on the machine).
 *
 * Design decisions: one tensor, encoded once per run and freed after it
 * (the timing includes the part allocations, as `vqs weights quantize`
 * pays them); the input is not flushed from cache between runs (64 MiB
 * at the default size, larger than the caches, so runs stream from memory
 * anyway). Rejected: a per-format chunked loop (it would time a kernel the
 * command never calls).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vqs_common.h"
#include "vqs_wq.h"
#include "wq_theory.h"

static void die(const char *what, int rc)
{
    fprintf(stderr, "bench_weights: %s: %s [%s] %s\n", what, vqs_strerror(rc), vqs_err_name(rc),
            vqs_errdetail());
    exit(1);
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_weights [--rows R] [--cols C] [--formats f1,f2,...] "
                    "[--threads 1,2] [--reps N] [--sqnr-only] [--seed S]\n");
    exit(2);
}

static void loadavg(char *buf, size_t n)
{
    snprintf(buf, n, "?");
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fgets(buf, (int)n, f))
            buf[strcspn(buf, " ")] = 0;
        fclose(f);
    }
}

#define MAXT 8

int main(int argc, char **argv)
{
    size_t rows = 4096, cols = 4096;
    const char *formats = NULL;
    int threads[MAXT] = {1, 2}, nthreads = 2, reps = 3, sqnr_only = 0;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--sqnr-only")) {
            sqnr_only = 1;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--rows"))
            rows = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--cols"))
            cols = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--formats"))
            formats = v;
        else if (!strcmp(a, "--reps"))
            reps = atoi(v);
        else if (!strcmp(a, "--seed"))
            seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--threads")) {
            nthreads = 0;
            for (const char *p = v; *p && nthreads < MAXT; p += strcspn(p, ","), p += *p == ',')
                threads[nthreads++] = atoi(p);
        } else
            usage();
    }
    if (!rows || !cols || reps < 1 || !nthreads)
        usage();
    for (int t = 0; t < nthreads; t++)
        if (threads[t] < 1)
            usage();

    /* the format list: the table's block formats, or --formats */
    char names[64][64];
    int nf = 0;
    if (formats) {
        for (const char *p = formats; *p && nf < 64; p += strcspn(p, ","), p += *p == ',') {
            size_t l = strcspn(p, ",");
            if (!l || l >= sizeof names[0])
                usage();
            memcpy(names[nf], p, l);
            names[nf++][l] = 0;
        }
    } else {
        for (size_t i = 0; i < vqs_wq_format_count() && nf < 64; i++) {
            const vqs_wq_format *f = vqs_wq_format_at(i);
            if (f->kind < VQS_WQ_VQ)
                snprintf(names[nf++], sizeof names[0], "%s", f->name);
        }
    }

    size_t n = rows * cols;
    float *w = malloc(n * sizeof *w), *q = malloc(n * sizeof *q);
    if (!w || !q)
        die("weights", VQS_ENOMEM);
    vqs_rng r;
    vqs_rng_seed(&r, seed);
    double amax = 0;
    for (size_t i = 0; i < n; i++) {
        w[i] = (float)vqs_rng_normal(&r);
        amax = fmax(amax, fabs((double)w[i]));
    }
    double gb = (double)n * 4 / 1e9;

    char la[32];
    loadavg(la, sizeof la);
    printf("<!-- bench_weights: %zu x %zu N(0,1) float32 weights, seed %llu, amax %.4f; "
           "SIMD level %s; load average %s; best of %d -->\n",
           rows, cols, (unsigned long long)seed, amax, vqs_simd_name(vqs_simd_level()), la, reps);
    printf("| format | bits/w | SQNR dB | theory dB | meas. - theory | lit. dB |");
    if (!sqnr_only)
        for (int t = 0; t < nthreads; t++)
            printf(" enc GB/s %dt | dec GB/s %dt |", threads[t], threads[t]);
    printf("\n|---|---:|---:|---:|---:|---:|");
    if (!sqnr_only)
        for (int t = 0; t < nthreads; t++)
            printf("---:|---:|");
    printf("\n");

    for (int fi = 0; fi < nf; fi++) {
        vqs_wq_spec spec;
        int rc = vqs_wq_spec_parse(names[fi], &spec);
        if (rc)
            die(names[fi], rc);
        vqs_wq_opts o = {0};
        o.nthreads = threads[0];
        vqs_wq_tensor t;
        if ((rc = vqs_wq_encode(&spec, w, rows, cols, &o, &t)))
            die(names[fi], rc);
        if ((rc = vqs_wq_decode(&t, q, &o)))
            die(names[fi], rc);
        double bits = vqs_wq_bits_per_weight(&t);
        vqs_wq_tensor_free(&t);
        double se = 0, sx = 0;
        for (size_t i = 0; i < n; i++) {
            double d = (double)w[i] - q[i];
            se += d * d;
            sx += (double)w[i] * w[i];
        }
        double db = 10 * log10(sx / se);
        double th = wqt_sqnr_db(names[fi], rows, cols, amax), lit = wqt_known_db(names[fi]);
        printf("| %s | %.3f | %.2f |", names[fi], bits, db);
        if (th > 0)
            printf(" %.2f | %+.3f |", th, db - th);
        else
            printf(" — | — |");
        if (lit > 0)
            printf(" %.1f |", lit);
        else
            printf(" — |");
        if (!sqnr_only)
            for (int ti = 0; ti < nthreads; ti++) {
                double best_e = HUGE_VAL, best_d = HUGE_VAL;
                o.nthreads = threads[ti];
                for (int k = 0; k < reps; k++) {
                    double t0 = vqs_now();
                    if ((rc = vqs_wq_encode(&spec, w, rows, cols, &o, &t)))
                        die(names[fi], rc);
                    double t1 = vqs_now();
                    if ((rc = vqs_wq_decode(&t, q, &o)))
                        die(names[fi], rc);
                    double t2 = vqs_now();
                    vqs_wq_tensor_free(&t);
                    best_e = fmin(best_e, t1 - t0);
                    best_d = fmin(best_d, t2 - t1);
                }
                printf(" %.2f | %.2f |", gb / best_e, gb / best_d);
            }
        printf("\n");
        fflush(stdout);
    }
    free(w);
    free(q);
    return 0;
}
