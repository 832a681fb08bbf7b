/*
 * eval_grid.c: the sweeps of `vqs eval --sweep` (paper, quick, full, or a
 * file of specs) and the spec list they expand into.
 *
 * Design decisions:
 * - A sweep is a table of blocks, each the product quantizers x PCA shares x
 *   re-scoring settings; the expansion rules are few and written once
 *   (expand_block): the float32 quantizer without a PCA is exact search
 *   ("exact"), and float32 is never re-scored by float32. Rejected: a
 *   cascade of ifs per sweep, which is how the help text and the code drift
 *   apart; the help prints the same table.
 * - PCA shares are written as spec syntax (PCA50%): the codec resolves them
 *   against the real dimension, so one sweep fits any data set, and the row
 *   records the resolved PCA384 next to the spec as written.
 * - Sizes of PQ and RVQ follow the dimension that reaches the quantizer: a
 *   token "PQ{/4}x8" has M = that dimension / 4 (4 dimensions per
 *   sub-quantizer, 8 bits), rounded down to a divisor of it, so PQ stays
 *   valid after any PCA. Rejected: fixed M values, which fail on dimensions
 *   they do not divide.
 * - BIN and ROT,BIN run after the PCA shares too (PCA50%,BIN is the sign of
 *   the leading principal components, PCA50%,ROT,BIN spreads their unequal
 *   variances first): cheap rows, and whether a PCA helps binary codes is a
 *   question the sweep should answer, not assume.
 * - A sweep file is one spec per line, so any grid can be written by hand
 *   or by a script; a line may set its own nprobe=LIST and
 *   oversampling=LIST after the spec.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval_internal.h"
#include "vqs_common.h"

/* ---- entries ------------------------------------------------------------- */

int eval_entries_add(eval_entries *E, const char *spec)
{
    if (strlen(spec) >= sizeof E->v[0].spec)
        return vqs_seterr(VQS_EUSAGE, "spec '%.40s...' is longer than %zu bytes", spec, sizeof E->v[0].spec - 1);
    if (E->n == E->cap) {
        size_t nc = E->cap ? 2 * E->cap : 32;
        eval_entry *v = realloc(E->v, nc * sizeof *v);
        if (!v)
            return vqs_seterr(VQS_ENOMEM, "eval: %zu specs", nc);
        E->v = v;
        E->cap = nc;
    }
    eval_entry *e = &E->v[E->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->spec, sizeof e->spec, "%s", spec);
    return 0;
}

void eval_entries_free(eval_entries *E)
{
    free(E->v);
    E->v = NULL;
    E->n = E->cap = 0;
}

int eval_parse_list(const char *s, double *v, size_t *n, const char *what)
{
    *n = 0;
    char *dup = strdup(s), *save = NULL;
    if (!dup)
        return vqs_seterr(VQS_ENOMEM, "%s", what);
    int rc = 0;
    for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *end;
        double x = strtod(t, &end);
        if (*end || !(x > 0) || !isfinite(x) || *n == EVAL_MAXVAL) {
            rc = vqs_seterr(VQS_EUSAGE, "%s: '%s' is not a positive number (at most %d values)", what, t,
                            EVAL_MAXVAL);
            break;
        }
        v[(*n)++] = x;
    }
    free(dup);
    if (!rc && *n == 0)
        rc = vqs_seterr(VQS_EUSAGE, "%s: empty list", what);
    return rc;
}

/* ---- the sweep tables ---------------------------------------------------- */

typedef struct grid_block {
    const char *const *quant;  /* NULL-terminated; "{/N}": the quantizer's input dimension / N */
    const int *pca;            /* percentages of d, 0 = no PCA; ends with -1 */
    const char *const *refine; /* NULL-terminated; "" = none, "RFlat" */
    const char *os;            /* oversampling list of the RFlat specs */
} grid_block;

