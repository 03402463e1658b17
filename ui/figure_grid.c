/* The composite grid: rows = probe images (or levels), columns = image with
 * boxes | teacher energy | student energy | gap | mask (selectable), one
 * shared colour range and colorbar per column kind over all rows, column
 * titles, row labels, optional panel letters. */
#include <math.h>

#include "figure_priv.h"

static const char *default_titles[KD_FIG_NCOLS] = {"image", "teacher", "student", "gap",
                                                   "mask"};

/* Colour ranges: energy (teacher+student, or each alone), gap, mask. */
enum { RG_TEACHER, RG_STUDENT, RG_GAP, RG_MASK, RG_N };

typedef struct GridLayout {
  double title_h, head_h, label_w, gap, cell_w, cell_h, cb_h, legend_h;
  int has_image;
} GridLayout;

static int ncols(const KdFigGrid *g) {
  return g->ncols < KD_FIG_NCOLS * 2 ? g->ncols : KD_FIG_NCOLS * 2;
}

static int has_row_labels(const KdFigGrid *g) {
  for (int i = 0; i < g->nrows; i++)
    if (g->rows[i].label && *g->rows[i].label) return 1;
  return 0;
}

static const KdFigMap *cell_map(const KdFigGridRow *row, KdFigCol c) {
  switch (c) {
  case KD_FIG_COL_TEACHER: return &row->teacher;
  case KD_FIG_COL_STUDENT: return &row->student;
  case KD_FIG_COL_GAP: return &row->gap;
  case KD_FIG_COL_MASK: return &row->mask;
  default: return NULL;
  }
}

static double cell_aspect(const KdFigGrid *g) {
  if (g->nrows <= 0) return 1;
  const KdFigGridRow *r = &g->rows[0];
  if (r->det.image.w > 0 && r->det.image.h > 0) return (double)r->det.image.h / r->det.image.w;
  for (int c = KD_FIG_COL_TEACHER; c < KD_FIG_NCOLS; c++) {
    const KdFigMap *m = cell_map(r, (KdFigCol)c);
    if (m->w > 0 && m->h > 0) return (double)m->h / m->w;
  }
  return 1;
}

static void legend_keys(KdFigKey k[3]) {
  k[0] = (KdFigKey){"ground truth", {0}, 0, KD_FIG_KEY_BOX, 0, 0};
  k[1] = (KdFigKey){"teacher", {0}, 1, KD_FIG_KEY_BOX, 0, 0};
  k[2] = (KdFigKey){"student", {0}, 0, KD_FIG_KEY_BOX, 0, 0};
  kd_fig_palette(2, k[0].rgb);
  kd_fig_palette(0, k[1].rgb);
  kd_fig_palette(1, k[2].rgb);
}

static void grid_layout(const KdFigGrid *g, const KdFigStyle *st, double w, GridLayout *L) {
  int nc = ncols(g);
  L->title_h = kd_fig_title_height(st, g->title);
  L->head_h = st->font_pt * KD_FIG_LINE;
  L->label_w = has_row_labels(g) ? st->font_pt * (KD_FIG_LINE + 0.2) : 0;
  L->gap = st->font_pt * 0.35;
  L->cell_w = nc > 0 ? (w - L->label_w - (nc - 1) * L->gap) / nc : w;
  L->cell_h = L->cell_w * cell_aspect(g);
  L->has_image = 0;
  int has_map = 0;
  for (int c = 0; c < nc; c++) {
    if (g->cols[c] == KD_FIG_COL_IMAGE)
      L->has_image = 1;
    else
      has_map = 1;
  }
  L->cb_h = has_map ? kd_fig_colorbar_height(st, 1) + st->font_pt * 0.5 : 0;
  L->legend_h = 0;
  if (L->has_image) {
    KdFigKey k[3];
    legend_keys(k);
    cairo_t *cr = kd_fig_measure_cr(st);
    L->legend_h = kd_fig_legend(cr, st, 0, 0, w, k, 3, 0) + st->font_pt * 0.2;
    cairo_destroy(cr);
  }
}

