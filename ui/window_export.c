/* Ctrl+E: export a figure (PDF, SVG or PNG at a column width) of what the
 * window shows, built by the same kd_snapfig_build the panels and
 * `kdscope export` use, and show the `kdscope export` command
 * (kd_snapfig_command) that renders the same file from the run directory. */
#include <string.h>

#include "export.h"
#include "panel.h"
#include "snapfig.h"
#include "window.h"

void kds_window_export_dialog(KdsWindow *w);

typedef struct Dlg {
  KdsWindow *win;
  GtkWidget *dialog, *kind_dd, *fmt_dd, *width_dd, *letters_check, *cmd_label, *status_label;
  KdSnapFigStore *store;
  KdSnapshots *snaps; /* the run's snapshot files, for the gradients figure */
} Dlg;

static const char *fmts[] = {"pdf", "svg", "png", NULL};
static const KdExportFormat fmt_of[] = {KD_EXPORT_PDF, KD_EXPORT_SVG, KD_EXPORT_PNG};
static const char *widths[] = {"3.3 in (single column)", "6.9 in (double column)", NULL};

/* The dialog lists the figure kinds in the table's export order. */
static const KdSnapFigKind *chosen_kind(Dlg *d) {
  guint k = gtk_drop_down_get_selected(GTK_DROP_DOWN(d->kind_dd));
  return kd_snapfig_at(k < (guint)kd_snapfig_count() ? (int)k : 0);
}

static KdExportFormat chosen_fmt(Dlg *d) {
  guint k = gtk_drop_down_get_selected(GTK_DROP_DOWN(d->fmt_dd));
  return fmt_of[k < G_N_ELEMENTS(fmt_of) ? k : 0];
}

static const char *fmt_ext(KdExportFormat f) { return f == KD_EXPORT_PNG ? "png" : f == KD_EXPORT_SVG ? "svg" : "pdf"; }

static void chosen_output(Dlg *d, KdFigStyle *st, KdExportOpts *o) {
  kd_fig_style_default(st);
  st->panel_letters = gtk_check_button_get_active(GTK_CHECK_BUTTON(d->letters_check));
  kd_export_opts_default(o);
  o->width = gtk_drop_down_get_selected(GTK_DROP_DOWN(d->width_dd)) ? KD_EXPORT_DOUBLE_COLUMN_IN : KD_EXPORT_SINGLE_COLUMN_IN;
  o->unit = KD_UNIT_IN;
  o->title = chosen_kind(d)->name;
}

/* The window's view as the builder takes it for this figure: the panels'
 * choices; the grid over every probe image; gradients over every level and
 * the snapshots up to the one on screen. FALSE when there is no view. */
static gboolean chosen_view(Dlg *d, KdSnapFigView *sv) {
  KdsPanel *p = kds_window_panel_count(d->win) ? kds_window_get_panel(d->win, 0) : NULL;
  const KdsView *v = p ? kds_panel_get_view(p) : NULL;
  if (!v) return FALSE;
  kds_view_snapfig(v, sv);
  sv->mark = (KdFigMark){0, 0, 0}; /* the pointer's linked cell is not part of a figure */
  const KdSnapFigKind *k = chosen_kind(d);
  if (k->needs & KD_SNAPFIG_NEEDS_SNAPSHOTS) {
    KdsBridge *b = kds_window_get_bridge(d->win);
    KdError err;
    if (!d->snaps && b) d->snaps = kd_snapshots_open(kds_bridge_run_dir(b), &err);
    if (d->snaps) kd_snapshots_refresh(d->snaps, &err);
    sv->snaps = d->snaps;
  }
  if (k->options & KD_SNAPFIG_OPT_ANY_LEVEL) sv->level = -1;
  return TRUE;
}

static void show_command(Dlg *d, const char *out_path) {
  KdSnapFigView sv;
  KdFigStyle st;
  KdExportOpts o;
  if (!chosen_view(d, &sv)) return;
  chosen_output(d, &st, &o);
  KdsBridge *b = kds_window_get_bridge(d->win);
  char def[64], cmd[4096];
  g_snprintf(def, sizeof def, "%s.%s", chosen_kind(d)->name, fmt_ext(chosen_fmt(d)));
  if (kd_snapfig_command(chosen_kind(d), &sv, b ? kds_bridge_run_dir(b) : NULL, &st, &o, chosen_fmt(d), out_path ? out_path : def, cmd,
                         sizeof cmd))
    g_snprintf(cmd, sizeof cmd, "(the command is too long to show)");
  gtk_label_set_text(GTK_LABEL(d->cmd_label), cmd);
}

static void update_command(GObject *o, GParamSpec *ps, Dlg *d) {
  (void)o, (void)ps;
  show_command(d, NULL);
  gtk_label_set_text(GTK_LABEL(d->status_label), "");
}

static void on_letters(GtkCheckButton *b, Dlg *d) { update_command(G_OBJECT(b), NULL, d); }

