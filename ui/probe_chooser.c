/* The probe images chooser (probe_chooser.h): thumbnails of the
 * validation split, decoded a page at a time when shown, and the list as
 * text; the engine parses the text (kd_probe_parse_images) and the prober
 * checks the indices, so the window and --set probe.images agree. */
#include "probe_chooser.h"

#include <stdio.h>
#include <string.h>

#include "data/jpeg.h"
#include "probe/prober.h"

#define THUMB_PX 64

struct _KdsProbeChooser {
  GtkWidget parent;
  KdsBridge *bridge;
  GtkWidget *label, *button, *entry, *flow, *page_label, *prev, *next, *apply, *status;
  GArray *chosen; /* int: validation indices, in the order picked */
  int first;      /* first index of the page shown */
  gboolean syncing;
  KdJpeg *jpeg;
  KdImage img;
};

G_DEFINE_FINAL_TYPE(KdsProbeChooser, kds_probe_chooser, GTK_TYPE_WIDGET)

static const KdDataset *val(KdsProbeChooser *c) { return c->bridge ? kds_bridge_val(c->bridge) : NULL; }

static int chosen_at(KdsProbeChooser *c, guint i) { return g_array_index(c->chosen, int, i); }

static int chosen_find(KdsProbeChooser *c, int idx) {
  for (guint i = 0; i < c->chosen->len; i++)
    if (chosen_at(c, i) == idx) return (int)i;
  return -1;
}

/* probe.images text of the list: "3,17,42"; one index as "17,". */
static void list_text(const int *idx, int n, char *buf, size_t len) {
  buf[0] = 0;
  for (int i = 0; i < n; i++) {
    size_t o = strlen(buf);
    snprintf(buf + o, len - o, "%s%d", i ? "," : "", idx[i]);
  }
  if (n == 1) g_strlcat(buf, ",", len);
}

static void set_entry(KdsProbeChooser *c) {
  char buf[256];
  list_text((const int *)(void *)c->chosen->data, (int)c->chosen->len, buf, sizeof buf);
  c->syncing = TRUE;
  gtk_editable_set_text(GTK_EDITABLE(c->entry), buf);
  c->syncing = FALSE;
}

/* The line beside the button: what the next capture probes. */
static void refresh_label(KdsProbeChooser *c) {
  int idx[KD_PROBE_MAX_IMAGES], n = c->bridge ? kds_bridge_probe_images(c->bridge, idx) : 0;
  char buf[256] = "";
  if (n > 0) {
    g_strlcpy(buf, "val ", sizeof buf);
    for (int i = 0; i < n; i++) {
      size_t o = strlen(buf);
      snprintf(buf + o, sizeof buf - o, "%s%d", i ? ", " : "", idx[i]);
    }
  } else if (c->bridge) {
    snprintf(buf, sizeof buf, "probe.images = %s", kd_config_str(kds_bridge_config(c->bridge), "probe.images"));
  }
  gtk_label_set_text(GTK_LABEL(c->label), buf);
  gtk_widget_set_tooltip_text(c->label, buf);
}

/* A thumbnail of validation image i, or NULL when it cannot be read. */
static GdkTexture *thumb(KdsProbeChooser *c, int i) {
  const KdDataset *ds = val(c);
  char path[4096];
  KdError err;
  if (!ds || kd_dataset_image_path(ds, i, path, sizeof path) || !c->jpeg ||
      kd_jpeg_read_file(c->jpeg, path, THUMB_PX, THUMB_PX, &c->img, &err))
    return NULL;
  GBytes *bytes = g_bytes_new(c->img.rgb, (gsize)c->img.w * c->img.h * 3);
  GdkTexture *t = gdk_memory_texture_new(c->img.w, c->img.h, GDK_MEMORY_R8G8B8, bytes, (gsize)c->img.w * 3);
  g_bytes_unref(bytes);
  return t;
}

static void select_chosen(KdsProbeChooser *c) {
  c->syncing = TRUE;
  for (GtkWidget *ch = gtk_widget_get_first_child(c->flow); ch; ch = gtk_widget_get_next_sibling(ch)) {
    int idx = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(ch), "index"));
    if (chosen_find(c, idx) >= 0) gtk_flow_box_select_child(GTK_FLOW_BOX(c->flow), GTK_FLOW_BOX_CHILD(ch));
    else gtk_flow_box_unselect_child(GTK_FLOW_BOX(c->flow), GTK_FLOW_BOX_CHILD(ch));
  }
  c->syncing = FALSE;
}

