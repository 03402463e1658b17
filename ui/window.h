/* The main window: header bar (run controls, methods, open, export),
 * the control panel, the panels grid and the snapshot timeline. */
#ifndef KDS_WINDOW_H
#define KDS_WINDOW_H

#include <gtk/gtk.h>

#include "bridge.h"
#include "control_panel.h"
#include "layout.h"
#include "panel.h"
#include "run_browser.h"
#include "window_compare.h"

G_BEGIN_DECLS

#define KDS_TYPE_WINDOW (kds_window_get_type())
G_DECLARE_FINAL_TYPE(KdsWindow, kds_window, KDS, WINDOW, GtkApplicationWindow)

KdsWindow *kds_window_new(GtkApplication *app);
/* Shows the run (the window takes a reference). */
void kds_window_set_bridge(KdsWindow *w, KdsBridge *b);
/* A first-use step (building the data set): a progress page until
 * kds_window_set_bridge. fraction < 0 pulses. */
void kds_window_show_progress(KdsWindow *w, const char *what, double fraction);
void kds_window_show_error(KdsWindow *w, const char *message);
/* Draws another run's loss parts and AP dotted on the curves (a baseline
 * to beat while tuning), re-read as it grows; NULL stops comparing.
 * FALSE with e when run_dir is not a run directory. */
gboolean kds_window_set_reference(KdsWindow *w, const char *run_dir, GError **e);
/* The runs on the compare chart (any number, besides the window's own
 * run): the browser's Compare; n = 0 clears. FALSE with e when one is not
 * a run directory (nothing changes). */
gboolean kds_window_set_compare(KdsWindow *w, const char *const *run_dirs, int n, GError **e);
/* Shows a run directory: followed live when a process runs it, else
 * replayed. */
gboolean kds_window_open_run(KdsWindow *w, const char *run_dir, GError **e);
/* Continues a stopped run from its last checkpoint in this window (the
 * engine's --resume). A run another process is driving (its lock is held)
 * is not resumed: the window offers to follow it instead. */
gboolean kds_window_resume_run(KdsWindow *w, const char *run_dir, GError **e);
/* The page that offers to follow run_dir, with message. */
void kds_window_offer_follow(KdsWindow *w, const char *run_dir, const char *message);
/* The run browser over folder (NULL: the one open, the current run's
 * parent, else ./runs), opened or brought up. NULL with e when the folder
 * holds no run. */
KdsRunBrowser *kds_window_browse(KdsWindow *w, const char *folder, GError **e);
/* Stop, after the user confirms in a small dialog (window_runctl.c). */
void kds_window_confirm_stop(KdsWindow *w);
/* Whether the header offers Resume for the run in this state. */
gboolean kds_window_can_resume(KdsWindow *w, const KdRunStatus *st);
/* "ETA 3 min 20 s" from the recent rate and the steps left; "" when not
 * running or unknown. */
void kds_window_eta(const KdRunStatus *st, char *buf, size_t len);
/* A one-line message in the readout line under the panels. */
void kds_window_toast(KdsWindow *w, const char *message);
/* The export dialog (Ctrl+E, window_export.c): its inputs carry widget
 * names ("kind", "format", "width", "dpi", "font", "rename", "legend",
 * "xlim", "ylim", "aplim"; "preview", "command", "status") for tests;
 * kds_export_dialog_save writes the file as Save does, without the file
 * chooser. */
GtkWidget *kds_window_export_dialog(KdsWindow *w);
gboolean kds_export_dialog_save(GtkWidget *dialog, const char *path, GError **error);
/* The "Compare with a run" dialog (window_compare.c). */
void kds_window_compare_dialog(KdsWindow *w);

/* Shows the snapshot nearest to step on the maps and the timeline (the
 * curves' playhead follows): what a click on the curves does. */
void kds_window_seek_step(KdsWindow *w, double step);
/* The step of the snapshot the maps show; -1 before the first. */
int kds_window_shown_step(KdsWindow *w);
/* The snapshot timeline (a GtkScale over snapshot indices). */
GtkWidget *kds_window_get_timeline(KdsWindow *w);

/* For tests and the exporter. */
/* The visible page: "progress", "main", "empty", "offer", "error". */
const char *kds_window_page(KdsWindow *w);
/* The open stop confirmation (its buttons are named "cancel" and "stop"), or NULL. */
GtkWidget *kds_window_stop_confirmation(KdsWindow *w);
GtkWidget *kds_window_get_resume_button(KdsWindow *w);
KdsRunBrowser *kds_window_get_browser(KdsWindow *w);
KdsLayout *kds_window_get_layout(KdsWindow *w);
KdsCompare *kds_window_get_compare(KdsWindow *w);
KdsPanel *kds_window_get_compare_panel(KdsWindow *w);
KdsBridge *kds_window_get_bridge(KdsWindow *w);
KdsControlPanel *kds_window_get_controls(KdsWindow *w);
GtkWidget *kds_window_get_pause_button(KdsWindow *w);
GtkWidget *kds_window_get_level_menu(KdsWindow *w); /* the Level drop-down */
int kds_window_panel_count(KdsWindow *w);
KdsPanel *kds_window_get_panel(KdsWindow *w, int i);
/* Main-loop timing since the window opened: polls handled, the slowest
 * poll's work, the mean, and the longest main-loop stall (how late the
 * poll timer fired). */
void kds_window_frame_stats(KdsWindow *w, guint *frames, double *max_work_ms, double *mean_work_ms, double *max_gap_ms);
/* The in-process hand-overs handled (the bridge's "changed"): how many,
 * the slowest one's work and the mean. */
void kds_window_handover_stats(KdsWindow *w, guint *n, double *max_work_ms, double *mean_work_ms);

G_END_DECLS

#endif
