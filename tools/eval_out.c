/*
 * eval_out.c: the result files of `vqs eval` (PREFIX.json in the vqs-eval/2
 * format, PREFIX.csv with the same row fields flattened) and its markdown
 * table on stdout.
 *
 * Design decisions:
 * - The JSON document is the one source: rows are Jansson objects appended
 *   to root["rows"] as they are measured, and the CSV and the markdown are
 *   rendered from those objects, so the three outputs cannot disagree.
 * - Every file is rewritten whole after every row, through a temporary name
 *   and rename(2): an interrupted sweep leaves complete files holding every
 *   row measured so far, never half a document. Rejected: appending JSON
 *   lines (the format is one document that other tools read whole) and
 *   writing only at the end (what lost hours of rows before).
 * - Reals are written with 10 significant digits: recalls over 10^6
 *   queries stay exact and timings do not print as 1.2300000000000000711.
 *   NaN and Inf (e.g. the SQNR of lossless codes) become null.
 * - CSV: the row fields in the schema's order, then spread_<field> for the
 *   spread of each averaged field; null is an empty cell; strings are
 *   quoted with "" doubling (RFC 4180).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "eval_internal.h"
#include "vqs_common.h"

json_t *eval_jreal(double v) { return isfinite(v) ? json_real(v) : json_null(); }

/* ---- command line ------------------------------------------------------------ */

static int shell_safe(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=./,:%@", *s))
            return 0;
    return 1;
}

char *eval_command_line(int argc, char **argv)
{
    size_t len = 1;
    for (int i = 0; i < argc; i++)
        len += 4 * strlen(argv[i]) + 3;
    char *s = malloc(len), *p = s;
    if (!s)
        return NULL;
    for (int i = 0; i < argc; i++) {
        if (i)
            *p++ = ' ';
        if (shell_safe(argv[i])) {
            p = stpcpy(p, argv[i]);
            continue;
        }
        *p++ = '\'';
        for (const char *c = argv[i]; *c; c++) {
            if (*c == '\'')
                p = stpcpy(p, "'\\''");
            else
                *p++ = *c;
        }
        *p++ = '\'';
    }
    *p = 0;
    return s;
}

/* ---- CSV ------------------------------------------------------------------------ */

static const char *const csv_fields[] = {
    "spec",          "status",          "error",         "transform",    "pca_dims",
    "pca_fraction",  "quantizer",       "refine",        "index",        "nprobe",
    "oversampling",  "candidates",      "code_bytes",    "total_bytes",  "vector_bytes",
    "rss_bytes",     "bits_per_dim",
    "compression",   "train_s",         "add_s",         "recall_at_1",  "recall_at_10",
    "recall_at_100", "ndcg_at_10",      "mrr_at_10",     "qrels_ndcg_at_10",
    "qrels_recall_at_10", "sqnr_db",    "rel_mse",       "qps_1_thread", "qps_all_threads",
    "train_reused",  NULL};

static const char *const csv_spread[] = {"recall_at_1", "recall_at_10", "recall_at_100", "ndcg_at_10",
                                         "mrr_at_10", "qrels_ndcg_at_10", "qrels_recall_at_10",
                                         "sqnr_db", "rel_mse", "qps_1_thread", "qps_all_threads",
                                         "train_s", "add_s", NULL};

static void csv_value(FILE *f, const json_t *v)
{
    if (json_is_string(v)) {
        fputc('"', f);
        for (const char *c = json_string_value(v); *c; c++) {
            if (*c == '"')
                fputc('"', f);
            fputc(*c, f);
        }
        fputc('"', f);
    } else if (json_is_integer(v)) {
        fprintf(f, "%lld", (long long)json_integer_value(v));
    } else if (json_is_real(v)) {
        fprintf(f, "%.10g", json_real_value(v));
    } else if (json_is_true(v) || json_is_false(v)) {
        fputs(json_is_true(v) ? "true" : "false", f);
    }
}

static int write_csv(FILE *f, const json_t *root)
{
    for (size_t i = 0; csv_fields[i]; i++)
        fprintf(f, "%s%s", i ? "," : "", csv_fields[i]);
    for (size_t i = 0; csv_spread[i]; i++)
        fprintf(f, ",spread_%s", csv_spread[i]);
    fputc('\n', f);
    size_t r;
    json_t *row;
    json_array_foreach(json_object_get(root, "rows"), r, row)
    {
        for (size_t i = 0; csv_fields[i]; i++) {
            if (i)
                fputc(',', f);
            csv_value(f, json_object_get(row, csv_fields[i]));
        }
        const json_t *sp = json_object_get(row, "spread");
        for (size_t i = 0; csv_spread[i]; i++) {
            fputc(',', f);
            if (sp)
                csv_value(f, json_object_get(sp, csv_spread[i]));
        }
        fputc('\n', f);
    }
    return 0;
}

/* ---- files ------------------------------------------------------------------------ */

struct emit_ctx {
    int csv;
    const json_t *root;
};

