/* The probe image with GT, teacher and student boxes (figure "image"). */
#include "panels.h"

struct _KdsImagePanel {
  KdsPanel parent;
  KdSnapFigStore *store;
};

G_DEFINE_FINAL_TYPE(KdsImagePanel, kds_image_panel, KDS_TYPE_PANEL)

static gboolean image_build(KdsPanel *panel, const KdsView *v, KdFigPanel *out) {
  return kds_panel_build_snapfig(KD_SNAPFIG_IMAGE, v, KDS_IMAGE_PANEL(panel)->store, out);
}

static void image_finalize(GObject *o) {
  kd_snapfig_store_free(KDS_IMAGE_PANEL(o)->store);
  G_OBJECT_CLASS(kds_image_panel_parent_class)->finalize(o);
}

static void kds_image_panel_class_init(KdsImagePanelClass *k) {
  G_OBJECT_CLASS(k)->finalize = image_finalize;
  KDS_PANEL_CLASS(k)->build = image_build;
  KDS_PANEL_CLASS(k)->kind = kd_snapfig_name(KD_SNAPFIG_IMAGE);
}

static void kds_image_panel_init(KdsImagePanel *p) { p->store = kd_snapfig_store_new(); }
