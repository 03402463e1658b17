/* A live distillation run in a grid window, for the panel tests: the
 * window, the run of cfg into run_dir, and a wait for its first snapshots,
 * then a pause so that no new snapshot changes what the test looks at.
 * Header-only; needs ui_wait.h and ui_loop.h (ui_open_run). */
#ifndef KD_TEST_UI_LIVE_H
#define KD_TEST_UI_LIVE_H

#include "ui_wait.h"
#include "window.h"

static int ui_live_want;
static gboolean ui_live_have(gpointer w) {
  KdsBridge *b = kds_window_get_bridge(w);
  return b && (int)kds_bridge_snapshot_count(b) >= ui_live_want;
}

/* NULL (printed) when the run does not open or gives fewer than
 * `snapshots` snapshots within timeout_ms. The window owns the run. */
static inline KdsWindow *ui_live_window(KdConfig *cfg, const char *run_dir, int snapshots, int timeout_ms) {
  KdsWindow *w = ui_grid_window(1600, 1000);
  KdRunOpts o = {0};
  o.session.out_dir = run_dir;
  o.session.distill = 1;
  GError *e = NULL;
  KdsBridge *b = ui_open_run(cfg, &o, &e);
  if (!b) {
    fprintf(stderr, "ui_live: %s\n", e ? e->message : "the run did not open");
    g_clear_error(&e);
    return NULL;
  }
  kds_window_set_bridge(w, b);
  g_object_unref(b);
  ui_live_want = snapshots;
  if (!wait_for(ui_live_have, w, timeout_ms) || !kds_bridge_pause(kds_window_get_bridge(w), &e)) {
    fprintf(stderr, "ui_live: fewer than %d snapshots in %d ms, or no pause: %s\n", snapshots, timeout_ms, e ? e->message : "");
    g_clear_error(&e);
    return NULL;
  }
  pump(1500);
  return w;
}

static inline KdsPanel *ui_live_panel(KdsWindow *w, const char *kind) {
  for (int i = 0; i < kds_window_panel_count(w); i++)
    if (!strcmp(kds_panel_kind(kds_window_get_panel(w, i)), kind)) return kds_window_get_panel(w, i);
  return NULL;
}

#endif
