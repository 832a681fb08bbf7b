/*
 * bench_kernels_a: throughput of the look-up-table, scalar-code and
 * selection scan kernels (vqs_kernels.h) at every SIMD level this CPU runs,
 * one thread, plus the gather-based alternatives that avx2.c / avx512.c
 * rejected (bench-only code, compiled here with target attributes).
 *
 *   bench_kernels_a [N [REPS]]      (default N = 1,000,000 codes, REPS = 7)
 *
 * Time is the calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID), best of
 * REPS runs: the project machine is shared, and wall time would count the
 * time other processes hold the core. Figures are codes per CPU second
 * ("per core"), for codes streamed from memory (N rows of stride bytes, far
 * larger than the caches for the default N). Each kernel's output is checked
 * against the scalar level (largest difference relative to the largest
 * score printed) so that a broken kernel cannot post a good time. A small
 * N (e.g. 6000 with REPS 300) measures the kernels on codes in cache.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "vqs_codebook.h"
#include "vqs_common.h"
#include "vqs_kernels.h"

static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "bench_kernels_a: out of memory\n");
        exit(1);
    }
    return p;
}

typedef void (*lut_fn)(const float *lut, size_t m, float bias, const uint8_t *codes,
                       size_t stride, size_t n, float *out);

/* ---- the rejected alternatives (bench-only) ---------------------------------- */
#if defined(__x86_64__)

/* lut8, lanes = 16 rows: code bytes gathered as dwords, 4 table gathers each */
__attribute__((target("avx512f"))) static void lut8_gather_rows512(const float *lut, size_t m,
                                                                    float bias,
                                                                    const uint8_t *codes,
                                                                    size_t stride, size_t n,
                                                                    float *out)
{
    const __m512i ofs = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32((int)stride));
    const __m512i ff = _mm512_set1_epi32(255);
    size_t i = 0;
    for (; i + 16 <= n && m % 4 == 0; i += 16) {
        const uint8_t *b = codes + i * stride;
        __m512 s0 = _mm512_set1_ps(bias), s1 = _mm512_setzero_ps();
        for (size_t j = 0; j < m; j += 4) {
            __m512i w = _mm512_i32gather_epi32(ofs, b + j, 1);
            const float *l = lut + j * 256;
            s0 = _mm512_add_ps(s0, _mm512_i32gather_ps(_mm512_and_si512(w, ff), l, 4));
            s1 = _mm512_add_ps(
                s1, _mm512_i32gather_ps(_mm512_and_si512(_mm512_srli_epi32(w, 8), ff), l + 256, 4));
            s0 = _mm512_add_ps(
                s0, _mm512_i32gather_ps(_mm512_and_si512(_mm512_srli_epi32(w, 16), ff), l + 512, 4));
            s1 = _mm512_add_ps(s1, _mm512_i32gather_ps(_mm512_srli_epi32(w, 24), l + 768, 4));
        }
        _mm512_storeu_ps(out + i, _mm512_add_ps(s0, s1));
    }
    vqs_kernels_for(VQS_SIMD_SCALAR)->lut8(lut, m, bias, codes + i * stride, stride, n - i, out + i);
}

