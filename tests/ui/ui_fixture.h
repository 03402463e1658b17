/* For the in-process window tests: ui_loop.h's start and main loop, and a
 * window driving a new distillation run. Header-only. */
#ifndef KD_TEST_UI_FIXTURE_H
#define KD_TEST_UI_FIXTURE_H

#include <gtk/gtk.h>
#include <stdio.h>

#include "../train/run_fixture.h"
#include "ui_loop.h"
#include "window.h"

/* The start and the main loop of ui_loop.h (ui_test_start pins GSK's
 * cairo renderer), under the names the window tests here use. */
#define ui_fixture_init(cairo_renderer) ui_test_start()
#define ui_wait_for wait_for
#define ui_pump pump

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
