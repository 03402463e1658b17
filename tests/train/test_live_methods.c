/* Live changes of distill.methods that list methods with learnable parts
 * for the first time (DeFeat at open, FGD after step 3, FitNet after step
 * 4: not registry order): the parts and their optimizer slots are made
 * then, trained from the next step on, checkpointed, and a resume from a
 * checkpoint taken after the changes replays the loss curve bit for bit. */
#include <math.h>

#include "check.h"
#include "model/safetensors.h"
#include "run_fixture.h"
#include "train/run.h"

#define STEPS 16
#define SWITCH_AT 4

typedef struct {
  KdRun *run;
  double loss[STEPS + 1];
  int parts[STEPS + 1];                  /* fitnet.* loss parts of the step */
  int fitnet[STEPS + 1], fgd[STEPS + 1]; /* tensors in the distiller's store */
  double momentum[STEPS + 1];            /* |momentum| of FitNet's first adapter, -1 when absent */
  float w0[STEPS + 1];          /* its first weight */
} Trace;

static int count(KdParams *p, const char *prefix) {
  int n = 0;
  for (int i = 0; i < kd_params_count(p); i++) n += !strncmp(kd_params_at(p, i)->name, prefix, strlen(prefix));
  return n;
}

static void trace(void *user, KdSession *s, const KdStepStats *st) {
  Trace *t = user;
  int k = st->step;
  if (k < 1 || k > STEPS) return;
  t->loss[k] = st->loss;
  for (int i = 0; i < st->nparts; i++) t->parts[k] += !strncmp(st->parts[i].name, "fitnet.", 7);
  KdParams *store = kd_distiller_params(kd_session_distiller(s));
  t->fitnet[k] = count(store, "distill.fitnet.");
  t->fgd[k] = count(store, "distill.fgd.");
  KdTensor *w = kd_params_find(store, "distill.fitnet.adapt.0.weight");
  KdTensor *m = kd_params_find(kd_optim_state(kd_trainer_optim(kd_session_trainer(s))),
                               "momentum.distill.fitnet.adapt.0.weight");
  t->momentum[k] = -1;
  if (m) {
    t->momentum[k] = 0;
    for (size_t i = 0; i < m->numel; i++) t->momentum[k] += fabs(m->data[i]);
  }
  t->w0[k] = w ? w->data[0] : NAN;
  if (k == SWITCH_AT - 1 && t->run) CHECK(kd_run_set(t->run, "distill.methods", "defeat,fgd", "ui", NULL) == 0);
  if (k == SWITCH_AT && t->run) CHECK(kd_run_set(t->run, "distill.methods", "defeat,fgd,fitnet", "ui", NULL) == 0);
}

static void run(KdConfig *cfg, const char *out, const char *resume, Trace *t) {
  KdError err;
  KdRunOpts ro = {.session = {.out_dir = out, .resume_dir = resume, .distill = 1}, .after_step = trace,
                  .after_step_user = t};
  KdRun *r = kd_run_new(cfg, &ro, &err);
  CHECK_MSG(r != NULL, "%s", err.msg);
  if (!r) return;
  t->run = resume ? NULL : r;
  CHECK(kd_run_start(r, &err) == 0 && kd_run_wait(r) == 0);
  KdRunStatus st;
  kd_run_status(r, &st);
  CHECK_MSG(st.state == KD_RUN_FINISHED && st.step == STEPS, "state %s: %s", kd_run_state_name(st.state), st.message);
  kd_run_free(r);
}

/* Tensors of a checkpoint whose names start with prefix. */
static int in_file(const char *path, const char *prefix) {
  KdError err;
  KdSafetensors *st = kd_safetensors_open(path, &err);
  CHECK_MSG(st != NULL, "%s", err.msg);
  int n = 0;
  for (int i = 0; st && i < kd_safetensors_count(st); i++) n += !strncmp(kd_safetensors_name(st, i), prefix, strlen(prefix));
  kd_safetensors_close(st);
  return n;
}

/* The checkpoint's distill.* names in file order, comma-joined. */
static void names_of(const char *path, char *buf, size_t len) {
  KdError err;
  KdSafetensors *st = kd_safetensors_open(path, &err);
  buf[0] = 0;
  for (int i = 0; st && i < kd_safetensors_count(st); i++)
    if (!strncmp(kd_safetensors_name(st, i), "distill.", 8))
      snprintf(buf + strlen(buf), len - strlen(buf), "%s,", kd_safetensors_name(st, i));
  kd_safetensors_close(st);
}

