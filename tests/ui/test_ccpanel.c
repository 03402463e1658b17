/* The attention panel of a picked pixel in the real window, in-process
 * under Xvfb, on a live CSGR run (csgr.temp_rel = 3): a real click on a
 * cell of the gap panel picks that pixel; the cross panel draws non-blank
 * for it, and its teacher and student maps equal a criss-cross softmax
 * recomputed here from the snapshot's stored features (a dense softmax over
 * the cells sharing the pixel's row or column, not the panel's code);
 * cells off the cross are NaN (drawn grey); an arrow key moves the pixel
 * one cell right; the pick-to-paint time is printed. argv[1]: the kdscope
 * binary (the export check: the dialog's command with --pixel); with
 * KDS_SHOTS_DIR set, a screenshot of the window there. Skips (77) without a display. */
#include <gdk/x11/gdkx.h>
#include <gtk/gtk.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../train/run_fixture.h"
#include "check.h"
#include "model/detector.h"
#include "model/safetensors.h"
#include "snapfig_priv.h"
#include "ui_drive.h"
#include "ui_wait.h"
#include "window.h"

static KdsWindow *win;

static gboolean have_snapshot(gpointer w) {
  KdsBridge *b = kds_window_get_bridge(w);
  return b && kds_bridge_snapshot_count(b) > 0;
}

static KdsPanel *panel_of(const char *kind) {
  for (int i = 0; i < kds_window_panel_count(win); i++)
    if (!strcmp(kds_panel_kind(kds_window_get_panel(win, i)), kind)) return kds_window_get_panel(win, i);
  return NULL;
}

/* The cross panel's spec and the view it was built from. */
static const struct SfCross *cross_spec(KdsPanel *p, KdSnapFigView *v) {
  KdFigPanel fp;
  kds_panel_view_snapfig(p, v);
  return kds_panel_build(p, &fp) && fp.spec ? fp.spec : NULL;
}

/* Worst |shown - expected| of side's relation of (h, w): the expected one a
 * dense softmax over the cells of row h and column w of the snapshot's
 * feature at tau; NaN shown off the cross. -1 when the layout is wrong. */
static double check_side(const KdSnapshot *s, const char *lv, char side, int h, int w, double tau, const float *shown) {
  const KdSnapField *f = kd_snapshot_findf(s, "img0.%s.mask.csgr.feat_%c", lv, side);
  if (!f || f->ndim != 3) return -1;
  const int C = f->shape[0], H = f->shape[1], W = f->shape[2], HW = H * W, u = h * W + w;
  double e[4096], mx = -INFINITY, sum = 0, worst = 0;
  if (HW > 4096) return -1;
  for (int q = 0; q < HW; q++) {
    e[q] = NAN;
    if (q / W != h && q % W != w) continue;
    double d = 0;
    for (int c = 0; c < C; c++) d += (double)f->data[c * HW + u] * f->data[c * HW + q];
    e[q] = d / sqrt((double)C) / tau;
    mx = fmax(mx, e[q]);
  }
  for (int q = 0; q < HW; q++)
    if (!isnan(e[q])) sum += exp(e[q] - mx);
  for (int q = 0; q < HW; q++) {
    if (isnan(e[q]) != isnan(shown[q])) return -1;
    if (!isnan(e[q])) worst = fmax(worst, fabs(exp(e[q] - mx) / sum - shown[q]));
  }
  return worst;
}

/* The picked cell the panel shows, checked against the snapshot. */
static void check_values(KdsPanel *cross, int want_h, int want_w) {
  KdSnapFigView v;
  const struct SfCross *x = cross_spec(cross, &v);
  CHECK_MSG(x && x->maps[0].n == 3, "the cross panel has no teacher / student / difference maps");
  if (!x || x->maps[0].n != 3) return;
  const KdFigMap *t = &x->items[0][0].map, *st = &x->items[0][1].map, *d = &x->items[0][2].map;
  int H = t->h, W = t->w, h, w;
  kd_snapfig_pick_cell(v.pick, H, W, &h, &w);
  CHECK_MSG(v.pick.on && h == want_h && w == want_w, "picked (%d, %d), expected (%d, %d)", h, w, want_h, want_w);
  char lv[16];
  kd_snapshot_level_name(v.snap, v.level, lv, sizeof lv);
  double et = check_side(v.snap, lv, 't', h, w, 3.0, t->v), es = check_side(v.snap, lv, 's', h, w, 3.0, st->v);
  CHECK_MSG(et >= 0 && et < 1e-6 && es >= 0 && es < 1e-6, "relation of (%d, %d) off the recomputation: teacher %g, student %g",
            h, w, et, es);
  double dmax = 0;
  int off = 0;
  for (int i = 0; i < H * W; i++) {
    if (isnan(t->v[i])) off++;
    else dmax = fmax(dmax, fabs(d->v[i] - (st->v[i] - t->v[i])));
  }
  CHECK_MSG(off == H * W - (H + W - 1) && dmax < 1e-7, "%d cells off the cross (want %d), difference off by %g", off,
            H * W - (H + W - 1), dmax);
  CHECK_MSG(x->nparts == 2 && x->maps[1].n >= 1, "no category maps (%d parts)", x->nparts);
  cairo_surface_t *s = kds_panel_render(cross, 900, 0, 1.0);
  double var = variance(s);
  cairo_surface_destroy(s);
  CHECK_MSG(var > 1.0, "the cross panel renders blank (variance %.3f)", var);
  printf("pixel (%d, %d) of %s %dx%d: teacher within %.2g, student within %.2g of the dense softmax; %d category maps; "
         "render variance %.0f\n", h, w, lv, H, W, et, es, x->maps[1].n, var);
}

