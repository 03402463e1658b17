#include "window.h"

#include <math.h>
#include <string.h>

#include "distill/distiller.h"
#include "panels.h"
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
  GtkWidget *stack, *progress_bar, *progress_label, *error_label;
  GtkWidget *pause_btn, *step_btn, *stop_btn, *methods_btn, *methods_box, *export_btn;
  GtkWidget *status_label, *losses_label, *hover_label;
  KdsControlPanel *controls;
  GtkWidget *level_dd, *image_spin, *overlay_check, *indep_check, *smooth_dd, *logy_check;
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
  guint tick_id;
};

G_DEFINE_FINAL_TYPE(KdsWindow, kds_window, GTK_TYPE_APPLICATION_WINDOW)

static void toast(KdsWindow *w, const char *msg) { gtk_label_set_text(GTK_LABEL(w->hover_label), msg); }
void kds_window_toast(KdsWindow *w, const char *message) { toast(w, message); }

/* ---- view changes ---- */

static void redraw_maps(KdsWindow *w) {
  w->view.generation++;
  for (guint i = 0; i < w->panels->len; i++) {
    KdsPanel *p = g_ptr_array_index(w->panels, i);
    if (strcmp(kds_panel_kind(p), "curves")) gtk_widget_queue_resize(GTK_WIDGET(p));
  }
}

static void redraw_curves(KdsWindow *w) {
  for (guint i = 0; i < w->panels->len; i++) {
    KdsPanel *p = g_ptr_array_index(w->panels, i);
    if (!strcmp(kds_panel_kind(p), "curves")) gtk_widget_queue_resize(GTK_WIDGET(p));
  }
}

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
  if (changed & KDS_CHANGED_SETTINGS) {
    const KdConfig *cfg = kds_bridge_config(w->bridge);
    if (strcmp(w->methods, kd_config_str(cfg, "distill.methods"))) rebuild_controls(w);
    else kds_control_panel_sync(w->controls, cfg);
  }
  if (changed & KDS_CHANGED_METRICS) w->curves_dirty = TRUE;
  if (w->ref_log && now - w->last_curves_us >= CURVES_MS * 1000 && kd_runlog_refresh(w->ref_log, NULL) > 0)
    w->curves_dirty = TRUE;
  if (w->curves_dirty && now - w->last_curves_us >= CURVES_MS * 1000) {
    redraw_curves(w);
    w->curves_dirty = FALSE;
    w->last_curves_us = now;
  }
  if (changed & KDS_CHANGED_SNAPSHOTS) {
    int n = kds_bridge_snapshot_count(w->bridge);
    w->syncing = TRUE;
    gtk_range_set_range(GTK_RANGE(w->timeline), 0, n > 1 ? n - 1 : 1);
    w->syncing = FALSE;
    if (n > 0 && (gtk_check_button_get_active(GTK_CHECK_BUTTON(w->live_check)) || !w->view.snap)) {
      w->syncing = TRUE;
      gtk_range_set_value(GTK_RANGE(w->timeline), n - 1);
      w->syncing = FALSE;
      show_snapshot(w, n - 1);
    }
  }
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

/* ---- layout ---- */

static GtkWidget *section(const char *title) {
  GtkWidget *l = gtk_label_new(title);
  gtk_label_set_xalign(GTK_LABEL(l), 0);
  gtk_widget_add_css_class(l, "kds-section");
  return l;
}

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
    if (kds_panel_draws_level_maps(q)) gtk_widget_queue_draw(GTK_WIDGET(q));
  }
}

static void add_panel(KdsWindow *w, GtkWidget *grid, KdsPanel *p, int col, int row, int span) {
  kds_panel_set_view(p, &w->view);
  g_signal_connect(p, "hover", G_CALLBACK(on_panel_hover), w);
  gtk_grid_attach(GTK_GRID(grid), GTK_WIDGET(p), col, row, span, 1);
  g_ptr_array_add(w->panels, p);
}

