/* The option spellings `kdscope export` and the window's export dialog
 * share: smoothing as text, and the command line that rebuilds a figure
 * from the run directory (every choice the kind reads, as its table row
 * says; nothing else). Must not name a kind: the row's flags decide. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapfig_priv.h"

int kd_snapfig_smooth_parse(const char *text, KdSmooth *out, KdError *err) {
  char *end;
  *out = (KdSmooth){KD_SMOOTH_NONE, 0.9, 50};
  if (!text || !strcmp(text, "none")) return 0;
  if (!strncmp(text, "ema:", 4)) {
    double w = strtod(text + 4, &end);
    if (end == text + 4 || *end || !(w >= 0 && w < 1))
      return kd_error(err, "--smooth %s: the EMA weight must be a number in [0, 1)", text);
    out->kind = KD_SMOOTH_EMA;
    out->weight = w;
    return 0;
  }
  if (!strncmp(text, "mean:", 5)) {
    long n = strtol(text + 5, &end, 10);
    if (end == text + 5 || *end || n < 1 || n > 1000000)
      return kd_error(err, "--smooth %s: the window must be a whole number of samples >= 1", text);
    out->kind = KD_SMOOTH_MEAN;
    out->window = (int)n;
    return 0;
  }
  return kd_error(err, "--smooth %s: expected none, ema:W (0 <= W < 1) or mean:N", text);
}

void kd_snapfig_smooth_format(const KdSmooth *s, char *buf, size_t len) {
  if (s->kind == KD_SMOOTH_EMA)
    snprintf(buf, len, "ema:%.10g", s->weight);
  else if (s->kind == KD_SMOOTH_MEAN)
    snprintf(buf, len, "mean:%d", s->window);
  else
    snprintf(buf, len, "none");
}

int kd_snapfig_limits_parse(const char *opt, const char *text, double *lo, double *hi, KdError *err) {
  *lo = *hi = NAN;
  const char *colon = text ? strchr(text, ':') : NULL;
  if (!colon) return kd_error(err, "%s %s: expected LO:HI (either may be empty, e.g. 0:2 or :2)", opt, text ? text : "");
  char a[64], b[64];
  size_t na = (size_t)(colon - text);
  if (na >= sizeof a || strlen(colon + 1) >= sizeof b) return kd_error(err, "%s %s: too long", opt, text);
  memcpy(a, text, na);
  a[na] = 0;
  snprintf(b, sizeof b, "%s", colon + 1);
  char *end;
  if (a[0]) {
    *lo = strtod(a, &end);
    if (*end || !isfinite(*lo)) return kd_error(err, "%s %s: '%s' is not a number", opt, text, a);
  }
  if (b[0]) {
    *hi = strtod(b, &end);
    if (*end || !isfinite(*hi)) return kd_error(err, "%s %s: '%s' is not a number", opt, text, b);
  }
  if (isfinite(*lo) && isfinite(*hi) && !(*lo < *hi))
    return kd_error(err, "%s %s: the low end must be under the high end", opt, text);
  return 0;
}

int kd_snapfig_rename_parse(const char *text, char *buf, size_t len, const char **from, const char **to,
                            KdError *err) {
  const char *eq = text ? strchr(text, '=') : NULL;
  if (!eq || eq == text || !eq[1])
    return kd_error(err, "--rename %s: expected OLD=NEW, e.g. det.cls='L_{cls}'", text ? text : "");
  if (snprintf(buf, len, "%s", text) >= (int)len) return kd_error(err, "--rename %s: too long", text);
  buf[eq - text] = 0;
  *from = buf;
  *to = buf + (eq - text) + 1;
  return 0;
}

const char *kd_snapfig_renamed(const KdSnapFigView *v, const char *name) {
  for (int i = 0; v && name && i < v->nrename; i++)
    if (!strcmp(v->rename_from[i], name)) return v->rename_to[i];
  return name;
}

typedef struct Cmd {
  char *buf;
  size_t len, n;
  int over;
} Cmd;

static void add(Cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(Cmd *c, const char *fmt, ...) {
  if (c->over) return;
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(c->buf + c->n, c->len - c->n, fmt, ap);
  va_end(ap);
  if (k < 0 || (size_t)k >= c->len - c->n)
    c->over = 1;
  else
    c->n += (size_t)k;
}

/* A word the shell reads back as is: bare when safe, else single-quoted. */
static void add_word(Cmd *c, const char *w) {
  int safe = *w != 0;
  for (const char *q = w; *q; q++)
    if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=,+-@%", *q)) safe = 0;
  if (safe) {
    add(c, " %s", w);
    return;
  }
  add(c, " '");
  for (const char *q = w; *q; q++) {
    if (*q == '\'')
      add(c, "'\\''");
    else
      add(c, "%c", *q);
  }
  add(c, "'");
}

