/* Every figure kind rendered from synthetic data to PDF and SVG at single-
 * (3.3 in) and double-column (6.9 in) widths and checked by
 * check_export.py (pdfinfo page size, pdffonts embedded TrueType and no
 * Type 3, pdftoppm renders non-blank, SVG parses and has the size); the
 * PNG export of every kind equals an on-screen rendering of the same panel
 * at the same pixel size, byte for byte; bad export requests fail with a
 * message. Usage: test_figures [OUTDIR [CHECKER]]. Exit 77 when poppler's
 * tools are missing (after the checks that do not need them). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "export.h"
#include "fig_data.h"

typedef struct Kind {
  const char *name;
  KdFigPanel panel;
} Kind;

static FigData D;

/* Specs live in statics: panels borrow them. */
static KdFigDetView det;
static KdFigMapItem gap_items[4], ovl_items[3], mask_items[2];
static KdFigMapGroup gap_groups[3], ovl_groups[3], mask_groups[2];
static KdFigMaps gap_maps, ovl_maps, mask_maps;
static KdFigImage under;
static KdFigAttention attn;
static KdFigGradMaps gmaps;
static KdFigMap grad_maps[FD_NSRC];
static KdFigScatter scat;
static KdFigSeries loss_series[3], ap_series[2], log_series[2];
static KdFigMarker markers[2] = {{1000, "\xce\xbb_kd 1\xe2\x86\x92" "2"}, {2200, "\xcf\x84 1\xe2\x86\x92" "2"}};
static KdFigPlot logplot;
static KdFigCurves curves;
static KdFigGradCurves gcurves;
static const double *gfg[FD_NSRC], *gbg[FD_NSRC];
static KdFigGridRow rows[FD_NIMG];
static KdFigCol cols[5] = {KD_FIG_COL_IMAGE, KD_FIG_COL_TEACHER, KD_FIG_COL_STUDENT,
                           KD_FIG_COL_GAP, KD_FIG_COL_MASK};
static KdFigGrid grid, grid_ovl;
static const float *ch_vals[2];
static const char *ch_names[2] = {"teacher", "student"};
static KdFigBars bars;

static KdFigMap map16(const float *v, int level) {
  int n = 16 >> level;
  return (KdFigMap){v, n, n};
}