static GtkWidget *build_sidebar(KdsWindow *w) {
  GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
  gtk_widget_add_css_class(box, "kds-sidebar");
  w->status_label = gtk_label_new("");
  gtk_label_set_xalign(GTK_LABEL(w->status_label), 0);
  gtk_widget_add_css_class(w->status_label, "kds-status");
  w->losses_label = gtk_label_new("");
  gtk_label_set_xalign(GTK_LABEL(w->losses_label), 0);
  gtk_label_set_wrap(GTK_LABEL(w->losses_label), TRUE);
  gtk_widget_add_css_class(w->losses_label, "kds-status");
  gtk_widget_add_css_class(w->losses_label, "monospace");
  gtk_box_append(GTK_BOX(box), section("Run"));
  gtk_box_append(GTK_BOX(box), w->status_label);
  gtk_box_append(GTK_BOX(box), w->losses_label);
  gtk_box_append(GTK_BOX(box), section("Settings (live)"));
  w->controls = kds_control_panel_new();
  g_signal_connect(w->controls, "setting-changed", G_CALLBACK(on_setting_changed), w);
  gtk_box_append(GTK_BOX(box), GTK_WIDGET(w->controls));
  gtk_box_append(GTK_BOX(box), section("View"));
  GtkWidget *g = gtk_grid_new();
  gtk_grid_set_row_spacing(GTK_GRID(g), 2);
  gtk_grid_set_column_spacing(GTK_GRID(g), 6);
  static const char *levels[] = {"P3", "P4", "P5", "P6", "P7", NULL};
  w->level_dd = gtk_drop_down_new_from_strings(levels);
  gtk_widget_set_tooltip_text(w->level_dd, "FPN level (Left/Right)");
  g_signal_connect(w->level_dd, "notify::selected", G_CALLBACK(on_level), w);
  w->image_spin = gtk_spin_button_new_with_range(0, 3, 1);
  gtk_widget_set_tooltip_text(w->image_spin, "Probe image (Up/Down)");
  g_signal_connect(w->image_spin, "value-changed", G_CALLBACK(on_image), w);
  kds_wheel_guard(w->image_spin);
  gtk_grid_attach(GTK_GRID(g), gtk_label_new("Level"), 0, 0, 1, 1);
  gtk_grid_attach(GTK_GRID(g), w->level_dd, 1, 0, 1, 1);
  gtk_grid_attach(GTK_GRID(g), gtk_label_new("Image"), 0, 1, 1, 1);
  gtk_grid_attach(GTK_GRID(g), w->image_spin, 1, 1, 1, 1);
  static const char *smooth[] = {"no smoothing", "EMA 0.9 (debiased)", "moving average 50", NULL};
  w->smooth_dd = gtk_drop_down_new_from_strings(smooth);
  gtk_drop_down_set_selected(GTK_DROP_DOWN(w->smooth_dd), 1);
  g_signal_connect(w->smooth_dd, "notify::selected", G_CALLBACK(on_smooth), w);
  gtk_grid_attach(GTK_GRID(g), gtk_label_new("Curves"), 0, 2, 1, 1);
  gtk_grid_attach(GTK_GRID(g), w->smooth_dd, 1, 2, 1, 1);
  gtk_box_append(GTK_BOX(box), g);
  w->overlay_check = gtk_check_button_new_with_label("Maps over the image");
  w->indep_check = gtk_check_button_new_with_label("Scale teacher and student separately");
  w->logy_check = gtk_check_button_new_with_label("Log loss axis");
  gtk_check_button_set_active(GTK_CHECK_BUTTON(w->logy_check), TRUE);
  GtkWidget *checks[3] = {w->overlay_check, w->indep_check, w->logy_check};
  for (int i = 0; i < 3; i++) {
    g_signal_connect(checks[i], "toggled", G_CALLBACK(on_view_option), w);
    gtk_box_append(GTK_BOX(box), checks[i]);
  }
  GtkWidget *sc = gtk_scrolled_window_new();
  gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(sc), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(sc), box);
  gtk_widget_set_size_request(sc, 300, -1);
  return sc;
}

