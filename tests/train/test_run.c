/* The live run under fire: four threads hammer kd_run_set / pause /
 * resume / step_once / status / recent on a tiny run for thousands of
 * iterations while it trains. Every accepted change must appear in
 * events.jsonl exactly once, in the order it was accepted, with the right
 * old value; refused changes (unknown key, non-live key, out of range)
 * must name the key and never appear; pause and resume events alternate;
 * the logs stay contiguous. Also built under ThreadSanitizer by
 * run_tsan.sh. */
#include <pthread.h>

#include "check.h"
#include "run_fixture.h"
#include "train/run.h"

#define NT 4
#define ITERS 2500
#define MAX_ITERS (40 * ITERS)

static const char *const keys[NT] = {"train.lr", "fitnet.weight", "loss.box_weight", "train.clip_norm"};

typedef struct {
  KdRun *run;
  int t;
  char (*accepted)[32];
  int naccepted;
  int bad; /* failures seen on this thread (CHECK is not thread-safe) */
  char first_bad[1200];
} Worker;

static void value_of(int t, int i, char *buf, size_t len) {
  i %= 10000; /* stays in range */
  double v = t == 0 ? 1e-3 + 1e-7 * i : t == 1 ? 0.01 * i : t == 2 ? 0.5 + 1e-4 * i : 1 + 0.01 * i;
  snprintf(buf, len, "%.9g", v);
}

static long accepted_total; /* all threads; __atomic */

/* The run's on_set (run thread only; read after the join): every applied
 * change, the last value per key. */
typedef struct {
  int calls;
  char last[NT][64];
} Applied;

static void on_set(void *user, const char *key, const char *value) {
  Applied *a = user;
  a->calls++;
  for (int t = 0; t < NT; t++)
    if (!strcmp(key, keys[t])) snprintf(a->last[t], sizeof a->last[t], "%s", value);
}

static void bad(Worker *w, const char *fmt, const char *detail) {
  if (!w->bad++) snprintf(w->first_bad, sizeof w->first_bad, fmt, detail);
}

static void *hammer(void *arg) {
  Worker *w = arg;
  KdError err;
  int last_step = 0;
  KdStepStats recent[8];
  /* At least ITERS rounds, and on until the run has made some steps. */
  for (int i = 0; i < MAX_ITERS && (i < ITERS || last_step < 8); i++) {
    char v[32];
    value_of(w->t, i, v, sizeof v);
    if (kd_run_set(w->run, keys[w->t], v, "ui", &err)) bad(w, "accepted set refused: %s", err.msg);
    else {
      snprintf(w->accepted[w->naccepted++], 32, "%s", v);
      __atomic_add_fetch(&accepted_total, 1, __ATOMIC_RELAXED);
    }
    switch (i % 9) {
    case 1:
      if (!kd_run_set(w->run, keys[w->t], "1e9", "ui", &err)) bad(w, "%s", "out of range accepted");
      else if (!strstr(err.msg, keys[w->t]) || !strstr(err.msg, "range")) bad(w, "range message: %s", err.msg);
      break;
    case 2:
      if (!kd_run_set(w->run, "train.lrr", "0.1", "ui", &err) || !strstr(err.msg, "train.lrr")) bad(w, "%s", "unknown key");
      break;
    case 3:
      if (!kd_run_set(w->run, "train.batch", "4", "ui", &err) || !strstr(err.msg, "train.batch") || !strstr(err.msg, "live"))
        bad(w, "non-live key: %s", err.msg);
      break;
    case 4: kd_run_pause(w->run, "ui", NULL); break;
    case 6: kd_run_resume(w->run, "ui", NULL); break;
    case 7:
      if (i % 90 == 7) kd_run_step_once(w->run, NULL);
      break;
    }
    KdRunStatus st;
    kd_run_status(w->run, &st);
    if (st.step < last_step || st.step > st.total || st.state > KD_RUN_FAILED) bad(w, "%s", "status went backwards");
    last_step = st.step;
    if (i % 50 == 0) {
      int n = kd_run_recent(w->run, 0, recent, 8);
      for (int k = 1; k < n; k++)
        if (recent[k].step <= recent[k - 1].step) bad(w, "%s", "recent not ascending");
    }
    /* A fast UI, not a flood: back off while the run thread has many
     * changes to apply (status.changes counts the applied ones), so steps
     * happen in between, also under ThreadSanitizer. */
    if (i % 10 == 0 || __atomic_load_n(&accepted_total, __ATOMIC_RELAXED) - st.changes > 400) fixture_sleep_ms(1);
  }
  return NULL;
}

