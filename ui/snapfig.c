/* Figures of one snapshot (image, gap, masks, attention, gradmaps,
 * projection), the table of every figure kind and the dispatch through it.
 * The grid lives in snapfig_grid.c, the run-level figures (curves,
 * gradients) in snapfig_run.c. No consumer tells kinds apart by name: what
 * differs between kinds is a column of the table. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "distill/method.h"
#include "snapfig_priv.h"
#include "snapview.h"

void kd_snapfig_view_default(KdSnapFigView *v) {
  memset(v, 0, sizeof *v);
  v->smooth = (KdSmooth){KD_SMOOTH_NONE, 0.9, 50};
  v->xmin = v->xmax = v->ymin = v->ymax = v->apmin = v->apmax = NAN;
  v->cursor = NAN;
}

KdSnapFigStore *kd_snapfig_store_new(void) { return calloc(1, sizeof(KdSnapFigStore)); }

void kd_snapfig_store_free(KdSnapFigStore *s) {
  if (!s) return;
  free(s->step);
  free(s->cross.buf);
  for (int i = 0; i < SF_MAXSRC; i++) free(s->fgv[i]), free(s->bgv[i]);
  for (int i = 0; i < 4; i++) free(s->ap_pct[i]);
  free(s);
}

int kd_snapfig_check_image(const KdSnapshot *s, int image, KdError *err) {
  if (image >= 0 && image < s->nimages) return 0;
  return kd_error(err, "image %d is out of range: the snapshot at step %d has %d probe images (0..%d)",
                  image, s->step, s->nimages, s->nimages - 1);
}

static void level_list(const KdSnapshot *s, char *all, size_t len) {
  char lv[16];
  all[0] = 0;
  for (int l = 0; l < s->nlev; l++) {
    size_t n = strlen(all);
    snprintf(all + n, len - n, "%s%s", l ? ", " : "", kd_snapshot_level_name(s, l, lv, sizeof lv));
  }
}

int kd_snapfig_level_from_name(const KdSnapshot *s, const char *name, KdError *err) {
  char lv[16], all[128];
  for (int l = 0; name && l < s->nlev; l++)
    if (!strcasecmp(name, kd_snapshot_level_name(s, l, lv, sizeof lv))) return l;
  level_list(s, all, sizeof all);
  return kd_error(err, "level '%s' is not in the snapshot (levels: %s)", name ? name : "", all);
}

int kd_snapfig_check_level(const KdSnapshot *s, int level, KdError *err) {
  if (level >= 0 && level < s->nlev) return 0;
  char all[128];
  level_list(s, all, sizeof all);
  return kd_error(err, "level index %d is out of range (the snapshot has %s)", level, all);
}

const char *kd_snapfig_title(const KdSnapFigView *v, const char *t) { return v->no_title ? NULL : t; }

/* ---- one-snapshot kinds ---- */

static int build_image(const KdSnapFigView *v, KdSnapFigStore *p, KdFigPanel *out, KdError *err) {
  (void)err;
  const KdSnapshot *s = v->snap;
  KdFigDetView *d = &p->det;
  *d = (KdFigDetView){0};
  d->image = kd_snapview_image(s, v->image);
  d->gt = p->gt, d->teacher = p->t, d->student = p->s;
  d->ngt = kd_snapview_boxes(s, v->image, "gt", p->gt, SF_MAXB);
  d->nteacher = kd_snapview_boxes(s, v->image, "det.t", p->t, SF_MAXB);
  d->nstudent = kd_snapview_boxes(s, v->image, "det.s", p->s, SF_MAXB);
  /* HEAD's sampled RoIs, else a two-stage side's best RPN proposals: the student's, else the teacher's */
  int ts = 0;
  d->proposals = p->props;
  if (kd_snapfig_rois_boxes(s, v->image, p, d)) goto boxes_done;
  if (!(d->nproposals = kd_snapview_boxes(s, v->image, "props.s", p->props, SF_MAXB)))
    d->nproposals = kd_snapview_boxes(s, v->image, "props.t", p->props, SF_MAXB), ts = 1;
  snprintf(p->props_label, sizeof p->props_label, "%s RPN, top %d", ts ? "teacher" : "student", d->nproposals);
  d->proposals_label = p->props_label;
boxes_done:
  d->class_names = (const char *const *)s->class_names;
  d->nclasses = s->nclasses;
  d->score_thresh = 0.3f;
  d->labels = 1;
  d->legend = 1;
  snprintf(p->title, sizeof p->title, "probe image %d (val #%d), step %d", v->image,
           s->image_index[v->image], s->step);
  d->title = kd_snapfig_title(v, p->title);
  *out = kd_fig_detview_panel(d);
  return 0;
}

