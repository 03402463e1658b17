/* End to end, with real processes: a tiny teacher trained by `kdscope
 * train`, then a headless `kdscope distill` (DeFeat) controlled from
 * other processes: `kdscope set defeat.alpha_bg=0` mid-run (the logged
 * defeat.neck_bg part is exactly 0 from the step after the one the event
 * names, the other DeFeat parts are not),
 * `pause` (no step while paused) and `resume`, typos refused with exit 1
 * and nothing sent; then SIGKILL, a `set` while no process runs, and
 * `--resume` to the end; probe images outside the validation split refused
 * at the start. The logs must be complete and consistent: every
 * step once, in order, last = train.steps; the live change survives the
 * resume; the pending set is applied once at the checkpoint's step.
 * Usage: test_live_cli KDSCOPE */
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "check.h"
#include "run_fixture.h"

#define STEPS 600

static const char *kd;
static char tmp[4096], runs[4300];

/* Runs argv to the end; its stdout+stderr into out. Exit status, or
 * 128 + signal. */
static int run_cmd(char *const argv[], char *out, size_t len) {
  int fd[2];
  if (pipe(fd)) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fd[1], 1);
    dup2(fd[1], 2);
    close(fd[0]);
    execv(argv[0], argv);
    _exit(127);
  }
  close(fd[1]);
  size_t n = 0;
  ssize_t r;
  while ((r = read(fd[0], out + n, len - 1 - n)) > 0 && n + (size_t)r < len - 1) n += (size_t)r;
  if (r > 0) n += (size_t)r;
  out[n] = 0;
  close(fd[0]);
  int st;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

#define KD(...) ((char *const[]){(char *)kd, __VA_ARGS__, NULL})

static void expect(const char *what, char *const argv[], int want, const char *pattern) {
  char out[16384];
  int rc = run_cmd(argv, out, sizeof out);
  CHECK_MSG(rc == want && (!pattern || strstr(out, pattern)), "%s: exit %d (want %d), output:\n%s", what, rc, want, out);
}

static long file_size(const char *path) {
  struct stat st;
  return stat(path, &st) ? -1 : (long)st.st_size;
}

/* Largest step among metrics lines and the steps of checkpoint events. */
static int last_metric_step(void) {
  int n, best = 0;
  cJSON **mt = fixture_jsonl(runs, "metrics.jsonl", &n);
  for (int i = 0; i < n; i++)
    if (mt[i] && cJSON_GetObjectItemCaseSensitive(mt[i], "loss") && (int)fixture_num(mt[i], "step") > best) best = (int)fixture_num(mt[i], "step");
  fixture_jsonl_free(mt, n);
  return best;
}

static int last_checkpoint_event(void) {
  int n, best = 0;
  cJSON **ev = fixture_jsonl(runs, "events.jsonl", &n);
  for (int i = 0; i < n; i++)
    if (fixture_is_event(ev[i], "checkpoint") && (int)fixture_num(ev[i], "step") > best) best = (int)fixture_num(ev[i], "step");
  fixture_jsonl_free(ev, n);
  return best;
}

/* The first event of type (and key) into a copy; NULL if none. */
static cJSON *find_event(const char *type, const char *key, int *count) {
  int n;
  cJSON *hit = NULL;
  *count = 0;
  cJSON **ev = fixture_jsonl(runs, "events.jsonl", &n);
  for (int i = 0; i < n; i++) {
    const char *k = ev[i] ? fixture_str(ev[i], "key") : NULL;
    if (fixture_is_event(ev[i], type) && (!key || (k && !strcmp(k, key)))) {
      if (!(*count)++) hit = cJSON_Duplicate(ev[i], 1);
    }
  }
  fixture_jsonl_free(ev, n);
  return hit;
}

