/* Axes for the figures: tick generation (linear and true log), tick label
 * formatting, axis ranges and margins, the frame with ticks and labels,
 * legends and horizontal colorbars. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "figure_priv.h"

#define TICK_FONT 0.875 /* tick labels, relative to the base font */

/* ---- ticks ---- */

static double snap(double v, double step) {
  return fabs(v) < step * 1e-9 ? 0.0 : v;
}

void kd_fig_ticks_linear(double lo, double hi, int max_major, KdFigTicks *t) {
  memset(t, 0, sizeof *t);
  if (!(isfinite(lo) && isfinite(hi))) return;
  if (hi < lo) { double s = lo; lo = hi; hi = s; }
  if (max_major < 2) max_major = 2;
  if (max_major > KD_FIG_MAX_TICKS) max_major = KD_FIG_MAX_TICKS;
  double range = hi - lo;
  if (range <= 0) range = fabs(lo) > 0 ? fabs(lo) : 1;
  double base = pow(10, floor(log10(range / max_major)));
  static const double mult[] = {1, 2, 2.5, 5, 10, 20};
  double step = base;
  for (size_t i = 0; i < sizeof mult / sizeof mult[0]; i++) {
    step = base * mult[i];
    double cnt = floor(hi / step + 1e-9) - ceil(lo / step - 1e-9) + 1;
    if (cnt <= max_major) break;
  }
  t->step = step;
  for (double k = ceil(lo / step - 1e-9); k <= floor(hi / step + 1e-9); k++) {
    if (t->nmajor >= KD_FIG_MAX_TICKS) break;
    t->major[t->nmajor++] = snap(k * step, step);
  }
}

static void add_minor(KdFigTicks *t, double v) {
  if (t->nminor < 4 * KD_FIG_MAX_TICKS) t->minor[t->nminor++] = v;
}

void kd_fig_ticks_log(double lo, double hi, int max_major, KdFigTicks *t) {
  memset(t, 0, sizeof *t);
  if (!(lo > 0 && hi > 0 && isfinite(lo) && isfinite(hi))) return;
  if (hi < lo) { double s = lo; lo = hi; hi = s; }
  if (max_major < 2) max_major = 2;
  if (max_major > KD_FIG_MAX_TICKS) max_major = KD_FIG_MAX_TICKS;
  const double eps = 1e-9;
  int e0 = (int)floor(log10(lo)), e1 = (int)ceil(log10(hi));
  int first = (int)ceil(log10(lo) - eps), last = (int)floor(log10(hi) + eps);
  int ndec = last - first + 1; /* decades 10^e inside the range */
  if (ndec >= 2) {
    int k = (ndec + max_major - 1) / max_major;
    t->step = k;
    for (int e = e0; e <= e1; e++) {
      double d = pow(10, e);
      /* Majors on decades divisible by k so ticks stay put when panning. */
      if (((e % k) + k) % k == 0) {
        if (d >= lo * (1 - eps) && d <= hi * (1 + eps) && t->nmajor < KD_FIG_MAX_TICKS)
          t->major[t->nmajor++] = d;
      } else if (d >= lo && d <= hi) {
        add_minor(t, d);
      }
      if (k == 1)
        for (int m = 2; m <= 9; m++)
          if (m * d >= lo && m * d <= hi) add_minor(t, m * d);
    }
    return;
  }
  /* Under two decades: mantissa sets in order of preference; the first
   * giving 2..max_major majors wins, the other mantissas become minors. */
  static const int sets[3][10] = {{1, 2, 5}, {1, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9}};
  static const int nset[3] = {3, 2, 9};
  for (int s = 0; s < 3; s++) {
    t->nmajor = t->nminor = 0;
    for (int e = e0; e <= e1; e++)
      for (int m = 1; m <= 9; m++) {
        double v = m * pow(10, e);
        if (v < lo * (1 - eps) || v > hi * (1 + eps)) continue;
        int is_major = 0;
        for (int q = 0; q < nset[s]; q++) is_major |= (sets[s][q] == m);
        if (is_major && t->nmajor < KD_FIG_MAX_TICKS)
          t->major[t->nmajor++] = v;
        else if (!is_major)
          add_minor(t, v);
      }
    if (t->nmajor >= 2 && t->nmajor <= max_major) break;
    t->nmajor = 0;
  }
  if (t->nmajor < 2) { /* a very narrow range: linear ticks on the log axis */
    kd_fig_ticks_linear(lo, hi, max_major, t);
    t->step = -t->step; /* negative: linear spacing on a log axis */
  }
}