static int build_kinds(Kind *k) {
  int n = 0;
  under = (KdFigImage){D.rgb[0], FD_IMG, FD_IMG, 0};
  det = (KdFigDetView){.image = under, .gt = D.gt[0], .teacher = D.teacher[0], .student = D.student[0],
                       .ngt = FD_NBOX, .nteacher = FD_NBOX + 1, .nstudent = FD_NBOX + 1,
                       .class_names = fd_classes, .nclasses = 10, .score_thresh = 0.05f, .labels = 1,
                       .legend = 1, .title = "probe image 0: boxes"};
  k[n++] = (Kind){"detview", kd_fig_detview_panel(&det)};

  gap_items[0] = (KdFigMapItem){map16(D.t_energy[0][0], 0), "teacher energy", 0};
  gap_items[1] = (KdFigMapItem){map16(D.s_energy[0][0], 0), "student energy", 0};
  gap_items[2] = (KdFigMapItem){map16(D.gap[0][0], 0), "gap (S\xe2\x88\x92T)\xc2\xb2", 1};
  gap_items[3] = (KdFigMapItem){map16(D.signed_diff, 0), "S\xe2\x88\x92T", 2};
  gap_groups[0] = (KdFigMapGroup){KD_CMAP_VIRIDIS, {0, 0, 0}, "energy (shared)"};
  gap_groups[1] = (KdFigMapGroup){KD_CMAP_MAGMA, {0, 0, 0}, "gap"};
  gap_groups[2] = (KdFigMapGroup){KD_CMAP_DIVERGING, {0, 0, 0}, "signed"};
  gap_maps = (KdFigMaps){gap_items, 4, gap_groups, 3, NULL, 0, "P3: teacher vs student", {0, 0, 0}};
  k[n++] = (Kind){"maps", kd_fig_maps_panel(&gap_maps)};

  ovl_items[0] = (KdFigMapItem){map16(D.t_energy[0][1], 1), "teacher P4", 0};
  ovl_items[1] = (KdFigMapItem){map16(D.s_energy[0][1], 1), "student P4", 1};
  ovl_items[2] = (KdFigMapItem){map16(D.gap[0][1], 1), "gap P4", 2};
  ovl_groups[0] = (KdFigMapGroup){KD_CMAP_VIRIDIS, {0, 0, 0}, "teacher"};
  ovl_groups[1] = (KdFigMapGroup){KD_CMAP_VIRIDIS, {0, 0, 0}, "student (own range)"};
  ovl_groups[2] = (KdFigMapGroup){KD_CMAP_MAGMA, {0, 0, 0}, "gap"};
  ovl_maps = (KdFigMaps){ovl_items, 3, ovl_groups, 3, &under, 0.6, "P4 over the image", {0, 0, 0}};
  k[n++] = (Kind){"maps_overlay", kd_fig_maps_panel(&ovl_maps)};

  mask_items[0] = (KdFigMapItem){map16(D.mask[0][0], 0), "GT foreground", 0};
  mask_items[1] = (KdFigMapItem){map16(D.fgd_mask[0], 0), "FGD scale", 1};
  mask_groups[0] = (KdFigMapGroup){KD_CMAP_GRAY, {0, 1, 0}, "mask"};
  mask_groups[1] = (KdFigMapGroup){KD_CMAP_VIRIDIS, {0, 0, 0}, "weight"};
  mask_maps = (KdFigMaps){mask_items, 2, mask_groups, 2, NULL, 0, "P3 masks", {1, 0.3, 0.6}}; /* a marked cell drawn */
  k[n++] = (Kind){"masks", kd_fig_maps_panel(&mask_maps)};

  attn = (KdFigAttention){map16(D.t_att, 0), map16(D.s_att, 0), D.t_ch, D.s_ch, FD_NCH, 1, 0,
                          "P3 attention", {0, 0, 0}};
  k[n++] = (Kind){"attention", kd_fig_attention_panel(&attn)};

  for (int s = 0; s < FD_NSRC; s++) grad_maps[s] = map16(D.grad[s], 0);
  gmaps = (KdFigGradMaps){fd_sources, grad_maps, D.grad_fg, D.grad_bg, FD_NSRC, 0, 0,
                          "P3 gradient magnitude by source", {0, 0, 0}};
  k[n++] = (Kind){"gradmaps", kd_fig_gradmaps_panel(&gmaps)};

  ch_vals[0] = D.t_ch;
  ch_vals[1] = D.s_ch;
  bars = (KdFigBars){"channel attention", "channel", "attention", ch_names, ch_vals, 2, FD_NCH,
                     NULL, -1, 0, NULL, 0};
  k[n++] = (Kind){"bars", kd_fig_bars_panel(&bars)};

  scat = (KdFigScatter){D.t_xy, D.s_xy, D.inst_cls, FD_NINST, D.proto_xy, D.proto_cls, 10,
                        fd_classes, 10, 1, "instance features (projection)", "component 1",
                        "component 2"};
  k[n++] = (Kind){"scatter", kd_fig_scatter_panel(&scat)};

  log_series[0] = (KdFigSeries){"detection", D.step, D.loss_det, FD_STEPS, -1, 0, 0};
  log_series[1] = (KdFigSeries){"distillation", D.step, D.loss_kd, FD_STEPS, -1, 0, 0};
  logplot = (KdFigPlot){.title = "losses, log-log", .xlabel = "step", .ylabel = "loss",
                        .series = log_series, .nseries = 2, .markers = markers, .nmarkers = 2,
                        .logx = 1, .logy = 1, .smooth = {KD_SMOOTH_MEAN, 0, 50},
                        .xmin = NAN, .xmax = NAN, .ymin = NAN, .ymax = NAN};
  k[n++] = (Kind){"plot_loglog", kd_fig_plot_panel(&logplot)};

  loss_series[0] = (KdFigSeries){"total", D.step, D.loss_total, FD_STEPS, -1, 1, 0};
  loss_series[1] = (KdFigSeries){"detection", D.step, D.loss_det, FD_STEPS, -1, 0, 0};
  loss_series[2] = (KdFigSeries){"distillation", D.step, D.loss_kd, FD_STEPS, -1, 0, 0};
  ap_series[0] = (KdFigSeries){"AP", D.eval_step, D.ap, FD_NEVAL, 0, 0, 1};
  ap_series[1] = (KdFigSeries){"AP50", D.eval_step, D.ap50, FD_NEVAL, 1, 0, 1};
  curves.loss = (KdFigPlot){.title = "training", .ylabel = "loss", .series = loss_series,
                            .nseries = 3, .markers = markers, .nmarkers = 2, .logy = 1,
                            .smooth = {KD_SMOOTH_EMA, 0.9, 0}, .xmin = NAN, .xmax = NAN,
                            .ymin = NAN, .ymax = NAN};
  curves.ap = (KdFigPlot){.xlabel = "step", .ylabel = "COCO AP", .series = ap_series,
                          .nseries = 2, .markers = markers, .nmarkers = 2, .xmin = NAN,
                          .xmax = NAN, .ymin = NAN, .ymax = NAN};
  k[n++] = (Kind){"curves", kd_fig_curves_panel(&curves)};

  for (int s = 0; s < FD_NSRC; s++) {
    gfg[s] = D.gfg[s];
    gbg[s] = D.gbg[s];
  }
  gcurves = (KdFigGradCurves){fd_sources, D.gstep, gfg, gbg, FD_NSRC, FD_NGSTEP, markers, 2, 0,
                              {KD_SMOOTH_EMA, 0.6, 0}, "gradient on student features"};
  k[n++] = (Kind){"gradcurves", kd_fig_gradcurves_panel(&gcurves)};

  for (int i = 0; i < FD_NIMG; i++) {
    static char labels[FD_NIMG][16];
    snprintf(labels[i], sizeof labels[i], "image %d", i * 7);
    rows[i].label = labels[i];
    rows[i].det = (KdFigDetView){.image = {D.rgb[i], FD_IMG, FD_IMG, 0}, .gt = D.gt[i],
                                 .teacher = D.teacher[i], .student = D.student[i], .ngt = FD_NBOX,
                                 .nteacher = FD_NBOX + 1, .nstudent = FD_NBOX + 1,
                                 .class_names = fd_classes, .nclasses = 10,
                                 .score_thresh = 0.05f, .labels = 1};
    rows[i].teacher = map16(D.t_energy[i][0], 0);
    rows[i].student = map16(D.s_energy[i][0], 0);
    rows[i].gap = map16(D.gap[i][0], 0);
    rows[i].mask = map16(D.mask[i][0], 0);
  }
  grid = (KdFigGrid){.rows = rows, .nrows = FD_NIMG, .cols = cols, .ncols = 5,
                     .energy_cmap = KD_CMAP_VIRIDIS, .gap_cmap = KD_CMAP_MAGMA,
                     .mask_cmap = KD_CMAP_GRAY, .title = "P3 features on three probe images"};
  k[n++] = (Kind){"grid", kd_fig_grid_panel(&grid)};
  grid_ovl = grid;
  grid_ovl.independent_ts = 1;
  grid_ovl.overlay = 0.65;
  grid_ovl.ncols = 4; /* no mask column */
  grid_ovl.title = NULL;
  k[n++] = (Kind){"grid_overlay", kd_fig_grid_panel(&grid_ovl)};
  return n;
}