static int write_text(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fputs(text, f);
  return fclose(f);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: test_live_cli KDSCOPE\n");
    return 1;
  }
  kd = argv[1];
  if (!fixture_have_source()) {
    printf("test_live_cli: skipped (dataset-fashion-mnist is not installed)\n");
    return 77;
  }
  char data[4200], cfgpath[4400], tcfg[4400], text[32768];
  CHECK(fixture_tmpdir(tmp, sizeof tmp, "live") == 0);
  if (fixture_data(tmp, data, sizeof data)) return 1;
  const char *model = "\"model\": {\"depth\": 10, \"width\": 8, \"fpn_channels\": 16, \"head_convs\": 1, \"num_classes\": 10}";

  /* 1. A teacher, a few steps. */
  snprintf(tcfg, sizeof tcfg, "%s/teacher.json", tmp);
  snprintf(text, sizeof text,
           "{\"name\": \"teacher\", %s, \"data\": {\"size\": 64, \"dir\": \"%s\"},\n"
           " \"train\": {\"batch\": 2, \"steps\": 6, \"warmup_steps\": 2, \"eval_every\": 0, \"eval_images\": 4, \"threads\": 1}}\n",
           model, data);
  CHECK(write_text(tcfg, text) == 0);
  char tdir[4400];
  snprintf(tdir, sizeof tdir, "%s/teacher", tmp);
  expect("train the teacher", KD("train", "--config", tcfg, "--out", tdir, "--quiet"), 0, "step 6: AP");

  /* 2. A headless distillation in the background. */
  snprintf(cfgpath, sizeof cfgpath, "%s/distill.json", tmp);
  snprintf(text, sizeof text,
           "{\"name\": \"student\", %s, \"data\": {\"size\": 64, \"dir\": \"%s\"},\n"
           " \"teacher\": {\"config\": \"%s\", \"checkpoint\": \"%s/checkpoints/step_00000006.safetensors\"},\n"
           " \"distill\": {\"methods\": \"defeat\"},\n"
           " \"train\": {\"batch\": 2, \"steps\": %d, \"warmup_steps\": 10, \"log_every\": 1, \"eval_every\": 0,\n"
           "           \"checkpoint_every\": 20, \"eval_images\": 4, \"threads\": 1}}\n",
           model, data, tcfg, tdir, STEPS);
  CHECK(write_text(cfgpath, text) == 0);
  /* Probe images outside the validation split, or not indices, stop the start. */
  char bad[4400];
  snprintf(bad, sizeof bad, "%s/bad_probe", tmp);
  expect("probe image out of range", KD("distill", "--config", cfgpath, "--out", bad, "--quiet", "--set", "probe.images=2,5000"),
         1, "probe.images: index 5000 is outside the validation split (");
  expect("probe image not an index", KD("distill", "--config", cfgpath, "--out", bad, "--quiet", "--set", "probe.images=3,x"), 1,
         "probe.images: 'x' is not a validation index");
  expect("probe count too large", KD("distill", "--config", cfgpath, "--out", bad, "--quiet", "--set", "probe.images=17"), 1,
         "probe.images: a count must be 1-16, got 17");
  snprintf(runs, sizeof runs, "%s/run", tmp);
  char log[4400];
  snprintf(log, sizeof log, "%s/distill.log", tmp);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    execv(kd, KD("distill", "--config", cfgpath, "--out", runs));
    _exit(127);
  }
  int ok = 0;
  for (int i = 0; i < 3000 && !ok; i++) {
    fixture_sleep_ms(10);
    ok = last_metric_step() >= 10;
  }
  CHECK_MSG(ok, "the distill run did not reach step 10");

  /* 3. Live change from another process. */
  expect("set", KD("set", runs, "defeat.alpha_bg=0", "--wait"), 0, "defeat.alpha_bg = 0 (was 16)");
  int count;
  cJSON *set = find_event("set", "defeat.alpha_bg", &count);
  CHECK(set && count == 1);
  int S = set ? (int)fixture_num(set, "step") : -1;
  CHECK(set && !strcmp(fixture_str(set, "source"), "cli") && !strcmp(fixture_str(set, "old"), "16"));
  cJSON_Delete(set);

  /* 4. Pause, typos, resume. */
  expect("pause", KD("pause", runs, "--wait"), 0, "pause at step");
  int paused_at = last_metric_step();
  char ctl[4400];
  snprintf(ctl, sizeof ctl, "%s/control.jsonl", runs);
  long ctl_size = file_size(ctl);
  expect("typo", KD("set", runs, "defeat.alpha_gb=1"), 1, "unknown setting 'defeat.alpha_gb' (did you mean 'defeat.alpha_bg'?)");
  expect("not live", KD("set", runs, "train.batch=4"), 1, "train.batch cannot change");
  expect("range", KD("set", runs, "defeat.weight=1", "defeat.alpha_bg=5000"), 1, "defeat.alpha_bg: 5000 is outside its range [0, 1000]");
  expect("bad dir", KD("set", tmp, "defeat.weight=1"), 1, "not a run directory");
  CHECK_MSG(file_size(ctl) == ctl_size, "a refused command reached control.jsonl");
  fixture_sleep_ms(300);
  CHECK_MSG(last_metric_step() == paused_at, "steps went on while paused (%d -> %d)", paused_at, last_metric_step());
  expect("resume", KD("resume", runs, "--wait"), 0, "resume at step");

  /* 5. kill -9 a few steps after a checkpoint that follows the pause (the
   *    events after it are cut back by the resume). */
  int killed_at = 0, ck = 0;
  for (int i = 0; i < 6000; i++) {
    ck = last_checkpoint_event();
    int m = last_metric_step();
    if (ck > paused_at && m >= ck + 3) {
      kill(pid, SIGKILL);
      killed_at = m;
      break;
    }
    fixture_sleep_ms(5);
  }
  int st;
  waitpid(pid, &st, 0);
  CHECK_MSG(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the run ended before the kill (raise STEPS); log in %s", log);
  printf("test_live_cli: set at step %d, paused at %d, killed after step %d (checkpoint %d)\n", S, paused_at, killed_at, ck);

  /* 6. Nobody listens now: pause is refused, a set waits for the resume. */
  expect("pause a dead run", KD("pause", runs), 1, "no process is running");
  expect("set a dead run", KD("set", runs, "loss.box_weight=2"), 0, "applies when it is resumed");
  int ck_before = kd_rundir_latest_checkpoint(runs);

  /* 7. --resume to the end. */
  expect("resume the run", KD("distill", "--resume", runs, "--quiet"), 0, "step 600: AP");

  /* 8. The logs. */
  int n;
  cJSON **mt = fixture_jsonl(runs, "metrics.jsonl", &n);
  int expect_step = 1, zero_ok = 1, nonzero_ok = 1, others_ok = 1;
  for (int i = 0; i < n; i++) {
    CHECK(mt[i] != NULL);
    if (!mt[i] || !cJSON_GetObjectItemCaseSensitive(mt[i], "loss")) continue;
    int s = (int)fixture_num(mt[i], "step");
    CHECK_MSG(s == expect_step, "metrics: step %d where %d was expected", s, expect_step);
    expect_step = s + 1;
    const cJSON *parts = cJSON_GetObjectItemCaseSensitive(mt[i], "parts");
    double bg = fixture_num(parts, "defeat.neck_bg"), obj = fixture_num(parts, "defeat.neck_obj");
    if (s <= S && !(bg > 0)) nonzero_ok = 0;
    if (s > S && bg != 0) zero_ok = 0;
    if (!(obj > 0)) others_ok = 0;
  }
  fixture_jsonl_free(mt, n);
  CHECK_MSG(expect_step - 1 == STEPS, "last step %d", expect_step - 1);
  CHECK_MSG(nonzero_ok, "defeat.neck_bg was 0 before the set");
  CHECK_MSG(zero_ok, "defeat.neck_bg not 0 after the set (or the set did not survive the resume)");
  CHECK_MSG(others_ok, "defeat.neck_obj missing or 0");

  /* metrics.csv: one loss row per step, one header. */
  snprintf(text, sizeof text, "%s/metrics.csv", runs);
  size_t len;
  char *csv = kd_read_text(text, &len, (size_t)1 << 30, NULL);
  CHECK(csv != NULL);
  int rows = 0, headers = 0, prev = 0, csv_ok = 1;
  for (char *p = csv; p && *p;) {
    char *nl = strchr(p, '\n');
    CHECK(nl != NULL);
    if (!nl) break;
    if (!strncmp(p, "step,name,value", 15)) headers++;
    int s;
    char name[64];
    if (sscanf(p, "%d,%63[^,],", &s, name) == 2 && !strcmp(name, "loss")) {
      rows++;
      if (s != prev + 1) csv_ok = 0;
      prev = s;
    }
    p = nl + 1;
  }
  free(csv);
  CHECK(headers == 1 && rows == STEPS && csv_ok);

  cJSON *e = find_event("set", "defeat.alpha_bg", &count);
  CHECK_MSG(count == 1 && e && (int)fixture_num(e, "step") == S, "defeat.alpha_bg set events: %d", count);
  cJSON_Delete(e);
  e = find_event("set", "loss.box_weight", &count);
  CHECK(count == 1 && e && (int)fixture_num(e, "step") == ck_before && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "replayed")));
  cJSON_Delete(e);
  e = find_event("pause", NULL, &count);
  CHECK(count == 1 && e && !strcmp(fixture_str(e, "source"), "cli") && (int)fixture_num(e, "step") == paused_at);
  cJSON_Delete(e);
  cJSON_Delete(find_event("resume", NULL, &count));
  CHECK(count == 2); /* the cli resume, and the restart */
  cJSON_Delete(find_event("live_restored", NULL, &count));
  CHECK(count == 1);
  cJSON_Delete(find_event("control_ignored", NULL, &count));
  CHECK(count == 0); /* every command was handled before the checkpoint */
  e = find_event("finish", NULL, &count);
  CHECK(count == 1 && e && (int)fixture_num(e, "step") == STEPS);
  cJSON_Delete(e);
  snprintf(text, sizeof text, "%s/checkpoints/step_%08d.safetensors", runs, STEPS);
  CHECK(kd_path_exists(text));
  CHECK(kd_rundir_latest_checkpoint(runs) == STEPS);

  /* 9. A finished run extended with --steps: config.json records the new
   *    schedule (a later plain resume keeps it), the steps go on from
   *    STEPS, and a "config" event marks the change. */
  char more[16];
  snprintf(more, sizeof more, "%d", STEPS + 3);
  expect("extend the run", KD("distill", "--resume", runs, "--steps", more, "--quiet"), 0, "");
  snprintf(text, sizeof text, "%s/config.json", runs);
  char *cfgtext = kd_read_text(text, &len, 1 << 20, NULL);
  cJSON *cj = cfgtext ? cJSON_Parse(cfgtext) : NULL;
  free(cfgtext);
  CHECK(cj && (int)fixture_num(cJSON_GetObjectItemCaseSensitive(cj, "train"), "steps") == STEPS + 3);
  cJSON_Delete(cj);
  CHECK_MSG(last_metric_step() == STEPS + 3, "extended run ended at step %d", last_metric_step());
  e = find_event("config", NULL, &count);
  CHECK(count == 1 && e && (int)fixture_num(e, "step") == STEPS && (int)fixture_num(e, "steps") == STEPS + 3);
  cJSON_Delete(e);
  expect("resume the extended run", KD("distill", "--resume", runs, "--quiet"), 0, "");
  cJSON_Delete(find_event("config", NULL, &count));
  CHECK_MSG(count == 1, "a plain resume rewrote config.json (%d config events)", count);

  if (!check_failures) fixture_rmrf(tmp);
  else fprintf(stderr, "test_live_cli: kept %s for inspection\n", tmp);
  return check_status("test_live_cli");
}
