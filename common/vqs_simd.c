/*
 * vqs_simd.c: the run-time SIMD level shared by every kernel family
 * (index/kernels tables, codebooks/kernels).
 *
 * Design decisions:
 * - GCC's __builtin_cpu_supports (libgcc's cpuid + xgetbv check, so a level
 *   whose registers the OS does not save is not reported) plus cpuid leaf 1
 *   for F16C, which the builtin of GCC 12 cannot name. AVX2 level = AVX2 +
 *   FMA + F16C + POPCNT; AVX-512 level = F + BW + VL + DQ on top of it.
 *   VPOPCNTDQ and VBMI are optional inside the AVX-512 kernels (queried
 *   separately).
 * - The choice is made once (pthread_once) and is then a plain read. It
 *   lives in common/ because both the quantizer core and the index use it.
 *   Rejected: ifunc resolvers (glibc-specific, and a forced level through
 *   the environment would need getenv inside the resolver).
 */
#define _GNU_SOURCE
#include "vqs_common.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#if defined(__x86_64__)
#include <cpuid.h>

static int has_f16c(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    return (c >> 29) & 1;
}
#endif

vqs_simd vqs_simd_cpu(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("popcnt") && has_f16c();
    if (!avx2)
        return VQS_SIMD_SCALAR;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
        return VQS_SIMD_AVX512;
    return VQS_SIMD_AVX2;
#else
    return VQS_SIMD_SCALAR;
#endif
}

int vqs_simd_has_vpopcntdq(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    return vqs_simd_cpu() == VQS_SIMD_AVX512 && __builtin_cpu_supports("avx512vpopcntdq");
#else
    return 0;
#endif
}

int vqs_simd_has_vbmi(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    return vqs_simd_cpu() == VQS_SIMD_AVX512 && __builtin_cpu_supports("avx512vbmi");
#else
    return 0;
#endif
}

const char *vqs_simd_name(vqs_simd level)
{
    switch (level) {
    case VQS_SIMD_SCALAR:
        return "scalar";
    case VQS_SIMD_AVX2:
        return "avx2";
    case VQS_SIMD_AVX512:
        return "avx512";
    }
    return "?";
}

static vqs_simd chosen;
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;

static void choose(void)
{
    vqs_simd cpu = vqs_simd_cpu(), want = cpu;
    const char *e = getenv("VQS_SIMD");
    if (e && *e) {
        if (!strcasecmp(e, "scalar") || !strcasecmp(e, "ref") || !strcasecmp(e, "none"))
            want = VQS_SIMD_SCALAR;
        else if (!strcasecmp(e, "avx2"))
            want = VQS_SIMD_AVX2;
        else if (!strcasecmp(e, "avx512") || !strcasecmp(e, "avx-512"))
            want = VQS_SIMD_AVX512;
        else
            fprintf(stderr, "vqs: VQS_SIMD=%s is not one of scalar, avx2, avx512; using %s\n", e,
                    vqs_simd_name(cpu));
        if (want > cpu) {
            fprintf(stderr, "vqs: VQS_SIMD=%s: this CPU supports only %s; using it\n", e,
                    vqs_simd_name(cpu));
            want = cpu;
        }
    }
    chosen = want;
}

vqs_simd vqs_simd_level(void)
{
    pthread_once(&chosen_once, choose);
    return chosen;
}
