/* The window as a person uses it, in-process under Xvfb: a tiny
 * distillation run starts, the panels come alive, a slider move reaches
 * the run (events.jsonl names it with its step and the logged loss part
 * follows), the pause button pauses it, every panel renders offscreen to a
 * non-blank image and the frame loop never stalls. Skips (77) without a
 * display. */
#include <gtk/gtk.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../train/run_fixture.h"
#include "check.h"
#include "model/detector.h"
#include "model/safetensors.h"
#include "window.h"

static void pump(int ms) {
  gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;
  while (g_get_monotonic_time() < end) {
    g_main_context_iteration(NULL, FALSE);
    fixture_sleep_ms(5);
  }
}

static gboolean wait_for(gboolean (*cond)(gpointer), gpointer user, int ms) {
  gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;
  while (g_get_monotonic_time() < end) {
    if (cond(user)) return TRUE;
    g_main_context_iteration(NULL, FALSE);
    fixture_sleep_ms(5);
  }
  return cond(user);
}

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

static int last_step(const char *run) {
  int n, s = 0;
  cJSON **m = fixture_jsonl(run, "metrics.jsonl", &n);
  for (int i = 0; i < n; i++)
    if (m[i] && cJSON_GetObjectItemCaseSensitive(m[i], "parts")) s = (int)fixture_num(m[i], "step");
  fixture_jsonl_free(m, n);
  return s;
}

static double variance(cairo_surface_t *s) {
  cairo_surface_flush(s);
  const unsigned char *d = cairo_image_surface_get_data(s);
  int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s), st = cairo_image_surface_get_stride(s);
  double sum = 0, sq = 0;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      double v = d[y * st + 4 * x + 1];
      sum += v, sq += v * v;
    }
  double n = (double)w * h;
  return sq / n - (sum / n) * (sum / n);
}

int main(int argc, char **argv) {
  (void)argc, (void)argv;
  g_setenv("GTK_A11Y", "none", TRUE);
  g_setenv("GSK_RENDERER", "cairo", TRUE);
  if (!gtk_init_check()) {
    printf("skipped: no display\n");
    return 77;
  }
  if (!fixture_have_source()) {
    printf("skipped: dataset-fashion-mnist is not installed\n");
    return 77;
  }
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

  KdsWindow *w = kds_window_new(NULL);
  gtk_window_present(GTK_WINDOW(w));
  KdRunOpts o = {0};
  o.session.out_dir = run;
  o.session.distill = 1;
  GError *e = NULL;
  KdsBridge *b = kds_bridge_new_run(cfg, &o, &e);
  CHECK_MSG(b != NULL, "%s", e ? e->message : "?");
  if (!b) return check_status("test_window");
  kds_window_set_bridge(w, b);
  g_object_unref(b);

  /* The panels come alive: a snapshot arrives and the map panels paint it. */
  CHECK_MSG(wait_for(have_snapshot, w, 60000), "no snapshot within 60 s");
  pump(600);
  for (int i = 0; i < kds_window_panel_count(w); i++) {
    KdsPanel *p = kds_window_get_panel(w, i);
    KdFigPanel fp;
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
    KdFigPick k = {{0}, {0, 0, 0}};
    for (int y = 0; y < ph && !found; y += 3)
      for (int x = 0; x < pw && !found; x += 7) found = kds_panel_pick(p, x, y, &k);
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
  while (last_step(run) < set_step + 2 && g_get_monotonic_time() < end) pump(50);
  double before = part_at(run, set_step, "fitnet.feat"), after = part_at(run, set_step + 1, "fitnet.feat");
  CHECK_MSG(after > 3 * before && new_w > 10, "fitnet.feat %.4g at step %d, %.4g after weight -> %.4g", before, set_step, after, new_w);

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

  guint frames;
  double max_work, mean_work, max_gap;
  kds_window_frame_stats(w, &frames, &max_work, &mean_work, &max_gap);
  printf("frames %u, poll work mean %.2f ms max %.2f ms, longest gap between frames %.1f ms\n", frames, mean_work, max_work, max_gap);
  CHECK(frames > 0);
  gtk_window_destroy(GTK_WINDOW(w));
  pump(200);
  if (!check_failures) fixture_rmrf(dir);
  else printf("kept %s for inspection\n", dir);
  return check_status("test_window");
}
