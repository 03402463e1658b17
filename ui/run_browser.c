/* The run browser (run_browser.h): a column view over a list of rows, one
 * per run directory, each row a small GObject holding the run's summary.
 * A refresh re-reads only the runs whose logs or lock changed and tells
 * their cells through the row's "stamp" property, so the selection and the
 * sort survive it. */
#include "run_browser.h"

#include <math.h>
#include <string.h>

#include "run_browser_hparams.h"
#include "window.h"

#define REFRESH_S 2

/* ---- a row ---- */

#define KDS_TYPE_RUN_ROW (kds_run_row_get_type())
G_DECLARE_FINAL_TYPE(KdsRunRow, kds_run_row, KDS, RUN_ROW, GObject)

struct _KdsRunRow {
  GObject parent;
  KdRunSummary s;
  guint stamp; /* bumped when s is re-read */
};

enum { ROW_PROP_0, ROW_PROP_STAMP, ROW_N_PROPS };
static GParamSpec *row_props[ROW_N_PROPS];

G_DEFINE_FINAL_TYPE(KdsRunRow, kds_run_row, G_TYPE_OBJECT)

static void kds_run_row_get_property(GObject *o, guint id, GValue *v, GParamSpec *ps) {
  if (id == ROW_PROP_STAMP) g_value_set_uint(v, KDS_RUN_ROW(o)->stamp);
  else G_OBJECT_WARN_INVALID_PROPERTY_ID(o, id, ps);
}

static void kds_run_row_finalize(GObject *o) {
  kd_run_summary_clear(&KDS_RUN_ROW(o)->s);
  G_OBJECT_CLASS(kds_run_row_parent_class)->finalize(o);
}