double kd_fig_grid_height(double w, const KdFigStyle *st, const KdFigGrid *g) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  GridLayout L;
  grid_layout(g, st, w, &L);
  return L.title_h + L.head_h + g->nrows * L.cell_h + (g->nrows - 1) * L.gap +
         st->font_pt * 0.4 + L.cb_h + L.legend_h;
}

static int range_of(const KdFigGrid *g, KdFigCol c) {
  switch (c) {
  case KD_FIG_COL_TEACHER: return RG_TEACHER;
  case KD_FIG_COL_STUDENT: return g->independent_ts ? RG_STUDENT : RG_TEACHER;
  case KD_FIG_COL_GAP: return RG_GAP;
  case KD_FIG_COL_MASK: return RG_MASK;
  default: return -1;
  }
}

static KdCmap cmap_of(const KdFigGrid *g, int rg) {
  return rg == RG_GAP ? g->gap_cmap : rg == RG_MASK ? g->mask_cmap : g->energy_cmap;
}

static const KdFigRange *frange_of(const KdFigGrid *g, int rg) {
  return rg == RG_GAP ? &g->gap_range : rg == RG_MASK ? &g->mask_range : &g->energy_range;
}

/* Resolves the four ranges over all rows of the columns that use them. */
static void resolve(const KdFigGrid *g, double lo[RG_N], double hi[RG_N]) {
  for (int rg = 0; rg < RG_N; rg++) {
    const KdFigMap *ms[64];
    int k = 0;
    for (int i = 0; i < g->nrows; i++)
      for (int c = KD_FIG_COL_TEACHER; c < KD_FIG_NCOLS && k < 64; c++)
        if (range_of(g, (KdFigCol)c) == rg) ms[k++] = cell_map(&g->rows[i], (KdFigCol)c);
    KdFigRange r = *frange_of(g, rg);
    if (rg == RG_MASK && !(r.lo < r.hi)) { /* masks are weights in [0, 1] */
      r.lo = 0;
      r.hi = 1;
    }
    kd_fig_resolve_range(&r, cmap_of(g, rg), ms, k, &lo[rg], &hi[rg]);
  }
}

static const char *cb_label(const KdFigGrid *g, int rg) {
  if (rg == RG_TEACHER) return g->independent_ts ? "energy (T)" : "energy (shared)";
  if (rg == RG_STUDENT) return "energy (S)";
  if (rg == RG_GAP) return "gap";
  return "mask";
}

