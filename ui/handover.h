/* The run thread's news for the main loop, in memory: a new snapshot in
 * the probe box and the settings the run applied. The run thread posts
 * (never waits); at most one main-loop callback is pending at a time, so
 * a burst of posts is one callback, which takes the box's latest snapshot
 * (older generations are dropped, never drawn) and every applied setting
 * in order. GLib only; the callback runs on the default main context. */
#ifndef KDS_HANDOVER_H
#define KDS_HANDOVER_H

#include <glib.h>

#include "probe/publish.h"

typedef struct KdsHandover KdsHandover;

/* snap: a new reference to a snapshot newer than any delivered before, or
 * NULL; sets: key, value, key, value, ..., NULL (empty: none). Both are
 * the callee's to keep: kd_snapshot_free and g_strfreev. */
typedef void (*KdsHandoverFn)(gpointer user, KdSnapshot *snap, char **sets);

/* Watches box (borrowed; may be NULL for settings only) and calls fn on
 * the main loop. Main thread. */
KdsHandover *kds_handover_new(KdProbeBox *box, KdsHandoverFn fn, gpointer user);
/* Main thread, once nothing posts any more (the run thread is joined):
 * a pending callback is dropped. */
void kds_handover_free(KdsHandover *h);

/* Run thread: the box's notify (KdProbeNotify) and the run's on_set
 * (KdRunOnSet), user = the hand-over. */
void kds_handover_snapshot(void *handover, uint64_t generation);
void kds_handover_set(void *handover, const char *key, const char *value);

/* Main-loop callbacks so far, and posts that found one already pending
 * (coalesced). */
void kds_handover_counts(KdsHandover *h, guint *callbacks, guint *coalesced);

#endif
