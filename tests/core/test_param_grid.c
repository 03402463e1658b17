/* The number format and the slider grids: awkward values print short and
 * read back equal; every live setting's grid is well formed and holds its
 * default; snapping a sweep of slider positions, and stepping, only ever
 * gives grid values; malformed grids are refused with the key named. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/numfmt.h"
#include "core/param_grid.h"
#include "train/session.h"

static void expect_format(double v, const char *want) {
  char buf[40];
  kd_num_format(v, buf, sizeof buf);
  CHECK_MSG(!strcmp(buf, want), "%.17g prints '%s', expected '%s'", v, buf, want);
  CHECK_MSG(strtod(buf, NULL) == v, "'%s' does not read back as %.17g", buf, v);
}

static void check_format(void) {
  expect_format(5e-6, "5e-6");
  expect_format(1e-4, "0.0001");
  expect_format(16, "16");
  expect_format(0.3333, "0.3333");
  expect_format(1234567, "1234567");
  expect_format(0, "0");
  expect_format(1000, "1000");
  expect_format(2.5e-4, "0.00025");
  expect_format(0.1 + 0.2, "0.30000000000000004");
  expect_format(-2.5e10, "-2.5e10");
  expect_format(1e9, "1e9");
  expect_format(123456789, "123456789");
  expect_format(1.5e-300, "1.5e-300");
  expect_format(0.0528937, "0.0528937");
  /* any double reads back exactly and fits the value boxes' 24 chars */
  srand(7);
  for (int i = 0; i < 20000; i++) {
    double v = ldexp((double)rand() / RAND_MAX + 0.5, rand() % 200 - 100) * (rand() % 2 ? 1 : -1);
    char buf[40];
    kd_num_format(v, buf, sizeof buf);
    CHECK_MSG(strtod(buf, NULL) == v && strlen(buf) <= 24, "%.17g -> '%s'", v, buf);
  }
}

/* A slider sweep of d: 1000 positions, linear or log, snapped. */
static void check_sweep(const KdParamDesc *d) {
  /* an integer setting with fewer than 8 values (e.g. 1..3 heads) shows them all */
  const double span = d->max - d->min + 1, want = d->type == KD_CFG_INT && span < 8 ? span : 8;
  double lo = kd_grid_low(d), prev = -INFINITY;
  int distinct = 0;
  for (int i = 0; i <= 1000; i++) {
    double f = i / 1000.0;
    double v = d->log_scale ? lo * pow(d->max / lo, f) : d->min + f * (d->max - d->min);
    double s = kd_grid_snap(d, v);
    CHECK_MSG(kd_grid_contains(d, s), "%s: position %d snaps to %.17g, off its grid", d->key, i, s);
    CHECK_MSG(s >= prev, "%s: the sweep goes back at %d (%.17g after %.17g)", d->key, i, s, prev);
    distinct += s != prev;
    prev = s;
  }
  CHECK_MSG(distinct >= want, "%s: only %d grid values over the slider", d->key, distinct);
  /* arrow steps walk the grid in order, end to end */
  double v = kd_grid_snap(d, d->min), top = kd_grid_snap(d, d->max);
  int n = 0;
  while (v < top && n < 100000) {
    double w = kd_grid_next(d, v, +1);
    CHECK_MSG(w > v && kd_grid_contains(d, w), "%s: step up from %.17g gives %.17g", d->key, v, w);
    CHECK_MSG(kd_grid_next(d, w, -1) == v, "%s: step down from %.17g gives %.17g, not %.17g", d->key, w, kd_grid_next(d, w, -1), v);
    if (w <= v) break;
    v = w, n++;
  }
  CHECK_MSG(v == top, "%s: stepping up ends at %.17g, not at %.17g", d->key, v, top);
}

