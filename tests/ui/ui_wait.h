/* Shared by the in-process window tests: the main-loop helpers of
 * ui_loop.h and a render's pixel variance (a blank render is ~0).
 * Header-only (static functions). */
#ifndef KD_TEST_UI_WAIT_H
#define KD_TEST_UI_WAIT_H

#include <gtk/gtk.h>

#include "ui_loop.h"
#include "window.h"

/* A window of this default size with every panel on screen at once (the
 * grid layout), presented. */
static inline KdsWindow *ui_grid_window(int width, int height) {
  KdsWindow *w = kds_window_new(NULL);
  gtk_window_set_default_size(GTK_WINDOW(w), width, height);
  KdsLayoutPrefs grid;
  kds_layout_prefs_default(&grid);
  grid.mode = KDS_LAYOUT_GRID;
  kds_layout_apply(kds_window_get_layout(w), &grid);
  gtk_window_present(GTK_WINDOW(w));
  return w;
}

/* The variance of the green channel of an ARGB32 image surface. */
static inline double variance(cairo_surface_t *s) {
  cairo_surface_flush(s);
  const unsigned char *d = cairo_image_surface_get_data(s);
  int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s), st = cairo_image_surface_get_stride(s);
  double sum = 0, sq = 0;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      double v = d[y * st + 4 * x + 1];
      sum += v, sq += v * v;
    }
  double n = (double)w * h;
  return sq / n - (sum / n) * (sum / n);
}

#endif
