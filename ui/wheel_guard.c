/* The wheel guard: a capture-phase scroll handler on value controls that
 * hands unfocused wheel turns to the enclosing scrolled window. It must not
 * change any value itself. */
#include "wheel_guard.h"

#include <math.h>

static gboolean on_scroll(GtkEventControllerScroll *sc, double dx, double dy, gpointer user) {
  (void)dx, (void)user;
  GtkWidget *w = gtk_event_controller_get_widget(GTK_EVENT_CONTROLLER(sc));
  /* Focus inside the control (a spin button's focus sits in its text) means
   * the user picked it: the wheel then steps its value as GTK does. */
  if (gtk_widget_get_state_flags(w) & GTK_STATE_FLAG_FOCUS_WITHIN) return FALSE;
  GtkWidget *sw = gtk_widget_get_ancestor(w, GTK_TYPE_SCROLLED_WINDOW);
  if (sw) {
    GtkAdjustment *a = gtk_scrolled_window_get_vadjustment(GTK_SCROLLED_WINDOW(sw));
    double page = gtk_adjustment_get_page_size(a);
    /* GTK's own wheel step for a scrolled window: page^(2/3) per notch. */
    double delta = gtk_event_controller_scroll_get_unit(sc) == GDK_SCROLL_UNIT_SURFACE ? dy : dy * pow(page, 2.0 / 3.0);
    double v = gtk_adjustment_get_value(a) + delta;
    double hi = gtk_adjustment_get_upper(a) - page, lo = gtk_adjustment_get_lower(a);
    gtk_adjustment_set_value(a, fmax(lo, fmin(hi, v)));
  }
  return TRUE; /* stops the event before the control's own scroll handler */
}

void kds_wheel_guard(GtkWidget *w) {
  GtkEventController *sc = gtk_event_controller_scroll_new(GTK_EVENT_CONTROLLER_SCROLL_BOTH_AXES);
  gtk_event_controller_set_propagation_phase(sc, GTK_PHASE_CAPTURE);
  g_signal_connect(sc, "scroll", G_CALLBACK(on_scroll), NULL);
  gtk_widget_add_controller(w, sc);
}
