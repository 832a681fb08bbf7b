/* report.h: what `vqs report` and `vqs recommend` make of a `vqs eval`
 * results file (results.h): the HTML report, the pick for a budget or a
 * quality target, and the commands that use it. */
#ifndef VQS_REPORT_H
#define VQS_REPORT_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "results.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the report ---------------------------------------------------------- */

typedef struct vqs_report_opts {
    const char *metric; /* quality metric of the first plot and the front (vqs_qmetric_parse); NULL: recall@10 */
    const char *title;  /* NULL: "Compression report: <data set name>" */
    const char *cost;   /* "total" (NULL) or "code" (vqs_cost_parse) */
} vqs_report_opts;

/* Reads results_json (vqs_results_load) and writes html_out: one
 * self-contained HTML file (inline CSS and SVG, no external resource) with
 * the plots, the table, the data set, the command that made the results and
 * the best configuration for a few budgets. html_out is written to a
 * temporary file beside it and renamed, so a reader never sees half a
 * report. o may be NULL (defaults). Errors: those of vqs_results_load,
 * VQS_EUSAGE (bad metric or cost name), -errno (writing), VQS_ENOMEM. This
 * is what `vqs eval --report out.html` calls after writing its JSON. */
int vqs_report_write(const char *results_json, const char *html_out, const vqs_report_opts *o);

/* The report of loaded results as one malloc'd NUL-terminated string
 * (*len bytes without the NUL); the caller frees *html. */
int vqs_report_html(const vqs_results *r, const vqs_report_opts *o, char **html, size_t *len);

/* ---- the recommendation -------------------------------------------------- */

typedef struct vqs_recommend_query {
    vqs_qmetric metric;
    vqs_cost cost;
    double max_cost;    /* the budget in bytes per vector, or NAN */
    double min_quality; /* the target of the metric, or NAN; exactly one of the two is set */
} vqs_recommend_query;

/* The row to use, among the rows with status ok and a value of the metric:
 * - max_cost B: the best metric among rows costing <= B (ties: fewer bytes,
 *   then more queries/s on one thread, then the earlier row);
 * - min_quality R: the fewest bytes among rows whose metric is >= R (ties:
 *   the higher metric, then more queries/s, then the earlier row).
 * Errors: VQS_ENOTFOUND when no row qualifies, the detail saying the best
 * available ("no configuration reaches recall@10 0.999; the best is SQ8 at
 * 0.995 (808 total bytes)"); VQS_EINVAL for a bad query. */
int vqs_recommend_pick(const vqs_results *r, const vqs_recommend_query *q, size_t *row);

/* Names put into the commands; NULL fields: placeholders (DIR), the data
 * set's name as the collection, and its base and query files. */
typedef struct vqs_recommend_names {
    const char *data_dir, *collection, *vectors, *queries;
} vqs_recommend_names;

/* Everything `vqs recommend` prints of row (new reference, *out):
 *   spec, row, metric, value, cost, bytes, query {max_bytes|min_quality},
 *   settings {quantizer, transform, pca_dims, refine, index, nprobe, oversampling},
 *   figures {code_bytes, total_bytes, compression, bits_per_dim, recall_at_1,
 *            recall_at_10, recall_at_100, ndcg_at_10, mrr_at_10, qrels_ndcg_at_10,
 *            sqnr_db, qps_1_thread, qps_all_threads} (absent when null),
 *   collection {spec, rerank, nprobe, oversampling[, train_size]},
 *   import_argv, import (shell-quoted; both null when vqs import cannot make
 *   it: exact search), search_argv, search, create_method, create_path,
 *   create_body (the JSON body of PUT /collections/{name}), notes [...].
 * A refine stage maps to the service's re-scoring from the vectors on disk
 * (rerank "disk", the spec without its refine token); exact search to a
 * collection that never trains (train_size 0). q may be NULL (no query
 * recorded). Errors: VQS_EINVAL, VQS_ENOMEM. */
int vqs_recommend_describe(const vqs_results *r, size_t row, const vqs_recommend_query *q,
                           const vqs_recommend_names *names, json_t **out);

/* The description as text for a person (vqs recommend without --json). */
void vqs_recommend_print(FILE *f, const vqs_results *r, const json_t *desc);

#ifdef __cplusplus
}
#endif

#endif