static void kds_run_row_class_init(KdsRunRowClass *k) {
  G_OBJECT_CLASS(k)->finalize = kds_run_row_finalize;
  G_OBJECT_CLASS(k)->get_property = kds_run_row_get_property;
  /* "stamp": changes when the row's summary is re-read (cells redraw). */
  row_props[ROW_PROP_STAMP] = g_param_spec_uint("stamp", "Stamp", "Bumped on each re-read", 0, G_MAXUINT, 0,
                                                G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties(G_OBJECT_CLASS(k), ROW_N_PROPS, row_props);
}

static void kds_run_row_init(KdsRunRow *r) { (void)r; }

/* Takes s over (the row clears it). */
static KdsRunRow *row_new(KdRunSummary *s) {
  KdsRunRow *r = g_object_new(KDS_TYPE_RUN_ROW, NULL);
  r->s = *s;
  memset(s, 0, sizeof *s);
  return r;
}

/* Re-reads the row's run; its cells follow. */
static gboolean row_update(KdsRunRow *r) {
  KdError err;
  if (kd_run_summary_update(&r->s, &err)) return FALSE;
  r->stamp++;
  g_object_notify_by_pspec(G_OBJECT(r), row_props[ROW_PROP_STAMP]);
  return TRUE;
}

/* ---- the columns ---- */

typedef enum { COL_RUN, COL_METHODS, COL_SEED, COL_STEPS, COL_LR, COL_WEIGHTS, COL_DONE, COL_AP, COL_STATUS, NCOLS } Col;
static const struct {
  const char *id, *title, *tooltip;
  gboolean expand, numeric;
} cols[NCOLS] = {
    {"run", "Run", "The run directory's name", TRUE, FALSE},
    {"methods", "Method(s)", "distill.methods (none: a detector trained alone)", FALSE, FALSE},
    {"seed", "Seed", "train.seed", FALSE, TRUE},
    {"steps", "Steps", "train.steps", FALSE, TRUE},
    {"lr", "lr", "train.lr (with the live changes logged)", FALSE, TRUE},
    {"weights", "Weights", "Each method's main weight (<method>.weight), as in effect now", TRUE, FALSE},
    {"done", "Done", "Steps done", FALSE, TRUE},
    {"ap", "AP (%)", "The last COCO AP@[.5:.95] on the val split, in percent", FALSE, TRUE},
    {"status", "Status", "From events.jsonl and whether a process holds the run's lock", FALSE, FALSE},
};

static void cell_text(const KdRunSummary *s, Col c, char *buf, gsize len) {
  switch (c) {
  case COL_RUN: g_snprintf(buf, len, "%s", s->name); break;
  case COL_METHODS: g_snprintf(buf, len, "%s", s->distill ? s->methods : "— (train)"); break;
  case COL_SEED: g_snprintf(buf, len, "%d", s->seed); break;
  case COL_STEPS: g_snprintf(buf, len, "%d", s->steps_total); break;
  case COL_LR: g_snprintf(buf, len, "%g", s->lr); break;
  case COL_WEIGHTS: kd_run_summary_weights(s, buf, len); break;
  case COL_DONE: g_snprintf(buf, len, "%d", s->steps_done); break;
  case COL_AP:
    if (isnan(s->ap)) g_snprintf(buf, len, "—");
    else g_snprintf(buf, len, "%.1f", s->ap);
    break;
  default: g_snprintf(buf, len, "%s", kd_run_status_label(s->status)); break;
  }
}

static double cell_num(const KdRunSummary *s, Col c) {
  switch (c) {
  case COL_SEED: return s->seed;
  case COL_STEPS: return s->steps_total;
  case COL_LR: return s->lr;
  case COL_DONE: return s->steps_done;
  case COL_AP: return isnan(s->ap) ? -1 : s->ap; /* no evaluation sorts below AP 0 */
  default: return s->status;
  }
}

static int compare_rows(gconstpointer a, gconstpointer b, gpointer col) {
  const KdRunSummary *x = &((const KdsRunRow *)a)->s, *y = &((const KdsRunRow *)b)->s;
  Col c = GPOINTER_TO_INT(col);
  int r;
  if (cols[c].numeric || c == COL_STATUS) {
    double u = cell_num(x, c), v = cell_num(y, c);
    r = u < v ? -1 : u > v ? 1 : 0;
  } else {
    char p[512], q[512];
    cell_text(x, c, p, sizeof p);
    cell_text(y, c, q, sizeof q);
    r = g_utf8_collate(p, q);
  }
  return r ? r : strcmp(x->name, y->name); /* ties keep the names' order */
}

/* ---- the browser ---- */

struct _KdsRunBrowser {
  GtkWindow parent;
  KdsWindow *main; /* weak */
  char *folder;
  GListStore *store;
  GtkSortListModel *sorted;
  GtkMultiSelection *selection;
  GtkWidget *view, *folder_label, *count_label, *open_btn, *resume_btn, *compare_btn, *hparam_dd;
  GtkColumnViewColumn *columns[NCOLS];
  KdsPanel *hparam_panel;
  GtkStringList *hparam_keys;
  KdHparamStore *hstore;
  char hparam[128];
  char hparam_empty[512];
  guint timer;
};

G_DEFINE_FINAL_TYPE(KdsRunBrowser, kds_run_browser, GTK_TYPE_WINDOW)

static GQuark quark(void) { return g_quark_from_static_string("kds-run-browser"); }

static void update_cell(GObject *row, GParamSpec *ps, GtkLabel *label) {
  (void)ps;
  const KdRunSummary *s = &KDS_RUN_ROW(row)->s;
  Col c = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(label), "kds-col"));
  char buf[512];
  cell_text(s, c, buf, sizeof buf);
  gtk_label_set_text(label, buf);
  if (c == COL_STATUS || c == COL_RUN) gtk_widget_set_tooltip_text(GTK_WIDGET(label), c == COL_RUN ? s->dir : s->detail);
}

static void on_setup(GtkSignalListItemFactory *f, GtkListItem *item, gpointer col) {
  (void)f;
  GtkWidget *l = gtk_label_new(NULL);
  gtk_label_set_xalign(GTK_LABEL(l), cols[GPOINTER_TO_INT(col)].numeric ? 1.0f : 0.0f);
  gtk_label_set_ellipsize(GTK_LABEL(l), PANGO_ELLIPSIZE_END);
  g_object_set_data(G_OBJECT(l), "kds-col", col);
  gtk_list_item_set_child(item, l);
}

static void on_bind(GtkSignalListItemFactory *f, GtkListItem *item, gpointer col) {
  (void)f, (void)col;
  GObject *row = gtk_list_item_get_item(item);
  GtkWidget *l = gtk_list_item_get_child(item);
  update_cell(row, NULL, GTK_LABEL(l));
  gulong id = g_signal_connect(row, "notify::stamp", G_CALLBACK(update_cell), l);
  g_object_set_data(G_OBJECT(l), "kds-handler", GSIZE_TO_POINTER(id));
}

