/*
 * report.c: `vqs report` (and `vqs eval --report`): one self-contained HTML
 * page of a `vqs eval` results file (report.h).
 *
 * Page: title and data set; three plots (quality against bytes per vector
 * with the Pareto front, queries/s against quality, SQNR against bits per
 * dimension); one legend for all three; the best configuration for a few
 * budgets and quality targets; the table of every row; the data set, the
 * run's settings and the command that made it.
 *
 * Design decisions:
 * - The SVG is drawn here, in C, not by a script: the page shows in any
 *   browser, in a mail client's preview, or printed, with scripts off. The
 *   one script on the page only measures what was drawn (below).
 * - Nothing external: inline CSS, system fonts, no CDN, so the file can be
 *   mailed or archived and looks the same in a year.
 * - Everything that comes from the JSON is HTML-escaped at the point where
 *   it is written (esc()); numbers are formatted here. A spec, a message, a
 *   description or a command line is data, never markup.
 * - Encodings: x of the bytes plot on a log2 axis (the rows span 16 B to
 *   4 d bytes; powers of two are the natural ticks of bytes), quality on a
 *   linear axis; colour is the quantizer family (the quantizer and any
 *   rotation before it), marker shape the PCA fraction, a hollow marker an
 *   IVF index and a dark ring a refine stage; the front is a step line (the
 *   best quality any budget between two front points buys); float32 is a
 *   dashed reference line at 4 d bytes.
 * - Each point is an element of class "pt" with data-spec and a <title>
 *   (hover text); each plot is <svg class="plot" data-points="N">. A small
 *   inline script measures each plot after layout (points with a non-empty
 *   bounding box inside the plot area, and the SVG's rendered size) into
 *   <pre id="render-check">: a headless browser's --dump-dom then tells a
 *   test whether the plots rendered, not merely whether the text has circles.
 * - The page is built in memory (open_memstream) and written to a temporary
 *   file that is renamed over the target.
 * Rejected: a JS charting library (external resource or 100s of KB inline,
 * and nothing shows without scripts); PNG plots (not searchable, no hover
 * text, would need a rasteriser); labelling every point (22 labels on one
 * plot overlap; the front's points are labelled, the rest have hover text
 * and the table).
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
#include "vqs_common.h"

/* ---- text ------------------------------------------------------------------ */

/* s as HTML text or attribute value (quotes escaped too). */
static void esc(FILE *f, const char *s)
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
static void fmt_bytes(char *b, size_t n, double v)
{
    if (v < 1024)
        snprintf(b, n, "%.4g B", v);
    else if (v < 1024 * 1024)
        snprintf(b, n, "%.3g KB", v / 1024);
    else
        snprintf(b, n, "%.3g MB", v / (1024 * 1024));
}

/* ---- families, colours, shapes ---------------------------------------------------- */

#define MAXFAM 10
static const char *const palette[MAXFAM] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                            "#b07aa1", "#edc948", "#ff9da7", "#9c755f", "#bab0ac"};
#define EXACT_COLOR "#222222"

enum { SH_CIRCLE, SH_SQUARE, SH_TRIANGLE, SH_DIAMOND, SH_TRIDOWN, SH_COUNT };
#define MAXPCA 8

typedef struct style {
    char fam[MAXFAM + 1][64]; /* family names by first appearance; the last slot is "other" */
    int nfam;
    double pca[MAXPCA]; /* distinct PCA fractions, descending */
    int npca;
} style;

static int is_exact(const vqs_result_row *w) { return !strcmp(w->spec, "exact") || !strcmp(w->quantizer, "Flat"); }