/* ---- formatting ---- */

static const char *super_digit[10] = {"\xe2\x81\xb0", "\xc2\xb9", "\xc2\xb2", "\xc2\xb3",
                                      "\xe2\x81\xb4", "\xe2\x81\xb5", "\xe2\x81\xb6",
                                      "\xe2\x81\xb7", "\xe2\x81\xb8", "\xe2\x81\xb9"};

/* "10⁻⁵" (mantissa 1) or "2×10⁻⁵". */
static void format_pow10(double mant, int e, char *buf, size_t len) {
  char sup[40] = "";
  char digits[16];
  snprintf(digits, sizeof digits, "%d", e < 0 ? -e : e);
  if (e < 0) strcat(sup, "\xe2\x81\xbb"); /* superscript minus */
  for (char *d = digits; *d; d++) strcat(sup, super_digit[*d - '0']);
  if (fabs(mant - 1) < 1e-9)
    snprintf(buf, len, "10%s", sup);
  else
    snprintf(buf, len, "%g\xc3\x97" "10%s", mant, sup);
}

/* Strips trailing zeros after a decimal point ("2.50" -> "2.5", "3.0" -> "3"). */
static void trim_zeros(char *s) {
  char *dot = strchr(s, '.');
  if (!dot) return;
  char *end = s + strlen(s) - 1;
  while (end > dot && *end == '0') *end-- = 0;
  if (end == dot) *end = 0;
}

/* Decimals needed to write multiples of step exactly (0.25 -> 2, 500 -> 0). */
static int step_decimals(double step) {
  int dec = 0;
  double s = fabs(step);
  while (dec < 6 && fabs(s - round(s)) > 1e-6 * fmax(s, 1e-300)) {
    s *= 10;
    dec++;
  }
  return dec;
}

/* Replaces an ASCII hyphen-minus at the start by a real minus sign. */
static void real_minus(char *buf, size_t len) {
  if (buf[0] != '-') return;
  size_t n = strlen(buf);
  if (n + 3 > len) return;
  memmove(buf + 3, buf + 1, n); /* includes the NUL */
  memcpy(buf, "\xe2\x88\x92", 3);
}

void kd_fig_format_tick(double v, double step, int log, char *buf, size_t len) {
  if (len == 0) return;
  if (!isfinite(v)) {
    snprintf(buf, len, "%g", v);
    return;
  }
  if (v == 0) {
    snprintf(buf, len, "0");
    return;
  }
  if (log && step > 0) { /* a log axis with decade majors */
    int e = (int)floor(log10(fabs(v)) + 1e-9);
    double mant = v / pow(10, e);
    if (e >= -3 && e <= 4) {
      snprintf(buf, len, "%.*f", e < 0 ? -e : 0, v);
      trim_zeros(buf);
    } else {
      format_pow10(round(mant * 100) / 100, e, buf, len);
    }
    return;
  }
  double a = fabs(v);
  step = fabs(step);
  if (!(step > 0)) step = a; /* 1-2-5 majors on a log axis: format by value */
  if (a >= 1e4 && step >= 100) { /* 12k, 1.5M */
    const char *suf = a >= 1e6 ? "M" : "k";
    double div = a >= 1e6 ? 1e6 : 1e3;
    int dec = step_decimals(step / div);
    snprintf(buf, len, "%.*f%s", dec > 3 ? 3 : dec, v / div, suf);
  } else if (a < 1e-3 || a >= 1e6) {
    int e = (int)floor(log10(a));
    format_pow10(round(v / pow(10, e) * 100) / 100, e, buf, len);
    return;
  } else {
    snprintf(buf, len, "%.*f", step_decimals(step), v);
    trim_zeros(buf);
  }
  real_minus(buf, len);
}

/* A colorbar end: 3 significant digits of the range's magnitude `mag`
 * (so 1.1e-6 next to 1.51 reads 0, as 0.00 would), or of the value itself
 * when mag is 0 (log bars, where each end has its own magnitude). */
