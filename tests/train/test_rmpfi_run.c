/* RM and PFI in a real distillation: the fixture's fashion-det set and
 * detector, a teacher checkpoint, 6 steps of the trainer with rm,pfi on.
 * Every step logs rm.kl and pfi.<level>, finite, PFI > 0; RM is > 0 on
 * some step (a GT with two or more positive anchors) and its diagnostic
 * rm.mean_pos is >= 1, outside the parts (the parts still sum to the
 * loss); metrics.jsonl has it under "stats". A live rm.weight = 0 after
 * step 3 makes rm.kl 0 from the next step. */
#include <math.h>

#include "check.h"
#include "run_fixture.h"
#include "train/run.h"

#define STEPS 6
#define SWITCH_AT 3

typedef struct {
  KdRun *run;
  double rm[STEPS + 1], pfi[STEPS + 1], mean_pos[STEPS + 1], gap[STEPS + 1];
} Trace;

static void trace(void *user, KdSession *s, const KdStepStats *st) {
  (void)s;
  Trace *t = user;
  const int k = st->step;
  if (k < 1 || k > STEPS) return;
  t->rm[k] = t->mean_pos[k] = NAN;
  double sum = 0;
  for (int i = 0; i < st->nparts; i++) {
    if (!strcmp(st->parts[i].name, "rm.kl")) t->rm[k] = st->parts[i].value;
    if (!strncmp(st->parts[i].name, "pfi.", 4)) t->pfi[k] += st->parts[i].value;
    sum += st->parts[i].value;
  }
  t->gap[k] = fabs(sum - st->loss) / fmax(1e-12, fabs(st->loss));
  for (int i = 0; i < st->nstats; i++)
    if (!strcmp(st->stats[i].name, "rm.mean_pos")) t->mean_pos[k] = st->stats[i].value;
  if (k == SWITCH_AT) CHECK(kd_run_set(t->run, "rm.weight", "0", "ui", NULL) == 0);
}

int main(void) {
  if (!fixture_have_source()) {
    printf("test_rmpfi_run: skipped (dataset-fashion-mnist is not installed)\n");
    return 77;
  }
  char tmp[4096], out[4300];
  CHECK(fixture_tmpdir(tmp, sizeof tmp, "rmpfi") == 0);
  Trace t = {0};
  CHECK(fixture_method_run(tmp, "rm,pfi", STEPS, trace, &t, &t.run, out, sizeof out) == 0);
  int rm_pos = 0;
  for (int k = 1; k <= STEPS; k++) {
    printf("step %d: rm.kl %.6g pfi %.6g rm.mean_pos %.3g parts-vs-loss %.2g\n", k, t.rm[k], t.pfi[k], t.mean_pos[k],
           t.gap[k]);
    CHECK_MSG(isfinite(t.rm[k]) && t.rm[k] >= 0 && isfinite(t.pfi[k]) && t.pfi[k] > 0, "step %d: rm %g pfi %g", k, t.rm[k],
              t.pfi[k]);
    CHECK_MSG(t.mean_pos[k] >= 1.0, "step %d: mean |P_g| %g", k, t.mean_pos[k]);
    CHECK_MSG(t.gap[k] < 1e-5, "step %d: the parts miss the loss by %g", k, t.gap[k]);
    if (k <= SWITCH_AT) rm_pos += t.rm[k] > 0;
    else CHECK_MSG(t.rm[k] == 0.0, "step %d: rm.kl %g after rm.weight = 0", k, t.rm[k]);
  }
  CHECK(rm_pos > 0);
  int n = 0, with_stats = 0;
  cJSON **lines = fixture_jsonl(out, "metrics.jsonl", &n);
  for (int i = 0; i < n; i++) {
    cJSON *sv = cJSON_GetObjectItem(cJSON_GetObjectItem(lines[i], "stats"), "rm.mean_pos");
    with_stats += cJSON_IsNumber(sv) && sv->valuedouble >= 1.0;
    cJSON_Delete(lines[i]);
  }
  free(lines);
  CHECK_MSG(with_stats == STEPS, "%d of %d metrics lines have stats.rm.mean_pos", with_stats, STEPS);
  if (!check_status("test_rmpfi_run")) fixture_rmrf(tmp);
  else fprintf(stderr, "test_rmpfi_run: kept %s for inspection\n", tmp);
  return check_status("test_rmpfi_run");
}
