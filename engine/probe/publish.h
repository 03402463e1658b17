/* Handing the latest snapshot from the run thread to the UI thread. The
 * run thread publishes a finished snapshot; a reader takes a reference to
 * the latest one and draws it for as long as it likes. The lock guards a
 * pointer swap and a reference count increment only, so neither side ever
 * waits on the other's work: the trainer never blocks on drawing, the UI
 * never waits for a step. */
#ifndef KD_PROBE_PUBLISH_H
#define KD_PROBE_PUBLISH_H

#include <stdint.h>

#include "probe/snapshot.h"

typedef struct KdProbeBox KdProbeBox;

KdProbeBox *kd_probe_box_new(void);
/* Drops the box's reference to its snapshot; readers keep theirs. */
void kd_probe_box_free(KdProbeBox *b);

/* Takes over the caller's reference to s (run thread). */
void kd_probe_publish(KdProbeBox *b, KdSnapshot *s);
/* A new reference to the latest snapshot (release with kd_snapshot_free),
 * or NULL before the first publish. *generation (may be NULL) counts
 * publishes, so a poller can tell whether anything changed. */
KdSnapshot *kd_probe_latest(KdProbeBox *b, uint64_t *generation);
uint64_t kd_probe_generation(KdProbeBox *b);

/* Called on the publishing thread after each publish, outside the lock,
 * with the new generation: where a reader is woken (the window posts one
 * main-loop callback). It must not block nor take the snapshot. */
typedef void (*KdProbeNotify)(void *user, uint64_t generation);
void kd_probe_box_set_notify(KdProbeBox *b, KdProbeNotify fn, void *user);

#endif
