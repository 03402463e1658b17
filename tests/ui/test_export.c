/* `kdscope export` on a small real run (probe_run.h: fitnet (+ defeat)
 * distillation with snapshots, evaluations and a logged setting change):
 *  - every figure to PDF and SVG at 3.3 and 6.9 in, checked by
 *    check_export.py (page size, embedded DejaVu fonts, non-blank render,
 *    SVG parses, maps pixelated);
 *  - the command the window's export dialog prints (kd_snapfig_command)
 *    rebuilds, byte for byte, the PNG the shared builder gives in-process,
 *    for every figure with non-default choices (image, level, overlay,
 *    ranges, columns, parts, smoothing, every level, the grid's gap,
 *    letters, font, width, dpi);
 *  - the curves' rules on hand-written logs: log y by default over 3
 *    decades and not under one, no AP chart without an evaluation, AP in
 *    percent, smoothing breaks at the run's set events;
 *  - --csv metrics / events parse (quotes included) with the expected
 *    columns and one row per logged value / event;
 *  - the compare figure of two runs (the run and a copy of its log) to
 *    PDF and SVG, and its refusals;
 *  - figures for a paper: a serif family (embedded, per pdffonts; a family
 *    not installed falls back with a message), renamed series with math
 *    labels (pdftotext), images embedded at the export's dpi (pdfimages
 *    -list), nothing on the page's edge (pdftoppm), "(a)" letters;
 *  - bad requests exit 1 with a message that names the problem and leave
 *    no file.
 * Usage: test_export KDSCOPE OUTDIR [CHECKER]. The figures stay in OUTDIR
 * to look at. Exits 77 without the data source, or (after the other
 * checks) without poppler's tools. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "check.h"
#include "probe_run.h"
#include "snapfig.h"

static const char *kdscope, *outdir;
static char run[2100];

/* Runs cmd with stdout+stderr into out; returns the exit status. */
static int run_cmd(const char *cmd, char *out, size_t len) {
  char full[9300];
  snprintf(full, sizeof full, "%s 2>&1", cmd);
  FILE *p = popen(full, "r");
  if (!p) return -1;
  size_t n = fread(out, 1, len - 1, p);
  out[n] = 0;
  int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int have(const char *tool) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
  return system(cmd) == 0;
}

static char *slurp(const char *path, size_t *len) {
  return kd_read_text(path, len, (size_t)1 << 28, NULL);
}

/* ---- every figure to PDF and SVG ---- */

static void export_all(FILE *manifest) {
  static const struct {
    const char *name, *extra[2];
  } extras[] = {
      {"grid", {"--letters", "--letters --level P4 --columns image,teacher,student,gap,mask --overlay 0.5"}},
      {"curves", {"--logy", "--logy --smooth ema:0.6"}},
      {"gradients", {"", "--level P3 --images 0,1"}},
      {"gap", {"", "--images 1 --level P4 --independent"}},
      {"masks", {"", "--images 2 --overlay 0.6"}},
      {"attention", {"", "--images 3 --level P5"}},
      {"gradmaps", {"", "--images 1"}},
      {"image", {"", "--images 1 --step 9"}},
      {"projection", {"", "--step last"}},
  };
  const double widths[2] = {3.3, 6.9};
  for (int k = 0; k < kd_snapfig_count(); k++)
    for (int w = 0; w < 2; w++)
      for (int f = 0; f < 2; f++) {
        if (kd_snapfig_at(k)->needs & KD_SNAPFIG_IF_FIELDS) continue; /* a RetinaNet run: test_frcnn_panels, test_roipanel */
        const char *name = kd_snapfig_at(k)->name, *ext = f ? "svg" : "pdf", *extra = "";
        for (size_t e = 0; e < sizeof extras / sizeof extras[0]; e++)
          if (!strcmp(extras[e].name, name)) extra = extras[e].extra[w];
        char path[2300], cmd[4800], out[4096];
        snprintf(path, sizeof path, "%s/%s_%.1fin.%s", outdir, name, widths[w], ext);
        snprintf(cmd, sizeof cmd, "'%s' export --run '%s' --figure %s --width-in %.1f %s --out '%s'", kdscope, run, name,
                 widths[w], extra, path);
        int rc = run_cmd(cmd, out, sizeof out);
        double wpt = 0, hpt = 0;
        const char *at = strstr(out, ": ");
        CHECK_MSG(rc == 0 && at && sscanf(at, ": %lf x %lf pt", &wpt, &hpt) == 2, "%s -> %d: %s", cmd, rc, out);
        CHECK_MSG(wpt > 0 && fabs(wpt - widths[w] * 72) < 0.01 && hpt > 0.2 * wpt && hpt < 3 * wpt + 200, "%s: %g x %g pt",
                  path, wpt, hpt);
        if (rc == 0) fprintf(manifest, "%s %.4f %.4f\n", path, wpt, hpt);
      }
}

