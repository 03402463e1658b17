/* `kdscope eval` on a set with a corrupt and a missing val image, through
 * the real binary, loader and files: stderr names both images and why,
 * the JSON counts them, and the metrics equal those of the intact set's
 * detections with the two images' detections removed (their ground truth
 * kept: a missed image lowers recall, it does not vanish); --strict makes
 * it an error; `kdscope train` on the same split counts them too. Config
 * errors are reported before the default data set is built: nothing
 * appears in an empty XDG_DATA_HOME.
 * Usage: test_eval_cli KDSCOPE */
#include <cJSON.h>
#include <dirent.h>
#include <sys/wait.h>

#include "check.h"
#include "eval_fixture.h"

static const char *kd;
static char tmp[4096], out[1 << 16], err_text[1 << 16];

static void slurp(const char *path, char *buf, size_t len) {
  FILE *f = fopen(path, "r");
  size_t n = f ? fread(buf, 1, len - 1, f) : 0;
  buf[n] = 0;
  if (f) fclose(f);
}

/* Runs kdscope with args (NULL-terminated): stdout into out, stderr into
 * err_text. Exit status, or 100 + signal. */
static int run(const char *const *args) {
  char o[4200], e[4200];
  snprintf(o, sizeof o, "%s/stdout.txt", tmp);
  snprintf(e, sizeof e, "%s/stderr.txt", tmp);
  fflush(NULL); /* or the child's freopen writes our buffered output again */
  pid_t pid = fork();
  if (pid == 0) {
    if (!freopen(o, "w", stdout) || !freopen(e, "w", stderr)) _exit(99);
    const char *argv[40] = {kd};
    int n = 1;
    for (; args[n - 1] && n < 39; n++) argv[n] = args[n - 1];
    argv[n] = NULL;
    execv(kd, (char *const *)argv);
    _exit(98);
  }
  int st = 0;
  waitpid(pid, &st, 0);
  slurp(o, out, sizeof out);
  slurp(e, err_text, sizeof err_text);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static double jnum(const cJSON *j, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* A COCO results file as KdCocoDet (categories back to indices). */
static KdCocoDet *read_results(const char *path, const KdDataset *ds, int *n) {
  size_t len;
  char *text = kd_read_text(path, &len, (size_t)1 << 28, NULL);
  cJSON *arr = text ? cJSON_Parse(text) : NULL;
  free(text);
  *n = cJSON_GetArraySize(arr);
  KdCocoDet *d = malloc(sizeof *d * (size_t)(*n + 1));
  int k = 0;
  for (const cJSON *it = arr ? arr->child : NULL; d && it; it = it->next) {
    const cJSON *bb = cJSON_GetObjectItemCaseSensitive(it, "bbox");
    d[k] = (KdCocoDet){.image_id = (int64_t)jnum(it, "image_id"),
                       .category = kd_dataset_class_index(ds, (int64_t)jnum(it, "category_id")), .score = jnum(it, "score")};
    for (int c = 0; c < 4; c++) d[k].bbox[c] = cJSON_GetArrayItem(bb, c) ? cJSON_GetArrayItem(bb, c)->valuedouble : NAN;
    k++;
  }
  cJSON_Delete(arr);
  return d;
}

static int dir_is_empty(const char *path) {
  DIR *d = opendir(path);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
  if (d) closedir(d);
  return d && n == 0;
}

static void left_out_case(const char *teacher_cfg, const char *teacher_ck, const char *data) {
  char intact[4300], damaged[4300];
  snprintf(intact, sizeof intact, "%s/intact.json", tmp);
  snprintf(damaged, sizeof damaged, "%s/damaged.json", tmp);
  KdDataset *ds = NULL;
  KdError e;
  CHECK_MSG(kd_dataset_open_dir(data, "val", &ds, &e) == 0, "%s", e.msg);
  if (!ds) return;

  int rc = run(ARGS("eval", "--config", teacher_cfg, "--checkpoint", teacher_ck, "--data", data, "--json", "--dets-out", intact));
  cJSON *ji = rc == 0 ? cJSON_Parse(out) : NULL;
  CHECK_MSG(ji != NULL, "intact eval: exit %d\n%s%s", rc, out, err_text);
  CHECK(jnum(ji, "images") == EVAL_VAL && jnum(ji, "images_evaluated") == EVAL_VAL && jnum(ji, "images_left_out") == 0);
  CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(ji, "left_out")) == 0);
  CHECK_MSG(!strstr(err_text, "could not be used"), "%s", err_text);

  char corrupt[4096], deleted[4096];
  CHECK(eval_damage(ds, corrupt, deleted, sizeof corrupt) == 0);
  rc = run(ARGS("eval", "--config", teacher_cfg, "--checkpoint", teacher_ck, "--data", data, "--json", "--dets-out", damaged));
  cJSON *jd = rc == 0 ? cJSON_Parse(out) : NULL;
  CHECK_MSG(jd != NULL, "damaged eval: exit %d\n%s%s", rc, out, err_text);
  /* stderr names each image, with its reason. */
  char want[4400];
  snprintf(want, sizeof want, "%s: not a JPEG file", corrupt);
  CHECK_MSG(strstr(err_text, want) != NULL, "no '%s' in:\n%s", want, err_text);
  snprintf(want, sizeof want, "%s: cannot open: No such file or directory", deleted);
  CHECK_MSG(strstr(err_text, want) != NULL, "no '%s' in:\n%s", want, err_text);
  CHECK(jnum(jd, "images") == EVAL_VAL && jnum(jd, "images_evaluated") == EVAL_VAL - 2 && jnum(jd, "images_left_out") == 2);
  const cJSON *lo = cJSON_GetObjectItemCaseSensitive(jd, "left_out");
  CHECK(cJSON_GetArraySize(lo) == 2);
  const cJSON *l0 = cJSON_GetArrayItem(lo, 0), *l1 = cJSON_GetArrayItem(lo, 1);
  const char *f0 = fixture_str(l0, "file"), *r0 = fixture_str(l0, "reason"), *f1 = fixture_str(l1, "file"), *r1 = fixture_str(l1, "reason");
  CHECK_MSG(f0 && r0 && !strcmp(f0, corrupt) && strstr(r0, "not a JPEG"), "%s: %s", f0, r0);
  CHECK_MSG(f1 && r1 && !strcmp(f1, deleted) && strstr(r1, "No such file"), "%s: %s", f1, r1);
  CHECK(fixture_num(l0, "image_id") == (double)kd_dataset_image(ds, EVAL_CORRUPT).id);
  CHECK(fixture_num(l1, "image_id") == (double)kd_dataset_image(ds, EVAL_DELETED).id);

  /* The metrics: the intact detections less the two images', over all
   * sixteen images' ground truth. */
  int ni = 0, nd = 0;
  KdCocoDet *di = read_results(intact, ds, &ni), *dd = read_results(damaged, ds, &nd);
  double ref[KD_COCO_NSTATS], vanished[KD_COCO_NSTATS];
  CHECK(eval_reference(ds, EVAL_VAL, di, ni, 1, ref) == 0 && eval_reference(ds, EVAL_VAL, di, ni, 0, vanished) == 0);
  int64_t a = kd_dataset_image(ds, EVAL_CORRUPT).id, b = kd_dataset_image(ds, EVAL_DELETED).id, on_bad = 0;
  for (int i = 0; i < ni; i++) on_bad += di[i].image_id == a || di[i].image_id == b;
  CHECK_MSG(on_bad > 0 && nd == ni - on_bad && jnum(jd, "detections") == nd, "intact %d, on the two %ld, damaged %d", ni, (long)on_bad, nd);
  for (int i = 0; i < KD_COCO_NSTATS; i++) {
    double got = jnum(jd, kd_coco_stat_names[i]);
    CHECK_MSG(fabs(got - ref[i]) <= 1e-6, "%s: eval %.6f, reference %.6f", kd_coco_stat_names[i], got, ref[i]);
  }
  printf("AP: intact %.6f, damaged %.6f, reference (their detections empty) %.6f, images dropped entirely %.6f\n",
         jnum(ji, "AP"), jnum(jd, "AP"), ref[KD_COCO_AP], vanished[KD_COCO_AP]);
  printf("AR100: intact %.6f, damaged %.6f, reference %.6f, images dropped entirely %.6f\n", jnum(ji, "AR100"), jnum(jd, "AR100"),
         ref[KD_COCO_AR100], vanished[KD_COCO_AR100]);
  /* The check can fail: a missed image lowers recall, and losing the
   * images from the evaluation would give other numbers. */
  CHECK(ref[KD_COCO_AR100] < jnum(ji, "AR100") - 1e-3);
  CHECK(fabs(ref[KD_COCO_AR100] - vanished[KD_COCO_AR100]) > 1e-3);
  free(di), free(dd);

  /* Text output says it too; --strict refuses. */
  rc = run(ARGS("eval", "--config", teacher_cfg, "--checkpoint", teacher_ck, "--data", data));
  snprintf(want, sizeof want, "(%d images: %d evaluated, 2 left out;", EVAL_VAL, EVAL_VAL - 2);
  CHECK_MSG(rc == 0 && strstr(out, want), "exit %d:\n%s", rc, out);
  rc = run(ARGS("eval", "--config", teacher_cfg, "--checkpoint", teacher_ck, "--data", data, "--strict", "--json"));
  snprintf(want, sizeof want, "--strict: %s could not be used: not a JPEG file", corrupt);
  CHECK_MSG(rc == 1 && strstr(err_text, want) && !strchr(out, '{'), "exit %d:\n%s%s", rc, out, err_text);

  /* kdscope train evaluates on the same split: its last line counts them,
   * its run log names them once. */
  char train_run[4300], init[4200];
  snprintf(train_run, sizeof train_run, "%s/train-run", tmp);
  snprintf(init, sizeof init, "train.init_checkpoint=%s", teacher_ck);
  rc = run(ARGS("train", "--config", teacher_cfg, "--data", data, "--set", init, "--set", "train.batch=2", "--set", "probe.budget=0",
                "--steps", "1", "--out", train_run, "--quiet"));
  snprintf(want, sizeof want, "(%d val images, 2 left out with no detections (named in events.jsonl))", EVAL_VAL);
  CHECK_MSG(rc == 0 && strstr(out, want), "train: exit %d:\n%s%s", rc, out, err_text);
  int n = 0, events = 0;
  cJSON **ev = fixture_jsonl(train_run, "events.jsonl", &n);
  for (int i = 0; i < n; i++) events += fixture_is_event(ev[i], "images_left_out") && fixture_num(ev[i], "count") == 2;
  fixture_jsonl_free(ev, n);
  CHECK_MSG(events == 1, "train: %d images_left_out events", events);
  cJSON_Delete(ji);
  cJSON_Delete(jd);
  kd_dataset_free(ds);
}