static GtkWidget *build_main(KdsWindow *w) {
  GtkWidget *grid = gtk_grid_new();
  gtk_grid_set_row_spacing(GTK_GRID(grid), 8);
  gtk_grid_set_column_spacing(GTK_GRID(grid), 8);
  gtk_grid_set_column_homogeneous(GTK_GRID(grid), TRUE);
  gtk_widget_set_margin_start(grid, 6), gtk_widget_set_margin_end(grid, 6), gtk_widget_set_margin_top(grid, 6);
  /* Three equal columns: the image takes one, the curves two; maps rows
   * span the width so teacher | student | gap sit side by side. */
  add_panel(w, grid, g_object_new(KDS_TYPE_IMAGE_PANEL, NULL), 0, 0, 1);
  add_panel(w, grid, g_object_new(KDS_TYPE_CURVES_PANEL, NULL), 1, 0, 2);
  add_panel(w, grid, g_object_new(KDS_TYPE_GAP_PANEL, NULL), 0, 1, 3);
  add_panel(w, grid, g_object_new(KDS_TYPE_GRADIENT_PANEL, NULL), 0, 2, 3);
  add_panel(w, grid, g_object_new(KDS_TYPE_MASK_PANEL, NULL), 0, 3, 3);
  add_panel(w, grid, g_object_new(KDS_TYPE_ATTENTION_PANEL, NULL), 0, 4, 2);
  add_panel(w, grid, g_object_new(KDS_TYPE_PROJECTION_PANEL, NULL), 2, 4, 1);
  GtkWidget *sc = gtk_scrolled_window_new();
  gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(sc), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(sc), grid);
  gtk_widget_set_vexpand(sc, TRUE);
  GtkWidget *tl = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  gtk_widget_add_css_class(tl, "kds-timeline");
  w->timeline = gtk_scale_new_with_range(GTK_ORIENTATION_HORIZONTAL, 0, 1, 1);
  gtk_scale_set_draw_value(GTK_SCALE(w->timeline), FALSE);
  gtk_widget_set_hexpand(w->timeline, TRUE);
  gtk_widget_set_tooltip_text(w->timeline, "Scrub the run's snapshots");
  g_signal_connect(w->timeline, "value-changed", G_CALLBACK(on_timeline), w);
  w->timeline_label = gtk_label_new("no snapshot yet");
  w->live_check = gtk_check_button_new_with_label("Live");
  gtk_check_button_set_active(GTK_CHECK_BUTTON(w->live_check), TRUE);
  gtk_widget_set_tooltip_text(w->live_check, "Follow the newest snapshot");
  gtk_box_append(GTK_BOX(tl), w->timeline);
  gtk_box_append(GTK_BOX(tl), w->timeline_label);
  gtk_box_append(GTK_BOX(tl), w->live_check);
  /* One line under the panels: what the pointer is over (and short
   * notices). It never wraps, so moving the pointer never moves the panels. */
  w->hover_label = gtk_label_new("");
  gtk_label_set_xalign(GTK_LABEL(w->hover_label), 0);
  gtk_label_set_ellipsize(GTK_LABEL(w->hover_label), PANGO_ELLIPSIZE_END);
  gtk_label_set_single_line_mode(GTK_LABEL(w->hover_label), TRUE);
  gtk_widget_add_css_class(w->hover_label, "kds-status");
  gtk_widget_add_css_class(w->hover_label, "kds-readout");
  GtkWidget *v = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
  gtk_box_append(GTK_BOX(v), sc);
  gtk_box_append(GTK_BOX(v), w->hover_label);
  gtk_box_append(GTK_BOX(v), tl);
  GtkWidget *paned = gtk_paned_new(GTK_ORIENTATION_HORIZONTAL);
  gtk_paned_set_start_child(GTK_PANED(paned), build_sidebar(w));
  gtk_paned_set_end_child(GTK_PANED(paned), v);
  gtk_paned_set_resize_start_child(GTK_PANED(paned), FALSE);
  gtk_paned_set_shrink_start_child(GTK_PANED(paned), FALSE);
  return paned;
}