static void maps_spec(const KdSnapFigView *v, KdSnapFigStore *p, int n, int ngroups) {
  p->under = kd_snapview_image(v->snap, v->image);
  p->maps = (KdFigMaps){.items = p->items, .n = n, .groups = p->groups, .ngroups = ngroups,
                        .under = v->overlay > 0 ? &p->under : NULL, .alpha = v->overlay,
                        .title = kd_snapfig_title(v, p->title), .mark = v->mark};
}

int kd_snapfig_method_gaps(const KdSnapshot *s, int image, int level, const KdMethod **out, int max) {
  int n = 0;
  for (int m = 0; m < kd_method_count() && n < max; m++) {
    const KdMethod *me = kd_method_at(m);
    char what[96];
    snprintf(what, sizeof what, "gap.%s", me->name);
    if (me->gap_label && kd_snapview_map(s, image, level, what).v) out[n++] = me;
  }
  return n;
}

void kd_snapfig_gap_title(const KdMethod *m, char *buf, size_t len) { snprintf(buf, len, "%s gap", m->label); }

/* Each kind at every level of the snapshot, side by side, one colour
 * range per kind (a map of the loss shows which level carries it). Whole
 * kinds while they fit; the title says what was left out. */
static int levels_spec(const KdSnapFigView *v, KdSnapFigStore *p, const SfMapKind *kinds, int nk, const char *what) {
  const KdSnapshot *s = v->snap;
  int n = 0, shown = 0;
  const char *left_out = NULL;
  for (int k = 0; k < nk; k++) {
    int have = 0;
    for (int l = 0; l < s->nlev; l++) have += kd_snapview_map(s, v->image, l, kinds[k].what).v != NULL;
    if (!have) continue;
    if (n + have > KD_FIG_MAX_MAPS) {
      left_out = kinds[k].title;
      break;
    }
    for (int l = 0; l < s->nlev; l++) {
      KdFigMap m = kd_snapview_map(s, v->image, l, kinds[k].what);
      if (!m.v) continue;
      char lv[16];
      snprintf(p->item_titles[n], sizeof p->item_titles[n], "%s %s", kinds[k].title, kd_snapshot_level_name(s, l, lv, sizeof lv));
      p->items[n] = (KdFigMapItem){m, p->item_titles[n], shown};
      n++;
    }
    snprintf(p->group_labels[shown], sizeof p->group_labels[shown], "%s", kinds[k].label);
    p->groups[shown] = (KdFigMapGroup){kinds[k].cmap, kinds[k].range, p->group_labels[shown]};
    shown++;
  }
  char lv0[16], lv1[16], note[128] = "";
  if (left_out) snprintf(note, sizeof note, " (%s%s left out: %d maps at most)", left_out, shown + 1 < nk ? " and after" : "",
                         KD_FIG_MAX_MAPS);
  snprintf(p->title, sizeof p->title, "%s\xe2\x80\x93%s: %s%s", kd_snapshot_level_name(s, 0, lv0, sizeof lv0),
           kd_snapshot_level_name(s, s->nlev - 1, lv1, sizeof lv1), what, note);
  maps_spec(v, p, n, shown);
  return n;
}

