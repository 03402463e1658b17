/* The window's layout choice, remembered per user: a small key file in the
 * XDG config dir ($XDG_CONFIG_HOME/kdscope/layout.ini, else
 * ~/.config/kdscope/layout.ini), read when a window opens and written when
 * the user changes the layout. GLib only. */
#ifndef KDS_LAYOUT_PREFS_H
#define KDS_LAYOUT_PREFS_H

#include <glib.h>

typedef enum {
  KDS_LAYOUT_TABS, /* image and curves pinned on top, every other panel a tab below */
  KDS_LAYOUT_GRID  /* every panel in a scrolled grid of 1-3 columns, each collapsible */
} KdsLayoutMode;

#define KDS_LAYOUT_MAX_COLUMNS 3

typedef struct KdsLayoutPrefs {
  KdsLayoutMode mode;
  int columns;         /* grid: 1 .. KDS_LAYOUT_MAX_COLUMNS */
  char collapsed[512]; /* grid: panels shown collapsed, "masks,attention" */
  char tab[64];        /* tabs: the panel whose tab was last shown */
  int split;           /* tabs: height of the pinned row in px (0: its natural height) */
} KdsLayoutPrefs;

/* Tabs, three columns, nothing collapsed. */
void kds_layout_prefs_default(KdsLayoutPrefs *p);
/* The file's path (g_free). */
char *kds_layout_prefs_path(void);
/* Reads the file over the defaults. A missing file is no error (defaults);
 * FALSE with e naming the file and the key when it holds a bad value (the
 * other keys still apply). */
gboolean kds_layout_prefs_load(KdsLayoutPrefs *p, GError **e);
/* Writes the file (whole: temp + rename), creating the folder. */
gboolean kds_layout_prefs_save(const KdsLayoutPrefs *p, GError **e);
/* Whether name is in the collapsed list; set or clear it. */
gboolean kds_layout_prefs_is_collapsed(const KdsLayoutPrefs *p, const char *name);
void kds_layout_prefs_set_collapsed(KdsLayoutPrefs *p, const char *name, gboolean collapsed);
/* "tabs", "grid-1", "grid-2", "grid-3" (the window's layout action). */
void kds_layout_prefs_format(const KdsLayoutPrefs *p, char *buf, gsize len);
gboolean kds_layout_prefs_parse(KdsLayoutPrefs *p, const char *text);

#endif
