#include "control_panel.h"

#include "wheel_guard.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define SLIDER_STEPS 1000.0

typedef struct Row {
  const KdParamDesc *d;
  GtkWidget *scale, *spin, *reset;
  double lo, hi; /* slider range in value space (positive for log) */
  guint pending; /* debounce source */
  gboolean syncing;
  KdsControlPanel *panel;
} Row;

struct _KdsControlPanel {
  GtkBox parent;
  GtkWidget *grid;
  GPtrArray *rows; /* Row* */
  guint debounce_ms;
};

G_DEFINE_FINAL_TYPE(KdsControlPanel, kds_control_panel, GTK_TYPE_BOX)

enum { SIG_CHANGED, N_SIGS };
static guint sigs[N_SIGS];

static void row_free(gpointer p) {
  Row *r = p;
  if (r->pending) g_source_remove(r->pending);
  g_free(r);
}

static double to_slider(const Row *r, double v) {
  if (r->d->log_scale) {
    if (v <= r->lo) return 0;
    return SLIDER_STEPS * log(v / r->lo) / log(r->hi / r->lo);
  }
  return r->hi > r->lo ? SLIDER_STEPS * (v - r->lo) / (r->hi - r->lo) : 0;
}

static double from_slider(const Row *r, double s) {
  double f = s / SLIDER_STEPS;
  if (r->d->log_scale) return r->lo * pow(r->hi / r->lo, f);
  double v = r->lo + f * (r->hi - r->lo);
  if (r->d->type == KD_CFG_INT) v = round(v);
  return v;
}

static void emit(Row *r, double v) {
  char buf[64];
  if (r->d->type == KD_CFG_INT) snprintf(buf, sizeof buf, "%.0f", v);
  else snprintf(buf, sizeof buf, "%.6g", v);
  g_signal_emit(r->panel, sigs[SIG_CHANGED], 0, r->d->key, buf);
}

static gboolean fire_pending(gpointer user) {
  Row *r = user;
  r->pending = 0;
  emit(r, gtk_spin_button_get_value(GTK_SPIN_BUTTON(r->spin)));
  return G_SOURCE_REMOVE;
}

static void set_widgets(Row *r, double v) {
  r->syncing = TRUE;
  gtk_range_set_value(GTK_RANGE(r->scale), to_slider(r, v));
  gtk_spin_button_set_value(GTK_SPIN_BUTTON(r->spin), v);
  gtk_widget_set_sensitive(r->reset, fabs(v - r->d->def) > 1e-12 * fmax(1.0, fabs(r->d->def)));
  r->syncing = FALSE;
}

static void on_scale(GtkRange *range, gpointer user) {
  Row *r = user;
  if (r->syncing) return;
  double v = from_slider(r, gtk_range_get_value(range));
  r->syncing = TRUE;
  gtk_spin_button_set_value(GTK_SPIN_BUTTON(r->spin), v);
  r->syncing = FALSE;
  gtk_widget_set_sensitive(r->reset, v != r->d->def);
  if (r->pending) g_source_remove(r->pending);
  r->pending = 0;
  if (r->panel->debounce_ms == 0) emit(r, v);
  else r->pending = g_timeout_add(r->panel->debounce_ms, fire_pending, r);
}

static void on_spin(GtkSpinButton *spin, gpointer user) {
  Row *r = user;
  if (r->syncing) return;
  double v = gtk_spin_button_get_value(spin);
  set_widgets(r, v);
  emit(r, v);
}

static void on_reset(GtkButton *b, gpointer user) {
  (void)b;
  Row *r = user;
  set_widgets(r, r->d->def);
  emit(r, r->d->def);
}

static int digits_for(const KdParamDesc *d) {
  if (d->type == KD_CFG_INT) return 0;
  double m = d->log_scale ? fmax(d->min, d->max * 1e-6) : fmin(fabs(d->max - d->min), fabs(d->def) > 0 ? fabs(d->def) : 1.0);
  int dg = (int)ceil(-log10(m > 0 ? m : 1.0)) + 3;
  return dg < 1 ? 1 : dg > 9 ? 9 : dg;
}