/* lut8, lanes = 16 sub-quantizers of one row, rows summed by a transposing tree */
__attribute__((target("avx512f"))) static void lut8_gather_subq512(const float *lut, size_t m,
                                                                    float bias,
                                                                    const uint8_t *codes,
                                                                    size_t stride, size_t n,
                                                                    float *out)
{
    const __m512i off = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32(256));
    size_t i = 0;
    for (; i + 16 <= n && m % 16 == 0; i += 16) {
        __m512 a[16], l1[8], l2[4], l3[2];
        for (int r = 0; r < 16; r++) {
            const uint8_t *c = codes + (i + (size_t)r) * stride;
            __m512 s = _mm512_setzero_ps();
            for (size_t j = 0; j < m; j += 16) {
                __m512i ix = _mm512_add_epi32(
                    _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(c + j))), off);
                s = _mm512_add_ps(s, _mm512_i32gather_ps(ix, lut + j * 256, 4));
            }
            a[r] = s;
        }
        for (int k = 0; k < 8; k++)
            l1[k] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * k], a[2 * k + 1]),
                                  _mm512_unpackhi_ps(a[2 * k], a[2 * k + 1]));
        for (int k = 0; k < 4; k++) {
            __m512d x = _mm512_castps_pd(l1[2 * k]), y = _mm512_castps_pd(l1[2 * k + 1]);
            l2[k] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                                  _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
        }
        for (int k = 0; k < 2; k++)
            l3[k] = _mm512_add_ps(_mm512_shuffle_f32x4(l2[2 * k], l2[2 * k + 1], 0x88),
                                  _mm512_shuffle_f32x4(l2[2 * k], l2[2 * k + 1], 0xdd));
        __m512 s = _mm512_add_ps(_mm512_shuffle_f32x4(l3[0], l3[1], 0x88),
                                 _mm512_shuffle_f32x4(l3[0], l3[1], 0xdd));
        _mm512_storeu_ps(out + i, _mm512_add_ps(s, _mm512_set1_ps(bias)));
    }
    vqs_kernels_for(VQS_SIMD_SCALAR)->lut8(lut, m, bias, codes + i * stride, stride, n - i, out + i);
}

/* lut8 AVX2, lanes = 8 sub-quantizers of one row, 8 rows summed by a tree */
__attribute__((target("avx2"))) static void lut8_gather_subq256(const float *lut, size_t m,
                                                                 float bias, const uint8_t *codes,
                                                                 size_t stride, size_t n,
                                                                 float *out)
{
    const __m256i off = _mm256_setr_epi32(0, 256, 512, 768, 1024, 1280, 1536, 1792);
    size_t i = 0;
    for (; i + 8 <= n && m % 8 == 0; i += 8) {
        __m256 a[8], l1[4], l2[2];
        for (int r = 0; r < 8; r++) {
            const uint8_t *c = codes + (i + (size_t)r) * stride;
            __m256 s = _mm256_setzero_ps();
            for (size_t j = 0; j < m; j += 8) {
                __m256i ix = _mm256_add_epi32(
                    _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(c + j))), off);
                s = _mm256_add_ps(s, _mm256_i32gather_ps(lut + j * 256, ix, 4));
            }
            a[r] = s;
        }
        for (int k = 0; k < 4; k++)
            l1[k] = _mm256_add_ps(_mm256_unpacklo_ps(a[2 * k], a[2 * k + 1]),
                                  _mm256_unpackhi_ps(a[2 * k], a[2 * k + 1]));
        for (int k = 0; k < 2; k++) {
            __m256d x = _mm256_castps_pd(l1[2 * k]), y = _mm256_castps_pd(l1[2 * k + 1]);
            l2[k] = _mm256_add_ps(_mm256_castpd_ps(_mm256_unpacklo_pd(x, y)),
                                  _mm256_castpd_ps(_mm256_unpackhi_pd(x, y)));
        }
        __m256 s = _mm256_add_ps(_mm256_permute2f128_ps(l2[0], l2[1], 0x20),
                                 _mm256_permute2f128_ps(l2[0], l2[1], 0x31));
        _mm256_storeu_ps(out + i, _mm256_add_ps(s, _mm256_set1_ps(bias)));
    }
    vqs_kernels_for(VQS_SIMD_SCALAR)->lut8(lut, m, bias, codes + i * stride, stride, n - i, out + i);
}

