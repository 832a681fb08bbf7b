/*
 * mpi.c: vqs under mpirun (vqs_mpi.h), for the offline jobs that outgrow
 * one machine: vqs gt, vqs build (training over the ranks through a
 * vqs_reducer) and vqs eval --shards.
 *
 * Design decisions:
 * - One binary. MPI_Init runs only when mpirun's environment says this
 *   process is part of a job (OMPI_COMM_WORLD_SIZE from OpenMPI, PMI_SIZE
 *   from MPICH's launcher), so a plain `vqs gt` neither loads a runtime nor
 *   changes its path: the single-process result and speed stay as they
 *   were. Built without MPI (the default: the demo build needs no
 *   OpenMPI), a binary started as one of several processes stops with the
 *   reason instead of having every process do the whole job.
 * - Errors are agreed on: a rank that fails (a file it cannot read) goes on
 *   to the next collective with its rc, so every rank returns, the job
 *   exits non-zero, and the message names the rank and the cause; a rank
 *   that dies is mpirun's to report (it aborts the job and names it).
 * - Training sums (vqs_mpi_reducer) are an MPI_Reduce to rank 0 and an
 *   MPI_Bcast of its result, in chunks of 2^26 doubles: every rank gets the
 *   same bits, so the ranks' k-means stay in step (an MPI_Allreduce need not
 *   promise that); the gathers are MPI_Allgatherv of rows typed as one
 *   contiguous block each, so counts are rows, not bytes.
 * - Top-k merging gathers each rank's k (id, key) pairs per query at rank
 *   0, in chunks of queries that keep a message under 2^26 items, and sorts
 *   them as vqs_exact_knn sorts its own candidates (key in double, then
 *   id), so the merged answer is the one process's answer bit for bit.
 *   Rejected: a tree reduction (log P steps of merges): at the P of one
 *   machine or a rack the gather's P k items a query are small.
 */
#define _GNU_SOURCE
#include "vqs_mpi.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vqs_codebook.h"
#include "vqs_common.h"
#include "vqs_topk.h"

#ifdef VQS_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank, g_size = 1;
#ifdef VQS_HAVE_MPI
static int g_started;
#endif

/* the job's size from mpirun's environment; 0: not started by mpirun */
static long launcher_size(void)
{
    const char *v = getenv("OMPI_COMM_WORLD_SIZE");
    if (!v || !*v)
        v = getenv("PMI_SIZE");
    return v && *v ? strtol(v, NULL, 10) : 0;
}

int vqs_mpi_start(int *argc, char ***argv)
{
    long n = launcher_size();
    if (n <= 0)
        return 0;
#ifdef VQS_HAVE_MPI
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return vqs_seterr(-EIO, "MPI_Init failed (started by mpirun as one of %ld processes)", n);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    g_started = 1;
    return 0;
#else
    (void)argc;
    (void)argv;
    if (n == 1)
        return 0;
    return vqs_seterr(VQS_EUSAGE, "started by mpirun as one of %ld processes, but this vqs was built without MPI "
                                  "(cmake -DVQS_MPI=ON): each process would do the whole job", n);
#endif
}

void vqs_mpi_stop(void)
{
#ifdef VQS_HAVE_MPI
    if (g_started)
        MPI_Finalize();
    g_started = 0;
#endif
}

int vqs_mpi_rank(void) { return g_rank; }
int vqs_mpi_size(void) { return g_size; }

void vqs_mpi_range(size_t n, int r, int p, size_t *lo, size_t *hi)
{
    size_t q = n / (size_t)p, e = n % (size_t)p, R = (size_t)r;
    *lo = R * q + (R < e ? R : e);
    *hi = *lo + q + (R < e);
}

