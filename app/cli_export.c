/* kdscope export: a figure of a run rendered headless from its run
 * directory with the builder the window's panels use (ui/snapfig.h), or
 * the run's metrics / events as tidy CSV. */
#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compare.h"
#include "export.h"
#include "snapfig.h"
#include "core/fileio.h"
#include "verbs.h"

static const char usage[] =
    "usage: kdscope export --run RUN_DIR --figure NAME [--step N|last] [--images LIST]\n"
    "                      [--level P3] [--columns LIST] [--mask NAME] [--gap raw|METHOD] [--parts LIST]\n"
    "                      [--logy | --liny] [--smooth none|ema:W|mean:N] [--overlay A] [--independent]\n"
    "                      [--all-levels] [--pixel Y,X]\n"
    "                      [--compare RUN_DIR [--compare-label NAME]]\n"
    "                      [--rename OLD=NEW]... [--hide LIST] [--legend POS]\n"
    "                      [--xlim LO:HI] [--ylim LO:HI] [--aplim LO:HI]\n"
    "                      [--letters] [--no-title] [--format png|svg|pdf] [--font FAMILY]\n"
    "                      [--width-in W | --width-mm W] [--height-in H | --height-mm H]\n"
    "                      [--font-pt P] [--line-pt P] [--dpi D] --out FILE\n"
    "       kdscope export --figure compare --run RUN_DIR [--run RUN_DIR]... [--labels LIST]\n"
    "                      [--series LIST] [--logy] [--smooth ...] [--rename OLD=NEW]...\n"
    "                      [--legend POS] [--xlim LO:HI] [--ylim LO:HI] [size, font] --out FILE\n"
    "       kdscope export --figure results --run RUN_DIR... [--labels LIST] [--series NAME]\n"
    "                      [--line NAME=VALUE]... [size, font] --out FILE\n"
    "       kdscope export --run RUN_DIR --csv metrics|events --out FILE\n\n"
    "Renders a figure of a run from its run directory, exactly as the window's\n"
    "panel draws it (the window's export dialog prints the command for what it\n"
    "shows). Figures:\n"
    "  grid        rows = probe images (--images, default all), columns from\n"
    "              image,teacher,student,gap,mask (--columns, default those with\n"
    "              data); --mask NAME picks the mask column (fg or e.g. defeat.fg),\n"
    "              --gap the gap column: raw features or the gap a method's loss\n"
    "              sees (default: the first active method's, else raw)\n"
    "  curves      loss parts (--parts LIST, default all) over COCO AP (in %,\n"
    "              once the run has an evaluation) vs step, markers where\n"
    "              settings changed; the loss axis is log when the parts span\n"
    "              more than 1.5 decades (--logy, --liny force it); --smooth\n"
    "              restarts at every change; --compare adds another run's same\n"
    "              parts and AP, dotted (legend name --compare-label, default\n"
    "              the directory's name)\n"
    "  gradients   fg vs bg gradient magnitude by source over every snapshot up to\n"
    "              --step (DeFeat's observation); --level (default all levels),\n"
    "              --images (default all)\n"
    "  cross       the criss-cross relation (CSGR's, parameter-free) of the\n"
    "              pixel --pixel Y,X (row, column of --level; default the\n"
    "              centre) for teacher and student, their difference, and the\n"
    "              category attention map of each class of the image\n"
    "  image, gap, masks, attention, gradmaps, projection: one panel of the\n"
    "              window for one probe image (--images I) and level\n"
    "  compare     several runs on one chart (up to 24 --run, in order; --labels\n"
    "              names them, default the directories' names): each run's\n"
    "              logged --series (up to 3, default loss; a+b sums series,\n"
    "              e.g. det.cls+det.box, the detection loss of any run)\n"
    "  results     each run's last value of --series (default eval.AP, shown in\n"
    "              %), runs with the same --labels name on one row (a method's\n"
    "              seeds): dots, the mean, mean ± SD; --line teacher=28.9 adds a\n"
    "              labelled reference line (up to 32 --run, 8 --line)\n"
    "The snapshot is the last one at or before --step (default: the last).\n"
    "--level names an FPN level (P3 ..), --overlay draws maps over the image\n"
    "with that opacity, --independent scales teacher and student maps apart,\n"
    "--all-levels draws gap and masks at every level side by side,\n"
    "--letters labels sub-panels (a), (b)... Options a figure does not read are\n"
    "ignored. Width defaults to 3.3 in (single column; 6.9 in is double); the\n"
    "height follows the figure's layout unless given. Format from --format or\n"
    "the extension of --out; --dpi is the PNG's resolution and that of the\n"
    "images a PDF or SVG embeds (default 300), --font-pt the base size (8).\n"
    "For a paper: --font FAMILY (e.g. 'Latin Modern Roman' from fonts-lmodern,\n"
    "'TeX Gyre Termes' from fonts-texgyre, 'DejaVu Serif'; a family that is not\n"
    "installed falls back to DejaVu Sans with a message); --rename OLD=NEW\n"
    "(repeatable) labels a series or a changed setting, with simple math:\n"
    "--rename det.cls='L_{cls}' --rename defeat.alpha_bg='\\alpha_{bg}' (_{..}\n"
    "subscript, ^{..} superscript, \\alpha..\\Omega Greek); --hide LIST leaves\n"
    "series out; --legend top|right|upper-right|upper-left|lower-left|lower-right\n"
    "|none places the legend; --xlim, --ylim (loss) and --aplim (AP, in %) fix\n"
    "the axes (LO:HI, either end may be empty).\n"
    "--csv metrics writes step,name,value,unit for every logged series (eval.*\n"
    "too: AP and AR in percent, unit %); --csv events writes\n"
    "step,time,event,key,value,old,source.\n";

