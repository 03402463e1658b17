/* Probe images picked in the window, in-process under Xvfb: a tiny run
 * (FitNet + DeFeat) with probe.images=3,1 starts; the sidebar's chooser
 * shows them; its popover holds a thumbnail per validation image with
 * the run's images selected; clicking one adds it to the list; Apply hands
 * a list to the run and the next snapshot probes exactly those images (the
 * run logs probe_images); an index outside the validation split is
 * refused in the popover and changes nothing; the "All levels side by
 * side" check turns the gap panel into every level's loss maps. Skips (77)
 * without a display or the data source. */
#include <gtk/gtk.h>
#include <string.h>

#include "check.h"
#include "probe_chooser.h"
#include "probe_run.h"
#include "ui_fixture.h"
#include "window.h"

/* The first widget of type t under w (depth first), or NULL. */
static GtkWidget *find_type(GtkWidget *w, GType t, const char *label) {
  if (G_TYPE_CHECK_INSTANCE_TYPE(w, t) &&
      (!label || (GTK_IS_CHECK_BUTTON(w) && !g_strcmp0(gtk_check_button_get_label(GTK_CHECK_BUTTON(w)), label))))
    return w;
  for (GtkWidget *c = gtk_widget_get_first_child(w); c; c = gtk_widget_get_next_sibling(c)) {
    GtkWidget *f = find_type(c, t, label);
    if (f) return f;
  }
  return NULL;
}

/* The newest snapshot probes the images in want[0..n) (want[n] = -1 ends it). */
static KdsWindow *g_win;
static const int *g_want;
static gboolean probes(gpointer unused) {
  (void)unused;
  KdsBridge *b = kds_window_get_bridge(g_win);
  int n = kds_bridge_snapshot_count(b);
  if (n == 0) return FALSE;
  KdSnapshot *s = kds_bridge_snapshot(b, n - 1, NULL);
  int k = 0, ok = s != NULL;
  for (; ok && g_want[k] >= 0; k++) ok = k < s->nimages && s->image_index[k] == g_want[k];
  ok = ok && s->nimages == k;
  kd_snapshot_free(s);
  return ok;
}

static int count_children(GtkWidget *w) {
  int n = 0;
  for (GtkWidget *c = gtk_widget_get_first_child(w); c; c = gtk_widget_get_next_sibling(c)) n++;
  return n;
}

static GtkFlowBoxChild *thumb_of(GtkWidget *flow, int idx) {
  for (GtkWidget *c = gtk_widget_get_first_child(flow); c; c = gtk_widget_get_next_sibling(c))
    if (GPOINTER_TO_INT(g_object_get_data(G_OBJECT(c), "index")) == idx) return GTK_FLOW_BOX_CHILD(c);
  return NULL;
}

