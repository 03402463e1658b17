/* The layout choice's file (layout_prefs.h). */
#include "layout_prefs.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

#define GROUP "layout"

static GQuark quark(void) { return g_quark_from_static_string("kds-layout"); }

void kds_layout_prefs_default(KdsLayoutPrefs *p) {
  memset(p, 0, sizeof *p);
  p->mode = KDS_LAYOUT_TABS;
  p->columns = KDS_LAYOUT_MAX_COLUMNS;
}

char *kds_layout_prefs_path(void) { return g_build_filename(g_get_user_config_dir(), "kdscope", "layout.ini", NULL); }

void kds_layout_prefs_format(const KdsLayoutPrefs *p, char *buf, gsize len) {
  if (p->mode == KDS_LAYOUT_TABS) g_snprintf(buf, len, "tabs");
  else g_snprintf(buf, len, "grid-%d", p->columns);
}

gboolean kds_layout_prefs_parse(KdsLayoutPrefs *p, const char *text) {
  if (!g_strcmp0(text, "tabs")) {
    p->mode = KDS_LAYOUT_TABS;
    return TRUE;
  }
  if (text && g_str_has_prefix(text, "grid-") && text[5] >= '1' && text[5] <= '0' + KDS_LAYOUT_MAX_COLUMNS && !text[6]) {
    p->mode = KDS_LAYOUT_GRID;
    p->columns = text[5] - '0';
    return TRUE;
  }
  return FALSE;
}

gboolean kds_layout_prefs_load(KdsLayoutPrefs *p, GError **e) {
  kds_layout_prefs_default(p);
  char *path = kds_layout_prefs_path();
  GKeyFile *kf = g_key_file_new();
  GError *le = NULL;
  gboolean ok = TRUE;
  if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &le)) {
    ok = g_error_matches(le, G_FILE_ERROR, G_FILE_ERROR_NOENT);
    if (!ok) g_set_error(e, quark(), 1, "%s: %s", path, le->message);
    g_clear_error(&le);
    g_key_file_free(kf);
    g_free(path);
    return ok;
  }
  char *mode = g_key_file_get_string(kf, GROUP, "mode", NULL);
  int columns = g_key_file_get_integer(kf, GROUP, "columns", &le);
  if (le) g_clear_error(&le), columns = p->columns;
  if (mode && !strcmp(mode, "grid")) {
    if (columns < 1 || columns > KDS_LAYOUT_MAX_COLUMNS) {
      g_set_error(e, quark(), 1, "%s: columns=%d, expected 1 to %d", path, columns, KDS_LAYOUT_MAX_COLUMNS);
      ok = FALSE;
    } else p->mode = KDS_LAYOUT_GRID, p->columns = columns;
  } else if (mode && strcmp(mode, "tabs")) {
    g_set_error(e, quark(), 1, "%s: mode=%s, expected tabs or grid", path, mode);
    ok = FALSE;
  }
  char *collapsed = g_key_file_get_string(kf, GROUP, "collapsed", NULL);
  char *tab = g_key_file_get_string(kf, GROUP, "tab", NULL);
  int split = g_key_file_get_integer(kf, GROUP, "split", NULL);
  if (collapsed) g_strlcpy(p->collapsed, collapsed, sizeof p->collapsed);
  if (tab) g_strlcpy(p->tab, tab, sizeof p->tab);
  p->split = split > 0 && split < 10000 ? split : 0;
  g_free(mode);
  g_free(collapsed);
  g_free(tab);
  g_key_file_free(kf);
  g_free(path);
  return ok;
}

gboolean kds_layout_prefs_save(const KdsLayoutPrefs *p, GError **e) {
  char *path = kds_layout_prefs_path();
  char *dir = g_path_get_dirname(path);
  GKeyFile *kf = g_key_file_new();
  g_key_file_set_comment(kf, NULL, NULL, " kdscope's window layout (View > Layout in the window's menu)", NULL);
  g_key_file_set_string(kf, GROUP, "mode", p->mode == KDS_LAYOUT_GRID ? "grid" : "tabs");
  g_key_file_set_integer(kf, GROUP, "columns", p->columns);
  g_key_file_set_string(kf, GROUP, "collapsed", p->collapsed);
  g_key_file_set_string(kf, GROUP, "tab", p->tab);
  g_key_file_set_integer(kf, GROUP, "split", p->split);
  GError *le = NULL;
  gboolean ok = g_mkdir_with_parents(dir, 0700) == 0 && g_key_file_save_to_file(kf, path, &le);
  if (!ok) g_set_error(e, quark(), 1, "%s: %s", path, le ? le->message : g_strerror(errno));
  g_clear_error(&le);
  g_key_file_free(kf);
  g_free(dir);
  g_free(path);
  return ok;
}

gboolean kds_layout_prefs_is_collapsed(const KdsLayoutPrefs *p, const char *name) {
  char **v = g_strsplit(p->collapsed, ",", -1);
  gboolean in = g_strv_contains((const char *const *)v, name);
  g_strfreev(v);
  return in;
}

void kds_layout_prefs_set_collapsed(KdsLayoutPrefs *p, const char *name, gboolean collapsed) {
  char **v = g_strsplit(p->collapsed, ",", -1);
  GString *s = g_string_new("");
  for (char **x = v; *x; x++)
    if (**x && strcmp(*x, name)) g_string_append_printf(s, "%s%s", s->len ? "," : "", *x);
  if (collapsed) g_string_append_printf(s, "%s%s", s->len ? "," : "", name);
  g_strlcpy(p->collapsed, s->str, sizeof p->collapsed);
  g_string_free(s, TRUE);
  g_strfreev(v);
}
