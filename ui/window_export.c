/* Ctrl+E: export a figure (PDF, SVG or PNG at a column width) of what the
 * window shows, built by the same kd_snapfig_build the panels and
 * `kdscope export` use, with a paper's choices (font family, renamed
 * series with math labels, legend place, axis limits, dpi), a preview of
 * the file, and the `kdscope export` command (kd_snapfig_command) that
 * renders the same file from the run directory. */
#include <math.h>
#include <string.h>

#include "export.h"
#include "panel.h"
#include "snapfig.h"
#include "window.h"

#define PREVIEW_PX 460

typedef struct Dlg {
  KdsWindow *win;
  GtkWidget *dialog, *kind_dd, *fmt_dd, *width_dd, *font_dd, *legend_dd, *dpi_spin, *letters_check;
  GtkWidget *rename_entry, *xlim_entry, *ylim_entry, *aplim_entry;
  GtkWidget *preview, *cmd_label, *status_label;
  KdSnapFigStore *store, *preview_store;
  KdSnapshots *snaps; /* the run's snapshot files, for the gradients figure */
  /* the renames, parsed from the entry */
  char rename_buf[KD_SNAPFIG_MAX_RENAMES][256];
  const char *from[KD_SNAPFIG_MAX_RENAMES], *to[KD_SNAPFIG_MAX_RENAMES];
  int nrename;
  const char *fonts[16];
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

/* The style and size asked; a family that is not installed falls back
 * with a message into msg. */
static void chosen_output(Dlg *d, KdFigStyle *st, KdExportOpts *o, char *msg, size_t len) {
  kd_fig_style_default(st);
  st->panel_letters = gtk_check_button_get_active(GTK_CHECK_BUTTON(d->letters_check));
  guint f = gtk_drop_down_get_selected(GTK_DROP_DOWN(d->font_dd));
  st->font_family = kd_fig_font_resolve(f < G_N_ELEMENTS(d->fonts) && d->fonts[f] ? d->fonts[f] : NULL, msg, len);
  kd_export_opts_default(o);
  o->width = gtk_drop_down_get_selected(GTK_DROP_DOWN(d->width_dd)) ? KD_EXPORT_DOUBLE_COLUMN_IN : KD_EXPORT_SINGLE_COLUMN_IN;
  o->unit = KD_UNIT_IN;
  o->dpi = gtk_spin_button_get_value(GTK_SPIN_BUTTON(d->dpi_spin));
  o->title = chosen_kind(d)->name;
}

/* The window's panel of the chosen kind (its zoom and hidden series go
 * into the figure), or the first panel for a kind with none. */
static KdsPanel *source_panel(Dlg *d) {
  int n = kds_window_panel_count(d->win);
  for (int i = 0; i < n; i++)
    if (kds_panel_figure(kds_window_get_panel(d->win, i)) == chosen_kind(d)) return kds_window_get_panel(d->win, i);
  return n ? kds_window_get_panel(d->win, 0) : NULL;
}

/* "det.cls=L_{cls}; fitnet.feat=L_{feat}" into d's renames. */
static gboolean parse_renames(Dlg *d, KdError *err) {
  d->nrename = 0;
  const char *text = gtk_editable_get_text(GTK_EDITABLE(d->rename_entry));
  gchar **items = g_strsplit(text, ";", -1);
  gboolean ok = TRUE;
  for (int i = 0; items[i] && ok; i++) {
    char *item = g_strstrip(items[i]);
    if (!*item) continue;
    if (d->nrename == KD_SNAPFIG_MAX_RENAMES) {
      kd_error(err, "at most %d renames", KD_SNAPFIG_MAX_RENAMES);
      ok = FALSE;
    } else if (kd_snapfig_rename_parse(item, d->rename_buf[d->nrename], sizeof d->rename_buf[0], &d->from[d->nrename],
                                       &d->to[d->nrename], err)) {
      ok = FALSE;
    } else {
      d->nrename++;
    }
  }
  g_strfreev(items);
  return ok;
}

static gboolean parse_limits(GtkWidget *entry, const char *opt, double *lo, double *hi, KdError *err) {
  const char *text = gtk_editable_get_text(GTK_EDITABLE(entry));
  *lo = *hi = NAN;
  return !*text || kd_snapfig_limits_parse(opt, text, lo, hi, err) == 0;
}

/* The figure the dialog exports: the panel's view and choices, the
 * dialog's chart options; the grid over every probe image; gradients over
 * every level and the snapshots up to the one on screen. FALSE with err
 * when there is no view or an option does not parse. */
static gboolean chosen_view(Dlg *d, KdSnapFigView *sv, KdError *err) {
  KdsPanel *p = source_panel(d);
  if (!p || !kds_panel_get_view(p)) return kd_error(err, "nothing to export yet"), FALSE;
  kds_panel_view_snapfig(p, sv);
  sv->mark = (KdFigMark){0, 0, 0}; /* the pointer's linked cell is not part of a figure */
  sv->cursor_on = 0;                /* nor is the playhead */
  if (sv->smooth_off) sv->smooth.kind = KD_SMOOTH_NONE; /* the raw series, as the panel shows it */
  sv->smooth_off = 0;
  const KdSnapFigKind *k = chosen_kind(d);
  if (k->needs & KD_SNAPFIG_NEEDS_SNAPSHOTS) {
    KdsBridge *b = kds_window_get_bridge(d->win);
    KdError e2;
    if (!d->snaps && b) d->snaps = kd_snapshots_open(kds_bridge_run_dir(b), &e2);
    if (d->snaps) kd_snapshots_refresh(d->snaps, &e2);
    sv->snaps = d->snaps;
  }
  if (k->options & KD_SNAPFIG_OPT_ANY_LEVEL) sv->level = -1;
  if (!parse_renames(d, err)) return FALSE;
  sv->rename_from = d->from, sv->rename_to = d->to, sv->nrename = d->nrename;
  sv->legend = (KdFigLegendPos)gtk_drop_down_get_selected(GTK_DROP_DOWN(d->legend_dd));
  double zlo = sv->xmin, zhi = sv->xmax;
  if (!parse_limits(d->xlim_entry, "x limits", &sv->xmin, &sv->xmax, err) ||
      !parse_limits(d->ylim_entry, "y limits", &sv->ymin, &sv->ymax, err) ||
      !parse_limits(d->aplim_entry, "AP limits", &sv->apmin, &sv->apmax, err))
    return FALSE;
  if (!isfinite(sv->xmin) && !isfinite(sv->xmax)) sv->xmin = zlo, sv->xmax = zhi; /* the panel's zoom */
  return TRUE;
}

/* The figure as a picture in the dialog, at a size that fits it. */
static void show_preview(Dlg *d, const KdFigPanel *fp, const KdFigStyle *st, const KdExportOpts *o) {
  KdExportOpts po = *o;
  po.dpi = PREVIEW_PX / o->width;
  KdError err;
  cairo_surface_t *s = kd_export_render_image(fp, st, &po, &err);
  if (!s) {
    gtk_picture_set_paintable(GTK_PICTURE(d->preview), NULL);
    return;
  }
  int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s), stride = cairo_image_surface_get_stride(s);
  guchar *px = g_malloc((size_t)stride * h);
  memcpy(px, cairo_image_surface_get_data(s), (size_t)stride * h);
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) px[(size_t)y * stride + 4 * x + 3] = 0xFF; /* RGB24: the fourth byte is unset */
  GBytes *bytes = g_bytes_new_take(px, (size_t)stride * h);
  GdkTexture *t = gdk_memory_texture_new(w, h, GDK_MEMORY_B8G8R8A8_PREMULTIPLIED, bytes, (gsize)stride);
  gtk_picture_set_paintable(GTK_PICTURE(d->preview), GDK_PAINTABLE(t));
  gtk_widget_set_size_request(d->preview, w, h);
  g_object_unref(t);
  g_bytes_unref(bytes);
  cairo_surface_destroy(s);
}