static void on_unbind(GtkSignalListItemFactory *f, GtkListItem *item, gpointer col) {
  (void)f, (void)col;
  GObject *row = gtk_list_item_get_item(item);
  GtkWidget *l = gtk_list_item_get_child(item);
  gulong id = GPOINTER_TO_SIZE(g_object_get_data(G_OBJECT(l), "kds-handler"));
  if (row && id) g_signal_handler_disconnect(row, id);
  g_object_set_data(G_OBJECT(l), "kds-handler", NULL);
}

int kds_run_browser_n_rows(KdsRunBrowser *b) { return (int)g_list_model_get_n_items(G_LIST_MODEL(b->sorted)); }

static KdsRunRow *row_at(KdsRunBrowser *b, int i) {
  KdsRunRow *r = g_list_model_get_item(G_LIST_MODEL(b->sorted), (guint)i);
  if (r) g_object_unref(r); /* the store keeps it */
  return r;
}

const KdRunSummary *kds_run_browser_row(KdsRunBrowser *b, int i) {
  KdsRunRow *r = i >= 0 && i < kds_run_browser_n_rows(b) ? row_at(b, i) : NULL;
  return r ? &r->s : NULL;
}

/* The selected rows in the order shown (array of KdsRunRow*, borrowed). */
static GPtrArray *selected_rows(KdsRunBrowser *b) {
  GPtrArray *a = g_ptr_array_new();
  for (int i = 0; i < kds_run_browser_n_rows(b); i++)
    if (gtk_selection_model_is_selected(GTK_SELECTION_MODEL(b->selection), (guint)i)) g_ptr_array_add(a, row_at(b, i));
  return a;
}

int kds_run_browser_n_selected(KdsRunBrowser *b) {
  GPtrArray *a = selected_rows(b);
  int n = (int)a->len;
  g_ptr_array_unref(a);
  return n;
}

/* ---- the hyperparameter view ---- */

/* The runs it draws: the selection, else every run. */
static int hparam_runs(KdsRunBrowser *b, const KdRunSummary **runs, int max) {
  GPtrArray *a = selected_rows(b);
  int n = 0;
  if (a->len)
    for (guint i = 0; i < a->len && n < max; i++) runs[n++] = &((KdsRunRow *)g_ptr_array_index(a, i))->s;
  else
    for (int i = 0; i < kds_run_browser_n_rows(b) && n < max; i++) runs[n++] = &row_at(b, i)->s;
  g_ptr_array_unref(a);
  return n;
}

static gboolean build_hparams(gpointer user, KdFigPanel *out) {
  KdsRunBrowser *b = user;
  const KdRunSummary *runs[KD_HPARAM_MAX_RUNS];
  int n = hparam_runs(b, runs, KD_HPARAM_MAX_RUNS), left = 0;
  KdError err;
  if (!n || !b->hparam[0]) {
    g_snprintf(b->hparam_empty, sizeof b->hparam_empty, "no run to draw");
    return FALSE;
  }
  if (kd_hparam_build((const KdRunSummary *const *)runs, n, b->hparam, b->hstore, out, &left, &err)) {
    g_snprintf(b->hparam_empty, sizeof b->hparam_empty, "%s", err.msg);
    return FALSE;
  }
  return TRUE;
}

/* The setting list follows the runs drawn; the choice stays when it can. */
static void update_hparam_keys(KdsRunBrowser *b) {
  const KdRunSummary *runs[KD_HPARAM_MAX_RUNS];
  const char *keys[KD_HPARAM_MAX_KEYS + 1];
  int n = hparam_runs(b, runs, KD_HPARAM_MAX_RUNS);
  int k = kd_hparam_keys((const KdRunSummary *const *)runs, n, keys, KD_HPARAM_MAX_KEYS);
  guint old = g_list_model_get_n_items(G_LIST_MODEL(b->hparam_keys));
  gboolean same = old == (guint)k;
  for (int i = 0; same && i < k; i++) same = !strcmp(gtk_string_list_get_string(b->hparam_keys, (guint)i), keys[i]);
  if (!same) {
    keys[k] = NULL;
    char keep[128];
    g_strlcpy(keep, b->hparam, sizeof keep);
    gtk_string_list_splice(b->hparam_keys, 0, old, keys);
    int at = 0;
    for (int i = 0; i < k; i++)
      if (!strcmp(keys[i], keep)) at = i;
    g_strlcpy(b->hparam, k ? keys[at] : "", sizeof b->hparam);
    gtk_drop_down_set_selected(GTK_DROP_DOWN(b->hparam_dd), k ? (guint)at : GTK_INVALID_LIST_POSITION);
  }
  gtk_widget_queue_resize(GTK_WIDGET(b->hparam_panel));
}

