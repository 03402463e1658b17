/* Inspect sessions under Xvfb: the window on a teacher and a student as
 * they are, no training. In-process: the first capture comes without a
 * step; a slider (fitnet.weight 1 -> 2) brings a new capture at once whose
 * FitNet part is twice the first and whose detection parts are the same
 * bits (the weights did not move); picking another image brings a capture
 * of it; resume and step are refused. Then the verb as a person types it:
 * `kdscope inspect --student DIR --teacher DIR --data DIR --out RUN` opens,
 * logs its inspect event and captures, and writes no metrics; bad model
 * directories are refused naming them. Skips (77) without a display. */
#include <gtk/gtk.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "../train/run_fixture.h"
#include "check.h"
#include "model/safetensors.h"
#include "ui_drive.h"
#include "ui_wait.h"
#include "window.h"

static int want;
static gboolean have_captures(gpointer w) {
  KdsBridge *b = kds_window_get_bridge(w);
  return b && kds_bridge_snapshot_count(b) >= want;
}

static KdSnapshot *capture(KdsWindow *w, int n) {
  want = n;
  if (!wait_for(have_captures, w, 60000)) return NULL;
  KdsBridge *b = kds_window_get_bridge(w);
  return kds_bridge_snapshot(b, kds_bridge_snapshot_count(b) - 1, NULL);
}

static double part(const KdSnapshot *s, const char *name) {
  for (int i = 0; i < s->nprobe_parts; i++)
    if (!strcmp(s->probe_parts[i].name, name)) return s->probe_parts[i].value;
  return NAN;
}

/* dir/name: config.json (the fixture's student) + model.safetensors (its
 * init), as kdscope import writes a model. */
static int student_dir(const char *dir, const char *name, KdConfig *cfg, char *out, size_t len) {
  snprintf(out, len, "%s/%s", dir, name);
  char path[4400];
  if (g_mkdir_with_parents(out, 0755)) return -1;
  snprintf(path, sizeof path, "%s/config.json", out);
  char *json = kd_config_to_json(cfg);
  int rc = json && g_file_set_contents(path, json, -1, NULL) ? 0 : -1;
  free(json);
  KdError err;
  KdModel *m = rc ? NULL : kd_model_from_files(path, NULL, NULL, &err);
  snprintf(path, sizeof path, "%s/model.safetensors", out);
  if (!m || kd_safetensors_save(path, kd_model_params(m), NULL, &err)) rc = -1;
  kd_model_free(m);
  return rc;
}

