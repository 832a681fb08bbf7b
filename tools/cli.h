/* cli.h: what the subcommands of the vqs tool share (tools/cli.c). */
#ifndef VQS_CLI_H
#define VQS_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "vqs_index.h"
#include "vqs_store.h"

#define VQS_VERSION "0.1.0"

/* ---- options and help ---------------------------------------------------- */

/* One option of a command. The command's parser (vqs_cli_getopt) and its
 * help (vqs_cli_help_print) read the same table, so the help lists exactly
 * the options the command accepts. A table ends with {0}. */
typedef struct vqs_cli_opt {
    const char *name; /* long name without "--"; NULL: only the short form */
    int key;          /* what vqs_cli_getopt returns for it (never 'h') */
    int shrt;         /* nonzero: -<key> is accepted too (key is a letter) */
    const char *arg;  /* the value's name in the help ("FILE"); NULL: a flag, no value */
    const char *def;  /* the default as the help prints it; NULL: none */
    const char *help; /* what it does; '\n' continues on a new, aligned line */
} vqs_cli_opt;

/* A command's help: `vqs CMD --help` prints it all on stdout; a usage error
 * prints its usage lines on stderr (vqs_cli_usage). */
typedef struct vqs_cli_help {
    const char *cmd;         /* the command's name: "gt" */
    const char *usage;       /* what follows "usage: vqs gt "; '\n' continues, aligned */
    const char *about;       /* what the command does: lines, each ending in '\n' */
    const vqs_cli_opt *opts; /* its options ({0} ends them); -h/--help is added */
    void (*more)(FILE *f);   /* NULL, or prints a generated list after the options */
    const char *notes;       /* NULL, or lines printed after that (exit status, ...) */
    const char *example;     /* example command lines, each ending in '\n' */
} vqs_cli_help;

/* getopt_long over h->opts and -h/--help (key 'h'): the key of the next
 * option, -1 after the last, '?' for an unknown option or a missing value
 * (getopt has printed which). Set optind = 1 before the first call. */
int vqs_cli_getopt(int argc, char **argv, const vqs_cli_help *h);
/* The full help: usage, description, every option with its default, notes,
 * an example. */
void vqs_cli_help_print(FILE *f, const vqs_cli_help *h);
/* The usage lines and a pointer to --help (for usage errors, on stderr). */
void vqs_cli_usage(FILE *f, const vqs_cli_help *h);
/* An unknown option (vqs_cli_getopt returned '?'): the usage on stderr;
 * returns 2, the exit status. */
int vqs_cli_bad_option(const vqs_cli_help *h);

/* ---- errors, numbers, files ---------------------------------------------- */

/* Prints "vqs <cmd>: <detail>: <message> [CODE]"; returns the exit status
 * (2 for usage and argument errors, 1 otherwise). */
int vqs_cli_fail(const char *cmd, int rc);
int vqs_cli_parse_size(const char *s, size_t *out, const char *what);
/* As vqs_cli_parse_size, and 0 is refused (VQS_EUSAGE naming what). */
int vqs_cli_parse_positive(const char *s, size_t *out, const char *what);
/* --clip Q: the two-sided quantile of SQ8/SQ4 training ranges
 * (vqs_codec_opts.sq_clip), a number in (0.5, 1]; VQS_EUSAGE naming what
 * otherwise. */
int vqs_cli_parse_clip(const char *s, float *out, const char *what);
/* Opens a vector file as a float matrix (zero-copy for float32 files,
 * converted into *owned otherwise). */
int vqs_cli_open_matrix(const char *path, size_t raw_dim, vqs_vecfile **vf, vqs_matrix *m,
                        float **owned);
/* The same with any reader options (vqs import: JSONL payloads). */
int vqs_cli_open_matrix_opts(const char *path, const vqs_vecfile_opts *o, vqs_vecfile **vf,
                             vqs_matrix *m, float **owned);
/* Writes a text file through PATH.tmp and a rename, so a reader sees the
 * old file or the whole new one: emit(f, ctx) writes the contents (returns 0,
 * -EIO for a failed write, or a vqs error with its detail); a write, close or rename failure is -errno naming the
 * file, and the temporary file is removed on any failure. */
int vqs_cli_write_file(const char *path, int (*emit)(FILE *f, void *ctx), void *ctx);

#endif
