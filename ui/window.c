/* The main window's behaviour: the run's state into the header, sidebar
 * and panels, the user's choices into the view and the run. Its widget
 * tree is the template window.ui; this file builds no static layout. */
#include "window.h"

#include <math.h>
#include <string.h>

#include "distill/distiller.h"
#include "kdui-resources.h"
#include "probe_chooser.h"
#include "train/session.h"
#include "wheel_guard.h"

#define POLL_MS 100
#define CURVES_MS 500 /* curves redraw at most twice a second: a step per poll would redraw them 10x/s */
#define STATUS_MS 500 /* so do the step and loss readouts; a change of run state shows at once */

struct _KdsWindow {
  GtkApplicationWindow parent;
  KdsBridge *bridge;
  KdsView view;
  KdRunLog *ref_log; /* the run compared with (view.ref) */
  char *ref_dir, *ref_label;
  GtkWidget *stack, *progress_bar, *progress_label, *error_label, *panel_grid;
  GtkWidget *pause_btn, *step_btn, *stop_btn, *methods_btn, *methods_box, *export_btn;
  GtkWidget *status_label, *losses_label, *hover_label;
  KdsControlPanel *controls;
  GtkWidget *level_dd, *image_spin, *overlay_check, *indep_check, *smooth_dd, *logy_check;
  GtkWidget *levels_check, *probe_chooser;
  GPtrArray *panels; /* KdsPanel* (not owned) */
  GtkWidget *timeline, *timeline_label, *live_check;
  gboolean syncing;
  char methods[256];
  int snap_index;
  gint64 last_poll_us, last_tick_us, last_curves_us;
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
static void redraw_curves(KdsWindow *w) { redraw(w, KD_SNAPFIG_NEEDS_LOG); }

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
  if (w->view.level >= s->nlev) w->view.level = 0;
  char buf[160];
  g_snprintf(buf, sizeof buf, "snapshot %d of %d — step %d", i + 1, kds_bridge_snapshot_count(w->bridge), s->step);
  gtk_label_set_text(GTK_LABEL(w->timeline_label), buf);
  gtk_spin_button_set_range(GTK_SPIN_BUTTON(w->image_spin), 0, s->nimages - 1);
  redraw_maps(w);
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
  for (size_t i = 0; i < G_N_ELEMENTS(train_keys); i++) keys[n++] = train_keys[i];
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
  char msg[256];
  g_snprintf(msg, sizeof msg, "%s = %s (applies at the next step)", key, value);
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
  }
  g_string_free(list, TRUE);
}

/* ---- status ---- */

static void update_status(KdsWindow *w) {
  KdRunStatus st;
  kds_bridge_status(w->bridge, &st);
  char buf[512];
  g_snprintf(buf, sizeof buf, "%s  step %d / %d  %.1f steps/s%s%s", kd_run_state_name(st.state), st.step, st.total, st.rate,
             st.eval_step >= 0 ? "" : "", "");
  if (st.eval_step >= 0) {
    size_t n = strlen(buf);
    g_snprintf(buf + n, sizeof buf - n, "\nAP %.3f at step %d", st.eval[0], st.eval_step);
  }
  if (st.phase && strcmp(st.phase, "idle") && strcmp(st.phase, "step")) {
    size_t n = strlen(buf);
    g_snprintf(buf + n, sizeof buf - n, "\n%s %ld/%ld", st.phase, st.phase_done, st.phase_total);
  }
  gtk_label_set_text(GTK_LABEL(w->status_label), buf);
  GString *ls = g_string_new("");
  for (int i = 0; i < st.last.nparts; i++) g_string_append_printf(ls, "%s%-22s %.4g", i ? "\n" : "", st.last.parts[i].name, st.last.parts[i].value);
  if (st.message[0]) g_string_append_printf(ls, "\n%s", st.message);
  gtk_label_set_text(GTK_LABEL(w->losses_label), ls->str);
  g_string_free(ls, TRUE);
  w->syncing = TRUE;
  gboolean running = st.state == KD_RUN_RUNNING;
  gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(w->pause_btn), !running);
  gtk_button_set_icon_name(GTK_BUTTON(w->pause_btn), running ? "media-playback-pause-symbolic" : "media-playback-start-symbolic");
  gboolean alive = st.state == KD_RUN_RUNNING || st.state == KD_RUN_PAUSED || st.state == KD_RUN_READY;
  gtk_widget_set_sensitive(w->pause_btn, alive);
  gtk_widget_set_sensitive(w->stop_btn, alive);
  gtk_widget_set_sensitive(w->step_btn, alive && kds_bridge_is_local(w->bridge) && st.state == KD_RUN_PAUSED);
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
  GError *e = NULL;
  if (w->bridge) report(w, kds_bridge_stop(w->bridge, &e), e);
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
  w->view.level = (int)gtk_drop_down_get_selected(GTK_DROP_DOWN(o));
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
  w->view.logy = gtk_check_button_get_active(GTK_CHECK_BUTTON(w->logy_check));
  guint sm = gtk_drop_down_get_selected(GTK_DROP_DOWN(w->smooth_dd));
  w->view.smooth = (KdSmooth){sm == 1 ? KD_SMOOTH_EMA : sm == 2 ? KD_SMOOTH_MEAN : KD_SMOOTH_NONE, 0.9, 50};
  redraw_maps(w);
  redraw_curves(w);
}

