/* PGD in a real distillation: the preset assets/configs/distill-pgd.json
 * reads back with PGD's official settings (its own defaults), then a few
 * steps of the trainer on the fixture's fashion-det set with tiny GFL
 * models (a GFL teacher checkpoint, the student initialised from it as the
 * preset does) under those settings: every PGD part logged each step,
 * finite and >= 0, fg and bg > 0 (the images have boxes), and all parts
 * together summing to the step's loss; then under pgd.mix=official. */
#include <math.h>

#include "check.h"
#include "../train/run_fixture.h"
#include "distill/method.h"
#include "train/run.h"

#define STEPS 3
static const char *const names[5] = {"pgd.fg", "pgd.bg", "pgd.cls_att", "pgd.reg", "pgd.reg_att"};

typedef struct {
  double v[STEPS + 1][5], gap[STEPS + 1];
} Trace;

static void trace(void *user, KdSession *s, const KdStepStats *st) {
  (void)s;
  Trace *t = user;
  const int k = st->step;
  if (k < 1 || k > STEPS) return;
  double sum = 0;
  for (int j = 0; j < 5; j++) t->v[k][j] = NAN;
  for (int i = 0; i < st->nparts; i++) {
    for (int j = 0; j < 5; j++)
      if (!strcmp(st->parts[i].name, names[j])) t->v[k][j] = st->parts[i].value;
    sum += st->parts[i].value;
  }
  t->gap[k] = fabs(sum - st->loss) / fmax(1e-12, fabs(st->loss));
}

static void check_preset(void) {
  const char *root = getenv("KD_SOURCE_ROOT");
  char path[4200];
  snprintf(path, sizeof path, "%s/assets/configs/distill-pgd.json", root ? root : ".");
  KdConfig *c = kd_config_new();
  KdError err;
  CHECK(c && kd_settings_register_all(c) == 0);
  CHECK_MSG(kd_config_load_file(c, path, &err) == 0, "%s", err.msg);
  CHECK(!strcmp(kd_config_str(c, "distill.methods"), "pgd") && !strcmp(kd_config_str(c, "model.head"), "gfl"));
  CHECK(kd_config_int(c, "student.init_from_teacher") == 1 && !strcmp(kd_config_str(c, "pgd.mix"), "per-image") &&
        !strcmp(kd_config_str(c, "pgd.tower"), "first"));
  const KdMethod *m = kd_method_find("pgd");
  for (int i = 0; m && i < m->nparams; i++)
    if (m->params[i].type == KD_CFG_FLOAT)
      CHECK_MSG(fabs(kd_config_num(c, m->params[i].key) - m->params[i].def) < 1e-12, "%s: preset %g, default %g",
                m->params[i].key, kd_config_num(c, m->params[i].key), m->params[i].def);
  kd_config_free(c);
}

static const char *const teacher_json =
    "{\"model\": {\"head\": \"gfl\", \"depth\": 10, \"width\": 8, \"fpn_channels\": 16, \"head_convs\": 2},"
    " \"anchor\": {\"size_mult\": 2}, \"gfl\": {\"reg_max\": 7}}\n";

static void run_pgd(const char *mix) {
  /* two tower convs, so that the first conv's features (pgd.tower=first) are not the towers' outputs */
  const char *const kv[][2] = {{"model.head", "gfl"}, {"model.head_convs", "2"}, {"anchor.size_mult", "2"}, {"gfl.reg_max", "7"},
                               {"student.init_from_teacher", "1"}, {"pgd.mix", mix},
                               /* the detection parts are logged unweighted: weights 1 make them sum to the loss */
                               {"loss.box_weight", "1"}, {"loss.dfl_weight", "1"}};
  char tmp[4096], out[4300];
  CHECK(fixture_tmpdir(tmp, sizeof tmp, "pgd") == 0);
  Trace t = {0};
  KdRun *run = NULL;
  CHECK(fixture_method_run_of(tmp, teacher_json, "pgd", kv, 8, STEPS, trace, &t, &run, out, sizeof out) == 0);
  for (int k = 1; k <= STEPS; k++) {
    printf("pgd (%s) step %d: fg %.5g bg %.5g cls_att %.5g reg %.5g reg_att %.5g parts-vs-loss %.2g\n", mix, k,
           t.v[k][0], t.v[k][1], t.v[k][2], t.v[k][3], t.v[k][4], t.gap[k]);
    for (int j = 0; j < 5; j++) CHECK_MSG(isfinite(t.v[k][j]) && t.v[k][j] >= 0, "step %d: %s %g", k, names[j], t.v[k][j]);
    CHECK_MSG(t.v[k][0] > 0 && t.v[k][1] > 0, "step %d: fg %g bg %g", k, t.v[k][0], t.v[k][1]);
    CHECK_MSG(t.gap[k] < 1e-5, "step %d: the parts miss the loss by %g", k, t.gap[k]);
  }
  if (!check_status("test_pgd_run")) fixture_rmrf(tmp);
  else fprintf(stderr, "test_pgd_run: kept %s for inspection\n", tmp);
}

int main(void) {
  check_preset();
  if (!fixture_have_source()) {
    printf("test_pgd_run: run skipped (dataset-fashion-mnist is not installed)\n");
    return check_status("test_pgd_run") ? 1 : 77;
  }
  run_pgd("per-image");
  run_pgd("official");
  return check_status("test_pgd_run");
}
