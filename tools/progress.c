/*
 * progress.c: a one-line progress display with an ETA for `vqs eval` and
 * `vqs gt`-like long steps.
 *
 * Design decisions:
 * - Only on a terminal (isatty(2)): a log file or a test's captured stderr
 *   gets no carriage returns or escape sequences, and the tools print their
 *   own one-line results there instead.
 * - The line is redrawn with "\r" + text + "\033[K" (erase to the end of the
 *   line), so a shorter text leaves no tail, and redraws are limited to ten
 *   a second so a fast loop does not spend its time on the terminal.
 * - ETA = elapsed / done * (total - done): the mean time per unit. Units are
 *   whatever the caller counts (query chunks, sweep rows), so a sweep whose
 *   rows differ in cost gets a rough ETA; it is a hint, not a promise.
 *   Rejected: a progress thread ticking the clock during a single long call
 *   (training has no progress callback): threads and signals for a hint.
 */
#define _GNU_SOURCE
#include "progress.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "vqs_common.h"

void vqs_progress_start(vqs_progress *p, size_t total, int force)
{
    p->on = force > 0 || (force == 0 && isatty(STDERR_FILENO));
    p->t0 = vqs_now();
    p->last = 0;
    p->total = total;
    p->shown = 0;
}

static void fmt_secs(char *b, size_t cap, double s)
{
    if (!(s >= 0) || s > 1e7)
        snprintf(b, cap, "?");
    else if (s < 60)
        snprintf(b, cap, "%.0fs", s);
    else if (s < 3600)
        snprintf(b, cap, "%dm%02ds", (int)(s / 60), (int)s % 60);
    else
        snprintf(b, cap, "%dh%02dm", (int)(s / 3600), (int)(s / 60) % 60);
}

void vqs_progress_update(vqs_progress *p, size_t done, int urgent, const char *fmt, ...)
{
    if (!p->on)
        return;
    double now = vqs_now();
    if (!urgent && now - p->last < 0.1)
        return;
    p->last = now;
    char text[256], eta[32] = "", el[16];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    fmt_secs(el, sizeof el, now - p->t0);
    if (p->total && done) {
        char e[16];
        fmt_secs(e, sizeof e, (now - p->t0) / (double)done * (double)(p->total - (done < p->total ? done : p->total)));
        snprintf(eta, sizeof eta, ", ETA %s", e);
    }
    if (p->total)
        fprintf(stderr, "\r[%zu/%zu, %s%s] %s\033[K", done, p->total, el, eta, text);
    else
        fprintf(stderr, "\r[%s] %s\033[K", el, text);
    fflush(stderr);
    p->shown = 1;
}

void vqs_progress_clear(vqs_progress *p)
{
    if (!p->on || !p->shown)
        return;
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
    p->shown = 0;
}
