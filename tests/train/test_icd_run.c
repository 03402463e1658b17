/* ICD in a real distillation: the fixture's fashion-det set and detector
 * (neck width 16, so 8 heads of 2), a teacher checkpoint, 8 steps of the
 * trainer with icd on and icd.bypass 0.5 (the student's features detached
 * for steps 0-3). Every step logs icd.mimic, icd.conf and icd.reg, finite
 * and > 0, the parts summing to the loss, and the diagnostics icd.queries
 * (real + fake queries per image, >= 1) and icd.real_mass (the real
 * queries' attention mass per image and head = GTs per image) outside the
 * parts. A live icd.weight = 0 after step 4 makes icd.mimic 0 from the
 * next step while the auxiliary task goes on. First, the preset
 * assets/configs/distill-icd.json reads back with ICD's defaults, the
 * student inheriting the teacher's neck and head. */
#include <math.h>

#include "check.h"
#include "run_fixture.h"
#include "distill/method.h"
#include "train/run.h"

#define STEPS 8
#define SWITCH_AT 4

typedef struct {
  KdRun *run;
  double mimic[STEPS + 1], conf[STEPS + 1], reg[STEPS + 1], queries[STEPS + 1], mass[STEPS + 1], gap[STEPS + 1];
} Trace;

static void trace(void *user, KdSession *s, const KdStepStats *st) {
  (void)s;
  Trace *t = user;
  const int k = st->step;
  if (k < 1 || k > STEPS) return;
  t->mimic[k] = t->conf[k] = t->reg[k] = t->queries[k] = t->mass[k] = NAN;
  double sum = 0;
  for (int i = 0; i < st->nparts; i++) {
    if (!strcmp(st->parts[i].name, "icd.mimic")) t->mimic[k] = st->parts[i].value;
    if (!strcmp(st->parts[i].name, "icd.conf")) t->conf[k] = st->parts[i].value;
    if (!strcmp(st->parts[i].name, "icd.reg")) t->reg[k] = st->parts[i].value;
    sum += st->parts[i].value;
  }
  t->gap[k] = fabs(sum - st->loss) / fmax(1e-12, fabs(st->loss));
  for (int i = 0; i < st->nstats; i++) {
    if (!strcmp(st->stats[i].name, "icd.queries")) t->queries[k] = st->stats[i].value;
    if (!strcmp(st->stats[i].name, "icd.real_mass")) t->mass[k] = st->stats[i].value;
  }
  if (k == SWITCH_AT) CHECK(kd_run_set(t->run, "icd.weight", "0", "ui", NULL) == 0);
}

static void check_preset(void) {
  const char *root = getenv("KD_SOURCE_ROOT");
  char path[4200];
  snprintf(path, sizeof path, "%s/assets/configs/distill-icd.json", root ? root : ".");
  KdConfig *c = kd_config_new();
  KdError err;
  CHECK(c && kd_settings_register_all(c) == 0);
  CHECK_MSG(kd_config_load_file(c, path, &err) == 0, "%s", err.msg);
  CHECK(!strcmp(kd_config_str(c, "distill.methods"), "icd") && kd_config_int(c, "student.init_from_teacher") == 1 &&
        !strcmp(kd_config_str(c, "icd.norm"), "per_image"));
  const KdMethod *m = kd_method_find("icd");
  CHECK(m != NULL);
  for (int i = 0; m && i < m->nparams; i++)
    if (m->params[i].type == KD_CFG_FLOAT)
      CHECK_MSG(fabs(kd_config_num(c, m->params[i].key) - m->params[i].def) < 1e-12, "%s: preset %g, default %g",
                m->params[i].key, kd_config_num(c, m->params[i].key), m->params[i].def);
  kd_config_free(c);
}

int main(void) {
  check_preset();
  if (!fixture_have_source()) {
    printf("test_icd_run: skipped (dataset-fashion-mnist is not installed)\n");
    return 77;
  }
  char tmp[4096], out[4300];
  CHECK(fixture_tmpdir(tmp, sizeof tmp, "icd") == 0);
  Trace t = {0};
  static const char *const kv[][2] = {{"icd.bypass", "0.5"}};
  CHECK(fixture_method_run_of(tmp, FIXTURE_TEACHER_JSON, "icd", kv, 1, STEPS, trace, &t, &t.run, out, sizeof out) == 0);
  for (int k = 1; k <= STEPS; k++) {
    printf("step %d: icd.mimic %.6g conf %.6g reg %.6g queries/image %.3g real mass %.3g parts-vs-loss %.2g\n", k,
           t.mimic[k], t.conf[k], t.reg[k], t.queries[k], t.mass[k], t.gap[k]);
    CHECK_MSG(isfinite(t.conf[k]) && t.conf[k] > 0 && isfinite(t.reg[k]) && t.reg[k] > 0, "step %d: conf %g reg %g", k,
              t.conf[k], t.reg[k]);
    CHECK_MSG(t.queries[k] >= 1.0 && t.mass[k] >= 0.0 && t.mass[k] <= t.queries[k], "step %d: queries %g mass %g", k,
              t.queries[k], t.mass[k]);
    CHECK_MSG(t.gap[k] < 1e-5, "step %d: the parts miss the loss by %g", k, t.gap[k]);
    if (k <= SWITCH_AT) CHECK_MSG(isfinite(t.mimic[k]) && t.mimic[k] > 0, "step %d: mimic %g", k, t.mimic[k]);
    else CHECK_MSG(t.mimic[k] == 0.0, "step %d: icd.mimic %g after icd.weight = 0", k, t.mimic[k]);
  }
  if (!check_status("test_icd_run")) fixture_rmrf(tmp);
  else fprintf(stderr, "test_icd_run: kept %s for inspection\n", tmp);
  return check_status("test_icd_run");
}
