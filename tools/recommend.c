/*
 * recommend.c: the configuration to use for a budget or a quality target,
 * and the commands that use it (report.h, `vqs recommend`).
 *
 * Design decisions:
 * - The pick is a scan over the rows with an explicit order (metric, bytes,
 *   queries/s, row index), not the Pareto front: the answer for a budget is
 *   always on the front anyway, and the scan states the tie-breaks in one
 *   place. When nothing qualifies, the message names the best available so
 *   the next command is obvious.
 * - The commands are the real ones: `vqs import`'s flags (tools/store_cmds.c)
 *   and the service's collection body (api/README.md). An eval spec is not
 *   always a collection spec:
 *   * a refine stage (",RFlat", ",Refine(X)") is the service's re-scoring
 *     from the vectors it keeps on disk (rerank "disk"); the collection layer
 *     re-scores from disk whenever it keeps vectors, so a refine copy in the
 *     spec would only take memory. The spec loses its refine token and the
 *     body keeps the oversampling. RFlat re-scores exactly, as the disk does;
 *     Refine(X) re-scores approximately, and exact re-scoring of the same
 *     candidates finds every true neighbour among them, so its recall is at
 *     least the measured one (said in a note);
 *   * no refine stage: the figures were measured without re-scoring, so the
 *     body says rerank "none" (the collection keeps only codes);
 *   * exact search: a collection with train_size 0 never trains and answers
 *     exactly from its float32 vectors; `vqs import` always trains, so there
 *     is no import command for it (null, and a note says why);
 *   * nprobe and oversampling: the body stores them with the collection;
 *     `vqs import` stores the defaults (16, 4), so `vqs search` gets them as
 *     flags.
 * - One description (a JSON object) serves --json, the text output and the
 *   tests, which run the printed argv and PUT the printed body to a real
 *   server.
 * Rejected: printing the eval spec unchanged into the body (the server
 * accepts ",RFlat" but then keeps a float32 copy in memory as well as on
 * disk, 4 d bytes per vector that the figures did not count).
 */
#define _GNU_SOURCE
#include "report.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vqs_collection.h"
#include "vqs_common.h"

/* a before b in the pick's order (1), after (0) */
static int better(const vqs_result_row *a, const vqs_result_row *b, const vqs_recommend_query *q, size_t ia,
                  size_t ib)
{
    double ma = a->q[q->metric], mb = b->q[q->metric];
    double ca = vqs_result_cost(a, q->cost), cb = vqs_result_cost(b, q->cost);
    double sa = isnan(a->qps_1_thread) ? -1 : a->qps_1_thread, sb = isnan(b->qps_1_thread) ? -1 : b->qps_1_thread;
    if (isnan(q->max_cost)) { /* min_quality: fewest bytes, then the higher metric */
        if (ca != cb)
            return ca < cb;
        if (ma != mb)
            return ma > mb;
    } else { /* max_cost: the best metric, then fewer bytes */
        if (ma != mb)
            return ma > mb;
        if (ca != cb)
            return ca < cb;
    }
    if (sa != sb)
        return sa > sb;
    return ia < ib;
}