static void format_value(double v, double mag, char *buf, size_t len) {
  if (v == 0 || !isfinite(v)) {
    snprintf(buf, len, "%g", v);
    return;
  }
  int e = (int)floor(log10(mag > 0 ? mag : fabs(v)));
  if (e >= -3 && e <= 4) {
    int dec = 2 - e;
    if (dec < 0) dec = 0;
    snprintf(buf, len, "%.*f", dec, v);
    trim_zeros(buf);
  } else {
    double mant = round(v / pow(10, e) * 100) / 100;
    if (mant == 0)
      snprintf(buf, len, "0");
    else
      format_pow10(mant, e, buf, len);
  }
  if (!strcmp(buf, "-0")) snprintf(buf, len, "0");
  real_minus(buf, len);
}

/* Whether a log axis labels all its majors as powers of ten: when any
 * decade major falls outside the plainly written 0.001 .. 10000. */
static int log_pow_style(const KdFigTicks *t) {
  if (!(t->step > 0)) return 0;
  for (int i = 0; i < t->nmajor; i++)
    if (t->major[i] < 0.99e-3 || t->major[i] > 1.01e4) return 1;
  return 0;
}

/* A value as m×10^e with 3 significant digits (or 10^e). */
static void format_pow_sig(double v, char *buf, size_t len) {
  if (!(v > 0)) {
    format_value(v, 0, buf, len);
    return;
  }
  int e = (int)floor(log10(v));
  format_pow10(round(v / pow(10, e) * 100) / 100, e, buf, len);
}

/* A major tick's label, in one style along the axis. */
static void tick_label(const KdFigAxis *a, double v, char *buf, size_t len) {
  if (a->log && log_pow_style(&a->ticks)) {
    format_pow_sig(v, buf, len);
    return;
  }
  kd_fig_format_tick(v, a->ticks.step, a->log, buf, len);
}

/* ---- axes ---- */

void kd_fig_axis_setup(KdFigAxis *a, double dlo, double dhi, int log, int max_ticks, int pad) {
  a->log = log;
  if (!(isfinite(dlo) && isfinite(dhi)) || (log && !(dlo > 0 && dhi > 0))) {
    dlo = log ? 0.1 : 0;
    dhi = log ? 10 : 1;
  }
  if (dhi < dlo) { double s = dlo; dlo = dhi; dhi = s; }
  if (log) {
    double l0 = log10(dlo), l1 = log10(dhi);
    if (l1 - l0 < 1e-6) { l0 -= 0.3; l1 += 0.3; }
    if (pad) {
      double p = (l1 - l0) * 0.03;
      l0 -= p;
      l1 += p;
    }
    a->lo = pow(10, l0);
    a->hi = pow(10, l1);
    kd_fig_ticks_log(a->lo, a->hi, max_ticks, &a->ticks);
  } else {
    if (dhi - dlo < 1e-12 * fmax(1, fabs(dhi))) {
      double d = fabs(dlo) > 0 ? fabs(dlo) * 0.1 : 0.5;
      dlo -= d;
      dhi += d;
    }
    if (pad) {
      double p = (dhi - dlo) * 0.03;
      /* Do not pad a non-negative range below zero (losses, AP). */
      dlo = (dlo >= 0 && dlo - p < 0) ? 0 : dlo - p;
      dhi += p;
    }
    a->lo = dlo;
    a->hi = dhi;
    kd_fig_ticks_linear(a->lo, a->hi, max_ticks, &a->ticks);
  }
}

double kd_fig_axis_map(const KdFigAxis *a, double v, double p0, double p1) {
  double t;
  if (a->log) {
    if (!(v > 0)) return NAN;
    t = (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo));
  } else {
    t = (v - a->lo) / (a->hi - a->lo);
  }
  return p0 + t * (p1 - p0);
}

double kd_fig_axis_left_margin(cairo_t *cr, const KdFigStyle *st, const KdFigAxis *y,
                               const char *ylabel) {
  cairo_save(cr);
  kd_fig_font(cr, st, st->font_pt * TICK_FONT, KD_FIG_NORMAL);
  double w = 0;
  char buf[64];
  for (int i = 0; i < y->ticks.nmajor; i++) {
    tick_label(y, y->ticks.major[i], buf, sizeof buf);
    w = fmax(w, kd_fig_text_width(cr, buf));
  }
  cairo_restore(cr);
  double m = w + st->font_pt * 0.5;
  if (ylabel && *ylabel) m += st->font_pt * KD_FIG_LINE;
  return m + st->font_pt * 0.2;
}

