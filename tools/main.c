/*
 * main.c: the vqs command line: main, the command table and the dispatch.
 *
 *   vqs demo / gt / codec                                    (tools/demo.c, gt.c, codec_cmd.c)
 *   vqs eval --base B --queries Q --spec S [--spec S2 ...]   (tools/eval.c)
 *   vqs import / search / info / drop                        (tools/store_cmds.c)
 *   vqs report / recommend over eval's results               (tools/report_cmds.c)
 *   vqs serve                                                (tools/serve.c)
 *   vqs weights quantize|report|eval|plan                    (tools/weights_cmd.c)
 *   vqs help [COMMAND], vqs version                          (here)
 *
 * Design decisions: one binary with subcommands (git style) rather than one
 * program per task, so that the README's commands and later issues (eval,
 * import, search, serve) share option parsing, help and error reporting
 * (cli.c). One table names every command with its one-line summary, its
 * function and its help: `vqs help` lists the table and `vqs help CMD`
 * prints the same help as `vqs CMD --help`, so a new command is one row here
 * plus its file. The commands know nothing of this file (commands.h
 * declares them; they include cli.h).
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "vqs_common.h"
#include "vqs_mpi.h"

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);
static const vqs_cli_help help_help, version_help;

/* The commands, in the order `vqs help` lists them. */
static const struct command {
    const char *name;
    const char *summary; /* one line of `vqs help` */
    int (*run)(int argc, char **argv);
    const vqs_cli_help *help; /* `vqs help NAME`, `vqs NAME --help` */
} commands[] = {
    {"demo", "run the built-in example", vqs_cmd_demo, &vqs_demo_help},
    {"gt", "exact k-NN ground truth", vqs_cmd_gt, &vqs_gt_help},
    {"codec", "train a codec, report its size and error", vqs_cmd_codec, &vqs_codec_help},
    {"eval", "compression versus recall and speed of index specs", vqs_cmd_eval, &vqs_eval_help},
    {"report", "an HTML report of eval's results: plots, Pareto front, table", vqs_cmd_report,
     &vqs_report_help},
    {"recommend", "the best configuration for a budget or a recall target, and how to use it",
     vqs_cmd_recommend, &vqs_recommend_help},
    {"import", "bulk-load a vector file into a collection", vqs_cmd_import, &vqs_import_help},
    {"build", "a vector file into shards, each a data directory vqs serve opens (mpirun: one a rank)",
     vqs_cmd_build, &vqs_build_help},
    {"search", "k-NN of a query file in a collection", vqs_cmd_search, &vqs_search_help},
    {"info", "collections of a data directory: counts, specs, sizes", vqs_cmd_info, &vqs_info_help},
    {"drop", "delete a collection", vqs_cmd_drop, &vqs_drop_help},
    {"serve", "the HTTP service, Qdrant's REST shapes", vqs_cmd_serve, &vqs_serve_help},
    {"disk-build", "a graph index on disk (DiskANN's layout) from a vector file", vqs_cmd_disk_build,
     &vqs_disk_build_help},
    {"disk-search", "k-NN of a query file in a graph index on disk, read through io_uring",
     vqs_cmd_disk_search, &vqs_disk_search_help},
    {"weights", "LLM checkpoints: quantize, report, eval, plan (safetensors)", vqs_cmd_weights,
     &vqs_weights_help},
    {"help", "this list, or a command's options (vqs help COMMAND)", cmd_help, &help_help},
    {"version", "print the version", cmd_version, &version_help},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const struct command *find(const char *name)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (!strcmp(commands[i].name, name))
            return &commands[i];
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "vqs %s: vector quantization and embedding compression\n\n"
               "usage: vqs <command> [options]\n\n"
               "commands:\n",
            VQS_VERSION);
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'vqs help COMMAND' or 'vqs COMMAND --help': a command's options, their defaults and an "
               "example.\n");
}

static const vqs_cli_opt no_opts[] = {{0}};

static const vqs_cli_help help_help = {
    .cmd = "help",
    .usage = "[COMMAND]",
    .about = "Without COMMAND: the commands with a line each. With one: its full help, as\n"
             "'vqs COMMAND --help' prints it (usage, every option and its default, an example).\n",
    .opts = no_opts,
    .example = "vqs help eval\n",
};

static int cmd_help(int argc, char **argv)
{
    int ch;
    optind = 1;
    while ((ch = vqs_cli_getopt(argc, argv, &help_help)) != -1) {
        if (ch != 'h')
            return vqs_cli_bad_option(&help_help);
        vqs_cli_help_print(stdout, &help_help);
        return 0;
    }
    if (optind == argc) {
        usage(stdout);
        return 0;
    }
    if (optind < argc - 1)
        return vqs_cli_fail("help", vqs_seterr(VQS_EUSAGE, "unexpected argument '%s'", argv[optind + 1]));
    const struct command *c = find(argv[optind]);
    if (!c) {
        fprintf(stderr, "vqs help: unknown command '%s'\n\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    vqs_cli_help_print(stdout, c->help);
    return 0;
}

static const vqs_cli_help version_help = {
    .cmd = "version",
    .usage = "",
    .about = "Prints the version of vqs (also: vqs --version).\n",
    .opts = no_opts,
    .example = "vqs version\n",
};

static int cmd_version(int argc, char **argv)
{
    int ch;
    optind = 1;
    while ((ch = vqs_cli_getopt(argc, argv, &version_help)) != -1) {
        if (ch != 'h')
            return vqs_cli_bad_option(&version_help);
        vqs_cli_help_print(stdout, &version_help);
        return 0;
    }
    if (optind < argc)
        return vqs_cli_fail("version", vqs_seterr(VQS_EUSAGE, "unexpected argument '%s'", argv[optind]));
    printf("vqs %s\n", VQS_VERSION);
    return 0;
}

static int run(int argc, char **argv);

int main(int argc, char **argv)
{
    if (vqs_mpi_start(&argc, &argv)) {
        fprintf(stderr, "vqs: %s\n", vqs_errdetail());
        return 2;
    }
    int rc = run(argc, argv);
    vqs_mpi_stop();
    return rc;
}

static int run(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--version"))
        cmd = "version";
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h"))
        cmd = "help";
    const struct command *c = find(cmd);
    if (c)
        return c->run(argc - 1, argv + 1);
    fprintf(stderr, "vqs: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