/* The command for out_path (the default name when NULL) and, with
 * preview, the preview; status messages (a font fallback, a bad option). */
static void refresh(Dlg *d, const char *out_path, gboolean preview) {
  KdSnapFigView sv;
  KdFigStyle st;
  KdExportOpts o;
  KdError err = {{0}};
  char msg[256];
  chosen_output(d, &st, &o, msg, sizeof msg);
  if (!chosen_view(d, &sv, &err)) {
    gtk_label_set_text(GTK_LABEL(d->cmd_label), "");
    gtk_label_set_text(GTK_LABEL(d->status_label), err.msg);
    return;
  }
  KdsBridge *b = kds_window_get_bridge(d->win);
  char def[64], cmd[4096];
  g_snprintf(def, sizeof def, "%s.%s", chosen_kind(d)->name, fmt_ext(chosen_fmt(d)));
  if (kd_snapfig_command(chosen_kind(d), &sv, b ? kds_bridge_run_dir(b) : NULL, &st, &o, chosen_fmt(d), out_path ? out_path : def, cmd,
                         sizeof cmd))
    g_snprintf(cmd, sizeof cmd, "(the command is too long to show)");
  gtk_label_set_text(GTK_LABEL(d->cmd_label), cmd);
  if (!out_path) gtk_label_set_text(GTK_LABEL(d->status_label), msg);
  if (!preview) return;
  KdFigPanel fp;
  if (kd_snapfig_build(chosen_kind(d), &sv, d->preview_store, &fp, &err) == 0) show_preview(d, &fp, &st, &o);
  else gtk_label_set_text(GTK_LABEL(d->status_label), err.msg);
}

