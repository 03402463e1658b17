/* KdsProbeChooser: which validation images the probes look at, picked
 * from the data set. A line with the current list and a "Pick…" button
 * whose popover pages through thumbnails of the validation split (click to
 * add or drop an image) beside the list as text (probe.images syntax:
 * 3,17,42 or a count); Apply hands the list to the run this window drives
 * (kds_bridge_set_probe_images: the next step's capture probes them). A
 * run of another process shows its list and says how to change it. GTK
 * main thread only. */
#ifndef KDS_PROBE_CHOOSER_H
#define KDS_PROBE_CHOOSER_H

#include <gtk/gtk.h>

#include "bridge.h"

G_BEGIN_DECLS

#define KDS_TYPE_PROBE_CHOOSER (kds_probe_chooser_get_type())
G_DECLARE_FINAL_TYPE(KdsProbeChooser, kds_probe_chooser, KDS, PROBE_CHOOSER, GtkWidget)

GtkWidget *kds_probe_chooser_new(void);
/* The run whose probe images it shows and sets (not owned: a weak pointer; NULL: none). */
void kds_probe_chooser_set_bridge(KdsProbeChooser *c, KdsBridge *b);
/* The popover's parts, for tests: the list entry, the thumbnails, Apply, the status line. */
GtkWidget *kds_probe_chooser_entry(KdsProbeChooser *c);
GtkWidget *kds_probe_chooser_thumbs(KdsProbeChooser *c);
GtkWidget *kds_probe_chooser_apply_button(KdsProbeChooser *c);
GtkWidget *kds_probe_chooser_status(KdsProbeChooser *c);
GtkWidget *kds_probe_chooser_button(KdsProbeChooser *c);
/* Shows the page of thumbnails holding validation image `first` (pages of
 * KDS_PROBE_CHOOSER_PAGE). */
void kds_probe_chooser_show_page(KdsProbeChooser *c, int first);
#define KDS_PROBE_CHOOSER_PAGE 24

G_END_DECLS

#endif