int main(void) {
  if (!fixture_have_source()) {
    printf("test_run: skipped (dataset-fashion-mnist is not installed)\n");
    return 77;
  }
  char tmp[4096], data[4200], out[4200];
  CHECK(fixture_tmpdir(tmp, sizeof tmp, "run") == 0);
  if (fixture_data(tmp, data, sizeof data)) return 1;
  snprintf(out, sizeof out, "%s/run", tmp);
  KdConfig *cfg = fixture_config(data, 100000);
  CHECK(cfg != NULL);
  char initial[NT][64];
  for (int t = 0; t < NT; t++) kd_config_format(cfg, keys[t], initial[t], 64);

  KdError err;
  Applied applied = {0};
  KdRunOpts ro = {.session = {.out_dir = out}, .on_set = on_set, .on_set_user = &applied};
  KdRun *run = kd_run_new(cfg, &ro, &err);
  CHECK_MSG(run != NULL, "%s", err.msg);
  if (!run) return check_status("test_run");
  /* A second process (or run) may not drive the same directory. */
  KdConfig *cfg2 = fixture_config(data, 10);
  KdRunOpts ro2 = {.session = {.resume_dir = out}};
  KdRun *twin = kd_run_new(cfg2, &ro2, &err);
  CHECK(twin == NULL && strstr(err.msg, "already being run"));
  kd_run_free(twin);
  kd_config_free(cfg2);

  CHECK(kd_run_start(run, &err) == 0);
  Worker w[NT];
  int total_accepted = 0;
  pthread_t th[NT];
  for (int t = 0; t < NT; t++) {
    w[t] = (Worker){.run = run, .t = t, .accepted = calloc(MAX_ITERS, 32)};
    pthread_create(&th[t], NULL, hammer, &w[t]);
  }
  for (int t = 0; t < NT; t++) {
    pthread_join(th[t], NULL);
    CHECK_MSG(w[t].bad == 0, "thread %d: %d failures, first: %s", t, w[t].bad, w[t].first_bad);
    CHECK(w[t].naccepted >= ITERS);
    total_accepted += w[t].naccepted;
  }
  KdRunStatus st;
  kd_run_status(run, &st);
  int steps_during = st.step;
  CHECK(kd_run_resume(run, "ui", &err) == 0);
  for (int i = 0; i < 3000 && st.step < steps_during + 3; i++) {
    fixture_sleep_ms(5);
    kd_run_status(run, &st);
  }
  CHECK(st.step >= steps_during + 3);
  CHECK(kd_run_stop(run, "ui", &err) == 0);
  CHECK(kd_run_wait(run) == 0);
  kd_run_status(run, &st);
  CHECK(st.state == KD_RUN_STOPPED);
  CHECK(st.changes == total_accepted);
  CHECK(kd_run_set(run, "train.lr", "0.1", "ui", &err) == -1 && strstr(err.msg, "ended"));
  int final_step = st.step;
  printf("test_run: %d steps during %d accepted changes\n", steps_during, total_accepted);
  CHECK(steps_during >= 8);
  /* The config the trainer reads holds the last accepted values, and
   * on_set told of every applied change, the last ones as applied. */
  CHECK_MSG(applied.calls == total_accepted, "on_set called %d times for %d changes", applied.calls, total_accepted);
  for (int t = 0; t < NT; t++) {
    char v[64];
    CHECK(!strcmp(kd_config_format(cfg, keys[t], v, sizeof v), w[t].accepted[w[t].naccepted - 1]));
    CHECK_MSG(!strcmp(applied.last[t], v), "on_set's last %s: %s, the config's %s", keys[t], applied.last[t], v);
  }

  int n;
  cJSON **ev = fixture_jsonl(out, "events.jsonl", &n);
  int next[NT] = {0}, last_step = 0, paused = 0, nsets = 0, npause = 0, nstop = 0, order_ok = 1, chain_ok = 1, alt_ok = 1;
  char prev[NT][64];
  memcpy(prev, initial, sizeof prev);
  for (int i = 0; i < n; i++) {
    CHECK(ev[i] != NULL);
    if (!ev[i]) continue;
    int step = (int)fixture_num(ev[i], "step");
    if (step < last_step) order_ok = 0;
    last_step = step;
    if (fixture_is_event(ev[i], "set")) {
      nsets++;
      const char *k = fixture_str(ev[i], "key"), *v = fixture_str(ev[i], "value"), *o = fixture_str(ev[i], "old");
      CHECK(k && v && o && !strcmp(fixture_str(ev[i], "source"), "ui"));
      int t = 0;
      while (t < NT && k && strcmp(k, keys[t])) t++;
      CHECK(t < NT);
      if (t == NT || !v || !o) continue;
      if (next[t] >= w[t].naccepted || strcmp(v, w[t].accepted[next[t]])) order_ok = 0;
      if (strcmp(o, prev[t])) chain_ok = 0;
      snprintf(prev[t], 64, "%s", v);
      next[t]++;
    } else if (fixture_is_event(ev[i], "pause")) {
      npause++;
      if (paused) alt_ok = 0;
      paused = 1;
    } else if (fixture_is_event(ev[i], "resume")) {
      if (!paused) alt_ok = 0;
      paused = 0;
    } else if (fixture_is_event(ev[i], "stop")) {
      nstop++;
      CHECK(step == final_step);
    }
    CHECK(!fixture_is_event(ev[i], "set_refused"));
  }
  CHECK_MSG(order_ok, "set events out of order or steps going backwards");
  CHECK_MSG(chain_ok, "a set event's old value is not the previous value");
  CHECK_MSG(alt_ok, "pause/resume events do not alternate");
  CHECK(nsets == total_accepted);
  for (int t = 0; t < NT; t++) CHECK_MSG(next[t] == w[t].naccepted, "%s: %d of %d logged", keys[t], next[t], w[t].naccepted);
  CHECK(npause > 0);
  CHECK(nstop == 1);
  fixture_jsonl_free(ev, n);

  /* metrics: every step once, in order; a checkpoint at the stop. */
  cJSON **mt = fixture_jsonl(out, "metrics.jsonl", &n);
  int expect = 1;
  for (int i = 0; i < n; i++)
    if (mt[i] && cJSON_GetObjectItemCaseSensitive(mt[i], "loss")) CHECK((int)fixture_num(mt[i], "step") == expect++);
  CHECK(expect - 1 == final_step);
  fixture_jsonl_free(mt, n);
  char ck[4400];
  snprintf(ck, sizeof ck, "%s/checkpoints/step_%08d.safetensors", out, final_step);
  CHECK(kd_path_exists(ck));

  kd_run_free(run);
  kd_config_free(cfg);
  for (int t = 0; t < NT; t++) free(w[t].accepted);
  fixture_rmrf(tmp);
  return check_status("test_run");
}