typedef struct grid {
    const char *name, *help;
    const grid_block *blocks;
    size_t nblocks;
} grid;

static const char *const paper_q[] = {"Flat", "SQfp8", "SQ8", "SQ8s", "SQ4", "BIN", "ROT,BIN", NULL};
static const char *const full_q[] = {"Flat", "SQfp16", "SQfp8", "SQ8", "SQ8s", "SQ4", "BIN", "ROT,BIN",
                                     "PQ{/4}x8", "PQ{/8}x8", "PQ{/4}x4", "RVQ{/32}x8", NULL};
static const char *const quick_q1[] = {"Flat", "SQfp8", "SQ8", "SQ4", "ROT,BIN", NULL};
static const char *const quick_q2[] = {"Flat", "SQ8", NULL};
static const char *const quick_q3[] = {"SQ4", NULL};
static const int pca_paper[] = {0, 25, 50, 75, -1};
static const int pca_none[] = {0, -1};
static const int pca_half[] = {50, -1};
static const char *const rf_none[] = {"", NULL};
static const char *const rf_flat[] = {"RFlat", NULL};
static const char *const rf_both[] = {"", "RFlat", NULL};

static const grid_block paper_b[] = {{paper_q, pca_paper, rf_none, NULL}};
static const grid_block quick_b[] = {{quick_q1, pca_none, rf_none, NULL},
                                     {quick_q2, pca_half, rf_none, NULL},
                                     {quick_q3, pca_none, rf_flat, "1,4"}};
static const grid_block full_b[] = {{full_q, pca_paper, rf_both, "1,2,4"}};

static const grid grids[] = {
    {"paper",
     "the paper's grid (28 specs): quantizers {Flat (float32), SQfp8, SQ8,\n"
     "SQ8s (int8, one scale for the whole tensor: the plain int8 cast), SQ4,\n"
     "BIN, ROT,BIN} x PCA {none, 25%, 50%, 75%} of d; flat, no re-scoring;\n"
     "Flat without PCA is 'exact'",
     paper_b, sizeof paper_b / sizeof paper_b[0]},
    {"quick",
     "8 specs, a first look: exact, SQfp8, SQ8, SQ4, ROT,BIN,\n"
     "PCA50%,Flat, PCA50%,SQ8, SQ4,RFlat at oversampling 1 and 4",
     quick_b, sizeof quick_b / sizeof quick_b[0]},
    {"full",
     "92 specs: paper's quantizers and SQfp16, PQ{d'/4}x8, PQ{d'/8}x8,\n"
     "PQ{d'/4}x4, RVQ{d'/32}x8 (d': the dimension after the PCA, M rounded\n"
     "down to a divisor of it) x PCA {none, 25%, 50%, 75%} x {no re-scoring,\n"
     "RFlat at oversampling 1, 2, 4}; float32 is not re-scored",
     full_b, sizeof full_b / sizeof full_b[0]},
};

/* dimension after PCA p% of d, as transform.c resolves it */
static size_t pca_dims(size_t d, int p)
{
    double v = floor((double)p / 100.0 * (double)d + 0.5);
    return v < 1 ? 1 : (size_t)v;
}

/* tok with "{/N}" replaced by the largest divisor of dims <= dims / N */
static void fill_token(const char *tok, size_t dims, char *out, size_t cap)
{
    const char *b = strstr(tok, "{/");
    if (!b) {
        snprintf(out, cap, "%s", tok);
        return;
    }
    size_t N = strtoul(b + 2, NULL, 10);
    const char *e = strchr(b, '}');
    size_t m = N ? dims / N : dims;
    if (m < 1)
        m = 1;
    while (dims % m)
        m--;
    snprintf(out, cap, "%.*s%zu%s", (int)(b - tok), tok, m, e ? e + 1 : "");
}

