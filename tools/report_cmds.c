/*
 * report_cmds.c: `vqs report` and `vqs recommend`, the command-line side of
 * report.c and recommend.c over a `vqs eval` results file.
 *
 *   vqs report RESULTS.json --out report.html [--metric M] [--title T] [--cost total|code]
 *   vqs recommend --results RESULTS.json (--max-bytes B | --min-recall R)
 *                 [--metric M] [--cost total|code] [--json]
 *                 [--data DIR] [--collection NAME] [--vectors FILE] [--queries FILE]
 *
 * Design decisions: the work is in functions the tests call directly
 * (vqs_report_write, vqs_recommend_pick, vqs_recommend_describe); this file
 * only parses flags, so the commands and `vqs eval --report` behave alike.
 * "--min-recall" names the usual target; with --metric it is a target of
 * that metric (nDCG, MRR), which the output states.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "report.h"
#include "vqs_common.h"

#define fail vqs_cli_fail

static const vqs_cli_opt report_opts[] = {
    {"out", 'o', 1, "REPORT.html", NULL, "the page written (required)"},
    {"metric", 'm', 0, "M", "recall@10", "the quality of the first plot, the front and the picks:\n"
                                         "recall@1, recall@10, recall@100, ndcg@10, mrr@10, qrels_ndcg@10"},
    {"title", 't', 0, "T", "Compression report: <data set name>", "the page's title"},
    {"cost", 'c', 0, "total|code", "total", "bytes per vector: total (everything the index keeps per\n"
                                            "vector) or code (the codes alone)"},
    {0}};

const vqs_cli_help vqs_report_help = {
    .cmd = "report",
    .usage = "RESULTS.json --out REPORT.html [--metric M] [--title T] [--cost total|code]",
    .about = "One self-contained HTML page (inline SVG plots, no external resource) of a vqs eval\n"
             "results file (RESULTS.json, written by vqs eval --out or --json): quality against\n"
             "bytes per vector with the Pareto front, queries/s against quality, SQNR against\n"
             "bits per dimension, the best configuration for a few budgets, every row, the data\n"
             "set and the command that made it.\n",
    .opts = report_opts,
    .example = "vqs report results.json --out report.html --metric ndcg@10\n",
};

int vqs_cmd_report(int argc, char **argv)
{
    vqs_report_opts o = {0};
    const char *out = NULL;
    int ch, rc;
    optind = 1;
    while ((ch = vqs_cli_getopt(argc, argv, &vqs_report_help)) != -1) {
        switch (ch) {
        case 'o': out = optarg; break;
        case 'm': o.metric = optarg; break;
        case 't': o.title = optarg; break;
        case 'c': o.cost = optarg; break;
        case 'h': vqs_cli_help_print(stdout, &vqs_report_help); return 0;
        default: return vqs_cli_bad_option(&vqs_report_help);
        }
    }
    if (optind != argc - 1 || !out) {
        vqs_cli_usage(stderr, &vqs_report_help);
        return fail("report", vqs_seterr(VQS_EUSAGE, "one RESULTS.json and --out are required"));
    }
    vqs_qmetric m;
    vqs_cost c;
    if ((o.metric && (rc = vqs_qmetric_parse(o.metric, &m))) || (o.cost && (rc = vqs_cost_parse(o.cost, &c))))
        return fail("report", rc);
    if ((rc = vqs_report_write(argv[optind], out, &o)))
        return fail("report", rc);
    fprintf(stderr, "vqs report: wrote %s\n", out);
    return 0;
}

static const vqs_cli_opt recommend_opts[] = {
    {"results", 'r', 0, "RESULTS.json", NULL, "a vqs eval results file (required)"},
    {"max-bytes", 'B', 0, "B", NULL, "the best metric among configurations of at most B bytes per vector"},
    {"min-recall", 'R', 0, "R", NULL, "the fewest bytes per vector among configurations whose metric\n"
                                      "is >= R, R in [0, 1]; exactly one of --max-bytes and --min-recall"},
    {"metric", 'm', 0, "M", "recall@10", "recall@1, recall@10, recall@100, ndcg@10, mrr@10, qrels_ndcg@10;\n"
                                         "--min-recall is then a target of that metric"},
    {"cost", 'c', 0, "total|code", "total", "bytes per vector: total (everything the index keeps per\n"
                                            "vector) or code (the codes alone)"},
    {"json", 'j', 0, NULL, NULL, "the same as one JSON object"},
    {"data", 'D', 0, "DIR", "DIR", "the data directory named in the commands"},
    {"collection", 'C', 0, "NAME", "the data set's name", "the collection named in the commands"},
    {"vectors", 'v', 0, "FILE", "the data set's base file", "the vector file named in vqs import"},
    {"queries", 'q', 0, "FILE", "the data set's query file", "the query file named in vqs search"},
    {0}};

const vqs_cli_help vqs_recommend_help = {
    .cmd = "recommend",
    .usage = "--results RESULTS.json (--max-bytes B | --min-recall R)\n"
             "[--metric M] [--cost total|code] [--json]\n"
             "[--data DIR] [--collection NAME] [--vectors FILE] [--queries FILE]",
    .about = "Picks a configuration from a vqs eval results file: the best one for a budget of\n"
             "bytes per vector, or the smallest that reaches a quality target. Prints it, its\n"
             "figures, and the vqs import / vqs search commands and the HTTP collection body\n"
             "that use it (--json: the same as one JSON object). --data, --collection,\n"
             "--vectors and --queries fill the names in those commands.\n",
    .opts = recommend_opts,
    .notes = "Exit status: 0; 1 when no configuration qualifies (the message names the\n"
             "  closest one); 2 for bad usage.\n",
    .example = "vqs recommend --results results.json --min-recall 0.95 --data /var/lib/vqs\n",
};

static int parse_num(const char *s, const char *what, double lo, double hi, double *out)
{
    char *e;
    double v = strtod(s, &e);
    if (!*s || *e || !(v >= lo && v <= hi))
        return vqs_seterr(VQS_EUSAGE, "%s '%s': want a number in [%g, %g]", what, s, lo, hi);
    *out = v;
    return 0;
}

int vqs_cmd_recommend(int argc, char **argv)
{
    const char *res = NULL, *metric = NULL, *cost = NULL;
    vqs_recommend_names nm = {0};
    double maxb = NAN, minq = NAN;
    int json = 0, ch, rc = 0;
    optind = 1;
    while ((ch = vqs_cli_getopt(argc, argv, &vqs_recommend_help)) != -1) {
        switch (ch) {
        case 'r': res = optarg; break;
        case 'B': rc = parse_num(optarg, "--max-bytes", 1e-9, 1e15, &maxb); break;
        case 'R': rc = parse_num(optarg, "--min-recall", 0, 1, &minq); break;
        case 'm': metric = optarg; break;
        case 'c': cost = optarg; break;
        case 'j': json = 1; break;
        case 'D': nm.data_dir = optarg; break;
        case 'C': nm.collection = optarg; break;
        case 'v': nm.vectors = optarg; break;
        case 'q': nm.queries = optarg; break;
        case 'h': vqs_cli_help_print(stdout, &vqs_recommend_help); return 0;
        default: return vqs_cli_bad_option(&vqs_recommend_help);
        }
        if (rc)
            return fail("recommend", rc);
    }
    if (optind < argc)
        return fail("recommend", vqs_seterr(VQS_EUSAGE, "unexpected argument '%s'", argv[optind]));
    if (!res || isnan(maxb) == isnan(minq)) {
        vqs_cli_usage(stderr, &vqs_recommend_help);
        return fail("recommend", vqs_seterr(VQS_EUSAGE, "--results and one of --max-bytes and --min-recall are required"));
    }
    vqs_recommend_query q = {VQS_Q_RECALL10, VQS_COST_TOTAL, maxb, minq};
    if ((metric && (rc = vqs_qmetric_parse(metric, &q.metric))) || (cost && (rc = vqs_cost_parse(cost, &q.cost))))
        return fail("recommend", rc);
    vqs_results *r = NULL;
    json_t *d = NULL;
    size_t row;
    if ((rc = vqs_results_load(res, &r)) || (rc = vqs_recommend_pick(r, &q, &row)) ||
        (rc = vqs_recommend_describe(r, row, &q, &nm, &d)))
        goto done;
    if (json) {
        char *s = json_dumps(d, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        if (!s) {
            rc = vqs_seterr(VQS_ENOMEM, "recommend --json");
            goto done;
        }
        printf("%s\n", s);
        free(s);
    } else {
        vqs_recommend_print(stdout, r, d);
    }
done:
    json_decref(d);
    vqs_results_free(r);
    return rc ? fail("recommend", rc) : 0;
}
