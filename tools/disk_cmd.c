/*
 * disk_cmd.c: `vqs disk-build` and `vqs disk-search`, the graph index on
 * disk (index/graph_disk.c) from the command line: build a VAMANA<R>,
 * <codec>,RFlat index in memory, write its node file (DiskANN's layout:
 * vector and neighbours per node, plus the codes to reopen it), then
 * search that file with only the codes in memory.
 */
#include "commands.h"

#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const vqs_cli_opt build_opts[] = {
    {"base", 'b', 0, "FILE", NULL, "the vectors (required): .fvecs .bvecs .npy, or raw float32 with --dim"},
    {"spec", 's', 0, "SPEC", NULL, "a VAMANA<R>,<codec>,RFlat spec (required), e.g.\n"
                                   "VAMANA32,PCA128R,PQ64x8,RFlat"},
    {"metric", 'm', 0, "l2|ip|cos", "l2", "the distance"},
    {NULL, 'o', 1, "FILE", NULL, "the node file written (required)"},
    {"threads", 'T', 0, "N", "all cores, or VQS_THREADS", "threads of the build"},
    {"dim", 'M', 0, "D", NULL, "the dimension of a headerless float32 file"},
    {"seed", 'S', 0, "N", "1234", "training seed"},
    {0}};

const vqs_cli_help vqs_disk_build_help = {
    .cmd = "disk-build",
    .usage = "--base FILE --spec VAMANA<R>,<codec>,RFlat -o FILE [--metric l2|ip|cos]\n"
             "[--threads N] [--dim D] [--seed N]",
    .about = "Builds a graph index in memory (ids: the rows, from 0) and writes it to one\n"
             "file: per node its float32 vector, degree and neighbours, packed in\n"
             "4096-byte sectors, then the trained codec, codes and ids. vqs disk-search\n"
             "keeps only the codes in memory and reads the nodes each hop needs.\n",
    .opts = build_opts,
    .example = "vqs disk-build --base base.fvecs --spec VAMANA32,PCA128R,PQ64x8,RFlat -o base.dgraph\n",
};

static const vqs_cli_opt search_opts[] = {
    {"index", 'i', 0, "FILE", NULL, "the node file of vqs disk-build (required)"},
    {"queries", 'q', 0, "FILE", NULL, "the queries (required)"},
    {NULL, 'o', 1, "ids.ivecs", NULL, "the ids, k a query, -1 where fewer are found (required)"},
    {"k", 'k', 0, "K", "10", "results per query, 1..100000"},
    {"ef", 'e', 0, "N", "64", "the search beam"},
    {"beam-width", 'w', 0, "W", "4", "nodes read together per hop, 1..64 (reads in flight per query)"},
    {"oversampling", 'O', 0, "F", "4", "candidates re-scored per result, F >= 1 (their vectors come with\n"
                                       "the reads: up to ef costs no read)"},
    {"cache", 'C', 0, "N", "1024", "nodes nearest the entry kept in memory (0: none)"},
    {"pread", 'P', 0, NULL, NULL, "read with pread, not io_uring"},
    {"dist", 'd', 0, "D.fvecs", NULL, "also the distances"},
    {"threads", 'T', 0, "N", "all cores, or VQS_THREADS", "threads of the search"},
    {"dim", 'M', 0, "D", NULL, "the dimension of a headerless float32 query file"},
    {0}};

const vqs_cli_help vqs_disk_search_help = {
    .cmd = "disk-search",
    .usage = "--index FILE --queries FILE -o ids.ivecs [--k K] [--ef N] [--beam-width W]\n"
             "[--oversampling F] [--cache N] [--pread] [--dist D.fvecs] [--threads N] [--dim D]",
    .about = "The k nearest rows of every query in a node file of vqs disk-build: a beam\n"
             "search over the codes in memory that reads W nodes a hop (O_DIRECT,\n"
             "io_uring), re-scoring its candidates with the vectors those reads brought.\n",
    .opts = search_opts,
    .example = "vqs disk-search --index base.dgraph --queries q.fvecs --k 10 --ef 128 -o ids.ivecs\n",
};

static int fail(const char *cmd, int rc) { return vqs_cli_fail(cmd, rc); }

