/*
 * vqs_store.h: vqs storage: vector files (below), collections in LMDB
 * (vqs_store_db.h) and the append-only vector file (vqs_store_vec.h).
 *
 * Readers: .fvecs, .ivecs, .bvecs (TEXMEX: int32 d before every row), .npy
 * (format versions 1.0, 2.0, 3.0; '<f4' or '<f2'; C order; 2-D) and raw
 * little-endian float32 with a given dimension. Files are memory-mapped and
 * validated once, completely, at open: after a successful open every row has
 * the same dimension and (unless allowed) every value is finite, so readers of
 * the handle never check again. Writers: fvecs, ivecs, npy (v1.0).
 *
 * Every failure names the file and what was wrong in vqs_errdetail().
 */
#ifndef VQS_STORE_H
#define VQS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "vqs_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum vqs_vecfmt {
    VQS_FMT_AUTO = 0, /* from the content (npy magic) or the file name */
    VQS_FMT_FVECS,
    VQS_FMT_IVECS,
    VQS_FMT_BVECS,
    VQS_FMT_NPY,
    VQS_FMT_RAW_F32, /* headerless little-endian float32, needs raw_dim */
} vqs_vecfmt;

typedef enum vqs_dtype {
    VQS_DT_F32 = 1,
    VQS_DT_F16,
    VQS_DT_I32,
    VQS_DT_U8,
} vqs_dtype;

/* Largest dimension accepted by default: anything above is far more likely a
 * corrupt header than a real embedding. */
#define VQS_MAX_DIM_DEFAULT 65536

typedef struct vqs_vecfile_opts {
    vqs_vecfmt format;   /* 0: auto */
    size_t raw_dim;      /* required for VQS_FMT_RAW_F32 */
    size_t max_dim;      /* 0: VQS_MAX_DIM_DEFAULT */
    int allow_nonfinite; /* 0: NaN/Inf is VQS_ENONFINITE (float files) */
} vqs_vecfile_opts;

typedef struct vqs_vecfile vqs_vecfile;

/* Opens and validates a vector file. path: borrowed. o: NULL or zeroed for
 * defaults. On success *out owns the mapping; free it with
 * vqs_vecfile_close(). Errors: -errno (open/mmap), VQS_EFORMAT, VQS_EEMPTY,
 * VQS_ETRUNC, VQS_EDIMMISMATCH, VQS_ESHAPE, VQS_EBADDIM, VQS_EORDER,
 * VQS_EDTYPE, VQS_ENONFINITE, VQS_EHEADER, VQS_EINVAL, VQS_ENOMEM. */
int vqs_vecfile_open(const char *path, const vqs_vecfile_opts *o, vqs_vecfile **out);

/* Same over a caller's buffer (len bytes), which must stay valid and
 * unchanged until vqs_vecfile_close(). name is used in messages. The format
 * must be given or be recognisable from name or content. Used by the fuzzers. */
int vqs_vecfile_open_mem(const void *buf, size_t len, const char *name,
                         const vqs_vecfile_opts *o, vqs_vecfile **out);

void vqs_vecfile_close(vqs_vecfile *vf);

size_t vqs_vecfile_n(const vqs_vecfile *vf);
size_t vqs_vecfile_d(const vqs_vecfile *vf);
vqs_dtype vqs_vecfile_dtype(const vqs_vecfile *vf);
vqs_vecfmt vqs_vecfile_format(const vqs_vecfile *vf);
const char *vqs_vecfile_name(const vqs_vecfile *vf);

/* Zero-copy view of float32 rows: row i starts at (*x + i * *ld), d values.
 * Valid until vqs_vecfile_close(). VQS_EDTYPE if the file is not float32. */
int vqs_vecfile_f32_view(const vqs_vecfile *vf, const float **x, size_t *ld);

/* Zero-copy view of int32 rows (ivecs). VQS_EDTYPE otherwise. */
int vqs_vecfile_i32_view(const vqs_vecfile *vf, const int32_t **x, size_t *ld);

/* Converts rows [i0, i0 + n) to float32 into out (n * d floats), whatever
 * the element type. VQS_ERANGE if the rows are out of bounds. */
int vqs_vecfile_read_f32(const vqs_vecfile *vf, size_t i0, size_t n, float *out);

/* Converts rows [i0, i0 + n) of an integer file (ivecs) to int64. */
int vqs_vecfile_read_i64(const vqs_vecfile *vf, size_t i0, size_t n, int64_t *out);

/* Convenience: opens, converts every row to float32 into a new malloc'd
 * buffer (*x: n * d floats, caller frees with free()), closes. */
int vqs_vecfile_load_f32(const char *path, const vqs_vecfile_opts *o, float **x,
                         size_t *n, size_t *d);

/* Writers. The file is written beside path under a temporary name, flushed
 * and renamed over path, so a failure leaves any existing file untouched.
 * x: n * d values, row-major. Errors: -errno, VQS_EINVAL. */
int vqs_write_fvecs(const char *path, size_t n, size_t d, const float *x);
int vqs_write_ivecs(const char *path, size_t n, size_t d, const int32_t *x);
/* dtype: VQS_DT_F32 or VQS_DT_F16 (x then holds uint16_t binary16 values).
 * Writes npy format 1.0 ('<f4' / '<f2', C order, shape (n, d)). */
int vqs_write_npy(const char *path, size_t n, size_t d, vqs_dtype dtype, const void *x);

#ifdef __cplusplus
}
#endif

#include "vqs_store_db.h"  /* collections in LMDB */
#include "vqs_store_vec.h" /* the vector file read for re-scoring */
#endif