int main(void) {
  if (!fixture_have_source()) {
    printf("test_live_methods: skipped (dataset-fashion-mnist is not installed)\n");
    return 77;
  }
  char tmp[4096], data[4200], out[4300], path[4400];
  CHECK(fixture_tmpdir(tmp, sizeof tmp, "livem") == 0);
  if (fixture_data(tmp, data, sizeof data)) return 1;
  char teacher[4300];
  if (fixture_teacher(tmp, teacher, sizeof teacher, path, sizeof path)) return 1;
  snprintf(out, sizeof out, "%s/a", tmp);
  KdError err;

  KdConfig *cfg = fixture_config(data, STEPS);
  CHECK(cfg && kd_config_set(cfg, "teacher.config", teacher, &err) == 0 &&
        kd_config_set(cfg, "teacher.checkpoint", path, &err) == 0 &&
        kd_config_set(cfg, "train.checkpoint_every", "8", &err) == 0 &&
        kd_config_set(cfg, "distill.methods", "defeat", &err) == 0);
  Trace a = {0}, b = {0};
  run(cfg, out, NULL, &a);
  kd_config_free(cfg);

  for (int k = 1; k <= STEPS; k++) {
    int on = k > SWITCH_AT;
    CHECK_MSG(a.parts[k] == on, "step %d: %d fitnet parts", k, a.parts[k]);
    CHECK_MSG(a.fitnet[k] == (on ? 6 : 0) && (a.fgd[k] > 0) == (k >= SWITCH_AT), "step %d: %d fitnet, %d fgd tensors", k,
              a.fitnet[k], a.fgd[k]);
    CHECK_MSG(on ? a.momentum[k] > 0 : a.momentum[k] < 0, "step %d: momentum %g", k, a.momentum[k]);
  }
  CHECK_MSG(a.w0[STEPS] != a.w0[SWITCH_AT + 1], "FitNet's adapter did not train: %g", a.w0[STEPS]);

  /* checkpoints hold the parts of the methods listed so far, and nothing else */
  snprintf(path, sizeof path, "%s/checkpoints/step_%08d.safetensors", out, STEPS);
  CHECK(in_file(path, "distill.defeat.") == 6 && in_file(path, "distill.fitnet.") == 6 && in_file(path, "distill.fgd.") > 0);
  snprintf(path, sizeof path, "%s/checkpoints/step_%08d.optim.safetensors", out, STEPS);
  CHECK(in_file(path, "momentum.distill.fitnet.") == 6 && in_file(path, "momentum.distill.pkd.") == 0);

  /* resume from step 8 (after the changes): the same curve, bit for bit,
   * and the parts made again in the order they were made the first time */
  static char order_a[8192], order_b[8192];
  snprintf(path, sizeof path, "%s/checkpoints/step_%08d.safetensors", out, STEPS);
  names_of(path, order_a, sizeof order_a);
  CHECK(strstr(order_a, "distill.defeat.") < strstr(order_a, "distill.fgd.") &&
        strstr(order_a, "distill.fgd.") < strstr(order_a, "distill.fitnet."));
  CHECK(unlink(path) == 0);
  cfg = kd_config_new();
  kd_settings_register_all(cfg);
  snprintf(path, sizeof path, "%s/config.json", out);
  CHECK(kd_config_load_file(cfg, path, &err) == 0);
  CHECK(!strcmp(kd_config_str(cfg, "distill.methods"), "defeat"));
  run(cfg, NULL, out, &b);
  snprintf(path, sizeof path, "%s/checkpoints/step_%08d.safetensors", out, STEPS);
  names_of(path, order_b, sizeof order_b);
  CHECK_MSG(!strcmp(order_a, order_b), "parts made in another order on resume");
  CHECK(!strcmp(kd_config_str(cfg, "distill.methods"), "defeat,fgd,fitnet"));
  kd_config_free(cfg);
  for (int k = 9; k <= STEPS; k++) {
    CHECK_MSG(a.loss[k] == b.loss[k], "step %d: loss %.9g then %.9g after resume", k, a.loss[k], b.loss[k]);
    CHECK(b.parts[k] == 1 && b.fitnet[k] == 6 && b.fgd[k] == a.fgd[k]);
  }
  printf("test_live_methods: step %d loss %.7f uninterrupted, %.7f resumed\n", STEPS, a.loss[STEPS], b.loss[STEPS]);
  if (!check_failures) fixture_rmrf(tmp);
  else fprintf(stderr, "test_live_methods: kept %s for inspection\n", tmp);
  return check_status("test_live_methods");
}