/* ---- the dialog's command rebuilds the in-process figure exactly ---- */

static void check_command(const KdSnapFigKind *kind, const KdSnapFigView *v, const KdFigStyle *st, const KdExportOpts *o) {
  const char *name = kind->name;
  KdSnapFigStore *store = kd_snapfig_store_new();
  KdFigPanel panel;
  KdError err = {{0}};
  char a[2300], b[2300], cmd[4096], full[4600], out[4096];
  snprintf(a, sizeof a, "%s/inproc_%s.png", outdir, name);
  snprintf(b, sizeof b, "%s/cmd_%s.png", outdir, name);
  int rc = kd_snapfig_build(kind, v, store, &panel, &err);
  CHECK_MSG(rc == 0, "%s: %s", name, err.msg);
  if (!rc) CHECK_MSG(kd_export_panel(a, KD_EXPORT_PNG, &panel, st, o, &err) == 0, "%s: %s", name, err.msg);
  CHECK(kd_snapfig_command(kind, v, run, st, o, KD_EXPORT_PNG, b, cmd, sizeof cmd) == 0);
  CHECK_MSG(!strncmp(cmd, "kdscope export ", 15), "%s", cmd);
  snprintf(full, sizeof full, "'%s'%s", kdscope, cmd + 7);
  rc = run_cmd(full, out, sizeof out);
  CHECK_MSG(rc == 0, "%s -> %d: %s", cmd, rc, out);
  size_t la = 0, lb = 0;
  char *da = slurp(a, &la), *db = slurp(b, &lb);
  CHECK_MSG(da && db && la == lb && !memcmp(da, db, la), "%s: `%s` gives another PNG than the builder (%zu vs %zu bytes)",
            name, cmd, la, lb);
  free(da);
  free(db);
  kd_snapfig_store_free(store);
}

