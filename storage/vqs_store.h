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
 * JSON Lines (.jsonl, .ndjson; storage/vecfile_jsonl.c): one object per
 * non-blank line, {"id": 7, "vector": [0.1, -2, ...], ...}. "embedding" is
 * accepted in place of "vector" (not both in one object); "id" is optional
 * but then on every line: an integer in [0, 2^63) or a UUID string, distinct
 * across the file. Every other field is the user's payload: the vector
 * reader does not interpret it and keeps it only when asked (keep_payload).
 * Numbers, integer or real, become float32; a value beyond float32's range
 * (one that would round to Inf, 1e999, an integer literal beyond 64 bits; tiny
 * values round to 0 or a subnormal as usual) is refused, as is
 * anything else malformed, with the line, the field and, for JSON syntax,
 * Jansson's column. JSONL has no random access, so the rows are parsed at
 * open into an n x d float32 matrix in memory (bounded by max_bytes); the
 * file itself is read through a mapping, one line's JSON tree at a time.
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
    VQS_FMT_JSONL,   /* JSON Lines, by name only (.jsonl, .ndjson): no sniffing */
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
    int allow_nonfinite; /* 0: NaN/Inf is VQS_ENONFINITE (float files; JSON has
                            neither, and JSONL refuses values beyond float32) */
    int keep_payload;    /* JSONL: keep every line's other fields as its payload
                            (vqs_vecfile_payload); 0: they are parsed and dropped */
    size_t max_bytes;    /* JSONL: most bytes the parsed file may take in memory
                            (n * d * 4 for the rows, 48 per row with ids, 8 per
                            row plus the texts with payloads); above it the open
                            fails with VQS_ENOMEM before allocating. 0: half the
                            physical memory */
} vqs_vecfile_opts;

typedef struct vqs_vecfile vqs_vecfile;

/* Opens and validates a vector file. path: borrowed. o: NULL or zeroed for
 * defaults. On success *out owns the mapping (for JSONL: the parsed rows; the
 * file is unmapped before returning); free it with vqs_vecfile_close().
 * Errors: -errno (open/mmap), VQS_EFORMAT, VQS_EEMPTY, VQS_ETRUNC,
 * VQS_EDIMMISMATCH, VQS_ESHAPE, VQS_EBADDIM, VQS_EORDER, VQS_EDTYPE,
 * VQS_ENONFINITE, VQS_EHEADER, VQS_EINVAL, VQS_ENOMEM; JSONL also VQS_ERANGE
 * (a number beyond float32, a negative or too large id) and VQS_EINVAL (an id
 * given twice). */
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

/* Per-row point ids of a JSONL file whose lines carry "id" (row i's id is
 * (*ids)[i]). *ids is NULL, and 0 is returned, when the file has no ids
 * (every other format: ids are then the row numbers, by convention). When
 * some ids are UUID strings, *ids is NULL and VQS_EDTYPE is returned: use
 * vqs_vecfile_pids. Valid until vqs_vecfile_close(). */
int vqs_vecfile_ids(const vqs_vecfile *vf, const int64_t **ids);

/* The same ids as n point ids (VQS_PID_U64 or VQS_PID_UUID, see
 * vqs_store_db.h), or NULL when the file has none. Valid until close. */
const struct vqs_pid *vqs_vecfile_pids(const vqs_vecfile *vf);

/* Row i's payload: the compact JSON text of its line's fields other than
 * "vector" / "embedding" and "id" (JSONL opened with keep_payload). NULL when
 * the line has no other field, the file was opened without keep_payload, or
 * it is not JSONL. i < n. Valid until vqs_vecfile_close(). */
const char *vqs_vecfile_payload(const vqs_vecfile *vf, size_t i);

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
#include "vqs_store_st.h"  /* safetensors checkpoints (vqs weights) */
#endif