#define MAX_LIST 32

typedef struct Args {
  const char *runs[KD_COMPARE_MAX_RUNS];
  int nruns;
  const char *labels, *series, *reference, *reference_label;
  const char *lines[KD_COMPARE_MAX_LINES];
  int nlines;
  const char *run, *figure, *csv, *step, *images, *level, *pixel, *columns, *mask, *gap, *parts, *smooth;
  const char *format, *out, *font, *hide, *legend, *xlim, *ylim, *aplim;
  const char *renames[KD_SNAPFIG_MAX_RENAMES];
  int nrenames;
  double width, height, font_pt, line_pt, dpi, overlay;
  KdUnit unit, height_unit;
  int logy, liny, independent, all_levels, letters, no_title;
} Args;

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "kdscope export: ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 1;
}

static int number(const char *opt, const char *text, double *out) {
  char *end;
  double v = strtod(text, &end);
  if (end == text || *end || !(v > 0 && v < 1e9)) return fail("%s %s: expected a positive number", opt, text);
  *out = v;
  return 0;
}

/* --pixel Y,X: a cell of the view's level, checked against its size. */
static int pixel_mark(const char *text, const KdSnapshot *snap, KdSnapFigView *v) {
  KdError err = {0};
  int H, W, y, x, used = 0;
  if (sscanf(text, "%d,%d%n", &y, &x, &used) != 2 || text[used])
    return fail("--pixel %s: expected Y,X (row and column of a cell, e.g. 4,7)", text);
  if (kd_snapfig_level_size(snap, v->image, v->level, &H, &W, &err)) return fail("--pixel: %s", err.msg);
  if (y < 0 || y >= H || x < 0 || x >= W)
    return fail("--pixel %s: outside the level's %d x %d grid (rows 0..%d, columns 0..%d)", text, H, W, H - 1, W - 1);
  v->pick = kd_snapfig_cell_mark(y, x, H, W);
  return 0;
}

