/* Global knowledge in the window, in-process under Xvfb: a live gk run
 * (the fixture's student and random teacher, a small PGM pool) has
 * prototypes in its snapshots; the prototypes panel replaces the
 * projection panel; the figure's student plane is the Procrustes fit (the
 * paired prototypes end closer than without it); a real click on the
 * "student" key hides the student's points and a second one shows them;
 * the pointer on a point reads out its class and q_s, q_t, w. Skips (77)
 * without a display. */
#include <gdk/x11/gdkx.h>
#include <gtk/gtk.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../train/run_fixture.h"
#include "check.h"
#include "probe/maps.h"
#include "snapfig_priv.h"
#include "ui_drive.h"
#include "ui_live.h"
#include "ui_wait.h"
#include "window.h"

/* The mean distance of the paired prototypes on the figure. */
static double pair_gap(const KdFigProtos *f) {
  double d = 0;
  for (int i = 0; i < f->np; i++) d += hypot(f->pt_xy[2 * i] - f->ps_xy[2 * i], f->pt_xy[2 * i + 1] - f->ps_xy[2 * i + 1]);
  return f->np ? d / f->np : NAN;
}

/* Where on p the pick reports text starting with `what` (a key when key >= 0). */
static int find_pick(KdsPanel *p, const char *what, int key, double *cx, double *cy) {
  int pw = gtk_widget_get_width(GTK_WIDGET(p)), ph = gtk_widget_get_height(GTK_WIDGET(p));
  KdFigPick k;
  for (int y = 0; y < ph; y += 2)
    for (int x = 0; x < pw; x += 2)
      if (kds_panel_pick(p, x, y, &k) && (key < 0 || k.key == key) && !strncmp(k.text, what, strlen(what))) {
        *cx = x, *cy = y;
        return 1;
      }
  return 0;
}

static void click(KdsPanel *p, double cx, double cy, int press) {
  unsigned long xid = 0;
  int X = 0, Y = 0;
  CHECK(ui_point(GTK_WIDGET(p), cx / gtk_widget_get_width(GTK_WIDGET(p)), cy / gtk_widget_get_height(GTK_WIDGET(p)), &xid, &X, &Y));
  ui_xdo("mousemove --window %lu %d %d%s", xid, X, Y, press ? " click 1" : "");
  pump(400);
}

