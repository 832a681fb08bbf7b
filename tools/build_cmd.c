/*
 * build_cmd.c: `vqs build`, a vector file into S shards, each an ordinary
 * vqs data directory holding one collection (`vqs serve --data DIR/shard-I`
 * serves it), in one process or over the ranks of `mpirun -n P` (a build
 * with -DVQS_MPI=ON, tools/mpi.c).
 *
 * Design decisions:
 * - One training for every shard, over the ranks: the training sample is
 *   --train-size rows of the file drawn by selection sampling (seeded, in
 *   row order, the same for every P), and each rank holds the sample's rows
 *   in its own row range of the file. vqs_index_train_over trains on these
 *   slices (the coarse k-means, PCA, OPQ, PQ and RVQ sum their statistics
 *   over the ranks; SQ and the fixed rotations see the gathered sample), so every rank ends with the same
 *   trained state, that of one process up to the order of floating-point
 *   sums; rank 0's is broadcast all the same and every shard stores it
 *   (vqs_coll_train_from), so the shards' codes are comparable and a
 *   query's distances from different shards can be merged. One process
 *   runs the same routine without a reducer. Rank 0 prints the training's
 *   errors on the whole sample (coarse objective, code error), the figures
 *   that compare a job of P ranks with one process (tested).
 * - Shard I holds rows [I n / S, (I + 1) n / S) of the file (vqs_mpi_range),
 *   with the row numbers as point ids, so hits merged across shards name
 *   rows of the file. Rank r builds the shards r, r + P, ...; a float32 file
 *   (fvecs, npy, raw) is memory-mapped, so a rank reads the training sample
 *   (rank 0) and its own rows only.
 * - A shard is written under a temporary name in DIR (.shard-I.XXXXXX) and
 *   renamed to shard-I only when every rank has finished all of its shards:
 *   a failed or killed job leaves no directory that looks complete (its
 *   temporary ones are removed when the failure is seen; a killed rank
 *   leaves its .shard-* behind, never read). Existing shard-I directories
 *   are refused before anything is written.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "commands.h"
#include "vqs_collection.h"
#include "vqs_common.h"
#include "vqs_index.h"
#include "vqs_mpi.h"
#include "vqs_store.h"

#define fail vqs_cli_fail
#define MAX_SHARDS 4096

static const vqs_cli_opt opts[] = {
    {"base", 'b', 1, "FILE", NULL, "the vectors (required): .fvecs .bvecs .npy .jsonl, or raw float32 with --dim"},
    {"spec", 's', 1, "SPEC", NULL, "the index spec of every shard (required), e.g. IVF1024,PQ32x8"},
    {"out", 'o', 1, "DIR", NULL, "where the shards go (required): DIR/shard-0 ... (created if missing)"},
    {"shards", 'S', 1, "S", "the ranks of mpirun, 1 without", "shards written"},
    {"collection", 'c', 1, "NAME", "vectors", "the collection in each shard"},
    {"metric", 'm', 1, "l2|ip|cos", "l2", "the collection's metric"},
    {"rerank", 'r', 1, "disk|memory|none", "disk", "where the full vectors of each shard are kept"},
    {"train-size", 't', 1, "N", "min(100000, rows)", "rows of the seeded training sample"},
    {"batch", 'B', 1, "N", "10000", "points a committed batch"},
    {"clip", 'C', 1, "Q", NULL, "SQ8/SQ4 training: clip each dimension at quantile Q (0.5, 1]"},
    {"threads", 'T', 1, "N", "all cores, or VQS_THREADS", "threads of training and encoding, per rank"},
    {"dim", 'd', 1, "D", NULL, "the dimension of a headerless float32 file (.f32, .raw, .bin)"},
    {0}};

const vqs_cli_help vqs_build_help = {
    .cmd = "build",
    .usage = "--base FILE --spec SPEC --out DIR [--shards S] [--collection NAME] [--metric l2|ip|cos]\n"
             "[--rerank disk|memory|none] [--train-size N] [--batch N] [--clip Q] [--threads N] [--dim D]",
    .about = "Builds S shards of a vector file: shard I holds the I-th of S row ranges (point ids are\n"
             "row numbers) in a data directory DIR/shard-I of its own, with one collection, so that\n"
             "`vqs serve --data DIR/shard-I` serves it. One training (on a seeded sample, over the\n"
             "ranks) is shared by every shard. Under mpirun (a build with -DVQS_MPI=ON) rank r builds shards\n"
             "r, r + P, ...; a shard appears under its name only when every rank has finished.\n",
    .opts = opts,
    .example = "mpirun -n 4 vqs build --base base.fvecs --spec IVF1024,PQ32x8 --metric cos --out shards\n",
};

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st, (void)flag, (void)f;
    return remove(p);
}

typedef struct shard_job {
    const char *name;
    vqs_coll_config cfg;
    vqs_matrix X;
    size_t batch;
    int threads;
    const void *blob;
    size_t blen;
} shard_job;

/* Shard s of S into tmp (a new data directory): rows lo..hi-1. *done:
 * rows written so far by this rank (for the progress line). */