/* Splits a comma list into words (in place, in buf); -1 when too long. */
static int split(const char *text, char *buf, size_t len, const char **words, int max) {
  if (snprintf(buf, len, "%s", text) >= (int)len) return -1;
  int n = 0;
  for (char *save = NULL, *w = strtok_r(buf, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
    if (n == max) return -1;
    words[n++] = w;
  }
  return n;
}

static int parse_args(int argc, char **argv, Args *a) {
  memset(a, 0, sizeof *a);
  a->unit = a->height_unit = KD_UNIT_IN;
  a->width = KD_EXPORT_SINGLE_COLUMN_IN;
  for (int i = 1; i < argc; i++) {
    const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    const char **str = NULL;
    double *num = NULL;
    if (!strcmp(o, "--help") || !strcmp(o, "-h")) {
      fputs(usage, stdout);
      return 2;
    }
    if (!strcmp(o, "--logy")) a->logy = 1;
    else if (!strcmp(o, "--liny")) a->liny = 1;
    else if (!strcmp(o, "--rename")) {
      if (a->nrenames == KD_SNAPFIG_MAX_RENAMES) return fail("at most %d --rename (see --help)", KD_SNAPFIG_MAX_RENAMES);
      str = &a->renames[a->nrenames++];
    } else if (!strcmp(o, "--font")) str = &a->font;
    else if (!strcmp(o, "--hide")) str = &a->hide;
    else if (!strcmp(o, "--legend")) str = &a->legend;
    else if (!strcmp(o, "--xlim")) str = &a->xlim;
    else if (!strcmp(o, "--ylim")) str = &a->ylim;
    else if (!strcmp(o, "--aplim")) str = &a->aplim;
    else if (!strcmp(o, "--independent")) a->independent = 1;
    else if (!strcmp(o, "--all-levels")) a->all_levels = 1;
    else if (!strcmp(o, "--letters")) a->letters = 1;
    else if (!strcmp(o, "--no-title")) a->no_title = 1;
    else if (!strcmp(o, "--run")) {
      if (a->nruns == KD_COMPARE_MAX_RUNS) return fail("at most %d --run (see --help)", KD_COMPARE_MAX_RUNS);
      str = &a->runs[a->nruns++];
    } else if (!strcmp(o, "--labels")) str = &a->labels;
    else if (!strcmp(o, "--series")) str = &a->series;
    else if (!strcmp(o, "--line")) {
      if (a->nlines == KD_COMPARE_MAX_LINES) return fail("at most %d --line (see --help)", KD_COMPARE_MAX_LINES);
      str = &a->lines[a->nlines++];
    } else if (!strcmp(o, "--compare")) str = &a->reference;
    else if (!strcmp(o, "--compare-label")) str = &a->reference_label;
    else if (!strcmp(o, "--figure")) str = &a->figure;
    else if (!strcmp(o, "--csv")) str = &a->csv;
    else if (!strcmp(o, "--step")) str = &a->step;
    else if (!strcmp(o, "--images")) str = &a->images;
    else if (!strcmp(o, "--level")) str = &a->level;
    else if (!strcmp(o, "--pixel")) str = &a->pixel;
    else if (!strcmp(o, "--columns")) str = &a->columns;
    else if (!strcmp(o, "--mask")) str = &a->mask;
    else if (!strcmp(o, "--gap")) str = &a->gap;
    else if (!strcmp(o, "--parts")) str = &a->parts;
    else if (!strcmp(o, "--smooth")) str = &a->smooth;
    else if (!strcmp(o, "--format")) str = &a->format;
    else if (!strcmp(o, "--out")) str = &a->out;
    else if (!strcmp(o, "--width-in") || !strcmp(o, "--width-mm")) {
      num = &a->width;
      a->unit = o[8] == 'i' ? KD_UNIT_IN : KD_UNIT_MM;
    } else if (!strcmp(o, "--height-in") || !strcmp(o, "--height-mm")) {
      num = &a->height;
      a->height_unit = o[9] == 'i' ? KD_UNIT_IN : KD_UNIT_MM;
    } else if (!strcmp(o, "--font-pt")) num = &a->font_pt;
    else if (!strcmp(o, "--line-pt")) num = &a->line_pt;
    else if (!strcmp(o, "--dpi")) num = &a->dpi;
    else if (!strcmp(o, "--overlay")) num = &a->overlay;
    else return fail("unknown option '%s' (see --help)", o);
    if (!str && !num) continue;
    if (!v) return fail("%s needs a value (see --help)", o);
    if (str) *str = v;
    if (num && number(o, v, num)) return 1;
    i++;
  }
  if (!a->nruns) return fail("%s", "--run RUN_DIR is required (see --help)");
  a->run = a->runs[0];
  int several = a->figure && (!strcmp(a->figure, "compare") || !strcmp(a->figure, "results"));
  if (a->nruns > 1 && !several)
    return fail("--run given %d times: only --figure compare and results draw several runs", a->nruns);
  if (!a->out) return fail("%s", "--out FILE is required (see --help)");
  if (!a->figure == !a->csv) return fail("%s", "give either --figure NAME or --csv metrics|events (see --help)");
  if (a->overlay > 1) return fail("%s", "--overlay is an opacity in (0, 1]");
  if (a->logy && a->liny) return fail("%s", "--logy and --liny: give one");
  return 0;
}

/* ---- CSV ---- */

/* A CSV field, quoted when it holds a comma, quote or line break. */
static void csv_field(FILE *f, const char *s, int last) {
  if (strpbrk(s, ",\"\r\n")) {
    fputc('"', f);
    for (; *s; s++) {
      if (*s == '"') fputc('"', f);
      fputc(*s, f);
    }
    fputc('"', f);
  } else {
    fputs(s, f);
  }
  fputc(last ? '\n' : ',', f);
}

static void csv_number(FILE *f, double v, int last) {
  char b[40];
  snprintf(b, sizeof b, "%.9g", v);
  csv_field(f, b, last);
}

static int write_csv(const Args *a, const KdRunLog *log) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return fail("%s", "out of memory");
  if (!strcmp(a->csv, "metrics")) {
    /* COCO AP and AR in percent, as every figure shows them; the unit
     * column says which rows are. */
    fputs("step,name,value,unit\n", f);
    for (int i = 0; i < kd_runlog_nseries(log); i++) {
      KdRunSeries s = kd_runlog_series(log, i);
      int pct = !strncmp(s.name, "eval.AP", 7) || !strncmp(s.name, "eval.AR", 7);
      for (size_t j = 0; j < s.n; j++) {
        csv_number(f, s.x[j], 0);
        csv_field(f, s.name, 0);
        csv_number(f, pct ? 100.0 * s.y[j] : s.y[j], 0);
        csv_field(f, pct ? "%" : "", 1);
      }
    }
  } else {
    fputs("step,time,event,key,value,old,source\n", f);
    for (int i = 0; i < kd_runlog_nevents(log); i++) {
      KdRunEvent e = kd_runlog_event(log, i);
      cJSON *j = cJSON_Parse(e.json);
      const cJSON *t = j ? cJSON_GetObjectItemCaseSensitive(j, "time") : NULL;
      char step[16];
      snprintf(step, sizeof step, "%d", e.step);
      csv_field(f, step, 0);
      csv_field(f, cJSON_IsString(t) ? t->valuestring : "", 0);
      csv_field(f, e.type, 0);
      csv_field(f, e.key, 0);
      csv_field(f, e.value, 0);
      csv_field(f, e.old, 0);
      csv_field(f, e.source, 1);
      cJSON_Delete(j);
    }
  }
  fclose(f);
  KdError err;
  int rc = kd_write_file_atomic(a->out, text, len, &err);
  free(text);
  if (rc) return fail("%s", err.msg);
  printf("wrote %s\n", a->out);
  return 0;
}

