/* The main window's behaviour: the run's state into the header, sidebar
 * and panels, the user's choices into the view and the run. Its widget
 * tree is the template window.ui; this file builds no static layout. */
#include "window.h"

#include <math.h>
#include <string.h>

#include "distill/distiller.h"
#include "kdui-resources.h"
#include "layout.h"
#include "run_browser.h"
#include "level_menu.h"
#include "shortcuts.h"
#include "probe_chooser.h"
#include "train/session.h"
#include "undo.h"
#include "wheel_guard.h"
#include "window_compare.h"

#define POLL_MS 100
#define CURVES_MS 500 /* curves redraw at most twice a second: a step per poll would redraw them 10x/s */
#define STATUS_MS 500 /* so do the step and loss readouts; a change of run state shows at once */

struct _KdsWindow {
  GtkApplicationWindow parent;
  KdsBridge *bridge;
  KdsView view;
  KdRunLog *ref_log; /* the run compared with (view.ref) */
  char *ref_dir, *ref_label;
  KdsCompare *compare; /* the runs on the compare chart */
  KdsPanel *compare_panel;
  KdsRunBrowser *browser; /* weak */
  char *offer_dir;        /* the run the offer page would follow */
  GtkWidget *stack, *progress_bar, *progress_label, *error_label, *offer_label, *compare_dd;
  KdsLayout *layout;
  GtkWidget *pause_btn, *step_btn, *stop_btn, *resume_btn, *methods_btn, *methods_box, *export_btn;
  GtkWidget *status_label, *losses_label, *hover_label;
  KdsControlPanel *controls;
  GtkWidget *level_dd, *image_spin, *overlay_check, *indep_check, *smooth_dd, *logy_dd;
  GtkWidget *levels_check, *probe_chooser;
  GPtrArray *panels; /* KdsPanel* (not owned) */
  GtkWidget *timeline, *timeline_label, *live_check;
  gboolean syncing;
  char methods[256];
  int snap_index;
  gint64 last_poll_us, last_tick_us, last_curves_us, started_us;
  gboolean curves_dirty;
  gint64 frames_drawn; /* the frame clock's counter at the last poll */
  gint64 last_status_us;
  gboolean status_dirty;
  int shown_state; /* run state the header shows, -1 before the first */
  guint frames;
  double max_work_ms, sum_work_ms, max_gap_ms;
  guint handovers; /* "changed" callbacks of the bridge (in-process hand-overs) */
  double max_hand_ms, sum_hand_ms;
  guint tick_id;
  KdsUndo undo;
};

G_DEFINE_FINAL_TYPE(KdsWindow, kds_window, GTK_TYPE_APPLICATION_WINDOW)

static void toast(KdsWindow *w, const char *msg) { gtk_label_set_text(GTK_LABEL(w->hover_label), msg); }
void kds_window_toast(KdsWindow *w, const char *message) { toast(w, message); }

/* ---- view changes ---- */

/* Queues a redraw of the panels whose kind needs any of `needs`. */
static void redraw(KdsWindow *w, unsigned needs) {
  for (guint i = 0; i < w->panels->len; i++) {
    KdsPanel *p = g_ptr_array_index(w->panels, i);
    const KdSnapFigKind *k = kds_panel_figure(p);
    if (k && (k->needs & needs)) gtk_widget_queue_resize(GTK_WIDGET(p));
  }
}

/* The snapshot or a map choice changed. */
static void redraw_maps(KdsWindow *w) {
  w->view.generation++;
  redraw(w, KD_SNAPFIG_NEEDS_SNAPSHOT | KD_SNAPFIG_NEEDS_SNAPSHOTS);
}

/* The log grew or a curves choice changed. */
static void redraw_curves(KdsWindow *w) {
  redraw(w, KD_SNAPFIG_NEEDS_LOG);
  if (kds_compare_count(w->compare)) gtk_widget_queue_resize(GTK_WIDGET(w->compare_panel));
}

static void update_status(KdsWindow *w);

static void show_snapshot(KdsWindow *w, int i) {
  if (!w->bridge) return;
  GError *e = NULL;
  KdSnapshot *s = kds_bridge_snapshot(w->bridge, i, &e);
  if (!s) {
    toast(w, e->message);
    g_error_free(e);
    return;
  }
  kd_snapshot_free(w->view.snap);
  w->view.snap = s;
  w->snap_index = i;
  if (w->view.image >= s->nimages) w->view.image = 0;
  w->syncing = TRUE; /* the menu lists this snapshot's levels, the one shown selected */
  w->view.level = kds_level_menu_sync(GTK_DROP_DOWN(w->level_dd), s, w->view.level);
  w->syncing = FALSE;
  for (int k = 0; k < kd_snapfig_count(); k++) /* panels of fields only some models have */
    if (kd_snapfig_at(k)->needs & KD_SNAPFIG_IF_FIELDS) {
      int shown = kd_snapfig_shown(kd_snapfig_at(k), s);
      kds_layout_set_available(w->layout, kd_snapfig_at(k)->name, shown);
      if (kd_snapfig_at(k)->replaces) kds_layout_set_available(w->layout, kd_snapfig_at(k)->replaces, !shown);
    }
  char buf[160];
  if (kds_bridge_is_inspect(w->bridge))
    g_snprintf(buf, sizeof buf, "capture %d of %d (no training)", i + 1, kds_bridge_snapshot_count(w->bridge));
  else
    g_snprintf(buf, sizeof buf, "snapshot %d of %d — step %d", i + 1, kds_bridge_snapshot_count(w->bridge), s->step);
  gtk_label_set_text(GTK_LABEL(w->timeline_label), buf);
  if (kds_bridge_is_inspect(w->bridge)) update_status(w); /* its losses are this capture's */
  gtk_spin_button_set_range(GTK_SPIN_BUTTON(w->image_spin), 0, s->nimages - 1);
  redraw_maps(w);
  redraw_curves(w); /* the playhead follows */
}

/* ---- controls from descriptors ---- */

