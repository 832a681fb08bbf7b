/*
 * store_cmds.c: the storage subcommands of the vqs tool.
 *
 *   vqs import --data DIR --collection NAME --spec S --metric l2|ip|cos --vectors FILE
 *              [--dim D] [--payloads FILE.jsonl] [--batch N] [--train-size N]
 *              [--rerank disk|memory|none] [--clip Q]
 *   vqs search --data DIR --collection NAME --queries FILE --k K [--oversampling F]
 *              [--nprobe N] [--ef N] [--no-rerank] [--dim D] -o ids.ivecs [--dist D.fvecs]
 *   vqs info   --data DIR [--collection NAME]
 *   vqs drop   --data DIR --collection NAME
 *
 * import prints one line per committed batch, "committed N points, total T",
 * flushed, after the batch is durable: a caller that reads the line knows
 * those points survive a crash. Point ids are the row numbers of the vector
 * file (u64), or a JSONL file's "id" fields (integers or UUIDs). Payloads come
 * from --payloads (one JSON object per line, as many as the rows) or from a
 * JSONL vector file's other fields, not both (refused: one source would be
 * dropped); all are checked before anything is written.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
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
#include "vqs_store.h"

#define fail vqs_cli_fail

static long long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* Reads a JSONL file: n lines, each a JSON object, into n malloc'd strings. */
static int read_payloads(const char *path, size_t n, char ***out)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return vqs_seterr(-errno, "%s: %s", path, strerror(errno));
    char **p = calloc(n ? n : 1, sizeof *p);
    char *line = NULL;
    size_t cap = 0, i = 0;
    ssize_t len;
    int rc = 0;
    if (!p) {
        fclose(f);
        return vqs_seterr(VQS_ENOMEM, "%s", path);
    }
    while ((len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        if (i >= n) {
            rc = vqs_seterr(VQS_EINVAL, "%s: line %zu: more payload lines than the %zu vectors", path, i + 1, n);
            break;
        }
        json_error_t je;
        json_t *j = json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES, &je);
        if (!j || !json_is_object(j)) {
            rc = vqs_seterr(VQS_EINVAL, "%s: line %zu: %s", path, i + 1,
                            j ? "not a JSON object" : je.text);
            json_decref(j);
            break;
        }
        p[i++] = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (!p[i - 1]) {
            rc = vqs_seterr(VQS_ENOMEM, "%s: line %zu", path, i);
            break;
        }
    }
    free(line);
    fclose(f);
    if (!rc && i != n)
        rc = vqs_seterr(VQS_EINVAL, "%s: %zu payload lines for %zu vectors", path, i, n);
    if (rc) {
        for (size_t j = 0; j < n; j++)
            free(p[j]);
        free(p);
        return rc;
    }
    *out = p;
    return 0;
}

static const vqs_cli_opt import_opts[] = {
    {"data", 'D', 0, "DIR", NULL, "the data directory (required; created if missing)"},
    {"collection", 'c', 0, "NAME", NULL, "the collection (required; created if missing)"},
    {"vectors", 'v', 0, "FILE", NULL, "the vectors (required): .fvecs .ivecs .bvecs .npy .jsonl/.ndjson,\n"
                                      "or raw float32 (.f32/.raw/.bin) with --dim"},
    {"spec", 's', 0, "S", NULL, "the index spec of a new collection (required to create one), e.g.\n"
                                "SQ8, IVF256,PQ32x4, PCA50%,SQ8"},
    {"metric", 'm', 0, "l2|ip|cos", "l2", "the distance; an existing collection must have the same"},
    {"dim", 'd', 0, "D", NULL, "the dimension of a headerless float32 file (.f32, .raw, .bin)"},
    {"payloads", 'p', 0, "FILE.jsonl", NULL, "one JSON object a line, as many as the vectors (not with a\n"
                                             "JSONL --vectors file that has payload fields)"},
    {"batch", 'b', 0, "N", "1000", "points a committed (durable) batch, > 0"},
    {"train-size", 't', 0, "N", "all rows, at most 100000",
     "rows of the seeded sample a new collection's codec is trained on"},
    {"rerank", 'r', 0, "disk|memory|none", "disk", "how a new collection re-scores candidates: from the vector\n"
                                                   "file on disk, from memory, or not at all"},
    {"threads", 'T', 0, "N", "all cores, or VQS_THREADS", "threads of training and encoding"},
    {"clip", 'C', 0, "Q", "min/max, SQ4's chosen from the data",
     "SQ8/SQ4 ranges from the Q and 1 - Q quantiles per dimension,\nQ in (0.5, 1], 1 = min/max; stored with a "
     "new collection"},
    {0}};