static void check_settings(void) {
  KdConfig *c = kd_config_new();
  CHECK(c && kd_settings_register_all(c) == 0);
  int live = 0;
  for (int i = 0; c && i < kd_config_count(c); i++) {
    const KdParamDesc *d = kd_config_desc(c, i);
    double step, m[KD_GRID_MAX_MANTISSAS];
    int n;
    KdError err;
    CHECK_MSG(kd_grid_resolve(d, &step, m, &n, &err) == 0, "%s", err.msg);
    if (!d->live || (d->type != KD_CFG_FLOAT && d->type != KD_CFG_INT)) continue;
    live++;
    CHECK_MSG(kd_grid_contains(d, d->def), "%s: default %g is off its slider grid", d->key, d->def);
    CHECK_MSG(d->symbol && *d->symbol, "%s: a live setting without its symbol", d->key);
    check_sweep(d);
  }
  CHECK_MSG(live >= 20, "only %d live number settings", live);
  /* the case of issue 17: a drag on alpha_bg lands on its grid, not on 0.0528937 */
  const KdParamDesc *ab = c ? kd_config_find(c, "defeat.alpha_bg") : NULL;
  CHECK(ab != NULL);
  if (ab) {
    CHECK(kd_grid_snap(ab, 0.0528937) == 0.05);
    CHECK(kd_grid_snap(ab, 16.7) == 16 && kd_grid_next(ab, 16, 1) == 20 && kd_grid_next(ab, 16, -1) == 12);
    CHECK(kd_grid_snap(ab, 0) == 0 && kd_grid_next(ab, kd_grid_low(ab), -1) == 0 && kd_grid_next(ab, 0, 1) == 0.001);
    CHECK(kd_grid_snap(ab, 5000) == 1000);
    CHECK(!kd_grid_contains(ab, 0.0528937) && kd_grid_contains(ab, 0.0016));
  }
  const KdParamDesc *lam = c ? kd_config_find(c, "fgd.lambda") : NULL;
  if (lam) {
    char buf[40];
    CHECK(!strcmp(kd_num_format(kd_grid_snap(lam, 5.3e-6), buf, sizeof buf), "5e-6"));
    CHECK(!strcmp(kd_num_format(kd_grid_next(lam, 5e-6, 1), buf, sizeof buf), "8e-6"));
    CHECK(!strcmp(kd_num_format(kd_grid_next(lam, 8e-6, 1), buf, sizeof buf), "1e-5"));
  }
  const KdParamDesc *clip = c ? kd_config_find(c, "train.clip_norm") : NULL;
  if (clip) CHECK(kd_grid_snap(clip, 12.6) == 15 && kd_grid_snap(clip, 12.4) == 10 && kd_grid_next(clip, 12, 1) == 15);
  kd_config_free(c);
}

static void expect_refused(KdParamDesc d, const char *want) {
  double step, m[KD_GRID_MAX_MANTISSAS];
  int n;
  KdError err;
  int rc = kd_grid_resolve(&d, &step, m, &n, &err);
  CHECK_MSG(rc != 0 && strstr(err.msg, d.key) && strstr(err.msg, want), "%s: %s", d.key, rc ? err.msg : "accepted");
}

static void check_malformed(void) {
  KdParamDesc lg = {"t.log", "Log", KD_CFG_FLOAT, 1, 0, 10, 1, 1, NULL, NULL, "", {0, 0}, NULL, NULL};
  KdParamDesc d = lg;
  d.grid = "2,5";
  expect_refused(d, "start at 1");
  d.grid = "1,5,2";
  expect_refused(d, "ascending");
  d.grid = "1,x";
  expect_refused(d, "mantissas");
  d.grid = "1,2,5", d.log_scale = 0;
  expect_refused(d, "log sliders");
  d = lg, d.type = KD_CFG_INT, d.log_scale = 0, d.grid = "step 0.5";
  expect_refused(d, "whole");
  d = lg, d.grid = "step -1";
  expect_refused(d, "positive");
  /* a linear float's default step: 1-2-5 near a hundredth of the range */
  d = lg, d.log_scale = 0, d.max = 1;
  CHECK(kd_grid_snap(&d, 0.123) == 0.12 && kd_grid_contains(&d, 0.07));
  d.max = 1000;
  CHECK(kd_grid_snap(&d, 123) == 120);
  d.min = 0.05, d.max = 0.999;
  CHECK(kd_grid_snap(&d, 0) == 0.05 && kd_grid_snap(&d, 1) == 0.995);
}

int main(void) {
  check_format();
  check_settings();
  check_malformed();
  return check_status("test_param_grid");
}
