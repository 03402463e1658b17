/* The panels' arrangements (layout.h): tabs under a pinned row, or a grid
 * of collapsible panels. Rebuilding moves the same panel widgets into a
 * fresh container tree; nothing else about a panel changes. */
#include "layout.h"

#include <string.h>

typedef struct Item {
  GtkWidget *panel; /* a reference */
  char *name;
  gboolean available;
} Item;

struct _KdsLayout {
  GtkWidget parent;
  GPtrArray *items; /* Item* */
  KdsLayoutPrefs prefs;
  GtkWidget *root;     /* the current arrangement (our one child) */
  GtkWidget *paned;    /* tabs */
  GtkWidget *pinned;   /* tabs: the pinned row */
  GtkWidget *notebook; /* tabs */
  GtkWidget *scroller; /* grid */
  gboolean building;   /* our own changes: not the user's, not saved */
};

G_DEFINE_FINAL_TYPE(KdsLayout, kds_layout, GTK_TYPE_WIDGET)

/* Where each panel goes: pinned in the tabs' top row, and its span in a
 * grid of three columns (clipped to the grid's columns). */
static const struct {
  const char *name, *title;
  int pinned, span;
} places[] = {
    {"image", "Image", 1, 1},          {"curves", "Curves", 1, 2},           {"gap", "Gap maps", 0, 3},
    {"gradmaps", "Gradient maps", 0, 3}, {"masks", "Masks", 0, 3},           {"attention", "Attention", 0, 2},
    {"projection", "Projection", 0, 1}, {"compare", "Runs compared", 0, 3},
};

static int place_of(const char *name) {
  for (guint i = 0; i < G_N_ELEMENTS(places); i++)
    if (!strcmp(places[i].name, name)) return (int)i;
  return -1;
}

const char *kds_layout_title(const char *name) {
  int k = place_of(name);
  return k >= 0 ? places[k].title : name;
}

gboolean kds_layout_is_pinned(KdsLayout *l, const char *name) {
  int k = place_of(name);
  return l->prefs.mode == KDS_LAYOUT_TABS && k >= 0 && places[k].pinned;
}

static void save(KdsLayout *l) {
  GError *e = NULL;
  if (!kds_layout_prefs_save(&l->prefs, &e)) {
    g_warning("%s", e->message);
    g_error_free(e);
  }
}

/* ---- taking the panels out of an arrangement ---- */

static void detach(GtkWidget *w) {
  GtkWidget *p = gtk_widget_get_parent(w);
  if (!p) return;
  if (GTK_IS_VIEWPORT(p)) gtk_viewport_set_child(GTK_VIEWPORT(p), NULL);
  else if (GTK_IS_SCROLLED_WINDOW(p)) gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(p), NULL);
  else if (GTK_IS_EXPANDER(p)) gtk_expander_set_child(GTK_EXPANDER(p), NULL);
  else if (GTK_IS_GRID(p)) gtk_grid_remove(GTK_GRID(p), w);
  else gtk_widget_unparent(w);
}

static void clear(KdsLayout *l) {
  for (guint i = 0; i < l->items->len; i++) detach(((Item *)g_ptr_array_index(l->items, i))->panel);
  if (l->root) gtk_widget_unparent(l->root);
  l->root = l->paned = l->pinned = l->notebook = l->scroller = NULL;
}

/* ---- tabs ---- */

static const char *item_name_of_page(KdsLayout *l, GtkWidget *page) {
  for (guint i = 0; i < l->items->len; i++) {
    Item *it = g_ptr_array_index(l->items, i);
    if (gtk_widget_is_ancestor(it->panel, page)) return it->name;
  }
  return NULL;
}

static void on_switch_page(GtkNotebook *nb, GtkWidget *page, guint n, KdsLayout *l) {
  (void)nb, (void)n;
  const char *name = item_name_of_page(l, page);
  if (!name || !strcmp(name, l->prefs.tab)) return;
  g_strlcpy(l->prefs.tab, name, sizeof l->prefs.tab);
  if (!l->building) save(l); /* the user's click; the program's kds_layout_show is not remembered */
}

static void on_split(GObject *o, GParamSpec *ps, KdsLayout *l) {
  (void)ps;
  int pos = gtk_paned_get_position(GTK_PANED(o));
  if (l->building || pos == l->prefs.split) return;
  l->prefs.split = pos; /* the user dragged the separator */
  save(l);
}

static GtkWidget *scrolled(GtkWidget *child) {
  GtkWidget *sw = gtk_scrolled_window_new();
  gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(sw), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(sw), child);
  return sw;
}

static GtkWidget *spaced_grid(void) {
  GtkWidget *g = gtk_grid_new();
  gtk_grid_set_row_spacing(GTK_GRID(g), 8);
  gtk_grid_set_column_spacing(GTK_GRID(g), 8);
  gtk_grid_set_column_homogeneous(GTK_GRID(g), TRUE);
  gtk_widget_set_margin_start(g, 6);
  gtk_widget_set_margin_end(g, 6);
  gtk_widget_set_margin_top(g, 6);
  return g;
}