static GtkWidget *build_progress_page(KdsWindow *w) {
  GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 12);
  gtk_widget_set_valign(box, GTK_ALIGN_CENTER);
  gtk_widget_set_halign(box, GTK_ALIGN_CENTER);
  w->progress_label = gtk_label_new("Preparing…");
  w->progress_bar = gtk_progress_bar_new();
  gtk_widget_set_size_request(w->progress_bar, 420, -1);
  gtk_box_append(GTK_BOX(box), w->progress_label);
  gtk_box_append(GTK_BOX(box), w->progress_bar);
  return box;
}

static void build_header(KdsWindow *w) {
  GtkWidget *hb = gtk_header_bar_new();
  w->pause_btn = gtk_toggle_button_new();
  gtk_button_set_icon_name(GTK_BUTTON(w->pause_btn), "media-playback-pause-symbolic");
  gtk_widget_set_tooltip_text(w->pause_btn, "Pause / resume (Space)");
  g_signal_connect(w->pause_btn, "toggled", G_CALLBACK(on_pause_toggled), w);
  w->step_btn = gtk_button_new_from_icon_name("media-skip-forward-symbolic");
  gtk_widget_set_tooltip_text(w->step_btn, "One step (while paused)");
  gtk_actionable_set_action_name(GTK_ACTIONABLE(w->step_btn), "win.step");
  w->stop_btn = gtk_button_new_from_icon_name("media-playback-stop-symbolic");
  gtk_widget_set_tooltip_text(w->stop_btn, "Stop: finish the step, write a checkpoint");
  gtk_actionable_set_action_name(GTK_ACTIONABLE(w->stop_btn), "win.stop");
  gtk_header_bar_pack_start(GTK_HEADER_BAR(hb), w->pause_btn);
  gtk_header_bar_pack_start(GTK_HEADER_BAR(hb), w->step_btn);
  gtk_header_bar_pack_start(GTK_HEADER_BAR(hb), w->stop_btn);
  /* methods */
  w->methods_box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 2);
  for (int m = 0; m < kd_method_count(); m++) {
    GtkWidget *cb = gtk_check_button_new_with_label(kd_method_at(m)->label);
    gtk_widget_set_tooltip_text(cb, kd_method_at(m)->help);
    g_signal_connect(cb, "toggled", G_CALLBACK(on_method_toggled), w);
    gtk_box_append(GTK_BOX(w->methods_box), cb);
  }
  GtkWidget *pop = gtk_popover_new();
  gtk_popover_set_child(GTK_POPOVER(pop), w->methods_box);
  w->methods_btn = gtk_menu_button_new();
  gtk_menu_button_set_label(GTK_MENU_BUTTON(w->methods_btn), "Methods");
  gtk_menu_button_set_popover(GTK_MENU_BUTTON(w->methods_btn), pop);
  gtk_widget_set_tooltip_text(w->methods_btn, "Distillation methods (switch or add mid-run)");
  gtk_header_bar_pack_start(GTK_HEADER_BAR(hb), w->methods_btn);
  GMenu *menu = g_menu_new();
  g_menu_append(menu, "Open run or config…", "win.open");
  g_menu_append(menu, "Export figure…", "win.export");
  g_menu_append(menu, "Compare with a run…", "win.compare");
  g_menu_append(menu, "Stop comparing", "win.compare-clear");
  g_menu_append(menu, "Dark style", "win.dark");
  g_menu_append(menu, "About kdscope", "win.about");
  g_menu_append(menu, "Quit", "app.quit");
  GtkWidget *mb = gtk_menu_button_new();
  gtk_menu_button_set_icon_name(GTK_MENU_BUTTON(mb), "open-menu-symbolic");
  gtk_menu_button_set_menu_model(GTK_MENU_BUTTON(mb), G_MENU_MODEL(menu));
  g_object_unref(menu);
  w->export_btn = gtk_button_new_from_icon_name("document-save-as-symbolic");
  gtk_widget_set_tooltip_text(w->export_btn, "Export a figure (Ctrl+E)");
  gtk_actionable_set_action_name(GTK_ACTIONABLE(w->export_btn), "win.export");
  GtkWidget *open = gtk_button_new_from_icon_name("document-open-symbolic");
  gtk_widget_set_tooltip_text(open, "Open a run directory or a config (Ctrl+O)");
  gtk_actionable_set_action_name(GTK_ACTIONABLE(open), "win.open");
  gtk_header_bar_pack_end(GTK_HEADER_BAR(hb), mb);
  gtk_header_bar_pack_end(GTK_HEADER_BAR(hb), w->export_btn);
  gtk_header_bar_pack_end(GTK_HEADER_BAR(hb), open);
  gtk_window_set_titlebar(GTK_WINDOW(w), hb);
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
               "mean %.2f ms max %.2f ms; capture to paint mean %.1f ms max %.1f ms (%u paints); "
               "longest main-loop stall %.1f ms; run at step %d, %.2f steps/s\n",
               w->frames, w->sum_work_ms / w->frames, w->max_work_ms, w->frames_drawn, pn, pmean,
               pmax, lmean, lmax, ln, w->max_gap_ms, st.step, st.rate);
  }
  g_clear_object(&w->bridge);
  kd_runlog_free(w->ref_log), w->ref_log = NULL, w->view.ref = NULL;
  g_clear_pointer(&w->ref_dir, g_free);
  g_clear_pointer(&w->ref_label, g_free);
  if (w->view.snap) kd_snapshot_free(w->view.snap), w->view.snap = NULL;
  g_clear_pointer(&w->panels, g_ptr_array_unref);
  G_OBJECT_CLASS(kds_window_parent_class)->dispose(o);
}

