/*
 * vqs_store_st.h: safetensors files (storage/safetensors.c): a memory-mapped
 * reader and a writer, for model checkpoints (`vqs weights`).
 *
 * Format (huggingface/safetensors): an unsigned little-endian 64-bit header
 * length N, then N bytes of UTF-8 JSON, then the data buffer. The JSON object
 * maps each tensor name to {"dtype": "F32", "shape": [r, c], "data_offsets":
 * [begin, end]} (offsets relative to the data buffer, end exclusive), plus an
 * optional "__metadata__" object of string to string. Tensors are
 * little-endian, C order.
 *
 * The reader validates everything at open, so a successful open means every
 * tensor's bytes lie inside the file, the tensors tile the data buffer (no
 * overlap, no hole, nothing after the last one), every shape's byte size
 * equals its offsets' span and every dtype is known. Refused, each with a
 * message naming the file, the tensor and the field ("m.safetensors: tensor
 * 'layers.0.wq.weight': data_offsets [0, 96]: 96 bytes, shape [4, 8] of F32
 * needs 128"):
 *   - a file shorter than the 8-byte length, a header length past the end of
 *     the file (VQS_ETRUNC); a header length above 100 MB or below 2, a
 *     header that does not start with '{' (the format says it MUST),
 *     malformed JSON (with Jansson's line and column), a tensor entry that is
 *     not an object or lacks / mistypes a field or has an unknown one, a
 *     shape dimension that is not an integer, data_offsets that are not two
 *     non-negative integers (VQS_EHEADER); trailing spaces are allowed;
 *   - an unknown dtype, including the reference's F4, F6_*, F8_E8M0, C64
 *     and the FNUZ types, which vqs does not read (VQS_EDTYPE);
 *   - offsets with begin after end, past the data buffer, overlapping another
 *     tensor's, leaving a hole before a tensor or trailing bytes after the
 *     last (VQS_ECORRUPT): the reference implementation's rule
 *     (huggingface/safetensors refuses these as InvalidOffset and
 *     MetadataIncompleteBuffer: "the byte buffer needs to be entirely indexed
 *     and cannot contain holes"); empty tensors (a zero dimension, no bytes)
 *     are legal anywhere in the tiling;
 *   - a shape whose byte size disagrees with its offsets, a negative
 *     dimension, a byte size beyond 64 bits, more than VQS_ST_MAX_NDIM
 *     dimensions (VQS_ESHAPE);
 *   - a duplicate tensor name (VQS_EHEADER, from Jansson's duplicate-key
 *     check, naming the key);
 *   - __metadata__ that is not an object of strings (VQS_EHEADER).
 * NaN and Inf are checked when a tensor is read as float32
 * (vqs_st_read_f32: VQS_ENONFINITE naming the tensor and the flat index),
 * since a checkpoint may legitimately hold integer tensors.
 *
 * Design decisions: the header is parsed with Jansson (already a
 * dependency) rather than a hand-written JSON scanner, and the data stays
 * mapped (a 70B checkpoint is larger than RAM: tensors are converted one at
 * a time). Rejected: reading the data buffer into memory at open.
 */
#ifndef VQS_STORE_ST_H
#define VQS_STORE_ST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VQS_ST_MAX_NDIM 8
#define VQS_ST_MAX_HEADER (100u << 20) /* bytes of JSON header accepted */

/* Element types. Readable as float32 (vqs_st_read_f32): F32, F16, BF16,
 * F8_E4M3 (E4M3FN), F8_E5M2, F64 and the integer types. The writer takes any. */
typedef enum vqs_st_dtype {
    VQS_ST_BOOL = 0,
    VQS_ST_U8,
    VQS_ST_I8,
    VQS_ST_I16,
    VQS_ST_U16,
    VQS_ST_I32,
    VQS_ST_U32,
    VQS_ST_I64,
    VQS_ST_U64,
    VQS_ST_F16,
    VQS_ST_BF16,
    VQS_ST_F32,
    VQS_ST_F64,
    VQS_ST_F8_E4M3,
    VQS_ST_F8_E5M2,
} vqs_st_dtype;

/* "F32" <-> VQS_ST_F32 (the names safetensors writes). parse returns
 * VQS_EDTYPE for an unknown name. */
const char *vqs_st_dtype_name(vqs_st_dtype t);
int vqs_st_dtype_parse(const char *s, vqs_st_dtype *out);
size_t vqs_st_dtype_size(vqs_st_dtype t); /* bytes per element */

