/*
 * results.c: the `vqs eval` results file (format "vqs-eval/2") read into
 * C structs (results.h).
 *
 * Design decisions:
 * - Jansson parses the whole document and stays alive inside vqs_results:
 *   the rows' strings point into it, so nothing is copied and one free
 *   releases everything. Results files are small (a row is ~1 KB).
 * - Validation is strict about what the consumers need and lenient about
 *   what they do not know: every field of the schema must be present with
 *   its type (null only where the schema allows it), and unknown fields are
 *   ignored, so a newer `vqs eval` that adds a column still loads. The first
 *   problem stops the load and its message names the file, the row (index
 *   and spec) and the field, which is what a person needs to fix a file.
 * - Values are range-checked where a consumer would otherwise draw or
 *   divide nonsense: bytes > 0 (log axes, ratios), rates in [0, 1],
 *   queries/s > 0, d > 0.
 * - Duplicate keys are refused (JSON_REJECT_DUPLICATES): two "recall_at_10"
 *   in a row mean the writer is broken, and silently taking one hides it.
 * Rejected: a streaming parser (the file is small); copying into owned
 * strings (more code, no benefit while the document lives as long as the
 * structs).
 */
#define _GNU_SOURCE
#include "results.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vqs_common.h"

#define FORMAT "vqs-eval/2"

/* Where a field is read, for messages: "FILE: rows[3] (spec 'SQ8'): field 'x'". */
typedef struct ctx {
    const char *file;
    char where[160]; /* "" at the top level, "dataset", "rows[3] (spec 'SQ8')" */
} ctx;

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "?";
}

static int bad(const ctx *c, const char *field, const char *fmt, const char *a)
{
    char msg[200];
    snprintf(msg, sizeof msg, fmt, a);
    return vqs_seterr(VQS_EFORMAT, "%s: %s%sfield '%s': %s", c->file, c->where, *c->where ? ": " : "",
                      field, msg);
}

/* The field's value; NULL (with the error set in *rc) when missing. */
static json_t *field(const ctx *c, json_t *obj, const char *name, int *rc)
{
    json_t *v = json_object_get(obj, name);
    if (!v)
        *rc = vqs_seterr(VQS_EFORMAT, "%s: %s%smissing field '%s'", c->file, c->where, *c->where ? ": " : "",
                         name);
    return v;
}

/* A string field; nullable: null gives NULL. */
static int get_str(const ctx *c, json_t *obj, const char *name, int nullable, const char **out)
{
    int rc = 0;
    json_t *v = field(c, obj, name, &rc);
    if (!v)
        return rc;
    if (nullable && json_is_null(v)) {
        *out = NULL;
        return 0;
    }
    if (!json_is_string(v))
        return bad(c, name, nullable ? "expected a string or null, got %s" : "expected a string, got %s",
                   type_name(v));
    *out = json_string_value(v);
    return 0;
}

/* A number field (integer or real) in [lo, hi]; nullable: null gives NAN. */
static int get_num(const ctx *c, json_t *obj, const char *name, int nullable, double lo, double hi,
                   double *out)
{
    int rc = 0;
    json_t *v = field(c, obj, name, &rc);
    if (!v)
        return rc;
    if (nullable && json_is_null(v)) {
        *out = NAN;
        return 0;
    }
    if (!json_is_number(v))
        return bad(c, name, nullable ? "expected a number or null, got %s" : "expected a number, got %s",
                   type_name(v));
    double x = json_number_value(v);
    if (!(x >= lo && x <= hi)) {
        char r[96];
        snprintf(r, sizeof r, "%g is out of range [%g, %g]", x, lo, hi);
        return bad(c, name, "%s", r);
    }
    *out = x;
    return 0;
}

/* An integer field in [lo, hi]. */
static int get_int(const ctx *c, json_t *obj, const char *name, long long lo, long long hi, long long *out)
{
    int rc = 0;
    json_t *v = field(c, obj, name, &rc);
    if (!v)
        return rc;
    if (!json_is_integer(v))
        return bad(c, name, "expected an integer, got %s", type_name(v));
    long long x = json_integer_value(v);
    if (x < lo || x > hi) {
        char r[96];
        snprintf(r, sizeof r, "%lld is out of range [%lld, %lld]", x, lo, hi);
        return bad(c, name, "%s", r);
    }
    *out = x;
    return 0;
}

