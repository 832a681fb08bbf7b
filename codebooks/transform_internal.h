/*
 * transform_internal.h: what the transform files share (transform.c: tokens
 * and the linear map; pca.c; rotation.c: ROT and HAD; opq.c). A stage's
 * impl is one xform whatever its kind; the kind's file fills its part.
 */
#ifndef VQS_TRANSFORM_INTERNAL_H
#define VQS_TRANSFORM_INTERNAL_H

#include "codebook_internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Fortran LAPACK (liblapack); hidden string-length arguments are omitted as
 * every caller of single-character options does (FAISS included). */
extern void dsyevr_(const char *jobz, const char *range, const char *uplo, const int *n, double *a,
                    const int *lda, const double *vl, const double *vu, const int *il,
                    const int *iu, const double *abstol, int *m, double *w, double *z,
                    const int *ldz, int *isuppz, double *work, const int *lwork, int *iwork,
                    const int *liwork, int *info);
extern void dgeqrf_(const int *m, const int *n, double *a, const int *lda, double *tau,
                    double *work, const int *lwork, int *info);
extern void dorgqr_(const int *m, const int *n, const int *k, double *a, const int *lda,
                    const double *tau, double *work, const int *lwork, int *info);
extern void dgesvd_(const char *jobu, const char *jobvt, const int *m, const int *n, double *a,
                    const int *lda, double *s, double *u, const int *ldu, double *vt,
                    const int *ldvt, double *work, const int *lwork, int *info);

enum { K_PCA = 1, K_ROT = 2, K_HAD = 3, K_OPQ = 4 };

/* Seeds for the different random objects, so that PCA's rotation, ROT and
 * HAD's signs are unrelated for the same opts->seed. */
#define SEED_ROT 0x524f54ull
#define SEED_PCA 0x504341ull
#define SEED_HAD 0x484144ull
#define SEED_OPQ 0x4f5051ull

typedef struct xform {
    int kind;
    /* token options */
    int whiten, rotate; /* PCA W, R */
    int rounds;         /* HAD */
    size_t M, ksub;     /* OPQ */

    /* linear kinds (PCA, ROT, OPQ): y = A x + c, x = B y + mean */
    float *A;    /* d_out * d_in, row-major */
    float *B;    /* d_in * d_out, row-major; NULL: B = A^T */
    float *c;    /* d_out; NULL: no bias */
    float *mean; /* d_in; NULL: zero */

    /* PCA factors (the payload) */
    float *eig;  /* d_in variances, descending */
    float *P;    /* d_out * d_in, row i = i-th eigenvector */
    float *R;    /* d_out * d_out rotation (rotate), row-major */
    double retained;

    /* HAD */
    int8_t *signs; /* rounds * d_out, each +1 or -1 */
} xform;

/* The ops of each kind (pca.c, rotation.c, opq.c). */
extern const vqs_stage_ops vqs_xf_pca_ops, vqs_xf_rot_ops, vqs_xf_had_ops, vqs_xf_opq_ops;

/* ---- transform.c: the shared linear map and payload helpers ---- */

/* stage ops destroy; drops trained state (before retraining or loading) */
void vqs_xf_destroy(vqs_stage *s);
void vqs_xf_reset(xform *t);
/* apply, reverse, ip_query, adjoint of the linear kinds (y = A x + c,
 * x = B y + mean; codebook_internal.h says what each op means) */
void vqs_xf_lin_apply(const vqs_stage *s, size_t n, const float *x, float *y);
void vqs_xf_lin_reverse(const vqs_stage *s, size_t n, const float *y, float *x);
double vqs_xf_lin_ip_query(const vqs_stage *s, const float *q, float *y);
void vqs_xf_lin_ip_query_rows(const vqs_stage *s, size_t n, const float *q, float *y, double *cst);
int vqs_xf_lin_adjoint(const vqs_stage *s, const float *x, float *y);
/* save and load of a stage that is its matrix A alone (ROT, OPQ) */
int vqs_xf_lin_save(const vqs_stage *s, vqs_wbuf *w);
int vqs_xf_lin_load(vqs_stage *s, vqs_rbuf *r);
/* Payload header common to every kind (kind tag, d_in, d_out) */
void vqs_xf_put_header(const vqs_stage *s, vqs_wbuf *w);
int vqs_xf_get_header(vqs_stage *s, vqs_rbuf *r);
/* Reads n floats into a fresh array (*out, malloc'd), checking they are
 * finite; VQS_ECORRUPT naming what, VQS_ENOMEM. */
int vqs_xf_get_floats(vqs_stage *s, vqs_rbuf *r, size_t n, float **out, const char *what);

/* ---- rotation.c ---- */

/* Random orthogonal d x d matrix (Haar) from seed, row-major into q (d * d
 * floats); the first r rows are an r x d matrix with orthonormal rows.
 * Errors (naming tok): VQS_ENOMEM, VQS_EINVAL (LAPACK failed). */
int vqs_xf_random_orthogonal(size_t d, uint64_t seed, float *q, const char *tok);

/* ---- pca.c ---- */

/* Mean and eigen-decomposition of the scatter matrix of x (n x d) in
 * double (pca.c says how): mean d, w d eigenvalues descending, V d x d.
 * With R (vqs_reducer; NULL: one process), x is this participant's slice
 * and the mean and scatter are those of every participant's rows; rc: the
 * caller's so far, agreed on first. */
int vqs_xf_scatter_eig(const vqs_reducer *R, int rc, const float *x, size_t n, size_t d, double *mean,
                       double *w, double *V, const char *tok);

#ifdef __cplusplus
}
#endif
#endif