const vqs_cli_help vqs_import_help = {
    .cmd = "import",
    .usage = "--data DIR --collection NAME --spec S --metric l2|ip|cos --vectors FILE\n"
             "[--dim D] [--payloads FILE.jsonl] [--batch N] [--train-size N]\n"
             "[--rerank disk|memory|none] [--threads N] [--clip Q]",
    .about = "Bulk-loads a vector file into a collection, creating it if missing (its codec is\n"
             "then trained on a seeded sample first). Prints \"committed N points, total T\"\n"
             "after each batch is durable. A .jsonl/.ndjson --vectors file ({\"id\": 7,\n"
             "\"vector\": [...], ...} a line) gives the point ids (else the row numbers are)\n"
             "and, in its other fields, the payloads. A writer: refused while a server or\n"
             "another import holds the directory.\n",
    .opts = import_opts,
    .example = "vqs import --data /var/lib/vqs --collection docs --spec SQ8 --metric cos \\\n"
               "  --vectors embeddings.npy --payloads docs.jsonl\n",
};

int vqs_cmd_import(int argc, char **argv)
{
    const char *dir = NULL, *name = NULL, *spec = NULL, *metric = "l2", *vec = NULL, *pay = NULL,
               *rerank = "disk";
    size_t batch = 1000, ntrain = 0, threads = 0, dim = 0;
    float clip = 0;
    int ch, rc;
    optind = 1;
    while ((ch = vqs_cli_getopt(argc, argv, &vqs_import_help)) != -1) {
        switch (ch) {
        case 'D': dir = optarg; break;
        case 'c': name = optarg; break;
        case 's': spec = optarg; break;
        case 'm': metric = optarg; break;
        case 'v': vec = optarg; break;
        case 'p': pay = optarg; break;
        case 'r': rerank = optarg; break;
        case 'b':
            if ((rc = vqs_cli_parse_size(optarg, &batch, "--batch")))
                return fail("import", rc);
            break;
        case 't':
            if ((rc = vqs_cli_parse_size(optarg, &ntrain, "--train-size")))
                return fail("import", rc);
            break;
        case 'T':
            if ((rc = vqs_cli_parse_size(optarg, &threads, "--threads")))
                return fail("import", rc);
            break;
        case 'd':
            if ((rc = vqs_cli_parse_positive(optarg, &dim, "--dim")))
                return fail("import", rc);
            break;
        case 'C':
            if ((rc = vqs_cli_parse_clip(optarg, &clip, "--clip")))
                return fail("import", rc);
            break;
        case 'h': vqs_cli_help_print(stdout, &vqs_import_help); return 0;
        default: return vqs_cli_bad_option(&vqs_import_help);
        }
    }
    if (!dir || !name || !vec || batch == 0) {
        vqs_cli_usage(stderr, &vqs_import_help);
        return fail("import", vqs_seterr(VQS_EUSAGE, "--data, --collection and --vectors are required, --batch > 0"));
    }
    vqs_metric m;
    if ((rc = vqs_metric_parse(metric, &m)))
        return fail("import", rc);
    vqs_rerank rr;
    if (vqs_rerank_parse(rerank, &rr))
        return fail("import", vqs_seterr(VQS_EUSAGE, "--%s", vqs_errdetail()));
    vqs_vecfile *vf = NULL;
    vqs_matrix X;
    float *owned = NULL;
    char **payloads = NULL;
    vqs_catalog *cat = NULL;
    vqs_coll *c = NULL;
    vqs_pid *ids = NULL;
    const char **pbatch = NULL; /* a batch's payloads from the vector file (JSONL) */
    vqs_vecfile_opts vo = {.raw_dim = dim, .keep_payload = 1};
    if ((rc = vqs_cli_open_matrix_opts(vec, &vo, &vf, &X, &owned)))
        goto out;
    const vqs_pid *fids = vqs_vecfile_pids(vf);
    int fpay = 0;
    for (size_t i = 0; i < X.n && !fpay; i++)
        fpay = vqs_vecfile_payload(vf, i) != NULL;
    if (pay && fpay) {
        rc = vqs_seterr(VQS_EUSAGE, "%s carries payload fields besides \"vector\" and \"id\", and --payloads "
                        "gives payloads too: keep one of them", vec);
        goto out;
    }
    if (pay && (rc = read_payloads(pay, X.n, &payloads)))
        goto out;
    if ((rc = vqs_catalog_open(dir, NULL, &cat)))
        goto out;
    vqs_coll_info info;
    rc = vqs_coll_describe(cat, name, &info);
    if (rc == VQS_ENOTFOUND) {
        if (!spec) {
            rc = vqs_seterr(VQS_EUSAGE, "collection '%s' does not exist: --spec is required to create it", name);
            goto out;
        }
        vqs_coll_config cfg = {0}; /* nprobe, oversampling: the collection defaults */
        cfg.d = (uint32_t)X.d;
        cfg.metric = m;
        if (strlen(spec) >= sizeof cfg.spec) {
            rc = vqs_seterr(VQS_ESPEC, "--spec: too long");
            goto out;
        }
        strcpy(cfg.spec, spec);
        cfg.rerank = rr;
        cfg.sq_clip = clip;
        /* checks the spec before creating anything */
        if ((rc = vqs_coll_create(cat, name, &cfg)))
            goto out;
    } else if (rc) {
        goto out;
    } else if (info.cfg.d != X.d || info.cfg.metric != m) {
        rc = vqs_seterr(VQS_EINVAL, "collection '%s' is %u-d %s; %s is %zu-d and --metric is %s", name,
                        info.cfg.d, vqs_metric_name(info.cfg.metric), vec, X.d, vqs_metric_name(m));
        goto out;
    } else if (clip != 0 && clip != info.cfg.sq_clip) {
        char had[48] = "the default ranges";
        if (info.cfg.sq_clip)
            snprintf(had, sizeof had, "--clip %g", (double)info.cfg.sq_clip);
        rc = vqs_seterr(VQS_EUSAGE, "--clip %g: collection '%s' was created with %s (the clip is set when a "
                        "collection is created)", (double)clip, name, had);
        goto out;
    }
    vqs_coll_opts co = {.nthreads = (int)threads};
    if ((rc = vqs_coll_open(cat, name, &co, &c)))
        goto out;
    if (vqs_coll_nvectors(c) > 1) { /* before anything is trained or written */
        rc = vqs_seterr(VQS_EUSAGE, "collection '%s' has %zu named vectors; vqs import fills a collection of one "
                        "vector (upsert points with all their vectors through the HTTP API)", name,
                        vqs_coll_nvectors(c));
        goto out;
    }
    if (!vqs_coll_is_trained(c)) {
        /* a seeded sample, contiguous copy */
        size_t nt = ntrain ? ntrain : X.n < 100000 ? X.n : 100000;
        if (nt > X.n)
            nt = X.n;
        float *t = malloc(sizeof(float) * nt * X.d + 1);
        if (!t) {
            rc = vqs_seterr(VQS_ENOMEM, "training sample");
            goto out;
        }
        vqs_rng r;
        vqs_rng_seed(&r, 42);
        for (size_t i = 0; i < nt; i++) {
            size_t row = nt == X.n ? i : (size_t)(vqs_rng_next(&r) % X.n);
            memcpy(t + i * X.d, X.x + row * X.ld, sizeof(float) * X.d);
        }
        double t0 = vqs_now();
        rc = vqs_coll_train(c, nt, t);
        free(t);
        if (rc)
            goto out;
        fprintf(stderr, "vqs import: trained '%s' on %zu vectors in %.2f s\n", vqs_coll_config_of(c)->spec, nt,
                vqs_now() - t0);
    }
    ids = malloc(sizeof(vqs_pid) * batch);
    pbatch = fpay ? malloc(sizeof(char *) * batch) : NULL;
    float *buf = X.ld == X.d ? NULL : malloc(sizeof(float) * batch * X.d);
    if (!ids || (fpay && !pbatch) || (X.ld != X.d && !buf)) {
        free(buf);
        rc = vqs_seterr(VQS_ENOMEM, "batch of %zu", batch);
        goto out;
    }
    double t0 = vqs_now();
    for (size_t b0 = 0; b0 < X.n; b0 += batch) {
        size_t nb = X.n - b0 < batch ? X.n - b0 : batch;
        for (size_t i = 0; i < nb; i++) {
            if (fids) {
                ids[i] = fids[b0 + i];
            } else {
                memset(&ids[i], 0, sizeof ids[i]);
                ids[i].kind = VQS_PID_U64;
                ids[i].u64 = b0 + i;
            }
            if (pbatch)
                pbatch[i] = vqs_vecfile_payload(vf, b0 + i);
        }
        const char *const *pb = payloads ? (const char *const *)payloads + b0 : pbatch;
        const float *xb = X.x + b0 * X.ld;
        if (buf) {
            for (size_t i = 0; i < nb; i++)
                memcpy(buf + i * X.d, X.x + (b0 + i) * X.ld, sizeof(float) * X.d);
            xb = buf;
        }
        if ((rc = vqs_coll_upsert(c, nb, ids, xb, pb))) {
            vqs_seterr(rc, "rows %zu..%zu: %s", b0, b0 + nb - 1, vqs_errdetail());
            break;
        }
        printf("committed %zu points, total %llu\n", nb, (unsigned long long)vqs_coll_count(c));
        fflush(stdout);
    }
    free(buf);
    if (!rc)
        fprintf(stderr, "vqs import: %zu points in %.2f s (%.0f points/s)\n", X.n, vqs_now() - t0,
                X.n / (vqs_now() - t0 + 1e-9));
out:
    if (payloads)
        for (size_t i = 0; i < X.n; i++)
            free(payloads[i]);
    free(payloads);
    free(pbatch);
    free(ids);
    vqs_coll_close(c);
    vqs_catalog_close(cat);
    free(owned);
    vqs_vecfile_close(vf);
    return rc ? fail("import", rc) : 0;
}

