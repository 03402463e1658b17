/* Resume after a kill, in process, with exact checks:
 * 1. A run with live changes at step 5 (a step boundary before its step-10
 *    checkpoint) is "killed" after step 20 (its last checkpoint removed, a
 *    torn line left in the logs, commands left in control.jsonl that it
 *    never read). --resume must restore the live values from the events,
 *    replay the loss curve of steps 11..20 exactly (same data order, same
 *    optimizer and BN state), apply the pending `set` once (and not a
 *    pending `pause`), and leave contiguous logs. A second resume applies
 *    nothing twice.
 * 2. A non-finite loss pauses the run with an event naming the part and
 *    step, keeps the last good weights and BN statistics, and a set +
 *    resume continue it to the end.
 * 3. The test hook debug.inject_nan_step (a NaN loss, then a NaN
 *    gradient): the run pauses with the message, its weights and BN
 *    statistics are bitwise the previous step's (and its checkpoint's),
 *    and a resume finishes it. */
#include <math.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/safetensors.h"

#include "check.h"
#include "core/fileio.h"
#include "run_fixture.h"
#include "train/control.h"
#include "train/run.h"

#define STEPS 20

typedef struct {
  KdRun *run;
  double loss[STEPS + 1], lr[STEPS + 1];
} Curve;

static void at_step5(void *user, KdSession *s, const KdStepStats *st) {
  Curve *c = user;
  (void)s;
  if (st->step <= STEPS) c->loss[st->step] = st->loss, c->lr[st->step] = st->lr;
  if (st->step == 5 && !st->skipped) {
    CHECK(kd_run_set(c->run, "loss.box_weight", "2.5", "ui", NULL) == 0);
    CHECK(kd_run_set(c->run, "train.lr", "0.003", "ui", NULL) == 0);
  }
}

static int run_to_end(KdConfig *cfg, const char *out, const char *resume, Curve *c) {
  KdError err;
  KdRunOpts ro = {.session = {.out_dir = out, .resume_dir = resume}, .after_step = at_step5, .after_step_user = c};
  KdRun *run = kd_run_new(cfg, &ro, &err);
  CHECK_MSG(run != NULL, "%s", err.msg);
  if (!run) return -1;
  c->run = run;
  if (resume) {
    /* Restored from the events before the thread starts. */
    CHECK_NEAR(kd_config_num(cfg, "loss.box_weight"), 2.5, 0);
    CHECK_NEAR(kd_config_num(cfg, "train.lr"), 0.003, 0);
  }
  CHECK(kd_run_start(run, &err) == 0);
  int rc = kd_run_wait(run);
  KdRunStatus st;
  kd_run_status(run, &st);
  CHECK_MSG(st.state == KD_RUN_FINISHED, "state %s: %s", kd_run_state_name(st.state), st.message);
  CHECK(st.step == STEPS && st.eval_step == STEPS);
  kd_run_free(run);
  return rc;
}

static int count_events(const char *run, const char *type, const char *key) {
  int n, k = 0;
  cJSON **ev = fixture_jsonl(run, "events.jsonl", &n);
  for (int i = 0; i < n; i++) {
    CHECK(ev[i] != NULL);
    if (fixture_is_event(ev[i], type) && (!key || !strcmp(fixture_str(ev[i], "key") ? fixture_str(ev[i], "key") : "", key))) k++;
  }
  fixture_jsonl_free(ev, n);
  return k;
}

static void append(const char *path, const char *text) {
  FILE *f = fopen(path, "ab");
  CHECK(f != NULL);
  if (f) fputs(text, f), fclose(f);
}

