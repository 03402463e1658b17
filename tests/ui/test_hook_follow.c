/* A PyTorch training followed by the real window: tests/hook/torch_train.py
 * (a torch distillation loop writing its run directory through
 * python/kdscope_hook.py) runs in its own process; the window opens the run
 * from its files as `kdscope window --follow` does, shows the hook's
 * snapshots and curves, and a drag by hand on the fitnet.weight slider
 * reaches the Python process: it logs the set event (source cli, through
 * control.jsonl) and its own per-step record shows the new weight from the
 * event's step + 1 on; the window's view follows the change; the window's
 * stop ends the loop with a stop event. Exit 77 without a display, the
 * Fashion-MNIST source, or torch / torchvision. docs/HOOK.md. */
#include <gtk/gtk.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "check.h"
#include "control_panel.h"
#include "panel.h"
#include "ui_drive.h"
#include "view.h"
#include "window.h"

static char g_run[2100], g_steps_log[2200];
static GPid g_pid;
static int g_exited = -1;

static int last_step(gpointer unused) {
  (void)unused;
  return fixture_last_step(g_run);
}

static gboolean reached_20(gpointer unused) { return last_step(unused) >= 20; }

static gboolean have_snapshot(gpointer w) {
  KdsBridge *b = kds_window_get_bridge(w);
  return b && kds_bridge_snapshot_count(b) > 0 && kds_panel_get_view(kds_window_get_panel(w, 0))->snap;
}

/* The first set event of fitnet.weight the Python process logged. */
typedef struct SetSeen {
  int step;
  char value[64], old[64], source[16];
} SetSeen;

static gboolean set_logged(gpointer u) {
  SetSeen *s = u;
  int n, found = 0;
  cJSON **ev = fixture_jsonl(g_run, "events.jsonl", &n);
  for (int i = 0; i < n && !found; i++) {
    if (!fixture_is_event(ev[i], "set") || !fixture_str(ev[i], "key") || strcmp(fixture_str(ev[i], "key"), "fitnet.weight")) continue;
    s->step = (int)fixture_num(ev[i], "step");
    g_strlcpy(s->value, fixture_str(ev[i], "value") ? fixture_str(ev[i], "value") : "", sizeof s->value);
    g_strlcpy(s->old, fixture_str(ev[i], "old") ? fixture_str(ev[i], "old") : "", sizeof s->old);
    g_strlcpy(s->source, fixture_str(ev[i], "source") ? fixture_str(ev[i], "source") : "", sizeof s->source);
    found = 1;
  }
  fixture_jsonl_free(ev, n);
  return found;
}

/* The weight the Python process used at step (its own log), NAN if not yet. */
static double weight_at(int step) {
  FILE *f = fopen(g_steps_log, "r");
  double w = NAN, lr;
  int s;
  char v[64];
  while (f && fscanf(f, "%d %63s %lf", &s, v, &lr) == 3)
    if (s == step) w = g_ascii_strtod(v, NULL);
  if (f) fclose(f);
  return w;
}

static int g_want_step;
static gboolean logged_step(gpointer unused) {
  (void)unused;
  return !isnan(weight_at(g_want_step));
}

typedef struct ViewWait {
  KdsWindow *w;
  double v;
} ViewWait;

static gboolean view_follows(gpointer u) {
  ViewWait *vw = u;
  return kd_config_num(kds_bridge_config(kds_window_get_bridge(vw->w)), "fitnet.weight") == vw->v;
}

static gboolean exited(gpointer unused) {
  (void)unused;
  int status;
  if (g_exited < 0 && waitpid(g_pid, &status, WNOHANG) == g_pid) g_exited = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  return g_exited >= 0;
}