static void rebuild_controls(KdsWindow *w) {
  const KdConfig *cfg = kds_bridge_config(w->bridge);
  const char *keys[128];
  int n = 0;
  int active[64] = {0};
  KdError err;
  snprintf(w->methods, sizeof w->methods, "%s", kd_config_str(cfg, "distill.methods"));
  if (kd_method_count() <= 64 && kd_distill_parse_methods(w->methods, active, &err) == 0)
    for (int m = 0; m < kd_method_count(); m++)
      if (active[m])
        for (int k = 0; k < kd_method_at(m)->nparams && n < 120; k++) keys[n++] = kd_method_at(m)->params[k].key;
  static const char *train_keys[] = {"train.lr", "train.clip_norm", "loss.box_weight"};
  /* Inspecting, only what changes the losses shown. */
  for (size_t i = kds_bridge_is_inspect(w->bridge) ? 2 : 0; i < G_N_ELEMENTS(train_keys); i++) keys[n++] = train_keys[i];
  keys[n] = NULL;
  kds_control_panel_rebuild(w->controls, cfg, keys);
  /* method check buttons */
  w->syncing = TRUE;
  GtkWidget *child = gtk_widget_get_first_child(w->methods_box);
  for (int m = 0; child; m++, child = gtk_widget_get_next_sibling(child))
    gtk_check_button_set_active(GTK_CHECK_BUTTON(child), m < 64 && active[m]);
  w->syncing = FALSE;
}

static void on_setting_changed(KdsControlPanel *p, const char *key, const char *value, KdsWindow *w) {
  (void)p;
  GError *e = NULL;
  if (!kds_bridge_set(w->bridge, key, value, &e)) {
    toast(w, e->message);
    g_error_free(e);
    return;
  }
  kds_undo_note_set(&w->undo);
  char msg[256];
  g_snprintf(msg, sizeof msg, "%s = %s (%s; Ctrl+Z undoes it)", key, value,
             kds_bridge_is_inspect(w->bridge) ? "the maps are recomputed at once" : "applies at the next step");
  toast(w, msg);
}

static void act_undo(GSimpleAction *a, GVariant *p, gpointer user) {
  (void)a, (void)p;
  KdsWindow *w = user;
  char msg[1400] = "nothing to undo: no run";
  if (w->bridge) kds_undo_last(&w->undo, w->bridge, msg, sizeof msg);
  toast(w, msg);
}

static void on_method_toggled(GtkCheckButton *b, KdsWindow *w) {
  (void)b;
  if (w->syncing || !w->bridge) return;
  GString *list = g_string_new("");
  GtkWidget *child = gtk_widget_get_first_child(w->methods_box);
  for (int m = 0; child; m++, child = gtk_widget_get_next_sibling(child))
    if (gtk_check_button_get_active(GTK_CHECK_BUTTON(child))) {
      if (list->len) g_string_append_c(list, ',');
      g_string_append(list, kd_method_at(m)->name);
    }
  GError *e = NULL;
  if (!kds_bridge_set(w->bridge, "distill.methods", list->str, &e)) {
    toast(w, e->message);
    g_error_free(e);
  } else {
    kds_undo_note_set(&w->undo);
  }
  g_string_free(list, TRUE);
}

/* ---- status ---- */

static void update_status(KdsWindow *w) {
  KdRunStatus st;
  kds_bridge_status(w->bridge, &st);
  char buf[512], eta[64];
  kds_window_eta(&st, eta, sizeof eta);
  g_snprintf(buf, sizeof buf, "%s  step %d / %d  %.1f steps/s%s%s", kd_run_state_name(st.state), st.step, st.total, st.rate,
             eta[0] ? "\n" : "", eta);
  if (st.eval_step >= 0) {
    size_t n = strlen(buf);
    g_snprintf(buf + n, sizeof buf - n, "\nAP %.1f%% at step %d", 100.0 * st.eval[0], st.eval_step);
  }
  if (kds_bridge_is_inspect(w->bridge)) {
    /* No steps to count: what is shown is a capture of the models as they are. */
    int n = kds_bridge_snapshot_count(w->bridge);
    g_snprintf(buf, sizeof buf, "inspecting (no training)\n%d capture%s", n, n == 1 ? "" : "s");
    if (w->view.snap) {
      size_t k = strlen(buf);
      g_snprintf(buf + k, sizeof buf - k, ", the last in %.2f s", w->view.snap->capture_s);
    }
  } else if (st.phase && strcmp(st.phase, "idle") && strcmp(st.phase, "step")) {
    size_t n = strlen(buf);
    g_snprintf(buf + n, sizeof buf - n, "\n%s %ld/%ld", st.phase, st.phase_done, st.phase_total);
  }
  gtk_label_set_text(GTK_LABEL(w->status_label), buf);
  GString *ls = g_string_new("");
  if (kds_bridge_is_inspect(w->bridge) && w->view.snap) { /* the losses of the probe images, as now set */
    g_string_append(ls, "on the probe images:");
    for (int i = 0; i < w->view.snap->nprobe_parts; i++)
      g_string_append_printf(ls, "\n%-22s %.4g", w->view.snap->probe_parts[i].name, w->view.snap->probe_parts[i].value);
  }
  for (int i = 0; i < st.last.nparts; i++) g_string_append_printf(ls, "%s%-22s %.4g", i ? "\n" : "", st.last.parts[i].name, st.last.parts[i].value);
  if (st.message[0]) g_string_append_printf(ls, "\n%s", st.message);
  gtk_label_set_text(GTK_LABEL(w->losses_label), ls->str);
  g_string_free(ls, TRUE);
  w->syncing = TRUE;
  gboolean running = st.state == KD_RUN_RUNNING;
  gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(w->pause_btn), !running);
  gtk_button_set_icon_name(GTK_BUTTON(w->pause_btn), running ? "media-playback-pause-symbolic" : "media-playback-start-symbolic");
  gboolean alive = st.state == KD_RUN_RUNNING || st.state == KD_RUN_PAUSED || st.state == KD_RUN_READY;
  gboolean trains = !kds_bridge_is_inspect(w->bridge);
  gtk_widget_set_sensitive(w->pause_btn, alive && trains);
  gtk_widget_set_sensitive(w->stop_btn, alive);
  gtk_widget_set_sensitive(w->step_btn, alive && trains && kds_bridge_is_local(w->bridge) && st.state == KD_RUN_PAUSED);
  gtk_widget_set_visible(w->resume_btn, kds_window_can_resume(w, &st));
  w->syncing = FALSE;
}

