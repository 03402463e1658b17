/* Heatmap rows: small multiples of float maps with shared (or separate)
 * colour ranges and a colorbar per range group, optionally over the probe
 * image. Maps are embedded at native resolution, nearest-neighbour. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "figure_priv.h"

int kd_fig_resolve_range(const KdFigRange *r, KdCmap cmap, const KdFigMap *const *maps, int n,
                         double *lo, double *hi) {
  int log = r && r->log;
  if (r && r->lo < r->hi && (!log || r->lo > 0)) {
    *lo = r->lo;
    *hi = r->hi;
    return 0;
  }
  double mn = INFINITY, mx = -INFINITY;
  for (int k = 0; k < n; k++) {
    const KdFigMap *m = maps[k];
    if (!m || !m->v) continue;
    size_t cnt = (size_t)m->w * (size_t)(m->h > 0 ? m->h : 0);
    for (size_t i = 0; i < cnt; i++) {
      double v = m->v[i];
      if (!isfinite(v) || (log && v <= 0)) continue;
      mn = fmin(mn, v);
      mx = fmax(mx, v);
    }
  }
  if (!(mn <= mx)) {
    *lo = log ? 0.1 : 0;
    *hi = 1;
    return -1;
  }
  if (kd_cmap_is_diverging(cmap) && !log) { /* signed: centre zero */
    double a = fmax(fabs(mn), fabs(mx));
    mn = -a;
    mx = a;
  }
  if (mx <= mn) { /* a constant map still gets a readable bar */
    if (log) {
      mn /= 2;
      mx *= 2;
    } else {
      double d = mn != 0 ? fabs(mn) * 0.1 : 0.5;
      mn -= d;
      mx += d;
    }
  }
  *lo = mn;
  *hi = mx;
  return 0;
}

/* ---- layout ---- */

/* Maps no taller than this: a row of one or two maps across a wide window
 * would otherwise become huge squares. Capped rows are centred. */
#define MAX_CELL_PT 220.0

typedef struct MapsLayout {
  double title_h, cell_title_h, cell_w, cell_h, gap, cb_h, x0;
  int cb_rows;
  int cb_row[KD_FIG_MAX_MAPS]; /* colorbar row of each group, -1 if unused */
  int first[KD_FIG_MAX_MAPS], last[KD_FIG_MAX_MAPS];
} MapsLayout;

static int item_count(const KdFigMaps *m) {
  return m->n < KD_FIG_MAX_MAPS ? m->n : KD_FIG_MAX_MAPS;
}

static int item_group(const KdFigMaps *m, int i) {
  int g = m->items[i].group;
  return g >= 0 && g < m->ngroups && g < KD_FIG_MAX_MAPS ? g : -1;
}

static int any_cell_title(const KdFigMaps *m) {
  for (int i = 0; i < item_count(m); i++)
    if (m->items[i].title && *m->items[i].title) return 1;
  return 0;
}

static int any_group_label(const KdFigMaps *m) {
  for (int g = 0; g < m->ngroups; g++)
    if (m->groups[g].label && *m->groups[g].label) return 1;
  return 0;
}

static void maps_layout(const KdFigMaps *m, const KdFigStyle *st, double w, MapsLayout *L) {
  int n = item_count(m);
  L->title_h = kd_fig_title_height(st, m->title);
  L->cell_title_h = any_cell_title(m) ? st->font_pt * KD_FIG_LINE : 0;
  /* Wider gaps where neighbours have their own colorbars, so the end labels
   * of two bars ("1" | "0") do not run together. */
  L->gap = st->font_pt * 0.6;
  for (int i = 1; i < n; i++)
    if (item_group(m, i) != item_group(m, i - 1)) L->gap = st->font_pt;
  L->cell_w = n > 0 ? (w - (n - 1) * L->gap) / n : w;
  double aspect = 1;
  for (int i = 0; i < n; i++)
    if (m->items[i].map.w > 0 && m->items[i].map.h > 0) {
      aspect = (double)m->items[i].map.h / m->items[i].map.w;
      break;
    }
  if (m->under && m->under->w > 0) aspect = (double)m->under->h / m->under->w;
  L->cell_h = L->cell_w * aspect;
  L->x0 = 0;
  if (L->cell_h > MAX_CELL_PT) {
    L->cell_h = MAX_CELL_PT;
    L->cell_w = MAX_CELL_PT / aspect;
    L->x0 = (w - (n * L->cell_w + (n - 1) * L->gap)) / 2;
  }
  /* Colorbars: a group's bar spans its items; overlapping spans go to
   * further rows. */
  double spans_end[KD_FIG_MAX_MAPS] = {0};
  L->cb_rows = 0;
  for (int g = 0; g < KD_FIG_MAX_MAPS; g++) {
    L->cb_row[g] = -1;
    L->first[g] = L->last[g] = -1;
  }
  for (int i = 0; i < n; i++) {
    int g = item_group(m, i);
    if (g < 0) continue;
    if (L->first[g] < 0) L->first[g] = i;
    L->last[g] = i;
  }
  for (int g = 0; g < KD_FIG_MAX_MAPS; g++) {
    if (L->first[g] < 0) continue;
    int row = 0;
    while (row < L->cb_rows && spans_end[row] >= L->first[g]) row++;
    if (row == L->cb_rows) L->cb_rows++;
    spans_end[row] = L->last[g];
    L->cb_row[g] = row;
  }
  L->cb_h = kd_fig_colorbar_height(st, any_group_label(m)) + st->font_pt * 0.3;
}