/* The quantizer family: the non-PCA transforms followed by the quantizer ("ROT,BIN"). */
static void family_of(const vqs_result_row *w, char *b, size_t n)
{
    if (is_exact(w)) {
        snprintf(b, n, "float32 (exact)");
        return;
    }
    b[0] = 0;
    if (w->transform) {
        char t[256];
        snprintf(t, sizeof t, "%s", w->transform);
        char *save = NULL;
        for (char *tok = strtok_r(t, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            if (!strncmp(tok, "PCA", 3))
                continue;
            size_t l = strlen(b);
            snprintf(b + l, n - l, "%s,", tok);
        }
    }
    size_t l = strlen(b);
    snprintf(b + l, n - l, "%s", w->quantizer);
}

static void style_init(style *s, const vqs_results *r)
{
    memset(s, 0, sizeof *s);
    for (size_t i = 0; i < r->nrows; i++) {
        const vqs_result_row *w = &r->rows[i];
        if (!w->ok)
            continue;
        char f[64];
        family_of(w, f, sizeof f);
        int k = 0;
        while (k < s->nfam && strcmp(s->fam[k], f))
            k++;
        if (k == s->nfam && s->nfam < MAXFAM)
            snprintf(s->fam[s->nfam++], sizeof s->fam[0], "%s", f);
        else if (k == s->nfam && s->nfam == MAXFAM) /* the rest share one colour */
            snprintf(s->fam[s->nfam++], sizeof s->fam[0], "other");
        if (!isnan(w->pca_fraction)) {
            int j = 0;
            while (j < s->npca && s->pca[j] != w->pca_fraction)
                j++;
            if (j == s->npca && s->npca < MAXPCA)
                s->pca[s->npca++] = w->pca_fraction;
        }
    }
    for (int a = 1; a < s->npca; a++) /* descending */
        for (int b = a; b > 0 && s->pca[b] > s->pca[b - 1]; b--) {
            double t = s->pca[b];
            s->pca[b] = s->pca[b - 1];
            s->pca[b - 1] = t;
        }
}

static const char *family_color(const style *s, int k)
{
    if (!strcmp(s->fam[k], "float32 (exact)"))
        return EXACT_COLOR;
    int ncol = 0; /* the exact family takes no palette slot */
    for (int j = 0; j < k; j++)
        ncol += strcmp(s->fam[j], "float32 (exact)") != 0;
    return palette[ncol < MAXFAM ? ncol : MAXFAM - 1];
}

static const char *color_of(const style *s, const vqs_result_row *w)
{
    char f[64];
    family_of(w, f, sizeof f);
    int k = 0;
    while (k < s->nfam && strcmp(s->fam[k], f))
        k++;
    return family_color(s, k < s->nfam ? k : s->nfam - 1);
}

static int shape_of(const style *s, const vqs_result_row *w)
{
    if (isnan(w->pca_fraction))
        return SH_CIRCLE;
    for (int j = 0; j < s->npca; j++)
        if (s->pca[j] == w->pca_fraction)
            return 1 + j % (SH_COUNT - 1);
    return SH_SQUARE;
}

/* A marker centred at (x, y), radius about r: cls "pt" (counted) or "lg"
 * (legend). attrs go inside the element, title (already escaped HTML) inside
 * a <title> child when not NULL. */
static void marker(FILE *f, int shape, double x, double y, double r, const char *fill, const char *stroke,
                   double sw, const char *cls, const char *attrs, const char *title)
{
    switch (shape) {
    case SH_CIRCLE: fprintf(f, "<circle class=\"%s\" cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\"", cls, x, y, r); break;
    case SH_SQUARE:
        fprintf(f, "<rect class=\"%s\" x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\"", cls, x - 0.9 * r,
                y - 0.9 * r, 1.8 * r, 1.8 * r);
        break;
    case SH_TRIANGLE:
        fprintf(f, "<path class=\"%s\" d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fZ\"", cls, x, y - 1.2 * r, x + 1.1 * r,
                y + 0.8 * r, x - 1.1 * r, y + 0.8 * r);
        break;
    case SH_DIAMOND:
        fprintf(f, "<path class=\"%s\" d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fL%.1f %.1fZ\"", cls, x, y - 1.25 * r,
                x + 1.1 * r, y, x, y + 1.25 * r, x - 1.1 * r, y);
        break;
    default:
        fprintf(f, "<path class=\"%s\" d=\"M%.1f %.1fL%.1f %.1fL%.1f %.1fZ\"", cls, x, y + 1.2 * r, x + 1.1 * r,
                y - 0.8 * r, x - 1.1 * r, y - 0.8 * r);
    }
    fprintf(f, " fill=\"%s\" stroke=\"%s\" stroke-width=\"%.1f\"%s", fill, stroke, sw, attrs ? attrs : "");
    if (title)
        fprintf(f, "><title>%s</title></%s>\n", title,
                shape == SH_CIRCLE ? "circle" : shape == SH_SQUARE ? "rect" : "path");
    else
        fprintf(f, "/>\n");
}

/* the marker of a row: fill and stroke by family, IVF hollow, refine ringed */
static void row_marker(FILE *f, const style *s, const vqs_result_row *w, double x, double y, const char *cls,
                       const char *attrs, const char *title)
{
    const char *c = color_of(s, w);
    int ivf = !strncmp(w->index, "IVF", 3), refine = strcmp(w->refine, "none") != 0;
    marker(f, shape_of(s, w), x, y, 5.5, ivf ? "#ffffff" : c, refine ? "#111111" : ivf ? c : "#ffffff",
           refine || ivf ? 2.0 : 1.0, cls, attrs, title);
}

/* ---- axes ---------------------------------------------------------------------------- */

enum { LIN = 0, LOG2 = 2, LOG10 = 10 };

typedef struct axis {
    double lo, hi; /* data range */
    int scale;
    double p0, p1; /* pixels of lo and hi */
} axis;

static double amap(const axis *a, double v)
{
    double t = a->scale == LIN ? (v - a->lo) / (a->hi - a->lo) : (log(v) - log(a->lo)) / (log(a->hi) - log(a->lo));
    return a->p0 + t * (a->p1 - a->p0);
}

/* nice linear range around [lo, hi] with about 6 steps */
static double nice_lin(double *lo, double *hi)
{
    int nonneg = *lo >= 0;
    double span = *hi - *lo;
    if (!(span > 0))
        span = fabs(*hi) > 0 ? fabs(*hi) * 0.2 : 1;
    *lo -= span * 0.04;
    *hi += span * 0.04;
    double raw = (*hi - *lo) / 6, mag = pow(10, floor(log10(raw))), step = mag;
    static const double m[] = {1, 2, 2.5, 5, 10};
    for (int i = 0; i < 5; i++)
        if (mag * m[i] >= raw) {
            step = mag * m[i];
            break;
        }
    *lo = floor(*lo / step) * step;
    *hi = ceil(*hi / step) * step;
    if (nonneg && *lo < 0)
        *lo = 0;
    return step;
}

/* a log range around [lo, hi]: 12% margins (a point never sits on the frame) */
static void pad_log(double *lo, double *hi)
{
    if (!(*hi > *lo)) {
        *lo /= 2;
        *hi *= 2;
    }
    double r = pow(*hi / *lo, 0.06);
    *lo /= r < 1.12 ? 1.12 : r;
    *hi *= r < 1.12 ? 1.12 : r;
}

/* A quality axis (rates in [0, 1]) ends just above 1, not at the next step. */
static void cap_rate(double *hi, double data_hi, double step)
{
    if (data_hi <= 1 && *hi > 1)
        *hi = 1 + 0.2 * step;
}

typedef struct frame {
    double x0, y0, x1, y1; /* plot area in SVG units */
} frame;

#define W 640
#define H 400
static const frame FR = {68, 16, W - 18, H - 54};

static void tick_label(char *b, size_t n, double v, int kind)
{
    if (kind == 'b')
        fmt_bytes(b, n, v);
    else if (kind == 'q') { /* queries/s */
        if (v >= 1e6)
            snprintf(b, n, "%gM", v / 1e6);
        else if (v >= 1e3)
            snprintf(b, n, "%gk", v / 1e3);
        else
            snprintf(b, n, "%g", v);
    } else
        snprintf(b, n, "%g", fabs(v) < 1e-12 ? 0.0 : v);
}

/* Gridlines, ticks and labels of the x axis (horizontal) or the y axis. */
static void draw_axis(FILE *f, const axis *a, int is_x, double step, int kind, const char *label)
{
    double ticks[64];
    int nt = 0;
    if (a->scale == LIN) {
        for (double v = a->lo; v <= a->hi + step * 1e-6 && nt < 64; v += step)
            ticks[nt++] = v;
    } else if (a->scale == LOG2) {
        int e0 = (int)ceil(log2(a->lo) - 1e-9), e1 = (int)floor(log2(a->hi) + 1e-9);
        int every = e1 - e0 > 10 ? 2 : 1;
        for (int e = e0; e <= e1 && nt < 64; e += every)
            ticks[nt++] = ldexp(1, e);
    } else {
        int e0 = (int)floor(log10(a->lo)), e1 = (int)ceil(log10(a->hi));
        static const double m[] = {1, 2, 5};
        for (int e = e0; e <= e1 && nt < 64; e++)
            for (int j = 0; j < (e1 - e0 <= 3 ? 3 : 1) && nt < 64; j++) {
                double v = m[j] * pow(10, e);
                if (v >= a->lo * (1 - 1e-9) && v <= a->hi * (1 + 1e-9))
                    ticks[nt++] = v;
            }
    }
    fprintf(f, "<g class=\"grid\">");
    for (int i = 0; i < nt; i++) {
        double p = amap(a, ticks[i]);
        if (is_x)
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", p, FR.y0, p, FR.y1);
        else
            fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>", FR.x0, p, FR.x1, p);
    }
    fprintf(f, "</g>\n<g class=\"ticks\">");
    for (int i = 0; i < nt; i++) {
        double p = amap(a, ticks[i]);
        char b[32];
        tick_label(b, sizeof b, ticks[i], kind);
        if (is_x)
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>", p, FR.y1 + 17, b);
        else
            fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" dominant-baseline=\"middle\">%s</text>",
                    FR.x0 - 7, p, b);
    }
    fprintf(f, "</g>\n");
    if (is_x)
        fprintf(f, "<text class=\"axlabel\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
                (FR.x0 + FR.x1) / 2, FR.y1 + 42, label);
    else
        fprintf(f,
                "<text class=\"axlabel\" transform=\"translate(16 %.1f) rotate(-90)\" text-anchor=\"middle\">%s</text>\n",
                (FR.y0 + FR.y1) / 2, label);
}

