/* The window's run controls beyond pause and step: Stop after the user
 * confirms it, Resume of a stopped run in this window (the engine's
 * --resume: docs/RUNS.md), the offer to follow a run another process
 * drives instead of resuming it, and the ETA. */
#include <math.h>

#include "train/control.h"
#include "train/rundir.h"
#include "train/session.h"
#include "window.h"

#define CONFIRM_KEY "kds-stop-confirm"

static GQuark quark(void) { return g_quark_from_static_string("kds-runctl"); }

GtkWidget *kds_window_stop_confirmation(KdsWindow *w) { return g_object_get_data(G_OBJECT(w), CONFIRM_KEY); }

static void on_confirm_destroy(GtkWidget *d, KdsWindow *w) {
  if (kds_window_stop_confirmation(w) == d) g_object_set_data(G_OBJECT(w), CONFIRM_KEY, NULL);
}

static void on_stop(GtkButton *btn, KdsWindow *w) {
  (void)btn;
  GtkWidget *d = kds_window_stop_confirmation(w);
  KdsBridge *b = kds_window_get_bridge(w);
  GError *e = NULL;
  if (b && !kds_bridge_stop(b, &e)) {
    kds_window_toast(w, e->message);
    g_error_free(e);
  } else if (b) {
    kds_window_toast(w, "stopping: the step finishes and a checkpoint is written; Resume run continues from it");
  }
  if (d) gtk_window_destroy(GTK_WINDOW(d));
}

static void on_cancel(GtkButton *btn, KdsWindow *w) {
  (void)btn;
  GtkWidget *d = kds_window_stop_confirmation(w);
  if (d) gtk_window_destroy(GTK_WINDOW(d));
}

void kds_window_confirm_stop(KdsWindow *w) {
  KdsBridge *b = kds_window_get_bridge(w);
  GtkWidget *d = kds_window_stop_confirmation(w);
  if (d || !b) {
    if (d) gtk_window_present(GTK_WINDOW(d));
    return;
  }
  KdRunStatus st;
  kds_bridge_status(b, &st);
  char *name = g_path_get_basename(kds_bridge_run_dir(b));
  char *text = g_strdup_printf("Stop %s at step %d of %d?\n\nThe current step finishes and a checkpoint is written. "
                               "Resume run (or kdscope %s --resume %s) continues from it later.",
                               name, st.step, st.total, kd_config_str(kds_bridge_config(b), "teacher.checkpoint")[0] ? "distill" : "train",
                               kds_bridge_run_dir(b));
  d = gtk_window_new();
  gtk_window_set_title(GTK_WINDOW(d), "Stop the run?");
  gtk_window_set_modal(GTK_WINDOW(d), TRUE);
  gtk_window_set_transient_for(GTK_WINDOW(d), GTK_WINDOW(w));
  gtk_window_set_destroy_with_parent(GTK_WINDOW(d), TRUE);
  gtk_window_set_resizable(GTK_WINDOW(d), FALSE);
  GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
  gtk_widget_set_margin_start(box, 18), gtk_widget_set_margin_end(box, 18);
  gtk_widget_set_margin_top(box, 18), gtk_widget_set_margin_bottom(box, 12);
  GtkWidget *label = gtk_label_new(text);
  gtk_label_set_wrap(GTK_LABEL(label), TRUE);
  gtk_label_set_max_width_chars(GTK_LABEL(label), 60);
  gtk_label_set_xalign(GTK_LABEL(label), 0);
  GtkWidget *buttons = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
  gtk_widget_set_halign(buttons, GTK_ALIGN_END);
  GtkWidget *cancel = gtk_button_new_with_mnemonic("_Cancel"), *stop = gtk_button_new_with_mnemonic("_Stop the run");
  gtk_widget_set_name(cancel, "cancel");
  gtk_widget_set_name(stop, "stop");
  gtk_widget_add_css_class(stop, "destructive-action");
  g_signal_connect(cancel, "clicked", G_CALLBACK(on_cancel), w);
  g_signal_connect(stop, "clicked", G_CALLBACK(on_stop), w);
  gtk_box_append(GTK_BOX(buttons), cancel);
  gtk_box_append(GTK_BOX(buttons), stop);
  gtk_box_append(GTK_BOX(box), label);
  gtk_box_append(GTK_BOX(box), buttons);
  gtk_window_set_child(GTK_WINDOW(d), box);
  /* Escape (and Enter, on the focused Cancel) keep the run going. */
  GtkEventController *keys = gtk_shortcut_controller_new();
  gtk_shortcut_controller_add_shortcut(GTK_SHORTCUT_CONTROLLER(keys),
                                       gtk_shortcut_new(gtk_keyval_trigger_new(GDK_KEY_Escape, 0), gtk_named_action_new("window.close")));
  gtk_widget_add_controller(d, keys);
  gtk_window_set_default_widget(GTK_WINDOW(d), cancel);
  g_object_set_data(G_OBJECT(w), CONFIRM_KEY, d);
  g_signal_connect(d, "destroy", G_CALLBACK(on_confirm_destroy), w);
  gtk_window_present(GTK_WINDOW(d));
  gtk_widget_grab_focus(cancel);
  g_free(text);
  g_free(name);
}

