/* For the in-process window tests: the environment, the checks that skip
 * (77) without a display or the data source, and a main loop run as the
 * application runs it until a condition holds. Header-only. */
#ifndef KD_TEST_UI_FIXTURE_H
#define KD_TEST_UI_FIXTURE_H

#include <gtk/gtk.h>
#include <stdio.h>

#include "../train/run_fixture.h"
#include "window.h"

/* 0, or 77 (printed) when no display can be opened or Fashion-MNIST is
 * missing. cairo_renderer: pin GSK's cairo renderer (repeatable pixels). */
static inline int ui_fixture_init(int cairo_renderer) {
  g_setenv("GTK_A11Y", "none", TRUE);
  if (cairo_renderer) g_setenv("GSK_RENDERER", "cairo", TRUE);
  /* No GL at all: Mesa, loaded only to probe GLX, leaks into LeakSanitizer's report. */
  g_setenv("GDK_DEBUG", "gl-disable", TRUE);
  if (!gtk_init_check()) {
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
static inline gboolean ui_wait_for(gboolean (*cond)(gpointer), gpointer user, int ms) {
  gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;
  guint id = g_timeout_add(5, ui_tick, NULL);
  gboolean ok = FALSE;
  while (!(ok = cond && cond(user)) && g_get_monotonic_time() < end) g_main_context_iteration(NULL, TRUE);
  g_source_remove(id);
  return ok;
}

static inline void ui_pump(int ms) { ui_wait_for(NULL, NULL, ms); }

/* A window of w x h driving a new distillation run of cfg (taken) into
 * run_dir, shown; NULL (printed) when the run cannot open. */
static inline KdsWindow *ui_fixture_window(KdConfig *cfg, const char *run_dir, int w, int h) {
  KdsWindow *win = kds_window_new(NULL);
  gtk_window_set_default_size(GTK_WINDOW(win), w, h);
  gtk_window_present(GTK_WINDOW(win));
  KdRunOpts o = {0};
  o.session.out_dir = run_dir;
  o.session.distill = 1;
  GError *e = NULL;
  KdsBridge *b = kds_bridge_new_run(cfg, &o, &e);
  if (!b) {
    fprintf(stderr, "the run did not open: %s\n", e ? e->message : "?");
    g_clear_error(&e);
    gtk_window_destroy(GTK_WINDOW(win));
    return NULL;
  }
  kds_window_set_bridge(win, b);
  g_object_unref(b); /* the window holds it */
  return win;
}

#endif
