/* Every keyboard shortcut of the window, in one table: the application's
 * accelerators are set from it and the shortcuts window (Ctrl+?, and
 * "Keyboard shortcuts" in the menu) lists it, so the two cannot differ. */
#ifndef KDS_SHORTCUTS_H
#define KDS_SHORTCUTS_H

#include <gtk/gtk.h>

typedef struct KdsShortcut {
  const char *action;    /* "win.pause" */
  const char *accels[3]; /* GTK accelerators, NULL-terminated; the first is listed */
  const char *title;     /* what it does, as the shortcuts window says it */
  const char *group;     /* the shortcuts window's group */
} KdsShortcut;

int kds_shortcuts_count(void);
const KdsShortcut *kds_shortcuts_at(int i);
/* Sets every accelerator of the table on app. */
void kds_shortcuts_set_accels(GtkApplication *app);
/* A GtkShortcutsWindow listing the table, group by group. */
GtkWidget *kds_shortcuts_window_new(void);
/* Gives w the shortcuts window as its help overlay: the action
 * win.show-help-overlay opens it. */
void kds_shortcuts_attach(GtkApplicationWindow *w);

#endif
