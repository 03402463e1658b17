/* Global knowledge through the real trainer, killed and resumed: the
 * fixture's fashion-det set (64 images, batch 2: 32 steps an epoch), its
 * tiny RetinaNet teacher and student, method gk with the projection term
 * on, 80 steps (PGM at steps 0, 32 and 64), checkpoints every 10.
 *
 * Run B goes through `kdscope distill` in a child process that is killed
 * with SIGKILL after step 45 (past the epoch-1 prototypes and the step-40
 * checkpoint); `--resume` (in process) takes it to the end. Run A, in
 * process, is never interrupted. Checked: every loss part of steps 41..80
 * of B equals A's bit for bit; every checkpoint from 40 on (student
 * weights, adapters and the prototypes distill.gk.*) is bitwise A's; the
 * prototypes changed between epochs and hold real rows; each run logged
 * one `pgm` event per epoch (0, 32, 64), with its cost, and the parts
 * gk.feat_fg, gk.feat_bg, gk.soft and gk.r2i every step, finite, summing
 * to the loss with the detection parts. Run C keeps one image per class
 * (gk.max_images 1): no class has a candidate, each generation logs
 * gk_no_prototypes per class with its three levels, no prototypes are
 * stored and every part stays finite. */
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../train/run_fixture.h"
#include "check.h"
#include "model/safetensors.h"
#include "train/run.h"

#define STEPS 80
#define KILL_AFTER 45
#define NPART 8

static const char *const part_names[4] = {"gk.feat_fg", "gk.feat_bg", "gk.soft", "gk.r2i"};

typedef struct {
  double v[STEPS + 1][NPART], loss[STEPS + 1];
  double gap[STEPS + 1];
  int seen[STEPS + 1];
} Trace;

static void hook(void *user, KdSession *s, const KdStepStats *st) {
  (void)s;
  Trace *t = user;
  if (st->step < 1 || st->step > STEPS) return;
  double sum = 0;
  for (int j = 0; j < 4; j++) t->v[st->step][j] = NAN;
  for (int i = 0; i < st->nparts; i++) {
    for (int j = 0; j < 4; j++)
      if (!strcmp(st->parts[i].name, part_names[j])) t->v[st->step][j] = st->parts[i].value;
    sum += st->parts[i].value;
  }
  t->loss[st->step] = st->loss;
  t->gap[st->step] = fabs(sum - st->loss) / fmax(1e-12, fabs(st->loss));
  t->seen[st->step] = 1;
}

static int run_in_process(KdConfig *cfg, const char *out, const char *resume, Trace *t) {
  KdError err = {0};
  KdRunOpts ro = {.session = {.out_dir = out, .resume_dir = resume, .distill = 1}, .after_step = hook, .after_step_user = t};
  KdRun *r = kd_run_new(cfg, &ro, &err);
  KdRunStatus st = {0};
  if (r && kd_run_start(r, &err) == 0 && kd_run_wait(r) == 0) kd_run_status(r, &st);
  int ok = st.state == KD_RUN_FINISHED && st.step == STEPS;
  CHECK_MSG(ok, "run %s: %s (state %s, step %d)", out ? out : resume, err.msg[0] ? err.msg : st.message,
            kd_run_state_name(st.state), st.step);
  kd_run_free(r);
  return ok ? 0 : -1;
}

/* Tensors of two checkpoint files equal bit for bit (names, shapes, bytes). */
static int same_checkpoint(const char *a, const char *b, int *gk_tensors) {
  KdError err;
  KdSafetensors *x = kd_safetensors_open(a, &err), *y = kd_safetensors_open(b, &err);
  int same = x && y && kd_safetensors_count(x) == kd_safetensors_count(y);
  *gk_tensors = 0;
  for (int i = 0; same && i < kd_safetensors_count(x); i++) {
    const char *name = kd_safetensors_name(x, i);
    size_t n = kd_safetensors_numel(x, i);
    float *u = malloc(sizeof(float) * (n ? n : 1)), *v = malloc(sizeof(float) * (n ? n : 1));
    same = u && v && kd_safetensors_find(y, name) >= 0 && kd_safetensors_numel(y, kd_safetensors_find(y, name)) == n &&
           !kd_safetensors_read_f32(x, name, u, n, &err) && !kd_safetensors_read_f32(y, name, v, n, &err) &&
           !memcmp(u, v, sizeof(float) * n);
    if (!same) fprintf(stderr, "checkpoints %s / %s differ at %s\n", a, b, name);
    *gk_tensors += !strncmp(name, "distill.gk.", 11);
    free(u), free(v);
  }
  kd_safetensors_close(x), kd_safetensors_close(y);
  return same;
}