static void resume_test(const char *tmp, const char *data) {
  char out[4200], path[4400];
  snprintf(out, sizeof out, "%s/a", tmp);
  Curve a = {0}, b = {0};
  KdConfig *cfg = fixture_config(data, STEPS);
  kd_config_set(cfg, "train.checkpoint_every", "10", NULL);
  CHECK(run_to_end(cfg, out, NULL, &a) == 0);
  kd_config_free(cfg);
  CHECK(count_events(out, "set", "loss.box_weight") == 1);

  /* The kill: no checkpoint after step 10, torn last lines, and commands
   * the dead process never read. */
  snprintf(path, sizeof path, "%s/checkpoints/step_%08d.safetensors", out, STEPS);
  CHECK(unlink(path) == 0);
  snprintf(path, sizeof path, "%s/metrics.jsonl", out);
  append(path, "{\"step\":21,\"time\":\"x\",\"loss\":0.");
  snprintf(path, sizeof path, "%s/events.jsonl", out);
  append(path, "{\"step\":20,\"time\":\"x\",\"event\":\"se");
  /* Half-written files the killed writer left (a dead pid's), and one of a
   * writer still alive (our parent's pid), which must stay. */
  pid_t dead = fork();
  if (dead == 0) _exit(0);
  waitpid(dead, NULL, 0);
  char stale[3][4400], live[4400];
  snprintf(stale[0], sizeof stale[0], "%s/checkpoints/step_%08d.safetensors.tmp.%d", out, STEPS, (int)dead);
  snprintf(stale[1], sizeof stale[1], "%s/snapshots/index.jsonl.tmp.%d", out, (int)dead);
  snprintf(stale[2], sizeof stale[2], "%s/config.json.tmp.%d", out, (int)dead);
  snprintf(live, sizeof live, "%s/checkpoints/x.safetensors.tmp.%d", out, (int)getppid());
  snprintf(path, sizeof path, "%s/snapshots", out);
  CHECK(kd_mkdir_p(path, NULL) == 0);
  for (int i = 0; i < 3; i++) append(stale[i], "half");
  append(live, "half");
  KdControlCmd cmds[2] = {{.kind = KD_CTL_SET, .key = "fitnet.weight", .value = "7"}, {.kind = KD_CTL_PAUSE}};
  KdError err;
  CHECK(kd_control_append(out, cmds, 2, &err) == 0);
  CHECK(cmds[0].seq == 1 && cmds[1].seq == 2);

  /* --resume: the config comes from the run's config.json. */
  cfg = kd_config_new();
  kd_settings_register_all(cfg);
  snprintf(path, sizeof path, "%s/config.json", out);
  CHECK(kd_config_load_file(cfg, path, &err) == 0);
  CHECK_NEAR(kd_config_num(cfg, "loss.box_weight"), 1.0, 0); /* the initial value */
  CHECK(run_to_end(cfg, NULL, out, &b) == 0);
  CHECK_NEAR(kd_config_num(cfg, "fitnet.weight"), 7, 0);
  kd_config_free(cfg);
  for (int i = 0; i < 3; i++) CHECK_MSG(!kd_path_exists(stale[i]), "%s survived the resume", stale[i]);
  CHECK_MSG(kd_path_exists(live), "a live writer's temp file was removed");
  unlink(live);
  for (int s = 11; s <= STEPS; s++) {
    CHECK_MSG(fabs(a.loss[s] - b.loss[s]) <= 1e-6 * fabs(a.loss[s]), "step %d: loss %.9g then %.9g after resume", s, a.loss[s], b.loss[s]);
    CHECK_NEAR(a.lr[s], b.lr[s], 1e-9);
  }
  printf("test_run_resume: step 20 loss %.7f uninterrupted, %.7f resumed\n", a.loss[STEPS], b.loss[STEPS]);

  /* Logs: every step once, in order; the pending set applied once at the
   * checkpoint's step; the pending pause ignored. */
  int n;
  cJSON **mt = fixture_jsonl(out, "metrics.jsonl", &n);
  int expect = 1;
  for (int i = 0; i < n; i++) {
    CHECK(mt[i] != NULL);
    if (mt[i] && cJSON_GetObjectItemCaseSensitive(mt[i], "loss")) CHECK((int)fixture_num(mt[i], "step") == expect++);
  }
  CHECK(expect - 1 == STEPS);
  fixture_jsonl_free(mt, n);
  cJSON **ev = fixture_jsonl(out, "events.jsonl", &n);
  int replayed = 0, ignored = 0;
  for (int i = 0; i < n; i++) {
    if (fixture_is_event(ev[i], "set") && !strcmp(fixture_str(ev[i], "key"), "fitnet.weight")) {
      replayed++;
      CHECK((int)fixture_num(ev[i], "step") == 10 && !strcmp(fixture_str(ev[i], "source"), "cli"));
      CHECK((int)fixture_num(ev[i], "seq") == 1 && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ev[i], "replayed")));
    }
    if (fixture_is_event(ev[i], "control_ignored")) ignored += (int)fixture_num(ev[i], "seq") == 2;
  }
  fixture_jsonl_free(ev, n);
  CHECK(replayed == 1 && ignored == 1);
  CHECK(count_events(out, "resume", NULL) == 1);
  CHECK(count_events(out, "finish", NULL) == 1);
  CHECK(count_events(out, "live_restored", NULL) == 1);
  CHECK(count_events(out, "set", "loss.box_weight") == 1);

  /* Resuming the finished run again applies nothing twice. */
  cfg = kd_config_new();
  kd_settings_register_all(cfg);
  kd_config_load_file(cfg, path, &err);
  Curve c = {0};
  CHECK(run_to_end(cfg, NULL, out, &c) == 0);
  kd_config_free(cfg);
  CHECK(count_events(out, "set", "fitnet.weight") == 1);
  CHECK(count_events(out, "control_ignored", NULL) == 1);
}

/* ---- non-finite ---- */

