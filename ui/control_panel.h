/* The control panel: a section per method (headed by its name; the
 * training settings last), one row per hyperparameter, built from the
 * settings descriptors: the paper's symbol and the key, a slider (log
 * scale where declared) that lands only on the descriptor's grid, a value
 * box, reset to default; the prose label and help as tooltip. Moving a
 * slider emits "setting-changed" (key, value text) once the hand stops
 * (debounced), so one drag is one logged change, not a hundred. A typed
 * value is emitted at once and exactly; typed text that is no number in
 * range is emitted as typed, for the receiver to refuse with its message.
 * Values print in the one number format (core/numfmt.h). */
#ifndef KDS_CONTROL_PANEL_H
#define KDS_CONTROL_PANEL_H

#include <gtk/gtk.h>

#include "core/config.h"

G_BEGIN_DECLS

#define KDS_TYPE_CONTROL_PANEL (kds_control_panel_get_type())
G_DECLARE_FINAL_TYPE(KdsControlPanel, kds_control_panel, KDS, CONTROL_PANEL, GtkBox)

KdsControlPanel *kds_control_panel_new(void);
/* Rebuilds the rows for these keys (NULL-terminated). cfg is borrowed
 * for reading descriptors and current values; it must outlive the panel
 * or the next rebuild. */
void kds_control_panel_rebuild(KdsControlPanel *p, const KdConfig *cfg, const char *const *keys);
/* Moves the widgets to the values in cfg without emitting signals (a
 * change that came from elsewhere, e.g. `kdscope set`). */
void kds_control_panel_sync(KdsControlPanel *p, const KdConfig *cfg);
/* For tests: the slider and entry of a key, or NULL. */
GtkRange *kds_control_panel_slider(KdsControlPanel *p, const char *key);
GtkSpinButton *kds_control_panel_entry(KdsControlPanel *p, const char *key);
GtkButton *kds_control_panel_reset(KdsControlPanel *p, const char *key);
/* A reset button returns its row to the value the setting had when the
 * run was bound (the first rebuild after this call), not to the
 * descriptor's default. Call it when another run is bound. */
void kds_control_panel_forget_run(KdsControlPanel *p);
/* Debounce delay in ms before "setting-changed" fires after a slider move
 * (default 250; 0 = immediately). */
void kds_control_panel_set_debounce(KdsControlPanel *p, guint ms);

G_END_DECLS

#endif