int vqs_cmd_disk_build(int argc, char **argv)
{
    const char *base = NULL, *spec = NULL, *out = NULL, *metric = "l2";
    vqs_metric m = VQS_METRIC_L2;
    size_t threads = 0, dim = 0, seed = 1234;
    int ch, rc;
    optind = 1;
    while ((ch = vqs_cli_getopt(argc, argv, &vqs_disk_build_help)) != -1) {
        switch (ch) {
        case 'b': base = optarg; break;
        case 's': spec = optarg; break;
        case 'o': out = optarg; break;
        case 'm': metric = optarg; break;
        case 'T':
            if ((rc = vqs_cli_parse_size(optarg, &threads, "--threads")))
                return fail("disk-build", rc);
            break;
        case 'M':
            if ((rc = vqs_cli_parse_positive(optarg, &dim, "--dim")))
                return fail("disk-build", rc);
            break;
        case 'S':
            if ((rc = vqs_cli_parse_size(optarg, &seed, "--seed")))
                return fail("disk-build", rc);
            break;
        case 'h': vqs_cli_help_print(stdout, &vqs_disk_build_help); return 0;
        default: return vqs_cli_bad_option(&vqs_disk_build_help);
        }
    }
    if (!base || !spec || !out) {
        vqs_cli_usage(stderr, &vqs_disk_build_help);
        return fail("disk-build", vqs_seterr(VQS_EUSAGE, "--base, --spec and -o are required"));
    }
    if (vqs_metric_parse(metric, &m))
        return fail("disk-build", vqs_seterr(VQS_EUSAGE, "--metric '%s': l2, ip or cos", metric));
    vqs_vecfile *vf = NULL;
    vqs_matrix X;
    float *owned = NULL, *x = NULL;
    vqs_index *ix = NULL;
    if ((rc = vqs_cli_open_matrix(base, dim, &vf, &X, &owned)))
        goto done;
    if (vqs_index_graph_params(spec, NULL, NULL, NULL) != 1 || !strstr(spec, ",RFlat")) {
        rc = vqs_seterr(VQS_EUSAGE, "--spec '%s': want VAMANA<R>,<codec>,RFlat (the nodes carry the float vectors)",
                        spec);
        goto done;
    }
    const float *rows = X.x;
    if (X.ld != X.d) { /* a strided view: packed rows for the index */
        if (!(x = malloc(sizeof(float) * X.n * X.d + 1))) {
            rc = vqs_seterr(VQS_ENOMEM, "%s: %zu rows", base, X.n);
            goto done;
        }
        for (size_t i = 0; i < X.n; i++)
            memcpy(x + i * X.d, X.x + i * X.ld, sizeof(float) * X.d);
        rows = x;
    }
    vqs_index_opts io = {.nthreads = (int)threads, .seed = seed, .max_train = 100000, .verbose = 1};
    double t0 = vqs_now();
    if ((rc = vqs_index_create(spec, X.d, m, &io, &ix)) || (rc = vqs_index_train(ix, X.n, rows)) ||
        (rc = vqs_index_add(ix, X.n, rows, NULL)))
        goto done;
    double t1 = vqs_now();
    if ((rc = vqs_index_graph_to_disk(ix, out, NULL)))
        goto done;
    struct stat st;
    double gb = stat(out, &st) ? 0 : (double)st.st_size / 1e9;
    fprintf(stderr, "vqs disk-build: %zu x %zu (%s), %s: built in %.1f s, %s: %.2f GB; %.1f bytes a vector "
            "in memory when searched (float32: %zu)\n",
            X.n, X.d, vqs_metric_name(m), spec, t1 - t0, out, gb, vqs_index_bytes_per_vector(ix, NULL), 4 * X.d);
done:
    vqs_index_free(ix);
    free(x);
    free(owned);
    vqs_vecfile_close(vf);
    return rc ? fail("disk-build", rc) : 0;
}

