/*
 * wq_mx_dispatch.c: the MX encoder table of a SIMD level (wq_mx_kernels.h).
 * AVX-512 uses the AVX2 table: the encoder is bound by the per-block
 * reduction and the packing, which 16 lanes would not shorten much
 * (rejected for now: a third copy of the same arithmetic).
 */
#include "wq_mx_kernels.h"

const wq_mx_kernels *wq_mx_kernels_for(vqs_simd level)
{
#ifdef VQS_WQ_MX_X86
    if (level >= VQS_SIMD_AVX2)
        return &wq_mx_kernels_avx2;
#endif
    (void)level;
    return &wq_mx_kernels_ref;
}

const wq_mx_kernels *wq_mx_kernels_active(void)
{
    /* racing first calls store the same pointer */
    static const wq_mx_kernels *active;
    const wq_mx_kernels *k = __atomic_load_n(&active, __ATOMIC_ACQUIRE);
    if (!k) {
        k = wq_mx_kernels_for(vqs_simd_level());
        __atomic_store_n(&active, k, __ATOMIC_RELEASE);
    }
    return k;
}
