/*
 * codec_internal.h: what the codec pipeline's files share (codec.c,
 * codec_spec.c, codec_blob.c, codec_norms.c): the codec struct and a few
 * helpers. The stages never see it (they get codebook_internal.h).
 */
#ifndef VQS_CODEC_INTERNAL_H
#define VQS_CODEC_INTERNAL_H

#include "codebook_internal.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MAX_STAGES 8
#define ROW_CHUNK 1024 /* rows per task of encode, decode and norms */

struct vqs_codec {
    vqs_codec_opts o;
    size_t d;
    char *spec; /* canonical */
    int nstages;
    vqs_stage st[MAX_STAGES];
};

static inline const vqs_stage *quantizer(const vqs_codec *c) { return &c->st[c->nstages - 1]; }

/* The largest dimension along the stage chain (input included): the size
 * of one row of transform scratch (codec.c). */
size_t vqs_codec_max_dim(const vqs_codec *c);

/* Splits spec and builds c->st, c->nstages and the canonical c->spec for
 * c->d (codec_spec.c). Errors: VQS_ESPEC with a detail, VQS_ENOMEM; on
 * error the stages built so far are in c (vqs_codec_free frees them). */
int vqs_codec_build_stages(vqs_codec *c, const char *spec);

/* Stage s (token, d_in set) from the first constructor that knows tok
 * (codec_spec.c); next: the following token or NULL. VQS_ENOTFOUND (no
 * detail) if none does, else the constructor's result. */
int vqs_codec_stage_new(const char *tok, const char *next, vqs_stage *s);

#ifdef __cplusplus
}
#endif
#endif