static int build_gap(const KdSnapFigView *v, KdSnapFigStore *p, KdFigPanel *out, KdError *err) {
  const KdSnapshot *s = v->snap;
  const KdMethod *ms[KD_FIG_MAX_MAPS];
  int nm = kd_snapfig_method_gaps(s, v->image, v->level, ms, KD_FIG_MAX_MAPS - 3);
  static const char raw_title[] = "raw gap (S \xe2\x88\x92 T)\xc2\xb2", raw_label[] = "mean_c (S \xe2\x88\x92 T)\xc2\xb2, no method";
  if (v->all_levels) { /* each method's loss map, then the raw gap, at every level */
    SfMapKind kinds[KD_FIG_MAX_MAPS + 1];
    int nk = 0;
    for (int k = 0; k < nm; k++, nk++) {
      snprintf(kinds[nk].what, sizeof kinds[nk].what, "gap.%s", ms[k]->name);
      kd_snapfig_gap_title(ms[k], kinds[nk].title, sizeof kinds[nk].title);
      snprintf(kinds[nk].label, sizeof kinds[nk].label, "%s: %s", kinds[nk].title, ms[k]->gap_label);
      kinds[nk].cmap = KD_CMAP_MAGMA, kinds[nk].range = (KdFigRange){0, 0, 0};
    }
    kinds[nk] = (SfMapKind){"gap", "raw gap", "", KD_CMAP_MAGMA, {0, 0, 0}};
    snprintf(kinds[nk++].label, sizeof kinds[0].label, "%s", raw_label);
    if (!levels_spec(v, p, kinds, nk, "the gap each loss sees, every level"))
      return kd_error(err, "gap: the snapshot at step %d has no gap maps", s->step);
    *out = kd_fig_maps_panel(&p->maps);
    return 0;
  }
  int n = 0;
  KdFigMap te = kd_snapview_map(s, v->image, v->level, "t_energy");
  KdFigMap se = kd_snapview_map(s, v->image, v->level, "s_energy");
  KdFigMap gap = kd_snapview_map(s, v->image, v->level, "gap");
  if (te.v) p->items[n++] = (KdFigMapItem){te, "teacher energy", 0};
  if (se.v) p->items[n++] = (KdFigMapItem){se, "student energy", v->independent ? 1 : 0};
  if (gap.v) p->items[n++] = (KdFigMapItem){gap, raw_title, 2};
  if (!n) return kd_error(err, "gap: the snapshot at step %d has no energy maps", s->step);
  p->groups[0] = (KdFigMapGroup){KD_CMAP_VIRIDIS, {0, 0, 0}, v->independent ? "teacher mean_c X\xc2\xb2" : "mean_c X\xc2\xb2"};
  p->groups[1] = (KdFigMapGroup){KD_CMAP_VIRIDIS, {0, 0, 0}, "student mean_c X\xc2\xb2"};
  p->groups[2] = (KdFigMapGroup){KD_CMAP_MAGMA, {0, 0, 0}, raw_label};
  /* The gap each active method's loss sees, on its own range. */
  for (int k = 0; k < nm && n < KD_FIG_MAX_MAPS; k++) {
    char what[96];
    snprintf(what, sizeof what, "gap.%s", ms[k]->name);
    kd_snapfig_gap_title(ms[k], p->item_titles[n], sizeof p->item_titles[n]);
    snprintf(p->group_labels[3 + k], sizeof p->group_labels[3 + k], "%s", ms[k]->gap_label);
    p->items[n] = (KdFigMapItem){kd_snapview_map(s, v->image, v->level, what), p->item_titles[n], 3 + k};
    p->groups[3 + k] = (KdFigMapGroup){KD_CMAP_MAGMA, {0, 0, 0}, p->group_labels[3 + k]};
    n++;
  }
  char lv[16];
  snprintf(p->title, sizeof p->title, "%s: teacher vs student features; the gap %s", kd_snapshot_level_name(s, v->level, lv, sizeof lv),
           nm ? "each loss sees" : "of the raw features (no feature method on)");
  maps_spec(v, p, n, 3 + nm);
  *out = kd_fig_maps_panel(&p->maps);
  return 0;
}