/* The PNG export equals an on-screen rendering at the same pixel size. */
static void check_png_matches_screen(const char *dir, const Kind *k, double width_in, double dpi,
                                     const KdFigStyle *st) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s_%.1fin_%gdpi.png", dir, k->name, width_in, dpi);
  KdExportOpts o;
  kd_export_opts_default(&o);
  o.width = width_in;
  o.dpi = dpi;
  KdError err = {{0}};
  int rc = kd_export_panel(path, -1, &k->panel, st, &o, &err);
  CHECK_MSG(rc == 0, "%s: %s", path, err.msg);
  if (rc) return;
  int wpx, hpx;
  CHECK(kd_export_geometry(&k->panel, st, &o, NULL, NULL, &wpx, &hpx, &err) == 0);
  /* What a GTK draw function does: an ARGB32 target, device scale dpi/72. */
  double scale = dpi / 72.0;
  cairo_surface_t *screen = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, wpx, hpx);
  cairo_t *cr = cairo_create(screen);
  kd_fig_paint(cr, &k->panel, st, wpx / scale, hpx / scale, scale);
  CHECK(cairo_status(cr) == CAIRO_STATUS_SUCCESS);
  cairo_destroy(cr);
  cairo_surface_flush(screen);

  cairo_surface_t *png = cairo_image_surface_create_from_png(path);
  CHECK_MSG(cairo_surface_status(png) == CAIRO_STATUS_SUCCESS, "%s does not load", path);
  if (cairo_surface_status(png) == CAIRO_STATUS_SUCCESS) {
    CHECK(cairo_image_surface_get_width(png) == wpx && cairo_image_surface_get_height(png) == hpx);
    long diff = 0;
    double mean = 0, var = 0;
    if (cairo_image_surface_get_width(png) == wpx && cairo_image_surface_get_height(png) == hpx) {
      const unsigned char *a = cairo_image_surface_get_data(screen);
      const unsigned char *b = cairo_image_surface_get_data(png);
      int sa = cairo_image_surface_get_stride(screen), sb = cairo_image_surface_get_stride(png);
      for (int y = 0; y < hpx; y++)
        for (int x = 0; x < wpx; x++) {
          uint32_t pa, pb;
          memcpy(&pa, a + (size_t)y * sa + 4 * x, 4);
          memcpy(&pb, b + (size_t)y * sb + 4 * x, 4);
          diff += (pa & 0xFFFFFF) != (pb & 0xFFFFFF);
          double g = (pb & 0xFF);
          mean += g;
          var += g * g;
        }
    }
    double npx = (double)wpx * hpx;
    mean /= npx;
    var = var / npx - mean * mean;
    CHECK_MSG(diff == 0, "%s: %ld pixels differ from the screen rendering", k->name, diff);
    CHECK_MSG(var > 100, "%s: PNG looks blank (variance %g)", k->name, var);
  }
  cairo_surface_destroy(png);
  cairo_surface_destroy(screen);
}

