/*
 * vqs_wq.h: weight quantization: the block formats LLM checkpoints are
 * stored in (GGUF Q-formats, NF4, OCP Microscaling, NVFP4, fp8 and int8
 * with scales, LLM.int8()) and vector quantization of weights with the
 * k-means core. Pure math, as the rest of codebooks/: no files (tools/
 * reads and writes safetensors).
 *
 * A weight matrix is rows x cols float32, row-major, with rows the output
 * channels and cols the input dimension (the last axis in safetensors). A
 * 1-D tensor is one row. Every block format runs its blocks along a row; a
 * row whose length is not a multiple of the block ends with a short block of
 * its own (its scale computed from its own elements; in byte layouts that
 * have a fixed block size, the short block is stored padded with zeros).
 *
 * An encoded tensor (vqs_wq_tensor) is a small set of named parts, each a
 * dense array with an element type and a shape, so that a file writer can
 * store each part as one tensor ("NAME.blocks", "NAME.scales", ...). Which
 * parts a format has, their types, shapes and byte layouts are written at
 * the format's code (codebooks/wq_*.c) and in the table of `vqs help
 * weights`.
 *
 * Threads: encode and decode take a thread count and split rows with
 * vqs_parallel_for; results do not depend on it.
 */
#ifndef VQS_WQ_H
#define VQS_WQ_H

#include <stddef.h>
#include <stdint.h>

#include "vqs_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The formats. Names (vqs_wq_spec_parse) in brackets. */
typedef enum vqs_wq_kind {
    VQS_WQ_F16 = 0,     /* [f16]  IEEE half, no scale */
    VQS_WQ_BF16,        /* [bf16] bfloat16, no scale */
    VQS_WQ_FP8_E4M3,    /* [fp8_e4m3]    one fp32 scale per tensor: amax / 448 */
    VQS_WQ_FP8_E4M3_CH, /* [fp8_e4m3_ch] one fp32 scale per row (output channel) */
    VQS_WQ_FP8_E5M2,    /* [fp8_e5m2]    per tensor: amax / 57344 */
    VQS_WQ_FP8_E5M2_CH, /* [fp8_e5m2_ch] per row */
    VQS_WQ_INT8_CH,     /* [int8_ch]  int8 per row, absmax / 127 */
    VQS_WQ_LLM_INT8,    /* [llm_int8] LLM.int8(): columns with any |w| >= 6 in fp16, rest int8_ch */
    VQS_WQ_Q8_0,        /* [q8_0] GGUF: 32 int8 + fp16 d per block (34 bytes) */
    VQS_WQ_Q4_0,        /* [q4_0] GGUF: 32 nibbles + fp16 d (18 bytes) */
    VQS_WQ_Q4_1,        /* [q4_1] GGUF: 32 nibbles + fp16 d and m (20 bytes) */
    VQS_WQ_NF4,         /* [nf4]  QLoRA NormalFloat4, block 64, fp32 absmax */
    VQS_WQ_MXFP8_E4M3,  /* [mxfp8_e4m3] OCP MX v1.0: 32 elements, one E8M0 scale */
    VQS_WQ_MXFP8_E5M2,  /* [mxfp8_e5m2] */
    VQS_WQ_MXFP6_E2M3,  /* [mxfp6_e2m3] */
    VQS_WQ_MXFP6_E3M2,  /* [mxfp6_e3m2] */
    VQS_WQ_MXFP4,       /* [mxfp4]  E2M1 */
    VQS_WQ_MXINT8,      /* [mxint8] */
    VQS_WQ_NVFP4,       /* [nvfp4] E2M1, 16 elements, E4M3 scale, one fp32 tensor scale */
    VQS_WQ_VQ,          /* [vq<d>x<bits>[r<bits>][o<pct>]] k-means over d-weight sub-vectors */
    VQS_WQ_CODEC,       /* [codec:<vqs codec spec>] an existing codec (PQ, RVQ...) per row */
    VQS_WQ_NKINDS
} vqs_wq_kind;

/* A format and its parameters. Zero it, then parse, or fill kind alone for
 * the parameterless formats. */
typedef struct vqs_wq_spec {
    vqs_wq_kind kind;
    /* VQS_WQ_VQ (VPTQ-style; codebooks/wq_vq.c) */
    int vq_dim;         /* weights per sub-vector, e.g. 8 */
    int vq_bits;        /* log2 of the first stage's centroids, <= 16 */
    int vq_res_bits;    /* residual stage's log2 centroids; 0: none */
    float vq_outliers;  /* share of columns (by norm) kept in fp16, in [0, 0.5); 0: none */
    /* VQS_WQ_CODEC: a vqs codec spec (vqs_codebook.h) applied to every row */
    char codec[64];
    uint64_t seed;      /* k-means (VQ, CODEC) */
} vqs_wq_spec;

/* "q4_0", "vq8x12r8o1", "codec:PQ16x8"... (case-insensitive). VQS_ESPEC
 * naming the token otherwise. */
int vqs_wq_spec_parse(const char *s, vqs_wq_spec *out);
/* The canonical name (parse of it gives s back). */
void vqs_wq_spec_name(const vqs_wq_spec *s, char *buf, size_t n);

