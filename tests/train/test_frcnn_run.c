/* A Faster R-CNN run end to end on a tiny fashion-det set: the trainer
 * logs the four detection parts, the final evaluation runs, probes
 * capture, and a run resumed from its step-5 checkpoint replays steps
 * 6..10 exactly (the RPN's and RoI head's samples come from the seed and
 * the step, not from how the run got there). A RetinaNet model refuses
 * the run's checkpoint, naming a tensor. */
#include <math.h>
#include <unistd.h>

#include "check.h"
#include "core/fileio.h"
#include "model/safetensors.h"
#include "run_fixture.h"
#include "probe/prober.h"
#include "train/run.h"
#include "train/settings.h"

#define STEPS 10

typedef struct {
  double loss[STEPS + 1];
  int parts;
  KdProber *prober;
} Curve;

static void record(void *user, KdSession *s, const KdStepStats *st) {
  Curve *c = user;
  if (c->prober) kd_prober_run_hook(c->prober, s, st);
  if (st->step > STEPS) return;
  c->loss[st->step] = st->loss;
  int n = 0;
  for (int i = 0; i < st->nparts; i++) n += !strncmp(st->parts[i].name, "det.r", 5) && isfinite(st->parts[i].value);
  c->parts = n;
}

static KdConfig *frcnn_config(const char *data) {
  KdConfig *c = fixture_config(data, STEPS);
  const char *kv[][2] = {{"model.head", "faster_rcnn"}, {"model.fpn_first_level", "2"}, {"model.extra_levels", "1"},
                         {"model.extra_from", "pool"}, {"rpn.anchor_sizes", "8,16,32,64,128"},
                         {"rpn.pre_nms_top_n_train", "200"}, {"rpn.post_nms_top_n_train", "100"},
                         {"rpn.pre_nms_top_n_test", "100"}, {"rpn.post_nms_top_n_test", "50"},
                         {"roi.representation", "32"}, {"roi.batch_per_image", "32"}, {"roi.canonical_scale", "56"},
                         {"train.checkpoint_every", "5"}, {"distill.methods", ""}, {"probe.budget", "0.5"}};
  KdError err;
  for (size_t i = 0; c && i < sizeof kv / sizeof kv[0]; i++) CHECK_MSG(kd_config_set(c, kv[i][0], kv[i][1], &err) == 0, "%s", err.msg);
  return c;
}

static int run_to_end(KdConfig *cfg, const char *out, const char *resume, Curve *c) {
  KdError err;
  KdRunOpts ro = {.session = {.out_dir = out, .resume_dir = resume}, .after_step = record, .after_step_user = c};
  KdProbeCfg pc;
  CHECK_MSG(kd_probe_cfg_from_settings(&pc, cfg, &err) == 0 && (c->prober = kd_prober_new(NULL, &pc, &err)), "%s", err.msg);
  KdRun *run = kd_run_new(cfg, &ro, &err);
  CHECK_MSG(run != NULL, "%s", err.msg);
  if (!run) return -1;
  CHECK_MSG(kd_prober_bind(c->prober, kd_run_session(run), &err) == 0, "%s", err.msg);
  CHECK(kd_run_start(run, &err) == 0);
  int rc = kd_run_wait(run);
  KdRunStatus st;
  kd_run_status(run, &st);
  CHECK_MSG(st.state == KD_RUN_FINISHED, "state %s: %s", kd_run_state_name(st.state), st.message);
  CHECK(st.step == STEPS && st.eval_step == STEPS && isfinite(st.eval[0]) && st.eval[0] >= 0);
  kd_run_free(run);
  char perr[512];
  CHECK_MSG(!kd_prober_error(c->prober, perr, sizeof perr)[0], "probe: %s", perr);
  CHECK(kd_prober_stats(c->prober).captures > 0);
  kd_prober_free(c->prober);
  c->prober = NULL;
  return rc;
}

int main(void) {
  if (!fixture_have_source()) {
    printf("test_frcnn_run: skipped (dataset-fashion-mnist is not installed)\n");
    return 77;
  }
  char tmp[4096], data[4200], out[4300], path[4400];
  CHECK(fixture_tmpdir(tmp, sizeof tmp, "frcnn") == 0);
  if (fixture_data(tmp, data, sizeof data)) return 1;
  snprintf(out, sizeof out, "%s/run", tmp);
  Curve a = {{0}, 0, NULL}, b = {{0}, 0, NULL};
  KdConfig *cfg = frcnn_config(data);
  CHECK(cfg && run_to_end(cfg, out, NULL, &a) == 0);
  kd_config_free(cfg);
  CHECK_MSG(a.parts == 4, "%d det.rpn_*/det.roi_* parts", a.parts);
  CHECK(a.loss[STEPS] < a.loss[1]);
  snprintf(path, sizeof path, "%s/snapshots/index.jsonl", out);
  CHECK_MSG(kd_path_exists(path), "no probe snapshots");

  /* resume from step 5 */
  snprintf(path, sizeof path, "%s/checkpoints/step_%08d.safetensors", out, STEPS);
  char keep[4400];
  snprintf(keep, sizeof keep, "%s/final.safetensors", tmp);
  CHECK(rename(path, keep) == 0);
  KdError err;
  cfg = kd_config_new();
  kd_settings_register_all(cfg);
  snprintf(path, sizeof path, "%s/config.json", out);
  CHECK(kd_config_load_file(cfg, path, &err) == 0);
  CHECK(run_to_end(cfg, NULL, out, &b) == 0);
  kd_config_free(cfg);
  for (int s = 6; s <= STEPS; s++)
    CHECK_MSG(a.loss[s] == b.loss[s], "step %d: loss %.9g then %.9g after resume", s, a.loss[s], b.loss[s]);
  printf("test_frcnn_run: loss %.4f at step 1, %.4f at step %d; resumed run the same\n", a.loss[1], a.loss[STEPS], STEPS);

  /* a RetinaNet config refuses the Faster R-CNN checkpoint */
  cfg = fixture_config(data, STEPS);
  KdModelCfg mc;
  CHECK(kd_settings_model(cfg, &mc, &err) == 0);
  mc.neck = (KdNeckCfg){.channels = 16, .first_level = 2, .extra_levels = 1, .extra = KD_EXTRA_MAXPOOL};
  KdModel *m = kd_model_new(&mc, 1, &err);
  CHECK(m && kd_safetensors_load(keep, kd_model_params(m), 1, &err) == -1);
  CHECK_MSG(strstr(err.msg, "missing \"head.classification_head.conv.0.0.weight\""), "%s", err.msg);
  kd_model_free(m);
  kd_config_free(cfg);
  if (!check_failures) fixture_rmrf(tmp);
  else fprintf(stderr, "test_frcnn_run: kept %s for inspection\n", tmp);
  return check_status("test_frcnn_run");
}