static void add_list(Cmd *c, const char *opt, const int *v, int n) {
  add(c, " %s ", opt);
  for (int i = 0; i < n; i++) add(c, "%s%d", i ? "," : "", v[i]);
}

static void add_limits(Cmd *c, const char *opt, double lo, double hi) {
  if (!isfinite(lo) && !isfinite(hi)) return;
  char a[32] = "", b[32] = "";
  if (isfinite(lo)) snprintf(a, sizeof a, "%.10g", lo);
  if (isfinite(hi)) snprintf(b, sizeof b, "%.10g", hi);
  add(c, " %s %s:%s", opt, a, b);
}

/* The hidden series or keys. */
static void add_hide(Cmd *c, const KdSnapFigView *v) {
  if (v->nhide <= 0) return;
  char list[1024] = "";
  for (int i = 0; i < v->nhide; i++) {
    size_t n = strlen(list);
    snprintf(list + n, sizeof list - n, "%s%s", i ? "," : "", v->hide[i]);
  }
  add(c, " --hide");
  add_word(c, list);
}

/* A chart's hidden series, legend place and axis limits. */
static void add_chart(Cmd *c, const KdSnapFigView *v) {
  add_hide(c, v);
  if (v->legend != KD_FIG_LEGEND_TOP) add(c, " --legend %s", kd_fig_legend_pos_name(v->legend));
  add_limits(c, "--xlim", v->xmin, v->xmax);
  add_limits(c, "--ylim", v->ymin, v->ymax);
  add_limits(c, "--aplim", v->apmin, v->apmax);
}

