/* eval_internal.h: what the files of `vqs eval` share: tools/eval.c (the
 * command, data and ground truth), eval_run.c (one spec: build, measure,
 * rows), eval_grid.c (the sweeps), eval_out.c (the result files);
 * eval_metrics.h holds the metrics, progress.h the progress line. */
#ifndef VQS_EVAL_INTERNAL_H
#define VQS_EVAL_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "eval_metrics.h"
#include "progress.h"
#include "vqs_index.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EVAL_K 10     /* results per query of the measured (and timed) search */
#define EVAL_DEEP 100 /* depth of the recall@100 search and of the ground truth */
#define EVAL_MAXVAL 16 /* values in an --nprobe / --oversampling list */
#define EVAL_NDONORS 16 /* trained codecs kept for reuse (eval_run.c) */

/* One spec to evaluate and its search settings (n == 0: the command line's
 * lists). */
typedef struct eval_entry {
    char spec[256];
    double nprobe[EVAL_MAXVAL], os[EVAL_MAXVAL];
    size_t nnprobe, nos;
} eval_entry;

typedef struct eval_entries {
    eval_entry *v;
    size_t n, cap;
} eval_entries;

/* Appends an entry (nprobe/os lists empty). VQS_ENOMEM, or VQS_EUSAGE for a
 * spec longer than 255 bytes. */
int eval_entries_add(eval_entries *E, const char *spec);
void eval_entries_free(eval_entries *E);

/* Parses "1,8,32" into v (positive numbers, at most EVAL_MAXVAL);
 * VQS_EUSAGE naming `what` otherwise. */
int eval_parse_list(const char *s, double *v, size_t *n, const char *what);

/* Appends the specs of sweep `name` (paper, quick, full) for input
 * dimension d, or those of the file `name` (one spec per line, optional
 * "nprobe=LIST" and "oversampling=LIST" after it, '#' comments). VQS_EUSAGE
 * for an unknown name that is no readable file, VQS_EFORMAT naming the
 * file and line. */
int eval_sweep_add(eval_entries *E, const char *name, size_t d);
/* The --help text of the sweeps (from the grid tables). */
void eval_sweep_help(FILE *f);

/* ---- the run (eval_run.c) ---------------------------------------------------- */

/* A trained codec kept for later specs of the same IVF token and seed. */
typedef struct eval_donor {
    char key[64];     /* IVF token and seed */
    vqs_codec *codec; /* owned copy */
} eval_donor;

/* Everything a run shares: options, the data (dense base and queries),
 * ground truth, scratch buffers, the codec cache and the outputs. */
typedef struct eval_ctx {
    /* options */
    vqs_metric m;
    int nt;
    size_t train_size, nseeds;
    uint64_t seed0;
    int timing, symmetric;
    float clip;
    double np_def[EVAL_MAXVAL], os_def[EVAL_MAXVAL];
    size_t nnp_def, nos_def;
    /* data: dense base and queries */
    vqs_matrix B, Q;
    size_t n, nq, d;
    size_t *qrow;    /* nq: each query's row in its file (the base for split/loo) */
    int64_t *self;   /* loo: each query's own base id; else NULL */
    size_t gk;       /* ground-truth depth, <= EVAL_DEEP */
    int64_t *gt;     /* nq * gk */
    float *gd;       /* nq * gk, true distances */
    vqs_qrels *qrels;
    /* scratch */
    int64_t *ids, *ids10, *raw; /* nq * EVAL_DEEP, nq * EVAL_K, nq * (EVAL_DEEP + 1) */
    float *rd;                  /* nq * EVAL_DEEP */
    double *pq;                 /* nq * 5 per-query values */
    eval_donor donors[EVAL_NDONORS];
    size_t ndonors, donor_next;
    FILE *perq;
    vqs_progress prog;
    size_t units;               /* (spec, seed) runs finished */
    size_t nunits;
} eval_ctx;

struct eval_out;

/* Copies ids (and dist, if din) of nq rows of kk columns into k columns,
 * leaving out each query's own id self[q] (if it is absent, the last
 * column goes). */
void eval_drop_self(const int64_t *self, size_t nq, const int64_t *in, const float *din, size_t kk,
                    int64_t *out, float *dout, size_t k);

/* Evaluates one spec over every seed and setting, appending its rows (ok,
 * or one error row) to O and rewriting the files. Returns 0, or a failure
 * of the output itself; *failed is set when the spec failed. */
int eval_run_entry(eval_ctx *C, struct eval_out *O, const eval_entry *e, int *failed);

/* ---- result files (eval_out.c) -------------------------------------------- */

typedef struct eval_out {
    json_t *root;         /* the vqs-eval/2 document; root["rows"] grows */
    const char *prefix;   /* --out PREFIX: PREFIX.json and PREFIX.csv, or NULL */
    const char *json;     /* --json FILE, or NULL */
} eval_out;

/* o[k] = v (a NULL v, from a failed allocation, becomes null). */
static inline void eval_json_set(json_t *o, const char *k, json_t *v)
{
    json_object_set_new(o, k, v ? v : json_null());
}
/* A real, or null when not finite (JSON has no NaN or Inf). */
json_t *eval_jreal(double v);
/* The command line shell-quoted (what "command" records). */
char *eval_command_line(int argc, char **argv);
/* Rewrites every requested file with the rows so far (write to a temporary
 * name, then rename, so a reader never sees half a file). */
int eval_out_write(const eval_out *o);
/* The markdown table on stdout: the header, then one line per row. */
void eval_md_header(FILE *f, const json_t *root, int qrels);
void eval_md_row(FILE *f, const json_t *row, int qrels, int seeds);

#ifdef __cplusplus
}
#endif
#endif
