/* Spatial attention of teacher and student (shared range) and their
 * channel attention as bars, FGD's definitions (figure "attention"). */
#include "panels.h"

struct _KdsAttentionPanel {
  KdsPanel parent;
  KdSnapFigStore *store;
};

G_DEFINE_FINAL_TYPE(KdsAttentionPanel, kds_attention_panel, KDS_TYPE_PANEL)

static gboolean attention_build(KdsPanel *panel, const KdsView *v, KdFigPanel *out) {
  return kds_panel_build_snapfig(KD_SNAPFIG_ATTENTION, v, KDS_ATTENTION_PANEL(panel)->store, out);
}

static void attention_finalize(GObject *o) {
  kd_snapfig_store_free(KDS_ATTENTION_PANEL(o)->store);
  G_OBJECT_CLASS(kds_attention_panel_parent_class)->finalize(o);
}

static void kds_attention_panel_class_init(KdsAttentionPanelClass *k) {
  G_OBJECT_CLASS(k)->finalize = attention_finalize;
  KDS_PANEL_CLASS(k)->build = attention_build;
  KDS_PANEL_CLASS(k)->kind = kd_snapfig_name(KD_SNAPFIG_ATTENTION);
}

static void kds_attention_panel_init(KdsAttentionPanel *p) { p->store = kd_snapfig_store_new(); }