int vqs_cmd_disk_search(int argc, char **argv)
{
    const char *path = NULL, *qpath = NULL, *opath = NULL, *dpath = NULL;
    size_t k = 10, ef = 0, bw = 0, threads = 0, qdim = 0, cache = 1024;
    double os = 0;
    int use_pread = 0, ch, rc;
    optind = 1;
    while ((ch = vqs_cli_getopt(argc, argv, &vqs_disk_search_help)) != -1) {
        switch (ch) {
        case 'i': path = optarg; break;
        case 'q': qpath = optarg; break;
        case 'o': opath = optarg; break;
        case 'd': dpath = optarg; break;
        case 'P': use_pread = 1; break;
        case 'k':
            if ((rc = vqs_cli_parse_size(optarg, &k, "--k")))
                return fail("disk-search", rc);
            break;
        case 'e':
            if ((rc = vqs_cli_parse_positive(optarg, &ef, "--ef")))
                return fail("disk-search", rc);
            break;
        case 'w':
            if ((rc = vqs_cli_parse_positive(optarg, &bw, "--beam-width")))
                return fail("disk-search", rc);
            if (bw > 64)
                return fail("disk-search", vqs_seterr(VQS_EUSAGE, "--beam-width %zu: 1..64", bw));
            break;
        case 'C':
            if ((rc = vqs_cli_parse_size(optarg, &cache, "--cache")))
                return fail("disk-search", rc);
            break;
        case 'T':
            if ((rc = vqs_cli_parse_size(optarg, &threads, "--threads")))
                return fail("disk-search", rc);
            break;
        case 'O': {
            char *e;
            os = strtod(optarg, &e);
            if (*e || !(os >= 1 && os <= 1e6))
                return fail("disk-search", vqs_seterr(VQS_EUSAGE, "--oversampling '%s': want a number >= 1", optarg));
            break;
        }
        case 'M':
            if ((rc = vqs_cli_parse_positive(optarg, &qdim, "--dim")))
                return fail("disk-search", rc);
            break;
        case 'h': vqs_cli_help_print(stdout, &vqs_disk_search_help); return 0;
        default: return vqs_cli_bad_option(&vqs_disk_search_help);
        }
    }
    if (!path || !qpath || !opath || k == 0 || k > 100000) {
        vqs_cli_usage(stderr, &vqs_disk_search_help);
        return fail("disk-search", vqs_seterr(VQS_EUSAGE, "--index, --queries and -o are required; 1 <= k <= 100000"));
    }
    vqs_vecfile *vf = NULL;
    vqs_matrix Q;
    float *owned = NULL, *qc = NULL, *dist = NULL;
    int64_t *ids = NULL;
    int32_t *out32 = NULL;
    vqs_index *ix = NULL;
    vqs_graph_disk_opts go = {.cache_nodes = cache ? cache : (size_t)-1, .pread = use_pread};
    vqs_index_opts io = {.nthreads = (int)threads};
    double t0 = vqs_now();
    if ((rc = vqs_cli_open_matrix(qpath, qdim, &vf, &Q, &owned)) || (rc = vqs_index_open_disk(path, &io, &go, &ix)))
        goto out;
    double topen = vqs_now() - t0;
    if (Q.d != vqs_index_d(ix)) {
        rc = vqs_seterr(VQS_EDIMMISMATCH, "%s is %zu-d, %s is %zu-d", qpath, Q.d, path, vqs_index_d(ix));
        goto out;
    }
    qc = malloc(sizeof(float) * Q.n * Q.d + 1);
    ids = malloc(sizeof(int64_t) * Q.n * k + 1);
    dist = malloc(sizeof(float) * Q.n * k + 1);
    out32 = malloc(sizeof(int32_t) * Q.n * k + 1);
    if (!qc || !ids || !dist || !out32) {
        rc = vqs_seterr(VQS_ENOMEM, "%zu queries", Q.n);
        goto out;
    }
    for (size_t i = 0; i < Q.n; i++)
        memcpy(qc + i * Q.d, Q.x + i * Q.ld, sizeof(float) * Q.d);
    vqs_search_params sp = {.ef = ef, .beam_width = bw, .oversampling = (float)os};
    uint64_t r0 = vqs_index_graph_disk_reads(ix);
    t0 = vqs_now();
    if ((rc = vqs_index_search(ix, &sp, Q.n, qc, k, ids, dist)))
        goto out;
    double dt = vqs_now() - t0;
    uint64_t reads = vqs_index_graph_disk_reads(ix) - r0;
    for (size_t i = 0; i < Q.n * k; i++) {
        if (ids[i] > INT32_MAX) {
            rc = vqs_seterr(VQS_ERANGE, "id %lld does not fit an ivecs file (int32)", (long long)ids[i]);
            goto out;
        }
        out32[i] = (int32_t)ids[i];
    }
    if ((rc = vqs_write_ivecs(opath, Q.n, k, out32)) || (dpath && (rc = vqs_write_fvecs(dpath, Q.n, k, dist))))
        goto out;
    fprintf(stderr, "vqs disk-search: %zu queries, k = %zu, %.0f queries/s, %.1f nodes read a query (%s); "
            "opened in %.2f s, %.1f bytes a vector in memory\n",
            Q.n, k, (double)Q.n / (dt + 1e-9), Q.n ? (double)reads / (double)Q.n : 0.0,
            vqs_index_graph_disk_backend(ix), topen, vqs_index_bytes_per_vector(ix, NULL));
out:
    vqs_index_free(ix);
    free(qc);
    free(ids);
    free(dist);
    free(out32);
    free(owned);
    vqs_vecfile_close(vf);
    return rc ? fail("disk-search", rc) : 0;
}