static char xdg[4300], run_dir[4300];

/* A config error: exit 1 naming it, before any data set is built (the
 * empty XDG_DATA_HOME stays empty) or a run directory is made. */
static void expect_config_error(const char *what, const char *const *args, const char *needle) {
  int rc = run(args);
  CHECK_MSG(rc == 1 && strstr(err_text, needle), "%s: exit %d, no '%s' in:\n%s%s", what, rc, needle, out, err_text);
  CHECK_MSG(!strstr(err_text, "building the default data set"), "%s:\n%s", what, err_text);
  CHECK_MSG(dir_is_empty(xdg), "%s: something was created in %s", what, xdg);
  CHECK_MSG(!kd_path_exists(run_dir), "%s: a run directory was created", what);
}

static void config_error_case(const char *tcfg, const char *tck) {
  char src[4300], depth[4300], unknown[4300];
  snprintf(xdg, sizeof xdg, "%s/xdg", tmp);
  snprintf(run_dir, sizeof run_dir, "%s/run", tmp);
  snprintf(src, sizeof src, "%s/no-source", tmp);
  snprintf(depth, sizeof depth, "%s/depth11.json", tmp);
  snprintf(unknown, sizeof unknown, "%s/unknown.json", tmp);
  KdError e;
  const char *dj = "{\"model\": {\"depth\": 11, \"num_classes\": 10}}\n", *uj = "{\"model\": {\"dpeth\": 18}}\n";
  CHECK(kd_mkdir_p(xdg, &e) == 0 && kd_mkdir_p(src, &e) == 0);
  CHECK(kd_write_file(depth, dj, strlen(dj), &e) == 0 && kd_write_file(unknown, uj, strlen(uj), &e) == 0);
  setenv("XDG_DATA_HOME", xdg, 1);
  setenv("KD_FASHION_MNIST_DIR", src, 1); /* a build, if one started, would fail fast */
  expect_config_error("eval, invalid depth", ARGS("eval", "--config", depth, "--checkpoint", tck), "depth: 11");
  expect_config_error("eval, unknown key", ARGS("eval", "--config", unknown, "--checkpoint", tck), "dpeth");
  expect_config_error("eval, bad --set", ARGS("eval", "--config", tcfg, "--checkpoint", tck, "--set", "eval.nms_iou=2"), "eval.nms_iou");
  expect_config_error("distill, invalid depth", ARGS("distill", "--set", "model.depth=11", "--steps", "1", "--out", run_dir), "depth: 11");
  expect_config_error("distill, unknown method", ARGS("distill", "--set", "distill.methods=fitnett", "--steps", "1", "--out", run_dir),
                      "fitnett");
  expect_config_error("train, invalid depth", ARGS("train", "--config", depth, "--steps", "1", "--out", run_dir), "depth: 11");
  expect_config_error("train, unknown key", ARGS("train", "--config", unknown, "--steps", "1", "--out", run_dir), "dpeth");
  unsetenv("XDG_DATA_HOME");
  unsetenv("KD_FASHION_MNIST_DIR");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_eval_cli KDSCOPE\n");
    return 2;
  }
  kd = argv[1];
  if (!fixture_have_source()) {
    printf("SKIP: no Fashion-MNIST source (dataset-fashion-mnist)\n");
    return 77;
  }
  const char *root = getenv("KD_SOURCE_ROOT");
  char teacher_cfg[4096], teacher_ck[4096], data[4300];
  snprintf(teacher_cfg, sizeof teacher_cfg, "%s/assets/configs/teacher.json", root ? root : ".");
  snprintf(teacher_ck, sizeof teacher_ck, "%s/assets/teacher.safetensors", root ? root : ".");
  if (fixture_tmpdir(tmp, sizeof tmp, "evalcli") || eval_fixture_data(tmp, data, sizeof data)) return 1;
  left_out_case(teacher_cfg, teacher_ck, data);
  config_error_case(teacher_cfg, teacher_ck);
  fixture_rmrf(tmp);
  return check_status("eval_cli");
}
