/* The window as a person uses it, in-process under Xvfb: a tiny
 * distillation run starts, the panels come alive (snapshots handed over in
 * memory, capture-to-paint latency printed), a slider move reaches the run
 * (events.jsonl names it with its step and the logged loss part follows),
 * a second window follows the run from its files and a change it sends
 * shows in both, the pause button pauses it, every panel renders offscreen
 * to a non-blank image and the frame loop never stalls. Skips (77) without
 * a display. */
#include <gdk/x11/gdkx.h>
#include <gtk/gtk.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../train/run_fixture.h"
#include "check.h"
#include "ui_wait.h"
#include "model/detector.h"
#include "model/safetensors.h"
#include "window.h"

static gboolean have_snapshot(gpointer w) {
  KdsBridge *b = kds_window_get_bridge(w);
  return b && kds_bridge_snapshot_count(b) > 0;
}

static gboolean is_paused(gpointer w) {
  KdRunStatus st;
  kds_bridge_status(kds_window_get_bridge(w), &st);
  return st.state == KD_RUN_PAUSED;
}

static const char *g_run;
static int set_step = -1;
static gboolean set_logged(gpointer unused) {
  (void)unused;
  int n;
  cJSON **ev = fixture_jsonl(g_run, "events.jsonl", &n);
  for (int i = 0; i < n; i++)
    if (fixture_is_event(ev[i], "set") && !strcmp(fixture_str(ev[i], "key"), "fitnet.weight")) set_step = (int)fixture_num(ev[i], "step");
  fixture_jsonl_free(ev, n);
  return set_step >= 0;
}

static double part_at(const char *run, int step, const char *part) {
  int n;
  double v = NAN;
  cJSON **m = fixture_jsonl(run, "metrics.jsonl", &n);
  for (int i = 0; i < n; i++)
    if (m[i] && (int)fixture_num(m[i], "step") == step) {
      const cJSON *parts = cJSON_GetObjectItemCaseSensitive(m[i], "parts");
      if (parts) v = fixture_num(parts, part);
    }
  fixture_jsonl_free(m, n);
  return v;
}

static void collect_controls(GtkWidget *w, GPtrArray *out) {
  if (GTK_IS_RANGE(w) || GTK_IS_SPIN_BUTTON(w)) {
    g_ptr_array_add(out, w);
    return;
  }
  for (GtkWidget *c = gtk_widget_get_first_child(w); c; c = gtk_widget_get_next_sibling(c)) collect_controls(c, out);
}

static double control_value(GtkWidget *c) {
  return GTK_IS_SPIN_BUTTON(c) ? gtk_spin_button_get_value(GTK_SPIN_BUTTON(c)) : gtk_range_get_value(GTK_RANGE(c));
}

/* Real wheel turns (XTest through xdotool) with the pointer over c. */
static void wheel_over(KdsWindow *win, GtkWidget *c, int notches, int button) {
  graphene_point_t p;
  double sx, sy;
  if (!gtk_widget_compute_point(c, GTK_WIDGET(win), &GRAPHENE_POINT_INIT(gtk_widget_get_width(c) / 2.0f, gtk_widget_get_height(c) / 2.0f), &p))
    return;
  gtk_native_get_surface_transform(GTK_NATIVE(win), &sx, &sy);
  unsigned long xid = gdk_x11_surface_get_xid(gtk_native_get_surface(GTK_NATIVE(win)));
  char cmd[256];
  snprintf(cmd, sizeof cmd, "xdotool mousemove --window %lu %d %d click --repeat %d --delay 15 %d", xid, (int)(p.x + sx),
           (int)(p.y + sy), notches, button);
  CHECK_MSG(system(cmd) == 0, "%s", cmd);
  pump(120);
}

/* Scrolls the sidebar so that c sits a third of the way down; 0 when c
 * is not in it. */
static int scroll_into_view(GtkWidget *sw, GtkWidget *c) {
  graphene_point_t p;
  if (!gtk_widget_compute_point(c, gtk_scrolled_window_get_child(GTK_SCROLLED_WINDOW(sw)), &GRAPHENE_POINT_INIT(0, 0), &p)) return 0;
  GtkAdjustment *adj = gtk_scrolled_window_get_vadjustment(GTK_SCROLLED_WINDOW(sw));
  gtk_adjustment_set_value(adj, p.y - gtk_adjustment_get_page_size(adj) / 3);
  pump(80);
  return 1;
}

