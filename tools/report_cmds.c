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

static void usage_report(FILE *f)
{
    fprintf(f, "usage: vqs report RESULTS.json --out REPORT.html [--metric M] [--title T] [--cost total|code]\n"
               "  One self-contained HTML page (inline SVG plots, no external resource) of a vqs eval\n"
               "  results file: quality against bytes per vector with the Pareto front, queries/s\n"
               "  against quality, SQNR against bits per dimension, the best configuration for a few\n"
               "  budgets, every row, the data set and the command that made it.\n"
               "  --metric: recall@1, recall@10 (default), recall@100, ndcg@10, mrr@10, qrels_ndcg@10\n"
               "  --cost:   total (default: everything the index keeps per vector) or code (codes alone)\n");
}

int vqs_cmd_report(int argc, char **argv)
{
    vqs_report_opts o = {0};
    const char *out = NULL;
    static const struct option lo[] = {{"out", 1, 0, 'o'},  {"metric", 1, 0, 'm'}, {"title", 1, 0, 't'},
                                       {"cost", 1, 0, 'c'}, {"help", 0, 0, 'h'},   {0, 0, 0, 0}};
    int ch, rc;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "o:", lo, NULL)) != -1) {
        switch (ch) {
        case 'o': out = optarg; break;
        case 'm': o.metric = optarg; break;
        case 't': o.title = optarg; break;
        case 'c': o.cost = optarg; break;
        case 'h': usage_report(stdout); return 0;
        default: usage_report(stderr); return 2;
        }
    }
    if (optind != argc - 1 || !out) {
        usage_report(stderr);
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

static void usage_recommend(FILE *f)
{
    fprintf(f, "usage: vqs recommend --results RESULTS.json (--max-bytes B | --min-recall R)\n"
               "                     [--metric M] [--cost total|code] [--json]\n"
               "                     [--data DIR] [--collection NAME] [--vectors FILE] [--queries FILE]\n"
               "  --max-bytes B:  the best metric among configurations of at most B bytes per vector\n"
               "  --min-recall R: the fewest bytes per vector among configurations whose metric is >= R\n"
               "  --metric: recall@10 (default), recall@1, recall@100, ndcg@10, mrr@10, qrels_ndcg@10\n"
               "  --cost:   total (default: everything the index keeps per vector) or code (codes alone)\n"
               "  Prints the configuration, its figures, and the vqs import / vqs search commands and\n"
               "  the HTTP collection body that use it (--json: the same as one JSON object). The other\n"
               "  flags fill the names in those commands (default: DIR, the data set's name and files).\n");
}

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
    static const struct option lo[] = {
        {"results", 1, 0, 'r'}, {"max-bytes", 1, 0, 'B'}, {"min-recall", 1, 0, 'R'}, {"metric", 1, 0, 'm'},
        {"cost", 1, 0, 'c'},    {"json", 0, 0, 'j'},      {"data", 1, 0, 'D'},       {"collection", 1, 0, 'C'},
        {"vectors", 1, 0, 'v'}, {"queries", 1, 0, 'q'},   {"help", 0, 0, 'h'},       {0, 0, 0, 0}};
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
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
        case 'h': usage_recommend(stdout); return 0;
        default: usage_recommend(stderr); return 2;
        }
        if (rc)
            return fail("recommend", rc);
    }
    if (optind < argc)
        return fail("recommend", vqs_seterr(VQS_EUSAGE, "unexpected argument '%s'", argv[optind]));
    if (!res || isnan(maxb) == isnan(minq)) {
        usage_recommend(stderr);
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