static int get_bool(const ctx *c, json_t *obj, const char *name, int *out)
{
    int rc = 0;
    json_t *v = field(c, obj, name, &rc);
    if (!v)
        return rc;
    if (!json_is_boolean(v))
        return bad(c, name, "expected true or false, got %s", type_name(v));
    *out = json_is_true(v);
    return 0;
}

static const char *const qkeys[VQS_Q_COUNT] = {"recall_at_1", "recall_at_10", "recall_at_100",
                                               "ndcg_at_10",  "mrr_at_10",    "qrels_ndcg_at_10"};
static const char *const qnames[VQS_Q_COUNT] = {"recall@1", "recall@10", "recall@100",
                                                "nDCG@10",  "MRR@10",    "qrels nDCG@10"};

static int load_row(ctx *c, json_t *o, size_t i, vqs_result_row *r)
{
    int rc;
    snprintf(c->where, sizeof c->where, "rows[%zu]", i);
    if (!json_is_object(o))
        return vqs_seterr(VQS_EFORMAT, "%s: %s: expected an object, got %s", c->file, c->where, type_name(o));
    if ((rc = get_str(c, o, "spec", 0, &r->spec)))
        return rc;
    snprintf(c->where, sizeof c->where, "rows[%zu] (spec '%.100s')", i, r->spec);
    const char *status;
    if ((rc = get_str(c, o, "status", 0, &status)))
        return rc;
    for (int m = 0; m < VQS_Q_COUNT; m++)
        r->q[m] = r->spread[m] = NAN;
    r->pca_fraction = r->sqnr_db = r->rel_mse = r->qps_1_thread = r->qps_all_threads = NAN;
    r->qrels_recall_at_10 = NAN;
    if (!strcmp(status, "error")) {
        r->ok = 0;
        return get_str(c, o, "error", 0, &r->error);
    }
    if (strcmp(status, "ok"))
        return bad(c, "status", "expected \"ok\" or \"error\", got \"%.60s\"", status);
    r->ok = 1;
    double pd;
    const double big = 1e15;
    if ((rc = get_str(c, o, "transform", 1, &r->transform)) || (rc = get_num(c, o, "pca_dims", 1, 1, 1e9, &pd)) ||
        (rc = get_num(c, o, "pca_fraction", 1, 0, 1, &r->pca_fraction)) ||
        (rc = get_str(c, o, "quantizer", 0, &r->quantizer)) || (rc = get_str(c, o, "refine", 0, &r->refine)) ||
        (rc = get_str(c, o, "index", 0, &r->index)) || (rc = get_int(c, o, "nprobe", 0, 1LL << 40, &r->nprobe)) ||
        (rc = get_num(c, o, "oversampling", 0, 1, 1e6, &r->oversampling)) ||
        (rc = get_int(c, o, "candidates", 0, 1LL << 40, &r->candidates)) ||
        (rc = get_num(c, o, "code_bytes", 0, 1e-9, big, &r->code_bytes)) ||
        (rc = get_num(c, o, "total_bytes", 0, 1e-9, big, &r->total_bytes)) ||
        (rc = get_num(c, o, "bits_per_dim", 0, 0, 1e6, &r->bits_per_dim)) ||
        (rc = get_num(c, o, "compression", 0, 0, big, &r->compression)) ||
        (rc = get_num(c, o, "train_s", 0, 0, big, &r->train_s)) ||
        (rc = get_num(c, o, "add_s", 0, 0, big, &r->add_s)))
        return rc;
    if (!isnan(pd) && pd != floor(pd))
        return bad(c, "pca_dims", "expected an integer or null, got %s", "a fraction");
    if (isnan(pd) != isnan(r->pca_fraction))
        return bad(c, isnan(pd) ? "pca_fraction" : "pca_dims", "%s", "pca_dims and pca_fraction must both be null or both be set");
    r->pca_dims = isnan(pd) ? 0 : (int)pd;
    for (int m = 0; m < VQS_Q_COUNT; m++)
        if ((rc = get_num(c, o, qkeys[m], m == VQS_Q_QRELS_NDCG10, 0, 1, &r->q[m])))
            return rc;
    if ((rc = get_num(c, o, "qrels_recall_at_10", 1, 0, 1, &r->qrels_recall_at_10)) ||
        (rc = get_num(c, o, "sqnr_db", 1, -1e6, 1e6, &r->sqnr_db)) ||
        (rc = get_num(c, o, "rel_mse", 1, 0, big, &r->rel_mse)) ||
        (rc = get_num(c, o, "qps_1_thread", 1, 1e-12, big, &r->qps_1_thread)) ||
        (rc = get_num(c, o, "qps_all_threads", 1, 1e-12, big, &r->qps_all_threads)))
        return rc;
    json_t *sp = field(c, o, "spread", &rc);
    if (!sp)
        return rc;
    if (!json_is_object(sp))
        return bad(c, "spread", "expected an object, got %s", type_name(sp));
    ctx cs = *c;
    snprintf(cs.where, sizeof cs.where, "%s: spread", c->where);
    for (int m = 0; m < VQS_Q_COUNT; m++)
        if (json_object_get(sp, qkeys[m]) && (rc = get_num(&cs, sp, qkeys[m], 1, 0, 1, &r->spread[m])))
            return rc;
    return 0;
}