/* ---- the run's news ---- */

/* The settings in effect changed (a slider, `kdscope set`, a method). */
static void sync_settings(KdsWindow *w) {
  const KdConfig *cfg = kds_bridge_config(w->bridge);
  if (strcmp(w->methods, kd_config_str(cfg, "distill.methods"))) rebuild_controls(w);
  else kds_control_panel_sync(w->controls, cfg);
}

/* The run's snapshots grew: the timeline's range, and while live the
 * newest one on the panels (once: its file appearing later redraws
 * nothing). */
static void follow_snapshots(KdsWindow *w) {
  int n = kds_bridge_snapshot_count(w->bridge);
  w->syncing = TRUE;
  gtk_range_set_range(GTK_RANGE(w->timeline), 0, n > 1 ? n - 1 : 1);
  w->syncing = FALSE;
  if (n <= 0 || !(gtk_check_button_get_active(GTK_CHECK_BUTTON(w->live_check)) || !w->view.snap)) return;
  if (w->view.snap && w->snap_index == n - 1 && w->view.snap->step == kds_bridge_snapshot_step(w->bridge, n - 1)) return;
  w->syncing = TRUE;
  gtk_range_set_value(GTK_RANGE(w->timeline), n - 1);
  w->syncing = FALSE;
  show_snapshot(w, n - 1);
}

/* What an in-process run handed over, between polls: on the panels in the
 * next frame. */
static void on_bridge_changed(KdsBridge *b, guint changed, KdsWindow *w) {
  (void)b;
  gint64 t0 = g_get_monotonic_time();
  if (changed & KDS_CHANGED_SETTINGS) sync_settings(w);
  if (changed & KDS_CHANGED_SNAPSHOTS) follow_snapshots(w);
  double work = (g_get_monotonic_time() - t0) / 1000.0;
  w->handovers++;
  w->sum_hand_ms += work;
  if (work > w->max_hand_ms) w->max_hand_ms = work;
}

void kds_window_handover_stats(KdsWindow *w, guint *n, double *max_work_ms, double *mean_work_ms) {
  *n = w->handovers;
  *max_work_ms = w->max_hand_ms;
  *mean_work_ms = w->handovers ? w->sum_hand_ms / w->handovers : 0;
}

/* ---- the frame clock ---- */

/* Polls the run every POLL_MS from the main loop. A timer rather than a
 * tick callback: a tick callback keeps the frame clock running (a frame
 * 60 times a second even when nothing changed), which costs the training
 * thread CPU. Redraws are queued only for what changed and happen at the
 * next frame. The lateness of this timer is the main-loop stall. */
static gboolean on_poll(gpointer user) {
  KdsWindow *w = user;
  gint64 now = g_get_monotonic_time();
  if (w->last_tick_us) {
    double gap = (now - w->last_tick_us) / 1000.0 - POLL_MS;
    if (gap > w->max_gap_ms) w->max_gap_ms = gap;
    if (gap > 50 && !g_strcmp0(g_getenv("KDSCOPE_FRAME_STATS"), "verbose"))
      g_printerr("main-loop stall %.1f ms ending at %.3f s\n", gap, (now - w->started_us) / 1e6);
  }
  w->last_tick_us = now;
  GdkFrameClock *fc = gtk_widget_get_frame_clock(GTK_WIDGET(w));
  if (fc) w->frames_drawn = gdk_frame_clock_get_frame_counter(fc);
  if (!w->bridge) return G_SOURCE_CONTINUE;
  w->last_poll_us = now;
  gint64 t0 = g_get_monotonic_time();
  guint changed = kds_bridge_poll(w->bridge);
  if (changed & KDS_CHANGED_STATUS) w->status_dirty = TRUE;
  if (w->status_dirty) {
    KdRunStatus st;
    kds_bridge_status(w->bridge, &st);
    if ((int)st.state != w->shown_state || now - w->last_status_us >= STATUS_MS * 1000) {
      update_status(w);
      w->shown_state = (int)st.state;
      w->status_dirty = FALSE;
      w->last_status_us = now;
    }
  }
  if (changed & KDS_CHANGED_SETTINGS) sync_settings(w);
  if (changed & KDS_CHANGED_METRICS) w->curves_dirty = TRUE;
  if (w->ref_log && now - w->last_curves_us >= CURVES_MS * 1000 && kd_runlog_refresh(w->ref_log, NULL) > 0)
    w->curves_dirty = TRUE;
  if (kds_compare_count(w->compare) && now - w->last_curves_us >= CURVES_MS * 1000 && kds_compare_refresh(w->compare))
    w->curves_dirty = TRUE;
  if (w->curves_dirty && now - w->last_curves_us >= CURVES_MS * 1000) {
    redraw_curves(w);
    w->curves_dirty = FALSE;
    w->last_curves_us = now;
  }
  if (changed & KDS_CHANGED_SNAPSHOTS) follow_snapshots(w);
  double work = (g_get_monotonic_time() - t0) / 1000.0;
  w->frames++;
  w->sum_work_ms += work;
  if (work > w->max_work_ms) w->max_work_ms = work;
  return G_SOURCE_CONTINUE;
}

void kds_window_frame_stats(KdsWindow *w, guint *frames, double *max_work_ms, double *mean_work_ms, double *max_gap_ms) {
  *frames = w->frames;
  *max_work_ms = w->max_work_ms;
  *mean_work_ms = w->frames ? w->sum_work_ms / w->frames : 0;
  *max_gap_ms = w->max_gap_ms;
}

/* ---- run controls ---- */

static void report(KdsWindow *w, gboolean ok, GError *e) {
  if (ok) return;
  toast(w, e->message);
  g_error_free(e);
}

static void on_pause_toggled(GtkToggleButton *b, KdsWindow *w) {
  if (w->syncing || !w->bridge) return;
  GError *e = NULL;
  report(w, gtk_toggle_button_get_active(b) ? kds_bridge_pause(w->bridge, &e) : kds_bridge_resume(w->bridge, &e), e);
}

static void act_pause(GSimpleAction *a, GVariant *p, gpointer user) {
  (void)a, (void)p;
  KdsWindow *w = user;
  if (gtk_widget_get_sensitive(w->pause_btn))
    gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(w->pause_btn), !gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(w->pause_btn)));
}

