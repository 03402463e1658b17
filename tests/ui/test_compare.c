/* The compare figure's data on hand-written run logs read by the real
 * loader: a sum of series keeps only the steps every part has and adds
 * them; one series per (run, metric), coloured by run and dashed by
 * metric, eval series as points; unknown series and too many runs are
 * refused with a message naming the run and listing its series; the chart
 * draws; the results figure groups runs by label (a method's seeds). */
#include <cairo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "compare.h"
#include "fx_tmpdir.h"

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  CHECK(f != NULL);
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

/* A run directory with config.json and the given metrics lines. */
static const char *make_run(const char *name, const char *metrics) {
  static char dirs[4][1024];
  static int k;
  char *d = dirs[k++ % 4];
  snprintf(d, 1024, "%s", fx_path(name));
  CHECK(mkdir(d, 0755) == 0);
  char p[1100];
  snprintf(p, sizeof p, "%s/config.json", d);
  write_file(p, "{}\n");
  snprintf(p, sizeof p, "%s/metrics.jsonl", d);
  write_file(p, metrics);
  return d;
}

static KdRunLog *open_log(const char *dir) {
  KdError err;
  KdRunLog *l = kd_runlog_open(dir, &err);
  CHECK_MSG(l != NULL, "%s", err.msg);
  if (l) CHECK_MSG(kd_runlog_refresh(l, &err) == 1, "%s", err.msg);
  return l;
}