double kd_fig_axis_bottom_margin(const KdFigStyle *st, const char *xlabel, int tick_labels) {
  double m = st->font_pt * 0.3;
  if (tick_labels) m += st->font_pt * TICK_FONT * KD_FIG_LINE;
  if (tick_labels && xlabel && *xlabel) m += st->font_pt * KD_FIG_LINE;
  return m;
}

/* Every how many majors to label so labels along x do not collide. */
static int x_label_stride(cairo_t *cr, const KdFigAxis *x, KdFigRect plot) {
  if (x->ticks.nmajor < 2) return 1;
  char buf[64];
  double w = 0;
  for (int i = 0; i < x->ticks.nmajor; i++) {
    tick_label(x, x->ticks.major[i], buf, sizeof buf);
    w = fmax(w, kd_fig_text_width(cr, buf));
  }
  double gap = fabs(kd_fig_axis_map(x, x->ticks.major[1], 0, plot.w) -
                    kd_fig_axis_map(x, x->ticks.major[0], 0, plot.w));
  int stride = 1;
  while (stride < x->ticks.nmajor && gap * stride < w * 1.3) stride++;
  return stride;
}

void kd_fig_axes_draw(cairo_t *cr, const KdFigStyle *st, KdFigRect plot, const KdFigAxis *x,
                      const KdFigAxis *y, const char *xlabel, const char *ylabel,
                      int x_tick_labels) {
  double lw = st->line_pt, tick = st->font_pt * 0.35;
  double x0 = plot.x, x1 = plot.x + plot.w, y0 = plot.y + plot.h, y1 = plot.y;
  cairo_save(cr);
  cairo_set_line_cap(cr, CAIRO_LINE_CAP_BUTT);
  /* Grid lines at the majors, under everything else. */
  cairo_set_line_width(cr, lw * 0.6);
  cairo_set_source_rgb(cr, 0.88, 0.88, 0.88);
  for (int i = 0; i < x->ticks.nmajor; i++) {
    double px = kd_fig_axis_map(x, x->ticks.major[i], x0, x1);
    cairo_move_to(cr, px, y0);
    cairo_line_to(cr, px, y1);
  }
  for (int i = 0; i < y->ticks.nmajor; i++) {
    double py = kd_fig_axis_map(y, y->ticks.major[i], y0, y1);
    cairo_move_to(cr, x0, py);
    cairo_line_to(cr, x1, py);
  }
  cairo_stroke(cr);
  /* Frame and ticks. */
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_width(cr, lw);
  cairo_rectangle(cr, x0, y1, plot.w, plot.h);
  cairo_stroke(cr);
  for (int i = 0; i < x->ticks.nmajor; i++) {
    double px = kd_fig_axis_map(x, x->ticks.major[i], x0, x1);
    cairo_move_to(cr, px, y0);
    cairo_line_to(cr, px, y0 - tick);
  }
  for (int i = 0; i < y->ticks.nmajor; i++) {
    double py = kd_fig_axis_map(y, y->ticks.major[i], y0, y1);
    cairo_move_to(cr, x0, py);
    cairo_line_to(cr, x0 + tick, py);
  }
  for (int i = 0; i < x->ticks.nminor; i++) {
    double px = kd_fig_axis_map(x, x->ticks.minor[i], x0, x1);
    cairo_move_to(cr, px, y0);
    cairo_line_to(cr, px, y0 - tick * 0.55);
  }
  for (int i = 0; i < y->ticks.nminor; i++) {
    double py = kd_fig_axis_map(y, y->ticks.minor[i], y0, y1);
    cairo_move_to(cr, x0, py);
    cairo_line_to(cr, x0 + tick * 0.55, py);
  }
  cairo_stroke(cr);
  /* Tick labels. */
  char buf[64];
  kd_fig_font(cr, st, st->font_pt * TICK_FONT, KD_FIG_NORMAL);
  double gap = st->font_pt * 0.3;
  if (x_tick_labels) {
    int stride = x_label_stride(cr, x, plot);
    for (int i = 0; i < x->ticks.nmajor; i += stride) {
      double px = kd_fig_axis_map(x, x->ticks.major[i], x0, x1);
      tick_label(x, x->ticks.major[i], buf, sizeof buf);
      kd_fig_text(cr, px, y0 + gap, buf, 0.5, 0, 0);
    }
  }
  double ymaxw = 0;
  for (int i = 0; i < y->ticks.nmajor; i++) {
    double py = kd_fig_axis_map(y, y->ticks.major[i], y0, y1);
    tick_label(y, y->ticks.major[i], buf, sizeof buf);
    ymaxw = fmax(ymaxw, kd_fig_text_width(cr, buf));
    kd_fig_text(cr, x0 - gap, py, buf, 1, 0.5, 0);
  }
  /* Axis labels. */
  kd_fig_font(cr, st, st->font_pt, KD_FIG_NORMAL);
  if (x_tick_labels && xlabel && *xlabel)
    kd_fig_text(cr, (x0 + x1) / 2, y0 + gap + st->font_pt * TICK_FONT * KD_FIG_LINE, xlabel,
                0.5, 0, 0);
  if (ylabel && *ylabel)
    kd_fig_text(cr, x0 - gap - ymaxw - st->font_pt * 0.45, (y0 + y1) / 2, ylabel, 0.5, 1,
                -M_PI / 2);
  cairo_restore(cr);
}

