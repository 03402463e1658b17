/* The settings sidebar's rows, from the descriptors. Safe by design: the
 * wheel never changes an unfocused control (wheel_guard.c); a drag lands
 * only on the descriptor's grid (core/param_grid.h); a typed value is
 * taken exactly, never rounded through the slider or a display format;
 * every box prints with the one number format (core/numfmt.h). */
#include "control_panel.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/numfmt.h"
#include "core/param_grid.h"
#include "distill/method.h"
#include "wheel_guard.h"

#define SLIDER_STEPS 1000.0
/* The spin buttons' own step: tiny, so that a press of +/-, an arrow key
 * or a focused wheel turn is recognised and replaced by one grid step. */
#define SPIN_NUDGE 1e-9

typedef struct Row {
  const KdParamDesc *d;
  GtkWidget *scale, *spin, *reset;
  double lo, hi; /* slider range in value space (positive for log) */
  double value;  /* the value the row shows */
  double start;  /* what reset returns to: the value when the run was bound */
  double nudge;  /* the spin button's step */
  guint pending; /* debounce source */
  gboolean syncing, typed;
  KdsControlPanel *panel;
} Row;

struct _KdsControlPanel {
  GtkBox parent;
  GtkWidget *grid;
  GPtrArray *rows; /* Row* */
  /* key -> the value each setting had when the run was bound, kept over
   * rebuilds (a method switched on mid-run keeps its rows' values). */
  GHashTable *start;
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

static const char *format(const KdParamDesc *d, double v, char *buf, size_t len) {
  if (d->type == KD_CFG_INT) snprintf(buf, len, "%.0f", v);
  else kd_num_format(v, buf, len);
  return buf;
}

static double to_slider(const Row *r, double v) {
  if (r->d->log_scale) {
    if (v <= r->lo) return 0;
    return fmin(SLIDER_STEPS, SLIDER_STEPS * log(v / r->lo) / log(r->hi / r->lo));
  }
  return r->hi > r->lo ? fmin(SLIDER_STEPS, fmax(0, SLIDER_STEPS * (v - r->lo) / (r->hi - r->lo))) : 0;
}

/* The grid value under slider position s (the far left of a log slider
 * whose range starts at 0 is 0 itself). */
static double from_slider(const Row *r, double s) {
  double f = s / SLIDER_STEPS, v;
  if (r->d->log_scale) v = s <= 0 && r->d->min <= 0 ? 0 : r->lo * pow(r->hi / r->lo, f);
  else v = r->lo + f * (r->hi - r->lo);
  return kd_grid_snap(r->d, v);
}

static void emit(Row *r, double v) {
  char buf[64];
  g_signal_emit(r->panel, sigs[SIG_CHANGED], 0, r->d->key, format(r->d, v, buf, sizeof buf));
}

static gboolean fire_pending(gpointer user) {
  Row *r = user;
  r->pending = 0;
  emit(r, r->value);
  return G_SOURCE_REMOVE;
}

/* Shows v in the slider, the box and the reset button, emitting nothing. */
static void set_widgets(Row *r, double v) {
  r->syncing = TRUE;
  r->value = v;
  gtk_range_set_value(GTK_RANGE(r->scale), to_slider(r, v));
  /* The adjustment itself: gtk_spin_button_set_value drops changes under 1e-10. */
  gtk_adjustment_set_value(gtk_spin_button_get_adjustment(GTK_SPIN_BUTTON(r->spin)), v);
  gtk_widget_set_sensitive(r->reset, v != r->start);
  r->syncing = FALSE;
}

/* The user moved the row to v: shown at once, sent now or (a drag) once
 * the hand stops. */
static void user_set(Row *r, double v, gboolean debounce) {
  set_widgets(r, v);
  if (r->pending) g_source_remove(r->pending);
  r->pending = 0;
  if (!debounce || r->panel->debounce_ms == 0) emit(r, v);
  else r->pending = g_timeout_add(r->panel->debounce_ms, fire_pending, r);
}

static void step(Row *r, int dir, gboolean debounce) {
  double v = kd_grid_next(r->d, r->value, dir);
  if (v != r->value) user_set(r, v, debounce);
}

/* Any move of the slider (drag, click, programmatic) lands on the grid:
 * the thumb snaps to the grid value's place. */
static void on_scale(GtkRange *range, gpointer user) {
  Row *r = user;
  if (r->syncing) return;
  double v = from_slider(r, gtk_range_get_value(range));
  if (v == r->value) { /* a move within one grid cell: back to its place */
    r->syncing = TRUE;
    gtk_range_set_value(range, to_slider(r, v));
    r->syncing = FALSE;
    return;
  }
  user_set(r, v, TRUE);
}

/* Arrow keys and page keys on a focused slider step the grid (the
 * slider's own step, a thousandth of it, would stay in the same cell). */
static gboolean on_scale_change(GtkRange *range, GtkScrollType scroll, double value, gpointer user) {
  (void)range, (void)value;
  Row *r = user;
  switch (scroll) {
  case GTK_SCROLL_STEP_BACKWARD: case GTK_SCROLL_STEP_LEFT: case GTK_SCROLL_STEP_DOWN:
  case GTK_SCROLL_PAGE_BACKWARD: case GTK_SCROLL_PAGE_LEFT: case GTK_SCROLL_PAGE_DOWN: step(r, -1, TRUE); return TRUE;
  case GTK_SCROLL_STEP_FORWARD: case GTK_SCROLL_STEP_RIGHT: case GTK_SCROLL_STEP_UP:
  case GTK_SCROLL_PAGE_FORWARD: case GTK_SCROLL_PAGE_RIGHT: case GTK_SCROLL_PAGE_UP: step(r, 1, TRUE); return TRUE;
  default: return FALSE; /* jumps and drags: on_scale snaps them */
  }
}

/* The wheel over a focused slider: one grid step a notch (the wheel
 * guard, in front of this, keeps unfocused sliders out of it). */
static gboolean on_scale_wheel(GtkEventControllerScroll *sc, double dx, double dy, gpointer user) {
  GtkWidget *w = gtk_event_controller_get_widget(GTK_EVENT_CONTROLLER(sc));
  if (!(gtk_widget_get_state_flags(w) & GTK_STATE_FLAG_FOCUS_WITHIN)) return FALSE; /* the wheel guard's */
  double d = fabs(dy) >= fabs(dx) ? dy : -dx;
  if (d != 0) step(user, d < 0 ? 1 : -1, TRUE);
  return TRUE;
}

/* Typed text, read exactly. Text that is not a number in range is sent as
 * typed (the receiver refuses it with a message naming the setting and
 * its range) and the box goes back to the value it had. */
static gint on_spin_input(GtkSpinButton *spin, double *out, gpointer user) {
  Row *r = user;
  const char *text = gtk_editable_get_text(GTK_EDITABLE(spin));
  while (*text == ' ') text++;
  char *end;
  double v = g_ascii_strtod(text, &end);
  while (*end == ' ') end++;
  gboolean number = end != text && !*end && isfinite(v) && (r->d->type != KD_CFG_INT || v == floor(v));
  if (!number || v < r->d->min || v > r->d->max) {
    if (*text && !r->syncing) g_signal_emit(r->panel, sigs[SIG_CHANGED], 0, r->d->key, text);
    return GTK_INPUT_ERROR;
  }
  *out = v;
  if (v != r->value && !r->syncing) {
    r->typed = TRUE;
    /* GtkSpinButton ignores changes under 1e-10: put such a value in itself. */
    GtkAdjustment *a = gtk_spin_button_get_adjustment(spin);
    if (fabs(v - gtk_adjustment_get_value(a)) <= 1e-10) gtk_adjustment_set_value(a, v);
  }
  return TRUE;
}

static gboolean on_spin_output(GtkSpinButton *spin, gpointer user) {
  Row *r = user;
  char buf[64];
  format(r->d, gtk_adjustment_get_value(gtk_spin_button_get_adjustment(spin)), buf, sizeof buf);
  if (strcmp(buf, gtk_editable_get_text(GTK_EDITABLE(spin)))) gtk_editable_set_text(GTK_EDITABLE(spin), buf);
  int n = (int)g_utf8_strlen(buf, -1);
  if (n > gtk_editable_get_width_chars(GTK_EDITABLE(spin))) gtk_editable_set_width_chars(GTK_EDITABLE(spin), n); /* never cut off */
  return TRUE;
}

/* A typed value goes out exactly and at once; a press of +/-, an arrow key
 * or a focused wheel turn (a change of one nudge) is one grid step. */
static void on_spin(GtkSpinButton *spin, gpointer user) {
  Row *r = user;
  if (r->syncing) return;
  double v = gtk_spin_button_get_value(spin);
  if (r->typed) {
    r->typed = FALSE;
    user_set(r, v, FALSE);
  } else if (v == r->value) {
    return; /* re-emitted, e.g. as a refused text is put back */
  } else if (fabs(v - r->value) <= 20 * r->nudge) {
    double to = kd_grid_next(r->d, r->value, v > r->value ? 1 : -1);
    if (to != r->value) user_set(r, to, FALSE);
    else set_widgets(r, r->value);
  } else {
    user_set(r, v, FALSE); /* set by a program (gtk_spin_button_set_value): exactly that */
  }
}

static void on_reset(GtkButton *b, gpointer user) {
  (void)b;
  user_set(user, ((Row *)user)->start, FALSE);
}

/* "α_bg" as Pango markup: the part after '_' a subscript. */
static char *symbol_markup(const char *sym) {
  const char *us = strchr(sym, '_');
  if (!us) return g_markup_escape_text(sym, -1);
  char *base = g_markup_escape_text(sym, (gssize)(us - sym)), *sub = g_markup_escape_text(us + 1, -1);
  char *m = g_strdup_printf("%s<sub>%s</sub>", base, sub);
  g_free(base), g_free(sub);
  return m;
}

static void add_header(KdsControlPanel *p, const char *title, const char *tip, int y) {
  GtkWidget *h = gtk_label_new(title);
  gtk_label_set_xalign(GTK_LABEL(h), 0);
  gtk_widget_add_css_class(h, "kds-method");
  gtk_widget_add_css_class(h, "heading");
  if (tip) gtk_widget_set_tooltip_text(h, tip);
  if (y > 0) gtk_widget_set_margin_top(h, 6);
  gtk_grid_attach(GTK_GRID(p->grid), h, 0, y, 3, 1);
}

/* The row's name: the paper's symbol and the key (the prose label and
 * the help in the tooltip). */
static GtkWidget *row_name(const KdParamDesc *d, const char *tip) {
  GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 8);
  if (d->symbol) {
    GtkWidget *sym = gtk_label_new(NULL);
    char *m = symbol_markup(d->symbol);
    gtk_label_set_markup(GTK_LABEL(sym), m);
    g_free(m);
    gtk_widget_add_css_class(sym, "kds-symbol");
    gtk_box_append(GTK_BOX(box), sym);
  }
  GtkWidget *key = gtk_label_new(d->key);
  gtk_label_set_xalign(GTK_LABEL(key), 0);
  gtk_label_set_ellipsize(GTK_LABEL(key), PANGO_ELLIPSIZE_START);
  gtk_widget_add_css_class(key, "kds-key");
  gtk_widget_add_css_class(key, "dim-label");
  gtk_box_append(GTK_BOX(box), key);
  gtk_widget_set_tooltip_text(box, tip);
  return box;
}