double kd_fig_maps_height(double w, const KdFigStyle *st, const KdFigMaps *m) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  MapsLayout L;
  maps_layout(m, st, w, &L);
  return L.title_h + L.cell_title_h + L.cell_h + st->font_pt * 0.5 + L.cb_rows * L.cb_h;
}

/* The marked cell's outline: white over black, so it reads on any colour. */
static void draw_mark(cairo_t *cr, const KdFigStyle *st, KdFigRect cell, const KdFigMap *map, const KdFigMark *mk) {
  if (map->w <= 0 || map->h <= 0 || !(mk->u >= 0 && mk->u < 1 && mk->v >= 0 && mk->v < 1)) return;
  int col = (int)(mk->u * map->w), row = (int)(mk->v * map->h);
  double cw = cell.w / map->w, ch = cell.h / map->h;
  KdFigRect r = {cell.x + col * cw, cell.y + row * ch, cw, ch};
  cairo_save(cr);
  cairo_set_line_width(cr, st->line_pt * 2.4);
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_rectangle(cr, r.x, r.y, r.w, r.h);
  cairo_stroke(cr);
  cairo_set_line_width(cr, st->line_pt * 1.1);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_rectangle(cr, r.x, r.y, r.w, r.h);
  cairo_stroke(cr);
  cairo_restore(cr);
}

void kd_fig_maps_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const KdFigMaps *m) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  int n = item_count(m);
  MapsLayout L;
  maps_layout(m, st, r.w, &L);
  kd_fig_title(cr, st, r, m->title);

  double lo[KD_FIG_MAX_MAPS], hi[KD_FIG_MAX_MAPS];
  for (int g = 0; g < KD_FIG_MAX_MAPS && g < m->ngroups; g++) {
    const KdFigMap *ms[KD_FIG_MAX_MAPS];
    int k = 0;
    for (int i = 0; i < n; i++)
      if (item_group(m, i) == g) ms[k++] = &m->items[i].map;
    kd_fig_resolve_range(&m->groups[g].range, m->groups[g].cmap, ms, k, &lo[g], &hi[g]);
  }

  cairo_surface_t *under = m->under ? kd_fig_image_surface(m->under) : NULL;
  double y = r.y + L.title_h;
  for (int i = 0; i < n; i++) {
    const KdFigMapItem *it = &m->items[i];
    double x = r.x + L.x0 + i * (L.cell_w + L.gap);
    cairo_save(cr);
    if (it->title && *it->title) {
      kd_fig_font(cr, st, st->font_pt, KD_FIG_NORMAL);
      cairo_set_source_rgb(cr, 0, 0, 0);
      /* Over the outer cells only inwards: the page margin stays clear. */
      double extra = (i > 0 && i < n - 1) ? L.gap * 0.4 : 0;
      kd_fig_text_fit(cr, x + L.cell_w / 2, y + st->font_pt * 0.1, it->title, 0.5, 0, L.cell_w + extra);
    }
    KdFigRect cell = {x, y + L.cell_title_h, L.cell_w, L.cell_h};
    int g = item_group(m, i);
    KdCmap cmap = g >= 0 ? m->groups[g].cmap : KD_CMAP_VIRIDIS;
    double glo = g >= 0 ? lo[g] : 0, ghi = g >= 0 ? hi[g] : 1;
    int glog = g >= 0 && m->groups[g].range.log;
    if (under) kd_fig_paint_nearest(cr, under, cell, 1);
    cairo_surface_t *s = kd_fig_map_surface(&it->map, cmap, glo, ghi, glog);
    kd_fig_paint_nearest(cr, s, cell, under ? (m->alpha > 0 ? m->alpha : 0.6) : 1);
    cairo_surface_destroy(s);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, st->line_pt * 0.8);
    cairo_rectangle(cr, cell.x, cell.y, cell.w, cell.h);
    cairo_stroke(cr);
    if (m->mark.on) draw_mark(cr, st, cell, &it->map, &m->mark);
    if (st->panel_letters) kd_fig_panel_letter(cr, st, cell, i);
    cairo_restore(cr);
  }
  if (under) cairo_surface_destroy(under);

  double cb_y = y + L.cell_title_h + L.cell_h + st->font_pt * 0.5;
  for (int g = 0; g < KD_FIG_MAX_MAPS && g < m->ngroups; g++) {
    if (L.cb_row[g] < 0) continue;
    double x0 = r.x + L.x0 + L.first[g] * (L.cell_w + L.gap);
    double x1 = r.x + L.x0 + L.last[g] * (L.cell_w + L.gap) + L.cell_w;
    KdFigRect cb = {x0, cb_y + L.cb_row[g] * L.cb_h, x1 - x0, L.cb_h};
    const KdFigMap *ms[KD_FIG_MAX_MAPS];
    int k = 0;
    for (int i = 0; i < n; i++)
      if (item_group(m, i) == g) ms[k++] = &m->items[i].map;
    if (!m->groups[g].range.log && kd_fig_maps_binary(ms, k))
      kd_fig_binary_key(cr, st, cb, m->groups[g].cmap, lo[g], hi[g], m->groups[g].label);
    else
      kd_fig_colorbar_h(cr, st, cb, m->groups[g].cmap, lo[g], hi[g], m->groups[g].range.log,
                        m->groups[g].label);
  }
}

