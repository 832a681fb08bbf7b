/*
 * main.c: the vqs command line: main and the dispatch to the commands.
 *
 *   vqs demo / gt / codec                                    (tools/demo.c, gt.c, codec_cmd.c)
 *   vqs eval --base B --queries Q --spec S [--spec S2 ...]   (tools/eval.c)
 *   vqs import / search / info / drop                        (tools/store_cmds.c)
 *   vqs report / recommend over eval's results               (tools/report_cmds.c)
 *   vqs serve                                                (tools/serve.c)
 *
 * Design decisions: one binary with subcommands (git style) rather than one
 * program per task, so that the README's commands and later issues (eval,
 * import, search, serve) share option parsing and error reporting (cli.c).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

static void usage(FILE *f)
{
    fprintf(f, "vqs %s: vector quantization and embedding compression\n\n"
               "usage: vqs <command> [options]\n\n"
               "commands:\n"
               "  demo     run the built-in example\n"
               "  gt       exact k-NN ground truth (vqs gt --help)\n"
               "  codec    train a codec, report its size and error (vqs codec --help)\n"
               "  eval     compression versus recall and speed of index specs (vqs eval --help)\n"
               "  report   an HTML report of eval's results: plots, Pareto front, table (vqs report --help)\n"
               "  recommend  the best configuration for a budget or a recall target, and how to use it\n"
               "  import   bulk-load a vector file into a collection (vqs import --help)\n"
               "  search   k-NN of a query file in a collection (vqs search --help)\n"
               "  info     collections of a data directory: counts, specs, sizes\n"
               "  drop     delete a collection\n"
               "  serve    the HTTP service, Qdrant's REST shapes (vqs serve --help)\n"
               "  version  print the version\n",
            VQS_VERSION);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "gt"))
        return vqs_cmd_gt(argc - 1, argv + 1);
    if (!strcmp(cmd, "codec"))
        return vqs_cmd_codec(argc - 1, argv + 1);
    if (!strcmp(cmd, "eval"))
        return vqs_cmd_eval(argc - 1, argv + 1);
    if (!strcmp(cmd, "report"))
        return vqs_cmd_report(argc - 1, argv + 1);
    if (!strcmp(cmd, "recommend"))
        return vqs_cmd_recommend(argc - 1, argv + 1);
    if (!strcmp(cmd, "demo"))
        return vqs_cmd_demo(argc - 1, argv + 1);
    if (!strcmp(cmd, "import"))
        return vqs_cmd_import(argc - 1, argv + 1);
    if (!strcmp(cmd, "search"))
        return vqs_cmd_search(argc - 1, argv + 1);
    if (!strcmp(cmd, "info"))
        return vqs_cmd_info(argc - 1, argv + 1);
    if (!strcmp(cmd, "drop"))
        return vqs_cmd_drop(argc - 1, argv + 1);
    if (!strcmp(cmd, "serve"))
        return vqs_cmd_serve(argc - 1, argv + 1);
    if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
        printf("vqs %s\n", VQS_VERSION);
        return 0;
    }
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "vqs: unknown command '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
