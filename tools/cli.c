/*
 * cli.c: what the commands of the vqs tool share (cli.h): the option table
 * that drives both a command's parser and its help, error printing, number
 * and --clip parsing, opening a vector file as a float matrix.
 *
 * Design decisions:
 * - Every error is printed as "vqs <cmd>: <detail>" with the symbolic
 *   code, and the exit status is 1 for a runtime failure and 2 for bad
 *   usage, so scripts can tell a typo from a broken file. Sizes take an
 *   optional binary suffix (K, M, G) because limits and batch sizes are
 *   most often written that way.
 * - One table per command (vqs_cli_opt: name, short form, value, default,
 *   meaning) is read by vqs_cli_getopt, which builds getopt_long's arrays
 *   from it, and by vqs_cli_help_print: an option cannot be accepted
 *   without being documented, nor documented without being accepted.
 *   -h/--help is added to every table here, so every command has it.
 *   The synopsis lines stay hand-written: which options are required and
 *   which exclude each other ("--spec S | --sweep NAME") reads better
 *   written than generated. Rejected: a help text per command beside its
 *   own struct option array (what we had: -h worked in three commands of
 *   eleven, demo ignored its arguments, and nothing kept the help true);
 *   generating the synopsis too.
 * - A usage error prints the synopsis and a pointer to --help on stderr,
 *   not the whole help, which for eval is a page long.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vqs_common.h"
#include "cli.h"

int vqs_cli_fail(const char *cmd, int rc)
{
    const char *det = vqs_errdetail();
    fprintf(stderr, "vqs %s: %s%s%s [%s]\n", cmd, *det ? det : "", *det ? ": " : "",
            vqs_strerror(rc), vqs_err_name(rc));
    return rc == VQS_EUSAGE || rc == VQS_EINVAL || rc == VQS_ESPEC ? 2 : 1;
}

int vqs_cli_parse_size(const char *s, size_t *out, const char *what)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    /* an optional binary suffix: K, M or G (x 1024, 1024^2, 1024^3) */
    int sh = *end == 'K' ? 10 : *end == 'M' ? 20 : *end == 'G' ? 30 : 0;
    if (sh && end[1] == 0 && end != s) {
        if (v > (~0ull >> sh))
            return vqs_seterr(VQS_EUSAGE, "%s: '%s' is too large", what, s);
        v <<= sh;
        end++;
    }
    if (!*s || *end || errno || s[0] == '-')
        return vqs_seterr(VQS_EUSAGE, "%s: '%s' is not a non-negative integer (K, M or G may follow)", what, s);
    *out = (size_t)v;
    return 0;
}

int vqs_cli_parse_positive(const char *s, size_t *out, const char *what)
{
    int rc = vqs_cli_parse_size(s, out, what);
    if (!rc && *out == 0)
        rc = vqs_seterr(VQS_EUSAGE, "%s must be > 0", what);
    return rc;
}

int vqs_cli_parse_clip(const char *s, float *out, const char *what)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !(v <= 1.0 && (float)v > 0.5f))
        return vqs_seterr(VQS_EUSAGE, "%s: '%s' is not a quantile in (0.5, 1] (0.999 clips 0.1%% at each "
                                      "end of every dimension, 1 keeps min/max)", what, s);
    *out = (float)v;
    return 0;
}

/* Opens a vector file as a float matrix: zero-copy for float32 files,
 * converted into *owned otherwise. */
int vqs_cli_open_matrix(const char *path, size_t raw_dim, vqs_vecfile **vf, vqs_matrix *m,
                        float **owned)
{
    vqs_vecfile_opts o = {.raw_dim = raw_dim};
    return vqs_cli_open_matrix_opts(path, &o, vf, m, owned);
}

int vqs_cli_open_matrix_opts(const char *path, const vqs_vecfile_opts *o, vqs_vecfile **vf,
                             vqs_matrix *m, float **owned)
{
    int rc = vqs_vecfile_open(path, o, vf);
    if (rc)
        return rc;
    *owned = NULL;
    m->n = vqs_vecfile_n(*vf);
    m->d = vqs_vecfile_d(*vf);
    if (vqs_vecfile_f32_view(*vf, &m->x, &m->ld) == 0)
        return 0;
    vqs_clearerr();
    *owned = malloc(sizeof(float) * m->n * m->d + 1);
    if (!*owned)
        return vqs_seterr(VQS_ENOMEM, "%s: converting %zu x %zu to float32", path, m->n, m->d);
    rc = vqs_vecfile_read_f32(*vf, 0, m->n, *owned);
    m->x = *owned;
    m->ld = m->d;
    return rc;
}

/* ---- options and help ------------------------------------------------------ */

#define MAXOPT 40  /* options of one command (eval has 25) */
#define OPTCOL 26  /* the column where an option's help starts, at most */
#define WIDTH 96   /* a default that would end a line past this goes on a line of its own */

static const vqs_cli_opt help_opt = {"help", 'h', 1, NULL, NULL, "this help"};