int kd_fig_maps_pick(KdFigRect r, const KdFigStyle *st, const KdFigMaps *m, double x, double y,
                     KdFigPick *pick) {
  char *out = pick->text;
  const size_t len = sizeof pick->text;
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  MapsLayout L;
  maps_layout(m, st, r.w, &L);
  double cy = r.y + L.title_h + L.cell_title_h;
  if (y < cy || y >= cy + L.cell_h) return 0;
  for (int i = 0; i < item_count(m); i++) {
    const KdFigMapItem *it = &m->items[i];
    double cx = r.x + L.x0 + i * (L.cell_w + L.gap);
    if (x < cx || x >= cx + L.cell_w || !it->map.v || it->map.w <= 0 || it->map.h <= 0) continue;
    double u = (x - cx) / L.cell_w, v = (y - cy) / L.cell_h;
    pick->cell = (KdFigMark){1, u, v};
    int col = (int)(u * it->map.w), row = (int)(v * it->map.h);
    col = col < it->map.w ? col : it->map.w - 1;
    row = row < it->map.h ? row : it->map.h - 1;
    /* Every map of the same size at that cell (teacher, student and gap
     * side by side are read together), in the figure's order. */
    size_t used = (size_t)snprintf(out, len, "(x %d, y %d) of %dx%d:", col, row, it->map.w, it->map.h);
    for (int j = 0; j < item_count(m) && used < len; j++) {
      const KdFigMapItem *o = &m->items[j];
      if (!o->map.v || o->map.w != it->map.w || o->map.h != it->map.h) continue;
      float v = o->map.v[(size_t)row * o->map.w + col];
      const char *name = o->title && *o->title ? o->title : "value";
      if (isnan(v)) used += (size_t)snprintf(out + used, len - used, " %s no data;", name);
      else used += (size_t)snprintf(out + used, len - used, " %s %.4g;", name, v);
    }
    if (used > 0 && used < len && out[used - 1] == ';') out[used - 1] = 0;
    return 1;
  }
  return 0;
}

static int maps_pick_v(KdFigRect r, const KdFigStyle *st, const void *spec, double x, double y, KdFigPick *out) {
  return kd_fig_maps_pick(r, st, spec, x, y, out);
}

static void maps_draw_v(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const void *spec) {
  kd_fig_maps_draw(cr, r, st, spec);
}
static double maps_height_v(double w, const KdFigStyle *st, const void *spec) {
  return kd_fig_maps_height(w, st, spec);
}
KdFigPanel kd_fig_maps_panel(const KdFigMaps *m) {
  return (KdFigPanel){maps_draw_v, maps_height_v, m, maps_pick_v};
}