static int build_shard(const shard_job *J, const char *tmp, size_t lo, size_t hi, size_t *done, size_t mine,
                       double t0, int *next_pct)
{
    vqs_catalog *cat = NULL;
    vqs_coll *c = NULL;
    vqs_pid *ids = malloc(sizeof(vqs_pid) * (J->batch ? J->batch : 1));
    float *rows = malloc(sizeof(float) * J->X.d * (J->batch ? J->batch : 1));
    int rc = ids && rows ? 0 : vqs_seterr(VQS_ENOMEM, "build: a batch of %zu", J->batch);
    vqs_catalog_opts co = {.coll = {.nthreads = J->threads}};
    if (!rc && !(rc = vqs_catalog_open(tmp, &co, &cat)) && !(rc = vqs_coll_create(cat, J->name, &J->cfg)) &&
        !(rc = vqs_coll_open(cat, J->name, NULL, &c)))
        rc = vqs_coll_train_from(c, J->blob, J->blen);
    size_t ld = J->X.ld ? J->X.ld : J->X.d;
    for (size_t r = lo; !rc && r < hi; r += J->batch) {
        size_t m = hi - r < J->batch ? hi - r : J->batch;
        for (size_t i = 0; i < m; i++) {
            ids[i] = (vqs_pid){0};
            ids[i].kind = VQS_PID_U64;
            ids[i].u64 = r + i;
            memcpy(rows + i * J->X.d, J->X.x + (r + i) * ld, sizeof(float) * J->X.d);
        }
        rc = vqs_coll_upsert(c, m, ids, rows, NULL);
        *done += m;
        int pct = (int)(100 * *done / (mine ? mine : 1));
        if (!rc && vqs_mpi_rank() == 0 && pct >= *next_pct) {
            double el = vqs_now() - t0, eta = *done < mine ? el / (double)*done * (double)(mine - *done) : 0;
            fprintf(stderr, "vqs build: rank 0 %3d%% of its %zu rows, %.0f s, ETA %.0f s\n", pct, mine, el, eta);
            while (*next_pct <= pct)
                *next_pct += 10;
        }
    }
    vqs_coll_close(c);
    vqs_catalog_close(cat);
    free(ids);
    free(rows);
    return rc;
}

/* The training sample's global rows: ntrain of the n rows (all when ntrain
 * >= n), drawn by selection sampling (Knuth's algorithm S), so they come
 * sorted, without repeats, and the same for every number of ranks; this
 * rank keeps those in [lo, hi) (its rows of the file) in t (malloc'd). */
