/*
 * codec_cmd.c: `vqs codec`, one codec trained on a file, then its size,
 * reconstruction error and encode/decode speed on a test file.
 *
 * Design decisions: the figures are those of vqs_codec_error_of (MSE,
 * relative MSE, SQNR), the same that `vqs eval` reports per index, so a
 * codec can be judged here before it is put in an index; --decoded writes
 * the reconstruction so that other tools can use it.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "vqs_codebook.h"
#include "vqs_common.h"
#include "vqs_store.h"
#include "cli.h"
#include "commands.h"

#define fail vqs_cli_fail
#define parse_size vqs_cli_parse_size

static const vqs_cli_opt opts[] = {
    {"spec", 's', 1, "S", NULL, "the codec (required), e.g. SQ8, PQ16x8, PCA48,SQ8, ROT,BIN; grammar:\n"
                                "README.md"},
    {"train", 'T', 1, "FILE", NULL, "the training vectors (required): .fvecs .ivecs .bvecs .npy\n"
                                    ".jsonl/.ndjson, or raw float32 (.f32/.raw/.bin) with --dim"},
    {"test", 'q', 1, "FILE", "the training set", "the vectors encoded, decoded and measured"},
    {"threads", 't', 1, "N", "all cores, or VQS_THREADS", "threads of training and coding"},
    {"seed", 'S', 1, "S", "0", "the seed of all randomness: k-means initialisation, rotations"},
    {"iters", 'i', 1, "N", "25", "k-means iterations"},
    {"beam", 'b', 1, "B", "5", "RVQ encoding beam width, 1 = greedy"},
    {"clip", 'c', 1, "Q", "min/max, SQ4's chosen from the data",
     "SQ8/SQ4 ranges from the Q and 1 - Q quantiles of each dimension,\nQ in (0.5, 1], 1 = min/max"},
    {"decoded", 'o', 1, "OUT.fvecs", NULL, "also the decoded test vectors"},
    {"dim", 'd', 1, "D", NULL, "the dimension of a headerless float32 file (.f32, .raw, .bin)"},
    {"verbose", 'v', 1, NULL, NULL, "training progress and the k-means objective on stderr"},
    {0}};

const vqs_cli_help vqs_codec_help = {
    .cmd = "codec",
    .usage = "--spec S --train FILE [--test FILE] [--threads N] [--seed S]\n"
             "[--iters N] [--beam B] [--clip Q] [--decoded OUT.fvecs] [--dim D] [-v]",
    .about = "Trains the codec on --train, encodes and decodes --test (default: the training\n"
             "set) and prints bytes per vector, compression, MSE, relative MSE, SQNR, training\n"
             "time and encode/decode speed.\n",
    .opts = opts,
    .example = "vqs codec --spec PQ16x8 --train base.fvecs --test queries.fvecs\n",
};

int vqs_cmd_codec(int argc, char **argv)
{
    const char *spec = NULL, *train = NULL, *test = NULL, *dec = NULL;
    size_t threads = 0, seed = 0, dim = 0, iters = 0, beam = 0;
    float clip = 0;
    int verbose = 0, rc = 0, c;
    optind = 1;
    while ((c = vqs_cli_getopt(argc, argv, &vqs_codec_help)) != -1) {
        switch (c) {
        case 's': spec = optarg; break;
        case 'T': train = optarg; break;
        case 'q': test = optarg; break;
        case 'o': dec = optarg; break;
        case 't': rc = parse_size(optarg, &threads, "--threads"); break;
        case 'S': rc = parse_size(optarg, &seed, "--seed"); break;
        case 'd': rc = parse_size(optarg, &dim, "--dim"); break;
        case 'i': rc = parse_size(optarg, &iters, "--iters"); break;
        case 'b': rc = parse_size(optarg, &beam, "--beam"); break;
        case 'c': rc = vqs_cli_parse_clip(optarg, &clip, "--clip"); break;
        case 'v': verbose = 1; break;
        case 'h': vqs_cli_help_print(stdout, &vqs_codec_help); return 0;
        default: return vqs_cli_bad_option(&vqs_codec_help);
        }
        if (rc)
            return fail("codec", rc);
    }
    if (optind < argc)
        return fail("codec", vqs_seterr(VQS_EUSAGE, "unexpected argument '%s'", argv[optind]));
    if (!spec || !train) {
        vqs_cli_usage(stderr, &vqs_codec_help);
        return fail("codec", vqs_seterr(VQS_EUSAGE, "--spec and --train are required"));
    }
    vqs_vecfile_opts vo = {.raw_dim = dim};
    float *xt = NULL, *xq = NULL, *xr = NULL;
    uint8_t *codes = NULL;
    size_t nt, d, nq, dq;
    vqs_codec *cd = NULL;
    if ((rc = vqs_vecfile_load_f32(train, &vo, &xt, &nt, &d)))
        goto done;
    if (test) {
        if ((rc = vqs_vecfile_load_f32(test, &vo, &xq, &nq, &dq)))
            goto done;
        if (dq != d) {
            rc = vqs_seterr(VQS_EINVAL, "%s has dimension %zu but %s has %zu", test, dq, train, d);
            goto done;
        }
    } else {
        nq = nt;
    }
    const float *x = test ? xq : xt;
    vqs_codec_opts co = {.nthreads = (int)threads, .seed = seed, .kmeans_iters = (int)iters,
                         .rvq_beam = (int)beam, .sq_clip = clip, .verbose = verbose};
    if ((rc = vqs_codec_create(spec, d, &co, &cd)))
        goto done;
    size_t cs = vqs_codec_code_size(cd);
    codes = malloc(cs * nq + 1);
    xr = malloc(sizeof(float) * nq * d + 1);
    if (!codes || !xr) {
        rc = vqs_seterr(VQS_ENOMEM, "%zu vectors", nq);
        goto done;
    }
    double t0 = vqs_now();
    if ((rc = vqs_codec_train(cd, nt, xt)))
        goto done;
    double t1 = vqs_now();
    if ((rc = vqs_codec_encode(cd, nq, x, codes)))
        goto done;
    double t2 = vqs_now();
    if ((rc = vqs_codec_decode(cd, nq, codes, xr)))
        goto done;
    double t3 = vqs_now();
    vqs_codec_error ce;
    if ((rc = vqs_codec_error_of(nq, d, x, xr, &ce)))
        goto done;
    printf("spec              %s\n", vqs_codec_spec(cd));
    printf("train / test      %zu / %zu vectors, d = %zu%s\n", nt, nq, d, test ? "" : " (test = train)");
    printf("bytes per vector  %zu (float32: %zu)\n", cs, 4 * d);
    printf("compression       %.2fx\n", 4.0 * (double)d / (double)cs);
    printf("MSE               %.6g (mean squared L2 error per vector)\n", ce.mse);
    printf("relative MSE      %.6g (MSE / centred variance per vector)\n", ce.rel_mse);
    printf("SQNR              %.2f dB (-10 log10 relative MSE)\n", ce.sqnr_db);
    printf("training          %.3f s\n", t1 - t0);
    printf("encode            %.0f vectors/s\n", (double)nq / (t2 - t1));
    printf("decode            %.0f vectors/s\n", (double)nq / (t3 - t2));
    if (dec)
        rc = vqs_write_fvecs(dec, nq, d, xr);
done:
    vqs_codec_free(cd);
    free(xt);
    free(xq);
    free(xr);
    free(codes);
    return rc ? fail("codec", rc) : 0;
}
