/* A Faster R-CNN run in the window, in-process under Xvfb: a tiny
 * two-stage model trains (no teacher), its snapshots reach the window,
 * and the two-stage panels build and render non-blank: the image with
 * the RPN's top proposals (their own key) and the RoI head's detections,
 * the objectness map at one level and every level side by side, and the
 * projection of the RoI head's features of the GT boxes. The objectness
 * panel shows only for such a run (a RetinaNet snapshot hides it). Skips
 * (77) without a display. */
#include <gtk/gtk.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "snapfig.h"
#include "ui_wait.h"
#include "window.h"

static gboolean have_snapshots(gpointer w) {
  KdsBridge *b = kds_window_get_bridge(w);
  return b && kds_bridge_snapshot_count(b) >= 2;
}

static const char *const frcnn_keys[][2] = {
    {"model.head", "faster_rcnn"},       {"model.fpn_first_level", "2"},      {"model.extra_levels", "1"},
    {"model.extra_from", "pool"},        {"rpn.anchor_sizes", "8,16,32,64,128"}, {"rpn.pre_nms_top_n_train", "200"},
    {"rpn.post_nms_top_n_train", "100"}, {"rpn.pre_nms_top_n_test", "100"},  {"rpn.post_nms_top_n_test", "50"},
    {"roi.representation", "32"},        {"roi.batch_per_image", "32"},       {"roi.canonical_scale", "56"},
    {"distill.methods", ""},             {"train.threads", "1"},              {"probe.budget", "0.5"},
};

/* Builds kind on the snapshot (all levels when asked) and renders it. */
static double render_kind(const char *name, const KdSnapshot *s, int all_levels, KdFigPanel *fp, KdSnapFigStore *st) {
  KdSnapFigView v;
  kd_snapfig_view_default(&v);
  v.snap = s, v.all_levels = all_levels, v.level = 1;
  KdError err = {{0}};
  int rc = kd_snapfig_build(kd_snapfig_find(name), &v, st, fp, &err);
  CHECK_MSG(rc == 0, "%s%s: %s", name, all_levels ? " (all levels)" : "", err.msg);
  if (rc) return 0;
  cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 600, 400);
  cairo_t *cr = cairo_create(surf);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  kd_fig_paint(cr, fp, NULL, 600, 400, 1.0);
  cairo_destroy(cr);
  double var = variance(surf);
  cairo_surface_destroy(surf);
  return var;
}

int main(int argc, char **argv) {
  (void)argc, (void)argv;
  int skip = ui_test_start();
  if (skip) return skip;
  char dir[1024], data[2048], run[2300];
  if (fixture_tmpdir(dir, sizeof dir, "frcnn-panels") || fixture_data(dir, data, sizeof data)) return 1;
  snprintf(run, sizeof run, "%s/run", dir);
  KdConfig *cfg = fixture_config(data, 100000);
  KdError err;
  for (size_t k = 0; cfg && k < sizeof frcnn_keys / sizeof frcnn_keys[0]; k++)
    CHECK_MSG(kd_config_set(cfg, frcnn_keys[k][0], frcnn_keys[k][1], &err) == 0, "%s", err.msg);
  if (!cfg) return 1;
  KdsWindow *w = ui_grid_window(1400, 900);
  KdRunOpts o = {0};
  o.session.out_dir = run;
  GError *e = NULL;
  KdsBridge *b = kds_bridge_new_run(cfg, &o, &e);
  CHECK_MSG(b != NULL, "%s", e ? e->message : "?");
  if (!b) return check_status("test_frcnn_panels");
  kds_window_set_bridge(w, b);
  g_object_unref(b);
  CHECK_MSG(wait_for(have_snapshots, w, 120000), "no two snapshots within 120 s");
  pump(800);
  /* the window's panels: the objectness one is there and paints */
  int found = 0;
  for (int i = 0; i < kds_window_panel_count(w); i++) {
    KdsPanel *p = kds_window_get_panel(w, i);
    const char *kind = kds_panel_kind(p);
    if (strcmp(kind, "image") && strcmp(kind, "objectness") && strcmp(kind, "projection")) continue;
    found++;
    KdFigPanel fp;
    CHECK_MSG(kds_panel_build(p, &fp), "panel %s has nothing to draw", kind);
    CHECK_MSG(kds_panel_paint_count(p) > 0, "panel %s never painted (not shown?)", kind);
    cairo_surface_t *s = kds_panel_render(p, 600, 0, 1.0);
    double var = variance(s);
    CHECK_MSG(var > 1.0, "panel %s renders blank (variance %.3f)", kind, var);
    cairo_surface_destroy(s);
  }
  CHECK_MSG(found == 3, "%d of the image, objectness and projection panels in the window", found);
  /* the figures on the latest snapshot: what they hold */
  KdsBridge *br = kds_window_get_bridge(w);
  KdSnapshot *snap = kds_bridge_snapshot(br, kds_bridge_snapshot_count(br) - 1, &e);
  CHECK_MSG(snap != NULL, "%s", e ? e->message : "?");
  KdSnapFigStore *st = kd_snapfig_store_new();
  KdFigPanel fp;
  if (snap) {
    CHECK(kd_snapfig_shown(kd_snapfig_find("objectness"), snap) && !kd_snapfig_shown(kd_snapfig_find("objectness"), NULL));
    double var = render_kind("image", snap, 0, &fp, st);
    const KdFigDetView *d = fp.spec;
    CHECK_MSG(var > 1.0 && d->nproposals == 20 && d->proposals_label && strstr(d->proposals_label, "student RPN"),
              "image: variance %.2f, %d proposals (%s)", var, d->nproposals, d->proposals_label ? d->proposals_label : "-");
    var = render_kind("objectness", snap, 0, &fp, st);
    const KdFigMaps *m = fp.spec;
    CHECK_MSG(var > 1.0 && m->n == 1 && m->groups[0].range.lo == 0 && m->groups[0].range.hi == 1,
              "objectness: variance %.2f, %d maps", var, m->n);
    var = render_kind("objectness", snap, 1, &fp, st);
    m = fp.spec;
    CHECK_MSG(var > 1.0 && m->n == snap->nlev, "objectness, all levels: variance %.2f, %d maps for %d levels", var, m->n, snap->nlev);
    var = render_kind("projection", snap, 0, &fp, st);
    const KdFigScatter *sc = fp.spec;
    CHECK_MSG(var > 1.0 && sc->student_xy && !sc->teacher_xy && sc->n > 0 && strstr(sc->title, "RoI head features"),
              "projection: variance %.2f, %d points, title %s", var, sc->n, sc->title ? sc->title : "-");
    printf("image: %d proposals (%s); objectness on %d levels; projection of %d RoI features\n", d->nproposals,
           d->proposals_label, snap->nlev, sc->n);
  }
  kd_snapfig_store_free(st);
  kd_snapshot_free(snap);
  g_clear_error(&e);
  gtk_window_destroy(GTK_WINDOW(w));
  pump(200); /* the bridge owned cfg */
  fixture_rmrf(dir);
  return check_status("test_frcnn_panels");
}