static const vqs_cli_opt search_opts[] = {
    {"data", 'D', 0, "DIR", NULL, "the data directory (required)"},
    {"collection", 'c', 0, "NAME", NULL, "the collection (required)"},
    {"queries", 'q', 0, "FILE", NULL, "the queries (required): .fvecs .ivecs .bvecs .npy .jsonl/.ndjson,\n"
                                      "or raw float32 (.f32/.raw/.bin) with --dim"},
    {NULL, 'o', 1, "ids.ivecs", NULL, "the point ids, k a query, -1 where fewer are found (required;\n"
                                      "ids must fit int32)"},
    {"k", 'k', 0, "K", "10", "results per query, 1..100000"},
    {"nprobe", 'n', 0, "N", "the collection's, 16 from vqs import", "IVF lists probed"},
    {"ef", 'e', 0, "N", "64", "the search beam of a graph collection (a VAMANA spec)"},
    {"oversampling", 'O', 0, "F", "the collection's, 4 from vqs import", "candidates re-scored per result, F >= 1"},
    {"no-rerank", 'R', 0, NULL, NULL, "the first stage's order, no re-scoring"},
    {"dist", 'd', 0, "D.fvecs", NULL, "also the distances"},
    {"threads", 'T', 0, "N", "all cores, or VQS_THREADS", "threads of the search"},
    {"dim", 'M', 0, "D", NULL, "the dimension of a headerless float32 query file (.f32, .raw, .bin)"},
    {"vector", 'V', 0, "NAME", "the unnamed vector", "the named vector searched (required for a collection of\n"
                                                     "named vectors)"},
    {0}};

