/* KdsRunBrowser: a window over a folder of run directories (Ctrl+O, or
 * `kdscope window --follow runs/`). A table of the runs — method(s), seed,
 * steps, lr, the methods' main weights, steps done, last AP in percent,
 * status (running, paused, finished, stopped, failed) — sortable by any
 * column and re-read as the runs go on; any number of rows selected to
 * compare in the main window, one opened there (followed live or
 * replayed) or resumed; and below, the hyperparameter view: a chosen
 * setting against the last AP, one point per selected run. */
#ifndef KDS_RUN_BROWSER_H
#define KDS_RUN_BROWSER_H

#include <gtk/gtk.h>

#include "panel.h"
#include "run_browser_scan.h"

G_BEGIN_DECLS

#define KDS_TYPE_RUN_BROWSER (kds_run_browser_get_type())
G_DECLARE_FINAL_TYPE(KdsRunBrowser, kds_run_browser, KDS, RUN_BROWSER, GtkWindow)

typedef struct _KdsWindow KdsWindow;

/* A browser acting on main (Open, Resume, Compare); main may close first. */
KdsRunBrowser *kds_run_browser_new(KdsWindow *main);
/* Lists folder's runs (a run directory itself lists that run). FALSE with e
 * when it cannot be read or holds no run. */
gboolean kds_run_browser_set_folder(KdsRunBrowser *b, const char *folder, GError **e);
const char *kds_run_browser_folder(KdsRunBrowser *b);
/* Re-reads runs whose logs or lock changed, adds new ones, drops gone ones
 * (also every 2 s on its own). */
void kds_run_browser_refresh(KdsRunBrowser *b);

/* The rows in the order shown. */
int kds_run_browser_n_rows(KdsRunBrowser *b);
const KdRunSummary *kds_run_browser_row(KdsRunBrowser *b, int i);
/* Sorts by a column: "run", "methods", "seed", "steps", "lr", "weights",
 * "done", "ap", "status". FALSE for another name. */
gboolean kds_run_browser_sort(KdsRunBrowser *b, const char *column, gboolean descending);
/* Selects rows (in the order shown), replacing the selection. */
void kds_run_browser_select(KdsRunBrowser *b, const int *rows, int n);
int kds_run_browser_n_selected(KdsRunBrowser *b);

/* What the buttons do. Compare: the selected runs in the main window's
 * compare chart. Open: the first selected run in the main window. Resume:
 * the first selected run, stopped, continued in the main window. */
gboolean kds_run_browser_compare(KdsRunBrowser *b, GError **e);
gboolean kds_run_browser_open(KdsRunBrowser *b, GError **e);
gboolean kds_run_browser_resume(KdsRunBrowser *b, GError **e);

/* The hyperparameter view's setting, and its panel. */
gboolean kds_run_browser_set_hparam(KdsRunBrowser *b, const char *key);
KdsPanel *kds_run_browser_hparam_panel(KdsRunBrowser *b);

G_END_DECLS

#endif
