/* progress.h: one updating status line on stderr for the long steps of the
 * vqs tool (tools/progress.c). */
#ifndef VQS_PROGRESS_H
#define VQS_PROGRESS_H

#include <stddef.h>

typedef struct vqs_progress {
    int on;          /* stderr is a terminal (else every call does nothing) */
    double t0;       /* start of the whole task */
    double last;     /* time of the last redraw */
    size_t total;    /* units of work (0: unknown, no ETA) */
    int shown;       /* a line is on the screen */
} vqs_progress;

/* Starts a task of total units (0: unknown). force: -1 never draw, 1 always
 * (tests), 0 draw only when stderr is a terminal. */
void vqs_progress_start(vqs_progress *p, size_t total, int force);
/* Redraws the line as "[done/total, 42%, ETA 1m05s] text" (ETA from the
 * mean time per unit so far), at most ten times a second unless urgent. */
void vqs_progress_update(vqs_progress *p, size_t done, int urgent, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Erases the line (before other output goes to the terminal). */
void vqs_progress_clear(vqs_progress *p);

#endif