static void commands_reproduce(void) {
  KdError err = {{0}};
  KdRunLog *log = kd_runlog_open(run, &err);
  KdSnapshots *snaps = kd_snapshots_open(run, &err);
  CHECK_MSG(log && kd_runlog_refresh(log, &err) >= 0 && snaps && kd_snapshots_refresh(snaps, &err) >= 0, "%s", err.msg);
  if (!log || !snaps) return;
  int n = kd_snapshots_count(snaps);
  CHECK_MSG(n >= 3, "%d snapshots", n);
  KdSnapshot *snap = NULL;
  CHECK(n >= 3 && kd_snapshot_load(snaps, n - 2, &snap, &err) == 0); /* not the last: --step must pick it */
  if (!snap) return;
  KdFigStyle st;
  kd_fig_style_default(&st);
  KdExportOpts o;
  kd_export_opts_default(&o);
  o.dpi = 150;
  KdSnapFigView v;
  static const KdFigCol cols[3] = {KD_FIG_COL_IMAGE, KD_FIG_COL_GAP, KD_FIG_COL_STUDENT};
  static const int rows[2] = {2, 0}, gimgs[2] = {1, 3};
  static const char *parts[2] = {"det.cls", "fitnet.feat"};
  static const char *rn_from[2] = {"det.cls", "fitnet.weight"}, *rn_to[2] = {"L_{cls}", "\\lambda_{fit}"};
  static const char *hide[1] = {"AP50"};
  for (int k = 0; k < kd_snapfig_count(); k++) {
    if (!kd_snapfig_shown(kd_snapfig_at(k), snap)) continue; /* RetinaNet: no two-stage figure */
    kd_snapfig_view_default(&v);
    v.snap = snap, v.log = log, v.snaps = snaps;
    KdFigStyle s = st;
    KdExportOpts oo = o;
    const char *name = kd_snapfig_at(k)->name;
    if (!strcmp(name, "image")) v.image = 1;
    else if (!strcmp(name, "gap")) v.image = 2, v.level = 1, v.overlay = 0.5, v.independent = 1;
    else if (!strcmp(name, "masks")) v.overlay = 0.6, oo.unit = KD_UNIT_MM, oo.width = 88;
    else if (!strcmp(name, "attention")) v.image = 3, v.level = 1, v.independent = 1, oo.font_pt = 7;
    else if (!strcmp(name, "gradmaps")) v.image = 1, v.level = 2, oo.width = 6.9, oo.dpi = 96;
    else if (!strcmp(name, "projection")) v.no_title = 1, s.line_pt = 0.8;
    else if (!strcmp(name, "grid"))
      v.images = rows, v.nimages = 2, v.cols = cols, v.ncols = 3, v.level = 1, v.mask = "fg", s.panel_letters = 1;
    else if (!strcmp(name, "curves"))
      v.parts = parts, v.nparts = 2, v.logy = KD_SNAPFIG_LOGY_LINEAR, v.smooth = (KdSmooth){KD_SMOOTH_MEAN, 0, 3},
      v.rename_from = rn_from, v.rename_to = rn_to, v.nrename = 2, v.hide = hide, v.nhide = 1,
      v.legend = KD_FIG_LEGEND_LOWER_LEFT, v.xmin = 2, v.ymax = 5, v.apmin = 0, v.apmax = 50,
      s.font_family = kd_fig_font_installed("DejaVu Serif") ? "DejaVu Serif" : "DejaVu Sans";
    else if (!strcmp(name, "gradients"))
      v.level = 0, v.images = gimgs, v.nimages = 2, v.smooth = (KdSmooth){KD_SMOOTH_EMA, 0.5, 1}, oo.height = 3;
    check_command(kd_snapfig_at(k), &v, &s, &oo);
  }
  /* every level side by side, and the grid's gap column asked for: --all-levels, --gap */
  kd_snapfig_view_default(&v);
  v.snap = snap, v.image = 1, v.all_levels = 1;
  check_command(kd_snapfig_find("gap"), &v, &st, &o);
  check_command(kd_snapfig_find("masks"), &v, &st, &o);
  kd_snapfig_view_default(&v);
  v.snap = snap, v.level = 2, v.gap = "fitnet";
  check_command(kd_snapfig_find("grid"), &v, &st, &o);
  /* curves compared with another run (hand-written log): its parts of the
   * names drawn (det.cls, not fitnet.feat) and its AP join, dotted, and
   * the command carries --compare and the label. */
  char refdir[2300], path[2400];
  snprintf(refdir, sizeof refdir, "%s/ref run", outdir);
  mkdir(refdir, 0755);
  snprintf(path, sizeof path, "%s/config.json", refdir);
  FILE *f = fopen(path, "w");
  if (f) fputs("{}\n", f), fclose(f);
  snprintf(path, sizeof path, "%s/metrics.jsonl", refdir);
  f = fopen(path, "w");
  if (f) {
    for (int i = 1; i <= 16; i++) fprintf(f, "{\"step\":%d,\"loss\":%g,\"parts\":{\"det.cls\":%g}}\n", i, 3.0 / i, 1.0 / i);
    fputs("{\"step\":16,\"eval\":{\"AP\":0.25}}\n", f);
    fclose(f);
  }
  KdRunLog *ref = kd_runlog_open(refdir, &err);
  CHECK_MSG(ref && kd_runlog_refresh(ref, &err) == 1, "%s", err.msg);
  kd_snapfig_view_default(&v);
  v.log = log, v.parts = parts, v.nparts = 2, v.ref = ref, v.ref_dir = refdir, v.ref_label = "base line";
  {
    KdSnapFigStore *cs = kd_snapfig_store_new();
    KdFigPanel cp;
    CHECK(kd_snapfig_build(kd_snapfig_find("curves"), &v, cs, &cp, &err) == 0);
    const KdFigCurves *c = cp.spec;
    CHECK_MSG(c->loss.nseries == 3 && !strcmp(c->loss.series[2].name, "base line: det.cls") && c->loss.series[2].dash == 2 &&
                  c->loss.series[2].color == c->loss.series[0].color && c->loss.series[2].n == 16,
              "%d loss series", c->loss.nseries);
    CHECK_MSG(c->ap.nseries >= 1 && !strcmp(c->ap.series[c->ap.nseries - 1].name, "base line: AP") &&
                  c->ap.series[c->ap.nseries - 1].y[0] == 25, /* in percent */
              "%d AP series", c->ap.nseries);
    kd_snapfig_store_free(cs);
  }
  check_command(kd_snapfig_find("curves"), &v, &st, &o);
  kd_runlog_free(ref);
  /* gradients stops at the view's snapshot: fewer points than the whole run */
  KdSnapFigStore *store = kd_snapfig_store_new();
  KdFigPanel p;
  kd_snapfig_view_default(&v);
  v.snaps = snaps, v.level = -1;
  CHECK(kd_snapfig_build(kd_snapfig_find("gradients"), &v, store, &p, &err) == 0);
  size_t all = ((const KdFigGradCurves *)p.spec)->n;
  v.snap = snap;
  CHECK(kd_snapfig_build(kd_snapfig_find("gradients"), &v, store, &p, &err) == 0);
  const KdFigGradCurves *g = p.spec;
  CHECK_MSG(all == (size_t)n && g->n == (size_t)n - 1, "%zu of %zu points, %d snapshots", g->n, all, n);
  CHECK(g->nsources >= 2); /* det + fitnet at least */
  int finite = 0;
  for (int s = 0; s < g->nsources; s++)
    for (size_t i = 0; i < g->n; i++) finite += isfinite(g->fg[s][i]) && g->fg[s][i] > 0 && isfinite(g->bg[s][i]);
  CHECK_MSG(finite >= (int)g->n, "%d finite fg/bg values", finite);
  kd_snapfig_store_free(store);
  kd_snapshot_free(snap);
  kd_snapshots_close(snaps);
  kd_runlog_free(log);
}

