/*
 * faiss_c_extra.h - vqs-specific additions to the FAISS C API.
 *
 * These are NOT part of upstream FAISS' C API (faiss/c_api/<name>.h), so they use
 * the `vqs_faiss_` prefix instead of `faiss_` to avoid ever colliding with a
 * future upstream symbol. They are implemented in faiss_c_api.cpp (section
 * "vqs extras"), and are available whether vqs_faiss_c wraps the Debian
 * libfaiss.a or a real system libfaiss_c.
 *
 * Conventions follow the FAISS C API: functions returning int return 0 on
 * success and a FaissErrorCode (< 0) on failure, in which case
 * faiss_get_last_error() describes the problem.
 */
#ifndef VQS_FAISS_C_EXTRA_H
#define VQS_FAISS_C_EXTRA_H

#include <stddef.h>

#include <faiss/c_api/Clustering_c.h>
#include <faiss/c_api/VectorTransform_c.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Eigenvalues of a trained PCAMatrix (FaissPCAMatrix is a
 * FaissVectorTransform), sorted in decreasing order; *n == d_in.
 * NOTE: as in FAISS itself, these are eigenvalues of the *unnormalized*
 * scatter matrix sum_i (x_i - mean)(x_i - mean)^T over the n training
 * vectors: divide by n (or n - 1) to get variances.
 * *out points into the transform and stays valid until it is freed or
 * retrained. Fails (FAISS_EXCEPT) if vt is not a PCAMatrix or not trained. */
int vqs_faiss_PCAMatrix_eigenvalues(
        const FaissVectorTransform* vt,
        const float** out,
        size_t* n);

/** Mean vector subtracted by a trained PCAMatrix; *n == d_in.
 * Same lifetime / error rules as vqs_faiss_PCAMatrix_eigenvalues. */
int vqs_faiss_PCAMatrix_mean(
        const FaissVectorTransform* vt,
        const float** out,
        size_t* n);

/** Element i of the clustering's per-iteration statistics, for use with the
 * faiss_ClusteringIterationStats_* getters. (faiss_Clustering_iteration_stats
 * returns a pointer to an opaque type, which C code cannot index.)
 * Returns NULL if i is out of range. */
const FaissClusteringIterationStats* vqs_faiss_Clustering_iteration_stat(
        const FaissClustering* clustering,
        size_t i);

/** Release an array returned by faiss_VectorTransform_apply (it is allocated
 * with C++ new[], so it must not be passed to free()). NULL is a no-op. */
void vqs_faiss_free_floats(float* p);

/** omp_set_num_threads(n) for the OpenMP runtime FAISS uses. n must be > 0. */
int vqs_faiss_set_num_threads(int n);

/** The threads of OpenBLAS's own pool (openblas_set_num_threads). FAISS's
 * flat search runs one sgemm and leaves the threads to BLAS, so a bench
 * gives FAISS n here; vqs runs BLAS single-threaded inside its own threads
 * (vqs_blas_single_thread), so a bench sets 1 again before timing vqs.
 * Benches only: the tests leave OpenBLAS at one thread. */
void vqs_faiss_set_blas_threads(int n);

/** omp_get_max_threads(). */
int vqs_faiss_get_max_threads(void);

/** Sets the beam width (max_beam_size) of an IndexResidualQuantizer, as made
 * by faiss_index_factory("RQ8x8"); used for training and encoding. */
int vqs_faiss_set_rq_beam(FaissIndex* index, int beam);

#ifdef __cplusplus
}
#endif

#endif /* VQS_FAISS_C_EXTRA_H */