static void on_change(GObject *o, GParamSpec *ps, Dlg *d) {
  (void)o, (void)ps;
  /* chart options only where the figure is a chart */
  unsigned opt = chosen_kind(d)->options;
  gtk_widget_set_sensitive(d->rename_entry, (opt & (KD_SNAPFIG_OPT_PARTS | KD_SNAPFIG_OPT_SMOOTH)) != 0);
  GtkWidget *chart[] = {d->legend_dd, d->xlim_entry, d->ylim_entry, d->aplim_entry};
  for (size_t i = 0; i < G_N_ELEMENTS(chart); i++) gtk_widget_set_sensitive(chart[i], (opt & KD_SNAPFIG_OPT_PARTS) != 0);
  refresh(d, NULL, TRUE);
}

static void on_toggled(GtkCheckButton *b, Dlg *d) { on_change(G_OBJECT(b), NULL, d); }
static void on_edited(GtkEditable *e, Dlg *d) { on_change(G_OBJECT(e), NULL, d); }

/* Writes the figure to path (the format from its name, else the chosen
 * one) and shows the command for that file; FALSE with the reason in the
 * status line. */
static gboolean save_to(Dlg *d, const char *path) {
  KdSnapFigView sv;
  KdFigStyle st;
  KdExportOpts o;
  KdFigPanel fp;
  KdError err = {{0}};
  char msg[256];
  int fmt = kd_export_format_from_path(path);
  if (fmt < 0) fmt = chosen_fmt(d);
  chosen_output(d, &st, &o, msg, sizeof msg);
  if (!chosen_view(d, &sv, &err) || kd_snapfig_build(chosen_kind(d), &sv, d->store, &fp, &err) ||
      kd_export_panel(path, fmt, &fp, &st, &o, &err)) {
    gtk_label_set_text(GTK_LABEL(d->status_label), err.msg);
    return FALSE;
  }
  char *line = g_strdup_printf("Wrote %s%s%s", path, msg[0] ? "; " : "", msg);
  gtk_label_set_text(GTK_LABEL(d->status_label), line);
  g_free(line);
  /* The command for the file just written (its format may come from the
   * name the user typed). */
  if (fmt != (int)chosen_fmt(d)) gtk_drop_down_set_selected(GTK_DROP_DOWN(d->fmt_dd), fmt == KD_EXPORT_PDF ? 0 : fmt == KD_EXPORT_SVG ? 1 : 2);
  refresh(d, path, FALSE);
  return TRUE;
}

static void on_save_response(GtkNativeDialog *fc, int response, Dlg *d) {
  if (response == GTK_RESPONSE_ACCEPT) {
    GFile *f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(fc));
    char *path = g_file_get_path(f);
    save_to(d, path);
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
  kd_snapfig_store_free(d->preview_store);
  kd_snapshots_close(d->snaps);
  g_free(d);
}

