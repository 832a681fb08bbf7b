/*
 * build_cmd.c: `vqs build`, a vector file into S shards, each an ordinary
 * vqs data directory holding one collection (`vqs serve --data DIR/shard-I`
 * serves it), in one process or over the ranks of `mpirun -n P` (a build
 * with -DVQS_MPI=ON, tools/mpi.c).
 *
 * Design decisions:
 * - One training for every shard: rank 0 trains the spec on a seeded
 *   sample of the whole file (as `vqs import` samples) and broadcasts the
 *   trained state (vqs_index_save_trained); every shard stores it
 *   (vqs_coll_train_from). So the shards' codes are comparable, a query's
 *   distances from different shards can be merged, and the shards a job of
 *   P ranks writes are those one process writes (tested).
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
 * Not yet: the training itself over the ranks (k-means with an allreduce of
 *   centroid sums, issue 20); rank 0 trains alone, on a sample bounded by
 *   --train-size.
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
             "`vqs serve --data DIR/shard-I` serves it. One training (rank 0, a seeded sample) is\n"
             "shared by every shard. Under mpirun (a build with -DVQS_MPI=ON) rank r builds shards\n"
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
    if (rank == 0) { /* one training, on a seeded sample of every row */
        size_t nt = ntrain ? ntrain : X.n < 100000 ? X.n : 100000;
        nt = nt > X.n ? X.n : nt;
        float *t = malloc(sizeof(float) * nt * X.d + 1);
        vqs_index *ix = NULL;
        vqs_index_opts io = {.nthreads = (int)threads, .seed = 1234};
        io.codec.sq_clip = clip;
        if (!t)
            rc = vqs_seterr(VQS_ENOMEM, "build: a training sample of %zu", nt);
        vqs_rng r;
        vqs_rng_seed(&r, 42);
        size_t ld = X.ld ? X.ld : X.d;
        for (size_t i = 0; !rc && i < nt; i++) {
            size_t row = nt == X.n ? i : (size_t)(vqs_rng_next(&r) % X.n);
            memcpy(t + i * X.d, X.x + row * ld, sizeof(float) * X.d);
        }
        if (!rc && !(rc = vqs_index_create(spec, X.d, cfg.metric, &io, &ix)) && !(rc = vqs_index_train(ix, nt, t)))
            rc = vqs_index_save_trained(ix, &blob, &blen);
        vqs_index_free(ix);
        free(t);
        if (!rc)
            fprintf(stderr, "vqs build: trained %s on %zu of %zu rows in %.1f s; %zu shards over %d rank%s\n", spec,
                    nt, X.n, vqs_now() - t0, shards, P, P > 1 ? "s" : "");
    }
    if ((rc = vqs_mpi_agree(rc)) || (rc = vqs_mpi_agree(vqs_mpi_bcast_bytes(&blob, &blen))))
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
