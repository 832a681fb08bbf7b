/*
 * km_dispatch.c: the k-means kernel table of the run-time SIMD level
 * (vqs_simd_level, common/vqs_simd.c: CPU detection and the VQS_SIMD
 * override, shared with index/kernels).
 *
 * Design decisions:
 * - The table is looked up once and cached: the level itself never changes
 *   after the first call (pthread_once in vqs_simd_level), so this is the
 *   same choice the kernels made per call before, without the call.
 *   vqs_simd_level never returns a level above the CPU's, so no CPU check
 *   is repeated here.
 */
#include "km_kernels.h"

static const vqs_km_kernels *km_kernels_for(vqs_simd level)
{
#ifdef VQS_KM_X86
    if (level == VQS_SIMD_AVX512)
        return &vqs_km_kernels_avx512;
    if (level == VQS_SIMD_AVX2)
        return &vqs_km_kernels_avx2;
#endif
    (void)level;
    return &vqs_km_kernels_ref;
}

const vqs_km_kernels *vqs_km_kernels_active(void)
{
    /* racing first calls store the same pointer */
    static const vqs_km_kernels *active;
    const vqs_km_kernels *k = __atomic_load_n(&active, __ATOMIC_ACQUIRE);
    if (!k) {
        k = km_kernels_for(vqs_simd_level());
        __atomic_store_n(&active, k, __ATOMIC_RELEASE);
    }
    return k;
}
