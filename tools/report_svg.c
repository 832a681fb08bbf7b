/*
 * report_svg.c: the plots of `vqs report` (report.c assembles the page):
 * quality against bytes per vector with the Pareto front, queries/s against
 * quality, SQNR against bits per dimension, and one legend for the three.
 *
 * Design decisions:
 * - The SVG is drawn here, in C, not by a script: the page shows in any
 *   browser, in a mail client's preview, or printed, with scripts off.
 * - Encodings: x of the bytes plot on a log2 axis (the rows span 16 B to
 *   4 d bytes; powers of two are the natural ticks of bytes), quality on a
 *   linear axis; colour is the quantizer family (the quantizer and any
 *   rotation before it), marker shape the PCA fraction, a hollow marker an
 *   IVF index and a dark ring a refine stage; the front is a step line (the
 *   best quality any budget between two front points buys); float32 is a
 *   dashed reference line at 4 d bytes.
 * - Each point is an element of class "pt" with data-spec and a <title>
 *   (hover text); each plot is <svg class="plot" data-points="N"
 *   data-area="x0 y0 x1 y1">, which the page's render check measures
 *   (report.c).
 * - Everything that comes from the JSON is HTML-escaped where it is written
 *   (esc(), report_internal.h).
 * Rejected: a JS charting library (external resource or 100s of KB inline,
 * and nothing shows without scripts); PNG plots (not searchable, no hover
 * text, would need a rasteriser); labelling every point (22 labels on one
 * plot overlap; the front's points are labelled, the rest have hover text
 * and the table).
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report_internal.h"
#include "vqs_common.h"

/* ---- families, colours, shapes ---------------------------------------------------- */

static const char *const palette[MAXFAM] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                            "#b07aa1", "#edc948", "#ff9da7", "#9c755f", "#bab0ac"};
#define EXACT_COLOR "#222222"

enum { SH_CIRCLE, SH_SQUARE, SH_TRIANGLE, SH_DIAMOND, SH_TRIDOWN, SH_COUNT };

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

void report_style_init(style *s, const vqs_results *r)
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

const char *report_color_of(const style *s, const vqs_result_row *w)
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
    const char *c = report_color_of(s, w);
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

void report_plot_quality_bytes(FILE *f, const ctx *c, size_t npts)
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

void report_plot_qps(FILE *f, const ctx *c, size_t npts)
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

void report_plot_sqnr(FILE *f, const ctx *c, size_t npts)
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

void report_legend(FILE *f, const ctx *c)
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