/* ---- legend ---- */

void kd_fig_star_path(cairo_t *cr, double x, double y, double r) {
  for (int i = 0; i < 10; i++) {
    double a = -M_PI / 2 + i * M_PI / 5, rr = i % 2 ? r * 0.45 : r;
    if (i == 0)
      cairo_move_to(cr, x + rr * cos(a), y + rr * sin(a));
    else
      cairo_line_to(cr, x + rr * cos(a), y + rr * sin(a));
  }
  cairo_close_path(cr);
}

void kd_fig_marker(cairo_t *cr, int marker, double x, double y, double r) {
  if (marker <= KD_FIG_MARK_NONE) return;
  cairo_save(cr);
  cairo_set_dash(cr, NULL, 0, 0);
  cairo_new_path(cr);
  if (marker == KD_FIG_MARK_CIRCLE) {
    cairo_arc(cr, x, y, r, 0, 2 * M_PI);
  } else if (marker == KD_FIG_MARK_SQUARE) {
    cairo_rectangle(cr, x - r * 0.85, y - r * 0.85, r * 1.7, r * 1.7);
  } else {
    cairo_move_to(cr, x, y - r * 1.1);
    cairo_line_to(cr, x + r, y + r * 0.75);
    cairo_line_to(cr, x - r, y + r * 0.75);
    cairo_close_path(cr);
  }
  cairo_fill_preserve(cr);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_set_line_width(cr, r * 0.35);
  cairo_stroke(cr);
  cairo_restore(cr);
}

static void draw_key(cairo_t *cr, const KdFigStyle *st, const KdFigKey *k, double x, double y,
                     double w) {
  double h = st->font_pt * 0.7, lw = st->line_pt * 1.6;
  cairo_save(cr);
  kd_fig_set_rgb(cr, k->rgb, 1);
  switch (k->kind) {
  case KD_FIG_KEY_LINE:
    cairo_set_line_width(cr, lw);
    kd_fig_set_dash(cr, k->dash, lw);
    cairo_move_to(cr, x, y);
    cairo_line_to(cr, x + w, y);
    cairo_stroke(cr);
    if (k->marker) kd_fig_marker(cr, k->marker, x + w / 2, y, lw * 1.9);
    break;
  case KD_FIG_KEY_BOX:
    cairo_set_line_width(cr, lw * 0.8);
    kd_fig_set_dash(cr, k->dash, lw * 0.5);
    cairo_rectangle(cr, x + 0.5 * lw, y - h / 2, w - lw, h);
    cairo_stroke(cr);
    break;
  case KD_FIG_KEY_DOT_LINE:
    cairo_set_line_width(cr, lw * 0.6);
    kd_fig_set_dash(cr, k->dash, lw * 0.6);
    cairo_move_to(cr, x, y);
    cairo_line_to(cr, x + w, y);
    cairo_stroke(cr);
    __attribute__((fallthrough)); /* the dot over the line */
  case KD_FIG_KEY_DOT:
    cairo_arc(cr, x + w / 2, y, h * 0.4, 0, 2 * M_PI);
    cairo_fill(cr);
    break;
  case KD_FIG_KEY_TRIANGLE:
    cairo_set_line_width(cr, lw * 0.6);
    cairo_move_to(cr, x + w / 2, y - h * 0.45);
    cairo_line_to(cr, x + w / 2 + h * 0.45, y + h * 0.35);
    cairo_line_to(cr, x + w / 2 - h * 0.45, y + h * 0.35);
    cairo_close_path(cr);
    cairo_stroke(cr);
    break;
  case KD_FIG_KEY_FILL:
    cairo_rectangle(cr, x + w * 0.2, y - h / 2, w * 0.6, h);
    cairo_fill(cr);
    break;
  case KD_FIG_KEY_STAR:
    kd_fig_star_path(cr, x + w / 2, y, h * 0.65);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, lw * 0.4);
    cairo_stroke(cr);
    break;
  }
  cairo_restore(cr);
}