static void svg_open(FILE *f, const char *id, size_t npoints, const char *title)
{
    fprintf(f,
            "<svg class=\"plot\" id=\"%s\" data-points=\"%zu\" data-area=\"%.0f %.0f %.0f %.0f\" viewBox=\"0 0 %d %d\" "
            "role=\"img\" aria-label=\"%s\" xmlns=\"http://www.w3.org/2000/svg\">\n"
            "<rect class=\"bg\" x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\"/>\n",
            id, npoints, FR.x0, FR.y0, FR.x1, FR.y1, W, H, title, FR.x0, FR.y0, FR.x1 - FR.x0, FR.y1 - FR.y0);
}

static void svg_close(FILE *f)
{
    fprintf(f, "<rect class=\"frame\" x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\"/>\n</svg>\n", FR.x0, FR.y0,
            FR.x1 - FR.x0, FR.y1 - FR.y0);
}

/* the hover text of a row (escaped, into b) */
static void hover(char *b, size_t n, const vqs_results *r, const vqs_result_row *w, vqs_qmetric m)
{
    char *t = NULL;
    size_t tl = 0;
    FILE *f = open_memstream(&t, &tl);
    if (!f) {
        b[0] = 0;
        return;
    }
    char cb[32], tb[32];
    fmt_bytes(cb, sizeof cb, w->code_bytes);
    fmt_bytes(tb, sizeof tb, w->total_bytes);
    esc(f, w->spec);
    fprintf(f, ": %s %.4f, %s per vector (codes %s), %.1fx smaller than float32, %.2f bits/dim", vqs_qmetric_name(m),
            w->q[m], tb, cb, w->compression, w->bits_per_dim);
    if (!isnan(w->qps_1_thread))
        fprintf(f, ", %.0f queries/s on 1 thread", w->qps_1_thread);
    if (!isnan(w->sqnr_db))
        fprintf(f, ", SQNR %.1f dB", w->sqnr_db);
    if (!strncmp(w->index, "IVF", 3))
        fprintf(f, ", nprobe %lld", w->nprobe);
    if (strcmp(w->refine, "none"))
        fprintf(f, ", oversampling %g", w->oversampling);
    (void)r;
    fclose(f);
    snprintf(b, n, "%s", t ? t : "");
    free(t);
}