static void add_row(KdsControlPanel *p, const KdConfig *cfg, const KdParamDesc *d, int y) {
  Row *r = g_new0(Row, 1);
  r->d = d;
  r->panel = p;
  r->lo = kd_grid_low(d);
  r->hi = d->max;
  r->nudge = SPIN_NUDGE * fmax(1.0, d->max - d->min);
  char *tip = g_strdup_printf("%s — %s", d->label, d->help ? d->help : "");
  r->scale = gtk_scale_new_with_range(GTK_ORIENTATION_HORIZONTAL, 0, SLIDER_STEPS, 1);
  gtk_scale_set_draw_value(GTK_SCALE(r->scale), FALSE);
  gtk_widget_set_hexpand(r->scale, TRUE);
  gtk_widget_set_size_request(r->scale, 120, -1);
  gtk_widget_set_tooltip_text(r->scale, tip);
  r->spin = gtk_spin_button_new_with_range(d->min, d->max, r->nudge);
  gtk_spin_button_set_increments(GTK_SPIN_BUTTON(r->spin), r->nudge, r->nudge);
  gtk_spin_button_set_update_policy(GTK_SPIN_BUTTON(r->spin), GTK_UPDATE_IF_VALID);
  /* new_with_range makes it numeric: a filter that drops "5e-6" and any
   * decimal past its digits as they are typed or shown. The input
   * handler reads the text instead. */
  gtk_spin_button_set_numeric(GTK_SPIN_BUTTON(r->spin), FALSE);
  char a[64], b[64], c[64];
  int w = (int)MAX(MAX(strlen(format(d, d->min, a, sizeof a)), strlen(format(d, d->max, b, sizeof b))),
                   strlen(format(d, d->def, c, sizeof c)));
  gtk_editable_set_width_chars(GTK_EDITABLE(r->spin), MAX(w, 5));
  gtk_widget_set_tooltip_text(r->spin, tip);
  /* Back to the run's value, not the descriptor's default: a preset's
   * value (AdamW's lr) differs from it, and resetting to it would be a
   * change the run never had. */
  double *start = g_hash_table_lookup(p->start, d->key);
  if (!start) {
    start = g_new(double, 1);
    *start = kd_config_num(cfg, d->key);
    g_hash_table_insert(p->start, g_strdup(d->key), start);
  }
  r->start = *start;
  r->reset = gtk_button_new_from_icon_name("edit-undo-symbolic");
  char *rtip = g_strdup_printf("Back to %s, the run's value when it was opened (the setting's default is %s)",
                               format(d, r->start, a, sizeof a), format(d, d->def, b, sizeof b));
  gtk_widget_set_tooltip_text(r->reset, rtip);
  g_free(rtip);
  gtk_widget_add_css_class(r->reset, "flat");
  gtk_widget_set_name(r->scale, d->key);
  kds_wheel_guard(r->scale);
  kds_wheel_guard(r->spin);
  GtkEventController *sc = gtk_event_controller_scroll_new(GTK_EVENT_CONTROLLER_SCROLL_BOTH_AXES | GTK_EVENT_CONTROLLER_SCROLL_DISCRETE);
  gtk_event_controller_set_propagation_phase(sc, GTK_PHASE_CAPTURE);
  g_signal_connect(sc, "scroll", G_CALLBACK(on_scale_wheel), r);
  gtk_widget_add_controller(r->scale, sc);
  gtk_grid_attach(GTK_GRID(p->grid), row_name(d, tip), 0, y, 3, 1);
  gtk_grid_attach(GTK_GRID(p->grid), r->scale, 0, y + 1, 1, 1);
  gtk_grid_attach(GTK_GRID(p->grid), r->spin, 1, y + 1, 1, 1);
  gtk_grid_attach(GTK_GRID(p->grid), r->reset, 2, y + 1, 1, 1);
  g_free(tip);
  g_ptr_array_add(p->rows, r);
  g_signal_connect(r->spin, "input", G_CALLBACK(on_spin_input), r);
  g_signal_connect(r->spin, "output", G_CALLBACK(on_spin_output), r);
  set_widgets(r, kd_config_num(cfg, d->key));
  on_spin_output(GTK_SPIN_BUTTON(r->spin), r); /* also when the value was the adjustment's first */
  g_signal_connect(r->scale, "value-changed", G_CALLBACK(on_scale), r);
  g_signal_connect(r->scale, "change-value", G_CALLBACK(on_scale_change), r);
  g_signal_connect(r->spin, "value-changed", G_CALLBACK(on_spin), r);
  g_signal_connect(r->reset, "clicked", G_CALLBACK(on_reset), r);
}