void kds_probe_chooser_show_page(KdsProbeChooser *c, int first) {
  const KdDataset *ds = val(c);
  int n = ds ? kd_dataset_num_images(ds) : 0;
  first = n > 0 ? first / KDS_PROBE_CHOOSER_PAGE * KDS_PROBE_CHOOSER_PAGE : 0;
  if (first >= n) first = n > 0 ? (n - 1) / KDS_PROBE_CHOOSER_PAGE * KDS_PROBE_CHOOSER_PAGE : 0;
  c->first = first;
  GtkWidget *ch;
  while ((ch = gtk_widget_get_first_child(c->flow))) gtk_flow_box_remove(GTK_FLOW_BOX(c->flow), ch);
  int last = first + KDS_PROBE_CHOOSER_PAGE < n ? first + KDS_PROBE_CHOOSER_PAGE : n;
  for (int i = first; i < last; i++) {
    GtkWidget *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 1);
    GdkTexture *t = thumb(c, i);
    GtkWidget *pic = t ? gtk_picture_new_for_paintable(GDK_PAINTABLE(t)) : gtk_label_new("?");
    if (t) g_object_unref(t);
    gtk_widget_set_size_request(pic, THUMB_PX, THUMB_PX);
    if (GTK_IS_PICTURE(pic)) gtk_picture_set_can_shrink(GTK_PICTURE(pic), TRUE);
    char num[32];
    snprintf(num, sizeof num, "%d", i);
    gtk_box_append(GTK_BOX(box), pic);
    gtk_box_append(GTK_BOX(box), gtk_label_new(num));
    gtk_flow_box_insert(GTK_FLOW_BOX(c->flow), box, -1);
    GtkWidget *child = gtk_widget_get_last_child(c->flow);
    g_object_set_data(G_OBJECT(child), "index", GINT_TO_POINTER(i));
    char tip[4200];
    snprintf(tip, sizeof tip, "validation image %d: %s", i, kd_dataset_image(ds, i).file_name);
    gtk_widget_set_tooltip_text(child, tip);
  }
  char buf[96];
  if (n > 0) snprintf(buf, sizeof buf, "images %d\xe2\x80\x93%d of %d", first, last - 1, n);
  else snprintf(buf, sizeof buf, "no validation images here");
  gtk_label_set_text(GTK_LABEL(c->page_label), buf);
  gtk_widget_set_sensitive(c->prev, first > 0);
  gtk_widget_set_sensitive(c->next, last < n);
  select_chosen(c);
}

/* A thumbnail clicked: the page's selection into the list, in click order. */
static void on_selection(GtkFlowBox *f, KdsProbeChooser *c) {
  (void)f;
  if (c->syncing) return;
  for (GtkWidget *ch = gtk_widget_get_first_child(c->flow); ch; ch = gtk_widget_get_next_sibling(ch)) {
    int idx = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(ch), "index"));
    int at = chosen_find(c, idx), sel = gtk_flow_box_child_is_selected(GTK_FLOW_BOX_CHILD(ch));
    if (sel && at < 0) g_array_append_val(c->chosen, idx);
    else if (!sel && at >= 0) g_array_remove_index(c->chosen, (guint)at);
  }
  set_entry(c);
}

/* The list typed: the thumbnails follow when it parses. */
static void on_entry_changed(GtkEditable *e, KdsProbeChooser *c) {
  if (c->syncing) return;
  KdProbeCfg pc;
  KdError err;
  kd_probe_cfg_default(&pc);
  if (kd_probe_parse_images(&pc, gtk_editable_get_text(e), &err) || pc.nindices == 0) return;
  g_array_set_size(c->chosen, 0);
  g_array_append_vals(c->chosen, pc.indices, (guint)pc.nindices);
  select_chosen(c);
}

static void on_page(GtkButton *b, KdsProbeChooser *c) {
  kds_probe_chooser_show_page(c, c->first + (GTK_WIDGET(b) == c->next ? 1 : -1) * KDS_PROBE_CHOOSER_PAGE);
}