static void act_step(GSimpleAction *a, GVariant *p, gpointer user) {
  (void)a, (void)p;
  KdsWindow *w = user;
  GError *e = NULL;
  if (w->bridge) report(w, kds_bridge_step(w->bridge, &e), e);
}

static void act_stop(GSimpleAction *a, GVariant *p, gpointer user) {
  (void)a, (void)p;
  KdsWindow *w = user;
  if (w->bridge && gtk_widget_get_sensitive(w->stop_btn)) kds_window_confirm_stop(w);
}

static void act_resume_run(GSimpleAction *a, GVariant *p, gpointer user) {
  (void)a, (void)p;
  KdsWindow *w = user;
  GError *e = NULL;
  if (w->bridge) {
    char *dir = g_strdup(kds_bridge_run_dir(w->bridge));
    report(w, kds_window_resume_run(w, dir, &e), e);
    g_free(dir);
  }
}

static void set_level(KdsWindow *w, int level) {
  if (!w->view.snap) return;
  int n = w->view.snap->nlev;
  w->view.level = ((level % n) + n) % n;
  gtk_drop_down_set_selected(GTK_DROP_DOWN(w->level_dd), (guint)w->view.level);
}

static void act_level(GSimpleAction *a, GVariant *p, gpointer user) {
  (void)p;
  KdsWindow *w = user;
  set_level(w, w->view.level + (strcmp(g_action_get_name(G_ACTION(a)), "level-next") ? -1 : 1));
}

static void act_image(GSimpleAction *a, GVariant *p, gpointer user) {
  (void)p;
  KdsWindow *w = user;
  if (!w->view.snap) return;
  int n = w->view.snap->nimages, d = strcmp(g_action_get_name(G_ACTION(a)), "image-next") ? -1 : 1;
  gtk_spin_button_set_value(GTK_SPIN_BUTTON(w->image_spin), ((w->view.image + d) % n + n) % n);
}

static void on_level(GObject *o, GParamSpec *ps, KdsWindow *w) {
  (void)ps;
  int l = kds_level_menu_selected(GTK_DROP_DOWN(o));
  if (w->syncing || l < 0) return;
  w->view.level = l;
  redraw_maps(w);
}

static void on_image(GtkSpinButton *s, KdsWindow *w) {
  w->view.image = gtk_spin_button_get_value_as_int(s);
  redraw_maps(w);
}

static void on_view_option(GtkWidget *wd, KdsWindow *w) {
  (void)wd;
  w->view.overlay = gtk_check_button_get_active(GTK_CHECK_BUTTON(w->overlay_check)) ? 0.6 : 0.0;
  w->view.independent = gtk_check_button_get_active(GTK_CHECK_BUTTON(w->indep_check));
  w->view.all_levels = gtk_check_button_get_active(GTK_CHECK_BUTTON(w->levels_check));
  w->view.logy = (int)gtk_drop_down_get_selected(GTK_DROP_DOWN(w->logy_dd)); /* auto, log, linear */
  guint sm = gtk_drop_down_get_selected(GTK_DROP_DOWN(w->smooth_dd));
  w->view.smooth = (KdSmooth){sm == 1 ? KD_SMOOTH_EMA : sm == 2 ? KD_SMOOTH_MEAN : KD_SMOOTH_NONE, 0.9, 50};
  kds_compare_set_style(w->compare, &w->view.smooth, w->view.logy);
  redraw_maps(w);
  redraw_curves(w);
}

static void on_smooth(GObject *o, GParamSpec *ps, KdsWindow *w) {
  (void)o, (void)ps;
  on_view_option(NULL, w);
}

static void on_compare_metric(GObject *o, GParamSpec *ps, KdsWindow *w) {
  (void)ps;
  kds_compare_set_metric(w->compare, (int)gtk_drop_down_get_selected(GTK_DROP_DOWN(o)));
  redraw_curves(w);
}

static void on_timeline(GtkRange *r, KdsWindow *w) {
  if (w->syncing || !w->bridge) return;
  int i = (int)lround(gtk_range_get_value(r));
  if (i != w->snap_index && i < kds_bridge_snapshot_count(w->bridge)) {
    gtk_check_button_set_active(GTK_CHECK_BUTTON(w->live_check), i == kds_bridge_snapshot_count(w->bridge) - 1);
    show_snapshot(w, i);
  }
}

/* The time cursor: the snapshot nearest the step (a click on the curves)
 * on the maps and the timeline, the playhead at its step. */
void kds_window_seek_step(KdsWindow *w, double step) {
  int n = w->bridge ? kds_bridge_snapshot_count(w->bridge) : 0, best = -1;
  for (int i = 0; i < n; i++)
    if (best < 0 || fabs(kds_bridge_snapshot_step(w->bridge, i) - step) < fabs(kds_bridge_snapshot_step(w->bridge, best) - step))
      best = i;
  if (best >= 0) gtk_range_set_value(GTK_RANGE(w->timeline), best); /* on_timeline shows it */
}

int kds_window_shown_step(KdsWindow *w) { return w->view.snap ? w->view.snap->step : -1; }
GtkWidget *kds_window_get_timeline(KdsWindow *w) { return w->timeline; }

static void act_about(GSimpleAction *a, GVariant *p, gpointer user) {
  (void)a, (void)p;
  static const char *authors[] = {"The kdscope developers", NULL};
  /* The methods' papers, as a paper using kdscope would cite them. */
  static const char *papers[] = {
      "FitNet: Romero et al., FitNets: Hints for Thin Deep Nets, ICLR 2015",
      "DeFeat: Guo et al., Distilling Object Detectors via Decoupled Features, CVPR 2021",
      "FGD: Yang et al., Focal and Global Knowledge Distillation for Detectors, CVPR 2022",
      "PKD: Cao et al., PKD: General Distillation Framework for Object Detectors via Pearson Correlation "
      "Coefficient, NeurIPS 2022",
      "CWD: Shu et al., Channel-wise Knowledge Distillation for Dense Prediction, ICCV 2021",
      "Logit KD: Hinton et al., Distilling the Knowledge in a Neural Network, 2015",
      "RetinaNet: Lin et al., Focal Loss for Dense Object Detection, ICCV 2017",
      NULL};
  GtkWidget *d = gtk_about_dialog_new();
  gtk_window_set_transient_for(GTK_WINDOW(d), GTK_WINDOW(user));
  gtk_window_set_modal(GTK_WINDOW(d), TRUE);
  g_object_set(d, "program-name", "kdscope", "version", KD_VERSION, "logo-icon-name", "io.github.kdscope.Kdscope",
               "comments", "A workbench for knowledge distillation of object detectors: see where the student's features "
                           "differ from the teacher's, tune the distillation live, export figures.",
               "license-type", GTK_LICENSE_MIT_X11, "authors", authors, NULL);
  gtk_about_dialog_add_credit_section(GTK_ABOUT_DIALOG(d), "Methods implemented", papers);
  gtk_window_present(GTK_WINDOW(d));
}

