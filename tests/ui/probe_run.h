/* Shared by the export tests: a small real distillation run with the prober
 * hooked in as the window hooks it (ui/bridge.c), so the run directory has
 * metrics, an evaluation, a logged setting change and several snapshots.
 * Header-only. */
#ifndef KD_TEST_PROBE_RUN_H
#define KD_TEST_PROBE_RUN_H

#include "../train/run_fixture.h"
#include "distill/distiller.h"
#include "distill/method.h"
#include "model/detector.h"
#include "model/safetensors.h"
#include "probe/prober.h"
#include "train/run.h"

typedef struct ProbeRun {
  KdRun *run;
  KdConfig *cfg;
  KdProber *prober;
  int every;  /* probe every this many steps */
  int set_at; /* log fitnet.weight 1 -> 2 after this step */
  int failed;
} ProbeRun;

static void probe_run_hook(void *user, KdSession *s, const KdStepStats *st) {
  ProbeRun *p = user;
  KdError err;
  if (!p->prober && !p->failed) {
    KdProbeCfg pc;
    kd_probe_cfg_default(&pc);
    pc.settings = p->cfg;
    pc.min_interval = pc.max_interval = p->every; /* on the interval, whatever it costs */
    p->prober = kd_prober_new(s, &pc, &err);
    if (!p->prober) fprintf(stderr, "probe_run: %s\n", err.msg), p->failed = 1;
  }
  if (p->prober && kd_prober_after_step(p->prober, s, st, &err) < 0) fprintf(stderr, "probe_run: %s\n", err.msg), p->failed = 1;
  if (st->step == p->set_at && kd_run_set(p->run, "fitnet.weight", "2", "test", &err))
    fprintf(stderr, "probe_run: %s\n", err.msg), p->failed = 1;
}

/* Data (fixture_data), a random teacher of the student's shape, and
 * `steps` steps of fitnet (+ defeat when registered) distillation with a
 * snapshot every `every` steps and an evaluation halfway and at the end,
 * into dir/run (its path into run). 0, or -1 with a message. */
/* A teacher of the student's shape with random weights (seed 9):
 * dir/teacher.json and dir/teacher.safetensors, their paths into tcfg and
 * tck (len each). 0, or -1 with a message. */
static inline int probe_run_teacher(const char *dir, char *tcfg, char *tck, size_t len) {
  snprintf(tcfg, len, "%s/teacher.json", dir);
  snprintf(tck, len, "%s/teacher.safetensors", dir);
  FILE *f = fopen(tcfg, "w");
  if (!f) return -1;
  fprintf(f, "{\"model\": {\"depth\": 10, \"width\": 8, \"fpn_channels\": 16, \"head_convs\": 1}, \"data\": {\"size\": 64}}\n");
  fclose(f);
  KdError err;
  KdModelCfg mc;
  kd_model_cfg_default(&mc);
  mc.backbone.depth = 10, mc.backbone.width = 8, mc.neck.channels = 16, mc.head.convs = 1;
  KdModel *teacher = kd_model_new(&mc, 9, &err);
  if (!teacher || kd_safetensors_save(tck, kd_model_params(teacher), NULL, &err)) {
    fprintf(stderr, "probe_run: %s\n", err.msg);
    kd_model_free(teacher);
    return -1;
  }
  kd_model_free(teacher);
  return 0;
}

static inline int probe_run_make(const char *dir, int steps, int every, char *run, size_t len) {
  char data[2048], tcfg[2100], tck[2100], buf[32];
  if (fixture_data(dir, data, sizeof data)) return -1;
  snprintf(run, len, "%s/run", dir);
  if (probe_run_teacher(dir, tcfg, tck, sizeof tcfg)) return -1;
  KdError err;
  ProbeRun p = {.every = every, .set_at = steps / 2 - 1};
  p.cfg = fixture_config(data, steps);
  if (!p.cfg) return -1;
  int active[64];
  const char *methods = kd_method_count() <= 64 && !kd_distill_parse_methods("fitnet,defeat", active, &err) ? "fitnet,defeat" : "fitnet";
  snprintf(buf, sizeof buf, "%d", steps / 2);
  const char *kv[][2] = {{"teacher.config", tcfg}, {"teacher.checkpoint", tck}, {"train.threads", "1"},
                         {"distill.methods", methods}, {"train.eval_every", buf}};
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
    if (kd_config_set(p.cfg, kv[i][0], kv[i][1], &err)) {
      fprintf(stderr, "probe_run: %s\n", err.msg);
      kd_config_free(p.cfg);
      return -1;
    }
  KdRunOpts o = {0};
  o.session.out_dir = run;
  o.session.distill = 1;
  o.after_step = probe_run_hook;
  o.after_step_user = &p;
  o.no_control_file = 1;
  p.run = kd_run_new(p.cfg, &o, &err);
  int rc = p.run && !kd_run_start(p.run, &err) ? kd_run_wait(p.run) : -1;
  if (rc) fprintf(stderr, "probe_run: %s\n", p.run ? "the run failed" : err.msg);
  kd_run_free(p.run);
  kd_prober_free(p.prober);
  kd_config_free(p.cfg);
  return rc || p.failed ? -1 : 0;
}

#endif