static void on_hparam(GObject *o, GParamSpec *ps, KdsRunBrowser *b) {
  (void)ps;
  guint i = gtk_drop_down_get_selected(GTK_DROP_DOWN(o));
  const char *key = i != GTK_INVALID_LIST_POSITION ? gtk_string_list_get_string(b->hparam_keys, i) : NULL;
  if (key) g_strlcpy(b->hparam, key, sizeof b->hparam);
  gtk_widget_queue_resize(GTK_WIDGET(b->hparam_panel));
}

gboolean kds_run_browser_set_hparam(KdsRunBrowser *b, const char *key) {
  for (guint i = 0; i < g_list_model_get_n_items(G_LIST_MODEL(b->hparam_keys)); i++)
    if (!strcmp(gtk_string_list_get_string(b->hparam_keys, i), key)) {
      gtk_drop_down_set_selected(GTK_DROP_DOWN(b->hparam_dd), i);
      g_strlcpy(b->hparam, key, sizeof b->hparam);
      gtk_widget_queue_resize(GTK_WIDGET(b->hparam_panel));
      return TRUE;
    }
  return FALSE;
}

KdsPanel *kds_run_browser_hparam_panel(KdsRunBrowser *b) { return b->hparam_panel; }

/* ---- selection, buttons ---- */

static void update_buttons(KdsRunBrowser *b) {
  GPtrArray *a = selected_rows(b);
  const KdRunSummary *first = a->len ? &((KdsRunRow *)g_ptr_array_index(a, 0))->s : NULL;
  gtk_widget_set_sensitive(b->open_btn, a->len == 1);
  gtk_widget_set_sensitive(b->resume_btn, a->len == 1 && kd_run_summary_resumable(first));
  gtk_widget_set_sensitive(b->compare_btn, a->len >= 1);
  char buf[256];
  g_snprintf(buf, sizeof buf, "%d runs, %u selected", kds_run_browser_n_rows(b), a->len);
  gtk_label_set_text(GTK_LABEL(b->count_label), buf);
  g_ptr_array_unref(a);
}

static void on_selection(GtkSelectionModel *m, guint pos, guint n, KdsRunBrowser *b) {
  (void)m, (void)pos, (void)n;
  update_buttons(b);
  update_hparam_keys(b);
}

void kds_run_browser_select(KdsRunBrowser *b, const int *rows, int n) {
  GtkBitset *sel = gtk_bitset_new_empty(), *mask = gtk_bitset_new_range(0, (guint)kds_run_browser_n_rows(b));
  for (int i = 0; i < n; i++) gtk_bitset_add(sel, (guint)rows[i]);
  gtk_selection_model_set_selection(GTK_SELECTION_MODEL(b->selection), sel, mask);
  gtk_bitset_unref(sel);
  gtk_bitset_unref(mask);
}

gboolean kds_run_browser_sort(KdsRunBrowser *b, const char *column, gboolean descending) {
  for (int c = 0; c < NCOLS; c++)
    if (!strcmp(cols[c].id, column)) {
      gtk_column_view_sort_by_column(GTK_COLUMN_VIEW(b->view), b->columns[c],
                                     descending ? GTK_SORT_DESCENDING : GTK_SORT_ASCENDING);
      return TRUE;
    }
  return FALSE;
}

static gboolean need_main(KdsRunBrowser *b, GError **e) {
  if (b->main) return TRUE;
  g_set_error(e, quark(), 1, "the main window is closed");
  return FALSE;
}

gboolean kds_run_browser_compare(KdsRunBrowser *b, GError **e) {
  if (!need_main(b, e)) return FALSE;
  GPtrArray *a = selected_rows(b);
  const char **dirs = g_new0(const char *, a->len + 1);
  for (guint i = 0; i < a->len; i++) dirs[i] = ((KdsRunRow *)g_ptr_array_index(a, i))->s.dir;
  gboolean ok = a->len > 0 && kds_window_set_compare(b->main, dirs, (int)a->len, e);
  if (!a->len) g_set_error(e, quark(), 1, "select the runs to compare");
  g_free(dirs);
  g_ptr_array_unref(a);
  return ok;
}

