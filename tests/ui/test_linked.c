/* Linked time in the real window, in-process under Xvfb, driven with real
 * pointer events (XTest through xdotool) over a finished real run
 * (probe_run.h) replayed from its directory:
 *  - a click on the curves seeks: the maps show the snapshot nearest the
 *    clicked step and the curves' playhead sits at that snapshot's step;
 *    a drag along the curves scrubs; the timeline moves the playhead too;
 *  - the readout is drawn next to the pointer;
 *  - a click on a legend key hides the series (and again shows it); a
 *    click on the smoothing note shows the raw series;
 *  - Ctrl+wheel zooms the step axis about the pointer, the plain wheel
 *    changes nothing, a double click shows the whole run again;
 *  - the export dialog with a paper's choices (font, renames, legend, dpi)
 *    and the panel's zoom previews the figure and prints the command that
 *    writes, byte for byte, the file its Save writes.
 * Skips (77) without a display, xdotool or the data source. */
#include <gdk/x11/gdkx.h>
#include <gtk/gtk.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "probe_run.h"
#include "ui_loop.h"
#include "window.h"

static KdsWindow *win;
static KdsPanel *curves;

static gboolean curves_ready(gpointer unused) {
  (void)unused;
  KdFigPanel fp;
  return kds_window_shown_step(win) >= 0 && kds_panel_build(curves, &fp) && gtk_widget_get_width(GTK_WIDGET(curves)) > 100;
}

/* xdotool on the window: "mousemove --window XID X Y " + rest, at panel
 * coordinates (x, y). */
static void xdo(double x, double y, const char *rest) {
  graphene_point_t p;
  double sx, sy;
  if (!gtk_widget_compute_point(GTK_WIDGET(curves), GTK_WIDGET(win), &GRAPHENE_POINT_INIT((float)x, (float)y), &p)) return;
  gtk_native_get_surface_transform(GTK_NATIVE(win), &sx, &sy);
  unsigned long xid = gdk_x11_surface_get_xid(gtk_native_get_surface(GTK_NATIVE(win)));
  char cmd[512];
  snprintf(cmd, sizeof cmd, "xdotool mousemove --window %lu %d %d %s", xid, (int)(p.x + sx), (int)(p.y + sy), rest);
  CHECK_MSG(system(cmd) == 0, "%s", cmd);
  pump(150);
}

static const KdFigCurves *spec(void) {
  KdFigPanel fp;
  return kds_panel_build(curves, &fp) ? fp.spec : NULL;
}

/* Panel x where the loss chart's axis reads step (scanning a row through
 * the plot); -1 when the step is not on the axis. */
static double y_plot = -1;
static double x_of_step(double step) {
  int w = gtk_widget_get_width(GTK_WIDGET(curves));
  double best = -1, err = INFINITY;
  for (double x = 0; x < w; x += 1) {
    KdFigPick k;
    if (!kds_panel_pick(curves, x, y_plot, &k) || !isfinite(k.step)) continue;
    if (fabs(k.step - step) < err) err = fabs(k.step - step), best = x;
  }
  return err < 2 ? best : -1;
}

/* A row through the loss plot: where picks report a step. */
static void find_plot_row(void) {
  int w = gtk_widget_get_width(GTK_WIDGET(curves)), h = gtk_widget_get_height(GTK_WIDGET(curves));
  for (double y = 0; y < h && y_plot < 0; y += 2) {
    KdFigPick k;
    if (kds_panel_pick(curves, w / 2.0, y, &k) && isfinite(k.step)) y_plot = y + 25; /* a little inside */
  }
}

/* The step of snapshot i of the run. */
static int snap_step(int i) { return kds_bridge_snapshot_step(kds_window_get_bridge(win), i); }

static void check_cursor(const char *what, int want) {
  const KdFigCurves *c = spec();
  int shown = kds_window_shown_step(win);
  CHECK_MSG(shown == want, "%s: the maps show step %d, expected %d", what, shown, want);
  CHECK_MSG(c && c->loss.cursor_on && c->loss.cursor == shown && c->ap.cursor == shown,
            "%s: the playhead is at %g (on %d), the maps at step %d", what, c ? c->loss.cursor : NAN, c ? c->loss.cursor_on : 0,
            shown);
}

