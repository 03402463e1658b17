/* HEAD's sampled RoIs in the window, in-process under Xvfb: a live HEAD
 * run (the fixture's RetinaNet student, a tiny random Faster R-CNN
 * teacher) writes each probe image's sampled RoIs with their per-RoI gaps
 * (AKD fc1, AKD fc2, CKD); the table agrees with the probe batch's loss
 * parts (each part is the weight times the mean of its column, the same
 * weight for the three); GT boxes carry no CKD. The "rois" panel shows
 * only for such a run; the pointer moved over one of its points (xdotool)
 * gives that RoI's readout and redraws the panel with the RoI outlined on
 * the image (the pixels there change); the image panel draws the positive
 * and negative RoIs with their keys. Skips (77) without a display. */
#include <gdk/x11/gdkx.h>
#include <gtk/gtk.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../train/run_fixture.h"
#include "check.h"
#include "snapfig_priv.h"
#include "ui_drive.h"
#include "ui_live.h"
#include "ui_wait.h"
#include "window.h"

static KdsWindow *win;


static double part(const KdSnapshot *s, const char *name) {
  for (int i = 0; i < s->nprobe_parts; i++)
    if (!strcmp(s->probe_parts[i].name, name)) return s->probe_parts[i].value;
  return NAN;
}

/* The table over every probe image against the probe batch's parts. */
static void check_table(const KdSnapshot *s) {
  double sum[3] = {0}, n[3] = {0};
  int rows = 0, gt = 0, pos = 0, bad = 0;
  for (int i = 0; i < s->nimages; i++) {
    const KdSnapField *f = kd_snapshot_findf(s, "img%d.rois.head", i);
    CHECK_MSG(f && f->ndim == 2 && f->shape[1] == 9, "image %d has no RoI table", i);
    if (!f) continue;
    for (int r = 0; r < f->shape[0]; r++, rows++) {
      const float *q = f->data + (size_t)r * 9;
      int is_gt = q[5] > 0.5f;
      gt += is_gt, pos += q[4] > 0.5f;
      bad += !(q[2] > q[0] && q[3] > q[1]) || q[4] < 0 || q[4] > s->nclasses || !isfinite(q[6]) || !isfinite(q[7]) ||
             (is_gt ? !isnan(q[8]) : !isfinite(q[8]));
      for (int g = 0; g < 3; g++)
        if (isfinite(q[6 + g])) sum[g] += q[6 + g], n[g]++;
    }
  }
  CHECK_MSG(rows > 0 && gt > 0 && pos > 0 && !bad, "%d RoIs, %d GT, %d positive, %d malformed", rows, gt, pos, bad);
  const char *names[3] = {"head.akd.fc1", "head.akd.fc2", "head.ckd"};
  double w[3];
  for (int g = 0; g < 3; g++) w[g] = part(s, names[g]) / (sum[g] / fmax(n[g], 1));
  printf("step %d: %d RoIs (%d GT, %d positive); part / mean gap: fc1 %.6g, fc2 %.6g, ckd %.6g\n", s->step, rows, gt, pos, w[0], w[1],
         w[2]);
  /* HEAD's weights are 2 x warm-up (200 steps): the same factor for the three. */
  CHECK_MSG(w[0] > 0 && w[0] <= 2 && fabs(w[1] - w[0]) < 1e-4 * w[0] && fabs(w[2] - w[0]) < 1e-4 * w[0],
            "the parts are not weight x mean of the table's columns: %g %g %g", w[0], w[1], w[2]);
}

