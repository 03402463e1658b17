/* Ctrl+E: export a panel as a figure (PDF, SVG or PNG at a column width)
 * through the same drawing as the screen, and show the `kdscope export`
 * command that regenerates it from the run directory. */
#include <string.h>

#include "export.h"
#include "window.h"

void kds_window_export_dialog(KdsWindow *w);

typedef struct Dlg {
  KdsWindow *win;
  GtkWidget *dialog, *kind_dd, *fmt_dd, *width_dd, *cmd_label;
} Dlg;

static const char *fmts[] = {"pdf", "svg", "png", NULL};
static const char *widths[] = {"3.3 in (single column)", "6.9 in (double column)", NULL};

static KdsPanel *chosen_panel(Dlg *d) {
  guint k = gtk_drop_down_get_selected(GTK_DROP_DOWN(d->kind_dd));
  return k < (guint)kds_window_panel_count(d->win) ? kds_window_get_panel(d->win, (int)k) : NULL;
}

static double chosen_width(Dlg *d) { return gtk_drop_down_get_selected(GTK_DROP_DOWN(d->width_dd)) ? 6.9 : 3.3; }
static const char *chosen_fmt(Dlg *d) { return fmts[gtk_drop_down_get_selected(GTK_DROP_DOWN(d->fmt_dd))]; }

static void update_command(GObject *o, GParamSpec *ps, Dlg *d) {
  (void)o, (void)ps;
  KdsPanel *p = chosen_panel(d);
  if (!p) return;
  const KdsView *v = kds_panel_get_view(p);
  KdsBridge *b = kds_window_get_bridge(d->win);
  char lv[16] = "P3";
  if (v && v->snap) kd_snapshot_level_name(v->snap, v->level, lv, sizeof lv);
  char *cmd = g_strdup_printf("kdscope export --run %s --figure %s --step %s --images %d --level %s --format %s --width-in %.1f --out %s.%s",
                              b ? kds_bridge_run_dir(b) : "RUN_DIR", kds_panel_kind(p),
                              v && v->snap ? g_strdup_printf("%d", v->snap->step) : "last", v ? v->image : 0, lv, chosen_fmt(d),
                              chosen_width(d), kds_panel_kind(p), chosen_fmt(d));
  gtk_label_set_text(GTK_LABEL(d->cmd_label), cmd);
  g_free(cmd);
}

static void on_save_response(GtkNativeDialog *fc, int response, Dlg *d) {
  if (response == GTK_RESPONSE_ACCEPT) {
    GFile *f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(fc));
    char *path = g_file_get_path(f);
    KdsPanel *p = chosen_panel(d);
    KdFigPanel fp;
    KdFigStyle st;
    kd_fig_style_default(&st);
    KdExportOpts o;
    kd_export_opts_default(&o);
    o.width = chosen_width(d);
    o.unit = KD_UNIT_IN;
    KdError err;
    int fmt = kd_export_format_from_path(path);
    if (!p || !kds_panel_build(p, &fp)) gtk_label_set_text(GTK_LABEL(d->cmd_label), "Nothing to export yet: wait for the first probe.");
    else if (kd_export_panel(path, fmt >= 0 ? fmt : (int)gtk_drop_down_get_selected(GTK_DROP_DOWN(d->fmt_dd)) == 0 ? KD_EXPORT_PDF
                                                                 : gtk_drop_down_get_selected(GTK_DROP_DOWN(d->fmt_dd)) == 1 ? KD_EXPORT_SVG
                                                                                                                               : KD_EXPORT_PNG,
                             &fp, &st, &o, &err))
      gtk_label_set_text(GTK_LABEL(d->cmd_label), err.msg);
    else {
      char *msg = g_strdup_printf("Wrote %s", path);
      gtk_label_set_text(GTK_LABEL(d->cmd_label), msg);
      g_free(msg);
    }
    g_free(path);
    g_object_unref(f);
  }
  g_object_unref(fc);
}

