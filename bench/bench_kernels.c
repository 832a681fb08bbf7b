/*
 * bench_kernels: scan-kernel throughput on one core, beside this machine's
 * memory bandwidth.
 *
 *   bench_kernels [ncodes [filter]]   (default 1,000,000; filter: run only
 *                                     the cases whose name contains it)
 *
 * For every SIMD level the CPU has (scalar, avx2, avx512) and each case,
 * codes scanned per second on one thread (best of 5 passes over ncodes
 * codes that live in memory, not in cache), and that rate times the bytes
 * per code as GB/s. Cases:
 *   PQ32x4 fast scan  pq4fs_scan alone, and + select_le_u16 (threshold
 *                     keeping ~1%), 16 B/code
 *   hamming d=768     96 B/code;  hamming d=128: 16 B/code
 *   bin_est d=768     the BIN estimator, 96 bit bytes + r + a = 104 B/code
 *   lut8 PQ16x8       16 B/code;  sq_l2 U8 d=128: 128 B/code
 *   PQ16x8 / PQ32x8 fast scan  pq8fs_scan (quantised u8 tables over the
 *                     packed 8-bit layout), 16 / 32 B/code; the avx512
 *                     rows use AVX-512 VBMI when the CPU has it (header)
 * Outputs go to a buffer of CHUNK codes that is reused (the index consumes
 * scores chunk by chunk), so the traffic measured is the codes' stream.
 * Memory bandwidth: a streaming read (sum of 64-bit words, AVX2 loads) of a
 * 1 GiB buffer with 1 and 2 threads, best of 5, once at the start; and,
 * because the machine's 2 cores are shared and the figure moves with the
 * neighbours' load, again on one thread (256 MiB, best of 5) right after
 * each row's kernel: "of it" is the kernel's GB/s over that figure. "in
 * cache" is the same kernel on the first chunk of codes over and over (its
 * compute speed).
 * Design decision: inputs are random bytes (kernels are data-independent,
 * except the selection's output size, which is kept near 1%).
 */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <immintrin.h>

#include "vqs_common.h"
#include "vqs_kernels.h"

#define CHUNK 8192 /* codes per kernel call (a multiple of 32) */
#define REPS 5

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *xmalloc(size_t n)
{
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "bench_kernels: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

static uint8_t *random_bytes(vqs_rng *r, size_t n)
{
    uint8_t *p = xmalloc(n);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = vqs_rng_next(r);
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++)
        p[i] = (uint8_t)vqs_rng_next(r);
    return p;
}

static void loadavg(char *buf)
{
    strcpy(buf, "?");
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fgets(buf, 64, f))
            buf[strcspn(buf, "\n")] = 0;
        fclose(f);
    }
}

/* ---- memory bandwidth ------------------------------------------------------------------ */

typedef struct bw_job {
    const uint8_t *p;
    size_t n;
    uint64_t sum;
} bw_job;

/* 512 bytes per iteration, 8 accumulators: measured ~15% more than 128
 * bytes per iteration with 4 (more misses in flight) */
__attribute__((target("avx2"))) static uint64_t sum_avx2(const uint8_t *p, size_t n)
{
    __m256i s[8];
    for (int k = 0; k < 8; k++)
        s[k] = _mm256_setzero_si256();
    for (size_t i = 0; i + 512 <= n; i += 512)
        for (int k = 0; k < 8; k++) {
            s[k] = _mm256_add_epi64(s[k], _mm256_load_si256((const __m256i *)(p + i + 64 * k)));
            s[k] =
                _mm256_add_epi64(s[k], _mm256_load_si256((const __m256i *)(p + i + 64 * k + 32)));
        }
    for (int k = 1; k < 8; k++)
        s[0] = _mm256_add_epi64(s[0], s[k]);
    uint64_t t[4];
    _mm256_storeu_si256((__m256i *)t, s[0]);
    return t[0] + t[1] + t[2] + t[3];
}

static uint64_t sum_sse2(const uint8_t *p, size_t n)
{
    __m128i s0 = _mm_setzero_si128(), s1 = s0;
    for (size_t i = 0; i + 32 <= n; i += 32) {
        s0 = _mm_add_epi64(s0, _mm_load_si128((const __m128i *)(p + i)));
        s1 = _mm_add_epi64(s1, _mm_load_si128((const __m128i *)(p + i + 16)));
    }
    s0 = _mm_add_epi64(s0, s1);
    uint64_t t[2];
    _mm_storeu_si128((__m128i *)t, s0);
    return t[0] + t[1];
}