/* ---- figures ---- */

static int load_snapshot(const Args *a, KdSnapshots *snaps, KdSnapshot **out) {
  KdError err;
  int count = kd_snapshots_count(snaps), idx = count - 1;
  if (!count) return fail("%s has no snapshot yet (the prober writes them while the run trains)", a->run);
  if (a->step && strcmp(a->step, "last")) {
    char *end;
    long step = strtol(a->step, &end, 10);
    if (end == a->step || *end || step < 0) return fail("--step %s: expected a step number or 'last'", a->step);
    idx = kd_snapshots_at_step(snaps, (int)step);
    if (idx < 0) {
      return fail("no snapshot at or before step %ld in %s (the first is at step %d)", step, a->run,
                  kd_snapshots_step(snaps, 0));
    }
  }
  if (kd_snapshot_load(snaps, idx, out, &err)) return fail("%s", err.msg);
  return 0;
}

/* A run's name for a legend: its directory's last component. */
static const char *run_name(const char *dir, char *buf, size_t len) {
  snprintf(buf, len, "%s", dir);
  size_t n = strlen(buf);
  while (n > 1 && buf[n - 1] == '/') buf[--n] = 0;
  const char *slash = strrchr(buf, '/');
  return slash && slash[1] ? slash + 1 : buf;
}