static void on_save(GtkButton *btn, Dlg *d) {
  (void)btn;
  GtkFileChooserNative *fc = gtk_file_chooser_native_new("Export figure", GTK_WINDOW(d->dialog), GTK_FILE_CHOOSER_ACTION_SAVE, "_Save", "_Cancel");
  KdsPanel *p = chosen_panel(d);
  char *name = g_strdup_printf("%s.%s", p ? kds_panel_kind(p) : "figure", chosen_fmt(d));
  gtk_file_chooser_set_current_name(GTK_FILE_CHOOSER(fc), name);
  g_free(name);
  g_signal_connect(fc, "response", G_CALLBACK(on_save_response), d);
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(fc));
}

static void on_destroy(GtkWidget *w, Dlg *d) {
  (void)w;
  g_free(d);
}

void kds_window_export_dialog(KdsWindow *w) {
  Dlg *d = g_new0(Dlg, 1);
  d->win = w;
  d->dialog = gtk_window_new();
  gtk_window_set_title(GTK_WINDOW(d->dialog), "Export figure");
  gtk_window_set_transient_for(GTK_WINDOW(d->dialog), GTK_WINDOW(w));
  gtk_window_set_modal(GTK_WINDOW(d->dialog), TRUE);
  GtkStringList *kinds = gtk_string_list_new(NULL);
  for (int i = 0; i < kds_window_panel_count(w); i++) gtk_string_list_append(kinds, kds_panel_kind(kds_window_get_panel(w, i)));
  d->kind_dd = gtk_drop_down_new(G_LIST_MODEL(kinds), NULL);
  d->fmt_dd = gtk_drop_down_new_from_strings(fmts);
  d->width_dd = gtk_drop_down_new_from_strings(widths);
  d->cmd_label = gtk_label_new("");
  gtk_label_set_selectable(GTK_LABEL(d->cmd_label), TRUE);
  gtk_label_set_wrap(GTK_LABEL(d->cmd_label), TRUE);
  gtk_widget_add_css_class(d->cmd_label, "monospace");
  gtk_widget_set_size_request(d->cmd_label, 480, -1);
  GtkWidget *save = gtk_button_new_with_label("Save…");
  GtkWidget *g = gtk_grid_new();
  gtk_grid_set_row_spacing(GTK_GRID(g), 6);
  gtk_grid_set_column_spacing(GTK_GRID(g), 8);
  gtk_widget_set_margin_start(g, 12), gtk_widget_set_margin_end(g, 12), gtk_widget_set_margin_top(g, 12), gtk_widget_set_margin_bottom(g, 12);
  const char *labels[3] = {"Figure", "Format", "Width"};
  GtkWidget *inputs[3] = {d->kind_dd, d->fmt_dd, d->width_dd};
  for (int i = 0; i < 3; i++) {
    GtkWidget *l = gtk_label_new(labels[i]);
    gtk_label_set_xalign(GTK_LABEL(l), 0);
    gtk_grid_attach(GTK_GRID(g), l, 0, i, 1, 1);
    gtk_grid_attach(GTK_GRID(g), inputs[i], 1, i, 1, 1);
    g_signal_connect(inputs[i], "notify::selected", G_CALLBACK(update_command), d);
  }
  GtkWidget *hint = gtk_label_new("The same figure from a script:");
  gtk_label_set_xalign(GTK_LABEL(hint), 0);
  gtk_grid_attach(GTK_GRID(g), hint, 0, 3, 2, 1);
  gtk_grid_attach(GTK_GRID(g), d->cmd_label, 0, 4, 2, 1);
  gtk_grid_attach(GTK_GRID(g), save, 1, 5, 1, 1);
  g_signal_connect(save, "clicked", G_CALLBACK(on_save), d);
  g_signal_connect(d->dialog, "destroy", G_CALLBACK(on_destroy), d);
  gtk_window_set_child(GTK_WINDOW(d->dialog), g);
  update_command(NULL, NULL, d);
  gtk_window_present(GTK_WINDOW(d->dialog));
}