static void *bw_run(void *arg)
{
    bw_job *j = arg;
    j->sum = __builtin_cpu_supports("avx2") ? sum_avx2(j->p, j->n) : sum_sse2(j->p, j->n);
    return NULL;
}

/* best-of-5 GB/s of a streaming read of buf (n bytes) by nt threads */
static double bandwidth(const uint8_t *buf, size_t n, int nt)
{
    double best = 0;
    uint64_t sink = 0;
    for (int rep = 0; rep < 5; rep++) {
        pthread_t th[2];
        bw_job job[2];
        double t0 = now();
        for (int k = 0; k < nt; k++) {
            job[k] = (bw_job){buf + n / (size_t)nt * (size_t)k, n / (size_t)nt, 0};
            if (pthread_create(&th[k], NULL, bw_run, &job[k]) != 0) {
                fprintf(stderr, "bench_kernels: pthread_create failed\n");
                exit(1);
            }
        }
        for (int k = 0; k < nt; k++) {
            pthread_join(th[k], NULL);
            sink += job[k].sum;
        }
        double gbs = (double)n / (now() - t0) / 1e9;
        best = gbs > best ? gbs : best;
    }
    if (sink == 42) /* keep the sums alive */
        printf(" ");
    return best;
}

/* ---- cases ----------------------------------------------------------------------------- */

#define NCASES_MAX 10
#define SPAN ((size_t)256 << 20) /* bytes each case's passes rotate over: 8x this L3 */

typedef struct bench_data {
    size_t n;
    /* fast scan */
    uint8_t *fs_packed, fs_lut8[32 * 16];
    uint16_t fs_thr;
    /* hamming */
    uint8_t *h768, *h128, hq[96];
    /* bin_est */
    uint8_t *bin;
    float *bin_tab;
    /* 8-bit fast scan, M = 16 and 32 */
    uint8_t *fs8_16, *fs8_32, fs8_lut16[16 * 256], fs8_lut32[32 * 256];
    /* lut8 / sq */
    uint8_t *pq8, *sq8;
    float *lut8, sq_q[128], sq_w[128];
    /* every code set is replicated nreg[c] times (rsz[c] bytes apart) so that
     * consecutive passes read memory that is not in the L3 cache */
    size_t nreg[NCASES_MAX], rsz[NCASES_MAX];
    /* outputs */
    uint16_t o16[CHUNK];
    uint32_t o32[CHUNK], idx[CHUNK];
    float of[CHUNK];
} bench_data;

enum { C_FS, C_FSSEL, C_H768, C_H128, C_BIN, C_LUT8, C_FS8_16, C_FS8_32, C_SQ, NCASES };
static const char *case_name[NCASES] = {"PQ32x4 fast scan", "PQ32x4 fast scan + select",
                                        "hamming d=768",    "hamming d=128",
                                        "bin_est d=768",    "lut8 PQ16x8",
                                        "PQ16x8 fast scan", "PQ32x8 fast scan",
                                        "sq_l2 U8 d=128"};
static const size_t case_bytes[NCASES] = {16, 16, 96, 16, 104, 16, 16, 32, 128};

/* pass number `pass` over all codes, in copy pass % nreg (cached: the first
 * CHUNK codes of copy 0, n / CHUNK times); returns a checksum so that
 * nothing is optimised away */
static uint64_t run_case(const vqs_kernels *K, int c, bench_data *B, int cached, size_t pass)
{
    uint64_t sink = 0;
    size_t n = B->n, off = cached ? 0 : pass % B->nreg[c] * B->rsz[c];
    for (size_t i0 = 0; i0 < n; i0 += CHUNK) {
        size_t m = n - i0 < CHUNK ? n - i0 : CHUNK, i = cached ? 0 : i0;
        switch (c) {
        case C_FS:
        case C_FSSEL: {
            size_t nbl = (m + 31) / 32;
            K->pq4fs_scan(B->fs_lut8, 32, B->fs_packed + off + i / 32 * 32 * 16, nbl, B->o16);
            sink += c == C_FSSEL ? K->select_le_u16(B->o16, m, B->fs_thr, B->idx) : B->o16[m - 1];
            break;
        }
        case C_H768:
            K->hamming(B->hq, 96, B->h768 + off + i * 96, 96, m, B->o32);
            sink += B->o32[m - 1];
            break;
        case C_H128:
            K->hamming(B->hq, 16, B->h128 + off + i * 16, 16, m, B->o32);
            sink += B->o32[m - 1];
            break;
        case C_BIN:
            K->bin_est(B->bin_tab, 96, 10.0f, 1.0f, 0.036f, 1, B->bin + off + i * 104, 104, m,
                       B->of);
            sink += (uint64_t)B->of[m - 1];
            break;
        case C_LUT8:
            K->lut8(B->lut8, 16, 0.0f, B->pq8 + off + i * 16, 16, m, B->of);
            sink += (uint64_t)B->of[m - 1];
            break;
        case C_FS8_16:
        case C_FS8_32: {
            size_t M = c == C_FS8_16 ? 16 : 32, nbl = (m + 63) / 64;
            const uint8_t *p = (c == C_FS8_16 ? B->fs8_16 : B->fs8_32) + off + i / 64 * 64 * M;
            K->pq8fs_scan(c == C_FS8_16 ? B->fs8_lut16 : B->fs8_lut32, M, p, nbl, B->o16);
            sink += B->o16[m - 1];
            break;
        }
        case C_SQ:
            K->sq_l2(VQS_ELEM_U8, B->sq_q, B->sq_w, 128, B->sq8 + off + i * 128, 128, m, B->of);
            sink += (uint64_t)B->of[m - 1];
            break;
        }
    }
    return sink;
}

