/*
 * vqs_common.h: what every vqs module shares: error codes, the thread-local
 * error detail, the thread-count policy, a parallel-for, and the seeded
 * synthetic data generator used by tests and benchmarks.
 *
 * Errors follow libuv and LMDB: every call returns int, 0 is success and
 * failures are negative. System failures are -errno; vqs's own codes live in
 * [VQS_ERR_LAST, VQS_ERR_BASE] so they never collide with -errno (errno values
 * are < 4096). One X-macro list generates the enum, vqs_strerror() and
 * vqs_err_name(). A thread-local detail string says *what* was wrong
 * ("siftsmall_base.fvecs: row 17: dimension 96, expected 128"); it is valid
 * until the next failing vqs call on the same thread.
 */
#ifndef VQS_COMMON_H
#define VQS_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vqs_float.h" /* fp16 (and the other float formats), long declared here */

#ifdef __cplusplus
extern "C" {
#endif

#define VQS_ERR_BASE (-30000)

/* X(name, offset, message) */
#define VQS_ERRNO_MAP(X)                                                      \
    X(EINVAL, 0, "invalid argument")                                         \
    X(ENOMEM, 1, "out of memory")                                            \
    X(EFORMAT, 2, "unrecognised or unsupported file format")                 \
    X(ETRUNC, 3, "truncated file")                                           \
    X(EDIMMISMATCH, 4, "rows with inconsistent dimensions")                  \
    X(ESHAPE, 5, "header disagrees with the data size")                      \
    X(EBADDIM, 6, "dimension is zero or too large")                          \
    X(EORDER, 7, "Fortran (column-major) order is not supported")            \
    X(EDTYPE, 8, "unsupported element type")                                 \
    X(ENONFINITE, 9, "NaN or Inf in the data")                               \
    X(EHEADER, 10, "malformed header")                                       \
    X(ERANGE, 11, "value out of range")                                      \
    X(EFAISS, 12, "FAISS call failed")                                       \
    X(EUSAGE, 13, "bad command-line usage")                                  \
    X(EEMPTY, 14, "no data")                                                 \
    X(ENOTFOUND, 15, "not found")                                            \
    X(ESPEC, 16, "invalid codec spec")                                       \
    X(ECORRUPT, 17, "corrupt or truncated data")                             \
    X(EVERSION, 18, "unsupported format version")                            \
    X(ELOCKED, 19, "the data directory is in use by another writer")

typedef enum vqs_errno {
#define VQS_X_ENUM(name, off, msg) VQS_##name = VQS_ERR_BASE - (off),
    VQS_ERRNO_MAP(VQS_X_ENUM)
#undef VQS_X_ENUM
    VQS_ERR_LAST = VQS_ERR_BASE - 19
} vqs_errno;

/* Message for any return code: vqs codes, -errno, and 0. Static storage. */
const char *vqs_strerror(int rc);

/* Symbolic name ("VQS_ETRUNC", "ENOENT", "OK"). Static storage. */
const char *vqs_err_name(int rc);

/* Detail of the last failure on this thread ("" if none). Valid until the
 * next vqs call on this thread that fails. */
const char *vqs_errdetail(void);

/* Sets the detail (printf format) and returns rc, so a failure reads
 * `return vqs_seterr(VQS_ETRUNC, "%s: ...", path);`. */
int vqs_seterr(int rc, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Clears the detail. */
void vqs_clearerr(void);

/* ---- checksums ------------------------------------------------------- */

/* CRC-32C (Castagnoli) of n bytes, continuing crc (0 to start). Software,
 * table-driven; used by every versioned blob and file header. */
uint32_t vqs_crc32c(uint32_t crc, const void *p, size_t n);

/* ---- metrics ---------------------------------------------------------- */

/* L2: squared Euclidean distance (smaller is better, as FAISS); IP: inner
 * product and COS: cosine similarity (larger is better). */
typedef enum vqs_metric {
    VQS_METRIC_L2 = 0,
    VQS_METRIC_IP = 1,
    VQS_METRIC_COS = 2,
} vqs_metric;

/* "l2", "ip", "cos" (also "euclid", "dot", "cosine", any case). VQS_EINVAL
 * with a detail naming the string otherwise. */
int vqs_metric_parse(const char *s, vqs_metric *out);
const char *vqs_metric_name(vqs_metric m);

/* Vectors every score of which stays a finite float32. A vector's squared
 * norm must not pass VQS_MAX_SQNORM (FLT_MAX / 4, a norm of about 9.2e18):
 * then the squared norm itself, any inner product of two such vectors
 * (|<x, y>| <= |x| |y|) and any squared L2 distance (|x - y|^2 <=
 * (|x| + |y|)^2 <= 4 * VQS_MAX_SQNORM) are below FLT_MAX. A cosine vector
 * that is not zero must have a squared norm of at least VQS_MIN_COS_SQNORM
 * (FLT_MIN, a norm of about 1.1e-19): below it the norm underflows float32
 * and the normalised vector overflows or loses its precision. (A zero
 * vector stays zero and scores 0, as in Qdrant.) */
#define VQS_MAX_SQNORM 8.507059173023462e37
#define VQS_MIN_COS_SQNORM 1.1754943508222875e-38

/* Checks n rows of d floats (row stride ld) for metric m: finite elements
 * (VQS_ENONFINITE) and the norm range above (VQS_ERANGE). On failure *bad
 * (may be NULL) is the first bad row and the detail names its element and
 * why, without the row (callers prefix their own name for it). */
int vqs_check_vectors(vqs_metric m, size_t n, size_t d, size_t ld, const float *x, size_t *bad);

/* ---- threads ---------------------------------------------------------- */

/* Number of worker threads vqs uses when a caller passes 0: the VQS_THREADS
 * environment variable if set (>= 1), else the number of online CPUs. */
int vqs_default_threads(void);

/* Runs fn(ctx, i, thread_id) for every i in [0, n) on up to nthreads threads
 * (0: vqs_default_threads()). Items are handed out dynamically, one at a
 * time, so uneven items balance. thread_id is in [0, nthreads). Returns 0, or
 * -errno if threads could not be started (then nothing has run). The first
 * non-zero return of fn stops handing out further items and is returned,
 * with its vqs_errdetail() on the calling thread whichever thread failed.
 * Threads come from a persistent pool (started on first use). A call made
 * from inside a task runs serially on the calling thread (thread_id 0), so
 * nested loops do not oversubscribe; calls from several threads at once are
 * safe (one uses the pool, the others start their own threads). */
typedef int (*vqs_task_fn)(void *ctx, size_t i, int thread_id);
int vqs_parallel_for(int nthreads, size_t n, vqs_task_fn fn, void *ctx);

/* ---- SIMD level -------------------------------------------------------- */

/* Kernels with SIMD versions (index/kernels, codebooks/kernels) pick one
 * level at run time: the best the CPU has (cpuid, and xgetbv so that the OS
 * saves the registers), or lower if the environment variable
 * VQS_SIMD=scalar|avx2|avx512 asks (a level above the CPU's is refused with
 * one warning line on stderr). AVX2 = AVX2 + FMA + F16C + POPCNT; AVX-512 =
 * F + BW + VL + DQ on top. */
typedef enum vqs_simd {
    VQS_SIMD_SCALAR = 0,
    VQS_SIMD_AVX2 = 1,
    VQS_SIMD_AVX512 = 2,
} vqs_simd;
vqs_simd vqs_simd_level(void); /* chosen once, thread-safe */
vqs_simd vqs_simd_cpu(void);   /* best this CPU supports, ignoring VQS_SIMD */
int vqs_simd_has_vpopcntdq(void); /* AVX-512 level and VPOPCNTDQ */
int vqs_simd_has_vbmi(void);      /* AVX-512 level and VBMI (8-bit fast scan) */
const char *vqs_simd_name(vqs_simd level);

/* Makes BLAS single-threaded in the calling process: vqs parallelises over
 * its own blocks, and OpenBLAS's own pool on top of that oversubscribes. */
void vqs_blas_single_thread(void);

/* ---- synthetic data --------------------------------------------------- */

/* Gaussian mixture: ncenters centres drawn from N(0, spread^2 I); each point
 * is its centre plus noise whose per-dimension standard deviation decays
 * geometrically from 1 to 1/anisotropy (then dimensions are permuted per
 * cluster), so spectra are uneven as in real embeddings. A fraction
 * outlier_frac of the points are heavy outliers (scaled by outlier_scale).
 * If unit_norm, every row is normalised to length 1 (the cosine variant).
 * Deterministic for a given seed, whatever the thread count. */
typedef struct vqs_synth_opts {
    size_t ncenters;      /* 0: 16 */
    float spread;         /* 0: 4.0 */
    float anisotropy;     /* 0: 10.0 */
    float outlier_frac;   /* 0: 0.002; negative: no outliers */
    float outlier_scale;  /* 0: 20.0 */
    int unit_norm;        /* cosine variant */
    uint64_t seed;
} vqs_synth_opts;

/* x: n * d floats, written by the call. Returns 0 or VQS_EINVAL. */
int vqs_synth_gmm(const vqs_synth_opts *o, size_t n, size_t d, float *x);

/* splitmix64/xoshiro256** generator, exposed so tests and tools share it. */
typedef struct vqs_rng { uint64_t s[4]; } vqs_rng;
void vqs_rng_seed(vqs_rng *r, uint64_t seed);
uint64_t vqs_rng_next(vqs_rng *r);
double vqs_rng_uniform(vqs_rng *r);  /* [0, 1) */
double vqs_rng_normal(vqs_rng *r);   /* N(0, 1) */

/* ---- misc ------------------------------------------------------------- */

/* The bits of a float and back (no aliasing UB). */
static inline uint32_t vqs_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float vqs_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Scales each of n rows of d floats to unit L2 norm (a zero row stays
 * zero); the norm is accumulated in double. Cosine everywhere uses it. */
void vqs_normalize_rows(size_t n, size_t d, float *x);

/* Monotonic clock, seconds. */
double vqs_now(void);

#ifdef __cplusplus
}
#endif
#endif