/* The command the export dialog prints for the cross panel (with its
 * --pixel) writes, byte for byte, the PNG the panel's own view exports;
 * a --pixel off the grid is refused naming it. */
static void check_export(KdsPanel *cross, const char *kdscope, const char *run, const char *dir) {
  KdSnapFigView sv;
  kds_panel_view_snapfig(cross, &sv);
  sv.cursor_on = 0;
  const KdSnapFigKind *kind = kd_snapfig_find("cross");
  KdExportOpts o;
  kd_export_opts_default(&o);
  char a[2300], b[2300], cmd[4096], full[8192];
  snprintf(a, sizeof a, "%s/inproc_cross.png", dir);
  snprintf(b, sizeof b, "%s/cmd_cross.png", dir);
  KdSnapFigStore *store = kd_snapfig_store_new();
  KdFigPanel fp;
  KdError err = {{0}};
  CHECK_MSG(kd_snapfig_build(kind, &sv, store, &fp, &err) == 0 && kd_export_panel(a, KD_EXPORT_PNG, &fp, kds_panel_style(), &o, &err) == 0,
            "%s", err.msg);
  CHECK(kd_snapfig_command(kind, &sv, run, kds_panel_style(), &o, KD_EXPORT_PNG, b, cmd, sizeof cmd) == 0);
  CHECK_MSG(strstr(cmd, " --pixel ") && strstr(cmd, " --figure cross"), "%s", cmd);
  snprintf(full, sizeof full, "'%s'%s", kdscope, cmd + 7);
  CHECK_MSG(system(full) == 0, "%s", full);
  gchar *da = NULL, *db = NULL;
  gsize la = 0, lb = 0;
  CHECK_MSG(g_file_get_contents(a, &da, &la, NULL) && g_file_get_contents(b, &db, &lb, NULL) && la == lb && !memcmp(da, db, la),
            "`%s` gives another PNG than the panel's view (%zu vs %zu bytes)", cmd, (size_t)la, (size_t)lb);
  printf("export: %s (%zu bytes, equal to the in-process export)\n", cmd, (size_t)lb);
  g_free(da), g_free(db);
  snprintf(full, sizeof full, "'%s' export --run '%s' --figure cross --pixel 8,0 --out '%s' 2>&1 | grep -q 'outside the level'", kdscope,
           run, b);
  CHECK_MSG(system(full) == 0, "--pixel 8,0 on an 8x8 level was not refused as outside it");
  kd_snapfig_store_free(store);
}