/* The list of formats for help and reports. block: elements per scale
 * block along a row (0: per row or per tensor; -1: vector quantization).
 * bits: bits per weight, scales included, for a long row (for VQ, without
 * the codebook, which depends on the tensor size). */
typedef struct vqs_wq_format {
    const char *name;    /* as parsed; for VQ and CODEC, an example */
    vqs_wq_kind kind;
    int block;
    double bits;
    const char *summary; /* one line */
} vqs_wq_format;
size_t vqs_wq_format_count(void);
const vqs_wq_format *vqs_wq_format_at(size_t i);

/* ---- encoded tensors ---------------------------------------------------- */

typedef enum vqs_wq_type {
    VQS_WQT_U8 = 0,
    VQS_WQT_I8,
    VQS_WQT_U16,
    VQS_WQT_I32,
    VQS_WQT_F16,
    VQS_WQT_BF16,
    VQS_WQT_F32,
    VQS_WQT_E4M3, /* fp8 E4M3FN bytes (NVFP4 scales) */
    VQS_WQT_E8M0, /* OCP E8M0 bytes (MX scales): 2^(v - 127), 0xFF NaN */
} vqs_wq_type;
size_t vqs_wq_type_size(vqs_wq_type t);
const char *vqs_wq_type_name(vqs_wq_type t); /* "u8", "e8m0", ... */

#define VQS_WQ_MAX_PARTS 8
#define VQS_WQ_PART_NAME 24

typedef struct vqs_wq_part {
    char name[VQS_WQ_PART_NAME]; /* "blocks", "codes", "scales", "codebook", ... */
    vqs_wq_type type;
    int ndim;                    /* 1 or 2 */
    uint64_t shape[2];
    void *data;                  /* little-endian elements, shape[0] * shape[1] of them */
    size_t nbytes;
    int borrowed;                /* data belongs to the caller (vqs_wq_part_borrow) */
} vqs_wq_part;

typedef struct vqs_wq_tensor {
    vqs_wq_spec spec;
    size_t rows, cols;
    int nparts;
    vqs_wq_part part[VQS_WQ_MAX_PARTS];
} vqs_wq_tensor;

typedef struct vqs_wq_opts {
    int nthreads; /* 0: vqs_default_threads() */
    int verbose;  /* progress on stderr (VQ training) */
} vqs_wq_opts;

/* Encodes rows x cols float32 weights w (finite; VQS_ENONFINITE otherwise)
 * into *out (zeroed by the call; free with vqs_wq_tensor_free, also after a
 * failure). o may be NULL. */
int vqs_wq_encode(const vqs_wq_spec *s, const float *w, size_t rows, size_t cols,
                  const vqs_wq_opts *o, vqs_wq_tensor *out);
/* Decodes t into rows * cols floats. Checks first that t has every part its
 * format needs with the right type and shape (VQS_ESHAPE naming the part and
 * what was expected), so a tensor assembled from a file cannot read out of
 * bounds; codes outside their range (an index past the codebook, an E8M0
 * NaN scale) give VQS_ECORRUPT or NaN as the format's definition says. */
int vqs_wq_decode(const vqs_wq_tensor *t, float *w, const vqs_wq_opts *o);
void vqs_wq_tensor_free(vqs_wq_tensor *t);

/* Bytes of all parts, and that in bits per weight (rows * cols). */
size_t vqs_wq_nbytes(const vqs_wq_tensor *t);
double vqs_wq_bits_per_weight(const vqs_wq_tensor *t);

const vqs_wq_part *vqs_wq_part_get(const vqs_wq_tensor *t, const char *name);
/* Adds a part with zeroed, owned data (*out may be NULL). VQS_EINVAL if the
 * name repeats or there are VQS_WQ_MAX_PARTS parts already. */
int vqs_wq_part_add(vqs_wq_tensor *t, const char *name, vqs_wq_type type, int ndim,
                    const uint64_t *shape, vqs_wq_part **out);
/* Adds a part over the caller's bytes (a mapped file); nbytes must equal
 * the shape's size (VQS_ESHAPE otherwise). */
int vqs_wq_part_borrow(vqs_wq_tensor *t, const char *name, vqs_wq_type type, int ndim,
                       const uint64_t *shape, const void *data, size_t nbytes);

/* ---- element formats (exact; tested over every code) ---------------------- */

/* OCP MX v1.0 element types: E2M1 (fp4: max 6, no Inf/NaN), E2M3 and E3M2
 * (fp6: max 7.5 and 28, no Inf/NaN). Encoding rounds to nearest, ties to
 * even, and saturates to +-max (as the MX spec's conversion says); the code
 * is in the low 4 or 6 bits. -0 encodes as the negative zero code. */
uint8_t vqs_f32_to_e2m1(float f);
float vqs_e2m1_to_f32(uint8_t c);
uint8_t vqs_f32_to_e2m3(float f);
float vqs_e2m3_to_f32(uint8_t c);
uint8_t vqs_f32_to_e3m2(float f);
float vqs_e3m2_to_f32(uint8_t c);
/* E8M0: 2^(v - 127) for v in 0..254; 255 is NaN. */
float vqs_e8m0_to_f32(uint8_t v);

/* QLoRA's 16 NormalFloat4 levels, ascending, in [-1, 1] (bitsandbytes). */
extern const float vqs_nf4_levels[16];

#ifdef __cplusplus
}
#endif
#endif
