/* The figure-panel widget: one GtkWidget for every figure kind, the kind
 * fixed at construction. It draws what kd_snapfig_build gives and nothing
 * of its own; it never tells kinds apart except through their table row. */
#include "panel.h"

#include <string.h>

struct _KdsPanel {
  GtkWidget parent;
  char *kind_name;
  const KdSnapFigKind *kind; /* NULL: a name not in the table */
  KdSnapFigStore *store;
  const KdsView *view;
  guint paints;
  KdFigPick hover; /* the last readout sent, so unchanged ones are not re-sent */
  double painted_time; /* capture time of the snapshot last painted */
};

enum { SIGNAL_HOVER, N_SIGNALS };
static guint signals[N_SIGNALS];
enum { PROP_0, PROP_KIND, N_PROPS };
static GParamSpec *props[N_PROPS];

static double paint_ms_max, paint_ms_sum;
static guint paint_n;
static double lat_ms_max, lat_ms_sum;
static guint lat_n;

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
  gtk_widget_queue_resize(GTK_WIDGET(p));
}

const KdsView *kds_panel_get_view(KdsPanel *p) {
  return p->view;
}

const char *kds_panel_kind(KdsPanel *p) { return p->kind ? p->kind->name : "panel"; }
const KdSnapFigKind *kds_panel_figure(KdsPanel *p) { return p->kind; }

KdsPanel *kds_panel_new(const char *kind) { return g_object_new(KDS_TYPE_PANEL, "kind", kind, NULL); }

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
  out->ref = v->ref;
  out->ref_dir = v->ref_dir;
  out->ref_label = v->ref_label;
}

gboolean kds_panel_build(KdsPanel *p, KdFigPanel *out) {
  if (!p->view || !p->kind || !p->store) return FALSE;
  KdSnapFigView sv;
  kds_view_snapfig(p->view, &sv);
  return kd_snapfig_build(p->kind, &sv, p->store, out, NULL) == 0;
}

guint kds_panel_paint_count(KdsPanel *p) {
  return p->paints;
}

static void draw_empty(cairo_t *cr, double w, double h, const KdsPanel *p) {
  cairo_set_source_rgb(cr, 0.5, 0.5, 0.5);
  cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, 12);
  char msg[96];
  if (!p->kind)
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
  if (!drawn || !v || !v->snap || v->snap->time == p->painted_time || !(p->kind->needs & KD_SNAPFIG_NEEDS_SNAPSHOT))
    return;
  p->painted_time = v->snap->time;
  double done = v->snap->time + v->snap->capture_s;
  if (v->watch_since <= 0 || done < v->watch_since) return;
  double ms = g_get_real_time() / 1000.0 - done * 1000.0;
  lat_ms_sum += ms;
  lat_n++;
  if (ms > lat_ms_max) lat_ms_max = ms;
}

static void kds_panel_snapshot(GtkWidget *w, GtkSnapshot *snapshot) {
  KdsPanel *p = KDS_PANEL(w);
  int width = gtk_widget_get_width(w), height = gtk_widget_get_height(w);
  if (width <= 0 || height <= 0) return;
  gint64 t0 = g_get_monotonic_time();
  cairo_t *cr = gtk_snapshot_append_cairo(snapshot, &GRAPHENE_RECT_INIT(0, 0, (float)width, (float)height));
  KdFigPanel fp;
  gboolean drawn = kds_panel_build(p, &fp);
  if (drawn) kd_fig_paint(cr, &fp, kds_panel_style(), width, height, 1.0);
  else draw_empty(cr, width, height, p);
  cairo_destroy(cr);
  p->paints++;
  note_latency(p, drawn);
  double ms = (g_get_monotonic_time() - t0) / 1000.0;
  paint_ms_sum += ms;
  paint_n++;
  if (ms > paint_ms_max) paint_ms_max = ms;
}

cairo_surface_t *kds_panel_render(KdsPanel *p, double w, double h, double scale) {
  if (w <= 0) w = gtk_widget_get_width(GTK_WIDGET(p));
  if (h <= 0) h = gtk_widget_get_height(GTK_WIDGET(p));
  if (w <= 0) w = 400;
  KdFigPanel fp;
  gboolean ok = kds_panel_build(p, &fp);
  if (h <= 0) h = ok ? fp.height_for_width(w, kds_panel_style(), fp.spec) : 200;
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
  *out = (KdFigPick){{0}, {0, 0, 0}};
  return kds_panel_build(p, &fp) && kd_fig_pick(&fp, kds_panel_style(), w, h, x, y, out);
}

static void send_hover(KdsPanel *p, const KdFigPick *k) {
  if (!strcmp(p->hover.text, k->text) && p->hover.cell.on == k->cell.on) return;
  p->hover = *k;
  g_signal_emit(p, signals[SIGNAL_HOVER], 0, k->text, k->cell.on, k->cell.u, k->cell.v);
}

static void on_motion(GtkEventControllerMotion *m, double x, double y, gpointer user) {
  (void)m;
  KdFigPick k;
  kds_panel_pick(KDS_PANEL(user), x, y, &k);
  send_hover(KDS_PANEL(user), &k);
}

static void on_leave(GtkEventControllerMotion *m, gpointer user) {
  (void)m;
  send_hover(KDS_PANEL(user), &(KdFigPick){{0}, {0, 0, 0}});
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
  double h = kds_panel_build(KDS_PANEL(w), &fp) ? fp.height_for_width(width, kds_panel_style(), fp.spec) : 120;
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
  p->kind = kd_snapfig_find(p->kind_name);
  if (!p->kind) g_warning("KdsPanel: '%s' is not a figure kind (kinds: %s)", p->kind_name ? p->kind_name : "", kd_snapfig_names());
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
}

static void kds_panel_init(KdsPanel *p) {
  p->store = kd_snapfig_store_new();
  gtk_widget_set_hexpand(GTK_WIDGET(p), TRUE);
  GtkEventController *motion = gtk_event_controller_motion_new();
  g_signal_connect(motion, "motion", G_CALLBACK(on_motion), p);
  g_signal_connect(motion, "leave", G_CALLBACK(on_leave), p);
  gtk_widget_add_controller(GTK_WIDGET(p), motion);
}
