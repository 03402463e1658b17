/* CSGR in a real distillation: the fixture's fashion-det set and detector,
 * a teacher checkpoint, 6 steps of the trainer with csgr on. Every step logs
 * csgr.cat and csgr.rel, finite and > 0 (the images have boxes); after a
 * live switch to the learnable relation (csgr.relation = cca) the CCA
 * modules' gamma leaves 0, i.e. they train with the student. */
#include <math.h>

#include "check.h"
#include "run_fixture.h"
#include "train/run.h"

#define STEPS 6
#define SWITCH_AT 3

typedef struct {
  KdRun *run;
  double cat[STEPS + 1], rel[STEPS + 1];
  float gamma[STEPS + 1];
} Trace;

static void trace(void *user, KdSession *s, const KdStepStats *st) {
  Trace *t = user;
  const int k = st->step;
  if (k < 1 || k > STEPS) return;
  t->cat[k] = t->rel[k] = NAN;
  for (int i = 0; i < st->nparts; i++) {
    if (!strcmp(st->parts[i].name, "csgr.cat")) t->cat[k] = st->parts[i].value;
    if (!strcmp(st->parts[i].name, "csgr.rel")) t->rel[k] = st->parts[i].value;
  }
  KdTensor *g = kd_params_find(kd_distiller_params(kd_session_distiller(s)), "distill.csgr.fpn_0.cca_s.gamma");
  t->gamma[k] = g ? g->data[0] : NAN;
  if (k == SWITCH_AT) CHECK(kd_run_set(t->run, "csgr.relation", "cca", "ui", NULL) == 0);
}

int main(void) {
  if (!fixture_have_source()) {
    printf("test_csgr_run: skipped (dataset-fashion-mnist is not installed)\n");
    return 77;
  }
  char tmp[4096], out[4300];
  CHECK(fixture_tmpdir(tmp, sizeof tmp, "csgr") == 0);
  Trace t = {0};
  CHECK(fixture_method_run(tmp, "csgr", STEPS, trace, &t, &t.run, out, sizeof out) == 0);
  for (int k = 1; k <= STEPS; k++) {
    printf("step %d: csgr.cat %.6g csgr.rel %.6g gamma %.3g\n", k, t.cat[k], t.rel[k], t.gamma[k]);
    CHECK_MSG(isfinite(t.cat[k]) && t.cat[k] > 0 && isfinite(t.rel[k]) && t.rel[k] > 0, "step %d: cat %g rel %g", k,
              t.cat[k], t.rel[k]);
    /* gamma starts at 0; the step after the switch already updates it */
    CHECK_MSG(k <= SWITCH_AT ? t.gamma[k] == 0.0f : t.gamma[k] != 0.0f, "step %d: gamma %g", k, t.gamma[k]);
  }
  if (!check_status("test_csgr_run")) fixture_rmrf(tmp);
  else fprintf(stderr, "test_csgr_run: kept %s for inspection\n", tmp);
  return check_status("test_csgr_run");
}