static void on_smooth(GObject *o, GParamSpec *ps, KdsWindow *w) {
  (void)o, (void)ps;
  on_view_option(NULL, w);
}

static void on_timeline(GtkRange *r, KdsWindow *w) {
  if (w->syncing || !w->bridge) return;
  int i = (int)lround(gtk_range_get_value(r));
  if (i != w->snap_index && i < kds_bridge_snapshot_count(w->bridge)) {
    gtk_check_button_set_active(GTK_CHECK_BUTTON(w->live_check), i == kds_bridge_snapshot_count(w->bridge) - 1);
    show_snapshot(w, i);
  }
}

static void act_about(GSimpleAction *a, GVariant *p, gpointer user) {
  (void)a, (void)p;
  static const char *authors[] = {"The kdscope developers", NULL};
  gtk_show_about_dialog(GTK_WINDOW(user), "program-name", "kdscope", "version", KD_VERSION, "logo-icon-name", "io.github.kdscope.Kdscope",
                        "comments", "A workbench for knowledge distillation of object detectors: see where the student's features differ "
                                    "from the teacher's, tune the distillation live, export figures.",
                        "license-type", GTK_LICENSE_MIT_X11, "authors", authors, NULL);
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
  (void)p;
  KdsWindow *w = user;
  gtk_label_set_text(GTK_LABEL(w->hover_label), text);
  KdFigMark m = {on_map, on_map ? u : 0, on_map ? v : 0};
  if (!m.on && !w->view.mark.on) return;
  w->view.mark = m;
  for (guint i = 0; i < w->panels->len; i++) {
    KdsPanel *q = g_ptr_array_index(w->panels, i);
    const KdSnapFigKind *k = kds_panel_figure(q);
    if (k && k->level_maps) gtk_widget_queue_draw(GTK_WIDGET(q));
  }
}

/* One panel for every figure kind with a cell in the window. */
static void add_panels(KdsWindow *w) {
  for (int i = 0; i < kd_snapfig_count(); i++) {
    const KdSnapFigKind *k = kd_snapfig_at(i);
    if (k->panel.span <= 0) continue;
    KdsPanel *p = kds_panel_new(k->name);
    kds_panel_set_view(p, &w->view);
    g_signal_connect(p, "hover", G_CALLBACK(on_panel_hover), w);
    gtk_grid_attach(GTK_GRID(w->panel_grid), GTK_WIDGET(p), k->panel.col, k->panel.row, k->panel.span, 1);
    g_ptr_array_add(w->panels, p);
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
void kds_window_export_dialog(KdsWindow *w);

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
}

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
  GAction *clear = g_action_map_lookup_action(G_ACTION_MAP(w), "compare-clear");
  if (clear) g_simple_action_set_enabled(G_SIMPLE_ACTION(clear), log != NULL);
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
  kd_runlog_free(w->ref_log), w->ref_log = NULL, w->view.ref = NULL;
  g_clear_pointer(&w->ref_dir, g_free);
  g_clear_pointer(&w->ref_label, g_free);
  if (w->view.snap) kd_snapshot_free(w->view.snap), w->view.snap = NULL;
  g_clear_pointer(&w->panels, g_ptr_array_unref);
  G_OBJECT_CLASS(kds_window_parent_class)->dispose(o);
}