static void on_apply(GtkButton *b, KdsProbeChooser *c) {
  (void)b;
  KdProbeCfg pc;
  KdError err;
  kd_probe_cfg_default(&pc);
  GError *e = NULL;
  char msg[512];
  if (kd_probe_parse_images(&pc, gtk_editable_get_text(GTK_EDITABLE(c->entry)), &err)) {
    gtk_label_set_text(GTK_LABEL(c->status), err.msg);
    return;
  }
  if (pc.nindices == 0) { /* a count: the first N */
    for (int i = 0; i < pc.nimages; i++) pc.indices[i] = i;
    pc.nindices = pc.nimages;
  }
  if (!c->bridge || !kds_bridge_set_probe_images(c->bridge, pc.indices, pc.nindices, &e)) {
    gtk_label_set_text(GTK_LABEL(c->status), e ? e->message : "no run");
    g_clear_error(&e);
    return;
  }
  g_array_set_size(c->chosen, 0);
  g_array_append_vals(c->chosen, pc.indices, (guint)pc.nindices);
  set_entry(c);
  select_chosen(c);
  char list[256];
  list_text(pc.indices, pc.nindices, list, sizeof list);
  snprintf(msg, sizeof msg, "probing %s from the next step", list);
  gtk_label_set_text(GTK_LABEL(c->status), msg);
  refresh_label(c);
}

/* The popover opens on what the run probes now. */
static void on_popover_show(GtkWidget *w, KdsProbeChooser *c) {
  (void)w;
  int idx[KD_PROBE_MAX_IMAGES], n = c->bridge ? kds_bridge_probe_images(c->bridge, idx) : 0;
  g_array_set_size(c->chosen, 0);
  g_array_append_vals(c->chosen, idx, (guint)n);
  set_entry(c);
  gboolean local = val(c) != NULL;
  gtk_widget_set_sensitive(c->apply, local);
  gtk_widget_set_sensitive(c->entry, local);
  gtk_label_set_text(GTK_LABEL(c->status), local ? "click images to add or drop them, then Apply (16 at most)"
                                                 : "the probe images of a run in another process are set when it starts "
                                                   "(--set probe.images=3,17,42)");
  kds_probe_chooser_show_page(c, n > 0 ? idx[0] : 0);
  refresh_label(c);
}

static GtkWidget *build_popover(KdsProbeChooser *c) {
  GtkWidget *pop = gtk_popover_new(), *box = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
  gtk_widget_set_size_request(box, 6 * (THUMB_PX + 12), -1);
  c->entry = gtk_entry_new();
  gtk_widget_set_tooltip_text(c->entry, "probe.images: validation indices such as 3,17,42 (one as 17,) or a count N "
                                        "(the first N)");
  g_signal_connect(c->entry, "changed", G_CALLBACK(on_entry_changed), c);
  c->flow = gtk_flow_box_new();
  gtk_flow_box_set_selection_mode(GTK_FLOW_BOX(c->flow), GTK_SELECTION_MULTIPLE);
  gtk_flow_box_set_activate_on_single_click(GTK_FLOW_BOX(c->flow), TRUE);
  gtk_flow_box_set_min_children_per_line(GTK_FLOW_BOX(c->flow), 6);
  gtk_flow_box_set_max_children_per_line(GTK_FLOW_BOX(c->flow), 6);
  g_signal_connect(c->flow, "selected-children-changed", G_CALLBACK(on_selection), c);
  GtkWidget *nav = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  c->prev = gtk_button_new_from_icon_name("go-previous-symbolic");
  c->next = gtk_button_new_from_icon_name("go-next-symbolic");
  c->page_label = gtk_label_new("");
  gtk_widget_set_hexpand(c->page_label, TRUE);
  g_signal_connect(c->prev, "clicked", G_CALLBACK(on_page), c);
  g_signal_connect(c->next, "clicked", G_CALLBACK(on_page), c);
  gtk_box_append(GTK_BOX(nav), c->prev);
  gtk_box_append(GTK_BOX(nav), c->page_label);
  gtk_box_append(GTK_BOX(nav), c->next);
  GtkWidget *row = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  gtk_widget_set_hexpand(c->entry, TRUE);
  c->apply = gtk_button_new_with_label("Apply");
  g_signal_connect(c->apply, "clicked", G_CALLBACK(on_apply), c);
  gtk_box_append(GTK_BOX(row), c->entry);
  gtk_box_append(GTK_BOX(row), c->apply);
  c->status = gtk_label_new("");
  gtk_label_set_wrap(GTK_LABEL(c->status), TRUE);
  gtk_label_set_xalign(GTK_LABEL(c->status), 0);
  gtk_box_append(GTK_BOX(box), row);
  gtk_box_append(GTK_BOX(box), c->flow);
  gtk_box_append(GTK_BOX(box), nav);
  gtk_box_append(GTK_BOX(box), c->status);
  gtk_popover_set_child(GTK_POPOVER(pop), box);
  g_signal_connect(pop, "show", G_CALLBACK(on_popover_show), c);
  return pop;
}