/* The gk state of a checkpoint: the generation epoch, prototypes counted. */
static void proto_state(const char *path, float *epoch, int *count, double *sum) {
  KdError err;
  KdSafetensors *x = kd_safetensors_open(path, &err);
  *epoch = NAN, *count = 0, *sum = 0;
  for (int i = 0; x && i < kd_safetensors_count(x); i++) {
    const char *name = kd_safetensors_name(x, i);
    if (strncmp(name, "distill.gk.", 11)) continue;
    size_t n = kd_safetensors_numel(x, i);
    float *u = malloc(sizeof(float) * (n ? n : 1));
    if (u && !kd_safetensors_read_f32(x, name, u, n, &err)) {
      for (size_t k = 0; k < n; k++) {
        if (!strncmp(name, "distill.gk.count.", 17)) *count += (int)u[k];
        if (!strncmp(name, "distill.gk.proto_t.", 19)) *sum += fabs(u[k]);
      }
      if (!strcmp(name, "distill.gk.epoch")) *epoch = u[0];
    }
    free(u);
  }
  kd_safetensors_close(x);
}

static void check_pgm_events(const char *run) {
  int n, steps[8], k = 0;
  cJSON **ev = fixture_jsonl(run, "events.jsonl", &n);
  for (int i = 0; i < n; i++) {
    if (!fixture_is_event(ev[i], "pgm")) continue;
    if (k < 8) steps[k] = (int)fixture_num(ev[i], "step");
    k++;
    CHECK_MSG(fixture_num(ev[i], "seconds") >= 0 && fixture_num(ev[i], "instances") > 0 && fixture_num(ev[i], "prototypes") > 0,
              "%s: pgm event without cost or prototypes", run);
  }
  CHECK_MSG(k == 3 && steps[0] == 0 && steps[1] == 32 && steps[2] == 64, "%s: %d pgm events", run, k);
  fixture_jsonl_free(ev, n);
}