static int sample_slice(const vqs_matrix *X, size_t ntrain, size_t lo, size_t hi, float **t, size_t *mine)
{
    size_t n = X->n, need = ntrain < n ? ntrain : n, ld = X->ld ? X->ld : X->d, m = 0;
    vqs_rng r;
    vqs_rng_seed(&r, 42);
    /* this rank's count first, to size t: the same draws twice */
    for (int pass = 0; pass < 2; pass++) {
        size_t left = need;
        m = 0;
        for (size_t i = 0; i < n && left && i < hi; i++) {
            if (need < n && vqs_rng_uniform(&r) * (double)(n - i) >= (double)left)
                continue;
            left--;
            if (i < lo)
                continue;
            if (pass)
                memcpy(*t + m * X->d, X->x + i * ld, sizeof(float) * X->d);
            m++;
        }
        if (!pass && !(*t = malloc(sizeof(float) * X->d * (m ? m : 1))))
            return vqs_seterr(VQS_ENOMEM, "build: a training sample of %zu", m);
        vqs_rng_seed(&r, 42);
    }
    *mine = m;
    return 0;
}

/* The spec trained over the ranks (one process: the same routine without a
 * reducer) on the seeded sample; *blob: the trained state. Rank 0 reports
 * the training's errors on the whole sample: the mean squared distance to
 * the nearest IVF centroid and of the codes' reconstructions. */
static int train_over(const char *spec, const vqs_coll_config *cfg, float clip, int threads, size_t ntrain,
                      const vqs_matrix *X, void **blob, size_t *blen)
{
    const vqs_reducer *R = vqs_mpi_reducer();
    int P = vqs_mpi_size(), rank = vqs_mpi_rank();
    size_t lo, hi, nt = ntrain ? ntrain : X->n < 100000 ? X->n : 100000, mine = 0;
    nt = nt > X->n ? X->n : nt;
    vqs_mpi_range(X->n, rank, P, &lo, &hi);
    double t0 = vqs_now();
    float *t = NULL;
    vqs_index *ix = NULL;
    vqs_index_opts io = {.nthreads = threads, .seed = 1234};
    io.codec.sq_clip = clip;
    int rc = sample_slice(X, nt, lo, hi, &t, &mine);
    if (!rc)
        rc = vqs_index_create(spec, X->d, cfg->metric, &io, &ix);
    if ((rc = vqs_mpi_agree(rc)) || (rc = vqs_index_train_over(ix, R, mine, t)))
        goto out;
    double secs = vqs_now() - t0;
    /* the errors on this rank's rows of the sample, summed over the ranks */
    size_t es = vqs_index_entry_size(ix), nlist = 0;
    const float *cent = vqs_index_centroids(ix, &nlist);
    uint8_t *codes = malloc(es * (mine ? mine : 1));
    uint32_t *lists = malloc(sizeof(uint32_t) * (mine ? mine : 1));
    float *rec = malloc(sizeof(float) * X->d * (mine ? mine : 1)), *dist = malloc(sizeof(float) * (mine ? mine : 1));
    int32_t *a = malloc(sizeof(int32_t) * (mine ? mine : 1));
    double err[2] = {0, 0};
    if (!codes || !lists || !rec || !dist || !a)
        rc = vqs_seterr(VQS_ENOMEM, "build: the training errors of %zu rows", mine);
    if (!rc && !(rc = vqs_index_save_trained(ix, blob, blen)) && !(rc = vqs_index_encode(ix, mine, t, codes, lists)) &&
        !(rc = vqs_index_decode(ix, mine, codes, lists, rec))) {
        if (cfg->metric == VQS_METRIC_COS)
            vqs_normalize_rows(mine, X->d, t);
        if (cent && !(rc = vqs_kmeans_assign(threads, mine, X->d, t, nlist, cent, a, dist)))
            for (size_t i = 0; i < mine; i++)
                err[0] += dist[i];
        for (size_t i = 0; i < mine * X->d; i++)
            err[1] += ((double)t[i] - rec[i]) * ((double)t[i] - rec[i]);
    }
    free(codes), free(lists), free(rec), free(dist), free(a);
    if (!(rc = vqs_reduce_sum(R, rc, err, 2)) && rank == 0) { /* agreed: every rank has *blob or none */
        fprintf(stderr, "vqs build: trained %s on %zu of %zu rows over %d rank%s in %.1f s\n", spec, nt, X->n, P,
                P > 1 ? "s" : "", secs);
        if (cent)
            fprintf(stderr, "vqs build: coarse objective %.9g (mean squared distance to the nearest centroid)\n",
                    err[0] / (double)nt);
        fprintf(stderr, "vqs build: code error %.9g (mean squared distance to the reconstruction)\n",
                err[1] / (double)nt);
    }
out:
    vqs_index_free(ix);
    free(t);
    return rc;
}