static int build_masks(const KdSnapFigView *v, KdSnapFigStore *p, KdFigPanel *out, KdError *err) {
  const KdSnapshot *s = v->snap;
  int n = 0;
  const char *names[KD_FIG_MAX_MAPS];
  KdFigMap fg = kd_snapview_map(s, v->image, v->level, "fg");
  int nm = kd_snapview_masks(s, v->image, v->level, names, KD_FIG_MAX_MAPS - (fg.v != NULL));
  if (v->all_levels) {
    SfMapKind kinds[KD_FIG_MAX_MAPS];
    int nk = 0;
    if (fg.v) kinds[nk++] = (SfMapKind){"fg", "GT fg", "GT foreground", KD_CMAP_VIRIDIS, {0, 1, 0}};
    for (int i = 0; i < nm; i++, nk++) {
      snprintf(kinds[nk].what, sizeof kinds[nk].what, "mask.%s", names[i]);
      snprintf(kinds[nk].title, sizeof kinds[nk].title, "%s", names[i]);
      snprintf(kinds[nk].label, sizeof kinds[nk].label, "%s", names[i]);
      kinds[nk].cmap = KD_CMAP_VIRIDIS, kinds[nk].range = (KdFigRange){0, 0, 0};
    }
    if (!levels_spec(v, p, kinds, nk, "masks the methods use, every level"))
      return kd_error(err, "masks: the snapshot at step %d has no masks", s->step);
    *out = kd_fig_maps_panel(&p->maps);
    return 0;
  }
  if (fg.v) {
    p->items[n] = (KdFigMapItem){fg, "GT foreground", n};
    p->groups[n] = (KdFigMapGroup){KD_CMAP_VIRIDIS, {0, 1, 0}, "mask"};
    n++;
  }
  for (int i = 0; i < nm && n < KD_FIG_MAX_MAPS; i++) {
    char what[96];
    snprintf(what, sizeof what, "mask.%s", names[i]);
    KdFigMap m = kd_snapview_map(s, v->image, v->level, what);
    if (!m.v) continue;
    p->items[n] = (KdFigMapItem){m, names[i], n};
    p->groups[n] = (KdFigMapGroup){KD_CMAP_VIRIDIS, {0, 0, 0}, names[i]};
    n++;
  }
  if (!n) return kd_error(err, "masks: the snapshot at step %d has no masks", s->step);
  char lv[16];
  snprintf(p->title, sizeof p->title, "%s: masks the methods use",
           kd_snapshot_level_name(s, v->level, lv, sizeof lv));
  maps_spec(v, p, n, n);
  *out = kd_fig_maps_panel(&p->maps);
  return 0;
}

static const KdMethod *attn_method(void);

static int build_attention(const KdSnapFigView *v, KdSnapFigStore *p, KdFigPanel *out,
                           KdError *err) {
  const KdSnapshot *s = v->snap;
  KdFigAttention *a = &p->attn;
  *a = (KdFigAttention){0};
  a->teacher_spatial = kd_snapview_map(s, v->image, v->level, "t_sattn");
  a->student_spatial = kd_snapview_map(s, v->image, v->level, "s_sattn");
  int nt = 0, ns = 0;
  a->teacher_channel = kd_snapview_vec(s, v->image, v->level, "t_cattn", &nt);
  a->student_channel = kd_snapview_vec(s, v->image, v->level, "s_cattn", &ns);
  if (!a->student_spatial.v)
    return kd_error(err, "attention: the snapshot at step %d has no attention maps", s->step);
  a->nchannels = nt && ns && nt != ns ? 0 : (ns ? ns : nt);
  a->sort_channels = 1;
  a->independent = v->independent;
  char lv[16];
  const KdMethod *am = attn_method();
  snprintf(p->title, sizeof p->title, "%s: %s%sspatial and channel attention (T = %.2g)",
           kd_snapshot_level_name(s, v->level, lv, sizeof lv), am ? am->label : "", am ? "'s " : "", s->attn_temp);
  a->title = kd_snapfig_title(v, p->title);
  a->mark = v->mark;
  *out = kd_fig_attention_panel(a);
  return 0;
}