/* Renders a built figure to --out in the format, size and style asked. */
static int render(const Args *a, const KdFigPanel *panel) {
  KdError err;
  KdFigStyle st;
  kd_fig_style_default(&st);
  st.panel_letters = a->letters;
  if (a->line_pt > 0) st.line_pt = a->line_pt;
  if (a->font) {
    char msg[256];
    st.font_family = kd_fig_font_resolve(a->font, msg, sizeof msg);
    if (msg[0]) fprintf(stderr, "kdscope export: %s\n", msg);
  }
  KdExportOpts o;
  kd_export_opts_default(&o);
  o.width = a->width;
  o.unit = a->unit;
  if (a->height > 0) /* one unit for both: the height in the width's unit */
    o.height = kd_export_to_pt(a->height, a->height_unit) / kd_export_to_pt(1, a->unit);
  if (a->dpi > 0) o.dpi = a->dpi;
  o.font_pt = a->font_pt;
  o.title = a->figure;
  int fmt = kd_export_format_from_path(a->out);
  if (a->format) {
    static const char *names[] = {"png", "svg", "pdf"};
    int f = -1;
    for (int i = 0; i < 3; i++)
      if (!strcmp(a->format, names[i])) f = i;
    if (f < 0) {
      return fail("--format %s: expected png, svg or pdf", a->format);
    }
    if (fmt >= 0 && fmt != f) {
      return fail("--format %s but --out %s has another extension", a->format, a->out);
    }
    fmt = f;
  }
  if (fmt < 0) {
    return fail("cannot tell the format of %s: give --format png|svg|pdf", a->out);
  }
  double w_pt, h_pt;
  int w_px, h_px;
  if (kd_export_geometry(panel, &st, &o, &w_pt, &h_pt, &w_px, &h_px, &err) ||
      kd_export_panel(a->out, fmt, panel, &st, &o, &err)) {
    return fail("%s", err.msg);
  }
  if (fmt == KD_EXPORT_PNG)
    printf("wrote %s: %d x %d px (%.2f x %.2f pt at %g dpi)\n", a->out, w_px, h_px, w_pt, h_pt, o.dpi);
  else
    printf("wrote %s: %.2f x %.2f pt\n", a->out, w_pt, h_pt);
  return 0;
}