void kd_fig_grid_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const KdFigGrid *g) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  int nc = ncols(g);
  GridLayout L;
  grid_layout(g, st, r.w, &L);
  double lo[RG_N], hi[RG_N];
  resolve(g, lo, hi);
  kd_fig_title(cr, st, r, g->title);

  double x0 = r.x + L.label_w, y0 = r.y + L.title_h;
  cairo_save(cr);
  kd_fig_font(cr, st, st->font_pt, KD_FIG_NORMAL);
  cairo_set_source_rgb(cr, 0, 0, 0);
  for (int c = 0; c < nc; c++) {
    KdFigCol kind = g->cols[c];
    if ((unsigned)kind >= KD_FIG_NCOLS) continue;
    const char *t = g->col_titles[kind] ? g->col_titles[kind] : default_titles[kind];
    kd_fig_text_fit(cr, x0 + c * (L.cell_w + L.gap) + L.cell_w / 2, y0 + st->font_pt * 0.1, t,
                    0.5, 0, L.cell_w);
  }
  cairo_restore(cr);

  int letter = 0;
  for (int i = 0; i < g->nrows; i++) {
    const KdFigGridRow *row = &g->rows[i];
    double y = y0 + L.head_h + i * (L.cell_h + L.gap);
    if (L.label_w > 0 && row->label) {
      cairo_save(cr);
      kd_fig_font(cr, st, st->font_pt, KD_FIG_NORMAL);
      cairo_set_source_rgb(cr, 0, 0, 0);
      cairo_translate(cr, r.x + st->font_pt * 0.05, y + L.cell_h / 2);
      cairo_rotate(cr, -M_PI / 2);
      kd_fig_text_fit(cr, 0, 0, row->label, 0.5, 0, L.cell_h);
      cairo_restore(cr);
    }
    cairo_surface_t *under = NULL;
    if (g->overlay > 0) under = kd_fig_image_surface(&row->det.image);
    for (int c = 0; c < nc; c++) {
      KdFigCol kind = g->cols[c];
      KdFigRect cell = {x0 + c * (L.cell_w + L.gap), y, L.cell_w, L.cell_h};
      if (kind == KD_FIG_COL_IMAGE) {
        KdFigDetView d = row->det;
        d.title = NULL;
        d.legend = 0;
        kd_fig_detview_draw(cr, cell, st, &d);
      } else if ((unsigned)kind < KD_FIG_NCOLS) {
        int rg = range_of(g, kind);
        const KdFigRange *fr = frange_of(g, rg);
        cairo_surface_t *s = kd_fig_map_surface(cell_map(row, kind), cmap_of(g, rg), lo[rg],
                                                hi[rg], fr->log);
        if (under) kd_fig_paint_nearest(cr, under, cell, 1);
        kd_fig_paint_nearest(cr, s, cell, under ? g->overlay : 1);
        cairo_surface_destroy(s);
        cairo_save(cr);
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_set_line_width(cr, st->line_pt * 0.8);
        cairo_rectangle(cr, cell.x, cell.y, cell.w, cell.h);
        cairo_stroke(cr);
        cairo_restore(cr);
      }
      if (st->panel_letters) kd_fig_panel_letter(cr, st, cell, letter);
      letter++;
    }
    if (under) cairo_surface_destroy(under);
  }

  /* Colorbars: each range under the column(s) that use it; a shared
   * teacher/student bar spans both when they are adjacent. */
  double cb_y = y0 + L.head_h + g->nrows * L.cell_h + (g->nrows - 1) * L.gap + st->font_pt * 0.4;
  for (int c = 0; c < nc; c++) {
    int rg = range_of(g, g->cols[c]);
    if (rg < 0) continue;
    int c1 = c;
    while (c1 + 1 < nc && range_of(g, g->cols[c1 + 1]) == rg) c1++;
    double xa = x0 + c * (L.cell_w + L.gap), xb = x0 + c1 * (L.cell_w + L.gap) + L.cell_w;
    /* Inset where another bar sits next to this one, so the end labels of
     * neighbouring bars ("21.2" | "0.2") stay apart. */
    double inset = st->font_pt * 0.4;
    if (c > 0 && range_of(g, g->cols[c - 1]) >= 0) xa += inset;
    if (c1 + 1 < nc && range_of(g, g->cols[c1 + 1]) >= 0) xb -= inset;
    KdFigRect cb = {xa, cb_y, xb - xa, L.cb_h};
    const KdFigMap *ms[64];
    int k = 0;
    for (int i = 0; i < g->nrows; i++)
      for (int cc = c; cc <= c1 && k < 64; cc++) ms[k++] = cell_map(&g->rows[i], g->cols[cc]);
    if (!frange_of(g, rg)->log && kd_fig_maps_binary(ms, k))
      kd_fig_binary_key(cr, st, cb, cmap_of(g, rg), lo[rg], hi[rg], cb_label(g, rg));
    else
      kd_fig_colorbar_h(cr, st, cb, cmap_of(g, rg), lo[rg], hi[rg], frange_of(g, rg)->log,
                        cb_label(g, rg));
    c = c1;
  }
  if (L.has_image) {
    KdFigKey k[3];
    legend_keys(k);
    kd_fig_legend(cr, st, r.x, cb_y + L.cb_h, r.w, k, 3, 1);
  }
}

static void grid_draw_v(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const void *spec) {
  kd_fig_grid_draw(cr, r, st, spec);
}
static double grid_height_v(double w, const KdFigStyle *st, const void *spec) {
  return kd_fig_grid_height(w, st, spec);
}
KdFigPanel kd_fig_grid_panel(const KdFigGrid *g) {
  return (KdFigPanel){grid_draw_v, grid_height_v, g, NULL};
}
