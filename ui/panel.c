/* The figure-panel widget: one GtkWidget for every figure kind, the kind
 * fixed at construction. It draws what kd_snapfig_build gives and nothing
 * of its own but the pointer's readout; it never tells kinds apart except
 * through their table row and what a pick reports (a step axis, a key).
 * The figure is painted once per change and kept as a render node, so the
 * readout following the pointer costs a box, not a repaint. */
#include "panel.h"

#include <math.h>
#include <string.h>

struct _KdsPanel {
  GtkWidget parent;
  char *kind_name;
  const KdSnapFigKind *kind; /* NULL: a name not in the table, or a custom panel */
  KdsPanelBuildFn custom;    /* a custom panel's builder (kind is NULL) */
  gpointer custom_user;
  char *empty;               /* a custom panel's text while it has nothing to draw */
  KdSnapFigStore *store;
  const KdsView *view;
  guint paints;
  KdFigPick hover; /* the last readout sent, so unchanged ones are not re-sent */
  double painted_time; /* capture time of the snapshot last painted */
  GskRenderNode *node; /* the figure as last painted */
  int node_w, node_h;
  gboolean stale;
  double ptr_x, ptr_y;
  gboolean ptr_in; /* over the panel (KD_SNAPFIG_HOVER kinds redraw as it moves) */
  gboolean readout_on;
  graphene_rect_t readout_box;
  gboolean press_seeks; /* button 1 went down on a step axis: dragging seeks */
  double last_seek;
  double zoom_lo, zoom_hi; /* NaN: the whole run */
  double full_lo, full_hi; /* the axis when zooming began */
  GPtrArray *hidden;       /* char*, NULL-terminated */
  gboolean raw;
};

enum { SIGNAL_HOVER, SIGNAL_SEEK, SIGNAL_PICK, SIGNAL_PICK_MOVE, N_SIGNALS };
static guint signals[N_SIGNALS];
enum { PROP_0, PROP_KIND, N_PROPS };
static GParamSpec *props[N_PROPS];

static double paint_ms_max, paint_ms_sum;
static guint paint_n;
static double lat_ms_max, lat_ms_sum;
static guint lat_n;
static gint64 pick_t0; /* when the last pick was handled, until a pixel panel paints it */
static double pick_ms_max, pick_ms_sum;
static guint pick_n;

void kds_panel_note_pick(void) { pick_t0 = g_get_monotonic_time(); }

void kds_panel_pick_stats(double *max_ms, double *mean_ms, guint *n) {
  *max_ms = pick_ms_max;
  *mean_ms = pick_n ? pick_ms_sum / pick_n : 0;
  *n = pick_n;
}

void kds_panel_latency_stats(double *max_ms, double *mean_ms, guint *n) {
  *max_ms = lat_ms_max;
  *mean_ms = lat_n ? lat_ms_sum / lat_n : 0;
  *n = lat_n;
}

void kds_panel_latency_reset(void) { lat_ms_max = lat_ms_sum = 0, lat_n = 0; }

void kds_panel_paint_stats(double *max_ms, double *mean_ms, guint *n) {
  *max_ms = paint_ms_max;
  *mean_ms = paint_n ? paint_ms_sum / paint_n : 0;
  *n = paint_n;
}

G_DEFINE_FINAL_TYPE(KdsPanel, kds_panel, GTK_TYPE_WIDGET)

const KdFigStyle *kds_panel_style(void) {
  static KdFigStyle st;
  static gsize once;
  if (g_once_init_enter(&once)) {
    kd_fig_style_default(&st);
    st.font_pt = 9.0;
    st.line_pt = 0.8;
    g_once_init_leave(&once, 1);
  }
  return &st;
}

void kds_panel_set_view(KdsPanel *p, const KdsView *view) {
  p->view = view;
  p->stale = TRUE;
  gtk_widget_queue_resize(GTK_WIDGET(p));
}

