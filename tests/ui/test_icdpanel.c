/* ICD in the window, in-process under Xvfb: a live ICD run (the fixture's
 * student and random teacher) writes every valid query's teacher-side
 * attention; each image has one real query per non-crowd GT box and each
 * query's attention sums to 1 over the cells (a softmax per head, the mean
 * over heads); the "icd" panel, with the picked cell inside a GT box,
 * shows that box's real query beside fake ones, on one range. Skips (77)
 * without a display. */
#include <gtk/gtk.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../train/run_fixture.h"
#include "check.h"
#include "snapfig_priv.h"
#include "snapview.h"
#include "ui_drive.h"
#include "ui_live.h"
#include "ui_wait.h"
#include "window.h"

int main(void) {
  int skip = ui_test_start();
  if (skip) return skip;
  char dir[1024], data[2048], run[2100], tcfg[2100], tck[2100];
  CHECK(fixture_tmpdir(dir, sizeof dir, "icdpanel") == 0 && fixture_data(dir, data, sizeof data) == 0);
  snprintf(run, sizeof run, "%s/run", dir);
  CHECK(fixture_teacher(dir, tcfg, sizeof tcfg, tck, sizeof tck) == 0);
  KdError err;
  KdConfig *cfg = fixture_config(data, 100000);
  const char *kv[][2] = {{"teacher.config", tcfg}, {"teacher.checkpoint", tck}, {"train.threads", "1"}, {"distill.methods", "icd"},
                         {"probe.budget", "0.5"}};
  for (size_t k = 0; cfg && k < sizeof kv / sizeof kv[0]; k++) CHECK_MSG(kd_config_set(cfg, kv[k][0], kv[k][1], &err) == 0, "%s", err.msg);
  if (!cfg) return 1;
  KdsWindow *win = ui_live_window(cfg, run, 2, 120000);
  CHECK_MSG(win != NULL, "no live run with two snapshots");
  if (!win) return check_status("test_icdpanel");
  KdsPanel *ip = ui_live_panel(win, "icd");
  CHECK_MSG(ip && gtk_widget_get_mapped(GTK_WIDGET(ip)), "no icd panel shown");
  if (!ip) return check_status("test_icdpanel");
  KdSnapFigView v;
  kds_panel_view_snapfig(ip, &v);
  const KdSnapshot *s = v.snap;
  CHECK(s && kd_snapfig_shown(kd_snapfig_find("icd"), s) && !kd_snapfig_shown(kd_snapfig_find("icd"), NULL));
  if (!s) return check_status("test_icdpanel");
  /* The queries against the GT, and their attention's mass. */
  int cells = 0, queries = 0, bad_real = 0;
  for (int l = 0; l < s->nlev; l++) {
    KdFigMap e = kd_snapview_map(s, 0, l, "t_energy");
    cells += e.h * e.w;
  }
  double worst = 0;
  for (int i = 0; i < s->nimages; i++) {
    const KdSnapField *f = kd_snapshot_findf(s, "img%d.queries.icd", i), *g = kd_snapshot_findf(s, "img%d.gt", i);
    int gts = 0, reals = 0;
    for (int k = 0; g && k < g->shape[0]; k++) gts += g->data[6 * k + 5] < 0.5f;
    if (!f) {
      CHECK_MSG(gts == 0, "image %d has %d GT boxes and no ICD queries", i, gts);
      continue;
    }
    CHECK_MSG(f->ndim == 2 && f->shape[1] == 6 + cells, "image %d: queries (%d, %d), %d cells", i, f->shape[0], f->shape[1], cells);
    for (int r = 0; r < f->shape[0] && f->shape[1] == 6 + cells; r++, queries++) {
      const float *q = f->data + (size_t)r * f->shape[1];
      reals += q[0] > 0.5f;
      double sum = 0;
      for (int c = 0; c < cells; c++) sum += q[6 + c];
      worst = fmax(worst, fabs(sum - 1));
    }
    bad_real += reals != gts;
  }
  printf("ICD queries over the probe batch: %d, each attention's mass off 1 by at most %.2g; %d images with real queries != GT boxes\n",
         queries, worst, bad_real);
  CHECK_MSG(queries > 0 && worst < 1e-4 && bad_real == 0, "%d queries, mass off by %g, %d images wrong", queries, worst, bad_real);
  /* The panel with the picked cell in image 0's first GT box. */
  const KdSnapField *g = kd_snapshot_find(s, "img0.gt");
  CHECK(g && g->shape[0] > 0);
  if (g && g->shape[0] > 0) {
    KdFigMap e = kd_snapview_map(s, 0, v.level, "t_energy");
    const double stride = s->strides[v.level], cx = (g->data[0] + g->data[2]) / 2, cy = (g->data[1] + g->data[3]) / 2;
    KdSnapFigView w = v;
    w.pick = (KdFigMark){1, (floor(cx / stride) + 0.5) / e.w, (floor(cy / stride) + 0.5) / e.h};
    KdSnapFigStore *st = kd_snapfig_store_new();
    KdFigPanel fp;
    CHECK_MSG(kd_snapfig_build(kd_snapfig_find("icd"), &w, st, &fp, &err) == 0, "%s", err.msg);
    const KdFigMaps *m = fp.spec;
    CHECK_MSG(m->n >= 2 && strstr(st->title, "picked cell's") && strstr(m->items[0].title, "GT query") &&
                  strstr(m->items[1].title, "fake query"),
              "icd panel: %d maps, title %s, first %s", m->n, st->title, m->n ? m->items[0].title : "-");
    printf("icd panel: %s; %d maps (%s, %s)\n", st->title, m->n, m->items[0].title, m->n > 1 ? m->items[1].title : "-");
    kd_snapfig_store_free(st);
  }
  gtk_window_destroy(GTK_WINDOW(win));
  pump(200);
  if (!check_failures) fixture_rmrf(dir);
  return check_status("test_icdpanel");
}
