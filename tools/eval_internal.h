/* eval_internal.h: what the files of `vqs eval` share (tools/eval.c, the
 * run; tools/eval_grid.c, the sweeps; tools/eval_out.c, the result files). */
#ifndef VQS_EVAL_INTERNAL_H
#define VQS_EVAL_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#define EVAL_K 10     /* results per query of the measured (and timed) search */
#define EVAL_DEEP 100 /* depth of the recall@100 search and of the ground truth */
#define EVAL_MAXVAL 16 /* values in an --nprobe / --oversampling list */

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

/* ---- result files (eval_out.c) -------------------------------------------- */

typedef struct eval_out {
    json_t *root;         /* the vqs-eval/2 document; root["rows"] grows */
    const char *prefix;   /* --out PREFIX: PREFIX.json and PREFIX.csv, or NULL */
    const char *json;     /* --json FILE, or NULL */
} eval_out;

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

#endif