void kds_panel_redraw(KdsPanel *p) {
  p->stale = TRUE;
  gtk_widget_queue_draw(GTK_WIDGET(p));
}

const KdsView *kds_panel_get_view(KdsPanel *p) {
  return p->view;
}

const char *kds_panel_kind(KdsPanel *p) { return p->kind ? p->kind->name : p->custom ? p->kind_name : "panel"; }
const KdSnapFigKind *kds_panel_figure(KdsPanel *p) { return p->kind; }

KdsPanel *kds_panel_new(const char *kind) {
  if (!kd_snapfig_find(kind ? kind : ""))
    g_warning("KdsPanel: '%s' is not a figure kind (kinds: %s)", kind ? kind : "", kd_snapfig_names());
  return g_object_new(KDS_TYPE_PANEL, "kind", kind, NULL);
}

KdsPanel *kds_panel_new_custom(const char *name, KdsPanelBuildFn build, gpointer user, const char *empty) {
  KdsPanel *p = g_object_new(KDS_TYPE_PANEL, "kind", name, NULL);
  p->kind = NULL;
  p->custom = build;
  p->custom_user = user;
  p->empty = g_strdup(empty);
  return p;
}

void kds_view_snapfig(const KdsView *v, KdSnapFigView *out) {
  kd_snapfig_view_default(out);
  out->snap = v->snap;
  out->log = v->bridge ? kds_bridge_log(v->bridge) : NULL;
  out->image = v->image;
  out->level = v->level;
  out->overlay = v->overlay;
  out->independent = v->independent;
  out->all_levels = v->all_levels;
  out->smooth = v->smooth;
  out->logy = v->logy;
  out->mark = v->mark;
  out->pick = v->pick;
  out->ref = v->ref;
  out->ref_dir = v->ref_dir;
  out->ref_label = v->ref_label;
  /* the time cursor: the step whose snapshot the maps show */
  out->cursor_on = v->snap != NULL;
  out->cursor = v->snap ? v->snap->step : NAN;
}

void kds_panel_view_snapfig(KdsPanel *p, KdSnapFigView *out) {
  kds_view_snapfig(p->view, out);
  out->xmin = p->zoom_lo;
  out->xmax = p->zoom_hi;
  out->hide = (const char *const *)p->hidden->pdata;
  out->nhide = (int)p->hidden->len - 1;
  out->smooth_off = p->raw;
  out->hover_on = p->ptr_in, out->hover_x = p->ptr_x, out->hover_y = p->ptr_y;
}

/* The figure on screen (live: the playhead, keys that toggle), or as an
 * export of it draws it (no playhead, plain keys). */
static gboolean build_as(KdsPanel *p, gboolean live, KdFigPanel *out) {
  if (p->custom) return p->custom(p->custom_user, out);
  if (!p->view || !p->kind || !p->store) return FALSE;
  KdSnapFigView sv;
  kds_panel_view_snapfig(p, &sv);
  sv.interactive = live;
  if (!live) sv.cursor_on = 0, sv.hover_on = 0;
  return kd_snapfig_build(p->kind, &sv, p->store, out, NULL) == 0;
}

gboolean kds_panel_build(KdsPanel *p, KdFigPanel *out) { return build_as(p, TRUE, out); }

guint kds_panel_paint_count(KdsPanel *p) {
  return p->paints;
}

static void draw_empty(cairo_t *cr, double w, double h, const KdsPanel *p) {
  cairo_set_source_rgb(cr, 0.5, 0.5, 0.5);
  cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, 12);
  char msg[256];
  if (p->custom)
    g_snprintf(msg, sizeof msg, "%s", p->empty ? p->empty : "nothing to draw yet");
  else if (!p->kind)
    g_snprintf(msg, sizeof msg, "%s: not a figure kind", p->kind_name ? p->kind_name : "(none)");
  else
    g_snprintf(msg, sizeof msg, p->kind->needs & KD_SNAPFIG_NEEDS_LOG ? "%s: waiting for the first logged step"
                                                                      : "%s: waiting for the first probe", p->kind->name);
  cairo_text_extents_t te;
  cairo_text_extents(cr, msg, &te);
  cairo_move_to(cr, (w - te.width) / 2, h / 2);
  cairo_show_text(cr, msg);
}