/* One tensor of an open file. Pointers stay valid until vqs_st_close. */
typedef struct vqs_st_tensor {
    const char *name;
    vqs_st_dtype dtype;
    int ndim;                       /* 0 (a scalar) .. VQS_ST_MAX_NDIM */
    uint64_t shape[VQS_ST_MAX_NDIM];
    uint64_t numel;                 /* product of shape (1 for a scalar) */
    const void *data;               /* into the mapping; not aligned in general */
    uint64_t nbytes;
} vqs_st_tensor;

typedef struct vqs_st_file vqs_st_file;

/* Opens and validates path (see above). Tensors are listed in the order of
 * their data offsets (the order in which they lie in the file; ties, which
 * only empty tensors can make, by name). Errors: -errno (open, mmap),
 * VQS_EINVAL (not a regular file), VQS_ENOMEM and the refusals above. */
int vqs_st_open(const char *path, vqs_st_file **out);
/* The same over a buffer the caller keeps alive until close (the fuzz
 * target; name is used in messages). */
int vqs_st_open_mem(const void *buf, size_t len, const char *name, vqs_st_file **out);
void vqs_st_close(vqs_st_file *f);

size_t vqs_st_count(const vqs_st_file *f);
const vqs_st_tensor *vqs_st_tensor_at(const vqs_st_file *f, size_t i);
const vqs_st_tensor *vqs_st_find(const vqs_st_file *f, const char *name); /* NULL if absent */
const char *vqs_st_path(const vqs_st_file *f);

/* __metadata__: number of entries, and entry i's key and value; a key's
 * value or NULL. */
size_t vqs_st_meta_count(const vqs_st_file *f);
void vqs_st_meta_at(const vqs_st_file *f, size_t i, const char **key, const char **value);
const char *vqs_st_meta_get(const vqs_st_file *f, const char *key);

/* Converts tensor t (of f) to float32 into out (t->numel floats; nothing for
 * an empty tensor). Exact for every F16, BF16, F8 and F32 value and for
 * integers up to 2^24; F64 and larger integers round to nearest. Refuses
 * NaN and Inf with VQS_ENONFINITE ("m.safetensors: tensor 'x': element 17
 * (row 0, column 17) is NaN"; 3-D and up: "(index [i, j, k])"), and a finite
 * F64 beyond float32's range with VQS_ERANGE, unless allow_nonfinite (then
 * they come out as NaN / +-Inf). VQS_EDTYPE for BOOL. out may hold partial
 * results after a failure. Thread-safe (reads only). */
int vqs_st_read_f32(const vqs_st_file *f, const vqs_st_tensor *t, float *out, int allow_nonfinite);

/* ---- writer ----------------------------------------------------------- */

/* Builds a file in memory of tensors added in order, then writes it to
 * path through a temporary file and a rename (a crash leaves the old file
 * or the new one, never a torn one). Data are copied at add time. */
typedef struct vqs_st_writer vqs_st_writer;
int vqs_st_writer_new(vqs_st_writer **out);
void vqs_st_writer_free(vqs_st_writer *w);
/* Adds a tensor (data: nbytes, copied). VQS_EINVAL for a duplicate, empty
 * or non-UTF-8 name, "__metadata__", an unknown dtype, a bad shape (ndim
 * outside 0..VQS_ST_MAX_NDIM, a dimension above INT64_MAX, a byte size
 * beyond size_t) or nbytes != numel * size; VQS_ENOMEM. */
int vqs_st_writer_add(vqs_st_writer *w, const char *name, vqs_st_dtype dtype, int ndim,
                      const uint64_t *shape, const void *data, size_t nbytes);
/* Sets a __metadata__ entry (a key set twice keeps its first place and the
 * last value). VQS_EINVAL for NULL or non-UTF-8 strings. */
int vqs_st_writer_meta(vqs_st_writer *w, const char *key, const char *value);
/* Header padded with spaces so the data buffer starts 8-byte aligned, as
 * the reference implementation writes it: compact JSON, __metadata__ first
 * (if any entry was set), then the tensors in the order added, with
 * contiguous offsets. The temporary file (path.tmp.XXXXXX) is fsynced,
 * renamed over path, and the directory fsynced. Errors: -errno with a
 * message naming path (the old file, if any, is then unchanged),
 * VQS_EINVAL for a header above VQS_ST_MAX_HEADER, VQS_ENOMEM. The writer
 * can be saved again or freed. */
int vqs_st_writer_save(vqs_st_writer *w, const char *path);

#ifdef __cplusplus
}
#endif
#endif