/* The wheel over every value control of the sidebar scrolls the sidebar
 * and never changes a value nor writes a set event (unless the control has
 * keyboard focus). */
static void check_wheel(KdsWindow *win, const char *run) {
  GtkWidget *controls = GTK_WIDGET(kds_window_get_controls(win));
  GtkWidget *sw = gtk_widget_get_ancestor(controls, GTK_TYPE_SCROLLED_WINDOW);
  CHECK(sw != NULL);
  if (!sw || system("command -v xdotool >/dev/null") != 0) {
    CHECK_MSG(0, "xdotool is missing (the launcher installs it)");
    return;
  }
  GtkAdjustment *adj = gtk_scrolled_window_get_vadjustment(GTK_SCROLLED_WINDOW(sw));
  GPtrArray *cs = g_ptr_array_new();
  collect_controls(gtk_scrolled_window_get_child(GTK_SCROLLED_WINDOW(sw)), cs);
  CHECK_MSG(cs->len >= 6, "only %u value controls in the sidebar", cs->len);
  gtk_widget_grab_focus(kds_window_get_pause_button(win)); /* nothing in the sidebar has focus */
  pump(100);
  int sets0 = fixture_count_events(run, "set"), scrolled = 0;
  for (guint i = 0; i < cs->len; i++) {
    GtkWidget *c = g_ptr_array_index(cs, i);
    /* Bring the control into view, then roll down and back up over it. */
    if (!scroll_into_view(sw, c)) continue;
    double v0 = control_value(c), a0 = gtk_adjustment_get_value(adj);
    wheel_over(win, c, 2, 5);
    scrolled += gtk_adjustment_get_value(adj) != a0;
    wheel_over(win, c, 2, 4);
    CHECK_MSG(control_value(c) == v0, "the wheel changed %s from %g to %g", gtk_widget_get_name(c), v0, control_value(c));
  }
  pump(400); /* past the control panel's debounce */
  CHECK_MSG(fixture_count_events(run, "set") == sets0, "the wheel wrote %d set events", fixture_count_events(run, "set") - sets0);
  double room = gtk_adjustment_get_upper(adj) - gtk_adjustment_get_page_size(adj);
  CHECK_MSG(room < 1 || scrolled > 0, "the wheel never scrolled the sidebar (%.0f px to scroll)", room);
  printf("wheel: %u controls, sidebar (%.0f px to scroll) scrolled under %d of them, %d set events\n", cs->len, room, scrolled,
         fixture_count_events(run, "set") - sets0);
  g_ptr_array_free(cs, TRUE);
}

/* With keyboard focus the wheel steps the value, as the user asked. */
static void check_wheel_focused(KdsWindow *win) {
  GtkWidget *c = GTK_WIDGET(kds_control_panel_entry(kds_window_get_controls(win), "fitnet.weight"));
  if (c) {
    /* In view first, as a person would have it (check_wheel leaves the
     * sidebar scrolled wherever its last control was). */
    GtkWidget *sw = gtk_widget_get_ancestor(c, GTK_TYPE_SCROLLED_WINDOW);
    if (sw) scroll_into_view(sw, c);
    gtk_widget_grab_focus(c);
    pump(100);
    double v0 = control_value(c);
    wheel_over(win, c, 1, 4);
    CHECK_MSG(control_value(c) != v0, "a focused entry ignores the wheel");
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(c), v0);
    gtk_widget_grab_focus(kds_window_get_pause_button(win));
    pump(100);
  }
}

typedef struct {
  KdsWindow *win;
  const char *key;
  double value;
} ShowsValue;

static gboolean shows_value(gpointer user) {
  const ShowsValue *sv = user;
  GtkSpinButton *e = kds_control_panel_entry(kds_window_get_controls(sv->win), sv->key);
  return e && fabs(gtk_spin_button_get_value(e) - sv->value) < 1e-9;
}

static gboolean follow_shows_snapshot(gpointer fw) {
  KdFigPanel fp;
  return kds_bridge_snapshot_count(kds_window_get_bridge(fw)) > 0 && kds_panel_build(kds_window_get_panel(fw, 0), &fp);
}

/* A second window following the run's directory (as `kdscope window
 * --follow` does, from the files): its panels show the snapshots; a change
 * it sends goes through control.jsonl; the run applies it; the live
 * window's control shows it from the run's applied change (in memory) and
 * the following window's from events.jsonl. */