/* lut4, 16 rows: code dwords gathered instead of loaded and transposed */
__attribute__((target("avx512f"))) static void lut4_gather512(const float *lut, size_t m,
                                                               float bias, const uint8_t *codes,
                                                               size_t stride, size_t n, float *out)
{
    const __m512i ofs = _mm512_mullo_epi32(
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
        _mm512_set1_epi32((int)stride));
    size_t i = 0;
    for (; i + 16 <= n && m % 8 == 0; i += 16) {
        const uint8_t *b = codes + i * stride;
        __m512 s0 = _mm512_set1_ps(bias), s1 = _mm512_setzero_ps();
        for (size_t j = 0; j < m; j += 8) {
            __m512i w = _mm512_i32gather_epi32(ofs, b + j / 2, 1);
            const float *l = lut + j * 16;
            for (int s = 0; s < 8; s += 2) {
                s0 = _mm512_add_ps(s0, _mm512_permutexvar_ps(_mm512_srli_epi32(w, 4 * s),
                                                             _mm512_loadu_ps(l + 16 * s)));
                s1 = _mm512_add_ps(s1, _mm512_permutexvar_ps(_mm512_srli_epi32(w, 4 * s + 4),
                                                             _mm512_loadu_ps(l + 16 * s + 16)));
            }
        }
        _mm512_storeu_ps(out + i, _mm512_add_ps(s0, s1));
    }
    vqs_kernels_for(VQS_SIMD_SCALAR)->lut4(lut, m, bias, codes + i * stride, stride, n - i, out + i);
}
#endif

/* ---- measuring ------------------------------------------------------------------ */

static int reps = 7;

/* largest |a - b| / (largest |b| + 1): relative to the scale of the scores,
 * not to each score, which may be a sum that cancels */
static double reldiff(const float *a, const float *b, size_t n)
{
    double r = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (!(e <= r))
            r = e;
        if (fabs((double)b[i]) > s)
            s = fabs((double)b[i]);
    }
    return r / (s + 1);
}

static void report(const char *kernel, const char *level, size_t n, double best, double ref_best,
                   double diff)
{
    printf("%-26s %-22s %9.1f Mcodes/s  %5.2fx scalar  (max rel diff %.1e)\n", kernel, level,
           (double)n / best / 1e6, ref_best / best, diff);
    fflush(stdout);
}

static void bench_lut(const char *name, int four, size_t m, size_t n)
{
    size_t stride = four ? (m + 1) / 2 : m, tab = m * (four ? 16 : 256);
    uint8_t *codes = xmalloc(n * stride);
    float *lut = xmalloc(sizeof(float) * tab), *want = xmalloc(sizeof(float) * n),
          *out = xmalloc(sizeof(float) * n);
    vqs_rng r;
    vqs_rng_seed(&r, 7);
    for (size_t i = 0; i < n * stride; i++)
        codes[i] = (uint8_t)vqs_rng_next(&r);
    for (size_t i = 0; i < tab; i++)
        lut[i] = (float)vqs_rng_uniform(&r);

    struct {
        const char *name;
        lut_fn f;
    } v[8];
    int nv = 0;
    for (int L = VQS_SIMD_SCALAR; L <= VQS_SIMD_AVX512; L++) {
        const vqs_kernels *K = vqs_kernels_for((vqs_simd)L);
        if (K) {
            v[nv].name = K->name;
            v[nv++].f = four ? K->lut4 : K->lut8;
        }
    }
#if defined(__x86_64__)
    vqs_simd cpu = vqs_simd_cpu();
    if (!four && cpu >= VQS_SIMD_AVX2 && m % 8 == 0) {
        v[nv].name = "avx2 gather, lanes=j";
        v[nv++].f = lut8_gather_subq256;
    }
    if (!four && cpu >= VQS_SIMD_AVX512 && m % 4 == 0) {
        v[nv].name = "avx512 gather, lanes=row";
        v[nv++].f = lut8_gather_rows512;
    }
    if (!four && cpu >= VQS_SIMD_AVX512 && m % 16 == 0) {
        v[nv].name = "avx512 gather, lanes=j";
        v[nv++].f = lut8_gather_subq512;
    }
    if (four && cpu >= VQS_SIMD_AVX512 && m % 8 == 0) {
        v[nv].name = "avx512 gathered codes";
        v[nv++].f = lut4_gather512;
    }
#endif
    v[0].f(lut, m, 0.5f, codes, stride, n, want);
    double best[8];
    for (int k = 0; k < nv; k++)
        best[k] = INFINITY;
    for (int rep = 0; rep < reps; rep++)
        for (int k = 0; k < nv; k++) { /* interleaved: slow phases of the machine hit all */
            double t = cpu_now();
            v[k].f(lut, m, 0.5f, codes, stride, n, out);
            t = cpu_now() - t;
            if (t < best[k])
                best[k] = t;
        }
    char label[64];
    snprintf(label, sizeof label, "%s m=%zu", name, m);
    for (int k = 0; k < nv; k++) {
        v[k].f(lut, m, 0.5f, codes, stride, n, out);
        report(label, v[k].name, n, best[k], best[0], reldiff(out, want, n));
    }
    free(codes);
    free(lut);
    free(want);
    free(out);
}

