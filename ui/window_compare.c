/* The runs the window compares (window_compare.h), and "Compare with a
 * run…" (a folder chooser that adds one). */
#include "window_compare.h"

#include <string.h>

#include "compare.h"
#include "window.h"

typedef struct Run {
  char *dir, *name;
  KdRunLog *log;
} Run;

struct KdsCompare {
  GPtrArray *runs; /* Run* */
  const KdRunLog *current;
  char *current_dir, *current_label;
  int metric;
  KdSmooth smooth;
  int logy;
  KdCompareStore *store;
  int drawn;
  char empty[512];
  /* the last build's inputs (the store borrows them) */
  const KdRunLog *logs[KD_COMPARE_MAX_LINES];
  const char *labels[KD_COMPARE_MAX_LINES];
  const char *metrics[1];
};

static const char *metric_names[] = {"det.cls+det.box", "loss", "eval.AP", "eval.AP50"};
static const char *metric_titles[] = {"detection loss (det.cls + det.box), runs compared", "total loss, runs compared",
                                      "COCO AP (val), runs compared", "COCO AP50 (val), runs compared"};

const char *kds_compare_metric_name(int i) {
  return i >= 0 && i < (int)G_N_ELEMENTS(metric_names) ? metric_names[i] : NULL;
}

static void run_free(gpointer p) {
  Run *r = p;
  kd_runlog_free(r->log);
  g_free(r->dir);
  g_free(r->name);
  g_free(r);
}

KdsCompare *kds_compare_new(void) {
  KdsCompare *c = g_new0(KdsCompare, 1);
  c->runs = g_ptr_array_new_with_free_func(run_free);
  c->store = kd_compare_store_new();
  c->smooth = (KdSmooth){KD_SMOOTH_EMA, 0.9, 50};
  c->logy = 1;
  return c;
}

void kds_compare_free(KdsCompare *c) {
  if (!c) return;
  g_ptr_array_unref(c->runs);
  kd_compare_store_free(c->store);
  g_free(c->current_dir);
  g_free(c->current_label);
  g_free(c);
}

/* Legend names: the directories' names less the prefix they all share,
 * cut after a '-' or '_' (runs/<date>-<name> share their date). */
static void relabel(KdsCompare *c) {
  char *base[KD_COMPARE_MAX_LINES + 1];
  int k = 0;
  if (c->current_dir) base[k++] = g_path_get_basename(c->current_dir);
  for (guint i = 0; i < c->runs->len && k <= KD_COMPARE_MAX_LINES; i++)
    base[k++] = g_path_get_basename(((Run *)g_ptr_array_index(c->runs, i))->dir);
  size_t cut = 0;
  if (k >= 2) {
    size_t common = strlen(base[0]);
    for (int i = 1; i < k; i++) {
      size_t j = 0;
      while (j < common && base[i][j] == base[0][j]) j++;
      common = j;
    }
    while (common > 0 && base[0][common - 1] != '-' && base[0][common - 1] != '_') common--;
    gboolean all_left = TRUE;
    for (int i = 0; i < k; i++) all_left &= strlen(base[i]) > common;
    cut = all_left ? common : 0;
  }
  int at = 0;
  if (c->current_dir) {
    g_free(c->current_label);
    c->current_label = g_strdup_printf("%s (this run)", base[at++] + cut);
  }
  for (guint i = 0; i < c->runs->len; i++, at++) {
    Run *r = g_ptr_array_index(c->runs, i);
    g_free(r->name);
    r->name = g_strdup(base[at] + cut);
  }
  for (int i = 0; i < k; i++) g_free(base[i]);
}

static Run *open_run(const char *dir, GError **e) {
  KdError err;
  KdRunLog *log = kd_runlog_open(dir, &err);
  if (!log || kd_runlog_refresh(log, &err) < 0) {
    kd_runlog_free(log);
    g_set_error(e, g_quark_from_static_string("kds-compare"), 1, "%s", err.msg);
    return NULL;
  }
  Run *r = g_new0(Run, 1);
  r->dir = g_strdup(dir);
  r->log = log;
  return r;
}

static gboolean same_dir(const char *a, const char *b) {
  if (!a || !b) return FALSE;
  char *ca = g_canonicalize_filename(a, NULL), *cb = g_canonicalize_filename(b, NULL);
  gboolean same = !strcmp(ca, cb);
  g_free(ca);
  g_free(cb);
  return same;
}

gboolean kds_compare_set_runs(KdsCompare *c, const char *const *dirs, int n, GError **e) {
  if (n > KD_COMPARE_MAX_LINES - 1) {
    g_set_error(e, g_quark_from_static_string("kds-compare"), 1, "%d runs chosen: at most %d compare on one chart", n,
                KD_COMPARE_MAX_LINES - 1);
    return FALSE;
  }
  GPtrArray *runs = g_ptr_array_new_with_free_func(run_free);
  for (int i = 0; i < n; i++) {
    Run *r = open_run(dirs[i], e);
    if (!r) {
      g_ptr_array_unref(runs);
      return FALSE;
    }
    g_ptr_array_add(runs, r);
  }
  g_ptr_array_unref(c->runs);
  c->runs = runs;
  relabel(c);
  return TRUE;
}