/* Lays keys out in centred rows of width w from (x, y): each key's box
 * into rects (when not NULL), drawn when draw is set; returns the height. */
static double legend_rows(cairo_t *cr, const KdFigStyle *st, double x, double y, double w,
                          const KdFigKey *keys, int n, int draw, KdFigRect *rects) {
  if (n <= 0) return 0;
  cairo_save(cr);
  double fs = st->font_pt * TICK_FONT;
  kd_fig_font(cr, st, fs, KD_FIG_NORMAL);
  double keyw = st->font_pt * 1.6, gap = st->font_pt * 0.3, sep = st->font_pt * 0.9;
  double line = fs * KD_FIG_LINE;
  /* Centre each row: measure rows first. */
  int start = 0;
  double yy = y;
  while (start < n) {
    double rw = 0;
    int end = start;
    while (end < n) {
      double iw = keyw + gap + kd_fig_text_width(cr, keys[end].label);
      if (end > start && rw + sep + iw > w) break;
      rw += (end > start ? sep : 0) + iw;
      end++;
    }
    double xx = x + fmax(0, (w - rw) / 2);
    for (int i = start; i < end; i++) {
      double iw = keyw + gap + kd_fig_text_width(cr, keys[i].label);
      if (rects) rects[i] = (KdFigRect){xx, yy, iw, line};
      if (draw) kd_fig_legend_key(cr, st, &keys[i], xx, yy + line / 2, keyw);
      xx += iw + sep;
    }
    yy += line;
    start = end;
  }
  cairo_restore(cr);
  return yy - y;
}

void kd_fig_legend_key(cairo_t *cr, const KdFigStyle *st, const KdFigKey *k, double x, double y,
                       double keyw) {
  cairo_save(cr);
  double fs = st->font_pt * TICK_FONT;
  kd_fig_font(cr, st, fs, KD_FIG_NORMAL);
  if (k->greyed) cairo_push_group(cr);
  draw_key(cr, st, k, x, y, keyw);
  if (k->greyed) {
    cairo_pop_group_to_source(cr);
    cairo_paint_with_alpha(cr, 0.3);
  }
  double grey = k->greyed ? 0.6 : 0;
  cairo_set_source_rgb(cr, grey, grey, grey);
  kd_fig_text(cr, x + keyw + st->font_pt * 0.3, y, k->label, 0, 0.5, 0);
  if (k->greyed) { /* struck through: plainly off */
    double tw = kd_fig_text_width(cr, k->label);
    cairo_set_line_width(cr, st->line_pt * 0.8);
    cairo_move_to(cr, x, y);
    cairo_line_to(cr, x + keyw + st->font_pt * 0.3 + tw, y);
    cairo_stroke(cr);
  }
  cairo_restore(cr);
}

double kd_fig_legend(cairo_t *cr, const KdFigStyle *st, double x, double y, double w,
                     const KdFigKey *keys, int n, int draw) {
  return legend_rows(cr, st, x, y, w, keys, n, draw, NULL);
}

double kd_fig_legend_rects(cairo_t *cr, const KdFigStyle *st, double x, double y, double w,
                           const KdFigKey *keys, int n, KdFigRect *rects) {
  return legend_rows(cr, st, x, y, w, keys, n, 0, rects);
}