static const char *sq_name(vqs_elem t)
{
    static const char *nm[] = {"U8", "S8", "U4", "F16", "BF16", "E4M3", "E5M2", "F32"};
    return nm[t];
}

static void bench_sq(vqs_elem t, int l2, size_t d, size_t n)
{
    size_t cb = t == VQS_ELEM_U4 ? (d + 1) / 2 : (t == VQS_ELEM_F16 || t == VQS_ELEM_BF16) ? 2 * d
                : t == VQS_ELEM_F32 ? 4 * d : d;
    uint8_t *codes = xmalloc(n * cb);
    float *q = xmalloc(sizeof(float) * d), *w = xmalloc(sizeof(float) * d),
          *want = xmalloc(sizeof(float) * n), *out = xmalloc(sizeof(float) * n);
    vqs_rng r;
    vqs_rng_seed(&r, 8);
    for (size_t j = 0; j < d; j++) {
        q[j] = (float)vqs_rng_normal(&r);
        w[j] = (float)(0.01 + 0.02 * vqs_rng_uniform(&r));
    }
    for (size_t i = 0; i < n * d; i++) { /* codes of N(0,1)-ish values (finite) */
        float x = (float)vqs_rng_normal(&r);
        uint8_t *row = codes + (i / d) * cb;
        size_t j = i % d;
        switch (t) {
        case VQS_ELEM_U8:
        case VQS_ELEM_S8:
            row[j] = (uint8_t)vqs_rng_next(&r);
            break;
        case VQS_ELEM_U4:
            row[j / 2] = (uint8_t)(j % 2 ? (row[j / 2] & 15) | (vqs_rng_next(&r) & 15) << 4
                                         : vqs_rng_next(&r) & 15);
            break;
        case VQS_ELEM_F16: {
            uint16_t h = vqs_f32_to_f16(x);
            memcpy(row + 2 * j, &h, 2);
            break;
        }
        case VQS_ELEM_BF16: {
            uint16_t h = vqs_f32_to_bf16(x);
            memcpy(row + 2 * j, &h, 2);
            break;
        }
        case VQS_ELEM_E4M3:
            row[j] = vqs_f32_to_e4m3(x, 1);
            break;
        case VQS_ELEM_E5M2:
            row[j] = vqs_f32_to_e5m2(x, 1);
            break;
        case VQS_ELEM_F32:
            memcpy(row + 4 * j, &x, 4);
            break;
        }
    }
    const vqs_kernels *K[3];
    int nk = 0;
    for (int L = VQS_SIMD_SCALAR; L <= VQS_SIMD_AVX512; L++)
        if ((K[nk] = vqs_kernels_for((vqs_simd)L)))
            nk++;
#define RUN(Kp, o)                                                                              \
    (l2 ? (Kp)->sq_l2(t, q, w, d, codes, cb, n, (o)) : (Kp)->sq_ip(t, q, 0.5f, d, codes, cb, n, (o)))
    RUN(K[0], want);
    double best[3] = {INFINITY, INFINITY, INFINITY};
    for (int rep = 0; rep < reps; rep++)
        for (int k = 0; k < nk; k++) {
            double t0 = cpu_now();
            RUN(K[k], out);
            t0 = cpu_now() - t0;
            if (t0 < best[k])
                best[k] = t0;
        }
    char label[64];
    snprintf(label, sizeof label, "%s %s d=%zu", l2 ? "sq_l2" : "sq_ip", sq_name(t), d);
    for (int k = 0; k < nk; k++) {
        RUN(K[k], out);
        report(label, K[k]->name, n, best[k], best[0], reldiff(out, want, n));
    }
#undef RUN
    free(codes);
    free(q);
    free(w);
    free(want);
    free(out);
}

