/* The Level drop-down: it offers the levels the shown snapshot has (P3..P5
 * on the presets, P2.. or ..P7 on other models), no others, so the level
 * it names is the level every panel draws. */
#ifndef KDS_LEVEL_MENU_H
#define KDS_LEVEL_MENU_H

#include <gtk/gtk.h>

#include "probe/snapshot.h"

/* Gives dd (its model a GtkStringList) the level names of s when they
 * differ, and selects the level the view should show: level, kept by its
 * name when the list changed (P4 stays P4), else the first. Returns that
 * index. The caller ignores the notify::selected this may emit. */
int kds_level_menu_sync(GtkDropDown *dd, const KdSnapshot *s, int level);
/* The level dd shows, or -1 when it lists none yet. */
int kds_level_menu_selected(GtkDropDown *dd);

#endif
