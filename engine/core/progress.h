/* Progress reporting from long engine work (building a data set, a run's
 * warm-up) to whoever shows it: a terminal bar, a GTK progress widget, a
 * log. The engine only calls the function; it never prints. */
#ifndef KD_PROGRESS_H
#define KD_PROGRESS_H

/* what: a short label of the current phase ("train images"); done/total:
 * units finished so far out of total (total <= 0 when unknown). Called from
 * the thread that started the work, a few times a second at most. */
typedef void (*KdProgressFn)(void *user, const char *what, long done, long total);

#endif
