/*
 * ivf_pack.c: a list's codes in the fast-scan layout (ivf.c, "One code
 * path"): blocks of fs_bs vectors (32 for PQ Mx4, 64 for PQ Mx8) packed
 * by vqs_pq4fs_pack / vqs_pq8fs_pack (index/kernels), fs_block bytes each.
 *
 * Design decisions:
 * - Only the packed blocks are kept: a write unpacks the blocks it touches
 *   (fs_get), puts the new rows in and packs them again, so adding or
 *   removing a row costs one block (fs_bs codes), and a list costs its
 *   codes' bytes, not twice that.
 * - Padding rows of the last block read as code 0: list_reserve (ivf_add.c)
 *   zeroes grown blocks, a write zeroes a block before packing it, removal
 *   writes code 0 over the freed row.
 */
#include "ivf_internal.h"

#include <string.h>

size_t vqs_ivf_list_code_bytes(const vqs_index *ix, size_t rows)
{
    if (!ix->fastscan)
        return rows * ix->cs;
    return ix->fastscan == VQS_IVF_FS_PQ4 ? vqs_pq4fs_packed_size(rows, ix->fs_M)
                                          : vqs_pq8fs_packed_size(rows, ix->fs_M);
}

void vqs_ivf_fs_get(const vqs_index *ix, const uint8_t *packed, size_t i, uint8_t *code)
{
    if (ix->fastscan == VQS_IVF_FS_PQ4)
        vqs_pq4fs_get(packed, ix->fs_M, i, code);
    else
        vqs_pq8fs_get(packed, ix->fs_M, i, code);
}

/* Fast scan: writes rows [pos, pos + n) of the list from plain codes (cs
 * bytes each), re-packing the blocks they touch. */
void vqs_ivf_fs_write(const vqs_index *ix, ivlist *L, size_t pos, size_t n, const uint8_t *codes,
                      uint8_t *tmp /* fs_bs * cs */)
{
    size_t cs = ix->cs, end = pos + n, rows = L->n > end ? L->n : end, bs = ix->fs_bs;
    for (size_t b = pos / bs; b * bs < end; b++) {
        size_t r0 = b * bs, nr = rows - r0 < bs ? rows - r0 : bs;
        for (size_t r = 0; r < nr; r++) {
            size_t i = r0 + r;
            if (i >= pos && i < end)
                memcpy(tmp + r * cs, codes + (i - pos) * cs, cs);
            else
                vqs_ivf_fs_get(ix, L->codes, i, tmp + r * cs);
        }
        memset(L->codes + b * ix->fs_block, 0, ix->fs_block);
        if (ix->fastscan == VQS_IVF_FS_PQ4)
            vqs_pq4fs_pack(tmp, cs, nr, ix->fs_M, L->codes + b * ix->fs_block);
        else
            vqs_pq8fs_pack(tmp, cs, nr, ix->fs_M, L->codes + b * ix->fs_block);
    }
}
