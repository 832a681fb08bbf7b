/*
 * report.c: `vqs report` (and `vqs eval --report`): one self-contained HTML
 * page of a `vqs eval` results file (report.h). The plots and their legend
 * are drawn by report_svg.c; this file assembles the page around them.
 *
 * Page: title and data set; three plots (quality against bytes per vector
 * with the Pareto front, queries/s against quality, SQNR against bits per
 * dimension); one legend for all three; the best configuration for a few
 * budgets and quality targets; the table of every row; the data set, the
 * run's settings and the command that made it.
 *
 * Design decisions:
 * - Nothing external: inline CSS, inline SVG, system fonts, no CDN, so the
 *   file can be mailed or archived and looks the same in a year. The one
 *   script on the page only measures what was drawn (below).
 * - Everything that comes from the JSON is HTML-escaped at the point where
 *   it is written (esc()); numbers are formatted here. A spec, a message, a
 *   description or a command line is data, never markup.
 * - A small inline script measures each plot after layout (points of class
 *   "pt" with a non-empty bounding box inside the plot area, and the SVG's
 *   rendered size) into <pre id="render-check">: a headless browser's
 *   --dump-dom then tells a test whether the plots rendered, not merely
 *   whether the text has circles.
 * - The page is built in memory (open_memstream) and written to a temporary
 *   file that is renamed over the target.
 * - Two files, one concept each: report_svg.c knows SVG geometry (axes,
 *   ticks, markers, label placement), this file knows HTML (tables, the
 *   data set, the page); they share the page's state (ctx, style) and the
 *   escaping through report_internal.h.
 */
#define _GNU_SOURCE
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pareto.h"
#include "report_internal.h"
#include "vqs_common.h"

/* ---- the rest of the page ------------------------------------------------------------- */

static const char CSS[] =
    "*{box-sizing:border-box}"
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;color:#1d2330;"
    "background:#f6f7f9;margin:0}"
    "main{max-width:1320px;margin:0 auto;padding:18px 16px 40px}"
    "h1{font-size:22px;margin:4px 0 2px}h2{font-size:17px;margin:28px 0 8px}"
    "h3{font-size:14px;margin:0 0 4px;font-weight:600}"
    ".sub{color:#555;margin:0 0 12px}"
    ".plots{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:14px}"
    "figure{background:#fff;border:1px solid #dde1e7;border-radius:6px;margin:0;padding:10px 12px 6px}"
    "figcaption{color:#555;font-size:12.5px;margin-top:2px}"
    "svg.plot{width:100%;height:auto;display:block}"
    ".plot .bg{fill:#fff}.plot .frame{fill:none;stroke:#9aa3af}"
    ".plot .grid line{stroke:#e6e9ee;stroke-width:1}"
    ".plot .ticks text{font-size:11.5px;fill:#555}"
    ".plot .axlabel{font-size:12.5px;fill:#333}"
    ".plot .lab{font-size:11px;fill:#1d2330;paint-order:stroke;stroke:#fff;stroke-width:3px}"
    ".plot .reflabel{font-size:11px;fill:#666}"
    ".front{fill:none;stroke:#1d2330;stroke-width:1.6;stroke-linejoin:round}"
    ".ref{stroke:#888;stroke-width:1.2;stroke-dasharray:5 4}"
    ".plot .pt{fill-opacity:.92}.plot .pt:hover{stroke:#000;stroke-width:2.5}"
    ".legend{display:flex;flex-wrap:wrap;gap:6px 16px;margin:10px 2px;font-size:13px}"
    ".legend span{display:inline-flex;align-items:center;gap:5px}.legend .sep{width:8px}"
    ".note{background:#fff8e1;border:1px solid #f0d98c;border-radius:6px;padding:8px 12px;margin:10px 0}"
    "table{border-collapse:collapse;background:#fff;font-size:12.5px;font-variant-numeric:tabular-nums}"
    ".wide{overflow-x:auto;border:1px solid #dde1e7;border-radius:6px}.wide table{width:100%}"
    "th,td{padding:4px 6px;border-bottom:1px solid #eceff3;text-align:right;white-space:nowrap}"
    "th{background:#eef1f5;position:sticky;top:0;font-weight:600}"
    "td.l,th.l{text-align:left}tr.front td{font-weight:600}tr.front td.mark{color:#b8860b}"
    "tr.error td{color:#a11;background:#fff5f5}th.m,td.m{background:#f3f7ff}"
    ".sw{display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:6px;vertical-align:-1px}"
    ".recs table{width:100%;margin-bottom:14px}.recs h3{margin-top:4px}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:3px 16px;background:#fff;border:1px solid #dde1e7;"
    "border-radius:6px;padding:10px 14px;margin:0}"
    "dt{color:#555}dd{margin:0;overflow-wrap:anywhere}"
    "pre{background:#1d2330;color:#e8ecf2;padding:10px 14px;border-radius:6px;white-space:pre-wrap;"
    "overflow-wrap:anywhere;font-size:12.5px}"
    "code{font-size:12.5px}";