int main(void) {
  int skip = ui_test_start();
  if (skip) return skip;
  char dir[1024], data[2048], run[2100], tcfg[2100], tck[2100];
  CHECK(fixture_tmpdir(dir, sizeof dir, "roipanel") == 0 && fixture_data(dir, data, sizeof data) == 0);
  snprintf(run, sizeof run, "%s/run", dir);
  CHECK(fixture_teacher_of(dir, FIXTURE_FRCNN_TEACHER_JSON, tcfg, sizeof tcfg, tck, sizeof tck) == 0);
  KdError err;
  KdConfig *cfg = fixture_config(data, 100000);
  CHECK(cfg && kd_config_set(cfg, "teacher.config", tcfg, &err) == 0 && kd_config_set(cfg, "teacher.checkpoint", tck, &err) == 0 &&
        kd_config_set(cfg, "train.threads", "1", &err) == 0 && kd_config_set(cfg, "distill.methods", "head", &err) == 0 &&
        kd_config_set(cfg, "probe.budget", "0.5", &err) == 0);
  win = ui_live_window(cfg, run, 2, 120000);
  CHECK_MSG(win != NULL, "no live run with two snapshots");
  if (!win) return check_status("test_roipanel");
  GError *e = NULL;
  KdsBridge *br = kds_window_get_bridge(win);
  KdSnapshot *snap = kds_bridge_snapshot(br, kds_bridge_snapshot_count(br) - 1, &e);
  CHECK_MSG(snap != NULL, "%s", e ? e->message : "?");
  if (snap) {
    check_table(snap);
    CHECK(kd_snapfig_shown(kd_snapfig_find("rois"), snap) && !kd_snapfig_shown(kd_snapfig_find("rois"), NULL));
    CHECK(kd_snapfig_shown(kd_snapfig_find("objectness"), snap)); /* the teacher's RPN */
  }
  kd_snapshot_free(snap);
  KdsPanel *rp = ui_live_panel(win, "rois"), *ip = ui_live_panel(win, "image");
  CHECK_MSG(rp && ip, "no rois or image panel in the window");
  if (!rp || !ip) return check_status("test_roipanel");
  KdFigPanel fp;
  CHECK(kds_panel_build(ip, &fp));
  const KdFigDetView *d = fp.spec;
  CHECK_MSG(d->nproposals > 0 && d->nnegatives > 0 && d->proposals_label && strstr(d->proposals_label, "HEAD positive RoIs"),
            "image panel: %d positive, %d negative RoIs (%s)", d->nproposals, d->nnegatives, d->proposals_label ? d->proposals_label : "-");
  /* A point of the scatter, found by the panel's own pick, under a real pointer. */
  int pw = gtk_widget_get_width(GTK_WIDGET(rp)), ph = gtk_widget_get_height(GTK_WIDGET(rp));
  KdFigPick k;
  double cx = -1, cy = -1;
  for (int y = 0; y < ph && cx < 0; y += 2)
    for (int x = pw / 2; x < pw && cx < 0; x += 2)
      if (kds_panel_pick(rp, x, y, &k) && !strncmp(k.text, "RoI ", 4)) cx = x, cy = y;
  CHECK_MSG(cx >= 0, "no RoI point on the rois panel (%dx%d)", pw, ph);
  ui_scroll_to(GTK_WIDGET(rp)); /* the grid scrolls: the panel under the pointer first */
  guint paints = kds_panel_paint_count(rp);
  unsigned long xid = 0;
  int X = 0, Y = 0;
  CHECK(ui_point(GTK_WIDGET(rp), cx / pw, cy / ph, &xid, &X, &Y));
  ui_xdo("mousemove --window %lu %d %d", xid, X, Y);
  pump(400);
  const char *text = NULL;
  kds_panel_readout(rp, NULL, &text);
  CHECK_MSG(text && !strncmp(text, "RoI ", 4) && strstr(text, "AKD fc2") && strstr(text, "unweighted"), "readout: %s",
            text ? text : "(none)");
  CHECK_MSG(kds_panel_paint_count(rp) > paints, "the panel did not redraw under the pointer");
  CHECK(kds_panel_build(rp, &fp));
  const KdFigRois *r = fp.spec;
  CHECK_MSG(r->hover_on && fabs(r->hover_x - cx) < 2 && fabs(r->hover_y - cy) < 2, "the panel's view has no pointer at (%.0f, %.0f): %d (%.1f, %.1f)",
            cx, cy, r->hover_on, r->hover_x, r->hover_y);
  /* The hovered RoI outlined: the live figure against the same without the pointer. */
  KdFigRois plain = *r;
  plain.hover_on = 0;
  KdFigPanel pp = kd_fig_rois_panel(&plain);
  cairo_surface_t *before = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, pw, ph),
                  *after = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, pw, ph);
  cairo_t *cr = cairo_create(after);
  kd_fig_paint(cr, &fp, kds_panel_style(), pw, ph, 1.0);
  cairo_destroy(cr);
  cr = cairo_create(before);
  kd_fig_paint(cr, &pp, kds_panel_style(), pw, ph, 1.0);
  cairo_destroy(cr);
  cairo_surface_flush(before), cairo_surface_flush(after);
  int changed_left = 0, changed_right = 0, stride = cairo_image_surface_get_stride(after);
  const unsigned char *pa = cairo_image_surface_get_data(before), *pb = cairo_image_surface_get_data(after);
  for (int y = 0; pa && y < ph && y < cairo_image_surface_get_height(before); y++)
    for (int x = 0; x < pw && x < cairo_image_surface_get_width(before); x++)
      if (memcmp(pa + (size_t)y * stride + 4 * x, pb + (size_t)y * stride + 4 * x, 4)) {
        if (x < pw * 0.42) changed_left++;
        else changed_right++;
      }
  printf("hover at (%.0f, %.0f): \"%s\"; %d pixels changed on the image, %d on the scatter\n", cx, cy, text ? text : "", changed_left,
         changed_right);
  CHECK_MSG(changed_left > 20 && changed_right > 10, "the hovered RoI is not drawn (%d, %d pixels changed)", changed_left, changed_right);
  cairo_surface_destroy(before), cairo_surface_destroy(after);
  const char *shots = g_getenv("KDS_SHOTS_DIR");
  if (shots) {
    char png[2200];
    snprintf(png, sizeof png, "%.2100s/roipanel.png", shots);
    CHECK(ui_screenshot(png) == 0);
  }
  gtk_window_destroy(GTK_WINDOW(win));
  pump(200);
  if (!check_failures) fixture_rmrf(dir);
  return check_status("test_roipanel");
}