int vqs_recommend_pick(const vqs_results *r, const vqs_recommend_query *q, size_t *row)
{
    if (!r || !q || !row || q->metric < 0 || q->metric >= VQS_Q_COUNT || isnan(q->max_cost) == isnan(q->min_quality))
        return vqs_seterr(VQS_EINVAL, "recommend: want exactly one of a budget and a quality target");
    const char *mn = vqs_qmetric_name(q->metric), *cn = vqs_cost_name(q->cost);
    long best = -1, best_any = -1, cheapest = -1;
    for (size_t i = 0; i < r->nrows; i++) {
        const vqs_result_row *w = &r->rows[i];
        if (!w->ok || isnan(w->q[q->metric]))
            continue;
        double c = vqs_result_cost(w, q->cost);
        /* for the message when nothing qualifies */
        if (best_any < 0 || w->q[q->metric] > r->rows[best_any].q[q->metric] ||
            (w->q[q->metric] == r->rows[best_any].q[q->metric] && c < vqs_result_cost(&r->rows[best_any], q->cost)))
            best_any = (long)i;
        if (cheapest < 0 || c < vqs_result_cost(&r->rows[cheapest], q->cost))
            cheapest = (long)i;
        int fits = isnan(q->max_cost) ? w->q[q->metric] >= q->min_quality : c <= q->max_cost;
        if (fits && (best < 0 || better(w, &r->rows[best], q, i, (size_t)best)))
            best = (long)i;
    }
    if (best >= 0) {
        *row = (size_t)best;
        return 0;
    }
    if (best_any < 0)
        return vqs_seterr(VQS_ENOTFOUND, "%s: no row with status ok has %s%s", r->path, mn,
                          q->metric == VQS_Q_QRELS_NDCG10 ? " (the results were made without --qrels)" : "");
    if (isnan(q->max_cost)) {
        const vqs_result_row *b = &r->rows[best_any];
        return vqs_seterr(VQS_ENOTFOUND, "no configuration reaches %s %g; the best is %s at %.4g (%.1f %s)", mn,
                          q->min_quality, b->spec, b->q[q->metric], vqs_result_cost(b, q->cost), cn);
    }
    const vqs_result_row *c = &r->rows[cheapest];
    return vqs_seterr(VQS_ENOTFOUND, "no configuration fits %g %s per vector; the smallest is %s at %.1f (%s %.4g)",
                      q->max_cost, cn, c->spec, vqs_result_cost(c, q->cost), mn, c->q[q->metric]);
}

/* ---- the commands ----------------------------------------------------------- */

/* s quoted for a POSIX shell when it needs it (malloc'd). */
static char *shq(const char *s)
{
    int plain = *s != 0;
    for (const char *p = s; *p && plain; p++)
        plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-", *p) != NULL;
    if (plain)
        return strdup(s);
    size_t n = 3;
    for (const char *p = s; *p; p++)
        n += *p == '\'' ? 4 : 1;
    char *o = malloc(n), *w = o;
    if (!o)
        return NULL;
    *w++ = '\'';
    for (const char *p = s; *p; p++) {
        if (*p == '\'') {
            memcpy(w, "'\\''", 4);
            w += 4;
        } else {
            *w++ = *p;
        }
    }
    *w++ = '\'';
    *w = 0;
    return o;
}

/* argv joined as one shell command line (json string, new reference) */
static json_t *shell_line(const json_t *argv)
{
    size_t i;
    json_t *a;
    char *line = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&line, &len);
    if (!f)
        return NULL;
    json_array_foreach(argv, i, a)
    {
        char *q = shq(json_string_value(a));
        fprintf(f, "%s%s", i ? " " : "", q ? q : "");
        free(q);
    }
    fclose(f);
    json_t *s = json_string(line ? line : "");
    free(line);
    return s;
}

static int is_raw(const char *path)
{
    const char *dot = strrchr(path, '.');
    return dot && (!strcmp(dot, ".bin") || !strcmp(dot, ".f32") || !strcmp(dot, ".raw"));
}