/* copies of the rsz bytes at *p until they span at least SPAN bytes */
static void replicate(uint8_t **p, size_t rsz, bench_data *B, int c)
{
    size_t k = (SPAN + rsz - 1) / rsz;
    uint8_t *q = xmalloc(k * rsz);
    for (size_t j = 0; j < k; j++)
        memcpy(q + j * rsz, *p, rsz);
    free(*p);
    *p = q;
    B->nreg[c] = k;
    B->rsz[c] = rsz;
}

static int cmp_u16(const void *a, const void *b)
{
    return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 1000000;
    if (n < CHUNK)
        n = CHUNK;
    vqs_rng r;
    vqs_rng_seed(&r, 2024);
    bench_data *B = xmalloc(sizeof *B);
    memset(B, 0, sizeof *B);
    B->n = n;

    /* memory bandwidth first, with nothing else allocated */
    char load0[64], load1[64];
    loadavg(load0);
    size_t gib = (size_t)1 << 30;
    uint8_t *big = xmalloc(gib);
    memset(big, 1, gib);
    double bw1 = bandwidth(big, gib, 1), bw2 = bandwidth(big, gib, 2);
    free(big);
    big = xmalloc(SPAN); /* for the bandwidth beside each row */
    memset(big, 1, SPAN);

    /* PQ32x4 fast scan: random 4-bit codes, quantised random float tables */
    {
        uint8_t *codes = random_bytes(&r, n * 16);
        B->fs_packed = xmalloc(vqs_pq4fs_packed_size(n, 32));
        vqs_pq4fs_pack(codes, 16, n, 32, B->fs_packed);
        free(codes);
        float lut[32 * 16], bias, scale, err;
        for (int i = 0; i < 32 * 16; i++)
            lut[i] = (float)vqs_rng_uniform(&r);
        vqs_pq4fs_quantize(lut, 32, INFINITY, B->fs_lut8, &bias, &scale, &err);
        /* threshold: the 1% quantile of the first chunk */
        const vqs_kernels *R = vqs_kernels_for(VQS_SIMD_SCALAR);
        R->pq4fs_scan(B->fs_lut8, 32, B->fs_packed, CHUNK / 32, B->o16);
        qsort(B->o16, CHUNK, sizeof(uint16_t), cmp_u16);
        B->fs_thr = B->o16[CHUNK / 100];
    }
    B->h768 = random_bytes(&r, n * 96);
    B->h128 = random_bytes(&r, n * 16);
    for (int i = 0; i < 96; i++)
        B->hq[i] = (uint8_t)vqs_rng_next(&r);
    B->bin = random_bytes(&r, n * 104);
    for (size_t i = 0; i < n; i++) { /* plausible r and a */
        float rr = 1.0f + (float)vqs_rng_uniform(&r), a = 0.8f;
        memcpy(B->bin + i * 104 + 96, &rr, 4);
        memcpy(B->bin + i * 104 + 100, &a, 4);
    }
    B->bin_tab = xmalloc(sizeof(float) * 96 * 256);
    for (int i = 0; i < 96 * 256; i++)
        B->bin_tab[i] = (float)vqs_rng_normal(&r);
    B->pq8 = random_bytes(&r, n * 16);
    B->lut8 = xmalloc(sizeof(float) * 16 * 256);
    for (int i = 0; i < 16 * 256; i++)
        B->lut8[i] = (float)vqs_rng_uniform(&r);
    /* PQ16x8 / PQ32x8 fast scan: random codes, quantised random float tables */
    for (size_t M = 16; M <= 32; M += 16) {
        uint8_t *codes = random_bytes(&r, n * M);
        uint8_t *p = xmalloc(vqs_pq8fs_packed_size(n, M));
        vqs_pq8fs_pack(codes, M, n, M, p);
        free(codes);
        float *lut = xmalloc(sizeof(float) * M * 256), bias, scale, err;
        for (size_t i = 0; i < M * 256; i++)
            lut[i] = (float)vqs_rng_uniform(&r);
        vqs_pq8fs_quantize(lut, M, INFINITY, M == 16 ? B->fs8_lut16 : B->fs8_lut32, &bias, &scale, &err);
        free(lut);
        if (M == 16)
            B->fs8_16 = p;
        else
            B->fs8_32 = p;
    }
    B->sq8 = random_bytes(&r, n * 128);
    for (int i = 0; i < 128; i++) {
        B->sq_q[i] = (float)vqs_rng_normal(&r);
        B->sq_w[i] = 0.01f;
    }

    replicate(&B->fs_packed, vqs_pq4fs_packed_size(n, 32), B, C_FS);
    B->nreg[C_FSSEL] = B->nreg[C_FS];
    B->rsz[C_FSSEL] = B->rsz[C_FS];
    replicate(&B->h768, n * 96, B, C_H768);
    replicate(&B->h128, n * 16, B, C_H128);
    replicate(&B->bin, n * 104, B, C_BIN);
    replicate(&B->pq8, n * 16, B, C_LUT8);
    replicate(&B->fs8_16, vqs_pq8fs_packed_size(n, 16), B, C_FS8_16);
    replicate(&B->fs8_32, vqs_pq8fs_packed_size(n, 32), B, C_FS8_32);
    replicate(&B->sq8, n * 128, B, C_SQ);

    printf("# bench_kernels: %zu codes, one thread, best of %d passes; chunks of %d codes;\n"
           "# each pass reads another copy of the codes (copies span %zu MiB, 8x the L3);\n"
           "# in cache: the first chunk scanned n / chunk times\n",
           n, REPS, CHUNK, SPAN >> 20);
    printf("# load average at start: %s\n", load0);
    printf("# CPU level %s, VPOPCNTDQ %s, VBMI %s\n", vqs_simd_name(vqs_simd_cpu()),
           vqs_simd_has_vpopcntdq() ? "yes" : "no", vqs_simd_has_vbmi() ? "yes" : "no");
    printf(
        "# memory bandwidth (streaming read of 1 GiB): 1 thread %.1f GB/s, 2 threads %.1f GB/s\n\n",
        bw1, bw2);
    printf("| kernel | bytes/code | level | Mcodes/s | GB/s | bandwidth now, GB/s | of it | "
           "Mcodes/s in cache |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    uint64_t sink = 0;
    const char *filter = argc > 2 ? argv[2] : "";
    for (int c = 0; c < NCASES; c++) {
        if (!strstr(case_name[c], filter))
            continue;
        for (vqs_simd L = VQS_SIMD_SCALAR; L <= VQS_SIMD_AVX512; L++) {
            const vqs_kernels *K = vqs_kernels_for(L);
            if (!K)
                continue;
            double best[2] = {1e30, 1e30};
            for (int cached = 0; cached < 2; cached++)
                for (int rep = 0; rep < REPS; rep++) {
                    double t0 = now();
                    sink += run_case(K, c, B, cached, (size_t)rep);
                    double t = now() - t0;
                    best[cached] = t < best[cached] ? t : best[cached];
                }
            double bwnow = bandwidth(big, SPAN, 1);
            double cps = (double)n / best[0], gbs = cps * (double)case_bytes[c] / 1e9;
            printf("| %s | %zu | %s | %.0f | %.1f | %.1f | %.0f%% | %.0f |\n", case_name[c],
                   case_bytes[c], K->name, cps / 1e6, gbs, bwnow, 100 * gbs / bwnow,
                   (double)n / best[1] / 1e6);
            fflush(stdout);
        }
    }
    if (sink == 42)
        printf(" \n");
    loadavg(load1);
    printf("\n# load average at end: %s (other processes share the 2 cores: figures vary)\n",
           load1);
    free(big);
    free(B->fs_packed);
    free(B->h768);
    free(B->h128);
    free(B->bin);
    free(B->bin_tab);
    free(B->pq8);
    free(B->lut8);
    free(B->sq8);
    free(B->fs8_16);
    free(B->fs8_32);
    free(B);
    return 0;
}