static void spec_attr(char *b, size_t n, const char *spec)
{
    char *t = NULL;
    size_t tl = 0;
    FILE *f = open_memstream(&t, &tl);
    b[0] = 0;
    if (!f)
        return;
    fputs(" data-spec=\"", f);
    esc(f, spec);
    fputs("\"", f);
    fclose(f);
    snprintf(b, n, "%s", t ? t : "");
    free(t);
}

/* ---- the three plots ------------------------------------------------------------------- */

typedef struct ctx {
    const vqs_results *r;
    vqs_qmetric m;
    vqs_cost cost;
    style st;
    int *flag;     /* Pareto flags by row */
    size_t *front; /* front rows by increasing cost */
    size_t nfront;
} ctx;

static void plot_quality_bytes(FILE *f, const ctx *c, size_t npts)
{
    const vqs_results *r = c->r;
    double f32 = vqs_results_float_bytes(r);
    axis ax = {INFINITY, f32, LOG2, FR.x0, FR.x1}, ay = {INFINITY, -INFINITY, LIN, FR.y1, FR.y0};
    for (size_t i = 0; i < r->nrows; i++) {
        const vqs_result_row *w = &r->rows[i];
        if (!w->ok || isnan(w->q[c->m]))
            continue;
        double x = vqs_result_cost(w, c->cost);
        ax.lo = fmin(ax.lo, x);
        ax.hi = fmax(ax.hi, x);
        ay.lo = fmin(ay.lo, w->q[c->m]);
        ay.hi = fmax(ay.hi, w->q[c->m]);
    }
    char xl[96], yl[64];
    snprintf(xl, sizeof xl, "%s per vector (log scale)", c->cost == VQS_COST_CODE ? "code bytes" : "total bytes");
    snprintf(yl, sizeof yl, "%s", vqs_qmetric_name(c->m));
    pad_log(&ax.lo, &ax.hi);
    double ydata = ay.hi, ystep = nice_lin(&ay.lo, &ay.hi);
    cap_rate(&ay.hi, ydata, ystep);
    svg_open(f, "plot-recall-bytes", npts, "quality against bytes per vector");
    draw_axis(f, &ax, 1, 0, 'b', xl);
    draw_axis(f, &ay, 0, ystep, 'n', yl);
    /* float32 reference */
    double xf = amap(&ax, f32);
    char fb[32];
    fmt_bytes(fb, sizeof fb, f32);
    fprintf(f,
            "<line class=\"ref\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
            "<text class=\"reflabel\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">float32: %s</text>\n",
            xf, FR.y0, xf, FR.y1, xf - 4, FR.y1 - 6, fb);
    /* the front as a step line: between two front points the best any budget buys is the left one */
    if (c->nfront) {
        fprintf(f, "<path class=\"front\" d=\"");
        for (size_t j = 0; j < c->nfront; j++) {
            const vqs_result_row *w = &r->rows[c->front[j]];
            double x = amap(&ax, vqs_result_cost(w, c->cost)), y = amap(&ay, w->q[c->m]);
            if (j == 0)
                fprintf(f, "M%.1f %.1f", x, y);
            else
                fprintf(f, "H%.1fV%.1f", x, y);
        }
        fprintf(f, "H%.1f\"/>\n", FR.x1);
    }
    char title[1024], attr[600];
    for (size_t i = 0; i < r->nrows; i++) {
        const vqs_result_row *w = &r->rows[i];
        if (!w->ok || isnan(w->q[c->m]))
            continue;
        hover(title, sizeof title, r, w, c->m);
        spec_attr(attr, sizeof attr, w->spec);
        row_marker(f, &c->st, w, amap(&ax, vqs_result_cost(w, c->cost)), amap(&ay, w->q[c->m]), "pt", attr, title);
    }
    /* labels of the front's points: the first of ten places (below right, above right, below left,
     * above left of the point, then lines further out) that stays in the plot and overlaps no label
     * placed before; else the least overlapping. Widths are estimated (~6.3 units per 11px character). */
    double box[64][4];
    size_t nbox = 0;
    for (size_t j = 0; j < c->nfront; j++) {
        const vqs_result_row *w = &r->rows[c->front[j]];
        double x = amap(&ax, vqs_result_cost(w, c->cost)), y = amap(&ay, w->q[c->m]);
        double tw = 6.3 * (double)strlen(w->spec), best_ov = INFINITY, bx = 0, by = 0;
        static const double dx[10] = {8, 8, -8, -8, 8, -8, 8, -8, 8, -8},
                            dy[10] = {16, -9, 16, -9, 30, 30, -23, -23, 44, 44};
        for (int k = 0; k < 10; k++) {
            double x0 = dx[k] > 0 ? x + dx[k] : x + dx[k] - tw, y0 = y + dy[k] - 10, ov = 0;
            if (x0 < FR.x0 + 2 || x0 + tw > FR.x1 - 2 || y0 < FR.y0 - 4 || y0 + 12 > FR.y1 - 2)
                ov += 1e6; /* outside the plot */
            for (size_t m = 0; m < nbox; m++) {
                double ix = fmin(x0 + tw, box[m][2]) - fmax(x0, box[m][0]), iy = fmin(y0 + 12, box[m][3]) - fmax(y0, box[m][1]);
                if (ix > 0 && iy > 0)
                    ov += ix * iy;
            }
            if (ov < best_ov) {
                best_ov = ov;
                bx = x0;
                by = y0;
            }
            if (ov == 0)
                break;
        }
        if (nbox < 64) {
            box[nbox][0] = bx;
            box[nbox][1] = by;
            box[nbox][2] = bx + tw;
            box[nbox][3] = by + 12;
            nbox++;
        }
        fprintf(f, "<text class=\"lab\" x=\"%.1f\" y=\"%.1f\">", bx, by + 10);
        esc(f, w->spec);
        fprintf(f, "</text>\n");
    }
    svg_close(f);
}

