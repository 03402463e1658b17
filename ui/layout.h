/* KdsLayout: where the window's panels sit, as the user chose
 * (layout_prefs.h). Tabs: the image and the curves pinned on top, every
 * other panel one tab below, so each is one click away and the curves
 * never leave the screen. Grid: every panel in a scrolled grid of 1-3
 * columns, each under a header that collapses it. The layout holds a
 * reference on each panel and moves them between arrangements; it draws
 * nothing itself. A change the user makes (collapse, tab, split) is written
 * to the prefs file at once; kds_layout_apply and kds_layout_show are the
 * program's way and write nothing. */
#ifndef KDS_LAYOUT_H
#define KDS_LAYOUT_H

#include <gtk/gtk.h>

#include "layout_prefs.h"

G_BEGIN_DECLS

#define KDS_TYPE_LAYOUT (kds_layout_get_type())
G_DECLARE_FINAL_TYPE(KdsLayout, kds_layout, KDS, LAYOUT, GtkWidget)

KdsLayout *kds_layout_new(void);
/* Adds a panel under its name ("curves", "gap", "compare"...: the title
 * and the place follow from it). Call before kds_layout_apply. */
void kds_layout_add(KdsLayout *l, GtkWidget *panel, const char *name);
/* Rearranges the panels as p says. */
void kds_layout_apply(KdsLayout *l, const KdsLayoutPrefs *p);
/* The user's choice (the action in the window's menu): applies p and
 * writes it; FALSE with e when the file could not be written. */
gboolean kds_layout_choose(KdsLayout *l, const KdsLayoutPrefs *p, GError **e);
const KdsLayoutPrefs *kds_layout_prefs(KdsLayout *l);
/* Shows a panel: its tab (tabs), or expands it and scrolls to it (grid). */
void kds_layout_show(KdsLayout *l, const char *name);
/* Hides a panel that has nothing to show (the runs compared, before any
 * run is), or shows it again. */
void kds_layout_set_available(KdsLayout *l, const char *name, gboolean available);
/* The panels always on screen whatever is shown (tabs: image, curves). */
gboolean kds_layout_is_pinned(KdsLayout *l, const char *name);
/* The panel's display title ("Gap maps"). */
const char *kds_layout_title(const char *name);

G_END_DECLS

#endif