static void bench_select(size_t n)
{
    float *x = xmalloc(sizeof(float) * n);
    uint16_t *u = xmalloc(sizeof(uint16_t) * n);
    uint32_t *idx = xmalloc(sizeof(uint32_t) * n);
    vqs_rng r;
    vqs_rng_seed(&r, 9);
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)vqs_rng_uniform(&r);
        u[i] = (uint16_t)vqs_rng_next(&r);
    }
    for (int sel = 0; sel < 2; sel++) { /* 1% and 50% selected */
        float thr = sel ? 0.5f : 0.01f;
        uint16_t uthr = sel ? 32767 : 655;
        const vqs_kernels *K[3];
        int nk = 0;
        for (int L = VQS_SIMD_SCALAR; L <= VQS_SIMD_AVX512; L++)
            if ((K[nk] = vqs_kernels_for((vqs_simd)L)))
                nk++;
        for (int which = 0; which < 2; which++) {
            double best[3] = {INFINITY, INFINITY, INFINITY};
            size_t cnt[3] = {0, 0, 0};
            for (int rep = 0; rep < reps; rep++)
                for (int k = 0; k < nk; k++) {
                    double t0 = cpu_now();
                    cnt[k] = which ? K[k]->select_le_u16(u, n, uthr, idx)
                                   : K[k]->select_lt(x, n, thr, idx);
                    t0 = cpu_now() - t0;
                    if (t0 < best[k])
                        best[k] = t0;
                }
            char label[64];
            snprintf(label, sizeof label, "%s %s", which ? "select_le_u16" : "select_lt",
                     sel ? "50%" : "1%");
            for (int k = 0; k < nk; k++)
                report(label, K[k]->name, n, best[k], best[0],
                       cnt[k] == cnt[0] ? 0.0 : 1.0);
        }
    }
    free(x);
    free(u);
    free(idx);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 1000000;
    if (argc > 2)
        reps = atoi(argv[2]);
    if (n == 0 || reps < 1) {
        fprintf(stderr, "usage: bench_kernels_a [N [REPS]]\n");
        return 2;
    }
    printf("bench_kernels_a: N=%zu, best of %d, thread CPU time; CPU level %s%s\n", n, reps,
           vqs_simd_name(vqs_simd_cpu()), vqs_simd_has_vpopcntdq() ? " (+vpopcntdq)" : "");
    bench_lut("lut8", 0, 16, n);
    bench_lut("lut8", 0, 32, n);
    bench_lut("lut4", 1, 16, n);
    bench_lut("lut4", 1, 32, n);
    bench_lut("lut4", 1, 64, n);
    const vqs_elem types[] = {VQS_ELEM_U8,   VQS_ELEM_S8,   VQS_ELEM_U4,  VQS_ELEM_F16,
                                 VQS_ELEM_BF16, VQS_ELEM_E4M3, VQS_ELEM_E5M2, VQS_ELEM_F32};
    for (int k = 0; k < 8; k++)
        bench_sq(types[k], 1, 128, n);
    bench_sq(VQS_ELEM_U8, 0, 128, n);
    bench_sq(VQS_ELEM_F16, 0, 128, n);
    bench_sq(VQS_ELEM_E4M3, 0, 128, n);
    bench_sq(VQS_ELEM_U8, 1, 16, n);
    bench_sq(VQS_ELEM_U8, 1, 100, n);
    bench_select(n);
    return 0;
}
