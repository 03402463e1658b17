/* Probe panels that pair maps with bars: attention (spatial maps of
 * teacher and student + channel attention bars) and gradient magnitude by
 * source (maps + fg/bg means). Side by side at double-column widths,
 * stacked at single-column ones. */
#include <math.h>

#include "figure_priv.h"

#define WIDE_PT 300.0 /* wider than this: maps and bars side by side */

static void split(KdFigRect r, double frac, double gap, KdFigRect *a, KdFigRect *b) {
  *a = (KdFigRect){r.x, r.y, r.w * frac - gap / 2, r.h};
  *b = (KdFigRect){r.x + r.w * frac + gap / 2, r.y, r.w * (1 - frac) - gap / 2, r.h};
}

/* ---- attention ---- */

typedef struct AttnParts {
  KdFigMapItem items[2];
  KdFigMapGroup groups[2];
  KdFigMaps maps;
  const float *values[2];
  KdFigBars bars;
} AttnParts;

static const char *attn_series[2] = {"teacher", "student"};

static void attn_parts(const KdFigAttention *a, AttnParts *p) {
  p->items[0] = (KdFigMapItem){a->teacher_spatial, "teacher spatial", 0};
  p->items[1] = (KdFigMapItem){a->student_spatial, "student spatial", a->independent ? 1 : 0};
  for (int g = 0; g < 2; g++)
    p->groups[g] = (KdFigMapGroup){KD_CMAP_VIRIDIS, {0, 0, 0}, "spatial attention"};
  p->maps = (KdFigMaps){p->items, 2, p->groups, a->independent ? 2 : 1, NULL, 0, NULL, a->mark};
  /* a run without a teacher has the student's bars alone */
  const int t = a->teacher_channel != NULL;
  p->values[0] = t ? a->teacher_channel : a->student_channel;
  p->values[1] = a->student_channel;
  p->bars = (KdFigBars){.title = NULL,
                        .xlabel = !a->sort_channels ? "channel" : t ? "channel (by teacher attention)" : "channel (by attention)",
                        .ylabel = "channel attention",
                        .series_names = attn_series + !t,
                        .values = p->values,
                        .nseries = t && a->student_channel ? 2 : p->values[0] ? 1 : 0,
                        .n = a->nchannels,
                        .categories = NULL,
                        .sort_by = a->sort_channels ? 0 : -1,
                        .logy = 0};
}

double kd_fig_attention_height(double w, const KdFigStyle *st, const KdFigAttention *a) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  AttnParts p;
  attn_parts(a, &p);
  double th = kd_fig_title_height(st, a->title);
  if (w > WIDE_PT) {
    double mh = kd_fig_maps_height(w * 0.45 - st->font_pt / 2, st, &p.maps);
    return th + fmax(mh, kd_fig_bars_height(w * 0.55, st, &p.bars));
  }
  return th + kd_fig_maps_height(w, st, &p.maps) + st->font_pt * 0.6 +
         kd_fig_bars_height(w, st, &p.bars);
}

/* Where the maps (rm) and the bars (rb) go in r: side by side when wide. */
static void attn_rects(KdFigRect r, const KdFigStyle *st, const KdFigAttention *a, const AttnParts *p,
                       KdFigRect *rm, KdFigRect *rb) {
  double th = kd_fig_title_height(st, a->title);
  KdFigRect body = {r.x, r.y + th, r.w, r.h - th};
  if (r.w > WIDE_PT) {
    split(body, 0.45, st->font_pt, rm, rb);
    rm->h = kd_fig_maps_height(rm->w, st, &p->maps);
  } else {
    double mh = kd_fig_maps_height(r.w, st, &p->maps);
    *rm = (KdFigRect){body.x, body.y, body.w, mh};
    *rb = (KdFigRect){body.x, body.y + mh + st->font_pt * 0.6, body.w, body.h - mh - st->font_pt * 0.6};
  }
}

void kd_fig_attention_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st,
                           const KdFigAttention *a) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  AttnParts p;
  attn_parts(a, &p);
  kd_fig_title(cr, st, r, a->title);
  KdFigRect rm, rb;
  attn_rects(r, st, a, &p, &rm, &rb);
  kd_fig_maps_draw(cr, rm, st, &p.maps);
  kd_fig_bars_draw(cr, rb, st, &p.bars);
}

static int attn_pick_v(KdFigRect r, const KdFigStyle *st, const void *spec, double x, double y, KdFigPick *out) {
  AttnParts p;
  attn_parts(spec, &p);
  KdFigRect rm, rb;
  attn_rects(r, st, spec, &p, &rm, &rb);
  return kd_fig_maps_pick(rm, st, &p.maps, x, y, out);
}

