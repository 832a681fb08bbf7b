/* report_internal.h: what the two halves of `vqs report` share: report.c
 * (the page: text, tables, the assembly) and report_svg.c (the plots and
 * their legend). */
#ifndef VQS_REPORT_INTERNAL_H
#define VQS_REPORT_INTERNAL_H

#include <stddef.h>
#include <stdio.h>

#include "report.h"

/* ---- text (both halves) ------------------------------------------------------ */

/* s as HTML text or attribute value (quotes escaped too). */
static inline void esc(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* bytes for a person: "96 B", "1.5 KB", "3 KB", "2 MB" */
static inline void fmt_bytes(char *b, size_t n, double v)
{
    if (v < 1024)
        snprintf(b, n, "%.4g B", v);
    else if (v < 1024 * 1024)
        snprintf(b, n, "%.3g KB", v / 1024);
    else
        snprintf(b, n, "%.3g MB", v / (1024 * 1024));
}

/* ---- the page's state ----------------------------------------------------------- */

/* Colours by quantizer family and shapes by PCA fraction, fixed once for
 * the page (report_style_init) so the plots, the legend and the table agree. */
#define MAXFAM 10
#define MAXPCA 8

typedef struct style {
    char fam[MAXFAM + 1][64]; /* family names by first appearance; the last slot is "other" */
    int nfam;
    double pca[MAXPCA]; /* distinct PCA fractions, descending */
    int npca;
} style;

typedef struct ctx {
    const vqs_results *r;
    vqs_qmetric m;
    vqs_cost cost;
    style st;
    int *flag;     /* Pareto flags by row */
    size_t *front; /* front rows by increasing cost */
    size_t nfront;
} ctx;

/* ---- report_svg.c ------------------------------------------------------------------ */

void report_style_init(style *s, const vqs_results *r);
/* the colour of a row's family (the table's swatches) */
const char *report_color_of(const style *s, const vqs_result_row *w);
/* the three plots, each an <svg class="plot"> of npts points (class "pt") */
void report_plot_quality_bytes(FILE *f, const ctx *c, size_t npts);
void report_plot_qps(FILE *f, const ctx *c, size_t npts);
void report_plot_sqnr(FILE *f, const ctx *c, size_t npts);
/* one legend for the three plots */
void report_legend(FILE *f, const ctx *c);

#endif
