/* The mouse wheel over a value control (slider, spin button) scrolls the
 * surrounding sidebar instead of changing the value, unless the control has
 * keyboard focus: rolling the wheel to reach a section further down must
 * never change a run's settings. */
#ifndef KDS_WHEEL_GUARD_H
#define KDS_WHEEL_GUARD_H

#include <gtk/gtk.h>

/* Installs the guard on w (a GtkRange or GtkSpinButton). */
void kds_wheel_guard(GtkWidget *w);

#endif
