/*
 * cli.c: what the commands of the vqs tool share (cli.h): error printing,
 * number and --clip parsing, opening a vector file as a float matrix.
 *
 * Design decisions: every error is printed as "vqs <cmd>: <detail>" with
 * the symbolic code, and the exit status is 1 for a runtime failure and 2
 * for bad usage, so scripts can tell a typo from a broken file. Sizes take
 * an optional binary suffix (K, M, G) because limits and batch sizes are
 * most often written that way.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