static int build_gradmaps(const KdSnapFigView *v, KdSnapFigStore *p, KdFigPanel *out,
                          KdError *err) {
  const KdSnapshot *s = v->snap;
  int n = kd_snapview_grad_sources(s, v->image, v->level, p->sources, KD_FIG_MAX_MAPS);
  if (!n) return kd_error(err, "gradmaps: the snapshot at step %d has no gradient maps", s->step);
  for (int i = 0; i < n; i++) {
    char what[96];
    snprintf(what, sizeof what, "grad.%s", p->sources[i]);
    p->gmaps[i] = kd_snapview_map(s, v->image, v->level, what);
    const KdSnapField *f = kd_snapshot_findf(s, "grad_fgbg.%s", p->sources[i]);
    p->fg[i] = p->bg[i] = 0;
    if (f && f->ndim == 3 && v->image < f->shape[0] && v->level < f->shape[1]) {
      const float *m = f->data + ((size_t)v->image * f->shape[1] + v->level) * 2;
      p->fg[i] = m[0], p->bg[i] = m[1];
    }
  }
  char lv[16];
  snprintf(p->title, sizeof p->title, "%s: |dL/dS| by source (fg vs bg means)",
           kd_snapshot_level_name(s, v->level, lv, sizeof lv));
  p->grad = (KdFigGradMaps){.sources = p->sources, .maps = p->gmaps, .fg_mean = p->fg,
                            .bg_mean = p->bg, .nsources = n, .independent = v->independent,
                            .title = kd_snapfig_title(v, p->title), .mark = v->mark};
  *out = kd_fig_gradmaps_panel(&p->grad);
  return 0;
}

static int xy_rows(const KdSnapField *f) { return f && f->ndim == 2 && f->shape[1] == 2 ? f->shape[0] : 0; }

/* The instance features (inst.*, FPN features pooled on the GT boxes, on
 * the teacher's axes) or, when the snapshot has a two-stage side, the RoI
 * head's features of the same boxes (roi.*, on the axes of the teacher's
 * when it is two-stage, else the student's): whichever shows more sides. */
static int build_projection(const KdSnapFigView *v, KdSnapFigStore *p, KdFigPanel *out,
                            KdError *err) {
  const KdSnapshot *s = v->snap;
  const KdSnapField *t = kd_snapshot_find(s, "inst.t_xy"), *st = kd_snapshot_find(s, "inst.s_xy");
  const KdSnapField *rt = kd_snapshot_find(s, "roi.t_xy"), *rs = kd_snapshot_find(s, "roi.s_xy");
  const KdSnapField *lab = kd_snapshot_find(s, "inst.label"), *var = kd_snapshot_find(s, "pca.var");
  int roi = (xy_rows(rt) || xy_rows(rs)) && (xy_rows(rt) > 0) + (xy_rows(rs) > 0) >= (xy_rows(t) > 0) + (xy_rows(st) > 0);
  const char *basis = "teacher";
  if (roi) t = rt, st = rs, var = kd_snapshot_find(s, "roi.pca.var"), basis = xy_rows(rt) ? "teacher" : "student";
  if (!xy_rows(t) && !(roi && xy_rows(st)))
    return kd_error(err, "projection: the snapshot at step %d has no instance features "
                         "(no teacher, or no GT box on the probe images)", s->step);
  int rows = xy_rows(t) ? xy_rows(t) : xy_rows(st);
  int n = rows < SF_MAXI ? rows : SF_MAXI;
  for (int i = 0; i < n; i++) p->cls[i] = lab && (int)lab->numel > i ? (int)lab->data[i] : -1;
  if (var && var->numel >= 3 && var->data[2] > 0) {
    snprintf(p->xl, sizeof p->xl, "PC1 (%.0f%% of %s variance)", 100.0 * var->data[0] / var->data[2], basis);
    snprintf(p->yl, sizeof p->yl, "PC2 (%.0f%%)", 100.0 * var->data[1] / var->data[2]);
  } else {
    snprintf(p->xl, sizeof p->xl, "PC1");
    snprintf(p->yl, sizeof p->yl, "PC2");
  }
  if (roi) snprintf(p->title, sizeof p->title, "RoI head features of the GT boxes on the %s's PCA axes", basis);
  else snprintf(p->title, sizeof p->title, "instance features on the teacher's PCA axes");
  p->scat = (KdFigScatter){.teacher_xy = xy_rows(t) == rows ? t->data : NULL,
                           .student_xy = xy_rows(st) == rows ? st->data : NULL,
                           .cls = p->cls, .n = n, .class_names = (const char *const *)s->class_names,
                           .nclasses = s->nclasses, .join_pairs = 1,
                           .title = kd_snapfig_title(v, p->title),
                           .xlabel = p->xl, .ylabel = p->yl};
  *out = kd_fig_scatter_panel(&p->scat);
  return 0;
}