/* Starts a run in out and waits (30 s at most) until it pauses or ends. */
static KdRun *start_until_paused(KdConfig *cfg, const char *out, KdRunAfterStep hook, void *user, KdRunStatus *st) {
  KdError err;
  KdRunOpts ro = {.session = {.out_dir = out}, .after_step = hook, .after_step_user = user};
  KdRun *run = kd_run_new(cfg, &ro, &err);
  CHECK_MSG(run != NULL, "%s", err.msg);
  if (!run) return NULL;
  CHECK(kd_run_start(run, &err) == 0);
  for (int i = 0; i < 3000; i++) {
    kd_run_status(run, st);
    if (st->state == KD_RUN_PAUSED || st->state >= KD_RUN_STOPPED) break;
    fixture_sleep_ms(10);
  }
  return run;
}

typedef struct {
  KdTensor *w;
  float saved;
  double sum_before, buf_before, sum_after, buf_after;
  int skipped_at;
} Poison;

static double checksum(float *v, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += v[i] * (double)(i % 7 + 1);
  return s;
}

static void poison(void *user, KdSession *s, const KdStepStats *st) {
  Poison *p = user;
  KdParams *ps = kd_model_params(kd_session_student(s));
  size_t n, nb;
  float *v = kd_params_values(ps, &n), *b = kd_params_buffers(ps, &nb);
  if (st->step == 3 && !st->skipped && !p->w) {
    p->sum_before = checksum(v, n);
    p->buf_before = checksum(b, nb);
    p->w = kd_params_find(ps, "backbone.body.conv1.weight");
    p->saved = p->w->data[0];
    p->w->data[0] = NAN; /* the next forward goes non-finite */
  } else if (st->skipped && p->w && !p->skipped_at) {
    p->skipped_at = st->step;
    p->w->data[0] = p->saved;
    p->sum_after = checksum(v, n);
    p->buf_after = checksum(b, nb);
  }
}

static void nonfinite_test(const char *tmp, const char *data) {
  char out[4200];
  snprintf(out, sizeof out, "%s/nan", tmp);
  KdConfig *cfg = fixture_config(data, 12);
  Poison p = {0};
  KdError err;
  KdRunStatus st;
  KdRun *run = start_until_paused(cfg, out, poison, &p, &st);
  if (!run) return;
  CHECK_MSG(st.state == KD_RUN_PAUSED, "state %s", kd_run_state_name(st.state));
  CHECK(st.step == 3 && st.last.skipped && p.skipped_at == 3);
  CHECK_MSG(strstr(st.message, "non-finite") && strstr(st.message, st.last.bad_part) && strstr(st.message, "step 4"), "%s", st.message);
  CHECK(p.sum_before == p.sum_after); /* no update from the bad step */
  CHECK_MSG(p.buf_before == p.buf_after && isfinite(p.buf_after), "BN statistics %.9g then %.9g", p.buf_before, p.buf_after);
  /* Paused means paused. */
  fixture_sleep_ms(150);
  kd_run_status(run, &st);
  CHECK(st.step == 3 && st.state == KD_RUN_PAUSED);
  CHECK(kd_run_set(run, "loss.box_weight", "1.5", "ui", &err) == 0);
  CHECK(kd_run_resume(run, "ui", &err) == 0);
  CHECK(kd_run_wait(run) == 0);
  kd_run_status(run, &st);
  CHECK_MSG(st.state == KD_RUN_FINISHED && st.step == 12, "state %s step %d", kd_run_state_name(st.state), st.step);
  kd_run_free(run);
  kd_config_free(cfg);

  int n, nonfinite = 0, pauses = 0;
  cJSON **ev = fixture_jsonl(out, "events.jsonl", &n);
  for (int i = 0; i < n; i++) {
    if (fixture_is_event(ev[i], "nonfinite")) {
      nonfinite++;
      /* ReLU maps NaN to 0, so here the loss stays finite and the gradient is the bad part. */
      CHECK((int)fixture_num(ev[i], "step") == 3 && fixture_str(ev[i], "part") && !strcmp(fixture_str(ev[i], "part"), "gradient"));
    }
    if (fixture_is_event(ev[i], "pause")) {
      pauses++;
      CHECK(!strcmp(fixture_str(ev[i], "reason"), "nonfinite") && (int)fixture_num(ev[i], "step") == 3);
    }
  }
  fixture_jsonl_free(ev, n);
  CHECK(nonfinite == 1 && pauses == 1);
  CHECK(count_events(out, "set", "loss.box_weight") == 1 && count_events(out, "resume", NULL) == 1);
  cJSON **mt = fixture_jsonl(out, "metrics.jsonl", &n);
  int expect = 1;
  for (int i = 0; i < n; i++)
    if (mt[i] && cJSON_GetObjectItemCaseSensitive(mt[i], "loss")) CHECK((int)fixture_num(mt[i], "step") == expect++);
  CHECK(expect - 1 == 12);
  fixture_jsonl_free(mt, n);
}

