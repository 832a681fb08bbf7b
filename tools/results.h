/* results.h: the results file of `vqs eval` (format "vqs-eval/2", JSON) read
 * into C structs, for `vqs report` and `vqs recommend` (tools/report.h).
 *
 * The file (written by `vqs eval --out PREFIX` as PREFIX.json):
 *   {"format": "vqs-eval/2", "command", "created",
 *    "dataset": {"name", "base", "queries", "n", "nq", "d", "metric",
 *                "ground_truth", "qrels" (string or null), "description"},
 *    "k", "threads", "simd", "seeds", "symmetric", "timing",
 *    "rows": [{"spec", "status": "ok", "transform", "pca_dims", "pca_fraction",
 *              "quantizer", "refine", "index", "nprobe", "oversampling",
 *              "candidates", "code_bytes", "total_bytes", ("vector_bytes",
 *              "rss_bytes": written since issue 18, not read), "bits_per_dim",
 *              "compression", "train_s", "add_s", "recall_at_1",
 *              "recall_at_10", "recall_at_100", "ndcg_at_10", "mrr_at_10",
 *              "qrels_ndcg_at_10", "qrels_recall_at_10", "sqnr_db", "rel_mse",
 *              "qps_1_thread", "qps_all_threads", "spread": {metric: std}}
 *             | {"spec", "status": "error", "error": "message"}]}
 * Every field listed is required (null where the schema allows it: no PCA,
 * no qrels, no timing, and sqnr_db / rel_mse of exact search); unknown extra
 * fields are ignored, so a later writer may add some.
 */
#ifndef VQS_RESULTS_H
#define VQS_RESULTS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The quality metrics a front or a recommendation can maximise. */
typedef enum vqs_qmetric {
    VQS_Q_RECALL1 = 0,
    VQS_Q_RECALL10,
    VQS_Q_RECALL100,
    VQS_Q_NDCG10,
    VQS_Q_MRR10,
    VQS_Q_QRELS_NDCG10,
    VQS_Q_COUNT
} vqs_qmetric;

/* The cost a front or a recommendation minimises, in bytes per vector:
 * everything the index keeps (total_bytes: codes, ids, refine copy, fixed
 * overhead spread over the base) or the codes alone (code_bytes). */
typedef enum vqs_cost { VQS_COST_TOTAL = 0, VQS_COST_CODE = 1 } vqs_cost;

/* One row. Strings point into the loaded document (valid until
 * vqs_results_free); a number that was null is NAN. */
typedef struct vqs_result_row {
    const char *spec;
    int ok;                 /* status "ok"; 0: "error", and only spec and error are set */
    const char *error;      /* the message of an error row, else NULL */
    const char *transform;  /* NULL: none */
    int pca_dims;           /* 0: no PCA */
    double pca_fraction;    /* NAN: no PCA */
    const char *quantizer;  /* "Flat" for exact search */
    const char *refine;     /* "none", "RFlat", "Refine(SQfp16)" */
    const char *index;      /* "flat" or "IVF<nlist>" */
    long long nprobe;       /* 0 when not IVF */
    double oversampling;    /* 1 without a refine stage */
    long long candidates;   /* first-stage candidates re-scored per query at k */
    double code_bytes, total_bytes, bits_per_dim, compression;
    double train_s, add_s;
    double q[VQS_Q_COUNT];  /* quality metrics by vqs_qmetric; qrels one NAN without qrels */
    double qrels_recall_at_10;
    double sqnr_db, rel_mse;             /* NAN: null (exact search) */
    double qps_1_thread, qps_all_threads; /* NAN: no timing */
    double spread[VQS_Q_COUNT];          /* std over seeds; NAN: not given */
} vqs_result_row;

typedef struct vqs_result_dataset {
    const char *name, *base, *queries, *metric, *ground_truth;
    const char *qrels; /* NULL: none */
    const char *description;
    long long n, nq, d;
} vqs_result_dataset;

typedef struct vqs_results {
    const char *path; /* as given to the loader ("<memory>" for vqs_results_parse without a name) */
    const char *format, *command, *created, *simd;
    vqs_result_dataset dataset;
    long long k, threads, seeds;
    int symmetric, timing;
    size_t nrows;
    vqs_result_row *rows;
    void *doc_; /* the parsed document that owns the strings */
} vqs_results;

/* Reads and validates a results file. On failure nothing is returned and the
 * detail names the file, the row (rows[i], with its spec when it has one) and
 * the field: "r.json: rows[3] (spec 'SQ8'): field 'recall_at_10': expected a
 * number, got a string". Errors: -errno (cannot read), VQS_EFORMAT (not JSON,
 * not a vqs-eval document, a missing or wrongly typed field, a value out of
 * range), VQS_EVERSION (another vqs-eval version), VQS_ENOMEM. *out is freed
 * with vqs_results_free. */
int vqs_results_load(const char *path, vqs_results **out);

/* The same over a document in memory; name (NULL: "<memory>") stands for the
 * file in messages. */
int vqs_results_parse(const char *text, size_t len, const char *name, vqs_results **out);

void vqs_results_free(vqs_results *r);

/* "recall@10", "recall_at_10", "ndcg@10", "mrr_at_10", "qrels_ndcg@10", ...
 * VQS_EUSAGE naming the string and the accepted names otherwise. */
int vqs_qmetric_parse(const char *s, vqs_qmetric *out);
/* Display name ("recall@10") and JSON key ("recall_at_10"). Static storage. */
const char *vqs_qmetric_name(vqs_qmetric m);
const char *vqs_qmetric_key(vqs_qmetric m);

/* "total" or "code" (also "total_bytes", "code_bytes"). VQS_EUSAGE otherwise. */
int vqs_cost_parse(const char *s, vqs_cost *out);
const char *vqs_cost_name(vqs_cost c); /* "total bytes", "code bytes" */

/* The row's cost in bytes per vector. */
double vqs_result_cost(const vqs_result_row *row, vqs_cost c);

/* float32 bytes per vector of the data set (4 d). */
double vqs_results_float_bytes(const vqs_results *r);

#ifdef __cplusplus
}
#endif

#endif