/* measures what the browser drew (see the file comment) */
static const char RENDER_CHECK[] =
    "<pre id=\"render-check\" hidden></pre>\n"
    "<script>\n"
    "(function(){var out={};document.querySelectorAll('svg.plot').forEach(function(s){"
    "var a=(s.getAttribute('data-area')||'').split(' ').map(Number),n=0,inside=0;"
    "s.querySelectorAll('.pt').forEach(function(p){var b=p.getBBox();if(b.width>0&&b.height>0){n++;"
    "var x=b.x+b.width/2,y=b.y+b.height/2;if(x>=a[0]&&x<=a[2]&&y>=a[1]&&y<=a[3])inside++;}});"
    "var r=s.getBoundingClientRect();out[s.id]={declared:+s.getAttribute('data-points'),rendered:n,inside:inside,"
    "width:Math.round(r.width),height:Math.round(r.height)};});"
    "document.getElementById('render-check').textContent=JSON.stringify(out);})();\n"
    "</script>\n";

static void cell_num(FILE *f, double v, const char *fmt, const char *cls)
{
    fprintf(f, "<td%s%s%s>", cls ? " class=\"" : "", cls ? cls : "", cls ? "\"" : "");
    if (isnan(v))
        fputs("&ndash;", f);
    else
        fprintf(f, fmt, v);
    fputs("</td>", f);
}

/* rows in the table: ok rows by increasing cost, then the failed ones, each in file order */
static int by_cost(const void *a, const void *b, void *arg)
{
    const ctx *c = arg;
    size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
    const vqs_result_row *x = &c->r->rows[ia], *y = &c->r->rows[ib];
    if (x->ok != y->ok)
        return x->ok ? -1 : 1;
    if (x->ok) {
        double cx = vqs_result_cost(x, c->cost), cy = vqs_result_cost(y, c->cost);
        if (cx != cy)
            return cx < cy ? -1 : 1;
    }
    return ia < ib ? -1 : 1;
}