int vqs_cmd_build(int argc, char **argv)
{
    const char *base = NULL, *spec = NULL, *out = NULL, *name = "vectors", *metric = "l2", *rerank = "disk";
    size_t shards = 0, ntrain = 0, batch = 10000, threads = 0, dim = 0;
    float clip = 0;
    int ch, rc = 0;
    optind = 1;
    while ((ch = vqs_cli_getopt(argc, argv, &vqs_build_help)) != -1) {
        switch (ch) {
        case 'b': base = optarg; break;
        case 's': spec = optarg; break;
        case 'o': out = optarg; break;
        case 'c': name = optarg; break;
        case 'm': metric = optarg; break;
        case 'r': rerank = optarg; break;
        case 'S': rc = vqs_cli_parse_positive(optarg, &shards, "--shards"); break;
        case 't': rc = vqs_cli_parse_positive(optarg, &ntrain, "--train-size"); break;
        case 'B': rc = vqs_cli_parse_positive(optarg, &batch, "--batch"); break;
        case 'C': rc = vqs_cli_parse_clip(optarg, &clip, "--clip"); break;
        case 'T': rc = vqs_cli_parse_size(optarg, &threads, "--threads"); break;
        case 'd': rc = vqs_cli_parse_positive(optarg, &dim, "--dim"); break;
        case 'h': vqs_cli_help_print(stdout, &vqs_build_help); return 0;
        default: return vqs_cli_bad_option(&vqs_build_help);
        }
        if (rc)
            return fail("build", rc);
    }
    if (optind < argc)
        return fail("build", vqs_seterr(VQS_EUSAGE, "unexpected argument '%s'", argv[optind]));
    if (!base || !spec || !out) {
        vqs_cli_usage(stderr, &vqs_build_help);
        return fail("build", vqs_seterr(VQS_EUSAGE, "--base, --spec and --out are required"));
    }
    int P = vqs_mpi_size(), rank = vqs_mpi_rank();
    if (!shards)
        shards = (size_t)P;
    if (shards > MAX_SHARDS)
        return fail("build", vqs_seterr(VQS_EUSAGE, "--shards %zu: at most %d", shards, MAX_SHARDS));
    vqs_coll_config cfg = {0};
    if ((rc = vqs_metric_parse(metric, &cfg.metric)))
        return fail("build", rc);
    if (vqs_rerank_parse(rerank, &cfg.rerank))
        return fail("build", vqs_seterr(VQS_EUSAGE, "--%s", vqs_errdetail()));
    if ((rc = vqs_coll_check_name(name, strlen(name))))
        return fail("build", rc);
    if (strlen(spec) >= sizeof cfg.spec)
        return fail("build", vqs_seterr(VQS_ESPEC, "--spec: too long"));
    strcpy(cfg.spec, spec);
    cfg.sq_clip = clip;

    vqs_vecfile *vf = NULL;
    vqs_matrix X = {0};
    float *owned = NULL;
    void *blob = NULL;
    size_t blen = 0;
    char (*tmp)[4200] = calloc(shards, sizeof *tmp);
    vqs_vecfile_opts vo = {.raw_dim = dim};
    if (!tmp)
        rc = vqs_seterr(VQS_ENOMEM, "build: %zu shards", shards);
    if (!rc && !(rc = vqs_cli_open_matrix_opts(base, &vo, &vf, &X, &owned))) {
        cfg.d = (uint32_t)X.d;
        if ((rc = vqs_coll_config_check(name, &cfg, NULL)) == 0 && X.n < shards)
            rc = vqs_seterr(VQS_EUSAGE, "%s: %zu rows for %zu shards", base, X.n, shards);
    }
    /* the output directory, and no shard of this name there yet */
    if (!rc && rank == 0 && mkdir(out, 0755) && errno != EEXIST)
        rc = vqs_seterr(-errno, "%s: %s", out, strerror(errno));
    if (!(rc = vqs_mpi_agree(rc)))
        for (size_t s = (size_t)rank; !rc && s < shards; s += (size_t)P) {
            char fin[4200];
            struct stat st;
            snprintf(fin, sizeof fin, "%s/shard-%zu", out, s);
            if (stat(fin, &st) == 0)
                rc = vqs_seterr(-EEXIST, "%s exists: remove it, or build into another --out", fin);
        }
    if ((rc = vqs_mpi_agree(rc)))
        goto done;
    double t0 = vqs_now();
    /* every rank holds the same trained state; rank 0's goes to every shard
     * all the same, so that the shards cannot differ */
    if ((rc = train_over(spec, &cfg, clip, (int)threads, ntrain, &X, &blob, &blen)))
        goto done;
    if ((rc = vqs_mpi_agree(vqs_mpi_bcast_bytes(&blob, &blen))))
        goto done;
    shard_job J = {name, cfg, X, batch, (int)threads, blob, blen};
    size_t mine = 0, done_rows = 0;
    int next_pct = 10;
    for (size_t s = (size_t)rank; s < shards; s += (size_t)P) {
        size_t lo, hi;
        vqs_mpi_range(X.n, (int)s, (int)shards, &lo, &hi);
        mine += hi - lo;
    }
    double t1 = vqs_now();
    for (size_t s = (size_t)rank; !rc && s < shards; s += (size_t)P) {
        size_t lo, hi;
        vqs_mpi_range(X.n, (int)s, (int)shards, &lo, &hi);
        snprintf(tmp[s], sizeof tmp[s], "%s/.shard-%zu.XXXXXX", out, s);
        if (!mkdtemp(tmp[s])) {
            rc = vqs_seterr(-errno, "%s: %s", tmp[s], strerror(errno));
            tmp[s][0] = 0;
            break;
        }
        chmod(tmp[s], 0755); /* as a data directory vqs makes (mkdtemp's is 0700) */
        rc = build_shard(&J, tmp[s], lo, hi, &done_rows, mine, t1, &next_pct);
        if (rc)
            rc = vqs_seterr(rc, "shard %zu (rows %zu..%zu): %s", s, lo, hi - 1, vqs_errdetail());
    }
    /* every shard of every rank, or none */
    if (!(rc = vqs_mpi_agree(rc))) {
        for (size_t s = (size_t)rank; !rc && s < shards; s += (size_t)P) {
            char fin[4200];
            snprintf(fin, sizeof fin, "%s/shard-%zu", out, s);
            if (rename(tmp[s], fin))
                rc = vqs_seterr(-errno, "renaming %s to %s: %s", tmp[s], fin, strerror(errno));
            else
                tmp[s][0] = 0;
        }
        rc = vqs_mpi_agree(rc);
    }
    if (!rc && rank == 0)
        fprintf(stderr, "vqs build: %zu rows into %zu shards of '%s' in %.1f s (encoding and writing %.1f s); "
                        "serve one: vqs serve --data %s/shard-0\n",
                X.n, shards, spec, vqs_now() - t0, vqs_now() - t1, out);
done:
    for (size_t s = 0; tmp && s < shards; s++)
        if (tmp[s][0])
            nftw(tmp[s], rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(tmp);
    free(blob);
    free(owned);
    vqs_vecfile_close(vf);
    return rc ? fail("build", rc) : 0;
}
