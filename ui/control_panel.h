/* The control panel: one row per hyperparameter of the active methods
 * (plus the live training settings), built from the settings descriptors:
 * label, slider (log scale where declared), numeric entry, reset to
 * default, the help text as tooltip. Moving a slider emits "setting-changed"
 * (key, value text) once the hand stops (debounced), so one drag is one
 * logged change, not a hundred. */
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
/* Debounce delay in ms before "setting-changed" fires after a slider move
 * (default 250; 0 = immediately). */
void kds_control_panel_set_debounce(KdsControlPanel *p, guint ms);

G_END_DECLS

#endif