static void check_bad_requests(const char *dir, const Kind *k) {
  KdError err = {{0}};
  KdExportOpts o;
  kd_export_opts_default(&o);
  char path[512];
  snprintf(path, sizeof path, "%s/bad.xyz", dir);
  CHECK(kd_export_panel(path, -1, &k->panel, NULL, &o, &err) == -1);
  CHECK(strstr(err.msg, ".png") != NULL);
  snprintf(path, sizeof path, "%s/tiny.pdf", dir);
  o.width = 0.01;
  CHECK(kd_export_panel(path, -1, &k->panel, NULL, &o, &err) == -1);
  CHECK(strstr(err.msg, "width") != NULL);
  o.width = 3.3;
  o.dpi = 1e6;
  snprintf(path, sizeof path, "%s/huge.png", dir);
  CHECK(kd_export_panel(path, -1, &k->panel, NULL, &o, &err) == -1);
  CHECK(strstr(err.msg, "dpi") != NULL);
  o.dpi = 300;
  CHECK(kd_export_panel("/nonexistent-dir/x.pdf", -1, &k->panel, NULL, &o, &err) == -1);
  struct stat sb;
  CHECK(stat(path, &sb) != 0); /* nothing half-written */
  /* Units: 88 mm is 249.4 pt. */
  CHECK_NEAR(kd_export_to_pt(88, KD_UNIT_MM), 88 / 25.4 * 72, 1e-9);
  CHECK(kd_export_format_from_path("Fig.PDF") == KD_EXPORT_PDF);
}

