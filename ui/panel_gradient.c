/* Gradient magnitude on the student's FPN features by source (detection
 * loss, each distillation loss), with the foreground/background means
 * (figure "gradmaps"). */
#include "panels.h"

struct _KdsGradientPanel {
  KdsPanel parent;
  KdSnapFigStore *store;
};

G_DEFINE_FINAL_TYPE(KdsGradientPanel, kds_gradient_panel, KDS_TYPE_PANEL)

static gboolean gradient_build(KdsPanel *panel, const KdsView *v, KdFigPanel *out) {
  return kds_panel_build_snapfig(KD_SNAPFIG_GRADMAPS, v, KDS_GRADIENT_PANEL(panel)->store, out);
}

static void gradient_finalize(GObject *o) {
  kd_snapfig_store_free(KDS_GRADIENT_PANEL(o)->store);
  G_OBJECT_CLASS(kds_gradient_panel_parent_class)->finalize(o);
}

static void kds_gradient_panel_class_init(KdsGradientPanelClass *k) {
  G_OBJECT_CLASS(k)->finalize = gradient_finalize;
  KDS_PANEL_CLASS(k)->build = gradient_build;
  KDS_PANEL_CLASS(k)->kind = kd_snapfig_name(KD_SNAPFIG_GRADMAPS);
}

static void kds_gradient_panel_init(KdsGradientPanel *p) { p->store = kd_snapfig_store_new(); }