/* The first paint of a snapshot by a panel that draws snapshots: one
 * latency sample (snapshot times are wall clock, as g_get_real_time). */
static void note_latency(KdsPanel *p, gboolean drawn) {
  const KdsView *v = p->view;
  if (!drawn || !p->kind || !v || !v->snap || v->snap->time == p->painted_time || !(p->kind->needs & KD_SNAPFIG_NEEDS_SNAPSHOT))
    return;
  p->painted_time = v->snap->time;
  double done = v->snap->time + v->snap->capture_s;
  if (v->watch_since <= 0 || done < v->watch_since) return;
  double ms = g_get_real_time() / 1000.0 - done * 1000.0;
  lat_ms_sum += ms;
  lat_n++;
  if (ms > lat_ms_max) lat_ms_max = ms;
}

/* Paints the figure into p->node (the render node kept for later frames). */
static void paint_node(KdsPanel *p, int width, int height) {
  gint64 t0 = g_get_monotonic_time();
  GtkSnapshot *sub = gtk_snapshot_new();
  cairo_t *cr = gtk_snapshot_append_cairo(sub, &GRAPHENE_RECT_INIT(0, 0, (float)width, (float)height));
  KdFigPanel fp;
  gboolean drawn = kds_panel_build(p, &fp);
  if (drawn) kd_fig_paint(cr, &fp, kds_panel_style(), width, height, 1.0);
  else draw_empty(cr, width, height, p);
  cairo_destroy(cr);
  g_clear_pointer(&p->node, gsk_render_node_unref);
  p->node = gtk_snapshot_free_to_node(sub);
  p->node_w = width, p->node_h = height;
  p->stale = FALSE;
  p->paints++;
  note_latency(p, drawn);
  gint64 t1 = g_get_monotonic_time();
  if (pick_t0 && drawn && p->kind && (p->kind->options & KD_SNAPFIG_OPT_PIXEL)) { /* a pick answered */
    double pm = (t1 - pick_t0) / 1000.0;
    pick_ms_sum += pm, pick_n++;
    if (pm > pick_ms_max) pick_ms_max = pm;
    pick_t0 = 0;
  }
  double ms = (t1 - t0) / 1000.0;
  paint_ms_sum += ms;
  paint_n++;
  if (ms > paint_ms_max) paint_ms_max = ms;
}

/* The readout: the pick's text in a box just below and right of the
 * pointer (left of it / above it near the edges). */
static void draw_readout(KdsPanel *p, GtkSnapshot *snapshot, int width, int height) {
  p->readout_on = FALSE;
  if (!p->hover.text[0]) return;
  PangoLayout *l = gtk_widget_create_pango_layout(GTK_WIDGET(p), p->hover.text);
  pango_layout_set_width(l, (int)(fmax(120, width * 0.6) * PANGO_SCALE));
  pango_layout_set_wrap(l, PANGO_WRAP_WORD_CHAR);
  int tw, th;
  pango_layout_get_pixel_size(l, &tw, &th);
  const float pad = 4, off = 14;
  float bw = tw + 2 * pad, bh = th + 2 * pad;
  float x = (float)p->ptr_x + off, y = (float)p->ptr_y + off;
  if (x + bw > width) x = (float)p->ptr_x - off - bw;
  if (y + bh > height) y = (float)p->ptr_y - off / 2 - bh;
  x = fmaxf(0, x), y = fmaxf(0, y);
  p->readout_box = GRAPHENE_RECT_INIT(x, y, bw, bh);
  p->readout_on = TRUE;
  gtk_snapshot_append_color(snapshot, &(GdkRGBA){1, 1, 0.94f, 0.95f}, &p->readout_box);
  GskRoundedRect rr;
  gsk_rounded_rect_init_from_rect(&rr, &p->readout_box, 0);
  const float bwid[4] = {1, 1, 1, 1};
  const GdkRGBA grey = {0.45f, 0.45f, 0.45f, 1}, cols[4] = {grey, grey, grey, grey};
  gtk_snapshot_append_border(snapshot, &rr, bwid, cols);
  gtk_snapshot_save(snapshot);
  gtk_snapshot_translate(snapshot, &GRAPHENE_POINT_INIT(x + pad, y + pad));
  gtk_snapshot_append_layout(snapshot, l, &(GdkRGBA){0.1f, 0.1f, 0.1f, 1});
  gtk_snapshot_restore(snapshot);
  g_object_unref(l);
}