static void table(FILE *f, const ctx *c, long *tie_of)
{
    const vqs_results *r = c->r;
    int qrels = 0;
    for (size_t i = 0; i < r->nrows; i++)
        qrels |= r->rows[i].ok && !isnan(r->rows[i].q[VQS_Q_QRELS_NDCG10]);
    size_t *ord = malloc(sizeof *ord * (r->nrows ? r->nrows : 1));
    if (!ord)
        return;
    for (size_t i = 0; i < r->nrows; i++)
        ord[i] = i;
    qsort_r(ord, r->nrows, sizeof *ord, by_cost, (void *)c);
    static const vqs_qmetric qcols[] = {VQS_Q_RECALL1, VQS_Q_RECALL10, VQS_Q_RECALL100, VQS_Q_NDCG10, VQS_Q_MRR10,
                                        VQS_Q_QRELS_NDCG10};
    int nq = qrels ? 6 : 5;
    fprintf(f, "<div class=\"wide\"><table>\n<thead><tr><th title=\"on the Pareto front\">&#9733;</th>"
               "<th class=\"l\">spec</th><th class=\"l\">search</th>"
               "<th title=\"total bytes per vector\">total B</th><th title=\"code bytes per vector\">code B</th>"
               "<th title=\"float32 bytes / code bytes\">ratio</th><th>bits/dim</th>");
    for (int j = 0; j < nq; j++)
        fprintf(f, "<th%s>%s</th>", qcols[j] == c->m ? " class=\"m\"" : "", vqs_qmetric_name(qcols[j]));
    fprintf(f, "<th>SQNR dB</th><th title=\"queries per second, one thread\">q/s 1 thr.</th>"
               "<th title=\"queries per second, %lld threads\">q/s %lld thr.</th><th title=\"training time\">train s</th>"
               "</tr></thead>\n<tbody>\n",
            r->threads, r->threads);
    int ncols = 8 + nq + 3;
    for (size_t k = 0; k < r->nrows; k++) {
        size_t i = ord[k];
        const vqs_result_row *w = &r->rows[i];
        if (!w->ok) {
            fprintf(f, "<tr class=\"error\"><td class=\"mark\">&#10007;</td><td class=\"l\">");
            esc(f, w->spec);
            fprintf(f, "</td><td class=\"l\" colspan=\"%d\">failed: ", ncols - 2);
            esc(f, w->error);
            fprintf(f, "</td></tr>\n");
            continue;
        }
        int fr = c->flag[i] == VQS_PARETO_FRONT;
        fprintf(f, "<tr%s><td class=\"mark\"", fr ? " class=\"front\"" : "");
        if (c->flag[i] == VQS_PARETO_TIE && tie_of[i] >= 0) {
            fputs(" title=\"the same bytes and ", f);
            esc(f, vqs_qmetric_name(c->m));
            fputs(" as ", f);
            esc(f, r->rows[tie_of[i]].spec);
            fputs(", which is kept on the front\">tie", f);
        } else {
            fputs(fr ? ">&#9733;" : ">", f);
        }
        fprintf(f, "</td><td class=\"l\"><span class=\"sw\" style=\"background:%s\"></span>",
                report_color_of(&c->st, w));
        esc(f, w->spec);
        fprintf(f, "</td><td class=\"l\">");
        if (!strncmp(w->index, "IVF", 3))
            fprintf(f, "nprobe %lld", w->nprobe);
        if (strcmp(w->refine, "none"))
            fprintf(f, "%sre-scores %g&times;k", strncmp(w->index, "IVF", 3) ? "" : ", ", w->oversampling);
        fputs("</td>", f);
        cell_num(f, w->total_bytes, "%.1f", NULL);
        cell_num(f, w->code_bytes, "%.0f", NULL);
        cell_num(f, w->compression, "%.1f&times;", NULL);
        cell_num(f, w->bits_per_dim, "%.2f", NULL);
        for (int j = 0; j < nq; j++) {
            vqs_qmetric m = qcols[j];
            fprintf(f, "<td%s", m == c->m ? " class=\"m\"" : "");
            if (!isnan(w->spread[m]) && w->spread[m] > 0)
                fprintf(f, " title=\"&plusmn;%.4f over %lld seeds\"", w->spread[m], r->seeds);
            fputs(">", f);
            if (isnan(w->q[m]))
                fputs("&ndash;", f);
            else
                fprintf(f, "%.4f", w->q[m]);
            fputs("</td>", f);
        }
        cell_num(f, w->sqnr_db, "%.1f", NULL);
        cell_num(f, w->qps_1_thread, "%.0f", NULL);
        cell_num(f, w->qps_all_threads, "%.0f", NULL);
        cell_num(f, w->train_s, "%.2f", NULL);
        fputs("</tr>\n", f);
    }
    fputs("</tbody></table></div>\n", f);
    free(ord);
}

/* The cells of one recommendation row: the pick for q, or `none` across them. */
static void pick_cells(FILE *f, const vqs_results *r, const ctx *c, const vqs_recommend_query *q, double f32,
                       const char *none)
{
    size_t row;
    if (vqs_recommend_pick(r, q, &row) == 0) {
        const vqs_result_row *w = &r->rows[row];
        fputs("<td class=\"l\">", f);
        esc(f, w->spec);
        fprintf(f, "</td><td>%.4f</td><td>%.1f</td><td>%.1f&times;</td></tr>\n", w->q[c->m],
                vqs_result_cost(w, c->cost), f32 / vqs_result_cost(w, c->cost));
    } else {
        vqs_clearerr();
        fprintf(f, "<td class=\"l\" colspan=\"4\">%s</td></tr>\n", none);
    }
}