gboolean kds_compare_add(KdsCompare *c, const char *dir, GError **e) {
  for (guint i = 0; i < c->runs->len; i++)
    if (same_dir(((Run *)g_ptr_array_index(c->runs, i))->dir, dir)) return TRUE;
  if ((int)c->runs->len >= KD_COMPARE_MAX_LINES - 1) {
    g_set_error(e, g_quark_from_static_string("kds-compare"), 1, "at most %d runs compare on one chart", KD_COMPARE_MAX_LINES - 1);
    return FALSE;
  }
  Run *r = open_run(dir, e);
  if (!r) return FALSE;
  g_ptr_array_add(c->runs, r);
  relabel(c);
  return TRUE;
}

int kds_compare_count(const KdsCompare *c) { return c ? (int)c->runs->len : 0; }
const char *kds_compare_dir(const KdsCompare *c, int i) { return ((Run *)g_ptr_array_index(c->runs, i))->dir; }
const char *kds_compare_label(const KdsCompare *c, int i) { return ((Run *)g_ptr_array_index(c->runs, i))->name; }

void kds_compare_set_current(KdsCompare *c, const KdRunLog *log, const char *dir) {
  c->current = log;
  g_free(c->current_dir);
  c->current_dir = log && dir ? g_strdup(dir) : NULL;
  relabel(c);
}

void kds_compare_set_metric(KdsCompare *c, int i) {
  if (kds_compare_metric_name(i)) c->metric = i;
}
int kds_compare_metric(const KdsCompare *c) { return c->metric; }

void kds_compare_set_style(KdsCompare *c, const KdSmooth *smooth, int logy) {
  c->smooth = *smooth;
  c->logy = logy;
}

gboolean kds_compare_refresh(KdsCompare *c) {
  gboolean grew = FALSE;
  for (guint i = 0; i < c->runs->len; i++) grew |= kd_runlog_refresh(((Run *)g_ptr_array_index(c->runs, i))->log, NULL) > 0;
  return grew;
}

static gboolean has_series(const KdRunLog *log, const char *metric) {
  double *x, *y;
  size_t n;
  KdError err;
  if (kd_compare_series(log, metric, &x, &y, &n, &err)) return FALSE;
  g_free(x), g_free(y);
  return TRUE;
}

gboolean kds_compare_build(KdsCompare *c, KdFigPanel *out) {
  const char *metric = metric_names[c->metric];
  int n = 0, missing = 0;
  gboolean skip_current = FALSE;
  for (guint i = 0; i < c->runs->len; i++) skip_current |= same_dir(((Run *)g_ptr_array_index(c->runs, i))->dir, c->current_dir);
  if (c->current && !skip_current) {
    if (has_series(c->current, metric)) c->logs[n] = c->current, c->labels[n++] = c->current_label;
    else missing++;
  }
  for (guint i = 0; i < c->runs->len && n < KD_COMPARE_MAX_LINES; i++) {
    Run *r = g_ptr_array_index(c->runs, i);
    if (has_series(r->log, metric)) c->logs[n] = r->log, c->labels[n++] = r->name;
    else missing++;
  }
  c->drawn = n;
  if (!c->runs->len) {
    g_snprintf(c->empty, sizeof c->empty, "no run compared: pick runs in the run browser (Ctrl+O) and Compare");
    return FALSE;
  }
  if (!n) {
    g_snprintf(c->empty, sizeof c->empty, "none of the %d runs compared has logged %s yet", missing, metric);
    return FALSE;
  }
  c->metrics[0] = metric;
  KdCompare spec = {.logs = c->logs, .labels = c->labels, .nruns = n, .metrics = c->metrics, .nmetrics = 1,
                    .smooth = c->smooth, .logy = c->logy && strncmp(metric, "eval.", 5), .title = metric_titles[c->metric]};
  KdError err;
  if (kd_compare_build(&spec, c->store, out, &err)) {
    g_snprintf(c->empty, sizeof c->empty, "%s", err.msg);
    return FALSE;
  }
  return TRUE;
}

int kds_compare_drawn(const KdsCompare *c) { return c->drawn; }
const char *kds_compare_empty_text(const KdsCompare *c) { return c->empty; }

/* ---- "Compare with a run…" ---- */

static void on_response(GtkNativeDialog *d, int response, gpointer user) {
  KdsWindow *w = user;
  if (response == GTK_RESPONSE_ACCEPT) {
    GFile *f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(d));
    char *path = f ? g_file_get_path(f) : NULL;
    GError *e = NULL;
    if (path && !kds_window_set_reference(w, path, &e)) {
      kds_window_toast(w, e->message);
      g_error_free(e);
    }
    g_free(path);
    if (f) g_object_unref(f);
  }
  g_object_unref(d);
}

void kds_window_compare_dialog(KdsWindow *w) {
  GtkFileChooserNative *d = gtk_file_chooser_native_new("Compare with a run (its directory)", GTK_WINDOW(w),
                                                        GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, "_Compare", "_Cancel");
  g_signal_connect(d, "response", G_CALLBACK(on_response), w);
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(d));
}