static int expand_block(eval_entries *E, const grid_block *b, size_t d)
{
    int rc = 0;
    for (const int *p = b->pca; *p >= 0 && !rc; p++)
        for (const char *const *q = b->quant; *q && !rc; q++)
            for (const char *const *r = b->refine; *r && !rc; r++) {
                int flat = !strcmp(*q, "Flat");
                if (flat && **r) /* float32 re-scored by float32 */
                    continue;
                char tok[64], spec[256];
                fill_token(*q, *p ? pca_dims(d, *p) : d, tok, sizeof tok);
                if (flat && !*p)
                    snprintf(spec, sizeof spec, "exact");
                else if (*p)
                    snprintf(spec, sizeof spec, "PCA%d%%,%s%s%s", *p, tok, **r ? "," : "", *r);
                else
                    snprintf(spec, sizeof spec, "%s%s%s", tok, **r ? "," : "", *r);
                if ((rc = eval_entries_add(E, spec)))
                    break;
                if (**r && b->os)
                    rc = eval_parse_list(b->os, E->v[E->n - 1].os, &E->v[E->n - 1].nos, "sweep oversampling");
            }
    return rc;
}

void eval_sweep_help(FILE *f)
{
    for (size_t i = 0; i < sizeof grids / sizeof grids[0]; i++) {
        fprintf(f, "    %-6s ", grids[i].name);
        for (const char *p = grids[i].help; *p; p++) {
            fputc(*p, f);
            if (*p == '\n')
                fputs("           ", f);
        }
        fputc('\n', f);
    }
    fprintf(f, "    FILE   one spec per line, optionally followed by nprobe=LIST and/or\n"
               "           oversampling=LIST; '#' starts a comment\n");
}

/* ---- sweep files ------------------------------------------------------------ */

static int add_file(eval_entries *E, const char *path, FILE *f)
{
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    int rc = 0;
    while (!rc && getline(&line, &cap, f) >= 0) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *save = NULL, *spec = strtok_r(line, " \t\r\n", &save);
        if (!spec)
            continue;
        if ((rc = eval_entries_add(E, spec)))
            break;
        eval_entry *e = &E->v[E->n - 1];
        for (char *t = strtok_r(NULL, " \t\r\n", &save); t && !rc; t = strtok_r(NULL, " \t\r\n", &save)) {
            if (!strncmp(t, "nprobe=", 7))
                rc = eval_parse_list(t + 7, e->nprobe, &e->nnprobe, "nprobe");
            else if (!strncmp(t, "oversampling=", 13))
                rc = eval_parse_list(t + 13, e->os, &e->nos, "oversampling");
            else
                rc = vqs_seterr(VQS_EFORMAT, "'%s' (expected nprobe=LIST or oversampling=LIST after the spec)", t);
        }
        if (rc)
            rc = vqs_seterr(rc == VQS_ENOMEM ? rc : VQS_EFORMAT, "sweep file %s, line %zu: %s", path, lineno,
                            vqs_errdetail());
    }
    if (!rc && ferror(f))
        rc = vqs_seterr(-EIO, "sweep file %s: read error", path);
    free(line);
    return rc;
}

int eval_sweep_add(eval_entries *E, const char *name, size_t d)
{
    for (size_t i = 0; i < sizeof grids / sizeof grids[0]; i++)
        if (!strcmp(name, grids[i].name)) {
            int rc = 0;
            for (size_t b = 0; b < grids[i].nblocks && !rc; b++)
                rc = expand_block(E, &grids[i].blocks[b], d);
            return rc;
        }
    FILE *f = fopen(name, "r");
    if (!f)
        return vqs_seterr(VQS_EUSAGE, "--sweep '%s': not paper, quick or full, and not a readable file (%s)",
                          name, strerror(errno));
    size_t before = E->n;
    int rc = add_file(E, name, f);
    fclose(f);
    if (!rc && E->n == before)
        rc = vqs_seterr(VQS_EFORMAT, "sweep file %s holds no spec", name);
    return rc;
}