gboolean kds_window_can_resume(KdsWindow *w, const KdRunStatus *st) {
  KdsBridge *b = kds_window_get_bridge(w);
  if (!b || st->state != KD_RUN_STOPPED) return FALSE;
  const char *dir = kds_bridge_run_dir(b);
  if (!kds_bridge_is_local(b) && kd_control_is_running(dir, NULL)) return FALSE;
  return kd_rundir_latest_checkpoint(dir) > 0;
}

static gboolean same_dir(const char *a, const char *b) {
  char *ca = g_canonicalize_filename(a, NULL), *cb = g_canonicalize_filename(b, NULL);
  gboolean same = !g_strcmp0(ca, cb);
  g_free(ca);
  g_free(cb);
  return same;
}

gboolean kds_window_resume_run(KdsWindow *w, const char *run_dir, GError **e) {
  char *dir = g_strdup(run_dir);
  KdsBridge *cur = kds_window_get_bridge(w);
  gboolean ours = cur && kds_bridge_is_local(cur) && same_dir(kds_bridge_run_dir(cur), dir);
  long pid = 0;
  if (!ours && kd_control_is_running(dir, &pid)) {
    char *msg = g_strdup_printf("%s is already running in another process (pid %ld), so it cannot be resumed here.\n\n"
                                "Follow it instead: the window shows it live, and its controls act through the run's "
                                "control file (as kdscope set / pause / stop do).",
                                dir, pid);
    kds_window_offer_follow(w, dir, msg);
    g_free(msg);
    g_free(dir);
    return TRUE;
  }
  KdConfig *cfg = kd_config_new();
  char *path = g_build_filename(dir, "config.json", NULL);
  KdError err;
  gboolean ok = cfg && !kd_settings_register_all(cfg) && !kd_config_load_file(cfg, path, &err);
  g_free(path);
  if (!ok) {
    g_set_error(e, quark(), 1, "cannot resume %s: %s", dir, cfg ? err.msg : "out of memory");
    kd_config_free(cfg);
    g_free(dir);
    return FALSE;
  }
  /* The window's own stopped run still holds the run's lock: let it go. */
  if (ours) kds_window_set_bridge(w, NULL);
  KdRunOpts o = {0};
  o.session.resume_dir = dir;
  o.session.distill = *kd_config_str(cfg, "teacher.checkpoint") != 0;
  KdsBridge *b = kds_bridge_new_run(cfg, &o, e);
  if (!b) {
    g_free(dir);
    return FALSE;
  }
  kds_window_set_bridge(w, b);
  g_object_unref(b);
  char msg[512];
  g_snprintf(msg, sizeof msg, "resumed %s from its checkpoint at step %d", dir, kd_rundir_latest_checkpoint(dir));
  kds_window_toast(w, msg);
  g_free(dir);
  return TRUE;
}

void kds_window_eta(const KdRunStatus *st, char *buf, size_t len) {
  buf[0] = 0;
  if (st->state != KD_RUN_RUNNING || !(st->rate > 0) || st->total <= st->step) return;
  double s = (st->total - st->step) / st->rate;
  if (s < 90) g_snprintf(buf, len, "ETA %.0f s", ceil(s));
  else if (s < 5400) g_snprintf(buf, len, "ETA %d min %02d s", (int)(s / 60), (int)fmod(s, 60));
  else g_snprintf(buf, len, "ETA %d h %02d min", (int)(s / 3600), (int)fmod(s / 60, 60));
}