static void add_row(KdsControlPanel *p, const KdConfig *cfg, const KdParamDesc *d, int y) {
  Row *r = g_new0(Row, 1);
  r->d = d;
  r->panel = p;
  r->lo = d->min;
  r->hi = d->max;
  if (d->log_scale && r->lo <= 0) r->lo = r->hi * 1e-6; /* the entry still takes 0 */
  GtkWidget *label = gtk_label_new(d->label);
  gtk_label_set_xalign(GTK_LABEL(label), 0);
  gtk_widget_set_tooltip_text(label, d->help);
  r->scale = gtk_scale_new_with_range(GTK_ORIENTATION_HORIZONTAL, 0, SLIDER_STEPS, 1);
  gtk_scale_set_draw_value(GTK_SCALE(r->scale), FALSE);
  gtk_widget_set_hexpand(r->scale, TRUE);
  gtk_widget_set_size_request(r->scale, 120, -1);
  gtk_widget_set_tooltip_text(r->scale, d->help);
  double step = d->type == KD_CFG_INT ? 1 : pow(10, -digits_for(d) + 1);
  r->spin = gtk_spin_button_new_with_range(d->min, d->max, step);
  gtk_spin_button_set_digits(GTK_SPIN_BUTTON(r->spin), (guint)digits_for(d));
  gtk_editable_set_width_chars(GTK_EDITABLE(r->spin), 8);
  gtk_widget_set_tooltip_text(r->spin, d->help);
  r->reset = gtk_button_new_from_icon_name("edit-undo-symbolic");
  gtk_widget_set_tooltip_text(r->reset, "Reset to the default");
  gtk_widget_add_css_class(r->reset, "flat");
  gtk_widget_set_name(r->scale, d->key);
  kds_wheel_guard(r->scale);
  kds_wheel_guard(r->spin);
  gtk_grid_attach(GTK_GRID(p->grid), label, 0, y, 3, 1);
  gtk_grid_attach(GTK_GRID(p->grid), r->scale, 0, y + 1, 1, 1);
  gtk_grid_attach(GTK_GRID(p->grid), r->spin, 1, y + 1, 1, 1);
  gtk_grid_attach(GTK_GRID(p->grid), r->reset, 2, y + 1, 1, 1);
  g_ptr_array_add(p->rows, r);
  set_widgets(r, kd_config_num(cfg, d->key));
  g_signal_connect(r->scale, "value-changed", G_CALLBACK(on_scale), r);
  g_signal_connect(r->spin, "value-changed", G_CALLBACK(on_spin), r);
  g_signal_connect(r->reset, "clicked", G_CALLBACK(on_reset), r);
}

void kds_control_panel_rebuild(KdsControlPanel *p, const KdConfig *cfg, const char *const *keys) {
  if (p->grid) gtk_box_remove(GTK_BOX(p), p->grid);
  g_ptr_array_set_size(p->rows, 0);
  p->grid = gtk_grid_new();
  gtk_grid_set_row_spacing(GTK_GRID(p->grid), 2);
  gtk_grid_set_column_spacing(GTK_GRID(p->grid), 6);
  gtk_box_append(GTK_BOX(p), p->grid);
  int y = 0;
  for (int i = 0; keys && keys[i]; i++) {
    const KdParamDesc *d = kd_config_find(cfg, keys[i]);
    if (!d || (d->type != KD_CFG_FLOAT && d->type != KD_CFG_INT)) continue;
    add_row(p, cfg, d, y);
    y += 2;
  }
}

void kds_control_panel_sync(KdsControlPanel *p, const KdConfig *cfg) {
  for (guint i = 0; i < p->rows->len; i++) {
    Row *r = g_ptr_array_index(p->rows, i);
    if (r->pending) continue; /* the user is moving it */
    double v = kd_config_num(cfg, r->d->key);
    if (fabs(v - gtk_spin_button_get_value(GTK_SPIN_BUTTON(r->spin))) > 1e-12 * fmax(1.0, fabs(v))) set_widgets(r, v);
  }
}

static Row *find_row(KdsControlPanel *p, const char *key) {
  for (guint i = 0; i < p->rows->len; i++) {
    Row *r = g_ptr_array_index(p->rows, i);
    if (!strcmp(r->d->key, key)) return r;
  }
  return NULL;
}

GtkRange *kds_control_panel_slider(KdsControlPanel *p, const char *key) {
  Row *r = find_row(p, key);
  return r ? GTK_RANGE(r->scale) : NULL;
}

GtkSpinButton *kds_control_panel_entry(KdsControlPanel *p, const char *key) {
  Row *r = find_row(p, key);
  return r ? GTK_SPIN_BUTTON(r->spin) : NULL;
}

void kds_control_panel_set_debounce(KdsControlPanel *p, guint ms) { p->debounce_ms = ms; }

static void kds_control_panel_dispose(GObject *o) {
  KdsControlPanel *p = KDS_CONTROL_PANEL(o);
  g_clear_pointer(&p->rows, g_ptr_array_unref);
  G_OBJECT_CLASS(kds_control_panel_parent_class)->dispose(o);
}

static void kds_control_panel_class_init(KdsControlPanelClass *k) {
  G_OBJECT_CLASS(k)->dispose = kds_control_panel_dispose;
  sigs[SIG_CHANGED] = g_signal_new("setting-changed", G_TYPE_FROM_CLASS(k), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE,
                                   2, G_TYPE_STRING, G_TYPE_STRING);
}

static void kds_control_panel_init(KdsControlPanel *p) {
  gtk_orientable_set_orientation(GTK_ORIENTABLE(p), GTK_ORIENTATION_VERTICAL);
  p->rows = g_ptr_array_new_with_free_func(row_free);
  p->debounce_ms = 250;
}

KdsControlPanel *kds_control_panel_new(void) { return g_object_new(KDS_TYPE_CONTROL_PANEL, NULL); }