static const KdRunSummary *first_selected(KdsRunBrowser *b, GError **e) {
  GPtrArray *a = selected_rows(b);
  const KdRunSummary *s = a->len ? &((KdsRunRow *)g_ptr_array_index(a, 0))->s : NULL;
  g_ptr_array_unref(a);
  if (!s) g_set_error(e, quark(), 1, "select a run");
  return s;
}

gboolean kds_run_browser_open(KdsRunBrowser *b, GError **e) {
  const KdRunSummary *s = need_main(b, e) ? first_selected(b, e) : NULL;
  return s && kds_window_open_run(b->main, s->dir, e);
}

gboolean kds_run_browser_resume(KdsRunBrowser *b, GError **e) {
  const KdRunSummary *s = need_main(b, e) ? first_selected(b, e) : NULL;
  if (s && !kd_run_summary_resumable(s)) {
    g_set_error(e, quark(), 1, "%s is %s: only a stopped or failed run with a checkpoint resumes", s->name,
                kd_run_status_label(s->status));
    return FALSE;
  }
  return s && kds_window_resume_run(b->main, s->dir, e);
}

static void run_button(KdsRunBrowser *b, gboolean (*fn)(KdsRunBrowser *, GError **)) {
  GError *e = NULL;
  if (!fn(b, &e)) {
    gtk_label_set_text(GTK_LABEL(b->count_label), e->message);
    g_error_free(e);
    return;
  }
  if (b->main) gtk_window_present(GTK_WINDOW(b->main));
}

static void on_open(GtkButton *x, KdsRunBrowser *b) { (void)x, run_button(b, kds_run_browser_open); }
static void on_resume(GtkButton *x, KdsRunBrowser *b) { (void)x, run_button(b, kds_run_browser_resume); }
static void on_compare(GtkButton *x, KdsRunBrowser *b) { (void)x, run_button(b, kds_run_browser_compare); }
static void on_refresh(GtkButton *x, KdsRunBrowser *b) { (void)x, kds_run_browser_refresh(b); }

static void on_activate(GtkColumnView *v, guint pos, KdsRunBrowser *b) {
  (void)v;
  int row = (int)pos;
  kds_run_browser_select(b, &row, 1);
  run_button(b, kds_run_browser_open);
}

/* ---- the folder ---- */


/* The selected runs' directories, to select them again after a re-sort
 * (a sort model re-sorting drops the selection model's positions). */
static GPtrArray *selected_dirs(KdsRunBrowser *b) {
  GPtrArray *rows = selected_rows(b), *dirs = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < rows->len; i++) g_ptr_array_add(dirs, g_strdup(((KdsRunRow *)g_ptr_array_index(rows, i))->s.dir));
  g_ptr_array_unref(rows);
  return dirs;
}

static void reselect(KdsRunBrowser *b, GPtrArray *dirs) {
  int *rows = g_new0(int, dirs->len + 1), n = 0;
  for (int i = 0; i < kds_run_browser_n_rows(b); i++)
    for (guint k = 0; k < dirs->len; k++)
      if (!strcmp(row_at(b, i)->s.dir, g_ptr_array_index(dirs, k))) rows[n++] = i;
  kds_run_browser_select(b, rows, n);
  g_free(rows);
}

