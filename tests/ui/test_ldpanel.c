/* LD in the window, in-process under Xvfb: a live LD run of a tiny GFL
 * pair (random teacher) writes LD's regions and both sides' distributions
 * into its snapshots; the main region lies on cells whose anchor point is
 * inside a GT box (ATSS's rule) and the VLR is not empty; a real click on the gap
 * panel's map (xdotool) on a main-region cell gives the "dist" panel that
 * cell: four sides of teacher and student probabilities, each summing to
 * 1, the teacher's equal to a softmax of the snapshot's logits computed
 * here, and the GT edge of the smallest box holding the cell marked at its
 * distance in strides. Skips (77) without a display. */
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

#define GFL_TEACHER_JSON "{\"model\": {\"head\": \"gfl\", \"depth\": 10, \"width\": 8, \"fpn_channels\": 16, \"head_convs\": 1}, \"anchor\": {\"size_mult\": 2}}\n"

/* Whether the anchor point of cell (y, x) at stride s, (x s, y s), is inside a non-crowd GT box of image i. */
static int in_gt(const KdSnapshot *s, int i, int y, int x, int stride, double *d) {
  const KdSnapField *g = kd_snapshot_findf(s, "img%d.gt", i);
  double cx = (double)x * stride, cy = (double)y * stride, best = INFINITY;
  for (int k = 0; g && k < g->shape[0]; k++) {
    const float *b = g->data + 6 * k;
    double a = (b[2] - b[0]) * (b[3] - b[1]);
    if (b[5] > 0.5f || cx < b[0] || cx > b[2] || cy < b[1] || cy > b[3] || a >= best) continue;
    best = a;
    if (d) d[0] = (cx - b[0]) / stride, d[1] = (cy - b[1]) / stride, d[2] = (b[2] - cx) / stride, d[3] = (b[3] - cy) / stride;
  }
  return isfinite(best);
}