/* ---- a figure of a method that is off ---- */

static void dimmed_draw(cairo_t *cr, KdFigRect r, const KdFigStyle *st, const void *spec) {
  const struct SfDimmed *d = spec;
  d->inner.draw(cr, r, st, d->inner.spec);
  cairo_save(cr);
  cairo_rectangle(cr, r.x, r.y, r.w, r.h);
  cairo_set_source_rgba(cr, 1, 1, 1, 0.7);
  cairo_fill(cr);
  cairo_select_font_face(cr, st && st->font_family ? st->font_family : "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
                         CAIRO_FONT_WEIGHT_BOLD);
  double size = (st && st->font_pt > 0 ? st->font_pt : 8) * 1.3;
  cairo_text_extents_t e;
  cairo_set_font_size(cr, size);
  cairo_text_extents(cr, d->note, &e);
  if (e.width > r.w * 0.9 && e.width > 0) {
    size *= r.w * 0.9 / e.width;
    cairo_set_font_size(cr, size);
    cairo_text_extents(cr, d->note, &e);
  }
  /* the note on a chip, readable over the greyed drawing */
  const double pad = size * 0.5, x = r.x + (r.w - e.width) / 2, y = r.y + (r.h - e.height) / 2;
  cairo_rectangle(cr, x - pad, y - pad, e.width + 2 * pad, e.height + 2 * pad);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_fill_preserve(cr);
  cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
  cairo_set_line_width(cr, 1);
  cairo_stroke(cr);
  cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
  cairo_move_to(cr, x - e.x_bearing, y - e.y_bearing);
  cairo_show_text(cr, d->note);
  cairo_restore(cr);
}

static double dimmed_height(double w, const KdFigStyle *st, const void *spec) {
  const struct SfDimmed *d = spec;
  return d->inner.height_for_width(w, st, d->inner.spec);
}

static int dimmed_pick(KdFigRect r, const KdFigStyle *st, const void *spec, double x, double y, KdFigPick *out) {
  const struct SfDimmed *d = spec;
  return d->inner.pick ? d->inner.pick(r, st, d->inner.spec, x, y, out) : 0;
}

void kd_snapfig_dim(KdSnapFigStore *st, const char *note, KdFigPanel *out) {
  st->dim.inner = *out;
  snprintf(st->dim.note, sizeof st->dim.note, "%s", note);
  *out = (KdFigPanel){dimmed_draw, dimmed_height, &st->dim, out->pick ? dimmed_pick : NULL};
}

/* The method whose attention the probe draws (the first naming its temperature). */
static const KdMethod *attn_method(void) {
  for (int m = 0; m < kd_method_count(); m++)
    if (kd_method_at(m)->attn_temp_key) return kd_method_at(m);
  return NULL;
}

