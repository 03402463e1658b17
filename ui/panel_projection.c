/* Instance features of teacher and student projected on the teacher's
 * principal axes, pairs joined: how far each student instance is from
 * its teacher twin, and whether classes separate alike (figure
 * "projection"). */
#include "panels.h"

struct _KdsProjectionPanel {
  KdsPanel parent;
  KdSnapFigStore *store;
};

G_DEFINE_FINAL_TYPE(KdsProjectionPanel, kds_projection_panel, KDS_TYPE_PANEL)

static gboolean projection_build(KdsPanel *panel, const KdsView *v, KdFigPanel *out) {
  return kds_panel_build_snapfig(KD_SNAPFIG_PROJECTION, v, KDS_PROJECTION_PANEL(panel)->store, out);
}

static void projection_finalize(GObject *o) {
  kd_snapfig_store_free(KDS_PROJECTION_PANEL(o)->store);
  G_OBJECT_CLASS(kds_projection_panel_parent_class)->finalize(o);
}

static void kds_projection_panel_class_init(KdsProjectionPanelClass *k) {
  G_OBJECT_CLASS(k)->finalize = projection_finalize;
  KDS_PANEL_CLASS(k)->build = projection_build;
  KDS_PANEL_CLASS(k)->kind = kd_snapfig_name(KD_SNAPFIG_PROJECTION);
}

static void kds_projection_panel_init(KdsProjectionPanel *p) { p->store = kd_snapfig_store_new(); }