int main(void) {
  int skip = ui_test_start();
  if (skip) return skip;
  char dir[1024], data[2048], run[2100], tcfg[2100], tck[2100];
  CHECK(fixture_tmpdir(dir, sizeof dir, "ldpanel") == 0 && fixture_data(dir, data, sizeof data) == 0);
  snprintf(run, sizeof run, "%s/run", dir);
  CHECK(fixture_teacher_of(dir, GFL_TEACHER_JSON, tcfg, sizeof tcfg, tck, sizeof tck) == 0);
  KdError err;
  KdConfig *cfg = fixture_config(data, 100000);
  const char *kv[][2] = {{"teacher.config", tcfg}, {"teacher.checkpoint", tck}, {"train.threads", "1"}, {"model.head", "gfl"},
                         {"anchor.size_mult", "2"}, {"distill.methods", "ld"}, {"probe.budget", "0.5"}};
  for (size_t k = 0; cfg && k < sizeof kv / sizeof kv[0]; k++) CHECK_MSG(kd_config_set(cfg, kv[k][0], kv[k][1], &err) == 0, "%s", err.msg);
  if (!cfg) return 1;
  win = ui_live_window(cfg, run, 2, 120000);
  CHECK_MSG(win != NULL, "no live run with two snapshots");
  if (!win) return check_status("test_ldpanel");
  KdsPanel *gap = ui_live_panel(win, "gap"), *dp = ui_live_panel(win, "dist");
  CHECK_MSG(gap && dp, "no gap or dist panel");
  if (!gap || !dp) return check_status("test_ldpanel");
  KdSnapFigView v;
  kds_panel_view_snapfig(dp, &v);
  const KdSnapshot *s = v.snap;
  CHECK(s && kd_snapfig_shown(kd_snapfig_find("dist"), s) && !kd_snapfig_shown(kd_snapfig_find("rois"), s));
  if (!s) return check_status("test_ldpanel");
  /* The regions: main cells inside GT boxes, a VLR. */
  int main_n = 0, main_out = 0, vlr_n = 0, py = -1, px = -1;
  for (int i = 0; i < s->nimages; i++)
    for (int l = 0; l < s->nlev; l++) {
      char lv[16];
      kd_snapshot_level_name(s, l, lv, sizeof lv);
      const KdSnapField *m = kd_snapshot_findf(s, "img%d.%s.mask.ld.main", i, lv), *r = kd_snapshot_findf(s, "img%d.%s.mask.ld.vlr", i, lv);
      CHECK_MSG(m && r && m->ndim == 2, "image %d %s: no LD regions", i, lv);
      if (!m || !r) continue;
      for (int c = 0; c < m->shape[0] * m->shape[1]; c++) {
        vlr_n += r->data[c] > 0;
        if (m->data[c] <= 0) continue;
        main_n++;
        int y = c / m->shape[1], x = c % m->shape[1];
        if (!in_gt(s, i, y, x, s->strides[l], NULL)) main_out++;
        else if (i == v.image && l == v.level && py < 0) py = y, px = x;
      }
    }
  printf("LD regions over the probe batch: %d main cells (%d outside every GT box), %d VLR cells\n", main_n, main_out, vlr_n);
  CHECK_MSG(main_n > 0 && main_out == 0 && vlr_n > 0, "main %d (%d outside GT), vlr %d", main_n, main_out, vlr_n);
  CHECK_MSG(py >= 0, "no main-region cell on image %d at level %d", v.image, v.level);
  /* A real click on that cell of the gap panel's first map. */
  char lv[16];
  kd_snapshot_level_name(s, v.level, lv, sizeof lv);
  const KdSnapField *ft = kd_snapshot_findf(s, "img%d.%s.mask.ld.dist_t", v.image, lv);
  CHECK(ft && ft->ndim == 3 && ft->shape[0] == 68);
  if (!ft || py < 0) return check_status("test_ldpanel");
  const int H = ft->shape[1], W = ft->shape[2];
  int pw = gtk_widget_get_width(GTK_WIDGET(gap)), ph = gtk_widget_get_height(GTK_WIDGET(gap));
  KdFigPick k;
  double cx = -1, cy = -1;
  for (int y = 0; y < ph && cx < 0; y++)
    for (int x = 0; x < pw / 3 && cx < 0; x++)
      if (kds_panel_pick(gap, x, y, &k) && k.cell.on && (int)floor(k.cell.v * H) == py && (int)floor(k.cell.u * W) == px) cx = x + 0.5, cy = y + 0.5;
  CHECK_MSG(cx >= 0, "cell (%d, %d) not found on the gap panel", py, px);
  unsigned long xid = 0;
  int X = 0, Y = 0;
  CHECK(ui_point(GTK_WIDGET(gap), cx / pw, cy / ph, &xid, &X, &Y));
  ui_xdo("mousemove --window %lu %d %d click 1", xid, X, Y);
  pump(500);
  KdFigPanel fp;
  CHECK(kds_panel_build(dp, &fp));
  const struct SfDist *d = fp.spec;
  char want[64];
  snprintf(want, sizeof want, "cell (%d, %d)", py, px);
  CHECK_MSG(d && strstr(d->title, want), "the dist panel shows %s, the click was on %s", d ? d->title : "-", want);
  double edge[4];
  CHECK(in_gt(s, v.image, py, px, s->strides[v.level], edge));
  double worst = 0;
  for (int side = 0; d && side < 4; side++) {
    const float *logit = ft->data + (size_t)side * 17 * H * W + (size_t)py * W + px;
    double mx = -INFINITY, z = 0, st = 0, ss = 0;
    for (int j = 0; j < 17; j++) mx = fmax(mx, logit[(size_t)j * H * W]);
    for (int j = 0; j < 17; j++) z += exp(logit[(size_t)j * H * W] - mx);
    for (int j = 0; j < 17; j++) {
      worst = fmax(worst, fabs(d->v[side][0][j] - exp(logit[(size_t)j * H * W] - mx) / z));
      st += d->v[side][0][j], ss += d->v[side][1][j];
    }
    CHECK_MSG(fabs(st - 1) < 1e-5 && fabs(ss - 1) < 1e-5, "side %d sums to %g (teacher), %g (student)", side, st, ss);
    CHECK_MSG(d->bars[side].mark_label && fabs(d->bars[side].mark - edge[side]) < 1e-9, "side %d: GT edge at %g, expected %g", side,
              d->bars[side].mark, edge[side]);
  }
  CHECK_MSG(worst < 1e-6, "the teacher's bars are off a softmax of its logits by %g", worst);
  printf("click on %s %s: GT edges %.2f %.2f %.2f %.2f strides; teacher bars vs softmax: worst %.2g\n", lv, want, edge[0], edge[1],
         edge[2], edge[3], worst);
  const char *shots = g_getenv("KDS_SHOTS_DIR");
  if (shots) {
    char png[2200];
    snprintf(png, sizeof png, "%.2100s/ldpanel.png", shots);
    ui_scroll_to(GTK_WIDGET(dp));
    CHECK(ui_screenshot(png) == 0);
  }
  gtk_window_destroy(GTK_WINDOW(win));
  pump(200);
  if (!check_failures) fixture_rmrf(dir);
  return check_status("test_ldpanel");
}