/* The section a key belongs to: its method (by the key's prefix), or the
 * training settings. */
static void section_of(const char *key, char *id, size_t len, const char **title, const char **tip) {
  const char *dot = strchr(key, '.');
  size_t n = dot ? (size_t)(dot - key) : strlen(key);
  snprintf(id, len, "%.*s", (int)n, key);
  const KdMethod *m = kd_method_find(id);
  *title = m ? m->label : "Training";
  *tip = m ? m->help : "Optimizer and detection-loss settings that may change mid-run";
  if (!m) snprintf(id, len, "%s", "train");
}

void kds_control_panel_rebuild(KdsControlPanel *p, const KdConfig *cfg, const char *const *keys) {
  if (p->grid) gtk_box_remove(GTK_BOX(p), p->grid);
  g_ptr_array_set_size(p->rows, 0);
  p->grid = gtk_grid_new();
  gtk_grid_set_row_spacing(GTK_GRID(p->grid), 2);
  gtk_grid_set_column_spacing(GTK_GRID(p->grid), 6);
  gtk_box_append(GTK_BOX(p), p->grid);
  int y = 0;
  char section[64] = "";
  for (int i = 0; keys && keys[i]; i++) {
    const KdParamDesc *d = kd_config_find(cfg, keys[i]);
    if (!d || (d->type != KD_CFG_FLOAT && d->type != KD_CFG_INT)) continue;
    char id[64];
    const char *title, *tip;
    section_of(d->key, id, sizeof id, &title, &tip);
    if (strcmp(id, section)) {
      add_header(p, title, tip, y++);
      snprintf(section, sizeof section, "%s", id);
    }
    add_row(p, cfg, d, y);
    y += 2;
  }
}

void kds_control_panel_sync(KdsControlPanel *p, const KdConfig *cfg) {
  for (guint i = 0; i < p->rows->len; i++) {
    Row *r = g_ptr_array_index(p->rows, i);
    if (r->pending) continue; /* the user is moving it */
    double v = kd_config_num(cfg, r->d->key);
    if (v != r->value) set_widgets(r, v);
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

void kds_control_panel_forget_run(KdsControlPanel *p) { g_hash_table_remove_all(p->start); }

GtkButton *kds_control_panel_reset(KdsControlPanel *p, const char *key) {
  Row *r = find_row(p, key);
  return r ? GTK_BUTTON(r->reset) : NULL;
}

static void kds_control_panel_dispose(GObject *o) {
  KdsControlPanel *p = KDS_CONTROL_PANEL(o);
  g_clear_pointer(&p->rows, g_ptr_array_unref);
  g_clear_pointer(&p->start, g_hash_table_unref);
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
  p->start = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  p->debounce_ms = 250;
}

KdsControlPanel *kds_control_panel_new(void) { return g_object_new(KDS_TYPE_CONTROL_PANEL, NULL); }
