#include "shortcuts.h"

#include <string.h>

static const KdsShortcut table[] = {
    {"win.pause", {"space", NULL}, "Pause or resume the run", "Run"},
    {"win.undo", {"<Control>z", NULL}, "Undo the last live change (again: the one before)", "Run"},
    {"win.level-prev", {"Left", NULL}, "Previous FPN level", "Maps"},
    {"win.level-next", {"Right", NULL}, "Next FPN level", "Maps"},
    {"win.image-prev", {"Up", NULL}, "Previous probe image", "Maps"},
    {"win.image-next", {"Down", NULL}, "Next probe image", "Maps"},
    {"win.browse", {"<Control>o", NULL}, "Browse a folder of runs", "Files"},
    {"win.open", {"<Control><Shift>o", NULL}, "Open a run directory or a config", "Files"},
    {"win.export", {"<Control>e", NULL}, "Export a figure", "Files"},
    {"win.show-help-overlay", {"<Control>question", "<Control>slash", NULL}, "Keyboard shortcuts", "Window"},
    {"app.quit", {"<Control>q", NULL}, "Quit", "Window"},
};

int kds_shortcuts_count(void) { return (int)G_N_ELEMENTS(table); }
const KdsShortcut *kds_shortcuts_at(int i) { return i >= 0 && i < kds_shortcuts_count() ? &table[i] : NULL; }

void kds_shortcuts_set_accels(GtkApplication *app) {
  for (int i = 0; i < kds_shortcuts_count(); i++) gtk_application_set_accels_for_action(app, table[i].action, table[i].accels);
}

static void append_escaped(GString *s, const char *text) {
  char *e = g_markup_escape_text(text, -1);
  g_string_append(s, e);
  g_free(e);
}

/* GtkShortcutsWindow takes its content from a builder definition only
 * (GTK 4.8 has no API to add sections), so the table becomes one. */
GtkWidget *kds_shortcuts_window_new(void) {
  GString *x = g_string_new("<interface><object class=\"GtkShortcutsWindow\" id=\"win\"><property name=\"modal\">true</property>"
                            "<child><object class=\"GtkShortcutsSection\"><property name=\"section-name\">main</property>"
                            "<property name=\"max-height\">12</property>");
  for (int i = 0; i < kds_shortcuts_count(); i++) {
    gboolean first = TRUE;
    for (int k = 0; k < i; k++) first &= strcmp(table[k].group, table[i].group) != 0;
    if (!first) continue;
    g_string_append(x, "<child><object class=\"GtkShortcutsGroup\"><property name=\"title\">");
    append_escaped(x, table[i].group);
    g_string_append(x, "</property>");
    for (int k = i; k < kds_shortcuts_count(); k++) {
      if (strcmp(table[k].group, table[i].group)) continue;
      g_string_append(x, "<child><object class=\"GtkShortcutsShortcut\"><property name=\"accelerator\">");
      append_escaped(x, table[k].accels[0]);
      g_string_append(x, "</property><property name=\"title\">");
      append_escaped(x, table[k].title);
      g_string_append(x, "</property></object></child>");
    }
    g_string_append(x, "</object></child>");
  }
  g_string_append(x, "</object></child></object></interface>");
  GtkBuilder *b = gtk_builder_new_from_string(x->str, (gssize)x->len);
  g_string_free(x, TRUE);
  GtkWidget *w = GTK_WIDGET(gtk_builder_get_object(b, "win"));
  g_object_ref_sink(w);
  g_object_unref(b);
  return w;
}

void kds_shortcuts_attach(GtkApplicationWindow *w) {
  GtkWidget *sw = kds_shortcuts_window_new();
  gtk_application_window_set_help_overlay(w, GTK_SHORTCUTS_WINDOW(sw));
  g_object_unref(sw);
}
