/* A PNG export equals the window's own panel: for every panel kind, the
 * `kdscope export` command the export dialog would print for the panel's
 * view (kds_panel_view_snapfig + kd_snapfig_command, with the screen's style)
 * renders a PNG whose pixels are exactly kds_panel_render's offscreen
 * rendering of the same snapshot at the same size. Also: the map panels
 * stay short at a wide window's width (maps capped, not huge squares).
 * Runs under Xvfb; skips (77) without a display or the data source.
 * Usage: test_export_panel KDSCOPE OUTDIR. */
#include <errno.h>
#include <gtk/gtk.h>
#include <sys/stat.h>

#include "check.h"
#include "panel.h"
#include "probe_run.h"
#include "snapfig.h"
#include "ui_loop.h"

/* Pixels (RGB) that differ between two images of the same size; -1 when
 * the sizes differ. */
static long diff_pixels(cairo_surface_t *a, cairo_surface_t *b) {
  int w = cairo_image_surface_get_width(a), h = cairo_image_surface_get_height(a);
  if (w != cairo_image_surface_get_width(b) || h != cairo_image_surface_get_height(b)) return -1;
  cairo_surface_flush(a);
  cairo_surface_flush(b);
  const unsigned char *da = cairo_image_surface_get_data(a), *db = cairo_image_surface_get_data(b);
  int sa = cairo_image_surface_get_stride(a), sb = cairo_image_surface_get_stride(b);
  long n = 0;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      uint32_t pa, pb;
      memcpy(&pa, da + (size_t)y * sa + 4 * x, 4);
      memcpy(&pb, db + (size_t)y * sb + 4 * x, 4);
      n += (pa & 0xFFFFFFu) != (pb & 0xFFFFFFu);
    }
  return n;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: test_export_panel KDSCOPE OUTDIR\n");
    return 1;
  }
  const char *kdscope = argv[1], *outdir = argv[2];
  int skip = ui_test_start();
  if (skip) return skip;
  if (mkdir(outdir, 0755) != 0 && errno != EEXIST) return 1;
  char dir[1024], run[2100];
  CHECK(fixture_tmpdir(dir, sizeof dir, "export-panel") == 0);
  CHECK(probe_run_make(dir, 12, 4, run, sizeof run) == 0);
  GError *e = NULL;
  KdsBridge *b = kds_bridge_new_follow(run, &e);
  CHECK_MSG(b != NULL, "%s", e ? e->message : "?");
  if (!b) return check_status("test_export_panel");
  kds_bridge_poll(b);
  int n = kds_bridge_snapshot_count(b);
  CHECK_MSG(n >= 2, "%d snapshots", n);
  KdsView view = {0};
  view.bridge = b;
  view.snap = n >= 2 ? kds_bridge_snapshot(b, n - 2, &e) : NULL; /* not the last: --step picks it */
  CHECK(view.snap != NULL);
  if (!view.snap) return check_status("test_export_panel");
  /* The window's choices, none at their default. */
  view.image = 1, view.level = 1, view.overlay = 0.6, view.independent = 1, view.logy = 1;
  view.smooth = (KdSmooth){KD_SMOOTH_EMA, 0.9, 50};
  view.mark = (KdFigMark){0, 0, 0}; /* no linked cell: exports never show one */

  const double dpi = 96, scale = dpi / 72;
  int npanels = 0;
  for (int i = 0; i < kd_snapfig_count(); i++) {
    if (kd_snapfig_at(i)->panel.span <= 0) continue; /* not a panel of the window */
    if (!kd_snapfig_shown(kd_snapfig_at(i), view.snap)) continue; /* a two-stage panel; this run is RetinaNet */
    npanels++;
    KdsPanel *p = g_object_ref_sink(kds_panel_new(kd_snapfig_at(i)->name));
    kds_panel_set_view(p, &view);
    const char *name = kds_panel_kind(p);
    const KdSnapFigKind *kind = kd_snapfig_find(name);
    CHECK_MSG(kind != NULL && kind == kds_panel_figure(p), "panel kind '%s' is not a figure name", name);
    if (!kind) continue;
    /* What the export dialog does, at the screen's font and line sizes. */
    KdSnapFigView sv;
    kds_panel_view_snapfig(p, &sv);
    sv.cursor_on = 0; /* the playhead is the window's, not the figure's */
    KdExportOpts o;
    kd_export_opts_default(&o);
    o.width = 8;
    o.dpi = dpi;
    char png[2300], cmd[4096], full[8192];
    snprintf(png, sizeof png, "%s/%s.png", outdir, name);
    CHECK(kd_snapfig_command(kind, &sv, run, kds_panel_style(), &o, KD_EXPORT_PNG, png, cmd, sizeof cmd) == 0);
    snprintf(full, sizeof full, "'%s'%s", kdscope, cmd + 7);
    int rc = system(full);
    CHECK_MSG(rc == 0, "%s -> %d", full, rc);
    cairo_surface_t *file = cairo_image_surface_create_from_png(png);
    CHECK_MSG(cairo_surface_status(file) == CAIRO_STATUS_SUCCESS, "%s does not load", png);
    int w = cairo_image_surface_get_width(file), h = cairo_image_surface_get_height(file);
    CHECK_MSG(w == 768, "%s: %d px wide", name, w);
    KdFigPanel fp;
    CHECK(kds_panel_build(p, &fp));
    double layout_h = kd_fig_panel_height(&fp, kds_panel_style(), w / scale);
    CHECK_MSG(fabs(h - layout_h * scale) <= 1, "%s: %d px tall, layout %.1f", name, h, layout_h * scale);
    cairo_surface_t *screen = kds_panel_render(p, w / scale, h / scale, scale);
    long d = diff_pixels(file, screen);
    CHECK_MSG(d == 0, "%s: the export differs from the panel in %ld pixels (`%s`)", name, d, cmd);
    char spng[2400];
    snprintf(spng, sizeof spng, "%s/%s-panel.png", outdir, name);
    cairo_surface_write_to_png(screen, spng);
    cairo_surface_destroy(screen);
    cairo_surface_destroy(file);

    /* A wide window: map rows keep their maps at most ~220 px tall. */
    if (!strcmp(name, "gap") || !strcmp(name, "masks")) {
      double hw = fp.height_for_width(1200, kds_panel_style(), fp.spec);
      CHECK_MSG(hw < 330, "%s: %.0f px tall at 1200 px wide", name, hw);
    }
    g_object_unref(p);
  }
  CHECK_MSG(npanels >= 7, "%d panel kinds in the window", npanels);
  kd_snapshot_free(view.snap);
  g_object_unref(b);
  if (!check_failures) fixture_rmrf(dir);
  else printf("kept %s for inspection\n", dir);
  return check_status("test_export_panel");
}