int vqs_mpi_agree(int rc)
{
    if (g_size == 1)
        return rc;
#ifdef VQS_HAVE_MPI
    int mine = rc ? g_rank : g_size, first = g_size;
    if (MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS)
        return vqs_seterr(-EIO, "rank %d of %d: MPI_Allreduce failed", g_rank, g_size);
    if (rc)
        return vqs_seterr(rc, "rank %d of %d: %s", g_rank, g_size, vqs_errdetail());
    if (first < g_size)
        return vqs_seterr(-EIO, "rank %d of %d: stopped, rank %d failed (its own line names the cause)", g_rank,
                          g_size, first);
#endif
    return rc;
}

int vqs_mpi_max_double(double *v)
{
#ifdef VQS_HAVE_MPI
    double in = *v;
    if (g_size > 1 && MPI_Allreduce(&in, v, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS)
        return vqs_seterr(-EIO, "rank %d of %d: MPI_Allreduce failed", g_rank, g_size);
#else
    (void)v;
#endif
    return 0;
}

int vqs_mpi_bcast_bytes(void **p, size_t *len)
{
    if (g_size == 1)
        return 0;
#ifdef VQS_HAVE_MPI
    uint64_t n = *len;
    if (MPI_Bcast(&n, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
        return vqs_seterr(-EIO, "rank %d of %d: MPI_Bcast failed", g_rank, g_size);
    if (g_rank != 0) {
        free(*p);
        if (!(*p = malloc(n ? n : 1)))
            return vqs_seterr(VQS_ENOMEM, "rank %d of %d: %llu bytes from rank 0", g_rank, g_size,
                              (unsigned long long)n);
        *len = n;
    }
    for (uint64_t o = 0; o < n; o += (uint64_t)1 << 30) { /* counts are ints */
        int c = (int)(n - o < ((uint64_t)1 << 30) ? n - o : (uint64_t)1 << 30);
        if (MPI_Bcast((char *)*p + o, c, MPI_BYTE, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
            return vqs_seterr(-EIO, "rank %d of %d: MPI_Bcast failed", g_rank, g_size);
    }
#else
    (void)p;
    (void)len;
#endif
    return 0;
}

#ifdef VQS_HAVE_MPI
#define SUM_CHUNK (1 << 26) /* doubles a message: counts are ints */

static int reduce_sum(void *ctx, int rc, double *v, size_t n)
{
    (void)ctx;
    if ((rc = vqs_mpi_agree(rc)))
        return rc;
    for (size_t o = 0; o < n; o += SUM_CHUNK) {
        int c = (int)(n - o < SUM_CHUNK ? n - o : SUM_CHUNK);
        /* a reduction to rank 0, then its result to all: every rank gets the
         * same bits (an allreduce need not promise that) */
        if (MPI_Reduce(g_rank == 0 ? MPI_IN_PLACE : v + o, v + o, c, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD) !=
                MPI_SUCCESS ||
            MPI_Bcast(v + o, c, MPI_DOUBLE, 0, MPI_COMM_WORLD) != MPI_SUCCESS)
            return vqs_seterr(-EIO, "rank %d of %d: summing %zu values failed", g_rank, g_size, n);
    }
    return 0;
}

static int reduce_gather(void *ctx, int rc, const void *mine, size_t rows, size_t width, void *all)
{
    (void)ctx;
    uint64_t *n = malloc(sizeof(uint64_t) * (size_t)g_size);
    int *cnt = malloc(sizeof(int) * (size_t)g_size), *at = malloc(sizeof(int) * (size_t)g_size);
    if (!rc && (!n || !cnt || !at))
        rc = vqs_seterr(VQS_ENOMEM, "gather over %d ranks", g_size);
    if (!rc && (width > INT_MAX || rows > INT_MAX))
        rc = vqs_seterr(VQS_ERANGE, "gather: %zu rows of %zu bytes", rows, width);
    uint64_t r = rows;
    if (!(rc = vqs_mpi_agree(rc)) && MPI_Allgather(&r, 1, MPI_UINT64_T, n, 1, MPI_UINT64_T, MPI_COMM_WORLD))
        rc = vqs_seterr(-EIO, "rank %d of %d: MPI_Allgather failed", g_rank, g_size);
    uint64_t tot = 0;
    for (int i = 0; !rc && i < g_size; i++) {
        cnt[i] = (int)n[i];
        at[i] = (int)tot;
        tot += n[i];
    }
    if (!rc && tot > INT_MAX) /* the same on every rank */
        rc = vqs_seterr(VQS_ERANGE, "gather: %llu rows over %d ranks", (unsigned long long)tot, g_size);
    MPI_Datatype row;
    if (!rc && MPI_Type_contiguous((int)width, MPI_BYTE, &row) == MPI_SUCCESS && MPI_Type_commit(&row) == MPI_SUCCESS) {
        if (MPI_Allgatherv(mine, (int)rows, row, all, cnt, at, row, MPI_COMM_WORLD) != MPI_SUCCESS)
            rc = vqs_seterr(-EIO, "rank %d of %d: MPI_Allgatherv of %zu rows failed", g_rank, g_size, rows);
        MPI_Type_free(&row);
    } else if (!rc) {
        rc = vqs_seterr(-EIO, "rank %d of %d: MPI_Type_contiguous failed", g_rank, g_size);
    }
    free(n);
    free(cnt);
    free(at);
    return rc;
}

static vqs_reducer g_reducer;
#endif

const vqs_reducer *vqs_mpi_reducer(void)
{
#ifdef VQS_HAVE_MPI
    if (g_size > 1) {
        g_reducer = (vqs_reducer){g_rank, g_size, NULL, reduce_sum, reduce_gather};
        return &g_reducer;
    }
#endif
    return NULL;
}

int vqs_mpi_merge_topk(size_t nq, size_t k, int64_t *ids, double *keys)
{
    if (g_size == 1 || nq == 0)
        return 0;
#ifdef VQS_HAVE_MPI
    size_t P = (size_t)g_size, chunk = ((size_t)1 << 26) / (k * P);
    if (chunk == 0)
        return vqs_seterr(VQS_ERANGE, "merge: k = %zu over %zu ranks is too many results a query", k, P);
    int root = g_rank == 0;
    int64_t *gi = root ? malloc(sizeof(int64_t) * chunk * k * P) : NULL;
    double *gk = root ? malloc(sizeof(double) * chunk * k * P) : NULL;
    vqs_topk_item *all = root ? malloc(sizeof(vqs_topk_item) * k * P) : NULL;
    int bad = root && (!gi || !gk || !all);
    if ((bad = vqs_mpi_agree(bad ? vqs_seterr(VQS_ENOMEM, "merge: %zu queries x %zu x %zu ranks", chunk, k, P)
                                 : 0))) {
        free(gi), free(gk), free(all);
        return bad;
    }
    int rc = 0;
    for (size_t q0 = 0; q0 < nq && !rc; q0 += chunk) {
        size_t m = nq - q0 < chunk ? nq - q0 : chunk;
        int cnt = (int)(m * k);
        if (MPI_Gather(ids + q0 * k, cnt, MPI_INT64_T, gi, cnt, MPI_INT64_T, 0, MPI_COMM_WORLD) != MPI_SUCCESS ||
            MPI_Gather(keys + q0 * k, cnt, MPI_DOUBLE, gk, cnt, MPI_DOUBLE, 0, MPI_COMM_WORLD) != MPI_SUCCESS) {
            rc = vqs_seterr(-EIO, "rank %d of %d: MPI_Gather of the top %zu failed", g_rank, g_size, k);
            break;
        }
        for (size_t i = 0; root && i < m; i++) {
            size_t na = 0;
            for (size_t r = 0; r < P; r++)
                for (size_t j = 0; j < k; j++) {
                    size_t at = r * m * k + i * k + j;
                    if (gi[at] >= 0)
                        all[na++] = (vqs_topk_item){gk[at], gi[at]};
                }
            vqs_topk_take(all, na, k, ids + (q0 + i) * k, keys + (q0 + i) * k);
        }
    }
    free(gi);
    free(gk);
    free(all);
    return rc;
#else
    (void)k;
    (void)ids;
    (void)keys;
    return 0;
#endif
}
