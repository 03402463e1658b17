/* KdsPanel: the one figure-panel widget. Its kind (construct-only
 * property "kind", a row of the figure table in snapfig.h) turns the view
 * into a figure spec through kd_snapfig_build, the builder `kdscope export`
 * uses; the panel paints it with the same kd_fig_paint the exporter uses,
 * so the screen and an exported figure are the same drawing. Height
 * follows the figure's fixed layout for the allocated width. */
#ifndef KDS_PANEL_H
#define KDS_PANEL_H

#include <gtk/gtk.h>

#include "figure.h"
#include "snapfig.h"
#include "view.h"

G_BEGIN_DECLS

#define KDS_TYPE_PANEL (kds_panel_get_type())
G_DECLARE_FINAL_TYPE(KdsPanel, kds_panel, KDS, PANEL, GtkWidget)

/* A panel of the figure kind named kind ("gap", "curves", ...: a row of
 * the snapfig table). */
KdsPanel *kds_panel_new(const char *kind);
/* A panel drawn from another source than the figure table (the runs
 * compared, the browser's hyperparameter view): build fills the figure,
 * FALSE when there is nothing to draw (then `empty` is shown). It paints,
 * reads out under the pointer and renders as any panel. */
typedef gboolean (*KdsPanelBuildFn)(gpointer user, KdFigPanel *out);
KdsPanel *kds_panel_new_custom(const char *name, KdsPanelBuildFn build, gpointer user, const char *empty);
void kds_panel_set_view(KdsPanel *p, const KdsView *view);
const KdsView *kds_panel_get_view(KdsPanel *p);
/* The kind's name (a custom panel's name; "panel" for a kind not in the table). */
const char *kds_panel_kind(KdsPanel *p);
/* The kind's table row; NULL for a kind not in the table and a custom panel. */
const KdSnapFigKind *kds_panel_figure(KdsPanel *p);
/* The view as the shared builder takes it (the shown snapshot's step as
 * the time cursor). */
void kds_view_snapfig(const KdsView *v, KdSnapFigView *out);
/* The same with this panel's own choices: its zoom, hidden series, raw. */
void kds_panel_view_snapfig(KdsPanel *p, KdSnapFigView *out);
/* The figure style panels draw with on screen (font size for a screen). */
const KdFigStyle *kds_panel_style(void);
/* Builds the current figure; FALSE when there is nothing to draw. */
gboolean kds_panel_build(KdsPanel *p, KdFigPanel *out);
/* Renders the panel's figure offscreen as an export draws it (no playhead,
 * no readout; its zoom and hidden series kept) at its current size (or
 * w x h points when > 0) into a new ARGB32 image surface at `scale` pixels
 * per point. */
cairo_surface_t *kds_panel_render(KdsPanel *p, double w, double h, double scale);
/* What lies under (x, y) (widget coordinates): a line of text (map values,
 * the curves' values at the nearest step) and the map position. FALSE
 * (empty) when nothing. The panel emits "hover" with the same as the
 * pointer moves, and draws the text in a box next to the pointer.
 *
 * On a chart with a step axis (curves, gradients) a click or a drag seeks:
 * the panel emits "seek" (double step) and the window shows that step's
 * snapshot, the playhead following; Ctrl+wheel zooms the step axis about
 * the pointer, Ctrl+Shift+wheel pans it, a double click shows the whole
 * run again; a click on a legend key hides or shows its series (on the
 * smoothing note: the raw series). The plain wheel is left to the page. */
gboolean kds_panel_pick(KdsPanel *p, double x, double y, KdFigPick *out);
/* The content changed: paint the figure afresh at the next frame (a
 * plain gtk_widget_queue_draw repaints only the pointer's readout). */
void kds_panel_redraw(KdsPanel *p);
/* The readout box as drawn (widget coordinates) and its text; FALSE when
 * none is shown. */
gboolean kds_panel_readout(KdsPanel *p, graphene_rect_t *box, const char **text);
/* The step range the panel is zoomed to (FALSE: the whole run), and
 * zooming by hand (lo >= hi: the whole run). */
gboolean kds_panel_zoom(KdsPanel *p, double *lo, double *hi);
void kds_panel_set_zoom(KdsPanel *p, double lo, double hi);
/* The series hidden by legend clicks (names, NULL-terminated, owned by the
 * panel), and whether the raw series replaces the smoothed one. */
const char *const *kds_panel_hidden(KdsPanel *p);
gboolean kds_panel_raw(KdsPanel *p);
/* Counts paints, for tests ("the panels redrew"). */
guint kds_panel_paint_count(KdsPanel *p);
/* Cairo drawing time of panel paints so far (all panels). */
void kds_panel_paint_stats(double *max_ms, double *mean_ms, guint *n);
/* Capture-to-paint latency: from the end of a snapshot's capture (its
 * wall-clock time + capture cost) to the first paint of it by each panel
 * that draws snapshots, over snapshots captured after view.watch_since. */
void kds_panel_latency_stats(double *max_ms, double *mean_ms, guint *n);
/* Starts the latency statistics afresh (a measurement over a quiet spell). */
void kds_panel_latency_reset(void);
/* Pick-to-paint latency: from a pick's handler (kds_panel_note_pick, the
 * window calls it on a click or an arrow key) to the end of the next paint
 * of a panel that draws the picked pixel (KD_SNAPFIG_OPT_PIXEL). */
void kds_panel_note_pick(void);
void kds_panel_pick_stats(double *max_ms, double *mean_ms, guint *n);

G_END_DECLS

#endif