static void kds_window_class_init(KdsWindowClass *k) {
  GtkWidgetClass *wc = GTK_WIDGET_CLASS(k);
  G_OBJECT_CLASS(k)->dispose = kds_window_dispose;
  g_type_ensure(KDS_TYPE_CONTROL_PANEL);
  g_type_ensure(KDS_TYPE_PROBE_CHOOSER);
  kdui_register_resource();
  gtk_widget_class_set_template_from_resource(wc, "/io/github/kdscope/Kdscope/window.ui");
#define CHILD(name) gtk_widget_class_bind_template_child(wc, KdsWindow, name)
  CHILD(stack), CHILD(progress_bar), CHILD(progress_label), CHILD(error_label), CHILD(panel_grid);
  CHILD(pause_btn), CHILD(step_btn), CHILD(stop_btn), CHILD(methods_btn), CHILD(methods_box), CHILD(export_btn);
  CHILD(status_label), CHILD(losses_label), CHILD(hover_label), CHILD(controls);
  CHILD(level_dd), CHILD(image_spin), CHILD(overlay_check), CHILD(indep_check), CHILD(smooth_dd), CHILD(logy_check);
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
}

static void kds_window_init(KdsWindow *w) {
  w->panels = g_ptr_array_new();
  w->view.smooth = (KdSmooth){KD_SMOOTH_EMA, 0.9, 50};
  w->view.logy = 1;
  w->snap_index = -1;
  w->shown_state = -1;
  gtk_widget_init_template(GTK_WIDGET(w));
  /* The wheel over the sidebar's image box scrolls the sidebar (the
   * control panel guards its own sliders and boxes). */
  kds_wheel_guard(w->image_spin);
  add_methods(w);
  add_panels(w);
  g_action_map_add_action_entries(G_ACTION_MAP(w), actions, G_N_ELEMENTS(actions), w);
  g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(G_ACTION_MAP(w), "compare-clear")), FALSE);
  gtk_stack_set_visible_child_name(GTK_STACK(w->stack), "progress");
  w->tick_id = g_timeout_add(POLL_MS, on_poll, w);
}

KdsWindow *kds_window_new(GtkApplication *app) { return g_object_new(KDS_TYPE_WINDOW, "application", app, NULL); }

void kds_window_set_bridge(KdsWindow *w, KdsBridge *b) {
  if (w->bridge) g_signal_handlers_disconnect_by_data(w->bridge, w);
  g_set_object(&w->bridge, b);
  if (b) g_signal_connect(b, "changed", G_CALLBACK(on_bridge_changed), w);
  w->view.bridge = b;
  kds_probe_chooser_set_bridge(KDS_PROBE_CHOOSER(w->probe_chooser), b);
  w->view.watch_since = g_get_real_time() / 1e6;
  if (w->view.snap) kd_snapshot_free(w->view.snap), w->view.snap = NULL;
  w->snap_index = -1;
  char title[512];
  g_snprintf(title, sizeof title, "kdscope — %s", kds_bridge_run_dir(b));
  gtk_window_set_title(GTK_WINDOW(w), title);
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
int kds_window_panel_count(KdsWindow *w) { return (int)w->panels->len; }
KdsPanel *kds_window_get_panel(KdsWindow *w, int i) { return g_ptr_array_index(w->panels, i); }
