/* Shared by the in-process window tests: running the main loop as the
 * application does until a condition holds, and a render's pixel variance
 * (a blank render is ~0). Header-only (static functions). */
#ifndef KD_TEST_UI_WAIT_H
#define KD_TEST_UI_WAIT_H

#include <gtk/gtk.h>

static gboolean ui_wait_tick(gpointer unused) {
  (void)unused;
  return G_SOURCE_CONTINUE;
}

/* Runs the main loop as the application does (blocking on its sources, so
 * a hand-over or a frame is dispatched when it is due), until cond holds
 * (NULL: never) or ms pass; a 5 ms tick wakes it to look at the time. */
static inline gboolean wait_for(gboolean (*cond)(gpointer), gpointer user, int ms) {
  gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;
  guint id = g_timeout_add(5, ui_wait_tick, NULL);
  gboolean ok = FALSE;
  while (!(ok = cond && cond(user)) && g_get_monotonic_time() < end) g_main_context_iteration(NULL, TRUE);
  g_source_remove(id);
  return ok;
}

static inline void pump(int ms) { wait_for(NULL, NULL, ms); }

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