const vqs_cli_help vqs_search_help = {
    .cmd = "search",
    .usage = "--data DIR --collection NAME --queries FILE --k K -o ids.ivecs\n"
             "[--oversampling F] [--nprobe N] [--ef N] [--no-rerank] [--dist D.fvecs]\n"
             "[--threads N] [--dim D] [--vector NAME]",
    .about = "The k nearest points of every query in a collection; candidates are re-scored\n"
             "from the vector file on disk (or in memory: vqs import --rerank). Read-only:\n"
             "works beside a server or an import writing the same directory.\n",
    .opts = search_opts,
    .example = "vqs search --data /var/lib/vqs --collection docs --queries q.npy --k 10 -o ids.ivecs\n",
};

int vqs_cmd_search(int argc, char **argv)
{
    const char *dir = NULL, *name = NULL, *qpath = NULL, *opath = NULL, *dpath = NULL, *vname = NULL;
    size_t k = 10, nprobe = 0, ef = 0, threads = 0, qdim = 0;
    double os = 0;
    int norerank = 0;
    int ch, rc;
    optind = 1;
    while ((ch = vqs_cli_getopt(argc, argv, &vqs_search_help)) != -1) {
        switch (ch) {
        case 'D': dir = optarg; break;
        case 'c': name = optarg; break;
        case 'q': qpath = optarg; break;
        case 'o': opath = optarg; break;
        case 'd': dpath = optarg; break;
        case 'R': norerank = 1; break;
        case 'V': vname = optarg; break;
        case 'k':
            if ((rc = vqs_cli_parse_size(optarg, &k, "--k")))
                return fail("search", rc);
            break;
        case 'n':
            if ((rc = vqs_cli_parse_size(optarg, &nprobe, "--nprobe")))
                return fail("search", rc);
            break;
        case 'e':
            if ((rc = vqs_cli_parse_positive(optarg, &ef, "--ef")))
                return fail("search", rc);
            break;
        case 'T':
            if ((rc = vqs_cli_parse_size(optarg, &threads, "--threads")))
                return fail("search", rc);
            break;
        case 'O': {
            char *e;
            os = strtod(optarg, &e);
            if (*e || !(os >= 1 && os <= 1e6))
                return fail("search", vqs_seterr(VQS_EUSAGE, "--oversampling '%s': want a number >= 1", optarg));
            break;
        }
        case 'M':
            if ((rc = vqs_cli_parse_positive(optarg, &qdim, "--dim")))
                return fail("search", rc);
            break;
        case 'h': vqs_cli_help_print(stdout, &vqs_search_help); return 0;
        default: return vqs_cli_bad_option(&vqs_search_help);
        }
    }
    if (!dir || !name || !qpath || !opath || k == 0 || k > 100000) {
        vqs_cli_usage(stderr, &vqs_search_help);
        return fail("search", vqs_seterr(VQS_EUSAGE, "--data, --collection, --queries and -o are required; 1 <= k <= 100000"));
    }
    vqs_vecfile *vf = NULL;
    vqs_matrix Q;
    float *owned = NULL, *qc = NULL, *dist = NULL;
    vqs_catalog *cat = NULL;
    vqs_coll *c = NULL;
    vqs_coll_hit *hits = NULL;
    int32_t *out32 = NULL;
    vqs_catalog_opts cato = {.read_only = 1}; /* works beside a server writing the same directory */
    if ((rc = vqs_cli_open_matrix(qpath, qdim, &vf, &Q, &owned)) || (rc = vqs_catalog_open(dir, &cato, &cat)))
        goto out;
    vqs_coll_opts co = {.nthreads = (int)threads};
    if ((rc = vqs_coll_open(cat, name, &co, &c)))
        goto out;
    size_t vi = 0;
    if ((rc = vqs_coll_vector_find(c, vname, &vi))) {
        rc = vqs_seterr(VQS_EUSAGE, "--vector: %s", vqs_errdetail());
        goto out;
    }
    vqs_coll *vc = vqs_coll_vector(c, vi);
    if (Q.d != vqs_coll_d(vc)) {
        rc = vqs_seterr(VQS_EDIMMISMATCH, "%s is %zu-d, collection '%s'%s%s%s is %zu-d", qpath, Q.d, name,
                        vname ? " vector '" : "", vname ? vname : "", vname ? "'" : "", vqs_coll_d(vc));
        goto out;
    }
    qc = malloc(sizeof(float) * Q.n * Q.d + 1);
    hits = malloc(sizeof(vqs_coll_hit) * Q.n * k + 1);
    dist = malloc(sizeof(float) * Q.n * k + 1);
    out32 = malloc(sizeof(int32_t) * Q.n * k + 1);
    if (!qc || !hits || !dist || !out32) {
        rc = vqs_seterr(VQS_ENOMEM, "%zu queries", Q.n);
        goto out;
    }
    for (size_t i = 0; i < Q.n; i++)
        memcpy(qc + i * Q.d, Q.x + i * Q.ld, sizeof(float) * Q.d);
    vqs_coll_search_params sp = {.nprobe = nprobe, .ef = ef, .oversampling = (float)os,
                                 .rerank = norerank ? VQS_RERANK_OFF : VQS_RERANK_DEFAULT};
    double t0 = vqs_now();
    if ((rc = vqs_coll_search(vc, &sp, Q.n, qc, k, hits)))
        goto out;
    double dt = vqs_now() - t0;
    for (size_t i = 0; i < Q.n * k; i++) {
        const vqs_pid *id = &hits[i].id;
        dist[i] = hits[i].dist;
        if (id->kind == 0) {
            out32[i] = -1;
        } else if (id->kind != VQS_PID_U64 || id->u64 > INT32_MAX) {
            char b[40];
            vqs_pid_format(id, b);
            rc = vqs_seterr(VQS_ERANGE, "point id %s does not fit an ivecs file (int32)", b);
            goto out;
        } else {
            out32[i] = (int32_t)id->u64;
        }
    }
    if ((rc = vqs_write_ivecs(opath, Q.n, k, out32)) || (dpath && (rc = vqs_write_fvecs(dpath, Q.n, k, dist))))
        goto out;
    fprintf(stderr, "vqs search: %zu queries, k = %zu, %.0f queries/s, re-scoring: %s\n", Q.n, k,
            Q.n / (dt + 1e-9), norerank ? "off" : vqs_coll_rerank_backend(vc));
out:
    free(qc);
    free(hits); /* no payloads asked for */
    free(dist);
    free(out32);
    vqs_coll_close(c);
    vqs_catalog_close(cat);
    free(owned);
    vqs_vecfile_close(vf);
    return rc ? fail("search", rc) : 0;
}