static void check_seek(void) {
  int n = kds_bridge_snapshot_count(kds_window_get_bridge(win));
  CHECK_MSG(n >= 5, "%d snapshots", n);
  /* A click just past snapshot 2's step lands on snapshot 2. */
  double x = x_of_step(snap_step(2) + 1);
  CHECK_MSG(x >= 0, "step %d is not on the curves' axis", snap_step(2) + 1);
  xdo(x, y_plot, "click 1");
  check_cursor("click", snap_step(2));
  /* A drag scrubs: down near snapshot 1, along to snapshot n-2. */
  double x1 = x_of_step(snap_step(1)), x2 = x_of_step(snap_step(n - 2));
  xdo(x1, y_plot, "mousedown 1");
  check_cursor("press", snap_step(1));
  xdo((x1 + x2) / 2, y_plot, "");
  int mid = kds_window_shown_step(win);
  xdo(x2, y_plot, "mouseup 1");
  check_cursor("drag", snap_step(n - 2));
  CHECK_MSG(mid > snap_step(1) && mid < snap_step(n - 2), "half way through the drag the maps showed step %d", mid);
  /* The timeline moves the playhead too. */
  gtk_range_set_value(GTK_RANGE(kds_window_get_timeline(win)), 3);
  pump(200);
  check_cursor("timeline", snap_step(3));
  printf("seek: click -> step %d, drag %d -> %d (via %d), timeline -> %d\n", snap_step(2), snap_step(1), snap_step(n - 2), mid,
         snap_step(3));
}

static void check_readout(void) {
  double x = x_of_step(snap_step(3)), y = y_plot + 10;
  xdo(x, y, "");
  graphene_rect_t box;
  const char *text;
  gboolean on = kds_panel_readout(curves, &box, &text);
  double dx = fmax(0, fmax(box.origin.x - x, x - (box.origin.x + box.size.width)));
  double dy = fmax(0, fmax(box.origin.y - y, y - (box.origin.y + box.size.height)));
  CHECK_MSG(on && strstr(text, "step ") && dx < 30 && dy < 30,
            "readout '%s' at (%.0f, %.0f) %.0fx%.0f, pointer at (%.0f, %.0f)", on ? text : "(none)", box.origin.x, box.origin.y,
            box.size.width, box.size.height, x, y);
  printf("readout '%.60s' %.0f, %.0f px from the pointer\n", text, dx, dy);
}

/* Where the key of series `name` (or the smoothing note) is: scans the panel. */
static gboolean find_key(const char *name, int smoothing, double *kx, double *ky) {
  int w = gtk_widget_get_width(GTK_WIDGET(curves)), h = gtk_widget_get_height(GTK_WIDGET(curves));
  for (double y = 0; y < h / 2.0; y += 2)
    for (double x = 0; x < w; x += 2) {
      KdFigPick k;
      if (!kds_panel_pick(curves, x, y, &k) || k.key < 0) continue;
      if (smoothing ? k.key == KD_FIG_KEY_SMOOTHING : k.key != KD_FIG_KEY_SMOOTHING && !strcmp(k.key_name, name)) {
        *kx = x + 3, *ky = y + 2;
        return TRUE;
      }
    }
  return FALSE;
}

static int hidden_in_spec(const char *name) {
  const KdFigCurves *c = spec();
  for (int i = 0; c && i < c->loss.nseries; i++)
    if (!strcmp(c->loss.series[i].name, name)) return c->loss.extra[i].hidden;
  return -1;
}

static void check_legend(void) {
  double kx, ky;
  CHECK_MSG(find_key("det.cls", 0, &kx, &ky), "no legend key for det.cls");
  int shown_before = kds_window_shown_step(win);
  xdo(kx, ky, "click 1");
  const char *const *h = kds_panel_hidden(curves);
  CHECK_MSG(h[0] && !strcmp(h[0], "det.cls") && !h[1] && hidden_in_spec("det.cls") == 1, "after a click on its key det.cls is %s",
            h[0] ? "hidden, with others" : "shown");
  CHECK_MSG(kds_window_shown_step(win) == shown_before, "a click on the legend moved the time cursor");
  CHECK(find_key("det.cls", 0, &kx, &ky)); /* the greyed key stays */
  xdo(kx, ky, "click 1");
  CHECK_MSG(!kds_panel_hidden(curves)[0] && hidden_in_spec("det.cls") == 0, "a second click did not show det.cls again");
  /* The smoothing note: the raw series, one click away, and back. */
  CHECK_MSG(find_key(NULL, 1, &kx, &ky), "no smoothing note in the legend");
  xdo(kx, ky, "click 1");
  const KdFigCurves *c = spec();
  CHECK_MSG(kds_panel_raw(curves) && c && c->loss.smooth_off && c->loss.smooth.kind != KD_SMOOTH_NONE, "the note did not show the raw series");
  CHECK(find_key(NULL, 1, &kx, &ky));
  xdo(kx, ky, "click 1");
  CHECK(!kds_panel_raw(curves));
}

