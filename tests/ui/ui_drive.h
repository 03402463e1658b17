/* Driving GTK windows in-process under Xvfb as a person does: the main
 * loop run until a condition holds, and real pointer and key events
 * (XTest through xdotool) at a widget's place. Header-only. */
#ifndef KD_TEST_UI_DRIVE_H
#define KD_TEST_UI_DRIVE_H

#include <gdk/x11/gdkx.h>
#include <gtk/gtk.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "ui_loop.h"

/* The main loop of ui_loop.h, under the names the drive tests use. */
#ifndef ui_wait_for
#define ui_wait_for wait_for
#define ui_pump pump
#endif

/* (fx, fy) as fractions of w's size, in the X window of w's toplevel:
 * its xid and pixel position. FALSE when w is not shown. */
static inline gboolean ui_point(GtkWidget *w, double fx, double fy, unsigned long *xid, int *x, int *y) {
  GtkNative *nat = gtk_widget_get_native(w);
  graphene_point_t p;
  if (!nat || !gtk_widget_compute_point(w, GTK_WIDGET(nat), &GRAPHENE_POINT_INIT((float)(fx * gtk_widget_get_width(w)),
                                                                                   (float)(fy * gtk_widget_get_height(w))), &p))
    return FALSE;
  double sx, sy;
  gtk_native_get_surface_transform(nat, &sx, &sy);
  *xid = gdk_x11_surface_get_xid(gtk_native_get_surface(nat));
  *x = (int)(p.x + sx), *y = (int)(p.y + sy);
  return TRUE;
}

/* Runs `xdotool ARGS`; 0 when it ran. */
static inline int ui_xdo(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int ui_xdo(const char *fmt, ...) {
  char cmd[2048] = "xdotool ";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd + 8, sizeof cmd - 8, fmt, ap);
  va_end(ap);
  int rc = system(cmd);
  if (rc) fprintf(stderr, "ui_drive: '%s' exited %d\n", cmd, rc);
  return rc;
}

/* A press at (fx, fy) of w, a move of dx pixels in `steps` motions, and
 * the release: a drag by hand. */
static inline int ui_drag(GtkWidget *w, double fx, double fy, int dx, int steps) {
  unsigned long xid;
  int x, y;
  if (!ui_point(w, fx, fy, &xid, &x, &y)) return -1;
  char moves[1200] = "";
  size_t n = 0;
  for (int i = 1; i <= steps && n + 80 < sizeof moves; i++)
    n += (size_t)snprintf(moves + n, sizeof moves - n, " mousemove --window %lu %d %d sleep 0.02", xid, x + dx * i / steps, y);
  int rc = ui_xdo("mousemove --window %lu %d %d sleep 0.05 mousedown 1 sleep 0.05%s mouseup 1", xid, x, y, moves);
  ui_pump(50);
  return rc;
}

/* Scrolls the scrolled window holding w (the sidebar) so that w shows in
 * its upper third. */
static inline void ui_scroll_to(GtkWidget *w) {
  GtkWidget *sw = gtk_widget_get_ancestor(w, GTK_TYPE_SCROLLED_WINDOW);
  graphene_point_t p;
  if (!sw || !gtk_widget_compute_point(w, gtk_scrolled_window_get_child(GTK_SCROLLED_WINDOW(sw)), &GRAPHENE_POINT_INIT(0, 0), &p)) return;
  GtkAdjustment *a = gtk_scrolled_window_get_vadjustment(GTK_SCROLLED_WINDOW(sw));
  gtk_adjustment_set_value(a, p.y - gtk_adjustment_get_page_size(a) / 3);
  ui_pump(150);
}

/* Keyboard focus to w's toplevel and the pointer over w (without a window
 * manager X sends keys to the focused window), then xdotool key/type
 * commands. */
static inline int ui_keys(GtkWidget *w, const char *commands) {
  unsigned long xid;
  int x, y;
  if (!ui_point(w, 0.5, 0.5, &xid, &x, &y)) return -1;
  int rc = ui_xdo("mousemove --window %lu %d %d windowfocus %lu %s", xid, x, y, xid, commands);
  ui_pump(150);
  return rc;
}

/* The whole X screen as PNG (ImageMagick's import). */
static inline int ui_screenshot(const char *png) {
  char cmd[2300];
  snprintf(cmd, sizeof cmd, "import -window root '%s'", png);
  return system(cmd);
}

#endif