int main(void) {
  int rc = ui_test_start();
  if (rc) return rc;
  if (system("/usr/bin/python3 -c 'import torch, torchvision' 2>/dev/null") != 0) {
    printf("skipped: /usr/bin/python3 has no torch / torchvision\n");
    return 77;
  }
  const char *root = g_getenv("KD_SOURCE_ROOT");
  char dir[1024], data[2048], script[2048];
  CHECK(root && fixture_tmpdir(dir, sizeof dir, "hookfollow") == 0 && fixture_data(dir, data, sizeof data) == 0);
  if (check_failures) return check_status("test_hook_follow");
  snprintf(g_run, sizeof g_run, "%s/run", dir);
  snprintf(g_steps_log, sizeof g_steps_log, "%s/run.log", dir);
  snprintf(script, sizeof script, "%s/tests/hook/torch_train.py", root);
  char *argv[] = {"/usr/bin/python3", script, "--data", data, "--out", g_run, "--steps", "100000", "--sleep", "0.02", "--log", g_steps_log, NULL};
  GError *e = NULL;
  CHECK_MSG(g_spawn_async(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD, NULL, NULL, &g_pid, &e), "%s", e ? e->message : "?");
  if (check_failures) return check_status("test_hook_follow");
  CHECK_MSG(ui_wait_for(reached_20, NULL, 120000), "the PyTorch process never reached step 20");

  KdsBridge *b = kds_bridge_new_follow(g_run, &e);
  CHECK_MSG(b != NULL, "follow: %s", e ? e->message : "?");
  KdsWindow *w = kds_window_new(NULL);
  gtk_window_set_default_size(GTK_WINDOW(w), 1600, 1000);
  gtk_window_present(GTK_WINDOW(w));
  if (b) {
    kds_window_set_bridge(w, b);
    g_object_unref(b);
    KdRunStatus st;
    kds_bridge_status(kds_window_get_bridge(w), &st);
    CHECK_MSG(st.state == KD_RUN_RUNNING && strstr(st.message, "following"), "status: %s (state %d)", st.message, st.state);
    CHECK_MSG(ui_wait_for(have_snapshot, w, 30000), "the window never showed one of the hook's snapshots");
    CHECK(kd_config_num(kds_bridge_config(kds_window_get_bridge(w)), "fitnet.weight") == 1);
    CHECK(kd_runlog_find(kds_bridge_log(kds_window_get_bridge(w)), "fitnet.feat").n > 0);

    /* A drag by hand on the slider: the Python process applies it. */
    GtkRange *r = kds_control_panel_slider(kds_window_get_controls(w), "fitnet.weight");
    CHECK_MSG(r != NULL, "no fitnet.weight slider");
    SetSeen s = {0};
    if (r) {
      ui_scroll_to(GTK_WIDGET(r));
      double f = gtk_range_get_value(r) / 1000.0;
      CHECK(ui_drag(GTK_WIDGET(r), 0.04 + 0.92 * f, 0.5, 60, 6) == 0);
      CHECK_MSG(ui_wait_for(set_logged, &s, 30000), "the drag reached no set event of the PyTorch run");
    }
    if (s.value[0]) {
      double v = g_ascii_strtod(s.value, NULL);
      printf("window drag on fitnet.weight: the PyTorch run logged %s -> %s at step %d (source %s)\n", s.old, s.value, s.step,
             s.source);
      CHECK(!strcmp(s.old, "1") && v != 1 && !strcmp(s.source, "cli"));
      g_want_step = s.step + 1;
      CHECK_MSG(ui_wait_for(logged_step, NULL, 30000), "the PyTorch process never logged step %d", s.step + 1);
      CHECK_MSG(weight_at(s.step) == 1 && weight_at(s.step + 1) == v, "the loop used %g at step %d and %g at step %d",
                weight_at(s.step), s.step, weight_at(s.step + 1), s.step + 1);
      ViewWait vw = {w, v};
      CHECK_MSG(ui_wait_for(view_follows, &vw, 20000), "the window's settings never showed fitnet.weight = %s", s.value);
    }
    const char *shots = g_getenv("KDS_SHOTS_DIR");
    if (shots) {
      char png[2200];
      ui_pump(1500);
      snprintf(png, sizeof png, "%s/hook-follow.png", shots);
      CHECK(ui_screenshot(png) == 0);
    }
    /* The window's stop ends the loop. */
    CHECK_MSG(kds_bridge_stop(kds_window_get_bridge(w), &e), "stop: %s", e ? e->message : "?");
    CHECK_MSG(ui_wait_for(exited, NULL, 60000) && g_exited == 0, "the PyTorch process did not end after stop (%d)", g_exited);
    int n;
    cJSON **ev = fixture_jsonl(g_run, "events.jsonl", &n);
    CHECK(n > 0 && fixture_is_event(ev[n - 1], "stop") && fixture_str(ev[n - 1], "source") &&
          !strcmp(fixture_str(ev[n - 1], "source"), "cli"));
    fixture_jsonl_free(ev, n);
  }
  if (!exited(NULL)) {
    kill(g_pid, SIGKILL); /* only the child this test started */
    waitpid(g_pid, NULL, 0);
  }
  gtk_window_destroy(GTK_WINDOW(w));
  ui_pump(200);
  if (!check_failures) fixture_rmrf(dir);
  else printf("kept %s for inspection\n", dir);
  return check_status("test_hook_follow");
}