int main(int argc, char **argv) {
  (void)argc, (void)argv;
  int skip = ui_fixture_init(1);
  if (skip) return skip;
  char dir[1024], data[2048], run[2100], tcfg[2100], tck[2100];
  CHECK(fixture_tmpdir(dir, sizeof dir, "chooser") == 0);
  CHECK(fixture_data(dir, data, sizeof data) == 0);
  snprintf(run, sizeof run, "%s/run", dir);
  CHECK(probe_run_teacher(dir, tcfg, sizeof tcfg, tck, sizeof tck) == 0);
  KdError err;
  KdConfig *cfg = fixture_config(data, 100000);
  CHECK(cfg != NULL);
  const char *kv[][2] = {{"teacher.config", tcfg}, {"teacher.checkpoint", tck}, {"train.threads", "1"},
                         {"distill.methods", "fitnet,defeat"}, {"defeat.finest_scale", "11"}, {"probe.images", "3,1"}};
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) CHECK_MSG(kd_config_set(cfg, kv[i][0], kv[i][1], &err) == 0, "%s", err.msg);

  KdsWindow *w = g_win = ui_fixture_window(cfg, run, 1600, 1000);
  CHECK(w != NULL);
  if (!w) return check_status("test_probe_chooser");
  KdsBridge *b = kds_window_get_bridge(w);
  static const int first[] = {3, 1, -1};
  g_want = first;
  CHECK_MSG(ui_wait_for(probes, NULL, 60000), "no snapshot of images 3, 1 within 60 s");

  KdsProbeChooser *pc = KDS_PROBE_CHOOSER(find_type(GTK_WIDGET(w), KDS_TYPE_PROBE_CHOOSER, NULL));
  CHECK(pc != NULL);
  if (!pc) return check_status("test_probe_chooser");
  GtkWidget *label = find_type(GTK_WIDGET(pc), GTK_TYPE_LABEL, NULL);
  CHECK_MSG(label && !strcmp(gtk_label_get_text(GTK_LABEL(label)), "val 3, 1"), "chooser shows '%s'",
            label ? gtk_label_get_text(GTK_LABEL(label)) : "");
  /* The popover: every validation image (16) as a thumbnail, the run's selected. */
  gtk_menu_button_popup(GTK_MENU_BUTTON(kds_probe_chooser_button(pc)));
  ui_pump(300);
  GtkWidget *flow = kds_probe_chooser_thumbs(pc), *entry = kds_probe_chooser_entry(pc);
  GtkWidget *apply = kds_probe_chooser_apply_button(pc), *status = kds_probe_chooser_status(pc);
  CHECK_MSG(count_children(flow) == 16, "%d thumbnails", count_children(flow));
  GList *sel = gtk_flow_box_get_selected_children(GTK_FLOW_BOX(flow));
  CHECK_MSG(g_list_length(sel) == 2 && thumb_of(flow, 3) && gtk_flow_box_child_is_selected(thumb_of(flow, 3)),
            "%u selected", g_list_length(sel));
  g_list_free(sel);
  GtkWidget *pic = thumb_of(flow, 5) ? find_type(GTK_WIDGET(thumb_of(flow, 5)), GTK_TYPE_PICTURE, NULL) : NULL;
  CHECK_MSG(pic && gtk_picture_get_paintable(GTK_PICTURE(pic)), "thumbnail 5 has no picture");
  CHECK_MSG(!strcmp(gtk_editable_get_text(GTK_EDITABLE(entry)), "3,1"), "entry '%s'", gtk_editable_get_text(GTK_EDITABLE(entry)));
  /* A click adds an image to the list, in click order. */
  if (thumb_of(flow, 12)) gtk_flow_box_select_child(GTK_FLOW_BOX(flow), thumb_of(flow, 12));
  CHECK_MSG(!strcmp(gtk_editable_get_text(GTK_EDITABLE(entry)), "3,1,12"), "entry '%s'", gtk_editable_get_text(GTK_EDITABLE(entry)));
  /* Outside the validation split: refused, nothing changes. */
  gtk_editable_set_text(GTK_EDITABLE(entry), "2,16");
  g_signal_emit_by_name(apply, "clicked");
  CHECK_MSG(strstr(gtk_label_get_text(GTK_LABEL(status)), "probe.images: index 16 is outside the validation split (16 images: 0..15)"),
            "status '%s'", gtk_label_get_text(GTK_LABEL(status)));
  int now[KD_PROBE_MAX_IMAGES];
  CHECK(kds_bridge_probe_images(b, now) == 2 && now[0] == 3);
  /* Apply: the next snapshot probes them, and the run logs it. */
  gtk_editable_set_text(GTK_EDITABLE(entry), "7,0,12");
  CHECK(gtk_flow_box_child_is_selected(thumb_of(flow, 7)) && !gtk_flow_box_child_is_selected(thumb_of(flow, 3)));
  g_signal_emit_by_name(apply, "clicked");
  CHECK_MSG(!strcmp(gtk_label_get_text(GTK_LABEL(status)), "probing 7,0,12 from the next step"), "status '%s'",
            gtk_label_get_text(GTK_LABEL(status)));
  static const int second[] = {7, 0, 12, -1};
  g_want = second;
  CHECK_MSG(ui_wait_for(probes, NULL, 60000), "no snapshot of images 7, 0, 12 within 60 s");
  CHECK_MSG(!strcmp(gtk_label_get_text(GTK_LABEL(label)), "val 7, 0, 12"), "chooser shows '%s'", gtk_label_get_text(GTK_LABEL(label)));
  int n;
  cJSON **ev = fixture_jsonl(run, "events.jsonl", &n);
  int logged = 0;
  for (int i = 0; i < n; i++) logged += fixture_is_event(ev[i], "probe_images");
  fixture_jsonl_free(ev, n);
  CHECK_MSG(logged == 1, "%d probe_images events", logged);
  gtk_popover_popdown(GTK_POPOVER(gtk_menu_button_get_popover(GTK_MENU_BUTTON(kds_probe_chooser_button(pc)))));

  /* All levels side by side: the gap panel draws each loss map at P3..P5. */
  GtkWidget *levels = find_type(GTK_WIDGET(w), GTK_TYPE_CHECK_BUTTON, "All levels side by side");
  CHECK(levels != NULL);
  if (levels) gtk_check_button_set_active(GTK_CHECK_BUTTON(levels), TRUE);
  ui_pump(200);
  KdsPanel *gap = NULL;
  for (int i = 0; i < kds_window_panel_count(w); i++)
    if (!strcmp(kds_panel_kind(kds_window_get_panel(w, i)), "gap")) gap = kds_window_get_panel(w, i);
  KdFigPanel fp;
  const KdFigMaps *m = gap && kds_panel_build(gap, &fp) ? fp.spec : NULL;
  CHECK_MSG(m && m->n == 6 && !strcmp(m->items[0].title, "FitNet gap P3") && !strcmp(m->items[5].title, "DeFeat gap P5"),
            "gap panel with all levels: %d maps, first '%s'", m ? m->n : -1, m && m->n ? m->items[0].title : "");
  gtk_window_destroy(GTK_WINDOW(w));
  ui_pump(200);
  if (!check_failures) fixture_rmrf(dir);
  else printf("kept %s for inspection\n", dir);
  return check_status("test_probe_chooser");
}