/* ---- the curves' rules: AP chart only with an evaluation, auto log,
 * smoothing restarts at the run's set events, AP in percent ---- */

/* A hand-written run: 40 steps of det.cls from `from` to `to` (geometric),
 * a set event at step 20, an evaluation at step 40 when eval_ap >= 0. */
static KdRunLog *hand_log(const char *name, double from, double to, double eval_ap) {
  char d[2300], path[2400];
  snprintf(d, sizeof d, "%s/%s", outdir, name);
  mkdir(d, 0755);
  snprintf(path, sizeof path, "%s/config.json", d);
  FILE *f = fopen(path, "w");
  if (f) fputs("{}\n", f), fclose(f);
  snprintf(path, sizeof path, "%s/metrics.jsonl", d);
  f = fopen(path, "w");
  for (int i = 1; f && i <= 40; i++) {
    double v = from * pow(to / from, (i - 1) / 39.0);
    fprintf(f, "{\"step\":%d,\"loss\":%g,\"parts\":{\"det.cls\":%g}}\n", i, 2 * v, v);
  }
  if (f && eval_ap >= 0) fprintf(f, "{\"step\":40,\"eval\":{\"AP\":%g,\"AP50\":%g}}\n", eval_ap, 2 * eval_ap);
  if (f) fclose(f);
  snprintf(path, sizeof path, "%s/events.jsonl", d);
  f = fopen(path, "w");
  if (f) fputs("{\"step\":20,\"event\":\"set\",\"key\":\"fitnet.weight\",\"value\":\"2\",\"old\":\"1\",\"source\":\"test\"}\n", f), fclose(f);
  KdError err;
  KdRunLog *log = kd_runlog_open(d, &err);
  CHECK_MSG(log && kd_runlog_refresh(log, &err) > 0, "%s: %s", d, err.msg);
  return log;
}

static void check_curves_rules(void) {
  KdRunLog *wide = hand_log("rules_wide", 10, 0.01, 0.25), *narrow = hand_log("rules_narrow", 2, 1, -1);
  KdSnapFigStore *st = kd_snapfig_store_new();
  KdSnapFigView v;
  KdFigPanel p;
  KdError err = {{0}};
  kd_snapfig_view_default(&v);
  v.log = wide;
  v.smooth = (KdSmooth){KD_SMOOTH_EMA, 0.9, 1};
  CHECK(wide && kd_snapfig_build(kd_snapfig_find("curves"), &v, st, &p, &err) == 0);
  const KdFigCurves *c = p.spec;
  /* 3 decades: log by default; AP in percent; smoothing breaks at step 20 */
  CHECK_MSG(kd_fig_plot_logy(&c->loss), "a loss over 3 decades is drawn on a linear axis");
  CHECK_MSG(c->ap.nseries == 2 && c->ap.series[0].y[0] == 25 && c->ap.series[1].y[0] == 50 && !strcmp(c->ap.ylabel, "AP (%)"),
            "AP: %d series, %g", c->ap.nseries, c->ap.nseries ? c->ap.series[0].y[0] : NAN);
  CHECK_MSG(c->loss.extra && c->loss.extra[0].nbreaks == 1 && c->loss.extra[0].breaks[0] == 20, "no smoothing break at the set event");
  double with_ap = kd_fig_curves_height(240, NULL, c);
  v.logy = KD_SNAPFIG_LOGY_LINEAR;
  CHECK(kd_snapfig_build(kd_snapfig_find("curves"), &v, st, &p, &err) == 0 && !kd_fig_plot_logy(&((const KdFigCurves *)p.spec)->loss));
  /* under a decade and no evaluation: linear, and no AP chart at all */
  kd_snapfig_view_default(&v);
  v.log = narrow;
  CHECK(narrow && kd_snapfig_build(kd_snapfig_find("curves"), &v, st, &p, &err) == 0);
  c = p.spec;
  double without = kd_fig_curves_height(240, NULL, c);
  CHECK_MSG(!kd_fig_plot_logy(&c->loss) && c->ap.nseries == 0 && without < 0.8 * with_ap,
            "no evaluation: log %d, %d AP series, %.0f pt tall (with AP %.0f)", kd_fig_plot_logy(&c->loss), c->ap.nseries, without,
            with_ap);
  printf("curves: %.0f pt tall with an AP chart, %.0f without an evaluation\n", with_ap, without);
  kd_snapfig_store_free(st);
  kd_runlog_free(wide);
  kd_runlog_free(narrow);
}

/* ---- CSV ---- */

/* Splits one CSV record (RFC 4180 quotes) at *p into fields; returns the
 * count, advancing *p past the line. */