void kds_run_browser_refresh(KdsRunBrowser *b) {
  char **dirs;
  int n;
  KdError err;
  if (!b->folder || kd_run_list(b->folder, &dirs, &n, &err)) return;
  GHashTable *rows = g_hash_table_new(g_str_hash, g_str_equal); /* dir -> row, of rows not seen yet */
  for (guint i = 0; i < g_list_model_get_n_items(G_LIST_MODEL(b->store)); i++) {
    KdsRunRow *r = g_list_model_get_item(G_LIST_MODEL(b->store), i);
    g_hash_table_insert(rows, r->s.dir, r);
    g_object_unref(r);
  }
  GPtrArray *sel = selected_dirs(b);
  gboolean changed = FALSE;
  for (int i = 0; i < n; i++) {
    KdsRunRow *r = g_hash_table_lookup(rows, dirs[i]);
    KdRunSummary s = {0};
    if (r) {
      g_hash_table_remove(rows, dirs[i]);
      /* Cheap first: a run whose logs and lock did not move keeps its row. */
      if (kd_run_summary_stamp(r->s.dir) != r->s.mtime_ns && row_update(r)) changed = TRUE;
    } else if (kd_run_summary_read(dirs[i], &s, &err) == 0) {
      KdsRunRow *nr = row_new(&s);
      g_list_store_append(b->store, nr);
      g_object_unref(nr);
      changed = TRUE;
    }
  }
  kd_run_list_free(dirs);
  GHashTableIter it;
  gpointer key, val;
  g_hash_table_iter_init(&it, rows);
  while (g_hash_table_iter_next(&it, &key, &val)) { /* runs gone from the folder */
    guint pos;
    if (g_list_store_find(b->store, val, &pos)) g_list_store_remove(b->store, pos), changed = TRUE;
  }
  g_hash_table_unref(rows);
  if (changed) {
    GtkSorter *s = gtk_column_view_get_sorter(GTK_COLUMN_VIEW(b->view));
    if (s) gtk_sorter_changed(s, GTK_SORTER_CHANGE_DIFFERENT);
    reselect(b, sel);
    update_buttons(b);
    update_hparam_keys(b);
  }
  g_ptr_array_unref(sel);
}

static gboolean on_timer(gpointer user) {
  kds_run_browser_refresh(user);
  return G_SOURCE_CONTINUE;
}

gboolean kds_run_browser_set_folder(KdsRunBrowser *b, const char *folder, GError **e) {
  KdRunSummary *list;
  int n, skipped;
  KdError err;
  if (kd_run_scan(folder, &list, &n, &skipped, &err)) {
    g_set_error(e, quark(), 1, "%s", err.msg);
    return FALSE;
  }
  if (!n) {
    kd_run_summaries_free(list, n);
    g_set_error(e, quark(), 1, "%s: no run directory in it (a run directory holds config.json and events.jsonl)%s", folder,
                skipped ? "; some could not be read" : "");
    return FALSE;
  }
  g_list_store_remove_all(b->store);
  for (int i = 0; i < n; i++) {
    KdsRunRow *r = row_new(&list[i]);
    g_list_store_append(b->store, r);
    g_object_unref(r);
  }
  kd_run_summaries_free(list, n);
  g_free(b->folder);
  b->folder = g_strdup(folder);
  char title[600];
  g_snprintf(title, sizeof title, "Runs — %s", folder);
  gtk_label_set_text(GTK_LABEL(b->folder_label), title);
  gtk_window_set_title(GTK_WINDOW(b), title);
  update_buttons(b);
  update_hparam_keys(b);
  return TRUE;
}

const char *kds_run_browser_folder(KdsRunBrowser *b) { return b->folder; }

static void on_folder_chosen(GtkNativeDialog *d, int response, gpointer user) {
  KdsRunBrowser *b = user;
  if (response == GTK_RESPONSE_ACCEPT) {
    GFile *f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(d));
    char *path = f ? g_file_get_path(f) : NULL;
    GError *e = NULL;
    if (path && !kds_run_browser_set_folder(b, path, &e)) {
      gtk_label_set_text(GTK_LABEL(b->count_label), e->message);
      g_error_free(e);
    }
    g_free(path);
    if (f) g_object_unref(f);
  }
  g_object_unref(d);
}

static void on_folder(GtkButton *x, KdsRunBrowser *b) {
  (void)x;
  GtkFileChooserNative *d = gtk_file_chooser_native_new("A folder of runs", GTK_WINDOW(b), GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER,
                                                        "_Open", "_Cancel");
  g_signal_connect(d, "response", G_CALLBACK(on_folder_chosen), b);
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(d));
}

/* ---- construction ---- */

static GtkWidget *button(const char *label, const char *tip, GCallback cb, KdsRunBrowser *b) {
  GtkWidget *w = gtk_button_new_with_mnemonic(label);
  gtk_widget_set_tooltip_text(w, tip);
  g_signal_connect(w, "clicked", cb, b);
  return w;
}