static void attn_draw_v(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const void *spec) {
  kd_fig_attention_draw(cr, r, st, spec);
}
static double attn_height_v(double w, const KdFigStyle *st, const void *spec) {
  return kd_fig_attention_height(w, st, spec);
}
KdFigPanel kd_fig_attention_panel(const KdFigAttention *a) {
  return (KdFigPanel){attn_draw_v, attn_height_v, a, attn_pick_v};
}

/* ---- gradient magnitude by source ---- */

typedef struct GradParts {
  KdFigMapItem items[KD_FIG_MAX_MAPS];
  KdFigMapGroup groups[KD_FIG_MAX_MAPS];
  KdFigMaps maps;
  const float *values[2];
  KdFigBars bars;
} GradParts;

static const char *grad_series[2] = {"foreground mean", "background mean"};

static void grad_parts(const KdFigGradMaps *g, GradParts *p) {
  int n = g->nsources < KD_FIG_MAX_MAPS ? g->nsources : KD_FIG_MAX_MAPS;
  for (int i = 0; i < n; i++) {
    p->items[i] = (KdFigMapItem){g->maps[i], g->sources[i], g->independent ? i : 0};
    p->groups[i] = (KdFigMapGroup){KD_CMAP_MAGMA, {0, 0, !g->linear}, "|grad|"};
  }
  p->maps = (KdFigMaps){p->items, n, p->groups, g->independent ? n : 1, NULL, 0, NULL, g->mark};
  p->values[0] = g->fg_mean;
  p->values[1] = g->bg_mean;
  p->bars = (KdFigBars){.title = NULL,
                        .xlabel = NULL,
                        .ylabel = "mean |grad|",
                        .series_names = grad_series,
                        .values = p->values,
                        .nseries = 2,
                        .n = n,
                        .categories = g->sources,
                        .sort_by = -1,
                        .logy = !g->linear};
}

double kd_fig_gradmaps_height(double w, const KdFigStyle *st, const KdFigGradMaps *g) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  GradParts p;
  grad_parts(g, &p);
  double th = kd_fig_title_height(st, g->title);
  int bars = g->fg_mean && g->bg_mean;
  if (w > WIDE_PT && bars) {
    double mh = kd_fig_maps_height(w * 0.6 - st->font_pt / 2, st, &p.maps);
    return th + fmax(mh, kd_fig_bars_height(w * 0.4, st, &p.bars));
  }
  return th + kd_fig_maps_height(w, st, &p.maps) +
         (bars ? st->font_pt * 0.6 + kd_fig_bars_height(w, st, &p.bars) : 0);
}

static void grad_rects(KdFigRect r, const KdFigStyle *st, const KdFigGradMaps *g, const GradParts *p,
                       KdFigRect *rm, KdFigRect *rb) {
  double th = kd_fig_title_height(st, g->title);
  int bars = g->fg_mean && g->bg_mean;
  KdFigRect body = {r.x, r.y + th, r.w, r.h - th};
  *rm = body;
  *rb = (KdFigRect){0, 0, 0, 0};
  if (r.w > WIDE_PT && bars) {
    split(body, 0.6, st->font_pt, rm, rb);
    rm->h = kd_fig_maps_height(rm->w, st, &p->maps);
  } else if (bars) {
    rm->h = kd_fig_maps_height(r.w, st, &p->maps);
    *rb = (KdFigRect){body.x, body.y + rm->h + st->font_pt * 0.6, body.w, body.h - rm->h - st->font_pt * 0.6};
  }
}

void kd_fig_gradmaps_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st,
                          const KdFigGradMaps *g) {
  KdFigStyle tmp;
  st = kd_fig_style_or_default(st, &tmp);
  GradParts p;
  grad_parts(g, &p);
  kd_fig_title(cr, st, r, g->title);
  KdFigRect rm, rb;
  grad_rects(r, st, g, &p, &rm, &rb);
  kd_fig_maps_draw(cr, rm, st, &p.maps);
  if (g->fg_mean && g->bg_mean) kd_fig_bars_draw(cr, rb, st, &p.bars);
}

static int grad_pick_v(KdFigRect r, const KdFigStyle *st, const void *spec, double x, double y, KdFigPick *out) {
  GradParts p;
  grad_parts(spec, &p);
  KdFigRect rm, rb;
  grad_rects(r, st, spec, &p, &rm, &rb);
  return kd_fig_maps_pick(rm, st, &p.maps, x, y, out);
}

static void grad_draw_v(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const void *spec) {
  kd_fig_gradmaps_draw(cr, r, st, spec);
}
static double grad_height_v(double w, const KdFigStyle *st, const void *spec) {
  return kd_fig_gradmaps_height(w, st, spec);
}
KdFigPanel kd_fig_gradmaps_panel(const KdFigGradMaps *g) {
  return (KdFigPanel){grad_draw_v, grad_height_v, g, grad_pick_v};
}
