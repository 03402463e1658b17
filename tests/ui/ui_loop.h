/* Shared by the in-process window tests: the start (GTK under Xvfb, with
 * the environment the tests pin) and running the main loop for a while or
 * until a condition holds. Header-only (static functions). */
#ifndef KD_TEST_UI_LOOP_H
#define KD_TEST_UI_LOOP_H

#include <gtk/gtk.h>
#include <stdio.h>

#include "../train/run_fixture.h"
#include "bridge.h"

/* GTK for a test under Xvfb: no accessibility bus, the cairo renderer
 * (repeatable pixels), no GL at all (Mesa, loaded only to probe GLX, leaks
 * into LeakSanitizer's report). FALSE when no display opens. */
static inline gboolean ui_init(void) {
  g_setenv("GTK_A11Y", "none", TRUE);
  g_setenv("GSK_RENDERER", "cairo", TRUE);
  g_setenv("GDK_DEBUG", "gl-disable", TRUE);
  return gtk_init_check();
}

/* 0, or 77 (meson's skip) with a line saying why: no display, or no
 * dataset-fashion-mnist to build the run's data from. */
static inline int ui_test_start(void) {
  if (!ui_init()) {
    printf("skipped: no display\n");
    return 77;
  }
  if (!fixture_have_source()) {
    printf("skipped: dataset-fashion-mnist is not installed\n");
    return 77;
  }
  return 0;
}

static gboolean ui_tick(gpointer unused) {
  (void)unused;
  return G_SOURCE_CONTINUE;
}

/* Runs the main loop as the application does (blocking on its sources, so
 * a hand-over or a frame is dispatched when it is due), until cond holds
 * (NULL: never) or ms pass; a 5 ms tick wakes it to look at the time. */
static inline gboolean wait_for(gboolean (*cond)(gpointer), gpointer user, int ms) {
  gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;
  guint id = g_timeout_add(5, ui_tick, NULL);
  gboolean ok = FALSE;
  while (!(ok = cond && cond(user)) && g_get_monotonic_time() < end) g_main_context_iteration(NULL, TRUE);
  g_source_remove(id);
  return ok;
}

static inline void pump(int ms) { wait_for(NULL, NULL, ms); }

typedef struct {
  gboolean done;
  KdsBridge *bridge;
  GError *error;
} UiOpened;

static void ui_on_opened(GObject *src, GAsyncResult *res, gpointer user) {
  (void)src;
  UiOpened *op = user;
  op->bridge = kds_bridge_new_run_finish(res, &op->error);
  op->done = TRUE;
}

static gboolean ui_opened(gpointer user) { return ((UiOpened *)user)->done; }

/* Opens a run as the app does (the session on a worker thread) and runs
 * the main loop until it is open: the started bridge, or NULL with *error
 * (also after 60 s without an answer). cfg is taken. */
static inline KdsBridge *ui_open_run(KdConfig *cfg, const KdRunOpts *o, GError **error) {
  UiOpened op = {0};
  kds_bridge_new_run_async(cfg, o, ui_on_opened, &op);
  if (!wait_for(ui_opened, &op, 60000)) {
    g_set_error(error, g_quark_from_static_string("ui-test"), 1, "the run did not open within 60 s");
    return NULL; /* the task still holds its bridge; the test ends here */
  }
  if (op.error) g_propagate_error(error, op.error);
  return op.bridge;
}

#endif
