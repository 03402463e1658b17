/* Loss parts and COCO AP against step, with a marker wherever a setting
 * changed; smoothing and log y as the view says, raw series kept (figure
 * "curves"). */
#include "panels.h"

struct _KdsCurvesPanel {
  KdsPanel parent;
  KdSnapFigStore *store;
};

G_DEFINE_FINAL_TYPE(KdsCurvesPanel, kds_curves_panel, KDS_TYPE_PANEL)

static gboolean curves_build(KdsPanel *panel, const KdsView *v, KdFigPanel *out) {
  return kds_panel_build_snapfig(KD_SNAPFIG_CURVES, v, KDS_CURVES_PANEL(panel)->store, out);
}

static void curves_finalize(GObject *o) {
  kd_snapfig_store_free(KDS_CURVES_PANEL(o)->store);
  G_OBJECT_CLASS(kds_curves_panel_parent_class)->finalize(o);
}

static void kds_curves_panel_class_init(KdsCurvesPanelClass *k) {
  G_OBJECT_CLASS(k)->finalize = curves_finalize;
  KDS_PANEL_CLASS(k)->build = curves_build;
  KDS_PANEL_CLASS(k)->kind = kd_snapfig_name(KD_SNAPFIG_CURVES);
}

static void kds_curves_panel_init(KdsCurvesPanel *p) { p->store = kd_snapfig_store_new(); }