static void kds_probe_chooser_dispose(GObject *o) {
  KdsProbeChooser *c = KDS_PROBE_CHOOSER(o);
  kds_probe_chooser_set_bridge(c, NULL);
  g_clear_pointer(&c->label, gtk_widget_unparent);
  g_clear_pointer(&c->button, gtk_widget_unparent);
  G_OBJECT_CLASS(kds_probe_chooser_parent_class)->dispose(o);
}

static void kds_probe_chooser_finalize(GObject *o) {
  KdsProbeChooser *c = KDS_PROBE_CHOOSER(o);
  g_array_unref(c->chosen);
  kd_jpeg_free(c->jpeg);
  kd_image_free(&c->img);
  G_OBJECT_CLASS(kds_probe_chooser_parent_class)->finalize(o);
}

static void kds_probe_chooser_class_init(KdsProbeChooserClass *k) {
  G_OBJECT_CLASS(k)->dispose = kds_probe_chooser_dispose;
  G_OBJECT_CLASS(k)->finalize = kds_probe_chooser_finalize;
  gtk_widget_class_set_layout_manager_type(GTK_WIDGET_CLASS(k), GTK_TYPE_BOX_LAYOUT);
}

static void kds_probe_chooser_init(KdsProbeChooser *c) {
  c->chosen = g_array_new(FALSE, FALSE, sizeof(int));
  c->jpeg = kd_jpeg_new();
  gtk_box_layout_set_spacing(GTK_BOX_LAYOUT(gtk_widget_get_layout_manager(GTK_WIDGET(c))), 6);
  c->label = gtk_label_new("");
  gtk_label_set_ellipsize(GTK_LABEL(c->label), PANGO_ELLIPSIZE_END);
  gtk_label_set_xalign(GTK_LABEL(c->label), 0);
  gtk_widget_set_hexpand(c->label, TRUE);
  c->button = gtk_menu_button_new();
  gtk_menu_button_set_label(GTK_MENU_BUTTON(c->button), "Pick\xe2\x80\xa6");
  gtk_widget_set_tooltip_text(c->button, "Choose the validation images the probes look at");
  gtk_menu_button_set_popover(GTK_MENU_BUTTON(c->button), build_popover(c));
  gtk_widget_set_parent(c->label, GTK_WIDGET(c));
  gtk_widget_set_parent(c->button, GTK_WIDGET(c));
}

GtkWidget *kds_probe_chooser_new(void) { return g_object_new(KDS_TYPE_PROBE_CHOOSER, NULL); }

void kds_probe_chooser_set_bridge(KdsProbeChooser *c, KdsBridge *b) {
  if (c->bridge) g_object_remove_weak_pointer(G_OBJECT(c->bridge), (gpointer *)&c->bridge);
  c->bridge = b;
  if (b) g_object_add_weak_pointer(G_OBJECT(b), (gpointer *)&c->bridge);
  if (c->label) refresh_label(c);
}

GtkWidget *kds_probe_chooser_entry(KdsProbeChooser *c) { return c->entry; }
GtkWidget *kds_probe_chooser_thumbs(KdsProbeChooser *c) { return c->flow; }
GtkWidget *kds_probe_chooser_apply_button(KdsProbeChooser *c) { return c->apply; }
GtkWidget *kds_probe_chooser_status(KdsProbeChooser *c) { return c->status; }
GtkWidget *kds_probe_chooser_button(KdsProbeChooser *c) { return c->button; }
