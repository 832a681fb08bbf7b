/*
 * vqs_mpi.h: vqs under mpirun (tools/mpi.c). A binary built with
 * -DVQS_MPI=ON joins the job mpirun started it in; without mpirun (or
 * without MPI) every call below is that of a job of one process, so the
 * commands run one code path either way.
 */
#ifndef VQS_MPI_H
#define VQS_MPI_H

#include <stddef.h>
#include <stdint.h>

/* At the start of main: under mpirun (its environment names the job's
 * size), MPI_Init; a binary built without MPI that mpirun started as one of
 * several processes is refused (each would do the whole job and write the
 * same files): 0, or VQS_EUSAGE with the reason. */
int vqs_mpi_start(int *argc, char ***argv);
/* At the end of main: MPI_Finalize when started. */
void vqs_mpi_stop(void);
int vqs_mpi_rank(void); /* 0 without MPI */
int vqs_mpi_size(void); /* 1 without MPI */

/* Every rank passes its rc; all learn whether any failed. 0 if none did; a
 * failing rank's own rc with its error detail prefixed by its rank; a rank
 * that did not fail gets -EIO naming the lowest failing rank. */
int vqs_mpi_agree(int rc);

/* Rank 0's *len bytes at *p to every rank (the others' *p: malloc'd
 * here, freed by the caller). */
int vqs_mpi_bcast_bytes(void **p, size_t *len);

/* *v becomes the largest *v of all ranks (the slowest rank's time). */
int vqs_mpi_max_double(double *v);

/* Rows lo..hi-1 of n that rank r of p takes (contiguous, sizes differ by
 * at most one). */
void vqs_mpi_range(size_t n, int r, int p, size_t *lo, size_t *hi);

/* The job's ranks as a vqs_reducer (vqs_codebook.h) for training over
 * them: sums by MPI_Reduce to rank 0 and MPI_Bcast (every rank gets the
 * same bits), gathers by MPI_Allgatherv, each agreed on first
 * (vqs_mpi_agree). NULL with one process. */
struct vqs_reducer;
const struct vqs_reducer *vqs_mpi_reducer(void);

/* The k best of nq queries over the ranks' row ranges: every rank passes
 * its top k (ids already global, ordered by keys as vqs_exact_knn orders
 * them: key ascending, then id; a missing result id -1, key +inf); rank 0
 * receives in ids/keys the k best of all by the same order, the others
 * nothing (their ids/keys are left as they were). */
int vqs_mpi_merge_topk(size_t nq, size_t k, int64_t *ids, double *keys);

#endif
