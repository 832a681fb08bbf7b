/*
 * wq_gguf_dispatch.c: the GGUF row-encoder table of the run-time SIMD level
 * (vqs_simd_level: CPU check and the VQS_SIMD override), looked up once, as
 * km_dispatch.c does.
 */
#include "wq_gguf_kernels.h"

const wq_gguf_kernels *wq_gguf_kernels_for(vqs_simd level)
{
#ifdef VQS_WQ_GGUF_X86
    if (level == VQS_SIMD_AVX512)
        return &wq_gguf_kernels_avx512;
    if (level == VQS_SIMD_AVX2)
        return &wq_gguf_kernels_avx2;
#endif
    (void)level;
    return &wq_gguf_kernels_ref;
}

const wq_gguf_kernels *wq_gguf_kernels_active(void)
{
    /* racing first calls store the same pointer */
    static const wq_gguf_kernels *active;
    const wq_gguf_kernels *k = __atomic_load_n(&active, __ATOMIC_ACQUIRE);
    if (!k) {
        k = wq_gguf_kernels_for(vqs_simd_level());
        __atomic_store_n(&active, k, __ATOMIC_RELEASE);
    }
    return k;
}