static void act_dark(GSimpleAction *a, GVariant *p, gpointer user) {
  (void)user;
  GVariant *state = g_action_get_state(G_ACTION(a));
  gboolean dark = !g_variant_get_boolean(state);
  g_variant_unref(state);
  (void)p;
  g_simple_action_set_state(a, g_variant_new_boolean(dark));
  g_object_set(gtk_settings_get_default(), "gtk-application-prefer-dark-theme", dark, NULL);
}

/* ---- panels ---- */

/* The readout line, and the linked cell: the position under the pointer
 * on one map is outlined on every map panel (same cell on same-size maps). */
static void on_panel_hover(KdsPanel *p, const char *text, gboolean on_map, double u, double v, gpointer user) {
  (void)p, (void)text; /* the panel draws the text next to the pointer */
  KdsWindow *w = user;
  KdFigMark m = {on_map, on_map ? u : 0, on_map ? v : 0};
  if (!m.on && !w->view.mark.on) return;
  w->view.mark = m;
  for (guint i = 0; i < w->panels->len; i++) {
    KdsPanel *q = g_ptr_array_index(w->panels, i);
    const KdSnapFigKind *k = kds_panel_figure(q);
    if (k && k->level_maps) kds_panel_redraw(q);
  }
}

static void redraw_level_maps(KdsWindow *w) {
  for (guint i = 0; i < w->panels->len; i++) {
    KdsPanel *q = g_ptr_array_index(w->panels, i);
    const KdSnapFigKind *k = kds_panel_figure(q);
    if (k && k->level_maps) kds_panel_redraw(q);
  }
}

/* A click on a map cell: the picked pixel the attention panel draws. */
static void on_panel_pick(KdsPanel *p, double u, double v, gpointer user) {
  (void)p;
  KdsWindow *w = user;
  kds_panel_note_pick();
  w->view.pick = (KdFigMark){1, u, v};
  redraw_level_maps(w);
}

/* An arrow key: the picked pixel one cell over on the shown level. */
static void on_panel_pick_move(KdsPanel *p, int dx, int dy, gpointer user) {
  (void)p;
  KdsWindow *w = user;
  int H, W, y, x;
  if (!w->view.snap || kd_snapfig_level_size(w->view.snap, w->view.image, w->view.level, &H, &W, NULL)) return;
  kd_snapfig_pick_cell(w->view.pick, H, W, &y, &x);
  y = y + dy < 0 ? 0 : y + dy >= H ? H - 1 : y + dy;
  x = x + dx < 0 ? 0 : x + dx >= W ? W - 1 : x + dx;
  kds_panel_note_pick();
  w->view.pick = kd_snapfig_cell_mark(y, x, H, W);
  redraw_level_maps(w);
}

static int by_slot(gconstpointer a, gconstpointer b) {
  const KdSnapFigSlot *x = &kds_panel_figure(*(KdsPanel *const *)a)->panel, *y = &kds_panel_figure(*(KdsPanel *const *)b)->panel;
  return x->row != y->row ? x->row - y->row : x->col - y->col;
}

static gboolean build_compare(gpointer user, KdFigPanel *out) {
  KdsWindow *w = user;
  return w->compare && kds_compare_build(w->compare, out);
}

/* One panel for every figure kind with a cell in the window, in the order
 * of their cells, then the runs compared; placed as the user's layout
 * says. */
static void add_panels(KdsWindow *w) {
  for (int i = 0; i < kd_snapfig_count(); i++) {
    const KdSnapFigKind *k = kd_snapfig_at(i);
    if (k->panel.span <= 0) continue;
    KdsPanel *p = kds_panel_new(k->name);
    kds_panel_set_view(p, &w->view);
    g_signal_connect(p, "hover", G_CALLBACK(on_panel_hover), w);
    g_signal_connect(p, "pick", G_CALLBACK(on_panel_pick), w);
    g_signal_connect(p, "pick-move", G_CALLBACK(on_panel_pick_move), w);
    g_signal_connect_swapped(p, "seek", G_CALLBACK(kds_window_seek_step), w);
    g_ptr_array_add(w->panels, p);
  }
  g_ptr_array_sort(w->panels, by_slot);
  for (guint i = 0; i < w->panels->len; i++) {
    KdsPanel *p = g_ptr_array_index(w->panels, i);
    kds_layout_add(w->layout, GTK_WIDGET(p), kds_panel_kind(p));
  }
  w->compare = kds_compare_new();
  w->compare_panel = kds_panel_new_custom("compare", build_compare, w, "no run compared");
  kds_panel_set_view(w->compare_panel, &w->view);
  g_signal_connect(w->compare_panel, "hover", G_CALLBACK(on_panel_hover), w);
  kds_layout_add(w->layout, GTK_WIDGET(w->compare_panel), "compare");
  kds_layout_set_available(w->layout, "compare", FALSE);
  for (int i = 0; i < kd_snapfig_count(); i++)
    if (kd_snapfig_at(i)->panel.span > 0 && !kd_snapfig_shown(kd_snapfig_at(i), NULL))
      kds_layout_set_available(w->layout, kd_snapfig_at(i)->name, FALSE);
  KdsLayoutPrefs prefs;
  GError *e = NULL;
  if (!kds_layout_prefs_load(&prefs, &e)) {
    g_printerr("kdscope: %s (the other layout settings apply)\n", e->message);
    g_error_free(e);
  }
  kds_layout_apply(w->layout, &prefs);
}