/* The notebook takes its pages once it is in the window: switching pages
 * reads the window's focus. */
static void build_tabs(KdsLayout *l) {
  l->pinned = spaced_grid();
  l->notebook = gtk_notebook_new();
  gtk_notebook_set_scrollable(GTK_NOTEBOOK(l->notebook), TRUE);
  gtk_widget_set_vexpand(l->notebook, TRUE);
  GtkWidget *top = scrolled(l->pinned);
  gtk_scrolled_window_set_propagate_natural_height(GTK_SCROLLED_WINDOW(top), TRUE);
  l->paned = gtk_paned_new(GTK_ORIENTATION_VERTICAL);
  gtk_paned_set_start_child(GTK_PANED(l->paned), top);
  gtk_paned_set_end_child(GTK_PANED(l->paned), l->notebook);
  gtk_paned_set_resize_start_child(GTK_PANED(l->paned), FALSE);
  gtk_paned_set_shrink_start_child(GTK_PANED(l->paned), TRUE);
  gtk_paned_set_shrink_end_child(GTK_PANED(l->paned), FALSE);
  l->root = l->paned;
  gtk_widget_set_parent(l->root, GTK_WIDGET(l));
  int col = 0, current = -1;
  for (guint i = 0; i < l->items->len; i++) {
    Item *it = g_ptr_array_index(l->items, i);
    int k = place_of(it->name);
    if (!it->available) continue;
    if (k >= 0 && places[k].pinned) {
      gtk_grid_attach(GTK_GRID(l->pinned), it->panel, col, 0, places[k].span, 1);
      col += places[k].span;
      continue;
    }
    GtkWidget *label = gtk_label_new(kds_layout_title(it->name));
    int page = gtk_notebook_append_page(GTK_NOTEBOOK(l->notebook), scrolled(it->panel), label);
    if (!strcmp(it->name, l->prefs.tab)) current = page;
  }
  if (current >= 0) gtk_notebook_set_current_page(GTK_NOTEBOOK(l->notebook), current);
  g_signal_connect(l->notebook, "switch-page", G_CALLBACK(on_switch_page), l);
  g_signal_connect(l->paned, "notify::position", G_CALLBACK(on_split), l);
}

/* ---- grid ---- */

static void on_expanded(GObject *o, GParamSpec *ps, KdsLayout *l) {
  (void)ps;
  const char *name = g_object_get_data(o, "kds-panel");
  kds_layout_prefs_set_collapsed(&l->prefs, name, !gtk_expander_get_expanded(GTK_EXPANDER(o)));
  if (!l->building) save(l);
}

static void build_grid(KdsLayout *l) {
  GtkWidget *grid = spaced_grid();
  int ncol = l->prefs.columns, col = 0, row = 0;
  for (guint i = 0; i < l->items->len; i++) {
    Item *it = g_ptr_array_index(l->items, i);
    if (!it->available) continue;
    int k = place_of(it->name), span = MIN(k >= 0 ? places[k].span : 1, ncol);
    /* The curves fill the row beside the image. */
    if (k >= 0 && places[k].pinned && span > 1) span = MAX(1, ncol - col);
    if (col + span > ncol) col = 0, row++;
    GtkWidget *ex = gtk_expander_new(kds_layout_title(it->name));
    gtk_expander_set_expanded(GTK_EXPANDER(ex), !kds_layout_prefs_is_collapsed(&l->prefs, it->name));
    gtk_widget_set_valign(ex, GTK_ALIGN_START);
    g_object_set_data_full(G_OBJECT(ex), "kds-panel", g_strdup(it->name), g_free);
    gtk_expander_set_child(GTK_EXPANDER(ex), it->panel);
    g_signal_connect(ex, "notify::expanded", G_CALLBACK(on_expanded), l);
    gtk_grid_attach(GTK_GRID(grid), ex, col, row, span, 1);
    col += span;
    if (col >= ncol) col = 0, row++;
  }
  l->scroller = scrolled(grid);
  l->root = l->scroller;
  gtk_widget_set_parent(l->root, GTK_WIDGET(l));
}

/* ---- the widget ---- */

void kds_layout_apply(KdsLayout *l, const KdsLayoutPrefs *p) {
  l->building = TRUE;
  if (p != &l->prefs) l->prefs = *p;
  clear(l);
  if (l->prefs.mode == KDS_LAYOUT_GRID) build_grid(l);
  else build_tabs(l);
  l->building = FALSE;
}

gboolean kds_layout_choose(KdsLayout *l, const KdsLayoutPrefs *p, GError **e) {
  kds_layout_apply(l, p);
  return kds_layout_prefs_save(&l->prefs, e);
}

