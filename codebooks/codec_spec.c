/*
 * codec_spec.c: a spec string to the chain of stages: tokens split and
 * trimmed, each handed to the stage constructors in turn (the first that
 * knows it builds the stage), the chain's rules checked (one quantizer,
 * last), and the canonical spec.
 *
 * Design decisions:
 * - The constructors are tried in order and answer VQS_ENOTFOUND for a
 *   token that is not theirs, so adding a family is one entry in ctors[].
 *   Rejected: a central token table (it would duplicate each family's own
 *   grammar, e.g. PCA50%, HAD2, PQ16x8).
 */
#include "codec_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* ---- spec ---------------------------------------------------------------- */

int vqs_spec_parse_mx(const char *p, size_t *M, size_t *nbits)
{
    if (!isdigit((unsigned char)*p))
        return -1;
    char *e;
    unsigned long long m = strtoull(p, &e, 10);
    unsigned long long b = 8;
    if (*e == 'x') {
        if (!isdigit((unsigned char)e[1]))
            return -1;
        b = strtoull(e + 1, &e, 10);
    }
    if (*e != '\0' || m > (1u << 20) || b > 64)
        return -1;
    *M = (size_t)m;
    *nbits = (size_t)b;
    return 0;
}

typedef int (*stage_ctor)(const char *tok, const char *next, vqs_stage *s);
static const stage_ctor ctors[] = {vqs_stage_transform_new, vqs_stage_sq_new, vqs_stage_bin_new,
                                   vqs_stage_pq_new, vqs_stage_rvq_new};

int vqs_codec_stage_new(const char *tok, const char *next, vqs_stage *s)
{
    int rc = VQS_ENOTFOUND;
    for (size_t k = 0; k < sizeof ctors / sizeof ctors[0] && rc == VQS_ENOTFOUND; k++)
        rc = ctors[k](tok, next, s);
    return rc;
}

/* Splits spec into trimmed tokens (at most MAX_STAGES). */
static int split_spec(const char *spec, char tok[MAX_STAGES][32], int *ntok)
{
    int n = 0;
    const char *p = spec;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        while (len && isspace((unsigned char)*p)) {
            p++;
            len--;
        }
        while (len && isspace((unsigned char)p[len - 1]))
            len--;
        if (len == 0)
            return vqs_seterr(VQS_ESPEC, "spec '%s': empty token", spec);
        if (len >= 32)
            return vqs_seterr(VQS_ESPEC, "spec '%s': token '%.*s' too long", spec, (int)len, p);
        if (n == MAX_STAGES)
            return vqs_seterr(VQS_ESPEC, "spec '%s': more than %d stages", spec, MAX_STAGES);
        memcpy(tok[n], p, len);
        tok[n][len] = '\0';
        n++;
        if (!e)
            break;
        p = e + 1;
    }
    *ntok = n;
    return 0;
}

int vqs_codec_build_stages(vqs_codec *c, const char *spec)
{
    char tok[MAX_STAGES][32];
    int ntok = 0, rc;
    if ((rc = split_spec(spec, tok, &ntok)))
        return rc;
    size_t d = c->d;
    for (int i = 0; i < ntok; i++) {
        vqs_stage *s = &c->st[i];
        memset(s, 0, sizeof *s);
        memcpy(s->token, tok[i], sizeof s->token); /* tokens are < 32 bytes */
        s->d_in = d;
        rc = vqs_codec_stage_new(tok[i], i + 1 < ntok ? tok[i + 1] : NULL, s);
        if (rc == VQS_ENOTFOUND)
            return vqs_seterr(VQS_ESPEC, "spec '%s': unknown token '%s'", spec, tok[i]);
        if (rc)
            return rc;
        c->nstages = i + 1;
        if (i == 0 && !strcmp(tok[i], "Flat"))
            /* the alias reads "keep the transform's output in float32";
             * alone it would be an uncompressed index, whose name is SQfp32 */
            return vqs_seterr(VQS_ESPEC, "spec '%s': 'Flat' follows a transform (e.g. PCA256,Flat); "
                                         "a float32 codec alone is SQfp32", spec);
        if (s->ops->is_quantizer && i + 1 < ntok)
            return vqs_seterr(VQS_ESPEC, "spec '%s': '%s' is a quantizer and must be last (found '%s' after it)",
                              spec, tok[i], tok[i + 1]);
        if (!s->ops->is_quantizer && i + 1 == ntok)
            return vqs_seterr(VQS_ESPEC, "spec '%s': ends with the transform '%s'; a quantizer must follow",
                              spec, tok[i]);
        if (s->ops->is_quantizer)
            s->d_out = s->d_in;
        d = s->d_out;
    }
    /* the canonical spec: the stages' tokens (a constructor may have
     * resolved its own, e.g. PCA50% -> PCA384) */
    size_t len = 1; /* NUL */
    for (int i = 0; i < ntok; i++)
        len += strlen(c->st[i].token) + 1;
    if (!(c->spec = malloc(len)))
        return vqs_seterr(VQS_ENOMEM, "codec spec");
    c->spec[0] = '\0';
    for (int i = 0; i < ntok; i++) {
        if (i)
            strcat(c->spec, ",");
        strcat(c->spec, c->st[i].token);
    }
    return 0;
}