static void act_layout(GSimpleAction *a, GVariant *p, gpointer user) {
  KdsWindow *w = user;
  KdsLayoutPrefs prefs = *kds_layout_prefs(w->layout);
  if (!kds_layout_prefs_parse(&prefs, g_variant_get_string(p, NULL))) return;
  g_simple_action_set_state(a, p);
  GError *e = NULL;
  if (!kds_layout_choose(w->layout, &prefs, &e)) {
    toast(w, e->message);
    g_error_free(e);
  }
}

/* The methods' check buttons, from the method registry. */
static void add_methods(KdsWindow *w) {
  for (int m = 0; m < kd_method_count(); m++) {
    GtkWidget *cb = gtk_check_button_new_with_label(kd_method_at(m)->label);
    gtk_widget_set_tooltip_text(cb, kd_method_at(m)->help);
    g_signal_connect(cb, "toggled", G_CALLBACK(on_method_toggled), w);
    gtk_box_append(GTK_BOX(w->methods_box), cb);
  }
}

void kds_window_open_dialog(KdsWindow *w);

static void act_open(GSimpleAction *a, GVariant *p, gpointer user) {
  (void)a, (void)p;
  kds_window_open_dialog(user);
}

static void act_export(GSimpleAction *a, GVariant *p, gpointer user) {
  (void)a, (void)p;
  kds_window_export_dialog(user);
}

static void act_compare(GSimpleAction *a, GVariant *p, gpointer user) {
  (void)a, (void)p;
  kds_window_compare_dialog(user);
}

static void act_compare_clear(GSimpleAction *a, GVariant *p, gpointer user) {
  (void)a, (void)p;
  kds_window_set_reference(user, NULL, NULL);
  kds_window_set_compare(user, NULL, 0, NULL);
}

static void act_browse(GSimpleAction *a, GVariant *p, gpointer user) {
  (void)a, (void)p;
  KdsWindow *w = user;
  GError *e = NULL;
  if (!kds_window_browse(w, NULL, &e)) {
    toast(w, e->message);
    g_error_free(e);
  }
}

static void update_compare_actions(KdsWindow *w) {
  GAction *clear = g_action_map_lookup_action(G_ACTION_MAP(w), "compare-clear");
  if (clear) g_simple_action_set_enabled(G_SIMPLE_ACTION(clear), w->ref_log || kds_compare_count(w->compare));
  gboolean any = kds_compare_count(w->compare) > 0;
  gtk_widget_set_sensitive(w->compare_dd, any);
  kds_layout_set_available(w->layout, "compare", any);
}

gboolean kds_window_set_compare(KdsWindow *w, const char *const *run_dirs, int n, GError **e) {
  if (!kds_compare_set_runs(w->compare, run_dirs, n, e)) return FALSE;
  update_compare_actions(w);
  if (n) {
    kds_layout_show(w->layout, "compare");
    char msg[256];
    g_snprintf(msg, sizeof msg, "comparing %d run%s on the \"%s\" panel (Compare in the sidebar: the series)", n,
               n == 1 ? "" : "s", kds_layout_title("compare"));
    toast(w, msg);
  }
  redraw_curves(w);
  return TRUE;
}

KdsCompare *kds_window_get_compare(KdsWindow *w) { return w->compare; }
KdsPanel *kds_window_get_compare_panel(KdsWindow *w) { return w->compare_panel; }
KdsLayout *kds_window_get_layout(KdsWindow *w) { return w->layout; }

gboolean kds_window_open_run(KdsWindow *w, const char *run_dir, GError **e) {
  if (w->bridge && !g_strcmp0(kds_bridge_run_dir(w->bridge), run_dir)) return TRUE;
  KdsBridge *b = kds_bridge_new_follow(run_dir, e);
  if (!b) return FALSE;
  kds_window_set_bridge(w, b);
  g_object_unref(b);
  return TRUE;
}

/* The folder a browser opens on: the one asked, else the current run's
 * parent, else ./runs. */
KdsRunBrowser *kds_window_browse(KdsWindow *w, const char *folder, GError **e) {
  char *guess = NULL;
  if (!folder && w->browser) folder = kds_run_browser_folder(w->browser);
  if (!folder && w->bridge) folder = guess = g_path_get_dirname(kds_bridge_run_dir(w->bridge));
  if (!folder) folder = "runs";
  KdsRunBrowser *b = w->browser ? w->browser : kds_run_browser_new(w);
  gboolean same = w->browser && !g_strcmp0(kds_run_browser_folder(b), folder);
  if (!same && !kds_run_browser_set_folder(b, folder, e)) {
    if (!w->browser) gtk_window_destroy(GTK_WINDOW(b));
    g_free(guess);
    return NULL;
  }
  if (!w->browser) {
    w->browser = b;
    g_object_add_weak_pointer(G_OBJECT(b), (gpointer *)&w->browser);
  }
  gtk_window_present(GTK_WINDOW(b));
  g_free(guess);
  return b;
}

KdsRunBrowser *kds_window_get_browser(KdsWindow *w) { return w->browser; }

/* No run on screen: nothing for the run controls to act on. */
static void controls_idle(KdsWindow *w) {
  gtk_widget_set_sensitive(w->pause_btn, FALSE);
  gtk_widget_set_sensitive(w->step_btn, FALSE);
  gtk_widget_set_sensitive(w->stop_btn, FALSE);
  gtk_widget_set_visible(w->resume_btn, FALSE);
}

void kds_window_offer_follow(KdsWindow *w, const char *run_dir, const char *message) {
  if (!w->bridge) controls_idle(w);
  g_free(w->offer_dir);
  w->offer_dir = g_strdup(run_dir);
  gtk_label_set_text(GTK_LABEL(w->offer_label), message);
  gtk_stack_set_visible_child_name(GTK_STACK(w->stack), "offer");
}

static void on_offer_follow(GtkButton *btn, KdsWindow *w) {
  (void)btn;
  GError *e = NULL;
  if (w->offer_dir && !kds_window_open_run(w, w->offer_dir, &e)) {
    kds_window_show_error(w, e->message);
    g_error_free(e);
  }
}