/* ---- debug.inject_nan_step ---- */

typedef struct {
  KdParams *ps;
  float *vals, *bufs; /* copies after step 3 */
  size_t n, nb;
  int compared, same;
} Keep;

static void keep_step3(void *user, KdSession *s, const KdStepStats *st) {
  Keep *k = user;
  k->ps = kd_model_params(kd_session_student(s));
  float *v = kd_params_values(k->ps, &k->n), *b = kd_params_buffers(k->ps, &k->nb);
  if (st->step == 3 && !st->skipped && !k->vals) {
    k->vals = malloc(k->n * sizeof *v), k->bufs = malloc(k->nb * sizeof *b);
    memcpy(k->vals, v, k->n * sizeof *v), memcpy(k->bufs, b, k->nb * sizeof *b);
  } else if (st->skipped && k->vals && !k->compared) {
    k->compared = 1;
    k->same = !memcmp(k->vals, v, k->n * sizeof *v) && !memcmp(k->bufs, b, k->nb * sizeof *b);
  }
}

static void inject_test(const char *tmp, const char *data, const char *site) {
  char out[4200], path[4400];
  snprintf(out, sizeof out, "%s/inject_%s", tmp, site);
  KdConfig *cfg = fixture_config(data, 6);
  KdError err;
  CHECK(kd_config_set(cfg, "debug.inject_nan_step", "4", &err) == 0);
  CHECK(kd_config_set(cfg, "debug.inject_nan_in", site, &err) == 0);
  CHECK(kd_config_set(cfg, "train.checkpoint_every", "3", &err) == 0);
  Keep k = {0};
  KdRunStatus st;
  KdRun *run = start_until_paused(cfg, out, keep_step3, &k, &st);
  if (!run) return;
  const char *part = !strcmp(site, "loss") ? "det.cls" : "gradient";
  CHECK_MSG(st.state == KD_RUN_PAUSED && st.step == 3 && !strcmp(st.last.bad_part, part), "%s: state %s step %d part %s",
            site, kd_run_state_name(st.state), st.step, st.last.bad_part);
  CHECK_MSG(strstr(st.message, "non-finite") && strstr(st.message, part) && strstr(st.message, "step 4"), "%s", st.message);
  CHECK_MSG(k.compared && k.same, "%s: weights or BN statistics changed by the NaN step", site);
  char message[sizeof st.message];
  snprintf(message, sizeof message, "%s", st.message);
  /* The weights kept are the step-3 checkpoint's. */
  snprintf(path, sizeof path, "%s/checkpoints/step_%08d.safetensors", out, 3);
  KdSafetensors *f = kd_safetensors_open(path, &err);
  CHECK_MSG(f != NULL, "%s", err.msg);
  int differ = 0;
  for (int i = 0; f && i < kd_params_count(k.ps); i++) {
    KdTensor *t = kd_params_at(k.ps, i);
    float *v = malloc(t->numel * sizeof *v);
    CHECK(kd_safetensors_read_f32(f, t->name, v, t->numel, &err) == 0);
    differ += memcmp(v, t->data, t->numel * sizeof *v) != 0;
    free(v);
  }
  kd_safetensors_close(f);
  CHECK_MSG(differ == 0, "%s: %d tensors differ from the step-3 checkpoint", site, differ);
  CHECK(kd_run_resume(run, "ui", &err) == 0);
  CHECK(kd_run_wait(run) == 0);
  kd_run_status(run, &st);
  CHECK_MSG(st.state == KD_RUN_FINISHED && st.step == 6, "%s: state %s step %d", site, kd_run_state_name(st.state), st.step);
  kd_run_free(run);
  kd_config_free(cfg);
  CHECK(count_events(out, "nonfinite", NULL) == 1 && count_events(out, "pause", NULL) == 1);
  CHECK(count_events(out, "resume", NULL) == 1 && count_events(out, "finish", NULL) == 1);
  printf("test_run_resume: NaN %s at step 4: paused (\"%s\"), weights kept, resumed to step 6\n", site, message);
  free(k.vals), free(k.bufs);
}

int main(void) {
  if (!fixture_have_source()) {
    printf("test_run_resume: skipped (dataset-fashion-mnist is not installed)\n");
    return 77;
  }
  char tmp[4096], data[4200];
  CHECK(fixture_tmpdir(tmp, sizeof tmp, "resume") == 0);
  if (fixture_data(tmp, data, sizeof data)) return 1;
  resume_test(tmp, data);
  nonfinite_test(tmp, data);
  inject_test(tmp, data, "loss");
  inject_test(tmp, data, "gradient");
  if (!check_failures) fixture_rmrf(tmp);
  else fprintf(stderr, "test_run_resume: kept %s for inspection\n", tmp);
  return check_status("test_run_resume");
}