static int emit(FILE *f, void *c)
{
    const struct emit_ctx *e = c;
    if (e->csv)
        return write_csv(f, e->root);
    if (json_dumpf(e->root, f, JSON_INDENT(1) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10)) ||
        fputc('\n', f) == EOF)
        return -EIO;
    return 0;
}

/* writes path through path.tmp and rename */
static int write_file(const char *path, int csv, const json_t *root)
{
    struct emit_ctx e = {csv, root};
    return vqs_cli_write_file(path, emit, &e);
}

int eval_out_write(const eval_out *o)
{
    int rc = 0;
    char *p = NULL;
    if (o->json && (rc = write_file(o->json, 0, o->root)))
        return rc;
    if (!o->prefix)
        return 0;
    if (asprintf(&p, "%s.json", o->prefix) < 0)
        return vqs_seterr(VQS_ENOMEM, "%s", o->prefix);
    rc = write_file(p, 0, o->root);
    free(p);
    if (rc)
        return rc;
    if (asprintf(&p, "%s.csv", o->prefix) < 0)
        return vqs_seterr(VQS_ENOMEM, "%s", o->prefix);
    rc = write_file(p, 1, o->root);
    free(p);
    return rc;
}

/* ---- markdown ------------------------------------------------------------------------ */

static double num(const json_t *row, const char *key)
{
    const json_t *v = json_object_get(row, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

static void cell(FILE *f, double v, const char *fmt)
{
    if (isfinite(v))
        fprintf(f, fmt, v);
    else
        fputs(" - |", f);
}

void eval_md_header(FILE *f, const json_t *root, int qrels)
{
    const json_t *ds = json_object_get(root, "dataset");
    fprintf(f, "# vqs eval: %s (%s); k = %d, %lld threads, kernels %s, %lld seed%s%s%s\n",
            json_string_value(json_object_get(ds, "name")),
            json_string_value(json_object_get(ds, "description")), EVAL_K,
            (long long)json_integer_value(json_object_get(root, "threads")),
            json_string_value(json_object_get(root, "simd")),
            (long long)json_integer_value(json_object_get(root, "seeds")),
            json_integer_value(json_object_get(root, "seeds")) == 1 ? "" : "s (mean, +- sample std)",
            json_is_true(json_object_get(root, "symmetric")) ? ", symmetric queries" : "",
            json_is_true(json_object_get(root, "timing")) ? "" : ", no timing");
    fprintf(f, "| spec | nprobe | oversampling | candidates | code B/vec | total B/vec | "
               "B/vec held: computed / resident | compression | "
               "train s | add s | recall@1 | recall@10 | recall@100 | nDCG@10 | MRR@10 | %s"
               "SQNR dB | q/s 1 thread | q/s %lld threads |\n",
            qrels ? "qrels nDCG@10 | qrels recall@10 | " : "",
            (long long)json_integer_value(json_object_get(root, "threads")));
    fprintf(f, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|%s---|---|---|\n",
            qrels ? "---|---|" : "");
    fflush(f);
}

void eval_md_row(FILE *f, const json_t *row, int qrels, int seeds)
{
    const char *spec = json_string_value(json_object_get(row, "spec"));
    if (strcmp(json_string_value(json_object_get(row, "status")), "ok")) {
        fprintf(f, "| %s | error: %s |\n", spec, json_string_value(json_object_get(row, "error")));
        fflush(f);
        return;
    }
    fprintf(f, "| %s |", spec);
    cell(f, num(row, "nprobe"), " %.0f |");
    cell(f, num(row, "oversampling"), " %g |");
    cell(f, num(row, "candidates"), " %.0f |");
    cell(f, num(row, "code_bytes"), " %.1f |");
    cell(f, num(row, "total_bytes"), " %.1f |");
    double vb = num(row, "vector_bytes"), rb = num(row, "rss_bytes");
    if (isfinite(rb))
        fprintf(f, " %.1f / %.1f |", vb, rb);
    else
        cell(f, vb, " %.1f |");
    cell(f, num(row, "compression"), " %.1f |");
    cell(f, num(row, "train_s"), " %.2f |");
    cell(f, num(row, "add_s"), " %.2f |");
    cell(f, num(row, "recall_at_1"), " %.4f |");
    double r10 = num(row, "recall_at_10");
    const json_t *sp = json_object_get(row, "spread");
    if (seeds > 1 && isfinite(r10))
        fprintf(f, " %.4f +- %.4f |", r10, json_number_value(json_object_get(sp, "recall_at_10")));
    else
        cell(f, r10, " %.4f |");
    cell(f, num(row, "recall_at_100"), " %.4f |");
    cell(f, num(row, "ndcg_at_10"), " %.4f |");
    cell(f, num(row, "mrr_at_10"), " %.4f |");
    if (qrels) {
        cell(f, num(row, "qrels_ndcg_at_10"), " %.4f |");
        cell(f, num(row, "qrels_recall_at_10"), " %.4f |");
    }
    cell(f, num(row, "sqnr_db"), " %.1f |");
    cell(f, num(row, "qps_1_thread"), " %.0f |");
    cell(f, num(row, "qps_all_threads"), " %.0f |");
    fputc('\n', f);
    fflush(f);
}