const KdsLayoutPrefs *kds_layout_prefs(KdsLayout *l) { return &l->prefs; }

static Item *find(KdsLayout *l, const char *name) {
  for (guint i = 0; i < l->items->len; i++) {
    Item *it = g_ptr_array_index(l->items, i);
    if (!strcmp(it->name, name)) return it;
  }
  return NULL;
}

void kds_layout_add(KdsLayout *l, GtkWidget *panel, const char *name) {
  Item *it = g_new0(Item, 1);
  it->panel = g_object_ref_sink(panel);
  it->name = g_strdup(name);
  it->available = TRUE;
  g_ptr_array_add(l->items, it);
}

void kds_layout_set_available(KdsLayout *l, const char *name, gboolean available) {
  Item *it = find(l, name);
  if (!it || it->available == available) return;
  it->available = available;
  if (l->root) kds_layout_apply(l, &l->prefs);
}

void kds_layout_show(KdsLayout *l, const char *name) {
  Item *it = find(l, name);
  if (!it || !it->available || !l->root) return;
  if (l->notebook) {
    l->building = TRUE;
    for (int i = 0; i < gtk_notebook_get_n_pages(GTK_NOTEBOOK(l->notebook)); i++)
      if (gtk_widget_is_ancestor(it->panel, gtk_notebook_get_nth_page(GTK_NOTEBOOK(l->notebook), i)))
        gtk_notebook_set_current_page(GTK_NOTEBOOK(l->notebook), i);
    l->building = FALSE;
    return;
  }
  GtkWidget *ex = gtk_widget_get_parent(it->panel);
  l->building = TRUE;
  if (GTK_IS_EXPANDER(ex)) gtk_expander_set_expanded(GTK_EXPANDER(ex), TRUE);
  l->building = FALSE;
  graphene_point_t pt;
  GtkWidget *content = gtk_scrolled_window_get_child(GTK_SCROLLED_WINDOW(l->scroller));
  if (ex && gtk_widget_compute_point(ex, content, &GRAPHENE_POINT_INIT(0, 0), &pt))
    gtk_adjustment_set_value(gtk_scrolled_window_get_vadjustment(GTK_SCROLLED_WINDOW(l->scroller)), pt.y);
}

static void kds_layout_measure(GtkWidget *w, GtkOrientation o, int for_size, int *min, int *nat, int *min_base, int *nat_base) {
  KdsLayout *l = KDS_LAYOUT(w);
  *min = *nat = 0;
  *min_base = *nat_base = -1;
  if (l->root) gtk_widget_measure(l->root, o, for_size, min, nat, NULL, NULL);
}

/* Tabs: unless the user dragged the separator, the pinned row gets its
 * natural height for the width, up to 60% of the height. */
static void kds_layout_size_allocate(GtkWidget *w, int width, int height, int baseline) {
  KdsLayout *l = KDS_LAYOUT(w);
  if (!l->root) return;
  if (l->paned) {
    int pos = l->prefs.split;
    if (pos <= 0) {
      int min, nat;
      gtk_widget_measure(l->pinned, GTK_ORIENTATION_VERTICAL, width, &min, &nat, NULL, NULL);
      pos = MIN(nat + 12, height * 6 / 10);
    }
    /* Our own moves (and the paned's clamping while it allocates) are no
     * drag of the user's. */
    l->building = TRUE;
    if (pos != gtk_paned_get_position(GTK_PANED(l->paned))) gtk_paned_set_position(GTK_PANED(l->paned), pos);
  }
  gtk_widget_size_allocate(l->root, &(GtkAllocation){0, 0, width, height}, baseline);
  l->building = FALSE;
}

static void item_free(gpointer p) {
  Item *it = p;
  g_object_unref(it->panel);
  g_free(it->name);
  g_free(it);
}

static void kds_layout_dispose(GObject *o) {
  KdsLayout *l = KDS_LAYOUT(o);
  if (l->items) {
    clear(l);
    g_clear_pointer(&l->items, g_ptr_array_unref);
  }
  G_OBJECT_CLASS(kds_layout_parent_class)->dispose(o);
}

static void kds_layout_class_init(KdsLayoutClass *k) {
  G_OBJECT_CLASS(k)->dispose = kds_layout_dispose;
  GTK_WIDGET_CLASS(k)->measure = kds_layout_measure;
  GTK_WIDGET_CLASS(k)->size_allocate = kds_layout_size_allocate;
}

static void kds_layout_init(KdsLayout *l) {
  l->items = g_ptr_array_new_with_free_func(item_free);
  kds_layout_prefs_default(&l->prefs);
  gtk_widget_set_hexpand(GTK_WIDGET(l), TRUE);
  gtk_widget_set_vexpand(GTK_WIDGET(l), TRUE);
}

KdsLayout *kds_layout_new(void) { return g_object_new(KDS_TYPE_LAYOUT, NULL); }
