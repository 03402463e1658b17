/* The bridge: the window's one handle on a run, in-process or followed.
 * It never touches the config the run thread owns and never blocks on the
 * run; files are its source only for a run another process writes. */
#include "bridge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handover.h"
#include "probe/prober.h"
#include "probe/snapfile.h"
#include "train/control.h"
#include "train/session.h"

struct _KdsBridge {
  GObject parent;
  char *dir;
  KdRun *run;          /* in-process, or NULL when following */
  KdConfig *run_cfg;   /* the run thread's config (never read here) */
  KdConfig *view_cfg;  /* config.json + replayed set events: what the UI reads */
  KdRunLog *log;
  KdSnapshots *snaps;
  int nsnaps;
  unsigned long seen_events;
  int last_step;
  KdRunState last_state;
  KdProber *prober;    /* bound to the run's session when the run opens */
  KdProbeBox *box;     /* in-process: the prober publishes here */
  KdsHandover *hand;   /* in-process: snapshots and applied settings, in memory */
  KdSnapshot *live;    /* the newest snapshot handed over (its file may still be written) */
  int inspect;         /* an inspect session: no training; a change is captured at once */
  /* two-entry snapshot cache, by step */
  int cache_step[2];
  KdSnapshot *cache[2];
  int cache_next;
};