static int export_figure(const Args *a, const KdRunLog *log, const KdRunLog *ref) {
  const KdSnapFigKind *kind = kd_snapfig_find(a->figure);
  if (!kind) {
    return fail("unknown figure '%s' (figures: %s)", a->figure, kd_snapfig_names());
  }
  unsigned needs = kind->needs;
  int any_level = (kind->options & KD_SNAPFIG_OPT_ANY_LEVEL) != 0;
  KdSnapFigView v;
  kd_snapfig_view_default(&v);
  v.log = log;
  char refname[1024];
  v.ref = ref;
  v.ref_dir = a->reference;
  v.ref_label = a->reference_label ? a->reference_label : ref ? run_name(a->reference, refname, sizeof refname) : NULL;
  v.overlay = a->overlay;
  v.independent = a->independent;
  v.all_levels = a->all_levels;
  v.logy = a->logy ? KD_SNAPFIG_LOGY_LOG : a->liny ? KD_SNAPFIG_LOGY_LINEAR : KD_SNAPFIG_LOGY_AUTO;
  v.no_title = a->no_title;
  v.mask = a->mask;
  v.gap = a->gap;
  KdError err;
  if (kd_snapfig_smooth_parse(a->smooth, &v.smooth, &err)) return fail("%s", err.msg);
  const char *from[KD_SNAPFIG_MAX_RENAMES], *to[KD_SNAPFIG_MAX_RENAMES], *hide[MAX_LIST];
  char rbuf[KD_SNAPFIG_MAX_RENAMES][512], hbuf[1024];
  for (int i = 0; i < a->nrenames; i++)
    if (kd_snapfig_rename_parse(a->renames[i], rbuf[i], sizeof rbuf[i], &from[i], &to[i], &err)) return fail("%s", err.msg);
  v.rename_from = from, v.rename_to = to, v.nrename = a->nrenames;
  if (a->hide) {
    v.nhide = split(a->hide, hbuf, sizeof hbuf, hide, MAX_LIST);
    if (v.nhide <= 0) return fail("--hide %s: expected a list of series like loss,AP50", a->hide);
    v.hide = hide;
  }
  if (a->legend && (int)(v.legend = (KdFigLegendPos)kd_fig_legend_pos_from_name(a->legend)) < 0)
    return fail("--legend %s: expected top, right, upper-right, upper-left, lower-left, lower-right or none", a->legend);
  if ((a->xlim && kd_snapfig_limits_parse("--xlim", a->xlim, &v.xmin, &v.xmax, &err)) ||
      (a->ylim && kd_snapfig_limits_parse("--ylim", a->ylim, &v.ymin, &v.ymax, &err)) ||
      (a->aplim && kd_snapfig_limits_parse("--aplim", a->aplim, &v.apmin, &v.apmax, &err)))
    return fail("%s", err.msg);

  int images[MAX_LIST], rc = 1;
  const char *words[MAX_LIST], *parts[MAX_LIST];
  char buf[1024], pbuf[1024];
  KdFigCol colv[MAX_LIST];
  if (a->images) {
    int n = split(a->images, buf, sizeof buf, words, MAX_LIST);
    if (n <= 0) return fail("--images %s: expected image indices like 0,2,3", a->images);
    for (int i = 0; i < n; i++) {
      char *end;
      long x = strtol(words[i], &end, 10);
      if (end == words[i] || *end || x < 0 || x > 1000) return fail("--images: '%s' is not an image index", words[i]);
      images[i] = (int)x;
    }
    if ((needs & KD_SNAPFIG_ONE_IMAGE) && n > 1)
      return fail("figure %s shows one probe image: --images takes one index here (got %d)", a->figure, n);
    v.image = images[0];
    v.images = images;
    v.nimages = n;
  }
  if (a->columns) {
    int n = split(a->columns, buf, sizeof buf, words, MAX_LIST);
    if (n <= 0) return fail("--columns %s: expected a list like image,teacher,student,gap,mask", a->columns);
    for (int i = 0; i < n; i++) {
      int c = kd_snapfig_col_from_name(words[i]);
      if (c < 0) return fail("unknown column '%s' (columns: image, teacher, student, gap, mask)", words[i]);
      colv[i] = (KdFigCol)c;
    }
    v.cols = colv;
    v.ncols = n;
  }
  if (a->parts) {
    int n = split(a->parts, pbuf, sizeof pbuf, parts, MAX_LIST);
    if (n <= 0) return fail("--parts %s: expected a list of loss parts like loss,det.cls", a->parts);
    v.parts = parts;
    v.nparts = n;
  }

  KdSnapshots *snaps = NULL;
  KdSnapshot *snap = NULL;
  KdSnapFigStore *store = kd_snapfig_store_new();
  if (!store) return fail("%s", "out of memory");
  if (needs & (KD_SNAPFIG_NEEDS_SNAPSHOT | KD_SNAPFIG_NEEDS_SNAPSHOTS)) {
    snaps = kd_snapshots_open(a->run, &err);
    if (!snaps || kd_snapshots_refresh(snaps, &err) < 0) {
      fail("%s", err.msg);
      goto out;
    }
    if (load_snapshot(a, snaps, &snap)) goto out;
    v.snap = snap;
    v.snaps = snaps;
  }
  v.level = any_level ? -1 : 0;
  if (a->level && snap && ((needs & KD_SNAPFIG_LEVEL) || any_level)) {
    v.level = kd_snapfig_level_from_name(snap, a->level, &err);
    if (v.level < 0) {
      fail("%s", err.msg);
      goto out;
    }
  }

  if (a->pixel && snap && (kind->options & KD_SNAPFIG_OPT_PIXEL) && pixel_mark(a->pixel, snap, &v)) goto out;

  KdFigPanel panel;
  if (kd_snapfig_build(kind, &v, store, &panel, &err)) {
    fail("%s", err.msg);
    goto out;
  }
  rc = render(a, &panel);
out:
  kd_snapfig_store_free(store);
  kd_snapshot_free(snap);
  kd_snapshots_close(snaps);
  return rc;
}