static void recommendations(FILE *f, const ctx *c)
{
    const vqs_results *r = c->r;
    double f32 = vqs_results_float_bytes(r);
    const char *mn = vqs_qmetric_name(c->m), *cn = vqs_cost_name(c->cost);
    fprintf(f, "<div><h3>Best %s within a budget of %s per vector</h3>\n"
               "<table><thead><tr><th class=\"l\">budget</th><th class=\"l\">best</th><th>%s</th><th>bytes</th>"
               "<th>smaller</th></tr></thead><tbody>\n",
            mn, cn, mn);
    static const int div[] = {4, 8, 16, 32};
    for (int i = 0; i < 4; i++) {
        vqs_recommend_query q = {c->m, c->cost, f32 / div[i], NAN};
        char b[32];
        fmt_bytes(b, sizeof b, f32 / div[i]);
        fprintf(f, "<tr><td class=\"l\">&le; %s (1/%d of float32)</td>", b, div[i]);
        pick_cells(f, r, c, &q, f32, "nothing fits");
    }
    fprintf(f, "</tbody></table></div>\n<div><h3>Fewest %s per vector reaching a target</h3>\n"
               "<table><thead><tr><th class=\"l\">target</th><th class=\"l\">smallest</th><th>%s</th><th>bytes</th>"
               "<th>smaller</th></tr></thead><tbody>\n",
            cn, mn);
    static const double tgt[] = {0.8, 0.9, 0.95, 0.99};
    for (int i = 0; i < 4; i++) {
        vqs_recommend_query q = {c->m, c->cost, NAN, tgt[i]};
        fprintf(f, "<tr><td class=\"l\">%s &ge; %g</td>", mn, tgt[i]);
        pick_cells(f, r, c, &q, f32, "no configuration reaches it");
    }
    fprintf(f, "</tbody></table></div>\n<p class=\"sub\">The commands that use one: <code>vqs recommend "
               "--results RESULTS.json --max-bytes B</code> or <code>--min-recall R</code>.</p>\n");
}

static void dataset(FILE *f, const vqs_results *r)
{
    const vqs_result_dataset *D = &r->dataset;
    fputs("<dl>\n<dt>data set</dt><dd>", f);
    esc(f, D->name);
    fputs("</dd>\n<dt>description</dt><dd>", f);
    esc(f, D->description);
    fprintf(f, "</dd>\n<dt>base</dt><dd>%lld vectors &times; %lld dimensions: ", D->n, D->d);
    esc(f, D->base);
    fprintf(f, "</dd>\n<dt>queries</dt><dd>%lld: ", D->nq);
    esc(f, D->queries);
    fputs("</dd>\n<dt>metric</dt><dd>", f);
    esc(f, D->metric);
    fputs("</dd>\n<dt>ground truth</dt><dd>", f);
    esc(f, D->ground_truth);
    fputs("</dd>\n<dt>qrels</dt><dd>", f);
    if (D->qrels)
        esc(f, D->qrels);
    else
        fputs("none", f);
    fprintf(f, "</dd>\n<dt>k</dt><dd>%lld</dd>\n<dt>seeds</dt><dd>%lld%s</dd>\n<dt>threads</dt><dd>%lld</dd>\n"
               "<dt>SIMD</dt><dd>",
            r->k, r->seeds, r->seeds > 1 ? " (figures are means; hover a quality figure in the table for its standard deviation over seeds)" : "",
            r->threads);
    esc(f, r->simd);
    fprintf(f, "</dd>\n<dt>symmetric</dt><dd>%s</dd>\n<dt>timing</dt><dd>%s</dd>\n<dt>created</dt><dd>",
            r->symmetric ? "yes (queries encoded too)" : "no (queries in float32)",
            r->timing ? "yes" : "no (--no-timing)");
    esc(f, r->created);
    fputs("</dd>\n<dt>file</dt><dd>", f);
    esc(f, r->path);
    fputs(" (", f);
    esc(f, r->format);
    fputs(")</dd>\n</dl>\n<h3 style=\"margin-top:14px\">Command</h3>\n<pre>", f);
    esc(f, r->command);
    fputs("</pre>\n", f);
}