int main(int argc, char **argv) {
  if (!fixture_have_source()) {
    printf("test_gk_run: skipped (dataset-fashion-mnist is not installed)\n");
    return 77;
  }
  if (argc < 2) return fprintf(stderr, "usage: test_gk_run KDSCOPE\n"), 1;
  char tmp[4096], data[4200], teacher[4300], ckpt[4400], cfgpath[4400], a[4400], b[4400], log[4400];
  CHECK(fixture_tmpdir(tmp, sizeof tmp, "gkrun") == 0);
  CHECK(fixture_data(tmp, data, sizeof data) == 0 && fixture_teacher(tmp, teacher, sizeof teacher, ckpt, sizeof ckpt) == 0);
  KdConfig *cfg = fixture_config(data, STEPS);
  const char *kv[][2] = {{"teacher.config", teacher}, {"teacher.checkpoint", ckpt}, {"distill.methods", "gk"},
                         {"gk.use_r2i", "true"}, {"gk.finest_scale", "11"}, {"gk.min_size", "4"},
                         {"gk.max_images", "16"}, {"train.checkpoint_every", "10"}};
  KdError err;
  for (size_t i = 0; cfg && i < sizeof kv / sizeof kv[0]; i++)
    CHECK_MSG(kd_config_set(cfg, kv[i][0], kv[i][1], &err) == 0, "%s: %s", kv[i][0], err.msg);
  snprintf(cfgpath, sizeof cfgpath, "%s/gk.json", tmp);
  CHECK(cfg && kd_config_save(cfg, cfgpath, &err) == 0);
  snprintf(a, sizeof a, "%s/a", tmp);
  snprintf(b, sizeof b, "%s/b", tmp);
  snprintf(log, sizeof log, "%s/b.log", tmp);

  /* B: the CLI, killed. */
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1), dup2(fd, 2);
    execl(argv[1], argv[1], "distill", "--config", cfgpath, "--out", b, "--quiet", (char *)NULL);
    _exit(127);
  }
  int killed = 0, st = 0, gone = 0;
  for (int i = 0; i < 120000 && !killed && !gone; i++) {
    if (fixture_last_step(b) >= KILL_AFTER) kill(pid, SIGKILL), killed = 1;
    else if (waitpid(pid, &st, WNOHANG) == pid) gone = 1;
    else fixture_sleep_ms(2);
  }
  if (!gone) waitpid(pid, &st, 0);
  CHECK_MSG(killed && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the CLI run was not killed mid-way; log in %s", log);
  const int at = fixture_last_step(b);
  CHECK_MSG(at >= KILL_AFTER && at < STEPS, "killed after step %d", at);

  /* A: uninterrupted, in process. */
  static Trace ta, tb;
  CHECK(run_in_process(cfg, a, NULL, &ta) == 0);
  kd_config_free(cfg);

  /* B resumed: its own config.json, in process. */
  cfg = kd_config_new();
  kd_settings_register_all(cfg);
  char path[4600];
  snprintf(path, sizeof path, "%s/config.json", b);
  CHECK(kd_config_load_file(cfg, path, &err) == 0);
  CHECK(run_in_process(cfg, NULL, b, &tb) == 0);
  kd_config_free(cfg);

  int last_ck = (at / 10) * 10;
  for (int s = last_ck + 1; s <= STEPS; s++) {
    CHECK_MSG(tb.seen[s], "step %d not run after the resume", s);
    CHECK_MSG(ta.loss[s] == tb.loss[s], "step %d: loss %.17g uninterrupted, %.17g resumed", s, ta.loss[s], tb.loss[s]);
    for (int j = 0; j < 4; j++)
      CHECK_MSG(ta.v[s][j] == tb.v[s][j], "step %d: %s %.17g uninterrupted, %.17g resumed", s, part_names[j], ta.v[s][j],
                tb.v[s][j]);
  }
  for (int s = 1; s <= STEPS; s++) {
    for (int j = 0; j < 4; j++) CHECK_MSG(isfinite(ta.v[s][j]) && (j == 0 || ta.v[s][j] >= 0), "step %d: %s %g", s, part_names[j], ta.v[s][j]);
    CHECK_MSG(ta.gap[s] < 1e-5, "step %d: the parts miss the loss by %g", s, ta.gap[s]);
  }
  CHECK_MSG(ta.v[STEPS][2] > 0 && ta.v[STEPS][3] > 0, "soft %g, r2i %g at the end", ta.v[STEPS][2], ta.v[STEPS][3]);
  int gk = 0;
  for (int s = last_ck; s <= STEPS; s += 10) {
    char pa[4700], pb[4700];
    snprintf(pa, sizeof pa, "%s/checkpoints/step_%08d.safetensors", a, s);
    snprintf(pb, sizeof pb, "%s/checkpoints/step_%08d.safetensors", b, s);
    CHECK_MSG(same_checkpoint(pa, pb, &gk), "checkpoint of step %d differs", s);
    CHECK(gk > 0);
  }
  float e30, e40, e80;
  int n30, n40, n80;
  double s30, s40, s80;
  char p[4700];
  snprintf(p, sizeof p, "%s/checkpoints/step_%08d.safetensors", a, 30);
  proto_state(p, &e30, &n30, &s30);
  snprintf(p, sizeof p, "%s/checkpoints/step_%08d.safetensors", a, 40);
  proto_state(p, &e40, &n40, &s40);
  snprintf(p, sizeof p, "%s/checkpoints/step_%08d.safetensors", a, 80);
  proto_state(p, &e80, &n80, &s80);
  printf("test_gk_run: killed after step %d; prototypes: epoch %g: %d (|P_t| %.4g), epoch %g: %d (%.4g), epoch %g: %d (%.4g)\n",
         at, e30, n30, s30, e40, n40, s40, e80, n80, s80);
  CHECK(e30 == 0 && e40 == 1 && e80 == 2);
  CHECK(n30 > 0 && n40 > 0 && n80 > 0 && s30 > 0);
  check_pgm_events(a);
  check_pgm_events(b);

  /* One image per class: every class has too few instances for a
   * candidate: an event per class naming the levels, no prototypes (w = 1),
   * and the run goes on with finite losses. */
  static Trace tc;
  char c3[4400];
  snprintf(c3, sizeof c3, "%s/c", tmp);
  cfg = kd_config_new();
  kd_settings_register_all(cfg);
  CHECK(kd_config_load_file(cfg, cfgpath, &err) == 0);
  CHECK(kd_config_set(cfg, "gk.max_images", "1", &err) == 0 && kd_config_set(cfg, "train.steps", "80", &err) == 0);
  CHECK(run_in_process(cfg, c3, NULL, &tc) == 0);
  kd_config_free(cfg);
  int n, none = 0, levels_ok = 1;
  cJSON **ev = fixture_jsonl(c3, "events.jsonl", &n);
  for (int i = 0; i < n; i++) {
    if (!fixture_is_event(ev[i], "gk_no_prototypes")) continue;
    none++;
    const cJSON *lv = cJSON_GetObjectItemCaseSensitive(ev[i], "levels");
    levels_ok &= cJSON_IsArray(lv) && cJSON_GetArraySize(lv) == 3 && fixture_str(ev[i], "name") != NULL;
  }
  fixture_jsonl_free(ev, n);
  snprintf(p, sizeof p, "%s/checkpoints/step_%08d.safetensors", c3, STEPS);
  proto_state(p, &e80, &n80, &s80);
  printf("test_gk_run: one image per class: %d gk_no_prototypes events, %d prototypes\n", none, n80);
  CHECK_MSG(none >= 10 && levels_ok, "%d gk_no_prototypes events (levels listed: %d)", none, levels_ok);
  CHECK(n80 == 0);
  for (int s = 1; s <= STEPS; s++)
    for (int j = 0; j < 4; j++) CHECK_MSG(isfinite(tc.v[s][j]), "one image per class: step %d %s %g", s, part_names[j], tc.v[s][j]);
  int rc = check_status("test_gk_run");
  if (!rc) fixture_rmrf(tmp);
  else fprintf(stderr, "test_gk_run: kept %s\n", tmp);
  return rc;
}
