/* Progress of long work on a terminal: a one-line bar with rate and ETA
 * redrawn in place on a tty, plain lines (at most every few seconds) when
 * the output is a file or a pipe. Shared by make-dataset, train, distill,
 * eval. (One shared bar for every verb: extend this file rather than
 * adding another.) */
#ifndef KD_APP_PROGRESS_H
#define KD_APP_PROGRESS_H

#include <stdio.h>

typedef struct KdProgress KdProgress;

KdProgress *kd_progress_new(FILE *out, int quiet);
void kd_progress_free(KdProgress *p);
/* what: phase label; done/total units (total <= 0: unknown); msg: extra
 * text (current losses) or NULL. Cheap to call every step. */
void kd_progress_update(KdProgress *p, const char *what, long done, long total, const char *msg);
/* A line that stays (evaluation results), printed above the bar. */
void kd_progress_message(KdProgress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A KdProgressFn (engine/core/progress.h) drawing on the KdProgress given
 * as `user`: hand it to engine work such as kd_ensure_default_dataset. */
void kd_progress_fn(void *user, const char *what, long done, long total);
/* Ends the bar line. */
void kd_progress_done(KdProgress *p);

#endif