/* The plain wheel over the curves scrolls the page (when it can) and
 * changes nothing on them; the page is put back after. */
static void plain_wheel(double x) {
  GtkWidget *sw = gtk_widget_get_ancestor(GTK_WIDGET(curves), GTK_TYPE_SCROLLED_WINDOW);
  GtkAdjustment *adj = sw ? gtk_scrolled_window_get_vadjustment(GTK_SCROLLED_WINDOW(sw)) : NULL;
  double lo0, hi0, lo, hi;
  gboolean z0 = kds_panel_zoom(curves, &lo0, &hi0);
  double a0 = adj ? gtk_adjustment_get_value(adj) : 0;
  double room = adj ? gtk_adjustment_get_upper(adj) - gtk_adjustment_get_page_size(adj) - a0 : 0;
  xdo(x, y_plot, "click 5");
  gboolean z = kds_panel_zoom(curves, &lo, &hi);
  CHECK_MSG(z == z0 && (!z || (lo == lo0 && hi == hi0)), "the plain wheel changed the zoom");
  if (adj) {
    CHECK_MSG(room < 1 || gtk_adjustment_get_value(adj) > a0, "the plain wheel did not scroll the page (%.0f px of room)", room);
    gtk_adjustment_set_value(adj, a0);
    pump(150);
  }
}

static void check_zoom(void) {
  const KdFigCurves *c = spec();
  double lo, hi, x = x_of_step(snap_step(3));
  CHECK(!kds_panel_zoom(curves, &lo, &hi));
  plain_wheel(x);
  KdFigPick k;
  kds_panel_pick(curves, x, y_plot, &k);
  double full = k.step_hi - k.step_lo, at = k.step;
  xdo(x, y_plot, "keydown Control_L click --repeat 2 --delay 30 4 keyup Control_L");
  CHECK_MSG(kds_panel_zoom(curves, &lo, &hi), "Ctrl+wheel did not zoom");
  c = spec();
  CHECK_MSG(c && c->loss.xmin == lo && c->loss.xmax == hi && c->ap.xmin == lo, "the zoom is not on the curves");
  /* about the pointer: the step under it stays inside, the span shrinks */
  CHECK_MSG(hi - lo < 0.8 * full && lo < at && at < hi, "zoomed to %g..%g from a span of %g about step %g", lo, hi, full, at);
  printf("zoom: %g steps -> %g..%g about step %.1f\n", full, lo, hi, at);
  kds_panel_pick(curves, x, y_plot, &k);
  CHECK_MSG(fabs(k.step - at) < 0.02 * full, "the step under the pointer moved from %g to %g", at, k.step);
  plain_wheel(x);
  xdo(x, y_plot, "click --repeat 2 --delay 80 1");
  CHECK_MSG(!kds_panel_zoom(curves, &lo, &hi), "a double click did not show the whole run");
}

static GtkWidget *named(GtkWidget *w, const char *name) {
  if (!strcmp(gtk_widget_get_name(w), name)) return w;
  for (GtkWidget *c = gtk_widget_get_first_child(w); c; c = gtk_widget_get_next_sibling(c)) {
    GtkWidget *f = named(c, name);
    if (f) return f;
  }
  return NULL;
}

/* The index of item `text` in a string-list dropdown (prefix match), -1. */
static int item_index(GtkWidget *dd, const char *text) {
  GListModel *m = gtk_drop_down_get_model(GTK_DROP_DOWN(dd));
  for (guint i = 0; i < g_list_model_get_n_items(m); i++)
    if (!strncmp(gtk_string_list_get_string(GTK_STRING_LIST(m), i), text, strlen(text))) return (int)i;
  return -1;
}

static void choose(GtkWidget *dlg, const char *name, const char *item) {
  GtkWidget *dd = named(dlg, name);
  int i = dd ? item_index(dd, item) : -1;
  CHECK_MSG(i >= 0, "the dialog has no %s '%s'", name, item);
  if (i >= 0) gtk_drop_down_set_selected(GTK_DROP_DOWN(dd), (guint)i);
}

