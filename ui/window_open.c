/* Ctrl+O: open a run directory (pick its config.json: follow it live if a
 * process runs it, else replay it) or a config file (start a new run with
 * it in this window). */
#include <string.h>

#include "train/session.h"
#include "window.h"

void kds_window_open_dialog(KdsWindow *w);

static gboolean is_run_config(const char *path) {
  char *dir = g_path_get_dirname(path);
  char *ev = g_build_filename(dir, "events.jsonl", NULL);
  gboolean run = g_str_has_suffix(path, "config.json") && g_file_test(ev, G_FILE_TEST_EXISTS);
  g_free(ev);
  g_free(dir);
  return run;
}

static void on_response(GtkNativeDialog *d, int response, gpointer user) {
  KdsWindow *w = user;
  if (response == GTK_RESPONSE_ACCEPT) {
    GFile *f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(d));
    char *path = g_file_get_path(f);
    GError *e = NULL;
    KdsBridge *b = NULL;
    if (is_run_config(path)) {
      char *dir = g_path_get_dirname(path);
      b = kds_bridge_new_follow(dir, &e);
      g_free(dir);
    } else {
      KdConfig *cfg = kd_config_new();
      KdError err;
      if (!cfg || kd_settings_register_all(cfg) || kd_config_load_file(cfg, path, &err)) {
        g_set_error(&e, g_quark_from_static_string("kds-open"), 1, "%s", cfg ? err.msg : "out of memory");
        kd_config_free(cfg);
      } else {
        KdRunOpts o = {0};
        o.session.distill = *kd_config_str(cfg, "teacher.checkpoint") != 0;
        b = kds_bridge_new_run(cfg, &o, &e);
      }
    }
    if (b) {
      kds_window_set_bridge(w, b);
      g_object_unref(b);
    } else {
      kds_window_show_error(w, e->message);
      g_error_free(e);
    }
    g_free(path);
    g_object_unref(f);
  }
  g_object_unref(d);
}

void kds_window_open_dialog(KdsWindow *w) {
  GtkFileChooserNative *d = gtk_file_chooser_native_new("Open a run (its config.json) or a config", GTK_WINDOW(w),
                                                        GTK_FILE_CHOOSER_ACTION_OPEN, "_Open", "_Cancel");
  GtkFileFilter *f = gtk_file_filter_new();
  gtk_file_filter_set_name(f, "Configs and runs (*.json)");
  gtk_file_filter_add_pattern(f, "*.json");
  gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(d), f);
  g_object_unref(f);
  g_signal_connect(d, "response", G_CALLBACK(on_response), w);
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(d));
}