static int csv_record(char **p, char fields[][256], int max) {
  int n = 0;
  char *s = *p;
  if (!*s) return -1;
  for (;;) {
    char *f = n < max ? fields[n] : NULL;
    size_t k = 0;
    if (*s == '"') {
      for (s++; *s && !(*s == '"' && s[1] != '"'); s++) {
        if (*s == '"') s++;
        if (f && k < 255) f[k++] = *s;
      }
      if (*s == '"') s++;
    } else {
      for (; *s && *s != ',' && *s != '\n'; s++)
        if (f && k < 255) f[k++] = *s;
    }
    if (f) f[k] = 0;
    n++;
    if (*s == ',') {
      s++;
      continue;
    }
    if (*s == '\n') s++;
    break;
  }
  *p = s;
  return n;
}

static void check_csv(void) {
  char path[2300], cmd[4800], out[4096], f[8][256];
  snprintf(path, sizeof path, "%s/metrics.csv", outdir);
  snprintf(cmd, sizeof cmd, "'%s' export --run '%s' --csv metrics --out '%s'", kdscope, run, path);
  CHECK_MSG(run_cmd(cmd, out, sizeof out) == 0, "%s: %s", cmd, out);
  size_t len;
  char *text = slurp(path, &len), *p = text;
  KdError err;
  KdRunLog *log = kd_runlog_open(run, &err);
  CHECK(log && kd_runlog_refresh(log, &err) >= 0);
  size_t expect = 0;
  for (int i = 0; log && i < kd_runlog_nseries(log); i++) expect += kd_runlog_series(log, i).n;
  CHECK(text && csv_record(&p, f, 8) == 4 && !strcmp(f[0], "step") && !strcmp(f[1], "name") && !strcmp(f[2], "value") &&
        !strcmp(f[3], "unit"));
  size_t rows = 0;
  int ap = 0, loss = 0, bad = 0;
  int n;
  /* AP in percent, as the figures show it, and the unit column says so. */
  KdRunSeries log_ap = log ? kd_runlog_find(log, "eval.AP") : (KdRunSeries){0};
  while (text && (n = csv_record(&p, f, 8)) > 0) {
    char *e1, *e2;
    double step = strtod(f[0], &e1), v = strtod(f[2], &e2);
    int pct = !strncmp(f[1], "eval.AP", 7) || !strncmp(f[1], "eval.AR", 7);
    bad += n != 4 || *e1 || *e2 || step < 0 || !f[1][0] || strcmp(f[3], pct ? "%" : "");
    for (size_t j = 0; !strcmp(f[1], "eval.AP") && j < log_ap.n; j++)
      ap += log_ap.x[j] == step && fabs(v - 100 * log_ap.y[j]) < 1e-6 * fmax(1, v) && v >= 0 && v <= 100;
    loss += !strcmp(f[1], "loss") && v > 0;
    rows++;
  }
  CHECK_MSG(!bad && rows == expect && ap >= 2 && loss >= 10, "metrics.csv: %zu rows (expected %zu), %d bad, %d AP, %d loss",
            rows, expect, bad, ap, loss);
  free(text);

  snprintf(path, sizeof path, "%s/events.csv", outdir);
  snprintf(cmd, sizeof cmd, "'%s' export --run '%s' --csv events --out '%s'", kdscope, run, path);
  CHECK_MSG(run_cmd(cmd, out, sizeof out) == 0, "%s: %s", cmd, out);
  text = p = slurp(path, &len);
  static const char *head[7] = {"step", "time", "event", "key", "value", "old", "source"};
  CHECK(text && csv_record(&p, f, 8) == 7);
  for (int i = 0; text && i < 7; i++) CHECK_MSG(!strcmp(f[i], head[i]), "column %d is %s", i, f[i]);
  int set = 0;
  rows = 0;
  bad = 0;
  while (text && (n = csv_record(&p, f, 8)) > 0) {
    bad += n != 7 || !f[1][0] || !f[2][0];
    set += !strcmp(f[2], "set") && !strcmp(f[3], "fitnet.weight") && !strcmp(f[4], "2") && !strcmp(f[6], "test");
    rows++;
  }
  CHECK_MSG(!bad && set == 1 && (int)rows == (log ? kd_runlog_nevents(log) : -1), "events.csv: %zu rows, %d bad, %d set", rows,
            bad, set);
  free(text);
  kd_runlog_free(log);
}

/* `kdscope export --run RUN ARGS --out PATH` must exit 1 with a message
 * holding `expect` and leave no file. */
static void expect_refusal(const char *args, const char *expect, const char *path) {
  char cmd[9000], out[4096];
  snprintf(cmd, sizeof cmd, "'%s' export --run '%s' %s --out '%s'", kdscope, run, args, path);
  int rc = run_cmd(cmd, out, sizeof out);
  CHECK_MSG(rc == 1 && strstr(out, expect), "`%s` -> %d: %s (expected \"%s\")", args, rc, out, expect);
  struct stat sb;
  CHECK_MSG(stat(path, &sb) != 0, "`%s` left %s", args, path);
}