const char *kds_window_page(KdsWindow *w) { return gtk_stack_get_visible_child_name(GTK_STACK(w->stack)); }

gboolean kds_window_set_reference(KdsWindow *w, const char *run_dir, GError **e) {
  KdRunLog *log = NULL;
  if (run_dir) {
    KdError err;
    log = kd_runlog_open(run_dir, &err);
    if (!log || kd_runlog_refresh(log, &err) < 0) {
      kd_runlog_free(log);
      g_set_error(e, g_quark_from_static_string("kds-compare"), 1, "%s", err.msg);
      return FALSE;
    }
  }
  kd_runlog_free(w->ref_log);
  g_free(w->ref_dir);
  g_free(w->ref_label);
  w->ref_log = log;
  w->ref_dir = g_strdup(run_dir);
  w->ref_label = run_dir ? g_path_get_basename(run_dir) : NULL;
  w->view.ref = log;
  w->view.ref_dir = w->ref_dir;
  w->view.ref_label = w->ref_label;
  w->view.generation++;
  /* The reference also joins the runs compared. */
  if (log) kds_compare_add(w->compare, run_dir, NULL);
  update_compare_actions(w);
  if (log) {
    char msg[1200];
    g_snprintf(msg, sizeof msg, "comparing with %s (dotted on the curves)", w->ref_label);
    toast(w, msg);
  }
  redraw_curves(w);
  return TRUE;
}

static const GActionEntry actions[] = {
    {"pause", act_pause, NULL, NULL, NULL, {0}},     {"step", act_step, NULL, NULL, NULL, {0}},
    {"stop", act_stop, NULL, NULL, NULL, {0}},       {"level-next", act_level, NULL, NULL, NULL, {0}},
    {"level-prev", act_level, NULL, NULL, NULL, {0}}, {"image-next", act_image, NULL, NULL, NULL, {0}},
    {"image-prev", act_image, NULL, NULL, NULL, {0}}, {"about", act_about, NULL, NULL, NULL, {0}},
    {"dark", act_dark, NULL, "false", NULL, {0}},     {"open", act_open, NULL, NULL, NULL, {0}},
    {"export", act_export, NULL, NULL, NULL, {0}},   {"compare", act_compare, NULL, NULL, NULL, {0}},
    {"compare-clear", act_compare_clear, NULL, NULL, NULL, {0}},
    {"browse", act_browse, NULL, NULL, NULL, {0}},   {"resume-run", act_resume_run, NULL, NULL, NULL, {0}},
    {"layout", act_layout, "s", "'tabs'", NULL, {0}},
    {"compare-clear", act_compare_clear, NULL, NULL, NULL, {0}}, {"undo", act_undo, NULL, NULL, NULL, {0}},
};

static void kds_window_dispose(GObject *o) {
  KdsWindow *w = KDS_WINDOW(o);
  if (w->tick_id) g_source_remove(w->tick_id), w->tick_id = 0;
  if (w->bridge) g_signal_handlers_disconnect_by_data(w->bridge, w);
  if (g_getenv("KDSCOPE_FRAME_STATS") && w->frames) {
    double pmax, pmean;
    guint pn;
    kds_panel_paint_stats(&pmax, &pmean, &pn);
    double lmax, lmean;
    guint ln;
    kds_panel_latency_stats(&lmax, &lmean, &ln);
    double kmax, kmean;
    guint kn;
    kds_panel_pick_stats(&kmax, &kmean, &kn);
    g_printerr("pick stats: pick to paint mean %.2f ms max %.2f ms (%u picks)\n", kmean, kmax, kn);
    KdRunStatus st = {0};
    if (w->bridge) kds_bridge_status(w->bridge, &st);
    g_printerr("frame stats: %u polls, poll work mean %.2f ms max %.2f ms; %" G_GINT64_FORMAT " frames drawn; %u panel paints, "
               "mean %.2f ms max %.2f ms; %u hand-overs, work mean %.2f ms max %.2f ms; capture to paint mean %.1f ms "
               "max %.1f ms (%u paints); longest main-loop stall %.1f ms; run at step %d, %.2f steps/s\n",
               w->frames, w->sum_work_ms / w->frames, w->max_work_ms, w->frames_drawn, pn, pmean, pmax, w->handovers,
               w->handovers ? w->sum_hand_ms / w->handovers : 0, w->max_hand_ms, lmean, lmax, ln, w->max_gap_ms, st.step,
               st.rate);
  }
  g_clear_object(&w->bridge);
  g_clear_pointer(&w->compare, kds_compare_free);
  kd_runlog_free(w->ref_log), w->ref_log = NULL, w->view.ref = NULL;
  g_clear_pointer(&w->ref_dir, g_free);
  g_clear_pointer(&w->ref_label, g_free);
  g_clear_pointer(&w->offer_dir, g_free);
  if (w->browser) {
    g_object_remove_weak_pointer(G_OBJECT(w->browser), (gpointer *)&w->browser);
    gtk_window_destroy(GTK_WINDOW(w->browser));
    w->browser = NULL;
  }
  if (w->view.snap) kd_snapshot_free(w->view.snap), w->view.snap = NULL;
  g_clear_pointer(&w->panels, g_ptr_array_unref);
  G_OBJECT_CLASS(kds_window_parent_class)->dispose(o);
}