static int load_doc(json_t *doc, const char *file, vqs_results *R)
{
    ctx c = {.file = file, .where = ""};
    int rc;
    if (!json_is_object(doc))
        return vqs_seterr(VQS_EFORMAT, "%s: expected a JSON object (a vqs eval results file), got %s", file,
                          type_name(doc));
    if ((rc = get_str(&c, doc, "format", 0, &R->format)))
        return rc;
    if (strcmp(R->format, FORMAT))
        return vqs_seterr(strncmp(R->format, "vqs-eval/", 9) ? VQS_EFORMAT : VQS_EVERSION,
                          "%s: format '%.60s': expected '" FORMAT "' (written by vqs eval --out)", file, R->format);
    if ((rc = get_str(&c, doc, "command", 0, &R->command)) || (rc = get_str(&c, doc, "created", 0, &R->created)))
        return rc;
    json_t *ds = field(&c, doc, "dataset", &rc);
    if (!ds)
        return rc;
    if (!json_is_object(ds))
        return bad(&c, "dataset", "expected an object, got %s", type_name(ds));
    ctx cd = {.file = file, .where = "dataset"};
    vqs_result_dataset *D = &R->dataset;
    if ((rc = get_str(&cd, ds, "name", 0, &D->name)) || (rc = get_str(&cd, ds, "base", 0, &D->base)) ||
        (rc = get_str(&cd, ds, "queries", 0, &D->queries)) || (rc = get_int(&cd, ds, "n", 1, 1LL << 40, &D->n)) ||
        (rc = get_int(&cd, ds, "nq", 1, 1LL << 40, &D->nq)) || (rc = get_int(&cd, ds, "d", 1, 1 << 20, &D->d)) ||
        (rc = get_str(&cd, ds, "metric", 0, &D->metric)) ||
        (rc = get_str(&cd, ds, "ground_truth", 0, &D->ground_truth)) ||
        (rc = get_str(&cd, ds, "qrels", 1, &D->qrels)) || (rc = get_str(&cd, ds, "description", 0, &D->description)))
        return rc;
    vqs_metric m;
    if (vqs_metric_parse(D->metric, &m))
        return bad(&cd, "metric", "expected \"l2\", \"ip\" or \"cos\", got \"%.40s\"", D->metric);
    if ((rc = get_int(&c, doc, "k", 1, 1 << 20, &R->k)) || (rc = get_int(&c, doc, "threads", 1, 1 << 20, &R->threads)) ||
        (rc = get_str(&c, doc, "simd", 0, &R->simd)) || (rc = get_int(&c, doc, "seeds", 1, 1 << 20, &R->seeds)) ||
        (rc = get_bool(&c, doc, "symmetric", &R->symmetric)) || (rc = get_bool(&c, doc, "timing", &R->timing)))
        return rc;
    json_t *rows = field(&c, doc, "rows", &rc);
    if (!rows)
        return rc;
    if (!json_is_array(rows))
        return bad(&c, "rows", "expected an array, got %s", type_name(rows));
    R->nrows = json_array_size(rows);
    R->rows = calloc(R->nrows ? R->nrows : 1, sizeof *R->rows);
    if (!R->rows)
        return vqs_seterr(VQS_ENOMEM, "%s: %zu rows", file, R->nrows);
    for (size_t i = 0; i < R->nrows; i++)
        if ((rc = load_row(&c, json_array_get(rows, i), i, &R->rows[i])))
            return rc;
    return 0;
}