int vqs_cli_getopt(int argc, char **argv, const vqs_cli_help *h)
{
    struct option lo[MAXOPT + 2];
    char so[3 * MAXOPT + 4];
    size_t n = 0, s = 0;
    for (const vqs_cli_opt *o = h->opts; o && (o->name || o->key); o++) {
        if (o - h->opts == MAXOPT || o->key == help_opt.key) { /* a broken table: fail loudly even with NDEBUG */
            fprintf(stderr, "vqs %s: option table: more than %d options, or one with -h's key\n", h->cmd, MAXOPT);
            abort();
        }
        if (o->name)
            lo[n++] = (struct option){o->name, o->arg ? required_argument : no_argument, NULL, o->key};
        if (o->shrt) {
            so[s++] = (char)o->key;
            if (o->arg)
                so[s++] = ':';
        }
    }
    lo[n++] = (struct option){help_opt.name, no_argument, NULL, help_opt.key};
    lo[n] = (struct option){0};
    so[s++] = (char)help_opt.key;
    so[s] = 0;
    return getopt_long(argc, argv, so, lo, NULL);
}

/* "  -o, --out FILE" into b; returns its length */
static int opt_left(char *b, size_t cap, const vqs_cli_opt *o, int any_short)
{
    char sh[8] = "";
    if (o->shrt)
        snprintf(sh, sizeof sh, "-%c%s", o->key, o->name ? ", " : "");
    else if (any_short)
        snprintf(sh, sizeof sh, "    ");
    return snprintf(b, cap, "  %s%s%s%s%s", sh, o->name ? "--" : "", o->name ? o->name : "",
                    o->arg ? " " : "", o->arg ? o->arg : "");
}

/* s with every '\n' followed by col spaces (the last '\n' too, unless
 * it ends s) */
static void put_indented(FILE *f, const char *s, int col)
{
    for (; *s; s++) {
        fputc(*s, f);
        if (*s == '\n' && s[1])
            fprintf(f, "%*s", col, "");
    }
}

static void put_opt(FILE *f, const vqs_cli_opt *o, int any_short, int col)
{
    char left[128];
    int len = opt_left(left, sizeof left, o, any_short);
    fputs(left, f);
    if (len + 2 > col)
        fprintf(f, "\n%*s", col, "");
    else
        fprintf(f, "%*s", col - len, "");
    put_indented(f, o->help, col);
    if (o->def) {
        const char *last = strrchr(o->help, '\n');
        size_t end = (size_t)col + strlen(last ? last + 1 : o->help);
        if (end + strlen(o->def) + 12 > WIDTH)
            fprintf(f, "\n%*s(default: %s)", col, "", o->def);
        else
            fprintf(f, " (default: %s)", o->def);
    }
    fputc('\n', f);
}

/* "usage: vqs CMD SYNOPSIS" (no newline) */
static void put_usage(FILE *f, const vqs_cli_help *h)
{
    int col = fprintf(f, "usage: vqs %s%s", h->cmd, *h->usage ? " " : "");
    put_indented(f, h->usage, col);
}

void vqs_cli_usage(FILE *f, const vqs_cli_help *h)
{
    put_usage(f, h);
    fprintf(f, "\n'vqs %s --help' describes every option.\n", h->cmd);
}

void vqs_cli_help_print(FILE *f, const vqs_cli_help *h)
{
    put_usage(f, h);
    fprintf(f, "\n\n%s\nOptions:\n", h->about);
    int any_short = help_opt.shrt, width = 0;
    char left[128];
    for (const vqs_cli_opt *o = h->opts; o && (o->name || o->key); o++)
        any_short |= o->shrt;
    for (const vqs_cli_opt *o = h->opts; o && (o->name || o->key); o++) {
        int len = opt_left(left, sizeof left, o, any_short);
        if (len + 2 <= OPTCOL && len + 2 > width)
            width = len + 2;
    }
    int hl = opt_left(left, sizeof left, &help_opt, any_short);
    if (hl + 2 > width)
        width = hl + 2;
    for (const vqs_cli_opt *o = h->opts; o && (o->name || o->key); o++)
        put_opt(f, o, any_short, width);
    put_opt(f, &help_opt, any_short, width);
    if (h->more)
        h->more(f);
    if (h->notes)
        fprintf(f, "\n%s", h->notes);
    fputs("\nExample:\n  ", f);
    put_indented(f, h->example, 2);
}

int vqs_cli_bad_option(const vqs_cli_help *h)
{
    vqs_cli_usage(stderr, h);
    return 2;
}

int vqs_cli_write_file(const char *path, int (*emit)(FILE *f, void *ctx), void *ctx)
{
    char *tmp = NULL;
    if (asprintf(&tmp, "%s.tmp", path) < 0)
        return vqs_seterr(VQS_ENOMEM, "%s", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        int rc = vqs_seterr(-errno, "%s", tmp);
        free(tmp);
        return rc;
    }
    int rc = emit(f, ctx);
    if (rc == -EIO || (!rc && ferror(f)))
        rc = vqs_seterr(-EIO, "%s: write failed", tmp);
    if (fclose(f) && !rc)
        rc = vqs_seterr(-errno, "%s", tmp);
    if (!rc && rename(tmp, path))
        rc = vqs_seterr(-errno, "rename %s -> %s", tmp, path);
    if (rc)
        unlink(tmp);
    free(tmp);
    return rc;
}