static int info_vector(vqs_catalog *cat, const char *name, size_t i, const char *vname);

/* a line per collection, or per named vector of it */
static int info_one(vqs_catalog *cat, const char *name)
{
    char **vn = NULL;
    size_t nv = 0;
    int rc = vqs_coll_describe_vectors(cat, name, &vn, &nv);
    for (size_t i = 0; !rc && i < (nv ? nv : 1); i++)
        rc = info_vector(cat, name, i, nv ? vn[i] : NULL);
    vqs_db_vectors_free(vn, nv);
    return rc;
}

static int info_vector(vqs_catalog *cat, const char *name, size_t i, const char *vname)
{
    vqs_coll_info in;
    int rc = vqs_coll_describe_vector(cat, name, i, &in);
    if (rc)
        return rc;
    char label[160];
    if (vname)
        snprintf(label, sizeof label, "%s, vector '%s'", name, vname);
    else
        snprintf(label, sizeof label, "%s", name);
    /* bytes per vector of the codes, from the trained state if there is one */
    double bpv = in.count ? (double)in.code_bytes / (double)(in.count + in.deleted) : 0;
    char clip[32] = "";
    if (in.cfg.sq_clip)
        snprintf(clip, sizeof clip, ", clip %g", (double)in.cfg.sq_clip);
    printf("%s: %llu points, %u-d %s, spec %s%s, rerank %s, %s, codes %.1f bytes/vector "
           "(%.1fx smaller than float32), codes %.1f MB, payloads %.1f MB, vector file %.1f MB, "
           "%llu deleted awaiting compaction\n",
           label, (unsigned long long)in.count, in.cfg.d, vqs_metric_name(in.cfg.metric),
           in.cfg.spec, clip, vqs_rerank_name(in.cfg.rerank),
           in.trained ? "trained" : "untrained", bpv, bpv > 0 ? 4.0 * in.cfg.d / bpv : 0.0,
           in.code_bytes / 1e6, in.payload_bytes / 1e6, in.vector_bytes / 1e6,
           (unsigned long long)in.deleted);
    return 0;
}