static int is_name(const char *s)
{
    if (!*s || strlen(s) > 64)
        return 0;
    for (; *s; s++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-", *s))
            return 0;
    return 1;
}

static void set_num(json_t *o, const char *k, double v)
{
    if (!isnan(v))
        json_object_set_new(o, k, v == floor(v) && fabs(v) < 1e15 ? json_integer((json_int_t)v) : json_real(v));
}

static void note(json_t *notes, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(json_t *notes, const char *fmt, ...)
{
    char b[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    json_array_append_new(notes, json_string(b));
}

int vqs_recommend_describe(const vqs_results *r, size_t row, const vqs_recommend_query *q,
                           const vqs_recommend_names *names, json_t **out)
{
    if (!r || !out || row >= r->nrows || !r->rows[row].ok)
        return vqs_seterr(VQS_EINVAL, "recommend_describe: no such row with status ok");
    const vqs_result_row *w = &r->rows[row];
    const vqs_result_dataset *D = &r->dataset;
    vqs_recommend_names nm = names ? *names : (vqs_recommend_names){0};
    const char *dir = nm.data_dir ? nm.data_dir : "DIR";
    const char *coll = nm.collection ? nm.collection : is_name(D->name) ? D->name : "NAME";
    const char *vec = nm.vectors ? nm.vectors : D->base;
    int q_is_file = strncmp(D->queries, "split:", 6) && strncmp(D->queries, "loo:", 4);
    const char *qf = nm.queries ? nm.queries : q_is_file ? D->queries : "QUERIES";
    vqs_metric metric;
    if (vqs_metric_parse(D->metric, &metric))
        return vqs_seterr(VQS_EINVAL, "%s: dataset.metric '%s'", r->path, D->metric);
    const char *distance = metric == VQS_METRIC_COS ? "Cosine" : metric == VQS_METRIC_L2 ? "Euclid" : "Dot";
    char dstr[32];
    snprintf(dstr, sizeof dstr, "%lld", D->d);

    json_t *o = json_object(), *notes = json_array();
    /* the collection: spec without its refine token; re-scoring from disk for a refine stage */
    int exact = !strcmp(w->spec, "exact") || !strcmp(w->quantizer, "Flat");
    int refine = strcmp(w->refine, "none") != 0;
    int ivf = !strncmp(w->index, "IVF", 3);
    char cspec[256];
    snprintf(cspec, sizeof cspec, "%s", w->spec);
    if (refine) {
        char suffix[160];
        snprintf(suffix, sizeof suffix, ",%s", w->refine);
        size_t ls = strlen(cspec), lf = strlen(suffix);
        char *p = ls > lf && !strcmp(cspec + ls - lf, suffix) ? cspec + ls - lf : strstr(cspec, ",RFlat");
        if (!p)
            p = strstr(cspec, ",Refine(");
        if (p)
            *p = 0;
    }
    json_t *cj = json_object();
    if (!exact) /* exact: no codec ever trains, the server's default spec is never used */
        json_object_set_new(cj, "spec", json_string(cspec));
    const char *rerank = vqs_rerank_name(refine ? VQS_RERANK_DISK : VQS_RERANK_NONE);
    json_object_set_new(cj, "rerank", json_string(rerank));
    if (ivf)
        json_object_set_new(cj, "nprobe", json_integer(w->nprobe));
    if (refine)
        set_num(cj, "oversampling", w->oversampling);
    if (exact)
        json_object_set_new(cj, "train_size", json_integer(0));

    json_object_set_new(o, "spec", json_string(w->spec));
    json_object_set_new(o, "row", json_integer((json_int_t)row));
    if (q) {
        json_object_set_new(o, "metric", json_string(vqs_qmetric_name(q->metric)));
        set_num(o, "value", w->q[q->metric]);
        json_object_set_new(o, "cost", json_string(vqs_cost_name(q->cost)));
        set_num(o, "bytes", vqs_result_cost(w, q->cost));
        json_t *qq = json_object();
        if (!isnan(q->max_cost))
            set_num(qq, "max_bytes", q->max_cost);
        else
            set_num(qq, "min_quality", q->min_quality);
        json_object_set_new(o, "query", qq);
    }
    json_t *st = json_object();
    json_object_set_new(st, "quantizer", json_string(w->quantizer));
    json_object_set_new(st, "transform", w->transform ? json_string(w->transform) : json_null());
    json_object_set_new(st, "pca_dims", w->pca_dims ? json_integer(w->pca_dims) : json_null());
    json_object_set_new(st, "refine", json_string(w->refine));
    json_object_set_new(st, "index", json_string(w->index));
    json_object_set_new(st, "nprobe", json_integer(w->nprobe));
    set_num(st, "oversampling", w->oversampling);
    json_object_set_new(o, "settings", st);
    json_t *fg = json_object();
    set_num(fg, "code_bytes", w->code_bytes);
    set_num(fg, "total_bytes", w->total_bytes);
    set_num(fg, "compression", w->compression);
    set_num(fg, "bits_per_dim", w->bits_per_dim);
    for (int m = 0; m < VQS_Q_COUNT; m++)
        set_num(fg, vqs_qmetric_key((vqs_qmetric)m), w->q[m]);
    set_num(fg, "sqnr_db", w->sqnr_db);
    set_num(fg, "qps_1_thread", w->qps_1_thread);
    set_num(fg, "qps_all_threads", w->qps_all_threads);
    json_object_set_new(o, "figures", fg);
    json_object_set_new(o, "collection", cj);

    /* vqs import: the real flags of tools/store_cmds.c */
    if (exact) {
        json_object_set_new(o, "import_argv", json_null());
        json_object_set_new(o, "import", json_null());
        note(notes, "exact search: vqs import always trains a codec, so create the collection over HTTP with "
                    "train_size 0; it never trains and answers exactly from its float32 vectors (%lld bytes per "
                    "vector in memory). Do not POST .../train to it.",
             4 * D->d);
    } else {
        json_t *ia = json_pack("[sssssssssss]", "vqs", "import", "--data", dir, "--collection", coll, "--spec", cspec,
                               "--metric", vqs_metric_name(metric), "--rerank");
        json_array_append_new(ia, json_string(rerank));
        json_array_append_new(ia, json_string("--vectors"));
        json_array_append_new(ia, json_string(vec));
        if (is_raw(vec)) {
            json_array_append_new(ia, json_string("--dim"));
            json_array_append_new(ia, json_string(dstr));
        }
        json_object_set_new(o, "import", shell_line(ia));
        json_object_set_new(o, "import_argv", ia);
    }
    json_t *sa = json_pack("[sssssssssss]", "vqs", "search", "--data", dir, "--collection", coll, "--queries", qf,
                           "--k", "10", "-o");
    char kstr[32], npstr[32], osstr[32];
    snprintf(kstr, sizeof kstr, "%lld", r->k);
    json_array_set_new(sa, 9, json_string(kstr));
    json_array_append_new(sa, json_string("ids.ivecs"));
    if (is_raw(qf)) {
        json_array_append_new(sa, json_string("--dim"));
        json_array_append_new(sa, json_string(dstr));
    }
    if (ivf && !exact) {
        snprintf(npstr, sizeof npstr, "%lld", w->nprobe);
        json_array_append_new(sa, json_string("--nprobe"));
        json_array_append_new(sa, json_string(npstr));
    }
    if (refine) {
        snprintf(osstr, sizeof osstr, "%g", w->oversampling);
        json_array_append_new(sa, json_string("--oversampling"));
        json_array_append_new(sa, json_string(osstr));
    }
    json_object_set_new(o, "search", shell_line(sa));
    json_object_set_new(o, "search_argv", sa);

    /* PUT /collections/{name} (api/README.md) */
    json_object_set_new(o, "create_method", json_string("PUT"));
    char path[128];
    snprintf(path, sizeof path, "/collections/%s", coll);
    json_object_set_new(o, "create_path", json_string(path));
    json_t *body = json_pack("{s{sIss}}", "vectors", "size", (json_int_t)D->d, "distance", distance);
    json_object_set(body, "vqs", cj);
    json_object_set_new(o, "create_body", body);

    if (refine && !strcmp(w->refine, "RFlat"))
        note(notes, "%s: the service re-scores from the float32 vectors it keeps on disk (rerank \"disk\"), the "
                    "same exact re-scoring of %lld candidates per query as RFlat, with %.0f bytes per vector of "
                    "codes in memory and %lld on disk",
             w->refine, w->candidates, w->code_bytes, 4 * D->d);
    else if (refine)
        note(notes, "%s: the service re-scores exactly from the float32 vectors on disk (rerank \"disk\"), not "
                    "with %s codes; exact re-scoring of the same %lld candidates finds every true neighbour among "
                    "them, so recall is at least the measured one",
             w->refine, w->refine, w->candidates);
    else if (!exact)
        note(notes, "measured without re-scoring, so rerank \"none\": the collection keeps only the codes and "
                    "cannot return vectors; rerank \"disk\" would re-score from the vectors on disk (higher "
                    "recall than measured, one read per candidate)");
    if ((ivf || refine) && !exact)
        note(notes, "vqs import stores nprobe %d and oversampling %g with the collection: pass the measured "
                    "values to vqs search as above (the HTTP body stores them)",
             VQS_COLL_DEFAULT_NPROBE, (double)VQS_COLL_DEFAULT_OVERSAMPLING);
    note(notes, "figures measured on %s (%lld x %lld, %s, %lld queries); your data may differ", D->name, D->n, D->d,
         D->metric, D->nq);
    json_object_set_new(o, "notes", notes);
    if (!json_object_get(o, "search") || !json_object_get(o, "create_body")) {
        json_decref(o);
        return vqs_seterr(VQS_ENOMEM, "recommend_describe");
    }
    *out = o;
    return 0;
}

static double num(const json_t *o, const char *k)
{
    const json_t *v = json_object_get(o, k);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

void vqs_recommend_print(FILE *f, const vqs_results *r, const json_t *d)
{
    const json_t *q = json_object_get(d, "query"), *st = json_object_get(d, "settings"),
                 *fg = json_object_get(d, "figures");
    const char *metric = json_string_value(json_object_get(d, "metric"));
    const char *cost = json_string_value(json_object_get(d, "cost"));
    const char *spec = json_string_value(json_object_get(d, "spec"));
    if (q && metric && cost) {
        if (json_object_get(q, "max_bytes"))
            fprintf(f, "best %s within %g %s per vector: %s\n", metric, num(q, "max_bytes"), cost, spec);
        else
            fprintf(f, "fewest %s per vector reaching %s %g: %s\n", cost, metric, num(q, "min_quality"), spec);
    } else {
        fprintf(f, "%s\n", spec);
    }
    const vqs_result_dataset *D = &r->dataset;
    fprintf(f, "  row %lld of %s (%s: %lld x %lld, %s, k = %lld)\n",
            (long long)json_integer_value(json_object_get(d, "row")), r->path, D->name, D->n, D->d, D->metric, r->k);
    const char *tr = json_string_value(json_object_get(st, "transform"));
    fprintf(f, "settings   quantizer %s, transform %s, refine %s, index %s", json_string_value(json_object_get(st, "quantizer")),
            tr ? tr : "none", json_string_value(json_object_get(st, "refine")),
            json_string_value(json_object_get(st, "index")));
    if (num(st, "nprobe") > 0)
        fprintf(f, ", nprobe %g", num(st, "nprobe"));
    if (strcmp(json_string_value(json_object_get(st, "refine")), "none"))
        fprintf(f, ", oversampling %g", num(st, "oversampling"));
    fprintf(f, "\nbytes      %.1f code, %.1f total per vector (float32: %lld), %.1fx smaller, %.2f bits/dim\n",
            num(fg, "code_bytes"), num(fg, "total_bytes"), 4 * D->d, num(fg, "compression"), num(fg, "bits_per_dim"));
    fprintf(f, "quality    recall@1 %.4f  recall@10 %.4f  recall@100 %.4f  nDCG@10 %.4f  MRR@10 %.4f",
            num(fg, "recall_at_1"), num(fg, "recall_at_10"), num(fg, "recall_at_100"), num(fg, "ndcg_at_10"),
            num(fg, "mrr_at_10"));
    if (!isnan(num(fg, "qrels_ndcg_at_10")))
        fprintf(f, "  qrels nDCG@10 %.4f", num(fg, "qrels_ndcg_at_10"));
    fprintf(f, "\n");
    if (!isnan(num(fg, "qps_1_thread")))
        fprintf(f, "speed      %.0f queries/s on 1 thread, %.0f on %lld\n", num(fg, "qps_1_thread"),
                num(fg, "qps_all_threads"), r->threads);
    else
        fprintf(f, "speed      not measured\n");
    if (!isnan(num(fg, "sqnr_db")))
        fprintf(f, "SQNR       %.2f dB\n", num(fg, "sqnr_db"));
    const char *imp = json_string_value(json_object_get(d, "import"));
    fprintf(f, "\nload a vector file into a new collection:\n  %s\n", imp ? imp : "(no vqs import command: see the notes)");
    fprintf(f, "search it:\n  %s\n", json_string_value(json_object_get(d, "search")));
    char *body = json_dumps(json_object_get(d, "create_body"), JSON_COMPACT | JSON_PRESERVE_ORDER);
    fprintf(f, "or create it over HTTP (vqs serve):\n  %s %s\n  %s\n",
            json_string_value(json_object_get(d, "create_method")), json_string_value(json_object_get(d, "create_path")),
            body ? body : "");
    free(body);
    size_t i;
    const json_t *n;
    fprintf(f, "notes:\n");
    json_array_foreach(json_object_get(d, "notes"), i, n)
    fprintf(f, "  - %s\n", json_string_value(n));
}
