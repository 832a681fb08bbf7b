/*
 * avx512.c: the AVX512 scan kernels (vqs_kernels.h). Compiled with this level's
 * -m flags only (CMakeLists.txt); reached only through the dispatch table
 * after a run-time CPU check. Anything not accelerated here falls back to
 * the reference in ref.c.
 */
#include "kernels_internal.h"

#include <immintrin.h>
#include <string.h>

/* ==== look-up tables ===================================================== */

/* ==== scalar codes ======================================================= */

/* ==== PQ 4-bit fast scan ================================================= */

/* ==== binary ============================================================= */

/* ==== selection ========================================================== */

const vqs_kernels vqs_kernels_avx512 = {
    .level = VQS_SIMD_AVX512,
    .name = "avx512",
    .lut8 = vqs_ref_lut8,
    .lut4 = vqs_ref_lut4,
    .sq_l2 = vqs_ref_sq_l2,
    .sq_ip = vqs_ref_sq_ip,
    .pq4fs_scan = vqs_ref_pq4fs_scan,
    .hamming = vqs_ref_hamming,
    .bin_est = vqs_ref_bin_est,
    .select_lt = vqs_ref_select_lt,
    .select_le_u16 = vqs_ref_select_le_u16,
};