static void plot_qps(FILE *f, const ctx *c, size_t npts)
{
    const vqs_results *r = c->r;
    axis ax = {INFINITY, -INFINITY, LIN, FR.x0, FR.x1}, ay = {INFINITY, -INFINITY, LOG10, FR.y1, FR.y0};
    for (size_t i = 0; i < r->nrows; i++) {
        const vqs_result_row *w = &r->rows[i];
        if (!w->ok || isnan(w->q[c->m]) || isnan(w->qps_1_thread))
            continue;
        ax.lo = fmin(ax.lo, w->q[c->m]);
        ax.hi = fmax(ax.hi, w->q[c->m]);
        ay.lo = fmin(ay.lo, w->qps_1_thread);
        ay.hi = fmax(ay.hi, w->qps_1_thread);
    }
    double xdata = ax.hi, xstep = nice_lin(&ax.lo, &ax.hi);
    cap_rate(&ax.hi, xdata, xstep);
    pad_log(&ay.lo, &ay.hi);
    char xl[64];
    snprintf(xl, sizeof xl, "%s", vqs_qmetric_name(c->m));
    svg_open(f, "plot-qps-recall", npts, "queries per second against quality");
    draw_axis(f, &ax, 1, xstep, 'n', xl);
    draw_axis(f, &ay, 0, 0, 'q', "queries/s, 1 thread (log scale)");
    char title[1024], attr[600];
    for (size_t i = 0; i < r->nrows; i++) {
        const vqs_result_row *w = &r->rows[i];
        if (!w->ok || isnan(w->q[c->m]) || isnan(w->qps_1_thread))
            continue;
        hover(title, sizeof title, r, w, c->m);
        spec_attr(attr, sizeof attr, w->spec);
        row_marker(f, &c->st, w, amap(&ax, w->q[c->m]), amap(&ay, w->qps_1_thread), "pt", attr, title);
    }
    svg_close(f);
}