static void kds_panel_snapshot(GtkWidget *w, GtkSnapshot *snapshot) {
  KdsPanel *p = KDS_PANEL(w);
  int width = gtk_widget_get_width(w), height = gtk_widget_get_height(w);
  if (width <= 0 || height <= 0) return;
  if (!p->node || p->stale || width != p->node_w || height != p->node_h) paint_node(p, width, height);
  if (p->node) gtk_snapshot_append_node(snapshot, p->node);
  draw_readout(p, snapshot, width, height);
}

cairo_surface_t *kds_panel_render(KdsPanel *p, double w, double h, double scale) {
  if (w <= 0) w = gtk_widget_get_width(GTK_WIDGET(p));
  if (h <= 0) h = gtk_widget_get_height(GTK_WIDGET(p));
  if (w <= 0) w = 400;
  KdFigPanel fp;
  gboolean ok = build_as(p, FALSE, &fp);
  if (h <= 0) h = ok ? kd_fig_panel_height(&fp, kds_panel_style(), w) : 200;
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, (int)(w * scale + 0.5), (int)(h * scale + 0.5));
  cairo_t *cr = cairo_create(s);
  if (ok) kd_fig_paint(cr, &fp, kds_panel_style(), w, h, scale);
  else {
    cairo_scale(cr, scale, scale);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    draw_empty(cr, w, h, p);
  }
  cairo_destroy(cr);
  return s;
}

gboolean kds_panel_pick(KdsPanel *p, double x, double y, KdFigPick *out) {
  KdFigPanel fp;
  int w = gtk_widget_get_width(GTK_WIDGET(p)), h = gtk_widget_get_height(GTK_WIDGET(p));
  kd_fig_pick_clear(out);
  return kds_panel_build(p, &fp) && kd_fig_pick(&fp, kds_panel_style(), w, h, x, y, out);
}

gboolean kds_panel_readout(KdsPanel *p, graphene_rect_t *box, const char **text) {
  if (box) *box = p->readout_box;
  if (text) *text = p->hover.text;
  return p->readout_on;
}

static void send_hover(KdsPanel *p, const KdFigPick *k) {
  gboolean same = !strcmp(p->hover.text, k->text) && p->hover.cell.on == k->cell.on;
  p->hover = *k;
  if (k->text[0] || p->readout_on) gtk_widget_queue_draw(GTK_WIDGET(p)); /* the readout follows */
  if (!same) g_signal_emit(p, signals[SIGNAL_HOVER], 0, k->text, k->cell.on, k->cell.u, k->cell.v);
}

/* ---- time, zoom and legend ---- */

static void seek(KdsPanel *p, double step) {
  if (!isfinite(step) || fabs(step - p->last_seek) < 0.5) return;
  p->last_seek = step;
  g_signal_emit(p, signals[SIGNAL_SEEK], 0, step);
}

gboolean kds_panel_zoom(KdsPanel *p, double *lo, double *hi) {
  if (lo) *lo = p->zoom_lo;
  if (hi) *hi = p->zoom_hi;
  return isfinite(p->zoom_lo);
}