/* A label and an input on row `row` of grid g. */
static void row(GtkWidget *g, int r, const char *label, GtkWidget *input, const char *tip) {
  GtkWidget *l = gtk_label_new(label);
  gtk_label_set_xalign(GTK_LABEL(l), 0);
  gtk_grid_attach(GTK_GRID(g), l, 0, r, 1, 1);
  gtk_grid_attach(GTK_GRID(g), input, 1, r, 1, 1);
  if (tip) gtk_widget_set_tooltip_text(input, tip);
}

static GtkWidget *entry(const char *placeholder) {
  GtkWidget *e = gtk_entry_new();
  gtk_entry_set_placeholder_text(GTK_ENTRY(e), placeholder);
  return e;
}

/* The font list: the paper families, those not installed marked. */
static GtkWidget *font_dropdown(Dlg *d) {
  GtkStringList *l = gtk_string_list_new(NULL);
  const char *const *fonts = kd_fig_paper_fonts();
  for (int i = 0; fonts[i] && i < (int)G_N_ELEMENTS(d->fonts) - 1; i++) {
    d->fonts[i] = fonts[i];
    char *s = g_strdup_printf("%s%s", fonts[i], kd_fig_font_installed(fonts[i]) ? "" : " (not installed)");
    gtk_string_list_append(l, s);
    g_free(s);
  }
  return gtk_drop_down_new(G_LIST_MODEL(l), NULL);
}

