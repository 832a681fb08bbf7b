/* PENDING (branch cb-kpq): k-means. Placeholder so the pipeline links. */
#include "codebook_internal.h"
int vqs_kmeans(const vqs_kmeans_opts *o, size_t n, size_t d, const float *x, size_t k,
               float *centroids, vqs_kmeans_stats *stats)
{
    (void)o; (void)n; (void)d; (void)x; (void)k; (void)centroids; (void)stats;
    return vqs_seterr(VQS_EINVAL, "k-means: not implemented yet");
}
int vqs_kmeans_assign(int nthreads, size_t n, size_t d, const float *x, size_t k,
                      const float *centroids, int32_t *assign, float *dist)
{
    (void)nthreads; (void)n; (void)d; (void)x; (void)k; (void)centroids; (void)assign; (void)dist;
    return vqs_seterr(VQS_EINVAL, "k-means: not implemented yet");
}