static void on_save_response(GtkNativeDialog *fc, int response, Dlg *d) {
  if (response == GTK_RESPONSE_ACCEPT) {
    GFile *f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(fc));
    char *path = g_file_get_path(f);
    KdSnapFigView sv;
    KdFigStyle st;
    KdExportOpts o;
    KdFigPanel fp;
    KdError err;
    int fmt = kd_export_format_from_path(path);
    if (fmt < 0) fmt = chosen_fmt(d);
    chosen_output(d, &st, &o);
    if (!chosen_view(d, &sv) || kd_snapfig_build(chosen_kind(d), &sv, d->store, &fp, &err) ||
        kd_export_panel(path, fmt, &fp, &st, &o, &err)) {
      gtk_label_set_text(GTK_LABEL(d->status_label), err.msg);
    } else {
      char *msg = g_strdup_printf("Wrote %s", path);
      gtk_label_set_text(GTK_LABEL(d->status_label), msg);
      g_free(msg);
      /* The command for the file just written (its format may come from
       * the name the user typed). */
      if (fmt != (int)chosen_fmt(d)) gtk_drop_down_set_selected(GTK_DROP_DOWN(d->fmt_dd), fmt == KD_EXPORT_PDF ? 0 : fmt == KD_EXPORT_SVG ? 1 : 2);
      show_command(d, path);
    }
    g_free(path);
    g_object_unref(f);
  }
  g_object_unref(fc);
}

static void on_save(GtkButton *btn, Dlg *d) {
  (void)btn;
  GtkFileChooserNative *fc = gtk_file_chooser_native_new("Export figure", GTK_WINDOW(d->dialog), GTK_FILE_CHOOSER_ACTION_SAVE, "_Save", "_Cancel");
  char *name = g_strdup_printf("%s.%s", chosen_kind(d)->name, fmt_ext(chosen_fmt(d)));
  gtk_file_chooser_set_current_name(GTK_FILE_CHOOSER(fc), name);
  g_free(name);
  g_signal_connect(fc, "response", G_CALLBACK(on_save_response), d);
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(fc));
}

static void on_destroy(GtkWidget *w, Dlg *d) {
  (void)w;
  kd_snapfig_store_free(d->store);
  kd_snapshots_close(d->snaps);
  g_free(d);
}

void kds_window_export_dialog(KdsWindow *w) {
  Dlg *d = g_new0(Dlg, 1);
  d->win = w;
  d->store = kd_snapfig_store_new();
  d->dialog = gtk_window_new();
  gtk_window_set_title(GTK_WINDOW(d->dialog), "Export figure");
  gtk_window_set_transient_for(GTK_WINDOW(d->dialog), GTK_WINDOW(w));
  gtk_window_set_modal(GTK_WINDOW(d->dialog), TRUE);
  GtkStringList *kinds = gtk_string_list_new(NULL);
  for (int i = 0; i < kd_snapfig_count(); i++) gtk_string_list_append(kinds, kd_snapfig_at(i)->name);
  d->kind_dd = gtk_drop_down_new(G_LIST_MODEL(kinds), NULL);
  d->fmt_dd = gtk_drop_down_new_from_strings(fmts);
  d->width_dd = gtk_drop_down_new_from_strings(widths);
  d->letters_check = gtk_check_button_new_with_label("Panel letters (a), (b)…");
  d->cmd_label = gtk_label_new("");
  gtk_label_set_selectable(GTK_LABEL(d->cmd_label), TRUE);
  gtk_label_set_wrap(GTK_LABEL(d->cmd_label), TRUE);
  gtk_label_set_xalign(GTK_LABEL(d->cmd_label), 0);
  gtk_widget_add_css_class(d->cmd_label, "monospace");
  gtk_widget_set_size_request(d->cmd_label, 520, -1);
  d->status_label = gtk_label_new("");
  gtk_label_set_wrap(GTK_LABEL(d->status_label), TRUE);
  gtk_label_set_xalign(GTK_LABEL(d->status_label), 0);
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
  gtk_grid_attach(GTK_GRID(g), d->letters_check, 1, 3, 1, 1);
  g_signal_connect(d->letters_check, "toggled", G_CALLBACK(on_letters), d);
  GtkWidget *hint = gtk_label_new("The same figure from the run directory:");
  gtk_label_set_xalign(GTK_LABEL(hint), 0);
  gtk_grid_attach(GTK_GRID(g), hint, 0, 4, 2, 1);
  gtk_grid_attach(GTK_GRID(g), d->cmd_label, 0, 5, 2, 1);
  gtk_grid_attach(GTK_GRID(g), d->status_label, 0, 6, 2, 1);
  gtk_grid_attach(GTK_GRID(g), save, 1, 7, 1, 1);
  g_signal_connect(save, "clicked", G_CALLBACK(on_save), d);
  g_signal_connect(d->dialog, "destroy", G_CALLBACK(on_destroy), d);
  gtk_window_set_child(GTK_WINDOW(d->dialog), g);
  update_command(NULL, NULL, d);
  gtk_window_present(GTK_WINDOW(d->dialog));
}
