/* cli.h: what the subcommands of the vqs tool share (tools/cli.c). */
#ifndef VQS_CLI_H
#define VQS_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "vqs_index.h"
#include "vqs_store.h"

#define VQS_VERSION "0.1.0"

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

#endif
