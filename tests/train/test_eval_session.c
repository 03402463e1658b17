/* Evaluation during training on a val split with a corrupt and a missing
 * image: every logged evaluation counts them (metrics.jsonl: images,
 * images_evaluated, images_left_out) with the AP of their detections
 * empty, the run log names them in one images_left_out event (not one per
 * evaluation, not again after --resume), and the image counts are no
 * curves of the run log. */
#include "check.h"
#include "eval_fixture.h"
#include "train/runlog.h"

static int count_left_out_events(const char *run, cJSON **last) {
  int n = 0, k = 0;
  cJSON **ev = fixture_jsonl(run, "events.jsonl", &n);
  for (int i = 0; i < n; i++)
    if (fixture_is_event(ev[i], "images_left_out")) {
      k++;
      cJSON_Delete(*last);
      *last = cJSON_Duplicate(ev[i], 1);
    }
  fixture_jsonl_free(ev, n);
  return k;
}

int main(void) {
  if (!fixture_have_source()) {
    printf("SKIP: no Fashion-MNIST source (dataset-fashion-mnist)\n");
    return 77;
  }
  const char *root = getenv("KD_SOURCE_ROOT");
  char tmp[4096], data[4300], tcfg[4096], tck[4096], run[4300], corrupt[4096], deleted[4096];
  snprintf(tcfg, sizeof tcfg, "%s/assets/configs/teacher.json", root ? root : ".");
  snprintf(tck, sizeof tck, "%s/assets/teacher.safetensors", root ? root : ".");
  if (fixture_tmpdir(tmp, sizeof tmp, "evalsess") || eval_fixture_data(tmp, data, sizeof data)) return 1;
  snprintf(run, sizeof run, "%s/run", tmp);
  KdError err;
  /* The teacher's preset, starting from the shipped teacher's weights. */
  KdConfig *cfg = kd_config_new();
  CHECK(cfg && kd_settings_register_all(cfg) == 0);
  CHECK_MSG(kd_config_load_file(cfg, tcfg, &err) == 0, "%s", err.msg);
  const char *kv[][2] = {{"data.dir", data},         {"train.init_checkpoint", tck}, {"train.batch", "2"},
                         {"train.steps", "4"},       {"train.warmup_steps", "1"},   {"train.eval_images", "0"},
                         {"train.checkpoint_every", "1000"}, {"probe.budget", "0"}};
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) CHECK_MSG(kd_config_set(cfg, kv[i][0], kv[i][1], &err) == 0, "%s", err.msg);

  /* Detections of the intact set, for the reference. */
  KdDataset *val = NULL;
  CHECK_MSG(kd_dataset_open_dir(data, "val", &val, &err) == 0, "%s", err.msg);
  KdModel *m = kd_model_from_files(tcfg, tck, NULL, &err);
  KdEvalResult intact;
  CHECK_MSG(m && val && kd_evaluate(m, cfg, val, 0, 1, NULL, NULL, &intact, &err) == 0, "%s", err.msg);
  double ref[KD_COCO_NSTATS];
  CHECK(eval_reference(val, EVAL_VAL, intact.dets, intact.ndets, 1, ref) == 0);
  CHECK(eval_damage(val, corrupt, deleted, sizeof corrupt) == 0);

  KdSessionOpts so = {.out_dir = run};
  KdSession *s = kd_session_open(cfg, &so, &err);
  CHECK_MSG(s != NULL, "%s", err.msg);
  if (!s) return check_status("eval_session");
  for (int e = 0; e < 2; e++) {
    KdEvalResult r;
    CHECK_MSG(kd_session_evaluate(s, &r, &err) == 0, "%s", err.msg);
    CHECK(r.images == EVAL_VAL && r.evaluated == EVAL_VAL - 2 && r.left_out == 2);
    CHECK(r.left_out == 2 && r.left[0].index == EVAL_CORRUPT && r.left[1].index == EVAL_DELETED);
    for (int i = 0; i < KD_COCO_NSTATS; i++) CHECK_NEAR(r.stats[i], ref[i], 1e-9);
    kd_eval_result_free(&r);
  }
  printf("AP: intact %.6f, with the two images' detections empty %.6f, logged by the session's evaluation (see metrics.jsonl)\n",
         intact.stats[KD_COCO_AP], ref[KD_COCO_AP]);
  int n = 0, evals = 0;
  cJSON **mt = fixture_jsonl(run, "metrics.jsonl", &n);
  for (int i = 0; i < n; i++) {
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(mt[i], "eval");
    if (!ev) continue;
    evals++;
    CHECK(fixture_num(ev, "images") == EVAL_VAL && fixture_num(ev, "images_evaluated") == EVAL_VAL - 2 &&
          fixture_num(ev, "images_left_out") == 2);
    CHECK_NEAR(fixture_num(ev, "AP"), ref[KD_COCO_AP], 1e-6);
    CHECK_NEAR(fixture_num(ev, "AR100"), ref[KD_COCO_AR100], 1e-6);
  }
  fixture_jsonl_free(mt, n);
  CHECK_MSG(evals == 2, "%d eval lines", evals);
  cJSON *last = NULL;
  CHECK_MSG(count_left_out_events(run, &last) == 1, "want one images_left_out event");
  const cJSON *imgs = cJSON_GetObjectItemCaseSensitive(last, "images");
  const char *f0 = fixture_str(cJSON_GetArrayItem(imgs, 0), "file"), *f1 = fixture_str(cJSON_GetArrayItem(imgs, 1), "file");
  const char *r0 = fixture_str(cJSON_GetArrayItem(imgs, 0), "reason"), *r1 = fixture_str(cJSON_GetArrayItem(imgs, 1), "reason");
  CHECK(fixture_num(last, "count") == 2 && cJSON_GetArraySize(imgs) == 2);
  CHECK_MSG(f0 && r0 && !strcmp(f0, corrupt) && strstr(r0, "not a JPEG"), "%s: %s", f0, r0);
  CHECK_MSG(f1 && r1 && !strcmp(f1, deleted) && strstr(r1, "No such file"), "%s: %s", f1, r1);

  KdRunLog *log = kd_runlog_open(run, &err);
  CHECK_MSG(log && kd_runlog_refresh(log, &err) == 1, "%s", err.msg);
  CHECK(log && kd_runlog_find(log, "eval.AP").n == 2 && kd_runlog_find(log, "eval.images_left_out").n == 0 &&
        kd_runlog_find(log, "eval.images").n == 0);
  kd_runlog_free(log);

  /* A step, a checkpoint, then a resumed session evaluates again: the
   * same images are not named a second time. */
  KdStepStats st;
  CHECK_MSG(kd_session_step(s, &st, &err) == 0 && kd_session_checkpoint(s, &err) == 0, "%s", err.msg);
  kd_session_free(s);
  KdSessionOpts ro = {.resume_dir = run};
  s = kd_session_open(cfg, &ro, &err);
  CHECK_MSG(s != NULL, "resume: %s", err.msg);
  KdEvalResult r;
  CHECK_MSG(s && kd_session_evaluate(s, &r, &err) == 0, "%s", err.msg);
  kd_eval_result_free(&r);
  CHECK_MSG(count_left_out_events(run, &last) == 1, "resumed: want still one images_left_out event");

  cJSON_Delete(last);
  kd_session_free(s);
  kd_eval_result_free(&intact);
  kd_model_free(m);
  kd_dataset_free(val);
  kd_config_free(cfg);
  fixture_rmrf(tmp);
  return check_status("eval_session");
}