/* ---- several runs on one chart ---- */

/* Exports figure NAME of several runs (ARGS) to PDF and SVG, listed in the
 * manifest for check_export.py. */
static void export_runs(FILE *manifest, const char *name, const char *args) {
  for (int f = 0; f < 2; f++) {
    char path[2300], cmd[9000], out[4096];
    snprintf(path, sizeof path, "%s/%s_3.3in.%s", outdir, name, f ? "svg" : "pdf");
    snprintf(cmd, sizeof cmd, "'%s' export --figure %s %s --out '%s'", kdscope, name, args, path);
    double wpt = 0, hpt = 0;
    int rc = run_cmd(cmd, out, sizeof out);
    const char *at = strstr(out, ": ");
    CHECK_MSG(rc == 0 && at && sscanf(at, ": %lf x %lf pt", &wpt, &hpt) == 2, "%s -> %d: %s", cmd, rc, out);
    if (rc == 0) fprintf(manifest, "%s %.4f %.4f\n", path, wpt, hpt);
  }
}

static void check_compare(FILE *manifest, const char *other) {
  char args[6000];
  snprintf(args, sizeof args,
           "--run '%s' --run '%s' --labels first,second --series loss,det.cls+det.box --smooth ema:0.5 --logy", run,
           other);
  export_runs(manifest, "compare", args);
  /* The results dot plot: the run twice under one label, once under another. */
  snprintf(args, sizeof args, "--run '%s' --run '%s' --run '%s' --labels method,method,baseline --line 'teacher=0.5'",
           run, other, run);
  export_runs(manifest, "results", args);
  char path[2300];
  snprintf(path, sizeof path, "%s/bad_compare.pdf", outdir);
  remove(path);
  struct {
    const char *args, *expect;
  } cases[] = {
      {"--figure grid --run '%s'", "only --figure compare and results draw several runs"},
      {"--figure results --run '%s' --line teacher", "expected NAME=VALUE"},
      {"--figure results --run '%s' --series eval.AP,loss", "shows one series"},
      {"--figure compare --run '%s' --labels one", "expected 2 names"},
      {"--figure compare --run '%s' --series loss,nonesuch", "no series 'nonesuch'"},
      {"--figure compare --run '%s' --series a,b,c,d", "expected 1 to 3 series"},
      {"--figure compare --run '%s/nonesuch'", "not a run directory"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char args[2400];
    snprintf(args, sizeof args, cases[i].args, other);
    expect_refusal(args, cases[i].expect, path);
  }
}

/* ---- bad requests ---- */

static void check_errors(const char *empty_run) {
  char path[2300];
  snprintf(path, sizeof path, "%s/bad.pdf", outdir);
  remove(path);
  struct {
    const char *args, *expect;
  } cases[] = {
      {"--figure nonesuch", "unknown figure 'nonesuch'"},
      {"--figure gap --level P9", "level 'P9' is not in the snapshot"},
      {"--figure gap --images 99", "image 99 is out of range"},
      {"--figure grid --images 0,7", "image 7 is out of range"},
      {"--figure gap --images 0,1", "--images takes one index"},
      {"--figure curves --parts loss,nonesuch", "unknown loss part 'nonesuch'"},
      {"--figure grid --columns image,nonesuch", "unknown column 'nonesuch'"},
      {"--figure image --step 0", "no snapshot at or before step 0"},
      {"--figure image --step soon", "--step soon"},
      {"--figure image --format png", "another extension"},
      {"--figure image --width-in 0.1", "width"},
      {"--figure image --smooth ema:2", "EMA weight"},
      {"--csv nonesuch", "expected metrics or events"},
      {"--figure curves --compare /nonesuch", "--compare: /nonesuch: not a run directory"},
      {"--figure curves --legend middle", "--legend middle: expected top"},
      {"--figure curves --xlim 5:1", "--xlim 5:1: the low end must be under the high end"},
      {"--figure curves --ylim 2", "--ylim 2: expected LO:HI"},
      {"--figure curves --aplim a:", "'a' is not a number"},
      {"--figure curves --rename det.cls", "--rename det.cls: expected OLD=NEW"},
      {"--figure curves --hide nonesuch", "--hide nonesuch: no such series"},
      {"--figure curves --logy --liny", "--logy and --liny"},
      {"", "either --figure"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) expect_refusal(cases[i].args, cases[i].expect, path);
  char cmd[4800], out[4096];
  snprintf(cmd, sizeof cmd, "'%s' export --run '%s' --figure grid --out '%s'", kdscope, empty_run, path);
  int rc = run_cmd(cmd, out, sizeof out);
  CHECK_MSG(rc == 1 && strstr(out, "no snapshot yet"), "empty run -> %d: %s", rc, out);
  snprintf(cmd, sizeof cmd, "'%s' export --run '%s/nonesuch' --figure grid --out '%s'", kdscope, outdir, path);
  rc = run_cmd(cmd, out, sizeof out);
  CHECK_MSG(rc == 1 && strstr(out, "not a run directory"), "missing run -> %d: %s", rc, out);
}

/* ---- figures for a paper ---- */

/* Exports with `args` to path (PDF); 0 when it worked, its output in out. */
static int export_pdf(const char *args, const char *path, char *out, size_t len) {
  char cmd[9000];
  snprintf(cmd, sizeof cmd, "'%s' export --run '%s' %s --out '%s'", kdscope, run, args, path);
  int rc = run_cmd(cmd, out, len);
  CHECK_MSG(rc == 0, "`%s` -> %d: %s", args, rc, out);
  return rc;
}

/* The output of a poppler tool on path. */
static void tool(const char *what, const char *path, char *out, size_t len) {
  char cmd[2600];
  snprintf(cmd, sizeof cmd, "%s '%s'%s", what, path, strncmp(what, "pdftotext", 9) ? "" : " -");
  CHECK_MSG(run_cmd(cmd, out, len) == 0, "%s %s: %s", what, path, out);
}

/* Every image pdfimages lists in path has dpi pixels per inch (±1). */
static void check_ppi(const char *path, double dpi) {
  static char out[65536];
  tool("pdfimages -list", path, out, sizeof out);
  int n = 0, bad = 0;
  char *save = NULL;
  for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    double xppi, yppi;
    int page, w, h;
    char rest[256];
    /* page num type width height color comp bpc enc interp object ID x-ppi y-ppi ... */
    if (sscanf(line, "%d %*d %*s %d %d %*s %*d %*d %*s %*s %*d %*d %lf %lf %255s", &page, &w, &h, &xppi, &yppi, rest) != 6)
      continue;
    n++;
    /* whole pixels: a 13 px colorbar is 12.5 asked for, 4% off */
    if (fabs(xppi - dpi) > 1 + 0.5 * dpi / w || fabs(yppi - dpi) > 1 + 0.5 * dpi / h) {
      bad++;
      fprintf(stderr, "%s: image at %g x %g ppi: %s\n", path, xppi, yppi, line);
    }
  }
  CHECK_MSG(n > 0 && !bad, "%s: %d images, %d not at %g ppi", path, n, bad, dpi);
  printf("%s: %d images at %g ppi\n", path, n, dpi);
}

/* Nothing drawn touches the page's edge: the outer ring of a 150 dpi
 * render is white (colorbars and frames stay inside the margin). */
static void check_inside_page(const char *path) {
  char base[2400], pgm[2500], cmd[5200], out[512];
  snprintf(base, sizeof base, "%s.edge", path);
  snprintf(pgm, sizeof pgm, "%s.pgm", base);
  snprintf(cmd, sizeof cmd, "pdftoppm -gray -r 150 -singlefile '%s' '%s'", path, base);
  CHECK_MSG(run_cmd(cmd, out, sizeof out) == 0, "%s: %s", cmd, out);
  size_t len;
  unsigned char *d = (unsigned char *)slurp(pgm, &len);
  int w = 0, h = 0, maxv = 0, off = 0;
  if (!d || sscanf((char *)d, "P5 %d %d %d%n", &w, &h, &maxv, &off) != 3 || (size_t)off + 1 + (size_t)w * h > len) {
    CHECK_MSG(0, "%s: not a PGM", pgm);
    free(d);
    return;
  }
  const unsigned char *px = d + off + 1;
  int dark = 0;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++)
      if ((x < 2 || y < 2 || x >= w - 2 || y >= h - 2) && px[(size_t)y * w + x] < 245) dark++;
  CHECK_MSG(dark == 0, "%s: %d pixels drawn on the page's edge", path, dark);
  free(d);
  remove(pgm);
}