static const vqs_cli_opt info_opts[] = {
    {"data", 'D', 0, "DIR", NULL, "the data directory (required)"},
    {"collection", 'c', 0, "NAME", "every collection", "only this collection"},
    {0}};

const vqs_cli_help vqs_info_help = {
    .cmd = "info",
    .usage = "--data DIR [--collection NAME]",
    .about = "The collections of a data directory, a line each: points, dimension, metric,\n"
             "spec, re-scoring, bytes per vector and compression, sizes of codes, payloads and\n"
             "vector file, deleted points awaiting compaction; without --collection first the\n"
             "directory's LMDB file. Read-only: works beside a server or an import writing the\n"
             "same directory.\n",
    .opts = info_opts,
    .example = "vqs info --data /var/lib/vqs\n",
};

int vqs_cmd_info(int argc, char **argv)
{
    const char *dir = NULL, *name = NULL;
    int ch, rc;
    optind = 1;
    while ((ch = vqs_cli_getopt(argc, argv, &vqs_info_help)) != -1) {
        if (ch == 'D')
            dir = optarg;
        else if (ch == 'c')
            name = optarg;
        else if (ch == 'h') {
            vqs_cli_help_print(stdout, &vqs_info_help);
            return 0;
        } else
            return vqs_cli_bad_option(&vqs_info_help);
    }
    if (!dir) {
        vqs_cli_usage(stderr, &vqs_info_help);
        return fail("info", vqs_seterr(VQS_EUSAGE, "--data is required"));
    }
    struct stat st;
    if (stat(dir, &st) != 0)
        return fail("info", vqs_seterr(-errno, "%s: %s", dir, strerror(errno)));
    vqs_catalog *cat = NULL;
    vqs_catalog_opts o = {.read_only = 1};
    if ((rc = vqs_catalog_open(dir, &o, &cat)))
        return fail("info", rc);
    char mp[4200];
    snprintf(mp, sizeof mp, "%s/vqs.mdb", dir);
    if (name) {
        rc = info_one(cat, name);
    } else {
        char **names = NULL;
        size_t n = 0;
        if (!(rc = vqs_catalog_list(cat, &names, &n))) {
            printf("%s: %zu collection%s, LMDB file %.1f MB (map %.1f MB)\n", dir, n, n == 1 ? "" : "s",
                   file_size(mp) / 1e6, vqs_catalog_map_size(cat) / 1e6);
            for (size_t i = 0; i < n && !rc; i++)
                rc = info_one(cat, names[i]);
            vqs_catalog_list_free(names, n);
        }
    }
    vqs_catalog_close(cat);
    return rc ? fail("info", rc) : 0;
}