/* Hover readouts: a 2x2 map of 1 2 / 3 4 scanned down its left and right
 * halves reads 1 then 3, and 2 then 4; the title and colorbar read
 * nothing. The curves figure reads the values at the nearest step. */
static void check_pick(const KdFigStyle *st) {
  static const float v[4] = {1, 2, 3, 4};
  KdFigMapItem item = {{v, 2, 2}, "gap", 0};
  KdFigMapGroup grp = {KD_CMAP_VIRIDIS, {0, 0, 0}, "energy"};
  KdFigMaps m = {&item, 1, &grp, 1, NULL, 0, "title", {0, 0, 0}};
  KdFigPanel p = kd_fig_maps_panel(&m);
  const double w = 200, h = kd_fig_maps_height(w, st, &m);
  double map_y0 = h, map_y1 = 0;
  KdFigPick k;
  for (int half = 0; half < 2; half++) {
    char seen[8] = "";
    int ns = 0, nothing_at_top = 0;
    for (double y = 0; y < h; y += 0.5) {
      if (!kd_fig_pick(&p, st, w, h, w * (0.25 + 0.5 * half), y, &k)) {
        if (ns == 0 && y < 3) nothing_at_top = 1;
        continue;
      }
      map_y0 = fmin(map_y0, y), map_y1 = fmax(map_y1, y);
      const char *val = strrchr(k.text, ' ');
      CHECK_MSG(!strncmp(k.text, "(x ", 3) && strstr(k.text, " of 2x2: gap "), "pick text '%s'", k.text);
      CHECK(k.cell.on && (half ? k.cell.u >= 0.5 && k.cell.u < 1 : k.cell.u >= 0 && k.cell.u < 0.5));
      if (val && (ns == 0 || seen[ns - 1] != val[1]) && ns < 7) seen[ns++] = val[1];
    }
    seen[ns] = 0;
    CHECK_MSG(!strcmp(seen, half ? "24" : "13"), "scanning the %s half read '%s'", half ? "right" : "left", seen);
    CHECK(nothing_at_top);
  }
  CHECK(!kd_fig_pick(&p, st, w, h, w / 2, h - 1, &k) && !k.cell.on); /* the colorbar */

  /* A mark at (0.75, 0.25) outlines the top-right cell and nothing else. */
  cairo_surface_t *img[2];
  for (int i = 0; i < 2; i++) {
    m.mark = (KdFigMark){i, 0.75, 0.25};
    img[i] = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)w, (int)ceil(h));
    cairo_t *cr = cairo_create(img[i]);
    kd_fig_paint(cr, &p, st, w, h, 1.0);
    cairo_destroy(cr);
    cairo_surface_flush(img[i]);
  }
  int x0 = (int)w, x1 = -1, y0 = (int)h, y1 = -1, stride = cairo_image_surface_get_stride(img[0]);
  const unsigned char *d0 = cairo_image_surface_get_data(img[0]), *d1 = cairo_image_surface_get_data(img[1]);
  for (int y = 0; y < (int)ceil(h); y++)
    for (int x = 0; x < (int)w; x++)
      if (memcmp(d0 + y * stride + 4 * x, d1 + y * stride + 4 * x, 4)) {
        x0 = x < x0 ? x : x0, x1 = x > x1 ? x : x1;
        y0 = y < y0 ? y : y0, y1 = y > y1 ? y : y1;
      }
  double mid = (map_y0 + map_y1) / 2;
  CHECK_MSG(x1 >= 0 && x0 > w / 2 - 3 && y0 >= map_y0 - 3 && y1 < mid + 3 && y1 > y0 + 10,
            "mark drew x %d..%d y %d..%d (map y %.1f..%.1f)", x0, x1, y0, y1, map_y0, map_y1);
  cairo_surface_destroy(img[0]);
  cairo_surface_destroy(img[1]);

  static const double xs[3] = {10, 20, 30}, ys[3] = {0.5, 0.25, 0.125}, ax[1] = {30}, ay[1] = {0.42};
  KdFigSeries ls = {"det.cls", xs, ys, 3, -1, 0, 0}, as = {"AP", ax, ay, 1, -1, 0, 1};
  KdFigCurves c = {.loss = {.series = &ls, .nseries = 1, .xmin = NAN, .xmax = NAN, .ymin = NAN, .ymax = NAN},
                   .ap = {.series = &as, .nseries = 1, .xmin = NAN, .xmax = NAN, .ymin = NAN, .ymax = NAN}};
  KdFigPanel cp = kd_fig_curves_panel(&c);
  double ch = kd_fig_curves_height(w * 2, st, &c);
  int got_mid = 0, got_ap = 0;
  for (double y = 0; y < ch; y += 1)
    for (double x = 0; x < w * 2; x += 1) {
      if (!kd_fig_pick(&cp, st, w * 2, ch, x, y, &k)) continue;
      got_mid |= !strcmp(k.text, "step 20: det.cls 0.25");
      got_ap |= !strcmp(k.text, "step 30: AP 0.42");
    }
  CHECK_MSG(got_mid && got_ap, "curves readouts: step 20 %d, AP at 30 %d", got_mid, got_ap);
}