GtkWidget *kds_window_export_dialog(KdsWindow *w) {
  Dlg *d = g_new0(Dlg, 1);
  d->win = w;
  d->store = kd_snapfig_store_new();
  d->preview_store = kd_snapfig_store_new();
  d->dialog = gtk_window_new();
  gtk_window_set_title(GTK_WINDOW(d->dialog), "Export figure");
  gtk_window_set_transient_for(GTK_WINDOW(d->dialog), GTK_WINDOW(w));
  gtk_window_set_modal(GTK_WINDOW(d->dialog), TRUE);
  GtkStringList *kinds = gtk_string_list_new(NULL);
  for (int i = 0; i < kd_snapfig_count(); i++) gtk_string_list_append(kinds, kd_snapfig_at(i)->name);
  d->kind_dd = gtk_drop_down_new(G_LIST_MODEL(kinds), NULL);
  d->fmt_dd = gtk_drop_down_new_from_strings(fmts);
  d->width_dd = gtk_drop_down_new_from_strings(widths);
  d->font_dd = font_dropdown(d);
  const char *legends[KD_FIG_LEGEND_NPOS + 1];
  for (int i = 0; i < KD_FIG_LEGEND_NPOS; i++) legends[i] = kd_fig_legend_pos_name((KdFigLegendPos)i);
  legends[KD_FIG_LEGEND_NPOS] = NULL;
  d->legend_dd = gtk_drop_down_new_from_strings(legends);
  d->dpi_spin = gtk_spin_button_new_with_range(72, 1200, 50);
  gtk_spin_button_set_value(GTK_SPIN_BUTTON(d->dpi_spin), 300);
  d->letters_check = gtk_check_button_new_with_label("Panel letters (a), (b)…");
  d->rename_entry = entry("det.cls=L_{cls}; defeat.alpha_bg=\\alpha_{bg}");
  d->xlim_entry = entry("LO:HI (steps; empty: the data's, or the panel's zoom)");
  d->ylim_entry = entry("LO:HI (loss)");
  d->aplim_entry = entry("LO:HI (AP, %)");
  d->preview = gtk_picture_new();
  gtk_picture_set_can_shrink(GTK_PICTURE(d->preview), FALSE);
  gtk_widget_set_halign(d->preview, GTK_ALIGN_START);
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
  int r = 0;
  row(g, r++, "Figure", d->kind_dd, NULL);
  row(g, r++, "Format", d->fmt_dd, NULL);
  row(g, r++, "Width", d->width_dd, NULL);
  row(g, r++, "DPI", d->dpi_spin, "PNG pixels per inch, and of the images a PDF or SVG embeds");
  row(g, r++, "Font", d->font_dd, "The family of every label: a LaTeX paper's (Latin Modern, TeX Gyre) or DejaVu");
  row(g, r++, "Rename", d->rename_entry, "Series and setting labels, OLD=NEW; ...: _{..} subscript, ^{..} superscript, \\alpha Greek");
  row(g, r++, "Legend", d->legend_dd, NULL);
  row(g, r++, "x limits", d->xlim_entry, NULL);
  row(g, r++, "y limits", d->ylim_entry, NULL);
  row(g, r++, "AP limits", d->aplim_entry, NULL);
  gtk_grid_attach(GTK_GRID(g), d->letters_check, 1, r++, 1, 1);
  GtkWidget *hint = gtk_label_new("The same figure from the run directory:");
  gtk_label_set_xalign(GTK_LABEL(hint), 0);
  gtk_grid_attach(GTK_GRID(g), hint, 0, r++, 2, 1);
  gtk_grid_attach(GTK_GRID(g), d->cmd_label, 0, r++, 2, 1);
  gtk_grid_attach(GTK_GRID(g), d->status_label, 0, r++, 2, 1);
  gtk_grid_attach(GTK_GRID(g), save, 1, r++, 1, 1);
  GtkWidget *dd[] = {d->kind_dd, d->fmt_dd, d->width_dd, d->font_dd, d->legend_dd};
  for (size_t i = 0; i < G_N_ELEMENTS(dd); i++) g_signal_connect(dd[i], "notify::selected", G_CALLBACK(on_change), d);
  GtkWidget *ed[] = {d->rename_entry, d->xlim_entry, d->ylim_entry, d->aplim_entry};
  for (size_t i = 0; i < G_N_ELEMENTS(ed); i++) g_signal_connect(ed[i], "changed", G_CALLBACK(on_edited), d);
  g_signal_connect(d->dpi_spin, "notify::value", G_CALLBACK(on_change), d);
  g_signal_connect(d->letters_check, "toggled", G_CALLBACK(on_toggled), d);
  g_signal_connect(save, "clicked", G_CALLBACK(on_save), d);
  g_signal_connect(d->dialog, "destroy", G_CALLBACK(on_destroy), d);
  /* options at the left, the preview at the right */
  GtkWidget *box = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
  gtk_widget_set_margin_start(box, 12), gtk_widget_set_margin_end(box, 12), gtk_widget_set_margin_top(box, 12),
      gtk_widget_set_margin_bottom(box, 12);
  gtk_box_append(GTK_BOX(box), g);
  GtkWidget *sw = gtk_scrolled_window_new();
  gtk_scrolled_window_set_child(GTK_SCROLLED_WINDOW(sw), d->preview);
  gtk_scrolled_window_set_min_content_width(GTK_SCROLLED_WINDOW(sw), PREVIEW_PX + 4);
  gtk_scrolled_window_set_min_content_height(GTK_SCROLLED_WINDOW(sw), 420);
  gtk_box_append(GTK_BOX(box), sw);
  gtk_window_set_child(GTK_WINDOW(d->dialog), box);
  /* names for tests that drive the dialog */
  GtkWidget *named[] = {d->kind_dd, d->fmt_dd, d->width_dd, d->dpi_spin, d->font_dd, d->rename_entry, d->legend_dd,
                        d->xlim_entry, d->ylim_entry, d->aplim_entry, d->preview, d->cmd_label, d->status_label};
  const char *names[] = {"kind", "format", "width", "dpi", "font", "rename", "legend", "xlim", "ylim", "aplim",
                         "preview", "command", "status"};
  for (size_t i = 0; i < G_N_ELEMENTS(named); i++) gtk_widget_set_name(named[i], names[i]);
  g_object_set_data(G_OBJECT(d->dialog), "kds-export", d);
  on_change(NULL, NULL, d);
  gtk_window_present(GTK_WINDOW(d->dialog));
  return d->dialog;
}

gboolean kds_export_dialog_save(GtkWidget *dialog, const char *path, GError **error) {
  Dlg *d = g_object_get_data(G_OBJECT(dialog), "kds-export");
  if (!d) return FALSE;
  gboolean ok = save_to(d, path);
  if (!ok) g_set_error(error, g_quark_from_static_string("kds-export"), 1, "%s", gtk_label_get_text(GTK_LABEL(d->status_label)));
  return ok;
}
