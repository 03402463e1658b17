#include "level_menu.h"

#include <string.h>

int kds_level_menu_selected(GtkDropDown *dd) {
  guint i = gtk_drop_down_get_selected(dd);
  return i == GTK_INVALID_LIST_POSITION ? -1 : (int)i;
}

static gboolean same_names(GListModel *m, const KdSnapshot *s) {
  if ((int)g_list_model_get_n_items(m) != s->nlev) return FALSE;
  for (int l = 0; l < s->nlev; l++) {
    char lv[16];
    if (strcmp(gtk_string_list_get_string(GTK_STRING_LIST(m), (guint)l), kd_snapshot_level_name(s, l, lv, sizeof lv))) return FALSE;
  }
  return TRUE;
}

int kds_level_menu_sync(GtkDropDown *dd, const KdSnapshot *s, int level) {
  GListModel *m = gtk_drop_down_get_model(dd);
  if (!GTK_IS_STRING_LIST(m) || !s || s->nlev <= 0) return 0;
  if (!same_names(m, s)) {
    char shown[16] = "";
    int n = (int)g_list_model_get_n_items(m);
    if (level >= 0 && level < n) g_strlcpy(shown, gtk_string_list_get_string(GTK_STRING_LIST(m), (guint)level), sizeof shown);
    const char **names = g_new0(const char *, (gsize)s->nlev + 1);
    char *buf = g_malloc0((gsize)s->nlev * 16);
    level = 0;
    for (int l = 0; l < s->nlev; l++) {
      names[l] = kd_snapshot_level_name(s, l, buf + 16 * l, 16);
      if (!strcmp(names[l], shown)) level = l;
    }
    gtk_string_list_splice(GTK_STRING_LIST(m), 0, (guint)n, names);
    g_free(names);
    g_free(buf);
  }
  if (level < 0 || level >= s->nlev) level = 0;
  if (kds_level_menu_selected(dd) != level) gtk_drop_down_set_selected(dd, (guint)level);
  return level;
}