int vqs_report_html(const vqs_results *r, const vqs_report_opts *o, char **html, size_t *len)
{
    if (!r || !html)
        return vqs_seterr(VQS_EINVAL, "report_html: NULL argument");
    vqs_report_opts op = o ? *o : (vqs_report_opts){0};
    ctx c = {.r = r, .m = VQS_Q_RECALL10, .cost = VQS_COST_TOTAL};
    int rc;
    if ((op.metric && (rc = vqs_qmetric_parse(op.metric, &c.m))) || (op.cost && (rc = vqs_cost_parse(op.cost, &c.cost))))
        return rc;
    size_t n = r->nrows ? r->nrows : 1;
    double *cost = malloc(sizeof(double) * n), *qual = malloc(sizeof(double) * n);
    unsigned char *use = malloc(n);
    long *tie_of = malloc(sizeof(long) * n);
    c.flag = malloc(sizeof(int) * n);
    c.front = malloc(sizeof(size_t) * n);
    char *buf = NULL;
    size_t blen = 0;
    FILE *f = NULL;
    if (!cost || !qual || !use || !tie_of || !c.flag || !c.front) {
        rc = vqs_seterr(VQS_ENOMEM, "report: %zu rows", r->nrows);
        goto done;
    }
    size_t nok = 0, nerr = 0, n_qps = 0, n_sqnr = 0, n_q = 0, nties = 0;
    for (size_t i = 0; i < r->nrows; i++) {
        const vqs_result_row *w = &r->rows[i];
        use[i] = w->ok;
        cost[i] = w->ok ? vqs_result_cost(w, c.cost) : NAN;
        qual[i] = w->ok ? w->q[c.m] : NAN;
        nok += w->ok;
        nerr += !w->ok;
        n_q += w->ok && !isnan(w->q[c.m]);
        n_qps += w->ok && !isnan(w->q[c.m]) && !isnan(w->qps_1_thread);
        n_sqnr += w->ok && !isnan(w->sqnr_db) && w->bits_per_dim > 0;
    }
    if ((rc = vqs_pareto_front(r->nrows, cost, qual, use, c.flag, tie_of, c.front, &c.nfront)))
        goto done;
    for (size_t i = 0; i < r->nrows; i++)
        nties += c.flag[i] == VQS_PARETO_TIE;
    report_style_init(&c.st, r);
    f = open_memstream(&buf, &blen);
    if (!f) {
        rc = vqs_seterr(VQS_ENOMEM, "report");
        goto done;
    }
    const vqs_result_dataset *D = &r->dataset;
    const char *mn = vqs_qmetric_name(c.m);
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>",
          f);
    if (op.title)
        esc(f, op.title);
    else {
        fputs("Compression report: ", f);
        esc(f, D->name);
    }
    fprintf(f, "</title>\n<style>%s</style>\n</head>\n<body>\n<main>\n<h1>", CSS);
    if (op.title)
        esc(f, op.title);
    else {
        fputs("Compression report: ", f);
        esc(f, D->name);
    }
    fputs("</h1>\n<p class=\"sub\">", f);
    esc(f, D->description);
    fprintf(f, " &middot; %lld &times; %lld, ", D->n, D->d);
    esc(f, D->metric);
    fprintf(f, ", %lld queries, k = %lld &middot; %zu configurations", D->nq, r->k, nok);
    if (nerr)
        fprintf(f, " and %zu that failed", nerr);
    fprintf(f, " &middot; %zu on the Pareto front of %s against %s</p>\n", c.nfront, mn, vqs_cost_name(c.cost));

    if (n_q == 0)
        fprintf(f, "<p class=\"note\">No row has %s: nothing to plot against bytes.</p>\n", mn);
    if (!n_qps)
        fprintf(f, "<p class=\"note\">No timing in these results%s: the plot of queries/s against %s is "
                   "omitted.</p>\n",
                r->timing ? "" : " (vqs eval --no-timing)", mn);
    report_legend(f, &c);
    fputs("<div class=\"plots\">\n", f);
    if (n_q) {
        fprintf(f, "<figure>\n<h3>%s against %s per vector</h3>\n", mn, vqs_cost_name(c.cost));
        report_plot_quality_bytes(f, &c, n_q);
        fprintf(f, "<figcaption>Up and to the left is better. The line is the Pareto front: no configuration has "
                   "fewer bytes and a higher %s than a point on it. Hover a point for its figures.</figcaption>\n"
                   "</figure>\n",
                mn);
    }
    if (n_qps) {
        fprintf(f, "<figure>\n<h3>Queries per second on one thread against %s</h3>\n", mn);
        report_plot_qps(f, &c, n_qps);
        fprintf(f, "<figcaption>Up and to the right is better. k = %lld, one query at a time (SIMD: ", r->k);
        esc(f, r->simd);
        fputs(").", f);
        if (n_q > n_qps)
            fprintf(f, " %zu configuration%s without timing %s not shown.", n_q - n_qps, n_q - n_qps == 1 ? "" : "s",
                    n_q - n_qps == 1 ? "is" : "are");
        fputs("</figcaption>\n</figure>\n", f);
    }
    if (n_sqnr) {
        fputs("<figure>\n<h3>Reconstruction quality: SQNR against bits per dimension</h3>\n", f);
        report_plot_sqnr(f, &c, n_sqnr);
        fputs("<figcaption>Signal-to-quantization-noise ratio of the decoded vectors (higher is better; PCA's "
              "discarded variance counts as noise). Exact search has no error and is not shown.</figcaption>\n"
              "</figure>\n",
              f);
    }
    fputs("<figure class=\"recs\">\n", f);
    recommendations(f, &c);
    fputs("</figure>\n</div>\n", f);
    if (nties)
        fprintf(f, "<p class=\"note\">%zu configuration%s with the same bytes and %s as an earlier one: the first "
                   "is kept on the front, the others are marked &ldquo;tie&rdquo; in the table.</p>\n",
                nties, nties == 1 ? "" : "s", mn);

    fputs("<h2>All configurations</h2>\n<p class=\"sub\">Sorted by bytes per vector; &#9733; marks the Pareto "
          "front. Bytes: total = everything the index keeps per vector (codes, id, refine copy, fixed overhead "
          "spread over the base); code = the codes alone.</p>\n",
          f);
    table(f, &c, tie_of);
    fputs("<h2>Data set and run</h2>\n", f);
    dataset(f, r);
    fputs(RENDER_CHECK, f);
    fputs("</main>\n</body>\n</html>\n", f);
    if (fclose(f) != 0) {
        f = NULL;
        rc = vqs_seterr(VQS_ENOMEM, "report: building the page");
        goto done;
    }
    f = NULL;
    *html = buf;
    if (len)
        *len = blen;
    buf = NULL;