enum { SIGNAL_CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE(KdsBridge, kds_bridge, G_TYPE_OBJECT)

static GQuark err_quark(void) { return g_quark_from_static_string("kds-bridge"); }

static void kds_bridge_finalize(GObject *o) {
  KdsBridge *b = KDS_BRIDGE(o);
  if (b->run) kd_run_free(b->run);
  kds_handover_free(b->hand); /* after the run thread is gone: nothing posts any more */
  kd_prober_free(b->prober);
  kd_probe_box_free(b->box);
  kd_snapshot_free(b->live);
  kd_config_free(b->run_cfg);
  kd_config_free(b->view_cfg);
  kd_runlog_free(b->log);
  kd_snapshots_close(b->snaps);
  for (int i = 0; i < 2; i++) kd_snapshot_free(b->cache[i]);
  g_free(b->dir);
  G_OBJECT_CLASS(kds_bridge_parent_class)->finalize(o);
}

static void kds_bridge_class_init(KdsBridgeClass *k) {
  G_OBJECT_CLASS(k)->finalize = kds_bridge_finalize;
  /* "changed" (guint KdsChanged mask): the run thread handed something
   * over (in-process runs), on the main loop. */
  signals[SIGNAL_CHANGED] = g_signal_new("changed", G_TYPE_FROM_CLASS(k), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                         G_TYPE_NONE, 1, G_TYPE_UINT);
}

static void kds_bridge_init(KdsBridge *b) {
  b->cache_step[0] = b->cache_step[1] = -1;
  b->last_state = KD_RUN_READY;
}

/* The UI's view of a followed run's settings: the resolved config plus
 * every logged change (read once; later changes one by one as the log
 * grows, see follow_settings). */
static int reload_view_config(KdsBridge *b, KdError *err) {
  KdConfig *c = kd_config_new();
  char path[4200];
  snprintf(path, sizeof path, "%s/config.json", b->dir);
  long seq;
  int nsets;
  if (!c || kd_settings_register_all(c) || kd_config_load_file(c, path, err) || kd_control_replay_events(b->dir, c, &seq, &nsets, err)) {
    kd_config_free(c);
    return -1;
  }
  kd_config_free(b->view_cfg);
  b->view_cfg = c;
  return 0;
}

/* The UI's view of an in-process run's settings: a copy of the config
 * the run opened with (live values of a resume included), then every
 * change the run applies as the hand-over brings it. */
static int copy_view_config(KdsBridge *b, const KdConfig *cfg, KdError *err) {
  KdConfig *c = kd_config_new();
  char *json = kd_config_to_json(cfg);
  int rc = !c || !json || kd_settings_register_all(c) ? kd_error(err, "out of memory")
                                                      : kd_config_load_string(c, json, "the run's settings", err);
  free(json);
  if (rc) {
    kd_config_free(c);
    return -1;
  }
  kd_config_free(b->view_cfg);
  b->view_cfg = c;
  return 0;
}

static gboolean open_readers(KdsBridge *b, GError **error) {
  KdError err;
  b->log = kd_runlog_open(b->dir, &err);
  if (b->log) b->snaps = kd_snapshots_open(b->dir, &err);
  if (!b->log || !b->snaps) {
    g_set_error(error, err_quark(), 1, "%s", err.msg);
    return FALSE;
  }
  return TRUE;
}

/* On the main loop: what the run thread handed over. */
static void on_handover(gpointer user, KdSnapshot *snap, char **sets) {
  KdsBridge *b = user;
  guint changed = 0;
  for (char **kv = sets; kv[0] && kv[1]; kv += 2)
    if (kd_config_set(b->view_cfg, kv[0], kv[1], NULL) == 0) changed |= KDS_CHANGED_SETTINGS;
  g_strfreev(sets);
  if (snap) {
    kd_snapshot_free(b->live);
    b->live = snap;
    KdError err;
    kd_snapshots_refresh(b->snaps, &err); /* the files before it: its place on the timeline */
    b->nsnaps = kds_bridge_snapshot_count(b);
    changed |= KDS_CHANGED_SNAPSHOTS;
  }
  if (changed) g_signal_emit(b, signals[SIGNAL_CHANGED], 0, changed);
}

/* An applied change: to the window, and in an inspect session a capture
 * at the current settings (there is no next step to wait for). */
static void on_run_set(void *user, const char *key, const char *value) {
  KdsBridge *b = user;
  kds_handover_set(b->hand, key, value);
  if (b->inspect && b->prober) kd_prober_request(b->prober);
}

/* The parts of starting a run: prepare and finish on the main loop, open
 * (the session: models, teacher checkpoint, data; ~0.3 s on the default
 * run) on any thread. Each frees b and sets error on failure. */
static KdsBridge *prepare_run(KdConfig *cfg, const KdRunOpts *opts_in, KdRunOpts *opts, GError **error) {
  KdsBridge *b = g_object_new(KDS_TYPE_BRIDGE, NULL);
  KdError err;
  *opts = *opts_in;
  b->run_cfg = cfg;
  /* Snapshots and applied settings reach the window in memory (the
   * hand-over); the probes also write the snapshot files that follow and
   * replay read. Bound to the run's session once it is open. */
  b->box = kd_probe_box_new();
  b->hand = kds_handover_new(b->box, on_handover, b);
  if (b->box) kd_probe_box_set_notify(b->box, kds_handover_snapshot, b->hand);
  b->inspect = opts->inspect;
  opts->on_set = on_run_set, opts->on_set_user = b;
  KdProbeCfg pc;
  if (kd_probe_cfg_from_settings(&pc, cfg, &err)) {
    g_set_error(error, err_quark(), 1, "%s", err.msg);
    g_object_unref(b);
    return NULL;
  }
  pc.box = b->box;
  pc.inspect = opts->inspect;
  b->prober = kd_prober_new(NULL, &pc, &err);
  if (b->prober) opts->after_step = kd_prober_run_hook, opts->after_step_user = b->prober;
  return b;
}

static gboolean open_run(KdsBridge *b, const KdRunOpts *opts, GError **error) {
  KdError err;
  b->run = kd_run_new(b->run_cfg, opts, &err);
  /* Bound now, so that probe images outside the validation split fail the start. */
  if (!b->run || (b->prober && kd_prober_bind(b->prober, kd_run_session(b->run), &err))) {
    g_set_error(error, err_quark(), 1, "%s", err.msg);
    return FALSE;
  }
  return TRUE;
}

static KdsBridge *finish_run(KdsBridge *b, GError **error) {
  KdError err;
  if (copy_view_config(b, b->run_cfg, &err)) {
    g_set_error(error, err_quark(), 1, "%s", err.msg);
    g_object_unref(b);
    return NULL;
  }
  b->dir = g_strdup(kd_run_dir(b->run));
  if (!open_readers(b, error) || kd_run_start(b->run, &err)) {
    if (error && !*error) g_set_error(error, err_quark(), 1, "%s", err.msg);
    g_object_unref(b);
    return NULL;
  }
  return b;
}

KdsBridge *kds_bridge_new_run(KdConfig *cfg, const KdRunOpts *opts_in, GError **error) {
  KdRunOpts opts;
  KdsBridge *b = prepare_run(cfg, opts_in, &opts, error);
  if (b && !open_run(b, &opts, error)) g_clear_object(&b);
  return b ? finish_run(b, error) : NULL;
}

typedef struct {
  KdsBridge *b;
  KdRunOpts opts;
} OpenJob;

static void open_job_free(gpointer p) {
  OpenJob *j = p;
  g_clear_object(&j->b);
  g_free(j);
}

static void open_in_thread(GTask *t, gpointer src, gpointer data, GCancellable *cancel) {
  (void)src, (void)cancel;
  OpenJob *j = data;
  GError *e = NULL;
  if (open_run(j->b, &j->opts, &e)) g_task_return_boolean(t, TRUE);
  else g_task_return_error(t, e);
}

void kds_bridge_new_run_async(KdConfig *cfg, const KdRunOpts *opts, GAsyncReadyCallback done, gpointer user) {
  GTask *t = g_task_new(NULL, NULL, done, user);
  GError *e = NULL;
  OpenJob *j = g_new0(OpenJob, 1);
  j->b = prepare_run(cfg, opts, &j->opts, &e);
  g_task_set_task_data(t, j, open_job_free);
  if (!j->b) g_task_return_error(t, e);
  else g_task_run_in_thread(t, open_in_thread);
  g_object_unref(t);
}

KdsBridge *kds_bridge_new_run_finish(GAsyncResult *res, GError **error) {
  GTask *t = G_TASK(res);
  if (!g_task_propagate_boolean(t, error)) return NULL;
  OpenJob *j = g_task_get_task_data(t);
  KdsBridge *b = j->b;
  j->b = NULL;
  return finish_run(b, error);
}

KdsBridge *kds_bridge_new_follow(const char *run_dir, GError **error) {
  KdsBridge *b = g_object_new(KDS_TYPE_BRIDGE, NULL);
  KdError err;
  b->dir = g_strdup(run_dir);
  if (!open_readers(b, error) || reload_view_config(b, &err)) {
    if (error && !*error) g_set_error(error, err_quark(), 1, "%s", err.msg);
    g_object_unref(b);
    return NULL;
  }
  return b;
}

const char *kds_bridge_run_dir(KdsBridge *b) { return b->dir; }
gboolean kds_bridge_is_local(KdsBridge *b) { return b->run != NULL; }
gboolean kds_bridge_is_inspect(KdsBridge *b) { return b->inspect; }
const KdConfig *kds_bridge_config(KdsBridge *b) { return b->view_cfg; }
KdRunLog *kds_bridge_log(KdsBridge *b) { return b->log; }

/* A followed run's new events [seen, n): its set events applied to the
 * view, one by one; a log cut back (a resume) is read again from the start. */
static guint follow_settings(KdsBridge *b, unsigned long n) {
  KdError err;
  if (n < b->seen_events) return reload_view_config(b, &err) == 0 ? KDS_CHANGED_SETTINGS : 0;
  guint changed = 0;
  for (unsigned long i = b->seen_events; i < n; i++) {
    KdRunEvent e = kd_runlog_event(b->log, (int)i);
    const KdParamDesc *d = strcmp(e.type, "set") ? NULL : kd_config_find(b->view_cfg, e.key);
    if (d && d->live && kd_config_set(b->view_cfg, e.key, e.value, NULL) == 0) changed = KDS_CHANGED_SETTINGS;
  }
  return changed;
}

guint kds_bridge_poll(KdsBridge *b) {
  guint changed = 0;
  KdError err;
  if (kd_runlog_refresh(b->log, &err) > 0) changed |= KDS_CHANGED_METRICS;
  unsigned long nev = (unsigned long)kd_runlog_nevents(b->log);
  if (nev != b->seen_events) {
    /* An in-process run's changes come by the hand-over. */
    if (!b->run) changed |= follow_settings(b, nev);
    b->seen_events = nev;
    changed |= KDS_CHANGED_STATUS;
  }
  if (!b->run) { /* an in-process run's snapshots come by the hand-over */
    int had = b->nsnaps, last = kds_bridge_snapshot_step(b, had - 1);
    kd_snapshots_refresh(b->snaps, &err);
    b->nsnaps = kds_bridge_snapshot_count(b);
    if (b->nsnaps != had || kds_bridge_snapshot_step(b, b->nsnaps - 1) != last) changed |= KDS_CHANGED_SNAPSHOTS;
  }
  KdRunStatus st;
  kds_bridge_status(b, &st);
  if (st.step != b->last_step || st.state != b->last_state) changed |= KDS_CHANGED_STATUS;
  b->last_step = st.step;
  b->last_state = st.state;
  return changed;
}

void kds_bridge_status(KdsBridge *b, KdRunStatus *st) {
  if (b->run) {
    kd_run_status(b->run, st);
    return;
  }
  memset(st, 0, sizeof *st);
  st->step = kd_runlog_last_step(b->log);
  st->total = kd_config_int(b->view_cfg, "train.steps");
  st->eval_step = -1;
  st->phase = "idle";
  long pid = 0;
  int live = kd_control_is_running(b->dir, &pid);
  KdRunState state = live ? KD_RUN_RUNNING : KD_RUN_STOPPED;
  for (int i = kd_runlog_nevents(b->log) - 1; i >= 0; i--) {
    const char *t = kd_runlog_event(b->log, i).type;
    if (!strcmp(t, "finish")) state = KD_RUN_FINISHED;
    else if (!strcmp(t, "pause") || !strcmp(t, "nonfinite")) state = live ? KD_RUN_PAUSED : KD_RUN_STOPPED;
    else if (!strcmp(t, "resume") || !strcmp(t, "start") || !strcmp(t, "stop")) state = live ? KD_RUN_RUNNING : KD_RUN_STOPPED;
    else continue;
    break;
  }
  st->state = state;
  /* The rate of a followed run: from the step times it logged. */
  KdRunSeries ss = kd_runlog_find(b->log, "step_s");
  if (ss.n && state == KD_RUN_RUNNING) {
    size_t k = ss.n < 20 ? ss.n : 20;
    double sum = 0;
    for (size_t i = ss.n - k; i < ss.n; i++) sum += ss.y[i];
    st->rate = sum > 0 ? (double)k / sum : 0;
  }
  KdRunSeries ap = kd_runlog_find(b->log, "eval.AP");
  if (ap.n) st->eval_step = (int)ap.x[ap.n - 1], st->eval[0] = ap.y[ap.n - 1];
  snprintf(st->message, sizeof st->message, live ? "following %s (pid %ld)" : "replaying %s", b->dir, pid);
}

/* 1 when the newest handed-over snapshot is past the indexed files (its
 * file is still being written): it is then the timeline's last entry. */
static int live_extra(KdsBridge *b) {
  int n = kd_snapshots_count(b->snaps);
  return b->live && (n == 0 || kd_snapshots_step(b->snaps, n - 1) < b->live->step);
}

int kds_bridge_snapshot_count(KdsBridge *b) { return kd_snapshots_count(b->snaps) + live_extra(b); }

int kds_bridge_snapshot_step(KdsBridge *b, int i) {
  int n = kd_snapshots_count(b->snaps);
  return i == n && live_extra(b) ? b->live->step : kd_snapshots_step(b->snaps, i);
}

KdSnapshot *kds_bridge_snapshot(KdsBridge *b, int i, GError **error) {
  int step = kds_bridge_snapshot_step(b, i);
  if (i < 0 || step < 0) {
    g_set_error(error, err_quark(), 1, "no snapshot %d", i);
    return NULL;
  }
  if (b->live && b->live->step == step) return kd_snapshot_ref(b->live);
  for (int k = 0; k < 2; k++)
    if (b->cache_step[k] == step && b->cache[k]) return kd_snapshot_ref(b->cache[k]);
  KdSnapshot *s;
  KdError err;
  if (kd_snapshot_load(b->snaps, i, &s, &err)) {
    g_set_error(error, err_quark(), 1, "%s", err.msg);
    return NULL;
  }
  int k = b->cache_next;
  b->cache_next = 1 - k;
  kd_snapshot_free(b->cache[k]);
  b->cache[k] = s;
  b->cache_step[k] = step;
  return kd_snapshot_ref(s);
}

static gboolean control(KdsBridge *b, KdControlKind kind, const char *key, const char *value, int undo, GError **error) {
  KdError err;
  int rc;
  if (b->run) {
    switch (kind) {
    case KD_CTL_SET: rc = undo ? kd_run_undo(b->run, key, value, "ui", &err) : kd_run_set(b->run, key, value, "ui", &err); break;
    case KD_CTL_PAUSE: rc = kd_run_pause(b->run, "ui", &err); break;
    case KD_CTL_RESUME: rc = kd_run_resume(b->run, "ui", &err); break;
    default: rc = kd_run_stop(b->run, "ui", &err); break;
    }
  } else {
    KdControlCmd cmd = {.kind = kind, .undo = undo};
    if (kind == KD_CTL_SET) {
      KdConfig *scratch = kd_config_new();
      rc = !scratch || kd_settings_register_all(scratch) ? kd_error(&err, "out of memory")
                                                         : kd_control_check_set(scratch, key, value, cmd.value, sizeof cmd.value, &err);
      kd_config_free(scratch);
      snprintf(cmd.key, sizeof cmd.key, "%s", key);
      if (!rc && !kd_control_is_running(b->dir, NULL)) rc = kd_error(&err, "%s: no process is running this run", b->dir);
    } else {
      rc = kd_control_is_running(b->dir, NULL) ? 0 : kd_error(&err, "%s: no process is running this run", b->dir);
    }
    if (!rc) rc = kd_control_append(b->dir, &cmd, 1, &err);
  }
  if (rc) g_set_error(error, err_quark(), 1, "%s", err.msg);
  return rc == 0;
}

gboolean kds_bridge_set(KdsBridge *b, const char *key, const char *value, GError **error) {
  return control(b, KD_CTL_SET, key, value, 0, error);
}
gboolean kds_bridge_undo(KdsBridge *b, const char *key, const char *value, GError **error) {
  return control(b, KD_CTL_SET, key, value, 1, error);
}
gboolean kds_bridge_pause(KdsBridge *b, GError **error) { return control(b, KD_CTL_PAUSE, NULL, NULL, 0, error); }
gboolean kds_bridge_resume(KdsBridge *b, GError **error) { return control(b, KD_CTL_RESUME, NULL, NULL, 0, error); }
gboolean kds_bridge_stop(KdsBridge *b, GError **error) { return control(b, KD_CTL_STOP, NULL, NULL, 0, error); }

gboolean kds_bridge_set_probe_images(KdsBridge *b, const int *indices, int n, GError **error) {
  KdError err;
  if (!b->prober) {
    g_set_error(error, err_quark(), 1, "the probe images of a run in another process are set when it starts "
                                       "(--set probe.images=3,17,42)");
    return FALSE;
  }
  if (kd_prober_set_images(b->prober, indices, n, &err)) {
    g_set_error(error, err_quark(), 1, "%s", err.msg);
    return FALSE;
  }
  return TRUE;
}

int kds_bridge_probe_images(KdsBridge *b, int *out) { return b->prober ? kd_prober_images(b->prober, out) : 0; }
const KdDataset *kds_bridge_val(KdsBridge *b) { return b->prober ? kd_prober_val(b->prober) : NULL; }

gboolean kds_bridge_step(KdsBridge *b, GError **error) {
  KdError err;
  if (!b->run) {
    g_set_error(error, err_quark(), 1, "single steps work on a run this window drives");
    return FALSE;
  }
  if (kd_run_step_once(b->run, &err)) {
    g_set_error(error, err_quark(), 1, "%s", err.msg);
    return FALSE;
  }
  return TRUE;
}