/* A binary mask gets a two-colour key (0, 1), a soft one a colorbar with
 * interior ticks: the PDFs' text says which. */
static void check_binary_key(const char *dir) {
  static float bin[64], soft[64];
  for (int i = 0; i < 64; i++) bin[i] = (i % 8 > 2 && i / 8 > 3) ? 1 : 0, soft[i] = (float)(i % 8) / 7;
  const float *maps[2] = {bin, soft};
  for (int k = 0; k < 2; k++) {
    KdFigMapItem item = {{maps[k], 8, 8}, "GT foreground", 0};
    KdFigMapGroup grp = {KD_CMAP_VIRIDIS, {0, 1, 0}, "mask"};
    KdFigMaps m = {&item, 1, &grp, 1, NULL, 0, NULL, {0, 0, 0}};
    KdFigPanel p = kd_fig_maps_panel(&m);
    char path[512], cmd[1200], out[4096] = "";
    snprintf(path, sizeof path, "%s/mask_%s.pdf", dir, k ? "soft" : "binary");
    KdExportOpts o;
    kd_export_opts_default(&o);
    KdError err = {{0}};
    CHECK_MSG(kd_export_panel(path, -1, &p, NULL, &o, &err) == 0, "%s", err.msg);
    snprintf(cmd, sizeof cmd, "pdftotext '%s' -", path);
    FILE *f = popen(cmd, "r");
    size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[n] = 0;
    if (f) pclose(f);
    int ticks = strstr(out, "0.2") || strstr(out, "0.4") || strstr(out, "0.5");
    CHECK_MSG(strstr(out, "mask") && (k ? ticks : !ticks), "%s mask: %s", k ? "soft" : "binary", out);
  }
}

static int have(const char *tool) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
  return system(cmd) == 0;
}