done:
    if (f)
        fclose(f);
    free(buf);
    free(cost);
    free(qual);
    free(use);
    free(tie_of);
    free(c.flag);
    free(c.front);
    return rc;
}

int vqs_report_write(const char *results_json, const char *html_out, const vqs_report_opts *o)
{
    if (!results_json || !html_out)
        return vqs_seterr(VQS_EINVAL, "report_write: NULL argument");
    vqs_results *r = NULL;
    char *html = NULL, *tmp = NULL;
    size_t len = 0;
    int rc = vqs_results_load(results_json, &r), fd = -1;
    if (rc || (rc = vqs_report_html(r, o, &html, &len)))
        goto done;
    if (asprintf(&tmp, "%s.tmpXXXXXX", html_out) < 0) {
        tmp = NULL;
        rc = vqs_seterr(VQS_ENOMEM, "%s", html_out);
        goto done;
    }
    if ((fd = mkstemp(tmp)) < 0) {
        rc = vqs_seterr(-errno, "%s: %s", html_out, strerror(errno));
        free(tmp);
        tmp = NULL;
        goto done;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, html + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = vqs_seterr(w < 0 ? -errno : -EIO, "%s: %s", tmp, w < 0 ? strerror(errno) : "short write");
            goto done;
        }
        off += (size_t)w;
    }
    if (fchmod(fd, 0644) != 0 || close(fd) != 0) {
        fd = -1;
        rc = vqs_seterr(-errno, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    fd = -1;
    if (rename(tmp, html_out) != 0) {
        rc = vqs_seterr(-errno, "%s: %s", html_out, strerror(errno));
        goto done;
    }
    free(tmp);
    tmp = NULL;
done:
    if (fd >= 0)
        close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(html);
    vqs_results_free(r);
    return rc;
}