static void check_follow(KdsWindow *w, const char *run) {
  GError *e = NULL;
  KdsBridge *fb = kds_bridge_new_follow(run, &e);
  CHECK_MSG(fb != NULL, "follow: %s", e ? e->message : "?");
  if (!fb) return;
  KdsWindow *fw = kds_window_new(NULL);
  gtk_window_set_default_size(GTK_WINDOW(fw), 1000, 600);
  gtk_window_present(GTK_WINDOW(fw));
  kds_window_set_bridge(fw, fb);
  g_object_unref(fb);
  CHECK_MSG(wait_for(follow_shows_snapshot, fw, 30000), "the following window's %s panel shows no snapshot",
            kds_panel_kind(kds_window_get_panel(fw, 0)));
  CHECK(kds_bridge_set(fb, "train.clip_norm", "7.5", &e));
  g_clear_error(&e);
  ShowsValue live = {w, "train.clip_norm", 7.5}, followed = {fw, "train.clip_norm", 7.5};
  CHECK_MSG(wait_for(shows_value, &live, 30000), "the live window's control never showed the applied change");
  CHECK_MSG(wait_for(shows_value, &followed, 30000), "the following window's control never showed the logged change");
  CHECK(fabs(kd_config_num(kds_bridge_config(kds_window_get_bridge(w)), "train.clip_norm") - 7.5) < 1e-9);
  gtk_window_destroy(GTK_WINDOW(fw));
  pump(100);
}