void kd_fig_legend_column(cairo_t *cr, const KdFigStyle *st, double x, double y,
                          const KdFigKey *keys, int n, int draw, KdFigRect *rects, double *w,
                          double *h) {
  cairo_save(cr);
  double fs = st->font_pt * TICK_FONT;
  kd_fig_font(cr, st, fs, KD_FIG_NORMAL);
  double keyw = st->font_pt * 1.6, gap = st->font_pt * 0.3, line = fs * KD_FIG_LINE;
  double mw = 0;
  for (int i = 0; i < n; i++) mw = fmax(mw, keyw + gap + kd_fig_text_width(cr, keys[i].label));
  for (int i = 0; i < n; i++) {
    if (rects) rects[i] = (KdFigRect){x, y + i * line, mw, line};
    if (draw) kd_fig_legend_key(cr, st, &keys[i], x, y + i * line + line / 2, keyw);
  }
  cairo_restore(cr);
  if (w) *w = n > 0 ? mw : 0;
  if (h) *h = n * line;
}

/* ---- colorbar ---- */

double kd_fig_colorbar_height(const KdFigStyle *st, int has_label) {
  double bar = st->font_pt * 0.75, tick = st->font_pt * 0.3;
  double h = bar + tick + st->font_pt * TICK_FONT * KD_FIG_LINE;
  if (has_label) h += st->font_pt * KD_FIG_LINE;
  return h;
}

/* The colormap sampled at n pixels (a vector page at a set dpi gets one
 * per printed pixel: the map is a function, not an image to resample). */
static cairo_surface_t *cmap_strip(KdCmap cmap, int n) {
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, n, 1);
  if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
    cairo_surface_destroy(s);
    return NULL;
  }
  cairo_surface_flush(s);
  uint32_t *row = (uint32_t *)(void *)cairo_image_surface_get_data(s);
  for (int i = 0; i < n; i++) {
    uint8_t c[3];
    kd_cmap_rgb8(cmap, n > 1 ? i / (n - 1.0) : 0.5, c);
    row[i] = 0xFF000000u | (uint32_t)c[0] << 16 | (uint32_t)c[1] << 8 | c[2];
  }
  cairo_surface_mark_dirty(s);
  return s;
}

void kd_fig_colorbar_h(cairo_t *cr, const KdFigStyle *st, KdFigRect r, KdCmap cmap, double lo,
                       double hi, int log, const char *label) {
  double bar = st->font_pt * 0.75, tick = st->font_pt * 0.3;
  if (r.w <= 0) return;
  cairo_save(cr);
  double dpi = kd_fig_raster_dpi(cr), dx = r.w, dy = 0;
  cairo_user_to_device_distance(cr, &dx, &dy);
  long px = dpi > 0 ? lround(hypot(dx, dy) / 72.0 * dpi) : 256;
  cairo_surface_t *strip = cmap_strip(cmap, px >= 2 && px <= 32768 ? (int)px : 256);
  kd_fig_paint_nearest(cr, strip, (KdFigRect){r.x, r.y, r.w, bar}, 1);
  cairo_surface_destroy(strip);
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_width(cr, st->line_pt * 0.8);
  cairo_rectangle(cr, r.x, r.y, r.w, bar);
  cairo_stroke(cr);

  KdFigAxis ax = {.lo = lo, .hi = hi, .log = log && lo > 0};
  if (ax.log)
    kd_fig_ticks_log(lo, hi, 5, &ax.ticks);
  else
    kd_fig_ticks_linear(lo, hi, 5, &ax.ticks);
  kd_fig_font(cr, st, st->font_pt * TICK_FONT, KD_FIG_NORMAL);
  char buf[64], lo_s[64], hi_s[64];
  double ty = r.y + bar + tick, gap = st->font_pt * 0.8;
  /* The ends first, anchored inwards so they never leave the bar; shrink
   * them when a narrow bar cannot hold both. */
  double mag = ax.log ? 0 : fmax(fabs(lo), fabs(hi));
  int pow_style = ax.log && log_pow_style(&ax.ticks);
  format_value(lo, mag, lo_s, sizeof lo_s);
  format_value(hi, mag, hi_s, sizeof hi_s);
  if (pow_style) {
    format_pow_sig(lo, lo_s, sizeof lo_s);
    format_pow_sig(hi, hi_s, sizeof hi_s);
  }
  double ends_w = kd_fig_text_width(cr, lo_s) + kd_fig_text_width(cr, hi_s) + gap * 0.5;
  if (ends_w > r.w) cairo_set_font_size(cr, st->font_pt * TICK_FONT * fmax(0.6, r.w / ends_w));
  double left_end = r.x + kd_fig_text_width(cr, lo_s);
  kd_fig_text(cr, r.x, ty, lo_s, 0, 0, 0);
  double right_start = r.x + r.w - kd_fig_text_width(cr, hi_s);
  kd_fig_text(cr, r.x + r.w, ty, hi_s, 1, 0, 0);
  cairo_move_to(cr, r.x, r.y + bar);
  cairo_line_to(cr, r.x, r.y + bar + tick);
  cairo_move_to(cr, r.x + r.w, r.y + bar);
  cairo_line_to(cr, r.x + r.w, r.y + bar + tick);
  /* Interior nice ticks where their labels fit between the ends. */
  double last_end = left_end;
  for (int i = 0; i < ax.ticks.nmajor; i++) {
    double v = ax.ticks.major[i];
    double px = kd_fig_axis_map(&ax, v, r.x, r.x + r.w);
    if (!(px > r.x + 0.5 && px < r.x + r.w - 0.5)) continue;
    tick_label(&ax, v, buf, sizeof buf);
    double tw = kd_fig_text_width(cr, buf);
    if (px - tw / 2 < last_end + gap || px + tw / 2 > right_start - gap) {
      cairo_move_to(cr, px, r.y + bar); /* unlabelled tick */
      cairo_line_to(cr, px, r.y + bar + tick * 0.6);
      continue;
    }
    kd_fig_text(cr, px, ty, buf, 0.5, 0, 0);
    cairo_move_to(cr, px, r.y + bar);
    cairo_line_to(cr, px, r.y + bar + tick);
    last_end = px + tw / 2;
  }
  cairo_stroke(cr);
  if (label && *label) {
    kd_fig_font(cr, st, st->font_pt, KD_FIG_NORMAL);
    kd_fig_text_fit(cr, r.x + r.w / 2, ty + st->font_pt * TICK_FONT * KD_FIG_LINE, label, 0.5,
                    0, r.w);
  }
  cairo_restore(cr);
}