void kds_panel_set_zoom(KdsPanel *p, double lo, double hi) {
  gboolean whole = !(lo < hi);
  p->zoom_lo = whole ? NAN : lo;
  p->zoom_hi = whole ? NAN : hi;
  kds_panel_redraw(p);
}

const char *const *kds_panel_hidden(KdsPanel *p) { return (const char *const *)p->hidden->pdata; }
gboolean kds_panel_raw(KdsPanel *p) { return p->raw; }

static void toggle_hidden(KdsPanel *p, const char *name) {
  for (guint i = 0; i + 1 < p->hidden->len; i++)
    if (!strcmp(g_ptr_array_index(p->hidden, i), name)) {
      g_ptr_array_remove_index(p->hidden, i);
      kds_panel_redraw(p);
      return;
    }
  g_ptr_array_insert(p->hidden, (gint)p->hidden->len - 1, g_strdup(name));
  kds_panel_redraw(p);
}

/* A click: on a key, hide/show its series; on the smoothing note, the raw
 * series; on a step axis, seek there (a double click: the whole run). */
static void on_pressed(GtkGestureClick *g, int n_press, double x, double y, gpointer user) {
  (void)g;
  KdsPanel *p = KDS_PANEL(user);
  KdFigPick k;
  p->press_seeks = FALSE;
  if (!kds_panel_pick(p, x, y, &k)) return;
  if (k.cell.on && p->kind && p->kind->level_maps) { /* a map cell: the picked pixel */
    gtk_widget_grab_focus(GTK_WIDGET(p));
    g_signal_emit(p, signals[SIGNAL_PICK], 0, k.cell.u, k.cell.v);
  } else if (k.key == KD_FIG_KEY_SMOOTHING) {
    p->raw = !p->raw;
    kds_panel_redraw(p);
  } else if (k.key >= 0) {
    toggle_hidden(p, k.key_name);
  } else if (isfinite(k.step)) {
    if (n_press == 2) { /* the whole run again */
      kds_panel_set_zoom(p, 0, 0);
      return;
    }
    p->press_seeks = TRUE;
    p->last_seek = NAN;
    seek(p, k.step);
  }
}

static void on_motion(GtkEventControllerMotion *m, double x, double y, gpointer user) {
  KdsPanel *p = KDS_PANEL(user);
  p->ptr_x = x, p->ptr_y = y;
  p->ptr_in = TRUE;
  if (p->kind && (p->kind->needs & KD_SNAPFIG_HOVER)) kds_panel_redraw(p);
  KdFigPick k;
  kds_panel_pick(p, x, y, &k);
  GdkModifierType st = gtk_event_controller_get_current_event_state(GTK_EVENT_CONTROLLER(m));
  if (!(st & GDK_BUTTON1_MASK)) p->press_seeks = FALSE;
  if (p->press_seeks) seek(p, k.step); /* a drag along the axis scrubs */
  send_hover(p, &k);
}

static void on_leave(GtkEventControllerMotion *m, gpointer user) {
  (void)m;
  KdsPanel *p = KDS_PANEL(user);
  p->ptr_in = FALSE;
  if (p->kind && (p->kind->needs & KD_SNAPFIG_HOVER)) kds_panel_redraw(p);
  KdFigPick k;
  kd_fig_pick_clear(&k);
  send_hover(p, &k);
}

/* Ctrl+wheel zooms the step axis about the pointer, Ctrl+Shift+wheel (or
 * a sideways wheel) pans it; the plain wheel is the page's. */