static void check_paper(void) {
  static char out[65536];
  char path[2300], args[2000];
  int lm = kd_fig_font_installed("Latin Modern Roman");
  /* A serif family, renamed series with math, a legend inside, limits. */
  snprintf(path, sizeof path, "%s/paper_curves.pdf", outdir);
  snprintf(args, sizeof args, "--figure curves --font 'Latin Modern Roman' --rename det.cls='L_{cls}' "
                              "--rename fitnet.weight='\\lambda_{fit}' --legend upper-right --ylim :50 --smooth ema:0.6");
  if (export_pdf(args, path, out, sizeof out)) return;
  CHECK_MSG(lm || strstr(out, "font 'Latin Modern Roman' is not installed (Debian package fonts-lmodern); using DejaVu Sans"),
            "no fallback message: %s", out);
  tool("pdffonts", path, out, sizeof out);
  CHECK_MSG(strstr(out, lm ? "LMRoman10-Regular" : "DejaVuSans") && strstr(out, " yes "), "%s fonts:\n%s", path, out);
  CHECK_MSG(!strstr(out, "Type 3"), "%s: Type 3 fonts:\n%s", path, out);
  tool("pdftotext", path, out, sizeof out);
  CHECK_MSG(strstr(out, "cls") && !strstr(out, "det.cls") && strstr(out, "\xce\xbb") && !strstr(out, "fitnet.weight") &&
                !strstr(out, "_{"), "%s: the renamed labels are not in the text:\n%s", path, out);
  CHECK_MSG(strstr(out, "AP (%)"), "%s: the AP axis does not say percent:\n%s", path, out);
  /* A family that is not installed: DejaVu Sans and a message saying so. */
  snprintf(path, sizeof path, "%s/paper_nofont.pdf", outdir);
  if (!export_pdf("--figure curves --font 'Nonesuch Serif'", path, out, sizeof out)) {
    CHECK_MSG(strstr(out, "font 'Nonesuch Serif' is not installed; using DejaVu Sans"), "no fallback message: %s", out);
    tool("pdffonts", path, out, sizeof out);
    CHECK_MSG(strstr(out, "DejaVuSans"), "%s fonts:\n%s", path, out);
  }
  /* Images at the export's resolution, inside the page. */
  const double dpis[2] = {300, 150};
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/paper_gap_%g.pdf", outdir, dpis[i]);
    snprintf(args, sizeof args, "--figure gap --images 1 --overlay 0.6 --dpi %g", dpis[i]);
    if (!export_pdf(args, path, out, sizeof out)) check_ppi(path, dpis[i]);
  }
  snprintf(path, sizeof path, "%s/paper_gap_300.pdf", outdir);
  check_inside_page(path);
  snprintf(path, sizeof path, "%s/paper_grid.pdf", outdir);
  if (!export_pdf("--figure grid --letters --columns image,teacher,gap,mask --mask fg", path, out, sizeof out)) {
    check_inside_page(path);
    check_ppi(path, 300);
    tool("pdftotext", path, out, sizeof out);
    CHECK_MSG(strstr(out, "(a)") && strstr(out, "(b)"), "%s: no (a), (b) letters:\n%s", path, out);
  }
  snprintf(path, sizeof path, "%s/paper_masks.pdf", outdir);
  if (!export_pdf("--figure masks --width-in 6.9", path, out, sizeof out)) check_inside_page(path);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: test_export KDSCOPE OUTDIR [CHECKER]\n");
    return 1;
  }
  kdscope = argv[1];
  outdir = argv[2];
  if (!fixture_have_source()) {
    printf("skipped: dataset-fashion-mnist is not installed\n");
    return 77;
  }
  if (mkdir(outdir, 0755) != 0 && errno != EEXIST) {
    fprintf(stderr, "cannot create %s\n", outdir);
    return 1;
  }
  char dir[1024], empty[1100];
  CHECK(fixture_tmpdir(dir, sizeof dir, "export") == 0);
  int made = probe_run_make(dir, 16, 4, run, sizeof run);
  CHECK_MSG(made == 0, "could not make the run");
  if (made) return check_status("test_export");
  /* A run that has not probed yet: its config and logs, no snapshots. */
  snprintf(empty, sizeof empty, "%s/empty", dir);
  char cmd[8000], out[256];
  snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s/config.json' '%s/metrics.jsonl' '%s/'", empty, run, run, empty);
  CHECK(run_cmd(cmd, out, sizeof out) == 0);

  char manifest[2300];
  snprintf(manifest, sizeof manifest, "%s/manifest.txt", outdir);
  FILE *mf = fopen(manifest, "w");
  CHECK(mf != NULL);
  if (!mf) return check_status("test_export");
  export_all(mf);
  check_compare(mf, empty);
  fclose(mf);
  commands_reproduce();
  check_curves_rules();
  check_csv();
  check_errors(empty);

  const char *tools[6] = {"pdfinfo", "pdftoppm", "pdffonts", "pdftotext", "pdfimages", "/usr/bin/python3"};
  for (int t = 0; t < 6; t++)
    if (!have(tools[t])) {
      printf("test_export: %s missing; skipping the PDF/SVG file checks\n", tools[t]);
      fixture_rmrf(dir);
      return check_failures ? 1 : 77;
    }
  check_paper();
  const char *src = getenv("KD_SOURCE_ROOT");
  char checker[1024], ccmd[4000];
  if (argc > 3)
    snprintf(checker, sizeof checker, "%s", argv[3]);
  else
    snprintf(checker, sizeof checker, "%s/tests/ui/check_export.py", src ? src : ".");
  snprintf(ccmd, sizeof ccmd, "/usr/bin/python3 '%s' '%s'", checker, manifest);
  int rc = system(ccmd);
  CHECK_MSG(rc == 0, "check_export.py failed (status %d)", rc);
  if (!check_failures) fixture_rmrf(dir);
  else printf("kept %s for inspection\n", dir);
  return check_status("test_export");
}