static void kds_window_class_init(KdsWindowClass *k) {
  GtkWidgetClass *wc = GTK_WIDGET_CLASS(k);
  G_OBJECT_CLASS(k)->dispose = kds_window_dispose;
  g_type_ensure(KDS_TYPE_CONTROL_PANEL);
  g_type_ensure(KDS_TYPE_LAYOUT);
  g_type_ensure(KDS_TYPE_PROBE_CHOOSER);
  kdui_register_resource();
  gtk_widget_class_set_template_from_resource(wc, "/io/github/kdscope/Kdscope/window.ui");
#define CHILD(name) gtk_widget_class_bind_template_child(wc, KdsWindow, name)
  CHILD(stack), CHILD(progress_bar), CHILD(progress_label), CHILD(error_label), CHILD(layout), CHILD(offer_label);
  CHILD(pause_btn), CHILD(step_btn), CHILD(stop_btn), CHILD(resume_btn), CHILD(methods_btn), CHILD(methods_box);
  CHILD(export_btn), CHILD(compare_dd);
  CHILD(status_label), CHILD(losses_label), CHILD(hover_label), CHILD(controls);
  CHILD(level_dd), CHILD(image_spin), CHILD(overlay_check), CHILD(indep_check), CHILD(smooth_dd), CHILD(logy_dd);
  CHILD(levels_check), CHILD(probe_chooser);
  CHILD(timeline), CHILD(timeline_label), CHILD(live_check);
#undef CHILD
  gtk_widget_class_bind_template_callback(wc, on_pause_toggled);
  gtk_widget_class_bind_template_callback(wc, on_setting_changed);
  gtk_widget_class_bind_template_callback(wc, on_level);
  gtk_widget_class_bind_template_callback(wc, on_image);
  gtk_widget_class_bind_template_callback(wc, on_smooth);
  gtk_widget_class_bind_template_callback(wc, on_view_option);
  gtk_widget_class_bind_template_callback(wc, on_timeline);
  gtk_widget_class_bind_template_callback(wc, on_compare_metric);
  gtk_widget_class_bind_template_callback(wc, on_offer_follow);
}

static void kds_window_init(KdsWindow *w) {
  w->panels = g_ptr_array_new();
  w->view.smooth = (KdSmooth){KD_SMOOTH_EMA, 0.9, 50};
  w->view.logy = KD_SNAPFIG_LOGY_AUTO;
  w->snap_index = -1;
  w->shown_state = -1;
  w->started_us = g_get_monotonic_time();
  gtk_widget_init_template(GTK_WIDGET(w));
  /* The wheel over the sidebar's image box scrolls the sidebar (the
   * control panel guards its own sliders and boxes). */
  kds_wheel_guard(w->image_spin);
  add_methods(w);
  add_panels(w);
  kds_shortcuts_attach(GTK_APPLICATION_WINDOW(w));
  g_action_map_add_action_entries(G_ACTION_MAP(w), actions, G_N_ELEMENTS(actions), w);
  char mode[16];
  kds_layout_prefs_format(kds_layout_prefs(w->layout), mode, sizeof mode);
  g_simple_action_set_state(G_SIMPLE_ACTION(g_action_map_lookup_action(G_ACTION_MAP(w), "layout")), g_variant_new_string(mode));
  update_compare_actions(w);
  gtk_stack_set_visible_child_name(GTK_STACK(w->stack), "progress");
  w->tick_id = g_timeout_add(POLL_MS, on_poll, w);
}

KdsWindow *kds_window_new(GtkApplication *app) { return g_object_new(KDS_TYPE_WINDOW, "application", app, NULL); }

void kds_window_set_bridge(KdsWindow *w, KdsBridge *b) {
  if (w->bridge) g_signal_handlers_disconnect_by_data(w->bridge, w);
  kds_compare_set_current(w->compare, NULL, NULL); /* before the old run's log goes */
  g_set_object(&w->bridge, b);
  if (b) g_signal_connect(b, "changed", G_CALLBACK(on_bridge_changed), w);
  w->view.bridge = b;
  kds_probe_chooser_set_bridge(KDS_PROBE_CHOOSER(w->probe_chooser), b);
  w->view.watch_since = g_get_real_time() / 1e6;
  if (w->view.snap) kd_snapshot_free(w->view.snap), w->view.snap = NULL;
  w->snap_index = -1;
  w->view.generation++;
  redraw_maps(w);
  redraw_curves(w);
  if (!b) {
    controls_idle(w);
    gtk_window_set_title(GTK_WINDOW(w), "kdscope");
    gtk_stack_set_visible_child_name(GTK_STACK(w->stack), "empty");
    return;
  }
  kds_compare_set_current(w->compare, kds_bridge_log(b), kds_bridge_run_dir(b));
  char title[512];
  g_snprintf(title, sizeof title, "kdscope — %s", kds_bridge_run_dir(b));
  gtk_window_set_title(GTK_WINDOW(w), title);
  kds_undo_reset(&w->undo, b);
  kds_control_panel_forget_run(w->controls);
  /* Nothing is logged step by step while inspecting: no curves to wait for. */
  for (int k = 0; k < kd_snapfig_count(); k++)
    if (kd_snapfig_at(k)->needs & KD_SNAPFIG_NEEDS_LOG)
      kds_layout_set_available(w->layout, kd_snapfig_at(k)->name, !kds_bridge_is_inspect(b));
  rebuild_controls(w);
  update_status(w);
  w->shown_state = -1; /* the next poll shows the state the run is in by then */
  /* A pulsed progress bar animates on a tick callback for as long as it is
   * realized, hidden in the stack or not: a frame every vsync for the
   * whole session, drawn on the CPU the run needs. A fraction stops it. */
  gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(w->progress_bar), 1.0);
  gtk_stack_set_visible_child_name(GTK_STACK(w->stack), "main");
  w->last_poll_us = 0;
}

void kds_window_show_progress(KdsWindow *w, const char *what, double fraction) {
  gtk_label_set_text(GTK_LABEL(w->progress_label), what);
  if (fraction < 0) gtk_progress_bar_pulse(GTK_PROGRESS_BAR(w->progress_bar));
  else gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(w->progress_bar), fraction);
  gtk_stack_set_visible_child_name(GTK_STACK(w->stack), "progress");
}

void kds_window_show_error(KdsWindow *w, const char *message) {
  gtk_label_set_text(GTK_LABEL(w->error_label), message);
  gtk_stack_set_visible_child_name(GTK_STACK(w->stack), "error");
}

KdsBridge *kds_window_get_bridge(KdsWindow *w) { return w->bridge; }
KdsControlPanel *kds_window_get_controls(KdsWindow *w) { return w->controls; }
GtkWidget *kds_window_get_pause_button(KdsWindow *w) { return w->pause_btn; }
GtkWidget *kds_window_get_resume_button(KdsWindow *w) { return w->resume_btn; }
GtkWidget *kds_window_get_level_menu(KdsWindow *w) { return w->level_dd; }
int kds_window_panel_count(KdsWindow *w) { return (int)w->panels->len; }
KdsPanel *kds_window_get_panel(KdsWindow *w, int i) { return g_ptr_array_index(w->panels, i); }