static gboolean on_scroll(GtkEventControllerScroll *c, double dx, double dy, gpointer user) {
  KdsPanel *p = KDS_PANEL(user);
  GdkModifierType st = gtk_event_controller_get_current_event_state(GTK_EVENT_CONTROLLER(c));
  if (!(st & GDK_CONTROL_MASK)) return FALSE;
  KdFigPick k;
  if (!kds_panel_pick(p, p->ptr_x, p->ptr_y, &k) || !isfinite(k.step) || !(k.step_hi > k.step_lo)) return FALSE;
  if (!isfinite(p->zoom_lo)) p->full_lo = k.step_lo, p->full_hi = k.step_hi;
  double lo = k.step_lo, hi = k.step_hi, span = hi - lo;
  if ((st & GDK_SHIFT_MASK) || dx != 0) {
    double d = ((st & GDK_SHIFT_MASK) ? dy : dx) * 0.1 * span;
    lo += d, hi += d;
  } else {
    double f = pow(1.25, dy); /* down: out */
    lo = k.step - (k.step - lo) * f;
    hi = k.step + (hi - k.step) * f;
    if (hi - lo < 2) return TRUE;
  }
  if (lo <= p->full_lo && hi >= p->full_hi) lo = hi = 0; /* all of it again */
  kds_panel_set_zoom(p, lo, hi);
  return TRUE;
}

/* The arrow keys move the picked pixel (on a panel of level maps). */
static gboolean on_key(GtkEventControllerKey *c, guint key, guint code, GdkModifierType st, gpointer user) {
  (void)c, (void)code;
  KdsPanel *p = KDS_PANEL(user);
  int dx = key == GDK_KEY_Left ? -1 : key == GDK_KEY_Right ? 1 : 0, dy = key == GDK_KEY_Up ? -1 : key == GDK_KEY_Down ? 1 : 0;
  if (!(dx || dy) || (st & (GDK_CONTROL_MASK | GDK_ALT_MASK)) || !p->kind || !p->kind->level_maps) return FALSE;
  g_signal_emit(p, signals[SIGNAL_PICK_MOVE], 0, dx, dy);
  return TRUE;
}

static GtkSizeRequestMode kds_panel_request_mode(GtkWidget *w) {
  (void)w;
  return GTK_SIZE_REQUEST_HEIGHT_FOR_WIDTH;
}

static void kds_panel_measure(GtkWidget *w, GtkOrientation o, int for_size, int *min, int *nat, int *min_base, int *nat_base) {
  *min_base = *nat_base = -1;
  if (o == GTK_ORIENTATION_HORIZONTAL) {
    *min = 160;
    *nat = 420;
    return;
  }
  double width = for_size > 0 ? for_size : 420;
  KdFigPanel fp;
  KDS_PANEL(w)->stale = TRUE; /* a resize was queued: the content changed */
  double h = kds_panel_build(KDS_PANEL(w), &fp) ? kd_fig_panel_height(&fp, kds_panel_style(), width) : 120;
  *min = *nat = (int)(h + 0.5);
}

static void kds_panel_set_property(GObject *o, guint id, const GValue *v, GParamSpec *ps) {
  KdsPanel *p = KDS_PANEL(o);
  if (id != PROP_KIND) {
    G_OBJECT_WARN_INVALID_PROPERTY_ID(o, id, ps);
    return;
  }
  g_free(p->kind_name);
  p->kind_name = g_value_dup_string(v);
  p->kind = p->kind_name ? kd_snapfig_find(p->kind_name) : NULL;
}

static void kds_panel_get_property(GObject *o, guint id, GValue *v, GParamSpec *ps) {
  KdsPanel *p = KDS_PANEL(o);
  if (id == PROP_KIND) g_value_set_string(v, p->kind_name);
  else G_OBJECT_WARN_INVALID_PROPERTY_ID(o, id, ps);
}

static void kds_panel_finalize(GObject *o) {
  KdsPanel *p = KDS_PANEL(o);
  kd_snapfig_store_free(p->store);
  g_free(p->kind_name);
  g_free(p->empty);
  g_clear_pointer(&p->node, gsk_render_node_unref);
  g_ptr_array_unref(p->hidden);
  G_OBJECT_CLASS(kds_panel_parent_class)->finalize(o);
}