int main(void) {
  int skip = ui_test_start();
  if (skip) return skip;
  char dir[1024], data[2048], run[2100], tcfg[2100], tck[2100];
  CHECK(fixture_tmpdir(dir, sizeof dir, "gkpanel") == 0 && fixture_data(dir, data, sizeof data) == 0);
  snprintf(run, sizeof run, "%s/run", dir);
  CHECK(fixture_teacher(dir, tcfg, sizeof tcfg, tck, sizeof tck) == 0);
  KdError err;
  KdConfig *cfg = fixture_config(data, 100000);
  const char *kv[][2] = {{"teacher.config", tcfg}, {"teacher.checkpoint", tck}, {"train.threads", "1"}, {"distill.methods", "gk"},
                         {"gk.finest_scale", "11"}, {"gk.min_size", "4"}, {"gk.max_images", "16"}, {"probe.budget", "0.5"},
                         {"train.seed", "7"}}; /* another init than the teacher's */
  for (size_t k = 0; cfg && k < sizeof kv / sizeof kv[0]; k++) CHECK_MSG(kd_config_set(cfg, kv[k][0], kv[k][1], &err) == 0, "%s", err.msg);
  if (!cfg) return 1;
  KdsWindow *win = ui_live_window(cfg, run, 2, 120000);
  CHECK_MSG(win != NULL, "no live run with two snapshots");
  if (!win) return check_status("test_gkpanel");
  KdsPanel *pp = ui_live_panel(win, "prototypes"), *proj = ui_live_panel(win, "projection");
  CHECK_MSG(pp && proj, "no prototypes or projection panel");
  if (!pp || !proj) return check_status("test_gkpanel");
  CHECK_MSG(gtk_widget_get_mapped(GTK_WIDGET(pp)) && !gtk_widget_get_mapped(GTK_WIDGET(proj)),
            "the prototypes panel should replace the projection panel (mapped: %d, %d)", gtk_widget_get_mapped(GTK_WIDGET(pp)),
            gtk_widget_get_mapped(GTK_WIDGET(proj)));
  /* The level with instances of the probe images. */
  KdSnapFigView v;
  kds_panel_view_snapfig(pp, &v);
  KdFigPanel fp;
  CHECK(kds_panel_build(pp, &fp));
  const KdFigProtos *f = fp.spec;
  printf("prototypes panel at level %d: %d prototype pairs, %d instances, %d boxes on image %d\n", v.level, f->np, f->ni, f->nb, v.image);
  CHECK_MSG(f->np >= 2 && f->show_t && f->show_s, "%d prototypes", f->np);
  /* Procrustes: the fit against the student's own plane unaligned. */
  KdSnapFigStore *st = kd_snapfig_store_new();
  KdFigPanel fp2;
  CHECK(kd_snapfig_build(kd_snapfig_find("prototypes"), &v, st, &fp2, &err) == 0);
  const KdFigProtos *g = fp2.spec;
  char lv[16];
  kd_snapshot_level_name(v.snap, v.level, lv, sizeof lv);
  const KdSnapField *Ps = kd_snapshot_findf(v.snap, "gk.proto_s.%s", lv);
  float mean[512], axes[1024], var[3], *raw = malloc(sizeof(float) * 2 * (size_t)g->np);
  CHECK(Ps && Ps->shape[1] <= 512 && raw && kd_pca2(Ps->data, g->np, Ps->shape[1], mean, axes, var) == 0);
  double unaligned = 0;
  for (int i = 0; raw && Ps && i < g->np; i++) {
    kd_pca2_project(Ps->data + (size_t)i * Ps->shape[1], Ps->shape[1], mean, axes, raw + 2 * i);
    unaligned += hypot(g->pt_xy[2 * i] - raw[2 * i], g->pt_xy[2 * i + 1] - raw[2 * i + 1]);
  }
  unaligned /= g->np;
  printf("paired prototypes: mean distance %.6g aligned, %.6g on the student's own plane\n", pair_gap(g), unaligned);
  CHECK_MSG(pair_gap(g) <= unaligned + 1e-9, "the alignment moved the pairs apart (%g vs %g)", pair_gap(g), unaligned);
  free(raw);
  kd_snapfig_store_free(st);
  /* A real click on the student key hides its points; a second shows them. */
  ui_scroll_to(GTK_WIDGET(pp));
  double cx, cy;
  CHECK_MSG(find_pick(pp, "click: hide the student", 1, &cx, &cy), "no student key on the panel");
  click(pp, cx, cy, 1);
  CHECK(kds_panel_build(pp, &fp));
  f = fp.spec;
  CHECK_MSG(f->show_t && !f->show_s, "after a click on the student key: teacher %d, student %d", f->show_t, f->show_s);
  { /* the panel's export command carries the hidden side */
    KdSnapFigView hv;
    kds_panel_view_snapfig(pp, &hv);
    KdExportOpts eo;
    kd_export_opts_default(&eo);
    char cmd[4096];
    CHECK(kd_snapfig_command(kd_snapfig_find("prototypes"), &hv, run, kds_panel_style(), &eo, KD_EXPORT_PNG, "p.png", cmd, sizeof cmd) == 0);
    CHECK_MSG(strstr(cmd, " --hide student"), "export command without the hidden side: %s", cmd);
  }
  click(pp, cx, cy, 1);
  CHECK(kds_panel_build(pp, &fp));
  f = fp.spec;
  CHECK_MSG(f->show_t && f->show_s, "after a second click: teacher %d, student %d", f->show_t, f->show_s);
  /* The pointer on an instance or a prototype. */
  int inst = find_pick(pp, "instance ", -1, &cx, &cy);
  if (!inst) CHECK_MSG(find_pick(pp, "teacher prototype", -1, &cx, &cy), "no point to hover on");
  click(pp, cx, cy, 0);
  const char *text = NULL;
  kds_panel_readout(pp, NULL, &text);
  CHECK_MSG(text && (inst ? strstr(text, "q_s") && strstr(text, "w ") : strstr(text, "prototype") != NULL), "readout: %s", text ? text : "-");
  printf("hover: %s\n", text ? text : "-");
  const char *shots = g_getenv("KDS_SHOTS_DIR");
  if (shots) {
    char png[2200];
    snprintf(png, sizeof png, "%.2100s/gkpanel.png", shots);
    CHECK(ui_screenshot(png) == 0);
  }
  gtk_window_destroy(GTK_WINDOW(win));
  pump(200);
  if (!check_failures) fixture_rmrf(dir);
  return check_status("test_gkpanel");
}
