/* "Compare with a run…": pick another run directory; its loss parts and
 * AP are drawn dotted on the curves (kds_window_set_reference). */
#include "window.h"

static void on_response(GtkNativeDialog *d, int response, gpointer user) {
  KdsWindow *w = user;
  if (response == GTK_RESPONSE_ACCEPT) {
    GFile *f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(d));
    char *path = f ? g_file_get_path(f) : NULL;
    GError *e = NULL;
    if (path && !kds_window_set_reference(w, path, &e)) {
      kds_window_toast(w, e->message);
      g_error_free(e);
    }
    g_free(path);
    if (f) g_object_unref(f);
  }
  g_object_unref(d);
}

void kds_window_compare_dialog(KdsWindow *w) {
  GtkFileChooserNative *d = gtk_file_chooser_native_new("Compare with a run (its directory)", GTK_WINDOW(w),
                                                        GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, "_Compare", "_Cancel");
  g_signal_connect(d, "response", G_CALLBACK(on_response), w);
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(d));
}