static void plot_sqnr(FILE *f, const ctx *c, size_t npts)
{
    const vqs_results *r = c->r;
    axis ax = {INFINITY, -INFINITY, LOG2, FR.x0, FR.x1}, ay = {INFINITY, -INFINITY, LIN, FR.y1, FR.y0};
    for (size_t i = 0; i < r->nrows; i++) {
        const vqs_result_row *w = &r->rows[i];
        if (!w->ok || isnan(w->sqnr_db) || !(w->bits_per_dim > 0))
            continue;
        ax.lo = fmin(ax.lo, w->bits_per_dim);
        ax.hi = fmax(ax.hi, w->bits_per_dim);
        ay.lo = fmin(ay.lo, w->sqnr_db);
        ay.hi = fmax(ay.hi, w->sqnr_db);
    }
    pad_log(&ax.lo, &ax.hi);
    if (ay.lo > 0)
        ay.lo = 0; /* dB from 0: the eye reads the bars' lengths right */
    double ystep = nice_lin(&ay.lo, &ay.hi);
    svg_open(f, "plot-sqnr-bits", npts, "SQNR against bits per dimension");
    draw_axis(f, &ax, 1, 0, 'n', "bits per dimension of the input (8 x code bytes / d, log scale)");
    draw_axis(f, &ay, 0, ystep, 'n', "SQNR (dB)");
    char title[1024], attr[600];
    for (size_t i = 0; i < r->nrows; i++) {
        const vqs_result_row *w = &r->rows[i];
        if (!w->ok || isnan(w->sqnr_db) || !(w->bits_per_dim > 0))
            continue;
        hover(title, sizeof title, r, w, c->m);
        spec_attr(attr, sizeof attr, w->spec);
        row_marker(f, &c->st, w, amap(&ax, w->bits_per_dim), amap(&ay, w->sqnr_db), "pt", attr, title);
    }
    svg_close(f);
}

