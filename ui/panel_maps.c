/* Feature maps of one FPN level: the gap panel (teacher energy | student
 * energy on one shared range unless asked otherwise, and the gap; figure
 * "gap") and the mask panel (GT foreground and every mask the active
 * methods use; figure "masks"). */
#include "panels.h"

struct _KdsGapPanel {
  KdsPanel parent;
  KdSnapFigStore *store;
};

G_DEFINE_FINAL_TYPE(KdsGapPanel, kds_gap_panel, KDS_TYPE_PANEL)

static gboolean gap_build(KdsPanel *panel, const KdsView *v, KdFigPanel *out) {
  return kds_panel_build_snapfig(KD_SNAPFIG_GAP, v, KDS_GAP_PANEL(panel)->store, out);
}

static void gap_finalize(GObject *o) {
  kd_snapfig_store_free(KDS_GAP_PANEL(o)->store);
  G_OBJECT_CLASS(kds_gap_panel_parent_class)->finalize(o);
}

static void kds_gap_panel_class_init(KdsGapPanelClass *k) {
  G_OBJECT_CLASS(k)->finalize = gap_finalize;
  KDS_PANEL_CLASS(k)->build = gap_build;
  KDS_PANEL_CLASS(k)->kind = kd_snapfig_name(KD_SNAPFIG_GAP);
}

static void kds_gap_panel_init(KdsGapPanel *p) { p->store = kd_snapfig_store_new(); }

struct _KdsMaskPanel {
  KdsPanel parent;
  KdSnapFigStore *store;
};

G_DEFINE_FINAL_TYPE(KdsMaskPanel, kds_mask_panel, KDS_TYPE_PANEL)

static gboolean mask_build(KdsPanel *panel, const KdsView *v, KdFigPanel *out) {
  return kds_panel_build_snapfig(KD_SNAPFIG_MASKS, v, KDS_MASK_PANEL(panel)->store, out);
}

static void mask_finalize(GObject *o) {
  kd_snapfig_store_free(KDS_MASK_PANEL(o)->store);
  G_OBJECT_CLASS(kds_mask_panel_parent_class)->finalize(o);
}

static void kds_mask_panel_class_init(KdsMaskPanelClass *k) {
  G_OBJECT_CLASS(k)->finalize = mask_finalize;
  KDS_PANEL_CLASS(k)->build = mask_build;
  KDS_PANEL_CLASS(k)->kind = kd_snapfig_name(KD_SNAPFIG_MASKS);
}

static void kds_mask_panel_init(KdsMaskPanel *p) { p->store = kd_snapfig_store_new(); }