int main(int argc, char **argv) {
  (void)argc, (void)argv;
  int skip = ui_test_start();
  if (skip) return skip;
  char dir[1024], data[2048], run[2100], tcfg[2100], tck[2100];
  CHECK(fixture_tmpdir(dir, sizeof dir, "ui") == 0);
  CHECK(fixture_data(dir, data, sizeof data) == 0);
  snprintf(run, sizeof run, "%s/run", dir);
  snprintf(tcfg, sizeof tcfg, "%s/teacher.json", dir);
  snprintf(tck, sizeof tck, "%s/teacher.safetensors", dir);
  g_run = run;
  /* A teacher with random weights is enough to drive the window. */
  FILE *f = fopen(tcfg, "w");
  fprintf(f, "{\"model\": {\"depth\": 10, \"width\": 8, \"fpn_channels\": 16, \"head_convs\": 1}, \"data\": {\"size\": 64}}\n");
  fclose(f);
  KdError err;
  KdModelCfg mc;
  kd_model_cfg_default(&mc);
  mc.backbone.depth = 10, mc.backbone.width = 8, mc.neck.channels = 16, mc.head.convs = 1;
  KdModel *teacher = kd_model_new(&mc, 9, &err);
  CHECK(teacher && kd_safetensors_save(tck, kd_model_params(teacher), NULL, &err) == 0);
  kd_model_free(teacher);
  KdConfig *cfg = fixture_config(data, 100000);
  CHECK(cfg != NULL);
  kd_config_set(cfg, "teacher.config", tcfg, &err);
  kd_config_set(cfg, "teacher.checkpoint", tck, &err);
  kd_config_set(cfg, "train.threads", "1", &err);

  /* Short enough that the settings sidebar must scroll (the wheel check);
   * every panel on screen at once (the checks below paint and hover each). */
  KdsWindow *w = ui_grid_window(1400, 560);
  KdRunOpts o = {0};
  o.session.out_dir = run;
  o.session.distill = 1;
  /* The app's path: the session opens on a worker thread. A missing
   * teacher checkpoint first: the error comes back naming the file. */
  {
    KdConfig *bad = fixture_config(data, 100000);
    char missing[2300];
    snprintf(missing, sizeof missing, "%s/no-such-teacher.safetensors", dir);
    CHECK(bad && kd_config_set(bad, "teacher.config", tcfg, &err) == 0 &&
          kd_config_set(bad, "teacher.checkpoint", missing, &err) == 0);
    char bad_run[2300];
    snprintf(bad_run, sizeof bad_run, "%s/bad-run", dir);
    KdRunOpts bo = {0};
    bo.session.out_dir = bad_run;
    bo.session.distill = 1;
    GError *be = NULL;
    KdsBridge *bb = ui_open_run(bad, &bo, &be);
    CHECK_MSG(!bb && be && strstr(be->message, "no-such-teacher"), "error: %s", be ? be->message : "(none)");
    g_clear_error(&be);
  }
  GError *e = NULL;
  KdsBridge *b = ui_open_run(cfg, &o, &e);
  CHECK_MSG(b != NULL, "%s", e ? e->message : "?");
  g_clear_error(&e);
  if (!b) return check_status("test_window");
  kds_window_set_bridge(w, b);
  g_object_unref(b);

  /* The panels come alive: a snapshot arrives and the map panels paint it. */
  CHECK_MSG(wait_for(have_snapshot, w, 60000), "no snapshot within 60 s");
  pump(600);
  /* Capture to paint while the window only runs (nothing else on the
   * main loop): each snapshot the run captures, to the panels' paint. */
  {
    double lmax, lmean;
    guint ln;
    kds_panel_latency_reset();
    pump(3000);
    kds_panel_latency_stats(&lmax, &lmean, &ln);
    printf("capture to paint, window alone for 3 s: mean %.1f ms, max %.1f ms over %u first paints\n", lmean, lmax, ln);
    CHECK_MSG(ln > 0, "no snapshot painted in 3 s of training");
  }
  for (int i = 0; i < kds_window_panel_count(w); i++) {
    KdsPanel *p = kds_window_get_panel(w, i);
    KdFigPanel fp;
    if (kds_panel_figure(p) && !kd_snapfig_shown(kds_panel_figure(p), NULL) && !kds_panel_build(p, &fp))
      continue; /* a two-stage panel, hidden for this RetinaNet run (test_frcnn_panels) */
    CHECK_MSG(kds_panel_build(p, &fp), "panel %s has nothing to draw", kds_panel_kind(p));
    CHECK_MSG(kds_panel_paint_count(p) > 0, "panel %s never painted", kds_panel_kind(p));
    cairo_surface_t *s = kds_panel_render(p, 600, 0, 1.0);
    double var = variance(s);
    CHECK_MSG(var > 1.0, "panel %s renders blank (variance %.3f)", kds_panel_kind(p), var);
    char png[2300];
    snprintf(png, sizeof png, "%s/panel-%s.png", dir, kds_panel_kind(p));
    cairo_surface_write_to_png(s, png);
    cairo_surface_destroy(s);
  }

  /* Hover readouts on real snapshots: somewhere on each map panel the
   * pointer reads a value, and the curves read a step. */
  for (int i = 0; i < kds_window_panel_count(w); i++) {
    KdsPanel *p = kds_window_get_panel(w, i);
    const char *kind = kds_panel_kind(p);
    int maps = !strcmp(kind, "gap") || !strcmp(kind, "masks") || !strcmp(kind, "attention") || !strcmp(kind, "gradmaps");
    if (!maps && strcmp(kind, "curves")) continue;
    int pw = gtk_widget_get_width(GTK_WIDGET(p)), ph = gtk_widget_get_height(GTK_WIDGET(p)), found = 0;
    KdFigPick k;
    kd_fig_pick_clear(&k);
    for (int y = 0; y < ph && !found; y += 3)
      for (int x = 0; x < pw && !found; x += 7) found = kds_panel_pick(p, x, y, &k) && k.key < 0; /* not a legend key */
    CHECK_MSG(found && strstr(k.text, maps ? ") of " : "step ") && k.cell.on == maps, "panel %s: no hover readout (%d x %d px; '%s')",
              kind, pw, ph, k.text);
  }

  /* Compare with another run: its det.cls joins the curves dotted, a wrong
   * directory is refused with a message, clearing removes it. */
  {
    char refdir[2200], path[2300];
    snprintf(refdir, sizeof refdir, "%s/baseline", dir);
    g_mkdir_with_parents(refdir, 0755);
    snprintf(path, sizeof path, "%s/config.json", refdir);
    g_file_set_contents(path, "{}\n", -1, NULL);
    snprintf(path, sizeof path, "%s/metrics.jsonl", refdir);
    g_file_set_contents(path, "{\"step\":1,\"loss\":2,\"parts\":{\"det.cls\":1.5}}\n"
                              "{\"step\":2,\"loss\":1,\"parts\":{\"det.cls\":0.5}}\n", -1, NULL);
    KdsPanel *curves = NULL;
    for (int i = 0; i < kds_window_panel_count(w); i++)
      if (!strcmp(kds_panel_kind(kds_window_get_panel(w, i)), "curves")) curves = kds_window_get_panel(w, i);
    CHECK(curves != NULL);
    KdFigPanel fp;
    int before = curves && kds_panel_build(curves, &fp) ? ((const KdFigCurves *)fp.spec)->loss.nseries : -1;
    GError *ce = NULL;
    CHECK(kds_window_set_reference(w, refdir, &ce));
    int found = 0, after = -1;
    if (curves && kds_panel_build(curves, &fp)) {
      const KdFigCurves *c = fp.spec;
      after = c->loss.nseries;
      for (int i = 0; i < c->loss.nseries; i++) found |= !strcmp(c->loss.series[i].name, "baseline: det.cls");
    }
    CHECK_MSG(found && after == before + 2, "compare: %d -> %d loss series, 'baseline: det.cls' %s", before, after,
              found ? "found" : "missing");
    CHECK(!kds_window_set_reference(w, "/nonesuch", &ce) && ce && strstr(ce->message, "not a run directory"));
    g_clear_error(&ce);
    CHECK(kds_window_set_reference(w, NULL, NULL));
    CHECK(curves && kds_panel_build(curves, &fp) && ((const KdFigCurves *)fp.spec)->loss.nseries == before);
  }

  check_wheel(w, run);

  /* A slider move reaches the run at a step boundary. */
  KdsControlPanel *cp = kds_window_get_controls(w);
  kds_control_panel_set_debounce(cp, 0);
  GtkSpinButton *spin = kds_control_panel_entry(cp, "fitnet.weight");
  GtkRange *slider = kds_control_panel_slider(cp, "fitnet.weight");
  CHECK(spin != NULL && slider != NULL);
  if (slider) gtk_range_set_value(slider, gtk_range_get_value(slider) + 200); /* linear 0..100: +20 */
  double new_w = spin ? gtk_spin_button_get_value(spin) : 0;
  CHECK_MSG(wait_for(set_logged, NULL, 30000), "the slider change never reached events.jsonl");
  /* The logged part follows from the next step on (weight 1 -> new_w). */
  gint64 end = g_get_monotonic_time() + 30000000;
  while (fixture_last_step(run) < set_step + 2 && g_get_monotonic_time() < end) pump(50);
  double before = part_at(run, set_step, "fitnet.feat"), after = part_at(run, set_step + 1, "fitnet.feat");
  CHECK_MSG(after > 3 * before && new_w > 10, "fitnet.feat %.4g at step %d, %.4g after weight -> %.4g", before, set_step, after, new_w);

  check_follow(w, run);

  /* Pause from the header bar. */
  GtkWidget *pause = kds_window_get_pause_button(w);
  gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(pause), TRUE);
  CHECK_MSG(wait_for(is_paused, w, 30000), "the run did not pause");
  int n;
  cJSON **ev = fixture_jsonl(run, "events.jsonl", &n);
  int paused = 0;
  for (int i = 0; i < n; i++) paused |= fixture_is_event(ev[i], "pause");
  fixture_jsonl_free(ev, n);
  CHECK(paused);

  check_wheel_focused(w);

  guint frames;
  double max_work, mean_work, max_gap;
  kds_window_frame_stats(w, &frames, &max_work, &mean_work, &max_gap);
  printf("frames %u, poll work mean %.2f ms max %.2f ms, longest gap between frames %.1f ms\n", frames, mean_work, max_work, max_gap);
  CHECK(frames > 0);
  guint hand_n;
  double hand_max, hand_mean;
  kds_window_handover_stats(w, &hand_n, &hand_max, &hand_mean);
  printf("hand-overs %u, work mean %.2f ms max %.2f ms\n", hand_n, hand_mean, hand_max);
  CHECK_MSG(hand_n > 0, "the run handed nothing over in memory");
  double lat_max, lat_mean;
  guint lat_n;
  kds_panel_latency_stats(&lat_max, &lat_mean, &lat_n);
  printf("capture to paint, since then: mean %.1f ms, max %.1f ms over %u first paints of a snapshot\n", lat_mean, lat_max, lat_n);
  CHECK_MSG(lat_n > 0, "no snapshot captured during the run was painted");
  gtk_window_destroy(GTK_WINDOW(w));
  pump(200);
  if (!check_failures) fixture_rmrf(dir);
  else printf("kept %s for inspection\n", dir);
  return check_status("test_window");
}