/* The verb in a child process; its exit status, its stderr into buf. */
static int run_verb(const char *exe, const char *args, char *buf, size_t len) {
  char cmd[16384];
  snprintf(cmd, sizeof cmd, "KDSCOPE_QUIT_AFTER=8 %s inspect %s 2>&1", exe, args);
  FILE *p = popen(cmd, "r");
  size_t n = p ? fread(buf, 1, len - 1, p) : 0;
  buf[n] = 0;
  int st = p ? pclose(p) : -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(int argc, char **argv) {
  int skip = ui_test_start();
  if (skip) return skip;
  CHECK_MSG(argc > 1, "usage: test_inspect KDSCOPE_EXE");
  char dir[1024], data[2048], run[2100], tcfg[2100], tck[2100], sdir[2200], tdir[2200];
  CHECK(fixture_tmpdir(dir, sizeof dir, "inspect") == 0 && fixture_data(dir, data, sizeof data) == 0);
  CHECK(fixture_teacher(dir, tcfg, sizeof tcfg, tck, sizeof tck) == 0);
  KdError err;
  KdConfig *cfg = fixture_config(data, 100);
  CHECK(cfg && student_dir(dir, "student", cfg, sdir, sizeof sdir) == 0);
  char sck[2300];
  snprintf(sck, sizeof sck, "%s/model.safetensors", sdir);
  const char *kv[][2] = {{"teacher.config", tcfg}, {"teacher.checkpoint", tck}, {"train.init_checkpoint", sck},
                         {"train.threads", "1"}, {"distill.methods", "fitnet"}, {"probe.images", "2"}};
  for (size_t k = 0; cfg && k < sizeof kv / sizeof kv[0]; k++) CHECK_MSG(kd_config_set(cfg, kv[k][0], kv[k][1], &err) == 0, "%s", err.msg);
  if (!cfg) return check_status("test_inspect");

  /* In-process. */
  snprintf(run, sizeof run, "%s/run", dir);
  KdsWindow *w = ui_grid_window(1600, 1000);
  KdRunOpts o = {.session = {.out_dir = run, .distill = 1}, .inspect = 1};
  GError *e = NULL;
  KdsBridge *b = ui_open_run(cfg, &o, &e); /* takes cfg */
  CHECK_MSG(b != NULL, "the inspect session did not open: %s", e ? e->message : "");
  if (!b) return check_status("test_inspect");
  kds_window_set_bridge(w, b);
  g_object_unref(b);
  CHECK(kds_bridge_is_inspect(b));
  KdSnapshot *s0 = capture(w, 1);
  CHECK_MSG(s0 != NULL, "no first capture");
  if (!s0) return check_status("test_inspect");
  double f0 = part(s0, "fitnet.feat"), c0 = part(s0, "det.cls"), x0 = part(s0, "det.box");
  printf("capture 0 (step %d): fitnet.feat %.6g det.cls %.6g det.box %.6g over %d images\n", s0->step, f0, c0, x0, s0->nimages);
  CHECK_MSG(s0->step == 0 && isfinite(f0) && f0 > 0 && isfinite(c0) && isfinite(x0) && s0->nimages == 2,
            "capture 0: step %d, parts %g %g %g, %d images", s0->step, f0, c0, x0, s0->nimages);
  /* A slider: a new capture at once, no step. */
  gint64 t0 = g_get_monotonic_time();
  CHECK(kds_bridge_set(b, "fitnet.weight", "2", NULL));
  KdSnapshot *s1 = capture(w, 2);
  double dt = (g_get_monotonic_time() - t0) / 1e6;
  CHECK_MSG(s1 != NULL, "no capture after the change");
  if (s1) {
    double f1 = part(s1, "fitnet.feat");
    printf("capture 1 (step %d) %.2f s after fitnet.weight=2: fitnet.feat %.6g (x%.6f), det.cls %.6g\n", s1->step, dt, f1, f1 / f0,
           part(s1, "det.cls"));
    CHECK_MSG(s1->step == 1 && fabs(f1 / f0 - 2) < 1e-5, "step %d, FitNet part x%g", s1->step, f1 / f0);
    CHECK_MSG(part(s1, "det.cls") == c0 && part(s1, "det.box") == x0, "the detection parts moved: the student trained");
  }
  /* Another image. */
  int pick = 5;
  CHECK(kds_bridge_set_probe_images(b, &pick, 1, NULL));
  KdSnapshot *s2 = capture(w, 3);
  CHECK_MSG(s2 && s2->nimages == 1 && s2->image_index[0] == pick, "no capture of the picked image");
  /* Resume and step are refused: nothing trains. */
  kds_bridge_resume(b, NULL);
  kds_bridge_step(b, NULL);
  pump(1500);
  KdRunStatus st;
  kds_bridge_status(b, &st);
  CHECK_MSG(st.step == 0 && strstr(st.message, "does not train"), "after resume: step %d, message '%s'", st.step, st.message);
  CHECK_MSG(fixture_last_step(run) == 0, "the inspect session logged step metrics");
  kd_snapshot_free(s0);
  kd_snapshot_free(s1);
  kd_snapshot_free(s2);
  gtk_window_destroy(GTK_WINDOW(w));
  pump(300);
  CHECK_MSG(fixture_count_events(run, "inspect") == 1 && fixture_count_events(run, "control_ignored") >= 2,
            "events: %d inspect, %d control_ignored", fixture_count_events(run, "inspect"), fixture_count_events(run, "control_ignored"));

  /* The verb, as typed. A teacher directory of the import kind. */
  snprintf(tdir, sizeof tdir, "%s/teacher", dir);
  char path[4400], out[8192], args[12000], run2[2200];
  g_mkdir_with_parents(tdir, 0755);
  snprintf(path, sizeof path, "%s/config.json", tdir);
  CHECK(rename(tcfg, path) == 0);
  snprintf(path, sizeof path, "%s/model.safetensors", tdir);
  CHECK(rename(tck, path) == 0);
  snprintf(run2, sizeof run2, "%s/run2", dir);
  snprintf(args, sizeof args, "--student %s --teacher %s --data %s --out %s --set distill.methods=fitnet --set probe.images=2 --quiet", sdir,
           tdir, data, run2);
  int rc = run_verb(argv[1], args, out, sizeof out);
  char snaps[2400];
  snprintf(snaps, sizeof snaps, "%s/snapshots", run2);
  CHECK_MSG(rc == 0 && fixture_count_events(run2, "inspect") == 1 && fixture_last_step(run2) == 0 &&
                g_file_test(snaps, G_FILE_TEST_IS_DIR),
            "kdscope inspect: exit %d, %d inspect events, last step %d:\n%s", rc, fixture_count_events(run2, "inspect"),
            fixture_last_step(run2), out);
  /* Bad directories: refused before a window, naming them. */
  snprintf(args, sizeof args, "--student %s/none --teacher %s", dir, tdir);
  rc = run_verb(argv[1], args, out, sizeof out);
  CHECK_MSG(rc == 1 && strstr(out, "/none: not a directory"), "a missing student: exit %d: %s", rc, out);
  snprintf(args, sizeof args, "--student %s --teacher %s", data, tdir);
  rc = run_verb(argv[1], args, out, sizeof out);
  CHECK_MSG(rc == 1 && strstr(out, "no config.json"), "a data directory as the student: exit %d: %s", rc, out);
  if (!check_failures) fixture_rmrf(dir);
  return check_status("test_inspect");
}