int main(int argc, char **argv) {
  const char *dir = argc > 1 ? argv[1] : "figures";
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "cannot create %s\n", dir);
    return 1;
  }
  fd_build(&D);
  Kind kinds[32];
  int nk = build_kinds(kinds);
  KdFigStyle st;
  kd_fig_style_default(&st);
  KdFigStyle lettered = st;
  lettered.panel_letters = 1;

  char manifest[512];
  snprintf(manifest, sizeof manifest, "%s/manifest.txt", dir);
  FILE *mf = fopen(manifest, "w");
  CHECK(mf != NULL);
  if (!mf) return check_status("test_figures");
  const double widths[2] = {KD_EXPORT_SINGLE_COLUMN_IN, KD_EXPORT_DOUBLE_COLUMN_IN};
  for (int i = 0; i < nk; i++) {
    const KdFigStyle *s = !strncmp(kinds[i].name, "grid", 4) || !strcmp(kinds[i].name, "curves")
                              ? &lettered : &st;
    for (int w = 0; w < 2; w++)
      for (int f = 0; f < 2; f++) {
        char path[512];
        const char *ext = f ? "svg" : "pdf";
        snprintf(path, sizeof path, "%s/%s_%.1fin.%s", dir, kinds[i].name, widths[w], ext);
        KdExportOpts o;
        kd_export_opts_default(&o);
        o.width = widths[w];
        o.title = kinds[i].name;
        KdError err = {{0}};
        int rc = kd_export_panel(path, -1, &kinds[i].panel, s, &o, &err);
        CHECK_MSG(rc == 0, "%s: %s", path, err.msg);
        double wpt, hpt;
        kd_export_geometry(&kinds[i].panel, s, &o, &wpt, &hpt, NULL, NULL, &err);
        /* Fixed layouts: a sensible height for the width. */
        CHECK_MSG(hpt > 0.2 * wpt && hpt < 2.5 * wpt + 200, "%s: %g x %g pt", path, wpt, hpt);
        fprintf(mf, "%s %.4f %.4f\n", path, wpt, hpt);
      }
    check_png_matches_screen(dir, &kinds[i], 3.3, 150, s);
    check_png_matches_screen(dir, &kinds[i], 6.9, 96, s);
  }
  fclose(mf);
  check_bad_requests(dir, &kinds[0]);
  check_pick(&st);

  /* The same panel at a fixed size in mm exports to that page size. */
  KdExportOpts o;
  kd_export_opts_default(&o);
  o.unit = KD_UNIT_MM;
  o.width = 88;
  o.height = 60;
  o.font_pt = 7;
  double wpt, hpt;
  KdError err = {{0}};
  CHECK(kd_export_geometry(&kinds[0].panel, &st, &o, &wpt, &hpt, NULL, NULL, &err) == 0);
  CHECK_NEAR(hpt, 60 / 25.4 * 72, 1e-9);

  const char *tools[3] = {"pdfinfo", "pdftoppm", "pdffonts"};
  for (int t = 0; t < 3; t++)
    if (!have(tools[t])) {
      printf("test_figures: %s missing (poppler-utils); skipping the PDF/SVG file checks\n",
             tools[t]);
      kd_fig_text_shutdown();
  cairo_debug_reset_static_data();
      return check_failures ? 1 : 77;
    }
  const char *src = getenv("KD_SOURCE_ROOT");
  char checker[512], cmd[1200];
  if (argc > 2)
    snprintf(checker, sizeof checker, "%s", argv[2]);
  else
    snprintf(checker, sizeof checker, "%s/tests/ui/check_export.py", src ? src : ".");
  if (!have("/usr/bin/python3")) {
    printf("test_figures: /usr/bin/python3 missing; skipping the file checks\n");
    kd_fig_text_shutdown();
  cairo_debug_reset_static_data();
    return check_failures ? 1 : 77;
  }
  if (have("pdftotext")) check_binary_key(dir);
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s'", checker, manifest);
  int rc = system(cmd);
  CHECK_MSG(rc == 0, "check_export.py failed (status %d)", rc);
  kd_fig_text_shutdown();
  cairo_debug_reset_static_data();
  return check_status("test_figures");
}
