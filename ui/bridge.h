/* The window's one handle on a run: either a run this process drives
 * (KdRun on its own thread) or a run directory another process writes
 * (a headless `kdscope distill`, followed live) or wrote (a finished run,
 * replayed). A run in this process hands each new snapshot and each
 * applied setting over in memory (handover.h): the bridge emits "changed"
 * on the main loop, one callback per burst, and the files are not read
 * for them. A followed run is read from its directory's logs and snapshot
 * files, polled (kds_bridge_poll, which also brings the metrics and the
 * status of either kind). Changes go through the run (in-process) or
 * RUN_DIR/control.jsonl (followed). GTK main thread only. */
#ifndef KDS_BRIDGE_H
#define KDS_BRIDGE_H

#include <glib-object.h>

#include "core/config.h"
#include "data/dataset.h"
#include "probe/snapshot.h"
#include "train/run.h"
#include "train/runlog.h"
#include <gio/gio.h>

G_BEGIN_DECLS

#define KDS_TYPE_BRIDGE (kds_bridge_get_type())
G_DECLARE_FINAL_TYPE(KdsBridge, kds_bridge, KDS, BRIDGE, GObject)

typedef enum {
  KDS_CHANGED_STATUS = 1 << 0,    /* state, step, rate */
  KDS_CHANGED_METRICS = 1 << 1,   /* new log lines */
  KDS_CHANGED_SNAPSHOTS = 1 << 2, /* a new snapshot file (the list grew) */
  KDS_CHANGED_SETTINGS = 1 << 3,  /* a setting changed (sliders resync) */
} KdsChanged;

/* Drives a new run in this process (cfg is taken: the bridge frees it). */
KdsBridge *kds_bridge_new_run(KdConfig *cfg, const KdRunOpts *opts, GError **error);
/* The same without blocking the main loop: the session opens on a worker
 * thread, then done runs on the main loop and calls _finish for the
 * started bridge (or NULL and the error). */
void kds_bridge_new_run_async(KdConfig *cfg, const KdRunOpts *opts, GAsyncReadyCallback done, gpointer user);
KdsBridge *kds_bridge_new_run_finish(GAsyncResult *res, GError **error);
/* Follows (or replays) a run directory. */
KdsBridge *kds_bridge_new_follow(const char *run_dir, GError **error);

const char *kds_bridge_run_dir(KdsBridge *b);
gboolean kds_bridge_is_local(KdsBridge *b);
/* An inspect session (KdRunOpts.inspect): two models over a data set, no
 * training; each change or image pick is a new capture. */
gboolean kds_bridge_is_inspect(KdsBridge *b);
/* Reads what changed since the last poll; returns a KdsChanged mask. The
 * "changed" signal (guint mask) says the same for what an in-process run
 * handed over between polls. */
guint kds_bridge_poll(KdsBridge *b);
/* The settings as the run has them now (live values applied). */
const KdConfig *kds_bridge_config(KdsBridge *b);
KdRunLog *kds_bridge_log(KdsBridge *b);
/* Status: in-process from the run; followed from the logs (state guessed
 * from the last events and whether a process holds the run's lock). */
void kds_bridge_status(KdsBridge *b, KdRunStatus *st);

/* The run's snapshots: the indexed files, then the newest handed-over one
 * while its file is being written. */
int kds_bridge_snapshot_count(KdsBridge *b);
int kds_bridge_snapshot_step(KdsBridge *b, int i);
/* Snapshot i: the handed-over one from memory, else loaded (cached: the
 * last two loaded stay in memory). The result holds a reference:
 * kd_snapshot_free when done. NULL on error. */
KdSnapshot *kds_bridge_snapshot(KdsBridge *b, int i, GError **error);

gboolean kds_bridge_set(KdsBridge *b, const char *key, const char *value, GError **error);
/* A set that puts back the value an earlier set replaced: logged with
 * "undo":true (ui/undo.h). */
gboolean kds_bridge_undo(KdsBridge *b, const char *key, const char *value, GError **error);
gboolean kds_bridge_pause(KdsBridge *b, GError **error);
gboolean kds_bridge_resume(KdsBridge *b, GError **error);
gboolean kds_bridge_step(KdsBridge *b, GError **error);
gboolean kds_bridge_stop(KdsBridge *b, GError **error);

/* The probe images of a run this window drives (kd_prober_set_images):
 * taken at the next step's capture; FALSE with a message for indices
 * outside the validation split, or a run of another process. */
gboolean kds_bridge_set_probe_images(KdsBridge *b, const int *indices, int n, GError **error);
/* The validation indices the next capture probes; 0 when not known here. */
int kds_bridge_probe_images(KdsBridge *b, int *out);
/* The validation split of a run this window drives (read-only), or NULL. */
const KdDataset *kds_bridge_val(KdsBridge *b);

G_END_DECLS

#endif