/* Several runs' logs on one chart (compare) or as a results dot plot. */
static int export_compare(const Args *a) {
  int results = !strcmp(a->figure, "results");
  KdRunLog *logs[KD_COMPARE_MAX_RUNS] = {0};
  const char *labels[KD_COMPARE_MAX_RUNS], *series[KD_COMPARE_MAX_METRICS + 1];
  char lbuf[1024], sbuf[1024], base[KD_COMPARE_MAX_RUNS][256];
  int nl = 0, nseries = 1, rc = 1;
  series[0] = results ? "eval.AP" : "loss";
  double line_x[KD_COMPARE_MAX_LINES];
  const char *line_label[KD_COMPARE_MAX_LINES];
  char line_buf[KD_COMPARE_MAX_LINES][128];
  for (int i = 0; i < a->nlines; i++) {
    snprintf(line_buf[i], sizeof line_buf[i], "%s", a->lines[i]);
    char *eq = strrchr(line_buf[i], '='), *end = NULL;
    if (eq) *eq = 0, line_x[i] = strtod(eq + 1, &end);
    if (!eq || eq == line_buf[i] || end == eq + 1 || *end || !isfinite(line_x[i]))
      return fail("--line %s: expected NAME=VALUE, e.g. teacher=28.9", a->lines[i]);
    line_label[i] = line_buf[i];
  }
  if (a->labels) {
    nl = split(a->labels, lbuf, sizeof lbuf, labels, KD_COMPARE_MAX_RUNS);
    if (nl != a->nruns) return fail("--labels %s: expected %d names, one per --run", a->labels, a->nruns);
  }
  if (a->series) {
    nseries = split(a->series, sbuf, sizeof sbuf, series, KD_COMPARE_MAX_METRICS + 1);
    if (results && nseries != 1) return fail("--series %s: the results figure shows one series", a->series);
    if (nseries <= 0 || nseries > KD_COMPARE_MAX_METRICS)
      return fail("--series %s: expected 1 to %d series names like loss,det.cls+det.box", a->series,
                  KD_COMPARE_MAX_METRICS);
  }
  KdError err;
  for (int r = 0; r < a->nruns; r++) {
    if (!a->labels) labels[r] = run_name(a->runs[r], base[r], sizeof base[r]);
    logs[r] = kd_runlog_open(a->runs[r], &err);
    if (!logs[r] || kd_runlog_refresh(logs[r], &err) < 0) {
      fail("%s", err.msg);
      goto out;
    }
  }
  KdCompare c = {.logs = (const KdRunLog *const *)logs, .labels = labels, .nruns = a->nruns,
                 .metrics = series, .nmetrics = nseries, .logy = a->logy, .title = a->no_title ? "" : NULL,
                 .line_labels = line_label, .line_x = line_x, .nlines = a->nlines};
  if (kd_snapfig_smooth_parse(a->smooth, &c.smooth, &err)) {
    fail("%s", err.msg);
    goto out;
  }
  const char *from[KD_SNAPFIG_MAX_RENAMES], *to[KD_SNAPFIG_MAX_RENAMES];
  char rbuf[KD_SNAPFIG_MAX_RENAMES][512];
  for (int i = 0; i < a->nrenames; i++)
    if (kd_snapfig_rename_parse(a->renames[i], rbuf[i], sizeof rbuf[i], &from[i], &to[i], &err)) {
      fail("%s", err.msg);
      goto out;
    }
  c.rename_from = from, c.rename_to = to, c.nrename = a->nrenames;
  if (a->legend && (int)(c.legend = (KdFigLegendPos)kd_fig_legend_pos_from_name(a->legend)) < 0) {
    fail("--legend %s: expected top, right, upper-right, upper-left, lower-left, lower-right or none", a->legend);
    goto out;
  }
  double lim[4] = {NAN, NAN, NAN, NAN};
  if ((a->xlim && kd_snapfig_limits_parse("--xlim", a->xlim, &lim[0], &lim[1], &err)) ||
      (a->ylim && kd_snapfig_limits_parse("--ylim", a->ylim, &lim[2], &lim[3], &err))) {
    fail("%s", err.msg);
    goto out;
  }
  c.limits = lim;
  KdCompareStore *store = kd_compare_store_new();
  KdFigPanel panel;
  if (!store) fail("%s", "out of memory");
  else if ((results ? kd_compare_results_build : kd_compare_build)(&c, store, &panel, &err)) fail("%s", err.msg);
  else rc = render(a, &panel);
  kd_compare_store_free(store);
out:
  for (int r = 0; r < a->nruns; r++) kd_runlog_free(logs[r]);
  return rc;
}

int kd_cli_export(int argc, char **argv) {
  Args a;
  int rc = parse_args(argc, argv, &a);
  if (rc) return rc == 2 ? 0 : 1;
  if (a.csv && strcmp(a.csv, "metrics") && strcmp(a.csv, "events"))
    return fail("--csv %s: expected metrics or events", a.csv);
  if (a.figure && (!strcmp(a.figure, "compare") || !strcmp(a.figure, "results"))) return export_compare(&a);
  KdError err;
  KdRunLog *log = kd_runlog_open(a.run, &err);
  if (!log || kd_runlog_refresh(log, &err) < 0) {
    kd_runlog_free(log);
    return fail("%s", err.msg);
  }
  KdRunLog *ref = NULL;
  if (a.reference && a.figure && !strcmp(a.figure, "curves")) {
    ref = kd_runlog_open(a.reference, &err);
    if (!ref || kd_runlog_refresh(ref, &err) < 0) {
      kd_runlog_free(ref);
      kd_runlog_free(log);
      return fail("--compare: %s", err.msg);
    }
  }
  rc = a.csv ? write_csv(&a, log) : export_figure(&a, log, ref);
  kd_runlog_free(ref);
  kd_runlog_free(log);
  return rc;
}
