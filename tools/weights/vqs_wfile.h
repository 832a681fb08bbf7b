/*
 * vqs_wfile.h: quantized checkpoints (tools/weights/wfile.c), the files
 * `vqs weights quantize` writes and `vqs weights eval --quantized` reads.
 *
 * Format "weights-1": an ordinary safetensors file (storage/vqs_store_st.h),
 * so any safetensors reader can list it.
 *   - __metadata__ "vqs.format" = "weights-1".
 *   - A quantized tensor NAME is stored as one safetensors tensor per part of
 *     its encoding (codebooks/vqs_wq.h): "NAME.blocks", "NAME.scales", ...,
 *     each with the part's shape and the safetensors dtype of its element
 *     type: u8 -> U8, i8 -> I8, u16 -> U16, i32 -> I32, f16 -> F16,
 *     bf16 -> BF16, f32 -> F32, e4m3 -> F8_E4M3, e8m0 -> U8 (the record
 *     says which of U8's two meanings it is).
 *   - Its record, __metadata__ "vqs.tensor.NAME", a JSON object:
 *       {"format": "q4_0", "dtype": "F32", "shape": [172, 64],
 *        "parts": [{"name": "blocks", "type": "u8", "shape": [172, 36]}, ...]}
 *     format as vqs_wq_spec_parse reads it, the original dtype and shape,
 *     and the parts in the order written. The encoded matrix is rows x cols
 *     with cols the last dimension and rows the product of the others.
 *   - Tensors left as they were (norms, --skip) are copied unchanged under
 *     their own names; the input's other __metadata__ entries are copied too
 *     (the model config that vqs_llama_load reads).
 *
 * Reading refuses, naming the file, the tensor and the part: a vqs.format
 * other than weights-1 (VQS_EVERSION), records without vqs.format, a record
 * that is not valid JSON or lacks or mistypes a field, an unknown format or
 * type (VQS_ECORRUPT), a part missing from the file (VQS_ECORRUPT), a part
 * stored with another dtype or shape than its record says, a shape that
 * does not give rows x cols (VQS_ESHAPE), a tensor "NAME.x" beside a
 * quantized NAME that is not one of its parts, or NAME itself stored too
 * (VQS_ECORRUPT). Whether the parts fit the format is checked by
 * vqs_wq_decode when a tensor is read (vqs_wfile_read_f32).
 *
 * Design decisions: one safetensors tensor per part rather than one opaque
 * byte blob per tensor, so the layouts stay inspectable with any safetensors
 * tool and the reader borrows the parts straight from the mapping; the
 * records live in __metadata__ (string to string, as the format allows)
 * rather than in a side file, so a checkpoint is one file. Rejected: GGUF
 * output (its type table has no MX, NVFP4 or VQ formats; llama.cpp's own
 * tools convert from safetensors anyway).
 */
#ifndef VQS_WFILE_H
#define VQS_WFILE_H

#include <stddef.h>
#include <stdint.h>

#include "vqs_store_st.h"
#include "vqs_wq.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VQS_WFILE_KEY "vqs.format"
#define VQS_WFILE_VERSION "weights-1"
#define VQS_WFILE_RECORD "vqs.tensor." /* + NAME: a quantized tensor's record */

/* The safetensors dtype a part of element type t is stored as. */
vqs_st_dtype vqs_wfile_part_dtype(vqs_wq_type t);

/* ---- writing ------------------------------------------------------------ */

/* Starts a checkpoint in w: copies src's __metadata__ (src may be NULL),
 * leaving out its vqs.* keys, and, when quantized, sets vqs.format. */
int vqs_wfile_begin(vqs_st_writer *w, const vqs_st_file *src, int quantized);

/* Adds the encoded tensor t as NAME.<part> tensors and its record. dtype,
 * ndim and shape are the original tensor's (rows x cols of t must be its
 * shape, see above: VQS_ESHAPE otherwise). Errors of the writer (a name
 * given twice) name the tensor. */
int vqs_wfile_add(vqs_st_writer *w, const char *name, vqs_st_dtype dtype, int ndim,
                  const uint64_t *shape, const vqs_wq_tensor *t);

/* ---- reading ------------------------------------------------------------ */

/* One tensor of a checkpoint, as the model sees it. */
typedef struct vqs_wfile_tensor {
    const char *name;
    vqs_st_dtype dtype; /* the original dtype */
    int ndim;
    uint64_t shape[VQS_ST_MAX_NDIM];
    size_t rows, cols;  /* product of the leading dimensions, the last one (a scalar: 1 x 1) */
    int quantized;      /* 1: q holds its parts; 0: raw is the tensor as stored */
    vqs_wq_tensor q;    /* parts borrowed from the mapping (copied when misaligned) */
    const vqs_st_tensor *raw;
    size_t nbytes;      /* bytes in the file: its parts, or raw's */
} vqs_wfile_tensor;

typedef struct vqs_wfile vqs_wfile;

/* Opens a checkpoint: a weights-1 file, or any safetensors file (then every
 * tensor is raw). Checks everything listed above. */
int vqs_wfile_open(const char *path, vqs_wfile **out);
void vqs_wfile_close(vqs_wfile *f);

int vqs_wfile_is_quantized(const vqs_wfile *f); /* it has vqs.format */
const vqs_st_file *vqs_wfile_st(const vqs_wfile *f);
/* The tensors in file order (a quantized one where its first part lies).
 * Pointers stay valid until close. */
size_t vqs_wfile_count(const vqs_wfile *f);
const vqs_wfile_tensor *vqs_wfile_at(const vqs_wfile *f, size_t i);
const vqs_wfile_tensor *vqs_wfile_find(const vqs_wfile *f, const char *name);

/* Tensor t as rows * cols float32: decoded (vqs_wq_decode), or converted
 * (vqs_st_read_f32, NaN/Inf refused). Errors name the file and the tensor. */
int vqs_wfile_read_f32(const vqs_wfile *f, const vqs_wfile_tensor *t, int nthreads, float *out);

#ifdef __cplusplus
}
#endif
#endif