static void add_columns(KdsRunBrowser *b) {
  for (int c = 0; c < NCOLS; c++) {
    GtkListItemFactory *f = gtk_signal_list_item_factory_new();
    g_signal_connect(f, "setup", G_CALLBACK(on_setup), GINT_TO_POINTER(c));
    g_signal_connect(f, "bind", G_CALLBACK(on_bind), GINT_TO_POINTER(c));
    g_signal_connect(f, "unbind", G_CALLBACK(on_unbind), GINT_TO_POINTER(c));
    GtkColumnViewColumn *col = gtk_column_view_column_new(cols[c].title, f);
    gtk_column_view_column_set_expand(col, cols[c].expand);
    gtk_column_view_column_set_resizable(col, TRUE);
    GtkSorter *s = GTK_SORTER(gtk_custom_sorter_new(compare_rows, GINT_TO_POINTER(c), NULL));
    gtk_column_view_column_set_sorter(col, s);
    g_object_unref(s);
    gtk_column_view_append_column(GTK_COLUMN_VIEW(b->view), col);
    b->columns[c] = col;
    g_object_unref(col);
  }
}

static GtkWidget *build_table(KdsRunBrowser *b) {
  b->store = g_list_store_new(KDS_TYPE_RUN_ROW);
  b->view = gtk_column_view_new(NULL);
  add_columns(b);
  GtkSorter *vs = gtk_column_view_get_sorter(GTK_COLUMN_VIEW(b->view));
  b->sorted = gtk_sort_list_model_new(G_LIST_MODEL(g_object_ref(b->store)), g_object_ref(vs));
  b->selection = gtk_multi_selection_new(G_LIST_MODEL(g_object_ref(b->sorted)));
  gtk_column_view_set_model(GTK_COLUMN_VIEW(b->view), GTK_SELECTION_MODEL(b->selection));
  gtk_column_view_set_show_column_separators(GTK_COLUMN_VIEW(b->view), TRUE);
  g_signal_connect(b->selection, "selection-changed", G_CALLBACK(on_selection), b);
  g_signal_connect(b->view, "activate", G_CALLBACK(on_activate), b);
  gtk_column_view_sort_by_column(GTK_COLUMN_VIEW(b->view), b->columns[COL_RUN], GTK_SORT_ASCENDING);
  GtkWidget *sw = gtk_scrolled_window_new();
  gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(sw), b->view);
  gtk_widget_set_vexpand(sw, TRUE);
  return sw;
}

static GtkWidget *build_hparams_view(KdsRunBrowser *b) {
  b->hstore = kd_hparam_store_new();
  b->hparam_keys = gtk_string_list_new(NULL);
  b->hparam_dd = gtk_drop_down_new(G_LIST_MODEL(b->hparam_keys), NULL);
  gtk_widget_set_tooltip_text(b->hparam_dd, "The setting on the x axis (numeric settings that differ between the runs, "
                                            "lr, seed and the methods' weights first)");
  g_signal_connect(b->hparam_dd, "notify::selected", G_CALLBACK(on_hparam), b);
  GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  GtkWidget *l = gtk_label_new("Hyperparameters: last AP against");
  gtk_box_append(GTK_BOX(row), l);
  gtk_box_append(GTK_BOX(row), b->hparam_dd);
  gtk_box_append(GTK_BOX(row), gtk_label_new("(the selected runs; all when none is)"));
  b->hparam_panel = kds_panel_new_custom("hyperparameters", build_hparams, b, "no run has an evaluation yet");
  GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 4);
  gtk_widget_set_margin_start(box, 8), gtk_widget_set_margin_end(box, 8), gtk_widget_set_margin_top(box, 6);
  gtk_box_append(GTK_BOX(box), row);
  GtkWidget *sw = gtk_scrolled_window_new();
  gtk_scrolled_window_set_policy(GTK_SCROLLED_WINDOW(sw), GTK_POLICY_NEVER, GTK_POLICY_AUTOMATIC);
  gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(sw), GTK_WIDGET(b->hparam_panel));
  gtk_widget_set_vexpand(sw, TRUE);
  gtk_box_append(GTK_BOX(box), sw);
  return box;
}

