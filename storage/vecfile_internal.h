/*
 * vecfile_internal.h: the vector-file handle, shared by the binary readers
 * (vecfile.c) and the JSONL reader (vecfile_jsonl.c). Not installed.
 */
#ifndef VQS_VECFILE_INTERNAL_H
#define VQS_VECFILE_INTERNAL_H

#include "vqs_store.h"

struct vqs_vecfile {
    char *name;
    vqs_vecfmt fmt;
    vqs_dtype dt;
    size_t n, d;
    const unsigned char *map; /* whole file, or NULL for open_mem (and for JSONL
                                 once parsed: its rows live in copy) */
    size_t map_len;
    void *copy;                /* aligned copy of the payload (npy), the parsed
                                  rows (JSONL, n * d float32), or NULL */
    const unsigned char *data; /* first value of row 0 */
    size_t stride;             /* bytes from row i to row i + 1 */
    /* JSONL only (NULL otherwise) */
    vqs_pid *pids;   /* n point ids, when the lines carry "id" */
    int64_t *ids;    /* the same n ids as int64, when every one is an integer */
    char *pl;        /* payload texts, each NUL-terminated, back to back */
    size_t *pl_off;  /* n offsets into pl, SIZE_MAX: the row has no payload */
};

/* Parses buf (len bytes of JSON Lines) into vf: n, d, dt = float32, copy
 * (n * d floats), data, stride, and the optional ids and payloads. On error
 * returns a negative code with the detail set; vf's allocations are freed by
 * vqs_vecfile_close(). */
int vqs_jsonl_parse(vqs_vecfile *vf, const unsigned char *buf, size_t len,
                    const vqs_vecfile_opts *o);

#endif