/* ---- two-colour key for binary masks ---- */

int kd_fig_maps_binary(const KdFigMap *const *maps, int n) {
  int any = 0;
  for (int k = 0; k < n; k++) {
    const KdFigMap *m = maps[k];
    if (!m || !m->v) continue;
    size_t cnt = (size_t)m->w * (size_t)(m->h > 0 ? m->h : 0);
    for (size_t i = 0; i < cnt; i++) {
      float v = m->v[i];
      if (!isfinite(v)) continue;
      if (v != 0 && v != 1) return 0;
      any = 1;
    }
  }
  return any;
}

void kd_fig_binary_key(cairo_t *cr, const KdFigStyle *st, KdFigRect r, KdCmap cmap, double lo, double hi,
                       const char *label) {
  cairo_save(cr);
  double fs = st->font_pt * TICK_FONT, sw = st->font_pt * 0.75, gap = st->font_pt * 0.3, sep = st->font_pt * 0.9;
  kd_fig_font(cr, st, fs, KD_FIG_NORMAL);
  const char *names[2] = {"0", "1"};
  double tw = sep * 0.5;
  for (int i = 0; i < 2; i++) tw += sw + gap + kd_fig_text_width(cr, names[i]) + (i ? 0 : sep);
  /* the swatches where a colorbar's bar is, the label where its label is */
  double x = r.x + fmax(0, (r.w - tw) / 2), y = r.y + sw / 2;
  for (int i = 0; i < 2; i++) {
    uint8_t c[3];
    kd_cmap_rgb8(cmap, hi > lo ? (i - lo) / (hi - lo) : i, c);
    cairo_set_source_rgb(cr, c[0] / 255.0, c[1] / 255.0, c[2] / 255.0);
    cairo_rectangle(cr, x, y - sw / 2, sw, sw);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, st->line_pt * 0.6);
    cairo_stroke(cr);
    kd_fig_text(cr, x + sw + gap, y, names[i], 0, 0.5, 0);
    x += sw + gap + kd_fig_text_width(cr, names[i]) + sep;
  }
  if (label && *label) {
    kd_fig_font(cr, st, st->font_pt, KD_FIG_NORMAL);
    double ty = r.y + sw + st->font_pt * 0.3 + fs * KD_FIG_LINE;
    kd_fig_text_fit(cr, r.x + r.w / 2, ty, label, 0.5, 0, r.w);
  }
  cairo_restore(cr);
}