int kd_snapfig_command(const KdSnapFigKind *kind, const KdSnapFigView *v, const char *run_dir,
                       const KdFigStyle *st, const KdExportOpts *o, KdExportFormat format,
                       const char *out_path, char *buf, size_t len) {
  Cmd c = {buf, len, 0, 0};
  if (!len || !kind) return -1;
  buf[0] = 0;
  unsigned needs = kind->needs, opt = kind->options;
  add(&c, "kdscope export --run");
  add_word(&c, run_dir && *run_dir ? run_dir : "RUN_DIR");
  add(&c, " --figure %s", kind->name);
  if (v->snap && (needs & (KD_SNAPFIG_NEEDS_SNAPSHOT | KD_SNAPFIG_NEEDS_SNAPSHOTS)))
    add(&c, " --step %d", v->snap->step);
  if (needs & KD_SNAPFIG_ONE_IMAGE) add(&c, " --images %d", v->image);
  if ((opt & KD_SNAPFIG_OPT_IMAGES) && v->images) add_list(&c, "--images", v->images, v->nimages);
  if ((needs & KD_SNAPFIG_LEVEL) || ((opt & KD_SNAPFIG_OPT_ANY_LEVEL) && v->level >= 0)) {
    char lv[16];
    if (v->snap)
      kd_snapshot_level_name(v->snap, v->level, lv, sizeof lv);
    else
      snprintf(lv, sizeof lv, "P%d", v->level + 3);
    add(&c, " --level %s", lv);
  }
  int H, W, py, px;
  if ((opt & KD_SNAPFIG_OPT_PIXEL) && v->pick.on && v->snap && !kd_snapfig_level_size(v->snap, v->image, v->level, &H, &W, NULL)) {
    kd_snapfig_pick_cell(v->pick, H, W, &py, &px);
    add(&c, " --pixel %d,%d", py, px);
  }
  if ((opt & KD_SNAPFIG_OPT_COLUMNS) && v->cols) {
    add(&c, " --columns ");
    for (int i = 0; i < v->ncols; i++) add(&c, "%s%s", i ? "," : "", kd_snapfig_col_name(v->cols[i]));
  }
  if ((opt & KD_SNAPFIG_OPT_MASK) && v->mask) {
    add(&c, " --mask");
    add_word(&c, v->mask);
  }
  if ((opt & KD_SNAPFIG_OPT_OVERLAY) && v->overlay > 0) add(&c, " --overlay %.10g", v->overlay);
  if ((opt & KD_SNAPFIG_OPT_INDEPENDENT) && v->independent) add(&c, " --independent");
  if ((opt & KD_SNAPFIG_OPT_ALL_LEVELS) && v->all_levels) add(&c, " --all-levels");
  if ((opt & KD_SNAPFIG_OPT_GAP) && v->gap) {
    add(&c, " --gap");
    add_word(&c, v->gap);
  }
  if ((opt & KD_SNAPFIG_OPT_PARTS) && v->parts) {
    add(&c, " --parts ");
    for (int i = 0; i < v->nparts; i++) add(&c, "%s%s", i ? "," : "", v->parts[i]);
  }
  if ((opt & KD_SNAPFIG_OPT_COMPARE) && v->ref && v->ref_dir) {
    add(&c, " --compare");
    add_word(&c, v->ref_dir);
    if (v->ref_label) {
      add(&c, " --compare-label");
      add_word(&c, v->ref_label);
    }
  }
  if ((opt & KD_SNAPFIG_OPT_LOGY) && v->logy == KD_SNAPFIG_LOGY_LOG) add(&c, " --logy");
  if ((opt & KD_SNAPFIG_OPT_LOGY) && v->logy == KD_SNAPFIG_LOGY_LINEAR) add(&c, " --liny");
  if ((opt & KD_SNAPFIG_OPT_SMOOTH) && v->smooth.kind != KD_SMOOTH_NONE) {
    char sm[48];
    kd_snapfig_smooth_format(&v->smooth, sm, sizeof sm);
    add(&c, " --smooth %s", sm);
  }
  if (opt & (KD_SNAPFIG_OPT_PARTS | KD_SNAPFIG_OPT_SMOOTH))
    for (int i = 0; i < v->nrename; i++) {
      char kv[512];
      snprintf(kv, sizeof kv, "%s=%s", v->rename_from[i], v->rename_to[i]);
      add(&c, " --rename");
      add_word(&c, kv);
    }
  if (opt & KD_SNAPFIG_OPT_PARTS) add_chart(&c, v);
  else if (opt & KD_SNAPFIG_OPT_HIDE) add_hide(&c, v);
  if (v->no_title) add(&c, " --no-title");
  KdFigStyle def;
  kd_fig_style_default(&def);
  if (st && st->font_family && strcmp(st->font_family, def.font_family)) {
    add(&c, " --font");
    add_word(&c, st->font_family);
  }
  double font = o->font_pt > 0 ? o->font_pt : st ? st->font_pt : def.font_pt;
  if (st && st->panel_letters) add(&c, " --letters");
  if (font != def.font_pt) add(&c, " --font-pt %.10g", font);
  if (st && st->line_pt != def.line_pt) add(&c, " --line-pt %.10g", st->line_pt);
  static const char *fmts[] = {"png", "svg", "pdf"};
  add(&c, " --format %s", fmts[format]);
  if (o->unit == KD_UNIT_MM)
    add(&c, " --width-mm %.10g", o->width);
  else
    add(&c, " --width-in %.10g", o->unit == KD_UNIT_PT ? o->width / 72.0 : o->width);
  if (o->height > 0) {
    if (o->unit == KD_UNIT_MM)
      add(&c, " --height-mm %.10g", o->height);
    else
      add(&c, " --height-in %.10g", o->unit == KD_UNIT_PT ? o->height / 72.0 : o->height);
  }
  add(&c, " --dpi %.10g", o->dpi > 0 ? o->dpi : 300);
  add(&c, " --out");
  add_word(&c, out_path && *out_path ? out_path : "FIGURE");
  return c.over ? -1 : 0;
}