int main(void) {
  fx_tmpdir("compare");
  /* Run a: det.box is missing at step 2 (a part not logged there), so the
   * sum has steps 1 and 3 only. */
  const char *a = make_run("a",
                           "{\"step\":1,\"loss\":3.0,\"parts\":{\"det.cls\":1.0,\"det.box\":0.5}}\n"
                           "{\"step\":2,\"loss\":2.5,\"parts\":{\"det.cls\":0.9}}\n"
                           "{\"step\":3,\"loss\":2.0,\"parts\":{\"det.cls\":0.75,\"det.box\":0.25}}\n"
                           "{\"step\":3,\"eval\":{\"AP\":0.125,\"AP50\":0.25}}\n");
  const char *b = make_run("b",
                           "{\"step\":1,\"loss\":1.5,\"parts\":{\"det.cls\":1.25,\"det.box\":0.25}}\n"
                           "{\"step\":2,\"loss\":1.0,\"parts\":{\"det.cls\":0.5,\"det.box\":0.125}}\n"
                           "{\"step\":2,\"eval\":{\"AP\":0.5,\"AP50\":0.75}}\n");
  KdRunLog *la = open_log(a), *lb = open_log(b);
  if (!la || !lb) return check_status("test_compare");

  double *x, *y;
  size_t n;
  KdError err;
  CHECK(kd_compare_series(la, "det.cls+det.box", &x, &y, &n, &err) == 0);
  CHECK(n == 2);
  if (n == 2) {
    CHECK(x[0] == 1 && x[1] == 3);
    CHECK_NEAR(y[0], 1.5, 1e-12);
    CHECK_NEAR(y[1], 1.0, 1e-12);
  }
  free(x);
  free(y);
  CHECK(kd_compare_series(lb, "det.cls+det.box+loss", &x, &y, &n, &err) == 0);
  CHECK(n == 2 && fabs(y[0] - 3.0) < 1e-12 && fabs(y[1] - 1.625) < 1e-12);
  free(x);
  free(y);
  CHECK(kd_compare_series(la, "det.cls+nope", &x, &y, &n, &err) == -1);
  CHECK_MSG(strstr(err.msg, "no series 'nope'") && strstr(err.msg, "det.box") && strstr(err.msg, "eval.AP"), "%s",
            err.msg);
  CHECK(x == NULL && y == NULL && n == 0);
  CHECK(kd_compare_series(la, "", &x, &y, &n, &err) == -1);

  /* Two runs, two metrics: four series, colour = run, dash = metric. */
  const KdRunLog *logs[2] = {la, lb};
  const char *labels[2] = {"baseline", "DeFeat"}, *metrics[2] = {"loss", "eval.AP"};
  KdCompare c = {.logs = logs, .labels = labels, .nruns = 2, .metrics = metrics, .nmetrics = 2};
  KdCompareStore *st = kd_compare_store_new();
  KdFigPanel panel;
  CHECK(kd_compare_build(&c, st, &panel, &err) == 0);
  const KdFigPlot *p = panel.spec;
  CHECK(p->nseries == 4);
  if (p->nseries == 4) {
    CHECK(!strcmp(p->series[0].name, "baseline: loss") && p->series[0].n == 3);
    CHECK(p->series[0].color == 0 && p->series[0].dash == 0 && !p->series[0].points);
    CHECK(!strcmp(p->series[1].name, "baseline: eval.AP") && p->series[1].n == 1 && p->series[1].points);
    CHECK(p->series[1].dash == 1 && p->series[1].y[0] == 12.5); /* AP in percent */
    CHECK(!strcmp(p->series[3].name, "DeFeat: eval.AP") && p->series[3].color == 1 && p->series[3].y[0] == 50.0);
  }
  CHECK(p->hide_raw && !strcmp(p->title, "runs compared"));
  CHECK(isnan(p->xmin) && isnan(p->ymax) && p->legend == KD_FIG_LEGEND_TOP);

  /* A paper's choices: renamed series, the legend's place, axis limits. */
  {
    const double lim[4] = {0, 100, NAN, 5};
    KdCompare r = c;
    r.rename_from = (const char *[]){"loss"}, r.rename_to = (const char *[]){"L_{total}"}, r.nrename = 1;
    r.legend = KD_FIG_LEGEND_LOWER_LEFT, r.limits = lim;
    CHECK(kd_compare_build(&r, st, &panel, &err) == 0);
    p = panel.spec;
    CHECK(p->nseries == 4 && !strcmp(p->series[0].name, "baseline: L_{total}") &&
          !strcmp(p->series[1].name, "baseline: eval.AP"));
    CHECK(p->legend == KD_FIG_LEGEND_LOWER_LEFT && p->xmin == 0 && p->xmax == 100 && isnan(p->ymin) && p->ymax == 5);
    r.nmetrics = 1; /* one metric: the y axis takes the new name */
    CHECK(kd_compare_build(&r, st, &panel, &err) == 0);
    p = panel.spec;
    CHECK(!strcmp(p->ylabel, "L_{total}") && !strcmp(p->title, "L_{total}") && !strcmp(p->series[0].name, "baseline"));
  }

  /* One metric: the legend names runs alone, the title is the metric. */
  c.nmetrics = 1;
  c.metrics = (const char *[]){"det.cls+det.box"};
  CHECK(kd_compare_build(&c, st, &panel, &err) == 0);
  p = panel.spec;
  CHECK(p->nseries == 2 && !strcmp(p->series[1].name, "DeFeat") && !strcmp(p->title, "det.cls+det.box"));
  CHECK(p->series[1].n == 2 && fabs(p->series[1].y[1] - 0.625) < 1e-12);
  /* It draws. */
  cairo_surface_t *surf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 400, 300);
  cairo_t *cr = cairo_create(surf);
  KdFigStyle style;
  kd_fig_style_default(&style);
  kd_fig_paint(cr, &panel, &style, 400, 300, 1.0);
  CHECK(cairo_status(cr) == CAIRO_STATUS_SUCCESS);
  cairo_surface_flush(surf);
  const unsigned char *px = cairo_image_surface_get_data(surf);
  int stride = cairo_image_surface_get_stride(surf), inked = 0;
  for (int r = 0; r < 300; r++)
    for (int q = 0; q < 400; q++) inked += (((const uint32_t *)(px + r * stride))[q] & 0xffffff) != 0xffffff;
  CHECK_MSG(inked > 2000, "%d inked pixels", inked);
  cairo_destroy(cr);
  cairo_surface_destroy(surf);

  /* Many runs, one series: a colour each, and past the palette's distinct
   * colours the next dash, so no two runs look alike. */
  {
    const KdRunLog *many[KD_COMPARE_MAX_LINES];
    const char *names[KD_COMPARE_MAX_LINES];
    char nbuf[KD_COMPARE_MAX_LINES][16];
    for (int r = 0; r < KD_COMPARE_MAX_LINES; r++) {
      many[r] = r % 2 ? lb : la;
      snprintf(nbuf[r], sizeof nbuf[r], "run%d", r);
      names[r] = nbuf[r];
    }
    KdCompare mc = {.logs = many, .labels = names, .nruns = KD_COMPARE_MAX_LINES, .metrics = (const char *[]){"eval.AP"},
                    .nmetrics = 1};
    CHECK(kd_compare_build(&mc, st, &panel, &err) == 0);
    const KdFigPlot *mp = panel.spec;
    CHECK(mp->nseries == KD_COMPARE_MAX_LINES && !strcmp(mp->ylabel, "AP (%)"));
    for (int a = 0; a < mp->nseries; a++)
      for (int b = a + 1; b < mp->nseries; b++)
        CHECK_MSG(mp->series[a].color != mp->series[b].color || mp->series[a].dash != mp->series[b].dash,
                  "runs %d and %d share colour %d and dash %d", a, b, mp->series[a].color, mp->series[a].dash);
    CHECK(mp->series[KD_COMPARE_COLOURS].dash == 1 && mp->series[0].dash == 0);
  }

  /* Refusals name the run. */
  c.metrics = (const char *[]){"eval.AP75"};
  CHECK(kd_compare_build(&c, st, &panel, &err) == -1);
  CHECK_MSG(strstr(err.msg, "run 'baseline'") && strstr(err.msg, "eval.AP75"), "%s", err.msg);
  c.nruns = KD_COMPARE_MAX_LINES + 1;
  CHECK(kd_compare_build(&c, st, &panel, &err) == -1 && strstr(err.msg, "runs given"));
  c.nruns = 2;
  c.nmetrics = KD_COMPARE_MAX_METRICS + 1;
  CHECK(kd_compare_build(&c, st, &panel, &err) == -1 && strstr(err.msg, "series given"));

  /* The results figure: each run's last eval.AP x100, runs sharing a label
   * on one row, rows in first-seen order, reference lines passed on. */
  const KdRunLog *rlogs[3] = {la, lb, la};
  const char *rlabels[3] = {"distilled", "baseline", "distilled"}, *lline[1] = {"teacher"};
  const double lx[1] = {40};
  KdCompare rc = {.logs = rlogs, .labels = rlabels, .nruns = 3, .metrics = (const char *[]){"eval.AP"}, .nmetrics = 1,
                  .line_labels = lline, .line_x = lx, .nlines = 1};
  CHECK(kd_compare_results_build(&rc, st, &panel, &err) == 0);
  const KdFigDots *d = panel.spec;
  CHECK(d->n == 2 && !strcmp(d->categories[0], "distilled") && !strcmp(d->categories[1], "baseline"));
  CHECK(d->counts[0] == 2 && d->counts[1] == 1);
  CHECK_NEAR(d->values[0][0], 12.5, 1e-9);
  CHECK_NEAR(d->values[0][1], 12.5, 1e-9);
  CHECK_NEAR(d->values[1][0], 50.0, 1e-9);
  CHECK(d->nref == 1 && d->ref_x[0] == 40 && strstr(d->xlabel, "AP (%"));
  /* A plain series keeps its units: the last logged loss. */
  rc.metrics = (const char *[]){"loss"};
  CHECK(kd_compare_results_build(&rc, st, &panel, &err) == 0);
  d = panel.spec;
  CHECK(d->counts[0] == 2 && d->values[0][0] == 2.0 && d->values[1][0] == 1.0);
  rc.metrics = (const char *[]){"eval.AP75"};
  CHECK(kd_compare_results_build(&rc, st, &panel, &err) == -1 && strstr(err.msg, "run 'distilled'"));

  kd_compare_store_free(st);
  kd_runlog_free(la);
  kd_runlog_free(lb);
  return check_status("test_compare");
}