static void check_export_dialog(const char *dir) {
  kds_panel_set_zoom(curves, 5, 15);
  pump(100);
  GtkWidget *dlg = kds_window_export_dialog(win);
  pump(300);
  const char *serif = kd_fig_font_installed("DejaVu Serif") ? "DejaVu Serif" : "DejaVu Sans";
  choose(dlg, "kind", "curves");
  choose(dlg, "format", "png");
  choose(dlg, "font", serif);
  choose(dlg, "legend", "upper-left");
  GtkWidget *rn = named(dlg, "rename"), *dpi = named(dlg, "dpi"), *cmd = named(dlg, "command");
  CHECK(rn && dpi && cmd);
  if (!rn || !dpi || !cmd) return;
  gtk_editable_set_text(GTK_EDITABLE(rn), "det.cls=L_{cls}; fitnet.weight=\\lambda_{fit}");
  gtk_spin_button_set_value(GTK_SPIN_BUTTON(dpi), 100);
  pump(200);
  GdkPaintable *pv = gtk_picture_get_paintable(GTK_PICTURE(named(dlg, "preview")));
  CHECK_MSG(pv && gdk_paintable_get_intrinsic_width(pv) > 300, "no preview in the dialog");
  char a[1200], b[1200], want[256];
  snprintf(a, sizeof a, "%s/dialog.png", dir);
  snprintf(b, sizeof b, "%s/command.png", dir);
  GError *e = NULL;
  CHECK_MSG(kds_export_dialog_save(dlg, a, &e), "save: %s", e ? e->message : "?");
  g_clear_error(&e);
  const char *text = gtk_label_get_text(GTK_LABEL(cmd));
  snprintf(want, sizeof want, "--font '%s'", serif);
  const char *must[] = {want, "--rename 'det.cls=L_{cls}'", "--rename 'fitnet.weight=\\lambda_{fit}'", "--legend upper-left",
                        "--xlim 5:15", "--format png", "--dpi 100", "--figure curves"};
  for (size_t i = 0; i < G_N_ELEMENTS(must); i++) CHECK_MSG(strstr(text, must[i]), "the command lacks %s: %s", must[i], text);
  /* The printed command, to another file, writes the same bytes. */
  GString *c = g_string_new(text);
  g_string_replace(c, a, b, 0);
  CHECK(!strncmp(c->str, "kdscope ", 8));
  char *full = g_strdup_printf("'%s/kdscope'%s >/dev/null", KD_TEST_APP_DIR, c->str + 7);
  CHECK_MSG(system(full) == 0, "%s", full);
  gchar *da = NULL, *db = NULL;
  gsize la = 0, lb = 0;
  CHECK(g_file_get_contents(a, &da, &la, NULL) && g_file_get_contents(b, &db, &lb, NULL));
  CHECK_MSG(la > 0 && la == lb && !memcmp(da, db, la), "the dialog's file and its command's differ (%zu vs %zu bytes): %s", la, lb,
            c->str);
  printf("export dialog: %s\n", text);
  g_free(da), g_free(db), g_free(full);
  g_string_free(c, TRUE);
  gtk_window_destroy(GTK_WINDOW(dlg));
  kds_panel_set_zoom(curves, 0, 0);
  pump(100);
}

int main(int argc, char **argv) {
  (void)argc, (void)argv;
  int skip = ui_test_start();
  if (skip) return skip;
  if (system("command -v xdotool >/dev/null 2>&1") != 0) {
    printf("skipped: xdotool is missing (the launcher installs it)\n");
    return 77;
  }
  char dir[1024], run[2100];
  CHECK(fixture_tmpdir(dir, sizeof dir, "linked") == 0);
  if (probe_run_make(dir, 24, 3, run, sizeof run)) {
    CHECK_MSG(0, "could not make the run");
    return check_status("test_linked");
  }
  GError *e = NULL;
  KdsBridge *b = kds_bridge_new_follow(run, &e);
  CHECK_MSG(b != NULL, "follow: %s", e ? e->message : "?");
  if (!b) return check_status("test_linked");
  win = kds_window_new(NULL);
  gtk_window_set_default_size(GTK_WINDOW(win), 1500, 950);
  gtk_window_present(GTK_WINDOW(win));
  kds_window_set_bridge(win, b);
  g_object_unref(b);
  for (int i = 0; i < kds_window_panel_count(win); i++)
    if (!strcmp(kds_panel_kind(kds_window_get_panel(win, i)), "curves")) curves = kds_window_get_panel(win, i);
  CHECK(curves != NULL);
  CHECK_MSG(curves && wait_for(curves_ready, NULL, 30000), "the curves never showed the run");
  if (!curves || check_failures) return check_status("test_linked");
  pump(500);
  find_plot_row();
  CHECK_MSG(y_plot > 0, "no plot row on the curves");
  if (y_plot > 0) {
    check_seek();
    check_readout();
    check_legend();
    check_zoom();
    check_export_dialog(dir);
  }
  gtk_window_destroy(GTK_WINDOW(win));
  pump(200);
  if (!check_failures) fixture_rmrf(dir);
  else printf("kept %s for inspection\n", dir);
  return check_status("test_linked");
}