static void kds_window_class_init(KdsWindowClass *k) { G_OBJECT_CLASS(k)->dispose = kds_window_dispose; }

static void kds_window_init(KdsWindow *w) {
  w->panels = g_ptr_array_new();
  w->view.smooth = (KdSmooth){KD_SMOOTH_EMA, 0.9, 50};
  w->view.logy = 1;
  w->snap_index = -1;
  w->shown_state = -1;
  gtk_window_set_title(GTK_WINDOW(w), "kdscope");
  gtk_window_set_default_size(GTK_WINDOW(w), 1600, 1000);
  gtk_window_set_icon_name(GTK_WINDOW(w), "io.github.kdscope.Kdscope");
  g_action_map_add_action_entries(G_ACTION_MAP(w), actions, G_N_ELEMENTS(actions), w);
  g_simple_action_set_enabled(G_SIMPLE_ACTION(g_action_map_lookup_action(G_ACTION_MAP(w), "compare-clear")), FALSE);
  build_header(w);
  w->stack = gtk_stack_new();
  gtk_stack_add_named(GTK_STACK(w->stack), build_progress_page(w), "progress");
  gtk_stack_add_named(GTK_STACK(w->stack), build_main(w), "main");
  w->error_label = gtk_label_new("");
  gtk_label_set_wrap(GTK_LABEL(w->error_label), TRUE);
  gtk_label_set_selectable(GTK_LABEL(w->error_label), TRUE);
  gtk_stack_add_named(GTK_STACK(w->stack), w->error_label, "error");
  gtk_window_set_child(GTK_WINDOW(w), w->stack);
  gtk_stack_set_visible_child_name(GTK_STACK(w->stack), "progress");
  w->tick_id = g_timeout_add(POLL_MS, on_poll, w);
}

KdsWindow *kds_window_new(GtkApplication *app) { return g_object_new(KDS_TYPE_WINDOW, "application", app, NULL); }

void kds_window_set_bridge(KdsWindow *w, KdsBridge *b) {
  g_set_object(&w->bridge, b);
  w->view.bridge = b;
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