static const vqs_cli_opt drop_opts[] = {
    {"data", 'D', 0, "DIR", NULL, "the data directory (required)"},
    {"collection", 'c', 0, "NAME", NULL, "the collection deleted (required)"},
    {0}};

const vqs_cli_help vqs_drop_help = {
    .cmd = "drop",
    .usage = "--data DIR --collection NAME",
    .about = "Deletes a collection: its records (one committed transaction), then its vector\n"
             "file. A writer: refused while a server or an import holds the directory.\n",
    .opts = drop_opts,
    .example = "vqs drop --data /var/lib/vqs --collection docs\n",
};

int vqs_cmd_drop(int argc, char **argv)
{
    const char *dir = NULL, *name = NULL;
    int ch, rc;
    optind = 1;
    while ((ch = vqs_cli_getopt(argc, argv, &vqs_drop_help)) != -1) {
        if (ch == 'D')
            dir = optarg;
        else if (ch == 'c')
            name = optarg;
        else if (ch == 'h') {
            vqs_cli_help_print(stdout, &vqs_drop_help);
            return 0;
        } else
            return vqs_cli_bad_option(&vqs_drop_help);
    }
    if (!dir || !name) {
        vqs_cli_usage(stderr, &vqs_drop_help);
        return fail("drop", vqs_seterr(VQS_EUSAGE, "--data and --collection are required"));
    }
    vqs_catalog *cat = NULL;
    if ((rc = vqs_catalog_open(dir, NULL, &cat)))
        return fail("drop", rc);
    if (!(rc = vqs_coll_drop(cat, name)))
        printf("dropped %s\n", name);
    vqs_catalog_close(cat);
    return rc ? fail("drop", rc) : 0;
}