static void kds_panel_class_init(KdsPanelClass *k) {
  GObjectClass *oc = G_OBJECT_CLASS(k);
  GtkWidgetClass *wc = GTK_WIDGET_CLASS(k);
  oc->set_property = kds_panel_set_property;
  oc->get_property = kds_panel_get_property;
  oc->finalize = kds_panel_finalize;
  wc->snapshot = kds_panel_snapshot;
  wc->get_request_mode = kds_panel_request_mode;
  wc->measure = kds_panel_measure;
  /* "kind": the figure kind's name, a row of the snapfig table. */
  props[PROP_KIND] = g_param_spec_string("kind", "Kind", "The figure kind (snapfig.h)", NULL,
                                         G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties(oc, N_PROPS, props);
  /* "hover" (const char *text, gboolean on_map, double u, double v): what
   * lies under the pointer ("" when nothing or the pointer left), and where
   * on a map ((u, v) in [0, 1)), for the readout line and the linked cell. */
  signals[SIGNAL_HOVER] = g_signal_new("hover", G_TYPE_FROM_CLASS(k), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE,
                                       4, G_TYPE_STRING, G_TYPE_BOOLEAN, G_TYPE_DOUBLE, G_TYPE_DOUBLE);
  /* "seek" (double step): a click or drag on a step axis asks the window
   * to show that step. */
  signals[SIGNAL_SEEK] = g_signal_new("seek", G_TYPE_FROM_CLASS(k), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 1,
                                      G_TYPE_DOUBLE);
  /* "pick" (double u, double v): a click on a map cell picks that pixel. */
  signals[SIGNAL_PICK] = g_signal_new("pick", G_TYPE_FROM_CLASS(k), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL, G_TYPE_NONE, 2,
                                      G_TYPE_DOUBLE, G_TYPE_DOUBLE);
  /* "pick-move" (int dx, int dy): an arrow key moves the picked pixel by a cell. */
  signals[SIGNAL_PICK_MOVE] = g_signal_new("pick-move", G_TYPE_FROM_CLASS(k), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                           G_TYPE_NONE, 2, G_TYPE_INT, G_TYPE_INT);
}

static void kds_panel_init(KdsPanel *p) {
  p->store = kd_snapfig_store_new();
  p->zoom_lo = p->zoom_hi = p->last_seek = NAN;
  p->hidden = g_ptr_array_new_with_free_func(g_free);
  g_ptr_array_add(p->hidden, NULL);
  gtk_widget_set_hexpand(GTK_WIDGET(p), TRUE);
  GtkEventController *motion = gtk_event_controller_motion_new();
  g_signal_connect(motion, "motion", G_CALLBACK(on_motion), p);
  g_signal_connect(motion, "leave", G_CALLBACK(on_leave), p);
  gtk_widget_add_controller(GTK_WIDGET(p), motion);
  GtkGesture *click = gtk_gesture_click_new();
  gtk_gesture_single_set_button(GTK_GESTURE_SINGLE(click), GDK_BUTTON_PRIMARY);
  g_signal_connect(click, "pressed", G_CALLBACK(on_pressed), p);
  gtk_widget_add_controller(GTK_WIDGET(p), GTK_EVENT_CONTROLLER(click));
  GtkEventController *scroll = gtk_event_controller_scroll_new(GTK_EVENT_CONTROLLER_SCROLL_BOTH_AXES);
  g_signal_connect(scroll, "scroll", G_CALLBACK(on_scroll), p);
  gtk_widget_add_controller(GTK_WIDGET(p), scroll);
  GtkEventController *keys = gtk_event_controller_key_new();
  g_signal_connect(keys, "key-pressed", G_CALLBACK(on_key), p);
  gtk_widget_add_controller(GTK_WIDGET(p), keys);
  gtk_widget_set_focusable(GTK_WIDGET(p), TRUE);
}