int main(int argc, char **argv) {
  int skip = ui_test_start();
  if (skip) return skip;
  char dir[1024], data[2048], run[2100], tcfg[2100], tck[2100];
  CHECK(fixture_tmpdir(dir, sizeof dir, "ccpanel") == 0);
  CHECK(fixture_data(dir, data, sizeof data) == 0);
  snprintf(run, sizeof run, "%s/run", dir);
  CHECK(fixture_teacher(dir, tcfg, sizeof tcfg, tck, sizeof tck) == 0);
  KdError err;
  KdConfig *cfg = fixture_config(data, 100000);
  CHECK(cfg && kd_config_set(cfg, "teacher.config", tcfg, &err) == 0 && kd_config_set(cfg, "teacher.checkpoint", tck, &err) == 0 &&
        kd_config_set(cfg, "train.threads", "1", &err) == 0 && kd_config_set(cfg, "distill.methods", "csgr", &err) == 0 &&
        kd_config_set(cfg, "csgr.temp_rel", "3", &err) == 0);

  win = kds_window_new(NULL);
  gtk_window_set_default_size(GTK_WINDOW(win), 1600, 1000);
  KdsLayoutPrefs grid;
  kds_layout_prefs_default(&grid);
  grid.mode = KDS_LAYOUT_GRID;
  kds_layout_apply(kds_window_get_layout(win), &grid);
  gtk_window_present(GTK_WINDOW(win));
  KdRunOpts o = {0};
  o.session.out_dir = run;
  o.session.distill = 1;
  GError *e = NULL;
  KdsBridge *b = ui_open_run(cfg, &o, &e);
  CHECK_MSG(b != NULL, "%s", e ? e->message : "?");
  g_clear_error(&e);
  if (!b) return check_status("test_ccpanel");
  kds_window_set_bridge(win, b);
  g_object_unref(b);
  CHECK_MSG(wait_for(have_snapshot, win, 60000), "no snapshot within 60 s");
  pump(800);

  { /* what the stored features add to a snapshot */
    KdSnapFigView sv;
    kds_panel_view_snapfig(panel_of("gap"), &sv);
    size_t feat = 0, all = 0;
    for (int i = 0; sv.snap && i < sv.snap->nfields; i++) {
      const KdSnapField *fd = &sv.snap->fields[i];
      all += fd->numel * sizeof(float);
      if (strstr(fd->name, ".mask.csgr.feat_") || strstr(fd->name, ".mask.csgr.temps")) feat += fd->numel * sizeof(float);
    }
    printf("snapshot fields: %zu bytes, of which %zu the CSGR features and temperatures (%d images, %d levels, %d channels)\n",
           all, feat, sv.snap ? sv.snap->nimages : 0, sv.snap ? sv.snap->nlev : 0, sv.snap ? sv.snap->t_channels : 0);
    CHECK(feat > 0);
  }
  KdsPanel *gap = panel_of("gap"), *cross = panel_of("cross");
  CHECK(gap && cross);
  if (!gap || !cross) return check_status("test_ccpanel");
  /* A real click on the gap panel, on the cell at about a third across
   * the first map: the point found by the panel's own pick. */
  int pw = gtk_widget_get_width(GTK_WIDGET(gap)), ph = gtk_widget_get_height(GTK_WIDGET(gap));
  KdFigPick k;
  double cx = -1, cy = -1;
  for (int y = 0; y < ph && cx < 0; y += 3)
    for (int x = 0; x < pw / 3 && cx < 0; x += 3)
      if (kds_panel_pick(gap, x, y, &k) && k.cell.on && k.cell.u > 0.3 && k.cell.v > 0.55) cx = x + 1, cy = y + 1;
  CHECK_MSG(cx >= 0, "no map cell on the gap panel");
  kds_panel_pick(gap, cx, cy, &k);
  unsigned long xid;
  int X, Y;
  CHECK(ui_point(GTK_WIDGET(gap), cx / pw, cy / ph, &xid, &X, &Y));
  ui_xdo("mousemove --window %lu %d %d click 1", xid, X, Y);
  pump(400);
  KdSnapFigView v;
  const struct SfCross *x = cross_spec(cross, &v);
  CHECK(x != NULL);
  int H = x ? x->items[0][0].map.h : 1, W = x ? x->items[0][0].map.w : 1, h = (int)floor(k.cell.v * H), w = (int)floor(k.cell.u * W);
  check_values(cross, h, w);
  /* The arrow key, with the keyboard on the clicked panel. */
  ui_keys(GTK_WIDGET(gap), "key Right");
  pump(300);
  check_values(cross, h, w + 1 < W ? w + 1 : w);
  ui_keys(GTK_WIDGET(gap), "key Up");
  pump(300);
  check_values(cross, h > 0 ? h - 1 : 0, w + 1 < W ? w + 1 : w);
  double kmax, kmean;
  guint kn;
  kds_panel_pick_stats(&kmax, &kmean, &kn);
  printf("pick to paint (click handler to the cross panel's next paint): mean %.2f ms, max %.2f ms over %u picks\n", kmean, kmax, kn);
  CHECK_MSG(kn >= 3, "%u picks painted, expected 3", kn);
  if (argc > 1) check_export(cross, argv[1], run, dir);
  /* A screenshot for people to look at (ImageMagick's import), as the
   * other window tests: only when KDS_SHOTS_DIR asks for it. */
  const char *shots = g_getenv("KDS_SHOTS_DIR");
  if (shots) {
    char png[2200];
    snprintf(png, sizeof png, "%.2100s/ccpanel.png", shots);
    gtk_widget_grab_focus(GTK_WIDGET(cross)); /* scrolls nothing: the grid shows every panel */
    pump(300);
    CHECK(ui_screenshot(png) == 0);
  }
  gtk_window_destroy(GTK_WINDOW(win));
  pump(200);
  if (!check_failures) fixture_rmrf(dir);
  return check_status("test_ccpanel");
}