static void kds_run_browser_init(KdsRunBrowser *b) {
  gtk_window_set_title(GTK_WINDOW(b), "Runs");
  gtk_window_set_default_size(GTK_WINDOW(b), 1100, 760);
  GtkWidget *header = gtk_header_bar_new();
  b->folder_label = gtk_label_new("Runs");
  gtk_label_set_ellipsize(GTK_LABEL(b->folder_label), PANGO_ELLIPSIZE_START);
  gtk_widget_add_css_class(b->folder_label, "title");
  gtk_header_bar_set_title_widget(GTK_HEADER_BAR(header), b->folder_label);
  gtk_header_bar_pack_start(GTK_HEADER_BAR(header), button("_Folder…", "Browse another folder of runs", G_CALLBACK(on_folder), b));
  gtk_header_bar_pack_end(GTK_HEADER_BAR(header), button("_Refresh", "Read the runs again (also every 2 s)", G_CALLBACK(on_refresh), b));
  gtk_window_set_titlebar(GTK_WINDOW(b), header);
  GtkWidget *actions = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  b->compare_btn = button("_Compare", "Draw the selected runs on one chart in the main window (Ctrl+click or Shift+click "
                                      "selects several)", G_CALLBACK(on_compare), b);
  b->open_btn = button("_Open", "Open the selected run in the main window: followed live if a process runs it, else "
                                "replayed", G_CALLBACK(on_open), b);
  b->resume_btn = button("Re_sume", "Continue the selected stopped run from its last checkpoint, in the main window",
                         G_CALLBACK(on_resume), b);
  b->count_label = gtk_label_new("");
  gtk_label_set_xalign(GTK_LABEL(b->count_label), 0);
  gtk_label_set_ellipsize(GTK_LABEL(b->count_label), PANGO_ELLIPSIZE_END);
  gtk_widget_set_hexpand(b->count_label, TRUE);
  gtk_box_append(GTK_BOX(actions), b->compare_btn);
  gtk_box_append(GTK_BOX(actions), b->open_btn);
  gtk_box_append(GTK_BOX(actions), b->resume_btn);
  gtk_box_append(GTK_BOX(actions), b->count_label);
  GtkWidget *upper = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
  gtk_box_append(GTK_BOX(upper), build_table(b));
  gtk_box_append(GTK_BOX(upper), actions);
  GtkWidget *paned = gtk_paned_new(GTK_ORIENTATION_VERTICAL);
  gtk_paned_set_start_child(GTK_PANED(paned), upper);
  gtk_paned_set_end_child(GTK_PANED(paned), build_hparams_view(b));
  gtk_paned_set_position(GTK_PANED(paned), 380);
  gtk_widget_set_margin_start(upper, 8);
  gtk_widget_set_margin_end(upper, 8);
  gtk_widget_set_margin_top(upper, 8);
  gtk_window_set_child(GTK_WINDOW(b), paned);
  b->timer = g_timeout_add_seconds(REFRESH_S, on_timer, b);
}

static void kds_run_browser_dispose(GObject *o) {
  KdsRunBrowser *b = KDS_RUN_BROWSER(o);
  if (b->timer) g_source_remove(b->timer), b->timer = 0;
  if (b->main) g_object_remove_weak_pointer(G_OBJECT(b->main), (gpointer *)&b->main), b->main = NULL;
  G_OBJECT_CLASS(kds_run_browser_parent_class)->dispose(o);
}

static void kds_run_browser_finalize(GObject *o) {
  KdsRunBrowser *b = KDS_RUN_BROWSER(o);
  g_clear_object(&b->selection);
  g_clear_object(&b->sorted);
  g_clear_object(&b->store);
  kd_hparam_store_free(b->hstore);
  g_free(b->folder);
  G_OBJECT_CLASS(kds_run_browser_parent_class)->finalize(o);
}

static void kds_run_browser_class_init(KdsRunBrowserClass *k) {
  G_OBJECT_CLASS(k)->dispose = kds_run_browser_dispose;
  G_OBJECT_CLASS(k)->finalize = kds_run_browser_finalize;
}

KdsRunBrowser *kds_run_browser_new(KdsWindow *main) {
  KdsRunBrowser *b = g_object_new(KDS_TYPE_RUN_BROWSER, NULL);
  b->main = main;
  if (main) {
    g_object_add_weak_pointer(G_OBJECT(main), (gpointer *)&b->main);
    gtk_window_set_transient_for(GTK_WINDOW(b), GTK_WINDOW(main));
    gtk_window_set_destroy_with_parent(GTK_WINDOW(b), TRUE);
  }
  return b;
}
