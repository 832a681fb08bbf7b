/*
 * dispatch.c: the kernel table of the run-time SIMD level (vqs_simd_level,
 * common/vqs_simd.c, which holds the CPU detection).
 *
 * The CPU detection and the VQS_SIMD override live in common/ so that the
 * quantizer core (k-means) follows the same level without depending on the
 * index.
 */
#define _GNU_SOURCE
#include "kernels_internal.h"


const vqs_kernels *vqs_kernels_for(vqs_simd level)
{
    if (level == VQS_SIMD_SCALAR)
        return &vqs_kernels_ref;
#if defined(__x86_64__)
    if (level > vqs_simd_cpu())
        return NULL;
    if (level == VQS_SIMD_AVX2)
        return &vqs_kernels_avx2;
    if (level == VQS_SIMD_AVX512)
        return &vqs_kernels_avx512;
#endif
    return NULL;
}

const vqs_kernels *vqs_kernels_active(void)
{
    /* racing first calls store the same pointer */
    static const vqs_kernels *active;
    const vqs_kernels *k = __atomic_load_n(&active, __ATOMIC_ACQUIRE);
    if (!k) {
        k = vqs_kernels_for(vqs_simd_level());
        if (!k)
            k = &vqs_kernels_ref;
        __atomic_store_n(&active, k, __ATOMIC_RELEASE);
    }
    return k;
}