static void legend(FILE *f, const ctx *c)
{
    const style *s = &c->st;
    int has_ivf = 0, has_ref = 0;
    for (size_t i = 0; i < c->r->nrows; i++) {
        const vqs_result_row *w = &c->r->rows[i];
        if (w->ok) {
            has_ivf |= !strncmp(w->index, "IVF", 3);
            has_ref |= strcmp(w->refine, "none") != 0;
        }
    }
    fprintf(f, "<div class=\"legend\">\n");
    for (int k = 0; k < s->nfam; k++) {
        fprintf(f, "<span><svg width=\"14\" height=\"14\" viewBox=\"0 0 14 14\">");
        marker(f, SH_CIRCLE, 7, 7, 5.5, family_color(s, k), "#ffffff", 1, "lg", NULL, NULL);
        fprintf(f, "</svg>");
        esc(f, s->fam[k]);
        fprintf(f, "</span>\n");
    }
    fprintf(f, "<span class=\"sep\"></span><span><svg width=\"14\" height=\"14\" viewBox=\"0 0 14 14\">");
    marker(f, SH_CIRCLE, 7, 7, 5, "#888888", "#ffffff", 1, "lg", NULL, NULL);
    fprintf(f, "</svg>no PCA</span>\n");
    for (int j = 0; j < s->npca; j++) {
        fprintf(f, "<span><svg width=\"14\" height=\"14\" viewBox=\"0 0 14 14\">");
        marker(f, 1 + j % (SH_COUNT - 1), 7, 7, 5, "#888888", "#ffffff", 1, "lg", NULL, NULL);
        fprintf(f, "</svg>PCA to %.0f%% of d</span>\n", 100 * s->pca[j]);
    }
    if (has_ivf) {
        fprintf(f, "<span><svg width=\"14\" height=\"14\" viewBox=\"0 0 14 14\">");
        marker(f, SH_CIRCLE, 7, 7, 5, "#ffffff", "#888888", 2, "lg", NULL, NULL);
        fprintf(f, "</svg>IVF (hollow)</span>\n");
    }
    if (has_ref) {
        fprintf(f, "<span><svg width=\"14\" height=\"14\" viewBox=\"0 0 14 14\">");
        marker(f, SH_CIRCLE, 7, 7, 5, "#888888", "#111111", 2, "lg", NULL, NULL);
        fprintf(f, "</svg>re-scored (RFlat, Refine)</span>\n");
    }
    fprintf(f, "<span><svg width=\"22\" height=\"14\" viewBox=\"0 0 22 14\"><path class=\"front\" "
               "d=\"M1 11H11V3H21\"/></svg>Pareto front</span>\n");
    fprintf(f, "<span><svg width=\"22\" height=\"14\" viewBox=\"0 0 22 14\"><line class=\"ref\" x1=\"11\" y1=\"0\" "
               "x2=\"11\" y2=\"14\"/></svg>float32 bytes</span>\n</div>\n");
}

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
        fprintf(f, "</td><td class=\"l\"><span class=\"sw\" style=\"background:%s\"></span>", color_of(&c->st, w));
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
    style_init(&c.st, r);
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
    legend(f, &c);
    fputs("<div class=\"plots\">\n", f);
    if (n_q) {
        fprintf(f, "<figure>\n<h3>%s against %s per vector</h3>\n", mn, vqs_cost_name(c.cost));
        plot_quality_bytes(f, &c, n_q);
        fprintf(f, "<figcaption>Up and to the left is better. The line is the Pareto front: no configuration has "
                   "fewer bytes and a higher %s than a point on it. Hover a point for its figures.</figcaption>\n"
                   "</figure>\n",
                mn);
    }
    if (n_qps) {
        fprintf(f, "<figure>\n<h3>Queries per second on one thread against %s</h3>\n", mn);
        plot_qps(f, &c, n_qps);
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
        plot_sqnr(f, &c, n_sqnr);
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