int vqs_results_parse(const char *text, size_t len, const char *name, vqs_results **out)
{
    if (!text || !out)
        return vqs_seterr(VQS_EINVAL, "results_parse: NULL argument");
    *out = NULL;
    const char *file = name ? name : "<memory>";
    json_error_t je;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!doc)
        return vqs_seterr(VQS_EFORMAT, "%s: line %d, column %d: %s", file, je.line, je.column, je.text);
    vqs_results *R = calloc(1, sizeof *R);
    char *path = strdup(file);
    if (!R || !path) {
        free(R);
        free(path);
        json_decref(doc);
        return vqs_seterr(VQS_ENOMEM, "%s", file);
    }
    R->doc_ = doc;
    R->path = path;
    int rc = load_doc(doc, file, R);
    if (rc) {
        vqs_results_free(R);
        return rc;
    }
    *out = R;
    return 0;
}

int vqs_results_load(const char *path, vqs_results **out)
{
    if (!path || !out)
        return vqs_seterr(VQS_EINVAL, "results_load: NULL argument");
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return vqs_seterr(-errno, "%s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (len == cap) {
            size_t nc = cap ? 2 * cap : 65536;
            char *nb = realloc(buf, nc);
            if (!nb) {
                rc = vqs_seterr(VQS_ENOMEM, "%s", path);
                break;
            }
            buf = nb;
            cap = nc;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f))
                rc = vqs_seterr(-EIO, "%s: read error", path);
            break;
        }
    }
    fclose(f);
    if (!rc)
        rc = vqs_results_parse(buf, len, path, out);
    free(buf);
    return rc;
}

void vqs_results_free(vqs_results *r)
{
    if (!r)
        return;
    json_decref((json_t *)r->doc_);
    free((char *)r->path);
    free(r->rows);
    free(r);
}

int vqs_qmetric_parse(const char *s, vqs_qmetric *out)
{
    static const struct {
        const char *name;
        vqs_qmetric m;
    } tab[] = {{"recall@1", VQS_Q_RECALL1},     {"recall@10", VQS_Q_RECALL10},
               {"recall@100", VQS_Q_RECALL100}, {"ndcg@10", VQS_Q_NDCG10},
               {"mrr@10", VQS_Q_MRR10},         {"qrels_ndcg@10", VQS_Q_QRELS_NDCG10}};
    for (size_t i = 0; s && i < sizeof tab / sizeof tab[0]; i++)
        if (!strcasecmp(s, tab[i].name) || !strcasecmp(s, qkeys[tab[i].m])) {
            *out = tab[i].m;
            return 0;
        }
    return vqs_seterr(VQS_EUSAGE,
                      "--metric '%s': want recall@1, recall@10, recall@100, ndcg@10, mrr@10 or qrels_ndcg@10 "
                      "(or the JSON keys recall_at_10, ...)",
                      s ? s : "(null)");
}

const char *vqs_qmetric_name(vqs_qmetric m) { return m >= 0 && m < VQS_Q_COUNT ? qnames[m] : "?"; }
const char *vqs_qmetric_key(vqs_qmetric m) { return m >= 0 && m < VQS_Q_COUNT ? qkeys[m] : "?"; }

int vqs_cost_parse(const char *s, vqs_cost *out)
{
    if (s && (!strcmp(s, "total") || !strcmp(s, "total_bytes"))) {
        *out = VQS_COST_TOTAL;
        return 0;
    }
    if (s && (!strcmp(s, "code") || !strcmp(s, "code_bytes"))) {
        *out = VQS_COST_CODE;
        return 0;
    }
    return vqs_seterr(VQS_EUSAGE, "--cost '%s': want total or code", s ? s : "(null)");
}

const char *vqs_cost_name(vqs_cost c) { return c == VQS_COST_CODE ? "code bytes" : "total bytes"; }

double vqs_result_cost(const vqs_result_row *row, vqs_cost c)
{
    return c == VQS_COST_CODE ? row->code_bytes : row->total_bytes;
}

double vqs_results_float_bytes(const vqs_results *r) { return 4.0 * (double)r->dataset.d; }