static int snapshot_has_method(const KdSnapshot *s, const char *name) {
  size_t n = strlen(name);
  for (const char *p = s->methods; (p = strstr(p, name)); p += n)
    if ((p == s->methods || p[-1] == ',') && (p[n] == ',' || !p[n])) return 1;
  return 0;
}

/* Greys a kind's figure whose method is off in the snapshot, under a note
 * saying so (the maps are still what that method would see). */
static void mark_inactive(const KdSnapFigKind *kind, const KdSnapFigView *v, KdSnapFigStore *st, KdFigPanel *out) {
  const KdMethod *m = kind->needs & KD_SNAPFIG_ATTN_METHOD ? attn_method() : NULL;
  if (!m || snapshot_has_method(v->snap, m->name)) return;
  char note[160];
  snprintf(note, sizeof note, "%s off: %s's attention, used by no loss of this run", m->label, m->label);
  kd_snapfig_dim(st, note, out);
}

/* The table of figure kinds, in export order. Window cells: three equal
 * columns; the image takes one, the curves two; map rows span the width
 * so teacher | student | gap sit side by side. */
#define SNAP KD_SNAPFIG_NEEDS_SNAPSHOT
#define IMG1 KD_SNAPFIG_ONE_IMAGE
#define LVL KD_SNAPFIG_LEVEL
static const KdSnapFigKind kinds[] = {
    {"image", build_image, SNAP | IMG1, 0, 0, {0, 0, 1}, NULL, NULL},
    {"gap", build_gap, SNAP | IMG1 | LVL,
     KD_SNAPFIG_OPT_OVERLAY | KD_SNAPFIG_OPT_INDEPENDENT | KD_SNAPFIG_OPT_ALL_LEVELS, 1, {0, 1, 3}, NULL, NULL},
    {"masks", build_masks, SNAP | IMG1 | LVL, KD_SNAPFIG_OPT_OVERLAY | KD_SNAPFIG_OPT_ALL_LEVELS, 1, {0, 3, 3}, NULL, NULL},
    {"attention", build_attention, SNAP | IMG1 | LVL | KD_SNAPFIG_ATTN_METHOD, KD_SNAPFIG_OPT_INDEPENDENT, 1, {0, 4, 2}, NULL, NULL},
    {"gradmaps", build_gradmaps, SNAP | IMG1 | LVL, KD_SNAPFIG_OPT_INDEPENDENT, 1, {0, 2, 3}, NULL, NULL},
    {"cross", kd_snapfig_build_cross, SNAP | IMG1 | LVL, KD_SNAPFIG_OPT_PIXEL, 1, {0, 5, 3}, NULL, NULL},
    {"projection", build_projection, SNAP, 0, 0, {2, 4, 1}, NULL, NULL},
    {"objectness", kd_snapfig_build_objectness, SNAP | IMG1 | LVL | KD_SNAPFIG_IF_FIELDS,
     KD_SNAPFIG_OPT_OVERLAY | KD_SNAPFIG_OPT_ALL_LEVELS, 1, {0, 6, 3}, kd_snapfig_has_objectness, NULL},
    {"dist", kd_snapfig_build_dist, SNAP | IMG1 | LVL | KD_SNAPFIG_IF_FIELDS, KD_SNAPFIG_OPT_PIXEL, 0, {0, 8, 3}, kd_snapfig_has_dist, NULL},
    {"icd", kd_snapfig_build_icd, SNAP | IMG1 | LVL | KD_SNAPFIG_IF_FIELDS, KD_SNAPFIG_OPT_PIXEL | KD_SNAPFIG_OPT_OVERLAY, 1,
     {0, 10, 3}, kd_snapfig_has_icd, NULL},
    {"prototypes", kd_snapfig_build_protos, SNAP | LVL | KD_SNAPFIG_IF_FIELDS | KD_SNAPFIG_HOVER, KD_SNAPFIG_OPT_HIDE, 0, {0, 9, 3},
     kd_snapfig_has_protos, "projection"},
    {"rois", kd_snapfig_build_rois, SNAP | IMG1 | KD_SNAPFIG_IF_FIELDS | KD_SNAPFIG_HOVER, 0, 0, {0, 7, 3}, kd_snapfig_has_rois, NULL},
    {"grid", kd_snapfig_build_grid, SNAP | LVL,
     KD_SNAPFIG_OPT_IMAGES | KD_SNAPFIG_OPT_COLUMNS | KD_SNAPFIG_OPT_MASK | KD_SNAPFIG_OPT_OVERLAY |
         KD_SNAPFIG_OPT_INDEPENDENT | KD_SNAPFIG_OPT_GAP,
     0, {0, 0, 0}, NULL, NULL},
    {"curves", kd_snapfig_build_curves, KD_SNAPFIG_NEEDS_LOG,
     KD_SNAPFIG_OPT_PARTS | KD_SNAPFIG_OPT_COMPARE | KD_SNAPFIG_OPT_LOGY | KD_SNAPFIG_OPT_SMOOTH, 0, {1, 0, 2}, NULL, NULL},
    {"gradients", kd_snapfig_build_gradients, KD_SNAPFIG_NEEDS_SNAPSHOTS,
     KD_SNAPFIG_OPT_IMAGES | KD_SNAPFIG_OPT_ANY_LEVEL | KD_SNAPFIG_OPT_SMOOTH, 0, {0, 0, 0}, NULL, NULL},
};
#undef SNAP
#undef IMG1
#undef LVL

int kd_snapfig_count(void) { return (int)(sizeof kinds / sizeof kinds[0]); }

const KdSnapFigKind *kd_snapfig_at(int i) { return i >= 0 && i < kd_snapfig_count() ? &kinds[i] : NULL; }

const KdSnapFigKind *kd_snapfig_find(const char *name) {
  for (int k = 0; name && k < kd_snapfig_count(); k++)
    if (!strcmp(name, kinds[k].name)) return &kinds[k];
  return NULL;
}

const char *kd_snapfig_names(void) {
  static char names[512];
  if (!names[0])
    for (int k = 0; k < kd_snapfig_count(); k++) {
      size_t n = strlen(names);
      snprintf(names + n, sizeof names - n, "%s%s", k ? ", " : "", kinds[k].name);
    }
  return names;
}

int kd_snapfig_shown(const KdSnapFigKind *kind, const KdSnapshot *s) {
  return !(kind->needs & KD_SNAPFIG_IF_FIELDS) || !kind->has_fields || (s && kind->has_fields(s));
}

int kd_snapfig_levels_spec(const KdSnapFigView *v, KdSnapFigStore *st, const SfMapKind *kinds, int nk, const char *what) {
  return levels_spec(v, st, kinds, nk, what);
}

void kd_snapfig_maps_spec(const KdSnapFigView *v, KdSnapFigStore *st, int n, int ngroups) { maps_spec(v, st, n, ngroups); }

int kd_snapfig_build(const KdSnapFigKind *kind, const KdSnapFigView *v, KdSnapFigStore *st,
                     KdFigPanel *out, KdError *err) {
  if (!kind || !kind->build) return kd_error(err, "unknown figure");
  if (!v || !st || !out) return kd_error(err, "%s: no view or store", kind->name);
  unsigned needs = kind->needs;
  if ((needs & KD_SNAPFIG_NEEDS_SNAPSHOT) && !v->snap)
    return kd_error(err, "%s: no snapshot yet (the prober writes them while the run trains)", kind->name);
  if ((needs & KD_SNAPFIG_ONE_IMAGE) && kd_snapfig_check_image(v->snap, v->image, err)) return -1;
  if ((needs & KD_SNAPFIG_LEVEL) && kd_snapfig_check_level(v->snap, v->level, err)) return -1;
  if (kind->build(v, st, out, err)) return -1;
  if (v->snap) mark_inactive(kind, v, st, out);
  return 0;
}
